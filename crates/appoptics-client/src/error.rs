//! AppOptics error bodies and rate-limit headers.
//!
//! The API reports errors in several shapes (reference §2): `{"errors":{"params":{..}}}`,
//! `{"errors":{"request":[..]}}`, `{"errors":{"system":[..]}}`, a list `{"errors":[..]}`, a
//! rate-limit `{"request_time":..,"error":".."}`, `{"message":".."}`, or plain text (401 on a
//! POST). [`parse_error_body`] turns every shape into one message in the Python library's
//! format (`params: name: is not present, request: Not found`), except that list payloads are
//! joined as `a, b` instead of a Python repr and nested objects are flattened fully.
//!
//! Every error answer also gets a typed reading, an [`AppOpticsError`] returned by
//! [`Error::detail`]: what kind of failure it is (an account rate limit, an entity that
//! already exists, a 2xx that still reported errors), the server's reasons one by one, and
//! the rate-limit headers of the answer. Classify by it, not by message or code text.
//!
//! Rate limits: every response carries `X-Librato-RateLimit-Std` (and measurement posts
//! `X-Librato-RateLimit-Agg`), a comma-separated `key=value` list. On a 429, and on the 403
//! the API sends when the whole account is limited, the parsed limits are appended to the
//! error's message, and the time until the exhausted limit resets becomes the error's
//! [`retry_after`](Error::retry_after) (AppOptics sends no `Retry-After`; one that is present
//! wins).
//!
//! ```
//! use std::time::Duration;
//! use appoptics_client::error::{parse_error_body, AppOpticsError, RateLimit};
//! use metrics_core::reqwest::{StatusCode, header::{HeaderMap, HeaderValue}};
//!
//! let mut headers = HeaderMap::new();
//! headers.insert("x-librato-ratelimit-std", HeaderValue::from_static("limit=300,remaining=0,reset=42"));
//! let body = br#"{"errors":{"request":["Rate limit exceeded"]}}"#;
//! let parsed = parse_error_body(StatusCode::TOO_MANY_REQUESTS, &headers, body);
//! assert_eq!(
//!     parsed.message.as_deref(),
//!     Some("request: Rate limit exceeded (rate limit std: limit=300, remaining=0, reset in 42 s)")
//! );
//! assert_eq!(parsed.retry_after, Some(Duration::from_secs(42)));
//! assert_eq!(RateLimit::parse("limit=300,remaining=7").unwrap().remaining, Some(7));
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use metrics_core::Error;
use metrics_core::http::{ErrorBody, body_snippet};
use metrics_core::reqwest::StatusCode;
use metrics_core::reqwest::header::HeaderMap;
use serde_json::Value;

/// The header with the standard (per-token) API limit.
pub const RATE_LIMIT_STD_HEADER: &str = "x-librato-ratelimit-std";
/// The header with the aggregate (measurement ingestion) limit.
pub const RATE_LIMIT_AGG_HEADER: &str = "x-librato-ratelimit-agg";

/// The [`Error::code`] text of an account-level rate limit (a 403 with
/// `{"request_time":..,"error":".."}`, reported as [`Error::RateLimited`]). For display only:
/// classify with [`AppOpticsError::kind`].
const CODE_RATE_LIMITED: &str = "rate_limited";
/// The [`Error::code`] text of a 422 (display only).
const CODE_ALREADY_EXISTS: &str = "already_exists";
/// The [`Error::code`] text of a 2xx that still carried `errors` (display only).
const CODE_PARTIAL_FAILURE: &str = "partial_failure";

/// What kind of failure an AppOptics error answer is, beyond its status.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AppOpticsErrorKind {
    /// The whole account is rate limited: a 403 with `request_time` and `error`, reported
    /// as [`Error::RateLimited`].
    AccountRateLimited,
    /// A 429: this token's limit (or an unparseable measurements body, which the API also
    /// answers with 429).
    RateLimited,
    /// A 422: the entity already exists (create it with PUT instead).
    AlreadyExists,
    /// A 2xx whose body still reported `errors`: the request was accepted, and some of it
    /// refused.
    PartialFailure,
    /// Any other error answer.
    Other,
}

/// AppOptics' own reading of an error answer, attached to every error made from one:
/// `error.detail::<AppOpticsError>()` or [`AppOpticsError::of`].
///
/// ```
/// use appoptics_client::error::{parse_error_body, AppOpticsError, AppOpticsErrorKind};
/// use metrics_core::reqwest::{StatusCode, header::HeaderMap};
///
/// let body = br#"{"errors":{"params":{"name":["is not present"],"time":["too far in past"]}}}"#;
/// let parsed = parse_error_body(StatusCode::BAD_REQUEST, &HeaderMap::new(), body);
/// let detail = parsed.detail.unwrap();
/// let detail = detail.downcast_ref::<AppOpticsError>().unwrap();
/// assert_eq!(detail.kind, AppOpticsErrorKind::Other);
/// assert_eq!(detail.reasons, ["params: name: is not present", "params: time: too far in past"]);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct AppOpticsError {
    /// The kind of failure.
    pub kind: AppOpticsErrorKind,
    /// The server's reasons, one per item of its `errors` (or its one `error`/`message`),
    /// rendered as in the message (`params: name: is not present`).
    pub reasons: Vec<String>,
    /// The rate-limit headers of the answer.
    pub rate_limits: RateLimits,
}

impl AppOpticsError {
    /// The AppOptics detail of `error`, when it came from an AppOptics error answer
    /// (also through [`Error::Incomplete`]).
    pub fn of(error: &Error) -> Option<&Self> {
        error.detail::<Self>().or_else(|| {
            error
                .detail::<crate::queue::RejectedMeasurements>()?
                .server
                .as_ref()
        })
    }

    /// How long until the limit that ran out resets, from the rate-limit headers: the
    /// latest reset among the limits with nothing remaining, or else the latest reset the
    /// headers give.
    pub fn rate_limit_reset(&self) -> Option<Duration> {
        self.rate_limits.reset()
    }
}

impl fmt::Display for AppOpticsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.kind {
            AppOpticsErrorKind::AccountRateLimited => "account rate limited",
            AppOpticsErrorKind::RateLimited => "rate limited",
            AppOpticsErrorKind::AlreadyExists => "already exists",
            AppOpticsErrorKind::PartialFailure => "accepted with errors",
            AppOpticsErrorKind::Other => "error",
        };
        write!(f, "AppOptics {kind}")?;
        if !self.reasons.is_empty() {
            write!(f, ": {}", self.reasons.join(", "))?;
        }
        Ok(())
    }
}

impl std::error::Error for AppOpticsError {}

/// Whether `error` is the API's 422 "entity already exists".
///
/// ```
/// use appoptics_client::error::is_already_exists;
/// let err = metrics_core::Error::api("appoptics", 422, None, "name: exists");
/// assert!(is_already_exists(&err));
/// ```
pub fn is_already_exists(error: &Error) -> bool {
    match AppOpticsError::of(error) {
        Some(detail) => detail.kind == AppOpticsErrorKind::AlreadyExists,
        None => error.status() == Some(422),
    }
}

/// Whether `error` is an account-level or per-token rate limit.
pub fn is_rate_limited(error: &Error) -> bool {
    matches!(
        AppOpticsError::of(error).map(|d| d.kind),
        Some(AppOpticsErrorKind::AccountRateLimited | AppOpticsErrorKind::RateLimited)
    ) || error.status() == Some(429)
}

/// One rate-limit header, parsed leniently: unknown keys are kept, missing ones are `None`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RateLimit {
    /// The capacity of the limit.
    pub limit: Option<u64>,
    /// What is left of it.
    pub remaining: Option<u64>,
    /// Seconds until it resets.
    pub reset: Option<u64>,
    /// Other keys, as sent.
    pub other: BTreeMap<String, String>,
}

impl RateLimit {
    /// Parses `limit=300,remaining=12,reset=35`. `None` when nothing in it is `key=value`.
    pub fn parse(value: &str) -> Option<Self> {
        let mut limit = Self::default();
        let mut any = false;
        for part in value.split(',') {
            let Some((key, raw)) = part.split_once('=') else {
                continue;
            };
            let key = key.trim().to_ascii_lowercase();
            let raw = raw.trim();
            any = true;
            let number = raw.parse::<u64>().ok();
            match key.as_str() {
                "limit" if number.is_some() => limit.limit = number,
                "remaining" if number.is_some() => limit.remaining = number,
                "reset" if number.is_some() => limit.reset = number,
                _ => {
                    limit.other.insert(key, raw.to_owned());
                }
            }
        }
        any.then_some(limit)
    }
}

impl fmt::Display for RateLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        if let Some(limit) = self.limit {
            parts.push(format!("limit={limit}"));
        }
        if let Some(remaining) = self.remaining {
            parts.push(format!("remaining={remaining}"));
        }
        if let Some(reset) = self.reset {
            parts.push(format!("reset in {reset} s"));
        }
        parts.extend(self.other.iter().map(|(k, v)| format!("{k}={v}")));
        f.write_str(&parts.join(", "))
    }
}

/// The rate limits of a response.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RateLimits {
    /// `X-Librato-RateLimit-Std`.
    pub std: Option<RateLimit>,
    /// `X-Librato-RateLimit-Agg`.
    pub agg: Option<RateLimit>,
}

impl RateLimits {
    /// Reads both headers; a missing or unreadable header is `None` (unknown).
    pub fn from_headers(headers: &HeaderMap) -> Self {
        let read = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .and_then(RateLimit::parse)
        };
        Self {
            std: read(RATE_LIMIT_STD_HEADER),
            agg: read(RATE_LIMIT_AGG_HEADER),
        }
    }

    /// Whether neither header was present.
    pub fn is_empty(&self) -> bool {
        self.std.is_none() && self.agg.is_none()
    }

    /// How long until capacity comes back: the latest `reset` among the limits with
    /// `remaining=0`, or, when none says it ran out, the latest `reset` given.
    ///
    /// ```
    /// use std::time::Duration;
    /// use appoptics_client::error::{RateLimit, RateLimits};
    ///
    /// let limits = RateLimits {
    ///     std: RateLimit::parse("limit=300,remaining=12,reset=50"),
    ///     agg: RateLimit::parse("limit=1000,remaining=0,reset=7"),
    /// };
    /// assert_eq!(limits.reset(), Some(Duration::from_secs(7)));
    /// ```
    pub fn reset(&self) -> Option<Duration> {
        let limits = || self.std.iter().chain(self.agg.iter());
        let latest = |exhausted_only: bool| {
            limits()
                .filter(|l| !exhausted_only || l.remaining == Some(0))
                .filter_map(|l| l.reset)
                .max()
        };
        latest(true)
            .or_else(|| latest(false))
            .map(Duration::from_secs)
    }
}

impl fmt::Display for RateLimits {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        if let Some(std) = &self.std {
            parts.push(format!("rate limit std: {std}"));
        }
        if let Some(agg) = &self.agg {
            parts.push(format!("rate limit agg: {agg}"));
        }
        f.write_str(&parts.join("; "))
    }
}

/// Renders a value of an `errors` object: strings as they are, lists joined with `, `,
/// objects as `key: value` pairs (all keys, recursively).
fn flatten(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Array(items) => items.iter().map(flatten).collect::<Vec<_>>().join(", "),
        Value::Object(map) => map
            .iter()
            .map(|(k, v)| format!("{k}: {}", flatten(v)))
            .collect::<Vec<_>>()
            .join(", "),
        Value::Null => "null".to_owned(),
        other => other.to_string(),
    }
}

/// Renders an `errors` payload in the library's format: for an object, each string value
/// as `key: value`, each list item as its own `key: item`, each nested object as
/// `key: sub: …`; a list as its items joined with `, `. Object keys come in alphabetical
/// order.
///
/// ```
/// use appoptics_client::error::render_errors;
/// let errors = serde_json::json!({"request": ["Not found", "Another error"]});
/// assert_eq!(render_errors(&errors), "request: Not found, request: Another error");
/// let nested = serde_json::json!({"params": {"conditions": {"duration": ["must be set"]}}});
/// assert_eq!(render_errors(&nested), "params: conditions: duration: must be set");
/// ```
pub fn render_errors(errors: &Value) -> String {
    error_reasons(errors).join(", ")
}

/// The pieces [`render_errors`] joins: one reason per item.
pub(crate) fn error_reasons(errors: &Value) -> Vec<String> {
    match errors {
        Value::Object(map) => {
            let mut pieces = Vec::new();
            for (key, value) in map {
                match value {
                    Value::Array(items) => {
                        pieces.extend(items.iter().map(|item| format!("{key}: {}", flatten(item))));
                    }
                    Value::Object(sub) => {
                        pieces.extend(
                            sub.iter()
                                .map(|(k, v)| format!("{key}: {k}: {}", flatten(v))),
                        );
                    }
                    other => pieces.push(format!("{key}: {}", flatten(other))),
                }
            }
            pieces
        }
        Value::Array(items) => items.iter().map(flatten).collect(),
        other => vec![flatten(other)],
    }
}

/// The typed detail of a 2xx that still reported `errors`.
pub(crate) fn partial_failure(errors: &Value, headers: &HeaderMap) -> AppOpticsError {
    AppOpticsError {
        kind: AppOpticsErrorKind::PartialFailure,
        reasons: error_reasons(errors),
        rate_limits: RateLimits::from_headers(headers),
    }
}

/// The [`Error::code`] text of a partial failure.
pub(crate) fn partial_failure_code() -> String {
    CODE_PARTIAL_FAILURE.to_owned()
}

/// Whether an `errors` value reports anything (a non-empty list, object or string).
pub(crate) fn errors_present(errors: &Value) -> bool {
    match errors {
        Value::Null => false,
        Value::Array(items) => !items.is_empty(),
        Value::Object(map) => !map.is_empty(),
        Value::String(s) => !s.is_empty(),
        _ => true,
    }
}

/// The error body parser the client installs in its HTTP pipeline.
///
/// Order as in the library: a string payload as is; an object's `error` (wins over
/// `errors`); `message`; then `errors` rendered by [`render_errors`]. Attaches an
/// [`AppOpticsError`] (the account-limit 403, 429 and 422 get their own kinds); on 429 or a
/// rate-limit 403 appends the parsed rate-limit headers to the message and returns the time
/// until the exhausted limit resets as the wait.
pub fn parse_error_body(status: StatusCode, headers: &HeaderMap, body: &[u8]) -> ErrorBody {
    let mut kind = AppOpticsErrorKind::Other;
    let mut reasons = Vec::new();
    let mut message = match serde_json::from_slice::<Value>(body) {
        Ok(Value::String(s)) => {
            reasons.push(s.clone());
            Some(s)
        }
        Ok(Value::Object(object)) => {
            if let Some(error) = object.get("error").filter(|v| !v.is_null()) {
                if status == StatusCode::FORBIDDEN && object.contains_key("request_time") {
                    kind = AppOpticsErrorKind::AccountRateLimited;
                }
                reasons.push(flatten(error));
                Some(flatten(error))
            } else if let Some(message) = object.get("message").filter(|v| !v.is_null()) {
                reasons.push(flatten(message));
                Some(flatten(message))
            } else if let Some(errors) = object.get("errors").filter(|v| errors_present(v)) {
                reasons = error_reasons(errors);
                Some(reasons.join(", "))
            } else {
                body_snippet(body)
            }
        }
        Ok(Value::Null) => None,
        Ok(_) | Err(_) => {
            let snippet = body_snippet(body);
            reasons.extend(snippet.clone());
            snippet
        }
    };
    let mut code = None;
    if status == StatusCode::UNPROCESSABLE_ENTITY {
        kind = AppOpticsErrorKind::AlreadyExists;
        code = Some(CODE_ALREADY_EXISTS.to_owned());
        let text = message.unwrap_or_else(|| "the entity already exists".to_owned());
        message = Some(format!(
            "{text} (it already exists; update it with PUT instead)"
        ));
    }
    if status == StatusCode::TOO_MANY_REQUESTS {
        kind = AppOpticsErrorKind::RateLimited;
    }
    if kind == AppOpticsErrorKind::AccountRateLimited {
        code = Some(CODE_RATE_LIMITED.to_owned());
    }
    let rate_limits = RateLimits::from_headers(headers);
    let limited = matches!(
        kind,
        AppOpticsErrorKind::RateLimited | AppOpticsErrorKind::AccountRateLimited
    );
    let mut wait = None;
    if limited && !rate_limits.is_empty() {
        let text = message.unwrap_or_else(|| "rate limited".to_owned());
        message = Some(format!("{text} ({rate_limits})"));
        wait = rate_limits.reset();
    }
    let detail = AppOpticsError {
        kind,
        reasons,
        rate_limits,
    };
    ErrorBody::new(code, message)
        .with_detail(Arc::new(detail))
        .with_retry_after(wait)
}

#[cfg(test)]
mod tests {
    use super::*;
    use metrics_core::reqwest::header::HeaderValue;

    fn message(status: u16, body: &str) -> Option<String> {
        parse_error_body(
            StatusCode::from_u16(status).unwrap(),
            &HeaderMap::new(),
            body.as_bytes(),
        )
        .message
    }

    #[test]
    fn shapes() {
        assert_eq!(
            message(400, r#"{"errors":{"request":"test error message"}}"#).as_deref(),
            Some("request: test error message")
        );
        assert_eq!(
            message(
                400,
                r#"{"errors":{"params":{"time":["too far in past"],"name":"mymetricname"}}}"#
            )
            .as_deref(),
            // Keys come in alphabetical order (the library kept the server's order).
            Some("params: name: mymetricname, params: time: too far in past")
        );
        assert_eq!(
            message(
                400,
                r#"{"errors":{"params":{"name":["duplicate etc","bad character etc"]}}}"#
            )
            .as_deref(),
            Some("params: name: duplicate etc, bad character etc")
        );
        assert_eq!(
            message(404, r#"{"message":"Not found"}"#).as_deref(),
            Some("Not found")
        );
        assert_eq!(message(400, "").as_deref(), None);
        assert_eq!(message(400, "null").as_deref(), None);
        assert_eq!(
            message(400, r#""a standard message""#).as_deref(),
            Some("a standard message")
        );
        assert_eq!(
            message(401, "Credentials are required to access this resource.").as_deref(),
            Some("Credentials are required to access this resource.")
        );
    }

    #[test]
    fn error_wins_over_errors_and_marks_rate_limit() {
        let parsed = parse_error_body(
            StatusCode::FORBIDDEN,
            &HeaderMap::new(),
            br#"{"request_time":1467306906,"error":"You have hit the rate limit, etc","errors":{"x":"y"}}"#,
        );
        assert_eq!(
            parsed.message.as_deref(),
            Some("You have hit the rate limit, etc")
        );
        assert_eq!(parsed.code.as_deref(), Some(CODE_RATE_LIMITED));
        assert_eq!(kind(&parsed), AppOpticsErrorKind::AccountRateLimited);
    }

    fn kind(parsed: &ErrorBody) -> AppOpticsErrorKind {
        parsed
            .detail
            .as_deref()
            .and_then(|d| d.downcast_ref::<AppOpticsError>())
            .map(|d| d.kind)
            .unwrap()
    }

    /// The wait of a 429 comes from the limit that ran out; before, it was only in the
    /// message text and `retry_after()` was `None`.
    #[test]
    fn a_rate_limit_answer_says_how_long_to_wait() {
        let mut headers = HeaderMap::new();
        headers.insert(
            RATE_LIMIT_STD_HEADER,
            HeaderValue::from_static("limit=300,remaining=120,reset=3000"),
        );
        headers.insert(
            RATE_LIMIT_AGG_HEADER,
            HeaderValue::from_static("limit=1000,remaining=0,reset=17"),
        );
        let parsed = parse_error_body(
            StatusCode::TOO_MANY_REQUESTS,
            &headers,
            br#"{"errors":{"request":["Rate limit exceeded"]}}"#,
        );
        assert_eq!(parsed.retry_after, Some(Duration::from_secs(17)));
        assert_eq!(kind(&parsed), AppOpticsErrorKind::RateLimited);
        // Without headers there is no wait to give.
        let bare = parse_error_body(StatusCode::TOO_MANY_REQUESTS, &HeaderMap::new(), b"");
        assert_eq!(bare.retry_after, None);
        // Other statuses never get one from these headers.
        let other = parse_error_body(StatusCode::BAD_REQUEST, &headers, b"");
        assert_eq!(other.retry_after, None);
    }

    #[test]
    fn already_exists() {
        let parsed = parse_error_body(
            StatusCode::UNPROCESSABLE_ENTITY,
            &HeaderMap::new(),
            br#"{"errors":["a","b"]}"#,
        );
        assert_eq!(parsed.code.as_deref(), Some(CODE_ALREADY_EXISTS));
        assert_eq!(kind(&parsed), AppOpticsErrorKind::AlreadyExists);
        assert!(parsed.message.unwrap().starts_with("a, b"));
    }

    #[test]
    fn rate_limit_headers() {
        let mut headers = HeaderMap::new();
        headers.insert(
            RATE_LIMIT_STD_HEADER,
            HeaderValue::from_static("remaining=101"),
        );
        headers.insert(
            RATE_LIMIT_AGG_HEADER,
            HeaderValue::from_static("limit=1000, remaining=0, reset=12, burst=x"),
        );
        let limits = RateLimits::from_headers(&headers);
        assert_eq!(limits.std.as_ref().unwrap().remaining, Some(101));
        let agg = limits.agg.as_ref().unwrap();
        assert_eq!(
            (agg.limit, agg.remaining, agg.reset),
            (Some(1000), Some(0), Some(12))
        );
        assert_eq!(agg.other["burst"], "x");
        assert!(RateLimit::parse("garbage").is_none());
        assert!(RateLimits::from_headers(&HeaderMap::new()).is_empty());
    }
}
