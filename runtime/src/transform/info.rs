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
    /// What valid values look like (for generated test rows; never enforced by the host).
    pub hints: Vec<ValueHint>,
}

/// Mirrors the WIT `value-hint`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ValueHint {
    Range { min: i64, max: i64 },
    Dates { min: String, max: String },
    MaxLength(u32),
    OneOf(Vec<String>),
    Pattern(String),
}

impl From<wit::ValueHint> for ValueHint {
    fn from(h: wit::ValueHint) -> Self {
        match h {
            wit::ValueHint::Range(r) => ValueHint::Range {
                min: r.min,
                max: r.max,
            },
            wit::ValueHint::Dates(d) => ValueHint::Dates {
                min: d.min,
                max: d.max,
            },
            wit::ValueHint::MaxLength(n) => ValueHint::MaxLength(n),
            wit::ValueHint::OneOf(codes) => ValueHint::OneOf(codes),
            wit::ValueHint::Pattern(p) => ValueHint::Pattern(p),
        }
    }
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
                    hints: c.hints.into_iter().map(ValueHint::from).collect(),
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
