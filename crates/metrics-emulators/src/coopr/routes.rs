//! The HTTP side: netty-http's routing answers, `AbstractAuthHandler`, `AdminHandler`'s
//! queue metrics and `MetricHandler`'s node usage.

use axum::Router;
use axum::body::Body;
use axum::extract::State as AxumState;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use serde::Serialize;
use serde::ser::SerializeMap;

use super::usage::{self, JavaException, JavaTimeUnit, Periodicity, UsageFilter};
use super::{ADMIN_USER, QueueCounts, SUPERADMIN_TENANT, Shared, StoreFailure};
use crate::server::lock;

const USER_HEADER: &str = "Coopr-UserID";
const TENANT_HEADER: &str = "Coopr-TenantID";
/// netty-http's `sendString` content type, used by every handler error.
const TEXT_PLAIN: &str = "text/plain; charset=utf-8";

pub(super) fn router(state: Shared) -> Router {
    Router::new()
        .route("/status", any(status))
        .route("/v2/metrics/queues", any(queues))
        .route("/v2/metrics/nodes/usage", any(nodes_usage))
        .fallback(not_found)
        .with_state(state)
}

/// The request URI as netty sees it: path and query.
fn request_uri(uri: &Uri) -> String {
    uri.path_and_query()
        .map_or_else(|| uri.path().to_owned(), |pq| pq.as_str().to_owned())
}

/// A routing answer: no `Content-Type`, and netty-http closes the connection.
fn routing_error(status: StatusCode, body: String) -> Response {
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}

async fn not_found(uri: Uri) -> Response {
    routing_error(
        StatusCode::NOT_FOUND,
        format!(
            "Problem accessing: {}. Reason: Not Found",
            request_uri(&uri)
        ),
    )
}

/// Only GET is routed; anything else on a known path is a 405 whose body is the URI.
fn method_not_allowed(method: &Method, uri: &Uri) -> Option<Response> {
    (method != Method::GET).then(|| routing_error(StatusCode::METHOD_NOT_ALLOWED, request_uri(uri)))
}

fn text(status: StatusCode, message: impl Into<String>) -> Response {
    (status, [(header::CONTENT_TYPE, TEXT_PLAIN)], message.into()).into_response()
}

/// netty-http's answer to an exception thrown by a handler.
fn exception(message: &str) -> Response {
    let mut response = text(
        StatusCode::INTERNAL_SERVER_ERROR,
        format!("Exception Encountered while processing request : {message}"),
    );
    response
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}

fn json<T: Serialize>(value: &T) -> Response {
    match serde_json::to_vec(value) {
        Ok(body) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/json")],
            body,
        )
            .into_response(),
        Err(e) => exception(&e.to_string()),
    }
}

async fn status(method: Method, uri: Uri) -> Response {
    if let Some(response) = method_not_allowed(&method, &uri) {
        return response;
    }
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/plain")],
        "OK\n",
    )
        .into_response()
}

/// Who is asking: the user id and the tenant **id** the header's name resolved to.
struct Account {
    user_id: String,
    tenant_id: String,
}

impl Account {
    fn is_admin(&self) -> bool {
        self.user_id == ADMIN_USER
    }

    fn is_superadmin(&self) -> bool {
        self.is_admin() && self.tenant_id == SUPERADMIN_TENANT
    }
}

fn header_text(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
}

/// `getAndAuthenticateAccount`, then the `Account` constructor's check of the user id.
fn authenticate(state: &Shared, headers: &HeaderMap) -> Result<Account, Box<Response>> {
    let Some(user_id) = header_text(headers, USER_HEADER) else {
        return Err(Box::new(text(
            StatusCode::UNAUTHORIZED,
            format!("{USER_HEADER} not found in request headers."),
        )));
    };
    let Some(tenant_name) = header_text(headers, TENANT_HEADER) else {
        return Err(Box::new(text(
            StatusCode::UNAUTHORIZED,
            format!("{TENANT_HEADER} not found in request headers."),
        )));
    };
    let tenant_id = {
        let state = lock(state);
        if state.failing(StoreFailure::TenantLookup) {
            return Err(Box::new(text(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Error authenticating tenant",
            )));
        }
        match state.tenant_by_name(&tenant_name) {
            Some(tenant) => tenant.id.clone(),
            None => {
                return Err(Box::new(text(
                    StatusCode::NOT_FOUND,
                    "Tenant does not exist.",
                )));
            }
        }
    };
    if user_id.is_empty() {
        return Err(Box::new(exception("Account must have a user id.")));
    }
    Ok(Account { user_id, tenant_id })
}

/// Gson's `QueueMetrics`: field order queued, inProgress, total.
#[derive(Serialize)]
struct QueueMetricsJson {
    queued: u32,
    #[serde(rename = "inProgress")]
    in_progress: u32,
    total: u32,
}

impl From<QueueCounts> for QueueMetricsJson {
    fn from(counts: QueueCounts) -> Self {
        Self {
            queued: counts.queued,
            in_progress: counts.in_progress,
            total: counts.queued.saturating_add(counts.in_progress),
        }
    }
}

/// A JSON object with keys in the given order (the server's is a HashMap's, i.e. any).
struct OrderedObject(Vec<(String, QueueMetricsJson)>);

impl Serialize for OrderedObject {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (key, value) in &self.0 {
            map.serialize_entry(key, value)?;
        }
        map.end()
    }
}

async fn queues(
    AxumState(state): AxumState<Shared>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    if let Some(response) = method_not_allowed(&method, &uri) {
        return response;
    }
    let account = match authenticate(&state, &headers) {
        Ok(account) => account,
        Err(response) => return *response,
    };
    if !account.is_admin() {
        return text(StatusCode::FORBIDDEN, "Forbidden to get queue metrics.");
    }
    let mut state = lock(&state);
    if state.failing(StoreFailure::QueueMetrics) {
        return text(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Internal error getting queue metrics.",
        );
    }
    let entries = if account.is_superadmin() {
        let tenants = state.tenants().to_vec();
        tenants
            .into_iter()
            .map(|t| (t.name, state.queue_snapshot(&t.id).into()))
            .collect()
    } else {
        // Keyed by the header as sent, not by the stored name.
        let name = header_text(&headers, TENANT_HEADER).unwrap_or_default();
        vec![(name, state.queue_snapshot(&account.tenant_id).into())]
    };
    drop(state);
    json(&OrderedObject(entries))
}

/// netty's `QueryStringDecoder`: `&` and `;` separate, `+` is a space, a name without `=`
/// has the empty value.
fn decode_query(raw: &str) -> Vec<(String, String)> {
    raw.split(['&', ';'])
        .filter(|part| !part.is_empty())
        .map(|part| match part.split_once('=') {
            Some((name, value)) => (percent_decode(name), percent_decode(value)),
            None => (percent_decode(part), String::new()),
        })
        .filter(|(name, _)| !name.is_empty())
        .collect()
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3])
                    .ok()
                    .and_then(|h| u8::from_str_radix(h, 16).ok());
                if let Some(byte) = hex {
                    out.push(byte);
                    i += 3;
                    continue;
                }
                out.push(b'%');
            }
            byte => out.push(byte),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The first value of each parameter, by exact name.
struct Params(Vec<(String, String)>);

impl Params {
    fn get(&self, name: &str) -> Option<String> {
        self.0
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
    }
}

async fn nodes_usage(
    AxumState(state): AxumState<Shared>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    if let Some(response) = method_not_allowed(&method, &uri) {
        return response;
    }
    let account = match authenticate(&state, &headers) {
        Ok(account) => account,
        Err(response) => return *response,
    };
    let params = Params(decode_query(uri.query().unwrap_or_default()));

    // Tenant scoping: only the superadmin may choose (or omit) the tenant.
    let mut tenant = params.get("tenant");
    if !account.is_superadmin() {
        match &tenant {
            None => tenant = Some(account.tenant_id.clone()),
            Some(wanted) if *wanted != account.tenant_id => {
                return text(
                    StatusCode::METHOD_NOT_ALLOWED,
                    format!(
                        "Getting information about tenant {wanted} not allowed for tenant {}",
                        account.tenant_id
                    ),
                );
            }
            Some(_) => {}
        }
    }

    let raw_start = params.get("start");
    let raw_end = params.get("end");
    let parse = |raw: &Option<String>| raw.as_deref().map(str::parse::<i64>).transpose();
    let (Ok(start), Ok(end)) = (parse(&raw_start), parse(&raw_end)) else {
        let shown = |raw: Option<String>| raw.unwrap_or_else(|| "null".to_owned());
        return text(
            StatusCode::BAD_REQUEST,
            format!(
                "Incorrect value for start {} or end {} timestamp",
                shown(raw_start),
                shown(raw_end)
            ),
        );
    };

    let periodicity = match params.get("groupby") {
        None => None,
        Some(value) => match Periodicity::value_of(&value) {
            Some(p) => Some(p),
            None => {
                return text(
                    StatusCode::BAD_REQUEST,
                    format!("Incorrect value for field groupby: {value}"),
                );
            }
        },
    };
    let time_unit = match params.get("timeunit") {
        None => None,
        Some(value) => match JavaTimeUnit::value_of_ignore_case(&value) {
            Some(unit) => Some(unit),
            None => {
                return text(
                    StatusCode::BAD_REQUEST,
                    format!("Incorrect value for field timeunit: {value}"),
                );
            }
        },
    };

    let filter = UsageFilter {
        tenant,
        user: params.get("user"),
        cluster: params.get("cluster"),
        cluster_template: params.get("clustertemplate"),
        start,
        end,
        periodicity,
        time_unit,
    };
    let (tasks, now_ms) = {
        let state = lock(&state);
        if state.failing(StoreFailure::Database) {
            return text(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Unable to read data from the database",
            );
        }
        (state.tasks().to_vec(), state.now_ms())
    };
    match usage::nodes_usage(&tasks, &filter, now_ms) {
        Ok(series) => json(&TimeSeriesJson::from(series)),
        Err(JavaException(message)) => exception(&message),
    }
}

#[derive(Serialize)]
struct IntervalJson {
    time: i64,
    value: i64,
}

/// Gson's `TimeSeries`: field order start, end, data.
#[derive(Serialize)]
struct TimeSeriesJson {
    start: i64,
    end: i64,
    data: Vec<IntervalJson>,
}

impl From<usage::TimeSeries> for TimeSeriesJson {
    fn from(series: usage::TimeSeries) -> Self {
        Self {
            start: series.start,
            end: series.end,
            data: series
                .data
                .into_iter()
                .map(|(time, value)| IntervalJson { time, value })
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_decoding_follows_netty() {
        let params = decode_query("start=10&start=20;end=%32%30&user=a+b&groupby&x=%zz");
        assert_eq!(
            params,
            [
                ("start".to_owned(), "10".to_owned()),
                ("start".to_owned(), "20".to_owned()),
                ("end".to_owned(), "20".to_owned()),
                ("user".to_owned(), "a b".to_owned()),
                ("groupby".to_owned(), String::new()),
                ("x".to_owned(), "%zz".to_owned()),
            ]
        );
        assert_eq!(Params(params).get("start").as_deref(), Some("10"));
    }
}
