//! [`UnleashClient`] and its builder.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use metrics_core::http::{HttpClient, Request, redact_url};
use metrics_core::reqwest::header::{self, HeaderName, HeaderValue};
use metrics_core::{ClientOptions, Env, Error, Result, RetryConfig, Secret};

use crate::BACKEND;
use crate::error::{client_api_error, unleash_error_body};
use crate::model::{MetricsBody, MetricsBucket, RegisterBody};
use crate::recorder::{MetricsRecorder, RecorderConfig};
use crate::versions::ServerVersion;

/// The SDK name this client reports in `sdkVersion` and `unleash-sdk` unless
/// [`UnleashClientBuilder::with_sdk_version`] says otherwise.
pub const DEFAULT_SDK_NAME: &str = "metrics-hub-unleash";

/// The Unleash client-specification version whose metrics format this client follows,
/// sent as `specVersion`.
pub const SPEC_VERSION: &str = "5.1.9";

/// The default metrics interval: 60 s, like the Node and Python SDKs.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(60);

/// Pooled connections are closed after this long idle, under unleash-server's 15 s
/// keep-alive timeout, so that a request rarely goes out on a socket the server is closing.
/// When one does, the connection closes before any answer and the recorder sends the counts
/// again (see its delivery contract); the timeout saves that round trip.
const DEFAULT_POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(10);

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
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) http: HttpClient,
    api_token: Option<Secret<String>>,
    pub(crate) admin_token: Option<Secret<String>>,
    pub(crate) admin_login: Option<Secret<String>>,
    pub(crate) login_cookie: tokio::sync::Mutex<Option<Secret<String>>>,
    app_name: String,
    instance_id: String,
    connection_id: String,
    sdk_version: String,
    platform_version: String,
    strategies: Vec<String>,
    interval: Duration,
    started: DateTime<Utc>,
    pub(crate) server_version: ServerVersion,
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
/// [`from_env()`](Self::from_env) reads these variables from the process environment, and
/// [`from_env_with`](Self::from_env_with) from any [`Env`]:
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
            .field("url", &self.url.as_deref().map(redact_url))
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
        Self::from_env_with(&Env::process())
    }

    /// A builder filled from the `UNLEASH_*` variables of `env` (see the table above).
    ///
    /// ```
    /// use metrics_core::Env;
    /// use unleash_client::UnleashClientBuilder;
    ///
    /// let env = Env::from_pairs([
    ///     ("UNLEASH_URL", "http://127.0.0.1:4242/api"),
    ///     ("UNLEASH_ADMIN_TOKEN", "*:*.secret"),
    ///     ("UNLEASH_FEATURES", "a, b,"),
    /// ]);
    /// let client = UnleashClientBuilder::from_env_with(&env).build().unwrap();
    /// assert_eq!(client.base_url(), "http://127.0.0.1:4242");
    /// assert_eq!(client.features(), ["a", "b"]);
    /// ```
    pub fn from_env_with(env: &Env) -> Self {
        let mut builder = Self::new();
        builder.url = env.get("UNLEASH_URL");
        builder.api_token = env.secret("UNLEASH_API_TOKEN");
        builder.admin_token = env.secret("UNLEASH_ADMIN_TOKEN");
        builder.admin_login = env.secret("UNLEASH_ADMIN_LOGIN");
        builder.app_name = env.get("UNLEASH_APP_NAME");
        builder.instance_id = env.get("UNLEASH_INSTANCE_ID");
        // Parsed in `build`, which reports what is wrong.
        builder.server_version_text = env.get("UNLEASH_SERVER_VERSION");
        builder.interval_text = env.get("UNLEASH_METRICS_INTERVAL_MS");
        builder.features = env.list("UNLEASH_FEATURES");
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
                fastrand::u32(..1_000_000),
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
        let connection_id = uuid::Uuid::new_v4().to_string();
        let interval_ms = u64::try_from(interval.as_millis()).unwrap_or(u64::MAX);
        // The SDK identification headers are the same on every request: built and checked
        // once here. An admin-only client has no application to name.
        let identification = [
            ("unleash-appname", app_name.clone()),
            ("unleash-instanceid", instance_id.clone()),
            ("unleash-connection-id", connection_id.clone()),
            ("unleash-sdk", sdk_version.clone()),
            ("unleash-interval", interval_ms.to_string()),
        ];
        let mut http = HttpClient::builder(BACKEND, url)
            .with_options(&options)
            .with_retry(self.retry.unwrap_or_default())
            .with_error_body_parser(unleash_error_body);
        // The tokens go in per request (client or admin API), not as the client's `Auth`:
        // register them so the pipeline scrubs them from anything a server echoes.
        for token in [&api_token, &admin_token].into_iter().flatten() {
            http = http.with_secret(token);
        }
        for (name, value) in identification {
            if !value.is_empty() {
                http = http.with_constant_header(HeaderName::from_static(name), plain(&value)?);
            }
        }
        let http = http.build()?;

        Ok(UnleashClient {
            inner: Arc::new(Inner {
                http,
                api_token,
                admin_token,
                admin_login,
                login_cookie: tokio::sync::Mutex::new(None),
                app_name,
                instance_id,
                connection_id,
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

    /// The `unleash-connection-id` sent with every request (a UUID v4, one per client and its
    /// clones).
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

    /// The server's `host:port`.
    pub fn endpoint(&self) -> &str {
        self.inner.http.endpoint()
    }

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

    /// Adds the backend token (the identification headers are on every request already).
    fn client_request(&self, request: Request) -> Result<Request> {
        let token = self.inner.api_token.as_ref().ok_or_else(|| {
            Error::config(
                BACKEND,
                "no backend (client) token: set UNLEASH_API_TOKEN or call with_api_token",
            )
        })?;
        Ok(request.with_header(header::AUTHORIZATION, sensitive(token.expose())?))
    }
}

pub(crate) fn sensitive(value: &str) -> Result<HeaderValue> {
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
