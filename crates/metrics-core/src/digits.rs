//! Reading ASCII digits eight at a time, for the hand-written decoders of the backends (the
//! Outline transfer scanner, the Vumi point scanner): one copy of the word tricks, tested
//! here, instead of one per backend.
//!
//! A word is eight bytes of a body read little-endian, so its first byte is the lowest.
//!
//! ```
//! use metrics_core::digits::{digit_run, run_value};
//!
//! let word = u64::from_le_bytes(*b"1234,\"x\"");
//! assert_eq!(digit_run(word), 4);
//! assert_eq!(run_value(word, 4), 1234);
//! ```

/// `10^0` to `10^8`: the factor that makes room for a run of `n` more digits.
pub const POWERS_OF_TEN: [u64; 9] = [
    1,
    10,
    100,
    1_000,
    10_000,
    100_000,
    1_000_000,
    10_000_000,
    100_000_000,
];

/// How many of the first bytes of `word` are ASCII digits, 0 to 8.
///
/// A byte below `'0'` borrows when `0x30` is subtracted, one above `'9'` carries when `0x46`
/// is added; the borrows and carries run only upward, from a byte that is not a digit, so
/// the run below it is read exactly.
#[inline(always)]
pub fn digit_run(word: u64) -> usize {
    let below = word.wrapping_sub(0x3030_3030_3030_3030);
    let above = word.wrapping_add(0x4646_4646_4646_4646);
    ((below | above) & 0x8080_8080_8080_8080).trailing_zeros() as usize / 8
}

/// The number eight digit values (0–9, most significant in the lowest byte) make.
#[inline(always)]
pub fn eight_digits(digits: u64) -> u64 {
    // Pairs, then fours, then all eight, each step in place in wider lanes.
    let pairs = digits.wrapping_mul(10).wrapping_add(digits >> 8) & 0x00ff_00ff_00ff_00ff;
    let fours = pairs.wrapping_mul(100).wrapping_add(pairs >> 16) & 0x0000_ffff_0000_ffff;
    fours.wrapping_mul(10_000).wrapping_add(fours >> 32) & 0xffff_ffff
}

/// The value of the first `run` bytes of `word`, which are ASCII digits; `run` in `1..=8`.
#[inline(always)]
pub fn run_value(word: u64, run: usize) -> u64 {
    // The run's digit values, moved to the high bytes: the bytes below become leading zeros.
    eight_digits(word.wrapping_sub(0x3030_3030_3030_3030) << (8 * (8 - run)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_run_length_and_stop_byte() {
        for run in 1..=8usize {
            for stop in [b'/', b':', b',', b'"', b'.', b'e', b' ', 0, 0xff] {
                let mut bytes = [stop; 8];
                let digits: Vec<u8> = (0..run).map(|i| b"9081726354"[i % 10]).collect();
                bytes[..run].copy_from_slice(&digits);
                let word = u64::from_le_bytes(bytes);
                let expected: u64 = std::str::from_utf8(&digits).unwrap().parse().unwrap();
                let found = digit_run(word);
                assert_eq!(found, run, "{bytes:?}");
                assert_eq!(run_value(word, run), expected);
            }
        }
        assert_eq!(digit_run(u64::from_le_bytes(*b"12345678")), 8);
        assert_eq!(run_value(u64::from_le_bytes(*b"00000001"), 8), 1);
        assert_eq!(digit_run(u64::from_le_bytes(*b"x1234567")), 0);
    }
}
