//! The Vumi Go metrics API client against the Vumi emulator: summarized queries, fired
//! metrics, validation before sending, and the `MetricsSource` view.
//!
//! Run with `cargo run --example vumi`.

use std::time::Duration;

use metrics_emulators::vumi::{VumiEmulator, VumiEmulatorConfig};
use metrics_hub::{MetricsSource, Query};
use vumi_client::time::{TimeSpec, TimeUnit};
use vumi_client::{Aggregator, MetricName, MetricsQuery, Nulls, VumiClient};

const TOKEN: &str = "example-token";
const OWNER: &str = "account-1";

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // A server behind an auth bouncer (as hosted Vumi Go), with auto-prefixing off so
    // that fired values can be read back.
    let emulator = VumiEmulator::start_with(
        VumiEmulatorConfig::default()
            .with_bouncer([(TOKEN, OWNER)])
            .with_disable_auto_prefix(true),
    )
    .await?;
    let names = emulator.seed_example_data(OWNER);
    println!(
        "Vumi emulator at {} with {} seeded metrics",
        emulator.api_url(),
        names.len()
    );

    let client = VumiClient::builder()
        .with_base_url(emulator.api_url())
        .with_token(TOKEN)
        .with_metrics(names.clone())
        .build()?;
    client.health().await?;

    // The last day in six-hour buckets, empty buckets kept as None.
    let completed = MetricName::account("default", "questions_completed", Aggregator::Sum)?;
    let active = MetricName::account("default", "active_users", Aggregator::Last)?;
    let data = client
        .query(
            &MetricsQuery::new()
                .with_metric(&completed)
                .with_metric(&active)
                .with_from(TimeSpec::ago(1, TimeUnit::Days))
                .with_until(TimeSpec::now())
                .with_interval("6h")
                .with_nulls(Nulls::Keep),
        )
        .await?;
    for series in &data {
        println!("\n{} ({} buckets)", series.name, series.points.len());
        for point in &series.points {
            match point.value {
                Some(value) => println!("  {}  {value:>8.1}", point.time.format("%Y-%m-%d %H:%M")),
                None => println!("  {}  {:>8}", point.time.format("%Y-%m-%d %H:%M"), "-"),
            }
        }
    }

    // Fire two values; the confirmations come back in the order given.
    let fired = client.fire([(&completed, 3.0), (&active, 212.0)]).await?;
    println!();
    for one in &fired {
        println!("fired {} = {} ({})", one.name, one.value, one.aggregator);
    }
    let latest = client
        .query(
            &MetricsQuery::new()
                .with_metric(&active)
                .with_from("-10min")
                .with_interval("1min")
                .with_nulls(Nulls::Omit),
        )
        .await?;
    if let Some(point) = latest.get(&active).and_then(|s| s.points.last()) {
        println!("read back {active} = {:?}", point.value);
    }

    // What the server would answer with HTTP 500 or 400 fails here, before sending.
    for query in [
        MetricsQuery::new()
            .with_metric(&completed)
            .with_from("-1fortnight"),
        MetricsQuery::new()
            .with_metric(&completed)
            .with_interval("0s"),
        MetricsQuery::new()
            .with_metric(&completed)
            .with_from("-30d")
            .with_interval("1min"),
        MetricsQuery::new().with_metric("stores.default.questions_completed"),
    ] {
        if let Err(error) = client.query(&query).await {
            println!("refused: {error}");
        }
    }

    // The same data as backend-neutral series.
    let series = client
        .collect(
            &Query::new()
                .last(Duration::from_secs(12 * 3600))
                .with_step(Duration::from_secs(3600)),
        )
        .await?;
    println!();
    for one in &series {
        println!(
            "{:<70} {:>3} points, last {:?}",
            one.id(),
            one.points.len(),
            one.last_value()
        );
    }
    println!(
        "\n{} requests reached the emulator",
        emulator.requests().count()
    );
    Ok(())
}
