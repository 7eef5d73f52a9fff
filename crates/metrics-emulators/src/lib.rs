//! In-process, stateful emulators of the five metrics APIs metrics-hub speaks to, for tests,
//! examples and users' own test suites.
//!
//! Each emulator is written from the server's side, from what the real server was observed
//! to do — status codes, error bodies, quirks — and never from the client crates' types, so a
//! client test against an emulator is a real check of the wire contract. Every emulator runs
//! on `127.0.0.1` with a free port, records the requests it receives ([`RequestLog`]) and can
//! inject faults ([`Faults`]): latency, error statuses with `Retry-After`, dropped
//! connections and malformed bodies.
//!
//! One cargo feature per backend: `outline`, `appoptics`, `unleash`, `coopr`, `vumi`, or `full`;
//! `hostile` adds [`hostile::HostileServer`], a raw-socket server that misbehaves on purpose
//! (with HTTPS when `tls` is on too).
#![cfg_attr(docsrs, feature(doc_cfg))]

mod server;
#[cfg(feature = "tls")]
mod tls;

pub use server::{EmulatorServer, Fault, Faults, RecordedRequest, RequestLog};
#[cfg(feature = "tls")]
pub use tls::SelfSignedCert;

#[cfg(feature = "appoptics")]
pub mod appoptics;
#[cfg(feature = "coopr")]
pub mod coopr;
#[cfg(feature = "hostile")]
#[cfg_attr(docsrs, doc(cfg(feature = "hostile")))]
pub mod hostile;
#[cfg(feature = "outline")]
pub mod outline;
#[cfg(feature = "unleash")]
pub mod unleash;
#[cfg(feature = "vumi")]
pub mod vumi;
