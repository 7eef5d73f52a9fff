//! The Coopr emulator against the server's own test vectors (AdminHandlerTest,
//! MetricHandlerTest) and the worked examples and rules of the reference, over plain HTTP.
#![cfg(feature = "coopr")]

use std::time::Duration;

use metrics_emulators::coopr::{
    ClusterTask, CooprEmulator, NodeLifetime, StoreFailure, TaskAction, TaskStatus,
};
use serde_json::{Value, json};

const SECOND: i64 = 1_000;
const HOUR: i64 = 3_600_000;
const TEXT: &str = "text/plain; charset=utf-8";

struct Answer {
    status: u16,
    content_type: Option<String>,
    connection: Option<String>,
    body: String,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }

    fn assert_text(&self, status: u16, body: &str) {
        assert_eq!(self.status, status, "{}", self.body);
        assert_eq!(self.content_type.as_deref(), Some(TEXT));
        assert_eq!(self.body, body);
    }
}

async fn call(
    emulator: &CooprEmulator,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> Answer {
    let client = reqwest::Client::new();
    let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let mut request = client.request(method, format!("{}{path}", emulator.base_url()));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await.unwrap();
    let header = |name| {
        response
            .headers()
            .get(name)
            .map(|v: &reqwest::header::HeaderValue| v.to_str().unwrap().to_owned())
    };
    let content_type = header(reqwest::header::CONTENT_TYPE);
    let connection = header(reqwest::header::CONNECTION);
    let status = response.status().as_u16();
    let body = response.text().await.unwrap();
    Answer {
        status,
        content_type,
        connection,
        body,
    }
}

/// A GET with `Coopr-UserID`, `Coopr-TenantID` and `Coopr-ApiKey: apikey`.
async fn get_as(emulator: &CooprEmulator, user: &str, tenant: &str, path: &str) -> Answer {
    call(
        emulator,
        "GET",
        path,
        &[
            ("Coopr-UserID", user),
            ("Coopr-TenantID", tenant),
            ("Coopr-ApiKey", "apikey"),
        ],
    )
    .await
}

async fn usage(emulator: &CooprEmulator, user: &str, tenant: &str, query: &str) -> Answer {
    get_as(
        emulator,
        user,
        tenant,
        &format!("/v2/metrics/nodes/usage{query}"),
    )
    .await
}

async fn queues_emulator() -> CooprEmulator {
    let emulator = CooprEmulator::start().await.unwrap();
    emulator.seed_admin_handler_test_queues();
    emulator
}

async fn tasks_emulator(unit_ms: i64) -> CooprEmulator {
    let emulator = CooprEmulator::start().await.unwrap();
    emulator.seed_metric_handler_test_tasks(unit_ms);
    // Far later than every task: nodes never deleted are alive "until now".
    emulator.set_now_ms(Some(1_000 * HOUR));
    emulator
}

// AdminHandlerTest: queue metrics.

#[tokio::test]
async fn q1_non_admin_is_forbidden() {
    let emulator = queues_emulator().await;
    get_as(&emulator, "user1", "tenant1", "/v2/metrics/queues")
        .await
        .assert_text(403, "Forbidden to get queue metrics.");
    // Non-admin users of the superadmin tenant too.
    get_as(&emulator, "user1", "superadmin", "/v2/metrics/queues")
        .await
        .assert_text(403, "Forbidden to get queue metrics.");
}

#[tokio::test]
async fn q2_superadmin_sees_every_tenant() {
    let emulator = queues_emulator().await;
    let answer = get_as(&emulator, "admin", "superadmin", "/v2/metrics/queues").await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.content_type.as_deref(), Some("application/json"));
    assert_eq!(
        answer.json(),
        json!({
            "tenantA": {"queued": 2, "inProgress": 1, "total": 3},
            "tenantB": {"queued": 1, "inProgress": 0, "total": 1},
            "tenantC": {"queued": 0, "inProgress": 1, "total": 1},
            "tenantD": {"queued": 1, "inProgress": 1, "total": 2},
            "tenant1": {"queued": 0, "inProgress": 0, "total": 0},
            "superadmin": {"queued": 0, "inProgress": 0, "total": 0}
        })
    );
    // Gson field order, compact.
    assert!(
        answer
            .body
            .contains(r#""tenantA":{"queued":2,"inProgress":1,"total":3}"#)
    );
}

#[tokio::test]
async fn q3_to_q5_tenant_admins_see_their_own_tenant() {
    let emulator = queues_emulator().await;
    for (tenant, expected) in [
        (
            "tenantA",
            json!({"tenantA": {"queued": 2, "inProgress": 1, "total": 3}}),
        ),
        (
            "tenantB",
            json!({"tenantB": {"queued": 1, "inProgress": 0, "total": 1}}),
        ),
        (
            "tenantD",
            json!({"tenantD": {"queued": 1, "inProgress": 1, "total": 2}}),
        ),
    ] {
        let answer = get_as(&emulator, "admin", tenant, "/v2/metrics/queues").await;
        assert_eq!(answer.status, 200);
        assert_eq!(answer.json(), expected, "{tenant}");
    }
}

#[tokio::test]
async fn queue_snapshots_are_cached_per_tenant() {
    let emulator = queues_emulator().await;
    let read = || async {
        get_as(&emulator, "admin", "tenantB", "/v2/metrics/queues")
            .await
            .json()["tenantB"]["queued"]
            .clone()
    };
    assert_eq!(read().await, 1);
    emulator.enqueue_tasks("idB", 4);
    assert_eq!(read().await, 1, "served from the 10 s cache");
    emulator.set_queue_cache_ttl(Duration::ZERO);
    assert_eq!(read().await, 5);
    assert_eq!(emulator.take_tasks("idB", 10), 5);
    assert_eq!(emulator.finish_tasks("idB", 2), 2);
    let answer = get_as(&emulator, "admin", "tenantB", "/v2/metrics/queues").await;
    assert_eq!(
        answer.json(),
        json!({"tenantB": {"queued": 0, "inProgress": 3, "total": 3}})
    );
}

#[tokio::test]
async fn queue_store_failure_is_a_500() {
    let emulator = queues_emulator().await;
    emulator.set_store_failure(StoreFailure::QueueMetrics, true);
    get_as(&emulator, "admin", "superadmin", "/v2/metrics/queues")
        .await
        .assert_text(500, "Internal error getting queue metrics.");
    // The role check comes first.
    get_as(&emulator, "user1", "tenant1", "/v2/metrics/queues")
        .await
        .assert_text(403, "Forbidden to get queue metrics.");
    emulator.set_store_failure(StoreFailure::QueueMetrics, false);
    assert_eq!(
        get_as(&emulator, "admin", "superadmin", "/v2/metrics/queues")
            .await
            .status,
        200
    );
}

// Authentication, for both endpoints.

#[tokio::test]
async fn authentication_order_and_bodies() {
    let emulator = queues_emulator().await;
    for path in ["/v2/metrics/queues", "/v2/metrics/nodes/usage"] {
        call(&emulator, "GET", path, &[])
            .await
            .assert_text(401, "Coopr-UserID not found in request headers.");
        call(&emulator, "GET", path, &[("Coopr-TenantID", "tenant1")])
            .await
            .assert_text(401, "Coopr-UserID not found in request headers.");
        call(&emulator, "GET", path, &[("Coopr-UserID", "admin")])
            .await
            .assert_text(401, "Coopr-TenantID not found in request headers.");
        get_as(&emulator, "admin", "nosuchtenant", path)
            .await
            .assert_text(404, "Tenant does not exist.");
        // The tenant is resolved before the empty user id is noticed.
        get_as(&emulator, "", "nosuchtenant", path)
            .await
            .assert_text(404, "Tenant does not exist.");
        let empty_user = get_as(&emulator, "", "tenant1", path).await;
        empty_user.assert_text(
            500,
            "Exception Encountered while processing request : Account must have a user id.",
        );
        assert_eq!(empty_user.connection.as_deref(), Some("close"));
        emulator.set_store_failure(StoreFailure::TenantLookup, true);
        get_as(&emulator, "admin", "nosuchtenant", path)
            .await
            .assert_text(500, "Error authenticating tenant");
        emulator.set_store_failure(StoreFailure::TenantLookup, false);
    }
}

#[tokio::test]
async fn api_key_is_never_checked_and_header_names_are_case_insensitive() {
    let emulator = queues_emulator().await;
    for key in [None, Some("wrong")] {
        let mut headers = vec![("coopr-userid", "admin"), ("COOPR-TENANTID", "tenantA")];
        if let Some(key) = key {
            headers.push(("Coopr-ApiKey", key));
        }
        let answer = call(&emulator, "GET", "/v2/metrics/queues", &headers).await;
        assert_eq!(answer.status, 200, "{key:?}");
    }
}

// Routing.

#[tokio::test]
async fn routing_answers() {
    let emulator = queues_emulator().await;
    let status = call(&emulator, "GET", "/status", &[]).await;
    assert_eq!(status.status, 200);
    assert_eq!(status.body, "OK\n");

    let unknown = get_as(&emulator, "admin", "superadmin", "/v2/metrics/nodes?x=1").await;
    assert_eq!(unknown.status, 404);
    assert_eq!(
        unknown.body,
        "Problem accessing: /v2/metrics/nodes?x=1. Reason: Not Found"
    );
    assert_eq!(unknown.content_type, None);
    assert_eq!(unknown.connection.as_deref(), Some("close"));
    let no_prefix = get_as(&emulator, "admin", "superadmin", "/metrics/queues").await;
    assert_eq!(no_prefix.status, 404);

    for method in ["POST", "PUT", "DELETE", "HEAD"] {
        let answer = call(&emulator, method, "/v2/metrics/queues?a=b", &[]).await;
        assert_eq!(answer.status, 405, "{method}");
        assert_eq!(answer.content_type, None);
        if method != "HEAD" {
            assert_eq!(answer.body, "/v2/metrics/queues?a=b");
        }
    }
}

// MetricHandlerTest and the reference's worked examples: node usage.

fn expect_usage(answer: &Answer, expected: &str) {
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(answer.content_type.as_deref(), Some("application/json"));
    assert_eq!(answer.body, expected);
}

#[tokio::test]
async fn v1_other_tenant_is_not_allowed() {
    let emulator = tasks_emulator(SECOND).await;
    usage(
        &emulator,
        "user1",
        "tenant1",
        "?start=5&end=22&tenant=tenant2",
    )
    .await
    .assert_text(
        405,
        "Getting information about tenant tenant2 not allowed for tenant tenant1",
    );
    // Tenant scoping comes before parameter parsing.
    usage(&emulator, "user1", "tenant1", "?start=abc&tenant=tenant2")
        .await
        .assert_text(
            405,
            "Getting information about tenant tenant2 not allowed for tenant tenant1",
        );
    // The admin of a tenant is no superadmin either.
    assert_eq!(
        usage(&emulator, "admin", "tenant1", "?tenant=tenant2")
            .await
            .status,
        405
    );
}

#[tokio::test]
async fn u1_to_u3_seconds_without_groupby() {
    let emulator = tasks_emulator(SECOND).await;
    let cases = [
        ("", r#"{"start":2,"end":20,"data":[{"time":2,"value":32}]}"#),
        (
            "?start=10&end=18",
            r#"{"start":10,"end":18,"data":[{"time":10,"value":17}]}"#,
        ),
        (
            "?start=10",
            r#"{"start":10,"end":20,"data":[{"time":10,"value":23}]}"#,
        ),
        (
            "?end=15",
            r#"{"start":2,"end":15,"data":[{"time":2,"value":19}]}"#,
        ),
    ];
    for (query, expected) in cases {
        expect_usage(&usage(&emulator, "user1", "tenant1", query).await, expected);
    }
}

#[tokio::test]
async fn u4_unaligned_start_over_counts_the_first_bucket() {
    let emulator = tasks_emulator(HOUR).await;
    expect_usage(
        &usage(
            &emulator,
            "user1",
            "tenant1",
            "?start=19800&end=36000&groupby=hour&timeunit=minutes",
        )
        .await,
        r#"{"start":19800,"end":36000,"data":[{"time":19800,"value":60},{"time":21600,"value":60},{"time":25200,"value":60},{"time":28800,"value":60},{"time":32400,"value":120}]}"#,
    );
}

#[tokio::test]
async fn u5_hourly_buckets() {
    let emulator = tasks_emulator(HOUR).await;
    let answer = usage(
        &emulator,
        "user1",
        "tenant1",
        "?start=64800&end=93600&groupby=hour",
    )
    .await;
    assert_eq!(answer.status, 200);
    let body = answer.json();
    let data = body["data"].as_array().unwrap();
    let times: Vec<i64> = data.iter().map(|d| d["time"].as_i64().unwrap()).collect();
    let values: Vec<i64> = data.iter().map(|d| d["value"].as_i64().unwrap()).collect();
    assert_eq!(
        times,
        (0..8).map(|i| 64_800 + i * 3_600).collect::<Vec<_>>()
    );
    assert_eq!(
        values,
        [10_800, 10_800, 7_200, 7_200, 7_200, 7_200, 7_200, 10_800]
    );
    assert_eq!(
        (body["start"].clone(), body["end"].clone()),
        (json!(64_800), json!(93_600))
    );
}

#[tokio::test]
async fn u6_daily_buckets_in_hours() {
    let emulator = tasks_emulator(HOUR).await;
    expect_usage(
        &usage(
            &emulator,
            "user1",
            "tenant1",
            "?start=0&end=172800&groupby=day&timeunit=hours",
        )
        .await,
        r#"{"start":0,"end":172800,"data":[{"time":0,"value":40},{"time":86400,"value":71}]}"#,
    );
}

#[tokio::test]
async fn u7_u8_time_units_convert_each_credit() {
    let emulator = tasks_emulator(SECOND).await;
    expect_usage(
        &usage(
            &emulator,
            "user1",
            "tenant1",
            "?start=0&end=30&timeunit=milliseconds",
        )
        .await,
        r#"{"start":0,"end":30,"data":[{"time":0,"value":57000}]}"#,
    );
    expect_usage(
        &usage(
            &emulator,
            "user1",
            "tenant1",
            "?start=0&end=30&timeunit=minutes",
        )
        .await,
        r#"{"start":0,"end":30,"data":[{"time":0,"value":0}]}"#,
    );
    // Case-insensitive, and the finer units multiply.
    expect_usage(
        &usage(
            &emulator,
            "user1",
            "tenant1",
            "?start=0&end=30&timeunit=MicroSeconds",
        )
        .await,
        r#"{"start":0,"end":30,"data":[{"time":0,"value":57000000}]}"#,
    );
    expect_usage(
        &usage(
            &emulator,
            "user1",
            "tenant1",
            "?start=0&end=30&timeunit=nanoseconds",
        )
        .await,
        r#"{"start":0,"end":30,"data":[{"time":0,"value":57000000000}]}"#,
    );
}

#[tokio::test]
async fn u9_superadmin_sees_every_tenant() {
    let emulator = tasks_emulator(SECOND).await;
    expect_usage(
        &usage(&emulator, "admin", "superadmin", "?start=10&end=18").await,
        r#"{"start":10,"end":18,"data":[{"time":10,"value":24}]}"#,
    );
    // The superadmin may filter by tenant id...
    expect_usage(
        &usage(
            &emulator,
            "admin",
            "superadmin",
            "?start=10&end=18&tenant=tenant2",
        )
        .await,
        r#"{"start":10,"end":18,"data":[{"time":10,"value":7}]}"#,
    );
    // ...and by user, across tenants.
    expect_usage(
        &usage(
            &emulator,
            "admin",
            "superadmin",
            "?start=10&end=18&user=user2",
        )
        .await,
        r#"{"start":10,"end":18,"data":[{"time":10,"value":7}]}"#,
    );
}

#[tokio::test]
async fn u10_nothing_matches() {
    let emulator = tasks_emulator(SECOND).await;
    expect_usage(
        &usage(
            &emulator,
            "user1",
            "tenant1",
            "?user=nobody&start=100&end=200",
        )
        .await,
        r#"{"start":100,"end":200,"data":[{"time":100,"value":0}]}"#,
    );
    // Defaults without tasks: start 0, end now (in seconds).
    expect_usage(
        &usage(&emulator, "user1", "tenant1", "?user=nobody").await,
        r#"{"start":0,"end":3600000,"data":[{"time":0,"value":0}]}"#,
    );
}

#[tokio::test]
async fn no_admin_check_and_own_tenant_id_accepted() {
    let emulator = tasks_emulator(SECOND).await;
    // Any user of tenant1 may query another user of the tenant, or the tenant by its id.
    expect_usage(
        &usage(
            &emulator,
            "someone",
            "tenant1",
            "?start=10&end=18&user=user1&tenant=tenant1",
        )
        .await,
        r#"{"start":10,"end":18,"data":[{"time":10,"value":17}]}"#,
    );
    // A UUID tenant's own name is not its id.
    let id = emulator.add_tenant("acme");
    emulator
        .add_node(NodeLifetime::new(&id, "bob", "7", "n1", 10 * SECOND).deleted_at(14 * SECOND));
    usage(&emulator, "bob", "acme", "?tenant=acme")
        .await
        .assert_text(
            405,
            &format!("Getting information about tenant acme not allowed for tenant {id}"),
        );
    expect_usage(
        &usage(&emulator, "bob", "acme", &format!("?tenant={id}")).await,
        r#"{"start":10,"end":14,"data":[{"time":10,"value":4}]}"#,
    );
}

#[tokio::test]
async fn cluster_and_template_filters() {
    let emulator = tasks_emulator(SECOND).await;
    expect_usage(
        &usage(&emulator, "user1", "tenant1", "?start=0&end=30&cluster=2").await,
        r#"{"start":0,"end":30,"data":[{"time":0,"value":5}]}"#,
    );
    emulator.add_cluster_task(
        ClusterTask::new(
            TaskAction::Create,
            "tenant1",
            "user1",
            "3",
            "n1",
            28 * SECOND,
        )
        .with_cluster_template("hadoop"),
    );
    expect_usage(
        &usage(
            &emulator,
            "user1",
            "tenant1",
            "?start=0&end=30&clustertemplate=hadoop",
        )
        .await,
        r#"{"start":0,"end":30,"data":[{"time":0,"value":2}]}"#,
    );
    // Tasks that are not COMPLETE, or not CREATE/DELETE, count for nothing.
    emulator.add_cluster_task(
        ClusterTask::new(TaskAction::Install, "tenant1", "user1", "3", "n1", 1)
            .with_cluster_template("hadoop"),
    );
    emulator.add_cluster_task(
        ClusterTask::new(
            TaskAction::Delete,
            "tenant1",
            "user1",
            "3",
            "n1",
            29 * SECOND,
        )
        .with_cluster_template("hadoop")
        .with_status(TaskStatus::InProgress),
    );
    expect_usage(
        &usage(
            &emulator,
            "user1",
            "tenant1",
            "?start=0&end=30&clustertemplate=hadoop",
        )
        .await,
        r#"{"start":0,"end":30,"data":[{"time":0,"value":2}]}"#,
    );
}

#[tokio::test]
async fn bad_parameters_in_order() {
    let emulator = tasks_emulator(SECOND).await;
    let cases = [
        (
            "?start=abc",
            "Incorrect value for start abc or end null timestamp",
        ),
        (
            "?end=1.5",
            "Incorrect value for start null or end 1.5 timestamp",
        ),
        (
            "?start=&end=5",
            "Incorrect value for start  or end 5 timestamp",
        ),
        (
            "?start=x&groupby=Hour",
            "Incorrect value for start x or end null timestamp",
        ),
        ("?groupby=Hour", "Incorrect value for field groupby: Hour"),
        (
            "?groupby=Hour&timeunit=weeks",
            "Incorrect value for field groupby: Hour",
        ),
        ("?groupby=", "Incorrect value for field groupby: "),
        (
            "?timeunit=weeks",
            "Incorrect value for field timeunit: weeks",
        ),
    ];
    for (query, message) in cases {
        usage(&emulator, "user1", "tenant1", query)
            .await
            .assert_text(400, message);
    }
    // Only the first value counts; unknown parameters are ignored; signs are accepted.
    expect_usage(
        &usage(
            &emulator,
            "user1",
            "tenant1",
            "?start=10&start=x&end=%2B18&foo=bar",
        )
        .await,
        r#"{"start":10,"end":18,"data":[{"time":10,"value":17}]}"#,
    );
    // The database is asked after the parameters are checked.
    emulator.set_store_failure(StoreFailure::Database, true);
    usage(&emulator, "user1", "tenant1", "?timeunit=weeks")
        .await
        .assert_text(400, "Incorrect value for field timeunit: weeks");
    usage(&emulator, "user1", "tenant1", "")
        .await
        .assert_text(500, "Unable to read data from the database");
}

#[tokio::test]
async fn arithmetic_exceptions_become_500s() {
    let emulator = tasks_emulator(SECOND).await;
    let zero = usage(&emulator, "user1", "tenant1", "?end=0").await;
    zero.assert_text(
        500,
        "Exception Encountered while processing request : / by zero",
    );
    assert_eq!(zero.connection.as_deref(), Some("close"));
    usage(&emulator, "user1", "tenant1", "?start=-5&end=10")
        .await
        .assert_text(
            500,
            "Exception Encountered while processing request : Index: 1, Size: 1",
        );
    // start > end is accepted: one bucket at start, value 0.
    expect_usage(
        &usage(&emulator, "user1", "tenant1", "?start=18&end=10").await,
        r#"{"start":18,"end":10,"data":[{"time":18,"value":0}]}"#,
    );
    // Without matching tasks the same parameters are harmless.
    expect_usage(
        &usage(&emulator, "user1", "tenant1", "?user=nobody&end=0").await,
        r#"{"start":0,"end":0,"data":[{"time":0,"value":0}]}"#,
    );
}

#[tokio::test]
async fn month_and_year_are_30_and_360_days() {
    let emulator = CooprEmulator::start().await.unwrap();
    let day = 86_400 * SECOND;
    emulator.add_tenant_with_id("t", "t");
    emulator.add_node(NodeLifetime::new("t", "u", "1", "n", 0).deleted_at(400 * day));
    emulator.set_now_ms(Some(1_000 * day));
    let answer = usage(&emulator, "u", "t", "?groupby=month&timeunit=days").await;
    let body = answer.json();
    let data = body["data"].as_array().unwrap();
    assert_eq!(data.len(), 14, "{body}");
    assert_eq!(data[1]["time"], json!(30 * 86_400));
    assert_eq!(data[1]["value"], json!(30));
    assert_eq!(data[13]["value"], json!(10));
    let answer = usage(&emulator, "u", "t", "?groupby=year&timeunit=days").await;
    assert_eq!(
        answer.body,
        r#"{"start":0,"end":34560000,"data":[{"time":0,"value":360},{"time":31104000,"value":40}]}"#
    );
    let answer = usage(&emulator, "u", "t", "?groupby=week&timeunit=days").await;
    assert_eq!(answer.json()["data"][1]["time"], json!(7 * 86_400));
}

#[tokio::test]
async fn living_nodes_count_until_now_and_end_defaults_to_now_without_deletes() {
    let emulator = CooprEmulator::start().await.unwrap();
    emulator.add_tenant_with_id("t", "t");
    emulator.add_node(NodeLifetime::new("t", "u", "1", "n", 100 * SECOND));
    emulator.set_now_ms(Some(250 * SECOND + 999));
    expect_usage(
        &usage(&emulator, "u", "t", "?timeunit=milliseconds").await,
        r#"{"start":100,"end":250,"data":[{"time":100,"value":150999}]}"#,
    );
    // The earliest DELETE of the same cluster and node ends the lifetime; the last DELETE
    // is the default end.
    emulator.add_cluster_task(ClusterTask::new(
        TaskAction::Delete,
        "t",
        "u",
        "1",
        "n",
        200 * SECOND,
    ));
    emulator.add_cluster_task(ClusterTask::new(
        TaskAction::Delete,
        "t",
        "u",
        "1",
        "n",
        180 * SECOND,
    ));
    expect_usage(
        &usage(&emulator, "u", "t", "").await,
        r#"{"start":100,"end":200,"data":[{"time":100,"value":80}]}"#,
    );
}

#[tokio::test]
async fn seeding_read_back() {
    let emulator = CooprEmulator::start().await.unwrap();
    assert_eq!(emulator.tenants()[0].id, "superadmin");
    assert_eq!(emulator.users("superadmin"), ["admin"]);
    let id = emulator.add_tenant("acme");
    emulator.add_user(&id, "alice");
    emulator.add_user(&id, "alice");
    assert_eq!(emulator.users(&id), ["alice"]);
    emulator.set_queue(&id, 4, 2);
    assert_eq!(emulator.queue(&id).in_progress, 2);
    emulator.add_node(NodeLifetime::new(&id, "alice", "1", "n", 5).deleted_at(9));
    let tasks = emulator.cluster_tasks();
    assert_eq!(tasks.len(), 2);
    assert_eq!(tasks[1].action, TaskAction::Delete);
    assert!(emulator.api_url().ends_with("/v2"));
}
