//! The trait every backend client implements.

use std::fmt::Debug;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use crate::error::{Error, Result};
use crate::model::Series;
use crate::query::Query;

/// A backend that can be asked for metrics as [`Series`].
///
/// Object safe: hold several as `Vec<Arc<dyn MetricsSource>>` and collect from all of them
/// with an [`Aggregator`](crate::Aggregator). Operations only one backend has (Outline access
/// keys, AppOptics submissions, Unleash registration) stay inherent methods of that client.
///
/// ```
/// use std::sync::Arc;
/// use async_trait::async_trait;
/// use metrics_core::{MetricsSource, MetricsSourceExt, Query, Result, Series, SeriesKind};
///
/// #[derive(Debug)]
/// struct Constant;
///
/// #[async_trait]
/// impl MetricsSource for Constant {
///     fn backend(&self) -> &'static str { "constant" }
///     async fn collect(&self, query: &Query) -> Result<Vec<Series>> {
///         let series = Series::new("answer", SeriesKind::Gauge)
///             .with_point(chrono::Utc::now(), 42.0);
///         Ok(vec![series].into_iter().filter(|s| query.matches_name(&s.name)).collect())
///     }
/// }
///
/// # tokio_test_block_on(async {
/// let sources: Vec<Arc<dyn MetricsSource>> = vec![Arc::new(Constant)];
/// let series = sources[0].collect_all().await?;
/// assert_eq!(series[0].last_value(), Some(42.0));
/// # Ok::<_, metrics_core::Error>(()) });
/// # fn tokio_test_block_on<F: std::future::Future>(f: F) -> F::Output {
/// #     tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(f)
/// # }
/// ```
#[async_trait]
pub trait MetricsSource: Debug + Send + Sync + 'static {
    /// The backend's name, the same as its crate's `BACKEND` constant.
    fn backend(&self) -> &'static str;

    /// Collects the series this source has for `query`. Each backend documents how it maps
    /// the query's range, step and name filter onto its API.
    async fn collect(&self, query: &Query) -> Result<Vec<Series>>;

    /// Where this source sends its requests, redacted to `host:port` (`203.0.113.7:8443`,
    /// `api.appoptics.com:443`): never a path, query, user or password, which may hold a
    /// credential (Outline's whole API URL is one). `None` when the source has no single
    /// endpoint or does not say.
    ///
    /// The [`Aggregator`](crate::Aggregator) puts it in each
    /// [`SourceFailure`](crate::SourceFailure), so that a report says which server failed.
    fn endpoint(&self) -> Option<String> {
        None
    }
}

#[async_trait]
impl<T: MetricsSource + ?Sized> MetricsSource for Arc<T> {
    fn backend(&self) -> &'static str {
        (**self).backend()
    }

    async fn collect(&self, query: &Query) -> Result<Vec<Series>> {
        (**self).collect(query).await
    }

    fn endpoint(&self) -> Option<String> {
        (**self).endpoint()
    }
}

#[async_trait]
impl<T: MetricsSource + ?Sized> MetricsSource for Box<T> {
    fn backend(&self) -> &'static str {
        (**self).backend()
    }

    async fn collect(&self, query: &Query) -> Result<Vec<Series>> {
        (**self).collect(query).await
    }

    fn endpoint(&self) -> Option<String> {
        (**self).endpoint()
    }
}

/// Conveniences on top of [`MetricsSource`], for every source including trait objects.
#[async_trait]
pub trait MetricsSourceExt: MetricsSource {
    /// Collects everything, at the source's own resolution.
    async fn collect_all(&self) -> Result<Vec<Series>> {
        self.collect(&Query::default()).await
    }

    /// Collects, then keeps only the newest point of each series.
    async fn collect_latest(&self, query: &Query) -> Result<Vec<Series>> {
        let mut series = self.collect(query).await?;
        for one in &mut series {
            if one.points.len() > 1 {
                let last = one.points.len() - 1;
                one.points.drain(..last);
            }
        }
        Ok(series)
    }

    /// Collects, giving up with [`Error::Timeout`] after `timeout`.
    async fn collect_with_timeout(&self, query: &Query, timeout: Duration) -> Result<Vec<Series>> {
        match tokio::time::timeout(timeout, self.collect(query)).await {
            Ok(result) => result,
            Err(_) => Err(Error::timeout(
                self.backend(),
                format!("collect did not finish within {} ms", timeout.as_millis()),
            )),
        }
    }
}

impl<T: MetricsSource + ?Sized> MetricsSourceExt for T {}
