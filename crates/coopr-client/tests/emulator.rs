//! The client against the Coopr emulator: the server's test vectors (AdminHandlerTest Q1–Q5,
//! MetricHandlerTest V1) and the reference's worked examples U1–U10, the error answers as
//! typed errors, validation before sending, and the `MetricsSource` series.

use std::time::Duration;

use chrono::DateTime;
use coopr_client::{
    CooprClient, CooprErrorKind, GroupBy, NodeUsage, NodeUsageQuery, QueueMetrics, TimeUnit,
    UsageInterval,
};
use metrics_core::{Error, MetricsSource, MetricsSourceExt, Query, RetryConfig, SeriesKind, Unit};
use metrics_emulators::coopr::{CooprEmulator, NodeLifetime, StoreFailure};

const SECOND: i64 = 1_000;
const HOUR: i64 = 3_600_000;

fn client(emulator: &CooprEmulator, user: &str, tenant: &str) -> CooprClient {
    CooprClient::builder()
        .with_base_url(emulator.api_url())
        .with_user_id(user)
        .with_tenant(tenant)
        .with_api_key("apikey")
        .with_retry(RetryConfig::none())
        .build()
        .unwrap()
}

async fn queues_emulator() -> CooprEmulator {
    let emulator = CooprEmulator::start().await.unwrap();
    emulator.seed_admin_handler_test_queues();
    emulator
}

async fn tasks_emulator(unit_ms: i64) -> CooprEmulator {
    let emulator = CooprEmulator::start().await.unwrap();
    emulator.seed_metric_handler_test_tasks(unit_ms);
    emulator.set_now_ms(Some(1_000 * HOUR));
    emulator
}

/// A compact form of a usage answer for comparisons.
fn shape(usage: &NodeUsage) -> (i64, i64, Vec<(i64, i64)>) {
    (
        usage.start,
        usage.end,
        usage.data.iter().map(|i| (i.time, i.value)).collect(),
    )
}

// Queue metrics (AdminHandlerTest).

#[tokio::test]
async fn q1_non_admin_gets_a_typed_403() {
    let emulator = queues_emulator().await;
    let err = client(&emulator, "user1", "tenant1")
        .queue_metrics()
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::Forbidden { ref message, .. } if message == "Forbidden to get queue metrics.")
    );
    assert_eq!(
        CooprErrorKind::of(&err),
        Some(CooprErrorKind::QueueMetricsForbidden)
    );
}

#[tokio::test]
async fn q2_superadmin_gets_every_tenant() {
    let emulator = queues_emulator().await;
    let queues = client(&emulator, "admin", "superadmin")
        .queue_metrics()
        .await
        .unwrap();
    let expected = [
        ("superadmin", 0, 0),
        ("tenant1", 0, 0),
        ("tenantA", 2, 1),
        ("tenantB", 1, 0),
        ("tenantC", 0, 1),
        ("tenantD", 1, 1),
    ];
    let got: Vec<(&str, QueueMetrics)> = queues.iter().map(|(k, v)| (k.as_str(), *v)).collect();
    let expected: Vec<(&str, QueueMetrics)> = expected
        .into_iter()
        .map(|(t, q, p)| (t, QueueMetrics::new(q, p)))
        .collect();
    assert_eq!(got, expected);
}

#[tokio::test]
async fn q3_to_q5_tenant_admins_get_their_tenant() {
    let emulator = queues_emulator().await;
    for (tenant, queued, in_progress) in [("tenantA", 2, 1), ("tenantB", 1, 0), ("tenantD", 1, 1)] {
        let queues = client(&emulator, "admin", tenant)
            .queue_metrics()
            .await
            .unwrap();
        assert_eq!(queues.len(), 1);
        assert_eq!(queues[tenant], QueueMetrics::new(queued, in_progress));
    }
}

// Node usage (MetricHandlerTest V1 and worked examples).

#[tokio::test]
async fn v1_other_tenant_is_a_typed_405() {
    let emulator = tasks_emulator(SECOND).await;
    let err = client(&emulator, "user1", "tenant1")
        .node_usage(
            &NodeUsageQuery::new()
                .with_range(5, 22)
                .with_tenant("tenant2"),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Api { status: 405, .. }), "{err}");
    assert_eq!(
        CooprErrorKind::of(&err),
        Some(CooprErrorKind::TenantNotAllowed)
    );
    assert!(
        err.to_string()
            .contains("Getting information about tenant tenant2 not allowed for tenant tenant1")
    );
}

#[tokio::test]
async fn u1_to_u3_and_u7_to_u10_in_seconds() {
    let emulator = tasks_emulator(SECOND).await;
    let user1 = client(&emulator, "user1", "tenant1");
    let cases = [
        (NodeUsageQuery::new(), (2, 20, vec![(2, 32)])),
        (
            NodeUsageQuery::new().with_range(10, 18),
            (10, 18, vec![(10, 17)]),
        ),
        (
            NodeUsageQuery::new().with_start(10),
            (10, 20, vec![(10, 23)]),
        ),
        (NodeUsageQuery::new().with_end(15), (2, 15, vec![(2, 19)])),
        (
            NodeUsageQuery::new()
                .with_range(0, 30)
                .with_time_unit(TimeUnit::Milliseconds),
            (0, 30, vec![(0, 57_000)]),
        ),
        (
            NodeUsageQuery::new()
                .with_range(0, 30)
                .with_time_unit(TimeUnit::Minutes),
            (0, 30, vec![(0, 0)]),
        ),
        (
            NodeUsageQuery::new()
                .with_user("nobody")
                .with_range(100, 200),
            (100, 200, vec![(100, 0)]),
        ),
    ];
    for (query, expected) in cases {
        let usage = user1.node_usage(&query).await.unwrap();
        assert_eq!(shape(&usage), expected, "{query:?}");
    }
    // U9: the superadmin also sees tenant2's node.
    let usage = client(&emulator, "admin", "superadmin")
        .node_usage(&NodeUsageQuery::new().with_range(10, 18))
        .await
        .unwrap();
    assert_eq!(shape(&usage), (10, 18, vec![(10, 24)]));
}

#[tokio::test]
async fn u4_to_u6_grouped_in_hours() {
    let emulator = tasks_emulator(HOUR).await;
    let user1 = client(&emulator, "user1", "tenant1");
    let u4 = user1
        .node_usage(
            &NodeUsageQuery::new()
                .with_range(19_800, 36_000)
                .with_group_by(GroupBy::Hour)
                .with_time_unit(TimeUnit::Minutes),
        )
        .await
        .unwrap();
    assert_eq!(
        shape(&u4),
        (
            19_800,
            36_000,
            vec![
                (19_800, 60),
                (21_600, 60),
                (25_200, 60),
                (28_800, 60),
                (32_400, 120)
            ]
        )
    );
    let u5 = user1
        .node_usage(
            &NodeUsageQuery::new()
                .with_range(64_800, 93_600)
                .with_group_by(GroupBy::Hour),
        )
        .await
        .unwrap();
    let values: Vec<i64> = u5.data.iter().map(|i| i.value).collect();
    assert_eq!(
        values,
        [10_800, 10_800, 7_200, 7_200, 7_200, 7_200, 7_200, 10_800]
    );
    assert_eq!(u5.data[7].time, 90_000);
    assert_eq!(u5.total(), 68_400);
    // chrono times work as bounds.
    let u6 = user1
        .node_usage(
            &NodeUsageQuery::new()
                .with_range(
                    DateTime::from_timestamp(0, 0).unwrap(),
                    DateTime::from_timestamp(172_800, 0).unwrap(),
                )
                .with_group_by(GroupBy::Day)
                .with_time_unit(TimeUnit::Hours),
        )
        .await
        .unwrap();
    assert_eq!(shape(&u6), (0, 172_800, vec![(0, 40), (86_400, 71)]));
    assert_eq!(u6.data[1].start_time(), DateTime::from_timestamp(86_400, 0));
}

#[tokio::test]
async fn filters_reach_the_server() {
    let emulator = tasks_emulator(SECOND).await;
    emulator.add_node(
        NodeLifetime::new("tenant1", "user1", "9", "n", 28 * SECOND)
            .deleted_at(29 * SECOND)
            .with_cluster_template("hadoop"),
    );
    let user1 = client(&emulator, "user1", "tenant1");
    let by_template = user1
        .node_usage(
            &NodeUsageQuery::new()
                .with_range(0, 30)
                .with_cluster_template("hadoop"),
        )
        .await
        .unwrap();
    assert_eq!(shape(&by_template), (0, 30, vec![(0, 1)]));
    let by_cluster = user1
        .node_usage(&NodeUsageQuery::new().with_range(0, 30).with_cluster("2"))
        .await
        .unwrap();
    assert_eq!(shape(&by_cluster), (0, 30, vec![(0, 5)]));
    let last = emulator.requests().requests().pop().unwrap();
    assert_eq!(last.uri, "/v2/metrics/nodes/usage?start=0&end=30&cluster=2");
}

// Errors as typed errors.

#[tokio::test]
async fn authentication_errors_are_typed() {
    let emulator = queues_emulator().await;
    let err = client(&emulator, "admin", "nosuchtenant")
        .queue_metrics()
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NotFound { .. }), "{err}");
    assert_eq!(
        CooprErrorKind::of(&err),
        Some(CooprErrorKind::UnknownTenant)
    );

    emulator.set_store_failure(StoreFailure::TenantLookup, true);
    let err = client(&emulator, "admin", "tenantA")
        .node_usage(&NodeUsageQuery::new())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Api { status: 500, .. }), "{err}");
    assert_eq!(
        CooprErrorKind::of(&err),
        Some(CooprErrorKind::TenantStoreFailed)
    );
    assert!(err.is_retryable());
}

#[tokio::test]
async fn server_failures_are_typed_500s() {
    let emulator = tasks_emulator(SECOND).await;
    emulator.set_store_failure(StoreFailure::Database, true);
    let err = client(&emulator, "user1", "tenant1")
        .node_usage(&NodeUsageQuery::new())
        .await
        .unwrap_err();
    assert_eq!(
        CooprErrorKind::of(&err),
        Some(CooprErrorKind::DatabaseFailed)
    );
    emulator.set_store_failure(StoreFailure::Database, false);

    emulator.set_store_failure(StoreFailure::QueueMetrics, true);
    let err = client(&emulator, "admin", "superadmin")
        .queue_metrics()
        .await
        .unwrap_err();
    assert_eq!(
        CooprErrorKind::of(&err),
        Some(CooprErrorKind::QueueMetricsFailed)
    );
    assert_eq!(err.status(), Some(500));
}

#[tokio::test]
async fn a_retried_500_recovers() {
    let emulator = tasks_emulator(SECOND).await;
    emulator.faults().inject(
        metrics_emulators::Fault::Status {
            status: 500,
            retry_after: None,
            body: "Unable to read data from the database".to_owned(),
        },
        1,
    );
    let client = CooprClient::builder()
        .with_base_url(emulator.api_url())
        .with_user_id("user1")
        .with_tenant("tenant1")
        .with_retry(RetryConfig::default().with_max_retries(2))
        .build()
        .unwrap();
    let usage = client
        .node_usage(&NodeUsageQuery::new().with_range(10, 18))
        .await
        .unwrap();
    assert_eq!(usage.total(), 17);
    assert_eq!(emulator.requests().count(), 2);
}

#[tokio::test]
async fn unknown_path_is_unsupported() {
    let emulator = queues_emulator().await;
    // A base URL that is not the API root: the server has no such path.
    let client = CooprClient::builder()
        .with_base_url(format!("{}/coopr", emulator.base_url()))
        .with_user_id("admin")
        .with_tenant("superadmin")
        .with_retry(RetryConfig::none())
        .build()
        .unwrap();
    assert!(client.base_url().ends_with("/coopr/v2"));
    let err = client.queue_metrics().await.unwrap_err();
    assert!(
        matches!(
            err,
            Error::Unsupported {
                status: Some(404),
                ..
            }
        ),
        "{err}"
    );
    assert!(
        err.to_string()
            .contains("Problem accessing: /coopr/v2/metrics/queues")
    );
}

#[tokio::test]
async fn validation_happens_before_sending() {
    let emulator = tasks_emulator(SECOND).await;
    let user1 = client(&emulator, "user1", "tenant1");
    for query in [
        NodeUsageQuery::new().with_range(18, 10),
        NodeUsageQuery::new().with_start(-5).with_end(10),
        NodeUsageQuery::new().with_end(0),
        NodeUsageQuery::new().with_user(""),
    ] {
        let err = user1.node_usage(&query).await.unwrap_err();
        assert!(
            matches!(err, Error::InvalidInput { .. }),
            "{query:?}: {err}"
        );
    }
    assert!("Fortnight".parse::<GroupBy>().is_err());
    assert!("weeks".parse::<TimeUnit>().is_err());
    assert_eq!(emulator.requests().count(), 0);
}

#[tokio::test]
async fn api_key_is_sent_only_when_configured() {
    let emulator = queues_emulator().await;
    let without_key = CooprClient::builder()
        .with_base_url(emulator.api_url())
        .with_user_id("admin")
        .with_tenant("tenantA")
        .build()
        .unwrap();
    without_key.queue_metrics().await.unwrap();
    client(&emulator, "admin", "tenantA")
        .queue_metrics()
        .await
        .unwrap();
    let requests = emulator.requests().requests();
    assert_eq!(requests[0].header("coopr-apikey"), None);
    assert_eq!(requests[0].header("coopr-userid"), Some("admin"));
    assert_eq!(requests[0].header("coopr-tenantid"), Some("tenantA"));
    assert_eq!(requests[1].header("coopr-apikey"), Some("apikey"));
}

// MetricsSource.

#[tokio::test]
async fn source_collects_queue_gauges_and_usage() {
    let emulator = tasks_emulator(SECOND).await;
    emulator.seed_admin_handler_test_queues();
    let superadmin = client(&emulator, "admin", "superadmin");
    assert_eq!(superadmin.backend(), "coopr");
    let series = superadmin
        .collect(&Query::new().with_range(
            DateTime::from_timestamp(10, 0).unwrap(),
            DateTime::from_timestamp(18, 0).unwrap(),
        ))
        .await
        .unwrap();
    let queue = series
        .iter()
        .find(|s| s.id() == r#"coopr_queue_tasks{state="in_progress",tenant="tenantA"}"#)
        .unwrap();
    assert_eq!(queue.kind, SeriesKind::Gauge);
    assert_eq!(queue.last_value(), Some(1.0));
    // 7 tenants (superadmin, tenant1, tenant2, tenantA–D) × 3 states.
    let queue_count = series
        .iter()
        .filter(|s| s.name == "coopr_queue_tasks")
        .count();
    assert_eq!(queue_count, 7 * 3);
    let usage = series
        .iter()
        .find(|s| s.name == "coopr_node_usage_seconds")
        .unwrap();
    assert!(
        usage.labels.is_empty(),
        "the superadmin's usage covers every tenant"
    );
    assert_eq!(usage.unit, Some(Unit::Seconds));
    assert_eq!(usage.points.len(), 1);
    assert_eq!(usage.points[0].value, 24.0);
    let last = emulator.requests().requests().pop().unwrap();
    assert_eq!(
        last.uri,
        "/v2/metrics/nodes/usage?start=10&end=18&timeunit=milliseconds"
    );
}

#[tokio::test]
async fn source_maps_step_to_aligned_groupby() {
    let emulator = tasks_emulator(HOUR).await;
    let user1 = client(&emulator, "user1", "tenant1");
    let query = Query::new()
        .with_range(
            DateTime::from_timestamp(19_800, 0).unwrap(),
            DateTime::from_timestamp(36_000, 0).unwrap(),
        )
        .with_step(Duration::from_secs(3_600));
    let series = user1.collect(&query).await.unwrap();
    // Not an admin: only usage, without a request for queue metrics.
    assert_eq!(series.len(), 1);
    let usage = &series[0];
    assert_eq!(usage.id(), r#"coopr_node_usage_seconds{tenant="tenant1"}"#);
    let points: Vec<(i64, f64)> = usage
        .points
        .iter()
        .map(|p| (p.time.timestamp(), p.value))
        .collect();
    // Aligned at 18 000, so the first bucket is a real hour: node1 alone from 7 200 on.
    assert_eq!(
        points,
        [
            (18_000, 3_600.0),
            (21_600, 3_600.0),
            (25_200, 3_600.0),
            (28_800, 3_600.0),
            (32_400, 7_200.0)
        ]
    );
    assert_eq!(emulator.requests().count(), 1);
}

#[tokio::test]
async fn source_name_filter_skips_requests() {
    let emulator = tasks_emulator(SECOND).await;
    let superadmin = client(&emulator, "admin", "superadmin");
    let only_queues = superadmin
        .collect(&Query::new().with_names(["coopr_queue_*"]))
        .await
        .unwrap();
    assert!(only_queues.iter().all(|s| s.name == "coopr_queue_tasks"));
    assert_eq!(emulator.requests().count(), 1);
    assert!(
        emulator.requests().requests()[0]
            .uri
            .ends_with("/metrics/queues")
    );

    let latest = superadmin
        .collect_latest(&Query::new().with_names(["coopr_node_usage_seconds"]))
        .await
        .unwrap();
    assert_eq!(latest.len(), 1);
    assert_eq!(emulator.requests().count(), 2);

    // A non-admin asking only for queue gauges gets the server's 403.
    let err = client(&emulator, "user1", "tenant1")
        .collect(&Query::new().with_names(["coopr_queue_tasks"]))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Forbidden { .. }));
    assert!(
        client(&emulator, "user1", "tenant1")
            .collect(&Query::new().with_names(["vumi_*"]))
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn usage_types_deserialize_from_the_wire() {
    let usage: NodeUsage =
        serde_json::from_str(r#"{"start":1,"end":2,"data":[{"time":1,"value":3}],"extra":true}"#)
            .unwrap();
    assert_eq!(
        usage.data,
        [serde_json::from_str::<UsageInterval>(r#"{"time":1,"value":3}"#).unwrap()]
    );
}
