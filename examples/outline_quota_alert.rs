//! A data-quota alert over several Outline servers: which access keys have used at least a
//! given fraction of their data limit, and on which server.
//!
//! The per-key transfer of every server comes through one [`Aggregator`] with a named source
//! per server. Two Outline servers number their keys alike (`0`, `1`, …), so the transfer
//! series of key `0` on one server and on the other differ only by the `source` label the
//! aggregator puts on a named source's series; the alert matches transfer and limits by
//! (server, key). The limits are read from each server's access keys, and a key without a
//! limit of its own has the server's default limit, if there is one.
//!
//! Run with `cargo run --example outline_quota_alert [THRESHOLD]` (default 0.8): it starts
//! two Outline emulators with their own keys, limits and traffic. Against real servers,
//! build each client from what the installer printed
//! (`OutlineClient::builder().with_install_output(text)`) and call [`check_quotas`].

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use metrics_emulators::outline::OutlineEmulator;
use metrics_hub::outline::OutlineClient;
use metrics_hub::outline::source::TRANSFER_SERIES;
use metrics_hub::{Aggregator, Error, MetricsSource, Query};

/// A key that has used at least the threshold fraction of its data limit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QuotaAlert {
    /// The server's name, as given to [`check_quotas`].
    pub server: String,
    /// The server's `host:port` (no secret path).
    pub endpoint: String,
    /// The access key's id: unique on its server only.
    pub key_id: String,
    /// The access key's display name.
    pub key_name: String,
    /// Bytes the key transferred over the last 30 days.
    pub bytes: u64,
    /// The limit that applies to the key, in bytes over the same 30 days.
    pub limit: u64,
    /// Whether that limit is the server's default rather than the key's own.
    pub server_default_limit: bool,
}

impl QuotaAlert {
    /// The fraction of the limit used (1.0 = all of it).
    pub fn used(&self) -> f64 {
        self.bytes as f64 / self.limit as f64
    }
}

impl fmt::Display for QuotaAlert {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} ({}): key {} {:?} used {} of {} bytes ({:.1} %){}",
            self.server,
            self.endpoint,
            self.key_id,
            self.key_name,
            self.bytes,
            self.limit,
            self.used() * 100.0,
            if self.server_default_limit {
                ", the server's default limit"
            } else {
                ""
            }
        )
    }
}

/// A server whose keys could not be checked.
#[derive(Debug)]
pub struct Unchecked {
    /// The server's name, as given to [`check_quotas`].
    pub server: String,
    /// The server's `host:port`, when known.
    pub endpoint: Option<String>,
    /// Why.
    pub error: Error,
}

/// What [`check_quotas`] found.
#[derive(Debug, Default)]
pub struct QuotaReport {
    /// Keys at or over the threshold: by server in the order given, most used first.
    pub alerts: Vec<QuotaAlert>,
    /// Servers that did not answer; the others are checked all the same.
    pub unchecked: Vec<Unchecked>,
}

/// Checks every key of every server against `threshold` (0.8: alert from 80 % of the
/// limit on). Keys without any limit are never reported, nor are keys with a limit of 0,
/// which an operator sets to cut a key off on purpose.
pub async fn check_quotas(servers: &[(&str, OutlineClient)], threshold: f64) -> QuotaReport {
    let aggregator = servers.iter().fold(
        Aggregator::default().with_timeout(Duration::from_secs(10)),
        |aggregator, (name, client)| aggregator.with_named_source(*name, client.clone()),
    );
    let source_label = aggregator
        .source_label()
        .unwrap_or(Aggregator::DEFAULT_SOURCE_LABEL)
        .to_owned();
    let collection = aggregator
        .collect(&Query::new().with_names([TRANSFER_SERIES]))
        .await;

    // Bytes by (server, key id): the id alone is ambiguous across servers.
    let mut transfer: BTreeMap<(&str, &str), u64> = BTreeMap::new();
    for series in collection
        .series
        .iter()
        .filter(|s| s.name == TRANSFER_SERIES)
    {
        let (Some(server), Some(key_id), Some(bytes)) = (
            series.labels.get(&source_label),
            series.labels.get("access_key_id"),
            series.last_value(),
        ) else {
            continue;
        };
        // Byte counts are integers well below 2^53: the f64 holds them exactly.
        transfer.insert((server.as_str(), key_id.as_str()), bytes as u64);
    }

    let mut report = QuotaReport::default();
    for failure in collection.failures {
        report.unchecked.push(Unchecked {
            server: failure.source,
            endpoint: failure.endpoint,
            error: failure.error,
        });
    }
    for (name, client) in servers {
        if report.unchecked.iter().any(|u| u.server == *name) {
            continue;
        }
        let access_keys = client.access_keys();
        let (keys, settings) = match tokio::try_join!(access_keys.list(), client.server()) {
            Ok(answers) => answers,
            Err(error) => {
                report.unchecked.push(Unchecked {
                    server: (*name).to_owned(),
                    endpoint: MetricsSource::endpoint(client),
                    error,
                });
                continue;
            }
        };
        let default_limit = settings.access_key_data_limit.map(|limit| limit.bytes);
        let mut alerts: Vec<QuotaAlert> = keys
            .into_iter()
            .filter_map(|key| {
                let (limit, server_default_limit) = match (key.data_limit, default_limit) {
                    (Some(own), _) => (own.bytes, false),
                    (None, Some(default)) => (default, true),
                    (None, None) => return None,
                };
                let bytes = transfer
                    .get(&(*name, key.id.as_str()))
                    .copied()
                    .unwrap_or(0);
                (limit > 0 && bytes as f64 >= threshold * limit as f64).then(|| QuotaAlert {
                    server: (*name).to_owned(),
                    endpoint: client.endpoint().to_owned(),
                    key_id: key.id,
                    key_name: key.name,
                    bytes,
                    limit,
                    server_default_limit,
                })
            })
            .collect();
        alerts.sort_by(|a, b| b.used().total_cmp(&a.used()));
        report.alerts.extend(alerts);
    }
    report
}

/// An emulated server with named keys, their own limits (`None`: none), a default limit and
/// 30 days of traffic per key.
async fn emulated_server(
    keys: &[(&str, Option<u64>, u64)],
    default_limit: Option<u64>,
) -> Result<(OutlineEmulator, OutlineClient), Box<dyn std::error::Error>> {
    let emulator = OutlineEmulator::start().await?;
    let client = OutlineClient::builder()
        .with_install_output(emulator.access_json())
        .build()?;
    if let Some(bytes) = default_limit {
        client.set_default_data_limit(bytes).await?;
    }
    for (name, limit, bytes) in keys {
        // Traffic is the server's own state: no API sets it, so it is seeded directly.
        let id = emulator.add_access_key(name);
        emulator.set_transfer(&id, *bytes);
        if let Some(limit) = limit {
            client.access_keys().set_data_limit(&id, *limit).await?;
        }
    }
    Ok((emulator, client))
}

const GB: u64 = 1_000_000_000;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let threshold: f64 = match std::env::args().nth(1) {
        Some(arg) => arg.parse()?,
        None => 0.8,
    };
    // Both servers number their keys 0, 1, 2, …
    let (_eu, eu) = emulated_server(
        &[
            ("Alice", Some(GB), 950_000_000),
            ("Bob", None, 9 * GB),
            ("Carol", Some(GB), 100_000_000),
        ],
        Some(10 * GB),
    )
    .await?;
    let (_us, us) = emulated_server(
        &[
            ("Dave", Some(GB), 100_000_000),
            ("Erin", None, 50 * GB),
            ("Frank", Some(GB / 2), 499_000_000),
        ],
        None,
    )
    .await?;

    let report = check_quotas(&[("outline-eu", eu), ("outline-us", us)], threshold).await;
    println!(
        "{} key(s) at or over {:.0} % of their data limit:",
        report.alerts.len(),
        threshold * 100.0
    );
    for alert in &report.alerts {
        println!("  {alert}");
    }
    for server in &report.unchecked {
        println!(
            "  {} ({}) NOT CHECKED: {}",
            server.server,
            server.endpoint.as_deref().unwrap_or("?"),
            server.error
        );
    }
    Ok(())
}
