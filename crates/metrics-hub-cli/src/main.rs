//! The `metrics-hub` command; see the crate documentation of `metrics_hub_cli`.

fn main() -> std::process::ExitCode {
    metrics_hub_cli::run()
}
