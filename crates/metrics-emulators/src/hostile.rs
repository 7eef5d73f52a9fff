//! A raw-socket server that misbehaves on purpose, for testing what a client does when a
//! server (or anything between it and the client) is broken or hostile.
//!
//! The emulators answer the way the real servers do; this one answers the way nothing
//! should: it closes connections without a word, never answers, trickles a body one byte a
//! second, resets the connection in the middle of a body, sends HTML or the wrong JSON with
//! `200 OK`, sends bodies and headers far beyond any sane size, compresses what nobody asked
//! to be compressed, redirects to another host, asks to wait an hour, and echoes back
//! everything the client sent, credentials included. It speaks HTTP/1.1 directly on a tokio
//! `TcpListener` (optionally behind TLS), so none of these answers is smoothed over by a
//! server framework, and it keeps the raw bytes of every request it read, so that a test can
//! check what the client sent as well as what it made of the answer.
//!
//! ```
//! # async fn run() -> std::io::Result<()> {
//! use metrics_emulators::hostile::{Fault, HostileServer};
//!
//! let server = HostileServer::start(Fault::status(503).with_retry_after("3600")).await?;
//! let url = server.url(); // http://127.0.0.1:PORT
//! // … point a client at `url`, call it, then:
//! assert_eq!(server.connections(), 0);
//! assert_eq!(server.requests(), 0);
//! # Ok(()) }
//! ```

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// The largest request head (request line and headers) the server reads before it gives up
/// on a connection.
const MAX_REQUEST_HEAD: usize = 64 * 1024;
/// The largest request body the server reads; a client sending more is not what is tested.
const MAX_REQUEST_BODY: usize = 1024 * 1024;
/// How long [`Fault::ResetMidBody`] waits between the partial body and the reset, so that
/// the client has read the status and the first bytes: the reset must hit a body, not a
/// response the client has not yet seen.
const RESET_DELAY: Duration = Duration::from_millis(200);

/// What the server does with a request (or a connection).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Fault {
    /// Nothing listens at the address: the port was bound once, to be free, then released.
    /// Every connection attempt is refused.
    Refused,
    /// Reads the request (after the TLS handshake, on a TLS server), then closes the
    /// connection cleanly without a single byte of answer.
    CloseAtOnce,
    /// Reads the request and never answers, holding the connection open until the client
    /// gives up (or the server is dropped).
    NeverAnswer,
    /// `200 OK` with `Content-Length: 64` and a body that comes one byte a second.
    SlowBody,
    /// `200 OK` with a `Content-Length` of 4096, 64 bytes of body, then a TCP reset (`RST`,
    /// not `FIN`).
    ResetMidBody,
    /// `200 OK` with a `Content-Length` of 4096, 64 bytes of body, then a clean close: the
    /// body ends early.
    ShortBody,
    /// `200 OK`, `Content-Type: text/html`: a captive portal's or a proxy's login page.
    Html200,
    /// `200 OK` with JSON that is not the shape of any API's answer,
    /// `{"error":"maintenance"}`.
    WrongShape200,
    /// `200 OK` with a JSON-looking body of `bytes` bytes, streamed in 64 KiB pieces; with
    /// `Content-Length` when `declared`, else chunked.
    Oversized {
        /// The body's size.
        bytes: u64,
        /// Whether `Content-Length` says so up front.
        declared: bool,
    },
    /// `200 OK` with about `bytes` bytes of headers (many headers of 1 KiB) before an
    /// empty JSON body.
    HugeHeaders {
        /// About how many bytes of headers.
        bytes: usize,
    },
    /// `200 OK` with `Content-Encoding: gzip` and a gzip body of `{}`, whatever the request's
    /// `Accept-Encoding` said.
    UnaskedGzip,
    /// A redirect (`301`, `302`, `303`, `307`, `308`) to `location` followed by the request's
    /// own path and query, the way a misconfigured proxy sends every path elsewhere.
    Redirect {
        /// The status.
        status: u16,
        /// Where to, without the path: `http://127.0.0.2:PORT`.
        location: String,
    },
    /// Any status with an optional `Retry-After` and a body.
    Status {
        /// The status.
        status: u16,
        /// The `Retry-After` value, verbatim (`"3600"`, an HTTP date, garbage).
        retry_after: Option<String>,
        /// The body, sent with `Content-Type: application/json` when it starts with `{`.
        body: String,
    },
    /// Answers `status` with everything the client sent echoed back: the request line, the
    /// path and every header, in a JSON body (`message`, `request`, `path`, `headers`) and
    /// in an `X-Echo` response header. The way a debugging proxy or a careless error page
    /// hands a client's credentials back to it.
    Echo {
        /// The status.
        status: u16,
    },
    /// Like [`Fault::Echo`], with the request echoed as plain text (the request line, then
    /// one header a line), the way a debugging endpoint or a text error page shows it.
    EchoText {
        /// The status.
        status: u16,
    },
}

impl Fault {
    /// [`Fault::Status`] with an empty JSON error body and no `Retry-After`.
    pub fn status(status: u16) -> Self {
        Self::Status {
            status,
            retry_after: None,
            body: format!(r#"{{"code":"Hostile","message":"hostile status {status}"}}"#),
        }
    }

    /// Adds `Retry-After: value` to a [`Fault::Status`] (no effect on other faults).
    #[must_use]
    pub fn with_retry_after(mut self, value: impl Into<String>) -> Self {
        if let Self::Status { retry_after, .. } = &mut self {
            *retry_after = Some(value.into());
        }
        self
    }

    /// [`Fault::Echo`] with this status.
    pub fn echo(status: u16) -> Self {
        Self::Echo { status }
    }

    /// [`Fault::Redirect`] with this status to `location` (scheme, host and port).
    pub fn redirect(status: u16, location: impl Into<String>) -> Self {
        Self::Redirect {
            status,
            location: location.into(),
        }
    }

    /// A short stable name, for test messages.
    pub fn name(&self) -> String {
        match self {
            Self::Refused => "refused".to_owned(),
            Self::CloseAtOnce => "close_at_once".to_owned(),
            Self::NeverAnswer => "never_answer".to_owned(),
            Self::SlowBody => "slow_body".to_owned(),
            Self::ResetMidBody => "reset_mid_body".to_owned(),
            Self::ShortBody => "short_body".to_owned(),
            Self::Html200 => "html_200".to_owned(),
            Self::WrongShape200 => "wrong_shape_200".to_owned(),
            Self::Oversized { declared, .. } => format!(
                "oversized_{}",
                if *declared { "with_length" } else { "chunked" }
            ),
            Self::HugeHeaders { .. } => "huge_headers".to_owned(),
            Self::UnaskedGzip => "unasked_gzip".to_owned(),
            Self::Redirect { status, .. } => format!("redirect_{status}"),
            Self::Status {
                status,
                retry_after,
                ..
            } => match retry_after {
                Some(wait) => format!("status_{status}_retry_after_{wait}"),
                None => format!("status_{status}"),
            },
            Self::Echo { status } => format!("echo_{status}"),
            Self::EchoText { status } => format!("echo_text_{status}"),
        }
    }
}

/// Which fault a request gets.
#[derive(Clone, Debug)]
enum Plan {
    /// The n-th request (counted over the server's life) gets the n-th fault, and every
    /// request after the script the last one.
    PerRequest(Vec<Fault>),
    /// Every request on the n-th connection gets the n-th fault (the last one after the
    /// script).
    PerConnection(Vec<Fault>),
}

impl Plan {
    fn faults(&self) -> &[Fault] {
        match self {
            Self::PerRequest(faults) | Self::PerConnection(faults) => faults,
        }
    }

    fn pick(&self, connection: usize, request: usize) -> Fault {
        let (faults, index) = match self {
            Self::PerRequest(faults) => (faults, request),
            Self::PerConnection(faults) => (faults, connection),
        };
        faults
            .get(index)
            .or_else(|| faults.last())
            .cloned()
            .unwrap_or(Fault::CloseAtOnce)
    }
}

/// What the server saw.
#[derive(Default)]
struct Seen {
    connections: AtomicUsize,
    requests: AtomicUsize,
    body_bytes_sent: AtomicU64,
    raw: Mutex<Vec<Vec<u8>>>,
}

/// Configures a [`HostileServer`].
#[must_use]
pub struct HostileServerBuilder {
    plan: Plan,
    #[cfg(feature = "tls")]
    tls: Option<crate::SelfSignedCert>,
}

impl fmt::Debug for HostileServerBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut debug = f.debug_struct("HostileServerBuilder");
        debug.field("plan", &self.plan);
        #[cfg(feature = "tls")]
        debug.field("tls", &self.tls.is_some());
        debug.finish()
    }
}

impl HostileServerBuilder {
    /// Every request gets `fault`.
    pub fn with_fault(mut self, fault: Fault) -> Self {
        self.plan = Plan::PerRequest(vec![fault]);
        self
    }

    /// The n-th request gets the n-th fault, and every later request the last one (for
    /// example a 503 first, then an echo).
    pub fn with_request_script(mut self, faults: impl IntoIterator<Item = Fault>) -> Self {
        self.plan = Plan::PerRequest(faults.into_iter().collect());
        self
    }

    /// Every request on the n-th connection gets the n-th fault, and connections after the
    /// script the last one.
    pub fn with_connection_script(mut self, faults: impl IntoIterator<Item = Fault>) -> Self {
        self.plan = Plan::PerConnection(faults.into_iter().collect());
        self
    }

    /// Serves HTTPS with this certificate (pin it with its `sha256_hex`).
    #[cfg(feature = "tls")]
    #[cfg_attr(docsrs, doc(cfg(feature = "tls")))]
    pub fn with_tls(mut self, cert: crate::SelfSignedCert) -> Self {
        self.tls = Some(cert);
        self
    }

    /// Binds `127.0.0.1:0` and starts serving. With [`Fault::Refused`] as the only fault,
    /// the port is bound and released at once, so nothing listens there.
    ///
    /// # Errors
    ///
    /// When the port cannot be bound.
    pub async fn start(self) -> io::Result<HostileServer> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let address = listener.local_addr()?;
        #[cfg(feature = "tls")]
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        #[cfg(not(feature = "tls"))]
        let scheme = "http";
        let seen = Arc::new(Seen::default());
        let refuse = self.plan.faults().iter().all(|f| *f == Fault::Refused);
        let task = if refuse {
            drop(listener);
            None
        } else {
            #[cfg(feature = "tls")]
            let acceptor = self
                .tls
                .map(|cert| tokio_rustls::TlsAcceptor::from(cert.config));
            let seen = Arc::clone(&seen);
            let plan = Arc::new(self.plan);
            Some(tokio::spawn(async move {
                let mut connection_index = 0usize;
                while let Ok((stream, _)) = listener.accept().await {
                    let connection = connection_index;
                    connection_index += 1;
                    seen.connections.fetch_add(1, Ordering::SeqCst);
                    let seen = Arc::clone(&seen);
                    let plan = Arc::clone(&plan);
                    #[cfg(feature = "tls")]
                    let acceptor = acceptor.clone();
                    tokio::spawn(async move {
                        #[cfg(feature = "tls")]
                        let stream = match acceptor {
                            Some(acceptor) => match acceptor.accept(stream).await {
                                Ok(tls) => Conn::Tls(Box::new(tls)),
                                // A client that rejects the certificate: nothing to serve.
                                Err(_) => return,
                            },
                            None => Conn::Plain(stream),
                        };
                        #[cfg(not(feature = "tls"))]
                        let stream = Conn::Plain(stream);
                        serve_connection(stream, connection, &plan, &seen).await;
                    });
                }
            }))
        };
        Ok(HostileServer {
            address,
            scheme,
            seen,
            task,
        })
    }
}

/// A misbehaving HTTP/1.1 server on `127.0.0.1` (see the [module docs](self)). Stops when
/// dropped.
pub struct HostileServer {
    address: SocketAddr,
    scheme: &'static str,
    seen: Arc<Seen>,
    task: Option<JoinHandle<()>>,
}

impl fmt::Debug for HostileServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HostileServer")
            .field("url", &self.url())
            .field("connections", &self.connections())
            .field("requests", &self.requests())
            .finish_non_exhaustive()
    }
}

impl Drop for HostileServer {
    fn drop(&mut self) {
        if let Some(task) = &self.task {
            task.abort();
        }
    }
}

impl HostileServer {
    /// A builder: every request gets [`Fault::CloseAtOnce`] unless told otherwise.
    pub fn builder() -> HostileServerBuilder {
        HostileServerBuilder {
            plan: Plan::PerRequest(vec![Fault::CloseAtOnce]),
            #[cfg(feature = "tls")]
            tls: None,
        }
    }

    /// A plain-HTTP server answering every request with `fault`.
    ///
    /// # Errors
    ///
    /// When the port cannot be bound.
    pub async fn start(fault: Fault) -> io::Result<Self> {
        Self::builder().with_fault(fault).start().await
    }

    /// An HTTPS server with `cert`, answering every request with `fault`.
    ///
    /// # Errors
    ///
    /// When the port cannot be bound.
    #[cfg(feature = "tls")]
    #[cfg_attr(docsrs, doc(cfg(feature = "tls")))]
    pub async fn start_tls(fault: Fault, cert: crate::SelfSignedCert) -> io::Result<Self> {
        Self::builder()
            .with_fault(fault)
            .with_tls(cert)
            .start()
            .await
    }

    /// The address.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// `http://127.0.0.1:PORT` (or `https://`), without a trailing slash.
    pub fn url(&self) -> String {
        format!("{}://{}", self.scheme, self.address)
    }

    /// How many connections were accepted (TLS handshakes that failed included).
    pub fn connections(&self) -> usize {
        self.seen.connections.load(Ordering::SeqCst)
    }

    /// How many request heads were read whole.
    pub fn requests(&self) -> usize {
        self.seen.requests.load(Ordering::SeqCst)
    }

    /// How many body bytes the server managed to write (for the oversized faults: a client
    /// that stops reading at its limit lets the server write little more than the socket
    /// buffers hold).
    pub fn body_bytes_sent(&self) -> u64 {
        self.seen.body_bytes_sent.load(Ordering::SeqCst)
    }

    /// The raw bytes of every request read (head and body), in order.
    pub fn received(&self) -> Vec<Vec<u8>> {
        self.seen
            .raw
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Every request read, as text (invalid UTF-8 replaced), one after another.
    pub fn received_text(&self) -> String {
        self.received()
            .iter()
            .map(|raw| String::from_utf8_lossy(raw).into_owned())
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// A connection, plain or TLS, keeping the TCP socket reachable (for the reset).
enum Conn {
    Plain(TcpStream),
    #[cfg(feature = "tls")]
    Tls(Box<tokio_rustls::server::TlsStream<TcpStream>>),
}

impl Conn {
    fn tcp(&self) -> &TcpStream {
        match self {
            Self::Plain(tcp) => tcp,
            #[cfg(feature = "tls")]
            Self::Tls(tls) => tls.get_ref().0,
        }
    }
}

impl AsyncRead for Conn {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(tcp) => Pin::new(tcp).poll_read(cx, buf),
            #[cfg(feature = "tls")]
            Self::Tls(tls) => Pin::new(tls.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Conn {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Self::Plain(tcp) => Pin::new(tcp).poll_write(cx, buf),
            #[cfg(feature = "tls")]
            Self::Tls(tls) => Pin::new(tls.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(tcp) => Pin::new(tcp).poll_flush(cx),
            #[cfg(feature = "tls")]
            Self::Tls(tls) => Pin::new(tls.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(tcp) => Pin::new(tcp).poll_shutdown(cx),
            #[cfg(feature = "tls")]
            Self::Tls(tls) => Pin::new(tls.as_mut()).poll_shutdown(cx),
        }
    }
}

/// A request as read off the wire.
struct RawRequest {
    line: String,
    path: String,
    headers: Vec<(String, String)>,
    /// The client asked to close the connection after the answer (`Connection: close`).
    close: bool,
}

/// Serves requests on one connection until a fault ends it or the client closes it.
async fn serve_connection(mut conn: Conn, connection: usize, plan: &Plan, seen: &Seen) {
    let mut buffer = Vec::new();
    loop {
        let Some(request) = read_request(&mut conn, &mut buffer, seen).await else {
            return;
        };
        let index = seen.requests.fetch_add(1, Ordering::SeqCst);
        let fault = plan.pick(connection, index);
        // A fault that ended the connection has ended it its own way (a reset must stay a
        // reset); a complete answer closes only when the client asked.
        if !answer(&mut conn, &fault, &request, seen).await {
            return;
        }
        if request.close {
            let _ = conn.shutdown().await;
            return;
        }
    }
}

/// Reads one request (head and `Content-Length` body) and records its raw bytes. `None`
/// when the client closed the connection or sent something that is not a request.
async fn read_request(conn: &mut Conn, buffer: &mut Vec<u8>, seen: &Seen) -> Option<RawRequest> {
    let head_end = loop {
        if let Some(at) = find(buffer, b"\r\n\r\n") {
            break at + 4;
        }
        if buffer.len() > MAX_REQUEST_HEAD {
            return None;
        }
        let mut chunk = [0u8; 8192];
        let read = conn.read(&mut chunk).await.ok()?;
        if read == 0 {
            return None;
        }
        buffer.extend_from_slice(&chunk[..read]);
    };
    let head = String::from_utf8_lossy(&buffer[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let line = lines.next().unwrap_or_default().to_owned();
    let path = line.split(' ').nth(1).unwrap_or_default().to_owned();
    let headers: Vec<(String, String)> = lines
        .filter(|l| !l.is_empty())
        .filter_map(|l| l.split_once(':'))
        .map(|(name, value)| (name.trim().to_owned(), value.trim().to_owned()))
        .collect();
    let body_length = headers
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, value)| value.parse::<usize>().ok())
        .unwrap_or(0)
        .min(MAX_REQUEST_BODY);
    while buffer.len() < head_end + body_length {
        let mut chunk = [0u8; 8192];
        let read = conn.read(&mut chunk).await.ok()?;
        if read == 0 {
            return None;
        }
        buffer.extend_from_slice(&chunk[..read]);
    }
    let close = headers.iter().any(|(name, value)| {
        name.eq_ignore_ascii_case("connection") && value.eq_ignore_ascii_case("close")
    });
    let raw: Vec<u8> = buffer.drain(..head_end + body_length).collect();
    seen.raw
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .push(raw);
    Some(RawRequest {
        line,
        path,
        headers,
        close,
    })
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}

/// Answers one request with `fault`. `true` when the connection may serve another request.
async fn answer(conn: &mut Conn, fault: &Fault, request: &RawRequest, seen: &Seen) -> bool {
    let sent = |n: usize| {
        seen.body_bytes_sent.fetch_add(n as u64, Ordering::SeqCst);
    };
    match fault {
        Fault::Refused | Fault::CloseAtOnce => {
            let _ = conn.shutdown().await;
            false
        }
        Fault::NeverAnswer => {
            // Hold the connection until the client closes it (or the runtime stops).
            let mut sink = [0u8; 1024];
            while let Ok(read) = conn.read(&mut sink).await {
                if read == 0 {
                    break;
                }
            }
            false
        }
        Fault::SlowBody => {
            let head = response_head(200, "OK", &[("Content-Type", "application/json")], 64);
            if conn.write_all(&head).await.is_err() {
                return false;
            }
            // 64 bytes of valid JSON, so that only the pace is at fault.
            let body = format!(r#"{{"slow":"{}"}}"#, " ".repeat(64 - 12));
            for byte in body.as_bytes() {
                if conn.write_all(&[*byte]).await.is_err() || conn.flush().await.is_err() {
                    return false;
                }
                sent(1);
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            true
        }
        Fault::ResetMidBody | Fault::ShortBody => {
            let head = response_head(200, "OK", &[("Content-Type", "application/json")], 4096);
            let partial = [b' '; 64];
            if conn.write_all(&head).await.is_err()
                || conn.write_all(&partial).await.is_err()
                || conn.flush().await.is_err()
            {
                return false;
            }
            sent(partial.len());
            if *fault == Fault::ResetMidBody {
                tokio::time::sleep(RESET_DELAY).await;
                // SO_LINGER 0: closing sends RST instead of FIN.
                let _ = conn.tcp().set_zero_linger();
            } else {
                let _ = conn.shutdown().await;
            }
            false
        }
        Fault::Html200 => {
            let body = "<!DOCTYPE html>\n<html><head><title>Sign in</title></head>\
                        <body><h1>Please sign in to continue</h1></body></html>\n";
            write_response(
                conn,
                200,
                "OK",
                &[("Content-Type", "text/html")],
                body.as_bytes(),
            )
            .await
        }
        Fault::WrongShape200 => {
            write_response(
                conn,
                200,
                "OK",
                &[("Content-Type", "application/json")],
                br#"{"error":"maintenance"}"#,
            )
            .await
        }
        Fault::Oversized { bytes, declared } => {
            let head = if *declared {
                response_head(200, "OK", &[("Content-Type", "application/json")], *bytes)
            } else {
                raw_head(
                    200,
                    "OK",
                    &[
                        ("Content-Type", "application/json"),
                        ("Transfer-Encoding", "chunked"),
                    ],
                )
            };
            if conn.write_all(&head).await.is_err() {
                return false;
            }
            let piece = vec![b' '; 64 * 1024];
            let mut left = *bytes;
            while left > 0 {
                let n = usize::try_from(left.min(piece.len() as u64)).unwrap_or(piece.len());
                let written = if *declared {
                    conn.write_all(&piece[..n]).await
                } else {
                    let mut chunk = format!("{n:x}\r\n").into_bytes();
                    chunk.extend_from_slice(&piece[..n]);
                    chunk.extend_from_slice(b"\r\n");
                    conn.write_all(&chunk).await
                };
                if written.is_err() {
                    return false;
                }
                sent(n);
                left -= n as u64;
            }
            if !*declared && conn.write_all(b"0\r\n\r\n").await.is_err() {
                return false;
            }
            conn.flush().await.is_ok()
        }
        Fault::HugeHeaders { bytes } => {
            let filler = "h".repeat(1000);
            let mut head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n".to_vec();
            for index in 0..bytes.div_ceil(1024) {
                head.extend_from_slice(format!("X-Filler-{index}: {filler}\r\n").as_bytes());
            }
            head.extend_from_slice(b"Content-Length: 2\r\n\r\n{}");
            conn.write_all(&head).await.is_ok() && conn.flush().await.is_ok()
        }
        Fault::UnaskedGzip => {
            write_response(
                conn,
                200,
                "OK",
                &[
                    ("Content-Type", "application/json"),
                    ("Content-Encoding", "gzip"),
                ],
                &gzip_stored(b"{}"),
            )
            .await
        }
        Fault::Redirect { status, location } => {
            let target = format!("{location}{}", request.path);
            write_response(
                conn,
                *status,
                "Redirect",
                &[("Location", &target), ("Content-Type", "text/plain")],
                format!("moved to {target}").as_bytes(),
            )
            .await
        }
        Fault::Status {
            status,
            retry_after,
            body,
        } => {
            let mut headers = vec![(
                "Content-Type",
                if body.starts_with('{') {
                    "application/json"
                } else {
                    "text/plain"
                },
            )];
            if let Some(wait) = retry_after {
                headers.push(("Retry-After", wait));
            }
            write_response(conn, *status, "Hostile", &headers, body.as_bytes()).await
        }
        Fault::Echo { status } => {
            let (header, body) = echo(request);
            write_response(
                conn,
                *status,
                "Echo",
                &[("Content-Type", "application/json"), ("X-Echo", &header)],
                body.as_bytes(),
            )
            .await
        }
        Fault::EchoText { status } => {
            let (header, _) = echo(request);
            let mut body = format!("{}\n", request.line);
            for (name, value) in &request.headers {
                body.push_str(&format!("{name}: {value}\n"));
            }
            write_response(
                conn,
                *status,
                "Echo",
                &[("Content-Type", "text/plain"), ("X-Echo", &header)],
                body.as_bytes(),
            )
            .await
        }
    }
}

/// The `X-Echo` header value and the JSON body of an echo.
fn echo(request: &RawRequest) -> (String, String) {
    let header_lines: Vec<String> = request
        .headers
        .iter()
        .map(|(name, value)| format!("{name}: {value}"))
        .collect();
    let everything = format!(
        "{} | path {} | {}",
        request.line,
        request.path,
        header_lines.join(" | ")
    );
    // A header value must be visible ASCII or spaces.
    let header: String = everything
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() || c == ' ' {
                c
            } else {
                '?'
            }
        })
        .collect();
    let body = format!(
        r#"{{"code":"Echo","message":{},"request":{},"path":{},"headers":{}}}"#,
        json_string(&everything),
        json_string(&request.line),
        json_string(&request.path),
        json_string(&header_lines.join("\n")),
    );
    (header, body)
}

fn json_string(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if u32::from(c) < 0x20 => out.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn raw_head(status: u16, reason: &str, headers: &[(&str, &str)]) -> Vec<u8> {
    let mut head = format!("HTTP/1.1 {status} {reason}\r\n");
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    head.into_bytes()
}

fn response_head(status: u16, reason: &str, headers: &[(&str, &str)], length: u64) -> Vec<u8> {
    let length = length.to_string();
    let mut all = headers.to_vec();
    all.push(("Content-Length", &length));
    raw_head(status, reason, &all)
}

async fn write_response(
    conn: &mut Conn,
    status: u16,
    reason: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> bool {
    let mut response = response_head(status, reason, headers, body.len() as u64);
    response.extend_from_slice(body);
    conn.write_all(&response).await.is_ok() && conn.flush().await.is_ok()
}

/// `data` in a gzip member with one stored (uncompressed) deflate block: valid gzip without
/// a compression library.
fn gzip_stored(data: &[u8]) -> Vec<u8> {
    let length = u16::try_from(data.len()).expect("small bodies only");
    let mut out = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];
    out.push(1); // last block, stored
    out.extend_from_slice(&length.to_le_bytes());
    out.extend_from_slice(&(!length).to_le_bytes());
    out.extend_from_slice(data);
    out.extend_from_slice(&crc32(data).to_le_bytes());
    out.extend_from_slice(&u32::from(length).to_le_bytes());
    out
}

fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for byte in data {
        crc ^= u32::from(*byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32_of_a_known_text() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
    }

    #[test]
    fn a_script_repeats_its_last_fault() {
        let plan = Plan::PerRequest(vec![Fault::status(503), Fault::echo(400)]);
        assert_eq!(plan.pick(0, 0), Fault::status(503));
        assert_eq!(plan.pick(0, 1), Fault::echo(400));
        assert_eq!(plan.pick(0, 7), Fault::echo(400));
        let plan = Plan::PerConnection(vec![Fault::CloseAtOnce, Fault::Html200]);
        assert_eq!(plan.pick(0, 5), Fault::CloseAtOnce);
        assert_eq!(plan.pick(3, 0), Fault::Html200);
    }

    /// Sends one raw request and reads until the server closes or resets.
    async fn exchange(server: &HostileServer, request: &str) -> (Vec<u8>, io::Result<()>) {
        let mut stream = TcpStream::connect(server.address()).await.unwrap();
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut answer = Vec::new();
        let outcome = stream.read_to_end(&mut answer).await.map(drop);
        (answer, outcome)
    }

    const GET: &str = "GET /s3cr3t/path?q=1 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer t0k3n\r\nConnection: close\r\n\r\n";

    #[tokio::test]
    async fn refused_means_nothing_listens() {
        let server = HostileServer::start(Fault::Refused).await.unwrap();
        assert!(TcpStream::connect(server.address()).await.is_err());
        assert_eq!(server.connections(), 0);
    }

    #[tokio::test]
    async fn the_echo_hands_back_every_header_and_records_the_request() {
        let server = HostileServer::start(Fault::echo(418)).await.unwrap();
        let (answer, _) = exchange(&server, GET).await;
        let answer = String::from_utf8(answer).unwrap();
        assert!(answer.starts_with("HTTP/1.1 418 "), "{answer}");
        let echo_header = answer.lines().find(|l| l.starts_with("X-Echo: ")).unwrap();
        assert!(
            echo_header.contains("Authorization: Bearer t0k3n"),
            "{echo_header}"
        );
        assert!(
            echo_header.contains("path /s3cr3t/path?q=1"),
            "{echo_header}"
        );
        let body = answer.split("\r\n\r\n").nth(1).unwrap();
        let body: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(body["request"], "GET /s3cr3t/path?q=1 HTTP/1.1");
        assert_eq!(server.received(), vec![GET.as_bytes().to_vec()]);
        assert_eq!((server.connections(), server.requests()), (1, 1));
    }

    #[tokio::test]
    async fn a_short_body_ends_early_and_a_reset_resets() {
        let short = HostileServer::start(Fault::ShortBody).await.unwrap();
        let (answer, outcome) = exchange(&short, GET).await;
        assert!(outcome.is_ok());
        let text = String::from_utf8_lossy(&answer);
        assert!(text.contains("Content-Length: 4096"), "{text}");
        assert_eq!(answer.len() - (find(&answer, b"\r\n\r\n").unwrap() + 4), 64);

        let reset = HostileServer::start(Fault::ResetMidBody).await.unwrap();
        let (_, outcome) = exchange(&reset, GET).await;
        assert_eq!(outcome.unwrap_err().kind(), io::ErrorKind::ConnectionReset);
    }

    #[tokio::test]
    async fn a_connection_script_gives_each_connection_its_fault() {
        let server = HostileServer::builder()
            .with_connection_script([Fault::CloseAtOnce, Fault::status(503).with_retry_after("7")])
            .start()
            .await
            .unwrap();
        let (first, _) = exchange(&server, GET).await;
        assert!(first.is_empty());
        for _ in 0..2 {
            let (answer, _) = exchange(&server, GET).await;
            let text = String::from_utf8(answer).unwrap();
            assert!(text.starts_with("HTTP/1.1 503 "), "{text}");
            assert!(text.contains("Retry-After: 7\r\n"), "{text}");
        }
        assert_eq!((server.connections(), server.requests()), (3, 3));
    }

    #[test]
    fn the_unasked_gzip_body_is_valid_gzip() {
        let body = gzip_stored(b"{}");
        assert_eq!(&body[..3], &[0x1f, 0x8b, 8]);
        assert_eq!(&body[15..17], b"{}");
        assert_eq!(body.len(), 10 + 5 + 2 + 8);
    }

    #[test]
    fn echo_keeps_header_values_sendable() {
        let request = RawRequest {
            line: "GET /s3cr3t HTTP/1.1".to_owned(),
            path: "/s3cr3t".to_owned(),
            headers: vec![("authorization".to_owned(), "Bearer \u{e9}t\"k".to_owned())],
            close: false,
        };
        let (header, body) = echo(&request);
        assert!(header.contains("GET /s3cr3t HTTP/1.1"));
        assert!(header.chars().all(|c| c.is_ascii_graphic() || c == ' '));
        let parsed: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(parsed["path"], "/s3cr3t");
        assert!(parsed["message"].as_str().unwrap().contains("Bearer"));
    }
}
