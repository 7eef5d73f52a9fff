//! The scanner held to the serde path: generated bodies (every number form, any name, any
//! layout, the shapes serde reads differently or refuses), number literals at the edges,
//! and mutations and truncations of the recorded answers.
//!
//! The property, for every body: when the scanner accepts it, serde accepts it too and
//! reads the same series, bit for bit; [`decode`] succeeds exactly when serde does, with
//! serde's result; and each case finishes (a hang stops the run at once with the body
//! printed: shrinking a hang would cost a deadline per step).
//!
//! Fixed seeds and case counts keep a debug run to a few seconds and every run the same.

use std::cell::Cell;
use std::io::Write;
use std::sync::mpsc;
use std::time::Duration;

use proptest::prelude::*;
use proptest::sample::{Index, select};
use proptest::test_runner::{Config, RngSeed, TestCaseError, TestRunner};

use super::{Decoded, decode, scan, with_serde};

/// Far beyond any honest case (microseconds): only a hang reaches it.
const DEADLINE: Duration = Duration::from_secs(10);

fn runner(seed: u64) -> TestRunner {
    TestRunner::new(Config {
        cases: 512,
        failure_persistence: None,
        rng_seed: RngSeed::Fixed(seed),
        ..Config::default()
    })
}

/// A series' names, times and value bits, sorted by name: serde's map has no order, and
/// `-0.0 == 0.0` would hide a difference in sign.
type Exact = Vec<(String, Vec<(i64, Option<u64>)>)>;

fn exact(series: &Decoded) -> Exact {
    let mut exact: Exact = series
        .iter()
        .map(|(name, points)| {
            let points = points
                .iter()
                .map(|p| (p.time.timestamp_millis(), p.value.map(f64::to_bits)))
                .collect();
            (name.clone(), points)
        })
        .collect();
    exact.sort();
    exact
}

struct Outcome {
    scanned: Option<Exact>,
    serde: Result<Exact, String>,
    decoded: Result<Exact, String>,
}

/// Runs both paths on `body` in a worker thread, and stops the run if they do not finish.
fn outcome(body: &[u8]) -> Outcome {
    let (done, finished) = mpsc::channel();
    let owned = body.to_vec();
    std::thread::spawn(move || {
        let _ = done.send(Outcome {
            scanned: scan(&owned).as_ref().map(exact),
            serde: with_serde(&owned)
                .as_ref()
                .map(exact)
                .map_err(ToString::to_string),
            decoded: decode(&owned)
                .as_ref()
                .map(exact)
                .map_err(ToString::to_string),
        });
    });
    if let Ok(outcome) = finished.recv_timeout(DEADLINE) {
        return outcome;
    }
    // Past the test harness's capture, which an abort would discard.
    let _ = writeln!(
        std::io::stderr(),
        "the decoder did not finish within {DEADLINE:?} on this body: {:?}",
        String::from_utf8_lossy(body)
    );
    std::process::abort();
}

/// The property; `accepted` counts the bodies the scanner took.
fn check(body: &[u8], accepted: &Cell<usize>) -> Result<(), TestCaseError> {
    let shown = String::from_utf8_lossy(body);
    let outcome = outcome(body);
    if let Some(scanned) = &outcome.scanned {
        accepted.set(accepted.get() + 1);
        prop_assert_eq!(
            Some(scanned),
            outcome.serde.as_ref().ok(),
            "the scanner took a body serde reads otherwise: {:?} (serde: {:?})",
            shown,
            outcome.serde
        );
    }
    prop_assert_eq!(&outcome.decoded, &outcome.serde, "{:?}", shown);
    Ok(())
}

/// Runs `check` over `strategy`; returns how many bodies the scanner took.
fn run<S>(seed: u64, strategy: S) -> usize
where
    S: Strategy<Value = Vec<u8>>,
{
    let accepted = Cell::new(0);
    let result = runner(seed).run(&strategy, |body| check(&body, &accepted));
    if let Err(failure) = result {
        panic!("{failure}");
    }
    accepted.get()
}

// ---- generators ----

/// JSON whitespace between tokens: mostly none or one space, sometimes anything.
fn whitespace() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => Just(String::new()),
        3 => Just(" ".to_owned()),
        1 => "[ \t\r\n]{1,4}",
    ]
}

/// A JSON string for `text`: each character as is (where JSON allows) or escaped in one of
/// the ways JSON allows; occasionally an escape JSON does not allow.
fn json_string(text: &str, styles: &[u8]) -> String {
    let mut out = String::from("\"");
    for (at, c) in text.chars().enumerate() {
        let style = styles.get(at % styles.len().max(1)).copied().unwrap_or(0);
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if u32::from(c) < 0x20 || style % 4 == 1 => {
                let mut units = [0_u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    out.push_str(&format!("\\u{unit:04x}"));
                }
            }
            '/' if style % 4 == 2 => out.push_str("\\/"),
            '\n' if style % 4 == 3 => out.push_str("\\n"),
            c if style == 255 => {
                // Invalid: an unknown escape.
                out.push_str("\\q");
                out.push(c);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Metric names: realistic ones, and anything Unicode.
fn name() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => "(stores|conversations)\\.[a-z0-9_-]{1,12}\\.[a-z_]{1,12}\\.(sum|avg|max|min|last)",
        2 => any::<String>().prop_map(|s| s.chars().take(12).collect()),
        1 => "[\"\\\\/\u{0}-\u{1f}a\u{e9}\u{1f600}\u{ffff}]{0,6}",
    ]
}

/// A JSON number literal, valid or (sometimes) not: every form RFC 8259 has, the forms it
/// does not (leading zeros, `+`, empty parts), huge and tiny exponents, long mantissas.
fn number() -> impl Strategy<Value = String> {
    let sign = prop_oneof![4 => Just(""), 3 => Just("-"), 1 => Just("+")];
    let integer = prop_oneof![
        10 => valid_integer(),
        1 => "0[0-9]{1,3}",
        1 => Just(String::new()),
    ];
    let fraction = prop_oneof![10 => valid_fraction(), 1 => Just(".".to_owned())];
    let exponent = prop_oneof![10 => valid_exponent(), 1 => "[eE][+-]?"];
    prop_oneof![
        6 => (sign, integer, fraction, exponent).prop_map(|(s, i, f, e)| format!("{s}{i}{f}{e}")),
        4 => valid_number(),
        1 => any::<i64>().prop_map(|i| i.to_string()),
        2 => select(EDGE_NUMBERS).prop_map(str::to_owned),
    ]
}

/// A literal RFC 8259 allows (which may still be too large for a `f64`).
fn valid_number() -> impl Strategy<Value = String> {
    let sign = prop_oneof![Just(""), Just("-")];
    prop_oneof![
        4 => (sign, valid_integer(), valid_fraction(), valid_exponent())
            .prop_map(|(s, i, f, e)| format!("{s}{i}{f}{e}")),
        // What serializers write: Rust's shortest form and exponent form, of any bits
        // (subnormals, the extremes).
        2 => any::<u64>()
            .prop_map(f64::from_bits)
            .prop_filter("finite", |v| v.is_finite())
            .prop_map(|v| format!("{v:?}")),
        1 => any::<u64>()
            .prop_map(f64::from_bits)
            .prop_filter("finite", |v| v.is_finite())
            .prop_map(|v| format!("{v:e}")),
    ]
}

fn valid_integer() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => Just("0".to_owned()),
        6 => "[1-9][0-9]{0,20}",
        1 => "[1-9][0-9]{300,330}",
    ]
}

fn valid_fraction() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => Just(String::new()),
        5 => "\\.[0-9]{1,20}",
        1 => "\\.[0-9]{20,40}",
    ]
}

fn valid_exponent() -> impl Strategy<Value = String> {
    prop_oneof![
        5 => Just(String::new()),
        4 => "[eE][+-]?[0-9]{1,3}",
        1 => "[eE][+-]?0{0,3}[0-9]{4,30}",
    ]
}

/// Number literals at the edges of `f64` and of the parsers' fast paths.
const EDGE_NUMBERS: &[&str] = &[
    "0",
    "-0",
    "0.0",
    "-0.0",
    "0e0",
    "-0e-0",
    "0e-9999999999999999999",
    "0e9999999999999999999",
    "-0.000e-99999999999999999999999",
    "1e-9999999999999999999",
    "1e9999999999999999999",
    "30e-23",
    "3.0e-22",
    "70e-23",
    "1.50e-21",
    "1e22",
    "1e23",
    "9007199254740992",
    "9007199254740993",
    "9007199254740993.0000000001",
    "18446744073709551615",
    "18446744073709551616",
    "-9223372036854775808",
    "-9223372036854775809",
    "123456789012345678901234567890",
    "0.1",
    "0.30000000000000004",
    "2.2250738585072011e-308",
    "2.2250738585072012e-308",
    "2.2250738585072014e-308",
    "4.9406564584124654e-324",
    "2.4703282292062327e-324",
    "2.4703282292062328e-324",
    "5e-324",
    "1e-400",
    "1.7976931348623157e308",
    "1.7976931348623158e308",
    "1.7976931348623159e308",
    "179769313486231580793728971405303415079934132710037826936173778980444968292764750946649017977587207096330286416692887910946555547851940402630657488671505820681908902000708383676273854845817711531764475730270069855571366959622842914819860834936475292719074168444365510704342711559699508093042880177904174497791",
    "1e400",
    "-1e400",
    "Infinity",
    "-Infinity",
    "NaN",
    "1.",
    ".5",
    "+1",
    "01",
    "-01",
    "1e",
    "1e+",
    "--1",
    "1.5.5",
    "0x10",
];

/// A timestamp literal: mostly what servers send, and every edge `chrono` and the scanner
/// have.
fn millis() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => (1_600_000_000_000_i64..1_900_000_000_000).prop_map(|m| m.to_string()),
        2 => (0_i64..100_000_000).prop_map(|m| m.to_string()),
        1 => any::<i64>().prop_map(|m| m.to_string()),
        1 => any::<u64>().prop_map(|m| m.to_string()),
        1 => select(&[
            "0", "-0", "01", "1.0", "1e3", "-1", "253402300799999", "8210266876799999",
            "8210266876800000", "999999999999999999", "1000000000000000000",
            "9223372036854775807", "9223372036854775808", "99999999999999999999", "\"1\"",
            "null",
        ][..])
        .prop_map(str::to_owned),
    ]
}

/// A value: a number (any form) or `null`, sometimes something else.
fn value() -> impl Strategy<Value = String> {
    prop_oneof![
        8 => number(),
        2 => Just("null".to_owned()),
        1 => select(&["\"1\"", "true", "[]", "{}", "nul", "nullx"][..]).prop_map(str::to_owned),
    ]
}

/// One point in one of the layouts a body can have; `clean`: only what servers send
/// (either field order, any whitespace, any valid number).
fn point(clean: bool) -> impl Strategy<Value = String> {
    let (x, y, shapes): (
        BoxedStrategy<String>,
        BoxedStrategy<String>,
        BoxedStrategy<u8>,
    ) = if clean {
        (
            prop_oneof![
                4 => (1_600_000_000_000_i64..1_900_000_000_000).prop_map(|m| m.to_string()),
                1 => (0_i64..100_000_000).prop_map(|m| m.to_string()),
            ]
            .boxed(),
            prop_oneof![8 => valid_number(), 2 => Just("null".to_owned())].boxed(),
            prop_oneof![Just(0_u8), Just(15_u8)].boxed(),
        )
    } else {
        (
            millis().boxed(),
            value().boxed(),
            prop_oneof![Just(15_u8).boxed(), (0_u8..16).boxed()].boxed(),
        )
    };
    (x, y, shapes, proptest::collection::vec(whitespace(), 8)).prop_map(|(x, y, shape, ws)| {
        let w = |i: usize| ws[i % ws.len()].as_str();
        let field = |key: &str, value: &str, i: usize| {
            format!(
                "{}\"{key}\"{}:{}{value}{}",
                w(i),
                w(i + 1),
                w(i + 2),
                w(i + 3)
            )
        };
        let fields = match shape {
            0 => vec![field("y", &y, 0), field("x", &x, 4)],
            1 => vec![field("x", &x, 0)],
            2 => vec![field("y", &y, 0)],
            3 => vec![
                field("x", &x, 0),
                field("y", &y, 4),
                field("z", "[1, {}]", 1),
            ],
            4 => vec![field("x", &x, 0), field("y", &y, 4), field("x", &x, 2)],
            5 => return format!("[{x},{y}]"),
            6 => vec![format!("\"\\u0078\":{x}"), field("y", &y, 4)],
            7 => vec![],
            _ => vec![field("x", &x, 0), field("y", &y, 4)],
        };
        format!("{{{}}}", fields.join(","))
    })
}

/// A whole body: a few series of a few points, in any layout; half of them only what
/// servers send, the others with anything a point can have.
fn body() -> impl Strategy<Value = Vec<u8>> {
    any::<bool>().prop_flat_map(body_of)
}

fn body_of(clean: bool) -> impl Strategy<Value = Vec<u8>> {
    let series = (
        name(),
        proptest::collection::vec(any::<u8>(), 1..4),
        proptest::collection::vec(point(clean), 0..12),
        whitespace(),
    );
    (
        proptest::collection::vec(series, 0..4),
        whitespace(),
        0_u8..24,
    )
        .prop_map(|(series, ws, shape)| {
            let members: Vec<String> = series
                .iter()
                .map(|(name, styles, points, w)| {
                    format!(
                        "{w}{}{w}:{w}[{w}{}{w}]{w}",
                        json_string(name, styles),
                        points.join(&format!(",{w}"))
                    )
                })
                .collect();
            let mut body = format!("{ws}{{{}}}{ws}", members.join(","));
            match shape {
                // A repeated name.
                0 if !members.is_empty() => {
                    body = format!("{{{},{}}}", members.join(","), members[0]);
                }
                1 => body.push_str(" x"),
                2 => body = format!("\u{feff}{body}"),
                3 => body = format!("[{body}]"),
                _ => {}
            }
            body.into_bytes()
        })
}

/// What serializers write: `serde_json` of arbitrary series (any finite bits), compact and
/// pretty.
fn serialized() -> impl Strategy<Value = Vec<u8>> {
    let points = proptest::collection::vec(
        (
            0_i64..8_210_266_876_799_999,
            proptest::option::of(any::<u64>().prop_map(f64::from_bits)),
        ),
        0..20,
    );
    (
        proptest::collection::vec((any::<String>(), points), 0..4),
        any::<bool>(),
    )
        .prop_map(|(series, pretty)| {
            let object: serde_json::Map<String, serde_json::Value> = series
                .into_iter()
                .map(|(name, points)| {
                    let points = points
                        .into_iter()
                        .map(|(x, y)| {
                            // Non-finite values have no JSON form: `null`, as serde_json writes.
                            serde_json::json!({ "x": x, "y": y.filter(|v| v.is_finite()) })
                        })
                        .collect();
                    (name, serde_json::Value::Array(points))
                })
                .collect();
            let value = serde_json::Value::Object(object);
            if pretty {
                serde_json::to_vec_pretty(&value).unwrap()
            } else {
                serde_json::to_vec(&value).unwrap()
            }
        })
}

/// The recorded `GET` answers, compact and pretty.
fn recorded() -> Vec<Vec<u8>> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let mut bodies = Vec::new();
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .collect();
    entries.sort();
    for path in entries {
        let fixture: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        let body = &fixture["response"]["body"];
        if fixture["request"]["method"] == "GET"
            && fixture["response"]["status"] == 200
            && body.is_object()
        {
            bodies.push(serde_json::to_vec(body).unwrap());
            bodies.push(serde_json::to_vec_pretty(body).unwrap());
        }
    }
    bodies
}

/// A recorded answer, mutated a few times: bytes deleted, inserted, replaced, a span
/// repeated, the body cut short.
fn mutated(recorded: Vec<Vec<u8>>) -> impl Strategy<Value = Vec<u8>> {
    let bytes = select(&b"0123456789-+.eE\"\\{}[],: \nnulxy\x00\xff\xc3"[..]);
    let mutation = (0_u8..5, any::<Index>(), any::<Index>(), bytes);
    (select(recorded), proptest::collection::vec(mutation, 1..4)).prop_map(
        |(mut body, mutations)| {
            for (kind, at, other, byte) in mutations {
                if body.is_empty() {
                    break;
                }
                let at = at.index(body.len());
                match kind {
                    0 => {
                        body.remove(at);
                    }
                    1 => body.insert(at, byte),
                    2 => body[at] = byte,
                    3 => {
                        let end = at + other.index(body.len() - at + 1).min(16);
                        let span = body[at..end].to_vec();
                        body.splice(at..at, span);
                    }
                    _ => body.truncate(at),
                }
            }
            body
        },
    )
}

// ---- the properties ----

#[test]
fn generated_bodies_decode_as_serde_decodes_them() {
    let accepted = run(0x5eed_0001, body());
    // The generator is not mostly garbage: the scanner's path is the one exercised.
    assert!(
        accepted > 150,
        "the scanner took only {accepted} of 512 bodies"
    );
}

#[test]
fn serialized_bodies_decode_as_serde_decodes_them() {
    let accepted = run(0x5eed_0002, serialized());
    // Every one is valid and in the servers' shape, except repeated names and a few
    // exotic names: nearly all must take the fast path.
    assert!(
        accepted > 450,
        "the scanner took only {accepted} of 512 bodies"
    );
}

#[test]
fn number_literals_decode_as_serde_decodes_them() {
    let bodies = (number(), millis(), any::<bool>()).prop_map(|(y, x, spaced)| {
        let space = if spaced { " " } else { "" };
        format!(r#"{{"stores.default.x.sum":[{{"x":{space}{x},{space}"y":{space}{y}}}]}}"#)
            .into_bytes()
    });
    let accepted = run(0x5eed_0003, bodies);
    assert!(
        accepted > 200,
        "the scanner took only {accepted} of 512 bodies"
    );
}

#[test]
fn every_edge_number_decodes_as_serde_decodes_it() {
    let accepted = Cell::new(0);
    for number in EDGE_NUMBERS {
        for layout in [
            format!(r#"{{"a.sum":[{{"x":1,"y":{number}}}]}}"#),
            format!(r#"{{"a.sum": [{{"y": {number}, "x": 1}}]}}"#),
            format!(r#"{{"a.sum":[{{"x":1,"y":{number}"#),
        ] {
            check(layout.as_bytes(), &accepted).unwrap();
        }
    }
    assert!(accepted.get() > EDGE_NUMBERS.len() / 2);
}

#[test]
fn mutated_recordings_decode_as_serde_decodes_them() {
    let recorded = recorded();
    assert!(
        recorded.len() >= 20,
        "only {} recorded answers",
        recorded.len()
    );
    run(0x5eed_0004, mutated(recorded.clone()));
    // Every cut of every recording.
    let accepted = Cell::new(0);
    for body in &recorded {
        for end in 0..=body.len() {
            check(&body[..end], &accepted).unwrap();
        }
    }
    assert_eq!(
        accepted.get(),
        recorded.len(),
        "only whole bodies are valid"
    );
}
