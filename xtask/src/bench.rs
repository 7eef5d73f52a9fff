//! `cargo xtask bench [--json] [--replay-only] [OPERATION...]`: the client-versus-floor
//! benchmark suite, and the exporter's `/metrics` (render against prometheus-client, and
//! concurrent scrapes).
//!
//! It runs `cargo bench -p metrics-hub-examples --bench clients -- [ARGS]`. The pure parts
//! (medians, ratios, the table and the JSON report) live here with their unit tests; the
//! benchmark binary (`examples/benches/clients.rs`) includes this file as a module, so the
//! table it prints is the one tested here.

#![allow(
    dead_code,
    reason = "the report half is used by the benchmark binary, which includes this file; the runner half only here"
)]

use std::fmt::Write as _;
use std::process::Command;
use std::time::Instant;

/// What `cargo xtask bench` was asked for.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct BenchArgs {
    /// The machine-readable report.
    pub(crate) json: bool,
    /// Only the replay table, not the emulator or exporter ones.
    pub(crate) replay_only: bool,
    /// Operations to run, matched against their keys (e.g. `Outline`, `VumiFire`); all when
    /// empty.
    pub(crate) only: Vec<String>,
}

/// The cargo arguments that run the suite.
pub(crate) fn cargo_args(args: &BenchArgs) -> Vec<String> {
    let mut out: Vec<String> = [
        "bench",
        "-p",
        "metrics-hub-examples",
        "--bench",
        "clients",
        "--",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    if args.json {
        out.push("--json".to_owned());
    }
    if args.replay_only {
        out.push("--replay-only".to_owned());
    }
    out.extend(args.only.iter().cloned());
    out
}

/// Reads `[--json] [--replay-only] [OPERATION...]`; any other flag is a usage error.
pub(crate) fn parse_args(args: &[String]) -> Result<BenchArgs, String> {
    let mut parsed = BenchArgs::default();
    for arg in args {
        match arg.as_str() {
            "--json" => parsed.json = true,
            "--replay-only" => parsed.replay_only = true,
            flag if flag.starts_with('-') => {
                return Err(format!(
                    "bench takes --json, --replay-only and operation names, not {flag:?}"
                ));
            }
            name => parsed.only.push(name.to_owned()),
        }
    }
    Ok(parsed)
}

/// Runs the suite, its output going straight to the terminal.
pub(crate) fn run(args: &[String]) -> Result<(), String> {
    let args = parse_args(args)?;
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let started = Instant::now();
    let status = Command::new(&cargo)
        .args(cargo_args(&args))
        .status()
        .map_err(|e| format!("cannot run {cargo}: {e}"))?;
    eprintln!(
        "xtask bench: {} in {:.0} s (build included)",
        if status.success() {
            "finished"
        } else {
            "failed"
        },
        started.elapsed().as_secs_f64()
    );
    if status.success() {
        Ok(())
    } else {
        Err(format!(
            "`cargo {}` failed ({status})",
            cargo_args(&args).join(" ")
        ))
    }
}

/// The median of some samples (the mean of the middle two for an even count); `None` when
/// there are none. NaNs sort last.
pub(crate) fn median(samples: &[f64]) -> Option<f64> {
    if samples.is_empty() {
        return None;
    }
    let mut sorted = samples.to_vec();
    sorted.sort_by(f64::total_cmp);
    let mid = sorted.len() / 2;
    Some(if sorted.len().is_multiple_of(2) {
        f64::midpoint(sorted[mid - 1], sorted[mid])
    } else {
        sorted[mid]
    })
}

/// The median of the ratios of paired samples (`client[i] / floor[i]`), which shared the
/// machine's noise; `None` when no pair has a ratio.
pub(crate) fn paired_median(client: &[f64], floor: &[f64]) -> Option<f64> {
    median(
        &client
            .iter()
            .zip(floor)
            .filter_map(|(client, floor)| ratio(*client, *floor))
            .collect::<Vec<_>>(),
    )
}

/// The nearest-rank percentile (`q` in 0..=1) of some samples: the smallest sample with at
/// least that share of the samples at or below it; `None` when there are none. NaNs sort
/// last.
pub(crate) fn percentile(samples: &[f64], q: f64) -> Option<f64> {
    if samples.is_empty() {
        return None;
    }
    let mut sorted = samples.to_vec();
    sorted.sort_by(f64::total_cmp);
    #[allow(
        clippy::cast_precision_loss,
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        reason = "a rank between 1 and the sample count"
    )]
    let rank = ((q.clamp(0.0, 1.0) * sorted.len() as f64).ceil() as usize).max(1);
    Some(sorted[rank.min(sorted.len()) - 1])
}

/// `client / floor`, or `None` when the floor is not a positive number.
pub(crate) fn ratio(client: f64, floor: f64) -> Option<f64> {
    (floor > 0.0 && floor.is_finite() && client.is_finite()).then(|| client / floor)
}

/// One measured operation.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Row {
    /// The operation, e.g. `outline transfer (100k keys)`.
    pub(crate) name: String,
    /// What is counted per second: `calls` or `measurements`.
    pub(crate) unit: String,
    /// The client's rate (median of the rounds).
    pub(crate) client_per_s: f64,
    /// The floor's rate (median of the rounds).
    pub(crate) floor_per_s: f64,
    /// `client / floor`: the median of the ratios of adjacent client and floor rounds, which
    /// shared the machine's noise; `None` to take it from the two medians.
    pub(crate) paired_ratio: Option<f64>,
    /// Peak memory of one client call, in bytes, when measured.
    pub(crate) peak_bytes: Option<u64>,
    /// The target, as text, e.g. `>= 0.9x`.
    pub(crate) target: String,
    /// Anything else worth a column (body size, times).
    pub(crate) note: String,
    /// CPU time per unit, when measured (against the replay server).
    pub(crate) cpu: Option<Cpu>,
}

/// CPU time of the measuring process per unit (call or measurement), in seconds.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Cpu {
    /// The client's (median of the rounds).
    pub(crate) client: f64,
    /// The floor's (median of the rounds).
    pub(crate) floor: f64,
    /// `client / floor`, the median of the ratios of adjacent rounds; `None` to take it from
    /// the two medians.
    pub(crate) paired_ratio: Option<f64>,
}

impl Cpu {
    /// `client / floor`: the paired ratio when there is one, else the ratio of the medians.
    pub(crate) fn ratio(&self) -> Option<f64> {
        self.paired_ratio.or_else(|| ratio(self.client, self.floor))
    }
}

impl Row {
    /// `client / floor`: the paired ratio when there is one, else the ratio of the medians.
    pub(crate) fn ratio(&self) -> Option<f64> {
        self.paired_ratio
            .or_else(|| ratio(self.client_per_s, self.floor_per_s))
    }
}

/// The exporter's renderer against prometheus-client's text encoder, one format, on the
/// same samples.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct RenderRow {
    /// The text format, e.g. `OpenMetrics 1.0`.
    pub(crate) format: String,
    /// Samples in one body.
    pub(crate) series: usize,
    /// Seconds per body, ours (median of the rounds).
    pub(crate) ours_s: f64,
    /// Our body's length in bytes.
    pub(crate) ours_bytes: usize,
    /// Seconds per body, prometheus-client's (median of the rounds).
    pub(crate) theirs_s: f64,
    /// prometheus-client's body's length in bytes.
    pub(crate) theirs_bytes: usize,
    /// Their time over ours, the median of adjacent rounds; `None` to take it from the two
    /// medians.
    pub(crate) paired_ratio: Option<f64>,
    /// The same for bodies rendered right after the other side's (its data in the caches),
    /// where the times above are of each side's second body in a row.
    pub(crate) cold_ratio: Option<f64>,
    /// The target, as text, e.g. `>= 1x`.
    pub(crate) target: String,
}

impl RenderRow {
    /// How many times faster ours is (their time over ours): the paired ratio when there is
    /// one, else the ratio of the medians.
    pub(crate) fn ratio(&self) -> Option<f64> {
        self.paired_ratio
            .or_else(|| ratio(self.theirs_s, self.ours_s))
    }
}

/// Turning one collection's series into what the bodies are rendered from: the exporter's
/// snapshot against filling a prometheus-client registry with the same samples.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct PrepareRow {
    /// Series prepared.
    pub(crate) series: usize,
    /// Seconds per collection, ours (median of the rounds).
    pub(crate) ours_s: f64,
    /// Seconds per collection, prometheus-client's (median of the rounds).
    pub(crate) theirs_s: f64,
    /// Their time over ours, the median of adjacent rounds; `None` to take it from the two
    /// medians.
    pub(crate) paired_ratio: Option<f64>,
}

impl PrepareRow {
    /// How many times faster ours is (their time over ours).
    pub(crate) fn ratio(&self) -> Option<f64> {
        self.paired_ratio
            .or_else(|| ratio(self.theirs_s, self.ours_s))
    }
}

/// Bytes per second of a body of `bytes` written in `secs`.
#[allow(clippy::cast_precision_loss, reason = "a rate")]
fn bytes_per_s(bytes: usize, secs: f64) -> f64 {
    bytes as f64 / secs
}

/// Concurrent scrapers of the running exporter.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct ScrapeRow {
    /// Scrapers at once.
    pub(crate) scrapers: usize,
    /// Scrapes measured, all scrapers together.
    pub(crate) scrapes: usize,
    /// Series the exporter holds.
    pub(crate) series: usize,
    /// The body's length in bytes.
    pub(crate) body_bytes: usize,
    /// Latency of one whole scrape, seconds: median, 99th percentile, max.
    pub(crate) median_s: f64,
    pub(crate) p99_s: f64,
    pub(crate) max_s: f64,
    /// Scrapes per second, all scrapers together.
    pub(crate) per_s: f64,
    /// The exporter's CPU seconds per scrape, when known.
    pub(crate) cpu_per_scrape_s: Option<f64>,
    /// Anything else worth saying.
    pub(crate) note: String,
}

/// The exporter's figures: render against prometheus-client, and scrapes.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct Exporter {
    /// One row per format.
    pub(crate) render: Vec<RenderRow>,
    /// What each side does once per collection before rendering.
    pub(crate) prepare: Vec<PrepareRow>,
    /// Concurrent scrapes of the running exporter.
    pub(crate) scrape: Vec<ScrapeRow>,
}

/// A rate for people: `12.3k`, `1.23M`, `456`, `7.89`.
pub(crate) fn human_rate(per_s: f64) -> String {
    if !per_s.is_finite() {
        return "-".to_owned();
    }
    if per_s >= 1e6 {
        format!("{:.2}M", per_s / 1e6)
    } else if per_s >= 1e4 {
        format!("{:.1}k", per_s / 1e3)
    } else if per_s >= 100.0 {
        format!("{per_s:.0}")
    } else {
        format!("{per_s:.2}")
    }
}

/// Bytes for people: KiB below 1 MiB, else MiB with one decimal (`-` when not measured).
pub(crate) fn human_bytes(bytes: Option<u64>) -> String {
    #[allow(clippy::cast_precision_loss, reason = "shown with one decimal")]
    bytes.map_or_else(
        || "-".to_owned(),
        |b| {
            if b < 1024 * 1024 {
                format!("{} KiB", b / 1024)
            } else {
                format!("{:.1} MiB", b as f64 / (1024.0 * 1024.0))
            }
        },
    )
}

/// A time per unit for people: `850 ns`, `12.3 µs`, `1.23 ms` (`-` when not finite).
pub(crate) fn human_duration(secs: f64) -> String {
    if !secs.is_finite() {
        return "-".to_owned();
    }
    let ns = secs * 1e9;
    if ns.abs() < 1e3 {
        format!("{ns:.0} ns")
    } else if ns.abs() < 1e6 {
        format!("{:.1} µs", ns / 1e3)
    } else if ns.abs() < 1e9 {
        format!("{:.2} ms", ns / 1e6)
    } else {
        format!("{secs:.2} s")
    }
}

/// A byte rate for people: `812 MiB/s`, `45.3 MiB/s`, `1.21 GiB/s` (`-` when not finite).
pub(crate) fn human_byte_rate(per_s: f64) -> String {
    if !per_s.is_finite() {
        return "-".to_owned();
    }
    let mib = per_s / (1024.0 * 1024.0);
    if mib >= 1024.0 {
        format!("{:.2} GiB/s", mib / 1024.0)
    } else if mib >= 100.0 {
        format!("{mib:.0} MiB/s")
    } else {
        format!("{mib:.1} MiB/s")
    }
}

fn human_ratio(ratio: Option<f64>) -> String {
    ratio.map_or_else(|| "-".to_owned(), |r| format!("{r:.2}x"))
}

/// The emulator table: one line per operation, columns aligned.
pub(crate) fn format_table(rows: &[Row]) -> String {
    let header = [
        "operation",
        "unit",
        "client/s",
        "floor/s",
        "ratio",
        "target",
        "peak mem",
        "note",
    ];
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|row| {
            vec![
                row.name.clone(),
                row.unit.clone(),
                human_rate(row.client_per_s),
                human_rate(row.floor_per_s),
                human_ratio(row.ratio()),
                row.target.clone(),
                human_bytes(row.peak_bytes),
                row.note.clone(),
            ]
        })
        .collect();
    align(&header, &cells, &[0, 1, 7])
}

/// The replay table: rates and CPU time per unit, client and floor.
pub(crate) fn format_replay_table(rows: &[Row]) -> String {
    let header = [
        "operation",
        "unit",
        "client/s",
        "floor/s",
        "ratio",
        "client cpu",
        "floor cpu",
        "cpu ratio",
        "extra cpu",
        "note",
    ];
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|row| {
            let cpu = row.cpu.as_ref();
            vec![
                row.name.clone(),
                row.unit.clone(),
                human_rate(row.client_per_s),
                human_rate(row.floor_per_s),
                human_ratio(row.ratio()),
                human_duration(cpu.map_or(f64::NAN, |c| c.client)),
                human_duration(cpu.map_or(f64::NAN, |c| c.floor)),
                human_ratio(cpu.and_then(Cpu::ratio)),
                cpu.map_or_else(
                    || "-".to_owned(),
                    |c| {
                        let extra = human_duration(c.client - c.floor);
                        if c.client >= c.floor {
                            format!("+{extra}")
                        } else {
                            extra
                        }
                    },
                ),
                row.note.clone(),
            ]
        })
        .collect();
    align(&header, &cells, &[0, 1, 9])
}

/// The render table: per format, time per body and bytes per second of ours and of
/// prometheus-client, and how many times faster ours is, warm and cold.
pub(crate) fn format_render_table(rows: &[RenderRow]) -> String {
    let header = [
        "format",
        "series",
        "metrics-hub",
        "rate",
        "prometheus-client",
        "rate",
        "ratio",
        "cold ratio",
        "target",
        "bodies (ours / theirs)",
    ];
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|row| {
            vec![
                row.format.clone(),
                row.series.to_string(),
                human_duration(row.ours_s),
                human_byte_rate(bytes_per_s(row.ours_bytes, row.ours_s)),
                human_duration(row.theirs_s),
                human_byte_rate(bytes_per_s(row.theirs_bytes, row.theirs_s)),
                human_ratio(row.ratio()),
                human_ratio(row.cold_ratio),
                row.target.clone(),
                format!(
                    "{} / {}",
                    human_bytes(Some(row.ours_bytes as u64)),
                    human_bytes(Some(row.theirs_bytes as u64))
                ),
            ]
        })
        .collect();
    align(&header, &cells, &[0, 9])
}

/// The prepare table: time per collection of ours and of prometheus-client, and how many
/// times faster ours is.
pub(crate) fn format_prepare_table(rows: &[PrepareRow]) -> String {
    let header = [
        "series",
        "metrics-hub (Snapshot::new)",
        "prometheus-client (get_or_create + set)",
        "ratio",
    ];
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|row| {
            vec![
                row.series.to_string(),
                human_duration(row.ours_s),
                human_duration(row.theirs_s),
                human_ratio(row.ratio()),
            ]
        })
        .collect();
    align(&header, &cells, &[])
}

/// The scrape table: latency of whole scrapes by concurrent scrapers, their rate, and the
/// exporter's CPU per scrape.
pub(crate) fn format_scrape_table(rows: &[ScrapeRow]) -> String {
    let header = [
        "scrapers",
        "scrapes",
        "series",
        "body",
        "median",
        "p99",
        "max",
        "scrapes/s",
        "exporter cpu/scrape",
        "note",
    ];
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|row| {
            vec![
                row.scrapers.to_string(),
                row.scrapes.to_string(),
                row.series.to_string(),
                human_bytes(Some(row.body_bytes as u64)),
                human_duration(row.median_s),
                human_duration(row.p99_s),
                human_duration(row.max_s),
                human_rate(row.per_s),
                human_duration(row.cpu_per_scrape_s.unwrap_or(f64::NAN)),
                row.note.clone(),
            ]
        })
        .collect();
    align(&header, &cells, &[9])
}

/// Lines of cells in aligned columns: those in `left` to the left, numbers to the right.
fn align(header: &[&str], cells: &[Vec<String>], left: &[usize]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for line in cells {
        for (width, cell) in widths.iter_mut().zip(line) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let mut push = |line: &[String]| {
        let mut text = String::new();
        for (i, (cell, &width)) in line.iter().zip(&widths).enumerate() {
            if i > 0 {
                text.push_str("  ");
            }
            // `{:>width$}` counts chars, which is what the widths are.
            if left.contains(&i) {
                let _ = write!(text, "{cell:<width$}");
            } else {
                let _ = write!(text, "{cell:>width$}");
            }
        }
        out.push_str(text.trim_end());
        out.push('\n');
    };
    push(&header.iter().map(|h| (*h).to_owned()).collect::<Vec<_>>());
    push(&widths.iter().map(|w| "-".repeat(*w)).collect::<Vec<_>>());
    for line in cells {
        push(line);
    }
    out
}

/// The machine-readable report: `{"memory": …, "replay": [{…}], "rows": [{…}],
/// "exporter": {"render": [{…}], "prepare": [{…}], "scrape": [{…}]}}`, the emulator table in `rows`; CPU times
/// in seconds per unit, times in seconds, sizes in bytes, rates per second.
pub(crate) fn format_json(
    replay: &[Row],
    rows: &[Row],
    exporter: &Exporter,
    memory: &str,
) -> String {
    let json_rows = |rows: &[Row]| -> Vec<serde_json::Value> {
        rows.iter()
            .map(|row| {
                let mut value = serde_json::json!({
                    "operation": row.name,
                    "unit": row.unit,
                    "client_per_s": finite(row.client_per_s),
                    "floor_per_s": finite(row.floor_per_s),
                    "ratio": row.ratio(),
                    "target": row.target,
                    "peak_bytes": row.peak_bytes,
                    "note": row.note,
                });
                if let Some(cpu) = &row.cpu {
                    value["client_cpu_s"] = finite(cpu.client).into();
                    value["floor_cpu_s"] = finite(cpu.floor).into();
                    value["cpu_ratio"] = cpu.ratio().into();
                }
                value
            })
            .collect()
    };
    let render: Vec<serde_json::Value> = exporter
        .render
        .iter()
        .map(|row| {
            serde_json::json!({
                "format": row.format,
                "series": row.series,
                "ours_s": finite(row.ours_s),
                "ours_bytes": row.ours_bytes,
                "ours_bytes_per_s": finite(bytes_per_s(row.ours_bytes, row.ours_s)),
                "prometheus_client_s": finite(row.theirs_s),
                "prometheus_client_bytes": row.theirs_bytes,
                "prometheus_client_bytes_per_s": finite(bytes_per_s(row.theirs_bytes, row.theirs_s)),
                "ratio": row.ratio(),
                "cold_ratio": row.cold_ratio,
                "target": row.target,
            })
        })
        .collect();
    let prepare: Vec<serde_json::Value> = exporter
        .prepare
        .iter()
        .map(|row| {
            serde_json::json!({
                "series": row.series,
                "ours_s": finite(row.ours_s),
                "prometheus_client_s": finite(row.theirs_s),
                "ratio": row.ratio(),
            })
        })
        .collect();
    let scrape: Vec<serde_json::Value> = exporter
        .scrape
        .iter()
        .map(|row| {
            serde_json::json!({
                "scrapers": row.scrapers,
                "scrapes": row.scrapes,
                "series": row.series,
                "body_bytes": row.body_bytes,
                "median_s": finite(row.median_s),
                "p99_s": finite(row.p99_s),
                "max_s": finite(row.max_s),
                "scrapes_per_s": finite(row.per_s),
                "exporter_cpu_per_scrape_s": row.cpu_per_scrape_s.and_then(finite),
                "note": row.note,
            })
        })
        .collect();
    serde_json::json!({
        "memory": memory,
        "replay": json_rows(replay),
        "rows": json_rows(rows),
        "exporter": {"render": render, "prepare": prepare, "scrape": scrape},
    })
    .to_string()
}

fn finite(value: f64) -> Option<f64> {
    value.is_finite().then_some(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(name: &str, client: f64, floor: f64) -> Row {
        Row {
            name: name.to_owned(),
            unit: "calls".to_owned(),
            client_per_s: client,
            floor_per_s: floor,
            paired_ratio: None,
            peak_bytes: Some(3 * 1024 * 1024),
            target: ">= 0.9x".to_owned(),
            note: String::new(),
            cpu: None,
        }
    }

    #[test]
    fn median_of_odd_even_and_empty() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), Some(2.5));
        assert_eq!(median(&[7.0]), Some(7.0));
        assert_eq!(median(&[]), None);
    }

    #[test]
    fn ratio_needs_a_positive_floor() {
        assert_eq!(ratio(50.0, 100.0), Some(0.5));
        assert_eq!(ratio(50.0, 0.0), None);
        assert_eq!(ratio(f64::NAN, 1.0), None);
    }

    #[test]
    fn a_paired_ratio_wins_over_the_medians() {
        let mut one = row("a", 9.0, 10.0);
        assert_eq!(one.ratio(), Some(0.9));
        one.paired_ratio = Some(0.95);
        assert_eq!(one.ratio(), Some(0.95));
    }

    #[test]
    fn rates_and_bytes_for_people() {
        assert_eq!(human_rate(2_500_000.0), "2.50M");
        assert_eq!(human_rate(12_345.0), "12.3k");
        assert_eq!(human_rate(456.4), "456");
        assert_eq!(human_rate(7.891), "7.89");
        assert_eq!(human_rate(f64::INFINITY), "-");
        assert_eq!(human_bytes(Some(1024 * 1024 * 3 / 2)), "1.5 MiB");
        assert_eq!(human_bytes(Some(8 * 1024)), "8 KiB");
        assert_eq!(human_bytes(None), "-");
    }

    #[test]
    fn table_aligns_columns_and_shows_ratios() {
        let table = format_table(&[
            row("outline enabled", 9_000.0, 10_000.0),
            row("x", 1.0, 0.0),
        ]);
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines.len(), 4);
        assert!(lines[0].starts_with("operation      "));
        assert!(lines[1].starts_with("---------------"));
        assert!(lines[2].contains("0.90x"), "{table}");
        assert!(lines[2].contains("3.0 MiB"), "{table}");
        // A missing floor shows as `-`, not as infinity.
        assert!(lines[3].contains(" - "), "{table}");
        // Every line's ratio column ends at the same place.
        let end = lines[0].find(" ratio").map(|i| i + " ratio".len());
        assert_eq!(lines[2].find("0.90x").map(|i| i + 5), end);
    }

    fn replay_row(name: &str, client_cpu: f64, floor_cpu: f64) -> Row {
        Row {
            peak_bytes: None,
            cpu: Some(Cpu {
                client: client_cpu,
                floor: floor_cpu,
                paired_ratio: None,
            }),
            ..row(name, 9_000.0, 10_000.0)
        }
    }

    #[test]
    fn json_report_has_every_row_and_the_memory_note() {
        let json = format_json(
            &[replay_row("r", 30e-6, 20e-6)],
            &[row("a", 9.0, 10.0)],
            &Exporter::default(),
            "client process RSS",
        );
        let value: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(value["memory"], "client process RSS");
        assert_eq!(value["rows"][0]["operation"], "a");
        assert_eq!(value["rows"][0]["ratio"], 0.9);
        assert_eq!(value["rows"][0]["peak_bytes"], 3 * 1024 * 1024);
        assert!(value["rows"][0].get("client_cpu_s").is_none());
        assert_eq!(value["replay"][0]["operation"], "r");
        assert_eq!(value["replay"][0]["client_cpu_s"], 30e-6);
        assert_eq!(value["replay"][0]["floor_cpu_s"], 20e-6);
        assert_eq!(value["replay"][0]["cpu_ratio"], 1.5);
        let json = format_json(&[], &[row("b", 1.0, 0.0)], &Exporter::default(), "");
        let value: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert!(value["rows"][0]["ratio"].is_null());
        assert_eq!(value["replay"], serde_json::json!([]));
    }

    #[test]
    fn paired_median_and_durations() {
        assert_eq!(paired_median(&[1.0, 4.0, 9.0], &[2.0, 4.0, 3.0]), Some(1.0));
        assert_eq!(paired_median(&[1.0], &[0.0]), None);
        assert_eq!(human_duration(850e-9), "850 ns");
        assert_eq!(human_duration(12.34e-6), "12.3 µs");
        assert_eq!(human_duration(1.234e-3), "1.23 ms");
        assert_eq!(human_duration(-2e-6), "-2.0 µs");
        assert_eq!(human_duration(f64::NAN), "-");
    }

    #[test]
    fn replay_table_shows_cpu_per_unit_and_the_extra() {
        let table = format_replay_table(&[
            replay_row("outline enabled", 30e-6, 20e-6),
            replay_row("faster", 1e-6, 2e-6),
        ]);
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines.len(), 4, "{table}");
        assert!(lines[0].contains("client cpu"), "{table}");
        assert!(lines[2].contains("30.0 µs"), "{table}");
        assert!(lines[2].contains("20.0 µs"), "{table}");
        assert!(lines[2].contains("1.50x"), "{table}");
        assert!(lines[2].contains("+10.0 µs"), "{table}");
        assert!(lines[3].contains("-1.0 µs"), "{table}");
        // The columns line up although `µ` is two bytes.
        let column = |line: &str, text: &str| line.find(text).map(|i| line[..i].chars().count());
        assert_eq!(
            column(lines[2], "+10.0 µs"),
            column(lines[0], "extra cpu").map(|c| c + 1)
        );
    }

    #[test]
    fn percentiles_by_nearest_rank() {
        let samples: Vec<f64> = (1..=200).rev().map(f64::from).collect();
        assert_eq!(percentile(&samples, 0.99), Some(198.0));
        assert_eq!(percentile(&samples, 0.5), Some(100.0));
        assert_eq!(percentile(&samples, 1.0), Some(200.0));
        assert_eq!(percentile(&samples, 0.0), Some(1.0));
        assert_eq!(percentile(&[3.0, 1.0, 2.0], 0.99), Some(3.0));
        assert_eq!(percentile(&[], 0.5), None);
    }

    fn render_row(format: &str, ours_s: f64, theirs_s: f64) -> RenderRow {
        RenderRow {
            format: format.to_owned(),
            series: 100_000,
            ours_s,
            ours_bytes: 8 * 1024 * 1024,
            theirs_s,
            theirs_bytes: 8 * 1024 * 1024 + 512 * 1024,
            paired_ratio: None,
            cold_ratio: Some(0.8),
            target: ">= 1x".to_owned(),
        }
    }

    fn scrape_row() -> ScrapeRow {
        ScrapeRow {
            scrapers: 10,
            scrapes: 300,
            series: 100_000,
            body_bytes: 7 * 1024 * 1024 + 512 * 1024,
            median_s: 45.2e-3,
            p99_s: 0.1104,
            max_s: 0.125,
            per_s: 212.4,
            cpu_per_scrape_s: Some(3.2e-3),
            note: "first full body 1.9 s after start".to_owned(),
        }
    }

    #[test]
    fn render_table_shows_times_rates_and_how_much_faster_ours_is() {
        let mut faster = render_row("OpenMetrics 1.0", 0.020, 0.030);
        let slower = render_row("Prometheus 0.0.4", 0.040, 0.030);
        assert_eq!(faster.ratio(), Some(1.5));
        let table = format_render_table(&[faster.clone(), slower]);
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines.len(), 4, "{table}");
        assert!(lines[0].starts_with("format  "), "{table}");
        assert!(lines[0].contains("metrics-hub") && lines[0].contains("prometheus-client"));
        // 8 MiB in 20 ms, 8.5 MiB in 30 ms.
        assert!(lines[2].contains("20.00 ms"), "{table}");
        assert!(lines[2].contains("400 MiB/s"), "{table}");
        assert!(lines[2].contains("283 MiB/s"), "{table}");
        assert!(lines[2].contains("1.50x"), "{table}");
        assert!(lines[2].contains("0.80x"), "{table}");
        assert!(lines[2].ends_with("8.0 MiB / 8.5 MiB"), "{table}");
        assert!(lines[3].contains("0.75x"), "{table}");
        // The ratio column ends at the same place on every line.
        let end = |line: &str, text: &str| line.find(text).map(|i| i + text.len());
        assert_eq!(end(lines[2], "1.50x"), end(lines[0], "ratio"));
        faster.paired_ratio = Some(1.4);
        assert_eq!(faster.ratio(), Some(1.4));
    }

    #[test]
    fn prepare_table_shows_both_sides_and_the_ratio() {
        let row = PrepareRow {
            series: 100_000,
            ours_s: 0.0251,
            theirs_s: 0.0502,
            paired_ratio: Some(1.9),
        };
        let table = format_prepare_table(&[row]);
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines.len(), 3, "{table}");
        assert!(lines[0].contains("Snapshot::new"), "{table}");
        for text in ["100000", "25.10 ms", "50.20 ms", "1.90x"] {
            assert!(lines[2].contains(text), "{text}: {table}");
        }
    }

    #[test]
    fn byte_rates_for_people() {
        assert_eq!(human_byte_rate(812.0 * 1024.0 * 1024.0), "812 MiB/s");
        assert_eq!(human_byte_rate(45.26 * 1024.0 * 1024.0), "45.3 MiB/s");
        assert_eq!(
            human_byte_rate(1.5 * 1024.0 * 1024.0 * 1024.0),
            "1.50 GiB/s"
        );
        assert_eq!(human_byte_rate(f64::INFINITY), "-");
    }

    #[test]
    fn scrape_table_shows_latencies_rate_and_cpu() {
        let mut unknown_cpu = scrape_row();
        unknown_cpu.cpu_per_scrape_s = None;
        let table = format_scrape_table(&[scrape_row(), unknown_cpu]);
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines.len(), 4, "{table}");
        assert!(lines[0].contains("exporter cpu/scrape"), "{table}");
        for text in [
            "7.5 MiB",
            "45.20 ms",
            "110.40 ms",
            "125.00 ms",
            "212",
            "3.20 ms",
        ] {
            assert!(lines[2].contains(text), "{text}: {table}");
        }
        assert!(
            lines[2].ends_with("first full body 1.9 s after start"),
            "{table}"
        );
        // An unknown CPU time shows as `-`, in the same column.
        let column = |line: &str, text: &str| line.find(text).map(|i| i + text.len());
        assert_eq!(
            column(lines[3], " - "),
            column(lines[2], "3.20 ms").map(|c| c + 1)
        );
    }

    #[test]
    fn json_report_has_the_exporter() {
        let exporter = Exporter {
            render: vec![render_row("OpenMetrics 1.0", 0.020, 0.030)],
            prepare: vec![PrepareRow {
                series: 100_000,
                ours_s: 0.025,
                theirs_s: 0.050,
                paired_ratio: None,
            }],
            scrape: vec![ScrapeRow {
                cpu_per_scrape_s: None,
                ..scrape_row()
            }],
        };
        let json = format_json(&[], &[], &exporter, "");
        let value: serde_json::Value = serde_json::from_str(&json).unwrap();
        let render = &value["exporter"]["render"][0];
        assert_eq!(render["format"], "OpenMetrics 1.0");
        assert_eq!(render["ours_s"], 0.020);
        assert_eq!(render["prometheus_client_s"], 0.030);
        assert_eq!(render["ours_bytes"], 8 * 1024 * 1024);
        assert_eq!(render["ours_bytes_per_s"], 8.0 * 1024.0 * 1024.0 / 0.020);
        assert_eq!(render["ratio"], 1.5);
        assert_eq!(render["cold_ratio"], 0.8);
        let prepare = &value["exporter"]["prepare"][0];
        assert_eq!(prepare["ours_s"], 0.025);
        assert_eq!(prepare["prometheus_client_s"], 0.050);
        assert_eq!(prepare["ratio"], 2.0);
        let scrape = &value["exporter"]["scrape"][0];
        assert_eq!(scrape["scrapers"], 10);
        assert_eq!(scrape["p99_s"], 0.1104);
        assert_eq!(scrape["scrapes_per_s"], 212.4);
        assert!(scrape["exporter_cpu_per_scrape_s"].is_null());
        let empty = format_json(&[], &[], &Exporter::default(), "");
        let value: serde_json::Value = serde_json::from_str(&empty).unwrap();
        assert_eq!(value["exporter"]["render"], serde_json::json!([]));
    }

    #[test]
    fn args_and_the_cargo_command() {
        assert_eq!(parse_args(&[]), Ok(BenchArgs::default()));
        let all = parse_args(&[
            "--json".to_owned(),
            "--replay-only".to_owned(),
            "Outline".to_owned(),
        ])
        .unwrap();
        assert!(all.json && all.replay_only);
        assert_eq!(all.only, ["Outline"]);
        assert!(parse_args(&["--fast".to_owned()]).is_err());
        assert_eq!(
            cargo_args(&all).join(" "),
            "bench -p metrics-hub-examples --bench clients -- --json --replay-only Outline"
        );
        assert_eq!(
            cargo_args(&BenchArgs::default()).last().map(String::as_str),
            Some("--")
        );
    }
}
