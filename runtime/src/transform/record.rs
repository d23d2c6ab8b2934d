//! An emitted record: its JSON text, carried as text to the request body.
//!
//! The host writes each record's JSON once, from the typed fields the module handed over
//! (`declared.rs`). Building a `serde_json::Map` per record and serialising it for the body
//! cost more than the transform did (profiled on a 500k-row sync), so a record keeps its
//! text: the body template writes it out as it is, and the field map is only built when
//! something reads a field (a template that picks fields, a test, `transform try`).

use std::sync::{Arc, OnceLock};

use serde_json::{Map, Value};

use crate::reqcheck::Target;

/// One record as the module emitted it. Cloning is cheap (shared text).
#[derive(Clone)]
pub struct Record(Arc<Inner>);

/// What a record shares between its clones; also the object a body template sees
/// ([`Record::to_template_value`]).
pub(crate) struct Inner {
    /// A JSON object, written by the host when the record was made.
    json: Box<str>,
    fields: OnceLock<Map<String, Value>>,
    /// The ReqCheck record type whose rules the record's keys were found to keep when it was
    /// made (only keys it accepts, every key it requires not null): a body template that
    /// writes the record whole need not scan its text again. `None`: not known.
    fits: Option<&'static Target>,
}

impl Inner {
    /// The record's JSON text.
    pub(crate) fn json(&self) -> &str {
        &self.json
    }

    fn fields(&self) -> &Map<String, Value> {
        self.fields.get_or_init(|| {
            // The host wrote the text as a JSON object when the record was made (or serialised
            // a map, `From<Map>`), so this cannot fail; the message names no value.
            match serde_json::from_str::<Value>(&self.json) {
                Ok(Value::Object(map)) => map,
                _ => unreachable!("a record's text was checked to be a JSON object"),
            }
        })
    }
}

impl Record {
    /// A record from JSON text known to be one object: the host wrote it from the module's
    /// checked fields (`declared.rs`).
    pub(crate) fn from_host_json(json: &str, fits: Option<&'static Target>) -> Self {
        Self(Arc::new(Inner {
            json: json.into(),
            fields: OnceLock::new(),
            fits,
        }))
    }

    /// Whether the record's keys are known to keep `target`'s rules (see `Inner::fits`).
    pub(crate) fn fits(&self, target: &Target) -> bool {
        self.0.fits.is_some_and(|fits| fits.name == target.name)
    }

    /// The record's JSON text.
    pub fn json(&self) -> &str {
        self.0.json()
    }

    /// The record's fields, parsed on first use.
    pub fn fields(&self) -> &Map<String, Value> {
        self.0.fields()
    }

    /// The record as a body template sees it, sharing this record's allocation: a template
    /// value made with `Value::from_object` would be one more allocation per record rendered
    /// (a million in a million-dose sync).
    pub(crate) fn to_template_value(&self) -> minijinja::Value {
        minijinja::Value::from_dyn_object(Arc::clone(&self.0))
    }
}

/// Records hold PHI: Debug shows the field names only (the template engine requires Debug).
impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Record")
            .field("fields", &self.fields().keys().collect::<Vec<_>>())
            .finish()
    }
}

impl From<Map<String, Value>> for Record {
    fn from(fields: Map<String, Value>) -> Self {
        let json = Value::Object(fields.clone()).to_string();
        let fields = OnceLock::from(fields);
        Self(Arc::new(Inner {
            json: json.into(),
            fields,
            fits: None,
        }))
    }
}

/// Field access reads like the map it is (`record["dob"]`, `record.keys()`).
impl std::ops::Deref for Record {
    type Target = Map<String, Value>;

    fn deref(&self) -> &Self::Target {
        self.fields()
    }
}

/// Two records are equal when their fields are, however the JSON was spelt (key order,
/// spacing, escapes): records made from maps and records written from typed fields may differ
/// in key order.
impl PartialEq for Record {
    fn eq(&self, other: &Self) -> bool {
        self.0.json == other.0.json || self.fields() == other.fields()
    }
}

impl PartialEq<Map<String, Value>> for Record {
    fn eq(&self, other: &Map<String, Value>) -> bool {
        self.fields() == other
    }
}

/// Records hold PHI: Debug shows the field names only.
impl std::fmt::Debug for Record {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl serde::Serialize for Record {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.fields().serialize(s)
    }
}

/// In a body template a record is a map of its fields; written out whole (`{{ record }}`) it
/// is its own JSON text (see [`crate::render`]'s formatter).
impl minijinja::value::Object for Inner {
    fn repr(self: &Arc<Self>) -> minijinja::value::ObjectRepr {
        minijinja::value::ObjectRepr::Map
    }

    fn get_value(self: &Arc<Self>, key: &minijinja::Value) -> Option<minijinja::Value> {
        let value = self.fields().get(key.as_str()?)?;
        Some(minijinja::Value::from(minijinja::value::Serde(value)))
    }

    fn enumerate(self: &Arc<Self>) -> minijinja::value::Enumerator {
        let keys: Vec<minijinja::Value> = self
            .fields()
            .keys()
            .map(|k| minijinja::Value::from(k.as_str()))
            .collect();
        minijinja::value::Enumerator::Values(keys)
    }

    fn enumerator_len(self: &Arc<Self>) -> Option<usize> {
        Some(self.fields().len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_keeps_its_text_and_reads_as_its_fields() {
        let r = Record::from_host_json(r#"{"b": 1, "a": "x"}"#, None);
        assert_eq!(r.json(), r#"{"b": 1, "a": "x"}"#);
        assert_eq!(r["a"], "x");
        assert_eq!(r.keys().collect::<Vec<_>>(), ["a", "b"]);
    }

    #[test]
    fn records_are_equal_by_fields_not_spelling() {
        let a = Record::from_host_json(r#"{"b":1,"a":"x"}"#, None);
        let b = Record::from_host_json(r#"{ "a": "\u0078", "b": 1 }"#, None);
        assert_eq!(a, b);
        let c = Record::from_host_json(r#"{"a":"y","b":1}"#, None);
        assert_ne!(a, c);
    }

    #[test]
    fn a_record_from_a_map_has_matching_text() {
        let mut map = Map::new();
        map.insert("dob".into(), Value::from("2001-02-03"));
        let r = Record::from(map.clone());
        assert_eq!(
            serde_json::from_str::<Value>(r.json()).expect("json"),
            Value::Object(map)
        );
    }
}
