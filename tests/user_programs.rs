//! The programs in `examples/` that a user wrote from the README and the API docs, run here
//! on emulators and checked the way their author would: the quota alert names the right
//! keys on the right server, the Unleash counts read back exactly, the JSON view tells two
//! Outline servers apart and lists every source.

use std::collections::BTreeMap;
use std::sync::Arc;

use metrics_emulators::outline::OutlineEmulator;
use metrics_emulators::unleash::UnleashEmulator;
use metrics_hub::chrono::Utc;
use metrics_hub::outline::OutlineClient;
use metrics_hub::unleash::UnleashClient;
use metrics_hub::{Aggregator, MetricsSource, Query};

#[allow(
    dead_code,
    unreachable_pub,
    reason = "the example's `main` is not called here"
)]
#[path = "../examples/outline_quota_alert.rs"]
mod outline_quota_alert;

#[allow(
    dead_code,
    unreachable_pub,
    reason = "the example's `main` is not called here"
)]
#[path = "../examples/unleash_counting.rs"]
mod unleash_counting;

#[allow(
    dead_code,
    unreachable_pub,
    reason = "the example's `main` is not called here"
)]
#[path = "../examples/json_view.rs"]
mod json_view;

const GB: u64 = 1_000_000_000;

/// An Outline emulator whose keys `0`, `1`, … have these own limits and transfers, and
/// its client.
async fn outline_server(
    keys: &[(Option<u64>, u64)],
    default_limit: Option<u64>,
) -> (OutlineEmulator, OutlineClient) {
    let emulator = OutlineEmulator::start().await.unwrap();
    let client = OutlineClient::builder()
        .with_install_output(emulator.access_json())
        .build()
        .unwrap();
    if let Some(bytes) = default_limit {
        client.set_default_data_limit(bytes).await.unwrap();
    }
    for (id, (limit, bytes)) in emulator.add_access_keys(keys.len()).iter().zip(keys) {
        emulator.set_transfer(id, *bytes);
        if let Some(limit) = limit {
            client
                .access_keys()
                .set_data_limit(id, *limit)
                .await
                .unwrap();
        }
    }
    (emulator, client)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_quota_alert_names_the_right_keys_on_the_right_server() {
    // Both servers have keys 0, 1, 2: only the source label tells their transfer apart.
    // Taken by id alone, us/0 would get eu/0's 950 MB against its 1 GB limit and alert.
    let (_eu, eu) = outline_server(
        &[
            (Some(GB), 950_000_000),       // 95 % of its own limit
            (None, 9 * GB),                // 90 % of the server's default
            (Some(GB), 100_000_000),       // 10 %
            (Some(0), 5_000_000),          // cut off on purpose: not an alert
            (Some(2 * GB), 1_600_000_000), // exactly 80 %
        ],
        Some(10 * GB),
    )
    .await;
    let (_us, us) = outline_server(
        &[
            (Some(GB), 100_000_000),     // 10 %
            (None, 50 * GB),             // no limit at all
            (Some(GB / 2), 499_000_000), // 99.8 %
        ],
        None,
    )
    .await;
    let (mut down, down_client) = outline_server(&[(Some(GB), GB)], None).await;
    down.stop();
    let (eu_endpoint, us_endpoint) = (eu.endpoint().to_owned(), us.endpoint().to_owned());
    let down_endpoint = down_client.endpoint().to_owned();

    let report = outline_quota_alert::check_quotas(
        &[
            ("outline-eu", eu),
            ("outline-us", us),
            ("outline-down", down_client),
        ],
        0.8,
    )
    .await;

    let alerts: Vec<(&str, &str, u64, u64, bool)> = report
        .alerts
        .iter()
        .map(|a| {
            (
                a.server.as_str(),
                a.key_id.as_str(),
                a.bytes,
                a.limit,
                a.server_default_limit,
            )
        })
        .collect();
    assert_eq!(
        alerts,
        [
            ("outline-eu", "0", 950_000_000, GB, false),
            ("outline-eu", "1", 9 * GB, 10 * GB, true),
            ("outline-eu", "4", 1_600_000_000, 2 * GB, false),
            ("outline-us", "2", 499_000_000, GB / 2, false),
        ]
    );
    for alert in &report.alerts {
        let endpoint = if alert.server == "outline-eu" {
            &eu_endpoint
        } else {
            &us_endpoint
        };
        assert_eq!(&alert.endpoint, endpoint);
        assert!(
            alert
                .to_string()
                .contains(&format!("{} ({endpoint})", alert.server))
        );
    }
    assert_ne!(eu_endpoint, us_endpoint);

    // The server that is down is named with its endpoint and hides nothing.
    assert_eq!(report.unchecked.len(), 1, "{:?}", report.unchecked);
    assert_eq!(report.unchecked[0].server, "outline-down");
    assert_eq!(
        report.unchecked[0].endpoint.as_deref(),
        Some(down_endpoint.as_str())
    );
}

/// The form a user writes first, with a real client: a `Vec<Arc<OutlineClient>>`.
#[tokio::test]
async fn an_aggregator_from_a_vec_of_arcs_of_a_client() {
    let (_server, client) = outline_server(&[(None, 1_234)], None).await;
    let collection = Aggregator::new(vec![Arc::new(client)])
        .collect(&Query::new())
        .await;
    assert!(collection.failures.is_empty(), "{:?}", collection.failures);
    assert_eq!(collection.sources, [("outline".to_owned(), Some(1))]);
    assert_eq!(collection.series[0].last_value(), Some(1_234.0));

    // Trait objects of different clients mix as before.
    let (_other, other) = outline_server(&[], None).await;
    let shared: Vec<Arc<dyn MetricsSource>> = vec![Arc::new(other)];
    assert_eq!(Aggregator::new(shared).len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unleash_counts_from_many_tasks_read_back_exactly() {
    let unleash = UnleashEmulator::start().await.unwrap();
    for flag in unleash_counting::FLAGS {
        unleash.add_flag(flag);
    }
    // Another application's counts on the same flag are not ours to read back.
    unleash.seed_metrics(
        "new-checkout",
        "search-api",
        "development",
        Utc::now(),
        7,
        3,
        &[],
    );
    let client = UnleashClient::builder()
        .with_url(unleash.base_url())
        .with_api_token(UnleashEmulator::CLIENT_TOKEN)
        .with_admin_token(UnleashEmulator::ADMIN_TOKEN)
        .with_app_name("checkout-web")
        .build()
        .unwrap();

    let counting = unleash_counting::count_and_read_back(&client, 8, 1_000)
        .await
        .unwrap();

    // What the eight tasks evaluated, worked out by hand from the example's request mix.
    let tally = |yes: u64, no: u64, variants: &[(&str, u64)]| unleash_counting::Tally {
        yes,
        no,
        variants: variants
            .iter()
            .map(|(v, n)| ((*v).to_owned(), *n))
            .collect(),
    };
    let expected: BTreeMap<String, unleash_counting::Tally> = [
        ("new-checkout", tally(6_000, 2_000, &[])),
        ("dark-mode", tally(2_672, 5_328, &[])),
        (
            "button-color",
            tally(
                7_200,
                800,
                &[("blue", 3_200), ("disabled", 800), ("green", 4_000)],
            ),
        ),
    ]
    .into_iter()
    .map(|(flag, tally)| (flag.to_owned(), tally))
    .collect();
    assert_eq!(counting.counted, expected);
    assert_eq!(counting.total(), 24_000);
    assert_eq!(counting.evaluations_sent, 24_000);

    // The admin API's read-back equals the counts exactly, and so do the server's books.
    assert_eq!(counting.read_back, counting.counted);
    for (flag, counted) in &counting.counted {
        assert_eq!(
            unleash.counts_where(flag, Some("checkout-web"), None),
            (counted.yes, counted.no),
            "{flag}"
        );
    }
    assert_eq!(unleash.counts("new-checkout"), (6_007, 2_003));
}

/// `(source, access_key_id)` → bytes of every Outline transfer series in the JSON view.
fn outline_transfer(doc: &serde_json::Value) -> BTreeMap<(String, String), f64> {
    doc["series"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["name"] == "outline_access_key_bytes_transferred")
        .map(|s| {
            let label = |name: &str| s["labels"][name].as_str().unwrap().to_owned();
            let value = s["points"][0]["value"].as_f64().unwrap();
            ((label("source"), label("access_key_id")), value)
        })
        .collect()
}

/// The `sources` list of the JSON view: name and series count (`None` for a failed source).
fn listed_sources(doc: &serde_json::Value) -> Vec<(String, Option<u64>)> {
    doc["sources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["source"].as_str().unwrap().to_owned(),
                s["series"].as_u64(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_json_view_tells_two_outline_servers_apart_and_lists_every_source() {
    let (_emulators, sources) = json_view::emulated().await.unwrap();
    let doc: serde_json::Value =
        serde_json::from_str(&json_view::json_view(sources).await.unwrap()).unwrap();

    assert_eq!(doc["failures"], serde_json::json!([]), "{doc:#}");
    let listed = listed_sources(&doc);
    let names: Vec<&str> = listed.iter().map(|(name, _)| name.as_str()).collect();
    assert_eq!(names, ["outline-eu", "outline-us", "coopr", "vumi"]);

    // Keys 0 and 1 exist on both servers; the source label keeps them apart.
    let expected: BTreeMap<(String, String), f64> = [
        ("outline-eu", "0", 2_150_000_000.0),
        ("outline-eu", "1", 734_003_200.0),
        ("outline-eu", "2", 15_728_640.0),
        ("outline-us", "0", 98_304.0),
        ("outline-us", "1", 5_000_000.0),
    ]
    .into_iter()
    .map(|(source, id, bytes)| ((source.to_owned(), id.to_owned()), bytes))
    .collect();
    assert_eq!(outline_transfer(&doc), expected);

    // Every series names its source, and each source's count is its series in the view.
    let series = doc["series"].as_array().unwrap();
    for (name, count) in &listed {
        let labelled = series
            .iter()
            .filter(|s| s["labels"]["source"] == name.as_str())
            .count();
        assert!(labelled > 0, "no series from {name}");
        assert_eq!(*count, Some(labelled as u64), "{name}");
    }
    assert_eq!(
        listed.iter().map(|(_, count)| count.unwrap()).sum::<u64>(),
        series.len() as u64
    );
    let vumi_values: Vec<f64> = series
        .iter()
        .filter(|s| s["labels"]["source"] == "vumi")
        .filter_map(|s| s["points"].as_array()?.last()?["value"].as_f64())
        .collect();
    assert_eq!(vumi_values, [42.0, 187.0]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_json_view_names_a_failed_outline_server_and_keeps_the_others() {
    let (mut emulators, sources) = json_view::emulated().await.unwrap();
    let us_endpoint = sources.outline_us.endpoint().to_owned();
    emulators.outline_us.stop();
    let doc: serde_json::Value =
        serde_json::from_str(&json_view::json_view(sources).await.unwrap()).unwrap();

    let failures = doc["failures"].as_array().unwrap();
    assert_eq!(failures.len(), 1, "{doc:#}");
    assert_eq!(failures[0]["source"], "outline-us");
    assert_eq!(failures[0]["backend"], "outline");
    assert_eq!(failures[0]["endpoint"], us_endpoint.as_str());
    let listed = listed_sources(&doc);
    assert_eq!(listed.len(), 4);
    assert_eq!(listed[1], ("outline-us".to_owned(), None));
    assert!(
        listed
            .iter()
            .all(|(name, count)| name == "outline-us" || count.is_some())
    );
    assert!(
        outline_transfer(&doc)
            .keys()
            .all(|(source, _)| source == "outline-eu")
    );
    assert_eq!(outline_transfer(&doc).len(), 3);
}
