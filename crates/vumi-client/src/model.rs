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

    /// Checks everything the server would answer with an error, in the server's order: the
    /// times and interval (HTTP 500 on the server), the size limit `max_points` (HTTP 400;
    /// `None` skips it), then the metric names (HTTP 400). Also rejects a `from` equal to
    /// `until` when both are exact instants, which graphite refuses as an empty range
    /// (HTTP 500).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidInput`] saying what is wrong.
    pub fn validate(&self, max_points: Option<u64>) -> Result<()> {
        self.to_params(max_points).map(|_| ())
    }

    /// The query parameters, in order, after [`MetricsQuery::validate`]'s checks.
    ///
    /// # Errors
    ///
    /// As [`MetricsQuery::validate`].
    pub fn to_params(&self, max_points: Option<u64>) -> Result<Vec<(String, String)>> {
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
        let count = metrics.len();
        if let Some(max) = max_points {
            let points = predicted_points(
                &effective_from,
                &effective_until,
                effective_interval,
                count,
                now,
            )
            .unwrap_or(u128::MAX);
            if points > u128::from(max) {
                return Err(Error::invalid_input(
                    BACKEND,
                    format!(
                        "{points} data points requested, maximum allowed is {max}; narrow the time range, widen the interval or query fewer metrics at once"
                    ),
                ));
            }
        }
        if let Some(error) = bad_metric {
            return Err(error.into());
        }

        let mut params: Vec<(String, String)> = metrics
            .iter()
            .map(|m| ("m".to_owned(), m.as_str().to_owned()))
            .collect();
        let mut push = |name: &str, value: Option<String>| {
            if let Some(value) = value {
                params.push((name.to_owned(), value));
            }
        };
        push("from", from.map(|t| t.to_string()));
        push("until", until.map(|t| t.to_string()));
        push("interval", interval.map(|i| i.to_string()));
        push("align_to_from", self.align_to_from.map(|a| a.to_string()));
        push("nulls", self.nulls.map(|n| n.as_str().to_owned()));
        Ok(params)
    }
}

/// One summarized bucket.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct DataPoint {
    /// The bucket's start (the server sends milliseconds since the epoch as `x`).
    #[serde(rename = "x", with = "chrono::serde::ts_milliseconds")]
    pub time: DateTime<Utc>,
    /// The value (`y`); `None` only with [`Nulls::Keep`] for an empty bucket.
    #[serde(rename = "y")]
    pub value: Option<f64>,
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
    /// Decodes the body of a `GET` answer: the fast scanner for the shape the server sends,
    /// the serde path for anything else (and for its errors).
    pub(crate) fn from_json(body: &[u8], order: &[&MetricName]) -> Result<Self> {
        let series = match scan_metrics(body) {
            Some(series) => series,
            None => metrics_core::http::decode_json::<WireMetrics>(BACKEND, body)?
                .into_iter()
                .collect(),
        };
        Ok(Self::in_order(series, order))
    }

    /// The series in query order; keys nobody asked for (which should not happen) after
    /// them, by name, rather than hidden.
    fn in_order(mut rest: Vec<(String, Vec<DataPoint>)>, order: &[&MetricName]) -> Self {
        let mut series = Vec::with_capacity(rest.len());
        for name in order {
            if let Some(index) = rest.iter().position(|(key, _)| key == name.as_str()) {
                let (name, points) = rest.swap_remove(index);
                series.push(MetricSeries { name, points });
            }
        }
        rest.sort_by(|a, b| a.0.cmp(&b.0));
        series.extend(
            rest.into_iter()
                .map(|(name, points)| MetricSeries { name, points }),
        );
        Self { series }
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

/// Powers of ten a `f64` holds exactly: `10^0` to `10^22`.
const EXACT_POWERS_OF_TEN: [f64; 23] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
    1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
];

/// The fast path of a `GET` answer's decode: the shape the server sends,
/// `{"<name>": [{"x": <ms>, "y": <number or null>}, …], …}` with any JSON whitespace, in one
/// pass, each series' points allocated once. `None` for anything else — another field in a
/// point, a missing or repeated field, `x` negative or not an integer, a repeated name, a
/// syntax error — and serde decides, with its error messages; so this accepts nothing the
/// serde path would not, and gives the same result for what it accepts.
///
/// Names with escapes are read by `serde_json` itself; numbers that are not exact in one
/// floating-point operation (more than 15 digits, or an exponent beyond ±22) too.
fn scan_metrics(body: &[u8]) -> Option<Vec<(String, Vec<DataPoint>)>> {
    let mut scan = Scanner {
        body,
        at: 0,
        day: None,
    };
    scan.expect(b'{')?;
    // One `{` per point (a name holding one only over-reserves): a lone series, the common
    // case, is allocated once at its final size.
    let mut points_left = count_byte(&body[scan.at..], b'{');
    let mut series: Vec<(String, Vec<DataPoint>)> = Vec::new();
    if scan.peek() == Some(b'}') {
        scan.at += 1;
    } else {
        loop {
            scan.skip_ws();
            let name = scan.string()?;
            scan.expect(b':')?;
            scan.expect(b'[')?;
            let mut points = Vec::with_capacity(points_left);
            if scan.peek() == Some(b']') {
                scan.at += 1;
            } else {
                loop {
                    points.push(scan.point()?);
                    match scan.next()? {
                        b',' => {}
                        b']' => break,
                        _ => return None,
                    }
                }
            }
            points_left = points_left.saturating_sub(points.len());
            points.shrink_to_fit();
            series.push((name, points));
            match scan.next()? {
                b',' => {}
                b'}' => break,
                _ => return None,
            }
        }
    }
    scan.skip_ws();
    if scan.at != body.len() {
        return None;
    }
    // A repeated name: serde keeps the last; leave that to it.
    if series.len() > 1 {
        let mut names: Vec<&str> = series.iter().map(|(name, _)| name.as_str()).collect();
        names.sort_unstable();
        if names.windows(2).any(|pair| pair[0] == pair[1]) {
            return None;
        }
    }
    Some(series)
}

/// How often `needle` occurs in `bytes`; counted in `u8`s, which vectorizes well.
fn count_byte(bytes: &[u8], needle: u8) -> usize {
    bytes
        .chunks(255)
        .map(|chunk| {
            usize::from(
                chunk
                    .iter()
                    .fold(0_u8, |count, &byte| count + u8::from(byte == needle)),
            )
        })
        .sum()
}

/// The value of eight ASCII digits, or `None` if one of the bytes is not a digit.
fn eight_digits(bytes: &[u8]) -> Option<u64> {
    let word = u64::from_le_bytes(bytes.get(..8)?.try_into().ok()?);
    let digits = word.wrapping_sub(0x3030_3030_3030_3030);
    // Each byte in `0..=9`: no borrow above (the high nibbles were 3) and no carry past 9.
    if (word & 0xf0f0_f0f0_f0f0_f0f0) != 0x3030_3030_3030_3030
        || (digits.wrapping_add(0x0606_0606_0606_0606) & 0xf0f0_f0f0_f0f0_f0f0) != 0
    {
        return None;
    }
    // Pairs, then fours, then all eight; the first digit is the lowest byte.
    let pairs = (digits.wrapping_mul(10) + (digits >> 8)) & 0x00ff_00ff_00ff_00ff;
    let fours = (pairs.wrapping_mul(100) + (pairs >> 16)) & 0x0000_ffff_0000_ffff;
    Some((fours.wrapping_mul(10_000) + (fours >> 32)) & 0xffff_ffff)
}

/// The state of [`scan_metrics`].
struct Scanner<'a> {
    body: &'a [u8],
    at: usize,
    /// The day of the last timestamp: consecutive points mostly share it.
    day: Option<(u64, chrono::NaiveDate)>,
}

impl Scanner<'_> {
    fn skip_ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.body.get(self.at) {
            self.at += 1;
        }
    }

    /// The next byte after whitespace, not consumed.
    fn peek(&mut self) -> Option<u8> {
        self.skip_ws();
        self.body.get(self.at).copied()
    }

    /// The next byte after whitespace, consumed.
    fn next(&mut self) -> Option<u8> {
        let byte = self.peek()?;
        self.at += 1;
        Some(byte)
    }

    fn expect(&mut self, byte: u8) -> Option<()> {
        (self.next()? == byte).then_some(())
    }

    /// A string at the cursor (no whitespace before it).
    fn string(&mut self) -> Option<String> {
        if self.body.get(self.at) != Some(&b'"') {
            return None;
        }
        let start = self.at + 1;
        let len = self.body[start..]
            .iter()
            .position(|&b| b == b'"' || b == b'\\' || b < 0x20)?;
        let end = start + len;
        if self.body[end] == b'"' {
            self.at = end + 1;
            return std::str::from_utf8(&self.body[start..end])
                .ok()
                .map(str::to_owned);
        }
        if self.body[end] != b'\\' {
            return None; // a control character: serde rejects it
        }
        // An escape: find the closing quote, and let serde_json read the string.
        let mut at = end;
        loop {
            match *self.body.get(at)? {
                b'\\' => at += 2,
                b'"' => break,
                _ => at += 1,
            }
        }
        let text = serde_json::from_slice(self.body.get(self.at..=at)?).ok()?;
        self.at = at + 1;
        Some(text)
    }

    /// `{"x": …, "y": …}`, the fields in either order, after whitespace.
    fn point(&mut self) -> Option<DataPoint> {
        self.skip_ws();
        let start = self.at;
        if let Some(point) = self.point_as_servers_write_it() {
            return Some(point);
        }
        self.at = start;
        self.expect(b'{')?;
        let mut time = None;
        let mut value = None;
        loop {
            self.skip_ws();
            let key = match self.body.get(self.at..self.at + 3)? {
                b"\"x\"" => b'x',
                b"\"y\"" => b'y',
                _ => return None,
            };
            self.at += 3;
            self.expect(b':')?;
            self.skip_ws();
            match key {
                b'x' if time.is_none() => time = Some(self.timestamp()?),
                b'y' if value.is_none() => value = Some(self.value()?),
                _ => return None, // repeated: serde rejects it
            }
            match self.next()? {
                b',' => {}
                b'}' => break,
                _ => return None,
            }
        }
        Some(DataPoint {
            time: time?,
            value: value?,
        })
    }

    /// `{"x": 1, "y": 2.0}` (Python's `json.dumps`) or `{"x":1,"y":2.0}` (`serde_json`): the
    /// punctuation matched at once. `None` for any other layout, which [`Scanner::point`]
    /// then reads from the start.
    #[inline]
    fn point_as_servers_write_it(&mut self) -> Option<DataPoint> {
        // Constant patterns, each compared in a load or two.
        if !self.body[self.at..].starts_with(b"{\"x\":") {
            return None;
        }
        let spaced = self.body.get(self.at + 5) == Some(&b' ');
        self.at += 5 + usize::from(spaced);
        let time = self.timestamp()?;
        let rest = &self.body[self.at..];
        self.at += if spaced && rest.starts_with(b", \"y\": ") {
            7
        } else if !spaced && rest.starts_with(b",\"y\":") {
            5
        } else {
            return None;
        };
        let value = self.value()?;
        if self.body.get(self.at) != Some(&b'}') {
            return None;
        }
        self.at += 1;
        Some(DataPoint { time, value })
    }

    /// A non-negative integer of milliseconds, as `chrono::serde::ts_milliseconds` reads it.
    #[inline(always)]
    fn timestamp(&mut self) -> Option<DateTime<Utc>> {
        let start = self.at;
        let mut millis: u64 = 0;
        // Today's timestamps have 13 digits: eight at once, then one by one.
        if let Some(eight) = eight_digits(&self.body[self.at..]) {
            millis = eight;
            self.at += 8;
        }
        while let Some(&byte) = self.body.get(self.at) {
            let digit = byte.wrapping_sub(b'0');
            if digit > 9 {
                break;
            }
            millis = millis.wrapping_mul(10).wrapping_add(u64::from(digit));
            self.at += 1;
        }
        let digits = self.at - start;
        // Up to 18 digits cannot overflow; a leading zero, a fraction or an exponent is
        // serde's to refuse (`-` is not a digit: negative times are left to it too).
        if digits == 0
            || digits > 18
            || (digits > 1 && self.body[start] == b'0')
            || matches!(self.body.get(self.at), Some(b'.' | b'e' | b'E'))
        {
            return None;
        }
        let seconds = millis / 1000;
        let nanos = u32::try_from(millis % 1000).ok()? * 1_000_000;
        let (day, second) = (seconds / 86_400, seconds % 86_400);
        let date = match self.day {
            Some((cached, date)) if cached == day => date,
            _ => {
                // 719 163: the days from 0001-01-01 to 1970-01-01.
                let date = chrono::NaiveDate::from_num_days_from_ce_opt(
                    i32::try_from(day.checked_add(719_163)?).ok()?,
                )?;
                self.day = Some((day, date));
                date
            }
        };
        let time = chrono::NaiveTime::from_num_seconds_from_midnight_opt(
            u32::try_from(second).ok()?,
            nanos,
        )?;
        Some(date.and_time(time).and_utc())
    }

    /// `null` or a number.
    #[inline(always)]
    fn value(&mut self) -> Option<Option<f64>> {
        if self.body[self.at..].starts_with(b"null") {
            self.at += 4;
            return Some(None);
        }
        self.number().map(Some)
    }

    /// A JSON number, as `serde_json` reads it into a `f64`.
    #[inline]
    fn number(&mut self) -> Option<f64> {
        let body = self.body;
        let start = self.at;
        let mut at = start;
        let negative = body.get(at) == Some(&b'-');
        if negative {
            at += 1;
        }
        let mut mantissa: u64 = 0;
        let digits = |at: &mut usize, mantissa: &mut u64| {
            let first = *at;
            while let Some(&byte) = body.get(*at) {
                let digit = byte.wrapping_sub(b'0');
                if digit > 9 {
                    break;
                }
                *mantissa = mantissa.wrapping_mul(10).wrapping_add(u64::from(digit));
                *at += 1;
            }
            *at - first
        };
        let integer_start = at;
        let integer_digits = digits(&mut at, &mut mantissa);
        if integer_digits == 0 || (integer_digits > 1 && body[integer_start] == b'0') {
            return None;
        }
        let mut fraction_digits = 0;
        if body.get(at) == Some(&b'.') {
            at += 1;
            fraction_digits = digits(&mut at, &mut mantissa);
            if fraction_digits == 0 {
                return None;
            }
        }
        let mut exponent = -i64::try_from(fraction_digits).ok()?;
        if let Some(b'e' | b'E') = body.get(at) {
            at += 1;
            let negative_exponent = body.get(at) == Some(&b'-');
            if matches!(body.get(at), Some(b'-' | b'+')) {
                at += 1;
            }
            let exponent_start = at;
            let mut written: i64 = 0;
            while let Some(&byte) = body.get(at) {
                let digit = byte.wrapping_sub(b'0');
                if digit > 9 {
                    break;
                }
                written = written.saturating_mul(10).saturating_add(i64::from(digit));
                at += 1;
            }
            if at == exponent_start {
                return None;
            }
            exponent = if negative_exponent {
                exponent.saturating_sub(written)
            } else {
                exponent.saturating_add(written)
            };
        }
        self.at = at;
        // `4.0` is `40e-1`: without the trailing zeros, `4`, and no division is needed. The
        // value is the same number, so the rounding below is the same.
        while exponent < 0 && mantissa.is_multiple_of(10) {
            mantissa /= 10;
            exponent += 1;
        }
        if integer_digits + fraction_digits <= 15
            && let Some(&power) =
                EXACT_POWERS_OF_TEN.get(usize::try_from(exponent.unsigned_abs()).ok()?)
        {
            // Below 2^53 and a power of ten that is exact: one rounding, the correct one,
            // which is also serde_json's (same operations, with or without its
            // float_roundtrip feature).
            #[allow(clippy::cast_precision_loss, reason = "at most 15 digits: exact")]
            let mantissa = mantissa as f64;
            let value = if exponent == 0 {
                mantissa
            } else if exponent > 0 {
                mantissa * power
            } else {
                mantissa / power
            };
            return Some(if negative { -value } else { value });
        }
        serde_json::from_slice(&body[start..at]).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type Decoded = Vec<(String, Vec<DataPoint>)>;

    fn sorted(mut series: Decoded) -> Decoded {
        series.sort_by(|a, b| a.0.cmp(&b.0));
        series
    }

    /// The serde path alone, for comparing with the scanner.
    fn via_serde(body: &[u8]) -> Option<Decoded> {
        serde_json::from_slice::<WireMetrics>(body)
            .ok()
            .map(|wire| sorted(wire.into_iter().collect()))
    }

    fn via_scanner(body: &[u8]) -> Option<Decoded> {
        scan_metrics(body).map(sorted)
    }

    /// Asserts that the scanner takes `body` and reads it as serde does.
    fn assert_scanned(body: &str) {
        let scanned = via_scanner(body.as_bytes());
        assert!(scanned.is_some(), "the scanner should take {body:?}");
        assert_eq!(scanned, via_serde(body.as_bytes()), "{body:?}");
        // Bit for bit: `-0.0 == 0.0`, so compare the values' bits too.
        let bits = |series: Option<Decoded>| {
            series.map(|series| {
                series
                    .into_iter()
                    .flat_map(|(_, points)| points)
                    .map(|p| p.value.map(f64::to_bits))
                    .collect::<Vec<_>>()
            })
        };
        assert_eq!(
            bits(via_scanner(body.as_bytes())),
            bits(via_serde(body.as_bytes())),
            "{body:?}"
        );
    }

    /// Asserts that the scanner leaves `body` to serde, and that the public decode gives
    /// serde's answer.
    fn assert_left_to_serde(body: &[u8]) {
        assert_eq!(
            scan_metrics(body),
            None,
            "{:?}",
            String::from_utf8_lossy(body)
        );
        let decoded = MetricsData::from_json(body, &[]).ok().map(|data| {
            data.into_iter()
                .map(|s| (s.name, s.points))
                .collect::<Decoded>()
        });
        assert_eq!(
            decoded,
            via_serde(body),
            "{:?}",
            String::from_utf8_lossy(body)
        );
    }

    fn point(x: i64, y: Option<f64>) -> DataPoint {
        DataPoint {
            time: DateTime::from_timestamp_millis(x).unwrap(),
            value: y,
        }
    }

    #[test]
    fn scanner_agrees_with_serde_on_the_shapes_servers_send() {
        for body in [
            "{}",
            " {\n} \n",
            // go-metrics-api (Python's json.dumps).
            r#"{"stores.a.b.last": [{"x": 1000000, "y": null}, {"x": 2000000, "y": 5.0}]}"#,
            // serde_json's compact form, integers for values.
            r#"{"stores.a.b.last":[{"x":1000000,"y":0},{"x":2000000,"y":-7}]}"#,
            // Empty series, several series, any JSON whitespace.
            r#"{"a.sum": [], "b.avg":[ ],"c.max":[{"x":1,"y":1}]}"#,
            "{\r\n\t\"a.sum\" :\n[ {\t\"x\" : 1795048800000 ,\r\"y\" : 0.25 } ,{\"x\":1795049100123,\"y\":null}\n]\n}",
            // Layouts between the two: the general path after the literal one gave up.
            r#"{"a.sum":[{"x": 1,"y":2.5},{"x":2, "y": null},{"x": 3, "y": 4 },{"x":4,"y":5 }]}"#,
            // The fields in the other order.
            r#"{"a.sum":[{"y":2.5,"x":1795048800000}]}"#,
            // Escaped and non-ASCII names.
            r#"{"a\"b.sum":[],"\u0041.sum":[{"x":1,"y":1}],"\\":[],"ключ.avg":[]}"#,
            r#"{"a\/b.sum":[],"\ud83d\ude00.last":[]}"#,
        ] {
            assert_scanned(body);
        }
    }

    #[test]
    fn scanner_reads_numbers_as_serde_does() {
        for number in [
            "0",
            "-0",
            "-0.0",
            "0.0",
            "4.0",
            "150.0",
            "10.50",
            "0.1",
            "0.7234",
            "-12.5",
            "1e5",
            "1E+2",
            "1.5e-3",
            "2.5E3",
            "0.000001",
            "123456789012345",
            "999999999999999.0",
            "12345678901234567",
            "1234567890123456789012",
            "0.30000000000000004",
            "1e22",
            "1e23",
            "9007199254740993",
            "2.2250738585072014e-308",
            "1.7976931348623157e308",
            "5e-324",
            "1e-400",
            "0e999999999999",
            "100000000000000000000000000000e-30",
        ] {
            assert_scanned(&format!(r#"{{"a.sum":[{{"x":1,"y":{number}}}]}}"#));
        }
    }

    #[test]
    fn scanner_reads_timestamps_as_chrono_does() {
        for millis in [
            0_i64,
            1,
            999,
            1000,
            86_399_999,
            86_400_000,
            1_000_000,
            1_795_048_800_000,
            1_795_049_100_123,
            99_999_999,
            100_000_000,
            253_402_300_799_999,
            8_210_266_876_799_999,
        ] {
            assert_scanned(&format!(r#"{{"a.sum":[{{"x":{millis},"y":1}}]}}"#));
        }
        // Many points across day boundaries: the cached day must not leak into the next one.
        let points: Vec<String> = (0..2000_i64)
            .map(|i| {
                format!(
                    r#"{{"x":{},"y":1}}"#,
                    1_795_000_000_000 + i * 3_599_999 + i % 7
                )
            })
            .collect();
        assert_scanned(&format!(r#"{{"a.sum":[{}]}}"#, points.join(",")));
    }

    #[test]
    fn eight_digits_reads_digits_and_nothing_else() {
        for text in ["00000000", "12345678", "99999999", "17950488"] {
            assert_eq!(eight_digits(text.as_bytes()), text.parse().ok(), "{text}");
        }
        for text in [
            "1234567", "1234567/", "1234567:", "123 5678", "-1234567", "1234.678",
        ] {
            assert_eq!(eight_digits(text.as_bytes()), None, "{text}");
        }
        for byte in 0..=u8::MAX {
            let mut text = *b"12345678";
            text[3] = byte;
            assert_eq!(
                eight_digits(&text).is_some(),
                byte.is_ascii_digit(),
                "{byte}"
            );
        }
    }

    #[test]
    fn scanner_leaves_the_unusual_to_serde() {
        for body in [
            // Accepted by serde, with its own reading.
            &br#"{"a.sum":[{"x":1,"y":2,"z":[3]}]}"#[..],
            br#"{"a.sum":[{"x":1}]}"#,
            br#"{"a.sum":[[1,2.5]]}"#,
            br#"{"a.sum":[],"a.sum":[{"x":1,"y":1}]}"#,
            br#"{"a.sum":[{"\u0078":1,"y":2}]}"#,
            br#"{"a.sum":[{"x":-1000,"y":2}]}"#,
            // Rejected by serde, with its error: the scanner must not accept them either.
            br#"{"a.sum":[{"x":1,"y":2,"x":3}]}"#,
            br#"{"a.sum":[{"x":1,"y":2,"y":3}]}"#,
            br#"{"a.sum":[{"y":1}]}"#,
            br#"{"a.sum":[{}]}"#,
            br#"{"a.sum":[{"x":1.5,"y":2}]}"#,
            br#"{"a.sum":[{"x":1e3,"y":2}]}"#,
            br#"{"a.sum":[{"x":-0,"y":2}]}"#,
            br#"{"a.sum":[{"x":01,"y":2}]}"#,
            br#"{"a.sum":[{"x":"1","y":2}]}"#,
            br#"{"a.sum":[{"x":999999999999999999,"y":2}]}"#,
            br#"{"a.sum":[{"x":99999999999999999999,"y":2}]}"#,
            br#"{"a.sum":[{"x":1,"y":01}]}"#,
            br#"{"a.sum":[{"x":1,"y":1.}]}"#,
            br#"{"a.sum":[{"x":1,"y":.5}]}"#,
            br#"{"a.sum":[{"x":1,"y":1e}]}"#,
            br#"{"a.sum":[{"x":1,"y":1e+}]}"#,
            br#"{"a.sum":[{"x":1,"y":+1}]}"#,
            br#"{"a.sum":[{"x":1,"y":-}]}"#,
            br#"{"a.sum":[{"x":1,"y":NaN}]}"#,
            br#"{"a.sum":[{"x":1,"y":Infinity}]}"#,
            br#"{"a.sum":[{"x":1,"y":1e400}]}"#,
            br#"{"a.sum":[{"x":1,"y":"1"}]}"#,
            br#"{"a.sum":[{"x":1,"y":nul}]}"#,
            br#"{"a.sum":[{"x":1,"y":nullx}]}"#,
            br#"{"a.sum":[{"x":1,"y":1}x]}"#,
            br#"{"a.sum":[{"x":1,"y":1},]}"#,
            br#"{"a.sum":[{"x":1,"y":1,}]}"#,
            br#"{"a.sum":[],}"#,
            br#"{"a.sum":[]"#,
            br#"{"a.sum":[{"x":1,"y":1}"#,
            br#"{"a.sum":[{"x":1,"y":1"#,
            br#"{"a.sum":null}"#,
            br#"{"a.sum" []}"#,
            br#"{"a.sum":[] "b.sum":[]}"#,
            br#"{a:[]}"#,
            br#"{"a\q":[]}"#,
            br#"{"\ud800":[]}"#,
            br#"{"a\"#,
            b"{\"a\tb\":[]}",
            b"{\"\xff\":[]}",
            b"{}x",
            b"{} {}",
            b"\xef\xbb\xbf{}",
            b"[]",
            b"null",
            b"",
        ] {
            assert_left_to_serde(body);
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

    #[test]
    fn scanner_agrees_with_serde_on_every_recorded_answer() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
        let mut checked = 0;
        for entry in std::fs::read_dir(dir).unwrap() {
            let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
            let fixture: serde_json::Value = serde_json::from_str(&text).unwrap();
            if fixture["request"]["method"] != "GET"
                || fixture["response"]["status"] != 200
                || !fixture["response"]["body"].is_object()
            {
                continue;
            }
            let body = &fixture["response"]["body"];
            assert_scanned(&serde_json::to_string(body).unwrap());
            assert_scanned(&serde_json::to_string_pretty(body).unwrap());
            checked += 1;
        }
        assert!(checked >= 10, "only {checked} recorded answers");
    }

    #[test]
    fn scanner_sizes_a_lone_series_once() {
        let points: Vec<String> = (0..1000_i64)
            .map(|i| {
                format!(
                    r#"{{"x": {}, "y": {}.0}}"#,
                    1_795_048_800_000 + i * 300_000,
                    i % 9
                )
            })
            .collect();
        let body = format!(r#"{{"stores.a.b.sum": [{}]}}"#, points.join(", "));
        let series = scan_metrics(body.as_bytes()).unwrap();
        assert_eq!(series[0].1.len(), 1000);
        assert_eq!(series[0].1.capacity(), 1000);
        assert_eq!(
            series[0].1[999],
            point(1_795_048_800_000 + 999 * 300_000, Some(0.0))
        );
        assert_eq!(Some(series), via_serde(body.as_bytes()));
    }
}
