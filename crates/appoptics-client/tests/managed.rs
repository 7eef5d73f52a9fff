//! The managed queue against the emulator: background sending, failures waited out,
//! refusals handed back, the bound, and shutdown within a budget.

use std::time::Duration;

use appoptics_client::model::tags;
use appoptics_client::{AppOpticsClient, ManagedConfig, Measurement, TagSanitizer};
use metrics_core::{Error, RetryConfig};
use metrics_emulators::Fault;
use metrics_emulators::appoptics::AppOpticsEmulator;

async fn setup() -> (AppOpticsEmulator, AppOpticsClient) {
    let emulator = AppOpticsEmulator::start().await.unwrap();
    let client = AppOpticsClient::builder()
        .with_token("key_test")
        .with_base_url(emulator.api_url())
        .with_tags(tags([("host", "web-1")]))
        .with_retry(RetryConfig::none())
        .build()
        .unwrap();
    (emulator, client)
}

fn fast() -> ManagedConfig {
    ManagedConfig::new()
        .with_interval(Duration::from_millis(40))
        .with_max_backoff(Duration::from_millis(200))
}

fn maintenance() -> Fault {
    Fault::Status {
        status: 503,
        retry_after: None,
        body: r#"{"errors":{"system":["maintenance"]}}"#.into(),
    }
}

/// Waits (generously: this only detects a hang) until `done` holds.
async fn eventually(mut done: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while !done() {
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn the_background_sends_and_waits_out_failures() {
    let (emulator, client) = setup().await;
    let queue = client.queue().start(fast()).unwrap();
    emulator
        .faults()
        .inject_on("/v1/measurements", maintenance(), 0, 3);
    let before = chrono::Utc::now().timestamp();
    for i in 0..500 {
        queue.add("bg.metric", f64::from(i)).unwrap();
    }
    let after = chrono::Utc::now().timestamp();
    // The server stores a chunk before its answer reaches the queue: wait for the queue.
    eventually(|| queue.status().sent == 500).await;
    assert_eq!(emulator.point_count(), 500);
    let status = queue.status();
    assert_eq!(status.sent, 500);
    assert_eq!(status.queued, 0);
    assert_eq!(status.failures, 0);
    assert_eq!(
        status.last_error.as_ref().and_then(Error::status),
        Some(503)
    );
    // Stamped when added, not when finally sent.
    assert!(
        emulator
            .stored_points("bg.metric")
            .iter()
            .all(|p| (before..=after).contains(&p.time))
    );
    let report = queue.shutdown(Duration::from_secs(5)).await;
    assert!(report.is_complete(), "{report:?}");
    assert_eq!(report.sent, 500);
    assert!(matches!(queue.add("late", 1.0), Err(Error::Config { .. })));
}

#[tokio::test]
async fn refused_measurements_are_held_for_the_caller() {
    let (emulator, client) = setup().await;
    let queue = client.queue().start(fast()).unwrap();
    emulator.faults().inject_on(
        "/v1/measurements",
        Fault::Status {
            status: 400,
            retry_after: None,
            body: r#"{"errors":{"params":{"time":["is too far in the past"]}}}"#.into(),
        },
        0,
        1,
    );
    for i in 0..10 {
        queue.add("refused", f64::from(i)).unwrap();
    }
    eventually(|| queue.status().rejected == 10).await;
    let rejected = queue.take_rejected();
    assert_eq!(rejected.len(), 10);
    assert!(rejected.iter().all(|m| m.timestamp().is_some()));
    queue.add("accepted", 1.0).unwrap();
    let report = queue.shutdown(Duration::from_secs(5)).await;
    assert!(
        report.rejected.is_empty() && report.unsent.is_empty(),
        "{report:?}"
    );
    assert_eq!(
        emulator.point_count(),
        1,
        "the refused ones were never resent"
    );
}

#[tokio::test]
async fn shutdown_hands_back_what_it_could_not_send() {
    let (emulator, client) = setup().await;
    let queue = client
        .queue()
        .start(ManagedConfig::new().with_interval(Duration::from_secs(3600)))
        .unwrap();
    emulator.faults().always(maintenance());
    for i in 0..700 {
        queue.add("down", f64::from(i)).unwrap();
    }
    let report = queue.shutdown(Duration::from_millis(300)).await;
    assert_eq!(report.unsent.len(), 700);
    assert!(report.unsent.iter().all(|m| m.timestamp().is_some()));
    assert_eq!(report.sent, 0);
    assert_eq!(
        report.last_error.as_ref().and_then(Error::status),
        Some(503)
    );
    assert!(!report.is_complete());
    assert!(!queue.status().running);
}

#[tokio::test]
async fn a_full_managed_queue_drops_the_oldest_and_counts_them() {
    let (emulator, client) = setup().await;
    let queue = client
        .queue()
        .with_capacity(50)
        .start(ManagedConfig::new().with_interval(Duration::from_secs(3600)))
        .unwrap();
    for i in 0..80 {
        queue.add("bounded", f64::from(i)).unwrap();
    }
    assert_eq!(queue.status().dropped_full, 30);
    let report = queue.shutdown(Duration::from_secs(5)).await;
    assert_eq!(report.sent, 50);
    assert_eq!(report.dropped_full, 30);
    let mut stored: Vec<f64> = emulator
        .stored_points("bounded")
        .iter()
        .map(|p| p.value)
        .collect();
    stored.sort_by(f64::total_cmp);
    assert_eq!(stored.first(), Some(&30.0), "the oldest went first");
}

#[tokio::test]
async fn the_flush_count_sends_before_the_interval() {
    let (_emulator, client) = setup().await;
    let queue = client
        .queue()
        .start(
            ManagedConfig::new()
                .with_interval(Duration::from_secs(3600))
                .with_flush_count(100),
        )
        .unwrap();
    for i in 0..100 {
        queue.add("early", f64::from(i)).unwrap();
    }
    eventually(|| queue.status().sent == 100).await;
    queue.shutdown(Duration::from_secs(5)).await;
}

/// A route template as a tag value failed every request with `InvalidInput`; with the
/// tag-value sanitizer it is cleaned once, when the tag set is made.
#[tokio::test]
async fn a_route_template_as_a_tag_value() {
    let (emulator, _) = setup().await;
    let builder = || {
        AppOpticsClient::builder()
            .with_token("key_test")
            .with_base_url(emulator.api_url())
            .with_tag("host", "web-1")
    };
    let strict = builder().build().unwrap();
    let err = strict
        .submit(Measurement::new("latency", 1.0).with_tag("route", "/work/{ms}"))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvalidInput { .. }), "{err:?}");

    let client = builder()
        .with_tag_sanitizer(TagSanitizer::TagValue)
        .build()
        .unwrap();
    client
        .submit(Measurement::new("latency", 1.0).with_tag("route", "/work/{ms}"))
        .await
        .unwrap();
    let queue = client.queue().start(fast()).unwrap();
    let route = queue.tag_set(tags([("route", "/users/{id}")])).unwrap();
    assert_eq!(route.tags()["route"], "/users/-id-");
    assert_eq!(route.tags()["host"], "web-1");
    queue.add_tagged("latency", 2.0, &route).unwrap();
    let report = queue.shutdown(Duration::from_secs(5)).await;
    assert!(report.is_complete(), "{report:?}");
    let routes: Vec<String> = emulator
        .stored_points("latency")
        .iter()
        .map(|p| p.tags["route"].clone())
        .collect();
    assert_eq!(routes, ["/users/-id-", "/work/-ms-"]);
}
