//! What to collect: a time range, a step and a name filter.

use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::error::{Error, Result};

/// What a [`MetricsSource::collect`](crate::MetricsSource::collect) call should return.
///
/// Every part is optional; each backend documents how it maps them onto its API (a backend
/// whose API only knows "now" ignores the range, one with fixed buckets rounds the step).
///
/// ```
/// use std::time::Duration;
/// use metrics_core::Query;
///
/// let query = Query::new()
///     .last(Duration::from_secs(3600))
///     .with_step(Duration::from_secs(60))
///     .with_names(["outline_*", "vumi_stores_default_hits_sum"]);
/// assert!(query.matches_name("outline_access_key_bytes_transferred"));
/// assert!(!query.matches_name("coopr_queue_tasks"));
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Query {
    /// The time range, if any.
    pub range: Option<TimeRange>,
    /// The wanted spacing between points, if any.
    pub step: Option<Duration>,
    /// Series name patterns; empty means all.
    pub names: Vec<String>,
}

/// A closed time range.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TimeRange {
    /// The start, inclusive.
    pub start: DateTime<Utc>,
    /// The end, inclusive.
    pub end: DateTime<Utc>,
}

impl Query {
    /// A query for everything a source has, at its own resolution.
    pub fn new() -> Self {
        Self::default()
    }

    /// Restricts the query to `start..=end`.
    #[must_use]
    pub fn with_range(mut self, start: DateTime<Utc>, end: DateTime<Utc>) -> Self {
        self.range = Some(TimeRange { start, end });
        self
    }

    /// Restricts the query to the last `duration` up to now.
    #[must_use]
    pub fn last(self, duration: Duration) -> Self {
        let end = Utc::now();
        let start = chrono::Duration::from_std(duration)
            .ok()
            .and_then(|d| end.checked_sub_signed(d))
            .unwrap_or(DateTime::<Utc>::MIN_UTC);
        self.with_range(start, end)
    }

    /// Asks for points spaced `step` apart.
    #[must_use]
    pub fn with_step(mut self, step: Duration) -> Self {
        self.step = Some(step);
        self
    }

    /// Keeps only series whose name matches one of `patterns`. A pattern is a series name,
    /// optionally with `*` wildcards (`outline_*`).
    #[must_use]
    pub fn with_names<I, S>(mut self, patterns: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.names.extend(patterns.into_iter().map(Into::into));
        self
    }

    /// Whether a series called `name` is wanted.
    pub fn matches_name(&self, name: &str) -> bool {
        self.names.is_empty() || self.names.iter().any(|p| glob_match(p, name))
    }

    /// Whether any series whose name starts with `prefix` can be wanted. Backends use it to
    /// skip requests for data nobody asked for.
    pub fn may_match_prefix(&self, prefix: &str) -> bool {
        self.names.is_empty()
            || self.names.iter().any(|p| {
                let literal = p.split('*').next().unwrap_or_default();
                literal.starts_with(prefix) || prefix.starts_with(literal)
            })
    }

    /// Checks what every backend needs: a range whose start is not after its end, and a
    /// non-zero step.
    pub fn validate(&self, backend: &'static str) -> Result<()> {
        if let Some(range) = &self.range
            && range.start > range.end
        {
            return Err(Error::invalid_input(
                backend,
                format!(
                    "the query range starts ({}) after it ends ({})",
                    range.start, range.end
                ),
            ));
        }
        if self.step == Some(Duration::ZERO) {
            return Err(Error::invalid_input(
                backend,
                "the query step must not be zero",
            ));
        }
        Ok(())
    }
}

/// `*` matches any run of characters; everything else matches itself.
fn glob_match(pattern: &str, name: &str) -> bool {
    let mut parts = pattern.split('*');
    let first = parts.next().unwrap_or_default();
    let Some(mut rest) = name.strip_prefix(first) else {
        return false;
    };
    let parts: Vec<&str> = parts.collect();
    let Some((last, middle)) = parts.split_last() else {
        return rest.is_empty();
    };
    for part in middle {
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glob() {
        assert!(glob_match("abc", "abc"));
        assert!(!glob_match("abc", "abcd"));
        assert!(glob_match("a*", "abcd"));
        assert!(glob_match("*d", "abcd"));
        assert!(glob_match("a*c*", "abcd"));
        assert!(glob_match("a*b*d", "abd"));
        assert!(!glob_match("a*bd*d", "abd"));
        assert!(glob_match("*", ""));
    }

    #[test]
    fn prefix_hint() {
        let query = Query::new().with_names(["outline_server_*"]);
        assert!(query.may_match_prefix("outline_server_"));
        assert!(query.may_match_prefix("outline_"));
        assert!(!query.may_match_prefix("outline_access_key"));
        assert!(Query::new().may_match_prefix("anything"));
    }

    #[test]
    fn validation() {
        let now = Utc::now();
        let bad = Query::new().with_range(now, now - chrono::Duration::seconds(1));
        assert!(matches!(bad.validate("x"), Err(Error::InvalidInput { .. })));
        assert!(
            Query::new()
                .with_step(Duration::ZERO)
                .validate("x")
                .is_err()
        );
        assert!(
            Query::new()
                .last(Duration::from_secs(60))
                .validate("x")
                .is_ok()
        );
    }
}
