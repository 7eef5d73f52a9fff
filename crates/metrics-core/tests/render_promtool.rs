//! The text renderers checked by Prometheus' own parsers on generated hostile series.
//!
//! - Prometheus text 0.0.4: `promtool check metrics` (Prometheus' text parser; exit 3 is a
//!   lint hint such as "no help text" and is accepted, anything else is a failure).
//! - OpenMetrics 1.0: `promtool check metrics` only understands 0.0.4 (it rejects an
//!   OpenMetrics timestamp like `1.500`), so the OpenMetrics text goes through
//!   `promtool tsdb create-blocks-from openmetrics`, which reads it with the OpenMetrics parser
//!   Prometheus scrapes with.
//! - Neither parser checks the family-level rules (unique families and sample names, one
//!   series per label set, grouping, counter values), so both outputs also go through the
//!   strict reader below, and must carry the same samples.
//!
//! promtool comes from `scripts/prometheus.sh install`. Without it the tests are skipped with
//! a printed reason, except under `CI=true`, where they fail.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

use metrics_core::chrono::{DateTime, TimeDelta, TimeZone, Utc};
use metrics_core::{Point, Series, SeriesKind, Unit, render};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed, TestCaseError, TestRunner};

// ---------------------------------------------------------------------------------------------
// promtool

/// promtool, or `None` after printing why the caller is skipped; panics under CI.
fn promtool() -> Option<PathBuf> {
    let dir =
        std::env::var_os("PROMETHEUS_BIN_DIR").map_or_else(|| "/usr/bin".into(), PathBuf::from);
    let path = dir.join("promtool");
    let works = Command::new(&path)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if works {
        return Some(path);
    }
    let reason = format!(
        "{} is missing or does not run; install it with `scripts/prometheus.sh install`",
        path.display()
    );
    let in_ci = std::env::var("CI").is_ok_and(|v| v == "true" || v == "1");
    assert!(!in_ci, "CI is set and {reason}");
    eprintln!("SKIPPED: {reason}");
    None
}

/// Runs `promtool check metrics` on Prometheus text; `Err` with promtool's words on a parse
/// error.
fn check_prometheus_text(promtool: &Path, text: &str) -> Result<(), String> {
    let mut child = Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("could not start promtool: {e}"))?;
    let mut stdin = child.stdin.take().expect("piped stdin");
    let written = stdin.write_all(text.as_bytes());
    drop(stdin);
    let output = child
        .wait_with_output()
        .map_err(|e| format!("promtool: {e}"))?;
    written.map_err(|e| format!("writing to promtool: {e}"))?;
    // 0: clean; 3: lint hints only (help text, naming conventions).
    match output.status.code() {
        Some(0 | 3) => Ok(()),
        _ => Err(format!(
            "promtool check metrics failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        )),
    }
}

/// Reads OpenMetrics text with Prometheus' OpenMetrics parser, through the backfiller.
fn check_openmetrics_text(promtool: &Path, text: &str) -> Result<(), String> {
    static RUN: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "metrics-core-promtool-{}-{}",
        std::process::id(),
        RUN.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let input = dir.join("input.om");
    std::fs::write(&input, text).map_err(|e| e.to_string())?;
    let output = Command::new(promtool)
        .args(["tsdb", "create-blocks-from", "openmetrics", "--quiet"])
        .arg(&input)
        .arg(dir.join("blocks"))
        .output()
        .map_err(|e| format!("could not start promtool: {e}"));
    let _ = std::fs::remove_dir_all(&dir);
    let output = output?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "promtool tsdb create-blocks-from openmetrics failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        ))
    }
}

// ---------------------------------------------------------------------------------------------
// A strict reader of what the renderers write

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Format {
    OpenMetrics,
    Prometheus,
}

#[derive(Debug)]
struct Family {
    name: String,
    kind: String,
    samples: Vec<Sample>,
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Sample {
    name: String,
    labels: Vec<(String, String)>,
    /// The value's bits, NaN made canonical, so that samples compare exactly.
    value_bits: u64,
    millis: i64,
}

fn valid_name(name: &str, metric: bool) -> bool {
    let mut chars = name.chars();
    let Some(first) = chars.next() else {
        return false;
    };
    (first.is_ascii_alphabetic() || first == '_' || (metric && first == ':'))
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || (metric && c == ':'))
        && (metric || !name.starts_with("__"))
}

/// Undoes the escapes of a HELP text or label value; only `\\`, `\n` and (where allowed)
/// `\"` are escapes.
fn unescape(text: &str, quote_escape: bool) -> Result<String, String> {
    let mut out = String::new();
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('\\') => out.push('\\'),
            Some('n') => out.push('\n'),
            Some('"') if quote_escape => out.push('"'),
            other => return Err(format!("invalid escape \\{other:?} in {text:?}")),
        }
    }
    Ok(out)
}

fn parse_value(text: &str) -> Result<f64, String> {
    let ok = match text {
        "NaN" | "+Inf" | "-Inf" => true,
        _ => {
            let body = text.strip_prefix('-').unwrap_or(text);
            let (mantissa, exponent) = body.split_once('e').unwrap_or((body, "0"));
            let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, "0"));
            let exponent = exponent.strip_prefix('-').unwrap_or(exponent);
            [int, frac, exponent]
                .iter()
                .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
        }
    };
    if !ok {
        return Err(format!("not a number: {text:?}"));
    }
    text.replace("Inf", "inf")
        .parse()
        .map_err(|e| format!("{text:?}: {e}"))
}

fn parse_timestamp(text: &str, format: Format) -> Result<i64, String> {
    let bad = || format!("bad {format:?} timestamp {text:?}");
    let (negative, body) = match text.strip_prefix('-') {
        Some(body) => (true, body),
        None => (false, text),
    };
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let magnitude: i64 = match format {
        Format::Prometheus => {
            if !digits(body) {
                return Err(bad());
            }
            body.parse().map_err(|_| bad())?
        }
        Format::OpenMetrics => {
            let (seconds, millis) = body.split_once('.').unwrap_or((body, "000"));
            if !digits(seconds) || millis.len() != 3 || !digits(millis) {
                return Err(bad());
            }
            let seconds: i64 = seconds.parse().map_err(|_| bad())?;
            seconds * 1000 + millis.parse::<i64>().map_err(|_| bad())?
        }
    };
    Ok(if negative { -magnitude } else { magnitude })
}

/// `name{a="1",b="2"} value timestamp`.
fn parse_sample(line: &str, format: Format) -> Result<Sample, String> {
    let name_end = line
        .find(['{', ' '])
        .ok_or_else(|| format!("no value: {line:?}"))?;
    let name = &line[..name_end];
    let mut rest = &line[name_end..];
    let mut labels = Vec::new();
    if let Some(body) = rest.strip_prefix('{') {
        let mut body = body;
        loop {
            let eq = body.find('=').ok_or_else(|| format!("no '=': {line:?}"))?;
            let label = &body[..eq];
            if !valid_name(label, false) {
                return Err(format!("bad label name {label:?}: {line:?}"));
            }
            let value_and_rest = body[eq + 1..]
                .strip_prefix('"')
                .ok_or_else(|| format!("unquoted value: {line:?}"))?;
            // The value ends at the first `"` not escaped.
            let mut end = None;
            let mut escaped = false;
            for (i, c) in value_and_rest.char_indices() {
                match (escaped, c) {
                    (true, _) => escaped = false,
                    (false, '\\') => escaped = true,
                    (false, '"') => {
                        end = Some(i);
                        break;
                    }
                    _ => {}
                }
            }
            let end = end.ok_or_else(|| format!("unterminated value: {line:?}"))?;
            let value = unescape(&value_and_rest[..end], true)?;
            if value.is_empty() {
                return Err(format!("empty label value: {line:?}"));
            }
            if labels.iter().any(|(l, _)| l == label) {
                return Err(format!("label {label} twice: {line:?}"));
            }
            labels.push((label.to_owned(), value));
            body = &value_and_rest[end + 1..];
            if let Some(next) = body.strip_prefix(',') {
                body = next;
            } else if let Some(after) = body.strip_prefix('}') {
                rest = after;
                break;
            } else {
                return Err(format!("expected ',' or '}}': {line:?}"));
            }
        }
    }
    let fields: Vec<&str> = rest
        .strip_prefix(' ')
        .ok_or_else(|| format!("no space before the value: {line:?}"))?
        .split(' ')
        .collect();
    let [value, timestamp] = fields[..] else {
        return Err(format!("expected value and timestamp: {line:?}"));
    };
    let value = parse_value(value)?;
    Ok(Sample {
        name: name.to_owned(),
        labels,
        value_bits: if value.is_nan() {
            f64::NAN.to_bits()
        } else {
            value.to_bits()
        },
        millis: parse_timestamp(timestamp, format)?,
    })
}

/// Reads the whole text, enforcing the family-level rules of the format.
fn read_exposition(text: &str, format: Format) -> Result<Vec<Family>, String> {
    let body = match format {
        Format::OpenMetrics => text
            .strip_suffix("# EOF\n")
            .ok_or("no `# EOF` at the end")?,
        Format::Prometheus => text,
    };
    if !body.is_empty() && !body.ends_with('\n') {
        return Err("the last line has no newline".into());
    }
    let mut families: Vec<Family> = Vec::new();
    let mut pending_help: Option<String> = None;
    // Every family and sample name, across families: none may be used twice.
    let mut owned: HashSet<String> = HashSet::new();
    for line in body.lines() {
        if line.is_empty() {
            return Err("blank line".into());
        }
        if let Some(rest) = line.strip_prefix("# ") {
            let (keyword, rest) = rest
                .split_once(' ')
                .ok_or_else(|| format!("bad line {line:?}"))?;
            let (name, arg) = rest
                .split_once(' ')
                .ok_or_else(|| format!("bad line {line:?}"))?;
            match keyword {
                "TYPE" => {
                    if !valid_name(name, true) {
                        return Err(format!("bad family name {name:?}"));
                    }
                    if let Some(help_for) = pending_help.take()
                        && help_for != name
                    {
                        return Err(format!("HELP for {help_for} before TYPE of {name}"));
                    }
                    let allowed = match format {
                        Format::OpenMetrics => ["gauge", "counter", "unknown"],
                        Format::Prometheus => ["gauge", "counter", "untyped"],
                    };
                    if !allowed.contains(&arg) {
                        return Err(format!("bad type {arg:?}"));
                    }
                    let mut names = vec![name.to_owned()];
                    if format == Format::OpenMetrics && arg == "counter" {
                        names.extend(["_total", "_created"].map(|s| format!("{name}{s}")));
                    }
                    if format == Format::Prometheus && arg == "counter" && !name.ends_with("_total")
                    {
                        return Err(format!("counter {name} without _total"));
                    }
                    for one in names {
                        if !owned.insert(one.clone()) {
                            return Err(format!("the name {one} is used twice"));
                        }
                    }
                    families.push(Family {
                        name: name.to_owned(),
                        kind: arg.to_owned(),
                        samples: Vec::new(),
                    });
                }
                "UNIT" if format == Format::OpenMetrics => {
                    let family = families
                        .last()
                        .filter(|f| f.name == name && f.samples.is_empty());
                    if family.is_none() || arg.is_empty() || !name.ends_with(&format!("_{arg}")) {
                        return Err(format!("misplaced or bad UNIT {line:?}"));
                    }
                }
                "HELP" => {
                    unescape(arg, format == Format::OpenMetrics)?;
                    match format {
                        Format::OpenMetrics => {
                            let family = families
                                .last()
                                .filter(|f| f.name == name && f.samples.is_empty());
                            if family.is_none() {
                                return Err(format!("misplaced HELP {line:?}"));
                            }
                        }
                        Format::Prometheus => {
                            if pending_help.replace(name.to_owned()).is_some() {
                                return Err(format!("two HELP lines: {line:?}"));
                            }
                        }
                    }
                }
                _ => return Err(format!("unexpected line {line:?}")),
            }
            continue;
        }
        let sample = parse_sample(line, format)?;
        let family = families
            .last_mut()
            .ok_or_else(|| format!("sample before any TYPE: {line:?}"))?;
        let expected = match (format, family.kind.as_str()) {
            (Format::OpenMetrics, "counter") => format!("{}_total", family.name),
            _ => family.name.clone(),
        };
        if sample.name != expected {
            return Err(format!("sample {} in family {}", sample.name, family.name));
        }
        let value = f64::from_bits(sample.value_bits);
        if family.kind == "counter" && !(value.is_finite() && value >= 0.0) {
            return Err(format!("counter value {value}: {line:?}"));
        }
        // One group per label set, contiguous, timestamps increasing.
        if let Some(last) = family.samples.last() {
            if last.labels == sample.labels {
                if sample.millis <= last.millis {
                    return Err(format!("timestamps do not increase: {line:?}"));
                }
            } else if family.samples.iter().any(|s| s.labels == sample.labels) {
                return Err(format!("label set written twice in a family: {line:?}"));
            }
        }
        family.samples.push(sample);
    }
    if let Some(help_for) = pending_help {
        return Err(format!("HELP for {help_for} without TYPE"));
    }
    Ok(families)
}

/// The samples of both formats, keyed the same way.
fn samples_of(families: &[Family]) -> BTreeSet<Sample> {
    families
        .iter()
        .flat_map(|f| f.samples.iter().cloned())
        .collect()
}

/// Renders in both formats and runs every check.
fn check_all(promtool: &Path, series: &[Series]) -> Result<(), String> {
    let om = render::openmetrics(series);
    let prom = render::prometheus(series);
    let context = |e: String, text: &str| format!("{e}\n--- text ---\n{text}--- end ---");

    let om_families = read_exposition(&om, Format::OpenMetrics).map_err(|e| context(e, &om))?;
    let prom_families =
        read_exposition(&prom, Format::Prometheus).map_err(|e| context(e, &prom))?;
    if samples_of(&om_families) != samples_of(&prom_families) {
        return Err(format!("the two formats differ\n{om}\n{prom}"));
    }
    // The same families: a Prometheus counter is the OpenMetrics family plus `_total`.
    let om_kinds: BTreeMap<&str, &str> = om_families
        .iter()
        .map(|f| (f.name.as_str(), f.kind.as_str()))
        .collect();
    let prom_kinds: BTreeMap<&str, &str> = prom_families
        .iter()
        .map(|f| match f.kind.as_str() {
            "counter" => (f.name.strip_suffix("_total").unwrap_or(&f.name), "counter"),
            "untyped" => (f.name.as_str(), "unknown"),
            other => (f.name.as_str(), other),
        })
        .collect();
    if om_kinds != prom_kinds {
        return Err(format!("the two formats have other families\n{om}\n{prom}"));
    }

    // Every sample is a point that was given.
    let given: HashSet<(i64, u64)> = series
        .iter()
        .flat_map(|s| &s.points)
        .map(|p| {
            let value = if p.value == 0.0 { 0.0 } else { p.value };
            let bits = if value.is_nan() {
                f64::NAN.to_bits()
            } else {
                value.to_bits()
            };
            (p.time.timestamp_millis(), bits)
        })
        .collect();
    if let Some(stray) = samples_of(&om_families)
        .iter()
        .find(|s| !given.contains(&(s.millis, s.value_bits)))
    {
        return Err(format!("{stray:?} is no point of the input"));
    }

    check_prometheus_text(promtool, &prom).map_err(|e| context(e, &prom))?;
    check_openmetrics_text(promtool, &om).map_err(|e| context(e, &om))
}

// ---------------------------------------------------------------------------------------------
// Generated hostile series

fn any_name() -> impl Strategy<Value = String> {
    prop_oneof![
        // A few names that collide across kinds and with each other's samples.
        prop::sample::select(vec![
            "x",
            "x_total",
            "x_created",
            "x_counter",
            "_total",
            "up",
            "x_bytes",
            "x:y",
            "y_total_total",
        ])
        .prop_map(str::to_owned),
        "[a-z_:]{1,8}",
        "[0-9][a-z0-9_]{0,4}",
        "__[a-z_]{0,4}",
        Just(String::new()),
        "\\PC{0,8}",
        any::<String>().prop_map(|s| s.chars().take(8).collect()),
    ]
}

fn any_label_name() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "a", "b", "source", "__name__", "le", "a-b", "a.b", "a_b", "é"
        ])
        .prop_map(str::to_owned),
        "[a-z_]{1,6}",
        "[0-9_:.-][a-z]{0,3}",
        "__[a-z]{0,3}",
        Just(String::new()),
        "\\PC{0,6}",
    ]
}

fn any_label_value() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "",
            "1",
            "\"",
            "\\",
            "\n",
            "\\n",
            "\\\"",
            "a\"b\\c\nd",
            "}",
            ",x=\"y\""
        ])
        .prop_map(str::to_owned),
        "[\"\\\\\n\r\t {},=a-zé\u{0}\u{7f}\u{85}\u{2028}\u{fffd}\u{ffff}\u{10ffff}]{0,8}",
        any::<String>().prop_map(|s| s.chars().take(12).collect()),
    ]
}

fn any_value() -> impl Strategy<Value = f64> {
    prop_oneof![
        prop::sample::select(vec![
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
            -0.0,
            0.0,
            1.0,
            -1.0,
            f64::MAX,
            f64::MIN,
            f64::MIN_POSITIVE,
            5e-324,
            1e15,
            -1e15,
            0.1,
            1e21,
        ]),
        any::<f64>(),
        -1e6..1e6_f64,
    ]
}

/// How far apart generated times may be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Span {
    /// Up to 2262-04-11 (the end of Go's nanosecond time) and 1.5 s before the epoch. The
    /// backfiller walks every two-hour block between the first and last sample, so wider
    /// spans cost it up to seconds per case.
    Backfill,
    /// Also years 1 and 9999 and chrono's first and last instants.
    Full,
}

/// Times around interesting instants, down to the nanosecond.
fn any_time(span: Span) -> impl Strategy<Value = DateTime<Utc>> {
    let mut anchors = vec![0_i64, -1_500, 1_700_000_000_000, 9_223_372_036_854];
    if span == Span::Full {
        anchors.extend([
            253_402_300_799_999, // 9999-12-31T23:59:59.999Z
            -62_135_596_800_000, // 0001-01-01T00:00:00Z
            DateTime::<Utc>::MAX_UTC.timestamp_millis(),
            DateTime::<Utc>::MIN_UTC.timestamp_millis(),
        ]);
    }
    let anchors = prop::sample::select(anchors);
    (anchors, -3_000_i64..3_000, 0_i64..1_000_000).prop_map(|(anchor, offset, nanos)| {
        Utc.timestamp_millis_opt(anchor.saturating_add(offset))
            .single()
            .unwrap_or_else(|| Utc.timestamp_millis_opt(anchor).unwrap())
            .checked_add_signed(TimeDelta::nanoseconds(nanos))
            .unwrap_or_else(|| Utc.timestamp_millis_opt(anchor).unwrap())
    })
}

fn any_kind() -> impl Strategy<Value = SeriesKind> {
    prop::sample::select(vec![
        SeriesKind::Gauge,
        SeriesKind::Counter,
        SeriesKind::Unknown,
    ])
}

fn any_unit() -> impl Strategy<Value = Option<Unit>> {
    prop_oneof![
        Just(None),
        Just(Some(Unit::Bytes)),
        Just(Some(Unit::Seconds)),
        "[a-z_ ]{0,5}".prop_map(|u| Some(Unit::Other(u))),
    ]
}

fn any_series(span: Span) -> impl Strategy<Value = Series> {
    (
        any_name(),
        any_kind(),
        any_unit(),
        prop::option::of("\\PC{0,6}|[\"\\\\\n]{1,4}|[a-z ]{0,10}"),
        prop::collection::btree_map(any_label_name(), any_label_value(), 0..4),
        prop::collection::vec((any_time(span), any_value()), 0..4),
    )
        .prop_map(|(name, kind, unit, help, labels, points)| {
            // Through the public fields, as a user or `Deserialize` can: no sanitizing.
            let mut series = Series::new("placeholder", kind);
            series.name = name;
            series.unit = unit;
            series.help = help;
            series.labels = labels;
            series.points = points
                .into_iter()
                .map(|(time, value)| Point { time, value })
                .collect();
            series
        })
}

fn runner(cases: u32) -> TestRunner {
    TestRunner::new(Config {
        cases,
        rng_seed: RngSeed::Fixed(0x6d65_7472_6963_7321),
        failure_persistence: None,
        max_shrink_iters: 256,
        ..Config::default()
    })
}

/// Both formats of generated hostile series pass Prometheus' parsers and the strict reader.
#[test]
fn hostile_series_render_to_text_prometheus_accepts() {
    let Some(promtool) = promtool() else {
        return;
    };
    let strategy = prop::collection::vec(any_series(Span::Backfill), 1..10);
    let result = runner(24).run(&strategy, |series| {
        check_all(&promtool, &series).map_err(TestCaseError::fail)
    });
    if let Err(failure) = result {
        panic!("{failure}");
    }
}

/// The Prometheus text of series with times up to chrono's limits, through
/// `promtool check metrics`, which costs little per case.
#[test]
fn hostile_series_at_any_time_pass_promtool_check_metrics() {
    let Some(promtool) = promtool() else {
        return;
    };
    let strategy = prop::collection::vec(any_series(Span::Full), 1..10);
    let result = runner(48).run(&strategy, |series| {
        let prom = render::prometheus(&series);
        check_prometheus_text(&promtool, &prom)
            .map_err(|e| TestCaseError::fail(format!("{e}\n{prom}")))
    });
    if let Err(failure) = result {
        panic!("{failure}");
    }
}

/// Many more cases through the strict reader alone, which needs no promtool.
#[test]
fn hostile_series_follow_the_family_rules() {
    let strategy = prop::collection::vec(any_series(Span::Full), 1..16);
    let result = runner(256).run(&strategy, |series| {
        let om = render::openmetrics(&series);
        let prom = render::prometheus(&series);
        read_exposition(&om, Format::OpenMetrics)
            .map_err(|e| TestCaseError::fail(format!("{e}\n{om}")))?;
        read_exposition(&prom, Format::Prometheus)
            .map_err(|e| TestCaseError::fail(format!("{e}\n{prom}")))?;
        Ok(())
    });
    if let Err(failure) = result {
        panic!("{failure}");
    }
}

/// The text with every sample's timestamp taken off: a sample line is
/// `name{labels} value timestamp`, label values may hold spaces but neither the value nor the
/// timestamp does, so the timestamp is what follows the line's last space.
fn without_timestamps(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for line in text.split_inclusive('\n') {
        let bare = line.strip_suffix('\n').unwrap_or(line);
        if bare.starts_with('#') || bare.is_empty() {
            out.push_str(line);
            continue;
        }
        out.push_str(bare.rsplit_once(' ').map_or(bare, |(sample, _)| sample));
        out.push('\n');
    }
    out
}

/// The series with only the point the `_latest` writers document as its sample: the newest
/// that can be one (not a counter point that cannot be a total), the last given of one
/// millisecond.
fn newest_only(series: &Series) -> Series {
    let counter = series.kind == SeriesKind::Counter;
    let newest = series
        .points
        .iter()
        .filter(|p| !counter || (p.value.is_finite() && p.value >= 0.0))
        .fold(None::<&Point>, |newest, p| match newest {
            Some(n) if n.time.timestamp_millis() > p.time.timestamp_millis() => Some(n),
            _ => Some(p),
        });
    let mut one = series.clone();
    one.points = newest.copied().into_iter().collect();
    one
}

/// The `_latest` writers are the full text of each series' newest point with the timestamps
/// taken off; for series of at most one point, as an exporter keeps, that is the full text
/// of the series themselves.
#[test]
fn latest_writers_are_the_newest_points_without_timestamps() {
    let strategy = prop::collection::vec(any_series(Span::Full), 1..16);
    let result = runner(512).run(&strategy, |series| {
        let newest: Vec<Series> = series.iter().map(newest_only).collect();
        let (mut om, mut prom) = (String::new(), String::new());
        render::write_openmetrics_latest(&mut om, &series);
        render::write_prometheus_latest(&mut prom, &series);
        prop_assert_eq!(&om, &without_timestamps(&render::openmetrics(&newest)));
        prop_assert_eq!(&prom, &without_timestamps(&render::prometheus(&newest)));

        let at_most_one: Vec<Series> = series
            .iter()
            .map(|s| {
                let mut s = s.clone();
                s.points.truncate(1);
                s
            })
            .collect();
        let (mut om, mut prom) = (String::new(), String::new());
        render::write_openmetrics_latest(&mut om, &at_most_one);
        render::write_prometheus_latest(&mut prom, &at_most_one);
        prop_assert_eq!(&om, &without_timestamps(&render::openmetrics(&at_most_one)));
        prop_assert_eq!(
            &prom,
            &without_timestamps(&render::prometheus(&at_most_one))
        );
        Ok(())
    });
    if let Err(failure) = result {
        panic!("{failure}");
    }
}

/// The cases once reported against the OpenMetrics renderer, through promtool.
#[test]
fn reported_defects_render_valid_text() {
    let Some(promtool) = promtool() else {
        return;
    };
    let at = |millis: i64| Utc.timestamp_millis_opt(millis).unwrap();
    let mut json_series: Series = serde_json::from_str(
        r#"{"name":"json.name with spaces","labels":{"a-b":"x"},"kind":"gauge",
            "points":[{"time":"2024-01-01T00:00:00Z","value":1.0}]}"#,
    )
    .unwrap();
    json_series.help = Some("a \"quoted\" \\ help\nline".into());
    let series = [
        Series::new("_total", SeriesKind::Counter).with_point(at(1_000), 1.0),
        Series::new("c", SeriesKind::Counter)
            .with_point(at(1_000), f64::NAN)
            .with_point(at(2_000), -1.0)
            .with_point(at(3_000), 4.0),
        Series::new("x", SeriesKind::Gauge).with_point(at(1_000), 1.0),
        Series::new("x_total", SeriesKind::Counter).with_point(at(1_000), 2.0),
        Series::new("t", SeriesKind::Gauge)
            .with_point(at(-1_500), 1.0)
            .with_point(at(-500), 2.0),
        json_series,
        Series::new("dup", SeriesKind::Gauge)
            .with_label("k", "v")
            .with_point(at(1_000), 1.0),
        Series::new("dup", SeriesKind::Gauge)
            .with_label("k", "v")
            .with_point(at(1_000), 2.0),
    ];
    if let Err(e) = check_all(&promtool, &series) {
        panic!("{e}");
    }
    let om = render::openmetrics(&series);
    assert!(om.contains("t 1 -1.500\nt 2 -0.500\n"), "{om}");
    assert!(
        om.contains("json_name_with_spaces{a_b=\"x\"} 1 1704067200\n"),
        "{om}"
    );
}

/// Snapshots of any split of the series write what the `_latest` writers write for all of
/// them in one list (families merged across snapshots, clashes and duplicate label sets
/// settled across them), and with timestamps, the full text of each series' newest point.
#[test]
fn snapshots_write_what_the_latest_writers_write() {
    let strategy = (
        prop::collection::vec(any_series(Span::Full), 0..16),
        prop::collection::vec(0_usize..16, 0..4),
    );
    let result = runner(512).run(&strategy, |(series, mut cuts)| {
        cuts.push(0);
        cuts.push(series.len());
        cuts.iter_mut().for_each(|c| *c = (*c).min(series.len()));
        cuts.sort_unstable();
        let snapshots: Vec<render::Snapshot> = cuts
            .windows(2)
            .map(|w| render::Snapshot::new(&series[w[0]..w[1]]))
            .collect();

        let (mut om, mut prom) = (String::new(), String::new());
        render::write_openmetrics_latest(&mut om, &series);
        render::write_prometheus_latest(&mut prom, &series);
        let (mut om_snap, mut prom_snap) = (String::new(), String::new());
        render::write_openmetrics_snapshots(&mut om_snap, &snapshots, false);
        render::write_prometheus_snapshots(&mut prom_snap, &snapshots, false);
        prop_assert_eq!(&om_snap, &om);
        prop_assert_eq!(&prom_snap, &prom);

        let newest: Vec<Series> = series.iter().map(newest_only).collect();
        let (mut om_snap, mut prom_snap) = (String::new(), String::new());
        render::write_openmetrics_snapshots(&mut om_snap, &snapshots, true);
        render::write_prometheus_snapshots(&mut prom_snap, &snapshots, true);
        prop_assert_eq!(&om_snap, &render::openmetrics(&newest));
        prop_assert_eq!(&prom_snap, &render::prometheus(&newest));

        let samples: usize = snapshots.iter().map(render::Snapshot::len).sum();
        prop_assert_eq!(samples >= 1, prom.lines().any(|l| !l.starts_with('#')));
        Ok(())
    });
    if let Err(failure) = result {
        panic!("{failure}");
    }
}
