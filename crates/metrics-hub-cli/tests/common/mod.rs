//! What the command's tests share: running the built binary, free ports, waiting for HTTP,
//! and the policy for tools that may be missing (promtool, prometheus).

#![allow(dead_code, reason = "each test file uses part of it")]
#![allow(unreachable_pub, reason = "a module of the test crates")]

use std::io::Read as _;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Every variable the command reads, removed so that a test sees only what it sets.
pub const COMMAND_VARIABLES: [&str; 24] = [
    "METRICS_HUB_CONFIG",
    "RUST_LOG",
    "OUTLINE_API_URL",
    "OUTLINE_CERT_SHA256",
    "APPOPTICS_TOKEN",
    "APPOPTICS_BASE_URL",
    "APPOPTICS_METRICS",
    "APPOPTICS_TAGS",
    "APPOPTICS_TIMEOUT",
    "UNLEASH_URL",
    "UNLEASH_API_TOKEN",
    "UNLEASH_ADMIN_TOKEN",
    "UNLEASH_APP_NAME",
    "UNLEASH_FEATURES",
    "COOPR_URL",
    "COOPR_USER_ID",
    "COOPR_TENANT_ID",
    "COOPR_API_KEY",
    "VUMI_URL",
    "VUMI_TOKEN",
    "VUMI_USERNAME",
    "VUMI_PASSWORD",
    "VUMI_OWNER_ID",
    "VUMI_METRICS",
];

/// A fresh directory under the system's temporary directory, removed when dropped.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(name: &str) -> Self {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or_default();
        let path = std::env::temp_dir().join(format!(
            "metrics-hub-cli-{name}-{}-{nanos}",
            std::process::id()
        ));
        std::fs::create_dir_all(&path).unwrap();
        Self(path)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    /// Writes `name` in the directory and returns its path.
    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The built `metrics-hub`, in `dir`, with none of the command's variables inherited.
pub fn command(dir: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_metrics-hub"));
    command.current_dir(dir);
    for name in COMMAND_VARIABLES {
        command.env_remove(name);
    }
    command
}

/// A port that was free a moment ago.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A child process that is killed (and waited for) however the test ends.
pub struct Running {
    pub child: Option<Child>,
    pub name: String,
}

impl Running {
    /// Starts `command` with stdout and stderr captured to files in `dir`.
    pub fn spawn(mut command: Command, name: &str, dir: &Path) -> Self {
        let stdout = std::fs::File::create(dir.join(format!("{name}.stdout"))).unwrap();
        let stderr = std::fs::File::create(dir.join(format!("{name}.stderr"))).unwrap();
        let child = command
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        Self {
            child: Some(child),
            name: name.to_owned(),
        }
    }

    /// Sends SIGTERM and waits up to `deadline` for the exit status.
    pub fn terminate(&mut self, deadline: Duration) -> Option<std::process::ExitStatus> {
        let child = self.child.as_mut()?;
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let started = Instant::now();
        while started.elapsed() < deadline {
            if let Ok(Some(status)) = child.try_wait() {
                self.child = None;
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }

    /// Whether it has exited.
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.as_mut()?.try_wait().ok().flatten()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Reads a captured output file.
pub fn read(dir: &Path, file: &str) -> String {
    let mut text = String::new();
    if let Ok(mut f) = std::fs::File::open(dir.join(file)) {
        let _ = f.read_to_string(&mut text);
    }
    text
}

/// Whether tools that may be missing must be there: under `CI=true`.
pub fn strict() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// The workspace's `scripts/prometheus.sh`.
pub fn prometheus_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/prometheus.sh")
}

/// Whether promtool and prometheus are installed (the script's `status`). When they are
/// not: under CI a failure, elsewhere `false` with the reason printed, so the test skips.
pub fn prometheus_available(test: &str) -> bool {
    let status = Command::new("bash")
        .arg(prometheus_script())
        .arg("status")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    if status.is_ok_and(|s| s.success()) {
        return true;
    }
    assert!(
        !strict(),
        "{test}: promtool/prometheus are not installed and CI=true requires them; run `scripts/prometheus.sh install`"
    );
    println!(
        "SKIPPED {test}: promtool/prometheus are not installed (run `scripts/prometheus.sh install`; under CI=true this fails)"
    );
    false
}

/// `promtool check metrics` of `body`: its exit status and what it printed.
pub fn promtool_check(body: &str) -> (i32, String) {
    use std::io::Write as _;
    let mut child = Command::new("bash")
        .arg(prometheus_script())
        .args(["promtool", "check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(body.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    (
        output.status.code().unwrap_or(-1),
        format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ),
    )
}

/// OpenMetrics text read by Prometheus' OpenMetrics parser, through the backfiller
/// (`promtool tsdb create-blocks-from openmetrics`), which needs a timestamp on every
/// sample; `promtool check metrics` reads only the Prometheus text format. Its exit status
/// and what it printed.
pub fn promtool_read_openmetrics(dir: &Path, body: &str) -> (i32, String) {
    let input = dir.join("body.om");
    std::fs::write(&input, body).unwrap();
    let output = Command::new("bash")
        .arg(prometheus_script())
        .args([
            "promtool",
            "tsdb",
            "create-blocks-from",
            "openmetrics",
            "--quiet",
        ])
        .arg(&input)
        .arg(dir.join("blocks"))
        .output()
        .unwrap();
    (
        output.status.code().unwrap_or(-1),
        format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ),
    )
}

/// Polls `check` every 100 ms until it returns `Some`, for at most `deadline`.
pub async fn wait_for<T, F, Fut>(deadline: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let started = Instant::now();
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            started.elapsed() < deadline,
            "gave up after {deadline:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// GET `url` with optional headers: status and body, or `None` when nothing answers.
pub async fn get(url: &str, headers: &[(&str, &str)]) -> Option<(u16, String, String)> {
    let client = reqwest::Client::new();
    let mut request = client.get(url).timeout(Duration::from_secs(5));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await.ok()?;
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let body = response.text().await.ok()?;
    Some((status, content_type, body))
}

/// The value of the sample `name{labels…}` whose labels include every one of `labels`.
pub fn sample(body: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    body.lines()
        .filter(|line| !line.starts_with('#'))
        .find(|line| {
            let (series, _) = line.rsplit_once(' ').unwrap_or_default();
            let bare = series.split('{').next().unwrap_or_default();
            bare == name
                && labels
                    .iter()
                    .all(|(k, v)| series.contains(&format!("{k}=\"{v}\"")))
        })
        .and_then(|line| line.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

/// The address a `serve` started with port 0 listens on, from its log in `dir/file`.
pub fn served_address(dir: &Path, file: &str, process: &mut Running) -> String {
    let started = Instant::now();
    loop {
        let log = read(dir, file);
        if let Some(address) = log
            .lines()
            .filter(|l| l.contains("serving /metrics"))
            .find_map(|l| l.split("address=").nth(1))
            .and_then(|rest| rest.split_whitespace().next())
        {
            return address.to_owned();
        }
        assert!(process.exited().is_none(), "serve exited:\n{log}");
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "serve did not start listening:\n{log}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}
