//! [`MetricsRecorder`]: counts flag evaluations from many tasks and sends them to
//! `POST /api/client/metrics` in the background, without losing or double-counting any.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock};
use std::time::Duration;

use chrono::{DateTime, Utc};
use metrics_core::{Error, Result};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::BACKEND;
use crate::client::UnleashClient;
use crate::model::{MetricsBucket, ToggleCount};

/// The most failures the backoff counts (as in the Node SDK): the longest wait is
/// `interval × 11`.
const MAX_FAILURES: u32 = 10;
/// A `Retry-After` longer than this is not believed (unleash-server sends 1–60 s).
const MAX_RETRY_AFTER: Duration = Duration::from_secs(300);

/// How a [`MetricsRecorder`] behaves.
///
/// ```
/// use std::time::Duration;
/// use unleash_client::RecorderConfig;
///
/// let config = RecorderConfig::new()
///     .with_interval(Duration::from_secs(15))
///     .with_shutdown_timeout(Duration::from_secs(5));
/// assert_eq!(config.interval(), Some(Duration::from_secs(15)));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct RecorderConfig {
    interval: Option<Duration>,
    register: bool,
    shutdown_timeout: Duration,
}

impl Default for RecorderConfig {
    fn default() -> Self {
        Self {
            interval: None,
            register: true,
            shutdown_timeout: Duration::from_secs(10),
        }
    }
}

impl RecorderConfig {
    /// Flush every client interval (default 60 s), register first, 10 s to flush at shutdown.
    pub fn new() -> Self {
        Self::default()
    }

    /// Flushes every `interval` instead of the client's.
    #[must_use]
    pub fn with_interval(mut self, interval: Duration) -> Self {
        self.interval = Some(interval);
        self
    }

    /// Whether the background task registers the instance before its first flush
    /// (default true, like the SDKs; a failure other than 401/403 is only logged).
    #[must_use]
    pub fn with_register(mut self, register: bool) -> Self {
        self.register = register;
        self
    }

    /// How long [`MetricsRecorder::shutdown`] may take for its last flush.
    #[must_use]
    pub fn with_shutdown_timeout(mut self, timeout: Duration) -> Self {
        self.shutdown_timeout = timeout;
        self
    }

    /// The flush interval, if set here.
    pub fn interval(&self) -> Option<Duration> {
        self.interval
    }

    /// Whether the recorder registers first.
    pub fn registers(&self) -> bool {
        self.register
    }

    /// The shutdown flush budget.
    pub fn shutdown_timeout(&self) -> Duration {
        self.shutdown_timeout
    }
}

/// What a recorder has done so far.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RecorderStatus {
    /// Whether the background flush is running.
    pub running: bool,
    /// Why it stopped for good (401/403), if it did. Counts are kept.
    pub stopped: Option<String>,
    /// The current failure count of the backoff (0 ..= 10).
    pub failures: u32,
    /// Buckets the server accepted.
    pub buckets_sent: u64,
    /// Evaluations in them.
    pub evaluations_sent: u64,
    /// Buckets given up: rejected with 400, or maybe received (timeout after sending).
    pub buckets_dropped: u64,
    /// Evaluations in them.
    pub evaluations_dropped: u64,
    /// Evaluations counted but not sent yet (unsent buckets and the current one).
    pub evaluations_pending: u64,
    /// The last failure, if any.
    pub last_error: Option<String>,
}

/// Counts flag evaluations and sends them to Unleash on an interval.
///
/// Counting is cheap and lock-light (a read lock and an atomic add once a flag has been
/// seen), so it can sit in a hot path shared by many tasks: clones share one set of counters
/// and one background task. Unsent counts survive failures and are merged into the next
/// bucket.
///
/// What happens to a bucket, by the server's answer:
///
/// | answer | what happens to the counts | next attempt |
/// |---|---|---|
/// | 2xx (202, or 204 when the server has metrics disabled) | sent | after `interval`; one failure forgiven |
/// | 429, 5xx, 404, 408, connection refused | kept, merged into the next bucket (sums, earliest start) | after `interval × (1 + failures)` (failures ≤ 10), and not before `Retry-After` |
/// | 401, 403 | kept | none: the background flush stops and the error is surfaced by [`MetricsRecorder::status`], `flush` and `shutdown` |
/// | 400 (or another 4xx) | dropped and logged with the server's details: resending the same data cannot succeed | after `interval` |
/// | timeout or broken connection after the request was sent | dropped and logged: the server may have counted it, and resending would count it twice | after `interval` |
///
/// Metric POSTs are sent with [`Request::without_retries`](metrics_core::http::Request::without_retries)
/// (in [`UnleashClient::send_metrics`]), so the recorder is the only place that decides about
/// sending counts again.
///
/// Call [`shutdown`](Self::shutdown) before exiting: it sends what is left. Dropping the
/// last clone only stops the background task, and what was not sent yet is lost.
///
/// ```no_run
/// # async fn run() -> metrics_core::Result<()> {
/// use unleash_client::{RecorderConfig, UnleashClient};
///
/// let client = UnleashClient::builder()
///     .with_url("http://127.0.0.1:4242")
///     .with_api_token("default:development.unleash-insecure-api-token")
///     .with_app_name("checkout-service")
///     .build()?;
/// let recorder = client.start_recorder(RecorderConfig::new())?;
/// recorder.count("new-checkout", true);
/// recorder.count_variant("button-color", true, "blue");
/// recorder.shutdown().await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct MetricsRecorder {
    shared: Arc<Shared>,
    task: Arc<TaskGuard>,
}

impl fmt::Debug for MetricsRecorder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MetricsRecorder")
            .field("client", &self.shared.client)
            .field("interval", &self.shared.interval)
            .field("status", &self.status())
            .finish_non_exhaustive()
    }
}

/// Aborts the background task when the last recorder handle goes away.
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

#[derive(Default)]
struct FlagCounter {
    yes: AtomicU64,
    no: AtomicU64,
    variants: Mutex<HashMap<String, u64>>,
}

impl FlagCounter {
    fn add(&self, yes: u64, no: u64, variant: Option<&str>) {
        if yes > 0 {
            self.yes.fetch_add(yes, Ordering::Relaxed);
        }
        if no > 0 {
            self.no.fetch_add(no, Ordering::Relaxed);
        }
        if let Some(variant) = variant {
            let mut variants = lock(&self.variants);
            if let Some(count) = variants.get_mut(variant) {
                *count = count.saturating_add(1);
            } else {
                variants.insert(variant.to_owned(), 1);
            }
        }
    }

    fn snapshot(&self) -> ToggleCount {
        let mut count = ToggleCount::new(
            self.yes.load(Ordering::Relaxed),
            self.no.load(Ordering::Relaxed),
        );
        count.variants = lock(&self.variants)
            .iter()
            .map(|(k, v)| (k.clone(), *v))
            .collect();
        count
    }
}

struct Shared {
    client: UnleashClient,
    interval: Duration,
    config: RecorderConfig,
    /// Counters of the current bucket. `count` increments under the read lock; taking the
    /// bucket swaps the map under the write lock, so no increment can land in a map that
    /// was already taken.
    counters: RwLock<HashMap<Box<str>, Arc<FlagCounter>>>,
    current_start: Mutex<DateTime<Utc>>,
    /// Counts whose POST failed in a way that says they were not counted.
    unsent: Mutex<Option<MetricsBucket>>,
    /// The bucket being posted right now: still pending until its answer decides its fate.
    in_flight: Mutex<Option<MetricsBucket>>,
    /// One POST at a time: a flush from the caller and one from the background never race.
    send_lock: tokio::sync::Mutex<()>,
    state: Mutex<State>,
    shutting_down: AtomicBool,
    wake: tokio::sync::Notify,
}

#[derive(Default)]
struct State {
    running: bool,
    stopped: Option<Error>,
    failures: u32,
    not_before: Option<Instant>,
    buckets_sent: u64,
    evaluations_sent: u64,
    buckets_dropped: u64,
    evaluations_dropped: u64,
    last_error: Option<String>,
}

/// What to do with a bucket whose POST failed.
#[derive(Debug, PartialEq, Eq)]
enum Fate {
    /// The server did not count it: keep it and back off.
    Keep(Option<Duration>),
    /// The server rejected it for good (400): drop it.
    Reject,
    /// The server may have counted it: drop it rather than risk counting twice.
    Ambiguous,
    /// The credentials are wrong: keep it and stop.
    Stop,
}

fn fate(error: &Error) -> Fate {
    match error {
        Error::Unauthenticated { .. } | Error::Forbidden { .. } | Error::Config { .. } => {
            Fate::Stop
        }
        Error::RateLimited { retry_after, .. } => Fate::Keep(*retry_after),
        Error::NotFound { .. } => Fate::Keep(None),
        Error::Api { status, .. } if *status >= 500 || *status == 408 => {
            Fate::Keep(error.retry_after())
        }
        // Nothing was sent when the connection could not be made.
        Error::Transport { .. } if error.is_connect() => Fate::Keep(None),
        Error::Timeout { .. }
        | Error::Transport { .. }
        | Error::BodyTooLarge { .. }
        | Error::Decode { .. } => Fate::Ambiguous,
        _ => Fate::Reject,
    }
}

/// The stop error, for each caller that asks.
fn replay(error: &Error) -> Error {
    error.clone()
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl MetricsRecorder {
    /// Starts recording for `client` (see [`UnleashClient::start_recorder`]).
    ///
    /// # Errors
    ///
    /// [`Error::Config`] when the client has no backend token, the interval is zero, or
    /// there is no Tokio runtime to run the background flush on.
    pub fn start(client: UnleashClient, config: RecorderConfig) -> Result<Self> {
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| {
            Error::config(
                BACKEND,
                "the metrics recorder must be started inside a Tokio runtime",
            )
        })?;
        let interval = config.interval.unwrap_or_else(|| client.interval());
        if interval.is_zero() {
            return Err(Error::config(
                BACKEND,
                "the recorder interval must not be zero",
            ));
        }
        if !client.has_api_token() {
            return Err(Error::config(
                BACKEND,
                "the recorder needs a backend (client) token: set UNLEASH_API_TOKEN or call with_api_token",
            ));
        }
        let shared = Arc::new(Shared {
            client,
            interval,
            config,
            counters: RwLock::new(HashMap::new()),
            current_start: Mutex::new(Utc::now()),
            unsent: Mutex::new(None),
            in_flight: Mutex::new(None),
            send_lock: tokio::sync::Mutex::new(()),
            state: Mutex::new(State {
                running: true,
                ..State::default()
            }),
            shutting_down: AtomicBool::new(false),
            wake: tokio::sync::Notify::new(),
        });
        let handle = runtime.spawn(run(Arc::clone(&shared)));
        Ok(Self {
            shared,
            task: Arc::new(TaskGuard {
                handle: Mutex::new(Some(handle)),
            }),
        })
    }

    /// Counts one evaluation of `flag`.
    pub fn count(&self, flag: &str, enabled: bool) {
        self.add(flag, u64::from(enabled), u64::from(!enabled), None);
    }

    /// Counts one evaluation of `flag` that handed out `variant` (also counted in yes/no;
    /// the SDKs report the pseudo-variant `disabled` when the flag is off).
    pub fn count_variant(&self, flag: &str, enabled: bool, variant: &str) {
        self.add(flag, u64::from(enabled), u64::from(!enabled), Some(variant));
    }

    /// Adds `yes` and `no` evaluations of `flag` at once.
    pub fn count_many(&self, flag: &str, yes: u64, no: u64) {
        self.add(flag, yes, no, None);
    }

    fn add(&self, flag: &str, yes: u64, no: u64, variant: Option<&str>) {
        {
            let counters = self
                .shared
                .counters
                .read()
                .unwrap_or_else(PoisonError::into_inner);
            if let Some(counter) = counters.get(flag) {
                counter.add(yes, no, variant);
                return;
            }
        }
        let mut counters = self
            .shared
            .counters
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        counters
            .entry(Box::from(flag))
            .or_default()
            .add(yes, no, variant);
    }

    /// Sends what has been counted now, including unsent counts, and returns how many
    /// evaluations were sent (0 when there was nothing to send).
    ///
    /// # Errors
    ///
    /// [`Error::Incomplete`] when the counts were kept for the next attempt (429, 5xx,
    /// connection refused); the server's error when the bucket was dropped (400, or a
    /// timeout after sending); [`Error::Unauthenticated`] / [`Error::Forbidden`] when the
    /// recorder has stopped for wrong credentials (nothing is sent then).
    pub async fn flush(&self) -> Result<u64> {
        self.shared.flush().await
    }

    /// Stops the background flush and sends what is left, within the configured shutdown
    /// timeout. Other clones stop counting into a running recorder after this.
    ///
    /// # Errors
    ///
    /// As [`MetricsRecorder::flush`], and [`Error::Timeout`] when the last flush did not
    /// finish in time.
    pub async fn shutdown(&self) -> Result<u64> {
        let shared = &self.shared;
        let budget = shared.config.shutdown_timeout;
        shared.shutting_down.store(true, Ordering::SeqCst);
        shared.wake.notify_one();
        let handle = lock(&self.task.handle).take();
        let work = async {
            if let Some(handle) = handle {
                let _ = handle.await;
            }
            shared.flush().await
        };
        let result = tokio::time::timeout(budget, work)
            .await
            .unwrap_or_else(|_| {
                Err(Error::timeout(
                    BACKEND,
                    format!(
                        "the last metrics flush did not finish within {} ms; unsent evaluations \
                     remain in the recorder",
                        budget.as_millis()
                    ),
                ))
            });
        lock(&shared.state).running = false;
        result
    }

    /// What the recorder has done so far.
    pub fn status(&self) -> RecorderStatus {
        let state = lock(&self.shared.state);
        let pending = self.shared.pending().evaluations();
        RecorderStatus {
            running: state.running && state.stopped.is_none(),
            stopped: state.stopped.as_ref().map(ToString::to_string),
            failures: state.failures,
            buckets_sent: state.buckets_sent,
            evaluations_sent: state.evaluations_sent,
            buckets_dropped: state.buckets_dropped,
            evaluations_dropped: state.evaluations_dropped,
            evaluations_pending: pending,
            last_error: state.last_error.clone(),
        }
    }

    /// A copy of everything counted and not sent yet: unsent buckets, the one being sent,
    /// and the current one, merged.
    pub fn pending(&self) -> MetricsBucket {
        let _state = lock(&self.shared.state);
        self.shared.pending()
    }

    /// The client the recorder sends with.
    pub fn client(&self) -> &UnleashClient {
        &self.shared.client
    }
}

impl Shared {
    /// Everything not sent yet. The caller holds the state lock.
    fn pending(&self) -> MetricsBucket {
        let now = Utc::now();
        let mut bucket = MetricsBucket::new(*lock(&self.current_start)).with_stop(now);
        {
            let counters = self.counters.read().unwrap_or_else(PoisonError::into_inner);
            for (name, counter) in counters.iter() {
                bucket.toggles.insert(name.to_string(), counter.snapshot());
            }
        }
        if let Some(unsent) = lock(&self.unsent).as_ref() {
            bucket.merge(unsent);
        }
        if let Some(in_flight) = lock(&self.in_flight).as_ref() {
            bucket.merge(in_flight);
        }
        bucket.prune();
        bucket
    }

    /// Swaps in fresh counters and returns the old ones as a bucket.
    fn take_current(&self, now: DateTime<Utc>) -> MetricsBucket {
        let taken = std::mem::take(
            &mut *self
                .counters
                .write()
                .unwrap_or_else(PoisonError::into_inner),
        );
        let start = std::mem::replace(&mut *lock(&self.current_start), now);
        let mut bucket = MetricsBucket::new(start).with_stop(now);
        for (name, counter) in taken {
            bucket
                .toggles
                .insert(name.into_string(), counter.snapshot());
        }
        bucket
    }

    async fn flush(&self) -> Result<u64> {
        let _sending = self.send_lock.lock().await;
        let (bucket, evaluations) = {
            // Moving counts between the current bucket, the unsent one and the one in flight
            // happens under the state lock, so that `status` never sees them nowhere.
            let state = lock(&self.state);
            if let Some(error) = state.stopped.as_ref() {
                return Err(replay(error));
            }
            let now = Utc::now();
            let mut bucket = self.take_current(now);
            if let Some(unsent) = lock(&self.unsent).take() {
                bucket.merge(&unsent);
            }
            bucket.prune();
            if bucket.is_empty() {
                return Ok(0);
            }
            // The server books the whole bucket under the hour of `stop`: set it at send time.
            bucket.stop = now;
            let evaluations = bucket.evaluations();
            *lock(&self.in_flight) = Some(bucket.clone());
            (bucket, evaluations)
        };
        let result = self.client.send_metrics(&bucket).await;
        let mut state = lock(&self.state);
        lock(&self.in_flight).take();
        let error = match result {
            Ok(()) => {
                state.failures = state.failures.saturating_sub(1);
                state.not_before = None;
                state.buckets_sent += 1;
                state.evaluations_sent = state.evaluations_sent.saturating_add(evaluations);
                return Ok(evaluations);
            }
            Err(error) => error,
        };
        state.last_error = Some(error.to_string());
        match fate(&error) {
            Fate::Keep(retry_after) => {
                state.failures = (state.failures + 1).min(MAX_FAILURES);
                let backoff = self.interval * (1 + state.failures);
                let wait = retry_after.map_or(backoff, |r| r.min(MAX_RETRY_AFTER).max(backoff));
                state.not_before = Some(Instant::now() + wait);
                let flags = bucket.toggles.len();
                *lock(&self.unsent) = Some(bucket);
                tracing::debug!(
                    backend = BACKEND,
                    error = %error,
                    evaluations,
                    retry_in_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX),
                    "metrics not delivered; kept for the next bucket"
                );
                Err(Error::Incomplete {
                    backend: BACKEND,
                    items: "buckets",
                    unsent: flags,
                    source: Box::new(error),
                })
            }
            Fate::Reject => {
                state.buckets_dropped += 1;
                state.evaluations_dropped = state.evaluations_dropped.saturating_add(evaluations);
                tracing::warn!(
                    backend = BACKEND,
                    error = %error,
                    evaluations,
                    "the server rejected the metrics bucket; it was dropped (resending it cannot succeed)"
                );
                Err(error)
            }
            Fate::Ambiguous => {
                state.buckets_dropped += 1;
                state.evaluations_dropped = state.evaluations_dropped.saturating_add(evaluations);
                tracing::warn!(
                    backend = BACKEND,
                    error = %error,
                    evaluations,
                    "the metrics POST may have reached the server; the bucket is not resent, so \
                     that no evaluation is counted twice"
                );
                Err(error)
            }
            Fate::Stop => {
                *lock(&self.unsent) = Some(bucket);
                tracing::error!(
                    backend = BACKEND,
                    error = %error,
                    "metrics stopped: the server refused the credentials; counts are kept"
                );
                let surfaced = replay(&error);
                state.stopped = Some(error);
                state.running = false;
                Err(surfaced)
            }
        }
    }

    /// How long the background task waits before its next flush: the interval, times
    /// `1 + failures` while failing, and never before a `Retry-After` ends.
    fn next_wait(&self) -> Duration {
        let state = lock(&self.state);
        let backoff = self.interval * (1 + state.failures);
        let until_allowed = state.not_before.map_or(Duration::ZERO, |t| {
            t.saturating_duration_since(Instant::now())
        });
        backoff.max(until_allowed)
    }

    fn stop_for(&self, error: Error) {
        let mut state = lock(&self.state);
        state.last_error = Some(error.to_string());
        state.stopped = Some(error);
        state.running = false;
    }
}

/// The background task: register, then flush on the interval until shutdown or a stop.
async fn run(shared: Arc<Shared>) {
    if shared.config.register {
        match shared.client.register().await {
            Ok(()) => {}
            Err(error @ (Error::Unauthenticated { .. } | Error::Forbidden { .. })) => {
                tracing::error!(
                    backend = BACKEND,
                    error = %error,
                    "registration refused; metrics stopped, counts are kept"
                );
                shared.stop_for(error);
                return;
            }
            Err(error) => {
                // Metrics POSTs create the application and instance too; go on.
                tracing::warn!(backend = BACKEND, error = %error, "registration failed");
                lock(&shared.state).last_error = Some(error.to_string());
            }
        }
    }
    loop {
        if shared.shutting_down.load(Ordering::SeqCst) {
            return;
        }
        let wait = shared.next_wait();
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            () = shared.wake.notified() => {}
        }
        if shared.shutting_down.load(Ordering::SeqCst) {
            return;
        }
        // A failure in a flush the caller started may have pushed the next attempt back
        // (Retry-After) while this task slept.
        let allowed = lock(&shared.state)
            .not_before
            .is_none_or(|t| t <= Instant::now());
        if !allowed {
            continue;
        }
        // Errors are recorded in the state and logged; the loop goes on unless stopped.
        let _ = shared.flush().await;
        if lock(&shared.state).stopped.is_some() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fates() {
        assert_eq!(fate(&Error::api(BACKEND, 401, None, "m")), Fate::Stop);
        assert_eq!(fate(&Error::api(BACKEND, 403, None, "m")), Fate::Stop);
        assert_eq!(fate(&Error::api(BACKEND, 400, None, "m")), Fate::Reject);
        assert_eq!(fate(&Error::api(BACKEND, 404, None, "m")), Fate::Keep(None));
        assert_eq!(fate(&Error::api(BACKEND, 502, None, "m")), Fate::Keep(None));
        let unavailable =
            Error::api(BACKEND, 503, None, "down").with_retry_after(Some(Duration::from_secs(7)));
        assert_eq!(fate(&unavailable), Fate::Keep(Some(Duration::from_secs(7))));
        let limited = Error::api(BACKEND, 429, None, "Too many requests")
            .with_retry_after(Some(Duration::from_secs(51)));
        assert_eq!(fate(&limited), Fate::Keep(Some(Duration::from_secs(51))));
        assert_eq!(fate(&Error::timeout(BACKEND, "t")), Fate::Ambiguous);
        // A refused connection (`Error::is_connect`) needs a real transport error: see the
        // outage tests in tests/emulator.rs.
        let broken = Error::transport(
            BACKEND,
            metrics_core::Processing::Unknown,
            "POST api/client/metrics failed: connection reset",
            None,
        );
        assert_eq!(fate(&broken), Fate::Ambiguous);
    }
}
