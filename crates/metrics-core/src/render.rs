//! Turning a [`Collection`] into text: an aligned table for people, JSON for programs, and
//! the OpenMetrics 1.0 and Prometheus 0.0.4 text formats for scrapers.
//!
//! # The text formats
//!
//! [`openmetrics`] and [`prometheus`] write valid text for every [`Series`] a user can build,
//! through the constructors, the public fields or `Deserialize`, because one bad line fails a
//! whole scrape. Both formats follow the same rules, so they expose the same series:
//!
//! - **Names.** Metric and label names are sanitized when they are written, as
//!   [`sanitize_name`](crate::model::sanitize_name) does: characters outside
//!   `[a-zA-Z0-9_:]` (no `:` in label names) become `_`, a leading digit gets a `_` in front,
//!   an empty name becomes `_`, and a label name starting with the reserved `__` keeps one
//!   underscore (`__name__` → `_name__`). If two label names of one series sanitize alike,
//!   the one that sorts first before sanitizing is kept. Label values and help texts are
//!   escaped; a label with an empty value is left out (Prometheus treats it as absent).
//! - **Families.** Series are grouped by family name and kind, families in order of first
//!   appearance, members in input order; the family's unit and help are the first ones its
//!   members give. A counter's family name drops a trailing `_total` (`x_total` and `x` are
//!   one counter family `x` with samples `x_total`).
//! - **Name collisions between kinds.** A family *owns* its name and, for a counter, the
//!   names of its `_total` and `_created` samples. When a family would own a name an earlier
//!   family owns (gauge `x` and counter `x_total`; gauge `y_total` and counter `y`), the
//!   earlier one keeps it and the later one is written under its name plus `_` and its kind
//!   (`x_counter`, `x_counter_total`), with `_2`, `_3`, … added if that is taken too. Every
//!   sample stays, under a name no other family has; a warning names the renamed families.
//! - **Duplicate series.** Within a family, the first series with a given (sanitized) label
//!   set is written and later ones are left out, with a warning. Give series from different
//!   sources a label that tells them apart (the [`Aggregator`](crate::Aggregator) does for
//!   named sources).
//! - **Points.** Each point is a sample with its timestamp: OpenMetrics in seconds with
//!   millisecond precision (`-1.500` is 1.5 s before the epoch), Prometheus in
//!   milliseconds. Finer times are truncated to the millisecond at or before them. Samples of
//!   a series are written oldest first; of points in one millisecond, the last one given
//!   wins.
//! - **Counters that cannot hold a value.** A counter's value is a non-negative total, so a
//!   counter point that is NaN, negative or infinite is left out (the series' other points
//!   are written), with a warning; `-0` is written as `0`. A series whose points are all left
//!   out writes no samples and does not count as a duplicate of a later one.
//! - **Numbers.** Integers below 10¹⁵ without a fraction, others in the shortest form that
//!   reads back to the same `f64`; `NaN`, `+Inf`, `-Inf`.
//!
//! Warnings are one `tracing` event per rendering, not one per series.
//!
//! An exporter that writes the same samples again and again keeps them as a [`Snapshot`]:
//! each series' current value with the work above done once, written by
//! [`write_openmetrics_snapshots`] and [`write_prometheus_snapshots`] to the same text the
//! `_latest` writers give.
//!
//! The output is checked with `promtool check metrics` (Prometheus' text-format parser) and
//! `promtool tsdb create-blocks-from openmetrics` (Prometheus' OpenMetrics parser) on
//! generated hostile series.

use std::borrow::Cow;
use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::hash::{BuildHasherDefault, Hasher};

use crate::aggregate::Collection;
use crate::model::{
    Point, Series, SeriesKind, Unit, escape_label_value_into, is_valid_name, sanitized,
};

mod snapshot;

pub use snapshot::{Snapshot, write_openmetrics_snapshots, write_prometheus_snapshots};

/// An aligned table: one row per series with its labels (a named source's series carry its
/// source label), newest value in human units (`1.9 MiB`, `2m 03s`), point count and time;
/// then one `ok` line per source that answered and one `FAILED` line, with the endpoint when
/// known, per source that did not.
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
    let mut out = series_table(collection);
    for failure in &collection.failures {
        let _ = match &failure.endpoint {
            Some(endpoint) => writeln!(
                out,
                "FAILED  {} ({endpoint}): {}",
                failure.source, failure.error
            ),
            None => writeln!(out, "FAILED  {}: {}", failure.source, failure.error),
        };
    }
    out
}

/// [`table`] without the `FAILED` lines, for a program that reports failures elsewhere
/// (the `metrics-hub` command prints them on stderr).
pub fn series_table(collection: &Collection) -> String {
    let header = [
        "SERIES",
        "LABELS",
        "VALUE",
        "TREND",
        "POINTS",
        "LAST POINT (UTC)",
    ];
    let rows: Vec<[String; 6]> = collection
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
                sparkline(
                    &series.points.iter().map(|p| p.value).collect::<Vec<_>>(),
                    SPARKLINE_WIDTH,
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
    let mut line = |cells: [&str; 6]| {
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
        line([&row[0], &row[1], &row[2], &row[3], &row[4], &row[5]]);
    }
    for (source, count) in &collection.sources {
        if let Some(count) = count {
            let _ = writeln!(out, "ok      {source}: {count} series");
        }
    }
    out
}

/// How many of the newest points the table's sparkline shows.
pub const SPARKLINE_WIDTH: usize = 24;

/// The newest `width` values as bars from `▁` (the smallest shown) to `█` (the largest); a
/// flat series is a row of `▄`, a value that is not finite a space.
///
/// ```
/// use metrics_core::render::sparkline;
///
/// assert_eq!(sparkline(&[0.0, 1.0, 2.0, 7.0], 10), "▁▂▃█");
/// assert_eq!(sparkline(&[5.0, 5.0], 10), "▄▄");
/// assert_eq!(sparkline(&[1.0, f64::NAN, 3.0], 10), "▁ █");
/// assert_eq!(sparkline(&[9.0, 0.0, 1.0], 2), "▁█");
/// ```
pub fn sparkline(values: &[f64], width: usize) -> String {
    const BARS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
    let shown = &values[values.len().saturating_sub(width)..];
    let finite = shown.iter().copied().filter(|v| v.is_finite());
    let (min, max) = finite.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
        (lo.min(v), hi.max(v))
    });
    shown
        .iter()
        .map(|&v| {
            if !v.is_finite() {
                ' '
            } else if max - min <= f64::EPSILON * max.abs().max(1.0) {
                BARS[3]
            } else {
                #[allow(
                    clippy::cast_possible_truncation,
                    clippy::cast_sign_loss,
                    reason = "a finite ratio in 0..=1 scaled to 0..=7"
                )]
                let level = (((v - min) / (max - min)) * 7.0).round() as usize;
                BARS[level.min(7)]
            }
        })
        .collect()
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

/// The collection as one JSON document: `{"series": […], "sources": […], "failures": […]}`,
/// the [`Serialize`](serde::Serialize) form of [`Collection`]. Times are RFC 3339; a named
/// source's series carry its source label like any other label; each failure has its
/// source, backend, endpoint and error (backend, kind, status, retryable, message).
///
/// ```
/// let json = metrics_core::render::json(&metrics_core::Collection::default());
/// assert_eq!(json, r#"{"series":[],"sources":[],"failures":[]}"#);
/// ```
pub fn json(collection: &Collection) -> String {
    // Plain data with string keys: serializing cannot fail.
    serde_json::to_string(collection).unwrap_or_default()
}

/// The `Content-Type` of [`openmetrics`]' output.
pub const OPENMETRICS_CONTENT_TYPE: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The `Content-Type` of [`prometheus`]' output.
pub const PROMETHEUS_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The series in the OpenMetrics 1.0 text format, ending with `# EOF`.
///
/// One family per name with `# TYPE`, `# UNIT` (when the family name ends with `_` and the
/// unit, as OpenMetrics requires) and `# HELP` (when known and not empty); a counter family
/// drops a `_total` suffix from its name and its samples carry it. Every point is a sample
/// with its timestamp in seconds (millisecond precision). Any series a user can build is
/// written as valid text: see [the rules](self#the-text-formats) for names, collisions,
/// duplicates and counters that cannot hold their value.
///
/// ```
/// use metrics_core::{Series, SeriesKind, Unit, render};
/// use chrono::{TimeZone, Utc};
///
/// let at = Utc.timestamp_millis_opt(1_700_000_000_250).unwrap();
/// let series = [
///     Series::new("coopr_queue_tasks", SeriesKind::Gauge)
///         .with_label("tenant", "acme")
///         .with_point(at, 3.0),
///     Series::new("outline_bytes_total", SeriesKind::Counter)
///         .with_unit(Unit::Bytes)
///         .with_point(at, 1024.0),
/// ];
/// assert_eq!(
///     render::openmetrics(&series),
///     concat!(
///         "# TYPE coopr_queue_tasks gauge\n",
///         "coopr_queue_tasks{tenant=\"acme\"} 3 1700000000.250\n",
///         "# TYPE outline_bytes counter\n",
///         "# UNIT outline_bytes bytes\n",
///         "outline_bytes_total 1024 1700000000.250\n",
///         "# EOF\n",
///     )
/// );
/// ```
pub fn openmetrics(series: &[Series]) -> String {
    let mut out = String::new();
    write_openmetrics(&mut out, series);
    out
}

/// [`openmetrics`] appended to `out`, so that an exporter can reuse one buffer for every
/// scrape.
pub fn write_openmetrics(out: &mut String, series: &[Series]) {
    write_text(out, series, Format::OpenMetrics, Samples::Every);
}

/// The series in the Prometheus text format 0.0.4 (what Prometheus asks for with
/// `Accept: text/plain;version=0.0.4`).
///
/// The same families as [`openmetrics`], under the names a Prometheus server stores either
/// format as: a counter's `# HELP`, `# TYPE` and samples all use the `_total` name, an
/// `unknown` series is `untyped`, there is no `# UNIT` and no `# EOF`, and timestamps are in
/// milliseconds. Any series a user can build is written as valid text: see
/// [the rules](self#the-text-formats).
///
/// ```
/// use metrics_core::{Series, SeriesKind, render};
/// use chrono::{TimeZone, Utc};
///
/// let series = Series::new("outline_bytes", SeriesKind::Counter)
///     .with_help("Bytes \"sent\"")
///     .with_label("access_key_id", "3")
///     .with_point(Utc.timestamp_millis_opt(-1_500).unwrap(), 1024.0);
/// assert_eq!(
///     render::prometheus(&[series]),
///     concat!(
///         "# HELP outline_bytes_total Bytes \"sent\"\n",
///         "# TYPE outline_bytes_total counter\n",
///         "outline_bytes_total{access_key_id=\"3\"} 1024 -1500\n",
///     )
/// );
/// ```
pub fn prometheus(series: &[Series]) -> String {
    let mut out = String::new();
    write_prometheus(&mut out, series);
    out
}

/// [`prometheus`] appended to `out`, so that an exporter can reuse one buffer for every
/// scrape.
pub fn write_prometheus(out: &mut String, series: &[Series]) {
    write_text(out, series, Format::Prometheus, Samples::Every);
}

/// The current value of each series in the OpenMetrics 1.0 text format, appended to `out`:
/// [`write_openmetrics`] with only each series' newest point, written without a timestamp,
/// which is what an exporter serves (the scraper stamps the sample with the time of the
/// scrape).
///
/// The newest point is the one with the latest time (of points in one millisecond, the last
/// one given); a counter's points that cannot be a total are left out first, so its newest
/// valid point is written. For series of one point each, the text is exactly
/// [`write_openmetrics`]' with the timestamps taken off.
///
/// ```
/// use metrics_core::{Series, SeriesKind, render};
/// use chrono::{TimeZone, Utc};
///
/// let series = Series::new("coopr_queue_tasks", SeriesKind::Gauge)
///     .with_label("tenant", "acme")
///     .with_point(Utc.timestamp_opt(1_700_000_000, 0).unwrap(), 3.0)
///     .with_point(Utc.timestamp_opt(1_700_000_060, 0).unwrap(), 5.0);
/// let mut out = String::new();
/// render::write_openmetrics_latest(&mut out, &[series]);
/// assert_eq!(
///     out,
///     concat!(
///         "# TYPE coopr_queue_tasks gauge\n",
///         "coopr_queue_tasks{tenant=\"acme\"} 5\n",
///         "# EOF\n",
///     )
/// );
/// ```
pub fn write_openmetrics_latest(out: &mut String, series: &[Series]) {
    write_text(out, series, Format::OpenMetrics, Samples::Latest);
}

/// The current value of each series in the Prometheus text format 0.0.4, appended to `out`:
/// [`write_prometheus`] with only each series' newest point, written without a timestamp,
/// chosen as [`write_openmetrics_latest`] does.
///
/// ```
/// use metrics_core::{Series, SeriesKind, render};
///
/// let series = Series::new("outline_bytes", SeriesKind::Counter)
///     .with_point(chrono::Utc::now(), 1024.0);
/// let mut out = String::new();
/// render::write_prometheus_latest(&mut out, &[series]);
/// assert_eq!(
///     out,
///     "# TYPE outline_bytes_total counter\noutline_bytes_total 1024\n"
/// );
/// ```
pub fn write_prometheus_latest(out: &mut String, series: &[Series]) {
    write_text(out, series, Format::Prometheus, Samples::Latest);
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Format {
    OpenMetrics,
    Prometheus,
}

/// Which points of a series become samples.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Samples {
    /// Every point, with its timestamp.
    Every,
    /// The newest point, without a timestamp.
    Latest,
}

/// The suffixes an OpenMetrics counter family owns besides its own name: `_total` on its
/// samples, `_created` on its creation time. No other family may be named so.
const COUNTER_SUFFIXES: [&str; 2] = ["_total", "_created"];

/// A family: the name it is written under and what its first members said about it.
#[derive(Debug)]
struct Family<'a> {
    name: Cow<'a, str>,
    kind: SeriesKind,
    unit: Option<&'a Unit>,
    help: Option<&'a str>,
}

/// How the series fall into families, shared by both formats so that they expose the same
/// names.
#[derive(Debug)]
struct Layout<'a> {
    families: Vec<Family<'a>>,
    /// Indices into the series, grouped by family in the order of `families`, and within a
    /// family in input order; family `f` is `members[bounds[f]..bounds[f + 1]]`. Empty when
    /// the series are so already: see [`Layout::member`].
    members: Vec<usize>,
    bounds: Vec<usize>,
    /// Families that took another name because theirs clashed with an earlier family's.
    renamed: Vec<(Cow<'a, str>, String)>,
}

/// Which kinds have a family of a given name: what a new name must not clash with.
const COUNTER_BIT: u8 = 1;
const OTHER_BIT: u8 = 2;

fn kind_bit(kind: SeriesKind) -> u8 {
    if kind == SeriesKind::Counter {
        COUNTER_BIT
    } else {
        OTHER_BIT
    }
}

/// Whether a family `name` of `kind` would share a family or sample name with one of
/// `taken`: the same name, one being a counter and the other named like its `_total` or
/// `_created` samples.
fn clashes(
    taken: &HashMap<Cow<'_, str>, u8>,
    name: &str,
    kind: SeriesKind,
    scratch: &mut String,
) -> bool {
    if taken.contains_key(name) {
        return true;
    }
    if kind == SeriesKind::Counter {
        for suffix in COUNTER_SUFFIXES {
            scratch.clear();
            scratch.push_str(name);
            scratch.push_str(suffix);
            if taken.contains_key(scratch.as_str()) {
                return true;
            }
        }
    }
    COUNTER_SUFFIXES.iter().any(|suffix| {
        name.strip_suffix(suffix)
            .and_then(|stem| taken.get(stem))
            .is_some_and(|kinds| kinds & COUNTER_BIT != 0)
    })
}

impl<'a> Layout<'a> {
    fn new(series: &'a [Series]) -> Self {
        let mut layout = Self::grouped(series);
        layout.renamed = rename_clashing_families(&mut layout.families);
        layout
    }

    /// The series grouped into families under their natural names: no clash settled, no
    /// family renamed.
    fn grouped(series: &'a [Series]) -> Self {
        let (families, family_of) = group_into_families(series);

        // Counting sort of the series by family, stable; not needed when they come family
        // by family already.
        let mut bounds = vec![0; families.len() + 1];
        for &family in &family_of {
            bounds[family + 1] += 1;
        }
        for f in 0..families.len() {
            bounds[f + 1] += bounds[f];
        }
        let mut members = Vec::new();
        if !family_of.is_sorted() {
            let mut next = bounds.clone();
            members = vec![0; series.len()];
            for (i, &family) in family_of.iter().enumerate() {
                members[next[family]] = i;
                next[family] += 1;
            }
        }
        Self {
            families,
            members,
            bounds,
            renamed: Vec::new(),
        }
    }
}

/// The families of `series` under their natural names (before any clash is settled), in
/// order of first appearance, and the family of each series.
fn group_into_families(series: &[Series]) -> (Vec<Family<'_>>, Vec<usize>) {
    let mut families: Vec<Family<'_>> = Vec::new();
    let mut index: HashMap<(Cow<'_, str>, SeriesKind), usize> = HashMap::new();
    let mut family_of = Vec::with_capacity(series.len());
    let mut previous_series: Option<&Series> = None;
    for one in series {
        // Series usually come family by family: one named like the series before it is in
        // its family, with nothing to sanitize or look up; else the previous family is
        // tried before hashing.
        let same_as_before = previous_series
            .is_some_and(|before| before.kind == one.kind && before.name == one.name);
        previous_series = Some(one);
        let family = match family_of.last() {
            Some(&family) if same_as_before => family,
            _ => {
                let name = natural_family_name(sanitized(&one.name, true), one.kind);
                let previous = family_of.last().copied().filter(|&f: &usize| {
                    let family: &Family<'_> = &families[f];
                    family.kind == one.kind && family.name == name
                });
                let next = families.len();
                let family = previous
                    .unwrap_or_else(|| *index.entry((name.clone(), one.kind)).or_insert(next));
                if family == next {
                    families.push(Family {
                        name,
                        kind: one.kind,
                        unit: None,
                        help: None,
                    });
                }
                family
            }
        };
        let entry = &mut families[family];
        if entry.unit.is_none() {
            entry.unit = one.unit.as_ref();
        }
        if entry.help.is_none() {
            entry.help = one.help.as_deref().filter(|h| !h.is_empty());
        }
        family_of.push(family);
    }
    (families, family_of)
}

/// Keeps the first of two clashing families under its name and renames the later one to a
/// name that no family has, not even one further down; returns the renamings.
fn rename_clashing_families<'a>(families: &mut [Family<'a>]) -> Vec<(Cow<'a, str>, String)> {
    let mut natural: HashMap<Cow<'a, str>, u8> = HashMap::with_capacity(families.len());
    for family in families.iter() {
        *natural.entry(family.name.clone()).or_default() |= kind_bit(family.kind);
    }
    let mut taken: HashMap<Cow<'a, str>, u8> = HashMap::with_capacity(families.len());
    let mut scratch = String::new();
    let mut renamed = Vec::new();
    for family in families.iter_mut() {
        if clashes(&taken, &family.name, family.kind, &mut scratch) {
            let base = format!("{}_{}", family.name, family.kind.as_str());
            let mut candidate = base.clone();
            let mut attempt = 2;
            while clashes(&taken, &candidate, family.kind, &mut scratch)
                || clashes(&natural, &candidate, family.kind, &mut scratch)
            {
                candidate = format!("{base}_{attempt}");
                attempt += 1;
            }
            let old = std::mem::replace(&mut family.name, Cow::Owned(candidate.clone()));
            renamed.push((old, candidate));
        }
        *taken.entry(family.name.clone()).or_default() |= kind_bit(family.kind);
    }
    renamed
}

impl Layout<'_> {
    /// The index into the series of the member at `position` (in `bounds[f]..bounds[f + 1]`
    /// for family `f`).
    fn member(&self, position: usize) -> usize {
        self.members.get(position).copied().unwrap_or(position)
    }
}

/// A counter's family name drops a `_total` suffix (its samples get it back), unless nothing
/// would be left of it.
fn natural_family_name(name: Cow<'_, str>, kind: SeriesKind) -> Cow<'_, str> {
    if kind != SeriesKind::Counter {
        return name;
    }
    let Some(stem_len) = name
        .strip_suffix("_total")
        .filter(|stem| !stem.is_empty())
        .map(str::len)
    else {
        return name;
    };
    match name {
        Cow::Borrowed(name) => Cow::Borrowed(&name[..stem_len]),
        Cow::Owned(mut name) => {
            name.truncate(stem_len);
            Cow::Owned(name)
        }
    }
}

/// The label sets already written in one family, without an allocation per series, in one
/// of two ways.
///
/// - **Hashes only** (first): a bit per hash (its low bits, in a set about eight times the
///   family's size) says which hashes may have come before; those that find their bit set
///   are kept, and when the family ends, the list of all hashes tells whether any of them
///   truly came twice. Nearly every family has no repeated label set, and a small bit set
///   and lists written in order cost far less than a table probed at random for every
///   series, which for a large family lives outside the processor's nearest caches.
/// - **Exact**: when a hash came twice, the family is written again with each block looked
///   up as it is written (a range of the text, chained by hash), so that the first series
///   of a label set is the one written.
#[derive(Debug, Default)]
struct LabelSets {
    exact: bool,
    /// Hashes only: every hash, in order.
    hashes: Vec<u64>,
    /// Hashes only: a bit per value of a hash's low bits, set when one came.
    bits: Vec<u64>,
    /// Hashes only: the hashes that found their bit set.
    maybe_repeated: Vec<u64>,
    ranges: Vec<(usize, usize)>,
    /// For each entry, the previous entry with the same hash.
    previous: Vec<Option<usize>>,
    heads: HashMap<u64, usize, BuildHasherDefault<PassThrough>>,
}

/// A fast hash of a label block. Not collision resistant, and it need not be: equal hashes
/// only send a family down the exact path, where blocks are compared byte for byte, and the
/// input is the exporter's own series, not an attacker's choice of keys for one table.
fn fold_hash(bytes: &[u8]) -> u64 {
    const K: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut hash = bytes.len() as u64;
    let mut chunks = bytes.chunks_exact(8);
    for chunk in &mut chunks {
        let word = u64::from_le_bytes(chunk.try_into().unwrap_or_default());
        hash = (hash ^ word).wrapping_mul(K).rotate_left(29);
    }
    // The last bytes as a little-endian word padded with zeros, without a call to copy them.
    let tail = chunks
        .remainder()
        .iter()
        .rev()
        .fold(0, |word, &b| (word << 8) | u64::from(b));
    hash = (hash ^ tail).wrapping_mul(K);
    hash ^ (hash >> 32)
}

/// The hasher of a map keyed by a hash already computed.
#[derive(Debug, Default)]
struct PassThrough(u64);

impl Hasher for PassThrough {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        self.0 = fold_hash(bytes);
    }

    fn write_u64(&mut self, value: u64) {
        self.0 = value;
    }
}

impl LabelSets {
    /// Forgets every set, and makes room for `expected` new ones, hashes only or `exact`.
    fn clear(&mut self, expected: usize, exact: bool) {
        self.exact = exact;
        self.hashes.clear();
        self.bits.clear();
        self.maybe_repeated.clear();
        self.ranges.clear();
        self.previous.clear();
        self.heads.clear();
        if exact {
            self.ranges.reserve(expected);
            self.previous.reserve(expected);
            self.heads.reserve(expected);
        } else {
            self.hashes.reserve(expected);
            // A power of two of words, at least eight bits per label set.
            let words = expected.div_ceil(8).next_power_of_two();
            self.bits.resize(words, 0);
        }
    }

    /// Adds the block `text[start..end]`; false when exact and an equal one was added since
    /// the last [`clear`](Self::clear). Blocks added before must still be where they were
    /// in `text`.
    fn insert(&mut self, text: &str, start: usize, end: usize) -> bool {
        let block = &text.as_bytes()[start..end];
        let hash = fold_hash(block);
        if !self.exact {
            #[allow(
                clippy::cast_possible_truncation,
                reason = "the low bits are the point"
            )]
            let bit = hash as usize & (self.bits.len() * 64 - 1);
            let (word, mask) = (bit / 64, 1_u64 << (bit % 64));
            if self.bits[word] & mask == 0 {
                self.bits[word] |= mask;
            } else {
                self.maybe_repeated.push(hash);
            }
            self.hashes.push(hash);
            return true;
        }
        let new = self.ranges.len();
        // One probe of the table: a new hash is the common case.
        let previous = match self.heads.entry(hash) {
            Entry::Vacant(vacant) => {
                vacant.insert(new);
                None
            }
            Entry::Occupied(mut occupied) => {
                let mut at = Some(*occupied.get());
                while let Some(entry) = at {
                    let (start, end) = self.ranges[entry];
                    if &text.as_bytes()[start..end] == block {
                        return false;
                    }
                    at = self.previous[entry];
                }
                Some(occupied.insert(new))
            }
        };
        self.ranges.push((start, end));
        self.previous.push(previous);
        true
    }

    /// Whether two blocks added since the last [`clear`](Self::clear) without `exact` may
    /// have been equal (their hashes are).
    fn may_repeat(&mut self) -> bool {
        if self.maybe_repeated.is_empty() {
            return false;
        }
        // How often each hash that found its bit set came, in one pass over them all.
        let mut counts: HashMap<u64, usize, BuildHasherDefault<PassThrough>> =
            self.maybe_repeated.iter().map(|&hash| (hash, 0)).collect();
        self.hashes.iter().any(|hash| {
            counts.get_mut(hash).is_some_and(|count| {
                *count += 1;
                *count > 1
            })
        })
    }
}

/// What the renderer left out or changed, reported once per rendering.
#[derive(Clone, Debug, Default)]
struct Adjustments {
    invalid_counter_points: usize,
    same_millisecond_points: usize,
    duplicate_series: usize,
    clashing_labels: usize,
}

/// The reusable buffers of one rendering.
#[derive(Debug, Default)]
struct TextWriter<'a> {
    /// A sample line up to its value, for the second and later points of a series.
    line: String,
    sorted_labels: Vec<(Cow<'a, str>, &'a str)>,
    /// Valid label names in the order the last series written had them, each with the text
    /// before its value: `{name="`, or `",name="` after the first.
    label_names: Vec<(&'a str, String)>,
    points: Vec<(i64, f64)>,
    seen: LabelSets,
    /// The last timestamp written, and its text.
    timestamp: (Option<i64>, String),
    adjusted: Adjustments,
}

fn write_text(out: &mut String, series: &[Series], format: Format, samples: Samples) {
    let layout = Layout::new(series);
    let mut writer = TextWriter::default();
    let start = out.len();
    for (f, family) in layout.families.iter().enumerate() {
        let members = layout.bounds[f]..layout.bounds[f + 1];
        let (family_start, adjusted) = (out.len(), writer.adjusted.clone());
        // Hashes only; again, exact, if two label sets may have been the same.
        for exact in [false, true] {
            write_metadata(out, family, format);
            writer.seen.clear(members.len(), exact);
            for position in members.clone() {
                if position == SIZING_SAMPLE {
                    reserve_for_the_rest(out, start, position, series.len());
                }
                writer.write_series(
                    out,
                    &family.name,
                    family.kind,
                    &series[layout.member(position)],
                    format,
                    samples,
                );
            }
            if exact || !writer.seen.may_repeat() {
                break;
            }
            out.truncate(family_start);
            writer.adjusted.clone_from(&adjusted);
        }
    }
    if format == Format::OpenMetrics {
        out.push_str("# EOF\n");
    }
    report(&layout.renamed, &writer.adjusted);
}

/// One `tracing` event for everything a rendering left out or changed.
fn report(renamed: &[(Cow<'_, str>, String)], adjusted: &Adjustments) {
    if !renamed.is_empty()
        || adjusted.invalid_counter_points > 0
        || adjusted.duplicate_series > 0
        || adjusted.clashing_labels > 0
    {
        tracing::warn!(
            renamed_families = renamed.len(),
            first_renamed = ?renamed.first(),
            invalid_counter_points = adjusted.invalid_counter_points,
            duplicate_series = adjusted.duplicate_series,
            clashing_labels = adjusted.clashing_labels,
            "some series could not be written as given; see metrics_core::render"
        );
    }
    if adjusted.same_millisecond_points > 0 {
        tracing::debug!(
            points = adjusted.same_millisecond_points,
            "points within one millisecond of another were merged"
        );
    }
}

/// After how many series [`reserve_for_the_rest`] sizes the text.
const SIZING_SAMPLE: usize = 64;

/// Makes room for the rest of the text at once, from the length of what `written` series
/// took, plus an eighth: a large text then grows by one copy, not a doubling for each
/// power of two (each a fresh allocation whose pages the system must map).
fn reserve_for_the_rest(out: &mut String, start: usize, written: usize, total: usize) {
    let per_series = (out.len() - start) / written.max(1);
    let rest = per_series.saturating_mul(total - written);
    out.reserve(rest.saturating_add(rest / 8));
}

fn write_metadata(out: &mut String, family: &Family<'_>, format: Format) {
    let name = &*family.name;
    let counter = family.kind == SeriesKind::Counter;
    match format {
        Format::OpenMetrics => {
            push_all(out, &["# TYPE ", name, " ", family.kind.as_str(), "\n"]);
            if let Some(unit) = family.unit.map(Unit::as_str).filter(|unit| {
                !unit.is_empty()
                    && name
                        .strip_suffix(unit)
                        .is_some_and(|stem| stem.ends_with('_'))
            }) {
                push_all(out, &["# UNIT ", name, " ", unit, "\n"]);
            }
            if let Some(help) = family.help {
                push_all(out, &["# HELP ", name, " "]);
                escape_help_into(help, true, out);
                out.push('\n');
            }
        }
        Format::Prometheus => {
            let suffix = if counter { "_total" } else { "" };
            if let Some(help) = family.help {
                push_all(out, &["# HELP ", name, suffix, " "]);
                escape_help_into(help, false, out);
                out.push('\n');
            }
            let kind = match family.kind {
                SeriesKind::Unknown => "untyped",
                other => other.as_str(),
            };
            push_all(out, &["# TYPE ", name, suffix, " ", kind, "\n"]);
        }
    }
}

impl<'a> TextWriter<'a> {
    fn write_series(
        &mut self,
        out: &mut String,
        family: &str,
        kind: SeriesKind,
        series: &'a Series,
        format: Format,
        samples: Samples,
    ) {
        let counter = kind == SeriesKind::Counter;
        if samples == Samples::Latest {
            let Some(point) = self.newest_point(series, counter) else {
                return;
            };
            if self.write_line_start(out, family, counter, &series.labels) {
                write_value(out, point.value);
                out.push('\n');
            }
            return;
        }
        self.points.clear();
        self.every_point(series, counter);
        if self.points.is_empty() {
            return;
        }
        let line = out.len();
        if !self.write_line_start(out, family, counter, &series.labels) {
            return;
        }
        if self.points.len() > 1 {
            self.line.clear();
            self.line.push_str(&out[line..]);
        }
        for (i, &(millis, value)) in self.points.iter().enumerate() {
            if i > 0 {
                out.push_str(&self.line);
            }
            write_value(out, value);
            out.push(' ');
            // Points of one collection mostly share a time: format it once.
            if self.timestamp.0 != Some(millis) {
                self.timestamp.1.clear();
                write_timestamp(&mut self.timestamp.1, millis, format);
                self.timestamp.0 = Some(millis);
            }
            out.push_str(&self.timestamp.1);
            out.push('\n');
        }
    }

    /// A sample line up to its value, `name{labels}`, written in place; false, with nothing
    /// written, when the family has a series of the same label set already.
    #[inline]
    fn write_line_start(
        &mut self,
        out: &mut String,
        family: &str,
        counter: bool,
        labels: &'a BTreeMap<String, String>,
    ) -> bool {
        let line = out.len();
        out.push_str(family);
        if counter {
            out.push_str("_total");
        }
        if self.write_unique_labels(out, labels) {
            true
        } else {
            out.truncate(line);
            false
        }
    }

    /// The label block of `labels` appended to `out`; false, with nothing written, when the
    /// family has a series of the same label set already.
    #[inline]
    fn write_unique_labels(
        &mut self,
        out: &mut String,
        labels: &'a BTreeMap<String, String>,
    ) -> bool {
        let block = out.len();
        self.write_labels(out, labels);
        if self.seen.insert(out, block, out.len()) {
            true
        } else {
            out.truncate(block);
            self.adjusted.duplicate_series += 1;
            false
        }
    }

    /// Every point that can be a sample, oldest first, one per millisecond (the last given
    /// wins), into `self.points`.
    fn every_point(&mut self, series: &Series, counter: bool) {
        for point in &series.points {
            // A counter total is a non-negative number; anything else is not a counter
            // sample, so the point is left out rather than written invalid.
            if counter && !(point.value.is_finite() && point.value >= 0.0) {
                self.adjusted.invalid_counter_points += 1;
                continue;
            }
            self.points
                .push((point.time.timestamp_millis(), point.value));
        }
        if !self.points.is_sorted_by_key(|p| p.0) {
            self.points.sort_by_key(|p| p.0);
        }
        let before = self.points.len();
        // Within one millisecond the last point given wins.
        self.points.dedup_by(|later, kept| {
            let same = later.0 == kept.0;
            if same {
                *kept = *later;
            }
            same
        });
        self.adjusted.same_millisecond_points += before - self.points.len();
    }

    /// The newest point that can be a sample (of points in one millisecond, the last given):
    /// what [`Self::every_point`] would put last.
    fn newest_point<'s>(&mut self, series: &'s Series, counter: bool) -> Option<&'s Point> {
        let valid = |point: &Point| !counter || (point.value.is_finite() && point.value >= 0.0);
        // One point, as an exporter keeps: its time need not be read.
        if let [point] = series.points.as_slice() {
            if valid(point) {
                return Some(point);
            }
            self.adjusted.invalid_counter_points += 1;
            return None;
        }
        let mut newest: Option<(i64, &Point)> = None;
        for point in &series.points {
            if !valid(point) {
                self.adjusted.invalid_counter_points += 1;
                continue;
            }
            let millis = point.time.timestamp_millis();
            if newest.is_none_or(|(time, _)| millis >= time) {
                newest = Some((millis, point));
            }
        }
        newest.map(|(_, point)| point)
    }

    /// `{a="1",b="2"}` appended to `out`, names sanitized and sorted, empty values left out
    /// (to Prometheus an empty label is no label); nothing when no label is left.
    fn write_labels(&mut self, out: &mut String, labels: &'a BTreeMap<String, String>) {
        let start = out.len();
        let mut written = 0;
        // Valid names come sorted from the map: written as they come, in one pass, unless
        // one needs sanitizing. (A name with an empty value is left out either way.) The
        // series of a family mostly have the names of the one before, known to be valid,
        // and the text between their values written out already.
        for (name, value) in labels.iter().filter(|(_, v)| !v.is_empty()) {
            if self
                .label_names
                .get(written)
                .is_none_or(|(known, _)| known != name)
            {
                if !is_valid_name(name, false) {
                    out.truncate(start);
                    self.write_sanitized_labels(out, labels);
                    return;
                }
                let before = if written == 0 { "{" } else { "\"," };
                self.label_names.truncate(written);
                self.label_names.push((name, format!("{before}{name}=\"")));
            }
            out.push_str(&self.label_names[written].1);
            escape_label_value_into(value, out);
            written += 1;
        }
        if written > 0 {
            out.push_str("\"}");
        }
    }

    fn write_sanitized_labels(&mut self, out: &mut String, labels: &'a BTreeMap<String, String>) {
        self.sorted_labels.clear();
        self.sorted_labels.extend(
            labels
                .iter()
                .filter(|(_, v)| !v.is_empty())
                .map(|(name, value)| (sanitized(name, false), value.as_str())),
        );
        // Stable: of names that sanitize alike, the one first in the map wins.
        self.sorted_labels.sort_by(|a, b| a.0.cmp(&b.0));
        let before = self.sorted_labels.len();
        self.sorted_labels.dedup_by(|later, kept| later.0 == kept.0);
        self.adjusted.clashing_labels += before - self.sorted_labels.len();
        for (i, (name, value)) in self.sorted_labels.iter().enumerate() {
            out.push(if i == 0 { '{' } else { ',' });
            out.push_str(name);
            out.push_str("=\"");
            escape_label_value_into(value, out);
            out.push('"');
        }
        if !self.sorted_labels.is_empty() {
            out.push('}');
        }
    }
}

fn push_all(out: &mut String, parts: &[&str]) {
    for part in parts {
        out.push_str(part);
    }
}

/// HELP text: `\` and newline escaped in both formats, `"` only in OpenMetrics (the Prometheus
/// text parser rejects `\"` there).
fn escape_help_into(help: &str, quote: bool, out: &mut String) {
    let mut start = 0;
    for (i, byte) in help.bytes().enumerate() {
        let escaped = match byte {
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'"' if quote => "\\\"",
            _ => continue,
        };
        out.push_str(&help[start..i]);
        out.push_str(escaped);
        start = i + 1;
    }
    out.push_str(&help[start..]);
}

/// ` value` after a sample's name and labels: -0 is 0 to every reader, and counters are
/// written as non-negative.
#[inline]
fn write_value(out: &mut String, value: f64) {
    out.push(' ');
    write_number(out, if value == 0.0 { 0.0 } else { value });
}

/// Full precision for machines: integers below 10^15 without a fraction, other numbers in
/// Rust's shortest round-trip form (exponent for very large and small ones), `NaN`, `+Inf`,
/// `-Inf`.
fn write_number(out: &mut String, value: f64) {
    if value.is_nan() {
        out.push_str("NaN");
    } else if value.is_infinite() {
        out.push_str(if value > 0.0 { "+Inf" } else { "-Inf" });
    } else if value.abs() < 1e15
        && let Some(integer) = whole(value)
    {
        push_integer(out, integer);
    } else {
        let _ = write!(out, "{value:?}");
    }
}

/// The value as an integer when it has no fraction (`fract() == 0`, without the call); for
/// values below 2^63 in magnitude.
fn whole(value: f64) -> Option<i64> {
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_precision_loss,
        reason = "truncation is the test: a value with a fraction does not come back equal"
    )]
    let integer = value as i64;
    #[allow(clippy::cast_precision_loss, reason = "below 2^63, as above")]
    let back = integer as f64;
    (back == value).then_some(integer)
}

/// An integer in decimal, as `{value}` writes it, without the formatting machinery (this is
/// most of what an exporter's body holds).
fn push_integer(out: &mut String, value: i64) {
    out.push_str(itoa::Buffer::new().format(value));
}

/// OpenMetrics: seconds with milliseconds (`-1.500` is 1.5 s before the epoch); Prometheus:
/// milliseconds.
fn write_timestamp(out: &mut String, millis: i64, format: Format) {
    match format {
        Format::Prometheus => push_integer(out, millis),
        Format::OpenMetrics => {
            let sign = if millis < 0 { "-" } else { "" };
            let magnitude = millis.unsigned_abs();
            let (seconds, fraction) = (magnitude / 1000, magnitude % 1000);
            let _ = if fraction == 0 {
                write!(out, "{sign}{seconds}")
            } else {
                write!(out, "{sign}{seconds}.{fraction:03}")
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aggregate::SourceFailure;
    use crate::error::Error;
    use crate::model::Point;
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
        collection.failures.push(SourceFailure::new(
            "vumi",
            Error::timeout("vumi", "collect did not finish within 100 ms"),
        ));
        collection.failures.push(
            SourceFailure::new("outline-eu", Error::api("outline", 500, None, "boom"))
                .with_endpoint("203.0.113.7:8443"),
        );
        let table = table(&collection);
        let lines: Vec<&str> = table.lines().collect();
        assert!(lines[0].starts_with("SERIES       LABELS  VALUE  TREND  POINTS"));
        assert!(
            lines[1].starts_with("a            k=v         1  ▄      1"),
            "{}",
            lines[1]
        );
        assert!(
            lines[2].starts_with("longer_name          12345  ▄      1"),
            "{}",
            lines[2]
        );
        assert_eq!(lines[3], "ok      x: 2 series");
        assert_eq!(
            lines[4],
            "FAILED  vumi: vumi: timed out: collect did not finish within 100 ms"
        );
        assert_eq!(
            lines[5],
            "FAILED  outline-eu (203.0.113.7:8443): outline: the server answered HTTP 500: boom"
        );
    }

    #[test]
    fn json_has_series_and_failures() {
        let mut collection = Collection::default();
        collection
            .series
            .push(Series::new("a", SeriesKind::Counter).with_point(at(0), 1.5));
        collection.sources.push(("coopr-eu".into(), None));
        collection.failures.push(
            SourceFailure::new("coopr-eu", Error::api("coopr", 503, None, "down"))
                .with_endpoint("10.0.0.2:55054"),
        );
        let value: serde_json::Value = serde_json::from_str(&json(&collection)).unwrap();
        assert_eq!(value["series"][0]["points"][0]["value"], 1.5);
        assert_eq!(
            value["series"][0]["points"][0]["time"],
            "1970-01-01T00:00:00Z"
        );
        assert_eq!(
            value["sources"],
            serde_json::json!([{"source": "coopr-eu", "series": null}])
        );
        assert_eq!(
            value["failures"][0],
            serde_json::json!({
                "source": "coopr-eu",
                "backend": "coopr",
                "endpoint": "10.0.0.2:55054",
                "error": {
                    "backend": "coopr",
                    "kind": "api",
                    "status": 503,
                    "retryable": true,
                    "message": "coopr: the server answered HTTP 503: down"
                }
            })
        );
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

    fn ms(millis: i64) -> chrono::DateTime<Utc> {
        Utc.timestamp_millis_opt(millis).unwrap()
    }

    /// Both formats, for assertions on each.
    fn both(series: &[Series]) -> (String, String) {
        (openmetrics(series), prometheus(series))
    }

    #[test]
    fn prometheus_format_names_counters_by_their_total_and_has_no_eof() {
        let series = [
            Series::new("outline_bytes", SeriesKind::Counter)
                .with_unit(Unit::Bytes)
                .with_help("Bytes \"moved\"\\\nlast line")
                .with_label("k", "1")
                .with_point(ms(10_000), 5.0),
            Series::new("other", SeriesKind::Unknown).with_point(ms(1), 0.5),
        ];
        assert_eq!(
            prometheus(&series),
            "# HELP outline_bytes_total Bytes \"moved\"\\\\\\nlast line\n\
             # TYPE outline_bytes_total counter\n\
             outline_bytes_total{k=\"1\"} 5 10000\n\
             # TYPE other untyped\n\
             other 0.5 1\n"
        );
    }

    #[test]
    fn a_counter_named_only_total_keeps_a_family_name() {
        let series = [Series::new("_total", SeriesKind::Counter).with_point(at(1), 1.0)];
        let (om, prom) = both(&series);
        assert_eq!(om, "# TYPE _total counter\n_total_total 1 1\n# EOF\n");
        assert_eq!(prom, "# TYPE _total_total counter\n_total_total 1 1000\n");
    }

    #[test]
    fn counters_leave_out_points_that_are_not_totals() {
        let series = [Series::new("c", SeriesKind::Counter).with_points(
            [f64::NAN, -1.0, f64::INFINITY, f64::NEG_INFINITY, -0.0, 3.0]
                .iter()
                .enumerate()
                .map(|(i, &value)| Point {
                    time: at(i64::try_from(i).unwrap()),
                    value,
                })
                .collect(),
        )];
        let (om, prom) = both(&series);
        assert_eq!(om, "# TYPE c counter\nc_total 0 4\nc_total 3 5\n# EOF\n");
        assert_eq!(
            prom,
            "# TYPE c_total counter\nc_total 0 4000\nc_total 3 5000\n"
        );
        // Gauges keep every value.
        let gauge = [Series::new("g", SeriesKind::Gauge)
            .with_point(at(1), f64::NAN)
            .with_point(at(2), f64::NEG_INFINITY)
            .with_point(at(3), -1e300)
            .with_point(at(4), 1.5e-7)];
        assert_eq!(
            openmetrics(&gauge),
            "# TYPE g gauge\ng NaN 1\ng -Inf 2\ng -1e300 3\ng 1.5e-7 4\n# EOF\n"
        );
    }

    #[test]
    fn a_gauge_and_a_counter_of_one_name_stay_two_families() {
        let series = [
            Series::new("x", SeriesKind::Gauge).with_point(at(1), 1.0),
            Series::new("x_total", SeriesKind::Counter).with_point(at(1), 2.0),
            Series::new("y", SeriesKind::Counter).with_point(at(1), 3.0),
            Series::new("y_total", SeriesKind::Gauge).with_point(at(1), 4.0),
            Series::new("y_created", SeriesKind::Unknown).with_point(at(1), 5.0),
            // Takes the name the first rename would want, so the rename goes on to `_2`.
            Series::new("x_counter", SeriesKind::Gauge).with_point(at(1), 6.0),
        ];
        let (om, prom) = both(&series);
        assert_eq!(
            om,
            "# TYPE x gauge\nx 1 1\n\
             # TYPE x_counter_2 counter\nx_counter_2_total 2 1\n\
             # TYPE y counter\ny_total 3 1\n\
             # TYPE y_total_gauge gauge\ny_total_gauge 4 1\n\
             # TYPE y_created_unknown unknown\ny_created_unknown 5 1\n\
             # TYPE x_counter gauge\nx_counter 6 1\n\
             # EOF\n"
        );
        assert!(prom.contains("# TYPE x_counter_2_total counter\nx_counter_2_total 2 1000\n"));
        assert!(prom.contains("# TYPE y_created_unknown untyped\n"));
    }

    #[test]
    fn counters_of_one_family_merge_whether_or_not_named_total() {
        let series = [
            Series::new("bytes_total", SeriesKind::Counter)
                .with_label("k", "1")
                .with_point(at(1), 1.0),
            Series::new("bytes", SeriesKind::Counter)
                .with_label("k", "2")
                .with_point(at(1), 2.0),
        ];
        assert_eq!(
            openmetrics(&series),
            "# TYPE bytes counter\nbytes_total{k=\"1\"} 1 1\nbytes_total{k=\"2\"} 2 1\n# EOF\n"
        );
    }

    #[test]
    fn timestamps_before_the_epoch_and_below_a_millisecond() {
        let nanos = |n: i64| Utc.timestamp_nanos(n);
        let series = [Series::new("t", SeriesKind::Gauge)
            .with_point(ms(-1_500), 1.0)
            .with_point(ms(-500), 2.0)
            .with_point(ms(-1), 3.0)
            .with_point(nanos(1_999_999), 4.0)
            .with_point(ms(253_402_300_799_999), 5.0)];
        let (om, prom) = both(&series);
        assert_eq!(
            om,
            "# TYPE t gauge\nt 1 -1.500\nt 2 -0.500\nt 3 -0.001\nt 4 0.001\nt 5 253402300799.999\n# EOF\n"
        );
        assert_eq!(
            prom,
            "# TYPE t gauge\nt 1 -1500\nt 2 -500\nt 3 -1\nt 4 1\nt 5 253402300799999\n"
        );
    }

    #[test]
    fn points_are_written_oldest_first_one_per_millisecond() {
        let series = [Series::new("p", SeriesKind::Gauge)
            .with_point(at(3), 3.0)
            .with_point(at(1), 1.0)
            .with_point(Utc.timestamp_nanos(3_000_000_500), 4.0)];
        assert_eq!(
            openmetrics(&series),
            "# TYPE p gauge\np 1 1\np 4 3\n# EOF\n"
        );
    }

    #[test]
    fn names_from_public_fields_or_json_are_sanitized_when_written() {
        let series: Series = serde_json::from_value(serde_json::json!({
            "name": "json.name with spaces",
            "labels": {"a-b": "x", "__name__": "y", "9": "z", "": "w", "é": "v"},
            "kind": "gauge",
            "points": [{"time": "1970-01-01T00:00:01Z", "value": 1.0}]
        }))
        .unwrap();
        let (om, prom) = both(std::slice::from_ref(&series));
        // "" and "é" both become "_": the one that sorts first ("") is kept.
        let sample = "json_name_with_spaces{_=\"w\",_9=\"z\",_name__=\"y\",a_b=\"x\"} 1";
        assert_eq!(
            om,
            format!("# TYPE json_name_with_spaces gauge\n{sample} 1\n# EOF\n")
        );
        assert_eq!(
            prom,
            format!("# TYPE json_name_with_spaces gauge\n{sample} 1000\n")
        );

        let mut fields = Series::new("ok", SeriesKind::Gauge).with_point(at(1), 1.0);
        fields.name = String::new();
        fields.labels.insert("le:x".into(), "1".into());
        assert_eq!(
            openmetrics(&[fields]),
            "# TYPE _ gauge\n_{le_x=\"1\"} 1 1\n# EOF\n"
        );
    }

    #[test]
    fn a_label_set_is_written_once_per_family() {
        let series = [
            Series::new("d", SeriesKind::Gauge)
                .with_label("k", "1")
                .with_point(at(1), 1.0),
            // No points: does not take the label set.
            Series::new("d", SeriesKind::Gauge).with_label("k", "2"),
            Series::new("d", SeriesKind::Gauge)
                .with_label("k", "1")
                .with_point(at(2), 2.0),
            Series::new("d", SeriesKind::Gauge)
                .with_label("k", "2")
                .with_point(at(2), 3.0),
            // An empty label is no label.
            Series::new("d", SeriesKind::Gauge)
                .with_label("k", "")
                .with_point(at(1), 4.0),
            Series::new("d", SeriesKind::Gauge).with_point(at(2), 5.0),
        ];
        assert_eq!(
            openmetrics(&series),
            "# TYPE d gauge\nd{k=\"1\"} 1 1\nd{k=\"2\"} 3 2\nd 4 1\n# EOF\n"
        );
    }

    #[test]
    fn help_units_and_empty_help() {
        let series = [
            Series::new("x_seconds", SeriesKind::Gauge)
                .with_unit(Unit::Bytes)
                .with_help(""),
            Series::new("y_seconds", SeriesKind::Counter).with_unit(Unit::Seconds),
            Series::new("z_", SeriesKind::Gauge).with_unit(Unit::Other(String::new())),
            Series::new("w_a_b", SeriesKind::Gauge).with_unit(Unit::Other("a b".into())),
        ];
        assert_eq!(
            openmetrics(&series),
            "# TYPE x_seconds gauge\n\
             # TYPE y_seconds counter\n# UNIT y_seconds seconds\n\
             # TYPE z_ gauge\n# TYPE w_a_b gauge\n# EOF\n"
        );
    }

    #[test]
    fn latest_writers_write_each_series_newest_point_without_its_time() {
        let series = [
            Series::new("g", SeriesKind::Gauge)
                .with_label("k", "1")
                .with_point(at(3), 3.0)
                .with_point(at(1), 1.0)
                // The same millisecond as the newest: given last, so it wins.
                .with_point(Utc.timestamp_nanos(3_000_000_500), 4.0),
            // The newest point cannot be a counter total: the newest that can is written.
            Series::new("c", SeriesKind::Counter)
                .with_point(at(1), 7.0)
                .with_point(at(2), f64::NAN),
            // No point that can be a sample: nothing, and no claim on the label set.
            Series::new("g", SeriesKind::Gauge).with_label("k", "2"),
            Series::new("g", SeriesKind::Gauge)
                .with_label("k", "2")
                .with_point(at(9), -0.0),
            // A label set written already.
            Series::new("g", SeriesKind::Gauge)
                .with_label("k", "1")
                .with_point(at(5), 5.0),
        ];
        let (mut om, mut prom) = (String::new(), String::new());
        write_openmetrics_latest(&mut om, &series);
        write_prometheus_latest(&mut prom, &series);
        assert_eq!(
            om,
            "# TYPE g gauge\ng{k=\"1\"} 4\ng{k=\"2\"} 0\n# TYPE c counter\nc_total 7\n# EOF\n"
        );
        assert_eq!(
            prom,
            "# TYPE g gauge\ng{k=\"1\"} 4\ng{k=\"2\"} 0\n# TYPE c_total counter\nc_total 7\n"
        );
    }

    #[test]
    fn integers_are_written_as_the_formatter_writes_them() {
        let mut values = vec![
            0_i64,
            1,
            -1,
            9,
            10,
            99,
            100,
            i64::MAX,
            i64::MIN,
            999_999_999_999_999,
        ];
        values.extend((0..64).map(|shift| 1_i64 << shift));
        values.extend((0..19).map(|power| 10_i64.pow(power) - 1));
        values.extend((0..19).map(|power| -(10_i64.pow(power))));
        for value in values {
            let mut out = String::from("x");
            push_integer(&mut out, value);
            assert_eq!(out, format!("x{value}"));
        }
        let mut out = String::new();
        for value in [1e15 - 1.0, -1e15 + 1.0, 1e15, 0.5, 1_700_000_000.0, -3.0] {
            write_number(&mut out, value);
            out.push(' ');
        }
        assert_eq!(
            out,
            "999999999999999 -999999999999999 1000000000000000.0 0.5 1700000000 -3 "
        );
    }

    #[test]
    fn snapshots_compare_by_the_text_they_write() {
        let one =
            |seconds, value| Series::new("a", SeriesKind::Gauge).with_point(at(seconds), value);
        let old = Snapshot::new(&[one(1, 1.0)]);
        assert!(old.same_text(&Snapshot::new(&[one(2, 1.0)]), false));
        assert!(!old.same_text(&Snapshot::new(&[one(2, 1.0)]), true));
        assert!(!old.same_text(&Snapshot::new(&[one(1, 2.0)]), false));
        assert!(!old.same_text(&Snapshot::new(&[one(1, 1.0).with_label("k", "v")]), false));
        assert!(!old.same_text(&Snapshot::new(&[one(1, 1.0).with_help("A")]), false));
        assert!(!old.same_text(&Snapshot::default(), false));
        let nan = Snapshot::new(&[one(1, f64::NAN)]);
        assert!(
            nan.same_text(&nan.clone(), true),
            "NaN writes as NaN every time"
        );
    }

    #[test]
    fn writing_appends_to_a_reused_buffer() {
        let series = [Series::new("a", SeriesKind::Gauge).with_point(at(1), 1.0)];
        let mut buffer = String::from("kept\n");
        write_prometheus(&mut buffer, &series);
        write_openmetrics(&mut buffer, &series);
        assert_eq!(
            buffer,
            "kept\n# TYPE a gauge\na 1 1000\n# TYPE a gauge\na 1 1\n# EOF\n"
        );
    }
}
