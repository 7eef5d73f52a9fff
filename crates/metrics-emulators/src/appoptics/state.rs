//! The emulator's data: metrics with their streams of samples, annotations, spaces and
//! charts, alerts, services, and the request statistics; plus the tag matching and time
//! bucketing the read routes share.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use serde_json::{Map, Value, json};

/// A stream's identity: its tag pairs, lower-cased and sorted.
pub(crate) type TagKey = Vec<(String, String)>;

/// One stored measurement, as compact as the summaries need: a million of them is 48 MB.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Sample {
    pub(crate) time: i64,
    pub(crate) count: u32,
    pub(crate) sum: f64,
    pub(crate) min: f64,
    pub(crate) max: f64,
    /// Sum of squares, for `stddev`.
    pub(crate) sumsq: f64,
}

impl Sample {
    pub(crate) fn value(time: i64, value: f64) -> Self {
        Self {
            time,
            count: 1,
            sum: value,
            min: value,
            max: value,
            sumsq: value * value,
        }
    }
}

/// Samples merged into one bucket.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Bucket {
    pub(crate) count: f64,
    pub(crate) sum: f64,
    pub(crate) min: f64,
    pub(crate) max: f64,
    pub(crate) sumsq: f64,
}

impl Bucket {
    pub(crate) fn from_sample(s: &Sample) -> Self {
        Self {
            count: f64::from(s.count),
            sum: s.sum,
            min: s.min,
            max: s.max,
            sumsq: s.sumsq,
        }
    }

    pub(crate) fn merge(&mut self, other: &Self) {
        self.count += other.count;
        self.sum += other.sum;
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
        self.sumsq += other.sumsq;
    }

    pub(crate) fn mean(&self) -> f64 {
        if self.count > 0.0 {
            self.sum / self.count
        } else {
            0.0
        }
    }

    pub(crate) fn stddev(&self) -> f64 {
        if self.count > 0.0 {
            let mean = self.mean();
            (self.sumsq / self.count - mean * mean).max(0.0).sqrt()
        } else {
            0.0
        }
    }

    /// The value for a summary function other than `derivative` and `all`.
    pub(crate) fn summarize(&self, function: &str) -> f64 {
        match function {
            "sum" => self.sum,
            "min" => self.min,
            "max" => self.max,
            "count" => self.count,
            "stddev" => self.stddev(),
            _ => self.mean(),
        }
    }
}

/// A metric and its data.
#[derive(Debug)]
pub(crate) struct MetricRecord {
    pub(crate) name: String,
    pub(crate) metric_type: String,
    pub(crate) display_name: Option<String>,
    pub(crate) description: Option<String>,
    pub(crate) period: Option<i64>,
    pub(crate) attributes: Map<String, Value>,
    pub(crate) composite: Option<String>,
    pub(crate) streams: HashMap<TagKey, Vec<Sample>>,
}

impl MetricRecord {
    pub(crate) fn new(name: &str, metric_type: &str) -> Self {
        Self {
            name: name.to_owned(),
            metric_type: metric_type.to_owned(),
            display_name: None,
            description: None,
            period: None,
            attributes: Map::new(),
            composite: None,
            streams: HashMap::new(),
        }
    }

    /// The metric as the API describes it.
    pub(crate) fn to_json(&self) -> Value {
        let mut out = json!({
            "name": self.name,
            "display_name": self.display_name,
            "type": self.metric_type,
            "description": self.description,
            "period": self.period,
            "attributes": self.attributes,
            "source_lag": Value::Null,
        });
        if let Some(composite) = &self.composite {
            out["composite"] = json!(composite);
        }
        out
    }

    /// The default summary function: the metric's `summarize_function`, as a read name.
    pub(crate) fn default_summary(&self) -> &'static str {
        match self
            .attributes
            .get("summarize_function")
            .and_then(Value::as_str)
        {
            Some("sum") => "sum",
            Some("min") => "min",
            Some("max") => "max",
            Some("count") => "count",
            _ => "mean",
        }
    }

    /// Applies the properties of a create or update body.
    pub(crate) fn apply_properties(&mut self, body: &Map<String, Value>) {
        if let Some(v) = body.get("display_name") {
            self.display_name = v.as_str().map(str::to_owned);
        }
        if let Some(v) = body.get("description") {
            self.description = v.as_str().map(str::to_owned);
        }
        if let Some(v) = body.get("period") {
            self.period = v.as_i64();
        }
        if let Some(Value::Object(attributes)) = body.get("attributes") {
            for (k, v) in attributes {
                if k != "created_by_ua" {
                    self.attributes.insert(k.clone(), v.clone());
                }
            }
        }
        if let Some(Value::String(composite)) = body.get("composite") {
            self.composite = Some(composite.clone());
        }
    }

    pub(crate) fn sample_count(&self) -> usize {
        self.streams.values().map(Vec::len).sum()
    }
}

/// An annotation event.
#[derive(Clone, Debug)]
pub(crate) struct Event {
    pub(crate) id: u64,
    pub(crate) title: String,
    pub(crate) description: Option<String>,
    pub(crate) source: Option<String>,
    pub(crate) start_time: i64,
    pub(crate) end_time: Option<i64>,
    pub(crate) links: Vec<Value>,
}

impl Event {
    pub(crate) fn to_json(&self) -> Value {
        json!({
            "id": self.id,
            "title": self.title,
            "description": self.description,
            "source": self.source,
            "start_time": self.start_time,
            "end_time": self.end_time,
            "links": self.links,
        })
    }
}

/// An annotation stream.
#[derive(Clone, Debug)]
pub(crate) struct AnnotationStream {
    pub(crate) name: String,
    pub(crate) display_name: Option<String>,
    pub(crate) events: BTreeMap<u64, Event>,
}

/// A space with its charts in order.
#[derive(Clone, Debug)]
pub(crate) struct SpaceRecord {
    pub(crate) name: String,
    pub(crate) charts: Vec<u64>,
}

/// The rate limit the emulator enforces, when asked to.
#[derive(Debug)]
pub(crate) struct RateState {
    pub(crate) limit: u64,
    pub(crate) window: Duration,
    pub(crate) enforce: bool,
    pub(crate) window_start: Instant,
    pub(crate) used: u64,
}

/// The informational limit reported when none is enforced.
pub(crate) const DEFAULT_RATE_LIMIT: u64 = 1_000_000;

impl Default for RateState {
    fn default() -> Self {
        Self {
            limit: DEFAULT_RATE_LIMIT,
            window: Duration::from_secs(3600),
            enforce: false,
            window_start: Instant::now(),
            used: 0,
        }
    }
}

impl RateState {
    /// Counts a request; `(allowed, remaining, seconds to reset)`.
    pub(crate) fn take(&mut self) -> (bool, u64, u64) {
        let now = Instant::now();
        if now.duration_since(self.window_start) >= self.window {
            self.window_start = now;
            self.used = 0;
        }
        self.used += 1;
        let allowed = !self.enforce || self.used <= self.limit;
        let remaining = self.limit.saturating_sub(self.used);
        let reset = self
            .window
            .saturating_sub(now.duration_since(self.window_start))
            .as_secs();
        (allowed, remaining, reset)
    }
}

/// How top-level tags of a measurement post combine with a measurement's own.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum TagMode {
    /// The current documentation: top-level tags apply only to measurements without tags
    /// of their own.
    #[default]
    Replace,
    /// The superseded tags-beta documentation and the Python test fake: merged per key,
    /// the measurement's value wins, a `null` value removes the tag.
    Merge,
}

/// Counters of what the emulator received.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MeasurementStats {
    /// `POST /v1/measurements` requests that were accepted.
    pub posts: usize,
    /// Measurements stored.
    pub measurements: usize,
    /// The most measurements one accepted post carried.
    pub largest_post: usize,
    /// The most measurement posts that were being served at the same time.
    pub max_concurrent_posts: usize,
}

/// Everything the emulator stores.
#[derive(Debug)]
pub(crate) struct State {
    pub(crate) token: Option<String>,
    pub(crate) tag_mode: TagMode,
    pub(crate) page_points: usize,
    pub(crate) max_per_post: usize,
    pub(crate) metrics: HashMap<String, MetricRecord>,
    pub(crate) annotations: BTreeMap<String, AnnotationStream>,
    pub(crate) next_event_id: u64,
    pub(crate) spaces: BTreeMap<u64, SpaceRecord>,
    pub(crate) charts: BTreeMap<u64, Value>,
    pub(crate) next_space_id: u64,
    pub(crate) next_chart_id: u64,
    pub(crate) next_stream_id: u64,
    pub(crate) alerts: BTreeMap<u64, Map<String, Value>>,
    pub(crate) next_alert_id: u64,
    pub(crate) next_condition_id: u64,
    pub(crate) firing: BTreeMap<u64, i64>,
    pub(crate) cleared: Vec<(u64, i64)>,
    pub(crate) services: BTreeMap<u64, Map<String, Value>>,
    pub(crate) next_service_id: u64,
    pub(crate) stats: MeasurementStats,
    pub(crate) rate: RateState,
    pub(crate) post_latency: Option<Duration>,
    pub(crate) posts_in_flight: usize,
}

/// Points per measurements page unless set.
pub(crate) const DEFAULT_PAGE_POINTS: usize = 10_000;
/// Measurements per post the emulator accepts ("keep batch requests under 1,000").
pub(crate) const DEFAULT_MAX_PER_POST: usize = 1000;

impl Default for State {
    fn default() -> Self {
        Self {
            token: None,
            tag_mode: TagMode::Replace,
            page_points: DEFAULT_PAGE_POINTS,
            max_per_post: DEFAULT_MAX_PER_POST,
            metrics: HashMap::new(),
            annotations: BTreeMap::new(),
            next_event_id: 1,
            spaces: BTreeMap::new(),
            charts: BTreeMap::new(),
            next_space_id: 1,
            next_chart_id: 1,
            next_stream_id: 1,
            alerts: BTreeMap::new(),
            next_alert_id: 1,
            next_condition_id: 1,
            firing: BTreeMap::new(),
            cleared: Vec::new(),
            services: BTreeMap::new(),
            next_service_id: 1,
            stats: MeasurementStats::default(),
            rate: RateState::default(),
            post_latency: None,
            posts_in_flight: 0,
        }
    }
}

impl State {
    /// Clears the data and counters, keeping the configuration.
    pub(crate) fn reset_data(&mut self) {
        let config = (
            self.token.take(),
            self.tag_mode,
            self.page_points,
            self.max_per_post,
        );
        *self = Self::default();
        (
            self.token,
            self.tag_mode,
            self.page_points,
            self.max_per_post,
        ) = config;
    }

    pub(crate) fn metric(&self, name: &str) -> Option<&MetricRecord> {
        self.metrics.get(&name.to_ascii_lowercase())
    }

    pub(crate) fn metric_mut(&mut self, name: &str) -> Option<&mut MetricRecord> {
        self.metrics.get_mut(&name.to_ascii_lowercase())
    }

    /// Stores one sample, creating the gauge if needed.
    pub(crate) fn store(&mut self, name: &str, tags: TagKey, sample: Sample) -> &mut MetricRecord {
        let record = self
            .metrics
            .entry(name.to_ascii_lowercase())
            .or_insert_with(|| MetricRecord::new(name, "gauge"));
        record.streams.entry(tags).or_default().push(sample);
        record
    }

    /// An alert as the API shows it: services as objects.
    pub(crate) fn alert_json(&self, alert: &Map<String, Value>) -> Value {
        let mut out = alert.clone();
        let services: Vec<Value> = alert
            .get("services")
            .and_then(Value::as_array)
            .map(|ids| {
                ids.iter()
                    .filter_map(Value::as_u64)
                    .filter_map(|id| {
                        self.services.get(&id).map(|s| {
                            let mut s = s.clone();
                            // Inside alerts the id is a number.
                            s.insert("id".into(), json!(id));
                            Value::Object(s)
                        })
                    })
                    .collect()
            })
            .unwrap_or_default();
        out.insert("services".into(), Value::Array(services));
        Value::Object(out)
    }

    /// A service as the services routes show it: the id as a string, as the documentation
    /// does there.
    pub(crate) fn service_json(id: u64, service: &Map<String, Value>) -> Value {
        let mut out = service.clone();
        out.insert("id".into(), json!(id.to_string()));
        Value::Object(out)
    }

    /// A chart as stored.
    pub(crate) fn chart_json(&self, id: u64) -> Option<Value> {
        self.charts.get(&id).cloned()
    }
}

/// `*` matches any run; comparison ignores ASCII case.
pub(crate) fn glob(pattern: &str, text: &str) -> bool {
    let pattern = pattern.to_ascii_lowercase();
    let text = text.to_ascii_lowercase();
    let mut parts = pattern.split('*');
    let first = parts.next().unwrap_or_default();
    let Some(mut rest) = text.strip_prefix(first) else {
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

/// One condition of a tag filter.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum TagTerm {
    /// The stream has the tag with a value matching the pattern.
    Matches(String, String),
    /// The stream has the tag with a value not matching the pattern.
    NotMatches(String, String),
    /// The stream does not have the tag.
    Lacks(String),
}

impl TagTerm {
    fn holds(&self, tags: &TagKey) -> bool {
        let find = |name: &str| {
            tags.iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
        };
        match self {
            Self::Matches(name, pattern) => find(name).is_some_and(|v| glob(pattern, v)),
            Self::NotMatches(name, pattern) => find(name).is_some_and(|v| !glob(pattern, v)),
            Self::Lacks(name) => find(name).is_none(),
        }
    }

    /// `name=pattern`, `name=!pattern`, or `!name`.
    fn parse(term: &str) -> Option<Self> {
        let term = term.trim();
        if let Some((name, pattern)) = term.split_once('=') {
            let name = name.trim().to_ascii_lowercase();
            let pattern = pattern.trim();
            if name.is_empty() || pattern.is_empty() {
                return None;
            }
            return Some(match pattern.strip_prefix('!') {
                Some(negated) => Self::NotMatches(name, negated.to_owned()),
                None => Self::Matches(name, pattern.to_owned()),
            });
        }
        let name = term.strip_prefix('!')?.trim();
        (!name.is_empty()).then(|| Self::Lacks(name.to_ascii_lowercase()))
    }
}

/// Which streams a read selects: OR of ANDs of terms. Empty = every stream.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct TagFilter {
    pub(crate) any_of: Vec<Vec<TagTerm>>,
}

impl TagFilter {
    pub(crate) fn matches(&self, tags: &TagKey) -> bool {
        self.any_of.is_empty()
            || self
                .any_of
                .iter()
                .any(|all| all.iter().all(|t| t.holds(tags)))
    }

    /// From `tags[name]=pattern` pairs: the same name repeated is an OR, different names
    /// an AND; `!pattern` negates.
    pub(crate) fn from_pairs(pairs: &[(String, String)]) -> Self {
        let mut by_name: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (name, pattern) in pairs {
            by_name
                .entry(name.to_ascii_lowercase())
                .or_default()
                .push(pattern.clone());
        }
        // (a1 OR a2) AND (b1) expands into ORs of ANDs.
        let mut any_of: Vec<Vec<TagTerm>> = vec![Vec::new()];
        for (name, patterns) in by_name {
            let mut next = Vec::new();
            for all in &any_of {
                for pattern in &patterns {
                    let mut all = all.clone();
                    all.push(match pattern.strip_prefix('!') {
                        Some(negated) => TagTerm::NotMatches(name.clone(), negated.to_owned()),
                        None => TagTerm::Matches(name.clone(), pattern.clone()),
                    });
                    next.push(all);
                }
            }
            any_of = next;
        }
        if any_of.len() == 1 && any_of[0].is_empty() {
            any_of.clear();
        }
        Self { any_of }
    }

    /// A `tags_search` expression: terms joined by `and` (binding tighter) and `or`.
    pub(crate) fn parse_search(expression: &str) -> Result<Self, String> {
        if expression.contains('(') || expression.contains(')') {
            return Err("parentheses are not supported by this emulator".to_owned());
        }
        let mut any_of = Vec::new();
        for alternative in split_keyword(expression, "or") {
            let mut all = Vec::new();
            for term in split_keyword(&alternative, "and") {
                all.push(
                    TagTerm::parse(&term)
                        .ok_or_else(|| format!("`{}` is not a valid term", term.trim()))?,
                );
            }
            any_of.push(all);
        }
        Ok(Self { any_of })
    }
}

/// Splits on a whitespace-delimited keyword, ignoring case.
fn split_keyword(text: &str, keyword: &str) -> Vec<String> {
    let mut parts = vec![String::new()];
    for word in text.split_whitespace() {
        if word.eq_ignore_ascii_case(keyword) {
            parts.push(String::new());
        } else if let Some(last) = parts.last_mut() {
            if !last.is_empty() {
                last.push(' ');
            }
            last.push_str(word);
        }
    }
    parts
}

/// A stream's samples in `[start, end]`, bucketed by `resolution`.
pub(crate) fn bucketize(
    samples: &[Sample],
    start: i64,
    end: i64,
    resolution: i64,
) -> BTreeMap<i64, Bucket> {
    let mut buckets: BTreeMap<i64, Bucket> = BTreeMap::new();
    for sample in samples.iter().filter(|s| s.time >= start && s.time <= end) {
        let at = sample.time - sample.time.rem_euclid(resolution.max(1));
        let bucket = Bucket::from_sample(sample);
        buckets
            .entry(at)
            .and_modify(|b| b.merge(&bucket))
            .or_insert(bucket);
    }
    buckets
}

/// One point of a read, before it is rendered.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum PointValue {
    Value(f64),
    All(Bucket),
}

/// Summarizes buckets into points; `derivative` is the change between buckets.
pub(crate) fn summarize(buckets: &BTreeMap<i64, Bucket>, function: &str) -> Vec<(i64, PointValue)> {
    match function {
        "all" => buckets
            .iter()
            .map(|(t, b)| (*t, PointValue::All(*b)))
            .collect(),
        "derivative" => buckets
            .iter()
            .zip(buckets.iter().skip(1))
            .map(|((_, a), (t, b))| (*t, PointValue::Value(b.mean() - a.mean())))
            .collect(),
        other => buckets
            .iter()
            .map(|(t, b)| (*t, PointValue::Value(b.summarize(other))))
            .collect(),
    }
}

pub(crate) fn point_json(time: i64, value: &PointValue) -> Value {
    match value {
        PointValue::Value(v) => json!({ "time": time, "value": v }),
        PointValue::All(b) => json!({
            "time": time,
            "count": b.count,
            "sum": b.sum,
            "min": b.min,
            "max": b.max,
            "mean": b.mean(),
            "stddev": b.stddev(),
        }),
    }
}

pub(crate) fn tags_json(tags: &TagKey) -> Value {
    Value::Object(
        tags.iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(pairs: &[(&str, &str)]) -> TagKey {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn tag_filters() {
        let east = key(&[("name", "prod"), ("region", "us-east")]);
        let eu = key(&[("name", "prod"), ("region", "eu-west-1")]);
        let bare = key(&[("name", "dev")]);
        let pairs = |p: &[(&str, &str)]| {
            p.iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect::<Vec<_>>()
        };
        let f = TagFilter::from_pairs(&pairs(&[("region", "us-*"), ("region", "eu-west-1")]));
        assert!(f.matches(&east) && f.matches(&eu) && !f.matches(&bare));
        let f = TagFilter::from_pairs(&pairs(&[("region", "us-*"), ("name", "prod")]));
        assert!(f.matches(&east) && !f.matches(&eu));
        let f = TagFilter::from_pairs(&pairs(&[("region", "!us-*")]));
        assert!(!f.matches(&east) && f.matches(&eu) && !f.matches(&bare));
        assert!(TagFilter::default().matches(&bare));
    }

    #[test]
    fn tags_search() {
        let db = key(&[("db", "db-prod-1"), ("region", "us-east-1")]);
        let host = key(&[("host", "db-1-prod")]);
        let f = TagFilter::parse_search("region=us-east* and db=*prod*").unwrap();
        assert!(f.matches(&db) && !f.matches(&host));
        let f = TagFilter::parse_search("!host or host=!db*prod").unwrap();
        assert!(f.matches(&db) && !f.matches(&host));
        assert!(TagFilter::parse_search("a=b and").is_err());
        assert!(TagFilter::parse_search("(a=b)").is_err());
    }

    #[test]
    fn buckets_and_summaries() {
        let samples = [
            Sample::value(100, 1.0),
            Sample::value(130, 3.0),
            Sample::value(170, 10.0),
        ];
        let buckets = bucketize(&samples, 0, 1000, 60);
        assert_eq!(buckets.len(), 2);
        assert_eq!(buckets[&60].count, 1.0);
        assert_eq!(buckets[&120].mean(), 6.5);
        assert!((buckets[&120].stddev() - 3.5).abs() < 1e-9);
        let points = summarize(&buckets, "derivative");
        assert_eq!(points, vec![(120, PointValue::Value(5.5))]);
        assert_eq!(
            summarize(&buckets, "sum")[1],
            (120, PointValue::Value(13.0))
        );
        assert_eq!(
            summarize(&buckets, "max")[1],
            (120, PointValue::Value(10.0))
        );
        assert!(bucketize(&samples, 101, 129, 60).is_empty());
    }

    #[test]
    fn globbing() {
        assert!(glob("us-*", "US-east"));
        assert!(glob("*prod*", "db-prod-1"));
        assert!(!glob("web*", "db"));
        assert!(glob("*", ""));
    }
}
