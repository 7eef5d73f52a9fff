//! Metric names, the query, and the wire types of `GET`/`POST <prefix>/metrics/`.

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use metrics_core::{Error, Result};
use serde::{Deserialize, Serialize};

use crate::BACKEND;
use crate::time::{Interval, ParseError, TimeSpec, predicted_points};

/// How the values published under a metric are aggregated, chosen by the metric name's last
/// segment. Graphite's `summarize` uses the same function for the query's buckets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Aggregator {
    /// `avg`: the mean of the values.
    Avg,
    /// `sum`: their sum.
    Sum,
    /// `max`: the largest.
    Max,
    /// `min`: the smallest.
    Min,
    /// `last`: the latest.
    Last,
}

impl Aggregator {
    /// Every aggregator.
    pub const ALL: [Self; 5] = [Self::Avg, Self::Sum, Self::Max, Self::Min, Self::Last];

    /// The name as it ends a metric name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Avg => "avg",
            Self::Sum => "sum",
            Self::Max => "max",
            Self::Min => "min",
            Self::Last => "last",
        }
    }
}

impl fmt::Display for Aggregator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Aggregator {
    type Err = ParseError;

    fn from_str(text: &str) -> Result<Self, ParseError> {
        Self::ALL
            .into_iter()
            .find(|agg| agg.as_str() == text)
            .ok_or_else(|| {
                ParseError::new(format!(
                    "Aggregator '{text}' is not a valid aggregator; use avg, sum, max, min or last"
                ))
            })
    }
}

/// A metric name: `.`-separated segments of `[A-Za-z0-9_-]`, at least two, the last an
/// [`Aggregator`].
///
/// Vumi Go names account metrics `stores.<store>.<metric>.<agg>` and conversation metrics
/// `conversations.<conversation id>.<metric>.<agg>`; other names (`vumimessage.tries.sum`)
/// are accepted too. The character set keeps the name from changing the graphite expression
/// the server builds from it (quotes, commas, parentheses, spaces and glob characters would).
///
/// ```
/// use vumi_client::{Aggregator, MetricKind, MetricName};
///
/// let name = MetricName::account("default", "questions_completed", Aggregator::Sum).unwrap();
/// assert_eq!(name.as_str(), "stores.default.questions_completed.sum");
/// assert_eq!(name.aggregator(), Aggregator::Sum);
/// assert_eq!(
///     name.kind(),
///     MetricKind::Account { store: "default", metric: "questions_completed" }
/// );
/// assert!("stores.a.b".parse::<MetricName>().is_err()); // no aggregator
/// assert!("metric1".parse::<MetricName>().is_err()); // the server has no default aggregator
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MetricName {
    name: String,
    aggregator: Aggregator,
}

/// What a [`MetricName`] refers to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MetricKind<'a> {
    /// `stores.<store>.<metric>.<agg>`: published by an account's sandbox applications.
    Account {
        /// The store (namespace), e.g. `default`.
        store: &'a str,
        /// The metric, e.g. `questions_completed` (may contain dots).
        metric: &'a str,
    },
    /// `conversations.<id>.<metric>.<agg>`: published by Vumi Go for one conversation.
    Conversation {
        /// The conversation's id (a UUID).
        conversation_id: &'a str,
        /// The metric, e.g. `messages_sent`.
        metric: &'a str,
    },
    /// Any other name.
    Other,
}

impl MetricName {
    /// Validates a full name.
    ///
    /// # Errors
    ///
    /// An empty segment, a character outside `[A-Za-z0-9_-]`, fewer than two segments, or
    /// a last segment that is not an aggregator (the server answers HTTP 400 for that).
    pub fn new(name: impl Into<String>) -> Result<Self, ParseError> {
        let name = name.into();
        let fail = |reason: String| {
            ParseError::new(format!(
                "`{name}` is not a valid Vumi metric name: {reason}"
            ))
        };
        let segments: Vec<&str> = name.split('.').collect();
        if segments.iter().any(|s| s.is_empty()) {
            return Err(fail("it has an empty segment".to_owned()));
        }
        if let Some(c) = name
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.')))
        {
            return Err(fail(format!(
                "`{c}` is not allowed (use letters, digits, `_` and `-` between dots)"
            )));
        }
        let last = segments.last().copied().unwrap_or_default();
        if segments.len() < 2 {
            return Err(fail(format!(
                "it needs an aggregator suffix (e.g. `{name}.avg`): the server has no default aggregator"
            )));
        }
        let aggregator = last
            .parse::<Aggregator>()
            .map_err(|e| fail(e.to_string()))?;
        Ok(Self { name, aggregator })
    }

    /// `stores.<store>.<metric>.<aggregator>`, an account metric.
    ///
    /// # Errors
    ///
    /// As [`MetricName::new`].
    pub fn account(store: &str, metric: &str, aggregator: Aggregator) -> Result<Self, ParseError> {
        Self::new(format!("stores.{store}.{metric}.{aggregator}"))
    }

    /// `conversations.<conversation_id>.<metric>.<aggregator>`, a conversation metric.
    ///
    /// # Errors
    ///
    /// As [`MetricName::new`].
    pub fn conversation(
        conversation_id: &str,
        metric: &str,
        aggregator: Aggregator,
    ) -> Result<Self, ParseError> {
        Self::new(format!(
            "conversations.{conversation_id}.{metric}.{aggregator}"
        ))
    }

    /// The full name.
    pub fn as_str(&self) -> &str {
        &self.name
    }

    /// The aggregator its last segment names.
    pub fn aggregator(&self) -> Aggregator {
        self.aggregator
    }

    /// Whether it is an account or conversation metric, with its parts.
    pub fn kind(&self) -> MetricKind<'_> {
        let mut parts = self.name.splitn(3, '.');
        let (Some(scope), Some(owner), Some(rest)) = (parts.next(), parts.next(), parts.next())
        else {
            return MetricKind::Other;
        };
        // `rest` is `<metric>.<agg>`; the aggregator suffix always exists.
        let Some((metric, _)) = rest.rsplit_once('.') else {
            return MetricKind::Other;
        };
        match scope {
            "stores" => MetricKind::Account {
                store: owner,
                metric,
            },
            "conversations" => MetricKind::Conversation {
                conversation_id: owner,
                metric,
            },
            _ => MetricKind::Other,
        }
    }
}

impl fmt::Display for MetricName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)
    }
}

impl AsRef<str> for MetricName {
    fn as_ref(&self) -> &str {
        &self.name
    }
}

impl FromStr for MetricName {
    type Err = ParseError;

    fn from_str(text: &str) -> Result<Self, ParseError> {
        Self::new(text)
    }
}

impl TryFrom<&str> for MetricName {
    type Error = ParseError;

    fn try_from(text: &str) -> Result<Self, ParseError> {
        Self::new(text)
    }
}

impl TryFrom<String> for MetricName {
    type Error = ParseError;

    fn try_from(text: String) -> Result<Self, ParseError> {
        Self::new(text)
    }
}

impl TryFrom<&MetricName> for MetricName {
    type Error = ParseError;

    fn try_from(name: &MetricName) -> Result<Self, ParseError> {
        Ok(name.clone())
    }
}

/// Lets a constructor's result be passed on as is:
/// `with_metric(MetricName::account("default", "hits", Aggregator::Sum))`.
impl TryFrom<Result<MetricName, ParseError>> for MetricName {
    type Error = ParseError;

    fn try_from(result: Result<MetricName, ParseError>) -> Result<Self, ParseError> {
        result
    }
}

impl From<MetricName> for String {
    fn from(name: MetricName) -> Self {
        name.name
    }
}

/// What the server does with the null values graphite returns for empty buckets.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Nulls {
    /// `zeroize` (the server's default): null becomes `0.0`.
    #[default]
    Zeroize,
    /// `omit`: points with null are dropped.
    Omit,
    /// `keep`: null is kept, as [`DataPoint::value`] `None`.
    Keep,
}

impl Nulls {
    /// The query value.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Zeroize => "zeroize",
            Self::Omit => "omit",
            Self::Keep => "keep",
        }
    }
}

impl fmt::Display for Nulls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A set parameter, or the error its input had.
fn field<T: Copy>(name: &str, value: Option<&Result<T, ParseError>>) -> Result<Option<T>> {
    match value {
        Some(Err(e)) => Err(Error::invalid_input(BACKEND, format!("{name}: {e}"))),
        Some(Ok(v)) => Ok(Some(*v)),
        None => Ok(None),
    }
}

/// Converts any `TryInto<T>` input, keeping its error as a [`ParseError`] for later.
fn convert<T, V>(value: V) -> Result<T, ParseError>
where
    V: TryInto<T>,
    V::Error: fmt::Display,
{
    value.try_into().map_err(|e| ParseError::new(e.to_string()))
}

/// A `GET <prefix>/metrics/` query.
///
/// The setters take typed values or text (`"-30d"`, `"1day"`, `"stores.a.b.last"`); text is
/// parsed at once, and anything invalid is reported by [`MetricsQuery::validate`] and by
/// [`VumiClient::query`](crate::VumiClient::query) as [`Error::InvalidInput`] before any
/// request is made. Unset parameters are not sent, so the server's defaults apply:
/// `from=-24h`, `until=-0s`, `interval=1hour`, `align_to_from=false`, `nulls=zeroize`.
///
/// ```
/// use vumi_client::{MetricsQuery, Nulls};
/// use vumi_client::time::{TimeSpec, TimeUnit};
///
/// let query = MetricsQuery::new()
///     .with_metric("stores.a.a.last")
///     .with_metric("stores.b.c.avg")
///     .with_from(TimeSpec::ago(30, TimeUnit::Days))
///     .with_until("-1d")
///     .with_interval("1day")
///     .with_align_to_from(true)
///     .with_nulls(Nulls::Keep);
/// assert!(query.validate(Some(10_000)).is_ok());
/// assert_eq!(
///     query.to_params(Some(10_000)).unwrap(),
///     [
///         ("m", "stores.a.a.last"), ("m", "stores.b.c.avg"), ("from", "-30d"),
///         ("until", "-1d"), ("interval", "1day"), ("align_to_from", "true"), ("nulls", "keep"),
///     ].map(|(k, v)| (k.to_owned(), v.to_owned()))
/// );
///
/// let bad = MetricsQuery::new().with_metric("stores.a.b.last").with_interval("0s");
/// assert!(bad.validate(Some(10_000)).is_err());
/// ```
#[derive(Clone, Debug, Default, PartialEq)]
pub struct MetricsQuery {
    metrics: Vec<Result<MetricName, ParseError>>,
    from: Option<Result<TimeSpec, ParseError>>,
    until: Option<Result<TimeSpec, ParseError>>,
    interval: Option<Result<Interval, ParseError>>,
    align_to_from: Option<bool>,
    nulls: Option<Nulls>,
}

impl MetricsQuery {
    /// An empty query (the server answers `{}` for no metrics).
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a metric (`m`). A repeated metric is sent once: the server's answer has one key
    /// per name anyway.
    #[must_use]
    pub fn with_metric<N>(mut self, metric: N) -> Self
    where
        N: TryInto<MetricName>,
        N::Error: fmt::Display,
    {
        self.metrics.push(convert(metric));
        self
    }

    /// Adds several metrics.
    #[must_use]
    pub fn with_metrics<I, N>(mut self, metrics: I) -> Self
    where
        I: IntoIterator<Item = N>,
        N: TryInto<MetricName>,
        N::Error: fmt::Display,
    {
        self.metrics.extend(metrics.into_iter().map(convert));
        self
    }

    /// Sets `from` (server default `-24h`). It may be later than `until`.
    #[must_use]
    pub fn with_from<T>(mut self, from: T) -> Self
    where
        T: TryInto<TimeSpec>,
        T::Error: fmt::Display,
    {
        self.from = Some(convert(from));
        self
    }

    /// Sets `until` (server default `-0s`, i.e. now).
    #[must_use]
    pub fn with_until<T>(mut self, until: T) -> Self
    where
        T: TryInto<TimeSpec>,
        T::Error: fmt::Display,
    {
        self.until = Some(convert(until));
        self
    }

    /// Sets the summarize bucket size (server default `1hour`).
    #[must_use]
    pub fn with_interval<T>(mut self, interval: T) -> Self
    where
        T: TryInto<Interval>,
        T::Error: fmt::Display,
    {
        self.interval = Some(convert(interval));
        self
    }

    /// Aligns buckets to `from` instead of to multiples of the interval (server default
    /// `false`).
    #[must_use]
    pub fn with_align_to_from(mut self, align: bool) -> Self {
        self.align_to_from = Some(align);
        self
    }

    /// Sets what the server does with nulls (server default [`Nulls::Zeroize`]).
    #[must_use]
    pub fn with_nulls(mut self, nulls: Nulls) -> Self {
        self.nulls = Some(nulls);
        self
    }

    /// The valid metrics, without repeats, in the order added.
    pub fn metrics(&self) -> Vec<&MetricName> {
        let mut seen = Vec::<&MetricName>::new();
        for metric in self.metrics.iter().flatten() {
            if !seen.contains(&metric) {
                seen.push(metric);
            }
        }
        seen
    }

    /// `from`, if set and valid.
    pub fn from(&self) -> Option<&TimeSpec> {
        self.from.as_ref().and_then(|r| r.as_ref().ok())
    }

    /// `until`, if set and valid.
    pub fn until(&self) -> Option<&TimeSpec> {
        self.until.as_ref().and_then(|r| r.as_ref().ok())
    }

    /// The interval, if set and valid.
    pub fn interval(&self) -> Option<Interval> {
        self.interval
            .as_ref()
            .and_then(|r| r.as_ref().ok())
            .copied()
    }

    /// The null handling, if set.
    pub fn nulls(&self) -> Option<Nulls> {
        self.nulls
    }

    /// `align_to_from`, if set.
    pub fn align_to_from(&self) -> Option<bool> {
        self.align_to_from
    }

    /// Checks everything [`VumiClient::query`](crate::VumiClient::query) would refuse, in
    /// the server's order: the times and interval (HTTP 500 on the server), the size limit
    /// `max_points` (HTTP 400; `None` skips it), then the metric names (HTTP 400). Also
    /// rejects a `from` equal to `until` when both are exact instants, which graphite
    /// refuses as an empty range (HTTP 500).
    ///
    /// The size is checked as `query` sends the query: split over as many requests as the
    /// limit and the URL length need (see [`VumiClient::query`](crate::VumiClient::query)),
    /// so only a range too long for one metric on its own fails. [`to_params`](Self::to_params)
    /// checks the query as one request.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidInput`] saying what is wrong.
    pub fn validate(&self, max_points: Option<u64>) -> Result<()> {
        self.requests(max_points).map(|_| ())
    }

    /// The query parameters of the query sent as one request, in order, after
    /// [`MetricsQuery::validate`]'s checks, with the size limit applied to all the metrics
    /// at once, as the server counts them.
    ///
    /// # Errors
    ///
    /// As [`MetricsQuery::validate`], and [`Error::InvalidInput`] when all the metrics
    /// together ask for more points than `max_points`.
    pub fn to_params(&self, max_points: Option<u64>) -> Result<Vec<(String, String)>> {
        let mut requests = self.split(max_points, Split::Never)?;
        Ok(requests.pop().unwrap_or_default())
    }

    /// The parameters of each request [`VumiClient::query`](crate::VumiClient::query) sends:
    /// the metrics in order, [`metrics_per_request`] at a time, each request with the other
    /// parameters.
    pub(crate) fn requests(&self, max_points: Option<u64>) -> Result<Vec<Vec<(String, String)>>> {
        self.split(max_points, Split::AsNeeded)
    }

    fn split(&self, max_points: Option<u64>, split: Split) -> Result<Vec<Vec<(String, String)>>> {
        let from = field("from", self.from.as_ref())?;
        let until = field("until", self.until.as_ref())?;
        let interval = field("interval", self.interval.as_ref())?;
        let effective_from = from.unwrap_or(TimeSpec::ago(24, crate::time::TimeUnit::Hours));
        let effective_until = until.unwrap_or(TimeSpec::ago(0, crate::time::TimeUnit::Seconds));
        let effective_interval = interval.unwrap_or_default();

        let now = Utc::now();
        for (name, time) in [("from", &effective_from), ("until", &effective_until)] {
            if time.resolve(now).is_none() {
                return Err(Error::invalid_input(
                    BACKEND,
                    format!(
                        "{name}: `{time}` is outside the years 1 to 9999; the server answers HTTP 500 for it"
                    ),
                ));
            }
        }
        if effective_from.is_exact_instant()
            && effective_until.is_exact_instant()
            && effective_from.resolve(now) == effective_until.resolve(now)
        {
            return Err(Error::invalid_input(
                BACKEND,
                format!(
                    "from `{effective_from}` and until `{effective_until}` are the same instant; graphite rejects an empty time range (HTTP 500)"
                ),
            ));
        }

        // What is sent: each valid name once, in order. The server checks the size before
        // the names, so a bad name is reported after the size check, as the server would.
        let mut metrics: Vec<&MetricName> = Vec::with_capacity(self.metrics.len());
        let mut bad_metric = None;
        for metric in &self.metrics {
            match metric {
                Ok(metric) if !metrics.contains(&metric) => metrics.push(metric),
                Ok(_) => {}
                Err(e) => {
                    bad_metric.get_or_insert_with(|| e.clone());
                }
            }
        }
        let per_metric = predicted_points(
            &effective_from,
            &effective_until,
            effective_interval,
            1,
            now,
        )
        .unwrap_or(u128::MAX);
        let per_request = match split {
            Split::Never => metrics.len().max(1),
            Split::AsNeeded => metrics_per_request(per_metric, max_points),
        };
        if let Some(max) = max_points {
            // The server counts a request without metrics as one metric.
            let largest = metrics.len().clamp(1, per_request);
            let points = per_metric.saturating_mul(u128::try_from(largest).unwrap_or(u128::MAX));
            if points > u128::from(max) {
                let hint = match split {
                    Split::Never => {
                        "narrow the time range, widen the interval or query fewer metrics at once"
                    }
                    Split::AsNeeded => {
                        "narrow the time range or widen the interval (one metric alone asks for that many)"
                    }
                };
                return Err(Error::invalid_input(
                    BACKEND,
                    format!("{points} data points requested, maximum allowed is {max}; {hint}"),
                ));
            }
        }
        if let Some(error) = bad_metric {
            return Err(error.into());
        }

        let mut shared: Vec<(String, String)> = Vec::new();
        let mut push = |name: &str, value: Option<String>| {
            if let Some(value) = value {
                shared.push((name.to_owned(), value));
            }
        };
        push("from", from.map(|t| t.to_string()));
        push("until", until.map(|t| t.to_string()));
        push("interval", interval.map(|i| i.to_string()));
        push("align_to_from", self.align_to_from.map(|a| a.to_string()));
        push("nulls", self.nulls.map(|n| n.as_str().to_owned()));
        let request = |chunk: &[&MetricName]| -> Vec<(String, String)> {
            chunk
                .iter()
                .map(|m| ("m".to_owned(), m.as_str().to_owned()))
                .chain(shared.iter().cloned())
                .collect()
        };
        if metrics.is_empty() {
            return Ok(vec![request(&[])]);
        }
        Ok(metrics.chunks(per_request).map(request).collect())
    }
}

/// Whether [`MetricsQuery::split`] may split the metrics over several requests.
#[derive(Clone, Copy)]
enum Split {
    /// One request, whatever its size (what [`MetricsQuery::to_params`] describes).
    Never,
    /// As many requests as [`metrics_per_request`] needs.
    AsNeeded,
}

/// The most metrics one request carries, whatever the size limit allows. The server pastes
/// each metric into the graphite URL twice; at about 140 metrics graphite answers an error
/// (the server's HTTP 500), and long URLs fail at proxies well before that.
pub(crate) const MAX_METRICS_PER_REQUEST: usize = 50;

/// How many metrics go into one request when each asks for `points_per_metric` points: as
/// many as fit the size limit (the server counts points × metrics), at least one, at most
/// [`MAX_METRICS_PER_REQUEST`]. The one splitting rule of [`VumiClient::query`] (and so of
/// [`MetricsSource::collect`](metrics_core::MetricsSource::collect)).
///
/// [`VumiClient::query`]: crate::VumiClient::query
pub(crate) fn metrics_per_request(points_per_metric: u128, max_points: Option<u64>) -> usize {
    let fit = match max_points {
        None => u128::MAX,
        Some(max) => u128::from(max)
            .checked_div(points_per_metric)
            .unwrap_or(u128::MAX),
    };
    usize::try_from(fit)
        .unwrap_or(usize::MAX)
        .clamp(1, MAX_METRICS_PER_REQUEST)
}

/// One summarized bucket.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct DataPoint {
    /// The bucket's start (the server sends milliseconds since the epoch as `x`).
    #[serde(rename = "x", with = "chrono::serde::ts_milliseconds")]
    pub time: DateTime<Utc>,
    /// The value (`y`); `None` only with [`Nulls::Keep`] for an empty bucket. The field
    /// itself is required: a point without `y` is a decode error, not a `None`.
    #[serde(rename = "y", deserialize_with = "required_nullable")]
    pub value: Option<f64>,
}

/// `Option<f64>` without serde's reading of a missing field as `None` (which a
/// `deserialize_with` turns off): `"y": null` is an empty bucket, no `y` at all is a body of
/// another shape.
fn required_nullable<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> std::result::Result<Option<f64>, D::Error> {
    Option::<f64>::deserialize(deserializer)
}

/// The wire form of a `GET` answer: metric name → points.
pub(crate) type WireMetrics = HashMap<String, Vec<DataPoint>>;

/// One metric's points, oldest first.
#[derive(Clone, Debug, PartialEq)]
pub struct MetricSeries {
    /// The metric name as sent (the server's key).
    pub name: String,
    /// The points.
    pub points: Vec<DataPoint>,
}

/// The answer to a [`MetricsQuery`]: one series per metric graphite has data for, in the
/// order the metrics were asked for. A metric graphite knows nothing about has no series.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct MetricsData {
    series: Vec<MetricSeries>,
}

impl MetricsData {
    /// Decodes the body of a `GET` answer (see [`crate::decode`]), in query order.
    #[cfg(test)]
    pub(crate) fn from_json(body: &[u8], order: &[&MetricName]) -> Result<Self> {
        Ok(Self::in_order(crate::decode::decode(body)?, order))
    }

    /// The series in query order; keys nobody asked for (which should not happen) after
    /// them, by name, rather than hidden.
    pub(crate) fn in_order(decoded: Vec<(String, Vec<DataPoint>)>, order: &[&MetricName]) -> Self {
        let index: HashMap<&str, usize> = order
            .iter()
            .enumerate()
            .rev()
            .map(|(at, name)| (name.as_str(), at))
            .collect();
        let mut asked: Vec<Option<MetricSeries>> = order.iter().map(|_| None).collect();
        let mut unasked = Vec::new();
        for (name, points) in decoded {
            let series = MetricSeries { name, points };
            match index.get(series.name.as_str()) {
                Some(&at) if asked[at].is_none() => asked[at] = Some(series),
                _ => unasked.push(series),
            }
        }
        unasked.sort_by(|a, b| a.name.cmp(&b.name));
        Self {
            series: asked.into_iter().flatten().chain(unasked).collect(),
        }
    }

    /// The series for `metric`, if the answer has it.
    pub fn get(&self, metric: impl AsRef<str>) -> Option<&MetricSeries> {
        let metric = metric.as_ref();
        self.series.iter().find(|s| s.name == metric)
    }

    /// The series, in query order.
    pub fn series(&self) -> &[MetricSeries] {
        &self.series
    }

    /// How many series there are.
    pub fn len(&self) -> usize {
        self.series.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.series.is_empty()
    }

    /// Iterates over the series.
    pub fn iter(&self) -> std::slice::Iter<'_, MetricSeries> {
        self.series.iter()
    }
}

impl IntoIterator for MetricsData {
    type Item = MetricSeries;
    type IntoIter = std::vec::IntoIter<MetricSeries>;

    fn into_iter(self) -> Self::IntoIter {
        self.series.into_iter()
    }
}

impl<'a> IntoIterator for &'a MetricsData {
    type Item = &'a MetricSeries;
    type IntoIter = std::slice::Iter<'a, MetricSeries>;

    fn into_iter(self) -> Self::IntoIter {
        self.series.iter()
    }
}

/// The server's confirmation of one fired metric: validated and queued for publishing (not
/// yet stored; Vumi's aggregators write it to graphite later).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FiredMetric {
    /// The name as sent.
    pub name: String,
    /// The value, as the server read it.
    pub value: f64,
    /// The aggregator the name selects.
    pub aggregator: Aggregator,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(x: i64, y: Option<f64>) -> DataPoint {
        DataPoint {
            time: DateTime::from_timestamp_millis(x).unwrap(),
            value: y,
        }
    }

    #[test]
    fn malformed_bodies_are_decode_errors_naming_the_path() {
        let order = [&"stores.a.b.last".parse::<MetricName>().unwrap()];
        for (body, path) in [
            (
                &br#"{"stores.a.b.last":[{"x":1,"y":2},{"x":1,"y":"z"}]}"#[..],
                "stores.a.b.last[1].y",
            ),
            (
                br#"{"stores.a.b.last":[{"x":1.5,"y":2}]}"#,
                "stores.a.b.last[0].x",
            ),
            (br#"{"stores.a.b.last":[{"y":2}]}"#, "stores.a.b.last[0]"),
            // Not a point with a null value: a point of another shape.
            (br#"{"stores.a.b.last":[{"x":1}]}"#, "stores.a.b.last[0]"),
            (
                br#"{"stores.a.b.last":[{"x": 1, "z": null}]}"#,
                "stores.a.b.last[0]",
            ),
            (br#"{"stores.a.b.last":null}"#, "stores.a.b.last"),
            (b"<html>", ""),
        ] {
            let expected = metrics_core::http::decode_json::<WireMetrics>(BACKEND, body)
                .unwrap_err()
                .to_string();
            let error = MetricsData::from_json(body, &order).unwrap_err();
            assert!(
                matches!(&error, Error::Decode { path: p, .. } if p == path),
                "{error:?}"
            );
            assert_eq!(error.to_string(), expected);
        }
    }

    #[test]
    fn series_come_in_query_order_then_the_rest_by_name() {
        let body = br#"{"z.sum":[],"b.avg":[{"x":1,"y":null}],"y.sum":[],"a.last":[]}"#;
        let b: MetricName = "b.avg".parse().unwrap();
        let a: MetricName = "a.last".parse().unwrap();
        let missing: MetricName = "c.max".parse().unwrap();
        let data = MetricsData::from_json(body, &[&b, &missing, &a]).unwrap();
        let names: Vec<&str> = data.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["b.avg", "a.last", "y.sum", "z.sum"]);
        assert_eq!(data.get("b.avg").unwrap().points, [point(1, None)]);
        // The serde path orders the same way.
        let serde_path =
            br#"{"z.sum":[],"b.avg":[{"y":null,"x":1,"extra":0}],"y.sum":[],"a.last":[]}"#;
        assert_eq!(
            MetricsData::from_json(serde_path, &[&b, &missing, &a]).unwrap(),
            data
        );
    }
}
