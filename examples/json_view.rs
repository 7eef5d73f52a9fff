//! One JSON view over two Outline servers, a Coopr server and a Vumi Go account, printed to
//! stdout for a dashboard or `jq`.
//!
//! Each client goes into one [`Aggregator`] as a named source. Every series then carries
//! its source's name under the `source` label — which is what tells the two Outline servers'
//! `outline_access_key_bytes_transferred{access_key_id="0"}` apart — and the document lists
//! every source with its series count, and every failure with its endpoint:
//!
//! ```text
//! {
//!   "series": [{"name": "outline_access_key_bytes_transferred",
//!               "labels": {"access_key_id": "0", "source": "outline-eu"}, "kind": "gauge", …}, …],
//!   "sources": [{"source": "outline-eu", "series": 3}, …, {"source": "vumi", "series": 2}],
//!   "failures": []
//! }
//! ```
//!
//! [`Collection`] is `Serialize`: `serde_json::to_string_pretty(&collection)` as here, or
//! [`render::json`](metrics_hub::render::json) for the same document on one line.
//!
//! Run with `cargo run --example json_view` (seeded emulators), e.g. piped into
//! `jq '.series[] | select(.labels.source == "outline-us")'`.

use std::time::Duration;

use metrics_emulators::coopr::{CooprEmulator, NodeLifetime};
use metrics_emulators::outline::OutlineEmulator;
use metrics_emulators::vumi::{VumiEmulator, VumiEmulatorConfig};
use metrics_hub::chrono::Utc;
use metrics_hub::coopr::CooprClient;
use metrics_hub::outline::OutlineClient;
use metrics_hub::vumi::VumiClient;
use metrics_hub::{Aggregator, Collection, Query};

/// Any error of the program.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The Vumi metrics the view reads.
pub const VUMI_METRICS: [&str; 2] = [
    "stores.default.sessions_started.sum",
    "stores.default.active_users.last",
];

/// The four sources, named as they appear in the view.
#[derive(Debug)]
pub struct Sources {
    /// The Outline server named `outline-eu`.
    pub outline_eu: OutlineClient,
    /// The Outline server named `outline-us`.
    pub outline_us: OutlineClient,
    /// The Coopr server named `coopr`.
    pub coopr: CooprClient,
    /// The Vumi Go account named `vumi`.
    pub vumi: VumiClient,
}

/// Collects the last six hours, hourly, from the four sources at once (Outline's transfer
/// is always its last 30 days).
pub async fn collect(sources: Sources) -> Collection {
    Aggregator::default()
        .with_named_source("outline-eu", sources.outline_eu)
        .with_named_source("outline-us", sources.outline_us)
        .with_named_source("coopr", sources.coopr)
        .with_named_source("vumi", sources.vumi)
        .with_timeout(Duration::from_secs(10))
        .collect(
            &Query::new()
                .last(Duration::from_secs(6 * 3_600))
                .with_step(Duration::from_secs(3_600)),
        )
        .await
}

/// The collection as one pretty-printed JSON document.
///
/// # Errors
///
/// Never in practice: a collection is plain data with string keys.
pub async fn json_view(sources: Sources) -> serde_json::Result<String> {
    serde_json::to_string_pretty(&collect(sources).await)
}

/// The emulators behind [`Sources`]; dropping them stops them.
#[derive(Debug)]
pub struct Emulators {
    /// Behind `outline-eu`.
    pub outline_eu: OutlineEmulator,
    /// Behind `outline-us`.
    pub outline_us: OutlineEmulator,
    /// Behind `coopr`.
    pub coopr: CooprEmulator,
    /// Behind `vumi`.
    pub vumi: VumiEmulator,
}

/// An Outline emulator whose keys `0`, `1`, … moved these many bytes, and its client.
async fn outline(transfers: &[u64]) -> Result<(OutlineEmulator, OutlineClient), BoxError> {
    let emulator = OutlineEmulator::start().await?;
    for (id, bytes) in emulator
        .add_access_keys(transfers.len())
        .iter()
        .zip(transfers)
    {
        // Traffic is the server's own state: no API writes it.
        emulator.set_transfer(id, *bytes);
    }
    let client = OutlineClient::builder()
        .with_install_output(emulator.access_json())
        .build()?;
    Ok((emulator, client))
}

/// Four seeded emulators and a client for each: two Outline servers whose keys share ids,
/// a Coopr server with a queue and a node, a Vumi account with two fired values.
///
/// # Errors
///
/// When an emulator cannot start or seeding fails.
pub async fn emulated() -> Result<(Emulators, Sources), BoxError> {
    let (outline_eu, eu) = outline(&[2_150_000_000, 734_003_200, 15_728_640]).await?;
    let (outline_us, us) = outline(&[98_304, 5_000_000]).await?;

    let coopr = CooprEmulator::start().await?;
    let acme = coopr.add_tenant("acme");
    coopr.add_user(&acme, "alice");
    coopr.enqueue_tasks(&acme, 12);
    coopr.take_tasks(&acme, 4);
    let two_hours_ago = Utc::now().timestamp_millis() - 2 * 3_600_000;
    coopr.add_node(NodeLifetime::new(
        &acme,
        "alice",
        "1001",
        "n1",
        two_hours_ago,
    ));
    let coopr_client = CooprClient::builder()
        .with_base_url(coopr.base_url())
        .with_user_id("admin")
        .with_tenant("superadmin")
        .with_api_key("json-view-key")
        .build()?;

    let vumi = VumiEmulator::start_with(
        VumiEmulatorConfig::default()
            .with_bouncer([("json-view-token", "account-1")])
            .with_disable_auto_prefix(true),
    )
    .await?;
    let vumi_client = VumiClient::builder()
        .with_base_url(vumi.api_url())
        .with_token("json-view-token")
        .with_metrics(VUMI_METRICS)
        .build()?;
    vumi_client
        .fire([(VUMI_METRICS[0], 42.0), (VUMI_METRICS[1], 187.0)])
        .await?;

    Ok((
        Emulators {
            outline_eu,
            outline_us,
            coopr,
            vumi,
        },
        Sources {
            outline_eu: eu,
            outline_us: us,
            coopr: coopr_client,
            vumi: vumi_client,
        },
    ))
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let (_emulators, sources) = emulated().await?;
    println!("{}", json_view(sources).await?);
    Ok(())
}
