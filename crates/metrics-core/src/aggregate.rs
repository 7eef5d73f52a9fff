//! Collecting from many sources at once.

use std::any::Any;
use std::sync::Arc;
use std::time::Duration;

use serde::ser::{SerializeSeq, SerializeStruct};
use serde::{Serialize, Serializer};
use tokio::task::JoinSet;

use crate::error::Error;
use crate::model::{Series, sanitize_name, sanitized};
use crate::query::Query;
use crate::source::{MetricsSource, MetricsSourceExt};

/// Collects from several [`MetricsSource`]s concurrently.
///
/// Every source runs in its own task with its own timeout; one slow or failing backend never
/// hides the others. Results come back in the order the sources were added, whatever order
/// they finished in.
///
/// Add clients as they are, or share them as `Arc<dyn MetricsSource>`:
///
/// ```no_run
/// # async fn run(
/// #     outline_eu: impl metrics_core::MetricsSource,
/// #     outline_us: impl metrics_core::MetricsSource,
/// #     coopr: impl metrics_core::MetricsSource,
/// #     shared: Vec<std::sync::Arc<dyn metrics_core::MetricsSource>>,
/// # ) {
/// use std::time::Duration;
/// use metrics_core::{Aggregator, Query};
///
/// let aggregator = Aggregator::default()
///     .with_source(coopr)                          // named "coopr", its backend
///     .with_named_source("outline-eu", outline_eu) // series labelled source="outline-eu"
///     .with_named_source("outline-us", outline_us)
///     .with_timeout(Duration::from_secs(5));
/// let collection = aggregator.collect(&Query::new()).await;
/// for failure in &collection.failures {
///     eprintln!("{} ({:?}): {}", failure.source, failure.endpoint, failure.error);
/// }
/// println!("{} series", collection.series.len());
///
/// // Trait objects held elsewhere, each named by its backend:
/// let aggregator = Aggregator::new(shared);
/// # }
/// ```
///
/// [`Aggregator::new`] takes any collection of shared sources: `vec![Arc::new(client)]`, a
/// `Vec<Arc<dyn MetricsSource>>`, boxed trait objects, or sources of different types mixed
/// as trait objects (see [`SharedSource`]).
///
/// # Telling sources apart
///
/// Two sources of one backend return the same series (two Outline servers both have
/// `outline_access_key_bytes_transferred{access_key_id="0"}`). A source added with
/// [`with_named_source`](Self::with_named_source) therefore labels every series it returns
/// with its name, under the [source label](Self::with_source_label) (`source` unless set
/// otherwise): `outline_access_key_bytes_transferred{access_key_id="0",source="outline-eu"}`.
/// A value the series already had under that label is kept under `exported_source`
/// (`exported_exported_source` if that is taken too), as Prometheus does with a scraped label
/// that clashes with a target label. Sources added with [`new`](Self::new) or
/// [`with_source`](Self::with_source) are named by their backend and not labelled.
#[derive(Clone, Debug)]
pub struct Aggregator {
    sources: Vec<NamedSource>,
    timeout: Duration,
    source_label: Option<String>,
}

#[derive(Clone, Debug)]
struct NamedSource {
    name: String,
    /// Whether its series get the source label: only when it was given a name.
    labelled: bool,
    source: Arc<dyn MetricsSource>,
}

/// What one [`Aggregator::collect`] run got.
///
/// Serializes to the document [`render::json`](crate::render::json) writes.
#[derive(Clone, Debug, Default, Serialize)]
#[non_exhaustive]
pub struct Collection {
    /// Every series from every source that answered, grouped by source in the order added.
    pub series: Vec<Series>,
    /// Per source, in the order added: its name and how many series it returned (`None` when
    /// it failed). Serialized as `{"source": name, "series": count}` objects.
    #[serde(serialize_with = "serialize_sources")]
    pub sources: Vec<(String, Option<usize>)>,
    /// The sources that failed, in the order added.
    pub failures: Vec<SourceFailure>,
}

/// A source that did not answer.
///
/// Serializes as `{"source", "backend", "endpoint", "error": {"backend", "kind", "status",
/// "retryable", "message"}}`, where `kind` is the [`Error`] variant in snake case
/// (`"timeout"`, `"rate_limited"`) and `message` its `Display` text.
#[derive(Clone, Debug, Serialize)]
#[non_exhaustive]
pub struct SourceFailure {
    /// The source's name (its backend name unless named otherwise).
    pub source: String,
    /// The source's backend (`"outline"`).
    pub backend: &'static str,
    /// The source's [redacted endpoint](MetricsSource::endpoint), `host:port`, when it has one.
    pub endpoint: Option<String>,
    /// What went wrong.
    #[serde(serialize_with = "serialize_error")]
    pub error: Error,
}

impl SourceFailure {
    /// A failure of the source `source`, of the error's backend, with no endpoint.
    pub fn new(source: impl Into<String>, error: Error) -> Self {
        Self {
            source: source.into(),
            backend: error.backend(),
            endpoint: None,
            error,
        }
    }

    /// Sets the endpoint (`host:port`, no path or credential).
    #[must_use]
    pub fn with_endpoint(mut self, endpoint: impl Into<String>) -> Self {
        self.endpoint = Some(endpoint.into());
        self
    }
}

impl Default for Aggregator {
    /// No sources, the [default timeout](Self::DEFAULT_TIMEOUT) and the
    /// [default source label](Self::DEFAULT_SOURCE_LABEL).
    fn default() -> Self {
        Self {
            sources: Vec::new(),
            timeout: Self::DEFAULT_TIMEOUT,
            source_label: Some(Self::DEFAULT_SOURCE_LABEL.to_owned()),
        }
    }
}

impl Aggregator {
    /// The default per-source timeout: 10 s.
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

    /// The default name of the label that tells named sources apart: `source`.
    pub const DEFAULT_SOURCE_LABEL: &'static str = "source";

    /// An aggregator over these sources, each named by its backend (and not labelled).
    ///
    /// The items are anything that converts into a [`SharedSource`]: `Arc<Client>`,
    /// `Arc<dyn MetricsSource>`, `Box<Client>` or `Box<dyn MetricsSource>`. Sources of
    /// different types go into one collection as trait objects.
    ///
    /// ```
    /// # #[derive(Debug)] struct OutlineClient;
    /// # #[metrics_core::async_trait]
    /// # impl metrics_core::MetricsSource for OutlineClient {
    /// #     fn backend(&self) -> &'static str { "outline" }
    /// #     async fn collect(&self, _: &metrics_core::Query) -> metrics_core::Result<Vec<metrics_core::Series>> { Ok(vec![]) }
    /// # }
    /// # let client = OutlineClient;
    /// # let other = OutlineClient;
    /// use std::sync::Arc;
    /// use metrics_core::{Aggregator, MetricsSource};
    ///
    /// let aggregator = Aggregator::new(vec![Arc::new(client)]);
    /// assert_eq!(aggregator.len(), 1);
    ///
    /// let shared: Vec<Arc<dyn MetricsSource>> = vec![Arc::new(other)];
    /// assert_eq!(Aggregator::new(shared).len(), 1);
    /// ```
    ///
    /// An empty literal (`Aggregator::new([])`, `Aggregator::new(Vec::new())`) leaves the
    /// item type open and does not compile: start from [`Aggregator::default`] instead.
    pub fn new<I, S>(sources: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<SharedSource>,
    {
        let mut aggregator = Self::default();
        aggregator.sources.extend(sources.into_iter().map(|source| {
            let SharedSource(source) = source.into();
            NamedSource {
                name: source.backend().to_owned(),
                labelled: false,
                source,
            }
        }));
        aggregator
    }

    /// Adds a source named by its backend, whose series are not labelled: a client as it is,
    /// an `Arc` of one, or an `Arc<dyn MetricsSource>`.
    ///
    /// ```
    /// # #[derive(Debug)] struct Client;
    /// # #[metrics_core::async_trait]
    /// # impl metrics_core::MetricsSource for Client {
    /// #     fn backend(&self) -> &'static str { "coopr" }
    /// #     async fn collect(&self, _: &metrics_core::Query) -> metrics_core::Result<Vec<metrics_core::Series>> { Ok(vec![]) }
    /// # }
    /// # let client = Client;
    /// let aggregator = metrics_core::Aggregator::default().with_source(client);
    /// assert_eq!(aggregator.len(), 1);
    /// ```
    #[must_use]
    pub fn with_source(mut self, source: impl MetricsSource) -> Self {
        let source = share(source);
        self.sources.push(NamedSource {
            name: source.backend().to_owned(),
            labelled: false,
            source,
        });
        self
    }

    /// Adds a source under its own name, to tell apart two sources of one backend: its
    /// series get the [source label](Self::with_source_label) with this name, and its
    /// failures and counts are reported under it. Takes a client as it is, an `Arc` of one,
    /// or an `Arc<dyn MetricsSource>`.
    #[must_use]
    pub fn with_named_source(
        mut self,
        name: impl Into<String>,
        source: impl MetricsSource,
    ) -> Self {
        self.sources.push(NamedSource {
            name: name.into(),
            labelled: true,
            source: share(source),
        });
        self
    }

    /// Sets the name of the label that carries a named source's name (default
    /// [`source`](Self::DEFAULT_SOURCE_LABEL)). Sanitized like any label name.
    #[must_use]
    pub fn with_source_label(mut self, label: impl Into<String>) -> Self {
        self.source_label = Some(sanitize_name(label.into(), false));
        self
    }

    /// Leaves every series as its source returned it: named sources are then told apart
    /// only in [`Collection::sources`] and [`SourceFailure`]s.
    #[must_use]
    pub fn without_source_label(mut self) -> Self {
        self.source_label = None;
        self
    }

    /// The label that carries a named source's name, if any.
    pub fn source_label(&self) -> Option<&str> {
        self.source_label.as_deref()
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
                Ok(mut series) => {
                    if let (true, Some(label)) = (named.labelled, &self.source_label) {
                        for one in &mut series {
                            label_source(one, label, &named.name);
                        }
                    }
                    collection
                        .sources
                        .push((named.name.clone(), Some(series.len())));
                    collection.series.extend(series);
                }
                Err(error) => {
                    collection.sources.push((named.name.clone(), None));
                    collection.failures.push(SourceFailure {
                        source: named.name.clone(),
                        backend: named.source.backend(),
                        endpoint: named.source.endpoint(),
                        error,
                    });
                }
            }
        }
        collection
    }
}

/// A source as [`Aggregator::new`] holds it: one `Arc<dyn MetricsSource>`, shared by the
/// collect tasks.
///
/// It exists so that `new` can take `Arc<Client>` items as well as trait objects: a
/// `vec![Arc::new(client)]` is a `Vec<Arc<Client>>`, which Rust does not turn into a
/// `Vec<Arc<dyn MetricsSource>>` by itself. Every conversion keeps a single pointer: an
/// `Arc<dyn MetricsSource>` is taken as it is, an `Arc<Client>` is the same allocation seen
/// as a trait object, and a box is moved into an `Arc` once.
///
/// ```
/// # #[derive(Debug)] struct Client;
/// # #[metrics_core::async_trait]
/// # impl metrics_core::MetricsSource for Client {
/// #     fn backend(&self) -> &'static str { "coopr" }
/// #     async fn collect(&self, _: &metrics_core::Query) -> metrics_core::Result<Vec<metrics_core::Series>> { Ok(vec![]) }
/// # }
/// use std::sync::Arc;
/// use metrics_core::MetricsSource;
/// use metrics_core::SharedSource;
///
/// let shared: Arc<dyn MetricsSource> = Arc::new(Client);
/// let source = SharedSource::from(Arc::clone(&shared));
/// assert!(Arc::ptr_eq(&shared, &source.into_inner()));
/// ```
#[derive(Clone, Debug)]
pub struct SharedSource(Arc<dyn MetricsSource>);

impl SharedSource {
    /// The trait object.
    pub fn into_inner(self) -> Arc<dyn MetricsSource> {
        self.0
    }
}

impl<T: MetricsSource> From<Arc<T>> for SharedSource {
    fn from(source: Arc<T>) -> Self {
        Self(source)
    }
}

impl From<Arc<dyn MetricsSource>> for SharedSource {
    fn from(source: Arc<dyn MetricsSource>) -> Self {
        Self(source)
    }
}

impl<T: MetricsSource> From<Box<T>> for SharedSource {
    fn from(source: Box<T>) -> Self {
        Self(Arc::from(source as Box<dyn MetricsSource>))
    }
}

impl From<Box<dyn MetricsSource>> for SharedSource {
    fn from(source: Box<dyn MetricsSource>) -> Self {
        Self(Arc::from(source))
    }
}

impl From<SharedSource> for Arc<dyn MetricsSource> {
    fn from(source: SharedSource) -> Self {
        source.0
    }
}

/// The source as a trait object, without wrapping an `Arc<dyn MetricsSource>` (or a
/// `Box<dyn MetricsSource>`) in a second pointer.
fn share<S: MetricsSource>(source: S) -> Arc<dyn MetricsSource> {
    let mut slot = Some(source);
    let any: &mut dyn Any = &mut slot;
    if let Some(shared) = any
        .downcast_mut::<Option<Arc<dyn MetricsSource>>>()
        .and_then(Option::take)
    {
        return shared;
    }
    if let Some(boxed) = any
        .downcast_mut::<Option<Box<dyn MetricsSource>>>()
        .and_then(Option::take)
    {
        return Arc::from(boxed);
    }
    match slot {
        Some(source) => Arc::new(source),
        None => unreachable!("the slot is only emptied by a matching downcast"),
    }
}

/// Puts `label="name"` on the series, keeping a value the series already had under that
/// label (or under a name that renders as it) as `exported_<label>`.
fn label_source(series: &mut Series, label: &str, name: &str) {
    let clashing = series
        .labels
        .keys()
        .find(|key| *key == label || sanitized(key, false) == label)
        .cloned();
    // Only the first such key moves; a second one is left to the renderers' rule for label
    // names that sanitize alike.
    if let Some(own) = clashing.and_then(|key| series.labels.remove(&key)) {
        let mut exported = format!("exported_{label}");
        while series.labels.contains_key(&exported) {
            exported.insert_str(0, "exported_");
        }
        series.labels.insert(exported, own);
    }
    series.labels.insert(label.to_owned(), name.to_owned());
}

fn serialize_sources<S: Serializer>(
    sources: &[(String, Option<usize>)],
    serializer: S,
) -> Result<S::Ok, S::Error> {
    let mut seq = serializer.serialize_seq(Some(sources.len()))?;
    for (source, series) in sources {
        seq.serialize_element(&SourceCount {
            source,
            series: *series,
        })?;
    }
    seq.end()
}

#[derive(Serialize)]
struct SourceCount<'a> {
    source: &'a str,
    series: Option<usize>,
}

fn serialize_error<S: Serializer>(error: &Error, serializer: S) -> Result<S::Ok, S::Error> {
    let mut out = serializer.serialize_struct("Error", 5)?;
    out.serialize_field("backend", error.backend())?;
    out.serialize_field("kind", error.kind())?;
    out.serialize_field("status", &error.status())?;
    out.serialize_field("retryable", &error.is_retryable())?;
    out.serialize_field("message", &error.to_string())?;
    out.end()
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

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Quiet;

    #[async_trait::async_trait]
    impl MetricsSource for Quiet {
        fn backend(&self) -> &'static str {
            "quiet"
        }

        async fn collect(&self, _query: &Query) -> crate::Result<Vec<Series>> {
            Ok(Vec::new())
        }
    }

    #[test]
    fn trait_objects_are_shared_not_wrapped_again() {
        let shared: Arc<dyn MetricsSource> = Arc::new(Quiet);
        assert!(Arc::ptr_eq(&shared, &share(Arc::clone(&shared))));
        let boxed: Box<dyn MetricsSource> = Box::new(Quiet);
        assert_eq!(share(boxed).backend(), "quiet");
        assert_eq!(share(Quiet).backend(), "quiet");
    }

    /// The form a new user writes first: a `Vec<Arc<Client>>`, not of trait objects.
    #[tokio::test]
    async fn new_takes_a_vec_of_arcs_of_a_client() {
        let client = Quiet;
        let aggregator = Aggregator::new(vec![Arc::new(client)]);
        assert_eq!(aggregator.len(), 1);
        let collection = aggregator.collect(&Query::new()).await;
        assert_eq!(collection.sources, [("quiet".to_owned(), Some(0))]);
    }

    #[test]
    fn new_takes_every_pointer_once() {
        let client = Arc::new(Quiet);
        let shared: Arc<dyn MetricsSource> = Arc::new(Quiet);
        let boxed: Box<dyn MetricsSource> = Box::new(Quiet);
        let mixed: Vec<SharedSource> = vec![
            Arc::clone(&client).into(),
            Arc::clone(&shared).into(),
            boxed.into(),
            Box::new(Quiet).into(),
        ];
        assert_eq!(Aggregator::new(mixed).len(), 4);
        assert_eq!(Aggregator::new([Arc::clone(&shared)]).len(), 1);
        assert_eq!(Aggregator::new(Some(Box::new(Quiet))).len(), 1);

        // The same allocation, not an `Arc` around the `Arc`.
        let from_client = SharedSource::from(Arc::clone(&client)).into_inner();
        assert!(std::ptr::addr_eq(
            Arc::as_ptr(&from_client),
            Arc::as_ptr(&client)
        ));
        let from_shared = SharedSource::from(Arc::clone(&shared)).into_inner();
        assert!(Arc::ptr_eq(&from_shared, &shared));
        assert_eq!(Arc::strong_count(&client), 2);
    }

    #[test]
    fn labelling_moves_a_label_that_renders_as_the_source_label() {
        let mut series = Series::new("m", crate::SeriesKind::Gauge);
        series.labels.insert("my.source".into(), "theirs".into());
        label_source(&mut series, "my_source", "ours");
        assert_eq!(series.labels["my_source"], "ours");
        assert_eq!(series.labels["exported_my_source"], "theirs");
        assert!(!series.labels.contains_key("my.source"));
    }
}
