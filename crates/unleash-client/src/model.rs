//! Wire types: what the client sends to `/api/client/*` and what the admin read-back
//! endpoints answer.
//!
//! Decoding is lenient on purpose. Unleash's OpenAPI document (8.2.0) marks many fields as
//! required non-null strings that the server actually sends as `null` or leaves out, and the
//! shapes changed between v2, v3, 4.x and 8.x; every field that some version omits or nulls
//! is an `Option` (or defaults to empty), and unknown fields are ignored so that a newer server
//! does not break this client.
//!
//! Lenient is not blind: the list (or map) a response is made of — `applications`,
//! `instances`, `data`, `lastHourUsage`, `unknownFlags`, … — must be there (it may be
//! `null`). An object without it, such as a 200 with `{"error":"maintenance"}` from a proxy,
//! is an [`Error::Decode`](metrics_core::Error::Decode), not an empty success.

use std::collections::BTreeMap;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize, Serializer};

/// Serializes a timestamp as RFC 3339 UTC with milliseconds (`2026-11-22T09:38:57.000Z`).
///
/// Unleash also accepts integers there, but reads them as *milliseconds*: a bucket sent in
/// epoch seconds is booked in January 1970, where no read endpoint shows it.
pub(crate) fn rfc3339<S: Serializer>(
    time: &DateTime<Utc>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&time.to_rfc3339_opts(SecondsFormat::Millis, true))
}

// ------------------------------------------------------------------------------------------
// Writes
// ------------------------------------------------------------------------------------------

/// Evaluation counts of one flag in a metrics bucket.
///
/// ```
/// use unleash_client::ToggleCount;
///
/// let mut count = ToggleCount::default();
/// count.add(true, Some("blue"));
/// count.add(false, None);
/// assert_eq!((count.yes, count.no, count.variants["blue"]), (1, 1, 1));
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ToggleCount {
    /// How often the flag evaluated to enabled.
    #[serde(default)]
    pub yes: u64,
    /// How often the flag evaluated to disabled.
    #[serde(default)]
    pub no: u64,
    /// How often each variant was handed out (Unleash 5.1+ stores them).
    #[serde(default, deserialize_with = "null_as_default")]
    pub variants: BTreeMap<String, u64>,
}

impl ToggleCount {
    /// Counts with these yes/no numbers and no variants.
    pub fn new(yes: u64, no: u64) -> Self {
        Self {
            yes,
            no,
            variants: BTreeMap::new(),
        }
    }

    /// Adds one evaluation, and the variant it handed out, if any.
    pub fn add(&mut self, enabled: bool, variant: Option<&str>) {
        if enabled {
            self.yes = self.yes.saturating_add(1);
        } else {
            self.no = self.no.saturating_add(1);
        }
        if let Some(variant) = variant {
            let slot = self.variants.entry(variant.to_owned()).or_default();
            *slot = slot.saturating_add(1);
        }
    }

    /// Adds another count to this one.
    pub fn merge(&mut self, other: &Self) {
        self.yes = self.yes.saturating_add(other.yes);
        self.no = self.no.saturating_add(other.no);
        for (variant, count) in &other.variants {
            let slot = self.variants.entry(variant.clone()).or_default();
            *slot = slot.saturating_add(*count);
        }
    }

    /// Whether there is nothing to report: the server drops toggles with `yes == no == 0`.
    pub fn is_zero(&self) -> bool {
        self.yes == 0 && self.no == 0
    }
}

/// A metrics bucket: evaluation counts of flags between `start` and `stop`.
///
/// The server books the whole bucket under the hour of `stop` (`start` is ignored since 4.2),
/// so the recorder sets `stop` when it sends.
///
/// ```
/// use chrono::Utc;
/// use unleash_client::MetricsBucket;
///
/// let mut bucket = MetricsBucket::new(Utc::now());
/// bucket.count("checkout-v2", true);
/// bucket.count_variant("checkout-v2", true, "blue");
/// assert_eq!(bucket.toggles["checkout-v2"].yes, 2);
/// assert!(!bucket.is_empty());
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct MetricsBucket {
    /// When counting started.
    #[serde(serialize_with = "rfc3339")]
    pub start: DateTime<Utc>,
    /// When counting stopped; decides the hour the server books the counts under.
    #[serde(serialize_with = "rfc3339")]
    pub stop: DateTime<Utc>,
    /// Counts per flag name.
    pub toggles: BTreeMap<String, ToggleCount>,
}

impl MetricsBucket {
    /// An empty bucket starting (and, until set, stopping) at `start`.
    pub fn new(start: DateTime<Utc>) -> Self {
        Self {
            start,
            stop: start,
            toggles: BTreeMap::new(),
        }
    }

    /// Sets `stop`.
    #[must_use]
    pub fn with_stop(mut self, stop: DateTime<Utc>) -> Self {
        self.stop = stop;
        self
    }

    /// Sets the counts of one flag, replacing what was there.
    #[must_use]
    pub fn with_toggle(mut self, name: impl Into<String>, count: ToggleCount) -> Self {
        self.toggles.insert(name.into(), count);
        self
    }

    /// Counts one evaluation of `flag`.
    pub fn count(&mut self, flag: &str, enabled: bool) {
        self.entry(flag).add(enabled, None);
    }

    /// Counts one evaluation of `flag` that handed out `variant`.
    pub fn count_variant(&mut self, flag: &str, enabled: bool, variant: &str) {
        self.entry(flag).add(enabled, Some(variant));
    }

    fn entry(&mut self, flag: &str) -> &mut ToggleCount {
        self.toggles.entry(flag.to_owned()).or_default()
    }

    /// Adds `other`'s counts to this bucket, keeping the earlier start and the later stop —
    /// how an unsent bucket is carried into the next one.
    pub fn merge(&mut self, other: &Self) {
        self.start = self.start.min(other.start);
        self.stop = self.stop.max(other.stop);
        for (name, count) in &other.toggles {
            self.toggles.entry(name.clone()).or_default().merge(count);
        }
    }

    /// Removes flags whose yes and no are both zero (the server would drop them anyway).
    pub fn prune(&mut self) {
        self.toggles.retain(|_, count| !count.is_zero());
    }

    /// Whether no flag has a non-zero count.
    pub fn is_empty(&self) -> bool {
        self.toggles.values().all(ToggleCount::is_zero)
    }

    /// The sum of all yes and no counts.
    pub fn evaluations(&self) -> u64 {
        self.toggles.values().fold(0u64, |sum, c| {
            sum.saturating_add(c.yes).saturating_add(c.no)
        })
    }
}

/// The body of `POST /api/client/register` (`clientApplicationSchema`).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct RegisterBody<'a> {
    pub(crate) app_name: &'a str,
    pub(crate) instance_id: &'a str,
    pub(crate) sdk_version: &'a str,
    pub(crate) strategies: &'a [String],
    #[serde(serialize_with = "rfc3339")]
    pub(crate) started: DateTime<Utc>,
    /// Milliseconds, like the Node and Rust SDKs (the OpenAPI text says seconds; the server
    /// does not use it).
    pub(crate) interval: u64,
    pub(crate) platform_name: &'a str,
    pub(crate) platform_version: &'a str,
    pub(crate) spec_version: &'a str,
}

/// The body of `POST /api/client/metrics` (`clientMetricsSchema`).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct MetricsBody<'a> {
    pub(crate) app_name: &'a str,
    pub(crate) instance_id: &'a str,
    pub(crate) sdk_version: &'a str,
    pub(crate) platform_name: &'a str,
    pub(crate) platform_version: &'a str,
    pub(crate) spec_version: &'a str,
    pub(crate) bucket: &'a MetricsBucket,
}

// ------------------------------------------------------------------------------------------
// Read-back
// ------------------------------------------------------------------------------------------

fn null_as_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

/// Yes/no counts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct YesNo {
    /// Evaluations to enabled.
    #[serde(default)]
    pub yes: u64,
    /// Evaluations to disabled.
    #[serde(default)]
    pub no: u64,
}

/// `GET /api/admin/metrics/applications`: a page of applications.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Applications {
    /// The applications on this page.
    #[serde(deserialize_with = "null_as_default")]
    pub applications: Vec<Application>,
    /// How many applications match the query (all pages). Sent by 5.10+; for older servers
    /// the client fills it in from the list it filtered itself.
    #[serde(default)]
    pub total: Option<u64>,
}

/// One application in the applications list (or in the legacy `seen-apps` view).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct Application {
    /// The name the SDKs register under.
    pub app_name: String,
    /// When the server first saw it.
    #[serde(default)]
    pub created_at: Option<DateTime<Utc>>,
    /// When it was last updated.
    #[serde(default)]
    pub updated_at: Option<DateTime<Utc>>,
    /// A description set in the admin UI.
    #[serde(default)]
    pub description: Option<String>,
    /// Strategy names its SDKs implement.
    #[serde(default, deserialize_with = "null_as_default")]
    pub strategies: Vec<String>,
    /// Who created it (`unleash_system_user` in 8.x, the client IP in v3).
    #[serde(default)]
    pub created_by: Option<String>,
    /// A link set in the admin UI.
    #[serde(default)]
    pub url: Option<String>,
    /// A colour set in the admin UI.
    #[serde(default)]
    pub color: Option<String>,
    /// An icon set in the admin UI.
    #[serde(default)]
    pub icon: Option<String>,
    /// The project of the token it registered with (8.x).
    #[serde(default)]
    pub project: Option<String>,
    /// The environment of the token it registered with (8.x).
    #[serde(default)]
    pub environment: Option<String>,
    /// Projects and environments it was seen in (5.10+). May repeat a project and contain
    /// `*` for wildcard tokens.
    #[serde(default)]
    pub usage: Option<Vec<ApplicationUsage>>,
    /// Links (v2 only: `appDetails`).
    #[serde(default)]
    pub links: Option<BTreeMap<String, String>>,
}

/// Where an application was seen.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ApplicationUsage {
    /// The project (`*` for a wildcard token).
    #[serde(default)]
    pub project: Option<String>,
    /// The environments.
    #[serde(default, deserialize_with = "null_as_default")]
    pub environments: Vec<String>,
}

/// `GET /api/admin/metrics/applications/:appName`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct ApplicationDetails {
    /// The application name.
    pub app_name: String,
    /// When the server first saw it.
    #[serde(default)]
    pub created_at: Option<DateTime<Utc>>,
    /// A description set in the admin UI.
    #[serde(default)]
    pub description: Option<String>,
    /// A link set in the admin UI.
    #[serde(default)]
    pub url: Option<String>,
    /// A colour set in the admin UI.
    #[serde(default)]
    pub color: Option<String>,
    /// An icon set in the admin UI.
    #[serde(default)]
    pub icon: Option<String>,
    /// The strategies its SDKs implement, with their definitions (v3+) or grouped per app (v2).
    #[serde(default, deserialize_with = "null_as_default")]
    pub strategies: Vec<StrategyInfo>,
    /// Its SDK instances.
    #[serde(default, deserialize_with = "null_as_default")]
    pub instances: Vec<Instance>,
    /// The flags it reported metrics for — this replaces the legacy `seen-toggles` view.
    #[serde(default, deserialize_with = "null_as_default")]
    pub seen_toggles: Vec<SeenToggle>,
    /// Links (`self` in 8.x, which is not a working path).
    #[serde(default)]
    pub links: Option<BTreeMap<String, String>>,
}

/// A strategy in the application details.
///
/// v3+ send the strategy definition (`name`, `parameters`, …); an unknown name comes back as
/// `{name, notFound: true}`; the v2 seed sends `{appName, strategies: [names]}`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct StrategyInfo {
    /// The strategy name.
    #[serde(default)]
    pub name: Option<String>,
    /// Its display name (4.x+).
    #[serde(default)]
    pub display_name: Option<String>,
    /// Its description.
    #[serde(default)]
    pub description: Option<String>,
    /// Whether it can be edited (false for built-in strategies).
    #[serde(default)]
    pub editable: Option<bool>,
    /// Whether it is deprecated.
    #[serde(default)]
    pub deprecated: Option<bool>,
    /// Its title (8.x).
    #[serde(default)]
    pub title: Option<String>,
    /// Its parameters.
    #[serde(default, deserialize_with = "null_as_default")]
    pub parameters: Vec<StrategyParameter>,
    /// True when the application reported a strategy the server does not know.
    #[serde(default)]
    pub not_found: Option<bool>,
    /// v2 only: the application these strategy names belong to.
    #[serde(default)]
    pub app_name: Option<String>,
    /// v2 only: strategy names.
    #[serde(default, deserialize_with = "null_as_default")]
    pub strategies: Vec<String>,
}

/// A strategy parameter definition.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct StrategyParameter {
    /// The parameter name.
    #[serde(default)]
    pub name: Option<String>,
    /// Its type (`percentage`, `string`, `list`, …).
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    /// Its description.
    #[serde(default)]
    pub description: Option<String>,
    /// Whether it is required.
    #[serde(default)]
    pub required: Option<bool>,
}

/// An SDK instance in the application details.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct Instance {
    /// The application (v3+).
    #[serde(default)]
    pub app_name: Option<String>,
    /// The instance id.
    pub instance_id: String,
    /// `name:semver` of the SDK; null when the instance was created by a metrics POST
    /// without it, `""` on v3 when unset.
    #[serde(default)]
    pub sdk_version: Option<String>,
    /// `backend` for server-side SDKs (8.x); null when created by a metrics POST.
    #[serde(default)]
    pub sdk_type: Option<String>,
    /// The client address the server saw.
    #[serde(default)]
    pub client_ip: Option<String>,
    /// When it last registered or sent metrics.
    #[serde(default)]
    pub last_seen: Option<DateTime<Utc>>,
    /// When it was first seen.
    #[serde(default)]
    pub created_at: Option<DateTime<Utc>>,
    /// The environment of its token (4.x+).
    #[serde(default)]
    pub environment: Option<String>,
}

/// A flag an application reported metrics for.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", from = "SeenToggleRepr")]
#[non_exhaustive]
pub struct SeenToggle {
    /// The flag name.
    pub name: String,
    /// Its description.
    pub description: Option<String>,
    /// Its type (`release`, `experiment`, …).
    #[serde(rename = "type")]
    pub kind: Option<String>,
    /// Its project.
    pub project: Option<String>,
    /// Whether it is marked stale.
    pub stale: Option<bool>,
    /// Whether it is archived.
    pub archived: Option<bool>,
    /// When it was created.
    pub created_at: Option<DateTime<Utc>>,
}

/// v2 sends flag names, v3+ flag objects.
#[derive(Deserialize)]
#[serde(untagged)]
enum SeenToggleRepr {
    Name(String),
    Full(SeenToggleObject),
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SeenToggleObject {
    name: String,
    #[serde(default)]
    description: Option<String>,
    #[serde(default, rename = "type")]
    kind: Option<String>,
    #[serde(default)]
    project: Option<String>,
    #[serde(default)]
    stale: Option<bool>,
    #[serde(default)]
    archived: Option<bool>,
    #[serde(default)]
    created_at: Option<DateTime<Utc>>,
}

impl From<SeenToggleRepr> for SeenToggle {
    fn from(repr: SeenToggleRepr) -> Self {
        match repr {
            SeenToggleRepr::Name(name) => Self {
                name,
                ..Self::default()
            },
            SeenToggleRepr::Full(o) => Self {
                name: o.name,
                description: o.description,
                kind: o.kind,
                project: o.project,
                stale: o.stale,
                archived: o.archived,
                created_at: o.created_at,
            },
        }
    }
}

/// `GET /api/admin/metrics/applications/:appName/overview` (5.10+).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct ApplicationOverview {
    /// Projects of the flags it uses.
    #[serde(default, deserialize_with = "null_as_default")]
    pub projects: Vec<String>,
    /// How many flags it uses.
    #[serde(default)]
    pub feature_count: u64,
    /// Per environment: instances and SDKs.
    #[serde(deserialize_with = "null_as_default")]
    pub environments: Vec<OverviewEnvironment>,
    /// Application-wide issues.
    #[serde(default)]
    pub issues: Option<OverviewIssues>,
}

/// One environment of an [`ApplicationOverview`].
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct OverviewEnvironment {
    /// The environment name.
    pub name: String,
    /// How many instances were seen.
    #[serde(default)]
    pub instance_count: u64,
    /// SDK versions (`name:semver`).
    #[serde(default, deserialize_with = "null_as_default")]
    pub sdks: Vec<String>,
    /// Frontend SDK versions.
    #[serde(default, deserialize_with = "null_as_default")]
    pub frontend_sdks: Vec<String>,
    /// Backend SDK versions.
    #[serde(default, deserialize_with = "null_as_default")]
    pub backend_sdks: Vec<String>,
    /// When an instance was last seen.
    #[serde(default)]
    pub last_seen: Option<DateTime<Utc>>,
    /// Issues in this environment.
    #[serde(default)]
    pub issues: Option<OverviewEnvironmentIssues>,
}

/// Issues of one environment in an [`ApplicationOverview`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct OverviewEnvironmentIssues {
    /// Flags the application asked for that do not exist.
    #[serde(default, deserialize_with = "null_as_default")]
    pub missing_features: Vec<String>,
    /// SDK versions the server considers outdated.
    #[serde(default, deserialize_with = "null_as_default")]
    pub outdated_sdks: Vec<String>,
}

/// Application-wide issues in an [`ApplicationOverview`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct OverviewIssues {
    /// Strategies the application uses that the server does not know.
    #[serde(default, deserialize_with = "null_as_default")]
    pub missing_strategies: Vec<String>,
}

/// `GET /api/admin/metrics/instances/:appName/environment/:env` (5.10+): instances of the
/// last 24 hours.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ApplicationInstances {
    /// The instances.
    #[serde(deserialize_with = "null_as_default")]
    pub instances: Vec<InstanceSummary>,
}

/// One instance in [`ApplicationInstances`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct InstanceSummary {
    /// The instance id.
    pub instance_id: String,
    /// The client address.
    #[serde(default)]
    pub client_ip: Option<String>,
    /// `name:semver` of the SDK.
    #[serde(default)]
    pub sdk_version: Option<String>,
    /// When it was last seen.
    #[serde(default)]
    pub last_seen: Option<DateTime<Utc>>,
}

/// `GET /api/admin/client-metrics/features/:name` (4.2+): the last hour per environment.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct FeatureMetrics {
    /// The response format version (1).
    #[serde(default)]
    pub version: Option<u32>,
    /// `stable` since 4.14.
    #[serde(default)]
    pub maturity: Option<String>,
    /// The flag.
    #[serde(default)]
    pub feature_name: String,
    /// One entry per environment, summing the last hour's rows.
    #[serde(deserialize_with = "null_as_default")]
    pub last_hour_usage: Vec<EnvironmentUsage>,
    /// Applications that reported the flag, sorted — this replaces the legacy `seen-apps`.
    #[serde(deserialize_with = "null_as_default")]
    pub seen_applications: Vec<String>,
}

impl FeatureMetrics {
    /// The last hour's counts summed over all environments.
    pub fn last_hour_total(&self) -> YesNo {
        self.last_hour_usage
            .iter()
            .fold(YesNo::default(), |acc, u| YesNo {
                yes: acc.yes.saturating_add(u.yes),
                no: acc.no.saturating_add(u.no),
            })
    }
}

/// Counts of one environment in [`FeatureMetrics`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct EnvironmentUsage {
    /// The environment.
    pub environment: String,
    /// The hour (UTC, hour-aligned).
    #[serde(default)]
    pub timestamp: Option<DateTime<Utc>>,
    /// Evaluations to enabled.
    #[serde(default)]
    pub yes: u64,
    /// Evaluations to disabled.
    #[serde(default)]
    pub no: u64,
}

/// `GET /api/admin/client-metrics/features/:name/raw?hoursBack=N` (4.2+): hourly rows.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct RawFeatureMetrics {
    /// The response format version (1).
    #[serde(default)]
    pub version: Option<u32>,
    /// `stable` since 4.14.
    #[serde(default)]
    pub maturity: Option<String>,
    /// One entry per environment × application × hour, oldest first; hours without data are
    /// zero-filled (and have no `variants`).
    #[serde(deserialize_with = "null_as_default")]
    pub data: Vec<FeatureUsage>,
}

impl RawFeatureMetrics {
    /// The counts summed over every row matching `app` and `environment` (`None` = any).
    pub fn total(&self, app: Option<&str>, environment: Option<&str>) -> YesNo {
        self.data
            .iter()
            .filter(|row| app.is_none_or(|a| row.app_name == a))
            .filter(|row| environment.is_none_or(|e| row.environment == e))
            .fold(YesNo::default(), |acc, row| YesNo {
                yes: acc.yes.saturating_add(row.yes),
                no: acc.no.saturating_add(row.no),
            })
    }
}

/// One hourly row of [`RawFeatureMetrics`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct FeatureUsage {
    /// The flag.
    #[serde(default)]
    pub feature_name: String,
    /// The application.
    #[serde(default)]
    pub app_name: String,
    /// The environment (from the SDK's token).
    #[serde(default)]
    pub environment: String,
    /// The hour (UTC, hour-aligned).
    pub timestamp: DateTime<Utc>,
    /// Evaluations to enabled.
    #[serde(default)]
    pub yes: u64,
    /// Evaluations to disabled.
    #[serde(default)]
    pub no: u64,
    /// Variant counts (5.1+); absent for zero-filled hours.
    #[serde(default)]
    pub variants: Option<BTreeMap<String, u64>>,
}

/// `GET /api/admin/metrics/unknown-flags` (7.0+): flags SDKs reported that do not exist.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct UnknownFlags {
    /// The flags.
    #[serde(deserialize_with = "null_as_default")]
    pub unknown_flags: Vec<UnknownFlag>,
}

/// One flag in [`UnknownFlags`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct UnknownFlag {
    /// The name SDKs used.
    pub name: String,
    /// When it was last reported.
    #[serde(default)]
    pub last_seen_at: Option<DateTime<Utc>>,
    /// The last event about it, if any.
    #[serde(default)]
    pub last_event_at: Option<DateTime<Utc>>,
    /// Which applications reported it, where.
    #[serde(default, deserialize_with = "null_as_default")]
    pub reports: Vec<UnknownFlagReport>,
}

/// One application's reports of an [`UnknownFlag`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct UnknownFlagReport {
    /// The application.
    pub app_name: String,
    /// Where and when.
    #[serde(default, deserialize_with = "null_as_default")]
    pub environments: Vec<UnknownFlagSeen>,
}

/// An environment in which an [`UnknownFlag`] was seen.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct UnknownFlagSeen {
    /// The environment.
    pub environment: String,
    /// The `bucket.stop` of the report.
    #[serde(default)]
    pub seen_at: Option<DateTime<Utc>>,
}

// ---- legacy views (v2 seed, v3.0 – v4.3) -------------------------------------------------------

/// One entry of the legacy `seen-toggles` view.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct AppSeenToggles {
    /// The application.
    pub app_name: String,
    /// Flag names it reported.
    #[serde(default, deserialize_with = "null_as_default")]
    pub seen_toggles: Vec<String>,
    /// Metrics counted across all its flags.
    #[serde(default)]
    pub metrics_count: u64,
}

/// The legacy `feature-toggles` view: counts of every flag.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct FeatureToggleMetrics {
    /// Counts of the last hour per flag.
    #[serde(deserialize_with = "null_as_default")]
    pub last_hour: BTreeMap<String, YesNo>,
    /// Counts of the last minute per flag.
    #[serde(deserialize_with = "null_as_default")]
    pub last_minute: BTreeMap<String, YesNo>,
}

/// The legacy `feature-toggles/:name` view: counts of one flag.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct FeatureToggleWindow {
    /// Counts of the last hour.
    #[serde(deserialize_with = "null_as_default")]
    pub last_hour: YesNo,
    /// Counts of the last minute.
    #[serde(deserialize_with = "null_as_default")]
    pub last_minute: YesNo,
}

/// `GET /api/admin/ui-config` (only the part this client reads).
#[derive(Debug, Deserialize)]
pub(crate) struct UiConfig {
    #[serde(default)]
    pub(crate) version: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn bucket_serializes_rfc3339_and_variants() {
        let start = Utc.with_ymd_and_hms(2026, 11, 22, 9, 37, 57).unwrap();
        let mut bucket = MetricsBucket::new(start).with_stop(start + chrono::Duration::seconds(60));
        bucket.count_variant("my-flag", true, "blue");
        bucket.count("my-flag", false);
        let json = serde_json::to_value(&bucket).unwrap();
        assert_eq!(json["start"], "2026-11-22T09:37:57.000Z");
        assert_eq!(json["stop"], "2026-11-22T09:38:57.000Z");
        assert_eq!(json["toggles"]["my-flag"]["yes"], 1);
        assert_eq!(json["toggles"]["my-flag"]["no"], 1);
        assert_eq!(json["toggles"]["my-flag"]["variants"]["blue"], 1);
    }

    #[test]
    fn merge_sums_and_widens() {
        let t0 = Utc.with_ymd_and_hms(2026, 11, 22, 9, 0, 0).unwrap();
        let mut a = MetricsBucket::new(t0 + chrono::Duration::seconds(30))
            .with_toggle("f", ToggleCount::new(1, 2));
        let mut b = MetricsBucket::new(t0).with_stop(t0 + chrono::Duration::seconds(90));
        b.count_variant("f", true, "v");
        b.count("g", false);
        a.merge(&b);
        assert_eq!(a.start, t0);
        assert_eq!(a.stop, t0 + chrono::Duration::seconds(90));
        assert_eq!(a.toggles["f"].yes, 2);
        assert_eq!(a.toggles["f"].no, 2);
        assert_eq!(a.toggles["f"].variants["v"], 1);
        assert_eq!(a.toggles["g"].no, 1);
        assert_eq!(a.evaluations(), 5);
    }

    #[test]
    fn prune_drops_zero_toggles() {
        let mut bucket = MetricsBucket::new(Utc::now()).with_toggle("z", ToggleCount::new(0, 0));
        assert!(bucket.is_empty());
        bucket.prune();
        assert!(bucket.toggles.is_empty());
    }

    #[test]
    fn seen_toggles_accept_names_and_objects() {
        let v2: ApplicationDetails =
            serde_json::from_str(r#"{"appName":"a","seenToggles":["x","y"],"strategies":[{"appName":"a","strategies":["default"]}]}"#)
                .unwrap();
        assert_eq!(v2.seen_toggles[1].name, "y");
        assert_eq!(v2.strategies[0].strategies, ["default"]);
        let v8: ApplicationDetails = serde_json::from_str(
            r#"{"appName":"a","seenToggles":[{"name":"x","type":"release","stale":false}],"strategies":[{"name":"nope","notFound":true}]}"#,
        )
        .unwrap();
        assert_eq!(v8.seen_toggles[0].kind.as_deref(), Some("release"));
        assert_eq!(v8.strategies[0].not_found, Some(true));
    }
}
