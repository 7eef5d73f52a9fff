//! Each client on loopback, and against the same server the **floor**: a plain keep-alive
//! `reqwest::Client` sending the same request (method, path, headers, body) and reading the
//! body as bytes, without decoding. Two servers, two tables:
//!
//! - **The replay server** (`benches/replay_server.rs`, a child process): each emulator's
//!   answer to each request, recorded once at start, sent back byte for byte with nothing
//!   computed per request. The server costs nothing in this process, so this process's CPU
//!   time per call is the client's own (or the floor's), and the rates are not diluted by
//!   the emulators' 30–300 µs of work per request.
//! - **The emulators**, in this process, as before: the end-to-end rates, and peak memory.
//!
//! - **The exporter** (`exporter.rs`): `/metrics` with 100 000 series, rendered by the
//!   exporter's renderer and by prometheus-client's text encoders, and served by a running
//!   `metrics-hub serve` to 10 concurrent scrapers.
//!
//! Run with `cargo xtask bench [--json] [--replay-only] [OPERATION...]` or `cargo bench -p
//! metrics-hub-examples --bench clients -- [ARGS]`; an operation name selects the operations
//! whose key contains it (`Outline`, `VumiFire`, `Exporter`, `ExporterRender`). For a
//! profiler, `METRICS_HUB_BENCH_PROFILE=<OpKey>:<client|floor>:<calls>` makes only those
//! calls against the replay server, inside `profiled_calls`, and
//! `METRICS_HUB_BENCH_PROFILE=ExporterRender:<ours|theirs>:<bodies>[:prometheus]` only
//! renders, inside `profiled_renders`.
//!
//! - The emulators run in this process on a runtime of their own (one worker thread); the
//!   clients and floors run on a current-thread runtime on the main thread.
//! - The floor's requests are the client's own: each client is pointed once at a capturing
//!   loopback server that records the bytes it sends, and the floor replays them.
//! - Rounds alternate client and floor; the figures are medians of the rounds.
//! - Peak memory is measured in a fresh child process (this binary again) that makes two
//!   client calls against the same emulators: the growth of its peak RSS (`VmHWM`, reset
//!   through `/proc/self/clear_refs`) over its RSS just before the second call, on the warm
//!   connection. The emulators are not in that process, so the figure is the client's
//!   alone: the body, the decoded result, the buffers between.

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use appoptics_client::{AppOpticsClient, Measurement};
use coopr_client::{CooprClient, NodeUsageQuery};
use metrics_emulators::appoptics::AppOpticsEmulator;
use metrics_emulators::coopr::{CooprEmulator, NodeLifetime};
use metrics_emulators::outline::OutlineEmulator;
use metrics_emulators::unleash::UnleashEmulator;
use metrics_emulators::vumi::{VumiEmulator, VumiEmulatorConfig};
use metrics_hub::chrono;
use metrics_hub::{Aggregator, MetricsSource, Query};
use outline_client::OutlineClient;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use unleash_client::{MetricsBucket, ToggleCount, UnleashClient};
use vumi_client::{MetricName, MetricsQuery, Nulls, VumiClient};

mod exporter;
#[path = "../../xtask/src/bench.rs"]
mod report;

use report::Row;

const VUMI_TOKEN: &str = "bench-token";
const VUMI_OWNER: &str = "bench-owner";
const APPOPTICS_TOKEN: &str = "0123456789abcdef";
const BIG_KEYS: usize = 100_000;
const ROUNDS: usize = 15;
const REPLAY_NOTE: &str = "cpu: CPU time of the benchmark process (every thread, user and system, CLOCK_PROCESS_CPUTIME_ID) per unit, median of the rounds; the server runs in another process, so it is the client's (or the floor's) own. cpu ratio: client over floor, round by round; extra: client minus floor per unit.";
const MEMORY_NOTE: &str = "peak mem: growth of peak RSS (VmHWM) over RSS during one client call on a warm connection, in a fresh child process with glibc's mmap and trim thresholds at 128 KiB (freed buffers leave RSS); the emulators run in the parent, so it is the client's alone";

type BoxError = Box<dyn std::error::Error + Send + Sync>;
type Res<T> = Result<T, BoxError>;

// ---- what the emulators are -------------------------------------------------------------

/// Where the emulators are; passed to memory-probe children through the environment.
#[derive(Clone, Debug, Default)]
struct Targets(BTreeMap<String, String>);

impl Targets {
    fn get(&self, key: &str) -> &str {
        self.0.get(key).map_or("", String::as_str)
    }
    fn encode(&self) -> String {
        self.0
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("\n")
    }
    fn decode(text: &str) -> Self {
        Self(
            text.lines()
                .filter_map(|line| line.split_once('='))
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect(),
        )
    }
}

/// The emulators, kept alive for the whole run.
struct Emulators {
    _outline_small: OutlineEmulator,
    _outline_big: OutlineEmulator,
    _unleash: UnleashEmulator,
    _coopr: CooprEmulator,
    _vumi: VumiEmulator,
    appoptics: AppOpticsEmulator,
}

impl Emulators {
    /// Forgets what earlier rounds stored, keeps the demo data the aggregator reads.
    fn reset_appoptics(&self) {
        self.appoptics.reset();
        self.appoptics
            .seed_demo_data(chrono::Utc::now().timestamp());
    }
}

async fn start_emulators() -> Res<(Emulators, Targets)> {
    let mut t = BTreeMap::new();

    let outline_small = OutlineEmulator::start().await?;
    outline_small.set_transfers((0..10).map(|i| (i.to_string(), 1_000_000_000 + i)));
    t.insert("outline_small_url".into(), outline_small.api_url());
    t.insert(
        "outline_small_cert".into(),
        outline_small.cert_sha256().into(),
    );

    let outline_big = OutlineEmulator::start().await?;
    outline_big.set_transfers((0..BIG_KEYS as u64).map(|i| (i.to_string(), 1_000_000_000 + i)));
    t.insert("outline_big_url".into(), outline_big.api_url());
    t.insert("outline_big_cert".into(), outline_big.cert_sha256().into());

    let appoptics = AppOpticsEmulator::start().await?;
    let now = chrono::Utc::now().timestamp();
    appoptics.seed_demo_data(now);
    t.insert("appoptics_url".into(), appoptics.api_url());

    let unleash = UnleashEmulator::start().await?;
    unleash.seed_demo();
    t.insert("unleash_url".into(), unleash.base_url());

    let coopr = CooprEmulator::start().await?;
    seed_coopr(&coopr, chrono::Utc::now().timestamp_millis());
    t.insert("coopr_url".into(), coopr.base_url());

    let vumi = VumiEmulator::start_with(
        VumiEmulatorConfig::default()
            .with_bouncer([(VUMI_TOKEN, VUMI_OWNER)])
            .with_disable_auto_prefix(true),
    )
    .await?;
    let names = vumi.seed_example_data(VUMI_OWNER);
    t.insert("vumi_url".into(), vumi.api_url());
    t.insert("vumi_metric".into(), names[0].clone());

    Ok((
        Emulators {
            _outline_small: outline_small,
            _outline_big: outline_big,
            _unleash: unleash,
            _coopr: coopr,
            _vumi: vumi,
            appoptics,
        },
        Targets(t),
    ))
}

fn seed_coopr(emulator: &CooprEmulator, now_ms: i64) {
    let acme = emulator.add_tenant("acme");
    let globex = emulator.add_tenant("globex");
    for (tenant, user) in [(&acme, "alice"), (&acme, "admin"), (&globex, "admin")] {
        emulator.add_user(tenant, user);
    }
    emulator.enqueue_tasks(&acme, 34);
    emulator.take_tasks(&acme, 8);
    emulator.enqueue_tasks(&globex, 3);
    let ago = |minutes: i64| now_ms - minutes * 60_000;
    for node in ["n1", "n2", "n3"] {
        emulator.add_node(
            NodeLifetime::new(&acme, "alice", "1001", node, ago(23 * 60))
                .deleted_at(ago(3 * 60))
                .with_cluster_template("hadoop-distributed"),
        );
    }
    emulator.add_node(
        NodeLifetime::new(&acme, "alice", "1002", "n1", ago(5 * 60)).with_cluster_template("lamp"),
    );
}

// ---- the clients ---------------------------------------------------------------------------

struct Clients {
    outline_small: OutlineClient,
    outline_big: OutlineClient,
    appoptics: AppOpticsClient,
    unleash: UnleashClient,
    coopr: CooprClient,
    vumi: VumiClient,
    vumi_metric: MetricName,
    floor: reqwest::Client,
    /// Seconds adding and submitting, per queue round.
    queue_phases: Mutex<Vec<(f64, f64)>>,
}

fn outline_client(url: &str, cert: &str) -> Res<OutlineClient> {
    Ok(OutlineClient::builder()
        .with_api_url(url)
        .with_cert_sha256(cert)
        .build()?)
}

fn appoptics_client(base: &str) -> Res<AppOpticsClient> {
    Ok(AppOpticsClient::builder()
        .with_token(APPOPTICS_TOKEN)
        .with_base_url(base)
        .with_source_metrics(["cpu.percent.user"])
        .build()?)
}

fn unleash_client(base: &str) -> Res<UnleashClient> {
    Ok(UnleashClient::builder()
        .with_url(base)
        .with_api_token(UnleashEmulator::CLIENT_TOKEN)
        .with_admin_token(UnleashEmulator::ADMIN_TOKEN)
        .with_app_name("bench-shop")
        .with_instance_id("bench-shop-1")
        .with_strategies(["default"])
        .build()?)
}

fn coopr_client(base: &str) -> Res<CooprClient> {
    Ok(CooprClient::builder()
        .with_base_url(base)
        .with_user_id("admin")
        .with_tenant("superadmin")
        .with_api_key("bench-key")
        .build()?)
}

fn vumi_client(base: &str, metric: &str) -> Res<VumiClient> {
    Ok(VumiClient::builder()
        .with_base_url(base)
        .with_token(VUMI_TOKEN)
        .with_metrics([metric.to_owned()])
        .build()?)
}

impl Clients {
    fn new(t: &Targets) -> Res<Self> {
        Ok(Self {
            outline_small: outline_client(t.get("outline_small_url"), t.get("outline_small_cert"))?,
            outline_big: outline_client(t.get("outline_big_url"), t.get("outline_big_cert"))?,
            appoptics: appoptics_client(t.get("appoptics_url"))?,
            unleash: unleash_client(t.get("unleash_url"))?,
            coopr: coopr_client(t.get("coopr_url"))?,
            vumi: vumi_client(t.get("vumi_url"), t.get("vumi_metric"))?,
            vumi_metric: MetricName::new(t.get("vumi_metric"))?,
            floor: reqwest::Client::builder()
                // The Outline emulator's certificate is self-signed; the client pins it.
                .danger_accept_invalid_certs(true)
                .build()?,
            queue_phases: Mutex::new(Vec::new()),
        })
    }
}

fn bucket() -> MetricsBucket {
    let now = chrono::Utc::now();
    MetricsBucket::new(now - chrono::Duration::seconds(60))
        .with_stop(now)
        .with_toggle("new-checkout", ToggleCount::new(30, 12))
        .with_toggle("button-color", ToggleCount::new(7, 0))
}

fn vumi_query(metric: &MetricName) -> MetricsQuery {
    // 5000 minutes at 5-minute buckets: 1 000 points.
    MetricsQuery::new()
        .with_metric(metric)
        .with_from("-5000min")
        .with_interval("5min")
        .with_nulls(Nulls::Keep)
}

// ---- capturing what a client sends ------------------------------------------------------

/// One request as a client sent it.
#[derive(Clone, Debug)]
struct Captured {
    method: String,
    path: String,
    headers: Vec<(String, String)>,
    body: bytes::Bytes,
}

/// A loopback server that records every request and answers each with a fixed response.
struct Capture {
    origin: String,
    seen: Arc<Mutex<Vec<Captured>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Capture {
    async fn start(response: &'static str) -> Res<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let origin = format!("http://{}", listener.local_addr()?);
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = Arc::clone(&seen);
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let log = Arc::clone(&log);
                tokio::spawn(async move {
                    let _ = serve_capture(stream, &log, response).await;
                });
            }
        });
        Ok(Self { origin, seen, task })
    }

    fn take(&self) -> Vec<Captured> {
        std::mem::take(
            &mut *self
                .seen
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        )
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve_capture(
    mut stream: tokio::net::TcpStream,
    log: &Mutex<Vec<Captured>>,
    response: &str,
) -> Res<()> {
    let mut buf = Vec::new();
    loop {
        let end = loop {
            if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break end;
            }
            let mut chunk = [0u8; 16 * 1024];
            let n = stream.read(&mut chunk).await?;
            if n == 0 {
                return Ok(());
            }
            buf.extend_from_slice(&chunk[..n]);
        };
        let head = String::from_utf8_lossy(&buf[..end]).into_owned();
        let mut lines = head.split("\r\n");
        let mut request_line = lines.next().unwrap_or("").split(' ');
        let method = request_line.next().unwrap_or("GET").to_owned();
        let path = request_line.next().unwrap_or("/").to_owned();
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
            .collect();
        let length: usize = headers
            .iter()
            .find(|(n, _)| n == "content-length")
            .and_then(|(_, v)| v.parse().ok())
            .unwrap_or(0);
        buf.drain(..end + 4);
        while buf.len() < length {
            let mut chunk = [0u8; 64 * 1024];
            let n = stream.read(&mut chunk).await?;
            if n == 0 {
                return Ok(());
            }
            buf.extend_from_slice(&chunk[..n]);
        }
        let body = bytes::Bytes::copy_from_slice(&buf[..length]);
        buf.drain(..length);
        log.lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(Captured {
                method,
                path,
                headers,
                body,
            });
        stream.write_all(response.as_bytes()).await?;
    }
}

const CAPTURE_OK: &str =
    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}";

/// `http://127.0.0.1:PORT` of a URL.
fn origin(url: &str) -> &str {
    let after_scheme = url.find("://").map_or(0, |i| i + 3);
    url[after_scheme..]
        .find('/')
        .map_or(url, |i| &url[..after_scheme + i])
}

/// The requests a client makes in `call`, with the client pointed at a capture server in
/// place of `base_url`'s origin.
async fn capture<C, F>(
    base_url: &str,
    make: impl FnOnce(&str) -> Res<C>,
    call: F,
) -> Res<Vec<Captured>>
where
    F: for<'a> FnOnce(&'a C) -> Pin<Box<dyn Future<Output = ()> + 'a>>,
{
    let capture = Capture::start(CAPTURE_OK).await?;
    let redirected = format!("{}{}", capture.origin, &base_url[origin(base_url).len()..]);
    let client = make(&redirected)?;
    call(&client).await;
    let seen = capture.take();
    if seen.is_empty() {
        return Err("the client sent nothing to the capture server".into());
    }
    Ok(seen)
}

/// The captured request, addressed to `origin`.
fn floor_request(
    floor: &reqwest::Client,
    origin: &str,
    request: &Captured,
) -> Res<reqwest::RequestBuilder> {
    let method = reqwest::Method::from_bytes(request.method.as_bytes())?;
    let mut builder = floor.request(method, format!("{origin}{}", request.path));
    for (name, value) in &request.headers {
        if !matches!(name.as_str(), "host" | "content-length" | "connection") {
            builder = builder.header(name, value);
        }
    }
    Ok(builder.body(request.body.clone()))
}

/// The floor: the captured request, replayed to the real server, the body read as bytes.
async fn replay(floor: &reqwest::Client, origin: &str, request: &Captured) -> Res<usize> {
    let response = floor_request(floor, origin, request)?.send().await?;
    let status = response.status();
    let body = response.bytes().await?;
    if !status.is_success() {
        return Err(format!(
            "the floor's {} {} got {status}",
            request.method, request.path
        )
        .into());
    }
    Ok(body.len())
}

fn outline_floor(url: &str, path: &str) -> Captured {
    Captured {
        method: "GET".into(),
        path: format!("{}/{path}", &url[origin(url).len()..]),
        headers: vec![("accept".into(), "application/json".into())],
        body: bytes::Bytes::new(),
    }
}

// ---- the operations ------------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    OutlineTransfer10,
    OutlineTransfer100k,
    OutlineEnabled,
    OutlineServer,
    AppOpticsSubmit,
    AppOpticsQueue10kSeq,
    AppOpticsQueue10k,
    AppOpticsQueue1mSeq,
    AppOpticsQueue1m,
    UnleashRegister,
    UnleashSendMetrics,
    CooprQueueMetrics,
    CooprNodeUsage,
    VumiQuery1000,
    VumiFire,
    Aggregator,
}

const OPS: [Op; 16] = [
    Op::OutlineTransfer10,
    Op::OutlineTransfer100k,
    Op::OutlineEnabled,
    Op::OutlineServer,
    Op::AppOpticsSubmit,
    Op::AppOpticsQueue10kSeq,
    Op::AppOpticsQueue10k,
    Op::AppOpticsQueue1mSeq,
    Op::AppOpticsQueue1m,
    Op::UnleashRegister,
    Op::UnleashSendMetrics,
    Op::CooprQueueMetrics,
    Op::CooprNodeUsage,
    Op::VumiQuery1000,
    Op::VumiFire,
    Op::Aggregator,
];

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Op::OutlineTransfer10 => "outline metrics().transfer(), 10 keys",
            Op::OutlineTransfer100k => "outline metrics().transfer(), 100k keys",
            Op::OutlineEnabled => "outline metrics().enabled()",
            Op::OutlineServer => "outline server()",
            Op::AppOpticsSubmit => "appoptics submit, 1 measurement",
            Op::AppOpticsQueue10kSeq => "appoptics queue, 10 000 meas., 1 in flight",
            Op::AppOpticsQueue10k => "appoptics queue, 10 000 meas., 4 in flight",
            Op::AppOpticsQueue1mSeq => "appoptics queue, 1 000 000 meas., 1 in flight",
            Op::AppOpticsQueue1m => "appoptics queue, 1 000 000 meas., 4 in flight",
            Op::UnleashRegister => "unleash register()",
            Op::UnleashSendMetrics => "unleash send_metrics()",
            Op::CooprQueueMetrics => "coopr queue_metrics()",
            Op::CooprNodeUsage => "coopr node_usage()",
            Op::VumiQuery1000 => "vumi query, 1 000 points",
            Op::VumiFire => "vumi fire, 2 metrics",
            Op::Aggregator => "aggregator, 5 sources, 1 delayed 50 ms",
        })
    }
}

impl Op {
    fn key(self) -> String {
        format!("{self:?}")
    }

    fn from_key(key: &str) -> Option<Self> {
        OPS.into_iter().find(|op| op.key() == key)
    }

    /// Calls per round (for the queues: measurements per submission, one per round).
    fn per_round(self) -> usize {
        match self {
            Op::OutlineTransfer100k => 4,
            Op::AppOpticsQueue10k | Op::AppOpticsQueue10kSeq => 10_000,
            Op::AppOpticsQueue1m | Op::AppOpticsQueue1mSeq => 1_000_000,
            Op::Aggregator => 5,
            Op::VumiQuery1000 => 100,
            _ => 300,
        }
    }

    /// Rounds, client and floor alternating: many short rounds, so that both see the same
    /// noise of a shared machine.
    fn rounds(self) -> usize {
        match self {
            Op::AppOpticsQueue1m | Op::AppOpticsQueue1mSeq => 3,
            Op::AppOpticsQueue10k | Op::AppOpticsQueue10kSeq => 9,
            Op::Aggregator => 5,
            _ => ROUNDS,
        }
    }

    /// What is counted per second.
    fn unit(self) -> &'static str {
        if self.is_queue() {
            "measurements"
        } else {
            "calls"
        }
    }

    fn is_queue(self) -> bool {
        self.max_in_flight().is_some()
    }

    /// The queue's `max_in_flight`: 1 (sequential sends, the ">= 1x" target) or the
    /// default bounded parallelism (the "higher" target).
    fn max_in_flight(self) -> Option<usize> {
        match self {
            Op::AppOpticsQueue10kSeq | Op::AppOpticsQueue1mSeq => Some(1),
            Op::AppOpticsQueue10k | Op::AppOpticsQueue1m => {
                Some(appoptics_client::queue::DEFAULT_MAX_IN_FLIGHT)
            }
            _ => None,
        }
    }

    fn target(self) -> &'static str {
        match self {
            Op::OutlineTransfer100k => ">= 0.5x, mem <= 3x body",
            Op::AppOpticsQueue10kSeq | Op::AppOpticsQueue1mSeq => ">= 1x",
            Op::AppOpticsQueue10k | Op::AppOpticsQueue1m => "> 1x",
            Op::Aggregator => "<= slowest + 5 ms",
            _ => ">= 0.9x",
        }
    }

    /// The server it talks to: the key of its URL in [`Targets`] without `_url`.
    fn server(self) -> &'static str {
        match self {
            Op::OutlineTransfer100k => "outline_big",
            Op::OutlineTransfer10 | Op::OutlineEnabled | Op::OutlineServer => "outline_small",
            Op::AppOpticsSubmit
            | Op::AppOpticsQueue10kSeq
            | Op::AppOpticsQueue10k
            | Op::AppOpticsQueue1mSeq
            | Op::AppOpticsQueue1m => "appoptics",
            Op::UnleashRegister | Op::UnleashSendMetrics => "unleash",
            Op::CooprQueueMetrics | Op::CooprNodeUsage => "coopr",
            Op::VumiQuery1000 | Op::VumiFire => "vumi",
            Op::Aggregator => "",
        }
    }
}

/// The operations measured against the replay server.
const REPLAY_OPS: [Op; 12] = [
    Op::OutlineTransfer10,
    Op::OutlineTransfer100k,
    Op::OutlineEnabled,
    Op::OutlineServer,
    Op::AppOpticsSubmit,
    Op::AppOpticsQueue1m,
    Op::UnleashRegister,
    Op::UnleashSendMetrics,
    Op::CooprQueueMetrics,
    Op::CooprNodeUsage,
    Op::VumiQuery1000,
    Op::VumiFire,
];

/// What the floor of an operation sends, captured from the client.
#[derive(Clone)]
struct Prepared {
    origin: String,
    requests: Vec<Captured>,
    body_len: usize,
}

fn queue_value(i: usize) -> f64 {
    #[allow(clippy::cast_precision_loss, reason = "small numbers")]
    let v = (i % 250) as f64;
    v
}

/// Fills a queue with `n` measurements (each validated as it is added) and submits it,
/// at most `max_in_flight` chunks at a time; returns the seconds spent adding and submitting.
async fn fill_and_submit(
    client: &AppOpticsClient,
    n: usize,
    max_in_flight: usize,
) -> Res<(f64, f64)> {
    let started = Instant::now();
    let queue = client
        .queue()
        .with_tag("host", "web-1")
        .with_max_in_flight(max_in_flight)
        .build()?;
    for i in 0..n {
        queue.add("checkout.latency", queue_value(i)).await?;
    }
    let added = started.elapsed().as_secs_f64();
    queue.submit().await?;
    Ok((added, started.elapsed().as_secs_f64() - added))
}

async fn prepare(op: Op, c: &Clients, t: &Targets) -> Res<Prepared> {
    let (url, requests) = match op {
        Op::OutlineTransfer10
        | Op::OutlineTransfer100k
        | Op::OutlineEnabled
        | Op::OutlineServer => {
            let url = if op == Op::OutlineTransfer100k {
                t.get("outline_big_url")
            } else {
                t.get("outline_small_url")
            };
            let path = match op {
                Op::OutlineEnabled => "metrics/enabled",
                Op::OutlineServer => "server",
                _ => "metrics/transfer",
            };
            (url.to_owned(), vec![outline_floor(url, path)])
        }
        Op::AppOpticsSubmit
        | Op::AppOpticsQueue10kSeq
        | Op::AppOpticsQueue10k
        | Op::AppOpticsQueue1mSeq
        | Op::AppOpticsQueue1m => {
            let url = t.get("appoptics_url");
            let n = op.per_round();
            let in_flight = op.max_in_flight().unwrap_or(1);
            let requests = capture(url, appoptics_client, |client| {
                Box::pin(async move {
                    if op == Op::AppOpticsSubmit {
                        let _ = client.submit(single_measurement()).await;
                    } else {
                        let _ = fill_and_submit(client, n, in_flight).await;
                    }
                })
            })
            .await?;
            (url.to_owned(), requests)
        }
        Op::UnleashRegister | Op::UnleashSendMetrics => {
            let url = t.get("unleash_url");
            let requests = capture(url, unleash_client, |client| {
                Box::pin(async move {
                    if op == Op::UnleashRegister {
                        let _ = client.register().await;
                    } else {
                        let _ = client.send_metrics(&bucket()).await;
                    }
                })
            })
            .await?;
            (url.to_owned(), requests)
        }
        Op::CooprQueueMetrics | Op::CooprNodeUsage => {
            let url = t.get("coopr_url");
            let requests = capture(url, coopr_client, |client| {
                Box::pin(async move {
                    if op == Op::CooprQueueMetrics {
                        let _ = client.queue_metrics().await;
                    } else {
                        let _ = client.node_usage(&NodeUsageQuery::new()).await;
                    }
                })
            })
            .await?;
            (url.to_owned(), requests)
        }
        Op::VumiQuery1000 | Op::VumiFire => {
            let url = t.get("vumi_url");
            let metric = c.vumi_metric.clone();
            let requests = capture(
                url,
                |base| vumi_client(base, t.get("vumi_metric")),
                |client| {
                    Box::pin(async move {
                        if op == Op::VumiQuery1000 {
                            let _ = client.query(&vumi_query(&metric)).await;
                        } else {
                            let _ = client.fire(fire_values(&metric)).await;
                        }
                    })
                },
            )
            .await?;
            (url.to_owned(), requests)
        }
        Op::Aggregator => {
            return Ok(Prepared {
                origin: String::new(),
                requests: Vec::new(),
                body_len: 0,
            });
        }
    };
    let origin = origin(&url).to_owned();
    let mut body_len = 0;
    for request in requests.iter().take(1) {
        body_len = replay(&c.floor, &origin, request).await?;
    }
    Ok(Prepared {
        origin,
        requests,
        body_len,
    })
}

fn single_measurement() -> Measurement {
    Measurement::new("temperature", 21.5).with_tag("city", "sf")
}

fn fire_values(metric: &MetricName) -> Vec<(MetricName, f64)> {
    let other =
        MetricName::new("stores.default.bench_fired.sum").unwrap_or_else(|_| metric.clone());
    vec![(metric.clone(), 3.0), (other, 212.0)]
}

/// One client call (for the queues: one whole submission).
async fn client_call(op: Op, c: &Clients) -> Res<()> {
    match op {
        Op::OutlineTransfer10 => {
            let transfer = c.outline_small.metrics().transfer().await?;
            std::hint::black_box(transfer.len());
        }
        Op::OutlineTransfer100k => {
            let transfer = c.outline_big.metrics().transfer().await?;
            assert_eq!(transfer.len(), BIG_KEYS, "the big transfer lost keys");
            std::hint::black_box(transfer.total());
        }
        Op::OutlineEnabled => {
            std::hint::black_box(c.outline_small.metrics().enabled().await?);
        }
        Op::OutlineServer => {
            std::hint::black_box(c.outline_small.server().await?);
        }
        Op::AppOpticsSubmit => c.appoptics.submit(single_measurement()).await?,
        Op::AppOpticsQueue10kSeq
        | Op::AppOpticsQueue10k
        | Op::AppOpticsQueue1mSeq
        | Op::AppOpticsQueue1m => {
            let in_flight = op.max_in_flight().unwrap_or(1);
            let phases = fill_and_submit(&c.appoptics, op.per_round(), in_flight).await?;
            c.queue_phases
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .push(phases);
        }
        Op::UnleashRegister => c.unleash.register().await?,
        Op::UnleashSendMetrics => c.unleash.send_metrics(&bucket()).await?,
        Op::CooprQueueMetrics => {
            std::hint::black_box(c.coopr.queue_metrics().await?);
        }
        Op::CooprNodeUsage => {
            std::hint::black_box(c.coopr.node_usage(&NodeUsageQuery::new()).await?);
        }
        Op::VumiQuery1000 => {
            let data = c.vumi.query(&vumi_query(&c.vumi_metric)).await?;
            std::hint::black_box(data);
        }
        Op::VumiFire => {
            std::hint::black_box(c.vumi.fire(fire_values(&c.vumi_metric)).await?);
        }
        Op::Aggregator => {
            let collection = aggregator(c).collect(&aggregate_query()).await;
            std::hint::black_box(collection);
        }
    }
    Ok(())
}

/// One floor call (for the queues: every pre-serialized chunk, one post at a time on a
/// keep-alive connection, whatever the client's `max_in_flight`).
async fn floor_call(_op: Op, c: &Clients, p: &Prepared) -> Res<()> {
    for request in &p.requests {
        std::hint::black_box(replay(&c.floor, &p.origin, request).await?);
    }
    Ok(())
}

// ---- the aggregator ------------------------------------------------------------------------

/// A source that answers 50 ms late.
#[derive(Debug)]
struct Delayed(Arc<dyn MetricsSource>);

#[async_trait::async_trait]
impl MetricsSource for Delayed {
    fn backend(&self) -> &'static str {
        self.0.backend()
    }
    async fn collect(&self, query: &Query) -> metrics_hub::Result<Vec<metrics_hub::Series>> {
        tokio::time::sleep(Duration::from_millis(50)).await;
        self.0.collect(query).await
    }
}

fn sources(c: &Clients) -> Vec<Arc<dyn MetricsSource>> {
    vec![
        Arc::new(c.outline_small.clone()),
        Arc::new(c.appoptics.clone()),
        Arc::new(c.unleash.clone()),
        Arc::new(Delayed(Arc::new(c.coopr.clone()))),
        Arc::new(c.vumi.clone()),
    ]
}

fn aggregator(c: &Clients) -> Aggregator {
    Aggregator::new(sources(c))
}

fn aggregate_query() -> Query {
    Query::new()
        .last(Duration::from_secs(3600))
        .with_step(Duration::from_secs(300))
}

// ---- the replay server ---------------------------------------------------------------------

/// One response recorded from an emulator, for the replay server.
struct RecordedRoute {
    server: &'static str,
    tls: bool,
    method: String,
    target: String,
    response: Vec<u8>,
}

/// The emulator's answer to `request` as bytes on the wire: status line, headers, body.
///
/// The emulators answer HTTP/1.1 with lower-case header names (hyper's), which is what this
/// writes back; a chunked body is framed again as one chunk.
async fn record_response(
    floor: &reqwest::Client,
    origin: &str,
    request: &Captured,
) -> Res<Vec<u8>> {
    let response = floor_request(floor, origin, request)?.send().await?;
    let status = response.status();
    let headers = response.headers().clone();
    let body = response.bytes().await?;
    if !status.is_success() {
        return Err(format!(
            "the emulator answered {status} to {} {}",
            request.method, request.path
        )
        .into());
    }
    if headers.contains_key("content-encoding") {
        return Err(
            "the emulator compressed its answer; the replay needs the bytes as sent".into(),
        );
    }
    let chunked = headers
        .get("transfer-encoding")
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"chunked"));
    let mut out = format!(
        "HTTP/1.1 {} {}\r\n",
        status.as_str(),
        status.canonical_reason().unwrap_or("")
    )
    .into_bytes();
    for (name, value) in &headers {
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    if !chunked && !headers.contains_key("content-length") {
        out.extend_from_slice(format!("content-length: {}\r\n", body.len()).as_bytes());
    }
    out.extend_from_slice(b"\r\n");
    if chunked {
        if !body.is_empty() {
            out.extend_from_slice(format!("{:x}\r\n", body.len()).as_bytes());
            out.extend_from_slice(&body);
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"0\r\n\r\n");
    } else {
        out.extend_from_slice(&body);
    }
    Ok(out)
}

/// Each distinct request of the prepared operations, answered once by its emulator.
async fn record_routes(
    floor: &reqwest::Client,
    prepared: &[(Op, Prepared)],
) -> Res<Vec<RecordedRoute>> {
    let mut routes: Vec<RecordedRoute> = Vec::new();
    for (op, p) in prepared {
        for request in &p.requests {
            let known = routes.iter().any(|r| {
                r.server == op.server() && r.method == request.method && r.target == request.path
            });
            if known {
                continue;
            }
            routes.push(RecordedRoute {
                server: op.server(),
                tls: p.origin.starts_with("https://"),
                method: request.method.clone(),
                target: request.path.clone(),
                response: record_response(floor, &p.origin, request).await?,
            });
        }
    }
    Ok(routes)
}

/// The `replay-server` child process: one listener per emulator it stands in for.
struct ReplayServer {
    child: std::process::Child,
    /// Closing it tells the server to exit.
    stdin: Option<std::process::ChildStdin>,
    /// Server name (`appoptics`, `outline_big`, …) to `127.0.0.1:port`.
    listening: BTreeMap<String, String>,
    cert_sha256: String,
}

impl ReplayServer {
    fn start(routes: &[RecordedRoute]) -> Res<Self> {
        use std::io::{BufRead as _, Write as _};
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_replay-server"))
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()?;
        let mut server = Self {
            stdin: child.stdin.take(),
            listening: BTreeMap::new(),
            cert_sha256: String::new(),
            child,
        };
        let stdin = server.stdin.as_mut().ok_or("no stdin")?;
        for route in routes {
            writeln!(
                stdin,
                "route {} {} {} {} {}",
                route.server,
                if route.tls { "tls" } else { "plain" },
                route.method,
                route.target,
                route.response.len()
            )?;
            stdin.write_all(&route.response)?;
        }
        writeln!(stdin, "go")?;
        stdin.flush()?;
        let stdout = server.child.stdout.take().ok_or("no stdout")?;
        for line in std::io::BufReader::new(stdout).lines() {
            let line = line?;
            let words: Vec<&str> = line.split_whitespace().collect();
            match words.as_slice() {
                ["listen", name, address] => {
                    server
                        .listening
                        .insert((*name).to_owned(), (*address).to_owned());
                }
                ["cert", sha256] => server.cert_sha256 = (*sha256).to_owned(),
                ["ready"] => return Ok(server),
                _ => return Err(format!("replay-server said {line:?}").into()),
            }
        }
        Err("replay-server exited before it was ready".into())
    }

    /// The emulators' targets, pointed at the replay server: same paths and secrets, the
    /// replay server's origin and certificate.
    fn targets(&self, emulators: &Targets) -> Targets {
        let mut t = emulators.0.clone();
        for (name, address) in &self.listening {
            if let Some(url) = t.get_mut(&format!("{name}_url")) {
                let scheme = if url.starts_with("https://") {
                    "https"
                } else {
                    "http"
                };
                *url = format!("{scheme}://{address}{}", &url[origin(url).len()..]);
            }
            if let Some(cert) = t.get_mut(&format!("{name}_cert")) {
                cert.clone_from(&self.cert_sha256);
            }
        }
        Targets(t)
    }
}

impl Drop for ReplayServer {
    fn drop(&mut self) {
        drop(self.stdin.take());
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Everything the replay table needs: the server, clients pointed at it, and each operation's
/// floor requests addressed to it.
struct Replay {
    _server: ReplayServer,
    clients: Clients,
    prepared: Vec<(Op, Prepared)>,
}

async fn start_replay(ops: &[Op], c: &Clients, t: &Targets) -> Res<Replay> {
    let mut prepared = Vec::new();
    for &op in ops {
        prepared.push((op, prepare(op, c, t).await?));
    }
    let routes = record_routes(&c.floor, &prepared).await?;
    let server = ReplayServer::start(&routes)?;
    let targets = server.targets(t);
    for (op, p) in &mut prepared {
        p.origin = origin(targets.get(&format!("{}_url", op.server()))).to_owned();
    }
    Ok(Replay {
        clients: Clients::new(&targets)?,
        prepared,
        _server: server,
    })
}

/// The CPU time of this process so far (every thread, user and system), nanosecond
/// resolution.
fn process_cpu() -> Duration {
    let now = rustix::time::clock_gettime(rustix::time::ClockId::ProcessCPUTime);
    Duration::new(
        u64::try_from(now.tv_sec).unwrap_or(0),
        u32::try_from(now.tv_nsec).unwrap_or(0),
    )
}

/// One operation against the replay server: rates and CPU time per unit, client and floor
/// alternating.
async fn measure_replay(op: Op, c: &Clients, prepared: &Prepared) -> Res<Row> {
    client_call(op, c).await?;
    floor_call(op, c, prepared).await?;
    c.queue_phases
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clear();
    // Calls against the replay server are quicker: longer rounds, so that a preemption or a
    // cold cache is a smaller part of one.
    let (calls, per_call) = if op.is_queue() {
        (1, op.per_round())
    } else {
        (op.per_round() * 4, 1)
    };
    let units = calls * per_call;
    let (mut client_rates, mut floor_rates) = (Vec::new(), Vec::new());
    let (mut client_cpu, mut floor_cpu) = (Vec::new(), Vec::new());
    for _ in 0..op.rounds() {
        let (secs, cpu) = time_rounds(calls, || client_call(op, c)).await?;
        client_rates.push(rate(units, secs));
        client_cpu.push(per_unit(cpu, units));
        let (secs, cpu) = time_rounds(calls, || floor_call(op, c, prepared)).await?;
        floor_rates.push(rate(units, secs));
        floor_cpu.push(per_unit(cpu, units));
    }
    let mut note = String::new();
    if op == Op::OutlineTransfer100k || op == Op::VumiQuery1000 {
        note = format!("body {:.2} MiB", mib(prepared.body_len));
    }
    if op.is_queue() {
        let phases = std::mem::take(
            &mut *c
                .queue_phases
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        );
        let adding: Vec<f64> = phases.iter().map(|p| p.0).collect();
        let submitting: Vec<f64> = phases.iter().map(|p| p.1).collect();
        note = format!(
            "{} chunks, floor 1 at a time; client: add {:.0} ms + submit {:.0} ms",
            prepared.requests.len(),
            report::median(&adding).unwrap_or(f64::NAN) * 1e3,
            report::median(&submitting).unwrap_or(f64::NAN) * 1e3,
        );
    }
    Ok(Row {
        name: op.to_string(),
        unit: op.unit().to_owned(),
        client_per_s: report::median(&client_rates).unwrap_or(f64::NAN),
        floor_per_s: report::median(&floor_rates).unwrap_or(f64::NAN),
        paired_ratio: report::paired_median(&client_rates, &floor_rates),
        peak_bytes: None,
        target: op.target().to_owned(),
        note,
        cpu: Some(report::Cpu {
            client: report::median(&client_cpu).unwrap_or(f64::NAN),
            floor: report::median(&floor_cpu).unwrap_or(f64::NAN),
            paired_ratio: report::paired_median(&client_cpu, &floor_cpu),
        }),
    })
}

#[allow(clippy::cast_precision_loss, reason = "a mean")]
fn per_unit(cpu: f64, units: usize) -> f64 {
    cpu / units as f64
}

/// `METRICS_HUB_BENCH_PROFILE=<OpKey>:<client|floor>:<calls>`: only that many calls of one
/// operation against the replay server, for a profiler (`valgrind --tool=callgrind
/// --toggle-collect='*profiled_calls*'`).
fn run_profile(spec: &str) -> Res<()> {
    let mut parts = spec.split(':');
    let (Some(key), Some(side), Some(calls)) = (parts.next(), parts.next(), parts.next()) else {
        return Err("METRICS_HUB_BENCH_PROFILE is <OpKey>:<client|floor>:<calls>".into());
    };
    if key == exporter::RENDER_KEY {
        let format = if parts.next() == Some("prometheus") {
            metrics_hub_cli::exposition::Format::Prometheus
        } else {
            metrics_hub_cli::exposition::Format::OpenMetrics
        };
        return exporter::profile_renders(side == "theirs", format, calls.parse()?);
    }
    let op = Op::from_key(key).ok_or("unknown operation")?;
    let calls: usize = calls.parse()?;
    let servers = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("emulators")
        .enable_all()
        .build()?;
    let (emulators, targets) = servers.block_on(start_emulators())?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let replay = runtime.block_on(async {
        let clients = Clients::new(&targets)?;
        let replay = start_replay(&[op], &clients, &targets).await?;
        client_call(op, &replay.clients).await?;
        floor_call(op, &replay.clients, &replay.prepared[0].1).await?;
        Res::Ok(replay)
    })?;
    let started = Instant::now();
    let cpu = process_cpu();
    profiled_calls(&runtime, op, &replay, side == "floor", calls)?;
    eprintln!(
        "{op} ({side}): {calls} calls in {:.3} s, {:.3} s CPU",
        started.elapsed().as_secs_f64(),
        (process_cpu() - cpu).as_secs_f64()
    );
    drop(replay);
    drop(emulators);
    Ok(())
}

/// The profiled section: the runtime runs inside it, so a profiler that collects only under
/// this function sees the connection tasks too.
#[inline(never)]
fn profiled_calls(
    runtime: &tokio::runtime::Runtime,
    op: Op,
    replay: &Replay,
    floor: bool,
    calls: usize,
) -> Res<()> {
    runtime.block_on(async {
        for _ in 0..calls {
            if floor {
                floor_call(op, &replay.clients, &replay.prepared[0].1).await?;
            } else {
                client_call(op, &replay.clients).await?;
            }
        }
        Res::Ok(())
    })
}

// ---- measuring -----------------------------------------------------------------------------

/// `n` calls: the seconds they took, and the CPU seconds this process spent meanwhile.
async fn time_rounds<F, Fut>(n: usize, mut call: F) -> Res<(f64, f64)>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Res<()>>,
{
    let cpu = process_cpu();
    let started = Instant::now();
    for _ in 0..n {
        call().await?;
    }
    Ok((
        started.elapsed().as_secs_f64(),
        (process_cpu() - cpu).as_secs_f64(),
    ))
}

async fn measure(op: Op, c: &Clients, t: &Targets, emulators: &Emulators) -> Res<Row> {
    let prepared = prepare(op, c, t).await?;
    // Warm both up: connections open, caches filled.
    client_call(op, c).await?;
    floor_call(op, c, &prepared).await?;
    c.queue_phases
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clear();
    if op == Op::Aggregator {
        return measure_aggregator(c).await;
    }
    let (calls, per_call) = if op.is_queue() {
        (1, op.per_round())
    } else {
        (op.per_round(), 1)
    };
    let mut client_rates = Vec::new();
    let mut floor_rates = Vec::new();
    for _ in 0..op.rounds() {
        if op.is_queue() {
            emulators.reset_appoptics();
        }
        let (secs, _) = time_rounds(calls, || client_call(op, c)).await?;
        client_rates.push(rate(calls * per_call, secs));
        if op.is_queue() {
            emulators.reset_appoptics();
        }
        let (secs, _) = time_rounds(calls, || floor_call(op, c, &prepared)).await?;
        floor_rates.push(rate(calls * per_call, secs));
    }
    let peak = probe_memory(op, t);
    let mut note = String::new();
    if op == Op::OutlineTransfer100k || op == Op::VumiQuery1000 {
        note = format!("body {:.2} MiB", mib(prepared.body_len));
        if let (Op::OutlineTransfer100k, Some(peak)) = (op, peak) {
            #[allow(clippy::cast_precision_loss, reason = "a ratio")]
            let times = peak as f64 / prepared.body_len.max(1) as f64;
            note.push_str(&format!(", peak = {times:.1}x body"));
        }
    }
    if op.is_queue() {
        let phases = std::mem::take(
            &mut *c
                .queue_phases
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        );
        let adding: Vec<f64> = phases.iter().map(|p| p.0).collect();
        let submitting: Vec<f64> = phases.iter().map(|p| p.1).collect();
        #[allow(clippy::cast_precision_loss, reason = "a rate")]
        let floor_secs = op.per_round() as f64 / report::median(&floor_rates).unwrap_or(f64::NAN);
        note = format!(
            "{} chunks of <= {}, floor 1 at a time; client: add {:.0} ms + submit {:.0} ms, floor {:.0} ms",
            prepared.requests.len(),
            appoptics_client::queue::DEFAULT_CHUNK_SIZE,
            report::median(&adding).unwrap_or(f64::NAN) * 1e3,
            report::median(&submitting).unwrap_or(f64::NAN) * 1e3,
            floor_secs * 1e3,
        );
    }
    Ok(Row {
        name: op.to_string(),
        unit: op.unit().to_owned(),
        client_per_s: report::median(&client_rates).unwrap_or(f64::NAN),
        floor_per_s: report::median(&floor_rates).unwrap_or(f64::NAN),
        paired_ratio: report::paired_median(&client_rates, &floor_rates),
        peak_bytes: peak,
        target: op.target().to_owned(),
        note,
        cpu: None,
    })
}

/// The aggregator against its slowest source: each source timed alone, then all together.
async fn measure_aggregator(c: &Clients) -> Res<Row> {
    let query = aggregate_query();
    let aggregator = aggregator(c);
    let mut totals = Vec::new();
    let mut slowest = Vec::new();
    for _ in 0..ROUNDS {
        let mut worst: f64 = 0.0;
        for source in sources(c) {
            let mut alone = Vec::new();
            for _ in 0..Op::Aggregator.per_round() {
                let started = Instant::now();
                std::hint::black_box(source.collect(&query).await?);
                alone.push(started.elapsed().as_secs_f64());
            }
            worst = worst.max(report::median(&alone).unwrap_or(0.0));
        }
        slowest.push(worst);
        let mut together = Vec::new();
        for _ in 0..Op::Aggregator.per_round() {
            let started = Instant::now();
            let collection = aggregator.collect(&query).await;
            together.push(started.elapsed().as_secs_f64());
            if !collection.failures.is_empty() {
                return Err(format!("aggregator failures: {:?}", collection.failures).into());
            }
        }
        totals.push(report::median(&together).unwrap_or(0.0));
    }
    let total = report::median(&totals).unwrap_or(f64::NAN);
    let worst = report::median(&slowest).unwrap_or(f64::NAN);
    Ok(Row {
        name: Op::Aggregator.to_string(),
        unit: "calls".to_owned(),
        client_per_s: 1.0 / total,
        floor_per_s: 1.0 / worst,
        paired_ratio: None,
        peak_bytes: None,
        target: Op::Aggregator.target().to_owned(),
        note: format!(
            "total {:.1} ms, slowest source alone {:.1} ms: {:+.1} ms",
            total * 1e3,
            worst * 1e3,
            (total - worst) * 1e3
        ),
        cpu: None,
    })
}

#[allow(clippy::cast_precision_loss, reason = "rates")]
fn rate(count: usize, secs: f64) -> f64 {
    count as f64 / secs
}

#[allow(clippy::cast_precision_loss, reason = "display")]
fn mib(bytes: usize) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

// ---- memory probes -------------------------------------------------------------------------

/// A `/proc/self/status` field in bytes.
fn status_bytes(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    let kib: u64 = line[field.len()..]
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kib * 1024)
}

/// Runs one client call of `op` in a fresh child process; its peak RSS growth.
fn probe_memory(op: Op, t: &Targets) -> Option<u64> {
    let exe = std::env::current_exe().ok()?;
    let output = std::process::Command::new(exe)
        .env("METRICS_HUB_BENCH_PROBE", op.key())
        // Large buffers come from mmap and go back on free, so that a buffer freed by the
        // warm-up call does not hide the measured call's own.
        .env("MALLOC_MMAP_THRESHOLD_", "131072")
        .env("MALLOC_TRIM_THRESHOLD_", "131072")
        .env("METRICS_HUB_BENCH_TARGETS", t.encode())
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&output.stdout);
    let value = text.lines().find_map(|l| l.strip_prefix("peak_bytes="))?;
    value.trim().parse().ok()
}

/// The child's side of [`probe_memory`].
fn run_probe(key: &str, targets: &str) -> Res<()> {
    let op = Op::from_key(key).ok_or("unknown operation")?;
    let t = Targets::decode(targets);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let c = Clients::new(&t)?;
        // Connected, TLS done, caches warm: what every later call costs.
        client_call(op, &c).await?;
        std::fs::write("/proc/self/clear_refs", "5")?;
        let before = status_bytes("VmRSS:").ok_or("no VmRSS")?;
        client_call(op, &c).await?;
        let peak = status_bytes("VmHWM:").ok_or("no VmHWM")?;
        println!("peak_bytes={}", peak.saturating_sub(before));
        Ok(())
    })
}

// ---- main ----------------------------------------------------------------------------------

fn main() -> Res<()> {
    if std::env::var_os(exporter::EXPORTER_ENV).is_some() {
        return exporter::run_exporter();
    }
    if let Ok(key) = std::env::var("METRICS_HUB_BENCH_PROBE") {
        let targets = std::env::var("METRICS_HUB_BENCH_TARGETS").unwrap_or_default();
        return run_probe(&key, &targets);
    }
    if let Ok(spec) = std::env::var("METRICS_HUB_BENCH_PROFILE") {
        return run_profile(&spec);
    }
    let args: Vec<String> = std::env::args().skip(1).collect();
    let json = args.iter().any(|a| a == "--json");
    let replay_only = args.iter().any(|a| a == "--replay-only");
    // `cargo bench` passes `--bench`; names select operations by their key.
    let only: Vec<String> = args
        .iter()
        .filter(|a| !a.starts_with("--"))
        .map(|a| a.to_lowercase())
        .collect();
    let selected_key =
        |key: &str| only.is_empty() || only.iter().any(|o| key.to_lowercase().contains(o));
    let selected = |op: &Op| selected_key(&op.key());

    // The emulators: a runtime of their own, one worker thread.
    let servers = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("emulators")
        .enable_all()
        .build()?;
    let (emulators, targets) = servers.block_on(start_emulators())?;

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let started = Instant::now();
    let (replay_rows, rows) = runtime.block_on(async {
        let clients = Clients::new(&targets)?;
        let replay_ops: Vec<Op> = REPLAY_OPS.into_iter().filter(selected).collect();
        let mut replay_rows = Vec::new();
        if !replay_ops.is_empty() {
            let replay = start_replay(&replay_ops, &clients, &targets).await?;
            for (op, prepared) in &replay.prepared {
                let op_started = Instant::now();
                let row = measure_replay(*op, &replay.clients, prepared).await?;
                eprintln!(
                    "{op} (replay): {:.2}x, cpu {:.2}x in {:.1} s",
                    row.ratio().unwrap_or(f64::NAN),
                    row.cpu
                        .as_ref()
                        .and_then(report::Cpu::ratio)
                        .unwrap_or(f64::NAN),
                    op_started.elapsed().as_secs_f64()
                );
                replay_rows.push(row);
            }
        }
        let mut rows = Vec::new();
        for op in OPS.into_iter().filter(selected) {
            if replay_only {
                break;
            }
            let op_started = Instant::now();
            let row = measure(op, &clients, &targets, &emulators).await?;
            eprintln!(
                "{op}: {:.2}x in {:.1} s",
                row.ratio().unwrap_or(f64::NAN),
                op_started.elapsed().as_secs_f64()
            );
            rows.push(row);
        }
        Res::Ok((replay_rows, rows))
    })?;
    let mut exporter_rows = report::Exporter::default();
    if !replay_only && selected_key(exporter::RENDER_KEY) {
        let op_started = Instant::now();
        exporter_rows.render = exporter::measure_render()?;
        exporter_rows.prepare.push(exporter::measure_prepare());
        for row in &exporter_rows.render {
            eprintln!(
                "exporter render, {}: {:.2}x prometheus-client",
                row.format,
                row.ratio().unwrap_or(f64::NAN)
            );
        }
        eprintln!(
            "exporter render in {:.1} s",
            op_started.elapsed().as_secs_f64()
        );
    }
    if !replay_only && selected_key(exporter::SCRAPE_KEY) {
        let op_started = Instant::now();
        let row = exporter::measure_scrapes(
            targets.get("outline_big_url"),
            targets.get("outline_big_cert"),
        )?;
        eprintln!(
            "exporter scrapes: median {:.1} ms in {:.1} s",
            row.median_s * 1e3,
            op_started.elapsed().as_secs_f64()
        );
        exporter_rows.scrape.push(row);
    }
    if json {
        println!(
            "{}",
            report::format_json(&replay_rows, &rows, &exporter_rows, MEMORY_NOTE)
        );
    } else {
        if !replay_rows.is_empty() {
            println!(
                "\nAgainst the replay server (the emulators' recorded answers, from another process):\n"
            );
            print!("{}", report::format_replay_table(&replay_rows));
            println!("\n{REPLAY_NOTE}");
        }
        if !rows.is_empty() {
            println!("\nAgainst the emulators:\n");
            print!("{}", report::format_table(&rows));
            println!("\n{MEMORY_NOTE}.");
        }
        if !exporter_rows.render.is_empty() {
            println!(
                "\nThe exporter's /metrics renderer against prometheus-client's text encoder, {} series:\n",
                exporter::SERIES
            );
            print!("{}", report::format_render_table(&exporter_rows.render));
            println!("\n{}.", exporter::RENDER_NOTE);
        }
        if !exporter_rows.prepare.is_empty() {
            println!(
                "\nPreparing {} series, once per collection, against filling prometheus-client's families:\n",
                exporter::SERIES
            );
            print!("{}", report::format_prepare_table(&exporter_rows.prepare));
            println!("\n{}.", exporter::PREPARE_NOTE);
        }
        if !exporter_rows.scrape.is_empty() {
            println!("\nThe exporter under concurrent scrapers:\n");
            print!("{}", report::format_scrape_table(&exporter_rows.scrape));
            println!("\n{}.", exporter::SCRAPE_NOTE);
        }
        if replay_rows.is_empty() && rows.is_empty() {
            println!("Measured in {:.0} s.", started.elapsed().as_secs_f64());
        } else {
            println!(
                "Rates are medians of up to {ROUNDS} short rounds (3 for the 1M queue), client and floor alternating against the same server; ratio: the median of each client round over the floor round next to it; measured in {:.0} s.",
                started.elapsed().as_secs_f64()
            );
        }
    }
    drop(emulators);
    Ok(())
}
