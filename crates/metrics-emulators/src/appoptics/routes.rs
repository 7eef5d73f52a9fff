//! The HTTP side: authentication, rate limiting, and one handler per route.
#![allow(
    clippy::result_large_err,
    reason = "an error is the finished error response; boxing it would only add noise to a test server"
)]

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, Request, State as Shared};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use base64::Engine as _;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::composite::{self, Window};
use super::state::{
    Event, PointValue, Sample, SpaceRecord, State, TagFilter, TagKey, TagMode, bucketize, glob,
    point_json, summarize, tags_json,
};
use crate::server::lock;

pub(crate) type SharedState = Arc<Mutex<State>>;
type Reply = Result<Response, Response>;

const JSON_TYPE: &str = "application/json;charset=utf-8";
const MAX_RESOLUTION: i64 = 604_800;
const MAX_TAGS: usize = 50;

pub(crate) fn router(shared: SharedState) -> Router {
    Router::new()
        .route(
            "/v1/metrics",
            get(list_metrics)
                .put(bulk_update_metrics)
                .delete(bulk_delete_metrics),
        )
        .route(
            "/v1/metrics/{name}",
            get(get_metric).put(put_metric).delete(delete_metric),
        )
        .route(
            "/v1/measurements",
            get(composite_query).post(post_measurements),
        )
        .route("/v1/measurements/{name}", get(get_measurements))
        .route("/v1/annotations", get(list_annotations))
        .route(
            "/v1/annotations/{name}",
            get(get_stream)
                .post(post_event)
                .put(put_stream)
                .delete(delete_stream),
        )
        .route(
            "/v1/annotations/{name}/{id}",
            get(get_event).put(put_event).delete(delete_event),
        )
        .route("/v1/annotations/{name}/{id}/links", post(post_link))
        .route(
            "/v1/annotations/{name}/{id}/links/{rel}",
            delete(delete_link),
        )
        .route("/v1/spaces", get(list_spaces).post(create_space))
        .route(
            "/v1/spaces/{id}",
            get(get_space).put(put_space).delete(delete_space),
        )
        .route(
            "/v1/spaces/{id}/charts",
            get(list_charts).post(create_chart),
        )
        .route(
            "/v1/spaces/{id}/charts/{chart}",
            get(get_chart).put(put_chart).delete(delete_chart),
        )
        .route("/v1/alerts", get(list_alerts).post(create_alert))
        .route("/v1/alerts/status", get(alerts_status))
        .route(
            "/v1/alerts/{id}",
            get(get_alert).put(put_alert).delete(delete_alert),
        )
        .route("/v1/alerts/{id}/status", get(alert_status))
        .route("/v1/alerts/{id}/services", post(add_alert_service))
        .route(
            "/v1/alerts/{id}/services/{service}",
            delete(remove_alert_service),
        )
        .route("/v1/alerts/{id}/clear", post(clear_alert))
        .route("/v1/services", get(list_services).post(create_service))
        .route(
            "/v1/services/{id}",
            get(get_service).put(put_service).delete(delete_service),
        )
        .fallback(fallback)
        .layer(middleware::from_fn_with_state(shared.clone(), gate))
        .with_state(shared)
}

// ---------------------------------------------------------------------------------------------
// Responses

fn json_response(status: StatusCode, body: &Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, JSON_TYPE)],
        body.to_string(),
    )
        .into_response()
}

fn ok(body: &Value) -> Reply {
    Ok(json_response(StatusCode::OK, body))
}

fn created(location: &str, body: &Value) -> Reply {
    let mut response = json_response(StatusCode::CREATED, body);
    if let Ok(value) = HeaderValue::from_str(location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    Ok(response)
}

fn no_content() -> Reply {
    Ok(StatusCode::NO_CONTENT.into_response())
}

fn params_error(field: &str, message: &str) -> Response {
    json_response(
        StatusCode::BAD_REQUEST,
        &json!({"errors": {"params": {field: [message]}}}),
    )
}

fn nested_params_error(field: &str, sub: &str, message: &str) -> Response {
    json_response(
        StatusCode::BAD_REQUEST,
        &json!({"errors": {"params": {field: {sub: [message]}}}}),
    )
}

fn request_error(status: StatusCode, message: &str) -> Response {
    json_response(status, &json!({"errors": {"request": [message]}}))
}

fn not_found() -> Response {
    request_error(StatusCode::NOT_FOUND, "Not found")
}

async fn fallback() -> Response {
    not_found()
}

// ---------------------------------------------------------------------------------------------
// Authentication and rate limits

fn authorized(headers: &HeaderMap, token: Option<&str>) -> bool {
    let Some(value) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let Some(encoded) = value
        .strip_prefix("Basic ")
        .or_else(|| value.strip_prefix("basic "))
    else {
        return false;
    };
    let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(encoded.trim()) else {
        return false;
    };
    let decoded = String::from_utf8_lossy(&decoded);
    let (user, password) = decoded.split_once(':').unwrap_or((&decoded, ""));
    match token {
        // The token as the user (every client) or as the password (the Go client).
        Some(token) => user == token || password == token,
        None => !user.is_empty() || !password.is_empty(),
    }
}

struct InFlight(SharedState);

impl Drop for InFlight {
    fn drop(&mut self) {
        let mut state = lock(&self.0);
        state.posts_in_flight = state.posts_in_flight.saturating_sub(1);
    }
}

async fn gate(Shared(shared): Shared<SharedState>, request: Request, next: Next) -> Response {
    let is_get = request.method() == Method::GET;
    let measurement_post =
        request.method() == Method::POST && request.uri().path() == "/v1/measurements";
    let allowed_auth = authorized(request.headers(), lock(&shared).token.as_deref());
    if !allowed_auth {
        // GETs get a JSON body, writes a plain-text one, as the real server does.
        let mut response = if is_get {
            request_error(StatusCode::UNAUTHORIZED, "Authorization Required")
        } else {
            (
                StatusCode::UNAUTHORIZED,
                [(header::CONTENT_TYPE, "text/plain")],
                "Credentials are required to access this resource.",
            )
                .into_response()
        };
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"Librato API\""),
        );
        return response;
    }
    let (allowed, remaining, reset, limit) = {
        let mut state = lock(&shared);
        let (allowed, remaining, reset) = state.rate.take();
        (allowed, remaining, reset, state.rate.limit)
    };
    let mut response = if allowed && measurement_post {
        // Measurement posts take `post_latency` and are counted while they are served, so
        // a test can see how many a client sends at once.
        let latency = {
            let mut state = lock(&shared);
            state.posts_in_flight += 1;
            state.stats.max_concurrent_posts =
                state.stats.max_concurrent_posts.max(state.posts_in_flight);
            state.post_latency
        };
        // Decrements also when the client goes away mid-request and this future is dropped.
        let _in_flight = InFlight(Arc::clone(&shared));
        if let Some(latency) = latency {
            tokio::time::sleep(latency).await;
        }
        next.run(request).await
    } else if allowed {
        next.run(request).await
    } else {
        request_error(StatusCode::TOO_MANY_REQUESTS, "Rate limit exceeded")
    };
    if let Ok(value) = HeaderValue::from_str(&format!(
        "limit={limit},remaining={remaining},reset={reset}"
    )) {
        if measurement_post {
            response
                .headers_mut()
                .insert("x-librato-ratelimit-agg", value.clone());
        }
        response
            .headers_mut()
            .insert("x-librato-ratelimit-std", value);
    }
    response
}

// ---------------------------------------------------------------------------------------------
// Request parsing

/// Query parameters in order, decoded (`+` is a space).
struct Params(Vec<(String, String)>);

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(byte) => {
                        out.push(byte);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            byte => out.push(byte),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~' | b'*') {
            out.push(char::from(byte));
        } else if byte == b' ' {
            out.push('+');
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

impl Params {
    fn parse(raw: Option<&str>) -> Self {
        Self(
            raw.unwrap_or_default()
                .split('&')
                .filter(|p| !p.is_empty())
                .map(|pair| {
                    let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
                    (percent_decode(k), percent_decode(v))
                })
                .collect(),
        )
    }

    fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    fn int(&self, key: &str) -> Result<Option<i64>, Response> {
        match self.get(key) {
            None | Some("") => Ok(None),
            Some(v) => v
                .trim()
                .parse::<f64>()
                .ok()
                .filter(|f| f.is_finite())
                .map(|f| Some(f.floor() as i64))
                .ok_or_else(|| params_error(key, "is not a number")),
        }
    }

    fn encode(&self) -> String {
        self.0
            .iter()
            .map(|(k, v)| format!("{}={}", percent_encode(k), percent_encode(v)))
            .collect::<Vec<_>>()
            .join("&")
    }
}

fn body_object(body: &Bytes) -> Result<Map<String, Value>, Response> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(request_error(
            StatusCode::BAD_REQUEST,
            "The request body must be a JSON object",
        )),
        Err(_) => Err(request_error(
            StatusCode::BAD_REQUEST,
            "The request body could not be parsed as JSON",
        )),
    }
}

fn parse_id(text: &str) -> Result<u64, Response> {
    text.parse().map_err(|_| not_found())
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | ':' | '-' | '_')
}

fn valid_metric_name(name: &str) -> bool {
    !name.is_empty() && name.chars().count() <= 255 && name.chars().all(is_name_char)
}

fn valid_tag_name(name: &str) -> bool {
    !name.is_empty() && name.chars().count() <= 64 && name.chars().all(is_name_char)
}

fn valid_tag_value(value: &str) -> bool {
    !value.is_empty()
        && value.chars().count() <= 255
        && value
            .chars()
            .all(|c| is_name_char(c) || matches!(c, '?' | '\\' | '/' | ' '))
}

/// Server-side float rules: exponent above 126 is an error, below −130 is stored as 0.
fn check_float(field: &str, value: f64) -> Result<f64, Response> {
    if !value.is_finite() || value.abs() >= 1e127 {
        return Err(params_error(field, "is out of range"));
    }
    Ok(if value.abs() < 1e-130 { 0.0 } else { value })
}

/// Pagination of a list route: `(offset, length)` from the query.
fn page_bounds(params: &Params) -> Result<(usize, usize), Response> {
    let offset = params.int("offset")?.unwrap_or(0).max(0);
    let length = params.int("length")?.unwrap_or(100);
    if !(1..=100).contains(&length) {
        return Err(params_error("length", "must be between 1 and 100"));
    }
    Ok((
        usize::try_from(offset).unwrap_or(usize::MAX),
        usize::try_from(length).unwrap_or(100),
    ))
}

/// One page of `items` (already filtered) with the `query` object.
fn paginated(key: &str, mut items: Vec<Value>, total: usize, params: &Params) -> Reply {
    let (offset, length) = page_bounds(params)?;
    if params.get("sort") == Some("desc") {
        items.reverse();
    }
    let found = items.len();
    let page: Vec<Value> = items.into_iter().skip(offset).take(length).collect();
    ok(&json!({
        "query": {"found": found, "length": length, "offset": offset, "total": total},
        key: page,
    }))
}

fn name_filter(params: &Params) -> impl Fn(&str) -> bool + '_ {
    let needle = params.get("name").map(str::to_ascii_lowercase);
    move |name: &str| {
        needle
            .as_deref()
            .is_none_or(|n| name.to_ascii_lowercase().contains(n))
    }
}

// ---------------------------------------------------------------------------------------------
// Metrics

async fn list_metrics(Shared(shared): Shared<SharedState>, RawQuery(raw): RawQuery) -> Reply {
    let params = Params::parse(raw.as_deref());
    if params.get("compose").is_some() {
        return composite_response(&shared, &params, true);
    }
    let state = lock(&shared);
    let matches = name_filter(&params);
    let mut records: Vec<_> = state.metrics.iter().collect();
    records.sort_by(|a, b| a.0.cmp(b.0));
    let items = records
        .into_iter()
        .filter(|(_, r)| matches(&r.name))
        .map(|(_, r)| r.to_json())
        .collect();
    paginated("metrics", items, state.metrics.len(), &params)
}

async fn get_metric(Shared(shared): Shared<SharedState>, Path(name): Path<String>) -> Reply {
    let state = lock(&shared);
    let record = state.metric(&name).ok_or_else(not_found)?;
    ok(&record.to_json())
}

async fn put_metric(
    Shared(shared): Shared<SharedState>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Reply {
    if !valid_metric_name(&name) {
        return Err(params_error("name", "is invalid"));
    }
    let body = body_object(&body)?;
    let mut state = lock(&shared);
    if let Some(record) = state.metric_mut(&name) {
        record.apply_properties(&body);
        return no_content();
    }
    let metric_type = body.get("type").and_then(Value::as_str).unwrap_or("gauge");
    if !matches!(metric_type, "gauge" | "composite") {
        return Err(params_error("type", "is not included in the list"));
    }
    if metric_type == "composite" {
        let Some(expr) = body.get("composite").and_then(Value::as_str) else {
            return Err(params_error(
                "composite",
                "is required for composite metrics",
            ));
        };
        composite::parse(expr).map_err(|e| params_error("composite", &e))?;
    }
    let mut record = super::state::MetricRecord::new(&name, metric_type);
    record.apply_properties(&body);
    if let Some(ua) = headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
    {
        record.attributes.insert("created_by_ua".into(), json!(ua));
    }
    let out = record.to_json();
    state.metrics.insert(name.to_ascii_lowercase(), record);
    created(&format!("/v1/metrics/{name}"), &out)
}

fn selected_names(state: &State, body: &Map<String, Value>) -> Result<Vec<String>, Response> {
    match body.get("names") {
        Some(Value::Array(names)) => Ok(names
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_ascii_lowercase)
            .collect()),
        Some(Value::String(pattern)) => Ok(state
            .metrics
            .keys()
            .filter(|name| glob(pattern, name))
            .cloned()
            .collect()),
        _ => Err(params_error("names", "is not present")),
    }
}

async fn bulk_update_metrics(Shared(shared): Shared<SharedState>, body: Bytes) -> Reply {
    let body = body_object(&body)?;
    let mut state = lock(&shared);
    for name in selected_names(&state, &body)? {
        if let Some(record) = state.metrics.get_mut(&name) {
            record.apply_properties(&body);
        }
    }
    no_content()
}

async fn delete_metric(Shared(shared): Shared<SharedState>, Path(name): Path<String>) -> Reply {
    let mut state = lock(&shared);
    state
        .metrics
        .remove(&name.to_ascii_lowercase())
        .ok_or_else(not_found)?;
    no_content()
}

async fn bulk_delete_metrics(Shared(shared): Shared<SharedState>, body: Bytes) -> Reply {
    let body = body_object(&body)?;
    let mut state = lock(&shared);
    for name in selected_names(&state, &body)? {
        state.metrics.remove(&name);
    }
    no_content()
}

// ---------------------------------------------------------------------------------------------
// Measurements: write

#[derive(Deserialize)]
struct PostBody {
    #[serde(default)]
    time: Option<f64>,
    #[serde(default)]
    period: Option<i64>,
    #[serde(default)]
    tags: Option<Map<String, Value>>,
    #[serde(default)]
    measurements: Option<Vec<PostMeasurement>>,
}

#[derive(Deserialize)]
struct PostMeasurement {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    value: Option<f64>,
    #[serde(default)]
    count: Option<f64>,
    #[serde(default)]
    sum: Option<f64>,
    #[serde(default)]
    min: Option<f64>,
    #[serde(default)]
    max: Option<f64>,
    #[serde(default)]
    stddev: Option<f64>,
    #[serde(default)]
    time: Option<f64>,
    #[serde(default)]
    period: Option<i64>,
    #[serde(default)]
    tags: Option<Map<String, Value>>,
    #[serde(default)]
    attributes: Option<Map<String, Value>>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    display_name: Option<String>,
}

/// Tag pairs as sent: `None` values are explicit `null`s.
fn tag_pairs(tags: &Map<String, Value>) -> Result<Vec<(String, Option<String>)>, Response> {
    tags.iter()
        .map(|(name, value)| {
            let value = match value {
                Value::Null => None,
                Value::String(s) => Some(s.clone()),
                Value::Number(n) => Some(n.to_string()),
                Value::Bool(b) => Some(b.to_string()),
                _ => return Err(params_error("tags", "values must be strings")),
            };
            Ok((name.clone(), value))
        })
        .collect()
}

fn resolve_tags(
    mode: TagMode,
    top: &[(String, Option<String>)],
    own: Option<&[(String, Option<String>)]>,
) -> Result<TagKey, Response> {
    let mut merged: BTreeMap<String, Option<String>> = BTreeMap::new();
    match (mode, own) {
        (TagMode::Replace, Some(own)) if !own.is_empty() => merged.extend(own.iter().cloned()),
        (TagMode::Replace, _) => merged.extend(top.iter().cloned()),
        (TagMode::Merge, own) => {
            merged.extend(top.iter().cloned());
            merged.extend(own.unwrap_or_default().iter().cloned());
        }
    }
    let mut key = TagKey::new();
    for (name, value) in merged {
        let Some(value) = value else { continue };
        if !valid_tag_name(&name) {
            return Err(params_error(
                "tags",
                &format!("tag name '{name}' is invalid"),
            ));
        }
        if !valid_tag_value(&value) {
            return Err(params_error(
                "tags",
                &format!("tag value '{value}' of '{name}' is invalid"),
            ));
        }
        key.push((name.to_ascii_lowercase(), value.to_ascii_lowercase()));
    }
    if key.len() > MAX_TAGS {
        return Err(params_error(
            "tags",
            &format!("must have at most {MAX_TAGS} tags per measurement"),
        ));
    }
    key.sort();
    key.dedup_by(|a, b| a.0 == b.0);
    Ok(key)
}

fn to_sample(m: &PostMeasurement, time: i64) -> Result<Sample, Response> {
    match (m.value, m.count) {
        (Some(_), Some(_)) => Err(params_error("value", "cannot be set together with count")),
        (Some(value), None) => Ok(Sample::value(time, check_float("value", value)?)),
        (None, Some(count)) => {
            let Some(sum) = m.sum else {
                return Err(params_error("sum", "is required with count"));
            };
            if count < 1.0 || count.fract() != 0.0 || count > f64::from(u32::MAX) {
                return Err(params_error("count", "must be a positive integer"));
            }
            let sum = check_float("sum", sum)?;
            let mean = sum / count;
            let min = check_float("min", m.min.unwrap_or(mean))?;
            let max = check_float("max", m.max.unwrap_or(mean))?;
            let stddev = check_float("stddev", m.stddev.unwrap_or(0.0))?;
            Ok(Sample {
                time,
                count: count as u32,
                sum,
                min,
                max,
                sumsq: count * (stddev * stddev + mean * mean),
            })
        }
        (None, None) => Err(params_error("value", "is not present")),
    }
}

async fn post_measurements(
    Shared(shared): Shared<SharedState>,
    headers: HeaderMap,
    body: Bytes,
) -> Reply {
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim_start().starts_with("application/json"));
    if !json {
        return Err(request_error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Content-Type must be application/json",
        ));
    }
    // The API answers an unparseable measurements payload with 429.
    let body: PostBody = serde_json::from_slice(&body).map_err(|_| {
        request_error(
            StatusCode::TOO_MANY_REQUESTS,
            "The request body could not be parsed",
        )
    })?;
    let measurements = body.measurements.unwrap_or_default();
    let (tag_mode, max_per_post) = {
        let state = lock(&shared);
        (state.tag_mode, state.max_per_post)
    };
    if measurements.is_empty() {
        return Err(params_error("measurements", "is not present"));
    }
    if measurements.len() > max_per_post {
        return Err(params_error(
            "measurements",
            &format!(
                "has {} entries; the limit per request is {max_per_post}",
                measurements.len()
            ),
        ));
    }
    let top_tags = tag_pairs(&body.tags.unwrap_or_default())?;
    let top_time = body.time.map_or_else(now, |t| t.floor() as i64);
    let user_agent = headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let mut prepared = Vec::with_capacity(measurements.len());
    for m in &measurements {
        let Some(name) = m.name.as_deref() else {
            return Err(params_error("name", "is not present"));
        };
        if !valid_metric_name(name) {
            return Err(params_error(
                "name",
                &format!("'{name}' is not a valid metric name"),
            ));
        }
        let own = m.tags.as_ref().map(tag_pairs).transpose()?;
        let tags = resolve_tags(tag_mode, &top_tags, own.as_deref())?;
        let time = m.time.map_or(top_time, |t| t.floor() as i64);
        prepared.push((name, tags, to_sample(m, time)?, m));
    }
    let mut state = lock(&shared);
    if let Some((name, ..)) = prepared.iter().find(|(name, ..)| {
        state
            .metric(name)
            .is_some_and(|r| r.metric_type == "composite")
    }) {
        return Err(params_error(
            "name",
            &format!("'{name}' is a composite metric and takes no measurements"),
        ));
    }
    let count = prepared.len();
    for (name, tags, sample, m) in prepared {
        let created = state.metric(name).is_none();
        let record = state.store(name, tags, sample);
        if created {
            record.period = m.period.or(body.period);
            record.description.clone_from(&m.description);
            record.display_name.clone_from(&m.display_name);
            if let Some(attributes) = &m.attributes {
                record.attributes.extend(attributes.clone());
            }
            if !user_agent.is_empty() {
                record
                    .attributes
                    .insert("created_by_ua".into(), json!(user_agent));
            }
        }
    }
    state.stats.posts += 1;
    state.stats.measurements += count;
    state.stats.largest_post = state.stats.largest_post.max(count);
    Ok(StatusCode::ACCEPTED.into_response())
}

// ---------------------------------------------------------------------------------------------
// Measurements: read

struct Range {
    start: i64,
    end: i64,
    resolution: i64,
}

fn read_range(params: &Params, require_resolution: bool) -> Result<Range, Response> {
    let start = params.int("start_time")?;
    let end = params.int("end_time")?;
    let duration = params.int("duration")?;
    let resolution = match params.int("resolution")? {
        Some(r) => r,
        None if require_resolution => return Err(params_error("resolution", "is not present")),
        None => 60,
    };
    if !(1..=MAX_RESOLUTION).contains(&resolution) {
        return Err(params_error(
            "resolution",
            &format!("must be between 1 and {MAX_RESOLUTION}"),
        ));
    }
    if start.is_some() && end.is_some() && duration.is_some() {
        return Err(params_error(
            "duration",
            "cannot be set together with start_time and end_time",
        ));
    }
    let end_time = end.unwrap_or_else(now);
    let start_time = match (start, duration) {
        (Some(start), _) => start,
        (None, Some(duration)) => end_time.saturating_sub(duration),
        (None, None) => {
            return Err(params_error(
                "start_time",
                "is required unless duration is given",
            ));
        }
    };
    Ok(Range {
        start: start_time,
        end: end_time,
        resolution,
    })
}

fn tag_filter(params: &Params) -> Result<TagFilter, Response> {
    let pairs: Vec<(String, String)> = params
        .0
        .iter()
        .filter_map(|(k, v)| {
            k.strip_prefix("tags[")
                .and_then(|rest| rest.strip_suffix(']'))
                .map(|name| (name.to_owned(), v.clone()))
        })
        .collect();
    let search = params.get("tags_search");
    if !pairs.is_empty() && search.is_some() {
        return Err(params_error("tags_search", "cannot be combined with tags"));
    }
    match search {
        Some(expression) => {
            TagFilter::parse_search(expression).map_err(|e| params_error("tags_search", &e))
        }
        None => Ok(TagFilter::from_pairs(&pairs)),
    }
}

/// One series of a read before rendering.
struct ReadSeries {
    tags: TagKey,
    points: Vec<(i64, PointValue)>,
}

fn group(series: Vec<ReadSeries>, group_by: &str, function: &str) -> Vec<ReadSeries> {
    let names: Vec<String> = group_by
        .split(',')
        .map(|n| n.trim().to_ascii_lowercase())
        .filter(|n| !n.is_empty())
        .collect();
    let all = names.iter().any(|n| n == "*");
    let mut groups: BTreeMap<TagKey, BTreeMap<i64, Vec<f64>>> = BTreeMap::new();
    for s in series {
        let key: Option<TagKey> = if all {
            Some(Vec::new())
        } else {
            names
                .iter()
                .map(|n| {
                    s.tags
                        .iter()
                        .find(|(k, _)| k == n)
                        .map(|(k, v)| (k.clone(), v.clone()))
                })
                .collect()
        };
        // Streams without every group_by tag are left out.
        let Some(key) = key else { continue };
        let group = groups.entry(key).or_default();
        for (time, value) in s.points {
            if let PointValue::Value(v) = value {
                group.entry(time).or_default().push(v);
            }
        }
    }
    groups
        .into_iter()
        .map(|(tags, points)| ReadSeries {
            tags,
            points: points
                .into_iter()
                .map(|(time, values)| {
                    let n = values.len() as f64;
                    let v = match function {
                        "sum" => values.iter().sum(),
                        "min" => values.iter().copied().fold(f64::INFINITY, f64::min),
                        "max" => values.iter().copied().fold(f64::NEG_INFINITY, f64::max),
                        _ => values.iter().sum::<f64>() / n,
                    };
                    (time, PointValue::Value(v))
                })
                .collect(),
        })
        .collect()
}

async fn get_measurements(
    Shared(shared): Shared<SharedState>,
    Path(name): Path<String>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Reply {
    let params = Params::parse(raw.as_deref());
    let range = read_range(&params, true)?;
    let filter = tag_filter(&params)?;
    let summary = params.get("summary_function");
    if let Some(f) = summary
        && !matches!(
            f,
            "sum" | "min" | "max" | "count" | "mean" | "derivative" | "stddev" | "all"
        )
    {
        return Err(params_error(
            "summary_function",
            "is not included in the list",
        ));
    }
    let group_by = params.get("group_by").filter(|g| !g.is_empty());
    let group_function = params.get("group_by_function");
    if group_by.is_some() {
        match group_function {
            None => {
                return Err(params_error(
                    "group_by_function",
                    "is required with group_by",
                ));
            }
            Some("sum" | "min" | "max" | "mean") => {}
            Some(_) => {
                return Err(params_error(
                    "group_by_function",
                    "is not included in the list",
                ));
            }
        }
        if summary == Some("all") {
            return Err(params_error(
                "summary_function",
                "all cannot be combined with group_by",
            ));
        }
    }
    let state = lock(&shared);
    let record = state.metric(&name).ok_or_else(not_found)?;
    let function = summary.unwrap_or_else(|| record.default_summary());
    let mut series: Vec<ReadSeries> = if let Some(expression) = &record.composite {
        let expr = composite::parse(expression).map_err(|e| params_error("composite", &e))?;
        let window = Window {
            start: range.start,
            end: range.end,
            resolution: range.resolution,
        };
        composite::evaluate(&expr, &state, window)
            .map_err(|e| params_error("composite", &e))?
            .into_iter()
            .filter(|s| filter.matches(&s.tags))
            .map(|s| ReadSeries {
                tags: s.tags,
                points: s
                    .points
                    .into_iter()
                    .map(|(t, v)| (t, PointValue::Value(v)))
                    .collect(),
            })
            .collect()
    } else {
        record
            .streams
            .iter()
            .filter(|(tags, _)| filter.matches(tags))
            .map(|(tags, samples)| ReadSeries {
                tags: tags.clone(),
                points: summarize(
                    &bucketize(samples, range.start, range.end, range.resolution),
                    function,
                ),
            })
            .filter(|s| !s.points.is_empty())
            .collect()
    };
    if let (Some(group_by), Some(function)) = (group_by, group_function) {
        series = group(series, group_by, function);
    }
    series.sort_by(|a, b| a.tags.cmp(&b.tags));

    // Pages hold at most `page_points` points, cut between two bucket times.
    let mut times: BTreeMap<i64, usize> = BTreeMap::new();
    for s in &series {
        for (t, _) in &s.points {
            *times.entry(*t).or_default() += 1;
        }
    }
    let mut budget = state.page_points.max(1);
    let mut cut: Option<i64> = None;
    let mut first = true;
    for (time, count) in &times {
        if !first && *count > budget {
            cut = Some(*time);
            break;
        }
        budget = budget.saturating_sub(*count);
        first = false;
    }
    let mut links = Vec::new();
    if let Some(next_start) = cut {
        let mut next = Params(
            params
                .0
                .iter()
                .filter(|(k, _)| !matches!(k.as_str(), "start_time" | "end_time" | "duration"))
                .cloned()
                .collect(),
        );
        next.0.push(("start_time".into(), next_start.to_string()));
        next.0.push(("end_time".into(), range.end.to_string()));
        let host = headers
            .get(header::HOST)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("127.0.0.1");
        links.push(json!({
            "rel": "next",
            "href": format!("http://{host}/v1/measurements/{}?{}", percent_encode(&name), next.encode()),
        }));
    }
    let rendered: Vec<Value> = series
        .iter()
        .map(|s| {
            let points: Vec<Value> = s
                .points
                .iter()
                .filter(|(t, _)| cut.is_none_or(|c| *t < c))
                .map(|(t, v)| point_json(*t, v))
                .collect();
            json!({"tags": tags_json(&s.tags), "measurements": points})
        })
        .collect();
    ok(&json!({
        "name": record.name,
        "series": rendered,
        "links": links,
        "resolution": range.resolution,
        "attributes": record.attributes,
    }))
}

fn composite_response(shared: &SharedState, params: &Params, legacy: bool) -> Reply {
    let Some(compose) = params.get("compose") else {
        return Err(params_error("compose", "is not present"));
    };
    if params.get("start_time").is_none() {
        return Err(params_error("start_time", "is not present"));
    }
    let range = read_range(params, true)?;
    let expr = composite::parse(compose).map_err(|e| params_error("compose", &e))?;
    let state = lock(shared);
    let window = Window {
        start: range.start,
        end: range.end,
        resolution: range.resolution,
    };
    let series =
        composite::evaluate(&expr, &state, window).map_err(|e| params_error("compose", &e))?;
    let rendered: Vec<Value> = series
        .iter()
        .map(|s| {
            let metric = s.metric.as_ref().map_or(Value::Null, |m| {
                json!({
                    "name": m.name,
                    "type": m.metric_type,
                    "attributes": m.attributes,
                    "period": m.period,
                })
            });
            let measurements: Vec<Value> = s
                .points
                .iter()
                .map(|(t, v)| json!({"time": t, "value": v}))
                .collect();
            let mut out = json!({
                "tags": tags_json(&s.tags),
                "measurements": measurements,
                "metric": metric,
                "period": range.resolution,
            });
            if legacy {
                let query_tags: Map<String, Value> = s
                    .query_tags
                    .iter()
                    .map(|(k, v)| (k.clone(), json!(v)))
                    .collect();
                out["query"] = json!({
                    "metric": s.metric.as_ref().map(|m| m.name.clone()),
                    "tags": query_tags,
                });
            }
            out
        })
        .collect();
    if legacy {
        ok(&json!({"compose": compose, "resolution": range.resolution, "series": rendered}))
    } else {
        ok(&Value::Array(rendered))
    }
}

async fn composite_query(Shared(shared): Shared<SharedState>, RawQuery(raw): RawQuery) -> Reply {
    let params = Params::parse(raw.as_deref());
    composite_response(&shared, &params, false)
}

// ---------------------------------------------------------------------------------------------
// Annotations

async fn list_annotations(Shared(shared): Shared<SharedState>, RawQuery(raw): RawQuery) -> Reply {
    let params = Params::parse(raw.as_deref());
    let state = lock(&shared);
    let matches = name_filter(&params);
    let items = state
        .annotations
        .values()
        .filter(|s| matches(&s.name))
        .map(|s| json!({"name": s.name, "display_name": s.display_name}))
        .collect();
    paginated("annotations", items, state.annotations.len(), &params)
}

async fn get_stream(
    Shared(shared): Shared<SharedState>,
    Path(name): Path<String>,
    RawQuery(raw): RawQuery,
) -> Reply {
    let params = Params::parse(raw.as_deref());
    let start = params.int("start_time")?;
    let end = params.int("end_time")?;
    let count = params.int("count")?;
    if start.is_none() && count.is_none() {
        return Err(params_error(
            "start_time",
            "is required unless count is given",
        ));
    }
    let sources: Vec<&str> = params
        .0
        .iter()
        .filter(|(k, _)| k == "sources[]" || k == "sources")
        .map(|(_, v)| v.as_str())
        .collect();
    let state = lock(&shared);
    let stream = state
        .annotations
        .get(&name.to_ascii_lowercase())
        .ok_or_else(not_found)?;
    let mut events: Vec<&Event> = stream
        .events
        .values()
        .filter(|e| start.is_none_or(|s| e.start_time >= s))
        .filter(|e| end.is_none_or(|t| e.start_time <= t))
        .filter(|e| {
            sources.is_empty()
                || sources
                    .iter()
                    .any(|p| glob(p, e.source.as_deref().unwrap_or("unassigned")))
        })
        .collect();
    events.sort_by_key(|e| (e.start_time, e.id));
    if let Some(count) = count {
        let keep = usize::try_from(count.max(0)).unwrap_or(0);
        let skip = events.len().saturating_sub(keep);
        events.drain(..skip);
    }
    let mut by_source: Map<String, Value> = Map::new();
    for event in events {
        let source = event.source.clone().unwrap_or_else(|| "unassigned".into());
        if let Value::Array(list) = by_source
            .entry(source)
            .or_insert_with(|| Value::Array(Vec::new()))
        {
            list.push(event.to_json());
        }
    }
    ok(&json!({
        "name": stream.name,
        "display_name": stream.display_name,
        "events": [Value::Object(by_source)],
    }))
}

fn links_of(value: Option<&Value>) -> Result<Vec<Value>, Response> {
    match value {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(links)) => {
            for link in links {
                if link.get("rel").and_then(Value::as_str).is_none()
                    || link.get("href").and_then(Value::as_str).is_none()
                {
                    return Err(nested_params_error("links", "rel", "and href are required"));
                }
            }
            Ok(links.clone())
        }
        Some(_) => Err(params_error("links", "must be a list")),
    }
}

async fn post_event(
    Shared(shared): Shared<SharedState>,
    Path(name): Path<String>,
    body: Bytes,
) -> Reply {
    let body = body_object(&body)?;
    let Some(title) = body
        .get("title")
        .and_then(Value::as_str)
        .filter(|t| !t.trim().is_empty())
    else {
        return Err(params_error("title", "is not present"));
    };
    if !valid_metric_name(&name) {
        return Err(params_error("name", "is invalid"));
    }
    let links = links_of(body.get("links"))?;
    let mut state = lock(&shared);
    let id = state.next_event_id;
    state.next_event_id += 1;
    let event = Event {
        id,
        title: title.to_owned(),
        description: body
            .get("description")
            .and_then(Value::as_str)
            .map(str::to_owned),
        source: body
            .get("source")
            .and_then(Value::as_str)
            .map(str::to_owned),
        start_time: body
            .get("start_time")
            .and_then(Value::as_i64)
            .unwrap_or_else(now),
        end_time: body.get("end_time").and_then(Value::as_i64),
        links,
    };
    let out = event.to_json();
    state
        .annotations
        .entry(name.to_ascii_lowercase())
        .or_insert_with(|| super::state::AnnotationStream {
            name: name.clone(),
            display_name: Some(name.clone()),
            events: BTreeMap::new(),
        })
        .events
        .insert(id, event);
    created(&format!("/v1/annotations/{name}/{id}"), &out)
}

async fn put_stream(
    Shared(shared): Shared<SharedState>,
    Path(name): Path<String>,
    body: Bytes,
) -> Reply {
    let body = body_object(&body)?;
    let mut state = lock(&shared);
    let stream = state
        .annotations
        .get_mut(&name.to_ascii_lowercase())
        .ok_or_else(not_found)?;
    if let Some(display_name) = body.get("display_name") {
        stream.display_name = display_name.as_str().map(str::to_owned);
    }
    no_content()
}

async fn delete_stream(Shared(shared): Shared<SharedState>, Path(name): Path<String>) -> Reply {
    lock(&shared)
        .annotations
        .remove(&name.to_ascii_lowercase())
        .ok_or_else(not_found)?;
    no_content()
}

fn with_event<T>(
    state: &mut State,
    name: &str,
    id: &str,
    f: impl FnOnce(&mut super::state::AnnotationStream, u64) -> Result<T, Response>,
) -> Result<T, Response> {
    let id = parse_id(id)?;
    let stream = state
        .annotations
        .get_mut(&name.to_ascii_lowercase())
        .ok_or_else(not_found)?;
    if !stream.events.contains_key(&id) {
        return Err(not_found());
    }
    f(stream, id)
}

async fn get_event(
    Shared(shared): Shared<SharedState>,
    Path((name, id)): Path<(String, String)>,
) -> Reply {
    let mut state = lock(&shared);
    let event = with_event(&mut state, &name, &id, |s, id| Ok(s.events[&id].to_json()))?;
    ok(&event)
}

async fn put_event(
    Shared(shared): Shared<SharedState>,
    Path((name, id)): Path<(String, String)>,
    body: Bytes,
) -> Reply {
    let body = body_object(&body)?;
    let links = match body.get("links") {
        Some(value) => Some(links_of(Some(value))?),
        None => None,
    };
    let mut state = lock(&shared);
    with_event(&mut state, &name, &id, |stream, id| {
        if let Some(event) = stream.events.get_mut(&id) {
            if let Some(title) = body.get("title").and_then(Value::as_str) {
                title.clone_into(&mut event.title);
            }
            if let Some(description) = body.get("description") {
                event.description = description.as_str().map(str::to_owned);
            }
            if let Some(end) = body.get("end_time") {
                event.end_time = end.as_i64();
            }
            if let Some(links) = links {
                event.links = links;
            }
        }
        Ok(())
    })?;
    no_content()
}

async fn delete_event(
    Shared(shared): Shared<SharedState>,
    Path((name, id)): Path<(String, String)>,
) -> Reply {
    let mut state = lock(&shared);
    with_event(&mut state, &name, &id, |stream, id| {
        stream.events.remove(&id);
        Ok(())
    })?;
    no_content()
}

async fn post_link(
    Shared(shared): Shared<SharedState>,
    Path((name, id)): Path<(String, String)>,
    body: Bytes,
) -> Reply {
    let body = body_object(&body)?;
    let link = Value::Object(body);
    let links = links_of(Some(&Value::Array(vec![link.clone()])))?;
    let rel = link["rel"].as_str().unwrap_or_default().to_owned();
    let mut state = lock(&shared);
    with_event(&mut state, &name, &id, |stream, id| {
        if let Some(event) = stream.events.get_mut(&id) {
            // `rel` is unique per event: a second link with it replaces the first.
            event
                .links
                .retain(|l| l["rel"].as_str() != Some(rel.as_str()));
            event.links.extend(links);
        }
        Ok(())
    })?;
    created(&format!("/v1/annotations/{name}/{id}/links/{rel}"), &link)
}

async fn delete_link(
    Shared(shared): Shared<SharedState>,
    Path((name, id, rel)): Path<(String, String, String)>,
) -> Reply {
    let mut state = lock(&shared);
    with_event(&mut state, &name, &id, |stream, id| {
        let event = stream.events.get_mut(&id).ok_or_else(not_found)?;
        let before = event.links.len();
        event
            .links
            .retain(|l| l["rel"].as_str() != Some(rel.as_str()));
        if event.links.len() == before {
            return Err(not_found());
        }
        Ok(())
    })?;
    no_content()
}

// ---------------------------------------------------------------------------------------------
// Spaces and charts

async fn list_spaces(Shared(shared): Shared<SharedState>, RawQuery(raw): RawQuery) -> Reply {
    let params = Params::parse(raw.as_deref());
    let state = lock(&shared);
    let matches = name_filter(&params);
    let mut spaces: Vec<(&u64, &SpaceRecord)> = state.spaces.iter().collect();
    spaces.sort_by_key(|(_, s)| s.name.to_ascii_lowercase());
    let items = spaces
        .into_iter()
        .filter(|(_, s)| matches(&s.name))
        .map(|(id, s)| json!({"id": id, "name": s.name}))
        .collect();
    paginated("spaces", items, state.spaces.len(), &params)
}

fn space_name(body: &Map<String, Value>) -> Result<String, Response> {
    body.get("name")
        .and_then(Value::as_str)
        .filter(|n| !n.trim().is_empty())
        .map(str::to_owned)
        .ok_or_else(|| params_error("name", "is not present"))
}

async fn create_space(Shared(shared): Shared<SharedState>, body: Bytes) -> Reply {
    let body = body_object(&body)?;
    let name = space_name(&body)?;
    let mut state = lock(&shared);
    let id = state.next_space_id;
    state.next_space_id += 1;
    state.spaces.insert(
        id,
        SpaceRecord {
            name: name.clone(),
            charts: Vec::new(),
        },
    );
    created(
        &format!("/v1/spaces/{id}"),
        &json!({"id": id, "name": name}),
    )
}

async fn get_space(Shared(shared): Shared<SharedState>, Path(id): Path<String>) -> Reply {
    let id = parse_id(&id)?;
    let state = lock(&shared);
    let space = state.spaces.get(&id).ok_or_else(not_found)?;
    let charts: Vec<Value> = space.charts.iter().map(|c| json!({"id": c})).collect();
    ok(&json!({"name": space.name, "id": id, "charts": charts}))
}

async fn put_space(
    Shared(shared): Shared<SharedState>,
    Path(id): Path<String>,
    body: Bytes,
) -> Reply {
    let id = parse_id(&id)?;
    let body = body_object(&body)?;
    let name = space_name(&body)?;
    let mut state = lock(&shared);
    state.spaces.get_mut(&id).ok_or_else(not_found)?.name = name;
    no_content()
}

async fn delete_space(Shared(shared): Shared<SharedState>, Path(id): Path<String>) -> Reply {
    let id = parse_id(&id)?;
    let mut state = lock(&shared);
    let space = state.spaces.remove(&id).ok_or_else(not_found)?;
    for chart in space.charts {
        state.charts.remove(&chart);
    }
    no_content()
}

async fn list_charts(Shared(shared): Shared<SharedState>, Path(id): Path<String>) -> Reply {
    let id = parse_id(&id)?;
    let state = lock(&shared);
    let space = state.spaces.get(&id).ok_or_else(not_found)?;
    let charts: Vec<Value> = space
        .charts
        .iter()
        .filter_map(|c| state.chart_json(*c))
        .collect();
    ok(&Value::Array(charts))
}

/// Checks a chart and gives its streams ids and types.
fn prepare_chart(
    state: &mut State,
    chart: &mut Map<String, Value>,
    create: bool,
) -> Result<(), Response> {
    if create {
        space_name(chart)?;
        chart.entry("type").or_insert_with(|| json!("line"));
    }
    if let Some(kind) = chart.get("type")
        && !matches!(kind.as_str(), Some("line" | "stacked" | "bignumber"))
    {
        return Err(params_error("type", "is not included in the list"));
    }
    let streams = match chart.get_mut("streams") {
        None | Some(Value::Null) => {
            if create {
                chart.insert("streams".into(), json!([]));
            }
            return Ok(());
        }
        Some(Value::Array(streams)) => streams,
        Some(_) => return Err(params_error("streams", "must be a list")),
    };
    for stream in streams.iter_mut() {
        let Value::Object(stream) = stream else {
            return Err(params_error("streams", "must be objects"));
        };
        let metric = stream.get("metric").is_some_and(|m| !m.is_null());
        let composite = stream.get("composite").is_some_and(|c| !c.is_null());
        if metric == composite {
            return Err(nested_params_error(
                "streams",
                "metric",
                "or composite is required (not both)",
            ));
        }
        if composite && let Some(expr) = stream.get("composite").and_then(Value::as_str) {
            composite::parse(expr).map_err(|e| nested_params_error("streams", "composite", &e))?;
        }
        if stream.get("id").and_then(Value::as_u64).is_none() {
            stream.insert("id".into(), json!(state.next_stream_id));
            state.next_stream_id += 1;
        }
        stream.insert(
            "type".into(),
            json!(if composite { "composite" } else { "gauge" }),
        );
    }
    Ok(())
}

async fn create_chart(
    Shared(shared): Shared<SharedState>,
    Path(space): Path<String>,
    body: Bytes,
) -> Reply {
    let space = parse_id(&space)?;
    let mut chart = body_object(&body)?;
    let mut state = lock(&shared);
    if !state.spaces.contains_key(&space) {
        return Err(not_found());
    }
    prepare_chart(&mut state, &mut chart, true)?;
    let id = state.next_chart_id;
    state.next_chart_id += 1;
    chart.insert("id".into(), json!(id));
    chart.entry("thresholds").or_insert(Value::Null);
    let chart = Value::Object(chart);
    state.charts.insert(id, chart.clone());
    if let Some(record) = state.spaces.get_mut(&space) {
        record.charts.push(id);
    }
    created(&format!("/v1/spaces/{space}/charts/{id}"), &chart)
}

fn chart_in_space(state: &State, space: &str, chart: &str) -> Result<(u64, u64), Response> {
    let space = parse_id(space)?;
    let chart = parse_id(chart)?;
    let record = state.spaces.get(&space).ok_or_else(not_found)?;
    if !record.charts.contains(&chart) {
        return Err(not_found());
    }
    Ok((space, chart))
}

async fn get_chart(
    Shared(shared): Shared<SharedState>,
    Path((space, chart)): Path<(String, String)>,
) -> Reply {
    let state = lock(&shared);
    let (_, chart) = chart_in_space(&state, &space, &chart)?;
    ok(&state.chart_json(chart).ok_or_else(not_found)?)
}

async fn put_chart(
    Shared(shared): Shared<SharedState>,
    Path((space, chart)): Path<(String, String)>,
    body: Bytes,
) -> Reply {
    let mut update = body_object(&body)?;
    let mut state = lock(&shared);
    let (_, chart) = chart_in_space(&state, &space, &chart)?;
    prepare_chart(&mut state, &mut update, false)?;
    let Some(Value::Object(stored)) = state.charts.get_mut(&chart) else {
        return Err(not_found());
    };
    // Fields sent replace the stored ones; `streams`, when sent, replaces all streams.
    for (key, value) in update {
        if key != "id" {
            stored.insert(key, value);
        }
    }
    let out = Value::Object(stored.clone());
    ok(&out)
}

async fn delete_chart(
    Shared(shared): Shared<SharedState>,
    Path((space, chart)): Path<(String, String)>,
) -> Reply {
    let mut state = lock(&shared);
    let (space, chart) = chart_in_space(&state, &space, &chart)?;
    state.charts.remove(&chart);
    if let Some(record) = state.spaces.get_mut(&space) {
        record.charts.retain(|c| *c != chart);
    }
    no_content()
}

// ---------------------------------------------------------------------------------------------
// Alerts and services

fn valid_alert_name(name: &str) -> bool {
    !name.is_empty() && name.chars().count() <= 255 && name.chars().all(is_name_char)
}

/// Checks an alert body and fills in what the server sets.
fn prepare_alert(
    state: &mut State,
    body: &Map<String, Value>,
    existing: Option<(u64, &Map<String, Value>)>,
) -> Result<Map<String, Value>, Response> {
    let Some(name) = body.get("name").and_then(Value::as_str) else {
        return Err(params_error("name", "is not present"));
    };
    if !valid_alert_name(name) {
        return Err(params_error("name", "is invalid"));
    }
    let taken = state.alerts.iter().any(|(id, a)| {
        existing.is_none_or(|(own, _)| own != *id)
            && a.get("name")
                .and_then(Value::as_str)
                .is_some_and(|n| n.eq_ignore_ascii_case(name))
    });
    if taken {
        return Err(json_response(
            StatusCode::UNPROCESSABLE_ENTITY,
            &json!({"errors": {"params": {"name": ["has already been taken"]}}}),
        ));
    }
    let mut conditions = Vec::new();
    for condition in body
        .get("conditions")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
    {
        let Value::Object(condition) = condition else {
            return Err(params_error("conditions", "must be objects"));
        };
        let kind = condition
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if !matches!(kind, "above" | "below" | "absent") {
            return Err(nested_params_error(
                "conditions",
                "type",
                "is not included in the list",
            ));
        }
        if condition
            .get("metric_name")
            .and_then(Value::as_str)
            .is_none()
        {
            return Err(nested_params_error(
                "conditions",
                "metric_name",
                "must be set",
            ));
        }
        let duration = condition.get("duration").and_then(Value::as_i64);
        if kind == "absent" && duration.is_none() {
            return Err(nested_params_error("conditions", "duration", "must be set"));
        }
        if kind != "absent" && condition.get("threshold").and_then(Value::as_f64).is_none() {
            return Err(nested_params_error(
                "conditions",
                "threshold",
                "must be set",
            ));
        }
        if let Some(d) = duration
            && d != 0
            && !(60..=3600).contains(&d)
        {
            return Err(nested_params_error(
                "conditions",
                "duration",
                "must be between 60 and 3600",
            ));
        }
        if let Some(f) = condition.get("summary_function").and_then(Value::as_str)
            && !matches!(
                f,
                "min" | "max" | "average" | "sum" | "count" | "derivative"
            )
        {
            return Err(nested_params_error(
                "conditions",
                "summary_function",
                "is not included in the list",
            ));
        }
        let mut condition = condition.clone();
        let id = state.next_condition_id;
        state.next_condition_id += 1;
        condition.insert("id".into(), json!(id));
        if kind != "absent" {
            condition
                .entry("summary_function")
                .or_insert_with(|| json!("average"));
        }
        condition.entry("source").or_insert(Value::Null);
        conditions.push(Value::Object(condition));
    }
    let mut services = Vec::new();
    for service in body
        .get("services")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
    {
        let id = service
            .as_u64()
            .or_else(|| service.as_str().and_then(|s| s.parse().ok()))
            .or_else(|| service.get("id").and_then(Value::as_u64));
        match id {
            Some(id) if state.services.contains_key(&id) => services.push(json!(id)),
            _ => {
                return Err(params_error(
                    "services",
                    &format!("{service} is not a valid service"),
                ));
            }
        }
    }
    let rearm = body
        .get("rearm_seconds")
        .and_then(Value::as_i64)
        .unwrap_or(600);
    if rearm % 60 != 0 {
        return Err(params_error("rearm_seconds", "must be a multiple of 60"));
    }
    let now = now();
    let (id, created_at) = match existing {
        Some((id, stored)) => (id, stored.get("created_at").cloned().unwrap_or(json!(now))),
        None => {
            let id = state.next_alert_id;
            state.next_alert_id += 1;
            (id, json!(now))
        }
    };
    let get_or = |key: &str, default: Value| match body.get(key) {
        Some(Value::Null) | None => default,
        Some(v) => v.clone(),
    };
    let mut alert = Map::new();
    alert.insert("id".into(), json!(id));
    alert.insert("name".into(), json!(name));
    alert.insert("description".into(), get_or("description", Value::Null));
    alert.insert("conditions".into(), Value::Array(conditions));
    alert.insert("services".into(), Value::Array(services));
    alert.insert("attributes".into(), get_or("attributes", json!({})));
    alert.insert("active".into(), get_or("active", json!(true)));
    alert.insert("created_at".into(), created_at);
    alert.insert("updated_at".into(), json!(now));
    alert.insert("version".into(), get_or("version", json!(2)));
    alert.insert("rearm_seconds".into(), json!(rearm));
    alert.insert(
        "rearm_per_signal".into(),
        get_or("rearm_per_signal", json!(false)),
    );
    alert.insert("md".into(), get_or("md", json!(false)));
    Ok(alert)
}

async fn list_alerts(Shared(shared): Shared<SharedState>, RawQuery(raw): RawQuery) -> Reply {
    let params = Params::parse(raw.as_deref());
    let state = lock(&shared);
    let matches = name_filter(&params);
    let version = params.int("version")?;
    let items = state
        .alerts
        .values()
        .filter(|a| matches(a.get("name").and_then(Value::as_str).unwrap_or_default()))
        .filter(|a| version.is_none_or(|v| a.get("version").and_then(Value::as_i64) == Some(v)))
        .map(|a| state.alert_json(a))
        .collect();
    paginated("alerts", items, state.alerts.len(), &params)
}

async fn create_alert(Shared(shared): Shared<SharedState>, body: Bytes) -> Reply {
    let body = body_object(&body)?;
    let mut state = lock(&shared);
    let alert = prepare_alert(&mut state, &body, None)?;
    let id = alert["id"].as_u64().unwrap_or_default();
    let out = state.alert_json(&alert);
    state.alerts.insert(id, alert);
    created(&format!("/v1/alerts/{id}"), &out)
}

async fn get_alert(Shared(shared): Shared<SharedState>, Path(id): Path<String>) -> Reply {
    let id = parse_id(&id)?;
    let state = lock(&shared);
    let alert = state.alerts.get(&id).ok_or_else(not_found)?;
    ok(&state.alert_json(alert))
}

async fn put_alert(
    Shared(shared): Shared<SharedState>,
    Path(id): Path<String>,
    body: Bytes,
) -> Reply {
    let id = parse_id(&id)?;
    let body = body_object(&body)?;
    let mut state = lock(&shared);
    let stored = state.alerts.get(&id).cloned().ok_or_else(not_found)?;
    // A PUT is the whole new state: conditions left out are deleted.
    let alert = prepare_alert(&mut state, &body, Some((id, &stored)))?;
    state.alerts.insert(id, alert);
    no_content()
}

async fn delete_alert(Shared(shared): Shared<SharedState>, Path(id): Path<String>) -> Reply {
    let id = parse_id(&id)?;
    let mut state = lock(&shared);
    state.alerts.remove(&id).ok_or_else(not_found)?;
    state.firing.remove(&id);
    no_content()
}

async fn alert_status(Shared(shared): Shared<SharedState>, Path(id): Path<String>) -> Reply {
    let id = parse_id(&id)?;
    let state = lock(&shared);
    if !state.alerts.contains_key(&id) {
        return Err(not_found());
    }
    let status = if state.firing.contains_key(&id) {
        "triggered"
    } else {
        "ok"
    };
    ok(&json!({"alert": {"id": id}, "status": status}))
}

async fn alerts_status(Shared(shared): Shared<SharedState>) -> Reply {
    let state = lock(&shared);
    let firing: Vec<Value> = state
        .firing
        .iter()
        .map(|(id, at)| json!({"id": id, "triggered_at": at}))
        .collect();
    let cleared: Vec<Value> = state
        .cleared
        .iter()
        .map(|(id, at)| json!({"cleared_at": at, "id": id}))
        .collect();
    ok(&json!({"cleared": cleared, "firing": firing}))
}

async fn add_alert_service(
    Shared(shared): Shared<SharedState>,
    Path(id): Path<String>,
    body: Bytes,
) -> Reply {
    let id = parse_id(&id)?;
    let body = body_object(&body)?;
    let service = body
        .get("service")
        .and_then(|s| {
            s.as_u64()
                .or_else(|| s.as_str().and_then(|s| s.parse().ok()))
        })
        .ok_or_else(|| params_error("service", "is not present"))?;
    let mut state = lock(&shared);
    if !state.services.contains_key(&service) {
        return Err(params_error("service", "is not a valid service"));
    }
    let alert = state.alerts.get_mut(&id).ok_or_else(not_found)?;
    if let Some(Value::Array(services)) = alert.get_mut("services")
        && !services.contains(&json!(service))
    {
        services.push(json!(service));
    }
    Ok((
        StatusCode::CREATED,
        [(header::CONTENT_TYPE, JSON_TYPE)],
        "{}",
    )
        .into_response())
}

async fn remove_alert_service(
    Shared(shared): Shared<SharedState>,
    Path((id, service)): Path<(String, String)>,
) -> Reply {
    let id = parse_id(&id)?;
    let service = parse_id(&service)?;
    let mut state = lock(&shared);
    let alert = state.alerts.get_mut(&id).ok_or_else(not_found)?;
    if let Some(Value::Array(services)) = alert.get_mut("services") {
        let before = services.len();
        services.retain(|s| s.as_u64() != Some(service));
        if services.len() == before {
            return Err(not_found());
        }
    }
    no_content()
}

async fn clear_alert(Shared(shared): Shared<SharedState>, Path(id): Path<String>) -> Reply {
    let id = parse_id(&id)?;
    let mut state = lock(&shared);
    if !state.alerts.contains_key(&id) {
        return Err(not_found());
    }
    if state.firing.remove(&id).is_some() {
        let at = now();
        state.cleared.push((id, at));
    }
    no_content()
}

async fn list_services(Shared(shared): Shared<SharedState>, RawQuery(raw): RawQuery) -> Reply {
    let params = Params::parse(raw.as_deref());
    let state = lock(&shared);
    let mut services: Vec<(&u64, &Map<String, Value>)> = state.services.iter().collect();
    services.sort_by(|a, b| {
        let title = |s: &Map<String, Value>| {
            s.get("title")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_ascii_lowercase()
        };
        title(a.1).cmp(&title(b.1)).then(a.0.cmp(b.0))
    });
    let items = services
        .into_iter()
        .map(|(id, s)| State::service_json(*id, s))
        .collect();
    paginated("services", items, state.services.len(), &params)
}

fn service_body(body: &Map<String, Value>) -> Result<Map<String, Value>, Response> {
    let title = body
        .get("title")
        .and_then(Value::as_str)
        .ok_or_else(|| params_error("title", "is not present"))?;
    let kind = body
        .get("type")
        .and_then(Value::as_str)
        .ok_or_else(|| params_error("type", "is not present"))?;
    let settings = body.get("settings").cloned().unwrap_or_else(|| json!({}));
    let mut service = Map::new();
    service.insert("type".into(), json!(kind));
    service.insert("settings".into(), settings);
    service.insert("title".into(), json!(title));
    Ok(service)
}

async fn create_service(Shared(shared): Shared<SharedState>, body: Bytes) -> Reply {
    let body = body_object(&body)?;
    let service = service_body(&body)?;
    let mut state = lock(&shared);
    let id = state.next_service_id;
    state.next_service_id += 1;
    let out = State::service_json(id, &service);
    state.services.insert(id, service);
    created(&format!("/v1/services/{id}"), &out)
}

async fn get_service(Shared(shared): Shared<SharedState>, Path(id): Path<String>) -> Reply {
    let id = parse_id(&id)?;
    let state = lock(&shared);
    let service = state.services.get(&id).ok_or_else(not_found)?;
    ok(&State::service_json(id, service))
}

async fn put_service(
    Shared(shared): Shared<SharedState>,
    Path(id): Path<String>,
    body: Bytes,
) -> Reply {
    let id = parse_id(&id)?;
    let body = body_object(&body)?;
    let mut state = lock(&shared);
    let service = state.services.get_mut(&id).ok_or_else(not_found)?;
    for key in ["title", "type", "settings"] {
        if let Some(value) = body.get(key) {
            service.insert(key.into(), value.clone());
        }
    }
    no_content()
}

async fn delete_service(Shared(shared): Shared<SharedState>, Path(id): Path<String>) -> Reply {
    let id = parse_id(&id)?;
    let mut state = lock(&shared);
    state.services.remove(&id).ok_or_else(not_found)?;
    // Deleting a service detaches it from every alert.
    for alert in state.alerts.values_mut() {
        if let Some(Value::Array(services)) = alert.get_mut("services") {
            services.retain(|s| s.as_u64() != Some(id));
        }
    }
    no_content()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_parsing() {
        let params = Params::parse(Some(
            "tags%5Bregion%5D=us-*&tags%5Bregion%5D=eu&name=a+b&x=%2A%3D",
        ));
        assert_eq!(params.get("name"), Some("a b"));
        assert_eq!(params.get("x"), Some("*="));
        assert_eq!(
            params.0.iter().filter(|(k, _)| k == "tags[region]").count(),
            2
        );
        let round = Params::parse(Some(&params.encode()));
        assert_eq!(round.0, params.0);
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%zz"), "%zz");
    }

    #[test]
    fn basic_auth() {
        let mut headers = HeaderMap::new();
        // base64("tok123:")
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Basic dG9rMTIzOg=="),
        );
        assert!(authorized(&headers, None));
        assert!(authorized(&headers, Some("tok123")));
        assert!(!authorized(&headers, Some("other")));
        // base64(":")
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Basic Og=="),
        );
        assert!(!authorized(&headers, None));
        assert!(!authorized(&HeaderMap::new(), None));
    }
}
