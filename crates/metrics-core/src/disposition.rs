//! What a failure means for the request that failed: whether the server can have acted on it,
//! whether and when to try again, and what a writer does with the data it was sending.
//!
//! The decision is made once, when the [`Error`](crate::Error) is made: the pipeline records
//! what it saw on the wire (connection refused, closed before any answer, timed out after
//! sending, the status), and [`Error::disposition`](crate::Error::disposition) turns that
//! into a [`Disposition`]. The pipeline's retry loop, the Unleash recorder and the AppOptics
//! queue all read it; none of them classifies errors on its own.

use std::time::Duration;

/// Whether the server can have acted on a request that failed.
///
/// ```
/// use metrics_core::{Error, Processing};
///
/// assert_eq!(Error::api("x", 503, None, "down").disposition().processing, Processing::Unknown);
/// assert_eq!(Error::api("x", 400, None, "bad").disposition().processing, Processing::Refused);
/// assert_eq!(Error::api("x", 429, None, "slow").disposition().processing, Processing::NotProcessed);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Processing {
    /// Nothing reached the server: the request was refused before sending (configuration,
    /// invalid input), or the connection or the TLS handshake failed.
    NotSent,
    /// The request was written, and the connection closed before any byte of an answer.
    ///
    /// This is what a keep-alive connection looks like when the server (or a load balancer)
    /// closed it while idle and the request went out on it before the close was seen. It is
    /// treated as [`Processing::NotProcessed`]: an HTTP/1.1 server answers a request it has
    /// read before it closes the connection, so closing without a single byte of answer means
    /// the request was never taken up. The one exception, a server that dies between acting on
    /// a request and answering it, loses with it whatever it had not yet written down; the
    /// write APIs here (Unleash metrics, AppOptics measurements, Vumi values) are buffered by
    /// their servers before they are stored, so a resend does not count twice there either.
    ClosedBeforeResponse,
    /// The server received the request and said it did not act on it: 401, 403, 408, 429.
    NotProcessed,
    /// Unknown: a timeout after the request was sent, a connection broken while the answer
    /// was coming, a 5xx.
    Unknown,
    /// The server read the request and refused it for good: a 4xx other than 401, 403, 408
    /// and 429. Sending the same request again gets the same answer.
    Refused,
    /// The server accepted the request (2xx), but its answer could not be used: larger than
    /// the limit, or not what the API documents.
    Accepted,
}

impl Processing {
    /// Whether the server certainly did not act on the request (see
    /// [`Processing::ClosedBeforeResponse`] for why that counts).
    pub fn is_not_processed(self) -> bool {
        matches!(
            self,
            Self::NotSent | Self::ClosedBeforeResponse | Self::NotProcessed
        )
    }
}

/// Whether and when the same request may succeed if sent again.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Retry {
    /// Sending it again gets the same answer: fix the request, the configuration or the
    /// credentials first.
    Never,
    /// It may succeed later; wait by the caller's backoff.
    Backoff,
    /// It may succeed after the time the server asked for (`Retry-After`).
    After(Duration),
}

/// What a writer that owns the data of a failed request does with it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum PayloadFate {
    /// Keep it and send it again later: the server did not count it.
    Keep,
    /// Give it back to the caller with the error: the server refused it for good, and
    /// sending it again would be refused again.
    HandBack,
    /// Let it go (and log it): the server may have counted it already, and the data is not
    /// safe to send twice.
    Drop,
    /// Nothing to do: the server accepted it.
    Delivered,
}

/// The whole decision for one failure.
///
/// ```
/// use std::time::Duration;
/// use metrics_core::{Disposition, PayloadFate, Processing, Retry};
///
/// let unknown = Disposition::new(Processing::Unknown, Retry::Backoff);
/// assert!(unknown.may_resend(true));        // a GET after a timeout
/// assert!(!unknown.may_resend(false));      // a POST of counts after a timeout
/// assert_eq!(unknown.payload(false), PayloadFate::Drop);
///
/// let limited = Disposition::new(Processing::NotProcessed, Retry::After(Duration::from_secs(30)));
/// assert!(limited.may_resend(false));
/// assert_eq!(limited.retry_after(), Some(Duration::from_secs(30)));
/// assert_eq!(limited.payload(false), PayloadFate::Keep);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct Disposition {
    /// Whether the server can have acted on the request.
    pub processing: Processing,
    /// Whether and when trying again can help.
    pub retry: Retry,
}

impl Disposition {
    /// A disposition from its parts.
    pub fn new(processing: Processing, retry: Retry) -> Self {
        Self { processing, retry }
    }

    /// Whether the same request may succeed if sent again (now or later).
    pub fn is_retryable(&self) -> bool {
        self.retry != Retry::Never
    }

    /// How long the server asked to wait, if it said.
    pub fn retry_after(&self) -> Option<Duration> {
        match self.retry {
            Retry::After(wait) => Some(wait),
            Retry::Never | Retry::Backoff => None,
        }
    }

    /// Whether sending the same request again is both useful and harmless: it may succeed,
    /// and either the server did not act on it or acting twice is harmless (`idempotent`).
    pub fn may_resend(&self, idempotent: bool) -> bool {
        self.is_retryable() && (idempotent || self.processing.is_not_processed())
    }

    /// What a writer does with the data of the failed request. `idempotent` says whether the
    /// data is safe to deliver twice (measurements with their own timestamps are; counts that
    /// the server adds up are not).
    pub fn payload(&self, idempotent: bool) -> PayloadFate {
        match self.processing {
            Processing::NotSent | Processing::ClosedBeforeResponse | Processing::NotProcessed => {
                PayloadFate::Keep
            }
            Processing::Unknown if idempotent => PayloadFate::Keep,
            Processing::Unknown => PayloadFate::Drop,
            Processing::Refused => PayloadFate::HandBack,
            Processing::Accepted => PayloadFate::Delivered,
        }
    }
}
