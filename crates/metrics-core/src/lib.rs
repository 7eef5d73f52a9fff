//! The shared core of metrics-hub: the [`MetricsSource`] trait every backend client
//! implements, the [`Series`] model they return, the one [`Error`] type, and the HTTP
//! pipeline ([`http::HttpClient`]) they all send requests through.
//!
//! Users normally depend on the `metrics-hub` facade, which re-exports this crate at its root.
//!
//! ```
//! use metrics_core::{Query, Series, SeriesKind};
//!
//! let query = Query::new().with_names(["coopr_*"]);
//! let series = Series::new("coopr_queue_tasks", SeriesKind::Gauge).with_label("state", "queued");
//! assert!(query.matches_name(&series.name));
//! ```
#![cfg_attr(docsrs, feature(doc_cfg))]

mod aggregate;
pub mod digits;
mod disposition;
mod env;
mod error;
pub mod http;
pub mod model;
mod options;
pub mod paginate;
mod query;
pub mod render;
pub mod retry;
mod secret;
mod source;

pub use aggregate::{Aggregator, Collection, SharedSource, SourceFailure};
pub use disposition::{Disposition, PayloadFate, Processing, Retry};
pub use env::Env;
pub use error::{BoxError, Error, Result, SharedError};
pub use http::Auth;
pub use model::{Point, Series, SeriesKind, Unit};
pub use options::{ClientOptions, DEFAULT_MAX_RESPONSE_BYTES};
pub use paginate::{Page, Paginator};
pub use query::{Query, TimeRange};
pub use retry::{BackoffConfig, Jitter, RetryConfig};
pub use secret::Secret;
pub use source::{MetricsSource, MetricsSourceExt};

/// The async-trait attribute, re-exported so backends and users implement
/// [`MetricsSource`] with the same version.
pub use async_trait::async_trait;
/// The chrono crate, whose `DateTime<Utc>` the model uses.
pub use chrono;
/// The reqwest crate, for [`ClientOptions::with_http_client`].
pub use reqwest;
