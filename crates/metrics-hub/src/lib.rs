#![doc = include_str!("../README.md")]
#![cfg_attr(docsrs, feature(doc_cfg))]

#[doc(inline)]
pub use metrics_core::{
    Aggregator, Auth, BackoffConfig, ClientOptions, Collection, Disposition, Env, Error, Jitter,
    MetricsSource, MetricsSourceExt, PayloadFate, Point, Processing, Query, Result, Retry,
    RetryConfig, Secret, Series, SeriesKind, SharedError, SharedSource, SourceFailure, TimeRange,
    Unit, async_trait, chrono,
};

/// The renderers: a human table, JSON and OpenMetrics text of a [`Collection`] or of series.
#[doc(inline)]
pub use metrics_core::render;

/// The HTTP pipeline every client sends through, for writing a source of your own.
#[doc(inline)]
pub use metrics_core::http;

/// The shared core crate as a whole.
pub use metrics_core as core;

#[cfg(feature = "coopr")]
#[cfg_attr(docsrs, doc(cfg(feature = "coopr")))]
#[doc(inline)]
pub use coopr_client as coopr;

#[cfg(feature = "outline")]
#[cfg_attr(docsrs, doc(cfg(feature = "outline")))]
#[doc(inline)]
pub use outline_client as outline;

#[cfg(feature = "vumi")]
#[cfg_attr(docsrs, doc(cfg(feature = "vumi")))]
#[doc(inline)]
pub use vumi_client as vumi;

#[cfg(feature = "appoptics")]
#[cfg_attr(docsrs, doc(cfg(feature = "appoptics")))]
#[doc(inline)]
pub use appoptics_client as appoptics;

#[cfg(feature = "unleash")]
#[cfg_attr(docsrs, doc(cfg(feature = "unleash")))]
#[doc(inline)]
pub use unleash_client as unleash;
