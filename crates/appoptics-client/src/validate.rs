//! Client-side checks of what the AppOptics API would reject, done before any request is
//! sent, and the library's metric-name sanitizer.
//!
//! The rules are the API's own (reference §11):
//!
//! | what | rule |
//! |---|---|
//! | metric name | `A-Za-z0-9.:-_`, 1 to 255 characters |
//! | tag name | `[-.:_\w]`, 1 to 64 characters |
//! | tag value | `[-.:_?\\/\w ]`, 1 to 255 characters |
//! | tags per measurement | at most 50 |
//! | measurements per request | at most 1 000 |
//! | alert name | `A-Za-z0-9.:-_`, 1 to 255 characters (the reference lists `A-Za-z0-9.:-`, but the API documentation's own example, `production.web.frontend.response_time`, has underscores) |
//! | values | finite, decimal exponent at most 126 |
//!
//! `\w` is ASCII: letters, digits and `_`.
//!
//! ```
//! use appoptics_client::validate;
//!
//! assert!(validate::metric_name("app.requests:p99").is_ok());
//! assert!(validate::metric_name("bad name").is_err());
//! assert_eq!(validate::sanitize_metric_name("Just*toBeSafe"), "Just-toBeSafe");
//! assert_eq!(validate::sanitize_tag_value("/work/{ms}"), "/work/-ms-");
//! ```

use metrics_core::{Error, Result};

use crate::BACKEND;
use crate::model::Tags;

/// The most measurements one `POST /v1/measurements` may carry ("keep batch requests under
/// 1,000").
pub const MAX_MEASUREMENTS_PER_REQUEST: usize = 1000;
/// The most tags one measurement may carry.
pub const MAX_TAGS_PER_MEASUREMENT: usize = 50;
/// The longest metric name.
pub const MAX_METRIC_NAME_CHARS: usize = 255;
/// The longest tag name.
pub const MAX_TAG_NAME_CHARS: usize = 64;
/// The longest tag value.
pub const MAX_TAG_VALUE_CHARS: usize = 255;
/// The longest alert name.
pub const MAX_ALERT_NAME_CHARS: usize = 255;
/// The largest `resolution` (one week, in seconds).
pub const MAX_RESOLUTION_SECS: u32 = 604_800;
/// The largest page (`length`) of a list route.
pub const MAX_PAGE_LENGTH: u32 = 100;

fn is_word(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

fn is_metric_name_char(c: char) -> bool {
    is_word(c) || matches!(c, '.' | ':' | '-')
}

fn invalid(message: String) -> Error {
    Error::invalid_input(BACKEND, message)
}

/// Checks a metric name: 1 to 255 of `A-Za-z0-9.:-_`.
///
/// # Errors
///
/// [`Error::InvalidInput`] saying which character or length is wrong.
pub fn metric_name(name: &str) -> Result<()> {
    let length = name.chars().count();
    if length == 0 {
        return Err(invalid("a metric name must not be empty".to_owned()));
    }
    if length > MAX_METRIC_NAME_CHARS {
        return Err(invalid(format!(
            "metric name `{}…` is {length} characters long; the limit is {MAX_METRIC_NAME_CHARS} (Sanitizer::MetricName shortens names)",
            name.chars().take(32).collect::<String>()
        )));
    }
    if let Some(bad) = name.chars().find(|c| !is_metric_name_char(*c)) {
        return Err(invalid(format!(
            "metric name `{name}` contains {bad:?}; only A-Z a-z 0-9 . : - _ are allowed (Sanitizer::MetricName replaces the others)"
        )));
    }
    Ok(())
}

/// Checks a tag name: 1 to 64 of `A-Za-z0-9.:-_`.
///
/// # Errors
///
/// [`Error::InvalidInput`].
pub fn tag_name(name: &str) -> Result<()> {
    let length = name.chars().count();
    if length == 0 || length > MAX_TAG_NAME_CHARS {
        return Err(invalid(format!(
            "tag name `{name}` must be 1 to {MAX_TAG_NAME_CHARS} characters long, not {length}"
        )));
    }
    if let Some(bad) = name.chars().find(|c| !is_metric_name_char(*c)) {
        return Err(invalid(format!(
            "tag name `{name}` contains {bad:?}; only A-Z a-z 0-9 . : - _ are allowed"
        )));
    }
    Ok(())
}

/// Checks a tag value: 1 to 255 of `A-Za-z0-9.:-_?\/` and space.
///
/// # Errors
///
/// [`Error::InvalidInput`].
pub fn tag_value(name: &str, value: &str) -> Result<()> {
    let length = value.chars().count();
    if length == 0 || length > MAX_TAG_VALUE_CHARS {
        return Err(invalid(format!(
            "the value of tag `{name}` must be 1 to {MAX_TAG_VALUE_CHARS} characters long, not {length}"
        )));
    }
    if let Some(bad) = value.chars().find(|c| !is_tag_value_char(*c)) {
        return Err(invalid(format!(
            "the value `{value}` of tag `{name}` contains {bad:?}; only A-Z a-z 0-9 . : - _ ? \\ / and space are allowed"
        )));
    }
    Ok(())
}

/// Checks a tag set: at most 50 tags, each name and value valid.
///
/// # Errors
///
/// [`Error::InvalidInput`].
pub fn tags(tags: &Tags) -> Result<()> {
    if tags.len() > MAX_TAGS_PER_MEASUREMENT {
        return Err(invalid(format!(
            "{} tags on one measurement; the limit is {MAX_TAGS_PER_MEASUREMENT}",
            tags.len()
        )));
    }
    for (name, value) in tags {
        tag_name(name)?;
        tag_value(name, value)?;
    }
    Ok(())
}

/// Checks a value the API can store: finite, and with a decimal exponent of at most 126
/// (the server answers 400 above that).
///
/// # Errors
///
/// [`Error::InvalidInput`] naming `what` (`value`, `sum`, …).
pub fn value(what: &str, value: f64) -> Result<()> {
    if !value.is_finite() {
        return Err(invalid(format!(
            "{what} must be a finite number, not {value}"
        )));
    }
    if value.abs() >= 1e127 {
        return Err(invalid(format!(
            "{what} {value:e} is out of range; AppOptics accepts decimal exponents up to 126"
        )));
    }
    Ok(())
}

/// Checks an alert name: 1 to 255 of `A-Za-z0-9.:-_`.
///
/// # Errors
///
/// [`Error::InvalidInput`].
pub fn alert_name(name: &str) -> Result<()> {
    let length = name.chars().count();
    if length == 0 || length > MAX_ALERT_NAME_CHARS {
        return Err(invalid(format!(
            "alert name must be 1 to {MAX_ALERT_NAME_CHARS} characters long, not {length}"
        )));
    }
    if let Some(bad) = name.chars().find(|c| !is_metric_name_char(*c)) {
        return Err(invalid(format!(
            "alert name `{name}` contains {bad:?}; only A-Z a-z 0-9 . : - _ are allowed (dotted names such as `production.web.latency` are the convention)"
        )));
    }
    Ok(())
}

/// The library's `sanitize_metric_name`: every run of characters outside `A-Za-z0-9.:-_`
/// (whitespace, brackets, non-ASCII letters) becomes one `-`, then the first 255 characters
/// are kept.
///
/// ```
/// use appoptics_client::validate::sanitize_metric_name;
///
/// assert_eq!(sanitize_metric_name("café.latte"), "caf-.latte");
/// assert_eq!(sanitize_metric_name("   \t\nbat$$$*[]()m#@%^&=`~an"), "-bat-m-an");
/// assert_eq!(sanitize_metric_name(&"a".repeat(500)).len(), 255);
/// ```
pub fn sanitize_metric_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len().min(MAX_METRIC_NAME_CHARS));
    let mut in_run = false;
    for c in name.chars() {
        if is_metric_name_char(c) {
            out.push(c);
            in_run = false;
        } else if !in_run {
            out.push('-');
            in_run = true;
        }
    }
    // Every character left is ASCII, so bytes and characters agree.
    out.truncate(MAX_METRIC_NAME_CHARS);
    out
}

fn is_tag_value_char(c: char) -> bool {
    is_metric_name_char(c) || matches!(c, '?' | '\\' | '/' | ' ')
}

/// The tag-value counterpart of [`sanitize_metric_name`]: runs of characters a tag value
/// may not have become `-`, then the first 255 characters are kept. An empty value stays
/// empty (and is refused by [`tag_value`]): there is nothing to make of it.
///
/// ```
/// use appoptics_client::validate::sanitize_tag_value;
///
/// assert_eq!(sanitize_tag_value("/users/{id}/orders"), "/users/-id-/orders");
/// assert_eq!(sanitize_tag_value("eu-west 1"), "eu-west 1");
/// assert_eq!(sanitize_tag_value("Zürich»"), "Z-rich-");
/// ```
pub fn sanitize_tag_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len().min(MAX_TAG_VALUE_CHARS));
    let mut in_run = false;
    for c in value.chars() {
        if is_tag_value_char(c) {
            out.push(c);
            in_run = false;
        } else if !in_run {
            out.push('-');
            in_run = true;
        }
    }
    // Every character left is ASCII, so bytes and characters agree.
    out.truncate(MAX_TAG_VALUE_CHARS);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sanitized_tag_values_are_valid() {
        for value in [
            "/work/{ms}",
            "a\u{0}b",
            "{{{",
            "ok value/with:all_the-chars?\\",
            &"é".repeat(400),
            &"x".repeat(300),
        ] {
            let clean = sanitize_tag_value(value);
            assert!(tag_value("t", &clean).is_ok(), "{value:?} -> {clean:?}");
        }
        assert_eq!(sanitize_tag_value("/work/{ms}"), "/work/-ms-");
        assert_eq!(sanitize_tag_value("fine"), "fine");
        assert_eq!(sanitize_tag_value(""), "");
    }

    #[test]
    fn metric_names() {
        assert!(metric_name("abcdefghijklmnopqrstuvwxyz.:-_").is_ok());
        assert!(metric_name("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789").is_ok());
        assert!(metric_name("").is_err());
        assert!(metric_name(&"a".repeat(256)).is_err());
        assert!(metric_name(&"a".repeat(255)).is_ok());
        assert!(metric_name("a/b").is_err());
        assert!(metric_name("é").is_err());
    }

    #[test]
    fn tag_rules() {
        assert!(tag_name("region").is_ok());
        assert!(tag_name(&"t".repeat(65)).is_err());
        assert!(tag_name("a b").is_err());
        assert!(tag_name("*").is_err());
        assert!(tag_value("k", "us east/1?\\x").is_ok());
        assert!(tag_value("k", "").is_err());
        assert!(tag_value("k", &"v".repeat(256)).is_err());
        assert!(tag_value("k", "a,b").is_err());
        let many: Tags = (0..51).map(|i| (format!("t{i}"), "v".to_owned())).collect();
        assert!(tags(&many).is_err());
        let fifty: Tags = (0..50).map(|i| (format!("t{i}"), "v".to_owned())).collect();
        assert!(tags(&fifty).is_ok());
    }

    #[test]
    fn values() {
        assert!(value("value", 1.5).is_ok());
        assert!(value("value", f64::NAN).is_err());
        assert!(value("value", f64::INFINITY).is_err());
        assert!(value("value", 1e127).is_err());
        assert!(value("value", 9.9e126).is_ok());
        assert!(value("value", 1e-200).is_ok());
    }

    #[test]
    fn alert_names() {
        assert!(alert_name("production.web.frontend.response_time").is_ok());
        assert!(alert_name("my alert").is_err());
        assert!(alert_name("production.web:latency-p99").is_ok());
        assert!(alert_name("").is_err());
    }

    #[test]
    fn sanitizer() {
        assert_eq!(
            sanitize_metric_name("abcdefghijklmnopqrstuvwxyz.:-_"),
            "abcdefghijklmnopqrstuvwxyz.:-_"
        );
        assert_eq!(
            sanitize_metric_name("ABCDEFGHIJKLMNOPQRSTUVWXYZ.:-_"),
            "ABCDEFGHIJKLMNOPQRSTUVWXYZ.:-_"
        );
        assert_eq!(sanitize_metric_name(&"a".repeat(500)), "a".repeat(255));
        assert_eq!(
            sanitize_metric_name("   \t\nbat$$$*[]()m#@%^&=`~an"),
            "-bat-m-an"
        );
        assert_eq!(sanitize_metric_name("Just*toBeSafe"), "Just-toBeSafe");
        assert_eq!(sanitize_metric_name("café.latte"), "caf-.latte");
    }
}
