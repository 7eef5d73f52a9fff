//! The five clients, built the same way against a [`HostileServer`], for the fault matrix
//! and the canary test.
#![allow(
    dead_code,
    reason = "shared by two test crates, each of which uses a part"
)]

use std::fmt::Write as _;
use std::time::Duration;

use appoptics_client::{AppOpticsClient, ListParams};
use coopr_client::CooprClient;
use metrics_emulators::SelfSignedCert;
use metrics_emulators::hostile::{Fault, HostileServer};
use metrics_hub::core::{BackoffConfig, ClientOptions, Error, Jitter, RetryConfig};
use outline_client::OutlineClient;
use unleash_client::{ApplicationsQuery, UnleashClient};
use vumi_client::{MetricsQuery, VumiClient};

/// The response-size limit every client gets: small, so that "beyond the limit" is cheap.
pub(crate) const BODY_LIMIT: usize = 64 * 1024;
/// The request timeout every client gets.
pub(crate) const REQUEST_TIMEOUT: Duration = Duration::from_millis(800);
/// The hang detector around each call: a deadline far above what any fault should take
/// with the settings here (three attempts of at most a request timeout, or two waits of a
/// 1 s `Retry-After`), never a speed assertion.
pub(crate) const HANG: Duration = Duration::from_secs(15);
/// Retries after the first attempt.
pub(crate) const MAX_RETRIES: usize = 2;

/// Small, fixed backoffs: the matrix exercises retries without waiting for them.
pub(crate) fn fast_retry() -> RetryConfig {
    RetryConfig::default()
        .with_max_retries(MAX_RETRIES)
        .with_backoff(BackoffConfig {
            init_backoff: Duration::from_millis(10),
            max_backoff: Duration::from_millis(20),
            base: 2.0,
        })
        .with_jitter(Jitter::fixed(0.0))
        .with_retry_timeout(Duration::from_secs(5))
}

pub(crate) fn options() -> ClientOptions {
    ClientOptions::new()
        .with_timeout(REQUEST_TIMEOUT)
        .with_connect_timeout(REQUEST_TIMEOUT)
        .with_max_response_bytes(BODY_LIMIT)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Backend {
    Outline,
    AppOptics,
    Unleash,
    Coopr,
    Vumi,
}

pub(crate) const ALL: [Backend; 5] = [
    Backend::Outline,
    Backend::AppOptics,
    Backend::Unleash,
    Backend::Coopr,
    Backend::Vumi,
];

/// How Vumi authenticates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum VumiAuth {
    Bearer,
    Basic,
    /// No credentials but the base URL's userinfo, if any.
    UrlOnly,
}

/// Every credential a client can hold. Each is a distinct text, so that a leak names the
/// position it came from.
#[derive(Clone, Debug)]
pub(crate) struct Credentials {
    pub(crate) outline_path: String,
    pub(crate) appoptics_token: String,
    pub(crate) unleash_api_token: String,
    pub(crate) unleash_admin_token: String,
    pub(crate) coopr_api_key: String,
    pub(crate) vumi_token: String,
    pub(crate) vumi_user: String,
    pub(crate) vumi_password: String,
    pub(crate) vumi_auth: VumiAuth,
    /// The password of `http://user:<password>@host` in the base URL, when set.
    pub(crate) userinfo_password: Option<String>,
}

impl Credentials {
    /// Plain test credentials.
    pub(crate) fn plain() -> Self {
        Self {
            outline_path: "OutlineSecretPath0001".to_owned(),
            appoptics_token: "appoptics-token-0001".to_owned(),
            unleash_api_token: "default:development.api-token-0001".to_owned(),
            unleash_admin_token: "*:*.admin-token-0001".to_owned(),
            coopr_api_key: "coopr-key-0001".to_owned(),
            vumi_token: "vumi-token-0001".to_owned(),
            vumi_user: "vumi-user".to_owned(),
            vumi_password: "vumi-password-0001".to_owned(),
            vumi_auth: VumiAuth::Bearer,
            userinfo_password: None,
        }
    }

    /// The base URL with the userinfo, if any: `http://user:<password>@127.0.0.1:PORT`.
    fn base(&self, server_url: &str) -> String {
        match &self.userinfo_password {
            Some(password) => {
                let (scheme, rest) = server_url.split_once("://").expect("an absolute URL");
                format!("{scheme}://user:{password}@{rest}")
            }
            None => server_url.to_owned(),
        }
    }
}

/// A built client of one of the five backends.
#[derive(Clone, Debug)]
pub(crate) enum Client {
    Outline(OutlineClient),
    AppOptics(AppOpticsClient),
    Unleash(UnleashClient),
    Coopr(CooprClient),
    Vumi(VumiClient),
}

/// What building a client showed: the builder's `Debug`, and the client or the error.
pub(crate) struct Built {
    pub(crate) builder_debug: String,
    pub(crate) client: Result<Client, Error>,
}

impl Backend {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Outline => "outline",
            Self::AppOptics => "appoptics",
            Self::Unleash => "unleash",
            Self::Coopr => "coopr",
            Self::Vumi => "vumi",
        }
    }

    /// Whether the backend's server is HTTPS (Outline: always, with a pinned certificate).
    pub(crate) fn tls(self) -> bool {
        self == Self::Outline
    }

    /// Starts a hostile server for this backend: HTTPS with a fresh certificate for
    /// Outline, plain HTTP otherwise.
    pub(crate) async fn serve(self, faults: Vec<Fault>) -> (HostileServer, Option<SelfSignedCert>) {
        let builder = HostileServer::builder().with_request_script(faults);
        if self.tls() {
            let cert = SelfSignedCert::generate();
            let server = builder.with_tls(cert.clone()).start().await.unwrap();
            (server, Some(cert))
        } else {
            (builder.start().await.unwrap(), None)
        }
    }

    /// Builds the client for `server_url` with `credentials`, [`options`] and
    /// [`fast_retry`] (or `retry`).
    pub(crate) fn build(
        self,
        server_url: &str,
        cert: Option<&SelfSignedCert>,
        credentials: &Credentials,
        retry: RetryConfig,
    ) -> Built {
        let base = credentials.base(server_url);
        match self {
            Self::Outline => {
                let mut builder = OutlineClient::builder()
                    .with_api_url(format!("{base}/{}", credentials.outline_path))
                    .with_client_options(options())
                    .with_retry(retry);
                if let Some(cert) = cert {
                    builder = builder.with_cert_sha256(cert.sha256_hex.clone());
                }
                Built {
                    builder_debug: format!("{builder:?}"),
                    client: builder.build().map(Client::Outline),
                }
            }
            Self::AppOptics => {
                let builder = AppOpticsClient::builder()
                    .with_token(credentials.appoptics_token.clone())
                    .with_base_url(format!("{base}/v1"))
                    .with_client_options(options())
                    .with_retry(retry);
                Built {
                    builder_debug: format!("{builder:?}"),
                    client: builder.build().map(Client::AppOptics),
                }
            }
            Self::Unleash => {
                let builder = UnleashClient::builder()
                    .with_url(base)
                    .with_api_token(credentials.unleash_api_token.clone())
                    .with_admin_token(credentials.unleash_admin_token.clone())
                    .with_app_name("hostile-test")
                    .with_client_options(options())
                    .with_retry(retry);
                Built {
                    builder_debug: format!("{builder:?}"),
                    client: builder.build().map(Client::Unleash),
                }
            }
            Self::Coopr => {
                let builder = CooprClient::builder()
                    .with_base_url(base)
                    .with_user_id("admin")
                    .with_tenant("superadmin")
                    .with_api_key(credentials.coopr_api_key.clone())
                    .with_client_options(options())
                    .with_retry(retry);
                Built {
                    builder_debug: format!("{builder:?}"),
                    client: builder.build().map(Client::Coopr),
                }
            }
            Self::Vumi => {
                let mut builder = VumiClient::builder()
                    .with_base_url(format!("{base}/api"))
                    .with_client_options(options())
                    .with_retry(retry);
                builder = match credentials.vumi_auth {
                    VumiAuth::Bearer => builder.with_token(credentials.vumi_token.clone()),
                    VumiAuth::Basic => builder.with_basic_auth(
                        credentials.vumi_user.clone(),
                        credentials.vumi_password.clone(),
                    ),
                    VumiAuth::UrlOnly => builder,
                };
                Built {
                    builder_debug: format!("{builder:?}"),
                    client: builder.build().map(Client::Vumi),
                }
            }
        }
    }
}

impl Client {
    /// The one read call of the matrix: Outline `metrics().transfer()`, AppOptics
    /// `list_metrics`, Unleash `applications` (an admin read), Coopr `queue_metrics()`,
    /// Vumi `query`. `Ok` carries a short description of what came back.
    pub(crate) async fn read(&self) -> Result<String, Error> {
        match self {
            Self::Outline(client) => client
                .metrics()
                .transfer()
                .await
                .map(|t| format!("{} keys", t.iter().count())),
            Self::AppOptics(client) => client
                .list_metrics(&ListParams::new())
                .await
                .map(|page| format!("{} metrics", page.items.len())),
            Self::Unleash(client) => client
                .applications(&ApplicationsQuery::new())
                .await
                .map(|apps| format!("{} applications", apps.applications.len())),
            Self::Coopr(client) => client
                .queue_metrics()
                .await
                .map(|queues| format!("{} tenants", queues.len())),
            Self::Vumi(client) => client
                .query(&MetricsQuery::new().with_metric("stores.hostile.requests.sum"))
                .await
                .map(|data| format!("{data:?}")),
        }
    }

    /// The write call of the backends that push counts: Vumi `fire_one` (retried by the
    /// pipeline only where the server cannot have acted on it) and Unleash `send_metrics`
    /// (never retried). `None` for the others.
    pub(crate) async fn write(&self) -> Option<Result<String, Error>> {
        match self {
            Self::Vumi(client) => Some(
                client
                    .fire_one("stores.hostile.requests.sum", 1.0)
                    .await
                    .map(|fired| format!("{fired:?}")),
            ),
            Self::Unleash(client) => {
                let now = metrics_hub::chrono::Utc::now();
                let mut bucket = unleash_client::MetricsBucket::new(now);
                bucket.count("hostile-flag", true);
                Some(
                    client
                        .send_metrics(&bucket)
                        .await
                        .map(|()| "sent".to_owned()),
                )
            }
            _ => None,
        }
    }

    /// Every call that sends a credential the read does not: Unleash's registration (the
    /// backend token, where the read sends the admin token). `Ok` as for [`Client::read`].
    pub(crate) async fn other_calls(&self) -> Vec<Result<String, Error>> {
        match self {
            Self::Unleash(client) => {
                vec![client.register().await.map(|()| "registered".to_owned())]
            }
            _ => Vec::new(),
        }
    }

    /// The client's `Debug`, and its `Display` where it has one, one labelled line each.
    pub(crate) fn shown(&self) -> String {
        match self {
            Self::Outline(client) => format!("Debug: {client:?}\nDisplay: {client}"),
            Self::AppOptics(client) => format!("Debug: {client:?}"),
            Self::Unleash(client) => format!("Debug: {client:?}"),
            Self::Coopr(client) => format!("Debug: {client:?}"),
            Self::Vumi(client) => format!("Debug: {client:?}"),
        }
    }
}

/// An error's `Display` and `Debug`, and those of every error in its `source()` chain, one
/// labelled line each.
pub(crate) fn error_chain(error: &Error) -> String {
    let mut out = format!("error Display: {error}\nerror Debug: {error:?}\n");
    let mut current = std::error::Error::source(error);
    while let Some(source) = current {
        let _ = writeln!(out, "source Display: {source}\nsource Debug: {source:?}");
        current = source.source();
    }
    out
}
