//! One value read from a source, before the transform host converts it to what the module
//! declared.

use chrono::{NaiveDate, NaiveDateTime, NaiveTime};
use compact_str::CompactString;

/// A cell of a source row. Engines map their types onto these; the transform host converts them
/// to the column type a module declares.
#[derive(Clone, PartialEq)]
pub enum Value {
    Null,
    Int(i64),
    Float(f64),
    /// Inline up to 24 bytes: a full sync reads a dozen text cells per row, and a `String`
    /// each was an allocation on the reading thread and a free on the transform thread.
    Text(CompactString),
    Bool(bool),
    Date(NaiveDate),
    Time(NaiveTime),
    /// Local clinic time, no offset.
    Timestamp(NaiveDateTime),
    Bytes(Vec<u8>),
}

impl Value {
    /// The kind of value, for messages that must not show the value itself.
    pub fn kind(&self) -> &'static str {
        self.as_cell().kind()
    }
}

/// Row values are protected health information: Debug shows the kind only, so a value can never
/// reach a log line or a panic message through `{:?}`.
impl std::fmt::Debug for Value {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "<{}>", self.kind())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_never_shows_the_value() {
        let v = Value::Text("Jane O'Brien".into());
        assert_eq!(format!("{v:?}"), "<text>");
        assert!(!format!("{:?}", vec![v]).contains("Jane"));
    }
}
