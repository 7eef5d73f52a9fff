//! A service that records measurements from many tasks into an AppOptics managed queue,
//! through an outage, and shuts down without losing any.
//!
//! Sixteen tokio tasks record request durations, tagged with an axum-style route template
//! (`/work/{ms}`, cleaned by the tag-value sanitizer) and their worker name, into one
//! [`ManagedQueue`]. The AppOptics emulator answers every measurement post with 503 for the
//! first part of the run; the queue keeps the chunks (they are time-stamped, so a resend is
//! the same points), backs off, and delivers them once the server is back. Shutdown sends
//! what is left within its budget and hands back anything it could not.
//!
//! Run with `cargo run --example appoptics_service`.

use std::time::Duration;

use appoptics_client::model::tags;
use appoptics_client::{
    AppOpticsClient, ManagedConfig, ManagedQueue, ShutdownReport, TagSanitizer,
};
use metrics_emulators::Fault;
use metrics_emulators::appoptics::AppOpticsEmulator;
use metrics_hub::chrono::Utc;
use metrics_hub::{Error, RetryConfig};

/// The tasks that record.
pub(crate) const WORKERS: usize = 16;
/// Measurements each task records.
pub(crate) const PER_WORKER: usize = 200;
/// The metric they record.
pub(crate) const METRIC: &str = "work.duration_ms";
/// How long the emulator fails every measurement post.
pub(crate) const OUTAGE: Duration = Duration::from_millis(1_200);

/// One recorded measurement, as its task saw it: the seconds on the clock just before and
/// just after `add`, between which the queue stamped it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Recorded {
    /// The task.
    pub(crate) worker: usize,
    /// Its value: the task's sequence number, so that every point is unique in its stream.
    pub(crate) sequence: usize,
    /// Seconds since the epoch before `add`.
    pub(crate) not_before: i64,
    /// Seconds since the epoch after `add`.
    pub(crate) not_after: i64,
}

/// What a run did.
#[derive(Debug)]
pub(crate) struct ServiceRun {
    /// Every measurement the tasks recorded.
    pub(crate) recorded: Vec<Recorded>,
    /// Seconds since the epoch when the outage ended.
    pub(crate) outage_end: i64,
    /// What shutdown reported.
    pub(crate) report: ShutdownReport,
    /// Measurement posts the server failed during the outage (seen by the queue).
    pub(crate) failed_while_down: bool,
}

/// Runs the service against `emulator`: records from [`WORKERS`] tasks, fails the server for
/// [`OUTAGE`], then shuts down with a 10 s budget.
///
/// # Errors
///
/// A client or queue that cannot be built, or a recording task that failed.
pub(crate) async fn run(emulator: &AppOpticsEmulator) -> Result<ServiceRun, Error> {
    let client = AppOpticsClient::builder()
        .with_token("0123456789abcdef")
        .with_base_url(emulator.api_url())
        .with_tag("service", "worker-pool")
        .with_tag_sanitizer(TagSanitizer::TagValue)
        // Measurement posts are never retried by the pipeline; the queue resends.
        .with_retry(RetryConfig::none())
        .build()?;
    let queue = client.queue().with_capacity(50_000).start(
        ManagedConfig::new()
            .with_interval(Duration::from_millis(100))
            .with_max_backoff(Duration::from_millis(400)),
    )?;

    // The outage starts before the first measurement.
    emulator.faults().always(Fault::Status {
        status: 503,
        retry_after: None,
        body: r#"{"errors":{"system":["The API is down for maintenance"]}}"#.into(),
    });

    let workers: Vec<_> = (0..WORKERS)
        .map(|worker| tokio::spawn(record(queue.clone(), worker)))
        .collect();

    tokio::time::sleep(OUTAGE).await;
    let failed_while_down = queue
        .status()
        .last_error
        .is_some_and(|e| e.status() == Some(503));
    emulator.faults().clear();
    let outage_end = Utc::now().timestamp();
    println!(
        "outage over after {} ms: {} measurements queued, {} sent so far",
        OUTAGE.as_millis(),
        queue.status().queued,
        queue.status().sent
    );

    let mut recorded = Vec::with_capacity(WORKERS * PER_WORKER);
    for worker in workers {
        let task = worker
            .await
            .map_err(|e| Error::invalid_input("appoptics", format!("a worker failed: {e}")))?;
        recorded.extend(task?);
    }
    let report = queue.shutdown(Duration::from_secs(10)).await;
    Ok(ServiceRun {
        recorded,
        outage_end,
        report,
        failed_while_down,
    })
}

/// One task: a request every 5 ms, its duration recorded with the task's route tags.
async fn record(queue: ManagedQueue, worker: usize) -> Result<Vec<Recorded>, Error> {
    // Checked once: every add with it allocates nothing.
    let route = queue.tag_set(tags([
        ("route", "/work/{ms}".to_owned()),
        ("worker", format!("w{worker}")),
    ]))?;
    let mut recorded = Vec::with_capacity(PER_WORKER);
    for sequence in 0..PER_WORKER {
        let not_before = Utc::now().timestamp();
        queue.add_tagged(METRIC, sequence as f64, &route)?;
        let not_after = Utc::now().timestamp();
        recorded.push(Recorded {
            worker,
            sequence,
            not_before,
            not_after,
        });
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    Ok(recorded)
}

#[tokio::main]
#[allow(dead_code)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let emulator = AppOpticsEmulator::start().await?;
    println!("AppOptics emulator at {}", emulator.api_url());
    let run = run(&emulator).await?;
    let report = &run.report;
    println!(
        "recorded {}, delivered {}, stored {}; unsent {}, refused {}, dropped {} (full) + {} (unknown outcome)",
        run.recorded.len(),
        report.sent,
        emulator.point_count(),
        report.unsent.len(),
        report.rejected.len(),
        report.dropped_full,
        report.dropped_unknown,
    );
    println!(
        "the server failed while it was down: {}; the last error: {}",
        run.failed_while_down,
        report
            .last_error
            .as_ref()
            .map_or_else(|| "none".to_owned(), ToString::to_string)
    );
    // A point recorded during the outage keeps the time it was added, not the time it
    // was finally delivered.
    if let Some(point) = emulator
        .stored_points(METRIC)
        .iter()
        .find(|p| p.time < run.outage_end)
    {
        println!(
            "recorded during the outage (it ended at {}), stored with time {}: {:?}",
            run.outage_end, point.time, point.tags
        );
    }
    assert!(report.is_complete(), "nothing lost");
    Ok(())
}
