//! Spaces (dashboards) and their charts.

use futures_util::{Stream, TryStreamExt as _};
use metrics_core::http::Request;
use metrics_core::{Error, Result};

use crate::BACKEND;
use crate::client::AppOpticsClient;
use crate::model::{Chart, ChartType, Page, Space};
use crate::pagination::{ListParams, paginate};

impl AppOpticsClient {
    /// One page of spaces (`GET /v1/spaces`; `name` is a substring search).
    ///
    /// # Errors
    ///
    /// Any request error.
    pub async fn list_spaces(&self, params: &ListParams) -> Result<Page<Space>> {
        params.validate()?;
        self.get_json(params.request("spaces", None, None)?).await
    }

    /// Every space, page after page.
    pub fn list_all_spaces(
        &self,
        params: ListParams,
    ) -> impl Stream<Item = Result<Space>> + Send + 'static {
        paginate(self.clone(), "spaces", params)
    }

    /// Creates a space (`POST /v1/spaces`).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidInput`] for an empty name; any request error.
    pub async fn create_space(&self, name: &str) -> Result<Space> {
        if name.trim().is_empty() {
            return Err(Error::invalid_input(BACKEND, "a space needs a name"));
        }
        let body = serde_json::json!({ "name": name });
        self.write_json(Request::post("spaces").with_json(BACKEND, &body)?)
            .await?
            .ok_or_else(|| {
                Error::decode(
                    BACKEND,
                    "",
                    "the server created the space but sent nothing back",
                )
            })
    }

    /// A space with its chart ids (`GET /v1/spaces/:id`).
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`]; any request error.
    pub async fn get_space(&self, id: u64) -> Result<Space> {
        self.get_json(Request::get(format!("spaces/{id}"))).await
    }

    /// The space whose name equals `name` (ignoring case): the server's substring search
    /// narrows the list, then the exact match is read in full. `None` when there is none.
    ///
    /// # Errors
    ///
    /// Any request error.
    pub async fn find_space(&self, name: &str) -> Result<Option<Space>> {
        let mut spaces = std::pin::pin!(self.list_all_spaces(ListParams::new().with_name(name)));
        while let Some(space) = spaces.try_next().await? {
            if space.name.eq_ignore_ascii_case(name) {
                return self.get_space(space.id).await.map(Some);
            }
        }
        Ok(None)
    }

    /// Renames a space (`PUT /v1/spaces/:id`).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidInput`] for an empty name; any request error.
    pub async fn rename_space(&self, id: u64, name: &str) -> Result<()> {
        if name.trim().is_empty() {
            return Err(Error::invalid_input(BACKEND, "a space needs a name"));
        }
        let body = serde_json::json!({ "name": name });
        self.write(Request::put(format!("spaces/{id}")).with_json(BACKEND, &body)?)
            .await
    }

    /// Deletes a space and its charts.
    ///
    /// # Errors
    ///
    /// Any request error.
    pub async fn delete_space(&self, id: u64) -> Result<()> {
        self.write(Request::delete(format!("spaces/{id}"))).await
    }

    /// The charts of a space (`GET /v1/spaces/:id/charts`, a bare array).
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] for an unknown space; any request error.
    pub async fn list_charts(&self, space_id: u64) -> Result<Vec<Chart>> {
        self.get_json(Request::get(format!("spaces/{space_id}/charts")))
            .await
    }

    /// Creates a chart (`POST /v1/spaces/:id/charts`); type `line` unless set. Streams are
    /// sent whole, tags, colours and functions included.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidInput`] for a chart without a name, or a stream with neither metric
    /// nor composite; any request error.
    pub async fn create_chart(&self, space_id: u64, chart: &Chart) -> Result<Chart> {
        validate_chart(chart)?;
        let mut chart = chart.clone();
        chart.id = None;
        chart.chart_type.get_or_insert(ChartType::Line);
        let request =
            Request::post(format!("spaces/{space_id}/charts")).with_json(BACKEND, &chart)?;
        self.write_json(request).await?.ok_or_else(|| {
            Error::decode(
                BACKEND,
                "",
                "the server created the chart but sent nothing back",
            )
        })
    }

    /// One chart.
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`]; any request error.
    pub async fn get_chart(&self, space_id: u64, chart_id: u64) -> Result<Chart> {
        self.get_json(Request::get(format!("spaces/{space_id}/charts/{chart_id}")))
            .await
    }

    /// The chart of a space whose name equals `name` (ignoring case).
    ///
    /// # Errors
    ///
    /// Any request error.
    pub async fn find_chart(&self, space_id: u64, name: &str) -> Result<Option<Chart>> {
        Ok(self.list_charts(space_id).await?.into_iter().find(|c| {
            c.name
                .as_deref()
                .is_some_and(|n| n.eq_ignore_ascii_case(name))
        }))
    }

    /// Replaces a chart (`PUT /v1/spaces/:id/charts/:chart_id`). The streams sent replace
    /// all of the chart's streams, so send them whole: a [`Chart`] read with
    /// [`get_chart`](Self::get_chart) keeps every stream field, tags and colours included.
    ///
    /// # Errors
    ///
    /// As [`create_chart`](Self::create_chart).
    pub async fn update_chart(&self, space_id: u64, chart_id: u64, chart: &Chart) -> Result<Chart> {
        validate_chart(chart)?;
        let request = Request::put(format!("spaces/{space_id}/charts/{chart_id}"))
            .with_json(BACKEND, chart)?;
        match self.write_json(request).await? {
            Some(chart) => Ok(chart),
            None => self.get_chart(space_id, chart_id).await,
        }
    }

    /// Renames a chart: reads it and writes it back whole with the new name, so its streams
    /// keep their tags and colours (the Python library's save dropped them).
    ///
    /// # Errors
    ///
    /// Any request error.
    pub async fn rename_chart(&self, space_id: u64, chart_id: u64, name: &str) -> Result<Chart> {
        let mut chart = self.get_chart(space_id, chart_id).await?;
        chart.name = Some(name.to_owned());
        self.update_chart(space_id, chart_id, &chart).await
    }

    /// Deletes a chart.
    ///
    /// # Errors
    ///
    /// Any request error.
    pub async fn delete_chart(&self, space_id: u64, chart_id: u64) -> Result<()> {
        self.write(Request::delete(format!(
            "spaces/{space_id}/charts/{chart_id}"
        )))
        .await
    }
}

fn validate_chart(chart: &Chart) -> Result<()> {
    if chart.name.as_deref().is_none_or(|n| n.trim().is_empty()) {
        return Err(Error::invalid_input(BACKEND, "a chart needs a name"));
    }
    for (i, stream) in chart.streams.iter().enumerate() {
        match (&stream.metric, &stream.composite) {
            (None, None) => {
                return Err(Error::invalid_input(
                    BACKEND,
                    format!("chart stream {i} has neither a metric nor a composite expression"),
                ));
            }
            (Some(_), Some(_)) => {
                return Err(Error::invalid_input(
                    BACKEND,
                    format!(
                        "chart stream {i} has both a metric and a composite expression; use one"
                    ),
                ));
            }
            _ => {}
        }
    }
    Ok(())
}
