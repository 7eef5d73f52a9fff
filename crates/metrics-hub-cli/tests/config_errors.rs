//! A bad config is refused before anything starts: exit status 2, the file, line and column,
//! and what was expected.

mod common;

use std::time::Duration;

use common::{TempDir, command, free_port};

/// Runs `args` with `config` as the config file; returns the exit code and stderr.
fn refuse(name: &str, config: &str, args: &[&str]) -> (Option<i32>, String, String) {
    let dir = TempDir::new(name);
    let file = dir.write("hub.toml", config);
    let output = command(dir.path())
        .arg("--config")
        .arg(&file)
        .args(args)
        .output()
        .unwrap();
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
        file.display().to_string(),
    )
}

/// `serve` refuses the config with exit status 2, says where, and never listens.
fn assert_refused(name: &str, config: &str, place: &str, expected: &str) {
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let (code, stderr, file) = refuse(name, config, &["serve", "--listen", &listen]);
    assert_eq!(code, Some(2), "{stderr}");
    let line = stderr
        .lines()
        .find(|l| l.starts_with("metrics-hub: config refused: "))
        .unwrap_or_else(|| panic!("no refusal in {stderr}"));
    assert!(
        line.starts_with(&format!("metrics-hub: config refused: {file}:{place}: ")),
        "{line}"
    );
    assert!(line.contains(expected), "{line}");
    assert!(stderr.contains("nothing was started"), "{stderr}");
    assert!(!stderr.contains("serving"), "{stderr}");
    assert!(
        std::net::TcpStream::connect_timeout(&listen.parse().unwrap(), Duration::from_millis(200))
            .is_err(),
        "something listens on {listen}"
    );
}

#[test]
fn a_syntax_error_names_its_line_and_column() {
    assert_refused(
        "syntax",
        "[sources.edge]\nbackend = \"outline\"\napi_url = \"https://edge:1234/abc\n",
        "3:33",
        "invalid basic string, expected `\"`",
    );
}

#[test]
fn an_unknown_key_is_an_error() {
    assert_refused(
        "unknown-key",
        "[sources.edge]\nbackend = \"outline\"\napi_url = \"https://edge:1234/abc\"\ncert_sha265 = \"AB\"\n",
        "4:1",
        "unknown key `cert_sha265`, expected one of",
    );
}

#[test]
fn a_missing_variable_is_named_and_its_value_never_invented() {
    assert_refused(
        "missing-variable",
        "[sources.edge]\nbackend = \"outline\"\napi_url = \"${EDGE_OUTLINE_API_URL}\"\n",
        "3:11",
        "`api_url` refers to the environment variable EDGE_OUTLINE_API_URL, which is not set",
    );
}

#[test]
fn an_unknown_backend_lists_the_known_ones() {
    assert_refused(
        "unknown-backend",
        "[sources.metrics]\nbackend = \"graphite\"\nurl = \"http://graphite\"\n",
        "2:11",
        "unknown backend `graphite` in source `metrics`; expected one of outline, appoptics, unleash, coopr, vumi",
    );
}

#[test]
fn a_key_of_another_backend_is_named_with_its_backend() {
    assert_refused(
        "wrong-backend-key",
        "[sources.edge]\nbackend = \"outline\"\napi_url = \"https://edge:1234/abc\"\n\n[sources.flags]\nbackend = \"coopr\"\nurl = \"http://coopr\"\nuser_id = \"admin\"\ntenant = \"acme\"\nadmin_token = \"x\"\n",
        "10:15",
        "`admin_token` is not a setting of coopr sources (source `flags`)",
    );
}

#[test]
fn a_client_that_refuses_its_settings_points_at_the_source() {
    assert_refused(
        "client-refusal",
        "[sources.edge]\nbackend = \"outline\"\napi_url = \"not a url\"\n",
        "1:1",
        "source `edge` is refused by its client: outline: invalid configuration: the apiUrl is not a valid URL",
    );
}

#[test]
fn every_subcommand_that_reads_the_config_refuses_it_alike() {
    for args in [&["collect"][..], &["check"][..]] {
        let (code, stderr, file) = refuse(
            "every-subcommand",
            "[sources.a]\nbackend = \"nope\"\n",
            args,
        );
        assert_eq!(code, Some(2), "{args:?}: {stderr}");
        assert!(
            stderr.contains(&format!("{file}:2:11: unknown backend")),
            "{stderr}"
        );
    }
    let dir = TempDir::new("no-file");
    let output = command(dir.path())
        .args(["--config", "/nonexistent/hub.toml", "check"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("cannot read the config file /nonexistent/hub.toml"),
        "{stderr}"
    );
}

#[test]
fn a_bad_flag_is_a_usage_error() {
    let dir = TempDir::new("flag");
    let output = command(dir.path())
        .args(["collect", "--last", "soon"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("`soon` is not a duration"), "{stderr}");
}
