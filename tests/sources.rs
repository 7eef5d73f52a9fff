//! Two servers of one backend through one aggregator: two Outline emulators whose keys have
//! the same ids. Their series must be told apart by the source label, and the text formats
//! must pass Prometheus' own parsers (`promtool`, from `scripts/prometheus.sh install`;
//! skipped with a printed reason when it is missing, a failure under `CI=true`).

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

use metrics_emulators::outline::OutlineEmulator;
use metrics_hub::core::render;
use metrics_hub::outline::OutlineClient;
use metrics_hub::{Aggregator, Collection, Query, Series};

/// An Outline emulator with three keys, `0`, `1` and `2`, that moved these many bytes.
async fn outline_server(bytes: [u64; 3]) -> (OutlineEmulator, OutlineClient) {
    let emulator = OutlineEmulator::start().await.unwrap();
    for (id, bytes) in emulator.add_access_keys(3).iter().zip(bytes) {
        emulator.set_transfer(id, bytes);
    }
    let client = OutlineClient::builder()
        .with_install_output(emulator.access_json())
        .build()
        .unwrap();
    (emulator, client)
}

fn promtool() -> Option<PathBuf> {
    let dir =
        std::env::var_os("PROMETHEUS_BIN_DIR").map_or_else(|| "/usr/bin".into(), PathBuf::from);
    let path = dir.join("promtool");
    if Command::new(&path)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
    {
        return Some(path);
    }
    let reason = format!(
        "{} is missing; install it with `scripts/prometheus.sh install`",
        path.display()
    );
    let in_ci = std::env::var("CI").is_ok_and(|v| v == "true" || v == "1");
    assert!(!in_ci, "CI is set and {reason}");
    eprintln!("SKIPPED the promtool checks: {reason}");
    None
}

/// `promtool check metrics` on Prometheus text: exit 0, or 3 for lint hints only.
fn promtool_check_metrics(promtool: &Path, text: &str) {
    let mut child = Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        matches!(output.status.code(), Some(0 | 3)),
        "promtool check metrics: {}\n{text}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// The OpenMetrics text through Prometheus' OpenMetrics parser (the backfiller's).
fn promtool_read_openmetrics(promtool: &Path, text: &str) {
    // One directory per call: the tests run in parallel in one process.
    static CALL: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "metrics-hub-sources-{}-{}",
        std::process::id(),
        CALL.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let input = dir.join("input.om");
    std::fs::write(&input, text).unwrap();
    let output = Command::new(promtool)
        .args(["tsdb", "create-blocks-from", "openmetrics", "--quiet"])
        .arg(&input)
        .arg(dir.join("blocks"))
        .output()
        .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        output.status.success(),
        "promtool tsdb create-blocks-from openmetrics: {}\n{text}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// The transfer series by (source label, access key id).
fn transfer_by_source(collection: &Collection) -> BTreeMap<(String, String), f64> {
    collection
        .series
        .iter()
        .filter(|s| s.name == "outline_access_key_bytes_transferred")
        .map(|s| {
            let label = |name: &str| s.labels.get(name).cloned().unwrap_or_default();
            (
                (label("source"), label("access_key_id")),
                s.last_value().unwrap(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_outline_servers_are_told_apart_in_every_format() {
    let (_eu, eu_client) = outline_server([1_000, 2_000, 3_000]).await;
    let (_us, us_client) = outline_server([10, 20, 30]).await;
    let collection = Aggregator::default()
        .with_named_source("outline-eu", eu_client)
        .with_named_source("outline-us", us_client)
        .collect(&Query::new())
        .await;
    assert!(collection.failures.is_empty(), "{:?}", collection.failures);

    let expected: BTreeMap<(String, String), f64> = [
        ("outline-eu", "0", 1_000.0),
        ("outline-eu", "1", 2_000.0),
        ("outline-eu", "2", 3_000.0),
        ("outline-us", "0", 10.0),
        ("outline-us", "1", 20.0),
        ("outline-us", "2", 30.0),
    ]
    .into_iter()
    .map(|(source, id, value)| ((source.to_owned(), id.to_owned()), value))
    .collect();
    assert_eq!(transfer_by_source(&collection), expected);

    let openmetrics = render::openmetrics(&collection.series);
    let prometheus = render::prometheus(&collection.series);
    for text in [&openmetrics, &prometheus] {
        for ((source, id), value) in &expected {
            let sample = format!(
                "outline_access_key_bytes_transferred{{access_key_id=\"{id}\",source=\"{source}\"}} {value} "
            );
            assert!(text.contains(&sample), "{sample} missing from\n{text}");
        }
    }
    let table = render::table(&collection);
    assert!(
        table.contains("access_key_id=0,source=outline-us"),
        "{table}"
    );
    let json = render::json(&collection);
    assert!(json.contains(r#""source":"outline-eu""#), "{json}");

    if let Some(promtool) = promtool() {
        promtool_check_metrics(&promtool, &prometheus);
        promtool_read_openmetrics(&promtool, &openmetrics);
    }
}

/// Without the label the two servers' series are the same series: the renderers keep the
/// first server's and the text stays valid, which is why named sources are labelled.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_source_label_only_the_first_servers_series_are_written() {
    let (_eu, eu_client) = outline_server([1_000, 2_000, 3_000]).await;
    let (_us, us_client) = outline_server([10, 20, 30]).await;
    let collection = Aggregator::default()
        .without_source_label()
        .with_named_source("outline-eu", eu_client)
        .with_named_source("outline-us", us_client)
        .collect(&Query::new())
        .await;
    assert_eq!(collection.series.len(), 6);
    let openmetrics = render::openmetrics(&collection.series);
    let samples: Vec<&str> = openmetrics
        .lines()
        .filter(|l| l.starts_with("outline_access_key_bytes_transferred{"))
        .collect();
    assert_eq!(samples.len(), 3, "{openmetrics}");
    assert!(samples.iter().all(|l| !l.contains(" 10 ")), "{openmetrics}");
    assert!(
        collection
            .series
            .iter()
            .all(|s: &Series| !s.labels.contains_key("source"))
    );
    if let Some(promtool) = promtool() {
        promtool_read_openmetrics(&promtool, &openmetrics);
        promtool_check_metrics(&promtool, &render::prometheus(&collection.series));
    }
}
