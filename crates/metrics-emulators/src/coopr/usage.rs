//! Node usage as `MetricService.getNodesUsage` computes it, Java `long` arithmetic included.
//!
//! Everything here mirrors the server line by line: times are milliseconds internally,
//! bucket times are kept in (truncated) seconds and converted back to milliseconds for every
//! comparison, `%` is Java's truncating remainder, additions wrap, `TimeUnit` conversions to
//! finer units saturate. The places where the server throws (division by zero, an index past
//! the bucket list) become [`JavaException`]s, which the handler turns into the 500 that
//! netty-http sends for an exception.

use super::{ClusterTask, TaskAction, TaskStatus};

/// Buckets the emulator is willing to build for one answer. The real server builds them in
/// a list until it runs out of heap; the emulator stops earlier and answers as if it had.
pub(crate) const MAX_BUCKETS: usize = 1_000_000;

const MILLIS_PER_HOUR: i64 = 3_600_000;
const MILLIS_PER_DAY: i64 = 86_400_000;
const MONTH: i64 = MILLIS_PER_DAY * 30;

/// `groupby`: the case-sensitive `Periodicity` enum.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Periodicity {
    Hour,
    Day,
    Week,
    Month,
    Year,
}

impl Periodicity {
    /// `Periodicity.valueOf(value)`: exact, case-sensitive names.
    pub(crate) fn value_of(value: &str) -> Option<Self> {
        match value {
            "hour" => Some(Self::Hour),
            "day" => Some(Self::Day),
            "week" => Some(Self::Week),
            "month" => Some(Self::Month),
            "year" => Some(Self::Year),
            _ => None,
        }
    }

    /// The period in milliseconds; a month is 30 days and a year 12 such months.
    pub(crate) fn millis(self) -> i64 {
        match self {
            Self::Hour => MILLIS_PER_HOUR,
            Self::Day => MILLIS_PER_DAY,
            Self::Week => MILLIS_PER_DAY * 7,
            Self::Month => MONTH,
            Self::Year => MONTH * 12,
        }
    }
}

/// `timeunit`: a `java.util.concurrent.TimeUnit` name, case-insensitive.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum JavaTimeUnit {
    Nanoseconds,
    Microseconds,
    Milliseconds,
    Seconds,
    Minutes,
    Hours,
    Days,
}

impl JavaTimeUnit {
    /// `TimeUnit.valueOf(value.toUpperCase())`. Java's `toUpperCase` is Unicode-aware, as
    /// Rust's is (`ſeconds` is `SECONDS` in both).
    pub(crate) fn value_of_ignore_case(value: &str) -> Option<Self> {
        match value.to_uppercase().as_str() {
            "NANOSECONDS" => Some(Self::Nanoseconds),
            "MICROSECONDS" => Some(Self::Microseconds),
            "MILLISECONDS" => Some(Self::Milliseconds),
            "SECONDS" => Some(Self::Seconds),
            "MINUTES" => Some(Self::Minutes),
            "HOURS" => Some(Self::Hours),
            "DAYS" => Some(Self::Days),
            _ => None,
        }
    }

    /// `self.convert(millis, MILLISECONDS)`: coarser units truncate toward zero, finer units
    /// multiply and saturate at `Long.MAX_VALUE`/`MIN_VALUE`.
    pub(crate) fn convert_millis(self, millis: i64) -> i64 {
        match self {
            Self::Nanoseconds => saturating_scale(millis, 1_000_000),
            Self::Microseconds => saturating_scale(millis, 1_000),
            Self::Milliseconds => millis,
            Self::Seconds => millis / 1_000,
            Self::Minutes => millis / 60_000,
            Self::Hours => millis / MILLIS_PER_HOUR,
            Self::Days => millis / MILLIS_PER_DAY,
        }
    }
}

/// `TimeUnit.x(d, m, over)`: multiplication that saturates instead of overflowing.
fn saturating_scale(value: i64, factor: i64) -> i64 {
    let over = i64::MAX / factor;
    if value > over {
        i64::MAX
    } else if value < -over {
        i64::MIN
    } else {
        value * factor
    }
}

/// `TimeUnit.SECONDS.toMillis(seconds)`.
pub(crate) fn seconds_to_millis(seconds: i64) -> i64 {
    saturating_scale(seconds, 1_000)
}

/// `TimeUnit.MILLISECONDS.toSeconds(millis)`: truncation toward zero.
fn millis_to_seconds(millis: i64) -> i64 {
    millis / 1_000
}

/// A runtime exception thrown inside the handler, by its Java message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct JavaException(pub(crate) String);

/// The filters of a node-usage request, after tenant scoping.
#[derive(Clone, Debug, Default)]
pub(crate) struct UsageFilter {
    /// Tenant id; `None` only for the superadmin without `tenant`.
    pub(crate) tenant: Option<String>,
    pub(crate) user: Option<String>,
    pub(crate) cluster: Option<String>,
    pub(crate) cluster_template: Option<String>,
    /// Seconds, as sent.
    pub(crate) start: Option<i64>,
    /// Seconds, as sent.
    pub(crate) end: Option<i64>,
    pub(crate) periodicity: Option<Periodicity>,
    pub(crate) time_unit: Option<JavaTimeUnit>,
}

impl UsageFilter {
    fn matches(&self, task: &ClusterTask) -> bool {
        let field =
            |wanted: &Option<String>, actual: &str| wanted.as_deref().is_none_or(|w| w == actual);
        task.status == TaskStatus::Complete
            && matches!(task.action, TaskAction::Create | TaskAction::Delete)
            && field(&self.tenant, &task.tenant_id)
            && field(&self.user, &task.user_id)
            && field(&self.cluster, &task.cluster_id)
            && field(&self.cluster_template, &task.cluster_template)
    }
}

/// The `TimeSeries` the server serializes: all values in seconds (or `timeunit`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct TimeSeries {
    pub(crate) start: i64,
    pub(crate) end: i64,
    /// (bucket start in seconds, value).
    pub(crate) data: Vec<(i64, i64)>,
}

/// `MetricService.getNodesUsage(filter)` over `tasks`, with `now_ms` as
/// `System.currentTimeMillis()`.
pub(crate) fn nodes_usage(
    tasks: &[ClusterTask],
    filter: &UsageFilter,
    now_ms: i64,
) -> Result<TimeSeries, JavaException> {
    // SQLClusterStore: matching COMPLETE CREATE/DELETE tasks ordered by status time; ties keep
    // insertion order.
    let mut matching: Vec<&ClusterTask> = tasks.iter().filter(|t| filter.matches(t)).collect();
    matching.sort_by_key(|t| t.status_time_ms);

    let time_unit = filter.time_unit.unwrap_or(JavaTimeUnit::Seconds);
    if matching.is_empty() {
        // The only branch that echoes the parameters in seconds without converting them.
        let start = filter.start.unwrap_or(0);
        let end = filter.end.unwrap_or_else(|| millis_to_seconds(now_ms));
        return Ok(TimeSeries {
            start,
            end,
            data: vec![(start, 0)],
        });
    }
    let creates: Vec<&ClusterTask> = matching
        .iter()
        .copied()
        .filter(|t| t.action == TaskAction::Create)
        .collect();
    let deletes: Vec<&ClusterTask> = matching
        .iter()
        .copied()
        .filter(|t| t.action == TaskAction::Delete)
        .collect();

    let start_date = match filter.start {
        Some(start) => seconds_to_millis(start),
        None => creates.first().map_or(0, |t| t.status_time_ms),
    };
    let end_date = match filter.end {
        Some(end) => seconds_to_millis(end),
        None => deletes.last().map_or(now_ms, |t| t.status_time_ms),
    };
    // Without groupby the "period" is the end time itself, an absolute epoch value.
    let period = filter.periodicity.map_or(end_date, Periodicity::millis);
    let mut intervals = interval_list(start_date, end_date, period)?;

    for create in &creates {
        let delete_time = delete_task_time(&deletes, create, now_ms);
        let local_start = create.status_time_ms.max(start_date);
        let local_end = delete_time.min(end_date);
        let mut index = nearest_index(&intervals, local_start);
        let mut current_ms = seconds_to_millis(java_get(&intervals, index)?.0);
        while current_ms.wrapping_add(period) < local_end {
            let increase = if local_start < current_ms {
                period
            } else {
                period.wrapping_add(current_ms).wrapping_sub(local_start)
            };
            add(&mut intervals, index, time_unit.convert_millis(increase))?;
            index += 1;
            current_ms = seconds_to_millis(java_get(&intervals, index)?.0);
        }
        let increase = if local_start < current_ms {
            local_end.wrapping_sub(current_ms)
        } else {
            local_end.wrapping_sub(local_start)
        };
        if increase > 0 {
            add(&mut intervals, index, time_unit.convert_millis(increase))?;
        }
    }
    Ok(TimeSeries {
        start: millis_to_seconds(start_date),
        end: millis_to_seconds(end_date),
        data: intervals,
    })
}

/// `getDeleteTaskTime`: the earliest matching DELETE of the same cluster and node, else now.
fn delete_task_time(deletes: &[&ClusterTask], create: &ClusterTask, now_ms: i64) -> i64 {
    deletes
        .iter()
        .filter(|d| d.cluster_id == create.cluster_id && d.node_id == create.node_id)
        .map(|d| d.status_time_ms)
        .min()
        .unwrap_or(now_ms)
}

/// `getIntervalList`: b0 = start, then epoch-aligned multiples of `period` while < end.
fn interval_list(start: i64, end: i64, period: i64) -> Result<Vec<(i64, i64)>, JavaException> {
    if period == 0 {
        return Err(JavaException("/ by zero".to_owned()));
    }
    let mut intervals = Vec::new();
    let mut current = start;
    let mut next = start
        .wrapping_sub(start.wrapping_rem(period))
        .wrapping_add(period);
    if next >= end {
        next = end;
    }
    while next < end {
        intervals.push((millis_to_seconds(current), 0));
        if intervals.len() >= MAX_BUCKETS {
            return Err(JavaException("Java heap space".to_owned()));
        }
        current = next;
        let candidate = current.wrapping_add(period);
        next = if candidate < end { candidate } else { end };
    }
    intervals.push((millis_to_seconds(current), 0));
    Ok(intervals)
}

/// `getNearestIndex`: the last bucket whose start (in ms) is ≤ `key`, scanning from the
/// first and stopping at the first later one; -1 when even the first is later.
fn nearest_index(intervals: &[(i64, i64)], key: i64) -> i64 {
    let mut index = -1;
    for (time, _) in intervals {
        if seconds_to_millis(*time) <= key {
            index += 1;
        } else {
            break;
        }
    }
    index
}

/// `ArrayList.get(index)` with the Java 7/8 exception messages.
fn java_get(intervals: &[(i64, i64)], index: i64) -> Result<(i64, i64), JavaException> {
    let position = usize::try_from(index).map_err(|_| JavaException(index.to_string()))?;
    intervals
        .get(position)
        .copied()
        .ok_or_else(|| JavaException(format!("Index: {index}, Size: {}", intervals.len())))
}

fn add(intervals: &mut [(i64, i64)], index: i64, amount: i64) -> Result<(), JavaException> {
    java_get(intervals, index)?;
    if let Some(slot) = usize::try_from(index)
        .ok()
        .and_then(|i| intervals.get_mut(i))
    {
        slot.1 = slot.1.wrapping_add(amount);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn java_arithmetic() {
        assert_eq!(JavaTimeUnit::Seconds.convert_millis(-1_999), -1);
        assert_eq!(
            JavaTimeUnit::Nanoseconds.convert_millis(i64::MAX / 10),
            i64::MAX
        );
        assert_eq!(JavaTimeUnit::Microseconds.convert_millis(1), 1_000);
        assert_eq!(seconds_to_millis(i64::MIN / 10), i64::MIN);
        assert_eq!(
            JavaTimeUnit::value_of_ignore_case("Minutes"),
            Some(JavaTimeUnit::Minutes)
        );
        assert_eq!(JavaTimeUnit::value_of_ignore_case("weeks"), None);
        assert_eq!(Periodicity::value_of("Hour"), None);
        assert_eq!(Periodicity::Year.millis(), 31_104_000_000);
    }

    #[test]
    fn unaligned_start_makes_a_short_first_bucket() {
        let buckets = interval_list(19_800_000, 36_000_000, MILLIS_PER_HOUR).unwrap();
        let times: Vec<i64> = buckets.iter().map(|b| b.0).collect();
        assert_eq!(times, [19_800, 21_600, 25_200, 28_800, 32_400]);
    }

    #[test]
    fn negative_period_stops_at_the_bucket_limit() {
        let err = interval_list(-20_000, -5_000, -5_000).unwrap_err();
        assert_eq!(err.0, "Java heap space");
        assert_eq!(interval_list(0, 10, 0).unwrap_err().0, "/ by zero");
    }

    #[test]
    fn index_errors_have_java_messages() {
        assert_eq!(java_get(&[(0, 0)], 1).unwrap_err().0, "Index: 1, Size: 1");
        assert_eq!(java_get(&[(0, 0)], -1).unwrap_err().0, "-1");
    }
}
