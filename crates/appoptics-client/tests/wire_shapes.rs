//! Answers that are not what the API documents end in a typed error, never in a loop or an
//! empty success: a list that does not advance, a 200 without its list field.

use std::time::Duration;

use appoptics_client::{AppOpticsClient, ListParams, MeasurementsQuery};
use futures_util::StreamExt as _;
use httpmock::prelude::*;
use metrics_core::{Error, RetryConfig};
use serde_json::json;

fn client(server: &MockServer) -> AppOpticsClient {
    AppOpticsClient::builder()
        .with_token("tok123")
        .with_base_url(server.url("/v1"))
        .with_retry(RetryConfig::none())
        .build()
        .unwrap()
}

fn metric(name: &str) -> serde_json::Value {
    json!({"name": name, "type": "gauge", "period": 60, "attributes": {}})
}

/// The server ignores `offset` and answers the first page every time, with `found: 12`.
/// Before, `list_all_metrics` asked 201 times and yielded 1 001 duplicates (stopped only by
/// the test's `take`); now it reads the first page, sees the second does not advance, and
/// ends with a decode error after two requests.
#[tokio::test]
async fn a_list_that_does_not_advance_ends_with_a_typed_error() {
    let server = MockServer::start_async().await;
    let page = json!({
        "query": {"found": 12, "length": 5, "offset": 0, "total": 12},
        "metrics": (0..5).map(|i| metric(&format!("m{i}"))).collect::<Vec<_>>(),
    });
    let mock = server
        .mock_async(|when, then| {
            when.method(GET).path("/v1/metrics");
            then.status(200)
                .header("content-type", "application/json")
                .body(page.to_string());
        })
        .await;
    let results: Vec<_> = tokio::time::timeout(
        Duration::from_secs(60),
        client(&server)
            .list_all_metrics(ListParams::new().with_length(5))
            .take(1_001)
            .collect::<Vec<_>>(),
    )
    .await
    .expect("the list ended");
    assert_eq!(mock.calls_async().await, 2);
    assert_eq!(results.len(), 6, "five metrics, then the error");
    assert!(results[..5].iter().all(Result::is_ok));
    let err = results[5].as_ref().unwrap_err();
    assert!(
        matches!(
            err,
            Error::Decode {
                backend: "appoptics",
                ..
            }
        ),
        "{err:?}"
    );
    assert!(
        err.to_string().contains("did not advance past offset 5"),
        "{err}"
    );
}

/// A 200 that is not a list (`{"error":"maintenance"}`) is a decode error for every list
/// route and every read whose answer is a list; before, it was an empty success.
#[tokio::test]
async fn an_answer_without_its_list_is_a_decode_error() {
    let server = MockServer::start_async().await;
    server
        .mock_async(|when, then| {
            when.method(GET);
            then.status(200)
                .header("content-type", "application/json")
                .body(r#"{"error":"maintenance"}"#);
        })
        .await;
    let client = client(&server);
    let params = ListParams::new();
    let errors: Vec<(&str, Error)> = vec![
        (
            "list_metrics",
            client.list_metrics(&params).await.unwrap_err(),
        ),
        (
            "list_alerts",
            client.list_alerts(&params).await.unwrap_err(),
        ),
        (
            "list_services",
            client.list_services(&params).await.unwrap_err(),
        ),
        (
            "list_spaces",
            client.list_spaces(&params).await.unwrap_err(),
        ),
        (
            "list_annotation_streams",
            client.list_annotation_streams(&params).await.unwrap_err(),
        ),
        (
            "list_all_metrics",
            std::pin::pin!(client.list_all_metrics(ListParams::new()))
                .next()
                .await
                .unwrap()
                .unwrap_err(),
        ),
        (
            "get_measurements",
            client
                .get_measurements("cpu", &MeasurementsQuery::last(Duration::from_secs(60)))
                .await
                .unwrap_err(),
        ),
        ("alerts_status", client.alerts_status().await.unwrap_err()),
        (
            "get_annotation_stream",
            client
                .get_annotation_stream("deploys", &appoptics_client::AnnotationQuery::last(5))
                .await
                .unwrap_err(),
        ),
        (
            "get_composite",
            client
                .get_composite(&appoptics_client::CompositeQuery::new(
                    r#"s("cpu", "*")"#,
                    chrono::Utc::now() - chrono::Duration::hours(1),
                ))
                .await
                .unwrap_err(),
        ),
    ];
    for (call, err) in errors {
        assert!(matches!(err, Error::Decode { .. }), "{call}: {err:?}");
    }
}

/// Series and points are required inside a read as well: `{"series":[{"tags":{}}]}` is not
/// a read with one empty series.
#[test]
fn nested_lists_are_required() {
    let no_points = r#"{"series":[{"tags":{"a":"b"}}]}"#;
    assert!(serde_json::from_str::<appoptics_client::model::Measurements>(no_points).is_err());
    let ok = r#"{"series":[{"tags":{"a":"b"},"measurements":[]}],"resolution":60}"#;
    assert!(serde_json::from_str::<appoptics_client::model::Measurements>(ok).is_ok());
    let status = r#"{"firing":[]}"#;
    assert!(serde_json::from_str::<appoptics_client::model::AlertsStatus>(status).is_err());
    let empty_page = r#"{"query":{"found":0,"length":0,"offset":0,"total":3},"metrics":[]}"#;
    let page: appoptics_client::model::Page<appoptics_client::model::Metric> =
        serde_json::from_str(empty_page).unwrap();
    assert!(page.items.is_empty());
}

/// The account-wide limit comes as a 403 with `request_time`: it is a rate limit, and its
/// wait is read from the rate-limit headers (before, `retry_after()` was `None`).
#[tokio::test]
async fn an_account_rate_limit_says_how_long_to_wait() {
    let server = MockServer::start_async().await;
    server
        .mock_async(|when, then| {
            when.method(GET).path("/v1/metrics");
            then.status(403)
                .header("content-type", "application/json")
                .header("x-librato-ratelimit-std", "limit=300,remaining=0,reset=42")
                .body(r#"{"request_time":1467306906,"error":"You have hit the API limit"}"#);
        })
        .await;
    let err = client(&server)
        .list_metrics(&ListParams::new())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::RateLimited { .. }), "{err:?}");
    assert_eq!(err.retry_after(), Some(Duration::from_secs(42)));
    assert!(err.disposition().may_resend(false));
    let detail = appoptics_client::error::AppOpticsError::of(&err).unwrap();
    assert_eq!(
        detail.kind,
        appoptics_client::error::AppOpticsErrorKind::AccountRateLimited
    );
    assert_eq!(detail.rate_limit_reset(), Some(Duration::from_secs(42)));
}
