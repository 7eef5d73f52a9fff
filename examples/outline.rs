//! The Outline client against the Outline emulator over HTTPS with a pinned self-signed
//! certificate: server settings, access keys with data limits, the 30-day transfer, the
//! experimental server metrics, the typed errors (a wrong pin sends nothing), and the
//! `MetricsSource` view.
//!
//! Run with `cargo run --example outline` from the workspace root.

use std::sync::Arc;
use std::time::Duration;

use metrics_emulators::outline::OutlineEmulator;
use metrics_hub::core::render;
use metrics_hub::{Aggregator, MetricsSource, Query};
use outline_client::{Cipher, NewAccessKey, OutlineClient, Since};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let emulator = OutlineEmulator::start().await?;
    // A server that has been running for a while: keys with 30 days of traffic, one of
    // them with a non-numeric id (the experimental metrics report it as `accessKeyId: null`).
    let ids = emulator.add_access_keys(4);
    emulator.add_access_key_with_id("alpha-key", "non-numeric id");
    for (id, bytes) in ids.iter().zip([76_609_u64, 153_218_000, 0, 5_958_113_497]) {
        emulator.set_transfer(id, bytes);
    }
    emulator.set_transfer("alpha-key", 365_474);

    // What the installer prints is all the client needs; the apiUrl is a credential.
    let client = OutlineClient::builder()
        .with_install_output(emulator.access_json())
        .build()?;
    println!("client: {client} (pinned: {})", client.is_pinned());

    let server = client.server().await?;
    println!(
        "server {:?} version {:?}, keys on port {:?}, created {:?}",
        server.name,
        server.version.as_deref().unwrap_or("?"),
        server.port_for_new_access_keys,
        server.created_at()
    );
    client.rename_server("Example VPN").await?;
    client.set_default_data_limit(50_000_000_000).await?;

    let keys = client.access_keys();
    let alice = keys
        .create(
            &NewAccessKey::new()
                .with_name("Alice")
                .with_method(Cipher::Aes256Gcm)
                .with_data_limit(10_000_000_000),
        )
        .await?;
    println!("created {alice:?}"); // password and access URL are not shown
    keys.create_with_id("team/ops", &NewAccessKey::new().with_name("Ops"))
        .await?;
    keys.rename(&ids[0], "Bob").await?;
    keys.set_data_limit(&ids[1], 0).await?; // 0 cuts the key off
    for key in keys.list().await? {
        let limit = key
            .data_limit
            .map_or_else(|| "server default".to_owned(), |l| format!("{} B", l.bytes));
        println!(
            "  key {:>9} {:<15} limit {limit}",
            key.id,
            format!("{:?}", key.name)
        );
    }

    let transfer = client.metrics().transfer().await?;
    println!(
        "transfer over the last 30 days: {} keys with traffic, {} bytes in all",
        transfer.len(),
        transfer.total()
    );
    for (id, bytes) in &transfer {
        println!("  {id:>9}: {bytes}");
    }
    println!(
        "metrics sharing with Jigsaw enabled: {}",
        client.metrics().enabled().await?
    );

    let window = client.metrics().server_metrics(Since::days(30)?).await?;
    println!(
        "last 30 days: {:.0} bytes, {:.1} s tunnel time, peak {:.1} B/s",
        window.server.data_transferred.bytes,
        window.server.tunnel_time.seconds,
        window.server.bandwidth.peak.data.bytes
    );
    for key in &window.access_keys {
        println!(
            "  accessKeyId {:>4}: {:.2} bytes, peak {} devices",
            key.access_key_id
                .map_or_else(|| "null".to_owned(), |id| id.to_string()),
            key.data_transferred.bytes,
            key.connection.peak_device_count.data
        );
    }

    // Errors are typed, and never show the secret.
    let requests = emulator.requests().count();
    let wrong_pin = OutlineClient::builder()
        .with_api_url(emulator.api_url())
        .with_cert_sha256("00".repeat(32))
        .build()?;
    let err = wrong_pin.server().await.unwrap_err();
    println!("wrong pin: {err}");
    println!(
        "  requests the server received meanwhile: {}",
        emulator.requests().count() - requests
    );
    println!("unknown key: {}", keys.get("999").await.unwrap_err());
    println!("`since` out of range: {}", Since::days(39).unwrap_err());
    emulator.set_server_metrics_available(false);
    println!(
        "server before 1.11.1: {}",
        client
            .metrics()
            .server_metrics(Since::default())
            .await
            .unwrap_err()
    );
    emulator.set_server_metrics_available(true);

    // As a metrics source: the transfer by default, server series on request.
    let source: Arc<dyn MetricsSource> = Arc::new(client);
    let aggregator = Aggregator::new(vec![source]).with_timeout(Duration::from_secs(10));
    let query = Query::new().with_names([
        "outline_access_key_bytes_transferred",
        "outline_server_data_transferred_bytes",
        "outline_server_access_key_peak_device_count",
    ]);
    let collection = aggregator.collect(&query).await;
    println!("{}", render::table(&collection));
    Ok(())
}
