//! HTTP settings shared by every client.

use std::fmt;
use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};

use crate::error::{Error, Result};

/// The default response-size limit: 16 MiB.
pub const DEFAULT_MAX_RESPONSE_BYTES: usize = 16 * 1024 * 1024;

/// How a client builds (or borrows) its `reqwest::Client`.
///
/// One `ClientOptions` builds one connection pool, once, when the backend client is built;
/// every request of that client shares it.
///
/// ```
/// use std::time::Duration;
/// use metrics_core::ClientOptions;
///
/// let options = ClientOptions::new()
///     .with_timeout(Duration::from_secs(10))
///     .with_pool_idle_timeout(Duration::from_secs(4))
///     .with_user_agent("my-exporter/1.0");
/// assert_eq!(options.timeout(), Duration::from_secs(10));
/// ```
#[derive(Clone)]
pub struct ClientOptions {
    connect_timeout: Duration,
    timeout: Duration,
    pool_idle_timeout: Option<Duration>,
    pool_max_idle_per_host: Option<usize>,
    user_agent: String,
    default_headers: HeaderMap,
    accept_invalid_certs: bool,
    max_response_bytes: usize,
    http_client: Option<reqwest::Client>,
}

impl Default for ClientOptions {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(5),
            timeout: Duration::from_secs(30),
            pool_idle_timeout: None,
            pool_max_idle_per_host: None,
            user_agent: concat!("metrics-hub/", env!("CARGO_PKG_VERSION")).to_owned(),
            default_headers: HeaderMap::new(),
            accept_invalid_certs: false,
            max_response_bytes: DEFAULT_MAX_RESPONSE_BYTES,
            http_client: None,
        }
    }
}

impl fmt::Debug for ClientOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Header values may be credentials; show names only.
        let header_names: Vec<&str> = self
            .default_headers
            .keys()
            .map(HeaderName::as_str)
            .collect();
        f.debug_struct("ClientOptions")
            .field("connect_timeout", &self.connect_timeout)
            .field("timeout", &self.timeout)
            .field("pool_idle_timeout", &self.pool_idle_timeout)
            .field("pool_max_idle_per_host", &self.pool_max_idle_per_host)
            .field("user_agent", &self.user_agent)
            .field("default_headers", &header_names)
            .field("accept_invalid_certs", &self.accept_invalid_certs)
            .field("max_response_bytes", &self.max_response_bytes)
            .field(
                "http_client",
                &self.http_client.as_ref().map(|_| "injected"),
            )
            .finish()
    }
}

impl ClientOptions {
    /// The defaults: connect timeout 5 s, request timeout 30 s, reqwest's pool idle timeout,
    /// user agent `metrics-hub/<version>`, certificate verification on, 16 MiB body limit.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the TCP + TLS connect timeout.
    #[must_use]
    pub fn with_connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Sets the whole-request timeout (connect, send, and read the full body).
    #[must_use]
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Closes pooled connections idle for longer than this. Keep it under the server's own
    /// keep-alive timeout, or the client will pick sockets the server is closing.
    #[must_use]
    pub fn with_pool_idle_timeout(mut self, timeout: Duration) -> Self {
        self.pool_idle_timeout = Some(timeout);
        self
    }

    /// Caps the idle connections kept per host.
    #[must_use]
    pub fn with_pool_max_idle_per_host(mut self, max: usize) -> Self {
        self.pool_max_idle_per_host = Some(max);
        self
    }

    /// Sets the `User-Agent` header.
    #[must_use]
    pub fn with_user_agent(mut self, user_agent: impl Into<String>) -> Self {
        self.user_agent = user_agent.into();
        self
    }

    /// Adds a header sent with every request. Values are marked sensitive, so they are
    /// never shown in reqwest's own debug output either.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] when the name or value is not a valid HTTP header.
    pub fn with_default_header(mut self, name: &str, value: &str) -> Result<Self> {
        let name = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| Error::config("core", format!("`{name}` is not a valid header name")))?;
        let mut value = HeaderValue::from_str(value).map_err(|_| {
            Error::config("core", format!("the value of header `{name}` is not valid"))
        })?;
        value.set_sensitive(true);
        self.default_headers.insert(name, value);
        Ok(self)
    }

    /// **Dangerous.** Accepts any TLS certificate: expired, self-signed, for another host.
    /// Anyone on the network path can then read and change the traffic, credentials
    /// included. Prefer a pinned fingerprint where the backend offers one (Outline).
    #[must_use]
    pub fn with_danger_accept_invalid_certs(mut self, accept: bool) -> Self {
        self.accept_invalid_certs = accept;
        self
    }

    /// Sets the largest response body the client will read; larger bodies are an
    /// [`Error::BodyTooLarge`], detected without buffering more than the limit.
    #[must_use]
    pub fn with_max_response_bytes(mut self, limit: usize) -> Self {
        self.max_response_bytes = limit;
        self
    }

    /// Uses this `reqwest::Client` instead of building one. Its own timeouts, TLS and pool
    /// settings apply; the options above that configure a client are then ignored.
    #[must_use]
    pub fn with_http_client(mut self, client: reqwest::Client) -> Self {
        self.http_client = Some(client);
        self
    }

    /// The connect timeout.
    pub fn connect_timeout(&self) -> Duration {
        self.connect_timeout
    }

    /// The whole-request timeout.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// The pool idle timeout, if set.
    pub fn pool_idle_timeout(&self) -> Option<Duration> {
        self.pool_idle_timeout
    }

    /// The user agent.
    pub fn user_agent(&self) -> &str {
        &self.user_agent
    }

    /// The response-size limit in bytes.
    pub fn max_response_bytes(&self) -> usize {
        self.max_response_bytes
    }

    /// Whether invalid certificates are accepted.
    pub fn accepts_invalid_certs(&self) -> bool {
        self.accept_invalid_certs
    }

    /// The injected client, if any.
    pub fn http_client(&self) -> Option<&reqwest::Client> {
        self.http_client.as_ref()
    }

    /// A `reqwest::ClientBuilder` with these options applied, for backends that add their
    /// own TLS configuration (Outline's certificate pin) before building.
    pub fn client_builder(&self) -> reqwest::ClientBuilder {
        let mut builder = reqwest::Client::builder()
            .connect_timeout(self.connect_timeout)
            .timeout(self.timeout)
            .user_agent(self.user_agent.clone())
            .default_headers(self.default_headers.clone())
            // None of the five APIs needs a redirect, and following one could carry a
            // request (and Outline's secret path) somewhere unexpected.
            .redirect(reqwest::redirect::Policy::none());
        // Without a TLS feature there are no certificates to accept.
        #[cfg(any(feature = "rustls", feature = "native-tls"))]
        {
            builder = builder.danger_accept_invalid_certs(self.accept_invalid_certs);
        }
        if let Some(idle) = self.pool_idle_timeout {
            builder = builder.pool_idle_timeout(idle);
        }
        if let Some(max) = self.pool_max_idle_per_host {
            builder = builder.pool_max_idle_per_host(max);
        }
        builder
    }

    /// The injected client, or a new one built from these options.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] when the TLS backend cannot be initialised.
    pub fn build_http_client(&self, backend: &'static str) -> Result<reqwest::Client> {
        if let Some(client) = &self.http_client {
            return Ok(client.clone());
        }
        self.client_builder().build().map_err(|e| {
            Error::config(
                backend,
                format!(
                    "could not build the HTTP client: {}",
                    crate::error::chain_message(&e.without_url())
                ),
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults() {
        let options = ClientOptions::new();
        assert_eq!(options.connect_timeout(), Duration::from_secs(5));
        assert_eq!(options.timeout(), Duration::from_secs(30));
        assert_eq!(options.max_response_bytes(), 16 * 1024 * 1024);
        assert!(!options.accepts_invalid_certs());
        assert!(options.user_agent().starts_with("metrics-hub/"));
    }

    #[test]
    fn debug_hides_header_values() {
        let options = ClientOptions::new()
            .with_default_header("x-api-key", "topsecret")
            .unwrap();
        let shown = format!("{options:?}");
        assert!(shown.contains("x-api-key"));
        assert!(!shown.contains("topsecret"));
    }

    #[test]
    fn bad_header_is_a_config_error() {
        assert!(matches!(
            ClientOptions::new().with_default_header("bad header", "v"),
            Err(Error::Config { .. })
        ));
    }
}
