//! A module's declared output fields, and an emitted record's keys checked against them.
//!
//! Every key of every emitted record is looked up among the declared fields, and every
//! required field among the record's keys. Looking each key up from the start of the
//! declaration, and each required field up among the keys, was a quarter of the record check
//! (callgrind, docs/PERFORMANCE.md "Session 9"). Modules write their fields in the order they
//! declared them, leaving out optional ones, so a key is looked for from the field after the
//! previous key's on (a compare or two), and a required field is ticked off when its key is
//! read.

use crate::json_shape::ObjectKeys;

use super::info::FieldSpec;
use super::outcome::{Finding, host_codes};

/// The fields a module declared, ready for checking records.
#[derive(Debug, Clone)]
pub(crate) struct DeclaredFields {
    fields: Vec<Declared>,
}

#[derive(Debug, Clone)]
struct Declared {
    name: String,
    required: bool,
    /// The first field of this name: a module may declare a name twice, and a record's key
    /// then counts for both.
    first: usize,
}

impl DeclaredFields {
    pub(crate) fn new(fields: &[FieldSpec]) -> Self {
        let fields = fields
            .iter()
            .enumerate()
            .map(|(i, f)| Declared {
                name: f.name.clone(),
                required: f.required,
                first: fields.iter().position(|g| g.name == f.name).unwrap_or(i),
            })
            .collect();
        Self { fields }
    }

    /// What is wrong with a record whose keys are `keys`: each undeclared key once, in text
    /// order, then each required field the record lacks or holds as `null` (where a key is
    /// written twice, its last value counts, as for every JSON parser that keeps one), in
    /// declaration order. `non_null` is scratch space, reused across records.
    pub(crate) fn findings(&self, keys: &ObjectKeys<'_>, non_null: &mut Vec<bool>) -> Vec<Finding> {
        non_null.clear();
        non_null.resize(self.fields.len(), false);
        let mut findings: Vec<Finding> = Vec::new();
        let mut next = 0;
        for (key, null) in &keys.keys {
            let key = key.as_ref();
            // From the field after the previous key's to the end, then from the start: a
            // module that leaves optional fields out still writes the rest in order.
            let (before, after) = self.fields.split_at(next);
            let index = after
                .iter()
                .position(|field| field.name == key)
                .map(|i| next + i)
                .or_else(|| before.iter().position(|field| field.name == key));
            match index {
                Some(i) => {
                    non_null[self.fields[i].first] = !null;
                    next = i + 1;
                }
                // A key written twice is one finding.
                None if findings.iter().any(|f| f.field == key) => {}
                None => findings.push(Finding {
                    field: key.to_owned(),
                    code: host_codes::UNDECLARED_FIELD.into(),
                    message: "the module emitted a field it did not declare".into(),
                }),
            }
        }
        for field in self.fields.iter().filter(|f| f.required) {
            if !non_null[field.first] {
                findings.push(Finding {
                    field: field.name.clone(),
                    code: host_codes::REQUIRED_FIELD_MISSING.into(),
                    message: "the module emitted a record without a field it declared required"
                        .into(),
                });
            }
        }
        findings
    }
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;

    use proptest::prelude::*;

    use super::*;

    /// The check as it was written before the lookups were sped up: every key searched from
    /// the start of the declaration, every required field among the keys from the end.
    fn reference(fields: &[FieldSpec], keys: &ObjectKeys<'_>) -> Vec<Finding> {
        let mut findings: Vec<Finding> = Vec::new();
        for key in keys.names() {
            if !fields.iter().any(|f| f.name == key) && !findings.iter().any(|f| f.field == key) {
                findings.push(Finding {
                    field: key.to_owned(),
                    code: host_codes::UNDECLARED_FIELD.into(),
                    message: "the module emitted a field it did not declare".into(),
                });
            }
        }
        for f in fields.iter().filter(|f| f.required) {
            if !keys.has_non_null(&f.name) {
                findings.push(Finding {
                    field: f.name.clone(),
                    code: host_codes::REQUIRED_FIELD_MISSING.into(),
                    message: "the module emitted a record without a field it declared required"
                        .into(),
                });
            }
        }
        findings
    }

    const NAMES: [&str; 7] = ["a", "b", "c", "d", "e", "x", "y"];

    fn declaration() -> impl Strategy<Value = Vec<FieldSpec>> {
        // Names drawn from the first five, so records can also carry undeclared ones, and a
        // name can be declared twice.
        prop::collection::vec((0..5usize, any::<bool>()), 0..7).prop_map(|fields| {
            fields
                .into_iter()
                .map(|(name, required)| FieldSpec {
                    name: NAMES[name].to_owned(),
                    required,
                })
                .collect()
        })
    }

    fn record_keys() -> impl Strategy<Value = Vec<(usize, bool)>> {
        prop::collection::vec((0..NAMES.len(), any::<bool>()), 0..10)
    }

    proptest! {
        #[test]
        fn findings_match_the_plain_search(fields in declaration(), keys in record_keys()) {
            let keys = ObjectKeys {
                keys: keys.into_iter().map(|(k, null)| (Cow::Borrowed(NAMES[k]), null)).collect(),
            };
            let mut scratch = Vec::new();
            prop_assert_eq!(
                DeclaredFields::new(&fields).findings(&keys, &mut scratch),
                reference(&fields, &keys)
            );
        }
    }

    #[test]
    fn keys_in_declaration_order_and_out_of_it_are_found_alike() {
        let fields: Vec<FieldSpec> = ["a", "b", "c"]
            .into_iter()
            .map(|name| FieldSpec {
                name: name.into(),
                required: true,
            })
            .collect();
        let declared = DeclaredFields::new(&fields);
        let mut scratch = Vec::new();
        for order in [["a", "b", "c"], ["c", "b", "a"], ["b", "c", "a"]] {
            let keys = ObjectKeys {
                keys: order
                    .into_iter()
                    .map(|k| (Cow::Borrowed(k), false))
                    .collect(),
            };
            assert_eq!(
                declared.findings(&keys, &mut scratch),
                Vec::new(),
                "{order:?}"
            );
        }
        // A required field written, then written again as null: missing.
        let keys = ObjectKeys {
            keys: vec![
                (Cow::Borrowed("a"), false),
                (Cow::Borrowed("b"), false),
                (Cow::Borrowed("c"), false),
                (Cow::Borrowed("a"), true),
            ],
        };
        let findings = declared.findings(&keys, &mut scratch);
        assert_eq!(findings.len(), 1);
        assert_eq!(
            (findings[0].field.as_str(), findings[0].code.as_str()),
            ("a", host_codes::REQUIRED_FIELD_MISSING)
        );
    }
}
