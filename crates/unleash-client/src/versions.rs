//! The server version a client is configured for, and what it decides: which path each
//! read goes to, and what a 404 or 410 from it means.

use std::fmt;
use std::str::FromStr;

use metrics_core::{Error, Result};

use crate::BACKEND;

/// The version of the Unleash server a client talks to. Read endpoints moved between
/// versions; the client picks the paths (and the fallbacks) from it.
///
/// ```
/// use unleash_client::ServerVersion;
///
/// let v: ServerVersion = "v4.19.5".parse().unwrap();
/// assert_eq!(v, ServerVersion::new(4, 19, 5));
/// assert!(v < ServerVersion::LATEST);
/// assert_eq!(ServerVersion::parse("8.2.0-beta.1"), Some(ServerVersion::new(8, 2, 0)));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ServerVersion {
    /// Major version.
    pub major: u32,
    /// Minor version.
    pub minor: u32,
    /// Patch version.
    pub patch: u32,
}

impl ServerVersion {
    /// The newest version this client was checked against (live): 8.2.0. The default.
    pub const LATEST: Self = Self::new(8, 2, 0);
    /// 3.0: the read endpoints moved from `/api/client` to `/api/admin/metrics`.
    pub const V3_0: Self = Self::new(3, 0, 0);
    /// 4.0: API tokens (v3 admin reads need a login cookie).
    pub const V4_0: Self = Self::new(4, 0, 0);
    /// 4.2: `client-metrics/features/:name` and `/raw`.
    pub const V4_2: Self = Self::new(4, 2, 0);
    /// 4.4: the legacy views answer 410 Gone.
    pub const V4_4: Self = Self::new(4, 4, 0);
    /// 5.10: the applications list is paged; overview and instances endpoints.
    pub const V5_10: Self = Self::new(5, 10, 0);
    /// 7.0: unknown flags.
    pub const V7_0: Self = Self::new(7, 0, 0);

    /// A version.
    pub const fn new(major: u32, minor: u32, patch: u32) -> Self {
        Self {
            major,
            minor,
            patch,
        }
    }

    /// Parses `8.2.0`, `v4.19.5`, `5.10` or `8.2.0-beta.1+build` (pre-release and build
    /// parts are ignored).
    pub fn parse(text: &str) -> Option<Self> {
        let text = text.trim();
        let text = text.strip_prefix(['v', 'V']).unwrap_or(text);
        let core = text.split(['-', '+']).next()?;
        let mut parts = core.split('.');
        let major = parts.next()?.parse().ok()?;
        let minor = parts.next().map_or(Some(0), |p| p.parse().ok())?;
        let patch = parts.next().map_or(Some(0), |p| p.parse().ok())?;
        if parts.next().is_some() {
            return None;
        }
        Some(Self::new(major, minor, patch))
    }
}

impl Default for ServerVersion {
    fn default() -> Self {
        Self::LATEST
    }
}

impl fmt::Display for ServerVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

impl FromStr for ServerVersion {
    type Err = Error;

    fn from_str(text: &str) -> Result<Self> {
        Self::parse(text).ok_or_else(|| {
            Error::config(
                BACKEND,
                format!("`{text}` is not an Unleash server version (expected e.g. `8.2.0`)"),
            )
        })
    }
}

/// How the server may answer an admin read that a version does not have.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Endpoint {
    /// The first version that has it: the client does not send it to an older one.
    pub(crate) since: Option<ServerVersion>,
    /// A 410 means: removed in 4.4; use this instead.
    pub(crate) replacement: Option<&'static str>,
    /// A 404 means the server lacks the route (the endpoint never 404s for a missing
    /// resource), not that something was not found.
    pub(crate) route_may_be_missing: bool,
}

impl Endpoint {
    /// An endpoint every supported version has.
    pub(crate) const fn always() -> Self {
        Self {
            since: None,
            replacement: None,
            route_may_be_missing: false,
        }
    }

    /// An endpoint added in `version`.
    pub(crate) const fn since(version: ServerVersion) -> Self {
        Self {
            since: Some(version),
            replacement: None,
            route_may_be_missing: true,
        }
    }

    /// A legacy view, removed in 4.4 in favour of `replacement`.
    pub(crate) const fn legacy(replacement: &'static str) -> Self {
        Self {
            since: None,
            replacement: Some(replacement),
            route_may_be_missing: true,
        }
    }

    /// Refuses, before sending, a read the configured version does not have.
    pub(crate) fn check(&self, request: &str, version: ServerVersion) -> Result<()> {
        match self.since {
            Some(since) if version < since => Err(Error::unsupported(
                BACKEND,
                None,
                format!(
                    "{request} needs Unleash {since} or newer; this client is configured for \
                     {version} (with_server_version / UNLEASH_SERVER_VERSION)"
                ),
            )),
            _ => Ok(()),
        }
    }
}

/// The path of a legacy view (`seen-toggles`, `seen-apps`, `feature-toggles[/:name]`) on
/// `version`: v2 served them under `/api/client` (`metrics/feature-toggles`), v3 moved them
/// under `/api/admin/metrics`, 4.4 made them 410 Gone.
pub(crate) fn legacy_path(view: &str, version: ServerVersion) -> String {
    if version < ServerVersion::V3_0 {
        if view.starts_with("feature-toggles") {
            format!("api/client/metrics/{view}")
        } else {
            format!("api/client/{view}")
        }
    } else {
        format!("api/admin/metrics/{view}")
    }
}

/// The path of the whole applications list before 5.10 (v2: under `/api/client`).
pub(crate) fn applications_path(version: ServerVersion) -> &'static str {
    if version < ServerVersion::V3_0 {
        "api/client/applications"
    } else {
        "api/admin/metrics/applications"
    }
}

/// Whether the server filters the applications list by `strategyName` itself: v2 and
/// 4.0 – 5.9 (v3 answers 500 to the parameter, 5.10+ ignores it).
pub(crate) fn server_filters_by_strategy(version: ServerVersion) -> bool {
    version < ServerVersion::V3_0
        || (version >= ServerVersion::V4_0 && version < ServerVersion::V5_10)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_parse_and_order() {
        assert_eq!(
            ServerVersion::parse("5.10"),
            Some(ServerVersion::new(5, 10, 0))
        );
        assert_eq!(ServerVersion::parse("3"), Some(ServerVersion::new(3, 0, 0)));
        assert_eq!(
            ServerVersion::parse("8.2.0+enterprise"),
            Some(ServerVersion::LATEST)
        );
        assert_eq!(ServerVersion::parse("x.1"), None);
        assert_eq!(ServerVersion::parse("1.2.3.4"), None);
        assert!(ServerVersion::new(5, 9, 9) < ServerVersion::V5_10);
        assert_eq!(ServerVersion::LATEST.to_string(), "8.2.0");
        assert!("bogus".parse::<ServerVersion>().is_err());
    }

    #[test]
    fn legacy_paths_follow_the_version() {
        let v2 = ServerVersion::new(2, 0, 0);
        assert_eq!(legacy_path("seen-toggles", v2), "api/client/seen-toggles");
        assert_eq!(
            legacy_path("feature-toggles/f", v2),
            "api/client/metrics/feature-toggles/f"
        );
        assert_eq!(
            legacy_path("seen-apps", ServerVersion::new(4, 3, 0)),
            "api/admin/metrics/seen-apps"
        );
        assert!(server_filters_by_strategy(v2));
        assert!(!server_filters_by_strategy(ServerVersion::new(3, 1, 0)));
        assert!(server_filters_by_strategy(ServerVersion::new(5, 9, 0)));
        assert!(!server_filters_by_strategy(ServerVersion::LATEST));
    }
}
