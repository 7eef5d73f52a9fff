//! [`ManagedQueue`]: a measurement queue that many tasks record into and that sends by itself
//! in the background, on an interval, until it is shut down.
//!
//! What happens to the measurements, outcome by outcome, is the crate's delivery contract
//! (see the [crate documentation](crate#delivery-contract)); every decision is read from the
//! failure's [`Disposition`](metrics_core::Disposition) by the queue underneath
//! ([`crate::queue`]).

use std::collections::VecDeque;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use metrics_core::{Error, Result};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::BACKEND;
use crate::model::{Measurement, Tags};
use crate::queue::{MeasurementQueue, QueueBuilder, SubmitOutcome, SubmitReport};

/// The capacity of a managed queue unless set with [`QueueBuilder::with_capacity`].
pub const DEFAULT_MANAGED_CAPACITY: usize = 100_000;
/// How often a managed queue sends unless set: every 15 s.
pub const DEFAULT_FLUSH_INTERVAL: Duration = Duration::from_secs(15);
/// The longest a managed queue waits after failures unless set: 5 minutes.
pub const DEFAULT_MAX_BACKOFF: Duration = Duration::from_secs(300);

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// How a [`ManagedQueue`] sends.
///
/// ```
/// use std::time::Duration;
/// use appoptics_client::ManagedConfig;
///
/// let config = ManagedConfig::new()
///     .with_interval(Duration::from_secs(10))
///     .with_jitter(0.2)
///     .with_flush_count(2_000);
/// assert_eq!(config.interval(), Duration::from_secs(10));
/// ```
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct ManagedConfig {
    interval: Duration,
    jitter: f64,
    flush_count: Option<usize>,
    max_backoff: Duration,
}

impl Default for ManagedConfig {
    fn default() -> Self {
        Self {
            interval: DEFAULT_FLUSH_INTERVAL,
            jitter: 0.1,
            flush_count: None,
            max_backoff: DEFAULT_MAX_BACKOFF,
        }
    }
}

impl ManagedConfig {
    /// Every 15 s, ±10 %, early once a submission's worth is queued (`chunk_size ×
    /// max_in_flight`), backing off up to 5 minutes.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sends every `interval`.
    #[must_use]
    pub fn with_interval(mut self, interval: Duration) -> Self {
        self.interval = interval;
        self
    }

    /// Spreads each wait by up to ± `fraction` of it (0 to 1, default 0.1), so that many
    /// processes started together do not send together.
    #[must_use]
    pub fn with_jitter(mut self, fraction: f64) -> Self {
        self.jitter = fraction;
        self
    }

    /// Sends early, without waiting for the interval, once `count` measurements are queued.
    #[must_use]
    pub fn with_flush_count(mut self, count: usize) -> Self {
        self.flush_count = Some(count);
        self
    }

    /// The longest wait after failures (the backoff is `interval × (1 + failures)`, or the
    /// server's wait after a 429, whichever is longer, up to this).
    #[must_use]
    pub fn with_max_backoff(mut self, max: Duration) -> Self {
        self.max_backoff = max;
        self
    }

    /// The interval.
    pub fn interval(&self) -> Duration {
        self.interval
    }
}

/// A set of tags checked once, for [`ManagedQueue::add_tagged`]: measurements added with it
/// share one map, and adding one allocates nothing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TagSet(pub(crate) Arc<Tags>);

impl TagSet {
    /// The tags, as they are sent.
    pub fn tags(&self) -> &Tags {
        &self.0
    }
}

/// What a managed queue has done so far.
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct ManagedStatus {
    /// Whether the background sending runs.
    pub running: bool,
    /// Measurements waiting.
    pub queued: usize,
    /// Measurements the server accepted.
    pub sent: u64,
    /// Measurements the server refused for good, held for [`ManagedQueue::take_rejected`].
    pub rejected_waiting: usize,
    /// Measurements the server refused for good, in all.
    pub rejected: u64,
    /// Measurements dropped because the queue was full (the oldest).
    pub dropped_full: u64,
    /// Measurements without a time dropped after an unknown outcome.
    pub dropped_unknown: u64,
    /// Failed sends in a row (what the backoff counts).
    pub failures: u32,
    /// The last failure.
    pub last_error: Option<Error>,
}

/// What [`ManagedQueue::shutdown`] could not deliver, handed back, and what the queue did in
/// its life.
#[derive(Debug, Default)]
#[non_exhaustive]
pub struct ShutdownReport {
    /// Measurements the server accepted, in the queue's whole life.
    pub sent: u64,
    /// Measurements still unsent when the budget ran out (or the server kept failing), in
    /// order, with their tags and times: store them, or send them again with a new queue.
    pub unsent: Vec<Measurement>,
    /// Measurements the server refused for good and that were not taken yet.
    pub rejected: Vec<Measurement>,
    /// Measurements dropped because the queue was full.
    pub dropped_full: u64,
    /// Measurements without a time dropped after an unknown outcome.
    pub dropped_unknown: u64,
    /// The last failure, if any.
    pub last_error: Option<Error>,
}

impl ShutdownReport {
    /// Whether everything recorded was delivered: nothing unsent, refused or dropped.
    pub fn is_complete(&self) -> bool {
        self.unsent.is_empty()
            && self.rejected.is_empty()
            && self.dropped_full == 0
            && self.dropped_unknown == 0
    }
}

/// A measurement queue that sends in the background. Clones share one queue and one
/// background task; `add` takes `&self` and does not wait for the network.
///
/// ```no_run
/// # async fn run(client: appoptics_client::AppOpticsClient) -> metrics_core::Result<()> {
/// use std::time::Duration;
/// use appoptics_client::{ManagedConfig, model::tags};
///
/// let queue = client
///     .queue()
///     .with_tag("service", "api")
///     .with_capacity(50_000)
///     .start(ManagedConfig::new().with_interval(Duration::from_secs(10)))?;
/// let route = queue.tag_set(tags([("route", "/work/{ms}")]))?;
/// queue.add("requests", 1.0)?;                   // stamped with the time it was added
/// queue.add_tagged("latency.ms", 12.5, &route)?;
/// let report = queue.shutdown(Duration::from_secs(5)).await;
/// if !report.is_complete() {
///     eprintln!("{} unsent, {} refused", report.unsent.len(), report.rejected.len());
/// }
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct ManagedQueue {
    shared: Arc<Shared>,
    task: Arc<TaskGuard>,
}

impl fmt::Debug for ManagedQueue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ManagedQueue")
            .field("queue", &self.shared.queue)
            .field("config", &self.shared.config)
            .field("status", &self.status())
            .finish_non_exhaustive()
    }
}

/// Aborts the background task when the last handle goes away.
struct TaskGuard {
    handle: Mutex<Option<JoinHandle<()>>>,
}

impl Drop for TaskGuard {
    fn drop(&mut self) {
        if let Some(handle) = lock(&self.handle).take() {
            handle.abort();
        }
    }
}

struct Shared {
    queue: MeasurementQueue,
    config: ManagedConfig,
    flush_count: usize,
    /// Refused measurements, until the caller takes them (bounded like the queue).
    rejected: Mutex<VecDeque<Measurement>>,
    state: Mutex<State>,
    sent: AtomicU64,
    shutting_down: AtomicBool,
    wake: tokio::sync::Notify,
    /// One submission at a time: a caller's flush and the background never race.
    send_lock: tokio::sync::Mutex<()>,
}

#[derive(Default)]
struct State {
    running: bool,
    failures: u32,
    not_before: Option<Instant>,
    rejected: u64,
    dropped_rejected: u64,
    dropped_unknown: u64,
    last_error: Option<Error>,
}

impl QueueBuilder {
    /// Builds the queue and starts sending it in the background (see [`ManagedQueue`]).
    /// Without [`with_capacity`](Self::with_capacity) it holds at most
    /// [`DEFAULT_MANAGED_CAPACITY`] measurements. `auto_submit_count` is not used: the
    /// background sends instead, early at the config's flush count.
    ///
    /// # Errors
    ///
    /// As [`build`](Self::build); [`Error::Config`] for a zero interval, a jitter outside
    /// 0..=1, or no Tokio runtime to run on.
    pub fn start(self, config: ManagedConfig) -> Result<ManagedQueue> {
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| {
            Error::config(
                BACKEND,
                "a managed queue must be started inside a Tokio runtime",
            )
        })?;
        if config.interval.is_zero() {
            return Err(Error::config(
                BACKEND,
                "the flush interval must not be zero",
            ));
        }
        if !(0.0..=1.0).contains(&config.jitter) {
            return Err(Error::config(BACKEND, "the jitter must be between 0 and 1"));
        }
        let builder = match self.capacity_set() {
            Some(_) => self,
            None => self.with_capacity(DEFAULT_MANAGED_CAPACITY),
        };
        let queue = builder.build()?;
        let flush_count = config
            .flush_count
            .unwrap_or_else(|| queue.chunk_size() * queue.max_in_flight())
            .max(1);
        let shared = Arc::new(Shared {
            queue,
            config,
            flush_count,
            rejected: Mutex::new(VecDeque::new()),
            state: Mutex::new(State {
                running: true,
                ..State::default()
            }),
            sent: AtomicU64::new(0),
            shutting_down: AtomicBool::new(false),
            wake: tokio::sync::Notify::new(),
            send_lock: tokio::sync::Mutex::new(()),
        });
        let handle = runtime.spawn(run(Arc::clone(&shared)));
        Ok(ManagedQueue {
            shared,
            task: Arc::new(TaskGuard {
                handle: Mutex::new(Some(handle)),
            }),
        })
    }
}

impl ManagedQueue {
    fn refuse_after_shutdown(&self) -> Result<()> {
        if self.shared.shutting_down.load(Ordering::Relaxed) {
            return Err(Error::config(
                BACKEND,
                "the managed queue was shut down; start a new one to record more",
            ));
        }
        Ok(())
    }

    fn queued(&self, queued: usize) {
        if queued >= self.shared.flush_count {
            self.shared.wake.notify_one();
        }
    }

    /// Records a value with the queue's and the connection's tags, stamped with the time now
    /// (unless the queue was built without timestamps). Allocates nothing once the metric
    /// name has been seen (beyond the queue's own amortized growth).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidInput`] for an invalid name or value, or no tags anywhere;
    /// [`Error::Config`] after [`shutdown`](Self::shutdown).
    pub fn add(&self, name: &str, value: f64) -> Result<()> {
        self.refuse_after_shutdown()?;
        let queued = self.shared.queue.push_value(name, value)?;
        self.queued(queued);
        Ok(())
    }

    /// Records a value with a tag set made by [`tag_set`](Self::tag_set). Allocates nothing
    /// once the metric name has been seen.
    ///
    /// # Errors
    ///
    /// As [`add`](Self::add).
    pub fn add_tagged(&self, name: &str, value: f64, tags: &TagSet) -> Result<()> {
        self.refuse_after_shutdown()?;
        let queued = self.shared.queue.push_with_tags(name, value, &tags.0)?;
        self.queued(queued);
        Ok(())
    }

    /// Records a measurement as [`MeasurementQueue::add_measurement`] does (its own time is
    /// kept; one is set when it has none).
    ///
    /// # Errors
    ///
    /// As [`add`](Self::add).
    pub fn add_measurement(&self, measurement: Measurement) -> Result<()> {
        self.refuse_after_shutdown()?;
        let queued = self.shared.queue.push_measurement(measurement)?;
        self.queued(queued);
        Ok(())
    }

    /// Checks `tags` once, laid over the queue's and the connection's tags, with the
    /// client's tag-value sanitizer applied, for [`add_tagged`](Self::add_tagged).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidInput`] for an invalid tag.
    pub fn tag_set(&self, tags: Tags) -> Result<TagSet> {
        self.shared.queue.tag_set(tags).map(TagSet)
    }

    /// Sends what is queued now, as [`MeasurementQueue::submit`] (the refused measurements
    /// come back inside the error, not through [`take_rejected`](Self::take_rejected)).
    ///
    /// # Errors
    ///
    /// As [`MeasurementQueue::submit`].
    pub async fn flush(&self) -> Result<SubmitReport> {
        let outcome = self.shared.submit().await;
        self.shared.account(&outcome, outcome.handed_back.len());
        outcome.into_result()
    }

    /// Takes the measurements the server refused for good during background sends, with
    /// their tags and times (the reasons were logged, and are in
    /// [`ManagedStatus::last_error`]).
    pub fn take_rejected(&self) -> Vec<Measurement> {
        lock(&self.shared.rejected).drain(..).collect()
    }

    /// What the queue has done so far.
    pub fn status(&self) -> ManagedStatus {
        let state = lock(&self.shared.state);
        ManagedStatus {
            running: state.running,
            queued: self.shared.queue.len(),
            sent: self.shared.sent.load(Ordering::Relaxed),
            rejected_waiting: lock(&self.shared.rejected).len(),
            rejected: state.rejected,
            dropped_full: self.shared.queue.dropped() + state.dropped_rejected,
            dropped_unknown: state.dropped_unknown,
            failures: state.failures,
            last_error: state.last_error.clone(),
        }
    }

    /// Stops the background sending and sends what is left within `budget`, waiting out
    /// rate limits and backoff while the budget allows. Hands back what could not be sent
    /// and what the server refused; [`add`](Self::add) fails afterwards, on every clone.
    pub async fn shutdown(&self, budget: Duration) -> ShutdownReport {
        let shared = &self.shared;
        let deadline = Instant::now() + budget;
        shared.shutting_down.store(true, Ordering::SeqCst);
        shared.wake.notify_one();
        let handle = lock(&self.task.handle).take();
        let work = async {
            if let Some(handle) = handle {
                let _ = handle.await;
            }
            shared.drain_until(deadline).await;
        };
        if tokio::time::timeout_at(deadline, work).await.is_err() {
            // Cut off mid-send: chunks in flight went back to the queue (the submit is
            // cancel-safe), to be handed back below.
            tracing::warn!(
                backend = BACKEND,
                budget_ms = u64::try_from(budget.as_millis()).unwrap_or(u64::MAX),
                "the managed queue did not finish sending within its shutdown budget"
            );
        }
        if let Some(handle) = lock(&self.task.handle).take() {
            handle.abort();
        }
        let mut state = lock(&shared.state);
        state.running = false;
        ShutdownReport {
            sent: shared.sent.load(Ordering::Relaxed),
            unsent: shared.queue.drain(),
            rejected: lock(&shared.rejected).drain(..).collect(),
            dropped_full: shared.queue.dropped() + state.dropped_rejected,
            dropped_unknown: state.dropped_unknown,
            last_error: state.last_error.clone(),
        }
    }
}

impl Shared {
    async fn submit(&self) -> SubmitOutcome {
        let _sending = self.send_lock.lock().await;
        self.queue.submit_outcome().await
    }

    /// Takes in what a submission came to (`rejected`: how many it handed back).
    fn account(&self, outcome: &SubmitOutcome, rejected: usize) {
        self.sent
            .fetch_add(outcome.report.measurements as u64, Ordering::Relaxed);
        let mut state = lock(&self.state);
        state.rejected += rejected as u64;
        state.dropped_unknown += outcome.dropped as u64;
        let error = outcome
            .kept_error
            .as_ref()
            .or(outcome.rejection.as_ref())
            .or(outcome.drop_error.as_ref());
        if let Some(error) = error {
            state.last_error = Some(error.clone());
        }
        match &outcome.kept_error {
            None => {
                state.failures = 0;
                state.not_before = None;
            }
            Some(error) => {
                state.failures = state.failures.saturating_add(1);
                state.not_before = Some(Instant::now() + self.backoff(state.failures, error));
            }
        }
    }

    /// Keeps refused measurements for `take_rejected`, within the queue's capacity.
    fn hold_rejected(&self, measurements: Vec<Measurement>) {
        if measurements.is_empty() {
            return;
        }
        let capacity = self.queue.capacity().unwrap_or(DEFAULT_MANAGED_CAPACITY);
        let mut rejected = lock(&self.rejected);
        rejected.extend(measurements);
        let over = rejected.len().saturating_sub(capacity);
        if over > 0 {
            rejected.drain(..over);
            lock(&self.state).dropped_rejected += over as u64;
        }
    }

    /// The wait after `failures` failed sends in a row ending with `error`.
    fn backoff(&self, failures: u32, error: &Error) -> Duration {
        let scaled = self
            .config
            .interval
            .saturating_mul(failures.saturating_add(1));
        let wait = match error.retry_after() {
            Some(asked) => asked.max(self.config.interval),
            None => scaled,
        };
        wait.min(self.config.max_backoff)
    }

    /// The interval, spread by the jitter.
    fn next_interval(&self) -> Duration {
        let spread = self.config.jitter * (2.0 * fastrand::f64() - 1.0);
        self.config.interval.mul_f64((1.0 + spread).max(0.0))
    }

    /// One background send: its refused measurements are held for the caller (a
    /// background send has no caller to return them to).
    async fn send_in_background(&self) {
        let mut outcome = self.submit().await;
        // Held before they are counted, so that a caller who sees the count finds them.
        let rejected = std::mem::take(&mut outcome.handed_back);
        let count = rejected.len();
        self.hold_rejected(rejected);
        self.account(&outcome, count);
    }

    /// Sends until the queue is empty, the server keeps failing past the deadline, or the
    /// deadline comes.
    async fn drain_until(&self, deadline: Instant) {
        loop {
            if self.queue.is_empty() {
                return;
            }
            let not_before = lock(&self.state).not_before;
            if let Some(not_before) = not_before {
                if not_before > deadline {
                    return;
                }
                tokio::time::sleep_until(not_before).await;
            }
            self.send_in_background().await;
        }
    }
}

/// The background task: sends every interval (or earlier at the flush count), not before
/// the backoff allows, until shutdown.
async fn run(shared: Arc<Shared>) {
    loop {
        let interval = shared.next_interval();
        tokio::select! {
            () = tokio::time::sleep(interval) => {}
            () = shared.wake.notified() => {}
        }
        if shared.shutting_down.load(Ordering::SeqCst) {
            return;
        }
        // Woken early during a backoff: wait it out (or until shutdown).
        loop {
            let not_before = lock(&shared.state).not_before;
            let Some(not_before) = not_before.filter(|t| *t > Instant::now()) else {
                break;
            };
            tokio::select! {
                () = tokio::time::sleep_until(not_before) => {}
                () = shared.wake.notified() => {}
            }
            if shared.shutting_down.load(Ordering::SeqCst) {
                return;
            }
        }
        if shared.queue.is_empty() {
            continue;
        }
        shared.send_in_background().await;
    }
}
