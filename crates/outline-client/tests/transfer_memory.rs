//! What decoding a `GET /metrics/transfer` body allocates at its peak, counted by the global
//! allocator: at most twice the body for what servers send, and linear in the body for
//! anything else — no buffer is sized by counting a byte. One test in this binary, so that
//! no other test's allocations are counted with it.

use std::alloc::System;
use std::time::{Duration, Instant};

use outline_client::TransferMetrics;
use peakmem_alloc::{INSTRUMENTED_SYSTEM, PeakMemAlloc, PeakMemAllocTrait};

#[global_allocator]
static ALLOCATOR: &PeakMemAlloc<System> = &INSTRUMENTED_SYSTEM;

/// Only a hang trips it.
const DEADLINE: Duration = Duration::from_secs(60);

fn transfer_body(pairs: impl Iterator<Item = String>) -> String {
    let inner: Vec<String> = pairs.collect();
    format!(r#"{{"bytesTransferredByUserId":{{{}}}}}"#, inner.join(","))
}

/// The peak bytes allocated while decoding `body` (and dropping the result).
fn peak_of(body: &[u8]) -> usize {
    ALLOCATOR.reset_peak_memory();
    let started = Instant::now();
    let decoded = TransferMetrics::from_json(body);
    assert!(started.elapsed() < DEADLINE, "{:?}", started.elapsed());
    drop(decoded);
    ALLOCATOR.get_peak_memory()
}

#[test]
fn decoding_allocates_in_proportion_to_the_body() {
    // What servers send: ids counting up, 10- and 11-digit counts, a few named keys last.
    let server: Vec<(&str, String)> = vec![
        (
            "100 000 keys",
            transfer_body(
                (0..100_000u64)
                    .map(|i| format!(r#""{i}":{}"#, 1_000_000_000 + i * 7_919))
                    .chain(["\"alpha-key\":365474".to_owned(), "\"\":1".to_owned()]),
            ),
        ),
        (
            "1 000 keys",
            transfer_body((0..1_000u64).map(|i| format!(r#""{i}":{}"#, 5_958_113_497 + i))),
        ),
    ];
    for (name, body) in &server {
        let peak = peak_of(body.as_bytes());
        assert!(
            peak <= 2 * body.len(),
            "{name}: {peak} bytes at the peak for a {}-byte body",
            body.len()
        );
    }

    // Anything else: linear, with a constant that covers the smallest possible entries.
    let eight_mib = 8 << 20;
    let hostile: Vec<(&str, String)> = vec![
        (
            "an id of colons",
            transfer_body(std::iter::once(format!(r#""{}":1"#, ":".repeat(eight_mib)))),
        ),
        (
            "colons in a rejected body",
            format!(
                r#"{{"bytesTransferredByUserId":{{"{}":-1}}}}"#,
                ":".repeat(eight_mib)
            ),
        ),
        (
            "colons after the map",
            format!(
                r#"{{"bytesTransferredByUserId":{{}}}}{}"#,
                ":".repeat(eight_mib)
            ),
        ),
        (
            "an escaped id",
            transfer_body(std::iter::once(format!(
                r#""{}":1"#,
                "\\u003a".repeat(1 << 20)
            ))),
        ),
        (
            "a long count",
            transfer_body(std::iter::once(format!(r#""1":{}"#, "9".repeat(eight_mib)))),
        ),
        (
            "short distinct ids out of order",
            transfer_body((0..200_000u64).rev().map(|i| format!(r#""{i}":0"#))),
        ),
        (
            "one id repeated",
            transfer_body((0..500_000u64).map(|i| format!(r#""7":{i}"#))),
        ),
    ];
    for (name, body) in &hostile {
        let peak = peak_of(body.as_bytes());
        assert!(
            peak <= 6 * body.len() + (1 << 20),
            "{name}: {peak} bytes at the peak for a {}-byte body",
            body.len()
        );
    }
}
