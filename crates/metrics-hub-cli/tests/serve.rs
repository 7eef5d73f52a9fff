//! `metrics-hub serve` as Prometheus sees it: on the built-in emulators with no config,
//! both text formats (checked by promtool), the status page, health, auth and shutdown.

mod common;

use std::time::Duration;

use common::{
    Running, TempDir, command, free_port, get, promtool_check, promtool_read_openmetrics, sample,
    served_address, wait_for,
};

const BACKENDS: [&str; 5] = ["outline", "appoptics", "unleash", "coopr", "vumi"];
const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
const PROMETHEUS_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// promtool accepts the body, its lint included: exit status 0.
fn assert_promtool_accepts(body: &str, format: &str) {
    if !common::prometheus_available("promtool check metrics") {
        return;
    }
    let (code, output) = promtool_check(body);
    assert!(
        code == 0,
        "promtool refused the {format} body ({code}):\n{output}\n{body}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_no_config_it_serves_all_five_emulated_backends_in_both_formats() {
    let dir = TempDir::new("serve-demo");
    let mut serve = command(dir.path());
    serve.args(["serve", "--listen", "127.0.0.1:0"]);
    let mut server = Running::spawn(serve, "serve", dir.path());
    let base = format!(
        "http://{}",
        served_address(dir.path(), "serve.stderr", &mut server)
    );

    let text = wait_for(Duration::from_secs(30), "five sources up", || async {
        let (_, _, body) = get(&format!("{base}/metrics"), &[]).await?;
        BACKENDS
            .iter()
            .all(|b| {
                sample(
                    &body,
                    "metrics_hub_source_up",
                    &[("source", b), ("backend", b)],
                ) == Some(1.0)
            })
            .then_some(body)
    })
    .await;
    let (status, content_type, body) = get(&format!("{base}/metrics"), &[]).await.unwrap();
    assert_eq!((status, content_type.as_str()), (200, PROMETHEUS_TEXT));
    assert!(!body.contains("# EOF"));
    assert_eq!(
        sample(
            &text,
            "outline_access_key_bytes_transferred",
            &[("access_key_id", "0"), ("source", "outline")]
        ),
        Some(2_150_000_000.0)
    );
    assert_eq!(
        sample(
            &text,
            "coopr_queue_tasks",
            &[("tenant", "acme"), ("state", "queued")]
        ),
        Some(26.0)
    );
    for backend in BACKENDS {
        assert!(
            text.lines().any(|l| l.starts_with(&format!("{backend}_"))),
            "no {backend} series in\n{text}"
        );
        assert!(
            sample(
                &text,
                "metrics_hub_collect_duration_seconds",
                &[("source", backend)]
            )
            .is_some()
        );
        assert!(
            sample(
                &text,
                "metrics_hub_source_last_success_timestamp_seconds",
                &[("source", backend)]
            )
            .is_some_and(|t| t > 1.7e9)
        );
    }
    assert_promtool_accepts(&body, "Prometheus text");

    let accept = [(
        "accept",
        "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5,*/*;q=0.1",
    )];
    let (status, content_type, openmetrics) =
        get(&format!("{base}/metrics"), &accept).await.unwrap();
    assert_eq!((status, content_type.as_str()), (200, OPENMETRICS));
    assert!(openmetrics.ends_with("# EOF\n"), "{openmetrics}");
    assert_eq!(openmetrics.matches("# EOF").count(), 1);
    assert!(openmetrics.contains("# UNIT metrics_hub_collect_duration_seconds seconds\n"));
    for backend in BACKENDS {
        assert_eq!(
            sample(
                &openmetrics,
                "metrics_hub_source_up",
                &[("source", backend)]
            ),
            Some(1.0)
        );
    }
    assert_promtool_accepts(&openmetrics, "OpenMetrics");

    let (status, content_type, page) = get(&format!("{base}/"), &[]).await.unwrap();
    assert_eq!(status, 200);
    assert!(content_type.starts_with("text/html"), "{content_type}");
    for backend in BACKENDS {
        let row = page
            .lines()
            .find(|l| l.starts_with(&format!("<tr><td>{backend}</td><td>{backend}</td><td>")))
            .unwrap_or_else(|| panic!("no row for {backend} in {page}"));
        assert!(row.contains("<td class=\"up\">up</td>"), "{row}");
    }
    let (status, _, health) = get(&format!("{base}/healthz"), &[]).await.unwrap();
    assert_eq!((status, health.as_str()), (200, "ok\n"));

    let stderr = common::read(dir.path(), "serve.stderr");
    assert!(stderr.contains("using the built-in emulators"), "{stderr}");
    let status = server
        .terminate(Duration::from_secs(10))
        .expect("serve did not stop on SIGTERM");
    assert!(status.success(), "{status:?}");
    assert!(common::read(dir.path(), "serve.stderr").contains("SIGTERM received"));
}

/// The time a sample line carries: its third field, when it has one (label values here
/// hold no spaces).
fn sample_time(body: &str, prefix: &str) -> Option<Option<f64>> {
    let line = body.lines().find(|l| l.starts_with(prefix))?;
    let fields: Vec<&str> = line.rsplitn(3, ' ').collect();
    Some(match fields[..] {
        [time, _value, series] if series.contains('{') || !series.contains(' ') => {
            time.parse().ok()
        }
        _ => None,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_timestamps_samples_carry_the_time_of_their_point() {
    let dir = TempDir::new("serve-timestamps");
    let mut serve = command(dir.path());
    serve.args(["serve", "--listen", "127.0.0.1:0", "--timestamps"]);
    let mut server = Running::spawn(serve, "serve", dir.path());
    let base = format!(
        "http://{}",
        served_address(dir.path(), "serve.stderr", &mut server)
    );
    let vumi = "vumi_stores_default_active_users{";
    let text = wait_for(Duration::from_secs(30), "the Vumi series", || async {
        let (_, _, body) = get(&format!("{base}/metrics"), &[]).await?;
        body.contains(vumi).then_some(body)
    })
    .await;
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
        * 1e3;
    // A history API's newest complete bucket: its start, in milliseconds, within the day.
    let millis = sample_time(&text, vumi).flatten().expect(&text);
    assert!(
        millis < now_ms && millis > now_ms - 86_400e3 && millis.fract() == 0.0,
        "{millis}"
    );
    let outline = "outline_access_key_bytes_transferred{";
    assert!(sample_time(&text, outline).flatten().is_some(), "{text}");
    // The self-metrics are about now: the scraper stamps them.
    assert_eq!(
        sample_time(&text, "metrics_hub_source_up{"),
        Some(None),
        "{text}"
    );
    assert_promtool_accepts(&text, "Prometheus text with timestamps");

    let accept = [("accept", "application/openmetrics-text")];
    let (_, _, openmetrics) = get(&format!("{base}/metrics"), &accept).await.unwrap();
    let seconds = sample_time(&openmetrics, vumi)
        .flatten()
        .expect(&openmetrics);
    assert_eq!(seconds * 1e3, millis, "OpenMetrics times are in seconds");
    if common::prometheus_available("promtool tsdb create-blocks-from openmetrics") {
        // The backfiller takes only samples with a time: the self-metrics have none.
        let data: String = openmetrics
            .split_inclusive('\n')
            .filter(|line| !line.contains("metrics_hub_"))
            .collect();
        let (code, output) = promtool_read_openmetrics(dir.path(), &data);
        assert_eq!(code, 0, "{output}\n{data}");
    }
    server
        .terminate(Duration::from_secs(10))
        .expect("serve did not stop on SIGTERM");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scrapes_need_the_configured_credentials_and_a_failing_source_is_down() {
    let dir = TempDir::new("serve-auth");
    let closed = free_port();
    let config = dir.write(
        "hub.toml",
        &format!(
            "[server]\nlisten = \"127.0.0.1:0\"\n[server.auth]\nbearer_token = {{ file = \"token\" }}\n\n\
             [sources.queue]\nbackend = \"coopr\"\nurl = \"http://127.0.0.1:{closed}\"\nuser_id = \"admin\"\ntenant = \"superadmin\"\ninterval = \"1s\"\n"
        ),
    );
    dir.write("token", "s3cret-scrape-token\n");
    let mut serve = command(dir.path());
    serve.arg("--config").arg(&config).arg("serve");
    let mut server = Running::spawn(serve, "serve", dir.path());
    let base = format!(
        "http://{}",
        served_address(dir.path(), "serve.stderr", &mut server)
    );

    let metrics = format!("{base}/metrics");
    let (status, _, _) =
        wait_for(Duration::from_secs(20), "the server", || get(&metrics, &[])).await;
    assert_eq!(status, 401);
    let (status, _, _) = get(
        &format!("{base}/metrics"),
        &[("authorization", "Bearer wrong")],
    )
    .await
    .unwrap();
    assert_eq!(status, 401);
    let (status, _, _) = get(&format!("{base}/"), &[]).await.unwrap();
    assert_eq!(
        status, 401,
        "the status page shows errors: it is protected too"
    );
    let (status, _, _) = get(&format!("{base}/healthz"), &[]).await.unwrap();
    assert_eq!(status, 200);

    let authorized = [("authorization", "Bearer s3cret-scrape-token")];
    let body = wait_for(Duration::from_secs(20), "a failed collection", || async {
        let (status, _, body) = get(&format!("{base}/metrics"), &authorized).await?;
        assert_eq!(status, 200);
        sample(
            &body,
            "metrics_hub_collect_errors_total",
            &[("source", "queue"), ("kind", "transport")],
        )
        .is_some_and(|n| n >= 2.0)
        .then_some(body)
    })
    .await;
    assert_eq!(
        sample(
            &body,
            "metrics_hub_source_up",
            &[("source", "queue"), ("backend", "coopr")]
        ),
        Some(0.0)
    );
    assert_eq!(
        sample(
            &body,
            "metrics_hub_source_last_success_timestamp_seconds",
            &[("source", "queue")]
        ),
        Some(0.0)
    );
    assert!(
        body.contains("# TYPE metrics_hub_collect_errors_total counter\n"),
        "{body}"
    );
    let (_, _, page) = get(&format!("{base}/"), &authorized).await.unwrap();
    assert!(
        page.contains("<td class=\"down\">down</td><td>never</td>"),
        "{page}"
    );
    assert!(page.contains("could not connect"), "{page}");
}
