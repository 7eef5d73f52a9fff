//! Conformance against a real unleash-server 8.2.0 (PostgreSQL, loopback), started by
//! `scripts/unleash-server.sh`:
//!
//! ```text
//! scripts/unleash-server.sh start
//! . target/unleash-server/unleash.env      # UNLEASH_URL, UNLEASH_API_TOKEN, UNLEASH_ADMIN_TOKEN
//! cargo test -p unleash-client --test real_server -- --ignored --test-threads=1
//! scripts/unleash-server.sh stop
//! ```
//!
//! The tests are `#[ignore]`d so that a plain `cargo test` does not need the server. Without
//! the variables they print why they skip, except under `CI=true`, where they fail.
//!
//! The server buffers: metrics reach the database every 5 s, applications and instances every
//! 20 s, and flag names used to accept metrics are memoized for 10 s. So the tests create
//! their flags, wait 11 s before counting, and poll the read-back.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use metrics_core::reqwest;
use metrics_core::{Error, MetricsSource, Query};
use unleash_client::{
    ApplicationsQuery, Flushed, MetricsBucket, RecorderConfig, ServerVersion, UnleashClient,
};

struct Server {
    url: String,
    api_token: String,
    admin_token: String,
}

/// The server from the environment, or `None` (with the reason printed) outside CI.
fn server() -> Option<Server> {
    let get = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    match (
        get("UNLEASH_URL"),
        get("UNLEASH_API_TOKEN"),
        get("UNLEASH_ADMIN_TOKEN"),
    ) {
        (Some(url), Some(api_token), Some(admin_token)) => Some(Server {
            url,
            api_token,
            admin_token,
        }),
        _ => {
            let reason = "UNLEASH_URL, UNLEASH_API_TOKEN and UNLEASH_ADMIN_TOKEN are not set: run \
                          `scripts/unleash-server.sh start` and source target/unleash-server/unleash.env";
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "real-server test cannot run: {reason}"
            );
            eprintln!("skipped: {reason}");
            None
        }
    }
}

/// A name no earlier run used: the database survives between runs.
fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        nanos % 1_000_000_000_000
    )
}

fn client(server: &Server, app_name: &str, interval: Duration) -> UnleashClient {
    UnleashClient::builder()
        .with_url(&server.url)
        .with_api_token(&server.api_token)
        .with_admin_token(&server.admin_token)
        .with_app_name(app_name)
        .with_instance_id(format!("{app_name}-i1"))
        .with_strategies(["default", "flexibleRollout"])
        .with_interval(interval)
        .with_server_version(ServerVersion::LATEST)
        .build()
        .expect("client builds")
}

/// Creates flags through the admin API (not part of the client: it only reads metrics).
async fn create_flags(server: &Server, names: &[&str]) {
    let http = reqwest::Client::new();
    for name in names {
        let response = http
            .post(format!(
                "{}/api/admin/projects/default/features",
                server.url
            ))
            .header("Authorization", &server.admin_token)
            .header("Content-Type", "application/json")
            .body(serde_json::json!({ "name": name, "type": "release" }).to_string())
            .send()
            .await
            .expect("admin API reachable");
        assert_eq!(response.status().as_u16(), 201, "creating flag {name}");
    }
    // The server accepts metrics only for flag names it has memoized (10 s max age).
    tokio::time::sleep(Duration::from_secs(11)).await;
}

/// Polls `probe` every 500 ms until it returns `Some`, for at most `limit`.
async fn poll<T, F, Fut>(what: &str, limit: Duration, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let started = Instant::now();
    loop {
        if let Some(value) = probe().await {
            eprintln!("{what}: after {} ms", started.elapsed().as_millis());
            return value;
        }
        assert!(
            started.elapsed() < limit,
            "{what}: not seen within {} s",
            limit.as_secs()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Yes/no of `flag` for `app` over the last two hours (a run may straddle an hour).
async fn read_counts(client: &UnleashClient, flag: &str, app: &str) -> (u64, u64) {
    let raw = client
        .feature_metrics_raw(flag, 2)
        .await
        .expect("raw metrics readable");
    let total = raw.total(Some(app), None);
    (total.yes, total.no)
}

async fn expect_counts(client: &UnleashClient, flag: &str, app: &str, want: (u64, u64)) {
    poll(
        &format!("{flag} = {want:?}"),
        Duration::from_secs(30),
        || async {
            let got = read_counts(client, flag, app).await;
            assert!(
                got.0 <= want.0 && got.1 <= want.1,
                "{flag}: counted more than was evaluated: {got:?} > {want:?}"
            );
            (got == want).then_some(())
        },
    )
    .await;
}

fn script() -> PathBuf {
    std::env::var_os("UNLEASH_SERVER_SCRIPT").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../scripts/unleash-server.sh"),
        PathBuf::from,
    )
}

async fn run_script(subcommand: &'static str) {
    let script = script();
    let status = tokio::task::spawn_blocking(move || {
        Command::new("bash").arg(&script).arg(subcommand).status()
    })
    .await
    .expect("script task")
    .expect("script runs");
    assert!(status.success(), "unleash-server.sh {subcommand} failed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a real unleash-server: scripts/unleash-server.sh start"]
async fn recorder_counts_are_read_back_exactly() {
    let Some(server) = server() else { return };
    let plain = unique("mh-plain");
    let variants = unique("mh-variants");
    create_flags(&server, &[&plain, &variants]).await;

    let app = unique("mh-app");
    let client = client(&server, &app, Duration::from_secs(1));
    assert_eq!(
        client.detect_server_version().await.expect("ui-config"),
        ServerVersion::new(8, 2, 0)
    );
    let recorder = client
        .start_recorder(RecorderConfig::new())
        .expect("recorder starts");

    // Many tasks counting at once.
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let recorder = recorder.clone();
        let (plain, variants) = (plain.clone(), variants.clone());
        tasks.push(tokio::spawn(async move {
            for round in 0..8u32 {
                recorder.count(&plain, round < 5);
                if round < 2 {
                    recorder.count_variant(&variants, true, "blue");
                } else if round == 2 {
                    recorder.count_variant(&variants, false, "disabled");
                }
                tokio::task::yield_now().await;
            }
        }));
    }
    for task in tasks {
        task.await.expect("counting task");
    }
    // Let at least one background flush happen, then flush the rest at shutdown.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    recorder.shutdown().await.into_result().expect("last flush");
    let status = recorder.status();
    assert_eq!(status.evaluations_sent, 64 + 24, "{status:?}");
    assert_eq!(status.evaluations_dropped, 0, "{status:?}");
    assert_eq!(status.evaluations_pending, 0, "{status:?}");
    assert!(status.buckets_sent >= 1);

    expect_counts(&client, &plain, &app, (40, 24)).await;
    expect_counts(&client, &variants, &app, (16, 8)).await;

    let raw = client.feature_metrics_raw(&variants, 2).await.unwrap();
    let mut blue = 0;
    let mut disabled = 0;
    for row in raw.data.iter().filter(|r| r.app_name == app) {
        let variants = row.variants.clone().unwrap_or_default();
        blue += variants.get("blue").copied().unwrap_or(0);
        disabled += variants.get("disabled").copied().unwrap_or(0);
        assert_eq!(row.environment, "development");
    }
    assert_eq!((blue, disabled), (16, 8));

    let last_hour = client.feature_metrics(&plain).await.unwrap();
    assert_eq!(last_hour.feature_name, plain);
    assert!(last_hour.seen_applications.contains(&app));

    // Applications and instances reach the database every 20 s.
    let details = poll("application details", Duration::from_secs(40), || async {
        match client.application(&app).await {
            Ok(details) if details.seen_toggles.iter().any(|t| t.name == plain) => Some(details),
            Ok(_) | Err(Error::NotFound { .. }) => None,
            Err(other) => panic!("application details: {other}"),
        }
    })
    .await;
    let instance = details
        .instances
        .iter()
        .find(|i| i.instance_id == client.instance_id())
        .expect("our instance is listed");
    assert_eq!(instance.sdk_version.as_deref(), Some(client.sdk_version()));
    assert_eq!(instance.environment.as_deref(), Some("development"));
    assert!(
        details
            .strategies
            .iter()
            .any(|s| s.name.as_deref() == Some("flexibleRollout"))
    );

    let page = client
        .applications(&ApplicationsQuery::new().with_search(&app).with_limit(10))
        .await
        .unwrap();
    assert_eq!(page.total, Some(1));
    assert_eq!(page.applications[0].app_name, app);
    assert!(
        client
            .all_applications()
            .await
            .unwrap()
            .iter()
            .any(|a| a.app_name == app)
    );
    let overview = client.application_overview(&app).await.unwrap();
    assert!(
        overview
            .environments
            .iter()
            .any(|e| e.name == "development")
    );
    let instances = client
        .application_instances(&app, "development")
        .await
        .unwrap();
    assert!(
        instances
            .instances
            .iter()
            .any(|i| i.instance_id == client.instance_id())
    );
    client.unknown_flags().await.expect("unknown flags decode");

    // The same counts through the MetricsSource view.
    let source = UnleashClient::builder()
        .with_url(&server.url)
        .with_admin_token(&server.admin_token)
        .with_features([plain.clone()])
        .build()
        .unwrap();
    let series = source
        .collect(&Query::new().last(Duration::from_secs(2 * 3600)))
        .await
        .unwrap();
    let sum = |result: &str| -> f64 {
        series
            .iter()
            .filter(|s| s.labels.get("app_name") == Some(&app))
            .filter(|s| s.labels.get("result").map(String::as_str) == Some(result))
            .flat_map(|s| s.points.iter().map(|p| p.value))
            .sum()
    };
    assert!((sum("yes") - 40.0).abs() < f64::EPSILON);
    assert!((sum("no") - 24.0).abs() < f64::EPSILON);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a real unleash-server: scripts/unleash-server.sh start"]
async fn wrong_token_types_and_removed_endpoints_are_typed_errors() {
    let Some(server) = server() else { return };
    let app = unique("mh-tokens");
    let admin_as_client = UnleashClient::builder()
        .with_url(&server.url)
        .with_api_token(&server.admin_token)
        .with_app_name(&app)
        .build()
        .unwrap();
    let err = admin_as_client.register().await.unwrap_err();
    assert!(matches!(err, Error::Forbidden { .. }), "{err:?}");
    assert!(err.to_string().contains("wrong token type"), "{err}");
    assert!(!err.to_string().contains(&server.admin_token));

    let mut bucket = MetricsBucket::new(chrono::Utc::now());
    bucket.count("anything", true);
    let err = admin_as_client.send_metrics(&bucket).await.unwrap_err();
    assert!(matches!(err, Error::Forbidden { .. }), "{err:?}");

    // The recorder stops and keeps its counts.
    let recorder = admin_as_client
        .start_recorder(
            RecorderConfig::new()
                .with_register(false)
                .with_interval(Duration::from_millis(200)),
        )
        .unwrap();
    recorder.count("anything", true);
    let status = poll("recorder stop", Duration::from_secs(10), || async {
        let status = recorder.status();
        status.stopped.is_some().then_some(status)
    })
    .await;
    assert_eq!(status.evaluations_pending, 1);
    assert!(matches!(
        recorder.flush().await,
        Err(Error::Forbidden { .. })
    ));

    let unknown = UnleashClient::builder()
        .with_url(&server.url)
        .with_api_token("default:development.not-a-real-token")
        .with_app_name(&app)
        .build()
        .unwrap();
    assert!(matches!(
        unknown.register().await,
        Err(Error::Unauthenticated { .. })
    ));

    // A backend token on the admin API, and the legacy views that 8.x answers with 410.
    let client_as_admin = UnleashClient::builder()
        .with_url(&server.url)
        .with_admin_token(&server.api_token)
        .build()
        .unwrap();
    assert!(matches!(
        client_as_admin
            .applications(&ApplicationsQuery::new())
            .await,
        Err(Error::Forbidden { .. })
    ));
    let admin = UnleashClient::builder()
        .with_url(format!("{}/api", server.url))
        .with_admin_token(&server.admin_token)
        .build()
        .unwrap();
    let err = admin.seen_toggles().await.unwrap_err();
    assert!(
        matches!(
            err,
            Error::Unsupported {
                status: Some(410),
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("seenToggles"), "{err}");
    assert!(matches!(
        admin.feature_toggles().await,
        Err(Error::Unsupported {
            status: Some(410),
            ..
        })
    ));
    assert!(matches!(
        admin.seen_apps().await,
        Err(Error::Unsupported {
            status: Some(410),
            ..
        })
    ));
    assert!(matches!(
        admin.application("does-not-exist-anywhere").await,
        Err(Error::NotFound { .. })
    ));
    assert!(matches!(
        admin.feature_metrics_raw("x", 49).await,
        Err(Error::InvalidInput { .. })
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a real unleash-server: scripts/unleash-server.sh start"]
async fn no_evaluation_is_lost_across_a_server_outage() {
    let Some(server) = server() else { return };
    let flag = unique("mh-outage");
    create_flags(&server, &[&flag]).await;
    let app = unique("mh-outage-app");
    let client = client(&server, &app, Duration::from_millis(500));
    let recorder = client.start_recorder(RecorderConfig::new()).unwrap();

    recorder.count_many(&flag, 10, 5);
    assert_eq!(recorder.flush().await.unwrap(), Flushed::Sent(15));
    // SIGTERM does not flush the server's 5 s buffer: wait until the first counts are stored.
    expect_counts(&client, &flag, &app, (10, 5)).await;

    run_script("stop-app").await;
    let down_since = Instant::now();
    for _ in 0..7 {
        recorder.count(&flag, true);
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    for _ in 0..3 {
        recorder.count(&flag, false);
    }
    // Let the recorder fail against the stopped server for a while.
    let status = poll("recorder failing", Duration::from_secs(15), || async {
        let status = recorder.status();
        (status.failures >= 2).then_some(status)
    })
    .await;
    assert_eq!(status.evaluations_pending, 10, "{status:?}");
    assert_eq!(status.evaluations_dropped, 0, "{status:?}");
    assert!(
        status
            .last_error
            .as_ref()
            .is_some_and(|e| e.to_string().contains("could not connect")),
        "{status:?}"
    );
    // Stay down for a while, so that the recorder backs off over several attempts.
    let outage = Duration::from_secs(8);
    tokio::time::sleep(outage.saturating_sub(down_since.elapsed())).await;
    let status = recorder.status();
    assert_eq!(status.evaluations_pending, 10, "{status:?}");
    eprintln!(
        "server down for {} ms; recorder failures {}",
        down_since.elapsed().as_millis(),
        status.failures
    );

    run_script("start-app").await;
    let status = poll("recorder delivered", Duration::from_secs(30), || async {
        let status = recorder.status();
        (status.evaluations_pending == 0).then_some(status)
    })
    .await;
    assert_eq!(status.evaluations_sent, 25, "{status:?}");
    assert_eq!(status.evaluations_dropped, 0, "{status:?}");
    recorder.shutdown().await.into_result().unwrap();

    expect_counts(&client, &flag, &app, (17, 8)).await;
    // And it stays exact: nothing arrives twice later.
    tokio::time::sleep(Duration::from_secs(6)).await;
    assert_eq!(read_counts(&client, &flag, &app).await, (17, 8));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a real unleash-server: scripts/unleash-server.sh start"]
async fn a_post_on_a_connection_the_stopped_server_closed_is_not_lost() {
    let Some(server) = server() else { return };
    let flag = unique("mh-closed");
    create_flags(&server, &[&flag]).await;
    let app = unique("mh-closed-app");
    // The recorder's client keeps one pooled connection, used by its POSTs alone; reads go
    // through another client.
    let writer = client(&server, &app, Duration::from_secs(3600));
    let reader = client(&server, &app, Duration::from_secs(3600));
    let recorder = writer
        .start_recorder(
            RecorderConfig::new()
                .with_register(false)
                .with_jitter(Duration::ZERO),
        )
        .unwrap();

    recorder.count_many(&flag, 10, 0);
    assert_eq!(recorder.flush().await.unwrap(), Flushed::Sent(10));
    let sent_at = Instant::now();
    // SIGTERM does not flush the server's 5 s buffer: wait until the first counts are stored,
    // and until 7 s after the POST, well inside the pool's 10 s idle window.
    expect_counts(&reader, &flag, &app, (10, 0)).await;
    tokio::time::sleep(Duration::from_secs(7).saturating_sub(sent_at.elapsed())).await;

    run_script("stop-app").await;
    recorder.count_many(&flag, 20, 0);
    let err = recorder.flush().await.unwrap_err();
    let Error::Incomplete { unsent, source, .. } = &err else {
        panic!("the bucket was not kept: {err:?}")
    };
    // Whether the pool saw the close before the POST (connection refused) or wrote the POST
    // on the closed connection (closed before any answer) is a race; neither loses counts.
    eprintln!(
        "POST to the stopped server: {:?} ({source})",
        source.disposition().processing
    );
    assert_eq!(*unsent, 20);
    assert!(
        source.disposition().processing.is_not_processed(),
        "{err:?}"
    );
    let status = recorder.status();
    assert_eq!(
        (status.buckets_dropped, status.evaluations_pending),
        (0, 20),
        "{status:?}"
    );

    run_script("start-app").await;
    recorder.count_many(&flag, 30, 0);
    assert_eq!(recorder.flush().await.unwrap(), Flushed::Sent(50));
    assert!(recorder.shutdown().await.is_complete());
    expect_counts(&reader, &flag, &app, (60, 0)).await;
    // And it stays exact: nothing arrives twice later.
    tokio::time::sleep(Duration::from_secs(6)).await;
    assert_eq!(read_counts(&reader, &flag, &app).await, (60, 0));
}
