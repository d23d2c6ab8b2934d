//! The glue between the WIT exports and a [`Transform`]: one code path, used by the wasm
//! component and by the native `testing` harness alike.

use crate::Transform;
use crate::bindings::reqsync::transform::types as wit;
use crate::row::BoundBatch;
use crate::rules::Date;
use crate::types::{ColumnType, Context, Finding, ModuleInfo, Outcome, ValueHint};
use crate::writer::{RecordWriter, RowFault};

/// `describe`: the module's [`ModuleInfo`] in WIT form.
pub fn describe<T: Transform>() -> wit::ModuleInfo {
    to_wit_info(&T::info())
}

/// `transform`: binds the batch to the declared columns once, then maps every row.
pub fn transform<T: Transform>(
    context: &wit::BatchContext,
    batch: &wit::RowBatch,
) -> Result<wit::BatchResult, wit::BatchError> {
    let info = T::info();
    let Some(as_of_date) = Date::parse(&context.as_of_date) else {
        return Err(batch_error(
            "invalid-context",
            "the as-of date is not a YYYY-MM-DD calendar date".to_owned(),
        ));
    };
    let ctx = Context::new(as_of_date);
    let bound = BoundBatch::bind(info.input_columns, batch)
        .map_err(|error| batch_error(error.code, error.message))?;

    let rows = bound.rows();
    let mut out = RecordWriter::new(info.output_fields, rows);
    let mut outcomes = Vec::with_capacity(rows);
    for index in 0..rows {
        out.begin_row();
        let outcome = T::row(&bound.row(index), &ctx, &mut out);
        outcomes.push(match outcome {
            Outcome::Emit { warnings } => match out.finish_row() {
                Ok((first, count)) => wit::Outcome::Emit(wit::Emitted {
                    // Entry numbers fit: the sandbox's memory cap keeps a batch's field
                    // lists far below 4 G entries (11 bytes each).
                    first: u32::try_from(first).unwrap_or(u32::MAX),
                    count: u32::try_from(count).unwrap_or(u32::MAX),
                    warnings: warnings.iter().map(to_wit_finding).collect(),
                }),
                Err(RowFault::Undeclared(name)) => wit::Outcome::Reject(vec![wit::Finding {
                    field: name,
                    code: UNDECLARED_FIELD.to_owned(),
                    message: "the module wrote a field it did not declare".to_owned(),
                }]),
                Err(RowFault::Unstorable(fields)) => wit::Outcome::Reject(
                    fields
                        .into_iter()
                        .map(|field| wit::Finding {
                            field: field.to_owned(),
                            code: CONTROL_CHARACTER.to_owned(),
                            message: CONTROL_CHARACTER_MESSAGE.to_owned(),
                        })
                        .collect(),
                ),
            },
            Outcome::Skip { code, message } => {
                out.discard_row();
                wit::Outcome::Skip(wit::Skipped {
                    code: code.to_owned(),
                    message: message.to_owned(),
                })
            }
            Outcome::Reject(findings) => {
                out.discard_row();
                wit::Outcome::Reject(findings.iter().map(to_wit_finding).collect())
            }
        });
    }
    if u32::try_from(out.text_len()).is_err() {
        return Err(batch_error(
            "output-too-large",
            "the batch's records exceed 4 GiB of text; use smaller batches".to_owned(),
        ));
    }
    let fields = out.finish();
    Ok(wit::BatchResult {
        text: fields.text,
        field_indexes: fields.indexes,
        kinds: fields.kinds,
        values: fields.values,
        outcomes,
    })
}

/// The rejection code of a row that wrote a field its module did not declare (the host's
/// record check uses the same code).
pub(crate) const UNDECLARED_FIELD: &str = "undeclared-field";

/// The rejection code of a row with a text value ReqCheck cannot store (NUL, other control
/// characters but tab and line breaks); the host checks the same and uses the same code.
pub(crate) const CONTROL_CHARACTER: &str = "control-character";
pub(crate) const CONTROL_CHARACTER_MESSAGE: &str = "the text holds a NUL or another control character (other than tab and line breaks), \
     which ReqCheck cannot store";

fn batch_error(code: &str, message: String) -> wit::BatchError {
    wit::BatchError {
        code: code.to_owned(),
        message,
    }
}

fn to_wit_finding(finding: &Finding) -> wit::Finding {
    wit::Finding {
        field: finding.field.to_owned(),
        code: finding.code.to_owned(),
        message: finding.message.to_owned(),
    }
}

pub(crate) fn to_wit_kind(kind: ColumnType) -> wit::ColumnType {
    match kind {
        ColumnType::Text => wit::ColumnType::Text,
        ColumnType::Integer => wit::ColumnType::Integer,
        ColumnType::Float => wit::ColumnType::Float,
        ColumnType::Boolean => wit::ColumnType::Boolean,
        ColumnType::Date => wit::ColumnType::Date,
        ColumnType::Time => wit::ColumnType::Time,
        ColumnType::Timestamp => wit::ColumnType::Timestamp,
    }
}

fn to_wit_hint(hint: &ValueHint) -> wit::ValueHint {
    match *hint {
        ValueHint::Range { min, max } => wit::ValueHint::Range(wit::IntRange { min, max }),
        ValueHint::Dates { min, max } => wit::ValueHint::Dates(wit::DateRange {
            min: min.to_owned(),
            max: max.to_owned(),
        }),
        ValueHint::MaxLength(n) => wit::ValueHint::MaxLength(n),
        ValueHint::OneOf(codes) => {
            wit::ValueHint::OneOf(codes.iter().map(|c| (*c).to_owned()).collect())
        }
        ValueHint::Pattern(p) => wit::ValueHint::Pattern(p.to_owned()),
    }
}

fn to_wit_info(info: &ModuleInfo) -> wit::ModuleInfo {
    wit::ModuleInfo {
        name: info.name.to_owned(),
        version: info.version.to_owned(),
        target: info.target.to_owned(),
        key_column: info.key_column.to_owned(),
        input_columns: info
            .input_columns
            .iter()
            .map(|spec| wit::ColumnSpec {
                name: spec.name.to_owned(),
                kind: to_wit_kind(spec.kind),
                required: spec.required(),
                nullable: spec.nullable(),
                hints: spec.hints.iter().map(to_wit_hint).collect(),
            })
            .collect(),
        output_fields: info
            .output_fields
            .iter()
            .map(|field| wit::FieldSpec {
                name: field.name.to_owned(),
                required: field.required,
            })
            .collect(),
    }
}
