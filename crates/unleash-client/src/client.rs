//! [`UnleashClient`] and its builder.

use std::collections::hash_map::RandomState;
use std::fmt;
use std::hash::{BuildHasher, Hasher};
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use chrono::{DateTime, Utc};
use metrics_core::http::{
    ErrorBody, HttpClient, Request, Response, body_snippet, default_error_body, encode_path_segment,
};
use metrics_core::reqwest::StatusCode;
use metrics_core::reqwest::header::{self, HeaderMap, HeaderName, HeaderValue};
use metrics_core::{ClientOptions, Error, Result, RetryConfig, Secret};
use serde::de::DeserializeOwned;

use crate::BACKEND;
use crate::model::{
    AppSeenToggles, Application, ApplicationDetails, ApplicationInstances, ApplicationOverview,
    Applications, FeatureMetrics, FeatureToggleMetrics, FeatureToggleWindow, MetricsBody,
    MetricsBucket, RawFeatureMetrics, RegisterBody, UiConfig, UnknownFlags,
};
use crate::recorder::{MetricsRecorder, RecorderConfig};

/// The SDK name this client reports in `sdkVersion` and `unleash-sdk` unless
/// [`UnleashClientBuilder::with_sdk_version`] says otherwise.
pub const DEFAULT_SDK_NAME: &str = "metrics-hub-unleash";

/// The Unleash client-specification version whose metrics format this client follows,
/// sent as `specVersion`.
pub const SPEC_VERSION: &str = "5.1.9";

/// The default metrics interval: 60 s, like the Node and Python SDKs.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(60);

/// Pooled connections are closed after this long idle: unleash-server's keep-alive timeout
/// is 15 s, and a request written to a socket the server is closing fails in a way that
/// cannot tell whether it arrived — fatal for a metrics POST, which is never resent then.
const DEFAULT_POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(10);

/// The largest `hoursBack` the raw flag metrics accept (without the experimental
/// `extendedUsageMetrics` flag); larger values are silently replaced by 24.
pub const MAX_HOURS_BACK: u32 = 48;

/// The largest page the applications list serves (5.10+).
pub const MAX_APPLICATIONS_PAGE: u32 = 1000;

/// The version of the Unleash server a client talks to. Read endpoints moved between
/// versions; the client picks the paths (and the fallbacks) from it.
///
/// ```
/// use unleash_client::ServerVersion;
///
/// let v: ServerVersion = "v4.19.5".parse().unwrap();
/// assert_eq!(v, ServerVersion::new(4, 19, 5));
/// assert!(v < ServerVersion::LATEST);
/// assert_eq!(ServerVersion::parse("8.2.0-beta.1"), Some(ServerVersion::new(8, 2, 0)));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ServerVersion {
    /// Major version.
    pub major: u32,
    /// Minor version.
    pub minor: u32,
    /// Patch version.
    pub patch: u32,
}

impl ServerVersion {
    /// The newest version this client was checked against (live): 8.2.0. The default.
    pub const LATEST: Self = Self::new(8, 2, 0);
    /// 3.0: the read endpoints moved from `/api/client` to `/api/admin/metrics`.
    pub const V3_0: Self = Self::new(3, 0, 0);
    /// 4.0: API tokens (v3 admin reads need a login cookie).
    pub const V4_0: Self = Self::new(4, 0, 0);
    /// 4.2: `client-metrics/features/:name` and `/raw`.
    pub const V4_2: Self = Self::new(4, 2, 0);
    /// 4.4: the legacy views answer 410 Gone.
    pub const V4_4: Self = Self::new(4, 4, 0);
    /// 5.10: the applications list is paged; overview and instances endpoints.
    pub const V5_10: Self = Self::new(5, 10, 0);
    /// 7.0: unknown flags.
    pub const V7_0: Self = Self::new(7, 0, 0);

    /// A version.
    pub const fn new(major: u32, minor: u32, patch: u32) -> Self {
        Self {
            major,
            minor,
            patch,
        }
    }

    /// Parses `8.2.0`, `v4.19.5`, `5.10` or `8.2.0-beta.1+build` (pre-release and build
    /// parts are ignored).
    pub fn parse(text: &str) -> Option<Self> {
        let text = text.trim();
        let text = text.strip_prefix(['v', 'V']).unwrap_or(text);
        let core = text.split(['-', '+']).next()?;
        let mut parts = core.split('.');
        let major = parts.next()?.parse().ok()?;
        let minor = parts.next().map_or(Some(0), |p| p.parse().ok())?;
        let patch = parts.next().map_or(Some(0), |p| p.parse().ok())?;
        if parts.next().is_some() {
            return None;
        }
        Some(Self::new(major, minor, patch))
    }
}

impl Default for ServerVersion {
    fn default() -> Self {
        Self::LATEST
    }
}

impl fmt::Display for ServerVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

impl FromStr for ServerVersion {
    type Err = Error;

    fn from_str(text: &str) -> Result<Self> {
        Self::parse(text).ok_or_else(|| {
            Error::config(
                BACKEND,
                format!("`{text}` is not an Unleash server version (expected e.g. `8.2.0`)"),
            )
        })
    }
}

/// Sort order of the applications list.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SortOrder {
    /// A to Z (the server's default).
    #[default]
    Asc,
    /// Z to A.
    Desc,
}

/// What [`UnleashClient::applications`] asks for. On 5.10+ the server pages and searches;
/// on older servers, which send the whole list, the client applies the same query itself, so
/// the result has the same meaning on every version.
///
/// ```
/// use unleash_client::{ApplicationsQuery, SortOrder};
///
/// let query = ApplicationsQuery::new().with_search("checkout").with_limit(50).with_sort_order(SortOrder::Desc);
/// assert_eq!(query.limit, Some(50));
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ApplicationsQuery {
    /// Only applications whose name contains this (case-insensitive).
    pub search: Option<String>,
    /// Skip this many.
    pub offset: Option<u64>,
    /// Return at most this many (1 ..= 1000).
    pub limit: Option<u32>,
    /// Sort field (`appName` by default; older servers: only `appName` is applied).
    pub sort_by: Option<String>,
    /// Sort order.
    pub sort_order: Option<SortOrder>,
}

impl ApplicationsQuery {
    /// Everything, the server's first page (up to 1000 on 5.10+).
    pub fn new() -> Self {
        Self::default()
    }

    /// Only names containing `search`.
    #[must_use]
    pub fn with_search(mut self, search: impl Into<String>) -> Self {
        self.search = Some(search.into());
        self
    }

    /// Skips `offset` applications.
    #[must_use]
    pub fn with_offset(mut self, offset: u64) -> Self {
        self.offset = Some(offset);
        self
    }

    /// At most `limit` applications (1 ..= 1000).
    #[must_use]
    pub fn with_limit(mut self, limit: u32) -> Self {
        self.limit = Some(limit);
        self
    }

    /// Sorts by this field.
    #[must_use]
    pub fn with_sort_by(mut self, field: impl Into<String>) -> Self {
        self.sort_by = Some(field.into());
        self
    }

    /// Sorts in this order.
    #[must_use]
    pub fn with_sort_order(mut self, order: SortOrder) -> Self {
        self.sort_order = Some(order);
        self
    }
}

/// An async client for Unleash's client-metrics API: SDK registration and metric buckets
/// (with a backend token), and read-back of applications and flag metrics (with an admin
/// token), from Unleash v3 to 8.x.
///
/// Cheap to clone: clones share one connection pool.
///
/// ```no_run
/// # async fn run() -> metrics_core::Result<()> {
/// use unleash_client::{MetricsBucket, UnleashClient};
///
/// let client = UnleashClient::builder()
///     .with_url("http://127.0.0.1:4242")
///     .with_api_token("default:development.unleash-insecure-api-token")
///     .with_admin_token("*:*.unleash-insecure-admin-api-token")
///     .with_app_name("checkout-service")
///     .build()?;
/// client.register().await?;
/// let mut bucket = MetricsBucket::new(chrono::Utc::now());
/// bucket.count("new-checkout", true);
/// client.send_metrics(&bucket).await?;
/// let usage = client.feature_metrics("new-checkout").await?;
/// println!("{:?}", usage.last_hour_total());
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct UnleashClient {
    inner: Arc<Inner>,
}

struct Inner {
    http: HttpClient,
    api_token: Option<Secret<String>>,
    admin_token: Option<Secret<String>>,
    admin_login: Option<Secret<String>>,
    login_cookie: tokio::sync::Mutex<Option<Secret<String>>>,
    app_name: String,
    instance_id: String,
    connection_id: String,
    sdk_version: String,
    platform_version: String,
    strategies: Vec<String>,
    interval: Duration,
    started: DateTime<Utc>,
    server_version: ServerVersion,
    features: Vec<String>,
}

impl fmt::Debug for UnleashClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let inner = &self.inner;
        f.debug_struct("UnleashClient")
            .field("http", &inner.http)
            .field("api_token", &inner.api_token.as_ref().map(|_| "***"))
            .field("admin_token", &inner.admin_token.as_ref().map(|_| "***"))
            .field("admin_login", &inner.admin_login.as_ref().map(|_| "***"))
            .field("app_name", &inner.app_name)
            .field("instance_id", &inner.instance_id)
            .field("connection_id", &inner.connection_id)
            .field("sdk_version", &inner.sdk_version)
            .field("server_version", &inner.server_version)
            .finish_non_exhaustive()
    }
}

/// Builds an [`UnleashClient`].
///
/// `from_env()` reads:
///
/// | variable | setter |
/// |---|---|
/// | `UNLEASH_URL` | [`with_url`](Self::with_url) — the server root; a trailing `/api` is accepted |
/// | `UNLEASH_API_TOKEN` | [`with_api_token`](Self::with_api_token) — backend (client) token |
/// | `UNLEASH_ADMIN_TOKEN` | [`with_admin_token`](Self::with_admin_token) — admin token or PAT, for reads |
/// | `UNLEASH_ADMIN_LOGIN` | [`with_admin_login`](Self::with_admin_login) — v3 only: login e-mail |
/// | `UNLEASH_APP_NAME` | [`with_app_name`](Self::with_app_name) |
/// | `UNLEASH_INSTANCE_ID` | [`with_instance_id`](Self::with_instance_id) |
/// | `UNLEASH_SERVER_VERSION` | [`with_server_version`](Self::with_server_version) — e.g. `4.19.5` |
/// | `UNLEASH_METRICS_INTERVAL_MS` | [`with_interval`](Self::with_interval) |
/// | `UNLEASH_FEATURES` | [`with_features`](Self::with_features) — comma-separated |
#[must_use]
#[derive(Clone, Default)]
pub struct UnleashClientBuilder {
    url: Option<String>,
    api_token: Option<Secret<String>>,
    admin_token: Option<Secret<String>>,
    admin_login: Option<Secret<String>>,
    app_name: Option<String>,
    instance_id: Option<String>,
    sdk_version: Option<String>,
    strategies: Vec<String>,
    interval: Option<Duration>,
    interval_text: Option<String>,
    server_version: Option<ServerVersion>,
    server_version_text: Option<String>,
    features: Vec<String>,
    options: Option<ClientOptions>,
    retry: Option<RetryConfig>,
}

impl fmt::Debug for UnleashClientBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UnleashClientBuilder")
            .field("url", &self.url)
            .field("api_token", &self.api_token.as_ref().map(|_| "***"))
            .field("admin_token", &self.admin_token.as_ref().map(|_| "***"))
            .field("admin_login", &self.admin_login.as_ref().map(|_| "***"))
            .field("app_name", &self.app_name)
            .field("instance_id", &self.instance_id)
            .field("server_version", &self.server_version)
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl UnleashClientBuilder {
    /// An empty builder.
    pub fn new() -> Self {
        Self::default()
    }

    /// A builder filled from the `UNLEASH_*` environment variables (see the table above).
    /// Unset variables leave the setting empty; `build()` says what is missing.
    pub fn from_env() -> Self {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        let mut builder = Self::new();
        builder.url = var("UNLEASH_URL");
        builder.api_token = var("UNLEASH_API_TOKEN").map(Secret::new);
        builder.admin_token = var("UNLEASH_ADMIN_TOKEN").map(Secret::new);
        builder.admin_login = var("UNLEASH_ADMIN_LOGIN").map(Secret::new);
        builder.app_name = var("UNLEASH_APP_NAME");
        builder.instance_id = var("UNLEASH_INSTANCE_ID");
        builder.server_version_text = var("UNLEASH_SERVER_VERSION");
        builder.interval_text = var("UNLEASH_METRICS_INTERVAL_MS");
        if let Some(features) = var("UNLEASH_FEATURES") {
            builder.features = features
                .split(',')
                .map(str::trim)
                .filter(|f| !f.is_empty())
                .map(str::to_owned)
                .collect();
        }
        builder
    }

    /// The server root, e.g. `https://unleash.example.com` (a trailing `/api` is removed,
    /// since some SDKs are configured with it).
    pub fn with_url(mut self, url: impl Into<String>) -> Self {
        self.url = Some(url.into());
        self
    }

    /// The backend (client) token for `/api/client/register` and `/api/client/metrics`,
    /// sent verbatim in `Authorization`. Unleash 8 rejects admin, personal-access and
    /// frontend tokens there with 403.
    pub fn with_api_token(mut self, token: impl Into<String>) -> Self {
        self.api_token = Some(Secret::new(token.into()));
        self
    }

    /// The admin token (or personal access / service-account token) for the read-back
    /// endpoints under `/api/admin`.
    pub fn with_admin_token(mut self, token: impl Into<String>) -> Self {
        self.admin_token = Some(Secret::new(token.into()));
        self
    }

    /// Unleash v3 only, which has no admin API tokens: the e-mail to log in with
    /// (`POST /api/admin/login`, "unsecure" auth). The session cookie is kept and renewed.
    pub fn with_admin_login(mut self, email: impl Into<String>) -> Self {
        self.admin_login = Some(Secret::new(email.into()));
        self
    }

    /// The application name the server groups instances and metrics by. Required for
    /// registration and metrics.
    pub fn with_app_name(mut self, app_name: impl Into<String>) -> Self {
        self.app_name = Some(app_name.into());
        self
    }

    /// The instance id (default: `generated-<random>-<pid>`).
    pub fn with_instance_id(mut self, instance_id: impl Into<String>) -> Self {
        self.instance_id = Some(instance_id.into());
        self
    }

    /// The SDK identification `name:semver` sent as `sdkVersion` and `unleash-sdk`
    /// (default `metrics-hub-unleash:<crate version>`).
    pub fn with_sdk_version(mut self, sdk_version: impl Into<String>) -> Self {
        self.sdk_version = Some(sdk_version.into());
        self
    }

    /// The strategy names the application implements, sent at registration.
    pub fn with_strategies<I, S>(mut self, strategies: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.strategies = strategies.into_iter().map(Into::into).collect();
        self
    }

    /// The metrics interval, sent at registration (in ms) and used as the recorder's default
    /// flush interval. Default 60 s.
    pub fn with_interval(mut self, interval: Duration) -> Self {
        self.interval = Some(interval);
        self.interval_text = None;
        self
    }

    /// The server version, which decides the read paths (default: 8.2.0, the newest checked).
    /// [`UnleashClient::detect_server_version`] asks a running server.
    pub fn with_server_version(mut self, version: ServerVersion) -> Self {
        self.server_version = Some(version);
        self.server_version_text = None;
        self
    }

    /// The flags [`MetricsSource::collect`](metrics_core::MetricsSource::collect) reports on.
    /// When empty, it discovers them from the applications' seen flags.
    pub fn with_features<I, S>(mut self, features: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.features = features.into_iter().map(Into::into).collect();
        self
    }

    /// HTTP options. The default differs from `ClientOptions::new()` only in a 10 s pool idle
    /// timeout; keep one under unleash-server's 15 s keep-alive when you set your own.
    pub fn with_client_options(mut self, options: ClientOptions) -> Self {
        self.options = Some(options);
        self
    }

    /// Retries of reads and registration. Metric POSTs are never retried by the HTTP layer:
    /// the [`MetricsRecorder`] keeps and merges unsent counts itself.
    pub fn with_retry(mut self, retry: RetryConfig) -> Self {
        self.retry = Some(retry);
        self
    }

    /// Validates the settings and builds the client (and its connection pool).
    ///
    /// # Errors
    ///
    /// [`Error::Config`] when the URL is missing or invalid, no token is set, a backend token
    /// is set without an application name, or a version, interval, SDK version or token is
    /// malformed.
    pub fn build(self) -> Result<UnleashClient> {
        let url = self
            .url
            .as_deref()
            .map(str::trim)
            .filter(|u| !u.is_empty())
            .ok_or_else(|| {
                Error::config(BACKEND, "no server URL: set UNLEASH_URL or call with_url")
            })?;
        let url = url.trim_end_matches('/');
        let url = url.strip_suffix("/api").unwrap_or(url);

        let non_empty =
            |token: Option<Secret<String>>, what: &str| -> Result<Option<Secret<String>>> {
                match token {
                    Some(t) if t.expose().trim().is_empty() => {
                        Err(Error::config(BACKEND, format!("the {what} is empty")))
                    }
                    Some(t) if HeaderValue::from_str(t.expose()).is_err() => Err(Error::config(
                        BACKEND,
                        format!("the {what} contains characters that cannot be sent in a header"),
                    )),
                    other => Ok(other),
                }
            };
        let api_token = non_empty(self.api_token, "API (backend) token")?;
        let admin_token = non_empty(self.admin_token, "admin token")?;
        let admin_login = non_empty(self.admin_login, "admin login")?;
        if api_token.is_none() && admin_token.is_none() && admin_login.is_none() {
            return Err(Error::config(
                BACKEND,
                "no token: set UNLEASH_API_TOKEN (backend token, for registration and metrics) \
                 and/or UNLEASH_ADMIN_TOKEN (admin token, for reads)",
            ));
        }

        let app_name = self.app_name.unwrap_or_default().trim().to_owned();
        if api_token.is_some() && app_name.is_empty() {
            return Err(Error::config(
                BACKEND,
                "no application name: set UNLEASH_APP_NAME or call with_app_name (Unleash requires \
                 a non-empty appName for registration and metrics)",
            ));
        }
        let header_safe = |value: &str, what: &str| {
            HeaderValue::from_str(value).map(|_| ()).map_err(|_| {
                Error::config(
                    BACKEND,
                    format!("the {what} `{value}` cannot be sent in an HTTP header"),
                )
            })
        };
        header_safe(&app_name, "application name")?;
        let instance_id = match self.instance_id.map(|i| i.trim().to_owned()) {
            Some(id) if !id.is_empty() => id,
            _ => format!(
                "generated-{:06}-{}",
                random_u64() % 1_000_000,
                std::process::id()
            ),
        };
        header_safe(&instance_id, "instance id")?;

        let sdk_version = self
            .sdk_version
            .unwrap_or_else(|| format!("{DEFAULT_SDK_NAME}:{}", env!("CARGO_PKG_VERSION")));
        match sdk_version.split_once(':') {
            Some((name, version)) if !name.is_empty() && !version.is_empty() => {}
            _ => {
                return Err(Error::config(
                    BACKEND,
                    format!(
                        "the SDK version `{sdk_version}` must have the form `name:semver` \
                         (the server splits it on `:`)"
                    ),
                ));
            }
        }
        header_safe(&sdk_version, "SDK version")?;

        let interval = match (self.interval, self.interval_text) {
            (_, Some(text)) => Duration::from_millis(text.trim().parse().map_err(|_| {
                Error::config(
                    BACKEND,
                    format!("UNLEASH_METRICS_INTERVAL_MS=`{text}` is not a number of milliseconds"),
                )
            })?),
            (Some(interval), None) => interval,
            (None, None) => DEFAULT_INTERVAL,
        };
        if interval.is_zero() {
            return Err(Error::config(
                BACKEND,
                "the metrics interval must not be zero",
            ));
        }
        let server_version = match (self.server_version, self.server_version_text) {
            (_, Some(text)) => text.parse()?,
            (Some(version), None) => version,
            (None, None) => ServerVersion::LATEST,
        };

        let options = self.options.unwrap_or_else(|| {
            ClientOptions::new().with_pool_idle_timeout(DEFAULT_POOL_IDLE_TIMEOUT)
        });
        let http = HttpClient::builder(BACKEND, url)
            .with_options(&options)
            .with_retry(self.retry.unwrap_or_default())
            .with_error_body_parser(unleash_error_body)
            .build()?;

        Ok(UnleashClient {
            inner: Arc::new(Inner {
                http,
                api_token,
                admin_token,
                admin_login,
                login_cookie: tokio::sync::Mutex::new(None),
                app_name,
                instance_id,
                connection_id: uuid_v4(),
                sdk_version,
                platform_version: env!("UNLEASH_CLIENT_RUSTC_VERSION").to_owned(),
                strategies: self.strategies,
                interval,
                started: Utc::now(),
                server_version,
                features: self.features,
            }),
        })
    }
}

/// How the server may answer an admin read that a version does not have.
#[derive(Clone, Copy)]
struct Endpoint {
    /// `GET /api/admin/...`, for messages.
    label: &'static str,
    /// The first version that has it.
    since: Option<ServerVersion>,
    /// A 410 means: removed in 4.4; use this instead.
    replacement: Option<&'static str>,
    /// A 404 means the server version lacks the endpoint (not a missing resource).
    not_found_is_unsupported: bool,
}

impl Endpoint {
    const fn new(label: &'static str) -> Self {
        Self {
            label,
            since: None,
            replacement: None,
            not_found_is_unsupported: false,
        }
    }

    const fn since(mut self, version: ServerVersion) -> Self {
        self.since = Some(version);
        self.not_found_is_unsupported = true;
        self
    }

    const fn legacy(mut self, replacement: &'static str) -> Self {
        self.replacement = Some(replacement);
        self.not_found_is_unsupported = true;
        self
    }
}

impl UnleashClient {
    /// A new builder.
    pub fn builder() -> UnleashClientBuilder {
        UnleashClientBuilder::new()
    }

    /// The application name.
    pub fn app_name(&self) -> &str {
        &self.inner.app_name
    }

    /// The instance id.
    pub fn instance_id(&self) -> &str {
        &self.inner.instance_id
    }

    /// The `unleash-connection-id` sent with every client-API request (a UUID v4, one per
    /// client and its clones).
    pub fn connection_id(&self) -> &str {
        &self.inner.connection_id
    }

    /// The `name:semver` sent as `sdkVersion`.
    pub fn sdk_version(&self) -> &str {
        &self.inner.sdk_version
    }

    /// The metrics interval.
    pub fn interval(&self) -> Duration {
        self.inner.interval
    }

    /// The server version the read paths are chosen for.
    pub fn server_version(&self) -> ServerVersion {
        self.inner.server_version
    }

    /// The flags the `MetricsSource` impl is limited to (empty: discovered).
    pub fn features(&self) -> &[String] {
        &self.inner.features
    }

    pub(crate) fn has_api_token(&self) -> bool {
        self.inner.api_token.is_some()
    }

    /// The base URL as it may be shown.
    pub fn base_url(&self) -> &str {
        self.inner.http.redacted_base_url()
    }

    // ---- writes --------------------------------------------------------------------------

    /// `POST /api/client/register`: announces this instance, its SDK, strategies, start time
    /// and interval. Safe to retry (the server keeps the latest registration), so it uses the
    /// client's retry policy.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] without a backend token; [`Error::Forbidden`] for a token of the
    /// wrong type (admin, PAT, frontend) on 8.x; [`Error::Unauthenticated`] for an unknown
    /// token; [`Error::Api`] 400 with the server's validation details; transport errors.
    pub async fn register(&self) -> Result<()> {
        let inner = &self.inner;
        let body = RegisterBody {
            app_name: &inner.app_name,
            instance_id: &inner.instance_id,
            sdk_version: &inner.sdk_version,
            strategies: &inner.strategies,
            started: inner.started,
            interval: u64::try_from(inner.interval.as_millis()).unwrap_or(u64::MAX),
            platform_name: "rust",
            platform_version: &inner.platform_version,
            spec_version: SPEC_VERSION,
        };
        let request = Request::post("api/client/register")
            .with_json(BACKEND, &body)?
            .with_idempotent(true);
        let request = self.client_request(request)?;
        self.inner
            .http
            .send(request)
            .await
            .map(drop)
            .map_err(client_api_error)
    }

    /// `POST /api/client/metrics`: sends one bucket, once. Flags with zero counts are left
    /// out; `bucket.stop` decides the hour the server books the counts under.
    ///
    /// Never retried: the server adds whatever it receives, so a resent bucket would count
    /// twice. Use a [`MetricsRecorder`] for counting with kept-and-merged retries.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidInput`] for an empty bucket, an empty flag name or `stop` before
    /// `start` (nothing is sent); otherwise as [`UnleashClient::register`], plus
    /// [`Error::RateLimited`] with the server's `Retry-After`.
    pub async fn send_metrics(&self, bucket: &MetricsBucket) -> Result<()> {
        if bucket.toggles.keys().any(|name| name.trim().is_empty()) {
            return Err(Error::invalid_input(
                BACKEND,
                "a flag name in the bucket is empty",
            ));
        }
        if bucket.stop < bucket.start {
            return Err(Error::invalid_input(
                BACKEND,
                format!(
                    "the bucket stops ({}) before it starts ({})",
                    bucket.stop, bucket.start
                ),
            ));
        }
        if bucket.is_empty() {
            return Err(Error::invalid_input(
                BACKEND,
                "the bucket has no evaluations to send (the server drops all-zero toggles; \
                 SDKs never send empty buckets)",
            ));
        }
        let mut pruned;
        let bucket = if bucket
            .toggles
            .values()
            .any(crate::model::ToggleCount::is_zero)
        {
            pruned = bucket.clone();
            pruned.prune();
            &pruned
        } else {
            bucket
        };
        let inner = &self.inner;
        let body = MetricsBody {
            app_name: &inner.app_name,
            instance_id: &inner.instance_id,
            sdk_version: &inner.sdk_version,
            platform_name: "rust",
            platform_version: &inner.platform_version,
            spec_version: SPEC_VERSION,
            bucket,
        };
        let request = Request::post("api/client/metrics")
            .with_json(BACKEND, &body)?
            .without_retries();
        let request = self.client_request(request)?;
        self.inner
            .http
            .send(request)
            .await
            .map(drop)
            .map_err(client_api_error)
    }

    /// Starts a [`MetricsRecorder`] that counts evaluations and flushes them in the
    /// background. Must be called inside a Tokio runtime.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] without a backend token or outside a Tokio runtime.
    pub fn start_recorder(&self, config: RecorderConfig) -> Result<MetricsRecorder> {
        MetricsRecorder::start(self.clone(), config)
    }

    fn client_request(&self, request: Request) -> Result<Request> {
        let inner = &self.inner;
        let token = inner.api_token.as_ref().ok_or_else(|| {
            Error::config(
                BACKEND,
                "no backend (client) token: set UNLEASH_API_TOKEN or call with_api_token",
            )
        })?;
        let mut headers = vec![
            (header::AUTHORIZATION, sensitive(token.expose())?),
            (
                HeaderName::from_static("unleash-appname"),
                plain(&inner.app_name)?,
            ),
            (
                HeaderName::from_static("unleash-instanceid"),
                plain(&inner.instance_id)?,
            ),
            (
                HeaderName::from_static("unleash-connection-id"),
                plain(&inner.connection_id)?,
            ),
            (
                HeaderName::from_static("unleash-sdk"),
                plain(&inner.sdk_version)?,
            ),
        ];
        headers.push((
            HeaderName::from_static("unleash-interval"),
            HeaderValue::from(u64::try_from(inner.interval.as_millis()).unwrap_or(u64::MAX)),
        ));
        Ok(headers.into_iter().fold(request, |request, (name, value)| {
            request.with_header(name, value)
        }))
    }

    // ---- admin reads ---------------------------------------------------------------------

    /// `GET /api/admin/ui-config`: asks the server for its version. Use it with
    /// [`UnleashClientBuilder::with_server_version`] when the version is not known.
    ///
    /// # Errors
    ///
    /// As for every admin read; [`Error::Decode`] when the answer has no parseable version.
    pub async fn detect_server_version(&self) -> Result<ServerVersion> {
        let config: UiConfig = self
            .admin_json(
                Request::get("api/admin/ui-config"),
                Endpoint::new("GET /api/admin/ui-config"),
            )
            .await?;
        let text = config.version.unwrap_or_default();
        ServerVersion::parse(&text)
            .ok_or_else(|| Error::decode(BACKEND, "version", format!("`{text}` is not a version")))
    }

    /// `GET /api/admin/metrics/applications`: one page of applications. On 5.10+ the server
    /// searches, sorts and pages; on older servers the client does the same on the full
    /// list, and fills in `total`.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidInput`] for a limit of 0 or over 1000; otherwise as every admin read.
    pub async fn applications(&self, query: &ApplicationsQuery) -> Result<Applications> {
        if let Some(limit) = query.limit
            && (limit == 0 || limit > MAX_APPLICATIONS_PAGE)
        {
            return Err(Error::invalid_input(
                BACKEND,
                format!(
                    "limit must be 1 ..= {MAX_APPLICATIONS_PAGE}, not {limit} (the server \
                     silently replaces other values with 1000)"
                ),
            ));
        }
        let version = self.inner.server_version;
        if version >= ServerVersion::V5_10 {
            let mut request = Request::get("api/admin/metrics/applications");
            if let Some(search) = &query.search {
                request = request.with_query("query", search.clone());
            }
            if let Some(offset) = query.offset {
                request = request.with_query("offset", offset.to_string());
            }
            if let Some(limit) = query.limit {
                request = request.with_query("limit", limit.to_string());
            }
            if let Some(sort_by) = &query.sort_by {
                request = request.with_query("sortBy", sort_by.clone());
            }
            if let Some(order) = query.sort_order {
                request = request.with_query("sortOrder", sort_order_text(order));
            }
            return self
                .admin_json(
                    request,
                    Endpoint::new("GET /api/admin/metrics/applications"),
                )
                .await;
        }
        let all = self.application_list(None).await?;
        Ok(page_locally(all, query))
    }

    /// Every application, fetching page after page on 5.10+.
    ///
    /// # Errors
    ///
    /// As every admin read.
    pub async fn all_applications(&self) -> Result<Vec<Application>> {
        if self.inner.server_version < ServerVersion::V5_10 {
            return self.application_list(None).await;
        }
        let mut all = Vec::new();
        loop {
            let page = self
                .applications(
                    &ApplicationsQuery::new()
                        .with_offset(all.len() as u64)
                        .with_limit(MAX_APPLICATIONS_PAGE),
                )
                .await?;
            let got = page.applications.len();
            all.extend(page.applications);
            let total = page.total.unwrap_or(0);
            if got == 0 || all.len() as u64 >= total {
                return Ok(all);
            }
        }
    }

    /// The seed's `GET /api/client/applications?strategyName=X`: applications that implement
    /// a strategy. The server filters on v2 and 4.0 – 5.9; on v3 (where the parameter makes
    /// the server answer 500) and on 5.10+ (where it is ignored) the client filters.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidInput`] for an empty name; otherwise as every admin read.
    pub async fn applications_by_strategy(&self, strategy: &str) -> Result<Vec<Application>> {
        if strategy.trim().is_empty() {
            return Err(Error::invalid_input(BACKEND, "the strategy name is empty"));
        }
        let version = self.inner.server_version;
        let server_filters = version < ServerVersion::V3_0
            || (version >= ServerVersion::V4_0 && version < ServerVersion::V5_10);
        let list = if server_filters {
            self.application_list(Some(strategy)).await?
        } else {
            self.all_applications().await?
        };
        Ok(list
            .into_iter()
            .filter(|app| app.strategies.iter().any(|s| s == strategy))
            .collect())
    }

    /// The whole list from a server that does not page (before 5.10).
    async fn application_list(&self, strategy: Option<&str>) -> Result<Vec<Application>> {
        let (path, label) = if self.inner.server_version < ServerVersion::V3_0 {
            ("api/client/applications", "GET /api/client/applications")
        } else {
            (
                "api/admin/metrics/applications",
                "GET /api/admin/metrics/applications",
            )
        };
        let mut request = Request::get(path);
        if let Some(strategy) = strategy {
            request = request.with_query("strategyName", strategy);
        }
        let page: Applications = self.admin_json(request, Endpoint::new(label)).await?;
        Ok(page.applications)
    }

    /// `GET /api/admin/metrics/applications/:appName`: strategies, instances and the flags
    /// the application reported (`seen_toggles`, which replaced the legacy `seen-toggles`).
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] for an unknown application (the only read endpoint that 404s);
    /// [`Error::InvalidInput`] for an empty name; otherwise as every admin read.
    pub async fn application(&self, app_name: &str) -> Result<ApplicationDetails> {
        let app = segment(app_name, "application name")?;
        let path = if self.inner.server_version < ServerVersion::V3_0 {
            format!("api/client/applications/{app}")
        } else {
            format!("api/admin/metrics/applications/{app}")
        };
        self.admin_json(
            Request::get(path),
            Endpoint::new("GET /api/admin/metrics/applications/:appName"),
        )
        .await
    }

    /// `GET /api/admin/metrics/applications/:appName/overview` (5.10+). An unknown
    /// application gives an empty overview, not an error.
    ///
    /// # Errors
    ///
    /// [`Error::Unsupported`] before 5.10; otherwise as every admin read.
    pub async fn application_overview(&self, app_name: &str) -> Result<ApplicationOverview> {
        let app = segment(app_name, "application name")?;
        self.admin_json(
            Request::get(format!("api/admin/metrics/applications/{app}/overview")),
            Endpoint::new("GET /api/admin/metrics/applications/:appName/overview")
                .since(ServerVersion::V5_10),
        )
        .await
    }

    /// `GET /api/admin/metrics/instances/:appName/environment/:env` (5.10+): instances of
    /// the last 24 hours.
    ///
    /// # Errors
    ///
    /// [`Error::Unsupported`] before 5.10; otherwise as every admin read.
    pub async fn application_instances(
        &self,
        app_name: &str,
        environment: &str,
    ) -> Result<ApplicationInstances> {
        let app = segment(app_name, "application name")?;
        let env = segment(environment, "environment")?;
        self.admin_json(
            Request::get(format!(
                "api/admin/metrics/instances/{app}/environment/{env}"
            )),
            Endpoint::new("GET /api/admin/metrics/instances/:appName/environment/:env")
                .since(ServerVersion::V5_10),
        )
        .await
    }

    /// `GET /api/admin/client-metrics/features/:name` (4.2+): the last hour per environment
    /// and the applications that reported the flag (which replaced `seen-apps`). An unknown
    /// flag gives empty lists, not an error.
    ///
    /// # Errors
    ///
    /// [`Error::Unsupported`] before 4.2; otherwise as every admin read.
    pub async fn feature_metrics(&self, feature: &str) -> Result<FeatureMetrics> {
        let name = segment(feature, "flag name")?;
        self.admin_json(
            Request::get(format!("api/admin/client-metrics/features/{name}")),
            Endpoint::new("GET /api/admin/client-metrics/features/:name")
                .since(ServerVersion::V4_2),
        )
        .await
    }

    /// `GET /api/admin/client-metrics/features/:name/raw?hoursBack=N` (4.2+): hourly rows per
    /// environment and application, zero-filled. `hours_back` must be 1 ..= 48: the server
    /// silently turns anything else into 24.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidInput`] for `hours_back` outside 1 ..= 48; [`Error::Unsupported`]
    /// before 4.2; otherwise as every admin read.
    pub async fn feature_metrics_raw(
        &self,
        feature: &str,
        hours_back: u32,
    ) -> Result<RawFeatureMetrics> {
        if !(1..=MAX_HOURS_BACK).contains(&hours_back) {
            return Err(Error::invalid_input(
                BACKEND,
                format!(
                    "hours_back must be 1 ..= {MAX_HOURS_BACK}, not {hours_back} (the server \
                     would silently use 24)"
                ),
            ));
        }
        let name = segment(feature, "flag name")?;
        self.admin_json(
            Request::get(format!("api/admin/client-metrics/features/{name}/raw"))
                .with_query("hoursBack", hours_back.to_string()),
            Endpoint::new("GET /api/admin/client-metrics/features/:name/raw")
                .since(ServerVersion::V4_2),
        )
        .await
    }

    /// `GET /api/admin/metrics/unknown-flags` (7.0+): flags SDKs reported that do not exist.
    ///
    /// # Errors
    ///
    /// [`Error::Unsupported`] before 7.0; otherwise as every admin read.
    pub async fn unknown_flags(&self) -> Result<UnknownFlags> {
        self.admin_json(
            Request::get("api/admin/metrics/unknown-flags"),
            Endpoint::new("GET /api/admin/metrics/unknown-flags").since(ServerVersion::V7_0),
        )
        .await
    }

    /// The seed's `seen-toggles`: per application, the flags it reported. v2 and v3 – 4.3
    /// only.
    ///
    /// # Errors
    ///
    /// [`Error::Unsupported`] (status 410) on 4.4+, naming the replacement:
    /// [`UnleashClient::application`]'s `seen_toggles`.
    pub async fn seen_toggles(&self) -> Result<Vec<AppSeenToggles>> {
        self.legacy(
            "seen-toggles",
            "the `seenToggles` of each application's details (UnleashClient::application, \
             GET /api/admin/metrics/applications/:appName)",
        )
        .await
    }

    /// The seed's `seen-apps`: per flag, the applications that reported it. v2 and
    /// v3 – 4.3 only.
    ///
    /// # Errors
    ///
    /// [`Error::Unsupported`] (status 410) on 4.4+, naming the replacement:
    /// [`UnleashClient::feature_metrics`]' `seen_applications`.
    pub async fn seen_apps(&self) -> Result<std::collections::BTreeMap<String, Vec<Application>>> {
        self.legacy(
            "seen-apps",
            "the `seenApplications` of each flag's metrics (UnleashClient::feature_metrics, \
             GET /api/admin/client-metrics/features/:name)",
        )
        .await
    }

    /// The seed's `metrics/feature-toggles`: last hour and last minute of every flag. v2 and
    /// v3 – 4.3 only.
    ///
    /// # Errors
    ///
    /// [`Error::Unsupported`] (status 410) on 4.4+, naming the replacement:
    /// [`UnleashClient::feature_metrics`] and [`UnleashClient::feature_metrics_raw`] per flag.
    pub async fn feature_toggles(&self) -> Result<FeatureToggleMetrics> {
        self.legacy(
            "feature-toggles",
            "per-flag metrics: UnleashClient::feature_metrics (last hour, GET \
             /api/admin/client-metrics/features/:name) and feature_metrics_raw (per hour and \
             app, …/raw?hoursBack=N)",
        )
        .await
    }

    /// The legacy `metrics/feature-toggles/:name`: last hour and last minute of one flag.
    /// v3 – 4.3 only (the seed has it in code only).
    ///
    /// # Errors
    ///
    /// [`Error::Unsupported`] (status 410) on 4.4+, naming the replacement:
    /// [`UnleashClient::feature_metrics`].
    pub async fn feature_toggle(&self, feature: &str) -> Result<FeatureToggleWindow> {
        let name = segment(feature, "flag name")?;
        self.legacy(
            &format!("feature-toggles/{name}"),
            "UnleashClient::feature_metrics (GET /api/admin/client-metrics/features/:name, \
             last hour) and feature_metrics_raw (…/raw?hoursBack=N, per hour and app)",
        )
        .await
    }

    async fn legacy<T: DeserializeOwned>(
        &self,
        view: &str,
        replacement: &'static str,
    ) -> Result<T> {
        // v2 served these under /api/client (seen-toggles, seen-apps, metrics/feature-toggles);
        // v3 moved them all under /api/admin/metrics; 4.4 made them 410 Gone.
        let path = if self.inner.server_version < ServerVersion::V3_0 {
            if view.starts_with("feature-toggles") {
                format!("api/client/metrics/{view}")
            } else {
                format!("api/client/{view}")
            }
        } else {
            format!("api/admin/metrics/{view}")
        };
        let label = match view {
            "seen-toggles" => "GET /api/admin/metrics/seen-toggles",
            "seen-apps" => "GET /api/admin/metrics/seen-apps",
            "feature-toggles" => "GET /api/admin/metrics/feature-toggles",
            _ => "GET /api/admin/metrics/feature-toggles/:name",
        };
        self.admin_json(Request::get(path), Endpoint::new(label).legacy(replacement))
            .await
    }

    /// Sends an admin read and decodes it, mapping version-dependent answers.
    async fn admin_json<T: DeserializeOwned>(
        &self,
        request: Request,
        endpoint: Endpoint,
    ) -> Result<T> {
        if let Some(since) = endpoint.since
            && self.inner.server_version < since
        {
            return Err(Error::unsupported(
                BACKEND,
                None,
                format!(
                    "{} needs Unleash {since} or newer; this client is configured for {} \
                     (with_server_version / UNLEASH_SERVER_VERSION)",
                    endpoint.label, self.inner.server_version
                ),
            ));
        }
        self.admin_send(request, endpoint).await?.json()
    }

    async fn admin_send(&self, request: Request, endpoint: Endpoint) -> Result<Response> {
        let inner = &self.inner;
        let result = if inner.admin_login.is_some() {
            let cookie = self.login_cookie(false).await?;
            match inner
                .http
                .send(
                    request
                        .clone()
                        .with_header(header::COOKIE, sensitive(cookie.expose())?),
                )
                .await
            {
                // A v3 session can expire: log in once more.
                Err(Error::Unauthenticated { .. }) => {
                    let cookie = self.login_cookie(true).await?;
                    inner
                        .http
                        .send(request.with_header(header::COOKIE, sensitive(cookie.expose())?))
                        .await
                }
                other => other,
            }
        } else {
            let token = inner.admin_token.as_ref().ok_or_else(|| {
                Error::config(
                    BACKEND,
                    "no admin token: reads need UNLEASH_ADMIN_TOKEN (or with_admin_token; \
                     with_admin_login on Unleash v3)",
                )
            })?;
            inner
                .http
                .send(request.with_header(header::AUTHORIZATION, sensitive(token.expose())?))
                .await
        };
        result.map_err(|error| admin_api_error(error, endpoint, inner.server_version))
    }

    /// The v3 session cookie, logging in when there is none (or `renew`).
    async fn login_cookie(&self, renew: bool) -> Result<Secret<String>> {
        let inner = &self.inner;
        let mut slot = inner.login_cookie.lock().await;
        if let (Some(cookie), false) = (slot.as_ref(), renew) {
            return Ok(cookie.clone());
        }
        let email = inner
            .admin_login
            .as_ref()
            .ok_or_else(|| Error::config(BACKEND, "no admin login configured"))?;
        let body = serde_json::json!({ "email": email.expose() });
        let response = inner
            .http
            .send(
                Request::post("api/admin/login")
                    .with_json(BACKEND, &body)?
                    .with_idempotent(true),
            )
            .await?;
        let cookie = response
            .headers()
            .get_all(header::SET_COOKIE)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .filter_map(|value| value.split(';').next())
            .map(str::trim)
            .filter(|pair| pair.contains('='))
            .collect::<Vec<_>>()
            .join("; ");
        if cookie.is_empty() {
            return Err(Error::api(
                BACKEND,
                401,
                None,
                "POST /api/admin/login answered without a session cookie",
            ));
        }
        let cookie = Secret::new(cookie);
        *slot = Some(cookie.clone());
        Ok(cookie)
    }
}

fn sort_order_text(order: SortOrder) -> &'static str {
    match order {
        SortOrder::Asc => "asc",
        SortOrder::Desc => "desc",
    }
}

/// Applies an [`ApplicationsQuery`] to a full list, as 5.10+ servers do.
fn page_locally(mut all: Vec<Application>, query: &ApplicationsQuery) -> Applications {
    if let Some(search) = query.search.as_deref().map(str::to_lowercase) {
        all.retain(|app| app.app_name.to_lowercase().contains(&search));
    }
    all.sort_by(|a, b| a.app_name.cmp(&b.app_name));
    if query.sort_order == Some(SortOrder::Desc) {
        all.reverse();
    }
    let total = all.len() as u64;
    let offset = usize::try_from(query.offset.unwrap_or(0)).unwrap_or(usize::MAX);
    let limit = query.limit.map_or(usize::MAX, |l| l as usize);
    let applications = all.into_iter().skip(offset).take(limit).collect();
    Applications {
        applications,
        total: Some(total),
    }
}

/// A path segment from user input: non-empty and percent-encoded.
fn segment(value: &str, what: &str) -> Result<String> {
    if value.trim().is_empty() {
        return Err(Error::invalid_input(
            BACKEND,
            format!("the {what} is empty"),
        ));
    }
    Ok(encode_path_segment(value))
}

fn sensitive(value: &str) -> Result<HeaderValue> {
    let mut value = HeaderValue::from_str(value).map_err(|_| {
        Error::config(
            BACKEND,
            "a credential contains characters that cannot be sent in a header",
        )
    })?;
    value.set_sensitive(true);
    Ok(value)
}

fn plain(value: &str) -> Result<HeaderValue> {
    HeaderValue::from_str(value).map_err(|_| {
        Error::config(
            BACKEND,
            format!("`{value}` cannot be sent in an HTTP header"),
        )
    })
}

/// Adds what a 401/403 on `/api/client/*` means to the server's terse message.
pub(crate) fn client_api_error(error: Error) -> Error {
    match error {
        Error::Forbidden {
            backend,
            code,
            message,
            detail,
        } => Error::Forbidden {
            backend,
            code,
            detail,
            message: format!(
                "{message} — wrong token type: /api/client/* needs a backend (client) token \
                 (UNLEASH_API_TOKEN, `<project>:<environment>.<secret>`); Unleash 8 rejects \
                 admin, personal-access and frontend tokens there"
            ),
        },
        Error::Unauthenticated {
            backend,
            code,
            message,
            detail,
        } => Error::Unauthenticated {
            backend,
            code,
            detail,
            message: format!(
                "{message} — the backend token (UNLEASH_API_TOKEN) is missing or unknown to the server"
            ),
        },
        other => other,
    }
}

/// Maps what an admin read's status means for its endpoint and the server version.
fn admin_api_error(error: Error, endpoint: Endpoint, version: ServerVersion) -> Error {
    match error {
        Error::Api { status: 410, .. } => Error::unsupported(
            BACKEND,
            Some(410),
            format!(
                "{} was removed in Unleash 4.4 (the server answered 410 Gone); use {} instead",
                endpoint.label,
                endpoint.replacement.unwrap_or("the current read endpoints"),
            ),
        ),
        Error::NotFound { message, .. } if endpoint.not_found_is_unsupported => {
            let since = endpoint.since.map_or_else(
                || "Unleash v2 – 4.3 (configure the version with with_server_version)".to_owned(),
                |v| format!("Unleash {v}+"),
            );
            Error::unsupported(
                BACKEND,
                Some(404),
                format!(
                    "the server has no {} (404: {message}); it needs {since}, the client is \
                     configured for {version}",
                    endpoint.label
                ),
            )
        }
        Error::Forbidden {
            backend,
            code,
            message,
            detail,
        } => Error::Forbidden {
            backend,
            code,
            detail,
            message: format!(
                "{message} — {} needs an admin token, a personal access token or a service \
                 account (UNLEASH_ADMIN_TOKEN); backend and frontend tokens get 403",
                endpoint.label
            ),
        },
        other => other,
    }
}

pub(crate) fn unleash_error_body(
    status: StatusCode,
    headers: &HeaderMap,
    body: &[u8],
) -> ErrorBody {
    let Ok(serde_json::Value::Object(object)) = serde_json::from_slice::<serde_json::Value>(body)
    else {
        // HTML pages (400 for a non-JSON body, v3's `Cannot GET`) become their text.
        let text = String::from_utf8_lossy(body);
        if text.trim_start().starts_with('<') {
            let stripped = strip_tags(&text);
            return ErrorBody::new(None, body_snippet(stripped.as_bytes()));
        }
        return default_error_body(status, headers, body);
    };
    let code = object
        .get("name")
        .and_then(|v| v.as_str())
        .map(str::to_owned);
    let message = object
        .get("message")
        .and_then(|v| v.as_str())
        .map(str::to_owned);
    let details: Vec<String> = object
        .get("details")
        .and_then(|v| v.as_array())
        .map(|details| {
            details
                .iter()
                .filter_map(|d| d.get("message").and_then(|m| m.as_str()))
                .filter(|m| Some(*m) != message.as_deref())
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    if message.is_none() && details.is_empty() && code.is_none() {
        // Legacy 410 bodies ({"lastHour":{},…}) and other shapes: keep them readable.
        return default_error_body(status, headers, body);
    }
    let message = match (message, details.is_empty()) {
        (Some(message), true) => message,
        (Some(message), false) => format!("{message} Details: {}", details.join(" | ")),
        (None, false) => details.join(" | "),
        (None, true) => status.canonical_reason().unwrap_or("error").to_owned(),
    };
    ErrorBody::new(code, Some(message))
}

fn strip_tags(html: &str) -> String {
    let mut out = String::with_capacity(html.len());
    let mut in_tag = false;
    for c in html.chars() {
        match c {
            '<' => {
                in_tag = true;
                out.push(' ');
            }
            '>' => in_tag = false,
            c if !in_tag => out.push(c),
            _ => {}
        }
    }
    out
}

/// 64 bits that differ on every call, without a `rand` dependency: `RandomState` is seeded
/// per instance from the OS; a counter and the clock make repeated calls distinct.
pub(crate) fn random_u64() -> u64 {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    hasher.write_i64(Utc::now().timestamp_nanos_opt().unwrap_or_default());
    hasher.finish()
}

/// A random (version 4) UUID for `unleash-connection-id`.
pub(crate) fn uuid_v4() -> String {
    let mut bytes = [0u8; 16];
    bytes[..8].copy_from_slice(&random_u64().to_be_bytes());
    bytes[8..].copy_from_slice(&random_u64().to_be_bytes());
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_parse_and_order() {
        assert_eq!(
            ServerVersion::parse("5.10"),
            Some(ServerVersion::new(5, 10, 0))
        );
        assert_eq!(ServerVersion::parse("3"), Some(ServerVersion::new(3, 0, 0)));
        assert_eq!(
            ServerVersion::parse("8.2.0+enterprise"),
            Some(ServerVersion::LATEST)
        );
        assert_eq!(ServerVersion::parse("x.1"), None);
        assert_eq!(ServerVersion::parse("1.2.3.4"), None);
        assert!(ServerVersion::new(5, 9, 9) < ServerVersion::V5_10);
        assert_eq!(ServerVersion::LATEST.to_string(), "8.2.0");
        assert!("bogus".parse::<ServerVersion>().is_err());
    }

    #[test]
    fn uuid_shape() {
        let id = uuid_v4();
        assert_eq!(id.len(), 36);
        assert_eq!(&id[14..15], "4");
        assert!(matches!(&id[19..20], "8" | "9" | "a" | "b"));
        assert_ne!(uuid_v4(), id);
    }

    #[test]
    fn bad_data_error_details_are_kept() {
        let body = br#"{"id":"x","name":"BadDataError","message":"Request validation failed.","details":[{"path":"/body/interval","message":"The `/body/interval` property is required."}]}"#;
        let parsed = unleash_error_body(StatusCode::BAD_REQUEST, &HeaderMap::new(), body);
        assert_eq!(parsed.code.as_deref(), Some("BadDataError"));
        assert_eq!(
            parsed.message.as_deref(),
            Some("Request validation failed. Details: The `/body/interval` property is required.")
        );
    }

    #[test]
    fn html_error_becomes_text() {
        let body = b"<!DOCTYPE html><html><body><pre>Cannot GET /api/client/seen-toggles</pre></body></html>";
        let parsed = unleash_error_body(StatusCode::NOT_FOUND, &HeaderMap::new(), body);
        assert_eq!(
            parsed.message.as_deref(),
            Some("Cannot GET /api/client/seen-toggles")
        );
    }

    #[test]
    fn local_paging_matches_server_semantics() {
        let apps: Vec<Application> = ["b-app", "a-app", "c-other", "d-app"]
            .into_iter()
            .map(|name| Application {
                app_name: name.to_owned(),
                ..Application::default()
            })
            .collect();
        let page = page_locally(
            apps,
            &ApplicationsQuery::new()
                .with_search("APP")
                .with_offset(1)
                .with_limit(1)
                .with_sort_order(SortOrder::Desc),
        );
        assert_eq!(page.total, Some(3));
        assert_eq!(page.applications.len(), 1);
        assert_eq!(page.applications[0].app_name, "b-app");
    }
}
