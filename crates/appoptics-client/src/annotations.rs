//! Annotation streams and their events.

use chrono::{DateTime, Utc};
use futures_util::Stream;
use metrics_core::http::{Request, encode_path_segment};
use metrics_core::{Error, Result};

use crate::BACKEND;
use crate::client::AppOpticsClient;
use crate::model::{
    AnnotationEvent, AnnotationStream, AnnotationStreamEvents, AnnotationUpdate, Link,
    NewAnnotation, Page,
};
use crate::pagination::{ListParams, paginate};

/// Which events of a stream to read: from a start time, or the last `count`.
///
/// ```
/// use appoptics_client::AnnotationQuery;
/// let query = AnnotationQuery::last(10).with_source("db1.acme");
/// assert_eq!(query.count, Some(10));
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[must_use]
pub struct AnnotationQuery {
    /// Start, seconds since the epoch.
    pub start_time: Option<i64>,
    /// End, seconds since the epoch.
    pub end_time: Option<i64>,
    /// The number of most recent events.
    pub count: Option<u32>,
    /// Only these sources (`*` wildcards).
    pub sources: Vec<String>,
}

impl AnnotationQuery {
    /// Events from `start` on.
    pub fn since(start: DateTime<Utc>) -> Self {
        Self {
            start_time: Some(start.timestamp()),
            ..Self::default()
        }
    }

    /// The last `count` events.
    pub fn last(count: u32) -> Self {
        Self {
            count: Some(count),
            ..Self::default()
        }
    }

    /// Sets the end.
    pub fn with_end_time(mut self, end: DateTime<Utc>) -> Self {
        self.end_time = Some(end.timestamp());
        self
    }

    /// Adds a source filter.
    pub fn with_source(mut self, source: impl Into<String>) -> Self {
        self.sources.push(source.into());
        self
    }

    fn apply(&self, mut request: Request) -> Result<Request> {
        if self.start_time.is_none() && self.count.is_none() {
            return Err(Error::invalid_input(
                BACKEND,
                "reading an annotation stream needs a start time or a count",
            ));
        }
        #[derive(serde::Serialize)]
        struct Query {
            start_time: Option<i64>,
            end_time: Option<i64>,
            count: Option<u32>,
        }
        request = request.with_query_params(
            BACKEND,
            &Query {
                start_time: self.start_time,
                end_time: self.end_time,
                count: self.count,
            },
        )?;
        // Repeated names (`sources[]=a&sources[]=b`) are not something a struct says.
        for source in &self.sources {
            request = request.with_query("sources[]", source);
        }
        Ok(request)
    }
}

fn stream_path(name: &str) -> Result<String> {
    if name.trim().is_empty() {
        return Err(Error::invalid_input(
            BACKEND,
            "the annotation stream name is empty",
        ));
    }
    Ok(format!("annotations/{}", encode_path_segment(name)))
}

impl AppOpticsClient {
    /// One page of annotation streams (`GET /v1/annotations`).
    ///
    /// # Errors
    ///
    /// Any request error.
    pub async fn list_annotation_streams(
        &self,
        params: &ListParams,
    ) -> Result<Page<AnnotationStream>> {
        params.validate()?;
        self.get_json(params.request("annotations", None, None)?)
            .await
    }

    /// Every annotation stream, page after page.
    pub fn list_all_annotation_streams(
        &self,
        params: ListParams,
    ) -> impl Stream<Item = Result<AnnotationStream>> + Send + 'static {
        paginate(self.clone(), "annotations", params)
    }

    /// A stream with its events grouped by source (`GET /v1/annotations/:name`).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidInput`] without a start time or count; [`Error::NotFound`]; any
    /// request error.
    pub async fn get_annotation_stream(
        &self,
        name: &str,
        query: &AnnotationQuery,
    ) -> Result<AnnotationStreamEvents> {
        let request = query.apply(Request::get(stream_path(name)?))?;
        self.get_json(request).await
    }

    /// One event (`GET /v1/annotations/:name/:id`).
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`]; any request error.
    pub async fn get_annotation(&self, name: &str, id: u64) -> Result<AnnotationEvent> {
        self.get_json(Request::get(format!("{}/{id}", stream_path(name)?)))
            .await
    }

    /// Posts an event, creating the stream if needed (`POST /v1/annotations/:name`).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidInput`] for an empty title; any request error.
    pub async fn post_annotation(
        &self,
        name: &str,
        event: &NewAnnotation,
    ) -> Result<AnnotationEvent> {
        if event.title.trim().is_empty() {
            return Err(Error::invalid_input(BACKEND, "an annotation needs a title"));
        }
        let request = Request::post(stream_path(name)?).with_json(BACKEND, event)?;
        self.write_json(request).await?.ok_or_else(|| {
            Error::decode(
                BACKEND,
                "",
                "the server created the annotation but sent no event back",
            )
        })
    }

    /// Sets a stream's display name (`PUT /v1/annotations/:name`).
    ///
    /// # Errors
    ///
    /// Any request error.
    pub async fn update_annotation_stream(&self, name: &str, display_name: &str) -> Result<()> {
        let body = serde_json::json!({ "display_name": display_name });
        self.write(Request::put(stream_path(name)?).with_json(BACKEND, &body)?)
            .await
    }

    /// Changes an event (`PUT /v1/annotations/:name/:id`).
    ///
    /// # Errors
    ///
    /// Any request error.
    pub async fn update_annotation(
        &self,
        name: &str,
        id: u64,
        update: &AnnotationUpdate,
    ) -> Result<()> {
        let request =
            Request::put(format!("{}/{id}", stream_path(name)?)).with_json(BACKEND, update)?;
        self.write(request).await
    }

    /// Adds a link to an event (`POST /v1/annotations/:name/:id/links`); `rel` is unique per
    /// event.
    ///
    /// # Errors
    ///
    /// Any request error.
    pub async fn add_annotation_link(&self, name: &str, id: u64, link: &Link) -> Result<Link> {
        let request =
            Request::post(format!("{}/{id}/links", stream_path(name)?)).with_json(BACKEND, link)?;
        Ok(self
            .write_json(request)
            .await?
            .unwrap_or_else(|| link.clone()))
    }

    /// Deletes a stream and its events.
    ///
    /// # Errors
    ///
    /// Any request error.
    pub async fn delete_annotation_stream(&self, name: &str) -> Result<()> {
        self.write(Request::delete(stream_path(name)?)).await
    }

    /// Deletes an event.
    ///
    /// # Errors
    ///
    /// Any request error.
    pub async fn delete_annotation(&self, name: &str, id: u64) -> Result<()> {
        self.write(Request::delete(format!("{}/{id}", stream_path(name)?)))
            .await
    }

    /// Deletes an event's link.
    ///
    /// # Errors
    ///
    /// Any request error.
    pub async fn delete_annotation_link(&self, name: &str, id: u64, rel: &str) -> Result<()> {
        self.write(Request::delete(format!(
            "{}/{id}/links/{}",
            stream_path(name)?,
            encode_path_segment(rel)
        )))
        .await
    }
}
