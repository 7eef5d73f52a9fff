//! An async client for [Unleash](https://www.getunleash.io/)'s client-metrics API, from
//! Unleash v3 to 8.x.
//!
//! * **Writes**, with a backend (client) token: [`UnleashClient::register`]
//!   (`POST /api/client/register`) and [`UnleashClient::send_metrics`]
//!   (`POST /api/client/metrics`), with the fields and SDK headers current servers read.
//! * **A [`MetricsRecorder`]**: cheap yes/no/variant counting from many tasks, a background
//!   flush on a jittered interval, and a [delivery contract](MetricsRecorder#delivery-contract)
//!   decided by [`Error::disposition`](metrics_core::Error::disposition): counts the server
//!   did not take (refused or closed connection, 429, 408) are kept and merged, counts it may
//!   have taken are never sent twice, refused ones are handed back; `Retry-After` holds back
//!   every POST, the caller's too; a stop on 401/403, and a last flush at
//!   [`shutdown`](MetricsRecorder::shutdown), which hands back what it could not send.
//! * **Errors** carry Unleash's own reading as a typed detail, [`UnleashError`], with a
//!   [`Diagnosis`] where the status means something specific on that endpoint (wrong token
//!   type, a server of another version than configured).
//! * **Read-back**, with an admin token: applications (paged on 5.10+), application details,
//!   overview and instances, per-flag metrics (`client-metrics/features/:name` and `/raw`),
//!   unknown flags, and the seed's legacy views (`seen-toggles`, `seen-apps`,
//!   `feature-toggles`) at the paths of the configured [`ServerVersion`]; a 410 from a newer
//!   server is an [`Error::Unsupported`](metrics_core::Error::Unsupported) naming the
//!   replacement.
//! * **[`MetricsSource`](metrics_core::MetricsSource)**: yes/no counts per flag, application
//!   and environment as series (see [`source`]).
//!
//! ```no_run
//! # async fn run() -> metrics_core::Result<()> {
//! use std::time::Duration;
//! use unleash_client::{RecorderConfig, UnleashClient};
//!
//! let client = UnleashClient::builder()
//!     .with_url("http://127.0.0.1:4242")
//!     .with_api_token("default:development.unleash-insecure-api-token")
//!     .with_admin_token("*:*.unleash-insecure-admin-api-token")
//!     .with_app_name("checkout-service")
//!     .build()?; // or UnleashClientBuilder::from_env() with UNLEASH_URL, UNLEASH_API_TOKEN, …
//!
//! let recorder = client.start_recorder(RecorderConfig::new().with_interval(Duration::from_secs(15)))?;
//! for user in 0..100 {
//!     recorder.count("new-checkout", user % 4 == 0);
//! }
//! recorder.shutdown().await.into_result()?; // sends what is left
//!
//! // The server writes metrics to its database every few seconds.
//! let usage = client.feature_metrics_raw("new-checkout", 1).await?;
//! println!("{:?}", usage.total(Some("checkout-service"), None));
//! # Ok(()) }
//! ```
//!
//! Tokens are held as [`Secret`](metrics_core::Secret)s and never appear in `Debug` output or
//! error messages.
#![cfg_attr(docsrs, feature(doc_cfg))]

mod admin;
mod client;
mod error;
pub mod model;
mod recorder;
pub mod source;
mod versions;

pub use admin::{ApplicationsQuery, MAX_APPLICATIONS_PAGE, MAX_HOURS_BACK, SortOrder};
pub use client::{
    DEFAULT_INTERVAL, DEFAULT_SDK_NAME, SPEC_VERSION, UnleashClient, UnleashClientBuilder,
};
pub use error::{Diagnosis, FieldError, UnleashError};
pub use model::{MetricsBucket, ToggleCount};
pub use recorder::{
    Clock, Flushed, MetricsRecorder, RecorderConfig, RecorderStatus, ShutdownReport,
};
pub use versions::ServerVersion;

/// The backend name, as in every error and in [`MetricsSource::backend`](metrics_core::MetricsSource::backend).
pub const BACKEND: &str = "unleash";
