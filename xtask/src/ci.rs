//! `cargo xtask ci`: what CI checks, fastest failures first.

use std::path::Path;
use std::time::Instant;

use crate::TaskError;
use crate::cmd::{self, Step};

/// The script that installs and runs unleash-server with PostgreSQL on loopback.
const UNLEASH_SCRIPT: &str = "scripts/unleash-server.sh";
/// Where that script writes the server's address and tokens.
const UNLEASH_ENV_FILE: &str = "target/unleash-server/unleash.env";
/// The script that installs Debian's prometheus package, whose `promtool` the renderer tests
/// run.
const PROMETHEUS_SCRIPT: &str = "scripts/prometheus.sh";
/// How long installing it may take. The first install is about 20 s here and later ones are
/// instant; the limit only keeps a stalled package mirror from hanging the run.
const PROMETHEUS_INSTALL_SECONDS: u32 = 300;
/// The name of the test step, before which promtool is installed.
const TESTS_STEP: &str = "tests";

pub(crate) fn run(args: &[String]) -> Result<(), TaskError> {
    let mut skip_conformance = false;
    for arg in args {
        match arg.as_str() {
            "--no-conformance" => skip_conformance = true,
            other => return Err(TaskError::Usage(format!("unknown option for ci: {other}"))),
        }
    }
    let mut timings = Timings::default();
    let result = run_steps(&mut timings, skip_conformance);
    print!("{}", timings.summary());
    result?;
    println!("\nxtask ci: all steps passed");
    Ok(())
}

fn run_steps(timings: &mut Timings, skip_conformance: bool) -> Result<(), TaskError> {
    let root = cmd::workspace_root();
    let features = facade_features(&root)?;
    let in_ci = std::env::var("CI").is_ok_and(|v| v == "true" || v == "1");
    for step in static_steps(&features) {
        if step.name == TESTS_STEP {
            timings.time("install Prometheus and promtool", || {
                install_promtool(&root, in_ci)
            })?;
        }
        timings.time(&step.name, || step.run_in(&root))?;
    }
    if skip_conformance {
        println!("\n==> real-server conformance: SKIPPED (--no-conformance)");
    } else {
        timings.time("real-server conformance", || conformance(&root, in_ci))?;
    }
    timings.time("package", || package(&root, &root))
}

/// How long each step took, in the order they ran.
#[derive(Debug, Default)]
struct Timings {
    steps: Vec<(String, f64, bool)>,
}

impl Timings {
    /// Runs `step`, prints and keeps its cost in seconds and whether it passed.
    fn time(
        &mut self,
        name: &str,
        step: impl FnOnce() -> Result<(), TaskError>,
    ) -> Result<(), TaskError> {
        let started = Instant::now();
        let result = step();
        let seconds = started.elapsed().as_secs_f64();
        println!("<== {name}: {seconds:.1} s");
        self.steps.push((name.to_owned(), seconds, result.is_ok()));
        result
    }

    /// One line per step: its cost in seconds, and `FAILED` for the one that failed.
    fn summary(&self) -> String {
        let width = self
            .steps
            .iter()
            .map(|(n, _, _)| n.len())
            .max()
            .unwrap_or(0);
        let mut out = String::from("\nxtask ci: cost of each step\n");
        let mut total = 0.0;
        for (name, seconds, passed) in &self.steps {
            total += seconds;
            let mark = if *passed { "" } else { "  FAILED" };
            out.push_str(&format!("  {name:<width$}  {seconds:>7.1} s{mark}\n"));
        }
        out.push_str(&format!("  {:<width$}  {total:>7.1} s\n", "total"));
        out
    }
}

/// The facade's features, from `cargo metadata`, so the per-feature checks grow with the
/// backends.
fn facade_features(root: &Path) -> Result<Vec<String>, TaskError> {
    let metadata = cmd::metadata(root)?;
    let value: serde_json::Value = serde_json::from_str(&metadata)
        .map_err(|e| TaskError::Failed(format!("cargo metadata printed something else: {e}")))?;
    let facade = value["packages"]
        .as_array()
        .and_then(|packages| packages.iter().find(|p| p["name"] == "metrics-hub"))
        .ok_or_else(|| TaskError::Failed("no metrics-hub package in the workspace".to_owned()))?;
    let mut features: Vec<String> = facade["features"]
        .as_object()
        .map(|f| f.keys().cloned().collect())
        .unwrap_or_default();
    features.sort();
    Ok(features)
}

/// Every step before the real-server suite.
fn static_steps(facade_features: &[String]) -> Vec<Step> {
    let mut steps = vec![
        Step::cargo("format", &["fmt", "--all", "--", "--check"]).with_fix("cargo fmt --all"),
        Step::cargo(
            "clippy",
            &[
                "clippy",
                "--workspace",
                "--all-targets",
                "--all-features",
                "--",
                "-D",
                "warnings",
            ],
        )
        .with_fix("cargo clippy --workspace --all-targets --all-features --fix --allow-dirty"),
        Step::cargo(
            "facade without features",
            &["check", "-p", "metrics-hub", "--no-default-features"],
        ),
    ];
    for feature in facade_features.iter().filter(|f| *f != "default") {
        steps.push(Step::cargo(
            &format!("facade with only `{feature}`"),
            &[
                "check",
                "-p",
                "metrics-hub",
                "--no-default-features",
                "--features",
                feature,
            ],
        ));
    }
    steps.push(Step::cargo(
        TESTS_STEP,
        &["test", "--workspace", "--all-features"],
    ));
    steps.push(
        Step::cargo(
            "docs",
            &["doc", "--workspace", "--no-deps", "--all-features"],
        )
        .with_env("RUSTDOCFLAGS", "-D warnings"),
    );
    steps
}

/// Packages every publishable crate of the workspace at `work`, building in `root`'s target
/// directory, after clearing what would make cargo verify against stale copies of our own
/// crates (see [`clear_packaged_source_cache`] and [`clear_own_build_outputs`]).
pub(crate) fn package(root: &Path, work: &Path) -> Result<(), TaskError> {
    let names = crate::release::publish_order(&cmd::metadata(work)?).map_err(TaskError::Failed)?;
    clear_packaged_source_cache();
    let target = root.join("target");
    clear_own_build_outputs(&target.join("debug"), &names);
    package_step()
        .with_env("CARGO_TARGET_DIR", &target.to_string_lossy())
        .run_in(work)
}

/// Removes the compiled outputs of the workspace's own crates. Cargo treats a registry crate
/// of a given version as immutable, so the verification build of `cargo package` would reuse
/// an earlier run's `metrics-core 0.1.0` from the temporary registry even after the sources
/// changed; our crates are small and rebuild quickly, the dependencies are kept.
fn clear_own_build_outputs(profile_dir: &Path, names: &[String]) {
    for path in own_build_outputs(profile_dir, names) {
        let removed = if path.is_dir() {
            std::fs::remove_dir_all(&path)
        } else {
            std::fs::remove_file(&path)
        };
        if let Err(e) = removed {
            eprintln!("warning: could not remove {}: {e}", path.display());
        }
    }
}

/// The fingerprints, build-script outputs and `deps` artifacts of crates called `names`.
fn own_build_outputs(profile_dir: &Path, names: &[String]) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    for (sub, underscored) in [(".fingerprint", false), ("build", false), ("deps", true)] {
        let Ok(entries) = std::fs::read_dir(profile_dir.join(sub)) else {
            continue;
        };
        for entry in entries.filter_map(Result::ok) {
            let file = entry.file_name().to_string_lossy().into_owned();
            let matches = names.iter().any(|name| {
                let stem = if underscored {
                    name.replace('-', "_")
                } else {
                    name.clone()
                };
                let bare = file.strip_prefix("lib").unwrap_or(&file);
                bare.strip_prefix(&stem)
                    .and_then(|rest| rest.strip_prefix('-'))
                    .map(|rest| rest.split('.').next().unwrap_or_default())
                    .is_some_and(|hash| {
                        !hash.is_empty() && hash.chars().all(|c| c.is_ascii_hexdigit())
                    })
            });
            if matches {
                found.push(entry.path());
            }
        }
    }
    found.sort();
    found
}

/// Removes cargo's unpacked copies of the temporary registries `cargo package` verifies
/// against. Cargo keeps them under `$CARGO_HOME/registry/src/-<hash>/` and does not unpack a
/// crate again when its version is unchanged, so a second `cargo package` of the same version
/// would verify the dependents against the first run's sources. Named registries never start
/// with `-`, so nothing else is touched; the cache is rebuilt on demand.
fn clear_packaged_source_cache() {
    let home = std::env::var_os("CARGO_HOME").map_or_else(
        || std::path::PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cargo"),
        std::path::PathBuf::from,
    );
    for dir in local_registry_caches(&home.join("registry").join("src")) {
        if let Err(e) = std::fs::remove_dir_all(&dir) {
            eprintln!("warning: could not clear {}: {e}", dir.display());
        }
    }
}

/// The unpack directories of unnamed (temporary, local) registries under `src`.
fn local_registry_caches(src: &Path) -> Vec<std::path::PathBuf> {
    let Ok(entries) = std::fs::read_dir(src) else {
        return Vec::new();
    };
    let mut dirs: Vec<_> = entries
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().starts_with('-'))
        .map(|e| e.path())
        .collect();
    dirs.sort();
    dirs
}

/// `cargo package` of every publishable crate, offline.
fn package_step() -> Step {
    Step::cargo(
        "package",
        &[
            "package",
            "--workspace",
            "--exclude",
            "xtask",
            "--exclude",
            "metrics-hub-examples",
            "--offline",
            "--allow-dirty",
        ],
    )
}

/// What to do about the real-server suite.
#[derive(Debug, PartialEq, Eq)]
enum Conformance {
    /// Start the server, run the suite, stop the server.
    Run,
    /// Report why it did not run, and carry on.
    Skip(String),
    /// Fail the run.
    Fail(String),
}

/// Under CI a server that cannot start fails the run; elsewhere it is a reported skip.
fn conformance_decision(
    in_ci: bool,
    script_present: bool,
    start_error: Option<&str>,
) -> Conformance {
    let problem = if script_present {
        start_error.map(|e| format!("unleash-server did not start: {e}"))
    } else {
        Some(format!("{UNLEASH_SCRIPT} is missing"))
    };
    match (problem, in_ci) {
        (None, _) => Conformance::Run,
        (Some(reason), true) => Conformance::Fail(reason),
        (Some(reason), false) => Conformance::Skip(reason),
    }
}

/// Parses the `KEY=VALUE` lines of the env file the server script writes.
fn parse_env_file(text: &str) -> Vec<(String, String)> {
    text.lines()
        .map(|line| line.trim().trim_start_matches("export ").trim())
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .filter_map(|line| line.split_once('='))
        .map(|(k, v)| {
            (
                k.trim().to_owned(),
                v.trim().trim_matches('"').trim_matches('\'').to_owned(),
            )
        })
        .collect()
}

fn conformance(root: &Path, in_ci: bool) -> Result<(), TaskError> {
    let script = root.join(UNLEASH_SCRIPT);
    let start = Step {
        name: "start unleash-server 8.2.0 and PostgreSQL".to_owned(),
        argv: vec![
            "bash".to_owned(),
            UNLEASH_SCRIPT.to_owned(),
            "start".to_owned(),
        ],
        env: Vec::new(),
        fix: None,
    };
    let start_error = if script.exists() {
        start.run_in(root).err().map(|e| e.to_string())
    } else {
        None
    };
    match conformance_decision(in_ci, script.exists(), start_error.as_deref()) {
        Conformance::Skip(reason) => {
            println!("\n==> real-server conformance: SKIPPED ({reason})");
            return Ok(());
        }
        Conformance::Fail(reason) => {
            stop_unleash(root);
            return Err(TaskError::Failed(format!(
                "real-server conformance: {reason}"
            )));
        }
        Conformance::Run => {}
    }
    let env_text = std::fs::read_to_string(root.join(UNLEASH_ENV_FILE)).map_err(|e| {
        TaskError::Failed(format!(
            "the server started but {UNLEASH_ENV_FILE} is unreadable: {e}"
        ))
    })?;
    let mut suite = Step::cargo(
        "real-server conformance (unleash-server 8.2.0)",
        &[
            "test",
            "-p",
            "unleash-metrics-client",
            "--all-features",
            "--test",
            "real_server",
            "--",
            "--ignored",
            "--test-threads=1",
        ],
    );
    suite.env = parse_env_file(&env_text);
    let result = suite.run_in(root);
    stop_unleash(root);
    result
}

/// `scripts/prometheus.sh install`, bounded by `timeout`.
fn promtool_install_step() -> Step {
    Step {
        name: "install promtool for the renderer tests".to_owned(),
        argv: vec![
            "timeout".to_owned(),
            PROMETHEUS_INSTALL_SECONDS.to_string(),
            "bash".to_owned(),
            PROMETHEUS_SCRIPT.to_owned(),
            "install".to_owned(),
        ],
        env: Vec::new(),
        fix: Some(format!("sudo {PROMETHEUS_SCRIPT} install")),
    }
}

/// Under CI a promtool that cannot be installed fails the run; elsewhere the renderer tests
/// skip their promtool checks, saying so, and the run goes on.
fn promtool_decision(
    in_ci: bool,
    script_present: bool,
    install_error: Option<&str>,
) -> Conformance {
    let problem = if script_present {
        install_error.map(|e| format!("promtool could not be installed: {e}"))
    } else {
        Some(format!("{PROMETHEUS_SCRIPT} is missing"))
    };
    match (problem, in_ci) {
        (None, _) => Conformance::Run,
        (Some(reason), true) => Conformance::Fail(reason),
        (Some(reason), false) => Conformance::Skip(reason),
    }
}

/// Installs promtool before the tests, which check the text renderers with it.
fn install_promtool(root: &Path, in_ci: bool) -> Result<(), TaskError> {
    let script_present = root.join(PROMETHEUS_SCRIPT).exists();
    let install_error = if script_present {
        promtool_install_step()
            .run_in(root)
            .err()
            .map(|e| e.to_string())
    } else {
        None
    };
    match promtool_decision(in_ci, script_present, install_error.as_deref()) {
        Conformance::Run => Ok(()),
        Conformance::Skip(reason) => {
            println!(
                "\n==> promtool: SKIPPED ({reason}); the renderer tests will skip their promtool checks"
            );
            Ok(())
        }
        Conformance::Fail(reason) => Err(TaskError::Failed(reason)),
    }
}

fn stop_unleash(root: &Path) {
    let stop = Step {
        name: "stop unleash-server".to_owned(),
        argv: vec![
            "bash".to_owned(),
            UNLEASH_SCRIPT.to_owned(),
            "stop".to_owned(),
        ],
        env: Vec::new(),
        fix: None,
    };
    if let Err(e) = stop.run_in(root) {
        eprintln!("warning: {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(steps: &[Step]) -> Vec<String> {
        steps.iter().map(Step::display).collect()
    }

    #[test]
    fn plan_covers_every_check_in_order() {
        let features = ["default", "full", "outline", "rustls"].map(str::to_owned);
        let plan = names(&static_steps(&features));
        assert_eq!(plan[0], "cargo fmt --all -- --check");
        assert_eq!(
            plan[1],
            "cargo clippy --workspace --all-targets --all-features -- -D warnings"
        );
        assert_eq!(plan[2], "cargo check -p metrics-hub --no-default-features");
        assert!(plan.contains(
            &"cargo check -p metrics-hub --no-default-features --features outline".to_owned()
        ));
        assert!(plan.contains(
            &"cargo check -p metrics-hub --no-default-features --features full".to_owned()
        ));
        assert!(!plan.iter().any(|s| s.ends_with("--features default")));
        assert_eq!(
            plan[plan.len() - 2],
            "cargo test --workspace --all-features"
        );
        assert_eq!(
            plan[plan.len() - 1],
            "RUSTDOCFLAGS=-D warnings cargo doc --workspace --no-deps --all-features"
        );
    }

    #[test]
    fn failures_say_how_to_fix() {
        let features: [String; 0] = [];
        let plan = static_steps(&features);
        assert_eq!(plan[0].fix.as_deref(), Some("cargo fmt --all"));
    }

    #[test]
    fn conformance_is_strict_only_under_ci() {
        assert_eq!(conformance_decision(true, true, None), Conformance::Run);
        assert!(
            matches!(conformance_decision(true, true, Some("port busy")), Conformance::Fail(r) if r.contains("port busy"))
        );
        assert!(
            matches!(conformance_decision(false, true, Some("no npm")), Conformance::Skip(r) if r.contains("no npm"))
        );
        assert!(
            matches!(conformance_decision(false, false, None), Conformance::Skip(r) if r.contains("missing"))
        );
        assert!(matches!(
            conformance_decision(true, false, None),
            Conformance::Fail(_)
        ));
    }

    #[test]
    fn promtool_is_installed_bounded_and_required_only_under_ci() {
        let step = promtool_install_step();
        assert_eq!(
            step.display(),
            format!("timeout {PROMETHEUS_INSTALL_SECONDS} bash scripts/prometheus.sh install")
        );
        assert_eq!(promtool_decision(true, true, None), Conformance::Run);
        assert_eq!(promtool_decision(false, true, None), Conformance::Run);
        assert!(
            matches!(promtool_decision(true, true, Some("needs root")), Conformance::Fail(r) if r.contains("needs root"))
        );
        assert!(
            matches!(promtool_decision(false, true, Some("needs root")), Conformance::Skip(r) if r.contains("needs root"))
        );
        assert!(matches!(
            promtool_decision(true, false, None),
            Conformance::Fail(r) if r.contains("prometheus.sh is missing")
        ));
        assert!(matches!(
            promtool_decision(false, false, None),
            Conformance::Skip(_)
        ));
        let features: [String; 0] = [];
        assert!(static_steps(&features).iter().any(|s| s.name == TESTS_STEP));
    }

    #[test]
    fn the_summary_gives_each_step_its_seconds() {
        let mut timings = Timings::default();
        timings.time("format", || Ok(())).unwrap();
        assert!(
            timings
                .time("tests", || Err(TaskError::Failed("x".to_owned())))
                .is_err()
        );
        let summary = timings.summary();
        let lines: Vec<&str> = summary.lines().collect();
        assert_eq!(lines[1], "xtask ci: cost of each step");
        assert!(lines[2].starts_with("  format      0.0 s"), "{summary}");
        assert!(lines[3].ends_with(" s  FAILED"), "{summary}");
        assert!(lines[4].starts_with("  total"), "{summary}");
    }

    #[test]
    fn env_file_lines() {
        let parsed = parse_env_file(
            "# tokens\nexport UNLEASH_URL=http://127.0.0.1:4242/api\nUNLEASH_API_TOKEN=\"default:development.abc\"\n\n",
        );
        assert_eq!(
            parsed,
            [
                (
                    "UNLEASH_URL".to_owned(),
                    "http://127.0.0.1:4242/api".to_owned()
                ),
                (
                    "UNLEASH_API_TOKEN".to_owned(),
                    "default:development.abc".to_owned()
                ),
            ]
        );
    }

    #[test]
    fn only_unnamed_registry_caches_are_cleared() {
        let src = std::env::temp_dir().join(format!("xtask-cache-test-{}", std::process::id()));
        for dir in [
            "-14cd1cce6819ff87/metrics-core-0.1.0",
            "index.crates.io-1949cf8c6b5b557f/serde-1.0.0",
        ] {
            std::fs::create_dir_all(src.join(dir)).unwrap();
        }
        assert_eq!(local_registry_caches(&src), [src.join("-14cd1cce6819ff87")]);
        std::fs::remove_dir_all(&src).unwrap();
        assert!(local_registry_caches(&src).is_empty());
    }

    #[test]
    fn own_outputs_are_found_by_crate_name_and_hash() {
        let dir = std::env::temp_dir().join(format!("xtask-outputs-test-{}", std::process::id()));
        let files = [
            ".fingerprint/metrics-core-0a1b2c3d",
            ".fingerprint/metrics-core-extra-0a1b2c3d",
            ".fingerprint/serde-0a1b2c3d",
            "deps/libmetrics_core-0a1b2c3d.rlib",
            "deps/metrics_core-0a1b2c3d.d",
            "deps/libmetrics_hub-ffff.rmeta",
            "build/metrics-core-0123/x",
        ];
        for file in files {
            let path = dir.join(file);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, "").unwrap();
        }
        let names = ["metrics-core".to_owned()];
        let found: Vec<String> = own_build_outputs(&dir, &names)
            .iter()
            .map(|p| p.strip_prefix(&dir).unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            found,
            [
                ".fingerprint/metrics-core-0a1b2c3d",
                "build/metrics-core-0123",
                "deps/libmetrics_core-0a1b2c3d.rlib",
                "deps/metrics_core-0a1b2c3d.d"
            ]
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn package_excludes_unpublished_crates() {
        let shown = package_step().display();
        assert!(shown.contains("--exclude xtask --exclude metrics-hub-examples"));
        assert!(shown.contains("--offline"));
    }
}
