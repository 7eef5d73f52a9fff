#![doc = include_str!("../README.md")]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod check;
mod collect;
mod config;
pub mod demo;
mod emulate;
mod errors;
pub mod exposition;
mod serve;
mod sources;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use tracing::level_filters::LevelFilter;

use crate::collect::{OutputFormat, QueryFlags};
use crate::sources::{Origin, Setup, SetupError};

/// Where `serve` listens unless `--listen` or `[server] listen` says otherwise.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:9898";

/// Exit status of a refused configuration (or command line).
const EXIT_CONFIG: u8 = 2;

#[derive(Debug, Parser)]
#[command(
    name = "metrics-hub",
    version,
    about = "Metrics from Outline, AppOptics, Unleash, Coopr and Vumi Go: collect them once, or serve them to Prometheus",
    long_about = None,
    after_help = "Sources come from the config file (--config, else METRICS_HUB_CONFIG, else ./metrics-hub.toml);\n\
                  without one, from the backends' variables (OUTLINE_API_URL, APPOPTICS_TOKEN, UNLEASH_URL, COOPR_URL,\n\
                  VUMI_URL, …); without those, `collect` and `serve` use the built-in emulators.\n\
                  Exit status: 0 success, 1 a source or the server failed, 2 a refused config or command line."
)]
struct Cli {
    /// The config file.
    #[arg(long, short = 'c', global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    /// What to log on stderr: off, error, warn, info, debug or trace [default: RUST_LOG, else
    /// info for serve and emulate, warn otherwise].
    #[arg(long, global = true, value_name = "LEVEL", value_parser = parse_level)]
    log_level: Option<LevelFilter>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Collect once from every source and print the result; exit status 1 if any failed.
    Collect(CollectArgs),
    /// Serve the sources to Prometheus: /metrics, /healthz, and a status page at /.
    Serve(ServeArgs),
    /// Run the five built-in emulators for other programs' tests and print the variables that
    /// point at them.
    Emulate(EmulateArgs),
    /// Validate the config and try every source once; exit status 0 only when all work.
    Check,
}

#[derive(Debug, Args)]
struct CollectArgs {
    /// Output format.
    #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
    format: OutputFormat,
    /// How far back to ask, such as 1h or 30m [default: each source's `range`].
    #[arg(long, value_name = "DURATION", value_parser = parse_duration_arg)]
    last: Option<Duration>,
    /// The spacing of points, such as 5m [default: each source's `step`].
    #[arg(long, value_name = "DURATION", value_parser = parse_duration_arg)]
    step: Option<Duration>,
    /// Only series whose name matches; `*` matches anything (repeat or separate with commas).
    #[arg(long = "name", value_name = "PATTERN", value_delimiter = ',')]
    names: Vec<String>,
}

#[derive(Debug, Args)]
struct ServeArgs {
    /// The address and port to listen on [default: `[server] listen`, else 127.0.0.1:9898].
    #[arg(long, value_name = "ADDRESS")]
    listen: Option<SocketAddr>,
    /// Give every sample the time of its point (off: the scraper stamps it).
    #[arg(long)]
    timestamps: bool,
}

#[derive(Debug, Args)]
struct EmulateArgs {
    /// Serve the emulators on five consecutive ports from this one, in the order outline,
    /// appoptics, unleash, coopr, vumi [default: ports the system chooses].
    #[arg(long, value_name = "PORT")]
    port_base: Option<u16>,
    /// The Outline emulator's port (HTTPS).
    #[arg(long, value_name = "PORT")]
    outline_port: Option<u16>,
    /// The AppOptics emulator's port.
    #[arg(long, value_name = "PORT")]
    appoptics_port: Option<u16>,
    /// The Unleash emulator's port.
    #[arg(long, value_name = "PORT")]
    unleash_port: Option<u16>,
    /// The Coopr emulator's port.
    #[arg(long, value_name = "PORT")]
    coopr_port: Option<u16>,
    /// The Vumi emulator's port.
    #[arg(long, value_name = "PORT")]
    vumi_port: Option<u16>,
}

fn parse_duration_arg(text: &str) -> Result<Duration, String> {
    let duration = config::parse_duration(text)?;
    if duration.is_zero() {
        return Err("must be longer than zero".to_owned());
    }
    Ok(duration)
}

fn parse_level(text: &str) -> Result<LevelFilter, String> {
    text.trim()
        .parse::<LevelFilter>()
        .map_err(|_| format!("`{text}` is not one of off, error, warn, info, debug, trace"))
}

/// The most verbose level `RUST_LOG` names (`trace`, `info,hyper=debug`, …), if any.
fn level_from_rust_log(value: &str) -> Option<LevelFilter> {
    value
        .split(',')
        .filter_map(|directive| {
            let level = directive.rsplit('=').next().unwrap_or(directive);
            level.trim().parse::<LevelFilter>().ok()
        })
        .max()
}

/// Runs the `metrics-hub` command with the process's arguments and environment, and returns
/// its exit status: 0 success, 1 a source or the server failed, 2 a refused config or
/// command line.
pub fn run() -> ExitCode {
    let cli = Cli::parse();
    let default_level = match cli.command {
        Command::Serve(_) | Command::Emulate(_) => LevelFilter::INFO,
        Command::Collect(_) | Command::Check => LevelFilter::WARN,
    };
    let level = cli
        .log_level
        .or_else(|| {
            std::env::var("RUST_LOG")
                .ok()
                .and_then(|v| level_from_rust_log(&v))
        })
        .unwrap_or(default_level);
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_max_level(level)
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("metrics-hub: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let code = runtime.block_on(dispatch(cli));
    runtime.shutdown_timeout(Duration::from_secs(1));
    code
}

async fn dispatch(cli: Cli) -> ExitCode {
    let env = |name: &str| std::env::var(name).ok();
    let config = cli.config.as_deref();
    match cli.command {
        Command::Collect(args) => {
            let setup = match sources::setup(config, &env, true).await {
                Ok(setup) => setup,
                Err(error) => return refuse(&error),
            };
            announce(&setup);
            let flags = QueryFlags {
                last: args.last,
                step: args.step,
                names: args.names,
            };
            let code = collect::run(setup.sources, args.format, &flags).await;
            drop(setup.demo);
            code
        }
        Command::Serve(args) => {
            let setup = match sources::setup(config, &env, true).await {
                Ok(setup) => setup,
                Err(error) => return refuse(&error),
            };
            announce(&setup);
            let listen = args.listen.or(setup.server.listen).unwrap_or_else(|| {
                DEFAULT_LISTEN
                    .parse()
                    .unwrap_or(([127, 0, 0, 1], 9898).into())
            });
            let options = serve::Options {
                listen,
                timestamps: args.timestamps || setup.server.timestamps,
                auth: setup.server.auth,
            };
            let result = serve::run(setup.sources, options).await;
            drop(setup.demo);
            match result {
                Ok(()) => ExitCode::SUCCESS,
                Err(error) => {
                    eprintln!("metrics-hub: {error}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Emulate(args) => {
            let ports = emulate::Ports {
                base: args.port_base,
                outline: args.outline_port,
                appoptics: args.appoptics_port,
                unleash: args.unleash_port,
                coopr: args.coopr_port,
                vumi: args.vumi_port,
            };
            emulate::run(&ports).await
        }
        Command::Check => match sources::setup(config, &env, false).await {
            Ok(setup) => check::run(setup.sources, &setup.origin).await,
            Err(error) => refuse(&error),
        },
    }
}

/// Prints why the sources could not be set up; exit status 2 for the config.
fn refuse(error: &SetupError) -> ExitCode {
    match error {
        SetupError::Config(error) => {
            eprintln!("metrics-hub: config refused: {error}");
            eprintln!("metrics-hub: nothing was started");
            ExitCode::from(EXIT_CONFIG)
        }
        SetupError::Failed(message) => {
            eprintln!("metrics-hub: {message}");
            ExitCode::FAILURE
        }
    }
}

/// Says on stderr where the sources come from when it is not a config file.
fn announce(setup: &Setup) {
    match &setup.origin {
        Origin::Demo => eprintln!(
            "metrics-hub: no config file and no backend variables: using the built-in emulators of all five backends, seeded with demo data"
        ),
        Origin::Environment => eprintln!(
            "metrics-hub: no config file: sources from the environment: {}",
            setup
                .sources
                .iter()
                .map(|s| s.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Origin::Config(_) => {}
    }
}

/// Resolves on SIGTERM or SIGINT (Ctrl-C).
pub(crate) async fn shutdown_signal() {
    let interrupt = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => tracing::info!("SIGINT received: shutting down"),
        () = terminate => tracing::info!("SIGTERM received: shutting down"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory as _;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn rust_log_gives_its_most_verbose_level() {
        assert_eq!(level_from_rust_log("trace"), Some(LevelFilter::TRACE));
        assert_eq!(
            level_from_rust_log("info,hyper=debug"),
            Some(LevelFilter::DEBUG)
        );
        assert_eq!(level_from_rust_log("nonsense"), None);
    }
}
