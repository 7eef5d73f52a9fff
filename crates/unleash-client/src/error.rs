//! Unleash's error answers: the body parser the pipeline uses, the typed detail it attaches
//! ([`UnleashError`]), and what a status means on each API.

use std::fmt;
use std::sync::Arc;

use metrics_core::Error;
use metrics_core::http::{ErrorBody, body_snippet, default_error_body};
use metrics_core::reqwest::StatusCode;
use metrics_core::reqwest::header::HeaderMap;

use crate::versions::{Endpoint, ServerVersion};

/// Unleash's own reading of an error answer, attached to the [`Error`] as its typed detail:
/// `error.detail::<UnleashError>()`.
///
/// It holds what the server's JSON error body said (`id`, `name`, `message`, `details`) and,
/// when the client can tell, what the status means on the endpoint that answered
/// ([`Diagnosis`]), so that programs branch on types rather than on message text.
///
/// ```
/// use metrics_core::Error;
/// use unleash_client::{Diagnosis, UnleashError};
///
/// # fn check(err: Error) {
/// if let Some(UnleashError { diagnosis: Some(Diagnosis::NotABackendToken), .. }) = err.detail::<UnleashError>() {
///     eprintln!("configure a backend token for metrics");
/// }
/// # }
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct UnleashError {
    /// The error's id (a UUID, 4.x+).
    pub id: Option<String>,
    /// The error's name (`BadDataError`, `NotFoundError`, `NoAccessError`), also
    /// [`Error::code`].
    pub name: Option<String>,
    /// The server's message.
    pub message: Option<String>,
    /// Per-field validation failures (`details[]` of a 400).
    pub details: Vec<FieldError>,
    /// What the status means on the endpoint that answered, when the client can tell.
    pub diagnosis: Option<Diagnosis>,
}

/// One validation failure in an [`UnleashError`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct FieldError {
    /// The JSON pointer of the field (`/body/bucket/start`), when the server gave one.
    pub path: Option<String>,
    /// What is wrong with it.
    pub message: String,
}

/// What an error status means on the endpoint that answered it.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Diagnosis {
    /// 401 on `/api/client/*`: the backend token is missing or unknown to the server.
    UnknownBackendToken,
    /// 403 on `/api/client/*`: a token of another type (admin, personal access, frontend).
    NotABackendToken,
    /// 403 on `/api/admin/*`: a backend or frontend token, which cannot read.
    NotAnAdminToken,
    /// 404 on a path the configured server version serves: the server is probably another
    /// version than the client is configured for.
    NoSuchEndpoint {
        /// The request that got the 404 (`GET /api/client/seen-toggles`).
        request: String,
        /// The version the client is configured for.
        configured: ServerVersion,
    },
}

impl fmt::Display for Diagnosis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::UnknownBackendToken => f.write_str(
                "the backend token (UNLEASH_API_TOKEN) is missing or unknown to the server",
            ),
            Self::NotABackendToken => f.write_str(
                "wrong token type: /api/client/* needs a backend (client) token \
                 (UNLEASH_API_TOKEN, `<project>:<environment>.<secret>`); Unleash 8 rejects \
                 admin, personal-access and frontend tokens there",
            ),
            Self::NotAnAdminToken => f.write_str(
                "reads need an admin token, a personal access token or a service account \
                 (UNLEASH_ADMIN_TOKEN); backend and frontend tokens get 403",
            ),
            Self::NoSuchEndpoint {
                request,
                configured,
            } => write!(
                f,
                "the server does not serve {request}, which Unleash {configured} (the \
                 configured version) has: set the server's version with with_server_version or \
                 UNLEASH_SERVER_VERSION (UnleashClient::detect_server_version asks it)"
            ),
        }
    }
}

impl fmt::Display for UnleashError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        if let Some(name) = &self.name {
            parts.push(name.clone());
        }
        if let Some(message) = &self.message {
            parts.push(message.clone());
        }
        for detail in &self.details {
            parts.push(detail.message.clone());
        }
        if let Some(diagnosis) = &self.diagnosis {
            parts.push(diagnosis.to_string());
        }
        f.write_str(&parts.join(": "))
    }
}

impl std::error::Error for UnleashError {}

/// The pipeline's parser for Unleash error bodies: `{id, name, message, details[]}` (4.x+),
/// `{error}` and other JSON shapes, and HTML pages (a 400 for a non-JSON body, v3's
/// `Cannot GET`), which become their text.
pub(crate) fn unleash_error_body(
    status: StatusCode,
    headers: &HeaderMap,
    body: &[u8],
) -> ErrorBody {
    let Ok(serde_json::Value::Object(object)) = serde_json::from_slice::<serde_json::Value>(body)
    else {
        let text = String::from_utf8_lossy(body);
        if text.trim_start().starts_with('<') {
            let stripped = strip_tags(&text);
            return ErrorBody::new(None, body_snippet(stripped.as_bytes()));
        }
        return default_error_body(status, headers, body);
    };
    let text = |key: &str| object.get(key).and_then(|v| v.as_str()).map(str::to_owned);
    let name = text("name");
    let message = text("message").or_else(|| text("error"));
    let details: Vec<FieldError> = object
        .get("details")
        .and_then(|v| v.as_array())
        .map(|details| {
            details
                .iter()
                .filter_map(|d| {
                    let message = d.get("message")?.as_str()?.to_owned();
                    let path = d.get("path").and_then(|p| p.as_str()).map(str::to_owned);
                    Some(FieldError { path, message })
                })
                .filter(|d| Some(&d.message) != message.as_ref())
                .collect()
        })
        .unwrap_or_default();
    if message.is_none() && details.is_empty() && name.is_none() {
        // Legacy 410 bodies ({"lastHour":{},…}) and other shapes: keep them readable.
        return default_error_body(status, headers, body);
    }
    let joined = details
        .iter()
        .map(|d| d.message.as_str())
        .collect::<Vec<_>>()
        .join(" | ");
    let shown = match (&message, details.is_empty()) {
        (Some(message), true) => message.clone(),
        (Some(message), false) => format!("{message} Details: {joined}"),
        (None, false) => joined,
        (None, true) => status.canonical_reason().unwrap_or("error").to_owned(),
    };
    let detail = UnleashError {
        id: text("id"),
        name: name.clone(),
        message,
        details,
        diagnosis: None,
    };
    ErrorBody::new(name, Some(shown)).with_detail(Arc::new(detail))
}

/// Attaches what a status means on this endpoint: as a [`Diagnosis`] in the typed detail,
/// and in the message for people reading logs.
pub(crate) fn diagnose(error: Error, diagnosis: Diagnosis) -> Error {
    let mut detail = error.detail::<UnleashError>().cloned().unwrap_or_default();
    let hint = diagnosis.to_string();
    detail.diagnosis = Some(diagnosis);
    let detail: metrics_core::SharedError = Arc::new(detail);
    let annotate = |message: String| {
        if message.trim().is_empty() {
            hint.clone()
        } else {
            format!("{message} — {hint}")
        }
    };
    match error {
        Error::Unauthenticated {
            backend,
            code,
            message,
            ..
        } => Error::Unauthenticated {
            backend,
            code,
            message: annotate(message),
            detail: Some(detail),
        },
        Error::Forbidden {
            backend,
            code,
            message,
            ..
        } => Error::Forbidden {
            backend,
            code,
            message: annotate(message),
            detail: Some(detail),
        },
        Error::NotFound {
            backend,
            code,
            message,
            ..
        } => Error::NotFound {
            backend,
            code,
            message: annotate(message),
            detail: Some(detail),
        },
        other => other,
    }
}

/// What a 401/403 on `/api/client/*` means.
pub(crate) fn client_api_error(error: Error) -> Error {
    match error {
        Error::Forbidden { .. } => diagnose(error, Diagnosis::NotABackendToken),
        Error::Unauthenticated { .. } => diagnose(error, Diagnosis::UnknownBackendToken),
        other => other,
    }
}

/// What an admin read's status means for its endpoint and the configured server version.
/// `request` is what was asked (`GET /api/client/seen-toggles`), for the messages.
pub(crate) fn admin_api_error(
    error: Error,
    endpoint: Endpoint,
    request: &str,
    version: ServerVersion,
) -> Error {
    match error {
        Error::Api { status: 410, .. } => Error::unsupported(
            crate::BACKEND,
            Some(410),
            format!(
                "{request} was removed in Unleash 4.4 (the server answered 410 Gone); use {} instead",
                endpoint.replacement.unwrap_or("the current read endpoints"),
            ),
        ),
        // The version decided the path, so the server lacking it is not the version's limit
        // but a server that is not the configured version.
        Error::NotFound { .. } if endpoint.route_may_be_missing => diagnose(
            error,
            Diagnosis::NoSuchEndpoint {
                request: request.to_owned(),
                configured: version,
            },
        ),
        Error::Forbidden { .. } => diagnose(error, Diagnosis::NotAnAdminToken),
        other => other,
    }
}

fn strip_tags(html: &str) -> String {
    let mut out = String::with_capacity(html.len());
    let mut in_tag = false;
    for c in html.chars() {
        match c {
            '<' => {
                in_tag = true;
                out.push(' ');
            }
            '>' => in_tag = false,
            c if !in_tag => out.push(c),
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_data_error_details_are_kept_and_typed() {
        let body = br#"{"id":"x","name":"BadDataError","message":"Request validation failed.","details":[{"path":"/body/interval","message":"The `/body/interval` property is required."}]}"#;
        let parsed = unleash_error_body(StatusCode::BAD_REQUEST, &HeaderMap::new(), body);
        assert_eq!(parsed.code.as_deref(), Some("BadDataError"));
        assert_eq!(
            parsed.message.as_deref(),
            Some("Request validation failed. Details: The `/body/interval` property is required.")
        );
        let error = Error::api(crate::BACKEND, 400, parsed.code.clone(), "m")
            .with_detail(parsed.detail.clone().unwrap());
        let detail = error.detail::<UnleashError>().unwrap();
        assert_eq!(detail.id.as_deref(), Some("x"));
        assert_eq!(
            detail.details,
            [FieldError {
                path: Some("/body/interval".into()),
                message: "The `/body/interval` property is required.".into()
            }]
        );
    }

    #[test]
    fn html_error_becomes_text() {
        let body = b"<!DOCTYPE html><html><body><pre>Cannot GET /api/client/seen-toggles</pre></body></html>";
        let parsed = unleash_error_body(StatusCode::NOT_FOUND, &HeaderMap::new(), body);
        assert_eq!(
            parsed.message.as_deref(),
            Some("Cannot GET /api/client/seen-toggles")
        );
    }

    #[test]
    fn a_diagnosis_is_typed_and_keeps_the_servers_reading() {
        let body = br#"{"id":"y","name":"NoAccessError","message":"You need permission."}"#;
        let parsed = unleash_error_body(StatusCode::FORBIDDEN, &HeaderMap::new(), body);
        let error = Error::api(
            crate::BACKEND,
            403,
            parsed.code.clone(),
            "You need permission.",
        )
        .with_detail(parsed.detail.clone().unwrap());
        let error = client_api_error(error);
        let detail = error.detail::<UnleashError>().unwrap();
        assert_eq!(detail.diagnosis, Some(Diagnosis::NotABackendToken));
        assert_eq!(detail.name.as_deref(), Some("NoAccessError"));
        assert!(error.to_string().contains("wrong token type"), "{error}");
    }
}
