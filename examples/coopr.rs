//! The Coopr client against the Coopr emulator: queue metrics as superadmin and as a tenant
//! admin, node usage with the server's defaults and grouped by hour, the typed errors of the
//! server's permission rules, and the `MetricsSource` view.
//!
//! Run with `cargo run --example coopr` from the workspace root.

use std::sync::Arc;
use std::time::Duration;

use coopr_client::{CooprClient, CooprErrorKind, GroupBy, NodeUsageQuery, TimeUnit};
use metrics_emulators::coopr::{CooprEmulator, NodeLifetime};
use metrics_hub::chrono::{DateTime, Utc};
use metrics_hub::core::render;
use metrics_hub::{Aggregator, MetricsSource, Query};

fn client(emulator: &CooprEmulator, user: &str, tenant: &str) -> metrics_hub::Result<CooprClient> {
    CooprClient::builder()
        .with_base_url(emulator.base_url()) // `/v2` is appended
        .with_user_id(user)
        .with_tenant(tenant)
        .with_api_key("example-key")
        .build()
}

/// Two tenants with provisioner queues and nodes that came and went over the last day.
fn seed(emulator: &CooprEmulator, now_ms: i64) -> (String, String) {
    let acme = emulator.add_tenant("acme");
    let globex = emulator.add_tenant("globex");
    for (tenant, user) in [
        (&acme, "alice"),
        (&acme, "admin"),
        (&globex, "george"),
        (&globex, "admin"),
    ] {
        emulator.add_user(tenant, user);
    }
    emulator.enqueue_tasks(&acme, 34);
    emulator.take_tasks(&acme, 8);
    emulator.enqueue_tasks(&globex, 1);
    emulator.take_tasks(&globex, 1);

    let ago = |minutes: i64| now_ms - minutes * 60_000;
    // acme: a three-node hadoop cluster for 20 hours, then a single node still running.
    for node in ["n1", "n2", "n3"] {
        emulator.add_node(
            NodeLifetime::new(&acme, "alice", "1001", node, ago(23 * 60 + 30))
                .deleted_at(ago(3 * 60 + 30))
                .with_cluster_template("hadoop-distributed"),
        );
    }
    emulator.add_node(
        NodeLifetime::new(&acme, "alice", "1002", "n1", ago(5 * 60 + 15))
            .with_cluster_template("lamp"),
    );
    // globex: one node for two hours this morning.
    emulator.add_node(
        NodeLifetime::new(&globex, "george", "2001", "n1", ago(9 * 60))
            .deleted_at(ago(7 * 60))
            .with_cluster_template("lamp"),
    );
    (acme, globex)
}

fn time(seconds: i64) -> String {
    DateTime::from_timestamp(seconds, 0).map_or_else(
        || seconds.to_string(),
        |t| t.format("%Y-%m-%d %H:%M").to_string(),
    )
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let emulator = CooprEmulator::start().await?;
    let now_ms = Utc::now().timestamp_millis();
    let (acme, _globex) = seed(&emulator, now_ms);
    println!("Coopr emulator at {}\n", emulator.api_url());

    let superadmin = client(&emulator, "admin", "superadmin")?;
    println!("queue metrics as admin@superadmin:");
    for (tenant, queue) in superadmin.queue_metrics().await? {
        println!(
            "  {tenant:<12} queued {:>3}  in progress {:>3}  total {:>3}",
            queue.queued, queue.in_progress, queue.total
        );
    }
    let acme_admin = client(&emulator, "admin", "acme")?;
    println!(
        "queue metrics as admin@acme: {:?}\n",
        acme_admin.queue_metrics().await?
    );

    let usage = superadmin.node_usage(&NodeUsageQuery::new()).await?;
    println!(
        "node usage, server defaults: {} → {} = {} node-seconds\n  (the default end is the last node deletion, not now, although acme still runs a node)",
        time(usage.start),
        time(usage.end),
        usage.total()
    );

    let day_start = now_ms / 1_000 - 24 * 3_600;
    let aligned = day_start - day_start % 3_600;
    let hourly = superadmin
        .node_usage(
            &NodeUsageQuery::new()
                .with_range(aligned, now_ms / 1_000)
                .with_group_by(GroupBy::Hour)
                .with_time_unit(TimeUnit::Minutes),
        )
        .await?;
    println!("node-minutes per hour over the last day, all tenants:");
    for bucket in hourly.data.iter().filter(|b| b.value > 0) {
        println!(
            "  {}  {:>4} {}",
            time(bucket.time),
            bucket.value,
            "#".repeat(usize::try_from(bucket.value / 20).unwrap_or(0))
        );
    }

    let hadoop = superadmin
        .node_usage(
            &NodeUsageQuery::new()
                .with_tenant(acme.clone())
                .with_cluster_template("hadoop-distributed")
                .with_time_unit(TimeUnit::Hours),
        )
        .await?;
    println!("acme's hadoop cluster: {} node-hours\n", hadoop.total());

    // The server's permission rules, as typed errors.
    let alice = client(&emulator, "alice", "acme")?;
    let own = alice
        .node_usage(&NodeUsageQuery::new().with_user("alice"))
        .await?;
    println!("alice@acme, own usage: {} node-seconds", own.total());
    match alice
        .node_usage(&NodeUsageQuery::new().with_tenant("acme"))
        .await
    {
        Err(err) => println!(
            "alice@acme naming her tenant by name: {:?} ({err})",
            CooprErrorKind::of(&err)
        ),
        Ok(usage) => println!("unexpected: {usage:?}"),
    }
    if let Err(err) = alice.queue_metrics().await {
        println!(
            "alice@acme reading queues: {:?} ({err})",
            CooprErrorKind::of(&err)
        );
    }
    if let Err(err) = client(&emulator, "admin", "initech")?.queue_metrics().await {
        println!("admin@initech: {:?} ({err})", CooprErrorKind::of(&err));
    }
    if let Err(err) = alice
        .node_usage(&NodeUsageQuery::new().with_range(20, 10))
        .await
    {
        println!("start after end, caught before sending: {err}\n");
    }

    // The MetricsSource view, through an aggregator as an application holding several
    // backends would: queue gauges and hourly usage of the last six hours.
    let query = Query::new()
        .last(Duration::from_secs(6 * 3_600))
        .with_step(Duration::from_secs(3_600));
    let sources: Vec<Arc<dyn MetricsSource>> = vec![Arc::new(superadmin)];
    let collection = Aggregator::new(sources).collect(&query).await;
    println!("{}", render::table(&collection));
    Ok(())
}
