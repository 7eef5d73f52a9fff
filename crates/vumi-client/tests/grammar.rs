//! The time grammar, interval and metric names against the upstream go-metrics-api 0.2.0 test
//! vectors (reference §12) and the client grammar (§6). No server involved.

use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use vumi_client::time::{Interval, MAX_UNIX_SECONDS, TimeSpec, TimeUnit, predicted_points};
use vumi_client::{Aggregator, MetricKind, MetricName, MetricsQuery, Nulls};

fn at(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, mo, d, h, mi, s).unwrap()
}

fn spec(text: &str) -> TimeSpec {
    text.parse()
        .unwrap_or_else(|e| panic!("{text} should parse: {e}"))
}

#[test]
fn interval_vectors() {
    // test_interval_to_seconds_with_invalid_value
    for bad in ["", "s", "1", "three days", "-1h", "2fortnights"] {
        assert!(bad.parse::<Interval>().is_err(), "{bad}");
    }
    // test_interval_to_seconds_with_<unit>, every spelling; 0 is a valid count for the
    // parser but a division by zero for the size check, so the client refuses it.
    type Vector = (&'static [&'static str], &'static [(u64, u64)]);
    let vectors: [Vector; 7] = [
        (
            &["s", "second", "seconds"],
            &[(1, 1), (60, 60), (1_234_567, 1_234_567)],
        ),
        (
            &["min", "mins", "minute", "minutes"],
            &[(1, 60), (60, 3600), (1_234_567, 74_074_020)],
        ),
        (
            &["h", "hour", "hours"],
            &[(1, 3600), (24, 86_400), (1234, 4_442_400)],
        ),
        (
            &["d", "day", "days"],
            &[(1, 86_400), (60, 5_184_000), (1234, 106_617_600)],
        ),
        (
            &["w", "week", "weeks"],
            &[(1, 604_800), (4, 2_419_200), (123, 74_390_400)],
        ),
        (
            &["mon", "month", "months"],
            &[(1, 2_592_000), (12, 31_104_000), (123, 318_816_000)],
        ),
        (
            &["y", "year", "years"],
            &[(1, 31_536_000), (5, 157_680_000), (123, 3_878_928_000)],
        ),
    ];
    for (spellings, cases) in vectors {
        for spelling in spellings {
            for (count, seconds) in cases {
                let text = format!("{count}{spelling}");
                let interval: Interval = text.parse().unwrap();
                assert_eq!(interval.seconds(), *seconds, "{text}");
                // Sent as written.
                assert_eq!(interval.to_string(), text);
            }
            assert!(format!("0{spelling}").parse::<Interval>().is_err());
        }
    }
    // Leading zeros: 012s is 12 s.
    assert_eq!("012s".parse::<Interval>().unwrap().seconds(), 12);
    assert_eq!("014d".parse::<Interval>().unwrap().seconds(), 1_209_600);
    assert_eq!("02y".parse::<Interval>().unwrap().seconds(), 63_072_000);
    // Equal by value, whatever the spelling.
    assert_eq!(
        "1day".parse::<Interval>().unwrap(),
        Interval::days(1).unwrap()
    );
    // Graphite cannot hold an interval of a billion days.
    assert!("1000000000d".parse::<Interval>().is_err());
    assert!(Interval::from_duration(std::time::Duration::from_millis(1500)).is_err());
    assert_eq!(
        Interval::from_duration(std::time::Duration::from_secs(7200))
            .unwrap()
            .to_string(),
        "2h"
    );
}

#[test]
fn relative_time_vectors() {
    let now = at(2015, 2, 1, 0, 0, 0);
    let later = at(2015, 1, 24, 10, 15, 25);
    // test_parse_time_with_invalid_interval
    for bad in ["-0", "-12", "-12fortnights", "-20150101"] {
        assert!(bad.parse::<TimeSpec>().is_err(), "{bad}");
    }
    // test_parse_time_with_interval
    assert_eq!(spec("-0s").resolve(now), Some(now));
    assert_eq!(spec("-1s").resolve(now), Some(at(2015, 1, 31, 23, 59, 59)));
    assert_eq!(spec("-2w").resolve(now), Some(at(2015, 1, 18, 0, 0, 0)));
    assert_eq!(
        spec("-2w").resolve(later),
        Some(at(2015, 1, 10, 10, 15, 25))
    );
    for spelling in [
        "s", "second", "seconds", "min", "mins", "minute", "minutes", "h", "hour", "hours", "d",
        "day", "days", "w", "week", "weeks", "mon", "month", "months", "y", "year", "years",
    ] {
        let text = format!("-012{spelling}");
        assert_eq!(spec(&text).to_string(), format!("-12{spelling}"));
    }
    // test_parse_time_special_values
    for base in [now, later] {
        assert_eq!(spec("now").resolve(base), Some(base));
        assert_eq!(spec("today").resolve(base), Some(base));
        assert_eq!(
            spec("yesterday").resolve(base),
            Some(base - chrono::TimeDelta::days(1))
        );
        assert_eq!(
            spec("tomorrow").resolve(base),
            Some(base + chrono::TimeDelta::days(1))
        );
    }
    // The server parses case-sensitively.
    assert!("NOW".parse::<TimeSpec>().is_err());
    // Before the year 1 the server overflows: refused when the query is checked.
    assert_eq!(TimeSpec::ago(2100, TimeUnit::Years).resolve(now), None);
}

#[test]
fn absolute_time_vectors() {
    let now = at(2015, 2, 1, 0, 0, 0);
    // test_parse_time_absolute_datetime
    assert_eq!(
        spec("00:00_20150201").resolve(now),
        Some(at(2015, 2, 1, 0, 0, 0))
    );
    assert_eq!(
        spec("00:00_19700101").resolve(now),
        Some(at(1970, 1, 1, 0, 0, 0))
    );
    assert_eq!(spec("23:59_20151231").to_string(), "23:59_20151231");
    // test_parse_time_absolute_date
    for (text, date) in [
        ("20150201", at(2015, 2, 1, 0, 0, 0)),
        ("19700101", at(1970, 1, 1, 0, 0, 0)),
        ("19010101", at(1901, 1, 1, 0, 0, 0)),
        ("99991231", at(9999, 12, 31, 0, 0, 0)),
    ] {
        assert_eq!(spec(text).resolve(now), Some(date), "{text}");
        assert_eq!(spec(text).to_string(), text);
    }
    // test_parse_time_unix_timestamp
    for (text, time) in [
        ("1422748800", at(2015, 2, 1, 0, 0, 0)),
        ("0", at(1970, 1, 1, 0, 0, 0)),
        ("19000101", at(1970, 8, 8, 21, 48, 21)),
        ("20150132", at(1970, 8, 22, 5, 15, 32)),
        ("20151301", at(1970, 8, 22, 5, 35, 1)),
    ] {
        assert_eq!(spec(text).resolve(now), Some(time), "{text}");
    }
    // test_parse_time_with_invalid_absolute_datetime, and the client grammar's rejections.
    for bad in [
        "",
        "blahblah",
        "20150231",
        "2015_02_01",
        "12:35 20150201",
        "12:3520150201",
        "12/31/99",
        "6pm today",
        "noon tomorrow",
        "january 1",
        "monday",
        "+1d",
        "now-1d",
        "-1d12h",
        "noon",
        "6pm",
        "-1422748800",
        "20150001",
        "20150100",
        "1:05_20150201",
        "24:00_20150201",
        "12:60_20150201",
        "12:00_2015021",
        "253402300800",
    ] {
        assert!(bad.parse::<TimeSpec>().is_err(), "{bad} should be refused");
    }
    assert_eq!(
        spec("253402300799").resolve(now),
        Some(at(9999, 12, 31, 23, 59, 59))
    );
    assert!(TimeSpec::unix(MAX_UNIX_SECONDS + 1).is_err());
}

#[test]
fn typed_times_render_in_the_server_grammar() {
    let date = NaiveDate::from_ymd_opt(2015, 2, 1).unwrap();
    assert_eq!(TimeSpec::date(date).unwrap().to_string(), "20150201");
    assert!(TimeSpec::date(NaiveDate::from_ymd_opt(1900, 12, 31).unwrap()).is_err());
    assert_eq!(
        TimeSpec::at(date.and_hms_opt(9, 5, 0).unwrap())
            .unwrap()
            .to_string(),
        "09:05_20150201"
    );
    assert!(TimeSpec::at(date.and_hms_opt(9, 5, 1).unwrap()).is_err());
    assert_eq!(
        TimeSpec::try_from(at(2015, 2, 1, 0, 0, 0))
            .unwrap()
            .to_string(),
        "1422748800"
    );
    assert!(TimeSpec::try_from(at(1969, 12, 31, 23, 59, 59)).is_err());
    // An eight-digit timestamp shaped like a date gets a leading zero, which the server
    // and graphite read as a timestamp.
    let shaped = TimeSpec::unix(20_150_201).unwrap();
    assert_eq!(shaped.to_string(), "020150201");
    assert_eq!(spec("020150201"), shaped);
    assert_eq!(
        spec(&shaped.to_string()).resolve(Utc::now()),
        Some(Utc.timestamp_opt(20_150_201, 0).unwrap())
    );
    assert_eq!(TimeSpec::ago(30, TimeUnit::Days).to_string(), "-30d");
    assert_eq!(TimeSpec::ago(0, TimeUnit::Seconds).to_string(), "-0s");
    assert!(TimeSpec::unix(5).unwrap().is_absolute());
    assert!(!TimeSpec::yesterday().is_absolute());
}

#[test]
fn size_check_vectors() {
    let now = Utc::now();
    let interval = |text: &str| text.parse::<Interval>().unwrap();
    // test_reject_large_request
    assert_eq!(
        predicted_points(&spec("-1d"), &spec("-0s"), interval("1s"), 0, now),
        Some(86_400)
    );
    assert_eq!(
        predicted_points(&spec("now"), &spec("-1d"), interval("1s"), 0, now),
        Some(86_400)
    );
    // test_reject_large_request_multiple_metrics
    assert_eq!(
        predicted_points(&spec("-1d"), &spec("-0s"), interval("10s"), 2, now),
        Some(17_280)
    );
    let too_big = MetricsQuery::new()
        .with_metrics(["stores.a.b.last", "stores.b.a.max"])
        .with_from("-1d")
        .with_interval("10s");
    assert!(
        too_big
            .to_params(Some(10_000))
            .unwrap_err()
            .to_string()
            .contains("17280 data points requested, maximum allowed is 10000")
    );
    // `query` sends it as two requests of 8640 points, which the server accepts.
    assert!(too_big.validate(Some(10_000)).is_ok());
    // No metrics counts as one (8640 points): the server answers `{}`.
    assert!(
        MetricsQuery::new()
            .with_from("-1d")
            .with_interval("10s")
            .validate(Some(10_000))
            .is_ok()
    );
    // test_reject_large_request_with_config
    let two_days = MetricsQuery::new().with_from("-2d").with_interval("1s");
    assert!(
        two_days
            .validate(Some(100_000))
            .unwrap_err()
            .to_string()
            .contains("172800 data points requested, maximum allowed is 100000")
    );
    assert!(
        MetricsQuery::new()
            .with_from("-1d")
            .with_interval("1s")
            .validate(Some(100_000))
            .is_ok()
    );
    // Exactly the limit passes (live: -10000min at 1min).
    assert!(
        MetricsQuery::new()
            .with_metric("stores.a.b.last")
            .with_from("-10000min")
            .with_interval("1min")
            .validate(Some(10_000))
            .is_ok()
    );
    assert!(
        MetricsQuery::new()
            .with_metric("stores.a.b.last")
            .with_from("-10001min")
            .with_interval("1min")
            .validate(Some(10_000))
            .is_err()
    );
    // Without a limit, anything valid goes.
    assert!(two_days.validate(None).is_ok());
    // A repeated metric is sent (and counted) once.
    let repeated = MetricsQuery::new()
        .with_metrics(["stores.a.b.last", "stores.a.b.last"])
        .with_from("-5000min")
        .with_interval("1min");
    assert!(repeated.validate(Some(10_000)).is_ok());
    assert_eq!(repeated.metrics().len(), 1);
}

#[test]
fn query_rendering() {
    // test_get_defaults: only m is sent; the server's defaults apply.
    let defaults = MetricsQuery::new().with_metric("stores.a.b.last");
    assert_eq!(
        defaults.to_params(Some(10_000)).unwrap(),
        [("m".to_owned(), "stores.a.b.last".to_owned())]
    );
    // go_http's get_metric(metric, "-30d", "1d", "omit"), with a valid aggregator (its
    // test's "stores.store_name.metric_name.agg" is answered 400 by the server).
    assert!(
        "stores.store_name.metric_name.agg"
            .parse::<MetricName>()
            .is_err()
    );
    let params = MetricsQuery::new()
        .with_metric("stores.store_name.metric_name.avg")
        .with_from("-30d")
        .with_interval("1d")
        .with_nulls(Nulls::Omit)
        .to_params(Some(10_000))
        .unwrap();
    let find = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    assert_eq!(find("from"), Some("-30d"));
    assert_eq!(find("interval"), Some("1d"));
    assert_eq!(find("nulls"), Some("omit"));
    assert_eq!(find("until"), None);
    // A bad value is reported with the parameter's name.
    let error = MetricsQuery::new()
        .with_until("whenever")
        .validate(None)
        .unwrap_err();
    assert!(
        error
            .to_string()
            .starts_with("vumi: invalid input: until: `whenever`"),
        "{error}"
    );
}

#[test]
fn metric_names() {
    let account = MetricName::account("default", "questions_completed", Aggregator::Last).unwrap();
    assert_eq!(account.as_str(), "stores.default.questions_completed.last");
    assert_eq!(
        account.kind(),
        MetricKind::Account {
            store: "default",
            metric: "questions_completed"
        }
    );
    let conversation = MetricName::conversation(
        "7c9e6679-7425-40de-944b-e07fc1f90ae7",
        "messages_sent",
        Aggregator::Sum,
    )
    .unwrap();
    assert_eq!(
        conversation.kind(),
        MetricKind::Conversation {
            conversation_id: "7c9e6679-7425-40de-944b-e07fc1f90ae7",
            metric: "messages_sent"
        }
    );
    let other: MetricName = "vumimessage.tries.sum".parse().unwrap();
    assert_eq!(other.kind(), MetricKind::Other);
    assert_eq!(other.aggregator(), Aggregator::Sum);
    // The server's aggregator message, for the GET fixture's m=stores.a.b.
    let error = "stores.a.b".parse::<MetricName>().unwrap_err();
    assert!(
        error
            .message()
            .contains("Aggregator 'b' is not a valid aggregator"),
        "{error}"
    );
    for bad in [
        "metric1",
        "avg",
        "stores..b.avg",
        ".avg",
        "stores.a.b.AVG",
        "stores.a'b.avg",
        "stores.a,b.avg",
        "stores.a(b).avg",
        "stores.a b.avg",
        "stores.*.b.avg",
        "stores.{a,b}.b.avg",
        "stores.[ab].b.avg",
        "stores.é.b.avg",
    ] {
        assert!(bad.parse::<MetricName>().is_err(), "{bad}");
    }
    assert!(MetricName::account("a.b", "c", Aggregator::Max).is_ok());
    assert_eq!(
        vumi_client::series_name(&account),
        "vumi_stores_default_questions_completed"
    );
    assert_eq!(
        vumi_client::series_name(&conversation),
        "vumi_conversations_7c9e6679_7425_40de_944b_e07fc1f90ae7_messages_sent"
    );
}
