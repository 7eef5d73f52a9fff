//! The AppOptics (ex-Librato) Metrics API v1, emulated from the server's side.
//!
//! AppOptics has reached the end of its service life, so there is no live server to test
//! against; this emulator follows the API documentation and what the clients observed,
//! reproducing its status codes, error bodies, limits and quirks:
//!
//! - **Auth**: HTTP Basic with the token as the user (or, as the Go client sends it, as the
//!   password). Missing or wrong credentials: 401 with `{"errors":{"request":["Authorization
//!   Required"]}}` on GETs and the plain-text `Credentials are required to access this
//!   resource.` on writes. Any non-empty token is accepted unless one is set with
//!   [`AppOpticsEmulator::set_token`].
//! - **Metrics**: list (case-insensitive `name` substring, `offset`/`length` ≤ 100,
//!   `query{found,length,offset,total}`), get, `PUT /v1/metrics/:name` (201 + `Location` when
//!   it creates, 204 when it updates), bulk `PUT`/`DELETE /v1/metrics` with `names` as a list
//!   or a wildcard pattern, delete. Names are case-insensitive.
//! - **Measurements**: `POST /v1/measurements` (JSON only, else 415; an unparseable body is a
//!   429, as documented; value or `count`+`sum` summaries; per-measurement `time`, `period`,
//!   `tags`; metric properties used only when a measurement creates its metric; 202 with an
//!   empty body). Top-level tags apply only to measurements without their own
//!   ([`TagMode::Replace`], the current documentation) or are merged
//!   ([`TagMode::Merge`], the superseded beta documentation and the Python test fake). Tags
//!   are lower-cased; at most 50 per measurement; name and value patterns, float range
//!   (exponent > 126 is a 400, < −130 is stored as 0), at most 1 000 measurements per post.
//!   Reads (`GET /v1/measurements/:name`) take `start_time`/`end_time`/`duration`,
//!   `resolution` (required, ≤ 604800), `tags[name]=pattern` (wildcards, `!` negation, the
//!   same name repeated = OR), `tags_search` (`a=b* and c=!d or !e`), `group_by` with
//!   `group_by_function`, `summary_function` (`mean`, `sum`, `min`, `max`, `count`,
//!   `derivative`, `stddev`, `all`), and page with `links[rel=next]` when a read has more than
//!   [`AppOpticsEmulator::set_page_points`] points.
//! - **Composites**: `GET /v1/measurements?compose=…` (bare array) and the legacy
//!   `GET /v1/metrics?compose=…` (object with `series`), and saved composite metrics read
//!   through `GET /v1/measurements/:name`; functions `s`, `sum`, `mean`, `min`, `max`,
//!   `count`, `derive`, `divide`, `multiply`, `subtract`, `scale`, `abs`.
//! - **Annotations** (streams, events grouped by source, links), **spaces and charts**
//!   (streams get ids and types; a chart `PUT` replaces the streams sent), **alerts**
//!   (conditions validated with the documented error bodies, names unique — 422, services by
//!   id, status, clear) and **services** (ids as strings in their own routes, numbers inside
//!   alerts).
//! - **Rate limits**: every response carries `X-Librato-RateLimit-Std` (and measurement
//!   posts `X-Librato-RateLimit-Agg`) as `limit=…,remaining=…,reset=…`; with
//!   [`AppOpticsEmulator::set_rate_limit`] requests beyond the limit get a 429
//!   `{"errors":{"request":["Rate limit exceeded"]}}`.
//!
//! Storage is compact (48 bytes per measurement, request bodies are never logged), so a
//! benchmark can push a million measurements through it.
//!
//! Not reproduced: jobs, snapshots, API tokens, form-encoded write bodies (the clients send
//! JSON), retention-dependent resolutions, parentheses in `tags_search`.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use metrics_emulators::appoptics::AppOpticsEmulator;
//!
//! let appoptics = AppOpticsEmulator::start().await?;
//! appoptics.seed_series("cpu", &[("host", "web-1")], [(1_700_000_000, 0.5), (1_700_000_060, 0.7)]);
//! // Point a client at appoptics.api_url() (`http://127.0.0.1:PORT/v1`) with any token.
//! assert_eq!(appoptics.point_count(), 2);
//! # Ok(()) }
//! ```

mod composite;
mod routes;
mod state;

use std::collections::BTreeMap;
use std::fmt;
use std::io;
use std::ops::{Deref, DerefMut};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Map, Value, json};

use crate::server::{EmulatorServer, lock};
use state::{AnnotationStream, Event, Sample, SpaceRecord, State};

pub use state::{MeasurementStats, TagMode};

/// One stored measurement as [`AppOpticsEmulator::stored_points`] returns it.
#[derive(Clone, Debug, PartialEq)]
pub struct StoredPoint {
    /// The stream's tags (lower-cased, as stored).
    pub tags: BTreeMap<String, String>,
    /// Seconds since the epoch.
    pub time: i64,
    /// The value (a summary's mean).
    pub value: f64,
    /// Samples it stands for (1 for a plain value).
    pub count: u32,
}

/// A running AppOptics emulator. Derefs to its [`EmulatorServer`] for `base_url()`,
/// `requests()`, `faults()`, `stop()` and `restart()`.
pub struct AppOpticsEmulator {
    server: EmulatorServer,
    state: Arc<Mutex<State>>,
}

impl fmt::Debug for AppOpticsEmulator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = lock(&self.state);
        f.debug_struct("AppOpticsEmulator")
            .field("server", &self.server)
            .field("metrics", &state.metrics.len())
            .field("stats", &state.stats)
            .finish_non_exhaustive()
    }
}

impl Deref for AppOpticsEmulator {
    type Target = EmulatorServer;

    fn deref(&self) -> &EmulatorServer {
        &self.server
    }
}

impl DerefMut for AppOpticsEmulator {
    fn deref_mut(&mut self) -> &mut EmulatorServer {
        &mut self.server
    }
}

fn tag_key(tags: &[(&str, &str)]) -> state::TagKey {
    let mut key: state::TagKey = tags
        .iter()
        .map(|(k, v)| (k.to_ascii_lowercase(), v.to_ascii_lowercase()))
        .collect();
    key.sort();
    key.dedup_by(|a, b| a.0 == b.0);
    key
}

impl AppOpticsEmulator {
    /// Starts an empty emulator on `127.0.0.1` with a free port, accepting any token.
    ///
    /// # Errors
    ///
    /// When no port can be bound.
    pub async fn start() -> io::Result<Self> {
        let state = Arc::new(Mutex::new(State::default()));
        let server = EmulatorServer::start(routes::router(Arc::clone(&state))).await?;
        Ok(Self { server, state })
    }

    /// The API base URL, `http://127.0.0.1:PORT/v1`.
    pub fn api_url(&self) -> String {
        format!("{}/v1", self.server.base_url())
    }

    // -- configuration -----------------------------------------------------------------------

    /// Accepts only this token (as the Basic user or password); `None` accepts any.
    pub fn set_token(&self, token: Option<&str>) {
        lock(&self.state).token = token.map(str::to_owned);
    }

    /// How top-level tags of a post combine with a measurement's own.
    pub fn set_tag_mode(&self, mode: TagMode) {
        lock(&self.state).tag_mode = mode;
    }

    /// The most points a measurements read returns before it pages with a `next` link
    /// (default 10 000).
    pub fn set_page_points(&self, points: usize) {
        lock(&self.state).page_points = points.max(1);
    }

    /// The most measurements one post may carry (default 1 000).
    pub fn set_max_measurements_per_post(&self, max: usize) {
        lock(&self.state).max_per_post = max.max(1);
    }

    /// Delays every measurement post by `latency` (before it is stored), for tests of how
    /// many posts a client keeps in flight; see [`MeasurementStats::max_concurrent_posts`].
    pub fn set_post_latency(&self, latency: Option<Duration>) {
        lock(&self.state).post_latency = latency;
    }

    /// Enforces a rate limit of `limit` requests per `window`; requests beyond it get 429.
    /// The count starts now.
    pub fn set_rate_limit(&self, limit: u64, window: Duration) {
        let mut state = lock(&self.state);
        state.rate = state::RateState {
            limit,
            window,
            enforce: true,
            ..state::RateState::default()
        };
    }

    /// Stops enforcing a rate limit (the headers keep reporting a generous one).
    pub fn clear_rate_limit(&self) {
        lock(&self.state).rate = state::RateState::default();
    }

    /// Forgets every metric, measurement, annotation, space, chart, alert and service, and
    /// resets the counters. The configuration is kept.
    pub fn reset(&self) {
        lock(&self.state).reset_data();
    }

    // -- seeding -----------------------------------------------------------------------------

    /// Creates or updates a metric from its JSON description (`name` required; `type`,
    /// `display_name`, `description`, `period`, `attributes`, `composite`).
    ///
    /// # Panics
    ///
    /// Never; a description without a string `name` is ignored.
    pub fn seed_metric(&self, metric: &Value) {
        let Some(Value::Object(body)) = Some(metric) else {
            return;
        };
        let Some(name) = body.get("name").and_then(Value::as_str) else {
            return;
        };
        let kind = body.get("type").and_then(Value::as_str).unwrap_or("gauge");
        let mut state = lock(&self.state);
        let record = state
            .metrics
            .entry(name.to_ascii_lowercase())
            .or_insert_with(|| state::MetricRecord::new(name, kind));
        record.apply_properties(body);
    }

    /// Stores one measurement (creating the gauge if needed).
    pub fn seed_measurement(&self, metric: &str, tags: &[(&str, &str)], time: i64, value: f64) {
        lock(&self.state).store(metric, tag_key(tags), Sample::value(time, value));
    }

    /// Stores a series of `(time, value)` points of one stream.
    pub fn seed_series(
        &self,
        metric: &str,
        tags: &[(&str, &str)],
        points: impl IntoIterator<Item = (i64, f64)>,
    ) {
        let key = tag_key(tags);
        let mut state = lock(&self.state);
        for (time, value) in points {
            state.store(metric, key.clone(), Sample::value(time, value));
        }
    }

    /// Creates a service; returns its id.
    pub fn seed_service(&self, title: &str, service_type: &str, settings: Value) -> u64 {
        let mut state = lock(&self.state);
        let id = state.next_service_id;
        state.next_service_id += 1;
        let mut service = Map::new();
        service.insert("type".into(), json!(service_type));
        service.insert("settings".into(), settings);
        service.insert("title".into(), json!(title));
        state.services.insert(id, service);
        id
    }

    /// Creates a space; returns its id.
    pub fn seed_space(&self, name: &str) -> u64 {
        let mut state = lock(&self.state);
        let id = state.next_space_id;
        state.next_space_id += 1;
        state.spaces.insert(
            id,
            SpaceRecord {
                name: name.to_owned(),
                charts: Vec::new(),
            },
        );
        id
    }

    /// Adds a chart (its JSON, as a client would post it) to a space; returns its id, or
    /// `None` when the space does not exist or the chart is not an object.
    pub fn seed_chart(&self, space_id: u64, chart: &Value) -> Option<u64> {
        let Value::Object(chart) = chart else {
            return None;
        };
        let mut state = lock(&self.state);
        if !state.spaces.contains_key(&space_id) {
            return None;
        }
        let mut chart = chart.clone();
        let id = state.next_chart_id;
        state.next_chart_id += 1;
        chart.insert("id".into(), json!(id));
        chart.entry("type").or_insert_with(|| json!("line"));
        if let Some(Value::Array(streams)) = chart.get_mut("streams") {
            for stream in streams.iter_mut().filter_map(Value::as_object_mut) {
                let composite = stream.get("composite").is_some_and(|c| !c.is_null());
                stream.insert("id".into(), json!(state.next_stream_id));
                state.next_stream_id += 1;
                stream.insert(
                    "type".into(),
                    json!(if composite { "composite" } else { "gauge" }),
                );
            }
        } else {
            chart.insert("streams".into(), json!([]));
        }
        state.charts.insert(id, Value::Object(chart));
        if let Some(space) = state.spaces.get_mut(&space_id) {
            space.charts.push(id);
        }
        Some(id)
    }

    /// Posts an annotation event to a stream (creating it); returns the event id.
    pub fn seed_annotation(
        &self,
        stream: &str,
        title: &str,
        start_time: i64,
        source: Option<&str>,
    ) -> u64 {
        let mut state = lock(&self.state);
        let id = state.next_event_id;
        state.next_event_id += 1;
        state
            .annotations
            .entry(stream.to_ascii_lowercase())
            .or_insert_with(|| AnnotationStream {
                name: stream.to_owned(),
                display_name: Some(stream.to_owned()),
                events: BTreeMap::new(),
            })
            .events
            .insert(
                id,
                Event {
                    id,
                    title: title.to_owned(),
                    description: None,
                    source: source.map(str::to_owned),
                    start_time,
                    end_time: None,
                    links: Vec::new(),
                },
            );
        id
    }

    /// Creates an alert with one `above` condition; returns its id.
    pub fn seed_alert(&self, name: &str, metric: &str, threshold: f64, services: &[u64]) -> u64 {
        let mut state = lock(&self.state);
        let id = state.next_alert_id;
        state.next_alert_id += 1;
        let condition_id = state.next_condition_id;
        state.next_condition_id += 1;
        let now = chrono::Utc::now().timestamp();
        let alert = json!({
            "id": id,
            "name": name,
            "description": null,
            "conditions": [{
                "id": condition_id, "type": "above", "metric_name": metric, "source": null,
                "threshold": threshold, "summary_function": "average"
            }],
            "services": services,
            "attributes": {},
            "active": true,
            "created_at": now,
            "updated_at": now,
            "version": 2,
            "rearm_seconds": 600,
            "rearm_per_signal": false,
            "md": true,
        });
        if let Value::Object(alert) = alert {
            state.alerts.insert(id, alert);
        }
        id
    }

    /// Marks an alert as firing since `triggered_at`.
    pub fn set_alert_firing(&self, alert_id: u64, triggered_at: i64) {
        lock(&self.state).firing.insert(alert_id, triggered_at);
    }

    /// Fills the emulator with an hour of realistic data ending at `now` (epoch seconds):
    /// `cpu.percent.user`, `memory.used.bytes` and `http.requests` for three hosts in two
    /// regions at 60 s, a `Deploys` annotation stream, an `Ops` space with two charts, a
    /// mail service and an alert on CPU that is firing.
    pub fn seed_demo_data(&self, now: i64) {
        let start = now - now.rem_euclid(60) - 3600;
        let hosts = [
            ("web-1", "us-east-1"),
            ("web-2", "us-east-1"),
            ("web-3", "eu-west-1"),
        ];
        for (i, (host, region)) in (0_i32..).zip(hosts) {
            let tags = [("host", host), ("region", region)];
            let offset = f64::from(i);
            let minutes = (0..=60_i32).map(|m| (start + i64::from(m) * 60, f64::from(m)));
            self.seed_series(
                "cpu.percent.user",
                &tags,
                minutes
                    .clone()
                    .map(|(t, m)| (t, 20.0 + 10.0 * offset + 15.0 * (m / 9.0).sin())),
            );
            self.seed_series(
                "memory.used.bytes",
                &tags,
                minutes
                    .clone()
                    .map(|(t, m)| (t, 2.0e9 + offset * 5.0e8 + m * 1.0e6)),
            );
            self.seed_series(
                "http.requests",
                &tags,
                minutes.map(|(t, m)| (t, 100.0 + 25.0 * offset + (m * 7.0) % 40.0)),
            );
        }
        self.seed_metric(&json!({
            "name": "cpu.percent.user", "description": "User CPU per host",
            "attributes": {"display_units_short": "%", "summarize_function": "average"}
        }));
        self.seed_metric(&json!({
            "name": "memory.used.bytes", "description": "Resident memory",
            "attributes": {"display_units_short": "B"}
        }));
        self.seed_annotation("Deploys", "deploy v41", start + 600, Some("ci"));
        self.seed_annotation("Deploys", "deploy v42", start + 2400, Some("ci"));
        let space = self.seed_space("Ops");
        self.seed_chart(
            space,
            &json!({"name": "CPU", "type": "line", "streams": [
                {"metric": "cpu.percent.user", "tags": [{"name": "region", "values": ["*"]}], "group_function": "breakout"}
            ]}),
        );
        self.seed_chart(
            space,
            &json!({"name": "Requests", "type": "bignumber", "use_last_value": true, "streams": [
                {"metric": "http.requests", "tags": [{"name": "host", "values": ["*"]}], "summary_function": "sum"}
            ]}),
        );
        let mail = self.seed_service("Ops Team", "mail", json!({"addresses": "ops@example.com"}));
        let alert = self.seed_alert("cpu.high", "cpu.percent.user", 40.0, &[mail]);
        self.set_alert_firing(alert, now - 300);
    }

    // -- read-back ---------------------------------------------------------------------------

    /// The metric names, as first created, sorted.
    pub fn metric_names(&self) -> Vec<String> {
        let state = lock(&self.state);
        let mut names: Vec<String> = state.metrics.values().map(|m| m.name.clone()).collect();
        names.sort();
        names
    }

    /// A metric as `GET /v1/metrics/:name` shows it.
    pub fn metric(&self, name: &str) -> Option<Value> {
        lock(&self.state)
            .metric(name)
            .map(state::MetricRecord::to_json)
    }

    /// Every stored measurement of a metric, per stream (sorted by tags), in arrival order.
    pub fn stored_points(&self, metric: &str) -> Vec<StoredPoint> {
        let state = lock(&self.state);
        let Some(record) = state.metric(metric) else {
            return Vec::new();
        };
        let mut streams: Vec<_> = record.streams.iter().collect();
        streams.sort_by(|a, b| a.0.cmp(b.0));
        streams
            .into_iter()
            .flat_map(|(tags, samples)| {
                let tags: BTreeMap<String, String> = tags.iter().cloned().collect();
                samples.iter().map(move |s| StoredPoint {
                    tags: tags.clone(),
                    time: s.time,
                    value: s.sum / f64::from(s.count.max(1)),
                    count: s.count,
                })
            })
            .collect()
    }

    /// Measurements stored across every metric.
    pub fn point_count(&self) -> usize {
        lock(&self.state)
            .metrics
            .values()
            .map(state::MetricRecord::sample_count)
            .sum()
    }

    /// Counters of accepted measurement posts.
    pub fn measurement_stats(&self) -> MeasurementStats {
        lock(&self.state).stats
    }

    /// An alert as `GET /v1/alerts/:id` shows it.
    pub fn alert(&self, id: u64) -> Option<Value> {
        let state = lock(&self.state);
        state.alerts.get(&id).map(|a| state.alert_json(a))
    }

    /// A chart as stored.
    pub fn chart(&self, id: u64) -> Option<Value> {
        lock(&self.state).chart_json(id)
    }
}
