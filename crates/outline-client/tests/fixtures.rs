//! Every fixture recorded from a real Outline server (v1.12.3 code), replayed through
//! httpmock and handled as the real server's answer. Where the fixture's request is one the
//! client refuses to send (a non-string name, port 65536, cipher `rc4-md5`, `since=1m`), the
//! test shows the refusal and then replays the server's answer to a request the client can
//! send, so the error mapping is covered as well.

use httpmock::{Mock, MockServer};
use metrics_core::{Error, RetryConfig};
use outline_client::{Cipher, NewAccessKey, OutlineClient, Since};
use serde_json::Value;

const FIXTURES: &[(&str, &str)] = &[
    (
        "access_key_data_limit_delete_204",
        include_str!("fixtures/access_key_data_limit_delete_204.json"),
    ),
    (
        "access_key_data_limit_invalid_400",
        include_str!("fixtures/access_key_data_limit_invalid_400.json"),
    ),
    (
        "access_key_data_limit_set_204",
        include_str!("fixtures/access_key_data_limit_set_204.json"),
    ),
    (
        "access_key_delete_204",
        include_str!("fixtures/access_key_delete_204.json"),
    ),
    (
        "access_key_get_200",
        include_str!("fixtures/access_key_get_200.json"),
    ),
    (
        "access_key_get_404",
        include_str!("fixtures/access_key_get_404.json"),
    ),
    (
        "access_key_rename_204",
        include_str!("fixtures/access_key_rename_204.json"),
    ),
    (
        "access_keys_create_201",
        include_str!("fixtures/access_keys_create_201.json"),
    ),
    (
        "access_keys_create_invalid_cipher_400",
        include_str!("fixtures/access_keys_create_invalid_cipher_400.json"),
    ),
    (
        "access_keys_create_with_id_201",
        include_str!("fixtures/access_keys_create_with_id_201.json"),
    ),
    (
        "access_keys_create_with_id_conflict_409",
        include_str!("fixtures/access_keys_create_with_id_conflict_409.json"),
    ),
    (
        "access_keys_list_200",
        include_str!("fixtures/access_keys_list_200.json"),
    ),
    (
        "experimental_metrics_bad_since_400",
        include_str!("fixtures/experimental_metrics_bad_since_400.json"),
    ),
    (
        "experimental_metrics_no_traffic",
        include_str!("fixtures/experimental_metrics_no_traffic.json"),
    ),
    (
        "experimental_metrics_since_1h",
        include_str!("fixtures/experimental_metrics_since_1h.json"),
    ),
    (
        "experimental_metrics_since_39d_500",
        include_str!("fixtures/experimental_metrics_since_39d_500.json"),
    ),
    (
        "hostname_invalid_400",
        include_str!("fixtures/hostname_invalid_400.json"),
    ),
    (
        "hostname_set_204",
        include_str!("fixtures/hostname_set_204.json"),
    ),
    (
        "method_not_allowed_405",
        include_str!("fixtures/method_not_allowed_405.json"),
    ),
    (
        "metrics_enabled_get_200",
        include_str!("fixtures/metrics_enabled_get_200.json"),
    ),
    (
        "metrics_enabled_put_204",
        include_str!("fixtures/metrics_enabled_put_204.json"),
    ),
    (
        "metrics_enabled_put_not_boolean_400",
        include_str!("fixtures/metrics_enabled_put_not_boolean_400.json"),
    ),
    (
        "metrics_transfer_ok",
        include_str!("fixtures/metrics_transfer_ok.json"),
    ),
    (
        "port_for_new_keys_204",
        include_str!("fixtures/port_for_new_keys_204.json"),
    ),
    (
        "port_for_new_keys_out_of_range_400",
        include_str!("fixtures/port_for_new_keys_out_of_range_400.json"),
    ),
    (
        "server_data_limit_delete_204",
        include_str!("fixtures/server_data_limit_delete_204.json"),
    ),
    (
        "server_data_limit_set_204",
        include_str!("fixtures/server_data_limit_set_204.json"),
    ),
    (
        "server_get_200",
        include_str!("fixtures/server_get_200.json"),
    ),
    (
        "server_get_with_default_limit_200",
        include_str!("fixtures/server_get_with_default_limit_200.json"),
    ),
    (
        "server_rename_204",
        include_str!("fixtures/server_rename_204.json"),
    ),
    (
        "server_rename_not_string_409",
        include_str!("fixtures/server_rename_not_string_409.json"),
    ),
    (
        "unknown_route_404",
        include_str!("fixtures/unknown_route_404.json"),
    ),
];

/// One recorded exchange.
struct Fixture {
    method: String,
    path: String,
    query: Option<(String, String)>,
    request_body: Option<Value>,
    status: u16,
    headers: Vec<(String, String)>,
    response_body: Option<Value>,
}

fn fixture(name: &str) -> Fixture {
    let text = FIXTURES
        .iter()
        .find_map(|(n, text)| (*n == name).then_some(*text))
        .unwrap_or_else(|| panic!("no fixture {name}"));
    let value: Value = serde_json::from_str(text).unwrap();
    let request = &value["request"];
    let response = &value["response"];
    let full_path = request["path"].as_str().unwrap();
    let (path, query) = match full_path.split_once('?') {
        Some((path, query)) => {
            let (k, v) = query.split_once('=').unwrap();
            (path.to_owned(), Some((k.to_owned(), v.to_owned())))
        }
        None => (full_path.to_owned(), None),
    };
    Fixture {
        method: request["method"].as_str().unwrap().to_owned(),
        path,
        query,
        request_body: request.get("body").cloned(),
        status: u16::try_from(response["status"].as_u64().unwrap()).unwrap(),
        headers: response
            .get("headers")
            .and_then(Value::as_object)
            .map(|h| {
                h.iter()
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned()))
                    .collect()
            })
            .unwrap_or_default(),
        response_body: response.get("body").filter(|b| !b.is_null()).cloned(),
    }
}

/// How closely the mock matches the client's request.
#[derive(Clone, Copy, PartialEq)]
enum Match {
    /// Method, path, query and the exact JSON body of the fixture.
    Exact,
    /// Method and path only, for replaying an answer to a request the client will not send.
    PathOnly,
}

/// Serves `fixture`'s response at `method path` (the fixture's own unless overridden).
async fn serve<'a>(
    server: &'a MockServer,
    fixture: &Fixture,
    matching: Match,
    method_path: Option<(&str, &str)>,
) -> Mock<'a> {
    let (method, path) = method_path.unwrap_or((&fixture.method, &fixture.path));
    server
        .mock_async(|when, then| {
            let mut when = when.method(method).path(path.to_owned());
            if matching == Match::Exact {
                if let Some((name, value)) = &fixture.query {
                    when = when.query_param(name.clone(), value.clone());
                }
                if let Some(body) = &fixture.request_body {
                    when = when
                        .header("content-type", "application/json")
                        .json_body(body.clone());
                }
            }
            let _ = when;
            let mut then = then.status(fixture.status);
            for (name, value) in &fixture.headers {
                then = then.header(name.clone(), value.clone());
            }
            if let Some(body) = &fixture.response_body {
                let _ = then.body(body.to_string());
            }
        })
        .await
}

fn client(server: &MockServer) -> OutlineClient {
    OutlineClient::builder()
        .with_api_url(format!("{}/SECRET", server.base_url()))
        .with_retry(RetryConfig::none())
        .build()
        .unwrap()
}

async fn replay(name: &str) -> (MockServer, Fixture) {
    (MockServer::start_async().await, fixture(name))
}

#[test]
fn every_fixture_file_is_replayed() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");
    let mut files: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            e.unwrap()
                .file_name()
                .to_string_lossy()
                .trim_end_matches(".json")
                .to_owned()
        })
        .collect();
    files.sort();
    let listed: Vec<&str> = FIXTURES.iter().map(|(name, _)| *name).collect();
    assert_eq!(files, listed);
    assert_eq!(listed.len(), 32);
}

#[tokio::test]
async fn server_get_200() {
    let (server, f) = replay("server_get_200").await;
    let mock = serve(&server, &f, Match::Exact, None).await;
    let info = client(&server).server().await.unwrap();
    assert_eq!(info.name, "My Server");
    assert_eq!(info.server_id, "56e90f45-9272-4226-b97b-b59c174bce63");
    assert!(!info.metrics_enabled);
    assert_eq!(info.created_timestamp_ms, 1_795_340_439_404);
    assert_eq!(info.version.as_deref(), Some("dev"));
    assert_eq!(info.access_key_data_limit, None);
    assert_eq!(info.port_for_new_access_keys, Some(23456));
    assert_eq!(info.hostname_for_access_keys.as_deref(), Some("127.0.0.1"));
    assert_eq!(info.supports_server_metrics(), Some(true));
    assert_eq!(mock.calls_async().await, 1);
}

#[tokio::test]
async fn server_get_with_default_limit_200() {
    let (server, f) = replay("server_get_with_default_limit_200").await;
    let mock = serve(&server, &f, Match::Exact, None).await;
    let info = client(&server).server().await.unwrap();
    assert_eq!(info.name, "Outline Server");
    assert_eq!(info.access_key_data_limit.map(|l| l.bytes), Some(100_000));
    assert_eq!(info.port_for_new_access_keys, Some(64228));
    assert_eq!(mock.calls_async().await, 1);
}

#[tokio::test]
async fn server_rename_204() {
    let (server, f) = replay("server_rename_204").await;
    let mock = serve(&server, &f, Match::Exact, None).await;
    client(&server).rename_server("My Server").await.unwrap();
    assert_eq!(mock.calls_async().await, 1);
}

#[tokio::test]
async fn server_rename_not_string_409() {
    let (server, f) = replay("server_rename_not_string_409").await;
    let mock = serve(&server, &f, Match::PathOnly, None).await;
    // A name is always a string here; the server's 409 (not 400) still maps cleanly.
    let err = client(&server).rename_server("x").await.unwrap_err();
    assert!(
        matches!(&err, Error::Api { status: 409, code: Some(code), message, .. }
            if code == "InvalidArgument"
            && message == "Requested server name should be a string <= 100 characters long.  Got 12"),
        "{err:?}"
    );
    assert!(!err.is_retryable());
    assert_eq!(mock.calls_async().await, 1);
}

#[tokio::test]
async fn hostname_set_204() {
    let (server, f) = replay("hostname_set_204").await;
    let mock = serve(&server, &f, Match::Exact, None).await;
    client(&server)
        .set_hostname_for_access_keys("example.com")
        .await
        .unwrap();
    assert_eq!(mock.calls_async().await, 1);
}

#[tokio::test]
async fn hostname_invalid_400() {
    let (server, f) = replay("hostname_invalid_400").await;
    let mock = serve(&server, &f, Match::PathOnly, None).await;
    let client = client(&server);
    // "bad host!" has a space: refused before sending.
    let err = client
        .set_hostname_for_access_keys("bad host!")
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvalidInput { .. }), "{err:?}");
    assert_eq!(mock.calls_async().await, 0);
    // Without the space it goes out; the server's verdict comes back typed.
    let err = client
        .set_hostname_for_access_keys("bad-host!")
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::Api { status: 400, code: Some(code), message, .. }
            if code == "InvalidArgument" && message == "Hostname bad host! isn't a valid hostname or IP address"),
        "{err:?}"
    );
    assert_eq!(mock.calls_async().await, 1);
}

#[tokio::test]
async fn port_for_new_keys_204() {
    let (server, f) = replay("port_for_new_keys_204").await;
    let mock = serve(&server, &f, Match::Exact, None).await;
    client(&server)
        .set_port_for_new_access_keys(12345)
        .await
        .unwrap();
    assert_eq!(mock.calls_async().await, 1);
}

#[tokio::test]
async fn port_for_new_keys_out_of_range_400() {
    let (server, f) = replay("port_for_new_keys_out_of_range_400").await;
    let mock = serve(&server, &f, Match::PathOnly, None).await;
    let client = client(&server);
    // 65536 does not fit the u16 parameter; 0 is refused before sending.
    let err = client.set_port_for_new_access_keys(0).await.unwrap_err();
    assert!(matches!(err, Error::InvalidInput { .. }), "{err:?}");
    assert_eq!(mock.calls_async().await, 0);
    let err = client
        .set_port_for_new_access_keys(65535)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::Api { status: 400, code: Some(code), message, .. }
            if code == "InvalidArgument" && message.starts_with("Port 65536 is invalid")),
        "{err:?}"
    );
    assert_eq!(mock.calls_async().await, 1);
}

#[tokio::test]
async fn server_data_limit_set_204() {
    let (server, f) = replay("server_data_limit_set_204").await;
    let mock = serve(&server, &f, Match::Exact, None).await;
    client(&server)
        .set_default_data_limit(100_000)
        .await
        .unwrap();
    assert_eq!(mock.calls_async().await, 1);
}

#[tokio::test]
async fn server_data_limit_delete_204() {
    let (server, f) = replay("server_data_limit_delete_204").await;
    let mock = serve(&server, &f, Match::Exact, None).await;
    client(&server).remove_default_data_limit().await.unwrap();
    assert_eq!(mock.calls_async().await, 1);
}

#[tokio::test]
async fn access_keys_create_201() {
    let (server, f) = replay("access_keys_create_201").await;
    let mock = serve(&server, &f, Match::Exact, None).await;
    let key = client(&server)
        .access_keys()
        .create(
            &NewAccessKey::new()
                .with_name("Alice")
                .with_method(Cipher::Aes192Gcm)
                .with_data_limit(10_000),
        )
        .await
        .unwrap();
    assert_eq!(key.id, "2");
    assert_eq!(key.name, "Alice");
    assert_eq!(key.port, 64228);
    assert_eq!(key.cipher(), Some(Cipher::Aes192Gcm));
    assert_eq!(key.data_limit.map(|l| l.bytes), Some(10_000));
    assert!(key.access_url.starts_with("ss://YWVzLTE5Mi1nY20"));
    let shown = format!("{key:?}");
    assert!(!shown.contains("tkM7A8mCEYbSsChhcjxrjC"), "{shown}");
    assert!(!shown.contains("YWVzLTE5"), "{shown}");
    assert_eq!(mock.calls_async().await, 1);
}

#[tokio::test]
async fn access_keys_create_invalid_cipher_400() {
    let (server, f) = replay("access_keys_create_invalid_cipher_400").await;
    let mock = serve(&server, &f, Match::PathOnly, None).await;
    // The client's Cipher cannot name rc4-md5.
    assert!(matches!(
        "rc4-md5".parse::<Cipher>(),
        Err(Error::InvalidInput { .. })
    ));
    let err = client(&server)
        .access_keys()
        .create(&NewAccessKey::new())
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::Api { status: 400, code: Some(code), message, .. }
            if code == "InvalidArgument" && message == "cipher \"rc4-md5\" is not valid"),
        "{err:?}"
    );
    assert_eq!(mock.calls_async().await, 1);
}

#[tokio::test]
async fn access_keys_create_with_id_201() {
    let (server, f) = replay("access_keys_create_with_id_201").await;
    let mock = serve(&server, &f, Match::Exact, None).await;
    let key = client(&server)
        .access_keys()
        .create_with_id(
            "my-id",
            &NewAccessKey::new().with_name("Custom").with_port(23456),
        )
        .await
        .unwrap();
    assert_eq!(key.id, "my-id");
    assert_eq!(key.port, 23456);
    assert_eq!(key.data_limit, None);
    assert_eq!(key.cipher(), Some(Cipher::Chacha20IetfPoly1305));
    assert_eq!(mock.calls_async().await, 1);
}

#[tokio::test]
async fn access_keys_create_with_id_conflict_409() {
    let (server, f) = replay("access_keys_create_with_id_conflict_409").await;
    let mock = serve(&server, &f, Match::Exact, None).await;
    let err = client(&server)
        .access_keys()
        .create_with_id("my-id", &NewAccessKey::new().with_name("Custom2"))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::Api { status: 409, code: Some(code), message, .. }
            if code == "Conflict" && message == "Access key \"my-id\" conflict"),
        "{err:?}"
    );
    assert_eq!(mock.calls_async().await, 1);
}

#[tokio::test]
async fn access_keys_list_200() {
    let (server, f) = replay("access_keys_list_200").await;
    let mock = serve(&server, &f, Match::Exact, None).await;
    let keys = client(&server).access_keys().list().await.unwrap();
    let ids: Vec<&str> = keys.iter().map(|k| k.id.as_str()).collect();
    assert_eq!(ids, ["0", "2", "alpha-key", "9"]);
    assert_eq!(keys[1].data_limit.map(|l| l.bytes), Some(10_000));
    assert_eq!(keys[0].data_limit, None);
    // The IPv6 access URL one Python peer rejects is taken as it is.
    assert!(
        keys[3]
            .access_url
            .ends_with("@[2001:db8:0:0:0:0:0:1]:23456/?outline=1")
    );
    assert_eq!(mock.calls_async().await, 1);
}

#[tokio::test]
async fn access_key_get_200() {
    let (server, f) = replay("access_key_get_200").await;
    let mock = serve(&server, &f, Match::Exact, None).await;
    let key = client(&server).access_keys().get("0").await.unwrap();
    assert_eq!(key.name, "FormRenamed");
    assert_eq!(key.data_limit.map(|l| l.bytes), Some(5000));
    assert_eq!(mock.calls_async().await, 1);
}

#[tokio::test]
async fn access_key_get_404() {
    let (server, f) = replay("access_key_get_404").await;
    let mock = serve(&server, &f, Match::Exact, None).await;
    let err = client(&server).access_keys().get("999").await.unwrap_err();
    assert!(
        matches!(&err, Error::NotFound { code: Some(code), message, .. }
            if code == "NotFound" && message == "Access key \"999\" not found"),
        "{err:?}"
    );
    assert_eq!(err.status(), Some(404));
    assert_eq!(mock.calls_async().await, 1);
}

#[tokio::test]
async fn access_key_delete_204() {
    let (server, f) = replay("access_key_delete_204").await;
    let mock = serve(&server, &f, Match::Exact, None).await;
    client(&server).access_keys().delete("my-id").await.unwrap();
    assert_eq!(mock.calls_async().await, 1);
}

#[tokio::test]
async fn access_key_rename_204() {
    let (server, f) = replay("access_key_rename_204").await;
    let mock = serve(&server, &f, Match::Exact, None).await;
    client(&server)
        .access_keys()
        .rename("0", "Renamed")
        .await
        .unwrap();
    assert_eq!(mock.calls_async().await, 1);
}

#[tokio::test]
async fn access_key_data_limit_set_204() {
    let (server, f) = replay("access_key_data_limit_set_204").await;
    let mock = serve(&server, &f, Match::Exact, None).await;
    client(&server)
        .access_keys()
        .set_data_limit("0", 5000)
        .await
        .unwrap();
    assert_eq!(mock.calls_async().await, 1);
}

#[tokio::test]
async fn access_key_data_limit_delete_204() {
    let (server, f) = replay("access_key_data_limit_delete_204").await;
    let mock = serve(&server, &f, Match::Exact, None).await;
    client(&server)
        .access_keys()
        .remove_data_limit("0")
        .await
        .unwrap();
    assert_eq!(mock.calls_async().await, 1);
}

#[tokio::test]
async fn access_key_data_limit_invalid_400() {
    let (server, f) = replay("access_key_data_limit_invalid_400").await;
    let mock = serve(&server, &f, Match::PathOnly, None).await;
    // `bytes` is a u64 here, so `"5"` cannot be sent; the answer still maps.
    let err = client(&server)
        .access_keys()
        .set_data_limit("0", 5)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::Api { status: 400, code: Some(code), message, .. }
            if code == "InvalidArgument" && message == "`limit.bytes` must be an non-negative integer"),
        "{err:?}"
    );
    assert_eq!(mock.calls_async().await, 1);
}

#[tokio::test]
async fn metrics_transfer_ok() {
    let (server, f) = replay("metrics_transfer_ok").await;
    let mock = serve(&server, &f, Match::Exact, None).await;
    let transfer = client(&server).metrics().transfer().await.unwrap();
    assert_eq!(transfer.len(), 5);
    assert_eq!(transfer.get("0"), Some(76_609));
    assert_eq!(transfer.get("10"), Some(417_588));
    assert_eq!(transfer.get("alpha-key"), Some(365_474));
    assert_eq!(transfer.get("3"), None);
    assert_eq!(
        transfer.total(),
        76_609 + 153_218 + 108_000 + 417_588 + 365_474
    );
    assert_eq!(mock.calls_async().await, 1);
}

#[tokio::test]
async fn metrics_enabled_get_200() {
    let (server, f) = replay("metrics_enabled_get_200").await;
    let mock = serve(&server, &f, Match::Exact, None).await;
    assert!(!client(&server).metrics().enabled().await.unwrap());
    assert_eq!(mock.calls_async().await, 1);
}

#[tokio::test]
async fn metrics_enabled_put_204() {
    let (server, f) = replay("metrics_enabled_put_204").await;
    let mock = serve(&server, &f, Match::Exact, None).await;
    client(&server).metrics().set_enabled(true).await.unwrap();
    assert_eq!(mock.calls_async().await, 1);
}

#[tokio::test]
async fn metrics_enabled_put_not_boolean_400() {
    let (server, f) = replay("metrics_enabled_put_not_boolean_400").await;
    let mock = serve(&server, &f, Match::PathOnly, None).await;
    let err = client(&server)
        .metrics()
        .set_enabled(true)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::Api { status: 400, code: Some(code), message, .. }
            if code == "InvalidArgument" && message == "Parameter `metricsEnabled` must be a boolean"),
        "{err:?}"
    );
    assert_eq!(mock.calls_async().await, 1);
}

#[tokio::test]
async fn experimental_metrics_since_1h() {
    let (server, f) = replay("experimental_metrics_since_1h").await;
    let mock = serve(&server, &f, Match::Exact, None).await;
    let metrics = client(&server)
        .metrics()
        .server_metrics(Since::hours(1).unwrap())
        .await
        .unwrap();
    let s = &metrics.server;
    assert!((s.tunnel_time.seconds - 316.398_897_369_444_46).abs() < 1e-9);
    assert!((s.data_transferred.bytes - 337_491.344_231_955_6).abs() < 1e-6);
    assert!((s.bandwidth.current.data.bytes - 800.002_749_999_999_8).abs() < 1e-9);
    assert_eq!(s.bandwidth.current.timestamp, Some(1_795_340_862.435));
    assert_eq!(s.bandwidth.peak.timestamp, Some(1_795_340_700.0));
    assert_eq!(
        s.bandwidth.current.time().unwrap().timestamp_millis(),
        1_795_340_862_435
    );
    assert_eq!(s.locations.len(), 2);
    assert_eq!(s.locations[0].location.as_deref(), Some("US"));
    assert_eq!(s.locations[0].asn, Some(15169));
    assert_eq!(s.locations[0].as_org.as_deref(), Some("GOOGLE"));
    assert_eq!(s.locations[1].location.as_deref(), Some("XL"));
    assert_eq!(s.locations[1].asn, None);
    assert_eq!(s.locations[1].as_org, None);
    let ids: Vec<Option<i64>> = metrics
        .access_keys
        .iter()
        .map(|k| k.access_key_id)
        .collect();
    // `accessKeyId: null` is the key "alpha-key".
    assert_eq!(ids, [Some(0), Some(2), None]);
    let alpha = &metrics.access_keys[2];
    assert!((alpha.data_transferred.bytes - 365_481.615_767_18).abs() < 1e-6);
    assert_eq!(alpha.connection.peak_device_count.data, 4);
    assert_eq!(alpha.connection.last_traffic_seen, Some(1_795_340_862.433));
    assert_eq!(mock.calls_async().await, 1);
}

#[tokio::test]
async fn experimental_metrics_no_traffic() {
    let (server, f) = replay("experimental_metrics_no_traffic").await;
    let mock = serve(&server, &f, Match::Exact, None).await;
    let metrics = client(&server)
        .metrics()
        .server_metrics(Since::hours(1).unwrap())
        .await
        .unwrap();
    assert_eq!(metrics.server.tunnel_time.seconds, 0.0);
    assert_eq!(metrics.server.bandwidth.current.timestamp, None);
    assert_eq!(metrics.server.bandwidth.peak.timestamp, None);
    assert!(metrics.server.locations.is_empty());
    assert!(metrics.access_keys.is_empty());
    assert_eq!(mock.calls_async().await, 1);
}

#[tokio::test]
async fn experimental_metrics_bad_since_400() {
    let (server, f) = replay("experimental_metrics_bad_since_400").await;
    let mock = serve(&server, &f, Match::PathOnly, None).await;
    // Minutes are not in the server's grammar: refused before sending.
    assert!(matches!(
        "1m".parse::<Since>(),
        Err(Error::InvalidInput { .. })
    ));
    let err = client(&server)
        .metrics()
        .server_metrics(Since::hours(1).unwrap())
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::Api { status: 400, code: Some(code), message, .. }
            if code == "InvalidArgument" && message == "Invalid time range: 1m"),
        "{err:?}"
    );
    assert_eq!(mock.calls_async().await, 1);
}

#[tokio::test]
async fn experimental_metrics_since_39d_500() {
    let (server, f) = replay("experimental_metrics_since_39d_500").await;
    let mock = serve(&server, &f, Match::PathOnly, None).await;
    // Beyond the server's 3 299 700 s limit: refused before sending.
    assert!(matches!(Since::days(39), Err(Error::InvalidInput { .. })));
    assert!(matches!(
        "39d".parse::<Since>(),
        Err(Error::InvalidInput { .. })
    ));
    let err = client(&server)
        .metrics()
        .server_metrics(Since::MAX)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::Api { status: 500, code: Some(code), message, .. }
            if code == "InternalServer" && message.is_empty()),
        "{err:?}"
    );
    assert!(err.is_retryable());
    assert_eq!(mock.calls_async().await, 1);
}

#[tokio::test]
async fn unknown_route_404() {
    let (server, f) = replay("unknown_route_404").await;
    // What a wrong secret or a missing route gets back, wherever the client asked.
    let on_server = serve(
        &server,
        &f,
        Match::PathOnly,
        Some(("GET", "/SECRET/server")),
    )
    .await;
    let on_metrics = serve(
        &server,
        &f,
        Match::PathOnly,
        Some(("GET", "/SECRET/experimental/server/metrics")),
    )
    .await;
    let client = client(&server);
    let err = client.server().await.unwrap_err();
    assert!(
        matches!(&err, Error::NotFound { code: Some(code), message, .. }
            if code == "ResourceNotFound" && message == "/***/does-not-exist does not exist"),
        "{err:?}"
    );
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
    assert!(err.to_string().contains("1.11.1"), "{err}");
    assert_eq!(on_server.calls_async().await, 1);
    assert_eq!(on_metrics.calls_async().await, 1);
}

#[tokio::test]
async fn method_not_allowed_405() {
    let (server, f) = replay("method_not_allowed_405").await;
    let mock = serve(
        &server,
        &f,
        Match::PathOnly,
        Some(("GET", "/SECRET/server")),
    )
    .await;
    let err = client(&server).server().await.unwrap_err();
    assert!(
        matches!(&err, Error::Api { status: 405, code: Some(code), message, .. }
            if code == "MethodNotAllowed" && message == "DELETE is not allowed"),
        "{err:?}"
    );
    assert_eq!(mock.calls_async().await, 1);
}
