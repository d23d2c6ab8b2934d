//! The shape of JSON text — is it an object, which keys does it have, which of them are null —
//! read in one pass without building a value tree.
//!
//! Every record a module emits and every request body a template renders is checked for its
//! keys before it is sent. Parsing those into `serde_json::Value`s to look at their keys cost
//! more than the transform itself (an allocation per key and per string value, a B-tree per
//! object); this parser validates the same grammar with serde_json but keeps only key names,
//! borrowed from the text where they contain no escapes.

use std::borrow::Cow;
use std::fmt;

use serde::Deserializer as _;
use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};

/// The `visit_*` methods of every JSON scalar (null, booleans, numbers, strings), answering
/// `$answer` (or `$null` for null): the visitors below only tell objects and arrays, and null,
/// apart from everything else.
macro_rules! scalars_answer {
    ($answer:expr) => {
        scalars_answer!(null: $answer, others: $answer);
    };
    (null: $null:expr, others: $answer:expr) => {
        fn visit_unit<E>(self) -> Result<Self::Value, E> {
            Ok($null)
        }
        fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
            Ok($answer)
        }
        fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
            Ok($answer)
        }
        fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
            Ok($answer)
        }
        fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
            Ok($answer)
        }
        fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
            Ok($answer)
        }
    };
}

/// The keys of one JSON object in text order, each with whether its value is `null`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct ObjectKeys<'a> {
    pub keys: Vec<(Cow<'a, str>, bool)>,
}

impl ObjectKeys<'_> {
    /// The key names, in text order (a repeated key appears twice).
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.keys.iter().map(|(k, _)| k.as_ref())
    }

    /// Whether the object has `key` with a value other than `null` (the last occurrence of a
    /// repeated key counts, as it does for every JSON parser that keeps one).
    pub(crate) fn has_non_null(&self, key: &str) -> bool {
        self.keys
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .is_some_and(|(_, null)| !null)
    }

    /// The keys the object has more than once, each named once, in text order. JSON readers
    /// disagree on which of two values for one key counts (ReqCheck, on Rails, takes the last;
    /// others take the first or refuse the text), so a body holding one is never sent.
    /// Quadratic in the object's keys: records have a few dozen at most.
    pub fn repeated(&self) -> Vec<&str> {
        let mut repeated: Vec<&str> = Vec::new();
        for (i, (key, _)) in self.keys.iter().enumerate() {
            let key = key.as_ref();
            if !repeated.contains(&key) && self.keys[..i].iter().any(|(k, _)| k == key) {
                repeated.push(key);
            }
        }
        repeated
    }
}

/// What a piece of JSON text is, as far as a record check needs to know.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Shape<'a> {
    Object(ObjectKeys<'a>),
    /// Valid JSON, but not an object.
    Other,
}

/// A request body: an object whose `key` holds an array of records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum BodyShape<'a> {
    /// The body is not a JSON object.
    NotObject,
    /// The body is an object without the key.
    Missing,
    /// The key holds something other than an array.
    NotArray,
    /// The body has the key more than once: readers disagree on which array counts.
    RepeatedKey,
    /// The array's elements.
    Records(Vec<Shape<'a>>),
}

/// Reads `text` as one JSON value. Errors are serde_json's, which name a line and column and
/// never quote the text. (The body check reads records with [`body_elements`]; this is its
/// reference in tests.)
#[cfg(test)]
pub fn shape(text: &str) -> Result<Shape<'_>, serde_json::Error> {
    let mut de = serde_json::Deserializer::from_str(text);
    let shape = ShapeSeed.deserialize(&mut de)?;
    de.end()?;
    Ok(shape)
}

/// Reads `text` as a request body whose records are under `key`.
pub(crate) fn body_shape<'a>(text: &'a str, key: &str) -> Result<BodyShape<'a>, serde_json::Error> {
    let mut de = serde_json::Deserializer::from_str(text);
    let shape = (&mut de).deserialize_any(BodyVisitor { key })?;
    de.end()?;
    Ok(shape)
}

/// One element of a body's records array, as [`body_elements`] hands it over.
#[derive(Debug)]
pub(crate) enum Element<'k, 'a> {
    /// An object, with its keys.
    Object(&'k ObjectKeys<'a>),
    /// A string, with its value.
    Text(&'k str),
    /// Any other value.
    Other,
}

/// Reads `text` as a request body whose records are under `key`, handing each element of that
/// array to `each` as it is read: no value per element, one key buffer for all of them.
/// `Some(n)`: the array had `n` elements. `None`: the body is not an object, lacks the key,
/// holds something other than an array there, or has the key more than once (then `each` may
/// have seen the elements of more than one array).
pub(crate) fn body_elements<'a>(
    text: &'a str,
    key: &str,
    mut each: impl FnMut(Element<'_, 'a>),
) -> Result<Option<usize>, serde_json::Error> {
    let mut de = serde_json::Deserializer::from_str(text);
    let found = (&mut de).deserialize_any(ElementsBodyVisitor {
        key,
        each: &mut each,
    })?;
    de.end()?;
    Ok(found)
}

/// An object key, borrowed from the text unless it had escapes.
struct KeySeed;

impl<'de> DeserializeSeed<'de> for KeySeed {
    type Value = Cow<'de, str>;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeySeed {
    type Value = Cow<'de, str>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an object key")
    }
    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Cow::Borrowed(v))
    }
    fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Cow::Owned(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
        Ok(Cow::Owned(v))
    }
}

/// Any value, skipped; answers whether it was `null`.
struct IsNull;

impl<'de> DeserializeSeed<'de> for IsNull {
    type Value = bool;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<bool, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for IsNull {
    type Value = bool;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }
    scalars_answer!(null: true, others: false);
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<bool, A::Error> {
        drain_seq(seq).map(|()| false)
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<bool, A::Error> {
        drain_map(map).map(|()| false)
    }
}

// Nested values are read through `deserialize_any` (`IsNull`), not skipped with `IgnoredAny`:
// serde_json's skipping does not range-check numbers or pair surrogate escapes, and text that
// passes here must parse as a `serde_json::Value` too (a record's fields are parsed from it
// later).
fn drain_seq<'de, A: SeqAccess<'de>>(mut seq: A) -> Result<(), A::Error> {
    while seq.next_element_seed(IsNull)?.is_some() {}
    Ok(())
}

fn drain_map<'de, A: MapAccess<'de>>(mut map: A) -> Result<(), A::Error> {
    while map.next_key_seed(KeySeed)?.is_some() {
        map.next_value_seed(IsNull)?;
    }
    Ok(())
}

/// Any value; an object's keys are pushed onto the vector. Answers whether it was an object.
struct KeysInto<'b, 'de>(&'b mut Vec<(Cow<'de, str>, bool)>);

impl<'de> DeserializeSeed<'de> for KeysInto<'_, 'de> {
    type Value = bool;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<bool, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for KeysInto<'_, 'de> {
    type Value = bool;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<bool, A::Error> {
        while let Some(key) = map.next_key_seed(KeySeed)? {
            let null = map.next_value_seed(IsNull)?;
            self.0.push((key, null));
        }
        Ok(true)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<bool, A::Error> {
        drain_seq(seq).map(|()| false)
    }
    scalars_answer!(false);
}

/// Any value: an object's keys, or `Other`.
struct ShapeSeed;

impl<'de> DeserializeSeed<'de> for ShapeSeed {
    type Value = Shape<'de>;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ShapeSeed {
    type Value = Shape<'de>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        let mut keys = Vec::with_capacity(16);
        KeysInto(&mut keys).visit_map(map)?;
        Ok(Shape::Object(ObjectKeys { keys }))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        drain_seq(seq).map(|()| Shape::Other)
    }
    scalars_answer!(Shape::Other);
}

/// The value under the body key: the shapes of an array's elements, or `None` for a non-array.
struct RecordsSeed;

impl<'de> DeserializeSeed<'de> for RecordsSeed {
    type Value = Option<Vec<Shape<'de>>>;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for RecordsSeed {
    type Value = Option<Vec<Shape<'de>>>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut records = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        while let Some(shape) = seq.next_element_seed(ShapeSeed)? {
            records.push(shape);
        }
        Ok(Some(records))
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        drain_map(map).map(|()| None)
    }
    scalars_answer!(None);
}

struct BodyVisitor<'k> {
    key: &'k str,
}

impl<'de> Visitor<'de> for BodyVisitor<'_> {
    type Value = BodyShape<'de>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut found = BodyShape::Missing;
        while let Some(key) = map.next_key_seed(KeySeed)? {
            if key == self.key {
                let value = map.next_value_seed(RecordsSeed)?;
                // A repeated body key: parsers disagree on which array counts (the last for
                // ReqCheck, the first for others), so the body says nothing reliable.
                found = match (found, value) {
                    (BodyShape::Missing, Some(records)) => BodyShape::Records(records),
                    (BodyShape::Missing, None) => BodyShape::NotArray,
                    _ => BodyShape::RepeatedKey,
                };
            } else {
                map.next_value_seed(IsNull)?;
            }
        }
        Ok(found)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        drain_seq(seq).map(|()| BodyShape::NotObject)
    }
    scalars_answer!(BodyShape::NotObject);
}

/// The body for [`body_elements`]: `Some(n)` when `key` holds an array of `n` elements, once.
struct ElementsBodyVisitor<'k, F> {
    key: &'k str,
    each: &'k mut F,
}

impl<'de, F: FnMut(Element<'_, 'de>)> Visitor<'de> for ElementsBodyVisitor<'_, F> {
    type Value = Option<usize>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut found = None;
        let mut times = 0;
        while let Some(key) = map.next_key_seed(KeySeed)? {
            if key == self.key {
                times += 1;
                found = map.next_value_seed(ElementsSeed {
                    each: &mut *self.each,
                })?;
            } else {
                map.next_value_seed(IsNull)?;
            }
        }
        Ok(found.filter(|_| times == 1))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        drain_seq(seq).map(|()| None)
    }
    scalars_answer!(None);
}

/// The value under the body key: each element of an array handed to `each`; `None` for a
/// non-array.
struct ElementsSeed<'k, F> {
    each: &'k mut F,
}

impl<'de, F: FnMut(Element<'_, 'de>)> DeserializeSeed<'de> for ElementsSeed<'_, F> {
    type Value = Option<usize>;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de, F: FnMut(Element<'_, 'de>)> Visitor<'de> for ElementsSeed<'_, F> {
    type Value = Option<usize>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut keys = ObjectKeys::default();
        let mut count = 0;
        while seq
            .next_element_seed(ElementSeed {
                keys: &mut keys,
                each: &mut *self.each,
            })?
            .is_some()
        {
            count += 1;
        }
        Ok(Some(count))
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        drain_map(map).map(|()| None)
    }
    scalars_answer!(None);
}

/// One array element, handed to `each`.
struct ElementSeed<'k, 'de, F> {
    keys: &'k mut ObjectKeys<'de>,
    each: &'k mut F,
}

impl<'de, F: FnMut(Element<'_, 'de>)> DeserializeSeed<'de> for ElementSeed<'_, 'de, F> {
    type Value = ();

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de, F: FnMut(Element<'_, 'de>)> Visitor<'de> for ElementSeed<'_, 'de, F> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<(), A::Error> {
        self.keys.keys.clear();
        KeysInto(&mut self.keys.keys).visit_map(map)?;
        (self.each)(Element::Object(self.keys));
        Ok(())
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<(), A::Error> {
        drain_seq(seq)?;
        (self.each)(Element::Other);
        Ok(())
    }
    fn visit_str<E>(self, v: &str) -> Result<(), E> {
        (self.each)(Element::Text(v));
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        (self.each)(Element::Other);
        Ok(())
    }
    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        (self.each)(Element::Other);
        Ok(())
    }
    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        (self.each)(Element::Other);
        Ok(())
    }
    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        (self.each)(Element::Other);
        Ok(())
    }
    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        (self.each)(Element::Other);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(shape: Shape<'_>) -> Vec<(String, bool)> {
        match shape {
            Shape::Object(o) => o.keys.into_iter().map(|(k, n)| (k.into(), n)).collect(),
            Shape::Other => panic!("not an object"),
        }
    }

    #[test]
    fn object_keys_come_in_text_order_with_their_null_flags() {
        let s = shape(r#"{"b": 1, "a": null, "c\u0041": {"x": [1, {"y": null}]}, "d": "s"}"#)
            .expect("valid");
        assert_eq!(
            keys(s),
            vec![
                ("b".into(), false),
                ("a".into(), true),
                ("cA".into(), false),
                ("d".into(), false)
            ]
        );
    }

    #[test]
    fn non_objects_are_other_and_invalid_json_is_an_error() {
        for text in ["[1, 2]", "null", "3", "\"x\"", "true"] {
            assert_eq!(shape(text).expect("valid"), Shape::Other, "{text}");
        }
        for text in ["{", "{\"a\": }", "{} {}", "{\"a\": 1,}", ""] {
            assert!(shape(text).is_err(), "{text}");
        }
    }

    #[test]
    fn text_that_passes_parses_as_a_value_too() {
        // serde_json skips these when it ignores a value, and refuses them when it parses one.
        for text in [
            r#"{"a": 1e400}"#,
            r#"{"a": [1e400]}"#,
            r#"{"a": {"b": "\ud800"}}"#,
            r#"{"a": ["\udc00"]}"#,
        ] {
            assert!(
                serde_json::from_str::<serde_json::Value>(text).is_err(),
                "{text}"
            );
            assert!(shape(text).is_err(), "{text}");
            assert!(
                body_shape(&format!(r#"{{"x": {text}, "k": []}}"#), "k").is_err(),
                "{text}"
            );
        }
    }

    #[test]
    fn has_non_null_follows_the_last_occurrence_of_a_key() {
        let Shape::Object(o) = shape(r#"{"a": 1, "a": null, "b": 0}"#).expect("valid") else {
            panic!("object");
        };
        assert!(!o.has_non_null("a"));
        assert!(o.has_non_null("b"));
        assert!(!o.has_non_null("c"));
    }

    #[test]
    fn repeated_keys_are_named_once_each_in_text_order() {
        let Shape::Object(o) =
            shape(r#"{"b": 1, "a": 2, "b": 3, "c": 4, "a": 5, "b": 6, "b\u0000": 7}"#)
                .expect("valid")
        else {
            panic!("object");
        };
        assert_eq!(o.repeated(), vec!["b", "a"]);
        let Shape::Object(o) = shape(r#"{"a": 1, "b": 2}"#).expect("valid") else {
            panic!("object");
        };
        assert!(o.repeated().is_empty());
    }

    #[test]
    fn a_body_key_written_twice_is_not_one_array() {
        for body in [
            r#"{"k": [], "k": [{}]}"#,
            r#"{"k": 1, "k": []}"#,
            r#"{"k": [], "x": 0, "k": [], "k": 2}"#,
        ] {
            assert_eq!(
                body_shape(body, "k").expect("valid"),
                BodyShape::RepeatedKey,
                "{body}"
            );
        }
    }

    #[test]
    fn body_elements_hand_over_what_body_shape_reads() {
        let key = "k";
        let bodies = [
            r#"{"k": [{"a": 1, "b": null}, "s\u0041", 2, [1], {}, null, true, "\u0001"]}"#,
            r#"{"x": [{"z": 1}], "k": []}"#,
            r#"[]"#,
            r#"{"other": []}"#,
            r#"{"k": {}}"#,
            r#"{"k": "text"}"#,
        ];
        for body in bodies {
            let mut seen = Vec::new();
            let count = body_elements(body, key, |element| {
                seen.push(match element {
                    Element::Object(keys) => Shape::Object(ObjectKeys {
                        keys: keys
                            .keys
                            .iter()
                            .map(|(k, n)| (k.clone().into_owned().into(), *n))
                            .collect(),
                    }),
                    Element::Text(text) => {
                        assert!(text == "sA" || text == "\u{1}", "{text}");
                        Shape::Other
                    }
                    Element::Other => Shape::Other,
                })
            })
            .expect("valid");
            match body_shape(body, key).expect("valid") {
                BodyShape::Records(records) => {
                    assert_eq!(count, Some(records.len()), "{body}");
                    assert_eq!(seen, records, "{body}");
                }
                _ => assert_eq!((count, seen.len()), (None, 0), "{body}"),
            }
        }
        // The body key twice: not one array.
        assert_eq!(
            body_elements(r#"{"k": [], "k": []}"#, key, |_| {}).expect("valid"),
            None
        );
        for invalid in [
            r#"{"k": [1e400]}"#,
            r#"{"k": ["\ud800"]}"#,
            r#"{"k": [1,]}"#,
        ] {
            assert!(body_elements(invalid, key, |_| {}).is_err(), "{invalid}");
        }
    }

    #[test]
    fn body_shapes_say_what_is_wrong_with_a_body() {
        let key = "patient_data";
        assert_eq!(body_shape("[]", key).expect("valid"), BodyShape::NotObject);
        assert_eq!(
            body_shape(r#"{"other": []}"#, key).expect("valid"),
            BodyShape::Missing
        );
        assert_eq!(
            body_shape(r#"{"patient_data": {}}"#, key).expect("valid"),
            BodyShape::NotArray
        );
        let BodyShape::Records(records) =
            body_shape(r#"{"x": [1], "patient_data": [{"a": 1}, 2]}"#, key).expect("valid")
        else {
            panic!("records");
        };
        assert_eq!(records.len(), 2);
        assert_eq!(records[1], Shape::Other);
        assert!(body_shape(r#"{"patient_data": [{"a": 1}]"#, key).is_err());
    }
}
