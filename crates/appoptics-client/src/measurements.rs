//! Submitting and reading measurements, and composite queries.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use metrics_core::http::{Request, encode_path_segment};
use metrics_core::{Error, Result};

use crate::BACKEND;
use crate::client::AppOpticsClient;
use crate::model::{
    CompositeResult, GroupByFunction, Measurement, Measurements, MeasurementsBody,
    ReadSummaryFunction, Tags,
};
use crate::validate::{MAX_MEASUREMENTS_PER_REQUEST, MAX_RESOLUTION_SECS};

/// The resolution used unless set: one minute. (The Python library asks for 1 s, which the
/// server only keeps for recent data; older ranges answer 400 "resolution unavailable".)
pub const DEFAULT_RESOLUTION_SECS: u32 = 60;
/// How many `next` links a read follows before giving up.
const MAX_PAGES: usize = 10_000;

/// Parameters of `GET /v1/measurements/:name`.
///
/// A range is `start_time` (+ optional `end_time`, default now) or a `duration` back from
/// `end_time`; setting all three is an error, as is setting neither start nor duration.
///
/// ```
/// use std::time::Duration;
/// use appoptics_client::{MeasurementsQuery, model::{GroupByFunction, ReadSummaryFunction}};
///
/// let query = MeasurementsQuery::last(Duration::from_secs(86_400))
///     .with_resolution(60)
///     .with_tag("region", "us-*")
///     .with_tag("region", "eu-west-1")     // same name again: OR
///     .with_tag("name", "prod")            // another name: AND
///     .with_group_by(["region"], GroupByFunction::Sum)
///     .with_summary_function(ReadSummaryFunction::Max);
/// assert_eq!(query.resolution, 60);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[must_use]
pub struct MeasurementsQuery {
    /// Start, seconds since the epoch.
    pub start_time: Option<i64>,
    /// End, seconds since the epoch (default now).
    pub end_time: Option<i64>,
    /// Seconds back from the end.
    pub duration: Option<u64>,
    /// Seconds per point, 1 to 604800.
    pub resolution: u32,
    /// Tag filters: name and value pattern (`*` wildcards, `!` negates). A name given twice
    /// matches either value.
    pub tags: Vec<(String, String)>,
    /// A tag search expression (`region=us-east* and db=*prod*`), instead of `tags`.
    pub tags_search: Option<String>,
    /// Tags to group streams by (`*` = all into one), with the combining function.
    pub group_by: Option<(Vec<String>, GroupByFunction)>,
    /// How each point is summarized.
    pub summary_function: Option<ReadSummaryFunction>,
    /// Other parameters, sent as they are.
    pub extra: Vec<(String, String)>,
}

impl MeasurementsQuery {
    fn empty() -> Self {
        Self {
            start_time: None,
            end_time: None,
            duration: None,
            resolution: DEFAULT_RESOLUTION_SECS,
            tags: Vec::new(),
            tags_search: None,
            group_by: None,
            summary_function: None,
            extra: Vec::new(),
        }
    }

    /// The last `duration` up to now.
    pub fn last(duration: Duration) -> Self {
        Self {
            duration: Some(duration.as_secs().max(1)),
            ..Self::empty()
        }
    }

    /// From `start` up to now.
    pub fn since(start: DateTime<Utc>) -> Self {
        Self {
            start_time: Some(start.timestamp()),
            ..Self::empty()
        }
    }

    /// From `start` to `end`.
    pub fn between(start: DateTime<Utc>, end: DateTime<Utc>) -> Self {
        Self {
            start_time: Some(start.timestamp()),
            end_time: Some(end.timestamp()),
            ..Self::empty()
        }
    }

    /// Sets the end (with [`last`](Self::last): the duration counts back from it).
    pub fn with_end_time(mut self, end: DateTime<Utc>) -> Self {
        self.end_time = Some(end.timestamp());
        self
    }

    /// Sets seconds per point (1 to 604800).
    pub fn with_resolution(mut self, seconds: u32) -> Self {
        self.resolution = seconds;
        self
    }

    /// Adds a tag filter.
    pub fn with_tag(mut self, name: impl Into<String>, pattern: impl Into<String>) -> Self {
        self.tags.push((name.into(), pattern.into()));
        self
    }

    /// Adds a filter per tag.
    pub fn with_tags(mut self, tags: &Tags) -> Self {
        self.tags
            .extend(tags.iter().map(|(k, v)| (k.clone(), v.clone())));
        self
    }

    /// Sets a tag search expression (exclusive with tag filters).
    pub fn with_tags_search(mut self, expression: impl Into<String>) -> Self {
        self.tags_search = Some(expression.into());
        self
    }

    /// Groups streams by these tags with `function`.
    pub fn with_group_by<I, S>(mut self, tags: I, function: GroupByFunction) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.group_by = Some((tags.into_iter().map(Into::into).collect(), function));
        self
    }

    /// Sets the summary function.
    pub fn with_summary_function(mut self, function: ReadSummaryFunction) -> Self {
        self.summary_function = Some(function);
        self
    }

    /// Adds another parameter.
    pub fn with_param(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.extra.push((name.into(), value.into()));
        self
    }

    fn validate(&self) -> Result<()> {
        let invalid = |message: &str| Err(Error::invalid_input(BACKEND, message.to_owned()));
        if self.start_time.is_none() && self.duration.is_none() {
            return invalid("a measurements read needs a start time or a duration");
        }
        if self.start_time.is_some() && self.end_time.is_some() && self.duration.is_some() {
            return invalid("setting start time, end time and duration together is an error");
        }
        if let (Some(start), Some(end)) = (self.start_time, self.end_time)
            && start > end
        {
            return invalid("the start time is after the end time");
        }
        if self.resolution == 0 || self.resolution > MAX_RESOLUTION_SECS {
            return Err(Error::invalid_input(
                BACKEND,
                format!(
                    "resolution {} s is out of range; it must be 1 to {MAX_RESOLUTION_SECS} s",
                    self.resolution
                ),
            ));
        }
        for (name, pattern) in &self.tags {
            crate::validate::tag_name(name)?;
            if pattern.is_empty() {
                return Err(Error::invalid_input(
                    BACKEND,
                    format!("the filter on tag `{name}` has an empty pattern"),
                ));
            }
        }
        if !self.tags.is_empty() && self.tags_search.is_some() {
            return invalid("tag filters and a tags search cannot be combined; use one of them");
        }
        if let Some((tags, _)) = &self.group_by {
            if tags.is_empty() {
                return invalid("group_by needs at least one tag name (or `*`)");
            }
            for tag in tags.iter().filter(|t| t.as_str() != "*") {
                crate::validate::tag_name(tag)?;
            }
            if self.summary_function == Some(ReadSummaryFunction::All) {
                return invalid("summary_function=all cannot be combined with group_by");
            }
        }
        Ok(())
    }

    fn apply(&self, mut request: Request) -> Result<Request> {
        #[derive(serde::Serialize)]
        struct Range {
            start_time: Option<i64>,
            end_time: Option<i64>,
            duration: Option<u64>,
            resolution: u32,
        }
        #[derive(serde::Serialize)]
        struct Shape<'a> {
            tags_search: Option<&'a str>,
            group_by: Option<String>,
            group_by_function: Option<&'a str>,
            summary_function: Option<&'a str>,
        }
        request = request.with_query_params(
            BACKEND,
            &Range {
                start_time: self.start_time,
                end_time: self.end_time,
                duration: self.duration,
                resolution: self.resolution,
            },
        )?;
        // Tag filters are named by their tag (`tags[region]=us-*`), and a name may repeat.
        for (name, pattern) in &self.tags {
            request = request.with_query(format!("tags[{name}]"), pattern);
        }
        request = request.with_query_params(
            BACKEND,
            &Shape {
                tags_search: self.tags_search.as_deref(),
                group_by: self.group_by.as_ref().map(|(tags, _)| tags.join(",")),
                group_by_function: self.group_by.as_ref().map(|(_, f)| f.as_str()),
                summary_function: self
                    .summary_function
                    .as_ref()
                    .map(ReadSummaryFunction::as_str),
            },
        )?;
        for (name, value) in &self.extra {
            request = request.with_query(name, value);
        }
        Ok(request)
    }
}

/// A composite query (`GET /v1/measurements?compose=…`).
///
/// ```
/// use appoptics_client::CompositeQuery;
/// use chrono::{Duration, Utc};
///
/// let query = CompositeQuery::new(
///     r#"mean(s("temperature", "*", {function: "mean", period: "3600"}))"#,
///     Utc::now() - Duration::hours(8),
/// );
/// assert_eq!(query.resolution, 60);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[must_use]
pub struct CompositeQuery {
    /// The expression.
    pub compose: String,
    /// Start, seconds since the epoch (required by the API).
    pub start_time: i64,
    /// End, seconds since the epoch.
    pub end_time: Option<i64>,
    /// Seconds per point (required by the API).
    pub resolution: u32,
}

impl CompositeQuery {
    /// `compose` from `start` to now.
    pub fn new(compose: impl Into<String>, start: DateTime<Utc>) -> Self {
        Self {
            compose: compose.into(),
            start_time: start.timestamp(),
            end_time: None,
            resolution: DEFAULT_RESOLUTION_SECS,
        }
    }

    /// Sets the end.
    pub fn with_end_time(mut self, end: DateTime<Utc>) -> Self {
        self.end_time = Some(end.timestamp());
        self
    }

    /// Sets the resolution.
    pub fn with_resolution(mut self, seconds: u32) -> Self {
        self.resolution = seconds;
        self
    }

    fn request(&self, path: &str) -> Result<Request> {
        if self.compose.trim().is_empty() {
            return Err(Error::invalid_input(
                BACKEND,
                "the composite expression is empty",
            ));
        }
        if self.resolution == 0 || self.resolution > MAX_RESOLUTION_SECS {
            return Err(Error::invalid_input(
                BACKEND,
                format!(
                    "resolution {} s is out of range; it must be 1 to {MAX_RESOLUTION_SECS} s",
                    self.resolution
                ),
            ));
        }
        #[derive(serde::Serialize)]
        struct Query<'a> {
            compose: &'a str,
            start_time: i64,
            resolution: u32,
            end_time: Option<i64>,
        }
        Request::get(path).with_query_params(
            BACKEND,
            &Query {
                compose: &self.compose,
                start_time: self.start_time,
                resolution: self.resolution,
                end_time: self.end_time,
            },
        )
    }
}

impl AppOpticsClient {
    /// Submits one measurement (`POST /v1/measurements`).
    ///
    /// Its tags are resolved against the connection tags: its own tags alone, or laid over
    /// the connection's with `inherit_tags`, or the connection's when it has none. At least
    /// one tag is needed.
    ///
    /// The post is not retried: the API does not make it idempotent, so a retry after a
    /// response that never arrived could count the measurement twice.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidInput`] for an invalid name, value or tags, before sending; any
    /// request error; [`Error::Api`] with code `partial_failure` when the server answered
    /// 2xx but reported errors.
    pub async fn submit(&self, measurement: Measurement) -> Result<()> {
        self.submit_batch([measurement]).await
    }

    /// Submits up to 1 000 measurements in one request. For more, or for batching over time,
    /// use a [`MeasurementQueue`](crate::MeasurementQueue).
    ///
    /// # Errors
    ///
    /// As [`submit`](Self::submit); [`Error::InvalidInput`] for an empty batch or more than
    /// 1 000 measurements.
    pub async fn submit_batch(
        &self,
        measurements: impl IntoIterator<Item = Measurement>,
    ) -> Result<()> {
        let inherited = Arc::clone(&self.inner.inherited);
        let prepared = measurements
            .into_iter()
            .map(|m| self.prepare(m, &inherited))
            .collect::<Result<Vec<_>>>()?;
        if prepared.is_empty() {
            return Err(Error::invalid_input(BACKEND, "no measurements to submit"));
        }
        if prepared.len() > MAX_MEASUREMENTS_PER_REQUEST {
            return Err(Error::invalid_input(
                BACKEND,
                format!(
                    "{} measurements in one request; the API limit is {MAX_MEASUREMENTS_PER_REQUEST} (a MeasurementQueue splits batches into chunks)",
                    prepared.len()
                ),
            ));
        }
        self.post_measurements(&prepared).await
    }

    /// The measurement as [`submit`](Self::submit) sends it: name sanitized, tags resolved
    /// against the connection tags, validated (the library's `create_tagged_payload`).
    ///
    /// ```
    /// use appoptics_client::{AppOpticsClient, Measurement, model::tags};
    ///
    /// let client = AppOpticsClient::builder()
    ///     .with_token("t")
    ///     .with_tags(tags([("company", "AppOptics"), ("hi", "four")]))
    ///     .build()?;
    /// let m = client.resolve_measurement(
    ///     Measurement::new("user_cpu", 20.2).with_tags(tags([("hi", "five")])).with_inherit_tags(true),
    /// )?;
    /// assert_eq!(m.tags(), Some(&tags([("hi", "five"), ("company", "AppOptics")])));
    /// # Ok::<_, metrics_core::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::InvalidInput`] for an invalid name, value or tags, or no tags at all.
    pub fn resolve_measurement(&self, measurement: Measurement) -> Result<Measurement> {
        let inherited = Arc::clone(&self.inner.inherited);
        self.prepare(measurement, &inherited)
    }

    /// Whether a sanitizer rewrites metric names.
    pub(crate) fn sanitizes(&self) -> bool {
        !matches!(self.inner.sanitizer, crate::Sanitizer::NoOp)
    }

    /// Sanitizes the name, resolves the tags against `inherited` and validates the result.
    pub(crate) fn prepare(
        &self,
        mut measurement: Measurement,
        inherited: &Arc<Tags>,
    ) -> Result<Measurement> {
        if !matches!(self.inner.sanitizer, crate::Sanitizer::NoOp) {
            measurement.name = Arc::from(self.sanitize(&measurement.name));
        }
        let mut measurement = measurement.resolve_tags(inherited);
        if let Some(tags) = measurement.tags.as_deref()
            && let Some(clean) = self.inner.tag_sanitizer.apply_to(tags)
        {
            measurement.tags = Some(Arc::new(clean));
        }
        measurement.validate()?;
        Ok(measurement)
    }

    /// Posts measurements that are already prepared, as one request.
    ///
    /// Sent with retries off. The core would resend a non-idempotent POST after a connect
    /// failure or a 429; but AppOptics documents that a 429 on this route may mean part of
    /// the payload was accepted, so a resend could count it twice, and the queue keeps every
    /// chunk that failed anyway: the caller (or the next `submit`) resends it knowing what
    /// happened, instead of a retry loop holding a concurrency slot through backoff.
    pub(crate) async fn post_measurements(&self, measurements: &[Measurement]) -> Result<()> {
        let body = MeasurementsBody {
            measurements: measurements.iter(),
            tags: None,
            time: None,
        };
        let request = Request::post("measurements")
            .with_json(BACKEND, &body)?
            .without_retries();
        self.write(request).await
    }

    /// Posts a measurements body that is already serialized (the queue's chunks), as one
    /// request, without retries (see [`post_measurements`](Self::post_measurements)).
    pub(crate) async fn post_measurements_body(&self, body: Vec<u8>) -> Result<()> {
        let request = Request::post("measurements")
            .with_body(
                body,
                metrics_core::reqwest::header::HeaderValue::from_static("application/json"),
            )
            .without_retries();
        self.write(request).await
    }

    /// Posts a body with top-level tags and time (aggregator payloads).
    pub(crate) async fn post_measurements_with(
        &self,
        measurements: &[Measurement],
        tags: Option<&Tags>,
        time: Option<i64>,
    ) -> Result<()> {
        let body = MeasurementsBody {
            measurements: measurements.iter(),
            tags,
            time,
        };
        let request = Request::post("measurements")
            .with_json(BACKEND, &body)?
            .without_retries();
        self.write(request).await
    }

    /// Reads a metric's measurements (`GET /v1/measurements/:name`), following
    /// `links[rel=next]` until the last page and joining the pages' series by tags.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidInput`] for an invalid query, before sending; [`Error::NotFound`]
    /// for an unknown metric; any request error.
    pub async fn get_measurements(
        &self,
        name: &str,
        query: &MeasurementsQuery,
    ) -> Result<Measurements> {
        let mut result = self.get_measurements_page(name, query).await?;
        let mut pages = 1;
        let mut previous = None::<String>;
        while let Some(href) = result.next_link().map(str::to_owned) {
            if pages >= MAX_PAGES || previous.as_deref() == Some(href.as_str()) {
                return Err(Error::decode(
                    BACKEND,
                    "links",
                    format!("the server kept sending `next` links after {pages} pages; giving up"),
                ));
            }
            let path = self.relative_link(&href)?;
            let page: Measurements = self.get_json(Request::get(path)).await?;
            result.merge_page(page);
            previous = Some(href);
            pages += 1;
        }
        Ok(result)
    }

    /// Reads one page of measurements, without following `next` links.
    ///
    /// # Errors
    ///
    /// As [`get_measurements`](Self::get_measurements).
    pub async fn get_measurements_page(
        &self,
        name: &str,
        query: &MeasurementsQuery,
    ) -> Result<Measurements> {
        let name = self.metric_name(name)?;
        query.validate()?;
        let request = query.apply(Request::get(format!(
            "measurements/{}",
            encode_path_segment(&name)
        )))?;
        self.get_json(request).await
    }

    /// Runs a composite query (`GET /v1/measurements?compose=…`). Accepts the documented
    /// bare-array answer and the older object with `series`.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidInput`] for an empty expression or a bad resolution; any request error.
    pub async fn get_composite(&self, query: &CompositeQuery) -> Result<CompositeResult> {
        self.get_json(query.request("measurements")?).await
    }

    /// Runs a composite query on the legacy Librato route (`GET /v1/metrics?compose=…`).
    ///
    /// # Errors
    ///
    /// As [`get_composite`](Self::get_composite).
    pub async fn get_composite_legacy(&self, query: &CompositeQuery) -> Result<CompositeResult> {
        self.get_json(query.request("metrics")?).await
    }
}
