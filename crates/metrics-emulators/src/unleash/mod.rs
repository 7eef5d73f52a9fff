//! An emulator of unleash-server 8.2.0's client-metrics API.
//!
//! What it reproduces (from the project's reference notes, observed live):
//!
//! * `POST /api/client/register` and `POST /api/client/metrics` with the server's OpenAPI
//!   validation: first error only, `BadDataError` bodies with the server's wording (a bad date
//!   gives three `details`), HTML 400 for a body that is not JSON, 202 with an empty body
//!   (register with `RateLimit-*` and `X-Unleash-Version` headers, metrics with none), 204
//!   when metrics are disabled.
//! * Token types: backend tokens only on `/api/client/*` (others 403 "expected a different
//!   token type"), admin tokens and PATs only on `/api/admin/*`; missing or unknown tokens 401
//!   with the bodies of each API. The environment comes from the token (`*` → `default`).
//! * Booking as 8.2.0 does it: the whole bucket under the hour of `bucket.stop` (`start` is
//!   ignored), integers read as milliseconds, all-zero toggles dropped, unknown flag names
//!   listed under unknown flags instead of counted, rows additive.
//! * The 8.x read-back: applications (search, sort, paging, `total`), application details
//!   (404 `NotFoundError` for an unknown app), overview (an unknown app's odd
//!   `featureCount: 1` included), instances, `client-metrics/features/:name` and `/raw`
//!   (`hoursBack` out of range → 24, zero-filled hours without `variants`), unknown flags,
//!   and the legacy views' 410 bodies.
//! * Rate limiting on demand ([`UnleashEmulator::set_rate_limit`]): 429 with `Retry-After`,
//!   `RateLimit-*` headers and the HTML body; plus the shared [`faults`](crate::Faults).
//!
//! Unlike the real server it writes immediately (no 5 s / 20 s flush) and does not memoize
//! flag names, so tests need not poll.
//!
//! ```no_run
//! # async fn run() -> std::io::Result<()> {
//! use metrics_emulators::unleash::UnleashEmulator;
//!
//! let unleash = UnleashEmulator::start().await?;
//! unleash.add_flag("new-checkout");
//! // point a client at unleash.base_url() with UnleashEmulator::CLIENT_TOKEN …
//! assert_eq!(unleash.counts("new-checkout"), (0, 0));
//! # Ok(()) }
//! ```

mod routes;
mod state;
mod validate;

use std::collections::BTreeMap;
use std::io;
use std::ops::{Deref, DerefMut};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use chrono::{DateTime, TimeDelta, Utc};

use crate::server::{EmulatorServer, lock};
pub use state::RateLimitedEndpoint;
use state::{Flag, RateLimit, State, Token, TokenKind, hour_of};

/// A running Unleash emulator. Dereferences to [`EmulatorServer`] for `base_url()`,
/// `requests()`, `faults()`, `stop()` and `restart()`.
#[derive(Debug)]
pub struct UnleashEmulator {
    server: EmulatorServer,
    state: Arc<Mutex<State>>,
}

impl Deref for UnleashEmulator {
    type Target = EmulatorServer;

    fn deref(&self) -> &EmulatorServer {
        &self.server
    }
}

impl DerefMut for UnleashEmulator {
    fn deref_mut(&mut self) -> &mut EmulatorServer {
        &mut self.server
    }
}

impl UnleashEmulator {
    /// The admin token it accepts from the start (the reference server's insecure default).
    pub const ADMIN_TOKEN: &'static str = "*:*.unleash-insecure-admin-api-token";
    /// The backend (client) token it accepts from the start; books under `development`.
    pub const CLIENT_TOKEN: &'static str = "default:development.unleash-insecure-api-token";
    /// The frontend token it knows from the start (rejected by both APIs).
    pub const FRONTEND_TOKEN: &'static str =
        "default:development.unleash-insecure-frontend-api-token";

    /// Starts an empty server (no flags, no applications) on `127.0.0.1` with the three
    /// default tokens.
    ///
    /// # Errors
    ///
    /// When no port can be bound.
    pub async fn start() -> io::Result<Self> {
        let state = Arc::new(Mutex::new(State::default()));
        {
            let mut s = lock(&state);
            for (kind, token) in [
                (TokenKind::Admin, Self::ADMIN_TOKEN),
                (TokenKind::Backend, Self::CLIENT_TOKEN),
                (TokenKind::Frontend, Self::FRONTEND_TOKEN),
            ] {
                s.tokens.insert(token.to_owned(), Token::parse(kind, token));
            }
        }
        let router = Router::new()
            .fallback(routes::handle)
            .with_state(Arc::clone(&state));
        let server = EmulatorServer::start(router).await?;
        Ok(Self { server, state })
    }

    /// Accepts another backend token (`<project>:<environment>.<secret>`; its environment is
    /// where its metrics are booked).
    pub fn add_backend_token(&self, token: &str) {
        self.add_token(TokenKind::Backend, token);
    }

    /// Accepts another admin token.
    pub fn add_admin_token(&self, token: &str) {
        self.add_token(TokenKind::Admin, token);
    }

    /// Accepts a personal access token (`user:<secret>`): admin API only.
    pub fn add_personal_access_token(&self, token: &str) {
        self.add_token(TokenKind::Personal, token);
    }

    /// Knows a frontend token (rejected with 403 by both APIs).
    pub fn add_frontend_token(&self, token: &str) {
        self.add_token(TokenKind::Frontend, token);
    }

    fn add_token(&self, kind: TokenKind, token: &str) {
        lock(&self.state)
            .tokens
            .insert(token.to_owned(), Token::parse(kind, token));
    }

    /// Creates a flag in project `default` (metrics for unknown names are not counted).
    pub fn add_flag(&self, name: &str) {
        self.add_flag_in("default", name);
    }

    /// Creates a flag in `project`.
    pub fn add_flag_in(&self, project: &str, name: &str) {
        lock(&self.state).flags.insert(
            name.to_owned(),
            Flag {
                project: project.to_owned(),
                kind: "release".to_owned(),
                description: None,
                created_at: Utc::now(),
            },
        );
    }

    /// Records an application instance as if it had registered with a backend token of
    /// `environment`.
    pub fn seed_application(
        &self,
        app_name: &str,
        instance_id: &str,
        environment: &str,
        sdk_version: &str,
        strategies: &[&str],
    ) {
        let token = Token::parse(TokenKind::Backend, &format!("default:{environment}.seed"));
        let now = Utc::now();
        let mut state = lock(&self.state);
        state.touch_app(
            app_name,
            &token,
            Some(strategies.iter().map(|s| (*s).to_owned()).collect()),
            now,
        );
        state.touch_instance(
            app_name,
            instance_id,
            &token,
            Some(sdk_version.to_owned()),
            true,
            now,
        );
    }

    /// Books counts for a flag (created if missing) as if a bucket stopping in `hour` had
    /// been posted: `variants` are `(name, count)` pairs.
    #[allow(clippy::too_many_arguments, reason = "one row of the metrics table")]
    pub fn seed_metrics(
        &self,
        feature: &str,
        app_name: &str,
        environment: &str,
        hour: DateTime<Utc>,
        yes: u64,
        no: u64,
        variants: &[(&str, u64)],
    ) {
        let mut state = lock(&self.state);
        if !state.flags.contains_key(feature) {
            state.flags.insert(
                feature.to_owned(),
                Flag {
                    project: "default".to_owned(),
                    kind: "release".to_owned(),
                    description: None,
                    created_at: hour_of(hour) - TimeDelta::days(1),
                },
            );
        }
        let variants: BTreeMap<String, u64> = variants
            .iter()
            .map(|(name, count)| ((*name).to_owned(), *count))
            .collect();
        state.book(feature, app_name, environment, hour, yes, no, &variants);
    }

    /// Seeds a realistic picture: two applications in `development` and `production`, four
    /// flags with six hours of counts (variants on one), and an unknown flag.
    pub fn seed_demo(&self) {
        let now = Utc::now();
        self.seed_application(
            "checkout-service",
            "checkout-7d9f-1",
            "production",
            "unleash-client-node:6.12.1",
            &["default", "flexibleRollout"],
        );
        self.seed_application(
            "checkout-service",
            "checkout-7d9f-2",
            "production",
            "unleash-client-node:6.12.1",
            &["default", "flexibleRollout"],
        );
        self.seed_application(
            "search-api",
            "search-0",
            "development",
            "unleash-client-rust:0.17.1",
            &["default", "userWithId"],
        );
        for hours_ago in 0..6u32 {
            let hour = now - TimeDelta::hours(i64::from(hours_ago));
            let load = u64::from(6 - hours_ago);
            self.seed_metrics(
                "new-checkout",
                "checkout-service",
                "production",
                hour,
                120 * load,
                380 * load,
                &[],
            );
            self.seed_metrics(
                "button-color",
                "checkout-service",
                "production",
                hour,
                90 * load,
                10 * load,
                &[
                    ("blue", 50 * load),
                    ("green", 40 * load),
                    ("disabled", 10 * load),
                ],
            );
            self.seed_metrics(
                "fuzzy-search",
                "search-api",
                "development",
                hour,
                30 * load,
                5 * load,
                &[],
            );
            self.seed_metrics(
                "dark-mode",
                "search-api",
                "development",
                hour,
                0,
                12 * load,
                &[],
            );
        }
        let token = Token::parse(TokenKind::Backend, "default:development.seed");
        lock(&self.state).book(
            "legacy-banner",
            "search-api",
            &token.environment,
            now,
            3,
            0,
            &BTreeMap::new(),
        );
    }

    /// Limits `endpoint` to `limit` requests per fixed `window` (the real server: per minute,
    /// per client IP); the next ones get 429 with `Retry-After` until the window ends.
    pub fn set_rate_limit(&self, endpoint: RateLimitedEndpoint, limit: u32, window: Duration) {
        lock(&self.state).rate_limits.insert(
            endpoint,
            RateLimit {
                limit,
                window,
                window_start: None,
                used: 0,
            },
        );
    }

    /// Removes every rate limit.
    pub fn clear_rate_limits(&self) {
        lock(&self.state).rate_limits.clear();
    }

    /// Answers metrics POSTs with 204 and counts nothing, as a server started with
    /// `UNLEASH_EXPERIMENTAL_DISABLE_METRICS=true`.
    pub fn set_metrics_disabled(&self, disabled: bool) {
        lock(&self.state).metrics_disabled = disabled;
    }

    /// Yes and no counts of `feature`, summed over every application, environment and hour.
    pub fn counts(&self, feature: &str) -> (u64, u64) {
        self.counts_where(feature, None, None)
    }

    /// Yes and no counts of `feature`, for one application and/or environment.
    pub fn counts_where(
        &self,
        feature: &str,
        app_name: Option<&str>,
        environment: Option<&str>,
    ) -> (u64, u64) {
        lock(&self.state)
            .rows
            .iter()
            .filter(|((f, a, e, _), _)| {
                f == feature
                    && app_name.is_none_or(|x| x == a)
                    && environment.is_none_or(|x| x == e)
            })
            .fold((0, 0), |(yes, no), (_, row)| (yes + row.yes, no + row.no))
    }

    /// Variant counts of `feature`, summed over everything.
    pub fn variant_counts(&self, feature: &str) -> BTreeMap<String, u64> {
        let mut out = BTreeMap::new();
        for ((f, _, _, _), row) in &lock(&self.state).rows {
            if f == feature {
                for (name, count) in &row.variants {
                    *out.entry(name.clone()).or_default() += count;
                }
            }
        }
        out
    }

    /// The hours under which `feature` has rows.
    pub fn booked_hours(&self, feature: &str) -> Vec<DateTime<Utc>> {
        let mut hours: Vec<DateTime<Utc>> = lock(&self.state)
            .rows
            .keys()
            .filter(|(f, _, _, _)| f == feature)
            .map(|(_, _, _, hour)| *hour)
            .collect();
        hours.sort();
        hours.dedup();
        hours
    }

    /// Names of the known applications.
    pub fn application_names(&self) -> Vec<String> {
        lock(&self.state).apps.keys().cloned().collect()
    }

    /// The accepted registration bodies, oldest first.
    pub fn registrations(&self) -> Vec<serde_json::Value> {
        lock(&self.state).registrations.clone()
    }

    /// The accepted metrics bodies, oldest first.
    pub fn metric_posts(&self) -> Vec<serde_json::Value> {
        lock(&self.state).metric_posts.clone()
    }

    /// Names reported in metrics that are not flags.
    pub fn unknown_flag_names(&self) -> Vec<String> {
        let state = lock(&self.state);
        state
            .unknown
            .keys()
            .filter(|name| !state.flags.contains_key(*name))
            .cloned()
            .collect()
    }
}
