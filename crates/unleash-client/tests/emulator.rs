//! The client and the recorder against the Unleash emulator (`metrics-emulators`, feature
//! `unleash`): wire format, token types and read-back (the recorder is in `recorder.rs`).

use std::time::Duration;

use chrono::{TimeDelta, Utc};
use metrics_core::{Error, MetricsSource, Query};
use metrics_emulators::unleash::UnleashEmulator;
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
