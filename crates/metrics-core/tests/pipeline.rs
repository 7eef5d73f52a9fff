//! The shared HTTP pipeline against httpmock and raw sockets: retries, limits, error mapping.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use httpmock::prelude::*;
use httpmock::{HttpMockRequest, HttpMockResponse};
use metrics_core::http::{HttpClient, Request};
use metrics_core::{Auth, BackoffConfig, ClientOptions, Error, RetryConfig, Secret};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

const TOKEN: &str = "tok-7f3a9c-very-secret";

fn fast_retry() -> RetryConfig {
    RetryConfig::default().with_backoff(BackoffConfig {
        init_backoff: Duration::from_millis(10),
        max_backoff: Duration::from_millis(50),
        base: 2.0,
    })
}

fn client(base: &str) -> HttpClient {
    HttpClient::builder("test", base)
        .with_auth(Auth::Bearer(Secret::from(TOKEN)))
        .with_retry(fast_retry())
        .build()
        .unwrap()
}

/// A responder that answers with `statuses` in turn, then 200 `{"ok":true}`.
fn sequence(
    statuses: &'static [u16],
) -> impl Fn(&HttpMockRequest) -> HttpMockResponse + Send + Sync {
    let calls = Arc::new(AtomicUsize::new(0));
    move |_| {
        let n = calls.fetch_add(1, Ordering::SeqCst);
        match statuses.get(n) {
            Some(&status) => HttpMockResponse::builder()
                .status(status)
                .header("retry-after", "1")
                .body("busy")
                .build(),
            None => HttpMockResponse::builder()
                .status(200)
                .body(r#"{"ok":true}"#)
                .build(),
        }
    }
}

#[tokio::test]
async fn service_unavailable_then_ok_takes_exactly_two_calls() {
    let server = MockServer::start_async().await;
    let mock = server
        .mock_async(|when, then| {
            when.method(GET).path("/v2/metrics");
            then.respond_with(sequence(&[503]));
        })
        .await;
    let http = client(&server.url("/v2"));
    let body: serde_json::Value = http.send_json(Request::get("metrics")).await.unwrap();
    assert_eq!(body["ok"], true);
    assert_eq!(mock.calls_async().await, 2);
}

#[tokio::test]
async fn retry_after_is_honoured_on_429() {
    let server = MockServer::start_async().await;
    let mock = server
        .mock_async(|when, then| {
            when.method(POST).path("/metrics");
            then.respond_with(sequence(&[429]));
        })
        .await;
    let http = client(&server.base_url());
    let started = Instant::now();
    // A POST: 429 means the server did not process it, so even a non-idempotent request
    // is sent again, after the wait the server asked for.
    http.send(Request::post("metrics")).await.unwrap();
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "waited {:?}",
        started.elapsed()
    );
    assert_eq!(mock.calls_async().await, 2);
}

#[tokio::test]
async fn retry_after_beyond_the_budget_returns_at_once() {
    let server = MockServer::start_async().await;
    let mock = server
        .mock_async(|when, then| {
            when.path("/x");
            then.status(429)
                .header("retry-after", "120")
                .body(r#"{"message":"slow down"}"#);
        })
        .await;
    let http = client(&server.base_url());
    let err = http.send(Request::get("x")).await.unwrap_err();
    assert_eq!(err.retry_after(), Some(Duration::from_secs(120)));
    assert!(matches!(err, Error::RateLimited { ref message, .. } if message == "slow down"));
    assert_eq!(mock.calls_async().await, 1);
}

#[tokio::test]
async fn non_idempotent_post_is_not_retried_after_a_timeout() {
    let server = MockServer::start_async().await;
    let mock = server
        .mock_async(|when, then| {
            when.path("/slow");
            then.status(200)
                .delay(Duration::from_millis(1500))
                .body("{}");
        })
        .await;
    let http = client(&server.base_url());
    let request = Request::post("slow").with_timeout(Duration::from_millis(200));
    let err = http.send(request).await.unwrap_err();
    assert!(matches!(err, Error::Timeout { .. }), "{err:?}");
    assert_eq!(mock.calls_async().await, 1);

    // The same request marked idempotent is retried: the difference is the idempotency.
    let request = Request::get("slow").with_timeout(Duration::from_millis(200));
    let err = http.send(request).await.unwrap_err();
    assert!(matches!(err, Error::Timeout { .. }));
    assert_eq!(mock.calls_async().await, 1 + 4);
}

#[tokio::test]
async fn client_errors_are_not_retried() {
    let server = MockServer::start_async().await;
    let mock = server
        .mock_async(|when, then| {
            when.path("/k");
            then.status(404)
                .header("content-type", "application/json")
                .body(r#"{"code":"NotFound","message":"Access key \"9\" not found"}"#);
        })
        .await;
    let err = client(&server.base_url())
        .send(Request::get("k"))
        .await
        .unwrap_err();
    assert!(matches!(
        err,
        Error::NotFound { ref code, ref message, .. }
            if code.as_deref() == Some("NotFound") && message == "Access key \"9\" not found"
    ));
    assert_eq!(mock.calls_async().await, 1);
}

#[tokio::test]
async fn oversized_body_is_an_error() {
    let server = MockServer::start_async().await;
    server
        .mock_async(|when, then| {
            when.path("/big");
            then.status(200).body(vec![b'x'; 2 * 1024 * 1024]);
        })
        .await;
    let http = HttpClient::builder("test", server.base_url())
        .with_options(&ClientOptions::new().with_max_response_bytes(64 * 1024))
        .build()
        .unwrap();
    let err = http.send(Request::get("big")).await.unwrap_err();
    assert!(
        matches!(err, Error::BodyTooLarge { limit: 65_536, .. }),
        "{err:?}"
    );
}

/// A one-shot raw HTTP server: reads one request, writes `response`, closes.
async fn raw_server(response: Vec<u8>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let response = response.clone();
            tokio::spawn(async move {
                let mut buffer = [0u8; 4096];
                let _ = socket.read(&mut buffer).await;
                let _ = socket.write_all(&response).await;
                let _ = socket.shutdown().await;
            });
        }
    });
    format!("http://{address}")
}

#[tokio::test]
async fn oversized_chunked_body_stops_at_the_limit() {
    // No Content-Length: the limit is enforced while streaming.
    let mut response = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    for _ in 0..64 {
        response.extend_from_slice(b"400\r\n");
        response.extend_from_slice(&[b'y'; 0x400]);
        response.extend_from_slice(b"\r\n");
    }
    response.extend_from_slice(b"0\r\n\r\n");
    let base = raw_server(response).await;
    let http = HttpClient::builder("test", base)
        .with_options(&ClientOptions::new().with_max_response_bytes(8 * 1024))
        .build()
        .unwrap();
    let err = http.send(Request::get("x")).await.unwrap_err();
    assert!(
        matches!(err, Error::BodyTooLarge { limit: 8192, .. }),
        "{err:?}"
    );
}

#[tokio::test]
async fn truncated_body_is_a_transport_error() {
    let base =
        raw_server(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{\"keys\":[".to_vec()).await;
    let http = HttpClient::builder("test", base)
        .with_retry(RetryConfig::none())
        .build()
        .unwrap();
    let err = http.send(Request::get("x")).await.unwrap_err();
    assert!(matches!(err, Error::Transport { .. }), "{err:?}");
    assert!(
        err.to_string().contains("reading the response body failed"),
        "{err}"
    );
}

#[tokio::test]
async fn html_502_page_becomes_an_api_error_with_a_truncated_body() {
    let server = MockServer::start_async().await;
    let page = format!(
        "<html>\n<head><title>502 Bad Gateway</title></head>\n<body>{}</body></html>",
        "<p>upstream went away</p>".repeat(50)
    );
    server
        .mock_async(|when, then| {
            when.path("/gw");
            then.status(502)
                .header("content-type", "text/html")
                .body(page);
        })
        .await;
    let http = HttpClient::builder("test", server.base_url())
        .with_retry(RetryConfig::none())
        .build()
        .unwrap();
    let err = http.send(Request::get("gw")).await.unwrap_err();
    let Error::Api {
        status,
        ref message,
        ..
    } = err
    else {
        panic!("expected Api, got {err:?}");
    };
    assert_eq!(status, 502);
    assert!(
        message.starts_with("<html> <head><title>502 Bad Gateway</title>"),
        "{message}"
    );
    assert!(message.ends_with('…'));
    assert!(message.chars().count() <= 201);
    assert!(err.is_retryable());
}

#[tokio::test]
async fn malformed_json_names_the_path() {
    let server = MockServer::start_async().await;
    server
        .mock_async(|when, then| {
            when.path("/t");
            then.status(200)
                .body(r#"{"bytesTransferredByUserId":{"0":12,"1":"lots"}}"#);
        })
        .await;
    #[derive(Debug, serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    #[allow(dead_code, reason = "only decoding is tested")]
    struct Transfer {
        bytes_transferred_by_user_id: std::collections::BTreeMap<String, u64>,
    }
    let err = client(&server.base_url())
        .send_json::<Transfer>(Request::get("t"))
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::Decode { ref path, .. } if path == "bytesTransferredByUserId.1"),
        "{err:?}"
    );
}

#[tokio::test]
async fn html_where_json_was_expected_says_so() {
    let server = MockServer::start_async().await;
    server
        .mock_async(|when, then| {
            when.path("/p");
            then.status(200)
                .body("<html><body>captive portal</body></html>");
        })
        .await;
    let err = client(&server.base_url())
        .send_json::<serde_json::Value>(Request::get("p"))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Decode { .. }));
    assert!(err.to_string().contains("starts with `<html>"), "{err}");
}

#[tokio::test]
async fn refused_connection_is_a_transport_error() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    drop(listener);
    let http = HttpClient::builder("test", format!("http://{address}"))
        .with_retry(RetryConfig::none())
        .build()
        .unwrap();
    let err = http.send(Request::post("metrics")).await.unwrap_err();
    assert!(matches!(err, Error::Transport { .. }), "{err:?}");
    assert!(err.to_string().contains("could not connect"), "{err}");
    assert!(err.is_retryable());
}

#[tokio::test]
async fn credentials_are_sent_but_never_shown() {
    let server = MockServer::start_async().await;
    let mock = server
        .mock_async(|when, then| {
            when.path("/secure")
                .header("authorization", format!("Bearer {TOKEN}"));
            then.status(401).body("Unauthorized");
        })
        .await;
    let http = client(&server.base_url());
    let err = http.send(Request::get("secure")).await.unwrap_err();
    assert_eq!(mock.calls_async().await, 1);
    assert!(matches!(err, Error::Unauthenticated { .. }));
    for shown in [format!("{http:?}"), format!("{err:?}"), format!("{err}")] {
        assert!(!shown.contains(TOKEN), "{shown}");
    }

    let options = ClientOptions::new()
        .with_default_header("x-api-key", TOKEN)
        .unwrap();
    assert!(!format!("{options:?}").contains(TOKEN));
    let basic = HttpClient::builder("test", server.base_url())
        .with_auth(Auth::Basic {
            username: Secret::from(TOKEN),
            password: Secret::from(""),
        })
        .build()
        .unwrap();
    assert!(!format!("{basic:?}").contains(TOKEN));
}

#[tokio::test]
async fn secret_path_never_appears_in_transport_errors() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    drop(listener);
    let http = HttpClient::builder("outline", format!("http://{address}/Xy7SecretPrefix"))
        .with_secret_path(true)
        .with_retry(RetryConfig::none())
        .build()
        .unwrap();
    let err = http.send(Request::get("server")).await.unwrap_err();
    let mut shown = vec![format!("{err}"), format!("{err:?}"), format!("{http:?}")];
    let mut source = std::error::Error::source(&err);
    while let Some(inner) = source {
        shown.push(inner.to_string());
        source = inner.source();
    }
    for text in shown {
        assert!(!text.contains("Xy7SecretPrefix"), "{text}");
    }
}

#[tokio::test]
async fn secret_path_is_scrubbed_from_echoed_error_messages() {
    let server = MockServer::start_async().await;
    server
        .mock_async(|when, then| {
            when.path_includes("Xy7SecretPrefix");
            then.status(404).body(
                r#"{"code":"ResourceNotFound","message":"/Xy7SecretPrefix/nope does not exist"}"#,
            );
        })
        .await;
    let http = HttpClient::builder("outline", server.url("/Xy7SecretPrefix"))
        .with_secret_path(true)
        .build()
        .unwrap();
    let err = http.send(Request::get("nope")).await.unwrap_err();
    assert!(
        matches!(err, Error::NotFound { ref message, .. } if message == "/***/nope does not exist"),
        "{err:?}"
    );
}

#[tokio::test]
async fn retry_after_of_a_503_is_kept_on_the_error() {
    let server = MockServer::start_async().await;
    server
        .mock_async(|when, then| {
            when.path("/busy");
            then.status(503)
                .header("retry-after", "600")
                .body("maintenance");
        })
        .await;
    let err = client(&server.base_url())
        .send(Request::post("busy"))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Api { status: 503, .. }), "{err:?}");
    assert_eq!(err.retry_after(), Some(Duration::from_secs(600)));
    assert!(!err.is_connect());
}

#[tokio::test]
async fn connect_failures_are_told_apart_from_maybe_sent_requests() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    drop(listener);
    let http = HttpClient::builder("test", format!("http://{address}"))
        .with_retry(RetryConfig::none())
        .build()
        .unwrap();
    let refused = http.send(Request::post("metrics")).await.unwrap_err();
    assert!(refused.is_connect(), "{refused:?}");

    let base = raw_server(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{".to_vec()).await;
    let http = HttpClient::builder("test", base)
        .with_retry(RetryConfig::none())
        .build()
        .unwrap();
    let broken = http.send(Request::post("metrics")).await.unwrap_err();
    assert!(!broken.is_connect(), "{broken:?}");
}
