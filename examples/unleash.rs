//! The Unleash client against the Unleash emulator: registration, a metrics recorder fed by
//! several tasks, reading the counts back, what happens on a rate limit and with a wrong
//! token, a legacy endpoint that 8.x removed, and the `MetricsSource` view.
//!
//! Run with `cargo run --example unleash` from the workspace root. Against a real server,
//! `scripts/unleash-server.sh start` and the variables in target/unleash-server/unleash.env
//! work with `UnleashClientBuilder::from_env()` the same way.

use std::time::Duration;

use metrics_emulators::unleash::{RateLimitedEndpoint, UnleashEmulator};
use metrics_hub::core::render;
use metrics_hub::{MetricsSource, Query};
use unleash_client::{ApplicationsQuery, RecorderConfig, UnleashClient};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let unleash = UnleashEmulator::start().await?;
    unleash.seed_demo();
    println!("Unleash emulator at {}", unleash.base_url());

    let client = UnleashClient::builder()
        .with_url(unleash.base_url())
        .with_api_token(UnleashEmulator::CLIENT_TOKEN)
        .with_admin_token(UnleashEmulator::ADMIN_TOKEN)
        .with_app_name("example-shop")
        .with_instance_id("example-shop-1")
        .with_strategies(["default", "flexibleRollout"])
        .with_interval(Duration::from_millis(250))
        .build()?;
    println!("client: {client:?}");
    println!("server version: {}", client.detect_server_version().await?);

    // Count evaluations from several tasks; the recorder registers and flushes in the background.
    let recorder = client.start_recorder(RecorderConfig::new())?;
    let mut tasks = Vec::new();
    for worker in 0..4u32 {
        let recorder = recorder.clone();
        tasks.push(tokio::spawn(async move {
            for request in 0..250u32 {
                recorder.count("new-checkout", (request + worker) % 4 == 0);
                let variant = if request % 2 == 0 { "blue" } else { "green" };
                recorder.count_variant("button-color", true, variant);
            }
        }));
    }
    for task in tasks {
        task.await?;
    }
    let sent = recorder.shutdown().await.into_result()?;
    let status = recorder.status();
    println!(
        "recorder: {} evaluations sent in {} bucket(s) ({sent} at shutdown), {} pending, {} dropped",
        status.evaluations_sent,
        status.buckets_sent,
        status.evaluations_pending,
        status.evaluations_dropped
    );

    // Read them back with the admin token.
    let raw = client.feature_metrics_raw("new-checkout", 1).await?;
    let mine = raw.total(Some("example-shop"), None);
    println!(
        "new-checkout for example-shop this hour: yes={} no={}",
        mine.yes, mine.no
    );
    let last_hour = client.feature_metrics("button-color").await?;
    println!(
        "button-color last hour: {:?}, seen by {:?}",
        last_hour.last_hour_total(),
        last_hour.seen_applications
    );
    let page = client
        .applications(&ApplicationsQuery::new().with_limit(10))
        .await?;
    println!("{} applications:", page.total.unwrap_or_default());
    for app in &page.applications {
        println!("  {} (strategies {:?})", app.app_name, app.strategies);
    }
    let details = client.application("example-shop").await?;
    println!(
        "example-shop: {} instance(s), sdk {:?}, seen flags {:?}",
        details.instances.len(),
        details
            .instances
            .first()
            .and_then(|i| i.sdk_version.clone()),
        details
            .seen_toggles
            .iter()
            .map(|t| t.name.as_str())
            .collect::<Vec<_>>()
    );
    for flag in client.unknown_flags().await?.unknown_flags {
        println!("unknown flag reported: {}", flag.name);
    }

    // The seed's legacy view is gone in 8.x: a typed error that names the replacement.
    if let Err(error) = client.seen_toggles().await {
        println!("seen-toggles: {error}");
    }

    // An admin token on the client API is the wrong token type.
    let wrong = UnleashClient::builder()
        .with_url(unleash.base_url())
        .with_api_token(UnleashEmulator::ADMIN_TOKEN)
        .with_app_name("example-shop")
        .build()?;
    if let Err(error) = wrong.register().await {
        println!("admin token on /api/client/register: {error}");
    }

    // A rate limit: the bucket is kept, merged, and sent once the window is over.
    unleash.set_rate_limit(RateLimitedEndpoint::Metrics, 1, Duration::from_secs(1));
    let recorder = client.start_recorder(RecorderConfig::new().with_register(false))?;
    recorder.count("new-checkout", true);
    recorder.flush().await?;
    recorder.count("new-checkout", false);
    if let Err(error) = recorder.flush().await {
        println!("second flush: {error}");
    }
    // The background flush waits out Retry-After, then sends the kept bucket.
    for _ in 0..50 {
        if recorder.status().evaluations_pending == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let status = recorder.status();
    println!(
        "after the window: {} evaluations sent, {} pending, failures now {}",
        status.evaluations_sent, status.evaluations_pending, status.failures
    );
    recorder.shutdown().await.into_result()?;
    unleash.clear_rate_limits();

    // The MetricsSource view: hourly yes/no per flag, application and environment.
    let series = client
        .collect(
            &Query::new()
                .last(Duration::from_secs(2 * 3600))
                .with_names(["unleash_feature_evaluations"]),
        )
        .await?;
    println!("\n{} series; in OpenMetrics text:\n", series.len());
    print!("{}", render::openmetrics(&series));
    Ok(())
}
