//! Every reference fixture decoded, the documented request shapes replayed through httpmock,
//! the failure modes mapped to typed errors, and secrets kept out of every output.

use std::time::Duration;

use appoptics_client::error::{AppOpticsError, AppOpticsErrorKind, parse_error_body};
use appoptics_client::model::{
    Alert, AlertSpec, AlertStatus, AlertsStatus, AnnotationEvent, AnnotationStream, Chart,
    ChartType, CompositeResult, Condition, ConditionTag, Link, Measurement, Measurements, Metric,
    MetricSpec, MetricType, NewAnnotation, Page, Service, Space, Stream, StreamTag, Summary,
    SummaryFunction, Threshold, tags,
};
use appoptics_client::{
    AnnotationQuery, AppOpticsClient, CompositeQuery, ListParams, MeasurementsQuery,
};
use chrono::{TimeZone, Utc};
use httpmock::prelude::*;
use metrics_core::reqwest::StatusCode;
use metrics_core::reqwest::header::HeaderMap;
use metrics_core::{ClientOptions, Error, RetryConfig};
use serde_json::{Value, json};

const TOKEN: &str = "tok123";

fn fixture(name: &str) -> Value {
    let text = match name {
        "alert_create" => include_str!("fixtures/alert_create.json"),
        "alerts_list_and_status" => include_str!("fixtures/alerts_list_and_status.json"),
        "annotation_event_create" => include_str!("fixtures/annotation_event_create.json"),
        "annotation_streams" => include_str!("fixtures/annotation_streams.json"),
        "charts" => include_str!("fixtures/charts.json"),
        "composite_query_response" => include_str!("fixtures/composite_query_response.json"),
        "composite_query_response_series" => {
            include_str!("fixtures/composite_query_response_series.json")
        }
        "error_bodies" => include_str!("fixtures/error_bodies.json"),
        "measurements_get_next_link" => include_str!("fixtures/measurements_get_next_link.json"),
        "measurements_get_series" => include_str!("fixtures/measurements_get_series.json"),
        "measurements_post_2xx_with_errors" => {
            include_str!("fixtures/measurements_post_2xx_with_errors.json")
        }
        "measurements_post_python_queue_chunk" => {
            include_str!("fixtures/measurements_post_python_queue_chunk.json")
        }
        "measurements_post_summary" => include_str!("fixtures/measurements_post_summary.json"),
        "measurements_post_top_level_tags" => {
            include_str!("fixtures/measurements_post_top_level_tags.json")
        }
        "metric_get_gauge" => include_str!("fixtures/metric_get_gauge.json"),
        "metric_put_composite" => include_str!("fixtures/metric_put_composite.json"),
        "metrics_list_filtered" => include_str!("fixtures/metrics_list_filtered.json"),
        "metrics_list_page" => include_str!("fixtures/metrics_list_page.json"),
        "services_list" => include_str!("fixtures/services_list.json"),
        "spaces" => include_str!("fixtures/spaces.json"),
        other => panic!("no fixture {other}"),
    };
    serde_json::from_str(text).unwrap()
}

fn decode<T: serde::de::DeserializeOwned>(value: &Value) -> T {
    serde_json::from_value(value.clone()).unwrap()
}

fn client(server: &MockServer) -> AppOpticsClient {
    AppOpticsClient::builder()
        .with_token(TOKEN)
        .with_base_url(server.url("/v1"))
        .with_retry(RetryConfig::none())
        .build()
        .unwrap()
}

fn json_reply(then: httpmock::Then, status: u16, body: &Value) {
    then.status(status)
        .header("content-type", "application/json;charset=utf-8")
        .body(body.to_string());
}

// ---------------------------------------------------------------------------------------------
// Metrics

#[tokio::test]
async fn metrics_list_page_and_auth_header() {
    let server = MockServer::start_async().await;
    let page = fixture("metrics_list_page");
    let mock = server
        .mock_async(|when, then| {
            when.method(GET)
                .path("/v1/metrics")
                .header("authorization", "Basic dG9rMTIzOg==");
            json_reply(then, 200, &page);
        })
        .await;
    let metrics = client(&server)
        .list_metrics(&ListParams::new())
        .await
        .unwrap();
    mock.assert_async().await;
    assert_eq!(metrics.query.found, Some(2));
    assert_eq!(metrics.items.len(), 2);
    assert_eq!(metrics.items[0].name, "app_requests");
    assert_eq!(
        metrics.items[1].attributes.display_units_short.as_deref(),
        Some("°F")
    );
    assert_eq!(metrics.items[1].attributes.display_max, None);
    assert_eq!(metrics.items[1].attributes.display_min, Some(0.0));
    assert_eq!(metrics.items[0].metric_type, MetricType::Gauge);
}

#[tokio::test]
async fn metrics_list_filtered_request_shape() {
    let server = MockServer::start_async().await;
    let fx = fixture("metrics_list_filtered");
    let mock = server
        .mock_async(|when, then| {
            when.method(GET)
                .path("/v1/metrics")
                .query_param("name", "api")
                .query_param("offset", "20")
                .query_param("length", "10");
            json_reply(then, 200, &fx["response"]);
        })
        .await;
    let page = client(&server)
        .list_metrics(
            &ListParams::new()
                .with_name("api")
                .with_offset(20)
                .with_length(10),
        )
        .await
        .unwrap();
    mock.assert_async().await;
    assert_eq!(page.query.found, Some(50));
    assert_eq!(page.query.total, Some(200));
    let metric = &page.items[0];
    assert_eq!(metric.period, Some(300));
    assert_eq!(metric.attributes.aggregate, Some(true));
    assert_eq!(metric.attributes.gap_detection, Some(false));
    assert_eq!(
        metric.attributes.summarize_function,
        Some(SummaryFunction::Average)
    );
    assert_eq!(metric.source_lag, None);
}

#[test]
fn metric_get_gauge_decodes() {
    let metric: Metric = decode(&fixture("metric_get_gauge"));
    assert_eq!(metric.name, "cpu_temp");
    assert_eq!(
        metric.description.as_deref(),
        Some("Current CPU temperature in Fahrenheit")
    );
    assert_eq!(metric.attributes.display_stacked, Some(true));
    assert!(
        metric
            .attributes
            .created_by_ua
            .unwrap()
            .starts_with("librato-metrics")
    );
}

#[tokio::test]
async fn metric_put_composite_request_and_response() {
    let server = MockServer::start_async().await;
    let fx = fixture("metric_put_composite");
    let body = fx["request"]["body"].clone();
    let mock = server
        .mock_async(|when, then| {
            when.method(PUT)
                .path("/v1/metrics/librato.cpu.percent.used")
                .header("content-type", "application/json")
                .json_body(body);
            then.status(201)
                .header("content-type", "application/json")
                .header("location", "/v1/metrics/librato.cpu.percent.used")
                .body(fx["response"]["body"].to_string());
        })
        .await;
    let metric = client(&server)
        .create_composite(
            "librato.cpu.percent.used",
            fx["request"]["body"]["composite"].as_str().unwrap(),
            &MetricSpec::new(),
        )
        .await
        .unwrap();
    mock.assert_async().await;
    assert_eq!(metric.metric_type, MetricType::Composite);
    assert!(
        metric
            .composite
            .unwrap()
            .starts_with("s(\"librato.cpu.percent.user\"")
    );
    assert_eq!(metric.period, None);
    // The Python library's create_composite body: description, composite, type.
    let python = &fx["python_create_composite_request"]["body"];
    let spec = MetricSpec::new()
        .with_description("d")
        .with_composite(python["composite"].as_str().unwrap());
    assert_eq!(serde_json::to_value(&spec).unwrap(), *python);
}

// ---------------------------------------------------------------------------------------------
// Measurements

#[tokio::test]
async fn measurements_get_series_request_shape() {
    let server = MockServer::start_async().await;
    let fx = fixture("measurements_get_series");
    let mock = server
        .mock_async(|when, then| {
            when.method(GET)
                .path("/v1/measurements/AWS.EC2.DiskWriteBytes")
                .query_param("resolution", "60")
                .query_param("duration", "86400")
                .query_param("tags[region]", "us-*")
                .query_param("tags[name]", "prod");
            json_reply(then, 200, &fx["response"]);
        })
        .await;
    let read = client(&server)
        .get_measurements(
            "AWS.EC2.DiskWriteBytes",
            &MeasurementsQuery::last(Duration::from_secs(86_400))
                .with_resolution(60)
                .with_tag("region", "us-*")
                .with_tag("name", "prod"),
        )
        .await
        .unwrap();
    mock.assert_async().await;
    assert_eq!(read.resolution, Some(60));
    assert_eq!(read.series.len(), 2);
    assert_eq!(read.series[0].tags["region"], "us-east");
    assert_eq!(read.series[0].measurements[2].value, Some(758.0));
    assert_eq!(read.series[0].measurements[0].time, 1_476_218_700);
    assert!(read.links.is_empty());
    let search: Measurements = decode(&fx["response_tags_search"]);
    assert_eq!(search.series[0].tags["db"], "db-prod-1");
}

#[tokio::test]
async fn measurements_follow_next_link() {
    let server = MockServer::start_async().await;
    let fx = fixture("measurements_get_next_link");
    let mut first_page = fx["more"].clone();
    first_page["series"] =
        json!([{"tags": {"h": "a"}, "measurements": [{"time": 1, "value": 1.0}]}]);
    let mut last_page = fx["last"].clone();
    last_page["series"] =
        json!([{"tags": {"h": "a"}, "measurements": [{"time": 3, "value": 2.0}]}]);
    let next = server
        .mock_async(|when, then| {
            when.method(GET)
                .path("/v1/measurements/foo")
                .query_param("start_time", "1234")
                .query_param("resolution", "3");
            json_reply(then, 200, &last_page);
        })
        .await;
    let first = server
        .mock_async(|when, then| {
            when.method(GET)
                .path("/v1/measurements/foo")
                .query_param("duration", "60");
            json_reply(then, 200, &first_page);
        })
        .await;
    let read = client(&server)
        .get_measurements(
            "foo",
            &MeasurementsQuery::last(Duration::from_secs(60)).with_resolution(3),
        )
        .await
        .unwrap();
    first.assert_async().await;
    // The link points at api.appoptics.com: only its path and query were used.
    next.assert_async().await;
    assert_eq!(read.series.len(), 1);
    assert_eq!(read.series[0].measurements.len(), 2);
    assert!(read.next_link().is_none());
}

#[tokio::test]
async fn measurements_post_2xx_with_errors_is_a_failure() {
    let server = MockServer::start_async().await;
    let fx = fixture("measurements_post_2xx_with_errors");
    server
        .mock_async(|when, then| {
            when.method(POST).path("/v1/measurements");
            json_reply(then, 202, &fx["body"]);
        })
        .await;
    let err = client(&server)
        .submit(Measurement::new("cpu", 1.0).with_tag("h", "a"))
        .await
        .unwrap_err();
    assert!(matches!(&err, Error::Api { status: 202, .. }), "{err:?}");
    let detail = AppOpticsError::of(&err).unwrap();
    assert_eq!(detail.kind, AppOpticsErrorKind::PartialFailure);
    assert_eq!(detail.reasons, ["params: name: is not present"]);
    assert!(
        err.to_string().contains("params: name: is not present"),
        "{err}"
    );
}

#[test]
fn measurements_post_summary_serializes_like_the_fixture() {
    let fx = fixture("measurements_post_summary");
    let expected = &fx["measurements"][0];
    let m = Measurement::summary(
        "cpu",
        Summary::new(3, 35.0)
            .with_min(4.5)
            .with_max(6.7)
            .with_last(2.5)
            .with_stddev(1.34),
    )
    .with_timestamp(1_421_530_163)
    .with_period(60)
    .with_attributes(serde_json::from_value(json!({"aggregate": false})).unwrap())
    .with_tags(tags([
        ("region", "us-east-1"),
        ("az", "b"),
        ("role", "kafka"),
        ("environment", "prod"),
        ("instance", "3"),
    ]));
    assert_eq!(serde_json::to_value(&m).unwrap(), *expected);
}

#[tokio::test]
async fn measurements_post_python_queue_chunk_tags_match() {
    // The Python library's queue chunk: the same tag resolution, checked where it lands.
    let fx = fixture("measurements_post_python_queue_chunk");
    let emulator = metrics_emulators::appoptics::AppOpticsEmulator::start()
        .await
        .unwrap();
    let client = AppOpticsClient::builder()
        .with_token(TOKEN)
        .with_base_url(emulator.api_url())
        .with_tags(tags([("region", "us-east-1")]))
        .build()
        .unwrap();
    let queue = client.queue().with_tag("svc", "api").build().unwrap();
    queue.add("x", 1.0).await.unwrap();
    queue
        .add_tagged("y", 2.0, tags([("a", "b")]))
        .await
        .unwrap();
    queue
        .add_measurement(
            Measurement::new("z", 3.0)
                .with_tags(tags([("svc", "q"), ("a", "b")]))
                .with_inherit_tags(true)
                .with_timestamp(5),
        )
        .await
        .unwrap();
    queue.submit().await.unwrap();
    for expected in fx["measurements"].as_array().unwrap() {
        let name = expected["name"].as_str().unwrap();
        let stored = emulator.stored_points(name);
        assert_eq!(stored.len(), 1, "{name}");
        let want: std::collections::BTreeMap<String, String> = decode(&expected["tags"]);
        assert_eq!(stored[0].tags, want, "{name}");
        assert_eq!(stored[0].value, expected["sum"].as_f64().unwrap());
        if let Some(time) = expected["time"].as_i64() {
            assert_eq!(stored[0].time, time);
        }
    }
}

#[test]
fn measurements_post_top_level_tags_fixture_shapes() {
    // The emulator side of this fixture is tested in metrics-emulators; here: the client
    // never sends top-level tags for measurements that carry their own.
    let fx = fixture("measurements_post_top_level_tags");
    assert_eq!(fx["streams_current_doc"][2]["tags"]["name"], "web-prod-3");
    assert_eq!(fx["streams_if_merged"][0]["tags"]["region"], "us-west");
}

// ---------------------------------------------------------------------------------------------
// Composites

#[tokio::test]
async fn composite_query_request_and_array_response() {
    let server = MockServer::start_async().await;
    let fx = fixture("composite_query_response");
    let compose =
        r#"derive(s("librato.disk.disk_ops.read", {"host":"host-1"}), {detect_reset: "true"})"#;
    let mock = server
        .mock_async(|when, then| {
            when.method(GET)
                .path("/v1/measurements")
                .query_param("compose", compose)
                .query_param("start_time", "1484678910")
                .query_param("resolution", "60");
            json_reply(then, 200, &fx["response"]);
        })
        .await;
    let result = client(&server)
        .get_composite(&CompositeQuery::new(
            compose,
            Utc.timestamp_opt(1_484_678_910, 0).unwrap(),
        ))
        .await
        .unwrap();
    mock.assert_async().await;
    assert_eq!(result.series.len(), 1);
    let series = &result.series[0];
    assert_eq!(series.tags["disk"], "disk0");
    assert_eq!(series.measurements[1].value, Some(738.0));
    let metric = series.metric.as_ref().unwrap();
    assert_eq!(metric.name.as_deref(), Some("librato.disk.disk_ops.read"));
    assert_eq!(metric.period, Some(60));
    assert_eq!(series.period, Some(60));
}

#[test]
fn composite_query_response_series_object_form() {
    let result: CompositeResult = decode(&fixture("composite_query_response_series"));
    assert_eq!(result.compose.as_deref(), Some("s(\"foo\", \"*\")"));
    assert_eq!(result.resolution, Some(1));
    assert_eq!(result.series[0].tags["one"], "1");
    assert_eq!(result.series[0].measurements[0].value, Some(42.0));
    assert_eq!(
        result.series[0].query.as_ref().unwrap()["metric"],
        "temperature"
    );
}

// ---------------------------------------------------------------------------------------------
// Annotations

#[tokio::test]
async fn annotation_event_create_and_link() {
    let server = MockServer::start_async().await;
    let fx = fixture("annotation_event_create");
    let create = server
        .mock_async(|when, then| {
            when.method(POST)
                .path("/v1/annotations/api-deploys")
                .json_body(fx["request"]["body"].clone());
            then.status(201)
                .header("location", "/v1/annotations/api-deploys/123")
                .header("content-type", "application/json")
                .body(fx["response"]["body"].to_string());
        })
        .await;
    let link_fx = &fx["add_link"];
    let link = server
        .mock_async(|when, then| {
            when.method(POST)
                .path("/v1/annotations/app-deploys/198/links")
                .json_body(link_fx["request"]["body"].clone());
            json_reply(then, 201, &link_fx["response"]["body"]);
        })
        .await;
    let client = client(&server);
    let event = client
        .post_annotation(
            "api-deploys",
            &NewAnnotation::new("My Annotation")
                .with_description("Joe deployed v29 to metrics")
                .with_start_time(Utc.timestamp_opt(1_234_567_890, 0).unwrap())
                .with_link(
                    Link::new("github", "https://git.example.com/librato/librato-metrics")
                        .with_label("Metrics Gem"),
                ),
        )
        .await
        .unwrap();
    create.assert_async().await;
    assert_eq!(event.id, 123);
    assert_eq!(event.source, None);
    assert_eq!(event.end_time, None);
    let added = client
        .add_annotation_link(
            "app-deploys",
            198,
            &Link::new("github", "https://git.example.com/acme/app/commits/01beaf")
                .with_label("Github Commit"),
        )
        .await
        .unwrap();
    link.assert_async().await;
    assert_eq!(added.label.as_deref(), Some("Github Commit"));
}

#[tokio::test]
async fn annotation_streams_list_get_and_event() {
    let server = MockServer::start_async().await;
    let fx = fixture("annotation_streams");
    let get = server
        .mock_async(|when, then| {
            when.method(GET)
                .path("/v1/annotations/api-deploys")
                .query_param("start_time", "1234500000")
                .query_param("end_time", "1234600000")
                .query_param("sources[]", "db1.acme")
                .query_param("sources[]", "db2.acme");
            json_reply(then, 200, &fx["get_stream_response"]);
        })
        .await;
    let stream = client(&server)
        .get_annotation_stream(
            "api-deploys",
            &AnnotationQuery::since(Utc.timestamp_opt(1_234_500_000, 0).unwrap())
                .with_end_time(Utc.timestamp_opt(1_234_600_000, 0).unwrap())
                .with_source("db1.acme")
                .with_source("db2.acme"),
        )
        .await
        .unwrap();
    get.assert_async().await;
    assert_eq!(stream.display_name.as_deref(), Some("Deploys to API"));
    assert_eq!(stream.events["unassigned"].len(), 1);
    assert_eq!(stream.events["foo3.example.com"].len(), 2);
    assert_eq!(stream.events["unassigned"][0].links.len(), 2);
    let all = stream.all_events();
    assert_eq!(all.len(), 3);
    assert_eq!(all[2].title, "Chef run finished");

    let list: Page<AnnotationStream> = decode(&fx["list_response"]);
    assert_eq!(list.items[1].name, "app-deploys");
    let event: AnnotationEvent = decode(&fx["event_get_response"]);
    assert_eq!(event.id, 189);
    // The Python fake's invented stream shape still decodes as a stream.
    let fake: AnnotationStream = decode(&fx["python_fake_server_response"]);
    assert_eq!(fake.name, "My_Annotation");
}

// ---------------------------------------------------------------------------------------------
// Spaces and charts

#[tokio::test]
async fn spaces_create_rename_get_list() {
    let server = MockServer::start_async().await;
    let fx = fixture("spaces");
    let create = server
        .mock_async(|when, then| {
            when.method(POST)
                .path("/v1/spaces")
                .json_body(fx["create"]["request"]["body"].clone());
            json_reply(then, 201, &fx["create"]["response"]["body"]);
        })
        .await;
    let update = server
        .mock_async(|when, then| {
            when.method(PUT)
                .path("/v1/spaces/129")
                .json_body(fx["update"]["request"]["body"].clone());
            then.status(204);
        })
        .await;
    let client = client(&server);
    let space = client.create_space("CPUs").await.unwrap();
    assert_eq!((space.id, space.name.as_str()), (129, "CPUs"));
    client.rename_space(129, "MEMORY").await.unwrap();
    create.assert_async().await;
    update.assert_async().await;
    let got: Space = decode(&fx["get_response"]);
    assert_eq!(got.chart_ids(), vec![915, 1321, 47842, 922]);
    let list: Page<Space> = decode(&fx["list_response"]);
    assert_eq!((list.query.found, list.query.total), (Some(1), Some(15)));
    assert!(list.items[0].chart_ids().is_empty());
}

#[tokio::test]
async fn charts_create_line_with_stream_tags() {
    let server = MockServer::start_async().await;
    let fx = fixture("charts");
    let create = &fx["create_line"];
    let mock = server
        .mock_async(|when, then| {
            when.method(POST)
                .path("/v1/spaces/123/charts")
                .json_body(create["request"]["body"].clone());
            json_reply(then, 201, &create["response"]["body"]);
        })
        .await;
    let chart = Chart::new("CPU Usage")
        .with_type(ChartType::Line)
        .with_stream(
            Stream::metric("librato.cpu.percent.idle")
                .with_tag(StreamTag::values("environment", ["*"])),
        )
        .with_stream(
            Stream::metric("librato.cpu.percent.user").with_tag(StreamTag::dynamic("environment")),
        );
    let created = client(&server).create_chart(123, &chart).await.unwrap();
    mock.assert_async().await;
    assert_eq!(created.id, Some(1_234_567));
    assert_eq!(created.streams[0].stream_type.as_deref(), Some("gauge"));
    assert_eq!(created.thresholds, None);

    let bignumber = Chart::new("CPU Usage")
        .with_type(ChartType::Bignumber)
        .with_stream(
            Stream::metric("librato.cpu.percent.user")
                .with_tag(StreamTag::values("environment", ["prod"])),
        )
        .with_threshold(Threshold {
            operator: ">".into(),
            value: 90.0,
            threshold_type: "red".into(),
        });
    let mut expected = fx["create_bignumber_request_body"].clone();
    expected["thresholds"][0]["value"] = json!(90.0);
    assert_eq!(serde_json::to_value(&bignumber).unwrap(), expected);
    let listed: Vec<Chart> = decode(&fx["list_in_space_response"]);
    assert_eq!(listed[0].streams[0].id, Some(27_035_309));
}

#[tokio::test]
async fn charts_update_composite_returns_the_chart() {
    let server = MockServer::start_async().await;
    let fx = fixture("charts");
    let update = &fx["update_composite"];
    let mut sent = update["request"]["body"].clone();
    sent["name"] = json!("CPU Usage");
    let mock = server
        .mock_async(|when, then| {
            when.method(PUT)
                .path("/v1/spaces/123/charts/1234567")
                .json_body(sent);
            json_reply(then, 200, &update["response"]["body"]);
        })
        .await;
    let chart = Chart::new("CPU Usage")
        .with_type(ChartType::Line)
        .with_stream(Stream::composite(
            update["request"]["body"]["streams"][0]["composite"]
                .as_str()
                .unwrap(),
        ));
    let updated = client(&server)
        .update_chart(123, 1_234_567, &chart)
        .await
        .unwrap();
    mock.assert_async().await;
    assert_eq!(updated.streams[0].stream_type.as_deref(), Some("composite"));
}

#[test]
fn chart_read_and_written_back_keeps_tags_and_color() {
    let fx = fixture("charts");
    let case = &fx["python_update_after_get_drops_tags"];
    let chart: Chart = decode(&case["chart_as_read"]);
    let written = serde_json::to_value(&chart).unwrap();
    assert_eq!(
        written["streams"][0]["tags"],
        case["chart_as_read"]["streams"][0]["tags"]
    );
    assert_eq!(written["streams"][0]["color"], "#52D74C");
    // What Python sent lost them; this client does not.
    assert!(case["python_put_body"]["streams"][0].get("tags").is_none());
    assert!(written["streams"][0].get("source").is_none());
}

// ---------------------------------------------------------------------------------------------
// Alerts and services

#[tokio::test]
async fn alert_create_request_and_response() {
    let server = MockServer::start_async().await;
    let fx = fixture("alert_create");
    let mut expected = fx["request"]["body"].clone();
    expected["version"] = json!(2);
    // The same number; JSON values compare integer and float forms as different.
    expected["conditions"][0]["threshold"] = json!(200.0);
    let mock = server
        .mock_async(|when, then| {
            when.method(POST).path("/v1/alerts").json_body(expected);
            then.status(201)
                .header("location", "/v1/alerts/123")
                .header("content-type", "application/json")
                .body(fx["response"]["body"].to_string());
        })
        .await;
    let spec = AlertSpec::new("production.web.frontend.response_time")
        .with_description("Web Response Time")
        .with_condition(
            Condition::above("web.nginx.response_time", 200.0)
                .with_summary_function(SummaryFunction::Max)
                .with_tag(ConditionTag {
                    name: "tag_name".into(),
                    grouped: false,
                    values: vec!["tag_value".into()],
                }),
        )
        .with_service(849)
        .with_attribute("runbook_url", "http://runbooks.example.com/response_time")
        .with_active(true)
        .with_md(true);
    let alert = client(&server).create_alert(&spec).await.unwrap();
    mock.assert_async().await;
    assert_eq!(alert.id, 1_234_567);
    assert_eq!(alert.services[0].id, 17_584);
    assert_eq!(alert.services[0].service_type, "slack");
    assert_eq!(alert.conditions[0].id, Some(19_376_030));
    assert_eq!(alert.conditions[0].source, None);
    assert_eq!(alert.rearm_seconds, Some(600));

    // The Python library's bodies decode into the condition model.
    let python: Vec<Condition> = decode(&fx["python_request"]["body"]["conditions"]);
    assert_eq!(python[0].duration, Some(60));
    let update: Vec<Condition> = decode(&fx["python_update_request"]["body"]["conditions"]);
    assert_eq!(update[1].duration, Some(300));
    assert_eq!(update[1].summary_function, None);
}

#[tokio::test]
async fn alerts_list_status_and_service_association() {
    let server = MockServer::start_async().await;
    let fx = fixture("alerts_list_and_status");
    let assoc = &fx["associate_service_request"];
    let mock = server
        .mock_async(|when, then| {
            when.method(POST)
                .path("/v1/alerts/45/services")
                .json_body(assoc["body"].clone());
            then.status(201);
        })
        .await;
    client(&server).add_alert_service(45, 290).await.unwrap();
    mock.assert_async().await;
    let list: Page<Alert> = decode(&fx["list_response"]);
    assert_eq!(list.query.found, Some(2));
    assert_eq!(
        list.items[0].conditions[0].source.as_deref(),
        Some("*prod*")
    );
    assert_eq!(list.items[0].services[0].title, "Ops Team");
    let triggered: AlertStatus = decode(&fx["status_triggered"]);
    assert!(triggered.is_triggered());
    let ok: AlertStatus = decode(&fx["status_ok"]);
    assert!(!ok.is_triggered());
    let all: AlertsStatus = decode(&fx["all_status"]);
    assert_eq!(all.firing.len(), 2);
    assert_eq!(all.cleared[0].cleared_at, 1_454_108_320);
}

#[test]
fn services_list_string_ids() {
    let page: Page<Service> = decode(&fixture("services_list"));
    assert_eq!(page.items[0].id, 145);
    assert_eq!(
        page.items[1].settings["addresses"],
        "george@example.com,fred@example.com"
    );
}

// ---------------------------------------------------------------------------------------------
// Error bodies

#[test]
fn error_bodies_render_like_the_library() {
    for case in fixture("error_bodies").as_array().unwrap() {
        let status =
            StatusCode::from_u16(u16::try_from(case["status"].as_u64().unwrap()).unwrap()).unwrap();
        let body = match &case["body"] {
            Value::String(text) => text.clone(),
            Value::Null => String::new(),
            other => other.to_string(),
        };
        let parsed = parse_error_body(status, &HeaderMap::new(), body.as_bytes());
        let Some(python) = case["python"].as_str() else {
            continue;
        };
        // "BadRequest: [400] message" → message; the list payload is joined, not a repr.
        let expected = python.split_once("] ").map(|(_, m)| m).unwrap();
        let expected = match expected {
            "None" => None,
            "['a', 'b']" => Some("a, b (it already exists; update it with PUT instead)".to_owned()),
            other => Some(other.to_owned()),
        };
        assert_eq!(parsed.message, expected, "{case}");
    }
}

async fn error_for(status: u16, content_type: &str, body: &str) -> Error {
    let server = MockServer::start_async().await;
    server
        .mock_async(|when, then| {
            when.method(GET).path("/v1/metrics/x");
            then.status(status)
                .header("content-type", content_type)
                .body(body);
        })
        .await;
    client(&server).get_metric("x").await.unwrap_err()
}

#[tokio::test]
async fn error_statuses_map_to_typed_errors() {
    let err = error_for(
        401,
        "application/json;charset=utf-8",
        r#"{"errors":{"request":["Authorization Required"]}}"#,
    )
    .await;
    assert!(matches!(err, Error::Unauthenticated { .. }), "{err:?}");
    assert!(err.to_string().contains("request: Authorization Required"));
    let err = error_for(
        401,
        "text/plain",
        "Credentials are required to access this resource.",
    )
    .await;
    assert!(matches!(err, Error::Unauthenticated { .. }), "{err:?}");
    let err = error_for(403, "application/json", r#"{"errors":{"request":["This token is not permitted to perform this action on this resource"]}}"#).await;
    assert!(matches!(err, Error::Forbidden { .. }), "{err:?}");
    let err = error_for(404, "application/json", r#"{"message":"Not found"}"#).await;
    assert!(matches!(err, Error::NotFound { .. }), "{err:?}");
    let err = error_for(400, "application/json", "").await;
    assert!(matches!(err, Error::Api { status: 400, .. }), "{err:?}");
    assert!(err.to_string().contains("Bad Request"), "{err}");
    let err = error_for(422, "application/json", r#"{"errors":["a","b"]}"#).await;
    assert!(matches!(&err, Error::Api { status: 422, .. }), "{err:?}");
    assert_eq!(
        AppOpticsError::of(&err).map(|d| d.kind),
        Some(AppOpticsErrorKind::AlreadyExists)
    );
    assert!(appoptics_client::error::is_already_exists(&err));
    let err = error_for(
        403,
        "application/json",
        r#"{"request_time":1467306906,"error":"You have hit the API limit for measurements [measure:raw_rate]."}"#,
    )
    .await;
    assert!(matches!(&err, Error::RateLimited { .. }), "{err:?}");
    assert_eq!(
        AppOpticsError::of(&err).map(|d| d.kind),
        Some(AppOpticsErrorKind::AccountRateLimited)
    );
    assert!(err.to_string().contains("You have hit the API limit"));
    let err = error_for(
        502,
        "text/html",
        "<html><body><h1>502 Bad Gateway</h1></body></html>",
    )
    .await;
    assert!(matches!(err, Error::Api { status: 502, .. }), "{err:?}");
    assert!(err.is_retryable());
    assert!(err.to_string().contains("502 Bad Gateway"), "{err}");
    let err = error_for(
        503,
        "application/json",
        r#"{"errors":{"system":["maintenance"]}}"#,
    )
    .await;
    assert!(err.to_string().contains("system: maintenance"), "{err}");
    let err = error_for(302, "text/plain", "").await;
    assert!(matches!(err, Error::Api { status: 302, .. }), "{err:?}");
}

#[tokio::test]
async fn rate_limited_429_carries_the_limit_headers() {
    let server = MockServer::start_async().await;
    server
        .mock_async(|when, then| {
            when.method(GET).path("/v1/metrics");
            then.status(429)
                .header("content-type", "application/json")
                .header("x-librato-ratelimit-std", "limit=300,remaining=0,reset=42")
                .body(r#"{"errors":{"request":["Rate limit exceeded"]}}"#);
        })
        .await;
    let err = client(&server)
        .list_metrics(&ListParams::new())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::RateLimited { .. }), "{err:?}");
    let text = err.to_string();
    assert!(text.contains("Rate limit exceeded"), "{text}");
    assert!(
        text.contains("limit=300, remaining=0, reset in 42 s"),
        "{text}"
    );
}

#[tokio::test]
async fn malformed_json_is_a_decode_error() {
    let server = MockServer::start_async().await;
    server
        .mock_async(|when, then| {
            when.method(GET).path("/v1/metrics/cpu");
            then.status(200)
                .header("content-type", "application/json")
                .body(r#"{"name": "cpu", "attributes": {"#);
        })
        .await;
    let err = client(&server).get_metric("cpu").await.unwrap_err();
    assert!(matches!(err, Error::Decode { .. }), "{err:?}");
    server
        .mock_async(|when, then| {
            when.method(GET).path("/v1/metrics/typed");
            then.status(200)
                .header("content-type", "application/json")
                .body(r#"{"name": "typed", "period": "sixty"}"#);
        })
        .await;
    let err = client(&server).get_metric("typed").await.unwrap_err();
    assert!(
        matches!(&err, Error::Decode { path, .. } if path == "period"),
        "{err:?}"
    );
}

#[tokio::test]
async fn timeouts_and_refused_connections() {
    let server = MockServer::start_async().await;
    server
        .mock_async(|when, then| {
            when.method(GET).path("/v1/metrics");
            then.status(200)
                .delay(Duration::from_secs(3))
                .body(r#"{"metrics":[]}"#);
        })
        .await;
    let slow = AppOpticsClient::builder()
        .with_token(TOKEN)
        .with_base_url(server.url("/v1"))
        .with_timeout(Duration::from_millis(200))
        .with_retry(RetryConfig::none())
        .build()
        .unwrap();
    let err = slow.list_metrics(&ListParams::new()).await.unwrap_err();
    assert!(matches!(err, Error::Timeout { .. }), "{err:?}");

    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let refused = AppOpticsClient::builder()
        .with_token(TOKEN)
        .with_base_url(format!("http://127.0.0.1:{port}/v1"))
        .with_retry(RetryConfig::none())
        .build()
        .unwrap();
    let err = refused
        .submit(Measurement::new("cpu", 1.0).with_tag("h", "a"))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Transport { .. }), "{err:?}");
}

#[tokio::test]
async fn secrets_never_show() {
    let secret = "s3cr3t-t0ken-0123456789abcdef";
    let encoded = "czNjcjN0LXQwa2VuLTAxMjM0NTY3ODlhYmNkZWY6"; // base64("<secret>:")
    let builder = AppOpticsClient::builder()
        .with_token(secret)
        .with_client_options(ClientOptions::new().with_user_agent("secret-test"));
    let shown = format!("{builder:?}");
    assert!(
        !shown.contains(secret) && !shown.contains(encoded),
        "{shown}"
    );

    let server = MockServer::start_async().await;
    server
        .mock_async(|when, then| {
            when.any_request();
            then.status(401)
                .body("Credentials are required to access this resource.");
        })
        .await;
    let client = builder
        .with_base_url(server.url("/v1"))
        .with_retry(RetryConfig::none())
        .build()
        .unwrap();
    let err = client.list_metrics(&ListParams::new()).await.unwrap_err();
    let queue = client.queue().build().unwrap();
    for text in [
        format!("{client:?}"),
        format!("{err:?}"),
        format!("{err}"),
        format!("{queue:?}"),
    ] {
        assert!(!text.contains(secret), "{text}");
        assert!(!text.contains(encoded), "{text}");
    }
    let config = AppOpticsClient::builder()
        .with_token(" ")
        .build()
        .unwrap_err();
    assert!(matches!(config, Error::Config { .. }));
    let config = AppOpticsClient::builder()
        .with_token(format!("{secret}é"))
        .build()
        .unwrap_err();
    assert!(!format!("{config:?} {config}").contains(secret));
}
