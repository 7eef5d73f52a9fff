//! The Outline emulator seen from the wire: the answers the reference records for the real
//! server (status codes, `{code, message}` texts, quirks), over HTTPS.
#![cfg(feature = "outline")]

use metrics_emulators::outline::OutlineEmulator;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

struct Wire {
    emulator: OutlineEmulator,
    http: reqwest::Client,
}

struct Answer {
    status: StatusCode,
    headers: reqwest::header::HeaderMap,
    text: String,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or_else(|e| panic!("{e}: {}", self.text))
    }

    /// Asserts a restify error body.
    fn error(&self, status: u16, code: &str, message: &str) {
        assert_eq!(self.status.as_u16(), status, "{}", self.text);
        assert_eq!(
            self.headers["content-type"], "application/json",
            "{}",
            self.text
        );
        assert_eq!(self.json(), json!({ "code": code, "message": message }));
    }
}

impl Wire {
    async fn start() -> Self {
        let emulator = OutlineEmulator::start().await.unwrap();
        // These tests check the server side; the client crate tests the pin.
        let http = reqwest::Client::builder()
            .danger_accept_invalid_certs(true)
            .tls_info(true)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        Self { emulator, http }
    }

    /// Sends to `<apiUrl><route>`, with a JSON body when given.
    async fn send(&self, method: Method, route: &str, body: Option<&str>) -> Answer {
        self.raw(
            method,
            &format!("{}{route}", self.emulator.api_url()),
            body.map(|b| (b, "application/json")),
        )
        .await
    }

    async fn raw(&self, method: Method, url: &str, body: Option<(&str, &str)>) -> Answer {
        let mut request = self.http.request(method, url);
        if let Some((body, content_type)) = body {
            request = request
                .header("content-type", content_type)
                .body(body.to_owned());
        }
        let response = request.send().await.unwrap();
        Answer {
            status: response.status(),
            headers: response.headers().clone(),
            text: response.text().await.unwrap(),
        }
    }

    async fn get(&self, route: &str) -> Answer {
        self.send(Method::GET, route, None).await
    }

    async fn put(&self, route: &str, body: &str) -> Answer {
        self.send(Method::PUT, route, Some(body)).await
    }
}

#[tokio::test]
async fn credentials_and_certificate() {
    let wire = Wire::start().await;
    let emulator = &wire.emulator;
    assert_eq!(emulator.prefix().len(), 22);
    assert!(
        emulator
            .prefix()
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    );
    assert_eq!(
        emulator.api_url(),
        format!("{}/{}", emulator.base_url(), emulator.prefix())
    );
    assert!(emulator.api_url().starts_with("https://127.0.0.1:"));
    let access: Value = serde_json::from_str(&emulator.access_json()).unwrap();
    assert_eq!(access["apiUrl"], emulator.api_url());
    assert_eq!(access["certSha256"], emulator.cert_sha256());
    assert!(
        emulator
            .access_txt()
            .contains(&format!("certSha256:{}\n", emulator.cert_sha256()))
    );

    let digest = ring::digest::digest(&ring::digest::SHA256, emulator.cert_der());
    let hex: String = digest.as_ref().iter().map(|b| format!("{b:02X}")).collect();
    assert_eq!(hex, emulator.cert_sha256());

    // The certificate served is the one whose fingerprint is handed out.
    let response = wire
        .http
        .get(format!("{}/server", emulator.api_url()))
        .send()
        .await
        .unwrap();
    let served = response
        .extensions()
        .get::<reqwest::tls::TlsInfo>()
        .and_then(|info| info.peer_certificate())
        .unwrap()
        .to_vec();
    assert_eq!(served, emulator.cert_der());

    // A second emulator has its own secret and certificate.
    let other = OutlineEmulator::start().await.unwrap();
    assert_ne!(other.prefix(), emulator.prefix());
    assert_ne!(other.cert_sha256(), emulator.cert_sha256());
}

#[tokio::test]
async fn secret_prefix_and_routing() {
    let wire = Wire::start().await;
    let base = wire.emulator.base_url();
    let wrong = wire
        .raw(Method::GET, &format!("{base}/WrongPrefix/server"), None)
        .await;
    wrong.error(
        404,
        "ResourceNotFound",
        "/WrongPrefix/server does not exist",
    );
    let prefix = wire.emulator.prefix().to_owned();
    let unknown = wire.get("/does-not-exist").await;
    unknown.error(
        404,
        "ResourceNotFound",
        &format!("/{prefix}/does-not-exist does not exist"),
    );
    // `//` collapses and a trailing `/` is dropped.
    let collapsed = wire
        .raw(Method::GET, &format!("{base}/{prefix}//server/"), None)
        .await;
    assert_eq!(collapsed.status, StatusCode::OK);
    assert_eq!(collapsed.headers["keep-alive"], "timeout=5");

    let not_allowed = wire.send(Method::DELETE, "/server", None).await;
    not_allowed.error(405, "MethodNotAllowed", "DELETE is not allowed");
    assert_eq!(not_allowed.headers["allow"], "GET");
    let head = wire.send(Method::HEAD, "/server", None).await;
    assert_eq!(head.status, StatusCode::METHOD_NOT_ALLOWED);
    let enabled = wire.send(Method::DELETE, "/metrics/enabled", None).await;
    assert_eq!(enabled.headers["allow"], "GET, PUT");

    let redirect = wire
        .put(
            "/experimental/access-key-data-limit",
            r#"{"limit":{"bytes":1}}"#,
        )
        .await;
    assert_eq!(redirect.status, StatusCode::PERMANENT_REDIRECT);
    assert_eq!(
        redirect.headers["location"],
        format!("/{prefix}/server/access-key-data-limit").as_str()
    );
    assert_eq!(redirect.text, "null");

    let jsonp = wire.get("/metrics/enabled?callback=cb").await;
    assert_eq!(jsonp.status, StatusCode::OK);
    assert_eq!(
        jsonp.text,
        r#"typeof cb === 'function' && cb({"metricsEnabled":false});"#
    );
    let jsonp_error = wire.get("/access-keys/9?jsonp=f").await;
    assert_eq!(jsonp_error.status, StatusCode::OK);
    assert!(
        jsonp_error
            .text
            .starts_with("typeof f === 'function' && f({")
    );

    let log = wire.emulator.requests().requests();
    assert!(log.iter().any(|r| r.uri == "/WrongPrefix/server"));
    assert!(
        log.iter()
            .any(|r| r.method == "DELETE" && r.uri == format!("/{prefix}/server"))
    );
}

#[tokio::test]
async fn server_settings() {
    let wire = Wire::start().await;
    let server = wire.get("/server").await.json();
    assert_eq!(server["name"], "Outline Server");
    assert_eq!(server["version"], "1.12.3");
    assert_eq!(server["metricsEnabled"], false);
    assert!(server["createdTimestampMs"].as_u64().unwrap() > 1_700_000_000_000);
    assert_eq!(server["serverId"].as_str().unwrap().len(), 36);
    assert!(server.get("accessKeyDataLimit").is_none());
    assert_eq!(server["hostnameForAccessKeys"], "127.0.0.1");

    assert_eq!(
        wire.put("/name", r#"{"name":"My Server"}"#).await.status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(wire.emulator.server_name(), "My Server");
    wire.put("/name", r#"{"name":12}"#).await.error(
        409,
        "InvalidArgument",
        "Requested server name should be a string <= 100 characters long.  Got 12",
    );
    let long = format!(r#"{{"name":"{}"}}"#, "x".repeat(101));
    assert_eq!(wire.put("/name", &long).await.status.as_u16(), 409);
    wire.put("/name", r#"{"name":""}"#).await.error(
        400,
        "MissingParameter",
        "Parameter `name` is missing",
    );
    wire.put("/name", "{}")
        .await
        .error(400, "MissingParameter", "Parameter `name` is missing");

    let hostname = "/server/hostname-for-access-keys";
    assert_eq!(
        wire.put(hostname, r#"{"hostname":"example.com"}"#)
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    wire.put(hostname, r#"{"hostname":"bad host!"}"#)
        .await
        .error(
            400,
            "InvalidArgument",
            "Hostname bad host! isn't a valid hostname or IP address",
        );
    wire.put(hostname, r#"{"hostname":42}"#).await.error(
        400,
        "InvalidArgument",
        "Expected hostname to be a string, instead got 42 of type number",
    );
    wire.put(hostname, "{}")
        .await
        .error(400, "MissingParameter", "hostname must be provided");
    assert_eq!(wire.emulator.hostname_for_access_keys(), "example.com");

    let port = "/server/port-for-new-access-keys";
    assert_eq!(
        wire.put(port, r#"{"port":12345}"#).await.status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(wire.emulator.port_for_new_access_keys(), 12345);
    wire.put(port, r#"{"port":65536}"#).await.error(
        400,
        "InvalidArgument",
        "Port 65536 is invalid: must be an integer in range [0, 65353]",
    );
    wire.put(port, r#"{"port":0}"#).await.error(
        400,
        "InvalidArgument",
        "Port 0 is invalid: must be an integer in range [0, 65353]",
    );
    wire.put(port, r#"{"port":"123"}"#).await.error(
        400,
        "InvalidArgument",
        "Expected a number for port, instead got 123 of type string",
    );
    // Form fields arrive as strings.
    wire.raw(
        Method::PUT,
        &format!("{}{port}", wire.emulator.api_url()),
        Some(("port=123", "application/x-www-form-urlencoded")),
    )
    .await
    .error(
        400,
        "InvalidArgument",
        "Expected a number for port, instead got 123 of type string",
    );
    wire.put(port, "{}")
        .await
        .error(400, "MissingParameter", "Parameter `port` is missing");
    let own_port = wire.emulator.address().port();
    wire.put(port, &format!(r#"{{"port":{own_port}}}"#))
        .await
        .error(409, "Conflict", &format!("Port {own_port} is unavailable"));

    // Malformed JSON.
    let bad = wire.put("/name", "{x}").await;
    bad.error(
        400,
        "InvalidContent",
        "Invalid JSON: Expected property name or '}' in JSON at position 1",
    );
    // text/plain is ignored, so the parameter is missing.
    wire.raw(
        Method::PUT,
        &format!("{}/name", wire.emulator.api_url()),
        Some((r#"{"name":"x"}"#, "text/plain")),
    )
    .await
    .error(400, "MissingParameter", "Parameter `name` is missing");
}

#[tokio::test]
async fn data_limits_and_the_clearing_quirk() {
    let wire = Wire::start().await;
    let route = "/server/access-key-data-limit";
    assert_eq!(
        wire.put(route, r#"{"limit":{"bytes":100000}}"#)
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(wire.emulator.default_data_limit(), Some(100_000));
    assert_eq!(
        wire.get("/server").await.json()["accessKeyDataLimit"],
        json!({ "bytes": 100_000 })
    );
    // The api.yml schema's body: answered 204, and the limit is gone.
    assert_eq!(
        wire.put(route, r#"{"bytes":5000}"#).await.status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(wire.emulator.default_data_limit(), None);
    wire.put(route, r#"{"limit":{"bytes":0}}"#).await;
    assert_eq!(wire.emulator.default_data_limit(), Some(0));
    wire.put(route, "{}").await;
    assert_eq!(wire.emulator.default_data_limit(), None);
    for bad in [
        r#"{"limit":{"bytes":-5}}"#,
        r#"{"limit":{"bytes":1.5}}"#,
        r#"{"limit":{"bytes":"5"}}"#,
        r#"{"limit":{}}"#,
    ] {
        wire.put(route, bad).await.error(
            400,
            "InvalidArgument",
            "`limit.bytes` must be an non-negative integer",
        );
    }
    wire.put(route, r#"{"limit":{"bytes":7}}"#).await;
    assert_eq!(
        wire.send(Method::DELETE, route, None).await.status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(wire.emulator.default_data_limit(), None);

    let id = wire.emulator.add_access_key("k");
    let key_route = format!("/access-keys/{id}/data-limit");
    wire.put(&key_route, r#"{"limit":{"bytes":5000}}"#).await;
    assert_eq!(
        wire.emulator.access_key(&id).unwrap().data_limit,
        Some(5000)
    );
    assert_eq!(
        wire.get(&format!("/access-keys/{id}")).await.json()["dataLimit"],
        json!({ "bytes": 5000 })
    );
    wire.put(&key_route, "{}").await;
    assert_eq!(wire.emulator.access_key(&id).unwrap().data_limit, None);
    wire.put("/access-keys/999/data-limit", r#"{"limit":{"bytes":1}}"#)
        .await
        .error(404, "NotFound", "Access key \"999\" not found");
}

#[tokio::test]
async fn access_keys() {
    let wire = Wire::start().await;
    let created = wire.send(Method::POST, "/access-keys", None).await;
    assert_eq!(created.status, StatusCode::CREATED);
    let key = created.json();
    assert_eq!(key["id"], "0");
    assert_eq!(key["name"], "");
    assert_eq!(key["method"], "chacha20-ietf-poly1305");
    assert_eq!(key["password"].as_str().unwrap().len(), 22);
    assert!(key.get("dataLimit").is_none());
    assert!(
        key["accessUrl"]
            .as_str()
            .unwrap()
            .starts_with("ss://Y2hhY2hhMjAtaWV0Zi1wb2x5MTMwNT")
    );
    assert_eq!(
        wire.send(Method::POST, "/access-keys", Some("null"))
            .await
            .status,
        StatusCode::CREATED
    );

    let alice = wire
        .send(
            Method::POST,
            "/access-keys",
            Some(r#"{"name":"Alice","method":"aes-192-gcm","limit":{"bytes":10000}}"#),
        )
        .await
        .json();
    assert_eq!(alice["id"], "2");
    assert_eq!(alice["dataLimit"], json!({ "bytes": 10000 }));

    wire.send(Method::POST, "/access-keys", Some(r#"{"id":"x"}"#))
        .await
        .error(400, "InvalidArgument", "Parameter `id` is not allowed");
    wire.send(Method::POST, "/access-keys", Some(r#"{"name":5}"#))
        .await
        .error(
            400,
            "InvalidArgument",
            "Expected a string for name, instead got 5 of type number",
        );
    wire.send(Method::POST, "/access-keys", Some(r#"{"method":5}"#))
        .await
        .error(
            400,
            "InvalidArgument",
            "Expected a string for encryptionMethod, instead got 5 of type number",
        );
    wire.send(Method::POST, "/access-keys", Some(r#"{"port":"abc"}"#))
        .await
        .error(
            400,
            "InvalidArgument",
            "Expected a number for port, instead got abc of type string",
        );
    // Those type errors burned no id; these do.
    wire.send(
        Method::POST,
        "/access-keys",
        Some(r#"{"method":"rc4-md5"}"#),
    )
    .await
    .error(400, "InvalidArgument", "cipher \"rc4-md5\" is not valid");
    wire.send(Method::POST, "/access-keys", Some(r#"{"port":70000}"#))
        .await
        .error(
            400,
            "InvalidArgument",
            "Port 70000 is invalid: must be an integer in range [0, 65353]",
        );
    let password = alice["password"].as_str().unwrap();
    wire.send(
        Method::POST,
        "/access-keys",
        Some(&format!(r#"{{"password":"{password}"}}"#)),
    )
    .await
    .error(
        409,
        "Conflict",
        "Access key 5 has the same password. Please specify a unique password for each access key",
    );
    let next = wire.send(Method::POST, "/access-keys", None).await.json();
    assert_eq!(next["id"], "6");

    // PUT with an id: path params win over a body `id`; percent-decoded.
    let custom = wire
        .put(
            "/access-keys/my%2Fid%20x",
            r#"{"id":"ignored","name":"Custom","port":23456}"#,
        )
        .await;
    assert_eq!(custom.status, StatusCode::CREATED);
    assert_eq!(custom.json()["id"], "my/id x");
    assert_eq!(custom.json()["port"], 23456);
    wire.put("/access-keys/my%2Fid%20x", r#"{"name":"again"}"#)
        .await
        .error(409, "Conflict", "Access key \"my/id x\" conflict");

    let list = wire.get("/access-keys").await.json();
    let ids: Vec<&str> = list["accessKeys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["0", "1", "2", "6", "my/id x"]);

    assert_eq!(
        wire.put("/access-keys/2/name", r#"{"name":"Renamed"}"#)
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(wire.get("/access-keys/2").await.json()["name"], "Renamed");
    wire.put("/access-keys/2/name", r#"{"name":""}"#)
        .await
        .error(400, "MissingParameter", "Parameter `name` is missing");
    wire.put("/access-keys/2/name", r#"{"name":5}"#)
        .await
        .error(
            400,
            "InvalidArgument",
            "Parameter `name` must be of type string",
        );
    wire.put("/access-keys/999/name", r#"{"name":"x"}"#)
        .await
        .error(404, "NotFound", "Access key \"999\" not found");

    assert_eq!(
        wire.send(Method::DELETE, "/access-keys/2", None)
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    wire.get("/access-keys/2")
        .await
        .error(404, "NotFound", "Access key \"2\" not found");
    wire.send(Method::DELETE, "/access-keys/2", None)
        .await
        .error(404, "NotFound", "Access key \"2\" not found");
    // The password of a deleted key is free again.
    assert_eq!(
        wire.send(
            Method::POST,
            "/access-keys",
            Some(&format!(r#"{{"password":"{password}"}}"#))
        )
        .await
        .status,
        StatusCode::CREATED
    );
}

#[tokio::test]
async fn ipv6_hostnames_in_access_urls() {
    let wire = Wire::start().await;
    wire.put(
        "/server/hostname-for-access-keys",
        r#"{"hostname":"2001:db8::1"}"#,
    )
    .await;
    let key = wire
        .send(Method::POST, "/access-keys", Some(r#"{"port":23456}"#))
        .await
        .json();
    assert!(
        key["accessUrl"]
            .as_str()
            .unwrap()
            .ends_with("@[2001:db8:0:0:0:0:0:1]:23456/?outline=1"),
        "{key}"
    );
}

#[tokio::test]
async fn metrics_enabled() {
    let wire = Wire::start().await;
    assert_eq!(
        wire.get("/metrics/enabled").await.json(),
        json!({ "metricsEnabled": false })
    );
    assert_eq!(
        wire.put("/metrics/enabled", r#"{"metricsEnabled":true}"#)
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    assert!(wire.emulator.metrics_enabled());
    assert_eq!(wire.get("/server").await.json()["metricsEnabled"], true);
    wire.put("/metrics/enabled", r#"{"metricsEnabled":"true"}"#)
        .await
        .error(
            400,
            "InvalidArgument",
            "Parameter `metricsEnabled` must be a boolean",
        );
    wire.put("/metrics/enabled", r#"{"metricsEnabled":null}"#)
        .await
        .error(
            400,
            "MissingParameter",
            "Parameter `metricsEnabled` is missing",
        );
}

#[tokio::test]
async fn transfer() {
    let wire = Wire::start().await;
    assert_eq!(
        wire.get("/metrics/transfer").await.json(),
        json!({ "bytesTransferredByUserId": {} })
    );
    let ids = wire.emulator.add_access_keys(3);
    wire.emulator.set_transfer(&ids[0], 76_609);
    wire.emulator.set_transfer(&ids[1], 5_958_113_497);
    wire.emulator.set_transfer(&ids[2], 0);
    wire.emulator.set_transfer("alpha-key", 365_474);
    // Deleting a key keeps its traffic in the window.
    wire.send(Method::DELETE, &format!("/access-keys/{}", ids[0]), None)
        .await;
    let answer = wire.get("/metrics/transfer").await;
    assert_eq!(answer.headers["content-type"], "application/json");
    assert_eq!(
        answer.json(),
        json!({ "bytesTransferredByUserId": { "0": 76_609, "1": 5_958_113_497_u64, "alpha-key": 365_474 } })
    );
    assert_eq!(wire.emulator.transfer("1"), 5_958_113_497);

    wire.emulator.set_prometheus_down(true);
    wire.get("/metrics/transfer")
        .await
        .error(500, "InternalServer", "");
}

#[tokio::test]
async fn a_hundred_thousand_keys() {
    let wire = Wire::start().await;
    let ids = wire.emulator.add_access_keys(100_000);
    assert_eq!(ids.len(), 100_000);
    assert_eq!(ids[99_999], "99999");
    wire.emulator.set_transfers(
        ids.iter()
            .enumerate()
            .map(|(i, id)| (id.clone(), 10_000_000_000 + i as u64)),
    );
    assert_eq!(wire.emulator.access_key_count(), 100_000);
    let answer = wire.get("/metrics/transfer").await;
    assert_eq!(answer.status, StatusCode::OK);
    // ~1.9 MiB: what a 100 000-key server sends.
    assert!(
        answer.text.len() > 1_900_000 && answer.text.len() < 2_300_000,
        "{}",
        answer.text.len()
    );
    let body = answer.json();
    let map = body["bytesTransferredByUserId"].as_object().unwrap();
    assert_eq!(map.len(), 100_000);
    assert_eq!(map["4242"], 10_000_004_242_u64);
}

#[tokio::test]
async fn experimental_metrics_since() {
    let wire = Wire::start().await;
    let route = "/experimental/server/metrics";
    wire.get(route)
        .await
        .error(400, "MissingParameter", "Parameter `since` is missing");
    for bad in ["1m", "abc", "2026-10-23T09:41:00Z"] {
        wire.get(&format!("{route}?since={bad}")).await.error(
            400,
            "InvalidArgument",
            &format!("Invalid time range: {bad}"),
        );
    }
    for failing in ["0s", "d", "-1h", "39d", "90d"] {
        wire.get(&format!("{route}?since={failing}"))
            .await
            .error(500, "InternalServer", "");
    }
    for fine in ["1h", "1.5h", "30d", "38d", "1w", "2w", "3299700s"] {
        let answer = wire.get(&format!("{route}?since={fine}")).await;
        assert_eq!(answer.status, StatusCode::OK, "{fine}: {}", answer.text);
    }
    // No traffic: exactly the recorded empty window.
    assert_eq!(
        wire.get(&format!("{route}?since=1h")).await.json(),
        json!({"server":{"tunnelTime":{"seconds":0},"dataTransferred":{"bytes":0},"bandwidth":{"current":{"data":{"bytes":0},"timestamp":null},"peak":{"data":{"bytes":0},"timestamp":null}},"locations":[]},"accessKeys":[]})
    );

    wire.emulator.set_server_metrics_available(false);
    let prefix = wire.emulator.prefix().to_owned();
    wire.get(&format!("{route}?since=30d")).await.error(
        404,
        "ResourceNotFound",
        &format!("/{prefix}{route} does not exist"),
    );
}

#[tokio::test]
async fn experimental_metrics_shape() {
    let wire = Wire::start().await;
    let ids = wire.emulator.add_access_keys(3);
    wire.emulator
        .add_access_key_with_id("alpha-key", "non-numeric id");
    wire.emulator.set_transfer(&ids[0], 76_609);
    wire.emulator.set_transfer(&ids[2], 108_000);
    wire.emulator.set_transfer("alpha-key", 365_474);
    let body = wire
        .get("/experimental/server/metrics?since=30d")
        .await
        .json();
    let keys = body["accessKeys"].as_array().unwrap();
    // Only keys with traffic; parseInt ids, null for non-numeric ones.
    let mut key_ids: Vec<String> = keys.iter().map(|k| k["accessKeyId"].to_string()).collect();
    key_ids.sort();
    assert_eq!(key_ids, ["0", "2", "null"]);
    let first = keys.iter().find(|k| k["accessKeyId"] == 0).unwrap();
    let bytes = &first["dataTransferred"]["bytes"];
    assert!(bytes.is_f64(), "{bytes}");
    assert!(bytes.as_f64().unwrap() > 76_609.0);
    assert!(first["tunnelTime"]["seconds"].is_f64());
    assert!(first["connection"]["lastTrafficSeen"].is_number());
    assert!(first["connection"]["peakDeviceCount"]["data"].is_u64());
    let server = &body["server"];
    assert!(server["tunnelTime"]["seconds"].is_f64());
    assert!(server["bandwidth"]["current"]["timestamp"].is_number());
    assert!(server["bandwidth"]["peak"]["timestamp"].is_number());
    let location = &server["locations"][0];
    assert_eq!(location["location"], "XL");
    assert!(location["asn"].is_null());
    assert!(location["asOrg"].is_null());
    let sum: f64 = keys
        .iter()
        .map(|k| k["dataTransferred"]["bytes"].as_f64().unwrap())
        .sum();
    assert!((server["dataTransferred"]["bytes"].as_f64().unwrap() - sum).abs() < 1e-6);

    wire.emulator.set_prometheus_down(true);
    wire.get("/experimental/server/metrics?since=30d")
        .await
        .error(500, "InternalServer", "");
}
