//! The batching queue: measurements collected locally and submitted in chunks.
//!
//! A [`MeasurementQueue`] collects measurements (with or without their own tags), submits
//! them when asked or automatically once it holds `auto_submit_count` of them, and splits a
//! submission into chunks of at most `chunk_size` measurements (default 300, at most the API's
//! 1 000 per request) sent concurrently, at most `max_in_flight` at a time (default 4).
//!
//! # Nothing is dropped silently
//!
//! * **A failed chunk stays queued.** Every chunk of a submission is held by a guard until
//!   the server accepts it. A chunk that fails (error status, timeout, broken connection, a
//!   2xx that reports `errors`) goes back to the front of the queue in its original order,
//!   and `submit` returns [`Error::Incomplete`] with the number of measurements still
//!   queued; the next `submit` sends them again. Chunks that were accepted are never sent
//!   again (the Python library resent them).
//! * **Cancellation is safe.** If the `submit` future is dropped mid-way (a timeout around
//!   it, a cancelled task), the guard puts back every chunk whose acceptance was not seen.
//!   Such a chunk may have reached the server: delivery is at least once, never at most once.
//! * **Errors that would hit every chunk stop the batch.** After a 401, 403 or 429 no new
//!   chunk is started (sending more would only fail the same way or deepen the rate limit);
//!   the unstarted chunks stay queued and count in `unsent`. Other failures (a 5xx, a
//!   timeout, a 400 on one chunk) do not stop the others.
//! * **A scope always submits.** [`MeasurementQueue::scope`] runs your code and then submits,
//!   also when your code failed, as the Python context manager does.
//! * **Dropping a queue that still holds measurements logs a warning** (`tracing`, level
//!   WARN) with their count. Take them out with [`MeasurementQueue::drain`] if you mean to
//!   discard them, for example after a 400 that will not go away.
//!
//! Measurement posts are sent without the pipeline's automatic retries (see
//! [`AppOpticsClient::submit`]): a chunk that failed is resent by the next `submit`, not by
//! a hidden retry.
//!
//! ```no_run
//! # async fn run(client: appoptics_client::AppOpticsClient) -> metrics_core::Result<()> {
//! use appoptics_client::model::tags;
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
//! assert!(queue.is_empty());
//! # Ok(()) }
//! ```

use std::collections::VecDeque;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use std::pin::Pin;
use std::task::{Context, Poll};

use futures_util::StreamExt as _;
use futures_util::stream::FuturesUnordered;
use metrics_core::{Error, Result};

use crate::BACKEND;
use crate::aggregator::MeasurementAggregator;
use crate::client::AppOpticsClient;
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
}

impl fmt::Debug for QueueBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("QueueBuilder")
            .field("tags", &self.tags)
            .field("auto_submit_count", &self.auto_submit_count)
            .field("chunk_size", &self.chunk_size)
            .field("max_in_flight", &self.max_in_flight)
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

    /// Builds the queue.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] for a chunk size outside 1..=1000, no concurrency, an auto-submit
    /// count of 0, or invalid tags.
    pub fn build(self) -> Result<MeasurementQueue> {
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
        crate::validate::tags(&self.tags)
            .map_err(|e| Error::config(BACKEND, format!("queue tags: {e}")))?;
        let inherited = merged(self.client.tags(), &self.tags);
        Ok(MeasurementQueue {
            inherited_valid: valid_inherited(&inherited),
            client: self.client,
            tags: self.tags,
            inherited,
            auto_submit_count: self.auto_submit_count,
            chunk_size: self.chunk_size,
            max_in_flight: self.max_in_flight,
            pending: Mutex::new(VecDeque::new()),
        })
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
    pending: Mutex<VecDeque<Measurement>>,
}

impl fmt::Debug for MeasurementQueue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MeasurementQueue")
            .field("tags", &self.tags)
            .field("queued", &self.len())
            .field("auto_submit_count", &self.auto_submit_count)
            .field("chunk_size", &self.chunk_size)
            .field("max_in_flight", &self.max_in_flight)
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
        lock(&self.pending).len()
    }

    /// Whether nothing is waiting.
    pub fn is_empty(&self) -> bool {
        lock(&self.pending).is_empty()
    }

    /// How many requests the waiting measurements make.
    pub fn chunk_count(&self) -> usize {
        self.len().div_ceil(self.chunk_size)
    }

    /// The chunk size.
    pub fn chunk_size(&self) -> usize {
        self.chunk_size
    }

    /// A copy of the waiting measurements, with their resolved tags, oldest first.
    pub fn pending(&self) -> Vec<Measurement> {
        lock(&self.pending).iter().cloned().collect()
    }

    /// Takes every waiting measurement out of the queue (to discard, log or store them).
    pub fn drain(&self) -> Vec<Measurement> {
        lock(&self.pending).drain(..).collect()
    }

    /// Queues a value with the queue's and the connection's tags.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidInput`] for an invalid name or value or when no tags are set
    /// anywhere; the measurement is not queued. When the add triggers an automatic submit,
    /// that submit's error ([`Error::Incomplete`]); the measurement is then queued.
    pub async fn add(&self, name: impl AsRef<str>, value: f64) -> Result<()> {
        let name = name.as_ref();
        if !self.inherited_valid || self.client.sanitizes() {
            return self.add_measurement(Measurement::new(name, value)).await;
        }
        // The usual case, without a sanitizer and with valid inherited tags: the tags were
        // checked once when they were set, and a name that is the previous measurement's
        // was checked when that one was added; both are shared, not copied.
        crate::validate::value("value", value)?;
        let queued = {
            let mut pending = lock(&self.pending);
            let name = match pending.back() {
                Some(last) if *last.name == *name => Arc::clone(&last.name),
                _ => {
                    crate::validate::metric_name(name)?;
                    Arc::from(name)
                }
            };
            pending.push_back(Measurement::resolved(
                name,
                value,
                Arc::clone(&self.inherited),
            ));
            pending.len()
        };
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
        let mut measurement = self.client.prepare(measurement, &self.inherited)?;
        let queued = {
            let mut pending = lock(&self.pending);
            // Measurements of one metric usually come in runs: share the name.
            if let Some(last) = pending.back()
                && last.name == measurement.name
            {
                measurement.name = Arc::clone(&last.name);
            }
            pending.push_back(measurement);
            pending.len()
        };
        match self.auto_submit_count {
            Some(count) if queued >= count => self.submit().await.map(|_| ()),
            _ => Ok(()),
        }
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
            pending.extend(measurements);
            pending.len()
        };
        match self.auto_submit_count {
            Some(count) if queued >= count => self.submit().await.map(|_| ()),
            _ => Ok(()),
        }
    }

    /// Submits everything queued, in chunks of at most `chunk_size`, at most `max_in_flight`
    /// at a time. An empty queue sends nothing.
    ///
    /// # Errors
    ///
    /// [`Error::Incomplete`] when some chunks were not accepted: `unsent` is how many
    /// measurements went back into the queue, `source` the first failure (the one that
    /// stopped the batch, if one did).
    pub async fn submit(&self) -> Result<SubmitReport> {
        let batch: VecDeque<Measurement> = std::mem::take(&mut *lock(&self.pending));
        if batch.is_empty() {
            return Ok(SubmitReport::default());
        }
        // Chunks are slices of the batch, not copies of it.
        let batch = Vec::from(batch);
        let mut guard = Unacknowledged {
            pending: &self.pending,
            acked: vec![false; batch.len().div_ceil(self.chunk_size)],
            chunk_size: self.chunk_size,
            batch,
        };
        let mut outcomes = Outcomes::default();
        {
            let Unacknowledged { batch, acked, .. } = &mut guard;
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
                    outcomes.record_ready(&mut in_flight, chunks, acked).await;
                    YieldNow(false).await;
                    outcomes.record_ready(&mut in_flight, chunks, acked).await;
                    if !outcomes.stop {
                        ready = Some((next, body(&mut writer, chunks[next])));
                        next += 1;
                    }
                    if in_flight.len() < self.max_in_flight {
                        continue;
                    }
                }
                if let Some((index, result)) = in_flight.next().await {
                    outcomes.record(index, result, chunks, acked);
                }
            }
        }
        let unsent = guard.unacknowledged();
        drop(guard);
        let Outcomes {
            report,
            first_error,
            stopping_error,
            ..
        } = outcomes;
        match stopping_error.or(first_error) {
            None => Ok(report),
            Some(source) => Err(Error::Incomplete {
                backend: BACKEND,
                unsent,
                items: "measurements",
                source: Box::new(source),
            }),
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
        let unsent = self
            .pending
            .get_mut()
            .map_or_else(|poisoned| poisoned.into_inner().len(), |p| p.len());
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

/// What the chunks of one submission came to.
#[derive(Default)]
struct Outcomes {
    report: SubmitReport,
    first_error: Option<Error>,
    stopping_error: Option<Error>,
    /// Set by an error that every other chunk would get too: no new chunk starts.
    stop: bool,
}

impl Outcomes {
    fn record(
        &mut self,
        index: usize,
        result: Result<()>,
        chunks: &[&[Measurement]],
        acked: &mut [bool],
    ) {
        self.report.requests += 1;
        match result {
            Ok(()) => {
                acked[index] = true;
                self.report.measurements += chunks[index].len();
            }
            Err(error) => {
                tracing::warn!(
                    backend = BACKEND,
                    chunk = index,
                    measurements = chunks[index].len(),
                    error = %error,
                    "a measurement chunk was not accepted; it stays queued"
                );
                if stops_batch(&error) {
                    self.stop = true;
                    self.stopping_error.get_or_insert(error);
                } else {
                    self.first_error.get_or_insert(error);
                }
            }
        }
    }

    /// Polls the chunks in flight once (which also sends the new ones on their way) and
    /// records those that finished, without waiting for any.
    async fn record_ready<F>(
        &mut self,
        in_flight: &mut FuturesUnordered<F>,
        chunks: &[&[Measurement]],
        acked: &mut [bool],
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
            self.record(index, result, chunks, acked);
        }
    }
}

/// Gives the executor one turn (the HTTP connection tasks write the requests just started).
struct YieldNow(bool);

impl Future for YieldNow {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.0 {
            return Poll::Ready(());
        }
        self.0 = true;
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

/// Errors that every other chunk of the batch would get too.
fn stops_batch(error: &Error) -> bool {
    matches!(
        error,
        Error::Unauthenticated { .. }
            | Error::Forbidden { .. }
            | Error::RateLimited { .. }
            | Error::Config { .. }
            | Error::Tls { .. }
    )
}

/// The chunks of a submission until the server accepts them. Whatever is not acknowledged
/// when this is dropped — failed, never started, or in flight when the submit future was
/// cancelled — goes back to the front of the queue in its original order.
struct Unacknowledged<'q> {
    pending: &'q Mutex<VecDeque<Measurement>>,
    /// The submission, in order; chunk `i` is `batch[i * chunk_size..]`, at most
    /// `chunk_size` long.
    batch: Vec<Measurement>,
    chunk_size: usize,
    acked: Vec<bool>,
}

impl Unacknowledged<'_> {
    fn unacknowledged(&self) -> usize {
        self.batch
            .chunks(self.chunk_size)
            .zip(&self.acked)
            .filter(|(_, acked)| !**acked)
            .map(|(chunk, _)| chunk.len())
            .sum()
    }
}

impl Drop for Unacknowledged<'_> {
    fn drop(&mut self) {
        let mut restore = Vec::new();
        let mut measurements = std::mem::take(&mut self.batch).into_iter();
        for acked in &self.acked {
            let chunk = measurements.by_ref().take(self.chunk_size);
            if *acked {
                chunk.for_each(drop);
            } else {
                restore.extend(chunk);
            }
        }
        if restore.is_empty() {
            return;
        }
        let mut pending = lock(self.pending);
        // Measurements added while the submit ran stay behind the restored ones.
        for measurement in restore.into_iter().rev() {
            pending.push_front(measurement);
        }
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
        let pending = lock(&queue.pending);
        assert!(Arc::ptr_eq(&pending[0].name, &pending[2].name));
        let (first, last) = (
            pending[0].tags.as_ref().unwrap(),
            pending[2].tags.as_ref().unwrap(),
        );
        assert!(Arc::ptr_eq(first, last));
        drop(pending);
        assert_eq!(queue.drain().len(), 3);
    }
}
