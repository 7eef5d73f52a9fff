//! The Coopr server's metrics API (`coopr-server`, API v2): task-queue metrics per tenant and
//! node usage over time, with the server's authentication headers, order of checks, plain-text
//! error bodies and node-usage arithmetic.
//!
//! What it reproduces, from the server's source (`MetricHandler`, `AdminHandler`,
//! `AbstractAuthHandler`, `MetricService`) and netty-http 0.8:
//!
//! - `GET /v2/metrics/queues` and `GET /v2/metrics/nodes/usage`, `GET /status` (`OK\n`);
//!   another method on those paths → 405 with the request URI as body, an unknown path → 404
//!   `Problem accessing: <uri>. Reason: Not Found` (both without `Content-Type`, closing the
//!   connection).
//! - Authentication: `Coopr-UserID` and `Coopr-TenantID` (a tenant **name**) are required,
//!   `Coopr-ApiKey` is never checked. Admin ⇔ user id `admin`; superadmin ⇔ `admin` in the
//!   tenant whose **id** is `superadmin`. Users are not checked against anything: any user id
//!   is accepted, exactly as on the real server.
//! - Queue metrics per tenant, cached per tenant for 10 s like the server's
//!   `server.metrics.queue.cache.seconds` (see [`CooprEmulator::set_queue_cache_ttl`]).
//! - Node usage computed as `MetricService.getNodesUsage` does it: default start (first
//!   matching CREATE) and end (last matching DELETE, else now), epoch-aligned buckets with a
//!   short first bucket that is credited as a full one, month = 30 days, year = 360 days,
//!   per-credit truncation to `timeunit`, and the 500s its arithmetic throws (`end=0` without
//!   `groupby`, negative `start`).
//!
//! Not reproduced: the keep-alive quirk where netty-http may answer a routing error with a
//! 500 on a reused connection; a request that would make the real server build more than a
//! million buckets gets a 500 `Java heap space` instead of slowly exhausting its heap.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use metrics_emulators::coopr::{CooprEmulator, NodeLifetime};
//!
//! let coopr = CooprEmulator::start().await?;
//! let tenant = coopr.add_tenant("acme");
//! coopr.add_user(&tenant, "alice");
//! coopr.enqueue_tasks(&tenant, 5);
//! coopr.take_tasks(&tenant, 2);
//! coopr.add_node(NodeLifetime::new(&tenant, "alice", "17", "node-1", 1_700_000_000_000));
//! // Point a client at coopr.api_url() with Coopr-UserID: admin, Coopr-TenantID: superadmin.
//! # Ok(()) }
//! ```

mod routes;
mod usage;

use std::collections::HashMap;
use std::fmt;
use std::hash::{BuildHasher, Hasher};
use std::ops::{Deref, DerefMut};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::server::{EmulatorServer, lock};

/// The built-in superadmin tenant's id and name.
pub const SUPERADMIN_TENANT: &str = "superadmin";
/// The user id that makes a caller an admin of its tenant.
pub const ADMIN_USER: &str = "admin";
/// The server's default `server.metrics.queue.cache.seconds`.
pub const DEFAULT_QUEUE_CACHE_TTL: Duration = Duration::from_secs(10);

/// A tenant: its id (what tasks and the usage `tenant` filter use) and its name (what the
/// `Coopr-TenantID` header carries).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tenant {
    /// The id: a random UUID for tenants created through the API, `superadmin` for the
    /// built-in one.
    pub id: String,
    /// The name.
    pub name: String,
}

/// A provisioner action (`ProvisionerAction`). Only CREATE and DELETE count for node usage.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TaskAction {
    /// Creates the node's machine.
    Create,
    /// Confirms the machine is up.
    Confirm,
    /// Bootstraps it.
    Bootstrap,
    /// Installs a service.
    Install,
    /// Configures a service.
    Configure,
    /// Initializes a service.
    Initialize,
    /// Starts a service.
    Start,
    /// Stops a service.
    Stop,
    /// Removes a service.
    Remove,
    /// Deletes the node's machine.
    Delete,
}

/// A cluster task's status (`ClusterTask.Status`). Only COMPLETE counts for node usage.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TaskStatus {
    /// Not yet handed to a provisioner.
    NotSubmitted,
    /// Being worked on.
    InProgress,
    /// Finished successfully.
    Complete,
    /// Failed.
    Failed,
    /// Dropped.
    Dropped,
}

/// One cluster task as the cluster store keeps it.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ClusterTask {
    /// CREATE, DELETE, …
    pub action: TaskAction,
    /// COMPLETE, FAILED, …
    pub status: TaskStatus,
    /// The cluster id (a numeric string on the real server).
    pub cluster_id: String,
    /// The node id.
    pub node_id: String,
    /// The owning tenant's **id**.
    pub tenant_id: String,
    /// The owning user's id.
    pub user_id: String,
    /// The cluster template name (empty when not set).
    pub cluster_template: String,
    /// When the task reached its status, in epoch milliseconds.
    pub status_time_ms: i64,
}

impl ClusterTask {
    /// A COMPLETE task without a cluster template.
    pub fn new(
        action: TaskAction,
        tenant_id: impl Into<String>,
        user_id: impl Into<String>,
        cluster_id: impl Into<String>,
        node_id: impl Into<String>,
        status_time_ms: i64,
    ) -> Self {
        Self {
            action,
            status: TaskStatus::Complete,
            cluster_id: cluster_id.into(),
            node_id: node_id.into(),
            tenant_id: tenant_id.into(),
            user_id: user_id.into(),
            cluster_template: String::new(),
            status_time_ms,
        }
    }

    /// Sets the status.
    #[must_use]
    pub fn with_status(mut self, status: TaskStatus) -> Self {
        self.status = status;
        self
    }

    /// Sets the cluster template name.
    #[must_use]
    pub fn with_cluster_template(mut self, template: impl Into<String>) -> Self {
        self.cluster_template = template.into();
        self
    }
}

/// A node that lived from `created_ms` to `deleted_ms` (or is still alive): seeded as a
/// COMPLETE CREATE task and, when deleted, a COMPLETE DELETE task.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct NodeLifetime {
    /// The owning tenant's id.
    pub tenant_id: String,
    /// The owning user's id.
    pub user_id: String,
    /// The cluster id.
    pub cluster_id: String,
    /// The node id.
    pub node_id: String,
    /// The cluster template name.
    pub cluster_template: String,
    /// When its CREATE task completed, epoch milliseconds.
    pub created_ms: i64,
    /// When its DELETE task completed, epoch milliseconds; `None` while it is alive.
    pub deleted_ms: Option<i64>,
}

impl NodeLifetime {
    /// A node created at `created_ms` and still alive.
    pub fn new(
        tenant_id: impl Into<String>,
        user_id: impl Into<String>,
        cluster_id: impl Into<String>,
        node_id: impl Into<String>,
        created_ms: i64,
    ) -> Self {
        Self {
            tenant_id: tenant_id.into(),
            user_id: user_id.into(),
            cluster_id: cluster_id.into(),
            node_id: node_id.into(),
            cluster_template: String::new(),
            created_ms,
            deleted_ms: None,
        }
    }

    /// Marks it deleted at `deleted_ms`.
    #[must_use]
    pub fn deleted_at(mut self, deleted_ms: i64) -> Self {
        self.deleted_ms = Some(deleted_ms);
        self
    }

    /// Sets the cluster template name.
    #[must_use]
    pub fn with_cluster_template(mut self, template: impl Into<String>) -> Self {
        self.cluster_template = template.into();
        self
    }
}

/// A tenant's provisioner queue: tasks waiting for a provisioner and tasks taken by one.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct QueueCounts {
    /// Waiting for a provisioner.
    pub queued: u32,
    /// Taken by a provisioner worker.
    pub in_progress: u32,
}

/// A store the emulator can make fail, to produce the server's 500 answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum StoreFailure {
    /// The tenant lookup during authentication: 500 `Error authenticating tenant`.
    TenantLookup,
    /// The queue-metrics snapshot: 500 `Internal error getting queue metrics.`.
    QueueMetrics,
    /// The cluster-task query of node usage: 500 `Unable to read data from the database`.
    Database,
}

#[derive(Debug)]
pub(crate) struct State {
    tenants: Vec<Tenant>,
    users: Vec<(String, String)>,
    queues: HashMap<String, QueueCounts>,
    queue_cache: HashMap<String, (Instant, QueueCounts)>,
    queue_cache_ttl: Duration,
    tasks: Vec<ClusterTask>,
    frozen_now_ms: Option<i64>,
    failures: Vec<StoreFailure>,
}

impl State {
    fn new() -> Self {
        Self {
            tenants: vec![Tenant {
                id: SUPERADMIN_TENANT.to_owned(),
                name: SUPERADMIN_TENANT.to_owned(),
            }],
            users: vec![(SUPERADMIN_TENANT.to_owned(), ADMIN_USER.to_owned())],
            queues: HashMap::new(),
            queue_cache: HashMap::new(),
            queue_cache_ttl: DEFAULT_QUEUE_CACHE_TTL,
            tasks: Vec::new(),
            frozen_now_ms: None,
            failures: Vec::new(),
        }
    }

    pub(crate) fn failing(&self, store: StoreFailure) -> bool {
        self.failures.contains(&store)
    }

    pub(crate) fn tenant_by_name(&self, name: &str) -> Option<&Tenant> {
        self.tenants.iter().find(|t| t.name == name)
    }

    pub(crate) fn tenants(&self) -> &[Tenant] {
        &self.tenants
    }

    pub(crate) fn tasks(&self) -> &[ClusterTask] {
        &self.tasks
    }

    /// `System.currentTimeMillis()`, or the frozen time.
    pub(crate) fn now_ms(&self) -> i64 {
        self.frozen_now_ms.unwrap_or_else(|| {
            let since = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default();
            i64::try_from(since.as_millis()).unwrap_or(i64::MAX)
        })
    }

    /// `getTaskQueueMetricsSnapshot(tenantId)`: the cached value while it is fresh.
    pub(crate) fn queue_snapshot(&mut self, tenant_id: &str) -> QueueCounts {
        let now = Instant::now();
        if let Some((written, counts)) = self.queue_cache.get(tenant_id)
            && now.duration_since(*written) < self.queue_cache_ttl
        {
            return *counts;
        }
        let counts = self.queues.get(tenant_id).copied().unwrap_or_default();
        if !self.queue_cache_ttl.is_zero() {
            self.queue_cache.insert(tenant_id.to_owned(), (now, counts));
        }
        counts
    }

    fn queue_mut(&mut self, tenant_id: &str) -> &mut QueueCounts {
        self.queues.entry(tenant_id.to_owned()).or_default()
    }
}

pub(crate) type Shared = Arc<Mutex<State>>;

/// A running Coopr server emulator. Dereferences to [`EmulatorServer`] for `base_url()`,
/// `requests()`, `faults()`, `stop()` and `restart()`.
///
/// Starts with the built-in `superadmin` tenant (id = name = `superadmin`) and its `admin`
/// user, no queued tasks and no cluster tasks.
pub struct CooprEmulator {
    server: EmulatorServer,
    state: Shared,
}

impl fmt::Debug for CooprEmulator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = lock(&self.state);
        f.debug_struct("CooprEmulator")
            .field("server", &self.server)
            .field("tenants", &state.tenants.len())
            .field("tasks", &state.tasks.len())
            .finish_non_exhaustive()
    }
}

impl Deref for CooprEmulator {
    type Target = EmulatorServer;

    fn deref(&self) -> &EmulatorServer {
        &self.server
    }
}

impl DerefMut for CooprEmulator {
    fn deref_mut(&mut self) -> &mut EmulatorServer {
        &mut self.server
    }
}

impl CooprEmulator {
    /// Starts an emulator on `127.0.0.1` with a free port.
    ///
    /// # Errors
    ///
    /// When no port can be bound.
    pub async fn start() -> std::io::Result<Self> {
        let state: Shared = Arc::new(Mutex::new(State::new()));
        let server = EmulatorServer::start(routes::router(state.clone())).await?;
        Ok(Self { server, state })
    }

    /// The API root a client is configured with: `http://127.0.0.1:PORT/v2`.
    pub fn api_url(&self) -> String {
        format!("{}/v2", self.server.base_url())
    }

    // Tenants and users.

    /// Creates a tenant called `name` with a random UUID id, as the tenant API does, and
    /// returns the id.
    pub fn add_tenant(&self, name: impl Into<String>) -> String {
        let id = random_uuid();
        self.add_tenant_with_id(id.clone(), name);
        id
    }

    /// Creates a tenant with a chosen id (the server's own tests use id = name, `tenant1`).
    /// An existing tenant with the same id is replaced.
    pub fn add_tenant_with_id(&self, id: impl Into<String>, name: impl Into<String>) {
        let tenant = Tenant {
            id: id.into(),
            name: name.into(),
        };
        let mut state = lock(&self.state);
        state.tenants.retain(|t| t.id != tenant.id);
        state.tenants.push(tenant);
    }

    /// The tenants, the built-in `superadmin` first.
    pub fn tenants(&self) -> Vec<Tenant> {
        lock(&self.state).tenants.clone()
    }

    /// Records a user of a tenant (by tenant id), for [`CooprEmulator::users`] and for seeding
    /// code that wants one list of who exists. Like the real server, the emulator accepts any
    /// `Coopr-UserID` whether recorded or not; `admin` is the admin of every tenant.
    pub fn add_user(&self, tenant_id: impl Into<String>, user_id: impl Into<String>) {
        let entry = (tenant_id.into(), user_id.into());
        let mut state = lock(&self.state);
        if !state.users.contains(&entry) {
            state.users.push(entry);
        }
    }

    /// The recorded users of a tenant (by id), in the order they were added.
    pub fn users(&self, tenant_id: &str) -> Vec<String> {
        lock(&self.state)
            .users
            .iter()
            .filter(|(tenant, _)| tenant == tenant_id)
            .map(|(_, user)| user.clone())
            .collect()
    }

    // The provisioner queue.

    /// Adds `count` tasks to a tenant's queue (by tenant id).
    pub fn enqueue_tasks(&self, tenant_id: &str, count: u32) {
        let mut state = lock(&self.state);
        let queue = state.queue_mut(tenant_id);
        queue.queued = queue.queued.saturating_add(count);
    }

    /// Lets provisioner workers take up to `count` queued tasks; returns how many they took.
    pub fn take_tasks(&self, tenant_id: &str, count: u32) -> u32 {
        let mut state = lock(&self.state);
        let queue = state.queue_mut(tenant_id);
        let taken = count.min(queue.queued);
        queue.queued -= taken;
        queue.in_progress = queue.in_progress.saturating_add(taken);
        taken
    }

    /// Finishes up to `count` in-progress tasks; returns how many finished.
    pub fn finish_tasks(&self, tenant_id: &str, count: u32) -> u32 {
        let mut state = lock(&self.state);
        let queue = state.queue_mut(tenant_id);
        let finished = count.min(queue.in_progress);
        queue.in_progress -= finished;
        finished
    }

    /// Sets a tenant's queue outright.
    pub fn set_queue(&self, tenant_id: &str, queued: u32, in_progress: u32) {
        *lock(&self.state).queue_mut(tenant_id) = QueueCounts {
            queued,
            in_progress,
        };
    }

    /// A tenant's queue as it is now (not as the cache serves it).
    pub fn queue(&self, tenant_id: &str) -> QueueCounts {
        lock(&self.state)
            .queues
            .get(tenant_id)
            .copied()
            .unwrap_or_default()
    }

    /// Sets how long a queue snapshot is served from the cache (the server's
    /// `server.metrics.queue.cache.seconds`, 10 s by default). `Duration::ZERO` turns the
    /// cache off, so every request sees the current queue.
    pub fn set_queue_cache_ttl(&self, ttl: Duration) {
        let mut state = lock(&self.state);
        state.queue_cache_ttl = ttl;
        state.queue_cache.clear();
    }

    /// Forgets the cached queue snapshots, as a server restart would.
    pub fn clear_queue_cache(&self) {
        lock(&self.state).queue_cache.clear();
    }

    // Cluster tasks and nodes.

    /// Adds a cluster task.
    pub fn add_cluster_task(&self, task: ClusterTask) {
        lock(&self.state).tasks.push(task);
    }

    /// Adds a node's CREATE task and, when it was deleted, its DELETE task (both COMPLETE).
    pub fn add_node(&self, node: NodeLifetime) {
        let NodeLifetime {
            tenant_id,
            user_id,
            cluster_id,
            node_id,
            cluster_template,
            created_ms,
            deleted_ms,
        } = node;
        let create = ClusterTask::new(
            TaskAction::Create,
            tenant_id,
            user_id,
            cluster_id,
            node_id,
            created_ms,
        )
        .with_cluster_template(cluster_template);
        let delete = deleted_ms.map(|deleted_ms| ClusterTask {
            action: TaskAction::Delete,
            status_time_ms: deleted_ms,
            ..create.clone()
        });
        let mut state = lock(&self.state);
        state.tasks.push(create);
        state.tasks.extend(delete);
    }

    /// The cluster tasks, in the order they were added.
    pub fn cluster_tasks(&self) -> Vec<ClusterTask> {
        lock(&self.state).tasks.clone()
    }

    // Time and failures.

    /// Freezes the server's clock ("now" for default end times and nodes still alive) at
    /// `now_ms` epoch milliseconds, or lets it follow the system clock again with `None`.
    pub fn set_now_ms(&self, now_ms: Option<i64>) {
        lock(&self.state).frozen_now_ms = now_ms;
    }

    /// Makes a store fail (`true`) or work again (`false`).
    pub fn set_store_failure(&self, store: StoreFailure, failing: bool) {
        let mut state = lock(&self.state);
        state.failures.retain(|s| *s != store);
        if failing {
            state.failures.push(store);
        }
    }

    // The server's own test data.

    /// Seeds the queue data of the server's `AdminHandlerTest`: tenants `tenant1`
    /// (id `tenant1`) and `tenantA`…`tenantD` (ids `idA`…`idD`); queue operations idA add 3
    /// take 1, idB add 1, idC add 1 take 1, idD add 2 take 1.
    pub fn seed_admin_handler_test_queues(&self) {
        self.add_tenant_with_id("tenant1", "tenant1");
        for letter in ["A", "B", "C", "D"] {
            self.add_tenant_with_id(format!("id{letter}"), format!("tenant{letter}"));
        }
        self.enqueue_tasks("idA", 3);
        self.take_tasks("idA", 1);
        self.enqueue_tasks("idB", 1);
        self.enqueue_tasks("idC", 1);
        self.take_tasks("idC", 1);
        self.enqueue_tasks("idD", 2);
        self.take_tasks("idD", 1);
    }

    /// Seeds the seven-task data set of the server's `MetricHandlerTest`, with status times
    /// in units of `unit_ms` (1 000 for seconds, 3 600 000 for hours), and tenants `tenant1`
    /// and `tenant2` (id = name) with users `user1` and `user2`.
    pub fn seed_metric_handler_test_tasks(&self, unit_ms: i64) {
        self.add_tenant_with_id("tenant1", "tenant1");
        self.add_tenant_with_id("tenant2", "tenant2");
        self.add_user("tenant1", "user1");
        self.add_user("tenant2", "user2");
        let rows = [
            (
                TaskAction::Create,
                "1",
                "node1",
                "tenant1",
                "user1",
                TaskStatus::Complete,
                2,
            ),
            (
                TaskAction::Create,
                "1",
                "node2",
                "tenant1",
                "user1",
                TaskStatus::Complete,
                17,
            ),
            (
                TaskAction::Create,
                "1",
                "node3",
                "tenant1",
                "user1",
                TaskStatus::Complete,
                9,
            ),
            (
                TaskAction::Delete,
                "1",
                "node3",
                "tenant1",
                "user1",
                TaskStatus::Complete,
                20,
            ),
            (
                TaskAction::Create,
                "2",
                "node1",
                "tenant1",
                "user1",
                TaskStatus::Complete,
                25,
            ),
            (
                TaskAction::Create,
                "2",
                "node2",
                "tenant2",
                "user2",
                TaskStatus::Complete,
                11,
            ),
            (
                TaskAction::Create,
                "2",
                "node3",
                "tenant1",
                "user1",
                TaskStatus::Failed,
                4,
            ),
        ];
        for (action, cluster, node, tenant, user, status, time) in rows {
            self.add_cluster_task(
                ClusterTask::new(action, tenant, user, cluster, node, time * unit_ms)
                    .with_status(status),
            );
        }
    }
}

/// A version-4 UUID string, random enough for tenant ids without a `rand` dependency:
/// `RandomState` is seeded per instance from the OS.
fn random_uuid() -> String {
    let half = || {
        let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
        hasher.write_u64(0x5851_f42d_4c95_7f2d);
        hasher.finish()
    };
    let (high, low) = (half(), half());
    let high = (high & 0xffff_ffff_ffff_0fff) | 0x4000;
    let low = (low & 0x3fff_ffff_ffff_ffff) | 0x8000_0000_0000_0000;
    format!(
        "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
        high >> 32,
        (high >> 16) & 0xffff,
        high & 0xffff,
        low >> 48,
        low & 0xffff_ffff_ffff
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuids_are_version_4_and_differ() {
        let a = random_uuid();
        let b = random_uuid();
        assert_ne!(a, b);
        assert_eq!(a.len(), 36);
        assert_eq!(&a[14..15], "4");
        assert!(matches!(&a[19..20], "8" | "9" | "a" | "b"));
    }

    #[test]
    fn queue_cache_serves_the_old_value_until_it_expires() {
        let mut state = State::new();
        state.queue_mut("t").queued = 1;
        assert_eq!(state.queue_snapshot("t").queued, 1);
        state.queue_mut("t").queued = 5;
        assert_eq!(state.queue_snapshot("t").queued, 1);
        state.queue_cache_ttl = Duration::ZERO;
        assert_eq!(state.queue_snapshot("t").queued, 5);
    }
}
