//! `metrics-hub serve`: the Prometheus exporter.
//!
//! Each source is collected in its own task on its own interval and timeout; what it
//! returned is kept as one sample per series (its latest complete point), prepared for
//! writing once as a [`Snapshot`]. A single render task writes all the snapshots in both
//! text formats when one of them changes, and the self-metrics after every collection;
//! `/metrics` hands out those bytes and never waits on a backend, so concurrent scrapers
//! cost a reference count each.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use base64::Engine as _;
use bytes::Bytes;
use metrics_hub::chrono::{DateTime, SecondsFormat, Utc};
use metrics_hub::{Query, Series, SeriesKind, Unit};
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tokio::task::JoinSet;

use crate::config::ScrapeAuth;
use crate::errors;
use crate::exposition::{self, Format, Snapshot};
use crate::sources::Source;

/// The exporter's settings, from flags and `[server]`.
#[derive(Debug)]
pub(crate) struct Options {
    /// Where to listen.
    pub(crate) listen: SocketAddr,
    /// Whether samples carry their time.
    pub(crate) timestamps: bool,
    /// What `/` and `/metrics` require.
    pub(crate) auth: Option<ScrapeAuth>,
}

/// Serves until SIGTERM or SIGINT.
///
/// # Errors
///
/// When the address cannot be bound or the server fails.
pub(crate) async fn run(sources: Vec<Source>, options: Options) -> Result<(), String> {
    let listener = TcpListener::bind(options.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", options.listen))?;
    let address = listener.local_addr().map_err(|e| e.to_string())?;
    let shared = Arc::new(Shared::new(&sources, options.timestamps, options.auth));
    let mut tasks = JoinSet::new();
    tasks.spawn(render_loop(Arc::clone(&shared)));
    for (index, source) in sources.into_iter().enumerate() {
        tasks.spawn(collect_loop(Arc::clone(&shared), index, source));
    }
    tracing::info!(%address, "serving /metrics, /healthz and /");
    let served = axum::serve(listener, router(Arc::clone(&shared)))
        .with_graceful_shutdown(crate::shutdown_signal())
        .await;
    tasks.shutdown().await;
    tracing::info!("stopped");
    served.map_err(|e| format!("the server failed: {e}"))
}

fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/", get(landing))
        .route("/metrics", get(metrics))
        .route_layer(middleware::from_fn_with_state(
            Arc::clone(&shared),
            require_auth,
        ))
        .route("/healthz", get(healthz))
        .with_state(shared)
}

/// State shared by the collectors, the renderer and the handlers.
struct Shared {
    state: Mutex<SharedState>,
    rendered: RwLock<Arc<Rendered>>,
    wake: Notify,
    timestamps: bool,
    auth: Option<ScrapeAuth>,
}

struct SharedState {
    sources: Vec<SourceState>,
    /// Some source's samples changed since the last render.
    data_changed: bool,
}

/// What the exporter knows about one source.
struct SourceState {
    name: String,
    backend: &'static str,
    /// `host:port`, when the client says (never a path or credential).
    endpoint: Option<String>,
    interval: Duration,
    up: bool,
    attempted: bool,
    last_success: Option<DateTime<Utc>>,
    last_error: Option<(DateTime<Utc>, String)>,
    duration: Option<Duration>,
    errors: BTreeMap<&'static str, u64>,
    /// One sample per series, each the one point to show.
    samples: Arc<Snapshot>,
}

/// The bodies `/metrics` serves: the sources' samples and the self-metrics, in each format.
#[derive(Default)]
struct Rendered {
    data: [Bytes; 2],
    meta: [Bytes; 2],
}

fn format_index(format: Format) -> usize {
    match format {
        Format::Prometheus => 0,
        Format::OpenMetrics => 1,
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Shared {
    fn new(sources: &[Source], timestamps: bool, auth: Option<ScrapeAuth>) -> Self {
        let states = sources
            .iter()
            .map(|s| SourceState {
                name: s.name.clone(),
                backend: s.backend,
                endpoint: s.client.endpoint(),
                interval: s.schedule.interval,
                up: false,
                attempted: false,
                last_success: None,
                last_error: None,
                duration: None,
                errors: BTreeMap::new(),
                samples: Arc::new(Snapshot::default()),
            })
            .collect();
        let shared = Self {
            state: Mutex::new(SharedState {
                sources: states,
                data_changed: true,
            }),
            rendered: RwLock::new(Arc::new(Rendered::default())),
            wake: Notify::new(),
            timestamps,
            auth,
        };
        shared.wake.notify_one();
        shared
    }

    fn rendered(&self) -> Arc<Rendered> {
        Arc::clone(&self.rendered.read().unwrap_or_else(PoisonError::into_inner))
    }

    /// Keeps one collection's outcome and wakes the renderer.
    fn record(
        &self,
        index: usize,
        outcome: Result<Snapshot, (&'static str, String)>,
        at: DateTime<Utc>,
        took: Duration,
    ) {
        let mut state = lock(&self.state);
        let mut changed = false;
        let source = &mut state.sources[index];
        source.attempted = true;
        source.duration = Some(took);
        let was_up = source.up;
        match outcome {
            Ok(samples) => {
                source.up = true;
                source.last_success = Some(at);
                if !source.samples.same_text(&samples, self.timestamps) {
                    source.samples = Arc::new(samples);
                    changed = true;
                }
                if !was_up {
                    tracing::info!(
                        source = %source.name,
                        backend = source.backend,
                        series = source.samples.len(),
                        took_ms = took.as_millis(),
                        "source is up"
                    );
                }
            }
            Err((kind, message)) => {
                source.up = false;
                *source.errors.entry(kind).or_default() += 1;
                // A failed source's series go: what it said last is no longer known to hold.
                if !source.samples.is_empty() {
                    source.samples = Arc::new(Snapshot::default());
                    changed = true;
                }
                if was_up || source.last_error.is_none() {
                    tracing::warn!(source = %source.name, backend = source.backend, kind, error = %message, "collection failed");
                } else {
                    tracing::debug!(source = %source.name, backend = source.backend, kind, error = %message, "collection failed again");
                }
                source.last_error = Some((at, message));
            }
        }
        state.data_changed |= changed;
        drop(state);
        self.wake.notify_one();
    }
}

/// Collects from one source forever, on its interval; a collection never overlaps the
/// previous one.
async fn collect_loop(shared: Arc<Shared>, index: usize, source: Source) {
    let mut ticker = tokio::time::interval(source.schedule.interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        let started = Instant::now();
        let started_at = Utc::now();
        let task_source = source.clone();
        // Its own task, so that a panicking client is a failed collection, not a dead loop.
        let result = tokio::spawn(async move { task_source.collect(&Query::new()).await }).await;
        let outcome = match result {
            Ok(Ok(series)) => {
                let exposed = source.clone();
                // Preparing 100 000 series takes milliseconds: off the async workers.
                tokio::task::spawn_blocking(move || {
                    Snapshot::new(&expose(&exposed, series, started_at))
                })
                .await
                .map_err(|_| {
                    (
                        errors::PANICKED,
                        "preparing the samples panicked".to_owned(),
                    )
                })
            }
            Ok(Err(error)) => Err((error.kind(), error.to_string())),
            Err(_) => Err((errors::PANICKED, "the collection panicked".to_owned())),
        };
        shared.record(index, outcome, Utc::now(), started.elapsed());
    }
}

/// One sample per series: the newest point, or for history (buckets of time) the newest
/// point whose bucket had ended when the collection started. Every series gets the
/// `source` label (a `source` label of its own is kept as `exported_source`, as Prometheus
/// and the core's `Aggregator` do), and a help text when its backend gave none.
fn expose(source: &Source, series: Vec<Series>, started: DateTime<Utc>) -> Vec<Series> {
    series
        .into_iter()
        .filter_map(|mut series| {
            let point = match bucket(source.backend, &series.name, source.schedule.step) {
                None => series.points.last().copied(),
                Some(bucket) => {
                    let bucket = metrics_hub::chrono::Duration::from_std(bucket).ok()?;
                    series
                        .points
                        .iter()
                        .rev()
                        .find(|p| p.time + bucket <= started)
                        .copied()
                }
            }?;
            series.points = vec![point];
            if let Some(own) = series.labels.remove("source") {
                series.labels.insert("exported_source".to_owned(), own);
            }
            series
                .labels
                .insert("source".to_owned(), source.name.clone());
            if series.help.as_deref().is_none_or(str::is_empty) {
                // Every family gets a help text, as promtool's lint asks.
                series.help = Some(format!(
                    "{} from {} (the backend gives no description)",
                    series.name, source.backend
                ));
            }
            Some(series)
        })
        .collect()
}

/// How long one point of a series stands for, for the backends whose APIs return history
/// in buckets; `None` for values that hold "now" (Outline transfer, Coopr queues). This
/// mirrors how each backend maps the query's step (see their `source` modules).
fn bucket(backend: &str, series: &str, step: Duration) -> Option<Duration> {
    // AppOptics and Vumi round the step up to whole seconds.
    let whole_seconds =
        Duration::from_secs((step.as_secs() + u64::from(step.subsec_nanos() > 0)).max(1));
    match backend {
        "appoptics" | "vumi" => Some(whole_seconds),
        // The server keeps one row per hour whatever the step.
        "unleash" => Some(Duration::from_secs(3600)),
        "coopr" if series == metrics_hub::coopr::source::NODE_USAGE_SECONDS => {
            let seconds = i64::try_from(step.as_secs()).unwrap_or(i64::MAX);
            let group = metrics_hub::coopr::GroupBy::ALL
                .into_iter()
                .rev()
                .find(|g| g.seconds() <= seconds)
                .unwrap_or(metrics_hub::coopr::GroupBy::Hour);
            Some(Duration::from_secs(
                u64::try_from(group.seconds()).unwrap_or(3600),
            ))
        }
        _ => None,
    }
}

/// Renders after every wake-up: the self-metrics always, the sources' samples when they
/// changed. Wake-ups that arrive while it renders are coalesced into one.
async fn render_loop(shared: Arc<Shared>) {
    loop {
        shared.wake.notified().await;
        let (samples, meta, data_changed) = {
            let mut state = lock(&shared.state);
            let changed = std::mem::take(&mut state.data_changed);
            let samples: Vec<Arc<Snapshot>> = if changed {
                state
                    .sources
                    .iter()
                    .map(|s| Arc::clone(&s.samples))
                    .collect()
            } else {
                Vec::new()
            };
            (samples, self_metrics(&state.sources), changed)
        };
        let previous = shared.rendered();
        let timestamps = shared.timestamps;
        // Large bodies are rendered off the async workers.
        let rendered = tokio::task::spawn_blocking(move || {
            let data = if data_changed {
                [Format::Prometheus, Format::OpenMetrics].map(|format| {
                    Bytes::from(exposition::render_snapshots(&samples, format, timestamps))
                })
            } else {
                previous.data.clone()
            };
            let meta = [Format::Prometheus, Format::OpenMetrics]
                .map(|format| Bytes::from(exposition::render(&meta, format, false)));
            Rendered { data, meta }
        })
        .await;
        if let Ok(rendered) = rendered {
            *shared
                .rendered
                .write()
                .unwrap_or_else(PoisonError::into_inner) = Arc::new(rendered);
        }
    }
}

/// `metrics_hub_source_up`, `…_last_success_timestamp_seconds`,
/// `metrics_hub_collect_duration_seconds` and `metrics_hub_collect_errors_total`.
fn self_metrics(sources: &[SourceState]) -> Vec<Series> {
    let now = Utc::now();
    let sample = |name: &str,
                  kind: SeriesKind,
                  help: &str,
                  unit: Option<Unit>,
                  source: &SourceState,
                  value: f64| {
        let mut series = Series::new(name, kind)
            .with_help(help)
            .with_label("source", source.name.clone())
            .with_label("backend", source.backend);
        if let Some(unit) = unit {
            series = series.with_unit(unit);
        }
        series.with_point(now, value)
    };
    let mut out = Vec::with_capacity(sources.len() * 4);
    for source in sources {
        out.push(sample(
            "metrics_hub_source_up",
            SeriesKind::Gauge,
            "Whether the source's last collection succeeded (1) or not (0)",
            None,
            source,
            if source.up { 1.0 } else { 0.0 },
        ));
    }
    for source in sources {
        out.push(sample(
            "metrics_hub_source_last_success_timestamp_seconds",
            SeriesKind::Gauge,
            "When the source's last successful collection started, in seconds since 1970 (0: never)",
            Some(Unit::Seconds),
            source,
            source
                .last_success
                .map_or(0.0, |t| t.timestamp_millis() as f64 / 1000.0),
        ));
    }
    for source in sources.iter().filter(|s| s.attempted) {
        out.push(sample(
            "metrics_hub_collect_duration_seconds",
            SeriesKind::Gauge,
            "How long the source's last collection took",
            Some(Unit::Seconds),
            source,
            source.duration.unwrap_or_default().as_secs_f64(),
        ));
    }
    for source in sources {
        for (kind, count) in &source.errors {
            let mut one = sample(
                "metrics_hub_collect_errors_total",
                SeriesKind::Counter,
                "Failed collections of the source, by kind of error",
                None,
                source,
                *count as f64,
            );
            one = one.with_label("kind", *kind);
            out.push(one);
        }
    }
    out
}

async fn metrics(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    let format = Format::negotiate(headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()));
    let rendered = shared.rendered();
    let index = format_index(format);
    let mut chunks = vec![rendered.data[index].clone(), rendered.meta[index].clone()];
    if format == Format::OpenMetrics {
        chunks.push(Bytes::from_static(exposition::EOF.as_bytes()));
    }
    let length: usize = chunks.iter().map(Bytes::len).sum();
    let body = Body::from_stream(futures_util::stream::iter(
        chunks.into_iter().map(Ok::<_, Infallible>),
    ));
    let mut response = Response::new(body);
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(format.content_type()),
    );
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(length));
    response
}

async fn healthz() -> &'static str {
    "ok\n"
}

async fn landing(State(shared): State<Arc<Shared>>) -> Html<String> {
    let state = lock(&shared.state);
    let mut page = String::from(concat!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>metrics-hub</title>\n",
        "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}",
        "td,th{border:1px solid #ccc;padding:.3em .6em;text-align:left;vertical-align:top}",
        ".up{color:#070}.down{color:#b00}</style></head><body>\n",
        "<h1>metrics-hub</h1>\n<p>Prometheus exporter ",
        env!("CARGO_PKG_VERSION"),
        ": <a href=\"/metrics\">/metrics</a> · <a href=\"/healthz\">/healthz</a></p>\n",
        "<table>\n<tr><th>source</th><th>backend</th><th>endpoint</th><th>status</th><th>last success</th>",
        "<th>last error</th><th>series</th><th>interval</th></tr>\n",
    ));
    for source in &state.sources {
        let status = match (source.attempted, source.up) {
            (false, _) => "<td>pending</td>",
            (true, true) => "<td class=\"up\">up</td>",
            (true, false) => "<td class=\"down\">down</td>",
        };
        let success = source.last_success.map_or_else(
            || "never".to_owned(),
            |t| t.to_rfc3339_opts(SecondsFormat::Secs, true),
        );
        let error = source
            .last_error
            .as_ref()
            .map_or_else(String::new, |(at, message)| {
                format!(
                    "{}: {}",
                    at.to_rfc3339_opts(SecondsFormat::Secs, true),
                    html_escape(message)
                )
            });
        let _ = writeln!(
            page,
            "<tr><td>{}</td><td>{}</td><td>{}</td>{status}<td>{success}</td><td>{error}</td><td>{}</td><td>{} s</td></tr>",
            html_escape(&source.name),
            html_escape(source.backend),
            html_escape(source.endpoint.as_deref().unwrap_or("")),
            source.samples.len(),
            source.interval.as_secs_f64(),
        );
    }
    page.push_str("</table>\n</body></html>\n");
    Html(page)
}

/// Escapes text for HTML element content and attribute values.
fn html_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Refuses a request without the configured credentials, when there are any.
async fn require_auth(State(shared): State<Arc<Shared>>, request: Request, next: Next) -> Response {
    let Some(auth) = &shared.auth else {
        return next.run(request).await;
    };
    let given = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let (accepted, challenge) = check_credentials(auth, given);
    if accepted {
        return next.run(request).await;
    }
    tracing::debug!(path = %request.uri().path(), "refused a request without valid credentials");
    (
        StatusCode::UNAUTHORIZED,
        [(header::WWW_AUTHENTICATE, challenge)],
        "401 Unauthorized: this exporter needs credentials\n",
    )
        .into_response()
}

/// Whether an `Authorization` header value carries the configured credentials, and the
/// `WWW-Authenticate` challenge to answer with when it does not.
fn check_credentials(auth: &ScrapeAuth, given: &str) -> (bool, &'static str) {
    match auth {
        ScrapeAuth::Basic { username, password } => {
            let expected = format!("{username}:{}", password.expose());
            let decoded = given
                .strip_prefix("Basic ")
                .and_then(|b| {
                    base64::engine::general_purpose::STANDARD
                        .decode(b.trim())
                        .ok()
                })
                .unwrap_or_default();
            (
                constant_time_eq(&decoded, expected.as_bytes()),
                "Basic realm=\"metrics-hub\", charset=\"UTF-8\"",
            )
        }
        ScrapeAuth::Bearer(token) => {
            let presented = given.strip_prefix("Bearer ").unwrap_or_default().trim();
            (
                constant_time_eq(presented.as_bytes(), token.expose().as_bytes()),
                "Bearer realm=\"metrics-hub\"",
            )
        }
    }
}

/// Compares without stopping at the first difference, so that the time taken does not
/// tell how much of a guess was right.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let mut difference = u8::from(a.len() != b.len());
    for (i, byte) in a.iter().enumerate() {
        difference |= byte ^ b.get(i).copied().unwrap_or(!byte);
    }
    difference == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use metrics_hub::chrono::TimeZone as _;

    fn at(hour: u32, minute: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 1, 1, hour, minute, 0).unwrap()
    }

    #[derive(Debug)]
    struct Nothing(&'static str);

    #[metrics_hub::async_trait]
    impl metrics_hub::MetricsSource for Nothing {
        fn backend(&self) -> &'static str {
            self.0
        }

        async fn collect(&self, _: &Query) -> metrics_hub::Result<Vec<Series>> {
            Ok(Vec::new())
        }
    }

    fn source(backend: &'static str) -> Source {
        Source {
            name: format!("my-{backend}"),
            backend,
            client: Arc::new(Nothing(backend)),
            schedule: crate::config::Schedule::default(),
            names: Vec::new(),
            labels: BTreeMap::new(),
        }
    }

    #[test]
    fn history_shows_its_latest_complete_bucket_and_now_values_their_last_point() {
        let value = |series: &[Series]| series[0].points[0].value;
        let hourly = Series::new("unleash_feature_evaluations", SeriesKind::Gauge)
            .with_help("Evaluations")
            .with_point(at(9, 0), 5.0)
            .with_point(at(10, 0), 7.0)
            .with_point(at(11, 0), 1.0);
        let exposed = expose(&source("unleash"), vec![hourly.clone()], at(11, 20));
        assert_eq!(value(&exposed), 7.0, "11:00 is still being counted");
        assert_eq!(exposed[0].points.len(), 1);
        assert_eq!(exposed[0].labels["source"], "my-unleash");
        assert_eq!(exposed[0].help.as_deref(), Some("Evaluations"));
        let exposed = expose(&source("unleash"), vec![hourly], at(12, 0));
        assert_eq!(value(&exposed), 1.0);

        let only_partial = Series::new("vumi_x", SeriesKind::Gauge).with_point(at(11, 0), 3.0);
        assert!(expose(&source("vumi"), vec![only_partial], at(11, 30)).is_empty());

        let queue = Series::new("coopr_queue_tasks", SeriesKind::Gauge)
            .with_label("source", "theirs")
            .with_point(at(11, 30), 4.0);
        let exposed = expose(&source("coopr"), vec![queue], at(11, 30));
        assert_eq!(value(&exposed), 4.0);
        assert_eq!(exposed[0].labels["source"], "my-coopr");
        assert_eq!(exposed[0].labels["exported_source"], "theirs");
        assert_eq!(
            exposed[0].help.as_deref(),
            Some("coopr_queue_tasks from coopr (the backend gives no description)")
        );
    }

    #[test]
    fn credentials_are_checked_exactly() {
        let basic = ScrapeAuth::Basic {
            username: "prometheus".to_owned(),
            password: metrics_hub::Secret::new("pa:ss".to_owned()),
        };
        let encoded = |text: &str| {
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(text)
            )
        };
        assert!(check_credentials(&basic, &encoded("prometheus:pa:ss")).0);
        assert!(!check_credentials(&basic, &encoded("prometheus:pa:sS")).0);
        assert!(!check_credentials(&basic, &encoded("prometheus:")).0);
        assert!(!check_credentials(&basic, "Basic not-base64").0);
        assert!(!check_credentials(&basic, "").0);
        assert!(check_credentials(&basic, "").1.starts_with("Basic realm="));
        let bearer = ScrapeAuth::Bearer(metrics_hub::Secret::new("t0ken".to_owned()));
        assert!(check_credentials(&bearer, "Bearer t0ken").0);
        assert!(!check_credentials(&bearer, "Bearer t0ke").0);
        assert!(!check_credentials(&bearer, "t0ken").0);
        assert!(!check_credentials(&bearer, &encoded("x:t0ken")).0);
    }

    #[test]
    fn escaping_and_comparison() {
        assert_eq!(
            html_escape("<script>\"a\" & 'b'</script>"),
            "&lt;script&gt;&quot;a&quot; &amp; &#39;b&#39;&lt;/script&gt;"
        );
        assert!(constant_time_eq(b"secret", b"secret"));
        assert!(!constant_time_eq(b"secret", b"secreT"));
        assert!(!constant_time_eq(b"secret", b"secret2"));
        assert!(!constant_time_eq(b"", b"x"));
    }
}
