//! Wire types of the AppOptics Metrics API v1, as the server sends and accepts them.
//!
//! Read types ignore unknown fields, use `Option` wherever the server sends `null` or may
//! leave a field out, and keep what they do not model in an `extra` map where a round trip
//! matters (charts and streams are read, changed and written back whole, so nothing the
//! server sent is lost on a save). Write types omit unset fields instead of sending `null`.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use chrono::{DateTime, TimeZone, Utc};
use serde::de::{self, Deserializer};
use serde::ser::{SerializeMap, Serializer};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Tag names to values. AppOptics lower-cases both on the server.
pub type Tags = BTreeMap<String, String>;

/// Builds [`Tags`] from pairs.
///
/// ```
/// let tags = appoptics_client::model::tags([("region", "us-east-1"), ("host", "web-1")]);
/// assert_eq!(tags["host"], "web-1");
/// ```
pub fn tags<I, K, V>(pairs: I) -> Tags
where
    I: IntoIterator<Item = (K, V)>,
    K: Into<String>,
    V: Into<String>,
{
    pairs
        .into_iter()
        .map(|(k, v)| (k.into(), v.into()))
        .collect()
}

/// Seconds since the epoch as a UTC time (the epoch itself when out of range).
pub(crate) fn epoch_to_utc(seconds: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(seconds, 0)
        .single()
        .unwrap_or(DateTime::<Utc>::UNIX_EPOCH)
}

/// Generates a string enum: known values as variants, anything else kept as `Other`, so a
/// newer server's value does not fail decoding.
macro_rules! string_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident { $( $(#[$vmeta:meta])* $variant:ident => $text:literal ),+ $(,)? }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Debug, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum $name {
            $( $(#[$vmeta])* $variant, )+
            /// A value this client does not know, as the server sent it.
            Other(String),
        }

        impl $name {
            /// The wire form.
            pub fn as_str(&self) -> &str {
                match self {
                    $( Self::$variant => $text, )+
                    Self::Other(other) => other,
                }
            }
        }

        impl From<&str> for $name {
            fn from(value: &str) -> Self {
                match value {
                    $( $text => Self::$variant, )+
                    other => Self::Other(other.to_owned()),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let text = String::deserialize(deserializer)?;
                Ok(Self::from(text.as_str()))
            }
        }
    };
}

string_enum! {
    /// A metric's type.
    pub enum MetricType {
        /// Measurements submitted by clients.
        Gauge => "gauge",
        /// Computed from other metrics by a composite expression.
        Composite => "composite",
    }
}

string_enum! {
    /// How a metric's measurements are summarized over time (`summarize_function`), or how a
    /// chart stream or alert condition summarizes them.
    pub enum SummaryFunction {
        /// The mean (the API's default).
        Average => "average",
        /// The sum.
        Sum => "sum",
        /// The number of samples.
        Count => "count",
        /// The minimum.
        Min => "min",
        /// The maximum.
        Max => "max",
        /// The change from one point to the next (alert conditions).
        Derivative => "derivative",
    }
}

string_enum! {
    /// The `summary_function` of a measurements read.
    pub enum ReadSummaryFunction {
        /// The mean.
        Mean => "mean",
        /// The sum.
        Sum => "sum",
        /// The minimum.
        Min => "min",
        /// The maximum.
        Max => "max",
        /// The number of samples.
        Count => "count",
        /// The change from one point to the next.
        Derivative => "derivative",
        /// The standard deviation.
        Stddev => "stddev",
        /// Every summary per point (`count`, `sum`, `min`, `max`, …); not with `group_by`.
        All => "all",
    }
}

string_enum! {
    /// How streams are combined by `group_by` in a measurements read.
    pub enum GroupByFunction {
        /// The sum.
        Sum => "sum",
        /// The minimum.
        Min => "min",
        /// The maximum.
        Max => "max",
        /// The mean.
        Mean => "mean",
    }
}

string_enum! {
    /// A chart's type.
    pub enum ChartType {
        /// A line chart (the default).
        Line => "line",
        /// A stacked chart.
        Stacked => "stacked",
        /// A single big number.
        Bignumber => "bignumber",
    }
}

string_enum! {
    /// How a chart stream combines its series.
    pub enum GroupFunction {
        /// The mean.
        Average => "average",
        /// The sum.
        Sum => "sum",
        /// The minimum.
        Min => "min",
        /// The maximum.
        Max => "max",
        /// Every series on its own.
        Breakout => "breakout",
    }
}

string_enum! {
    /// The kind of an alert condition.
    pub enum ConditionType {
        /// Fires when the value goes above the threshold.
        Above => "above",
        /// Fires when the value goes below the threshold.
        Below => "below",
        /// Fires when the metric stops reporting for the duration.
        Absent => "absent",
    }
}

/// Deserializes an id the server sends as a number or as a string (services: `"145"` in
/// lists, `145` inside alerts).
fn lenient_id<'de, D: Deserializer<'de>>(deserializer: D) -> Result<u64, D::Error> {
    match Value::deserialize(deserializer)? {
        Value::Number(n) => n
            .as_u64()
            .ok_or_else(|| de::Error::custom(format!("id {n} is not a non-negative integer"))),
        Value::String(s) => s
            .trim()
            .parse()
            .map_err(|_| de::Error::custom(format!("id `{s}` is not a number"))),
        other => Err(de::Error::custom(format!("expected an id, found {other}"))),
    }
}

/// Deserializes a number the server (or an old fake) may send as a string (`"1"`).
fn lenient_opt_u32<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<u32>, D::Error> {
    match Option::<Value>::deserialize(deserializer)? {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n
            .as_u64()
            .and_then(|v| u32::try_from(v).ok())
            .map(Some)
            .ok_or_else(|| de::Error::custom(format!("{n} is not a resolution in seconds"))),
        Some(Value::String(s)) => s
            .trim()
            .parse()
            .map(Some)
            .map_err(|_| de::Error::custom(format!("`{s}` is not a number"))),
        Some(other) => Err(de::Error::custom(format!(
            "expected a number, found {other}"
        ))),
    }
}

/// Deserializes `null` as the default value.
fn null_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

// ---------------------------------------------------------------------------------------------
// Pagination

/// The `query` object of a paginated list.
///
/// `total` counts everything the account has, `found` what matched the query; pagination
/// ends on `found`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueryInfo {
    /// Resources that matched the query.
    #[serde(default)]
    pub found: Option<u64>,
    /// The page size.
    #[serde(default)]
    pub length: Option<u64>,
    /// The offset of this page.
    #[serde(default)]
    pub offset: Option<u64>,
    /// All resources of this kind in the account.
    #[serde(default)]
    pub total: Option<u64>,
}

/// One page of a list route.
///
/// The list field is required: an object without it (`{"error":"maintenance"}` answered
/// with 200 by a proxy) is a decode error, not an empty page.
#[derive(Clone, Debug, PartialEq)]
pub struct Page<T> {
    /// Where this page sits in the result; missing or empty means "the only page".
    pub query: QueryInfo,
    /// The items (`metrics`, `annotations`, `alerts`, `services` or `spaces` on the wire).
    pub items: Vec<T>,
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Page<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(bound = "T: Deserialize<'de>")]
        struct Wire<T> {
            #[serde(default, deserialize_with = "null_default")]
            query: QueryInfo,
            #[serde(
                alias = "metrics",
                alias = "annotations",
                alias = "alerts",
                alias = "services",
                alias = "spaces",
                default = "Option::default"
            )]
            items: Option<Vec<T>>,
        }
        let wire = Wire::<T>::deserialize(deserializer)?;
        let items = wire.items.ok_or_else(|| {
            de::Error::custom(
                "the answer has no list (`metrics`, `annotations`, `alerts`, `services` or `spaces`); it is not a page of a list",
            )
        })?;
        Ok(Self {
            query: wire.query,
            items,
        })
    }
}

// ---------------------------------------------------------------------------------------------
// Metrics

/// Display and behaviour attributes of a metric.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct MetricAttributes {
    /// Chart colour, `#RRGGBB`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub color: Option<String>,
    /// Y-axis maximum.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_max: Option<f64>,
    /// Y-axis minimum.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_min: Option<f64>,
    /// Unit, long form (`Requests`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_units_long: Option<String>,
    /// Unit, short form (`reqs`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_units_short: Option<String>,
    /// Whether charts stack the streams.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_stacked: Option<bool>,
    /// How measurements are summarized when downsampled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summarize_function: Option<SummaryFunction>,
    /// Service-side aggregation over `period`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aggregate: Option<bool>,
    /// The user agent that created the metric (set by the server).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_by_ua: Option<String>,
    /// Gap detection in charts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gap_detection: Option<bool>,
    /// A display transform expression.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_transform: Option<String>,
    /// Attributes this client does not model.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// A metric as the server describes it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Metric {
    /// The name (case-insensitive on the server).
    pub name: String,
    /// The display name.
    #[serde(default)]
    pub display_name: Option<String>,
    /// The description.
    #[serde(default)]
    pub description: Option<String>,
    /// The expected reporting interval in seconds.
    #[serde(default)]
    pub period: Option<u32>,
    /// `gauge` or `composite`.
    #[serde(rename = "type", default = "default_metric_type")]
    pub metric_type: MetricType,
    /// Display attributes.
    #[serde(default, deserialize_with = "null_default")]
    pub attributes: MetricAttributes,
    /// Source lag in seconds.
    #[serde(default)]
    pub source_lag: Option<i64>,
    /// The composite expression of a composite metric.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub composite: Option<String>,
}

fn default_metric_type() -> MetricType {
    MetricType::Gauge
}

/// The properties sent when creating or updating a metric (`PUT /v1/metrics/:name`).
/// Unset fields are not sent, so an update changes only what is set.
///
/// ```
/// use appoptics_client::model::{MetricAttributes, MetricSpec};
///
/// let spec = MetricSpec::new()
///     .with_description("Requests per minute")
///     .with_attributes(MetricAttributes { display_units_short: Some("req".into()), ..Default::default() });
/// let body = serde_json::to_value(&spec).unwrap();
/// assert_eq!(body["attributes"]["display_units_short"], "req");
/// assert!(body.get("period").is_none());
/// ```
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[must_use]
pub struct MetricSpec {
    /// `gauge` or `composite`; creation defaults to `gauge`.
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub metric_type: Option<MetricType>,
    /// The display name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// The description.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The reporting interval in seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub period: Option<u32>,
    /// Attributes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attributes: Option<MetricAttributes>,
    /// The composite expression (composite metrics only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub composite: Option<String>,
}

impl MetricSpec {
    /// Nothing set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the type.
    pub fn with_type(mut self, metric_type: MetricType) -> Self {
        self.metric_type = Some(metric_type);
        self
    }

    /// Sets the display name.
    pub fn with_display_name(mut self, display_name: impl Into<String>) -> Self {
        self.display_name = Some(display_name.into());
        self
    }

    /// Sets the description.
    pub fn with_description(mut self, description: impl Into<String>) -> Self {
        self.description = Some(description.into());
        self
    }

    /// Sets the period in seconds.
    pub fn with_period(mut self, period: u32) -> Self {
        self.period = Some(period);
        self
    }

    /// Sets the attributes.
    pub fn with_attributes(mut self, attributes: MetricAttributes) -> Self {
        self.attributes = Some(attributes);
        self
    }

    /// Sets the composite expression (and the type to `composite`).
    pub fn with_composite(mut self, compose: impl Into<String>) -> Self {
        self.composite = Some(compose.into());
        self.metric_type = Some(MetricType::Composite);
        self
    }
}

/// Which metrics a bulk update or delete applies to.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum MetricSelector {
    /// These names.
    Names(Vec<String>),
    /// Names matching a wildcard pattern (`cpu*.90`).
    Pattern(String),
}

impl Serialize for MetricSelector {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Names(names) => names.serialize(serializer),
            Self::Pattern(pattern) => serializer.serialize_str(pattern),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Measurements (write)

/// What a measurement carries: one value, or a summary of several.
#[derive(Clone, Copy, Debug, PartialEq)]
#[non_exhaustive]
pub enum MeasurementValue {
    /// A single value.
    Value(f64),
    /// A summary of `count` samples.
    Summary(Summary),
}

/// A summary of several samples, sent instead of a single value.
///
/// ```
/// use appoptics_client::model::Summary;
///
/// let summary = Summary::new(3, 35.0).with_min(4.5).with_max(6.7).with_last(2.5).with_stddev(1.34);
/// assert_eq!(summary.count, 3);
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
#[must_use]
pub struct Summary {
    /// The number of samples (at least 1).
    pub count: u64,
    /// Their sum.
    pub sum: f64,
    /// The smallest.
    pub min: Option<f64>,
    /// The largest.
    pub max: Option<f64>,
    /// The last.
    pub last: Option<f64>,
    /// The population standard deviation.
    pub stddev: Option<f64>,
}

impl Summary {
    /// `count` samples adding up to `sum`.
    pub fn new(count: u64, sum: f64) -> Self {
        Self {
            count,
            sum,
            min: None,
            max: None,
            last: None,
            stddev: None,
        }
    }

    /// Sets the minimum.
    pub fn with_min(mut self, min: f64) -> Self {
        self.min = Some(min);
        self
    }

    /// Sets the maximum.
    pub fn with_max(mut self, max: f64) -> Self {
        self.max = Some(max);
        self
    }

    /// Sets the last sample.
    pub fn with_last(mut self, last: f64) -> Self {
        self.last = Some(last);
        self
    }

    /// Sets the population standard deviation.
    pub fn with_stddev(mut self, stddev: f64) -> Self {
        self.stddev = Some(stddev);
        self
    }
}

/// A measurement's value as stored: a summary is boxed, so that a queue of plain values
/// (the common case) stays small — about 90 bytes per measurement.
#[derive(Clone, Debug, PartialEq)]
enum StoredValue {
    Value(f64),
    Summary(Box<Summary>),
}

/// Metric properties sent with a measurement; the server uses them only when the
/// measurement creates the metric.
#[derive(Clone, Debug, Default, PartialEq)]
struct CreationProperties {
    attributes: Option<MetricAttributes>,
    description: Option<String>,
    display_name: Option<String>,
}

/// One measurement to submit.
///
/// Tags follow the library's rules: a measurement's own tags are used alone, unless
/// [`with_inherit_tags`](Measurement::with_inherit_tags) is set, in which case they are laid
/// over the connection's (and a queue's) tags; a measurement without tags inherits them.
/// Priority: measurement > queue > connection.
///
/// ```
/// use appoptics_client::{Measurement, model::tags};
///
/// let m = Measurement::new("temperature", 80.0)
///     .with_tags(tags([("city", "sf")]))
///     .with_timestamp(1_700_000_000);
/// let json = serde_json::to_value(&m).unwrap();
/// assert_eq!(json, serde_json::json!({
///     "name": "temperature", "value": 80.0, "time": 1_700_000_000, "tags": {"city": "sf"}
/// }));
/// ```
#[derive(Clone, Debug, PartialEq)]
#[must_use]
pub struct Measurement {
    // Shared: a queue reuses the previous measurement's name when it is the same.
    pub(crate) name: Arc<str>,
    value: StoredValue,
    pub(crate) time: Option<i64>,
    pub(crate) period: Option<u32>,
    // Shared: a queue of a million measurements with the same resolved tags holds one map.
    pub(crate) tags: Option<Arc<Tags>>,
    pub(crate) inherit_tags: bool,
    properties: Option<Box<CreationProperties>>,
}

impl Measurement {
    /// A measurement of one value.
    pub fn new(name: impl Into<String>, value: f64) -> Self {
        Self::with_value(name, StoredValue::Value(value))
    }

    /// A measurement summarizing several samples.
    pub fn summary(name: impl Into<String>, summary: Summary) -> Self {
        Self::with_value(name, StoredValue::Summary(Box::new(summary)))
    }

    fn with_value(name: impl Into<String>, value: StoredValue) -> Self {
        Self {
            name: Arc::from(name.into()),
            value,
            time: None,
            period: None,
            tags: None,
            inherit_tags: false,
            properties: None,
        }
    }

    /// A value with its name and tags already resolved and checked (the queue's `add`).
    pub(crate) fn resolved(name: Arc<str>, value: f64, tags: Arc<Tags>) -> Self {
        Self {
            name,
            value: StoredValue::Value(value),
            time: None,
            period: None,
            tags: Some(tags),
            inherit_tags: false,
            properties: None,
        }
    }

    /// Sets the measurement's own tags (replacing any set before).
    pub fn with_tags(mut self, tags: Tags) -> Self {
        self.tags = Some(Arc::new(tags));
        self
    }

    /// Adds one tag.
    pub fn with_tag(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        let tags = self.tags.get_or_insert_with(Default::default);
        Arc::make_mut(tags).insert(name.into(), value.into());
        self
    }

    /// Lays the measurement's own tags over the inherited ones instead of replacing them.
    pub fn with_inherit_tags(mut self, inherit: bool) -> Self {
        self.inherit_tags = inherit;
        self
    }

    /// Sets the time (the server uses "now" otherwise).
    pub fn with_time(mut self, time: DateTime<Utc>) -> Self {
        self.time = Some(time.timestamp());
        self
    }

    /// Sets the time as seconds since the epoch.
    pub fn with_timestamp(mut self, epoch_seconds: i64) -> Self {
        self.time = Some(epoch_seconds);
        self
    }

    /// Sets the reporting period in seconds.
    pub fn with_period(mut self, period: u32) -> Self {
        self.period = Some(period);
        self
    }

    /// Metric attributes, used only if this measurement creates the metric.
    pub fn with_attributes(mut self, attributes: MetricAttributes) -> Self {
        self.properties
            .get_or_insert_with(Default::default)
            .attributes = Some(attributes);
        self
    }

    /// Metric description, used only if this measurement creates the metric.
    pub fn with_description(mut self, description: impl Into<String>) -> Self {
        self.properties
            .get_or_insert_with(Default::default)
            .description = Some(description.into());
        self
    }

    /// Metric display name, used only if this measurement creates the metric.
    pub fn with_display_name(mut self, display_name: impl Into<String>) -> Self {
        self.properties
            .get_or_insert_with(Default::default)
            .display_name = Some(display_name.into());
        self
    }

    /// The metric name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The value or summary.
    pub fn value(&self) -> MeasurementValue {
        match &self.value {
            StoredValue::Value(v) => MeasurementValue::Value(*v),
            StoredValue::Summary(s) => MeasurementValue::Summary(**s),
        }
    }

    /// The time in seconds since the epoch, if set.
    pub fn timestamp(&self) -> Option<i64> {
        self.time
    }

    /// The tags: the measurement's own before it is submitted or queued, the resolved set
    /// once a queue holds it.
    pub fn tags(&self) -> Option<&Tags> {
        self.tags.as_deref()
    }

    /// Whether the measurement inherits tags.
    pub fn inherits_tags(&self) -> bool {
        self.inherit_tags
    }

    /// The same measurement with its tags resolved against `inherited` by the library's
    /// rules. `inherited` is used as is (shared) when the measurement has no tags.
    pub(crate) fn resolve_tags(mut self, inherited: &Arc<Tags>) -> Self {
        self.tags = match self.tags.take() {
            // An empty map is "no tags of its own", not "no tags at all".
            None => Some(Arc::clone(inherited)),
            Some(own) if own.is_empty() => Some(Arc::clone(inherited)),
            Some(own) if !self.inherit_tags => Some(own),
            Some(own) => {
                let mut merged = (**inherited).clone();
                merged.extend(own.iter().map(|(k, v)| (k.clone(), v.clone())));
                Some(Arc::new(merged))
            }
        };
        self.inherit_tags = false;
        self
    }

    /// Checks the measurement as it will be sent.
    pub(crate) fn validate(&self) -> metrics_core::Result<()> {
        crate::validate::metric_name(&self.name)?;
        match &self.value {
            StoredValue::Value(v) => crate::validate::value("value", *v)?,
            StoredValue::Summary(s) => {
                if s.count == 0 {
                    return Err(metrics_core::Error::invalid_input(
                        crate::BACKEND,
                        format!(
                            "measurement `{}`: a summary needs a count of at least 1",
                            self.name
                        ),
                    ));
                }
                crate::validate::value("sum", s.sum)?;
                for (what, v) in [
                    ("min", s.min),
                    ("max", s.max),
                    ("last", s.last),
                    ("stddev", s.stddev),
                ] {
                    if let Some(v) = v {
                        crate::validate::value(what, v)?;
                    }
                }
            }
        }
        match self.tags.as_deref() {
            Some(tags) if !tags.is_empty() => crate::validate::tags(tags),
            _ => Err(metrics_core::Error::invalid_input(
                crate::BACKEND,
                format!(
                    "measurement `{}` has no tags; at least one tag is needed (set tags on the measurement, the queue or the client)",
                    self.name
                ),
            )),
        }
    }
}

impl Serialize for Measurement {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("name", &*self.name)?;
        match &self.value {
            StoredValue::Value(v) => map.serialize_entry("value", v)?,
            StoredValue::Summary(s) => {
                map.serialize_entry("count", &s.count)?;
                map.serialize_entry("sum", &s.sum)?;
                for (key, v) in [
                    ("min", s.min),
                    ("max", s.max),
                    ("last", s.last),
                    ("stddev", s.stddev),
                ] {
                    if let Some(v) = v {
                        map.serialize_entry(key, &v)?;
                    }
                }
            }
        }
        if let Some(time) = self.time {
            map.serialize_entry("time", &time)?;
        }
        if let Some(period) = self.period {
            map.serialize_entry("period", &period)?;
        }
        if let Some(tags) = self.tags.as_deref() {
            map.serialize_entry("tags", tags)?;
        }
        if let Some(properties) = self.properties.as_deref() {
            if let Some(attributes) = &properties.attributes {
                map.serialize_entry("attributes", attributes)?;
            }
            if let Some(description) = &properties.description {
                map.serialize_entry("description", description)?;
            }
            if let Some(display_name) = &properties.display_name {
                map.serialize_entry("display_name", display_name)?;
            }
        }
        map.end()
    }
}

/// The body of `POST /v1/measurements`.
pub(crate) struct MeasurementsBody<'a, I> {
    pub(crate) measurements: I,
    pub(crate) tags: Option<&'a Tags>,
    pub(crate) time: Option<i64>,
}

impl<'a, I> Serialize for MeasurementsBody<'a, I>
where
    I: Clone + IntoIterator<Item = &'a Measurement>,
{
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        struct Items<I>(I);
        impl<'a, I: Clone + IntoIterator<Item = &'a Measurement>> Serialize for Items<I> {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.collect_seq(self.0.clone())
            }
        }
        let mut map = serializer.serialize_map(None)?;
        if let Some(tags) = self.tags {
            map.serialize_entry("tags", tags)?;
        }
        if let Some(time) = self.time {
            map.serialize_entry("time", &time)?;
        }
        map.serialize_entry("measurements", &Items(self.measurements.clone()))?;
        map.end()
    }
}

// ---------------------------------------------------------------------------------------------
// Measurements (read)

/// One point of a measurements read. With a plain summary function only `value` is set;
/// with `summary_function=all` the summary fields are.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct MeasurementPoint {
    /// Seconds since the epoch, floored to the resolution.
    pub time: i64,
    /// The summarized value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<f64>,
    /// Samples in the bucket.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<f64>,
    /// Their sum.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sum: Option<f64>,
    /// Their minimum.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<f64>,
    /// Their maximum.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<f64>,
    /// Their mean.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mean: Option<f64>,
    /// Their standard deviation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stddev: Option<f64>,
}

impl MeasurementPoint {
    /// The time as a UTC date.
    pub fn datetime(&self) -> DateTime<Utc> {
        epoch_to_utc(self.time)
    }

    /// `value`, or else `mean`, or else `sum / count`: the single number this point stands for.
    pub fn best_value(&self) -> Option<f64> {
        self.value
            .or(self.mean)
            .or_else(|| match (self.sum, self.count) {
                (Some(sum), Some(count)) if count > 0.0 => Some(sum / count),
                _ => None,
            })
    }
}

/// One stream (tag set) of a measurements read.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct MeasurementSeries {
    /// The stream's tags (none when grouped with `group_by=*`).
    #[serde(default, deserialize_with = "null_default")]
    pub tags: Tags,
    /// The points, oldest first (required: a series without them is not a series).
    #[serde(deserialize_with = "null_default")]
    pub measurements: Vec<MeasurementPoint>,
}

/// A link in a response (`rel: "next"` continues a measurements read).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Link {
    /// The relation (`next`; for annotations a user-chosen key such as `github`).
    pub rel: String,
    /// The target.
    pub href: String,
    /// A label.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
}

impl Link {
    /// A link without a label.
    pub fn new(rel: impl Into<String>, href: impl Into<String>) -> Self {
        Self {
            rel: rel.into(),
            href: href.into(),
            label: None,
        }
    }

    /// Sets the label.
    #[must_use]
    pub fn with_label(mut self, label: impl Into<String>) -> Self {
        self.label = Some(label.into());
        self
    }
}

/// The answer to `GET /v1/measurements/:name`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Measurements {
    /// The metric name.
    #[serde(default)]
    pub name: Option<String>,
    /// One entry per stream, sorted by tags. Required: an answer without it is not a
    /// measurements read.
    #[serde(deserialize_with = "null_default")]
    pub series: Vec<MeasurementSeries>,
    /// `rel: "next"` when there is more; empty on the last page.
    #[serde(default, deserialize_with = "null_default")]
    pub links: Vec<Link>,
    /// The resolution of the points in seconds.
    #[serde(default, deserialize_with = "lenient_opt_u32")]
    pub resolution: Option<u32>,
    /// The metric's attributes.
    #[serde(default)]
    pub attributes: Option<MetricAttributes>,
}

impl Measurements {
    /// The `href` of the `next` link, if there is one.
    pub fn next_link(&self) -> Option<&str> {
        self.links
            .iter()
            .find(|l| l.rel == "next")
            .map(|l| l.href.as_str())
    }

    /// Appends another page's points, joining series with the same tags.
    pub(crate) fn merge_page(&mut self, page: Self) {
        for series in page.series {
            match self.series.iter_mut().find(|s| s.tags == series.tags) {
                Some(existing) => existing.measurements.extend(series.measurements),
                None => self.series.push(series),
            }
        }
        self.links = page.links;
        if self.name.is_none() {
            self.name = page.name;
        }
        if self.resolution.is_none() {
            self.resolution = page.resolution;
        }
        if self.attributes.is_none() {
            self.attributes = page.attributes;
        }
    }
}

/// The metric a composite series was computed from.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CompositeMetric {
    /// Its name.
    #[serde(default)]
    pub name: Option<String>,
    /// Its type.
    #[serde(rename = "type", default)]
    pub metric_type: Option<MetricType>,
    /// Its attributes.
    #[serde(default)]
    pub attributes: Option<MetricAttributes>,
    /// Its period.
    #[serde(default)]
    pub period: Option<u32>,
}

/// One series of a composite query.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CompositeSeries {
    /// Its tags.
    #[serde(default, deserialize_with = "null_default")]
    pub tags: Tags,
    /// Its points (required).
    #[serde(deserialize_with = "null_default")]
    pub measurements: Vec<MeasurementPoint>,
    /// The underlying metric.
    #[serde(default)]
    pub metric: Option<CompositeMetric>,
    /// The period in seconds.
    #[serde(default)]
    pub period: Option<u32>,
    /// The query this series answers (legacy object form).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query: Option<Value>,
}

/// The answer to a composite query. The API documentation shows a bare array, the Python
/// library's README an object with `series`; both decode to this.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct CompositeResult {
    /// The series.
    pub series: Vec<CompositeSeries>,
    /// The expression, when the server echoes it.
    pub compose: Option<String>,
    /// The resolution, when the server says.
    pub resolution: Option<u32>,
}

impl<'de> Deserialize<'de> for CompositeResult {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Shape {
            Array(Vec<CompositeSeries>),
            Object {
                series: Vec<CompositeSeries>,
                #[serde(default)]
                compose: Option<String>,
                #[serde(default, deserialize_with = "lenient_opt_u32")]
                resolution: Option<u32>,
            },
        }
        Ok(match Shape::deserialize(deserializer)? {
            Shape::Array(series) => Self {
                series,
                compose: None,
                resolution: None,
            },
            Shape::Object {
                series,
                compose,
                resolution,
            } => Self {
                series,
                compose,
                resolution,
            },
        })
    }
}

// ---------------------------------------------------------------------------------------------
// Annotations

/// An annotation stream as listed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AnnotationStream {
    /// Its name.
    pub name: String,
    /// Its display name.
    #[serde(default)]
    pub display_name: Option<String>,
}

/// One annotation event.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AnnotationEvent {
    /// Its id.
    pub id: u64,
    /// Its title.
    pub title: String,
    /// Its description.
    #[serde(default)]
    pub description: Option<String>,
    /// Its source (`null` for none).
    #[serde(default)]
    pub source: Option<String>,
    /// Start, seconds since the epoch.
    #[serde(default)]
    pub start_time: Option<i64>,
    /// End, seconds since the epoch.
    #[serde(default)]
    pub end_time: Option<i64>,
    /// Links.
    #[serde(default, deserialize_with = "null_default")]
    pub links: Vec<Link>,
}

/// An annotation stream with its events, grouped by source (`unassigned` = no source).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AnnotationStreamEvents {
    /// The stream name.
    pub name: String,
    /// Its display name.
    pub display_name: Option<String>,
    /// Source to events, ordered by start time.
    pub events: BTreeMap<String, Vec<AnnotationEvent>>,
}

impl<'de> Deserialize<'de> for AnnotationStreamEvents {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        // The wire form is `events: [ { "<source>": [..], "unassigned": [..] } ]`, an array of
        // (in practice) one object keyed by source; a bare object is accepted too.
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Events {
            List(Vec<BTreeMap<String, Vec<AnnotationEvent>>>),
            Map(BTreeMap<String, Vec<AnnotationEvent>>),
        }
        #[derive(Deserialize)]
        struct Wire {
            name: String,
            #[serde(default)]
            display_name: Option<String>,
            events: Events,
        }
        let wire = Wire::deserialize(deserializer)?;
        let mut events: BTreeMap<String, Vec<AnnotationEvent>> = BTreeMap::new();
        let maps = match wire.events {
            Events::List(list) => list,
            Events::Map(map) => vec![map],
        };
        for map in maps {
            for (source, list) in map {
                events.entry(source).or_default().extend(list);
            }
        }
        Ok(Self {
            name: wire.name,
            display_name: wire.display_name,
            events,
        })
    }
}

impl AnnotationStreamEvents {
    /// Every event of every source, ordered by start time.
    pub fn all_events(&self) -> Vec<&AnnotationEvent> {
        let mut all: Vec<&AnnotationEvent> = self.events.values().flatten().collect();
        all.sort_by_key(|e| (e.start_time, e.id));
        all
    }
}

/// A new annotation event (`POST /v1/annotations/:name`).
///
/// ```
/// use appoptics_client::model::{Link, NewAnnotation};
///
/// let event = NewAnnotation::new("build 42")
///     .with_description("deployed by CI")
///     .with_link(Link::new("travis", "https://ci.example.com/42"));
/// assert_eq!(serde_json::to_value(&event).unwrap()["links"][0]["rel"], "travis");
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[must_use]
pub struct NewAnnotation {
    /// The title (required).
    pub title: String,
    /// The source.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// The description.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Links.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub links: Vec<Link>,
    /// Start, seconds since the epoch (the server uses now otherwise).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start_time: Option<i64>,
    /// End, seconds since the epoch.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub end_time: Option<i64>,
}

impl NewAnnotation {
    /// An event with this title.
    pub fn new(title: impl Into<String>) -> Self {
        Self {
            title: title.into(),
            ..Self::default()
        }
    }

    /// Sets the source.
    pub fn with_source(mut self, source: impl Into<String>) -> Self {
        self.source = Some(source.into());
        self
    }

    /// Sets the description.
    pub fn with_description(mut self, description: impl Into<String>) -> Self {
        self.description = Some(description.into());
        self
    }

    /// Adds a link.
    pub fn with_link(mut self, link: Link) -> Self {
        self.links.push(link);
        self
    }

    /// Sets the start time.
    pub fn with_start_time(mut self, time: DateTime<Utc>) -> Self {
        self.start_time = Some(time.timestamp());
        self
    }

    /// Sets the end time.
    pub fn with_end_time(mut self, time: DateTime<Utc>) -> Self {
        self.end_time = Some(time.timestamp());
        self
    }
}

/// Changes to an annotation event (`PUT /v1/annotations/:name/:id`); unset fields are kept.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[must_use]
pub struct AnnotationUpdate {
    /// A new title.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// A new description.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// A new end time.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub end_time: Option<i64>,
    /// New links.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub links: Option<Vec<Link>>,
}

// ---------------------------------------------------------------------------------------------
// Spaces and charts

/// A chart's id inside a space.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChartRef {
    /// The chart id.
    pub id: u64,
}

/// A space (a dashboard).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Space {
    /// Its id.
    pub id: u64,
    /// Its name.
    pub name: String,
    /// Its charts (only when read one by one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub charts: Option<Vec<ChartRef>>,
}

impl Space {
    /// The ids of its charts (empty when listed, where the server does not send them).
    pub fn chart_ids(&self) -> Vec<u64> {
        self.charts
            .as_deref()
            .unwrap_or_default()
            .iter()
            .map(|c| c.id)
            .collect()
    }
}

/// A tag filter of a chart stream.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamTag {
    /// The tag name.
    pub name: String,
    /// Value patterns (`*` wildcards).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub values: Option<Vec<String>>,
    /// Whether the series are grouped on this tag.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grouped: Option<bool>,
    /// Whether the value follows the space's dynamic tag selector.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dynamic: Option<bool>,
}

impl StreamTag {
    /// A filter on these value patterns.
    pub fn values<I, S>(name: impl Into<String>, values: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self {
            name: name.into(),
            values: Some(values.into_iter().map(Into::into).collect()),
            grouped: None,
            dynamic: None,
        }
    }

    /// A filter following the space's dynamic tag selector.
    pub fn dynamic(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            values: None,
            grouped: None,
            dynamic: Some(true),
        }
    }
}

/// One stream of a chart: a metric with tag filters, or a composite expression.
///
/// Every field the server sends is kept (unknown ones in `extra`), so a chart read, changed
/// and written back keeps its streams' tags and colours.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Stream {
    /// The stream id (set by the server).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<u64>,
    /// The metric.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metric: Option<String>,
    /// A composite expression (instead of metric and tags).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub composite: Option<String>,
    /// `gauge` or `composite` (set by the server).
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub stream_type: Option<String>,
    /// Tag filters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<StreamTag>>,
    /// How series are combined.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_function: Option<GroupFunction>,
    /// How each series is summarized.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary_function: Option<SummaryFunction>,
    /// How composites are downsampled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub downsample_function: Option<String>,
    /// Colour, `#RRGGBB`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub color: Option<String>,
    /// Display name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Unit, short.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub units_short: Option<String>,
    /// Unit, long.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub units_long: Option<String>,
    /// Y minimum.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<f64>,
    /// Y maximum.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<f64>,
    /// Transform (`x` = value, `p` = period), e.g. `x/p*60`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transform_function: Option<String>,
    /// Period in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub period: Option<u32>,
    /// Second Y axis.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub split_axis: Option<bool>,
    /// Legacy source filter.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// Gap detection.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gap_detection: Option<bool>,
    /// Position in the chart.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub position: Option<u32>,
    /// Fields this client does not model, kept for the round trip.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl Stream {
    /// A stream of a metric.
    #[must_use]
    pub fn metric(metric: impl Into<String>) -> Self {
        Self {
            metric: Some(metric.into()),
            ..Self::default()
        }
    }

    /// A stream of a composite expression.
    #[must_use]
    pub fn composite(compose: impl Into<String>) -> Self {
        Self {
            composite: Some(compose.into()),
            ..Self::default()
        }
    }

    /// Adds a tag filter.
    #[must_use]
    pub fn with_tag(mut self, tag: StreamTag) -> Self {
        self.tags.get_or_insert_with(Vec::new).push(tag);
        self
    }

    /// Sets the group function.
    #[must_use]
    pub fn with_group_function(mut self, function: GroupFunction) -> Self {
        self.group_function = Some(function);
        self
    }

    /// Sets the summary function.
    #[must_use]
    pub fn with_summary_function(mut self, function: SummaryFunction) -> Self {
        self.summary_function = Some(function);
        self
    }

    /// Sets the colour.
    #[must_use]
    pub fn with_color(mut self, color: impl Into<String>) -> Self {
        self.color = Some(color.into());
        self
    }

    /// Sets the display name.
    #[must_use]
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }
}

/// A threshold line of a chart.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Threshold {
    /// `>`, `<` or `=`.
    pub operator: String,
    /// The value.
    pub value: f64,
    /// `red` or `yellow`.
    #[serde(rename = "type")]
    pub threshold_type: String,
}

/// A chart in a space. Used to create, read and update charts.
///
/// ```
/// use appoptics_client::model::{Chart, ChartType, Stream, StreamTag, SummaryFunction};
///
/// let chart = Chart::new("CPU Usage")
///     .with_type(ChartType::Line)
///     .with_stream(Stream::metric("cpu.idle").with_tag(StreamTag::values("environment", ["*"])))
///     .with_stream(Stream::metric("cpu.user").with_summary_function(SummaryFunction::Max));
/// let body = serde_json::to_value(&chart).unwrap();
/// assert_eq!(body["streams"][0]["tags"][0]["values"][0], "*");
/// ```
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Chart {
    /// The id (set by the server).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<u64>,
    /// The name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The type; creation defaults to `line`.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub chart_type: Option<ChartType>,
    /// The streams. An update replaces all of them.
    #[serde(default, deserialize_with = "null_default")]
    pub streams: Vec<Stream>,
    /// Y minimum.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<f64>,
    /// Y maximum.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<f64>,
    /// Y-axis label.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// A space to link to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub related_space: Option<u64>,
    /// Logarithmic Y axis.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub use_log_yaxis: Option<bool>,
    /// Big-number charts: show the last value instead of the average.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub use_last_value: Option<bool>,
    /// Thresholds (big-number charts).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thresholds: Option<Vec<Threshold>>,
    /// Fields this client does not model, kept for the round trip.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl Chart {
    /// A chart with this name and no streams.
    #[must_use]
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: Some(name.into()),
            ..Self::default()
        }
    }

    /// Sets the type.
    #[must_use]
    pub fn with_type(mut self, chart_type: ChartType) -> Self {
        self.chart_type = Some(chart_type);
        self
    }

    /// Adds a stream.
    #[must_use]
    pub fn with_stream(mut self, stream: Stream) -> Self {
        self.streams.push(stream);
        self
    }

    /// Sets the Y range.
    #[must_use]
    pub fn with_range(mut self, min: f64, max: f64) -> Self {
        self.min = Some(min);
        self.max = Some(max);
        self
    }

    /// Sets the Y-axis label.
    #[must_use]
    pub fn with_label(mut self, label: impl Into<String>) -> Self {
        self.label = Some(label.into());
        self
    }

    /// Sets a logarithmic Y axis.
    #[must_use]
    pub fn with_log_yaxis(mut self, log: bool) -> Self {
        self.use_log_yaxis = Some(log);
        self
    }

    /// Sets `use_last_value` (big-number charts).
    #[must_use]
    pub fn with_use_last_value(mut self, use_last_value: bool) -> Self {
        self.use_last_value = Some(use_last_value);
        self
    }

    /// Links another space.
    #[must_use]
    pub fn with_related_space(mut self, space_id: u64) -> Self {
        self.related_space = Some(space_id);
        self
    }

    /// Adds a threshold.
    #[must_use]
    pub fn with_threshold(mut self, threshold: Threshold) -> Self {
        self.thresholds.get_or_insert_with(Vec::new).push(threshold);
        self
    }

    /// A line chart of one metric (the library's `add_single_line_chart`).
    #[must_use]
    pub fn single_line(name: impl Into<String>, metric: impl Into<String>) -> Self {
        Self::new(name)
            .with_type(ChartType::Line)
            .with_stream(Stream::metric(metric))
    }

    /// A stacked chart of one metric (`add_single_stacked_chart`).
    #[must_use]
    pub fn single_stacked(name: impl Into<String>, metric: impl Into<String>) -> Self {
        Self::new(name)
            .with_type(ChartType::Stacked)
            .with_stream(Stream::metric(metric))
    }

    /// A big-number chart of one metric showing its last value, summarized and grouped by
    /// average (`add_bignumber_chart`).
    #[must_use]
    pub fn bignumber(name: impl Into<String>, metric: impl Into<String>) -> Self {
        Self::new(name)
            .with_type(ChartType::Bignumber)
            .with_use_last_value(true)
            .with_stream(
                Stream::metric(metric)
                    .with_summary_function(SummaryFunction::Average)
                    .with_group_function(GroupFunction::Average),
            )
    }
}

// ---------------------------------------------------------------------------------------------
// Alerts and services

/// An outbound notification service.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Service {
    /// Its id (sent as a string in lists and as a number in alerts; both decode).
    #[serde(deserialize_with = "lenient_id")]
    pub id: u64,
    /// `mail`, `slack`, `pagerduty`, …
    #[serde(rename = "type", default)]
    pub service_type: String,
    /// Type-specific settings.
    #[serde(default, deserialize_with = "null_default")]
    pub settings: Map<String, Value>,
    /// Its title.
    #[serde(default)]
    pub title: String,
}

/// A new service (`POST /v1/services`).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct NewService {
    /// Its title.
    pub title: String,
    /// Its type.
    #[serde(rename = "type")]
    pub service_type: String,
    /// Its settings.
    pub settings: Map<String, Value>,
}

/// A service given to an alert: by id, or as the object read from the server.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ServiceId(pub u64);

impl From<u64> for ServiceId {
    fn from(id: u64) -> Self {
        Self(id)
    }
}

impl From<&Service> for ServiceId {
    fn from(service: &Service) -> Self {
        Self(service.id)
    }
}

/// A tag filter of an alert condition.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConditionTag {
    /// The tag name.
    pub name: String,
    /// Whether each value is evaluated on its own.
    #[serde(default)]
    pub grouped: bool,
    /// Value patterns.
    #[serde(default)]
    pub values: Vec<String>,
}

/// One condition of an alert; an alert fires when all of its conditions hold.
///
/// ```
/// use appoptics_client::model::{Condition, SummaryFunction};
///
/// let above = Condition::above("cpu", 90.0).with_summary_function(SummaryFunction::Max).with_duration(300);
/// assert!(!above.is_immediate());
/// let absent = Condition::absent("heartbeat", 600);
/// assert_eq!(absent.duration, Some(600));
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Condition {
    /// The id (set by the server).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<u64>,
    /// `above`, `below` or `absent`.
    #[serde(rename = "type")]
    pub condition_type: ConditionType,
    /// The metric.
    pub metric_name: String,
    /// Legacy source filter.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// Tag filters.
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "null_default"
    )]
    pub tags: Vec<ConditionTag>,
    /// The threshold (above/below).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threshold: Option<f64>,
    /// The summary function (above/below; default average).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary_function: Option<SummaryFunction>,
    /// Seconds the condition must hold, 60 to 3600; none means immediately.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<u32>,
    /// Derivative conditions: ignore counter resets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detect_reset: Option<bool>,
}

impl Condition {
    fn new(condition_type: ConditionType, metric: impl Into<String>) -> Self {
        Self {
            id: None,
            condition_type,
            metric_name: metric.into(),
            source: None,
            tags: Vec::new(),
            threshold: None,
            summary_function: None,
            duration: None,
            detect_reset: None,
        }
    }

    /// Fires when `metric` goes above `threshold` (summarized by average unless set).
    #[must_use]
    pub fn above(metric: impl Into<String>, threshold: f64) -> Self {
        let mut condition = Self::new(ConditionType::Above, metric);
        condition.threshold = Some(threshold);
        condition
    }

    /// Fires when `metric` goes below `threshold`.
    #[must_use]
    pub fn below(metric: impl Into<String>, threshold: f64) -> Self {
        let mut condition = Self::new(ConditionType::Below, metric);
        condition.threshold = Some(threshold);
        condition
    }

    /// Fires when `metric` stops reporting for `duration_secs` (60 to 3600).
    #[must_use]
    pub fn absent(metric: impl Into<String>, duration_secs: u32) -> Self {
        let mut condition = Self::new(ConditionType::Absent, metric);
        condition.duration = Some(duration_secs);
        condition
    }

    /// Sets the summary function.
    #[must_use]
    pub fn with_summary_function(mut self, function: SummaryFunction) -> Self {
        self.summary_function = Some(function);
        self
    }

    /// Sets how long the condition must hold (60 to 3600 s).
    #[must_use]
    pub fn with_duration(mut self, duration_secs: u32) -> Self {
        self.duration = Some(duration_secs);
        self
    }

    /// Fires as soon as the condition holds (clears the duration).
    #[must_use]
    pub fn immediate(mut self) -> Self {
        self.duration = None;
        self
    }

    /// Adds a tag filter.
    #[must_use]
    pub fn with_tag(mut self, tag: ConditionTag) -> Self {
        self.tags.push(tag);
        self
    }

    /// Sets the legacy source filter.
    #[must_use]
    pub fn with_source(mut self, source: impl Into<String>) -> Self {
        self.source = Some(source.into());
        self
    }

    /// Whether the condition fires without waiting (no duration, or 0).
    pub fn is_immediate(&self) -> bool {
        matches!(self.duration, None | Some(0))
    }

    pub(crate) fn validate(&self) -> metrics_core::Result<()> {
        let invalid =
            |message: String| Err(metrics_core::Error::invalid_input(crate::BACKEND, message));
        match self.condition_type {
            ConditionType::Above | ConditionType::Below => match self.threshold {
                None => {
                    return invalid(format!(
                        "the {} condition on `{}` needs a threshold",
                        self.condition_type, self.metric_name
                    ));
                }
                Some(t) => crate::validate::value("threshold", t)?,
            },
            ConditionType::Absent if self.duration.is_none() => {
                return invalid(format!(
                    "the absent condition on `{}` needs a duration (60 to 3600 s)",
                    self.metric_name
                ));
            }
            _ => {}
        }
        if let Some(duration) = self.duration {
            // 0 is the library's "immediate" and is not sent as a real duration.
            if duration != 0 && !(60..=3600).contains(&duration) {
                return invalid(format!(
                    "condition duration {duration} s on `{}` is out of range; it must be 60 to 3600 s",
                    self.metric_name
                ));
            }
        }
        crate::validate::metric_name(&self.metric_name)
    }
}

/// An alert as the server describes it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    /// Its id.
    pub id: u64,
    /// Its name.
    pub name: String,
    /// Its description.
    #[serde(default)]
    pub description: Option<String>,
    /// Its conditions.
    #[serde(default, deserialize_with = "null_default")]
    pub conditions: Vec<Condition>,
    /// Its services, as objects.
    #[serde(default, deserialize_with = "null_default")]
    pub services: Vec<Service>,
    /// Attributes (`runbook_url`, …).
    #[serde(default, deserialize_with = "null_default")]
    pub attributes: Map<String, Value>,
    /// Whether it is active.
    #[serde(default)]
    pub active: Option<bool>,
    /// Created, seconds since the epoch.
    #[serde(default)]
    pub created_at: Option<i64>,
    /// Updated, seconds since the epoch.
    #[serde(default)]
    pub updated_at: Option<i64>,
    /// API version (2).
    #[serde(default)]
    pub version: Option<u32>,
    /// Seconds before it may fire again.
    #[serde(default)]
    pub rearm_seconds: Option<u32>,
    /// Re-arm per signal.
    #[serde(default)]
    pub rearm_per_signal: Option<bool>,
    /// Multidimensional (tag-based).
    #[serde(default)]
    pub md: Option<bool>,
}

/// An alert to create or the full new state of one to update (`PUT` replaces: conditions
/// left out are deleted, so this type always sends its conditions).
///
/// ```
/// use appoptics_client::model::{AlertSpec, Condition};
///
/// let spec = AlertSpec::new("production.web.latency")
///     .with_description("Web latency")
///     .with_condition(Condition::above("web.latency", 200.0).with_duration(60))
///     .with_service(849);
/// let body = serde_json::to_value(&spec).unwrap();
/// assert_eq!(body["services"][0], 849);
/// assert!(body.get("rearm_seconds").is_none());
/// ```
#[derive(Clone, Debug, PartialEq, Serialize)]
#[must_use]
pub struct AlertSpec {
    /// The name.
    pub name: String,
    /// The description.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The conditions (always sent).
    pub conditions: Vec<Condition>,
    /// Service ids.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub services: Vec<u64>,
    /// Attributes.
    #[serde(skip_serializing_if = "Map::is_empty")]
    pub attributes: Map<String, Value>,
    /// Active (the server's default is true).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub active: Option<bool>,
    /// Re-arm delay in seconds, a multiple of 60 (server default 600).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rearm_seconds: Option<u32>,
    /// Re-arm per signal.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rearm_per_signal: Option<bool>,
    /// Multidimensional (tag-based) alert.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub md: Option<bool>,
    /// API version; 2 unless set.
    pub version: u32,
}

impl AlertSpec {
    /// An alert with this name and nothing else.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            description: None,
            conditions: Vec::new(),
            services: Vec::new(),
            attributes: Map::new(),
            active: None,
            rearm_seconds: None,
            rearm_per_signal: None,
            md: None,
            version: 2,
        }
    }

    /// Sets the description.
    pub fn with_description(mut self, description: impl Into<String>) -> Self {
        self.description = Some(description.into());
        self
    }

    /// Adds a condition.
    pub fn with_condition(mut self, condition: Condition) -> Self {
        self.conditions.push(condition);
        self
    }

    /// Adds a service, by id or as a [`Service`] read from the server.
    pub fn with_service(mut self, service: impl Into<ServiceId>) -> Self {
        self.services.push(service.into().0);
        self
    }

    /// Sets an attribute (`runbook_url`).
    pub fn with_attribute(mut self, name: impl Into<String>, value: impl Into<Value>) -> Self {
        self.attributes.insert(name.into(), value.into());
        self
    }

    /// Sets whether it is active.
    pub fn with_active(mut self, active: bool) -> Self {
        self.active = Some(active);
        self
    }

    /// Sets the re-arm delay (a multiple of 60 s).
    pub fn with_rearm_seconds(mut self, seconds: u32) -> Self {
        self.rearm_seconds = Some(seconds);
        self
    }

    /// Marks it multidimensional (tag-based).
    pub fn with_md(mut self, md: bool) -> Self {
        self.md = Some(md);
        self
    }

    pub(crate) fn validate(&self) -> metrics_core::Result<()> {
        crate::validate::alert_name(&self.name)?;
        if let Some(rearm) = self.rearm_seconds
            && rearm % 60 != 0
        {
            return Err(metrics_core::Error::invalid_input(
                crate::BACKEND,
                format!("rearm_seconds must be a multiple of 60, not {rearm}"),
            ));
        }
        self.conditions.iter().try_for_each(Condition::validate)
    }
}

impl From<&Alert> for AlertSpec {
    /// The alert's current state, for changing a few fields and writing it back.
    fn from(alert: &Alert) -> Self {
        Self {
            name: alert.name.clone(),
            description: alert.description.clone(),
            conditions: alert
                .conditions
                .iter()
                .cloned()
                .map(|mut c| {
                    c.id = None;
                    c
                })
                .collect(),
            services: alert.services.iter().map(|s| s.id).collect(),
            attributes: alert.attributes.clone(),
            active: alert.active,
            rearm_seconds: alert.rearm_seconds,
            rearm_per_signal: alert.rearm_per_signal,
            md: alert.md,
            version: alert.version.unwrap_or(2),
        }
    }
}

/// The alert an alert status is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlertRef {
    /// Its id.
    pub id: u64,
}

/// `GET /v1/alerts/:id/status`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlertStatus {
    /// The alert.
    pub alert: AlertRef,
    /// `triggered` or `ok`.
    pub status: String,
}

impl AlertStatus {
    /// Whether the alert is firing.
    pub fn is_triggered(&self) -> bool {
        self.status == "triggered"
    }
}

/// A firing alert in `GET /v1/alerts/status`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FiringAlert {
    /// The alert id.
    pub id: u64,
    /// When it fired, seconds since the epoch.
    pub triggered_at: i64,
}

/// A recently cleared alert in `GET /v1/alerts/status`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClearedAlert {
    /// The alert id.
    pub id: u64,
    /// When it cleared, seconds since the epoch.
    pub cleared_at: i64,
}

/// `GET /v1/alerts/status`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlertsStatus {
    /// Firing alerts (required, like `cleared`: an answer without them is not a status).
    #[serde(deserialize_with = "null_default")]
    pub firing: Vec<FiringAlert>,
    /// Recently cleared alerts.
    #[serde(deserialize_with = "null_default")]
    pub cleared: Vec<ClearedAlert>,
}

// ---------------------------------------------------------------------------------------------
// Helpers shared with the queue.

/// Writes the queue's request bodies, `{"measurements":[…]}`, straight into a pre-sized
/// buffer. A queue's measurements share their name and tags (`Arc`s), so the JSON around
/// the value — `{"name":…,"value":` before it, `,"tags":{…}}` after it — is kept for the
/// last name and tag set seen and copied whole instead of being serialized again.
#[derive(Default)]
pub(crate) struct ChunkWriter {
    /// `{"name":<name>,"value":`.
    opening: Option<(Arc<str>, Vec<u8>)>,
    /// `,"tags":<tags>}`.
    closing: Option<(Arc<Tags>, Vec<u8>)>,
    /// `,"time":<time>`: a queue stamps whole seconds, so runs of measurements share it.
    time: Option<(i64, Vec<u8>)>,
    /// The size of the last body, to size the next one's buffer.
    last_len: usize,
}

impl ChunkWriter {
    /// The body of one request with `measurements` (as `MeasurementsBody` without top-level
    /// tags or time).
    pub(crate) fn body(&mut self, measurements: &[Measurement]) -> serde_json::Result<Vec<u8>> {
        let mut out = Vec::with_capacity(self.last_len.max(64) + 64);
        out.extend_from_slice(b"{\"measurements\":[");
        for (i, m) in measurements.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            self.measurement(&mut out, m)?;
        }
        out.extend_from_slice(b"]}");
        self.last_len = out.len();
        Ok(out)
    }

    fn measurement(&mut self, out: &mut Vec<u8>, m: &Measurement) -> serde_json::Result<()> {
        let StoredValue::Value(value) = m.value else {
            // Summaries are rare in a queue: serde writes them.
            return serde_json::to_writer(&mut *out, m);
        };
        if m.properties.is_some() || !value.is_finite() {
            return serde_json::to_writer(&mut *out, m);
        }
        match &self.opening {
            Some((name, json)) if Arc::ptr_eq(name, &m.name) => out.extend_from_slice(json),
            _ => {
                let mut json = b"{\"name\":".to_vec();
                serde_json::to_writer(&mut json, &*m.name)?;
                json.extend_from_slice(b",\"value\":");
                out.extend_from_slice(&json);
                self.opening = Some((Arc::clone(&m.name), json));
            }
        }
        write_finite(out, value);
        if let Some(time) = m.time {
            match &self.time {
                Some((cached, json)) if *cached == time => out.extend_from_slice(json),
                _ => {
                    let mut json = b",\"time\":".to_vec();
                    json.extend_from_slice(itoa::Buffer::new().format(time).as_bytes());
                    out.extend_from_slice(&json);
                    self.time = Some((time, json));
                }
            }
        }
        if let Some(period) = m.period {
            out.extend_from_slice(b",\"period\":");
            out.extend_from_slice(itoa::Buffer::new().format(period).as_bytes());
        }
        let Some(tags) = &m.tags else {
            out.push(b'}');
            return Ok(());
        };
        match &self.closing {
            Some((cached, json)) if Arc::ptr_eq(cached, tags) => out.extend_from_slice(json),
            _ => {
                let mut json = b",\"tags\":".to_vec();
                serde_json::to_writer(&mut json, &**tags)?;
                json.push(b'}');
                out.extend_from_slice(&json);
                self.closing = Some((Arc::clone(tags), json));
            }
        }
        Ok(())
    }
}

/// Writes a finite `value` as `serde_json` does. Whole numbers below 2^53 — counts, sizes,
/// most gauges — are their integer's digits and `.0`, which is what the shortest-digits
/// search finds for them too, at a fraction of its cost.
fn write_finite(out: &mut Vec<u8>, value: f64) {
    /// 2^53: every whole number below it is exact in an `f64` and in an `i64`.
    const EXACT: f64 = 9_007_199_254_740_992.0;
    #[allow(
        clippy::cast_possible_truncation,
        reason = "checked: a whole number below 2^53"
    )]
    let whole = value as i64;
    #[allow(clippy::cast_precision_loss, reason = "below 2^53: exact")]
    let is_whole = value.abs() < EXACT && whole as f64 == value;
    if is_whole && !(value == 0.0 && value.is_sign_negative()) {
        out.extend_from_slice(itoa::Buffer::new().format(whole).as_bytes());
        out.extend_from_slice(b".0");
    } else {
        out.extend_from_slice(zmij::Buffer::new().format_finite(value).as_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_queued_measurement_stays_small() {
        // A benchmark queues a million of them; a summary is boxed to keep values small.
        assert!(std::mem::size_of::<Measurement>() <= 96);
        let m = Measurement::summary("x", Summary::new(2, 3.0));
        assert_eq!(m.value(), MeasurementValue::Summary(Summary::new(2, 3.0)));
    }

    #[test]
    fn the_chunk_writer_writes_what_serde_writes() {
        let shared = Arc::new(tags([("host", "a\"b"), ("zone", "eu")]));
        let mut plain = Measurement::new("m\u{e9}.x", 1.5);
        plain.tags = Some(Arc::clone(&shared));
        let mut second = plain.clone();
        second.time = Some(1_700_000_000);
        second.period = Some(60);
        // The cached `time` must follow a change of second.
        let mut third = second.clone();
        third.time = Some(1_700_000_001);
        let mut summary = Measurement::summary("s", Summary::new(2, 3.0));
        summary.tags = Some(Arc::clone(&shared));
        let described = plain.clone().with_description("d");
        let chunk = [
            plain,
            second,
            third,
            summary,
            described,
            Measurement::new("n", -0.0),
        ];
        let expected = serde_json::to_value(MeasurementsBody {
            measurements: chunk.iter(),
            tags: None,
            time: None,
        })
        .unwrap();
        let mut writer = ChunkWriter::default();
        for _ in 0..2 {
            let body = writer.body(&chunk).unwrap();
            let written: serde_json::Value = serde_json::from_slice(&body).unwrap();
            assert_eq!(written, expected);
        }
    }

    #[test]
    fn values_are_written_as_serde_writes_them() {
        let mut values = vec![
            0.0,
            -0.0,
            1.0,
            -1.0,
            12.0,
            0.5,
            1e15,
            1e16,
            1e17,
            9_007_199_254_740_991.0,
            9_007_199_254_740_992.0,
            -9_007_199_254_740_991.0,
            1e-7,
            123.456,
            1e300,
            f64::MIN_POSITIVE,
            f64::MAX,
            f64::MIN,
            0.1 + 0.2,
        ];
        // Whole numbers across the fast path's range, and their neighbours, by a fixed walk.
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        for _ in 0..20_000 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            #[allow(clippy::cast_precision_loss, reason = "any double will do")]
            let whole = (state >> (state % 60)) as f64;
            values.extend([whole, -whole, whole + 0.5, f64::from_bits(state)]);
        }
        for value in values.into_iter().filter(|v| v.is_finite()) {
            let mut written = Vec::new();
            write_finite(&mut written, value);
            assert_eq!(
                String::from_utf8(written).unwrap(),
                serde_json::to_string(&value).unwrap(),
                "{value:e}"
            );
        }
    }

    #[test]
    fn resolved_tags_follow_the_library_rules() {
        let inherited = Arc::new(tags([("a", "1"), ("b", "2")]));
        let own = Measurement::new("m", 1.0).with_tags(tags([("b", "x")]));
        assert_eq!(
            own.clone().resolve_tags(&inherited).tags(),
            Some(&tags([("b", "x")]))
        );
        let merged = own.with_inherit_tags(true).resolve_tags(&inherited);
        assert_eq!(merged.tags(), Some(&tags([("a", "1"), ("b", "x")])));
        let none = Measurement::new("m", 1.0).resolve_tags(&inherited);
        assert!(Arc::ptr_eq(none.tags.as_ref().unwrap(), &inherited));
        let empty = Measurement::new("m", 1.0)
            .with_tags(Tags::new())
            .resolve_tags(&inherited);
        assert_eq!(empty.tags(), Some(&*inherited));
    }
}
