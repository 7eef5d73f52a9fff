//! The pipeline under hostile answers: secrets echoed back, bodies over the limit, a
//! connection closed before any answer, a panicking source. Each test names the class of
//! failure it guards.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use metrics_core::http::{HttpClient, Request};
use metrics_core::{
    Aggregator, Auth, BackoffConfig, ClientOptions, Error, Jitter, MetricsSource, Processing,
    Query, Result, RetryConfig, Secret, Series, async_trait,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const SECRET_PATH: &str = "AbCdEfGhIjKlMnOpQrStUv";
const TOKEN: &str = "tok-canary-5c1f9e";

fn fast_retry() -> RetryConfig {
    RetryConfig::default()
        .with_backoff(BackoffConfig {
            init_backoff: Duration::from_millis(5),
            max_backoff: Duration::from_millis(20),
            base: 2.0,
        })
        .with_jitter(Jitter::fixed(0.0))
}

/// Reads one request head (and any body announced by Content-Length) from `stream`; returns
/// the head as text, or `None` when the peer closed.
async fn read_request(stream: &mut TcpStream) -> Option<String> {
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buffer[..end]).into_owned();
            let length = head
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                })
                .unwrap_or(0);
            while buffer.len() < end + 4 + length {
                let n = stream.read(&mut chunk).await.ok()?;
                if n == 0 {
                    return None;
                }
                buffer.extend_from_slice(&chunk[..n]);
            }
            return Some(head);
        }
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buffer.extend_from_slice(&chunk[..n]);
    }
}

/// A server that answers every request with `answer(request_head, request_number)`; `None`
/// closes the connection without a byte. Counts requests.
async fn scripted_server(
    answer: impl Fn(&str, usize) -> Option<Vec<u8>> + Send + Sync + 'static,
) -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let count = Arc::new(AtomicUsize::new(0));
    let seen = Arc::clone(&count);
    let answer = Arc::new(answer);
    tokio::spawn(async move {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else {
                return;
            };
            let seen = Arc::clone(&seen);
            let answer = Arc::clone(&answer);
            tokio::spawn(async move {
                while let Some(head) = read_request(&mut stream).await {
                    let n = seen.fetch_add(1, Ordering::SeqCst);
                    match answer(&head, n) {
                        Some(bytes) => {
                            if stream.write_all(&bytes).await.is_err() {
                                return;
                            }
                        }
                        None => return,
                    }
                }
            });
        }
    });
    (format!("http://{address}"), count)
}

fn response(status: &str, extra_headers: &str, body: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 {status}\r\ncontent-length: {}\r\n{extra_headers}\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// Collects everything `tracing` writes at TRACE while `f` runs.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

fn capture_traces() -> (Captured, tracing::subscriber::DefaultGuard) {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    (captured, tracing::subscriber::set_default(subscriber))
}

fn everything_shown(error: &Error) -> String {
    let mut shown = format!("{error}\n{error:?}\n");
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        let _ = writeln!(shown, "{cause}\n{cause:?}");
        source = cause.source();
    }
    shown
}

#[tokio::test(flavor = "current_thread")]
async fn an_echoed_secret_path_reaches_neither_the_retry_log_nor_the_error() {
    // The server echoes the request line in a 503 body, as Outline's and many proxies'
    // error pages do; the pipeline retries, logging each failure.
    let (base, count) = scripted_server(|head, _| {
        let line = head.lines().next().unwrap_or_default().to_owned();
        Some(response(
            "503 Service Unavailable",
            &format!("x-echo: {line}\r\n"),
            &format!("Cannot serve {line} right now"),
        ))
    })
    .await;
    let http = HttpClient::builder("outline", format!("{base}/{SECRET_PATH}"))
        .with_secret_path(true)
        .with_retry(fast_retry().with_max_retries(2))
        .build()
        .unwrap();
    let (traces, _guard) = capture_traces();
    let error = http.send(Request::get("server")).await.unwrap_err();
    assert_eq!(
        count.load(Ordering::SeqCst),
        3,
        "two retries of a GET after a 503"
    );
    let logged = traces.text();
    assert!(
        logged.contains("retrying"),
        "the retries are logged: {logged}"
    );
    assert!(
        !logged.contains(SECRET_PATH),
        "secret in the trace: {logged}"
    );
    let shown = everything_shown(&error);
    assert!(!shown.contains(SECRET_PATH), "secret in the error: {shown}");
    assert!(shown.contains("/***/server"), "{shown}");
}

#[tokio::test(flavor = "current_thread")]
async fn a_non_json_200_quoting_the_secret_gives_a_scrubbed_decode_error() {
    let (base, _) = scripted_server(|head, _| {
        let path = head
            .split_whitespace()
            .nth(1)
            .unwrap_or_default()
            .to_owned();
        Some(response("200 OK", "", &format!("Cannot GET {path}")))
    })
    .await;
    let http = HttpClient::builder("outline", format!("{base}/{SECRET_PATH}"))
        .with_secret_path(true)
        .build()
        .unwrap();
    let error = http
        .send_json::<serde_json::Value>(Request::get("server"))
        .await
        .unwrap_err();
    assert!(matches!(error, Error::Decode { .. }), "{error:?}");
    let shown = everything_shown(&error);
    assert!(!shown.contains(SECRET_PATH), "{shown}");
}

#[tokio::test(flavor = "current_thread")]
async fn an_echoed_token_is_scrubbed_from_error_bodies() {
    let (base, _) = scripted_server(|head, _| {
        Some(response(
            "401 Unauthorized",
            "",
            &format!("bad credentials in {head}"),
        ))
    })
    .await;
    let http = HttpClient::builder("vumi", &base)
        .with_auth(Auth::Bearer(Secret::from(TOKEN)))
        .build()
        .unwrap();
    let (traces, _guard) = capture_traces();
    let error = http.send(Request::get("metrics/")).await.unwrap_err();
    assert!(matches!(error, Error::Unauthenticated { .. }), "{error:?}");
    assert!(!everything_shown(&error).contains(TOKEN));
    assert!(!traces.text().contains(TOKEN));
}

#[tokio::test(flavor = "current_thread")]
async fn a_body_over_the_limit_is_read_once_and_never_retried() {
    let big = "x".repeat(4096);
    let (base, count) = scripted_server(move |_, _| Some(response("200 OK", "", &big))).await;
    let http = HttpClient::builder("vumi", &base)
        .with_options(&ClientOptions::new().with_max_response_bytes(1024))
        .with_retry(fast_retry())
        .build()
        .unwrap();
    let error = http.send(Request::get("metrics/")).await.unwrap_err();
    assert!(matches!(error, Error::BodyTooLarge { .. }), "{error:?}");
    assert!(!error.is_retryable());
    assert_eq!(error.disposition().processing, Processing::Accepted);
    assert_eq!(count.load(Ordering::SeqCst), 1, "downloaded once");
}

#[tokio::test(flavor = "current_thread")]
async fn a_request_on_a_connection_closed_before_any_answer_is_not_processed() {
    // The first request is read and the connection closed without a byte: what a server
    // closing an idle keep-alive connection looks like. The POST is sent again on a fresh
    // connection, and only that one is answered.
    let (base, count) =
        scripted_server(|_, n| (n > 0).then(|| response("202 Accepted", "", ""))).await;
    let http = HttpClient::builder("unleash", &base)
        .with_retry(fast_retry())
        .build()
        .unwrap();
    http.send(
        Request::post("api/client/metrics").with_body("{}", "application/json".parse().unwrap()),
    )
    .await
    .unwrap();
    assert_eq!(count.load(Ordering::SeqCst), 2);

    // Without retries the caller sees what happened, and what it means for its data.
    let (base, _) = scripted_server(|_, _| None).await;
    let http = HttpClient::builder("unleash", &base)
        .with_retry(RetryConfig::none())
        .build()
        .unwrap();
    let error = http
        .send(Request::post("api/client/metrics").without_retries())
        .await
        .unwrap_err();
    assert_eq!(
        error.disposition().processing,
        Processing::ClosedBeforeResponse,
        "{error:?}"
    );
    assert_eq!(
        error.disposition().payload(false),
        metrics_core::PayloadFate::Keep
    );
}

#[derive(Debug)]
struct Panicking;

#[async_trait]
impl MetricsSource for Panicking {
    fn backend(&self) -> &'static str {
        "panicky"
    }
    async fn collect(&self, _query: &Query) -> Result<Vec<Series>> {
        panic!("the decoder fell over")
    }
}

#[tokio::test]
async fn a_panicking_source_is_its_own_final_failure() {
    let source: Arc<dyn MetricsSource> = Arc::new(Panicking);
    let collection = Aggregator::new([source]).collect(&Query::new()).await;
    let failure = &collection.failures[0];
    assert!(
        matches!(failure.error, Error::Panicked { ref message, .. } if message.contains("fell over")),
        "{:?}",
        failure.error
    );
    assert!(!failure.error.is_retryable());
}
