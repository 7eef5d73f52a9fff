//! `metrics-hub emulate` serves the five emulators on fixed ports and prints the variables
//! that point at them; `collect` and `check` with those variables (and no config) read all
//! five.

mod common;

use std::time::Duration;

use common::{Running, TempDir, command, free_port};

/// Parses `export NAME='value'` lines.
fn exports(stdout: &str) -> Vec<(String, String)> {
    stdout
        .lines()
        .filter_map(|line| line.strip_prefix("export "))
        .filter_map(|rest| rest.split_once('='))
        .map(|(name, value)| {
            let value = value
                .strip_prefix('\'')
                .and_then(|v| v.strip_suffix('\''))
                .unwrap_or(value)
                .replace(r"'\''", "'");
            (name.to_owned(), value)
        })
        .collect()
}

#[test]
fn emulated_backends_on_fixed_ports_are_collected_through_their_variables() {
    let dir = TempDir::new("emulate");
    // A port found free may be taken by another test before `emulate` binds it: try again
    // with other ports then.
    let mut attempts = 0;
    let (ports, mut emulator, variables) = loop {
        attempts += 1;
        let ports: Vec<u16> = (0..5).map(|_| free_port()).collect();
        let mut emulate = command(dir.path());
        emulate.arg("emulate");
        for (backend, port) in ["outline", "appoptics", "unleash", "coopr", "vumi"]
            .iter()
            .zip(&ports)
        {
            emulate
                .arg(format!("--{backend}-port"))
                .arg(port.to_string());
        }
        let mut emulator = Running::spawn(emulate, "emulate", dir.path());
        let started = std::time::Instant::now();
        let printed = loop {
            let stdout = common::read(dir.path(), "emulate.stdout");
            if stdout.contains("export VUMI_METRICS=") {
                break Some(exports(&stdout));
            }
            if emulator.exited().is_some() {
                break None;
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "no variables printed"
            );
            std::thread::sleep(Duration::from_millis(100));
        };
        let stderr = common::read(dir.path(), "emulate.stderr");
        match printed {
            Some(variables) => break (ports, emulator, variables),
            None if attempts < 3 && stderr.contains("cannot listen on") => {}
            None => panic!("emulate exited: {stderr}"),
        }
    };
    let names: Vec<&str> = variables.iter().map(|(n, _)| n.as_str()).collect();
    for expected in [
        "OUTLINE_API_URL",
        "OUTLINE_CERT_SHA256",
        "APPOPTICS_TOKEN",
        "APPOPTICS_BASE_URL",
        "UNLEASH_URL",
        "UNLEASH_ADMIN_TOKEN",
        "COOPR_URL",
        "VUMI_URL",
        "VUMI_TOKEN",
    ] {
        assert!(
            names.contains(&expected),
            "{expected} missing from {names:?}"
        );
    }
    let value = |name: &str| &variables.iter().find(|(n, _)| n == name).unwrap().1;
    assert!(value("OUTLINE_API_URL").starts_with(&format!("https://127.0.0.1:{}/", ports[0])));
    assert_eq!(
        value("APPOPTICS_BASE_URL"),
        &format!("http://127.0.0.1:{}/v1", ports[1])
    );
    assert_eq!(
        value("COOPR_URL"),
        &format!("http://127.0.0.1:{}", ports[3])
    );

    let output = command(dir.path())
        .args(["collect", "--format", "json"])
        .envs(variables.iter().map(|(n, v)| (n.as_str(), v.as_str())))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("sources from the environment: outline, appoptics, unleash, coopr, vumi"),
        "{stderr}"
    );
    let document: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let sources = document["sources"].as_array().unwrap();
    assert_eq!(sources.len(), 5, "{document}");
    assert!(
        sources
            .iter()
            .all(|s| s["series"].as_u64().is_some_and(|n| n > 0)),
        "{document}"
    );

    let checked = command(dir.path())
        .arg("check")
        .envs(variables.iter().map(|(n, v)| (n.as_str(), v.as_str())))
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&checked.stdout);
    assert_eq!(checked.status.code(), Some(0), "{report}");
    assert_eq!(report.matches("\nok    ").count(), 5, "{report}");
    assert!(report.ends_with("all 5 source(s) work\n"), "{report}");

    let status = emulator
        .terminate(Duration::from_secs(10))
        .expect("emulate did not stop on SIGTERM");
    assert!(status.success());
}
