//! ReqCheck's two record types as JSON Schemas (`data/reqcheck/*.schema.json`), compiled into
//! the binary: what `reqsync transform test` holds every emitted record to.

use std::sync::OnceLock;

use jsonschema::Validator;
use serde::Serialize;
use serde_json::Value;

use super::targets::{self, Target};

const PATIENT_DATA: &str = include_str!("../../../data/reqcheck/patient_data.schema.json");
const VACCINE_DOSE_DATA: &str =
    include_str!("../../../data/reqcheck/vaccine_dose_data.schema.json");

/// One way a record breaks its schema: where and which rule, never the value (records are
/// PHI when they come from a real source).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SchemaViolation {
    /// JSON pointer into the record, e.g. `/dob`; empty for the record itself.
    pub path: String,
    /// The schema keyword the value fails, e.g. `format`, `type`, `additionalProperties`.
    pub keyword: String,
    /// The validator's message with the value masked.
    pub message: String,
}

impl std::fmt::Display for SchemaViolation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let at = if self.path.is_empty() {
            "record"
        } else {
            &self.path
        };
        write!(f, "{at}: {} ({})", self.message, self.keyword)
    }
}

/// The schema of one record type.
#[derive(Debug)]
pub struct RecordSchema {
    pub target: &'static Target,
    /// The schema document itself (e.g. for `inspect`-style output).
    pub document: Value,
    validator: Validator,
}

impl RecordSchema {
    /// The schema of the record type `target` names (`patient_data` or `vaccine_dose_data`).
    pub(crate) fn for_target(target: &str) -> Option<&'static RecordSchema> {
        static SCHEMAS: OnceLock<[RecordSchema; 2]> = OnceLock::new();
        let all = SCHEMAS.get_or_init(|| {
            [
                Self::compile(&targets::PATIENT_DATA, PATIENT_DATA),
                Self::compile(&targets::VACCINE_DOSE_DATA, VACCINE_DOSE_DATA),
            ]
        });
        all.iter().find(|s| s.target.name == target)
    }

    // The schemas are part of the binary and covered by tests: failing to compile one is a
    // build defect, not a runtime condition.
    #[allow(clippy::expect_used)]
    fn compile(target: &'static Target, text: &str) -> Self {
        let document: Value = serde_json::from_str(text).expect("embedded record schema is JSON");
        let validator = jsonschema::options()
            .should_validate_formats(true)
            .build(&document)
            .expect("embedded record schema compiles");
        Self {
            target,
            document,
            validator,
        }
    }

    /// Every way `record` breaks the schema; empty when it conforms.
    pub fn violations(&self, record: &Value) -> Vec<SchemaViolation> {
        self.validator
            .iter_errors(record)
            .map(|e| SchemaViolation {
                path: e.instance_path().to_string(),
                keyword: e.kind().keyword().to_owned(),
                message: e.masked().to_string(),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use serde_json::json;

    use super::*;

    fn schema(target: &str) -> &'static RecordSchema {
        RecordSchema::for_target(target).expect("known target")
    }

    #[test]
    fn schemas_list_exactly_the_hosts_whitelist_and_required_keys() {
        for target in targets::ALL {
            let doc = &schema(target.name).document;
            let properties: BTreeSet<&str> = doc["properties"]
                .as_object()
                .expect("properties")
                .keys()
                .map(String::as_str)
                .collect();
            let required: BTreeSet<&str> = doc["required"]
                .as_array()
                .expect("required")
                .iter()
                .filter_map(Value::as_str)
                .collect();
            assert_eq!(
                properties,
                target.fields.iter().copied().collect(),
                "{}",
                target.name
            );
            assert_eq!(
                required,
                target.required.iter().copied().collect(),
                "{}",
                target.name
            );
            assert_eq!(doc["additionalProperties"], json!(false));
        }
    }

    #[test]
    fn a_conforming_patient_passes() {
        let record = json!({
            "patient_number": 101, "first_name": "Ann", "last_name": "Lee",
            "dob": "2015-02-03", "hd_mpfile_updated_at": "2016-01-01T09:00:00-06:00",
            "gender": "F", "family_number": null
        });
        assert_eq!(schema("patient_data").violations(&record), vec![]);
    }

    #[test]
    fn violations_name_field_and_rule_but_never_the_value() {
        let record = json!({
            "patient_number": "101", "first_name": "Zebulon", "last_name": "  ",
            "dob": "02/03/15", "hd_mpfile_updated_at": "2016-01-01T09:00:00-06:00",
            "trade_name": "Secretname"
        });
        let found = schema("patient_data").violations(&record);
        let keywords: BTreeSet<(String, String)> = found
            .iter()
            .map(|v| (v.path.clone(), v.keyword.clone()))
            .collect();
        assert!(
            keywords.contains(&("/patient_number".into(), "type".into())),
            "{found:?}"
        );
        assert!(
            keywords.contains(&("/last_name".into(), "pattern".into())),
            "{found:?}"
        );
        assert!(
            keywords.contains(&("/dob".into(), "format".into())),
            "{found:?}"
        );
        assert!(
            keywords.contains(&(String::new(), "additionalProperties".into())),
            "{found:?}"
        );
        for v in &found {
            let text = v.to_string();
            assert!(
                !text.contains("02/03/15") && !text.contains("\"101\""),
                "{text}"
            );
        }
    }

    #[test]
    fn a_dose_needs_a_boolean_history_flag_and_a_known_key_set() {
        let mut record = json!({
            "patient_number": 101, "cvx_code": 20, "date_administered": "2016-05-01",
            "hd_imfile_updated_at": "2016-05-02T10:00:00-05:00", "history_flag": false
        });
        assert_eq!(schema("vaccine_dose_data").violations(&record), vec![]);
        record["history_flag"] = json!("Y");
        record["patient_id"] = json!(7);
        let keywords: Vec<String> = schema("vaccine_dose_data")
            .violations(&record)
            .into_iter()
            .map(|v| v.keyword)
            .collect();
        assert!(keywords.contains(&"type".to_owned()), "{keywords:?}");
        assert!(
            keywords.contains(&"additionalProperties".to_owned()),
            "{keywords:?}"
        );
    }
}
