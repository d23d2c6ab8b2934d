//! A module's declared output fields, and each emitted record's JSON written from them.
//!
//! A module hands its records over typed (WIT 3.0.0): per field, the index of a declared field,
//! a value kind and a value, with the text values in one buffer. The host checks each entry —
//! the index is declared, no field is written twice, the value is what its kind says, every
//! required field is there — and writes the record's JSON itself. Before 3.0.0 modules wrote
//! JSON text that the host then parsed for its keys: the parse, and the module's own JSON
//! writer, were most of the boundary's cost (docs/PERFORMANCE.md).

use std::fmt::Write as _;
use std::ops::Range;

use super::info::FieldSpec;
use super::json_string::push_json_string;
use super::outcome::{Finding, host_codes};

/// Value kinds of the WIT `batch-result.kinds` list.
mod kind {
    pub const TEXT: u8 = 0;
    pub const INTEGER: u8 = 1;
    pub const FLOAT: u8 = 2;
    pub const BOOLEAN: u8 = 3;
}

/// The fields a module declared, ready for writing records.
#[derive(Debug, Clone)]
pub(crate) struct DeclaredFields {
    fields: Vec<Declared>,
    /// How many distinct names are declared required: a record that wrote this many required
    /// fields has them all, without looking at each.
    required_names: usize,
}

#[derive(Debug, Clone)]
struct Declared {
    name: String,
    /// `"name":`, as it precedes the field's value in a record's JSON.
    key: String,
    /// The first field of this name: a module may declare a name twice; writing it under
    /// either index is writing the same JSON key.
    first: usize,
    /// Whether a field of this name is declared required (under any of its indexes).
    required: bool,
}

/// The typed fields of one batch result: parallel lists, one entry per field of every emitted
/// record (see the WIT `batch-result`).
#[derive(Debug, Clone, Copy)]
pub struct FieldLists<'r> {
    pub text: &'r str,
    pub indexes: &'r [u16],
    pub kinds: &'r [u8],
    pub values: &'r [u64],
}

impl FieldLists<'_> {
    /// Whether the three lists have one entry per field each.
    pub(crate) fn parallel(&self) -> bool {
        self.indexes.len() == self.kinds.len() && self.kinds.len() == self.values.len()
    }
}

/// Why the host refused an emitted record.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum RecordFault {
    /// The module broke the boundary's contract (an entry no record type could hold): the
    /// module, not one of its fields, is at fault.
    Module {
        code: &'static str,
        message: &'static str,
    },
    /// The record breaks the module's own declaration: a field written twice, a required
    /// field missing.
    Findings(Vec<Finding>),
}

/// Space reused across the records of a batch.
#[derive(Debug, Default)]
pub(crate) struct RecordScratch {
    json: String,
    /// Per declared field: the number of the record that last wrote it. A new number per
    /// record forgets the previous record's fields without clearing anything.
    written_in: Vec<u32>,
    record: u32,
}

impl RecordScratch {
    fn begin(&mut self, fields: usize) {
        self.json.clear();
        if self.written_in.len() != fields || self.record == u32::MAX {
            self.written_in.clear();
            self.written_in.resize(fields, 0);
            self.record = 0;
        }
        self.record += 1;
    }

    /// Marks `first` written by the current record; false when it already was.
    fn mark(&mut self, first: usize) -> bool {
        let slot = &mut self.written_in[first];
        let fresh = *slot != self.record;
        *slot = self.record;
        fresh
    }

    fn wrote(&self, first: usize) -> bool {
        self.written_in[first] == self.record
    }

    /// The JSON of the record last written.
    pub(crate) fn json(&self) -> &str {
        &self.json
    }
}

impl DeclaredFields {
    pub(crate) fn new(fields: &[FieldSpec]) -> Self {
        let first = |name: &str| fields.iter().position(|g| g.name == name).unwrap_or(0);
        let fields: Vec<Declared> = fields
            .iter()
            .map(|f| {
                let mut key = String::with_capacity(f.name.len() + 3);
                let _ = push_json_string(&mut key, &f.name);
                key.push(':');
                Declared {
                    name: f.name.clone(),
                    key,
                    first: first(&f.name),
                    required: fields.iter().any(|g| g.required && g.name == f.name),
                }
            })
            .collect();
        let required_names = fields
            .iter()
            .enumerate()
            .filter(|(i, f)| f.required && f.first == *i)
            .count();
        Self {
            fields,
            required_names,
        }
    }

    /// Checks the record of `entries` and writes its JSON into `scratch` (read it with
    /// [`RecordScratch::json`]): `{"key":value,…}` in the order the module wrote its fields.
    /// Refused when its JSON would exceed `max_bytes`.
    pub(crate) fn write_record(
        &self,
        lists: &FieldLists<'_>,
        entries: Range<usize>,
        max_bytes: usize,
        scratch: &mut RecordScratch,
    ) -> Result<(), RecordFault> {
        let fault = |code, message| RecordFault::Module { code, message };
        if entries.end > lists.indexes.len() {
            return Err(fault(
                host_codes::RECORD_SPAN_INVALID,
                "the emitted record's entries are outside the batch's field lists",
            ));
        }
        scratch.begin(self.fields.len());
        scratch.json.push('{');
        let mut required = 0;
        let mut repeated: Vec<Finding> = Vec::new();
        let mut unstorable: Vec<Finding> = Vec::new();
        for entry in entries {
            let Some(field) = self.fields.get(usize::from(lists.indexes[entry])) else {
                return Err(fault(
                    host_codes::FIELD_INDEX_INVALID,
                    "the module emitted a field index beyond the fields it declared",
                ));
            };
            if !scratch.mark(field.first) {
                if !repeated.iter().any(|f| f.field == field.name) {
                    repeated.push(Finding {
                        field: field.name.clone(),
                        code: host_codes::FIELD_REPEATED.into(),
                        message: "the module wrote a field twice in one record".into(),
                    });
                }
                continue;
            }
            required += usize::from(field.required);
            let json = &mut scratch.json;
            if json.len() > 1 {
                json.push(',');
            }
            json.push_str(&field.key);
            let value = lists.values[entry];
            match lists.kinds[entry] {
                kind::TEXT => {
                    let start = (value >> 32) as usize;
                    let len = (value & 0xffff_ffff) as usize;
                    let Some(text) = lists.text.get(start..start.saturating_add(len)) else {
                        return Err(fault(
                            host_codes::FIELD_VALUE_INVALID,
                            "a text value's span is outside the batch's text or splits a \
                             character",
                        ));
                    };
                    // Checked before writing: a huge value is refused without being copied.
                    if json.len().saturating_add(len) > max_bytes {
                        return Err(too_large());
                    }
                    if push_json_string(json, text) {
                        unstorable.push(Finding {
                            field: field.name.clone(),
                            code: host_codes::CONTROL_CHARACTER.into(),
                            message: "the text holds a NUL or another control character (other \
                                      than tab and line breaks), which ReqCheck cannot store"
                                .into(),
                        });
                    }
                }
                kind::INTEGER => json.push_str(itoa::Buffer::new().format(value as i64)),
                kind::FLOAT => {
                    let float = f64::from_bits(value);
                    if !float.is_finite() {
                        return Err(fault(
                            host_codes::FIELD_VALUE_INVALID,
                            "a float value is NaN or infinite, which JSON cannot hold",
                        ));
                    }
                    // Display for a finite f64 is a valid JSON number that reads back exactly.
                    let _ = write!(json, "{float}");
                }
                kind::BOOLEAN => match value {
                    0 => json.push_str("false"),
                    1 => json.push_str("true"),
                    _ => {
                        return Err(fault(
                            host_codes::FIELD_VALUE_INVALID,
                            "a boolean value is neither 0 nor 1",
                        ));
                    }
                },
                _ => {
                    return Err(fault(
                        host_codes::FIELD_VALUE_INVALID,
                        "a field has a value kind this host does not know",
                    ));
                }
            }
        }
        scratch.json.push('}');
        if scratch.json.len() > max_bytes {
            return Err(too_large());
        }
        repeated.append(&mut unstorable);
        if required < self.required_names || !repeated.is_empty() {
            let missing = self
                .fields
                .iter()
                .enumerate()
                .filter(|(i, f)| f.required && f.first == *i && !scratch.wrote(*i))
                .map(|(_, f)| Finding {
                    field: f.name.clone(),
                    code: host_codes::REQUIRED_FIELD_MISSING.into(),
                    message: "the module emitted a record without a field it declared required"
                        .into(),
                });
            repeated.extend(missing);
            return Err(RecordFault::Findings(repeated));
        }
        Ok(())
    }

    /// Whether the record last written with `scratch` holds the field `name`.
    pub(crate) fn wrote(&self, scratch: &RecordScratch, name: &str) -> bool {
        self.fields
            .iter()
            .find(|f| f.name == name)
            .is_some_and(|f| scratch.wrote(f.first))
    }
}

/// The host's record writing on its own, for the native side of the `transform_cost`
/// benchmark: a module's native build hands over the same typed fields, and a native runtime
/// would have to write the same JSON. Not for production paths: `TransformInstance` owns the
/// real one, with the sandbox's record limit.
#[derive(Debug)]
pub struct RecordWriterForBenchmarks {
    declared: DeclaredFields,
    scratch: RecordScratch,
}

impl RecordWriterForBenchmarks {
    pub fn new(fields: &[FieldSpec]) -> Self {
        Self {
            declared: DeclaredFields::new(fields),
            scratch: RecordScratch::default(),
        }
    }

    /// The JSON of the record at entries `first..first + count`, or `None` when the host
    /// would refuse it.
    pub fn write(&mut self, lists: &FieldLists<'_>, first: u32, count: u32) -> Option<Box<str>> {
        let first = first as usize;
        let entries = first..first.saturating_add(count as usize);
        self.declared
            .write_record(lists, entries, usize::MAX, &mut self.scratch)
            .ok()
            .map(|()| self.scratch.json().into())
    }
}

fn too_large() -> RecordFault {
    RecordFault::Module {
        code: host_codes::OUTPUT_TOO_LARGE,
        message: "the emitted record is larger than the sandbox allows",
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::{Map, Value};

    use super::*;

    fn declared(fields: &[(&str, bool)]) -> DeclaredFields {
        DeclaredFields::new(
            &fields
                .iter()
                .map(|&(name, required)| FieldSpec {
                    name: name.into(),
                    required,
                })
                .collect::<Vec<_>>(),
        )
    }

    /// One record's typed entries, built the way a module builds them.
    #[derive(Debug, Default, Clone)]
    struct Entries {
        text: String,
        indexes: Vec<u16>,
        kinds: Vec<u8>,
        values: Vec<u64>,
    }

    impl Entries {
        fn text(mut self, index: u16, value: &str) -> Self {
            let start = self.text.len() as u64;
            self.text.push_str(value);
            self.raw(index, kind::TEXT, (start << 32) | value.len() as u64)
        }

        fn raw(mut self, index: u16, kind: u8, value: u64) -> Self {
            self.indexes.push(index);
            self.kinds.push(kind);
            self.values.push(value);
            self
        }

        fn lists(&self) -> FieldLists<'_> {
            FieldLists {
                text: &self.text,
                indexes: &self.indexes,
                kinds: &self.kinds,
                values: &self.values,
            }
        }

        fn write(&self, declared: &DeclaredFields) -> Result<String, RecordFault> {
            let mut scratch = RecordScratch::default();
            declared
                .write_record(&self.lists(), 0..self.indexes.len(), 1 << 20, &mut scratch)
                .map(|()| scratch.json().to_owned())
        }
    }

    fn module_fault(result: Result<String, RecordFault>) -> &'static str {
        match result {
            Err(RecordFault::Module { code, .. }) => code,
            other => panic!("expected a module fault, got {other:?}"),
        }
    }

    fn codes(result: Result<String, RecordFault>) -> Vec<String> {
        match result {
            Err(RecordFault::Findings(findings)) => findings
                .into_iter()
                .map(|f| format!("{}:{}", f.field, f.code))
                .collect(),
            other => panic!("expected findings, got {other:?}"),
        }
    }

    #[test]
    fn writes_each_kind_as_json_in_the_order_written() {
        let fields = declared(&[
            ("id", true),
            ("name", false),
            ("ok", false),
            ("score", false),
        ]);
        let entries = Entries::default()
            .text(1, "O\"Brien\n😀")
            .raw(0, kind::INTEGER, (-42i64) as u64)
            .raw(2, kind::BOOLEAN, 1)
            .raw(3, kind::FLOAT, 0.25f64.to_bits());
        assert_eq!(
            entries.write(&fields).expect("a valid record"),
            r#"{"name":"O\"Brien\n😀","id":-42,"ok":true,"score":0.25}"#
        );
        let entries = Entries::default()
            .raw(0, kind::INTEGER, i64::MIN as u64)
            .raw(2, kind::BOOLEAN, 0);
        assert_eq!(
            entries.write(&fields).expect("a valid record"),
            r#"{"id":-9223372036854775808,"ok":false}"#
        );
    }

    #[test]
    fn a_record_without_a_required_field_names_it() {
        let fields = declared(&[("id", true), ("name", true), ("note", false)]);
        let entries = Entries::default().text(2, "n");
        assert_eq!(
            codes(entries.write(&fields)),
            ["id:required-field-missing", "name:required-field-missing"]
        );
    }

    #[test]
    fn a_field_written_twice_is_a_finding_once() {
        let fields = declared(&[("id", true), ("name", false)]);
        let entries = Entries::default()
            .raw(0, kind::INTEGER, 1)
            .text(1, "a")
            .text(1, "b")
            .text(1, "c");
        assert_eq!(codes(entries.write(&fields)), ["name:field-repeated"]);
    }

    #[test]
    fn a_name_declared_twice_is_one_json_key() {
        // Writing it under both indexes would write the key twice.
        let fields = declared(&[("id", false), ("id", true)]);
        let once = Entries::default().raw(0, kind::INTEGER, 1);
        assert_eq!(once.write(&fields).expect("valid"), r#"{"id":1}"#);
        let twice = once.clone().raw(1, kind::INTEGER, 2);
        assert_eq!(codes(twice.write(&fields)), ["id:field-repeated"]);
        let none = Entries::default();
        assert_eq!(codes(none.write(&fields)), ["id:required-field-missing"]);
    }

    #[test]
    fn entries_the_contract_does_not_allow_are_module_faults() {
        let fields = declared(&[("id", false), ("name", false)]);
        let cases = [
            (
                Entries::default().raw(2, kind::INTEGER, 1),
                host_codes::FIELD_INDEX_INVALID,
            ),
            (
                Entries::default().raw(0, 4, 0),
                host_codes::FIELD_VALUE_INVALID,
            ),
            (
                Entries::default().raw(0, kind::BOOLEAN, 2),
                host_codes::FIELD_VALUE_INVALID,
            ),
            (
                Entries::default().raw(0, kind::FLOAT, f64::NAN.to_bits()),
                host_codes::FIELD_VALUE_INVALID,
            ),
            (
                Entries::default().raw(0, kind::FLOAT, f64::NEG_INFINITY.to_bits()),
                host_codes::FIELD_VALUE_INVALID,
            ),
            // A span past the text's end, and one ending inside "é".
            (
                Entries::default().raw(1, kind::TEXT, 1),
                host_codes::FIELD_VALUE_INVALID,
            ),
            (
                Entries {
                    text: "é".into(),
                    ..Entries::default()
                }
                .raw(1, kind::TEXT, 1),
                host_codes::FIELD_VALUE_INVALID,
            ),
            (
                Entries {
                    text: "é".into(),
                    ..Entries::default()
                }
                .raw(1, kind::TEXT, u64::MAX),
                host_codes::FIELD_VALUE_INVALID,
            ),
        ];
        for (entries, code) in cases {
            assert_eq!(module_fault(entries.write(&fields)), code, "{entries:?}");
        }
        let valid = Entries::default().raw(0, kind::INTEGER, 1);
        let mut scratch = RecordScratch::default();
        for range in [0..2, 1..3] {
            let result = fields.write_record(&valid.lists(), range, 1 << 20, &mut scratch);
            assert_eq!(
                result,
                Err(RecordFault::Module {
                    code: host_codes::RECORD_SPAN_INVALID,
                    message: "the emitted record's entries are outside the batch's field lists",
                })
            );
        }
    }

    #[test]
    fn a_record_larger_than_the_limit_is_refused_at_the_limit() {
        let fields = declared(&[("name", false)]);
        let entries = Entries::default().text(0, "abcd");
        let mut scratch = RecordScratch::default();
        let exact = r#"{"name":"abcd"}"#.len();
        let lists = entries.lists();
        assert!(
            fields
                .write_record(&lists, 0..1, exact, &mut scratch)
                .is_ok()
        );
        assert_eq!(
            fields.write_record(&lists, 0..1, exact - 1, &mut scratch),
            Err(too_large())
        );
        // A value longer than the limit on its own is refused before it is copied.
        assert_eq!(
            fields.write_record(&lists, 0..1, 3, &mut scratch),
            Err(too_large())
        );
    }

    #[test]
    fn the_scratch_forgets_the_previous_records_fields() {
        let fields = declared(&[("id", true), ("name", false)]);
        let entries = Entries::default()
            .raw(0, kind::INTEGER, 1)
            .text(1, "a")
            .raw(1, kind::TEXT, 0);
        let mut scratch = RecordScratch::default();
        let lists = entries.lists();
        assert!(
            fields
                .write_record(&lists, 0..2, 1024, &mut scratch)
                .is_ok()
        );
        assert!(fields.wrote(&scratch, "name"));
        // The next record writes `name` only: not a repeat, and `id` is missing.
        let second = fields.write_record(&lists, 2..3, 1024, &mut scratch);
        assert_eq!(
            codes(second.map(|()| String::new())),
            ["id:required-field-missing"]
        );
        assert!(!fields.wrote(&scratch, "id"));
        // The record counter wrapping around starts the marks afresh.
        scratch.record = u32::MAX - 1;
        for _ in 0..3 {
            assert!(
                fields
                    .write_record(&lists, 0..2, 1024, &mut scratch)
                    .is_ok()
            );
        }
    }

    /// A field value a module may hand over.
    #[derive(Debug, Clone)]
    enum TypedValue {
        Text(String),
        Integer(i64),
        Float(f64),
        Boolean(bool),
    }

    fn typed_value() -> impl Strategy<Value = TypedValue> {
        prop_oneof![
            any::<String>().prop_map(TypedValue::Text),
            "[a-z\"\\\\\n\u{0}-\u{1f}é😀]{0,12}".prop_map(TypedValue::Text),
            any::<i64>().prop_map(TypedValue::Integer),
            any::<f64>()
                .prop_filter("finite", |f| f.is_finite())
                .prop_map(TypedValue::Float),
            any::<bool>().prop_map(TypedValue::Boolean),
        ]
    }

    proptest! {
        /// Whatever valid fields a module hands over, the host's JSON parses back to exactly
        /// those fields, in the order written.
        #[test]
        fn written_records_parse_back_to_the_fields_handed_over(
            values in proptest::collection::vec(typed_value(), 6),
            order in Just((0u16..6).collect::<Vec<_>>()).prop_shuffle(),
            written in 0usize..=6,
        ) {
            let names = ["a", "b\"q", "c\\", "é", "e\n", "f"];
            let fields = declared(&names.map(|n| (n, false)));
            let mut entries = Entries::default();
            let mut expected = Map::new();
            for &i in &order[..written] {
                let value = &values[usize::from(i)];
                entries = match value {
                    TypedValue::Text(s) => entries.text(i, s),
                    TypedValue::Integer(n) => entries.raw(i, kind::INTEGER, *n as u64),
                    TypedValue::Float(f) => entries.raw(i, kind::FLOAT, f.to_bits()),
                    TypedValue::Boolean(b) => entries.raw(i, kind::BOOLEAN, u64::from(*b)),
                };
                let json = match value {
                    TypedValue::Text(s) => Value::from(s.as_str()),
                    TypedValue::Integer(n) => Value::from(*n),
                    TypedValue::Float(f) => Value::from(*f),
                    TypedValue::Boolean(b) => Value::from(*b),
                };
                expected.insert(names[usize::from(i)].to_owned(), json);
            }
            // Text ReqCheck cannot store (NUL, other control characters) rejects the record,
            // naming each such field in the order written.
            let unstorable: Vec<&str> = order[..written]
                .iter()
                .filter(|&&i| matches!(&values[usize::from(i)], TypedValue::Text(s)
                    if s.bytes().any(|b| b < 0x20 && !matches!(b, b'\t' | b'\n' | b'\r'))))
                .map(|&i| names[usize::from(i)])
                .collect();
            if !unstorable.is_empty() {
                let Err(RecordFault::Findings(findings)) = entries.write(&fields) else {
                    panic!("a control character must reject the record");
                };
                let named: Vec<(&str, &str)> = findings
                    .iter()
                    .map(|f| (f.field.as_str(), f.code.as_str()))
                    .collect();
                let expected: Vec<(&str, &str)> = unstorable
                    .iter()
                    .map(|&n| (n, host_codes::CONTROL_CHARACTER))
                    .collect();
                prop_assert_eq!(named, expected);
                return Ok(());
            }
            let text = entries.write(&fields).expect("valid fields");
            let parsed: Map<String, Value> = serde_json::from_str(&text).expect("valid JSON");
            prop_assert_eq!(parsed.len(), expected.len());
            let mut previous_key_at = None;
            for &i in &order[..written] {
                let key = names[usize::from(i)];
                let quoted = format!("{}:", Value::from(key));
                let at = text.find(&quoted).expect("every key written");
                // In the order the module wrote them.
                prop_assert!(previous_key_at < Some(at));
                previous_key_at = Some(at);
                match (&expected[key], parsed.get(key)) {
                    // Floats compared by what std reads back: serde_json's default float
                    // parser is not exact.
                    (Value::Number(n), Some(Value::Number(_))) if n.is_f64() => {
                        let start = at + quoted.len();
                        let end = text[start..].find([',', '}']).expect("value ends") + start;
                        prop_assert_eq!(text[start..end].parse::<f64>().ok(), n.as_f64());
                    }
                    (expected, got) => prop_assert_eq!(Some(expected), got),
                }
            }
        }
    }
}
