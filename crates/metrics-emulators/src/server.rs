//! Serving an emulator: the accept loop, optional TLS, the request log and fault injection
//! that every emulator shares.

use std::collections::VecDeque;
use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::task::{JoinHandle, JoinSet};

/// How many requests the log keeps; older ones are dropped (the count keeps going).
const REQUEST_LOG_CAPACITY: usize = 10_000;

/// Locks a mutex, ignoring poisoning: emulator state stays usable after a panicking test.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A fault the emulator injects instead of (or before) its normal answer.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Fault {
    /// Answer normally, after this delay.
    Delay(Duration),
    /// Answer with this status and body (and `Retry-After`, if given) instead.
    Status {
        /// The HTTP status.
        status: u16,
        /// `Retry-After` in seconds.
        retry_after: Option<u64>,
        /// The body, sent as `text/plain` unless it starts with `{`.
        body: String,
    },
    /// Start a 200 response and break the connection before the body is complete.
    DropConnection,
    /// Answer 200 with a truncated JSON body.
    MalformedBody,
}

#[derive(Debug)]
struct FaultRule {
    fault: Fault,
    path_prefix: Option<String>,
    skip: usize,
    remaining: Option<usize>,
}

/// The faults an emulator will inject, shared with the test that set them.
///
/// ```
/// use std::time::Duration;
/// use metrics_emulators::{Fault, Faults};
///
/// let faults = Faults::default();
/// faults.inject(Fault::Status { status: 503, retry_after: Some(1), body: String::new() }, 1);
/// faults.always(Fault::Delay(Duration::from_millis(50)));
/// faults.clear();
/// ```
#[derive(Clone, Default)]
pub struct Faults {
    rules: Arc<Mutex<Vec<FaultRule>>>,
}

impl fmt::Debug for Faults {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(lock(&self.rules).iter()).finish()
    }
}

impl Faults {
    /// Injects `fault` into the next `times` requests.
    pub fn inject(&self, fault: Fault, times: usize) {
        self.push(fault, None, 0, Some(times));
    }

    /// Injects `fault` into `times` requests whose path starts with `path_prefix`, after
    /// letting the first `skip` of them through.
    pub fn inject_on(
        &self,
        path_prefix: impl Into<String>,
        fault: Fault,
        skip: usize,
        times: usize,
    ) {
        self.push(fault, Some(path_prefix.into()), skip, Some(times));
    }

    /// Injects `fault` into every request until [`Faults::clear`].
    pub fn always(&self, fault: Fault) {
        self.push(fault, None, 0, None);
    }

    /// Removes every fault.
    pub fn clear(&self) {
        lock(&self.rules).clear();
    }

    fn push(
        &self,
        fault: Fault,
        path_prefix: Option<String>,
        skip: usize,
        remaining: Option<usize>,
    ) {
        lock(&self.rules).push(FaultRule {
            fault,
            path_prefix,
            skip,
            remaining,
        });
    }

    /// The fault for a request to `path`, if any; uses up one of its `times`.
    fn take(&self, path: &str) -> Option<Fault> {
        let mut rules = lock(&self.rules);
        let index = rules.iter_mut().position(|rule| {
            if rule
                .path_prefix
                .as_deref()
                .is_some_and(|p| !path.starts_with(p))
            {
                return false;
            }
            if rule.skip > 0 {
                rule.skip -= 1;
                return false;
            }
            true
        })?;
        let rule = &mut rules[index];
        let fault = rule.fault.clone();
        if let Some(remaining) = &mut rule.remaining {
            *remaining -= 1;
            if *remaining == 0 {
                rules.remove(index);
            }
        }
        Some(fault)
    }
}

/// One request as the emulator received it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordedRequest {
    /// The method.
    pub method: String,
    /// The path and query, as sent (for Outline, including the secret prefix).
    pub uri: String,
    /// The headers, names lower-case.
    pub headers: Vec<(String, String)>,
}

impl RecordedRequest {
    /// The first value of a header.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Default)]
struct LogState {
    total: usize,
    recent: VecDeque<RecordedRequest>,
}

/// The requests an emulator received.
#[derive(Clone, Default)]
pub struct RequestLog {
    state: Arc<Mutex<LogState>>,
}

impl fmt::Debug for RequestLog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequestLog")
            .field("total", &lock(&self.state).total)
            .finish_non_exhaustive()
    }
}

impl RequestLog {
    /// How many requests arrived (all of them, not only those still kept).
    pub fn count(&self) -> usize {
        lock(&self.state).total
    }

    /// The most recent requests (up to 10 000), oldest first.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        lock(&self.state).recent.iter().cloned().collect()
    }

    /// Forgets every request and resets the count.
    pub fn clear(&self) {
        let mut state = lock(&self.state);
        state.total = 0;
        state.recent.clear();
    }

    fn record(&self, request: RecordedRequest) {
        let mut state = lock(&self.state);
        state.total += 1;
        if state.recent.len() == REQUEST_LOG_CAPACITY {
            state.recent.pop_front();
        }
        state.recent.push_back(request);
    }
}

#[derive(Clone)]
struct Interceptor {
    log: RequestLog,
    faults: Faults,
}

async fn intercept(
    State(interceptor): State<Interceptor>,
    request: Request,
    next: Next,
) -> Response {
    let uri = request.uri().path_and_query().map_or_else(
        || request.uri().path().to_owned(),
        |pq| pq.as_str().to_owned(),
    );
    interceptor.log.record(RecordedRequest {
        method: request.method().as_str().to_owned(),
        uri,
        headers: request
            .headers()
            .iter()
            .map(|(n, v)| {
                (
                    n.as_str().to_owned(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect(),
    });
    match interceptor.faults.take(request.uri().path()) {
        None => next.run(request).await,
        Some(Fault::Delay(delay)) => {
            tokio::time::sleep(delay).await;
            next.run(request).await
        }
        Some(Fault::Status {
            status,
            retry_after,
            body,
        }) => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let content_type = if body.starts_with('{') {
                "application/json"
            } else {
                "text/plain"
            };
            let mut response =
                (status, [(header::CONTENT_TYPE, content_type)], body).into_response();
            if let Some(seconds) = retry_after {
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
            }
            response
        }
        Some(Fault::DropConnection) => {
            let broken = futures_util::stream::iter([
                Ok(bytes::Bytes::from_static(b"{\"partial\":")),
                Err(io::Error::new(
                    io::ErrorKind::ConnectionReset,
                    "fault: connection dropped",
                )),
            ]);
            Response::builder()
                .status(StatusCode::OK)
                .header(header::CONTENT_TYPE, "application/json")
                .header(header::CONTENT_LENGTH, "4096")
                .body(Body::from_stream(broken))
                .unwrap_or_default()
        }
        Some(Fault::MalformedBody) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/json")],
            "{\"truncated\": [1, 2,",
        )
            .into_response(),
    }
}

/// A running emulator on `127.0.0.1`. Stops serving when dropped.
pub struct EmulatorServer {
    address: SocketAddr,
    scheme: &'static str,
    router: Router,
    #[cfg(feature = "tls")]
    tls: Option<tokio_rustls::TlsAcceptor>,
    log: RequestLog,
    faults: Faults,
    task: Option<JoinHandle<()>>,
}

impl fmt::Debug for EmulatorServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EmulatorServer")
            .field("address", &self.address)
            .field("scheme", &self.scheme)
            .field("running", &self.is_running())
            .finish_non_exhaustive()
    }
}

impl EmulatorServer {
    /// Serves `router` over plain HTTP on `127.0.0.1` with a free port.
    ///
    /// # Errors
    ///
    /// When no port can be bound.
    pub async fn start(router: Router) -> io::Result<Self> {
        Self::start_inner(router, "http", None).await
    }

    /// Serves `router` over HTTPS with `config` on `127.0.0.1` with a free port.
    ///
    /// # Errors
    ///
    /// When no port can be bound.
    #[cfg(feature = "tls")]
    pub async fn start_tls(router: Router, config: Arc<rustls::ServerConfig>) -> io::Result<Self> {
        Self::start_inner(
            router,
            "https",
            Some(tokio_rustls::TlsAcceptor::from(config)),
        )
        .await
    }

    async fn start_inner(
        router: Router,
        scheme: &'static str,
        #[cfg(feature = "tls")] tls: Option<tokio_rustls::TlsAcceptor>,
        #[cfg(not(feature = "tls"))] _tls: Option<std::convert::Infallible>,
    ) -> io::Result<Self> {
        let log = RequestLog::default();
        let faults = Faults::default();
        let router = router.layer(middleware::from_fn_with_state(
            Interceptor {
                log: log.clone(),
                faults: faults.clone(),
            },
            intercept,
        ));
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let address = listener.local_addr()?;
        let mut server = Self {
            address,
            scheme,
            router,
            #[cfg(feature = "tls")]
            tls,
            log,
            faults,
            task: None,
        };
        server.spawn(listener);
        Ok(server)
    }

    fn spawn(&mut self, listener: TcpListener) {
        let router = self.router.clone();
        #[cfg(feature = "tls")]
        let tls = self.tls.clone();
        self.task = Some(tokio::spawn(async move {
            // Connections live in this set, so aborting the server task closes them too.
            let mut connections = JoinSet::new();
            loop {
                tokio::select! {
                    accepted = listener.accept() => {
                        let Ok((stream, _)) = accepted else { continue };
                        let _ = stream.set_nodelay(true);
                        let service = TowerToHyperService::new(router.clone());
                        #[cfg(feature = "tls")]
                        let tls = tls.clone();
                        connections.spawn(async move {
                            let http = hyper::server::conn::http1::Builder::new();
                            #[cfg(feature = "tls")]
                            if let Some(acceptor) = tls {
                                // A failed handshake (a client rejecting the certificate)
                                // ends here, before any request is read.
                                if let Ok(stream) = acceptor.accept(stream).await {
                                    let _ = http.serve_connection(TokioIo::new(stream), service).await;
                                }
                                return;
                            }
                            let _ = http.serve_connection(TokioIo::new(stream), service).await;
                        });
                    }
                    Some(_) = connections.join_next(), if !connections.is_empty() => {}
                }
            }
        }));
    }

    /// The address it listens on.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// `http://127.0.0.1:PORT` (or `https://`), without a trailing slash.
    pub fn base_url(&self) -> String {
        format!("{}://{}", self.scheme, self.address)
    }

    /// The requests received so far.
    pub fn requests(&self) -> &RequestLog {
        &self.log
    }

    /// The faults to inject.
    pub fn faults(&self) -> &Faults {
        &self.faults
    }

    /// Whether it is serving.
    pub fn is_running(&self) -> bool {
        self.task.as_ref().is_some_and(|t| !t.is_finished())
    }

    /// Stops serving: the port is closed and open connections are dropped. State is kept.
    pub fn stop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }

    /// Serves again on the same port, with the same state, after [`EmulatorServer::stop`].
    ///
    /// # Errors
    ///
    /// When the port has been taken in the meantime.
    pub async fn restart(&mut self) -> io::Result<()> {
        self.stop();
        // The aborted task may still hold the listener for a moment.
        let mut attempts = 0;
        let listener = loop {
            match TcpListener::bind(self.address).await {
                Ok(listener) => break listener,
                Err(e) if attempts < 50 => {
                    attempts += 1;
                    let _ = e;
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Err(e) => return Err(e),
            }
        };
        self.spawn(listener);
        Ok(())
    }
}

impl Drop for EmulatorServer {
    fn drop(&mut self) {
        self.stop();
    }
}
