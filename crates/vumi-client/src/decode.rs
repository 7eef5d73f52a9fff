//! Decoding the body of a `GET <prefix>/metrics/` answer.
//!
//! [`decode`] reads the shape servers write,
//! `{"<name>": [{"x": <ms>, "y": <number or null>}, …], …}`, with a one-pass scanner
//! ([`scan`]) and leaves everything else to serde ([`with_serde`]), which also words the
//! errors. The scanner earns its place by speed: about 3.4 times the serde path's on a
//! 1 000-point answer and 4 times on a 100 000-point one, where `sonic-rs` and `simd-json`
//! into the same types are no faster than serde (`decode/bench.rs`, run in release mode).
//! The property tests in `decode/props.rs` hold it to serde's result, bit for bit.
//!
//! What the scanner guarantees:
//! - it accepts nothing serde refuses, and what it accepts it reads as serde does: numbers are
//!   rounded correctly, as `serde_json` rounds them with its `float_roundtrip` feature (the
//!   workspace's one float semantics): exactly in one operation where that is exact, by the
//!   standard library's parser everywhere else;
//! - time and memory linear in the body: every loop advances through the body, none is
//!   bounded by a number's value, and every allocation is sized by what was read, never by
//!   a count made ahead of time.

use chrono::{DateTime, NaiveDate, NaiveTime, Utc};
use metrics_core::Result;
use metrics_core::digits::{POWERS_OF_TEN, digit_run, run_value};

use crate::BACKEND;
use crate::model::{DataPoint, WireMetrics};

/// The decoded series, in the body's order.
pub(crate) type Decoded = Vec<(String, Vec<DataPoint>)>;

/// The days from 0001-01-01 (chrono's day 1 of the common era) to 1970-01-01.
const UNIX_EPOCH_DAYS_FROM_CE: u64 = 719_163;

/// Decodes a `GET` answer: the scanner for the shape servers write, serde for the rest.
///
/// # Errors
///
/// [`metrics_core::Error::Decode`] with the path of the failing field, as serde words it.
pub(crate) fn decode(body: &[u8]) -> Result<Decoded> {
    match scan(body) {
        Some(series) => Ok(series),
        None => with_serde(body),
    }
}

/// The serde path alone.
///
/// # Errors
///
/// As [`decode`].
pub(crate) fn with_serde(body: &[u8]) -> Result<Decoded> {
    Ok(
        metrics_core::http::decode_json::<WireMetrics>(BACKEND, body)?
            .into_iter()
            .collect(),
    )
}

/// The scanner alone: the series, or `None` for anything outside the shape servers write —
/// another field in a point, a missing or repeated field, an `x` that is negative or not an
/// integer, a number too large for a `f64`, a repeated name, a syntax error — which serde
/// then reads or refuses.
pub(crate) fn scan(body: &[u8]) -> Option<Decoded> {
    let mut scanner = Scanner {
        body,
        at: 0,
        day: Day::NONE,
        head: (u64::MAX, 0),
    };
    scanner.expect(b'{')?;
    let mut series: Decoded = Vec::new();
    if scanner.peek() == Some(b'}') {
        scanner.at += 1;
    } else {
        loop {
            scanner.skip_ws();
            let name = scanner.string()?;
            scanner.expect(b':')?;
            scanner.expect(b'[')?;
            let mut points = Vec::new();
            if scanner.peek() == Some(b']') {
                scanner.at += 1;
            } else {
                loop {
                    points.push(scanner.point()?);
                    // The separators servers write, `, ` and `,`, stepped over at once.
                    let rest = &body[scanner.at..];
                    if rest.starts_with(b", {") {
                        scanner.at += 2;
                        continue;
                    }
                    if rest.starts_with(b",{") {
                        scanner.at += 1;
                        continue;
                    }
                    match scanner.next()? {
                        b',' => {}
                        b']' => break,
                        _ => return None,
                    }
                }
            }
            series.push((name, points));
            match scanner.next()? {
                b',' => {}
                b'}' => break,
                _ => return None,
            }
        }
    }
    scanner.skip_ws();
    if scanner.at != body.len() {
        return None;
    }
    // A repeated name: serde keeps the last one; leave that to it.
    if series.len() > 1 {
        let mut names: Vec<&str> = series.iter().map(|(name, _)| name.as_str()).collect();
        names.sort_unstable();
        if names.windows(2).any(|pair| pair[0] == pair[1]) {
            return None;
        }
    }
    Some(series)
}

/// The eight bytes at `at`, first byte lowest, if there are eight.
#[inline(always)]
fn word_at(body: &[u8], at: usize) -> Option<u64> {
    let bytes: [u8; 8] = body.get(at..at + 8)?.try_into().ok()?;
    Some(u64::from_le_bytes(bytes))
}

/// `bytes` (at most eight) as a word, first byte lowest, the rest zero: the pattern a
/// [`word_at`] masked with [`low_bytes`] is compared with.
const fn word_of(bytes: &[u8]) -> u64 {
    let mut word = 0;
    let mut i = bytes.len();
    while i > 0 {
        i -= 1;
        word = (word << 8) | bytes[i] as u64;
    }
    word
}

/// The mask of a word's first `count` bytes (1 to 7).
const fn low_bytes(count: usize) -> u64 {
    (1 << (8 * count)) - 1
}

/// Reads the digits from `at` onto `value` (which wraps past 19 digits: the callers count
/// the digits and check once), eight at a time while eight bytes remain; the new value and
/// the position after the digits.
#[inline(always)]
fn read_digits(body: &[u8], mut at: usize, mut value: u64) -> (u64, usize) {
    while let Some(word) = word_at(body, at) {
        let run = digit_run(word);
        if run == 0 {
            return (value, at);
        }
        value = value
            .wrapping_mul(POWERS_OF_TEN[run])
            .wrapping_add(run_value(word, run));
        at += run;
        if run < 8 {
            return (value, at);
        }
    }
    read_short_digits(body, at, value)
}

/// [`read_digits`] one byte at a time: for the values [`short_decimal_at`] leaves to
/// [`number_at`] (long runs, exponents, the end of the body), and the tail of a timestamp.
#[inline(always)]
fn read_short_digits(body: &[u8], mut at: usize, mut value: u64) -> (u64, usize) {
    while let Some(&byte) = body.get(at) {
        let digit = byte.wrapping_sub(b'0');
        if digit > 9 {
            break;
        }
        value = value.wrapping_mul(10).wrapping_add(u64::from(digit));
        at += 1;
    }
    (value, at)
}

/// The first position from `at` that is not JSON whitespace.
#[inline(always)]
fn skip_whitespace(body: &[u8], mut at: usize) -> usize {
    while let Some(b' ' | b'\t' | b'\n' | b'\r') = body.get(at) {
        at += 1;
    }
    at
}

/// The state of [`scan`].
struct Scanner<'a> {
    body: &'a [u8],
    at: usize,
    day: Day,
    /// The first five bytes of the last thirteen-digit timestamp, as a word, and their
    /// value; at first a word no five bytes can make.
    head: (u64, u64),
}

impl Scanner<'_> {
    #[inline]
    fn skip_ws(&mut self) {
        self.at = skip_whitespace(self.body, self.at);
    }

    /// The next byte after whitespace, not consumed.
    #[inline]
    fn peek(&mut self) -> Option<u8> {
        self.skip_ws();
        self.body.get(self.at).copied()
    }

    /// The next byte after whitespace, consumed.
    #[inline]
    fn next(&mut self) -> Option<u8> {
        let byte = self.peek()?;
        self.at += 1;
        Some(byte)
    }

    #[inline]
    fn expect(&mut self, byte: u8) -> Option<()> {
        (self.next()? == byte).then_some(())
    }

    /// A string at the cursor (no whitespace before it).
    fn string(&mut self) -> Option<String> {
        if self.body.get(self.at) != Some(&b'"') {
            return None;
        }
        let start = self.at + 1;
        let rest = self.body.get(start..)?;
        let len = memchr::memchr2(b'"', b'\\', rest)?;
        if rest[len] == b'"' {
            let raw = &rest[..len];
            if raw.iter().any(|&b| b < 0x20) {
                return None; // a control character: serde refuses it
            }
            let text = std::str::from_utf8(raw).ok()?.to_owned();
            self.at = start + len + 1;
            return Some(text);
        }
        // An escape: find the closing quote, stepping over each escaped byte, and let
        // serde_json read the string (surrogate pairs, invalid escapes).
        let mut at = start + len;
        loop {
            // `at` is on a backslash.
            at += 2;
            let next = memchr::memchr2(b'"', b'\\', self.body.get(at..)?)?;
            at += next;
            if self.body[at] == b'"' {
                break;
            }
        }
        let text = serde_json::from_slice(self.body.get(self.at..=at)?).ok()?;
        self.at = at + 1;
        Some(text)
    }

    /// `{"x": …, "y": …}`, the fields in either order, after whitespace.
    #[inline]
    fn point(&mut self) -> Option<DataPoint> {
        self.skip_ws();
        let start = self.at;
        if let Some(point) = self.point_as_servers_write_it() {
            return Some(point);
        }
        self.at = start;
        self.expect(b'{')?;
        let mut time = None;
        let mut value = None;
        loop {
            self.skip_ws();
            let key = self.body.get(self.at..self.at + 3)?;
            self.at += 3;
            self.expect(b':')?;
            self.skip_ws();
            match key {
                b"\"x\"" if time.is_none() => time = Some(self.timestamp()?),
                b"\"y\"" if value.is_none() => {
                    let (read, at) = value_at(self.body, self.at)?;
                    value = Some(read);
                    self.at = at;
                }
                // Another field, an escaped name or a repeated field: serde's to read or
                // refuse.
                _ => return None,
            }
            match self.next()? {
                b',' => {}
                b'}' => break,
                _ => return None,
            }
        }
        Some(DataPoint {
            time: time?,
            value: value?,
        })
    }

    /// `{"x": 1, "y": 2.0}` (Python's `json.dumps`) or `{"x":1,"y":2.0}` (`serde_json`): the
    /// punctuation compared a word at a time rather than token by token. `None` for any
    /// other layout, or too near the end of the body for a whole word, which
    /// [`Scanner::point`] then reads from the start.
    #[inline]
    fn point_as_servers_write_it(&mut self) -> Option<DataPoint> {
        // The position stays in a local, written back once: the hot loops then keep it in
        // a register instead of storing it on every byte.
        let body = self.body;
        let opening = word_at(body, self.at)?;
        let spaced = if opening & low_bytes(6) == word_of(b"{\"x\": ") {
            true
        } else if opening & low_bytes(5) == word_of(b"{\"x\":") {
            false
        } else {
            return None;
        };
        let at = self.at + if spaced { 6 } else { 5 };
        let (time, at) = self.timestamp_at(at)?;
        let between = word_at(body, at)?;
        let at = if spaced && between & low_bytes(7) == word_of(b", \"y\": ") {
            at + 7
        } else if !spaced && between & low_bytes(5) == word_of(b",\"y\":") {
            at + 5
        } else {
            return None;
        };
        let (value, at) = value_at(body, at)?;
        if body.get(at) != Some(&b'}') {
            return None;
        }
        self.at = at + 1;
        Some(DataPoint { time, value })
    }

    /// A non-negative integer of milliseconds at the cursor, as
    /// `chrono::serde::ts_milliseconds` reads it.
    #[inline]
    fn timestamp(&mut self) -> Option<DateTime<Utc>> {
        let (time, at) = self.timestamp_at(self.at)?;
        self.at = at;
        Some(time)
    }

    /// [`Scanner::timestamp`] at `start`: the time and the position after it.
    #[inline(always)]
    fn timestamp_at(&mut self, start: usize) -> Option<(DateTime<Utc>, usize)> {
        if let Some(millis) = self.thirteen_digits_at(start) {
            return Some((self.day.time(millis)?, start + 13));
        }
        let body = self.body;
        let (millis, at) = read_digits(body, start, 0);
        let digits = at - start;
        // Up to 18 digits cannot overflow; a leading zero, a fraction or an exponent is
        // serde's to refuse (`-` is not a digit: negative times are left to it too).
        if digits == 0
            || digits > 18
            || (digits > 1 && body[start] == b'0')
            || matches!(body.get(at), Some(b'.' | b'e' | b'E'))
        {
            return None;
        }
        Some((self.day.time(millis)?, at))
    }

    /// A timestamp of thirteen digits — every millisecond from 2001-09-09 to 2286-11-20 —
    /// or `None` for any other (which [`Scanner::timestamp_at`] then reads digit run by
    /// digit run). A series' points share their first five digits (10^8 ms, about 28
    /// hours) for long runs, so those are compared as bytes with the last ones converted,
    /// and only the other eight are converted anew.
    #[inline(always)]
    fn thirteen_digits_at(&mut self, start: usize) -> Option<u64> {
        let body = self.body;
        let head = word_at(body, start)? & low_bytes(5);
        let tail = word_at(body, start + 5)?;
        // Eight digits, then neither a digit nor a fraction or an exponent.
        if digit_run(tail) != 8 || matches!(body.get(start + 13)?, b'0'..=b'9' | b'.' | b'e' | b'E')
        {
            return None;
        }
        let (known, high) = self.head;
        let high = if head == known {
            high
        } else {
            // Five digits, the first not a zero (serde refuses a leading zero).
            if digit_run(head) != 5 || head & 0xff == u64::from(b'0') {
                return None;
            }
            let high = run_value(head, 5);
            self.head = (head, high);
            high
        };
        Some(high * 100_000_000 + run_value(tail, 8))
    }
}

/// The day of the last timestamp, as milliseconds `[start, end)` and its date: consecutive
/// points mostly share it, so the calendar computation, the costly part of a timestamp,
/// is made once a day rather than once a point, and the time of day is a subtraction.
#[derive(Clone, Copy)]
struct Day {
    start: u64,
    end: u64,
    date: NaiveDate,
}

impl Day {
    /// No day yet: an empty range that no timestamp falls in.
    const NONE: Self = Self {
        start: 1,
        end: 0,
        date: NaiveDate::MIN,
    };

    /// Milliseconds in a day.
    const MILLIS: u64 = 86_400_000;

    /// The time `millis` after the epoch, from integers alone; `None` past chrono's range.
    #[inline]
    fn time(&mut self, millis: u64) -> Option<DateTime<Utc>> {
        if !(self.start..self.end).contains(&millis) {
            let day = millis / Self::MILLIS;
            let date = NaiveDate::from_num_days_from_ce_opt(
                i32::try_from(day.checked_add(UNIX_EPOCH_DAYS_FROM_CE)?).ok()?,
            )?;
            let start = day * Self::MILLIS;
            *self = Self {
                start,
                end: start + Self::MILLIS,
                date,
            };
        }
        let of_day = millis - self.start;
        // Below 86 400 000: both fit a `u32`, and the divisions are by constants.
        #[allow(clippy::cast_possible_truncation, reason = "below 86 400 000")]
        let (seconds, nanos) = ((of_day / 1000) as u32, (of_day % 1000) as u32 * 1_000_000);
        let time = NaiveTime::from_num_seconds_from_midnight_opt(seconds, nanos)?;
        Some(self.date.and_time(time).and_utc())
    }
}

/// `null` or a number at `at`, and the position after it.
#[inline(always)]
fn value_at(body: &[u8], at: usize) -> Option<(Option<f64>, usize)> {
    if body.get(at..)?.starts_with(b"null") {
        return Some((None, at + 4));
    }
    number_at(body, at).map(|(value, at)| (Some(value), at))
}

/// A JSON number at `start`, as `serde_json` (with `float_roundtrip`) reads it into a
/// `f64`, and the position after it.
///
/// One pass checks the grammar and gathers the digits; a number whose digits and power of
/// ten are both exact in a `f64` (at most 2^53, at most 10^22) is one correctly rounded
/// operation away, as in every correct parser; any other goes to the standard library's
/// parser (Eisel-Lemire with a big-number fallback: correctly rounded).
#[inline(always)]
fn number_at(body: &[u8], start: usize) -> Option<(f64, usize)> {
    if let Some(read) = short_decimal_at(body, start) {
        return Some(read);
    }
    let mut at = start;
    let negative = body.get(at) == Some(&b'-');
    at += usize::from(negative);
    let mut mantissa: u64 = 0;
    let integer = at;
    match body.get(at)? {
        b'0' => at += 1,
        b'1'..=b'9' => (mantissa, at) = read_short_digits(body, at, 0),
        _ => return None,
    }
    // A leading `0` counts too: it adds nothing to the mantissa, and counting it only
    // sends a few more numbers to the exact parser below.
    let mut digits = at - integer;
    let mut exponent: i64 = 0;
    if body.get(at) == Some(&b'.') {
        let fraction = at + 1;
        (mantissa, at) = read_short_digits(body, fraction, mantissa);
        if at == fraction {
            return None;
        }
        digits += at - fraction;
        exponent = -i64::try_from(at - fraction).ok()?;
    }
    if let Some(b'e' | b'E') = body.get(at) {
        at += 1;
        let negative_exponent = body.get(at) == Some(&b'-');
        if let Some(b'+' | b'-') = body.get(at) {
            at += 1;
        }
        let first = at;
        let mut written: i64 = 0;
        while let Some(&byte) = body.get(at) {
            let digit = byte.wrapping_sub(b'0');
            if digit > 9 {
                break;
            }
            written = written.saturating_mul(10).saturating_add(i64::from(digit));
            at += 1;
        }
        if at == first {
            return None;
        }
        exponent = if negative_exponent {
            exponent.saturating_sub(written)
        } else {
            exponent.saturating_add(written)
        };
    }
    let value = if digits <= 19
        && mantissa <= MAX_EXACT_INTEGER
        && let Some(&power) =
            EXACT_POWERS_OF_TEN.get(usize::try_from(exponent.unsigned_abs()).ok()?)
    {
        #[allow(clippy::cast_precision_loss, reason = "at most 2^53: exact")]
        let mantissa = mantissa as f64;
        let value = if exponent < 0 {
            mantissa / power
        } else {
            mantissa * power
        };
        if negative { -value } else { value }
    } else {
        parse_exactly(&body[start..at])?
    };
    // serde refuses a number beyond the largest `f64` ("number out of range").
    if !value.is_finite() {
        return None;
    }
    Some((value, at))
}

/// The form nearly every value takes, `-?D{1,7}(.D{1,7})?` without an exponent, read a word
/// per digit run instead of a byte at a time; `None` for any other form (or too near the end
/// of the body for whole words), which [`number_at`] then reads byte by byte. At most 14
/// digits and a divisor of at most 10^7: both exact in a `f64`, so one division rounds
/// correctly, as in [`number_at`].
#[inline(always)]
fn short_decimal_at(body: &[u8], start: usize) -> Option<(f64, usize)> {
    let negative = *body.get(start)? == b'-';
    let integer = start + usize::from(negative);
    let word = word_at(body, integer)?;
    let run = digit_run(word);
    // A leading zero followed by digits is serde's to refuse.
    if run == 0 || run == 8 || (run > 1 && word & 0xff == u64::from(b'0')) {
        return None;
    }
    let (mantissa, at, scale) = if (word >> (8 * run)) & 0xff == u64::from(b'.') {
        // The bytes after the point, zeros shifted in behind them (zero is not a digit):
        // their run stops at the word's end if not before.
        let after_point = word.checked_shr(8 * (run as u32 + 1)).unwrap_or(0);
        let in_word = digit_run(after_point);
        let fraction;
        let mantissa;
        if run + 1 + in_word < 8 {
            if in_word == 0 {
                return None;
            }
            // `12.5` and the like whole in one word: the point cut out, one conversion.
            fraction = in_word;
            let digits =
                (word & low_bytes(run)) | ((after_point & low_bytes(fraction)) << (8 * run));
            mantissa = run_value(digits, run + fraction);
        } else {
            // The fraction may go on past the word: read it from the point.
            let word_after = word_at(body, integer + run + 1)?;
            fraction = digit_run(word_after);
            if fraction == 0 || fraction == 8 {
                return None;
            }
            mantissa =
                run_value(word, run) * POWERS_OF_TEN[fraction] + run_value(word_after, fraction);
        }
        (mantissa, integer + run + 1 + fraction, fraction)
    } else {
        (run_value(word, run), integer + run, 0)
    };
    if let Some(b'e' | b'E') = body.get(at) {
        return None;
    }
    #[allow(clippy::cast_precision_loss, reason = "at most 14 digits: exact")]
    let value = mantissa as f64 / EXACT_POWERS_OF_TEN[scale];
    Some((if negative { -value } else { value }, at))
}

/// A number literal the one-operation path cannot round, by the standard library's parser;
/// kept out of line, off the path of the usual values.
#[cold]
#[inline(never)]
fn parse_exactly(literal: &[u8]) -> Option<f64> {
    // Only ASCII digits, signs, `.` and `e` were read: always UTF-8.
    std::str::from_utf8(literal).ok()?.parse().ok()
}

/// The largest integer below which every integer is exact in a `f64`: 2^53.
const MAX_EXACT_INTEGER: u64 = 1 << 53;

/// The powers of ten a `f64` holds exactly: `10^0` to `10^22`.
const EXACT_POWERS_OF_TEN: [f64; 23] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
    1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
];

#[cfg(test)]
mod bench;
#[cfg(test)]
mod props;

#[cfg(test)]
mod tests {
    use super::*;

    /// Sorted by name, for comparing the two paths (serde's map has no order).
    fn sorted(mut series: Decoded) -> Decoded {
        series.sort_by(|a, b| a.0.cmp(&b.0));
        series
    }

    /// The values' bits: `-0.0 == 0.0`, so equality alone is not bit for bit.
    fn bits(series: &Decoded) -> Vec<Option<u64>> {
        series
            .iter()
            .flat_map(|(_, points)| points)
            .map(|p| p.value.map(f64::to_bits))
            .collect()
    }

    /// Asserts that the scanner takes `body` and reads it as serde does, bit for bit.
    #[track_caller]
    fn assert_scanned(body: &str) {
        let scanned = scan(body.as_bytes()).map(sorted);
        let Some(scanned) = scanned else {
            panic!("the scanner should take {body:?}");
        };
        let serde = sorted(with_serde(body.as_bytes()).unwrap());
        assert_eq!(scanned, serde, "{body:?}");
        assert_eq!(bits(&scanned), bits(&serde), "{body:?}");
    }

    /// Asserts that the scanner leaves `body` to serde.
    #[track_caller]
    fn assert_left_to_serde(body: &[u8]) {
        assert_eq!(scan(body), None, "{:?}", String::from_utf8_lossy(body));
        assert_eq!(
            decode(body).map(sorted).ok(),
            with_serde(body).map(sorted).ok()
        );
    }

    fn body_with_value(number: &str) -> String {
        format!(r#"{{"a.sum":[{{"x":1,"y":{number}}}]}}"#)
    }

    #[test]
    fn thirteen_digit_times_read_as_serde_reads_them_as_their_first_digits_change() {
        assert_scanned(
            r#"{"a.sum": [{"x": 1795048800000, "y": 1}, {"x": 1795048800001, "y": 2}, {"x": 1799999999999, "y": 3}, {"x": 1800000000000, "y": 4}, {"x": 9999999999999, "y": 5}, {"x": 1000000000000, "y": 6}, {"x": 999999999999, "y": 7}, {"x": 10000000000000, "y": 8}]}"#,
        );
        for refused in [
            "0795048800000",
            "00000000000000",
            "17950488000000000000",
            "1795048800000.5",
            "1795048800000e0",
            "1795048800000E0",
            "-1795048800000",
        ] {
            assert_left_to_serde(
                format!(
                    r#"{{"a.sum": [{{"x": 1795048800000, "y": 1}}, {{"x": {refused}, "y": 2}}]}}"#
                )
                .as_bytes(),
            );
        }
    }

    #[test]
    fn every_digit_count_either_side_of_the_point_reads_as_serde_reads_it() {
        // Runs shorter than, equal to and longer than a word, on both sides of the point, in
        // both layouts, and at the very end of a body, where no whole word is left.
        let digits = "98765432109876543210";
        for integer in (0..=17).map(|n| if n == 0 { "0" } else { &digits[..n] }) {
            for fraction in 0..=17 {
                for sign in ["", "-"] {
                    let number = if fraction == 0 {
                        format!("{sign}{integer}")
                    } else {
                        format!("{sign}{integer}.{}", &digits[20 - fraction..])
                    };
                    assert_scanned(&format!(r#"{{"a.sum":[{{"x":1,"y":{number}}}]}}"#));
                    assert_scanned(&format!(
                        r#"{{"a.sum": [{{"x": 1795048800000, "y": {number}}}, {{"x": 1795048800001, "y": {number}}}]}}"#
                    ));
                }
            }
        }
        for refused in ["00", "01.5", "-012", "1.", "-", "1.5e", "1.5.5", "0x1"] {
            assert_left_to_serde(format!(r#"{{"a.sum":[{{"x":1,"y":{refused}}}]}}"#).as_bytes());
            assert_left_to_serde(
                format!(
                    r#"{{"a.sum": [{{"x": 1795048800000, "y": {refused}}}, {{"x": 2, "y": 1}}]}}"#
                )
                .as_bytes(),
            );
        }
    }

    #[test]
    fn scanner_agrees_with_serde_on_the_shapes_servers_send() {
        for body in [
            "{}",
            " {\n} \n",
            // go-metrics-api (Python's json.dumps).
            r#"{"stores.a.b.last": [{"x": 1000000, "y": null}, {"x": 2000000, "y": 5.0}]}"#,
            // serde_json's compact form, integers for values.
            r#"{"stores.a.b.last":[{"x":1000000,"y":0},{"x":2000000,"y":-7}]}"#,
            // Empty series, several series, any JSON whitespace.
            r#"{"a.sum": [], "b.avg":[ ],"c.max":[{"x":1,"y":1}]}"#,
            "{\r\n\t\"a.sum\" :\n[ {\t\"x\" : 1795048800000 ,\r\"y\" : 0.25 } ,{\"x\":1795049100123,\"y\":null}\n]\n}",
            // The fields in the other order.
            r#"{"a.sum":[{"y":2.5,"x":1795048800000}]}"#,
            // Escaped and non-ASCII names.
            r#"{"a\"b.sum":[],"\u0041.sum":[{"x":1,"y":1}],"\\":[],"ключ.avg":[]}"#,
            r#"{"a\/b.sum":[],"\ud83d\ude00.last":[],"\\\\\"":[]}"#,
        ] {
            assert_scanned(body);
        }
    }

    #[test]
    fn scanner_reads_numbers_as_serde_does() {
        for number in [
            "0",
            "-0",
            "-0.0",
            "0.0",
            "4.0",
            "150.0",
            "10.50",
            "0.1",
            "0.7234",
            "-12.5",
            "1e5",
            "1E+2",
            "1.5e-3",
            "2.5E3",
            "0.000001",
            "123456789012345",
            "999999999999999.0",
            "12345678901234567",
            "1234567890123456789012",
            "0.30000000000000004",
            "1e22",
            "1e23",
            "9007199254740993",
            "2.2250738585072014e-308",
            "2.2250738585072011e-308",
            "1.7976931348623157e308",
            "1.7976931348623158e308",
            "5e-324",
            "2.4703282292062327e-324",
            "2.4703282292062328e-324",
            "1e-400",
            "-1e-400",
            "0e999999999999",
            "0e-9999999999999999999",
            "0.000e99999999999999999999999999",
            "100000000000000000000000000000e-30",
            // Reported 1 ulp away from serde (with serde's default float parsing).
            "30e-23",
            "3.0e-22",
            "70e-23",
            "1.50e-21",
        ] {
            assert_scanned(&body_with_value(number));
        }
    }

    #[test]
    fn scanner_reads_timestamps_as_chrono_does() {
        for millis in [
            0_i64,
            1,
            999,
            1000,
            86_399_999,
            86_400_000,
            1_000_000,
            1_795_048_800_000,
            1_795_049_100_123,
            99_999_999,
            100_000_000,
            253_402_300_799_999,
            8_210_266_876_799_999,
        ] {
            assert_scanned(&format!(r#"{{"a.sum":[{{"x":{millis},"y":1}}]}}"#));
        }
        // Many points across day boundaries: the cached day must not leak into the next one.
        let points: Vec<String> = (0..2000_i64)
            .map(|i| {
                format!(
                    r#"{{"x":{},"y":1}}"#,
                    1_795_000_000_000 + i * 3_599_999 + i % 7
                )
            })
            .collect();
        assert_scanned(&format!(r#"{{"a.sum":[{}]}}"#, points.join(",")));
    }

    /// Where the number at the start of `text` ends, if it is one.
    fn json_number_end(text: &[u8], _start: usize) -> Option<usize> {
        number_at(text, 0).map(|(_, end)| end)
    }

    /// The eight-at-a-time digit reading against the plain one, for every run length, every
    /// byte that can end it and any number of bytes after it.
    #[test]
    fn digits_are_read_eight_at_a_time_exactly() {
        let reference = |text: &[u8], value: u64| {
            let end = text.iter().take_while(|b| b.is_ascii_digit()).count();
            let value = text[..end].iter().fold(value, |value, &b| {
                value.wrapping_mul(10).wrapping_add(u64::from(b - b'0'))
            });
            (value, end)
        };
        for digits in ["98765432109876543210987", "10000000000000000000000"] {
            for length in 0..=digits.len() {
                for end in (0..=255_u8).filter(|b| !b.is_ascii_digit()) {
                    for padding in [0, 1, 7, 8, 9] {
                        let mut text = digits.as_bytes()[..length].to_vec();
                        text.push(end);
                        text.extend(std::iter::repeat_n(b'5', padding));
                        for value in [0, 7] {
                            assert_eq!(
                                read_digits(&text, 0, value),
                                reference(&text, value),
                                "{:?}",
                                String::from_utf8_lossy(&text)
                            );
                        }
                    }
                }
                let text = &digits.as_bytes()[..length];
                assert_eq!(read_digits(text, 0, 0), reference(text, 0));
            }
        }
    }

    #[test]
    fn numbers_follow_the_json_grammar() {
        for (text, end) in [
            ("0", Some(1)),
            ("-0", Some(2)),
            ("01", Some(1)),
            ("10", Some(2)),
            ("1.5", Some(3)),
            ("1.", None),
            (".5", None),
            ("-", None),
            ("+1", None),
            ("1e", None),
            ("1e+", None),
            ("1e+5", Some(4)),
            ("1E-05", Some(5)),
            ("1.5e3x", Some(5)),
            ("Infinity", None),
            ("NaN", None),
        ] {
            assert_eq!(json_number_end(text.as_bytes(), 0), end, "{text}");
        }
    }

    #[test]
    fn scanner_leaves_the_unusual_to_serde() {
        for body in [
            // Accepted by serde, with its own reading.
            &br#"{"a.sum":[{"x":1,"y":2,"z":[3]}]}"#[..],
            br#"{"a.sum":[[1,2.5]]}"#,
            br#"{"a.sum":[],"a.sum":[{"x":1,"y":1}]}"#,
            br#"{"a.sum":[{"\u0078":1,"y":2}]}"#,
            br#"{"a.sum":[{"x":-1000,"y":2}]}"#,
            // Refused by serde, with its error: the scanner must not accept them either.
            br#"{"a.sum":[{"x":1}]}"#,
            br#"{"a.sum":[{"x":1,"y":2,"x":3}]}"#,
            br#"{"a.sum":[{"x":1,"y":2,"y":3}]}"#,
            br#"{"a.sum":[{"y":1}]}"#,
            br#"{"a.sum":[{}]}"#,
            br#"{"a.sum":[{"x":1.5,"y":2}]}"#,
            br#"{"a.sum":[{"x":1e3,"y":2}]}"#,
            br#"{"a.sum":[{"x":-0,"y":2}]}"#,
            br#"{"a.sum":[{"x":01,"y":2}]}"#,
            br#"{"a.sum":[{"x":"1","y":2}]}"#,
            br#"{"a.sum":[{"x":999999999999999999,"y":2}]}"#,
            br#"{"a.sum":[{"x":99999999999999999999,"y":2}]}"#,
            br#"{"a.sum":[{"x":1,"y":01}]}"#,
            br#"{"a.sum":[{"x":1,"y":-01}]}"#,
            br#"{"a.sum":[{"x":1,"y":1.}]}"#,
            br#"{"a.sum":[{"x":1,"y":.5}]}"#,
            br#"{"a.sum":[{"x":1,"y":1e}]}"#,
            br#"{"a.sum":[{"x":1,"y":1e+}]}"#,
            br#"{"a.sum":[{"x":1,"y":+1}]}"#,
            br#"{"a.sum":[{"x":1,"y":-}]}"#,
            br#"{"a.sum":[{"x":1,"y":NaN}]}"#,
            br#"{"a.sum":[{"x":1,"y":Infinity}]}"#,
            br#"{"a.sum":[{"x":1,"y":-Infinity}]}"#,
            br#"{"a.sum":[{"x":1,"y":inf}]}"#,
            br#"{"a.sum":[{"x":1,"y":1e400}]}"#,
            br#"{"a.sum":[{"x":1,"y":-1e400}]}"#,
            br#"{"a.sum":[{"x":1,"y":1.7976931348623159e308}]}"#,
            br#"{"a.sum":[{"x":1,"y":"1"}]}"#,
            br#"{"a.sum":[{"x":1,"y":nul}]}"#,
            br#"{"a.sum":[{"x":1,"y":nullx}]}"#,
            br#"{"a.sum":[{"x":1,"y":1}x]}"#,
            br#"{"a.sum":[{"x":1,"y":1},]}"#,
            br#"{"a.sum":[{"x":1,"y":1,}]}"#,
            br#"{"a.sum":[],}"#,
            br#"{"a.sum":[]"#,
            br#"{"a.sum":[{"x":1,"y":1}"#,
            br#"{"a.sum":[{"x":1,"y":1"#,
            br#"{"a.sum":[{"x":1,"y":"#,
            br#"{"a.sum":[{"x"#,
            br#"{"a.sum":null}"#,
            br#"{"a.sum":{}}"#,
            br#"{"a.sum" []}"#,
            br#"{"a.sum":[] "b.sum":[]}"#,
            br#"{a:[]}"#,
            br#"{"a\q":[]}"#,
            br#"{"\ud800":[]}"#,
            br#"{"a\"#,
            br#"{"a\\"#,
            b"{\"a\tb\":[]}",
            b"{\"\xff\":[]}",
            b"{}x",
            b"{} {}",
            b"\xef\xbb\xbf{}",
            b"[]",
            b"null",
            b"",
        ] {
            assert_left_to_serde(body);
        }
    }

    /// The inputs reported to spin: the cost of a number must not grow with its value.
    #[test]
    fn huge_exponents_finish_at_once() {
        for number in [
            "0e-9999999999999999999",
            "0e-99999999999999999999999999999999999999",
            "0.0e-9999999999999999999",
            "-0e-9999999999999999999",
            "1e-9999999999999999999",
            "0e9999999999999999999",
            "1e9999999999999999999",
        ] {
            let body =
                format!(r#"{{"stores.default.x.sum":[{{"x":1700000000000,"y":{number}}}]}}"#);
            let (done, finished) = std::sync::mpsc::channel();
            let thread_body = body.clone();
            std::thread::spawn(move || {
                let _ = done.send(decode(thread_body.as_bytes()).map(|s| bits(&s)).ok());
            });
            let decoded = finished
                .recv_timeout(std::time::Duration::from_secs(10))
                .unwrap_or_else(|_| panic!("{body} did not finish in 10 s"));
            assert_eq!(decoded, with_serde(body.as_bytes()).map(|s| bits(&s)).ok());
        }
    }

    #[test]
    fn scanner_agrees_with_serde_on_every_recorded_answer() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
        let mut checked = 0;
        for entry in std::fs::read_dir(dir).unwrap() {
            let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
            let fixture: serde_json::Value = serde_json::from_str(&text).unwrap();
            if fixture["request"]["method"] != "GET"
                || fixture["response"]["status"] != 200
                || !fixture["response"]["body"].is_object()
            {
                continue;
            }
            let body = &fixture["response"]["body"];
            assert_scanned(&serde_json::to_string(body).unwrap());
            assert_scanned(&serde_json::to_string_pretty(body).unwrap());
            checked += 1;
        }
        assert!(checked >= 10, "only {checked} recorded answers");
    }
}
