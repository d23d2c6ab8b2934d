//! Rendering request bodies with the job's minijinja template.
//!
//! Templates receive `records` (the emitted records of one request) and `target` (the record
//! type's name). Every `{{ expression }}` is written as JSON (auto-escape mode JSON), so a
//! string value can never break the body's syntax. The rendered body is parsed before it is
//! sent: it must be a JSON object whose target key holds exactly the records given, so a
//! template can neither send invalid JSON nor silently drop a record.

use std::path::{Path, PathBuf};

use minijinja::{AutoEscape, Environment, UndefinedBehavior, context};
use serde_json::{Map, Value};

use crate::reqcheck::Target;

#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error("cannot read template {}: {reason}", path.display())]
    Read { path: PathBuf, reason: String },
    #[error("template {} has a syntax error: {reason}", path.display())]
    Syntax { path: PathBuf, reason: String },
    #[error("template {} failed while rendering: {reason}", path.display())]
    Render { path: PathBuf, reason: String },
    #[error(
        "template {} rendered invalid JSON ({reason}); run with --dry-run to see the body it produces",
        path.display()
    )]
    InvalidJson { path: PathBuf, reason: String },
    #[error("template {} rendered a body ReqCheck would refuse: {reason}", path.display())]
    Shape { path: PathBuf, reason: String },
}

/// A compiled body template for one job.
#[derive(Debug)]
pub struct BodyTemplate {
    env: Environment<'static>,
    path: PathBuf,
    target: &'static Target,
    sha256: String,
}

const NAME: &str = "body";

impl BodyTemplate {
    /// Reads and compiles the template file (read anew at every run, so edits apply to the
    /// next run without a restart).
    pub fn load(path: &Path, target: &'static Target) -> Result<Self, RenderError> {
        let source = std::fs::read_to_string(path).map_err(|e| RenderError::Read {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
        Self::from_source(path, source, target)
    }

    pub fn from_source(
        path: &Path,
        source: String,
        target: &'static Target,
    ) -> Result<Self, RenderError> {
        use sha2::Digest;
        let sha256 = hex::encode(sha2::Sha256::digest(source.as_bytes()));
        let mut env = Environment::new();
        env.set_auto_escape_callback(|_| AutoEscape::Json);
        // A misspelt variable is a bug in the template, not an empty value.
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        env.add_template_owned(NAME, source)
            .map_err(|e| RenderError::Syntax {
                path: path.to_path_buf(),
                reason: describe(&e),
            })?;
        Ok(Self {
            env,
            path: path.to_path_buf(),
            target,
            sha256,
        })
    }

    pub fn sha256(&self) -> &str {
        &self.sha256
    }

    /// Renders one request body for `records` and checks it.
    pub fn render(&self, records: &[Map<String, Value>]) -> Result<Vec<u8>, RenderError> {
        let template = self
            .env
            .get_template(NAME)
            .map_err(|e| RenderError::Syntax {
                path: self.path.clone(),
                reason: describe(&e),
            })?;
        let body = template
            .render(context! { records => minijinja::Value::from(minijinja::value::Serde(records)), target => self.target.name })
            .map_err(|e| RenderError::Render { path: self.path.clone(), reason: describe(&e) })?;
        self.check(&body, records.len())?;
        Ok(body.into_bytes())
    }

    fn check(&self, body: &str, expected: usize) -> Result<(), RenderError> {
        // serde_json's error names the line and column only, never the text around it.
        let parsed: Value = serde_json::from_str(body).map_err(|e| RenderError::InvalidJson {
            path: self.path.clone(),
            reason: e.to_string(),
        })?;
        let shape = |reason: String| RenderError::Shape {
            path: self.path.clone(),
            reason,
        };
        let key = self.target.body_key;
        let Some(array) = parsed.get(key) else {
            return Err(shape(format!(
                "the body must be a JSON object with the key `{key}`"
            )));
        };
        let Some(array) = array.as_array() else {
            return Err(shape(format!("`{key}` must be an array of records")));
        };
        if array.is_empty() {
            return Err(shape(format!(
                "`{key}` is empty (ReqCheck answers 400 to an empty array)"
            )));
        }
        if array.len() != expected {
            return Err(shape(format!(
                "`{key}` holds {} records but {expected} were given to the template; every record must be sent",
                array.len()
            )));
        }
        if let Some(i) = array.iter().position(|r| !r.is_object()) {
            return Err(shape(format!("`{key}` element {i} is not a JSON object")));
        }
        Ok(())
    }
}

/// minijinja errors name the template line; the detail never contains context values.
fn describe(e: &minijinja::Error) -> String {
    match e.line() {
        Some(line) => format!(
            "line {line}: {}",
            e.detail().unwrap_or(&e.kind().to_string())
        ),
        None => e
            .detail()
            .map(str::to_string)
            .unwrap_or_else(|| e.kind().to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reqcheck::targets::PATIENT_DATA;

    fn records() -> Vec<Map<String, Value>> {
        let r: Value =
            serde_json::json!({"patient_number": 7, "last_name": "O'Brien \"Jr\" \\ Zoë"});
        vec![r.as_object().unwrap().clone()]
    }

    fn template(src: &str) -> Result<BodyTemplate, RenderError> {
        BodyTemplate::from_source(Path::new("t.json.j2"), src.to_string(), &PATIENT_DATA)
    }

    #[test]
    fn default_style_template_renders_valid_json_with_awkward_strings() {
        let t = template(include_str!("../../../templates/patient_data.json.j2")).unwrap();
        let body = t.render(&records()).unwrap();
        let v: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["patient_data"][0]["last_name"], "O'Brien \"Jr\" \\ Zoë");
    }

    #[test]
    fn plain_expressions_are_json_escaped() {
        let t = template(r#"{"patient_data": [{% for r in records %}{"patient_number": {{ r.patient_number }}, "last_name": {{ r.last_name }}}{% endfor %}]}"#).unwrap();
        let v: Value = serde_json::from_slice(&t.render(&records()).unwrap()).unwrap();
        assert_eq!(v["patient_data"][0]["last_name"], "O'Brien \"Jr\" \\ Zoë");
    }

    #[test]
    fn syntax_error_names_the_line() {
        let e = template("{\n{% for r in records %}\n").unwrap_err();
        assert!(matches!(e, RenderError::Syntax { .. }), "{e}");
    }

    #[test]
    fn invalid_json_is_refused_without_quoting_the_body() {
        let t =
            template(r#"{"patient_data": [{% for r in records %}{{ r }}{% endfor %}}"#).unwrap();
        let e = t.render(&records()).unwrap_err();
        assert!(matches!(e, RenderError::InvalidJson { .. }), "{e}");
        assert!(!e.to_string().contains("Brien"), "{e}");
    }

    #[test]
    fn a_template_that_drops_records_is_refused() {
        let t = template(r#"{"patient_data": [{"patient_number": 1}, {"patient_number": 2}]}"#)
            .unwrap();
        let e = t.render(&records()).unwrap_err();
        assert!(e.to_string().contains("every record must be sent"), "{e}");
    }

    #[test]
    fn empty_array_is_refused() {
        let t = template(r#"{"patient_data": []}"#).unwrap();
        assert!(
            t.render(&records())
                .unwrap_err()
                .to_string()
                .contains("empty")
        );
    }

    #[test]
    fn misspelt_variable_is_an_error() {
        let t = template(r#"{"patient_data": {{ recods }}}"#).unwrap();
        assert!(matches!(
            t.render(&records()).unwrap_err(),
            RenderError::Render { .. }
        ));
    }
}
