//! The exporter's `/metrics` with 100 000 cached series, two ways:
//!
//! - **Render**: [`metrics_hub_cli::exposition::render_snapshots`], the function the
//!   exporter's render loop calls, over the [`Snapshot`] the exporter keeps of the series,
//!   against the text encoders of the `prometheus-client` crate
//!   (`encoding::text::encode` for OpenMetrics, `encoding::prometheus_text::encode` for the
//!   Prometheus format 0.0.4) over a `Registry` of `Family`s holding the same samples. Both
//!   sides get the same 100 000 samples in five families shaped like the exporter's
//!   (Outline transfer per key, Outline server metrics per key, Unleash evaluations, an
//!   AppOptics counter), every one with help and a `source` label; only the encoding into a
//!   fresh `String` is timed. Before timing, the two bodies of each format are checked to
//!   hold the same lines, so the comparison is of equal work.
//! - **Prepare**: what each side does once per collection before it can render: our
//!   [`Snapshot::new`] against filling prometheus-client's families with the same series.
//! - **Scrape**: the `metrics-hub serve` exporter itself, in a child process (this binary
//!   again, running `metrics_hub_cli::run`), collecting from the Outline emulator of
//!   100 000 keys, scraped by 10 concurrent scrapers.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use metrics_hub::chrono::{TimeZone as _, Utc};
use metrics_hub::{Series, SeriesKind, Unit};
use metrics_hub_cli::exposition::{self, Format, Snapshot};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::{self, Registry};

use crate::report::{self, PrepareRow, RenderRow, ScrapeRow};
use crate::{BIG_KEYS, Res};

/// What this module measures, as operation keys for selection (`Exporter` selects both).
pub(crate) const RENDER_KEY: &str = "ExporterRender";
pub(crate) const SCRAPE_KEY: &str = "ExporterScrape";
/// Series in the render comparison.
pub(crate) const SERIES: usize = 100_000;
/// Rounds of the render comparison, each rendering one body per side and format.
const RENDER_ROUNDS: usize = 9;
/// Rounds of the prepare comparison, each preparing once per side.
const PREPARE_ROUNDS: usize = 5;
/// Concurrent scrapers, scrapes each per round, and rounds.
const SCRAPERS: usize = 10;
const SCRAPES_EACH: usize = 10;
const SCRAPE_ROUNDS: usize = 3;
/// Set by the parent: this process is the exporter.
pub(crate) const EXPORTER_ENV: &str = "METRICS_HUB_BENCH_EXPORTER";
/// What Prometheus sends: OpenMetrics first.
const PROMETHEUS_ACCEPT: &str = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";

/// What the render table measures.
pub(crate) const RENDER_NOTE: &str = "one body of the same 100 000 samples (5 families, help, 2-4 labels each; the two bodies hold the same lines) into a fresh String: metrics-hub's metrics_hub_cli::exposition::render_snapshots over the Snapshot the exporter keeps of them (no timestamps, as served; its body checked equal to exposition::render's from the series), prometheus-client's encoding::text::encode (OpenMetrics) and encoding::prometheus_text::encode over a Registry populated beforehand, each side's data made apart; 9 rounds, each side rendering two bodies in a row; times: the second body's (warm), median; ratio: prometheus-client's time over ours, round by round (>= 1x: ours is as fast or faster); cold ratio: the same for the first bodies, right after the other side's";
/// What the prepare table measures.
pub(crate) const PREPARE_NOTE: &str = "the work each side does once per collection, before any body: metrics-hub's Snapshot::new over the collected series (grouping, sanitizing, escaping the label sets, finding duplicates; made afresh each time), prometheus-client's Family::get_or_create and set (a counter: inc_by up to the total) for each of the same series, into families that hold every label set already, as after a first collection (the label values cloned out of the series to look them up, as its label types own them); 5 rounds alternating, times: median; ratio: prometheus-client's time over ours, round by round. The exporter then renders two bodies (both formats) per change, from the snapshots; a scrape renders nothing";
/// What the scrape table measures.
pub(crate) const SCRAPE_NOTE: &str = "`metrics-hub serve` in a child process holding the Outline emulator's 100 000 keys (collected once an hour, so no collection runs during the scrapes), 10 scrapers at once in this process (reqwest on 2 threads, Prometheus' Accept header: OpenMetrics), each scraping 10 times in a row, 3 rounds after a warm-up; latency of a whole body; scrapes/s over the rounds' wall time; exporter cpu from /proc/PID/stat (10 ms ticks) over all rounds";

// ---- the samples ---------------------------------------------------------------------------

const TRANSFER_KEYS: usize = 70_000;
const SERVER_KEYS: usize = 10_000;
const APPS: usize = 50;
const FLAGS: usize = 90;
const HOSTS: usize = 100;
const SERVICES: usize = 10;
const SOURCE: &str = "edge-eu";

/// A fixed pseudo-random sequence (splitmix64), so every run renders the same values.
fn mix(i: usize, seed: u64) -> u64 {
    let mut z = (i as u64)
        .wrapping_add(seed)
        .wrapping_mul(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KeyLabels {
    access_key_id: String,
    source: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EvaluationLabels {
    app_name: String,
    feature: String,
    result: String,
    source: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    host: String,
    service: String,
    source: String,
}

/// prometheus-client's float gauge.
type FloatGauge = Gauge<f64, std::sync::atomic::AtomicU64>;

const TRANSFER: &str = "outline_access_key_bytes_transferred";
const TRANSFER_HELP: &str =
    "Bytes the access key sent from the server over the rolling last 30 days";
const TUNNEL: &str = "outline_server_access_key_tunnel_time_seconds";
const TUNNEL_HELP: &str = "Tunnel time of the access key's devices in the window";
const DEVICES: &str = "outline_server_access_key_peak_device_count";
const DEVICES_HELP: &str = "Most devices using the access key at once in the window";
const EVALUATIONS: &str = "unleash_feature_evaluations";
const EVALUATIONS_HELP: &str =
    "Flag evaluations counted by Unleash SDKs in the hour starting at the point's time";
const REQUESTS: &str = "appoptics_api_requests";
const REQUESTS_HELP: &str = "Requests served, as the service reports them";

/// The same 100 000 samples as the series a collection returns, as the snapshot the
/// exporter keeps of them, and as a populated prometheus-client registry, each side's made
/// apart from the other's so that neither finds its data interleaved with the other's in
/// memory. The registry is made first, right after the series: made after the snapshot,
/// its encoder ran twice as slow (its small allocations land elsewhere), and the
/// comparison is against its best case.
pub(crate) fn workload() -> (Vec<Series>, Snapshot, Registry) {
    let series = series();
    let registry = registry(&series);
    let snapshot = Snapshot::new(&series);
    (series, snapshot, registry)
}

/// The exporter's side. prometheus-client ends every help text with a period; these help
/// texts have it already, so that both bodies say the same.
#[allow(clippy::cast_precision_loss, reason = "values below 2^53")]
fn series() -> Vec<Series> {
    let at = Utc.timestamp_millis_opt(1_700_000_000_000).unwrap();
    let mut series = Vec::with_capacity(SERIES);
    let one = |name: &str, kind, help: &str, unit: Option<Unit>, value: f64| {
        let mut s = Series::new(name, kind).with_help(format!("{help}."));
        if let Some(unit) = unit {
            s = s.with_unit(unit);
        }
        s.with_label("source", SOURCE).with_point(at, value)
    };
    // Outline transfer per key: bytes, integers up to 10^11.
    for i in 0..TRANSFER_KEYS {
        let bytes = mix(i, 1) % 100_000_000_000;
        series.push(
            one(
                TRANSFER,
                SeriesKind::Gauge,
                TRANSFER_HELP,
                Some(Unit::Bytes),
                bytes as f64,
            )
            .with_label("access_key_id", i.to_string()),
        );
    }
    // Outline server metrics per key: tunnel time with a fraction (never a whole number,
    // so that both sides write the same shortest form), device counts.
    for i in 0..SERVER_KEYS {
        let x = mix(i, 2);
        let seconds = (x % 2_592_000) as f64 + 0.5 + (x % 4) as f64 * 0.125;
        series.push(
            one(
                TUNNEL,
                SeriesKind::Gauge,
                TUNNEL_HELP,
                Some(Unit::Seconds),
                seconds,
            )
            .with_label("access_key_id", i.to_string()),
        );
    }
    for i in 0..SERVER_KEYS {
        let devices = Some(Unit::Other("devices".to_owned()));
        let count = (mix(i, 2) % 17) as f64;
        series.push(
            one(DEVICES, SeriesKind::Gauge, DEVICES_HELP, devices, count)
                .with_label("access_key_id", i.to_string()),
        );
    }
    // Unleash flag evaluations per application, flag and result.
    for app in 0..APPS {
        for flag in 0..FLAGS {
            for result in ["no", "yes"] {
                let count = mix(series.len(), 3) % 1_000_000;
                let unit = Some(Unit::Other("evaluations".to_owned()));
                series.push(
                    one(
                        EVALUATIONS,
                        SeriesKind::Gauge,
                        EVALUATIONS_HELP,
                        unit,
                        count as f64,
                    )
                    .with_label("app_name", format!("shop-{app}"))
                    .with_label("feature", format!("new-checkout-{flag}"))
                    .with_label("result", result),
                );
            }
        }
    }
    // A counter: requests per host and service.
    for host in 0..HOSTS {
        for service in 0..SERVICES {
            let total = mix(host * SERVICES + service, 4) % 10_000_000_000;
            series.push(
                one(
                    REQUESTS,
                    SeriesKind::Counter,
                    REQUESTS_HELP,
                    None,
                    total as f64,
                )
                .with_label("host", format!("web-{host}.eu"))
                .with_label("service", format!("svc-{service}")),
            );
        }
    }
    debug_assert_eq!(series.len(), SERIES);
    series
}

/// prometheus-client's side: a registry of one family per metric, holding the values of
/// `series`.
fn registry(series: &[Series]) -> Registry {
    let families = Families::default();
    families.set(series);
    families.register()
}

/// prometheus-client's families of the samples (each a handle on the same shared map, as
/// an exporter built on it keeps them to update).
#[derive(Clone, Default)]
struct Families {
    transfer: Family<KeyLabels, Gauge>,
    tunnel: Family<KeyLabels, FloatGauge>,
    devices: Family<KeyLabels, Gauge>,
    evaluations: Family<EvaluationLabels, Gauge>,
    requests: Family<RequestLabels, Counter>,
}

impl Families {
    /// Each series' value into its family's metric of its labels, made when new: what an
    /// exporter built on prometheus-client does with every collection.
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        reason = "whole numbers below 2^53"
    )]
    fn set(&self, series: &[Series]) {
        for one in series {
            let label = |name: &str| one.labels.get(name).cloned().unwrap_or_default();
            let value = one.points[0].value;
            let key = || KeyLabels {
                access_key_id: label("access_key_id"),
                source: label("source"),
            };
            match one.name.as_str() {
                TRANSFER => {
                    self.transfer.get_or_create(&key()).set(value as i64);
                }
                TUNNEL => {
                    self.tunnel.get_or_create(&key()).set(value);
                }
                DEVICES => {
                    self.devices.get_or_create(&key()).set(value as i64);
                }
                EVALUATIONS => {
                    let labels = EvaluationLabels {
                        app_name: label("app_name"),
                        feature: label("feature"),
                        result: label("result"),
                        source: label("source"),
                    };
                    self.evaluations.get_or_create(&labels).set(value as i64);
                }
                _ => {
                    let labels = RequestLabels {
                        host: label("host"),
                        service: label("service"),
                        source: label("source"),
                    };
                    // A counter only goes up: it is brought to the collected total.
                    let counter = self.requests.get_or_create(&labels);
                    let total = value as u64;
                    let now = counter.get();
                    if total > now {
                        counter.inc_by(total - now);
                    }
                }
            }
        }
    }

    fn register(self) -> Registry {
        let mut registry = Registry::default();
        registry.register(TRANSFER, TRANSFER_HELP, self.transfer);
        registry.register_with_unit(
            TUNNEL.trim_end_matches("_seconds"),
            TUNNEL_HELP,
            registry::Unit::Seconds,
            self.tunnel,
        );
        registry.register(DEVICES, DEVICES_HELP, self.devices);
        registry.register_with_unit(
            EVALUATIONS.trim_end_matches("_evaluations"),
            EVALUATIONS_HELP,
            registry::Unit::Other("evaluations".to_owned()),
            self.evaluations,
        );
        registry.register(REQUESTS, REQUESTS_HELP, self.requests);
        registry
    }
}

/// One body from our side: the exporter's render of its snapshots (without `# EOF`, which
/// the exporter appends per scrape as a static chunk).
pub(crate) fn ours(snapshot: &Snapshot, format: Format) -> String {
    exposition::render_snapshots(&[snapshot], format, false)
}

/// One body from prometheus-client.
pub(crate) fn theirs(registry: &Registry, format: Format) -> Res<String> {
    let mut out = String::new();
    if format == Format::OpenMetrics {
        prometheus_client::encoding::text::encode(&mut out, registry)?;
    } else {
        prometheus_client::encoding::prometheus_text::encode(&mut out, registry)?;
    }
    Ok(out)
}

/// The lines of a body, sorted: both sides write families in one order but the samples of
/// a family in their own (prometheus-client's is a hash map's), and the header lines of a
/// family in their own order.
fn sorted_lines(body: &str) -> Vec<&str> {
    let mut lines: Vec<&str> = body.lines().filter(|l| *l != "# EOF").collect();
    lines.sort_unstable();
    lines
}

fn format_name(format: Format) -> &'static str {
    match format {
        Format::OpenMetrics => "OpenMetrics 1.0",
        _ => "Prometheus 0.0.4",
    }
}

/// Renders 100 000 series both ways, alternating, for each format.
pub(crate) fn measure_render() -> Res<Vec<RenderRow>> {
    let (series, snapshot, registry) = workload();
    let mut rows = Vec::new();
    for format in [Format::OpenMetrics, Format::Prometheus] {
        let (our_body, their_body) = (ours(&snapshot, format), theirs(&registry, format)?);
        if our_body != exposition::render(&series, format, false) {
            return Err("the snapshot's body is not the series' body".into());
        }
        if sorted_lines(&our_body) != sorted_lines(&their_body) {
            return Err(format!(
                "the two {} bodies differ: not the same samples",
                format_name(format)
            )
            .into());
        }
        // Each side renders twice in a row: the first body finds the other side's data in
        // the caches (cold), the second its own (warm: as the exporter, which renders its
        // second format right after the first, from the snapshots it has just made).
        let (mut ours_cold, mut ours_warm) = (Vec::new(), Vec::new());
        let (mut theirs_cold, mut theirs_warm) = (Vec::new(), Vec::new());
        for _ in 0..RENDER_ROUNDS {
            for times in [&mut ours_cold, &mut ours_warm] {
                let started = Instant::now();
                let body = ours(&snapshot, format);
                times.push(started.elapsed().as_secs_f64());
                drop(std::hint::black_box(body));
            }
            for times in [&mut theirs_cold, &mut theirs_warm] {
                let started = Instant::now();
                let body = theirs(&registry, format)?;
                times.push(started.elapsed().as_secs_f64());
                drop(std::hint::black_box(body));
            }
        }
        rows.push(RenderRow {
            format: format_name(format).to_owned(),
            series: series.len(),
            ours_s: report::median(&ours_warm).unwrap_or(f64::NAN),
            ours_bytes: our_body.len(),
            theirs_s: report::median(&theirs_warm).unwrap_or(f64::NAN),
            theirs_bytes: their_body.len(),
            paired_ratio: report::paired_median(&theirs_warm, &ours_warm),
            cold_ratio: report::paired_median(&theirs_cold, &ours_cold),
            target: ">= 1x".to_owned(),
        });
    }
    Ok(rows)
}

/// Prepares the same 100 000 samples both ways, alternating: what each side does once per
/// collection before it can render. prometheus-client's families hold every label set
/// already, as they would after the first collection: each round only looks them up and
/// sets the values.
pub(crate) fn measure_prepare() -> PrepareRow {
    let series = series();
    let families = Families::default();
    families.set(&series);
    let (mut ours_times, mut theirs_times) = (Vec::new(), Vec::new());
    for _ in 0..PREPARE_ROUNDS {
        let started = Instant::now();
        let snapshot = Snapshot::new(&series);
        ours_times.push(started.elapsed().as_secs_f64());
        drop(std::hint::black_box(snapshot));
        let started = Instant::now();
        families.set(&series);
        theirs_times.push(started.elapsed().as_secs_f64());
    }
    PrepareRow {
        series: series.len(),
        ours_s: report::median(&ours_times).unwrap_or(f64::NAN),
        theirs_s: report::median(&theirs_times).unwrap_or(f64::NAN),
        paired_ratio: report::paired_median(&theirs_times, &ours_times),
    }
}

/// `n` renders of one side and format, for a profiler (`valgrind --tool=callgrind
/// --toggle-collect='*profiled_renders*'`): the samples are made before.
pub(crate) fn profile_renders(theirs_side: bool, format: Format, n: usize) -> Res<()> {
    let (series, snapshot, registry) = workload();
    let started = Instant::now();
    profiled_renders(&snapshot, &registry, theirs_side, format, n)?;
    eprintln!(
        "{n} renders of {} series in {:.3} s",
        series.len(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

#[inline(never)]
fn profiled_renders(
    snapshot: &Snapshot,
    registry: &Registry,
    theirs_side: bool,
    format: Format,
    n: usize,
) -> Res<()> {
    for _ in 0..n {
        if theirs_side {
            std::hint::black_box(theirs(registry, format)?);
        } else {
            std::hint::black_box(ours(snapshot, format));
        }
    }
    Ok(())
}

// ---- scraping the running exporter ---------------------------------------------------------

/// User plus system CPU seconds of a process, from `/proc/PID/stat` (10 ms ticks).
fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (_, rest) = stat.rsplit_once(')')?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = fields
        .get(11..13)?
        .iter()
        .map(|f| f.parse::<f64>().ok())
        .sum::<Option<f64>>()?;
    Some(ticks / 100.0)
}

/// A process's memory from `/proc/PID/status`, in bytes: `VmHWM` the most it has held,
/// `VmRSS` what it holds now.
fn memory(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| {
        l.strip_prefix(field)
            .is_some_and(|rest| rest.starts_with(':'))
    })?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// `metrics-hub serve` in a child process, stopped when dropped.
struct Exporter {
    child: Child,
    dir: PathBuf,
}

impl Drop for Exporter {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Exporter {
    /// Starts it on a config of one Outline source, collected once an hour (so that no
    /// collection happens while it is scraped), and returns it with its `/metrics` URL.
    fn start(api_url: &str, cert_sha256: &str) -> Res<(Self, String)> {
        let dir = std::env::temp_dir().join(format!("metrics-hub-bench-{}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        let config = dir.join("hub.toml");
        std::fs::write(
            &config,
            format!(
                "[sources.big]\nbackend = \"outline\"\napi_url = \"{api_url}\"\ncert_sha256 = \"{cert_sha256}\"\ninterval = \"1h\"\ntimeout = \"60s\"\n"
            ),
        )?;
        let log = dir.join("serve.stderr");
        let child = Command::new(std::env::current_exe()?)
            .env(EXPORTER_ENV, "1")
            .arg("--config")
            .arg(&config)
            .args(["--log-level", "info", "serve", "--listen", "127.0.0.1:0"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log)?)
            .spawn()?;
        let mut exporter = Self { child, dir };
        let address = exporter.address(&log)?;
        Ok((exporter, format!("http://{address}/metrics")))
    }

    /// The address it says it serves on.
    fn address(&mut self, log: &Path) -> Res<String> {
        let started = Instant::now();
        loop {
            let text = std::fs::read_to_string(log).unwrap_or_default();
            if let Some(address) = text
                .lines()
                .filter(|l| l.contains("serving /metrics"))
                .find_map(|l| l.split("address=").nth(1))
                .and_then(|rest| rest.split_whitespace().next())
            {
                return Ok(address.to_owned());
            }
            if self.child.try_wait()?.is_some() || started.elapsed() > Duration::from_secs(30) {
                return Err(format!("the exporter did not start:\n{text}").into());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

async fn scrape(client: &reqwest::Client, url: &str) -> Res<bytes::Bytes> {
    let response = client
        .get(url)
        .header("accept", PROMETHEUS_ACCEPT)
        .send()
        .await?;
    if !response.status().is_success() {
        return Err(format!("/metrics answered {}", response.status()).into());
    }
    Ok(response.bytes().await?)
}

/// One round: `SCRAPERS` tasks, each scraping `SCRAPES_EACH` times in a row; the latency of
/// every scrape and the round's wall time.
async fn scrape_round(client: &reqwest::Client, url: &str, min_len: usize) -> Res<(Vec<f64>, f64)> {
    let started = Instant::now();
    let mut scrapers = Vec::new();
    for _ in 0..SCRAPERS {
        let (client, url) = (client.clone(), url.to_owned());
        scrapers.push(tokio::spawn(async move {
            let mut latencies = Vec::with_capacity(SCRAPES_EACH);
            for _ in 0..SCRAPES_EACH {
                let one = Instant::now();
                let body = scrape(&client, &url).await?;
                latencies.push(one.elapsed().as_secs_f64());
                if body.len() < min_len {
                    return Err::<_, crate::BoxError>("a scrape got a short body".into());
                }
            }
            Ok(latencies)
        }));
    }
    let mut latencies = Vec::new();
    for scraper in scrapers {
        latencies.extend(scraper.await??);
    }
    Ok((latencies, started.elapsed().as_secs_f64()))
}

/// Starts the exporter on the Outline emulator of 100 000 keys, waits for its first full
/// body, and scrapes it with 10 concurrent scrapers.
pub(crate) fn measure_scrapes(api_url: &str, cert_sha256: &str) -> Res<ScrapeRow> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("scrapers")
        .enable_all()
        .build()?;
    let started = Instant::now();
    let (exporter, url) = Exporter::start(api_url, cert_sha256)?;
    let pid = exporter.child.id();
    let client = reqwest::Client::new();
    let row = runtime.block_on(async {
        let body = loop {
            let body = scrape(&client, &url).await?;
            let text = std::str::from_utf8(&body)?;
            if text
                .matches("outline_access_key_bytes_transferred{")
                .count()
                == BIG_KEYS
            {
                break body;
            }
            if started.elapsed() > Duration::from_secs(120) {
                return Err::<_, crate::BoxError>(
                    "the exporter did not serve 100 000 series within 120 s".into(),
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        let ready = started.elapsed().as_secs_f64();
        // Warm: every scraper's connection open.
        scrape_round(&client, &url, body.len() / 2).await?;
        let cpu_before = cpu_seconds(pid);
        let (mut latencies, mut walls) = (Vec::new(), Vec::new());
        for _ in 0..SCRAPE_ROUNDS {
            let (round, wall) = scrape_round(&client, &url, body.len() / 2).await?;
            latencies.extend(round);
            walls.push(wall);
        }
        let cpu = cpu_before
            .zip(cpu_seconds(pid))
            .map(|(before, after)| after - before);
        let scrapes = latencies.len();
        let wall: f64 = walls.iter().sum();
        #[allow(clippy::cast_precision_loss, reason = "a few hundred scrapes")]
        let per_scrape = cpu.map(|cpu| cpu / scrapes as f64);
        Ok(ScrapeRow {
            scrapers: SCRAPERS,
            scrapes,
            series: BIG_KEYS,
            body_bytes: body.len(),
            median_s: report::median(&latencies).unwrap_or(f64::NAN),
            p99_s: report::percentile(&latencies, 0.99).unwrap_or(f64::NAN),
            max_s: latencies.iter().copied().fold(f64::NAN, f64::max),
            per_s: rate(scrapes, wall),
            cpu_per_scrape_s: per_scrape,
            note: format!(
                "first full body {ready:.1} s after start; exporter memory: peak {}, after the scrapes {}",
                report::human_bytes(memory(pid, "VmHWM")),
                report::human_bytes(memory(pid, "VmRSS"))
            ),
        })
    })?;
    drop(exporter);
    Ok(row)
}

#[allow(clippy::cast_precision_loss, reason = "a rate")]
fn rate(count: usize, secs: f64) -> f64 {
    count as f64 / secs
}

/// The child's side: this process is `metrics-hub` with the arguments it was given.
pub(crate) fn run_exporter() -> Res<()> {
    let code = metrics_hub_cli::run();
    if code == std::process::ExitCode::SUCCESS {
        Ok(())
    } else {
        Err("metrics-hub serve failed".into())
    }
}
