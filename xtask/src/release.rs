//! `cargo xtask release VERSION [--execute]`: one version for every crate, released together.
//!
//! Without `--execute` nothing in the checkout changes: the bump and the CHANGELOG section are
//! applied to a scratch copy of the tracked files, where `cargo package` proves that every
//! crate would publish. With `--execute` the same changes are made in the checkout and the
//! crates are published in dependency order.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use crate::TaskError;
use crate::cmd::{self, Step};

pub(crate) fn run(args: &[String]) -> Result<(), TaskError> {
    let mut version = None;
    let mut execute = false;
    for arg in args {
        match arg.as_str() {
            "--execute" => execute = true,
            "--dry-run" => execute = false,
            flag if flag.starts_with('-') => {
                return Err(TaskError::Usage(format!(
                    "unknown option for release: {flag}"
                )));
            }
            value if version.is_none() => version = Some(value.to_owned()),
            extra => return Err(TaskError::Usage(format!("unexpected argument: {extra}"))),
        }
    }
    let Some(version) = version else {
        return Err(TaskError::Usage(
            "release needs a VERSION, e.g. `cargo xtask release 0.2.0`".to_owned(),
        ));
    };
    let version = parse_version(&version).map_err(TaskError::Usage)?;
    let root = cmd::workspace_root();
    let before = cmd::output(
        &root,
        "git",
        &["status", "--porcelain", "--untracked-files=no"],
    )?;
    if execute && !before.trim().is_empty() {
        return Err(TaskError::Failed(
            "the checkout has uncommitted changes; commit or stash them first".to_owned(),
        ));
    }

    let work = if execute {
        root.clone()
    } else {
        scratch_copy(&root)?
    };
    let today = chrono::Utc::now().date_naive().to_string();
    apply_release(&work, &version, &today)?;

    let metadata = cmd::metadata(&work)?;
    let order = publish_order(&metadata).map_err(TaskError::Failed)?;
    println!("\npublish order:");
    for (i, name) in order.iter().enumerate() {
        println!("  {}. {name} {version}", i + 1);
    }

    crate::ci::package(&root, &work)?;

    let taken = taken_names(&order);
    report_taken(&taken);

    if execute {
        if !taken.is_empty() {
            return Err(TaskError::Failed(
                "not publishing: rename the crates whose names belong to someone else first (the bump is applied; `git checkout .` undoes it)".to_owned(),
            ));
        }
        for name in &order {
            Step::cargo(&format!("publish {name}"), &["publish", "-p", name]).run_in(&root)?;
        }
        println!(
            "\nreleased {version}; commit and tag: git commit -am 'Release {version}' && git tag v{version}"
        );
    } else {
        let after = cmd::output(
            &root,
            "git",
            &["status", "--porcelain", "--untracked-files=no"],
        )?;
        if after != before {
            return Err(TaskError::Failed(
                "the dry run changed tracked files; this is a bug in xtask".to_owned(),
            ));
        }
        println!(
            "\ndry run of {version} passed; nothing in the checkout changed. Run again with --execute to release."
        );
    }
    Ok(())
}

/// A `MAJOR.MINOR.PATCH[-PRE]` version.
fn parse_version(text: &str) -> Result<String, String> {
    let (core, pre) = match text.split_once('-') {
        Some((core, pre)) => (core, Some(pre)),
        None => (text, None),
    };
    let parts: Vec<&str> = core.split('.').collect();
    let numeric = |p: &&str| {
        !p.is_empty()
            && p.bytes().all(|b| b.is_ascii_digit())
            && (p.len() == 1 || !p.starts_with('0'))
    };
    if parts.len() != 3 || !parts.iter().all(numeric) {
        return Err(format!(
            "`{text}` is not a version: expected MAJOR.MINOR.PATCH, e.g. 0.2.0"
        ));
    }
    if let Some(pre) = pre {
        let valid = !pre.is_empty()
            && pre.split('.').all(|id| {
                !id.is_empty() && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            });
        if !valid {
            return Err(format!("`{text}` has an invalid pre-release part `{pre}`"));
        }
    }
    Ok(text.to_owned())
}

/// Sets `[workspace.package] version` and the version of every internal crate in
/// `[workspace.dependencies]` (the entries with a `path`).
fn bump_manifest(manifest: &str, version: &str) -> Result<String, String> {
    let mut section = String::new();
    let mut bumped_package = false;
    let mut out = String::with_capacity(manifest.len());
    for line in manifest.split_inclusive('\n') {
        let trimmed = line.trim();
        if trimmed.starts_with('[') {
            section = trimmed.to_owned();
        }
        let replaced = if section == "[workspace.package]"
            && trimmed.starts_with("version")
            && trimmed.contains('=')
        {
            bumped_package = true;
            Some(format!("version = \"{version}\"{}", line_ending(line)))
        } else if section == "[workspace.dependencies]" && trimmed.contains("path = ") {
            replace_inline_version(line, version)
        } else {
            None
        };
        out.push_str(replaced.as_deref().unwrap_or(line));
    }
    if bumped_package {
        Ok(out)
    } else {
        Err("the root Cargo.toml has no version in [workspace.package]".to_owned())
    }
}

fn line_ending(line: &str) -> &'static str {
    if line.ends_with('\n') { "\n" } else { "" }
}

/// `name = { path = "…", version = "0.1.0" }` with the version replaced.
fn replace_inline_version(line: &str, version: &str) -> Option<String> {
    let start = line.find("version = \"")? + "version = \"".len();
    let end = start + line[start..].find('"')?;
    Some(format!("{}{version}{}", &line[..start], &line[end..]))
}

/// Moves what is under `## [Unreleased]` into a new `## [VERSION] - DATE` section. When that
/// section already exists, checks that it has content and changes nothing.
fn release_changelog(changelog: &str, version: &str, date: &str) -> Result<String, String> {
    let heading = format!("## [{version}]");
    if let Some(at) = changelog.find(&heading) {
        let body = section_body(&changelog[at + heading.len()..]);
        return if body.trim().is_empty() {
            Err(format!(
                "CHANGELOG.md has a section {heading} but nothing in it"
            ))
        } else {
            Ok(changelog.to_owned())
        };
    }
    let unreleased = "## [Unreleased]";
    let at = changelog
        .find(unreleased)
        .ok_or_else(|| "CHANGELOG.md has no `## [Unreleased]` section".to_owned())?;
    let after_heading = at + unreleased.len();
    let body = section_body(&changelog[after_heading..]);
    if body.trim().is_empty() {
        return Err(
            "CHANGELOG.md's [Unreleased] section is empty: say what this release changes"
                .to_owned(),
        );
    }
    let rest = &changelog[after_heading + body.len()..];
    Ok(format!(
        "{}{unreleased}\n\n{heading} - {date}\n\n{}\n\n{}",
        &changelog[..at],
        body.trim(),
        rest.trim_start()
    ))
}

/// The text up to the next `## ` heading or link definitions at the end.
fn section_body(text: &str) -> &str {
    let mut end = text.len();
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        if offset > 0 && (line.starts_with("## ") || line.starts_with("[Unreleased]:")) {
            end = offset;
            break;
        }
        offset += line.len();
    }
    &text[..end]
}

/// Publishable workspace crates in an order where each comes after every workspace crate it
/// depends on (dev-dependencies too: `cargo publish` needs them on the registry). Ties are
/// broken by name, so the order is stable.
pub(crate) fn publish_order(metadata_json: &str) -> Result<Vec<String>, String> {
    let metadata: serde_json::Value = serde_json::from_str(metadata_json)
        .map_err(|e| format!("cargo metadata is not JSON: {e}"))?;
    let packages = metadata["packages"]
        .as_array()
        .ok_or("cargo metadata has no packages")?;
    let publishable =
        |p: &serde_json::Value| !matches!(p["publish"].as_array(), Some(list) if list.is_empty());
    let names: BTreeSet<String> = packages
        .iter()
        .filter(|p| publishable(p))
        .filter_map(|p| p["name"].as_str().map(str::to_owned))
        .collect();
    let mut depends_on: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for package in packages.iter().filter(|p| publishable(p)) {
        let name = package["name"].as_str().unwrap_or_default().to_owned();
        let deps = package["dependencies"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|d| d["name"].as_str())
            .filter(|d| names.contains(*d) && *d != name)
            .map(str::to_owned)
            .collect();
        depends_on.insert(name, deps);
    }
    let mut order = Vec::with_capacity(names.len());
    let mut placed = BTreeSet::new();
    while order.len() < names.len() {
        let next = depends_on
            .iter()
            .find(|(name, deps)| !placed.contains(*name) && deps.iter().all(|d| placed.contains(d)))
            .map(|(name, _)| name.clone());
        let Some(next) = next else {
            let stuck: Vec<&String> = names.iter().filter(|n| !placed.contains(*n)).collect();
            return Err(format!("dependency cycle among {stuck:?}"));
        };
        placed.insert(next.clone());
        order.push(next);
    }
    Ok(order)
}

fn apply_release(dir: &Path, version: &str, date: &str) -> Result<(), TaskError> {
    let manifest_path = dir.join("Cargo.toml");
    let manifest = read(&manifest_path)?;
    write(
        &manifest_path,
        &bump_manifest(&manifest, version).map_err(TaskError::Failed)?,
    )?;
    let changelog_path = dir.join("CHANGELOG.md");
    let changelog = read(&changelog_path)?;
    write(
        &changelog_path,
        &release_changelog(&changelog, version, date).map_err(TaskError::Failed)?,
    )?;
    // Cargo.lock carries the internal crates' versions too.
    Step::cargo(
        "update the lock file",
        &["update", "--workspace", "--offline"],
    )
    .run_in(dir)?;
    println!("bumped every crate to {version}; CHANGELOG section {version} - {date}");
    Ok(())
}

/// Copies the tracked files into `target/release-dry-run/`.
fn scratch_copy(root: &Path) -> Result<PathBuf, TaskError> {
    let scratch = root.join("target").join("release-dry-run");
    if scratch.exists() {
        std::fs::remove_dir_all(&scratch)
            .map_err(|e| TaskError::Failed(format!("cannot clear {}: {e}", scratch.display())))?;
    }
    let files = cmd::output(root, "git", &["ls-files", "-z"])?;
    for file in files.split('\0').filter(|f| !f.is_empty()) {
        let from = root.join(file);
        let to = scratch.join(file);
        if let Some(parent) = to.parent() {
            std::fs::create_dir_all(parent).map_err(|e| {
                TaskError::Failed(format!("cannot create {}: {e}", parent.display()))
            })?;
        }
        // A tracked file deleted in the working tree is simply not copied.
        if from.is_file() {
            std::fs::copy(&from, &to)
                .map_err(|e| TaskError::Failed(format!("cannot copy {file}: {e}")))?;
        }
    }
    Ok(scratch)
}

/// The names that already exist on crates.io, asked through the sparse index (`cargo info`
/// from outside the workspace, so that it does not answer with the local package). `None`
/// for a name whose look-up failed for another reason.
fn taken_names(names: &[String]) -> Vec<(String, Option<String>)> {
    let outside = std::env::temp_dir();
    names
        .iter()
        .filter_map(|name| {
            let output = std::process::Command::new(cmd::cargo())
                .args(["info", name, "--registry", "crates-io"])
                .current_dir(&outside)
                .output();
            match output {
                Ok(out) if out.status.success() => {
                    let text = String::from_utf8_lossy(&out.stdout);
                    let latest = text
                        .lines()
                        .find_map(|l| l.strip_prefix("version: "))
                        .map(str::to_owned);
                    Some((name.clone(), latest))
                }
                Ok(out) if String::from_utf8_lossy(&out.stderr).contains("could not find") => None,
                Ok(out) => {
                    eprintln!(
                        "warning: could not check `{name}` on crates.io: {}",
                        String::from_utf8_lossy(&out.stderr).trim()
                    );
                    None
                }
                Err(e) => {
                    eprintln!("warning: could not run cargo info: {e}");
                    None
                }
            }
        })
        .collect()
}

fn report_taken(taken: &[(String, Option<String>)]) {
    if taken.is_empty() {
        println!("\nno crate name is taken on crates.io");
        return;
    }
    println!(
        "\ncrate names already published on crates.io by someone else (rename before publishing):"
    );
    for (name, latest) in taken {
        println!("  {name} (latest {})", latest.as_deref().unwrap_or("?"));
    }
}

fn read(path: &Path) -> Result<String, TaskError> {
    std::fs::read_to_string(path)
        .map_err(|e| TaskError::Failed(format!("cannot read {}: {e}", path.display())))
}

fn write(path: &Path, text: &str) -> Result<(), TaskError> {
    std::fs::write(path, text)
        .map_err(|e| TaskError::Failed(format!("cannot write {}: {e}", path.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions() {
        assert_eq!(parse_version("0.1.0").unwrap(), "0.1.0");
        assert_eq!(parse_version("1.20.3-rc.1").unwrap(), "1.20.3-rc.1");
        for bad in [
            "",
            "1",
            "1.2",
            "1.2.3.4",
            "01.2.3",
            "1.2.x",
            "v1.2.3",
            "1.2.3-",
            "1.2.3-a..b",
        ] {
            assert!(parse_version(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn manifest_bump_touches_only_versions() {
        let manifest = "[workspace]\nmembers = [\"crates/*\"]\n\n[workspace.package]\nversion = \"0.1.0\"\nedition = \"2024\"\n\n[workspace.dependencies]\nmetrics-core = { path = \"crates/metrics-core\", version = \"0.1.0\", default-features = false }\nserde = { version = \"1.0.219\" }\n";
        let bumped = bump_manifest(manifest, "0.2.0").unwrap();
        assert!(bumped.contains("[workspace.package]\nversion = \"0.2.0\"\n"));
        assert!(bumped.contains("version = \"0.2.0\", default-features = false }"));
        assert!(bumped.contains("serde = { version = \"1.0.219\" }"));
        assert!(bump_manifest("[package]\nversion = \"1.0.0\"\n", "2.0.0").is_err());
    }

    #[test]
    fn changelog_section_is_created_from_unreleased() {
        let changelog = "# Changelog\n\n## [Unreleased]\n\n### Added\n- A thing.\n\n## [0.0.1] - 2026-01-01\n\n- Old.\n";
        let released = release_changelog(changelog, "0.1.0", "2026-11-22").unwrap();
        assert_eq!(
            released,
            "# Changelog\n\n## [Unreleased]\n\n## [0.1.0] - 2026-11-22\n\n### Added\n- A thing.\n\n## [0.0.1] - 2026-01-01\n\n- Old.\n"
        );
        // Running it again finds the section and leaves it alone.
        assert_eq!(
            release_changelog(&released, "0.1.0", "2026-11-23").unwrap(),
            released
        );
    }

    #[test]
    fn empty_unreleased_is_refused() {
        assert!(
            release_changelog(
                "# Changelog\n\n## [Unreleased]\n\n## [0.1.0] - x\n\n- y\n",
                "0.2.0",
                "d"
            )
            .is_err()
        );
        assert!(release_changelog("# Changelog\n", "0.2.0", "d").is_err());
    }

    #[test]
    fn publish_order_follows_dependencies() {
        let metadata = serde_json::json!({
            "packages": [
                {"name": "metrics-hub", "publish": null, "dependencies": [{"name": "outline-client"}, {"name": "metrics-core"}]},
                {"name": "outline-client", "publish": null, "dependencies": [{"name": "metrics-core"}, {"name": "metrics-emulators"}, {"name": "serde"}]},
                {"name": "metrics-emulators", "publish": null, "dependencies": [{"name": "axum"}]},
                {"name": "metrics-core", "publish": null, "dependencies": []},
                {"name": "xtask", "publish": [], "dependencies": [{"name": "metrics-core"}]}
            ]
        });
        let order = publish_order(&metadata.to_string()).unwrap();
        assert_eq!(
            order,
            [
                "metrics-core",
                "metrics-emulators",
                "outline-client",
                "metrics-hub"
            ]
        );
    }

    #[test]
    fn publish_order_reports_cycles() {
        let metadata = serde_json::json!({
            "packages": [
                {"name": "a", "publish": null, "dependencies": [{"name": "b"}]},
                {"name": "b", "publish": null, "dependencies": [{"name": "a"}]}
            ]
        });
        assert!(
            publish_order(&metadata.to_string())
                .unwrap_err()
                .contains("cycle")
        );
    }
}
