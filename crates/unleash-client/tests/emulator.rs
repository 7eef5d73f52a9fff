//! The client and the recorder against the Unleash emulator (`metrics-emulators`, feature
//! `unleash`): wire format, token types, read-back, and every recorder failure path.

use std::time::{Duration, Instant};

use chrono::{TimeDelta, Utc};
use metrics_core::{ClientOptions, Error, MetricsSource, Query};
use metrics_emulators::Fault;
use metrics_emulators::unleash::{RateLimitedEndpoint, UnleashEmulator};
use unleash_client::{
    ApplicationsQuery, MetricsBucket, RecorderConfig, ServerVersion, SortOrder, ToggleCount,
    UnleashClient,
};

fn client(emulator: &UnleashEmulator) -> UnleashClient {
    UnleashClient::builder()
        .with_url(emulator.base_url())
        .with_api_token(UnleashEmulator::CLIENT_TOKEN)
        .with_admin_token(UnleashEmulator::ADMIN_TOKEN)
        .with_app_name("checkout-service")
        .with_instance_id("pod-1")
        .with_strategies(["default", "flexibleRollout"])
        .with_interval(Duration::from_millis(100))
        .build()
        .unwrap()
}

fn quick(config: RecorderConfig) -> RecorderConfig {
    config
        .with_interval(Duration::from_millis(100))
        .with_shutdown_timeout(Duration::from_secs(5))
}

async fn wait_for<F: FnMut() -> bool>(what: &str, mut done: F) {
    let started = Instant::now();
    while !done() {
        assert!(started.elapsed() < Duration::from_secs(10), "{what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn metrics_posts(emulator: &UnleashEmulator) -> usize {
    emulator
        .requests()
        .requests()
        .iter()
        .filter(|r| r.method == "POST" && r.uri == "/api/client/metrics")
        .count()
}

#[tokio::test]
async fn register_sends_the_current_fields_and_headers() {
    let emulator = UnleashEmulator::start().await.unwrap();
    let client = client(&emulator);
    client.register().await.unwrap();
    client.register().await.unwrap();

    let body = &emulator.registrations()[0];
    assert_eq!(body["appName"], "checkout-service");
    assert_eq!(body["instanceId"], "pod-1");
    assert_eq!(
        body["sdkVersion"],
        format!("metrics-hub-unleash:{}", env!("CARGO_PKG_VERSION"))
    );
    assert_eq!(
        body["strategies"],
        serde_json::json!(["default", "flexibleRollout"])
    );
    assert_eq!(body["interval"], 100, "interval is in milliseconds");
    let started = body["started"].as_str().expect("started is a string");
    assert!(chrono::DateTime::parse_from_rfc3339(started).is_ok());
    assert!(started.ends_with('Z'));
    assert_eq!(body["platformName"], "rust");
    assert!(
        body["platformVersion"]
            .as_str()
            .is_some_and(|v| v.contains('.'))
    );
    assert_eq!(body["specVersion"], unleash_client::SPEC_VERSION);
    assert!(body.get("yggdrasilVersion").is_none());

    let requests = emulator.requests().requests();
    let first = &requests[0];
    assert_eq!(
        first.header("authorization"),
        Some(UnleashEmulator::CLIENT_TOKEN)
    );
    assert_eq!(first.header("unleash-appname"), Some("checkout-service"));
    assert_eq!(first.header("unleash-instanceid"), Some("pod-1"));
    assert_eq!(first.header("unleash-sdk"), Some(client.sdk_version()));
    assert_eq!(first.header("unleash-interval"), Some("100"));
    assert_eq!(first.header("content-type"), Some("application/json"));
    let connection = first.header("unleash-connection-id").unwrap();
    assert_eq!(connection.len(), 36);
    assert_eq!(connection, client.connection_id());
    assert_eq!(
        requests[1].header("unleash-connection-id"),
        Some(connection)
    );
    assert_eq!(emulator.application_names(), ["checkout-service"]);
}

#[tokio::test]
async fn send_metrics_books_under_the_hour_of_stop() {
    let emulator = UnleashEmulator::start().await.unwrap();
    emulator.add_flag("new-checkout");
    emulator.add_flag("button-color");
    let client = client(&emulator);
    let stop = Utc::now() - TimeDelta::hours(2);
    let bucket = MetricsBucket::new(stop - TimeDelta::minutes(1))
        .with_stop(stop)
        .with_toggle("new-checkout", ToggleCount::new(7, 3))
        .with_toggle("button-color", {
            let mut count = ToggleCount::new(1, 0);
            count.variants.insert("blue".into(), 1);
            count
        })
        .with_toggle("never-evaluated", ToggleCount::new(0, 0));
    client.send_metrics(&bucket).await.unwrap();

    assert_eq!(emulator.counts("new-checkout"), (7, 3));
    assert_eq!(emulator.variant_counts("button-color")["blue"], 1);
    let hours = emulator.booked_hours("new-checkout");
    assert_eq!(hours.len(), 1);
    assert!(hours[0] <= stop && stop - hours[0] < TimeDelta::hours(1));
    let body = &emulator.metric_posts()[0];
    assert!(body["bucket"]["toggles"].get("never-evaluated").is_none());
    assert_eq!(body["sdkVersion"], client.sdk_version());
    assert!(body["bucket"]["stop"].as_str().unwrap().ends_with('Z'));
}

#[tokio::test]
async fn invalid_buckets_are_rejected_before_sending() {
    let emulator = UnleashEmulator::start().await.unwrap();
    let client = client(&emulator);
    let empty = MetricsBucket::new(Utc::now()).with_toggle("f", ToggleCount::new(0, 0));
    assert!(matches!(
        client.send_metrics(&empty).await,
        Err(Error::InvalidInput { .. })
    ));
    let now = Utc::now();
    let backwards = MetricsBucket::new(now)
        .with_stop(now - TimeDelta::seconds(1))
        .with_toggle("f", ToggleCount::new(1, 0));
    assert!(matches!(
        client.send_metrics(&backwards).await,
        Err(Error::InvalidInput { .. })
    ));
    let unnamed = MetricsBucket::new(now).with_toggle(" ", ToggleCount::new(1, 0));
    assert!(matches!(
        client.send_metrics(&unnamed).await,
        Err(Error::InvalidInput { .. })
    ));
    assert_eq!(emulator.requests().count(), 0);
}

#[tokio::test]
async fn token_types_map_to_typed_errors() {
    let emulator = UnleashEmulator::start().await.unwrap();
    let with_token = |token: &str| {
        UnleashClient::builder()
            .with_url(emulator.base_url())
            .with_api_token(token)
            .with_admin_token(token)
            .with_app_name("x")
            .build()
            .unwrap()
    };
    let admin = with_token(UnleashEmulator::ADMIN_TOKEN);
    let err = admin.register().await.unwrap_err();
    assert!(matches!(err, Error::Forbidden { .. }), "{err:?}");
    assert!(err.to_string().contains("expected a different token type"));
    assert!(err.to_string().contains("wrong token type"));

    let frontend = with_token(UnleashEmulator::FRONTEND_TOKEN);
    assert!(matches!(
        frontend.register().await,
        Err(Error::Forbidden { .. })
    ));
    assert!(matches!(
        frontend.applications(&ApplicationsQuery::new()).await,
        Err(Error::Forbidden { .. })
    ));

    let unknown = with_token("default:development.nope");
    let err = unknown.register().await.unwrap_err();
    assert!(matches!(err, Error::Unauthenticated { .. }), "{err:?}");
    let err = unknown
        .applications(&ApplicationsQuery::new())
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::Unauthenticated { ref code, .. } if code.as_deref() == Some("UnauthorizedError")),
        "{err:?}"
    );

    let backend = with_token(UnleashEmulator::CLIENT_TOKEN);
    let err = backend.all_applications().await.unwrap_err();
    assert!(matches!(err, Error::Forbidden { .. }), "{err:?}");
    assert!(err.to_string().contains("UNLEASH_ADMIN_TOKEN"));

    // Reads need an admin credential; writes a backend token: caught before sending.
    let read_only = UnleashClient::builder()
        .with_url(emulator.base_url())
        .with_admin_token(UnleashEmulator::ADMIN_TOKEN)
        .build()
        .unwrap();
    assert!(matches!(
        read_only.register().await,
        Err(Error::Config { .. })
    ));
    assert!(matches!(
        read_only.start_recorder(RecorderConfig::new()),
        Err(Error::Config { .. })
    ));
    let write_only = UnleashClient::builder()
        .with_url(emulator.base_url())
        .with_api_token(UnleashEmulator::CLIENT_TOKEN)
        .with_app_name("x")
        .build()
        .unwrap();
    assert!(matches!(
        write_only.feature_metrics("f").await,
        Err(Error::Config { .. })
    ));
}

#[tokio::test]
async fn recorder_counts_from_many_tasks_exactly() {
    let emulator = UnleashEmulator::start().await.unwrap();
    emulator.add_flag("a");
    emulator.add_flag("b");
    let recorder = client(&emulator)
        .start_recorder(quick(RecorderConfig::new()))
        .unwrap();
    let mut tasks = Vec::new();
    for task in 0..16u64 {
        let recorder = recorder.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..500u64 {
                recorder.count("a", (i + task) % 3 == 0);
                if i % 10 == 0 {
                    recorder.count_variant("b", true, if i % 20 == 0 { "blue" } else { "green" });
                }
                if i % 50 == 0 {
                    tokio::task::yield_now().await;
                }
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    recorder.shutdown().await.unwrap();
    let (yes, no) = emulator.counts("a");
    let expected_yes: u64 = (0..16u64)
        .map(|t| (0..500u64).filter(|i| (i + t) % 3 == 0).count() as u64)
        .sum();
    assert_eq!((yes, no), (expected_yes, 16 * 500 - expected_yes));
    assert_eq!(emulator.counts("b"), (16 * 50, 0));
    let variants = emulator.variant_counts("b");
    assert_eq!((variants["blue"], variants["green"]), (16 * 25, 16 * 25));
    let status = recorder.status();
    assert_eq!(status.evaluations_sent, 16 * 500 + 16 * 50);
    assert_eq!(status.evaluations_pending, 0);
    assert!(!status.running);
    // It registered first.
    assert_eq!(emulator.registrations().len(), 1);
    // Never an empty bucket.
    for body in emulator.metric_posts() {
        assert!(!body["bucket"]["toggles"].as_object().unwrap().is_empty());
    }
}

#[tokio::test]
async fn unsent_buckets_are_kept_and_merged_on_5xx() {
    let emulator = UnleashEmulator::start().await.unwrap();
    emulator.add_flag("f");
    let recorder = client(&emulator)
        .start_recorder(quick(RecorderConfig::new().with_register(false)))
        .unwrap();
    emulator.faults().inject_on(
        "/api/client/metrics",
        Fault::Status {
            status: 503,
            retry_after: None,
            body: String::new(),
        },
        0,
        2,
    );
    recorder.count_many("f", 3, 1);
    let err = recorder.flush().await.unwrap_err();
    assert!(
        matches!(err, Error::Incomplete { unsent: 1, .. }),
        "{err:?}"
    );
    assert_eq!(err.status(), Some(503));
    recorder.count("f", true);
    assert!(recorder.flush().await.is_err());
    assert_eq!(recorder.status().evaluations_pending, 5);
    assert_eq!(recorder.status().failures, 2);
    recorder.count("f", false);
    assert_eq!(recorder.flush().await.unwrap(), 6);
    assert_eq!(emulator.counts("f"), (4, 2));
    let status = recorder.status();
    assert_eq!((status.buckets_sent, status.failures), (1, 1));
    // The merged bucket kept the earliest start.
    let body = &emulator.metric_posts()[0];
    let start =
        chrono::DateTime::parse_from_rfc3339(body["bucket"]["start"].as_str().unwrap()).unwrap();
    let stop =
        chrono::DateTime::parse_from_rfc3339(body["bucket"]["stop"].as_str().unwrap()).unwrap();
    assert!(start < stop);
    recorder.shutdown().await.unwrap();
}

#[tokio::test]
async fn rate_limit_retry_after_is_honoured() {
    let emulator = UnleashEmulator::start().await.unwrap();
    emulator.add_flag("f");
    emulator.set_rate_limit(RateLimitedEndpoint::Metrics, 1, Duration::from_secs(2));
    let recorder = client(&emulator)
        .start_recorder(quick(RecorderConfig::new().with_register(false)))
        .unwrap();
    recorder.count("f", true);
    assert_eq!(recorder.flush().await.unwrap(), 1);
    recorder.count("f", true);
    let limited_at = Instant::now();
    let err = recorder.flush().await.unwrap_err();
    let Error::Incomplete { source, .. } = &err else {
        panic!("{err:?}")
    };
    assert!(
        matches!(
            **source,
            Error::RateLimited {
                retry_after: Some(_),
                ..
            }
        ),
        "{err:?}"
    );
    let posts_after_limit = metrics_posts(&emulator);
    // The background flush (every 100 ms) must wait out Retry-After (1–2 s) before posting again.
    wait_for("delivered after the window", || {
        emulator.counts("f") == (2, 0)
    })
    .await;
    assert!(limited_at.elapsed() >= Duration::from_millis(900));
    assert_eq!(metrics_posts(&emulator), posts_after_limit + 1);
    recorder.shutdown().await.unwrap();
}

#[tokio::test]
async fn rejected_bucket_is_dropped_and_counting_goes_on() {
    let emulator = UnleashEmulator::start().await.unwrap();
    emulator.add_flag("f");
    let recorder = client(&emulator)
        .start_recorder(quick(RecorderConfig::new().with_register(false)))
        .unwrap();
    emulator.faults().inject_on(
        "/api/client/metrics",
        Fault::Status {
            status: 400,
            retry_after: None,
            body: r#"{"id":"x","name":"BadDataError","message":"Request validation failed.","details":[{"path":"/body/bucket/toggles/f/yes","message":"The `/body/bucket/toggles/f/yes` property must be >= 0. You sent -1."}]}"#.into(),
        },
        0,
        1,
    );
    recorder.count_many("f", 5, 5);
    let err = recorder.flush().await.unwrap_err();
    assert_eq!(err.status(), Some(400));
    assert_eq!(err.code(), Some("BadDataError"));
    assert!(err.to_string().contains("must be >= 0"), "{err}");
    let status = recorder.status();
    assert_eq!(
        (status.buckets_dropped, status.evaluations_dropped),
        (1, 10)
    );
    assert_eq!(status.evaluations_pending, 0);
    recorder.count("f", true);
    assert_eq!(recorder.flush().await.unwrap(), 1);
    assert_eq!(emulator.counts("f"), (1, 0));
    recorder.shutdown().await.unwrap();
}

#[tokio::test]
async fn auth_failure_stops_the_recorder_and_keeps_counts() {
    let emulator = UnleashEmulator::start().await.unwrap();
    let recorder = UnleashClient::builder()
        .with_url(emulator.base_url())
        .with_api_token(UnleashEmulator::ADMIN_TOKEN)
        .with_app_name("x")
        .build()
        .unwrap()
        .start_recorder(quick(RecorderConfig::new()))
        .unwrap();
    recorder.count("f", true);
    wait_for("stopped", || recorder.status().stopped.is_some()).await;
    let status = recorder.status();
    assert!(!status.running);
    assert!(status.stopped.unwrap().contains("403"));
    let requests_at_stop = emulator.requests().count();
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(
        emulator.requests().count(),
        requests_at_stop,
        "no retry loop"
    );
    recorder.count("f", false);
    assert!(matches!(
        recorder.flush().await,
        Err(Error::Forbidden { .. })
    ));
    assert!(matches!(
        recorder.shutdown().await,
        Err(Error::Forbidden { .. })
    ));
    assert_eq!(recorder.pending().evaluations(), 2);
    assert_eq!(emulator.requests().count(), requests_at_stop);

    // 401 on a metrics POST (registration off) stops too.
    let recorder = UnleashClient::builder()
        .with_url(emulator.base_url())
        .with_api_token("default:development.unknown")
        .with_app_name("x")
        .build()
        .unwrap()
        .start_recorder(quick(RecorderConfig::new().with_register(false)))
        .unwrap();
    recorder.count("f", true);
    wait_for("stopped on 401", || recorder.status().stopped.is_some()).await;
    assert!(matches!(
        recorder.flush().await,
        Err(Error::Unauthenticated { .. })
    ));
}

#[tokio::test]
async fn counts_survive_a_server_outage() {
    let mut emulator = UnleashEmulator::start().await.unwrap();
    emulator.add_flag("f");
    let recorder = client(&emulator)
        .start_recorder(quick(RecorderConfig::new().with_register(false)))
        .unwrap();
    recorder.count_many("f", 2, 1);
    recorder.flush().await.unwrap();
    emulator.stop();
    recorder.count_many("f", 4, 0);
    wait_for("failing while down", || recorder.status().failures >= 2).await;
    assert!(
        recorder
            .status()
            .last_error
            .unwrap()
            .contains("could not connect")
    );
    recorder.count("f", false);
    emulator.restart().await.unwrap();
    wait_for("delivered after restart", || emulator.counts("f") == (6, 2)).await;
    recorder.shutdown().await.unwrap();
    assert_eq!(emulator.counts("f"), (6, 2));
    assert_eq!(recorder.status().evaluations_dropped, 0);
}

#[tokio::test]
async fn a_post_that_may_have_arrived_is_never_resent() {
    let emulator = UnleashEmulator::start().await.unwrap();
    emulator.add_flag("f");
    let client = UnleashClient::builder()
        .with_url(emulator.base_url())
        .with_api_token(UnleashEmulator::CLIENT_TOKEN)
        .with_app_name("x")
        .with_client_options(ClientOptions::new().with_timeout(Duration::from_millis(200)))
        .build()
        .unwrap();
    let recorder = client
        .start_recorder(quick(RecorderConfig::new().with_register(false)))
        .unwrap();
    // The server counts the POST after the client gave up waiting.
    emulator.faults().inject_on(
        "/api/client/metrics",
        Fault::Delay(Duration::from_millis(500)),
        0,
        1,
    );
    recorder.count_many("f", 3, 0);
    let err = recorder.flush().await.unwrap_err();
    assert!(matches!(err, Error::Timeout { .. }), "{err:?}");
    assert_eq!(recorder.status().evaluations_dropped, 3);
    assert_eq!(recorder.status().evaluations_pending, 0);
    // Several background intervals later, nothing was sent again.
    tokio::time::sleep(Duration::from_millis(700)).await;
    recorder.shutdown().await.unwrap();
    assert_eq!(
        metrics_posts(&emulator),
        1,
        "a POST that may have been counted is not resent"
    );
    // (The emulator drops a request whose client hung up; a real server may count it once.)
    assert!(emulator.counts("f").0 <= 3);
}

#[tokio::test]
async fn disabled_metrics_204_is_success() {
    let emulator = UnleashEmulator::start().await.unwrap();
    emulator.set_metrics_disabled(true);
    let recorder = client(&emulator)
        .start_recorder(quick(RecorderConfig::new().with_register(false)))
        .unwrap();
    recorder.count("f", true);
    assert_eq!(recorder.shutdown().await.unwrap(), 1);
    assert_eq!(emulator.counts("f"), (0, 0));
}

#[tokio::test]
async fn read_back_of_the_8x_endpoints() {
    let emulator = UnleashEmulator::start().await.unwrap();
    emulator.seed_demo();
    let client = client(&emulator);

    assert_eq!(
        client.detect_server_version().await.unwrap(),
        ServerVersion::LATEST
    );
    let all = client.all_applications().await.unwrap();
    assert_eq!(all.len(), 2);
    let page = client
        .applications(
            &ApplicationsQuery::new()
                .with_limit(1)
                .with_sort_order(SortOrder::Desc),
        )
        .await
        .unwrap();
    assert_eq!(page.total, Some(2));
    assert_eq!(page.applications[0].app_name, "search-api");
    let request = emulator.requests().requests().last().cloned().unwrap();
    assert!(request.uri.contains("limit=1") && request.uri.contains("sortOrder=desc"));
    let by_strategy = client.applications_by_strategy("userWithId").await.unwrap();
    assert_eq!(by_strategy.len(), 1);
    assert_eq!(by_strategy[0].app_name, "search-api");

    let details = client.application("checkout-service").await.unwrap();
    assert_eq!(details.instances.len(), 2);
    assert!(
        details
            .seen_toggles
            .iter()
            .any(|t| t.name == "button-color")
    );
    assert_eq!(
        details.strategies[0].display_name.as_deref(),
        Some("Standard")
    );
    let err = client.application("nope").await.unwrap_err();
    assert!(
        matches!(err, Error::NotFound { ref code, .. } if code.as_deref() == Some("NotFoundError")),
        "{err:?}"
    );

    let overview = client
        .application_overview("checkout-service")
        .await
        .unwrap();
    assert_eq!(overview.environments[0].instance_count, 2);
    let instances = client
        .application_instances("checkout-service", "production")
        .await
        .unwrap();
    assert_eq!(instances.instances.len(), 2);

    let metrics = client.feature_metrics("new-checkout").await.unwrap();
    assert_eq!(metrics.seen_applications, ["checkout-service"]);
    assert!(metrics.last_hour_total().yes > 0);
    let raw = client.feature_metrics_raw("new-checkout", 6).await.unwrap();
    assert_eq!(raw.data.len(), 6);
    assert_eq!(
        raw.total(None, Some("production")).yes,
        120 * (1 + 2 + 3 + 4 + 5 + 6)
    );
    let raw = client.feature_metrics_raw("button-color", 1).await.unwrap();
    assert_eq!(raw.data[0].variants.as_ref().unwrap()["blue"], 300);
    assert!(matches!(
        client.feature_metrics_raw("f", 0).await,
        Err(Error::InvalidInput { .. })
    ));
    let unknown = client.unknown_flags().await.unwrap();
    assert_eq!(unknown.unknown_flags[0].name, "legacy-banner");
}

#[tokio::test]
async fn legacy_views_are_unsupported_on_8x_and_name_the_replacement() {
    let emulator = UnleashEmulator::start().await.unwrap();
    let client = client(&emulator);
    for (result, replacement) in [
        (client.seen_toggles().await.map(drop), "seenToggles"),
        (client.seen_apps().await.map(drop), "seenApplications"),
        (client.feature_toggles().await.map(drop), "feature_metrics"),
        (
            client.feature_toggle("x").await.map(drop),
            "feature_metrics",
        ),
    ] {
        let err = result.unwrap_err();
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
        let text = err.to_string();
        assert!(text.contains("removed in Unleash 4.4"), "{text}");
        assert!(text.contains(replacement), "{text}");
    }
    // Endpoints newer than the configured version fail before sending.
    let old = UnleashClient::builder()
        .with_url(emulator.base_url())
        .with_admin_token(UnleashEmulator::ADMIN_TOKEN)
        .with_server_version(ServerVersion::new(4, 19, 5))
        .build()
        .unwrap();
    let before = emulator.requests().count();
    let err = old.application_overview("a").await.unwrap_err();
    assert!(
        matches!(err, Error::Unsupported { status: None, .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("5.10.0"));
    assert!(matches!(
        old.unknown_flags().await,
        Err(Error::Unsupported { .. })
    ));
    assert_eq!(emulator.requests().count(), before);
}

#[tokio::test]
async fn metrics_source_reports_yes_no_per_flag_app_and_environment() {
    let emulator = UnleashEmulator::start().await.unwrap();
    emulator.seed_demo();
    let client = client(&emulator);
    assert_eq!(client.backend(), unleash_client::BACKEND);
    let series = client
        .collect(&Query::new().last(Duration::from_secs(3 * 3600)))
        .await
        .unwrap();
    let find = |id: &str| series.iter().find(|s| s.id() == id);
    let yes = find(r#"unleash_feature_evaluations{app_name="checkout-service",environment="production",feature="new-checkout",result="yes"}"#)
        .expect("yes series");
    // The hour the range starts in is included: 3 h back from now touches 4 hours.
    assert_eq!(yes.points.len(), 4);
    assert_eq!(yes.last_value(), Some(720.0));
    assert_eq!(
        yes.unit.as_ref().map(metrics_core::Unit::as_str),
        Some("evaluations")
    );
    assert!(find(r#"unleash_feature_variant_evaluations{app_name="checkout-service",environment="production",feature="button-color",variant="blue"}"#).is_some());
    assert!(
        series
            .iter()
            .all(|s| s.labels.get("feature").map(String::as_str) != Some("legacy-banner"))
    );

    // A filter that cannot match asks nothing.
    let before = emulator.requests().count();
    let none = client
        .collect(&Query::new().with_names(["outline_*"]))
        .await
        .unwrap();
    assert!(none.is_empty());
    assert_eq!(emulator.requests().count(), before);

    // Configured flags skip discovery.
    let only = UnleashClient::builder()
        .with_url(emulator.base_url())
        .with_admin_token(UnleashEmulator::ADMIN_TOKEN)
        .with_features(["dark-mode"])
        .build()
        .unwrap();
    let series = only
        .collect(&Query::new().with_names(["unleash_feature_evaluations"]))
        .await
        .unwrap();
    assert_eq!(series.len(), 2);
    assert!(series.iter().all(|s| s.labels["feature"] == "dark-mode"));
}
