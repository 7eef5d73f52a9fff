//! Reading a backend's settings from environment variables, through a lookup that tests and
//! embedding programs can replace.
//!
//! Every backend's `from_env()` is `from_env_with(&Env::process())`; tests pass an
//! [`Env::from_pairs`] instead of changing the process environment (which is shared by every
//! test thread) or re-spawning the test binary.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use crate::error::{Error, Result};
use crate::secret::Secret;

type Lookup = dyn Fn(&str) -> Option<String> + Send + Sync;

/// Where environment variables are read from.
///
/// ```
/// use std::time::Duration;
/// use metrics_core::Env;
///
/// let env = Env::from_pairs([("VUMI_URL", " https://go.vumi.org/api/v1/go "), ("VUMI_TIMEOUT", "7"), ("VUMI_METRICS", "a, b,,c")]);
/// assert_eq!(env.get("VUMI_URL").as_deref(), Some("https://go.vumi.org/api/v1/go"));
/// assert_eq!(env.get("VUMI_TOKEN"), None);
/// assert_eq!(env.seconds("vumi", "VUMI_TIMEOUT").unwrap(), Some(Duration::from_secs(7)));
/// assert_eq!(env.list("VUMI_METRICS"), ["a", "b", "c"]);
/// assert!(env.parse::<u16>("vumi", "VUMI_URL").unwrap_err().to_string().contains("VUMI_URL"));
/// ```
#[derive(Clone)]
pub struct Env {
    lookup: Arc<Lookup>,
}

impl fmt::Debug for Env {
    // Values are never shown: some of them are credentials.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Env")
    }
}

impl Default for Env {
    fn default() -> Self {
        Self::process()
    }
}

impl Env {
    /// The process environment.
    pub fn process() -> Self {
        Self::from_fn(|name| std::env::var(name).ok())
    }

    /// Variables from a function (`|name| map.get(name).cloned()`).
    pub fn from_fn(lookup: impl Fn(&str) -> Option<String> + Send + Sync + 'static) -> Self {
        Self {
            lookup: Arc::new(lookup),
        }
    }

    /// Exactly these variables and no others.
    pub fn from_pairs<K, V>(pairs: impl IntoIterator<Item = (K, V)>) -> Self
    where
        K: Into<String>,
        V: Into<String>,
    {
        let map: std::collections::HashMap<String, String> = pairs
            .into_iter()
            .map(|(k, v)| (k.into(), v.into()))
            .collect();
        Self::from_fn(move |name| map.get(name).cloned())
    }

    /// A variable's value, trimmed; `None` when it is unset or blank.
    pub fn get(&self, name: &str) -> Option<String> {
        let value = (self.lookup)(name)?;
        let trimmed = value.trim();
        (!trimmed.is_empty()).then(|| trimmed.to_owned())
    }

    /// Whether a variable is set to something other than blanks.
    pub fn is_set(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// A credential: like [`Env::get`], kept in a [`Secret`].
    pub fn secret(&self, name: &str) -> Option<Secret<String>> {
        self.get(name).map(Secret::new)
    }

    /// A comma-separated list, items trimmed, empty items left out.
    pub fn list(&self, name: &str) -> Vec<String> {
        self.get(name)
            .map(|value| {
                value
                    .split(',')
                    .map(str::trim)
                    .filter(|item| !item.is_empty())
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default()
    }

    /// A value parsed as `T`.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] naming the variable when its value does not parse. The value is not
    /// quoted: the variable may hold a credential.
    pub fn parse<T>(&self, backend: &'static str, name: &str) -> Result<Option<T>>
    where
        T: FromStr,
        T::Err: fmt::Display,
    {
        self.get(name)
            .map(|value| {
                value.parse::<T>().map_err(|e| {
                    Error::config(
                        backend,
                        format!("{name} has a value that is not valid: {e}"),
                    )
                })
            })
            .transpose()
    }

    /// A duration written in seconds (`30`, `2.5`).
    ///
    /// # Errors
    ///
    /// [`Error::Config`] naming the variable when it is not a non-negative number.
    pub fn seconds(&self, backend: &'static str, name: &str) -> Result<Option<Duration>> {
        match self.parse::<f64>(backend, name)? {
            None => Ok(None),
            Some(seconds) => Duration::try_from_secs_f64(seconds).map(Some).map_err(|_| {
                Error::config(
                    backend,
                    format!("{name} must be a number of seconds, 0 or more"),
                )
            }),
        }
    }
}
