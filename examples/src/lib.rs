//! The setup shared by `cargo run --example aggregate` and the cross-backend tests: one client
//! per backend behind `Arc<dyn MetricsSource>`, each talking to a real server when its
//! environment variables are set and to its built-in emulator otherwise.
//!
//! Emulators are seeded the way a user's systems would fill a real server: AppOptics
//! measurements, Unleash evaluations and Vumi values go in through the clients' own write
//! APIs; Outline transfer counters and Coopr's queues and nodes are server-side state that no
//! client API writes, so they are set on the emulators directly.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use metrics_emulators::appoptics::AppOpticsEmulator;
use metrics_emulators::coopr::{CooprEmulator, NodeLifetime};
use metrics_emulators::outline::OutlineEmulator;
use metrics_emulators::unleash::UnleashEmulator;
use metrics_emulators::vumi::{VumiEmulator, VumiEmulatorConfig};
use metrics_hub::appoptics::{AppOpticsClient, AppOpticsClientBuilder, Measurement};
use metrics_hub::chrono::{Duration as ChronoDuration, Utc};
use metrics_hub::coopr::{CooprClient, CooprClientBuilder};
use metrics_hub::outline::{OutlineClient, OutlineClientBuilder};
use metrics_hub::unleash::{RecorderConfig, UnleashClient, UnleashClientBuilder};
use metrics_hub::vumi::{VumiClient, VumiClientBuilder};
use metrics_hub::{MetricsSource, Query};

/// Any error of the demo setup.
pub type DemoError = Box<dyn std::error::Error + Send + Sync>;

/// The metrics the AppOptics source reads.
pub const APPOPTICS_METRICS: [&str; 2] = ["checkout.requests", "checkout.latency"];
/// The metrics the Vumi source reads.
pub const VUMI_METRICS: [&str; 3] = [
    "stores.default.sessions_started.sum",
    "stores.default.active_users.last",
    "conversations.7c9e6679-7425-40de-944b-e07fc1f90ae7.messages_sent.sum",
];
/// The Unleash flags the demo evaluates.
pub const UNLEASH_FLAGS: [&str; 2] = ["new-checkout", "dark-mode"];
const VUMI_TOKEN: &str = "demo-token";
const VUMI_OWNER: &str = "demo-account";

/// The five backends, in the order they are collected and shown.
pub const BACKENDS: [&str; 5] = ["outline", "appoptics", "unleash", "coopr", "vumi"];

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

/// A server with a handful of keys and 30 days of traffic on most of them.
fn seed_outline(emulator: &OutlineEmulator) -> Result<OutlineClient, DemoError> {
    let ids = emulator.add_access_keys(5);
    for (id, bytes) in ids
        .iter()
        .zip([2_150_000_000_u64, 734_003_200, 15_728_640, 0, 98_304])
    {
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
        .with_token("demo-appoptics-token")
        .with_base_url(emulator.api_url())
        .with_tag("service", "checkout")
        .with_source_metrics(APPOPTICS_METRICS)
        .build()?;
    let queue = client.queue().build()?;
    let now = Utc::now();
    for hours_ago in (0..24).rev() {
        let time = now - ChronoDuration::hours(hours_ago) - ChronoDuration::minutes(1);
        for (host, load) in [("web-1", 1.0), ("web-2", 0.6)] {
            let busy = 1.0
                + (f64::from(i32::try_from(24 - hours_ago).unwrap_or(0)) / 4.0)
                    .sin()
                    .abs();
            queue
                .add_measurement(
                    Measurement::new("checkout.requests", (1200.0 * load * busy).round())
                        .with_tag("host", host)
                        .with_time(time),
                )
                .await?;
            queue
                .add_measurement(
                    Measurement::new("checkout.latency", 0.080 + 0.040 * busy * load)
                        .with_tag("host", host)
                        .with_time(time),
                )
                .await?;
        }
    }
    queue.submit().await?;
    Ok(client)
}

/// Two flags evaluated by many concurrent tasks, counted by the recorder and flushed.
async fn seed_unleash(emulator: &UnleashEmulator) -> Result<UnleashClient, DemoError> {
    for flag in UNLEASH_FLAGS {
        emulator.add_flag(flag);
    }
    let client = UnleashClient::builder()
        .with_url(emulator.base_url())
        .with_api_token(UnleashEmulator::CLIENT_TOKEN)
        .with_admin_token(UnleashEmulator::ADMIN_TOKEN)
        .with_app_name("checkout-web")
        .with_instance_id("checkout-web-1")
        .with_features(UNLEASH_FLAGS)
        .build()?;
    let recorder = client.start_recorder(RecorderConfig::new())?;
    let mut tasks = Vec::new();
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
    let acme = emulator.add_tenant("acme");
    let globex = emulator.add_tenant("globex");
    for (tenant, user) in [(&acme, "alice"), (&globex, "george")] {
        emulator.add_user(tenant, user);
    }
    emulator.enqueue_tasks(&acme, 34);
    emulator.take_tasks(&acme, 8);
    emulator.enqueue_tasks(&globex, 5);
    emulator.take_tasks(&globex, 2);
    for node in ["n1", "n2", "n3"] {
        emulator.add_node(
            NodeLifetime::new(&acme, "alice", "1001", node, ago(20 * 60))
                .deleted_at(ago(3 * 60))
                .with_cluster_template("hadoop-distributed"),
        );
    }
    emulator.add_node(
        NodeLifetime::new(&globex, "george", "2001", "n1", ago(9 * 60)).deleted_at(ago(60)),
    );
    Ok(CooprClient::builder()
        .with_base_url(emulator.base_url())
        .with_user_id("admin")
        .with_tenant("superadmin")
        .with_api_key("demo-coopr-key")
        .build()?)
}

/// Current values fired through the client.
async fn seed_vumi(emulator: &VumiEmulator) -> Result<VumiClient, DemoError> {
    let client = VumiClient::builder()
        .with_base_url(emulator.api_url())
        .with_token(VUMI_TOKEN)
        .with_metrics(VUMI_METRICS)
        .build()?;
    client
        .fire([
            (VUMI_METRICS[0], 42.0),
            (VUMI_METRICS[1], 187.0),
            (VUMI_METRICS[2], 1310.0),
        ])
        .await?;
    Ok(client)
}
