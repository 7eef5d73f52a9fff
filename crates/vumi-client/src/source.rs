//! [`MetricsSource`] for [`VumiClient`]: the configured metrics over the query's range.
//!
//! How a [`Query`] maps onto `GET <prefix>/metrics/`:
//!
//! - **Metrics**: the names configured with
//!   [`VumiClientBuilder::with_metrics`](crate::VumiClientBuilder::with_metrics) (or
//!   `VUMI_METRICS`); the API cannot list metrics. Each becomes a series named
//!   `vumi_<name without its aggregator, every character outside [A-Za-z0-9_] replaced by _>`
//!   with the aggregator as its one label, e.g. `stores.default.questions_completed.sum` →
//!   `vumi_stores_default_questions_completed{aggregator="sum"}` (see [`series_name`]). Only
//!   metrics whose series name the query's name filter matches are requested; with none
//!   configured or none matching, no request is made.
//! - **Range**: `start`/`end` are sent as unix timestamps (`from` rounded down, `until` up to
//!   whole seconds; before 1970 is clamped to 1970, since the server has no negative
//!   timestamps; an empty range is widened by one second, since graphite rejects it).
//!   Without a range the server's default applies: the last 24 hours.
//! - **Step**: sent as the summarize `interval`, rounded up to whole seconds; without a step
//!   the server's default of one hour applies. Buckets are aligned to multiples of the
//!   interval (graphite's default), not to `from`.
//! - **Size**: the metrics are split over requests as [`VumiClient::query`] splits them: as
//!   many as the client's size limit needs (the server counts points × metrics), at most 50
//!   metrics each; a range too long for even one metric at that step is an
//!   [`Error::InvalidInput`](metrics_core::Error::InvalidInput).
//! - **Points**: asked for with `nulls=omit`, so a bucket without data has no point (a
//!   `None` value that still arrives is skipped). Point times are the bucket starts.
//!   A metric graphite has no data for at all yields no series.
//! - **Kind and unit**: every series is a [`SeriesKind::Gauge`] (a summarized value per
//!   bucket, also for `sum` metrics, whose buckets do not accumulate); no unit is set,
//!   because Vumi metrics do not declare one.

use async_trait::async_trait;
use chrono::{DateTime, TimeDelta, Utc};
use metrics_core::model::sanitize_name;
use metrics_core::{MetricsSource, Point, Query, Result, Series, SeriesKind};

use crate::BACKEND;
use crate::client::VumiClient;
use crate::model::{MetricName, MetricsQuery, Nulls};
use crate::time::{Interval, MAX_UNIX_SECONDS, TimeSpec};

/// The label that holds a series' aggregator (`sum`, `avg`, `max`, `min` or `last`).
pub const AGGREGATOR_LABEL: &str = "aggregator";

/// The series name of a metric: `vumi_` and the sanitized metric name without its last
/// segment, the aggregator, which is the series' [`AGGREGATOR_LABEL`] label instead.
///
/// The aggregator is how one metric's values are combined, not a different metric: as a
/// label, `x.sum` and `x.avg` are one family, and no name ends in `_sum`, which
/// Prometheus keeps for the sums of summaries and histograms.
///
/// ```
/// let name = "stores.default.questions_completed.sum".parse().unwrap();
/// assert_eq!(vumi_client::series_name(&name), "vumi_stores_default_questions_completed");
/// ```
pub fn series_name(metric: &MetricName) -> String {
    // A metric name always ends with `.` and its aggregator: parsing makes sure.
    let name = metric.as_str();
    let without_aggregator = name
        .strip_suffix(metric.aggregator().as_str())
        .and_then(|rest| rest.strip_suffix('.'))
        .unwrap_or(name);
    sanitize_name(format!("{BACKEND}_{without_aggregator}"), true)
}

fn to_spec(time: DateTime<Utc>) -> Result<TimeSpec> {
    let seconds = u64::try_from(time.timestamp().max(0))
        .unwrap_or(0)
        .min(MAX_UNIX_SECONDS);
    Ok(TimeSpec::unix(seconds)?)
}

#[async_trait]
impl MetricsSource for VumiClient {
    fn backend(&self) -> &'static str {
        BACKEND
    }

    fn endpoint(&self) -> Option<String> {
        Some(Self::endpoint(self).to_owned())
    }

    async fn collect(&self, query: &Query) -> Result<Vec<Series>> {
        query.validate(BACKEND)?;
        let wanted: Vec<(&MetricName, String)> = self
            .metrics()
            .iter()
            .map(|metric| (metric, series_name(metric)))
            .filter(|(_, name)| query.matches_name(name))
            .collect();
        if wanted.is_empty() {
            return Ok(Vec::new());
        }

        let mut base = MetricsQuery::new().with_nulls(Nulls::Omit);
        if let Some(range) = &query.range {
            let from = to_spec(range.start)?;
            // Round the end up, so the last partial second is inside the range.
            let end = if range.end.timestamp_subsec_nanos() > 0 {
                range.end + TimeDelta::seconds(1)
            } else {
                range.end
            };
            let mut until = to_spec(end)?;
            if until == from {
                until = to_spec(end + TimeDelta::seconds(1))?;
            }
            base = base.with_from(from).with_until(until);
        }
        if let Some(step) = query.step {
            let seconds = step.as_secs() + u64::from(step.subsec_nanos() > 0);
            base = base.with_interval(Interval::from_duration(std::time::Duration::from_secs(
                seconds.max(1),
            ))?);
        }

        let data = self
            .query(&base.with_metrics(wanted.iter().map(|(metric, _)| *metric)))
            .await?;
        let mut series = Vec::with_capacity(wanted.len());
        for (metric, name) in &wanted {
            let Some(found) = data.get(metric.as_str()) else {
                continue;
            };
            let points = found
                .points
                .iter()
                .filter_map(|p| {
                    p.value.map(|value| Point {
                        time: p.time,
                        value,
                    })
                })
                .collect();
            series.push(
                Series::new(name.clone(), SeriesKind::Gauge)
                    .with_label(AGGREGATOR_LABEL, metric.aggregator().as_str())
                    .with_points(points),
            );
        }
        Ok(series)
    }
}
