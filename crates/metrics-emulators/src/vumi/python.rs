//! What the server's Python 2.7 runtime does with JSON and values: `json.loads` (with its
//! error messages and `NaN`/`Infinity` literals), `json.dumps`, `repr` and `float()`.

use std::fmt::Write as _;

/// A value as Python's `json.loads` returns it.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum PyValue {
    None,
    Bool(bool),
    /// An integer literal, kept as written (Python ints are unbounded).
    Int(String),
    Float(f64),
    Str(String),
    List(Vec<PyValue>),
    /// Keys in document order; a repeated key keeps its first position and last value.
    Dict(Vec<(String, PyValue)>),
}

impl PyValue {
    /// `type(value)` as Python 2 prints it.
    pub(crate) fn type_name(&self) -> &'static str {
        match self {
            Self::None => "<type 'NoneType'>",
            Self::Bool(_) => "<type 'bool'>",
            Self::Int(digits) => {
                if digits.parse::<i64>().is_ok() {
                    "<type 'int'>"
                } else {
                    "<type 'long'>"
                }
            }
            Self::Float(_) => "<type 'float'>",
            Self::Str(_) => "<type 'unicode'>",
            Self::List(_) => "<type 'list'>",
            Self::Dict(_) => "<type 'dict'>",
        }
    }

    /// `repr(value)` as Python 2 prints it.
    pub(crate) fn repr(&self) -> String {
        let mut out = String::new();
        self.repr_into(&mut out);
        out
    }

    fn repr_into(&self, out: &mut String) {
        match self {
            Self::None => out.push_str("None"),
            Self::Bool(true) => out.push_str("True"),
            Self::Bool(false) => out.push_str("False"),
            Self::Int(digits) => {
                out.push_str(digits);
                if digits.parse::<i64>().is_err() {
                    out.push('L');
                }
            }
            Self::Float(value) => out.push_str(&float_repr(*value)),
            Self::Str(text) => unicode_repr_into(text, out),
            Self::List(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    item.repr_into(out);
                }
                out.push(']');
            }
            Self::Dict(entries) => {
                out.push('{');
                for (i, (key, value)) in entries.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    unicode_repr_into(key, out);
                    out.push_str(": ");
                    value.repr_into(out);
                }
                out.push('}');
            }
        }
    }
}

/// What `float(value)` does.
pub(crate) enum FloatConversion {
    Ok(f64),
    /// `ValueError` or `TypeError`: the server answers 400.
    Invalid,
    /// `OverflowError` (an integer too large for a float): the server answers 500.
    Overflow,
}

/// Python's `float(value)`.
pub(crate) fn to_float(value: &PyValue) -> FloatConversion {
    match value {
        PyValue::Float(f) => FloatConversion::Ok(*f),
        PyValue::Bool(b) => FloatConversion::Ok(if *b { 1.0 } else { 0.0 }),
        PyValue::Int(digits) => match digits.parse::<f64>() {
            Ok(f) if f.is_finite() => FloatConversion::Ok(f),
            _ => FloatConversion::Overflow,
        },
        PyValue::Str(text) => {
            parse_float_str(text).map_or(FloatConversion::Invalid, FloatConversion::Ok)
        }
        PyValue::None | PyValue::List(_) | PyValue::Dict(_) => FloatConversion::Invalid,
    }
}

/// Python 2's `float(str)`: surrounding whitespace allowed, decimal and exponent forms,
/// `inf`/`infinity`/`nan` in any case with an optional sign.
fn parse_float_str(text: &str) -> Option<f64> {
    let trimmed = text.trim_matches(|c: char| c.is_whitespace());
    let unsigned = trimmed.strip_prefix(['+', '-']).unwrap_or(trimmed);
    let lower = unsigned.to_ascii_lowercase();
    if matches!(lower.as_str(), "inf" | "infinity" | "nan") {
        return trimmed.parse::<f64>().ok();
    }
    // Python's grammar: digits with an optional point (at least one digit) and exponent.
    let bytes = unsigned.as_bytes();
    let mut i = 0;
    let int_digits = bytes.iter().take_while(|b| b.is_ascii_digit()).count();
    i += int_digits;
    let mut frac_digits = 0;
    if bytes.get(i) == Some(&b'.') {
        i += 1;
        frac_digits = bytes[i..].iter().take_while(|b| b.is_ascii_digit()).count();
        i += frac_digits;
    }
    if int_digits + frac_digits == 0 {
        return None;
    }
    if matches!(bytes.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(bytes.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        let exp_digits = bytes[i..].iter().take_while(|b| b.is_ascii_digit()).count();
        if exp_digits == 0 {
            return None;
        }
        i += exp_digits;
    }
    if i != bytes.len() {
        return None;
    }
    trimmed.parse::<f64>().ok()
}

/// Python 2's `repr(float)`, as `json.dumps` also writes floats (`NaN`, `Infinity` for the
/// non-finite ones in JSON; `nan`, `inf` in `repr`).
pub(crate) fn float_repr(value: f64) -> String {
    if value.is_nan() {
        return "nan".to_owned();
    }
    if value.is_infinite() {
        return if value > 0.0 { "inf" } else { "-inf" }.to_owned();
    }
    // `{:e}` gives the shortest round-trip digits, as Python's repr does.
    let sci = format!("{value:e}");
    let (mantissa, exponent) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exponent: i32 = exponent.parse().unwrap_or(0);
    let negative = mantissa.starts_with('-');
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let mut out = String::new();
    if negative {
        out.push('-');
    }
    if (-4..16).contains(&exponent) {
        if exponent >= 0 {
            let point = usize::try_from(exponent).unwrap_or(0) + 1;
            if digits.len() <= point {
                out.push_str(&digits);
                out.extend(std::iter::repeat_n('0', point - digits.len()));
                out.push_str(".0");
            } else {
                out.push_str(&digits[..point]);
                out.push('.');
                out.push_str(&digits[point..]);
            }
        } else {
            out.push_str("0.");
            let zeros = usize::try_from(-exponent - 1).unwrap_or(0);
            out.extend(std::iter::repeat_n('0', zeros));
            out.push_str(&digits);
        }
    } else {
        out.push_str(&digits[..1]);
        if digits.len() > 1 {
            out.push('.');
            out.push_str(&digits[1..]);
        }
        let _ = write!(
            out,
            "e{}{:02}",
            if exponent < 0 { '-' } else { '+' },
            exponent.unsigned_abs()
        );
    }
    out
}

/// A float as `json.dumps` writes it.
pub(crate) fn json_float(value: f64) -> String {
    if value.is_nan() {
        "NaN".to_owned()
    } else if value.is_infinite() {
        if value > 0.0 { "Infinity" } else { "-Infinity" }.to_owned()
    } else {
        float_repr(value)
    }
}

/// A string as `json.dumps` writes it (`ensure_ascii=True`).
pub(crate) fn json_string_into(text: &str, out: &mut String) {
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if c.is_ascii() && !c.is_ascii_control() => out.push(c),
            c => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    let _ = write!(out, "\\u{unit:04x}");
                }
            }
        }
    }
    out.push('"');
}

/// A `unicode` value as Python 2's `repr` writes it: `u'…'`.
fn unicode_repr_into(text: &str, out: &mut String) {
    let quote = if text.contains('\'') && !text.contains('"') {
        '"'
    } else {
        '\''
    };
    out.push('u');
    out.push(quote);
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if (' '..='~').contains(&c) => out.push(c),
            c if u32::from(c) <= 0xff => {
                let _ = write!(out, "\\x{:02x}", u32::from(c));
            }
            c if u32::from(c) <= 0xffff => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => {
                let _ = write!(out, "\\U{:08x}", u32::from(c));
            }
        }
    }
    out.push(quote);
}

/// Python 2.7's `json.loads`, with its error messages.
pub(crate) fn loads(body: &[u8]) -> Result<PyValue, String> {
    let text = std::str::from_utf8(body).map_err(|e| {
        let position = e.valid_up_to();
        let byte = body.get(position).copied().unwrap_or(0);
        format!(
            "'utf8' codec can't decode byte 0x{byte:02x} in position {position}: invalid start byte"
        )
    })?;
    let mut parser = Parser {
        text,
        bytes: text.as_bytes(),
    };
    let start = parser.skip_ws(0);
    let Some((value, end)) = parser.value(start)? else {
        return Err("No JSON object could be decoded".to_owned());
    };
    let end_ws = parser.skip_ws(end);
    if end_ws != parser.bytes.len() {
        return Err(parser.errmsg_range("Extra data", end_ws, parser.bytes.len()));
    }
    Ok(value)
}

struct Parser<'a> {
    text: &'a str,
    bytes: &'a [u8],
}

impl Parser<'_> {
    fn skip_ws(&self, mut at: usize) -> usize {
        while matches!(self.bytes.get(at), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            at += 1;
        }
        at
    }

    /// Python's `linecol`: 1-based line and column of a character position.
    fn linecol(&self, pos: usize) -> (usize, usize, usize) {
        let prefix = &self.text[..pos.min(self.text.len())];
        let chars = prefix.chars().count();
        let line = prefix.matches('\n').count() + 1;
        let column = match prefix.rfind('\n') {
            Some(newline) => prefix[newline..].chars().count() - 1,
            None => chars + 1,
        };
        (line, column, chars)
    }

    fn errmsg(&self, message: &str, pos: usize) -> String {
        let (line, column, chars) = self.linecol(pos);
        format!("{message}: line {line} column {column} (char {chars})")
    }

    fn errmsg_range(&self, message: &str, start: usize, end: usize) -> String {
        let (line, column, chars) = self.linecol(start);
        let (end_line, end_column, end_chars) = self.linecol(end);
        format!(
            "{message}: line {line} column {column} - line {end_line} column {end_column} (char {chars} - {end_chars})"
        )
    }

    /// One value at `at` (no leading whitespace skipped), or `None` where Python's scanner
    /// raises `StopIteration` (nothing that starts a value).
    fn value(&mut self, at: usize) -> Result<Option<(PyValue, usize)>, String> {
        let rest = &self.text[at..];
        let Some(&first) = self.bytes.get(at) else {
            return Ok(None);
        };
        match first {
            b'"' => self.string(at).map(|(s, end)| Some((PyValue::Str(s), end))),
            b'{' => self.object(at + 1).map(Some),
            b'[' => self.array(at + 1).map(Some),
            _ if rest.starts_with("null") => Ok(Some((PyValue::None, at + 4))),
            _ if rest.starts_with("true") => Ok(Some((PyValue::Bool(true), at + 4))),
            _ if rest.starts_with("false") => Ok(Some((PyValue::Bool(false), at + 5))),
            _ if rest.starts_with("NaN") => Ok(Some((PyValue::Float(f64::NAN), at + 3))),
            _ if rest.starts_with("Infinity") => Ok(Some((PyValue::Float(f64::INFINITY), at + 8))),
            _ if rest.starts_with("-Infinity") => {
                Ok(Some((PyValue::Float(f64::NEG_INFINITY), at + 9)))
            }
            _ => Ok(self.number(at)),
        }
    }

    /// `(-?(?:0|[1-9]\d*))(\.\d+)?([eE][-+]?\d+)?`
    fn number(&self, at: usize) -> Option<(PyValue, usize)> {
        let b = self.bytes;
        let mut i = at;
        if b.get(i) == Some(&b'-') {
            i += 1;
        }
        match b.get(i) {
            Some(b'0') => i += 1,
            Some(b'1'..=b'9') => {
                while b.get(i).is_some_and(u8::is_ascii_digit) {
                    i += 1;
                }
            }
            _ => return None,
        }
        let int_end = i;
        let mut is_float = false;
        if b.get(i) == Some(&b'.') && b.get(i + 1).is_some_and(u8::is_ascii_digit) {
            i += 1;
            while b.get(i).is_some_and(u8::is_ascii_digit) {
                i += 1;
            }
            is_float = true;
        }
        if matches!(b.get(i), Some(b'e' | b'E')) {
            let mut j = i + 1;
            if matches!(b.get(j), Some(b'+' | b'-')) {
                j += 1;
            }
            if b.get(j).is_some_and(u8::is_ascii_digit) {
                while b.get(j).is_some_and(u8::is_ascii_digit) {
                    j += 1;
                }
                i = j;
                is_float = true;
            }
        }
        let literal = &self.text[at..i];
        if is_float {
            // Python's float() of the literal: out-of-range exponents become inf or 0.
            Some((PyValue::Float(literal.parse().unwrap_or(0.0)), i))
        } else {
            let digits = &self.text[at..int_end];
            let normalized = if digits == "-0" { "0" } else { digits };
            Some((PyValue::Int(normalized.to_owned()), i))
        }
    }

    fn string(&self, quote: usize) -> Result<(String, usize), String> {
        let mut out = String::new();
        let mut i = quote + 1;
        loop {
            let Some(c) = self.text[i..].chars().next() else {
                return Err(self.errmsg("Unterminated string starting at", quote));
            };
            match c {
                '"' => return Ok((out, i + 1)),
                '\\' => {
                    let Some(&escape) = self.bytes.get(i + 1) else {
                        return Err(self.errmsg("Unterminated string starting at", quote));
                    };
                    let simple = match escape {
                        b'"' => Some('"'),
                        b'\\' => Some('\\'),
                        b'/' => Some('/'),
                        b'b' => Some('\u{8}'),
                        b'f' => Some('\u{c}'),
                        b'n' => Some('\n'),
                        b'r' => Some('\r'),
                        b't' => Some('\t'),
                        _ => None,
                    };
                    if let Some(c) = simple {
                        out.push(c);
                        i += 2;
                        continue;
                    }
                    if escape != b'u' {
                        let shown: String = self.text[i + 1..].chars().take(1).collect();
                        return Err(self.errmsg(&format!("Invalid \\escape: '{shown}'"), i));
                    }
                    let unit = |at: usize| {
                        self.text
                            .get(at..at + 4)
                            .filter(|h| h.bytes().all(|b| b.is_ascii_hexdigit()))
                            .and_then(|h| u32::from_str_radix(h, 16).ok())
                    };
                    let Some(high) = unit(i + 2) else {
                        return Err(self.errmsg("Invalid \\uXXXX escape", i + 1));
                    };
                    i += 6;
                    let mut code = high;
                    if (0xd800..0xdc00).contains(&high)
                        && self.text[i..].starts_with("\\u")
                        && let Some(low) = unit(i + 2).filter(|l| (0xdc00..0xe000).contains(l))
                    {
                        code = 0x10000 + ((high - 0xd800) << 10) + (low - 0xdc00);
                        i += 6;
                    }
                    out.push(char::from_u32(code).unwrap_or('\u{fffd}'));
                }
                c if u32::from(c) < 0x20 => {
                    return Err(self.errmsg("Invalid control character at", i));
                }
                c => {
                    out.push(c);
                    i += c.len_utf8();
                }
            }
        }
    }

    fn object(&mut self, mut at: usize) -> Result<(PyValue, usize), String> {
        let mut entries: Vec<(String, PyValue)> = Vec::new();
        at = self.skip_ws(at);
        match self.bytes.get(at) {
            Some(b'}') => return Ok((PyValue::Dict(entries), at + 1)),
            Some(b'"') => {}
            _ => {
                return Err(self.errmsg("Expecting property name enclosed in double quotes", at));
            }
        }
        loop {
            let (key, after_key) = self.string(at)?;
            let colon = self.skip_ws(after_key);
            if self.bytes.get(colon) != Some(&b':') {
                return Err(self.errmsg("Expecting ':' delimiter", colon));
            }
            let value_at = self.skip_ws(colon + 1);
            let Some((value, after_value)) = self.value(value_at)? else {
                return Err(self.errmsg("Expecting object", value_at));
            };
            match entries.iter_mut().find(|(k, _)| *k == key) {
                Some(entry) => entry.1 = value,
                None => entries.push((key, value)),
            }
            let next = self.skip_ws(after_value);
            match self.bytes.get(next) {
                Some(b'}') => return Ok((PyValue::Dict(entries), next + 1)),
                Some(b',') => {}
                _ => return Err(self.errmsg("Expecting ',' delimiter", next)),
            }
            at = self.skip_ws(next + 1);
            if self.bytes.get(at) != Some(&b'"') {
                return Err(self.errmsg("Expecting property name enclosed in double quotes", at));
            }
        }
    }

    fn array(&mut self, mut at: usize) -> Result<(PyValue, usize), String> {
        let mut items = Vec::new();
        at = self.skip_ws(at);
        if self.bytes.get(at) == Some(&b']') {
            return Ok((PyValue::List(items), at + 1));
        }
        loop {
            let Some((value, after)) = self.value(at)? else {
                return Err(self.errmsg("Expecting object", at));
            };
            items.push(value);
            let next = self.skip_ws(after);
            match self.bytes.get(next) {
                Some(b']') => return Ok((PyValue::List(items), next + 1)),
                Some(b',') => {}
                _ => return Err(self.errmsg("Expecting ',' delimiter", next)),
            }
            at = self.skip_ws(next + 1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn float_repr_matches_python() {
        for (value, repr) in [
            (5.0, "5.0"),
            (0.0, "0.0"),
            (-0.0, "-0.0"),
            (11.2, "11.2"),
            (-1.0, "-1.0"),
            (1e16, "1e+16"),
            (1e15, "1000000000000000.0"),
            (1.5e-5, "1.5e-05"),
            (0.0001, "0.0001"),
            (123_456_789_012_345_680.0, "1.2345678901234568e+17"),
            (1.0 / 3.0, "0.3333333333333333"),
            (1e300, "1e+300"),
        ] {
            assert_eq!(float_repr(value), repr, "{value}");
        }
        assert_eq!(json_float(f64::NAN), "NaN");
        assert_eq!(json_float(f64::NEG_INFINITY), "-Infinity");
    }

    #[test]
    fn repr_matches_python() {
        let value =
            loads(br#"[1, 2.5, "bar", null, true, {"a": [1]}, "it's", 99999999999999999999]"#)
                .unwrap();
        assert_eq!(
            value.repr(),
            r#"[1, 2.5, u'bar', None, True, {u'a': [1]}, u"it's", 99999999999999999999L]"#
        );
        assert_eq!(PyValue::Str("é".into()).repr(), r"u'\xe9'");
        assert_eq!(value.type_name(), "<type 'list'>");
    }

    #[test]
    fn loads_errors_match_python() {
        assert_eq!(
            loads(b"not json").unwrap_err(),
            "No JSON object could be decoded"
        );
        assert_eq!(loads(b"").unwrap_err(), "No JSON object could be decoded");
        assert_eq!(
            loads(b"{} x").unwrap_err(),
            "Extra data: line 1 column 4 - line 1 column 5 (char 3 - 4)"
        );
        assert_eq!(
            loads(b"{\"a\" 1}").unwrap_err(),
            "Expecting ':' delimiter: line 1 column 6 (char 5)"
        );
        assert_eq!(
            loads(b"{\"a\": }").unwrap_err(),
            "Expecting object: line 1 column 7 (char 6)"
        );
        assert_eq!(
            loads(b"{1: 2}").unwrap_err(),
            "Expecting property name enclosed in double quotes: line 1 column 2 (char 1)"
        );
        assert_eq!(loads(b"{\"a\": NaN}").unwrap().repr(), "{u'a': nan}");
    }

    #[test]
    fn float_conversion_matches_python() {
        let ok = |v: PyValue| match to_float(&v) {
            FloatConversion::Ok(f) => Some(f),
            _ => None,
        };
        assert_eq!(ok(PyValue::Str(" 11.2 ".into())), Some(11.2));
        assert_eq!(ok(PyValue::Str("1e3".into())), Some(1000.0));
        assert_eq!(ok(PyValue::Str(".5".into())), Some(0.5));
        assert!(ok(PyValue::Str("nan".into())).is_some_and(f64::is_nan));
        assert_eq!(
            ok(PyValue::Str("-Infinity".into())),
            Some(f64::NEG_INFINITY)
        );
        assert_eq!(ok(PyValue::Str("bar".into())), None);
        assert_eq!(ok(PyValue::Str("1_0".into())), None);
        assert_eq!(ok(PyValue::Bool(true)), Some(1.0));
        assert_eq!(ok(PyValue::Int("5".into())), Some(5.0));
        assert_eq!(ok(PyValue::None), None);
        assert!(matches!(
            to_float(&PyValue::Int(format!("1{}", "0".repeat(400)))),
            FloatConversion::Overflow
        ));
    }
}
