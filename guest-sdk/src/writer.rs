//! Writes emitted records, typed, into the batch's shared output lists.
//!
//! The WIT `batch-result` carries the fields of all records of a batch as three parallel lists
//! (declared field index, value kind, value) plus one text buffer: a handful of buffers cross
//! the component boundary instead of one string per record, and the host writes each record's
//! JSON itself, natively, from checked indexes rather than parsing JSON the module wrote.

use crate::rules::Date;
use crate::types::FieldSpec;

/// Value kinds of the WIT `batch-result.kinds` list.
pub(crate) mod kind {
    pub const TEXT: u8 = 0;
    pub const INTEGER: u8 = 1;
    pub const FLOAT: u8 = 2;
    pub const BOOLEAN: u8 = 3;
}

/// Adds the fields of the current row's record to the batch's output.
///
/// Each method adds one field. Fields must be ones the module declared in
/// [`ModuleInfo::output_fields`](crate::ModuleInfo::output_fields), each at most once: a name
/// that is not declared rejects the row (`undeclared-field`), and the host rejects a row that
/// writes a field twice (the `testing` harness reports both as contract violations). To leave a
/// field out, don't call the method: ReqCheck treats an explicit `null` as "set to NULL", which
/// is never what a partial patient update wants.
#[derive(Debug)]
pub struct RecordWriter {
    fields: &'static [FieldSpec],
    /// The text values of the batch's records, concatenated.
    text: String,
    /// Per field written: declared index, kind, value (see the WIT `batch-result`).
    indexes: Vec<u16>,
    kinds: Vec<u8>,
    values: Vec<u64>,
    /// Where the current row's entries and text start.
    row_first: usize,
    row_text: usize,
    /// The declared field after the last one written: modules write their fields in the order
    /// they declared them, so the next one is usually found with one compare.
    next: usize,
    /// The first name the current row wrote that is not a declared field.
    undeclared: Option<String>,
    /// Declared fields of the current row whose text holds a control character ReqCheck
    /// cannot store (see [`is_unstorable`]).
    unstorable: Vec<u16>,
}

/// Why the current row's record cannot be emitted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RowFault {
    /// The first name it wrote that is not a declared field.
    Undeclared(String),
    /// The fields whose text holds NUL or another control character, in the order written.
    Unstorable(Vec<&'static str>),
}

/// What [`RecordWriter::finish`] hands to the WIT result.
pub(crate) struct WrittenFields {
    pub text: String,
    pub indexes: Vec<u16>,
    pub kinds: Vec<u8>,
    pub values: Vec<u64>,
}

impl RecordWriter {
    /// A writer for up to `rows` records of a module declaring `fields`.
    pub(crate) fn new(fields: &'static [FieldSpec], rows: usize) -> Self {
        // Default-mapping records carry 8–15 fields and 100–300 bytes of text; reserving up
        // front saves the copies of repeated doubling on every batch.
        let entries = rows.saturating_mul(fields.len().min(16));
        Self {
            fields,
            text: String::with_capacity(rows.saturating_mul(192)),
            indexes: Vec::with_capacity(entries),
            kinds: Vec::with_capacity(entries),
            values: Vec::with_capacity(entries),
            row_first: 0,
            row_text: 0,
            next: 0,
            undeclared: None,
            unstorable: Vec::new(),
        }
    }

    /// Starts the record of a new row.
    pub(crate) fn begin_row(&mut self) {
        self.row_first = self.indexes.len();
        self.row_text = self.text.len();
        self.next = 0;
        self.undeclared = None;
        self.unstorable.clear();
    }

    /// Ends the current record and returns its entries `(first, count)`, or why it cannot be
    /// emitted (the row is then discarded).
    pub(crate) fn finish_row(&mut self) -> Result<(usize, usize), RowFault> {
        if let Some(name) = self.undeclared.take() {
            self.discard_row();
            return Err(RowFault::Undeclared(name));
        }
        if !self.unstorable.is_empty() {
            let fields = self.fields;
            let names = self
                .unstorable
                .drain(..)
                .filter_map(|i| fields.get(usize::from(i)).map(|f| f.name))
                .collect();
            self.discard_row();
            return Err(RowFault::Unstorable(names));
        }
        Ok((self.row_first, self.indexes.len() - self.row_first))
    }

    /// Forgets whatever the current row wrote (it was skipped or rejected).
    pub(crate) fn discard_row(&mut self) {
        self.indexes.truncate(self.row_first);
        self.kinds.truncate(self.row_first);
        self.values.truncate(self.row_first);
        self.text.truncate(self.row_text);
    }

    /// Bytes of text written so far (the host addresses text with 32-bit offsets).
    pub(crate) fn text_len(&self) -> usize {
        self.text.len()
    }

    pub(crate) fn finish(self) -> WrittenFields {
        WrittenFields {
            text: self.text,
            indexes: self.indexes,
            kinds: self.kinds,
            values: self.values,
        }
    }

    /// The declared index of `field`, looked for from the field after the previous one on.
    #[inline]
    fn index(&mut self, field: &str) -> Option<u16> {
        let (before, after) = self.fields.split_at(self.next.min(self.fields.len()));
        let found = after
            .iter()
            .position(|f| f.name == field)
            .map(|i| self.next + i)
            .or_else(|| before.iter().position(|f| f.name == field));
        // A module declaring more than u16::MAX fields cannot name the rest; it is refused
        // when its declaration is checked (`testing::check_info`), and here the name counts
        // as undeclared.
        match found.and_then(|i| u16::try_from(i).ok()) {
            Some(i) => {
                self.next = usize::from(i) + 1;
                Some(i)
            }
            None => {
                if self.undeclared.is_none() {
                    self.undeclared = Some(field.to_owned());
                }
                None
            }
        }
    }

    #[inline]
    fn push(&mut self, index: u16, kind: u8, value: u64) {
        self.indexes.push(index);
        self.kinds.push(kind);
        self.values.push(value);
    }

    /// Appends `value` to the text and returns its (start, len) packed as the WIT asks.
    #[inline]
    fn text_value(&mut self, value: impl FnOnce(&mut String)) -> u64 {
        let start = self.text.len();
        value(&mut self.text);
        let len = self.text.len() - start;
        // Offsets beyond 4 GiB are caught for the whole batch (`text_len`); truncating here
        // only ever happens in a batch that is then refused.
        ((start as u64) << 32) | (len as u64 & 0xffff_ffff)
    }

    /// A text field (a JSON string).
    #[inline]
    pub fn str(&mut self, field: &str, value: &str) {
        if let Some(index) = self.index(field) {
            if is_unstorable(value) && !self.unstorable.contains(&index) {
                self.unstorable.push(index);
            }
            let span = self.text_value(|text| text.push_str(value));
            self.push(index, kind::TEXT, span);
        }
    }

    /// A text field when `value` is `Some`; nothing otherwise.
    #[inline]
    pub fn opt_str(&mut self, field: &str, value: Option<&str>) {
        if let Some(value) = value {
            self.str(field, value);
        }
    }

    /// A JSON number.
    #[inline]
    pub fn int(&mut self, field: &str, value: i64) {
        if let Some(index) = self.index(field) {
            self.push(index, kind::INTEGER, value as u64);
        }
    }

    /// A JSON `true` / `false`.
    #[inline]
    pub fn bool(&mut self, field: &str, value: bool) {
        if let Some(index) = self.index(field) {
            self.push(index, kind::BOOLEAN, u64::from(value));
        }
    }

    /// A JSON number. NaN and infinities have no JSON form: the field is left out and `false`
    /// returned, so the caller can add a warning.
    pub fn float(&mut self, field: &str, value: f64) -> bool {
        if !value.is_finite() {
            return false;
        }
        if let Some(index) = self.index(field) {
            self.push(index, kind::FLOAT, value.to_bits());
        }
        true
    }

    /// A date as the JSON string `"YYYY-MM-DD"`.
    #[inline]
    pub fn date(&mut self, field: &str, value: Date) {
        if let Some(index) = self.index(field) {
            let span = self.text_value(|text| value.push_iso(text));
            self.push(index, kind::TEXT, span);
        }
    }
}

/// Whether `text` holds a control character other than tab, line feed and carriage return.
/// ReqCheck keeps text in PostgreSQL, which cannot store NUL at all, and the other C0 controls
/// are never clinic data: a row carrying one is rejected (`control-character`), not sent.
/// Eight bytes at a time: nearly every value has no byte below 0x20.
#[inline]
pub(crate) fn is_unstorable(text: &str) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let bytes = text.as_bytes();
    let (words, tail) = bytes.as_chunks::<8>();
    // A byte below 0x20 sets its high bit in `x - 0x20…` where `x` had it clear.
    let any_low = words.iter().any(|w| {
        let x = u64::from_le_bytes(*w);
        x.wrapping_sub(ONES * 0x20) & !x & HIGH != 0
    }) || tail.iter().any(|&b| b < 0x20);
    any_low
        && bytes
            .iter()
            .any(|&b| b < 0x20 && !matches!(b, b'\t' | b'\n' | b'\r'))
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIELDS: &[FieldSpec] = &[
        FieldSpec::required("patient_number"),
        FieldSpec::optional("last_name"),
        FieldSpec::optional("history_flag"),
        FieldSpec::optional("email"),
        FieldSpec::optional("score"),
    ];

    fn text(out: &WrittenFields, entry: usize) -> &str {
        let value = out.values[entry];
        let start = (value >> 32) as usize;
        let len = (value & 0xffff_ffff) as usize;
        &out.text[start..start + len]
    }

    #[test]
    fn writes_typed_fields_and_discards_rejected_rows() {
        let mut writer = RecordWriter::new(FIELDS, 4);
        writer.begin_row();
        writer.int("patient_number", -4);
        writer.str("last_name", "O'Brien \"Jr\"");
        writer.bool("history_flag", true);
        writer.opt_str("email", None);
        assert_eq!(writer.finish_row(), Ok((0, 3)));
        writer.begin_row();
        writer.str("last_name", "dropped");
        writer.discard_row();
        writer.begin_row();
        writer.date(
            "last_name",
            Date::parse("2001-02-03").expect("a calendar date"),
        );
        assert_eq!(writer.finish_row(), Ok((3, 1)));
        let out = writer.finish();
        assert_eq!(out.indexes, [0, 1, 2, 1]);
        assert_eq!(
            out.kinds,
            [kind::INTEGER, kind::TEXT, kind::BOOLEAN, kind::TEXT]
        );
        assert_eq!(out.values[0] as i64, -4);
        assert_eq!(text(&out, 1), "O'Brien \"Jr\"");
        assert_eq!(out.values[2], 1);
        assert_eq!(text(&out, 3), "2001-02-03");
        assert_eq!(out.text, "O'Brien \"Jr\"2001-02-03");
    }

    #[test]
    fn finds_fields_written_out_of_declaration_order() {
        let mut writer = RecordWriter::new(FIELDS, 1);
        writer.begin_row();
        writer.str("email", "a@example.com");
        writer.int("patient_number", 1);
        writer.str("email", "twice");
        assert_eq!(writer.finish_row(), Ok((0, 3)));
        assert_eq!(writer.finish().indexes, [3, 0, 3]);
    }

    #[test]
    fn an_undeclared_name_discards_the_row_and_is_named() {
        let mut writer = RecordWriter::new(FIELDS, 2);
        writer.begin_row();
        writer.int("patient_number", 1);
        writer.str("nickname", "x");
        writer.str("middle", "y");
        assert_eq!(
            writer.finish_row(),
            Err(RowFault::Undeclared("nickname".to_owned()))
        );
        writer.begin_row();
        writer.int("patient_number", 2);
        assert_eq!(writer.finish_row(), Ok((0, 1)));
        let out = writer.finish();
        assert_eq!(out.indexes, [0]);
        assert!(out.text.is_empty());
    }

    #[test]
    fn a_control_character_discards_the_row_and_names_its_fields() {
        let mut writer = RecordWriter::new(FIELDS, 2);
        writer.begin_row();
        writer.int("patient_number", 1);
        writer.str("last_name", "Do\u{0}e");
        writer.str("email", "a\u{1b}@example.com");
        assert_eq!(
            writer.finish_row(),
            Err(RowFault::Unstorable(vec!["last_name", "email"]))
        );
        writer.begin_row();
        writer.str("last_name", "Line one\r\nline two\tend");
        assert_eq!(writer.finish_row(), Ok((0, 1)));
        assert_eq!(writer.finish().text, "Line one\r\nline two\tend");
    }

    #[test]
    fn unstorable_text_is_found_at_every_position() {
        assert!(!is_unstorable(""));
        assert!(!is_unstorable("José Nguyễn, 12 Main St\t\r\n"));
        for at in 0..20 {
            let mut value = "a".repeat(20);
            value.replace_range(at..=at, "\u{0}");
            assert!(is_unstorable(&value), "{at}");
            value.replace_range(at..=at, "\n");
            assert!(!is_unstorable(&value), "{at}");
        }
    }

    #[test]
    fn leaves_out_non_finite_floats() {
        let mut writer = RecordWriter::new(FIELDS, 1);
        writer.begin_row();
        assert!(!writer.float("score", f64::NAN));
        assert!(!writer.float("score", f64::INFINITY));
        assert!(writer.float("score", 0.5));
        assert_eq!(writer.finish_row(), Ok((0, 1)));
        let out = writer.finish();
        assert_eq!(f64::from_bits(out.values[0]), 0.5);
    }
}
