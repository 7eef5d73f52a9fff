//! The two time parsers a query meets: the server's own (`graphite_time_parser.py`, used for
//! the size check) and graphite's (`attime.py`, used to fetch the data). They differ on
//! purpose: the server reads `today` as now, graphite as midnight.

use chrono::{DateTime, Datelike, NaiveDate, NaiveDateTime, TimeDelta, Utc};

/// The server's units (`UNIT_VALUES`), case-sensitive and exact.
fn unit_seconds(unit: &str) -> Option<u128> {
    Some(match unit {
        "s" | "second" | "seconds" => 1,
        "min" | "mins" | "minute" | "minutes" => 60,
        "h" | "hour" | "hours" => 3_600,
        "d" | "day" | "days" => 86_400,
        "w" | "week" | "weeks" => 604_800,
        "mon" | "month" | "months" => 2_592_000,
        "y" | "year" | "years" => 31_536_000,
        _ => return None,
    })
}

/// `interval_to_seconds`: `(\d+)(.+)` with a known unit. A count too large for u128 is
/// reported as `u128::MAX` (Python's ints do not overflow; every use divides by it).
pub(crate) fn interval_to_seconds(text: &str) -> Option<u128> {
    let digits = text.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 || digits == text.len() {
        return None;
    }
    let (count, unit) = text.split_at(digits);
    let unit = unit_seconds(unit)?;
    let count = count.parse::<u128>().unwrap_or(u128::MAX);
    Some(count.saturating_mul(unit))
}

/// Python's `datetime` range: years 1 to 9999.
fn in_python_range(time: DateTime<Utc>) -> Option<DateTime<Utc>> {
    (1..=9999).contains(&time.year()).then_some(time)
}

/// `parse_time(text, now)`: `None` where the server raises (and answers 500).
pub(crate) fn server_parse_time(text: &str, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    match text {
        "now" | "today" => return Some(now),
        "yesterday" => return in_python_range(now.checked_sub_signed(TimeDelta::days(1))?),
        "tomorrow" => return in_python_range(now.checked_add_signed(TimeDelta::days(1))?),
        _ => {}
    }
    if let Some(relative) = text.strip_prefix('-') {
        let seconds = i64::try_from(interval_to_seconds(relative)?).ok()?;
        return in_python_range(now.checked_sub_signed(TimeDelta::try_seconds(seconds)?)?);
    }
    if text.contains(':') {
        return strptime_hm_ymd(text, true).map(|t| t.and_utc());
    }
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        if is_date_shaped(text) {
            return strptime_ymd(text).map(|t| t.and_utc());
        }
        let seconds = i64::try_from(text.parse::<u128>().ok()?).ok()?;
        return in_python_range(DateTime::from_timestamp(seconds, 0)?);
    }
    None
}

/// Graphite's and the server's test for eight digits meaning `YYYYMMDD`.
fn is_date_shaped(digits: &str) -> bool {
    let field = |r: std::ops::Range<usize>| digits[r].parse::<u32>().unwrap_or(u32::MAX);
    digits.len() == 8 && field(0..4) > 1900 && field(4..6) < 13 && field(6..8) < 32
}

/// One `strptime` directive, as Python 2.7's `_strptime` regex alternatives.
#[derive(Clone, Copy)]
enum Directive {
    Hour,
    Minute,
    Year,
    Month,
    Day,
    Literal(u8),
}

fn alternatives(directive: Directive) -> &'static [&'static str] {
    // Patterns: 'd' = any digit, other bytes literal; tried in Python's order.
    match directive {
        Directive::Hour => &["2[0-3]", "[0-1]d", "d"],
        Directive::Minute => &["[0-5]d", "d"],
        Directive::Year => &["dddd"],
        Directive::Month => &["1[0-2]", "0[1-9]", "[1-9]"],
        Directive::Day => &["3[01]", "[12]d", "0[1-9]", "[1-9]", " [1-9]"],
        Directive::Literal(_) => &[""],
    }
}

/// Matches one alternative pattern at the start of `input`; returns its length.
fn match_pattern(pattern: &str, input: &[u8]) -> Option<usize> {
    let p = pattern.as_bytes();
    let (mut pi, mut ii) = (0, 0);
    while pi < p.len() {
        let c = *input.get(ii)?;
        if p[pi] == b'[' {
            let (lo, hi) = (p[pi + 1], p[pi + 3]);
            if !(lo..=hi).contains(&c) {
                return None;
            }
            pi += 5;
        } else if p[pi] == b'd' {
            if !c.is_ascii_digit() {
                return None;
            }
            pi += 1;
        } else {
            if c != p[pi] {
                return None;
            }
            pi += 1;
        }
        ii += 1;
    }
    Some(ii)
}

/// The first match of the directives' regex at the start of `input` (Python's `re.match`,
/// which backtracks into earlier alternatives only when a later directive cannot match).
fn regex_match(directives: &[Directive], input: &[u8], captures: &mut Vec<u32>) -> Option<usize> {
    let Some((&first, rest)) = directives.split_first() else {
        return Some(0);
    };
    if let Directive::Literal(byte) = first {
        if input.first() != Some(&byte) {
            return None;
        }
        return regex_match(rest, &input[1..], captures).map(|n| n + 1);
    }
    for pattern in alternatives(first) {
        let Some(length) = match_pattern(pattern, input) else {
            continue;
        };
        let text = std::str::from_utf8(&input[..length]).ok()?;
        captures.push(text.trim().parse().ok()?);
        if let Some(n) = regex_match(rest, &input[length..], captures) {
            return Some(length + n);
        }
        captures.pop();
    }
    None
}

/// `datetime.strptime(text, format)` for the formats used here: the regex must match at the
/// start, then consume everything ("unconverted data remains" otherwise), then the values
/// must make a real date.
fn strptime(text: &str, directives: &[Directive]) -> Option<NaiveDateTime> {
    let mut captures = Vec::new();
    let length = regex_match(directives, text.as_bytes(), &mut captures)?;
    if length != text.len() {
        return None;
    }
    let mut values = captures.into_iter();
    let (mut hour, mut minute, mut year, mut month, mut day) = (0, 0, 1900, 1, 1);
    for directive in directives {
        let slot = match directive {
            Directive::Hour => &mut hour,
            Directive::Minute => &mut minute,
            Directive::Year => &mut year,
            Directive::Month => &mut month,
            Directive::Day => &mut day,
            Directive::Literal(_) => continue,
        };
        *slot = values.next()?;
    }
    if year < 1 {
        return None;
    }
    NaiveDate::from_ymd_opt(i32::try_from(year).ok()?, month, day)?.and_hms_opt(hour, minute, 0)
}

/// `strptime(text, "%H:%M_%Y%m%d")` (server, `underscore`) or `"%H:%M%Y%m%d"` (graphite).
fn strptime_hm_ymd(text: &str, underscore: bool) -> Option<NaiveDateTime> {
    use Directive::{Day, Hour, Literal, Minute, Month, Year};
    if underscore {
        strptime(
            text,
            &[Hour, Literal(b':'), Minute, Literal(b'_'), Year, Month, Day],
        )
    } else {
        strptime(text, &[Hour, Literal(b':'), Minute, Year, Month, Day])
    }
}

fn strptime_ymd(text: &str) -> Option<NaiveDateTime> {
    strptime(text, &[Directive::Year, Directive::Month, Directive::Day])
}

/// Graphite's `parseATTime` for the strings the server lets through, in UTC. `None` where
/// graphite raises (and answers 500).
pub(crate) fn graphite_parse_time(text: &str, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let s: String = text
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| !matches!(c, '_' | ',' | ' '))
        .collect();
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) && !is_date_shaped(&s) {
        let seconds = i64::try_from(s.parse::<u128>().ok()?).ok()?;
        return in_python_range(DateTime::from_timestamp(seconds, 0)?);
    }
    if s.contains(':') {
        return strptime_hm_ymd(&s, false).map(|t| t.and_utc());
    }
    let (reference, offset) = match s.find(['+', '-']) {
        Some(at) => s.split_at(at),
        None => (s.as_str(), ""),
    };
    let midnight = now.date_naive().and_hms_opt(0, 0, 0)?.and_utc();
    let base = match reference {
        "" | "now" => now,
        "today" => midnight,
        "yesterday" => midnight.checked_sub_signed(TimeDelta::days(1))?,
        "tomorrow" => midnight.checked_add_signed(TimeDelta::days(1))?,
        digits if digits.len() == 8 && digits.bytes().all(|b| b.is_ascii_digit()) => {
            strptime_ymd(digits)?.and_utc()
        }
        _ => return None,
    };
    let offset = graphite_parse_offset(offset)?;
    in_python_range(base.checked_add_signed(offset)?)
}

/// Graphite's `getUnitString`: a prefix match.
fn graphite_unit_seconds(unit: &str) -> Option<i128> {
    Some(if unit.starts_with('s') {
        1
    } else if unit.starts_with("min") {
        60
    } else if unit.starts_with('h') {
        3_600
    } else if unit.starts_with('d') {
        86_400
    } else if unit.starts_with('w') {
        604_800
    } else if unit.starts_with("mon") {
        30 * 86_400
    } else if unit.starts_with('y') {
        365 * 86_400
    } else {
        return None;
    })
}

/// The largest `timedelta`: 999 999 999 days (and a day less a microsecond).
const MAX_TIMEDELTA_SECONDS: i128 = 999_999_999 * 86_400 + 86_399;

/// Graphite's `parseTimeOffset`: `[+-]?(<digits><letters>)*`.
pub(crate) fn graphite_parse_offset(offset: &str) -> Option<TimeDelta> {
    if offset.is_empty() {
        return Some(TimeDelta::zero());
    }
    let (sign, mut rest) = match offset.as_bytes()[0] {
        b'+' => (1, &offset[1..]),
        b'-' => (-1, &offset[1..]),
        b'0'..=b'9' => (1, offset),
        _ => return None,
    };
    let mut total: i128 = 0;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        let count: i128 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let letters = rest.bytes().take_while(u8::is_ascii_alphabetic).count();
        let unit = graphite_unit_seconds(&rest[..letters])?;
        rest = &rest[letters..];
        let part = count.checked_mul(unit)?;
        if part > MAX_TIMEDELTA_SECONDS {
            return None;
        }
        total = total.checked_add(sign * part)?;
        if total.abs() > MAX_TIMEDELTA_SECONDS {
            return None;
        }
    }
    TimeDelta::try_seconds(i64::try_from(total).ok()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> DateTime<Utc> {
        NaiveDate::from_ymd_opt(y, mo, d)
            .and_then(|d| d.and_hms_opt(h, mi, s))
            .map(|t| t.and_utc())
            .unwrap()
    }

    #[test]
    fn server_parser_matches_upstream_tests() {
        let now = at(2015, 2, 1, 0, 0, 0);
        let later = at(2015, 1, 24, 10, 15, 25);
        // test_parse_time_with_interval
        assert_eq!(server_parse_time("-0s", now), Some(now));
        assert_eq!(
            server_parse_time("-1s", now),
            Some(at(2015, 1, 31, 23, 59, 59))
        );
        assert_eq!(
            server_parse_time("-2w", now),
            Some(at(2015, 1, 18, 0, 0, 0))
        );
        assert_eq!(
            server_parse_time("-2w", later),
            Some(at(2015, 1, 10, 10, 15, 25))
        );
        // test_parse_time_special_values
        assert_eq!(server_parse_time("today", later), Some(later));
        assert_eq!(
            server_parse_time("yesterday", now),
            Some(at(2015, 1, 31, 0, 0, 0))
        );
        assert_eq!(
            server_parse_time("tomorrow", later),
            Some(at(2015, 1, 25, 10, 15, 25))
        );
        // test_parse_time_absolute_datetime / _date / _unix_timestamp
        assert_eq!(
            server_parse_time("00:00_19700101", now),
            Some(at(1970, 1, 1, 0, 0, 0))
        );
        assert_eq!(
            server_parse_time("99991231", now),
            Some(at(9999, 12, 31, 0, 0, 0))
        );
        assert_eq!(
            server_parse_time("19010101", now),
            Some(at(1901, 1, 1, 0, 0, 0))
        );
        assert_eq!(
            server_parse_time("19000101", now),
            Some(at(1970, 8, 8, 21, 48, 21))
        );
        assert_eq!(
            server_parse_time("20150132", now),
            Some(at(1970, 8, 22, 5, 15, 32))
        );
        assert_eq!(
            server_parse_time("20151301", now),
            Some(at(1970, 8, 22, 5, 35, 1))
        );
        // test_parse_time_with_invalid_*
        for bad in [
            "-0",
            "-12",
            "-12fortnights",
            "-20150101",
            "",
            "blahblah",
            "20150231",
            "2015_02_01",
            "12:35 20150201",
            "12:3520150201",
            "12/31/99",
            "6pm today",
            "noon tomorrow",
            "january 1",
            "monday",
        ] {
            assert_eq!(server_parse_time(bad, now), None, "{bad}");
        }
        // Python's strptime is lenient about digit counts.
        assert_eq!(
            server_parse_time("1:5_2015021", now),
            Some(at(2015, 2, 1, 1, 5, 0))
        );
        assert_eq!(server_parse_time("01:05_201502011", now), None);
    }

    #[test]
    fn interval_parser_matches_upstream_tests() {
        for bad in ["", "s", "1", "three days", "-1h", "2fortnights"] {
            assert_eq!(interval_to_seconds(bad), None, "{bad}");
        }
        assert_eq!(interval_to_seconds("012s"), Some(12));
        assert_eq!(interval_to_seconds("1234567min"), Some(74_074_020));
        assert_eq!(interval_to_seconds("014d"), Some(1_209_600));
        assert_eq!(interval_to_seconds("123mon"), Some(318_816_000));
        assert_eq!(interval_to_seconds("02y"), Some(63_072_000));
        assert_eq!(interval_to_seconds("0s"), Some(0));
    }

    #[test]
    fn graphite_reads_named_days_as_midnight() {
        let now = at(2015, 1, 24, 10, 15, 25);
        assert_eq!(
            graphite_parse_time("today", now),
            Some(at(2015, 1, 24, 0, 0, 0))
        );
        assert_eq!(
            graphite_parse_time("yesterday", now),
            Some(at(2015, 1, 23, 0, 0, 0))
        );
        assert_eq!(
            graphite_parse_time("-1d", now),
            Some(at(2015, 1, 23, 10, 15, 25))
        );
        assert_eq!(graphite_parse_time("-0s", now), Some(now));
        assert_eq!(
            graphite_parse_time("20150201", now),
            Some(at(2015, 2, 1, 0, 0, 0))
        );
        assert_eq!(
            graphite_parse_time("12:00_20150201", now),
            Some(at(2015, 2, 1, 12, 0, 0))
        );
        assert_eq!(
            graphite_parse_time("1422748800", now),
            Some(at(2015, 2, 1, 0, 0, 0))
        );
        assert_eq!(graphite_parse_offset("1hour"), Some(TimeDelta::hours(1)));
        assert_eq!(graphite_parse_offset("1000000000d"), None);
    }
}
