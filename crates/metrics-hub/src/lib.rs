#![doc = include_str!("../README.md")]
#![cfg_attr(docsrs, feature(doc_cfg))]

#[doc(inline)]
pub use metrics_core::{
    Aggregator, Auth, BackoffConfig, ClientOptions, Collection, Error, MetricsSource,
    MetricsSourceExt, Point, Query, Result, RetryConfig, Secret, Series, SeriesKind, SourceFailure,
    TimeRange, Unit, async_trait, chrono,
};

/// The shared core: the HTTP pipeline and model helpers, for writing a source of your own.
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
