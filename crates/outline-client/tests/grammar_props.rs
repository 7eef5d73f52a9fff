//! The crate's other hand-written readers held to independent oracles on generated and
//! arbitrary text: `Since` (the server metrics range, `^[0-9]+(\.[0-9]+)?[shdw]$` to whole
//! seconds) and `CertSha256` (64 hex digits, `:` only between bytes). Fixed seed, bounded
//! cases, no failure files.

use outline_client::{CertSha256, Since};
use proptest::prelude::*;
use proptest::sample::select;
use proptest::test_runner::{Config, RngSeed};

fn config(cases: u32) -> Config {
    Config {
        cases,
        rng_seed: RngSeed::Fixed(0x5157_6e63_6552_616e),
        failure_persistence: None,
        ..Config::default()
    }
}

fn unit_seconds(unit: char) -> Option<u128> {
    match unit {
        's' => Some(1),
        'h' => Some(3600),
        'd' => Some(86_400),
        'w' => Some(604_800),
        _ => None,
    }
}

/// The range `text` means, in whole seconds, by exact rational arithmetic on the grammar;
/// `None` for text outside it, a fractional number of seconds, or a range out of bounds.
fn since_oracle(text: &str) -> Option<u64> {
    let unit = unit_seconds(text.chars().last()?)?;
    let number = &text[..text.len() - 1];
    let (whole, fraction) = match number.split_once('.') {
        Some((whole, fraction)) => (whole, fraction),
        None => (number, ""),
    };
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(whole) || (number.contains('.') && !digits(fraction)) {
        return None;
    }
    // Leading zeros of the whole part and trailing zeros of the fraction do not count; what
    // is left must fit the arithmetic below, and anything longer is out of range or not whole.
    let whole = whole.trim_start_matches('0');
    let fraction = fraction.trim_end_matches('0');
    if whole.len() > 12 || fraction.len() > 20 {
        return None;
    }
    let scale = 10u128.pow(u32::try_from(fraction.len()).ok()?);
    let numerator =
        whole.parse::<u128>().unwrap_or(0) * scale + fraction.parse::<u128>().unwrap_or(0);
    let total = numerator * unit;
    if total % scale != 0 {
        return None;
    }
    let seconds = u64::try_from(total / scale).ok()?;
    (1..=Since::MAX_SECONDS)
        .contains(&seconds)
        .then_some(seconds)
}

/// A spelling of `seconds` in `unit` when it is an exact decimal, with padding zeros.
fn spell_since(seconds: u64, unit: char, leading: usize, trailing: usize) -> Option<String> {
    let unit_len = unit_seconds(unit)?;
    let seconds = u128::from(seconds);
    let whole = seconds / unit_len;
    let mut remainder = seconds % unit_len;
    let mut fraction = String::new();
    while remainder != 0 {
        if fraction.len() > 10 {
            return None; // not a terminating decimal
        }
        remainder *= 10;
        fraction.push(char::from(b'0' + u8::try_from(remainder / unit_len).ok()?));
        remainder %= unit_len;
    }
    fraction.push_str(&"0".repeat(trailing));
    let point = if fraction.is_empty() { "" } else { "." };
    Some(format!(
        "{}{whole}{point}{fraction}{unit}",
        "0".repeat(leading)
    ))
}

proptest! {
    #![proptest_config(config(2000))]

    #[test]
    fn since_reads_exact_spellings(
        seconds in prop_oneof![1u64..=Since::MAX_SECONDS, 0u64..4_000_000],
        unit in select(&['s', 'h', 'd', 'w'][..]),
        leading in 0usize..3,
        trailing in prop_oneof![Just(0usize), 0usize..30],
    ) {
        if let Some(text) = spell_since(seconds, unit, leading, trailing) {
            let expected = (1..=Since::MAX_SECONDS).contains(&seconds).then_some(seconds);
            prop_assert_eq!(text.parse::<Since>().ok().map(Since::as_secs), expected, "{}", text);
            prop_assert_eq!(since_oracle(&text), expected, "{}", text);
        }
    }

    #[test]
    fn since_agrees_with_exact_arithmetic(
        whole in prop_oneof!["[0-9]{1,8}", "0{0,30}[0-9]{1,3}"],
        fraction in prop_oneof![Just(None), "[0-9]{0,14}".prop_map(Some), "[0-9]{0,3}0{0,25}".prop_map(Some)],
        unit in select(&['s', 'h', 'd', 'w', 'm', 'S', ' '][..]),
    ) {
        let text = match fraction {
            Some(fraction) => format!("{whole}.{fraction}{unit}"),
            None => format!("{whole}{unit}"),
        };
        prop_assert_eq!(text.parse::<Since>().ok().map(Since::as_secs), since_oracle(&text), "{}", text);
    }

    #[test]
    fn since_refuses_what_the_oracle_refuses_in_any_text(text in prop_oneof![".{0,12}", "[0-9.shdw+-e ]{0,12}"]) {
        prop_assert_eq!(text.parse::<Since>().ok().map(Since::as_secs), since_oracle(&text), "{:?}", text);
    }

    #[test]
    fn since_round_trips(seconds in 1u64..=Since::MAX_SECONDS) {
        let since = Since::from_secs(seconds).expect("in range");
        prop_assert_eq!(since.to_string().parse::<Since>().ok(), Some(since));
    }
}

/// The 32 bytes `text` spells: 64 hex digits after trimming, in either case, `:` allowed
/// only where a byte ends.
fn cert_oracle(text: &str) -> Option<[u8; 32]> {
    let mut nibbles = Vec::new();
    for ch in text.trim().chars() {
        if ch == ':' {
            if nibbles.len() % 2 == 1 {
                return None;
            }
            continue;
        }
        nibbles.push(u8::try_from(ch.to_digit(16)?).ok()?);
    }
    if nibbles.len() != 64 {
        return None;
    }
    let mut bytes = [0u8; 32];
    for (byte, pair) in bytes.iter_mut().zip(nibbles.chunks(2)) {
        *byte = pair[0] << 4 | pair[1];
    }
    Some(bytes)
}

proptest! {
    #![proptest_config(config(2000))]

    #[test]
    fn cert_pins_round_trip_in_every_spelling(
        bytes in any::<[u8; 32]>(),
        lower in any::<bool>(),
        colons in any::<bool>(),
        padding in "[ \t\n]{0,2}",
    ) {
        let pin = CertSha256::from_bytes(bytes);
        let mut text = pin.to_string();
        if lower {
            text = text.to_lowercase();
        }
        if colons {
            text = text.as_bytes().chunks(2).map(|pair| String::from_utf8_lossy(pair).into_owned()).collect::<Vec<_>>().join(":");
        }
        let text = format!("{padding}{text}{padding}");
        prop_assert_eq!(text.parse::<CertSha256>().ok(), Some(pin));
        prop_assert_eq!(cert_oracle(&text), Some(bytes));
    }

    #[test]
    fn cert_pins_agree_with_the_oracle(
        text in prop_oneof![
            "[0-9a-fA-F]{60,68}",
            "([0-9a-fA-F]{1,3}:){20,34}",
            "[0-9a-fA-F:g ]{0,80}",
            ".{0,70}",
        ],
    ) {
        let parsed = text.parse::<CertSha256>().ok().map(|pin| *pin.as_bytes());
        prop_assert_eq!(parsed, cert_oracle(&text), "{:?}", text);
    }
}
