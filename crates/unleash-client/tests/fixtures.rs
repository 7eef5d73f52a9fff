//! unleash-server 8.2.0 fixtures (recorded live) replayed through httpmock, the older
//! servers' paths and shapes, and transport failures.

use std::time::Duration;

use httpmock::Method::{GET, POST};
use httpmock::MockServer;
use metrics_core::{ClientOptions, Error, RetryConfig};
use serde_json::Value;
use unleash_client::{
    ApplicationsQuery, Diagnosis, MetricsBucket, ServerVersion, ToggleCount, UnleashClient,
    UnleashError,
};

const ADMIN: &str = "*:*.unleash-insecure-admin-api-token";
const CLIENT: &str = "default:development.unleash-insecure-api-token";

struct Fixture {
    path: String,
    query: Vec<(String, String)>,
    request_body: Value,
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

fn fixture(text: &str) -> Fixture {
    let json: Value = serde_json::from_str(text).unwrap();
    let full = json["request"]["path"].as_str().unwrap();
    let (path, query) = full.split_once('?').unwrap_or((full, ""));
    let query = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap();
            (k.to_owned(), v.to_owned())
        })
        .collect();
    let response = &json["response"];
    let body = match &response["body"] {
        Value::Null => String::new(),
        Value::String(text) => text.clone(),
        other => other.to_string(),
    };
    let headers = response["headers"]
        .as_object()
        .map(|h| {
            h.iter()
                .filter(|(k, _)| {
                    !matches!(
                        k.as_str(),
                        "Content-Length" | "Transfer-Encoding" | "Connection" | "Keep-Alive"
                    )
                })
                .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned()))
                .collect()
        })
        .unwrap_or_default();
    Fixture {
        path: path.to_owned(),
        query,
        request_body: json["request"]["body"].clone(),
        status: u16::try_from(response["status"].as_u64().unwrap()).unwrap(),
        headers,
        body,
    }
}

/// Serves `fixture` for its GET path (and query) with the admin token.
async fn serve_get<'a>(server: &'a MockServer, fixture: &Fixture) -> httpmock::Mock<'a> {
    server
        .mock_async(|when, then| {
            let mut when = when
                .method(GET)
                .path(fixture.path.clone())
                .header("authorization", ADMIN);
            for (k, v) in &fixture.query {
                when = when.query_param(k.clone(), v.clone());
            }
            let mut then = then.status(fixture.status).body(fixture.body.clone());
            if fixture.body.starts_with('{') {
                then = then.header("content-type", "application/json; charset=utf-8");
            }
            for (k, v) in &fixture.headers {
                then = then.header(k.clone(), v.clone());
            }
        })
        .await
}

fn client(server: &MockServer) -> UnleashClient {
    client_for(server, ServerVersion::LATEST)
}

fn client_for(server: &MockServer, version: ServerVersion) -> UnleashClient {
    UnleashClient::builder()
        .with_url(server.base_url())
        .with_api_token(CLIENT)
        .with_admin_token(ADMIN)
        .with_app_name("rust-demo-app")
        .with_instance_id("instance-1")
        .with_strategies(["default", "flexibleRollout"])
        .with_server_version(version)
        .with_retry(RetryConfig::none())
        .build()
        .unwrap()
}

#[tokio::test]
async fn application_details_fixture() {
    let server = MockServer::start_async().await;
    let f = fixture(include_str!("fixtures/application-details.json"));
    let mock = serve_get(&server, &f).await;
    let details = client(&server).application("rust-demo-app").await.unwrap();
    mock.assert_async().await;
    assert_eq!(details.app_name, "rust-demo-app");
    assert_eq!(details.description, None);
    assert_eq!(details.strategies.len(), 2);
    assert_eq!(
        details.strategies[1].parameters[0].kind.as_deref(),
        Some("percentage")
    );
    let instance = &details.instances[0];
    assert_eq!(instance.sdk_type.as_deref(), Some("backend"));
    assert_eq!(instance.environment.as_deref(), Some("development"));
    assert!(instance.last_seen.is_some());
    assert_eq!(details.seen_toggles[0].name, "my-flag");
    assert_eq!(details.seen_toggles[0].kind.as_deref(), Some("release"));
    assert_eq!(
        details.links.unwrap()["self"],
        "/api/applications/rust-demo-app"
    );
}

#[tokio::test]
async fn application_details_404_fixture() {
    let server = MockServer::start_async().await;
    let f = fixture(include_str!("fixtures/application-details-404.json"));
    serve_get(&server, &f).await;
    let err = client(&server)
        .application("does-not-exist")
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NotFound { .. }), "{err:?}");
    assert_eq!(err.code(), Some("NotFoundError"));
    assert!(
        err.to_string()
            .contains("Could not find appName=does-not-exist")
    );
}

#[tokio::test]
async fn applications_list_fixtures() {
    let server = MockServer::start_async().await;
    let f = fixture(include_str!("fixtures/applications-list.json"));
    serve_get(&server, &f).await;
    let list = client(&server)
        .applications(&ApplicationsQuery::new())
        .await
        .unwrap();
    assert_eq!(list.total, Some(3));
    assert_eq!(list.applications[0].project.as_deref(), Some("*"));
    assert_eq!(
        list.applications[0].created_by.as_deref(),
        Some("unleash_system_user")
    );
    assert_eq!(list.applications[2].strategies.len(), 0);
    assert_eq!(
        list.applications[1].usage.as_ref().unwrap()[0].environments,
        ["development"]
    );

    let server = MockServer::start_async().await;
    let f = fixture(include_str!("fixtures/applications-list-paged.json"));
    let mock = serve_get(&server, &f).await;
    let page = client(&server)
        .applications(
            &ApplicationsQuery::new()
                .with_search("rust")
                .with_limit(10)
                .with_offset(0)
                .with_sort_by("appName")
                .with_sort_order(unleash_client::SortOrder::Asc),
        )
        .await
        .unwrap();
    mock.assert_async().await;
    assert_eq!(page.total, Some(1));
}

#[tokio::test]
async fn overview_instances_and_unknown_flags_fixtures() {
    let server = MockServer::start_async().await;
    for text in [
        include_str!("fixtures/application-overview.json"),
        include_str!("fixtures/application-instances.json"),
        include_str!("fixtures/unknown-flags.json"),
    ] {
        serve_get(&server, &fixture(text)).await;
    }
    let client = client(&server);
    let overview = client.application_overview("rust-demo-app").await.unwrap();
    assert_eq!(overview.projects, ["default"]);
    assert_eq!(
        overview.environments[0].backend_sdks,
        ["unleash-client-rust:0.1.0"]
    );
    assert!(overview.issues.unwrap().missing_strategies.is_empty());
    let instances = client
        .application_instances("rust-demo-app", "development")
        .await
        .unwrap();
    assert_eq!(
        instances.instances[0].client_ip.as_deref(),
        Some("127.0.0.1")
    );
    let unknown = client.unknown_flags().await.unwrap();
    let flag = &unknown.unknown_flags[0];
    assert_eq!(flag.name, "unknown-flag");
    assert_eq!(flag.last_event_at, None);
    assert_eq!(flag.reports[0].environments[0].environment, "development");
}

#[tokio::test]
async fn feature_metrics_fixtures() {
    let server = MockServer::start_async().await;
    for text in [
        include_str!("fixtures/client-metrics-feature.json"),
        include_str!("fixtures/client-metrics-feature-raw.json"),
        include_str!("fixtures/client-metrics-feature-raw-zero-filled.json"),
    ] {
        serve_get(&server, &fixture(text)).await;
    }
    let client = client(&server);
    let metrics = client.feature_metrics("my-flag").await.unwrap();
    assert_eq!(metrics.maturity.as_deref(), Some("stable"));
    assert_eq!(metrics.last_hour_total().yes, 7);
    assert_eq!(metrics.seen_applications, ["rust-demo-app"]);
    let raw = client.feature_metrics_raw("my-flag", 1).await.unwrap();
    assert_eq!(raw.data[0].variants.as_ref().unwrap()["green"], 3);
    let raw = client.feature_metrics_raw("my-flag", 3).await.unwrap();
    assert_eq!(raw.data.len(), 3);
    assert_eq!(
        raw.data[1].variants, None,
        "zero-filled hours have no variants"
    );
    assert_eq!(raw.data[1].yes, 0);
    let total = raw.total(Some("rust-demo-app"), Some("development"));
    assert_eq!((total.yes, total.no), (15, 7));
}

#[tokio::test]
async fn legacy_410_fixture_is_unsupported() {
    let server = MockServer::start_async().await;
    serve_get(
        &server,
        &fixture(include_str!("fixtures/legacy-seen-toggles-410.json")),
    )
    .await;
    let err = client(&server).seen_toggles().await.unwrap_err();
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
    assert!(err.to_string().contains("seenToggles"));
}

#[tokio::test]
async fn register_fixture_body_and_headers() {
    let server = MockServer::start_async().await;
    let f = fixture(include_str!("fixtures/register-202.json"));
    let mock = server
        .mock_async(|when, then| {
            when.method(POST)
                .path("/api/client/register")
                .header("authorization", CLIENT)
                .header("content-type", "application/json")
                .header_exists("unleash-connection-id")
                .json_body_includes(r#"{"appName":"rust-demo-app","instanceId":"instance-1","strategies":["default","flexibleRollout"]}"#)
                .json_body_includes(r#"{"platformName":"rust"}"#);
            let mut then = then.status(f.status);
            for (k, v) in &f.headers {
                then = then.header(k.clone(), v.clone());
            }
        })
        .await;
    client(&server).register().await.unwrap();
    mock.assert_async().await;
    // The fixture's request shape is what the client sends (field names and types).
    let sent = f.request_body;
    for key in [
        "appName",
        "instanceId",
        "sdkVersion",
        "strategies",
        "started",
        "interval",
        "platformName",
        "platformVersion",
        "specVersion",
    ] {
        assert!(sent.get(key).is_some(), "{key}");
    }
}

#[tokio::test]
async fn metrics_fixture_202_and_errors() {
    let bucket = || {
        MetricsBucket::new(chrono::Utc::now() - chrono::TimeDelta::seconds(60))
            .with_stop(chrono::Utc::now())
            .with_toggle("my-flag", ToggleCount::new(7, 3))
    };
    for (text, check) in [
        (
            include_str!("fixtures/metrics-202-with-variants.json"),
            None,
        ),
        (
            include_str!("fixtures/metrics-400-invalid-date.json"),
            Some(400),
        ),
        (
            include_str!("fixtures/metrics-400-missing-appname.json"),
            Some(400),
        ),
        (
            include_str!("fixtures/metrics-400-negative-count.json"),
            Some(400),
        ),
        (
            include_str!("fixtures/metrics-401-unknown-token.json"),
            Some(401),
        ),
        (
            include_str!("fixtures/metrics-403-admin-token.json"),
            Some(403),
        ),
        (
            include_str!("fixtures/metrics-429-rate-limited.json"),
            Some(429),
        ),
    ] {
        let f = fixture(text);
        let server = MockServer::start_async().await;
        let mock = server
            .mock_async(|when, then| {
                when.method(POST).path("/api/client/metrics");
                let mut then = then.status(f.status).body(f.body.clone());
                if f.body.starts_with('{') {
                    then = then.header("content-type", "application/json; charset=utf-8");
                }
                for (k, v) in &f.headers {
                    then = then.header(k.clone(), v.clone());
                }
            })
            .await;
        let result = client(&server).send_metrics(&bucket()).await;
        assert_eq!(mock.calls_async().await, 1, "never retried");
        match check {
            None => result.unwrap(),
            Some(status) => {
                let err = result.unwrap_err();
                assert_eq!(err.status(), Some(status), "{err:?}");
                match status {
                    400 => {
                        assert_eq!(err.code(), Some("BadDataError"));
                        // The details, not only the generic message, reach the user.
                        let detail = serde_json::from_str::<Value>(&f.body).unwrap()["details"][0]
                            ["message"]
                            .as_str()
                            .unwrap()
                            .to_owned();
                        assert!(err.to_string().contains(&detail), "{err}");
                    }
                    401 => assert!(matches!(err, Error::Unauthenticated { .. })),
                    403 => assert!(err.to_string().contains("wrong token type")),
                    429 => {
                        assert_eq!(err.retry_after(), Some(Duration::from_secs(51)));
                        assert!(err.to_string().contains("Too many requests"));
                    }
                    _ => unreachable!(),
                }
            }
        }
    }
}

#[tokio::test]
async fn older_servers_use_their_paths() {
    let server = MockServer::start_async().await;
    // v2 (the seed): everything under /api/client, and the server filters by strategy.
    let v2_toggles = server
        .mock_async(|when, then| {
            when.method(GET).path("/api/client/seen-toggles");
            then.status(200).header("content-type", "application/json").body(
                r#"[{"appName":"demo-app","seenToggles":["add-feature-2","toggle-2"],"metricsCount":127}]"#,
            );
        })
        .await;
    let v2_apps = server
        .mock_async(|when, then| {
            when.method(GET)
                .path("/api/client/applications")
                .query_param("strategyName", "other");
            then.status(200).header("content-type", "application/json").body(
                r#"{"applications":[{"appName":"another","strategies":["default","other"],"createdAt":"2016-12-09T14:56:36.730Z","links":{"appDetails":"/api/client/applications/another"}}]}"#,
            );
        })
        .await;
    let v2_feature_toggles = server
        .mock_async(|when, then| {
            when.method(GET).path("/api/client/metrics/feature-toggles");
            then.status(200).header("content-type", "application/json").body(
                r#"{"lastHour":{"toggle-2":{"yes":265,"no":85}},"lastMinute":{"toggle-2":{"yes":5,"no":1}}}"#,
            );
        })
        .await;
    let v2_details = server
        .mock_async(|when, then| {
            when.method(GET).path("/api/client/applications/demo-app");
            then.status(200).header("content-type", "application/json").body(
                r#"{"appName":"demo-app","instances":[{"instanceId":"generated-732038-17080","clientIp":"::ffff:127.0.0.1","lastSeen":"2016-11-30T17:32:04.265Z","createdAt":"2016-11-30T17:31:08.914Z"}],"strategies":[{"appName":"demo-app","strategies":["default","extra"]}],"seenToggles":["add-feature-2","toggle-2"]}"#,
            );
        })
        .await;
    let v2 = client_for(&server, ServerVersion::new(2, 2, 0));
    let seen = v2.seen_toggles().await.unwrap();
    assert_eq!(seen[0].metrics_count, 127);
    let apps = v2.applications_by_strategy("other").await.unwrap();
    assert_eq!(
        apps[0].links.as_ref().unwrap()["appDetails"],
        "/api/client/applications/another"
    );
    let counts = v2.feature_toggles().await.unwrap();
    assert_eq!(counts.last_hour["toggle-2"].yes, 265);
    let details = v2.application("demo-app").await.unwrap();
    assert_eq!(details.seen_toggles[1].name, "toggle-2");
    assert_eq!(details.strategies[0].strategies, ["default", "extra"]);
    for mock in [&v2_toggles, &v2_apps, &v2_feature_toggles, &v2_details] {
        mock.assert_async().await;
    }

    // v3: /api/admin/metrics, legacy views still there; strategyName answers 500, so the
    // client filters, and pages locally.
    let v3_apps = server
        .mock_async(|when, then| {
            when.method(GET)
                .path("/api/admin/metrics/applications")
                .query_param_missing("strategyName")
                .query_param_missing("limit");
            then.status(200).header("content-type", "application/json").body(
                r#"{"applications":[{"appName":"b","strategies":["default"],"createdBy":"127.0.0.1","description":null},{"appName":"a","strategies":["custom"]},{"appName":"c","strategies":["custom","default"]}]}"#,
            );
        })
        .await;
    let v3_one = server
        .mock_async(|when, then| {
            when.method(GET)
                .path("/api/admin/metrics/feature-toggles/my-flag");
            then.status(200)
                .header("content-type", "application/json")
                .body(r#"{"lastHour":{"yes":6,"no":1},"lastMinute":{"yes":6,"no":1}}"#);
        })
        .await;
    let v3 = client_for(&server, ServerVersion::new(3, 17, 6));
    let custom = v3.applications_by_strategy("custom").await.unwrap();
    assert_eq!(
        custom
            .iter()
            .map(|a| a.app_name.as_str())
            .collect::<Vec<_>>(),
        ["a", "c"]
    );
    let page = v3
        .applications(&ApplicationsQuery::new().with_offset(1).with_limit(1))
        .await
        .unwrap();
    assert_eq!(page.total, Some(3));
    assert_eq!(page.applications[0].app_name, "b");
    assert_eq!(v3.feature_toggle("my-flag").await.unwrap().last_hour.yes, 6);
    v3_one.assert_async().await;
    assert!(v3_apps.calls_async().await >= 2);
    // 4.2+ endpoints do not exist on v3: no request is made.
    assert!(matches!(
        v3.feature_metrics("my-flag").await,
        Err(Error::Unsupported { status: None, .. })
    ));

    // 4.0 – 5.9: the server filters by strategy.
    let v4_apps = server
        .mock_async(|when, then| {
            when.method(GET)
                .path("/api/admin/metrics/applications")
                .query_param("strategyName", "custom");
            then.status(200)
                .header("content-type", "application/json")
                .body(r#"{"applications":[{"appName":"a","strategies":["custom"]}]}"#);
        })
        .await;
    let v4 = client_for(&server, ServerVersion::new(4, 19, 5));
    assert_eq!(
        v4.applications_by_strategy("custom").await.unwrap().len(),
        1
    );
    v4_apps.assert_async().await;
}

#[tokio::test]
async fn a_404_on_a_path_the_configured_version_has_is_not_found_naming_it() {
    let server = MockServer::start_async().await;
    server
        .mock_async(|when, then| {
            when.method(GET).path("/api/admin/client-metrics/features/my-flag");
            then.status(404)
                .header("content-type", "text/html; charset=utf-8")
                .body("<!DOCTYPE html><html><body><pre>Cannot GET /api/admin/client-metrics/features/my-flag</pre></body></html>");
        })
        .await;
    // Configured as 8.x, but the server is older than it claims.
    let err = client(&server)
        .feature_metrics("my-flag")
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NotFound { .. }), "{err:?}");
    assert!(err.to_string().contains("Cannot GET"), "{err}");
    assert_eq!(
        err.detail::<UnleashError>().unwrap().diagnosis,
        Some(Diagnosis::NoSuchEndpoint {
            request: "GET /api/admin/client-metrics/features/my-flag".into(),
            configured: ServerVersion::LATEST,
        })
    );
}

#[tokio::test]
async fn a_seed_era_404_names_the_path_requested_and_does_not_contradict_the_version() {
    let server = MockServer::start_async().await;
    server
        .mock_async(|when, then| {
            when.method(GET).path("/api/client/seen-toggles");
            then.status(404)
                .header("content-type", "text/html; charset=utf-8")
                .body("<!DOCTYPE html><html><body><pre>Cannot GET /api/client/seen-toggles</pre></body></html>");
        })
        .await;
    let v2 = ServerVersion::new(2, 0, 0);
    let err = client_for(&server, v2).seen_toggles().await.unwrap_err();
    assert!(matches!(err, Error::NotFound { .. }), "{err:?}");
    let text = err.to_string();
    assert!(text.contains("GET /api/client/seen-toggles"), "{text}");
    assert!(!text.contains("/api/admin/metrics/seen-toggles"), "{text}");
    assert!(!text.contains("needs Unleash v2"), "{text}");
    assert_eq!(
        err.detail::<UnleashError>().unwrap().diagnosis,
        Some(Diagnosis::NoSuchEndpoint {
            request: "GET /api/client/seen-toggles".into(),
            configured: v2,
        })
    );
}

#[tokio::test]
async fn an_object_without_its_list_is_a_decode_error_not_an_empty_success() {
    let server = MockServer::start_async().await;
    server
        .mock_async(|when, then| {
            when.method(GET);
            then.status(200)
                .header("content-type", "application/json")
                .body(r#"{"error":"maintenance"}"#);
        })
        .await;
    let client = client(&server);
    let decode = |result: Result<(), Error>, what: &str| match result {
        Err(Error::Decode { .. }) => {}
        other => panic!("{what}: expected a decode error, got {other:?}"),
    };
    decode(
        client
            .applications(&ApplicationsQuery::new())
            .await
            .map(drop),
        "applications",
    );
    decode(
        client.all_applications().await.map(drop),
        "all_applications",
    );
    decode(client.application_overview("a").await.map(drop), "overview");
    decode(
        client
            .application_instances("a", "development")
            .await
            .map(drop),
        "instances",
    );
    decode(
        client.feature_metrics("f").await.map(drop),
        "feature_metrics",
    );
    decode(
        client.feature_metrics_raw("f", 2).await.map(drop),
        "feature_metrics_raw",
    );
    decode(client.unknown_flags().await.map(drop), "unknown_flags");
    decode(client.application("a").await.map(drop), "application");
    let v4 = client_for(&server, ServerVersion::new(4, 3, 0));
    decode(
        v4.applications(&ApplicationsQuery::new()).await.map(drop),
        "applications v4.3",
    );
    decode(v4.feature_toggles().await.map(drop), "feature_toggles");
    decode(v4.feature_toggle("f").await.map(drop), "feature_toggle");
    decode(v4.seen_toggles().await.map(drop), "seen_toggles");
    decode(v4.seen_apps().await.map(drop), "seen_apps");
}

#[tokio::test]
async fn v3_admin_reads_log_in_with_a_cookie() {
    let server = MockServer::start_async().await;
    let login = server
        .mock_async(|when, then| {
            when.method(POST)
                .path("/api/admin/login")
                .json_body(serde_json::json!({"email": "ops@example.com"}));
            then.status(200)
                .header("set-cookie", "unleash-session=abc123; path=/; httponly")
                .header("set-cookie", "unleash-session.sig=xyz; path=/; httponly")
                .header("content-type", "application/json")
                .body(r#"{"email":"ops@example.com"}"#);
        })
        .await;
    let seen = server
        .mock_async(|when, then| {
            when.method(GET)
                .path("/api/admin/metrics/seen-toggles")
                .header("cookie", "unleash-session=abc123; unleash-session.sig=xyz")
                .header_missing("authorization");
            then.status(200)
                .header("content-type", "application/json")
                .body(r#"[{"appName":"app317","seenToggles":["my-flag"],"metricsCount":7}]"#);
        })
        .await;
    let client = UnleashClient::builder()
        .with_url(server.base_url())
        .with_admin_login("ops@example.com")
        .with_server_version(ServerVersion::new(3, 17, 6))
        .build()
        .unwrap();
    assert_eq!(client.seen_toggles().await.unwrap()[0].app_name, "app317");
    assert_eq!(client.seen_toggles().await.unwrap()[0].metrics_count, 7);
    assert_eq!(login.calls_async().await, 1, "the session is reused");
    assert_eq!(seen.calls_async().await, 2);
    assert!(!format!("{client:?}").contains("ops@example.com"));
}

#[tokio::test]
async fn malformed_and_unexpected_bodies_are_typed() {
    let server = MockServer::start_async().await;
    server
        .mock_async(|when, then| {
            when.method(GET)
                .path("/api/admin/client-metrics/features/truncated");
            then.status(200)
                .header("content-type", "application/json")
                .body(r#"{"version":1,"featureName":"truncated","lastHourUsage":[{"environment":"#);
        })
        .await;
    server
        .mock_async(|when, then| {
            when.method(GET).path("/api/admin/client-metrics/features/wrong-type/raw");
            then.status(200)
                .header("content-type", "application/json")
                .body(r#"{"data":[{"featureName":"f","appName":"a","environment":"e","timestamp":"2026-11-22T09:00:00.000Z","yes":"seven","no":3}]}"#);
        })
        .await;
    server
        .mock_async(|when, then| {
            when.method(GET).path("/api/admin/client-metrics/features/html");
            then.status(502)
                .header("content-type", "text/html")
                .body("<html><head><title>502 Bad Gateway</title></head><body><h1>Bad Gateway</h1></body></html>");
        })
        .await;
    server
        .mock_async(|when, then| {
            when.method(GET)
                .path("/api/admin/client-metrics/features/empty-500");
            then.status(500);
        })
        .await;
    let client = client(&server);
    let err = client.feature_metrics("truncated").await.unwrap_err();
    assert!(matches!(err, Error::Decode { .. }), "{err:?}");
    let err = client
        .feature_metrics_raw("wrong-type", 1)
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::Decode { ref path, .. } if path == "data[0].yes"),
        "{err:?}"
    );
    let err = client.feature_metrics("html").await.unwrap_err();
    assert_eq!(err.status(), Some(502));
    assert!(err.to_string().contains("Bad Gateway"), "{err}");
    assert!(!err.to_string().contains('<'), "{err}");
    let err = client.feature_metrics("empty-500").await.unwrap_err();
    assert_eq!(err.status(), Some(500));
    assert!(err.is_retryable());
}

#[tokio::test]
async fn timeouts_and_refused_connections() {
    let server = MockServer::start_async().await;
    server
        .mock_async(|when, then| {
            when.method(GET).path("/api/admin/metrics/unknown-flags");
            then.status(200)
                .delay(Duration::from_millis(500))
                .body("{}");
        })
        .await;
    let slow = UnleashClient::builder()
        .with_url(server.base_url())
        .with_admin_token(ADMIN)
        .with_retry(RetryConfig::none())
        .with_client_options(ClientOptions::new().with_timeout(Duration::from_millis(100)))
        .build()
        .unwrap();
    assert!(matches!(
        slow.unknown_flags().await,
        Err(Error::Timeout { .. })
    ));

    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let refused = UnleashClient::builder()
        .with_url(format!("http://127.0.0.1:{port}"))
        .with_api_token(CLIENT)
        .with_app_name("x")
        .with_retry(RetryConfig::none())
        .build()
        .unwrap();
    let err = refused.register().await.unwrap_err();
    assert!(matches!(err, Error::Transport { .. }), "{err:?}");
    assert!(err.is_retryable());
}

#[tokio::test]
async fn a_5xx_retry_after_reaches_the_error() {
    let server = MockServer::start_async().await;
    let mock = server
        .mock_async(|when, then| {
            when.method(POST).path("/api/client/metrics");
            then.status(503)
                .header("retry-after", "7")
                .body("maintenance");
        })
        .await;
    let bucket = MetricsBucket::new(chrono::Utc::now()).with_toggle("f", ToggleCount::new(1, 0));
    let err = client(&server).send_metrics(&bucket).await.unwrap_err();
    assert_eq!(err.status(), Some(503));
    assert_eq!(err.retry_after(), Some(std::time::Duration::from_secs(7)));
    assert!(err.to_string().contains("retry after 7s"), "{err}");
    assert_eq!(mock.calls_async().await, 1);
}

#[tokio::test]
async fn all_applications_follows_the_pages_to_the_total() {
    let apps = |from: usize, to: usize| {
        let list: Vec<Value> = (from..to)
            .map(|i| serde_json::json!({ "appName": format!("app-{i:04}") }))
            .collect();
        serde_json::json!({ "applications": list, "total": 1500 }).to_string()
    };
    let server = MockServer::start_async().await;
    let first = server
        .mock_async(|when, then| {
            when.method(GET)
                .path("/api/admin/metrics/applications")
                .query_param("offset", "0")
                .query_param("limit", "1000");
            then.status(200)
                .header("content-type", "application/json")
                .body(apps(0, 1000));
        })
        .await;
    let second = server
        .mock_async(|when, then| {
            when.method(GET)
                .path("/api/admin/metrics/applications")
                .query_param("offset", "1000")
                .query_param("limit", "1000");
            then.status(200)
                .header("content-type", "application/json")
                .body(apps(1000, 1500));
        })
        .await;
    let all = client(&server).all_applications().await.unwrap();
    assert_eq!(all.len(), 1500);
    assert_eq!(all[1499].app_name, "app-1499");
    first.assert_async().await;
    second.assert_async().await;

    // A server that answers the whole list without a total does not page: asked once.
    let unpaged = MockServer::start_async().await;
    let whole = unpaged
        .mock_async(|when, then| {
            when.method(GET).path("/api/admin/metrics/applications");
            then.status(200)
                .header("content-type", "application/json")
                .body(r#"{"applications":[{"appName":"a"},{"appName":"b"}]}"#);
        })
        .await;
    assert_eq!(client(&unpaged).all_applications().await.unwrap().len(), 2);
    whole.assert_calls_async(1).await;
}
