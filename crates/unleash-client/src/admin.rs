//! Read-back with an admin token: applications, flag metrics, unknown flags and the seed's
//! legacy views, at the paths of the configured [`ServerVersion`].
//!
//! Every admin read fails the same ways: [`Error::Config`] without an admin token (or v3
//! login); [`Error::Forbidden`] for a backend or frontend token ([`Diagnosis::NotAnAdminToken`]);
//! [`Error::Unsupported`] before sending when the configured version lacks the endpoint, and
//! with status 410 for a legacy view on 4.4+; [`Error::NotFound`] with
//! [`Diagnosis::NoSuchEndpoint`] naming the request when the server lacks a path its
//! configured version has (it is another version); [`Error::Decode`] for an answer without
//! the list it is made of; transport errors.
//!
//! [`Diagnosis::NotAnAdminToken`]: crate::Diagnosis::NotAnAdminToken
//! [`Diagnosis::NoSuchEndpoint`]: crate::Diagnosis::NoSuchEndpoint

use futures_util::TryStreamExt;
use metrics_core::http::{Request, Response, encode_path_segment};
use metrics_core::paginate::{Page, Paginator};
use metrics_core::reqwest::header;
use metrics_core::{Error, Result, Secret};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::BACKEND;
use crate::client::{UnleashClient, sensitive};
use crate::error::admin_api_error;
use crate::model::{
    AppSeenToggles, Application, ApplicationDetails, ApplicationInstances, ApplicationOverview,
    Applications, FeatureMetrics, FeatureToggleMetrics, FeatureToggleWindow, RawFeatureMetrics,
    UiConfig, UnknownFlags,
};
use crate::versions::{
    Endpoint, ServerVersion, applications_path, legacy_path, server_filters_by_strategy,
};

/// The largest `hoursBack` the raw flag metrics accept (without the experimental
/// `extendedUsageMetrics` flag); larger values are silently replaced by 24.
pub const MAX_HOURS_BACK: u32 = 48;

/// The largest page the applications list serves (5.10+).
pub const MAX_APPLICATIONS_PAGE: u32 = 1000;

/// Sort order of the applications list.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SortOrder {
    /// A to Z (the server's default).
    #[default]
    Asc,
    /// Z to A.
    Desc,
}

/// What [`UnleashClient::applications`] asks for. On 5.10+ the server pages and searches;
/// on older servers, which send the whole list, the client applies the same query itself, so
/// the result has the same meaning on every version.
///
/// ```
/// use unleash_client::{ApplicationsQuery, SortOrder};
///
/// let query = ApplicationsQuery::new().with_search("checkout").with_limit(50).with_sort_order(SortOrder::Desc);
/// assert_eq!(query.limit, Some(50));
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ApplicationsQuery {
    /// Only applications whose name contains this (case-insensitive).
    pub search: Option<String>,
    /// Skip this many.
    pub offset: Option<u64>,
    /// Return at most this many (1 ..= 1000).
    pub limit: Option<u32>,
    /// Sort field (`appName` by default; older servers: only `appName` is applied).
    pub sort_by: Option<String>,
    /// Sort order.
    pub sort_order: Option<SortOrder>,
}

impl ApplicationsQuery {
    /// Everything, the server's first page (up to 1000 on 5.10+).
    pub fn new() -> Self {
        Self::default()
    }

    /// Only names containing `search`.
    #[must_use]
    pub fn with_search(mut self, search: impl Into<String>) -> Self {
        self.search = Some(search.into());
        self
    }

    /// Skips `offset` applications.
    #[must_use]
    pub fn with_offset(mut self, offset: u64) -> Self {
        self.offset = Some(offset);
        self
    }

    /// At most `limit` applications (1 ..= 1000).
    #[must_use]
    pub fn with_limit(mut self, limit: u32) -> Self {
        self.limit = Some(limit);
        self
    }

    /// Sorts by this field.
    #[must_use]
    pub fn with_sort_by(mut self, field: impl Into<String>) -> Self {
        self.sort_by = Some(field.into());
        self
    }

    /// Sorts in this order.
    #[must_use]
    pub fn with_sort_order(mut self, order: SortOrder) -> Self {
        self.sort_order = Some(order);
        self
    }
}

/// The query string of the paged applications list (5.10+).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ApplicationsParams<'a> {
    #[serde(rename = "query", skip_serializing_if = "Option::is_none")]
    search: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    offset: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    limit: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sort_by: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sort_order: Option<SortOrder>,
}

impl<'a> From<&'a ApplicationsQuery> for ApplicationsParams<'a> {
    fn from(query: &'a ApplicationsQuery) -> Self {
        Self {
            search: query.search.as_deref(),
            offset: query.offset,
            limit: query.limit,
            sort_by: query.sort_by.as_deref(),
            sort_order: query.sort_order,
        }
    }
}

/// The query string of the raw flag metrics.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct HoursBack {
    hours_back: u32,
}

impl UnleashClient {
    /// `GET /api/admin/ui-config`: asks the server for its version. Use it with
    /// [`UnleashClientBuilder::with_server_version`](crate::UnleashClientBuilder::with_server_version) when the version is not known.
    ///
    /// # Errors
    ///
    /// As for every admin read; [`Error::Decode`] when the answer has no parseable version.
    pub async fn detect_server_version(&self) -> Result<ServerVersion> {
        let config: UiConfig = self
            .admin_json(Request::get("api/admin/ui-config"), Endpoint::always())
            .await?;
        let text = config.version.unwrap_or_default();
        ServerVersion::parse(&text)
            .ok_or_else(|| Error::decode(BACKEND, "version", format!("`{text}` is not a version")))
    }

    /// `GET /api/admin/metrics/applications`: one page of applications. On 5.10+ the server
    /// searches, sorts and pages; on older servers the client does the same on the full
    /// list, and fills in `total`.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidInput`] for a limit of 0 or over 1000; otherwise as every admin read.
    pub async fn applications(&self, query: &ApplicationsQuery) -> Result<Applications> {
        if let Some(limit) = query.limit
            && (limit == 0 || limit > MAX_APPLICATIONS_PAGE)
        {
            return Err(Error::invalid_input(
                BACKEND,
                format!(
                    "limit must be 1 ..= {MAX_APPLICATIONS_PAGE}, not {limit} (the server \
                     silently replaces other values with 1000)"
                ),
            ));
        }
        let version = self.inner.server_version;
        if version >= ServerVersion::V5_10 {
            let request = Request::get("api/admin/metrics/applications")
                .with_query_params(BACKEND, &ApplicationsParams::from(query))?;
            return self.admin_json(request, Endpoint::always()).await;
        }
        let all = self.application_list(None).await?;
        Ok(page_locally(all, query))
    }

    /// Every application, fetching page after page on 5.10+ (until the server's total, an
    /// empty page, or a server that does not advance, which is an [`Error::Decode`]).
    ///
    /// # Errors
    ///
    /// As every admin read.
    pub async fn all_applications(&self) -> Result<Vec<Application>> {
        if self.inner.server_version < ServerVersion::V5_10 {
            return self.application_list(None).await;
        }
        Paginator::new(BACKEND)
            .with_limit(MAX_APPLICATIONS_PAGE)
            .stream(|offset, limit| async move {
                let page = self
                    .applications(
                        &ApplicationsQuery::new()
                            .with_offset(offset)
                            .with_limit(limit),
                    )
                    .await?;
                // 5.10+ always says the total; an answer without it is a whole list from a
                // server that does not page, and asking again would repeat it.
                Ok(match page.total {
                    Some(total) => Page::new(page.applications).with_total(total),
                    None => Page::last(page.applications),
                })
            })
            .try_collect()
            .await
    }

    /// The seed's `GET /api/client/applications?strategyName=X`: applications that implement
    /// a strategy. The server filters on v2 and 4.0 – 5.9; on v3 (where the parameter makes
    /// the server answer 500) and on 5.10+ (where it is ignored) the client filters.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidInput`] for an empty name; otherwise as every admin read.
    pub async fn applications_by_strategy(&self, strategy: &str) -> Result<Vec<Application>> {
        if strategy.trim().is_empty() {
            return Err(Error::invalid_input(BACKEND, "the strategy name is empty"));
        }
        let list = if server_filters_by_strategy(self.inner.server_version) {
            self.application_list(Some(strategy)).await?
        } else {
            self.all_applications().await?
        };
        Ok(list
            .into_iter()
            .filter(|app| app.strategies.iter().any(|s| s == strategy))
            .collect())
    }

    /// The whole list from a server that does not page (before 5.10).
    async fn application_list(&self, strategy: Option<&str>) -> Result<Vec<Application>> {
        #[derive(Serialize)]
        #[serde(rename_all = "camelCase")]
        struct ByStrategy<'a> {
            #[serde(skip_serializing_if = "Option::is_none")]
            strategy_name: Option<&'a str>,
        }
        let request = Request::get(applications_path(self.inner.server_version))
            .with_query_params(
                BACKEND,
                &ByStrategy {
                    strategy_name: strategy,
                },
            )?;
        let page: Applications = self.admin_json(request, Endpoint::always()).await?;
        Ok(page.applications)
    }

    /// `GET /api/admin/metrics/applications/:appName`: strategies, instances and the flags
    /// the application reported (`seen_toggles`, which replaced the legacy `seen-toggles`).
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] for an unknown application (the only read endpoint that 404s);
    /// [`Error::InvalidInput`] for an empty name; otherwise as every admin read.
    pub async fn application(&self, app_name: &str) -> Result<ApplicationDetails> {
        let app = segment(app_name, "application name")?;
        let path = if self.inner.server_version < ServerVersion::V3_0 {
            format!("api/client/applications/{app}")
        } else {
            format!("api/admin/metrics/applications/{app}")
        };
        self.admin_json(Request::get(path), Endpoint::always())
            .await
    }

    /// `GET /api/admin/metrics/applications/:appName/overview` (5.10+). An unknown
    /// application gives an empty overview, not an error.
    ///
    /// # Errors
    ///
    /// [`Error::Unsupported`] before 5.10; otherwise as every admin read.
    pub async fn application_overview(&self, app_name: &str) -> Result<ApplicationOverview> {
        let app = segment(app_name, "application name")?;
        self.admin_json(
            Request::get(format!("api/admin/metrics/applications/{app}/overview")),
            Endpoint::since(ServerVersion::V5_10),
        )
        .await
    }

    /// `GET /api/admin/metrics/instances/:appName/environment/:env` (5.10+): instances of
    /// the last 24 hours.
    ///
    /// # Errors
    ///
    /// [`Error::Unsupported`] before 5.10; otherwise as every admin read.
    pub async fn application_instances(
        &self,
        app_name: &str,
        environment: &str,
    ) -> Result<ApplicationInstances> {
        let app = segment(app_name, "application name")?;
        let env = segment(environment, "environment")?;
        self.admin_json(
            Request::get(format!(
                "api/admin/metrics/instances/{app}/environment/{env}"
            )),
            Endpoint::since(ServerVersion::V5_10),
        )
        .await
    }

    /// `GET /api/admin/client-metrics/features/:name` (4.2+): the last hour per environment
    /// and the applications that reported the flag (which replaced `seen-apps`). An unknown
    /// flag gives empty lists, not an error.
    ///
    /// # Errors
    ///
    /// [`Error::Unsupported`] before 4.2; otherwise as every admin read.
    pub async fn feature_metrics(&self, feature: &str) -> Result<FeatureMetrics> {
        let name = segment(feature, "flag name")?;
        self.admin_json(
            Request::get(format!("api/admin/client-metrics/features/{name}")),
            Endpoint::since(ServerVersion::V4_2),
        )
        .await
    }

    /// `GET /api/admin/client-metrics/features/:name/raw?hoursBack=N` (4.2+): hourly rows per
    /// environment and application, zero-filled. `hours_back` must be 1 ..= 48: the server
    /// silently turns anything else into 24.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidInput`] for `hours_back` outside 1 ..= 48; [`Error::Unsupported`]
    /// before 4.2; otherwise as every admin read.
    pub async fn feature_metrics_raw(
        &self,
        feature: &str,
        hours_back: u32,
    ) -> Result<RawFeatureMetrics> {
        if !(1..=MAX_HOURS_BACK).contains(&hours_back) {
            return Err(Error::invalid_input(
                BACKEND,
                format!(
                    "hours_back must be 1 ..= {MAX_HOURS_BACK}, not {hours_back} (the server \
                     would silently use 24)"
                ),
            ));
        }
        let name = segment(feature, "flag name")?;
        self.admin_json(
            Request::get(format!("api/admin/client-metrics/features/{name}/raw"))
                .with_query_params(BACKEND, &HoursBack { hours_back })?,
            Endpoint::since(ServerVersion::V4_2),
        )
        .await
    }

    /// `GET /api/admin/metrics/unknown-flags` (7.0+): flags SDKs reported that do not exist.
    ///
    /// # Errors
    ///
    /// [`Error::Unsupported`] before 7.0; otherwise as every admin read.
    pub async fn unknown_flags(&self) -> Result<UnknownFlags> {
        self.admin_json(
            Request::get("api/admin/metrics/unknown-flags"),
            Endpoint::since(ServerVersion::V7_0),
        )
        .await
    }

    /// The seed's `seen-toggles`: per application, the flags it reported. v2 and v3 – 4.3
    /// only.
    ///
    /// # Errors
    ///
    /// [`Error::Unsupported`] (status 410) on 4.4+, naming the replacement:
    /// [`UnleashClient::application`]'s `seen_toggles`.
    pub async fn seen_toggles(&self) -> Result<Vec<AppSeenToggles>> {
        self.legacy(
            "seen-toggles",
            "the `seenToggles` of each application's details (UnleashClient::application, \
             GET /api/admin/metrics/applications/:appName)",
        )
        .await
    }

    /// The seed's `seen-apps`: per flag, the applications that reported it. v2 and
    /// v3 – 4.3 only.
    ///
    /// # Errors
    ///
    /// [`Error::Unsupported`] (status 410) on 4.4+, naming the replacement:
    /// [`UnleashClient::feature_metrics`]' `seen_applications`.
    pub async fn seen_apps(&self) -> Result<std::collections::BTreeMap<String, Vec<Application>>> {
        self.legacy(
            "seen-apps",
            "the `seenApplications` of each flag's metrics (UnleashClient::feature_metrics, \
             GET /api/admin/client-metrics/features/:name)",
        )
        .await
    }

    /// The seed's `metrics/feature-toggles`: last hour and last minute of every flag. v2 and
    /// v3 – 4.3 only.
    ///
    /// # Errors
    ///
    /// [`Error::Unsupported`] (status 410) on 4.4+, naming the replacement:
    /// [`UnleashClient::feature_metrics`] and [`UnleashClient::feature_metrics_raw`] per flag.
    pub async fn feature_toggles(&self) -> Result<FeatureToggleMetrics> {
        self.legacy(
            "feature-toggles",
            "per-flag metrics: UnleashClient::feature_metrics (last hour, GET \
             /api/admin/client-metrics/features/:name) and feature_metrics_raw (per hour and \
             app, …/raw?hoursBack=N)",
        )
        .await
    }

    /// The legacy `metrics/feature-toggles/:name`: last hour and last minute of one flag.
    /// v3 – 4.3 only (the seed has it in code only).
    ///
    /// # Errors
    ///
    /// [`Error::Unsupported`] (status 410) on 4.4+, naming the replacement:
    /// [`UnleashClient::feature_metrics`].
    pub async fn feature_toggle(&self, feature: &str) -> Result<FeatureToggleWindow> {
        let name = segment(feature, "flag name")?;
        self.legacy(
            &format!("feature-toggles/{name}"),
            "UnleashClient::feature_metrics (GET /api/admin/client-metrics/features/:name, \
             last hour) and feature_metrics_raw (…/raw?hoursBack=N, per hour and app)",
        )
        .await
    }

    async fn legacy<T: DeserializeOwned>(
        &self,
        view: &str,
        replacement: &'static str,
    ) -> Result<T> {
        let path = legacy_path(view, self.inner.server_version);
        self.admin_json(Request::get(path), Endpoint::legacy(replacement))
            .await
    }

    /// Sends an admin read and decodes it, mapping version-dependent answers.
    async fn admin_json<T: DeserializeOwned>(
        &self,
        request: Request,
        endpoint: Endpoint,
    ) -> Result<T> {
        let shown = format!("{} /{}", request.method(), request.path());
        let version = self.inner.server_version;
        endpoint.check(&shown, version)?;
        self.admin_send(request)
            .await
            .map_err(|error| admin_api_error(error, endpoint, &shown, version))?
            .json()
    }

    async fn admin_send(&self, request: Request) -> Result<Response> {
        let inner = &self.inner;
        if inner.admin_login.is_some() {
            let cookie = self.login_cookie(false).await?;
            return match inner
                .http
                .send(
                    request
                        .clone()
                        .with_header(header::COOKIE, sensitive(cookie.expose())?),
                )
                .await
            {
                // A v3 session can expire: log in once more.
                Err(Error::Unauthenticated { .. }) => {
                    let cookie = self.login_cookie(true).await?;
                    inner
                        .http
                        .send(request.with_header(header::COOKIE, sensitive(cookie.expose())?))
                        .await
                }
                other => other,
            };
        }
        let token = inner.admin_token.as_ref().ok_or_else(|| {
            Error::config(
                BACKEND,
                "no admin token: reads need UNLEASH_ADMIN_TOKEN (or with_admin_token; \
                 with_admin_login on Unleash v3)",
            )
        })?;
        inner
            .http
            .send(request.with_header(header::AUTHORIZATION, sensitive(token.expose())?))
            .await
    }

    /// The v3 session cookie, logging in when there is none (or `renew`).
    async fn login_cookie(&self, renew: bool) -> Result<Secret<String>> {
        let inner = &self.inner;
        let mut slot = inner.login_cookie.lock().await;
        if let (Some(cookie), false) = (slot.as_ref(), renew) {
            return Ok(cookie.clone());
        }
        let email = inner
            .admin_login
            .as_ref()
            .ok_or_else(|| Error::config(BACKEND, "no admin login configured"))?;
        let body = serde_json::json!({ "email": email.expose() });
        let response = inner
            .http
            .send(
                Request::post("api/admin/login")
                    .with_json(BACKEND, &body)?
                    .with_idempotent(true),
            )
            .await?;
        let cookie = response
            .headers()
            .get_all(header::SET_COOKIE)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .filter_map(|value| value.split(';').next())
            .map(str::trim)
            .filter(|pair| pair.contains('='))
            .collect::<Vec<_>>()
            .join("; ");
        if cookie.is_empty() {
            return Err(Error::api(
                BACKEND,
                401,
                None,
                "POST /api/admin/login answered without a session cookie",
            ));
        }
        let cookie = Secret::new(cookie);
        *slot = Some(cookie.clone());
        Ok(cookie)
    }
}

/// Applies an [`ApplicationsQuery`] to a full list, as 5.10+ servers do.
fn page_locally(mut all: Vec<Application>, query: &ApplicationsQuery) -> Applications {
    if let Some(search) = query.search.as_deref().map(str::to_lowercase) {
        all.retain(|app| app.app_name.to_lowercase().contains(&search));
    }
    all.sort_by(|a, b| a.app_name.cmp(&b.app_name));
    if query.sort_order == Some(SortOrder::Desc) {
        all.reverse();
    }
    let total = all.len() as u64;
    let offset = usize::try_from(query.offset.unwrap_or(0)).unwrap_or(usize::MAX);
    let limit = query.limit.map_or(usize::MAX, |l| l as usize);
    let applications = all.into_iter().skip(offset).take(limit).collect();
    Applications {
        applications,
        total: Some(total),
    }
}

/// A path segment from user input: non-empty and percent-encoded.
fn segment(value: &str, what: &str) -> Result<String> {
    if value.trim().is_empty() {
        return Err(Error::invalid_input(
            BACKEND,
            format!("the {what} is empty"),
        ));
    }
    Ok(encode_path_segment(value))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_paging_matches_server_semantics() {
        let apps: Vec<Application> = ["b-app", "a-app", "c-other", "d-app"]
            .into_iter()
            .map(|name| Application {
                app_name: name.to_owned(),
                ..Application::default()
            })
            .collect();
        let page = page_locally(
            apps,
            &ApplicationsQuery::new()
                .with_search("APP")
                .with_offset(1)
                .with_limit(1)
                .with_sort_order(SortOrder::Desc),
        );
        assert_eq!(page.total, Some(3));
        assert_eq!(page.applications.len(), 1);
        assert_eq!(page.applications[0].app_name, "b-app");
    }

    #[test]
    fn query_strings_come_from_the_query() {
        let query = ApplicationsQuery::new()
            .with_search("a b")
            .with_limit(5)
            .with_sort_order(SortOrder::Desc);
        let request = Request::get("x")
            .with_query_params(BACKEND, &ApplicationsParams::from(&query))
            .unwrap();
        assert_eq!(
            request.query(),
            [
                ("query".to_owned(), "a b".to_owned()),
                ("limit".to_owned(), "5".to_owned()),
                ("sortOrder".to_owned(), "desc".to_owned()),
            ]
        );
    }
}
