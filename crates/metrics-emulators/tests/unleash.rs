//! The Unleash emulator answers as unleash-server 8.2.0 did live (the bodies and messages
//! below are the recorded ones from the project's reference fixtures).
#![cfg(feature = "unleash")]

use std::time::Duration;

use chrono::{TimeDelta, Timelike, Utc};
use metrics_emulators::Fault;
use metrics_emulators::unleash::{RateLimitedEndpoint, UnleashEmulator};
use serde_json::{Value, json};

const ADMIN: &str = UnleashEmulator::ADMIN_TOKEN;
const CLIENT: &str = UnleashEmulator::CLIENT_TOKEN;

struct Answer {
    status: u16,
    headers: reqwest::header::HeaderMap,
    text: String,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or_else(|e| panic!("{e}: {}", self.text))
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

async fn call(
    emulator: &UnleashEmulator,
    method: reqwest::Method,
    path: &str,
    token: Option<&str>,
    body: Option<String>,
) -> Answer {
    let mut request =
        reqwest::Client::new().request(method, format!("{}{path}", emulator.base_url()));
    if let Some(token) = token {
        request = request.header("authorization", token);
    }
    if let Some(body) = body {
        request = request
            .header("content-type", "application/json")
            .body(body);
    }
    let response = request.send().await.unwrap();
    Answer {
        status: response.status().as_u16(),
        headers: response.headers().clone(),
        text: response.text().await.unwrap(),
    }
}

async fn post(emulator: &UnleashEmulator, path: &str, token: &str, body: &Value) -> Answer {
    call(
        emulator,
        reqwest::Method::POST,
        path,
        Some(token),
        Some(body.to_string()),
    )
    .await
}

async fn get(emulator: &UnleashEmulator, path: &str, token: Option<&str>) -> Answer {
    call(emulator, reqwest::Method::GET, path, token, None).await
}

fn details(answer: &Answer) -> Vec<(String, String)> {
    let body = answer.json();
    assert_eq!(body["name"], "BadDataError");
    assert_eq!(
        body["message"],
        "Request validation failed: your request body or params contain invalid data. Refer to the `details` list for more information."
    );
    assert_eq!(body["id"].as_str().unwrap().len(), 36);
    body["details"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["path"].as_str().unwrap().to_owned(),
                d["message"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn register_body(app: &str) -> Value {
    json!({
        "appName": app, "instanceId": "instance-1", "sdkVersion": "unleash-client-rust:0.1.0",
        "strategies": ["default", "flexibleRollout"], "started": "2026-11-22T09:37:57.000Z",
        "interval": 15000, "platformName": "rustc", "platformVersion": "1.80.0",
        "yggdrasilVersion": null, "specVersion": "5.1.9",
    })
}

fn metrics_body(app: &str, stop: &str, toggles: &Value) -> Value {
    json!({"appName": app, "instanceId": "i-1", "bucket": {"start": "2026-11-22T09:37:57.000Z", "stop": stop, "toggles": toggles}})
}

#[tokio::test]
async fn register_202_with_rate_limit_and_version_headers() {
    let emulator = UnleashEmulator::start().await.unwrap();
    let answer = post(
        &emulator,
        "/api/client/register",
        CLIENT,
        &register_body("rust-demo-app"),
    )
    .await;
    assert_eq!(answer.status, 202);
    assert_eq!(answer.text, "");
    assert_eq!(answer.header("x-unleash-version"), Some("8.2.0"));
    assert_eq!(answer.header("ratelimit-policy"), Some("6000;w=60"));
    assert_eq!(answer.header("ratelimit-limit"), Some("6000"));
    assert_eq!(emulator.application_names(), ["rust-demo-app"]);

    let details_answer = get(
        &emulator,
        "/api/admin/metrics/applications/rust-demo-app",
        Some(ADMIN),
    )
    .await;
    let app = details_answer.json();
    assert_eq!(app["instances"][0]["sdkType"], "backend");
    assert_eq!(app["instances"][0]["environment"], "development");
    assert_eq!(app["strategies"][1]["displayName"], "Gradual rollout");
    assert_eq!(app["links"]["self"], "/api/applications/rust-demo-app");
}

#[tokio::test]
async fn validation_errors_match_the_server() {
    let emulator = UnleashEmulator::start().await.unwrap();
    // register-400-missing-interval
    let answer = post(
        &emulator,
        "/api/client/register",
        CLIENT,
        &json!({"appName": "x", "instanceId": "i", "strategies": []}),
    )
    .await;
    assert_eq!(answer.status, 400);
    assert_eq!(
        details(&answer),
        [(
            "/body/interval".to_owned(),
            "The `/body/interval` property is required. It was not present on the data you sent."
                .to_owned()
        )]
    );
    // metrics-400-missing-appname
    let answer = post(
        &emulator,
        "/api/client/metrics",
        CLIENT,
        &json!({"instanceId": "i", "bucket": {"start": "2026-11-22T09:00:00Z", "stop": "2026-11-22T09:01:00Z", "toggles": {}}}),
    )
    .await;
    assert_eq!(
        details(&answer),
        [(
            "/body/appName".to_owned(),
            "The `/body/appName` property is required. It was not present on the data you sent."
                .to_owned()
        )]
    );
    // metrics-400-negative-count
    let answer = post(
        &emulator,
        "/api/client/metrics",
        CLIENT,
        &metrics_body(
            "x",
            "2026-11-22T09:01:00Z",
            &json!({"my-flag": {"yes": -1, "no": 0}}),
        ),
    )
    .await;
    assert_eq!(
        details(&answer),
        [(
            "/body/bucket/toggles/my-flag/yes".to_owned(),
            "The `/body/bucket/toggles/my-flag/yes` property must be >= 0. You sent -1.".to_owned()
        )]
    );
    // metrics-400-invalid-date
    let answer = post(
        &emulator,
        "/api/client/metrics",
        CLIENT,
        &json!({"appName": "x", "bucket": {"start": "not-a-date", "stop": "2026-11-22T09:01:00Z", "toggles": {}}}),
    )
    .await;
    let got = details(&answer);
    assert_eq!(got.len(), 3);
    assert_eq!(
        got[0].1,
        "The `/body/bucket/start` property must match format \"date-time\". You sent \"not-a-date\"."
    );
    assert_eq!(
        got[1].1,
        "The `/body/bucket/start` property must be integer. You sent \"not-a-date\"."
    );
    assert!(got[2].1.starts_with(
        "The \"/body/bucket/start\" property must match exactly one schema in oneOf."
    ));
    // Not JSON at all: Express's HTML page.
    let answer = call(
        &emulator,
        reqwest::Method::POST,
        "/api/client/metrics",
        Some(CLIENT),
        Some("{\"appName\": \"x\",}".into()),
    )
    .await;
    assert_eq!(answer.status, 400);
    assert!(
        answer
            .header("content-type")
            .unwrap()
            .starts_with("text/html")
    );
    assert!(answer.text.contains("<pre>SyntaxError"));
    assert!(emulator.metric_posts().is_empty());
}

#[tokio::test]
async fn token_types() {
    let emulator = UnleashEmulator::start().await.unwrap();
    let body = metrics_body(
        "x",
        "2026-11-22T09:01:00Z",
        &json!({"my-flag": {"yes": 1, "no": 1}}),
    );
    for token in [None, Some(""), Some("bogus")] {
        let answer = call(
            &emulator,
            reqwest::Method::POST,
            "/api/client/metrics",
            token,
            Some(body.to_string()),
        )
        .await;
        assert_eq!(answer.status, 401);
        assert_eq!(
            answer.json(),
            json!({"message": "This endpoint requires an API token. Please add an authorization header to your request with a valid token"})
        );
    }
    for token in [ADMIN, UnleashEmulator::FRONTEND_TOKEN] {
        let answer = post(&emulator, "/api/client/metrics", token, &body).await;
        assert_eq!(answer.status, 403);
        assert_eq!(
            answer.json(),
            json!({"message": "invalid token: expected a different token type for this endpoint"})
        );
    }
    // 5.11+ strips `Bearer `.
    let answer = post(
        &emulator,
        "/api/client/metrics",
        &format!("Bearer {CLIENT}"),
        &body,
    )
    .await;
    assert_eq!(answer.status, 202);

    let answer = get(&emulator, "/api/admin/metrics/applications", None).await;
    assert_eq!(answer.status, 401);
    assert_eq!(answer.json()["name"], "AuthenticationRequired");
    let answer = get(&emulator, "/api/admin/metrics/applications", Some("bogus")).await;
    assert_eq!(answer.json()["name"], "UnauthorizedError");
    assert_eq!(answer.json()["message"], "You must log in to use Unleash.");
    let answer = get(&emulator, "/api/admin/metrics/applications", Some(CLIENT)).await;
    assert_eq!(answer.status, 403);
    emulator.add_personal_access_token("user:abc123");
    let answer = get(
        &emulator,
        "/api/admin/metrics/applications",
        Some("user:abc123"),
    )
    .await;
    assert_eq!(answer.status, 200);

    // The seed's read paths under /api/client: the token is checked first.
    let answer = get(&emulator, "/api/client/seen-toggles", Some(CLIENT)).await;
    assert_eq!(answer.status, 404);
    let body = answer.json();
    assert_eq!(body["name"], "NotFoundError");
    assert_eq!(
        body["message"],
        "The path you were looking for (/api/client/seen-toggles) is not available."
    );
    assert!(body["id"].is_string());
    assert_eq!(
        get(&emulator, "/api/client/seen-toggles", Some(ADMIN))
            .await
            .status,
        403
    );
}

#[tokio::test]
async fn metrics_are_booked_like_the_server_does() {
    let emulator = UnleashEmulator::start().await.unwrap();
    emulator.add_flag("my-flag");
    emulator.add_backend_token("*:*.wildcard-env");
    let answer = post(
        &emulator,
        "/api/client/metrics",
        CLIENT,
        &json!({
            "appName": "rust-demo-app", "instanceId": "instance-1",
            "bucket": {"start": "2026-11-22T09:37:57.000Z", "stop": "2026-11-22T09:38:57.000Z",
                "toggles": {"my-flag": {"yes": 7, "no": 3, "variants": {"blue": 4, "green": 3}},
                            "unknown-flag": {"yes": 1, "no": 0},
                            "my-flag-zero": {"yes": 0, "no": 0}}},
            "environment": "production"
        }),
    )
    .await;
    assert_eq!(answer.status, 202);
    assert_eq!(answer.text, "");
    assert!(
        answer.header("ratelimit-limit").is_none(),
        "8.2.0 strips every header here"
    );
    // The same bucket twice doubles the counts: the POST is not idempotent.
    post(
        &emulator,
        "/api/client/metrics",
        CLIENT,
        &metrics_body(
            "rust-demo-app",
            "2026-11-22T09:38:57.000Z",
            &json!({"my-flag": {"yes": 7, "no": 3}}),
        ),
    )
    .await;
    assert_eq!(
        emulator.counts_where("my-flag", Some("rust-demo-app"), Some("development")),
        (14, 6)
    );
    assert_eq!(
        emulator.counts_where("my-flag", None, Some("production")),
        (0, 0),
        "env comes from the token"
    );
    assert_eq!(emulator.variant_counts("my-flag")["blue"], 4);
    assert_eq!(emulator.unknown_flag_names(), ["unknown-flag"]);
    let hours = emulator.booked_hours("my-flag");
    assert_eq!(hours.len(), 1);
    assert_eq!(hours[0].to_rfc3339(), "2026-11-22T09:00:00+00:00");

    // Integers are milliseconds; `*` environment books under `default`.
    post(
        &emulator,
        "/api/client/metrics",
        "*:*.wildcard-env",
        &json!({"appName": "a", "bucket": {"start": 0, "stop": 1_763_805_600_000_i64, "toggles": {"my-flag": {"yes": 1}}}}),
    )
    .await;
    assert_eq!(
        emulator.counts_where("my-flag", Some("a"), Some("default")),
        (1, 0)
    );
    assert!(
        emulator
            .booked_hours("my-flag")
            .iter()
            .any(|h| h.to_rfc3339() == "2025-11-22T10:00:00+00:00")
    );

    // No bucket at all is fine (impact-metrics-only posts).
    assert_eq!(
        post(
            &emulator,
            "/api/client/metrics",
            CLIENT,
            &json!({"appName": "x"})
        )
        .await
        .status,
        202
    );
    // The instance created by a metrics POST has no sdkType.
    let app = get(&emulator, "/api/admin/metrics/applications/x", Some(ADMIN))
        .await
        .json();
    assert_eq!(app["instances"][0]["instanceId"], "default");
    assert_eq!(app["instances"][0]["sdkType"], Value::Null);

    emulator.set_metrics_disabled(true);
    assert_eq!(
        post(
            &emulator,
            "/api/client/metrics",
            CLIENT,
            &json!({"appName": "x"})
        )
        .await
        .status,
        204
    );
}

#[tokio::test]
async fn rate_limit_on_demand() {
    let emulator = UnleashEmulator::start().await.unwrap();
    emulator.set_rate_limit(RateLimitedEndpoint::Metrics, 3, Duration::from_secs(60));
    let body = json!({"appName": "rl-app", "instanceId": "i-1"});
    for _ in 0..3 {
        assert_eq!(
            post(&emulator, "/api/client/metrics", CLIENT, &body)
                .await
                .status,
            202
        );
    }
    let answer = post(&emulator, "/api/client/metrics", CLIENT, &body).await;
    assert_eq!(answer.status, 429);
    assert_eq!(answer.text, "Too many requests, please try again later.");
    assert!(
        answer
            .header("content-type")
            .unwrap()
            .starts_with("text/html")
    );
    assert_eq!(answer.header("ratelimit-policy"), Some("3;w=60"));
    assert_eq!(answer.header("ratelimit-remaining"), Some("0"));
    let retry_after: u64 = answer.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry_after));
    assert_eq!(
        answer.header("ratelimit-reset"),
        answer.header("retry-after")
    );
    // Register is limited separately.
    assert_eq!(
        post(
            &emulator,
            "/api/client/register",
            CLIENT,
            &register_body("rl-app")
        )
        .await
        .status,
        202
    );

    emulator.set_rate_limit(RateLimitedEndpoint::Register, 1, Duration::from_millis(300));
    assert_eq!(
        post(
            &emulator,
            "/api/client/register",
            CLIENT,
            &register_body("a")
        )
        .await
        .status,
        202
    );
    assert_eq!(
        post(
            &emulator,
            "/api/client/register",
            CLIENT,
            &register_body("a")
        )
        .await
        .status,
        429
    );
    tokio::time::sleep(Duration::from_millis(350)).await;
    assert_eq!(
        post(
            &emulator,
            "/api/client/register",
            CLIENT,
            &register_body("a")
        )
        .await
        .status,
        202
    );
    emulator.clear_rate_limits();
    assert_eq!(
        post(&emulator, "/api/client/metrics", CLIENT, &body)
            .await
            .status,
        202
    );

    // The shared faults work too.
    emulator.faults().inject(
        Fault::Status {
            status: 503,
            retry_after: Some(5),
            body: String::new(),
        },
        1,
    );
    let answer = post(&emulator, "/api/client/metrics", CLIENT, &body).await;
    assert_eq!(
        (answer.status, answer.header("retry-after")),
        (503, Some("5"))
    );
}

#[tokio::test]
async fn legacy_views_answer_410() {
    let emulator = UnleashEmulator::start().await.unwrap();
    for path in [
        "/api/admin/metrics/seen-toggles",
        "/api/admin/metrics/seen-apps",
        "/api/admin/metrics/feature-toggles",
        "/api/admin/metrics/feature-toggles/my-flag",
    ] {
        let answer = get(&emulator, path, Some(ADMIN)).await;
        assert_eq!(answer.status, 410, "{path}");
        assert_eq!(
            answer.text,
            r#"{"lastHour":{},"lastMinute":{},"maturity":"deprecated"}"#
        );
        assert_eq!(get(&emulator, path, Some(CLIENT)).await.status, 403);
    }
}

#[tokio::test]
async fn read_endpoints() {
    let emulator = UnleashEmulator::start().await.unwrap();
    emulator.seed_demo();

    let list = get(
        &emulator,
        "/api/admin/metrics/applications?limit=0&sortBy=bogus",
        Some(ADMIN),
    )
    .await
    .json();
    assert_eq!(list["total"], 2);
    assert_eq!(list["applications"][0]["appName"], "checkout-service");
    assert_eq!(list["applications"][0]["createdBy"], "unleash_system_user");
    assert_eq!(
        list["applications"][0]["usage"][0]["environments"],
        json!(["production"])
    );
    let page = get(
        &emulator,
        "/api/admin/metrics/applications?query=SEARCH&offset=0&limit=1",
        Some(ADMIN),
    )
    .await
    .json();
    assert_eq!(page["total"], 1);
    assert_eq!(page["applications"][0]["appName"], "search-api");
    let page = get(
        &emulator,
        "/api/admin/metrics/applications?limit=1&offset=1",
        Some(ADMIN),
    )
    .await
    .json();
    assert_eq!(
        (
            page["total"].as_u64(),
            page["applications"].as_array().unwrap().len()
        ),
        (Some(2), 1)
    );

    let missing = get(
        &emulator,
        "/api/admin/metrics/applications/does-not-exist",
        Some(ADMIN),
    )
    .await;
    assert_eq!(missing.status, 404);
    assert_eq!(
        missing.json(),
        json!({"name":"NotFoundError","message":"Could not find appName=does-not-exist","details":[{"message":"Could not find appName=does-not-exist"}]})
    );
    let overview = get(
        &emulator,
        "/api/admin/metrics/applications/does-not-exist/overview",
        Some(ADMIN),
    )
    .await;
    assert_eq!(
        overview.json(),
        json!({"projects":[],"featureCount":1,"environments":[],"issues":{"missingStrategies":[]}})
    );
    let overview = get(
        &emulator,
        "/api/admin/metrics/applications/search-api/overview",
        Some(ADMIN),
    )
    .await
    .json();
    assert_eq!(
        overview["environments"][0]["issues"]["missingFeatures"],
        json!(["legacy-banner"])
    );
    assert_eq!(
        overview["environments"][0]["backendSdks"],
        json!(["unleash-client-rust:0.17.1"])
    );
    let instances = get(
        &emulator,
        "/api/admin/metrics/instances/checkout-service/environment/production",
        Some(ADMIN),
    )
    .await
    .json();
    assert_eq!(instances["instances"].as_array().unwrap().len(), 2);
    assert_eq!(
        get(
            &emulator,
            "/api/admin/metrics/instances/nope/environment/production",
            Some(ADMIN)
        )
        .await
        .json(),
        json!({"instances": []})
    );

    let feature = get(
        &emulator,
        "/api/admin/client-metrics/features/new-checkout",
        Some(ADMIN),
    )
    .await
    .json();
    assert_eq!(feature["version"], 1);
    assert_eq!(feature["maturity"], "stable");
    assert_eq!(feature["seenApplications"], json!(["checkout-service"]));
    assert_eq!(feature["lastHourUsage"][0]["environment"], "production");
    let unknown = get(
        &emulator,
        "/api/admin/client-metrics/features/nope",
        Some(ADMIN),
    )
    .await;
    assert_eq!(unknown.status, 200);
    assert_eq!(unknown.json()["lastHourUsage"], json!([]));

    // hoursBack out of range silently becomes 24; hours without data are zero-filled,
    // without `variants` and with the server's other key order.
    for query in ["hoursBack=0", "hoursBack=49", "hoursBack=abc", ""] {
        let raw = get(
            &emulator,
            &format!("/api/admin/client-metrics/features/dark-mode/raw?{query}"),
            Some(ADMIN),
        )
        .await;
        assert_eq!(raw.json()["data"].as_array().unwrap().len(), 24, "{query}");
    }
    let raw = get(
        &emulator,
        "/api/admin/client-metrics/features/button-color/raw?hoursBack=8",
        Some(ADMIN),
    )
    .await;
    let body = raw.json();
    let data = body["data"].as_array().unwrap();
    assert_eq!(data.len(), 8);
    assert!(data[0].get("variants").is_none());
    assert!(
        raw.text.contains(r#"{"timestamp":"#)
            && raw
                .text
                .contains(r#","no":0,"yes":0,"appName":"checkout-service""#)
    );
    assert_eq!(data[7]["variants"]["blue"], 300);
    assert!(raw.text.contains(r#"{"featureName":"button-color","appName":"checkout-service","environment":"production","timestamp":"#));
    let current = Utc::now()
        .with_minute(0)
        .unwrap()
        .with_second(0)
        .unwrap()
        .with_nanosecond(0)
        .unwrap();
    assert_eq!(
        data[7]["timestamp"],
        current.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
    );
    assert_eq!(
        data[6]["timestamp"],
        (current - TimeDelta::hours(1)).to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
    );

    let unknown = get(&emulator, "/api/admin/metrics/unknown-flags", Some(ADMIN))
        .await
        .json();
    assert_eq!(unknown["unknownFlags"][0]["name"], "legacy-banner");
    assert_eq!(unknown["unknownFlags"][0]["lastEventAt"], Value::Null);
    assert_eq!(
        unknown["unknownFlags"][0]["reports"][0]["appName"],
        "search-api"
    );

    let ui = get(&emulator, "/api/admin/ui-config", Some(ADMIN))
        .await
        .json();
    assert_eq!(ui["version"], "8.2.0");
    assert_eq!(
        get(&emulator, "/health", None).await.json(),
        json!({"health": "GOOD"})
    );
}

#[tokio::test]
async fn admin_writes() {
    let emulator = UnleashEmulator::start().await.unwrap();
    let created = post(
        &emulator,
        "/api/admin/projects/default/features",
        ADMIN,
        &json!({"name": "new-flag"}),
    )
    .await;
    assert_eq!(created.status, 201);
    assert_eq!(
        post(
            &emulator,
            "/api/admin/projects/default/features",
            ADMIN,
            &json!({"name": "new-flag"})
        )
        .await
        .status,
        409
    );
    post(
        &emulator,
        "/api/client/metrics",
        CLIENT,
        &metrics_body(
            "app",
            &Utc::now().to_rfc3339(),
            &json!({"new-flag": {"yes": 2, "no": 1}}),
        ),
    )
    .await;
    assert_eq!(emulator.counts("new-flag"), (2, 1));
    let upsert = post(
        &emulator,
        "/api/admin/metrics/applications/app",
        ADMIN,
        &json!({"description": "Our app", "color": "red"}),
    )
    .await;
    assert_eq!(upsert.status, 202);
    let app = get(
        &emulator,
        "/api/admin/metrics/applications/app",
        Some(ADMIN),
    )
    .await
    .json();
    assert_eq!(
        (app["description"].as_str(), app["color"].as_str()),
        (Some("Our app"), Some("red"))
    );
    assert_eq!(app["seenToggles"][0]["name"], "new-flag");
    let deleted = call(
        &emulator,
        reqwest::Method::DELETE,
        "/api/admin/metrics/applications/app",
        Some(ADMIN),
        None,
    )
    .await;
    assert_eq!(deleted.status, 200);
    let again = call(
        &emulator,
        reqwest::Method::DELETE,
        "/api/admin/metrics/applications/never",
        Some(ADMIN),
        None,
    )
    .await;
    assert_eq!(again.status, 200);
    assert_eq!(
        get(
            &emulator,
            "/api/admin/metrics/applications/app",
            Some(ADMIN)
        )
        .await
        .status,
        404
    );
}
