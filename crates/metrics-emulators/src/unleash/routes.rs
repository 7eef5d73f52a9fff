//! The HTTP side: routing, token checks, and the bodies unleash-server 8.2.0 answers with.
//!
//! One fallback handler dispatches by hand because the server checks the token *before* it
//! knows whether a route exists: an admin token on the seed's `/api/client/seen-toggles` gets
//! 403, a backend token gets the 404 `NotFoundError`.
#![allow(
    clippy::result_large_err,
    reason = "helpers return the finished error response; one is built per request at most"
)]

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::body::{Body, Bytes};
use axum::extract::State as AxumState;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, SecondsFormat, TimeDelta, Utc};
use serde::Serialize;
use serde_json::{Value, json};

use super::state::{RateLimitedEndpoint, State, Token, TokenKind, hour_of, parse_date};
use super::validate::{self, Detail};
use crate::server::lock;

pub(crate) type Shared = Arc<Mutex<State>>;

const VERSION: &str = "8.2.0";

fn ts(time: DateTime<Utc>) -> String {
    time.to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn json_response(status: StatusCode, body: &Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json; charset=utf-8")],
        body.to_string(),
    )
        .into_response()
}

fn empty(status: StatusCode) -> Response {
    let mut response = Response::new(Body::empty());
    *response.status_mut() = status;
    response
}

pub(crate) fn random_id() -> String {
    use std::collections::hash_map::RandomState;
    use std::hash::{BuildHasher, Hasher};
    use std::sync::atomic::{AtomicU64, Ordering};
    // RandomState is seeded from the OS per instance; the counter keeps calls distinct.
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut bytes = [0u8; 16];
    for chunk in bytes.chunks_mut(8) {
        let mut hasher = RandomState::new().build_hasher();
        hasher.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
        chunk.copy_from_slice(&hasher.finish().to_be_bytes());
    }
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

fn bad_data(details: &[Detail]) -> Response {
    let details: Vec<Value> = details
        .iter()
        .map(|d| json!({"path": d.path, "message": d.message}))
        .collect();
    json_response(
        StatusCode::BAD_REQUEST,
        &json!({
            "id": random_id(),
            "name": "BadDataError",
            "message": "Request validation failed: your request body or params contain invalid data. Refer to the `details` list for more information.",
            "details": details,
        }),
    )
}

/// Express's body-parser error page: a body that is not JSON gets HTML, not `BadDataError`.
fn not_json(error: &serde_json::Error) -> Response {
    let page = format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>Error</title>\n</head>\n<body>\n<pre>SyntaxError: {error}</pre>\n</body>\n</html>\n"
    );
    (
        StatusCode::BAD_REQUEST,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        page,
    )
        .into_response()
}

fn route_not_found(path: &str) -> Response {
    let message = format!("The path you were looking for ({path}) is not available.");
    json_response(
        StatusCode::NOT_FOUND,
        &json!({"id": random_id(), "name": "NotFoundError", "message": message, "details": [{"message": message}]}),
    )
}

fn app_not_found(app: &str) -> Response {
    let message = format!("Could not find appName={app}");
    json_response(
        StatusCode::NOT_FOUND,
        &json!({"name": "NotFoundError", "message": message, "details": [{"message": message}]}),
    )
}

const CLIENT_401: &str = "This endpoint requires an API token. Please add an authorization header to your request with a valid token";
const WRONG_TYPE_403: &str = "invalid token: expected a different token type for this endpoint";

fn token_of(state: &State, headers: &HeaderMap) -> Result<Option<Token>, ()> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let text = value.to_str().map_err(|_| ())?.trim();
    // 5.11+ strips a `Bearer ` prefix.
    let text = text
        .get(..7)
        .filter(|p| p.eq_ignore_ascii_case("bearer "))
        .map_or(text, |_| text[7..].trim());
    if text.is_empty() {
        return Ok(None);
    }
    state.tokens.get(text).cloned().map(Some).ok_or(())
}

/// `/api/client/*`: backend tokens only.
fn client_auth(state: &State, headers: &HeaderMap) -> Result<Token, Response> {
    match token_of(state, headers) {
        Ok(Some(token)) if token.kind == TokenKind::Backend => Ok(token),
        Ok(Some(_)) => Err(json_response(
            StatusCode::FORBIDDEN,
            &json!({"message": WRONG_TYPE_403}),
        )),
        Ok(None) | Err(()) => Err(json_response(
            StatusCode::UNAUTHORIZED,
            &json!({"message": CLIENT_401}),
        )),
    }
}

/// `/api/admin/*`: admin tokens, personal access tokens and service accounts.
fn admin_auth(state: &State, headers: &HeaderMap) -> Result<(), Response> {
    match token_of(state, headers) {
        Ok(Some(token)) if matches!(token.kind, TokenKind::Admin | TokenKind::Personal) => Ok(()),
        Ok(Some(_)) => Err(json_response(
            StatusCode::FORBIDDEN,
            &json!({
                "id": random_id(),
                "name": "NoAccessError",
                "message": "You don't have the required permissions to perform this action.",
            }),
        )),
        Ok(None) => Err(json_response(
            StatusCode::UNAUTHORIZED,
            &json!({
                "id": random_id(),
                "name": "AuthenticationRequired",
                "message": "You must log in to use Unleash. Your request had no authorization header, so we could not authorize you. Try logging in at /auth/simple/login.",
                "details": [{"message": "You must log in to use Unleash. Your request had no authorization header, so we could not authorize you. Try logging in at /auth/simple/login."}],
                "path": "/auth/simple/login",
                "type": "password",
            }),
        )),
        Err(()) => Err(json_response(
            StatusCode::UNAUTHORIZED,
            &json!({
                "id": random_id(),
                "name": "UnauthorizedError",
                "message": "You must log in to use Unleash.",
                "details": [{"message": "You must log in to use Unleash."}],
            }),
        )),
    }
}

fn rate_limited(
    state: &mut State,
    endpoint: RateLimitedEndpoint,
) -> Result<Option<(u32, u32, u64, u64)>, Response> {
    let Some(limit) = state.rate_limits.get_mut(&endpoint) else {
        return Ok(None);
    };
    let verdict = limit.check(Instant::now());
    if verdict.allowed {
        return Ok(Some((
            verdict.limit,
            verdict.remaining,
            verdict.reset_secs,
            verdict.window_secs,
        )));
    }
    let mut response = (
        StatusCode::TOO_MANY_REQUESTS,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        "Too many requests, please try again later.",
    )
        .into_response();
    let headers = response.headers_mut();
    let policy = format!("{};w={}", verdict.limit, verdict.window_secs);
    for (name, value) in [
        ("ratelimit-policy", policy),
        ("ratelimit-limit", verdict.limit.to_string()),
        ("ratelimit-remaining", "0".to_owned()),
        ("ratelimit-reset", verdict.reset_secs.to_string()),
        ("retry-after", verdict.reset_secs.to_string()),
    ] {
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.insert(name, value);
        }
    }
    Err(response)
}

fn parse_body(body: &Bytes) -> Result<Value, Response> {
    if body.is_empty() {
        return Ok(json!({}));
    }
    serde_json::from_slice(body).map_err(|e| not_json(&e))
}

fn string_field(body: &Value, name: &str) -> Option<String> {
    body.get(name).and_then(Value::as_str).map(str::to_owned)
}

fn count_of(value: Option<&Value>) -> u64 {
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        reason = "validated >= 0"
    )]
    value
        .and_then(|v| v.as_u64().or_else(|| v.as_f64().map(|f| f as u64)))
        .unwrap_or(0)
}

pub(crate) async fn handle(
    AxumState(shared): AxumState<Shared>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path().trim_end_matches('/').to_owned();
    let query: BTreeMap<String, String> = uri
        .query()
        .map(|q| {
            q.split('&')
                .filter_map(|pair| {
                    let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
                    Some((decode(k, true)?, decode(v, true)?))
                })
                .collect()
        })
        .unwrap_or_default();
    let segments: Vec<String> = path
        .split('/')
        .skip(1)
        .map(|s| decode(s, false).unwrap_or_else(|| s.to_owned()))
        .collect();
    let segs: Vec<&str> = segments.iter().map(String::as_str).collect();
    let mut state = lock(&shared);
    let state = &mut *state;
    let now = Utc::now();

    match (method.clone(), segs.as_slice()) {
        (Method::GET, ["health"]) => json_response(StatusCode::OK, &json!({"health": "GOOD"})),
        (_, ["api", "client", rest @ ..]) => {
            let token = match client_auth(state, &headers) {
                Ok(token) => token,
                Err(response) => return response,
            };
            match (method, rest) {
                (Method::POST, ["register"]) => register(state, &token, &body, now),
                (Method::POST, ["metrics"]) => metrics(state, &token, &body, now),
                _ => route_not_found(uri.path()),
            }
        }
        (_, ["api", "admin", rest @ ..]) => {
            if let Err(response) = admin_auth(state, &headers) {
                return response;
            }
            admin(state, &method, rest, &query, &body, uri.path(), now)
        }
        _ => route_not_found(uri.path()),
    }
}

/// Percent-decodes a path segment (`plus_is_space = false`) or a query part (`true`).
fn decode(text: &str, plus_is_space: bool) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b'+' if plus_is_space => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

fn register(state: &mut State, token: &Token, body: &Bytes, now: DateTime<Utc>) -> Response {
    let limits = match rate_limited(state, RateLimitedEndpoint::Register) {
        Ok(limits) => limits.unwrap_or((6000, 5999, 60, 60)),
        Err(response) => return response,
    };
    let body = match parse_body(body) {
        Ok(body) => body,
        Err(response) => return response,
    };
    if let Err(details) = validate::register(&body) {
        return bad_data(&details);
    }
    let app_name = string_field(&body, "appName").unwrap_or_default();
    let instance_id = string_field(&body, "instanceId")
        .filter(|i| !i.is_empty())
        .unwrap_or_else(|| "default".to_owned());
    let strategies: Vec<String> = body["strategies"]
        .as_array()
        .map(|items| {
            items
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    state.touch_app(&app_name, token, Some(strategies), now);
    state.touch_instance(
        &app_name,
        &instance_id,
        token,
        string_field(&body, "sdkVersion"),
        true,
        now,
    );
    state.registrations.push(body);
    let mut response = empty(StatusCode::ACCEPTED);
    let (limit, remaining, reset, window) = limits;
    let headers = response.headers_mut();
    for (name, value) in [
        ("ratelimit-policy", format!("{limit};w={window}")),
        ("ratelimit-limit", limit.to_string()),
        ("ratelimit-remaining", remaining.to_string()),
        ("ratelimit-reset", reset.to_string()),
        ("x-unleash-version", VERSION.to_owned()),
    ] {
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.insert(name, value);
        }
    }
    response
}

fn metrics(state: &mut State, token: &Token, body: &Bytes, now: DateTime<Utc>) -> Response {
    if let Err(response) = rate_limited(state, RateLimitedEndpoint::Metrics) {
        return response;
    }
    if state.metrics_disabled {
        return empty(StatusCode::NO_CONTENT);
    }
    let body = match parse_body(body) {
        Ok(body) => body,
        Err(response) => return response,
    };
    if let Err(details) = validate::metrics(&body) {
        return bad_data(&details);
    }
    let app_name = string_field(&body, "appName").unwrap_or_default();
    let instance_id = string_field(&body, "instanceId")
        .filter(|i| !i.is_empty())
        .unwrap_or_else(|| "default".to_owned());
    state.touch_app(&app_name, token, None, now);
    state.touch_instance(
        &app_name,
        &instance_id,
        token,
        string_field(&body, "sdkVersion"),
        false,
        now,
    );
    if let Some(bucket) = body.get("bucket").filter(|b| b.is_object()) {
        // `bucket.start` is ignored: the whole bucket is booked under the hour of `stop`.
        let stop = parse_date(&bucket["stop"]).unwrap_or(now);
        if let Some(toggles) = bucket["toggles"].as_object() {
            for (feature, counts) in toggles {
                let variants: BTreeMap<String, u64> = counts
                    .get("variants")
                    .and_then(Value::as_object)
                    .map(|v| {
                        v.iter()
                            .map(|(name, count)| (name.clone(), count_of(Some(count))))
                            .collect()
                    })
                    .unwrap_or_default();
                state.book(
                    feature,
                    &app_name,
                    &token.environment,
                    stop,
                    count_of(counts.get("yes")),
                    count_of(counts.get("no")),
                    &variants,
                );
            }
        }
    }
    state.metric_posts.push(body);
    // 8.2.0 removes every header from this answer, the rate-limit ones included.
    empty(StatusCode::ACCEPTED)
}

#[allow(clippy::too_many_lines, reason = "one match arm per admin route")]
fn admin(
    state: &mut State,
    method: &Method,
    rest: &[&str],
    query: &BTreeMap<String, String>,
    body: &Bytes,
    raw_path: &str,
    now: DateTime<Utc>,
) -> Response {
    const GONE: &str = r#"{"lastHour":{},"lastMinute":{},"maturity":"deprecated"}"#;
    match (method.clone(), rest) {
        (Method::GET, ["ui-config"]) => json_response(
            StatusCode::OK,
            &json!({"environment": "Open Source", "version": VERSION, "versionInfo": {"current": {"oss": VERSION, "enterprise": ""}, "latest": {}, "isLatest": true}}),
        ),
        (
            Method::GET,
            ["metrics", "seen-toggles" | "seen-apps" | "feature-toggles"]
            | ["metrics", "feature-toggles", _],
        ) => (
            StatusCode::GONE,
            [(header::CONTENT_TYPE, "application/json; charset=utf-8")],
            GONE,
        )
            .into_response(),
        (Method::GET, ["metrics", "applications"]) => {
            json_response(StatusCode::OK, &applications(state, query))
        }
        (Method::GET, ["metrics", "applications", app]) => match application(state, app) {
            Some(details) => json_response(StatusCode::OK, &details),
            None => app_not_found(app),
        },
        (Method::POST, ["metrics", "applications", app]) => {
            let body = match parse_body(body) {
                Ok(body) => body,
                Err(response) => return response,
            };
            let token = Token::parse(TokenKind::Admin, "default:default.");
            state.touch_app(app, &token, None, now);
            if let Some(record) = state.apps.get_mut(*app) {
                for (field, slot) in [
                    ("description", &mut record.description),
                    ("url", &mut record.url),
                    ("color", &mut record.color),
                    ("icon", &mut record.icon),
                ] {
                    if let Some(value) = string_field(&body, field) {
                        *slot = Some(value);
                    }
                }
                if let Some(strategies) = body.get("strategies").and_then(Value::as_array) {
                    record.strategies = strategies
                        .iter()
                        .filter_map(Value::as_str)
                        .map(str::to_owned)
                        .collect();
                }
            }
            empty(StatusCode::ACCEPTED)
        }
        (Method::DELETE, ["metrics", "applications", app]) => {
            state.apps.remove(*app);
            state.instances.retain(|(a, _), _| a != app);
            empty(StatusCode::OK)
        }
        (Method::GET, ["metrics", "applications", app, "overview"]) => {
            json_response(StatusCode::OK, &overview(state, app))
        }
        (Method::GET, ["metrics", "instances", app, "environment", env]) => {
            let day_ago = now - TimeDelta::hours(24);
            let instances: Vec<Value> = state
                .instances
                .iter()
                .filter(|((a, _), i)| a == app && i.environment == *env && i.last_seen >= day_ago)
                .map(|((_, id), i)| {
                    json!({"instanceId": id, "clientIp": i.client_ip, "sdkVersion": i.sdk_version, "lastSeen": ts(i.last_seen)})
                })
                .collect();
            json_response(StatusCode::OK, &json!({ "instances": instances }))
        }
        (Method::GET, ["metrics", "unknown-flags"]) => {
            let flags: Vec<Value> = state
                .unknown
                .iter()
                .filter(|(name, _)| !state.flags.contains_key(*name))
                .map(|(name, u)| {
                    let reports: Vec<Value> = u
                        .reports
                        .iter()
                        .map(|(app, envs)| {
                            let envs: Vec<Value> = envs
                                .iter()
                                .map(|(env, seen)| json!({"environment": env, "seenAt": ts(*seen)}))
                                .collect();
                            json!({"appName": app, "environments": envs})
                        })
                        .collect();
                    json!({"name": name, "lastSeenAt": ts(u.last_seen_at), "lastEventAt": null, "reports": reports})
                })
                .collect();
            json_response(StatusCode::OK, &json!({ "unknownFlags": flags }))
        }
        (Method::GET, ["client-metrics", "features", name]) => {
            json_response(StatusCode::OK, &feature_metrics(state, name, now))
        }
        (Method::GET, ["client-metrics", "features", name, "raw"]) => {
            // Out of range or not a number silently becomes 24.
            let hours_back = query
                .get("hoursBack")
                .and_then(|h| h.parse::<i64>().ok())
                .filter(|h| (1..=48).contains(h))
                .unwrap_or(24);
            // Serialized from the structs, not a `Value`, to keep the server's key orders.
            match serde_json::to_string(&raw_metrics(state, name, hours_back, now)) {
                Ok(text) => (
                    StatusCode::OK,
                    [(header::CONTENT_TYPE, "application/json; charset=utf-8")],
                    text,
                )
                    .into_response(),
                Err(_) => empty(StatusCode::INTERNAL_SERVER_ERROR),
            }
        }
        (Method::POST, ["projects", project, "features"]) => {
            let body = match parse_body(body) {
                Ok(body) => body,
                Err(response) => return response,
            };
            let Some(name) = string_field(&body, "name").filter(|n| !n.is_empty()) else {
                return bad_data(&[Detail {
                    path: "/body/name".into(),
                    message: "The `/body/name` property is required. It was not present on the data you sent.".into(),
                }]);
            };
            if state.flags.contains_key(&name) {
                return json_response(
                    StatusCode::CONFLICT,
                    &json!({"id": random_id(), "name": "NameExistsError", "message": format!("The feature flag name \"{name}\" is already in use.")}),
                );
            }
            let flag = super::state::Flag {
                project: (*project).to_owned(),
                kind: string_field(&body, "type").unwrap_or_else(|| "release".to_owned()),
                description: string_field(&body, "description"),
                created_at: now,
            };
            let answer = json!({"name": name, "project": flag.project, "type": flag.kind, "description": flag.description, "createdAt": ts(now), "stale": false, "archived": false, "impressionData": false});
            state.flags.insert(name, flag);
            json_response(StatusCode::CREATED, &answer)
        }
        _ => route_not_found(raw_path),
    }
}

fn application_item(name: &str, app: &super::state::App) -> Value {
    let usage: Vec<Value> = app
        .usage
        .iter()
        .map(|(project, envs)| json!({"project": project, "environments": envs}))
        .collect();
    json!({
        "appName": name,
        "createdAt": ts(app.created_at),
        "updatedAt": ts(app.updated_at),
        "description": app.description,
        "strategies": app.strategies,
        "createdBy": "unleash_system_user",
        "url": app.url,
        "color": app.color,
        "icon": app.icon,
        "project": app.project,
        "environment": app.environment,
        "usage": usage,
    })
}

fn applications(state: &State, query: &BTreeMap<String, String>) -> Value {
    let search = query.get("query").map(|q| q.to_lowercase());
    let mut apps: Vec<(&String, &super::state::App)> = state
        .apps
        .iter()
        .filter(|(name, _)| {
            search
                .as_ref()
                .is_none_or(|s| name.to_lowercase().contains(s))
        })
        .collect();
    match query.get("sortBy").map(String::as_str) {
        Some("createdAt") => apps.sort_by_key(|(_, a)| a.created_at),
        Some("updatedAt") => apps.sort_by_key(|(_, a)| a.updated_at),
        _ => apps.sort_by(|a, b| a.0.cmp(b.0)),
    }
    if query.get("sortOrder").map(String::as_str) == Some("desc") {
        apps.reverse();
    }
    let total = apps.len();
    let offset = query
        .get("offset")
        .and_then(|o| o.parse().ok())
        .unwrap_or(0usize);
    // 0 or invalid becomes the default (and maximum) 1000.
    let limit = query
        .get("limit")
        .and_then(|l| l.parse::<usize>().ok())
        .filter(|l| (1..=1000).contains(l))
        .unwrap_or(1000);
    let page: Vec<Value> = apps
        .into_iter()
        .skip(offset)
        .take(limit)
        .map(|(name, app)| application_item(name, app))
        .collect();
    json!({ "applications": page, "total": total })
}

fn strategy_definition(name: &str) -> Value {
    match name {
        "default" => json!({
            "displayName": "Standard", "name": "default", "editable": false,
            "description": "This strategy turns on / off for your entire userbase. Prefer using \"Gradual rollout\" strategy (100%=on, 0%=off).",
            "parameters": [], "deprecated": false, "title": null
        }),
        "flexibleRollout" => json!({
            "displayName": "Gradual rollout", "name": "flexibleRollout", "editable": false,
            "description": "Roll out to a percentage of your userbase, and ensure that the experience is the same for the user on each visit.",
            "parameters": [
                {"name": "rollout", "type": "percentage", "description": "", "required": false},
                {"name": "stickiness", "type": "string", "description": "Used define stickiness. Possible values: default, userId, sessionId, random", "required": true},
                {"name": "groupId", "type": "string", "description": "Used to define a activation groups, which allows you to correlate across feature toggles.", "required": true}
            ],
            "deprecated": false, "title": null
        }),
        "userWithId" => json!({
            "displayName": "UserIDs", "name": "userWithId", "editable": false,
            "description": "Enable the feature for a specific set of userIds. Prefer using \"Gradual rollout\" strategy with user id constraints.",
            "parameters": [{"name": "userIds", "type": "list", "description": "", "required": false}],
            "deprecated": true, "title": null
        }),
        "remoteAddress" => json!({
            "displayName": "IPs", "name": "remoteAddress", "editable": false,
            "description": "Enable the feature for a specific set of IP addresses.",
            "parameters": [{"name": "IPs", "type": "list", "description": "List of IPs to enable the feature toggle for.", "required": true}],
            "deprecated": false, "title": null
        }),
        "applicationHostname" => json!({
            "displayName": "Hosts", "name": "applicationHostname", "editable": false,
            "description": "Enable the feature for a specific set of hostnames.",
            "parameters": [{"name": "hostNames", "type": "list", "description": "List of hostnames to enable the feature toggle for.", "required": false}],
            "deprecated": false, "title": null
        }),
        other => json!({"name": other, "notFound": true}),
    }
}

fn application(state: &State, app_name: &str) -> Option<Value> {
    let app = state.apps.get(app_name)?;
    let instances: Vec<Value> = state
        .instances
        .iter()
        .filter(|((a, _), _)| a == app_name)
        .map(|((a, id), i)| {
            json!({
                "appName": a, "instanceId": id, "sdkVersion": i.sdk_version, "sdkType": i.sdk_type,
                "clientIp": i.client_ip, "lastSeen": ts(i.last_seen), "createdAt": ts(i.created_at),
                "environment": i.environment,
            })
        })
        .collect();
    let seen: Vec<Value> = state
        .seen_flags(app_name)
        .iter()
        .filter_map(|name| {
            let flag = state.flags.get(name)?;
            Some(json!({
                "name": name, "description": flag.description, "type": flag.kind, "project": flag.project,
                "stale": false, "createdAt": ts(flag.created_at), "impressionData": false, "archived": false,
            }))
        })
        .collect();
    let strategies: Vec<Value> = app
        .strategies
        .iter()
        .map(|s| strategy_definition(s))
        .collect();
    Some(json!({
        "appName": app_name,
        "createdAt": ts(app.created_at),
        "description": app.description,
        "url": app.url,
        "color": app.color,
        "icon": app.icon,
        "strategies": strategies,
        "instances": instances,
        "seenToggles": seen,
        "links": {"self": format!("/api/applications/{app_name}")},
    }))
}

fn overview(state: &State, app_name: &str) -> Value {
    if !state.apps.contains_key(app_name) {
        // 8.2.0's answer for an unknown application, featureCount 1 included.
        return json!({"projects": [], "featureCount": 1, "environments": [], "issues": {"missingStrategies": []}});
    }
    let seen = state.seen_flags(app_name);
    let projects: BTreeSet<&str> = seen
        .iter()
        .filter_map(|f| state.flags.get(f).map(|flag| flag.project.as_str()))
        .collect();
    let mut environments: BTreeMap<&str, Vec<&super::state::InstanceRecord>> = BTreeMap::new();
    for ((a, _), instance) in &state.instances {
        if a == app_name {
            environments
                .entry(instance.environment.as_str())
                .or_default()
                .push(instance);
        }
    }
    let environments: Vec<Value> = environments
        .into_iter()
        .map(|(env, instances)| {
            let sdks: BTreeSet<&str> = instances
                .iter()
                .filter_map(|i| i.sdk_version.as_deref())
                .collect();
            let backend: BTreeSet<&str> = instances
                .iter()
                .filter(|i| i.sdk_type.as_deref() == Some("backend"))
                .filter_map(|i| i.sdk_version.as_deref())
                .collect();
            let last_seen = instances.iter().map(|i| i.last_seen).max().map(ts);
            let missing: Vec<&String> = state
                .unknown
                .iter()
                .filter(|(name, u)| {
                    !state.flags.contains_key(*name)
                        && u.reports
                            .get(app_name)
                            .is_some_and(|envs| envs.contains_key(env))
                })
                .map(|(name, _)| name)
                .collect();
            json!({
                "name": env, "instanceCount": instances.len(), "sdks": sdks, "frontendSdks": [],
                "backendSdks": backend, "lastSeen": last_seen,
                "issues": {"missingFeatures": missing, "outdatedSdks": []},
            })
        })
        .collect();
    let app = &state.apps[app_name];
    let missing_strategies: Vec<&String> = app
        .strategies
        .iter()
        .filter(|s| strategy_definition(s).get("notFound").is_some())
        .collect();
    json!({
        "projects": projects,
        "featureCount": seen.len(),
        "environments": environments,
        "issues": {"missingStrategies": missing_strategies},
    })
}

fn feature_metrics(state: &State, name: &str, now: DateTime<Utc>) -> Value {
    let hour_ago = now - TimeDelta::hours(1);
    let mut per_env: BTreeMap<&str, (DateTime<Utc>, u64, u64)> = BTreeMap::new();
    let mut apps = BTreeSet::new();
    for ((feature, app, env, hour), row) in &state.rows {
        if feature != name {
            continue;
        }
        apps.insert(app.as_str());
        if *hour >= hour_of(hour_ago) {
            let entry = per_env.entry(env.as_str()).or_insert((*hour, 0, 0));
            entry.0 = entry.0.max(*hour);
            entry.1 += row.yes;
            entry.2 += row.no;
        }
    }
    let usage: Vec<Value> = per_env
        .into_iter()
        .map(|(env, (hour, yes, no))| json!({"environment": env, "timestamp": ts(hour), "yes": yes, "no": no}))
        .collect();
    json!({
        "version": 1,
        "maturity": "stable",
        "featureName": name,
        "lastHourUsage": usage,
        "seenApplications": apps,
    })
}

/// A raw row with data; field order as the server sends it.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct DataRow<'a> {
    feature_name: &'a str,
    app_name: &'a str,
    environment: &'a str,
    timestamp: String,
    yes: u64,
    no: u64,
    variants: &'a BTreeMap<String, u64>,
}

/// A zero-filled hour: no `variants`, and the server's other key order.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ZeroRow<'a> {
    timestamp: String,
    no: u64,
    yes: u64,
    app_name: &'a str,
    environment: &'a str,
    feature_name: &'a str,
}

#[derive(Serialize)]
#[serde(untagged)]
enum RawRow<'a> {
    Data(DataRow<'a>),
    Zero(ZeroRow<'a>),
}

#[derive(Serialize)]
struct RawAnswer<'a> {
    version: u32,
    maturity: &'static str,
    data: Vec<RawRow<'a>>,
}

fn raw_metrics<'a>(
    state: &'a State,
    name: &'a str,
    hours_back: i64,
    now: DateTime<Utc>,
) -> RawAnswer<'a> {
    let current = hour_of(now);
    let first = current - TimeDelta::hours(hours_back - 1);
    let mut groups: BTreeMap<(&str, &str), BTreeMap<DateTime<Utc>, &super::state::Row>> =
        BTreeMap::new();
    for ((feature, app, env, hour), row) in &state.rows {
        if feature == name && *hour >= first && *hour <= current {
            groups
                .entry((env.as_str(), app.as_str()))
                .or_default()
                .insert(*hour, row);
        }
    }
    let mut data: Vec<(DateTime<Utc>, RawRow<'a>)> = Vec::new();
    for ((env, app), rows) in groups.into_iter().take(100) {
        for step in 0..hours_back {
            let hour = first + TimeDelta::hours(step);
            let row = match rows.get(&hour) {
                Some(row) => RawRow::Data(DataRow {
                    feature_name: name,
                    app_name: app,
                    environment: env,
                    timestamp: ts(hour),
                    yes: row.yes,
                    no: row.no,
                    variants: &row.variants,
                }),
                None => RawRow::Zero(ZeroRow {
                    timestamp: ts(hour),
                    no: 0,
                    yes: 0,
                    app_name: app,
                    environment: env,
                    feature_name: name,
                }),
            };
            data.push((hour, row));
        }
    }
    data.sort_by_key(|(hour, _)| *hour);
    RawAnswer {
        version: 1,
        maturity: "stable",
        data: data.into_iter().map(|(_, row)| row).collect(),
    }
}
