//! An emulator of the Vumi Go metrics API, go-metrics-api 0.2.0, with the graphite behind it.
//!
//! Written from the server's source and from recordings of a live server:
//!
//! - routes `<prefix>/metrics/` (default prefix `/api`; without the trailing slash: the
//!   HTML 404 page) and `/health/`; other methods on the API answer 405;
//! - owner resolution first — `X-Owner-ID` (default), an auth bouncer (Bearer tokens or
//!   `?access_token=` mapped to owners: none → 401, unknown → 403) or a static owner — then
//!   HTTP Basic when configured (401 `Authentication Required` / `Authentication Failed` /
//!   `Invalid Authorization header` with `WWW-Authenticate: Basic realm="Metrics API"`);
//! - `GET` with the server's validation order and messages: the size check (which parses
//!   `from`, `until` and `interval`, and answers 500 `Failed to retrieve metrics.` when it
//!   cannot), `nulls`, each metric's aggregator, then graphite (500 `Got error response
//!   interacting with metrics backend` when it fails); `zeroize`/`omit`/`keep`;
//! - `POST` with Python's `json.loads` (and its messages), the dict check, the aggregator
//!   and `float()` checks, all or nothing, confirmations in an order unrelated to the
//!   request's, and the auto-prefix quirk (go-metrics-api issue 21): unless
//!   `disable_auto_prefix` is set, fired values land under `<prefix>.<prefix>.<owner>.…`,
//!   where `GET` never reads;
//! - graphite: a store with one archive of [`VumiEmulatorConfig::with_resolution`]-second
//!   slots (fired values of one slot are combined by their aggregator, as Vumi's metric
//!   aggregators do; seeded values replace the slot's value, as whisper does), graphite's
//!   time parser (`today` is midnight there), `summarize` with `alignToFrom`, and
//!   whisper's fetch window; or, for replaying the recorded fixtures, a stub that answers
//!   every target with the same datapoints.
//!
//! Differences from the real server: fired values are stored at once (the real one queues
//! them for an AMQP publisher and Vumi's aggregators); the confirmations and a `POST`'s
//! entries are handled in a fixed order where Python's dict order is arbitrary; graphite
//! globs and functions in metric names are answered as graphite errors rather than expanded.
//!
//! ```no_run
//! # async fn run() -> std::io::Result<()> {
//! use metrics_emulators::vumi::{VumiEmulator, VumiEmulatorConfig};
//!
//! let emulator = VumiEmulator::start_with(
//!     VumiEmulatorConfig::default().with_bouncer([("my-token", "owner-1")]),
//! )
//! .await?;
//! let names = emulator.seed_example_data("owner-1");
//! println!("{} serves {} metrics", emulator.api_url(), names.len());
//! # Ok(()) }
//! ```

mod graphite;
mod python;
mod pytime;

use std::collections::{BTreeMap, HashMap};
use std::fmt::{self, Write as _};
use std::io;
use std::ops::{Deref, DerefMut};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use base64::Engine as _;
use chrono::{DateTime, SubsecRound, Utc};

use crate::server::{EmulatorServer, lock};
use graphite::{PathData, Render, Target};
use python::{FloatConversion, PyValue};

/// The aggregators a metric name may end with.
const AGGREGATORS: [&str; 5] = ["sum", "avg", "max", "min", "last"];

/// The datapoints of the graphite stub used to record the reference fixtures.
pub const RECORDING_STUB_DATAPOINTS: [(Option<f64>, i64); 4] = [
    (None, 1000),
    (Some(5.0), 2000),
    (None, 3000),
    (Some(10.5), 4000),
];

/// How the server finds the owner (the Vumi Go account) of a request.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum OwnerMode {
    /// From `X-Owner-ID`, as set by a proxy in front of the server (the default).
    Header,
    /// From an auth bouncer: the Bearer token (`Authorization` or `?access_token=`) → owner.
    Bouncer(BTreeMap<String, String>),
    /// Always this owner (`static_owner_id`).
    Static(String),
}

/// Where `GET` data comes from.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum GraphiteMode {
    /// The emulated graphite store: seeded and fired values, summarized per query.
    Store,
    /// A stub that answers canned `(value, timestamp)` datapoints, unsummarized, as the stub
    /// the reference fixtures were recorded with and the upstream tests' graphite do.
    Stub {
        /// What every target answers, if set.
        datapoints: Option<Vec<(Option<f64>, i64)>>,
        /// What the targets of these metrics (the `m` values) answer instead. Metrics in
        /// neither have no series.
        series: BTreeMap<String, Vec<(Option<f64>, i64)>>,
    },
}

/// The server's configuration, as far as a client can see it.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct VumiEmulatorConfig {
    /// `url_path_prefix` (default `/api`).
    pub url_path_prefix: String,
    /// How the owner is found.
    pub owner: OwnerMode,
    /// `basicauth_username` and `basicauth_password`, if HTTP Basic is on.
    pub basic_auth: Option<(String, String)>,
    /// The graphite prefix (default `go.campaigns`).
    pub prefix: String,
    /// `disable_auto_prefix` (default false: fired values are not readable).
    pub disable_auto_prefix: bool,
    /// `max_response_size` (default 10 000).
    pub max_response_size: u64,
    /// Seconds per stored slot (default 10).
    pub resolution: u32,
    /// Store or stub.
    pub graphite: GraphiteMode,
    /// Targets containing one of these answer with a graphite error (the recording stub
    /// failed for `graphite500`).
    pub failing_targets: Vec<String>,
}

impl Default for VumiEmulatorConfig {
    fn default() -> Self {
        Self {
            url_path_prefix: "/api".to_owned(),
            owner: OwnerMode::Header,
            basic_auth: None,
            prefix: "go.campaigns".to_owned(),
            disable_auto_prefix: false,
            max_response_size: 10_000,
            resolution: 10,
            graphite: GraphiteMode::Store,
            failing_targets: Vec::new(),
        }
    }
}

impl VumiEmulatorConfig {
    /// Sets `url_path_prefix` (`""` for none).
    #[must_use]
    pub fn with_url_path_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.url_path_prefix = prefix.into();
        self
    }

    /// Uses an auth bouncer that knows these `(token, owner)` pairs.
    #[must_use]
    pub fn with_bouncer<I, T, O>(mut self, tokens: I) -> Self
    where
        I: IntoIterator<Item = (T, O)>,
        T: Into<String>,
        O: Into<String>,
    {
        self.owner = OwnerMode::Bouncer(
            tokens
                .into_iter()
                .map(|(t, o)| (t.into(), o.into()))
                .collect(),
        );
        self
    }

    /// Uses a static owner.
    #[must_use]
    pub fn with_static_owner(mut self, owner: impl Into<String>) -> Self {
        self.owner = OwnerMode::Static(owner.into());
        self
    }

    /// Turns HTTP Basic on.
    #[must_use]
    pub fn with_basic_auth(
        mut self,
        username: impl Into<String>,
        password: impl Into<String>,
    ) -> Self {
        self.basic_auth = Some((username.into(), password.into()));
        self
    }

    /// Sets the graphite prefix.
    #[must_use]
    pub fn with_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// Sets `disable_auto_prefix`: fired values land where `GET` reads them.
    #[must_use]
    pub fn with_disable_auto_prefix(mut self, disable: bool) -> Self {
        self.disable_auto_prefix = disable;
        self
    }

    /// Sets `max_response_size`.
    #[must_use]
    pub fn with_max_response_size(mut self, max: u64) -> Self {
        self.max_response_size = max;
        self
    }

    /// Sets the seconds per stored slot (at least 1).
    #[must_use]
    pub fn with_resolution(mut self, seconds: u32) -> Self {
        self.resolution = seconds.max(1);
        self
    }

    /// Answers every target with these datapoints instead of the store.
    #[must_use]
    pub fn with_graphite_stub(mut self, datapoints: impl Into<Vec<(Option<f64>, i64)>>) -> Self {
        match &mut self.graphite {
            GraphiteMode::Stub {
                datapoints: slot, ..
            } => *slot = Some(datapoints.into()),
            GraphiteMode::Store => {
                self.graphite = GraphiteMode::Stub {
                    datapoints: Some(datapoints.into()),
                    series: BTreeMap::new(),
                };
            }
        }
        self
    }

    /// Answers the target of `metric` (an `m` value) with these datapoints instead of the
    /// store; other metrics have no series unless [`with_graphite_stub`](Self::with_graphite_stub)
    /// is set too.
    #[must_use]
    pub fn with_graphite_stub_series(
        mut self,
        metric: impl Into<String>,
        datapoints: impl Into<Vec<(Option<f64>, i64)>>,
    ) -> Self {
        match &mut self.graphite {
            GraphiteMode::Stub { series, .. } => {
                series.insert(metric.into(), datapoints.into());
            }
            GraphiteMode::Store => {
                self.graphite = GraphiteMode::Stub {
                    datapoints: None,
                    series: BTreeMap::from([(metric.into(), datapoints.into())]),
                };
            }
        }
        self
    }

    /// Makes targets containing `needle` fail in graphite.
    #[must_use]
    pub fn with_failing_target(mut self, needle: impl Into<String>) -> Self {
        self.failing_targets.push(needle.into());
        self
    }

    /// The setup the reference fixtures were recorded with, for a fixture's `server_mode`:
    /// `owner_header`, `auth_bouncer` (token `good-token` → owner `owner-bearer`),
    /// `basic_auth` (`user`/`pass`), `owner_header_no_auto_prefix`; prefix `/api`, the stub
    /// datapoints [`RECORDING_STUB_DATAPOINTS`], and graphite failing for `graphite500`.
    /// `None` for an unknown mode.
    pub fn recording(server_mode: &str) -> Option<Self> {
        let base = Self::default()
            .with_graphite_stub(RECORDING_STUB_DATAPOINTS)
            .with_failing_target("graphite500");
        Some(match server_mode {
            "owner_header" => base,
            "auth_bouncer" => base.with_bouncer([("good-token", "owner-bearer")]),
            "basic_auth" => base.with_basic_auth("user", "pass"),
            "owner_header_no_auto_prefix" => base.with_disable_auto_prefix(true),
            _ => return None,
        })
    }

    fn normalized_prefix(&self) -> String {
        let trimmed = self.url_path_prefix.trim_matches('/');
        if trimmed.is_empty() {
            String::new()
        } else {
            format!("/{trimmed}")
        }
    }
}

/// A metric value the server accepted from a `POST`.
#[derive(Clone, Debug, PartialEq)]
pub struct FiredRecord {
    /// The owner it was fired for.
    pub owner: String,
    /// The name as posted.
    pub name: String,
    /// The graphite path it was stored under (see the auto-prefix quirk).
    pub path: String,
    /// The value, after Python's `float()`.
    pub value: f64,
    /// The aggregator.
    pub aggregator: String,
    /// When it was received.
    pub time: DateTime<Utc>,
}

/// A render request the server sent to graphite.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GraphiteRequest {
    /// The `target` expressions, in order.
    pub targets: Vec<String>,
    /// `from`, as passed on.
    pub from: String,
    /// `until`, as passed on.
    pub until: String,
}

#[derive(Default)]
struct Data {
    paths: HashMap<String, PathData>,
    fired: Vec<FiredRecord>,
    graphite_requests: Vec<GraphiteRequest>,
    failing_targets: Vec<String>,
    now: Option<DateTime<Utc>>,
}

struct Shared {
    config: VumiEmulatorConfig,
    data: Mutex<Data>,
}

impl Shared {
    fn now(&self) -> DateTime<Utc> {
        // Python's datetime has microseconds.
        lock(&self.data)
            .now
            .unwrap_or_else(Utc::now)
            .trunc_subsecs(6)
    }

    fn slot(&self, time: DateTime<Utc>) -> i64 {
        let step = i64::from(self.config.resolution.max(1));
        let t = time.timestamp();
        t - t.rem_euclid(step)
    }
}

/// The running emulator. Derefs to [`EmulatorServer`] for `base_url()`, `requests()`,
/// `faults()`, `stop()` and `restart()`; state survives a restart.
pub struct VumiEmulator {
    server: EmulatorServer,
    shared: Arc<Shared>,
}

impl fmt::Debug for VumiEmulator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VumiEmulator")
            .field("server", &self.server)
            .field("config", &self.shared.config)
            .finish_non_exhaustive()
    }
}

impl Deref for VumiEmulator {
    type Target = EmulatorServer;

    fn deref(&self) -> &EmulatorServer {
        &self.server
    }
}

impl DerefMut for VumiEmulator {
    fn deref_mut(&mut self) -> &mut EmulatorServer {
        &mut self.server
    }
}

impl VumiEmulator {
    /// Starts an emulator with the server's defaults: prefix `/api`, owner from
    /// `X-Owner-ID`, auto-prefixing on, 10 000 points, the graphite store.
    ///
    /// # Errors
    ///
    /// When no port can be bound.
    pub async fn start() -> io::Result<Self> {
        Self::start_with(VumiEmulatorConfig::default()).await
    }

    /// Starts an emulator with `config`.
    ///
    /// # Errors
    ///
    /// When no port can be bound.
    pub async fn start_with(config: VumiEmulatorConfig) -> io::Result<Self> {
        let prefix = config.normalized_prefix();
        let failing = config.failing_targets.clone();
        let shared = Arc::new(Shared {
            config,
            data: Mutex::new(Data {
                failing_targets: failing,
                ..Data::default()
            }),
        });
        let router = Router::new()
            .route(&format!("{prefix}/metrics/"), any(metrics_handler))
            .route("/health/", any(health_handler))
            .fallback(not_found)
            .with_state(Arc::clone(&shared));
        let server = EmulatorServer::start(router).await?;
        Ok(Self { server, shared })
    }

    /// The configuration.
    pub fn config(&self) -> &VumiEmulatorConfig {
        &self.shared.config
    }

    /// The API's base URL for a client: the server's URL and the path prefix
    /// (`http://127.0.0.1:PORT/api`).
    pub fn api_url(&self) -> String {
        format!(
            "{}{}",
            self.server.base_url(),
            self.shared.config.normalized_prefix()
        )
    }

    /// The graphite path `GET` reads for `owner`'s `metric`: `<prefix>.<owner>.<metric>`.
    pub fn path_for(&self, owner: &str, metric: &str) -> String {
        format!("{}.{owner}.{metric}", self.shared.config.prefix)
    }

    /// Stores points for `owner`'s `metric` where `GET` reads them. Each point replaces the
    /// value of its slot, as a graphite write does.
    pub fn insert_points<I>(&self, owner: &str, metric: &str, points: I)
    where
        I: IntoIterator<Item = (DateTime<Utc>, f64)>,
    {
        self.insert_path_points(&self.path_for(owner, metric), points);
    }

    /// Stores points under a raw graphite path.
    pub fn insert_path_points<I>(&self, path: &str, points: I)
    where
        I: IntoIterator<Item = (DateTime<Utc>, f64)>,
    {
        let slots: Vec<(i64, f64)> = points
            .into_iter()
            .map(|(time, value)| (self.shared.slot(time), value))
            .collect();
        let mut data = lock(&self.shared.data);
        let path_data = data.paths.entry(path.to_owned()).or_default();
        for (slot, value) in slots {
            path_data.write(slot, value);
        }
    }

    /// Seeds realistic data for `owner` over the last 7 days at 5-minute spacing (or the
    /// store's resolution, if coarser), and returns the metric names: account metrics of a
    /// survey app in the `default` store and two conversation metrics. Deterministic.
    pub fn seed_example_data(&self, owner: &str) -> Vec<String> {
        const CONVERSATION: &str = "7c9e6679-7425-40de-944b-e07fc1f90ae7";
        let names = [
            "stores.default.sessions_started.sum".to_owned(),
            "stores.default.questions_completed.sum".to_owned(),
            "stores.default.active_users.last".to_owned(),
            "stores.default.response_time.avg".to_owned(),
            format!("conversations.{CONVERSATION}.messages_sent.sum"),
            format!("conversations.{CONVERSATION}.messages_received.sum"),
        ];
        let now = self.shared.now();
        let spacing = 300.max(i64::from(self.shared.config.resolution));
        let count = 7 * 86_400 / spacing;
        let start = now.timestamp() - count * spacing;
        let mut noise = 0x2545_f491_4f6c_dd1d_u64;
        for (index, name) in names.iter().enumerate() {
            let points = (0..=count).filter_map(|i| {
                let t = start + i * spacing;
                noise ^= noise << 13;
                noise ^= noise >> 7;
                noise ^= noise << 17;
                #[allow(clippy::cast_precision_loss, reason = "small demo numbers")]
                let jitter = (noise % 1000) as f64 / 1000.0;
                let hour = f64::from(u32::try_from(t.rem_euclid(86_400) / 3600).unwrap_or(0));
                // Busier by day than by night.
                let daily = 1.0 + (std::f64::consts::PI * (hour - 6.0) / 12.0).sin().max(-0.8);
                let value = match index {
                    0 => (20.0 * daily * (0.7 + 0.6 * jitter)).round(),
                    1 => (14.0 * daily * (0.6 + 0.6 * jitter)).round(),
                    2 => (150.0 * daily + 40.0 * jitter).round(),
                    3 => 0.4 + 0.8 * jitter,
                    4 => (60.0 * daily * (0.8 + 0.4 * jitter)).round(),
                    _ => (45.0 * daily * (0.8 + 0.4 * jitter)).round(),
                };
                DateTime::from_timestamp(t, 0).map(|time| (time, value))
            });
            self.insert_points(owner, name, points.collect::<Vec<_>>());
        }
        names.to_vec()
    }

    /// Freezes the clock at `now` (`None`: the real clock again). It is used for relative
    /// times, the size check, whisper's window and the time of fired values.
    pub fn set_now(&self, now: Option<DateTime<Utc>>) {
        lock(&self.shared.data).now = now;
    }

    /// Makes graphite fail for targets containing `needle`.
    pub fn fail_targets_containing(&self, needle: impl Into<String>) {
        lock(&self.shared.data).failing_targets.push(needle.into());
    }

    /// Lets graphite answer every target again.
    pub fn clear_failing_targets(&self) {
        lock(&self.shared.data).failing_targets.clear();
    }

    /// Every value accepted by `POST`, oldest first.
    pub fn fired(&self) -> Vec<FiredRecord> {
        lock(&self.shared.data).fired.clone()
    }

    /// The render requests sent to graphite, oldest first.
    pub fn graphite_requests(&self) -> Vec<GraphiteRequest> {
        lock(&self.shared.data).graphite_requests.clone()
    }

    /// The stored points of a graphite path, oldest first.
    pub fn stored_points(&self, path: &str) -> Vec<(DateTime<Utc>, f64)> {
        lock(&self.shared.data)
            .paths
            .get(path)
            .map(|p| {
                p.points()
                    .into_iter()
                    .filter_map(|(t, v)| DateTime::from_timestamp(t, 0).map(|t| (t, v)))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Every graphite path with data, sorted.
    pub fn paths(&self) -> Vec<String> {
        let mut paths: Vec<String> = lock(&self.shared.data).paths.keys().cloned().collect();
        paths.sort();
        paths
    }

    /// Forgets all data, fired values and graphite requests (not the clock or failures).
    pub fn clear(&self) {
        let mut data = lock(&self.shared.data);
        data.paths.clear();
        data.fired.clear();
        data.graphite_requests.clear();
    }
}

/// A `{"reason": …, "status_code": …}` answer, as go_api's `write_error` writes it.
fn error(status: StatusCode, reason: &str) -> Response {
    let mut body = String::from("{\"reason\": ");
    python::json_string_into(reason, &mut body);
    let _ = write!(body, ", \"status_code\": {}}}", status.as_u16());
    json_response(status, body)
}

fn json_response(status: StatusCode, body: String) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json; charset=utf-8")],
        body,
    )
        .into_response()
}

fn html(status: StatusCode, body: String) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/html; charset=UTF-8")],
        body,
    )
        .into_response()
}

async fn not_found() -> Response {
    html(
        StatusCode::NOT_FOUND,
        "<html><title>404: Not Found</title><body>404: Not Found</body></html>".to_owned(),
    )
}

async fn health_handler(method: Method) -> Response {
    if method == Method::GET {
        html(StatusCode::OK, "OK".to_owned())
    } else {
        html(
            StatusCode::METHOD_NOT_ALLOWED,
            "<html><title>405: Method Not Allowed</title><body>405: Method Not Allowed</body></html>"
                .to_owned(),
        )
    }
}

/// The methods cyclone dispatches at all; others are refused before the handler runs.
fn is_supported_method(method: &Method) -> bool {
    [
        Method::GET,
        Method::HEAD,
        Method::POST,
        Method::DELETE,
        Method::PATCH,
        Method::PUT,
        Method::OPTIONS,
    ]
    .contains(method)
}

async fn metrics_handler(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if !is_supported_method(&method) {
        return error(StatusCode::METHOD_NOT_ALLOWED, "Method Not Allowed");
    }
    // The owner is resolved in `prepare`, before any method handler.
    let owner = match resolve_owner(&shared.config.owner, &headers, uri.query()) {
        Ok(owner) => owner,
        Err((status, reason)) => return error(status, reason),
    };
    if method != Method::GET && method != Method::POST {
        return error(StatusCode::METHOD_NOT_ALLOWED, "Method Not Allowed");
    }
    if let Some((username, password)) = &shared.config.basic_auth
        && let Err(reason) = check_basic(&headers, username, password)
    {
        let mut response = error(StatusCode::UNAUTHORIZED, reason);
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"Metrics API\""),
        );
        return response;
    }
    if method == Method::GET {
        handle_get(&shared, &owner, uri.query().unwrap_or_default())
    } else {
        handle_post(&shared, &owner, &body)
    }
}

/// The owner, or the status and reason the server refuses the request with.
fn resolve_owner(
    mode: &OwnerMode,
    headers: &HeaderMap,
    query: Option<&str>,
) -> Result<String, (StatusCode, &'static str)> {
    match mode {
        OwnerMode::Static(owner) => Ok(owner.clone()),
        OwnerMode::Header => headers
            .get("x-owner-id")
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .ok_or((StatusCode::UNAUTHORIZED, "Unauthorized")),
        OwnerMode::Bouncer(tokens) => {
            // The bouncer sees the request's URI and Authorization header.
            let from_header = headers
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("Bearer "))
                .map(str::to_owned);
            let from_query = parse_qs(query.unwrap_or_default())
                .into_iter()
                .find(|(k, _)| k == "access_token")
                .and_then(|(_, v)| v.into_iter().next());
            let Some(token) = from_header.or(from_query) else {
                return Err((StatusCode::UNAUTHORIZED, "Unauthorized"));
            };
            tokens
                .get(token.trim())
                .cloned()
                .ok_or((StatusCode::FORBIDDEN, "Forbidden"))
        }
    }
}

/// go-metrics-api's `HTTPBasic` decorator.
fn check_basic(headers: &HeaderMap, username: &str, password: &str) -> Result<(), &'static str> {
    if username.is_empty() || password.is_empty() {
        return Ok(());
    }
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Err("Authentication Required");
    };
    let value = String::from_utf8_lossy(value.as_bytes());
    let parts: Vec<&str> = value.split_whitespace().collect();
    let [scheme, data] = parts[..] else {
        return Err("Invalid Authorization header");
    };
    if scheme != "Basic" {
        return Err("Authentication Required");
    }
    // Python 2's b64decode skips characters outside the alphabet and fails on padding.
    let cleaned: String = data
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '/' | '='))
        .collect();
    let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(cleaned) else {
        return Err("Invalid Authorization header");
    };
    let Some(colon) = decoded.iter().position(|b| *b == b':') else {
        return Err("Invalid Authorization header");
    };
    if &decoded[..colon] == username.as_bytes() && &decoded[colon + 1..] == password.as_bytes() {
        Ok(())
    } else {
        Err("Authentication Failed")
    }
}

/// Python 2's `parse_qs`: `&` and `;` separate pairs, pairs without `=` and blank values
/// are dropped, `+` is a space, percent escapes are decoded. Keys in first-seen order.
fn parse_qs(query: &str) -> Vec<(String, Vec<String>)> {
    let mut out: Vec<(String, Vec<String>)> = Vec::new();
    for pair in query.split(['&', ';']) {
        let Some((key, value)) = pair.split_once('=') else {
            continue;
        };
        if value.is_empty() {
            continue;
        }
        let (key, value) = (unquote_plus(key), unquote_plus(value));
        match out.iter_mut().find(|(k, _)| *k == key) {
            Some((_, values)) => values.push(value),
            None => out.push((key, vec![value])),
        }
    }
    out
}

fn unquote_plus(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = text
                    .get(i + 1..i + 3)
                    .and_then(|h| u8::from_str_radix(h, 16).ok());
                if let Some(byte) = hex {
                    out.push(byte);
                    i += 2;
                } else {
                    out.push(b'%');
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A query parameter after `parse_qs`: one value is a string, several are a list.
enum Param {
    One(String),
    Many(Vec<String>),
}

impl Param {
    fn single(&self) -> Option<&str> {
        match self {
            Self::One(value) => Some(value),
            Self::Many(_) => None,
        }
    }

    /// `%s` of the value, as pasted into the graphite expression.
    fn pasted(&self) -> String {
        match self {
            Self::One(value) => value.clone(),
            Self::Many(values) => {
                PyValue::List(values.iter().cloned().map(PyValue::Str).collect()).repr()
            }
        }
    }
}

const GET_FAILED: &str = "Failed to retrieve metrics.";

fn handle_get(shared: &Shared, owner: &str, query: &str) -> Response {
    let mut params: HashMap<String, Param> = HashMap::new();
    for (key, mut values) in parse_qs(query) {
        let param = if values.len() == 1 {
            Param::One(values.remove(0))
        } else {
            Param::Many(values)
        };
        params.insert(key, param);
    }
    // `model.get(**query)`: a parameter called `self` clashes with the method's own.
    if params.contains_key("self") {
        return error(StatusCode::INTERNAL_SERVER_ERROR, GET_FAILED);
    }
    let text = |name: &str, default: &str| match params.get(name) {
        None => Some(default.to_owned()),
        Some(param) => param.single().map(str::to_owned),
    };
    let metrics: Vec<String> = match params.get("m") {
        None => Vec::new(),
        Some(Param::One(m)) => vec![m.clone()],
        Some(Param::Many(ms)) => ms.clone(),
    };
    let now = shared.now();

    // 1. The size check, which parses until, from and interval.
    let (Some(from), Some(until), Some(interval)) = (
        text("from", "-24h"),
        text("until", "-0s"),
        text("interval", "1hour"),
    ) else {
        return error(StatusCode::INTERNAL_SERVER_ERROR, GET_FAILED);
    };
    let (Some(until_time), Some(from_time), Some(interval_seconds)) = (
        pytime::server_parse_time(&until, now),
        pytime::server_parse_time(&from, now),
        pytime::interval_to_seconds(&interval),
    ) else {
        return error(StatusCode::INTERNAL_SERVER_ERROR, GET_FAILED);
    };
    if interval_seconds == 0 {
        return error(StatusCode::INTERNAL_SERVER_ERROR, GET_FAILED);
    }
    let period = u128::from((until_time - from_time).num_seconds().unsigned_abs());
    let count = u128::try_from(metrics.len().max(1)).unwrap_or(u128::MAX);
    let points = (period / interval_seconds).saturating_mul(count);
    let max = shared.config.max_response_size;
    if points > u128::from(max) {
        return error(
            StatusCode::BAD_REQUEST,
            &format!("{points} data points requested, maximum allowed is {max}"),
        );
    }

    // 2. nulls.
    let nulls = match params.get("nulls") {
        None => "zeroize".to_owned(),
        Some(Param::Many(_)) => return error(StatusCode::INTERNAL_SERVER_ERROR, GET_FAILED),
        Some(Param::One(value)) => value.clone(),
    };
    if !matches!(nulls.as_str(), "zeroize" | "omit" | "keep") {
        return error(
            StatusCode::BAD_REQUEST,
            &format!("Unrecognised null parser '{nulls}'"),
        );
    }

    // 3. Each metric's aggregator, while building the targets.
    let align = params
        .get("align_to_from")
        .map_or_else(|| "false".to_owned(), Param::pasted);
    let mut targets = Vec::with_capacity(metrics.len());
    for metric in &metrics {
        let aggregator = metric.rsplit('.').next().unwrap_or_default();
        if !AGGREGATORS.contains(&aggregator) {
            return error(
                StatusCode::BAD_REQUEST,
                &format!("Aggregator '{aggregator}' is not a valid aggregator"),
            );
        }
        targets.push(Target {
            path: format!("{}.{owner}.{metric}", shared.config.prefix),
            interval: interval.clone(),
            func: aggregator.to_owned(),
            align_to_from: align.clone(),
            alias: metric.clone(),
        });
    }

    // 4. graphite.
    let rendered = {
        let mut data = lock(&shared.data);
        data.graphite_requests.push(GraphiteRequest {
            targets: targets.iter().map(Target::expression).collect(),
            from: from.clone(),
            until: until.clone(),
        });
        let expressions: Vec<String> = targets.iter().map(Target::expression).collect();
        if expressions.iter().any(|e| {
            data.failing_targets
                .iter()
                .any(|needle| e.contains(needle.as_str()))
        }) {
            Render::Error
        } else {
            match &shared.config.graphite {
                GraphiteMode::Stub { datapoints, series } => Render::Ok(
                    targets
                        .iter()
                        .filter_map(|t| {
                            series
                                .get(&t.alias)
                                .or(datapoints.as_ref())
                                .map(|points| (t.alias.clone(), points.clone()))
                        })
                        .collect(),
                ),
                GraphiteMode::Store => graphite::render(
                    &data.paths,
                    &targets,
                    &from,
                    &until,
                    i64::from(shared.config.resolution.max(1)),
                    now,
                ),
            }
        }
    };
    let Render::Ok(series) = rendered else {
        return error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Got error response interacting with metrics backend",
        );
    };

    // The answer is a dict: one key per alias, the last series wins.
    let mut keyed: Vec<(String, graphite::Datapoints)> = Vec::with_capacity(series.len());
    for (alias, points) in series {
        match keyed.iter_mut().find(|(k, _)| *k == alias) {
            Some(entry) => entry.1 = points,
            None => keyed.push((alias, points)),
        }
    }
    let mut body =
        String::with_capacity(64 + keyed.iter().map(|(_, p)| p.len() * 32).sum::<usize>());
    body.push('{');
    for (i, (alias, points)) in keyed.iter().enumerate() {
        if i > 0 {
            body.push_str(", ");
        }
        python::json_string_into(alias, &mut body);
        body.push_str(": [");
        let mut first = true;
        for (value, timestamp) in points {
            let y = match (value, nulls.as_str()) {
                (None, "omit") => continue,
                (None, "zeroize") => Some(0.0),
                (value, _) => *value,
            };
            if !first {
                body.push_str(", ");
            }
            first = false;
            let _ = write!(body, "{{\"x\": {}, \"y\": ", i128::from(*timestamp) * 1000);
            match y {
                Some(y) => body.push_str(&python::json_float(y)),
                None => body.push_str("null"),
            }
            body.push('}');
        }
        body.push(']');
    }
    body.push('}');
    json_response(StatusCode::OK, body)
}

const POST_FAILED: &str = "Failed to fire metrics.";

fn handle_post(shared: &Shared, owner: &str, body: &[u8]) -> Response {
    let data = match python::loads(body) {
        Ok(data) => data,
        Err(message) => return error(StatusCode::BAD_REQUEST, &format!("Invalid JSON: {message}")),
    };
    let PyValue::Dict(entries) = data else {
        return error(
            StatusCode::BAD_REQUEST,
            &format!(
                "Invalid query {}, should be dict, not {}",
                data.repr(),
                data.type_name()
            ),
        );
    };
    // `fire(**data)`: keys become keyword arguments.
    if entries.iter().any(|(k, _)| k == "self" || !k.is_ascii()) {
        return error(StatusCode::INTERNAL_SERVER_ERROR, POST_FAILED);
    }
    let config = &shared.config;
    let mut accepted = Vec::with_capacity(entries.len());
    for (name, value) in &entries {
        let aggregator = name.rsplit('.').next().unwrap_or_default();
        if !AGGREGATORS.contains(&aggregator) {
            return error(
                StatusCode::BAD_REQUEST,
                &format!("Aggregator '{aggregator}' is not a valid aggregator"),
            );
        }
        let value = match python::to_float(value) {
            FloatConversion::Ok(v) => v,
            FloatConversion::Invalid => {
                return error(
                    StatusCode::BAD_REQUEST,
                    &format!(
                        "{} is not a valid metric value,should be a floating point number",
                        value.repr()
                    ),
                );
            }
            FloatConversion::Overflow => {
                return error(StatusCode::INTERNAL_SERVER_ERROR, POST_FAILED);
            }
        };
        // The publisher prefixes `<prefix>.` to a name that has it already unless
        // auto-prefixing is off (issue 21).
        let path = if config.disable_auto_prefix {
            format!("{}.{owner}.{name}", config.prefix)
        } else {
            format!("{0}.{0}.{owner}.{name}", config.prefix)
        };
        accepted.push((name.clone(), path, value, aggregator.to_owned()));
    }

    let now = shared.now();
    let slot = shared.slot(now);
    {
        let mut data = lock(&shared.data);
        for (name, path, value, aggregator) in &accepted {
            data.paths
                .entry(path.clone())
                .or_default()
                .fire(slot, *value, aggregator);
            data.fired.push(FiredRecord {
                owner: owner.to_owned(),
                name: name.clone(),
                path: path.clone(),
                value: *value,
                aggregator: aggregator.clone(),
                time: now,
            });
        }
    }

    // Python answers in dict order, unrelated to the request's; a fixed hash order here.
    accepted.sort_by_key(|(name, ..)| fnv1a(name));
    let mut out = String::from("[");
    for (i, (name, _, value, aggregator)) in accepted.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        out.push_str("{\"aggregator\": ");
        python::json_string_into(aggregator, &mut out);
        out.push_str(", \"name\": ");
        python::json_string_into(name, &mut out);
        out.push_str(", \"value\": ");
        out.push_str(&python::json_float(*value));
        out.push('}');
    }
    out.push(']');
    json_response(StatusCode::OK, out)
}

fn fnv1a(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_qs_like_python() {
        let parsed = parse_qs("m=a.last&m=b.max&from=&x&until=-1d;nulls=keep&t=a+b%2Fc");
        assert_eq!(
            parsed,
            vec![
                (
                    "m".to_owned(),
                    vec!["a.last".to_owned(), "b.max".to_owned()]
                ),
                ("until".to_owned(), vec!["-1d".to_owned()]),
                ("nulls".to_owned(), vec!["keep".to_owned()]),
                ("t".to_owned(), vec!["a b/c".to_owned()]),
            ]
        );
    }

    #[test]
    fn basic_auth_like_the_decorator() {
        let with = |value: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(header::AUTHORIZATION, HeaderValue::from_str(value).unwrap());
            check_basic(&headers, "username", "password")
        };
        assert_eq!(
            check_basic(&HeaderMap::new(), "username", "password"),
            Err("Authentication Required")
        );
        assert_eq!(
            with("Basic b2J2aW91c2x5Ondyb25n"),
            Err("Authentication Failed")
        );
        assert_eq!(with("Basic dXNlcm5hbWU6cGFzc3dvcmQ="), Ok(()));
        assert_eq!(with("Garbage"), Err("Invalid Authorization header"));
        assert_eq!(with("Basic 1"), Err("Invalid Authorization header"));
        assert_eq!(with("Bearer token"), Err("Authentication Required"));
    }
}
