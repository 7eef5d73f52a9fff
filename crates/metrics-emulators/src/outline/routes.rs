//! Request routing as restify does it for `shadowbox`: the secret-prefix check, path
//! normalisation, body parsing, 404/405 answers and JSONP.

use std::sync::{Arc, Mutex};

use axum::body::{Body, Bytes};
use axum::extract::State as AxumState;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use super::state::{Failure, State};
use crate::server::lock;

pub(crate) type Shared = Arc<Mutex<State>>;

/// The routes, by their segments after the prefix.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Route {
    Server,
    Name,
    Hostname,
    PortForNewKeys,
    DefaultLimit,
    DeprecatedDefaultLimit,
    Keys,
    Key(String),
    KeyName(String),
    KeyLimit(String),
    Transfer,
    MetricsEnabled,
    ServerMetrics,
}

impl Route {
    fn methods(&self) -> &'static [Method] {
        match self {
            Self::Server | Self::Transfer | Self::ServerMetrics => &[Method::GET],
            Self::Name | Self::Hostname | Self::PortForNewKeys | Self::KeyName(_) => &[Method::PUT],
            Self::DefaultLimit | Self::DeprecatedDefaultLimit | Self::KeyLimit(_) => {
                &[Method::PUT, Method::DELETE]
            }
            Self::Keys => &[Method::GET, Method::POST],
            Self::Key(_) => &[Method::GET, Method::PUT, Method::DELETE],
            Self::MetricsEnabled => &[Method::GET, Method::PUT],
        }
    }

    fn parse(segments: &[String], server_metrics: bool) -> Option<Self> {
        let parts: Vec<&str> = segments.iter().map(String::as_str).collect();
        Some(match parts.as_slice() {
            ["server"] => Self::Server,
            ["name"] => Self::Name,
            ["server", "hostname-for-access-keys"] => Self::Hostname,
            ["server", "port-for-new-access-keys"] => Self::PortForNewKeys,
            ["server", "access-key-data-limit"] => Self::DefaultLimit,
            ["experimental", "access-key-data-limit"] => Self::DeprecatedDefaultLimit,
            ["access-keys"] => Self::Keys,
            ["access-keys", id] => Self::Key((*id).to_owned()),
            ["access-keys", id, "name"] => Self::KeyName((*id).to_owned()),
            ["access-keys", id, "data-limit"] => Self::KeyLimit((*id).to_owned()),
            ["metrics", "transfer"] => Self::Transfer,
            ["metrics", "enabled"] => Self::MetricsEnabled,
            ["experimental", "server", "metrics"] if server_metrics => Self::ServerMetrics,
            _ => return None,
        })
    }
}

/// Every request lands here; routing is done by hand to reproduce restify's answers.
pub(crate) async fn handle(
    AxumState(shared): AxumState<Shared>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path().to_owned();
    let query = parse_query(uri.query().unwrap_or_default());
    let jsonp = query
        .iter()
        .find(|(name, _)| name == "callback" || name == "jsonp")
        .map(|(_, value)| value.clone());
    let response = route(&shared, &method, &path, &query, &headers, &body);
    match jsonp {
        Some(callback) if !callback.is_empty() => wrap_jsonp(response, &callback).await,
        _ => response,
    }
}

fn route(
    shared: &Shared,
    method: &Method,
    path: &str,
    query: &[(String, String)],
    headers: &HeaderMap,
    body: &[u8],
) -> Response {
    let (prefix, server_metrics) = {
        let state = lock(shared);
        (state.prefix.clone(), state.server_metrics_available)
    };
    let not_found = || error_response(&(404, "ResourceNotFound", format!("{path} does not exist")));
    // Collapse `//` and drop a trailing `/`, as restify does.
    let raw_segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let Some((first, rest)) = raw_segments.split_first() else {
        return not_found();
    };
    if !constant_time_eq(first.as_bytes(), prefix.as_bytes()) {
        return not_found();
    }
    let segments: Vec<String> = rest.iter().map(|s| percent_decode(s)).collect();
    let Some(route) = Route::parse(&segments, server_metrics) else {
        return not_found();
    };
    if !route.methods().contains(method) {
        let allow = route
            .methods()
            .iter()
            .map(Method::as_str)
            .collect::<Vec<_>>()
            .join(", ");
        let mut response =
            error_response(&(405, "MethodNotAllowed", format!("{method} is not allowed")));
        if let Ok(value) = HeaderValue::from_str(&allow) {
            response.headers_mut().insert(header::ALLOW, value);
        }
        return response;
    }
    let params = match body_params(headers, body) {
        Ok(params) => params,
        Err(failure) => return error_response(&failure),
    };

    let mut state = lock(shared);
    let result: Result<Reply, Failure> = match (route, method.as_str()) {
        (Route::Server, _) => Ok(Reply::Json(200, state.server_json())),
        (Route::Name, _) => state.rename_server(&params).map(|()| Reply::NoContent),
        (Route::Hostname, _) => state.set_hostname(&params).map(|()| Reply::NoContent),
        (Route::PortForNewKeys, _) => state
            .set_port_for_new_keys(&params)
            .map(|()| Reply::NoContent),
        (Route::DefaultLimit, "PUT") => state.set_default_limit(&params).map(|()| Reply::NoContent),
        (Route::DefaultLimit, _) => {
            state.default_limit = None;
            Ok(Reply::NoContent)
        }
        (Route::DeprecatedDefaultLimit, _) => Ok(Reply::Redirect(format!(
            "/{prefix}/server/access-key-data-limit"
        ))),
        (Route::Keys, "GET") => Ok(Reply::Json(200, state.list_keys())),
        (Route::Keys, _) => state
            .create_key(None, &params)
            .map(|key| Reply::Json(201, key)),
        (Route::Key(id), "GET") => state.get_key(&id).map(|key| Reply::Json(200, key)),
        (Route::Key(id), "PUT") => state
            .create_key(Some(&id), &params)
            .map(|key| Reply::Json(201, key)),
        (Route::Key(id), _) => state.delete_key(&id).map(|()| Reply::NoContent),
        (Route::KeyName(id), _) => state.rename_key(&id, &params).map(|()| Reply::NoContent),
        (Route::KeyLimit(id), "PUT") => {
            state.set_key_limit(&id, &params).map(|()| Reply::NoContent)
        }
        (Route::KeyLimit(id), _) => state.remove_key_limit(&id).map(|()| Reply::NoContent),
        (Route::Transfer, _) => state.transfer_json().map(Reply::RawJson),
        (Route::MetricsEnabled, "GET") => Ok(Reply::Json(
            200,
            json!({ "metricsEnabled": state.metrics_enabled }),
        )),
        (Route::MetricsEnabled, _) => state
            .set_metrics_enabled(&params)
            .map(|()| Reply::NoContent),
        (Route::ServerMetrics, _) => {
            let since = query
                .iter()
                .find(|(name, _)| name == "since")
                .map(|(_, value)| value.as_str());
            state
                .server_metrics_json(since)
                .map(|metrics| Reply::Json(200, metrics))
        }
    };
    drop(state);
    match result {
        Ok(reply) => reply.into_response(),
        Err(failure) => error_response(&failure),
    }
}

enum Reply {
    Json(u16, Value),
    RawJson(Vec<u8>),
    NoContent,
    Redirect(String),
}

impl IntoResponse for Reply {
    fn into_response(self) -> Response {
        match self {
            Self::Json(status, value) => json_response(status, value.to_string().into_bytes()),
            Self::RawJson(body) => json_response(200, body),
            Self::NoContent => with_keep_alive(StatusCode::NO_CONTENT.into_response()),
            Self::Redirect(location) => {
                let mut response = json_response(308, b"null".to_vec());
                if let Ok(value) = HeaderValue::from_str(&location) {
                    response.headers_mut().insert(header::LOCATION, value);
                }
                response
            }
        }
    }
}

fn json_response(status: u16, body: Vec<u8>) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    with_keep_alive(
        (
            status,
            [(header::CONTENT_TYPE, "application/json")],
            Body::from(body),
        )
            .into_response(),
    )
}

fn with_keep_alive(mut response: Response) -> Response {
    response
        .headers_mut()
        .insert("keep-alive", HeaderValue::from_static("timeout=5"));
    response
}

pub(crate) fn error_response(failure: &Failure) -> Response {
    let (status, code, message) = failure;
    json_response(
        *status,
        json!({ "code": code, "message": message })
            .to_string()
            .into_bytes(),
    )
}

/// `typeof cb === 'function' && cb(<body>);` with 200, whatever the status was.
async fn wrap_jsonp(response: Response, callback: &str) -> Response {
    if response.status() == StatusCode::NO_CONTENT {
        return response;
    }
    let Ok(body) = axum::body::to_bytes(response.into_body(), usize::MAX).await else {
        return error_response(&super::state::internal());
    };
    let text = format!(
        "typeof {callback} === 'function' && {callback}({});",
        String::from_utf8_lossy(&body)
    );
    with_keep_alive(
        (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/javascript")],
            text,
        )
            .into_response(),
    )
}

/// restify's `bodyParser({mapParams: true})`: JSON and urlencoded fields become params
/// (urlencoded values are strings); other content types are ignored.
fn body_params(headers: &HeaderMap, body: &[u8]) -> Result<Map<String, Value>, Failure> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    match content_type.as_str() {
        "application/json" => match serde_json::from_slice::<Value>(body) {
            Ok(Value::Object(map)) => Ok(map),
            Ok(_) => Ok(Map::new()),
            Err(error) => Err((400, "InvalidContent", invalid_json_message(&error, body))),
        },
        "application/x-www-form-urlencoded" => Ok(parse_query(&String::from_utf8_lossy(body))
            .into_iter()
            .map(|(name, value)| (name, Value::String(value)))
            .collect()),
        _ => Ok(Map::new()),
    }
}

/// A message in the style of V8's `JSON.parse` errors.
fn invalid_json_message(error: &serde_json::Error, body: &[u8]) -> String {
    if error.is_eof() {
        return "Invalid JSON: Unexpected end of JSON input".to_owned();
    }
    // serde_json reports line and column (1-based); JSON.parse reports a byte position.
    let mut position = 0usize;
    for (index, line) in body.split(|b| *b == b'\n').enumerate() {
        if index + 1 == error.line() {
            position += error.column().saturating_sub(1);
            break;
        }
        position += line.len() + 1;
    }
    if error.to_string().starts_with("key must be a string") {
        format!("Invalid JSON: Expected property name or '}}' in JSON at position {position}")
    } else {
        format!("Invalid JSON: Unexpected token in JSON at position {position}")
    }
}

/// `a=1&b=x+y` → pairs, percent- and `+`-decoded.
fn parse_query(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            (
                percent_decode(&name.replace('+', " ")),
                percent_decode(&value.replace('+', " ")),
            )
        })
        .collect()
}

/// Decodes `%XX` escapes (invalid ones are kept as they are); invalid UTF-8 is replaced.
pub(crate) fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        if bytes[index] == b'%' && index + 2 < bytes.len() {
            let hex = |b: u8| char::from(b).to_digit(16);
            if let (Some(high), Some(low)) = (hex(bytes[index + 1]), hex(bytes[index + 2])) {
                #[allow(clippy::cast_possible_truncation, reason = "two hex digits fit a byte")]
                out.push((high * 16 + low) as u8);
                index += 3;
                continue;
            }
        }
        out.push(bytes[index]);
        index += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The server compares the prefix in constant time; so does the emulator.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode("a%2Fb"), "a/b");
        assert_eq!(percent_decode("a%20b"), "a b");
        assert_eq!(percent_decode("%D0%BA"), "к");
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%zz"), "%zz");
        assert_eq!(percent_decode("%4"), "%4");
        assert_eq!(percent_decode("%41"), "A");
    }

    #[test]
    fn routes() {
        let seg = |s: &str| -> Vec<String> { s.split('/').map(str::to_owned).collect() };
        assert_eq!(
            Route::parse(&seg("access-keys/a b/name"), true),
            Some(Route::KeyName("a b".into()))
        );
        assert_eq!(
            Route::parse(&seg("experimental/server/metrics"), false),
            None
        );
        assert_eq!(Route::parse(&seg("nope"), true), None);
    }
}
