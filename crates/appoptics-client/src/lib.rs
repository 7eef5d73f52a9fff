//! An async client for the [AppOptics](https://www.appoptics.com) (ex-Librato) Metrics API
//! v1, part of metrics-hub.
//!
//! Everything the Python `appoptics-metrics` library does, and what it did wrong done right:
//!
//! * **Connect** with a token (HTTP Basic, token as user, empty password; `APPOPTICS_TOKEN`),
//!   an optional metric-name [`Sanitizer`], connection-level tags, a 10 s request timeout.
//! * **Metrics**: list one page or [all of them as a `Stream`](AppOpticsClient::list_all_metrics)
//!   (pagination ends on `found`), get, create, update, delete one or many.
//! * **Measurements**: [submit](AppOpticsClient::submit) with tags and `inherit_tags`, read
//!   them back by time, resolution, tag filters, `group_by` and summary function, following
//!   `next` links; composite queries and saved composites.
//! * **Batching**: a [`MeasurementQueue`] that submits in chunks under the API's per-request
//!   limit, concurrently with a bound, and never loses a measurement silently (see
//!   [`queue`]); a [`ManagedQueue`] that many tasks record into and that sends in the
//!   background (see the [delivery contract](#delivery-contract)).
//! * **Annotations**, **spaces and charts** (charts keep their streams' tags and colours
//!   across a save), **alerts** and **services**.
//! * **Validation** of names, tags and values before sending ([`validate`]); a 2xx that
//!   carries `errors` is a failure; 422, 429 (with the rate-limit headers in the message) and
//!   the account-limit 403 are typed; 5xx are retried a bounded number of times, never
//!   measurement posts.
//! * [`MetricsSource`](metrics_core::MetricsSource): the configured metrics' measurements as
//!   [`Series`](metrics_core::Series) (see [`source`]).
//!
//! ```no_run
//! # async fn run() -> metrics_core::Result<()> {
//! use std::time::Duration;
//! use appoptics_client::{AppOpticsClient, Measurement, MeasurementsQuery, model::tags};
//!
//! let client = AppOpticsClient::builder()
//!     .with_token("0123456789abcdef")
//!     .with_tags(tags([("service", "api")]))
//!     .build()?;
//!
//! // One measurement, inheriting the connection tags and adding its own.
//! client
//!     .submit(Measurement::new("temperature", 80.0).with_tag("city", "sf").with_inherit_tags(true))
//!     .await?;
//!
//! // Many, batched.
//! let queue = client.queue().with_auto_submit_count(1_000).build()?;
//! for i in 0..10_000 {
//!     queue.add("requests", f64::from(i)).await?;
//! }
//! queue.submit().await?;
//!
//! // Read back the last 15 minutes at 60 s.
//! let read = client
//!     .get_measurements("temperature", &MeasurementsQuery::last(Duration::from_secs(900)))
//!     .await?;
//! for series in &read.series {
//!     println!("{:?}: {} points", series.tags, series.measurements.len());
//! }
//! # Ok(()) }
//! ```
//!
//! Errors are [`metrics_core::Error`]; [`error`] documents how AppOptics' error bodies and
//! rate-limit headers map onto it.
//!
//! # Delivery contract
//!
//! What the queues ([`MeasurementQueue`], and [`ManagedQueue`] on top of it) do with a chunk
//! of measurements, by the outcome of its post. Every row is read from the failure's
//! [`Disposition`](metrics_core::Disposition), decided where the error is made; the queues
//! classify nothing themselves. Measurement posts are never retried by the HTTP pipeline:
//! the queue is the one place that sends a chunk again.
//!
//! Measurements are time-stamped when they are added (unless the queue is built with
//! [`with_timestamps(false)`](QueueBuilder::with_timestamps)). AppOptics keys a point by
//! metric, tags and time, so a chunk sent again after an unknown outcome is the same points,
//! not new ones: for time-stamped measurements a resend is treated as idempotent. (The API
//! does not document how it stores a duplicate point; a summary sent twice could be merged
//! twice by a server that adds summaries up.)
//!
//! | outcome | disposition | the chunk | next attempt ([`ManagedQueue`]) |
//! |---|---|---|---|
//! | accepted (2xx) | — | delivered, never sent again | after the interval |
//! | connection refused (nothing sent) | not sent, backoff | kept in order; no more chunks this round | backoff: `interval × (1 + failures)`, at most `max_backoff` |
//! | connection closed before any answer on a reused connection | closed before response, backoff | kept in order | backoff |
//! | timeout after sending, connection broken mid-answer | unknown, backoff | kept (time-stamped); **dropped and logged** at ERROR when a measurement has no time | backoff |
//! | 5xx (500, 502, 503, 504) | unknown, backoff | as a timeout | backoff |
//! | 503 with `Retry-After` | not processed, after the wait | kept in order | not before the wait |
//! | 429 (and the 403 account rate limit) | not processed, after the wait read from `X-Librato-RateLimit-*` | kept; no more chunks this round | not before the limit resets |
//! | 401, 403, TLS handshake failure | not processed / not sent, never | kept (the data is safe; fix the token or the TLS setup); no more chunks this round | backoff, reported in [`ManagedStatus::last_error`]; handed back at shutdown |
//! | 400, 404, 413, 415, 422, other 4xx | refused, never | **handed back**: out of the queue, inside the error ([`RejectedMeasurements`]), or held for [`ManagedQueue::take_rejected`] after a background send; logged at WARN | after the interval |
//! | 2xx reporting `errors`, 501 | unknown, never | handed back: sending again could only get the same answer | after the interval |
//! | queue full ([`QueueBuilder::with_capacity`]) | — | the **oldest** measurements dropped, counted ([`ManagedStatus::dropped_full`]) and logged | — |
//! | shutdown ([`ManagedQueue::shutdown`]) | — | sent within the budget, waiting out backoff and rate limits; what is left is **handed back** in [`ShutdownReport::unsent`], refusals in [`ShutdownReport::rejected`] | none: `add` fails afterwards |
//!
//! Nothing is resent forever: a chunk is kept only while its failure says a later attempt
//! may succeed and the server did not take it, or took it in a way that is safe to repeat.
//! A submit future that is cancelled puts its chunks back (at least once, never lost).
#![cfg_attr(docsrs, feature(doc_cfg))]

mod aggregator;
mod alerts;
mod annotations;
mod client;
pub mod error;
pub mod managed;
mod measurements;
pub mod model;
pub mod pagination;
pub mod queue;
pub mod source;
mod spaces;
pub mod validate;

/// The backend name, as in [`metrics_core::Error::backend`] and
/// [`MetricsSource::backend`](metrics_core::MetricsSource::backend).
pub const BACKEND: &str = "appoptics";

pub use aggregator::{MeasurementAggregator, SummaryStats};
pub use annotations::AnnotationQuery;
pub use client::{
    AppOpticsClient, AppOpticsClientBuilder, DEFAULT_BASE_URL, DEFAULT_TIMEOUT, DEFAULT_USER_AGENT,
    Sanitizer, TagSanitizer,
};
pub use managed::{ManagedConfig, ManagedQueue, ManagedStatus, ShutdownReport, TagSet};
pub use measurements::{CompositeQuery, DEFAULT_RESOLUTION_SECS, MeasurementsQuery};
pub use model::{Measurement, Summary, Tags};
pub use pagination::ListParams;
pub use queue::{MeasurementQueue, QueueBuilder, RejectedMeasurements, SubmitReport};
