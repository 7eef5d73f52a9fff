//! The client, its builder, connection-level tags and the metrics routes.

use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use futures_util::Stream;
use metrics_core::http::{HttpClient, Request, Response, encode_path_segment};
use metrics_core::reqwest::header::{HeaderMap, HeaderValue};
use metrics_core::reqwest::{StatusCode, Url};
use metrics_core::{Auth, ClientOptions, Env, Error, Result, RetryConfig, Secret};
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::BACKEND;
use crate::error::{
    AppOpticsError, AppOpticsErrorKind, RATE_LIMIT_AGG_HEADER, RATE_LIMIT_STD_HEADER, RateLimit,
    RateLimits, errors_present, parse_error_body, partial_failure, partial_failure_code,
    render_errors,
};
use crate::model::{Metric, MetricSelector, MetricSpec, MetricType, Page, Tags};
use crate::pagination::{ListParams, paginate};
use crate::queue::QueueBuilder;

/// The API's base URL.
pub const DEFAULT_BASE_URL: &str = "https://api.appoptics.com/v1";
/// The request timeout unless set otherwise: 10 s, as in the Python library.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// The user agent unless set otherwise.
pub const DEFAULT_USER_AGENT: &str = concat!("metrics-hub-appoptics/", env!("CARGO_PKG_VERSION"));

/// What the client does to metric names before using them.
///
/// The sanitizer runs on metric names given to metric, measurement, queue and read calls;
/// never on annotation or alert names. Validation runs after it, so with
/// [`Sanitizer::MetricName`] any name is accepted.
#[derive(Clone, Copy, Debug, Default)]
#[non_exhaustive]
pub enum Sanitizer {
    /// Names are used as given (and rejected if invalid). The default.
    #[default]
    NoOp,
    /// The library's `sanitize_metric_name`: runs of invalid characters become `-`, then the
    /// first 255 characters are kept.
    MetricName,
    /// Your own function.
    Custom(fn(&str) -> String),
}

impl Sanitizer {
    /// Applies the sanitizer.
    pub fn apply(&self, name: &str) -> String {
        match self {
            Self::NoOp => name.to_owned(),
            Self::MetricName => crate::validate::sanitize_metric_name(name),
            Self::Custom(function) => function(name),
        }
    }
}

/// What the client does to tag values before using them: the tag-value counterpart of
/// [`Sanitizer`], off by default like it.
///
/// A tag value the API would refuse (an axum route template `/work/{ms}`, a user agent)
/// otherwise fails every request that carries it with [`Error::InvalidInput`]. The
/// sanitizer runs on connection, queue and measurement tags, before validation; never on
/// the tag filters of a read, which are patterns.
///
/// ```
/// use appoptics_client::{AppOpticsClient, Measurement, TagSanitizer};
///
/// let client = AppOpticsClient::builder()
///     .with_token("t")
///     .with_tag_sanitizer(TagSanitizer::TagValue)
///     .build()?;
/// let m = client.resolve_measurement(Measurement::new("latency", 3.0).with_tag("route", "/work/{ms}"))?;
/// assert_eq!(m.tags().unwrap()["route"], "/work/-ms-");
/// # Ok::<_, metrics_core::Error>(())
/// ```
#[derive(Clone, Copy, Debug, Default)]
#[non_exhaustive]
pub enum TagSanitizer {
    /// Values are used as given (and rejected if invalid). The default.
    #[default]
    NoOp,
    /// [`sanitize_tag_value`](crate::validate::sanitize_tag_value): runs of invalid
    /// characters become `-`, then the first 255 characters are kept.
    TagValue,
    /// Your own function.
    Custom(fn(&str) -> String),
}

impl TagSanitizer {
    /// Applies the sanitizer to one value.
    pub fn apply(&self, value: &str) -> String {
        match self {
            Self::NoOp => value.to_owned(),
            Self::TagValue => crate::validate::sanitize_tag_value(value),
            Self::Custom(function) => function(value),
        }
    }

    /// The tags with every value sanitized; `None` when nothing changes (so that a shared
    /// map stays shared).
    pub(crate) fn apply_to(&self, tags: &Tags) -> Option<Tags> {
        if matches!(self, Self::NoOp) {
            return None;
        }
        let mut changed = false;
        let clean: Tags = tags
            .iter()
            .map(|(name, value)| {
                let clean = self.apply(value);
                changed |= clean != *value;
                (name.clone(), clean)
            })
            .collect();
        changed.then_some(clean)
    }
}

/// Builds an [`AppOpticsClient`].
///
/// ```
/// use std::time::Duration;
/// use appoptics_client::{AppOpticsClient, Sanitizer, model::tags};
///
/// let client = AppOpticsClient::builder()
///     .with_token("0123456789abcdef")
///     .with_tags(tags([("service", "api")]))
///     .with_sanitizer(Sanitizer::MetricName)
///     .with_timeout(Duration::from_secs(5))
///     .build()?;
/// assert_eq!(client.tags()["service"], "api");
/// # Ok::<_, metrics_core::Error>(())
/// ```
#[must_use]
pub struct AppOpticsClientBuilder {
    token: Option<Secret<String>>,
    base_url: String,
    tags: Tags,
    sanitizer: Sanitizer,
    tag_sanitizer: TagSanitizer,
    timeout: Option<Duration>,
    options: Option<ClientOptions>,
    retry: RetryConfig,
    source_metrics: Vec<String>,
    env_errors: Vec<String>,
}

impl fmt::Debug for AppOpticsClientBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AppOpticsClientBuilder")
            .field("token", &self.token.as_ref().map(|_| "***"))
            .field("base_url", &redact_userinfo(&self.base_url))
            .field("tags", &self.tags)
            .field("sanitizer", &self.sanitizer)
            .field("tag_sanitizer", &self.tag_sanitizer)
            .field("timeout", &self.timeout)
            .field("options", &self.options)
            .field("retry", &self.retry)
            .field("source_metrics", &self.source_metrics)
            .finish_non_exhaustive()
    }
}

impl Default for AppOpticsClientBuilder {
    fn default() -> Self {
        Self {
            token: None,
            base_url: DEFAULT_BASE_URL.to_owned(),
            tags: Tags::new(),
            sanitizer: Sanitizer::NoOp,
            tag_sanitizer: TagSanitizer::NoOp,
            timeout: None,
            options: None,
            retry: RetryConfig::default(),
            source_metrics: Vec::new(),
            env_errors: Vec::new(),
        }
    }
}

impl AppOpticsClientBuilder {
    /// A builder with the defaults: the public API URL, no tags, no sanitizer, 10 s timeout.
    pub fn new() -> Self {
        Self::default()
    }

    /// Reads the documented environment variables:
    ///
    /// | variable | setting |
    /// |---|---|
    /// | `APPOPTICS_TOKEN` | the API token (required by [`build`](Self::build)) |
    /// | `APPOPTICS_BASE_URL` | the API base URL, default `https://api.appoptics.com/v1` |
    /// | `APPOPTICS_TIMEOUT` | request timeout in seconds (decimals allowed), default 10 |
    /// | `APPOPTICS_TAGS` | connection tags, `name=value,name=value` |
    /// | `APPOPTICS_METRICS` | metric names the [`MetricsSource`](metrics_core::MetricsSource) reads, comma-separated |
    ///
    /// A malformed value is reported by `build()` as [`Error::Config`].
    pub fn from_env() -> Self {
        Self::from_env_with(&Env::process())
    }

    /// Like [`from_env`](Self::from_env), reading the variables from `env` (for tests, and
    /// for configuration that is not in the process environment).
    ///
    /// ```
    /// use metrics_core::Env;
    /// use appoptics_client::AppOpticsClientBuilder;
    ///
    /// let env = Env::from_pairs([("APPOPTICS_TOKEN", "0123abcd"), ("APPOPTICS_TAGS", "service=api")]);
    /// let client = AppOpticsClientBuilder::from_env_with(&env).build()?;
    /// assert_eq!(client.tags()["service"], "api");
    /// # Ok::<_, metrics_core::Error>(())
    /// ```
    pub fn from_env_with(env: &Env) -> Self {
        let mut builder = Self::new();
        if let Some(token) = env.secret("APPOPTICS_TOKEN") {
            builder.token = Some(token);
        }
        if let Some(url) = env.get("APPOPTICS_BASE_URL") {
            builder = builder.with_base_url(url);
        }
        match env.seconds(BACKEND, "APPOPTICS_TIMEOUT") {
            Ok(Some(timeout)) if !timeout.is_zero() => builder = builder.with_timeout(timeout),
            Ok(Some(_)) => builder
                .env_errors
                .push("APPOPTICS_TIMEOUT must be more than 0 seconds".to_owned()),
            Ok(None) => {}
            Err(error) => builder.env_errors.push(inner_message(&error)),
        }
        for pair in env.list("APPOPTICS_TAGS") {
            match pair.split_once('=') {
                Some((name, value)) => {
                    builder
                        .tags
                        .insert(name.trim().to_owned(), value.trim().to_owned());
                }
                // The entry is not quoted: a misplaced credential must not end up in an error.
                None => builder
                    .env_errors
                    .push("APPOPTICS_TAGS has an entry that is not name=value".to_owned()),
            }
        }
        builder.source_metrics.extend(env.list("APPOPTICS_METRICS"));
        builder
    }

    /// Sets the API token (sent as the Basic-auth user, with an empty password).
    pub fn with_token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(Secret::new(token.into()));
        self
    }

    /// Sets the base URL, including the API version path (`https://api.appoptics.com/v1`,
    /// `https://metrics-api.librato.com/v1`, or an emulator's `http://127.0.0.1:PORT/v1`).
    pub fn with_base_url(mut self, base_url: impl Into<String>) -> Self {
        self.base_url = base_url.into();
        self
    }

    /// Sets the connection-level tags, inherited by measurements without their own.
    pub fn with_tags(mut self, tags: Tags) -> Self {
        self.tags = tags;
        self
    }

    /// Adds one connection-level tag.
    pub fn with_tag(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.tags.insert(name.into(), value.into());
        self
    }

    /// Sets the metric-name sanitizer.
    pub fn with_sanitizer(mut self, sanitizer: Sanitizer) -> Self {
        self.sanitizer = sanitizer;
        self
    }

    /// Sets the tag-value sanitizer (default none: invalid values are refused).
    pub fn with_tag_sanitizer(mut self, sanitizer: TagSanitizer) -> Self {
        self.tag_sanitizer = sanitizer;
        self
    }

    /// Sets the request timeout (default 10 s). Wins over the timeout of
    /// [`with_client_options`](Self::with_client_options).
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Sets the HTTP options (user agent, pool, TLS, body limit, an injected client). Their
    /// timeout is used unless [`with_timeout`](Self::with_timeout) is set.
    pub fn with_client_options(mut self, options: ClientOptions) -> Self {
        self.options = Some(options);
        self
    }

    /// Sets the retry policy. Reads, updates and deletes are retried on connect errors,
    /// timeouts, 429 and 5xx a bounded number of times; measurement posts never are (see
    /// [`crate::queue`]).
    pub fn with_retry(mut self, retry: RetryConfig) -> Self {
        self.retry = retry;
        self
    }

    /// The metric names the [`MetricsSource`](metrics_core::MetricsSource) implementation
    /// reads.
    pub fn with_source_metrics<I, S>(mut self, names: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.source_metrics
            .extend(names.into_iter().map(Into::into));
        self
    }

    /// Validates the settings and builds the client with its connection pool.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] for a missing, empty or non-ASCII token, an invalid base URL,
    /// invalid connection tags or source metric names, or a malformed environment variable.
    pub fn build(self) -> Result<AppOpticsClient> {
        if let Some(problem) = self.env_errors.first() {
            return Err(Error::config(BACKEND, problem.clone()));
        }
        let Some(token) = self.token else {
            return Err(Error::config(
                BACKEND,
                "no API token; set APPOPTICS_TOKEN or call with_token (the token is on the organization settings page)",
            ));
        };
        if token.expose().trim().is_empty() {
            return Err(Error::config(BACKEND, "the API token is empty"));
        }
        if !token.expose().is_ascii() || token.expose().chars().any(|c| c.is_ascii_control()) {
            return Err(Error::config(
                BACKEND,
                "the API token must be printable ASCII (AppOptics tokens are hexadecimal)",
            ));
        }
        let tags = self.tag_sanitizer.apply_to(&self.tags).unwrap_or(self.tags);
        crate::validate::tags(&tags).map_err(|e| {
            Error::config(BACKEND, format!("connection tags: {}", inner_message(&e)))
        })?;
        let mut source_metrics = Vec::with_capacity(self.source_metrics.len());
        for name in &self.source_metrics {
            let name = self.sanitizer.apply(name);
            crate::validate::metric_name(&name).map_err(|e| {
                Error::config(BACKEND, format!("source metrics: {}", inner_message(&e)))
            })?;
            source_metrics.push(name);
        }

        let user_options = self.options.is_some();
        let mut options = self
            .options
            .unwrap_or_else(|| ClientOptions::new().with_user_agent(DEFAULT_USER_AGENT));
        if let Some(timeout) = self.timeout {
            options = options.with_timeout(timeout);
        } else if !user_options {
            options = options.with_timeout(DEFAULT_TIMEOUT);
        }
        let http = HttpClient::builder(BACKEND, self.base_url.clone())
            .with_auth(Auth::Basic {
                username: token,
                password: Secret::new(String::new()),
            })
            .with_options(&options)
            .with_retry(self.retry)
            .with_error_body_parser(parse_error_body)
            .build()?;
        let base_path = Url::parse(self.base_url.trim())
            .map(|url| url.path().trim_end_matches('/').to_owned())
            .unwrap_or_default();
        Ok(AppOpticsClient {
            inner: Arc::new(Inner {
                http,
                base_path,
                inherited: Arc::new(tags),
                sanitizer: self.sanitizer,
                tag_sanitizer: self.tag_sanitizer,
                source_metrics,
                rate_limits: Arc::new(Mutex::new(LastRateLimits::default())),
            }),
        })
    }
}

/// `url` with any user and password (`https://user:PW@host`) shown as `***`: the pipeline
/// moves them into Basic auth, but the builder holds the URL as it was given.
fn redact_userinfo(url: &str) -> String {
    let Some(scheme_end) = url.find("://").map(|i| i + 3) else {
        return url.to_owned();
    };
    let authority_end = url[scheme_end..]
        .find(['/', '?', '#'])
        .map_or(url.len(), |i| scheme_end + i);
    match url[scheme_end..authority_end].rfind('@') {
        Some(at) => format!("{}***{}", &url[..scheme_end], &url[scheme_end + at..]),
        None => url.to_owned(),
    }
}

/// The message of an error without its `appoptics: invalid input:` prefix.
fn inner_message(error: &Error) -> String {
    match error {
        Error::InvalidInput { message, .. } | Error::Config { message, .. } => message.clone(),
        other => other.to_string(),
    }
}

/// A client of the AppOptics Metrics API v1. Cheap to clone; clones share one connection
/// pool.
///
/// ```no_run
/// # async fn run() -> metrics_core::Result<()> {
/// use appoptics_client::{AppOpticsClient, Measurement, MeasurementsQuery, model::tags};
/// use std::time::Duration;
///
/// let client = AppOpticsClient::builder().with_token("0123456789abcdef").build()?;
/// client
///     .submit(Measurement::new("temperature", 80.0).with_tags(tags([("city", "sf")])))
///     .await?;
/// let read = client
///     .get_measurements("temperature", &MeasurementsQuery::last(Duration::from_secs(900)).with_resolution(1))
///     .await?;
/// println!("{:?}", read.series);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct AppOpticsClient {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) http: HttpClient,
    base_path: String,
    /// The connection tags, shared with queued measurements that inherit them.
    pub(crate) inherited: Arc<Tags>,
    pub(crate) sanitizer: Sanitizer,
    pub(crate) tag_sanitizer: TagSanitizer,
    pub(crate) source_metrics: Vec<String>,
    rate_limits: Arc<Mutex<LastRateLimits>>,
}

/// The rate-limit headers of the last response that had a readable one, kept as sent and
/// parsed only when [`AppOpticsClient::rate_limits`] asks: parsing them on every response
/// cost more than the rest of a one-measurement submit's own work.
#[derive(Clone, Debug, Default)]
struct LastRateLimits {
    std: Option<HeaderValue>,
    agg: Option<HeaderValue>,
}

impl LastRateLimits {
    /// The headers of `headers` that [`RateLimit::parse`]
    /// reads as limits (text with a `key=value` in it); `None` when neither is.
    fn of(headers: &HeaderMap) -> Option<Self> {
        let readable = |name: &str| {
            headers
                .get(name)
                .filter(|value| value.to_str().is_ok() && value.as_bytes().contains(&b'='))
                .cloned()
        };
        let last = Self {
            std: readable(RATE_LIMIT_STD_HEADER),
            agg: readable(RATE_LIMIT_AGG_HEADER),
        };
        (last.std.is_some() || last.agg.is_some()).then_some(last)
    }

    fn parse(&self) -> RateLimits {
        let parse = |value: &Option<HeaderValue>| {
            value
                .as_ref()
                .and_then(|v| v.to_str().ok())
                .and_then(RateLimit::parse)
        };
        RateLimits {
            std: parse(&self.std),
            agg: parse(&self.agg),
        }
    }
}

impl fmt::Debug for AppOpticsClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AppOpticsClient")
            .field("http", &self.inner.http)
            .field("tags", &self.inner.inherited)
            .field("sanitizer", &self.inner.sanitizer)
            .field("tag_sanitizer", &self.inner.tag_sanitizer)
            .field("source_metrics", &self.inner.source_metrics)
            .finish_non_exhaustive()
    }
}

impl AppOpticsClient {
    /// Starts a builder.
    pub fn builder() -> AppOpticsClientBuilder {
        AppOpticsClientBuilder::new()
    }

    /// The server's `host:port`.
    pub fn endpoint(&self) -> &str {
        self.inner.http.endpoint()
    }

    /// The connection-level tags.
    pub fn tags(&self) -> &Tags {
        &self.inner.inherited
    }

    /// A client with these connection tags instead (the library's `set_tags`), sharing this
    /// client's connection pool.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidInput`] for an invalid tag.
    pub fn with_tags(&self, tags: Tags) -> Result<Self> {
        let tags = self.sanitize_tags(tags);
        crate::validate::tags(&tags)?;
        Ok(Self {
            inner: Arc::new(Inner {
                http: self.inner.http.clone(),
                base_path: self.inner.base_path.clone(),
                inherited: Arc::new(tags),
                sanitizer: self.inner.sanitizer,
                tag_sanitizer: self.inner.tag_sanitizer,
                source_metrics: self.inner.source_metrics.clone(),
                rate_limits: Arc::clone(&self.inner.rate_limits),
            }),
        })
    }

    /// A client with `tags` merged over its connection tags (the library's `add_tags`).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidInput`] for an invalid tag.
    pub fn with_added_tags(&self, tags: Tags) -> Result<Self> {
        let mut merged = self.tags().clone();
        merged.extend(tags);
        self.with_tags(merged)
    }

    /// The rate limits the server reported with its last successful response.
    pub fn rate_limits(&self) -> RateLimits {
        self.inner
            .rate_limits
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .parse()
    }

    /// The metric name after the configured sanitizer.
    pub fn sanitize(&self, name: &str) -> String {
        self.inner.sanitizer.apply(name)
    }

    /// The tags after the configured tag-value sanitizer.
    pub fn sanitize_tags(&self, tags: Tags) -> Tags {
        self.inner.tag_sanitizer.apply_to(&tags).unwrap_or(tags)
    }

    /// Starts building a batching [`MeasurementQueue`](crate::MeasurementQueue).
    pub fn queue(&self) -> QueueBuilder {
        QueueBuilder::new(self.clone())
    }

    /// A sanitized, validated metric name.
    pub(crate) fn metric_name(&self, name: &str) -> Result<String> {
        let name = self.sanitize(name);
        crate::validate::metric_name(&name)?;
        Ok(name)
    }

    /// Sends a request through the pipeline, records the rate limits, and maps what the
    /// core cannot know about AppOptics: the 403 account rate limit is a
    /// [`Error::RateLimited`], and a write answered 2xx with `errors` is a failure.
    pub(crate) async fn execute(&self, request: Request, write: bool) -> Result<Response> {
        match self.inner.http.send(request).await {
            Ok(response) => {
                if let Some(last) = LastRateLimits::of(response.headers()) {
                    *self
                        .inner
                        .rate_limits
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner) = last;
                }
                if write {
                    check_success_body(&response)?;
                }
                Ok(response)
            }
            Err(error @ Error::Forbidden { .. }) => Err(account_rate_limit(error)),
            Err(error) => Err(error),
        }
    }

    /// GET and decode.
    pub(crate) async fn get_json<T: DeserializeOwned>(&self, request: Request) -> Result<T> {
        self.execute(request, false).await?.json()
    }

    /// A write whose answer, when it has a body, is `T`; `None` for 204 or an empty body.
    pub(crate) async fn write_json<T: DeserializeOwned>(
        &self,
        request: Request,
    ) -> Result<Option<T>> {
        let response = self.execute(request, true).await?;
        if response.status() == StatusCode::NO_CONTENT || is_blank(response.body()) {
            return Ok(None);
        }
        response.json().map(Some)
    }

    /// A write whose answer is not needed.
    pub(crate) async fn write(&self, request: Request) -> Result<()> {
        self.execute(request, true).await.map(|_| ())
    }

    /// Turns a `links[rel=next]` href into a path relative to the base URL. Only the path
    /// and query are used, so a link can never send the token to another host.
    pub(crate) fn relative_link(&self, href: &str) -> Result<String> {
        let path_and_query = if href.starts_with("http://") || href.starts_with("https://") {
            let url = Url::parse(href).map_err(|e| {
                Error::decode(
                    BACKEND,
                    "links",
                    format!("the next link `{href}` is not a URL: {e}"),
                )
            })?;
            match url.query() {
                Some(query) => format!("{}?{query}", url.path()),
                None => url.path().to_owned(),
            }
        } else {
            href.to_owned()
        };
        let base = &self.inner.base_path;
        let relative = if base.is_empty() {
            path_and_query.trim_start_matches('/')
        } else {
            path_and_query
                .strip_prefix(base.as_str())
                .and_then(|rest| rest.strip_prefix('/'))
                .ok_or_else(|| {
                    Error::decode(
                        BACKEND,
                        "links",
                        format!("the next link `{href}` is outside the API base path `{base}`"),
                    )
                })?
        };
        Ok(relative.to_owned())
    }

    // -- metrics ------------------------------------------------------------------------------

    /// One page of metrics (`GET /v1/metrics`).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidInput`] for a page length outside 1..=100; any request error.
    pub async fn list_metrics(&self, params: &ListParams) -> Result<Page<Metric>> {
        params.validate()?;
        self.get_json(params.request("metrics", None, None)?).await
    }

    /// Every metric matching `params`, following the pages until `found` is reached.
    ///
    /// ```no_run
    /// # async fn run(client: appoptics_client::AppOpticsClient) -> metrics_core::Result<()> {
    /// use futures_util::TryStreamExt as _;
    /// use appoptics_client::pagination::ListParams;
    ///
    /// let all: Vec<_> = client.list_all_metrics(ListParams::new().with_name("api")).try_collect().await?;
    /// # Ok(()) }
    /// ```
    pub fn list_all_metrics(
        &self,
        params: ListParams,
    ) -> impl Stream<Item = Result<Metric>> + Send + 'static {
        paginate(self.clone(), "metrics", params)
    }

    /// A metric's description (`GET /v1/metrics/:name`), gauge or composite.
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] when it does not exist; [`Error::InvalidInput`] for an invalid name.
    pub async fn get_metric(&self, name: &str) -> Result<Metric> {
        let name = self.metric_name(name)?;
        self.get_json(Request::get(format!(
            "metrics/{}",
            encode_path_segment(&name)
        )))
        .await
    }

    /// Creates a metric (`PUT /v1/metrics/:name`, type `gauge` unless `spec` says
    /// otherwise). When it already existed the server updates it instead and the current
    /// description is read back.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidInput`] for an invalid name; any request error.
    pub async fn create_metric(&self, name: &str, spec: &MetricSpec) -> Result<Metric> {
        let name = self.metric_name(name)?;
        let mut body = serde_json::to_value(spec)
            .map_err(|e| Error::invalid_input(BACKEND, format!("metric spec: {e}")))?;
        if let Value::Object(map) = &mut body {
            map.insert("name".into(), Value::String(name.clone()));
            map.entry("type")
                .or_insert_with(|| Value::String(MetricType::Gauge.as_str().to_owned()));
        }
        let request = Request::put(format!("metrics/{}", encode_path_segment(&name)))
            .with_json(BACKEND, &body)?;
        match self.write_json::<Metric>(request).await? {
            Some(metric) => Ok(metric),
            None => self.get_metric(&name).await,
        }
    }

    /// Creates a saved composite metric.
    ///
    /// # Errors
    ///
    /// As [`create_metric`](Self::create_metric); [`Error::InvalidInput`] for an empty
    /// expression.
    pub async fn create_composite(
        &self,
        name: &str,
        compose: &str,
        spec: &MetricSpec,
    ) -> Result<Metric> {
        if compose.trim().is_empty() {
            return Err(Error::invalid_input(
                BACKEND,
                "the composite expression is empty",
            ));
        }
        self.create_metric(name, &spec.clone().with_composite(compose))
            .await
    }

    /// Updates a metric's properties (`PUT /v1/metrics/:name`); unset fields are left as
    /// they are.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidInput`] for an invalid name; any request error.
    pub async fn update_metric(&self, name: &str, spec: &MetricSpec) -> Result<()> {
        let name = self.metric_name(name)?;
        let request = Request::put(format!("metrics/{}", encode_path_segment(&name)))
            .with_json(BACKEND, spec)?;
        self.write(request).await
    }

    /// Updates several metrics at once (`PUT /v1/metrics` with `names`).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidInput`] for an empty name list; any request error.
    pub async fn update_metrics(&self, selector: &MetricSelector, spec: &MetricSpec) -> Result<()> {
        let selector = self.selector(selector)?;
        let mut body = serde_json::to_value(spec)
            .map_err(|e| Error::invalid_input(BACKEND, format!("metric spec: {e}")))?;
        if let Value::Object(map) = &mut body {
            map.insert(
                "names".into(),
                serde_json::to_value(&selector).unwrap_or(Value::Null),
            );
        }
        self.write(Request::put("metrics").with_json(BACKEND, &body)?)
            .await
    }

    /// Deletes a metric and all its measurements (`DELETE /v1/metrics/:name`).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidInput`] for an invalid name; any request error.
    pub async fn delete_metric(&self, name: &str) -> Result<()> {
        let name = self.metric_name(name)?;
        self.write(Request::delete(format!(
            "metrics/{}",
            encode_path_segment(&name)
        )))
        .await
    }

    /// Deletes several metrics (`DELETE /v1/metrics` with `names`: a list or a wildcard
    /// pattern such as `cpu*.90`).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidInput`] for an empty list or an invalid name; any request error.
    pub async fn delete_metrics(&self, selector: &MetricSelector) -> Result<()> {
        let selector = self.selector(selector)?;
        let body = serde_json::json!({ "names": selector });
        self.write(Request::delete("metrics").with_json(BACKEND, &body)?)
            .await
    }

    fn selector(&self, selector: &MetricSelector) -> Result<MetricSelector> {
        match selector {
            MetricSelector::Names(names) => {
                if names.is_empty() {
                    return Err(Error::invalid_input(BACKEND, "no metric names given"));
                }
                names
                    .iter()
                    .map(|n| self.metric_name(n))
                    .collect::<Result<Vec<_>>>()
                    .map(MetricSelector::Names)
            }
            MetricSelector::Pattern(pattern) => {
                if pattern.trim().is_empty() {
                    return Err(Error::invalid_input(BACKEND, "the name pattern is empty"));
                }
                Ok(MetricSelector::Pattern(pattern.clone()))
            }
        }
    }
}

/// The 403 the API sends when the whole account is rate limited is a rate limit: reported
/// as [`Error::RateLimited`], with the wait its rate-limit headers give. Any other 403 is
/// returned as it is.
fn account_rate_limit(error: Error) -> Error {
    let Some(detail) = AppOpticsError::of(&error)
        .filter(|d| d.kind == AppOpticsErrorKind::AccountRateLimited)
        .cloned()
    else {
        return error;
    };
    let Error::Forbidden {
        backend,
        code,
        message,
        ..
    } = error
    else {
        return error;
    };
    Error::RateLimited {
        backend,
        retry_after: detail.rate_limit_reset(),
        code,
        message,
        detail: Some(Arc::new(detail)),
    }
}

fn is_blank(body: &[u8]) -> bool {
    body.iter().all(u8::is_ascii_whitespace)
}

/// A 2xx whose body still reports `errors` did not (fully) succeed: the Java and Node
/// clients treat it as a failure, and so does this one.
fn check_success_body(response: &Response) -> Result<()> {
    if is_blank(response.body()) {
        return Ok(());
    }
    let Ok(Value::Object(object)) = serde_json::from_slice::<Value>(response.body()) else {
        return Ok(());
    };
    match object.get("errors") {
        Some(errors) if errors_present(errors) => Err(Error::Api {
            backend: BACKEND,
            status: response.status().as_u16(),
            retry_after: None,
            code: Some(partial_failure_code()),
            message: format!(
                "the server accepted the request but reported errors: {}",
                render_errors(errors)
            ),
            detail: Some(Arc::new(partial_failure(errors, response.headers()))),
        }),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Before, the builder's `Debug` showed the base URL as given, password included.
    #[test]
    fn the_builder_never_shows_url_credentials() {
        let builder = AppOpticsClient::builder()
            .with_token("tok-SECRET")
            .with_base_url("http://user:PW-SECRET@127.0.0.1:9/v1");
        let shown = format!("{builder:?}");
        assert!(!shown.contains("SECRET"), "{shown}");
        assert!(shown.contains("http://***@127.0.0.1:9/v1"), "{shown}");
        assert_eq!(
            redact_userinfo("https://api.appoptics.com/v1"),
            "https://api.appoptics.com/v1"
        );
        assert_eq!(
            redact_userinfo("https://a@b@host/x@y"),
            "https://***@host/x@y"
        );
        assert_eq!(redact_userinfo("not a url"), "not a url");
    }

    #[test]
    fn the_environment_is_read_through_env() {
        let env = Env::from_pairs([("APPOPTICS_TOKEN", " key "), ("APPOPTICS_TIMEOUT", "0")]);
        let err = AppOpticsClientBuilder::from_env_with(&env)
            .build()
            .unwrap_err();
        assert!(err.to_string().contains("APPOPTICS_TIMEOUT"), "{err}");
        let env = Env::from_pairs([("APPOPTICS_TOKEN", "key"), ("APPOPTICS_TAGS", "secret-ish")]);
        let err = AppOpticsClientBuilder::from_env_with(&env)
            .build()
            .unwrap_err();
        assert!(!err.to_string().contains("secret-ish"), "{err}");
    }

    #[test]
    fn rate_limit_headers_are_kept_as_sent_and_read_as_from_headers_reads_them() {
        let mut headers = HeaderMap::new();
        assert!(LastRateLimits::of(&headers).is_none());
        headers.insert(RATE_LIMIT_STD_HEADER, HeaderValue::from_static("garbage"));
        assert!(
            LastRateLimits::of(&headers).is_none(),
            "nothing in it is key=value: the last limits stay"
        );
        for std in [
            "limit=300,remaining=12,reset=50",
            " Limit = 5 , x=y",
            "=",
            "reset=x",
        ] {
            headers.insert(RATE_LIMIT_STD_HEADER, HeaderValue::from_static(std));
            headers.insert(
                RATE_LIMIT_AGG_HEADER,
                HeaderValue::from_static("limit=1000,remaining=0,reset=7"),
            );
            let last = LastRateLimits::of(&headers).unwrap();
            assert_eq!(last.parse(), RateLimits::from_headers(&headers), "{std:?}");
        }
    }
}
