//! The configuration file: named sources of any backend, the exporter's `[server]`, and
//! `[defaults]` for every source. The reference is in the crate's README.
//!
//! Parsing is strict and happens before anything starts: an unknown key, a value of the
//! wrong type, an unknown backend, a key another backend has, a missing setting or an unset
//! `${VARIABLE}` is refused with the file, line and column it is at.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use metrics_hub::Secret;
use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, Visitor};
use toml::Spanned;

/// The variable naming the config file when `--config` is not given.
pub(crate) const CONFIG_ENV: &str = "METRICS_HUB_CONFIG";
/// The file read from the working directory when neither `--config` nor the variable is
/// given, if it exists.
pub(crate) const DEFAULT_FILE: &str = "metrics-hub.toml";

/// Collection defaults when neither a source nor `[defaults]` says.
pub(crate) const DEFAULT_INTERVAL: Duration = Duration::from_secs(60);
/// See [`DEFAULT_INTERVAL`].
pub(crate) const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// See [`DEFAULT_INTERVAL`].
pub(crate) const DEFAULT_RANGE: Duration = Duration::from_secs(3 * 3600);
/// See [`DEFAULT_INTERVAL`].
pub(crate) const DEFAULT_STEP: Duration = Duration::from_secs(3600);

/// Reads environment variables; a function so that tests need not change the process's.
pub(crate) type Env<'a> = &'a dyn Fn(&str) -> Option<String>;

/// Where in a file something is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Place {
    /// The file as given.
    pub(crate) file: String,
    /// 1-based line.
    pub(crate) line: usize,
    /// 1-based column, in characters.
    pub(crate) column: usize,
}

impl Place {
    fn of(file: &str, text: &str, offset: usize) -> Self {
        let offset = offset.min(text.len());
        let before = text.get(..offset).unwrap_or(text);
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let column = before
            .get(line_start..)
            .map_or(1, |s| s.chars().count() + 1);
        Self {
            file: file.to_owned(),
            line,
            column,
        }
    }
}

impl fmt::Display for Place {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file, self.line, self.column)
    }
}

/// A refused configuration: where, and what was expected. Never contains a secret value.
#[derive(Debug)]
pub(crate) struct ConfigError {
    /// Where, when the problem is at a place in a file.
    pub(crate) place: Option<Place>,
    /// What is wrong and what was expected.
    pub(crate) message: String,
}

impl ConfigError {
    pub(crate) fn new(message: impl Into<String>) -> Self {
        Self {
            place: None,
            message: message.into(),
        }
    }

    pub(crate) fn at(place: Place, message: impl Into<String>) -> Self {
        Self {
            place: Some(place),
            message: message.into(),
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.place {
            Some(place) => write!(f, "{place}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

impl std::error::Error for ConfigError {}

/// The five backends a source can be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Backend {
    Outline,
    AppOptics,
    Unleash,
    Coopr,
    Vumi,
}

impl Backend {
    pub(crate) const ALL: [Self; 5] = [
        Self::Outline,
        Self::AppOptics,
        Self::Unleash,
        Self::Coopr,
        Self::Vumi,
    ];

    /// The name used in configs and as the `backend` label (each crate's `BACKEND`).
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Outline => metrics_hub::outline::BACKEND,
            Self::AppOptics => metrics_hub::appoptics::BACKEND,
            Self::Unleash => metrics_hub::unleash::BACKEND,
            Self::Coopr => metrics_hub::coopr::BACKEND,
            Self::Vumi => metrics_hub::vumi::BACKEND,
        }
    }

    fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|b| b.name() == name)
    }

    /// The connection keys of this backend's sources.
    fn keys(self) -> &'static [&'static str] {
        match self {
            Self::Outline => &["api_url", "cert_sha256"],
            Self::AppOptics => &["token", "base_url", "metrics", "tags"],
            Self::Unleash => &["url", "api_token", "admin_token", "app_name", "features"],
            Self::Coopr => &["url", "user_id", "tenant", "api_key"],
            Self::Vumi => &[
                "url", "token", "username", "password", "owner_id", "metrics",
            ],
        }
    }
}

/// Keys every source has.
const COMMON_KEYS: [&str; 7] = [
    "backend", "interval", "timeout", "range", "step", "names", "labels",
];

/// The whole configuration, resolved: secrets read, defaults applied.
#[derive(Debug)]
pub(crate) struct Config {
    /// The exporter's settings.
    pub(crate) server: Server,
    /// The sources, in the order of the file.
    pub(crate) sources: Vec<SourceConfig>,
}

/// `[server]`.
#[derive(Debug, Default)]
pub(crate) struct Server {
    /// `listen`: where `serve` listens unless `--listen` says.
    pub(crate) listen: Option<SocketAddr>,
    /// `timestamps`: whether samples carry their time.
    pub(crate) timestamps: bool,
    /// `[server.auth]`: what a scraper must send.
    pub(crate) auth: Option<ScrapeAuth>,
}

/// What a request to `/metrics` (and `/`) must authenticate with.
#[derive(Debug)]
pub(crate) enum ScrapeAuth {
    /// HTTP Basic.
    Basic {
        username: String,
        password: Secret<String>,
    },
    /// `Authorization: Bearer <token>`.
    Bearer(Secret<String>),
}

/// When and what to collect from a source.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Schedule {
    /// Time between the starts of two collections.
    pub(crate) interval: Duration,
    /// The longest one collection may take.
    pub(crate) timeout: Duration,
    /// How far back each collection asks.
    pub(crate) range: Duration,
    /// The spacing of points asked for.
    pub(crate) step: Duration,
}

impl Default for Schedule {
    fn default() -> Self {
        Self {
            interval: DEFAULT_INTERVAL,
            timeout: DEFAULT_TIMEOUT,
            range: DEFAULT_RANGE,
            step: DEFAULT_STEP,
        }
    }
}

/// One `[sources.NAME]` table, resolved.
#[derive(Debug)]
pub(crate) struct SourceConfig {
    /// The table's name.
    pub(crate) name: String,
    /// Where the table is, for errors found later (a client that refuses the settings).
    pub(crate) place: Place,
    /// Interval, timeout, range and step.
    pub(crate) schedule: Schedule,
    /// Series name patterns; empty means all.
    pub(crate) names: Vec<String>,
    /// Labels added to every series.
    pub(crate) labels: BTreeMap<String, String>,
    /// The backend and its connection settings.
    pub(crate) connection: Connection,
}

/// A backend's connection settings, secrets resolved.
#[derive(Debug)]
pub(crate) enum Connection {
    Outline {
        api_url: Secret<String>,
        cert_sha256: Option<String>,
    },
    AppOptics {
        token: Secret<String>,
        base_url: Option<String>,
        metrics: Vec<String>,
        tags: BTreeMap<String, String>,
    },
    Unleash {
        url: String,
        api_token: Option<Secret<String>>,
        admin_token: Secret<String>,
        app_name: Option<String>,
        features: Vec<String>,
    },
    Coopr {
        url: String,
        user_id: String,
        tenant: String,
        api_key: Option<Secret<String>>,
    },
    Vumi {
        url: String,
        token: Option<Secret<String>>,
        basic: Option<(Secret<String>, Secret<String>)>,
        owner_id: Option<Secret<String>>,
        metrics: Vec<String>,
    },
}

/// Which file to read: `--config`, else `METRICS_HUB_CONFIG`, else `./metrics-hub.toml` when
/// it exists, else none.
pub(crate) fn locate(flag: Option<&Path>, env: Env<'_>) -> Option<PathBuf> {
    if let Some(path) = flag {
        return Some(path.to_owned());
    }
    if let Some(path) = env(CONFIG_ENV).filter(|p| !p.trim().is_empty()) {
        return Some(PathBuf::from(path));
    }
    let default = PathBuf::from(DEFAULT_FILE);
    default.is_file().then_some(default)
}

/// Reads and resolves the file at `path`.
pub(crate) fn load(path: &Path, env: Env<'_>) -> Result<Config, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        ConfigError::new(format!(
            "cannot read the config file {}: {e}",
            path.display()
        ))
    })?;
    let base = path.parent().unwrap_or_else(|| Path::new("."));
    parse(&text, &path.display().to_string(), base, env)
}

/// Parses and resolves a config text. `file` names it in errors; `{ file = … }` paths are
/// relative to `base`.
pub(crate) fn parse(
    text: &str,
    file: &str,
    base: &Path,
    env: Env<'_>,
) -> Result<Config, ConfigError> {
    let cx = Context {
        text,
        file,
        base,
        env,
    };
    let raw: RawConfig = toml::from_str(text).map_err(|e| {
        let message = e.message().trim().replace("unknown field", "unknown key");
        match e.span() {
            Some(span) => ConfigError::at(cx.place(span.start), message),
            None => ConfigError::new(format!("{file}: {message}")),
        }
    })?;
    let server = match raw.server {
        Some(server) => cx.server(server)?,
        None => Server::default(),
    };
    let defaults = match raw.defaults {
        Some(defaults) => defaults.apply(Schedule::default(), &cx)?,
        None => Schedule::default(),
    };
    if raw.sources.is_empty() {
        return Err(ConfigError::new(format!(
            "{file} defines no source; add a [sources.NAME] table with a `backend` for each"
        )));
    }
    let mut tables: Vec<(String, Spanned<RawSource>)> = raw.sources.into_iter().collect();
    tables.sort_by_key(|(_, table)| table.span().start);
    let mut sources = Vec::with_capacity(tables.len());
    for (name, table) in tables {
        sources.push(cx.source(name, table, defaults)?);
    }
    Ok(Config { server, sources })
}

struct Context<'a> {
    text: &'a str,
    file: &'a str,
    base: &'a Path,
    env: Env<'a>,
}

impl Context<'_> {
    fn place(&self, offset: usize) -> Place {
        Place::of(self.file, self.text, offset)
    }

    fn error(&self, span: &Range<usize>, message: impl Into<String>) -> ConfigError {
        ConfigError::at(self.place(span.start), message)
    }

    /// A `Text` value's string: `${VAR}` references replaced, `{ file = … }` read.
    fn resolve(&self, text: &Spanned<Text>, key: &str) -> Result<String, ConfigError> {
        let span = text.span();
        match text.get_ref() {
            Text::Inline(value) => self.expand(value, &span, key),
            Text::File(path) => {
                let path = self.expand(path, &span, key)?;
                let full = self.base.join(&path);
                let content = std::fs::read_to_string(&full).map_err(|e| {
                    self.error(
                        &span,
                        format!("cannot read `{key}` from the file {}: {e}", full.display()),
                    )
                })?;
                let value = content.trim_end_matches(['\n', '\r']).to_owned();
                if value.is_empty() {
                    return Err(self.error(
                        &span,
                        format!("`{key}`: the file {} is empty", full.display()),
                    ));
                }
                Ok(value)
            }
        }
    }

    fn secret(&self, text: &Spanned<Text>, key: &str) -> Result<Secret<String>, ConfigError> {
        self.resolve(text, key).map(Secret::new)
    }

    /// Replaces every `${NAME}` with the variable's value; `$$` is a literal `$`.
    fn expand(&self, value: &str, span: &Range<usize>, key: &str) -> Result<String, ConfigError> {
        let mut out = String::with_capacity(value.len());
        let mut rest = value;
        while let Some(at) = rest.find('$') {
            out.push_str(&rest[..at]);
            let after = &rest[at + 1..];
            if let Some(tail) = after.strip_prefix('$') {
                out.push('$');
                rest = tail;
            } else if let Some(reference) = after.strip_prefix('{') {
                let Some(end) = reference.find('}') else {
                    return Err(self.error(
                        span,
                        format!(
                            "`{key}`: `${{` without a closing `}}`; write `$$` for a literal `$`"
                        ),
                    ));
                };
                let name = &reference[..end];
                let valid = !name.is_empty()
                    && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                    && !name.starts_with(|c: char| c.is_ascii_digit());
                if !valid {
                    return Err(self.error(
                        span,
                        format!("`{key}`: `${{{name}}}` is not a variable name (letters, digits and `_`)"),
                    ));
                }
                match (self.env)(name).filter(|v| !v.is_empty()) {
                    Some(found) => out.push_str(&found),
                    None => {
                        return Err(self.error(
                            span,
                            format!(
                                "`{key}` refers to the environment variable {name}, which is not set (or empty); set it, or write the value another way"
                            ),
                        ));
                    }
                }
                rest = &reference[end + 1..];
            } else {
                out.push('$');
                rest = after;
            }
        }
        out.push_str(rest);
        Ok(out)
    }

    fn server(&self, raw: RawServer) -> Result<Server, ConfigError> {
        let listen = match raw.listen {
            Some(listen) => Some(listen.get_ref().parse::<SocketAddr>().map_err(|_| {
                self.error(
                    &listen.span(),
                    format!(
                        "`listen` is `{}`; expected an address and port such as `127.0.0.1:9898` or `[::]:9898`",
                        listen.get_ref()
                    ),
                )
            })?),
            None => None,
        };
        let auth = match raw.auth {
            None => None,
            Some(auth) => {
                let span = auth.span();
                let auth = auth.into_inner();
                match (auth.username, auth.password, auth.bearer_token) {
                    (Some(user), Some(password), None) => Some(ScrapeAuth::Basic {
                        username: self.resolve(&user, "username")?,
                        password: self.secret(&password, "password")?,
                    }),
                    (None, None, Some(token)) => {
                        Some(ScrapeAuth::Bearer(self.secret(&token, "bearer_token")?))
                    }
                    _ => {
                        return Err(self.error(
                            &span,
                            "[server.auth] takes either `username` and `password` (HTTP Basic) or `bearer_token`",
                        ));
                    }
                }
            }
        };
        Ok(Server {
            listen,
            timestamps: raw.timestamps.unwrap_or(false),
            auth,
        })
    }

    fn source(
        &self,
        name: String,
        table: Spanned<RawSource>,
        defaults: Schedule,
    ) -> Result<SourceConfig, ConfigError> {
        let table_span = table.span();
        let place = self.place(table_span.start);
        let raw = table.into_inner();
        if name.trim().is_empty() {
            return Err(self.error(&table_span, "a source needs a non-empty name"));
        }
        let Some(backend) = Backend::parse(raw.backend.get_ref()) else {
            return Err(self.error(
                &raw.backend.span(),
                format!(
                    "unknown backend `{}` in source `{name}`; expected one of {}",
                    raw.backend.get_ref(),
                    Backend::ALL.map(Backend::name).join(", ")
                ),
            ));
        };
        for (key, span) in raw.present_keys() {
            if !backend.keys().contains(&key) {
                let mut expected: Vec<&str> = COMMON_KEYS.to_vec();
                expected.extend(backend.keys());
                return Err(self.error(
                    &span,
                    format!(
                        "`{key}` is not a setting of {} sources (source `{name}`); expected one of {}",
                        backend.name(),
                        expected.join(", ")
                    ),
                ));
            }
        }
        let schedule = apply_schedule(
            [&raw.interval, &raw.timeout, &raw.range, &raw.step],
            defaults,
            self,
        )?;
        let labels = match &raw.labels {
            None => BTreeMap::new(),
            Some(labels) => {
                for label in labels.get_ref().keys() {
                    if let Some(problem) = label_name_problem(label) {
                        return Err(self.error(
                            &labels.span(),
                            format!("label `{label}` of source `{name}` {problem}"),
                        ));
                    }
                }
                labels.get_ref().clone()
            }
        };
        fn present(
            value: Option<&Spanned<Text>>,
            missing: impl FnOnce() -> ConfigError,
        ) -> Result<&Spanned<Text>, ConfigError> {
            value.ok_or_else(missing)
        }
        let missing = |key: &str| {
            self.error(
                &table_span,
                format!("source `{name}` ({}) needs `{key}`", backend.name()),
            )
        };
        let required = |value, key: &'static str| present(value, || missing(key));
        let optional = |value: Option<&Spanned<Text>>, key: &str| {
            value.map(|v| self.resolve(v, key)).transpose()
        };
        let optional_secret = |value: Option<&Spanned<Text>>, key: &str| {
            value.map(|v| self.secret(v, key)).transpose()
        };
        let list = |value: Option<&Spanned<Vec<String>>>| {
            value.map(|v| v.get_ref().clone()).unwrap_or_default()
        };
        let connection = match backend {
            Backend::Outline => Connection::Outline {
                api_url: self.secret(required(raw.api_url.as_ref(), "api_url")?, "api_url")?,
                cert_sha256: optional(raw.cert_sha256.as_ref(), "cert_sha256")?,
            },
            Backend::AppOptics => {
                let metrics = list(raw.metrics.as_ref());
                if metrics.is_empty() {
                    return Err(self.error(
                        &raw.metrics
                            .as_ref()
                            .map_or(table_span.clone(), Spanned::span),
                        format!(
                            "source `{name}` (appoptics) needs `metrics`: the metric names to read"
                        ),
                    ));
                }
                Connection::AppOptics {
                    token: self.secret(required(raw.token.as_ref(), "token")?, "token")?,
                    base_url: optional(raw.base_url.as_ref(), "base_url")?,
                    metrics,
                    tags: raw.tags.map(Spanned::into_inner).unwrap_or_default(),
                }
            }
            Backend::Unleash => Connection::Unleash {
                url: self.resolve(required(raw.url.as_ref(), "url")?, "url")?,
                api_token: optional_secret(raw.api_token.as_ref(), "api_token")?,
                admin_token: self.secret(
                    required(raw.admin_token.as_ref(), "admin_token")?,
                    "admin_token",
                )?,
                app_name: raw.app_name.map(Spanned::into_inner),
                features: list(raw.features.as_ref()),
            },
            Backend::Coopr => Connection::Coopr {
                url: self.resolve(required(raw.url.as_ref(), "url")?, "url")?,
                user_id: self.resolve(required(raw.user_id.as_ref(), "user_id")?, "user_id")?,
                tenant: self.resolve(required(raw.tenant.as_ref(), "tenant")?, "tenant")?,
                api_key: optional_secret(raw.api_key.as_ref(), "api_key")?,
            },
            Backend::Vumi => {
                let metrics = list(raw.metrics.as_ref());
                if metrics.is_empty() {
                    return Err(self.error(
                        &raw.metrics
                            .as_ref()
                            .map_or(table_span.clone(), Spanned::span),
                        format!("source `{name}` (vumi) needs `metrics`: the metric names to read"),
                    ));
                }
                let basic = match (&raw.username, &raw.password) {
                    (Some(user), Some(password)) => Some((
                        self.secret(user, "username")?,
                        self.secret(password, "password")?,
                    )),
                    (None, None) => None,
                    (Some(one), None) | (None, Some(one)) => {
                        return Err(self.error(
                            &one.span(),
                            format!(
                                "source `{name}` (vumi): `username` and `password` go together"
                            ),
                        ));
                    }
                };
                if basic.is_some()
                    && let Some(token) = &raw.token
                {
                    return Err(self.error(
                        &token.span(),
                        format!("source `{name}` (vumi) takes either `token` or `username` and `password`, not both"),
                    ));
                }
                Connection::Vumi {
                    url: self.resolve(required(raw.url.as_ref(), "url")?, "url")?,
                    token: optional_secret(raw.token.as_ref(), "token")?,
                    basic,
                    owner_id: optional_secret(raw.owner_id.as_ref(), "owner_id")?,
                    metrics,
                }
            }
        };
        Ok(SourceConfig {
            name,
            place,
            schedule,
            names: list(raw.names.as_ref()),
            labels,
            connection,
        })
    }
}

/// Why `name` cannot be a label added by the config, if it cannot.
fn label_name_problem(name: &str) -> Option<&'static str> {
    let valid = name
        .chars()
        .enumerate()
        .all(|(i, c)| c.is_ascii_alphabetic() || c == '_' || (i > 0 && c.is_ascii_digit()));
    if name.is_empty() || !valid {
        Some("is not a valid label name (letters, digits and `_`, not starting with a digit)")
    } else if name.starts_with("__") {
        Some("starts with `__`, which Prometheus reserves")
    } else if name == "source" {
        Some("is reserved: every series is labelled with its source's name as `source`")
    } else {
        None
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    server: Option<RawServer>,
    defaults: Option<RawSchedule>,
    #[serde(default)]
    sources: BTreeMap<String, Spanned<RawSource>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawServer {
    listen: Option<Spanned<String>>,
    timestamps: Option<bool>,
    auth: Option<Spanned<RawAuth>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAuth {
    username: Option<Spanned<Text>>,
    password: Option<Spanned<Text>>,
    bearer_token: Option<Spanned<Text>>,
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSchedule {
    interval: Option<Spanned<HumanDuration>>,
    timeout: Option<Spanned<HumanDuration>>,
    range: Option<Spanned<HumanDuration>>,
    step: Option<Spanned<HumanDuration>>,
}

impl RawSchedule {
    fn apply(&self, schedule: Schedule, cx: &Context<'_>) -> Result<Schedule, ConfigError> {
        apply_schedule(
            [&self.interval, &self.timeout, &self.range, &self.step],
            schedule,
            cx,
        )
    }
}

/// Sets interval, timeout, range and step (in that order) where given.
fn apply_schedule(
    values: [&Option<Spanned<HumanDuration>>; 4],
    mut schedule: Schedule,
    cx: &Context<'_>,
) -> Result<Schedule, ConfigError> {
    {
        let [interval, timeout, range, step] = values;
        for (key, value, slot) in [
            ("interval", interval, &mut schedule.interval),
            ("timeout", timeout, &mut schedule.timeout),
            ("range", range, &mut schedule.range),
            ("step", step, &mut schedule.step),
        ] {
            if let Some(value) = value {
                if value.get_ref().0.is_zero() {
                    return Err(
                        cx.error(&value.span(), format!("`{key}` must be longer than zero"))
                    );
                }
                *slot = value.get_ref().0;
            }
        }
    }
    Ok(schedule)
}

/// Every key a source table may have; which of them a backend takes is checked after
/// parsing, so that a misplaced key is named with its backend.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSource {
    backend: Spanned<String>,
    interval: Option<Spanned<HumanDuration>>,
    timeout: Option<Spanned<HumanDuration>>,
    range: Option<Spanned<HumanDuration>>,
    step: Option<Spanned<HumanDuration>>,
    names: Option<Spanned<Vec<String>>>,
    labels: Option<Spanned<BTreeMap<String, String>>>,
    api_url: Option<Spanned<Text>>,
    cert_sha256: Option<Spanned<Text>>,
    token: Option<Spanned<Text>>,
    base_url: Option<Spanned<Text>>,
    metrics: Option<Spanned<Vec<String>>>,
    tags: Option<Spanned<BTreeMap<String, String>>>,
    url: Option<Spanned<Text>>,
    api_token: Option<Spanned<Text>>,
    admin_token: Option<Spanned<Text>>,
    app_name: Option<Spanned<String>>,
    features: Option<Spanned<Vec<String>>>,
    user_id: Option<Spanned<Text>>,
    tenant: Option<Spanned<Text>>,
    api_key: Option<Spanned<Text>>,
    username: Option<Spanned<Text>>,
    password: Option<Spanned<Text>>,
    owner_id: Option<Spanned<Text>>,
}

impl RawSource {
    /// The connection keys the table sets, with the spans of their values.
    fn present_keys(&self) -> Vec<(&'static str, Range<usize>)> {
        let texts = [
            ("api_url", &self.api_url),
            ("cert_sha256", &self.cert_sha256),
            ("token", &self.token),
            ("base_url", &self.base_url),
            ("url", &self.url),
            ("api_token", &self.api_token),
            ("admin_token", &self.admin_token),
            ("user_id", &self.user_id),
            ("tenant", &self.tenant),
            ("api_key", &self.api_key),
            ("username", &self.username),
            ("password", &self.password),
            ("owner_id", &self.owner_id),
        ];
        let mut keys: Vec<(&'static str, Range<usize>)> = texts
            .into_iter()
            .filter_map(|(key, value)| value.as_ref().map(|v| (key, v.span())))
            .collect();
        for (key, value) in [("metrics", &self.metrics), ("features", &self.features)] {
            if let Some(value) = value {
                keys.push((key, value.span()));
            }
        }
        if let Some(tags) = &self.tags {
            keys.push(("tags", tags.span()));
        }
        if let Some(app_name) = &self.app_name {
            keys.push(("app_name", app_name.span()));
        }
        keys.sort_by_key(|(_, span)| span.start);
        keys
    }
}

/// A string setting that may come from elsewhere: `"…${VAR}…"` takes variables from the
/// environment (`$$` is a literal `$`), `{ file = "/path" }` reads a file (trailing newlines
/// removed; relative paths from the config file's directory).
#[derive(Debug)]
enum Text {
    Inline(String),
    File(String),
}

impl<'de> Deserialize<'de> for Text {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct TextVisitor;

        // Every non-string case is refused without echoing the value: it may be a secret
        // written in the wrong form.
        impl<'de> Visitor<'de> for TextVisitor {
            type Value = Text;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(
                    r#"a string ("…", "${VARIABLE}") or a file reference ({ file = "/path" })"#,
                )
            }

            fn visit_str<E: de::Error>(self, value: &str) -> Result<Text, E> {
                Ok(Text::Inline(value.to_owned()))
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Text, A::Error> {
                let mut file = None;
                while let Some(key) = map.next_key::<String>()? {
                    if key == "file" && file.is_none() {
                        file = Some(map.next_value::<String>()?);
                    } else {
                        return Err(de::Error::custom(format!(
                            "unknown key `{key}` in a file reference; expected {{ file = \"/path\" }}"
                        )));
                    }
                }
                file.map(Text::File)
                    .ok_or_else(|| de::Error::custom("a file reference needs `file = \"/path\"`"))
            }

            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Text, E> {
                Err(E::custom(WRONG_TEXT))
            }

            fn visit_i64<E: de::Error>(self, _: i64) -> Result<Text, E> {
                Err(E::custom(WRONG_TEXT))
            }

            fn visit_u64<E: de::Error>(self, _: u64) -> Result<Text, E> {
                Err(E::custom(WRONG_TEXT))
            }

            fn visit_f64<E: de::Error>(self, _: f64) -> Result<Text, E> {
                Err(E::custom(WRONG_TEXT))
            }

            fn visit_seq<A: de::SeqAccess<'de>>(self, _: A) -> Result<Text, A::Error> {
                Err(de::Error::custom(WRONG_TEXT))
            }
        }

        deserializer.deserialize_any(TextVisitor)
    }
}

const WRONG_TEXT: &str =
    r#"expected a string ("…", "${VARIABLE}") or a file reference ({ file = "/path" })"#;

/// A duration written `"30s"`, `"5m"`, `"1h30m"`, `"500ms"`, `"1d"`, or a number of seconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct HumanDuration(Duration);

impl<'de> Deserialize<'de> for HumanDuration {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct DurationVisitor;

        impl Visitor<'_> for DurationVisitor {
            type Value = HumanDuration;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(r#"a duration such as "30s", "5m", "1h30m", "500ms" or "1d""#)
            }

            fn visit_str<E: de::Error>(self, value: &str) -> Result<HumanDuration, E> {
                parse_duration(value).map(HumanDuration).map_err(E::custom)
            }

            fn visit_i64<E: de::Error>(self, value: i64) -> Result<HumanDuration, E> {
                u64::try_from(value)
                    .map(|s| HumanDuration(Duration::from_secs(s)))
                    .map_err(|_| E::custom("a duration cannot be negative"))
            }

            fn visit_u64<E: de::Error>(self, value: u64) -> Result<HumanDuration, E> {
                Ok(HumanDuration(Duration::from_secs(value)))
            }
        }

        deserializer.deserialize_any(DurationVisitor)
    }
}

/// Parses `"30s"`, `"5m"`, `"1h30m"`, `"500ms"`, `"1d"`, `"1w"`: numbers each followed by a
/// unit (`ms`, `s`, `m`, `h`, `d`, `w`), added up.
pub(crate) fn parse_duration(text: &str) -> Result<Duration, String> {
    let trimmed = text.trim();
    let wrong = || {
        format!(
            "`{trimmed}` is not a duration; write a number and a unit (ms, s, m, h, d, w), such as 30s, 5m or 1h30m"
        )
    };
    if trimmed.is_empty() {
        return Err(wrong());
    }
    let mut total = Duration::ZERO;
    let mut rest = trimmed;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(wrong)?;
        let number: f64 = rest[..digits].parse().map_err(|_| wrong())?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let seconds = match &rest[..unit_len] {
            "ms" => 0.001,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            "d" => 86_400.0,
            "w" => 604_800.0,
            _ => return Err(wrong()),
        };
        rest = &rest[unit_len..];
        total += Duration::try_from_secs_f64(number * seconds).map_err(|_| wrong())?;
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "TOKEN" => Some("t0ken".to_owned()),
            "HOST" => Some("unleash.example".to_owned()),
            _ => None,
        }
    }

    fn parse_text(text: &str) -> Result<Config, ConfigError> {
        parse(text, "hub.toml", Path::new("."), &env)
    }

    fn refusal(text: &str) -> String {
        parse_text(text).unwrap_err().to_string()
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("1.5m"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("2d"), Ok(Duration::from_secs(172_800)));
        for bad in ["", "10", "m", "5 minutes", "1x", "-1s"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_full_config_resolves() {
        let config = parse_text(
            r#"
[server]
listen = "0.0.0.0:9999"
timestamps = true
[server.auth]
bearer_token = "${TOKEN}"

[defaults]
interval = "30s"

[sources.flags]
backend = "unleash"
url = "https://${HOST}/api"
admin_token = "$${literal}"
features = ["a", "b"]
timeout = "5s"
labels = { team = "web" }

[sources.edge]
backend = "outline"
api_url = "${TOKEN}"
"#,
        )
        .unwrap();
        assert_eq!(config.server.listen, Some("0.0.0.0:9999".parse().unwrap()));
        assert!(config.server.timestamps);
        assert!(
            matches!(&config.server.auth, Some(ScrapeAuth::Bearer(t)) if t.expose() == "t0ken")
        );
        let names: Vec<&str> = config.sources.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["flags", "edge"], "file order");
        let flags = &config.sources[0];
        assert_eq!(flags.schedule.interval, Duration::from_secs(30));
        assert_eq!(flags.schedule.timeout, Duration::from_secs(5));
        assert_eq!(flags.schedule.step, DEFAULT_STEP);
        assert_eq!(flags.labels["team"], "web");
        assert_eq!(flags.place.line, 11, "the table header");
        match &flags.connection {
            Connection::Unleash {
                url,
                admin_token,
                features,
                ..
            } => {
                assert_eq!(url, "https://unleash.example/api");
                assert_eq!(admin_token.expose(), "${literal}");
                assert_eq!(features, &["a", "b"]);
            }
            other => panic!("{other:?}"),
        }
        let debug = format!("{config:?}");
        assert!(!debug.contains("t0ken"), "{debug}");
    }

    #[test]
    fn refusals_name_the_place() {
        assert!(
            refusal("[sources.a]\nbackend = \"outline\"\napi_url = \"x\"\nbogus = 1\n")
                .starts_with("hub.toml:4:1: unknown key `bogus`")
        );
        assert_eq!(
            refusal("[sources.a]\nbackend = \"graphite\"\n"),
            "hub.toml:2:11: unknown backend `graphite` in source `a`; expected one of outline, appoptics, unleash, coopr, vumi"
        );
        assert!(
            refusal("[sources.a]\nbackend = \"outline\"\napi_url = \"${NOPE}\"\n").starts_with(
                "hub.toml:3:11: `api_url` refers to the environment variable NOPE, which is not set"
            )
        );
        assert!(
            refusal("[sources.a]\nbackend = \"outline\"\napi_url = \"x\"\ntoken = \"y\"\n")
                .starts_with("hub.toml:4:9: `token` is not a setting of outline sources")
        );
        assert!(refusal("[sources.a]\nbackend = \"coopr\"\n").contains("needs `url`"));
        assert!(
            refusal("[sources.a]\nbackend = \"outline\"\napi_url = \"x\"\ninterval = \"soon\"\n")
                .starts_with("hub.toml:4:12: `soon` is not a duration")
        );
        assert!(refusal("[sources.a\n").starts_with("hub.toml:1:"));
        assert_eq!(
            refusal("[server]\ntimestamps = true\n"),
            "hub.toml defines no source; add a [sources.NAME] table with a `backend` for each"
        );
        assert!(refusal("[server]\nlisten = \"here\"\n").starts_with("hub.toml:2:10:"));
        assert!(
            refusal(
                "[sources.a]\nbackend = \"outline\"\napi_url = \"x\"\nlabels = { source = \"y\" }\n"
            )
            .contains("reserved")
        );
    }

    #[test]
    fn secrets_in_the_wrong_form_are_not_echoed() {
        let message = refusal("[sources.a]\nbackend = \"outline\"\napi_url = 123456789\n");
        assert!(
            message.starts_with("hub.toml:3:11: expected a string"),
            "{message}"
        );
        assert!(!message.contains("123456789"), "{message}");
    }

    #[test]
    fn file_references_are_read_and_trimmed() {
        let dir = std::env::temp_dir().join(format!("metrics-hub-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("key"), "k3y\n").unwrap();
        let config = parse(
            "[sources.c]\nbackend = \"coopr\"\nurl = \"http://c\"\nuser_id = \"admin\"\ntenant = \"t\"\napi_key = { file = \"key\" }\n",
            "hub.toml",
            &dir,
            &env,
        )
        .unwrap();
        assert!(
            matches!(&config.sources[0].connection, Connection::Coopr { api_key: Some(k), .. } if k.expose() == "k3y")
        );
        let missing = parse(
            "[sources.c]\nbackend = \"coopr\"\nurl = \"http://c\"\nuser_id = \"admin\"\ntenant = \"t\"\napi_key = { file = \"absent\" }\n",
            "hub.toml",
            &dir,
            &env,
        )
        .unwrap_err();
        assert!(
            missing
                .to_string()
                .starts_with("hub.toml:6:11: cannot read `api_key`"),
            "{missing}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
