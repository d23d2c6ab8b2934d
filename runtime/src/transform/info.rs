//! What a module says about itself, in host terms.

use serde::Serialize;

use super::bindings::wit;

/// How a module wants a column delivered (mirrors the WIT `column-type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ColumnKind {
    Text,
    Integer,
    Float,
    Boolean,
    Date,
    Time,
    Timestamp,
}

impl From<wit::ColumnType> for ColumnKind {
    fn from(t: wit::ColumnType) -> Self {
        match t {
            wit::ColumnType::Text => ColumnKind::Text,
            wit::ColumnType::Integer => ColumnKind::Integer,
            wit::ColumnType::Float => ColumnKind::Float,
            wit::ColumnType::Boolean => ColumnKind::Boolean,
            wit::ColumnType::Date => ColumnKind::Date,
            wit::ColumnType::Time => ColumnKind::Time,
            wit::ColumnType::Timestamp => ColumnKind::Timestamp,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ColumnSpec {
    pub name: String,
    pub kind: ColumnKind,
    /// The query must return this column.
    pub required: bool,
    /// NULL is an expected value.
    pub nullable: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldSpec {
    pub name: String,
    pub required: bool,
}

/// A module's self-description.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ModuleInfo {
    pub name: String,
    pub version: String,
    /// The record type it emits: `patient_data` or `vaccine_dose_data`.
    pub target: String,
    pub key_column: String,
    pub input_columns: Vec<ColumnSpec>,
    pub output_fields: Vec<FieldSpec>,
}

impl From<wit::ModuleInfo> for ModuleInfo {
    fn from(i: wit::ModuleInfo) -> Self {
        Self {
            name: i.name,
            version: i.version,
            target: i.target,
            key_column: i.key_column,
            input_columns: i
                .input_columns
                .into_iter()
                .map(|c| ColumnSpec {
                    name: c.name,
                    kind: c.kind.into(),
                    required: c.required,
                    nullable: c.nullable,
                })
                .collect(),
            output_fields: i
                .output_fields
                .into_iter()
                .map(|f| FieldSpec {
                    name: f.name,
                    required: f.required,
                })
                .collect(),
        }
    }
}

impl ModuleInfo {
    pub fn declares_field(&self, name: &str) -> bool {
        self.output_fields.iter().any(|f| f.name == name)
    }
}
