//! Collecting from many sources at once.

use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinSet;

use crate::error::Error;
use crate::model::Series;
use crate::query::Query;
use crate::source::{MetricsSource, MetricsSourceExt};

/// Collects from several [`MetricsSource`]s concurrently.
///
/// Every source runs in its own task with its own timeout; one slow or failing backend never
/// hides the others. Results come back in the order the sources were added, whatever order
/// they finished in.
///
/// ```no_run
/// # async fn run(sources: Vec<std::sync::Arc<dyn metrics_core::MetricsSource>>) {
/// use std::time::Duration;
/// use metrics_core::{Aggregator, Query};
///
/// let aggregator = Aggregator::new(sources).with_timeout(Duration::from_secs(5));
/// let collection = aggregator.collect(&Query::new()).await;
/// for failure in &collection.failures {
///     eprintln!("{}: {}", failure.source, failure.error);
/// }
/// println!("{} series", collection.series.len());
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct Aggregator {
    sources: Vec<NamedSource>,
    timeout: Duration,
}

#[derive(Clone, Debug)]
struct NamedSource {
    name: String,
    source: Arc<dyn MetricsSource>,
}

/// What one [`Aggregator::collect`] run got.
#[derive(Debug, Default)]
#[non_exhaustive]
pub struct Collection {
    /// Every series from every source that answered, grouped by source in the order added.
    pub series: Vec<Series>,
    /// The sources that failed, in the order added.
    pub failures: Vec<SourceFailure>,
    /// Per source, in the order added: its name and how many series it returned (`None` when
    /// it failed).
    pub sources: Vec<(String, Option<usize>)>,
}

/// A source that did not answer.
#[derive(Debug)]
#[non_exhaustive]
pub struct SourceFailure {
    /// The source's name (its backend name unless named otherwise).
    pub source: String,
    /// What went wrong.
    pub error: Error,
}

impl Aggregator {
    /// The default per-source timeout: 10 s.
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

    /// An aggregator over these sources, each named by its backend.
    pub fn new(sources: impl IntoIterator<Item = Arc<dyn MetricsSource>>) -> Self {
        Self {
            sources: sources
                .into_iter()
                .map(|source| NamedSource {
                    name: source.backend().to_owned(),
                    source,
                })
                .collect(),
            timeout: Self::DEFAULT_TIMEOUT,
        }
    }

    /// Adds a source under its own name, to tell apart two sources of one backend.
    #[must_use]
    pub fn with_named_source(
        mut self,
        name: impl Into<String>,
        source: Arc<dyn MetricsSource>,
    ) -> Self {
        self.sources.push(NamedSource {
            name: name.into(),
            source,
        });
        self
    }

    /// Sets the per-source timeout.
    #[must_use]
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// How many sources there are.
    pub fn len(&self) -> usize {
        self.sources.len()
    }

    /// Whether there are no sources.
    pub fn is_empty(&self) -> bool {
        self.sources.is_empty()
    }

    /// Collects from every source at once and waits for all of them (each at most the
    /// timeout). Needs a Tokio runtime.
    pub async fn collect(&self, query: &Query) -> Collection {
        let mut tasks = JoinSet::new();
        let mut index_of_task = std::collections::HashMap::new();
        for (index, named) in self.sources.iter().enumerate() {
            let source = Arc::clone(&named.source);
            let query = query.clone();
            let timeout = self.timeout;
            let handle =
                tasks.spawn(async move { source.collect_with_timeout(&query, timeout).await });
            index_of_task.insert(handle.id(), index);
        }
        let mut results: Vec<Option<crate::Result<Vec<Series>>>> =
            (0..self.sources.len()).map(|_| None).collect();
        while let Some(joined) = tasks.join_next_with_id().await {
            let (id, result) = match joined {
                Ok((id, result)) => (id, result),
                Err(join_error) => {
                    let id = join_error.id();
                    let index = index_of_task[&id];
                    let message = if join_error.is_panic() {
                        panic_message(join_error.into_panic())
                    } else {
                        "the collect task was cancelled".to_owned()
                    };
                    (
                        id,
                        Err(Error::Panicked {
                            backend: self.sources[index].source.backend(),
                            message,
                        }),
                    )
                }
            };
            results[index_of_task[&id]] = Some(result);
        }

        let mut collection = Collection::default();
        for (named, result) in self.sources.iter().zip(results) {
            let result = result.unwrap_or_else(|| {
                Err(Error::Panicked {
                    backend: named.source.backend(),
                    message: "the collect task ended without a result".to_owned(),
                })
            });
            match result {
                Ok(series) => {
                    collection
                        .sources
                        .push((named.name.clone(), Some(series.len())));
                    collection.series.extend(series);
                }
                Err(error) => {
                    collection.sources.push((named.name.clone(), None));
                    collection.failures.push(SourceFailure {
                        source: named.name.clone(),
                        error,
                    });
                }
            }
        }
        collection
    }
}

/// The text of a panic payload, when it is one.
fn panic_message(payload: Box<dyn std::any::Any + Send>) -> String {
    match payload.downcast::<String>() {
        Ok(text) => *text,
        Err(payload) => payload.downcast_ref::<&str>().map_or_else(
            || "a panic without a message".to_owned(),
            |s| (*s).to_owned(),
        ),
    }
}
