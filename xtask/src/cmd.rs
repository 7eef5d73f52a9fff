//! Running commands from the workspace root, echoing them first.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::TaskError;

/// The workspace root (the parent of this crate's directory).
pub(crate) fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
}

/// `cargo`, as the one running this task.
pub(crate) fn cargo() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned())
}

/// A command line as data, so that the plan of a task can be unit tested.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Step {
    /// What it checks, for the summary.
    pub(crate) name: String,
    /// The program and its arguments.
    pub(crate) argv: Vec<String>,
    /// Extra environment.
    pub(crate) env: Vec<(String, String)>,
    /// What to run to fix a failure, when there is such a command.
    pub(crate) fix: Option<String>,
}

impl Step {
    pub(crate) fn cargo(name: &str, args: &[&str]) -> Self {
        let mut argv = vec![cargo()];
        argv.extend(args.iter().map(|a| (*a).to_owned()));
        Self {
            name: name.to_owned(),
            argv,
            env: Vec::new(),
            fix: None,
        }
    }

    pub(crate) fn with_env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.to_owned(), value.to_owned()));
        self
    }

    pub(crate) fn with_fix(mut self, fix: &str) -> Self {
        self.fix = Some(fix.to_owned());
        self
    }

    /// The command as a person would type it (program shown as `cargo`).
    pub(crate) fn display(&self) -> String {
        let mut parts: Vec<String> = self
            .env
            .iter()
            .map(|(k, v)| {
                if is_secret_name(k) {
                    format!("{k}=***")
                } else {
                    format!("{k}={v}")
                }
            })
            .collect();
        for (i, arg) in self.argv.iter().enumerate() {
            if i == 0 && arg == &cargo() {
                parts.push("cargo".to_owned());
            } else if arg.contains(' ') {
                parts.push(format!("'{arg}'"));
            } else {
                parts.push(arg.clone());
            }
        }
        parts.join(" ")
    }

    /// Runs it in `dir`, inheriting stdout and stderr.
    pub(crate) fn run_in(&self, dir: &Path) -> Result<(), TaskError> {
        println!("\n==> {}: {}", self.name, self.display());
        let status = Command::new(&self.argv[0])
            .args(&self.argv[1..])
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .current_dir(dir)
            .status()
            .map_err(|e| TaskError::Failed(format!("could not start `{}`: {e}", self.display())))?;
        if status.success() {
            Ok(())
        } else {
            let fix = self
                .fix
                .as_ref()
                .map(|fix| format!("\n    to fix: {fix}"))
                .unwrap_or_default();
            Err(TaskError::Failed(format!(
                "step `{}` failed ({status}): {}{fix}",
                self.name,
                self.display()
            )))
        }
    }
}

/// Runs a command and returns its stdout, for `cargo metadata` and `git`.
pub(crate) fn output(dir: &Path, program: &str, args: &[&str]) -> Result<String, TaskError> {
    let out = Command::new(program)
        .args(args)
        .current_dir(dir)
        .output()
        .map_err(|e| TaskError::Failed(format!("could not start `{program}`: {e}")))?;
    if !out.status.success() {
        return Err(TaskError::Failed(format!(
            "`{program} {}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// `cargo metadata` of the workspace at `dir`, without dependencies, as JSON text.
pub(crate) fn metadata(dir: &Path) -> Result<String, TaskError> {
    output(
        dir,
        &cargo(),
        &[
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--offline",
        ],
    )
}

/// Environment variables whose values are credentials, never printed.
fn is_secret_name(name: &str) -> bool {
    let upper = name.to_ascii_uppercase();
    ["TOKEN", "PASSWORD", "SECRET", "KEY", "API_URL"]
        .iter()
        .any(|word| upper.contains(word))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_in_the_environment_are_not_shown() {
        let step = Step::cargo("t", &["test"])
            .with_env("UNLEASH_API_TOKEN", "default:development.abc")
            .with_env("UNLEASH_URL", "http://127.0.0.1:4242");
        let shown = step.display();
        assert_eq!(
            shown,
            "UNLEASH_API_TOKEN=*** UNLEASH_URL=http://127.0.0.1:4242 cargo test"
        );
    }
}
