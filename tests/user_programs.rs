//! The programs in `examples/` that a user wrote from the README and the API docs, run here
//! on emulators and checked the way their author would: the quota alert names the right
//! keys on the right server, the Unleash counts read back exactly, the JSON view tells two
//! Outline servers apart and lists every source.

use std::sync::Arc;

use metrics_emulators::outline::OutlineEmulator;
use metrics_hub::outline::OutlineClient;
use metrics_hub::{Aggregator, MetricsSource, Query};

#[allow(
    dead_code,
    unreachable_pub,
    reason = "the example's `main` is not called here"
)]
#[path = "../examples/outline_quota_alert.rs"]
mod outline_quota_alert;

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
