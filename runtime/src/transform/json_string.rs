//! JSON string literals, written fast: every text field of every emitted record goes through
//! here when the host writes the record's JSON (`declared.rs`).
//!
//! serde_json's own escaping looks bytes up one at a time; almost no value needs escaping, so
//! clean stretches are found eight bytes at a time and copied whole (the function was the
//! hottest of a default module when modules wrote their JSON themselves, WIT 2.0.0). On a
//! default record's kind of values (names, addresses, dates, timestamps, codes) it takes 6.5 ns
//! a value against 10.1 for serde_json's string serialiser, byte for byte the same output
//! (a scratch benchmark, median of 14 passes over 200,000 values; docs/PERFORMANCE.md).

/// Appends `value` as a JSON string literal (RFC 8259): quotes, backslashes and control
/// characters escaped, everything else (non-ASCII included) copied as UTF-8.
///
/// Returns whether `value` holds a control character other than tab, line feed and carriage
/// return (NUL above all, which ReqCheck's PostgreSQL cannot store in a text column). Only the
/// escaping path, which such a character always takes, looks: clean values pay nothing.
#[inline]
pub(crate) fn push_json_string(out: &mut String, value: &str) -> bool {
    out.reserve(value.len() + 2);
    out.push('"');
    let clean = clean_prefix_len(value.as_bytes());
    let unstorable = if clean == value.len() {
        out.push_str(value);
        false
    } else {
        push_escaped(out, value, clean)
    };
    out.push('"');
    unstorable
}

/// The slow path of [`push_json_string`], from the first byte needing an escape; returns
/// whether one of the escaped bytes is a control character other than tab, LF and CR.
#[cold]
fn push_escaped(out: &mut String, value: &str, first: usize) -> bool {
    let mut rest = value;
    let mut clean = first;
    let mut unstorable = false;
    loop {
        let (head, tail) = rest.split_at_checked(clean).unwrap_or((rest, ""));
        out.push_str(head);
        let Some(&byte) = tail.as_bytes().first() else {
            break;
        };
        unstorable |= byte < 0x20 && !matches!(byte, b'\t' | b'\n' | b'\r');
        push_escape(out, byte);
        // `byte` is ASCII, so the next character starts right after it.
        rest = tail.get(1..).unwrap_or_default();
        clean = clean_prefix_len(rest.as_bytes());
    }
    unstorable
}

#[inline]
fn needs_escape(byte: u8) -> bool {
    byte < 0x20 || byte == b'"' || byte == b'\\'
}

/// Length of the longest prefix of `bytes` without a byte that needs escaping.
#[inline]
fn clean_prefix_len(bytes: &[u8]) -> usize {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    // Classic SWAR "has a zero byte" / "has a byte below n" tests. They can flag extra bytes
    // only after a truly flagged one, so "this word is clean" is exact.
    let has_zero = |x: u64| x.wrapping_sub(ONES) & !x & HIGH;
    let (words, _) = bytes.as_chunks::<8>();
    let mut clean = 0;
    for word in words {
        let x = u64::from_le_bytes(*word);
        let control = x.wrapping_sub(ONES * 0x20) & !x & HIGH;
        let quote = has_zero(x ^ (ONES * u64::from(b'"')));
        let backslash = has_zero(x ^ (ONES * u64::from(b'\\')));
        if control | quote | backslash != 0 {
            break;
        }
        clean += 8;
    }
    clean
        + bytes
            .get(clean..)
            .unwrap_or_default()
            .iter()
            .take_while(|&&b| !needs_escape(b))
            .count()
}

fn push_escape(out: &mut String, byte: u8) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    match byte {
        b'"' => out.push_str("\\\""),
        b'\\' => out.push_str("\\\\"),
        b'\n' => out.push_str("\\n"),
        b'\r' => out.push_str("\\r"),
        b'\t' => out.push_str("\\t"),
        0x08 => out.push_str("\\b"),
        0x0c => out.push_str("\\f"),
        _ => {
            out.push_str("\\u00");
            out.push(char::from(HEX[usize::from(byte >> 4)]));
            out.push(char::from(HEX[usize::from(byte & 0xf)]));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn json(value: &str) -> String {
        let mut out = String::new();
        push_json_string(&mut out, value);
        out
    }

    fn unstorable(value: &str) -> bool {
        push_json_string(&mut String::new(), value)
    }

    #[test]
    fn control_characters_other_than_tab_and_line_breaks_are_reported() {
        assert!(!unstorable("Jane"));
        assert!(!unstorable("line one\r\nline two\tend \"quoted\" \\"));
        assert!(unstorable("Jane\u{0}"));
        assert!(unstorable("\u{1b}[31mred"));
        assert!(unstorable("a\\b\u{7}"));
        assert!(!unstorable("\u{7f}é"));
    }

    #[test]
    fn escapes_what_json_requires() {
        assert_eq!(json(r#"O"Brien\"#), r#""O\"Brien\\""#);
        assert_eq!(json("a\nb\tc\r\u{8}\u{c}"), r#""a\nb\tc\r\b\f""#);
        assert_eq!(json("\u{0}\u{1f}"), r#""\u0000\u001f""#);
        assert_eq!(json("José Nguyễn 😀"), "\"José Nguyễn 😀\"");
        assert_eq!(json(""), r#""""#);
        // Escapes at every position of an eight-byte word, and past the last whole word.
        for at in 0..20 {
            let mut value = "a".repeat(20);
            value.replace_range(at..=at, "\"");
            let mut expected = "a".repeat(20);
            expected.replace_range(at..=at, "\\\"");
            assert_eq!(json(&value), format!("\"{expected}\""));
        }
    }

    proptest! {
        #[test]
        fn escaped_strings_parse_back_to_themselves(value in any::<String>()) {
            let parsed: String = serde_json::from_str(&json(&value)).expect("valid JSON string");
            prop_assert_eq!(parsed, value);
        }

        #[test]
        fn escape_heavy_strings_parse_back(value in "[a-z\"\\\\\n\u{0}-\u{1f}é😀]{0,40}") {
            let parsed: String = serde_json::from_str(&json(&value)).expect("valid JSON string");
            prop_assert_eq!(parsed, value);
        }
    }
}
