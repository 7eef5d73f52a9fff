//! Coopr's plain-text error bodies, read into [`metrics_core::Error`]s with a code.
//!
//! The server answers every handler error with `text/plain` and the message alone, never
//! JSON, and has no error codes. The client reads the body once, where it arrives: it keeps
//! the text as the error's message and attaches a typed [`CooprError`] (the kind recognised
//! from the status and the server's fixed wording) to the core error, so that callers match
//! on [`CooprErrorKind`] instead of on strings.

use std::fmt;
use std::sync::Arc;

use metrics_core::Error;
use metrics_core::http::{ErrorBody, body_snippet};
use metrics_core::reqwest::StatusCode;
use metrics_core::reqwest::header::{CONTENT_TYPE, HeaderMap};

use crate::BACKEND;

/// How much of a plain-text error body is kept. The server's messages are one short line;
/// anything longer is not from a Coopr handler.
const MAX_MESSAGE_CHARS: usize = 1_000;

/// What a Coopr error answer means, derived from its status and text.
///
/// ```
/// use std::sync::Arc;
/// use coopr_client::{CooprError, CooprErrorKind};
/// use metrics_core::Error;
///
/// // What the client builds from a 405 answer of the server:
/// let err = Error::api("coopr", 405, Some("TenantNotAllowed".into()), "Getting information about tenant tenant2 not allowed for tenant tenant1")
///     .with_detail(Arc::new(CooprError::new(CooprErrorKind::TenantNotAllowed)));
/// assert_eq!(CooprErrorKind::of(&err), Some(CooprErrorKind::TenantNotAllowed));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CooprErrorKind {
    /// 401 `Coopr-UserID not found in request headers.`
    MissingUserId,
    /// 401 `Coopr-TenantID not found in request headers.`
    MissingTenantId,
    /// 404 `Tenant does not exist.`: no tenant has the name sent in `Coopr-TenantID`.
    UnknownTenant,
    /// 500 `Error authenticating tenant`: the server's tenant store failed.
    TenantStoreFailed,
    /// 403 `Forbidden to get queue metrics.`: only the user `admin` may read queue metrics.
    QueueMetricsForbidden,
    /// 500 `Internal error getting queue metrics.`
    QueueMetricsFailed,
    /// 405 `Getting information about tenant … not allowed for tenant …`: only the
    /// superadmin may choose the tenant of node usage.
    TenantNotAllowed,
    /// 400 `Incorrect value for start … or end … timestamp`.
    BadTimestamp,
    /// 400 `Incorrect value for field groupby: …`.
    BadGroupBy,
    /// 400 `Incorrect value for field timeunit: …`.
    BadTimeUnit,
    /// 500 `Unable to read data from the database`.
    DatabaseFailed,
    /// 500 `Exception Encountered while processing request : …`: an exception inside the
    /// server (an empty user id, `end=0` without group-by, a negative start).
    ServerException,
    /// 404 `Problem accessing: …`: the server has no such path (an older Coopr, or a base URL
    /// that is not the API root). The client reports it as [`Error::Unsupported`].
    UnknownPath,
    /// 405 with the request URI as body: the path exists but not for this method.
    MethodNotAllowed,
}

impl CooprErrorKind {
    /// The code the client stores in the error ([`Error::code`]).
    pub fn code(self) -> &'static str {
        match self {
            Self::MissingUserId => "MissingUserId",
            Self::MissingTenantId => "MissingTenantId",
            Self::UnknownTenant => "UnknownTenant",
            Self::TenantStoreFailed => "TenantStoreFailed",
            Self::QueueMetricsForbidden => "QueueMetricsForbidden",
            Self::QueueMetricsFailed => "QueueMetricsFailed",
            Self::TenantNotAllowed => "TenantNotAllowed",
            Self::BadTimestamp => "BadTimestamp",
            Self::BadGroupBy => "BadGroupBy",
            Self::BadTimeUnit => "BadTimeUnit",
            Self::DatabaseFailed => "DatabaseFailed",
            Self::ServerException => "ServerException",
            Self::UnknownPath => "UnknownPath",
            Self::MethodNotAllowed => "MethodNotAllowed",
        }
    }

    /// The kind of a Coopr error, when it is an answer the client recognised: the
    /// [`CooprError`] the client attached to it.
    pub fn of(error: &Error) -> Option<Self> {
        error.detail::<CooprError>().map(|detail| detail.kind)
    }

    /// Recognises the server's fixed messages.
    pub(crate) fn classify(status: u16, message: &str) -> Option<Self> {
        let kind = match status {
            400 if message.starts_with("Incorrect value for start ") => Self::BadTimestamp,
            400 if message.starts_with("Incorrect value for field groupby:") => Self::BadGroupBy,
            400 if message.starts_with("Incorrect value for field timeunit:") => Self::BadTimeUnit,
            401 if message.starts_with("Coopr-UserID not found") => Self::MissingUserId,
            401 if message.starts_with("Coopr-TenantID not found") => Self::MissingTenantId,
            403 if message.starts_with("Forbidden to get queue metrics") => {
                Self::QueueMetricsForbidden
            }
            404 if message == "Tenant does not exist." => Self::UnknownTenant,
            404 if message.starts_with("Problem accessing:") => Self::UnknownPath,
            405 if message.starts_with("Getting information about tenant ") => {
                Self::TenantNotAllowed
            }
            405 if message.starts_with('/') || message.starts_with("http") => {
                Self::MethodNotAllowed
            }
            500 if message == "Error authenticating tenant" => Self::TenantStoreFailed,
            500 if message.starts_with("Internal error getting queue metrics") => {
                Self::QueueMetricsFailed
            }
            500 if message == "Unable to read data from the database" => Self::DatabaseFailed,
            500 if message.starts_with("Exception Encountered while processing request") => {
                Self::ServerException
            }
            _ => return None,
        };
        Some(kind)
    }
}

impl fmt::Display for CooprErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// The client's typed reading of a Coopr error answer, attached to the core error; get it
/// with [`Error::detail`] or [`CooprErrorKind::of`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("Coopr error {kind}")]
#[non_exhaustive]
pub struct CooprError {
    /// What the answer means.
    pub kind: CooprErrorKind,
}

impl CooprError {
    /// The reading of an answer of this kind.
    pub fn new(kind: CooprErrorKind) -> Self {
        Self { kind }
    }
}

/// The error-body parser: the body is the message, as text. An HTML page (a proxy's) is
/// shortened to one line; JSON is not looked into, because Coopr never sends it.
pub(crate) fn parse_error_body(status: StatusCode, headers: &HeaderMap, body: &[u8]) -> ErrorBody {
    let is_html = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.to_ascii_lowercase().contains("html"))
        || body.trim_ascii_start().starts_with(b"<");
    if is_html {
        return ErrorBody::new(None, body_snippet(body));
    }
    let text = String::from_utf8_lossy(body);
    // One line for logs: a control character in a body must not start a fake log line.
    let cleaned: String = text
        .trim()
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if cleaned.is_empty() {
        return ErrorBody::default();
    }
    let message = match cleaned.char_indices().nth(MAX_MESSAGE_CHARS) {
        Some((cut, _)) => format!("{}…", &cleaned[..cut]),
        None => cleaned,
    };
    match CooprErrorKind::classify(status.as_u16(), &message) {
        Some(kind) => ErrorBody::new(Some(kind.code().to_owned()), Some(message))
            .with_detail(Arc::new(CooprError::new(kind))),
        None => ErrorBody::new(None, Some(message)),
    }
}

/// Turns the routing 404 into [`Error::Unsupported`]: the path is missing on this server.
pub(crate) fn refine(error: Error, path: &str) -> Error {
    match CooprErrorKind::of(&error) {
        Some(CooprErrorKind::UnknownPath) => Error::unsupported(
            BACKEND,
            Some(404),
            format!(
                "the server has no /v2/{path} (queue metrics need Coopr 0.9.8, node usage 0.9.9), or the base URL is not the API root ending in /v2; it said: {}",
                error_message(&error)
            ),
        ),
        _ => error,
    }
}

fn error_message(error: &Error) -> &str {
    match error {
        Error::NotFound { message, .. } | Error::Api { message, .. } => message,
        _ => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(status: u16, content_type: Option<&str>, body: &str) -> ErrorBody {
        let mut headers = HeaderMap::new();
        if let Some(ct) = content_type {
            headers.insert(CONTENT_TYPE, ct.parse().unwrap());
        }
        parse_error_body(
            StatusCode::from_u16(status).unwrap(),
            &headers,
            body.as_bytes(),
        )
    }

    #[test]
    fn plain_text_is_the_message() {
        let body = parse(
            400,
            Some("text/plain; charset=utf-8"),
            "Incorrect value for field groupby: Hour",
        );
        assert_eq!(body.code.as_deref(), Some("BadGroupBy"));
        assert_eq!(
            body.message.as_deref(),
            Some("Incorrect value for field groupby: Hour")
        );
    }

    #[test]
    fn json_looking_text_is_not_parsed() {
        let body = parse(500, None, r#"{"message":"x"}"#);
        assert_eq!(body.message.as_deref(), Some(r#"{"message":"x"}"#));
        assert_eq!(body.code, None);
    }

    #[test]
    fn html_and_control_characters() {
        let body = parse(
            502,
            Some("text/html"),
            "<html>\n<body>Bad   Gateway</body></html>",
        );
        assert_eq!(
            body.message.as_deref(),
            Some("<html> <body>Bad Gateway</body></html>")
        );
        let body = parse(500, None, "a\nb\r\n");
        assert_eq!(body.message.as_deref(), Some("a b"));
        assert_eq!(parse(500, None, "").message, None);
        let long = "x".repeat(5_000);
        let body = parse(500, None, &long);
        assert_eq!(body.message.unwrap().chars().count(), MAX_MESSAGE_CHARS + 1);
    }

    #[test]
    fn every_server_message_is_recognised() {
        let cases = [
            (
                401,
                "Coopr-UserID not found in request headers.",
                CooprErrorKind::MissingUserId,
            ),
            (
                401,
                "Coopr-TenantID not found in request headers.",
                CooprErrorKind::MissingTenantId,
            ),
            (404, "Tenant does not exist.", CooprErrorKind::UnknownTenant),
            (
                500,
                "Error authenticating tenant",
                CooprErrorKind::TenantStoreFailed,
            ),
            (
                403,
                "Forbidden to get queue metrics.",
                CooprErrorKind::QueueMetricsForbidden,
            ),
            (
                500,
                "Internal error getting queue metrics.",
                CooprErrorKind::QueueMetricsFailed,
            ),
            (
                405,
                "Getting information about tenant tenant2 not allowed for tenant tenant1",
                CooprErrorKind::TenantNotAllowed,
            ),
            (
                400,
                "Incorrect value for start abc or end null timestamp",
                CooprErrorKind::BadTimestamp,
            ),
            (
                400,
                "Incorrect value for field timeunit: weeks",
                CooprErrorKind::BadTimeUnit,
            ),
            (
                500,
                "Unable to read data from the database",
                CooprErrorKind::DatabaseFailed,
            ),
            (
                500,
                "Exception Encountered while processing request : / by zero",
                CooprErrorKind::ServerException,
            ),
            (
                404,
                "Problem accessing: /v2/metrics/nodes/usage. Reason: Not Found",
                CooprErrorKind::UnknownPath,
            ),
            (405, "/v2/metrics/queues", CooprErrorKind::MethodNotAllowed),
        ];
        for (status, message, kind) in cases {
            assert_eq!(
                CooprErrorKind::classify(status, message),
                Some(kind),
                "{message}"
            );
            let body = parse(status, Some("text/plain"), message);
            let err = Error::api(BACKEND, status, body.code.clone(), message)
                .with_detail(body.detail.expect("a typed detail"));
            assert_eq!(CooprErrorKind::of(&err), Some(kind));
        }
        assert_eq!(
            CooprErrorKind::classify(400, "Tenant does not exist."),
            None
        );
        // A code alone, without the client's typed reading, is not taken for one.
        let other = Error::api("vumi", 404, Some("UnknownTenant".into()), "x");
        assert_eq!(CooprErrorKind::of(&other), None);
    }

    #[test]
    fn unknown_path_becomes_unsupported() {
        let err = Error::api(
            BACKEND,
            404,
            Some("UnknownPath".into()),
            "Problem accessing: /metrics/queues. Reason: Not Found",
        )
        .with_detail(Arc::new(CooprError::new(CooprErrorKind::UnknownPath)));
        let refined = refine(err, "metrics/queues");
        assert!(matches!(
            refined,
            Error::Unsupported {
                status: Some(404),
                ..
            }
        ));
        assert!(refined.to_string().contains("Problem accessing"));
        let other = refine(Error::api(BACKEND, 404, None, "x"), "metrics/queues");
        assert!(matches!(other, Error::NotFound { .. }));
    }
}
