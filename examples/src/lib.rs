//! The setup shared by `cargo run --example aggregate` and the cross-backend tests: one client
//! per backend behind `Arc<dyn MetricsSource>`, each talking to a real server when its
//! environment variables are set and to its seeded built-in emulator otherwise.
//!
//! It is the `metrics-hub` command's demo ([`metrics_hub_cli::demo`]), the same one
//! `metrics-hub collect` and `metrics-hub serve` run on without a config file.

pub use metrics_hub_cli::demo::*;
