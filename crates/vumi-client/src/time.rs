//! The time grammar of go-metrics-api: `from`/`until` times and the summarize `interval`.
//!
//! The server (0.2.0) parses `from`, `until` and `interval` itself to predict the response size,
//! then pastes them unchanged into the graphite render request. A value its parser rejects is
//! answered with HTTP 500 `Failed to retrieve metrics.`; a value it accepts but graphite rejects
//! with HTTP 500 `Got error response interacting with metrics backend`. Both are server errors
//! that a retrying client would send again, so this module only produces strings that both
//! parsers accept, and rejects everything else with an [`Error::InvalidInput`] before a
//! request is made.
//!
//! | form | [`TimeSpec`] | rendered |
//! |---|---|---|
//! | now | [`TimeSpec::now`] | `now` |
//! | named days | [`TimeSpec::today`], [`TimeSpec::yesterday`], [`TimeSpec::tomorrow`] | `today`, `yesterday`, `tomorrow` |
//! | relative | [`TimeSpec::ago`] | `-<n><unit>`, e.g. `-30d` |
//! | absolute time | [`TimeSpec::at`] | `HH:MM_YYYYMMDD` |
//! | absolute date | [`TimeSpec::date`] | `YYYYMMDD` |
//! | unix timestamp | [`TimeSpec::unix`], `DateTime<Utc>` | digits (see [`TimeSpec::unix`]) |
//!
//! ```
//! use vumi_client::time::{Interval, TimeSpec, TimeUnit};
//!
//! assert_eq!(TimeSpec::ago(30, TimeUnit::Days).to_string(), "-30d");
//! assert_eq!("00:00_20150201".parse::<TimeSpec>().unwrap().to_string(), "00:00_20150201");
//! assert!("noon".parse::<TimeSpec>().is_err());
//! assert_eq!("1hour".parse::<Interval>().unwrap().seconds(), 3600);
//! assert!("0s".parse::<Interval>().is_err());
//! ```
//!
//! Named days follow the server, not graphite: the server's size check reads `today` as *now*
//! and `yesterday`/`tomorrow` as now ∓ 24 h, while graphite reads them as midnight. The request
//! is sent as written either way; only the size check uses [`TimeSpec::resolve`].

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, Datelike, NaiveDate, NaiveDateTime, TimeDelta, Timelike, Utc};
use metrics_core::Error;

use crate::BACKEND;

/// The largest unix timestamp the server accepts: 9999-12-31 23:59:59 UTC (Python's
/// `datetime.utcfromtimestamp` fails after it).
pub const MAX_UNIX_SECONDS: u64 = 253_402_300_799;

/// The longest interval graphite can hold: Python's `timedelta` stops at 999 999 999 days.
pub const MAX_INTERVAL_SECONDS: u64 = 999_999_999 * 86_400;

/// A value that is not valid for the Vumi metrics API: a time, an interval or a metric name.
///
/// Converts into [`Error::InvalidInput`]; [`MetricsQuery`](crate::MetricsQuery) keeps it and
/// reports it when the query is sent, before any request is made.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseError {
    message: String,
}

impl ParseError {
    pub(crate) fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
        }
    }

    /// What is wrong.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ParseError {}

impl From<ParseError> for Error {
    fn from(error: ParseError) -> Self {
        Error::invalid_input(BACKEND, error.message)
    }
}

/// A unit of the relative-time and interval grammar.
///
/// Months are 30 days and years 365 days, as both the server and graphite count them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TimeUnit {
    /// `s`, `second`, `seconds`.
    Seconds,
    /// `min`, `mins`, `minute`, `minutes`.
    Minutes,
    /// `h`, `hour`, `hours`.
    Hours,
    /// `d`, `day`, `days`.
    Days,
    /// `w`, `week`, `weeks`.
    Weeks,
    /// `mon`, `month`, `months` (30 days).
    Months,
    /// `y`, `year`, `years` (365 days).
    Years,
}

impl TimeUnit {
    /// Every unit, shortest first.
    pub const ALL: [Self; 7] = [
        Self::Seconds,
        Self::Minutes,
        Self::Hours,
        Self::Days,
        Self::Weeks,
        Self::Months,
        Self::Years,
    ];

    /// The unit's length in seconds.
    pub const fn seconds(self) -> u64 {
        match self {
            Self::Seconds => 1,
            Self::Minutes => 60,
            Self::Hours => 3_600,
            Self::Days => 86_400,
            Self::Weeks => 604_800,
            Self::Months => 2_592_000,
            Self::Years => 31_536_000,
        }
    }

    /// The spelling sent to the server: `s`, `min`, `h`, `d`, `w`, `mon`, `y`.
    pub const fn suffix(self) -> &'static str {
        match self {
            Self::Seconds => "s",
            Self::Minutes => "min",
            Self::Hours => "h",
            Self::Days => "d",
            Self::Weeks => "w",
            Self::Months => "mon",
            Self::Years => "y",
        }
    }

    /// Reads any spelling the server accepts (case-sensitive, as the server is).
    pub fn from_suffix(suffix: &str) -> Option<Self> {
        spelling(suffix).map(|(unit, _)| unit)
    }
}

/// Every spelling the server accepts, with its unit.
const SPELLINGS: [(&str, TimeUnit); 22] = [
    ("s", TimeUnit::Seconds),
    ("second", TimeUnit::Seconds),
    ("seconds", TimeUnit::Seconds),
    ("min", TimeUnit::Minutes),
    ("mins", TimeUnit::Minutes),
    ("minute", TimeUnit::Minutes),
    ("minutes", TimeUnit::Minutes),
    ("h", TimeUnit::Hours),
    ("hour", TimeUnit::Hours),
    ("hours", TimeUnit::Hours),
    ("d", TimeUnit::Days),
    ("day", TimeUnit::Days),
    ("days", TimeUnit::Days),
    ("w", TimeUnit::Weeks),
    ("week", TimeUnit::Weeks),
    ("weeks", TimeUnit::Weeks),
    ("mon", TimeUnit::Months),
    ("month", TimeUnit::Months),
    ("months", TimeUnit::Months),
    ("y", TimeUnit::Years),
    ("year", TimeUnit::Years),
    ("years", TimeUnit::Years),
];

/// The unit and the static form of one of its spellings.
fn spelling(suffix: &str) -> Option<(TimeUnit, &'static str)> {
    SPELLINGS
        .iter()
        .find(|(text, _)| *text == suffix)
        .map(|(text, unit)| (*unit, *text))
}

const UNITS_HELP: &str = "s, min, h, d, w, mon or y (or their long forms: seconds, minutes, hours, days, weeks, months, years)";

/// Splits `<digits><unit>` into its count, unit and the unit's spelling.
fn parse_count_unit(text: &str) -> Result<(u64, TimeUnit, &'static str), String> {
    let digits = text.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 {
        return Err("it must start with a whole number".to_owned());
    }
    let (count, unit) = text.split_at(digits);
    let (unit, suffix) = spelling(unit).ok_or_else(|| {
        if unit.is_empty() {
            format!("the number has no unit; add one of {UNITS_HELP}")
        } else {
            format!("`{unit}` is not a unit; use {UNITS_HELP}")
        }
    })?;
    let count = count
        .parse::<u64>()
        .map_err(|_| "the number is too large".to_owned())?;
    Ok((count, unit, suffix))
}

/// A count of units, with the unit spelled as it was written (`1day` stays `1day`); equal
/// when count and unit are.
#[derive(Clone, Copy, Debug)]
struct Span {
    amount: u64,
    unit: TimeUnit,
    suffix: &'static str,
}

impl Span {
    const fn new(amount: u64, unit: TimeUnit) -> Self {
        Self {
            amount,
            unit,
            suffix: unit.suffix(),
        }
    }
}

impl PartialEq for Span {
    fn eq(&self, other: &Self) -> bool {
        (self.amount, self.unit) == (other.amount, other.unit)
    }
}

impl Eq for Span {}

impl std::hash::Hash for Span {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        (self.amount, self.unit).hash(state);
    }
}

impl fmt::Display for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.amount, self.suffix)
    }
}

/// The size of a graphite `summarize` bucket: `<n><unit>`, n > 0.
///
/// ```
/// use vumi_client::time::{Interval, TimeUnit};
///
/// let day = Interval::days(1).unwrap();
/// assert_eq!(day.to_string(), "1d");
/// assert_eq!(day.seconds(), 86_400);
/// assert_eq!("012min".parse::<Interval>().unwrap(), Interval::new(12, TimeUnit::Minutes).unwrap());
/// assert!(Interval::hours(0).is_err()); // the server divides by it: HTTP 500
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Interval(Span);

impl Interval {
    /// The server's default, `1hour`.
    pub const DEFAULT: Self = Self(Span::new(1, TimeUnit::Hours));

    /// `amount` units.
    ///
    /// # Errors
    ///
    /// A zero amount (the server divides by the interval and answers HTTP 500), or an
    /// interval longer than [`MAX_INTERVAL_SECONDS`] (graphite fails on it).
    pub fn new(amount: u64, unit: TimeUnit) -> Result<Self, ParseError> {
        if amount == 0 {
            return Err(ParseError::new(
                "the interval must not be zero: the server divides by it and answers HTTP 500",
            ));
        }
        match amount.checked_mul(unit.seconds()) {
            Some(seconds) if seconds <= MAX_INTERVAL_SECONDS => Ok(Self(Span::new(amount, unit))),
            _ => Err(ParseError::new(format!(
                "the interval {amount}{} is longer than graphite's limit of 999999999 days",
                unit.suffix()
            ))),
        }
    }

    /// `n` seconds.
    ///
    /// # Errors
    ///
    /// As [`Interval::new`].
    pub fn seconds_of(n: u64) -> Result<Self, ParseError> {
        Self::new(n, TimeUnit::Seconds)
    }

    /// `n` minutes.
    ///
    /// # Errors
    ///
    /// As [`Interval::new`].
    pub fn minutes(n: u64) -> Result<Self, ParseError> {
        Self::new(n, TimeUnit::Minutes)
    }

    /// `n` hours.
    ///
    /// # Errors
    ///
    /// As [`Interval::new`].
    pub fn hours(n: u64) -> Result<Self, ParseError> {
        Self::new(n, TimeUnit::Hours)
    }

    /// `n` days.
    ///
    /// # Errors
    ///
    /// As [`Interval::new`].
    pub fn days(n: u64) -> Result<Self, ParseError> {
        Self::new(n, TimeUnit::Days)
    }

    /// `n` weeks.
    ///
    /// # Errors
    ///
    /// As [`Interval::new`].
    pub fn weeks(n: u64) -> Result<Self, ParseError> {
        Self::new(n, TimeUnit::Weeks)
    }

    /// `n` months of 30 days.
    ///
    /// # Errors
    ///
    /// As [`Interval::new`].
    pub fn months(n: u64) -> Result<Self, ParseError> {
        Self::new(n, TimeUnit::Months)
    }

    /// `n` years of 365 days.
    ///
    /// # Errors
    ///
    /// As [`Interval::new`].
    pub fn years(n: u64) -> Result<Self, ParseError> {
        Self::new(n, TimeUnit::Years)
    }

    /// A whole number of seconds, written in the largest unit that divides it exactly
    /// (`3600 s` → `1h`).
    ///
    /// # Errors
    ///
    /// A duration that is zero or not a whole number of seconds, or too long.
    pub fn from_duration(duration: Duration) -> Result<Self, ParseError> {
        if duration.subsec_nanos() != 0 {
            return Err(ParseError::new(format!(
                "the interval must be a whole number of seconds, not {duration:?}"
            )));
        }
        let seconds = duration.as_secs();
        let unit = TimeUnit::ALL
            .into_iter()
            .rev()
            .find(|unit| seconds.is_multiple_of(unit.seconds()))
            .unwrap_or(TimeUnit::Seconds);
        Self::new(seconds / unit.seconds(), unit)
    }

    /// The count.
    pub fn amount(self) -> u64 {
        self.0.amount
    }

    /// The unit.
    pub fn unit(self) -> TimeUnit {
        self.0.unit
    }

    /// The length in seconds.
    pub fn seconds(self) -> u64 {
        // Bounded by MAX_INTERVAL_SECONDS in the constructor.
        self.0.amount * self.0.unit.seconds()
    }
}

impl Default for Interval {
    fn default() -> Self {
        Self::DEFAULT
    }
}

impl fmt::Display for Interval {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl FromStr for Interval {
    type Err = ParseError;

    /// Reads `<digits><unit>` in any spelling the server accepts (`1hour`, `012min`, `2w`);
    /// the unit is sent as spelled, the count without leading zeros.
    fn from_str(text: &str) -> Result<Self, ParseError> {
        let (amount, unit, suffix) = parse_count_unit(text).map_err(|reason| {
            ParseError::new(format!(
                "`{text}` is not an interval the Vumi metrics API accepts: {reason}"
            ))
        })?;
        let Self(span) = Self::new(amount, unit)?;
        Ok(Self(Span { suffix, ..span }))
    }
}

impl TryFrom<&str> for Interval {
    type Error = ParseError;

    fn try_from(text: &str) -> Result<Self, ParseError> {
        text.parse()
    }
}

impl TryFrom<String> for Interval {
    type Error = ParseError;

    fn try_from(text: String) -> Result<Self, ParseError> {
        text.parse()
    }
}

/// Lets a constructor's result be passed on as is: `with_interval(Interval::hours(1))`.
impl TryFrom<Result<Interval, ParseError>> for Interval {
    type Error = ParseError;

    fn try_from(result: Result<Interval, ParseError>) -> Result<Self, ParseError> {
        result
    }
}

impl TryFrom<Duration> for Interval {
    type Error = ParseError;

    fn try_from(duration: Duration) -> Result<Self, ParseError> {
        Self::from_duration(duration)
    }
}

/// A `from` or `until` time in the grammar the server and graphite both accept.
///
/// Build one with the constructors, parse one from text (`"-30d".parse()`), or convert a
/// `DateTime<Utc>` (sent as a unix timestamp, sub-second part dropped).
///
/// ```
/// use chrono::{NaiveDate, TimeZone, Utc};
/// use vumi_client::time::TimeSpec;
///
/// let date = NaiveDate::from_ymd_opt(2015, 2, 1).unwrap();
/// assert_eq!(TimeSpec::date(date).unwrap().to_string(), "20150201");
/// let at = date.and_hms_opt(12, 30, 0).unwrap();
/// assert_eq!(TimeSpec::at(at).unwrap().to_string(), "12:30_20150201");
/// let instant = Utc.timestamp_opt(1_422_748_800, 0).unwrap();
/// assert_eq!(TimeSpec::try_from(instant).unwrap().to_string(), "1422748800");
/// assert!("20150231".parse::<TimeSpec>().is_err()); // not a real date
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TimeSpec(Repr);

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Repr {
    Now,
    Today,
    Yesterday,
    Tomorrow,
    Ago(Span),
    At(NaiveDateTime),
    Date(NaiveDate),
    Unix(u64),
}

const TIME_HELP: &str = "use now, today, yesterday, tomorrow, -<n><unit> (e.g. -30d), HH:MM_YYYYMMDD, YYYYMMDD or a unix timestamp";

impl TimeSpec {
    /// `now`.
    pub const fn now() -> Self {
        Self(Repr::Now)
    }

    /// `today`: now for the server's size check (graphite reads it as midnight).
    pub const fn today() -> Self {
        Self(Repr::Today)
    }

    /// `yesterday`.
    pub const fn yesterday() -> Self {
        Self(Repr::Yesterday)
    }

    /// `tomorrow`.
    pub const fn tomorrow() -> Self {
        Self(Repr::Tomorrow)
    }

    /// `-<amount><unit>`: that long before now. `ago(0, Seconds)` is the server's default
    /// `until`, `-0s`. A time before the year 1 is rejected when the query is sent.
    pub const fn ago(amount: u64, unit: TimeUnit) -> Self {
        Self(Repr::Ago(Span::new(amount, unit)))
    }

    /// `HH:MM_YYYYMMDD`, UTC.
    ///
    /// # Errors
    ///
    /// When `at` has seconds or a fraction (the form has minutes only: convert the
    /// `DateTime` instead to send an exact timestamp) or a year outside 1..=9999.
    pub fn at(at: NaiveDateTime) -> Result<Self, ParseError> {
        if at.second() != 0 || at.nanosecond() != 0 {
            return Err(ParseError::new(format!(
                "{at} has seconds, but HH:MM_YYYYMMDD has minutes only; send a DateTime (a unix timestamp) for an exact time"
            )));
        }
        if !(1..=9999).contains(&at.year()) {
            return Err(ParseError::new(format!(
                "the year {} is outside 1..=9999",
                at.year()
            )));
        }
        Ok(Self(Repr::At(at)))
    }

    /// `YYYYMMDD`, midnight UTC.
    ///
    /// # Errors
    ///
    /// For years up to 1900 or after 9999: the server and graphite read such eight digits
    /// as a unix timestamp, not a date.
    pub fn date(date: NaiveDate) -> Result<Self, ParseError> {
        if !(1901..=9999).contains(&date.year()) {
            return Err(ParseError::new(format!(
                "the date {date} cannot be sent as YYYYMMDD: the server reads eight digits as a date only for years after 1900 (use TimeSpec::at or a DateTime)"
            )));
        }
        Ok(Self(Repr::Date(date)))
    }

    /// A unix timestamp in seconds, UTC.
    ///
    /// An eight-digit timestamp that looks like `YYYYMMDD` (year > 1900, month < 13,
    /// day < 32; all are in 1970) is sent with a leading `0`, which both the server and
    /// graphite still read as a timestamp.
    ///
    /// # Errors
    ///
    /// After [`MAX_UNIX_SECONDS`] (the year 9999).
    pub fn unix(seconds: u64) -> Result<Self, ParseError> {
        if seconds > MAX_UNIX_SECONDS {
            return Err(ParseError::new(format!(
                "the unix timestamp {seconds} is after the year 9999 (the largest the server accepts is {MAX_UNIX_SECONDS})"
            )));
        }
        Ok(Self(Repr::Unix(seconds)))
    }

    /// A `DateTime` as a unix timestamp; the sub-second part is dropped.
    ///
    /// # Errors
    ///
    /// Before 1970 (the server has no negative timestamps) or after the year 9999.
    pub fn from_datetime(time: DateTime<Utc>) -> Result<Self, ParseError> {
        let seconds = u64::try_from(time.timestamp()).map_err(|_| {
            ParseError::new(format!(
                "{time} is before 1970; the server accepts no negative unix timestamps"
            ))
        })?;
        Self::unix(seconds)
    }

    /// Whether the time is fixed (absolute time, date or timestamp) rather than relative to
    /// now.
    pub fn is_absolute(&self) -> bool {
        matches!(self.0, Repr::At(_) | Repr::Date(_) | Repr::Unix(_))
    }

    /// The instant the server's size check reads this as, given its `now` (UTC); `None`
    /// when it is outside the years 1..=9999 (the server answers HTTP 500).
    pub fn resolve(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let day = TimeDelta::days(1);
        let resolved = match self.0 {
            Repr::Now | Repr::Today => Some(now),
            Repr::Yesterday => now.checked_sub_signed(day),
            Repr::Tomorrow => now.checked_add_signed(day),
            Repr::Ago(Span { amount, unit, .. }) => {
                let seconds = i64::try_from(u128::from(amount) * u128::from(unit.seconds())).ok();
                seconds
                    .and_then(TimeDelta::try_seconds)
                    .and_then(|delta| now.checked_sub_signed(delta))
            }
            Repr::At(at) => Some(at.and_utc()),
            Repr::Date(date) => date.and_hms_opt(0, 0, 0).map(|d| d.and_utc()),
            Repr::Unix(seconds) => i64::try_from(seconds)
                .ok()
                .and_then(|s| DateTime::from_timestamp(s, 0)),
        }?;
        (1..=9999).contains(&resolved.year()).then_some(resolved)
    }

    /// Whether graphite reads this as an exact instant: `HH:MM_YYYYMMDD` and timestamps.
    /// (Graphite's `YYYYMMDD` carries the current sub-second part.)
    pub(crate) fn is_exact_instant(&self) -> bool {
        matches!(self.0, Repr::At(_) | Repr::Unix(_))
    }
}

impl fmt::Display for TimeSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Repr::Now => f.write_str("now"),
            Repr::Today => f.write_str("today"),
            Repr::Yesterday => f.write_str("yesterday"),
            Repr::Tomorrow => f.write_str("tomorrow"),
            Repr::Ago(span) => write!(f, "-{span}"),
            Repr::At(at) => write!(
                f,
                "{:02}:{:02}_{:04}{:02}{:02}",
                at.hour(),
                at.minute(),
                at.year(),
                at.month(),
                at.day()
            ),
            Repr::Date(date) => {
                write!(f, "{:04}{:02}{:02}", date.year(), date.month(), date.day())
            }
            Repr::Unix(seconds) => {
                let digits = seconds.to_string();
                if looks_like_date(&digits) {
                    // Eight digits shaped like YYYYMMDD would be read as a date.
                    write!(f, "0{digits}")
                } else {
                    f.write_str(&digits)
                }
            }
        }
    }
}

/// The test the server and graphite use to read eight digits as `YYYYMMDD`.
fn looks_like_date(digits: &str) -> bool {
    let field = |range: std::ops::Range<usize>| {
        digits
            .get(range)
            .and_then(|s| s.parse::<u32>().ok())
            .unwrap_or(u32::MAX)
    };
    digits.len() == 8
        && digits.bytes().all(|b| b.is_ascii_digit())
        && field(0..4) > 1900
        && field(4..6) < 13
        && field(6..8) < 32
}

impl FromStr for TimeSpec {
    type Err = ParseError;

    /// Reads the client grammar: the subset of the server's grammar that graphite reads the
    /// same way. Case-sensitive, as the server is.
    fn from_str(text: &str) -> Result<Self, ParseError> {
        let fail = |reason: &str| {
            ParseError::new(format!(
                "`{text}` is not a time the Vumi metrics API accepts: {reason}; {TIME_HELP}"
            ))
        };
        match text {
            "" => {
                return Err(fail(
                    "it is empty (the server would silently use its default)",
                ));
            }
            "now" => return Ok(Self::now()),
            "today" => return Ok(Self::today()),
            "yesterday" => return Ok(Self::yesterday()),
            "tomorrow" => return Ok(Self::tomorrow()),
            _ => {}
        }
        if let Some(relative) = text.strip_prefix('-') {
            let (amount, unit, suffix) = parse_count_unit(relative).map_err(|reason| {
                ParseError::new(format!(
                    "`{text}` is not a time the Vumi metrics API accepts: a relative time is -<n><unit>, and {reason}"
                ))
            })?;
            return Ok(Self(Repr::Ago(Span {
                amount,
                unit,
                suffix,
            })));
        }
        if text.contains(':') {
            return parse_hh_mm_date(text).ok_or_else(|| fail("HH:MM_YYYYMMDD needs two-digit hours (00-23) and minutes (00-59), `_`, and a real date"));
        }
        if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
            if looks_like_date(text) {
                let date = NaiveDate::parse_from_str(text, "%Y%m%d")
                    .map_err(|_| fail("it has the YYYYMMDD shape but is not a real date"))?;
                return Self::date(date).map_err(|e| fail(e.message()));
            }
            let seconds = text
                .parse::<u64>()
                .map_err(|_| fail("the timestamp is too large"))?;
            return Self::unix(seconds).map_err(|e| fail(e.message()));
        }
        Err(fail(
            "graphite forms such as `+` offsets, `now-1d`, `noon`, `6pm`, month or weekday names and MM/DD/YY are not accepted by the server",
        ))
    }
}

/// `^([01][0-9]|2[0-3]):[0-5][0-9]_[0-9]{8}$` with a real date.
fn parse_hh_mm_date(text: &str) -> Option<TimeSpec> {
    let bytes = text.as_bytes();
    if bytes.len() != 14 || bytes[2] != b':' || bytes[5] != b'_' {
        return None;
    }
    let digits_at = |range: std::ops::Range<usize>| {
        let part = text.get(range)?;
        part.bytes()
            .all(|b| b.is_ascii_digit())
            .then(|| part.parse::<u32>().ok())
            .flatten()
    };
    let hour = digits_at(0..2)?;
    let minute = digits_at(3..5)?;
    digits_at(6..14)?;
    if hour > 23 || minute > 59 {
        return None;
    }
    let year = i32::try_from(digits_at(6..10)?).ok()?;
    let date = NaiveDate::from_ymd_opt(year, digits_at(10..12)?, digits_at(12..14)?)?;
    TimeSpec::at(date.and_hms_opt(hour, minute, 0)?).ok()
}

impl TryFrom<&str> for TimeSpec {
    type Error = ParseError;

    fn try_from(text: &str) -> Result<Self, ParseError> {
        text.parse()
    }
}

impl TryFrom<String> for TimeSpec {
    type Error = ParseError;

    fn try_from(text: String) -> Result<Self, ParseError> {
        text.parse()
    }
}

/// Lets a constructor's result be passed on as is: `with_from(TimeSpec::unix(t))`.
impl TryFrom<Result<TimeSpec, ParseError>> for TimeSpec {
    type Error = ParseError;

    fn try_from(result: Result<TimeSpec, ParseError>) -> Result<Self, ParseError> {
        result
    }
}

impl TryFrom<DateTime<Utc>> for TimeSpec {
    type Error = ParseError;

    fn try_from(time: DateTime<Utc>) -> Result<Self, ParseError> {
        Self::from_datetime(time)
    }
}

impl TryFrom<NaiveDate> for TimeSpec {
    type Error = ParseError;

    fn try_from(date: NaiveDate) -> Result<Self, ParseError> {
        Self::date(date)
    }
}

impl TryFrom<NaiveDateTime> for TimeSpec {
    type Error = ParseError;

    fn try_from(at: NaiveDateTime) -> Result<Self, ParseError> {
        Self::at(at)
    }
}

/// How many data points the server predicts for a query, exactly as its size check does:
/// `|until − from|` in whole seconds, integer-divided by the interval, times the number of
/// metrics (at least one). `None` when a time is outside the years 1..=9999.
///
/// ```
/// use chrono::Utc;
/// use vumi_client::time::{predicted_points, Interval, TimeSpec, TimeUnit};
///
/// let points = predicted_points(
///     &TimeSpec::ago(1, TimeUnit::Days),
///     &TimeSpec::now(),
///     Interval::seconds_of(10).unwrap(),
///     2,
///     Utc::now(),
/// );
/// assert_eq!(points, Some(17_280));
/// ```
pub fn predicted_points(
    from: &TimeSpec,
    until: &TimeSpec,
    interval: Interval,
    metric_count: usize,
    now: DateTime<Utc>,
) -> Option<u128> {
    let from = from.resolve(now)?;
    let until = until.resolve(now)?;
    let period = u128::from((until - from).num_seconds().unsigned_abs());
    let metrics = u128::try_from(metric_count.max(1)).unwrap_or(u128::MAX);
    Some((period / u128::from(interval.seconds())).saturating_mul(metrics))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> DateTime<Utc> {
        NaiveDate::from_ymd_opt(2015, 2, 1)
            .and_then(|d| d.and_hms_opt(0, 0, 0))
            .map(|d| d.and_utc())
            .unwrap()
    }

    #[test]
    fn unit_spellings() {
        for (spellings, seconds) in [
            (&["s", "second", "seconds"][..], 1),
            (&["min", "mins", "minute", "minutes"][..], 60),
            (&["h", "hour", "hours"][..], 3600),
            (&["d", "day", "days"][..], 86400),
            (&["w", "week", "weeks"][..], 604_800),
            (&["mon", "month", "months"][..], 2_592_000),
            (&["y", "year", "years"][..], 31_536_000),
        ] {
            for spelling in spellings {
                assert_eq!(
                    TimeUnit::from_suffix(spelling).map(TimeUnit::seconds),
                    Some(seconds)
                );
            }
        }
        assert_eq!(TimeUnit::from_suffix("m"), None);
        assert_eq!(TimeUnit::from_suffix("H"), None);
    }

    #[test]
    fn unix_timestamps_shaped_like_dates_get_a_leading_zero() {
        assert_eq!(TimeSpec::unix(20_150_101).unwrap().to_string(), "020150101");
        assert_eq!(TimeSpec::unix(19_000_101).unwrap().to_string(), "19000101");
        assert_eq!(TimeSpec::unix(20_150_132).unwrap().to_string(), "20150132");
        assert_eq!(
            "020150101".parse::<TimeSpec>().unwrap(),
            TimeSpec::unix(20_150_101).unwrap()
        );
    }

    #[test]
    fn resolve_bounds() {
        assert!(
            TimeSpec::ago(2014, TimeUnit::Years)
                .resolve(now())
                .is_some()
        );
        assert!(
            TimeSpec::ago(2016, TimeUnit::Years)
                .resolve(now())
                .is_none()
        );
        assert!(
            TimeSpec::ago(u64::MAX, TimeUnit::Years)
                .resolve(now())
                .is_none()
        );
    }
}
