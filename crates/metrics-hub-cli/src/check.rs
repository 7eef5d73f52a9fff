//! `metrics-hub check`: the config is valid, and every source answers.

use std::process::ExitCode;
use std::time::Instant;

use metrics_hub::Query;
use tokio::task::JoinSet;

use crate::errors;
use crate::sources::{Origin, Source};

/// Collects once from each source at the same time and says per source whether it works and
/// what to change if not. Exit status 0 only when all work.
pub(crate) async fn run(sources: Vec<Source>, origin: &Origin) -> ExitCode {
    println!("config: {origin}: {} source(s)", sources.len());
    let mut tasks = JoinSet::new();
    for (index, source) in sources.iter().cloned().enumerate() {
        tasks.spawn(async move {
            let started = Instant::now();
            let result = source.collect(&Query::new()).await;
            (index, result, started.elapsed())
        });
    }
    let mut results: Vec<Option<String>> = vec![None; sources.len()];
    let mut failed = 0;
    while let Some(joined) = tasks.join_next().await {
        let Ok((index, result, took)) = joined else {
            failed += 1;
            continue;
        };
        let source = &sources[index];
        let line = match result {
            Ok(series) => format!(
                "ok    {} ({}): {} series in {:.2} s",
                source.name,
                source.backend,
                series.len(),
                took.as_secs_f64()
            ),
            Err(error) => {
                failed += 1;
                let kind = error.kind();
                let endpoint = source
                    .client
                    .endpoint()
                    .map(|e| format!(" at {e}"))
                    .unwrap_or_default();
                format!(
                    "FAIL  {} ({}{endpoint}): {kind}: {error}\n      fix: {}",
                    source.name,
                    source.backend,
                    errors::hint(kind, source.backend)
                )
            }
        };
        results[index] = Some(line);
    }
    for (source, line) in sources.iter().zip(results) {
        println!(
            "{}",
            line.unwrap_or_else(|| format!("FAIL  {}: the check panicked", source.name))
        );
    }
    if failed == 0 {
        println!("all {} source(s) work", sources.len());
        ExitCode::SUCCESS
    } else {
        println!("{failed} of {} source(s) failed", sources.len());
        ExitCode::FAILURE
    }
}
