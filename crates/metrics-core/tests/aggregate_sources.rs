//! Telling sources apart: the source label on a named source's series, failures that say
//! which source, backend and endpoint failed, and the ways to add a source.

use std::sync::Arc;

use async_trait::async_trait;
use metrics_core::{
    Aggregator, Collection, Error, MetricsSource, Query, Result, Series, SeriesKind, render,
};

/// One backend's stand-in: answers a fixed series or fails, and says where it is.
#[derive(Debug)]
struct Server {
    endpoint: &'static str,
    value: Option<f64>,
    labels: Vec<(&'static str, &'static str)>,
}

impl Server {
    fn up(endpoint: &'static str, value: f64) -> Self {
        Self {
            endpoint,
            value: Some(value),
            labels: Vec::new(),
        }
    }

    fn down(endpoint: &'static str) -> Self {
        Self {
            endpoint,
            value: None,
            labels: Vec::new(),
        }
    }

    fn with_label(mut self, name: &'static str, value: &'static str) -> Self {
        self.labels.push((name, value));
        self
    }
}

#[async_trait]
impl MetricsSource for Server {
    fn backend(&self) -> &'static str {
        "outline"
    }

    async fn collect(&self, _query: &Query) -> Result<Vec<Series>> {
        let value = self
            .value
            .ok_or_else(|| Error::api("outline", 503, None, "maintenance"))?;
        let mut series = Series::new("outline_access_key_bytes_transferred", SeriesKind::Gauge)
            .with_label("access_key_id", "0")
            .with_point(chrono::Utc::now(), value);
        for (name, value) in &self.labels {
            series = series.with_label(*name, *value);
        }
        Ok(vec![series])
    }

    fn endpoint(&self) -> Option<String> {
        Some(self.endpoint.to_owned())
    }
}

fn label<'a>(series: &'a Series, name: &str) -> Option<&'a str> {
    series.labels.get(name).map(String::as_str)
}

#[tokio::test]
async fn named_sources_of_one_backend_are_labelled_apart() {
    let collection = Aggregator::default()
        .with_named_source("outline-eu", Server::up("203.0.113.7:8443", 1.0))
        .with_named_source("outline-us", Arc::new(Server::up("198.51.100.2:443", 2.0)))
        .collect(&Query::new())
        .await;
    assert!(collection.failures.is_empty(), "{:?}", collection.failures);
    let sources: Vec<Option<&str>> = collection
        .series
        .iter()
        .map(|s| label(s, "source"))
        .collect();
    assert_eq!(sources, [Some("outline-eu"), Some("outline-us")]);

    let text = render::openmetrics(&collection.series);
    assert!(
        text.contains(
            "outline_access_key_bytes_transferred{access_key_id=\"0\",source=\"outline-eu\"} 1 "
        ),
        "{text}"
    );
    assert!(text.contains("source=\"outline-us\"} 2 "), "{text}");
    let table = render::table(&collection);
    assert!(
        table.contains("access_key_id=0,source=outline-eu"),
        "{table}"
    );
    let json: serde_json::Value = serde_json::from_str(&render::json(&collection)).unwrap();
    assert_eq!(json["series"][1]["labels"]["source"], "outline-us");
}

#[tokio::test]
async fn unnamed_sources_are_not_labelled() {
    let shared: Arc<dyn MetricsSource> = Arc::new(Server::up("192.0.2.1:1", 1.0));
    let collection = Aggregator::new(vec![shared])
        .with_source(Server::up("192.0.2.2:2", 2.0))
        .collect(&Query::new())
        .await;
    assert_eq!(collection.series.len(), 2);
    assert!(
        collection
            .series
            .iter()
            .all(|s| label(s, "source").is_none())
    );
    assert_eq!(
        collection.sources,
        [
            ("outline".to_owned(), Some(1)),
            ("outline".to_owned(), Some(1))
        ]
    );
}

#[tokio::test]
async fn a_series_own_source_label_is_kept_as_exported_source() {
    let collection = Aggregator::default()
        .with_named_source(
            "eu",
            Server::up("192.0.2.1:1", 1.0)
                .with_label("source", "upstream")
                .with_label("exported_source", "older"),
        )
        .collect(&Query::new())
        .await;
    let series = &collection.series[0];
    assert_eq!(label(series, "source"), Some("eu"));
    assert_eq!(label(series, "exported_exported_source"), Some("upstream"));
    assert_eq!(label(series, "exported_source"), Some("older"));
}

#[tokio::test]
async fn the_source_label_can_be_renamed_or_switched_off() {
    let aggregator = Aggregator::default()
        .with_source_label("instance name")
        .with_named_source("eu", Server::up("192.0.2.1:1", 1.0));
    assert_eq!(aggregator.source_label(), Some("instance_name"));
    let collection = aggregator.collect(&Query::new()).await;
    assert_eq!(label(&collection.series[0], "instance_name"), Some("eu"));

    let collection = Aggregator::default()
        .without_source_label()
        .with_named_source("eu", Server::up("192.0.2.1:1", 1.0))
        .collect(&Query::new())
        .await;
    assert_eq!(collection.series[0].labels.len(), 1);
    assert_eq!(collection.sources[0].0, "eu");
}

#[tokio::test]
async fn a_failure_names_source_backend_and_endpoint() {
    let collection = Aggregator::default()
        .with_named_source("outline-eu", Server::up("203.0.113.7:8443", 1.0))
        .with_named_source("outline-us", Server::down("198.51.100.2:443"))
        .collect(&Query::new())
        .await;
    assert_eq!(collection.failures.len(), 1);
    let failure = &collection.failures[0];
    assert_eq!(failure.source, "outline-us");
    assert_eq!(failure.backend, "outline");
    assert_eq!(failure.endpoint.as_deref(), Some("198.51.100.2:443"));
    assert_eq!(failure.error.status(), Some(503));

    let table = render::table(&collection);
    assert!(
        table.contains(
            "FAILED  outline-us (198.51.100.2:443): outline: the server answered HTTP 503: maintenance"
        ),
        "{table}"
    );
    let json = serde_json::to_value(&collection).unwrap();
    assert_eq!(
        json["failures"][0],
        serde_json::json!({
            "source": "outline-us",
            "backend": "outline",
            "endpoint": "198.51.100.2:443",
            "error": {
                "backend": "outline",
                "kind": "api",
                "status": 503,
                "retryable": true,
                "message": "outline: the server answered HTTP 503: maintenance"
            }
        })
    );
    assert_eq!(
        json["sources"],
        serde_json::json!([
            {"source": "outline-eu", "series": 1},
            {"source": "outline-us", "series": null}
        ])
    );
    let rendered: serde_json::Value = serde_json::from_str(&render::json(&collection)).unwrap();
    assert_eq!(rendered, json);
}

/// The forms the documentation shows compile and count their sources.
#[test]
fn every_documented_way_to_add_a_source_compiles() {
    let client = Server::up("192.0.2.1:1", 1.0);
    let shared: Arc<dyn MetricsSource> = Arc::new(Server::up("192.0.2.2:2", 1.0));
    let boxed: Box<dyn MetricsSource> = Box::new(Server::up("192.0.2.3:3", 1.0));
    let aggregator = Aggregator::default()
        .with_source(client)
        .with_source(Arc::new(Server::up("192.0.2.4:4", 1.0)))
        .with_source(Arc::clone(&shared))
        .with_named_source("a", Server::up("192.0.2.5:5", 1.0))
        .with_named_source(String::from("b"), Arc::clone(&shared))
        .with_named_source("c", boxed);
    assert_eq!(aggregator.len(), 6);
    let from_vec = Aggregator::new(vec![
        Arc::new(Server::up("192.0.2.6:6", 1.0)) as Arc<dyn MetricsSource>,
        shared,
    ]);
    assert_eq!(from_vec.len(), 2);
    assert!(Aggregator::default().is_empty());
    assert_eq!(
        Aggregator::default().source_label(),
        Some(Aggregator::DEFAULT_SOURCE_LABEL)
    );
    let _ = Collection::default();
}
