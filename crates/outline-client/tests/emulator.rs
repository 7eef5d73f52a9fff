//! The client against the Outline emulator over real HTTPS: every endpoint's success and
//! error paths, the certificate pin, transport failures and the metrics source.

use std::sync::Arc;
use std::time::Duration;

use metrics_core::{
    BackoffConfig, ClientOptions, Error, MetricsSource, MetricsSourceExt, Query, RetryConfig,
    SeriesKind, Unit,
};
use metrics_emulators::Fault;
use metrics_emulators::outline::{EmulatedKeyMetrics, EmulatedLocation, OutlineEmulator};
use outline_client::{Cipher, NewAccessKey, OutlineClient, Since};

fn fast_retry() -> RetryConfig {
    RetryConfig::default().with_backoff(BackoffConfig {
        init_backoff: Duration::from_millis(5),
        max_backoff: Duration::from_millis(20),
        base: 2.0,
    })
}

fn client(emulator: &OutlineEmulator) -> OutlineClient {
    OutlineClient::builder()
        .with_api_url(emulator.api_url())
        .with_cert_sha256(emulator.cert_sha256())
        .with_retry(fast_retry())
        .build()
        .unwrap()
}

async fn start() -> (OutlineEmulator, OutlineClient) {
    let emulator = OutlineEmulator::start().await.unwrap();
    let client = client(&emulator);
    (emulator, client)
}

// --- Pinning ---

#[tokio::test]
async fn right_pin_connects() {
    let (emulator, client) = start().await;
    assert!(client.is_pinned());
    let server = client.server().await.unwrap();
    assert_eq!(server.name, "Outline Server");
    assert_eq!(emulator.requests().count(), 1);
}

#[tokio::test]
async fn wrong_pin_fails_in_the_handshake_and_sends_nothing() {
    let emulator = OutlineEmulator::start().await.unwrap();
    let mut wrong = emulator.cert_sha256().to_owned();
    let last = if wrong.ends_with('0') { "1" } else { "0" };
    wrong.replace_range(63.., last);
    let client = OutlineClient::builder()
        .with_api_url(emulator.api_url())
        .with_cert_sha256(wrong)
        .with_retry(fast_retry())
        .build()
        .unwrap();
    let err = client.server().await.unwrap_err();
    // The core maps connect errors whose chain mentions "certificate" to Error::Tls.
    let Error::Tls { message, .. } = &err else {
        panic!("expected Error::Tls, got {err:?}");
    };
    assert!(message.contains("does not match"), "{message}");
    assert!(message.contains(emulator.cert_sha256()), "{message}");
    assert!(!err.is_retryable());
    assert_eq!(emulator.requests().count(), 0);
    // Nothing else gets through either.
    assert!(client.metrics().transfer().await.is_err());
    assert!(
        client
            .access_keys()
            .create(&NewAccessKey::new())
            .await
            .is_err()
    );
    assert_eq!(emulator.requests().count(), 0);
    assert_eq!(emulator.access_key_count(), 0);
}

#[tokio::test]
async fn pin_accepts_any_case_and_colons() {
    let emulator = OutlineEmulator::start().await.unwrap();
    let colons: Vec<String> = emulator
        .cert_sha256()
        .to_lowercase()
        .as_bytes()
        .chunks(2)
        .map(|pair| String::from_utf8(pair.to_vec()).unwrap())
        .collect();
    let client = OutlineClient::builder()
        .with_api_url(emulator.api_url())
        .with_cert_sha256(colons.join(":"))
        .build()
        .unwrap();
    client.server().await.unwrap();
}

#[tokio::test]
async fn without_a_pin_the_self_signed_certificate_is_rejected() {
    let emulator = OutlineEmulator::start().await.unwrap();
    let client = OutlineClient::builder()
        .with_api_url(emulator.api_url())
        .build()
        .unwrap();
    assert!(!client.is_pinned());
    let err = client.server().await.unwrap_err();
    assert!(matches!(err, Error::Tls { .. }), "{err:?}");
    assert!(err.to_string().contains("certSha256"), "{err}");
    assert_eq!(emulator.requests().count(), 0);
}

#[tokio::test]
async fn accepting_any_certificate_is_an_explicit_opt_out() {
    let emulator = OutlineEmulator::start().await.unwrap();
    let client = OutlineClient::builder()
        .with_api_url(emulator.api_url())
        .with_client_options(ClientOptions::new().with_danger_accept_invalid_certs(true))
        .build()
        .unwrap();
    client.server().await.unwrap();
    assert_eq!(emulator.requests().count(), 1);
}

/// A server replaying the real certificate without its private key must fail: the
/// handshake signature is checked against the pinned certificate's key.
#[tokio::test]
async fn an_impostor_with_the_public_certificate_is_rejected() {
    use metrics_emulators::EmulatorServer;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    use rustls::server::{ClientHello, ResolvesServerCert};
    use rustls::sign::CertifiedKey;

    #[derive(Debug)]
    struct Fixed(Arc<CertifiedKey>);
    impl ResolvesServerCert for Fixed {
        fn resolve(&self, _: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
            Some(Arc::clone(&self.0))
        }
    }

    let genuine = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).unwrap();
    let other = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).unwrap();
    let cert: CertificateDer<'static> = genuine.cert.der().clone();
    let pin = ring::digest::digest(&ring::digest::SHA256, cert.as_ref());
    let pin: String = pin.as_ref().iter().map(|b| format!("{b:02X}")).collect();
    let wrong_key = PrivateKeyDer::Pkcs8(other.signing_key.serialize_der().into());
    let signer = rustls::crypto::ring::sign::any_supported_type(&wrong_key).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(Fixed(Arc::new(CertifiedKey::new(
            vec![cert],
            signer,
        )))));
    let impostor = EmulatorServer::start_tls(axum::Router::new(), Arc::new(config))
        .await
        .unwrap();

    let client = OutlineClient::builder()
        .with_api_url(format!("{}/AbCdEfGhIjKlMnOpQrStUv", impostor.base_url()))
        .with_cert_sha256(pin)
        .build()
        .unwrap();
    let err = client.server().await.unwrap_err();
    assert!(matches!(err, Error::Tls { .. }), "{err:?}");
    assert!(!err.to_string().contains("does not match"), "{err}");
    assert_eq!(impostor.requests().count(), 0);
}

// --- Construction ---

#[tokio::test]
async fn install_output_json_and_access_txt() {
    let emulator = OutlineEmulator::start().await.unwrap();
    for text in [emulator.access_json(), emulator.access_txt()] {
        let client = OutlineClient::builder()
            .with_install_output(&text)
            .build()
            .unwrap();
        assert!(client.is_pinned());
        client.server().await.unwrap();
    }
}

#[test]
fn from_env_reads_the_documented_variables() {
    let env = metrics_core::Env::from_pairs([
        (
            "OUTLINE_API_URL",
            "https://203.0.113.7:45678/AbCdEfGhIjKlMnOpQrStUv",
        ),
        (
            "OUTLINE_CERT_SHA256",
            "0BB78685B1661FD520A3F50763BF8CF680B9CD7AAC01082ACEF03A221BF9A881",
        ),
    ]);
    let client = outline_client::OutlineClientBuilder::from_env_with(&env)
        .build()
        .unwrap();
    assert!(client.is_pinned());
    assert_eq!(client.redacted_api_url(), "https://203.0.113.7:45678/***");
}

#[test]
fn configuration_errors() {
    let cases: Vec<(outline_client::OutlineClientBuilder, &str)> = vec![
        (OutlineClient::builder(), "no apiUrl"),
        (
            OutlineClient::builder().with_api_url("not a url AbCdEfGhIjKl"),
            "not a valid URL",
        ),
        (
            OutlineClient::builder().with_api_url("https://203.0.113.7:45678"),
            "no secret path",
        ),
        (
            OutlineClient::builder().with_api_url("ftp://203.0.113.7/AbCdEfGhIjKl"),
            "https://",
        ),
        (
            OutlineClient::builder()
                .with_api_url("https://203.0.113.7:45678/AbCdEfGhIjKl")
                .with_cert_sha256("0BB7"),
            "64 hex digits",
        ),
        (
            OutlineClient::builder()
                .with_api_url("http://203.0.113.7:45678/AbCdEfGhIjKl")
                .with_cert_sha256(
                    "0BB78685B1661FD520A3F50763BF8CF680B9CD7AAC01082ACEF03A221BF9A881",
                ),
            "https:// apiUrl",
        ),
        (
            OutlineClient::builder()
                .with_api_url("https://203.0.113.7:45678/AbCdEfGhIjKl")
                .with_cert_sha256(
                    "0BB78685B1661FD520A3F50763BF8CF680B9CD7AAC01082ACEF03A221BF9A881",
                )
                .with_client_options(
                    ClientOptions::new().with_http_client(metrics_core::reqwest::Client::new()),
                ),
            "injected",
        ),
        (
            OutlineClient::builder().with_install_output("{\"apiUrl\": \"https://h/AbCdEfGhIjKl"),
            "install output",
        ),
    ];
    for (builder, expected) in cases {
        let err = builder.build().unwrap_err();
        assert!(matches!(err, Error::Config { .. }), "{err:?}");
        let text = err.to_string();
        assert!(text.contains(expected), "{text} should mention {expected}");
        assert!(!text.contains("AbCdEfGhIjKl"), "{text}");
    }
}

// --- Server settings ---

#[tokio::test]
async fn server_settings_round_trip() {
    let (emulator, client) = start().await;
    let before = client.server().await.unwrap();
    assert_eq!(before.version.as_deref(), Some("1.12.3"));
    assert_eq!(before.access_key_data_limit, None);
    assert!(before.created_at().is_some());

    client.rename_server("Ünïcödé server").await.unwrap();
    assert_eq!(emulator.server_name(), "Ünïcödé server");
    client
        .set_hostname_for_access_keys("vpn.example.com")
        .await
        .unwrap();
    client.set_port_for_new_access_keys(23456).await.unwrap();
    client.set_default_data_limit(0).await.unwrap();
    let after = client.server().await.unwrap();
    assert_eq!(after.name, "Ünïcödé server");
    assert_eq!(
        after.hostname_for_access_keys.as_deref(),
        Some("vpn.example.com")
    );
    assert_eq!(after.port_for_new_access_keys, Some(23456));
    assert_eq!(after.access_key_data_limit.map(|l| l.bytes), Some(0));

    client.remove_default_data_limit().await.unwrap();
    assert_eq!(emulator.default_data_limit(), None);
    let key = client
        .access_keys()
        .create(&NewAccessKey::new())
        .await
        .unwrap();
    assert!(
        key.access_url
            .ends_with("@vpn.example.com:23456/?outline=1")
    );
}

#[tokio::test]
async fn server_setting_errors() {
    let (emulator, client) = start().await;
    let requests = emulator.requests().count();
    for err in [
        client.rename_server("").await.unwrap_err(),
        client.rename_server(&"x".repeat(101)).await.unwrap_err(),
        client.set_hostname_for_access_keys("").await.unwrap_err(),
        client.set_port_for_new_access_keys(0).await.unwrap_err(),
    ] {
        assert!(matches!(err, Error::InvalidInput { .. }), "{err:?}");
    }
    assert_eq!(emulator.requests().count(), requests);
    // 100 UTF-16 units is the limit, not 100 bytes.
    client.rename_server(&"é".repeat(100)).await.unwrap();

    let err = client
        .set_hostname_for_access_keys("bad-host!")
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::Api { status: 400, code: Some(c), .. } if c == "InvalidArgument"),
        "{err:?}"
    );
    emulator.mark_port_unavailable(9090);
    let err = client.set_port_for_new_access_keys(9090).await.unwrap_err();
    assert!(
        matches!(&err, Error::Api { status: 409, code: Some(c), message, .. }
            if c == "Conflict" && message == "Port 9090 is unavailable"),
        "{err:?}"
    );
}

// --- Access keys ---

#[tokio::test]
async fn access_key_lifecycle() {
    let (emulator, client) = start().await;
    let keys = client.access_keys();
    let alice = keys
        .create(
            &NewAccessKey::new()
                .with_name("Alice")
                .with_method(Cipher::Aes256Gcm)
                .with_data_limit(0),
        )
        .await
        .unwrap();
    assert_eq!(alice.id, "0");
    assert_eq!(alice.cipher(), Some(Cipher::Aes256Gcm));
    assert_eq!(alice.data_limit.map(|l| l.bytes), Some(0));
    assert_eq!(alice.password.len(), 22);
    assert!(alice.access_url.starts_with("ss://"));

    let bob = keys.create(&NewAccessKey::new()).await.unwrap();
    assert_eq!(bob.id, "1");
    assert_eq!(bob.name, "");
    assert_eq!(bob.cipher(), Some(Cipher::Chacha20IetfPoly1305));

    keys.rename(&bob.id, "Bob").await.unwrap();
    keys.set_data_limit(&bob.id, 5_958_113_497).await.unwrap();
    let fetched = keys.get(&bob.id).await.unwrap();
    assert_eq!(fetched.name, "Bob");
    assert_eq!(fetched.data_limit.map(|l| l.bytes), Some(5_958_113_497));
    keys.remove_data_limit(&bob.id).await.unwrap();
    assert_eq!(keys.get(&bob.id).await.unwrap().data_limit, None);

    let listed: Vec<String> = keys
        .list()
        .await
        .unwrap()
        .into_iter()
        .map(|k| k.id)
        .collect();
    assert_eq!(listed, ["0", "1"]);

    keys.delete(&alice.id).await.unwrap();
    let err = keys.get(&alice.id).await.unwrap_err();
    assert!(
        matches!(&err, Error::NotFound { code: Some(c), message, .. }
            if c == "NotFound" && message == "Access key \"0\" not found"),
        "{err:?}"
    );
    assert_eq!(emulator.access_key_count(), 1);
}

#[tokio::test]
async fn access_keys_with_chosen_ids() {
    let (emulator, client) = start().await;
    let keys = client.access_keys();
    for id in ["my-id", "a/b c", "ключ", "50%", "..."] {
        let key = keys
            .create_with_id(
                id,
                &NewAccessKey::new().with_name("Custom").with_port(23456),
            )
            .await
            .unwrap();
        assert_eq!(key.id, id);
        assert_eq!(keys.get(id).await.unwrap().id, id);
        keys.rename(id, "Renamed").await.unwrap();
        assert_eq!(emulator.access_key(id).unwrap().name, "Renamed");
    }
    let err = keys
        .create_with_id("my-id", &NewAccessKey::new())
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::Api { status: 409, code: Some(c), message, .. }
            if c == "Conflict" && message == "Access key \"my-id\" conflict"),
        "{err:?}"
    );
    keys.delete("a/b c").await.unwrap();
    assert!(emulator.access_key("a/b c").is_none());
    for bad in ["", ".", ".."] {
        assert!(matches!(
            keys.get(bad).await,
            Err(Error::InvalidInput { .. })
        ));
    }
}

#[tokio::test]
async fn access_key_errors() {
    let (emulator, client) = start().await;
    let keys = client.access_keys();
    let first = keys
        .create(&NewAccessKey::new().with_password("same-password"))
        .await
        .unwrap();
    let err = keys
        .create(&NewAccessKey::new().with_password("same-password"))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::Api { status: 409, code: Some(c), message, .. }
            if c == "Conflict" && message.contains("has the same password")),
        "{err:?}"
    );
    emulator.mark_port_unavailable(9090);
    let err = keys
        .create(&NewAccessKey::new().with_port(9090))
        .await
        .unwrap_err();
    assert!(matches!(&err, Error::Api { status: 409, .. }), "{err:?}");
    // Both failures burned an id, as on the real server.
    let next = keys.create(&NewAccessKey::new()).await.unwrap();
    assert_eq!(first.id, "0");
    assert_eq!(next.id, "3");

    let requests = emulator.requests().count();
    for err in [
        keys.create(&NewAccessKey::new().with_port(0))
            .await
            .unwrap_err(),
        keys.create(&NewAccessKey::new().with_password(""))
            .await
            .unwrap_err(),
        keys.rename("0", "").await.unwrap_err(),
    ] {
        assert!(matches!(err, Error::InvalidInput { .. }), "{err:?}");
    }
    assert_eq!(emulator.requests().count(), requests);

    for err in [
        keys.rename("999", "x").await.unwrap_err(),
        keys.delete("999").await.unwrap_err(),
        keys.set_data_limit("999", 1).await.unwrap_err(),
        keys.remove_data_limit("999").await.unwrap_err(),
    ] {
        assert!(
            matches!(&err, Error::NotFound { code: Some(c), .. } if c == "NotFound"),
            "{err:?}"
        );
    }
}

#[tokio::test]
async fn key_creation_is_not_retried_but_reads_are() {
    let (emulator, client) = start().await;
    emulator.faults().inject(
        Fault::Status {
            status: 503,
            retry_after: None,
            body: String::new(),
        },
        1,
    );
    let err = client
        .access_keys()
        .create(&NewAccessKey::new())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Api { status: 503, .. }), "{err:?}");
    assert_eq!(emulator.requests().count(), 1);
    assert_eq!(emulator.access_key_count(), 0);

    emulator.requests().clear();
    emulator.faults().inject(
        Fault::Status {
            status: 503,
            retry_after: None,
            body: String::new(),
        },
        2,
    );
    client.server().await.unwrap();
    assert_eq!(emulator.requests().count(), 3);
}

// --- Metrics ---

#[tokio::test]
async fn metrics_enabled_flag() {
    let (emulator, client) = start().await;
    assert!(!client.metrics().enabled().await.unwrap());
    client.metrics().set_enabled(true).await.unwrap();
    assert!(emulator.metrics_enabled());
    assert!(client.metrics().enabled().await.unwrap());
    assert!(client.server().await.unwrap().metrics_enabled);
    client.metrics().set_enabled(false).await.unwrap();
    assert!(!client.metrics().enabled().await.unwrap());
}

#[tokio::test]
async fn transfer_per_key() {
    let (emulator, client) = start().await;
    assert!(client.metrics().transfer().await.unwrap().is_empty());
    let ids = emulator.add_access_keys(3);
    emulator.set_transfer(&ids[0], 76_609);
    emulator.set_transfer(&ids[1], 5_958_113_497);
    emulator.set_transfer(&ids[2], 0);
    emulator.set_transfer("alpha-key", 365_474);
    emulator.set_transfer("deleted-key", 1);
    let transfer = client.metrics().transfer().await.unwrap();
    assert_eq!(transfer.len(), 4);
    assert_eq!(transfer.get(&ids[1]), Some(5_958_113_497));
    assert_eq!(transfer.get(&ids[2]), None);
    assert_eq!(transfer.bytes(&ids[2]), 0);
    assert_eq!(transfer.get("alpha-key"), Some(365_474));

    emulator.set_prometheus_down(true);
    let err = client.metrics().transfer().await.unwrap_err();
    assert!(
        matches!(&err, Error::Api { status: 500, code: Some(c), .. } if c == "InternalServer"),
        "{err:?}"
    );
}

#[tokio::test]
async fn transfer_of_a_hundred_thousand_keys() {
    let (emulator, client) = start().await;
    let ids = emulator.add_access_keys(100_000);
    emulator.set_transfers(
        ids.iter()
            .enumerate()
            .map(|(i, id)| (id.clone(), 1_000_000_007 + i as u64 * 7919)),
    );
    let transfer = client.metrics().transfer().await.unwrap();
    assert_eq!(transfer.len(), 100_000);
    let expected_total: u64 = (0..100_000u64).map(|i| 1_000_000_007 + i * 7919).sum();
    assert_eq!(transfer.total(), expected_total);
    assert_eq!(transfer.get("99999"), Some(1_000_000_007 + 99_999 * 7919));
    let map = transfer.to_map();
    assert_eq!(map.len(), 100_000);
    assert_eq!(map["4242"], 1_000_000_007 + 4242 * 7919);
}

#[tokio::test]
async fn experimental_server_metrics() {
    let (emulator, client) = start().await;
    let empty = client
        .metrics()
        .server_metrics(Since::hours(1).unwrap())
        .await
        .unwrap();
    assert!(empty.access_keys.is_empty());
    assert_eq!(empty.server.bandwidth.current.timestamp, None);

    let ids = emulator.add_access_keys(2);
    emulator.add_access_key_with_id("alpha-key", "non-numeric id");
    emulator.set_transfer(&ids[0], 76_609);
    emulator.set_transfer("alpha-key", 365_474);
    emulator.set_key_metrics(
        &ids[1],
        EmulatedKeyMetrics {
            data_bytes: 107_999.777_999_999_99,
            tunnel_seconds: 539.9985,
            last_traffic_seen: Some(1_795_340_700.0),
            peak_devices: 2,
            peak_timestamp: Some(1_795_340_700.0),
        },
    );
    let metrics = client.metrics().server_metrics(Since::MAX).await.unwrap();
    let mut ids_seen: Vec<Option<i64>> = metrics
        .access_keys
        .iter()
        .map(|k| k.access_key_id)
        .collect();
    ids_seen.sort();
    assert_eq!(ids_seen, [None, Some(0), Some(1)]);
    let explicit = metrics
        .access_keys
        .iter()
        .find(|k| k.access_key_id == Some(1))
        .unwrap();
    assert_eq!(explicit.connection.peak_device_count.data, 2);
    assert!((explicit.tunnel_time.seconds - 539.9985).abs() < 1e-9);
    let location = &metrics.server.locations[0];
    assert_eq!(location.location.as_deref(), Some("XL"));
    assert_eq!(location.asn, None);
    assert!(metrics.server.bandwidth.current.timestamp.is_some());
    assert!(metrics.server.data_transferred.bytes > 0.0);

    emulator.set_locations(vec![EmulatedLocation {
        location: Some("US".into()),
        asn: Some(15169),
        as_org: Some("GOOGLE".into()),
        data_bytes: 253_118.508_673_966_7,
        tunnel_seconds: 210.932_647_369_444_45,
    }]);
    let metrics = client
        .metrics()
        .server_metrics("1.5h".parse().unwrap())
        .await
        .unwrap();
    assert_eq!(metrics.server.locations[0].asn, Some(15169));
    assert!((metrics.server.data_transferred.bytes - 253_118.508_673_966_7).abs() < 1e-6);
    let sent = emulator.requests().requests();
    assert!(
        sent.iter().any(|r| r.uri.ends_with("?since=5400s")),
        "{sent:?}"
    );
    assert!(sent.iter().any(|r| r.uri.ends_with("?since=3299700s")));
}

#[tokio::test]
async fn old_servers_without_experimental_metrics() {
    let (emulator, client) = start().await;
    emulator.set_server_metrics_available(false);
    let err = client
        .metrics()
        .server_metrics(Since::default())
        .await
        .unwrap_err();
    assert!(
        matches!(
            &err,
            Error::Unsupported {
                status: Some(404),
                ..
            }
        ),
        "{err:?}"
    );
    assert!(!err.to_string().contains(emulator.prefix()), "{err}");
    // A 404 is final: no retries.
    assert_eq!(emulator.requests().count(), 1);
}

// --- Transport failures ---

#[tokio::test]
async fn transport_failures_are_typed() {
    let (mut emulator, _) = start().await;
    let client = OutlineClient::builder()
        .with_api_url(emulator.api_url())
        .with_cert_sha256(emulator.cert_sha256())
        .with_client_options(ClientOptions::new().with_timeout(Duration::from_millis(300)))
        .with_retry(RetryConfig::none())
        .build()
        .unwrap();

    emulator
        .faults()
        .inject(Fault::Delay(Duration::from_secs(3)), 1);
    let err = client.server().await.unwrap_err();
    assert!(matches!(err, Error::Timeout { .. }), "{err:?}");

    emulator.faults().inject(Fault::DropConnection, 1);
    let err = client.metrics().transfer().await.unwrap_err();
    assert!(matches!(err, Error::Transport { .. }), "{err:?}");

    emulator.faults().inject(Fault::MalformedBody, 1);
    let err = client.metrics().transfer().await.unwrap_err();
    assert!(matches!(err, Error::Decode { .. }), "{err:?}");

    emulator.faults().inject(
        Fault::Status {
            status: 502,
            retry_after: None,
            body: "<html><body><h1>502 Bad Gateway</h1></body></html>".into(),
        },
        1,
    );
    let err = client.server().await.unwrap_err();
    assert!(
        matches!(&err, Error::Api { status: 502, code: None, message, .. } if message.contains("502 Bad Gateway")),
        "{err:?}"
    );

    emulator.faults().inject(
        Fault::Status {
            status: 400,
            retry_after: None,
            body: String::new(),
        },
        1,
    );
    let err = client.server().await.unwrap_err();
    assert!(
        matches!(
            err,
            Error::Api {
                status: 400,
                code: None,
                ..
            }
        ),
        "{err:?}"
    );

    emulator.faults().inject(
        Fault::Status {
            status: 200,
            retry_after: None,
            body: "{\"server\":[{\"location\":\"US\"}],\"accessKeys\":[]}".into(),
        },
        1,
    );
    // The 1.11.1-rc shape (server as an array) is a typed decode error.
    let err = client
        .metrics()
        .server_metrics(Since::default())
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::Decode { path, .. } if path.starts_with("server")),
        "{err:?}"
    );

    emulator.stop();
    let err = client.server().await.unwrap_err();
    assert!(matches!(err, Error::Transport { .. }), "{err:?}");
    assert!(!err.to_string().contains(emulator.prefix()));
}

// --- Redaction ---

fn assert_hidden(what: &str, text: &str, secret: &str) {
    assert!(!text.contains(secret), "{what} shows the secret: {text}");
}

fn assert_error_hidden(err: &Error, secret: &str) {
    assert_hidden("Display", &err.to_string(), secret);
    assert_hidden("Debug", &format!("{err:?}"), secret);
    let mut source = std::error::Error::source(err);
    while let Some(inner) = source {
        assert_hidden("source Display", &inner.to_string(), secret);
        assert_hidden("source Debug", &format!("{inner:?}"), secret);
        source = inner.source();
    }
}

#[tokio::test]
async fn the_api_url_never_shows() {
    let (mut emulator, client) = start().await;
    let secret = emulator.prefix().to_owned();
    let port = emulator.address().port();

    let builder = OutlineClient::builder().with_install_output(emulator.access_json());
    assert_hidden("builder Debug", &format!("{builder:?}"), &secret);
    assert_hidden("client Debug", &format!("{client:?}"), &secret);
    assert_hidden("client Display", &format!("{client}"), &secret);
    assert_eq!(
        client.redacted_api_url(),
        format!("https://127.0.0.1:{port}/***")
    );
    assert!(format!("{client}").contains("/***"));

    let mut errors = Vec::new();
    // The server echoes the path, prefix included, in ResourceNotFound.
    let wrong_path = OutlineClient::builder()
        .with_api_url(format!("{}/wrong", emulator.api_url()))
        .with_cert_sha256(emulator.cert_sha256())
        .build()
        .unwrap();
    let err = wrong_path.server().await.unwrap_err();
    assert!(
        matches!(&err, Error::NotFound { code: Some(c), message, .. }
            if c == "ResourceNotFound" && message.ends_with("does not exist")),
        "{err:?}"
    );
    errors.push(err);
    errors.push(
        wrong_path
            .metrics()
            .server_metrics(Since::default())
            .await
            .unwrap_err(),
    );
    let wrong_pin = OutlineClient::builder()
        .with_api_url(emulator.api_url())
        .with_cert_sha256("00".repeat(32))
        .build()
        .unwrap();
    errors.push(wrong_pin.server().await.unwrap_err());
    let unpinned = OutlineClient::builder()
        .with_api_url(emulator.api_url())
        .build()
        .unwrap();
    errors.push(unpinned.server().await.unwrap_err());
    let once = OutlineClient::builder()
        .with_install_output(emulator.access_json())
        .with_retry(RetryConfig::none())
        .build()
        .unwrap();
    emulator.faults().inject(Fault::MalformedBody, 1);
    errors.push(once.server().await.unwrap_err());
    emulator.faults().inject(Fault::DropConnection, 1);
    errors.push(once.server().await.unwrap_err());
    errors.push(
        OutlineClient::builder()
            .with_api_url(format!("https://127.0.0.1:99999/{secret}"))
            .build()
            .unwrap_err(),
    );
    errors.push(
        OutlineClient::builder()
            .with_install_output(format!("{{\"apiUrl\":\"https://127.0.0.1/{secret}"))
            .build()
            .unwrap_err(),
    );
    emulator.stop();
    errors.push(client.server().await.unwrap_err());
    let slow = OutlineClient::builder()
        .with_api_url(format!("https://192.0.2.1:9/{secret}"))
        .with_cert_sha256(emulator.cert_sha256())
        .with_client_options(ClientOptions::new().with_connect_timeout(Duration::from_millis(50)))
        .with_retry(RetryConfig::none())
        .build()
        .unwrap();
    errors.push(slow.server().await.unwrap_err());

    assert_eq!(errors.len(), 10);
    for err in &errors {
        assert_error_hidden(err, &secret);
    }
}

// --- MetricsSource ---

#[tokio::test]
async fn default_collect_is_the_transfer_only() {
    let (emulator, client) = start().await;
    let ids = emulator.add_access_keys(2);
    emulator.set_transfer(&ids[0], 1024);
    emulator.set_transfer("alpha-key", 2048);
    let source: Arc<dyn MetricsSource> = Arc::new(client);
    assert_eq!(source.backend(), "outline");
    let series = source.collect_all().await.unwrap();
    assert_eq!(series.len(), 2);
    let first = series
        .iter()
        .find(|s| s.labels.get("access_key_id").map(String::as_str) == Some("0"))
        .unwrap();
    assert_eq!(
        first.id(),
        r#"outline_access_key_bytes_transferred{access_key_id="0"}"#
    );
    assert_eq!(first.kind, SeriesKind::Gauge);
    assert_eq!(first.unit, Some(Unit::Bytes));
    assert_eq!(first.last_value(), Some(1024.0));
    assert!(first.help.as_deref().unwrap().contains("30 days"));
    let paths: Vec<String> = emulator
        .requests()
        .requests()
        .into_iter()
        .map(|r| r.uri)
        .collect();
    assert_eq!(paths.len(), 1);
    assert!(paths[0].ends_with("/metrics/transfer"));
}

#[tokio::test]
async fn server_series_when_asked_for() {
    let (emulator, client) = start().await;
    let ids = emulator.add_access_keys(1);
    emulator.add_access_key_with_id("alpha-key", "");
    emulator.set_transfer(&ids[0], 4096);
    emulator.set_transfer("alpha-key", 8192);

    let only_server = Query::new()
        .with_names(["outline_server_*"])
        .last(Duration::from_secs(3600));
    let series = client.collect(&only_server).await.unwrap();
    assert!(series.iter().all(|s| s.name.starts_with("outline_server_")));
    let names: std::collections::BTreeSet<&str> = series.iter().map(|s| s.name.as_str()).collect();
    assert!(names.contains("outline_server_data_transferred_bytes"));
    assert!(names.contains("outline_server_bandwidth_peak_bytes_per_second"));
    assert!(names.contains("outline_server_location_tunnel_time_seconds"));
    let per_key: Vec<_> = series
        .iter()
        .filter(|s| s.name == "outline_server_access_key_data_transferred_bytes")
        .collect();
    // alpha-key has accessKeyId null and is left out of the per-key server series.
    assert_eq!(per_key.len(), 1);
    assert_eq!(per_key[0].labels["access_key_id"], "0");
    let location = series
        .iter()
        .find(|s| s.name == "outline_server_location_data_transferred_bytes")
        .unwrap();
    assert_eq!(location.labels["location"], "XL");
    assert_eq!(location.labels["asn"], "");
    let uris: Vec<String> = emulator
        .requests()
        .requests()
        .into_iter()
        .map(|r| r.uri)
        .collect();
    assert_eq!(uris.len(), 1, "{uris:?}");
    assert!(
        uris[0].ends_with("/experimental/server/metrics?since=1h"),
        "{uris:?}"
    );

    emulator.requests().clear();
    let everything = client
        .collect(&Query::new().with_names(["outline_*"]))
        .await
        .unwrap();
    assert!(
        everything
            .iter()
            .any(|s| s.name == "outline_access_key_bytes_transferred")
    );
    assert!(
        everything
            .iter()
            .any(|s| s.name == "outline_server_tunnel_time_seconds")
    );
    let uris: Vec<String> = emulator
        .requests()
        .requests()
        .into_iter()
        .map(|r| r.uri)
        .collect();
    assert!(uris[1].ends_with("?since=30d"), "{uris:?}");

    let exact = client
        .collect(&Query::new().with_names(["outline_server_tunnel_time_seconds"]))
        .await
        .unwrap();
    assert_eq!(exact.len(), 1);

    let too_long = Query::new()
        .with_names(["outline_server_*"])
        .last(Duration::from_secs(90 * 86_400));
    assert!(matches!(
        client.collect(&too_long).await,
        Err(Error::InvalidInput { .. })
    ));

    emulator.set_server_metrics_available(false);
    let mixed = client
        .collect(&Query::new().with_names(["outline_*"]))
        .await
        .unwrap();
    assert!(
        mixed
            .iter()
            .all(|s| s.name == "outline_access_key_bytes_transferred")
    );
    assert_eq!(mixed.len(), 2);
    assert!(matches!(
        client.collect(&only_server).await,
        Err(Error::Unsupported { .. })
    ));
}
