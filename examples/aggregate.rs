//! The main job: one view across all five backends.
//!
//! Builds one client per backend — against the real server where its environment variables
//! are set (see the README), against a seeded built-in emulator otherwise — holds them as
//! `Vec<Arc<dyn MetricsSource>>`, collects from all of them at once and prints the result.
//! A backend that fails shows as a `FAILED` line; the others still print.
//!
//! ```sh
//! cargo run --example aggregate                        # aligned table
//! cargo run --example aggregate -- --format json
//! cargo run --example aggregate -- --format openmetrics
//! cargo run --example aggregate -- --stop coopr        # one backend down
//! ```

use std::process::ExitCode;
use std::time::Duration;

use metrics_hub::Aggregator;
use metrics_hub::core::render;
use metrics_hub_cli::demo::{BACKENDS, Demo};

const USAGE: &str = "usage: cargo run --example aggregate -- [--format table|json|openmetrics] [--stop BACKEND] [--timeout SECONDS]";

#[derive(Debug)]
struct Options {
    format: String,
    stop: Option<String>,
    timeout: Duration,
}

fn parse(args: &[String]) -> Result<Options, String> {
    let mut options = Options {
        format: "table".to_owned(),
        stop: None,
        timeout: Duration::from_secs(10),
    };
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        let mut value = || {
            args.next()
                .cloned()
                .ok_or_else(|| format!("{arg} needs a value"))
        };
        match arg.as_str() {
            "--format" => options.format = value()?,
            "--stop" => options.stop = Some(value()?),
            "--timeout" => {
                let seconds: f64 = value()?
                    .parse()
                    .map_err(|_| "--timeout takes seconds".to_owned())?;
                if !(seconds.is_finite() && seconds > 0.0) {
                    return Err("--timeout takes a positive number of seconds".to_owned());
                }
                options.timeout = Duration::from_secs_f64(seconds);
            }
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("unknown argument `{other}`")),
        }
    }
    if !matches!(options.format.as_str(), "table" | "json" | "openmetrics") {
        return Err(format!("unknown format `{}`", options.format));
    }
    if let Some(stop) = &options.stop
        && !BACKENDS.contains(&stop.as_str())
    {
        return Err(format!(
            "unknown backend `{stop}`; one of {}",
            BACKENDS.join(", ")
        ));
    }
    Ok(options)
}

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let options = match parse(&args) {
        Ok(options) => options,
        Err(message) => {
            if !message.is_empty() {
                eprintln!("aggregate: {message}");
            }
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    let mut demo = match Demo::start().await {
        Ok(demo) => demo,
        Err(error) => {
            eprintln!("aggregate: could not set up the backends: {error}");
            return ExitCode::FAILURE;
        }
    };
    for backend in &demo.backends {
        eprintln!("{:<10} {}", backend.name, backend.origin);
    }
    if let Some(stop) = &options.stop {
        match demo.emulators.server_mut(stop) {
            Some(server) => {
                server.stop();
                eprintln!("{stop:<10} stopped, to show a failing backend");
            }
            None => eprintln!("{stop:<10} is a real server here; --stop only stops emulators"),
        }
    }
    eprintln!();

    let collection = Aggregator::new(demo.sources())
        .with_timeout(options.timeout)
        .collect(&Demo::query())
        .await;
    match options.format.as_str() {
        "json" => println!("{}", render::json(&collection)),
        "openmetrics" => {
            print!("{}", render::openmetrics(&collection.series));
            for failure in &collection.failures {
                eprintln!("FAILED  {}: {}", failure.source, failure.error);
            }
        }
        _ => print!("{}", render::table(&collection)),
    }
    ExitCode::SUCCESS
}
