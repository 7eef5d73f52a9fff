//! What the Coopr server sends and what a node-usage request can ask for.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use metrics_core::{Error, Result};
use serde::{Deserialize, Serialize};

use crate::BACKEND;

/// One tenant's provisioner task queue, as `GET /v2/metrics/queues` reports it.
///
/// The server caches these per tenant for `server.metrics.queue.cache.seconds` (10 s by
/// default): polling faster returns the same snapshot.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub struct QueueMetrics {
    /// Tasks waiting for a provisioner.
    pub queued: i32,
    /// Tasks taken by a provisioner worker.
    #[serde(rename = "inProgress")]
    pub in_progress: i32,
    /// `queued + in_progress`.
    pub total: i32,
}

impl QueueMetrics {
    /// Queue metrics with these counts and their total.
    pub fn new(queued: i32, in_progress: i32) -> Self {
        Self {
            queued,
            in_progress,
            total: queued.saturating_add(in_progress),
        }
    }
}

/// Queue metrics by tenant **name**: every tenant (the `superadmin` tenant included) for the
/// superadmin, the caller's own tenant for a tenant admin.
pub type TenantQueues = BTreeMap<String, QueueMetrics>;

/// The answer of `GET /v2/metrics/nodes/usage`.
///
/// `start` and `end` are the range the server actually used (its defaults fill in what the
/// request left out), in Unix seconds. `data` has at least one bucket.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub struct NodeUsage {
    /// The start of the range, Unix seconds.
    pub start: i64,
    /// The end of the range, Unix seconds.
    pub end: i64,
    /// The buckets, oldest first.
    pub data: Vec<UsageInterval>,
}

impl NodeUsage {
    /// The start of the range.
    pub fn start_time(&self) -> Option<DateTime<Utc>> {
        DateTime::from_timestamp(self.start, 0)
    }

    /// The end of the range.
    pub fn end_time(&self) -> Option<DateTime<Utc>> {
        DateTime::from_timestamp(self.end, 0)
    }

    /// The sum of all buckets, in the requested time unit.
    pub fn total(&self) -> i64 {
        self.data
            .iter()
            .fold(0i64, |sum, interval| sum.saturating_add(interval.value))
    }
}

/// One bucket of node usage.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub struct UsageInterval {
    /// The bucket's start, Unix seconds. The first bucket starts at the range start, the
    /// others at multiples of the group-by period.
    pub time: i64,
    /// Node time used in the bucket, in the requested [`TimeUnit`] (node-seconds by default).
    pub value: i64,
}

impl UsageInterval {
    /// The bucket's start.
    pub fn start_time(&self) -> Option<DateTime<Utc>> {
        DateTime::from_timestamp(self.time, 0)
    }
}

/// A point in time for a node-usage request: Unix seconds, from an `i64` or a chrono time
/// (sub-second parts are dropped, rounding down).
///
/// ```
/// use coopr_client::Timestamp;
///
/// let t: Timestamp = chrono::DateTime::from_timestamp(1_424_475_097, 500_000_000).unwrap().into();
/// assert_eq!(t, Timestamp::from(1_424_475_097));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(i64);

impl Timestamp {
    /// The server multiplies seconds by 1000 into a Java `long`; anything larger overflows.
    pub const MAX_SECONDS: i64 = i64::MAX / 1000;

    /// From Unix seconds.
    pub fn from_unix_seconds(seconds: i64) -> Self {
        Self(seconds)
    }

    /// Unix seconds.
    pub fn unix_seconds(self) -> i64 {
        self.0
    }
}

impl From<i64> for Timestamp {
    fn from(seconds: i64) -> Self {
        Self(seconds)
    }
}

impl From<DateTime<Utc>> for Timestamp {
    fn from(time: DateTime<Utc>) -> Self {
        Self(time.timestamp())
    }
}

/// The `groupby` bucket length. The server's month is 30 days and its year 360 days.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum GroupBy {
    /// 3 600 s.
    Hour,
    /// 86 400 s.
    Day,
    /// 7 days.
    Week,
    /// 30 days.
    Month,
    /// 360 days (12 × 30).
    Year,
}

impl GroupBy {
    /// Every value, shortest first.
    pub const ALL: [Self; 5] = [Self::Hour, Self::Day, Self::Week, Self::Month, Self::Year];

    /// The name the server expects (lowercase; it is case-sensitive).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Hour => "hour",
            Self::Day => "day",
            Self::Week => "week",
            Self::Month => "month",
            Self::Year => "year",
        }
    }

    /// The bucket length in seconds.
    pub fn seconds(self) -> i64 {
        const DAY: i64 = 86_400;
        match self {
            Self::Hour => 3_600,
            Self::Day => DAY,
            Self::Week => 7 * DAY,
            Self::Month => 30 * DAY,
            Self::Year => 360 * DAY,
        }
    }
}

impl fmt::Display for GroupBy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for GroupBy {
    type Err = Error;

    /// Accepts the names in any case (the client sends them lowercase, as the server needs).
    fn from_str(value: &str) -> Result<Self> {
        Self::ALL
            .into_iter()
            .find(|g| g.as_str().eq_ignore_ascii_case(value))
            .ok_or_else(|| {
                Error::invalid_input(
                    BACKEND,
                    format!("unknown group-by `{value}`; use hour, day, week, month or year"),
                )
            })
    }
}

/// The `timeunit` of node-usage values (`java.util.concurrent.TimeUnit`).
///
/// The server converts every single credit (one node's time in one bucket) to this unit on
/// its own, truncating: with `Minutes`, a node that lived 59 s in a bucket adds nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum TimeUnit {
    /// Nanoseconds.
    Nanoseconds,
    /// Microseconds.
    Microseconds,
    /// Milliseconds: exact, nothing is truncated.
    Milliseconds,
    /// Seconds (the server's default).
    Seconds,
    /// Minutes.
    Minutes,
    /// Hours.
    Hours,
    /// Days.
    Days,
}

impl TimeUnit {
    /// Every value, finest first.
    pub const ALL: [Self; 7] = [
        Self::Nanoseconds,
        Self::Microseconds,
        Self::Milliseconds,
        Self::Seconds,
        Self::Minutes,
        Self::Hours,
        Self::Days,
    ];

    /// The name sent to the server.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Nanoseconds => "nanoseconds",
            Self::Microseconds => "microseconds",
            Self::Milliseconds => "milliseconds",
            Self::Seconds => "seconds",
            Self::Minutes => "minutes",
            Self::Hours => "hours",
            Self::Days => "days",
        }
    }

    /// How many seconds one unit is (`0.001` for milliseconds).
    pub fn seconds(self) -> f64 {
        match self {
            Self::Nanoseconds => 1e-9,
            Self::Microseconds => 1e-6,
            Self::Milliseconds => 1e-3,
            Self::Seconds => 1.0,
            Self::Minutes => 60.0,
            Self::Hours => 3_600.0,
            Self::Days => 86_400.0,
        }
    }
}

impl fmt::Display for TimeUnit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for TimeUnit {
    type Err = Error;

    /// Accepts the seven names in any case, as the server does.
    fn from_str(value: &str) -> Result<Self> {
        Self::ALL
            .into_iter()
            .find(|u| u.as_str().eq_ignore_ascii_case(value))
            .ok_or_else(|| {
                Error::invalid_input(
                    BACKEND,
                    format!(
                        "unknown time unit `{value}`; use nanoseconds, microseconds, milliseconds, seconds, minutes, hours or days"
                    ),
                )
            })
    }
}

/// What `GET /v2/metrics/nodes/usage` should compute. Every part is optional.
///
/// - Without `start`, the server starts at the first matching node creation (0 when none);
///   without `end`, it ends at the last matching node deletion, or now when no node was
///   deleted. Read the range it used from [`NodeUsage::start`]/[`NodeUsage::end`], and pass
///   explicit bounds when comparing calls.
/// - Without a group-by there is one bucket for the whole range. With one, the first bucket
///   starts at `start` and the next at the following multiple of the period; a first bucket
///   shorter than the period is still credited as a full period (a server quirk), so pass
///   an aligned `start` for exact buckets.
/// - `tenant` is a tenant **id** and only the superadmin may set it; everyone else gets
///   their own tenant and an HTTP 405 for any other value (including their own tenant's
///   name when its id is a UUID), so leave it unset unless calling as superadmin.
///
/// ```
/// use coopr_client::{GroupBy, NodeUsageQuery, TimeUnit};
///
/// let query = NodeUsageQuery::new()
///     .with_range(1_424_390_400, 1_424_476_800)
///     .with_user("george")
///     .with_group_by(GroupBy::Hour)
///     .with_time_unit(TimeUnit::Minutes);
/// assert!(query.validate().is_ok());
/// assert!(NodeUsageQuery::new().with_range(20, 10).validate().is_err());
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
#[must_use]
pub struct NodeUsageQuery {
    start: Option<Timestamp>,
    end: Option<Timestamp>,
    user: Option<String>,
    tenant: Option<String>,
    cluster: Option<String>,
    cluster_template: Option<String>,
    group_by: Option<GroupBy>,
    time_unit: Option<TimeUnit>,
}

impl NodeUsageQuery {
    /// Everything the caller may see, over the server's default range, in one bucket.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the start (inclusive), as Unix seconds or a chrono time.
    pub fn with_start(mut self, start: impl Into<Timestamp>) -> Self {
        self.start = Some(start.into());
        self
    }

    /// Sets the end, as Unix seconds or a chrono time.
    pub fn with_end(mut self, end: impl Into<Timestamp>) -> Self {
        self.end = Some(end.into());
        self
    }

    /// Sets start and end.
    pub fn with_range(self, start: impl Into<Timestamp>, end: impl Into<Timestamp>) -> Self {
        self.with_start(start).with_end(end)
    }

    /// Only nodes of this user id (for the superadmin: that user id in every tenant).
    pub fn with_user(mut self, user: impl Into<String>) -> Self {
        self.user = Some(user.into());
        self
    }

    /// Only nodes of this tenant **id**. Superadmin only; see the type's documentation.
    pub fn with_tenant(mut self, tenant_id: impl Into<String>) -> Self {
        self.tenant = Some(tenant_id.into());
        self
    }

    /// Only nodes of this cluster id.
    pub fn with_cluster(mut self, cluster_id: impl Into<String>) -> Self {
        self.cluster = Some(cluster_id.into());
        self
    }

    /// Only nodes of clusters made from this cluster template (by name).
    pub fn with_cluster_template(mut self, template: impl Into<String>) -> Self {
        self.cluster_template = Some(template.into());
        self
    }

    /// Splits the range into buckets of this length.
    pub fn with_group_by(mut self, group_by: GroupBy) -> Self {
        self.group_by = Some(group_by);
        self
    }

    /// Reports values in this unit instead of seconds.
    pub fn with_time_unit(mut self, time_unit: TimeUnit) -> Self {
        self.time_unit = Some(time_unit);
        self
    }

    /// The start, if set.
    pub fn start(&self) -> Option<Timestamp> {
        self.start
    }

    /// The end, if set.
    pub fn end(&self) -> Option<Timestamp> {
        self.end
    }

    /// The group-by, if set.
    pub fn group_by(&self) -> Option<GroupBy> {
        self.group_by
    }

    /// The time unit, if set (the server's default is seconds).
    pub fn time_unit(&self) -> Option<TimeUnit> {
        self.time_unit
    }

    /// Checks what the server would reject or mishandle: a negative `start` (a 500 on the
    /// server), times too large for its millisecond arithmetic, `start` after `end`, an
    /// `end` of 0 without a group-by (a division by zero on the server), and empty filters.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidInput`] saying what is wrong.
    pub fn validate(&self) -> Result<()> {
        let invalid = |message: String| Err(Error::invalid_input(BACKEND, message));
        for (name, value) in [("start", self.start), ("end", self.end)] {
            if let Some(t) = value {
                if t.0 < 0 {
                    return invalid(format!(
                        "{name} must not be before 1970-01-01 (got {} s)",
                        t.0
                    ));
                }
                if t.0 > Timestamp::MAX_SECONDS {
                    return invalid(format!(
                        "{name} is too large ({} s); the server counts in milliseconds and would overflow",
                        t.0
                    ));
                }
            }
        }
        if let (Some(start), Some(end)) = (self.start, self.end)
            && start > end
        {
            return invalid(format!("start ({} s) is after end ({} s)", start.0, end.0));
        }
        if self.group_by.is_none() && self.end == Some(Timestamp(0)) {
            return invalid(
                "end = 0 without a group-by makes the server divide by zero; use a later end"
                    .to_owned(),
            );
        }
        for (name, value) in [
            ("user", &self.user),
            ("tenant", &self.tenant),
            ("cluster", &self.cluster),
            ("cluster template", &self.cluster_template),
        ] {
            if value.as_deref() == Some("") {
                return invalid(format!(
                    "the {name} filter is empty; it would match nothing (leave it unset to match all)"
                ));
            }
        }
        Ok(())
    }

    /// The query parameters, in the names the server reads.
    pub(crate) fn to_params(&self) -> NodeUsageParams<'_> {
        NodeUsageParams {
            start: self.start.map(|t| t.0),
            end: self.end.map(|t| t.0),
            user: self.user.as_deref(),
            tenant: self.tenant.as_deref(),
            cluster: self.cluster.as_deref(),
            clustertemplate: self.cluster_template.as_deref(),
            groupby: self.group_by.map(GroupBy::as_str),
            timeunit: self.time_unit.map(TimeUnit::as_str),
        }
    }
}

/// The query string of `GET /v2/metrics/nodes/usage`, with the server's parameter names;
/// unset fields are left out.
#[derive(Debug, PartialEq, serde::Serialize)]
pub(crate) struct NodeUsageParams<'a> {
    start: Option<i64>,
    end: Option<i64>,
    user: Option<&'a str>,
    tenant: Option<&'a str>,
    cluster: Option<&'a str>,
    clustertemplate: Option<&'a str>,
    groupby: Option<&'static str>,
    timeunit: Option<&'static str>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_in_any_case_and_print_lowercase() {
        assert_eq!("Hour".parse::<GroupBy>().unwrap(), GroupBy::Hour);
        assert_eq!(GroupBy::Month.to_string(), "month");
        assert!("fortnight".parse::<GroupBy>().is_err());
        assert_eq!("MINUTES".parse::<TimeUnit>().unwrap(), TimeUnit::Minutes);
        assert!(matches!(
            "weeks".parse::<TimeUnit>(),
            Err(Error::InvalidInput { .. })
        ));
        assert_eq!(GroupBy::Year.seconds(), 31_104_000);
    }

    #[test]
    fn params_use_the_server_names() {
        let query = NodeUsageQuery::new()
            .with_range(10, 18)
            .with_cluster_template("hadoop")
            .with_group_by(GroupBy::Day)
            .with_time_unit(TimeUnit::Hours);
        let request = metrics_core::http::Request::get("metrics/nodes/usage")
            .with_query_params("coopr", &query.to_params())
            .unwrap();
        let pairs: Vec<(&str, &str)> = request
            .query()
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        assert_eq!(
            pairs,
            [
                ("start", "10"),
                ("end", "18"),
                ("clustertemplate", "hadoop"),
                ("groupby", "day"),
                ("timeunit", "hours"),
            ]
        );
        let empty = metrics_core::http::Request::get("x")
            .with_query_params("coopr", &NodeUsageQuery::new().to_params())
            .unwrap();
        assert!(empty.query().is_empty());
    }

    #[test]
    fn validation() {
        assert!(NodeUsageQuery::new().with_start(-1).validate().is_err());
        assert!(NodeUsageQuery::new().with_end(-1).validate().is_err());
        assert!(
            NodeUsageQuery::new()
                .with_start(Timestamp::MAX_SECONDS + 1)
                .validate()
                .is_err()
        );
        assert!(NodeUsageQuery::new().with_range(5, 4).validate().is_err());
        assert!(NodeUsageQuery::new().with_range(5, 5).validate().is_ok());
        assert!(NodeUsageQuery::new().with_range(0, 0).validate().is_err());
        assert!(
            NodeUsageQuery::new()
                .with_range(0, 0)
                .with_group_by(GroupBy::Hour)
                .validate()
                .is_ok()
        );
        assert!(NodeUsageQuery::new().with_user("").validate().is_err());
    }

    #[test]
    fn totals_saturate() {
        let usage = NodeUsage {
            start: 0,
            end: 1,
            data: vec![
                UsageInterval {
                    time: 0,
                    value: i64::MAX,
                },
                UsageInterval { time: 1, value: 1 },
            ],
        };
        assert_eq!(usage.total(), i64::MAX);
        assert_eq!(usage.start_time(), DateTime::from_timestamp(0, 0));
    }
}
