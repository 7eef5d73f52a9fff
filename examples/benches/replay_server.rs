//! `replay-server`: answers each request with bytes recorded from an emulator, as fast as
//! loopback allows, in a process of its own.
//!
//! The benchmark suite (`cargo xtask bench`) starts it as a child process, so that the CPU
//! time of the benchmark process is the client's alone: the server's parsing, routing and
//! writing are counted in this process, not there.
//!
//! It reads its routes from standard input, then serves until standard input closes:
//!
//! ```text
//! route <server> <plain|tls> <METHOD> <request-target> <length>\n<length bytes of response>
//! …
//! go\n
//! ```
//!
//! Each `<server>` gets a listener of its own on `127.0.0.1` (HTTPS with a generated
//! self-signed certificate for `tls`), and it answers on standard output, one line each:
//! `listen <server> <address>`, then `cert <SHA-256 of the certificate, upper-case hex>` and
//! `ready`.
//!
//! A request is answered with the response recorded for its method and request target, else
//! for its method and path without the query (a client whose query string carries the time
//! still gets its answer), else with `404`. Connections are kept alive, one thread each;
//! requests are read into a buffer reused for the whole connection and answered with the
//! pre-built response, so serving allocates nothing per request (rustls, for HTTPS, has
//! buffers of its own).

use std::collections::{BTreeMap, HashMap};
use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;

use metrics_emulators::SelfSignedCert;

const NOT_FOUND: &[u8] =
    b"HTTP/1.1 404 Not Found\r\ncontent-type: text/plain\r\ncontent-length: 21\r\n\r\nno recorded response\n";

/// The recorded responses of one server, keyed by `METHOD target` and by `METHOD path`.
#[derive(Default)]
struct Routes {
    exact: HashMap<Box<[u8]>, Arc<[u8]>>,
    by_path: HashMap<Box<[u8]>, Arc<[u8]>>,
}

impl Routes {
    fn insert(&mut self, method: &str, target: &str, response: Arc<[u8]>) {
        let path = target.split_once('?').map_or(target, |(path, _)| path);
        self.by_path
            .entry(format!("{method} {path}").into_bytes().into())
            .or_insert_with(|| Arc::clone(&response));
        self.exact
            .insert(format!("{method} {target}").into_bytes().into(), response);
    }

    /// The response for a request line's `METHOD target`.
    fn lookup(&self, method_and_target: &[u8]) -> Arc<[u8]> {
        if let Some(response) = self.exact.get(method_and_target) {
            return Arc::clone(response);
        }
        let without_query = method_and_target
            .iter()
            .position(|&b| b == b'?')
            .map_or(method_and_target, |i| &method_and_target[..i]);
        self.by_path
            .get(without_query)
            .map_or_else(|| Arc::from(NOT_FOUND), Arc::clone)
    }
}

struct Server {
    tls: bool,
    routes: Routes,
}

fn main() -> io::Result<()> {
    let stdin = io::stdin();
    let mut input = stdin.lock();
    let servers = read_routes(&mut input)?;

    let cert = SelfSignedCert::generate();
    let mut out = io::stdout().lock();
    for (name, server) in servers {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        writeln!(out, "listen {name} {}", listener.local_addr()?)?;
        let server = Arc::new(server);
        let config = Arc::clone(&cert.config);
        std::thread::Builder::new()
            .name(format!("accept-{name}"))
            .spawn(move || accept(&listener, &server, &config))?;
    }
    writeln!(out, "cert {}", cert.sha256_hex)?;
    writeln!(out, "ready")?;
    out.flush()?;
    drop(out);

    // Serve until the benchmark closes our standard input (or exits).
    let mut rest = Vec::new();
    let _ = input.read_to_end(&mut rest);
    Ok(())
}

fn invalid(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message)
}

fn read_routes(input: &mut impl io::BufRead) -> io::Result<BTreeMap<String, Server>> {
    let mut servers: BTreeMap<String, Server> = BTreeMap::new();
    let mut line = String::new();
    loop {
        line.clear();
        if input.read_line(&mut line)? == 0 {
            return Err(invalid("standard input ended before `go`".to_owned()));
        }
        let words: Vec<&str> = line.split_ascii_whitespace().collect();
        match words.as_slice() {
            ["go"] => return Ok(servers),
            ["route", name, scheme, method, target, length] => {
                let length: usize = length
                    .parse()
                    .map_err(|_| invalid(format!("bad length in {line:?}")))?;
                let mut response = vec![0; length];
                input.read_exact(&mut response)?;
                let server = servers.entry((*name).to_owned()).or_insert_with(|| Server {
                    tls: *scheme == "tls",
                    routes: Routes::default(),
                });
                server.routes.insert(method, target, response.into());
            }
            _ => return Err(invalid(format!("unexpected line {line:?}"))),
        }
    }
}

fn accept(listener: &TcpListener, server: &Arc<Server>, config: &Arc<rustls::ServerConfig>) {
    for stream in listener.incoming() {
        let Ok(stream) = stream else { continue };
        let _ = stream.set_nodelay(true);
        let server = Arc::clone(server);
        let config = Arc::clone(config);
        let _ = std::thread::Builder::new()
            .name("replay".to_owned())
            .spawn(move || {
                // A connection ends with an error as often as not (the client hangs up).
                let _ = serve_connection(stream, &server, config);
            });
    }
}

fn serve_connection(
    stream: TcpStream,
    server: &Server,
    config: Arc<rustls::ServerConfig>,
) -> io::Result<()> {
    if server.tls {
        let connection = rustls::ServerConnection::new(config).map_err(io::Error::other)?;
        serve(rustls::StreamOwned::new(connection, stream), &server.routes)
    } else {
        serve(stream, &server.routes)
    }
}

/// Answers the requests of one keep-alive connection until the client closes it.
fn serve<S: Read + Write>(mut stream: S, routes: &Routes) -> io::Result<()> {
    let mut buf = vec![0u8; 64 * 1024];
    // The unread bytes are `buf[start..end]`.
    let (mut start, mut end) = (0, 0);
    loop {
        let head_len = loop {
            if let Some(i) = find_head_end(&buf[start..end]) {
                break i;
            }
            if start > 0 {
                buf.copy_within(start..end, 0);
                end -= start;
                start = 0;
            }
            if end == buf.len() {
                buf.resize(buf.len() * 2, 0);
            }
            let n = stream.read(&mut buf[end..])?;
            if n == 0 {
                return Ok(());
            }
            end += n;
        };
        let head = &buf[start..start + head_len];
        let (method_and_target, body_len) = parse_head(head)?;
        let response = routes.lookup(method_and_target);
        start += head_len;

        // Skip the body: what is buffered, then whatever is still on the wire.
        let buffered = (end - start).min(body_len);
        start += buffered;
        let mut unread = body_len - buffered;
        if start == end {
            (start, end) = (0, 0);
        }
        while unread > 0 {
            let n = stream.read(&mut buf)?;
            if n == 0 {
                return Ok(());
            }
            if n <= unread {
                unread -= n;
            } else {
                // The next request began in the same read.
                (start, end) = (unread, n);
                unread = 0;
            }
        }

        stream.write_all(&response)?;
        stream.flush()?;
    }
}

/// The length of the head, `\r\n\r\n` included, when it is all there.
fn find_head_end(bytes: &[u8]) -> Option<usize> {
    bytes
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|i| i + 4)
}

/// `METHOD target` of the request line, and the body's length.
fn parse_head(head: &[u8]) -> io::Result<(&[u8], usize)> {
    let line_end = head
        .windows(2)
        .position(|w| w == b"\r\n")
        .unwrap_or(head.len());
    let request_line = &head[..line_end];
    // `METHOD target HTTP/1.1`: everything before the last space.
    let method_and_target = request_line
        .iter()
        .rposition(|&b| b == b' ')
        .map_or(request_line, |i| &request_line[..i]);
    let mut body_len = 0;
    for line in head[line_end..].split(|&b| b == b'\n') {
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        let (name, value) = (line[..colon].trim_ascii(), line[colon + 1..].trim_ascii());
        if name.eq_ignore_ascii_case(b"content-length") {
            body_len = std::str::from_utf8(value)
                .ok()
                .and_then(|v| v.parse().ok())
                .ok_or_else(|| invalid("bad content-length".to_owned()))?;
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            return Err(invalid(
                "chunked request bodies are not replayed".to_owned(),
            ));
        }
    }
    Ok((method_and_target, body_len))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn routes() -> Routes {
        let mut routes = Routes::default();
        routes.insert("GET", "/a?x=1", Arc::from(&b"first"[..]));
        routes.insert("POST", "/b", Arc::from(&b"second"[..]));
        routes
    }

    #[test]
    fn exact_target_then_path_then_not_found() {
        let routes = routes();
        assert_eq!(&*routes.lookup(b"GET /a?x=1"), b"first");
        assert_eq!(&*routes.lookup(b"GET /a?x=2"), b"first");
        assert_eq!(&*routes.lookup(b"POST /b"), b"second");
        assert_eq!(&*routes.lookup(b"GET /b"), NOT_FOUND);
    }

    #[test]
    fn head_gives_method_target_and_body_length() {
        let head = b"POST /b?q HTTP/1.1\r\nHost: x\r\nContent-Length: 12\r\n\r\n";
        assert_eq!(find_head_end(head), Some(head.len()));
        let (key, len) = parse_head(head).unwrap();
        assert_eq!((key, len), (&b"POST /b?q"[..], 12));
        assert!(parse_head(b"POST / HTTP/1.1\r\ntransfer-encoding: chunked\r\n\r\n").is_err());
    }

    /// Two keep-alive requests, the second with a body split across reads.
    #[test]
    fn serves_keep_alive_requests_with_bodies() {
        let mut routes = routes();
        routes.insert("GET", "/a", Arc::from(&b"A"[..]));
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap();
        let server = std::thread::spawn(move || {
            let (stream, _) = listener.accept().unwrap();
            serve(stream, &routes).unwrap();
        });
        let mut client = TcpStream::connect(address).unwrap();
        client
            .write_all(b"GET /a HTTP/1.1\r\n\r\nPOST /b HTTP/1.1\r\ncontent-length: 5\r\n\r\nab")
            .unwrap();
        let mut got = [0u8; 1];
        client.read_exact(&mut got).unwrap();
        assert_eq!(&got, b"A");
        client.write_all(b"cde").unwrap();
        let mut got = [0u8; 6];
        client.read_exact(&mut got).unwrap();
        assert_eq!(&got, b"second");
        drop(client);
        server.join().unwrap();
    }
}
