//! When and how long to wait before sending a request again.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
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
}

impl Default for RetryConfig {
    fn default() -> Self {
        Self {
            max_retries: 3,
            backoff: BackoffConfig::default(),
            retry_timeout: Duration::from_secs(60),
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
        let jittered = full * (0.5 + 0.5 * unit_random());
        Duration::from_secs_f64(jittered.max(0.0))
    }
}

/// A number in `[0, 1)`, different on every call. Randomness for jitter without a `rand`
/// dependency: `RandomState` is seeded per instance from the OS.
fn unit_random() -> f64 {
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_u64(0x9e37_79b9_7f4a_7c15);
    // The top 53 bits fill an f64 mantissa exactly.
    #[allow(clippy::cast_precision_loss, reason = "53 bits fit an f64 exactly")]
    let value = (hasher.finish() >> 11) as f64;
    value / (1u64 << 53) as f64
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
        let values: std::collections::HashSet<u64> =
            (0..20).map(|_| unit_random().to_bits()).collect();
        assert!(values.len() > 1);
    }
}
