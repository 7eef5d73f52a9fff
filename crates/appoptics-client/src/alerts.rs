//! Alerts and notification services.

use futures_util::{Stream, TryStreamExt as _};
use metrics_core::http::Request;
use metrics_core::{Error, Result};

use crate::BACKEND;
use crate::client::AppOpticsClient;
use crate::model::{
    Alert, AlertSpec, AlertStatus, AlertsStatus, NewService, Page, Service, ServiceId,
};
use crate::pagination::{ListParams, paginate};

impl AppOpticsClient {
    /// One page of alerts (`GET /v1/alerts`; `name` is a case-insensitive substring).
    ///
    /// # Errors
    ///
    /// Any request error.
    pub async fn list_alerts(&self, params: &ListParams) -> Result<Page<Alert>> {
        params.validate()?;
        self.get_json(params.request("alerts", None, None)?).await
    }

    /// Every alert, page after page.
    pub fn list_all_alerts(
        &self,
        params: ListParams,
    ) -> impl Stream<Item = Result<Alert>> + Send + 'static {
        paginate(self.clone(), "alerts", params)
    }

    /// Creates an alert (`POST /v1/alerts`).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidInput`] for an invalid name, a condition without its threshold or
    /// duration, a duration outside 60..=3600 s or a re-arm delay that is not a multiple of
    /// 60 s; the API's 422 when the name is taken; any request error.
    pub async fn create_alert(&self, spec: &AlertSpec) -> Result<Alert> {
        spec.validate()?;
        let request = Request::post("alerts").with_json(BACKEND, spec)?;
        self.write_json(request).await?.ok_or_else(|| {
            Error::decode(
                BACKEND,
                "",
                "the server created the alert but sent nothing back",
            )
        })
    }

    /// One alert.
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`]; any request error.
    pub async fn get_alert(&self, id: u64) -> Result<Alert> {
        self.get_json(Request::get(format!("alerts/{id}"))).await
    }

    /// The alert named exactly `name` (ignoring case; the library took the first substring
    /// match). `None` when there is none.
    ///
    /// # Errors
    ///
    /// Any request error.
    pub async fn find_alert(&self, name: &str) -> Result<Option<Alert>> {
        let mut alerts = std::pin::pin!(self.list_all_alerts(ListParams::new().with_name(name)));
        while let Some(alert) = alerts.try_next().await? {
            if alert.name.eq_ignore_ascii_case(name) {
                return Ok(Some(alert));
            }
        }
        Ok(None)
    }

    /// Replaces an alert (`PUT /v1/alerts/:id`). The API deletes conditions that are not
    /// sent and unsets absent attributes, so `spec` is the whole new state; build it from
    /// the current alert with `AlertSpec::from(&alert)`.
    ///
    /// # Errors
    ///
    /// As [`create_alert`](Self::create_alert).
    pub async fn update_alert(&self, id: u64, spec: &AlertSpec) -> Result<()> {
        spec.validate()?;
        self.write(Request::put(format!("alerts/{id}")).with_json(BACKEND, spec)?)
            .await
    }

    /// Deletes an alert.
    ///
    /// # Errors
    ///
    /// Any request error.
    pub async fn delete_alert(&self, id: u64) -> Result<()> {
        self.write(Request::delete(format!("alerts/{id}"))).await
    }

    /// Deletes the alert named `name`; `false` when there was none (the library's
    /// `delete_alert(name)`).
    ///
    /// # Errors
    ///
    /// Any request error.
    pub async fn delete_alert_named(&self, name: &str) -> Result<bool> {
        match self.find_alert(name).await? {
            Some(alert) => self.delete_alert(alert.id).await.map(|()| true),
            None => Ok(false),
        }
    }

    /// Whether an alert is firing (`GET /v1/alerts/:id/status`).
    ///
    /// # Errors
    ///
    /// Any request error.
    pub async fn alert_status(&self, id: u64) -> Result<AlertStatus> {
        self.get_json(Request::get(format!("alerts/{id}/status")))
            .await
    }

    /// Firing and recently cleared alerts (`GET /v1/alerts/status`).
    ///
    /// # Errors
    ///
    /// Any request error.
    pub async fn alerts_status(&self) -> Result<AlertsStatus> {
        self.get_json(Request::get("alerts/status")).await
    }

    /// Attaches a service to an alert.
    ///
    /// # Errors
    ///
    /// Any request error.
    pub async fn add_alert_service(
        &self,
        alert_id: u64,
        service: impl Into<ServiceId>,
    ) -> Result<()> {
        let body = serde_json::json!({ "service": service.into().0 });
        self.write(Request::post(format!("alerts/{alert_id}/services")).with_json(BACKEND, &body)?)
            .await
    }

    /// Detaches a service from an alert.
    ///
    /// # Errors
    ///
    /// Any request error.
    pub async fn remove_alert_service(
        &self,
        alert_id: u64,
        service: impl Into<ServiceId>,
    ) -> Result<()> {
        let service = service.into().0;
        self.write(Request::delete(format!(
            "alerts/{alert_id}/services/{service}"
        )))
        .await
    }

    /// Resolves a firing alert (`POST /v1/alerts/:id/clear`).
    ///
    /// # Errors
    ///
    /// Any request error.
    pub async fn clear_alert(&self, id: u64) -> Result<()> {
        self.write(Request::post(format!("alerts/{id}/clear")))
            .await
    }

    /// One page of services (`GET /v1/services`).
    ///
    /// # Errors
    ///
    /// Any request error.
    pub async fn list_services(&self, params: &ListParams) -> Result<Page<Service>> {
        params.validate()?;
        self.get_json(params.request("services", None, None)?).await
    }

    /// Every service, page after page.
    pub fn list_all_services(
        &self,
        params: ListParams,
    ) -> impl Stream<Item = Result<Service>> + Send + 'static {
        paginate(self.clone(), "services", params)
    }

    /// Creates a service (`POST /v1/services`).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidInput`] for an empty title or type; any request error.
    pub async fn create_service(&self, service: &NewService) -> Result<Service> {
        if service.title.trim().is_empty() || service.service_type.trim().is_empty() {
            return Err(Error::invalid_input(
                BACKEND,
                "a service needs a title and a type",
            ));
        }
        self.write_json(Request::post("services").with_json(BACKEND, service)?)
            .await?
            .ok_or_else(|| {
                Error::decode(
                    BACKEND,
                    "",
                    "the server created the service but sent nothing back",
                )
            })
    }

    /// One service.
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`]; any request error.
    pub async fn get_service(&self, id: u64) -> Result<Service> {
        self.get_json(Request::get(format!("services/{id}"))).await
    }

    /// Deletes a service (the server detaches it from alerts).
    ///
    /// # Errors
    ///
    /// Any request error.
    pub async fn delete_service(&self, id: u64) -> Result<()> {
        self.write(Request::delete(format!("services/{id}"))).await
    }
}
