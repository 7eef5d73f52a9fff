//! The Outline client and its builder.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use metrics_core::http::{HttpClient, Request, Response, encode_path_segment};
use metrics_core::reqwest::Url;
use metrics_core::{ClientOptions, Env, Error, Result, RetryConfig, Secret};
use serde::de::DeserializeOwned;

use crate::BACKEND;
use crate::model::{
    AccessKey, AccessKeyList, DataLimit, HostnameBody, LimitBody, MetricsEnabled, NameBody,
    NewAccessKey, PortBody, Server, ServerMetrics, Since, TransferMetrics,
};
use crate::tls::CertSha256;

/// The environment variable [`OutlineClientBuilder::from_env`] reads the `apiUrl` from.
pub const ENV_API_URL: &str = "OUTLINE_API_URL";
/// The environment variable [`OutlineClientBuilder::from_env`] reads the `certSha256` from.
pub const ENV_CERT_SHA256: &str = "OUTLINE_CERT_SHA256";

/// The pool idle timeout used unless [`ClientOptions::with_pool_idle_timeout`] sets one:
/// under the server's `Keep-Alive: timeout=5`, so the client never picks a socket the
/// server is about to close.
pub const DEFAULT_POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(4);

/// A client for one Outline server's management API.
///
/// Cheap to clone (one shared connection pool). The `apiUrl` is a credential — its path is
/// the server's secret — so `Debug`, `Display` and every error show it as
/// `https://host:port/***`.
///
/// ```no_run
/// # async fn run() -> metrics_core::Result<()> {
/// use outline_client::{NewAccessKey, OutlineClient, Since};
///
/// let client = OutlineClient::builder()
///     .with_install_output(r#"{"apiUrl":"https://203.0.113.7:45678/AbCdEfGhIjKlMnOpQrStUv","certSha256":"0BB78685B1661FD520A3F50763BF8CF680B9CD7AAC01082ACEF03A221BF9A881"}"#)
///     .build()?;
/// let server = client.server().await?;
/// let key = client.access_keys().create(&NewAccessKey::new().with_name("Alice")).await?;
/// client.access_keys().set_data_limit(&key.id, 50_000_000_000).await?;
/// let usage = client.metrics().transfer().await?;
/// println!("{}: {} bytes in 30 days", server.name, usage.total());
/// let window = client.metrics().server_metrics(Since::days(7)?).await?;
/// println!("{} s of tunnel time", window.server.tunnel_time.seconds);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct OutlineClient {
    inner: Arc<Inner>,
}

struct Inner {
    http: HttpClient,
    pinned: bool,
}

impl fmt::Debug for OutlineClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OutlineClient")
            .field("api_url", &self.inner.http.redacted_base_url())
            .field("pinned", &self.inner.pinned)
            .field("retry", self.inner.http.retry_config())
            .finish_non_exhaustive()
    }
}

impl fmt::Display for OutlineClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Outline server at {}",
            self.inner.http.redacted_base_url()
        )
    }
}

impl OutlineClient {
    /// Starts building a client.
    pub fn builder() -> OutlineClientBuilder {
        OutlineClientBuilder::new()
    }

    /// The `apiUrl` as it may be shown: `https://host:port/***`.
    pub fn redacted_api_url(&self) -> &str {
        self.inner.http.redacted_base_url()
    }

    /// The server's `host:port`, which may be shown (the secret path is not part of it).
    pub fn endpoint(&self) -> &str {
        self.inner.http.endpoint()
    }

    /// Whether the server certificate is pinned by `certSha256`.
    pub fn is_pinned(&self) -> bool {
        self.inner.pinned
    }

    /// The metrics endpoints.
    pub fn metrics(&self) -> Metrics<'_> {
        Metrics { client: self }
    }

    /// The access key endpoints.
    pub fn access_keys(&self) -> AccessKeys<'_> {
        AccessKeys { client: self }
    }

    /// `GET /server`: the server's settings. Also a cheap health check.
    ///
    /// # Errors
    ///
    /// Any [`Error`] of the request; [`Error::NotFound`] with code `ResourceNotFound` when
    /// the `apiUrl`'s secret path is wrong.
    pub async fn server(&self) -> Result<Server> {
        self.get_json(Request::get("server")).await
    }

    /// `PUT /name`: renames the server.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidInput`] for an empty name or one longer than 100 UTF-16 units (the
    /// server's rule), without sending; otherwise any [`Error`] of the request.
    pub async fn rename_server(&self, name: &str) -> Result<()> {
        if name.is_empty() {
            return Err(Error::invalid_input(
                BACKEND,
                "the server name must not be empty",
            ));
        }
        let units = name.encode_utf16().count();
        if units > 100 {
            return Err(Error::invalid_input(
                BACKEND,
                format!(
                    "the server name must be at most 100 characters (UTF-16 units); it has {units}"
                ),
            ));
        }
        self.put_json("name", &NameBody { name }).await
    }

    /// `PUT /server/hostname-for-access-keys`: the host put into access URLs of keys created
    /// from now on (existing keys keep theirs until the server restarts).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidInput`] for an empty host or one with whitespace, without sending;
    /// the server checks the rest (400 `InvalidArgument`).
    pub async fn set_hostname_for_access_keys(&self, hostname: &str) -> Result<()> {
        if hostname.is_empty() || hostname.chars().any(char::is_whitespace) {
            return Err(Error::invalid_input(
                BACKEND,
                "the hostname must be a non-empty host name or IP address without spaces",
            ));
        }
        self.put_json(
            "server/hostname-for-access-keys",
            &HostnameBody { hostname },
        )
        .await
    }

    /// `PUT /server/port-for-new-access-keys`.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidInput`] for port 0; the server answers 409 `Conflict` when another
    /// process uses the port.
    pub async fn set_port_for_new_access_keys(&self, port: u16) -> Result<()> {
        if port == 0 {
            return Err(Error::invalid_input(
                BACKEND,
                "port 0 is invalid: use 1 to 65535",
            ));
        }
        self.put_json("server/port-for-new-access-keys", &PortBody { port })
            .await
    }

    /// `PUT /server/access-key-data-limit`: the default limit for keys without their own,
    /// sent as `{"limit":{"bytes":N}}` (0 included).
    ///
    /// # Errors
    ///
    /// Any [`Error`] of the request.
    pub async fn set_default_data_limit(&self, bytes: u64) -> Result<()> {
        self.put_json(
            "server/access-key-data-limit",
            &LimitBody {
                limit: DataLimit { bytes },
            },
        )
        .await
    }

    /// `DELETE /server/access-key-data-limit`.
    ///
    /// # Errors
    ///
    /// Any [`Error`] of the request.
    pub async fn remove_default_data_limit(&self) -> Result<()> {
        self.send(Request::delete("server/access-key-data-limit"))
            .await
            .map(drop)
    }

    async fn send(&self, request: Request) -> Result<Response> {
        let pinned = self.inner.pinned;
        self.inner
            .http
            .send(request)
            .await
            .map_err(|error| with_pinning_hint(error, pinned))
    }

    async fn get_json<T: DeserializeOwned>(&self, request: Request) -> Result<T> {
        self.send(request).await?.json()
    }

    async fn put_json<T: serde::Serialize + ?Sized>(&self, path: &str, body: &T) -> Result<()> {
        let request = Request::put(path).with_json(BACKEND, body)?;
        self.send(request).await.map(drop)
    }
}

/// The metrics endpoints, from [`OutlineClient::metrics`].
#[derive(Clone, Copy, Debug)]
pub struct Metrics<'a> {
    client: &'a OutlineClient,
}

impl Metrics<'_> {
    /// `GET /metrics/enabled`: whether the operator shares anonymous usage metrics with
    /// Jigsaw. It does not gate [`Metrics::transfer`] or [`Metrics::server_metrics`].
    ///
    /// # Errors
    ///
    /// Any [`Error`] of the request.
    pub async fn enabled(&self) -> Result<bool> {
        let body: MetricsEnabled = self
            .client
            .get_json(Request::get("metrics/enabled"))
            .await?;
        Ok(body.metrics_enabled)
    }

    /// `PUT /metrics/enabled`: opts in to (or out of) sharing usage metrics with Jigsaw.
    ///
    /// # Errors
    ///
    /// Any [`Error`] of the request.
    pub async fn set_enabled(&self, enabled: bool) -> Result<()> {
        self.client
            .put_json(
                "metrics/enabled",
                &MetricsEnabled {
                    metrics_enabled: enabled,
                },
            )
            .await
    }

    /// `GET /metrics/transfer`: bytes per access key over the last 30 days.
    ///
    /// # Errors
    ///
    /// Any [`Error`] of the request; 500 `InternalServer` when the server's Prometheus is
    /// down.
    pub async fn transfer(&self) -> Result<TransferMetrics> {
        let response = self.client.send(Request::get("metrics/transfer")).await?;
        response.decode(TransferMetrics::from_json)
    }

    /// `GET /experimental/server/metrics?since=…`: server, location and per-key aggregates
    /// over the window (server 1.12.0 and later).
    ///
    /// # Errors
    ///
    /// [`Error::Unsupported`] when the server answers 404 `ResourceNotFound` — versions
    /// before 1.11.1 have no such endpoint (a wrong `apiUrl` answers the same way;
    /// [`OutlineClient::server`] tells them apart). [`Error::Decode`] for the 1.11.1-rc
    /// shape, whose `server` was an array. Otherwise any [`Error`] of the request.
    pub async fn server_metrics(&self, since: Since) -> Result<ServerMetrics> {
        let request =
            Request::get("experimental/server/metrics").with_query("since", since.to_string());
        match self.client.send(request).await {
            Ok(response) => response.json(),
            Err(Error::NotFound { code, message, .. })
                if code.as_deref() == Some("ResourceNotFound") =>
            {
                Err(Error::unsupported(
                    BACKEND,
                    Some(404),
                    format!(
                        "this server has no GET /experimental/server/metrics (it came with Outline server 1.11.1; older servers answer 404, as does a wrong apiUrl); use metrics().transfer() instead [{message}]"
                    ),
                ))
            }
            Err(other) => Err(other),
        }
    }
}

/// The access key endpoints, from [`OutlineClient::access_keys`].
///
/// Ids are sent percent-encoded as one path segment, so any string id works.
#[derive(Clone, Copy, Debug)]
pub struct AccessKeys<'a> {
    client: &'a OutlineClient,
}

impl AccessKeys<'_> {
    /// `GET /access-keys`: every key, in creation order.
    ///
    /// # Errors
    ///
    /// Any [`Error`] of the request.
    pub async fn list(&self) -> Result<Vec<AccessKey>> {
        let body: AccessKeyList = self.client.get_json(Request::get("access-keys")).await?;
        Ok(body.access_keys)
    }

    /// `GET /access-keys/{id}`.
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] (code `NotFound`) when there is no such key.
    pub async fn get(&self, id: &str) -> Result<AccessKey> {
        let path = key_path(id, "")?;
        self.client
            .get_json(Request::get(path).with_route("access-keys/{id}"))
            .await
    }

    /// `POST /access-keys`: creates a key with a server-chosen id (201).
    ///
    /// Never retried once the request may have reached the server: a retry after a lost
    /// response would create a second key.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidInput`] for port 0 or an empty password; 409 `Conflict` for a port
    /// in use by another process or a password another key has.
    pub async fn create(&self, key: &NewAccessKey) -> Result<AccessKey> {
        key.validate()?;
        let request = Request::post("access-keys").with_json(BACKEND, key)?;
        self.client.get_json(request).await
    }

    /// `PUT /access-keys/{id}`: creates a key with this id (201). An existing id is a 409
    /// `Conflict`; this never updates a key.
    ///
    /// Not retried after the request may have reached the server: had the first attempt
    /// succeeded, the retry would report a 409 for a key that was in fact created.
    ///
    /// # Errors
    ///
    /// As [`AccessKeys::create`], plus [`Error::InvalidInput`] for an empty id.
    pub async fn create_with_id(&self, id: &str, key: &NewAccessKey) -> Result<AccessKey> {
        key.validate()?;
        let request = Request::put(key_path(id, "")?)
            .with_route("access-keys/{id}")
            .with_json(BACKEND, key)?
            .with_idempotent(false);
        self.client.get_json(request).await
    }

    /// `DELETE /access-keys/{id}`.
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] when there is no such key.
    pub async fn delete(&self, id: &str) -> Result<()> {
        let path = key_path(id, "")?;
        self.client
            .send(Request::delete(path).with_route("access-keys/{id}"))
            .await
            .map(drop)
    }

    /// `PUT /access-keys/{id}/name`. Names cannot be cleared: the server rejects `""`.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidInput`] for an empty name; [`Error::NotFound`] for an unknown key.
    pub async fn rename(&self, id: &str, name: &str) -> Result<()> {
        if name.is_empty() {
            return Err(Error::invalid_input(
                BACKEND,
                "an access key name cannot be set to \"\" (the server rejects it)",
            ));
        }
        let path = key_path(id, "/name")?;
        self.client.put_json(&path, &NameBody { name }).await
    }

    /// `PUT /access-keys/{id}/data-limit`, sent as `{"limit":{"bytes":N}}` (0 cuts the key
    /// off).
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] for an unknown key.
    pub async fn set_data_limit(&self, id: &str, bytes: u64) -> Result<()> {
        let path = key_path(id, "/data-limit")?;
        self.client
            .put_json(
                &path,
                &LimitBody {
                    limit: DataLimit { bytes },
                },
            )
            .await
    }

    /// `DELETE /access-keys/{id}/data-limit`: the server default (if any) applies again.
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] for an unknown key.
    pub async fn remove_data_limit(&self, id: &str) -> Result<()> {
        let path = key_path(id, "/data-limit")?;
        self.client
            .send(Request::delete(path).with_route("access-keys/{id}/data-limit"))
            .await
            .map(drop)
    }
}

/// `access-keys/<id><suffix>` with the id as one encoded segment.
fn key_path(id: &str, suffix: &str) -> Result<String> {
    if id.is_empty() {
        return Err(Error::invalid_input(
            BACKEND,
            "the access key id must not be empty",
        ));
    }
    // URL parsers resolve `.`/`..` segments (even percent-encoded), which would send the
    // request to another route.
    if id == "." || id == ".." {
        return Err(Error::invalid_input(
            BACKEND,
            format!("`{id}` cannot be used as an access key id in a URL"),
        ));
    }
    Ok(format!("access-keys/{}{suffix}", encode_path_segment(id)))
}

/// Builds an [`OutlineClient`].
///
/// ```
/// use outline_client::OutlineClient;
///
/// let client = OutlineClient::builder()
///     .with_api_url("https://203.0.113.7:45678/AbCdEfGhIjKlMnOpQrStUv")
///     .with_cert_sha256("0BB78685B1661FD520A3F50763BF8CF680B9CD7AAC01082ACEF03A221BF9A881")
///     .build()?;
/// assert_eq!(client.redacted_api_url(), "https://203.0.113.7:45678/***");
/// assert!(!format!("{client:?} {client}").contains("AbCdEf"));
/// # Ok::<_, metrics_core::Error>(())
/// ```
#[must_use]
pub struct OutlineClientBuilder {
    api_url: Option<Secret<String>>,
    cert_sha256: Option<String>,
    pending_error: Option<String>,
    options: ClientOptions,
    retry: RetryConfig,
}

impl fmt::Debug for OutlineClientBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let api_url = self.api_url.as_ref().map(|url| redacted_url(url.expose()));
        f.debug_struct("OutlineClientBuilder")
            .field("api_url", &api_url)
            .field("cert_sha256", &self.cert_sha256)
            .field("options", &self.options)
            .field("retry", &self.retry)
            .finish_non_exhaustive()
    }
}

impl Default for OutlineClientBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl OutlineClientBuilder {
    /// An empty builder: set at least the `apiUrl`.
    pub fn new() -> Self {
        Self {
            api_url: None,
            cert_sha256: None,
            pending_error: None,
            options: ClientOptions::new(),
            retry: RetryConfig::default(),
        }
    }

    /// A builder with the `apiUrl` from `OUTLINE_API_URL` and the `certSha256` from
    /// `OUTLINE_CERT_SHA256`, where set (empty values count as unset).
    pub fn from_env() -> Self {
        Self::from_env_with(&Env::process())
    }

    /// Like [`from_env`](Self::from_env), reading the variables from `env`.
    ///
    /// ```
    /// use metrics_core::Env;
    /// use outline_client::OutlineClientBuilder;
    ///
    /// let env = Env::from_pairs([("OUTLINE_API_URL", "https://127.0.0.1:1/SeCrEtPaTh")]);
    /// let builder = OutlineClientBuilder::from_env_with(&env);
    /// assert!(!format!("{builder:?}").contains("SeCrEtPaTh"));
    /// ```
    pub fn from_env_with(env: &Env) -> Self {
        let mut builder = Self::new();
        if let Some(url) = env.get(ENV_API_URL) {
            builder = builder.with_api_url(url);
        }
        if let Some(pin) = env.get(ENV_CERT_SHA256) {
            builder = builder.with_cert_sha256(pin);
        }
        builder
    }

    /// Sets the `apiUrl` (`https://host:port/<secret>`), a credential: it is never shown.
    pub fn with_api_url(mut self, api_url: impl Into<String>) -> Self {
        self.api_url = Some(Secret::new(api_url.into()));
        self
    }

    /// Pins the server certificate by its SHA-256 (64 hex digits, any case, `:` allowed).
    /// The check runs inside the TLS handshake; the handshake signatures are still
    /// verified. With a pin no CA roots are used at all, and the pin is enforced even when
    /// the client options accept invalid certificates.
    ///
    /// Without a pin the certificate must be valid for a public CA — which Outline's
    /// self-signed one never is — unless certificate checks are switched off with
    /// [`ClientOptions::with_danger_accept_invalid_certs`], which lets anyone on the path
    /// read the secret `apiUrl`.
    pub fn with_cert_sha256(mut self, cert_sha256: impl Into<String>) -> Self {
        self.cert_sha256 = Some(cert_sha256.into());
        self
    }

    /// Sets the `apiUrl` and `certSha256` from what the installer prints, either the JSON
    /// line pasted into Outline Manager, `{"apiUrl":"…","certSha256":"…"}`, or the
    /// installer's `access.txt` (`certSha256:…` and `apiUrl:…` lines). A text that is
    /// neither makes [`OutlineClientBuilder::build`] fail.
    pub fn with_install_output(mut self, text: impl AsRef<str>) -> Self {
        match parse_install_output(text.as_ref()) {
            Ok((api_url, cert_sha256)) => {
                self.api_url = Some(Secret::new(api_url));
                self.cert_sha256 = cert_sha256;
            }
            Err(message) => self.pending_error = Some(message),
        }
        self
    }

    /// Sets the HTTP options. Unless they set a pool idle timeout,
    /// [`DEFAULT_POOL_IDLE_TIMEOUT`] (4 s) is used. An injected `reqwest::Client`
    /// ([`ClientOptions::with_http_client`]) cannot be combined with a pin.
    pub fn with_client_options(mut self, options: ClientOptions) -> Self {
        self.options = options;
        self
    }

    /// Sets the retry policy. POSTs (key creation) are only retried when the request
    /// cannot have reached the server.
    pub fn with_retry(mut self, retry: RetryConfig) -> Self {
        self.retry = retry;
        self
    }

    /// Validates the settings and builds the client and its connection pool.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] for a missing or malformed `apiUrl` (never echoed) or
    /// `certSha256`, a pin with an `http://` URL or an injected client, a pin without the
    /// `rustls` feature, or a TLS stack that fails to initialise.
    pub fn build(self) -> Result<OutlineClient> {
        if let Some(message) = self.pending_error {
            return Err(Error::config(BACKEND, message));
        }
        let Some(api_url) = self.api_url else {
            return Err(Error::config(
                BACKEND,
                format!(
                    "no apiUrl: set it with with_api_url, with_install_output or {ENV_API_URL}"
                ),
            ));
        };
        let raw = api_url.expose().trim();
        let url = Url::parse(raw)
            .map_err(|e| Error::config(BACKEND, format!("the apiUrl is not a valid URL: {e}")))?;
        if !matches!(url.scheme(), "https" | "http") {
            return Err(Error::config(
                BACKEND,
                "the apiUrl must start with https:// (Outline serves only HTTPS)",
            ));
        }
        if url.path().trim_matches('/').is_empty() {
            return Err(Error::config(
                BACKEND,
                "the apiUrl has no secret path: it should look like https://host:port/<secret>, as the installer printed it",
            ));
        }
        let pin = match &self.cert_sha256 {
            None => None,
            Some(text) => Some(
                text.parse::<CertSha256>()
                    .map_err(|e| Error::config(BACKEND, e.to_string()))?,
            ),
        };
        if pin.is_some() && url.scheme() != "https" {
            return Err(Error::config(
                BACKEND,
                "a certSha256 pin needs an https:// apiUrl",
            ));
        }
        let client = build_reqwest_client(&self.options, pin)?;
        let http = HttpClient::builder(BACKEND, raw)
            .with_secret_path(true)
            .with_options(&self.options)
            .with_http_client(client)
            .with_retry(self.retry)
            .build()?;
        Ok(OutlineClient {
            inner: Arc::new(Inner {
                http,
                pinned: pin.is_some(),
            }),
        })
    }
}

fn build_reqwest_client(
    options: &ClientOptions,
    pin: Option<CertSha256>,
) -> Result<metrics_core::reqwest::Client> {
    if let Some(injected) = options.http_client() {
        if pin.is_some() {
            return Err(Error::config(
                BACKEND,
                "a certSha256 pin cannot be enforced on an injected reqwest::Client; drop ClientOptions::with_http_client or the pin",
            ));
        }
        return Ok(injected.clone());
    }
    let mut builder = options.client_builder();
    if options.pool_idle_timeout().is_none() {
        builder = builder.pool_idle_timeout(DEFAULT_POOL_IDLE_TIMEOUT);
    }
    if let Some(pin) = pin {
        builder = with_pin(builder, pin)?;
    }
    builder.build().map_err(|e| {
        let e = e.without_url();
        let mut message = e.to_string();
        let mut source = std::error::Error::source(&e);
        while let Some(inner) = source {
            message.push_str(": ");
            message.push_str(&inner.to_string());
            source = inner.source();
        }
        Error::config(
            BACKEND,
            format!("could not build the HTTP client: {message}"),
        )
    })
}

#[cfg(feature = "rustls")]
fn with_pin(
    builder: metrics_core::reqwest::ClientBuilder,
    pin: CertSha256,
) -> Result<metrics_core::reqwest::ClientBuilder> {
    let config = crate::tls::pinned_client_config(pin).map_err(|e| {
        Error::config(
            BACKEND,
            format!("could not set up the pinned TLS configuration: {e}"),
        )
    })?;
    Ok(builder.use_preconfigured_tls(config))
}

#[cfg(not(feature = "rustls"))]
fn with_pin(
    _builder: metrics_core::reqwest::ClientBuilder,
    _pin: CertSha256,
) -> Result<metrics_core::reqwest::ClientBuilder> {
    Err(Error::config(
        BACKEND,
        "pinning certSha256 needs the `rustls` feature of outline-client",
    ))
}

/// Reads `{"apiUrl","certSha256"}` or the `access.txt` lines.
fn parse_install_output(text: &str) -> std::result::Result<(String, Option<String>), String> {
    let text = text.trim();
    if text.starts_with('{') {
        #[derive(serde::Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct InstallOutput {
            api_url: String,
            #[serde(default)]
            cert_sha256: Option<String>,
        }
        // serde_json's messages quote only the unexpected token, never the whole input,
        // but a broken line may hold the secret: say only where it failed.
        let parsed: InstallOutput = serde_json::from_str(text).map_err(|e| {
            format!(
                "the install output is not the JSON the installer prints ({{\"apiUrl\":…,\"certSha256\":…}}): error at line {} column {}",
                e.line(),
                e.column()
            )
        })?;
        return Ok((parsed.api_url, parsed.cert_sha256));
    }
    let mut api_url = None;
    let mut cert_sha256 = None;
    for line in text.lines() {
        if let Some((key, value)) = line.split_once(':') {
            match key.trim() {
                "apiUrl" => api_url = Some(value.trim().to_owned()),
                "certSha256" => cert_sha256 = Some(value.trim().to_owned()),
                _ => {}
            }
        }
    }
    match api_url {
        Some(url) => Ok((url, cert_sha256)),
        None => Err(
            "the install output has no apiUrl: pass the installer's {\"apiUrl\":…,\"certSha256\":…} line or its access.txt"
                .to_owned(),
        ),
    }
}

/// `https://host:port/***`, or `***` when the text is not a URL.
fn redacted_url(raw: &str) -> String {
    match Url::parse(raw.trim()) {
        Ok(url) => {
            let host = url.host_str().unwrap_or_default();
            let port = url.port().map(|p| format!(":{p}")).unwrap_or_default();
            format!("{}://{host}{port}/***", url.scheme())
        }
        Err(_) => "***".to_owned(),
    }
}

/// A TLS failure without a pin is almost always Outline's self-signed certificate: say so.
/// (The pipeline has already scrubbed the secret path from every message.)
fn with_pinning_hint(mut error: Error, pinned: bool) -> Error {
    if let Error::Tls { message, .. } = &mut error
        && !pinned
    {
        message
            .push_str(" (Outline servers use a self-signed certificate: pin it with certSha256)");
    }
    error
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn install_output_forms() {
        let json = r#" {"apiUrl":"https://1.2.3.4:5/Secret","certSha256":"AB"} "#;
        assert_eq!(
            parse_install_output(json).unwrap(),
            ("https://1.2.3.4:5/Secret".to_owned(), Some("AB".to_owned()))
        );
        let txt = "certSha256:AB\napiUrl:https://1.2.3.4:5/Secret\n";
        assert_eq!(
            parse_install_output(txt).unwrap(),
            ("https://1.2.3.4:5/Secret".to_owned(), Some("AB".to_owned()))
        );
        let broken = parse_install_output(r#"{"apiUrl":"https://1.2.3.4:5/Secret""#).unwrap_err();
        assert!(!broken.contains("Secret"), "{broken}");
        assert!(parse_install_output("hello").is_err());
    }

    #[test]
    fn key_paths() {
        assert_eq!(key_path("0", "").unwrap(), "access-keys/0");
        assert_eq!(
            key_path("a/b c", "/name").unwrap(),
            "access-keys/a%2Fb%20c/name"
        );
        assert_eq!(
            key_path("ключ", "").unwrap(),
            "access-keys/%D0%BA%D0%BB%D1%8E%D1%87"
        );
        for bad in ["", ".", ".."] {
            assert!(matches!(key_path(bad, ""), Err(Error::InvalidInput { .. })));
        }
        assert_eq!(key_path("...", "").unwrap(), "access-keys/...");
    }
}
