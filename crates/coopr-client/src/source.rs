//! [`MetricsSource`] for [`CooprClient`]: queue gauges and node usage as [`Series`].
//!
//! # Series
//!
//! | series | kind, unit | labels | points |
//! |---|---|---|---|
//! | `coopr_queue_tasks` | gauge, `tasks` | `tenant` (name), `state` = `queued` \| `in_progress` \| `total` | one, at collection time |
//! | `coopr_node_usage_seconds` | gauge, seconds | `tenant` (the caller's tenant name; absent for the superadmin, whose usage covers every tenant) | one per bucket, at the bucket's start; the value is the node-seconds used in that bucket |
//!
//! # How a [`Query`] maps onto the API
//!
//! - **Names.** `coopr_queue_*` needs `GET /v2/metrics/queues`, `coopr_node_usage_*`
//!   `GET /v2/metrics/nodes/usage`; a request nobody asked for is not sent. Queue metrics are
//!   admin-only: for a caller other than `admin` they are skipped when node usage is wanted
//!   too, and the server's 403 is returned when only they were asked for.
//! - **Range.** Queue metrics only exist "now" and ignore it. For node usage, the range's
//!   start and end become `start` and `end` in whole seconds (start rounded down and
//!   clamped at 1970, end rounded up); a range that ends before 1970 returns no usage.
//!   Without a range the server's defaults apply: from the first node creation to the last
//!   deletion, or to now when no node was deleted.
//! - **Step.** Without a step, node usage is one bucket for the whole range. A step picks the
//!   longest `groupby` not longer than it (`hour`, `day`, `week`, `month` = 30 d,
//!   `year` = 360 d; `hour` for shorter steps), and the start is then aligned down to a
//!   multiple of that period: the server credits a short first bucket as a full period,
//!   which an aligned start avoids.
//! - **Precision.** Usage is requested in milliseconds and reported in (fractional)
//!   seconds, so that the server's per-credit truncation loses nothing.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use metrics_core::{Error, MetricsSource, Query, Result, Series, SeriesKind, Unit};

use crate::BACKEND;
use crate::client::CooprClient;
use crate::model::{GroupBy, NodeUsage, NodeUsageQuery, TenantQueues, TimeUnit, Timestamp};

/// The queue gauge's name.
pub const QUEUE_TASKS: &str = "coopr_queue_tasks";
/// The node-usage series' name.
pub const NODE_USAGE_SECONDS: &str = "coopr_node_usage_seconds";

#[async_trait]
impl MetricsSource for CooprClient {
    fn backend(&self) -> &'static str {
        BACKEND
    }

    fn endpoint(&self) -> Option<String> {
        Some(Self::endpoint(self).to_owned())
    }

    async fn collect(&self, query: &Query) -> Result<Vec<Series>> {
        query.validate(BACKEND)?;
        let want_queues = query.may_match_prefix(QUEUE_TASKS);
        let want_usage = query.may_match_prefix(NODE_USAGE_SECONDS);
        let mut series = Vec::new();
        if want_queues && (self.is_admin() || !want_usage) {
            let queues = self.queue_metrics().await?;
            series.extend(queue_series(&queues, Utc::now()));
        }
        if want_usage && let Some(usage_query) = usage_query(query) {
            let usage = self.node_usage(&usage_query).await?;
            let tenant = (!self.is_superadmin()).then(|| self.tenant());
            series.push(usage_series(&usage, TimeUnit::Milliseconds, tenant)?);
        }
        series.retain(|s| query.matches_name(&s.name));
        Ok(series)
    }
}

/// Three gauges per tenant: queued, in progress, total.
pub(crate) fn queue_series(queues: &TenantQueues, now: DateTime<Utc>) -> Vec<Series> {
    let mut series = Vec::with_capacity(queues.len() * 3);
    for (tenant, metrics) in queues {
        for (state, value) in [
            ("queued", metrics.queued),
            ("in_progress", metrics.in_progress),
            ("total", metrics.total),
        ] {
            let mut one = Series::new(QUEUE_TASKS, SeriesKind::Gauge)
                .with_label("tenant", tenant.clone())
                .with_label("state", state)
                .with_unit(Unit::Other("tasks".to_owned()))
                .with_point(now, f64::from(value));
            one.help = Some("Coopr provisioner tasks of a tenant, by state".to_owned());
            series.push(one);
        }
    }
    series
}

/// The node-usage request for a [`Query`], or `None` when its range ends before 1970.
pub(crate) fn usage_query(query: &Query) -> Option<NodeUsageQuery> {
    let mut usage = NodeUsageQuery::new().with_time_unit(TimeUnit::Milliseconds);
    let group_by = query.step.map(|step| {
        let seconds = i64::try_from(step.as_secs()).unwrap_or(i64::MAX);
        GroupBy::ALL
            .into_iter()
            .rev()
            .find(|g| g.seconds() <= seconds)
            .unwrap_or(GroupBy::Hour)
    });
    if let Some(group_by) = group_by {
        usage = usage.with_group_by(group_by);
    }
    if let Some(range) = &query.range {
        let end = range.end.timestamp() + i64::from(range.end.timestamp_subsec_nanos() > 0);
        if end <= 0 {
            return None;
        }
        let mut start = range.start.timestamp().max(0);
        if let Some(group_by) = group_by {
            start -= start % group_by.seconds();
        }
        let end = end.min(Timestamp::MAX_SECONDS);
        usage = usage.with_range(start.min(end), end);
    }
    Some(usage)
}

/// One series with a point per bucket, converted from `unit` to seconds.
pub(crate) fn usage_series(
    usage: &NodeUsage,
    unit: TimeUnit,
    tenant: Option<&str>,
) -> Result<Series> {
    let points = usage
        .data
        .iter()
        .map(|interval| {
            let time = interval.start_time().ok_or_else(|| {
                Error::decode(
                    BACKEND,
                    "data",
                    format!("bucket time {} is not a representable date", interval.time),
                )
            })?;
            #[allow(
                clippy::cast_precision_loss,
                reason = "node time beyond 2^53 units is far outside any real usage"
            )]
            let value = interval.value as f64 * unit.seconds();
            Ok(metrics_core::Point { time, value })
        })
        .collect::<Result<Vec<_>>>()?;
    let mut series = Series::new(NODE_USAGE_SECONDS, SeriesKind::Gauge)
        .with_unit(Unit::Seconds)
        .with_points(points);
    if let Some(tenant) = tenant {
        series = series.with_label("tenant", tenant);
    }
    series.help = Some("Node-seconds used by Coopr nodes in each bucket".to_owned());
    Ok(series)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::model::{QueueMetrics, UsageInterval};

    fn at(seconds: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(seconds, 0).unwrap()
    }

    #[test]
    fn step_picks_the_longest_period_not_longer() {
        let group = |step: u64| {
            usage_query(&Query::new().with_step(Duration::from_secs(step)))
                .unwrap()
                .group_by()
        };
        assert_eq!(group(60), Some(GroupBy::Hour));
        assert_eq!(group(3_600), Some(GroupBy::Hour));
        assert_eq!(group(86_399), Some(GroupBy::Hour));
        assert_eq!(group(86_400), Some(GroupBy::Day));
        assert_eq!(group(30 * 86_400), Some(GroupBy::Month));
        assert_eq!(group(400 * 86_400), Some(GroupBy::Year));
        assert_eq!(usage_query(&Query::new()).unwrap().group_by(), None);
    }

    #[test]
    fn range_is_aligned_and_clamped() {
        let query = Query::new()
            .with_range(at(19_800), at(36_000))
            .with_step(Duration::from_secs(3_600));
        let usage = usage_query(&query).unwrap();
        assert_eq!(usage.start(), Some(Timestamp::from(18_000)));
        assert_eq!(usage.end(), Some(Timestamp::from(36_000)));

        let fractional = Query::new().with_range(
            DateTime::from_timestamp(-50, 0).unwrap(),
            DateTime::from_timestamp(10, 1).unwrap(),
        );
        let usage = usage_query(&fractional).unwrap();
        assert_eq!(usage.start(), Some(Timestamp::from(0)));
        assert_eq!(usage.end(), Some(Timestamp::from(11)));
        assert!(usage.validate().is_ok());

        let before_epoch = Query::new().with_range(at(-100), at(0));
        assert!(usage_query(&before_epoch).is_none());
    }

    #[test]
    fn queues_become_three_gauges_per_tenant() {
        let mut queues = TenantQueues::new();
        queues.insert("tenantA".into(), QueueMetrics::new(2, 1));
        let series = queue_series(&queues, at(0));
        let ids: Vec<String> = series.iter().map(Series::id).collect();
        assert_eq!(
            ids,
            [
                r#"coopr_queue_tasks{state="queued",tenant="tenantA"}"#,
                r#"coopr_queue_tasks{state="in_progress",tenant="tenantA"}"#,
                r#"coopr_queue_tasks{state="total",tenant="tenantA"}"#,
            ]
        );
        assert_eq!(series[2].last_value(), Some(3.0));
    }

    #[test]
    fn usage_is_converted_to_seconds() {
        let usage = NodeUsage {
            start: 0,
            end: 30,
            data: vec![UsageInterval {
                time: 0,
                value: 57_000,
            }],
        };
        let series = usage_series(&usage, TimeUnit::Milliseconds, Some("tenant1")).unwrap();
        assert_eq!(series.id(), r#"coopr_node_usage_seconds{tenant="tenant1"}"#);
        assert_eq!(series.last_value(), Some(57.0));
        let bad = NodeUsage {
            data: vec![UsageInterval {
                time: i64::MAX,
                value: 1,
            }],
            ..usage
        };
        assert!(matches!(
            usage_series(&bad, TimeUnit::Seconds, None),
            Err(Error::Decode { .. })
        ));
    }
}
