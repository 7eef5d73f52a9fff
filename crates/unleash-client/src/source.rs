//! The [`MetricsSource`] impl: Unleash's hourly flag-evaluation rows as [`Series`].
//!
//! # Series
//!
//! | name | labels | kind, unit | one point per |
//! |---|---|---|---|
//! | `unleash_feature_evaluations` | `feature`, `app_name`, `environment`, `result` = `yes` \| `no` | gauge, `evaluations` | hour (point time = start of the hour, UTC) |
//! | `unleash_feature_variant_evaluations` | `feature`, `app_name`, `environment`, `variant` | gauge, `evaluations` | hour with variant data (5.1+) |
//!
//! A point's value is the number of evaluations counted in that hour (not a running total),
//! which is why the kind is gauge. Hours without data are zero (the server zero-fills them).
//!
//! # How the [`Query`] maps
//!
//! * **Names**: nothing is requested unless the query can match `unleash_feature_…`.
//! * **Flags**: those set with `with_features` / `UNLEASH_FEATURES`; otherwise every flag
//!   any application reported (`seenToggles` of each application's details).
//! * **Range**: becomes `hoursBack` of `GET /api/admin/client-metrics/features/:name/raw`,
//!   the hours from the range's start up to now, clamped to 1 ..= 48 (the server keeps 48 h);
//!   points outside the range are dropped. Without a range: the last 24 hours (the server's
//!   default).
//! * **Step**: ignored; the server stores one row per hour.
//! * **Servers before 4.2** have no per-hour rows: the legacy `feature-toggles` view gives one
//!   point per flag (the last hour, at the time of the call) labelled only `feature` and
//!   `result`.

use std::collections::{BTreeMap, BTreeSet};

use async_trait::async_trait;
use chrono::{DateTime, Duration as ChronoDuration, Utc};
use metrics_core::{Error, MetricsSource, Query, Result, Series, SeriesKind, TimeRange, Unit};

use crate::BACKEND;
use crate::admin::MAX_HOURS_BACK;
use crate::client::UnleashClient;
use crate::model::RawFeatureMetrics;
use crate::versions::ServerVersion;

/// Yes/no evaluations per flag, application, environment and hour.
pub const EVALUATIONS: &str = "unleash_feature_evaluations";
/// Variant counts per flag, application, environment and hour.
pub const VARIANT_EVALUATIONS: &str = "unleash_feature_variant_evaluations";
/// Hours the raw endpoint returns when no range is given.
const DEFAULT_HOURS_BACK: u32 = 24;

#[async_trait]
impl MetricsSource for UnleashClient {
    fn backend(&self) -> &'static str {
        BACKEND
    }

    fn endpoint(&self) -> Option<String> {
        Some(Self::endpoint(self).to_owned())
    }

    async fn collect(&self, query: &Query) -> Result<Vec<Series>> {
        query.validate(BACKEND)?;
        if !query.may_match_prefix(EVALUATIONS) && !query.may_match_prefix(VARIANT_EVALUATIONS) {
            return Ok(Vec::new());
        }
        if self.server_version() < ServerVersion::V4_2 {
            return self.collect_legacy(query).await;
        }
        let now = Utc::now();
        let Some(hours_back) = hours_back_for(query.range.as_ref(), now) else {
            return Ok(Vec::new());
        };
        let flags = if self.features().is_empty() {
            self.discover_flags().await?
        } else {
            self.features().iter().cloned().collect()
        };
        let mut series = Vec::new();
        for flag in flags {
            let raw = self.feature_metrics_raw(&flag, hours_back).await?;
            series.extend(rows_to_series(&raw, query));
        }
        Ok(series)
    }
}

impl UnleashClient {
    /// Every flag any application reported metrics for.
    async fn discover_flags(&self) -> Result<BTreeSet<String>> {
        let mut flags = BTreeSet::new();
        for app in self.all_applications().await? {
            match self.application(&app.app_name).await {
                Ok(details) => flags.extend(details.seen_toggles.into_iter().map(|t| t.name)),
                // Deleted between the two calls.
                Err(Error::NotFound { .. }) => {}
                Err(error) => return Err(error),
            }
        }
        Ok(flags)
    }

    async fn collect_legacy(&self, query: &Query) -> Result<Vec<Series>> {
        if !query.may_match_prefix(EVALUATIONS) {
            return Ok(Vec::new());
        }
        let now = Utc::now();
        if let Some(range) = &query.range
            && range.end < now - ChronoDuration::hours(1)
        {
            return Ok(Vec::new());
        }
        let view = self.feature_toggles().await?;
        let wanted: BTreeSet<&str> = self.features().iter().map(String::as_str).collect();
        let mut series = Vec::new();
        for (flag, counts) in &view.last_hour {
            if !wanted.is_empty() && !wanted.contains(flag.as_str()) {
                continue;
            }
            for (result, value) in [("yes", counts.yes), ("no", counts.no)] {
                series.push(
                    evaluations_series(EVALUATIONS)
                        .with_label("feature", flag.as_str())
                        .with_label("result", result)
                        .with_point(now, count_value(value)),
                );
            }
        }
        series.retain(|s| query.matches_name(&s.name));
        Ok(series)
    }
}

fn evaluations_series(name: &str) -> Series {
    Series::new(name, SeriesKind::Gauge)
        .with_unit(Unit::Other("evaluations".to_owned()))
        .with_help(if name == EVALUATIONS {
            "Flag evaluations counted by Unleash SDKs in the hour starting at the point's time"
        } else {
            "Variants handed out by Unleash SDKs in the hour starting at the point's time"
        })
}

#[allow(
    clippy::cast_precision_loss,
    reason = "counts up to 2^53 are exact in f64"
)]
fn count_value(count: u64) -> f64 {
    count as f64
}

/// `hoursBack` covering `range` up to `now`, or `None` when the range ends before what the
/// server keeps.
fn hours_back_for(range: Option<&TimeRange>, now: DateTime<Utc>) -> Option<u32> {
    let Some(range) = range else {
        return Some(DEFAULT_HOURS_BACK);
    };
    let oldest_kept = now - ChronoDuration::hours(i64::from(MAX_HOURS_BACK));
    if range.end < oldest_kept {
        return None;
    }
    // The current, partial hour counts as one: a range starting 10 minutes ago needs 1.
    let seconds = (now - range.start).num_seconds().max(0);
    let hours = seconds.div_euclid(3600) + 1;
    Some(
        u32::try_from(hours)
            .unwrap_or(MAX_HOURS_BACK)
            .clamp(1, MAX_HOURS_BACK),
    )
}

fn in_range(hour: DateTime<Utc>, range: Option<&TimeRange>) -> bool {
    range.is_none_or(|r| hour <= r.end && hour + ChronoDuration::hours(1) > r.start)
}

type Points = Vec<(DateTime<Utc>, u64)>;

/// The points of one (flag, application, environment).
#[derive(Default)]
struct Group<'a> {
    yes: Points,
    no: Points,
    variants: BTreeMap<&'a str, Points>,
}

/// Groups raw rows by application and environment into series.
fn rows_to_series(raw: &RawFeatureMetrics, query: &Query) -> Vec<Series> {
    let range = query.range.as_ref();
    let mut groups: BTreeMap<(&str, &str, &str), Group<'_>> = BTreeMap::new();
    for row in &raw.data {
        if !in_range(row.timestamp, range) {
            continue;
        }
        let group = groups
            .entry((
                row.feature_name.as_str(),
                row.app_name.as_str(),
                row.environment.as_str(),
            ))
            .or_default();
        group.yes.push((row.timestamp, row.yes));
        group.no.push((row.timestamp, row.no));
        for (variant, count) in row.variants.iter().flatten() {
            group
                .variants
                .entry(variant.as_str())
                .or_default()
                .push((row.timestamp, *count));
        }
    }
    let mut out = Vec::new();
    for ((feature, app, env), Group { yes, no, variants }) in groups {
        let labelled = |name: &str| {
            evaluations_series(name)
                .with_label("feature", feature)
                .with_label("app_name", app)
                .with_label("environment", env)
        };
        if query.matches_name(EVALUATIONS) {
            for (result, points) in [("yes", yes), ("no", no)] {
                let mut series = labelled(EVALUATIONS).with_label("result", result);
                series.points = sorted_points(points);
                out.push(series);
            }
        }
        if query.matches_name(VARIANT_EVALUATIONS) {
            for (variant, points) in variants {
                let mut series = labelled(VARIANT_EVALUATIONS).with_label("variant", variant);
                series.points = sorted_points(points);
                out.push(series);
            }
        }
    }
    out
}

fn sorted_points(mut points: Vec<(DateTime<Utc>, u64)>) -> Vec<metrics_core::Point> {
    points.sort_by_key(|(time, _)| *time);
    points
        .into_iter()
        .map(|(time, value)| metrics_core::Point {
            time,
            value: count_value(value),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn hours_back_covers_the_range() {
        let now = Utc.with_ymd_and_hms(2026, 11, 22, 10, 30, 0).unwrap();
        let range = |minutes: i64| TimeRange {
            start: now - ChronoDuration::minutes(minutes),
            end: now,
        };
        assert_eq!(hours_back_for(None, now), Some(24));
        assert_eq!(hours_back_for(Some(&range(10)), now), Some(1));
        assert_eq!(hours_back_for(Some(&range(90)), now), Some(2));
        assert_eq!(hours_back_for(Some(&range(60 * 100)), now), Some(48));
        let old = TimeRange {
            start: now - ChronoDuration::hours(100),
            end: now - ChronoDuration::hours(60),
        };
        assert_eq!(hours_back_for(Some(&old), now), None);
    }

    #[test]
    fn rows_become_labelled_series() {
        let raw: RawFeatureMetrics = serde_json::from_str(
            r#"{"data":[
              {"featureName":"f","appName":"a","environment":"development","timestamp":"2026-11-22T07:00:00.000Z","yes":1,"no":1,"variants":{}},
              {"timestamp":"2026-11-22T08:00:00.000Z","no":0,"yes":0,"appName":"a","environment":"development","featureName":"f"},
              {"featureName":"f","appName":"a","environment":"development","timestamp":"2026-11-22T09:00:00.000Z","yes":14,"no":6,"variants":{"blue":8,"green":6}}
            ]}"#,
        )
        .unwrap();
        let series = rows_to_series(&raw, &Query::new());
        let ids: Vec<String> = series.iter().map(Series::id).collect();
        assert_eq!(
            ids,
            [
                r#"unleash_feature_evaluations{app_name="a",environment="development",feature="f",result="yes"}"#,
                r#"unleash_feature_evaluations{app_name="a",environment="development",feature="f",result="no"}"#,
                r#"unleash_feature_variant_evaluations{app_name="a",environment="development",feature="f",variant="blue"}"#,
                r#"unleash_feature_variant_evaluations{app_name="a",environment="development",feature="f",variant="green"}"#,
            ]
        );
        let yes: Vec<f64> = series[0].points.iter().map(|p| p.value).collect();
        assert_eq!(yes, [1.0, 0.0, 14.0]);
        assert_eq!(series[2].points.len(), 1);

        let only_yes_no = Query::new().with_names([EVALUATIONS]);
        assert_eq!(rows_to_series(&raw, &only_yes_no).len(), 2);
        let start = Utc.with_ymd_and_hms(2026, 11, 22, 8, 30, 0).unwrap();
        let ranged = Query::new().with_range(start, start + ChronoDuration::hours(1));
        let series = rows_to_series(&raw, &ranged);
        assert_eq!(series[0].points.len(), 2);
    }
}
