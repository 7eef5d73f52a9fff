//! The `GET /metrics/transfer` scanner held to the serde path, and both held to serde_json's
//! own `BTreeMap<String, u64>`, on generated bodies (ids with escapes and any Unicode,
//! repeated ids, whitespace everywhere, other fields around, number literals at the edges)
//! and on mutations and truncations of the recorded fixtures: the same outcome, the same
//! values through every accessor, and every case done well within a deadline.
//!
//! Fixed seed, bounded case counts, no failure files: a debug run takes seconds.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use metrics_core::Result;
use outline_client::{TransferMetrics, transfer_decoders};
use proptest::prelude::*;
use proptest::sample::{Index, select};
use proptest::test_runner::{Config, RngSeed, TestCaseError, TestRunner};
use serde_json::Value;

/// Far beyond what any case needs even in a debug build: only a hang trips it.
const DEADLINE: Duration = Duration::from_secs(30);

/// serde_json's own reading of the shape: the last of a repeated id wins, counts are `u64`.
#[derive(serde::Deserialize)]
struct Reference {
    #[serde(rename = "bytesTransferredByUserId")]
    map: BTreeMap<String, u64>,
}

/// Every accessor of `metrics` against the map serde_json read.
fn check_accessors(
    metrics: &TransferMetrics,
    map: &BTreeMap<String, u64>,
) -> std::result::Result<(), TestCaseError> {
    prop_assert_eq!(metrics.len(), map.len());
    prop_assert_eq!(metrics.is_empty(), map.is_empty());
    prop_assert_eq!(&metrics.to_map(), map);
    let total = map
        .values()
        .fold(0u64, |sum, bytes| sum.saturating_add(*bytes));
    prop_assert_eq!(metrics.total(), total);
    let listed: Vec<(&str, u64)> = metrics.iter().collect();
    prop_assert_eq!(metrics.iter().len(), listed.len());
    prop_assert_eq!(listed.len(), map.len(), "an id listed twice");
    for (id, bytes) in &listed {
        prop_assert_eq!(map.get(*id), Some(bytes));
    }
    // `get` is a linear scan: a sample of the ids keeps a large body's check linear too.
    let step = listed.len() / 256 + 1;
    for (id, bytes) in listed.iter().step_by(step) {
        prop_assert_eq!(metrics.get(id), Some(*bytes));
        prop_assert_eq!(metrics.bytes(id), *bytes);
    }
    let absent = "\u{0}not an id";
    prop_assert_eq!(metrics.get(absent), None);
    prop_assert_eq!(metrics.bytes(absent), 0);
    let rebuilt: TransferMetrics = listed.iter().copied().collect();
    prop_assert_eq!(&rebuilt, metrics);
    let json = serde_json::to_string(metrics).map_err(|e| TestCaseError::fail(e.to_string()))?;
    let reread: TransferMetrics =
        serde_json::from_str(&json).map_err(|e| TestCaseError::fail(e.to_string()))?;
    prop_assert_eq!(&reread, metrics);
    let debug = format!("{metrics:?}");
    let expected_debug = format!("{:?}", listed.iter().copied().collect::<DebugMap<'_>>());
    prop_assert_eq!(debug, expected_debug);
    Ok(())
}

/// `{id: bytes, …}` in listing order, formatted as a map.
struct DebugMap<'a>(Vec<(&'a str, u64)>);

impl<'a> FromIterator<(&'a str, u64)> for DebugMap<'a> {
    fn from_iter<I: IntoIterator<Item = (&'a str, u64)>>(iter: I) -> Self {
        Self(iter.into_iter().collect())
    }
}

impl Debug for DebugMap<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map().entries(self.0.iter().copied()).finish()
    }
}

/// The property: the scanner, `from_json` and the serde path agree with each other and with
/// serde_json's map; `order`, when known, is the listing expected on success.
fn check(body: &[u8], order: Option<&[(String, u64)]>) -> std::result::Result<(), TestCaseError> {
    let decoded: Result<TransferMetrics> = TransferMetrics::from_json(body);
    let via_serde = transfer_decoders::serde(body);
    let reference = serde_json::from_slice::<Reference>(body).map(|r| r.map);
    prop_assert_eq!(
        via_serde.is_ok(),
        reference.is_ok(),
        "serde path {:?}, serde_json {:?}",
        via_serde.as_ref().err(),
        reference.as_ref().err()
    );
    match (&decoded, &via_serde) {
        (Ok(fast), Ok(slow)) => prop_assert_eq!(fast, slow),
        (Err(fast), Err(slow)) => prop_assert_eq!(fast.to_string(), slow.to_string()),
        _ => prop_assert!(
            false,
            "from_json {:?}, serde path {:?}",
            decoded.as_ref().err(),
            via_serde.as_ref().err()
        ),
    }
    if let Some(scanned) = transfer_decoders::scan(body) {
        prop_assert_eq!(
            Some(&scanned),
            via_serde.as_ref().ok(),
            "the scanner disagrees"
        );
    }
    if let (Ok(metrics), Ok(map)) = (&decoded, &reference) {
        check_accessors(metrics, map)?;
        if let Some(order) = order {
            let listed: Vec<(String, u64)> =
                metrics.iter().map(|(id, b)| (id.to_owned(), b)).collect();
            prop_assert_eq!(listed.as_slice(), order);
        }
    }
    Ok(())
}

/// Runs `property` over the strategy `make` builds, with a fixed seed, failing if one case
/// outlives [`DEADLINE`] (the runner is left behind on its thread then).
fn run<S, F>(
    name: &'static str,
    cases: u32,
    make: F,
    property: fn(&S::Value) -> std::result::Result<(), TestCaseError>,
) where
    F: FnOnce() -> S + Send + 'static,
    S: Strategy + 'static,
    S::Value: Debug + 'static,
{
    let current: Arc<Mutex<Option<(Instant, String)>>> = Arc::default();
    let watched = Arc::clone(&current);
    let (done, finished) = mpsc::channel();
    thread::spawn(move || {
        let strategy = make();
        let config = Config {
            cases,
            rng_seed: RngSeed::Fixed(0x0075_7446_6c69_6e65),
            failure_persistence: None,
            max_shrink_iters: 4096,
            ..Config::default()
        };
        let outcome = TestRunner::new(config).run(&strategy, |value| {
            let mut shown = format!("{value:?}");
            let mut cut = shown.len().min(2000);
            while !shown.is_char_boundary(cut) {
                cut -= 1;
            }
            shown.truncate(cut);
            *watched.lock().unwrap_or_else(PoisonError::into_inner) = Some((Instant::now(), shown));
            let result = property(&value);
            *watched.lock().unwrap_or_else(PoisonError::into_inner) = None;
            result
        });
        let _ = done.send(outcome.map_err(|e| e.to_string()));
    });
    loop {
        match finished.recv_timeout(Duration::from_millis(100)) {
            Ok(Ok(())) => return,
            Ok(Err(failure)) => panic!("{name}: {failure}"),
            Err(RecvTimeoutError::Disconnected) => panic!("{name}: the runner died"),
            Err(RecvTimeoutError::Timeout) => {
                let guard = current.lock().unwrap_or_else(PoisonError::into_inner);
                if let Some((started, case)) = guard.as_ref()
                    && started.elapsed() > DEADLINE
                {
                    panic!("{name}: a case ran for over {DEADLINE:?}: {case}");
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// Generated bodies

/// One `"id": count` pair as it is decoded, and how the body spells it.
#[derive(Clone, Debug)]
struct Pair {
    id: String,
    spelled_id: String,
    bytes: u64,
}

fn id() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => (0u32..64).prop_map(|n| n.to_string()),
        2 => any::<u32>().prop_map(|n| n.to_string()),
        1 => Just(String::new()),
        1 => "0[0-9]{1,3}",
        1 => "[1-9][0-9]{17,34}",
        2 => "[a-z-]{1,10}",
        2 => proptest::collection::vec(any::<char>(), 0..6).prop_map(String::from_iter),
        2 => select(&[
            "\"", "\\", "/", "\u{0}", "\u{1f}", "\u{7f}", "é", "ключ", "😀", "\u{2028}",
            "\u{fffd}", "\u{ffff}", ":", ",", "}", "{", "bytesTransferredByUserId", "a\"b:c",
        ][..]).prop_map(str::to_owned),
    ]
}

/// `id` as a JSON string literal; `style` picks, per character, the plain form (where JSON
/// allows it), a `\uXXXX` escape (a surrogate pair above the BMP, either hex case) or a
/// short escape.
fn spell(id: &str, style: u64) -> String {
    let mut out = String::from("\"");
    for (i, ch) in id.chars().enumerate() {
        let pick = (style >> ((2 * i) % 64)) & 3;
        let short = match ch {
            '"' => Some("\\\""),
            '\\' => Some("\\\\"),
            '/' if pick == 1 => Some("\\/"),
            '\n' => Some("\\n"),
            '\t' => Some("\\t"),
            '\r' => Some("\\r"),
            '\u{8}' => Some("\\b"),
            '\u{c}' => Some("\\f"),
            _ => None,
        };
        let must_escape = ch < ' ' || ch == '"' || ch == '\\';
        match (pick, short) {
            (0, _) if !must_escape => out.push(ch),
            (1, Some(short)) => out.push_str(short),
            _ => {
                let mut units = [0u16; 2];
                for unit in ch.encode_utf16(&mut units) {
                    if pick == 3 {
                        out.push_str(&format!("\\u{unit:04X}"));
                    } else {
                        out.push_str(&format!("\\u{unit:04x}"));
                    }
                }
            }
        }
    }
    out.push('"');
    out
}

fn pair() -> impl Strategy<Value = Pair> {
    (
        id(),
        any::<u64>(),
        prop_oneof![
            3 => 0u64..1000,
            3 => any::<u64>(),
            1 => select(&[0, 1, 9, 10, u64::MAX, u64::MAX - 1, 10_000_000_000_000_000_000, 1 << 53, (1 << 53) + 1][..]),
        ],
    )
        .prop_map(|(id, style, bytes)| Pair {
            spelled_id: spell(&id, style),
            id,
            bytes,
        })
}

/// JSON whitespace between tokens, often none.
fn gaps() -> impl Strategy<Value = Vec<String>> {
    proptest::collection::vec(
        prop_oneof![6 => Just(String::new()), 1 => "[ \t\n\r]{1,3}"],
        64,
    )
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        ".{0,6}".prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            proptest::collection::vec(("[a-z]{0,4}", inner), 0..4)
                .prop_map(|fields| Value::Object(fields.into_iter().collect())),
        ]
    })
}

/// Other top-level fields: names (once in a while the transfer field itself) and values.
fn other_fields() -> impl Strategy<Value = Vec<(String, String)>> {
    proptest::collection::vec(
        (
            prop_oneof![
                9 => "[a-zA-Z]{0,12}",
                1 => Just("bytesTransferredByUserId".to_owned()),
            ],
            json_value(),
            any::<bool>(),
        )
            .prop_map(|(name, value, pretty)| {
                let text = if pretty {
                    serde_json::to_string_pretty(&value)
                } else {
                    serde_json::to_string(&value)
                };
                (name, text.unwrap_or_default())
            }),
        0..3,
    )
}

#[derive(Clone, Debug)]
struct Body {
    text: String,
    /// The listing a successful decode must give: first positions, last values.
    order: Vec<(String, u64)>,
}

fn assemble(
    pairs: &[Pair],
    literals: &BTreeMap<usize, String>,
    before: &[(String, String)],
    after: &[(String, String)],
    gaps: &[String],
) -> Body {
    let mut gap = gaps.iter().cycle();
    let mut text = String::new();
    let mut push = |text: &mut String, token: &str| {
        text.push_str(gap.next().map_or("", String::as_str));
        text.push_str(token);
    };
    push(&mut text, "{");
    for (name, value) in before {
        push(&mut text, &serde_json::to_string(name).unwrap_or_default());
        push(&mut text, ":");
        push(&mut text, value);
        push(&mut text, ",");
    }
    push(&mut text, "\"bytesTransferredByUserId\"");
    push(&mut text, ":");
    push(&mut text, "{");
    for (i, pair) in pairs.iter().enumerate() {
        if i > 0 {
            push(&mut text, ",");
        }
        push(&mut text, &pair.spelled_id);
        push(&mut text, ":");
        let canonical = pair.bytes.to_string();
        push(&mut text, literals.get(&i).unwrap_or(&canonical));
    }
    push(&mut text, "}");
    for (name, value) in after {
        push(&mut text, ",");
        push(&mut text, &serde_json::to_string(name).unwrap_or_default());
        push(&mut text, ":");
        push(&mut text, value);
    }
    push(&mut text, "}");
    push(&mut text, "");

    // Checked only when the body decodes, so every literal is then a plain integer.
    let mut order: Vec<(String, u64)> = Vec::new();
    for (i, pair) in pairs.iter().enumerate() {
        let bytes = literals
            .get(&i)
            .and_then(|literal| literal.parse().ok())
            .unwrap_or(pair.bytes);
        match order.iter_mut().find(|(id, _)| *id == pair.id) {
            Some(entry) => entry.1 = bytes,
            None => order.push((pair.id.clone(), bytes)),
        }
    }
    Body { text, order }
}

/// Bodies of the server's shape, with repeats, escapes, whitespace and, sometimes, other
/// fields.
fn valid_body() -> impl Strategy<Value = Body> {
    (
        proptest::collection::vec(pair(), 0..40),
        prop_oneof![3 => Just(Vec::new()), 1 => other_fields()],
        prop_oneof![3 => Just(Vec::new()), 1 => other_fields()],
        gaps(),
    )
        .prop_map(|(pairs, before, after, gaps)| {
            assemble(&pairs, &BTreeMap::new(), &before, &after, &gaps)
        })
}

/// Number literals around the edges of what `u64` reads.
fn literal() -> impl Strategy<Value = String> {
    prop_oneof![
        2 => select(&[
            "0", "-0", "00", "01", "-1", "1.0", "1.5", "0.0", "-0.0", "1e0", "1E3", "1e-400",
            "1e400", "1.0000000000000001", "4.9999999999999999", "18446744073709551615",
            "18446744073709551616", "18446744073709551615.0", "184467440737095516150",
            "99999999999999999999", "1e19", "1.8446744073709552e19", "+1", ".5", "1.", "1e",
            "1e+", "0x10", "Infinity", "NaN", "null", "true", "\"1\"", "[]", "{}", "1 2",
            "9007199254740993", "-9223372036854775808", "-9223372036854775809",
        ][..]).prop_map(str::to_owned),
        3 => ("-?", "[0-9]{1,24}", "(\\.[0-9]{0,20})?", "([eE][+-]?[0-9]{0,4})?")
            .prop_map(|(sign, digits, fraction, exponent)| format!("{sign}{digits}{fraction}{exponent}")),
        1 => (1usize..4000, select(&["1", "9", "0"][..]))
            .prop_map(|(n, digit)| digit.repeat(n)),
        1 => "[-+.eE0-9]{1,8}",
    ]
}

/// Bodies where some counts are spelled by [`literal`].
fn literal_body() -> impl Strategy<Value = Body> {
    (
        proptest::collection::vec(pair(), 1..6),
        proptest::collection::btree_map(0usize..6, literal(), 1..3),
        gaps(),
    )
        .prop_map(|(pairs, literals, gaps)| assemble(&pairs, &literals, &[], &[], &gaps))
}

// ---------------------------------------------------------------------------------------
// Mutated fixtures and bodies

/// The recorded response bodies, compact and pretty: the transfer one first, then the others,
/// which must fail alike on every path.
fn fixture_bodies() -> Vec<String> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let mut names: Vec<_> = std::fs::read_dir(&dir)
        .expect("the fixtures directory")
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .collect();
    names.sort_by_key(|path| (!path.ends_with("metrics_transfer_ok.json"), path.clone()));
    let mut bodies = Vec::new();
    for path in names {
        let text = std::fs::read_to_string(&path).expect("a fixture");
        let recorded: Value = serde_json::from_str(&text).expect("a fixture is JSON");
        let body = &recorded["response"]["body"];
        if body.is_null() {
            continue;
        }
        bodies.push(serde_json::to_string(body).expect("a body"));
        bodies.push(serde_json::to_string_pretty(body).expect("a body"));
    }
    bodies
}

#[derive(Clone, Debug)]
enum Mutation {
    Truncate(Index),
    Delete(Index, usize),
    Insert(Index, Vec<u8>),
    Replace(Index, u8),
    Duplicate(Index, usize),
}

fn interesting_bytes() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(
        prop_oneof![
            3 => select(&b"\"\\:,{}[]-+.eE019 \t\n\rnu/"[..]),
            1 => select(&[0x00, 0x08, 0x0c, 0x1f, 0x7f, 0x80, 0xa0, 0xbf, 0xc0, 0xc3, 0xe2, 0xed, 0xf0, 0xf4, 0xf8, 0xff][..]),
            1 => any::<u8>(),
        ],
        1..4,
    )
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        1 => any::<Index>().prop_map(Mutation::Truncate),
        2 => (any::<Index>(), 1usize..4).prop_map(|(at, n)| Mutation::Delete(at, n)),
        3 => (any::<Index>(), interesting_bytes()).prop_map(|(at, b)| Mutation::Insert(at, b)),
        2 => (any::<Index>(), any::<u8>()).prop_map(|(at, b)| Mutation::Replace(at, b)),
        1 => (any::<Index>(), 1usize..16).prop_map(|(at, n)| Mutation::Duplicate(at, n)),
    ]
}

fn mutate(body: &mut Vec<u8>, mutation: &Mutation) {
    let len = body.len();
    let at = |index: &Index| index.index(len + 1);
    match mutation {
        Mutation::Truncate(index) => body.truncate(at(index)),
        Mutation::Delete(index, n) => {
            let start = at(index).min(len);
            body.drain(start..(start + n).min(len));
        }
        Mutation::Insert(index, bytes) => {
            let start = at(index);
            body.splice(start..start, bytes.iter().copied());
        }
        Mutation::Replace(index, byte) => {
            if len > 0 {
                body[index.index(len)] = *byte;
            }
        }
        Mutation::Duplicate(index, n) => {
            let start = at(index).min(len);
            let copy = body[start..(start + n).min(len)].to_vec();
            body.splice(start..start, copy);
        }
    }
}

fn mutated_body() -> impl Strategy<Value = Vec<u8>> {
    let fixtures = fixture_bodies();
    let base = prop_oneof![
        3 => (0..fixtures.len()).prop_map(move |i| {
            // The transfer fixture most of the time: its mutations reach the scanner.
            fixtures[if i % 3 == 0 { i } else { i % 2 }].clone()
        }),
        2 => valid_body().prop_map(|body| body.text),
        1 => literal_body().prop_map(|body| body.text),
    ];
    (base, proptest::collection::vec(mutation(), 1..4)).prop_map(|(text, mutations)| {
        let mut bytes = text.into_bytes();
        for mutation in &mutations {
            mutate(&mut bytes, mutation);
        }
        bytes
    })
}

// ---------------------------------------------------------------------------------------

#[test]
fn generated_bodies_decode_alike_on_every_path() {
    run("generated bodies", 800, valid_body, |body| {
        check(body.text.as_bytes(), Some(&body.order))
    });
}

#[test]
fn count_literals_decode_alike_on_every_path() {
    run("count literals", 800, literal_body, |body| {
        check(body.text.as_bytes(), Some(&body.order))
    });
}

#[test]
fn mutated_fixtures_and_bodies_decode_alike_on_every_path() {
    run("mutations", 1500, mutated_body, |body| check(body, None));
}

/// The scanner reads the server's own bodies, not only the serde path: a generated body of
/// that shape (no other field) is taken by the scanner whenever serde accepts it.
#[test]
fn the_scanner_takes_every_body_of_the_server_shape() {
    run(
        "server shape",
        500,
        || {
            (proptest::collection::vec(pair(), 0..40), gaps())
                .prop_map(|(pairs, gaps)| assemble(&pairs, &BTreeMap::new(), &[], &[], &gaps))
        },
        |body| {
            let bytes = body.text.as_bytes();
            prop_assert!(
                transfer_decoders::scan(bytes).is_some()
                    || transfer_decoders::serde(bytes).is_err(),
                "the scanner left a body of the server's shape to serde"
            );
            check(bytes, Some(&body.order))
        },
    );
}

/// Large hostile bodies, once each: every one decodes (or fails) alike on every path, well
/// within the deadline.
#[test]
fn large_hostile_bodies_finish_alike() {
    let field = |inner: &str| format!(r#"{{"bytesTransferredByUserId":{{{inner}}}}}"#);
    let many = |f: &dyn Fn(usize) -> String| (0..20_000).map(f).collect::<Vec<_>>().join(",");
    let bodies: Vec<(&str, String)> = vec![
        (
            "an id of colons",
            field(&format!(r#""{}":1"#, ":".repeat(1 << 20))),
        ),
        (
            "an id of escapes",
            field(&format!(r#""{}":1"#, "\\\\".repeat(1 << 18))),
        ),
        (
            "an unclosed escaped id",
            field(&format!(r#""{}"#, "\\\"".repeat(1 << 18))),
        ),
        (
            "a long count",
            field(&format!(r#""1":{}"#, "9".repeat(1 << 18))),
        ),
        (
            "a long fraction",
            field(&format!(r#""1":1.{}"#, "0".repeat(1 << 18))),
        ),
        ("one id repeated", field(&many(&|i| format!(r#""1":{i}"#)))),
        (
            "ids descending",
            field(&many(&|i| format!(r#""{}":{i}"#, 20_000 - i))),
        ),
        (
            "ids repeated out of order",
            field(&many(&|i| format!(r#""{}":{i}"#, i % 97 * 13 % 89))),
        ),
        (
            "named ids repeated",
            field(&many(&|i| format!(r#""k{}":{i}"#, i % 500))),
        ),
        (
            "whitespace",
            format!(
                r#"{{{}"bytesTransferredByUserId":{{}}}}"#,
                " ".repeat(1 << 20)
            ),
        ),
        (
            "deep nesting",
            format!(
                r#"{{"x":{}1{},"bytesTransferredByUserId":{{}}}}"#,
                "[".repeat(1 << 16),
                "]".repeat(1 << 16)
            ),
        ),
    ];
    for (name, body) in bodies {
        let started = Instant::now();
        if let Err(failure) = check(body.as_bytes(), None) {
            panic!("{name}: {failure}");
        }
        assert!(
            started.elapsed() < DEADLINE,
            "{name} took {:?}",
            started.elapsed()
        );
    }
}
