//! Writes emitted records as JSON into the batch's one shared output buffer.
//!
//! The WIT `batch-result` carries all records of a batch as one string plus (start, len) spans:
//! one buffer crosses the component boundary instead of one string per record.

use crate::rules::Date;

/// Appends the JSON object of the current row to the batch's output buffer.
///
/// Each method adds one key. Keys must be fields the module declared in
/// [`ModuleInfo::output_fields`](crate::ModuleInfo::output_fields), each at most once (the
/// `testing` harness checks both). To leave a field out, don't call the
/// method: ReqCheck treats an explicit `null` as "set to NULL", which is never what a partial
/// patient update wants.
#[derive(Debug, Default)]
pub struct RecordWriter {
    buf: String,
    /// Where the current row's object starts in `buf`.
    start: usize,
    /// Whether the current object has a key yet (to place commas).
    has_fields: bool,
}

impl RecordWriter {
    pub(crate) fn with_capacity(bytes: usize) -> Self {
        Self {
            buf: String::with_capacity(bytes),
            start: 0,
            has_fields: false,
        }
    }

    /// Starts the object of a new row.
    pub(crate) fn begin_row(&mut self) {
        self.start = self.buf.len();
        self.has_fields = false;
        self.buf.push('{');
    }

    /// Closes the current object and returns its span `(start, len)` in bytes.
    pub(crate) fn finish_row(&mut self) -> (usize, usize) {
        self.buf.push('}');
        (self.start, self.buf.len() - self.start)
    }

    /// Forgets whatever the current row wrote (it was skipped or rejected).
    pub(crate) fn discard_row(&mut self) {
        self.buf.truncate(self.start);
        self.has_fields = false;
    }

    pub(crate) fn into_string(self) -> String {
        self.buf
    }

    #[inline]
    fn key(&mut self, field: &str) {
        if self.has_fields {
            self.buf.push(',');
        }
        self.has_fields = true;
        push_json_string(&mut self.buf, field);
        self.buf.push(':');
    }

    /// A JSON string.
    #[inline]
    pub fn str(&mut self, field: &str, value: &str) {
        self.key(field);
        push_json_string(&mut self.buf, value);
    }

    /// A JSON string when `value` is `Some`; nothing otherwise.
    #[inline]
    pub fn opt_str(&mut self, field: &str, value: Option<&str>) {
        if let Some(value) = value {
            self.str(field, value);
        }
    }

    /// A JSON number.
    #[inline]
    pub fn int(&mut self, field: &str, value: i64) {
        self.key(field);
        push_i64(&mut self.buf, value);
    }

    /// A JSON `true` / `false`.
    #[inline]
    pub fn bool(&mut self, field: &str, value: bool) {
        self.key(field);
        self.buf.push_str(if value { "true" } else { "false" });
    }

    /// A JSON number. NaN and infinities have no JSON form: the field is left out and `false`
    /// returned, so the caller can add a warning.
    pub fn float(&mut self, field: &str, value: f64) -> bool {
        if !value.is_finite() {
            return false;
        }
        self.key(field);
        // Display for f64 never uses exponent notation and round-trips, and always yields a
        // valid JSON number for finite values.
        use std::fmt::Write as _;
        let _ = write!(self.buf, "{value}");
        true
    }

    /// A date as the JSON string `"YYYY-MM-DD"`.
    #[inline]
    pub fn date(&mut self, field: &str, value: Date) {
        self.key(field);
        self.buf.push('"');
        value.push_iso(&mut self.buf);
        self.buf.push('"');
    }
}

/// Appends `value` as a JSON string literal (RFC 8259): quotes, backslashes and control
/// characters escaped, everything else (non-ASCII included) copied as UTF-8.
///
/// This is the hottest function of a default module (every field of every record goes through
/// it), and almost no value needs escaping, so clean stretches are found eight bytes at a time
/// and copied whole.
#[inline]
pub(crate) fn push_json_string(out: &mut String, value: &str) {
    out.reserve(value.len() + 2);
    out.push('"');
    let clean = clean_prefix_len(value.as_bytes());
    if clean == value.len() {
        out.push_str(value);
    } else {
        push_escaped(out, value, clean);
    }
    out.push('"');
}

/// The slow path of [`push_json_string`], from the first byte needing an escape.
#[cold]
fn push_escaped(out: &mut String, value: &str, first: usize) {
    let mut rest = value;
    let mut clean = first;
    loop {
        let (head, tail) = rest.split_at_checked(clean).unwrap_or((rest, ""));
        out.push_str(head);
        let Some(&byte) = tail.as_bytes().first() else {
            break;
        };
        push_escape(out, byte);
        // `byte` is ASCII, so the next character starts right after it.
        rest = tail.get(1..).unwrap_or_default();
        clean = clean_prefix_len(rest.as_bytes());
    }
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

/// Appends the decimal form of `value` without going through `core::fmt` (which is slow in
/// wasm and this runs for every number of every record).
pub(crate) fn push_i64(out: &mut String, value: i64) {
    let mut digits = [0u8; 20];
    let mut n = value.unsigned_abs();
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.reserve(21);
    if value < 0 {
        out.push('-');
    }
    for &digit in &digits[i..] {
        out.push(char::from(digit));
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

    #[test]
    fn writes_numbers() {
        for value in [0, 7, -7, 2_147_483_647, i64::MAX, i64::MIN] {
            let mut out = String::new();
            push_i64(&mut out, value);
            assert_eq!(out, value.to_string());
        }
    }

    #[test]
    fn builds_an_object_and_discards_rejected_rows() {
        let mut writer = RecordWriter::with_capacity(64);
        writer.begin_row();
        writer.int("patient_number", 4);
        writer.str("last_name", "O'Brien");
        writer.bool("history_flag", true);
        writer.opt_str("email", None);
        let (start, len) = writer.finish_row();
        writer.begin_row();
        writer.str("last_name", "dropped");
        writer.discard_row();
        writer.begin_row();
        let (start2, len2) = writer.finish_row();
        let out = writer.into_string();
        assert_eq!(
            &out[start..start + len],
            r#"{"patient_number":4,"last_name":"O'Brien","history_flag":true}"#
        );
        assert_eq!(&out[start2..start2 + len2], "{}");
        assert_eq!(out.len(), len + len2);
    }

    #[test]
    fn leaves_out_non_finite_floats() {
        let mut writer = RecordWriter::with_capacity(16);
        writer.begin_row();
        assert!(!writer.float("x", f64::NAN));
        assert!(writer.float("y", 0.5));
        let (start, len) = writer.finish_row();
        assert_eq!(&writer.into_string()[start..start + len], r#"{"y":0.5}"#);
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

        #[test]
        fn numbers_parse_back(value in any::<i64>()) {
            let mut out = String::new();
            push_i64(&mut out, value);
            prop_assert_eq!(out.parse::<i64>().ok(), Some(value));
        }

        #[test]
        fn finite_floats_parse_back(value in any::<f64>().prop_filter("finite", |v| v.is_finite())) {
            let mut writer = RecordWriter::with_capacity(16);
            writer.begin_row();
            writer.float("x", value);
            let (start, len) = writer.finish_row();
            let out = writer.into_string();
            let object = &out[start..start + len];
            prop_assert!(serde_json::from_str::<serde_json::Value>(object).is_ok());
            // serde_json's default float parser is not exact; std's is.
            let number = object.trim_start_matches("{\"x\":").trim_end_matches('}');
            prop_assert_eq!(number.parse::<f64>().ok(), Some(value));
        }
    }
}
