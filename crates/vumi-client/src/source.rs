//! [`MetricsSource`] for [`VumiClient`]: the configured metrics over the query's range.
//!
//! How a [`Query`] maps onto `GET <prefix>/metrics/`:
//!
//! - **Metrics**: the names configured with
//!   [`VumiClientBuilder::with_metrics`](crate::VumiClientBuilder::with_metrics) (or
//!   `VUMI_METRICS`); the API cannot list metrics. Each becomes the series
//!   `vumi_<name with every character outside [A-Za-z0-9_] replaced by _>`, e.g.
//!   `stores.default.questions_completed.sum` → `vumi_stores_default_questions_completed_sum`,
//!   without labels. Only metrics whose series name the query's name filter matches are
//!   requested; with none configured or none matching, no request is made.
//! - **Range**: `start`/`end` are sent as unix timestamps (`from` rounded down, `until` up to
//!   whole seconds; before 1970 is clamped to 1970, since the server has no negative
//!   timestamps; an empty range is widened by one second, since graphite rejects it).
//!   Without a range the server's default applies: the last 24 hours.
//! - **Step**: sent as the summarize `interval`, rounded up to whole seconds; without a step
//!   the server's default of one hour applies. Buckets are aligned to multiples of the
//!   interval (graphite's default), not to `from`.
//! - **Size**: the metrics are split over as many requests as the client's size limit
//!   needs (the server counts points × metrics); a range too long for even one metric at
//!   that step is an [`Error::InvalidInput`].
//! - **Points**: asked for with `nulls=omit`, so a bucket without data has no point (a
//!   `None` value that still arrives is skipped). Point times are the bucket starts.
//!   A metric graphite has no data for at all yields no series.
//! - **Kind and unit**: every series is a [`SeriesKind::Gauge`] (a summarized value per
//!   bucket, also for `sum` metrics, whose buckets do not accumulate); no unit is set,
//!   because Vumi metrics do not declare one.

use async_trait::async_trait;
use chrono::{DateTime, TimeDelta, Utc};
use metrics_core::model::sanitize_name;
use metrics_core::{Error, MetricsSource, Point, Query, Result, Series, SeriesKind};

use crate::BACKEND;
use crate::client::VumiClient;
use crate::model::{MetricName, MetricsQuery, Nulls};
use crate::time::{Interval, MAX_UNIX_SECONDS, TimeSpec, predicted_points};

/// The most metrics sent in one request when the size limit allows more, to keep URLs short.
const MAX_METRICS_PER_REQUEST: usize = 50;

/// The series name of a metric: `vumi_` and the sanitized metric name.
///
/// ```
/// let name = "stores.default.questions_completed.sum".parse().unwrap();
/// assert_eq!(vumi_client::series_name(&name), "vumi_stores_default_questions_completed_sum");
/// ```
pub fn series_name(metric: &MetricName) -> String {
    sanitize_name(format!("{BACKEND}_{}", metric.as_str()), true)
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
        let mut from = TimeSpec::ago(24, crate::time::TimeUnit::Hours);
        let mut until = TimeSpec::ago(0, crate::time::TimeUnit::Seconds);
        if let Some(range) = &query.range {
            from = to_spec(range.start)?;
            // Round the end up, so the last partial second is inside the range.
            let end = if range.end.timestamp_subsec_nanos() > 0 {
                range.end + TimeDelta::seconds(1)
            } else {
                range.end
            };
            until = to_spec(end)?;
            if until == from {
                until = to_spec(end + TimeDelta::seconds(1))?;
            }
            base = base.with_from(from).with_until(until);
        }
        let mut interval = Interval::DEFAULT;
        if let Some(step) = query.step {
            let seconds = step.as_secs() + u64::from(step.subsec_nanos() > 0);
            interval = Interval::from_duration(std::time::Duration::from_secs(seconds.max(1)))?;
            base = base.with_interval(interval);
        }

        let per_request = match self.max_points() {
            None => MAX_METRICS_PER_REQUEST,
            Some(max) => {
                let per_metric =
                    predicted_points(&from, &until, interval, 1, Utc::now()).unwrap_or(u128::MAX);
                if per_metric > u128::from(max) {
                    return Err(Error::invalid_input(
                        BACKEND,
                        format!(
                            "{per_metric} data points requested per metric, maximum allowed is {max}; narrow the time range or widen the step"
                        ),
                    ));
                }
                let fit = u128::from(max).checked_div(per_metric).unwrap_or(u128::MAX);
                usize::try_from(fit)
                    .unwrap_or(usize::MAX)
                    .clamp(1, MAX_METRICS_PER_REQUEST)
            }
        };

        let mut series = Vec::with_capacity(wanted.len());
        for chunk in wanted.chunks(per_request) {
            let request = base
                .clone()
                .with_metrics(chunk.iter().map(|(metric, _)| *metric));
            let data = self.query(&request).await?;
            for (metric, name) in chunk {
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
                series.push(Series::new(name.clone(), SeriesKind::Gauge).with_points(points));
            }
        }
        Ok(series)
    }
}
