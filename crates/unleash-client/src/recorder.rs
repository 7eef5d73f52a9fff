//! [`MetricsRecorder`]: counts flag evaluations from many tasks and sends them to
//! `POST /api/client/metrics` in the background, without losing or double-counting any.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock};
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use metrics_core::{Error, PayloadFate, Result};
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
/// The default jitter is this fraction of the interval.
const DEFAULT_JITTER_DIVISOR: u32 = 10;

/// Where a recorder reads the time its buckets start and stop at.
///
/// The server books a whole bucket under the hour of its `stop`, so the time matters; tests
/// set it to check what lands in which hour. Waits between flushes use Tokio's clock, not
/// this one.
///
/// ```
/// use chrono::{TimeZone, Utc};
/// use unleash_client::Clock;
///
/// let fixed = Utc.with_ymd_and_hms(2026, 11, 22, 9, 59, 59).unwrap();
/// let clock = Clock::from_fn(move || fixed);
/// assert_eq!(clock.now(), fixed);
/// ```
#[derive(Clone)]
pub struct Clock(Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>);

impl Clock {
    /// The system clock (the default).
    pub fn system() -> Self {
        Self(Arc::new(Utc::now))
    }

    /// A clock that asks `now`.
    pub fn from_fn(now: impl Fn() -> DateTime<Utc> + Send + Sync + 'static) -> Self {
        Self(Arc::new(now))
    }

    /// The current time by this clock.
    pub fn now(&self) -> DateTime<Utc> {
        (self.0)()
    }
}

impl Default for Clock {
    fn default() -> Self {
        Self::system()
    }
}

impl fmt::Debug for Clock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Clock")
    }
}

impl PartialEq for Clock {
    /// All clocks compare equal: a configuration is the same whatever its clock.
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl Eq for Clock {}

/// How a [`MetricsRecorder`] behaves.
///
/// ```
/// use std::time::Duration;
/// use unleash_client::RecorderConfig;
///
/// let config = RecorderConfig::new()
///     .with_interval(Duration::from_secs(15))
///     .with_jitter(Duration::from_secs(2))
///     .with_shutdown_timeout(Duration::from_secs(5));
/// assert_eq!(config.interval(), Some(Duration::from_secs(15)));
/// assert_eq!(config.jitter(), Some(Duration::from_secs(2)));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct RecorderConfig {
    interval: Option<Duration>,
    jitter: Option<Duration>,
    register: bool,
    shutdown_timeout: Duration,
    clock: Clock,
}

impl Default for RecorderConfig {
    fn default() -> Self {
        Self {
            interval: None,
            jitter: None,
            register: true,
            shutdown_timeout: Duration::from_secs(10),
            clock: Clock::system(),
        }
    }
}

impl RecorderConfig {
    /// Flush every client interval (default 60 s) plus up to a tenth of it at random,
    /// register first, 10 s to flush at shutdown, the system clock.
    pub fn new() -> Self {
        Self::default()
    }

    /// Flushes every `interval` instead of the client's.
    #[must_use]
    pub fn with_interval(mut self, interval: Duration) -> Self {
        self.interval = Some(interval);
        self
    }

    /// Adds a random wait of up to `jitter` to every wait between flushes (default: a tenth
    /// of the interval; `Duration::ZERO` turns it off). Like the SDKs' `metricsJitter`, it
    /// keeps a fleet of instances started together from posting in lockstep.
    #[must_use]
    pub fn with_jitter(mut self, jitter: Duration) -> Self {
        self.jitter = Some(jitter);
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

    /// The clock buckets are stamped with (default: the system clock).
    #[must_use]
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// The flush interval, if set here.
    pub fn interval(&self) -> Option<Duration> {
        self.interval
    }

    /// The jitter, if set here.
    pub fn jitter(&self) -> Option<Duration> {
        self.jitter
    }

    /// Whether the recorder registers first.
    pub fn registers(&self) -> bool {
        self.register
    }

    /// The shutdown flush budget.
    pub fn shutdown_timeout(&self) -> Duration {
        self.shutdown_timeout
    }

    /// The clock.
    pub fn clock(&self) -> &Clock {
        &self.clock
    }
}

/// What a recorder has done so far.
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct RecorderStatus {
    /// Whether the background flush is running.
    pub running: bool,
    /// Why it stopped for good (401, 403, a TLS or configuration error), if it did: the very
    /// error the server's answer made. Counts are kept.
    pub stopped: Option<Error>,
    /// The current failure count of the backoff (0 ..= 10).
    pub failures: u32,
    /// Until when the server asked not to post (its `Retry-After`), if it did and the time has
    /// not passed.
    pub not_before: Option<DateTime<Utc>>,
    /// Buckets the server accepted.
    pub buckets_sent: u64,
    /// Evaluations in them.
    pub evaluations_sent: u64,
    /// Buckets dropped because the server may have counted them already (a timeout or a
    /// broken connection after sending, a 5xx).
    pub buckets_dropped: u64,
    /// Evaluations in them.
    pub evaluations_dropped: u64,
    /// Evaluations the server refused for good (a 4xx other than 401, 403, 408 and 429),
    /// held for [`MetricsRecorder::take_refused`] and never resent.
    pub evaluations_refused: u64,
    /// Evaluations counted but not sent yet (kept buckets, the one being sent, and the current
    /// one).
    pub evaluations_pending: u64,
    /// The last failure, if any.
    pub last_error: Option<Error>,
}

/// What [`MetricsRecorder::flush`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Flushed {
    /// The server accepted this many evaluations (0: there was nothing to send).
    Sent(u64),
    /// Nothing was posted: the server asked to wait (`Retry-After`) and the time has not
    /// come. The pending evaluations are kept; the background task sends them at
    /// `not_before`, and a flush from then on may too.
    Deferred {
        /// Evaluations counted and waiting.
        evaluations: u64,
        /// When the server allows the next POST.
        not_before: DateTime<Utc>,
    },
}

impl Flushed {
    /// Evaluations the server accepted in this flush.
    pub fn sent(&self) -> u64 {
        match self {
            Self::Sent(evaluations) => *evaluations,
            Self::Deferred { .. } => 0,
        }
    }
}

/// What [`MetricsRecorder::shutdown`] did, and the counts it hands back.
///
/// After shutdown the recorder sends nothing more, so whatever was not delivered is given
/// to the caller instead of being lost with the recorder: send `unsent` later with
/// [`UnleashClient::send_metrics`] (not before `not_before`), or log it.
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
#[must_use = "a shutdown hands back what it could not send"]
pub struct ShutdownReport {
    /// Evaluations the last flush delivered.
    pub sent: u64,
    /// Counts the server did not take and that are safe to send again: the server asked to
    /// wait, could not be reached, refused the credentials, or the shutdown budget ran out
    /// before they were posted.
    pub unsent: Option<MetricsBucket>,
    /// Counts the server refused for good (4xx): sending them again would be refused again.
    pub refused: Option<MetricsBucket>,
    /// When the server allows the next POST (its `Retry-After`), if it asked to wait.
    pub not_before: Option<DateTime<Utc>>,
    /// Why the last flush did not deliver everything, if it did not.
    pub error: Option<Error>,
}

impl ShutdownReport {
    /// Whether everything counted was delivered.
    pub fn is_complete(&self) -> bool {
        self.unsent.is_none() && self.refused.is_none() && self.error.is_none()
    }

    /// The evaluations delivered, or an error when something was not: for callers that only
    /// log what is left. The error is the last flush's, or [`Error::Incomplete`] naming the
    /// evaluations handed back.
    ///
    /// # Errors
    ///
    /// When anything was handed back or the last flush failed.
    pub fn into_result(self) -> Result<u64> {
        let left = self.unsent.as_ref().map_or(0, MetricsBucket::evaluations)
            + self.refused.as_ref().map_or(0, MetricsBucket::evaluations);
        match (self.error, left) {
            (None, 0) => Ok(self.sent),
            (Some(error), 0) => Err(error),
            (error, left) => Err(Error::Incomplete {
                backend: BACKEND,
                unsent: usize::try_from(left).unwrap_or(usize::MAX),
                items: "evaluations",
                source: Box::new(error.unwrap_or_else(|| {
                    Error::timeout(BACKEND, "the server asked to wait past the shutdown")
                })),
            }),
        }
    }
}

/// Counts flag evaluations and sends them to Unleash on an interval.
///
/// Counting is cheap and lock-light (a read lock and an atomic add once a flag has been
/// seen), so it can sit in a hot path shared by many tasks: clones share one set of counters
/// and one background task. Every wait between flushes gets a random extra of up to the
/// [jitter](RecorderConfig::with_jitter), so that instances started together do not post
/// together.
///
/// # Delivery contract
///
/// The server adds up what it receives, so a bucket it counted must never be sent again,
/// and a bucket it did not count must not be lost. What each outcome of a POST means is
/// decided once, by [`Error::disposition`]; the recorder does what
/// [`Disposition::payload`](metrics_core::Disposition::payload) says for data that is not
/// safe to send twice:
///
/// | outcome | the counts | next POST |
/// |---|---|---|
/// | accepted (202; 204 when the server has metrics off) | delivered | after the interval; one failure forgiven |
/// | connection refused, DNS or connect timeout (nothing sent) | **kept**, merged into the next bucket (sums, earliest start) | after `interval × (1 + failures)` (failures ≤ 10) |
/// | connection closed before any byte of an answer, on a reused keep-alive connection | **kept** and resent: an HTTP/1.1 server answers a request it has read before it closes, so the server closed the idle connection without reading it (see [`Processing::ClosedBeforeResponse`](metrics_core::Processing::ClosedBeforeResponse)) | as above |
/// | 429, 408, 503 with `Retry-After` | **kept** | the background waits for the backoff and `Retry-After` (≤ 300 s); inside that window [`flush`](Self::flush) posts nothing and answers [`Flushed::Deferred`] with the instant, and [`shutdown`](Self::shutdown) hands the counts back with it |
/// | timeout after sending, connection broken while the answer came, 500/502/504, 503 without `Retry-After` | **dropped** and logged (warn, with the count), counted in `buckets_dropped`: the server may have counted it, and resending would count it twice | as for kept |
/// | 4xx other than 401, 403, 408, 429 (400 validation, 404 wrong URL) | **handed back**: held apart, never resent, returned by [`take_refused`](Self::take_refused) and by `shutdown`, and logged (warn) with the server's details | after the interval |
/// | 401, 403, a TLS or configuration error | **kept**; the recorder stops (logged at error), and `flush`, `shutdown` and [`status`](Self::status) report that same error | none |
/// | shutdown | a last flush within the shutdown budget (none inside a `Retry-After` window); whatever is not delivered is **handed back** in the [`ShutdownReport`]; a POST cut off by the budget may have been counted and is dropped and logged | none |
///
/// A flush the caller asks for waits for a `Retry-After`, not for the backoff: after an
/// outage it sends at once.
///
/// Why keep on a closed connection, and drop on a timeout? The SDKs differ: the Node SDK
/// puts a bucket back on any error (a timed-out POST that the server did count is then
/// counted twice), while the Rust and Python SDKs drop it on any error (a POST written to a
/// connection the server had just closed is then lost, although nothing read it). This
/// recorder resends exactly when the answer proves the server did not act on the request,
/// and drops only when it may have.
///
/// Metric POSTs are sent with [`Request::without_retries`](metrics_core::http::Request::without_retries)
/// (in [`UnleashClient::send_metrics`]), so the recorder is the only place that decides about
/// sending counts again, and nothing is resent forever: kept counts are merged into one
/// bucket, and the backoff grows while the server fails.
///
/// Call [`shutdown`](Self::shutdown) before exiting: it sends what is left. After it,
/// counting on any clone does nothing (logged once): the recorder has handed back what it
/// held and will not send again. Dropping the last clone without a shutdown stops the
/// background task, and what was not sent yet is lost.
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
/// let report = recorder.shutdown().await;
/// if let Some(unsent) = &report.unsent {
///     eprintln!("{} evaluations not sent (not before {:?})", unsent.evaluations(), report.not_before);
/// }
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
    jitter: Duration,
    config: RecorderConfig,
    clock: Clock,
    /// Counters of the current bucket. `count` increments under the read lock; taking the
    /// bucket swaps the map under the write lock, so no increment can land in a map that
    /// was already taken.
    counters: RwLock<HashMap<Box<str>, Arc<FlagCounter>>>,
    current_start: Mutex<DateTime<Utc>>,
    /// Counts whose POST failed in a way that says they were not counted.
    unsent: Mutex<Option<MetricsBucket>>,
    /// Counts the server refused for good, waiting for the caller to take them.
    refused: Mutex<Option<MetricsBucket>>,
    /// The bucket being posted right now: still pending until its answer decides its fate.
    in_flight: Mutex<Option<MetricsBucket>>,
    /// One POST at a time: a flush from the caller and one from the background never race.
    send_lock: tokio::sync::Mutex<()>,
    state: Mutex<State>,
    /// Set (under the counters' write lock) by `shutdown`: no more counting, no more flushes
    /// from the background.
    closed: AtomicBool,
    /// Whether counting after shutdown was logged already.
    warned_closed: AtomicBool,
    wake: tokio::sync::Notify,
}

#[derive(Default)]
struct State {
    running: bool,
    stopped: Option<Error>,
    failures: u32,
    /// The backoff: the background task does not post before this.
    backoff_until: Option<Instant>,
    /// The server's `Retry-After`: nobody posts before this.
    retry_after_until: Option<Instant>,
    buckets_sent: u64,
    evaluations_sent: u64,
    buckets_dropped: u64,
    evaluations_dropped: u64,
    evaluations_refused: u64,
    last_error: Option<Error>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// `base` plus `fraction` (in `[0, 1]`) of `jitter`.
fn jittered(base: Duration, jitter: Duration, fraction: f64) -> Duration {
    base + jitter.mul_f64(fraction.clamp(0.0, 1.0))
}

fn merge_into(slot: &mut Option<MetricsBucket>, bucket: MetricsBucket) {
    match slot {
        Some(held) => held.merge(&bucket),
        None => *slot = Some(bucket),
    }
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
        let jitter = config.jitter.unwrap_or(interval / DEFAULT_JITTER_DIVISOR);
        let clock = config.clock.clone();
        let shared = Arc::new(Shared {
            client,
            interval,
            jitter,
            current_start: Mutex::new(clock.now()),
            clock,
            config,
            counters: RwLock::new(HashMap::new()),
            unsent: Mutex::new(None),
            refused: Mutex::new(None),
            in_flight: Mutex::new(None),
            send_lock: tokio::sync::Mutex::new(()),
            state: Mutex::new(State {
                running: true,
                ..State::default()
            }),
            closed: AtomicBool::new(false),
            warned_closed: AtomicBool::new(false),
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

    /// Counts one evaluation of `flag`. An empty flag name is not counted (the server would
    /// refuse the whole bucket), nor is anything after [`shutdown`](Self::shutdown).
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
        if flag.trim().is_empty() {
            return;
        }
        {
            let counters = self
                .shared
                .counters
                .read()
                .unwrap_or_else(PoisonError::into_inner);
            // Checked under the lock `shutdown` sets it under: no count slips in after the
            // last bucket was taken.
            if self.shared.refuse_closed() {
                return;
            }
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
        if self.shared.refuse_closed() {
            return;
        }
        counters
            .entry(Box::from(flag))
            .or_default()
            .add(yes, no, variant);
    }

    /// Sends what has been counted now, including kept counts, unless the server asked to
    /// wait (see the [delivery contract](Self#delivery-contract)).
    ///
    /// # Errors
    ///
    /// [`Error::Incomplete`] when the counts were kept for the next attempt (connection
    /// refused or closed before an answer, 429, 408, 503 with `Retry-After`); the server's
    /// error when the bucket was dropped (timeout after sending, 5xx) or refused (4xx: see
    /// [`take_refused`](Self::take_refused)); the stop error (401, 403) once the recorder
    /// has stopped, with nothing sent.
    pub async fn flush(&self) -> Result<Flushed> {
        self.shared.flush().await
    }

    /// Stops the background flush, sends what is left within the configured shutdown
    /// timeout (unless the server asked to wait), and hands back whatever was not
    /// delivered. Counting on any clone does nothing from now on.
    pub async fn shutdown(&self) -> ShutdownReport {
        let shared = &self.shared;
        {
            let _counters = shared
                .counters
                .write()
                .unwrap_or_else(PoisonError::into_inner);
            shared.closed.store(true, Ordering::SeqCst);
        }
        shared.wake.notify_one();
        let mut background = lock(&self.task.handle).take();
        let work = async {
            // The background task ends after the flush it may be in the middle of.
            if let Some(running) = background.as_mut() {
                let _ = running.await;
                background = None;
            }
            shared.flush().await
        };
        let budget = shared.config.shutdown_timeout;
        let outcome = tokio::time::timeout(budget, work).await;
        let mut report = ShutdownReport::default();
        match outcome {
            Ok(Ok(Flushed::Sent(evaluations))) => report.sent = evaluations,
            Ok(Ok(Flushed::Deferred { .. })) => {
                report.error = lock(&shared.state).last_error.clone();
            }
            Ok(Err(error)) => report.error = Some(error),
            Err(_) => {
                // Settle the background's POST as cut off, not behind this report's back.
                if let Some(running) = background.take() {
                    running.abort();
                    let _ = running.await;
                }
                report.error = Some(shared.cut_off(budget));
            }
        }
        let mut state = lock(&shared.state);
        state.running = false;
        report.not_before = shared.retry_after(&state);
        report.unsent = shared.take_pending();
        report.refused = lock(&shared.refused).take();
        if let Some(unsent) = &report.unsent {
            tracing::warn!(
                backend = BACKEND,
                evaluations = unsent.evaluations(),
                "metrics recorder shut down with unsent evaluations; they are handed back"
            );
        }
        report
    }

    /// Takes the counts the server refused for good (a 4xx other than 401, 403, 408 and
    /// 429): the recorder never resends them, and holds them (merged) until they are taken
    /// here or handed back by [`shutdown`](Self::shutdown).
    pub fn take_refused(&self) -> Option<MetricsBucket> {
        let _state = lock(&self.shared.state);
        lock(&self.shared.refused).take()
    }

    /// What the recorder has done so far.
    pub fn status(&self) -> RecorderStatus {
        let state = lock(&self.shared.state);
        let pending = self.shared.pending().evaluations();
        RecorderStatus {
            running: state.running && state.stopped.is_none(),
            stopped: state.stopped.clone(),
            failures: state.failures,
            not_before: self.shared.retry_after(&state),
            buckets_sent: state.buckets_sent,
            evaluations_sent: state.evaluations_sent,
            buckets_dropped: state.buckets_dropped,
            evaluations_dropped: state.evaluations_dropped,
            evaluations_refused: state.evaluations_refused,
            evaluations_pending: pending,
            last_error: state.last_error.clone(),
        }
    }

    /// A copy of everything counted and not sent yet: kept buckets, the one being sent,
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
    /// Whether the recorder was shut down; logs the first count refused for it.
    fn refuse_closed(&self) -> bool {
        if !self.closed.load(Ordering::SeqCst) {
            return false;
        }
        if !self.warned_closed.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                backend = BACKEND,
                "an evaluation was counted after the metrics recorder shut down; it is not recorded"
            );
        }
        true
    }

    /// When the server allows the next POST, if it asked to wait and the time has not come.
    fn retry_after(&self, state: &State) -> Option<DateTime<Utc>> {
        let wait = state
            .retry_after_until?
            .checked_duration_since(Instant::now())
            .filter(|wait| !wait.is_zero())?;
        Some(self.clock.now() + TimeDelta::from_std(wait).unwrap_or(TimeDelta::MAX))
    }

    /// Everything not sent yet. The caller holds the state lock.
    fn pending(&self) -> MetricsBucket {
        let now = self.clock.now();
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

    /// Takes everything not sent yet (the current counters and the kept bucket), for the
    /// caller at shutdown. The caller holds the state lock.
    fn take_pending(&self) -> Option<MetricsBucket> {
        let now = self.clock.now();
        let mut bucket = self.take_current(now);
        if let Some(unsent) = lock(&self.unsent).take() {
            bucket.merge(&unsent);
        }
        bucket.prune();
        (!bucket.is_empty()).then_some(bucket)
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
        // A clock set back must not make a bucket the server (and `send_metrics`) refuses.
        let mut bucket = MetricsBucket::new(start).with_stop(now.max(start));
        for (name, counter) in taken {
            bucket
                .toggles
                .insert(name.into_string(), counter.snapshot());
        }
        bucket
    }

    async fn flush(&self) -> Result<Flushed> {
        let _sending = self.send_lock.lock().await;
        let (bucket, evaluations) = {
            // Moving counts between the current bucket, the kept one and the one in flight
            // happens under the state lock, so that `status` never sees them nowhere.
            let state = lock(&self.state);
            if let Some(error) = state.stopped.as_ref() {
                return Err(error.clone());
            }
            if let Some(not_before) = self.retry_after(&state) {
                let evaluations = self.pending().evaluations();
                tracing::debug!(
                    backend = BACKEND,
                    evaluations,
                    %not_before,
                    "metrics flush deferred: the server asked to wait"
                );
                return Ok(Flushed::Deferred {
                    evaluations,
                    not_before,
                });
            }
            let now = self.clock.now();
            let mut bucket = self.take_current(now);
            if let Some(unsent) = lock(&self.unsent).take() {
                bucket.merge(&unsent);
            }
            bucket.prune();
            if bucket.is_empty() {
                return Ok(Flushed::Sent(0));
            }
            // The server books the whole bucket under the hour of `stop`: set it at send time.
            bucket.stop = now.max(bucket.start);
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
                state.backoff_until = None;
                state.retry_after_until = None;
                state.buckets_sent += 1;
                state.evaluations_sent = state.evaluations_sent.saturating_add(evaluations);
                return Ok(Flushed::Sent(evaluations));
            }
            Err(error) => error,
        };
        state.last_error = Some(error.clone());
        let disposition = error.disposition();
        match disposition.payload(false) {
            PayloadFate::Delivered => {
                // The server took the bucket; only its answer was odd.
                state.buckets_sent += 1;
                state.evaluations_sent = state.evaluations_sent.saturating_add(evaluations);
                Ok(Flushed::Sent(evaluations))
            }
            PayloadFate::Keep if !disposition.is_retryable() => {
                // 401, 403, TLS, configuration: nothing was counted, and nothing will be
                // until someone fixes the setup.
                merge_into(&mut lock(&self.unsent), bucket);
                tracing::error!(
                    backend = BACKEND,
                    error = %error,
                    evaluations,
                    "metrics stopped: the request cannot succeed as configured; counts are kept"
                );
                state.stopped = Some(error.clone());
                state.running = false;
                Err(error)
            }
            PayloadFate::Keep => {
                let wait = self.back_off(&mut state);
                if let Some(retry_after) = disposition.retry_after() {
                    state.retry_after_until =
                        Some(Instant::now() + retry_after.min(MAX_RETRY_AFTER));
                }
                merge_into(&mut lock(&self.unsent), bucket);
                tracing::debug!(
                    backend = BACKEND,
                    error = %error,
                    evaluations,
                    retry_in_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX),
                    "metrics not delivered; kept for the next bucket"
                );
                Err(Error::Incomplete {
                    backend: BACKEND,
                    unsent: usize::try_from(evaluations).unwrap_or(usize::MAX),
                    items: "evaluations",
                    source: Box::new(error),
                })
            }
            PayloadFate::HandBack => {
                state.evaluations_refused = state.evaluations_refused.saturating_add(evaluations);
                merge_into(&mut lock(&self.refused), bucket);
                tracing::warn!(
                    backend = BACKEND,
                    error = %error,
                    evaluations,
                    "the server refused the metrics bucket; it is not resent (sending it again \
                     would be refused again) and is held for take_refused"
                );
                Err(error)
            }
            // Drop, and whatever a later core adds: never risk counting twice.
            _ => {
                self.back_off(&mut state);
                state.buckets_dropped += 1;
                state.evaluations_dropped = state.evaluations_dropped.saturating_add(evaluations);
                tracing::warn!(
                    backend = BACKEND,
                    error = %error,
                    evaluations,
                    "the metrics POST may have been counted by the server; the bucket is not \
                     resent, so that no evaluation is counted twice"
                );
                Err(error)
            }
        }
    }

    /// Counts a failure and pushes the background's next attempt back by the backoff.
    fn back_off(&self, state: &mut State) -> Duration {
        state.failures = (state.failures + 1).min(MAX_FAILURES);
        let wait = self.interval * (1 + state.failures);
        state.backoff_until = Some(Instant::now() + wait);
        wait
    }

    /// The shutdown budget ran out during the last flush: a POST under way may have been
    /// counted, so it is dropped; the rest is handed back.
    fn cut_off(&self, budget: Duration) -> Error {
        let mut state = lock(&self.state);
        if let Some(bucket) = lock(&self.in_flight).take() {
            let evaluations = bucket.evaluations();
            state.buckets_dropped += 1;
            state.evaluations_dropped = state.evaluations_dropped.saturating_add(evaluations);
            tracing::warn!(
                backend = BACKEND,
                evaluations,
                "the shutdown budget ran out while a metrics POST was under way; it may have \
                 been counted, so it is dropped"
            );
        }
        let error = Error::timeout(
            BACKEND,
            format!(
                "the last metrics flush did not finish within {} ms",
                budget.as_millis()
            ),
        );
        state.last_error = Some(error.clone());
        error
    }

    /// How long the background task waits before its next flush: the interval, times
    /// `1 + failures` while failing, plus the jitter, and never before the backoff or a
    /// `Retry-After` ends.
    fn next_wait(&self) -> Duration {
        let state = lock(&self.state);
        let base = self.interval * (1 + state.failures);
        let now = Instant::now();
        let until = [state.backoff_until, state.retry_after_until]
            .into_iter()
            .flatten()
            .map(|t| t.saturating_duration_since(now))
            .max()
            .unwrap_or(Duration::ZERO);
        jittered(base.max(until), self.jitter, fastrand::f64())
    }

    /// Whether the background task may post now.
    fn may_post(&self) -> bool {
        let state = lock(&self.state);
        let now = Instant::now();
        [state.backoff_until, state.retry_after_until]
            .into_iter()
            .flatten()
            .all(|t| t <= now)
    }

    fn stop_for(&self, error: Error) {
        let mut state = lock(&self.state);
        state.last_error = Some(error.clone());
        state.stopped = Some(error);
        state.running = false;
    }
}

/// The background task: register, then flush on the interval until shutdown or a stop.
async fn run(shared: Arc<Shared>) {
    if shared.config.register {
        match shared.client.register().await {
            Ok(()) => {}
            Err(error)
                if !error.is_retryable() && error.disposition().processing.is_not_processed() =>
            {
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
                lock(&shared.state).last_error = Some(error);
            }
        }
    }
    loop {
        if shared.closed.load(Ordering::SeqCst) {
            return;
        }
        let wait = shared.next_wait();
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            () = shared.wake.notified() => {}
        }
        if shared.closed.load(Ordering::SeqCst) {
            return;
        }
        // A failure in a flush the caller started may have pushed the next attempt back
        // while this task slept.
        if !shared.may_post() {
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
    fn jitter_adds_up_to_its_whole_span() {
        let base = Duration::from_secs(60);
        let jitter = Duration::from_secs(6);
        assert_eq!(jittered(base, jitter, 0.0), base);
        assert_eq!(jittered(base, jitter, 1.0), base + jitter);
        assert_eq!(jittered(base, jitter, 0.5), Duration::from_secs(63));
        assert_eq!(jittered(base, Duration::ZERO, 0.7), base);
        let waits: std::collections::HashSet<Duration> = (0..32)
            .map(|_| jittered(base, jitter, fastrand::f64()))
            .collect();
        assert!(waits.iter().all(|w| *w >= base && *w <= base + jitter));
        assert!(waits.len() > 1, "the jitter is random");
    }

    #[test]
    fn clocks_compare_equal_and_tell_their_time() {
        let fixed = Utc::now() - TimeDelta::hours(3);
        let config = RecorderConfig::new().with_clock(Clock::from_fn(move || fixed));
        assert_eq!(config.clock().now(), fixed);
        assert_eq!(config, RecorderConfig::new());
    }
}
