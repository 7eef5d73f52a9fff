//! [`VumiClient`] and its builder.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use metrics_core::http::{
    ErrorBody, HttpClient, Request, Response, body_snippet, default_error_body, redact_url,
};
use metrics_core::reqwest::StatusCode;
use metrics_core::reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use metrics_core::{Auth, ClientOptions, Env, Error, Result, RetryConfig, Secret};

use crate::BACKEND;
use crate::decode::decode;
use crate::model::{FiredMetric, MetricName, MetricsData, MetricsQuery};

/// The server's default `max_response_size`: the most data points one query may ask for.
pub const DEFAULT_MAX_POINTS: u64 = 10_000;

/// The API route below the base URL. The trailing slash is part of the route: without it
/// the server answers 404 with an HTML page.
const METRICS_PATH: &str = "metrics/";

/// The header that names the account when the server trusts its proxy (or uses HTTP Basic).
const OWNER_HEADER: HeaderName = HeaderName::from_static("x-owner-id");

/// Client for the Vumi Go metrics API (go-metrics-api): query summarized time series and
/// fire metric values.
///
/// Cheap to clone; clones share one connection pool.
///
/// ```no_run
/// # async fn run() -> metrics_core::Result<()> {
/// use vumi_client::{MetricsQuery, Nulls, VumiClient};
///
/// let client = VumiClient::builder()
///     .with_base_url("https://go.vumi.org/api/v1/go")
///     .with_token("my-token")
///     .build()?;
/// let data = client
///     .query(
///         &MetricsQuery::new()
///             .with_metric("stores.default.questions_completed.sum")
///             .with_from("-7d")
///             .with_interval("1d")
///             .with_nulls(Nulls::Keep),
///     )
///     .await?;
/// for series in &data {
///     println!("{}: {} points", series.name, series.points.len());
/// }
/// let fired = client.fire([("stores.default.questions_completed.sum", 1.0)]).await?;
/// assert_eq!(fired[0].value, 1.0);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct VumiClient {
    inner: Arc<Inner>,
}

struct Inner {
    http: HttpClient,
    credentials: Credentials,
    owner: Option<HeaderValue>,
    max_points: Option<u64>,
    metrics: Vec<MetricName>,
}

impl fmt::Debug for VumiClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VumiClient")
            .field("http", &self.inner.http)
            .field("owner_id", &self.inner.owner.as_ref().map(|_| "***"))
            .field("max_points", &self.inner.max_points)
            .field("metrics", &self.inner.metrics)
            .finish_non_exhaustive()
    }
}

impl VumiClient {
    /// Starts configuring a client.
    pub fn builder() -> VumiClientBuilder {
        VumiClientBuilder::default()
    }

    /// The metric names [`MetricsSource::collect`](metrics_core::MetricsSource::collect)
    /// reads.
    pub fn metrics(&self) -> &[MetricName] {
        &self.inner.metrics
    }

    /// The size limit checked before a query is sent (`None`: not checked).
    pub fn max_points(&self) -> Option<u64> {
        self.inner.max_points
    }

    /// The base URL, as it may be shown.
    pub fn base_url(&self) -> &str {
        self.inner.http.redacted_base_url()
    }

    /// The server's `host:port`.
    pub fn endpoint(&self) -> &str {
        self.inner.http.endpoint()
    }

    /// `GET <prefix>/metrics/`: the summarized series of the query's metrics, in the order
    /// asked for.
    ///
    /// A long list of metrics is split over several requests, one after the other: at most
    /// 50 metrics each (the server pastes every metric into one graphite URL, and graphite
    /// fails on long ones), and as few as the size limit ([`VumiClientBuilder::with_max_points`])
    /// needs, since the server counts points × metrics per request. The answers are merged
    /// in request order. The first failing request fails the query.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidInput`] before any request for everything
    /// [`MetricsQuery::validate`] checks; [`Error::Unauthenticated`] /
    /// [`Error::Forbidden`] for rejected or missing credentials, naming the setting that
    /// fixes them; [`Error::Api`] with the server's `reason` for other statuses (500 `Got
    /// error response interacting with metrics backend` when graphite failed);
    /// [`Error::Decode`], [`Error::Timeout`], [`Error::Transport`].
    pub async fn query(&self, query: &MetricsQuery) -> Result<MetricsData> {
        let requests = query.requests(self.inner.max_points)?;
        let mut series = Vec::new();
        for params in requests {
            let request = params
                .into_iter()
                .fold(Request::get(METRICS_PATH), |request, (name, value)| {
                    request.with_query(name, value)
                });
            let response = self.send(request).await?;
            series.extend(response.decode(decode)?);
        }
        Ok(MetricsData::in_order(series, &query.metrics()))
    }

    /// `POST <prefix>/metrics/`: fires one value per metric. The confirmations come back in
    /// the order given (the server answers in any order; they are matched by name).
    ///
    /// The server validates every entry before publishing any (all or nothing), and queues
    /// them for Vumi's aggregators rather than storing them: a value can be read back only
    /// after they wrote it to graphite, and on a server with auto-prefixing on (the default)
    /// not at all (go-metrics-api issue 21).
    ///
    /// # Delivery
    ///
    /// The server aggregates the values (`sum`, `avg`, …), so a request it may already
    /// have acted on is never sent again: a second copy could count twice. Each call ends
    /// confirmed or with an error; on the way, the client resends only what certainly
    /// never reached the server or was refused unprocessed, within the [`RetryConfig`]'s
    /// `max_retries` and `retry_timeout`, and sends nothing in the background:
    ///
    /// | outcome | resent by the client | handed back | may the server have counted it? |
    /// |---|---|---|---|
    /// | accepted (200) | — | the confirmations | yes, once |
    /// | refused connection (nothing sent) | yes, with backoff | [`Error::Transport`] once retries run out | no |
    /// | TLS handshake failed | no | [`Error::Tls`] | no |
    /// | connection closed on a reused socket before any response | only if none of the request was written (the connection pool then sends it on a new connection) | [`Error::Transport`] | yes, once some of it was written: it is not resent |
    /// | timeout after sending | no | [`Error::Timeout`] | yes |
    /// | 4xx other than 408 and 429 (400 invalid entry, 401, 403, 404, 405) | no | the mapped error ([`Error::Api`], [`Error::Unauthenticated`], [`Error::Forbidden`], [`Error::NotFound`], [`Error::Unsupported`]) | no: the server validates every entry before publishing any |
    /// | 429 | yes, after `Retry-After` or the backoff (the server said it did not act) | [`Error::RateLimited`] once retries run out, or at once when `Retry-After` asks for longer than `retry_timeout` | no |
    /// | 408, 5xx | no | [`Error::Api`] with the status | yes (500 `Failed to fire metrics.` may come after publishing) |
    /// | 200 whose body cannot be read or does not confirm the names sent | no | [`Error::Transport`], [`Error::BodyTooLarge`], [`Error::Decode`] | yes: the server accepted them |
    ///
    /// Nothing is kept or resent after `fire` returns, and nothing is dropped silently: the
    /// values not confirmed are those of a call that returned an error. The client keeps no
    /// copy of them, so a caller that may resend keeps its own (`fire` takes any iterator,
    /// for example over a borrowed slice), and resends only where the table says the server
    /// cannot have counted them, or where a double count does no harm (`last`, `max`,
    /// `min`). Dropping the future mid-request (shutdown, a caller's own timeout) is a
    /// timeout after sending: the values may or may not have been counted.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidInput`] before any request for an invalid name, a value that is not
    /// finite, or a name given twice; [`Error::Unsupported`] when the server has no `POST`
    /// (go-metrics-api before 0.1.5); [`Error::Decode`] when the confirmations do not
    /// match the names sent; the errors of [`VumiClient::query`].
    pub async fn fire<I, N>(&self, metrics: I) -> Result<Vec<FiredMetric>>
    where
        I: IntoIterator<Item = (N, f64)>,
        N: TryInto<MetricName>,
        N::Error: fmt::Display,
    {
        let mut names = Vec::new();
        let mut body = serde_json::Map::new();
        for (name, value) in metrics {
            let name: MetricName = name
                .try_into()
                .map_err(|e| Error::invalid_input(BACKEND, e.to_string()))?;
            let number = serde_json::Number::from_f64(value)
                .filter(|_| value.is_finite())
                .ok_or_else(|| {
                    Error::invalid_input(
                        BACKEND,
                        format!(
                            "the value of `{name}` is {value}; only finite numbers can be fired (the server echoes NaN and Infinity as invalid JSON)"
                        ),
                    )
                })?;
            if body
                .insert(name.as_str().to_owned(), number.into())
                .is_some()
            {
                return Err(Error::invalid_input(
                    BACKEND,
                    format!("`{name}` is given twice; fire one value per metric per request"),
                ));
            }
            names.push(name);
        }
        let request = Request::post(METRICS_PATH).with_json(BACKEND, &body)?;
        let response = self.send(request).await.map_err(|error| {
            if error.status() == Some(405) {
                Error::unsupported(
                    BACKEND,
                    Some(405),
                    "this server does not accept POST /metrics/; firing metrics needs go-metrics-api 0.1.5 or later",
                )
            } else {
                error
            }
        })?;
        let confirmed: Vec<FiredMetric> = response.json()?;
        match_confirmations(names, confirmed)
    }

    /// Fires one value; see [`VumiClient::fire`].
    ///
    /// # Errors
    ///
    /// As [`VumiClient::fire`].
    pub async fn fire_one<N>(&self, metric: N, value: f64) -> Result<FiredMetric>
    where
        N: TryInto<MetricName>,
        N::Error: fmt::Display,
    {
        let mut fired = self.fire([(metric, value)]).await?;
        fired
            .pop()
            .ok_or_else(|| Error::decode(BACKEND, "", "the server confirmed no metric"))
    }

    /// `GET /health/` at the server's root (never under the path prefix, no credentials
    /// needed): `Ok` when the server answers 200 `OK`.
    ///
    /// # Errors
    ///
    /// The server's error status, [`Error::Decode`] for a 200 with another body,
    /// [`Error::Timeout`], [`Error::Transport`].
    pub async fn health(&self) -> Result<()> {
        let response = self
            .inner
            .http
            .send(Request::get("health/").from_origin())
            .await?;
        let text = response.text();
        if text.trim() == "OK" {
            Ok(())
        } else {
            Err(Error::decode(
                BACKEND,
                "",
                format!(
                    "/health/ answered `{}` instead of `OK`",
                    body_snippet(text.as_bytes()).unwrap_or_default()
                ),
            ))
        }
    }

    /// Sends an API request with the owner header, and names the setting that fixes a
    /// rejection.
    async fn send(&self, request: Request) -> Result<Response> {
        let request = match &self.inner.owner {
            Some(owner) => request.with_header(OWNER_HEADER, owner.clone()),
            None => request,
        };
        self.inner.http.send(request).await.map_err(|error| {
            explain_rejection(error, self.inner.credentials, self.inner.owner.is_some())
        })
    }
}

/// The credentials a client sends, as far as explaining a rejection needs them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Credentials {
    Anonymous,
    Token,
    Basic,
}

/// Adds to a 401 or 403 the setting that fixes it, from the server's reason and what this
/// client sent (the server's reason alone does not say: its 401 `Unauthorized` means "no
/// owner" to a server reading `X-Owner-ID` and "no token" to one behind an auth bouncer).
fn explain_rejection(mut error: Error, credentials: Credentials, owner: bool) -> Error {
    let hint = match &error {
        Error::Unauthenticated { .. } => {
            let rejection = error
                .detail::<VumiError>()
                .map_or(Rejection::Other, |detail| detail.rejection);
            Some(unauthenticated_hint(rejection, credentials, owner))
        }
        Error::Forbidden { .. } if credentials == Credentials::Token => Some(
            "the server's auth bouncer does not know the token set with with_token (VUMI_TOKEN)",
        ),
        _ => None,
    };
    if let (Some(hint), Error::Unauthenticated { message, .. } | Error::Forbidden { message, .. }) =
        (hint, &mut error)
    {
        message.push_str("; ");
        message.push_str(hint);
    }
    error
}

/// Why the server refused the credentials, read from its `reason` where the body arrives:
/// the server has no error codes, only these fixed texts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Rejection {
    /// `Unauthorized`: no account owner was found (the server reads `X-Owner-ID`), or an
    /// auth bouncer rejected the token.
    NoOwner,
    /// `Authentication Required`: the server wants HTTP Basic credentials.
    BasicRequired,
    /// `Authentication Failed`: the Basic user or password is wrong.
    BasicFailed,
    /// `Invalid Authorization header`: the header was not HTTP Basic.
    InvalidHeader,
    /// Any other reason.
    Other,
}

impl Rejection {
    fn of(reason: &str) -> Self {
        match reason {
            "Unauthorized" => Self::NoOwner,
            "Authentication Required" => Self::BasicRequired,
            "Authentication Failed" => Self::BasicFailed,
            "Invalid Authorization header" => Self::InvalidHeader,
            _ => Self::Other,
        }
    }
}

/// The client's typed reading of a Vumi error answer, attached to the core error; get it
/// with [`Error::detail`](metrics_core::Error::detail).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("Vumi rejected the credentials: {rejection:?}")]
#[non_exhaustive]
pub struct VumiError {
    /// Why the credentials were refused.
    pub rejection: Rejection,
}

impl VumiError {
    fn rejected(rejection: Rejection) -> Self {
        Self { rejection }
    }
}

/// What fixes a 401 the server explained as `rejection`, given what was sent.
fn unauthenticated_hint(
    rejection: Rejection,
    credentials: Credentials,
    owner: bool,
) -> &'static str {
    use Credentials::{Anonymous, Basic, Token};
    use Rejection::{BasicFailed, BasicRequired, InvalidHeader, NoOwner};
    match (rejection, credentials, owner) {
        // go-metrics-api: no owner found (it reads X-Owner-ID), or its auth bouncer found no
        // token. With HTTP Basic the owner is checked first.
        (NoOwner, Anonymous, false) => {
            "the server found no account owner: no X-Owner-ID was sent; set the owner with with_owner_id (VUMI_OWNER_ID), or, for a server behind an auth bouncer, a token with with_token (VUMI_TOKEN)"
        }
        (NoOwner, Basic, false) => {
            "the server checks HTTP Basic only after it has the account owner, and no X-Owner-ID was sent: set the owner with with_owner_id (VUMI_OWNER_ID)"
        }
        (NoOwner, Token, false) => {
            "the server found no account owner: if it reads X-Owner-ID, set the owner with with_owner_id (VUMI_OWNER_ID); if it has an auth bouncer, the bouncer rejected the token set with with_token (VUMI_TOKEN)"
        }
        (NoOwner, Token, true) => {
            "the server's auth bouncer rejected the token set with with_token (VUMI_TOKEN)"
        }
        (NoOwner, _, true) => {
            "the server has an auth bouncer, which ignores X-Owner-ID and wants a Bearer token: set it with with_token (VUMI_TOKEN)"
        }
        (BasicRequired, Token, _) => {
            "the server uses HTTP Basic, not a Bearer token: set with_basic_auth (VUMI_USERNAME, VUMI_PASSWORD) instead of with_token (VUMI_TOKEN)"
        }
        (BasicRequired, ..) => {
            "the server uses HTTP Basic: set the user and password with with_basic_auth (VUMI_USERNAME, VUMI_PASSWORD)"
        }
        (BasicFailed | InvalidHeader, Basic, _) => {
            "the user or password set with with_basic_auth (VUMI_USERNAME, VUMI_PASSWORD) is wrong"
        }
        (InvalidHeader, ..) => {
            "the server reads HTTP Basic credentials: set them with with_basic_auth (VUMI_USERNAME, VUMI_PASSWORD)"
        }
        (_, Token, _) => "the token set with with_token (VUMI_TOKEN) was rejected",
        (_, Basic, _) => {
            "the user or password set with with_basic_auth (VUMI_USERNAME, VUMI_PASSWORD) was rejected"
        }
        (_, Anonymous, _) => {
            "the server wants credentials: a token with with_token (VUMI_TOKEN), or HTTP Basic with with_basic_auth (VUMI_USERNAME, VUMI_PASSWORD) and the owner with with_owner_id (VUMI_OWNER_ID)"
        }
    }
}

/// Puts the server's confirmations in the order the names were sent.
fn match_confirmations(
    names: Vec<MetricName>,
    confirmed: Vec<FiredMetric>,
) -> Result<Vec<FiredMetric>> {
    let sent = names.len();
    let received = confirmed.len();
    let mut by_name: HashMap<String, FiredMetric> = confirmed
        .into_iter()
        .map(|fired| (fired.name.clone(), fired))
        .collect();
    let mut ordered = Vec::with_capacity(sent);
    for name in names {
        let fired = by_name.remove(name.as_str()).ok_or_else(|| {
            Error::decode(BACKEND, "", format!("the server did not confirm `{name}`"))
        })?;
        if fired.aggregator != name.aggregator() {
            return Err(Error::decode(
                BACKEND,
                "",
                format!(
                    "the server confirmed `{name}` with aggregator {}, not {}",
                    fired.aggregator,
                    name.aggregator()
                ),
            ));
        }
        ordered.push(fired);
    }
    if received != sent {
        return Err(Error::decode(
            BACKEND,
            "",
            format!("the server confirmed {received} metrics, but {sent} were sent"),
        ));
    }
    Ok(ordered)
}

/// Reads go-metrics-api's `{"status_code": …, "reason": …}` bodies (the core's default
/// parser reads `reason` too), and explains the HTML 404 of a wrong path prefix.
fn error_body(status: StatusCode, headers: &HeaderMap, body: &[u8]) -> ErrorBody {
    if let Ok(serde_json::Value::Object(object)) = serde_json::from_slice(body)
        && let Some(serde_json::Value::String(reason)) = object.get("reason")
    {
        let parsed = ErrorBody::new(None, Some(reason.clone()));
        return match status {
            StatusCode::UNAUTHORIZED => {
                parsed.with_detail(Arc::new(VumiError::rejected(Rejection::of(reason))))
            }
            _ => parsed,
        };
    }
    if status == StatusCode::NOT_FOUND {
        let shown = body_snippet(body).unwrap_or_else(|| "Not Found".to_owned());
        return ErrorBody::new(
            None,
            Some(format!(
                "{shown}; the API is at <base URL>/metrics/, so the base URL must end with the server's path prefix (for example /api or /api/v1/go)"
            )),
        );
    }
    default_error_body(status, headers, body)
}

/// Configures a [`VumiClient`].
///
/// Authentication, as the server is configured:
/// - [`with_token`](Self::with_token): `Authorization: Bearer` (servers with an auth
///   bouncer, such as hosted Vumi Go);
/// - [`with_basic_auth`](Self::with_basic_auth) plus [`with_owner_id`](Self::with_owner_id):
///   HTTP Basic (go-metrics-api 0.2.0 `basicauth_username`/`_password`), which the server
///   checks after it has found the owner in `X-Owner-ID`;
/// - [`with_owner_id`](Self::with_owner_id) alone: `X-Owner-ID`, for a server behind a
///   proxy that authenticates and sets the header itself;
/// - nothing, for a server with a static owner.
///
/// Environment variables read by [`from_env`](Self::from_env):
///
/// | variable | setting |
/// |---|---|
/// | `VUMI_URL` | base URL including the path prefix, e.g. `https://go.vumi.org/api/v1/go` (required) |
/// | `VUMI_TOKEN` | Bearer token |
/// | `VUMI_USERNAME`, `VUMI_PASSWORD` | HTTP Basic credentials |
/// | `VUMI_OWNER_ID` | `X-Owner-ID` |
/// | `VUMI_METRICS` | comma-separated metric names for `MetricsSource` |
/// | `VUMI_MAX_POINTS` | the size limit, a number or `off` |
///
/// ```
/// use vumi_client::VumiClient;
///
/// let client = VumiClient::builder()
///     .with_base_url("http://127.0.0.1:8000/api")
///     .with_basic_auth("user", "pass")
///     .with_owner_id("owner-1")
///     .with_metrics(["stores.default.questions_completed.sum"])
///     .build()
///     .unwrap();
/// assert_eq!(client.metrics().len(), 1);
/// ```
#[must_use]
pub struct VumiClientBuilder {
    base_url: Option<String>,
    token: Option<Secret<String>>,
    username: Option<Secret<String>>,
    password: Option<Secret<String>>,
    owner_id: Option<Secret<String>>,
    metrics: Vec<String>,
    max_points: Option<u64>,
    options: ClientOptions,
    retry: RetryConfig,
    env_errors: Vec<String>,
}

impl Default for VumiClientBuilder {
    fn default() -> Self {
        Self {
            base_url: None,
            token: None,
            username: None,
            password: None,
            owner_id: None,
            metrics: Vec::new(),
            max_points: Some(DEFAULT_MAX_POINTS),
            options: ClientOptions::default(),
            retry: RetryConfig::default(),
            env_errors: Vec::new(),
        }
    }
}

impl fmt::Debug for VumiClientBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VumiClientBuilder")
            .field("base_url", &self.base_url.as_deref().map(redact_url))
            .field("token", &self.token)
            .field("username", &self.username)
            .field("password", &self.password)
            .field("owner_id", &self.owner_id)
            .field("metrics", &self.metrics)
            .field("max_points", &self.max_points)
            .field("options", &self.options)
            .field("retry", &self.retry)
            .finish_non_exhaustive()
    }
}

impl VumiClientBuilder {
    /// A builder with the defaults: no credentials, size limit [`DEFAULT_MAX_POINTS`].
    pub fn new() -> Self {
        Self::default()
    }

    /// Reads the `VUMI_*` environment variables (see the type's documentation). Invalid
    /// values are reported by [`build`](Self::build).
    pub fn from_env() -> Self {
        Self::from_env_with(&Env::process())
    }

    /// Like [`from_env`](Self::from_env), reading the variables from `env`.
    ///
    /// ```
    /// use metrics_core::Env;
    /// use vumi_client::VumiClientBuilder;
    ///
    /// let env = Env::from_pairs([("VUMI_URL", "https://go.vumi.org/api/v1/go"), ("VUMI_TOKEN", "t0k3n")]);
    /// let client = VumiClientBuilder::from_env_with(&env).build().unwrap();
    /// assert!(!format!("{client:?}").contains("t0k3n"));
    /// ```
    pub fn from_env_with(env: &Env) -> Self {
        let mut builder = Self::default();
        let get = |name: &str| env.get(name);
        if let Some(url) = get("VUMI_URL") {
            builder = builder.with_base_url(url);
        }
        if let Some(token) = get("VUMI_TOKEN") {
            builder = builder.with_token(token);
        }
        match (get("VUMI_USERNAME"), get("VUMI_PASSWORD")) {
            (Some(user), Some(password)) => builder = builder.with_basic_auth(user, password),
            (None, None) => {}
            _ => builder
                .env_errors
                .push("VUMI_USERNAME and VUMI_PASSWORD must be set together".to_owned()),
        }
        if let Some(owner) = get("VUMI_OWNER_ID") {
            builder = builder.with_owner_id(owner);
        }
        if let Some(metrics) = get("VUMI_METRICS") {
            builder = builder.with_metrics(
                metrics
                    .split(',')
                    .map(str::trim)
                    .filter(|m| !m.is_empty())
                    .map(str::to_owned)
                    .collect::<Vec<_>>(),
            );
        }
        if let Some(max) = get("VUMI_MAX_POINTS") {
            match max.trim() {
                "off" => builder = builder.without_size_check(),
                number => match number.parse::<u64>() {
                    Ok(max) => builder = builder.with_max_points(max),
                    Err(_) => builder.env_errors.push(format!(
                        "VUMI_MAX_POINTS is `{number}`; use a positive number or `off`"
                    )),
                },
            }
        }
        builder
    }

    /// The API's base URL, including the server's path prefix: `https://host/api` for a
    /// default install, `https://go.vumi.org/api/v1/go` for hosted Vumi Go. `metrics/` is
    /// appended to it.
    pub fn with_base_url(mut self, url: impl Into<String>) -> Self {
        self.base_url = Some(url.into());
        self
    }

    /// Authenticates with `Authorization: Bearer <token>`.
    pub fn with_token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(Secret::new(token.into()));
        self
    }

    /// Authenticates with HTTP Basic. The server also needs the owner, from
    /// [`with_owner_id`](Self::with_owner_id) unless it has a static owner.
    pub fn with_basic_auth(
        mut self,
        username: impl Into<String>,
        password: impl Into<String>,
    ) -> Self {
        self.username = Some(Secret::new(username.into()));
        self.password = Some(Secret::new(password.into()));
        self
    }

    /// Sends `X-Owner-ID: <owner>` (the Vumi Go account key) with every request.
    pub fn with_owner_id(mut self, owner: impl Into<String>) -> Self {
        self.owner_id = Some(Secret::new(owner.into()));
        self
    }

    /// Adds a metric name for [`MetricsSource`](metrics_core::MetricsSource) to read
    /// (validated by [`build`](Self::build)).
    pub fn with_metric(mut self, metric: impl Into<String>) -> Self {
        self.metrics.push(metric.into());
        self
    }

    /// Adds several metric names; see [`with_metric`](Self::with_metric).
    pub fn with_metrics<I, S>(mut self, metrics: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.metrics.extend(metrics.into_iter().map(Into::into));
        self
    }

    /// The most data points a query may ask for, as the server's `max_response_size`
    /// (default [`DEFAULT_MAX_POINTS`]). Queries over it fail before they are sent.
    pub fn with_max_points(mut self, max: u64) -> Self {
        self.max_points = Some(max);
        self
    }

    /// Sends queries without checking their size (for a server with a raised limit you do
    /// not know).
    pub fn without_size_check(mut self) -> Self {
        self.max_points = None;
        self
    }

    /// Sets the HTTP options (timeouts, user agent, TLS, injected `reqwest::Client`).
    pub fn with_client_options(mut self, options: ClientOptions) -> Self {
        self.options = options;
        self
    }

    /// Sets the retry policy. Queries are retried on 5xx and connection failures; fired
    /// metrics only when the request cannot have reached the server.
    pub fn with_retry(mut self, retry: RetryConfig) -> Self {
        self.retry = retry;
        self
    }

    /// Validates the settings and builds the client.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] for a missing or invalid base URL, a base URL that already ends in
    /// `/metrics`, both a token and Basic credentials, empty credentials, an invalid metric
    /// name, a zero size limit, or an invalid `VUMI_*` variable.
    pub fn build(self) -> Result<VumiClient> {
        if let Some(message) = self.env_errors.first() {
            return Err(Error::config(BACKEND, message.clone()));
        }
        let Some(base_url) = self.base_url else {
            return Err(Error::config(
                BACKEND,
                "no base URL; set it with with_base_url or VUMI_URL (for example https://go.vumi.org/api/v1/go)",
            ));
        };
        let trimmed = base_url.trim().trim_end_matches('/');
        if trimmed.ends_with("/metrics") {
            return Err(Error::config(
                BACKEND,
                format!(
                    "the base URL `{trimmed}` ends with /metrics; give the API prefix only (`{}`): metrics/ is appended to it",
                    trimmed.trim_end_matches("/metrics")
                ),
            ));
        }
        let empty = |value: &Option<Secret<String>>| {
            value.as_ref().is_some_and(|v| v.expose().trim().is_empty())
        };
        if empty(&self.token) {
            return Err(Error::config(BACKEND, "the token is empty"));
        }
        if empty(&self.username) {
            return Err(Error::config(BACKEND, "the Basic user name is empty"));
        }
        if empty(&self.owner_id) {
            return Err(Error::config(BACKEND, "the owner id is empty"));
        }
        let auth = match (self.token, self.username, self.password) {
            (Some(_), Some(_), _) => {
                return Err(Error::config(
                    BACKEND,
                    "both a Bearer token and Basic credentials are set, but a request has one Authorization header; the server uses one or the other",
                ));
            }
            (Some(token), None, _) => Auth::Bearer(token),
            (None, Some(username), Some(password)) => Auth::Basic { username, password },
            (None, _, _) => Auth::None,
        };
        let credentials = match &auth {
            Auth::Bearer(_) => Credentials::Token,
            Auth::Basic { .. } => Credentials::Basic,
            _ => Credentials::Anonymous,
        };
        let owner = match self.owner_id {
            Some(owner) => {
                let mut value = HeaderValue::from_str(owner.expose()).map_err(|_| {
                    Error::config(
                        BACKEND,
                        "the owner id contains characters that cannot be sent in an HTTP header",
                    )
                })?;
                value.set_sensitive(true);
                Some(value)
            }
            None => None,
        };
        if self.max_points == Some(0) {
            return Err(Error::config(
                BACKEND,
                "the size limit is zero, which would reject every query; use without_size_check to turn the check off",
            ));
        }
        let mut metrics: Vec<MetricName> = Vec::with_capacity(self.metrics.len());
        for raw in self.metrics {
            let metric = MetricName::new(raw).map_err(|e| Error::config(BACKEND, e.to_string()))?;
            if !metrics.contains(&metric) {
                metrics.push(metric);
            }
        }
        let http = HttpClient::builder(BACKEND, trimmed)
            .with_auth(auth)
            .with_options(&self.options)
            .with_retry(self.retry)
            .with_error_body_parser(error_body)
            .build()?;
        Ok(VumiClient {
            inner: Arc::new(Inner {
                http,
                credentials,
                owner,
                max_points: self.max_points,
                metrics,
            }),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(vars: &[(&str, &str)]) -> VumiClientBuilder {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        VumiClientBuilder::from_env_with(&Env::from_fn(move |name| vars.get(name).cloned()))
    }

    #[test]
    fn from_env_reads_every_variable() {
        let client = env(&[
            ("VUMI_URL", "http://127.0.0.1:1/api"),
            ("VUMI_USERNAME", "user"),
            ("VUMI_PASSWORD", "pass"),
            ("VUMI_OWNER_ID", "owner-1"),
            ("VUMI_METRICS", "stores.a.b.last, stores.b.a.max"),
            ("VUMI_MAX_POINTS", "20000"),
        ])
        .build()
        .unwrap();
        assert_eq!(client.metrics().len(), 2);
        assert_eq!(client.max_points(), Some(20_000));
        assert_eq!(client.base_url(), "http://127.0.0.1:1/api");
        let off = env(&[("VUMI_URL", "http://h/api"), ("VUMI_MAX_POINTS", "off")])
            .build()
            .unwrap();
        assert_eq!(off.max_points(), None);
    }

    #[test]
    fn from_env_errors_are_config_errors() {
        for vars in [
            &[("VUMI_URL", "http://h/api"), ("VUMI_USERNAME", "u")][..],
            &[("VUMI_URL", "http://h/api"), ("VUMI_MAX_POINTS", "lots")][..],
            &[("VUMI_URL", "http://h/api"), ("VUMI_METRICS", "stores.a.b")][..],
            &[("VUMI_TOKEN", "t")][..],
        ] {
            assert!(
                matches!(env(vars).build(), Err(Error::Config { .. })),
                "{vars:?}"
            );
        }
    }

    #[test]
    fn every_rejection_names_the_setting_that_fixes_it() {
        let reasons = [
            "Unauthorized",
            "Authentication Required",
            "Authentication Failed",
            "Invalid Authorization header",
            "OAuth2 required.",
        ];
        for reason in reasons {
            for credentials in [
                Credentials::Anonymous,
                Credentials::Token,
                Credentials::Basic,
            ] {
                for owner in [false, true] {
                    let error = explain_rejection(answered(401, reason), credentials, owner);
                    let Error::Unauthenticated { message, .. } = &error else {
                        panic!("{error:?}");
                    };
                    assert!(message.starts_with(&format!("{reason}; ")), "{message}");
                    assert!(
                        message.contains("with_") && message.contains("(VUMI_"),
                        "{reason}, {credentials:?}, owner {owner}: {message}"
                    );
                }
            }
        }
        // The owner-header server's answer to a client without an owner.
        let error = explain_rejection(answered(401, "Unauthorized"), Credentials::Anonymous, false);
        assert!(error.to_string().contains("X-Owner-ID"), "{error}");
        assert!(error.to_string().contains("with_owner_id (VUMI_OWNER_ID)"));
        // A bouncer's 403 for an unknown token.
        let error = explain_rejection(
            Error::api(BACKEND, 403, None, "Forbidden"),
            Credentials::Token,
            false,
        );
        assert!(
            error.to_string().contains("with_token (VUMI_TOKEN)"),
            "{error}"
        );
        // Other errors are left as they are.
        let error = explain_rejection(
            Error::api(BACKEND, 500, None, "Failed to fire metrics."),
            Credentials::Token,
            false,
        );
        assert!(
            matches!(error, Error::Api { ref message, .. } if message == "Failed to fire metrics.")
        );
    }

    /// The error the pipeline makes of a `{"status_code", "reason"}` answer.
    fn answered(status: u16, reason: &str) -> Error {
        let body = serde_json::json!({ "status_code": status, "reason": reason }).to_string();
        let parsed = error_body(
            StatusCode::from_u16(status).unwrap(),
            &HeaderMap::new(),
            body.as_bytes(),
        );
        let error = Error::api(BACKEND, status, parsed.code, parsed.message.unwrap());
        match parsed.detail {
            Some(detail) => error.with_detail(detail),
            None => error,
        }
    }

    #[test]
    fn error_body_reads_reason_and_explains_html_404() {
        let h = HeaderMap::new();
        let parsed = error_body(
            StatusCode::BAD_REQUEST,
            &h,
            br#"{"reason": "Unrecognised null parser 'bad'", "status_code": 400}"#,
        );
        assert_eq!(
            parsed.message.as_deref(),
            Some("Unrecognised null parser 'bad'")
        );
        assert_eq!(parsed.code, None);
        let html = error_body(
            StatusCode::NOT_FOUND,
            &h,
            b"<html><title>404: Not Found</title><body>404: Not Found</body></html>",
        );
        assert!(html.message.unwrap().contains("path prefix"));
    }
}
