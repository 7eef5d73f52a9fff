//! `cargo run --example appoptics_service`, checked: many tasks record into a managed queue
//! through an outage of the AppOptics emulator, and after shutdown the emulator holds every
//! measurement exactly once, stamped with the time it was added.

use std::collections::BTreeMap;

use metrics_emulators::appoptics::AppOpticsEmulator;

#[path = "../examples/appoptics_service.rs"]
#[allow(dead_code)]
mod service;

use service::{METRIC, PER_WORKER, WORKERS};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_is_lost_and_every_point_keeps_the_time_it_was_added() {
    let emulator = AppOpticsEmulator::start().await.unwrap();
    let run = service::run(&emulator).await.unwrap();
    let report = &run.report;

    assert!(run.failed_while_down, "the outage was seen by the queue");
    assert!(report.is_complete(), "{report:?}");
    assert_eq!(run.recorded.len(), WORKERS * PER_WORKER);
    assert_eq!(report.sent, (WORKERS * PER_WORKER) as u64);

    // Exactly once: per worker stream, the values 0..PER_WORKER, each one time.
    let stored = emulator.stored_points(METRIC);
    assert_eq!(stored.len(), WORKERS * PER_WORKER);
    assert_eq!(emulator.point_count(), WORKERS * PER_WORKER);
    let mut by_point: BTreeMap<(String, u64), i64> = BTreeMap::new();
    for point in &stored {
        assert_eq!(point.tags["route"], "/work/-ms-");
        assert_eq!(point.tags["service"], "worker-pool");
        let key = (point.tags["worker"].clone(), point.value as u64);
        assert!(
            by_point.insert(key.clone(), point.time).is_none(),
            "{key:?} stored twice"
        );
    }

    // Stamped when added: each point's time lies between the clock readings around its
    // `add`, also for those recorded during the outage and delivered after it.
    let mut during_outage = 0;
    for recorded in &run.recorded {
        let key = (format!("w{}", recorded.worker), recorded.sequence as u64);
        let time = by_point[&key];
        assert!(
            (recorded.not_before..=recorded.not_after).contains(&time),
            "{recorded:?} stored at {time}"
        );
        if recorded.not_after < run.outage_end {
            during_outage += 1;
            assert!(time < run.outage_end);
        }
    }
    assert!(
        during_outage > 0,
        "some measurements were recorded during the outage"
    );
}
