//! Failure paths through httpmock and the emulator's faults: malformed and wrongly shaped
//! JSON, HTML error pages, error statuses with and without a body, timeouts, refused
//! connections, configuration errors, and secrets kept out of every rendering.

use std::time::Duration;

use coopr_client::{CooprClient, CooprClientBuilder, CooprErrorKind, NodeUsageQuery};
use httpmock::Method::GET;
use httpmock::MockServer;
use metrics_core::{ClientOptions, Error, RetryConfig};
use metrics_emulators::Fault;
use metrics_emulators::coopr::CooprEmulator;

const SECRET: &str = "sEcReT-ApI-kEy-42";

fn builder(base_url: &str) -> CooprClientBuilder {
    CooprClient::builder()
        .with_base_url(base_url)
        .with_user_id("admin")
        .with_tenant("superadmin")
        .with_api_key(SECRET)
        .with_retry(RetryConfig::none())
}

async fn queues_answer(status: u16, content_type: Option<&str>, body: &str) -> Error {
    let server = MockServer::start_async().await;
    server
        .mock_async(|when, then| {
            when.method(GET).path("/v2/metrics/queues");
            let then = then.status(status).body(body);
            if let Some(ct) = content_type {
                then.header("Content-Type", ct);
            }
        })
        .await;
    builder(&server.base_url())
        .build()
        .unwrap()
        .queue_metrics()
        .await
        .unwrap_err()
}

#[tokio::test]
async fn malformed_json_is_a_decode_error() {
    let server = MockServer::start_async().await;
    server
        .mock_async(|when, then| {
            when.method(GET).path("/v2/metrics/nodes/usage");
            then.status(200)
                .header("Content-Type", "application/json")
                .body(r#"{"start":1,"end":2,"data":[{"time":1,"value":"#);
        })
        .await;
    let err = builder(&server.base_url())
        .build()
        .unwrap()
        .node_usage(&NodeUsageQuery::new())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Decode { .. }), "{err}");
}

#[tokio::test]
async fn wrongly_shaped_json_names_the_field() {
    let server = MockServer::start_async().await;
    server
        .mock_async(|when, then| {
            when.method(GET).path("/v2/metrics/queues");
            then.status(200)
                .header("Content-Type", "application/json")
                .body(r#"{"tenantA":{"queued":2,"inProgress":"one","total":3}}"#);
        })
        .await;
    let err = builder(&server.base_url())
        .build()
        .unwrap()
        .queue_metrics()
        .await
        .unwrap_err();
    match err {
        Error::Decode { ref path, .. } => assert_eq!(path, "tenantA.inProgress"),
        other => panic!("{other}"),
    }
}

#[tokio::test]
async fn html_error_page_keeps_the_status() {
    let err = queues_answer(
        502,
        Some("text/html"),
        "<html>\n<head><title>502 Bad Gateway</title></head>\n<body>nginx</body></html>",
    )
    .await;
    assert!(
        matches!(err, Error::Api { status: 502, ref code, .. } if code.is_none()),
        "{err}"
    );
    assert!(err.to_string().contains("502 Bad Gateway"));
    assert!(!err.to_string().contains('\n'));
}

#[tokio::test]
async fn error_statuses_with_and_without_body() {
    let err = queues_answer(
        404,
        Some("text/plain; charset=utf-8"),
        "Tenant does not exist.",
    )
    .await;
    assert!(matches!(err, Error::NotFound { .. }));
    assert_eq!(
        CooprErrorKind::of(&err),
        Some(CooprErrorKind::UnknownTenant)
    );

    let err = queues_answer(401, None, "").await;
    assert!(matches!(err, Error::Unauthenticated { ref message, .. } if message == "Unauthorized"));
    assert_eq!(CooprErrorKind::of(&err), None);

    let err = queues_answer(503, None, "").await;
    assert!(matches!(err, Error::Api { status: 503, .. }));
    assert!(err.is_retryable());

    // A JSON-looking body stays text: Coopr never sends JSON errors.
    let err = queues_answer(500, Some("application/json"), r#"{"message":"boom"}"#).await;
    assert!(err.to_string().contains(r#"{"message":"boom"}"#), "{err}");

    let err = queues_answer(
        500,
        Some("text/plain; charset=utf-8"),
        "Exception Encountered while processing request : / by zero",
    )
    .await;
    assert_eq!(
        CooprErrorKind::of(&err),
        Some(CooprErrorKind::ServerException)
    );
}

#[tokio::test]
async fn method_not_allowed_from_routing() {
    let err = queues_answer(405, None, "/v2/metrics/queues").await;
    assert_eq!(
        CooprErrorKind::of(&err),
        Some(CooprErrorKind::MethodNotAllowed)
    );
}

#[tokio::test]
async fn timeout_is_a_timeout_error() {
    let emulator = CooprEmulator::start().await.unwrap();
    emulator
        .faults()
        .always(Fault::Delay(Duration::from_secs(5)));
    let err = builder(&emulator.api_url())
        .with_client_options(ClientOptions::new().with_timeout(Duration::from_millis(200)))
        .build()
        .unwrap()
        .queue_metrics()
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Timeout { .. }), "{err}");
}

#[tokio::test]
async fn dropped_connection_and_malformed_body_from_the_emulator() {
    let emulator = CooprEmulator::start().await.unwrap();
    let client = builder(&emulator.api_url()).build().unwrap();
    emulator.faults().inject(Fault::DropConnection, 1);
    let err = client.queue_metrics().await.unwrap_err();
    assert!(matches!(err, Error::Transport { .. }), "{err}");
    emulator.faults().inject(Fault::MalformedBody, 1);
    let err = client.queue_metrics().await.unwrap_err();
    assert!(matches!(err, Error::Decode { .. }), "{err}");
    let err = client.queue_metrics().await;
    assert!(err.is_ok(), "{err:?}");
}

#[tokio::test]
async fn refused_connection_is_a_transport_error() {
    let mut emulator = CooprEmulator::start().await.unwrap();
    let url = emulator.api_url();
    emulator.stop();
    let err = builder(&url)
        .build()
        .unwrap()
        .queue_metrics()
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Transport { .. }), "{err}");
    assert!(err.is_retryable());
    assert!(!err.to_string().contains(SECRET));
}

#[test]
fn missing_or_bad_settings_are_config_errors() {
    let cases = [
        CooprClient::builder()
            .with_user_id("admin")
            .with_tenant("t"),
        CooprClient::builder()
            .with_base_url("http://h")
            .with_tenant("t"),
        CooprClient::builder()
            .with_base_url("http://h")
            .with_user_id("  ")
            .with_tenant("t"),
        CooprClient::builder()
            .with_base_url("http://h")
            .with_user_id("admin"),
        CooprClient::builder()
            .with_base_url("ftp://h")
            .with_user_id("admin")
            .with_tenant("t"),
        CooprClient::builder()
            .with_base_url("http://h")
            .with_user_id("admin")
            .with_tenant("t")
            .with_api_key("line\nbreak"),
    ];
    for builder in cases {
        let shown = format!("{builder:?}");
        let err = builder.build().unwrap_err();
        assert!(matches!(err, Error::Config { .. }), "{shown}: {err}");
    }
}

#[tokio::test]
async fn secrets_never_show() {
    let server = MockServer::start_async().await;
    server
        .mock_async(|when, then| {
            when.method(GET).path("/v2/metrics/queues");
            then.status(403).body("Forbidden to get queue metrics.");
        })
        .await;
    let builder = builder(&server.base_url());
    let client = builder.clone().build().unwrap();
    let err = client.queue_metrics().await.unwrap_err();
    let bad_config = builder
        .clone()
        .with_base_url("not a url")
        .build()
        .unwrap_err();
    for shown in [
        format!("{builder:?}"),
        format!("{client:?}"),
        format!("{err:?}"),
        format!("{err}"),
        format!("{bad_config:?}"),
        format!("{bad_config}"),
    ] {
        assert!(!shown.contains(SECRET), "{shown}");
    }
    assert!(format!("{client:?}").contains("superadmin"));
}
