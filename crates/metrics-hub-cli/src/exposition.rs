//! What `metrics-hub serve` writes for `/metrics`: one sample per series, in the Prometheus
//! text format 0.0.4 or OpenMetrics 1.0, with or without sample timestamps.
//!
//! The exporter keeps each source's samples as a [`Snapshot`], made once when the
//! source's collection lands, and writes all the snapshots with [`render_snapshots`] when
//! one of them changes, not per scrape. [`render()`] writes the same bytes straight from
//! series. Both are public so that a program of its own (or a benchmark) can produce the
//! exporter's bytes.
//!
//! The core's renderers do the formats (families, name collisions, duplicates, escaping; see
//! [`metrics_hub::core::render`]); they write every point with its time, which is what
//! `collect` prints. An exporter shows each series' current value once and, unless asked,
//! leaves the time to the scraper: a sample an hour old would be invisible to an instant
//! query.
//!
//! ```
//! use metrics_hub::chrono::Utc;
//! use metrics_hub::{Series, SeriesKind, Unit};
//! use metrics_hub_cli::exposition::{self, Format};
//!
//! let series = [Series::new("outline_access_key_bytes_transferred", SeriesKind::Gauge)
//!     .with_help("Bytes the access key sent")
//!     .with_unit(Unit::Bytes)
//!     .with_label("access_key_id", "7")
//!     .with_label("source", "edge-eu")
//!     .with_point(Utc::now(), 1_572_864.0)];
//! let mut body = exposition::render(&series, Format::OpenMetrics, false);
//! body.push_str(exposition::EOF);
//! assert_eq!(
//!     body,
//!     concat!(
//!         "# TYPE outline_access_key_bytes_transferred gauge\n",
//!         "# HELP outline_access_key_bytes_transferred Bytes the access key sent\n",
//!         "outline_access_key_bytes_transferred{access_key_id=\"7\",source=\"edge-eu\"} 1572864\n",
//!         "# EOF\n",
//!     )
//! );
//! assert_eq!(
//!     Format::OpenMetrics.content_type(),
//!     "application/openmetrics-text; version=1.0.0; charset=utf-8"
//! );
//! ```

use std::borrow::Borrow;

use metrics_hub::Series;
use metrics_hub::core::render;
pub use metrics_hub::core::render::Snapshot;

/// The two text formats `/metrics` serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Format {
    /// Prometheus text format 0.0.4.
    Prometheus,
    /// OpenMetrics 1.0 text.
    OpenMetrics,
}

impl Format {
    /// The `Content-Type` of a body in this format.
    #[must_use]
    pub fn content_type(self) -> &'static str {
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

/// The line that ends an OpenMetrics body; [`render()`] leaves it out.
pub const EOF: &str = "# EOF\n";

/// Writes `series` in `format`, without the closing `# EOF` of OpenMetrics (see [`EOF`]), so
/// that parts rendered apart can be served as one body.
///
/// The exporter gives each series one point, its current value. With `timestamps`, every
/// point is a sample with its time (milliseconds in the Prometheus format, seconds in
/// OpenMetrics); without, each series' newest point is its one sample, without a time: the
/// scraper stamps it. Everything else (families,
/// `# HELP`, `# TYPE`, `# UNIT`, escaping, name collisions, duplicate label sets) is as
/// [`metrics_hub::core::render::write_openmetrics`] and
/// [`write_prometheus`](metrics_hub::core::render::write_prometheus) write it.
#[must_use]
pub fn render(series: &[Series], format: Format, timestamps: bool) -> String {
    let mut out = String::new();
    match (format, timestamps) {
        (Format::Prometheus, true) => render::write_prometheus(&mut out, series),
        (Format::Prometheus, false) => render::write_prometheus_latest(&mut out, series),
        (Format::OpenMetrics, true) => render::write_openmetrics(&mut out, series),
        (Format::OpenMetrics, false) => render::write_openmetrics_latest(&mut out, series),
    }
    if out.ends_with(EOF) {
        out.truncate(out.len() - EOF.len());
    }
    out
}

/// Writes the snapshots' samples in `format`, without the closing `# EOF` of OpenMetrics:
/// what [`render()`] writes for all the snapshots' series in one list, each series reduced to
/// the one point its snapshot kept (its newest that can be a sample; see [`Snapshot`]). For
/// series of one point each, as the exporter keeps, that is the same text.
///
/// ```
/// use metrics_hub::chrono::Utc;
/// use metrics_hub::{Series, SeriesKind};
/// use metrics_hub_cli::exposition::{self, Format, Snapshot};
///
/// let up = |source: &str| {
///     Series::new("coopr_queue_tasks", SeriesKind::Gauge)
///         .with_label("source", source)
///         .with_point(Utc::now(), 3.0)
/// };
/// let (edge, core) = (Snapshot::new(&[up("edge")]), Snapshot::new(&[up("core")]));
/// assert_eq!(
///     exposition::render_snapshots(&[&edge, &core], Format::Prometheus, false),
///     exposition::render(&[up("edge"), up("core")], Format::Prometheus, false),
/// );
/// ```
#[must_use]
pub fn render_snapshots<S: Borrow<Snapshot>>(
    snapshots: &[S],
    format: Format,
    timestamps: bool,
) -> String {
    let mut out = String::new();
    match format {
        Format::Prometheus => render::write_prometheus_snapshots(&mut out, snapshots, timestamps),
        Format::OpenMetrics => {
            render::write_openmetrics_snapshots(&mut out, snapshots, timestamps);
            if out.ends_with(EOF) {
                out.truncate(out.len() - EOF.len());
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use metrics_hub::chrono::{TimeZone as _, Utc};
    use metrics_hub::{SeriesKind, Unit};

    fn one(series: Series, value: f64) -> Series {
        series.with_point(Utc.timestamp_millis_opt(1_700_000_000_250).unwrap(), value)
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
    fn samples_lose_their_timestamps_unless_asked_and_keep_spaces_in_labels() {
        let series = [
            one(
                Series::new("jobs", SeriesKind::Counter)
                    .with_help("Jobs done")
                    .with_label("q", "a b \"c\""),
                5.0,
            ),
            one(
                Series::new("queue_bytes", SeriesKind::Gauge).with_unit(Unit::Bytes),
                0.5,
            ),
        ];
        assert_eq!(
            render(&series, Format::Prometheus, false),
            "# HELP jobs_total Jobs done\n\
             # TYPE jobs_total counter\n\
             jobs_total{q=\"a b \\\"c\\\"\"} 5\n\
             # TYPE queue_bytes gauge\n\
             queue_bytes 0.5\n"
        );
        assert_eq!(
            render(&series, Format::OpenMetrics, false),
            "# TYPE jobs counter\n\
             # HELP jobs Jobs done\n\
             jobs_total{q=\"a b \\\"c\\\"\"} 5\n\
             # TYPE queue_bytes gauge\n\
             # UNIT queue_bytes bytes\n\
             queue_bytes 0.5\n"
        );
        let with_time = render(&series, Format::OpenMetrics, true);
        assert!(
            with_time.ends_with("queue_bytes 0.5 1700000000.250\n"),
            "{with_time}"
        );
        assert!(render(&series, Format::Prometheus, true).contains("} 5 1700000000250\n"));
    }
}
