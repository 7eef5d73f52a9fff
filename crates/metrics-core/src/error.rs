//! The one error type every backend returns.

use std::error::Error as StdError;
use std::sync::Arc;
use std::time::Duration;

use crate::disposition::{Disposition, Processing, Retry};

/// A boxed error source.
pub type BoxError = Box<dyn StdError + Send + Sync + 'static>;

/// A shared error source. Sources are shared rather than boxed so that an [`Error`] can be
/// cloned (a background task reports one failure to several callers without rebuilding it),
/// and type-erased so that `reqwest` and `serde_json` stay out of the public API: callers walk
/// [`std::error::Error::source`] without naming those crates.
pub type SharedError = Arc<dyn StdError + Send + Sync + 'static>;

/// `Result` with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong talking to a metrics backend.
///
/// Every variant names the backend (the crate's `BACKEND` constant) so that an error from an
/// [`Aggregator`](crate::Aggregator) run says where it came from. Messages never contain a
/// credential: tokens live in [`Secret`](crate::Secret)s, URLs are shown redacted, and
/// transport errors are stripped of their URL before they are kept.
///
/// ```
/// use metrics_core::Error;
///
/// let err = Error::api("coopr", 400, None, "start must be before end");
/// assert_eq!(err.backend(), "coopr");
/// assert_eq!(err.status(), Some(400));
/// assert!(!err.is_retryable());
/// assert_eq!(
///     err.to_string(),
///     "coopr: the server answered HTTP 400: start must be before end"
/// );
/// ```
///
/// What the failure means for the request — whether the server can have acted on it, whether
/// to try again and when, what a writer does with its data — is [`Error::disposition`].
#[derive(Clone, Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The client was configured with a missing or invalid setting; nothing was sent.
    #[error("{backend}: invalid configuration: {message}")]
    Config {
        /// The backend that reported the error.
        backend: &'static str,
        /// What is wrong and how to fix it.
        message: String,
    },

    /// A request argument was rejected before sending, because the server would reject or
    /// mishandle it.
    #[error("{backend}: invalid input: {message}")]
    InvalidInput {
        /// The backend that reported the error.
        backend: &'static str,
        /// What is wrong with the input.
        message: String,
    },

    /// HTTP 401: the credentials are missing or wrong.
    #[error("{backend}: the server rejected the credentials (HTTP 401{}){}; check the token or password", code_suffix(code.as_deref()), message_suffix(message))]
    Unauthenticated {
        /// The backend that reported the error.
        backend: &'static str,
        /// The server's own error code, when its body has one.
        code: Option<String>,
        /// The server's message.
        message: String,
        /// The backend's own reading of the error body, when it has one (see
        /// [`Error::detail`]).
        detail: Option<SharedError>,
    },

    /// HTTP 403: the credentials are valid but not allowed to do this.
    #[error("{backend}: the credentials are not allowed to do this (HTTP 403{}){}", code_suffix(code.as_deref()), message_suffix(message))]
    Forbidden {
        /// The backend that reported the error.
        backend: &'static str,
        /// The server's own error code, when its body has one.
        code: Option<String>,
        /// The server's message.
        message: String,
        /// The backend's own reading of the error body, when it has one (see
        /// [`Error::detail`]).
        detail: Option<SharedError>,
    },

    /// HTTP 404: the resource does not exist.
    #[error("{backend}: not found (HTTP 404{}){}", code_suffix(code.as_deref()), message_suffix(message))]
    NotFound {
        /// The backend that reported the error.
        backend: &'static str,
        /// The server's own error code, when its body has one.
        code: Option<String>,
        /// The server's message.
        message: String,
        /// The backend's own reading of the error body, when it has one (see
        /// [`Error::detail`]).
        detail: Option<SharedError>,
    },

    /// HTTP 429: too many requests. Retried automatically where safe; this is what is left
    /// when retries ran out.
    #[error("{backend}: rate limited (HTTP 429{}){}{}", code_suffix(code.as_deref()), retry_after_suffix(*retry_after), message_suffix(message))]
    RateLimited {
        /// The backend that reported the error.
        backend: &'static str,
        /// How long the server asked to wait (`Retry-After`), if it said.
        retry_after: Option<Duration>,
        /// The server's own error code, when its body has one.
        code: Option<String>,
        /// The server's message.
        message: String,
        /// The backend's own reading of the error body, when it has one (see
        /// [`Error::detail`]).
        detail: Option<SharedError>,
    },

    /// Any other HTTP error status, with the server's own code and message.
    #[error("{backend}: the server answered HTTP {status}{}{}{}", code_suffix(code.as_deref()), retry_after_suffix(*retry_after), message_suffix(message))]
    Api {
        /// The backend that reported the error.
        backend: &'static str,
        /// The HTTP status code.
        status: u16,
        /// How long the server asked to wait (`Retry-After` on a 503), if it said.
        retry_after: Option<Duration>,
        /// The server's own error code, when its body has one.
        code: Option<String>,
        /// The server's message, or the start of its body when it sent no structured error.
        message: String,
        /// The backend's own reading of the error body, when it has one (see
        /// [`Error::detail`]).
        detail: Option<SharedError>,
    },

    /// The server's version does not have this endpoint (not yet, or not any more).
    #[error("{backend}: not supported by this server version: {message}")]
    Unsupported {
        /// The backend that reported the error.
        backend: &'static str,
        /// The HTTP status that showed it (404, 410), if any.
        status: Option<u16>,
        /// What is missing and what to use instead.
        message: String,
    },

    /// The request or the whole operation took longer than its timeout.
    #[error("{backend}: timed out: {message}")]
    Timeout {
        /// The backend that reported the error.
        backend: &'static str,
        /// What timed out, and after how long.
        message: String,
        /// Whether the request can have reached the server: [`Processing::NotSent`] when
        /// the connection was never made, [`Processing::Unknown`] otherwise.
        processing: Processing,
    },

    /// The TLS handshake failed, for example because the server's certificate does not match
    /// the pinned fingerprint. No request was sent.
    #[error("{backend}: TLS handshake failed: {message}")]
    Tls {
        /// The backend that reported the error.
        backend: &'static str,
        /// Why the handshake failed.
        message: String,
        /// The underlying error.
        #[source]
        source: Option<SharedError>,
    },

    /// The connection could not be made, broke, or the body ended early.
    #[error("{backend}: {message}")]
    Transport {
        /// The backend that reported the error.
        backend: &'static str,
        /// What happened, including the cause chain (never a URL).
        message: String,
        /// Whether the request can have reached the server, as seen on the wire.
        processing: Processing,
        /// The underlying error.
        #[source]
        source: Option<SharedError>,
    },

    /// The response body is not what the API documents.
    #[error(
        "{backend}: could not decode the response{}: {message}",
        path_suffix(path)
    )]
    Decode {
        /// The backend that reported the error.
        backend: &'static str,
        /// The JSON path of the failing field (`keys[3].id`), empty at the top level.
        path: String,
        /// What was wrong with it.
        message: String,
    },

    /// The response body is larger than the configured limit; reading stopped at the limit.
    #[error(
        "{backend}: the response body is larger than the {limit}-byte limit; raise it with ClientOptions::with_max_response_bytes if this is expected"
    )]
    BodyTooLarge {
        /// The backend that reported the error.
        backend: &'static str,
        /// The limit in bytes.
        limit: usize,
    },

    /// Part of a batch was not delivered. The undelivered items were kept and will be sent
    /// again; `source` says why this attempt failed.
    #[error(
        "{backend}: {unsent} {items} not delivered and still queued: {}",
        WithoutBackend(source)
    )]
    Incomplete {
        /// The backend that reported the error.
        backend: &'static str,
        /// How many items are still waiting, counted in `items`.
        unsent: usize,
        /// What `unsent` counts, in the plural: `"measurements"`, `"evaluations"`.
        items: &'static str,
        /// Why they were not delivered.
        #[source]
        source: Box<Error>,
    },

    /// The source's code panicked while collecting. Reported as its own failure, never
    /// retried: the same call would panic again.
    #[error("{backend}: the source panicked while collecting: {message}")]
    Panicked {
        /// The backend of the source that panicked.
        backend: &'static str,
        /// The panic message, when it was a string.
        message: String,
    },
}

/// Shows an error without its leading `backend: `, for messages that already name it.
struct WithoutBackend<'a>(&'a Error);

impl std::fmt::Display for WithoutBackend<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let text = self.0.to_string();
        let prefix_len = self.0.backend().len() + 2;
        match text.get(..prefix_len) {
            Some(prefix) if prefix.starts_with(self.0.backend()) && prefix.ends_with(": ") => {
                f.write_str(&text[prefix_len..])
            }
            _ => f.write_str(&text),
        }
    }
}

fn message_suffix(message: &str) -> String {
    if message.trim().is_empty() {
        String::new()
    } else {
        format!(": {message}")
    }
}

fn code_suffix(code: Option<&str>) -> String {
    code.map(|c| format!(" {c}")).unwrap_or_default()
}

fn retry_after_suffix(retry_after: Option<Duration>) -> String {
    retry_after
        .map(|d| format!(", retry after {}s", d.as_secs_f64().ceil()))
        .unwrap_or_default()
}

fn path_suffix(path: &str) -> String {
    if path.is_empty() || path == "." {
        String::new()
    } else {
        format!(" at `{path}`")
    }
}

impl Error {
    /// A [`Error::Config`] error.
    pub fn config(backend: &'static str, message: impl Into<String>) -> Self {
        Self::Config {
            backend,
            message: message.into(),
        }
    }

    /// An [`Error::InvalidInput`] error.
    pub fn invalid_input(backend: &'static str, message: impl Into<String>) -> Self {
        Self::InvalidInput {
            backend,
            message: message.into(),
        }
    }

    /// An [`Error::Timeout`] of a request that may have reached the server.
    pub fn timeout(backend: &'static str, message: impl Into<String>) -> Self {
        Self::Timeout {
            backend,
            message: message.into(),
            processing: Processing::Unknown,
        }
    }

    /// An [`Error::Unsupported`] error.
    pub fn unsupported(
        backend: &'static str,
        status: Option<u16>,
        message: impl Into<String>,
    ) -> Self {
        Self::Unsupported {
            backend,
            status,
            message: message.into(),
        }
    }

    /// An [`Error::Decode`] error.
    pub fn decode(
        backend: &'static str,
        path: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Self::Decode {
            backend,
            path: path.into(),
            message: message.into(),
        }
    }

    /// An [`Error::Transport`] error: `processing` is what the wire showed.
    pub fn transport(
        backend: &'static str,
        processing: Processing,
        message: impl Into<String>,
        source: Option<SharedError>,
    ) -> Self {
        Self::Transport {
            backend,
            message: message.into(),
            processing,
            source,
        }
    }

    /// The error for an HTTP error status: 401, 403, 404 and 429 get their own variants,
    /// everything else is [`Error::Api`].
    pub fn api(
        backend: &'static str,
        status: u16,
        code: Option<String>,
        message: impl Into<String>,
    ) -> Self {
        let message = message.into();
        let detail = None;
        match status {
            401 => Self::Unauthenticated {
                backend,
                code,
                message,
                detail,
            },
            403 => Self::Forbidden {
                backend,
                code,
                message,
                detail,
            },
            404 => Self::NotFound {
                backend,
                code,
                message,
                detail,
            },
            429 => Self::RateLimited {
                backend,
                retry_after: None,
                code,
                message,
                detail,
            },
            _ => Self::Api {
                backend,
                status,
                retry_after: None,
                code,
                message,
                detail,
            },
        }
    }

    /// Attaches the backend's own reading of an error body (a typed value users get back
    /// with [`Error::detail`]). No effect on variants that do not come from a status.
    #[must_use]
    pub fn with_detail(mut self, value: SharedError) -> Self {
        if let Self::Unauthenticated { detail, .. }
        | Self::Forbidden { detail, .. }
        | Self::NotFound { detail, .. }
        | Self::RateLimited { detail, .. }
        | Self::Api { detail, .. } = &mut self
        {
            *detail = Some(value);
        }
        self
    }

    /// Sets how long the server asked to wait, on [`Error::RateLimited`] and [`Error::Api`].
    #[must_use]
    pub fn with_retry_after(mut self, wait: Option<Duration>) -> Self {
        if let Self::RateLimited { retry_after, .. } | Self::Api { retry_after, .. } = &mut self {
            *retry_after = wait;
        }
        self
    }

    /// The backend's own reading of the error body, as the type the backend documents,
    /// when the server's answer had one.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use metrics_core::Error;
    ///
    /// #[derive(Debug, thiserror::Error)]
    /// #[error("tenant missing")]
    /// struct TenantMissing;
    ///
    /// let err = Error::api("coopr", 404, None, "tenant missing").with_detail(Arc::new(TenantMissing));
    /// assert!(err.detail::<TenantMissing>().is_some());
    /// ```
    pub fn detail<T: StdError + 'static>(&self) -> Option<&T> {
        match self {
            Self::Unauthenticated { detail, .. }
            | Self::Forbidden { detail, .. }
            | Self::NotFound { detail, .. }
            | Self::RateLimited { detail, .. }
            | Self::Api { detail, .. } => detail.as_deref()?.downcast_ref::<T>(),
            Self::Incomplete { source, .. } => source.detail(),
            _ => None,
        }
    }

    /// The backend that reported this error.
    pub fn backend(&self) -> &'static str {
        match self {
            Self::Config { backend, .. }
            | Self::InvalidInput { backend, .. }
            | Self::Unauthenticated { backend, .. }
            | Self::Forbidden { backend, .. }
            | Self::NotFound { backend, .. }
            | Self::RateLimited { backend, .. }
            | Self::Api { backend, .. }
            | Self::Unsupported { backend, .. }
            | Self::Timeout { backend, .. }
            | Self::Tls { backend, .. }
            | Self::Transport { backend, .. }
            | Self::Decode { backend, .. }
            | Self::BodyTooLarge { backend, .. }
            | Self::Incomplete { backend, .. }
            | Self::Panicked { backend, .. } => backend,
        }
    }

    /// A stable `snake_case` name of the variant, for metric labels and logs:
    /// `"transport"`, `"rate_limited"`, `"api"`, …
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Config { .. } => "config",
            Self::InvalidInput { .. } => "invalid_input",
            Self::Unauthenticated { .. } => "unauthenticated",
            Self::Forbidden { .. } => "forbidden",
            Self::NotFound { .. } => "not_found",
            Self::RateLimited { .. } => "rate_limited",
            Self::Api { .. } => "api",
            Self::Unsupported { .. } => "unsupported",
            Self::Timeout { .. } => "timeout",
            Self::Tls { .. } => "tls",
            Self::Transport { .. } => "transport",
            Self::Decode { .. } => "decode",
            Self::BodyTooLarge { .. } => "body_too_large",
            Self::Incomplete { .. } => "incomplete",
            Self::Panicked { .. } => "panicked",
        }
    }

    /// The HTTP status the server answered with, if this error came from one.
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Unauthenticated { .. } => Some(401),
            Self::Forbidden { .. } => Some(403),
            Self::NotFound { .. } => Some(404),
            Self::RateLimited { .. } => Some(429),
            Self::Api { status, .. } => Some(*status),
            Self::Unsupported { status, .. } => *status,
            Self::Incomplete { source, .. } => source.status(),
            _ => None,
        }
    }

    /// The server's own error code (`"NotFound"`, `"BadDataError"`), if its body had one.
    pub fn code(&self) -> Option<&str> {
        match self {
            Self::Unauthenticated { code, .. }
            | Self::Forbidden { code, .. }
            | Self::NotFound { code, .. }
            | Self::RateLimited { code, .. }
            | Self::Api { code, .. } => code.as_deref(),
            Self::Incomplete { source, .. } => source.code(),
            _ => None,
        }
    }

    /// What this failure means for the request, decided in this one place: whether the
    /// server can have acted on it, whether and when to try again. The pipeline's retries,
    /// the Unleash recorder and the AppOptics queue all follow it.
    ///
    /// | error | processing | retry |
    /// |---|---|---|
    /// | `Config`, `InvalidInput` | not sent | never |
    /// | `Tls` | not sent | never |
    /// | `Transport`/`Timeout` before the connection was made | not sent | backoff |
    /// | `Transport`: closed before any answer | closed before response | backoff |
    /// | `Transport`/`Timeout` after sending | unknown | backoff |
    /// | 401, 403 | not processed | never |
    /// | 408, 429, 503 with `Retry-After` | not processed | `Retry-After`, else backoff |
    /// | 500, 502, 503, 504 | unknown | backoff |
    /// | 501, other 5xx | unknown | never |
    /// | other 4xx, `NotFound`, `Unsupported` | refused | never |
    /// | `BodyTooLarge`, `Decode` | accepted | never |
    /// | `Panicked` | unknown | never |
    ///
    /// ```
    /// use metrics_core::{Error, PayloadFate, Retry};
    ///
    /// let err = Error::api("unleash", 400, Some("BadDataError".into()), "bad bucket");
    /// assert_eq!(err.disposition().retry, Retry::Never);
    /// assert_eq!(err.disposition().payload(false), PayloadFate::HandBack);
    /// ```
    pub fn disposition(&self) -> Disposition {
        let wait = |retry_after: &Option<Duration>| match retry_after {
            Some(wait) => Retry::After(*wait),
            None => Retry::Backoff,
        };
        let (processing, retry) = match self {
            Self::Config { .. } | Self::InvalidInput { .. } | Self::Tls { .. } => {
                (Processing::NotSent, Retry::Never)
            }
            Self::Transport { processing, .. } | Self::Timeout { processing, .. } => {
                (*processing, Retry::Backoff)
            }
            Self::Unauthenticated { .. } | Self::Forbidden { .. } => {
                (Processing::NotProcessed, Retry::Never)
            }
            Self::RateLimited { retry_after, .. } => (Processing::NotProcessed, wait(retry_after)),
            Self::Api {
                status,
                retry_after,
                ..
            } => match status {
                408 => (Processing::NotProcessed, wait(retry_after)),
                // A 503 with `Retry-After` is the server itself shedding load or down for
                // maintenance: it did not take the request up. Without it, the 503 may come
                // from a proxy whose upstream broke mid-request.
                503 if retry_after.is_some() => (Processing::NotProcessed, wait(retry_after)),
                500 | 502 | 503 | 504 => (Processing::Unknown, Retry::Backoff),
                400..=499 => (Processing::Refused, Retry::Never),
                _ => (Processing::Unknown, Retry::Never),
            },
            Self::NotFound { .. } | Self::Unsupported { .. } => (Processing::Refused, Retry::Never),
            Self::Decode { .. } | Self::BodyTooLarge { .. } => (Processing::Accepted, Retry::Never),
            Self::Incomplete { source, .. } => return source.disposition(),
            Self::Panicked { .. } => (Processing::Unknown, Retry::Never),
        };
        Disposition::new(processing, retry)
    }

    /// How long the server asked to wait before trying again, if it said.
    pub fn retry_after(&self) -> Option<Duration> {
        self.disposition().retry_after()
    }

    /// Whether the request certainly never reached the server: the connection or the TLS
    /// handshake failed. Such a request is safe to send again even when it is not idempotent
    /// (a POST of counts), unlike one that timed out or broke mid-way.
    pub fn is_connect(&self) -> bool {
        match self {
            Self::Tls { .. } => true,
            Self::Transport { processing, .. } | Self::Timeout { processing, .. } => {
                *processing == Processing::NotSent
            }
            Self::Incomplete { source, .. } => source.is_connect(),
            _ => false,
        }
    }

    /// Whether the same request may succeed if sent again later (see
    /// [`Error::disposition`]): timeouts, transport failures, 408, 429 and 500/502/503/504.
    /// Configuration, validation, auth, TLS and decode errors, and bodies over the limit,
    /// are not.
    pub fn is_retryable(&self) -> bool {
        self.disposition().is_retryable()
    }
}

impl Error {
    /// Applies `edit` to every human-readable message in the error, nested ones included.
    pub(crate) fn edit_messages(&mut self, edit: &mut dyn FnMut(&mut String)) {
        match self {
            Self::Config { message, .. }
            | Self::InvalidInput { message, .. }
            | Self::Unauthenticated { message, .. }
            | Self::Forbidden { message, .. }
            | Self::NotFound { message, .. }
            | Self::RateLimited { message, .. }
            | Self::Api { message, .. }
            | Self::Unsupported { message, .. }
            | Self::Timeout { message, .. }
            | Self::Tls { message, .. }
            | Self::Transport { message, .. }
            | Self::Decode { message, .. }
            | Self::Panicked { message, .. } => edit(message),
            Self::Incomplete { source, .. } => source.edit_messages(edit),
            Self::BodyTooLarge { .. } => {}
        }
    }
}

/// Joins an error and its sources into one line: `a: b: c`.
pub(crate) fn chain_message(error: &(dyn StdError + 'static)) -> String {
    let mut message = error.to_string();
    let mut current = error.source();
    while let Some(source) = current {
        let text = source.to_string();
        // hyper and reqwest repeat their inner message at several levels.
        if !message.contains(&text) {
            message.push_str(": ");
            message.push_str(&text);
        }
        current = source.source();
    }
    message
}

/// Writes `text` with at most `max` characters, then `…`.
pub(crate) fn truncate_chars(text: &str, max: usize) -> String {
    let mut out = String::with_capacity(text.len().min(max + 3));
    for (count, ch) in text.chars().enumerate() {
        if count == max {
            out.push('…');
            return out;
        }
        out.push(ch);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_mapping_picks_the_variant() {
        assert!(matches!(
            Error::api("x", 401, None, "m"),
            Error::Unauthenticated { .. }
        ));
        assert!(matches!(
            Error::api("x", 403, None, "m"),
            Error::Forbidden { .. }
        ));
        assert!(matches!(
            Error::api("x", 404, None, "m"),
            Error::NotFound { .. }
        ));
        assert!(matches!(
            Error::api("x", 429, None, "m"),
            Error::RateLimited { .. }
        ));
        assert!(matches!(
            Error::api("x", 502, None, "m"),
            Error::Api { status: 502, .. }
        ));
    }

    #[test]
    fn accessors() {
        let err = Error::api(
            "outline",
            404,
            Some("NotFound".into()),
            "Access key \"9\" not found",
        );
        assert_eq!(err.backend(), "outline");
        assert_eq!(err.status(), Some(404));
        assert_eq!(err.code(), Some("NotFound"));
        assert!(!err.is_retryable());
        assert_eq!(
            err.to_string(),
            "outline: not found (HTTP 404 NotFound): Access key \"9\" not found"
        );

        let limited = Error::RateLimited {
            backend: "unleash",
            retry_after: Some(Duration::from_secs(51)),
            code: None,
            message: "Too many requests".into(),
            detail: None,
        };
        assert!(limited.is_retryable());
        assert_eq!(limited.retry_after(), Some(Duration::from_secs(51)));
        assert_eq!(
            limited.to_string(),
            "unleash: rate limited (HTTP 429), retry after 51s: Too many requests"
        );

        let incomplete = Error::Incomplete {
            backend: "appoptics",
            unsent: 300,
            items: "measurements",
            source: Box::new(Error::api("appoptics", 503, None, "unavailable")),
        };
        assert!(incomplete.is_retryable());
        assert_eq!(incomplete.status(), Some(503));
        assert_eq!(
            incomplete.to_string(),
            "appoptics: 300 measurements not delivered and still queued: the server answered HTTP 503: unavailable"
        );
    }

    #[test]
    fn retryable_statuses() {
        for status in [408, 429, 500, 502, 503, 504] {
            assert!(
                Error::api("x", status, None, "m").is_retryable(),
                "{status}"
            );
        }
        for status in [400, 401, 403, 404, 409, 422, 501] {
            assert!(
                !Error::api("x", status, None, "m").is_retryable(),
                "{status}"
            );
        }
    }

    #[test]
    fn an_empty_server_message_leaves_no_dangling_colon() {
        assert_eq!(
            Error::api("vumi", 500, Some("InternalServer".into()), " ").to_string(),
            "vumi: the server answered HTTP 500 InternalServer"
        );
    }

    #[test]
    fn a_body_over_the_limit_is_final() {
        let err = Error::BodyTooLarge {
            backend: "vumi",
            limit: 10,
        };
        assert!(!err.is_retryable());
        assert!(!err.disposition().may_resend(true));
    }

    #[test]
    fn errors_clone_with_their_sources() {
        let err = Error::transport(
            "unleash",
            Processing::ClosedBeforeResponse,
            "closed",
            Some(Arc::new(std::io::Error::other("eof"))),
        );
        let copy = err.clone();
        assert_eq!(copy.to_string(), err.to_string());
        assert!(StdError::source(&copy).is_some());
        assert!(copy.disposition().may_resend(false));
    }

    #[test]
    fn truncation_counts_characters_not_bytes() {
        assert_eq!(truncate_chars("ééé", 2), "éé…");
        assert_eq!(truncate_chars("ab", 2), "ab");
    }

    #[test]
    fn decode_display_names_the_path() {
        let err = Error::decode(
            "vumi",
            "[0].datapoints[2].x",
            "invalid type: string, expected u64",
        );
        assert_eq!(
            err.to_string(),
            "vumi: could not decode the response at `[0].datapoints[2].x`: invalid type: string, expected u64"
        );
    }
}
