//! Tokens never appear in `Debug`/`Display` output of the builder, the client, the
//! recorder or errors; configuration is validated in `build()`.

use std::time::Duration;

use metrics_core::{Env, Error};
use metrics_emulators::unleash::UnleashEmulator;
use unleash_client::{RecorderConfig, ServerVersion, UnleashClient, UnleashClientBuilder};

const API_SECRET: &str = "default:development.s3cr3t-client-token-value";
const ADMIN_SECRET: &str = "*:*.s3cr3t-admin-token-value";

fn assert_hidden(text: &str) {
    assert!(!text.contains("s3cr3t"), "secret leaked: {text}");
}

#[tokio::test]
async fn secrets_are_never_formatted() {
    let emulator = UnleashEmulator::start().await.unwrap();
    emulator.add_backend_token(API_SECRET);
    let builder = UnleashClient::builder()
        .with_url(emulator.base_url())
        .with_api_token(API_SECRET)
        .with_admin_token(ADMIN_SECRET)
        .with_app_name("secret-test");
    assert_hidden(&format!("{builder:?}"));
    let client = builder.build().unwrap();
    let shown = format!("{client:?}");
    assert_hidden(&shown);
    assert!(shown.contains("secret-test") && shown.contains("***"));

    // A rejected admin token (unknown to the server) and a wrong-type one.
    let err = client.feature_metrics("f").await.unwrap_err();
    assert!(matches!(err, Error::Unauthenticated { .. }));
    assert_hidden(&format!("{err:?} {err}"));
    let wrong = UnleashClient::builder()
        .with_url(emulator.base_url())
        .with_api_token(ADMIN_SECRET)
        .with_app_name("x")
        .build()
        .unwrap();
    emulator.add_admin_token(ADMIN_SECRET);
    let err = wrong.register().await.unwrap_err();
    assert!(matches!(err, Error::Forbidden { .. }));
    assert_hidden(&format!("{err:?} {err}"));

    let recorder = client.start_recorder(RecorderConfig::new()).unwrap();
    recorder.count("f", true);
    assert_hidden(&format!("{recorder:?}"));
    assert_hidden(&format!("{:?}", recorder.status()));
    recorder.shutdown().await.into_result().unwrap();

    // The request carried the token verbatim, without `Bearer`.
    let sent = emulator
        .requests()
        .requests()
        .into_iter()
        .find(|r| {
            r.uri == "/api/client/register" && r.header("unleash-appname") == Some("secret-test")
        })
        .unwrap();
    assert_eq!(sent.header("authorization"), Some(API_SECRET));
}

#[test]
fn build_validates_everything() {
    let config_error = |builder: UnleashClientBuilder| match builder.build() {
        Err(Error::Config { message, .. }) => {
            assert_hidden(&message);
            message
        }
        other => panic!("expected a config error, got {other:?}"),
    };
    let base = || UnleashClient::builder().with_url("http://127.0.0.1:4242");
    assert!(
        config_error(UnleashClient::builder().with_api_token(API_SECRET)).contains("UNLEASH_URL")
    );
    assert!(config_error(base()).contains("no token"));
    assert!(config_error(base().with_api_token(API_SECRET)).contains("application name"));
    assert!(config_error(base().with_admin_token("")).contains("empty"));
    config_error(base().with_admin_token("line\nbreak"));
    config_error(
        base()
            .with_api_token(API_SECRET)
            .with_app_name("a")
            .with_sdk_version("nocolon"),
    );
    config_error(
        base()
            .with_api_token(API_SECRET)
            .with_app_name("a")
            .with_interval(Duration::ZERO),
    );
    config_error(
        UnleashClient::builder()
            .with_url("ftp://127.0.0.1")
            .with_admin_token(ADMIN_SECRET),
    );

    // `/api` at the end of the URL is accepted, as SDK configurations often have it.
    let client = base()
        .with_url("http://127.0.0.1:4242/api/")
        .with_admin_token(ADMIN_SECRET)
        .build()
        .unwrap();
    assert_eq!(client.base_url(), "http://127.0.0.1:4242");
    assert_eq!(client.server_version(), ServerVersion::LATEST);
    assert!(client.instance_id().starts_with("generated-"));
}

#[tokio::test]
async fn recorder_needs_a_runtime_and_a_token() {
    let client = UnleashClient::builder()
        .with_url("http://127.0.0.1:4242")
        .with_api_token(API_SECRET)
        .with_app_name("a")
        .build()
        .unwrap();
    let recorder = client
        .start_recorder(RecorderConfig::new().with_register(false))
        .unwrap();
    drop(recorder);
    let outside =
        std::thread::spawn(move || client.start_recorder(RecorderConfig::new()).map(drop))
            .join()
            .unwrap();
    assert!(matches!(outside, Err(Error::Config { .. })));
}

#[test]
fn from_env_reads_the_documented_variables() {
    let env = Env::from_pairs([
        ("UNLEASH_URL", "http://127.0.0.1:4242/api"),
        ("UNLEASH_API_TOKEN", API_SECRET),
        ("UNLEASH_ADMIN_TOKEN", ADMIN_SECRET),
        ("UNLEASH_APP_NAME", "env-app"),
        ("UNLEASH_INSTANCE_ID", "env-instance"),
        ("UNLEASH_SERVER_VERSION", "4.19.5"),
        ("UNLEASH_METRICS_INTERVAL_MS", "15000"),
        ("UNLEASH_FEATURES", "a, b,"),
    ]);
    let builder = UnleashClientBuilder::from_env_with(&env);
    assert_hidden(&format!("{builder:?}"));
    let client = builder.build().unwrap();
    assert_eq!(client.base_url(), "http://127.0.0.1:4242");
    assert_eq!(client.app_name(), "env-app");
    assert_eq!(client.instance_id(), "env-instance");
    assert_eq!(client.server_version(), ServerVersion::new(4, 19, 5));
    assert_eq!(client.interval(), Duration::from_millis(15000));
    assert_eq!(client.features(), ["a", "b"]);

    // A malformed value is reported by `build`, naming the variable.
    let bad = Env::from_pairs([
        ("UNLEASH_URL", "http://127.0.0.1:4242"),
        ("UNLEASH_ADMIN_TOKEN", ADMIN_SECRET),
        ("UNLEASH_METRICS_INTERVAL_MS", "soon"),
    ]);
    let err = UnleashClientBuilder::from_env_with(&bad)
        .build()
        .unwrap_err();
    assert!(
        err.to_string().contains("UNLEASH_METRICS_INTERVAL_MS"),
        "{err}"
    );
}

#[test]
fn the_builder_debug_hides_a_password_in_the_url() {
    let builder = UnleashClient::builder()
        .with_url(format!(
            "https://ops:{ADMIN_SECRET}@unleash.example.com/api"
        ))
        .with_admin_token(ADMIN_SECRET);
    let shown = format!("{builder:?}");
    assert_hidden(&shown);
    assert!(
        shown.contains("https://***@unleash.example.com/api"),
        "{shown}"
    );
}
