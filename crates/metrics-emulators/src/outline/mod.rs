//! An emulator of the Outline server management API ("shadowbox", server 1.12.3).
//!
//! It serves HTTPS only, with a freshly generated self-signed certificate whose SHA-256 it
//! hands out as `certSha256`, under a random 22-character secret path prefix — the
//! `apiUrl` is `https://127.0.0.1:PORT/<prefix>`, exactly what the installer prints. A wrong
//! prefix, an unknown route or (in legacy mode) the experimental metrics answer
//! `404 {"code":"ResourceNotFound","message":"<path> does not exist"}`.
//!
//! Implemented from the server's side, with state: server name, hostname and port for new
//! keys, default data limit, access keys (counter ids that failed creates burn, ids given
//! with `PUT`, unique passwords, own data limits, `ss://` access URLs), the metrics-sharing
//! flag, per-key transfer bytes (zero omitted, deleted keys kept) and the experimental
//! server metrics in the real shape — floats, `null` timestamps without data, `accessKeyId`
//! from `parseInt` (so `null` for non-numeric ids), an `XL` location with `null` AS fields.
//! Validation answers carry the real status codes and `{code, message}` texts, including
//! the quirks: a data-limit `PUT` without `limit` clears the limit, `PUT /name` answers 409
//! for a bad name, `since` out of range is a bare 500, `callback=` turns any answer into
//! JSONP, the deprecated `/experimental/access-key-data-limit` is a 308.
//!
//! The experimental metrics do not depend on the `since` window (it is only validated).
//!
//! ```no_run
//! # async fn run() -> std::io::Result<()> {
//! use metrics_emulators::outline::OutlineEmulator;
//!
//! let emulator = OutlineEmulator::start().await?;
//! let ids = emulator.add_access_keys(3);
//! emulator.set_transfer(&ids[0], 76_609);
//! println!("{}", emulator.access_json()); // {"apiUrl":"https://127.0.0.1:…/…","certSha256":"…"}
//! assert_eq!(emulator.requests().count(), 0);
//! # Ok(()) }
//! ```

mod routes;
mod state;

use std::fmt;
use std::ops::{Deref, DerefMut};
use std::sync::{Arc, Mutex};

use axum::Router;
use base64::Engine as _;

pub use state::{EmulatedAccessKey, EmulatedKeyMetrics, EmulatedLocation};

use crate::server::{EmulatorServer, lock};
use crate::tls::SelfSignedCert;
use state::State;

/// A running Outline server emulator. Derefs to [`EmulatorServer`] for the request log,
/// fault injection, `stop` and `restart`. Seeding and read-back methods take `&self`.
pub struct OutlineEmulator {
    server: EmulatorServer,
    state: Arc<Mutex<State>>,
    cert: SelfSignedCert,
    prefix: String,
}

impl fmt::Debug for OutlineEmulator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OutlineEmulator")
            .field("server", &self.server)
            .field("cert_sha256", &self.cert.sha256_hex)
            .finish_non_exhaustive()
    }
}

impl Deref for OutlineEmulator {
    type Target = EmulatorServer;

    fn deref(&self) -> &EmulatorServer {
        &self.server
    }
}

impl DerefMut for OutlineEmulator {
    fn deref_mut(&mut self) -> &mut EmulatorServer {
        &mut self.server
    }
}

/// A random secret like the installer's: URL-safe base64 of 16 random bytes, no padding.
fn random_prefix() -> String {
    let mut bytes = [0u8; 16];
    if ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes).is_err() {
        let mut rng = state::Rng::new();
        for chunk in bytes.chunks_mut(8) {
            let random = rng.next_u64().to_le_bytes();
            chunk.copy_from_slice(&random[..chunk.len()]);
        }
    }
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

impl OutlineEmulator {
    /// Starts an emulator with a random secret prefix and a new certificate.
    ///
    /// # Errors
    ///
    /// When no port can be bound.
    pub async fn start() -> std::io::Result<Self> {
        Self::start_with_prefix(random_prefix()).await
    }

    /// Starts an emulator with this secret prefix (the first path segment of the apiUrl).
    ///
    /// # Errors
    ///
    /// When no port can be bound.
    pub async fn start_with_prefix(prefix: impl Into<String>) -> std::io::Result<Self> {
        let prefix = prefix.into();
        let cert = SelfSignedCert::generate();
        let state = Arc::new(Mutex::new(State::new(prefix.clone())));
        let router = Router::new()
            .fallback(routes::handle)
            .with_state(Arc::clone(&state));
        let server = EmulatorServer::start_tls(router, Arc::clone(&cert.config)).await?;
        // The management port is in use by the server itself.
        lock(&state)
            .unavailable_ports
            .insert(server.address().port());
        Ok(Self {
            server,
            state,
            cert,
            prefix,
        })
    }

    /// `https://127.0.0.1:PORT/<prefix>`: the credential a client needs.
    pub fn api_url(&self) -> String {
        format!("{}/{}", self.server.base_url(), self.prefix)
    }

    /// The secret prefix.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The certificate's SHA-256, 64 upper-case hex digits, as the installer prints it.
    pub fn cert_sha256(&self) -> &str {
        &self.cert.sha256_hex
    }

    /// The certificate in DER form.
    pub fn cert_der(&self) -> &[u8] {
        &self.cert.der
    }

    /// The line the installer prints for Outline Manager:
    /// `{"apiUrl":"https://…","certSha256":"…"}`.
    pub fn access_json(&self) -> String {
        serde_json::json!({ "apiUrl": self.api_url(), "certSha256": self.cert_sha256() })
            .to_string()
    }

    /// The installer's `access.txt`: `certSha256:…` and `apiUrl:…` lines.
    pub fn access_txt(&self) -> String {
        format!(
            "certSha256:{}\napiUrl:{}\n",
            self.cert_sha256(),
            self.api_url()
        )
    }

    fn with_state<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        f(&mut lock(&self.state))
    }

    // --- Seeding ---

    /// Adds a key with server defaults (counter id, random password, the port for new
    /// keys) and returns its id.
    pub fn add_access_key(&self, name: &str) -> String {
        self.with_state(|state| {
            let id = state.take_id();
            state.insert_key(id.clone(), name.to_owned(), None, None, None, None);
            id
        })
    }

    /// Adds `count` unnamed keys with server defaults, returning their ids. Fast enough for
    /// 100 000 keys.
    pub fn add_access_keys(&self, count: usize) -> Vec<String> {
        self.with_state(|state| {
            (0..count)
                .map(|_| {
                    let id = state.take_id();
                    state.insert_key(id.clone(), String::new(), None, None, None, None);
                    id
                })
                .collect()
        })
    }

    /// Adds a key with a chosen id (as `PUT /access-keys/{id}`); `false` if it exists.
    pub fn add_access_key_with_id(&self, id: &str, name: &str) -> bool {
        self.with_state(|state| {
            if state.key(id).is_some() {
                return false;
            }
            state.insert_key(id.to_owned(), name.to_owned(), None, None, None, None);
            true
        })
    }

    /// Sets the 30-day transfer of key `id` (0 removes it from `/metrics/transfer`). Any
    /// id works, also of deleted or never-created keys, as on the real server.
    pub fn set_transfer(&self, id: &str, bytes: u64) {
        self.with_state(|state| {
            if bytes == 0 {
                state.transfer.remove(id);
            } else {
                state.transfer.insert(id.to_owned(), bytes);
            }
        });
    }

    /// Sets the transfer of many keys at once.
    pub fn set_transfers<I, S>(&self, transfers: I)
    where
        I: IntoIterator<Item = (S, u64)>,
        S: Into<String>,
    {
        self.with_state(|state| {
            for (id, bytes) in transfers {
                let id = id.into();
                if bytes == 0 {
                    state.transfer.remove(&id);
                } else {
                    state.transfer.insert(id, bytes);
                }
            }
        });
    }

    /// Forgets all transfer data.
    pub fn clear_transfer(&self) {
        self.with_state(|state| state.transfer.clear());
    }

    /// Sets the experimental metrics of key `id` explicitly, instead of deriving them from
    /// its transfer bytes.
    pub fn set_key_metrics(&self, id: &str, metrics: EmulatedKeyMetrics) {
        self.with_state(|state| {
            state.key_metrics.insert(id.to_owned(), metrics);
        });
    }

    /// Sets `server.locations` explicitly (the server totals are their sums). Without
    /// this, all traffic is one `XL` location with `null` AS fields, as on a server without
    /// GeoIP databases.
    pub fn set_locations(&self, locations: Vec<EmulatedLocation>) {
        self.with_state(|state| state.locations = Some(locations));
    }

    /// `false` emulates a server before 1.11.1: `GET /experimental/server/metrics` answers
    /// 404 `ResourceNotFound`.
    pub fn set_server_metrics_available(&self, available: bool) {
        self.with_state(|state| state.server_metrics_available = available);
    }

    /// `true` makes the transfer and experimental metrics fail as when the server's
    /// Prometheus is down: 500 `InternalServer` with an empty message.
    pub fn set_prometheus_down(&self, down: bool) {
        self.with_state(|state| state.prometheus_down = down);
    }

    /// Marks a port as used by another process: choosing it answers 409 `Conflict`.
    pub fn mark_port_unavailable(&self, port: u16) {
        self.with_state(|state| {
            state.unavailable_ports.insert(port);
        });
    }

    /// Sets the version `GET /server` reports (default `1.12.3`).
    pub fn set_version(&self, version: &str) {
        self.with_state(|state| state.version = version.to_owned());
    }

    /// Sets the server name.
    pub fn set_server_name(&self, name: &str) {
        self.with_state(|state| state.name = name.to_owned());
    }

    // --- Read-back ---

    /// The server name.
    pub fn server_name(&self) -> String {
        self.with_state(|state| state.name.clone())
    }

    /// The metrics-sharing flag.
    pub fn metrics_enabled(&self) -> bool {
        self.with_state(|state| state.metrics_enabled)
    }

    /// The default data limit.
    pub fn default_data_limit(&self) -> Option<u64> {
        self.with_state(|state| state.default_limit)
    }

    /// The hostname for new keys.
    pub fn hostname_for_access_keys(&self) -> String {
        self.with_state(|state| state.hostname.clone())
    }

    /// The port for new keys.
    pub fn port_for_new_access_keys(&self) -> u16 {
        self.with_state(|state| state.port_for_new_keys)
    }

    /// A key by id.
    pub fn access_key(&self, id: &str) -> Option<EmulatedAccessKey> {
        self.with_state(|state| state.key(id).cloned())
    }

    /// Every key, in creation order.
    pub fn access_keys(&self) -> Vec<EmulatedAccessKey> {
        self.with_state(|state| state.keys().cloned().collect())
    }

    /// How many keys exist.
    pub fn access_key_count(&self) -> usize {
        self.with_state(|state| state.key_count())
    }

    /// The transfer bytes of key `id` (0 when none).
    pub fn transfer(&self, id: &str) -> u64 {
        self.with_state(|state| state.transfer.get(id).copied().unwrap_or(0))
    }
}
