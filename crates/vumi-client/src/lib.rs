//! Async client for the Vumi Go metrics API ([go-metrics-api] 0.2.0): query graphite-summarized
//! time series of account and conversation metrics, and fire metric values.
//!
//! - [`VumiClient::query`] sends a [`MetricsQuery`]: metric names ([`MetricName`], ending in an
//!   [`Aggregator`]), `from`/`until` in graphite's time grammar ([`time::TimeSpec`]), the
//!   bucket size ([`time::Interval`]), `align_to_from` and null handling ([`Nulls`]). Every
//!   value the server would answer with an error, including its 10 000-point size limit, is
//!   rejected with [`Error::InvalidInput`](metrics_core::Error::InvalidInput) before a
//!   request is made.
//! - [`VumiClient::fire`] posts values (finite numbers only) and returns the server's
//!   confirmations in the order given. The server aggregates them, so a request it may have
//!   acted on is never sent twice; its docs give the delivery contract, outcome by outcome.
//! - [`VumiClient`] implements [`MetricsSource`](metrics_core::MetricsSource) for the metric
//!   names it was configured with (see the [`source`] module for the mapping).
//!
//! Authentication: Bearer token, HTTP Basic plus `X-Owner-ID`, or `X-Owner-ID` alone; see
//! [`VumiClientBuilder`], which also lists the `VUMI_*` environment variables.
//!
//! ```no_run
//! # async fn run() -> metrics_core::Result<()> {
//! use vumi_client::time::{TimeSpec, TimeUnit};
//! use vumi_client::{Aggregator, MetricName, MetricsQuery, Nulls, VumiClient};
//!
//! let client = VumiClient::builder()
//!     .with_base_url("https://go.vumi.org/api/v1/go")
//!     .with_token(std::env::var("VUMI_TOKEN").unwrap_or_default())
//!     .build()?;
//! let completed = MetricName::account("default", "questions_completed", Aggregator::Sum)?;
//! let data = client
//!     .query(
//!         &MetricsQuery::new()
//!             .with_metric(&completed)
//!             .with_from(TimeSpec::ago(30, TimeUnit::Days))
//!             .with_interval("1d")
//!             .with_nulls(Nulls::Keep),
//!     )
//!     .await?;
//! if let Some(series) = data.get(&completed) {
//!     for point in &series.points {
//!         println!("{} {:?}", point.time, point.value);
//!     }
//! }
//! client.fire([(&completed, 1.0)]).await?;
//! # Ok(()) }
//! ```
//!
//! [go-metrics-api]: https://github.com/praekelt/go-metrics-api
#![cfg_attr(docsrs, feature(doc_cfg))]

mod client;
mod decode;
mod model;
pub mod source;
pub mod time;

pub use client::{DEFAULT_MAX_POINTS, Rejection, VumiClient, VumiClientBuilder, VumiError};
pub use model::{
    Aggregator, DataPoint, FiredMetric, MetricKind, MetricName, MetricSeries, MetricsData,
    MetricsQuery, Nulls,
};
pub use source::{AGGREGATOR_LABEL, series_name};
pub use time::ParseError;

/// The backend's name, as every error and [`MetricsSource`](metrics_core::MetricsSource)
/// reports it.
pub const BACKEND: &str = "vumi";
