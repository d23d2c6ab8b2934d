//! The few Ruby core behaviours the import semantics lean on: `#to_i`, `Kernel#Float`,
//! `#to_s`, `String#upcase`, `Symbol#inspect` and `#blank?`. Only what the controller's code paths reach.

use std::borrow::Cow;

use super::params::Param;

/// Ruby raised `NoMethodError`/`TypeError` (e.g. `true.to_i`): outside the controller's
/// `rescue`, that is a 500.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct NoMethod;

/// Ruby's `value.to_i` on a JSON value: `nil` → 0, floats truncate, strings read their leading
/// integer (`"4abc"` → 4, `"abc"` → 0). Booleans, arrays and hashes have no `to_i`.
pub(crate) fn to_i(value: &Param) -> Result<i128, NoMethod> {
    match value {
        Param::Null => Ok(0),
        Param::Number(n) => Ok(number_to_i(n)),
        Param::Str(s) => Ok(str_to_i(s)),
        Param::Bool(_) | Param::Array(_) | Param::Object(_) => Err(NoMethod),
    }
}

pub(crate) fn number_to_i(n: &serde_json::Number) -> i128 {
    if let Some(i) = n.as_i64() {
        i128::from(i)
    } else if let Some(u) = n.as_u64() {
        i128::from(u)
    } else {
        // `as` saturates, which is what the int4 range check downstream needs.
        n.as_f64().map_or(0, |f| f.trunc() as i128)
    }
}

/// `String#to_i`: leading whitespace, an optional sign, then digits with single underscores
/// between them; stops at the first other character. Saturates instead of growing a bignum.
pub(crate) fn str_to_i(s: &str) -> i128 {
    let rest = s.trim_start_matches(is_ruby_space);
    let (negative, rest) = match rest.as_bytes().first() {
        Some(b'-') => (true, &rest[1..]),
        Some(b'+') => (false, &rest[1..]),
        _ => (false, rest),
    };
    let bytes = rest.as_bytes();
    let mut value: i128 = 0;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            d @ b'0'..=b'9' => {
                value = value
                    .saturating_mul(10)
                    .saturating_add(i128::from(d - b'0'));
            }
            b'_' if i > 0
                && bytes[i - 1].is_ascii_digit()
                && bytes.get(i + 1).is_some_and(u8::is_ascii_digit) => {}
            _ => break,
        }
        i += 1;
    }
    if negative { -value } else { value }
}

/// `Kernel#Float(string)` as Rails' numericality validator uses it (hex excluded by Rails):
/// surrounding whitespace, sign, digits with single underscores, fraction, exponent.
pub(crate) fn kernel_float(s: &str) -> Option<f64> {
    let t = s.trim_matches(is_ruby_space);
    if t.is_empty() || t.starts_with("0x") || t.starts_with("0X") {
        return None;
    }
    let bytes = t.as_bytes();
    let mut cleaned = String::with_capacity(t.len());
    for (i, &b) in bytes.iter().enumerate() {
        match b {
            b'_' => {
                let between_digits = i > 0
                    && bytes[i - 1].is_ascii_digit()
                    && bytes.get(i + 1).is_some_and(u8::is_ascii_digit);
                if !between_digits {
                    return None;
                }
            }
            b'0'..=b'9' | b'+' | b'-' | b'e' | b'E' => cleaned.push(char::from(b)),
            // Ruby wants a digit on both sides of the decimal point ("1." and ".5" fail).
            b'.' if i > 0
                && bytes[i - 1].is_ascii_digit()
                && bytes.get(i + 1).is_some_and(u8::is_ascii_digit) =>
            {
                cleaned.push('.');
            }
            _ => return None,
        }
    }
    cleaned.parse::<f64>().ok().filter(|f| f.is_finite())
}

/// Ruby's `to_s` as used by string interpolation (`"... #{patient_number} ..."`).
pub(crate) fn to_s(value: &Param) -> String {
    match value {
        Param::Null => String::new(),
        Param::Bool(b) => b.to_string(),
        Param::Number(n) => number_to_s(n),
        Param::Str(s) => s.as_ref().to_owned(),
        // `Array#to_s`/`Hash#to_s` are `inspect`; JSON text is close enough for these
        // never-valid inputs.
        other => serde_json::to_string(other).unwrap_or_default(),
    }
}

pub(crate) fn number_to_s(n: &serde_json::Number) -> String {
    if n.is_f64() {
        n.as_f64().map_or_else(|| n.to_string(), float_to_s)
    } else {
        n.to_string()
    }
}

/// `Float#to_s`: shortest round-trip digits, always a fractional part, and scientific
/// notation (`1.0e+20`, `1.5e-07`) outside 1e-4 ≤ |f| < 1e16.
pub(crate) fn float_to_s(f: f64) -> String {
    let magnitude = f.abs();
    if f == 0.0 || (1e-4..1e16).contains(&magnitude) {
        let plain = format!("{f}");
        if plain.contains('.') {
            plain
        } else {
            format!("{plain}.0")
        }
    } else {
        let sci = format!("{f:e}");
        let (mantissa, exponent) = sci.split_once('e').unwrap_or((sci.as_str(), "0"));
        let mantissa = if mantissa.contains('.') {
            mantissa.to_owned()
        } else {
            format!("{mantissa}.0")
        };
        let (sign, digits) = match exponent.strip_prefix('-') {
            Some(d) => ('-', d),
            None => ('+', exponent),
        };
        format!("{mantissa}e{sign}{digits:0>2}")
    }
}

/// `Symbol#inspect`, for `Extraneous arguments [:random_attr] for Patient`. Keys that are not
/// plain identifiers come out quoted, as Ruby prints them (`:"my-key"`).
pub(crate) fn symbol_inspect(name: &str) -> String {
    if is_plain_symbol(name) {
        format!(":{name}")
    } else {
        format!(":{}", string_inspect(name))
    }
}

fn is_plain_symbol(name: &str) -> bool {
    const OPERATORS: [&str; 27] = [
        "+", "-", "*", "/", "%", "**", "==", "===", "=~", "!", "!=", "!~", "<", "<=", ">", ">=",
        "<=>", "<<", ">>", "&", "|", "^", "~", "+@", "-@", "[]", "[]=",
    ];
    if OPERATORS.contains(&name) {
        return true;
    }
    let body = name
        .strip_prefix("@@")
        .or_else(|| name.strip_prefix('@'))
        .or_else(|| name.strip_prefix('$'))
        .unwrap_or(name);
    let prefixed = body.len() != name.len();
    let body = if prefixed {
        body
    } else {
        body.strip_suffix(['?', '!', '=']).unwrap_or(body)
    };
    let mut chars = body.chars();
    let Some(first) = chars.next() else {
        return false;
    };
    let ident_start = |c: char| c == '_' || c.is_ascii_alphabetic() || !c.is_ascii();
    ident_start(first) && chars.all(|c| ident_start(c) || c.is_ascii_digit())
}

/// `String#inspect` for a UTF-8 string.
fn string_inspect(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            '\u{1b}' => out.push_str("\\e"),
            '#' if matches!(chars.peek(), Some('{' | '$' | '@')) => out.push_str("\\#"),
            '\u{7f}' => out.push_str("\\x7F"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// `String#blank?`: empty or only whitespace.
/// `String#upcase` in Ruby 2.3: ASCII letters only. Copies only when something changes.
pub(crate) fn upcase_ascii(s: Cow<'_, str>) -> Cow<'_, str> {
    if s.bytes().any(|b| b.is_ascii_lowercase()) {
        Cow::Owned(s.to_ascii_uppercase())
    } else {
        s
    }
}

pub(crate) fn is_blank(s: &str) -> bool {
    s.chars().all(char::is_whitespace)
}

/// The characters Ruby's `to_i`/`Float` skip: space, \t, \n, \v, \f, \r.
fn is_ruby_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\u{b}' | '\u{c}' | '\r')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upcase_is_ascii_only_and_copies_only_when_a_letter_changes() {
        assert_eq!(upcase_ascii(Cow::Borrowed("flu-é")), "FLU-é");
        assert!(matches!(
            upcase_ascii(Cow::Borrowed("MMR")),
            Cow::Borrowed("MMR")
        ));
        assert!(matches!(upcase_ascii(Cow::Borrowed("mmr")), Cow::Owned(_)));
    }

    #[test]
    fn string_to_i_reads_leading_integer() {
        assert_eq!(str_to_i("4"), 4);
        assert_eq!(str_to_i("  -12abc"), -12);
        assert_eq!(str_to_i("1_000"), 1000);
        assert_eq!(str_to_i("1__0"), 1);
        assert_eq!(str_to_i("abc"), 0);
        assert_eq!(str_to_i(""), 0);
        assert_eq!(str_to_i("99999999999"), 99_999_999_999);
    }

    #[test]
    fn to_i_has_no_method_for_booleans_and_containers() {
        assert_eq!(to_i(&Param::Null), Ok(0));
        assert_eq!(to_i(&Param::Bool(true)), Err(NoMethod));
        assert_eq!(to_i(&Param::Array(vec![])), Err(NoMethod));
        let float = serde_json::Number::from_f64(4.7).map(Param::Number);
        assert_eq!(float.as_ref().map(to_i), Some(Ok(4)));
    }

    #[test]
    fn kernel_float_is_strict() {
        assert_eq!(kernel_float(" 4 "), Some(4.0));
        assert_eq!(kernel_float("-1.5e3"), Some(-1500.0));
        assert_eq!(kernel_float("1_000"), Some(1000.0));
        assert_eq!(kernel_float("4abc"), None);
        assert_eq!(kernel_float("0x1A"), None);
        assert_eq!(kernel_float("1."), None);
        assert_eq!(kernel_float("inf"), None);
        assert_eq!(kernel_float(""), None);
    }

    #[test]
    fn float_to_s_matches_ruby() {
        assert_eq!(float_to_s(4.0), "4.0");
        assert_eq!(float_to_s(4.5), "4.5");
        assert_eq!(float_to_s(1e20), "1.0e+20");
        assert_eq!(float_to_s(1.5e-7), "1.5e-07");
    }

    #[test]
    fn symbol_inspect_quotes_only_non_identifiers() {
        assert_eq!(symbol_inspect("random_attr"), ":random_attr");
        assert_eq!(symbol_inspect("trade_name"), ":trade_name");
        assert_eq!(symbol_inspect("ok?"), ":ok?");
        assert_eq!(symbol_inspect("my-key"), ":\"my-key\"");
        assert_eq!(symbol_inspect("1st"), ":\"1st\"");
        assert_eq!(symbol_inspect(""), ":\"\"");
        assert_eq!(symbol_inspect("a\"b"), ":\"a\\\"b\"");
    }

    #[test]
    fn blank_means_whitespace_only() {
        assert!(is_blank(""));
        assert!(is_blank(" \t\n"));
        assert!(!is_blank(" a "));
    }
}
