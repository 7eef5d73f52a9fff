//! Every fixture recorded from a live go-metrics-api 0.2.0, replayed through httpmock.
//!
//! Each fixture is in exactly one group:
//! - `SENT_AS_RECORDED`: the client sends exactly the recorded request (method, path with its
//!   trailing slash, query, credentials, body) and turns the recorded answer into the typed
//!   result or error;
//! - `REJECTED_BEFORE_SENDING`: the recorded request is invalid (the server answered 4xx/500);
//!   the client refuses it with `Error::InvalidInput` and the mock receives nothing; the
//!   recorded answer, served to a request the client can send, still maps to a typed error;
//! - `NOT_EXPRESSIBLE`: the client's types cannot produce the recorded request (a garbage
//!   header, a repeated `from`, an unknown `nulls`, a non-object body, `PUT`, the path without
//!   its slash); the recorded answer maps to a typed error.

use std::collections::BTreeMap;

use httpmock::prelude::*;
use httpmock::{HttpMockRequest, Mock};
use metrics_core::{Error, RetryConfig};
use serde_json::Value;
use vumi_client::time::{TimeSpec, predicted_points};
use vumi_client::{FiredMetric, MetricsQuery, Nulls, VumiClient};

macro_rules! fixtures {
    ($($name:literal),* $(,)?) => {
        &[$(($name, include_str!(concat!("fixtures/", $name, ".json")))),*]
    };
}

const ALL: &[(&str, &str)] = fixtures!(
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

const SENT_AS_RECORDED: &[&str] = &[
    "auth_owner_header_missing_401",
    "basic_auth_missing_401",
    "basic_auth_ok",
    "basic_auth_wrong_credentials_401",
    "bouncer_bad_token_403",
    "bouncer_bearer_ok",
    "bouncer_no_token_401",
    "get_absolute_hhmm_yyyymmdd",
    "get_from_yesterday_until_now",
    "get_graphite_error_500",
    "get_no_metrics_empty_object",
    "get_nulls_keep",
    "get_nulls_omit",
    "get_single_metric_defaults",
    "get_size_limit_exactly_10000_ok",
    "get_two_metrics_all_params",
    "get_unix_timestamp_mixed_with_relative",
    "health_ok",
    "post_empty_object",
    "post_multiple_metrics_coercion",
    "post_single_metric",
    "post_single_no_auto_prefix",
];

const REJECTED_BEFORE_SENDING: &[&str] = &[
    "get_absolute_from_until_now_size_400",
    "get_empty_from_uses_default",
    "get_from_invalid_500",
    "get_interval_zero_500",
    "get_metric_without_aggregator_400",
    "get_size_limit_exceeded_400",
    "post_all_or_nothing_400",
    "post_nan_string_invalid_json_reply",
    "post_no_aggregator_400",
];

const NOT_EXPRESSIBLE: &[&str] = &[
    "basic_auth_malformed_header_401",
    "get_from_repeated_500",
    "get_nulls_unrecognised_400",
    "method_put_405",
    "post_invalid_json_400",
    "post_list_body_400",
    "post_non_numeric_string_400",
    "post_null_value_400",
    "route_no_trailing_slash_404",
];

struct Fixture {
    name: &'static str,
    json: Value,
}

fn fixture(name: &str) -> Fixture {
    let (name, text) = ALL
        .iter()
        .find(|(n, _)| *n == name)
        .unwrap_or_else(|| panic!("no fixture {name}"));
    Fixture {
        name,
        json: serde_json::from_str(text).unwrap(),
    }
}

impl Fixture {
    fn method(&self) -> &str {
        self.json["request"]["method"].as_str().unwrap()
    }

    fn path(&self) -> &str {
        self.json["request"]["path"].as_str().unwrap()
    }

    /// The recorded query as sorted `(key, value)` pairs.
    fn query(&self) -> Vec<(String, String)> {
        let mut pairs = Vec::new();
        for (key, value) in self.json["request"]["query"].as_object().unwrap() {
            match value {
                Value::Array(values) => {
                    for v in values {
                        pairs.push((key.clone(), v.as_str().unwrap().to_owned()));
                    }
                }
                v => pairs.push((key.clone(), v.as_str().unwrap().to_owned())),
            }
        }
        pairs.sort();
        pairs
    }

    fn request_header(&self, name: &str) -> Option<&str> {
        self.json["request"]["headers"]
            .as_object()
            .and_then(|h| h.get(name))
            .and_then(Value::as_str)
    }

    fn status(&self) -> u16 {
        u16::try_from(self.json["response"]["status"].as_u64().unwrap()).unwrap()
    }

    fn body(&self) -> &Value {
        &self.json["response"]["body"]
    }

    /// The response body as the server sent it.
    fn body_bytes(&self) -> Vec<u8> {
        if self.json["response"]["body_raw"] == true {
            self.body().as_str().unwrap().as_bytes().to_vec()
        } else {
            serde_json::to_vec(self.body()).unwrap()
        }
    }

    fn reason(&self) -> &str {
        self.body()["reason"].as_str().unwrap()
    }

    /// The client configured with the credentials the fixture's request carried.
    fn client(&self, base: &str) -> VumiClient {
        let mut builder = VumiClient::builder()
            .with_base_url(base)
            .with_retry(RetryConfig::none());
        if let Some(auth) = self.request_header("Authorization") {
            if let Some(token) = auth.strip_prefix("Bearer ") {
                builder = builder.with_token(token);
            } else if let Some(encoded) = auth.strip_prefix("Basic ") {
                let decoded = decode_base64(encoded);
                let (user, pass) = decoded.split_once(':').unwrap();
                builder = builder.with_basic_auth(user, pass);
            } else {
                // Not something the client sends; NOT_EXPRESSIBLE replaces it.
                builder = builder.with_basic_auth("user", "pass");
            }
        }
        if let Some(owner) = self.request_header("X-Owner-ID") {
            builder = builder.with_owner_id(owner);
        }
        builder.build().unwrap()
    }

    /// The recorded GET request as a query, the way a user would write it.
    fn metrics_query(&self) -> MetricsQuery {
        let mut query = MetricsQuery::new();
        for (key, value) in self.query() {
            query = match key.as_str() {
                "m" => query.with_metric(value.as_str()),
                "from" => query.with_from(value.as_str()),
                "until" => query.with_until(value.as_str()),
                "interval" => query.with_interval(value.as_str()),
                "align_to_from" => query.with_align_to_from(value == "true"),
                "nulls" => query.with_nulls(match value.as_str() {
                    "keep" => Nulls::Keep,
                    "omit" => Nulls::Omit,
                    "zeroize" => Nulls::Zeroize,
                    other => panic!("nulls={other} cannot be expressed"),
                }),
                other => panic!("unexpected parameter {other}"),
            };
        }
        query
    }

    /// The recorded POST body as `(name, value)` pairs, numeric strings read as numbers.
    fn fire_entries(&self) -> Vec<(String, f64)> {
        self.json["request"]["body"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(name, value)| {
                let number = match value {
                    Value::String(s) => s.parse::<f64>().unwrap_or(f64::NAN),
                    v => v.as_f64().unwrap_or(f64::NAN),
                };
                (name.clone(), number)
            })
            .collect()
    }

    /// A mock that answers with the recorded response, but only to exactly the recorded
    /// request: method, path, query, credentials and (numerically) body.
    async fn serve_exact<'a>(&self, server: &'a MockServer) -> Mock<'a> {
        let method = self.method().to_owned();
        let path = self.path().to_owned();
        let query = self.query();
        let authorization = self.request_header("Authorization").map(str::to_owned);
        let owner = self.request_header("X-Owner-ID").map(str::to_owned);
        let body = self.json["request"]["body"].clone();
        let is_post = method == "POST";
        let matcher = move |req: &HttpMockRequest| {
            let mut sent = req.query_params();
            sent.sort();
            let header = |name: &str| {
                req.headers()
                    .get(name)
                    .map(|v| v.to_str().unwrap().to_owned())
            };
            req.method().as_str() == method
                && req.uri().path() == path
                && sent == query
                && header("authorization") == authorization
                && header("x-owner-id") == owner
                && (!is_post || same_numbers(&body, &req.body_vec()))
        };
        let (status, headers, bytes) = self.response_parts();
        server
            .mock_async(move |when, then| {
                when.is_true(matcher);
                let mut then = then.status(status).body(bytes);
                for (name, value) in headers {
                    then = then.header(name, value);
                }
            })
            .await
    }

    /// A mock that answers with the recorded response to any request on `path`.
    async fn serve_any<'a>(&self, server: &'a MockServer, path: &str) -> Mock<'a> {
        let (status, headers, bytes) = self.response_parts();
        let path = path.to_owned();
        server
            .mock_async(move |when, then| {
                when.path(path);
                let mut then = then.status(status).body(bytes);
                for (name, value) in headers {
                    then = then.header(name, value);
                }
            })
            .await
    }

    fn response_parts(&self) -> (u16, Vec<(String, String)>, Vec<u8>) {
        let headers = self.json["response"]["headers"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned()))
            .collect();
        (self.status(), headers, self.body_bytes())
    }
}

/// Whether a sent JSON body has the recorded keys with numerically equal values (the
/// client sends `1.0` where the recording has `1`, and numbers for numeric strings).
fn same_numbers(recorded: &Value, sent: &[u8]) -> bool {
    let Ok(Value::Object(sent)) = serde_json::from_slice::<Value>(sent) else {
        return false;
    };
    let Value::Object(recorded) = recorded else {
        return false;
    };
    recorded.len() == sent.len()
        && recorded.iter().all(|(name, value)| {
            let expected = match value {
                Value::String(s) => s.parse::<f64>().ok(),
                v => v.as_f64(),
            };
            sent.get(name).and_then(Value::as_f64) == expected
        })
}

fn decode_base64(text: &str) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut bits = 0u32;
    let mut count = 0;
    let mut out = Vec::new();
    for byte in text.bytes().filter(|b| *b != b'=') {
        let value = u32::try_from(ALPHABET.iter().position(|a| *a == byte).unwrap()).unwrap();
        bits = (bits << 6) | value;
        count += 6;
        if count >= 8 {
            count -= 8;
            out.push(u8::try_from((bits >> count) & 0xff).unwrap());
        }
    }
    String::from_utf8(out).unwrap()
}

/// The typed error the recorded error answer must become.
fn assert_maps_to_recorded_error(fx: &Fixture, error: &Error) {
    let reason = fx.reason();
    match (fx.status(), error) {
        (401, Error::Unauthenticated { message, .. }) | (403, Error::Forbidden { message, .. }) => {
            // The server's reason, then what to set (the reason alone does not say).
            assert!(
                message == reason || message.starts_with(&format!("{reason}; ")),
                "{}: {message}",
                fx.name
            );
            if fx.status() == 401 {
                assert!(message.contains("(VUMI_"), "{}: {message}", fx.name);
            }
        }
        (
            status,
            Error::Api {
                status: got,
                message,
                code,
                ..
            },
        ) => {
            assert_eq!(*got, status, "{}", fx.name);
            assert_eq!(message, reason, "{}", fx.name);
            assert_eq!(*code, None, "{}", fx.name);
        }
        _ => panic!("{}: unexpected error {error:?}", fx.name),
    }
    assert_eq!(error.backend(), "vumi");
}

#[test]
fn every_fixture_is_in_exactly_one_group() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let mut on_disk: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            e.unwrap()
                .file_name()
                .to_string_lossy()
                .trim_end_matches(".json")
                .to_owned()
        })
        .collect();
    on_disk.sort();
    let listed: Vec<String> = ALL.iter().map(|(n, _)| (*n).to_owned()).collect();
    assert_eq!(on_disk, listed);
    let mut grouped: Vec<&str> = SENT_AS_RECORDED
        .iter()
        .chain(REJECTED_BEFORE_SENDING)
        .chain(NOT_EXPRESSIBLE)
        .copied()
        .collect();
    grouped.sort_unstable();
    assert_eq!(grouped, listed);
}

#[test]
fn the_core_default_parser_reads_every_recorded_error_body() {
    use metrics_core::http::default_error_body;
    use metrics_core::reqwest::{StatusCode, header::HeaderMap};
    for (name, _) in ALL {
        let fx = fixture(name);
        if fx.status() < 400 || !fx.body().is_object() {
            continue;
        }
        let status = StatusCode::from_u16(fx.status()).unwrap();
        let parsed = default_error_body(status, &HeaderMap::new(), &fx.body_bytes());
        assert_eq!(parsed.message.as_deref(), Some(fx.reason()), "{name}");
        // `status_code` is not an error code of its own.
        assert_eq!(parsed.code, None, "{name}");
    }
}

#[tokio::test]
async fn recorded_requests_are_sent_exactly_and_answers_typed() {
    for name in SENT_AS_RECORDED {
        let fx = fixture(name);
        let server = MockServer::start_async().await;
        let mock = fx.serve_exact(&server).await;
        let client = fx.client(&server.url("/api"));
        if fx.path() == "/health/" {
            client.health().await.unwrap();
        } else if fx.method() == "GET" {
            if fx.name == "get_unix_timestamp_mixed_with_relative" {
                // Recorded when `from` was two hours ago: the outcome depends on the clock.
                let query = fx.metrics_query();
                let points = predicted_points(
                    query.from().unwrap(),
                    &TimeSpec::now(),
                    vumi_client::time::Interval::DEFAULT,
                    1,
                    chrono::Utc::now(),
                )
                .unwrap();
                if points > 10_000 {
                    assert!(matches!(
                        client.query(&query).await,
                        Err(Error::InvalidInput { .. })
                    ));
                    assert_eq!(mock.calls_async().await, 0);
                    continue;
                }
            }
            let result = client.query(&fx.metrics_query()).await;
            if fx.status() == 200 {
                let data = result.unwrap_or_else(|e| panic!("{name}: {e}"));
                let expected = fx.body().as_object().unwrap();
                assert_eq!(data.len(), expected.len(), "{name}");
                for (metric, points) in expected {
                    let series = data.get(metric).unwrap();
                    let points = points.as_array().unwrap();
                    assert_eq!(series.points.len(), points.len(), "{name}");
                    for (got, want) in series.points.iter().zip(points) {
                        assert_eq!(
                            got.time.timestamp_millis(),
                            want["x"].as_i64().unwrap(),
                            "{name}"
                        );
                        assert_eq!(got.value, want["y"].as_f64(), "{name}");
                    }
                }
            } else {
                assert_maps_to_recorded_error(&fx, &result.unwrap_err());
            }
        } else {
            let entries = fx.fire_entries();
            let fired = client
                .fire(entries.iter().map(|(n, v)| (n.as_str(), *v)))
                .await
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            let expected: Vec<FiredMetric> = serde_json::from_value(fx.body().clone()).unwrap();
            // In the order fired, whatever order the server answered in.
            let names: Vec<&str> = fired.iter().map(|f| f.name.as_str()).collect();
            let sent: Vec<&str> = entries.iter().map(|(n, _)| n.as_str()).collect();
            assert_eq!(names, sent, "{name}");
            for one in &fired {
                assert!(expected.contains(one), "{name}: {one:?}");
            }
        }
        assert_eq!(mock.calls_async().await, 1, "{name}");
    }
}

#[tokio::test]
async fn invalid_recorded_requests_are_refused_before_sending() {
    for name in REJECTED_BEFORE_SENDING {
        let fx = fixture(name);
        let server = MockServer::start_async().await;
        let mock = fx.serve_any(&server, fx.path()).await;
        let client = fx.client(&server.url("/api"));
        let refused = if fx.method() == "GET" {
            let query = if fx.name == "get_empty_from_uses_default" {
                MetricsQuery::new()
                    .with_metric("stores.a.b.last")
                    .with_from("")
            } else {
                fx.metrics_query()
            };
            client.query(&query).await.unwrap_err()
        } else {
            let entries = fx.fire_entries();
            client
                .fire(entries.iter().map(|(n, v)| (n.as_str(), *v)))
                .await
                .unwrap_err()
        };
        assert!(
            matches!(
                refused,
                Error::InvalidInput {
                    backend: "vumi",
                    ..
                }
            ),
            "{name}: {refused:?}"
        );
        assert_eq!(mock.calls_async().await, 0, "{name}: a request was sent");
        if fx.status() == 400 && fx.reason().contains("data points requested") {
            // The client's message is the server's (the count depends on the clock).
            assert!(
                refused
                    .to_string()
                    .contains("data points requested, maximum allowed is 10000"),
                "{refused}"
            );
        }
    }
}

#[tokio::test]
async fn size_limited_requests_reach_the_server_without_the_check() {
    for name in [
        "get_size_limit_exceeded_400",
        "get_absolute_from_until_now_size_400",
    ] {
        let fx = fixture(name);
        let server = MockServer::start_async().await;
        let mock = fx.serve_exact(&server).await;
        let client = VumiClient::builder()
            .with_base_url(server.url("/api"))
            .with_owner_id("owner-1")
            .without_size_check()
            .with_retry(RetryConfig::none())
            .build()
            .unwrap();
        let error = client.query(&fx.metrics_query()).await.unwrap_err();
        assert_maps_to_recorded_error(&fx, &error);
        assert_eq!(mock.calls_async().await, 1);
    }
    // The size check's own message starts with the server's exactly, for the query sent as
    // one request and as `query` splits it (one metric: the same count).
    let fx = fixture("get_size_limit_exceeded_400");
    let error = fx.metrics_query().to_params(Some(10_000)).unwrap_err();
    assert_eq!(
        error.to_string(),
        format!(
            "vumi: invalid input: {}; narrow the time range, widen the interval or query fewer metrics at once",
            fx.reason()
        )
    );
    let error = fx.metrics_query().validate(Some(10_000)).unwrap_err();
    assert_eq!(
        error.to_string(),
        format!(
            "vumi: invalid input: {}; narrow the time range or widen the interval (one metric alone asks for that many)",
            fx.reason()
        )
    );
}

#[tokio::test]
async fn recorded_error_answers_map_to_typed_errors() {
    // Answers to requests the client refuses or cannot express, served to a valid request.
    for name in REJECTED_BEFORE_SENDING.iter().chain(NOT_EXPRESSIBLE) {
        let fx = fixture(name);
        let server = MockServer::start_async().await;
        let mock = fx.serve_any(&server, "/api/metrics/").await;
        let client = VumiClient::builder()
            .with_base_url(server.url("/api"))
            .with_owner_id("owner-1")
            .with_retry(RetryConfig::none())
            .build()
            .unwrap();
        if fx.status() == 200 && fx.method() == "GET" {
            // get_empty_from_uses_default: the server's default applies, as when unset.
            let data = client
                .query(&MetricsQuery::new().with_metric("stores.a.b.last"))
                .await
                .unwrap();
            assert_eq!(data.series()[0].points.len(), 4, "{name}");
            assert_eq!(mock.calls_async().await, 1, "{name}");
            continue;
        }
        let error = if fx.method() == "GET" {
            client
                .query(&MetricsQuery::new().with_metric("stores.a.b.last"))
                .await
                .unwrap_err()
        } else {
            client.fire([("stores.a.b.last", 1.0)]).await.unwrap_err()
        };
        match fx.name {
            "post_nan_string_invalid_json_reply" => {
                assert!(matches!(error, Error::Decode { .. }), "{name}: {error:?}");
            }
            "method_put_405" => {
                assert!(
                    matches!(
                        error,
                        Error::Unsupported {
                            status: Some(405),
                            ..
                        }
                    ),
                    "{name}: {error:?}"
                );
            }
            "route_no_trailing_slash_404" => {
                let Error::NotFound { message, .. } = &error else {
                    panic!("{name}: {error:?}");
                };
                assert!(message.contains("404: Not Found"), "{message}");
                assert!(message.contains("path prefix"), "{message}");
            }
            _ => assert_maps_to_recorded_error(&fx, &error),
        }
        assert_eq!(mock.calls_async().await, 1, "{name}");
    }
}

#[tokio::test]
async fn requests_the_client_cannot_express() {
    let server = MockServer::start_async().await;
    let mock = server
        .mock_async(|when, then| {
            when.method(GET).path("/api/metrics/");
            then.status(200).body("{}");
        })
        .await;
    let client = VumiClient::builder()
        .with_base_url(server.url("/api"))
        .with_owner_id("owner-1")
        .build()
        .unwrap();
    // get_from_repeated_500: a second `from` replaces the first; one is sent.
    let query = MetricsQuery::new()
        .with_metric("stores.a.b.last")
        .with_from("-1d")
        .with_from("-2d");
    client.query(&query).await.unwrap();
    let params: BTreeMap<String, Vec<String>> =
        query
            .to_params(None)
            .unwrap()
            .into_iter()
            .fold(BTreeMap::new(), |mut map, (k, v)| {
                map.entry(k).or_default().push(v);
                map
            });
    assert_eq!(params["from"], ["-2d"]);
    assert_eq!(mock.calls_async().await, 1);
    // get_nulls_unrecognised_400: `nulls` is an enum; post_list_body_400 and
    // post_invalid_json_400: the body is always an object of numbers; method_put_405: the
    // client has no PUT; route_no_trailing_slash_404: every request ends in `metrics/`.
    assert_eq!(
        Nulls::Keep.as_str(),
        fixture("get_nulls_keep").query()[1].1.as_str()
    );
}
