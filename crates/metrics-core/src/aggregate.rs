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
        for (index, named) in self.sources.iter().enumerate() {
            let source = Arc::clone(&named.source);
            let query = query.clone();
            let timeout = self.timeout;
            tasks.spawn(async move { (index, source.collect_with_timeout(&query, timeout).await) });
        }
        let mut results: Vec<Option<crate::Result<Vec<Series>>>> =
            (0..self.sources.len()).map(|_| None).collect();
        while let Some(joined) = tasks.join_next().await {
            // A panicking source is left as `None` and reported below as a failure.
            if let Ok((index, result)) = joined {
                results[index] = Some(result);
            }
        }

        let mut collection = Collection::default();
        for (named, result) in self.sources.iter().zip(results) {
            let result = result.unwrap_or_else(|| {
                Err(Error::Transport {
                    backend: named.source.backend(),
                    message: "the collect task panicked".to_owned(),
                    source: None,
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
