//! Where the sources come from — a config file, the backends' environment variables, or the
//! demo's emulators — and turning config settings into each backend's client.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use metrics_hub::appoptics::AppOpticsClient;
use metrics_hub::coopr::CooprClient;
use metrics_hub::outline::OutlineClient;
use metrics_hub::unleash::UnleashClient;
use metrics_hub::vumi::VumiClient;
use metrics_hub::{
    ClientOptions, MetricsSource, MetricsSourceExt as _, Query, Result as HubResult, Series,
    async_trait,
};

use crate::config::{self, Backend, Config, ConfigError, Connection, Env, Schedule, Server};
use crate::demo::Demo;

/// Unleash servers close idle connections after 15 s; reuse them only for less.
const UNLEASH_POOL_IDLE: Duration = Duration::from_secs(10);

/// How far back demo sources ask: the seeded day.
const DEMO_RANGE: Duration = Duration::from_secs(24 * 3600);

/// One named source, ready to collect from.
#[derive(Clone, Debug)]
pub(crate) struct Source {
    /// Its name: the config table's, or the backend's.
    pub(crate) name: String,
    /// Its backend's name.
    pub(crate) backend: &'static str,
    /// The client.
    pub(crate) client: Arc<dyn MetricsSource>,
    /// Interval, timeout, range and step.
    pub(crate) schedule: Schedule,
    /// Series name patterns; empty means all.
    pub(crate) names: Vec<String>,
    /// Labels added to every series.
    pub(crate) labels: BTreeMap<String, String>,
}

impl Source {
    fn new(name: impl Into<String>, client: Arc<dyn MetricsSource>) -> Self {
        Self {
            name: name.into(),
            backend: client.backend(),
            client,
            schedule: Schedule::default(),
            names: Vec::new(),
            labels: BTreeMap::new(),
        }
    }

    /// Whether the source's own name filter keeps a series called `name`.
    pub(crate) fn wants(&self, name: &str) -> bool {
        self.names.is_empty()
            || Query::new()
                .with_names(self.names.iter().cloned())
                .matches_name(name)
    }

    /// `query` with the source's own name filter where the query has none, and its range and
    /// step where the query has none.
    pub(crate) fn query_for(&self, query: &Query) -> Query {
        let mut own = Query::new();
        own = match query.range {
            Some(range) => own.with_range(range.start, range.end),
            None => own.last(self.schedule.range),
        };
        own = own.with_step(query.step.unwrap_or(self.schedule.step));
        if query.names.is_empty() {
            own.with_names(self.names.iter().cloned())
        } else {
            own.with_names(query.names.iter().cloned())
        }
    }

    /// Collects once, with the source's timeout, filters and labels applied.
    pub(crate) async fn collect(&self, query: &Query) -> HubResult<Vec<Series>> {
        let query = self.query_for(query);
        let mut series = self
            .client
            .collect_with_timeout(&query, self.schedule.timeout)
            .await?;
        series.retain(|s| query.matches_name(&s.name) && self.wants(&s.name));
        for one in &mut series {
            for (name, value) in &self.labels {
                one.labels
                    .entry(name.clone())
                    .or_insert_with(|| value.clone());
            }
        }
        Ok(series)
    }
}

/// A [`Source`] as a [`MetricsSource`] for the core's `Aggregator`, telling `done` when it
/// has answered.
pub(crate) struct Tracked {
    pub(crate) source: Source,
    pub(crate) done: Box<dyn Fn(&str) + Send + Sync>,
}

impl fmt::Debug for Tracked {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tracked")
            .field("source", &self.source.name)
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl MetricsSource for Tracked {
    fn backend(&self) -> &'static str {
        self.source.backend
    }

    async fn collect(&self, query: &Query) -> HubResult<Vec<Series>> {
        let result = self.source.collect(query).await;
        (self.done)(&self.source.name);
        result
    }

    fn endpoint(&self) -> Option<String> {
        self.source.client.endpoint()
    }
}

/// Where the sources came from, for what the command says about them.
#[derive(Debug)]
pub(crate) enum Origin {
    /// A config file.
    Config(PathBuf),
    /// The backends' own environment variables.
    Environment,
    /// The built-in emulators.
    Demo,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Config(path) => write!(f, "{}", path.display()),
            Self::Environment => f.write_str("the backends' environment variables"),
            Self::Demo => f.write_str("the built-in emulators"),
        }
    }
}

/// What a command runs on.
#[derive(Debug)]
pub(crate) struct Setup {
    /// The sources, in config order.
    pub(crate) sources: Vec<Source>,
    /// `[server]`, default without a config file.
    pub(crate) server: Server,
    /// Where they came from.
    pub(crate) origin: Origin,
    /// The demo, kept alive while its emulators serve.
    pub(crate) demo: Option<Demo>,
}

/// Why a setup failed: the config (exit status 2) or something at run time (1).
#[derive(Debug)]
pub(crate) enum SetupError {
    Config(ConfigError),
    Failed(String),
}

impl From<ConfigError> for SetupError {
    fn from(error: ConfigError) -> Self {
        Self::Config(error)
    }
}

/// The variable that makes a backend a source when there is no config file.
fn marker(backend: Backend) -> &'static str {
    match backend {
        Backend::Outline => "OUTLINE_API_URL",
        Backend::AppOptics => "APPOPTICS_TOKEN",
        Backend::Unleash => "UNLEASH_URL",
        Backend::Coopr => "COOPR_URL",
        Backend::Vumi => "VUMI_URL",
    }
}

/// The sources a command runs on: the config file's when there is one; without one, the
/// backends whose variables are set; without those, the demo on the built-in emulators
/// (`allow_demo`), which the command says on stderr.
pub(crate) async fn setup(
    config_flag: Option<&std::path::Path>,
    env: Env<'_>,
    allow_demo: bool,
) -> Result<Setup, SetupError> {
    if let Some(path) = config::locate(config_flag, env) {
        let config = config::load(&path, env)?;
        return from_config(config, path).map_err(SetupError::Config);
    }
    let set = |name: &str| env(name).is_some_and(|v| !v.trim().is_empty());
    let from_env: Vec<Backend> = Backend::ALL
        .into_iter()
        .filter(|b| set(marker(*b)))
        .collect();
    if !from_env.is_empty() {
        let mut sources = Vec::new();
        for backend in from_env {
            let client = client_from_env(backend).map_err(|e| {
                ConfigError::new(format!(
                    "{} from the environment ({}…): {e}",
                    backend.name(),
                    marker(backend).split('_').next().unwrap_or_default()
                ))
            })?;
            sources.push(Source::new(backend.name(), client));
        }
        return Ok(Setup {
            sources,
            server: Server::default(),
            origin: Origin::Environment,
            demo: None,
        });
    }
    if !allow_demo {
        return Err(SetupError::Config(ConfigError::new(format!(
            "nothing to do: no config file (--config, {}, ./{}) and no backend variables ({})",
            config::CONFIG_ENV,
            config::DEFAULT_FILE,
            Backend::ALL.map(marker).join(", ")
        ))));
    }
    let demo = Demo::start_emulated()
        .await
        .map_err(|e| SetupError::Failed(format!("could not start the built-in emulators: {e}")))?;
    // The demo's day of data, hourly, as `Demo::query` asks for it.
    let sources = demo
        .backends
        .iter()
        .map(|b| {
            let mut source = Source::new(b.name, Arc::clone(&b.source));
            source.schedule.range = DEMO_RANGE;
            source
        })
        .collect();
    Ok(Setup {
        sources,
        server: Server::default(),
        origin: Origin::Demo,
        demo: Some(demo),
    })
}

fn from_config(config: Config, path: PathBuf) -> Result<Setup, ConfigError> {
    let mut sources = Vec::with_capacity(config.sources.len());
    for settings in config.sources {
        let client = client_from_config(&settings.connection, &settings.schedule).map_err(|e| {
            ConfigError::at(
                settings.place.clone(),
                format!("source `{}` is refused by its client: {e}", settings.name),
            )
        })?;
        sources.push(Source {
            name: settings.name,
            backend: client.backend(),
            client,
            schedule: settings.schedule,
            names: settings.names,
            labels: settings.labels,
        });
    }
    Ok(Setup {
        sources,
        server: config.server,
        origin: Origin::Config(path),
        demo: None,
    })
}

fn client_from_env(backend: Backend) -> HubResult<Arc<dyn MetricsSource>> {
    Ok(match backend {
        Backend::Outline => {
            Arc::new(metrics_hub::outline::OutlineClientBuilder::from_env().build()?)
        }
        Backend::AppOptics => {
            Arc::new(metrics_hub::appoptics::AppOpticsClientBuilder::from_env().build()?)
        }
        Backend::Unleash => {
            Arc::new(metrics_hub::unleash::UnleashClientBuilder::from_env().build()?)
        }
        Backend::Coopr => Arc::new(metrics_hub::coopr::CooprClientBuilder::from_env().build()?),
        Backend::Vumi => Arc::new(metrics_hub::vumi::VumiClientBuilder::from_env().build()?),
    })
}

/// Each backend's builder, given the config's settings; the builders validate them.
fn client_from_config(
    connection: &Connection,
    schedule: &Schedule,
) -> HubResult<Arc<dyn MetricsSource>> {
    let options = ClientOptions::new().with_timeout(schedule.timeout);
    Ok(match connection {
        Connection::Outline {
            api_url,
            cert_sha256,
        } => {
            let mut builder = OutlineClient::builder()
                .with_api_url(api_url.expose().clone())
                .with_client_options(options);
            if let Some(pin) = cert_sha256 {
                builder = builder.with_cert_sha256(pin.clone());
            }
            Arc::new(builder.build()?)
        }
        Connection::AppOptics {
            token,
            base_url,
            metrics,
            tags,
        } => {
            let mut builder = AppOpticsClient::builder()
                .with_token(token.expose().clone())
                .with_source_metrics(metrics.iter().cloned())
                .with_timeout(schedule.timeout)
                .with_client_options(options);
            if let Some(url) = base_url {
                builder = builder.with_base_url(url.clone());
            }
            for (name, value) in tags {
                builder = builder.with_tag(name.clone(), value.clone());
            }
            Arc::new(builder.build()?)
        }
        Connection::Unleash {
            url,
            api_token,
            admin_token,
            app_name,
            features,
        } => {
            let mut builder = UnleashClient::builder()
                .with_url(url.clone())
                .with_admin_token(admin_token.expose().clone())
                .with_features(features.iter().cloned())
                .with_client_options(options.with_pool_idle_timeout(UNLEASH_POOL_IDLE));
            if let Some(token) = api_token {
                builder = builder.with_api_token(token.expose().clone());
            }
            if let Some(app) = app_name {
                builder = builder.with_app_name(app.clone());
            }
            Arc::new(builder.build()?)
        }
        Connection::Coopr {
            url,
            user_id,
            tenant,
            api_key,
        } => {
            let mut builder = CooprClient::builder()
                .with_base_url(url.clone())
                .with_user_id(user_id.clone())
                .with_tenant(tenant.clone())
                .with_client_options(options);
            if let Some(key) = api_key {
                builder = builder.with_api_key(key.expose().clone());
            }
            Arc::new(builder.build()?)
        }
        Connection::Vumi {
            url,
            token,
            basic,
            owner_id,
            metrics,
        } => {
            let mut builder = VumiClient::builder()
                .with_base_url(url.clone())
                .with_metrics(metrics.iter().cloned())
                .with_client_options(options);
            if let Some(token) = token {
                builder = builder.with_token(token.expose().clone());
            }
            if let Some((user, password)) = basic {
                builder = builder.with_basic_auth(user.expose().clone(), password.expose().clone());
            }
            if let Some(owner) = owner_id {
                builder = builder.with_owner_id(owner.expose().clone());
            }
            Arc::new(builder.build()?)
        }
    })
}
