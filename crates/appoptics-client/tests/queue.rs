//! The batching queue against the emulator: chunking under the API limit, bounded
//! concurrency, and that a failed chunk — and only that chunk — stays queued.

use std::collections::BTreeSet;
use std::time::Duration;

use appoptics_client::error::{AppOpticsError, AppOpticsErrorKind};
use appoptics_client::model::{Measurement, tags};
use appoptics_client::queue::RejectedMeasurements;
use appoptics_client::{AppOpticsClient, MeasurementQueue};
use metrics_core::{Error, RetryConfig};
use metrics_emulators::Fault;
use metrics_emulators::appoptics::AppOpticsEmulator;

const N: usize = 10_000;

async fn setup() -> (AppOpticsEmulator, AppOpticsClient) {
    let emulator = AppOpticsEmulator::start().await.unwrap();
    let client = AppOpticsClient::builder()
        .with_token("key_test")
        .with_base_url(emulator.api_url())
        .with_tags(tags([("host", "bench-1")]))
        .with_retry(RetryConfig::none())
        .build()
        .unwrap();
    (emulator, client)
}

/// Queues `count` measurements of `metric` whose values are 0, 1, 2, … (each one unique).
async fn fill(queue: &MeasurementQueue, metric: &str, count: usize) {
    for i in 0..count {
        queue
            .add(metric, f64::from(u32::try_from(i).unwrap()))
            .await
            .unwrap();
    }
}

fn values(points: impl IntoIterator<Item = f64>) -> Vec<u32> {
    points
        .into_iter()
        .map(|v| {
            assert!(v.fract() == 0.0 && v >= 0.0, "{v}");
            format!("{v}").parse().unwrap()
        })
        .collect()
}

fn queued_values(queue: &MeasurementQueue) -> Vec<u32> {
    values(queue.pending().iter().map(|m| match m.value() {
        appoptics_client::model::MeasurementValue::Value(v) => v,
        other => panic!("unexpected {other:?}"),
    }))
}

#[tokio::test]
async fn ten_thousand_measurements_go_in_chunks_within_the_api_limit() {
    let (emulator, client) = setup().await;
    let queue = client.queue().build().unwrap();
    fill(&queue, "bulk.metric", N).await;
    assert_eq!(queue.len(), N);
    assert_eq!(queue.chunk_count(), N.div_ceil(300));

    let report = queue.submit().await.unwrap();
    assert_eq!(report.measurements, N);
    assert_eq!(report.requests, N.div_ceil(300));
    assert!(queue.is_empty());

    let stats = emulator.measurement_stats();
    assert_eq!(stats.posts, 34);
    assert_eq!(stats.measurements, N);
    assert!(stats.largest_post <= 300, "{stats:?}");
    let stored = values(
        emulator
            .stored_points("bulk.metric")
            .iter()
            .map(|p| p.value),
    );
    let distinct: BTreeSet<u32> = stored.iter().copied().collect();
    assert_eq!(stored.len(), N);
    assert_eq!(distinct.len(), N, "every measurement exactly once");

    // The largest chunk the API allows is 1 000 per request; more is refused at build.
    let big = client.queue().with_chunk_size(1000).build().unwrap();
    fill(&big, "bulk.big", N).await;
    let report = big.submit().await.unwrap();
    assert_eq!(report.requests, 10);
    assert_eq!(emulator.measurement_stats().largest_post, 1000);
    assert!(matches!(
        client.queue().with_chunk_size(1001).build(),
        Err(Error::Config { .. })
    ));
}

#[tokio::test]
async fn a_failed_chunk_and_only_that_chunk_stays_queued() {
    let (emulator, client) = setup().await;
    let queue = client.queue().build().unwrap();
    fill(&queue, "bulk.metric", N).await;
    // The sixth measurement post fails with a 503; all others succeed.
    emulator.faults().inject_on(
        "/v1/measurements",
        Fault::Status {
            status: 503,
            retry_after: None,
            body: r#"{"errors":{"system":["maintenance"]}}"#.into(),
        },
        5,
        1,
    );

    let err = queue.submit().await.unwrap_err();
    let Error::Incomplete { unsent, source, .. } = &err else {
        panic!("expected Incomplete, got {err:?}");
    };
    assert_eq!(*unsent, 300);
    assert_eq!(source.status(), Some(503));
    assert!(err.to_string().contains("300 measurements"), "{err}");
    assert_eq!(queue.len(), 300);

    // What stayed is exactly one chunk of the original split: 300 consecutive values
    // starting at a multiple of 300 — and exactly what the server does not have.
    let queued = queued_values(&queue);
    let start = queued[0];
    assert_eq!(start % 300, 0);
    assert_eq!(queued, (start..start + 300).collect::<Vec<_>>());
    let stored: BTreeSet<u32> = values(
        emulator
            .stored_points("bulk.metric")
            .iter()
            .map(|p| p.value),
    )
    .into_iter()
    .collect();
    assert_eq!(stored.len(), N - 300);
    assert!(queued.iter().all(|v| !stored.contains(v)));

    // The next submit sends only that chunk; nothing is counted twice.
    let report = queue.submit().await.unwrap();
    assert_eq!((report.requests, report.measurements), (1, 300));
    let all = values(
        emulator
            .stored_points("bulk.metric")
            .iter()
            .map(|p| p.value),
    );
    assert_eq!(all.len(), N);
    assert_eq!(all.iter().copied().collect::<BTreeSet<_>>().len(), N);
}

#[tokio::test]
async fn chunks_are_sent_concurrently_up_to_the_bound() {
    let (emulator, client) = setup().await;
    emulator.set_post_latency(Some(Duration::from_millis(30)));
    let queue = client
        .queue()
        .with_chunk_size(100)
        .with_max_in_flight(3)
        .build()
        .unwrap();
    fill(&queue, "conc", 1_200).await;
    queue.submit().await.unwrap();
    let stats = emulator.measurement_stats();
    assert_eq!(stats.posts, 12);
    assert_eq!(stats.max_concurrent_posts, 3, "{stats:?}");

    let serial = client
        .queue()
        .with_chunk_size(100)
        .with_max_in_flight(1)
        .build()
        .unwrap();
    emulator.reset();
    fill(&serial, "serial", 500).await;
    serial.submit().await.unwrap();
    assert_eq!(emulator.measurement_stats().max_concurrent_posts, 1);
}

#[tokio::test]
async fn errors_that_hit_every_chunk_stop_the_batch() {
    let (emulator, client) = setup().await;
    emulator.set_token(Some("the-right-token"));
    let queue = client.queue().build().unwrap();
    fill(&queue, "denied", 3_000).await;
    let err = queue.submit().await.unwrap_err();
    let Error::Incomplete { unsent, source, .. } = &err else {
        panic!("{err:?}");
    };
    assert_eq!(*unsent, 3_000);
    assert!(
        matches!(**source, Error::Unauthenticated { .. }),
        "{source:?}"
    );
    // At most the chunks already in flight were tried, not all ten.
    assert!(
        emulator.requests().count() <= 4,
        "{}",
        emulator.requests().count()
    );
    assert_eq!(queue.len(), 3_000);
    assert_eq!(queued_values(&queue), (0..3_000).collect::<Vec<_>>());
}

#[tokio::test]
async fn a_rate_limit_stops_the_batch_and_says_when() {
    let (emulator, client) = setup().await;
    emulator.set_rate_limit(3, Duration::from_secs(60));
    let queue = client.queue().build().unwrap();
    fill(&queue, "limited", 3_000).await;
    let err = queue.submit().await.unwrap_err();
    let Error::Incomplete { unsent, source, .. } = &err else {
        panic!("{err:?}");
    };
    assert!(matches!(**source, Error::RateLimited { .. }), "{source:?}");
    assert!(source.to_string().contains("remaining=0"), "{source}");
    // The wait comes from the rate-limit headers, typed (before, only in the text).
    let wait = err.retry_after().expect("a typed wait");
    assert!(
        wait > Duration::ZERO && wait <= Duration::from_secs(60),
        "{wait:?}"
    );
    assert_eq!(emulator.point_count(), 900);
    assert_eq!(*unsent, 2_100);
    assert_eq!(queue.len(), 2_100);
}

/// A 2xx that reports `errors` was accepted in part: resending cannot help, so the chunk is
/// handed back (before, it stayed queued and was resent by every submit).
#[tokio::test]
async fn a_2xx_with_errors_hands_the_chunk_back() {
    let (emulator, client) = setup().await;
    emulator.faults().inject_on(
        "/v1/measurements",
        Fault::Status {
            status: 202,
            retry_after: None,
            body: r#"{"errors":[{"params":{"name":["is not present"]}}]}"#.into(),
        },
        0,
        1,
    );
    let queue = client.queue().with_max_in_flight(1).build().unwrap();
    fill(&queue, "partial", 600).await;
    let err = queue.submit().await.unwrap_err();
    assert_eq!(err.status(), Some(202), "{err:?}");
    let rejected = RejectedMeasurements::of(&err).expect("handed back");
    assert_eq!(rejected.measurements.len(), 300);
    assert_eq!(
        AppOpticsError::of(&err).map(|d| d.kind),
        Some(AppOpticsErrorKind::PartialFailure)
    );
    assert!(queue.is_empty());
    assert_eq!(emulator.point_count(), 300);
}

/// A chunk the server refuses with 400 leaves the queue and comes back inside the error with
/// the server's reasons; the other chunks are delivered once, and the next submit sends
/// nothing again. Before, the refused chunk was resent by every later submit, forever.
#[tokio::test]
async fn a_chunk_refused_for_good_is_handed_back_and_never_resent() {
    let (emulator, client) = setup().await;
    let queue = client.queue().with_max_in_flight(2).build().unwrap();
    fill(&queue, "refused", 3_000).await;
    emulator.faults().inject_on(
        "/v1/measurements",
        Fault::Status {
            status: 400,
            retry_after: None,
            body: r#"{"errors":{"params":{"time":["is too far in the past"]}}}"#.into(),
        },
        3,
        1,
    );
    let err = queue.submit().await.unwrap_err();
    assert_eq!(err.status(), Some(400), "{err:?}");
    assert!(
        !matches!(err, Error::Incomplete { .. }),
        "nothing is still queued: {err:?}"
    );
    let rejected = RejectedMeasurements::of(&err).expect("handed back");
    assert_eq!(rejected.reasons(), ["params: time: is too far in the past"]);
    let handed_back = values(rejected.measurements.iter().map(|m| match m.value() {
        appoptics_client::model::MeasurementValue::Value(v) => v,
        other => panic!("unexpected {other:?}"),
    }));
    let start = handed_back[0];
    assert_eq!(start % 300, 0);
    assert_eq!(handed_back, (start..start + 300).collect::<Vec<_>>());
    assert!(queue.is_empty());
    assert_eq!(emulator.point_count(), 2_700);
    let posts = emulator.requests().count();
    assert_eq!(posts, 10);

    // Nothing is left to resend: the next submit sends no request at all.
    let report = queue.submit().await.unwrap();
    assert_eq!(report.requests, 0);
    assert_eq!(emulator.requests().count(), posts);
    let stored: BTreeSet<u32> = values(emulator.stored_points("refused").iter().map(|p| p.value))
        .into_iter()
        .collect();
    assert_eq!(stored.len(), 2_700, "every other chunk exactly once");
}

/// A refusal and a chunk kept for later in the same submit: `Incomplete` counts the kept
/// ones, and the refused ones are still reachable inside it.
#[tokio::test]
async fn a_refusal_and_a_kept_chunk_in_one_submit() {
    let (emulator, client) = setup().await;
    let queue = client.queue().with_max_in_flight(1).build().unwrap();
    fill(&queue, "mixed", 900).await;
    let status = |status: u16| Fault::Status {
        status,
        retry_after: None,
        body: r#"{"errors":{"params":{"value":["is invalid"]}}}"#.into(),
    };
    emulator
        .faults()
        .inject_on("/v1/measurements", status(422), 0, 1);
    emulator
        .faults()
        .inject_on("/v1/measurements", status(503), 0, 1);
    let err = queue.submit().await.unwrap_err();
    assert!(
        matches!(err, Error::Incomplete { unsent: 300, .. }),
        "{err:?}"
    );
    assert_eq!(
        RejectedMeasurements::of(&err).unwrap().measurements.len(),
        300
    );
    assert_eq!(queued_values(&queue), (300..600).collect::<Vec<_>>());
    queue.submit().await.unwrap();
    assert_eq!(emulator.point_count(), 600);
}

/// Without timestamps a chunk whose outcome is unknown (a 503) may already be stored: it is
/// dropped and logged, not resent. With them (the default) it is kept.
#[tokio::test]
async fn untimed_chunks_are_dropped_after_an_unknown_outcome() {
    let (emulator, client) = setup().await;
    let maintenance = || Fault::Status {
        status: 503,
        retry_after: None,
        body: String::new(),
    };
    let untimed = client.queue().with_timestamps(false).build().unwrap();
    fill(&untimed, "untimed", 300).await;
    assert!(untimed.pending().iter().all(|m| m.timestamp().is_none()));
    emulator
        .faults()
        .inject_on("/v1/measurements", maintenance(), 0, 1);
    let err = untimed.submit().await.unwrap_err();
    assert_eq!(err.status(), Some(503), "{err:?}");
    assert!(untimed.is_empty());

    let timed = client.queue().build().unwrap();
    let before = chrono::Utc::now().timestamp();
    fill(&timed, "timed", 300).await;
    let after = chrono::Utc::now().timestamp();
    assert!(
        timed
            .pending()
            .iter()
            .all(|m| m.timestamp().is_some_and(|t| (before..=after).contains(&t)))
    );
    emulator
        .faults()
        .inject_on("/v1/measurements", maintenance(), 0, 1);
    let err = timed.submit().await.unwrap_err();
    assert!(
        matches!(err, Error::Incomplete { unsent: 300, .. }),
        "{err:?}"
    );
    timed.submit().await.unwrap();
    assert_eq!(emulator.stored_points("timed").len(), 300);
}

/// A bounded queue drops its oldest measurements and counts them.
#[tokio::test]
async fn a_full_queue_drops_the_oldest() {
    let (_emulator, client) = setup().await;
    let queue = client.queue().with_capacity(100).build().unwrap();
    fill(&queue, "bounded", 250).await;
    assert_eq!(queue.len(), 100);
    assert_eq!(queue.dropped(), 150);
    assert_eq!(queued_values(&queue), (150..250).collect::<Vec<_>>());
    assert!(matches!(
        client.queue().with_capacity(0).build(),
        Err(Error::Config { .. })
    ));
    queue.drain();
}

#[tokio::test]
async fn a_cancelled_submit_loses_nothing() {
    let (emulator, client) = setup().await;
    emulator.set_post_latency(Some(Duration::from_secs(5)));
    let queue = client.queue().build().unwrap();
    fill(&queue, "cancelled", 3_000).await;
    let outcome = tokio::time::timeout(Duration::from_millis(200), queue.submit()).await;
    assert!(outcome.is_err(), "the submit should have been cut off");
    assert_eq!(queue.len(), 3_000);
    assert_eq!(queued_values(&queue), (0..3_000).collect::<Vec<_>>());
    emulator.set_post_latency(None);
    queue.submit().await.unwrap();
    let stored: BTreeSet<u32> = values(emulator.stored_points("cancelled").iter().map(|p| p.value))
        .into_iter()
        .collect();
    assert_eq!(stored.len(), 3_000);
}

#[tokio::test]
async fn auto_submit_failures_keep_measurements() {
    let (emulator, client) = setup().await;
    emulator
        .faults()
        .inject_on("/v1/measurements", Fault::DropConnection, 0, 1);
    let queue = client.queue().with_auto_submit_count(10).build().unwrap();
    for i in 0..9 {
        queue.add("auto", f64::from(i)).await.unwrap();
    }
    assert_eq!(emulator.point_count(), 0);
    let err = queue.add("auto", 9.0).await.unwrap_err();
    assert!(
        matches!(err, Error::Incomplete { unsent: 10, .. }),
        "{err:?}"
    );
    assert_eq!(queue.len(), 10);
    queue.add("auto", 10.0).await.unwrap();
    assert!(queue.is_empty());
    assert_eq!(emulator.point_count(), 11);
}

#[tokio::test]
async fn scope_always_submits() {
    let (emulator, client) = setup().await;
    let queue = client.queue().build().unwrap();
    let outcome: Result<(), Error> = queue
        .scope(async |q| {
            q.add("scoped", 1.0).await?;
            Err(Error::invalid_input("test", "the body failed"))
        })
        .await;
    assert!(matches!(outcome, Err(Error::InvalidInput { .. })));
    assert!(queue.is_empty());
    assert_eq!(emulator.point_count(), 1);

    emulator.faults().always(Fault::Status {
        status: 500,
        retry_after: None,
        body: String::new(),
    });
    let outcome: Result<u8, Error> = queue
        .scope(async |q| {
            q.add("scoped", 2.0).await?;
            Ok(7)
        })
        .await;
    assert!(
        matches!(outcome, Err(Error::Incomplete { unsent: 1, .. })),
        "{outcome:?}"
    );
    assert_eq!(
        queue.len(),
        1,
        "a failed final submit keeps the measurement"
    );
    emulator.faults().clear();
    let drained = queue.drain();
    assert_eq!(drained.len(), 1);
    assert_eq!(drained[0].name(), "scoped");
    assert!(queue.is_empty());
}

#[tokio::test]
async fn invalid_measurements_are_refused_before_queueing() {
    let (emulator, client) = setup().await;
    let queue = client.queue().build().unwrap();
    for bad in [
        Measurement::new("cpu", f64::NAN),
        Measurement::new("bad name", 1.0),
        Measurement::new("cpu", 1.0).with_tags(tags([("bad tag", "v")])),
        Measurement::new("cpu", 1.0).with_tags(tags([("t", "a,b")])),
        Measurement::new("cpu", 1e200),
    ] {
        let err = queue.add_measurement(bad).await.unwrap_err();
        assert!(matches!(err, Error::InvalidInput { .. }), "{err:?}");
    }
    let untagged = AppOpticsClient::builder()
        .with_token("key_test")
        .with_base_url(emulator.api_url())
        .build()
        .unwrap();
    let err = untagged
        .queue()
        .build()
        .unwrap()
        .add("cpu", 1.0)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("at least one tag"), "{err}");
    assert!(queue.is_empty());
    queue.submit().await.unwrap();
    assert_eq!(emulator.requests().count(), 0, "nothing was sent");
}

#[tokio::test]
#[ignore = "benchmark-sized; run with `cargo test -p appoptics-client --release --test queue -- --ignored`"]
async fn a_million_measurements_go_through() {
    let (emulator, client) = setup().await;
    let queue = client
        .queue()
        .with_chunk_size(1000)
        .with_max_in_flight(8)
        .build()
        .unwrap();
    fill(&queue, "million", 1_000_000).await;
    let report = queue.submit().await.unwrap();
    assert_eq!(report.measurements, 1_000_000);
    assert_eq!(report.requests, 1_000);
    assert_eq!(emulator.point_count(), 1_000_000);
    assert!(queue.is_empty());
}

#[tokio::test]
async fn one_in_flight_keeps_the_failed_chunk_and_stops_at_a_rate_limit() {
    // With one chunk in flight the next chunk's body is written while the current one is
    // on its way; a failure still keeps exactly its own chunk, in order.
    let (emulator, client) = setup().await;
    let queue = client.queue().with_max_in_flight(1).build().unwrap();
    fill(&queue, "sequential", 3_000).await;
    emulator.faults().inject_on(
        "/v1/measurements",
        Fault::Status {
            status: 503,
            retry_after: None,
            body: r#"{"errors":{"system":["maintenance"]}}"#.into(),
        },
        5,
        1,
    );
    let err = queue.submit().await.unwrap_err();
    let Error::Incomplete { unsent, .. } = &err else {
        panic!("{err:?}");
    };
    assert_eq!(*unsent, 300);
    assert_eq!(queued_values(&queue), (1_500..1_800).collect::<Vec<_>>());
    assert_eq!(emulator.point_count(), 2_700);
    let report = queue.submit().await.unwrap();
    assert_eq!((report.requests, report.measurements), (1, 300));
    assert_eq!(emulator.point_count(), 3_000);

    // A rate limit after three chunks: nothing after it is started.
    let (emulator, client) = setup().await;
    emulator.set_rate_limit(3, Duration::from_secs(60));
    let queue = client.queue().with_max_in_flight(1).build().unwrap();
    fill(&queue, "limited", 3_000).await;
    let err = queue.submit().await.unwrap_err();
    let Error::Incomplete { unsent, source, .. } = &err else {
        panic!("{err:?}");
    };
    assert!(matches!(**source, Error::RateLimited { .. }), "{source:?}");
    assert_eq!(emulator.point_count(), 900);
    assert_eq!(emulator.requests().count(), 4);
    assert_eq!(*unsent, 2_100);
    assert_eq!(queued_values(&queue), (900..3_000).collect::<Vec<_>>());
}
