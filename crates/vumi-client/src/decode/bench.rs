//! How fast the scanner is, against the serde path and a plain pass over the bytes: a
//! measurement to read, not a test that can fail on speed. Run it in release mode:
//!
//! ```text
//! cargo test -p vumi-client --release --lib decode::bench -- --ignored --nocapture
//! ```

use std::hint::black_box;
use std::time::{Duration, Instant};

use super::{scan, with_serde};

/// A `GET` answer as go-metrics-api writes it (Python's `json.dumps`): one series of
/// `points` five-minute buckets with the values graphite's `summarize` gives.
pub(super) fn server_answer(points: usize) -> Vec<u8> {
    let values = [
        "0.0",
        "5.0",
        "10.5",
        "1234.5678",
        "0.30000000000000004",
        "42.0",
        "7.25",
    ];
    let mut body = String::from("{\"stores.default.questions_completed.sum\": [");
    for i in 0..points {
        if i > 0 {
            body.push_str(", ");
        }
        body.push_str(&format!(
            "{{\"x\": {}, \"y\": {}}}",
            1_795_048_800_000_u64 + i as u64 * 300_000,
            values[i % values.len()]
        ));
    }
    body.push_str("]}");
    body.into_bytes()
}

/// The time of one call of `decode`: the fastest of 40 batches of about 10 ms each, the one
/// least disturbed by whatever else the machine runs.
fn time<T>(body: &[u8], decode: impl Fn(&[u8]) -> T) -> Duration {
    let started = Instant::now();
    black_box(decode(black_box(body)));
    let once = started.elapsed().max(Duration::from_nanos(100));
    let per_batch = u32::try_from((Duration::from_millis(10).as_nanos() / once.as_nanos()).max(1))
        .unwrap_or(u32::MAX);
    (0..40)
        .map(|_| {
            let started = Instant::now();
            for _ in 0..per_batch {
                black_box(decode(black_box(body)));
            }
            started.elapsed() / per_batch
        })
        .min()
        .unwrap_or_default()
}

/// A plain pass over the bytes: the floor any decoder of this body stands on.
fn plain_pass(body: &[u8]) -> usize {
    memchr::memchr_iter(b'}', body).count()
}

#[test]
#[ignore = "a measurement: run it in release mode with --ignored --nocapture"]
fn scanner_against_serde() {
    for points in [1_000, 100_000] {
        let body = server_answer(points);
        assert_eq!(scan(&body).map(|s| s[0].1.len()), Some(points));
        let floor = time(&body, plain_pass);
        let scanner = time(&body, scan);
        let serde = time(&body, with_serde);
        let micros = |d: Duration| d.as_secs_f64() * 1e6;
        println!(
            "{points} points, {} KiB: plain pass {:.1} µs, scanner {:.1} µs, serde {:.1} µs",
            body.len() / 1024,
            micros(floor),
            micros(scanner),
            micros(serde),
        );
    }
}
