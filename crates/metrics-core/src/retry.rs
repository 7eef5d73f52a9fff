//! When and how long to wait before sending a request again.

use std::fmt;
use std::time::Duration;

/// Exponential backoff settings.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BackoffConfig {
    /// The first wait.
    pub init_backoff: Duration,
    /// The longest wait.
    pub max_backoff: Duration,
    /// The factor between one wait and the next.
    pub base: f64,
}

impl Default for BackoffConfig {
    fn default() -> Self {
        Self {
            init_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(15),
            base: 2.0,
        }
    }
}

/// How requests are retried.
///
/// Idempotent requests (GET, PUT, DELETE) are retried on connect errors, timeouts, broken
/// connections and 408/429/5xx. A request marked non-idempotent — a POST that pushes counts,
/// like Unleash metrics or AppOptics measurements — is retried only when the server cannot
/// have processed it: the connection was never made, or the server answered 429. A retry
/// after a timeout could count the same data twice.
///
/// `Retry-After` on 429 and 503 is honoured; when it asks for longer than `retry_timeout`
/// allows, the error is returned at once with [`Error::retry_after`](crate::Error::retry_after)
/// set, so a caller can schedule the retry itself.
///
/// ```
/// use std::time::Duration;
/// use metrics_core::RetryConfig;
///
/// let retry = RetryConfig::default().with_max_retries(5);
/// assert_eq!(retry.max_retries, 5);
/// assert_eq!(RetryConfig::none().max_retries, 0);
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RetryConfig {
    /// Retries after the first attempt.
    pub max_retries: usize,
    /// The backoff between attempts.
    pub backoff: BackoffConfig,
    /// No retry starts after this much time has passed since the first attempt.
    pub retry_timeout: Duration,
    /// Where the jitter's randomness comes from.
    pub jitter: Jitter,
}

/// The source of the random fraction that spreads backoffs, so that many clients that
/// failed together do not retry together. Tests fix it to make waits exact.
///
/// ```
/// use std::time::Duration;
/// use metrics_core::{retry::Jitter, RetryConfig};
///
/// let retry = RetryConfig::default().with_jitter(Jitter::fixed(1.0));
/// assert_eq!(retry.backoff_for(0), Duration::from_millis(100));
/// ```
#[derive(Clone, Copy)]
pub struct Jitter(fn() -> f64);

impl Jitter {
    /// A fresh random fraction on every call (the default).
    pub fn random() -> Self {
        Self(fastrand::f64)
    }

    /// Always the same fraction in `[0, 1]`: `1.0` waits the full backoff, `0.0` half of it.
    pub fn fixed(fraction: f64) -> Self {
        // A non-capturing closure per value is not possible; the common values are enough.
        let source: fn() -> f64 = match fraction {
            f if f <= 0.0 => || 0.0,
            f if f >= 1.0 => || 1.0,
            _ => || 0.5,
        };
        Self(source)
    }

    /// A caller's own source of fractions in `[0, 1)`.
    pub fn from_fn(source: fn() -> f64) -> Self {
        Self(source)
    }

    fn sample(self) -> f64 {
        (self.0)().clamp(0.0, 1.0)
    }
}

impl Default for Jitter {
    fn default() -> Self {
        Self::random()
    }
}

impl fmt::Debug for Jitter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Jitter")
    }
}

impl PartialEq for Jitter {
    /// All jitter sources compare equal: a configuration is the same whatever its dice.
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl Default for RetryConfig {
    fn default() -> Self {
        Self {
            max_retries: 3,
            backoff: BackoffConfig::default(),
            retry_timeout: Duration::from_secs(60),
            jitter: Jitter::random(),
        }
    }
}

impl RetryConfig {
    /// No retries at all.
    pub fn none() -> Self {
        Self {
            max_retries: 0,
            ..Self::default()
        }
    }

    /// Sets the number of retries.
    #[must_use]
    pub fn with_max_retries(mut self, max_retries: usize) -> Self {
        self.max_retries = max_retries;
        self
    }

    /// Sets the backoff.
    #[must_use]
    pub fn with_backoff(mut self, backoff: BackoffConfig) -> Self {
        self.backoff = backoff;
        self
    }

    /// Sets the jitter's source of randomness.
    #[must_use]
    pub fn with_jitter(mut self, jitter: Jitter) -> Self {
        self.jitter = jitter;
        self
    }

    /// Sets the overall retry budget.
    #[must_use]
    pub fn with_retry_timeout(mut self, timeout: Duration) -> Self {
        self.retry_timeout = timeout;
        self
    }

    /// The wait before retry number `retry` (0-based): `init × base^retry`, capped at
    /// `max_backoff`, with jitter between half and all of it so that many clients that failed
    /// together do not retry together.
    pub fn backoff_for(&self, retry: usize) -> Duration {
        let BackoffConfig {
            init_backoff,
            max_backoff,
            base,
        } = self.backoff;
        let exponent = i32::try_from(retry).unwrap_or(i32::MAX);
        let full = (init_backoff.as_secs_f64() * base.max(1.0).powi(exponent))
            .min(max_backoff.as_secs_f64());
        let jittered = full * (0.5 + 0.5 * self.jitter.sample());
        Duration::from_secs_f64(jittered.max(0.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped() {
        let retry = RetryConfig::default().with_backoff(BackoffConfig {
            init_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_millis(1000),
            base: 2.0,
        });
        for _ in 0..50 {
            let first = retry.backoff_for(0);
            assert!(first >= Duration::from_millis(50) && first <= Duration::from_millis(100));
            let third = retry.backoff_for(2);
            assert!(third >= Duration::from_millis(200) && third <= Duration::from_millis(400));
            let capped = retry.backoff_for(40);
            assert!(capped <= Duration::from_millis(1000));
        }
    }

    #[test]
    fn jitter_varies() {
        let values: std::collections::HashSet<u64> = (0..20)
            .map(|_| Jitter::random().sample().to_bits())
            .collect();
        assert!(values.len() > 1);
    }

    #[test]
    fn a_fixed_jitter_gives_exact_waits() {
        let retry = RetryConfig::default().with_jitter(Jitter::fixed(0.0));
        assert_eq!(retry.backoff_for(0), Duration::from_millis(50));
        assert_eq!(retry.backoff_for(1), Duration::from_millis(100));
    }
}
