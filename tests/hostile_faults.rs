//! Every client against every fault of a hostile server: each call ends with the documented
//! typed error and disposition, before a hang deadline, with bodies stopped at the size
//! limit, and with only the retries the disposition allows (counted on the server).

#[path = "support/hostile_clients.rs"]
mod clients;

use std::time::Duration;

use clients::{ALL, BODY_LIMIT, Backend, Credentials, HANG, MAX_RETRIES, fast_retry};
use futures_util::future::join_all;
use metrics_emulators::hostile::{Fault, HostileServer};
use metrics_hub::core::{Error, Processing, Retry};

/// What a fault must end in.
#[derive(Clone, Debug)]
struct Expect {
    /// `Error::kind()`.
    kind: &'static str,
    /// `Error::status()`.
    status: Option<u16>,
    processing: Processing,
    retry: Retry,
    /// How many requests the server reads, over all attempts.
    requests: usize,
}

/// Every attempt the retry policy allows: the first and [`MAX_RETRIES`] more.
const ALL_ATTEMPTS: usize = 1 + MAX_RETRIES;

fn expect(kind: &'static str, processing: Processing, retry: Retry, requests: usize) -> Expect {
    Expect {
        kind,
        status: None,
        processing,
        retry,
        requests,
    }
}

impl Expect {
    fn with_status(mut self, status: u16) -> Self {
        self.status = Some(status);
        self
    }
}

/// Runs `fault` against all five clients at once (one server each) and checks `expected`.
async fn run(fault: Fault, expected: Expect) {
    let outcomes = join_all(ALL.map(|backend| one(backend, fault.clone(), expected.clone()))).await;
    let failures: Vec<String> = outcomes.into_iter().filter_map(Result::err).collect();
    assert!(
        failures.is_empty(),
        "fault {}:\n{}",
        fault.name(),
        failures.join("\n")
    );
}

async fn one(backend: Backend, fault: Fault, expected: Expect) -> Result<(), String> {
    let name = backend.name();
    let (server, cert) = backend.serve(vec![fault.clone()]).await;
    let built = backend.build(
        &server.url(),
        cert.as_ref(),
        &Credentials::plain(),
        fast_retry(),
    );
    let client = built
        .client
        .map_err(|e| format!("{name}: build failed: {e}"))?;
    let outcome = tokio::time::timeout(HANG, client.read())
        .await
        .map_err(|_| format!("{name}: still running after {HANG:?}: a hang"))?;
    let error = match outcome {
        Ok(value) => return Err(format!("{name}: succeeded with {value}")),
        Err(error) => error,
    };
    check_error(name, &error, &expected)?;
    check_requests(name, &server, expected.requests)
}

fn check_error(name: &str, error: &Error, expected: &Expect) -> Result<(), String> {
    let disposition = error.disposition();
    let got = (
        error.kind(),
        error.status(),
        disposition.processing,
        disposition.retry,
    );
    let want = (
        expected.kind,
        expected.status,
        expected.processing,
        expected.retry,
    );
    if got != want {
        return Err(format!(
            "{name}: got {got:?}, expected {want:?}\n  error: {error}\n  debug: {error:?}"
        ));
    }
    if error.backend() != name {
        return Err(format!("{name}: the error names {}", error.backend()));
    }
    if let Error::BodyTooLarge { limit, .. } = error
        && *limit != BODY_LIMIT
    {
        return Err(format!("{name}: limit {limit}, expected {BODY_LIMIT}"));
    }
    Ok(())
}

fn check_requests(name: &str, server: &HostileServer, expected: usize) -> Result<(), String> {
    let seen = server.requests();
    if seen == expected {
        Ok(())
    } else {
        Err(format!(
            "{name}: the server read {seen} requests on {} connections, expected {expected}",
            server.connections()
        ))
    }
}

// --- The connection ---------------------------------------------------------------------

#[tokio::test]
async fn refused() {
    run(
        Fault::Refused,
        expect("transport", Processing::NotSent, Retry::Backoff, 0),
    )
    .await;
}

#[tokio::test]
async fn closed_at_once() {
    run(
        Fault::CloseAtOnce,
        expect(
            "transport",
            Processing::ClosedBeforeResponse,
            Retry::Backoff,
            ALL_ATTEMPTS,
        ),
    )
    .await;
}

#[tokio::test]
async fn never_answers() {
    run(
        Fault::NeverAnswer,
        expect("timeout", Processing::Unknown, Retry::Backoff, ALL_ATTEMPTS),
    )
    .await;
}

#[tokio::test]
async fn one_byte_a_second() {
    // The status came (the server accepted the request); the body did not, in time.
    run(
        Fault::SlowBody,
        expect(
            "timeout",
            Processing::Accepted,
            Retry::Backoff,
            ALL_ATTEMPTS,
        ),
    )
    .await;
}

#[tokio::test]
async fn reset_mid_body() {
    run(
        Fault::ResetMidBody,
        expect(
            "transport",
            Processing::Accepted,
            Retry::Backoff,
            ALL_ATTEMPTS,
        ),
    )
    .await;
}

#[tokio::test]
async fn body_shorter_than_its_length() {
    run(
        Fault::ShortBody,
        expect(
            "transport",
            Processing::Accepted,
            Retry::Backoff,
            ALL_ATTEMPTS,
        ),
    )
    .await;
}

#[tokio::test]
async fn huge_headers() {
    // hyper refuses the head; nothing of the answer was usable, so it counts as a broken
    // connection and is retried.
    run(
        Fault::HugeHeaders { bytes: 1024 * 1024 },
        expect(
            "transport",
            Processing::Unknown,
            Retry::Backoff,
            ALL_ATTEMPTS,
        ),
    )
    .await;
}

// --- Bodies that are not the API's ----------------------------------------------------------

#[tokio::test]
async fn html_with_200() {
    run(
        Fault::Html200,
        expect("decode", Processing::Accepted, Retry::Never, 1),
    )
    .await;
}

#[tokio::test]
async fn wrong_shape_json_with_200() {
    run(
        Fault::WrongShape200,
        expect("decode", Processing::Accepted, Retry::Never, 1),
    )
    .await;
}

#[tokio::test]
async fn gzip_nobody_asked_for() {
    run(
        Fault::UnaskedGzip,
        expect("decode", Processing::Accepted, Retry::Never, 1),
    )
    .await;
}

/// A thousand times the limit. A client that stops at its limit lets the server write the
/// limit plus what the socket buffers on both sides take (about 4 MiB on loopback here),
/// far from all of it.
const OVERSIZED: u64 = 64 * 1024 * 1024;

async fn oversized(declared: bool) {
    let fault = Fault::Oversized {
        bytes: OVERSIZED,
        declared,
    };
    run(
        fault.clone(),
        expect("body_too_large", Processing::Accepted, Retry::Never, 1),
    )
    .await;
    // And the client stopped reading: the server could not write the whole body.
    for backend in ALL {
        let (server, cert) = backend.serve(vec![fault.clone()]).await;
        let client = backend
            .build(
                &server.url(),
                cert.as_ref(),
                &Credentials::plain(),
                fast_retry(),
            )
            .client
            .unwrap();
        let error = tokio::time::timeout(HANG, client.read())
            .await
            .expect("no hang")
            .unwrap_err();
        assert!(matches!(error, Error::BodyTooLarge { .. }), "{error:?}");
        // The client dropped the connection; give the server a moment to notice.
        tokio::time::sleep(Duration::from_millis(100)).await;
        let sent = server.body_bytes_sent();
        assert!(
            sent < OVERSIZED / 2,
            "{}: the server wrote {sent} of {OVERSIZED} bytes: the client kept reading past its limit",
            backend.name()
        );
    }
}

#[tokio::test]
async fn oversized_with_content_length() {
    oversized(true).await;
}

#[tokio::test]
async fn oversized_chunked() {
    oversized(false).await;
}

// --- Statuses ---------------------------------------------------------------------------

async fn redirect(status: u16) {
    let elsewhere = HostileServer::start(Fault::echo(200)).await.unwrap();
    run(
        Fault::redirect(status, elsewhere.url()),
        // The client never follows a redirect: a 3xx is an answer it cannot use, and
        // following it would carry the credentials to another origin.
        expect("api", Processing::Unknown, Retry::Never, 1).with_status(status),
    )
    .await;
    assert_eq!(elsewhere.connections(), 0, "a redirect was followed");
}

#[tokio::test]
async fn redirect_302_to_another_host() {
    redirect(302).await;
}

#[tokio::test]
async fn redirect_307_to_another_host() {
    redirect(307).await;
}

#[tokio::test]
async fn redirect_308_to_another_host() {
    redirect(308).await;
}

#[tokio::test]
async fn status_500() {
    run(
        Fault::status(500),
        expect("api", Processing::Unknown, Retry::Backoff, ALL_ATTEMPTS).with_status(500),
    )
    .await;
}

#[tokio::test]
async fn status_503_without_retry_after() {
    run(
        Fault::status(503),
        expect("api", Processing::Unknown, Retry::Backoff, ALL_ATTEMPTS).with_status(503),
    )
    .await;
}

#[tokio::test]
async fn status_503_with_retry_after() {
    run(
        Fault::status(503).with_retry_after("1"),
        expect(
            "api",
            Processing::NotProcessed,
            Retry::After(Duration::from_secs(1)),
            ALL_ATTEMPTS,
        )
        .with_status(503),
    )
    .await;
}

#[tokio::test]
async fn status_503_with_retry_after_an_hour() {
    run(
        Fault::status(503).with_retry_after("3600"),
        expect(
            "api",
            Processing::NotProcessed,
            Retry::After(Duration::from_secs(3600)),
            1,
        )
        .with_status(503),
    )
    .await;
}

#[tokio::test]
async fn status_429_without_retry_after() {
    run(
        Fault::status(429),
        expect(
            "rate_limited",
            Processing::NotProcessed,
            Retry::Backoff,
            ALL_ATTEMPTS,
        )
        .with_status(429),
    )
    .await;
}

#[tokio::test]
async fn status_429_with_retry_after() {
    run(
        Fault::status(429).with_retry_after("1"),
        expect(
            "rate_limited",
            Processing::NotProcessed,
            Retry::After(Duration::from_secs(1)),
            ALL_ATTEMPTS,
        )
        .with_status(429),
    )
    .await;
}

#[tokio::test]
async fn status_429_with_retry_after_an_hour_returns_at_once() {
    run(
        Fault::status(429).with_retry_after("3600"),
        expect(
            "rate_limited",
            Processing::NotProcessed,
            Retry::After(Duration::from_secs(3600)),
            1,
        )
        .with_status(429),
    )
    .await;
}

#[tokio::test]
async fn echo_400() {
    run(
        Fault::echo(400),
        expect("api", Processing::Refused, Retry::Never, 1).with_status(400),
    )
    .await;
}

#[tokio::test]
async fn echo_500() {
    run(
        Fault::echo(500),
        expect("api", Processing::Unknown, Retry::Backoff, ALL_ATTEMPTS).with_status(500),
    )
    .await;
}

// --- What the client sent -----------------------------------------------------------------

#[tokio::test]
async fn the_client_does_not_ask_for_compression() {
    // The gzip case above is only hostile if nobody asked for it.
    for backend in ALL {
        let (server, cert) = backend.serve(vec![Fault::UnaskedGzip]).await;
        let client = backend
            .build(
                &server.url(),
                cert.as_ref(),
                &Credentials::plain(),
                fast_retry(),
            )
            .client
            .unwrap();
        let _ = tokio::time::timeout(HANG, client.read()).await.unwrap();
        let sent = server.received_text().to_ascii_lowercase();
        assert!(sent.starts_with("get "), "{}: {sent}", backend.name());
        assert!(
            !sent.contains("accept-encoding: gzip"),
            "{} asked for gzip: {sent}",
            backend.name()
        );
    }
}

// --- Writes of counts -------------------------------------------------------------------

/// Vumi's `fire` and Unleash's `send_metrics` push values the server adds up: resending one
/// the server may have acted on would count it twice. Vumi's goes through the pipeline's
/// retries, which resend it only when the server cannot have acted on it; Unleash's is never
/// resent (its recorder keeps and merges the counts instead).
#[tokio::test]
async fn writes_of_counts_are_resent_only_when_the_server_did_not_act() {
    // (fault, kind, processing, requests Vumi's fire is sent, requests Unleash's is sent)
    let cases = [
        (Fault::Refused, "transport", Processing::NotSent, 0, 0),
        (
            Fault::CloseAtOnce,
            "transport",
            Processing::ClosedBeforeResponse,
            ALL_ATTEMPTS,
            1,
        ),
        (Fault::NeverAnswer, "timeout", Processing::Unknown, 1, 1),
        (Fault::ShortBody, "transport", Processing::Accepted, 1, 1),
        (Fault::status(500), "api", Processing::Unknown, 1, 1),
        (
            Fault::status(503).with_retry_after("1"),
            "api",
            Processing::NotProcessed,
            ALL_ATTEMPTS,
            1,
        ),
        (
            Fault::status(429),
            "rate_limited",
            Processing::NotProcessed,
            ALL_ATTEMPTS,
            1,
        ),
        (
            Fault::status(429).with_retry_after("3600"),
            "rate_limited",
            Processing::NotProcessed,
            1,
            1,
        ),
        (Fault::echo(400), "api", Processing::Refused, 1, 1),
    ];
    let runs = cases
        .iter()
        .flat_map(|(fault, kind, processing, vumi, unleash)| {
            [(Backend::Vumi, *vumi), (Backend::Unleash, *unleash)].map(|(backend, requests)| {
                let fault = fault.clone();
                async move {
                    let name = format!("{} {}", backend.name(), fault.name());
                    let (server, cert) = backend.serve(vec![fault]).await;
                    let client = backend
                        .build(
                            &server.url(),
                            cert.as_ref(),
                            &Credentials::plain(),
                            fast_retry(),
                        )
                        .client
                        .map_err(|e| format!("{name}: build failed: {e}"))?;
                    let outcome = tokio::time::timeout(HANG, client.write())
                        .await
                        .map_err(|_| format!("{name}: still running after {HANG:?}: a hang"))?
                        .expect("a write call");
                    let error = match outcome {
                        Ok(value) => return Err(format!("{name}: succeeded with {value}")),
                        Err(error) => error,
                    };
                    if (error.kind(), error.disposition().processing) != (*kind, *processing) {
                        return Err(format!(
                            "{name}: got {} {:?}, expected {kind} {processing:?}: {error}",
                            error.kind(),
                            error.disposition().processing
                        ));
                    }
                    check_requests(&name, &server, requests)
                }
            })
        });
    let failures: Vec<String> = join_all(runs)
        .await
        .into_iter()
        .filter_map(Result::err)
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
