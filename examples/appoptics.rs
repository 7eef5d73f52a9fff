//! The AppOptics Metrics API client against the AppOptics emulator: tagged submissions, a
//! batching queue that keeps what failed, reads with tag filters and `group_by`, composites,
//! metrics as a stream, annotations, a chart, an alert, and the `MetricsSource` view.
//!
//! Run with `cargo run --example appoptics`.

use std::time::Duration;

use appoptics_client::model::{
    AlertSpec, Chart, Condition, GroupByFunction, NewAnnotation, Stream, StreamTag,
    SummaryFunction, tags,
};
use appoptics_client::{
    AppOpticsClient, CompositeQuery, ListParams, Measurement, MeasurementsQuery, Sanitizer,
};
use futures_util::TryStreamExt as _;
use metrics_emulators::Fault;
use metrics_emulators::appoptics::AppOpticsEmulator;
use metrics_hub::chrono;
use metrics_hub::{Error, MetricsSource, Query};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let emulator = AppOpticsEmulator::start().await?;
    let now = chrono::Utc::now().timestamp();
    emulator.seed_demo_data(now);
    println!("AppOptics emulator at {}", emulator.api_url());

    let client = AppOpticsClient::builder()
        .with_token("0123456789abcdef")
        .with_base_url(emulator.api_url())
        .with_tags(tags([("service", "checkout")]))
        .with_sanitizer(Sanitizer::MetricName)
        .with_source_metrics(["cpu.percent.user", "http.requests"])
        .build()?;

    // One measurement: the connection tags plus its own.
    client
        .submit(
            Measurement::new("temperature", 21.5)
                .with_tag("city", "sf")
                .with_inherit_tags(true),
        )
        .await?;

    // 10 000 measurements through a queue: chunks of 300, 4 in flight. One chunk is made to
    // fail; exactly its measurements stay queued, and the next submit sends only them.
    let queue = client.queue().with_tag("host", "web-1").build()?;
    for i in 0..10_000 {
        queue.add("checkout.latency", f64::from(i % 250)).await?;
    }
    emulator.faults().inject_on(
        "/v1/measurements",
        Fault::Status {
            status: 503,
            retry_after: None,
            body: r#"{"errors":{"system":["maintenance"]}}"#.into(),
        },
        3,
        1,
    );
    match queue.submit().await {
        Err(Error::Incomplete { unsent, source, .. }) => {
            println!("queue: {unsent} measurements kept after: {source}");
        }
        other => println!("queue: unexpected {other:?}"),
    }
    let report = queue.submit().await?;
    println!(
        "queue: resent {} measurements in {} request(s); {} queued",
        report.measurements,
        report.requests,
        queue.len()
    );
    let stats = emulator.measurement_stats();
    println!(
        "server: {} posts, {} measurements, largest post {}",
        stats.posts, stats.measurements, stats.largest_post
    );

    // Every metric, page after page.
    let metrics: Vec<_> = client
        .list_all_metrics(ListParams::new())
        .try_collect()
        .await?;
    println!(
        "metrics: {}",
        metrics
            .iter()
            .map(|m| m.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    );

    // The last half hour of CPU, summed per region at 5 minutes.
    let cpu = client
        .get_measurements(
            "cpu.percent.user",
            &MeasurementsQuery::last(Duration::from_secs(1800))
                .with_resolution(300)
                .with_tag("region", "*")
                .with_group_by(["region"], GroupByFunction::Sum),
        )
        .await?;
    for series in &cpu.series {
        let values: Vec<String> = series
            .measurements
            .iter()
            .filter_map(|p| p.value.map(|v| format!("{v:.1}")))
            .collect();
        println!("cpu {:?}: {}", series.tags, values.join(" "));
    }

    // A composite: the mean request rate across hosts.
    let composite = client
        .get_composite(
            &CompositeQuery::new(
                r#"mean(s("http.requests", "*"))"#,
                chrono::Utc::now() - chrono::Duration::minutes(10),
            )
            .with_resolution(60),
        )
        .await?;
    if let Some(series) = composite.series.first() {
        println!(
            "composite: {} points, last {:?}",
            series.measurements.len(),
            series.measurements.last().and_then(|p| p.value)
        );
    }

    // An annotation, a chart with tagged streams, an alert with a service.
    let event = client
        .post_annotation(
            "Deploys",
            &NewAnnotation::new("deploy v43").with_source("example"),
        )
        .await?;
    println!("annotation {} posted", event.id);
    let space = client
        .find_space("Ops")
        .await?
        .ok_or("the demo space is missing")?;
    let chart = client
        .create_chart(
            space.id,
            &Chart::new("Checkout latency").with_stream(
                Stream::metric("checkout.latency")
                    .with_tag(StreamTag::values("host", ["*"]))
                    .with_color("#52D74C"),
            ),
        )
        .await?;
    let renamed = client
        .rename_chart(space.id, chart.id.unwrap_or_default(), "Checkout p-all")
        .await?;
    println!(
        "chart {:?} renamed to {:?}, stream colour kept: {:?}",
        chart.id, renamed.name, renamed.streams[0].color
    );
    let services = client.list_services(&ListParams::new()).await?.items;
    let mut alert = AlertSpec::new("checkout.latency.high").with_condition(
        Condition::above("checkout.latency", 200.0)
            .with_summary_function(SummaryFunction::Max)
            .with_duration(300),
    );
    if let Some(service) = services.first() {
        alert = alert.with_service(service);
    }
    let alert = client.create_alert(&alert).await?;
    println!(
        "alert {} created with {} service(s); firing now: {:?}",
        alert.id,
        alert.services.len(),
        client
            .alerts_status()
            .await?
            .firing
            .iter()
            .map(|f| f.id)
            .collect::<Vec<_>>()
    );

    // Validation before sending.
    if let Err(err) = client.submit(Measurement::new("cpu", f64::NAN)).await {
        println!("refused locally: {err}");
    }

    // The MetricsSource view: configured metrics as OpenMetrics-style series.
    let series = client
        .collect(&Query::new().last(Duration::from_secs(600)))
        .await?;
    for one in series.iter().take(4) {
        println!(
            "{} = {:?} ({} points)",
            one.id(),
            one.last_value(),
            one.points.len()
        );
    }
    println!("{} series in all", series.len());
    Ok(())
}
