//! Client-side aggregation: many samples per metric summarized into one measurement.

use std::collections::BTreeMap;

use chrono::Utc;
use metrics_core::{Error, Result};
use serde_json::{Value, json};

use crate::BACKEND;
use crate::client::AppOpticsClient;
use crate::model::{Measurement, Summary, Tags};

/// `count`, `sum`, `min` and `max` of the samples of one metric.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SummaryStats {
    /// Samples added.
    pub count: u64,
    /// Their sum.
    pub sum: f64,
    /// The smallest.
    pub min: f64,
    /// The largest.
    pub max: f64,
}

/// Summarizes samples per metric name and submits one summary measurement per metric (the
/// Python library's `Aggregator`). The payload never has `value`, only
/// `count`/`sum`/`min`/`max`; with a `period`, the time is floored to it.
///
/// ```
/// use appoptics_client::MeasurementAggregator;
///
/// let mut agg = MeasurementAggregator::new().with_period(60).with_measure_time(1_418_838_418);
/// agg.add("metric.one", 3.1)?;
/// agg.add("metric.one", 7.2)?;
/// let stats = agg.measurements()["metric.one"];
/// assert_eq!((stats.count, stats.min, stats.max), (2, 3.1, 7.2));
/// assert_eq!(agg.floor_measure_time(), Some(1_418_838_360));
/// # Ok::<_, metrics_core::Error>(())
/// ```
#[derive(Clone, Debug, Default, PartialEq)]
#[must_use]
pub struct MeasurementAggregator {
    tags: Tags,
    period: Option<u32>,
    measure_time: Option<i64>,
    measurements: BTreeMap<String, SummaryStats>,
}

impl MeasurementAggregator {
    /// An empty aggregator without tags, period or time.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the tags of every summary.
    pub fn with_tags(mut self, tags: Tags) -> Self {
        self.tags = tags;
        self
    }

    /// Sets the period (seconds) the time is floored to.
    pub fn with_period(mut self, period: u32) -> Self {
        self.period = Some(period);
        self
    }

    /// Sets the measure time (seconds since the epoch).
    pub fn with_measure_time(mut self, time: i64) -> Self {
        self.measure_time = Some(time);
        self
    }

    /// The tags.
    pub fn tags(&self) -> &Tags {
        &self.tags
    }

    /// Replaces the tags.
    pub fn set_tags(&mut self, tags: Tags) {
        self.tags = tags;
    }

    /// Merges `tags` over the tags.
    pub fn add_tags(&mut self, tags: Tags) {
        self.tags.extend(tags);
    }

    /// The period.
    pub fn period(&self) -> Option<u32> {
        self.period
    }

    /// Sets the period.
    pub fn set_period(&mut self, period: Option<u32>) {
        self.period = period;
    }

    /// The measure time.
    pub fn measure_time(&self) -> Option<i64> {
        self.measure_time
    }

    /// Sets the measure time.
    pub fn set_measure_time(&mut self, time: Option<i64>) {
        self.measure_time = time;
    }

    /// The summaries so far, by metric name.
    pub fn measurements(&self) -> &BTreeMap<String, SummaryStats> {
        &self.measurements
    }

    /// Adds a sample.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidInput`] for a value that is not finite or out of range.
    pub fn add(&mut self, name: impl Into<String>, value: f64) -> Result<()> {
        crate::validate::value("value", value)?;
        self.measurements
            .entry(name.into())
            .and_modify(|s| {
                s.count += 1;
                s.sum += value;
                s.min = s.min.min(value);
                s.max = s.max.max(value);
            })
            .or_insert(SummaryStats {
                count: 1,
                sum: value,
                min: value,
                max: value,
            });
        Ok(())
    }

    /// The time to send: the measure time (or now, when only a period is set) floored to
    /// the period; the measure time as is without a period; `None` without either.
    pub fn floor_measure_time(&self) -> Option<i64> {
        match (self.measure_time, self.period) {
            (time, Some(period)) if period > 0 => {
                let time = time.unwrap_or_else(|| Utc::now().timestamp());
                Some(time - time.rem_euclid(i64::from(period)))
            }
            (time, _) => time,
        }
    }

    /// The legacy payload: `{"measurements":[{name,count,sum,min,max}], "time"?}`.
    pub fn to_payload(&self) -> Value {
        let measurements: Vec<Value> = self
            .measurements
            .iter()
            .map(|(name, s)| json!({"name": name, "count": s.count, "sum": s.sum, "min": s.min, "max": s.max}))
            .collect();
        let mut payload = json!({ "measurements": measurements });
        if let Some(time) = self.floor_measure_time() {
            payload["time"] = json!(time);
        }
        payload
    }

    /// The tagged payload: [`to_payload`](Self::to_payload) plus top-level `tags`.
    pub fn to_md_payload(&self) -> Value {
        let mut payload = self.to_payload();
        payload["tags"] = json!(self.tags);
        payload
    }

    /// One summary measurement per metric, with the floored time and the aggregator's
    /// tags (none when it has none, so that a queue's tags apply).
    pub fn to_measurements(&self) -> Vec<Measurement> {
        let time = self.floor_measure_time();
        self.measurements
            .iter()
            .map(|(name, s)| {
                let mut m = Measurement::summary(
                    name.clone(),
                    Summary::new(s.count, s.sum).with_min(s.min).with_max(s.max),
                );
                if let Some(time) = time {
                    m = m.with_timestamp(time);
                }
                if !self.tags.is_empty() {
                    m = m.with_tags(self.tags.clone());
                }
                m
            })
            .collect()
    }

    /// Forgets the summaries and the measure time.
    pub fn clear(&mut self) {
        self.measurements.clear();
        self.measure_time = None;
    }

    /// Submits the summaries in one request, with the aggregator's tags (or else the
    /// client's) at the top level, then clears. Nothing is sent when empty.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidInput`] when no tags are set anywhere or a name is invalid; any
    /// request error. On error nothing is cleared.
    pub async fn submit(&mut self, client: &AppOpticsClient) -> Result<()> {
        if self.measurements.is_empty() {
            return Ok(());
        }
        let tags = if self.tags.is_empty() {
            client.tags()
        } else {
            &self.tags
        };
        if tags.is_empty() {
            return Err(Error::invalid_input(
                BACKEND,
                "the aggregator has no tags and neither has the client; at least one tag is needed",
            ));
        }
        crate::validate::tags(tags)?;
        let time = self.floor_measure_time();
        let measurements = self
            .measurements
            .iter()
            .map(|(name, s)| {
                let name = client.metric_name(name)?;
                Ok(Measurement::summary(
                    name,
                    Summary::new(s.count, s.sum).with_min(s.min).with_max(s.max),
                ))
            })
            .collect::<Result<Vec<_>>>()?;
        for chunk in measurements.chunks(crate::validate::MAX_MEASUREMENTS_PER_REQUEST) {
            client
                .post_measurements_with(chunk, Some(tags), time)
                .await?;
        }
        self.clear();
        Ok(())
    }
}
