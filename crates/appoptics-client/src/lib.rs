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
//!   [`queue`]).
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
#![cfg_attr(docsrs, feature(doc_cfg))]

mod aggregator;
mod alerts;
mod annotations;
mod client;
pub mod error;
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
    Sanitizer,
};
pub use measurements::{CompositeQuery, DEFAULT_RESOLUTION_SECS, MeasurementsQuery};
pub use model::{Measurement, Summary, Tags};
pub use pagination::ListParams;
pub use queue::{MeasurementQueue, QueueBuilder, SubmitReport};
