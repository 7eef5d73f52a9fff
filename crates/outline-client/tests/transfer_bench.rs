//! Measures decoding a 100 000-key `GET /metrics/transfer` body: the scanner, the serde path,
//! serde_json into a plain map, and, for scale, plain passes over the bytes and the cost of
//! writing the output alone. Times and peak allocation only, nothing asserted; run it in
//! release mode:
//!
//! ```text
//! cargo test -p outline-client --release --test transfer_bench -- --ignored --nocapture
//! ```

use std::alloc::System;
use std::hint::black_box;
use std::time::{Duration, Instant};

use outline_client::{TransferMetrics, transfer_decoders};
use peakmem_alloc::{INSTRUMENTED_SYSTEM, PeakMemAlloc, PeakMemAllocTrait};

#[global_allocator]
static ALLOCATOR: &PeakMemAlloc<System> = &INSTRUMENTED_SYSTEM;

/// What a server with 100 000 keys sends: ids counting up, 10- and 11-digit counts (most
/// keys past a gigabyte), two named keys last; about 1.8 MiB.
fn server_body(keys: u64) -> String {
    let mut body = String::from(r#"{"bytesTransferredByUserId":{"#);
    for i in 0..keys {
        body.push_str(&format!(r#""{i}":{},"#, 1_000_000_000 + i * 790_633));
    }
    body.push_str(r#""alpha-key":365474,"":1}}"#);
    body
}

/// The best per-call time over several rounds, and the peak allocation of one call.
fn measure<T>(body: &[u8], decode: impl Fn(&[u8]) -> T) -> (Duration, usize) {
    ALLOCATOR.reset_peak_memory();
    drop(black_box(decode(black_box(body))));
    let peak = ALLOCATOR.get_peak_memory();
    // `TRANSFER_BENCH_ROUNDS=1` for an instruction-counting run.
    let rounds: u32 = std::env::var("TRANSFER_BENCH_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(15);
    let mut best = Duration::MAX;
    for _ in 0..rounds {
        let calls = 20u32;
        let started = Instant::now();
        for _ in 0..calls {
            drop(black_box(decode(black_box(body))));
        }
        best = best.min(started.elapsed() / calls);
    }
    (best, peak)
}

#[derive(serde::Deserialize)]
struct MapResponse {
    #[serde(rename = "bytesTransferredByUserId")]
    _transfer: std::collections::BTreeMap<String, u64>,
}

#[test]
#[ignore = "a measurement: run in release mode with --ignored --nocapture"]
fn measure_transfer_decoding() {
    let body = server_body(100_000);
    let bytes = body.as_bytes();
    let expected = TransferMetrics::from_json(bytes).expect("the body decodes");
    assert_eq!(transfer_decoders::scan(bytes).as_ref(), Some(&expected));
    println!(
        "body: {} bytes, {} keys; per decode, best of 15 rounds of 20:",
        bytes.len(),
        expected.len()
    );
    // `TRANSFER_BENCH_ONLY=serde` runs only the decoders whose name holds it, for a profiler.
    let only = std::env::var("TRANSFER_BENCH_ONLY").unwrap_or_default();
    type Decoder = Box<dyn Fn(&[u8]) -> bool>;
    let decoders: Vec<(&str, Decoder)> = vec![
        (
            "plain pass: memchr count of quotes",
            Box::new(|b| memchr::memchr_iter(b'"', b).count() > 0),
        ),
        (
            "plain pass: UTF-8 check",
            Box::new(|b| std::str::from_utf8(b).is_ok()),
        ),
        (
            "floor: fill buffers of the output's size",
            Box::new(|b| {
                // What any decoder of this body must at least do: write 100 002 entries and
                // the ids into buffers that grow.
                let mut ids: Vec<u8> = Vec::new();
                let mut entries: Vec<(usize, u64)> = Vec::new();
                for (i, chunk) in b.chunks(20).enumerate() {
                    ids.extend_from_slice(&chunk[..5]);
                    entries.push((ids.len(), i as u64));
                }
                black_box(&ids);
                !entries.is_empty()
            }),
        ),
        (
            "from_json (scanner)",
            Box::new(|b| TransferMetrics::from_json(b).is_ok()),
        ),
        (
            "serde path (serde_json, same visitor)",
            Box::new(|b| transfer_decoders::serde(b).is_ok()),
        ),
        (
            "serde_json into BTreeMap<String, u64>",
            Box::new(|b| serde_json::from_slice::<MapResponse>(b).is_ok()),
        ),
    ];
    for (name, decode) in &decoders {
        if !name.contains(only.as_str()) {
            continue;
        }
        let (time, peak) = measure(bytes, decode);
        println!(
            "  {name:<40} {:>8.0} µs  {:>6.0} MB/s  peak {:>9} bytes ({:.2}x the body)",
            time.as_secs_f64() * 1e6,
            bytes.len() as f64 / time.as_secs_f64() / 1e6,
            peak,
            peak as f64 / bytes.len() as f64
        );
    }
}
