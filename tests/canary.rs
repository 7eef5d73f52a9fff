//! A canary secret in every credential position of every client, against a server that
//! echoes whatever it is sent and against every other fault: the canary must never show in
//! the `Debug` of a builder or a client, the `Display` of a client, the `Display` or `Debug`
//! of any error or anything in its `source()` chain, or any `tracing` output at TRACE.
//!
//! Every credential holds the marker [`MARK`]; Basic credentials are also looked for in
//! their base64 form, the way they travel in `Authorization`.

#[path = "support/hostile_clients.rs"]
mod clients;

use std::fmt::Write as _;
use std::io;
use std::sync::{Arc, Mutex};

use clients::{Backend, Credentials, HANG, VumiAuth, fast_retry};
use futures_util::future::join_all;
use metrics_emulators::hostile::{Fault, HostileServer};
use tracing_subscriber::fmt::format::FmtSpan;
use tracing_subscriber::util::SubscriberInitExt as _;

/// In every canary, so that one search finds them all.
const MARK: &str = "c4n4ry";

fn canaries(userinfo: bool, vumi_auth: VumiAuth) -> Credentials {
    Credentials {
        outline_path: "c4n4ryOutlineSecretPath".to_owned(),
        appoptics_token: "c4n4ry-appoptics-token".to_owned(),
        unleash_api_token: "default:development.c4n4ry-unleash-api-token".to_owned(),
        unleash_admin_token: "*:*.c4n4ry-unleash-admin-token".to_owned(),
        coopr_api_key: "c4n4ry-coopr-api-key".to_owned(),
        vumi_token: "c4n4ry-vumi-token".to_owned(),
        // The pipeline treats a Basic user name as a secret too; a canary here makes the
        // start of the base64 pair secret from its first character.
        vumi_user: "c4n4ry-vumi-user".to_owned(),
        vumi_password: "c4n4ry-vumi-password".to_owned(),
        vumi_auth,
        userinfo_password: userinfo.then(|| "c4n4ry-userinfo-password".to_owned()),
    }
}

/// Every form a canary can travel in, with what it is: each secret verbatim, the base64
/// of each Basic `user:password` pair that holds one, and last the bare marker, for a
/// secret in a form not listed.
fn forms(credentials: &Credentials) -> Vec<(String, String)> {
    let mut forms = vec![
        (credentials.outline_path.clone(), "the Outline secret path"),
        (credentials.appoptics_token.clone(), "the AppOptics token"),
        (
            credentials.unleash_api_token.clone(),
            "the Unleash API (backend) token",
        ),
        (
            credentials.unleash_admin_token.clone(),
            "the Unleash admin token",
        ),
        (credentials.coopr_api_key.clone(), "the Coopr API key"),
        (credentials.vumi_token.clone(), "the Vumi token"),
        (credentials.vumi_password.clone(), "the Vumi Basic password"),
    ];
    let basic = |pair: String, what: &'static str| (base64(pair.as_bytes()), what);
    forms.push(basic(
        format!("{}:", credentials.appoptics_token),
        "the AppOptics token in base64 Basic credentials",
    ));
    forms.push(basic(
        format!("{}:{}", credentials.vumi_user, credentials.vumi_password),
        "the Vumi password in base64 Basic credentials",
    ));
    if let Some(password) = &credentials.userinfo_password {
        forms.push((password.clone(), "the URL userinfo password"));
        forms.push(basic(
            format!("user:{password}"),
            "the URL userinfo password in base64 Basic credentials",
        ));
    }
    // An error that quotes the start of a body cuts it after a few dozen characters: the
    // start of a secret is a leak too. Every raw canary starts with or holds the marker; a
    // base64 form is looked for by its first twelve characters as well.
    let starts: Vec<(String, String)> = forms
        .iter()
        .filter(|(_, what)| what.contains("base64"))
        .map(|(form, what)| (form[..12].to_owned(), format!("the start of {what}")))
        .collect();
    let mut forms: Vec<(String, String)> = forms
        .into_iter()
        .map(|(form, what)| (form, what.to_owned()))
        .collect();
    forms.extend(starts);
    forms.push((MARK.to_owned(), "a canary in another form".to_owned()));
    forms
}

/// The forms in which `backend` sends its credentials on the wire: what the echo must have
/// received.
fn sent_forms(backend: Backend, credentials: &Credentials) -> Vec<(String, &'static str)> {
    let userinfo_basic = || {
        credentials.userinfo_password.as_ref().map(|password| {
            (
                base64(format!("user:{password}").as_bytes()),
                "the URL userinfo password in Basic credentials",
            )
        })
    };
    let mut sent = match backend {
        Backend::Outline => vec![(credentials.outline_path.clone(), "the secret path")],
        Backend::AppOptics => vec![(
            base64(format!("{}:", credentials.appoptics_token).as_bytes()),
            "the token in Basic credentials",
        )],
        Backend::Unleash => vec![
            (credentials.unleash_admin_token.clone(), "the admin token"),
            (credentials.unleash_api_token.clone(), "the API token"),
        ],
        Backend::Coopr => vec![(credentials.coopr_api_key.clone(), "the API key")],
        Backend::Vumi => match credentials.vumi_auth {
            VumiAuth::Bearer => vec![(credentials.vumi_token.clone(), "the token")],
            VumiAuth::Basic => vec![(
                base64(
                    format!("{}:{}", credentials.vumi_user, credentials.vumi_password).as_bytes(),
                ),
                "the Basic credentials",
            )],
            VumiAuth::UrlOnly => Vec::new(),
        },
    };
    // The userinfo is sent where the client has no credentials of its own for the request;
    // elsewhere the URL's userinfo is dropped.
    if matches!(backend, Backend::Outline)
        || (backend == Backend::Vumi && credentials.vumi_auth == VumiAuth::UrlOnly)
    {
        sent.extend(userinfo_basic());
    }
    sent
}

fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for (i, shift) in [18, 12, 6, 0].into_iter().enumerate() {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> shift) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[test]
fn base64_matches_the_rfc_examples() {
    assert_eq!(base64(b"foob"), "Zm9vYg==");
    assert_eq!(base64(b"fooba"), "Zm9vYmE=");
    assert_eq!(base64(b"foobar"), "Zm9vYmFy");
}

/// Where `tracing` output goes: one buffer shared by every writer the subscriber makes.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl io::Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

/// The faults every client meets: the echo at the statuses each client maps differently,
/// and everything else the hostile server does.
fn faults(elsewhere: &HostileServer) -> Vec<Fault> {
    let mut faults: Vec<Fault> = [200, 400, 401, 403, 404, 409, 429, 500, 503]
        .into_iter()
        .map(Fault::echo)
        .collect();
    faults.extend(
        [200, 400, 500]
            .into_iter()
            .map(|status| Fault::EchoText { status }),
    );
    faults.extend([
        Fault::Refused,
        Fault::CloseAtOnce,
        Fault::NeverAnswer,
        Fault::ResetMidBody,
        Fault::ShortBody,
        Fault::Html200,
        Fault::WrongShape200,
        Fault::Oversized {
            bytes: 1024 * 1024,
            declared: false,
        },
        Fault::HugeHeaders { bytes: 1024 * 1024 },
        Fault::UnaskedGzip,
        Fault::redirect(302, elsewhere.url()),
        Fault::status(503).with_retry_after("3600"),
        Fault::status(500),
    ]);
    faults
}

/// One client against one fault: everything it showed, and what the server received.
async fn exercise(
    backend: Backend,
    credentials: &Credentials,
    fault: Fault,
) -> (String, Option<String>) {
    let (server, cert) = backend.serve(vec![fault.clone()]).await;
    let retry = fast_retry().with_max_retries(1);
    let built = backend.build(&server.url(), cert.as_ref(), credentials, retry);
    let mut shown = format!("builder Debug: {}\n", built.builder_debug);
    let client = match built.client {
        Ok(client) => client,
        Err(error) => {
            shown.push_str(&clients::error_chain(&error));
            return (shown, None);
        }
    };
    for line in client.shown().lines() {
        let _ = writeln!(shown, "client {line}");
    }
    let mut outcomes = vec![
        tokio::time::timeout(HANG, client.read())
            .await
            .expect("no hang"),
    ];
    outcomes.extend(
        tokio::time::timeout(HANG, client.other_calls())
            .await
            .expect("no hang"),
    );
    for outcome in outcomes {
        match outcome {
            Ok(value) => {
                let _ = writeln!(shown, "ok: {value}");
            }
            Err(error) => {
                shown.push_str(&clients::error_chain(&error));
            }
        }
    }
    let received = matches!(fault, Fault::Echo { .. } | Fault::EchoText { .. })
        .then(|| server.received_text());
    (shown, received)
}

/// Runs every fault against `backend` with every credential layout it takes, capturing all
/// `tracing` output at TRACE, and fails with every place a canary showed up.
async fn canary(backend: Backend, layouts: &[Credentials]) {
    let captured = Captured::default();
    let writer = captured.clone();
    let _guard = tracing_subscriber::fmt()
        .with_max_level(tracing_subscriber::filter::LevelFilter::TRACE)
        .with_span_events(FmtSpan::FULL)
        .with_writer(move || writer.clone())
        .finish()
        .set_default();

    let elsewhere = HostileServer::start(Fault::echo(200)).await.unwrap();
    let mut leaks = Leaks::default();
    for credentials in layouts {
        let runs = join_all(faults(&elsewhere).into_iter().map(|fault| async move {
            let name = fault.name();
            (name, exercise(backend, credentials, fault).await)
        }))
        .await;
        for (fault, (shown, received)) in runs {
            // The test can fail: the echo carried every credential the client sends back.
            if let Some(received) = received {
                for (form, what) in sent_forms(backend, credentials) {
                    assert!(
                        received.contains(form.as_str()),
                        "{}: the {fault} server never received {what}, so its echo proves nothing:\n{received}",
                        backend.name()
                    );
                }
            }
            for line in shown.lines() {
                let place = line.split(':').next().unwrap_or_default();
                let context = format!("{} {}: {place}", backend.name(), layout_name(credentials));
                leaks.check(&context, &fault, line, &forms(credentials));
            }
        }
    }
    assert_eq!(elsewhere.connections(), 0, "a redirect was followed");

    let trace = captured.text();
    assert!(
        trace.contains("http.request"),
        "the pipeline's spans were not captured:\n{trace}"
    );
    let all_forms: Vec<_> = layouts.iter().flat_map(forms).collect();
    for line in trace.lines() {
        leaks.check(
            &format!("{} tracing", backend.name()),
            "any",
            line,
            &all_forms,
        );
    }
    assert!(
        leaks.0.is_empty(),
        "{} leaked a secret:\n{}",
        backend.name(),
        leaks.report()
    );
}

/// Leaks grouped by where they showed and what leaked, with the faults that showed them
/// and one example.
#[derive(Default)]
struct Leaks(std::collections::BTreeMap<String, (Vec<String>, String)>);

impl Leaks {
    fn check(&mut self, context: &str, fault: &str, line: &str, forms: &[(String, String)]) {
        let mut found = false;
        for (form, what) in forms {
            let Some(at) = line.find(form.as_str()) else {
                continue;
            };
            // The bare marker only counts when no known form explains it.
            if form == MARK && found {
                continue;
            }
            found = true;
            let entry = self
                .0
                .entry(format!("{context}: {what}"))
                .or_insert_with(|| (Vec::new(), excerpt(line, at)));
            if !entry.0.iter().any(|f| f == fault) {
                entry.0.push(fault.to_owned());
            }
        }
    }

    fn report(&self) -> String {
        self.0
            .iter()
            .map(|(key, (faults, example))| {
                format!(
                    "- {key}\n    faults: {}\n    e.g. …{example}…",
                    faults.join(", ")
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// About 100 characters of `line` around byte `at`.
fn excerpt(line: &str, at: usize) -> String {
    let mut start = at.saturating_sub(60);
    while !line.is_char_boundary(start) {
        start -= 1;
    }
    let mut end = (at + 60).min(line.len());
    while !line.is_char_boundary(end) {
        end += 1;
    }
    line[start..end].to_owned()
}

fn layout_name(credentials: &Credentials) -> String {
    format!(
        "{}{}",
        if credentials.userinfo_password.is_some() {
            "userinfo"
        } else {
            "plain"
        },
        match credentials.vumi_auth {
            VumiAuth::Bearer => "",
            VumiAuth::Basic => "+basic",
            VumiAuth::UrlOnly => "+url-only",
        }
    )
}

#[tokio::test]
async fn outline_secret_path_never_shows() {
    canary(
        Backend::Outline,
        &[
            canaries(false, VumiAuth::Bearer),
            canaries(true, VumiAuth::Bearer),
        ],
    )
    .await;
}

#[tokio::test]
async fn appoptics_token_never_shows() {
    canary(
        Backend::AppOptics,
        &[
            canaries(false, VumiAuth::Bearer),
            canaries(true, VumiAuth::Bearer),
        ],
    )
    .await;
}

#[tokio::test]
async fn unleash_tokens_never_show() {
    canary(
        Backend::Unleash,
        &[
            canaries(false, VumiAuth::Bearer),
            canaries(true, VumiAuth::Bearer),
        ],
    )
    .await;
}

#[tokio::test]
async fn coopr_api_key_never_shows() {
    canary(
        Backend::Coopr,
        &[
            canaries(false, VumiAuth::Bearer),
            canaries(true, VumiAuth::Bearer),
        ],
    )
    .await;
}

#[tokio::test]
async fn vumi_token_and_password_never_show() {
    canary(
        Backend::Vumi,
        &[
            canaries(false, VumiAuth::Bearer),
            canaries(false, VumiAuth::Basic),
            canaries(true, VumiAuth::Bearer),
            canaries(true, VumiAuth::UrlOnly),
        ],
    )
    .await;
}
