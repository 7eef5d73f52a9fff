//! A real Prometheus scraping `metrics-hub serve` on the five emulators: every source up, a
//! seeded value of each backend arrives with its type, and when one emulator stops its
//! source goes down while the other four keep arriving.
//!
//! Needs `prometheus` (`scripts/prometheus.sh install`): under `CI=true` a missing one fails
//! the test, elsewhere it is skipped with the reason printed. Bounded to about 30 s.

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::{Running, TempDir, command, free_port, get, served_address, wait_for};
use metrics_hub_cli::demo::{self, Demo};

/// The demo sources as a config file, their credentials from the variables `emulate`
/// would print.
const CONFIG: &str = r#"
[defaults]
interval = "1s"
timeout = "2s"

[sources.outline]
backend = "outline"
api_url = "${OUTLINE_API_URL}"
cert_sha256 = "${OUTLINE_CERT_SHA256}"

[sources.appoptics]
backend = "appoptics"
token = "${APPOPTICS_TOKEN}"
base_url = "${APPOPTICS_BASE_URL}"
metrics = ["checkout.requests", "checkout.latency"]

[sources.unleash]
backend = "unleash"
url = "${UNLEASH_URL}"
admin_token = "${UNLEASH_ADMIN_TOKEN}"
features = ["new-checkout", "dark-mode"]

[sources.coopr]
backend = "coopr"
url = "${COOPR_URL}"
user_id = "${COOPR_USER_ID}"
tenant = "${COOPR_TENANT_ID}"

[sources.vumi]
backend = "vumi"
url = "${VUMI_URL}"
token = "${VUMI_TOKEN}"
metrics = ["stores.default.active_users.last"]
"#;

/// The results of an instant query: labels and value of each sample.
async fn query(prometheus: &str, promql: &str) -> Option<Vec<(BTreeMap<String, String>, f64)>> {
    let response = reqwest::Client::new()
        .get(format!("{prometheus}/api/v1/query"))
        .query(&[("query", promql)])
        .timeout(Duration::from_secs(5))
        .send()
        .await
        .ok()?;
    let document: serde_json::Value = serde_json::from_str(&response.text().await.ok()?).ok()?;
    let results = document["data"]["result"].as_array()?;
    Some(
        results
            .iter()
            .map(|r| {
                let labels = r["metric"]
                    .as_object()
                    .map(|m| {
                        m.iter()
                            .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
                            .collect()
                    })
                    .unwrap_or_default();
                let value = r["value"][1]
                    .as_str()
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(f64::NAN);
                (labels, value)
            })
            .collect(),
    )
}

/// `metrics_hub_source_up` per source.
async fn up(prometheus: &str) -> BTreeMap<String, f64> {
    query(prometheus, "metrics_hub_source_up")
        .await
        .unwrap_or_default()
        .into_iter()
        .map(|(labels, value)| (labels.get("source").cloned().unwrap_or_default(), value))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_scrapes_every_backend_and_sees_one_go_down() {
    if !common::prometheus_available("prometheus_e2e") {
        return;
    }
    let started = Instant::now();
    let mut demo = Demo::start_emulated().await.unwrap();
    let environment = demo.emulators.environment(|_| None);
    let dir = TempDir::new("prometheus-e2e");
    let config = dir.write("hub.toml", CONFIG);

    let mut serve = command(dir.path());
    serve
        .arg("--config")
        .arg(&config)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .envs(environment.iter().map(|(n, v)| (*n, v.as_str())));
    let mut exporter = Running::spawn(serve, "serve", dir.path());
    let exporter_address = served_address(dir.path(), "serve.stderr", &mut exporter);

    let prometheus_port = free_port();
    let prometheus_config = dir.write(
        "prometheus.yml",
        &format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n\
             scrape_configs:\n  - job_name: metrics-hub\n    static_configs:\n      - targets: ['{exporter_address}']\n"
        ),
    );
    let mut run_prometheus = std::process::Command::new("bash");
    run_prometheus
        .arg(common::prometheus_script())
        .arg("prometheus")
        .arg(format!("--config.file={}", prometheus_config.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.path().join("tsdb").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{prometheus_port}"))
        .current_dir(dir.path());
    let mut prometheus_process = Running::spawn(run_prometheus, "prometheus", dir.path());
    let prometheus = format!("http://127.0.0.1:{prometheus_port}");
    let log = |dir: &std::path::Path| {
        format!(
            "serve:\n{}\nprometheus:\n{}",
            common::read(dir, "serve.stderr"),
            common::read(dir, "prometheus.stderr")
        )
    };

    // Every source up, as Prometheus stored it from its own scrapes.
    let sources = ["outline", "appoptics", "unleash", "coopr", "vumi"];
    let deadline = Duration::from_secs(20);
    let waited = tokio::time::timeout(
        deadline,
        wait_for(deadline, "Prometheus to see five sources up", || async {
            let up = up(&prometheus).await;
            (up.len() == 5 && up.values().all(|v| *v == 1.0)).then_some(())
        }),
    )
    .await;
    assert!(
        waited.is_ok(),
        "no five sources up in Prometheus (prometheus exited: {:?})\n{}",
        prometheus_process.exited(),
        log(dir.path())
    );
    let scrape_up = query(&prometheus, "up{job=\"metrics-hub\"}").await.unwrap();
    assert_eq!(scrape_up.len(), 1);
    assert_eq!(scrape_up[0].1, 1.0, "Prometheus parsed every scrape");

    // A seeded value of each backend, as the emulators were seeded. History is exposed as its
    // latest complete hour: the previous hour, or the seeding hour once it has ended.
    let appoptics: Vec<f64> = (0..2).map(|h| demo::appoptics_requests(1.0, h)).collect();
    let expected: [(&str, &str, Vec<f64>); 5] = [
        (
            "outline_access_key_bytes_transferred",
            "access_key_id=\"0\"",
            vec![2_150_000_000.0],
        ),
        ("appoptics_checkout_requests", "host=\"web-1\"", appoptics),
        (
            "unleash_feature_evaluations",
            "feature=\"new-checkout\",result=\"yes\"",
            vec![1600.0],
        ),
        (
            "coopr_queue_tasks",
            "tenant=\"acme\",state=\"queued\"",
            vec![26.0],
        ),
        (
            "vumi_stores_default_active_users",
            "aggregator=\"last\"",
            vec![187.0],
        ),
    ];
    for ((name, labels, values), source) in expected.iter().zip(sources) {
        let selector = format!(
            "{name}{{source=\"{source}\",job=\"metrics-hub\"{}{labels}}}",
            if labels.is_empty() { "" } else { "," }
        );
        let results = query(&prometheus, &selector).await.unwrap();
        assert_eq!(results.len(), 1, "{selector}: {results:?}");
        assert!(
            values.contains(&results[0].1),
            "{selector} = {}, expected one of {values:?}",
            results[0].1
        );
        let metadata = get(&format!("{prometheus}/api/v1/metadata?metric={name}"), &[])
            .await
            .unwrap()
            .2;
        let metadata: serde_json::Value = serde_json::from_str(&metadata).unwrap();
        assert_eq!(
            metadata["data"][name][0]["type"], "gauge",
            "{name}: {metadata}"
        );
    }

    // One emulator down: its source goes to 0, the other four keep arriving.
    demo.emulators.server_mut("vumi").unwrap().stop();
    let stopped_at = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    let fresh = wait_for(
        Duration::from_secs(15),
        "vumi down and the others fresh",
        || async {
            let up = up(&prometheus).await;
            if up.get("vumi") != Some(&0.0) || sources[..4].iter().any(|s| up.get(*s) != Some(&1.0))
            {
                return None;
            }
            // The newest sample of each other backend's seeded series was scraped after the stop.
            let mut fresh = Vec::new();
            for (name, _, _) in &expected[..4] {
                let times = query(&prometheus, &format!("max(timestamp({name}))")).await?;
                let newest = times.first()?.1;
                if newest <= stopped_at + 1.0 {
                    return None;
                }
                fresh.push(newest);
            }
            Some(fresh)
        },
    )
    .await;
    assert_eq!(fresh.len(), 4);
    let errors = query(
        &prometheus,
        "metrics_hub_collect_errors_total{source=\"vumi\"}",
    )
    .await
    .unwrap();
    assert!(
        errors
            .iter()
            .any(
                |(labels, value)| labels.get("kind").map(String::as_str) == Some("transport")
                    && *value >= 1.0
            ),
        "{errors:?}"
    );
    let vumi_now = query(&prometheus, "vumi_stores_default_active_users")
        .await
        .unwrap();
    assert!(
        vumi_now.is_empty() || started.elapsed() < Duration::from_secs(6),
        "a down source's series go stale: {vumi_now:?}"
    );
    println!("prometheus_e2e: {:.1} s", started.elapsed().as_secs_f64());
}
