//! Secrets never leave the process: a config whose credentials are canary strings, pointed
//! at servers that fail in different ways, and neither `/metrics`, `/`, `check`, `collect`
//! nor any log line at TRACE contains a canary.

mod common;

use std::net::SocketAddr;
use std::process::Output;
use std::time::Duration;

use axum::Router;
use axum::extract::Request;
use axum::http::StatusCode;
use common::{Running, TempDir, command, free_port, get, served_address, wait_for};

/// Every credential of the config, each in its own position.
const CANARIES: [&str; 9] = [
    "canary-outline-path-5b1f9d03c7e2",
    "canary-outline-refused-8e2a41f7",
    "canary-appoptics-token-3c9e7b21",
    "canary-unleash-admin-token-6f04d8a9",
    "canary-unleash-client-token-b71e2c55",
    "canary-coopr-api-key-0a9d6e4f",
    "canary-vumi-user-94c2f1e8",
    "canary-vumi-password-2d7b0a6c",
    "canary-vumi-token-e53f98b1",
];

const SOURCES: [&str; 7] = [
    "outline-echo",
    "outline-refused",
    "appoptics-denied",
    "unleash-echo",
    "coopr-denied",
    "vumi-echo",
    "vumi-denied",
];

/// Serves `router` on a free loopback port.
async fn serve(router: Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    address
}

/// Answers everything with 404 and the request's path and query in the body, as Express
/// and many API servers do.
async fn echo(request: Request) -> (StatusCode, String) {
    let target = request
        .uri()
        .path_and_query()
        .map_or_else(String::new, |pq| pq.as_str().to_owned());
    (
        StatusCode::NOT_FOUND,
        format!("Cannot {} {target}", request.method()),
    )
}

/// Answers everything with 401, naming the path.
async fn deny(request: Request) -> (StatusCode, String) {
    (
        StatusCode::UNAUTHORIZED,
        format!(
            "{{\"message\":\"authentication required for {}\"}}",
            request.uri().path()
        ),
    )
}

fn config(echo: SocketAddr, denied: SocketAddr, refused: u16) -> String {
    format!(
        r#"[server]
listen = "127.0.0.1:0"

[defaults]
interval = "1s"
timeout = "3s"

[sources.outline-echo]
backend = "outline"
api_url = "${{EDGE_API_URL}}"

[sources.outline-refused]
backend = "outline"
api_url = "https://127.0.0.1:{refused}/{refused_path}"
cert_sha256 = "{pin}"

[sources.appoptics-denied]
backend = "appoptics"
token = {{ file = "appoptics.token" }}
base_url = "http://{denied}/v1"
metrics = ["checkout.requests"]

[sources.unleash-echo]
backend = "unleash"
url = "http://{echo}"
admin_token = "${{UNLEASH_ADMIN}}"
api_token = {{ file = "unleash.token" }}
app_name = "checkout"
features = ["new-checkout"]

[sources.coopr-denied]
backend = "coopr"
url = "http://{denied}"
user_id = "admin"
tenant = "superadmin"
api_key = "${{COOPR_KEY}}"

[sources.vumi-echo]
backend = "vumi"
url = "http://{echo}/api"
username = "${{VUMI_USER}}"
password = {{ file = "vumi.password" }}
metrics = ["stores.default.hits.sum"]

[sources.vumi-denied]
backend = "vumi"
url = "http://{denied}/api"
token = "${{VUMI_TOKEN_SECRET}}"
metrics = ["stores.default.hits.sum"]
"#,
        refused_path = CANARIES[1],
        pin = "AB".repeat(32),
    )
}

fn assert_clean(what: &str, text: &str) {
    for canary in CANARIES {
        assert!(
            !text.contains(canary),
            "{what} contains the secret {canary}:\n{text}"
        );
    }
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_output_or_log_line_contains_a_credential() {
    let echo_address = serve(Router::new().fallback(echo)).await;
    let denied_address = serve(Router::new().fallback(deny)).await;
    // The echo server does echo: the scrubbing below is what keeps the secret out.
    let (_, _, echoed) = get(
        &format!("http://{echo_address}/{}/server", CANARIES[0]),
        &[],
    )
    .await
    .unwrap();
    assert!(echoed.contains(CANARIES[0]));

    let dir = TempDir::new("canary");
    let file = dir.write(
        "hub.toml",
        &config(echo_address, denied_address, free_port()),
    );
    dir.write("appoptics.token", &format!("{}\n", CANARIES[2]));
    dir.write("unleash.token", CANARIES[4]);
    dir.write("vumi.password", CANARIES[7]);
    assert!(
        !std::fs::read_to_string(&file)
            .unwrap()
            .contains(CANARIES[0]),
        "the config itself holds no secret that comes from the environment"
    );
    let with_secrets = |args: &[&str]| {
        let mut run = command(dir.path());
        run.arg("--config")
            .arg(&file)
            .args(args)
            .env("RUST_LOG", "trace")
            .env(
                "EDGE_API_URL",
                format!("http://{echo_address}/{}", CANARIES[0]),
            )
            .env("UNLEASH_ADMIN", CANARIES[3])
            .env("COOPR_KEY", CANARIES[5])
            .env("VUMI_USER", CANARIES[6])
            .env("VUMI_TOKEN_SECRET", CANARIES[8]);
        run
    };

    let mut server = Running::spawn(with_secrets(&["serve"]), "serve", dir.path());
    let base = format!(
        "http://{}",
        served_address(dir.path(), "serve.stderr", &mut server)
    );
    let metrics = wait_for(
        Duration::from_secs(30),
        "every source to fail twice",
        || async {
            let (_, _, body) = get(&format!("{base}/metrics"), &[]).await?;
            SOURCES
                .iter()
                .all(|s| {
                    body.lines().any(|l| {
                        l.starts_with("metrics_hub_collect_errors_total{")
                            && l.contains(&format!("source=\"{s}\""))
                            && l.ends_with(" 2")
                    })
                })
                .then_some(body)
        },
    )
    .await;
    assert_clean("/metrics", &metrics);
    let accept = [("accept", "application/openmetrics-text")];
    let (_, _, openmetrics) = get(&format!("{base}/metrics"), &accept).await.unwrap();
    assert_clean("/metrics (OpenMetrics)", &openmetrics);
    let (_, _, page) = get(&format!("{base}/"), &[]).await.unwrap();
    for source in SOURCES {
        assert!(page.contains(&format!("<tr><td>{source}</td>")), "{page}");
    }
    assert!(
        page.contains("not found"),
        "the echoed body is shown, scrubbed: {page}"
    );
    assert_clean("/", &page);
    let status = server.terminate(Duration::from_secs(10));
    assert!(status.is_some_and(|s| s.success()), "{status:?}");
    let log = common::read(dir.path(), "serve.stderr");
    assert!(
        log.contains("TRACE") || log.contains("DEBUG"),
        "logging at trace: {log}"
    );
    assert!(log.contains("collection failed"), "{log}");
    assert_clean("the serve log at TRACE", &log);

    let checked = with_secrets(&["check"]).output().unwrap();
    assert_eq!(checked.status.code(), Some(1));
    let checked = text(&checked);
    assert_eq!(
        checked.matches("FAIL  ").count(),
        SOURCES.len(),
        "{checked}"
    );
    assert_clean("check", &checked);

    let collected = with_secrets(&["collect", "--format", "json"])
        .output()
        .unwrap();
    assert_eq!(collected.status.code(), Some(1));
    let collected = text(&collected);
    assert_eq!(
        collected.matches("FAILED  ").count(),
        SOURCES.len(),
        "{collected}"
    );
    assert_clean("collect", &collected);
}
