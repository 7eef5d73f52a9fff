//! The demo: one client per backend, each talking to a real server when its environment
//! variables are set and to its built-in emulator otherwise, seeded with a day of data.
//!
//! This is what `metrics-hub collect` and `metrics-hub serve` show when there is no
//! configuration at all, what `metrics-hub emulate` serves to other programs' tests, and what
//! the `aggregate` example and the cross-backend tests run on.
//!
//! Emulators are seeded the way a user's systems would fill a real server: AppOptics
//! measurements, Unleash evaluations and Vumi values go in through the clients' own write
//! APIs. What no client API can write is set on the emulators directly: Outline transfer
//! counters, Coopr's queues and nodes, and the earlier hours of Unleash and Vumi (their write
//! APIs only ever write "now").
//!
//! ```no_run
//! # async fn run() -> Result<(), metrics_hub_cli::demo::DemoError> {
//! use metrics_hub::Aggregator;
//! use metrics_hub_cli::demo::Demo;
//!
//! let demo = Demo::start_emulated().await?;
//! let collection = Aggregator::new(demo.sources()).collect(&Demo::query()).await;
//! assert!(collection.failures.is_empty());
//! # Ok(()) }
//! ```

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use metrics_emulators::appoptics::AppOpticsEmulator;
use metrics_emulators::coopr::{CooprEmulator, NodeLifetime};
use metrics_emulators::outline::OutlineEmulator;
use metrics_emulators::unleash::UnleashEmulator;
use metrics_emulators::vumi::{VumiEmulator, VumiEmulatorConfig};
use metrics_hub::appoptics::{AppOpticsClient, AppOpticsClientBuilder, Measurement};
use metrics_hub::chrono::{DateTime, Duration as ChronoDuration, DurationRound as _, Utc};
use metrics_hub::coopr::{CooprClient, CooprClientBuilder};
use metrics_hub::outline::{OutlineClient, OutlineClientBuilder};
use metrics_hub::unleash::{RecorderConfig, UnleashClient, UnleashClientBuilder};
use metrics_hub::vumi::{VumiClient, VumiClientBuilder};
use metrics_hub::{MetricsSource, Query};

/// Any error of the demo setup.
pub type DemoError = Box<dyn std::error::Error + Send + Sync>;

/// The metrics the AppOptics source reads.
pub const APPOPTICS_METRICS: [&str; 2] = ["checkout.requests", "checkout.latency"];
/// The hosts the AppOptics demo reports for, with their share of the load.
pub const APPOPTICS_HOSTS: [(&str, f64); 2] = [("web-1", 1.0), ("web-2", 0.6)];
/// The token the AppOptics emulator is given (it accepts any).
pub const APPOPTICS_TOKEN: &str = "demo-appoptics-token";
/// The metrics the Vumi source reads.
pub const VUMI_METRICS: [&str; 3] = [
    "stores.default.sessions_started.sum",
    "stores.default.active_users.last",
    "conversations.7c9e6679-7425-40de-944b-e07fc1f90ae7.messages_sent.sum",
];
/// The value of each [`VUMI_METRICS`] entry in every hour of the demo day.
pub const VUMI_HOURLY_VALUES: [f64; 3] = [42.0, 187.0, 1310.0];
/// The Unleash flags the demo evaluates.
pub const UNLEASH_FLAGS: [&str; 2] = ["new-checkout", "dark-mode"];
/// Evaluations per hour of each [`UNLEASH_FLAGS`] entry: `(yes, no)`.
pub const UNLEASH_HOURLY_COUNTS: [(u64, u64); 2] = [(1600, 400), (668, 1332)];
/// The application the Unleash demo counts for.
pub const UNLEASH_APP_NAME: &str = "checkout-web";
/// The Outline demo keys' transferred bytes, by key id `0`…`4` (key 3 has none).
pub const OUTLINE_TRANSFER_BYTES: [u64; 5] = [2_150_000_000, 734_003_200, 15_728_640, 0, 98_304];
/// The Coopr tenants with their queued and in-progress task counts.
pub const COOPR_QUEUES: [(&str, u32, u32); 2] = [("acme", 26, 8), ("globex", 3, 2)];
/// The Coopr user the demo reads as: the superadmin.
pub const COOPR_USER: &str = "admin";
/// The Coopr tenant the demo reads as: the superadmin's.
pub const COOPR_TENANT: &str = "superadmin";
/// The Coopr API key the demo sends (Coopr never checks it).
pub const COOPR_API_KEY: &str = "demo-coopr-key";
/// The bearer token the Vumi emulator accepts.
pub const VUMI_TOKEN: &str = "demo-token";
const VUMI_OWNER: &str = "demo-account";
/// Hours of history before the current one.
const HISTORY_HOURS: i64 = 23;

/// The five backends, in the order they are collected and shown.
pub const BACKENDS: [&str; 5] = ["outline", "appoptics", "unleash", "coopr", "vumi"];

/// Requests the AppOptics demo records for a host with `load` (see [`APPOPTICS_HOSTS`]) in
/// the measurement `hours_ago` hours before seeding: a daily curve.
///
/// ```
/// assert_eq!(metrics_hub_cli::demo::appoptics_requests(1.0, 0), 1535.0);
/// ```
pub fn appoptics_requests(load: f64, hours_ago: u32) -> f64 {
    (1200.0 * load * busy(hours_ago)).round()
}

/// Latency in seconds the AppOptics demo records, like [`appoptics_requests`].
pub fn appoptics_latency(load: f64, hours_ago: u32) -> f64 {
    0.080 + 0.040 * busy(hours_ago) * load
}

fn busy(hours_ago: u32) -> f64 {
    1.0 + (f64::from(24_u32.saturating_sub(hours_ago)) / 4.0)
        .sin()
        .abs()
}

/// Where a backend's data comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin {
    /// The built-in emulator, seeded with demo data.
    Emulator,
    /// A real server named by the backend's environment variables.
    Environment,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Emulator => "built-in emulator",
            Self::Environment => "real server from the environment",
        })
    }
}

/// One backend's source and where it points.
#[derive(Debug)]
pub struct Backend {
    /// The backend name (`outline`, …).
    pub name: &'static str,
    /// Emulator or real server.
    pub origin: Origin,
    /// The client, as a trait object.
    pub source: Arc<dyn MetricsSource>,
}

/// The emulators the demo started; dropping one stops it.
#[derive(Debug, Default)]
pub struct Emulators {
    /// Outline, when emulated.
    pub outline: Option<OutlineEmulator>,
    /// AppOptics, when emulated.
    pub appoptics: Option<AppOpticsEmulator>,
    /// Unleash, when emulated.
    pub unleash: Option<UnleashEmulator>,
    /// Coopr, when emulated.
    pub coopr: Option<CooprEmulator>,
    /// Vumi, when emulated.
    pub vumi: Option<VumiEmulator>,
}

impl Emulators {
    /// The shared server of the named backend's emulator, to stop it or inject faults.
    pub fn server_mut(&mut self, backend: &str) -> Option<&mut metrics_emulators::EmulatorServer> {
        match backend {
            "outline" => self.outline.as_deref_mut(),
            "appoptics" => self.appoptics.as_deref_mut(),
            "unleash" => self.unleash.as_deref_mut(),
            "coopr" => self.coopr.as_deref_mut(),
            "vumi" => self.vumi.as_deref_mut(),
            _ => None,
        }
    }

    /// The address the named backend's emulator listens on, if it is emulated.
    pub fn address(&self, backend: &str) -> Option<SocketAddr> {
        match backend {
            "outline" => self.outline.as_ref().map(|e| e.address()),
            "appoptics" => self.appoptics.as_ref().map(|e| e.address()),
            "unleash" => self.unleash.as_ref().map(|e| e.address()),
            "coopr" => self.coopr.as_ref().map(|e| e.address()),
            "vumi" => self.vumi.as_ref().map(|e| e.address()),
            _ => None,
        }
    }

    /// The environment variables each emulated backend's `from_env` reads, pointing at its
    /// emulator, in [`BACKENDS`] order. With `address` a backend's URLs name another address
    /// instead of the emulator's own (a fixed port forwarded to it).
    ///
    /// Credentials are in the list: these are the emulators' throwaway ones.
    pub fn environment(
        &self,
        address: impl Fn(&str) -> Option<SocketAddr>,
    ) -> Vec<(&'static str, String)> {
        let moved = |backend: &str, url: String| match (self.address(backend), address(backend)) {
            (Some(from), Some(to)) => url.replacen(&from.to_string(), &to.to_string(), 1),
            _ => url,
        };
        let mut vars = Vec::new();
        if let Some(outline) = &self.outline {
            vars.push(("OUTLINE_API_URL", moved("outline", outline.api_url())));
            vars.push(("OUTLINE_CERT_SHA256", outline.cert_sha256().to_owned()));
        }
        if let Some(appoptics) = &self.appoptics {
            vars.push(("APPOPTICS_TOKEN", APPOPTICS_TOKEN.to_owned()));
            vars.push((
                "APPOPTICS_BASE_URL",
                moved("appoptics", appoptics.api_url()),
            ));
            vars.push(("APPOPTICS_METRICS", APPOPTICS_METRICS.join(",")));
        }
        if let Some(unleash) = &self.unleash {
            vars.push(("UNLEASH_URL", moved("unleash", unleash.base_url())));
            vars.push((
                "UNLEASH_API_TOKEN",
                UnleashEmulator::CLIENT_TOKEN.to_owned(),
            ));
            vars.push((
                "UNLEASH_ADMIN_TOKEN",
                UnleashEmulator::ADMIN_TOKEN.to_owned(),
            ));
            vars.push(("UNLEASH_APP_NAME", UNLEASH_APP_NAME.to_owned()));
            vars.push(("UNLEASH_FEATURES", UNLEASH_FLAGS.join(",")));
        }
        if let Some(coopr) = &self.coopr {
            vars.push(("COOPR_URL", moved("coopr", coopr.base_url())));
            vars.push(("COOPR_USER_ID", COOPR_USER.to_owned()));
            vars.push(("COOPR_TENANT_ID", COOPR_TENANT.to_owned()));
            vars.push(("COOPR_API_KEY", COOPR_API_KEY.to_owned()));
        }
        if let Some(vumi) = &self.vumi {
            vars.push(("VUMI_URL", moved("vumi", vumi.api_url())));
            vars.push(("VUMI_TOKEN", VUMI_TOKEN.to_owned()));
            vars.push(("VUMI_METRICS", VUMI_METRICS.join(",")));
        }
        vars
    }
}

/// Five backends ready to collect from.
#[derive(Debug)]
pub struct Demo {
    /// The backends, in [`BACKENDS`] order.
    pub backends: Vec<Backend>,
    /// The emulators behind the emulated backends.
    pub emulators: Emulators,
}

impl Demo {
    /// Each backend from its environment variables where they are set (see the README),
    /// from a seeded emulator otherwise.
    ///
    /// # Errors
    ///
    /// When an emulator cannot start, seeding fails, or a client cannot be built from the
    /// environment (a missing or invalid variable).
    pub async fn start() -> Result<Self, DemoError> {
        Self::start_with(|name| std::env::var(name).ok().filter(|v| !v.trim().is_empty())).await
    }

    /// All five backends on seeded emulators, whatever the environment says.
    ///
    /// # Errors
    ///
    /// When an emulator cannot start or seeding fails.
    pub async fn start_emulated() -> Result<Self, DemoError> {
        Self::start_with(|_| None).await
    }

    async fn start_with(env: impl Fn(&str) -> Option<String>) -> Result<Self, DemoError> {
        let mut emulators = Emulators::default();
        let mut backends = Vec::with_capacity(BACKENDS.len());
        let configured = |vars: &[&str]| vars.iter().all(|v| env(v).is_some());

        let (origin, outline) = if configured(&["OUTLINE_API_URL", "OUTLINE_CERT_SHA256"]) {
            (
                Origin::Environment,
                OutlineClientBuilder::from_env().build()?,
            )
        } else {
            let emulator = OutlineEmulator::start().await?;
            let client = seed_outline(&emulator)?;
            emulators.outline = Some(emulator);
            (Origin::Emulator, client)
        };
        backends.push(backend("outline", origin, outline));

        let (origin, appoptics) = if configured(&["APPOPTICS_TOKEN"]) {
            let builder = AppOpticsClientBuilder::from_env();
            let builder = if configured(&["APPOPTICS_METRICS"]) {
                builder
            } else {
                builder.with_source_metrics(APPOPTICS_METRICS)
            };
            (Origin::Environment, builder.build()?)
        } else {
            let emulator = AppOpticsEmulator::start().await?;
            let client = seed_appoptics(&emulator).await?;
            emulators.appoptics = Some(emulator);
            (Origin::Emulator, client)
        };
        backends.push(backend("appoptics", origin, appoptics));

        let (origin, unleash) = if configured(&["UNLEASH_URL", "UNLEASH_API_TOKEN"]) {
            (
                Origin::Environment,
                UnleashClientBuilder::from_env().build()?,
            )
        } else {
            let emulator = UnleashEmulator::start().await?;
            let client = seed_unleash(&emulator).await?;
            emulators.unleash = Some(emulator);
            (Origin::Emulator, client)
        };
        backends.push(backend("unleash", origin, unleash));

        let (origin, coopr) = if configured(&["COOPR_URL"]) {
            (Origin::Environment, CooprClientBuilder::from_env().build()?)
        } else {
            let emulator = CooprEmulator::start().await?;
            let client = seed_coopr(&emulator)?;
            emulators.coopr = Some(emulator);
            (Origin::Emulator, client)
        };
        backends.push(backend("coopr", origin, coopr));

        let (origin, vumi) = if configured(&["VUMI_URL"]) {
            let builder = VumiClientBuilder::from_env();
            let builder = if configured(&["VUMI_METRICS"]) {
                builder
            } else {
                builder.with_metrics(VUMI_METRICS)
            };
            (Origin::Environment, builder.build()?)
        } else {
            let emulator = VumiEmulator::start_with(
                VumiEmulatorConfig::default()
                    .with_bouncer([(VUMI_TOKEN, VUMI_OWNER)])
                    .with_disable_auto_prefix(true),
            )
            .await?;
            let client = seed_vumi(&emulator).await?;
            emulators.vumi = Some(emulator);
            (Origin::Emulator, client)
        };
        backends.push(backend("vumi", origin, vumi));

        Ok(Self {
            backends,
            emulators,
        })
    }

    /// The sources, in [`BACKENDS`] order.
    pub fn sources(&self) -> Vec<Arc<dyn MetricsSource>> {
        self.backends
            .iter()
            .map(|b| Arc::clone(&b.source))
            .collect()
    }

    /// What the demo asks every source for: the last 24 hours, hourly.
    pub fn query() -> Query {
        Query::new()
            .last(Duration::from_secs(24 * 3600))
            .with_step(Duration::from_secs(3600))
    }
}

fn backend(name: &'static str, origin: Origin, source: impl MetricsSource) -> Backend {
    Backend {
        name,
        origin,
        source: Arc::new(source),
    }
}

/// The start of the hour `now` is in.
fn hour_of(now: DateTime<Utc>) -> DateTime<Utc> {
    now.duration_trunc(ChronoDuration::hours(1)).unwrap_or(now)
}

/// A server with a handful of keys and 30 days of traffic on most of them.
fn seed_outline(emulator: &OutlineEmulator) -> Result<OutlineClient, DemoError> {
    let ids = emulator.add_access_keys(OUTLINE_TRANSFER_BYTES.len());
    for (id, bytes) in ids.iter().zip(OUTLINE_TRANSFER_BYTES) {
        if bytes > 0 {
            emulator.set_transfer(id, bytes);
        }
    }
    Ok(OutlineClient::builder()
        .with_install_output(emulator.access_json())
        .build()?)
}

/// A day of hourly request counts and latencies for two hosts, submitted through a queue.
async fn seed_appoptics(emulator: &AppOpticsEmulator) -> Result<AppOpticsClient, DemoError> {
    let client = AppOpticsClient::builder()
        .with_token(APPOPTICS_TOKEN)
        .with_base_url(emulator.api_url())
        .with_tag("service", "checkout")
        .with_source_metrics(APPOPTICS_METRICS)
        .build()?;
    let queue = client.queue().build()?;
    let now = Utc::now();
    for hours_ago in (0..24_u32).rev() {
        let time = now - ChronoDuration::hours(i64::from(hours_ago)) - ChronoDuration::minutes(1);
        for (host, load) in APPOPTICS_HOSTS {
            queue
                .add_measurement(
                    Measurement::new("checkout.requests", appoptics_requests(load, hours_ago))
                        .with_tag("host", host)
                        .with_time(time),
                )
                .await?;
            queue
                .add_measurement(
                    Measurement::new("checkout.latency", appoptics_latency(load, hours_ago))
                        .with_tag("host", host)
                        .with_time(time),
                )
                .await?;
        }
    }
    queue.submit().await?;
    Ok(client)
}

/// Two flags evaluated by many concurrent tasks, counted by the recorder and flushed; the
/// earlier hours of the day had the same traffic.
async fn seed_unleash(emulator: &UnleashEmulator) -> Result<UnleashClient, DemoError> {
    for flag in UNLEASH_FLAGS {
        emulator.add_flag(flag);
    }
    let this_hour = hour_of(Utc::now());
    for hours_ago in 1..=HISTORY_HOURS {
        let hour = this_hour - ChronoDuration::hours(hours_ago) + ChronoDuration::minutes(30);
        for (flag, (yes, no)) in UNLEASH_FLAGS.iter().zip(UNLEASH_HOURLY_COUNTS) {
            emulator.seed_metrics(flag, UNLEASH_APP_NAME, "development", hour, yes, no, &[]);
        }
    }
    let client = UnleashClient::builder()
        .with_url(emulator.base_url())
        .with_api_token(UnleashEmulator::CLIENT_TOKEN)
        .with_admin_token(UnleashEmulator::ADMIN_TOKEN)
        .with_app_name(UNLEASH_APP_NAME)
        .with_instance_id("checkout-web-1")
        .with_features(UNLEASH_FLAGS)
        .build()?;
    let recorder = client.start_recorder(RecorderConfig::new())?;
    let mut tasks = Vec::new();
    // 4 workers × 500 requests: new-checkout is on for 4 in 5, dark-mode for 1 in 3, which
    // is UNLEASH_HOURLY_COUNTS.
    for worker in 0..4_u32 {
        let recorder = recorder.clone();
        tasks.push(tokio::spawn(async move {
            for request in 0..500_u32 {
                recorder.count("new-checkout", (request + worker) % 5 != 0);
                recorder.count("dark-mode", request % 3 == 0);
            }
        }));
    }
    for task in tasks {
        task.await?;
    }
    recorder.shutdown().await.into_result()?;
    Ok(client)
}

/// Two tenants with provisioning queues and nodes that came and went during the day.
fn seed_coopr(emulator: &CooprEmulator) -> Result<CooprClient, DemoError> {
    let now_ms = Utc::now().timestamp_millis();
    let ago = |minutes: i64| now_ms - minutes * 60_000;
    let mut tenants = Vec::new();
    for ((name, queued, in_progress), user) in COOPR_QUEUES.into_iter().zip(["alice", "george"]) {
        let tenant = emulator.add_tenant(name);
        emulator.add_user(&tenant, user);
        emulator.enqueue_tasks(&tenant, queued + in_progress);
        emulator.take_tasks(&tenant, in_progress);
        tenants.push(tenant);
    }
    for node in ["n1", "n2", "n3"] {
        emulator.add_node(
            NodeLifetime::new(&tenants[0], "alice", "1001", node, ago(20 * 60))
                .deleted_at(ago(3 * 60))
                .with_cluster_template("hadoop-distributed"),
        );
    }
    emulator.add_node(
        NodeLifetime::new(&tenants[1], "george", "2001", "n1", ago(9 * 60)).deleted_at(ago(60)),
    );
    Ok(CooprClient::builder()
        .with_base_url(emulator.base_url())
        .with_user_id(COOPR_USER)
        .with_tenant(COOPR_TENANT)
        .with_api_key(COOPR_API_KEY)
        .build()?)
}

/// This hour's values fired through the client, the earlier hours' written on the server.
async fn seed_vumi(emulator: &VumiEmulator) -> Result<VumiClient, DemoError> {
    let this_hour = hour_of(Utc::now());
    for (metric, value) in VUMI_METRICS.iter().zip(VUMI_HOURLY_VALUES) {
        emulator.insert_points(
            VUMI_OWNER,
            metric,
            (1..=HISTORY_HOURS).map(|hours_ago| {
                (
                    this_hour - ChronoDuration::hours(hours_ago) + ChronoDuration::minutes(30),
                    value,
                )
            }),
        );
    }
    let client = VumiClient::builder()
        .with_base_url(emulator.api_url())
        .with_token(VUMI_TOKEN)
        .with_metrics(VUMI_METRICS)
        .build()?;
    client
        .fire(VUMI_METRICS.iter().copied().zip(VUMI_HOURLY_VALUES))
        .await?;
    Ok(client)
}
