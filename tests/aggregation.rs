//! All five backends through `Arc<dyn MetricsSource>`: collection from seeded emulators, one
//! backend down, one backend too slow, and the OpenMetrics output parsed back.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use metrics_emulators::Fault;
use metrics_hub::core::render;
use metrics_hub::{Aggregator, Error, Series};
use metrics_hub_examples::{BACKENDS, Demo};

fn backends_with_series(series: &[Series]) -> BTreeSet<String> {
    series
        .iter()
        .filter_map(|s| s.name.split('_').next())
        .map(str::to_owned)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn collects_from_all_five_backends_through_trait_objects() {
    let demo = Demo::start_emulated().await.unwrap();
    let collection = Aggregator::new(demo.sources())
        .collect(&Demo::query())
        .await;
    assert!(collection.failures.is_empty(), "{:?}", collection.failures);
    assert_eq!(
        backends_with_series(&collection.series),
        BACKENDS.iter().map(|b| (*b).to_owned()).collect()
    );
    let names: Vec<&str> = collection.sources.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, BACKENDS);
    assert!(
        collection
            .sources
            .iter()
            .all(|(_, n)| n.is_some_and(|n| n > 0))
    );

    // The seeded values come back as written through the clients.
    let value = |name: &str, label: (&str, &str)| {
        collection
            .series
            .iter()
            .find(|s| s.name == name && s.labels.get(label.0).map(String::as_str) == Some(label.1))
            .and_then(Series::last_value)
    };
    assert_eq!(
        value(
            "outline_access_key_bytes_transferred",
            ("access_key_id", "0")
        ),
        Some(2_150_000_000.0)
    );
    assert!(value("coopr_queue_tasks", ("tenant", "acme")).is_some());
    let new_checkout: f64 = collection
        .series
        .iter()
        .filter(|s| s.name == "unleash_feature_evaluations")
        .filter(|s| s.labels.get("feature").map(String::as_str) == Some("new-checkout"))
        .filter_map(Series::last_value)
        .sum();
    assert_eq!(new_checkout, 2000.0, "4 tasks × 500 evaluations this hour");
    assert!(
        collection
            .series
            .iter()
            .any(|s| s.name == "vumi_stores_default_active_users"
                && s.labels.get("aggregator").map(String::as_str) == Some("last")
                && s.last_value() == Some(187.0))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_backend_is_one_typed_failure_and_the_others_still_arrive() {
    let mut demo = Demo::start_emulated().await.unwrap();
    demo.emulators.server_mut("coopr").unwrap().stop();
    let collection = Aggregator::new(demo.sources())
        .collect(&Demo::query())
        .await;

    assert_eq!(collection.failures.len(), 1, "{:?}", collection.failures);
    let failure = &collection.failures[0];
    assert_eq!(failure.source, "coopr");
    assert!(
        matches!(
            failure.error,
            Error::Transport {
                backend: "coopr",
                ..
            }
        ),
        "{:?}",
        failure.error
    );
    assert!(failure.error.is_connect());
    let expected: BTreeSet<String> = ["outline", "appoptics", "unleash", "vumi"]
        .map(str::to_owned)
        .into();
    assert_eq!(backends_with_series(&collection.series), expected);

    let table = render::table(&collection);
    // `FAILED  coopr: …`, or `FAILED  coopr (127.0.0.1:PORT): …` once the client says its
    // endpoint.
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("FAILED  coopr") && l.contains(": coopr: could not connect")),
        "{table}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backend_slower_than_the_timeout_fails_alone() {
    let demo = Demo::start_emulated().await.unwrap();
    let vumi = demo.emulators.vumi.as_ref().unwrap();
    vumi.faults().always(Fault::Delay(Duration::from_secs(30)));
    let timeout = Duration::from_secs(2);
    let started = Instant::now();
    let collection = Aggregator::new(demo.sources())
        .with_timeout(timeout)
        .collect(&Demo::query())
        .await;
    // The run ends at the per-source timeout, not after the slow source.
    assert!(started.elapsed() < Duration::from_secs(30));

    assert_eq!(collection.failures.len(), 1, "{:?}", collection.failures);
    assert_eq!(collection.failures[0].source, "vumi");
    assert!(matches!(
        collection.failures[0].error,
        Error::Timeout {
            backend: "vumi",
            ..
        }
    ));
    let expected: BTreeSet<String> = ["outline", "appoptics", "unleash", "coopr"]
        .map(str::to_owned)
        .into();
    assert_eq!(backends_with_series(&collection.series), expected);
}

/// One sample line of the OpenMetrics text: name, labels, value, timestamp.
type Sample = (String, BTreeMap<String, String>, f64, f64);

/// A strict-enough reader of the OpenMetrics text format for what the renderer writes.
fn parse_openmetrics(text: &str) -> (Vec<(String, String)>, Vec<Sample>) {
    assert!(text.ends_with("# EOF\n"), "missing # EOF");
    let mut types = Vec::new();
    let mut samples = Vec::new();
    for line in text.lines() {
        if line == "# EOF" {
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap();
            types.push((name.to_owned(), kind.to_owned()));
            continue;
        }
        if line.starts_with("# UNIT ") || line.starts_with("# HELP ") {
            continue;
        }
        let (name, rest) = match line.find('{') {
            Some(at) => (&line[..at], &line[at..]),
            None => line.split_at(line.find(' ').unwrap()),
        };
        let mut labels = BTreeMap::new();
        let rest = if let Some(body) = rest.strip_prefix('{') {
            let mut chars = body.char_indices();
            let mut key = String::new();
            let mut end = 0;
            while let Some((i, c)) = chars.next() {
                match c {
                    '}' => {
                        end = i + 1;
                        break;
                    }
                    ',' => {}
                    '=' => {
                        assert_eq!(chars.next().map(|(_, c)| c), Some('"'));
                        let mut value = String::new();
                        while let Some((_, c)) = chars.next() {
                            match c {
                                '\\' => match chars.next().map(|(_, c)| c) {
                                    Some('n') => value.push('\n'),
                                    Some(other) => value.push(other),
                                    None => panic!("dangling escape"),
                                },
                                '"' => break,
                                c => value.push(c),
                            }
                        }
                        labels.insert(std::mem::take(&mut key), value);
                    }
                    c => key.push(c),
                }
            }
            &body[end..]
        } else {
            rest
        };
        let mut fields = rest.split_whitespace();
        let value: f64 = fields.next().unwrap().parse().unwrap();
        let timestamp: f64 = fields.next().unwrap().parse().unwrap();
        assert!(fields.next().is_none(), "{line}");
        samples.push((name.to_owned(), labels, value, timestamp));
    }
    (types, samples)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openmetrics_output_parses_back_to_the_same_series() {
    let demo = Demo::start_emulated().await.unwrap();
    let collection = Aggregator::new(demo.sources())
        .collect(&Demo::query())
        .await;
    assert!(collection.failures.is_empty());
    let text = render::openmetrics(&collection.series);
    let (types, samples) = parse_openmetrics(&text);

    // One # TYPE per family, families not repeated.
    let families: BTreeSet<&str> = types.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(families.len(), types.len(), "a family appears twice");

    let expected: usize = collection.series.iter().map(|s| s.points.len()).sum();
    assert_eq!(samples.len(), expected);
    for series in &collection.series {
        let kind = &types.iter().find(|(n, _)| *n == series.name).unwrap().1;
        assert_eq!(kind, series.kind.as_str());
        let sample_name = if kind == "counter" {
            format!("{}_total", series.name)
        } else {
            series.name.clone()
        };
        for point in &series.points {
            #[allow(clippy::cast_precision_loss, reason = "millisecond timestamps fit")]
            let seconds = point.time.timestamp_millis() as f64 / 1000.0;
            assert!(
                samples.iter().any(|(n, l, v, t)| *n == sample_name
                    && *l == series.labels
                    && (*v - point.value).abs() <= f64::EPSILON * point.value.abs().max(1.0)
                    && (*t - seconds).abs() < 1e-3),
                "{} {:?} {} missing",
                series.name,
                series.labels,
                point.value
            );
        }
    }
}
