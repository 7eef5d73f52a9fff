//! An async client for the metrics API of a [Coopr](https://github.com/cdapio/coopr) server
//! (Cask's cluster provisioning server): task-queue metrics per tenant and node usage over
//! time.
//!
//! | method | endpoint | who may call it |
//! |---|---|---|
//! | [`CooprClient::queue_metrics`] | `GET /v2/metrics/queues` | user `admin`: every tenant in the `superadmin` tenant, its own tenant elsewhere |
//! | [`CooprClient::node_usage`] | `GET /v2/metrics/nodes/usage` | any user of a tenant (the superadmin for any tenant) |
//!
//! Every request carries `Coopr-UserID` and `Coopr-TenantID` (a tenant **name**), plus
//! `Coopr-ApiKey` when one is configured (the server never checks it). The client also
//! implements [`MetricsSource`](metrics_core::MetricsSource): see [`source`] for the series
//! and how a [`Query`](metrics_core::Query) maps onto the API.
//!
//! Errors are [`metrics_core::Error`]s. Coopr answers errors in plain text; the client keeps
//! the text as the message and attaches a typed [`CooprError`] to the error, which
//! [`CooprErrorKind::of`] reads back: 401 missing header → [`Error::Unauthenticated`](metrics_core::Error::Unauthenticated),
//! 403 not an admin → [`Error::Forbidden`](metrics_core::Error::Forbidden), 404 unknown tenant
//! → [`Error::NotFound`](metrics_core::Error::NotFound), 405 another tenant and 400 bad
//! parameters and 500s → [`Error::Api`](metrics_core::Error::Api) with that status, a path the
//! server lacks → [`Error::Unsupported`](metrics_core::Error::Unsupported).
//!
//! ```no_run
//! # async fn demo() -> metrics_core::Result<()> {
//! use coopr_client::{CooprClient, GroupBy, NodeUsageQuery, TimeUnit};
//!
//! // Or CooprClientBuilder::from_env() with COOPR_URL, COOPR_USER_ID, COOPR_TENANT_ID, COOPR_API_KEY.
//! let client = CooprClient::builder()
//!     .with_base_url("http://coopr.example.com:55054/v2")
//!     .with_user_id("admin")
//!     .with_tenant("superadmin")
//!     .with_api_key("my-key")
//!     .build()?;
//!
//! for (tenant, queue) in client.queue_metrics().await? {
//!     println!("{tenant}: {} queued, {} in progress", queue.queued, queue.in_progress);
//! }
//!
//! let usage = client
//!     .node_usage(
//!         &NodeUsageQuery::new()
//!             .with_range(1_424_390_400, 1_424_476_800)
//!             .with_user("george")
//!             .with_group_by(GroupBy::Hour)
//!             .with_time_unit(TimeUnit::Minutes),
//!     )
//!     .await?;
//! for bucket in &usage.data {
//!     println!("{}: {} node-minutes", bucket.time, bucket.value);
//! }
//! # Ok(()) }
//! ```
#![cfg_attr(docsrs, feature(doc_cfg))]

mod client;
mod error;
mod model;
pub mod source;

pub use client::{
    ADMIN_USER, API_KEY_HEADER, CooprClient, CooprClientBuilder, SUPERADMIN_TENANT, TENANT_HEADER,
    USER_HEADER,
};
pub use error::{CooprError, CooprErrorKind};
pub use model::{
    GroupBy, NodeUsage, NodeUsageQuery, QueueMetrics, TenantQueues, TimeUnit, Timestamp,
    UsageInterval,
};

/// The backend name every error and series of this crate carries.
pub const BACKEND: &str = "coopr";
