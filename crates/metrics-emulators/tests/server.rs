//! The shared emulator server: request log, faults, stop and restart, TLS.

use std::time::Duration;

use axum::Router;
use axum::routing::get;
use metrics_emulators::{EmulatorServer, Fault};

fn router() -> Router {
    Router::new().route("/ping", get(|| async { "pong" }))
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap()
}

#[tokio::test]
async fn logs_requests_and_injects_faults_in_order() {
    let server = EmulatorServer::start(router()).await.unwrap();
    let url = format!("{}/ping?x=1", server.base_url());
    let http = client();

    server.faults().inject(
        Fault::Status {
            status: 429,
            retry_after: Some(7),
            body: "{\"message\":\"slow down\"}".into(),
        },
        1,
    );
    let limited = http.get(&url).send().await.unwrap();
    assert_eq!(limited.status(), 429);
    assert_eq!(limited.headers()["retry-after"], "7");
    assert_eq!(limited.headers()["content-type"], "application/json");

    server.faults().inject(Fault::MalformedBody, 1);
    let malformed = http.get(&url).send().await.unwrap().text().await.unwrap();
    assert!(serde_json::from_str::<serde_json::Value>(&malformed).is_err());

    server.faults().inject(Fault::DropConnection, 1);
    let dropped = match http.get(&url).send().await {
        Ok(response) => response.bytes().await.err(),
        Err(error) => Some(error),
    };
    assert!(
        dropped.is_some(),
        "a dropped connection must not look like a full response"
    );

    assert_eq!(
        http.get(&url).send().await.unwrap().text().await.unwrap(),
        "pong"
    );
    let requests = server.requests().requests();
    assert_eq!(server.requests().count(), 4);
    assert_eq!(requests[0].uri, "/ping?x=1");
    assert_eq!(requests[0].method, "GET");
}

#[tokio::test]
async fn path_faults_skip_then_apply() {
    let server = EmulatorServer::start(router()).await.unwrap();
    server.faults().inject_on(
        "/ping",
        Fault::Status {
            status: 503,
            retry_after: None,
            body: String::new(),
        },
        2,
        1,
    );
    let http = client();
    let mut statuses = Vec::new();
    for _ in 0..4 {
        statuses.push(
            http.get(format!("{}/ping", server.base_url()))
                .send()
                .await
                .unwrap()
                .status()
                .as_u16(),
        );
    }
    assert_eq!(statuses, [200, 200, 503, 200]);
}

#[tokio::test]
async fn stop_refuses_connections_and_restart_keeps_the_port() {
    let mut server = EmulatorServer::start(router()).await.unwrap();
    let url = format!("{}/ping", server.base_url());
    let http = client();
    assert!(http.get(&url).send().await.is_ok());
    server.stop();
    assert!(!server.is_running());
    let refused = reqwest::Client::new().get(&url).send().await.unwrap_err();
    assert!(refused.is_connect() || refused.is_request(), "{refused:?}");
    server.restart().await.unwrap();
    assert_eq!(
        reqwest::Client::new()
            .get(&url)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
        "pong"
    );
}

#[cfg(feature = "tls")]
#[tokio::test]
async fn serves_tls_with_a_self_signed_certificate() {
    let cert = metrics_emulators::SelfSignedCert::generate();
    assert_eq!(cert.sha256_hex.len(), 64);
    assert!(
        cert.sha256_hex
            .chars()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_lowercase())
    );
    let server = EmulatorServer::start_tls(router(), cert.config.clone())
        .await
        .unwrap();
    assert!(server.base_url().starts_with("https://127.0.0.1:"));

    // A normal client rejects the self-signed certificate, and no request reaches the server.
    let err = client()
        .get(format!("{}/ping", server.base_url()))
        .send()
        .await
        .unwrap_err();
    assert!(err.is_connect(), "{err:?}");
    assert_eq!(server.requests().count(), 0);

    let trusting = reqwest::Client::builder()
        .danger_accept_invalid_certs(true)
        .build()
        .unwrap();
    let body = trusting
        .get(format!("{}/ping", server.base_url()))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(body, "pong");
    assert_eq!(server.requests().count(), 1);
}
