//! What `/metrics` serves: one sample per series, in the Prometheus text format 0.0.4 or
//! OpenMetrics 1.0, with or without sample timestamps.
//!
//! The core's renderers write every point of a series with its time, which is what `collect`
//! prints; an exporter shows each series' current value once, and leaves the time to the
//! scraper unless asked (a sample an hour old would be invisible to an instant query).

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;

use metrics_hub::{Point, Series, SeriesKind};

/// The two text formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Format {
    /// Prometheus text format 0.0.4.
    Prometheus,
    /// OpenMetrics 1.0 text.
    OpenMetrics,
}

impl Format {
    /// The `Content-Type` of a body in this format.
    pub(crate) fn content_type(self) -> &'static str {
        match self {
            Self::Prometheus => "text/plain; version=0.0.4; charset=utf-8",
            Self::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
        }
    }

    /// The format an `Accept` header asks for: OpenMetrics when it lists
    /// `application/openmetrics-text` with a quality at least that of the plain text format,
    /// Prometheus text otherwise.
    pub(crate) fn negotiate(accept: Option<&str>) -> Self {
        let Some(accept) = accept else {
            return Self::Prometheus;
        };
        let mut openmetrics = 0.0_f64;
        let mut text = 0.0_f64;
        for range in accept.split(',') {
            let mut parts = range.split(';').map(str::trim);
            let media = parts.next().unwrap_or_default().to_ascii_lowercase();
            let quality = parts
                .filter_map(|p| p.strip_prefix("q="))
                .find_map(|q| q.parse::<f64>().ok())
                .unwrap_or(1.0);
            match media.as_str() {
                "application/openmetrics-text" => openmetrics = openmetrics.max(quality),
                "text/plain" | "*/*" | "text/*" => text = text.max(quality),
                _ => {}
            }
        }
        if openmetrics > 0.0 && openmetrics >= text {
            Self::OpenMetrics
        } else {
            Self::Prometheus
        }
    }
}

/// One series and the one point to show of it.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Exposed {
    /// The series (its points are not read).
    pub(crate) series: Series,
    /// The point to show.
    pub(crate) point: Point,
}

/// Writes the samples of `exposed`, grouped into families in order of first appearance,
/// without the closing `# EOF` of OpenMetrics (see [`EOF`]). A series whose identity was
/// already written is skipped: a text body must not repeat one.
pub(crate) fn render<'a>(
    exposed: impl IntoIterator<Item = &'a Exposed>,
    format: Format,
    timestamps: bool,
) -> String {
    let mut order: Vec<&str> = Vec::new();
    let mut families: HashMap<&str, Vec<&Exposed>> = HashMap::new();
    for one in exposed {
        let family = family_name(&one.series, format);
        families
            .entry(family)
            .or_insert_with(|| {
                order.push(family);
                Vec::new()
            })
            .push(one);
    }
    let mut out = String::new();
    let mut seen = HashSet::new();
    let mut labels = String::new();
    for family in order {
        let members = &families[family];
        let first = &members[0].series;
        write_metadata(&mut out, family, first, format);
        let sample = sample_name(&first.name, first.kind, format);
        for member in members {
            labels.clear();
            write_labels(&mut labels, &member.series);
            if !seen.insert((family, labels.clone())) {
                continue;
            }
            out.push_str(&sample);
            out.push_str(&labels);
            out.push(' ');
            write_number(&mut out, member.point.value);
            if timestamps {
                let millis = member.point.time.timestamp_millis();
                match format {
                    Format::Prometheus => {
                        let _ = write!(out, " {millis}");
                    }
                    Format::OpenMetrics => {
                        let _ = write!(
                            out,
                            " {}.{:03}",
                            millis.div_euclid(1000),
                            millis.rem_euclid(1000)
                        );
                    }
                }
            }
            out.push('\n');
        }
    }
    out
}

/// The line that ends an OpenMetrics body.
pub(crate) const EOF: &str = "# EOF\n";

/// The family a series belongs to. OpenMetrics names a counter's family without `_total`
/// and its samples with it; the Prometheus text format names both with it, so that the
/// stored series name is the same whichever format a scraper negotiates.
fn family_name(series: &Series, format: Format) -> &str {
    if series.kind == SeriesKind::Counter && format == Format::OpenMetrics {
        series.name.strip_suffix("_total").unwrap_or(&series.name)
    } else {
        &series.name
    }
}

fn sample_name(name: &str, kind: SeriesKind, format: Format) -> String {
    if kind == SeriesKind::Counter {
        let family = name.strip_suffix("_total").unwrap_or(name);
        format!("{family}_total")
    } else {
        match format {
            Format::Prometheus | Format::OpenMetrics => name.to_owned(),
        }
    }
}

fn write_metadata(out: &mut String, family: &str, first: &Series, format: Format) {
    let help = first.help.clone().unwrap_or_else(|| {
        // promtool's lint wants help on every family; say at least where it came from.
        format!("{} as reported by its backend", first.name)
    });
    match format {
        Format::Prometheus => {
            let family = sample_name(family, first.kind, format);
            let _ = writeln!(out, "# HELP {family} {}", escape_help(&help, false));
            let kind = match first.kind {
                SeriesKind::Gauge => "gauge",
                SeriesKind::Counter => "counter",
                _ => "untyped",
            };
            let _ = writeln!(out, "# TYPE {family} {kind}");
        }
        Format::OpenMetrics => {
            let _ = writeln!(out, "# TYPE {family} {}", first.kind.as_str());
            if let Some(unit) = &first.unit
                && family.ends_with(&format!("_{}", unit.as_str()))
            {
                let _ = writeln!(out, "# UNIT {family} {}", unit.as_str());
            }
            let _ = writeln!(out, "# HELP {family} {}", escape_help(&help, true));
        }
    }
}

/// Help text escaping: `\` and newline in both formats, `"` too in OpenMetrics.
fn escape_help(help: &str, quotes: bool) -> String {
    let mut out = String::with_capacity(help.len());
    for c in help.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '"' if quotes => out.push_str("\\\""),
            c => out.push(c),
        }
    }
    out
}

fn write_labels(out: &mut String, series: &Series) {
    if series.labels.is_empty() {
        return;
    }
    out.push('{');
    for (i, (name, value)) in series.labels.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(name);
        out.push_str("=\"");
        for c in value.chars() {
            match c {
                '\\' => out.push_str("\\\\"),
                '"' => out.push_str("\\\""),
                '\n' => out.push_str("\\n"),
                c => out.push(c),
            }
        }
        out.push('"');
    }
    out.push('}');
}

/// Go's `ParseFloat` reads all of these: `NaN`, `+Inf`, `-Inf`, and Rust's shortest
/// round-trip decimal form.
fn write_number(out: &mut String, value: f64) {
    if value.is_nan() {
        out.push_str("NaN");
    } else if value.is_infinite() {
        out.push_str(if value > 0.0 { "+Inf" } else { "-Inf" });
    } else if value.fract() == 0.0 && value.abs() < 1e15 {
        let _ = write!(out, "{value:.0}");
    } else {
        let _ = write!(out, "{value}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use metrics_hub::Unit;
    use metrics_hub::chrono::{TimeZone as _, Utc};

    fn exposed(series: Series, value: f64) -> Exposed {
        Exposed {
            series,
            point: Point {
                time: Utc.timestamp_millis_opt(1_700_000_000_250).unwrap(),
                value,
            },
        }
    }

    #[test]
    fn negotiation_follows_quality() {
        let prometheus = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
        assert_eq!(Format::negotiate(Some(prometheus)), Format::OpenMetrics);
        assert_eq!(Format::negotiate(None), Format::Prometheus);
        assert_eq!(Format::negotiate(Some("*/*")), Format::Prometheus);
        assert_eq!(
            Format::negotiate(Some("text/plain, application/openmetrics-text;q=0.5")),
            Format::Prometheus
        );
        assert_eq!(
            Format::negotiate(Some("application/openmetrics-text;q=0")),
            Format::Prometheus
        );
    }

    #[test]
    fn both_formats_group_families_and_name_counters_alike() {
        let series = [
            exposed(
                Series::new("jobs", SeriesKind::Counter)
                    .with_help("Jobs \"done\"\nso far")
                    .with_label("q", "a\"b\\c\nd"),
                5.0,
            ),
            exposed(
                Series::new("queue_bytes", SeriesKind::Gauge).with_unit(Unit::Bytes),
                0.5,
            ),
            exposed(
                Series::new("jobs", SeriesKind::Counter).with_label("q", "x"),
                7.0,
            ),
            exposed(
                Series::new("jobs", SeriesKind::Counter).with_label("q", "x"),
                8.0,
            ),
            exposed(Series::new("odd", SeriesKind::Unknown), f64::NAN),
        ];
        assert_eq!(
            render(&series, Format::Prometheus, false),
            "# HELP jobs_total Jobs \"done\"\\nso far\n\
             # TYPE jobs_total counter\n\
             jobs_total{q=\"a\\\"b\\\\c\\nd\"} 5\n\
             jobs_total{q=\"x\"} 7\n\
             # HELP queue_bytes queue_bytes as reported by its backend\n\
             # TYPE queue_bytes gauge\n\
             queue_bytes 0.5\n\
             # HELP odd odd as reported by its backend\n\
             # TYPE odd untyped\n\
             odd NaN\n"
        );
        assert_eq!(
            render(&series, Format::OpenMetrics, true),
            "# TYPE jobs counter\n\
             # HELP jobs Jobs \\\"done\\\"\\nso far\n\
             jobs_total{q=\"a\\\"b\\\\c\\nd\"} 5 1700000000.250\n\
             jobs_total{q=\"x\"} 7 1700000000.250\n\
             # TYPE queue_bytes gauge\n\
             # UNIT queue_bytes bytes\n\
             # HELP queue_bytes queue_bytes as reported by its backend\n\
             queue_bytes 0.5 1700000000.250\n\
             # TYPE odd unknown\n\
             # HELP odd odd as reported by its backend\n\
             odd NaN 1700000000.250\n"
        );
        let with_time = render(&series[1..2], Format::Prometheus, true);
        assert!(
            with_time.ends_with("queue_bytes 0.5 1700000000250\n"),
            "{with_time}"
        );
    }
}
