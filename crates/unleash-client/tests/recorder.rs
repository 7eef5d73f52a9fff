//! The [`MetricsRecorder`]'s delivery contract, one test per outcome of a metrics POST
//! (accepted, connection refused, connection closed before any answer on a reused socket,
//! timeout after sending, 4xx, 429, 5xx, credentials refused, shutdown), against the Unleash
//! emulator and, for the closed keep-alive connection, a raw socket server.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, DurationRound, TimeDelta, Utc};
use metrics_core::{ClientOptions, Error, Processing};
use metrics_emulators::Fault;
use metrics_emulators::unleash::{RateLimitedEndpoint, UnleashEmulator};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use unleash_client::{Clock, Flushed, MetricsRecorder, RecorderConfig, UnleashClient};

fn client(url: &str) -> UnleashClient {
    UnleashClient::builder()
        .with_url(url)
        .with_api_token(UnleashEmulator::CLIENT_TOKEN)
        .with_admin_token(UnleashEmulator::ADMIN_TOKEN)
        .with_app_name("checkout-service")
        .with_instance_id("pod-1")
        .with_strategies(["default", "flexibleRollout"])
        .with_interval(Duration::from_millis(100))
        .build()
        .unwrap()
}

/// Flushes in the background every 100 ms.
fn quick(config: RecorderConfig) -> RecorderConfig {
    config
        .with_interval(Duration::from_millis(100))
        .with_shutdown_timeout(Duration::from_secs(5))
}

/// Only the caller flushes (the background would wait an hour).
fn manual() -> RecorderConfig {
    RecorderConfig::new()
        .with_register(false)
        .with_interval(Duration::from_secs(3600))
        .with_jitter(Duration::ZERO)
        .with_shutdown_timeout(Duration::from_secs(5))
}

fn start(emulator: &UnleashEmulator, config: RecorderConfig) -> MetricsRecorder {
    client(&emulator.base_url()).start_recorder(config).unwrap()
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

// ---- a server that closes a keep-alive connection under a request --------------------------

/// Reads one HTTP/1.1 request (head and `Content-Length` body); `None` at end of stream.
async fn read_request(stream: &mut TcpStream) -> Option<Vec<u8>> {
    let mut data = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(at) = data.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        let read = stream.read(&mut chunk).await.ok()?;
        if read == 0 {
            return None;
        }
        data.extend_from_slice(&chunk[..read]);
    };
    let head = String::from_utf8_lossy(&data[..head_end]).to_ascii_lowercase();
    let length: usize = head
        .lines()
        .find_map(|line| line.strip_prefix("content-length:"))
        .map_or(0, |v| v.trim().parse().unwrap());
    while data.len() < head_end + length {
        let read = stream.read(&mut chunk).await.ok()?;
        if read == 0 {
            return None;
        }
        data.extend_from_slice(&chunk[..read]);
    }
    Some(data[head_end..head_end + length].to_vec())
}

/// A server that answers `202` to every request except the `close_at`-th (0-based), which
/// it reads whole and then closes the connection on without a byte of answer: what a
/// pooled keep-alive connection looks like when the server closed it while the request was
/// on its way. Returns its URL and the bodies it accepted.
async fn closing_server(close_at: usize) -> (String, Arc<Mutex<Vec<serde_json::Value>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let accepted = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::new(Mutex::new(0usize));
    let bodies = Arc::clone(&accepted);
    tokio::spawn(async move {
        loop {
            let (mut stream, _) = listener.accept().await.unwrap();
            let bodies = Arc::clone(&bodies);
            let seen = Arc::clone(&seen);
            tokio::spawn(async move {
                while let Some(body) = read_request(&mut stream).await {
                    let index = {
                        let mut seen = seen.lock().unwrap();
                        *seen += 1;
                        *seen - 1
                    };
                    if index == close_at {
                        return; // dropping the stream closes the connection
                    }
                    bodies
                        .lock()
                        .unwrap()
                        .push(serde_json::from_slice(&body).unwrap());
                    let answer = b"HTTP/1.1 202 Accepted\r\ncontent-length: 0\r\n\r\n";
                    if stream.write_all(answer).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    (url, accepted)
}

fn yes_total(bodies: &[serde_json::Value], flag: &str) -> u64 {
    bodies
        .iter()
        .map(|b| b["bucket"]["toggles"][flag]["yes"].as_u64().unwrap_or(0))
        .sum()
}

#[tokio::test]
async fn a_post_on_a_connection_the_server_closed_is_kept_and_resent() {
    let (url, accepted) = closing_server(1).await;
    let recorder = client(&url).start_recorder(manual()).unwrap();

    recorder.count_many("f", 10, 0);
    assert_eq!(recorder.flush().await.unwrap(), Flushed::Sent(10));
    // The second POST goes out on the pooled connection, which the server closes under it.
    recorder.count_many("f", 20, 0);
    let err = recorder.flush().await.unwrap_err();
    let Error::Incomplete { unsent, source, .. } = &err else {
        panic!("{err:?}")
    };
    assert_eq!(*unsent, 20);
    assert_eq!(
        source.disposition().processing,
        Processing::ClosedBeforeResponse,
        "{err:?}"
    );
    let status = recorder.status();
    assert_eq!(
        (status.buckets_dropped, status.evaluations_pending),
        (0, 20),
        "{status:?}"
    );
    recorder.count_many("f", 30, 0);
    assert_eq!(recorder.flush().await.unwrap(), Flushed::Sent(50));
    assert_eq!(yes_total(&accepted.lock().unwrap(), "f"), 60);
    assert!(recorder.shutdown().await.is_complete());
}

#[tokio::test]
async fn accepted_counts_from_many_tasks_arrive_exactly() {
    let emulator = UnleashEmulator::start().await.unwrap();
    emulator.add_flag("a");
    emulator.add_flag("b");
    let recorder = start(&emulator, quick(RecorderConfig::new()));
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
    let report = recorder.shutdown().await;
    assert!(report.is_complete(), "{report:?}");
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
async fn disabled_metrics_204_is_success() {
    let emulator = UnleashEmulator::start().await.unwrap();
    emulator.set_metrics_disabled(true);
    let recorder = start(&emulator, quick(RecorderConfig::new().with_register(false)));
    recorder.count("f", true);
    assert_eq!(recorder.shutdown().await.into_result().unwrap(), 1);
    assert_eq!(emulator.counts("f"), (0, 0));
}

#[tokio::test]
async fn counts_survive_a_refused_connection() {
    let mut emulator = UnleashEmulator::start().await.unwrap();
    emulator.add_flag("f");
    let recorder = start(&emulator, quick(RecorderConfig::new().with_register(false)));
    recorder.count_many("f", 2, 1);
    recorder.flush().await.unwrap();
    emulator.stop();
    recorder.count_many("f", 4, 0);
    wait_for("failing while down", || recorder.status().failures >= 2).await;
    let error = recorder.status().last_error.unwrap();
    assert!(error.is_connect(), "{error:?}");
    assert!(error.to_string().contains("could not connect"), "{error}");
    recorder.count("f", false);
    emulator.restart().await.unwrap();
    wait_for("delivered after restart", || emulator.counts("f") == (6, 2)).await;
    assert!(recorder.shutdown().await.is_complete());
    assert_eq!(emulator.counts("f"), (6, 2));
    assert_eq!(recorder.status().evaluations_dropped, 0);
}

#[tokio::test]
async fn a_post_that_may_have_arrived_is_dropped_not_resent() {
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
    assert!(recorder.shutdown().await.is_complete());
    assert_eq!(
        metrics_posts(&emulator),
        1,
        "a POST that may have been counted is not resent"
    );
    // (The emulator drops a request whose client hung up; a real server may count it once.)
    assert!(emulator.counts("f").0 <= 3);
}

#[tokio::test]
async fn a_refused_bucket_is_handed_back_and_counting_goes_on() {
    let emulator = UnleashEmulator::start().await.unwrap();
    emulator.add_flag("f");
    let recorder = start(&emulator, manual());
    emulator.faults().inject_on(
        "/api/client/metrics",
        Fault::Status {
            status: 400,
            retry_after: None,
            body: r#"{"id":"x","name":"BadDataError","message":"Request validation failed.","details":[{"path":"/body/bucket/toggles/f/yes","message":"The `/body/bucket/toggles/f/yes` property must be >= 0. You sent -1."}]}"#.into(),
        },
        0,
        2,
    );
    recorder.count_many("f", 5, 5);
    let err = recorder.flush().await.unwrap_err();
    assert_eq!(err.status(), Some(400));
    assert_eq!(err.code(), Some("BadDataError"));
    assert!(err.to_string().contains("must be >= 0"), "{err}");
    let status = recorder.status();
    assert_eq!(
        (
            status.evaluations_refused,
            status.evaluations_dropped,
            status.evaluations_pending
        ),
        (10, 0, 0)
    );
    let refused = recorder.take_refused().unwrap();
    assert_eq!(refused.toggles["f"].yes, 5);
    assert!(recorder.take_refused().is_none());
    // Counting goes on, and the refused counts are never resent.
    recorder.count("f", true);
    assert_eq!(recorder.flush().await.unwrap_err().status(), Some(400));
    recorder.count("f", true);
    assert_eq!(recorder.flush().await.unwrap(), Flushed::Sent(1));
    assert_eq!(emulator.counts("f"), (1, 0));
    // What was refused and not taken is handed back at shutdown.
    let report = recorder.shutdown().await;
    assert_eq!(report.refused.unwrap().evaluations(), 1);
    assert!(report.unsent.is_none());
}

#[tokio::test]
async fn rate_limit_retry_after_is_honoured_by_the_background() {
    let emulator = UnleashEmulator::start().await.unwrap();
    emulator.add_flag("f");
    emulator.set_rate_limit(RateLimitedEndpoint::Metrics, 1, Duration::from_secs(2));
    let recorder = start(&emulator, quick(RecorderConfig::new().with_register(false)));
    recorder.count("f", true);
    assert_eq!(recorder.flush().await.unwrap(), Flushed::Sent(1));
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
    assert!(recorder.shutdown().await.is_complete());
}

#[tokio::test]
async fn flush_and_shutdown_do_not_post_inside_a_retry_after_window() {
    let emulator = UnleashEmulator::start().await.unwrap();
    emulator.add_flag("f");
    let recorder = start(&emulator, manual());
    emulator.faults().inject_on(
        "/api/client/metrics",
        Fault::Status {
            status: 429,
            retry_after: Some(30),
            body: r#"{"message":"Too many requests"}"#.into(),
        },
        0,
        1,
    );
    recorder.count_many("f", 2, 1);
    let before = Utc::now();
    let err = recorder.flush().await.unwrap_err();
    assert_eq!(err.retry_after(), Some(Duration::from_secs(30)), "{err:?}");
    recorder.count("f", true);
    let Flushed::Deferred {
        evaluations,
        not_before,
    } = recorder.flush().await.unwrap()
    else {
        panic!("a flush inside the window posted")
    };
    assert_eq!(evaluations, 4);
    assert!(
        not_before >= before + TimeDelta::seconds(29),
        "{not_before}"
    );
    assert!(
        not_before <= Utc::now() + TimeDelta::seconds(31),
        "{not_before}"
    );
    assert!(recorder.status().not_before.is_some());
    let report = recorder.shutdown().await;
    assert_eq!(metrics_posts(&emulator), 1, "only the first POST went out");
    let unsent = report.unsent.as_ref().expect("handed back");
    assert_eq!((unsent.toggles["f"].yes, unsent.toggles["f"].no), (3, 1));
    assert!(
        report
            .not_before
            .is_some_and(|t| t >= before + TimeDelta::seconds(29))
    );
    assert!(
        matches!(report.error, Some(Error::RateLimited { .. })),
        "{report:?}"
    );
    assert!(matches!(
        report.into_result(),
        Err(Error::Incomplete { unsent: 4, .. })
    ));
}

#[tokio::test]
async fn server_errors_keep_only_what_the_server_did_not_take() {
    let emulator = UnleashEmulator::start().await.unwrap();
    emulator.add_flag("f");
    let recorder = start(&emulator, manual());
    // A 503 with Retry-After is the server shedding load: kept.
    emulator.faults().inject_on(
        "/api/client/metrics",
        Fault::Status {
            status: 503,
            retry_after: Some(1),
            body: String::new(),
        },
        0,
        1,
    );
    recorder.count_many("f", 3, 1);
    let err = recorder.flush().await.unwrap_err();
    assert!(
        matches!(err, Error::Incomplete { unsent: 4, .. }),
        "{err:?}"
    );
    assert_eq!(err.status(), Some(503));
    assert_eq!(recorder.status().evaluations_pending, 4);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    // A 500 may come after the server stored the bucket: dropped, never resent.
    emulator.faults().inject_on(
        "/api/client/metrics",
        Fault::Status {
            status: 500,
            retry_after: None,
            body: String::new(),
        },
        0,
        1,
    );
    recorder.count("f", true);
    let err = recorder.flush().await.unwrap_err();
    assert_eq!(err.status(), Some(500));
    let status = recorder.status();
    assert_eq!(
        (
            status.buckets_dropped,
            status.evaluations_dropped,
            status.evaluations_pending
        ),
        (1, 5, 0),
        "{status:?}"
    );
    recorder.count("f", false);
    assert_eq!(recorder.flush().await.unwrap(), Flushed::Sent(1));
    assert_eq!(emulator.counts("f"), (0, 1));
    assert!(recorder.shutdown().await.is_complete());
}

#[tokio::test]
async fn kept_buckets_merge_with_the_earliest_start() {
    let emulator = UnleashEmulator::start().await.unwrap();
    emulator.add_flag("f");
    // Every reading of the clock is a second later than the one before.
    let base = Utc::now().duration_trunc(TimeDelta::seconds(1)).unwrap() - TimeDelta::minutes(5);
    let ticks = Arc::new(Mutex::new(0i64));
    let clock = Clock::from_fn(move || {
        let mut ticks = ticks.lock().unwrap();
        *ticks += 1;
        base + TimeDelta::seconds(*ticks - 1)
    });
    let recorder = start(&emulator, manual().with_clock(clock));
    emulator.faults().inject_on(
        "/api/client/metrics",
        Fault::Status {
            status: 408,
            retry_after: None,
            body: String::new(),
        },
        0,
        2,
    );
    recorder.count_many("f", 3, 1);
    assert!(recorder.flush().await.is_err());
    recorder.count("f", true);
    assert!(recorder.flush().await.is_err());
    assert_eq!(recorder.status().failures, 2);
    recorder.count("f", false);
    assert_eq!(recorder.flush().await.unwrap(), Flushed::Sent(6));
    assert_eq!(emulator.counts("f"), (4, 2));
    assert_eq!(recorder.status().failures, 1);
    let body = &emulator.metric_posts()[0];
    let start = DateTime::parse_from_rfc3339(body["bucket"]["start"].as_str().unwrap()).unwrap();
    let stop = DateTime::parse_from_rfc3339(body["bucket"]["stop"].as_str().unwrap()).unwrap();
    assert_eq!(
        start, base,
        "the merged bucket keeps the first bucket's start"
    );
    assert!(start < stop);
    assert!(recorder.shutdown().await.is_complete());
}

#[tokio::test]
async fn refused_credentials_stop_the_recorder_and_keep_counts() {
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
    assert!(matches!(status.stopped, Some(Error::Forbidden { .. })));
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
    assert_eq!(recorder.pending().evaluations(), 2);
    let report = recorder.shutdown().await;
    assert!(matches!(report.error, Some(Error::Forbidden { .. })));
    assert_eq!(report.unsent.unwrap().evaluations(), 2, "handed back");
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
async fn shutdown_hands_back_what_it_could_not_send() {
    let mut emulator = UnleashEmulator::start().await.unwrap();
    emulator.add_flag("f");
    let recorder = start(&emulator, manual());
    recorder.count_many("f", 1, 0);
    assert_eq!(recorder.flush().await.unwrap(), Flushed::Sent(1));
    emulator.stop();
    recorder.count_variant("f", true, "blue");
    recorder.count("f", false);
    let report = recorder.shutdown().await;
    assert!(
        report.error.as_ref().is_some_and(Error::is_connect),
        "{report:?}"
    );
    let unsent = report.unsent.expect("handed back");
    assert_eq!((unsent.toggles["f"].yes, unsent.toggles["f"].no), (1, 1));
    assert_eq!(unsent.toggles["f"].variants["blue"], 1);
    assert_eq!(recorder.status().evaluations_pending, 0);
}

#[tokio::test]
async fn a_post_cut_off_by_the_shutdown_budget_is_dropped_and_the_rest_handed_back() {
    let emulator = UnleashEmulator::start().await.unwrap();
    emulator.add_flag("f");
    let recorder = start(
        &emulator,
        manual().with_shutdown_timeout(Duration::from_millis(200)),
    );
    emulator.faults().inject_on(
        "/api/client/metrics",
        Fault::Delay(Duration::from_secs(2)),
        0,
        1,
    );
    recorder.count_many("f", 4, 0);
    let report = recorder.shutdown().await;
    assert!(
        matches!(report.error, Some(Error::Timeout { .. })),
        "{report:?}"
    );
    assert!(report.unsent.is_none());
    let status = recorder.status();
    assert_eq!(
        (status.evaluations_dropped, status.evaluations_pending),
        (4, 0)
    );
}

#[tokio::test]
async fn counting_after_shutdown_is_refused() {
    let emulator = UnleashEmulator::start().await.unwrap();
    emulator.add_flag("f");
    let recorder = start(&emulator, manual());
    let other = recorder.clone();
    recorder.count("f", true);
    assert_eq!(recorder.shutdown().await.into_result().unwrap(), 1);
    other.count("f", true);
    other.count_many("f", 5, 5);
    other.count_variant("g", true, "blue");
    assert_eq!(other.status().evaluations_pending, 0);
    assert_eq!(other.flush().await.unwrap(), Flushed::Sent(0));
    assert!(other.shutdown().await.is_complete());
    assert_eq!(metrics_posts(&emulator), 1);
    assert_eq!(emulator.counts("f"), (1, 0));
}

#[tokio::test]
async fn a_bucket_lands_in_the_hour_of_its_stop() {
    let emulator = UnleashEmulator::start().await.unwrap();
    emulator.add_flag("f");
    let hour = Utc::now().duration_trunc(TimeDelta::hours(1)).unwrap();
    let now = Arc::new(Mutex::new(hour - TimeDelta::milliseconds(300)));
    let clock = {
        let now = Arc::clone(&now);
        Clock::from_fn(move || *now.lock().unwrap())
    };
    let recorder = start(&emulator, manual().with_clock(clock));
    recorder.count_many("f", 2, 1);
    *now.lock().unwrap() = hour + TimeDelta::milliseconds(200);
    assert_eq!(recorder.flush().await.unwrap(), Flushed::Sent(3));
    let body = &emulator.metric_posts()[0];
    let start = DateTime::parse_from_rfc3339(body["bucket"]["start"].as_str().unwrap()).unwrap();
    let stop = DateTime::parse_from_rfc3339(body["bucket"]["stop"].as_str().unwrap()).unwrap();
    assert_eq!(start, hour - TimeDelta::milliseconds(300));
    assert_eq!(stop, hour + TimeDelta::milliseconds(200));
    assert_eq!(emulator.booked_hours("f"), [hour]);

    // A kept bucket from the hour before is booked under the hour it is finally sent in.
    emulator.faults().inject_on(
        "/api/client/metrics",
        Fault::Status {
            status: 408,
            retry_after: None,
            body: String::new(),
        },
        0,
        1,
    );
    *now.lock().unwrap() = hour + TimeDelta::minutes(59);
    recorder.count("f", true);
    *now.lock().unwrap() = hour + TimeDelta::minutes(59) + TimeDelta::seconds(59);
    assert!(recorder.flush().await.is_err());
    *now.lock().unwrap() = hour + TimeDelta::minutes(60) + TimeDelta::seconds(1);
    assert_eq!(recorder.flush().await.unwrap(), Flushed::Sent(1));
    assert_eq!(
        emulator.booked_hours("f"),
        [hour, hour + TimeDelta::hours(1)]
    );
    assert!(recorder.shutdown().await.is_complete());
}

#[tokio::test]
async fn a_background_post_cut_off_by_the_shutdown_budget_is_settled_before_the_report() {
    let emulator = UnleashEmulator::start().await.unwrap();
    emulator.add_flag("f");
    let recorder = start(
        &emulator,
        quick(RecorderConfig::new().with_register(false))
            .with_shutdown_timeout(Duration::from_millis(200)),
    );
    emulator.faults().inject_on(
        "/api/client/metrics",
        Fault::Delay(Duration::from_secs(2)),
        0,
        1,
    );
    recorder.count_many("f", 4, 0);
    // The background flush (every 100 ms) is now waiting for the slow answer.
    tokio::time::sleep(Duration::from_millis(400)).await;
    recorder.count("f", false);
    let report = recorder.shutdown().await;
    assert!(
        matches!(report.error, Some(Error::Timeout { .. })),
        "{report:?}"
    );
    // The POST under way may be counted: dropped. What came after it is handed back.
    let status = recorder.status();
    assert_eq!(
        (status.evaluations_dropped, status.evaluations_pending),
        (4, 0),
        "{status:?}"
    );
    let unsent = report.unsent.expect("handed back");
    assert_eq!((unsent.toggles["f"].yes, unsent.toggles["f"].no), (0, 1));
    // Nothing settles later behind the report's back.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let later = recorder.status();
    assert_eq!(
        (later.evaluations_sent, later.evaluations_dropped),
        (0, 4),
        "{later:?}"
    );
}

/// How the server answers one flush in [`every_evaluation_is_accounted_for_exactly_once`].
#[derive(Clone, Copy, Debug)]
enum Answer {
    Accept,
    Timeout408,
    TooMany429,
    Broken500,
    Refused400,
}

impl Answer {
    fn fault(self) -> Option<Fault> {
        let status = match self {
            Self::Accept => return None,
            Self::Timeout408 => 408,
            Self::TooMany429 => 429,
            Self::Broken500 => 500,
            Self::Refused400 => 400,
        };
        Some(Fault::Status {
            status,
            retry_after: None,
            body: String::new(),
        })
    }
}

/// Whatever the server answers, in any order, every evaluation counted ends up in exactly
/// one place — delivered (and counted by the server once), dropped, refused or pending —
/// and a last accepted flush leaves nothing pending.
#[test]
fn every_evaluation_is_accounted_for_exactly_once() {
    use proptest::prelude::*;
    use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};

    let answers = prop_oneof![
        Just(Answer::Accept),
        Just(Answer::Timeout408),
        Just(Answer::TooMany429),
        Just(Answer::Broken500),
        Just(Answer::Refused400),
    ];
    let steps = proptest::collection::vec((0u64..20, 0u64..5, answers), 1..10);
    let config = Config {
        cases: 24,
        failure_persistence: None,
        ..Config::default()
    };
    let mut runner =
        TestRunner::new_with_rng(config, TestRng::from_seed(RngAlgorithm::ChaCha, &[17; 32]));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runner
        .run(&steps, |steps| {
            runtime.block_on(check_accounting(&steps));
            Ok(())
        })
        .unwrap();
}

async fn check_accounting(steps: &[(u64, u64, Answer)]) {
    let emulator = UnleashEmulator::start().await.unwrap();
    emulator.add_flag("f");
    let recorder = start(&emulator, manual());
    let mut counted = 0;
    let accounted = |recorder: &MetricsRecorder| {
        let status = recorder.status();
        let (yes, no) = emulator.counts("f");
        assert_eq!(yes + no, status.evaluations_sent, "{status:?}");
        status.evaluations_sent
            + status.evaluations_dropped
            + status.evaluations_refused
            + status.evaluations_pending
    };
    for &(yes, no, answer) in steps {
        recorder.count_many("f", yes, no);
        counted += yes + no;
        let pending = recorder.status().evaluations_pending;
        if let Some(fault) = answer.fault() {
            emulator
                .faults()
                .inject_on("/api/client/metrics", fault, 0, 1);
        }
        let result = recorder.flush().await;
        match (answer, &result) {
            (_, Ok(Flushed::Sent(0))) => assert_eq!(pending, 0),
            (Answer::Accept, Ok(Flushed::Sent(sent))) => assert_eq!(*sent, pending),
            (Answer::Timeout408 | Answer::TooMany429, Err(Error::Incomplete { unsent, .. })) => {
                assert_eq!(*unsent as u64, pending);
            }
            (Answer::Broken500, Err(error)) => assert_eq!(error.status(), Some(500)),
            (Answer::Refused400, Err(error)) => assert_eq!(error.status(), Some(400)),
            other => panic!("unexpected {other:?}"),
        }
        if pending == 0 {
            // Nothing was posted; the fault is still waiting for a request.
            emulator.faults().clear();
        }
        assert_eq!(accounted(&recorder), counted);
    }
    recorder.flush().await.unwrap();
    assert_eq!(recorder.status().evaluations_pending, 0);
    assert_eq!(accounted(&recorder), counted);
    assert!(recorder.shutdown().await.unsent.is_none());
}
