//! `metrics-hub collect`: one collection from every source, printed.

use std::fmt::Write as _;
use std::io::{IsTerminal as _, Write as _};
use std::process::ExitCode;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use metrics_hub::core::render;
use metrics_hub::{Aggregator, Collection, MetricsSource, Query};

use crate::sources::{Source, Tracked};

/// How `collect` prints.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum OutputFormat {
    /// An aligned table with a sparkline of each series.
    Table,
    /// One JSON document.
    Json,
    /// OpenMetrics text, every point with its time.
    Openmetrics,
}

/// The query flags.
#[derive(Debug, Default)]
pub(crate) struct QueryFlags {
    pub(crate) last: Option<Duration>,
    pub(crate) step: Option<Duration>,
    pub(crate) names: Vec<String>,
}

impl QueryFlags {
    fn query(&self) -> Query {
        let mut query = Query::new().with_names(self.names.iter().cloned());
        if let Some(last) = self.last {
            query = query.last(last);
        }
        if let Some(step) = self.step {
            query = query.with_step(step);
        }
        query
    }
}

/// Collects once from every source and prints the result; exit status 1 when any failed.
pub(crate) async fn run(
    sources: Vec<Source>,
    format: OutputFormat,
    flags: &QueryFlags,
) -> ExitCode {
    let pending = Arc::new(Mutex::new(
        sources.iter().map(|s| s.name.clone()).collect::<Vec<_>>(),
    ));
    let total = sources.len();
    let timeout = sources
        .iter()
        .map(|s| s.schedule.timeout)
        .max()
        .unwrap_or_default();
    let mut aggregator = Aggregator::new(Vec::<Arc<dyn MetricsSource>>::new())
        .with_timeout(timeout + Duration::from_secs(1));
    for source in sources {
        let pending = Arc::clone(&pending);
        aggregator = aggregator.with_named_source(
            source.name.clone(),
            Tracked {
                source,
                done: Box::new(move |name| {
                    pending
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .retain(|p| p != name);
                }),
            },
        );
    }
    let progress = std::io::stderr()
        .is_terminal()
        .then(|| tokio::spawn(show_progress(Arc::clone(&pending), total)));
    let collection = aggregator.collect(&flags.query()).await;
    if let Some(progress) = progress {
        progress.abort();
        let _ = progress.await;
        eprint!("\r\x1b[2K");
    }
    let out = match format {
        OutputFormat::Table => table(&collection),
        OutputFormat::Json => format!("{}\n", render::json(&collection)),
        OutputFormat::Openmetrics => render::openmetrics(&collection.series),
    };
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(out.as_bytes());
    let _ = stdout.flush();
    for failure in &collection.failures {
        let endpoint = failure
            .endpoint
            .as_ref()
            .map(|e| format!(" ({e})"))
            .unwrap_or_default();
        eprintln!("FAILED  {}{endpoint}: {}", failure.source, failure.error);
    }
    if collection.failures.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// A line on stderr, redrawn while sources are still answering.
async fn show_progress(pending: Arc<Mutex<Vec<String>>>, total: usize) {
    let mut ticker = tokio::time::interval(Duration::from_millis(150));
    loop {
        ticker.tick().await;
        let waiting = pending
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        eprint!(
            "\r\x1b[2Kcollecting: {}/{total} answered; waiting for {}",
            total - waiting.len(),
            waiting.join(", ")
        );
        let _ = std::io::stderr().flush();
    }
}

/// The core's table with a sparkline of each series' points beside its value.
pub(crate) fn table(collection: &Collection) -> String {
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
            let values: Vec<f64> = series.points.iter().map(|p| p.value).collect();
            [
                series.name.clone(),
                labels,
                last.map_or_else(
                    || "-".to_owned(),
                    |p| render::human_value(p.value, series.unit.as_ref()),
                ),
                sparkline(&values, SPARKLINE_WIDTH),
                series.points.len().to_string(),
                last.map_or_else(
                    || "-".to_owned(),
                    |p| p.time.format("%Y-%m-%d %H:%M:%S").to_string(),
                ),
            ]
        })
        .collect();
    let mut widths = header.map(|h| h.chars().count());
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

/// How many of the newest points the sparkline shows.
const SPARKLINE_WIDTH: usize = 24;

/// The newest `width` values as bars from `▁` (the smallest shown) to `█` (the largest); a
/// flat series is a row of `▄`, a value that is not finite a space.
pub(crate) fn sparkline(values: &[f64], width: usize) -> String {
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

#[cfg(test)]
mod tests {
    use super::*;
    use metrics_hub::chrono::{TimeZone as _, Utc};
    use metrics_hub::{Series, SeriesKind, Unit};

    #[test]
    fn sparklines_scale_between_the_extremes() {
        assert_eq!(sparkline(&[0.0, 1.0, 2.0, 7.0], 10), "▁▂▃█");
        assert_eq!(sparkline(&[5.0, 5.0], 10), "▄▄");
        assert_eq!(sparkline(&[1.0, f64::NAN, 3.0], 10), "▁ █");
        assert_eq!(sparkline(&[9.0, 0.0, 1.0], 2), "▁█");
        assert_eq!(sparkline(&[], 10), "");
    }

    #[test]
    fn table_has_a_trend_column() {
        let mut collection = Collection::default();
        let time = |h| Utc.with_ymd_and_hms(2026, 1, 1, h, 0, 0).unwrap();
        collection.series.push(
            Series::new("x_bytes", SeriesKind::Gauge)
                .with_unit(Unit::Bytes)
                .with_label("k", "v")
                .with_point(time(1), 1024.0)
                .with_point(time(2), 2048.0),
        );
        collection.sources.push(("src".to_owned(), Some(1)));
        let text = table(&collection);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0],
            "SERIES   LABELS    VALUE  TREND  POINTS  LAST POINT (UTC)"
        );
        assert_eq!(
            lines[1],
            "x_bytes  k=v     2.0 KiB  ▁█     2       2026-01-01 02:00:00"
        );
        assert_eq!(lines[2], "ok      src: 1 series");
    }
}
