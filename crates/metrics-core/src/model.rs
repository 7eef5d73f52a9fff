//! The backend-neutral series model every [`MetricsSource`](crate::MetricsSource) returns.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// One time series: a name, labels, what kind of value it is, and its points.
///
/// Names and label names follow the Prometheus/OpenMetrics rules (`[a-zA-Z_:][a-zA-Z0-9_:]*`
/// for names, no `:` in label names, no `__` at the start of a label name), so a renderer or
/// exporter can map them one to one. The constructors replace any other character with `_`
/// (see [`sanitize_name`]). The fields are public and a series can also be deserialized, so
/// nothing guarantees that a `Series` went through the constructors: the
/// [renderers](crate::render) apply the same rules again when they write a name.
///
/// ```
/// use chrono::{TimeZone, Utc};
/// use metrics_core::{Series, SeriesKind, Unit};
///
/// let series = Series::new("outline_access_key_bytes_transferred", SeriesKind::Counter)
///     .with_unit(Unit::Bytes)
///     .with_label("access_key_id", "3")
///     .with_point(Utc.timestamp_opt(1_700_000_000, 0).unwrap(), 1024.0);
/// assert_eq!(
///     series.id(),
///     r#"outline_access_key_bytes_transferred{access_key_id="3"}"#
/// );
/// assert_eq!(series.last_value(), Some(1024.0));
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Series {
    /// The metric name, OpenMetrics-valid.
    pub name: String,
    /// One line saying what the series measures (OpenMetrics `# HELP`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub help: Option<String>,
    /// Label names to values, sorted by name.
    pub labels: BTreeMap<String, String>,
    /// Gauge, counter, …
    pub kind: SeriesKind,
    /// The unit of the values, if known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<Unit>,
    /// The points, oldest first.
    pub points: Vec<Point>,
}

/// One timestamped value.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Point {
    /// When the value was observed (or the start of its bucket).
    pub time: DateTime<Utc>,
    /// The value.
    pub value: f64,
}

/// What a series' values mean, in OpenMetrics terms.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum SeriesKind {
    /// A value that goes up and down (queue length, bytes in the last hour).
    Gauge,
    /// A monotonically increasing total (bytes transferred since the key was created).
    Counter,
    /// Neither is known.
    Unknown,
}

impl SeriesKind {
    /// The OpenMetrics `# TYPE` word.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Gauge => "gauge",
            Self::Counter => "counter",
            Self::Unknown => "unknown",
        }
    }
}

/// The unit of a series' values. Base units, as OpenMetrics asks.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Unit {
    /// Bytes.
    Bytes,
    /// Seconds.
    Seconds,
    /// A ratio, 0 to 1.
    Ratio,
    /// Any other unit, by its OpenMetrics name (`requests`, `nodes`).
    Other(String),
}

impl Unit {
    /// The OpenMetrics `# UNIT` word.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Bytes => "bytes",
            Self::Seconds => "seconds",
            Self::Ratio => "ratio",
            Self::Other(unit) => unit,
        }
    }
}

impl fmt::Display for Unit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Series {
    /// A series with no labels, unit or points. Characters not allowed in an OpenMetrics
    /// metric name are replaced with `_`.
    pub fn new(name: impl Into<String>, kind: SeriesKind) -> Self {
        Self {
            name: sanitize_name(name.into(), true),
            help: None,
            labels: BTreeMap::new(),
            kind,
            unit: None,
            points: Vec::new(),
        }
    }

    /// Adds a label. Characters not allowed in a label name are replaced with `_`; values are
    /// kept as they are (renderers escape them).
    #[must_use]
    pub fn with_label(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.labels
            .insert(sanitize_name(name.into(), false), value.into());
        self
    }

    /// Sets the help text.
    #[must_use]
    pub fn with_help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    /// Sets the unit.
    #[must_use]
    pub fn with_unit(mut self, unit: Unit) -> Self {
        self.unit = Some(unit);
        self
    }

    /// Appends a point.
    #[must_use]
    pub fn with_point(mut self, time: DateTime<Utc>, value: f64) -> Self {
        self.points.push(Point { time, value });
        self
    }

    /// Replaces the points.
    #[must_use]
    pub fn with_points(mut self, points: Vec<Point>) -> Self {
        self.points = points;
        self
    }

    /// The series' identity in Prometheus text form: `name{a="1",b="2"}`.
    pub fn id(&self) -> String {
        let mut id = self.name.clone();
        if !self.labels.is_empty() {
            id.push('{');
            for (i, (name, value)) in self.labels.iter().enumerate() {
                if i > 0 {
                    id.push(',');
                }
                id.push_str(name);
                id.push_str("=\"");
                escape_label_value_into(value, &mut id);
                id.push('"');
            }
            id.push('}');
        }
        id
    }

    /// The newest point's value.
    pub fn last_value(&self) -> Option<f64> {
        self.points.last().map(|p| p.value)
    }
}

/// Makes a metric name (`metric = true`) or label name valid for OpenMetrics by replacing
/// every character outside `[a-zA-Z0-9_:]` (no `:` in label names) with `_`, and prefixing
/// `_` when the first character is a digit. A label name that starts with `__` (reserved for
/// Prometheus' own labels such as `__name__`) keeps only one of its leading underscores.
/// Returns the input unchanged when it is valid.
///
/// ```
/// use metrics_core::model::sanitize_name;
///
/// assert_eq!(sanitize_name("stores.default.hits.sum".into(), true), "stores_default_hits_sum");
/// assert_eq!(sanitize_name("9lives".into(), true), "_9lives");
/// assert_eq!(sanitize_name("__name__".into(), false), "_name__");
/// ```
pub fn sanitize_name(name: String, metric: bool) -> String {
    match sanitized(&name, metric) {
        Cow::Borrowed(_) => name,
        Cow::Owned(fixed) => fixed,
    }
}

/// [`sanitize_name`] without an allocation when the name is already valid, which is what the
/// renderers see for nearly every series.
pub(crate) fn sanitized(name: &str, metric: bool) -> Cow<'_, str> {
    if is_valid_name(name, metric) {
        return Cow::Borrowed(name);
    }
    let allowed = |i: usize, c: char| {
        c.is_ascii_alphabetic() || c == '_' || (metric && c == ':') || (i > 0 && c.is_ascii_digit())
    };
    let mut out = String::with_capacity(name.len() + 1);
    for (i, c) in name.chars().enumerate() {
        if i == 0 && c.is_ascii_digit() {
            out.push('_');
            out.push(c);
        } else if allowed(i, c) {
            out.push(c);
        } else {
            out.push('_');
        }
    }
    if !metric {
        // A reserved `__` prefix, given or made by the mapping, collapses to one underscore.
        let extra = out.len() - out.trim_start_matches('_').len();
        if extra > 1 {
            out.drain(..extra - 1);
        }
    }
    if out.is_empty() {
        out.push('_');
    }
    Cow::Owned(out)
}

/// Whether `name` is a valid metric name (`metric = true`) or label name, not reserved.
pub(crate) fn is_valid_name(name: &str, metric: bool) -> bool {
    let bytes = name.as_bytes();
    let Some(&first) = bytes.first() else {
        return false;
    };
    let head_ok = first.is_ascii_alphabetic() || first == b'_' || (metric && first == b':');
    let reserved = !metric && bytes.starts_with(b"__");
    let allowed = if metric { METRIC_BYTE } else { LABEL_BYTE };
    // Every byte looked up without an early exit: names are short, and a loop without a
    // branch per byte is several times faster than one with three comparisons.
    head_ok
        && !reserved
        && bytes[1..]
            .iter()
            .fold(allowed, |all, &b| all & NAME_BYTES[usize::from(b)])
            != 0
}

/// [`NAME_BYTES`]: the byte may follow the first one in a label name.
const LABEL_BYTE: u8 = 1;
/// [`NAME_BYTES`]: the byte may follow the first one in a metric name.
const METRIC_BYTE: u8 = 2;
/// [`NAME_BYTES`]: the byte must be escaped in a label value.
const ESCAPED_BYTE: u8 = 4;

/// What each byte may be in names and label values.
const NAME_BYTES: [u8; 256] = {
    let mut table = [0_u8; 256];
    let mut b = 0;
    while b < 256 {
        #[allow(clippy::cast_possible_truncation, reason = "b < 256")]
        let byte = b as u8;
        if byte.is_ascii_alphanumeric() || byte == b'_' {
            table[b] |= LABEL_BYTE | METRIC_BYTE;
        }
        if byte == b':' {
            table[b] |= METRIC_BYTE;
        }
        if byte == b'\\' || byte == b'"' || byte == b'\n' {
            table[b] |= ESCAPED_BYTE;
        }
        b += 1;
    }
    table
};

/// Escapes a label value for the text formats: `\` → `\\`, `"` → `\"`, newline → `\n`.
#[inline]
pub(crate) fn escape_label_value_into(value: &str, out: &mut String) {
    // Nearly every value has nothing to escape: one pass without a branch per byte tells.
    let escapes = value
        .bytes()
        .fold(0, |any, b| any | NAME_BYTES[usize::from(b)])
        & ESCAPED_BYTE;
    if escapes == 0 {
        out.push_str(value);
    } else {
        escape_into(value, out);
    }
}

/// [`escape_label_value_into`] for a value with something to escape.
#[cold]
fn escape_into(value: &str, out: &mut String) {
    // Copy the runs between escapes in one go.
    let mut start = 0;
    for (i, byte) in value.bytes().enumerate() {
        let escaped = match byte {
            b'\\' => "\\\\",
            b'"' => "\\\"",
            b'\n' => "\\n",
            _ => continue,
        };
        out.push_str(&value[start..i]);
        out.push_str(escaped);
        start = i + 1;
    }
    out.push_str(&value[start..]);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_sanitized() {
        assert_eq!(sanitize_name("ok_name:sub".into(), true), "ok_name:sub");
        assert_eq!(sanitize_name("a.b-c d".into(), true), "a_b_c_d");
        assert_eq!(sanitize_name("9lives".into(), true), "_9lives");
        assert_eq!(sanitize_name("x:y".into(), false), "x_y");
        assert_eq!(sanitize_name(String::new(), true), "_");
        assert_eq!(sanitize_name("__name__".into(), false), "_name__");
        assert_eq!(sanitize_name("___".into(), false), "_");
        assert_eq!(sanitize_name("_".into(), false), "_");
        assert_eq!(sanitize_name("_ok".into(), false), "_ok");
        assert_eq!(sanitize_name("__9".into(), false), "_9");
        assert_eq!(sanitize_name("__x".into(), true), "__x");
        assert_eq!(sanitize_name("é".into(), true), "_");
        assert_eq!(sanitize_name(" 丽".into(), false), "_");
        assert_eq!(sanitize_name("..a".into(), false), "_a");
        for (name, metric) in [("a:b", true), ("_9", false), ("__x", false), ("", true)] {
            let fixed = sanitize_name(name.into(), metric);
            assert!(is_valid_name(&fixed, metric), "{name} -> {fixed}");
        }
    }

    /// The byte-by-byte rules the tables stand for.
    fn valid_by_rule(name: &str, metric: bool) -> bool {
        let bytes = name.as_bytes();
        let Some(&first) = bytes.first() else {
            return false;
        };
        let head_ok = first.is_ascii_alphabetic() || first == b'_' || (metric && first == b':');
        head_ok
            && (metric || !bytes.starts_with(b"__"))
            && bytes[1..]
                .iter()
                .all(|&b| b.is_ascii_alphanumeric() || b == b'_' || (metric && b == b':'))
    }

    #[test]
    fn name_validity_follows_the_rules_for_every_byte() {
        for b in 0..=255_u8 {
            for name in [vec![b], vec![b'a', b], vec![b'_', b, b'x'], vec![b, b'_']] {
                let name = String::from_utf8_lossy(&name).into_owned();
                for metric in [true, false] {
                    assert_eq!(
                        is_valid_name(&name, metric),
                        valid_by_rule(&name, metric),
                        "{name:?} (metric: {metric})"
                    );
                }
            }
        }
    }

    #[test]
    fn label_values_escape_exactly_three_bytes() {
        for b in 0..=127_u8 {
            let value = format!("a{}b", char::from(b));
            let mut out = String::new();
            escape_label_value_into(&value, &mut out);
            let expected = match b {
                b'\\' => "a\\\\b".to_owned(),
                b'"' => "a\\\"b".to_owned(),
                b'\n' => "a\\nb".to_owned(),
                _ => value.clone(),
            };
            assert_eq!(out, expected, "byte {b}");
        }
        let mut out = String::new();
        escape_label_value_into("é\"\\\n丽", &mut out);
        assert_eq!(out, "é\\\"\\\\\\n丽");
    }

    #[test]
    fn id_escapes_label_values() {
        let series = Series::new("m", SeriesKind::Gauge).with_label("path", "a\"b\\c\nd");
        assert_eq!(series.id(), r#"m{path="a\"b\\c\nd"}"#);
    }

    #[test]
    fn serializes_to_plain_json() {
        let series = Series::new("m", SeriesKind::Counter).with_unit(Unit::Bytes);
        let json = serde_json::to_value(&series).unwrap();
        assert_eq!(json["kind"], "counter");
        assert_eq!(json["unit"], "bytes");
    }
}
