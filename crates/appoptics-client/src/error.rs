//! AppOptics error bodies and rate-limit headers.
//!
//! The API reports errors in several shapes (reference §2): `{"errors":{"params":{..}}}`,
//! `{"errors":{"request":[..]}}`, `{"errors":{"system":[..]}}`, a list `{"errors":[..]}`, a
//! rate-limit `{"request_time":..,"error":".."}`, `{"message":".."}`, or plain text (401 on a
//! POST). [`parse_error_body`] turns every shape into one message in the Python library's
//! format (`params: name: is not present, request: Not found`), except that list payloads are
//! joined as `a, b` instead of a Python repr and nested objects are flattened fully.
//!
//! Rate limits: every response carries `X-Librato-RateLimit-Std` (and measurement posts
//! `X-Librato-RateLimit-Agg`), a comma-separated `key=value` list. On a 429, and on the 403
//! the API sends when the whole account is limited, the parsed limits are appended to the
//! error's message, so the error says when capacity comes back.
//!
//! ```
//! use appoptics_client::error::{parse_error_body, RateLimit};
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
//! assert_eq!(RateLimit::parse("limit=300,remaining=7").unwrap().remaining, Some(7));
//! ```

use std::collections::BTreeMap;
use std::fmt;

use metrics_core::Error;
use metrics_core::http::{ErrorBody, body_snippet};
use metrics_core::reqwest::StatusCode;
use metrics_core::reqwest::header::HeaderMap;
use serde_json::Value;

/// The header with the standard (per-token) API limit.
pub const RATE_LIMIT_STD_HEADER: &str = "x-librato-ratelimit-std";
/// The header with the aggregate (measurement ingestion) limit.
pub const RATE_LIMIT_AGG_HEADER: &str = "x-librato-ratelimit-agg";

/// The [`Error::code`] of an account-level rate limit the server sent as a 403 with
/// `{"request_time":..,"error":".."}`; the client reports it as [`Error::RateLimited`].
pub const CODE_RATE_LIMITED: &str = "rate_limited";
/// The [`Error::code`] of a 422: the entity already exists (create it with PUT instead).
pub const CODE_ALREADY_EXISTS: &str = "already_exists";
/// The [`Error::code`] of a 2xx response that still carried `errors`.
pub const CODE_PARTIAL_FAILURE: &str = "partial_failure";

/// Whether `error` is the API's 422 "entity already exists".
///
/// ```
/// use appoptics_client::error::is_already_exists;
/// let err = metrics_core::Error::api("appoptics", 422, Some("already_exists".into()), "name: exists");
/// assert!(is_already_exists(&err));
/// ```
pub fn is_already_exists(error: &Error) -> bool {
    error.status() == Some(422)
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
            pieces.join(", ")
        }
        other => flatten(other),
    }
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
/// `errors`); `message`; then `errors` rendered by [`render_errors`]. Sets
/// [`CODE_RATE_LIMITED`] for the account-limit 403 and [`CODE_ALREADY_EXISTS`] for 422, and
/// on 429 or a rate-limit 403 appends the parsed rate-limit headers.
pub fn parse_error_body(status: StatusCode, headers: &HeaderMap, body: &[u8]) -> ErrorBody {
    let mut code = None;
    let mut message = match serde_json::from_slice::<Value>(body) {
        Ok(Value::String(s)) => Some(s),
        Ok(Value::Object(object)) => {
            if let Some(error) = object.get("error").filter(|v| !v.is_null()) {
                if status == StatusCode::FORBIDDEN && object.contains_key("request_time") {
                    code = Some(CODE_RATE_LIMITED.to_owned());
                }
                Some(flatten(error))
            } else if let Some(message) = object.get("message").filter(|v| !v.is_null()) {
                Some(flatten(message))
            } else if let Some(errors) = object.get("errors").filter(|v| errors_present(v)) {
                Some(render_errors(errors))
            } else {
                body_snippet(body)
            }
        }
        Ok(Value::Null) => None,
        Ok(_) | Err(_) => body_snippet(body),
    };
    if status == StatusCode::UNPROCESSABLE_ENTITY {
        code = Some(CODE_ALREADY_EXISTS.to_owned());
        let text = message.unwrap_or_else(|| "the entity already exists".to_owned());
        message = Some(format!(
            "{text} (it already exists; update it with PUT instead)"
        ));
    }
    if status == StatusCode::TOO_MANY_REQUESTS || code.as_deref() == Some(CODE_RATE_LIMITED) {
        let limits = RateLimits::from_headers(headers);
        if !limits.is_empty() {
            let text = message.unwrap_or_else(|| "rate limited".to_owned());
            message = Some(format!("{text} ({limits})"));
        }
    }
    ErrorBody::new(code, message)
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
    }

    #[test]
    fn already_exists() {
        let parsed = parse_error_body(
            StatusCode::UNPROCESSABLE_ENTITY,
            &HeaderMap::new(),
            br#"{"errors":["a","b"]}"#,
        );
        assert_eq!(parsed.code.as_deref(), Some(CODE_ALREADY_EXISTS));
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
