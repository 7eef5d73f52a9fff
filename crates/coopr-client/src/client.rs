//! The client and its builder.

use std::fmt;

use metrics_core::http::{HttpClient, Request, redact_url};
use metrics_core::reqwest::Url;
use metrics_core::reqwest::header::{HeaderName, HeaderValue};
use metrics_core::{Auth, ClientOptions, Env, Error, Result, RetryConfig, Secret};

use crate::BACKEND;
use crate::error::{parse_error_body, refine};
use crate::model::{NodeUsage, NodeUsageQuery, TenantQueues};

/// The user id that makes a caller an admin of its tenant.
pub const ADMIN_USER: &str = "admin";
/// The built-in superadmin tenant (its id and its name).
pub const SUPERADMIN_TENANT: &str = "superadmin";

/// Header carrying the user id.
pub const USER_HEADER: &str = "Coopr-UserID";
/// Header carrying the tenant **name** (despite its name).
pub const TENANT_HEADER: &str = "Coopr-TenantID";
/// Header carrying the API key (sent when configured; the server never checks it).
pub const API_KEY_HEADER: &str = "Coopr-ApiKey";

/// Header names as `HeaderName::from_static` needs them (HTTP header names are
/// case-insensitive; the server reads them either way).
const USER_HEADER_LOWER: &str = "coopr-userid";
const TENANT_HEADER_LOWER: &str = "coopr-tenantid";
const QUEUES_PATH: &str = "metrics/queues";
const NODE_USAGE_PATH: &str = "metrics/nodes/usage";

/// A client of a Coopr server's metrics API (`/v2/metrics/queues`,
/// `/v2/metrics/nodes/usage`).
///
/// Cheap to clone: clones share one connection pool.
///
/// ```no_run
/// # async fn demo() -> metrics_core::Result<()> {
/// use coopr_client::{CooprClient, GroupBy, NodeUsageQuery};
///
/// let client = CooprClient::builder()
///     .with_base_url("http://coopr.example.com:55054")
///     .with_user_id("admin")
///     .with_tenant("superadmin")
///     .build()?;
/// for (tenant, queue) in client.queue_metrics().await? {
///     println!("{tenant}: {} queued, {} in progress", queue.queued, queue.in_progress);
/// }
/// let usage = client
///     .node_usage(&NodeUsageQuery::new().with_range(1_424_390_400, 1_424_476_800).with_group_by(GroupBy::Hour))
///     .await?;
/// println!("{} node-seconds", usage.total());
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct CooprClient {
    http: HttpClient,
    user_id: String,
    tenant: String,
}

impl fmt::Debug for CooprClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CooprClient")
            .field("base_url", &self.http.redacted_base_url())
            .field("user_id", &self.user_id)
            .field("tenant", &self.tenant)
            .finish_non_exhaustive()
    }
}

impl CooprClient {
    /// Starts building a client.
    pub fn builder() -> CooprClientBuilder {
        CooprClientBuilder::new()
    }

    /// The API root requests go to, ending in `/v2`.
    pub fn base_url(&self) -> &str {
        self.http.redacted_base_url()
    }

    /// The server's `host:port`.
    pub fn endpoint(&self) -> &str {
        self.http.endpoint()
    }

    /// The user id sent in `Coopr-UserID`.
    pub fn user_id(&self) -> &str {
        &self.user_id
    }

    /// The tenant name sent in `Coopr-TenantID`.
    pub fn tenant(&self) -> &str {
        &self.tenant
    }

    /// Whether the caller is an admin (user id `admin`), who may read queue metrics.
    pub fn is_admin(&self) -> bool {
        self.user_id == ADMIN_USER
    }

    /// Whether the caller is the superadmin (`admin` in the built-in `superadmin` tenant),
    /// who sees every tenant.
    pub fn is_superadmin(&self) -> bool {
        self.is_admin() && self.tenant == SUPERADMIN_TENANT
    }

    /// Task-queue metrics by tenant name: every tenant for the superadmin, the caller's own
    /// tenant for a tenant admin. Values may be up to 10 s old (the server caches them).
    ///
    /// # Errors
    ///
    /// [`Error::Forbidden`] (kind [`QueueMetricsForbidden`](crate::CooprErrorKind)) when the
    /// user is not `admin`; [`Error::NotFound`] for an unknown tenant name;
    /// [`Error::Unauthenticated`], [`Error::Api`] for the server's 500s,
    /// [`Error::Unsupported`] for a server without the endpoint, and transport and decode
    /// errors.
    pub async fn queue_metrics(&self) -> Result<TenantQueues> {
        self.http
            .send_json(Request::get(QUEUES_PATH))
            .await
            .map_err(|e| refine(e, QUEUES_PATH))
    }

    /// Node usage over time, computed by the server from node creations and deletions.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidInput`] before sending when [`NodeUsageQuery::validate`] fails;
    /// [`Error::Api`] with status 405 (kind
    /// [`TenantNotAllowed`](crate::CooprErrorKind::TenantNotAllowed)) when a caller other
    /// than the superadmin names another tenant; 400 for parameters the server rejects;
    /// [`Error::NotFound`] for an unknown tenant name; [`Error::Unsupported`] for a server
    /// without the endpoint; transport and decode errors.
    pub async fn node_usage(&self, query: &NodeUsageQuery) -> Result<NodeUsage> {
        query.validate()?;
        let request =
            Request::get(NODE_USAGE_PATH).with_query_params(BACKEND, &query.to_params())?;
        self.http
            .send_json(request)
            .await
            .map_err(|e| refine(e, NODE_USAGE_PATH))
    }
}

/// Builds a [`CooprClient`].
///
/// Environment variables read by [`CooprClientBuilder::from_env`]:
///
/// | variable | setting |
/// |---|---|
/// | `COOPR_URL` | [`with_base_url`](Self::with_base_url) |
/// | `COOPR_USER_ID` | [`with_user_id`](Self::with_user_id) |
/// | `COOPR_TENANT_ID` | [`with_tenant`](Self::with_tenant) (a tenant **name**, like the header) |
/// | `COOPR_API_KEY` | [`with_api_key`](Self::with_api_key) |
///
/// ```
/// use coopr_client::CooprClient;
///
/// let client = CooprClient::builder()
///     .with_base_url("http://127.0.0.1:55054")
///     .with_user_id("admin")
///     .with_tenant("superadmin")
///     .with_api_key("s3cr3t")
///     .build()?;
/// assert_eq!(client.base_url(), "http://127.0.0.1:55054/v2");
/// assert!(!format!("{client:?}").contains("s3cr3t"));
/// # Ok::<_, metrics_core::Error>(())
/// ```
#[must_use]
#[derive(Clone, Default)]
pub struct CooprClientBuilder {
    base_url: Option<String>,
    user_id: Option<String>,
    tenant: Option<String>,
    api_key: Option<Secret<String>>,
    options: ClientOptions,
    retry: RetryConfig,
}

impl fmt::Debug for CooprClientBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CooprClientBuilder")
            .field("base_url", &self.base_url.as_deref().map(redact_url))
            .field("user_id", &self.user_id)
            .field("tenant", &self.tenant)
            .field("api_key", &self.api_key.as_ref().map(|_| "***"))
            .field("options", &self.options)
            .field("retry", &self.retry)
            .finish()
    }
}

impl CooprClientBuilder {
    /// A builder with nothing set.
    pub fn new() -> Self {
        Self::default()
    }

    /// A builder with the settings the `COOPR_*` environment variables give (see the
    /// type's documentation); unset variables leave their setting empty, and
    /// [`build`](Self::build) reports what is still missing.
    pub fn from_env() -> Self {
        Self::from_env_with(&Env::process())
    }

    /// Like [`from_env`](Self::from_env), reading the variables from `env`.
    ///
    /// ```
    /// use coopr_client::CooprClientBuilder;
    /// use metrics_core::Env;
    ///
    /// let env = Env::from_pairs([("COOPR_URL", "http://coopr:55054"), ("COOPR_USER_ID", "admin"), ("COOPR_TENANT_ID", "acme")]);
    /// let client = CooprClientBuilder::from_env_with(&env).build().unwrap();
    /// assert_eq!(client.tenant(), "acme");
    /// ```
    pub fn from_env_with(env: &Env) -> Self {
        let mut builder = Self::new();
        builder.base_url = env.get("COOPR_URL");
        builder.user_id = env.get("COOPR_USER_ID");
        builder.tenant = env.get("COOPR_TENANT_ID");
        builder.api_key = env.secret("COOPR_API_KEY");
        builder
    }

    /// The server's API root, `http://<host>:55054/v2`. `/v2` is appended when the URL does
    /// not already end with it, so `http://<host>:55054` works too.
    pub fn with_base_url(mut self, url: impl Into<String>) -> Self {
        self.base_url = Some(url.into());
        self
    }

    /// The user id sent in `Coopr-UserID`. `admin` is the admin of its tenant.
    pub fn with_user_id(mut self, user_id: impl Into<String>) -> Self {
        self.user_id = Some(user_id.into());
        self
    }

    /// The tenant **name** sent in `Coopr-TenantID` (the server resolves it by name).
    /// `superadmin` with user `admin` is the superadmin.
    pub fn with_tenant(mut self, tenant_name: impl Into<String>) -> Self {
        self.tenant = Some(tenant_name.into());
        self
    }

    /// The API key sent in `Coopr-ApiKey`. Optional: Coopr servers read it but never check
    /// it, so a wrong key is not an error.
    pub fn with_api_key(mut self, api_key: impl Into<String>) -> Self {
        self.api_key = Some(Secret::new(api_key.into()));
        self
    }

    /// Sets the HTTP options (timeouts, user agent, pool, body limit, TLS).
    pub fn with_client_options(mut self, options: ClientOptions) -> Self {
        self.options = options;
        self
    }

    /// Sets the retry policy. Both endpoints are GETs and are retried on connect errors,
    /// timeouts, 429 and 5xx.
    pub fn with_retry(mut self, retry: RetryConfig) -> Self {
        self.retry = retry;
        self
    }

    /// Validates the settings and builds the client with its connection pool.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] when the base URL, user id or tenant is missing or empty, the URL
    /// is not an absolute `http(s)` URL, or a value cannot be sent in an HTTP header.
    pub fn build(self) -> Result<CooprClient> {
        let required = |value: Option<String>, what: &str, setter: &str, var: &str| {
            value
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
                .ok_or_else(|| {
                    Error::config(
                        BACKEND,
                        format!("the {what} is not set; call {setter} or set {var}"),
                    )
                })
        };
        let base_url = required(self.base_url, "base URL", "with_base_url", "COOPR_URL")?;
        let user_id = required(self.user_id, "user id", "with_user_id", "COOPR_USER_ID")?;
        let tenant = required(self.tenant, "tenant name", "with_tenant", "COOPR_TENANT_ID")?;

        // The user id and tenant name say who is asking; only the API key is a secret.
        let identity = |name: &'static str, value: &str, setter: &str| {
            HeaderValue::from_str(value)
                .map_err(|_| {
                    Error::config(
                        BACKEND,
                        format!("the {setter} value cannot be sent in an HTTP header"),
                    )
                })
                .map(|value| (HeaderName::from_static(name), value))
        };
        let (user_name, user_value) = identity(USER_HEADER_LOWER, &user_id, "with_user_id")?;
        let (tenant_name, tenant_value) = identity(TENANT_HEADER_LOWER, &tenant, "with_tenant")?;
        let credentials = self
            .api_key
            .map(|key| Auth::Headers(vec![(API_KEY_HEADER.to_owned(), key)]))
            .unwrap_or_default();
        let http = HttpClient::builder(BACKEND, api_root(&base_url))
            .with_auth(credentials)
            .with_constant_header(user_name, user_value)
            .with_constant_header(tenant_name, tenant_value)
            .with_options(&self.options)
            .with_retry(self.retry)
            .with_error_body_parser(parse_error_body)
            .build()?;
        Ok(CooprClient {
            http,
            user_id,
            tenant,
        })
    }
}

/// Appends `/v2` unless the URL's path already ends with it. A URL that does not parse is
/// passed on as it is, for the HTTP layer to report.
fn api_root(base_url: &str) -> String {
    let trimmed = base_url.trim().trim_end_matches('/');
    match Url::parse(trimmed) {
        Ok(url) if !url.path().trim_end_matches('/').ends_with("/v2") => {
            format!("{trimmed}/v2")
        }
        _ => trimmed.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn from_env_reads_the_coopr_variables() {
        let vars = [
            ("COOPR_URL", "http://coopr:55054"),
            ("COOPR_USER_ID", "admin"),
            ("COOPR_TENANT_ID", "acme"),
            ("COOPR_API_KEY", "k3y"),
        ];
        let builder = CooprClientBuilder::from_env_with(&Env::from_pairs(vars));
        assert!(builder.api_key.is_some());
        let client = builder.build().unwrap();
        assert_eq!(client.base_url(), "http://coopr:55054/v2");
        assert_eq!(client.user_id(), "admin");
        assert_eq!(client.tenant(), "acme");
        assert!(!client.is_superadmin());

        let err = CooprClientBuilder::from_env_with(&Env::from_fn(|_| Some(" ".to_owned())))
            .build()
            .unwrap_err();
        assert!(err.to_string().contains("COOPR_URL"), "{err}");
    }

    #[test]
    fn the_builder_debug_hides_a_password_in_the_url() {
        let builder = CooprClientBuilder::new().with_base_url("http://user:PaSsWoRd@coopr:55054");
        let shown = format!("{builder:?}");
        assert!(!shown.contains("PaSsWoRd"), "{shown}");
        assert!(shown.contains("coopr:55054"), "{shown}");
    }

    #[test]
    fn api_root_gets_v2_once() {
        assert_eq!(api_root("http://h:55054"), "http://h:55054/v2");
        assert_eq!(api_root("http://h:55054/"), "http://h:55054/v2");
        assert_eq!(api_root("http://h:55054/v2/"), "http://h:55054/v2");
        assert_eq!(api_root("https://v2/coopr"), "https://v2/coopr/v2");
        assert_eq!(api_root("not a url"), "not a url");
    }
}
