//! The managed queue's `add` on the hot path: once a metric name has been seen, adding a
//! value allocates nothing of its own — only the queue's storage grows, amortized. The
//! allocations are counted by an instrumented global allocator, in a test binary of its own.

use std::alloc::System;
use std::time::Duration;

use appoptics_client::model::tags;
use appoptics_client::{AppOpticsClient, ManagedConfig};
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

const ADDS: usize = 10_000;

#[tokio::test(flavor = "current_thread")]
async fn adding_a_known_metric_allocates_only_for_the_queues_growth() {
    // No server is needed: the interval is long and nothing is flushed during the test.
    let client = AppOpticsClient::builder()
        .with_token("key_test")
        .with_base_url("http://127.0.0.1:9/v1")
        .with_tags(tags([("host", "web-1")]))
        .build()
        .unwrap();
    let queue = client
        .queue()
        .start(
            ManagedConfig::new()
                .with_interval(Duration::from_secs(3600))
                .with_flush_count(usize::MAX),
        )
        .unwrap();
    let tag_set = queue.tag_set(tags([("route", "/work/ms")])).unwrap();
    queue.add("request.latency", 0.5).unwrap();
    queue.add_tagged("request.latency", 0.5, &tag_set).unwrap();

    let region = Region::new(GLOBAL);
    for i in 0..ADDS {
        #[allow(clippy::cast_precision_loss, reason = "small test values")]
        let value = i as f64;
        queue.add("request.latency", value).unwrap();
        queue
            .add_tagged("request.latency", value, &tag_set)
            .unwrap();
    }
    let stats = region.change();

    // 20 000 adds into a growing queue: a doubling vector reallocates about log2(20 000) = 15
    // times. Anything per add would be 20 000 allocations or more.
    let allowed = 40;
    assert!(
        stats.allocations + stats.reallocations <= allowed,
        "{} allocations and {} reallocations for {} adds",
        stats.allocations,
        stats.reallocations,
        2 * ADDS
    );
    assert_eq!(queue.status().queued, 2 * ADDS + 2);
    drop(queue);
}
