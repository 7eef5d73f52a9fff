//! Turning a [`Collection`] into text: an aligned table for people, JSON for programs, and
//! OpenMetrics for Prometheus-compatible scrapers.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;

use crate::aggregate::Collection;
use crate::model::{Series, SeriesKind, Unit, escape_label_value_into};

/// An aligned table: one row per series with its labels, newest value in human units
/// (`1.9 MiB`, `2m 03s`), point count and time; then one `FAILED` line per source that did
/// not answer.
///
/// ```
/// use metrics_core::{Collection, Series, SeriesKind, Unit, render};
///
/// let mut collection = Collection::default();
/// collection.series.push(
///     Series::new("outline_access_key_bytes_transferred", SeriesKind::Gauge)
///         .with_unit(Unit::Bytes)
///         .with_label("access_key_id", "0")
///         .with_point(chrono::Utc::now(), 1_572_864.0),
/// );
/// let table = render::table(&collection);
/// assert!(table.contains("1.5 MiB"));
/// ```
pub fn table(collection: &Collection) -> String {
    let header = ["SERIES", "LABELS", "VALUE", "POINTS", "LAST POINT (UTC)"];
    let rows: Vec<[String; 5]> = collection
        .series
        .iter()
        .map(|series| {
            let labels = series
                .labels
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(",");
            let last = series.points.last();
            [
                series.name.clone(),
                labels,
                last.map_or_else(
                    || "-".to_owned(),
                    |p| human_value(p.value, series.unit.as_ref()),
                ),
                series.points.len().to_string(),
                last.map_or_else(
                    || "-".to_owned(),
                    |p| p.time.format("%Y-%m-%d %H:%M:%S").to_string(),
                ),
            ]
        })
        .collect();
    let mut widths = header.map(str::len);
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let mut line = |cells: [&str; 5]| {
        let mut text = String::new();
        for (i, (cell, width)) in cells.iter().zip(widths).enumerate() {
            // Values are right-aligned so that magnitudes line up.
            if i == 2 {
                let _ = write!(text, "{cell:>width$}  ");
            } else {
                let _ = write!(text, "{cell:<width$}  ");
            }
        }
        out.push_str(text.trim_end());
        out.push('\n');
    };
    line(header);
    for row in &rows {
        line([&row[0], &row[1], &row[2], &row[3], &row[4]]);
    }
    for (source, count) in &collection.sources {
        if let Some(count) = count {
            let _ = writeln!(out, "ok      {source}: {count} series");
        }
    }
    for failure in &collection.failures {
        let _ = writeln!(out, "FAILED  {}: {}", failure.source, failure.error);
    }
    out
}

/// A value in human units: binary prefixes for bytes, `ms`/`s`/`m`/`h`/`d` for seconds,
/// percent for ratios.
///
/// ```
/// use metrics_core::{Unit, render::human_value};
///
/// assert_eq!(human_value(1_996_000.0, Some(&Unit::Bytes)), "1.9 MiB");
/// assert_eq!(human_value(123.0, Some(&Unit::Seconds)), "2m 03s");
/// assert_eq!(human_value(0.25, Some(&Unit::Ratio)), "25%");
/// assert_eq!(human_value(42.0, None), "42");
/// ```
pub fn human_value(value: f64, unit: Option<&Unit>) -> String {
    if !value.is_finite() {
        return number(value);
    }
    match unit {
        Some(Unit::Bytes) => human_bytes(value),
        Some(Unit::Seconds) => human_seconds(value),
        Some(Unit::Ratio) => format!("{}%", number(value * 100.0)),
        Some(Unit::Other(unit)) => format!("{} {unit}", number(value)),
        None => number(value),
    }
}

fn human_bytes(value: f64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut scaled = value;
    let mut unit = 0;
    while scaled.abs() >= 1024.0 && unit < UNITS.len() - 1 {
        scaled /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{} B", number(value))
    } else {
        format!("{scaled:.1} {}", UNITS[unit])
    }
}

fn human_seconds(value: f64) -> String {
    let sign = if value < 0.0 { "-" } else { "" };
    let seconds = value.abs();
    if seconds == 0.0 {
        return "0 s".to_owned();
    }
    if seconds < 1.0 {
        return format!(
            "{sign}{} ms",
            number((seconds * 1000.0 * 10.0).round() / 10.0)
        );
    }
    if seconds < 60.0 {
        return format!("{sign}{} s", number((seconds * 100.0).round() / 100.0));
    }
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        reason = "finite, positive, rounded"
    )]
    let whole = seconds.round() as u64;
    let (days, hours, minutes, secs) = (
        whole / 86_400,
        whole / 3600 % 24,
        whole / 60 % 60,
        whole % 60,
    );
    if days > 0 {
        format!("{sign}{days}d {hours}h")
    } else if hours > 0 {
        format!("{sign}{hours}h {minutes:02}m")
    } else {
        format!("{sign}{minutes}m {secs:02}s")
    }
}

/// Integers without a fraction, others with up to three decimals; `NaN`, `+Inf`, `-Inf`.
fn number(value: f64) -> String {
    if value.is_nan() {
        return "NaN".to_owned();
    }
    if value.is_infinite() {
        return if value > 0.0 { "+Inf" } else { "-Inf" }.to_owned();
    }
    if value.fract() == 0.0 && value.abs() < 1e15 {
        return format!("{value:.0}");
    }
    let text = format!("{value:.3}");
    text.trim_end_matches('0').trim_end_matches('.').to_owned()
}

#[derive(Serialize)]
struct JsonCollection<'a> {
    series: &'a [Series],
    sources: Vec<JsonSource<'a>>,
    failures: Vec<JsonFailure<'a>>,
}

#[derive(Serialize)]
struct JsonSource<'a> {
    source: &'a str,
    series: Option<usize>,
}

#[derive(Serialize)]
struct JsonFailure<'a> {
    source: &'a str,
    backend: &'static str,
    status: Option<u16>,
    retryable: bool,
    error: String,
}

/// The collection as one JSON document: `{"series": […], "sources": […], "failures": […]}`.
/// Times are RFC 3339.
///
/// ```
/// let json = metrics_core::render::json(&metrics_core::Collection::default());
/// assert_eq!(json, r#"{"series":[],"sources":[],"failures":[]}"#);
/// ```
pub fn json(collection: &Collection) -> String {
    let document = JsonCollection {
        series: &collection.series,
        sources: collection
            .sources
            .iter()
            .map(|(source, series)| JsonSource {
                source,
                series: *series,
            })
            .collect(),
        failures: collection
            .failures
            .iter()
            .map(|f| JsonFailure {
                source: &f.source,
                backend: f.error.backend(),
                status: f.error.status(),
                retryable: f.error.is_retryable(),
                error: f.error.to_string(),
            })
            .collect(),
    };
    // Serializing plain data with string keys cannot fail.
    serde_json::to_string(&document).unwrap_or_default()
}

/// The series in the OpenMetrics text format, one family per name (`# TYPE`, `# UNIT` when the
/// name ends with the unit as OpenMetrics requires, `# HELP` when known), every point with its
/// timestamp in seconds, counters' samples suffixed `_total`, and the closing `# EOF`.
///
/// ```
/// use metrics_core::{Series, SeriesKind, Unit, render};
/// use chrono::{TimeZone, Utc};
///
/// let series = Series::new("coopr_queue_tasks", SeriesKind::Gauge)
///     .with_label("tenant", "acme")
///     .with_point(Utc.timestamp_opt(1_700_000_000, 0).unwrap(), 3.0);
/// assert_eq!(
///     render::openmetrics(&[series]),
///     "# TYPE coopr_queue_tasks gauge\ncoopr_queue_tasks{tenant=\"acme\"} 3 1700000000\n# EOF\n"
/// );
/// ```
pub fn openmetrics(series: &[Series]) -> String {
    // Families must not interleave: group by name, in order of first appearance.
    let mut order: Vec<&str> = Vec::new();
    let mut families: BTreeMap<&str, Vec<&Series>> = BTreeMap::new();
    for one in series {
        let family = family_name(one);
        families
            .entry(family)
            .or_insert_with(|| {
                order.push(family);
                Vec::new()
            })
            .push(one);
    }
    let mut out = String::new();
    for family in order {
        let members = &families[family];
        let first = members[0];
        let _ = writeln!(out, "# TYPE {family} {}", first.kind.as_str());
        if let Some(unit) = &first.unit
            && family.ends_with(&format!("_{}", unit.as_str()))
        {
            let _ = writeln!(out, "# UNIT {family} {}", unit.as_str());
        }
        if let Some(help) = &first.help {
            let _ = writeln!(out, "# HELP {family} {}", escape_help(help));
        }
        let sample = if first.kind == SeriesKind::Counter {
            format!("{family}_total")
        } else {
            family.to_owned()
        };
        for member in members {
            let mut labels = String::new();
            if !member.labels.is_empty() {
                labels.push('{');
                for (i, (name, value)) in member.labels.iter().enumerate() {
                    if i > 0 {
                        labels.push(',');
                    }
                    labels.push_str(name);
                    labels.push_str("=\"");
                    escape_label_value_into(value, &mut labels);
                    labels.push('"');
                }
                labels.push('}');
            }
            for point in &member.points {
                let millis = point.time.timestamp_millis();
                let timestamp = if millis % 1000 == 0 {
                    (millis / 1000).to_string()
                } else {
                    format!("{}.{:03}", millis.div_euclid(1000), millis.rem_euclid(1000))
                };
                let _ = writeln!(
                    out,
                    "{sample}{labels} {} {timestamp}",
                    number_exact(point.value)
                );
            }
        }
    }
    out.push_str("# EOF\n");
    out
}

/// A counter's family name drops a `_total` suffix; the samples get it back.
fn family_name(series: &Series) -> &str {
    if series.kind == SeriesKind::Counter {
        series.name.strip_suffix("_total").unwrap_or(&series.name)
    } else {
        &series.name
    }
}

fn escape_help(help: &str) -> String {
    help.replace('\\', "\\\\")
        .replace('\n', "\\n")
        .replace('"', "\\\"")
}

/// Full precision for machines: Rust's shortest round-trip form, integers without `.0`.
fn number_exact(value: f64) -> String {
    if value.is_nan() {
        "NaN".to_owned()
    } else if value.is_infinite() {
        if value > 0.0 { "+Inf" } else { "-Inf" }.to_owned()
    } else if value.fract() == 0.0 && value.abs() < 1e15 {
        format!("{value:.0}")
    } else {
        value.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aggregate::SourceFailure;
    use crate::error::Error;
    use chrono::{TimeZone, Utc};

    fn at(seconds: i64) -> chrono::DateTime<Utc> {
        Utc.timestamp_opt(seconds, 0).unwrap()
    }

    #[test]
    fn human_units() {
        assert_eq!(human_value(512.0, Some(&Unit::Bytes)), "512 B");
        assert_eq!(human_value(1536.0, Some(&Unit::Bytes)), "1.5 KiB");
        assert_eq!(
            human_value(5.0 * 1024.0 * 1024.0 * 1024.0, Some(&Unit::Bytes)),
            "5.0 GiB"
        );
        assert_eq!(human_value(0.0421, Some(&Unit::Seconds)), "42.1 ms");
        assert_eq!(human_value(0.0, Some(&Unit::Seconds)), "0 s");
        assert_eq!(human_value(1.5, Some(&Unit::Seconds)), "1.5 s");
        assert_eq!(human_value(3720.0, Some(&Unit::Seconds)), "1h 02m");
        assert_eq!(human_value(90_000.0, Some(&Unit::Seconds)), "1d 1h");
        assert_eq!(
            human_value(3.0, Some(&Unit::Other("nodes".into()))),
            "3 nodes"
        );
        assert_eq!(human_value(2.5, None), "2.5");
        assert_eq!(human_value(f64::NAN, Some(&Unit::Bytes)), "NaN");
    }

    #[test]
    fn table_aligns_and_lists_failures() {
        let mut collection = Collection::default();
        collection.series.push(
            Series::new("a", SeriesKind::Gauge)
                .with_label("k", "v")
                .with_point(at(0), 1.0),
        );
        collection
            .series
            .push(Series::new("longer_name", SeriesKind::Gauge).with_point(at(60), 12345.0));
        collection.sources.push(("x".into(), Some(2)));
        collection.sources.push(("vumi".into(), None));
        collection.failures.push(SourceFailure {
            source: "vumi".into(),
            error: Error::timeout("vumi", "collect did not finish within 100 ms"),
        });
        let table = table(&collection);
        let lines: Vec<&str> = table.lines().collect();
        assert!(lines[0].starts_with("SERIES       LABELS  VALUE"));
        assert!(lines[1].starts_with("a            k=v         1  1"));
        assert!(lines[2].starts_with("longer_name          12345  1"));
        assert_eq!(lines[3], "ok      x: 2 series");
        assert_eq!(
            lines[4],
            "FAILED  vumi: vumi: timed out: collect did not finish within 100 ms"
        );
    }

    #[test]
    fn json_has_series_and_failures() {
        let mut collection = Collection::default();
        collection
            .series
            .push(Series::new("a", SeriesKind::Counter).with_point(at(0), 1.5));
        collection.failures.push(SourceFailure {
            source: "coopr".into(),
            error: Error::api("coopr", 503, None, "down"),
        });
        let value: serde_json::Value = serde_json::from_str(&json(&collection)).unwrap();
        assert_eq!(value["series"][0]["points"][0]["value"], 1.5);
        assert_eq!(
            value["series"][0]["points"][0]["time"],
            "1970-01-01T00:00:00Z"
        );
        assert_eq!(value["failures"][0]["status"], 503);
        assert_eq!(value["failures"][0]["retryable"], true);
    }

    #[test]
    fn openmetrics_families_units_counters_and_escaping() {
        let series = vec![
            Series::new("outline_access_key_bytes_transferred", SeriesKind::Counter)
                .with_unit(Unit::Bytes)
                .with_help("Bytes \"moved\"")
                .with_label("access_key_id", "1")
                .with_point(at(10), 5.0),
            Series::new("vumi_hits", SeriesKind::Gauge)
                .with_label("path", "a\"b\\c\nd")
                .with_point(Utc.timestamp_millis_opt(1_500).unwrap(), 0.25),
            Series::new("outline_access_key_bytes_transferred", SeriesKind::Counter)
                .with_unit(Unit::Bytes)
                .with_label("access_key_id", "2")
                .with_point(at(10), 7.0),
        ];
        let text = openmetrics(&series);
        assert_eq!(
            text,
            "# TYPE outline_access_key_bytes_transferred counter\n\
             # HELP outline_access_key_bytes_transferred Bytes \\\"moved\\\"\n\
             outline_access_key_bytes_transferred_total{access_key_id=\"1\"} 5 10\n\
             outline_access_key_bytes_transferred_total{access_key_id=\"2\"} 7 10\n\
             # TYPE vumi_hits gauge\n\
             vumi_hits{path=\"a\\\"b\\\\c\\nd\"} 0.25 1.500\n\
             # EOF\n"
        );
        let with_unit =
            openmetrics(&[Series::new("x_bytes", SeriesKind::Gauge).with_unit(Unit::Bytes)]);
        assert_eq!(
            with_unit,
            "# TYPE x_bytes gauge\n# UNIT x_bytes bytes\n# EOF\n"
        );
    }
}
