//! The client against the Vumi emulator (and httpmock where a server must not be reached):
//! queries over seeded data, fired metrics, the auth modes, validation before sending,
//! transport failures, `MetricsSource`, and secrets.

use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use httpmock::prelude::*;
use metrics_core::{
    BackoffConfig, ClientOptions, Error, MetricsSource, Query, RetryConfig, SeriesKind,
};
use metrics_emulators::Fault;
use metrics_emulators::vumi::{VumiEmulator, VumiEmulatorConfig};
use vumi_client::time::{Interval, TimeSpec, TimeUnit};
use vumi_client::{Aggregator, MetricName, MetricsQuery, Nulls, VumiClient};

const TOKEN: &str = "tok-5e1f-very-secret";
const PASSWORD: &str = "pw-93ad-very-secret";
const OWNER: &str = "owner-1";

fn at(seconds: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(seconds, 0).unwrap()
}

fn client(emulator: &VumiEmulator) -> VumiClient {
    VumiClient::builder()
        .with_base_url(emulator.api_url())
        .with_owner_id(OWNER)
        .with_retry(RetryConfig::none())
        .build()
        .unwrap()
}

fn fast_retry() -> RetryConfig {
    RetryConfig::default().with_backoff(BackoffConfig {
        init_backoff: Duration::from_millis(5),
        max_backoff: Duration::from_millis(20),
        base: 2.0,
    })
}

/// A raw GET, to show what the server itself answers.
async fn raw_get(emulator: &VumiEmulator, query: &str) -> (u16, String) {
    let response = metrics_core::reqwest::Client::new()
        .get(format!("{}/metrics/?{query}", emulator.api_url()))
        .header("X-Owner-ID", OWNER)
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

/// Must show: every query the server answers with HTTP 500 (bad time, zero interval, unknown
/// unit, …) fails in the client with `Error::InvalidInput` and nothing is sent — neither to
/// the emulator nor to an httpmock server that would answer anything.
#[tokio::test]
async fn queries_the_server_answers_with_500_fail_in_the_client_without_a_request() {
    let emulator = VumiEmulator::start().await.unwrap();
    let mock_server = MockServer::start_async().await;
    let mock = mock_server
        .mock_async(|when, then| {
            when.any_request();
            then.status(200).body("{}");
        })
        .await;
    let cases: [(&str, MetricsQuery); 12] = [
        ("from=garbage", MetricsQuery::new().with_from("garbage")),
        ("until=garbage", MetricsQuery::new().with_until("garbage")),
        ("interval=0s", MetricsQuery::new().with_interval("0s")),
        (
            "interval=0s",
            MetricsQuery::new().with_interval(Interval::new(0, TimeUnit::Seconds)),
        ),
        (
            "interval=1fortnight",
            MetricsQuery::new().with_interval("1fortnight"),
        ),
        (
            "from=-1fortnight",
            MetricsQuery::new().with_from("-1fortnight"),
        ),
        ("interval=1m", MetricsQuery::new().with_interval("1m")),
        ("from=now-1d", MetricsQuery::new().with_from("now-1d")),
        ("from=20150231", MetricsQuery::new().with_from("20150231")),
        (
            "from=-3000y",
            MetricsQuery::new().with_from(TimeSpec::ago(3000, TimeUnit::Years)),
        ),
        ("from=noon", MetricsQuery::new().with_from("noon")),
        (
            "from=12%3A3520150201",
            MetricsQuery::new().with_from("12:3520150201"),
        ),
    ];
    for (raw, query) in cases {
        let query = query.with_metric("stores.a.b.last");
        // What the server does with it.
        let (status, body) = raw_get(&emulator, &format!("m=stores.a.b.last&{raw}")).await;
        assert_eq!(status, 500, "{raw}: {body}");
        assert!(
            body.contains("Failed to retrieve metrics."),
            "{raw}: {body}"
        );
        emulator.requests().clear();

        for base in [emulator.api_url(), mock_server.url("/api")] {
            let client = VumiClient::builder()
                .with_base_url(base)
                .with_owner_id(OWNER)
                .build()
                .unwrap();
            let error = client.query(&query).await.unwrap_err();
            assert!(
                matches!(
                    error,
                    Error::InvalidInput {
                        backend: "vumi",
                        ..
                    }
                ),
                "{raw}: {error:?}"
            );
        }
        assert_eq!(emulator.requests().count(), 0, "{raw} reached the emulator");
    }
    assert_eq!(mock.calls_async().await, 0, "a request reached httpmock");
}

#[tokio::test]
async fn a_range_graphite_rejects_as_empty_is_refused_too() {
    let emulator = VumiEmulator::start().await.unwrap();
    let (status, body) = raw_get(
        &emulator,
        "m=stores.a.b.last&from=1422748800&until=00:00_20150201",
    )
    .await;
    assert_eq!(status, 500, "{body}");
    assert!(body.contains("Got error response interacting with metrics backend"));
    emulator.requests().clear();
    let query = MetricsQuery::new()
        .with_metric("stores.a.b.last")
        .with_from("1422748800")
        .with_until("00:00_20150201");
    let error = client(&emulator).query(&query).await.unwrap_err();
    assert!(matches!(error, Error::InvalidInput { .. }), "{error:?}");
    assert_eq!(emulator.requests().count(), 0);
}

#[tokio::test]
async fn queries_over_seeded_data_are_summarized() {
    let emulator = VumiEmulator::start().await.unwrap();
    let now = at(1_422_748_800); // 2015-02-01 00:00
    emulator.set_now(Some(now));
    let metric = "stores.default.hits.sum";
    // Two values in each of the last three hours, and a gap before them.
    let hours = [-3, -2, -1];
    let points: Vec<(DateTime<Utc>, f64)> = hours
        .iter()
        .flat_map(|h| {
            let start = 1_422_748_800 + h * 3600;
            [(at(start + 60), 1.0), (at(start + 1800), 2.0)]
        })
        .collect();
    emulator.insert_points(OWNER, metric, points);
    let client = client(&emulator);
    let query = MetricsQuery::new()
        .with_metric(metric)
        .with_from("-5h")
        .with_until("now")
        .with_interval("1h")
        .with_nulls(Nulls::Keep);
    let data = client.query(&query).await.unwrap();
    let series = data.get(metric).unwrap();
    let values: Vec<Option<f64>> = series.points.iter().map(|p| p.value).collect();
    // Buckets at -5h, -4h (empty), -3h, -2h, -1h (3.0 each), and the bucket at now.
    assert_eq!(values, [None, None, Some(3.0), Some(3.0), Some(3.0), None]);
    assert_eq!(series.points[0].time, at(1_422_748_800 - 5 * 3600));

    let zeroized = client
        .query(&query.clone().with_nulls(Nulls::Zeroize))
        .await
        .unwrap();
    assert_eq!(zeroized.series()[0].points[0].value, Some(0.0));
    let omitted = client
        .query(&query.clone().with_nulls(Nulls::Omit))
        .await
        .unwrap();
    assert_eq!(omitted.series()[0].points.len(), 3);

    // A metric graphite knows nothing about has no series.
    let missing = client
        .query(&query.clone().with_metric("stores.default.other.avg"))
        .await
        .unwrap();
    assert_eq!(missing.len(), 1);
    assert!(missing.get("stores.default.other.avg").is_none());
}

#[tokio::test]
async fn aggregators_and_align_to_from() {
    let emulator = VumiEmulator::start_with(VumiEmulatorConfig::default().with_resolution(1))
        .await
        .unwrap();
    let now = at(1_422_748_800);
    emulator.set_now(Some(now));
    for agg in Aggregator::ALL {
        let name = MetricName::account("s", "m", agg).unwrap();
        emulator.insert_points(
            OWNER,
            name.as_str(),
            [
                (at(1_422_748_800 - 50), 4.0),
                (at(1_422_748_800 - 40), 1.0),
                (at(1_422_748_800 - 30), 2.0),
            ],
        );
    }
    let client = client(&emulator);
    for (agg, expected) in [
        (Aggregator::Avg, 7.0 / 3.0),
        (Aggregator::Sum, 7.0),
        (Aggregator::Max, 4.0),
        (Aggregator::Min, 1.0),
        (Aggregator::Last, 2.0),
    ] {
        let name = MetricName::account("s", "m", agg).unwrap();
        let data = client
            .query(
                &MetricsQuery::new()
                    .with_metric(&name)
                    .with_from("-60s")
                    .with_interval("1min")
                    .with_nulls(Nulls::Omit),
            )
            .await
            .unwrap();
        assert_eq!(data.series()[0].points.len(), 1, "{agg}");
        assert_eq!(data.series()[0].points[0].value, Some(expected), "{agg}");
    }
    // Aligned to `from` (-45 s): one bucket -44..-15 s holds 1.0 and 2.0.
    let name = MetricName::account("s", "m", Aggregator::Sum).unwrap();
    let data = client
        .query(
            &MetricsQuery::new()
                .with_metric(&name)
                .with_from("-45s")
                .with_interval("30s")
                .with_align_to_from(true)
                .with_nulls(Nulls::Keep),
        )
        .await
        .unwrap();
    let points = &data.series()[0].points;
    assert_eq!(points[0].time, at(1_422_748_800 - 44));
    assert_eq!(points[0].value, Some(3.0));
}

#[tokio::test]
async fn a_thousand_point_query_is_answered() {
    let emulator = VumiEmulator::start_with(VumiEmulatorConfig::default().with_resolution(60))
        .await
        .unwrap();
    let now = Utc::now();
    let metric = "stores.bench.requests.avg";
    emulator.insert_points(
        OWNER,
        metric,
        (0..1000).map(|i| {
            (
                now - chrono::TimeDelta::minutes(i),
                f64::from(i32::try_from(i).unwrap()),
            )
        }),
    );
    let data = client(&emulator)
        .query(
            &MetricsQuery::new()
                .with_metric(metric)
                .with_from("-1000min")
                .with_interval("1min"),
        )
        .await
        .unwrap();
    let points = &data.series()[0].points;
    assert!(points.len() >= 1000, "{}", points.len());
    assert!(points.iter().filter(|p| p.value != Some(0.0)).count() >= 998);
}

#[tokio::test]
async fn fired_metrics_round_trip_without_auto_prefix() {
    let emulator =
        VumiEmulator::start_with(VumiEmulatorConfig::default().with_disable_auto_prefix(true))
            .await
            .unwrap();
    // A fixed clock keeps both values of stores.a.b.sum in one storage slot.
    emulator.set_now(Some(Utc::now()));
    let client = client(&emulator);
    let names = [
        "stores.a.b.sum",
        "stores.a.c.last",
        "conversations.x.sent.max",
    ];
    let fired = client.fire(names.iter().map(|n| (*n, 2.5))).await.unwrap();
    let fired_names: Vec<&str> = fired.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(fired_names, names);
    assert_eq!(fired[0].aggregator, Aggregator::Sum);
    assert_eq!(fired[2].value, 2.5);
    // The server answers in its own order; the client put them back in ours.
    let records = emulator.fired();
    assert_eq!(records.len(), 3);
    let record = records.iter().find(|r| r.name == "stores.a.b.sum").unwrap();
    assert_eq!(record.path, "go.campaigns.owner-1.stores.a.b.sum");
    assert_eq!(record.owner, OWNER);
    client.fire_one("stores.a.b.sum", 1.5).await.unwrap();
    let data = client
        .query(
            &MetricsQuery::new()
                .with_metric("stores.a.b.sum")
                .with_from("-5min")
                .with_nulls(Nulls::Omit),
        )
        .await
        .unwrap();
    assert_eq!(data.series()[0].points.last().unwrap().value, Some(4.0));
}

#[tokio::test]
async fn auto_prefixing_hides_fired_metrics_from_queries() {
    let emulator = VumiEmulator::start().await.unwrap();
    let client = client(&emulator);
    client.fire([("stores.a.b.last", 5.0)]).await.unwrap();
    assert_eq!(
        emulator.fired()[0].path,
        "go.campaigns.go.campaigns.owner-1.stores.a.b.last"
    );
    let data = client
        .query(&MetricsQuery::new().with_metric("stores.a.b.last"))
        .await
        .unwrap();
    assert!(data.is_empty());
}

#[tokio::test]
async fn firing_validates_before_sending() {
    let emulator = VumiEmulator::start().await.unwrap();
    let client = client(&emulator);
    for (name, value) in [
        ("stores.a.b.avg", f64::NAN),
        ("stores.a.b.avg", f64::INFINITY),
        ("metric1", 27.4),
        ("stores.a.b", 1.0),
        ("stores.a b.avg", 1.0),
    ] {
        let error = client.fire([(name, value)]).await.unwrap_err();
        assert!(
            matches!(error, Error::InvalidInput { .. }),
            "{name}: {error:?}"
        );
    }
    let twice = client
        .fire([("stores.a.b.avg", 1.0), ("stores.a.b.avg", 2.0)])
        .await
        .unwrap_err();
    assert!(matches!(twice, Error::InvalidInput { .. }));
    assert_eq!(emulator.requests().count(), 0);
    assert!(emulator.fired().is_empty());
}

#[tokio::test]
async fn upstream_post_vectors() {
    let emulator = VumiEmulator::start().await.unwrap();
    let client = client(&emulator);
    // test_post_request_single
    let fired = client.fire([("foo.avg", 1.7)]).await.unwrap();
    assert_eq!(fired[0].name, "foo.avg");
    assert_eq!(fired[0].value, 1.7);
    assert_eq!(fired[0].aggregator, Aggregator::Avg);
    // test_post_request_multiple
    let fired = client
        .fire([("foo.avg", 1.2), ("oof.avg", 2.7)])
        .await
        .unwrap();
    assert_eq!(fired.len(), 2);
    // test_post_aggregators
    for agg in Aggregator::ALL {
        let name = format!("foo.{agg}");
        let fired = client.fire_one(name.as_str(), 1.3).await.unwrap();
        assert_eq!(fired.aggregator, agg);
    }
    // go_http's MetricsApiClient test: fire({"foo.last": 3.1415}).
    #[allow(
        clippy::approx_constant,
        reason = "the value of go_http's test, not pi"
    )]
    const PEER_VALUE: f64 = 3.1415;
    let fired = client.fire_one("foo.last", PEER_VALUE).await.unwrap();
    assert_eq!(fired.value, PEER_VALUE);
}

#[tokio::test]
async fn bearer_tokens_through_an_auth_bouncer() {
    let emulator = VumiEmulator::start_with(
        VumiEmulatorConfig::default().with_bouncer([(TOKEN, "owner-bearer")]),
    )
    .await
    .unwrap();
    emulator.insert_points("owner-bearer", "stores.a.b.last", [(Utc::now(), 1.0)]);
    let build = |token: Option<&str>| {
        let builder = VumiClient::builder()
            .with_base_url(emulator.api_url())
            .with_retry(RetryConfig::none());
        match token {
            Some(token) => builder.with_token(token),
            None => builder,
        }
        .build()
        .unwrap()
    };
    let query = MetricsQuery::new().with_metric("stores.a.b.last");
    let data = build(Some(TOKEN)).query(&query).await.unwrap();
    assert_eq!(data.len(), 1);
    let error = build(Some("nope")).query(&query).await.unwrap_err();
    assert!(
        matches!(error, Error::Forbidden { ref message, .. } if message.starts_with("Forbidden; ") && message.contains("with_token")),
        "{error}"
    );
    let error = build(None).query(&query).await.unwrap_err();
    assert!(
        matches!(error, Error::Unauthenticated { ref message, .. } if message.starts_with("Unauthorized; ") && message.contains("with_token (VUMI_TOKEN)")),
        "{error}"
    );
    let header = emulator.requests().requests()[0]
        .header("authorization")
        .unwrap()
        .to_owned();
    assert_eq!(header, format!("Bearer {TOKEN}"));
}

#[tokio::test]
async fn basic_auth_with_the_owner_header() {
    let emulator =
        VumiEmulator::start_with(VumiEmulatorConfig::default().with_basic_auth("user", PASSWORD))
            .await
            .unwrap();
    let query = MetricsQuery::new().with_metric("stores.a.b.last");
    let build = |password: Option<&str>, owner: bool| {
        let mut builder = VumiClient::builder()
            .with_base_url(emulator.api_url())
            .with_retry(RetryConfig::none());
        if let Some(password) = password {
            builder = builder.with_basic_auth("user", password);
        }
        if owner {
            builder = builder.with_owner_id(OWNER);
        }
        builder.build().unwrap()
    };
    build(Some(PASSWORD), true).query(&query).await.unwrap();
    for (password, owner, reason, setting) in [
        (
            Some("wrong"),
            true,
            "Authentication Failed",
            "with_basic_auth",
        ),
        (None, true, "Authentication Required", "with_basic_auth"),
        (Some(PASSWORD), false, "Unauthorized", "with_owner_id"),
    ] {
        let error = build(password, owner).query(&query).await.unwrap_err();
        let Error::Unauthenticated { message, .. } = &error else {
            panic!("{error:?}");
        };
        assert!(message.starts_with(&format!("{reason}; ")), "{message}");
        assert!(message.contains(setting), "{message}");
    }
    // A Bearer token is another scheme: Basic is still required.
    let bearer = VumiClient::builder()
        .with_base_url(emulator.api_url())
        .with_token(TOKEN)
        .with_owner_id(OWNER)
        .build()
        .unwrap();
    let error = bearer.query(&query).await.unwrap_err();
    assert!(
        matches!(error, Error::Unauthenticated { ref message, .. } if message.starts_with("Authentication Required; ") && message.contains("instead of with_token")),
        "{error}"
    );
}

#[tokio::test]
async fn missing_owner_header_is_unauthenticated_and_names_the_setting() {
    let emulator = VumiEmulator::start().await.unwrap();
    let client = VumiClient::builder()
        .with_base_url(emulator.api_url())
        .build()
        .unwrap();
    let error = client
        .query(&MetricsQuery::new().with_metric("stores.a.b.last"))
        .await
        .unwrap_err();
    assert!(matches!(error, Error::Unauthenticated { .. }), "{error:?}");
    assert_eq!(error.status(), Some(401));
    // The server says only `Unauthorized`; the client says what to set.
    let shown = error.to_string();
    for setting in ["X-Owner-ID", "with_owner_id", "VUMI_OWNER_ID"] {
        assert!(shown.contains(setting), "{shown}");
    }
    // Firing needs the owner just the same.
    let error = client.fire([("stores.a.b.sum", 1.0)]).await.unwrap_err();
    assert!(error.to_string().contains("with_owner_id"), "{error}");
}

#[tokio::test]
async fn graphite_errors_are_retried_for_queries_but_not_for_fired_metrics() {
    let emulator =
        VumiEmulator::start_with(VumiEmulatorConfig::default().with_failing_target("graphite500"))
            .await
            .unwrap();
    let client = VumiClient::builder()
        .with_base_url(emulator.api_url())
        .with_owner_id(OWNER)
        .with_retry(fast_retry().with_max_retries(2))
        .build()
        .unwrap();
    let error = client
        .query(&MetricsQuery::new().with_metric("stores.graphite500.x.last"))
        .await
        .unwrap_err();
    let Error::Api {
        status, message, ..
    } = &error
    else {
        panic!("{error:?}");
    };
    assert_eq!(*status, 500);
    assert_eq!(
        message,
        "Got error response interacting with metrics backend"
    );
    assert_eq!(emulator.requests().count(), 3);

    emulator.requests().clear();
    emulator.faults().inject(
        Fault::Status {
            status: 500,
            retry_after: None,
            body: r#"{"reason": "Failed to fire metrics.", "status_code": 500}"#.to_owned(),
        },
        1,
    );
    let error = client.fire([("stores.a.b.sum", 1.0)]).await.unwrap_err();
    assert!(
        matches!(error, Error::Api { status: 500, ref message, .. } if message == "Failed to fire metrics.")
    );
    assert_eq!(
        emulator.requests().count(),
        1,
        "a POST must not be sent twice"
    );
}

#[tokio::test]
async fn transport_and_body_failures_are_typed() {
    let mut emulator = VumiEmulator::start().await.unwrap();
    let query = MetricsQuery::new().with_metric("stores.a.b.last");
    let client = VumiClient::builder()
        .with_base_url(emulator.api_url())
        .with_owner_id(OWNER)
        .with_retry(RetryConfig::none())
        .with_client_options(ClientOptions::new().with_timeout(Duration::from_millis(200)))
        .build()
        .unwrap();

    emulator.faults().inject(Fault::MalformedBody, 1);
    assert!(matches!(
        client.query(&query).await,
        Err(Error::Decode { .. })
    ));

    emulator.faults().inject(
        Fault::Status {
            status: 502,
            retry_after: None,
            body: "<html><body><h1>502 Bad Gateway</h1></body></html>".to_owned(),
        },
        1,
    );
    let error = client.query(&query).await.unwrap_err();
    assert!(
        matches!(error, Error::Api { status: 502, ref message, .. } if message.contains("502 Bad Gateway")),
        "{error:?}"
    );

    emulator.faults().inject(
        Fault::Status {
            status: 503,
            retry_after: None,
            body: String::new(),
        },
        1,
    );
    let error = client.query(&query).await.unwrap_err();
    assert!(matches!(error, Error::Api { status: 503, .. }), "{error:?}");

    emulator.faults().inject(
        Fault::Status {
            status: 400,
            retry_after: None,
            body: String::new(),
        },
        1,
    );
    let error = client.query(&query).await.unwrap_err();
    assert!(
        matches!(error, Error::Api { status: 400, ref message, .. } if message == "Bad Request"),
        "{error:?}"
    );

    emulator.faults().inject(
        Fault::Status {
            status: 429,
            retry_after: Some(7),
            body: String::new(),
        },
        1,
    );
    let error = client.query(&query).await.unwrap_err();
    assert_eq!(error.retry_after(), Some(Duration::from_secs(7)));

    emulator.faults().inject(Fault::DropConnection, 1);
    let error = client.query(&query).await.unwrap_err();
    assert!(matches!(error, Error::Transport { .. }), "{error:?}");

    emulator
        .faults()
        .inject(Fault::Delay(Duration::from_secs(2)), 1);
    assert!(matches!(
        client.query(&query).await,
        Err(Error::Timeout { .. })
    ));

    emulator.stop();
    let error = client.query(&query).await.unwrap_err();
    assert!(matches!(error, Error::Transport { .. }), "{error:?}");
    emulator.restart().await.unwrap();
    client.query(&query).await.unwrap();
}

#[tokio::test]
async fn health_is_at_the_server_root() {
    let emulator = VumiEmulator::start().await.unwrap();
    client(&emulator).health().await.unwrap();
    let hosted =
        VumiEmulator::start_with(VumiEmulatorConfig::default().with_url_path_prefix("/api/v1/go"))
            .await
            .unwrap();
    client(&hosted).health().await.unwrap();
    assert_eq!(hosted.requests().requests()[0].uri, "/health/");
}

#[tokio::test]
async fn a_wrong_prefix_is_a_not_found_with_a_hint() {
    let emulator =
        VumiEmulator::start_with(VumiEmulatorConfig::default().with_url_path_prefix("/api/v1/go"))
            .await
            .unwrap();
    let client = VumiClient::builder()
        .with_base_url(format!("{}/api", emulator.base_url()))
        .with_owner_id(OWNER)
        .build()
        .unwrap();
    let error = client
        .query(&MetricsQuery::new().with_metric("stores.a.b.last"))
        .await
        .unwrap_err();
    assert!(
        matches!(error, Error::NotFound { ref message, .. } if message.contains("path prefix")),
        "{error:?}"
    );
}

#[tokio::test]
async fn metrics_source_reads_the_configured_metrics() {
    let emulator = VumiEmulator::start().await.unwrap();
    let names = emulator.seed_example_data(OWNER);
    let client = VumiClient::builder()
        .with_base_url(emulator.api_url())
        .with_owner_id(OWNER)
        .with_metrics(names.clone())
        .build()
        .unwrap();
    assert_eq!(client.backend(), "vumi");
    let query = Query::new()
        .last(Duration::from_secs(6 * 3600))
        .with_step(Duration::from_secs(3600));
    let series = client.collect(&query).await.unwrap();
    assert_eq!(series.len(), names.len());
    assert_eq!(series[0].name, "vumi_stores_default_sessions_started");
    assert_eq!(series[0].labels["aggregator"], "sum");
    assert!(
        series
            .iter()
            .all(|s| s.kind == SeriesKind::Gauge && s.unit.is_none())
    );
    assert!(
        series.iter().all(|s| (6..=7).contains(&s.points.len())),
        "{series:?}"
    );
    let request = emulator.requests().requests()[0].uri.clone();
    assert!(request.contains("interval=1h"), "{request}");
    assert!(request.contains("nulls=omit"), "{request}");
    assert!(request.contains("from="), "{request}");

    // Only the metrics the name filter wants are asked for.
    emulator.requests().clear();
    let only = client
        .collect(&query.clone().with_names(["vumi_conversations_*"]))
        .await
        .unwrap();
    assert_eq!(only.len(), 2);
    let uri = emulator.requests().requests()[0].uri.clone();
    assert!(!uri.contains("stores."), "{uri}");
    emulator.requests().clear();
    assert!(
        client
            .collect(&Query::new().with_names(["outline_*"]))
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(emulator.requests().count(), 0);
}

#[tokio::test]
async fn metrics_source_splits_requests_at_the_size_limit() {
    let emulator = VumiEmulator::start().await.unwrap();
    let names = emulator.seed_example_data(OWNER);
    let client = VumiClient::builder()
        .with_base_url(emulator.api_url())
        .with_owner_id(OWNER)
        .with_metrics(names.clone())
        .with_max_points(500)
        .build()
        .unwrap();
    // 288 five-minute points per metric: one metric per request under a 500-point limit.
    let query = Query::new()
        .last(Duration::from_secs(86_400))
        .with_step(Duration::from_secs(300));
    let series = client.collect(&query).await.unwrap();
    assert_eq!(series.len(), names.len());
    assert_eq!(emulator.requests().count(), names.len());

    // Too long for even one metric: refused before sending.
    emulator.requests().clear();
    let error = client
        .collect(
            &Query::new()
                .last(Duration::from_secs(7 * 86_400))
                .with_step(Duration::from_secs(60)),
        )
        .await
        .unwrap_err();
    assert!(matches!(error, Error::InvalidInput { .. }), "{error:?}");
    assert_eq!(emulator.requests().count(), 0);
}

#[tokio::test]
async fn secrets_never_show() {
    let emulator =
        VumiEmulator::start_with(VumiEmulatorConfig::default().with_basic_auth("user", PASSWORD))
            .await
            .unwrap();
    let builder = VumiClient::builder()
        .with_base_url(emulator.api_url())
        .with_basic_auth("user", "wrong-9f1b-very-secret")
        .with_owner_id("owner-7c2e-very-secret");
    let shown = format!("{builder:?}");
    let client = builder.build().unwrap();
    let error = client
        .query(&MetricsQuery::new().with_metric("stores.a.b.last"))
        .await
        .unwrap_err();
    let bearer_builder = VumiClient::builder()
        .with_base_url(emulator.api_url())
        .with_token(TOKEN);
    let bearer_shown = format!("{bearer_builder:?}");
    let bearer = bearer_builder.build().unwrap();
    let config_error = VumiClient::builder()
        .with_base_url(emulator.api_url())
        .with_token(TOKEN)
        .with_basic_auth("user", PASSWORD)
        .build()
        .unwrap_err();
    for text in [
        shown,
        bearer_shown,
        format!("{client:?}"),
        format!("{bearer:?}"),
        format!("{error:?}"),
        format!("{error}"),
        format!("{config_error:?}"),
        format!("{config_error}"),
    ] {
        for secret in [
            TOKEN,
            PASSWORD,
            "wrong-9f1b-very-secret",
            "owner-7c2e-very-secret",
        ] {
            assert!(!text.contains(secret), "{secret} shown in {text}");
        }
    }
}

#[test]
fn builder_validation() {
    let build = |b: vumi_client::VumiClientBuilder| b.build().unwrap_err();
    for error in [
        build(VumiClient::builder()),
        build(VumiClient::builder().with_base_url("not a url")),
        build(VumiClient::builder().with_base_url("http://h/api/metrics/")),
        build(
            VumiClient::builder()
                .with_base_url("http://h/api")
                .with_token(""),
        ),
        build(
            VumiClient::builder()
                .with_base_url("http://h/api")
                .with_owner_id(""),
        ),
        build(
            VumiClient::builder()
                .with_base_url("http://h/api")
                .with_max_points(0),
        ),
        build(
            VumiClient::builder()
                .with_base_url("http://h/api")
                .with_metric("stores.a.b"),
        ),
        build(
            VumiClient::builder()
                .with_base_url("http://h/api")
                .with_token("t")
                .with_basic_auth("u", "p"),
        ),
    ] {
        assert!(
            matches!(
                error,
                Error::Config {
                    backend: "vumi",
                    ..
                }
            ),
            "{error:?}"
        );
    }
}

/// A long metric list: the server pastes every metric into one graphite URL, which fails at
/// about 140 metrics (HTTP 500, retried). The client sends at most 50 per request, or fewer
/// when the size limit needs, and merges the answers in the order asked.
#[tokio::test]
async fn a_long_metric_list_is_split_and_merged_in_order() {
    let emulator = VumiEmulator::start().await.unwrap();
    let now = at(1_422_748_800);
    emulator.set_now(Some(now));
    // Asked in an order that is neither sorted nor the seeding order.
    let names: Vec<String> = (0..120)
        .map(|i| format!("stores.s{}.m{i}.last", (i * 37) % 120))
        .collect();
    for (i, name) in names.iter().enumerate() {
        emulator.insert_points(OWNER, name, [(at(1_422_748_800 - 1800), i as f64)]);
    }
    let query = MetricsQuery::new()
        .with_metrics(names.iter().map(String::as_str))
        .with_from("-1h")
        .with_until("now")
        .with_interval("1h")
        .with_nulls(Nulls::Omit);
    let data = client(&emulator).query(&query).await.unwrap();
    let got: Vec<&str> = data.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(got, names);
    for (i, series) in data.iter().enumerate() {
        let values: Vec<Option<f64>> = series.points.iter().map(|p| p.value).collect();
        assert_eq!(values, [Some(i as f64)], "{}", series.name);
    }
    let per_request: Vec<usize> = emulator
        .requests()
        .requests()
        .iter()
        .map(|r| {
            r.uri
                .split(['?', '&'])
                .filter(|p| p.starts_with("m="))
                .count()
        })
        .collect();
    assert_eq!(per_request, [50, 50, 20]);

    // Under a size limit of 50 points, 24 hourly points per metric: two metrics a request.
    emulator.requests().clear();
    let limited = VumiClient::builder()
        .with_base_url(emulator.api_url())
        .with_owner_id(OWNER)
        .with_max_points(50)
        .build()
        .unwrap();
    let five = MetricsQuery::new()
        .with_metrics(names[..5].iter().map(String::as_str))
        .with_interval("1h");
    assert!(five.to_params(Some(50)).is_err(), "too big as one request");
    let data = limited.query(&five).await.unwrap();
    assert_eq!(data.len(), 5);
    assert_eq!(emulator.requests().count(), 3);
}

/// A 200 whose body has another shape is an `Error::Decode`, never an empty or partial
/// success: a point without `y` is not a `null` one, an object without points is not an
/// empty answer, and confirmations must be a list of complete entries.
#[tokio::test]
async fn answers_of_another_shape_are_decode_errors() {
    let emulator = VumiEmulator::start().await.unwrap();
    let client = client(&emulator);
    let query = MetricsQuery::new().with_metric("stores.a.b.last");
    for (body, path) in [
        (
            r#"{"stores.a.b.last": [{"x": 1000}]}"#,
            "stores.a.b.last[0]",
        ),
        (r#"{"stores.a.b.last": [{"y": 1.0}]}"#, "stores.a.b.last[0]"),
        (r#"{"stores.a.b.last": {}}"#, "stores.a.b.last"),
        (r#"{"stores.a.b.last": null}"#, "stores.a.b.last"),
        (r#"{"reason": "OK", "status_code": 200}"#, "reason"),
        ("[]", ""),
        ("null", ""),
    ] {
        emulator.faults().inject(
            Fault::Status {
                status: 200,
                retry_after: None,
                body: body.to_owned(),
            },
            1,
        );
        let error = client.query(&query).await.unwrap_err();
        assert!(
            matches!(&error, Error::Decode { path: p, .. } if p == path),
            "{body}: {error:?}"
        );
    }
    for body in [
        "{}",
        "[]",
        r#"[{"name": "stores.a.b.sum", "value": 1.0}]"#,
        r#"{"stores.a.b.sum": 1.0}"#,
    ] {
        emulator.faults().inject(
            Fault::Status {
                status: 200,
                retry_after: None,
                body: body.to_owned(),
            },
            1,
        );
        let error = client.fire([("stores.a.b.sum", 1.0)]).await.unwrap_err();
        assert!(matches!(error, Error::Decode { .. }), "{body}: {error:?}");
    }
}
