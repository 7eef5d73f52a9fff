//! The AppOptics emulator on the wire, with a plain HTTP client: status codes, bodies and
//! headers as the reference documents them.
#![cfg(feature = "appoptics")]

use metrics_emulators::appoptics::{AppOpticsEmulator, TagMode};
use reqwest::{Client, Method, Response, StatusCode};
use serde_json::{Value, json};

struct Api {
    emulator: AppOpticsEmulator,
    http: Client,
}

impl Api {
    async fn start() -> Self {
        Self {
            emulator: AppOpticsEmulator::start().await.unwrap(),
            http: Client::new(),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.emulator.api_url())
    }

    async fn send(&self, method: Method, path: &str, body: Option<&Value>) -> Response {
        let mut request = self
            .http
            .request(method, self.url(path))
            .basic_auth("tok123", Some(""));
        if let Some(body) = body {
            request = request
                .header("content-type", "application/json")
                .body(body.to_string());
        }
        request.send().await.unwrap()
    }

    async fn json(&self, method: Method, path: &str, body: Option<&Value>) -> (StatusCode, Value) {
        let response = self.send(method, path, body).await;
        let status = response.status();
        let text = response.text().await.unwrap();
        let value = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        (status, value)
    }

    async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.json(Method::GET, path, None).await
    }

    async fn post(&self, path: &str, body: &Value) -> (StatusCode, Value) {
        self.json(Method::POST, path, Some(body)).await
    }

    async fn put(&self, path: &str, body: &Value) -> (StatusCode, Value) {
        self.json(Method::PUT, path, Some(body)).await
    }
}

fn params_error(field: &str, message: &str) -> Value {
    json!({"errors": {"params": {field: [message]}}})
}

#[tokio::test]
async fn authentication_answers_like_the_server() {
    let api = Api::start().await;
    let get = api.http.get(api.url("/metrics")).send().await.unwrap();
    assert_eq!(get.status(), 401);
    assert_eq!(
        get.headers()["content-type"],
        "application/json;charset=utf-8"
    );
    assert!(get.headers().contains_key("www-authenticate"));
    assert_eq!(
        get.text().await.unwrap(),
        r#"{"errors":{"request":["Authorization Required"]}}"#
    );
    let post = api
        .http
        .post(api.url("/measurements"))
        .basic_auth("", Some(""))
        .send()
        .await
        .unwrap();
    assert_eq!(post.status(), 401);
    assert_eq!(post.headers()["content-type"], "text/plain");
    assert_eq!(
        post.text().await.unwrap(),
        "Credentials are required to access this resource."
    );

    api.emulator.set_token(Some("tok123"));
    assert_eq!(api.get("/metrics").await.0, 200);
    // The Go client's form: user `token`, password the token.
    let go = api
        .http
        .get(api.url("/metrics"))
        .basic_auth("token", Some("tok123"))
        .send()
        .await
        .unwrap();
    assert_eq!(go.status(), 200);
    let wrong = api
        .http
        .get(api.url("/metrics"))
        .basic_auth("other", Some(""))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);
}

#[tokio::test]
async fn measurement_posts_and_their_rules() {
    let api = Api::start().await;
    let ok = api
        .send(
            Method::POST,
            "/measurements",
            Some(&json!({"measurements": [{"name": "cpu", "value": 1.5, "tags": {"Host": "WEB-1"}}]})),
        )
        .await;
    assert_eq!(ok.status(), 202);
    assert!(ok.headers().contains_key("x-librato-ratelimit-agg"));
    assert!(ok.headers().contains_key("x-librato-ratelimit-std"));
    assert_eq!(ok.text().await.unwrap(), "");
    assert_eq!(api.emulator.stored_points("CPU")[0].tags["host"], "web-1");

    let form = api
        .http
        .post(api.url("/measurements"))
        .basic_auth("tok123", Some(""))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("measurements[0][name]=cpu")
        .send()
        .await
        .unwrap();
    assert_eq!(form.status(), 415);
    let garbage = api
        .http
        .post(api.url("/measurements"))
        .basic_auth("tok123", Some(""))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(
        garbage.status(),
        429,
        "documented: an unparseable payload is a 429"
    );

    let cases = [
        (
            json!({"measurements": [{"name": "bad name", "value": 1}]}),
            "name",
        ),
        (
            json!({"measurements": [{"name": "x", "value": 1e127}]}),
            "value",
        ),
        (
            json!({"measurements": [{"name": "x", "value": 1, "count": 1, "sum": 1}]}),
            "value",
        ),
        (json!({"measurements": [{"name": "x", "count": 2}]}), "sum"),
        (json!({"measurements": [{"name": "x"}]}), "value"),
        (
            json!({"measurements": [{"name": "x", "value": 1, "tags": {"a,b": "c"}}]}),
            "tags",
        ),
        (json!({"measurements": []}), "measurements"),
    ];
    for (body, field) in cases {
        let (status, error) = api.post("/measurements", &body).await;
        assert_eq!(status, 400, "{body}");
        assert!(
            error["errors"]["params"].get(field).is_some(),
            "{body}: {error}"
        );
    }
    let many: Vec<Value> = (0..51).map(|i| json!([format!("t{i}"), "v"])).collect();
    let tags: serde_json::Map<String, Value> = many
        .iter()
        .map(|p| (p[0].as_str().unwrap().to_owned(), p[1].clone()))
        .collect();
    let (status, _) = api
        .post(
            "/measurements",
            &json!({"measurements": [{"name": "x", "value": 1, "tags": tags}]}),
        )
        .await;
    assert_eq!(status, 400);
    let thousand_and_one: Vec<Value> = (0..1001)
        .map(|i| json!({"name": "x", "value": i, "tags": {"h": "a"}}))
        .collect();
    let (status, error) = api
        .post("/measurements", &json!({"measurements": thousand_and_one}))
        .await;
    assert_eq!(status, 400);
    assert!(
        error["errors"]["params"]["measurements"][0]
            .as_str()
            .unwrap()
            .contains("1000")
    );

    // Tiny values are stored as 0.
    api.post(
        "/measurements",
        &json!({"measurements": [{"name": "tiny", "value": 1e-200, "tags": {"h": "a"}}]}),
    )
    .await;
    assert_eq!(api.emulator.stored_points("tiny")[0].value, 0.0);
    assert_eq!(api.emulator.measurement_stats().posts, 2);
}

#[tokio::test]
async fn top_level_tags_replace_or_merge() {
    // measurements_post_top_level_tags.json
    let body = json!({
        "tags": {"region": "us-west", "name": "web-prod-3"},
        "measurements": [
            {"name": "cpu", "value": 4.5, "tags": {"name": "web-prod-1"}},
            {"name": "memory", "value": 34.5, "tags": {"az": "e", "db": "db-prod-1"}},
            {"name": "disk", "value": 10.5}
        ]
    });
    let tags = |api: &Api, metric: &str| api.emulator.stored_points(metric)[0].tags.clone();
    let pairs = |p: &[(&str, &str)]| {
        p.iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect::<std::collections::BTreeMap<_, _>>()
    };
    let api = Api::start().await;
    assert_eq!(api.post("/measurements", &body).await.0, 202);
    assert_eq!(tags(&api, "cpu"), pairs(&[("name", "web-prod-1")]));
    assert_eq!(
        tags(&api, "memory"),
        pairs(&[("az", "e"), ("db", "db-prod-1")])
    );
    assert_eq!(
        tags(&api, "disk"),
        pairs(&[("name", "web-prod-3"), ("region", "us-west")])
    );

    let api = Api::start().await;
    api.emulator.set_tag_mode(TagMode::Merge);
    assert_eq!(api.post("/measurements", &body).await.0, 202);
    assert_eq!(
        tags(&api, "cpu"),
        pairs(&[("name", "web-prod-1"), ("region", "us-west")])
    );
    assert_eq!(
        tags(&api, "memory"),
        pairs(&[
            ("az", "e"),
            ("db", "db-prod-1"),
            ("name", "web-prod-3"),
            ("region", "us-west")
        ])
    );
    // In merge mode a null removes an inherited tag.
    api.post(
        "/measurements",
        &json!({"tags": {"a": "1", "b": "2"}, "measurements": [{"name": "n", "value": 1, "tags": {"b": null}}]}),
    )
    .await;
    assert_eq!(tags(&api, "n"), pairs(&[("a", "1")]));
}

#[tokio::test]
async fn metrics_routes() {
    let api = Api::start().await;
    let created = api
        .send(
            Method::PUT,
            "/metrics/app.requests",
            Some(&json!({"type": "gauge", "period": 60})),
        )
        .await;
    assert_eq!(created.status(), 201);
    assert_eq!(created.headers()["location"], "/v1/metrics/app.requests");
    let metric: Value = serde_json::from_str(&created.text().await.unwrap()).unwrap();
    assert_eq!(metric["period"], 60);
    assert_eq!(metric["display_name"], Value::Null);
    let (status, body) = api
        .put("/metrics/APP.REQUESTS", &json!({"description": "d"}))
        .await;
    assert_eq!((status, body), (StatusCode::NO_CONTENT, Value::Null));
    assert_eq!(api.get("/metrics/app.requests").await.1["description"], "d");
    let (status, body) = api.get("/metrics/nope").await;
    assert_eq!(status, 404);
    assert_eq!(body, json!({"errors": {"request": ["Not found"]}}));
    let (status, body) = api.put("/metrics/c", &json!({"type": "composite"})).await;
    assert_eq!(
        (status, body),
        (
            StatusCode::BAD_REQUEST,
            params_error("composite", "is required for composite metrics")
        )
    );

    for i in 0..5 {
        api.put(&format!("/metrics/m{i}"), &json!({})).await;
    }
    let (_, page) = api.get("/metrics?name=M&offset=1&length=2").await;
    assert_eq!(
        page["query"],
        json!({"found": 5, "length": 2, "offset": 1, "total": 6})
    );
    let names: Vec<&str> = page["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["m1", "m2"]);
    let (status, _) = api.get("/metrics?length=101").await;
    assert_eq!(status, 400);
    let (status, _) = api
        .json(Method::DELETE, "/metrics", Some(&json!({"names": "m*"})))
        .await;
    assert_eq!(status, 204);
    assert_eq!(api.emulator.metric_names(), ["app.requests"]);
    let (_, headers) = {
        let r = api.send(Method::GET, "/metrics", None).await;
        (r.status(), r.headers().clone())
    };
    let limit = headers["x-librato-ratelimit-std"].to_str().unwrap();
    assert!(
        limit.starts_with("limit=") && limit.contains("remaining="),
        "{limit}"
    );
}

#[tokio::test]
async fn measurement_reads_and_pages() {
    let api = Api::start().await;
    let t0 = 1_700_000_100_i64;
    api.emulator
        .seed_series("cpu", &[("host", "a")], (0..10).map(|i| (t0 + i, 1.0)));
    let (status, body) = api.get("/measurements/cpu?duration=60").await;
    assert_eq!(
        (status, body),
        (
            StatusCode::BAD_REQUEST,
            params_error("resolution", "is not present")
        )
    );
    let (status, _) = api
        .get(&format!(
            "/measurements/cpu?start_time={t0}&end_time={}&duration=5&resolution=1",
            t0 + 9
        ))
        .await;
    assert_eq!(status, 400);
    let (status, _) = api.get("/measurements/cpu?resolution=1").await;
    assert_eq!(status, 400);
    let (status, body) = api.get("/measurements/nope?duration=60&resolution=1").await;
    assert_eq!(
        (status, body),
        (
            StatusCode::NOT_FOUND,
            json!({"errors": {"request": ["Not found"]}})
        )
    );
    let (status, _) = api
        .get(&format!(
            "/measurements/cpu?start_time={t0}&resolution=1&group_by=host"
        ))
        .await;
    assert_eq!(status, 400, "group_by needs group_by_function");

    api.emulator.set_page_points(4);
    let (status, page) = api
        .get(&format!(
            "/measurements/cpu?start_time={t0}&end_time={}&resolution=1&tags%5Bhost%5D=a",
            t0 + 9
        ))
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        page["series"][0]["measurements"].as_array().unwrap().len(),
        4
    );
    assert_eq!(page["resolution"], 1);
    let next = page["links"][0]["href"].as_str().unwrap();
    assert_eq!(page["links"][0]["rel"], "next");
    assert!(next.starts_with(&api.emulator.base_url()), "{next}");
    let response = api
        .http
        .get(next)
        .basic_auth("tok123", Some(""))
        .send()
        .await
        .unwrap();
    let second: Value = serde_json::from_str(&response.text().await.unwrap()).unwrap();
    assert_eq!(second["series"][0]["measurements"][0]["time"], t0 + 4);
}

#[tokio::test]
async fn composite_shapes() {
    let api = Api::start().await;
    let t0 = 1_700_000_100_i64;
    api.emulator
        .seed_series("temp", &[("city", "sf")], [(t0, 10.0)]);
    let query = format!("compose=s%28%22temp%22%2C%22%2A%22%29&start_time={t0}&resolution=60");
    let (status, array) = api.get(&format!("/measurements?{query}")).await;
    assert_eq!(status, 200);
    assert_eq!(array[0]["tags"], json!({"city": "sf"}));
    assert_eq!(array[0]["metric"]["name"], "temp");
    assert_eq!(
        array[0]["measurements"][0],
        json!({"time": t0, "value": 10.0})
    );
    let (status, object) = api.get(&format!("/metrics?{query}")).await;
    assert_eq!(status, 200);
    assert_eq!(object["compose"], "s(\"temp\",\"*\")");
    assert_eq!(object["series"][0]["query"]["metric"], "temp");
    let (status, body) = api
        .get("/measurements?compose=s%28%22temp%22%29&resolution=60")
        .await;
    assert_eq!(
        (status, body),
        (
            StatusCode::BAD_REQUEST,
            params_error("start_time", "is not present")
        )
    );
}

#[tokio::test]
async fn annotations_spaces_alerts_services() {
    let api = Api::start().await;
    let created = api
        .send(
            Method::POST,
            "/annotations/deploys",
            Some(&json!({"title": "v1", "start_time": 100})),
        )
        .await;
    assert_eq!(created.status(), 201);
    assert_eq!(created.headers()["location"], "/v1/annotations/deploys/1");
    let (status, body) = api.post("/annotations/deploys", &json!({})).await;
    assert_eq!(
        (status, body),
        (
            StatusCode::BAD_REQUEST,
            params_error("title", "is not present")
        )
    );
    let (status, _) = api.get("/annotations/deploys").await;
    assert_eq!(status, 400, "a stream read needs start_time or count");
    let (_, stream) = api.get("/annotations/deploys?count=5").await;
    assert_eq!(stream["events"][0]["unassigned"][0]["title"], "v1");

    let (status, space) = api.post("/spaces", &json!({"name": "Ops"})).await;
    assert_eq!(status, 201);
    let sid = space["id"].as_u64().unwrap();
    let (status, chart) = api
        .post(
            &format!("/spaces/{sid}/charts"),
            &json!({"name": "CPU", "streams": [{"metric": "cpu"}, {"composite": "s(\"a\",\"*\")"}]}),
        )
        .await;
    assert_eq!(status, 201);
    assert_eq!(chart["type"], "line");
    assert_eq!(chart["streams"][0]["type"], "gauge");
    assert_eq!(chart["streams"][1]["type"], "composite");
    assert!(chart["streams"][0]["id"].is_u64());
    let cid = chart["id"].as_u64().unwrap();
    let (status, updated) = api
        .put(
            &format!("/spaces/{sid}/charts/{cid}"),
            &json!({"streams": [{"metric": "mem"}]}),
        )
        .await;
    assert_eq!(status, 200, "a chart PUT answers with the chart");
    assert_eq!(updated["name"], "CPU");
    assert_eq!(updated["streams"].as_array().unwrap().len(), 1);
    let (_, charts) = api.get(&format!("/spaces/{sid}/charts")).await;
    assert!(charts.is_array());
    let (status, _) = api
        .post(
            &format!("/spaces/{sid}/charts"),
            &json!({"name": "x", "streams": [{}]}),
        )
        .await;
    assert_eq!(status, 400);

    let (status, service) = api
        .post(
            "/services",
            &json!({"title": "Ops", "type": "mail", "settings": {"addresses": "a@b"}}),
        )
        .await;
    assert_eq!(status, 201);
    assert!(service["id"].is_string(), "services show string ids");
    let service_id: u64 = service["id"].as_str().unwrap().parse().unwrap();
    let alert = json!({
        "name": "cpu.high",
        "conditions": [{"type": "above", "metric_name": "cpu", "threshold": 90}],
        "services": [service_id],
    });
    let (status, created) = api.post("/alerts", &alert).await;
    assert_eq!(status, 201);
    assert_eq!(
        created["services"][0]["id"], service_id,
        "numbers inside alerts"
    );
    assert_eq!(created["conditions"][0]["summary_function"], "average");
    assert_eq!(created["rearm_seconds"], 600);
    let (status, _) = api.post("/alerts", &alert).await;
    assert_eq!(status, 422);
    let (status, body) = api
        .post(
            "/alerts",
            &json!({"name": "b", "conditions": [{"type": "absent", "metric_name": "m"}]}),
        )
        .await;
    assert_eq!(status, 400);
    assert_eq!(
        body,
        json!({"errors": {"params": {"conditions": {"duration": ["must be set"]}}}})
    );
    let (status, _) = api.put("/alerts/1", &json!({"name": "cpu.high"})).await;
    assert_eq!(status, 204);
    assert_eq!(
        api.get("/alerts/1").await.1["conditions"],
        json!([]),
        "conditions left out are deleted"
    );
    let (_, status) = api.get("/alerts/1/status").await;
    assert_eq!(status["status"], "ok");
    let (_, all) = api.get("/alerts/status").await;
    assert_eq!(all, json!({"cleared": [], "firing": []}));
}

#[tokio::test]
async fn rate_limit_on_demand() {
    let api = Api::start().await;
    api.emulator
        .set_rate_limit(2, std::time::Duration::from_secs(60));
    assert_eq!(api.get("/metrics").await.0, 200);
    assert_eq!(api.get("/metrics").await.0, 200);
    let limited = api.send(Method::GET, "/metrics", None).await;
    assert_eq!(limited.status(), 429);
    let header = limited.headers()["x-librato-ratelimit-std"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(header.starts_with("limit=2,remaining=0,reset="), "{header}");
    assert_eq!(
        limited.text().await.unwrap(),
        r#"{"errors":{"request":["Rate limit exceeded"]}}"#
    );
    api.emulator.clear_rate_limit();
    assert_eq!(api.get("/metrics").await.0, 200);
}

#[tokio::test]
async fn bulk_posts_are_stored_compactly_and_counted() {
    let api = Api::start().await;
    for post in 0..20 {
        let measurements: Vec<Value> = (0..1000)
            .map(|i| json!({"name": "bulk", "value": post * 1000 + i, "time": 1_700_000_000 + i, "tags": {"host": "a"}}))
            .collect();
        let (status, _) = api
            .post("/measurements", &json!({"measurements": measurements}))
            .await;
        assert_eq!(status, 202);
    }
    let stats = api.emulator.measurement_stats();
    assert_eq!(
        (stats.posts, stats.measurements, stats.largest_post),
        (20, 20_000, 1000)
    );
    assert_eq!(api.emulator.point_count(), 20_000);
    // Request bodies are not kept: the log has method, URI and headers only.
    assert_eq!(api.emulator.requests().count(), 20);
    api.emulator.reset();
    assert_eq!(api.emulator.point_count(), 0);
    assert_eq!(api.emulator.measurement_stats().posts, 0);
}

#[tokio::test]
async fn demo_data_is_readable() {
    let api = Api::start().await;
    let now = 1_700_003_600;
    api.emulator.seed_demo_data(now);
    assert_eq!(
        api.emulator.metric_names(),
        ["cpu.percent.user", "http.requests", "memory.used.bytes"]
    );
    let (_, read) = api
        .get(&format!("/measurements/cpu.percent.user?start_time={}&end_time={now}&resolution=600&group_by=region&group_by_function=mean", now - 3600))
        .await;
    assert_eq!(read["series"].as_array().unwrap().len(), 2);
    let (_, spaces) = api.get("/spaces").await;
    assert_eq!(spaces["spaces"][0]["name"], "Ops");
    let (_, status) = api.get("/alerts/status").await;
    assert_eq!(status["firing"].as_array().unwrap().len(), 1);
    assert!(api.emulator.alert(1).is_some());
}
