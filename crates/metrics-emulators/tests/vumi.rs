//! The Vumi emulator over HTTP: every fixture recorded from a live go-metrics-api 0.2.0,
//! the upstream test vectors that apply to the HTTP API, and graphite's semantics.
#![cfg(feature = "vumi")]

use std::collections::BTreeMap;

use chrono::{DateTime, TimeZone, Utc};
use metrics_emulators::vumi::{VumiEmulator, VumiEmulatorConfig};
use reqwest::Method;
use serde_json::{Value, json};

macro_rules! fixtures {
    ($($name:literal),* $(,)?) => {
        &[$(($name, include_str!(concat!("../../vumi-client/tests/fixtures/", $name, ".json")))),*]
    };
}

/// The fixtures live with the client crate; both test against the same recordings.
const FIXTURES: &[(&str, &str)] = fixtures!(
    "auth_owner_header_missing_401",
    "basic_auth_malformed_header_401",
    "basic_auth_missing_401",
    "basic_auth_ok",
    "basic_auth_wrong_credentials_401",
    "bouncer_bad_token_403",
    "bouncer_bearer_ok",
    "bouncer_no_token_401",
    "get_absolute_from_until_now_size_400",
    "get_absolute_hhmm_yyyymmdd",
    "get_empty_from_uses_default",
    "get_from_invalid_500",
    "get_from_repeated_500",
    "get_from_yesterday_until_now",
    "get_graphite_error_500",
    "get_interval_zero_500",
    "get_metric_without_aggregator_400",
    "get_no_metrics_empty_object",
    "get_nulls_keep",
    "get_nulls_omit",
    "get_nulls_unrecognised_400",
    "get_single_metric_defaults",
    "get_size_limit_exactly_10000_ok",
    "get_size_limit_exceeded_400",
    "get_two_metrics_all_params",
    "get_unix_timestamp_mixed_with_relative",
    "health_ok",
    "method_put_405",
    "post_all_or_nothing_400",
    "post_empty_object",
    "post_invalid_json_400",
    "post_list_body_400",
    "post_multiple_metrics_coercion",
    "post_nan_string_invalid_json_reply",
    "post_no_aggregator_400",
    "post_non_numeric_string_400",
    "post_null_value_400",
    "post_single_metric",
    "post_single_no_auto_prefix",
    "route_no_trailing_slash_404",
);

/// When the fixtures were recorded: 2026-11-22 09:41 UTC (`from=1795333274` was two hours
/// earlier).
fn recording_time() -> DateTime<Utc> {
    Utc.timestamp_opt(1_795_333_274 + 7200, 0).unwrap()
}

fn at(seconds: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(seconds, 0).unwrap()
}

struct Answer {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: String,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|v| v.to_str().unwrap())
    }

    fn reason(&self) -> String {
        self.json()["reason"].as_str().unwrap().to_owned()
    }
}

async fn send(
    method: Method,
    url: String,
    headers: &[(&str, &str)],
    body: Option<Vec<u8>>,
) -> Answer {
    let mut request = reqwest::Client::new().request(method, url);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    if let Some(body) = body {
        request = request.body(body);
    }
    let response = request.send().await.unwrap();
    Answer {
        status: response.status().as_u16(),
        headers: response.headers().clone(),
        body: response.text().await.unwrap(),
    }
}

async fn get(emulator: &VumiEmulator, query: &str) -> Answer {
    send(
        Method::GET,
        format!("{}/metrics/?{query}", emulator.api_url()),
        &[("X-Owner-ID", "owner-1")],
        None,
    )
    .await
}

async fn post(emulator: &VumiEmulator, body: &str) -> Answer {
    send(
        Method::POST,
        format!("{}/metrics/", emulator.api_url()),
        &[("X-Owner-ID", "owner-1")],
        Some(body.as_bytes().to_vec()),
    )
    .await
}

fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_') {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// `alias(summarize(go.campaigns.owner-1.<m>, '<i>', '<a>', false), '<m>')`.
fn target(m: &str, interval: &str, agg: &str) -> String {
    format!("alias(summarize(go.campaigns.owner-1.{m}, '{interval}', '{agg}', false), '{m}')")
}

#[tokio::test]
async fn every_recorded_fixture_is_reproduced() {
    for (name, text) in FIXTURES {
        let fixture: Value = serde_json::from_str(text).unwrap();
        let mode = fixture["server_mode"].as_str().unwrap();
        let emulator = VumiEmulator::start_with(VumiEmulatorConfig::recording(mode).unwrap())
            .await
            .unwrap();
        emulator.set_now(Some(recording_time()));
        let request = &fixture["request"];
        let mut query = Vec::new();
        for (key, value) in request["query"].as_object().unwrap() {
            let values = match value {
                Value::Array(values) => values.clone(),
                v => vec![v.clone()],
            };
            for v in values {
                query.push(format!("{key}={}", encode(v.as_str().unwrap())));
            }
        }
        let mut url = format!(
            "{}{}",
            emulator.base_url(),
            request["path"].as_str().unwrap()
        );
        if !query.is_empty() {
            url = format!("{url}?{}", query.join("&"));
        }
        let headers: Vec<(String, String)> = request["headers"]
            .as_object()
            .map(|h| {
                h.iter()
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned()))
                    .collect()
            })
            .unwrap_or_default();
        let headers: Vec<(&str, &str)> = headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let body = match (&request["body"], request["body_raw"] == true) {
            (Value::Null, _) => None,
            (Value::String(raw), true) => Some(raw.as_bytes().to_vec()),
            (value, _) => Some(serde_json::to_vec(value).unwrap()),
        };
        let method = Method::from_bytes(request["method"].as_str().unwrap().as_bytes()).unwrap();
        let answer = send(method, url, &headers, body).await;

        let expected = &fixture["response"];
        assert_eq!(u64::from(answer.status), expected["status"], "{name}");
        for (header, value) in expected["headers"].as_object().unwrap() {
            assert_eq!(answer.header(header), value.as_str(), "{name}: {header}");
        }
        if expected["body_raw"] == true {
            assert_eq!(answer.body, expected["body"].as_str().unwrap(), "{name}");
        } else if expected["body"].is_array() {
            // POST confirmations: the order is the server's own.
            let mut got = answer.json().as_array().unwrap().clone();
            let mut want = expected["body"].as_array().unwrap().clone();
            let key = |v: &Value| v["name"].as_str().unwrap().to_owned();
            got.sort_by_key(key);
            want.sort_by_key(key);
            assert_eq!(got, want, "{name}");
        } else {
            assert_eq!(answer.json(), expected["body"], "{name}");
        }
    }
}

#[tokio::test]
async fn upstream_basic_auth_vectors() {
    // test_basic_auth
    let emulator = VumiEmulator::start_with(
        VumiEmulatorConfig::default().with_basic_auth("username", "password"),
    )
    .await
    .unwrap();
    let url = format!("{}/metrics/", emulator.api_url());
    for (authorization, status, reason) in [
        (None, 401, Some("Authentication Required")),
        (
            Some("Basic b2J2aW91c2x5Ondyb25n"),
            401,
            Some("Authentication Failed"),
        ),
        (Some("Basic dXNlcm5hbWU6cGFzc3dvcmQ="), 200, None),
        (Some("Garbage"), 401, Some("Invalid Authorization header")),
        (Some("Basic 1"), 401, Some("Invalid Authorization header")),
    ] {
        let mut headers = vec![("X-Owner-ID", "owner-1")];
        headers.extend(authorization.map(|a| ("Authorization", a)));
        let answer = send(Method::GET, url.clone(), &headers, None).await;
        assert_eq!(answer.status, status, "{authorization:?}");
        if let Some(reason) = reason {
            assert_eq!(answer.reason(), reason);
            assert_eq!(answer.json()["status_code"], 401);
            assert_eq!(
                answer.header("www-authenticate"),
                Some("Basic realm=\"Metrics API\"")
            );
        } else {
            assert_eq!(answer.json(), json!({}));
            assert_eq!(answer.header("www-authenticate"), None);
        }
    }
    // Good Basic without an owner: the owner check comes first, without the header.
    let answer = send(
        Method::GET,
        url,
        &[("Authorization", "Basic dXNlcm5hbWU6cGFzc3dvcmQ=")],
        None,
    )
    .await;
    assert_eq!(answer.status, 401);
    assert_eq!(answer.reason(), "Unauthorized");
    assert_eq!(answer.header("www-authenticate"), None);
}

#[tokio::test]
async fn upstream_handler_vectors() {
    let emulator = VumiEmulator::start().await.unwrap();
    // test_metrics_get: unknown and repeated parameters are passed on and ignored.
    let answer = get(&emulator, "foo=bar&baz=quux&baz=corge").await;
    assert_eq!((answer.status, answer.json()), (200, json!({})));
    // test_metrics_get_uncaught_error: any other failure of get() is a 500.
    for query in [
        "self=1",
        "nulls=keep&nulls=omit",
        "until=a&until=b",
        "interval=1h&interval=2h",
    ] {
        let answer = get(&emulator, query).await;
        assert_eq!(answer.status, 500, "{query}");
        assert_eq!(answer.reason(), "Failed to retrieve metrics.");
    }
    // test_metrics_post_uncaught_error: any other failure of fire() is a 500.
    for body in [
        r#"{"self": 1}"#.to_owned(),
        format!(r#"{{"foo.avg": 1{}}}"#, "0".repeat(400)),
        r#"{"caf\u00e9.avg": 1}"#.to_owned(),
    ] {
        let answer = post(&emulator, &body).await;
        assert_eq!(answer.status, 500, "{body}");
        assert_eq!(answer.reason(), "Failed to fire metrics.");
    }
    assert!(emulator.fired().is_empty());
}

#[tokio::test]
async fn upstream_graphite_request_vectors() {
    let emulator = VumiEmulator::start_with(
        VumiEmulatorConfig::default().with_graphite_stub(Vec::<(Option<f64>, i64)>::new()),
    )
    .await
    .unwrap();
    // test_get_request
    let answer = get(
        &emulator,
        "m=stores.a.b.last&m=stores.b.a.max&from=-48h&until=-24h&interval=1day",
    )
    .await;
    assert_eq!(answer.status, 200);
    let request = emulator.graphite_requests().pop().unwrap();
    assert_eq!(
        request.targets,
        [
            target("stores.a.b.last", "1day", "last"),
            target("stores.b.a.max", "1day", "max")
        ]
    );
    assert_eq!(
        (request.from.as_str(), request.until.as_str()),
        ("-48h", "-24h")
    );
    // test_get_one_request / test_get_one_request_no_list
    get(
        &emulator,
        "m=stores.a.b.last&from=-48h&until=-24h&interval=1day",
    )
    .await;
    assert_eq!(
        emulator.graphite_requests().pop().unwrap().targets,
        [target("stores.a.b.last", "1day", "last")]
    );
    // test_get_default_metrics: no m, no target; graphite is still asked.
    let answer = get(&emulator, "").await;
    assert_eq!(answer.json(), json!({}));
    assert!(
        emulator
            .graphite_requests()
            .pop()
            .unwrap()
            .targets
            .is_empty()
    );
    // test_get_defaults
    get(&emulator, "m=stores.a.b.last").await;
    let request = emulator.graphite_requests().pop().unwrap();
    assert_eq!(
        request.targets,
        [target("stores.a.b.last", "1hour", "last")]
    );
    assert_eq!(
        (request.from.as_str(), request.until.as_str()),
        ("-24h", "-0s")
    );
    // align_to_from is pasted raw.
    get(&emulator, "m=stores.a.b.last&align_to_from=true").await;
    assert!(emulator.graphite_requests().pop().unwrap().targets[0].contains("'last', true)"));
}

#[tokio::test]
async fn upstream_graphite_response_and_null_vectors() {
    let a = vec![
        (None, 2695),
        (Some(5.0), 3695),
        (None, 4695),
        (None, 5695),
        (Some(10.0), 6695),
        (None, 7695),
    ];
    let b = vec![
        (None, 2695),
        (Some(12.0), 3695),
        (None, 4695),
        (Some(14.0), 5695),
    ];
    let emulator = VumiEmulator::start_with(
        VumiEmulatorConfig::default()
            .with_graphite_stub_series("stores.a.b.last", a)
            .with_graphite_stub_series("stores.b.a.max", b),
    )
    .await
    .unwrap();
    let zeroized = json!({
        "stores.a.b.last": [
            {"x": 2_695_000, "y": 0.0}, {"x": 3_695_000, "y": 5.0}, {"x": 4_695_000, "y": 0.0},
            {"x": 5_695_000, "y": 0.0}, {"x": 6_695_000, "y": 10.0}, {"x": 7_695_000, "y": 0.0}
        ],
        "stores.b.a.max": [
            {"x": 2_695_000, "y": 0.0}, {"x": 3_695_000, "y": 12.0}, {"x": 4_695_000, "y": 0.0},
            {"x": 5_695_000, "y": 14.0}
        ]
    });
    let base = "m=stores.a.b.last&m=stores.b.a.max";
    // test_get_null_handling_default / _zeroize
    assert_eq!(get(&emulator, base).await.json(), zeroized);
    assert_eq!(
        get(&emulator, &format!("{base}&nulls=zeroize"))
            .await
            .json(),
        zeroized
    );
    // test_get_null_handling_omit
    assert_eq!(
        get(&emulator, &format!("{base}&nulls=omit")).await.json(),
        json!({
            "stores.a.b.last": [{"x": 3_695_000, "y": 5.0}, {"x": 6_695_000, "y": 10.0}],
            "stores.b.a.max": [{"x": 3_695_000, "y": 12.0}, {"x": 5_695_000, "y": 14.0}]
        })
    );
    // test_get_null_handling_keep: null where zeroize put 0.0.
    let mut kept = zeroized.clone();
    for points in kept.as_object_mut().unwrap().values_mut() {
        for point in points.as_array_mut().unwrap() {
            if point["y"] == 0.0 {
                point["y"] = Value::Null;
            }
        }
    }
    assert_eq!(
        get(&emulator, &format!("{base}&nulls=keep")).await.json(),
        kept
    );
    // test_get_null_handling_unrecognised
    let answer = get(&emulator, &format!("{base}&nulls=bad")).await;
    assert_eq!(answer.status, 400);
    assert_eq!(answer.reason(), "Unrecognised null parser 'bad'");

    // test_get_response
    let emulator = VumiEmulator::start_with(
        VumiEmulatorConfig::default()
            .with_graphite_stub_series("stores.a.b.last", [(Some(5.0), 5695), (Some(10.0), 5700)])
            .with_graphite_stub_series("stores.b.a.max", [(Some(12.0), 3724), (Some(14.0), 3741)]),
    )
    .await
    .unwrap();
    assert_eq!(
        get(&emulator, base).await.json(),
        json!({
            "stores.a.b.last": [{"x": 5_695_000, "y": 5.0}, {"x": 5_700_000, "y": 10.0}],
            "stores.b.a.max": [{"x": 3_724_000, "y": 12.0}, {"x": 3_741_000, "y": 14.0}]
        })
    );
}

#[tokio::test]
async fn upstream_size_vectors() {
    let emulator = VumiEmulator::start().await.unwrap();
    // test_reject_large_request
    for query in ["from=-1d&interval=1s", "from=now&until=-1d&interval=1s"] {
        let answer = get(&emulator, query).await;
        assert_eq!(answer.status, 400, "{query}");
        assert_eq!(
            answer.reason(),
            "86400 data points requested, maximum allowed is 10000"
        );
    }
    // test_reject_large_request_multiple_metrics: the size is checked before the names.
    let answer = get(&emulator, "m=a&m=b&from=-1d&interval=10s").await;
    assert_eq!(
        answer.reason(),
        "17280 data points requested, maximum allowed is 10000"
    );
    assert_eq!(
        get(&emulator, "from=-1d&interval=10s").await.json(),
        json!({})
    );
    // test_reject_large_request_with_config
    let emulator =
        VumiEmulator::start_with(VumiEmulatorConfig::default().with_max_response_size(100_000))
            .await
            .unwrap();
    let answer = get(&emulator, "from=-2d&interval=1s").await;
    assert_eq!(
        answer.reason(),
        "172800 data points requested, maximum allowed is 100000"
    );
    assert_eq!(
        get(&emulator, "from=-1d&interval=1s").await.json(),
        json!({})
    );
}

#[tokio::test]
async fn upstream_post_vectors() {
    let emulator = VumiEmulator::start().await.unwrap();
    // test_post_request_single
    let answer = post(&emulator, r#"{"foo.avg": 1.7}"#).await;
    assert_eq!(
        answer.json(),
        json!([{"name": "foo.avg", "value": 1.7, "aggregator": "avg"}])
    );
    // test_post_request_multiple
    let answer = post(&emulator, r#"{"foo.avg": 1.2, "oof.avg": 2.7}"#).await;
    let mut names: Vec<String> = answer
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["name"].as_str().unwrap().to_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["foo.avg", "oof.avg"]);
    // test_post_request_bad_value
    let answer = post(&emulator, r#"{"foo.avg": "bar"}"#).await;
    assert_eq!(
        answer.reason(),
        "u'bar' is not a valid metric value,should be a floating point number"
    );
    // test_post_request_bad_aggregator
    let answer = post(&emulator, r#"{"foo": 1.2}"#).await;
    assert_eq!(
        answer.reason(),
        "Aggregator 'foo' is not a valid aggregator"
    );
    // test_post_aggregators
    for agg in ["sum", "avg", "max", "min", "last"] {
        let answer = post(&emulator, &format!(r#"{{"foo.{agg}": 1.3}}"#)).await;
        assert_eq!(answer.json()[0]["aggregator"], agg);
    }
    assert_eq!(emulator.fired().len(), 1 + 2 + 5);
}

#[tokio::test]
async fn post_bodies_are_read_as_python_reads_them() {
    let emulator = VumiEmulator::start().await.unwrap();
    for (body, reason) in [
        ("", "Invalid JSON: No JSON object could be decoded"),
        (
            "{} x",
            "Invalid JSON: Extra data: line 1 column 4 - line 1 column 5 (char 3 - 4)",
        ),
        (
            "{\"a.avg\" 1}",
            "Invalid JSON: Expecting ':' delimiter: line 1 column 10 (char 9)",
        ),
        (
            "\"text\"",
            "Invalid query u'text', should be dict, not <type 'unicode'>",
        ),
        ("5", "Invalid query 5, should be dict, not <type 'int'>"),
        (
            "null",
            "Invalid query None, should be dict, not <type 'NoneType'>",
        ),
        (
            r#"{"a.avg": [1]}"#,
            "[1] is not a valid metric value,should be a floating point number",
        ),
        (
            r#"{"a.avg": {"b": 1}}"#,
            "{u'b': 1} is not a valid metric value,should be a floating point number",
        ),
        (
            r#"{"a.avg": "it's"}"#,
            "u\"it's\" is not a valid metric value,should be a floating point number",
        ),
        (r#"{"a.b": 1}"#, "Aggregator 'b' is not a valid aggregator"),
    ] {
        let answer = post(&emulator, body).await;
        assert_eq!(answer.status, 400, "{body}");
        assert_eq!(answer.reason(), reason, "{body}");
    }
    // float() accepts numbers, numeric strings and booleans; NaN and Infinity are echoed
    // as bare tokens (invalid JSON), as the server does.
    let answer = post(
        &emulator,
        r#"{"a.sum": " 2.5 ", "b.sum": true, "c.sum": 7, "d.sum": "inf", "e.sum": NaN}"#,
    )
    .await;
    assert_eq!(answer.status, 200);
    assert!(
        answer.body.contains(r#""name": "a.sum", "value": 2.5}"#),
        "{}",
        answer.body
    );
    assert!(answer.body.contains(r#""name": "b.sum", "value": 1.0}"#));
    assert!(answer.body.contains(r#""name": "c.sum", "value": 7.0}"#));
    assert!(
        answer
            .body
            .contains(r#""name": "d.sum", "value": Infinity}"#)
    );
    assert!(answer.body.contains(r#""name": "e.sum", "value": NaN}"#));
    assert!(serde_json::from_str::<Value>(&answer.body).is_err());
}

#[tokio::test]
async fn confirmations_come_back_in_the_servers_order() {
    let emulator = VumiEmulator::start().await.unwrap();
    let names = ["m1.sum", "m2.sum", "m3.sum", "m4.sum", "m5.sum", "m6.sum"];
    let body = format!(
        "{{{}}}",
        names
            .iter()
            .map(|n| format!("\"{n}\": 1"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let answer = post(&emulator, &body).await;
    let order: Vec<String> = answer
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(order.len(), names.len());
    assert_ne!(
        order, names,
        "the confirmations should not mirror the request order"
    );
}

#[tokio::test]
async fn fired_values_land_where_auto_prefixing_puts_them() {
    let emulator = VumiEmulator::start().await.unwrap();
    post(&emulator, r#"{"stores.a.b.last": 5}"#).await;
    assert_eq!(
        emulator.paths(),
        ["go.campaigns.go.campaigns.owner-1.stores.a.b.last"]
    );
    assert_eq!(get(&emulator, "m=stores.a.b.last").await.json(), json!({}));

    let emulator =
        VumiEmulator::start_with(VumiEmulatorConfig::default().with_disable_auto_prefix(true))
            .await
            .unwrap();
    emulator.set_now(Some(at(1_422_748_805)));
    post(&emulator, r#"{"stores.a.b.last": 5, "stores.a.c.sum": 1}"#).await;
    post(&emulator, r#"{"stores.a.b.last": 7, "stores.a.c.sum": 2}"#).await;
    assert_eq!(
        emulator.stored_points("go.campaigns.owner-1.stores.a.c.sum"),
        [(at(1_422_748_800), 3.0)]
    );
    let answer = get(
        &emulator,
        "m=stores.a.b.last&from=-1min&interval=1min&nulls=omit",
    )
    .await;
    assert_eq!(
        answer.json(),
        json!({"stores.a.b.last": [{"x": 1_422_748_800_000_i64, "y": 7.0}]})
    );
}

#[tokio::test]
async fn graphite_store_semantics() {
    let emulator = VumiEmulator::start_with(VumiEmulatorConfig::default().with_resolution(60))
        .await
        .unwrap();
    let now = 1_422_793_800; // 2015-02-01 12:30
    emulator.set_now(Some(at(now)));
    let midnight = 1_422_748_800;
    emulator.insert_points(
        "owner-1",
        "stores.s.m.sum",
        [
            (at(midnight - 600), 100.0),
            (at(midnight + 60), 1.0),
            (at(midnight + 3600), 2.0),
            (at(now - 60), 4.0),
        ],
    );
    let points = |answer: &Answer| -> Vec<(i64, Value)> {
        answer.json()["stores.s.m.sum"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| (p["x"].as_i64().unwrap() / 1000, p["y"].clone()))
            .collect()
    };
    // The size check reads `today` as now (0 points); graphite reads it as midnight.
    let answer = get(
        &emulator,
        "m=stores.s.m.sum&from=today&until=now&interval=1hour&nulls=omit",
    )
    .await;
    assert_eq!(
        points(&answer),
        [
            (midnight, json!(1.0)),
            (midnight + 3600, json!(2.0)),
            (midnight + 12 * 3600, json!(4.0))
        ]
    );
    // `yesterday` is midnight yesterday for graphite.
    let answer = get(
        &emulator,
        "m=stores.s.m.sum&from=yesterday&until=today&interval=1d&nulls=keep",
    )
    .await;
    assert_eq!(
        points(&answer),
        [(midnight - 86_400, json!(100.0)), (midnight, Value::Null)]
    );
    // from later than until: graphite swaps them.
    let swapped = get(
        &emulator,
        "m=stores.s.m.sum&from=now&until=today&interval=1hour&nulls=omit",
    )
    .await;
    assert_eq!(
        points(&swapped),
        points(&answer_for(&emulator, "today", "now").await)
    );
    // An empty range is a graphite error.
    let answer = get(
        &emulator,
        "m=stores.s.m.sum&from=1422748800&until=00:00_20150201",
    )
    .await;
    assert_eq!(answer.status, 500);
    assert_eq!(
        answer.reason(),
        "Got error response interacting with metrics backend"
    );
    // A range in the future (for graphite, tomorrow is midnight): no series.
    let answer = get(
        &emulator,
        "m=stores.s.m.sum&from=tomorrow&until=23:59_20150201",
    )
    .await;
    assert_eq!((answer.status, answer.json()), (200, json!({})));
    // An unknown metric: no series.
    let answer = get(&emulator, "m=stores.s.m.sum&m=stores.s.other.avg").await;
    assert!(answer.json().get("stores.s.other.avg").is_none());
    assert!(answer.json().get("stores.s.m.sum").is_some());
    // A graphite expression breaker in a name is a graphite error.
    let answer = get(&emulator, "m=stores.s.m%27.sum").await;
    assert_eq!(answer.status, 500);
    // align_to_from must be a boolean for graphite.
    let answer = get(&emulator, "m=stores.s.m.sum&align_to_from=maybe").await;
    assert_eq!(answer.status, 500);
}

async fn answer_for(emulator: &VumiEmulator, from: &str, until: &str) -> Answer {
    get(
        emulator,
        &format!("m=stores.s.m.sum&from={from}&until={until}&interval=1hour&nulls=omit"),
    )
    .await
}

#[tokio::test]
async fn a_thousand_point_query() {
    let emulator = VumiEmulator::start_with(VumiEmulatorConfig::default().with_resolution(60))
        .await
        .unwrap();
    let now = Utc::now();
    emulator.insert_points(
        "owner-1",
        "stores.bench.requests.avg",
        (0..2000).map(|i| (now - chrono::TimeDelta::seconds(30 * i), 1.0)),
    );
    let answer = get(
        &emulator,
        "m=stores.bench.requests.avg&from=-1000min&interval=1min&nulls=keep",
    )
    .await;
    let points = answer.json()["stores.bench.requests.avg"]
        .as_array()
        .unwrap()
        .len();
    assert!((1000..=1002).contains(&points), "{points}");
}

#[tokio::test]
async fn auth_modes_and_routes() {
    // Bouncer: the token may also come as ?access_token=.
    let emulator = VumiEmulator::start_with(
        VumiEmulatorConfig::default().with_bouncer([("good-token", "owner-bearer")]),
    )
    .await
    .unwrap();
    emulator.insert_points("owner-bearer", "stores.a.b.last", [(Utc::now(), 1.0)]);
    let url = format!(
        "{}/metrics/?m=stores.a.b.last&access_token=good-token",
        emulator.api_url()
    );
    let answer = send(Method::GET, url, &[("X-Owner-ID", "someone-else")], None).await;
    assert_eq!(answer.status, 200);
    assert!(answer.json().get("stores.a.b.last").is_some());

    // Static owner: nothing needed.
    let emulator = VumiEmulator::start_with(
        VumiEmulatorConfig::default()
            .with_static_owner("qa")
            .with_url_path_prefix(""),
    )
    .await
    .unwrap();
    assert_eq!(emulator.api_url(), emulator.base_url());
    let answer = send(
        Method::GET,
        format!("{}/metrics/", emulator.base_url()),
        &[],
        None,
    )
    .await;
    assert_eq!((answer.status, answer.json()), (200, json!({})));

    // Methods: PUT and DELETE after the owner check, HEAD too; /health/ needs nothing.
    let emulator = VumiEmulator::start().await.unwrap();
    let url = format!("{}/metrics/", emulator.api_url());
    for method in [Method::PUT, Method::DELETE, Method::PATCH] {
        let answer = send(method.clone(), url.clone(), &[("X-Owner-ID", "o")], None).await;
        assert_eq!(answer.status, 405, "{method}");
        assert_eq!(answer.reason(), "Method Not Allowed");
        let answer = send(method.clone(), url.clone(), &[], None).await;
        assert_eq!(answer.status, 401, "{method}");
    }
    let answer = send(
        Method::GET,
        format!("{}/health/", emulator.base_url()),
        &[],
        None,
    )
    .await;
    assert_eq!((answer.status, answer.body.as_str()), (200, "OK"));
    let answer = send(
        Method::GET,
        format!("{}/metrics/", emulator.base_url()),
        &[("X-Owner-ID", "o")],
        None,
    )
    .await;
    assert_eq!(answer.status, 404);
    assert_eq!(
        answer.header("content-type"),
        Some("text/html; charset=UTF-8")
    );
}

#[tokio::test]
async fn example_data_state_and_restart() {
    let mut emulator = VumiEmulator::start().await.unwrap();
    emulator.set_now(Some(Utc::now()));
    let names = emulator.seed_example_data("owner-1");
    assert_eq!(names.len(), 6);
    let query: String = names
        .iter()
        .map(|n| format!("m={n}"))
        .collect::<Vec<_>>()
        .join("&");
    let answer = get(
        &emulator,
        &format!("{query}&from=-7d&interval=1d&nulls=omit"),
    )
    .await;
    let body: BTreeMap<String, Value> = serde_json::from_value(answer.json()).unwrap();
    assert_eq!(body.len(), 6);
    for points in body.values() {
        assert!(points.as_array().unwrap().len() >= 7);
    }
    // The state survives a restart.
    emulator.restart().await.unwrap();
    let after = get(
        &emulator,
        &format!("{query}&from=-7d&interval=1d&nulls=omit"),
    )
    .await;
    assert_eq!(after.json(), answer.json());
    emulator.clear();
    assert!(emulator.paths().is_empty());
    assert_eq!(emulator.requests().count(), 2);
}
