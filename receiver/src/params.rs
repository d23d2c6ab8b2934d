//! Request bodies turned into Rails 4.2 `params`.
//!
//! The real app never sees the JSON text: Rails' `ParamsParser` middleware decodes it (400 on a
//! parse error, before routing and auth), wraps a non-object body as `{"_json": ...}` and runs
//! `deep_munge`, which drops `null`s inside arrays and turns an empty array into `nil`. That is
//! why `{"patient_data": []}` is a 400. Objects keep their key order (Ruby hashes are ordered,
//! and the order shows in `Extraneous arguments [...]` messages), which `serde_json::Map`
//! without `preserve_order` would lose, hence this small value type.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, Deserialize, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::ser::{Serialize, SerializeMap, SerializeSeq, Serializer};

/// One JSON value as the controller sees it. Strings and keys borrow the request body where
/// the JSON text holds them verbatim (no escapes): a body of 500 records has some 7,000 keys
/// and 6,000 strings, and copying each one out was a fifth of the receiver's work.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Param<'a> {
    Null,
    Bool(bool),
    Number(serde_json::Number),
    Str(Cow<'a, str>),
    Array(Vec<Param<'a>>),
    Object(Object<'a>),
}

/// A JSON object with Ruby `Hash` semantics: insertion order, a repeated key keeps its first
/// position and takes the last value.
#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct Object<'a>(Vec<(Cow<'a, str>, Param<'a>)>);

impl<'a> Object<'a> {
    pub(crate) fn get(&self, key: &str) -> Option<&Param<'a>> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// Ruby's `hash[key].nil?`: the key is missing or its value is `null`.
    pub(crate) fn is_nil(&self, key: &str) -> bool {
        matches!(self.get(key), None | Some(Param::Null))
    }

    /// Ruby's `hash[key] = value`.
    pub(crate) fn insert(&mut self, key: &'static str, value: Param<'a>) {
        self.insert_key(Cow::Borrowed(key), value);
    }

    fn insert_key(&mut self, key: Cow<'a, str>, value: Param<'a>) {
        match self.0.iter_mut().find(|(k, _)| *k == key) {
            Some(slot) => slot.1 = value,
            None => self.0.push((key, value)),
        }
    }

    /// Ruby's `hash.delete(key)`.
    pub(crate) fn remove(&mut self, key: &str) -> Option<Param<'a>> {
        let at = self.0.iter().position(|(k, _)| k == key)?;
        Some(self.0.remove(at).1)
    }

    pub(crate) fn keys(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(|(k, _)| k.as_ref())
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = (&str, &Param<'a>)> {
        self.0.iter().map(|(k, v)| (k.as_ref(), v))
    }

    /// The record as JSON text, keys in the order received (what `raw_hash` keeps).
    pub(crate) fn to_json(&self) -> String {
        // Serialising a tree of strings, numbers and bools into a String cannot fail.
        serde_json::to_string(self).unwrap_or_else(|_| "{}".to_owned())
    }
}

/// The body could not be decoded; Rails answers 400 before any controller code runs.
#[derive(Debug)]
pub(crate) struct Malformed;

/// Rails 4.2 `ParamsParser` + `deep_munge` for one request body.
///
/// Bodies that are empty or not declared as JSON are not parsed at all (Rails only decodes
/// `application/json` and its aliases), so they reach the controller as empty params and get
/// the "key missing" 400 after auth.
pub(crate) fn from_body<'a>(
    content_type: Option<&str>,
    body: &'a [u8],
) -> Result<Object<'a>, Malformed> {
    if body.is_empty() || !is_json_content_type(content_type) {
        return Ok(Object::default());
    }
    // Checked as a whole once, so the parser need not check each string on its own; bytes
    // that are not UTF-8 were a parse error before, and still are.
    let text = std::str::from_utf8(body).map_err(|_| Malformed)?;
    let value: Param = serde_json::from_str(text).map_err(|_| Malformed)?;
    let mut params = match value {
        Param::Object(object) => object,
        other => {
            let mut wrapped = Object::default();
            wrapped.insert("_json", other);
            wrapped
        }
    };
    deep_munge(&mut params);
    Ok(params)
}

/// The MIME types Rails 4.2 registers for `:json`.
fn is_json_content_type(content_type: Option<&str>) -> bool {
    let Some(value) = content_type else {
        return false;
    };
    let media_type = value.split(';').next().unwrap_or("").trim();
    ["application/json", "text/x-json", "application/jsonrequest"]
        .iter()
        .any(|json| media_type.eq_ignore_ascii_case(json))
}

/// `ActionDispatch::Request::Utils.deep_munge` (Rails 4.2): in every hash, array values lose
/// their `nil`s and become `nil` when empty; hashes inside those arrays are munged too. Arrays
/// nested directly in arrays are left alone, as in Rails.
fn deep_munge(object: &mut Object<'_>) {
    for (_, value) in object.0.iter_mut() {
        match value {
            Param::Array(items) => {
                for item in items.iter_mut() {
                    if let Param::Object(inner) = item {
                        deep_munge(inner);
                    }
                }
                items.retain(|item| *item != Param::Null);
                if items.is_empty() {
                    *value = Param::Null;
                }
            }
            Param::Object(inner) => deep_munge(inner),
            _ => {}
        }
    }
}

impl<'de> Deserialize<'de> for Param<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(ParamVisitor)
    }
}

struct ParamVisitor;

impl<'de> Visitor<'de> for ParamVisitor {
    type Value = Param<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_unit<E: de::Error>(self) -> Result<Param<'de>, E> {
        Ok(Param::Null)
    }

    fn visit_none<E: de::Error>(self) -> Result<Param<'de>, E> {
        Ok(Param::Null)
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Param<'de>, E> {
        Ok(Param::Bool(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Param<'de>, E> {
        Ok(Param::Number(v.into()))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Param<'de>, E> {
        Ok(Param::Number(v.into()))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Param<'de>, E> {
        serde_json::Number::from_f64(v)
            .map(Param::Number)
            .ok_or_else(|| E::custom("non-finite number"))
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Param<'de>, E> {
        Ok(Param::Str(Cow::Borrowed(v)))
    }

    /// A string with escapes, unescaped into a scratch buffer: the one case that copies.
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Param<'de>, E> {
        Ok(Param::Str(Cow::Owned(v.to_owned())))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Param<'de>, E> {
        Ok(Param::Str(Cow::Owned(v)))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Param<'de>, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
        while let Some(item) = seq.next_element::<Param<'de>>()? {
            items.push(item);
        }
        Ok(Param::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Param<'de>, A::Error> {
        // Room for a whole record up front: grown from empty, a record's 13–19 keys cost
        // three reallocations (3 % of an import).
        const KEYS_AHEAD: usize = 20;
        let mut object = Object(Vec::with_capacity(
            map.size_hint().unwrap_or(KEYS_AHEAD).min(KEYS_AHEAD),
        ));
        // A key whose bit is not yet set cannot repeat an earlier key, so only keys whose bit
        // is set are compared with the others: comparing every key with every earlier one
        // was 3 % of an import, for records that almost never repeat a key.
        let mut seen: u64 = 0;
        while let Some(key) = map.next_key_seed(KeySeed)? {
            let value = map.next_value::<Param<'de>>()?;
            let bit = key_bit(&key);
            if seen & bit == 0 {
                object.0.push((key, value));
            } else {
                object.insert_key(key, value);
            }
            seen |= bit;
        }
        Ok(Param::Object(object))
    }
}

/// One of 64 bits for a key, from its length and its first and last bytes: equal keys always
/// get the same bit.
fn key_bit(key: &str) -> u64 {
    let b = key.as_bytes();
    let (first, last) = (b.first().copied(), b.last().copied());
    let mix = (b.len() as u64)
        .wrapping_mul(0x9e37_79b9_7f4a_7c15)
        .wrapping_add(u64::from(first.unwrap_or(0)) << 8 | u64::from(last.unwrap_or(0)))
        .wrapping_mul(0xff51_afd7_ed55_8ccd);
    1 << (mix >> 58)
}

/// Reads an object key, borrowed from the body unless it holds escapes.
struct KeySeed;

impl<'de> DeserializeSeed<'de> for KeySeed {
    type Value = Cow<'de, str>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeySeed {
    type Value = Cow<'de, str>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object key")
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Cow::Borrowed(v))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Cow::Owned(v.to_owned()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
        Ok(Cow::Owned(v))
    }
}

impl Serialize for Param<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Param::Null => serializer.serialize_unit(),
            Param::Bool(b) => serializer.serialize_bool(*b),
            Param::Number(n) => n.serialize(serializer),
            Param::Str(s) => serializer.serialize_str(s),
            Param::Array(items) => {
                let mut seq = serializer.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(item)?;
                }
                seq.end()
            }
            Param::Object(object) => object.serialize(serializer),
        }
    }
}

impl Serialize for Object<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (k, v) in &self.0 {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const JSON: Option<&str> = Some("application/json; charset=utf-8");

    fn parse(body: &str) -> Object<'_> {
        from_body(JSON, body.as_bytes()).expect("valid JSON")
    }

    #[test]
    fn empty_array_becomes_nil_like_rails_deep_munge() {
        let params = parse(r#"{"patient_data": []}"#);
        assert!(params.is_nil("patient_data"));
        let params = parse(r#"{"patient_data": [null, null]}"#);
        assert!(params.is_nil("patient_data"));
    }

    #[test]
    fn nulls_inside_arrays_are_dropped_and_nested_hashes_munged() {
        let params = parse(r#"{"d": [null, {"a": [], "b": [1, null]}]}"#);
        let Some(Param::Array(items)) = params.get("d") else {
            panic!("array expected");
        };
        assert_eq!(items.len(), 1);
        let Param::Object(record) = &items[0] else {
            panic!("object expected");
        };
        assert!(record.is_nil("a"));
        assert_eq!(
            record.get("b"),
            Some(&Param::Array(vec![Param::Number(1.into())]))
        );
    }

    #[test]
    fn key_order_and_duplicate_keys_follow_ruby_hash() {
        let params = parse(r#"{"z": 1, "a": 2, "z": 3}"#);
        assert_eq!(params.keys().collect::<Vec<_>>(), ["z", "a"]);
        assert_eq!(params.get("z"), Some(&Param::Number(3.into())));
        assert_eq!(params.to_json(), r#"{"z":3,"a":2}"#);
    }

    #[test]
    fn a_repeated_key_keeps_its_first_place_whatever_keys_come_between() {
        // Many keys, so that bits are shared by different keys too.
        let keys: Vec<String> = (0..80).map(|i| format!("k{i}")).collect();
        let mut body = String::from("{");
        for (i, k) in keys.iter().enumerate() {
            body.push_str(&format!("\"{k}\": {i}, "));
        }
        body.push_str(r#""k3": "again", "k79": "last", "k0": null}"#);
        let params = parse(&body);
        assert_eq!(params.keys().collect::<Vec<_>>(), keys);
        assert_eq!(params.get("k3"), Some(&Param::Str(Cow::Borrowed("again"))));
        assert_eq!(params.get("k79"), Some(&Param::Str(Cow::Borrowed("last"))));
        assert_eq!(params.get("k0"), Some(&Param::Null));
    }

    #[test]
    fn strings_and_keys_with_escapes_are_unescaped_and_plain_ones_borrow_the_body() {
        let body = r#"{"d": [{"plain": "Ada", "t\u0061b": "a\tb \"q\" \u00e9"}]}"#;
        let params = parse(body);
        let Some(Param::Array(items)) = params.get("d") else {
            panic!("array expected");
        };
        let Param::Object(record) = &items[0] else {
            panic!("object expected");
        };
        assert_eq!(record.keys().collect::<Vec<_>>(), ["plain", "tab"]);
        let Some(Param::Str(plain)) = record.get("plain") else {
            panic!("string expected");
        };
        assert!(
            matches!(plain, Cow::Borrowed(_)),
            "verbatim text is borrowed"
        );
        assert_eq!(
            record.get("tab"),
            Some(&Param::Str(Cow::Owned("a\tb \"q\" \u{e9}".to_owned())))
        );
        assert_eq!(record.to_json(), r#"{"plain":"Ada","tab":"a\tb \"q\" é"}"#);
    }

    #[test]
    fn malformed_json_is_rejected_but_non_json_bodies_are_ignored() {
        assert!(from_body(JSON, b"{not json").is_err());
        assert!(from_body(JSON, b"   ").is_err());
        assert!(from_body(Some("text/plain"), b"{not json").is_ok());
        assert!(from_body(None, b"{not json").is_ok());
        assert!(from_body(JSON, b"").is_ok());
    }

    #[test]
    fn non_object_body_is_wrapped_as_json_param() {
        let params = parse("[1]");
        assert!(params.get("_json").is_some());
        assert!(params.is_nil("patient_data"));
    }
}
