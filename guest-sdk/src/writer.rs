//! Writes emitted records as JSON into the batch's one shared output buffer.
//!
//! The WIT `batch-result` carries all records of a batch as one string plus (start, len) spans:
//! one buffer crosses the component boundary instead of one string per record.

use crate::rules::Date;

/// Appends the JSON object of the current row to the batch's output buffer.
///
/// Each method adds one key. Keys must be fields the module declared in
/// [`ModuleInfo::output_fields`](crate::ModuleInfo::output_fields), each at most once (the
/// [`testing`](crate::testing) harness checks both). To leave a field out, don't call the
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

    fn key(&mut self, field: &str) {
        if self.has_fields {
            self.buf.push(',');
        }
        self.has_fields = true;
        push_json_string(&mut self.buf, field);
        self.buf.push(':');
    }

    /// A JSON string.
    pub fn str(&mut self, field: &str, value: &str) {
        self.key(field);
        push_json_string(&mut self.buf, value);
    }

    /// A JSON string when `value` is `Some`; nothing otherwise.
    pub fn opt_str(&mut self, field: &str, value: Option<&str>) {
        if let Some(value) = value {
            self.str(field, value);
        }
    }

    /// A JSON number.
    pub fn int(&mut self, field: &str, value: i64) {
        self.key(field);
        push_i64(&mut self.buf, value);
    }

    /// A JSON `true` / `false`.
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
    pub fn date(&mut self, field: &str, value: Date) {
        self.key(field);
        self.buf.push('"');
        value.push_iso(&mut self.buf);
        self.buf.push('"');
    }
}

/// Appends `value` as a JSON string literal (RFC 8259): quotes, backslashes and control
/// characters escaped, everything else (non-ASCII included) copied as UTF-8.
pub(crate) fn push_json_string(out: &mut String, value: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push('"');
    let bytes = value.as_bytes();
    let mut run_start = 0;
    for (i, &byte) in bytes.iter().enumerate() {
        let escape: &str = match byte {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0x08 => "\\b",
            0x0c => "\\f",
            0x00..=0x1f => "",
            _ => continue,
        };
        // `i` is an ASCII byte, so both slices end on character boundaries.
        out.push_str(value.get(run_start..i).unwrap_or_default());
        if escape.is_empty() {
            out.push_str("\\u00");
            out.push(char::from(HEX[usize::from(byte >> 4)]));
            out.push(char::from(HEX[usize::from(byte & 0xf)]));
        } else {
            out.push_str(escape);
        }
        run_start = i + 1;
    }
    out.push_str(value.get(run_start..).unwrap_or_default());
    out.push('"');
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
