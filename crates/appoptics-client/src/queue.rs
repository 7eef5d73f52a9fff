//! The batching queue: measurements collected locally and submitted in chunks.
//!
//! A [`MeasurementQueue`] collects measurements (with or without their own tags), submits
//! them when asked or automatically once it holds `auto_submit_count` of them, and splits a
//! submission into chunks of at most `chunk_size` measurements (default 300, at most the API's
//! 1 000 per request) sent concurrently, at most `max_in_flight` at a time (default 4). For a
//! queue that sends by itself in the background, see [`ManagedQueue`](crate::ManagedQueue).
//!
//! # What happens to a chunk
//!
//! Every chunk of a submission is held by a guard until its fate is decided, and its fate is
//! read from the failure's [`Disposition`] — the one place that
//! decides what a failure means — never from the queue's own reading of statuses:
//!
//! | the post's outcome | disposition | the chunk |
//! |---|---|---|
//! | 2xx | — | delivered, never sent again |
//! | connection refused, TLS or configuration failure | not sent | **kept**, in order; no new chunk of this submission starts |
//! | connection closed before any answer (a stale keep-alive connection) | closed before response | **kept** |
//! | 401, 403, 408, 429 (and the 403 account rate limit) | not processed | **kept**; no new chunk starts; a 429's wait is [`Error::retry_after`] |
//! | timeout after sending, connection broken mid-answer, 500/502/503/504 | unknown | **kept** when every measurement in it has its own time; else **dropped** and logged |
//! | 400, 404, 413, 415, 422 and other 4xx | refused | **handed back**: out of the queue, inside the error |
//! | a 2xx that reports `errors`, 501 | unknown, never retry | **handed back** (resending could only get the same answer) |
//!
//! * **Kept** chunks go back to the front of the queue in their original order, and
//!   `submit` returns [`Error::Incomplete`] with the number of measurements still queued;
//!   the next `submit` sends them again. Chunks that were delivered are never sent again.
//! * **Handed back** chunks leave the queue: `submit` returns the server's error carrying a
//!   [`RejectedMeasurements`] detail with the measurements and the server's reasons
//!   (wrapped in [`Error::Incomplete`] when other chunks are still queued). Nothing the server
//!   refused for good is resent.
//! * **Resending is safe** because the queue time-stamps every measurement when it is added
//!   (unless built [`without timestamps`](QueueBuilder::with_timestamps)): AppOptics keys a
//!   point by metric, tags and time, so a chunk resent after an unknown outcome is the same
//!   points again, not new ones. (The API does not document how a duplicate point is
//!   stored; a summary resent after a timeout may be merged twice by a server that adds
//!   summaries up.) A chunk with a measurement that has no time is not safe to resend: after
//!   an unknown outcome it is dropped and logged instead, as [`PayloadFate::Drop`] says.
//! * **Cancellation is safe.** If the `submit` future is dropped mid-way (a timeout around
//!   it, a cancelled task), the guard puts back every chunk whose acceptance was not seen.
//!   Such a chunk may have reached the server: delivery is at least once.
//! * **A bound**, when set with [`QueueBuilder::with_capacity`]: when the queue is full the
//!   **oldest** measurements are dropped to make room, counted in
//!   [`MeasurementQueue::dropped`] and logged (newer values matter more to a metrics
//!   backend than old ones, and the caller never blocks).
//! * **A scope always submits.** [`MeasurementQueue::scope`] runs your code and then submits,
//!   also when your code failed, as the Python context manager does.
//! * **Dropping a queue that still holds measurements logs a warning** (`tracing`, level
//!   WARN) with their count. Take them out with [`MeasurementQueue::drain`] if you mean to
//!   discard them.
//!
//! Measurement posts are sent without the pipeline's automatic retries (see
//! [`AppOpticsClient::submit`]): a chunk that failed is resent by the next `submit`, not by
//! a hidden retry.
//!
//! ```no_run
//! # async fn run(client: appoptics_client::AppOpticsClient) -> metrics_core::Result<()> {
//! use appoptics_client::model::tags;
//! use appoptics_client::queue::RejectedMeasurements;
//!
//! let queue = client
//!     .queue()
//!     .with_tags(tags([("service", "api")]))
//!     .with_auto_submit_count(5_000)
//!     .build()?;
//! queue
//!     .scope(async |q| -> metrics_core::Result<()> {
//!         q.add("temperature", 22.1).await?;                                      // queue + client tags
//!         q.add_tagged("temperature", 23.1, tags([("location", "upstairs")])).await?; // own tags only
//!         Ok(())
//!     })
//!     .await?;
//! if let Err(error) = queue.submit().await {
//!     if let Some(rejected) = RejectedMeasurements::of(&error) {
//!         eprintln!("refused: {:?}, {} measurements", rejected.reasons(), rejected.measurements.len());
//!     }
//! }
//! # Ok(()) }
//! ```

use std::collections::{HashSet, VecDeque};
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use std::task::Poll;

use futures_util::StreamExt as _;
use futures_util::stream::FuturesUnordered;
use metrics_core::{Disposition, Error, PayloadFate, Processing, Result};

use crate::BACKEND;
use crate::aggregator::MeasurementAggregator;
use crate::client::AppOpticsClient;
use crate::error::AppOpticsError;
use crate::model::{ChunkWriter, Measurement, Tags};
use crate::validate::MAX_MEASUREMENTS_PER_REQUEST;

/// The chunk size unless set: 300 measurements per request, as the Python library.
pub const DEFAULT_CHUNK_SIZE: usize = 300;
/// Chunks in flight at once unless set.
pub const DEFAULT_MAX_IN_FLIGHT: usize = 4;

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Builds a [`MeasurementQueue`]; start with [`AppOpticsClient::queue`].
#[must_use]
pub struct QueueBuilder {
    client: AppOpticsClient,
    tags: Tags,
    auto_submit_count: Option<usize>,
    chunk_size: usize,
    max_in_flight: usize,
    timestamps: bool,
    capacity: Option<usize>,
}

impl fmt::Debug for QueueBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("QueueBuilder")
            .field("tags", &self.tags)
            .field("auto_submit_count", &self.auto_submit_count)
            .field("chunk_size", &self.chunk_size)
            .field("max_in_flight", &self.max_in_flight)
            .field("timestamps", &self.timestamps)
            .field("capacity", &self.capacity)
            .finish_non_exhaustive()
    }
}

impl QueueBuilder {
    pub(crate) fn new(client: AppOpticsClient) -> Self {
        Self {
            client,
            tags: Tags::new(),
            auto_submit_count: None,
            chunk_size: DEFAULT_CHUNK_SIZE,
            max_in_flight: DEFAULT_MAX_IN_FLIGHT,
            timestamps: true,
            capacity: None,
        }
    }

    /// Queue-level tags, laid over the connection's for measurements that inherit.
    pub fn with_tags(mut self, tags: Tags) -> Self {
        self.tags = tags;
        self
    }

    /// Adds one queue-level tag.
    pub fn with_tag(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.tags.insert(name.into(), value.into());
        self
    }

    /// Submits automatically once the queue holds `count` measurements.
    pub fn with_auto_submit_count(mut self, count: usize) -> Self {
        self.auto_submit_count = Some(count);
        self
    }

    /// Measurements per request, 1 to 1 000.
    pub fn with_chunk_size(mut self, size: usize) -> Self {
        self.chunk_size = size;
        self
    }

    /// Chunks sent at the same time, at least 1.
    pub fn with_max_in_flight(mut self, max: usize) -> Self {
        self.max_in_flight = max;
        self
    }

    /// Whether measurements without a time get the time they were added (default true).
    ///
    /// With timestamps a chunk may be resent after an unknown outcome (a timeout, a 503)
    /// without adding points; without them the server stamps each measurement when it
    /// arrives, so such a chunk is dropped and logged instead (see the [module
    /// docs](self)). The Python library does not stamp.
    pub fn with_timestamps(mut self, timestamps: bool) -> Self {
        self.timestamps = timestamps;
        self
    }

    /// Holds at most `capacity` measurements: when full, the oldest are dropped to make
    /// room and counted in [`MeasurementQueue::dropped`] (default: no bound for a
    /// [`MeasurementQueue`], [`DEFAULT_MANAGED_CAPACITY`](crate::managed::DEFAULT_MANAGED_CAPACITY)
    /// for a [`ManagedQueue`](crate::ManagedQueue)).
    pub fn with_capacity(mut self, capacity: usize) -> Self {
        self.capacity = Some(capacity);
        self
    }

    /// Builds the queue.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] for a chunk size outside 1..=1000, no concurrency, an auto-submit
    /// count or a capacity of 0, or invalid tags.
    pub fn build(self) -> Result<MeasurementQueue> {
        if self.capacity == Some(0) {
            return Err(Error::config(
                BACKEND,
                "the queue capacity must be at least 1",
            ));
        }
        if self.chunk_size == 0 || self.chunk_size > MAX_MEASUREMENTS_PER_REQUEST {
            return Err(Error::config(
                BACKEND,
                format!(
                    "chunk size {} is out of range; it must be 1 to {MAX_MEASUREMENTS_PER_REQUEST}, the API's limit per request",
                    self.chunk_size
                ),
            ));
        }
        if self.max_in_flight == 0 {
            return Err(Error::config(BACKEND, "max_in_flight must be at least 1"));
        }
        if self.auto_submit_count == Some(0) {
            return Err(Error::config(
                BACKEND,
                "auto_submit_count must be at least 1",
            ));
        }
        let tags = self.client.sanitize_tags(self.tags);
        crate::validate::tags(&tags)
            .map_err(|e| Error::config(BACKEND, format!("queue tags: {e}")))?;
        let inherited = merged(self.client.tags(), &tags);
        Ok(MeasurementQueue {
            inherited_valid: valid_inherited(&inherited),
            client: self.client,
            tags,
            inherited,
            auto_submit_count: self.auto_submit_count,
            chunk_size: self.chunk_size,
            max_in_flight: self.max_in_flight,
            timestamps: self.timestamps,
            capacity: self.capacity,
            pending: Mutex::new(Pending::default()),
            dropped: AtomicU64::new(0),
        })
    }

    /// The capacity set, if any.
    pub(crate) fn capacity_set(&self) -> Option<usize> {
        self.capacity
    }
}

/// Whether measurements that inherit `tags` need no tag check of their own: there are some,
/// and together they are valid.
fn valid_inherited(tags: &Tags) -> bool {
    !tags.is_empty() && crate::validate::tags(tags).is_ok()
}

fn merged(connection: &Tags, queue: &Tags) -> Arc<Tags> {
    let mut tags = connection.clone();
    tags.extend(queue.iter().map(|(k, v)| (k.clone(), v.clone())));
    Arc::new(tags)
}

/// What a successful [`MeasurementQueue::submit`] sent.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SubmitReport {
    /// Measurements accepted by the server.
    pub measurements: usize,
    /// Requests sent.
    pub requests: usize,
}

/// A batching queue of measurements. See the [module documentation](self) for how it
/// guarantees that nothing is lost silently.
///
/// `add*` and `submit` take `&self`: share the queue between tasks with an `Arc`.
pub struct MeasurementQueue {
    client: AppOpticsClient,
    tags: Tags,
    /// Connection tags with the queue's laid over them, shared by every measurement that
    /// inherits them (one map for a million queued measurements).
    inherited: Arc<Tags>,
    /// `inherited` is checked once, here, and not for each measurement that shares it.
    inherited_valid: bool,
    auto_submit_count: Option<usize>,
    chunk_size: usize,
    max_in_flight: usize,
    timestamps: bool,
    capacity: Option<usize>,
    pending: Mutex<Pending>,
    /// Measurements dropped to stay within `capacity`.
    dropped: AtomicU64,
}

/// The waiting measurements, and the names already checked (shared, so that adding a
/// measurement of a known metric allocates nothing).
#[derive(Default)]
struct Pending {
    items: VecDeque<Measurement>,
    names: HashSet<Arc<str>>,
    /// The name of the last `add`: a run of one metric's values skips hashing the name.
    last_name: Option<Arc<str>>,
}

/// How many checked names a queue remembers; past it, the set starts over (names are then
/// checked again once).
const MAX_REMEMBERED_NAMES: usize = 4_096;

impl Pending {
    /// The shared, checked form of `name`.
    fn name(&mut self, name: &str) -> Result<Arc<str>> {
        if let Some(last) = &self.last_name
            && **last == *name
        {
            return Ok(Arc::clone(last));
        }
        let shared = if let Some(known) = self.names.get(name) {
            Arc::clone(known)
        } else {
            crate::validate::metric_name(name)?;
            if self.names.len() >= MAX_REMEMBERED_NAMES {
                self.names.clear();
            }
            let shared: Arc<str> = Arc::from(name);
            self.names.insert(Arc::clone(&shared));
            shared
        };
        self.last_name = Some(Arc::clone(&shared));
        Ok(shared)
    }

    /// Shares the name of a prepared measurement with the ones already queued.
    fn share_name(&mut self, measurement: &mut Measurement) {
        if let Some(known) = self.names.get(&*measurement.name) {
            measurement.name = Arc::clone(known);
        } else {
            if self.names.len() >= MAX_REMEMBERED_NAMES {
                self.names.clear();
            }
            self.names.insert(Arc::clone(&measurement.name));
        }
    }
}

impl fmt::Debug for MeasurementQueue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MeasurementQueue")
            .field("tags", &self.tags)
            .field("queued", &self.len())
            .field("auto_submit_count", &self.auto_submit_count)
            .field("chunk_size", &self.chunk_size)
            .field("max_in_flight", &self.max_in_flight)
            .field("timestamps", &self.timestamps)
            .field("capacity", &self.capacity)
            .field("dropped", &self.dropped())
            .finish_non_exhaustive()
    }
}

impl MeasurementQueue {
    /// The queue-level tags (without the connection's).
    pub fn tags(&self) -> &Tags {
        &self.tags
    }

    /// Replaces the queue-level tags. Measurements already queued keep theirs.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidInput`] for an invalid tag.
    pub fn set_tags(&mut self, tags: Tags) -> Result<()> {
        let tags = self.client.sanitize_tags(tags);
        crate::validate::tags(&tags)?;
        self.inherited = merged(self.client.tags(), &tags);
        self.inherited_valid = valid_inherited(&self.inherited);
        self.tags = tags;
        Ok(())
    }

    /// Merges `tags` over the queue-level tags.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidInput`] for an invalid tag.
    pub fn add_tags(&mut self, tags: Tags) -> Result<()> {
        let mut all = self.tags.clone();
        all.extend(tags);
        self.set_tags(all)
    }

    /// Measurements waiting to be submitted.
    pub fn len(&self) -> usize {
        lock(&self.pending).items.len()
    }

    /// Whether nothing is waiting.
    pub fn is_empty(&self) -> bool {
        lock(&self.pending).items.is_empty()
    }

    /// Measurements dropped so far to stay within the capacity (the oldest first).
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// How many requests the waiting measurements make.
    pub fn chunk_count(&self) -> usize {
        self.len().div_ceil(self.chunk_size)
    }

    /// The chunk size.
    pub fn chunk_size(&self) -> usize {
        self.chunk_size
    }

    /// The most chunks sent at once.
    pub fn max_in_flight(&self) -> usize {
        self.max_in_flight
    }

    /// The capacity, if the queue is bounded.
    pub fn capacity(&self) -> Option<usize> {
        self.capacity
    }

    /// A copy of the waiting measurements, with their resolved tags, oldest first.
    pub fn pending(&self) -> Vec<Measurement> {
        lock(&self.pending).items.iter().cloned().collect()
    }

    /// Takes every waiting measurement out of the queue (to discard, log or store them).
    pub fn drain(&self) -> Vec<Measurement> {
        lock(&self.pending).items.drain(..).collect()
    }

    /// The time a measurement added now gets, if the queue stamps them.
    fn stamp(&self) -> Option<i64> {
        // Whole seconds straight from the system clock: `Utc::now().timestamp()` builds a
        // calendar date only to take it apart again, which cost more than the rest of `add`.
        self.timestamps.then(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |since| {
                    i64::try_from(since.as_secs()).unwrap_or(i64::MAX)
                })
        })
    }

    /// Appends to the queue, dropping the oldest measurements past the capacity. Returns
    /// how many are queued.
    fn push_locked(&self, pending: &mut Pending, measurement: Measurement) -> usize {
        pending.items.push_back(measurement);
        self.trim(&mut pending.items);
        pending.items.len()
    }

    /// Drops the oldest measurements past the capacity, counting and logging them.
    fn trim(&self, items: &mut VecDeque<Measurement>) {
        let Some(capacity) = self.capacity else {
            return;
        };
        let over = items.len().saturating_sub(capacity);
        if over == 0 {
            return;
        }
        items.drain(..over);
        let before = self.dropped.fetch_add(over as u64, Ordering::Relaxed);
        // The first drop, then one line per 10 000, not one per measurement.
        if before == 0 || before / 10_000 != (before + over as u64) / 10_000 {
            tracing::warn!(
                backend = BACKEND,
                capacity,
                dropped_total = before + over as u64,
                "the measurement queue is full; the oldest measurements were dropped"
            );
        }
    }

    /// Queues a value with the queue's and the connection's tags, without submitting:
    /// the synchronous part of [`add`](Self::add). No allocation when the metric name was
    /// seen before (beyond the queue's own amortized growth).
    pub(crate) fn push_value(&self, name: &str, value: f64) -> Result<usize> {
        if !self.inherited_valid || self.client.sanitizes() {
            return self.push_measurement(Measurement::new(name, value));
        }
        // The usual case, without a sanitizer and with valid inherited tags: the tags were
        // checked once when they were set, and a known name was checked when it was first
        // added; both are shared, not copied.
        crate::validate::value("value", value)?;
        let time = self.stamp();
        let mut pending = lock(&self.pending);
        let name = pending.name(name)?;
        let mut measurement = Measurement::resolved(name, value, Arc::clone(&self.inherited));
        measurement.time = time;
        Ok(self.push_locked(&mut pending, measurement))
    }

    /// Queues a value with a tag set already resolved and checked ([`Self::tag_set`]).
    pub(crate) fn push_with_tags(&self, name: &str, value: f64, tags: &Arc<Tags>) -> Result<usize> {
        if self.client.sanitizes() {
            let sanitized = self.client.sanitize(name);
            return self.push_with_tags_checked(&sanitized, value, tags);
        }
        self.push_with_tags_checked(name, value, tags)
    }

    fn push_with_tags_checked(&self, name: &str, value: f64, tags: &Arc<Tags>) -> Result<usize> {
        crate::validate::value("value", value)?;
        let time = self.stamp();
        let mut pending = lock(&self.pending);
        let name = pending.name(name)?;
        let mut measurement = Measurement::resolved(name, value, Arc::clone(tags));
        measurement.time = time;
        Ok(self.push_locked(&mut pending, measurement))
    }

    /// `tags` laid over the queue's and the connection's tags, with the client's tag-value
    /// sanitizer applied, checked once.
    pub(crate) fn tag_set(&self, tags: Tags) -> Result<Arc<Tags>> {
        let mut all = (*self.inherited).clone();
        all.extend(tags);
        let all = self.client.sanitize_tags(all);
        if all.is_empty() {
            return Err(Error::invalid_input(
                BACKEND,
                "a tag set needs at least one tag (here, on the queue or on the client)",
            ));
        }
        crate::validate::tags(&all)?;
        Ok(Arc::new(all))
    }

    /// Queues a measurement without submitting (see [`add_measurement`](Self::add_measurement)).
    pub(crate) fn push_measurement(&self, measurement: Measurement) -> Result<usize> {
        let mut measurement = self.client.prepare(measurement, &self.inherited)?;
        if measurement.time.is_none() {
            measurement.time = self.stamp();
        }
        let mut pending = lock(&self.pending);
        pending.share_name(&mut measurement);
        Ok(self.push_locked(&mut pending, measurement))
    }

    /// Queues a value with the queue's and the connection's tags.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidInput`] for an invalid name or value or when no tags are set
    /// anywhere; the measurement is not queued. When the add triggers an automatic submit,
    /// that submit's error ([`Error::Incomplete`]); the measurement is then queued.
    pub async fn add(&self, name: impl AsRef<str>, value: f64) -> Result<()> {
        let queued = self.push_value(name.as_ref(), value)?;
        self.auto_submit(queued).await
    }

    async fn auto_submit(&self, queued: usize) -> Result<()> {
        match self.auto_submit_count {
            Some(count) if queued >= count => self.submit().await.map(|_| ()),
            _ => Ok(()),
        }
    }

    /// Queues a value with only its own tags (the library's `add_tagged` with tags).
    ///
    /// # Errors
    ///
    /// As [`add`](Self::add).
    pub async fn add_tagged(&self, name: impl Into<String>, value: f64, tags: Tags) -> Result<()> {
        self.add_measurement(Measurement::new(name, value).with_tags(tags))
            .await
    }

    /// Queues a measurement. Its tags are resolved now: its own alone; or, when it has none
    /// or sets `inherit_tags`, connection tags overlaid by queue tags overlaid by its own.
    ///
    /// # Errors
    ///
    /// As [`add`](Self::add).
    pub async fn add_measurement(&self, measurement: Measurement) -> Result<()> {
        let queued = self.push_measurement(measurement)?;
        self.auto_submit(queued).await
    }

    /// Queues an aggregator's summaries (with its tags and floored time, or else the
    /// queue's tags) and clears it.
    ///
    /// # Errors
    ///
    /// As [`add`](Self::add); on a validation error nothing is queued and the aggregator is
    /// left as it was.
    pub async fn add_aggregator(&self, aggregator: &mut MeasurementAggregator) -> Result<()> {
        let measurements = aggregator
            .to_measurements()
            .into_iter()
            .map(|m| self.client.prepare(m, &self.inherited))
            .collect::<Result<Vec<_>>>()?;
        aggregator.clear();
        let queued = {
            let mut pending = lock(&self.pending);
            pending.items.extend(measurements);
            self.trim(&mut pending.items);
            pending.items.len()
        };
        self.auto_submit(queued).await
    }

    /// Submits everything queued, in chunks of at most `chunk_size`, at most `max_in_flight`
    /// at a time. An empty queue sends nothing.
    ///
    /// # Errors
    ///
    /// When a chunk was refused for good (a 4xx, a 2xx with `errors`): the server's error
    /// with a [`RejectedMeasurements`] detail holding every refused measurement of this
    /// submission, out of the queue — wrapped in [`Error::Incomplete`] when other chunks
    /// are still queued. Otherwise, when chunks were kept for the next submit:
    /// [`Error::Incomplete`] with `unsent` the measurements still queued and `source` the
    /// failure (the one that stopped the batch, if one did). Otherwise, when chunks were
    /// dropped after an unknown outcome (measurements without a time): that failure.
    pub async fn submit(&self) -> Result<SubmitReport> {
        self.submit_outcome().await.into_result()
    }

    /// Submits everything queued and says what became of each chunk.
    pub(crate) async fn submit_outcome(&self) -> SubmitOutcome {
        let batch: VecDeque<Measurement> = std::mem::take(&mut lock(&self.pending).items);
        if batch.is_empty() {
            return SubmitOutcome::default();
        }
        // Chunks are slices of the batch, not copies of it.
        let batch = Vec::from(batch);
        let mut guard = Unsettled {
            queue: self,
            fates: vec![None; batch.len().div_ceil(self.chunk_size)],
            chunk_size: self.chunk_size,
            batch,
        };
        let mut outcomes = Outcomes::default();
        {
            let Unsettled { batch, fates, .. } = &mut guard;
            let chunks: Vec<&[Measurement]> = batch.chunks(self.chunk_size).collect();
            let chunks = &chunks[..];
            let client = &self.client;
            let mut writer = ChunkWriter::default();
            let mut next = 0;
            // The next chunk's body, serialized while the chunks before it are in flight.
            let mut ready: Option<(usize, Result<Vec<u8>>)> = None;
            let mut in_flight = FuturesUnordered::new();
            loop {
                while in_flight.len() < self.max_in_flight && !outcomes.stop {
                    if ready.is_none() && next < chunks.len() {
                        ready = Some((next, body(&mut writer, chunks[next])));
                        next += 1;
                    }
                    let Some((index, body)) = ready.take() else {
                        break;
                    };
                    in_flight.push(async move {
                        let result = match body {
                            Ok(body) => client.post_measurements_body(body).await,
                            Err(error) => Err(error),
                        };
                        (index, result)
                    });
                }
                if in_flight.is_empty() {
                    break;
                }
                if ready.is_none() && next < chunks.len() && !outcomes.stop {
                    // Pipelining: get the requests in flight onto the wire (poll them, then
                    // let the connection tasks run), and serialize the next chunk while
                    // the server works on them.
                    outcomes.record_ready(&mut in_flight, chunks, fates).await;
                    tokio::task::yield_now().await;
                    outcomes.record_ready(&mut in_flight, chunks, fates).await;
                    if !outcomes.stop {
                        ready = Some((next, body(&mut writer, chunks[next])));
                        next += 1;
                    }
                    if in_flight.len() < self.max_in_flight {
                        continue;
                    }
                }
                if let Some((index, result)) = in_flight.next().await {
                    outcomes.record(index, result, chunks, fates);
                }
            }
        }
        let settled = guard.settle();
        SubmitOutcome {
            report: outcomes.report,
            kept: settled.kept,
            kept_error: outcomes.stopping_error.or(outcomes.kept_error),
            handed_back: settled.handed_back,
            rejection: outcomes.rejection,
            dropped: settled.dropped,
            drop_error: outcomes.drop_error,
        }
    }

    /// Runs `body` with the queue, then submits what is queued — also when `body` failed,
    /// as the Python library's context manager does.
    ///
    /// Returns `body`'s error if it failed (a failed submit is then logged, and its
    /// measurements stay queued); otherwise the submit's error, if any.
    ///
    /// # Errors
    ///
    /// `body`'s error, or the submit's [`Error::Incomplete`].
    pub async fn scope<T, E>(
        &self,
        body: impl AsyncFnOnce(&Self) -> std::result::Result<T, E>,
    ) -> std::result::Result<T, E>
    where
        E: From<Error>,
    {
        let outcome = body(self).await;
        let submitted = self.submit().await;
        match (outcome, submitted) {
            (Ok(value), Ok(_)) => Ok(value),
            (Ok(_), Err(error)) => Err(error.into()),
            (Err(error), Ok(_)) => Err(error),
            (Err(error), Err(submit_error)) => {
                tracing::warn!(
                    backend = BACKEND,
                    error = %submit_error,
                    "the queue's final submit failed after the scope failed; the measurements stay queued"
                );
                Err(error)
            }
        }
    }
}

impl Drop for MeasurementQueue {
    fn drop(&mut self) {
        let unsent = self.pending.get_mut().map_or_else(
            |poisoned| poisoned.into_inner().items.len(),
            |p| p.items.len(),
        );
        if unsent > 0 {
            tracing::warn!(
                backend = BACKEND,
                unsent,
                "a MeasurementQueue was dropped with unsent measurements; call submit() or use scope(), or drain() them to discard on purpose"
            );
        }
    }
}

/// A chunk's body. Queued measurements were validated when they were added, so this fails
/// only on a bug; the chunk then fails as a post would, and stays queued.
fn body(writer: &mut ChunkWriter, chunk: &[Measurement]) -> Result<Vec<u8>> {
    writer.body(chunk).map_err(|e| {
        Error::invalid_input(
            BACKEND,
            format!("could not serialize the measurements: {e}"),
        )
    })
}

/// What a submission came to, chunk by chunk.
#[derive(Debug, Default)]
pub(crate) struct SubmitOutcome {
    /// What the server accepted.
    pub(crate) report: SubmitReport,
    /// Measurements of this submission still queued (kept or never started).
    pub(crate) kept: usize,
    /// Why they were kept: the failure that stopped the batch, or else the first one.
    pub(crate) kept_error: Option<Error>,
    /// Measurements the server refused for good, out of the queue.
    pub(crate) handed_back: Vec<Measurement>,
    /// The first refusal.
    pub(crate) rejection: Option<Error>,
    /// Measurements dropped after an unknown outcome (they had no time of their own).
    pub(crate) dropped: usize,
    /// Why.
    pub(crate) drop_error: Option<Error>,
}

impl SubmitOutcome {
    /// The error `submit` returns (see [`MeasurementQueue::submit`]), with the refused
    /// measurements moved into it.
    pub(crate) fn into_result(self) -> Result<SubmitReport> {
        let incomplete = |unsent, source| Error::Incomplete {
            backend: BACKEND,
            unsent,
            items: "measurements",
            source: Box::new(source),
        };
        if let Some(rejection) = self.rejection {
            let error = RejectedMeasurements::attach(rejection, self.handed_back);
            return Err(if self.kept > 0 {
                incomplete(self.kept, error)
            } else {
                error
            });
        }
        if let Some(kept_error) = self.kept_error {
            return Err(incomplete(self.kept, kept_error));
        }
        match self.drop_error {
            Some(error) => Err(error),
            None => Ok(self.report),
        }
    }
}

/// Measurements the server refused for good, handed back by the queue inside the error
/// (see [`MeasurementQueue::submit`]): they are out of the queue and will not be sent again.
///
/// ```
/// use std::sync::Arc;
/// use appoptics_client::queue::RejectedMeasurements;
///
/// let error = metrics_core::Error::api("appoptics", 400, None, "params: time: too far in past");
/// assert!(RejectedMeasurements::of(&error).is_none());
/// ```
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct RejectedMeasurements {
    /// The refused measurements, in the order they were queued, with their resolved tags
    /// and times.
    pub measurements: Vec<Measurement>,
    /// The server's reading of its answer, when it gave one.
    pub server: Option<AppOpticsError>,
}

impl RejectedMeasurements {
    /// The rejected measurements of a submit error, if it has any.
    pub fn of(error: &Error) -> Option<&Self> {
        error.detail::<Self>()
    }

    /// The server's reasons (`params: time: too far in past`), one per item.
    pub fn reasons(&self) -> &[String] {
        self.server.as_ref().map_or(&[], |s| s.reasons.as_slice())
    }

    /// `error` with `measurements` attached, keeping its AppOptics detail inside.
    pub(crate) fn attach(error: Error, measurements: Vec<Measurement>) -> Error {
        let server = AppOpticsError::of(&error).cloned();
        error.with_detail(Arc::new(Self {
            measurements,
            server,
        }))
    }
}

impl fmt::Display for RejectedMeasurements {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} measurements refused by the server",
            self.measurements.len()
        )?;
        if !self.reasons().is_empty() {
            write!(f, ": {}", self.reasons().join(", "))?;
        }
        Ok(())
    }
}

impl std::error::Error for RejectedMeasurements {}

/// What becomes of a chunk whose post failed, read from the failure's disposition.
///
/// `idempotent`: every measurement has its own time, so a resend is the same points again.
/// A failure that may not be resent to any avail (`Retry::Never`) after the server may
/// have acted on it (a 2xx with `errors`, a 501) is handed back rather than kept: keeping
/// it would resend it forever. One the server certainly did not take up (401, 403, a
/// configuration error) is kept: the data is safe, and the caller fixes the cause.
pub(crate) fn chunk_fate(disposition: Disposition, idempotent: bool) -> PayloadFate {
    match disposition.payload(idempotent) {
        PayloadFate::Keep
            if !disposition.is_retryable() && !disposition.processing.is_not_processed() =>
        {
            PayloadFate::HandBack
        }
        fate => fate,
    }
}

/// Whether every other chunk of the batch would fail the same way: nothing reached the
/// server, or it declined to take requests up (credentials, rate limit).
fn stops_batch(disposition: Disposition) -> bool {
    matches!(
        disposition.processing,
        Processing::NotSent | Processing::NotProcessed
    )
}

/// What the chunks of one submission came to.
#[derive(Default)]
struct Outcomes {
    report: SubmitReport,
    kept_error: Option<Error>,
    stopping_error: Option<Error>,
    rejection: Option<Error>,
    drop_error: Option<Error>,
    /// Set by an error that every other chunk would get too: no new chunk starts.
    stop: bool,
}

impl Outcomes {
    fn record(
        &mut self,
        index: usize,
        result: Result<()>,
        chunks: &[&[Measurement]],
        fates: &mut [Option<PayloadFate>],
    ) {
        self.report.requests += 1;
        let chunk = chunks[index];
        let error = match result {
            Ok(()) => {
                fates[index] = Some(PayloadFate::Delivered);
                self.report.measurements += chunk.len();
                return;
            }
            Err(error) => error,
        };
        let disposition = error.disposition();
        let idempotent = chunk.iter().all(|m| m.time.is_some());
        let fate = chunk_fate(disposition, idempotent);
        fates[index] = Some(fate);
        match fate {
            PayloadFate::Delivered => {
                // The server took it (a 2xx whose answer could not be read).
                self.report.measurements += chunk.len();
            }
            PayloadFate::Keep => {
                tracing::warn!(
                    backend = BACKEND,
                    chunk = index,
                    measurements = chunk.len(),
                    error = %error,
                    "a measurement chunk was not accepted; it stays queued"
                );
                if stops_batch(disposition) {
                    self.stop = true;
                    self.stopping_error.get_or_insert(error);
                } else {
                    self.kept_error.get_or_insert(error);
                }
            }
            PayloadFate::HandBack => {
                tracing::warn!(
                    backend = BACKEND,
                    chunk = index,
                    measurements = chunk.len(),
                    error = %error,
                    "the server refused a measurement chunk; it is handed back and not sent again"
                );
                self.rejection.get_or_insert(error);
            }
            PayloadFate::Drop | _ => {
                tracing::error!(
                    backend = BACKEND,
                    chunk = index,
                    measurements = chunk.len(),
                    error = %error,
                    "a measurement chunk without timestamps may have reached the server; it is dropped rather than risk counting it twice"
                );
                fates[index] = Some(PayloadFate::Drop);
                self.drop_error.get_or_insert(error);
            }
        }
    }

    /// Polls the chunks in flight once (which also sends the new ones on their way) and
    /// records those that finished, without waiting for any.
    async fn record_ready<F>(
        &mut self,
        in_flight: &mut FuturesUnordered<F>,
        chunks: &[&[Measurement]],
        fates: &mut [Option<PayloadFate>],
    ) where
        F: Future<Output = (usize, Result<()>)>,
    {
        let finished = std::future::poll_fn(|cx| {
            let mut finished = Vec::new();
            while let Poll::Ready(Some(outcome)) = in_flight.poll_next_unpin(cx) {
                finished.push(outcome);
            }
            Poll::Ready(finished)
        })
        .await;
        for (index, result) in finished {
            self.record(index, result, chunks, fates);
        }
    }
}

/// The chunks of a submission until their fate is decided. [`Unsettled::settle`] puts the
/// kept ones back and takes the handed-back ones out; if the submit future is dropped first
/// (cancelled), everything not delivered or dropped goes back to the front of the queue in
/// its original order — a refused chunk too, to be refused and handed back next time
/// rather than lost.
struct Unsettled<'q> {
    queue: &'q MeasurementQueue,
    /// The submission, in order; chunk `i` is `batch[i * chunk_size..]`, at most
    /// `chunk_size` long.
    batch: Vec<Measurement>,
    chunk_size: usize,
    /// `None` until the chunk's answer came.
    fates: Vec<Option<PayloadFate>>,
}

/// Where the chunks of a submission went.
struct Settled {
    kept: usize,
    dropped: usize,
    handed_back: Vec<Measurement>,
}

impl Unsettled<'_> {
    fn settle(mut self) -> Settled {
        let mut settled = Settled {
            kept: 0,
            dropped: 0,
            handed_back: Vec::new(),
        };
        let mut restore = Vec::new();
        let mut measurements = std::mem::take(&mut self.batch).into_iter();
        for fate in &self.fates {
            let chunk = measurements.by_ref().take(self.chunk_size);
            match fate {
                Some(PayloadFate::Delivered) => chunk.for_each(drop),
                Some(PayloadFate::HandBack) => settled.handed_back.extend(chunk),
                Some(PayloadFate::Drop) => settled.dropped += chunk.count(),
                _ => restore.extend(chunk),
            }
        }
        settled.kept = restore.len();
        self.restore(restore);
        settled
    }

    fn restore(&self, restore: Vec<Measurement>) {
        if restore.is_empty() {
            return;
        }
        let mut pending = lock(&self.queue.pending);
        // Measurements added while the submit ran stay behind the restored ones.
        for measurement in restore.into_iter().rev() {
            pending.items.push_front(measurement);
        }
        self.queue.trim(&mut pending.items);
    }
}

impl Drop for Unsettled<'_> {
    fn drop(&mut self) {
        if self.batch.is_empty() {
            return;
        }
        let mut restore = Vec::new();
        let mut measurements = std::mem::take(&mut self.batch).into_iter();
        for fate in &self.fates {
            let chunk = measurements.by_ref().take(self.chunk_size);
            match fate {
                Some(PayloadFate::Delivered | PayloadFate::Drop) => chunk.for_each(drop),
                _ => restore.extend(chunk),
            }
        }
        self.restore(restore);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn queued_measurements_share_names_and_tags() {
        let client = AppOpticsClient::builder()
            .with_token("t")
            .with_tag("host", "a")
            .build()
            .unwrap();
        let queue = client.queue().build().unwrap();
        for i in 0..3 {
            queue.add("same.metric", f64::from(i)).await.unwrap();
        }
        let guard = lock(&queue.pending);
        let pending = &guard.items;
        assert!(Arc::ptr_eq(&pending[0].name, &pending[2].name));
        let (first, last) = (
            pending[0].tags.as_ref().unwrap(),
            pending[2].tags.as_ref().unwrap(),
        );
        assert!(Arc::ptr_eq(first, last));
        drop(guard);
        assert_eq!(queue.drain().len(), 3);
    }
}
