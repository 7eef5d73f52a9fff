//! The HTTP pipeline every backend sends its requests through.
//!
//! One place does what each client would otherwise do slightly differently: joining the base
//! URL without losing its path, authentication, timeouts, the response-size limit, mapping
//! error statuses to [`Error`] while keeping the server's error body, decoding JSON with the
//! path of a failing field, and retries that respect idempotency.

use std::borrow::Cow;
use std::error::Error as StdError;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use bytes::{Bytes, BytesMut};
use reqwest::header::{self, HeaderMap, HeaderName, HeaderValue};
use reqwest::{Method, StatusCode, Url};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tracing::Instrument as _;

use crate::disposition::Processing;
use crate::error::{Error, Result, SharedError, chain_message, truncate_chars};
use crate::options::ClientOptions;
use crate::retry::RetryConfig;
use crate::secret::Secret;

/// How many characters of a non-JSON error body an [`Error`] keeps.
const ERROR_BODY_SNIPPET_CHARS: usize = 200;
/// Error bodies are read up to this size; the rest is not needed for a message.
const ERROR_BODY_READ_LIMIT: usize = 64 * 1024;

/// How a client proves who it is.
#[derive(Clone, Default)]
#[non_exhaustive]
pub enum Auth {
    /// No credentials (Outline: the secret is the URL path).
    #[default]
    None,
    /// `Authorization: Bearer <token>`.
    Bearer(Secret<String>),
    /// HTTP Basic. AppOptics puts its token in `username` with an empty password.
    Basic {
        /// The user name.
        username: Secret<String>,
        /// The password.
        password: Secret<String>,
    },
    /// Headers sent verbatim: Unleash's `Authorization: <token>`, Coopr's `Coopr-ApiKey`.
    Headers(Vec<(String, Secret<String>)>),
}

impl fmt::Debug for Auth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::None => f.write_str("None"),
            Self::Bearer(_) => f.write_str("Bearer(***)"),
            Self::Basic { .. } => f.write_str("Basic(***)"),
            Self::Headers(headers) => f
                .debug_list()
                .entries(headers.iter().map(|(name, _)| format!("{name}: ***")))
                .finish(),
        }
    }
}

impl Auth {
    /// The texts of the credentials, as they could come back in an echoed header or body.
    fn secret_texts(&self) -> Vec<String> {
        match self {
            Self::None => Vec::new(),
            Self::Bearer(token) => vec![token.expose().clone()],
            Self::Basic { username, password } => vec![
                username.expose().clone(),
                password.expose().clone(),
                base64::engine::general_purpose::STANDARD.encode(format!(
                    "{}:{}",
                    username.expose(),
                    password.expose()
                )),
            ],
            Self::Headers(headers) => headers.iter().map(|(_, v)| v.expose().clone()).collect(),
        }
    }

    fn to_headers(&self, backend: &'static str) -> Result<Vec<(HeaderName, HeaderValue)>> {
        let bad_value = |what: &str| {
            Error::config(
                backend,
                format!("the {what} contains characters that cannot be sent in an HTTP header"),
            )
        };
        let pairs = match self {
            Self::None => Vec::new(),
            Self::Bearer(token) => {
                let value = HeaderValue::from_str(&format!("Bearer {}", token.expose()))
                    .map_err(|_| bad_value("token"))?;
                vec![(header::AUTHORIZATION, value)]
            }
            Self::Basic { username, password } => {
                let encoded = base64::engine::general_purpose::STANDARD.encode(format!(
                    "{}:{}",
                    username.expose(),
                    password.expose()
                ));
                let value = HeaderValue::from_str(&format!("Basic {encoded}"))
                    .map_err(|_| bad_value("user name or password"))?;
                vec![(header::AUTHORIZATION, value)]
            }
            Self::Headers(headers) => headers
                .iter()
                .map(|(name, value)| {
                    let name = HeaderName::from_bytes(name.as_bytes()).map_err(|_| {
                        Error::config(backend, format!("`{name}` is not a valid header name"))
                    })?;
                    let value = HeaderValue::from_str(value.expose())
                        .map_err(|_| bad_value(&format!("value of header `{name}`")))?;
                    Ok((name, value))
                })
                .collect::<Result<_>>()?,
        };
        Ok(pairs
            .into_iter()
            .map(|(name, mut value)| {
                value.set_sensitive(true);
                (name, value)
            })
            .collect())
    }
}

/// What a backend's error body says: its own code and message, and the backend's typed
/// reading of it.
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct ErrorBody {
    /// The server's error code (`"NotFound"`, `"BadDataError"`).
    pub code: Option<String>,
    /// The server's message.
    pub message: Option<String>,
    /// The backend's own typed reading of the body, returned by
    /// [`Error::detail`](crate::Error::detail).
    pub detail: Option<SharedError>,
    /// How long to wait, when the backend says so in its own headers rather than in
    /// `Retry-After` (AppOptics' rate-limit headers).
    pub retry_after: Option<Duration>,
}

impl ErrorBody {
    /// A body with a code and a message.
    pub fn new(code: Option<String>, message: Option<String>) -> Self {
        Self {
            code,
            message,
            detail: None,
            retry_after: None,
        }
    }

    /// Attaches the backend's typed reading of the body.
    #[must_use]
    pub fn with_detail(mut self, detail: SharedError) -> Self {
        self.detail = Some(detail);
        self
    }

    /// Sets how long the backend asks to wait.
    #[must_use]
    pub fn with_retry_after(mut self, wait: Option<Duration>) -> Self {
        self.retry_after = wait;
        self
    }
}

/// Reads a backend's error body. Gets the status, the headers and at most 64 KiB of body.
pub type ErrorBodyParser = fn(StatusCode, &HeaderMap, &[u8]) -> ErrorBody;

/// The parser used unless a backend sets its own: a JSON object's `code`/`name`/`error`
/// and `message`/`reason`/`error`/`errors`, or else the start of the body as text.
///
/// ```
/// use metrics_core::http::default_error_body;
/// use reqwest::{StatusCode, header::HeaderMap};
///
/// let body = br#"{"code":"NotFound","message":"Access key \"9\" not found"}"#;
/// let parsed = default_error_body(StatusCode::NOT_FOUND, &HeaderMap::new(), body);
/// assert_eq!(parsed.code.as_deref(), Some("NotFound"));
/// assert_eq!(parsed.message.as_deref(), Some("Access key \"9\" not found"));
/// ```
pub fn default_error_body(_status: StatusCode, _headers: &HeaderMap, body: &[u8]) -> ErrorBody {
    if let Ok(serde_json::Value::Object(object)) = serde_json::from_slice(body) {
        let text = |key: &str| match object.get(key) {
            Some(serde_json::Value::String(s)) => Some(s.clone()),
            Some(serde_json::Value::Null) | None => None,
            Some(other) => Some(other.to_string()),
        };
        let code = text("code").or_else(|| text("name"));
        let message = text("message")
            .or_else(|| text("reason"))
            .or_else(|| text("error"))
            .or_else(|| text("errors"))
            .or_else(|| text("detail"));
        if code.is_some() || message.is_some() {
            return ErrorBody::new(code, message);
        }
    }
    ErrorBody::new(None, body_snippet(body))
}

/// The start of a body as one line of text, or `None` when it is empty.
pub fn body_snippet(body: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(body);
    let collapsed = text.split_whitespace().collect::<Vec<_>>().join(" ");
    (!collapsed.is_empty()).then(|| truncate_chars(&collapsed, ERROR_BODY_SNIPPET_CHARS))
}

/// A request, relative to the client's base URL.
///
/// ```
/// use metrics_core::http::Request;
///
/// let request = Request::get("metrics/transfer").with_query("since", "1h");
/// assert!(request.is_idempotent());
/// assert!(!Request::post("api/client/metrics").is_idempotent());
/// ```
#[derive(Clone)]
pub struct Request {
    method: Method,
    path: String,
    query: Vec<(String, String)>,
    headers: HeaderMap,
    body: Option<Bytes>,
    idempotent: bool,
    retry: bool,
    timeout: Option<Duration>,
    from_origin: bool,
    route: Option<&'static str>,
}

impl fmt::Debug for Request {
    // The body is left out: it can hold credentials (a login's e-mail and password).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Request")
            .field("method", &self.method)
            .field("route", &self.route())
            .field("body_bytes", &self.body.as_ref().map(Bytes::len))
            .field("idempotent", &self.idempotent)
            .finish_non_exhaustive()
    }
}

impl Request {
    /// A request with this method and path. GET, HEAD, PUT and DELETE count as idempotent,
    /// everything else not.
    pub fn new(method: Method, path: impl Into<String>) -> Self {
        let idempotent = matches!(
            method,
            Method::GET | Method::HEAD | Method::PUT | Method::DELETE | Method::OPTIONS
        );
        Self {
            method,
            path: path.into(),
            query: Vec::new(),
            headers: HeaderMap::new(),
            body: None,
            idempotent,
            retry: true,
            timeout: None,
            from_origin: false,
            route: None,
        }
    }

    /// A GET request.
    pub fn get(path: impl Into<String>) -> Self {
        Self::new(Method::GET, path)
    }

    /// A POST request (not idempotent unless marked so).
    pub fn post(path: impl Into<String>) -> Self {
        Self::new(Method::POST, path)
    }

    /// A PUT request.
    pub fn put(path: impl Into<String>) -> Self {
        Self::new(Method::PUT, path)
    }

    /// A DELETE request.
    pub fn delete(path: impl Into<String>) -> Self {
        Self::new(Method::DELETE, path)
    }

    /// A PATCH request.
    pub fn patch(path: impl Into<String>) -> Self {
        Self::new(Method::PATCH, path)
    }

    /// Appends a query parameter (repeatable: `?tag=a&tag=b`).
    #[must_use]
    pub fn with_query(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.query.push((name.into(), value.into()));
        self
    }

    /// Appends the query parameters of a `Serialize` struct: its fields in order, `None`
    /// fields left out. Sequences are not supported (`serde_urlencoded` refuses them): add a
    /// repeated name with [`Request::with_query`] once per value.
    ///
    /// ```
    /// use metrics_core::http::Request;
    ///
    /// #[derive(serde::Serialize)]
    /// struct Page<'a> { offset: u64, length: u32, name: Option<&'a str> }
    ///
    /// let request = Request::get("metrics")
    ///     .with_query_params("appoptics", &Page { offset: 100, length: 50, name: None })
    ///     .unwrap();
    /// assert_eq!(request.query(), [("offset".to_owned(), "100".to_owned()), ("length".to_owned(), "50".to_owned())]);
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::InvalidInput`] when `params` is not a flat struct or map of scalars.
    pub fn with_query_params<T: Serialize + ?Sized>(
        mut self,
        backend: &'static str,
        params: &T,
    ) -> Result<Self> {
        let encoded = serde_urlencoded::to_string(params).map_err(|e| {
            Error::invalid_input(
                backend,
                format!("could not encode the query parameters: {e}"),
            )
        })?;
        // Back to pairs, so that every parameter is encoded once, the same way, in `url_for`.
        let pairs: Vec<(String, String)> = serde_urlencoded::from_str(&encoded).map_err(|e| {
            Error::invalid_input(
                backend,
                format!("could not encode the query parameters: {e}"),
            )
        })?;
        self.query.extend(pairs);
        Ok(self)
    }

    /// The query parameters, in order.
    pub fn query(&self) -> &[(String, String)] {
        &self.query
    }

    /// Adds a header.
    #[must_use]
    pub fn with_header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.headers.append(name, value);
        self
    }

    /// Sets a JSON body and `Content-Type: application/json`.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidInput`] when `value` cannot be serialized (a map with non-string
    /// keys, a serializer that fails).
    pub fn with_json<T: Serialize + ?Sized>(
        self,
        backend: &'static str,
        value: &T,
    ) -> Result<Self> {
        let body = serde_json::to_vec(value).map_err(|e| {
            Error::invalid_input(
                backend,
                format!("could not serialize the request body: {e}"),
            )
        })?;
        Ok(self.with_body(body, HeaderValue::from_static("application/json")))
    }

    /// Sets a body that is already serialized, with its content type.
    #[must_use]
    pub fn with_body(mut self, body: impl Into<Bytes>, content_type: HeaderValue) -> Self {
        self.body = Some(body.into());
        self.headers.insert(header::CONTENT_TYPE, content_type);
        self
    }

    /// Marks the request as safe (or not) to send twice.
    #[must_use]
    pub fn with_idempotent(mut self, idempotent: bool) -> Self {
        self.idempotent = idempotent;
        self
    }

    /// Turns retries off for this request, for callers that keep and resend the data
    /// themselves (the AppOptics queue, the Unleash recorder).
    #[must_use]
    pub fn without_retries(mut self) -> Self {
        self.retry = false;
        self
    }

    /// Overrides the client's request timeout for this request.
    #[must_use]
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Resolves the path against the base URL's origin (`scheme://host:port/`) instead of the
    /// base URL itself, for the few routes that live outside the API's path prefix (a health
    /// check at the server root).
    #[must_use]
    pub fn from_origin(mut self) -> Self {
        self.from_origin = true;
        self
    }

    /// Names the route this request's path was made from (`access-keys/{id}`), for traces
    /// and logs. Without it the path itself is shown, which is right for paths without ids.
    #[must_use]
    pub fn with_route(mut self, template: &'static str) -> Self {
        self.route = Some(template);
        self
    }

    /// The route template, or the path when none was set.
    pub fn route(&self) -> &str {
        self.route.unwrap_or(&self.path)
    }

    /// Whether sending this request twice is harmless.
    pub fn is_idempotent(&self) -> bool {
        self.idempotent
    }

    /// The HTTP method.
    pub fn method(&self) -> &Method {
        &self.method
    }

    /// The path relative to the base URL.
    pub fn path(&self) -> &str {
        &self.path
    }
}

/// A successful (2xx) response with its whole body.
#[derive(Clone, Debug)]
pub struct Response {
    backend: &'static str,
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
    redactor: Redactor,
}

impl Response {
    /// The status code.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The headers.
    pub fn headers(&self) -> &HeaderMap {
        &self.headers
    }

    /// The body.
    pub fn body(&self) -> &Bytes {
        &self.body
    }

    /// Takes the body.
    pub fn into_body(self) -> Bytes {
        self.body
    }

    /// Decodes the body as JSON into `T`.
    ///
    /// # Errors
    ///
    /// [`Error::Decode`] naming the path of the failing field.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T> {
        self.decode(|body| decode_json(self.backend, body))
    }

    /// Decodes the body with a backend's own decoder. An error it returns quotes the body
    /// only after the client's secrets were scrubbed from it.
    ///
    /// # Errors
    ///
    /// What `decode` returns, scrubbed.
    pub fn decode<T>(&self, decode: impl Fn(&[u8]) -> Result<T>) -> Result<T> {
        decode(&self.body).map_err(|first| {
            // Scrubbing the message afterwards would miss a secret cut off by a quote's end:
            // decode the scrubbed body again to make the error from text without secrets.
            let mut error = match self.redactor.scrub_bytes(&self.body) {
                Cow::Owned(clean) => decode(&clean).err().unwrap_or(first),
                Cow::Borrowed(_) => first,
            };
            self.redactor.scrub_error(&mut error);
            error
        })
    }

    /// The body as UTF-8 text (invalid sequences replaced).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Decodes JSON, and on failure decodes again to find the path of the failing field — the
/// fast path pays nothing for the error detail.
///
/// ```
/// use metrics_core::{Error, http::decode_json};
///
/// #[derive(Debug, serde::Deserialize)]
/// struct Keys { keys: Vec<Key> }
/// #[derive(Debug, serde::Deserialize)]
/// struct Key { port: u16 }
///
/// let err = decode_json::<Keys>("outline", br#"{"keys":[{"port":1},{"port":"x"}]}"#).unwrap_err();
/// assert!(matches!(err, Error::Decode { ref path, .. } if path == "keys[1].port"));
/// ```
///
/// # Errors
///
/// [`Error::Decode`] when the body is not JSON of that shape.
pub fn decode_json<T: DeserializeOwned>(backend: &'static str, body: &[u8]) -> Result<T> {
    match serde_json::from_slice(body) {
        Ok(value) => Ok(value),
        Err(first) => {
            let mut deserializer = serde_json::Deserializer::from_slice(body);
            let (path, inner) = match serde_path_to_error::deserialize::<_, T>(&mut deserializer) {
                Err(err) => (err.path().to_string(), err.into_inner()),
                Ok(_) => (String::new(), first),
            };
            let mut message = inner.to_string();
            if inner.is_eof() {
                message.push_str(" (the body ended early: truncated response?)");
            } else if inner.is_syntax()
                && let Some(start) = body_snippet(&body[..body.len().min(256)])
            {
                message.push_str(&format!(
                    " (the body is not JSON; it starts with `{}`)",
                    truncate_chars(&start, 60)
                ));
            }
            // A hostile key can be megabytes long; the path names it, it need not hold it.
            let path = if path == "." {
                String::new()
            } else {
                truncate_chars(&path, 200)
            };
            Err(Error::decode(backend, path, message))
        }
    }
}

/// A URL as it may be shown in a `Debug` or a message: user name and password taken out,
/// query and fragment dropped (they can carry tokens). Text that does not parse as a URL is
/// not shown at all.
///
/// ```
/// use metrics_core::http::redact_url;
///
/// assert_eq!(redact_url("https://user:pw@go.vumi.org/api/v1/go?access_token=t"), "https://***@go.vumi.org/api/v1/go");
/// assert_eq!(redact_url("http://127.0.0.1:55054/v2"), "http://127.0.0.1:55054/v2");
/// assert_eq!(redact_url("not a url with a pw"), "<not a URL>");
/// ```
pub fn redact_url(url: &str) -> String {
    let Ok(mut parsed) = Url::parse(url.trim()) else {
        return "<not a URL>".to_owned();
    };
    let had_userinfo = !parsed.username().is_empty() || parsed.password().is_some();
    let _ = parsed.set_username("");
    let _ = parsed.set_password(None);
    parsed.set_query(None);
    parsed.set_fragment(None);
    let shown = parsed.as_str().trim_end_matches('/').to_owned();
    match (had_userinfo, shown.split_once("://")) {
        (true, Some((scheme, rest))) => format!("{scheme}://***@{rest}"),
        _ => shown,
    }
}

/// Percent-encodes one path segment (an id, a metric name) so that `/`, `?`, `#` and
/// spaces in it stay inside the segment.
///
/// ```
/// assert_eq!(metrics_core::http::encode_path_segment("a b/c"), "a%20b%2Fc");
/// ```
pub fn encode_path_segment(segment: &str) -> String {
    percent_encoding::utf8_percent_encode(segment, PATH_SEGMENT).to_string()
}

/// Everything but RFC 3986's unreserved characters (`A-Z a-z 0-9 - . _ ~`) is encoded.
const PATH_SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// A configured HTTP client for one backend: one connection pool, cheap to clone.
///
/// ```no_run
/// # async fn run() -> metrics_core::Result<()> {
/// use metrics_core::{Auth, ClientOptions, Secret, http::{HttpClient, Request}};
///
/// let http = HttpClient::builder("vumi", "https://go.vumi.org/api/v1/go")
///     .with_auth(Auth::Bearer(Secret::from("token")))
///     .with_options(&ClientOptions::new())
///     .build()?;
/// let body: serde_json::Value = http.send(Request::get("metrics/")).await?.json()?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct HttpClient {
    inner: Arc<Inner>,
}

struct Inner {
    backend: &'static str,
    /// The base URL, parsed once: a request's URL is a copy with its path and query set.
    base_url_parsed: Url,
    /// `scheme://host:port/`, parsed once, for [`Request::from_origin`].
    origin: Url,
    redacted_base_url: String,
    /// `host:port`, for errors and traces.
    endpoint: String,
    server_address: String,
    server_port: u16,
    client: reqwest::Client,
    /// Sent with every request: the credentials (marked sensitive) and the backend's
    /// constant headers, built and validated once.
    constant_headers: Vec<(HeaderName, HeaderValue)>,
    auth_kind: Auth,
    /// The credentials' texts, scrubbed from everything a response or a URL puts into an
    /// error or a log event: servers echo request paths (Outline's `ResourceNotFound`) and
    /// sometimes headers.
    redactor: Redactor,
    retry: RetryConfig,
    max_response_bytes: usize,
    error_body: ErrorBodyParser,
}

impl fmt::Debug for HttpClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpClient")
            .field("backend", &self.inner.backend)
            .field("base_url", &self.inner.redacted_base_url)
            .field("auth", &self.inner.auth_kind)
            .field("retry", &self.inner.retry)
            .field("max_response_bytes", &self.inner.max_response_bytes)
            .finish_non_exhaustive()
    }
}

/// Builds an [`HttpClient`].
#[must_use]
pub struct HttpClientBuilder {
    backend: &'static str,
    base_url: Secret<String>,
    secret_path: bool,
    auth: Auth,
    options: ClientOptions,
    http_client: Option<reqwest::Client>,
    retry: RetryConfig,
    error_body: ErrorBodyParser,
    constant_headers: Vec<(HeaderName, HeaderValue)>,
    extra_secrets: Vec<String>,
}

impl fmt::Debug for HttpClientBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpClientBuilder")
            .field("backend", &self.backend)
            .field("auth", &self.auth)
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl HttpClient {
    /// Starts building a client for `backend` (the crate's `BACKEND`) at `base_url`. Request
    /// paths are appended to it with `/`, so a path prefix (Outline's secret, `/v2`) is kept.
    pub fn builder(backend: &'static str, base_url: impl Into<String>) -> HttpClientBuilder {
        HttpClientBuilder {
            backend,
            base_url: Secret::new(base_url.into()),
            secret_path: false,
            auth: Auth::None,
            options: ClientOptions::default(),
            http_client: None,
            retry: RetryConfig::default(),
            error_body: default_error_body,
            constant_headers: Vec::new(),
            extra_secrets: Vec::new(),
        }
    }

    /// The backend name.
    pub fn backend(&self) -> &'static str {
        self.inner.backend
    }

    /// The base URL as it may be shown: with a secret path replaced by `***`.
    pub fn redacted_base_url(&self) -> &str {
        &self.inner.redacted_base_url
    }

    /// The server's `host:port`, which may be shown.
    pub fn endpoint(&self) -> &str {
        &self.inner.endpoint
    }

    /// The retry settings.
    pub fn retry_config(&self) -> &RetryConfig {
        &self.inner.retry
    }

    /// Sends a request, retrying as [`RetryConfig`] allows, and returns the 2xx response.
    ///
    /// # Errors
    ///
    /// Any [`Error`]: the status mapped to its variant with the server's code and message,
    /// [`Error::Timeout`], [`Error::Transport`], [`Error::Tls`], [`Error::BodyTooLarge`].
    pub async fn send(&self, request: Request) -> Result<Response> {
        let started = Instant::now();
        let retry = &self.inner.retry;
        let mut retries = 0;
        loop {
            let span = tracing::debug_span!(
                "http.request",
                otel.kind = "client",
                otel.name = %format_args!("{} {}", request.method, request.route()),
                backend = self.inner.backend,
                http.request.method = %request.method,
                url.template = request.route(),
                server.address = %self.inner.server_address,
                server.port = self.inner.server_port,
                http.request.resend_count = retries,
                http.response.status_code = tracing::field::Empty,
                error.type = tracing::field::Empty,
                elapsed_ms = tracing::field::Empty,
            );
            let attempt_started = Instant::now();
            let outcome = self.attempt(&request).instrument(span.clone()).await;
            span.record(
                "elapsed_ms",
                u64::try_from(attempt_started.elapsed().as_millis()).unwrap_or(u64::MAX),
            );
            let error = match outcome {
                Ok(response) => {
                    span.record("http.response.status_code", response.status.as_u16());
                    return Ok(response);
                }
                Err(error) => error,
            };
            if let Some(status) = error.status() {
                span.record("http.response.status_code", status);
            }
            span.record("error.type", error.kind());
            let disposition = error.disposition();
            let may_retry = request.retry
                && retries < retry.max_retries
                && disposition.may_resend(request.idempotent);
            if !may_retry {
                return Err(error);
            }
            let wait = disposition
                .retry_after()
                .unwrap_or_else(|| retry.backoff_for(retries));
            if started.elapsed() + wait > retry.retry_timeout {
                return Err(error);
            }
            // `error` was scrubbed when it was made: logging it cannot leak a secret.
            span.in_scope(|| {
                tracing::debug!(
                    wait_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX),
                    error = %error,
                    "retrying"
                );
            });
            tokio::time::sleep(wait).await;
            retries += 1;
        }
    }

    /// Sends a request and decodes its JSON body.
    ///
    /// # Errors
    ///
    /// As [`HttpClient::send`], plus [`Error::Decode`].
    pub async fn send_json<T: DeserializeOwned>(&self, request: Request) -> Result<T> {
        self.send(request).await?.json()
    }

    fn url_for(&self, request: &Request) -> Result<Url> {
        // A path may carry its own query: servers hand out "next page" links that way.
        let (path, query_in_path) = match request.path.split_once('?') {
            Some((path, query)) => (path, Some(query)),
            None => (request.path.as_str(), None),
        };
        let path = path.trim_start_matches('/');
        if path.contains('#') || query_in_path.is_some_and(|q| q.contains('#')) {
            return Err(Error::invalid_input(
                self.inner.backend,
                format!("`{}` does not make a valid URL", request.route()),
            ));
        }
        // A copy of the URL parsed at build time, with the path set: no reparsing of the
        // scheme and host (and no IDNA) per request.
        let mut url = if request.from_origin {
            self.inner.origin.clone()
        } else {
            self.inner.base_url_parsed.clone()
        };
        if !path.is_empty() {
            let base_path = url.path().trim_end_matches('/');
            let joined = format!("{base_path}/{path}");
            url.set_path(&joined);
        }
        if let Some(query) = query_in_path {
            url.set_query(Some(query));
        }
        if !request.query.is_empty() {
            url.query_pairs_mut().extend_pairs(&request.query);
        }
        Ok(url)
    }

    /// One attempt. Every error it returns was scrubbed of the client's secrets here, where
    /// it was made, before anything logs it.
    async fn attempt(&self, request: &Request) -> Result<Response> {
        self.attempt_unscrubbed(request).await.map_err(|mut error| {
            self.inner.redactor.scrub_error(&mut error);
            error
        })
    }

    async fn attempt_unscrubbed(&self, request: &Request) -> Result<Response> {
        let backend = self.inner.backend;
        let url = self.url_for(request)?;
        let mut builder = self.inner.client.request(request.method.clone(), url);
        for (name, value) in &self.inner.constant_headers {
            builder = builder.header(name, value);
        }
        for (name, value) in &request.headers {
            builder = builder.header(name, value);
        }
        if let Some(body) = &request.body {
            // Bytes clones share the buffer: a retry does not copy the body.
            builder = builder.body(body.clone());
        }
        if let Some(timeout) = request.timeout {
            builder = builder.timeout(timeout);
        }

        let mut response = builder
            .send()
            .await
            .map_err(|e| self.send_error(e, request))?;
        let status = response.status();
        tracing::trace!(status = status.as_u16(), "response head");
        // Taken, not cloned: the body is read from the response without its headers.
        let headers = std::mem::take(response.headers_mut());

        if status.is_success() {
            let body = read_body(backend, response, self.inner.max_response_bytes).await?;
            return Ok(Response {
                backend,
                status,
                headers,
                body,
                redactor: self.inner.redactor.clone(),
            });
        }

        // An error body is only needed for its message: read a bounded prefix, and do not
        // let a broken error body hide the status.
        let body = read_body(backend, response, ERROR_BODY_READ_LIMIT)
            .await
            .unwrap_or_default();
        // Scrubbed before the backend's parser reads it, so that no typed detail it builds
        // can hold an echoed secret either.
        let body = self.inner.redactor.scrub_bytes(&body);
        let parsed = (self.inner.error_body)(status, &headers, &body);
        let retry_after = match status {
            StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE => {
                parse_retry_after(&headers)
            }
            _ => None,
        };
        let message = parsed
            .message
            .unwrap_or_else(|| status.canonical_reason().unwrap_or_default().to_owned());
        let mut error = Error::api(backend, status.as_u16(), parsed.code, message)
            .with_retry_after(retry_after.or(parsed.retry_after));
        if let Some(detail) = parsed.detail {
            error = error.with_detail(detail);
        }
        Err(error)
    }

    fn send_error(&self, error: reqwest::Error, request: &Request) -> Error {
        let backend = self.inner.backend;
        // The URL may hold a secret (Outline): drop it before the error is kept anywhere.
        let error = error.without_url();
        let detail = chain_message(&error);
        let processing = wire_processing(&error);
        if is_tls_failure(&error) {
            return Error::Tls {
                backend,
                message: detail,
                source: Some(Arc::new(error)),
            };
        }
        if error.is_timeout() {
            return Error::Timeout {
                backend,
                message: format!(
                    "{} {} got no complete response in time: {detail}",
                    request.method,
                    request.route()
                ),
                processing,
            };
        }
        let message = if processing == Processing::NotSent {
            format!("could not connect to {}: {detail}", self.inner.endpoint)
        } else {
            format!("{} {} failed: {detail}", request.method, request.route())
        };
        Error::transport(backend, processing, message, Some(Arc::new(error)))
    }
}

/// What the wire showed of a request that got no response: never connected, written and
/// closed before any answer, or unknown.
fn wire_processing(error: &reqwest::Error) -> Processing {
    if error.is_connect() {
        return Processing::NotSent;
    }
    let mut current: Option<&(dyn StdError + 'static)> = Some(error);
    while let Some(cause) = current {
        if let Some(hyper) = cause.downcast_ref::<hyper::Error>()
            && hyper.is_incomplete_message()
        {
            return Processing::ClosedBeforeResponse;
        }
        if let Some(io) = cause.downcast_ref::<std::io::Error>()
            && io.kind() == std::io::ErrorKind::BrokenPipe
        {
            // The request could not even be written whole: nothing can have acted on it.
            return Processing::ClosedBeforeResponse;
        }
        current = cause.source();
    }
    Processing::Unknown
}

/// Whether a failure came from the TLS layer, recognised by the type of an error in its
/// chain (never by its wording).
fn is_tls_failure(error: &(dyn StdError + 'static)) -> bool {
    let mut current = Some(error);
    while let Some(cause) = current {
        #[cfg(feature = "rustls")]
        if cause.is::<rustls::Error>() {
            return true;
        }
        #[cfg(feature = "native-tls")]
        if cause.is::<native_tls::Error>() {
            return true;
        }
        // `io::Error::source` skips the error it wraps; TLS stacks hand theirs over in one.
        if let Some(inner) = cause
            .downcast_ref::<std::io::Error>()
            .and_then(std::io::Error::get_ref)
            && is_tls_failure(inner)
        {
            return true;
        }
        current = cause.source();
    }
    false
}

/// The client's secrets, and the one step that takes them out of any text a response or a
/// URL brings into an error or a log event.
#[derive(Clone, Default)]
pub(crate) struct Redactor {
    secrets: Arc<[String]>,
}

impl fmt::Debug for Redactor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Redactor({} secrets)", self.secrets.len())
    }
}

impl Redactor {
    /// Secrets shorter than this are not scrubbed on their own: replacing a two-letter word
    /// everywhere would garble messages and hide nothing worth hiding.
    const MIN_LEN: usize = 4;

    fn new(secrets: impl IntoIterator<Item = String>) -> Self {
        let mut secrets: Vec<String> = secrets
            .into_iter()
            .filter(|s| s.len() >= Self::MIN_LEN)
            .collect();
        // Longest first, so a secret that contains another is replaced whole.
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        secrets.dedup();
        Self {
            secrets: secrets.into(),
        }
    }

    fn scrub(&self, text: &mut String) {
        for secret in self.secrets.iter() {
            if text.contains(secret.as_str()) {
                *text = text.replace(secret.as_str(), "***");
            }
        }
    }

    pub(crate) fn scrub_error(&self, error: &mut Error) {
        if !self.secrets.is_empty() {
            error.edit_messages(&mut |message| self.scrub(message));
        }
    }

    fn scrub_bytes<'a>(&self, body: &'a [u8]) -> Cow<'a, [u8]> {
        let mut out = Cow::Borrowed(body);
        for secret in self.secrets.iter() {
            let finder = memchr::memmem::Finder::new(secret.as_bytes());
            if finder.find(&out).is_none() {
                continue;
            }
            let mut replaced = Vec::with_capacity(out.len());
            let mut rest: &[u8] = &out;
            while let Some(at) = finder.find(rest) {
                replaced.extend_from_slice(&rest[..at]);
                replaced.extend_from_slice(b"***");
                rest = &rest[at + secret.len()..];
            }
            replaced.extend_from_slice(rest);
            out = Cow::Owned(replaced);
        }
        out
    }
}

impl HttpClientBuilder {
    /// Treats the whole base-URL path as a credential (Outline's `apiUrl`): it is shown as
    /// `scheme://host:port/***` everywhere.
    pub fn with_secret_path(mut self, secret: bool) -> Self {
        self.secret_path = secret;
        self
    }

    /// Sets the credentials.
    pub fn with_auth(mut self, auth: Auth) -> Self {
        self.auth = auth;
        self
    }

    /// Sets the HTTP options (timeouts, pool, user agent, body limit, injected client).
    pub fn with_options(mut self, options: &ClientOptions) -> Self {
        self.options = options.clone();
        self
    }

    /// Uses a client the backend built itself (with its own TLS configuration). The
    /// response-size limit still comes from the options.
    pub fn with_http_client(mut self, client: reqwest::Client) -> Self {
        self.http_client = Some(client);
        self
    }

    /// Sets the retry policy.
    pub fn with_retry(mut self, retry: RetryConfig) -> Self {
        self.retry = retry;
        self
    }

    /// Registers a credential the backend sends itself, per request (a token in a header
    /// only some requests carry), so that it is scrubbed like the ones in [`Auth`].
    pub fn with_secret(mut self, secret: &Secret<String>) -> Self {
        self.extra_secrets.push(secret.expose().clone());
        self
    }

    /// Adds a header that is the same on every request and is not a credential (an SDK's
    /// name and version, a tenant): validated here once, not per request.
    pub fn with_constant_header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.constant_headers.push((name, value));
        self
    }

    /// Sets the parser for the backend's error bodies.
    pub fn with_error_body_parser(mut self, parser: ErrorBodyParser) -> Self {
        self.error_body = parser;
        self
    }

    /// Validates the base URL and builds the client (and its connection pool).
    ///
    /// # Errors
    ///
    /// [`Error::Config`] for a base URL that is not an absolute `http`/`https` URL with a
    /// host and without query or fragment, for credentials that cannot be sent in a header,
    /// or when the TLS backend fails to initialise.
    pub fn build(self) -> Result<HttpClient> {
        let backend = self.backend;
        let raw = self.base_url.expose().trim();
        let url = Url::parse(raw).map_err(|e| {
            // A secret URL must not be echoed; a plain one helps the user find the typo.
            let shown = if self.secret_path {
                "the URL".to_owned()
            } else {
                format!("`{raw}`")
            };
            Error::config(backend, format!("{shown} is not a valid base URL: {e}"))
        })?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(Error::config(
                backend,
                format!(
                    "the base URL must start with http:// or https://, not {}://",
                    url.scheme()
                ),
            ));
        }
        let Some(host) = url.host_str() else {
            return Err(Error::config(backend, "the base URL has no host"));
        };
        if url.query().is_some() || url.fragment().is_some() {
            return Err(Error::config(
                backend,
                "the base URL must not have a query or fragment",
            ));
        }
        let port = url.port().map(|p| format!(":{p}")).unwrap_or_default();
        let origin = format!("{}://{host}{port}", url.scheme());
        let endpoint = format!("{host}:{}", url.port_or_known_default().unwrap_or(0));
        let server_address = host.to_owned();
        let server_port = url.port_or_known_default().unwrap_or(0);
        let redacted_base_url = if self.secret_path {
            format!("{origin}/***")
        } else {
            format!("{origin}{}", url.path().trim_end_matches('/'))
        };
        // Credentials in the URL itself (`https://user:pass@host`) would be sent but never
        // shown; move them into Basic auth where they are handled as secrets.
        let mut auth = self.auth;
        let mut base_url = url.clone();
        if !url.username().is_empty() || url.password().is_some() {
            if matches!(auth, Auth::None) {
                auth = Auth::Basic {
                    username: Secret::new(url.username().to_owned()),
                    password: Secret::new(url.password().unwrap_or_default().to_owned()),
                };
            }
            let _ = base_url.set_username("");
            let _ = base_url.set_password(None);
        }
        let base = base_url.as_str().trim_end_matches('/').to_owned();
        let base_url_parsed = Url::parse(&base)
            .map_err(|_| Error::config(backend, "the base URL does not make a valid URL"))?;
        let origin_url = Url::parse(&origin)
            .map_err(|_| Error::config(backend, "the base URL has no valid origin"))?;
        let mut secrets = auth.secret_texts();
        secrets.extend(self.extra_secrets);
        if self.secret_path {
            // The whole path and its long segments: servers echo parts of request paths.
            let path = url.path().trim_matches('/');
            secrets.push(path.to_owned());
            secrets.extend(
                path.split('/')
                    .filter(|segment| segment.len() >= 8)
                    .map(str::to_owned),
            );
        }
        let redactor = Redactor::new(secrets);
        let client = match self.http_client {
            Some(client) => client,
            None => self.options.build_http_client(backend)?,
        };
        let mut constant_headers = auth.to_headers(backend)?;
        constant_headers.extend(self.constant_headers);
        Ok(HttpClient {
            inner: Arc::new(Inner {
                backend,
                base_url_parsed,
                origin: origin_url,
                redacted_base_url,
                endpoint,
                server_address,
                server_port,
                client,
                constant_headers,
                auth_kind: auth,
                redactor,
                retry: self.retry,
                max_response_bytes: self.options.max_response_bytes(),
                error_body: self.error_body,
            }),
        })
    }
}

/// Reads a body, refusing to hold more than `limit` bytes. A declared `Content-Length`
/// over the limit fails before reading anything.
async fn read_body(
    backend: &'static str,
    mut response: reqwest::Response,
    limit: usize,
) -> Result<Bytes> {
    let declared = response.content_length();
    if let Some(length) = declared
        && length > limit as u64
    {
        return Err(Error::BodyTooLarge { backend, limit });
    }
    let read_error = |e: reqwest::Error| {
        let e = e.without_url();
        if e.is_timeout() {
            Error::Timeout {
                backend,
                message: format!("reading the response body timed out: {}", chain_message(&e)),
                processing: Processing::Accepted,
            }
        } else {
            Error::transport(
                backend,
                Processing::Accepted,
                format!(
                    "reading the response body failed (truncated?): {}",
                    chain_message(&e)
                ),
                Some(Arc::new(e)),
            )
        }
    };
    // The common case is one chunk: hand it over without copying.
    let Some(first) = response.chunk().await.map_err(read_error)? else {
        return Ok(Bytes::new());
    };
    if first.len() > limit {
        return Err(Error::BodyTooLarge { backend, limit });
    }
    let Some(second) = response.chunk().await.map_err(read_error)? else {
        return Ok(first);
    };
    let capacity = declared
        .and_then(|l| usize::try_from(l).ok())
        .unwrap_or(first.len() + second.len())
        .min(limit);
    let mut buffer = BytesMut::with_capacity(capacity);
    buffer.extend_from_slice(&first);
    let mut next = Some(second);
    while let Some(chunk) = next {
        if buffer.len() + chunk.len() > limit {
            return Err(Error::BodyTooLarge { backend, limit });
        }
        buffer.extend_from_slice(&chunk);
        next = response.chunk().await.map_err(read_error)?;
    }
    Ok(buffer.freeze())
}

/// `Retry-After` as seconds or as an HTTP date.
pub fn parse_retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(header::RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let when = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    let wait = when.with_timezone(&chrono::Utc) - chrono::Utc::now();
    Some(wait.to_std().unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_forms() {
        let mut headers = HeaderMap::new();
        headers.insert(header::RETRY_AFTER, HeaderValue::from_static("51"));
        assert_eq!(parse_retry_after(&headers), Some(Duration::from_secs(51)));
        headers.insert(
            header::RETRY_AFTER,
            HeaderValue::from_static("Sun, 06 Nov 1994 08:49:37 GMT"),
        );
        assert_eq!(parse_retry_after(&headers), Some(Duration::ZERO));
        headers.insert(header::RETRY_AFTER, HeaderValue::from_static("soon"));
        assert_eq!(parse_retry_after(&headers), None);
    }

    #[test]
    fn error_body_shapes() {
        let h = HeaderMap::new();
        let vumi = default_error_body(
            StatusCode::BAD_REQUEST,
            &h,
            br#"{"status_code":400,"reason":"bad"}"#,
        );
        assert_eq!(vumi.message.as_deref(), Some("bad"));
        let unleash = default_error_body(
            StatusCode::BAD_REQUEST,
            &h,
            br#"{"id":"x","name":"BadDataError","message":"Request validation failed"}"#,
        );
        assert_eq!(unleash.code.as_deref(), Some("BadDataError"));
        let text = default_error_body(StatusCode::BAD_REQUEST, &h, b"start must be\n before end");
        assert_eq!(text.message.as_deref(), Some("start must be before end"));
        assert_eq!(
            default_error_body(StatusCode::BAD_REQUEST, &h, b"").message,
            None
        );
    }

    #[test]
    fn secret_base_url_is_redacted() {
        let http = HttpClient::builder("outline", "https://127.0.0.1:8443/SeCrEt")
            .with_secret_path(true)
            .build()
            .unwrap();
        assert_eq!(http.redacted_base_url(), "https://127.0.0.1:8443/***");
        assert!(!format!("{http:?}").contains("SeCrEt"));
    }

    #[test]
    fn invalid_secret_url_is_not_echoed() {
        let err = HttpClient::builder("outline", "not a url SeCrEt")
            .with_secret_path(true)
            .build()
            .unwrap_err();
        assert!(matches!(err, Error::Config { .. }));
        assert!(!err.to_string().contains("SeCrEt"));
    }

    #[test]
    fn userinfo_moves_into_basic_auth() {
        let http = HttpClient::builder("vumi", "https://user:pw@example.com/api/")
            .build()
            .unwrap();
        assert_eq!(http.redacted_base_url(), "https://example.com/api");
        assert!(matches!(http.inner.auth_kind, Auth::Basic { .. }));
        assert!(!format!("{http:?}").contains("pw"));
    }

    #[test]
    fn path_prefix_is_kept() {
        let http = HttpClient::builder("coopr", "http://localhost:55054/v2/")
            .build()
            .unwrap();
        let url = http
            .url_for(&Request::get("/metrics/queues").with_query("tenant", "a b"))
            .unwrap();
        assert_eq!(
            url.as_str(),
            "http://localhost:55054/v2/metrics/queues?tenant=a+b"
        );
        let trailing = http.url_for(&Request::get("metrics/")).unwrap();
        assert_eq!(trailing.as_str(), "http://localhost:55054/v2/metrics/");
        let health = http.url_for(&Request::get("status").from_origin()).unwrap();
        assert_eq!(health.as_str(), "http://localhost:55054/status");
    }
}
