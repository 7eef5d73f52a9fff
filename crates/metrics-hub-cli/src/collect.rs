//! `metrics-hub collect`: one collection from every source, printed.

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

/// The core's table (with a sparkline of each series' points beside its value), failures
/// left to stderr.
pub(crate) fn table(collection: &Collection) -> String {
    render::series_table(collection)
}

#[cfg(test)]
mod tests {
    use super::*;
    use metrics_hub::chrono::{TimeZone as _, Utc};
    use metrics_hub::{Series, SeriesKind, Unit};

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
