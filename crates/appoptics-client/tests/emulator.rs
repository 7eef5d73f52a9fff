//! The client against the AppOptics emulator, route family by route family: success paths
//! and the server's error answers, retries, rate limits and the `MetricsSource` view.

use std::collections::BTreeSet;
use std::time::Duration;

use appoptics_client::model::{
    AlertSpec, AnnotationUpdate, Chart, Condition, GroupByFunction, Link, MetricAttributes,
    MetricSelector, MetricSpec, MetricType, NewAnnotation, NewService, ReadSummaryFunction, Stream,
    StreamTag, SummaryFunction, tags,
};
use appoptics_client::{
    AnnotationQuery, AppOpticsClient, AppOpticsClientBuilder, CompositeQuery, ListParams,
    Measurement, MeasurementsQuery, Sanitizer, Summary,
};
use chrono::{TimeZone, Utc};
use futures_util::TryStreamExt as _;
use metrics_core::{BackoffConfig, Error, MetricsSource as _, Query, RetryConfig, SeriesKind};
use metrics_emulators::Fault;
use metrics_emulators::appoptics::{AppOpticsEmulator, TagMode};
use serde_json::json;

fn fast_retry() -> RetryConfig {
    RetryConfig::default().with_backoff(BackoffConfig {
        init_backoff: Duration::from_millis(5),
        max_backoff: Duration::from_millis(20),
        base: 2.0,
    })
}

fn builder(emulator: &AppOpticsEmulator) -> AppOpticsClientBuilder {
    AppOpticsClient::builder()
        .with_token("key_test")
        .with_base_url(emulator.api_url())
        .with_tag("host", "web-1")
        .with_retry(fast_retry())
}

async fn start() -> (AppOpticsEmulator, AppOpticsClient) {
    let emulator = AppOpticsEmulator::start().await.unwrap();
    let client = builder(&emulator).build().unwrap();
    (emulator, client)
}

fn at(seconds: i64) -> chrono::DateTime<Utc> {
    Utc.timestamp_opt(seconds, 0).unwrap()
}

const T0: i64 = 1_700_000_100; // a multiple of 180 (and so of 60)

#[tokio::test]
async fn metrics_create_update_get_list_delete() {
    let (emulator, client) = start().await;
    let created = client
        .create_metric(
            "app.requests",
            &MetricSpec::new()
                .with_description("requests per minute")
                .with_period(60)
                .with_attributes(MetricAttributes {
                    display_units_short: Some("req".into()),
                    ..MetricAttributes::default()
                }),
        )
        .await
        .unwrap();
    assert_eq!(created.metric_type, MetricType::Gauge);
    assert_eq!(created.period, Some(60));
    assert!(created.attributes.created_by_ua.is_some());
    // Creating again is an update on the server (204); the current metric is read back.
    let again = client
        .create_metric(
            "APP.REQUESTS",
            &MetricSpec::new().with_display_name("Requests"),
        )
        .await
        .unwrap();
    assert_eq!(again.display_name.as_deref(), Some("Requests"));
    assert_eq!(again.description.as_deref(), Some("requests per minute"));
    client
        .update_metric(
            "app.requests",
            &MetricSpec::new().with_attributes(MetricAttributes {
                display_min: Some(0.0),
                ..MetricAttributes::default()
            }),
        )
        .await
        .unwrap();
    let got = client.get_metric("app.requests").await.unwrap();
    assert_eq!(got.attributes.display_min, Some(0.0));
    assert_eq!(got.attributes.display_units_short.as_deref(), Some("req"));

    for name in ["cpu.0", "cpu.1", "mem"] {
        client
            .create_metric(name, &MetricSpec::new())
            .await
            .unwrap();
    }
    client
        .update_metrics(
            &MetricSelector::Pattern("cpu.*".into()),
            &MetricSpec::new().with_description("cpu"),
        )
        .await
        .unwrap();
    assert_eq!(
        client
            .get_metric("cpu.1")
            .await
            .unwrap()
            .description
            .as_deref(),
        Some("cpu")
    );
    assert_eq!(client.get_metric("mem").await.unwrap().description, None);

    let page = client
        .list_metrics(&ListParams::new().with_name("CPU"))
        .await
        .unwrap();
    assert_eq!((page.query.found, page.query.total), (Some(2), Some(4)));
    client
        .delete_metrics(&MetricSelector::Pattern("cpu*".into()))
        .await
        .unwrap();
    client.delete_metric("mem").await.unwrap();
    assert_eq!(emulator.metric_names(), ["app.requests"]);
    let err = client.get_metric("mem").await.unwrap_err();
    assert!(matches!(err, Error::NotFound { .. }), "{err:?}");
    let err = client.delete_metric("mem").await.unwrap_err();
    assert!(matches!(err, Error::NotFound { .. }), "{err:?}");
}

#[tokio::test]
async fn list_all_ends_on_found_not_total() {
    let (emulator, client) = start().await;
    for i in 0..250 {
        emulator.seed_metric(&json!({"name": format!("metric.{i:03}")}));
    }
    for i in 0..3 {
        emulator.seed_metric(&json!({"name": format!("special.{i}")}));
    }
    emulator.requests().clear();
    let all: Vec<_> = client
        .list_all_metrics(ListParams::new())
        .try_collect()
        .await
        .unwrap();
    assert_eq!(all.len(), 253);
    assert_eq!(emulator.requests().count(), 3);
    let names: BTreeSet<_> = all.iter().map(|m| m.name.clone()).collect();
    assert_eq!(names.len(), 253);

    // found 3, total 253: one request, not the three the Python library made.
    emulator.requests().clear();
    let special: Vec<_> = client
        .list_all_metrics(ListParams::new().with_name("special"))
        .try_collect()
        .await
        .unwrap();
    assert_eq!(special.len(), 3);
    assert_eq!(emulator.requests().count(), 1);

    let err = client
        .list_metrics(&ListParams::new().with_length(101))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvalidInput { .. }));
    let mut stream = std::pin::pin!(client.list_all_metrics(ListParams::new().with_length(0)));
    assert!(matches!(
        stream.try_next().await,
        Err(Error::InvalidInput { .. })
    ));
}

#[tokio::test]
async fn reads_by_time_resolution_tags_and_group_by() {
    let (emulator, client) = start().await;
    for (host, region, base) in [
        ("web-1", "us-east-1", 1.0),
        ("web-2", "us-east-1", 10.0),
        ("web-3", "eu-west-1", 100.0),
    ] {
        emulator.seed_series(
            "cpu",
            &[("host", host), ("region", region)],
            (0..6).map(|i| (T0 + i * 30, base + f64::from(u8::try_from(i).unwrap()))),
        );
    }
    let range = MeasurementsQuery::between(at(T0), at(T0 + 179));
    let all = client
        .get_measurements("cpu", &range.clone().with_resolution(60))
        .await
        .unwrap();
    assert_eq!(all.series.len(), 3);
    assert_eq!(all.resolution, Some(60));
    // Floored to 60 s and averaged: (1+2)/2, (3+4)/2, (5+6)/2.
    let web1: Vec<(i64, f64)> = all.series[0]
        .measurements
        .iter()
        .map(|p| (p.time, p.value.unwrap()))
        .collect();
    assert_eq!(web1, [(T0, 1.5), (T0 + 60, 3.5), (T0 + 120, 5.5)]);

    let east = client
        .get_measurements("cpu", &range.clone().with_tag("region", "us-*"))
        .await
        .unwrap();
    assert_eq!(east.series.len(), 2);
    let either = client
        .get_measurements(
            "cpu",
            &range
                .clone()
                .with_tag("host", "web-1")
                .with_tag("host", "web-3"),
        )
        .await
        .unwrap();
    assert_eq!(either.series.len(), 2);
    let negated = client
        .get_measurements("cpu", &range.clone().with_tag("region", "!us-*"))
        .await
        .unwrap();
    assert_eq!(negated.series[0].tags["host"], "web-3");
    let searched = client
        .get_measurements(
            "cpu",
            &range
                .clone()
                .with_tags_search("region=us-east* and host=!web-1"),
        )
        .await
        .unwrap();
    assert_eq!(searched.series.len(), 1);
    assert_eq!(searched.series[0].tags["host"], "web-2");

    let grouped = client
        .get_measurements(
            "cpu",
            &range
                .clone()
                .with_resolution(60)
                .with_group_by(["region"], GroupByFunction::Sum),
        )
        .await
        .unwrap();
    assert_eq!(grouped.series.len(), 2);
    let us = grouped
        .series
        .iter()
        .find(|s| s.tags.get("region").map(String::as_str) == Some("us-east-1"))
        .unwrap();
    assert_eq!(us.tags.len(), 1);
    assert_eq!(us.measurements[0].value, Some(1.5 + 10.5));
    let everything = client
        .get_measurements(
            "cpu",
            &range
                .clone()
                .with_resolution(180)
                .with_group_by(["*"], GroupByFunction::Max),
        )
        .await
        .unwrap();
    assert_eq!(everything.series.len(), 1);
    assert!(everything.series[0].tags.is_empty());
    assert_eq!(everything.series[0].measurements[0].value, Some(102.5));

    let summaries = client
        .get_measurements(
            "cpu",
            &range
                .clone()
                .with_resolution(180)
                .with_tag("host", "web-1")
                .with_summary_function(ReadSummaryFunction::All),
        )
        .await
        .unwrap();
    let point = &summaries.series[0].measurements[0];
    assert_eq!(
        (point.count, point.sum, point.min, point.max),
        (Some(6.0), Some(21.0), Some(1.0), Some(6.0))
    );
    assert_eq!(point.best_value(), Some(3.5));
    let max = client
        .get_measurements(
            "cpu",
            &range
                .with_resolution(180)
                .with_tag("host", "web-2")
                .with_summary_function(ReadSummaryFunction::Max),
        )
        .await
        .unwrap();
    assert_eq!(max.series[0].measurements[0].value, Some(15.0));
}

#[tokio::test]
async fn reads_validate_before_sending() {
    let (emulator, client) = start().await;
    // A valid read of a metric that does not exist: one request, a 404.
    let valid = MeasurementsQuery::since(at(T0)).with_end_time(at(T0 + 60));
    let err = client.get_measurements("cpu", &valid).await.unwrap_err();
    assert!(matches!(err, Error::NotFound { .. }), "{err:?}");
    // Every other is refused before a request.
    let bad = [
        MeasurementsQuery::last(Duration::from_secs(60)).with_resolution(0),
        MeasurementsQuery::last(Duration::from_secs(60)).with_resolution(604_801),
        MeasurementsQuery::last(Duration::from_secs(60))
            .with_tag("a", "b")
            .with_tags_search("a=b"),
        MeasurementsQuery::last(Duration::from_secs(60))
            .with_group_by(["region"], GroupByFunction::Sum)
            .with_summary_function(ReadSummaryFunction::All),
        MeasurementsQuery::last(Duration::from_secs(60)).with_tag("*", "x"),
        MeasurementsQuery::between(at(T0 + 60), at(T0)),
    ];
    for query in &bad {
        let err = client.get_measurements("cpu", query).await.unwrap_err();
        assert!(
            matches!(err, Error::InvalidInput { .. }),
            "{query:?}: {err:?}"
        );
    }
    let mut all_three = MeasurementsQuery::between(at(T0), at(T0 + 60));
    all_three.duration = Some(60);
    let err = client
        .get_measurements("cpu", &all_three)
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("start time, end time and duration"),
        "{err}"
    );
    assert_eq!(emulator.requests().count(), 1);
}

#[tokio::test]
async fn long_reads_follow_next_links() {
    let (emulator, client) = start().await;
    emulator.set_page_points(25);
    for host in ["a", "b"] {
        emulator.seed_series(
            "long",
            &[("host", host)],
            (0..60).map(|i| (T0 + i, f64::from(u8::try_from(i).unwrap()))),
        );
    }
    emulator.requests().clear();
    let query = MeasurementsQuery::between(at(T0), at(T0 + 59)).with_resolution(1);
    let page = client.get_measurements_page("long", &query).await.unwrap();
    assert!(page.next_link().is_some());
    let total: usize = page.series.iter().map(|s| s.measurements.len()).sum();
    assert!(total <= 25, "{total}");
    let all = client.get_measurements("long", &query).await.unwrap();
    assert_eq!(all.series.len(), 2);
    for series in &all.series {
        let times: Vec<i64> = series.measurements.iter().map(|p| p.time).collect();
        assert_eq!(times, (T0..T0 + 60).collect::<Vec<_>>());
    }
    // 60 × 2 points at most 25 per page: 5 pages, plus the first single-page read.
    assert_eq!(emulator.requests().count(), 1 + 5);
}

#[tokio::test]
async fn composites_query_and_saved() {
    let (emulator, client) = start().await;
    for (host, values) in [("a", [1.0, 2.0]), ("b", [10.0, 20.0])] {
        emulator.seed_series(
            "temperature",
            &[("host", host)],
            [(T0, values[0]), (T0 + 60, values[1])],
        );
    }
    let query = CompositeQuery::new(r#"sum(s("temperature", "*"))"#, at(T0))
        .with_end_time(at(T0 + 119))
        .with_resolution(60);
    let result = client.get_composite(&query).await.unwrap();
    assert_eq!(result.series.len(), 1);
    let values: Vec<f64> = result.series[0]
        .measurements
        .iter()
        .filter_map(|p| p.value)
        .collect();
    assert_eq!(values, [11.0, 22.0]);
    assert_eq!(
        result.series[0].metric.as_ref().unwrap().name.as_deref(),
        Some("temperature")
    );
    let legacy = client.get_composite_legacy(&query).await.unwrap();
    assert_eq!(
        legacy.compose.as_deref(),
        Some(r#"sum(s("temperature", "*"))"#)
    );
    assert_eq!(legacy.series[0].measurements.len(), 2);
    let hourly = CompositeQuery::new(
        r#"mean(s("temperature", "*", {function: "mean", period: "3600"}))"#,
        at(T0),
    )
    .with_end_time(at(T0 + 119));
    let result = client.get_composite(&hourly).await.unwrap();
    assert_eq!(result.series[0].measurements.len(), 1);
    assert_eq!(result.series[0].measurements[0].value, Some(8.25));

    let err = client
        .get_composite(&CompositeQuery::new("sum(nope(", at(T0)))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Api { status: 400, .. }), "{err:?}");
    assert!(err.to_string().contains("params: compose:"), "{err}");

    let saved = client
        .create_composite(
            "temperature.total",
            r#"sum(s("temperature", "*"))"#,
            &MetricSpec::new().with_description("sum of all hosts"),
        )
        .await
        .unwrap();
    assert_eq!(saved.metric_type, MetricType::Composite);
    // The Python library raised on reading a composite metric; here it is a metric like any.
    let read_back = client.get_metric("temperature.total").await.unwrap();
    assert_eq!(
        read_back.composite.as_deref(),
        Some(r#"sum(s("temperature", "*"))"#)
    );
    let read = client
        .get_measurements(
            "temperature.total",
            &MeasurementsQuery::between(at(T0), at(T0 + 119)),
        )
        .await
        .unwrap();
    let values: Vec<f64> = read.series[0]
        .measurements
        .iter()
        .filter_map(|p| p.value)
        .collect();
    assert_eq!(values, [11.0, 22.0]);
    let err = client
        .submit(Measurement::new("temperature.total", 1.0))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Api { status: 400, .. }), "{err:?}");
}

#[tokio::test]
async fn submit_summaries_and_server_side_rules() {
    let (emulator, client) = start().await;
    client
        .submit_batch([
            Measurement::summary("latency", Summary::new(4, 10.0).with_min(1.0).with_max(4.0))
                .with_timestamp(T0),
            Measurement::new("latency", 8.0).with_timestamp(T0 + 1),
        ])
        .await
        .unwrap();
    let read = client
        .get_measurements(
            "latency",
            &MeasurementsQuery::between(at(T0), at(T0 + 59))
                .with_summary_function(ReadSummaryFunction::All),
        )
        .await
        .unwrap();
    let p = &read.series[0].measurements[0];
    assert_eq!(
        (p.count, p.sum, p.min, p.max),
        (Some(5.0), Some(18.0), Some(1.0), Some(8.0))
    );
    let stored = emulator.stored_points("latency");
    assert_eq!(
        (stored[0].count, stored[0].tags["host"].as_str()),
        (4, "web-1")
    );

    let err = client
        .submit(Measurement::summary("latency", Summary::new(0, 1.0)))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvalidInput { .. }));
    let too_many: Vec<_> = (0..1001)
        .map(|i| Measurement::new("x", f64::from(i)))
        .collect();
    let err = client.submit_batch(too_many).await.unwrap_err();
    assert!(err.to_string().contains("MeasurementQueue"), "{err}");
    let err = client.submit_batch(Vec::new()).await.unwrap_err();
    assert!(matches!(err, Error::InvalidInput { .. }));
    let fifty: appoptics_client::Tags =
        (0..51).map(|i| (format!("t{i}"), "v".to_owned())).collect();
    let err = client
        .submit(Measurement::new("x", 1.0).with_tags(fifty))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("50"), "{err}");
}

#[tokio::test]
async fn measurement_posts_are_never_retried_but_reads_are() {
    let (emulator, client) = start().await;
    let unavailable = Fault::Status {
        status: 503,
        retry_after: None,
        body: r#"{"errors":{"system":["maintenance"]}}"#.into(),
    };
    emulator.faults().always(unavailable.clone());
    let err = client
        .submit(Measurement::new("cpu", 1.0))
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(503));
    assert_eq!(
        emulator.requests().count(),
        1,
        "a POST of counts is sent once"
    );
    emulator.requests().clear();
    let err = client.list_metrics(&ListParams::new()).await.unwrap_err();
    assert_eq!(err.status(), Some(503));
    assert_eq!(
        emulator.requests().count(),
        4,
        "1 + 3 bounded retries, never forever"
    );
    emulator.faults().clear();

    // A 429 on a read is retried and then succeeds.
    emulator.requests().clear();
    emulator.faults().inject(
        Fault::Status {
            status: 429,
            retry_after: Some(0),
            body: r#"{"errors":{"request":["Rate limit exceeded"]}}"#.into(),
        },
        1,
    );
    client.list_metrics(&ListParams::new()).await.unwrap();
    assert_eq!(emulator.requests().count(), 2);
}

#[tokio::test]
async fn rate_limits_are_reported_and_enforced() {
    let (emulator, client) = start().await;
    client.list_metrics(&ListParams::new()).await.unwrap();
    let limits = client.rate_limits();
    assert!(
        limits.std.as_ref().and_then(|l| l.remaining).is_some(),
        "{limits:?}"
    );
    assert!(limits.agg.is_none());
    client.submit(Measurement::new("cpu", 1.0)).await.unwrap();
    assert!(client.rate_limits().agg.is_some());

    emulator.set_rate_limit(2, Duration::from_secs(60));
    let no_retry = builder(&emulator)
        .with_retry(RetryConfig::none())
        .build()
        .unwrap();
    no_retry.list_metrics(&ListParams::new()).await.unwrap();
    no_retry.list_metrics(&ListParams::new()).await.unwrap();
    let err = no_retry.list_metrics(&ListParams::new()).await.unwrap_err();
    assert!(matches!(err, Error::RateLimited { .. }), "{err:?}");
    let text = err.to_string();
    assert!(
        text.contains("Rate limit exceeded") && text.contains("limit=2, remaining=0"),
        "{text}"
    );
    emulator.clear_rate_limit();
    no_retry.list_metrics(&ListParams::new()).await.unwrap();
}

#[tokio::test]
async fn annotations_round_trip() {
    let (_emulator, client) = start().await;
    let first = client
        .post_annotation(
            "deploys",
            &NewAnnotation::new("v41")
                .with_source("ci")
                .with_start_time(at(T0))
                .with_link(Link::new("github", "https://git.example.com/v41")),
        )
        .await
        .unwrap();
    let second = client
        .post_annotation(
            "deploys",
            &NewAnnotation::new("v42").with_start_time(at(T0 + 60)),
        )
        .await
        .unwrap();
    let streams = client
        .list_annotation_streams(&ListParams::new())
        .await
        .unwrap();
    assert_eq!(streams.items[0].name, "deploys");
    let all: Vec<_> = client
        .list_all_annotation_streams(ListParams::new().with_name("DEP"))
        .try_collect()
        .await
        .unwrap();
    assert_eq!(all.len(), 1);

    let stream = client
        .get_annotation_stream("deploys", &AnnotationQuery::since(at(T0)))
        .await
        .unwrap();
    assert_eq!(stream.events["ci"][0].title, "v41");
    assert_eq!(stream.events["unassigned"][0].id, second.id);
    let only_ci = client
        .get_annotation_stream("deploys", &AnnotationQuery::last(10).with_source("c*"))
        .await
        .unwrap();
    assert_eq!(only_ci.all_events().len(), 1);
    let last = client
        .get_annotation_stream("deploys", &AnnotationQuery::last(1))
        .await
        .unwrap();
    assert_eq!(last.all_events()[0].title, "v42");
    let err = client
        .get_annotation_stream("deploys", &AnnotationQuery::default())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvalidInput { .. }));

    client
        .update_annotation(
            "deploys",
            first.id,
            &AnnotationUpdate {
                description: Some("rolled back".into()),
                end_time: Some(T0 + 30),
                ..AnnotationUpdate::default()
            },
        )
        .await
        .unwrap();
    client
        .add_annotation_link(
            "deploys",
            first.id,
            &Link::new("ci", "https://ci.example.com/1"),
        )
        .await
        .unwrap();
    let event = client.get_annotation("deploys", first.id).await.unwrap();
    assert_eq!(event.description.as_deref(), Some("rolled back"));
    assert_eq!(event.end_time, Some(T0 + 30));
    assert_eq!(event.links.len(), 2);
    client
        .delete_annotation_link("deploys", first.id, "github")
        .await
        .unwrap();
    assert_eq!(
        client
            .get_annotation("deploys", first.id)
            .await
            .unwrap()
            .links
            .len(),
        1
    );
    client
        .delete_annotation("deploys", second.id)
        .await
        .unwrap();
    let err = client
        .get_annotation("deploys", second.id)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NotFound { .. }));
    let err = client
        .post_annotation("deploys", &NewAnnotation::new(" "))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvalidInput { .. }));
    client.delete_annotation_stream("deploys").await.unwrap();
    assert!(
        client
            .list_annotation_streams(&ListParams::new())
            .await
            .unwrap()
            .items
            .is_empty()
    );
}

#[tokio::test]
async fn chart_tags_and_colors_survive_a_rename() {
    let (emulator, client) = start().await;
    let space = client.create_space("Ops").await.unwrap();
    let chart = client
        .create_chart(
            space.id,
            &Chart::new("CPU").with_stream(
                Stream::metric("cpu")
                    .with_tag(StreamTag::values("env", ["prod"]))
                    .with_color("#52D74C")
                    .with_group_function(appoptics_client::model::GroupFunction::Sum),
            ),
        )
        .await
        .unwrap();
    let id = chart.id.unwrap();
    let renamed = client
        .rename_chart(space.id, id, "CPU (prod)")
        .await
        .unwrap();
    assert_eq!(renamed.name.as_deref(), Some("CPU (prod)"));
    let stored = emulator.chart(id).unwrap();
    assert_eq!(
        stored["streams"][0]["tags"],
        json!([{"name": "env", "values": ["prod"]}])
    );
    assert_eq!(stored["streams"][0]["color"], "#52D74C");
    assert_eq!(stored["streams"][0]["id"], chart.streams[0].id.unwrap());
    assert!(stored["streams"][0].get("source").is_none());

    let err = client
        .create_chart(space.id, &Chart::new("bad").with_stream(Stream::default()))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvalidInput { .. }));
    let err = client.get_chart(space.id, 999).await.unwrap_err();
    assert!(matches!(err, Error::NotFound { .. }));
    client.delete_space(space.id).await.unwrap();
    assert!(emulator.chart(id).is_none());
}

#[tokio::test]
async fn alerts_full_cycle() {
    let (emulator, client) = start().await;
    let service = client
        .create_service(&NewService {
            title: "Ops".into(),
            service_type: "mail".into(),
            settings: serde_json::from_value(json!({"addresses": "ops@example.com"})).unwrap(),
        })
        .await
        .unwrap();
    assert_eq!(client.get_service(service.id).await.unwrap().title, "Ops");
    let spec = AlertSpec::new("production.cpu")
        .with_condition(
            Condition::above("cpu", 90.0)
                .with_summary_function(SummaryFunction::Max)
                .with_duration(300),
        )
        .with_condition(Condition::absent("heartbeat", 600))
        .with_service(&service)
        .with_attribute("runbook_url", "https://runbooks.example.com/cpu")
        .with_rearm_seconds(1200);
    let alert = client.create_alert(&spec).await.unwrap();
    assert_eq!(alert.conditions.len(), 2);
    assert!(alert.conditions.iter().all(|c| c.id.is_some()));
    assert_eq!(alert.services[0].id, service.id);
    assert_eq!(alert.rearm_seconds, Some(1200));
    assert_eq!(alert.active, Some(true));

    let err = client.create_alert(&spec).await.unwrap_err();
    assert!(appoptics_client::error::is_already_exists(&err), "{err:?}");

    // An update is the whole state: change one thing, keep the rest.
    let mut update = AlertSpec::from(&alert);
    update.description = Some("CPU saturation".into());
    update.conditions.truncate(1);
    client.update_alert(alert.id, &update).await.unwrap();
    let read = client.get_alert(alert.id).await.unwrap();
    assert_eq!(read.description.as_deref(), Some("CPU saturation"));
    assert_eq!(read.conditions.len(), 1);
    assert_eq!(read.services.len(), 1);

    assert!(!client.alert_status(alert.id).await.unwrap().is_triggered());
    emulator.set_alert_firing(alert.id, T0);
    assert!(client.alert_status(alert.id).await.unwrap().is_triggered());
    assert_eq!(client.alerts_status().await.unwrap().firing[0].id, alert.id);
    client.clear_alert(alert.id).await.unwrap();
    let status = client.alerts_status().await.unwrap();
    assert!(status.firing.is_empty());
    assert_eq!(status.cleared[0].id, alert.id);

    client
        .remove_alert_service(alert.id, service.id)
        .await
        .unwrap();
    assert!(
        client
            .get_alert(alert.id)
            .await
            .unwrap()
            .services
            .is_empty()
    );
    client
        .add_alert_service(alert.id, service.id)
        .await
        .unwrap();
    client.delete_service(service.id).await.unwrap();
    assert!(
        client
            .get_alert(alert.id)
            .await
            .unwrap()
            .services
            .is_empty()
    );

    let found = client.find_alert("PRODUCTION.CPU").await.unwrap().unwrap();
    assert_eq!(found.id, alert.id);
    assert!(
        client.find_alert("production").await.unwrap().is_none(),
        "exact, not substring"
    );
    client.delete_alert(alert.id).await.unwrap();
    assert!(matches!(
        client.get_alert(alert.id).await,
        Err(Error::NotFound { .. })
    ));
}

#[tokio::test]
async fn alert_validation_client_and_server_side() {
    let (emulator, client) = start().await;
    for spec in [
        AlertSpec::new("bad name"),
        AlertSpec::new("a").with_condition(Condition::absent("m", 30)),
        AlertSpec::new("a").with_condition(Condition::above("m", 1.0).with_duration(4000)),
        AlertSpec::new("a").with_rearm_seconds(90),
        AlertSpec::new("a").with_condition(Condition::above("m", f64::NAN)),
    ] {
        let err = client.create_alert(&spec).await.unwrap_err();
        assert!(
            matches!(err, Error::InvalidInput { .. }),
            "{spec:?}: {err:?}"
        );
    }
    assert_eq!(emulator.requests().count(), 0);
    // The server's own answers, in the documented shape.
    let mut absent = Condition::absent("m", 60);
    absent.duration = None;
    let body = serde_json::to_value(AlertSpec::new("a").with_condition(absent.clone())).unwrap();
    assert!(body["conditions"][0].get("duration").is_none());
    let raw = metrics_core::reqwest::Client::new()
        .post(format!("{}/alerts", emulator.api_url()))
        .basic_auth("key_test", Some(""))
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(raw.status(), 400);
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&raw.text().await.unwrap()).unwrap(),
        json!({"errors": {"params": {"conditions": {"duration": ["must be set"]}}}})
    );
    let err = client
        .create_alert(&AlertSpec::new("a").with_service(999))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Api { status: 400, .. }), "{err:?}");
}

#[tokio::test]
async fn metrics_source_collects_configured_metrics() {
    let emulator = AppOpticsEmulator::start().await.unwrap();
    let now = Utc::now().timestamp();
    emulator.seed_demo_data(now);
    let client = builder(&emulator)
        .with_source_metrics(["cpu.percent.user", "memory.used.bytes", "not.reported.yet"])
        .build()
        .unwrap();
    let query = Query::new()
        .last(Duration::from_secs(1800))
        .with_step(Duration::from_secs(300));
    let series = client.collect(&query).await.unwrap();
    assert_eq!(client.backend(), "appoptics");
    assert_eq!(series.len(), 6);
    let cpu: Vec<_> = series
        .iter()
        .filter(|s| s.name == "appoptics_cpu_percent_user")
        .collect();
    assert_eq!(cpu.len(), 3);
    assert_eq!(cpu[0].kind, SeriesKind::Gauge);
    assert_eq!(cpu[0].labels["host"], "web-1");
    assert_eq!(cpu[0].labels["region"], "us-east-1");
    assert!(
        cpu[0].points.len() >= 6 && cpu[0].points.len() <= 8,
        "{}",
        cpu[0].points.len()
    );
    assert!(cpu[0].points.windows(2).all(|w| w[0].time < w[1].time));

    emulator.requests().clear();
    let only_memory = client
        .collect(&Query::new().with_names(["appoptics_memory_*"]))
        .await
        .unwrap();
    assert_eq!(only_memory.len(), 3);
    assert!(
        only_memory
            .iter()
            .all(|s| s.name == "appoptics_memory_used_bytes")
    );
    assert_eq!(
        emulator.requests().count(),
        1,
        "only the wanted metric is read"
    );

    emulator.faults().always(Fault::Status {
        status: 500,
        retry_after: None,
        body: String::new(),
    });
    let err = client.collect(&Query::new()).await.unwrap_err();
    assert_eq!(err.status(), Some(500));
}

#[tokio::test]
async fn builder_settings_and_environment() {
    let (emulator, _client) = start().await;
    let env = |vars: &'static [(&'static str, &'static str)]| {
        metrics_core::Env::from_pairs(vars.iter().copied())
    };
    let err = AppOpticsClientBuilder::from_env_with(&env(&[]))
        .build()
        .unwrap_err();
    assert!(err.to_string().contains("APPOPTICS_TOKEN"), "{err}");
    let err = AppOpticsClientBuilder::from_env_with(&env(&[
        ("APPOPTICS_TOKEN", "t"),
        ("APPOPTICS_TIMEOUT", "soon"),
    ]))
    .build()
    .unwrap_err();
    assert!(matches!(err, Error::Config { .. }) && err.to_string().contains("APPOPTICS_TIMEOUT"));
    let err = AppOpticsClientBuilder::from_env_with(&env(&[
        ("APPOPTICS_TOKEN", "t"),
        ("APPOPTICS_TAGS", "novalue"),
    ]))
    .build()
    .unwrap_err();
    assert!(err.to_string().contains("APPOPTICS_TAGS"), "{err}");
    let err = AppOpticsClient::builder()
        .with_token("t")
        .with_tag("bad tag", "v")
        .build()
        .unwrap_err();
    assert!(matches!(err, Error::Config { .. }));
    let err = AppOpticsClient::builder()
        .with_token("t")
        .with_base_url("ftp://x/v1")
        .build()
        .unwrap_err();
    assert!(matches!(err, Error::Config { .. }));
    let err = AppOpticsClient::builder()
        .with_token("t")
        .with_source_metrics(["bad name"])
        .build()
        .unwrap_err();
    assert!(matches!(err, Error::Config { .. }));

    let url = emulator.api_url();
    let vars: Vec<(&str, String)> = vec![
        ("APPOPTICS_TOKEN", "key_test".into()),
        ("APPOPTICS_BASE_URL", url),
        ("APPOPTICS_TIMEOUT", "2.5".into()),
        ("APPOPTICS_TAGS", "service=api, region=us-east-1".into()),
        ("APPOPTICS_METRICS", "cpu, mem".into()),
    ];
    let client = AppOpticsClientBuilder::from_env_with(&metrics_core::Env::from_pairs(vars))
        .build()
        .unwrap();
    assert_eq!(
        client.tags(),
        &tags([("service", "api"), ("region", "us-east-1")])
    );
    client.submit(Measurement::new("cpu", 1.0)).await.unwrap();
    assert_eq!(emulator.stored_points("cpu")[0].tags["service"], "api");
    let shown = format!("{client:?}");
    assert!(
        shown.contains("\"cpu\"") && !shown.contains("key_test"),
        "{shown}"
    );

    // The sanitizer runs on metric calls, never on alert names.
    let sanitizing = builder(&emulator)
        .with_sanitizer(Sanitizer::MetricName)
        .build()
        .unwrap();
    sanitizing
        .submit(Measurement::new("disk usage %", 1.0))
        .await
        .unwrap();
    assert!(sanitizing.get_metric("disk usage %").await.is_ok());
    assert!(emulator.metric_names().contains(&"disk-usage-".to_owned()));
    let err = sanitizing
        .create_alert(&AlertSpec::new("bad alert"))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvalidInput { .. }));
    let custom = builder(&emulator)
        .with_sanitizer(Sanitizer::Custom(|name| name.replace(' ', "_")))
        .build()
        .unwrap();
    custom.submit(Measurement::new("a b", 1.0)).await.unwrap();
    assert!(emulator.metric_names().contains(&"a_b".to_owned()));
}

#[tokio::test]
async fn top_level_tags_follow_the_documented_rule() {
    let (emulator, client) = start().await;
    let mut agg = appoptics_client::MeasurementAggregator::new()
        .with_tags(tags([("region", "us-west")]))
        .with_measure_time(T0);
    agg.add("agg.metric", 2.0).unwrap();
    agg.add("agg.metric", 4.0).unwrap();
    agg.submit(&client).await.unwrap();
    let stored = emulator.stored_points("agg.metric");
    assert_eq!(stored[0].tags, tags([("region", "us-west")]));
    assert_eq!(
        (stored[0].count, stored[0].value, stored[0].time),
        (2, 3.0, T0)
    );
    emulator.set_tag_mode(TagMode::Merge);
    let mut agg = agg.with_tags(tags([("az", "b")]));
    agg.add("agg.metric", 1.0).unwrap();
    agg.submit(&client).await.unwrap();
    assert_eq!(emulator.stored_points("agg.metric").len(), 2);
}

#[tokio::test]
async fn path_segments_are_percent_encoded() {
    let (emulator, client) = start().await;
    let _ = client.get_annotation("a/b?x", 1).await;
    let _ = client.delete_annotation_link("deploys", 1, "git hub").await;
    let uris: Vec<String> = emulator
        .requests()
        .requests()
        .into_iter()
        .map(|r| r.uri)
        .collect();
    assert_eq!(
        uris,
        [
            "/v1/annotations/a%2Fb%3Fx/1",
            "/v1/annotations/deploys/1/links/git%20hub"
        ]
    );
}
