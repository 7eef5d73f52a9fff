//! What the emulated server stores: tokens, flags, applications and instances, hourly metric
//! rows, unknown flags, and the rate-limit windows.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::{Duration, Instant};

use chrono::{DateTime, DurationRound, TimeDelta, Utc};
use serde_json::Value;

/// What a token may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TokenKind {
    /// Backend (client) token: `/api/client/*` only.
    Backend,
    /// Admin token: `/api/admin/*` only (8.x).
    Admin,
    /// Personal access or service-account token: `/api/admin/*`.
    Personal,
    /// Frontend token: neither.
    Frontend,
}

#[derive(Clone, Debug)]
pub(crate) struct Token {
    pub(crate) kind: TokenKind,
    pub(crate) project: String,
    pub(crate) environment: String,
}

impl Token {
    /// `<project>:<environment>.<secret>`; env `*` books under `default`.
    pub(crate) fn parse(kind: TokenKind, token: &str) -> Self {
        let (scope, _) = token.split_once('.').unwrap_or((token, ""));
        let (project, environment) = scope.split_once(':').unwrap_or(("*", "*"));
        let environment = if environment == "*" || environment.is_empty() {
            "default"
        } else {
            environment
        };
        Self {
            kind,
            project: project.to_owned(),
            environment: environment.to_owned(),
        }
    }
}

#[derive(Clone, Debug)]
pub(crate) struct Flag {
    pub(crate) project: String,
    pub(crate) kind: String,
    pub(crate) description: Option<String>,
    pub(crate) created_at: DateTime<Utc>,
}

#[derive(Clone, Debug)]
pub(crate) struct App {
    pub(crate) created_at: DateTime<Utc>,
    pub(crate) updated_at: DateTime<Utc>,
    pub(crate) description: Option<String>,
    pub(crate) url: Option<String>,
    pub(crate) color: Option<String>,
    pub(crate) icon: Option<String>,
    pub(crate) strategies: Vec<String>,
    pub(crate) project: String,
    pub(crate) environment: String,
    /// project -> environments
    pub(crate) usage: BTreeMap<String, BTreeSet<String>>,
}

#[derive(Clone, Debug)]
pub(crate) struct InstanceRecord {
    pub(crate) sdk_version: Option<String>,
    pub(crate) sdk_type: Option<String>,
    pub(crate) client_ip: String,
    pub(crate) last_seen: DateTime<Utc>,
    pub(crate) created_at: DateTime<Utc>,
    pub(crate) environment: String,
}

#[derive(Clone, Debug, Default)]
pub(crate) struct Row {
    pub(crate) yes: u64,
    pub(crate) no: u64,
    pub(crate) variants: BTreeMap<String, u64>,
}

#[derive(Clone, Debug)]
pub(crate) struct Unknown {
    pub(crate) last_seen_at: DateTime<Utc>,
    /// app -> environment -> seenAt
    pub(crate) reports: BTreeMap<String, BTreeMap<String, DateTime<Utc>>>,
}

/// Which endpoint a rate limit applies to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RateLimitedEndpoint {
    /// `POST /api/client/metrics` (limited in 8.2.0 by `REGISTER_CLIENT_RATE_LIMIT_PER_MINUTE`:
    /// the variable names are swapped in the server).
    Metrics,
    /// `POST /api/client/register` (limited by `CLIENT_METRICS_RATE_LIMIT_PER_MINUTE`).
    Register,
}

#[derive(Clone, Debug)]
pub(crate) struct RateLimit {
    pub(crate) limit: u32,
    pub(crate) window: Duration,
    pub(crate) window_start: Option<Instant>,
    pub(crate) used: u32,
}

/// What a rate-limit check says.
pub(crate) struct RateVerdict {
    pub(crate) allowed: bool,
    pub(crate) limit: u32,
    pub(crate) remaining: u32,
    pub(crate) reset_secs: u64,
    pub(crate) window_secs: u64,
}

impl RateLimit {
    pub(crate) fn check(&mut self, now: Instant) -> RateVerdict {
        let start = match self.window_start {
            Some(start) if now.duration_since(start) < self.window => start,
            _ => {
                self.used = 0;
                self.window_start = Some(now);
                now
            }
        };
        let reset = self.window.saturating_sub(now.duration_since(start));
        let reset_secs = reset.as_secs() + u64::from(reset.subsec_nanos() > 0);
        let window_secs = self.window.as_secs().max(1);
        if self.used >= self.limit {
            return RateVerdict {
                allowed: false,
                limit: self.limit,
                remaining: 0,
                reset_secs: reset_secs.max(1),
                window_secs,
            };
        }
        self.used += 1;
        RateVerdict {
            allowed: true,
            limit: self.limit,
            remaining: self.limit - self.used,
            reset_secs: reset_secs.max(1),
            window_secs,
        }
    }
}

#[derive(Debug, Default)]
pub(crate) struct State {
    pub(crate) tokens: HashMap<String, Token>,
    pub(crate) flags: BTreeMap<String, Flag>,
    pub(crate) apps: BTreeMap<String, App>,
    /// (app, instance) -> instance
    pub(crate) instances: BTreeMap<(String, String), InstanceRecord>,
    /// (feature, app, environment, hour) -> counts
    pub(crate) rows: BTreeMap<(String, String, String, DateTime<Utc>), Row>,
    pub(crate) unknown: BTreeMap<String, Unknown>,
    pub(crate) rate_limits: HashMap<RateLimitedEndpoint, RateLimit>,
    pub(crate) metrics_disabled: bool,
    pub(crate) registrations: Vec<Value>,
    pub(crate) metric_posts: Vec<Value>,
}

/// The start of the hour `time` is in.
pub(crate) fn hour_of(time: DateTime<Utc>) -> DateTime<Utc> {
    time.duration_trunc(TimeDelta::hours(1)).unwrap_or(time)
}

/// `dateSchema`: an RFC 3339 string, or an integer read as **milliseconds** (as the real
/// server does, which books epoch-seconds buckets in January 1970).
pub(crate) fn parse_date(value: &Value) -> Option<DateTime<Utc>> {
    match value {
        Value::String(text) => DateTime::parse_from_rfc3339(text)
            .ok()
            .map(|t| t.with_timezone(&Utc)),
        Value::Number(number) => {
            #[allow(clippy::cast_possible_truncation, reason = "a date in ms fits i64")]
            let ms = number
                .as_i64()
                .or_else(|| number.as_f64().map(|f| f as i64))?;
            DateTime::from_timestamp_millis(ms)
        }
        _ => None,
    }
}

impl State {
    pub(crate) fn touch_app(
        &mut self,
        app_name: &str,
        token: &Token,
        strategies: Option<Vec<String>>,
        now: DateTime<Utc>,
    ) {
        let app = self.apps.entry(app_name.to_owned()).or_insert_with(|| App {
            created_at: now,
            updated_at: now,
            description: None,
            url: None,
            color: None,
            icon: None,
            strategies: Vec::new(),
            project: token.project.clone(),
            environment: token.environment.clone(),
            usage: BTreeMap::new(),
        });
        app.updated_at = now;
        if let Some(strategies) = strategies {
            app.strategies = strategies;
        }
        app.usage
            .entry(token.project.clone())
            .or_default()
            .insert(token.environment.clone());
    }

    pub(crate) fn touch_instance(
        &mut self,
        app_name: &str,
        instance_id: &str,
        token: &Token,
        sdk_version: Option<String>,
        registered: bool,
        now: DateTime<Utc>,
    ) {
        let instance = self
            .instances
            .entry((app_name.to_owned(), instance_id.to_owned()))
            .or_insert_with(|| InstanceRecord {
                sdk_version: None,
                sdk_type: None,
                client_ip: "127.0.0.1".to_owned(),
                last_seen: now,
                created_at: now,
                environment: token.environment.clone(),
            });
        instance.last_seen = now;
        if sdk_version.is_some() {
            instance.sdk_version = sdk_version;
        }
        if registered {
            instance.sdk_type = Some("backend".to_owned());
        }
    }

    /// Books one toggle's counts, as 8.2.0's metrics service does.
    #[allow(clippy::too_many_arguments, reason = "one row of the metrics table")]
    pub(crate) fn book(
        &mut self,
        feature: &str,
        app_name: &str,
        environment: &str,
        stop: DateTime<Utc>,
        yes: u64,
        no: u64,
        variants: &BTreeMap<String, u64>,
    ) {
        if yes == 0 && no == 0 {
            return;
        }
        if !self.flags.contains_key(feature) {
            let unknown = self
                .unknown
                .entry(feature.to_owned())
                .or_insert_with(|| Unknown {
                    last_seen_at: stop,
                    reports: BTreeMap::new(),
                });
            unknown.last_seen_at = unknown.last_seen_at.max(stop);
            unknown
                .reports
                .entry(app_name.to_owned())
                .or_default()
                .insert(environment.to_owned(), stop);
            return;
        }
        let row = self
            .rows
            .entry((
                feature.to_owned(),
                app_name.to_owned(),
                environment.to_owned(),
                hour_of(stop),
            ))
            .or_default();
        row.yes = row.yes.saturating_add(yes);
        row.no = row.no.saturating_add(no);
        for (variant, count) in variants {
            let slot = row.variants.entry(variant.clone()).or_default();
            *slot = slot.saturating_add(*count);
        }
    }

    /// Flags with rows for `app`.
    pub(crate) fn seen_flags(&self, app: &str) -> BTreeSet<String> {
        self.rows
            .keys()
            .filter(|(_, a, _, _)| a == app)
            .map(|(f, _, _, _)| f.clone())
            .collect()
    }
}
