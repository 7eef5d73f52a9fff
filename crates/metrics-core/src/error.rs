//! The one error type every backend returns.

use std::error::Error as StdError;
use std::time::Duration;

/// A boxed error source. Keeping sources boxed keeps `reqwest` and `serde_json` out of the
/// public API: callers can walk [`std::error::Error::source`] without naming those crates.
pub type BoxError = Box<dyn StdError + Send + Sync + 'static>;

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
#[derive(Debug, thiserror::Error)]
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
    #[error("{backend}: the server rejected the credentials (HTTP 401{}): {message}; check the token or password", code_suffix(code.as_deref()))]
    Unauthenticated {
        /// The backend that reported the error.
        backend: &'static str,
        /// The server's own error code, when its body has one.
        code: Option<String>,
        /// The server's message.
        message: String,
    },

    /// HTTP 403: the credentials are valid but not allowed to do this.
    #[error("{backend}: the credentials are not allowed to do this (HTTP 403{}): {message}", code_suffix(code.as_deref()))]
    Forbidden {
        /// The backend that reported the error.
        backend: &'static str,
        /// The server's own error code, when its body has one.
        code: Option<String>,
        /// The server's message.
        message: String,
    },

    /// HTTP 404: the resource does not exist.
    #[error("{backend}: not found (HTTP 404{}): {message}", code_suffix(code.as_deref()))]
    NotFound {
        /// The backend that reported the error.
        backend: &'static str,
        /// The server's own error code, when its body has one.
        code: Option<String>,
        /// The server's message.
        message: String,
    },

    /// HTTP 429: too many requests. Retried automatically where safe; this is what is left
    /// when retries ran out.
    #[error("{backend}: rate limited (HTTP 429{}){}: {message}", code_suffix(code.as_deref()), retry_after_suffix(*retry_after))]
    RateLimited {
        /// The backend that reported the error.
        backend: &'static str,
        /// How long the server asked to wait (`Retry-After`), if it said.
        retry_after: Option<Duration>,
        /// The server's own error code, when its body has one.
        code: Option<String>,
        /// The server's message.
        message: String,
    },

    /// Any other HTTP error status, with the server's own code and message.
    #[error("{backend}: the server answered HTTP {status}{}{}: {message}", code_suffix(code.as_deref()), retry_after_suffix(*retry_after))]
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
        source: Option<BoxError>,
    },

    /// The connection could not be made, broke, or the body ended early.
    #[error("{backend}: {message}")]
    Transport {
        /// The backend that reported the error.
        backend: &'static str,
        /// What happened, including the cause chain (never a URL).
        message: String,
        /// The underlying error.
        #[source]
        source: Option<BoxError>,
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
    #[error("{backend}: {unsent} item(s) were not delivered and remain queued: {source}")]
    Incomplete {
        /// The backend that reported the error.
        backend: &'static str,
        /// How many items (measurements, buckets) are still waiting.
        unsent: usize,
        /// Why they were not delivered.
        #[source]
        source: Box<Error>,
    },
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

    /// An [`Error::Timeout`] error.
    pub fn timeout(backend: &'static str, message: impl Into<String>) -> Self {
        Self::Timeout {
            backend,
            message: message.into(),
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

    /// The error for an HTTP error status: 401, 403, 404 and 429 get their own variants,
    /// everything else is [`Error::Api`].
    pub fn api(
        backend: &'static str,
        status: u16,
        code: Option<String>,
        message: impl Into<String>,
    ) -> Self {
        let message = message.into();
        match status {
            401 => Self::Unauthenticated {
                backend,
                code,
                message,
            },
            403 => Self::Forbidden {
                backend,
                code,
                message,
            },
            404 => Self::NotFound {
                backend,
                code,
                message,
            },
            429 => Self::RateLimited {
                backend,
                retry_after: None,
                code,
                message,
            },
            _ => Self::Api {
                backend,
                status,
                retry_after: None,
                code,
                message,
            },
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
            | Self::Incomplete { backend, .. } => backend,
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

    /// How long the server asked to wait before trying again, if it said.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::RateLimited { retry_after, .. } | Self::Api { retry_after, .. } => *retry_after,
            Self::Incomplete { source, .. } => source.retry_after(),
            _ => None,
        }
    }

    /// Whether the request certainly never reached the server: the connection or the TLS
    /// handshake failed. Such a request is safe to send again even when it is not idempotent
    /// (a POST of counts), unlike one that timed out or broke mid-way.
    pub fn is_connect(&self) -> bool {
        match self {
            Self::Tls { .. } => true,
            Self::Transport {
                source: Some(source),
                ..
            } => source
                .downcast_ref::<reqwest::Error>()
                .is_some_and(reqwest::Error::is_connect),
            Self::Incomplete { source, .. } => source.is_connect(),
            _ => false,
        }
    }

    /// Whether the same request may succeed if sent again later: timeouts, transport
    /// failures, 408, 429 and 5xx. Configuration, validation, auth and decode errors are not.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::RateLimited { .. } | Self::Timeout { .. } | Self::Transport { .. } => true,
            Self::Api { status, .. } => is_retryable_status(*status),
            Self::Incomplete { source, .. } => source.is_retryable(),
            _ => false,
        }
    }
}

impl Error {
    /// Applies `edit` to every human-readable message in the error, nested ones included. The
    /// pipeline uses it to scrub a secret URL path from texts that echo the request path.
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
            | Self::Decode { message, .. } => edit(message),
            Self::Incomplete { source, .. } => source.edit_messages(edit),
            Self::BodyTooLarge { .. } => {}
        }
    }
}

/// Statuses that say "try again": request timeout, too many requests, and server errors
/// other than 501 (which will not change on a retry).
pub(crate) fn is_retryable_status(status: u16) -> bool {
    matches!(status, 408 | 429 | 500 | 502 | 503 | 504)
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
            source: Box::new(Error::api("appoptics", 503, None, "unavailable")),
        };
        assert!(incomplete.is_retryable());
        assert_eq!(incomplete.status(), Some(503));
        assert!(incomplete.to_string().contains("300 item(s)"));
    }

    #[test]
    fn retryable_statuses() {
        for status in [408, 429, 500, 502, 503, 504] {
            assert!(is_retryable_status(status), "{status}");
        }
        for status in [400, 401, 403, 404, 409, 422, 501] {
            assert!(!is_retryable_status(status), "{status}");
        }
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
