//! Every reference fixture, three ways: replayed through httpmock into the client (the wire
//! answer becomes the typed result or error), sent raw to the emulator (the emulator answers
//! exactly what the fixture recorded), and sent by the client to the emulator.

use coopr_client::{
    CooprClient, CooprErrorKind, GroupBy, NodeUsage, NodeUsageQuery, TenantQueues, TimeUnit,
};
use httpmock::Method::GET;
use httpmock::MockServer;
use metrics_core::{Error, RetryConfig};
use metrics_emulators::coopr::CooprEmulator;
use serde_json::Value;

const FIXTURES: [(&str, &str); 10] = [
    (
        "queues_superadmin_all_tenants",
        include_str!("fixtures/queues_superadmin_all_tenants.json"),
    ),
    (
        "queues_tenant_admin_own_tenant",
        include_str!("fixtures/queues_tenant_admin_own_tenant.json"),
    ),
    (
        "queues_non_admin_403",
        include_str!("fixtures/queues_non_admin_403.json"),
    ),
    (
        "usage_default_range",
        include_str!("fixtures/usage_default_range.json"),
    ),
    (
        "usage_start_end",
        include_str!("fixtures/usage_start_end.json"),
    ),
    (
        "usage_groupby_hour",
        include_str!("fixtures/usage_groupby_hour.json"),
    ),
    (
        "usage_groupby_hour_unaligned_start",
        include_str!("fixtures/usage_groupby_hour_unaligned_start.json"),
    ),
    (
        "usage_missing_user_header_401",
        include_str!("fixtures/usage_missing_user_header_401.json"),
    ),
    (
        "usage_other_tenant_405",
        include_str!("fixtures/usage_other_tenant_405.json"),
    ),
    (
        "usage_bad_groupby_400",
        include_str!("fixtures/usage_bad_groupby_400.json"),
    ),
];

struct Fixture {
    name: &'static str,
    value: Value,
}

impl Fixture {
    fn all() -> Vec<Self> {
        FIXTURES
            .iter()
            .map(|(name, text)| Self {
                name,
                value: serde_json::from_str(text).unwrap(),
            })
            .collect()
    }

    fn path(&self) -> &str {
        self.value["request"]["path"].as_str().unwrap()
    }

    fn query(&self) -> Vec<(String, String)> {
        self.value["request"]["query"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned()))
            .collect()
    }

    fn request_header(&self, name: &str) -> Option<&str> {
        self.value["request"]["headers"][name].as_str()
    }

    fn status(&self) -> u16 {
        u16::try_from(self.value["response"]["status"].as_u64().unwrap()).unwrap()
    }

    fn content_type(&self) -> &str {
        self.value["response"]["headers"]["Content-Type"]
            .as_str()
            .unwrap()
    }

    /// The response body as sent: text bodies are JSON strings in the fixture.
    fn body_text(&self) -> String {
        match &self.value["response"]["body"] {
            Value::String(text) => text.clone(),
            other => other.to_string(),
        }
    }

    fn body_json(&self) -> &Value {
        &self.value["response"]["body"]
    }

    /// The status times' unit of the seven-task data set the fixture was made with.
    fn unit_ms(&self) -> i64 {
        let dataset = self.value["dataset"].as_str().unwrap_or_default();
        if dataset.contains("u = 1 h") {
            3_600_000
        } else {
            1_000
        }
    }

    /// The typed query for the fixture's parameters. `groupby` is parsed the client's way,
    /// case-insensitively, so `Hour` becomes `hour` on the wire.
    fn usage_query(&self) -> NodeUsageQuery {
        let mut query = NodeUsageQuery::new();
        for (name, value) in self.query() {
            query = match name.as_str() {
                "start" => query.with_start(value.parse::<i64>().unwrap()),
                "end" => query.with_end(value.parse::<i64>().unwrap()),
                "tenant" => query.with_tenant(value),
                "user" => query.with_user(value),
                "groupby" => query.with_group_by(value.parse::<GroupBy>().unwrap()),
                "timeunit" => query.with_time_unit(value.parse::<TimeUnit>().unwrap()),
                other => panic!("unexpected parameter {other}"),
            };
        }
        query
    }

    /// A client with the fixture's identity. For the fixture without `Coopr-UserID` (which
    /// the client always sends), `user1`.
    fn client(&self, base_url: &str) -> CooprClient {
        CooprClient::builder()
            .with_base_url(base_url)
            .with_user_id(self.request_header("Coopr-UserID").unwrap_or("user1"))
            .with_tenant(self.request_header("Coopr-TenantID").unwrap())
            .with_api_key(self.request_header("Coopr-ApiKey").unwrap())
            .with_retry(RetryConfig::none())
            .build()
            .unwrap()
    }

    fn is_queues(&self) -> bool {
        self.path() == "/v2/metrics/queues"
    }
}

enum Outcome {
    Queues(TenantQueues),
    Usage(NodeUsage),
}

async fn run(fixture: &Fixture, client: &CooprClient) -> Result<Outcome, Error> {
    if fixture.is_queues() {
        client.queue_metrics().await.map(Outcome::Queues)
    } else {
        client
            .node_usage(&fixture.usage_query())
            .await
            .map(Outcome::Usage)
    }
}

/// The typed result equals the fixture's body, or the error is the typed one its status and
/// text call for.
fn check_outcome(fixture: &Fixture, outcome: Result<Outcome, Error>) {
    let name = fixture.name;
    match outcome {
        Ok(Outcome::Queues(queues)) => {
            assert_eq!(fixture.status(), 200, "{name}");
            assert_eq!(
                serde_json::to_value(&queues).unwrap(),
                *fixture.body_json(),
                "{name}"
            );
            for metrics in queues.values() {
                assert_eq!(metrics.total, metrics.queued + metrics.in_progress);
            }
        }
        Ok(Outcome::Usage(usage)) => {
            assert_eq!(fixture.status(), 200, "{name}");
            assert_eq!(
                serde_json::to_value(&usage).unwrap(),
                *fixture.body_json(),
                "{name}"
            );
        }
        Err(error) => {
            let message = fixture.body_text();
            assert_eq!(error.status(), Some(fixture.status()), "{name}: {error}");
            assert_eq!(error.backend(), "coopr");
            assert!(error.to_string().contains(&message), "{name}: {error}");
            let kind = CooprErrorKind::of(&error);
            match fixture.status() {
                401 => {
                    assert!(matches!(error, Error::Unauthenticated { .. }), "{name}");
                    assert_eq!(kind, Some(CooprErrorKind::MissingUserId));
                }
                403 => {
                    assert!(matches!(error, Error::Forbidden { .. }), "{name}");
                    assert_eq!(kind, Some(CooprErrorKind::QueueMetricsForbidden));
                }
                405 => {
                    assert!(matches!(error, Error::Api { status: 405, .. }), "{name}");
                    assert_eq!(kind, Some(CooprErrorKind::TenantNotAllowed));
                }
                400 => {
                    assert!(matches!(error, Error::Api { status: 400, .. }), "{name}");
                    assert_eq!(kind, Some(CooprErrorKind::BadGroupBy));
                }
                other => panic!("{name}: unexpected status {other}"),
            }
            assert!(!error.is_retryable());
        }
    }
}

#[tokio::test]
async fn fixtures_replayed_through_httpmock() {
    for fixture in Fixture::all() {
        let server = MockServer::start_async().await;
        let mock = server
            .mock_async(|when, then| {
                let mut when = when
                    .method(GET)
                    .path(fixture.path())
                    .header(
                        "Coopr-TenantID",
                        fixture.request_header("Coopr-TenantID").unwrap(),
                    )
                    .header("Coopr-ApiKey", "apikey");
                if let Some(user) = fixture.request_header("Coopr-UserID") {
                    when = when.header("Coopr-UserID", user);
                }
                for (name, value) in fixture.query() {
                    // The client sends group-by names lowercase, as the server needs.
                    let value = if name == "groupby" {
                        value.to_lowercase()
                    } else {
                        value
                    };
                    when = when.query_param(name, value);
                }
                for absent in ["user", "cluster", "clustertemplate", "timeunit", "groupby"] {
                    if !fixture.query().iter().any(|(n, _)| n == absent) {
                        when = when.query_param_missing(absent);
                    }
                }
                then.status(fixture.status())
                    .header("Content-Type", fixture.content_type())
                    .body(fixture.body_text());
            })
            .await;
        let client = fixture.client(&server.url("/v2"));
        check_outcome(&fixture, run(&fixture, &client).await);
        assert_eq!(mock.calls_async().await, 1, "{}", fixture.name);
    }
}

fn seeded_emulator_for(fixture: &Fixture, emulator: &CooprEmulator) {
    if fixture.is_queues() {
        emulator.seed_admin_handler_test_queues();
    } else {
        emulator.seed_metric_handler_test_tasks(fixture.unit_ms());
    }
}

#[tokio::test]
async fn fixture_requests_sent_raw_to_the_emulator() {
    let http = metrics_core::reqwest::Client::new();
    for fixture in Fixture::all() {
        let emulator = CooprEmulator::start().await.unwrap();
        seeded_emulator_for(&fixture, &emulator);
        let mut request = http
            .get(format!("{}{}", emulator.base_url(), fixture.path()))
            .query(&fixture.query());
        for name in ["Coopr-UserID", "Coopr-TenantID", "Coopr-ApiKey"] {
            if let Some(value) = fixture.request_header(name) {
                request = request.header(name, value);
            }
        }
        let response = request.send().await.unwrap();
        let name = fixture.name;
        assert_eq!(response.status().as_u16(), fixture.status(), "{name}");
        let content_type = response.headers()["content-type"]
            .to_str()
            .unwrap()
            .to_owned();
        assert_eq!(content_type, fixture.content_type(), "{name}");
        let body = response.text().await.unwrap();
        if fixture.status() == 200 {
            let body: Value = serde_json::from_str(&body).unwrap();
            assert_eq!(body, *fixture.body_json(), "{name}");
        } else {
            assert_eq!(body, fixture.body_text(), "{name}");
        }
    }
}

#[tokio::test]
async fn fixtures_through_the_client_against_the_emulator() {
    for fixture in Fixture::all() {
        // The client cannot leave out Coopr-UserID, nor send a mixed-case group-by.
        if matches!(
            fixture.name,
            "usage_missing_user_header_401" | "usage_bad_groupby_400"
        ) {
            continue;
        }
        let emulator = CooprEmulator::start().await.unwrap();
        seeded_emulator_for(&fixture, &emulator);
        let client = fixture.client(&emulator.base_url());
        check_outcome(&fixture, run(&fixture, &client).await);
        let requests = emulator.requests().requests();
        assert_eq!(requests.len(), 1);
        assert_eq!(requests[0].header("coopr-apikey"), Some("apikey"));
    }
}
