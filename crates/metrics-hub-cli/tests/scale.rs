//! What many scrapers of a large exporter cost: 100 000 series from one Outline server, and
//! ten scrapers at once. Run by hand (it measures, and asserts only against hangs):
//!
//! ```sh
//! cargo test --release -p metrics-hub-cli --test scale -- --ignored --nocapture
//! ```

mod common;

use std::time::{Duration, Instant};

use common::{Running, TempDir, command, get, served_address, wait_for};
use metrics_emulators::outline::OutlineEmulator;

const KEYS: usize = 100_000;
const SCRAPERS: usize = 10;
const SCRAPES_EACH: usize = 10;

/// User plus system CPU time of a process, from `/proc`.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let ticks: f64 = fields
        .get(11..13)
        .map(|f| f.iter().filter_map(|t| t.parse::<f64>().ok()).sum())
        .unwrap_or_default();
    ticks / 100.0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement; run by hand with --release"]
async fn ten_scrapers_of_a_hundred_thousand_series() {
    let emulator = OutlineEmulator::start().await.unwrap();
    let ids = emulator.add_access_keys(KEYS);
    emulator.set_transfers(
        ids.iter()
            .enumerate()
            .map(|(i, id)| (id.clone(), 1_000 + i as u64)),
    );
    let dir = TempDir::new("scale");
    let config = dir.write(
        "hub.toml",
        "[sources.big]\nbackend = \"outline\"\napi_url = \"${OUTLINE_API_URL}\"\ncert_sha256 = \"${OUTLINE_CERT_SHA256}\"\ninterval = \"5s\"\ntimeout = \"30s\"\n",
    );
    let mut serve = command(dir.path());
    serve
        .arg("--config")
        .arg(&config)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env("OUTLINE_API_URL", emulator.api_url())
        .env("OUTLINE_CERT_SHA256", emulator.cert_sha256());
    let mut server = Running::spawn(serve, "serve", dir.path());
    let pid = server.child.as_ref().unwrap().id();
    let metrics = format!(
        "http://{}/metrics",
        served_address(dir.path(), "serve.stderr", &mut server)
    );

    let started = Instant::now();
    let body = wait_for(Duration::from_secs(120), "100 000 series", || async {
        let (_, _, body) = get(&metrics, &[]).await?;
        (body
            .matches("outline_access_key_bytes_transferred{")
            .count()
            == KEYS)
            .then_some(body)
    })
    .await;
    println!(
        "first full body after {:.2} s: {:.1} MB",
        started.elapsed().as_secs_f64(),
        body.len() as f64 / 1e6
    );

    let cpu_before = cpu_seconds(pid);
    let started = Instant::now();
    let client = reqwest::Client::new();
    let mut scrapers = Vec::new();
    for _ in 0..SCRAPERS {
        let client = client.clone();
        let metrics = metrics.clone();
        scrapers.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            for _ in 0..SCRAPES_EACH {
                let one = Instant::now();
                let body = client
                    .get(&metrics)
                    .send()
                    .await
                    .unwrap()
                    .bytes()
                    .await
                    .unwrap();
                assert!(body.len() > 1_000_000);
                latencies.push(one.elapsed().as_secs_f64());
            }
            latencies
        }));
    }
    let mut latencies = Vec::new();
    for scraper in scrapers {
        latencies.extend(scraper.await.unwrap());
    }
    let wall = started.elapsed().as_secs_f64();
    let cpu = cpu_seconds(pid) - cpu_before;
    latencies.sort_by(f64::total_cmp);
    let scrapes = latencies.len();
    println!(
        "{scrapes} scrapes by {SCRAPERS} concurrent scrapers in {wall:.2} s: exporter CPU {cpu:.2} s ({:.1} ms per scrape, the collections every 5 s included); latency median {:.0} ms, max {:.0} ms",
        cpu * 1000.0 / scrapes as f64,
        latencies[scrapes / 2] * 1000.0,
        latencies[scrapes - 1] * 1000.0
    );
    let idle_before = cpu_seconds(pid);
    tokio::time::sleep(Duration::from_secs(10)).await;
    println!(
        "idle 10 s (two collections of 100 000 unchanged series, no render): exporter CPU {:.2} s",
        cpu_seconds(pid) - idle_before
    );
}
