//! [`MetricsSource`] for AppOptics: the measurements of the configured metric names.
//!
//! Configure the metrics with
//! [`AppOpticsClientBuilder::with_source_metrics`](crate::AppOpticsClientBuilder::with_source_metrics)
//! (or `APPOPTICS_METRICS`). Each stream (tag set) of each metric becomes one [`Series`]:
//!
//! * name `appoptics_<metric>` with the metric name made OpenMetrics-valid
//!   (`AWS.EC2.DiskWriteBytes` → `appoptics_AWS_EC2_DiskWriteBytes`), kind gauge;
//! * labels = the stream's tags (label names made valid, values as they are);
//! * points = the stream's measurements (the `value`, or the mean of a summary).
//!
//! How the [`Query`] maps:
//!
//! | query | AppOptics |
//! |---|---|
//! | range | `start_time` / `end_time`; without a range, `duration=3600` (the last hour) |
//! | step | `resolution` in whole seconds (at least 1, at most 604800); default 60 |
//! | names | a metric is requested only if its series name matches |
//!
//! Reads follow `next` links. A configured metric that does not exist (yet: metrics are
//! created by their first measurement) is skipped; any other error fails the collect.

use async_trait::async_trait;
use futures_util::StreamExt as _;
use metrics_core::model::sanitize_name;
use metrics_core::{Error, MetricsSource, Query, Result, Series, SeriesKind};

use crate::BACKEND;
use crate::client::AppOpticsClient;
use crate::measurements::{DEFAULT_RESOLUTION_SECS, MeasurementsQuery};
use crate::model::{Measurements, epoch_to_utc};
use crate::validate::MAX_RESOLUTION_SECS;

/// Metric reads in flight at once during a collect.
const COLLECT_CONCURRENCY: usize = 4;

/// The series name of a metric: `appoptics_<metric>`, OpenMetrics-valid.
///
/// ```
/// assert_eq!(appoptics_client::source::series_name("cpu.load-1m"), "appoptics_cpu_load_1m");
/// ```
pub fn series_name(metric: &str) -> String {
    sanitize_name(format!("{BACKEND}_{metric}"), true)
}

fn measurements_query(query: &Query) -> MeasurementsQuery {
    let base = match &query.range {
        Some(range) => MeasurementsQuery::between(range.start, range.end),
        None => MeasurementsQuery::last(std::time::Duration::from_secs(3600)),
    };
    let resolution = query.step.map_or(DEFAULT_RESOLUTION_SECS, |step| {
        let secs = step.as_secs() + u64::from(step.subsec_nanos() > 0);
        u32::try_from(secs.clamp(1, u64::from(MAX_RESOLUTION_SECS))).unwrap_or(MAX_RESOLUTION_SECS)
    });
    base.with_resolution(resolution)
}

fn to_series(metric: &str, read: Measurements) -> Vec<Series> {
    let name = series_name(metric);
    read.series
        .into_iter()
        .map(|stream| {
            let mut series = Series::new(name.clone(), SeriesKind::Gauge)
                .with_help(format!("AppOptics metric {metric}"));
            for (tag, value) in stream.tags {
                series = series.with_label(tag, value);
            }
            series.with_points(
                stream
                    .measurements
                    .iter()
                    .filter_map(|p| {
                        p.best_value().map(|value| metrics_core::Point {
                            time: epoch_to_utc(p.time),
                            value,
                        })
                    })
                    .collect(),
            )
        })
        .collect()
}

#[async_trait]
impl MetricsSource for AppOpticsClient {
    fn backend(&self) -> &'static str {
        BACKEND
    }

    fn endpoint(&self) -> Option<String> {
        Some(Self::endpoint(self).to_owned())
    }

    async fn collect(&self, query: &Query) -> Result<Vec<Series>> {
        query.validate(BACKEND)?;
        let read_query = measurements_query(query);
        // Owned values: the futures must not borrow across the `async_trait` boundary.
        let wanted: Vec<String> = self
            .inner
            .source_metrics
            .iter()
            .filter(|metric| query.matches_name(&series_name(metric)))
            .cloned()
            .collect();
        let reads: Vec<(String, Result<Measurements>)> = futures_util::stream::iter(wanted)
            .map(|metric| {
                let client = self.clone();
                let read_query = read_query.clone();
                async move {
                    let read = client.get_measurements(&metric, &read_query).await;
                    (metric, read)
                }
            })
            .buffer_unordered(COLLECT_CONCURRENCY)
            .collect()
            .await;
        let mut series = Vec::new();
        for (metric, read) in reads {
            match read {
                Ok(read) => series.extend(to_series(&metric, read)),
                Err(Error::NotFound { .. }) => {
                    tracing::debug!(backend = BACKEND, metric = %metric, "metric does not exist yet; skipped");
                }
                Err(error) => return Err(error),
            }
        }
        series.sort_by_key(Series::id);
        Ok(series)
    }
}
