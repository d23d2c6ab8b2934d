//! A read-only row view over the host's columnar batch.

use crate::bindings::reqsync::transform::types::{ColumnValues, RowBatch};
use crate::columns::ColumnKey;
use crate::types::{ColumnSpec, ColumnType};

/// The values of one bound column, borrowed from the batch.
#[derive(Debug, Clone)]
enum Values<'a> {
    /// Text cells sliced out of the column buffer once, when the batch is bound: slicing a
    /// `str` checks character boundaries, and doing that in one tight loop per column is cheaper
    /// (in wasm especially) than on every access.
    Text(Vec<&'a str>),
    Integer(&'a [i64]),
    Float(&'a [f64]),
}

#[derive(Debug, Clone)]
struct BoundColumn<'a> {
    values: Values<'a>,
    /// Empty when the column has no NULLs in this batch.
    present: &'a [u8],
}

/// Why a batch cannot be bound to the module's declared columns. Messages name columns, never
/// values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BindError {
    pub(crate) code: &'static str,
    pub(crate) message: String,
}

impl BindError {
    fn new(code: &'static str, message: String) -> Self {
        Self { code, message }
    }
}

/// The batch with every declared input column resolved to its data, once per batch.
#[derive(Debug)]
pub(crate) struct BoundBatch<'a> {
    declared: &'static [ColumnSpec],
    /// Same order as `declared`; `None` when the (optional) column is not in the batch.
    columns: Vec<Option<BoundColumn<'a>>>,
    rows: usize,
}

impl<'a> BoundBatch<'a> {
    /// Resolves the declared columns against the batch and checks the batch's shape, so the
    /// per-row accessors can trust it.
    pub(crate) fn bind(
        declared: &'static [ColumnSpec],
        batch: &'a RowBatch,
    ) -> Result<Self, BindError> {
        let rows = batch.rows as usize;
        let mut columns = Vec::with_capacity(declared.len());
        for spec in declared {
            let Some(column) = batch.columns.iter().find(|c| c.name == spec.name) else {
                if spec.must_be_in_batch() {
                    return Err(BindError::new(
                        "missing-column",
                        format!("input column `{}` is not in the batch", spec.name),
                    ));
                }
                columns.push(None);
                continue;
            };
            let values = match (&column.values, spec.kind) {
                (ColumnValues::Text(text), kind) if kind.is_text() => {
                    Values::Text(slice_cells(spec.name, &text.data, &text.offsets, rows)?)
                }
                (ColumnValues::Integer(values), kind) if kind.is_integer() => {
                    check_len(spec.name, values.len(), rows)?;
                    Values::Integer(values)
                }
                (ColumnValues::Float(values), ColumnType::Float) => {
                    check_len(spec.name, values.len(), rows)?;
                    Values::Float(values)
                }
                (values, kind) => {
                    let carried = match values {
                        ColumnValues::Text(_) => "text",
                        ColumnValues::Integer(_) => "integer",
                        ColumnValues::Float(_) => "float",
                    };
                    return Err(BindError::new(
                        "wrong-column-type",
                        format!(
                            "input column `{}` is declared {} but the batch carries {carried} values",
                            spec.name,
                            kind.wit_name()
                        ),
                    ));
                }
            };
            if !column.present.is_empty() && column.present.len() != rows {
                return Err(malformed(
                    spec.name,
                    "its NULL map does not have one entry per row",
                ));
            }
            columns.push(Some(BoundColumn {
                values,
                present: &column.present,
            }));
        }
        Ok(Self {
            declared,
            columns,
            rows,
        })
    }

    pub(crate) fn rows(&self) -> usize {
        self.rows
    }

    pub(crate) fn row(&self, index: usize) -> Row<'_> {
        Row { batch: self, index }
    }
}

fn malformed(column: &str, what: &str) -> BindError {
    BindError::new(
        "malformed-batch",
        format!("input column `{column}` is malformed: {what}"),
    )
}

fn check_len(column: &str, len: usize, rows: usize) -> Result<(), BindError> {
    if len == rows {
        Ok(())
    } else {
        Err(malformed(column, "it does not have one value per row"))
    }
}

/// Cuts a text column into its cells. Offsets must be `rows + 1` non-decreasing byte positions
/// on character boundaries; anything else is a host bug, reported as `malformed-batch`.
fn slice_cells<'a>(
    column: &str,
    data: &'a str,
    offsets: &[u32],
    rows: usize,
) -> Result<Vec<&'a str>, BindError> {
    if offsets.len() != rows + 1 {
        return Err(malformed(column, "it does not have rows + 1 offsets"));
    }
    let mut cells = Vec::with_capacity(rows);
    for pair in offsets.windows(2) {
        // `get` refuses a decreasing range, one past the end and one splitting a character.
        let cell = data
            .get(pair[0] as usize..pair[1] as usize)
            .ok_or_else(|| {
                malformed(
                    column,
                    "an offset decreases, is past the end or splits a character",
                )
            })?;
        cells.push(cell);
    }
    Ok(cells)
}

/// One cell of a row, with "the batch has no such column" kept apart from SQL NULL.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Cell<'a> {
    /// The (optional) column is not in this batch, or the module did not declare it.
    Missing,
    /// SQL NULL.
    Null,
    Text(&'a str),
    /// Integer and boolean columns.
    Integer(i64),
    Float(f64),
}

/// One row of a batch. Cheap to copy; valid for the duration of one
/// [`Transform::row`](crate::Transform::row) call.
///
/// Accessors take a [`Col`](crate::Col) from [`columns!`](crate::columns) (constant time) or a
/// column name. They return `None` for NULL, for a column missing from the batch and for a
/// column of another kind (e.g. `int` on a text column); use [`Row::cell`] to tell these apart.
#[derive(Debug, Clone, Copy)]
pub struct Row<'a> {
    batch: &'a BoundBatch<'a>,
    index: usize,
}

impl<'a> Row<'a> {
    /// The row's position in its batch (0-based).
    pub fn index(&self) -> usize {
        self.index
    }

    /// The cell in column `key`.
    #[inline(always)] // wasm pays dearly for calls Cranelift cannot inline; this is per cell
    pub fn cell(&self, key: impl ColumnKey) -> Cell<'a> {
        let Some(column) = key
            .position(self.batch.declared)
            .and_then(|position| self.batch.columns.get(position))
            .and_then(Option::as_ref)
        else {
            return Cell::Missing;
        };
        let i = self.index;
        if column.present.get(i) == Some(&0) {
            return Cell::Null;
        }
        // Lengths were checked when the batch was bound; `get` keeps a host bug from turning
        // into a panic all the same.
        match &column.values {
            Values::Text(cells) => cells.get(i).map_or(Cell::Null, |&text| Cell::Text(text)),
            Values::Integer(values) => values.get(i).map_or(Cell::Null, |&v| Cell::Integer(v)),
            Values::Float(values) => values.get(i).map_or(Cell::Null, |&v| Cell::Float(v)),
        }
    }

    /// True when the batch carries column `key` (its value may still be NULL).
    pub fn has_column(&self, key: impl ColumnKey) -> bool {
        key.position(self.batch.declared)
            .and_then(|position| self.batch.columns.get(position))
            .is_some_and(Option::is_some)
    }

    /// The text of a text, date, time or timestamp column, borrowed from the batch (no copy).
    #[inline(always)]
    pub fn text(&self, key: impl ColumnKey) -> Option<&'a str> {
        match self.cell(key) {
            Cell::Text(text) => Some(text),
            _ => None,
        }
    }

    /// The value of an integer (or boolean) column.
    #[inline(always)]
    pub fn int(&self, key: impl ColumnKey) -> Option<i64> {
        match self.cell(key) {
            Cell::Integer(value) => Some(value),
            _ => None,
        }
    }

    /// The value of a float column.
    #[inline(always)]
    pub fn float(&self, key: impl ColumnKey) -> Option<f64> {
        match self.cell(key) {
            Cell::Float(value) => Some(value),
            _ => None,
        }
    }

    /// The value of a boolean column (delivered as an integer: 0 is false, anything else true).
    #[inline(always)]
    pub fn bool(&self, key: impl ColumnKey) -> Option<bool> {
        self.int(key).map(|value| value != 0)
    }
}
