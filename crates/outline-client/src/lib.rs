//! An async client for the [Outline](https://getoutline.org) VPN server's management API
//! ("shadowbox"): metrics first — the per-key 30-day transfer, the metrics-sharing flag and
//! the experimental server metrics — and the rest of the API (server settings, access keys,
//! data limits), so this is a complete client.
//!
//! # Connecting
//!
//! The installer prints two things: the `apiUrl`, whose first path segment is the server's
//! secret (there is no other credential), and the `certSha256` of the server's self-signed
//! certificate. Give both to [`OutlineClientBuilder`] — separately, as the JSON line the
//! installer prints ([`OutlineClientBuilder::with_install_output`]) or through
//! `OUTLINE_API_URL` / `OUTLINE_CERT_SHA256` ([`OutlineClientBuilder::from_env`]).
//!
//! The certificate is **pinned inside the TLS handshake** (see [`CertSha256`]),
//! so no request — and so no secret path — ever goes out on a connection to the wrong
//! server: a wrong pin is an [`Error::Tls`](metrics_core::Error::Tls) saying the fingerprint
//! does not match, and nothing was sent. Handshake signatures are still verified. Without a
//! pin, normal CA verification applies (which Outline's certificate never passes); turning
//! checks off is an explicit opt-in,
//! [`ClientOptions::with_danger_accept_invalid_certs`](metrics_core::ClientOptions::with_danger_accept_invalid_certs).
//!
//! The `apiUrl` is shown as `https://host:port/***` in `Debug`, `Display`, errors and
//! traces, including the server's own `ResourceNotFound` messages, which echo the path.
//!
//! ```no_run
//! # async fn run() -> metrics_core::Result<()> {
//! use outline_client::{OutlineClient, Since};
//!
//! let client = OutlineClient::builder()
//!     .with_api_url("https://203.0.113.7:45678/AbCdEfGhIjKlMnOpQrStUv")
//!     .with_cert_sha256("0BB78685B1661FD520A3F50763BF8CF680B9CD7AAC01082ACEF03A221BF9A881")
//!     .build()?;
//!
//! for (key_id, bytes) in &client.metrics().transfer().await? {
//!     println!("key {key_id}: {bytes} bytes in the last 30 days");
//! }
//! let window = client.metrics().server_metrics(Since::days(30)?).await?;
//! println!("peak {} B/s", window.server.bandwidth.peak.data.bytes);
//! # Ok(()) }
//! ```
//!
//! # As a metrics source
//!
//! [`OutlineClient`] implements [`MetricsSource`](metrics_core::MetricsSource): by default it
//! returns `outline_access_key_bytes_transferred{access_key_id="…"}` per key, plus
//! `outline_server_*` series when a query names them. The [`source`] module documents the
//! series and how a [`Query`](metrics_core::Query) maps onto the API.
//!
//! # Transport
//!
//! One connection pool per client, idle connections closed after 4 s (the server closes
//! them after 5 s), redirects never followed, and key creation (`POST`) never retried once
//! it may have reached the server. Validation the server would otherwise fail on — an
//! out-of-range `since`, port 0, empty names and ids — is an
//! [`Error::InvalidInput`](metrics_core::Error::InvalidInput) before anything is sent.
//!
//! # Features
//!
//! - `rustls` (default): rustls with ring; needed for the pin.
//! - `native-tls`: the platform's TLS library; it cannot pin, so a client with a
//!   `certSha256` fails to build without `rustls`.
#![cfg_attr(docsrs, feature(doc_cfg))]

mod client;
mod model;
pub mod source;
mod tls;

pub use client::{
    AccessKeys, DEFAULT_POOL_IDLE_TIMEOUT, ENV_API_URL, ENV_CERT_SHA256, Metrics, OutlineClient,
    OutlineClientBuilder,
};
pub use model::{
    AccessKey, AccessKeyMetrics, Bandwidth, BandwidthSample, Cipher, ConnectionMetrics, DataAmount,
    DataLimit, LocationMetrics, NewAccessKey, PeakDeviceCount, Server, ServerMetrics, ServerTotals,
    Since, TransferIter, TransferMetrics, TunnelTime,
};
pub use tls::{CertSha256, InvalidCertSha256};

#[doc(hidden)]
pub use model::transfer_decoders;

/// The backend name, as [`MetricsSource::backend`](metrics_core::MetricsSource::backend)
/// and every [`Error`](metrics_core::Error) of this crate report it.
pub const BACKEND: &str = "outline";
