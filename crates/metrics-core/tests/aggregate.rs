//! The aggregator over trait objects: concurrency, per-source timeouts, failures, order.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use metrics_core::{
    Aggregator, Error, MetricsSource, MetricsSourceExt, Query, Result, Series, SeriesKind,
};
use tokio::sync::Barrier;

#[derive(Debug)]
enum Behaviour {
    Answer(f64),
    /// Answers only once every source holding the same barrier has started: proves that the
    /// sources run at the same time without measuring time.
    Rendezvous(Arc<Barrier>, f64),
    Delay(Duration, f64),
    Hang,
    Fail,
    Panic,
}

#[derive(Debug)]
struct Fake {
    backend: &'static str,
    behaviour: Behaviour,
}

fn source(backend: &'static str, behaviour: Behaviour) -> Arc<dyn MetricsSource> {
    Arc::new(Fake { backend, behaviour })
}

#[async_trait]
impl MetricsSource for Fake {
    fn backend(&self) -> &'static str {
        self.backend
    }

    async fn collect(&self, query: &Query) -> Result<Vec<Series>> {
        let value = match &self.behaviour {
            Behaviour::Answer(v) => *v,
            Behaviour::Rendezvous(barrier, v) => {
                barrier.wait().await;
                *v
            }
            Behaviour::Delay(delay, v) => {
                tokio::time::sleep(*delay).await;
                *v
            }
            Behaviour::Hang => std::future::pending().await,
            Behaviour::Fail => return Err(Error::api(self.backend, 503, None, "maintenance")),
            Behaviour::Panic => panic!("source bug"),
        };
        let series = Series::new(format!("{}_value", self.backend), SeriesKind::Gauge)
            .with_point(chrono::Utc::now(), value);
        Ok(if query.matches_name(&series.name) {
            vec![series]
        } else {
            vec![]
        })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sources_are_collected_concurrently() {
    let barrier = Arc::new(Barrier::new(3));
    let aggregator = Aggregator::new([
        source("a", Behaviour::Rendezvous(barrier.clone(), 1.0)),
        source("b", Behaviour::Rendezvous(barrier.clone(), 2.0)),
        source("c", Behaviour::Rendezvous(barrier, 3.0)),
    ])
    .with_timeout(Duration::from_secs(20));
    let collection = aggregator.collect(&Query::new()).await;
    assert!(collection.failures.is_empty(), "{:?}", collection.failures);
    let values: Vec<f64> = collection
        .series
        .iter()
        .filter_map(Series::last_value)
        .collect();
    assert_eq!(values, [1.0, 2.0, 3.0]);
}

#[tokio::test]
async fn order_is_the_order_added_not_of_completion() {
    let aggregator = Aggregator::new([
        source("slow", Behaviour::Delay(Duration::from_millis(200), 1.0)),
        source("fast", Behaviour::Answer(2.0)),
    ]);
    let collection = aggregator.collect(&Query::new()).await;
    let names: Vec<&str> = collection.series.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["slow_value", "fast_value"]);
    assert_eq!(
        collection.sources,
        [("slow".to_owned(), Some(1)), ("fast".to_owned(), Some(1))]
    );
}

#[tokio::test]
async fn one_failure_does_not_hide_the_others() {
    let aggregator = Aggregator::new([
        source("ok1", Behaviour::Answer(1.0)),
        source("down", Behaviour::Fail),
        source("hung", Behaviour::Hang),
        source("buggy", Behaviour::Panic),
        source("ok2", Behaviour::Answer(2.0)),
    ])
    .with_timeout(Duration::from_millis(100));
    let collection = aggregator.collect(&Query::new()).await;
    assert_eq!(collection.series.len(), 2);
    let failed: Vec<(&str, Option<u16>)> = collection
        .failures
        .iter()
        .map(|f| (f.source.as_str(), f.error.status()))
        .collect();
    assert_eq!(
        failed,
        [("down", Some(503)), ("hung", None), ("buggy", None)]
    );
    assert!(matches!(
        collection.failures[1].error,
        Error::Timeout {
            backend: "hung",
            ..
        }
    ));
    assert!(
        collection.failures[2]
            .error
            .to_string()
            .contains("panicked")
    );
}

#[tokio::test]
async fn named_sources_tell_two_of_one_backend_apart() {
    let aggregator = Aggregator::default()
        .with_named_source("eu", source("unleash", Behaviour::Answer(1.0)))
        .with_named_source("us", source("unleash", Behaviour::Fail));
    let collection = aggregator.collect(&Query::new()).await;
    assert_eq!(collection.failures[0].source, "us");
    assert_eq!(collection.failures[0].error.backend(), "unleash");
}

#[tokio::test]
async fn trait_objects_forward_through_arc_and_box() {
    let boxed: Box<dyn MetricsSource> = Box::new(Fake {
        backend: "boxed",
        behaviour: Behaviour::Answer(4.0),
    });
    assert_eq!(boxed.backend(), "boxed");
    let arc: Arc<Box<dyn MetricsSource>> = Arc::new(boxed);
    let series = arc.collect_all().await.unwrap();
    assert_eq!(series[0].last_value(), Some(4.0));
    let filtered = arc
        .collect(&Query::new().with_names(["other_*"]))
        .await
        .unwrap();
    assert!(filtered.is_empty());
    let err = source("hung", Behaviour::Hang)
        .collect_with_timeout(&Query::new(), Duration::from_millis(20))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Timeout { .. }));
}

#[tokio::test]
async fn collect_latest_keeps_the_newest_point() {
    #[derive(Debug)]
    struct Many;
    #[async_trait]
    impl MetricsSource for Many {
        fn backend(&self) -> &'static str {
            "many"
        }
        async fn collect(&self, _query: &Query) -> Result<Vec<Series>> {
            let now = chrono::Utc::now();
            Ok(vec![
                Series::new("m", SeriesKind::Gauge)
                    .with_point(now, 1.0)
                    .with_point(now, 2.0),
            ])
        }
    }
    let latest = Many.collect_latest(&Query::new()).await.unwrap();
    assert_eq!(latest[0].points.len(), 1);
    assert_eq!(latest[0].last_value(), Some(2.0));
}
