//! A batch of source rows, held column by column.
//!
//! Readers write each decoded value straight into its column's buffer: text into one string
//! per column with an end offset per row, numbers, dates and timestamps into a vector of their
//! type. That is the shape the transform host hands a module (the WIT world's `row-batch`), so
//! the host copies a text or integer column whole instead of walking it value by value. The
//! row-major batch this replaced cost a `Vec` per row and a [`Value`] per cell, which the
//! reader allocated and the transform thread walked once more and freed: about a fifth of
//! reqsync's CPU in a full sync (docs/PERFORMANCE.md, "source rows straight into columns").
//!
//! A column takes the type of its first non-NULL value. Engines with one type per column
//! (PostgreSQL, SQL Server) never leave it; a value of another type (SQLite's dynamic typing, a
//! `numeric(p, 0)` too large for 64 bits) turns the column into a column of [`Value`]s, which
//! keeps every value as it came.

use chrono::{NaiveDate, NaiveDateTime, NaiveTime};

use super::Value;

/// One value of a batch, borrowed from it (or from the row a reader is decoding). The same
/// kinds as [`Value`].
#[derive(Clone, Copy, PartialEq)]
pub enum Cell<'a> {
    Null,
    Int(i64),
    Float(f64),
    Text(&'a str),
    Bool(bool),
    Date(NaiveDate),
    Time(NaiveTime),
    /// Local clinic time, no offset.
    Timestamp(NaiveDateTime),
    Bytes(&'a [u8]),
}

impl Cell<'_> {
    /// The kind of value, for messages that must not show the value itself.
    pub fn kind(&self) -> &'static str {
        match self {
            Cell::Null => "NULL",
            Cell::Int(_) => "integer",
            Cell::Float(_) => "float",
            Cell::Text(_) => "text",
            Cell::Bool(_) => "boolean",
            Cell::Date(_) => "date",
            Cell::Time(_) => "time",
            Cell::Timestamp(_) => "timestamp",
            Cell::Bytes(_) => "binary",
        }
    }

    /// The owned value.
    pub(crate) fn to_value(self) -> Value {
        match self {
            Cell::Null => Value::Null,
            Cell::Int(i) => Value::Int(i),
            Cell::Float(f) => Value::Float(f),
            Cell::Text(s) => Value::Text(s.into()),
            Cell::Bool(b) => Value::Bool(b),
            Cell::Date(d) => Value::Date(d),
            Cell::Time(t) => Value::Time(t),
            Cell::Timestamp(ts) => Value::Timestamp(ts),
            Cell::Bytes(b) => Value::Bytes(b.to_vec()),
        }
    }
}

impl Value {
    /// The value as a [`Cell`] borrowing its text or bytes.
    pub(crate) fn as_cell(&self) -> Cell<'_> {
        match self {
            Value::Null => Cell::Null,
            Value::Int(i) => Cell::Int(*i),
            Value::Float(f) => Cell::Float(*f),
            Value::Text(s) => Cell::Text(s),
            Value::Bool(b) => Cell::Bool(*b),
            Value::Date(d) => Cell::Date(*d),
            Value::Time(t) => Cell::Time(*t),
            Value::Timestamp(ts) => Cell::Timestamp(*ts),
            Value::Bytes(b) => Cell::Bytes(b),
        }
    }
}

/// Values are protected health information: Debug shows the kind only, as [`Value`]'s does.
impl std::fmt::Debug for Cell<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "<{}>", self.kind())
    }
}

/// Rows of one query result, column by column; every column holds one value per row.
#[derive(Debug, Clone, Default)]
pub struct RowBatch {
    rows: usize,
    columns: Vec<SourceColumn>,
}

impl RowBatch {
    /// An empty batch of `width` columns.
    pub fn new(width: usize) -> Self {
        Self {
            rows: 0,
            columns: vec![SourceColumn::default(); width],
        }
    }

    /// An empty batch for the rows that follow this one: each column makes room for as many
    /// values (and as much text) as it holds here when it takes its type, so a reader's
    /// columns grow once per batch rather than by doubling (which copied each column's
    /// buffers about twice over).
    pub(crate) fn empty_like(&self) -> Self {
        Self {
            rows: 0,
            columns: self
                .columns
                .iter()
                .map(|c| SourceColumn {
                    capacity: Capacity {
                        values: c.len,
                        // An eighth more: the next batch's text is seldom exactly as long.
                        text_bytes: match &c.values {
                            ColumnValues::Text { data, .. } => data.len() + data.len() / 8,
                            _ => 0,
                        },
                    },
                    ..SourceColumn::default()
                })
                .collect(),
        }
    }

    /// A batch of the given rows (tests, tools and benchmarks; readers push values instead).
    /// A row shorter than `width` is padded with NULLs, as [`finish_row`](Self::finish_row)
    /// pads it.
    pub fn from_rows(width: usize, rows: impl IntoIterator<Item = Vec<Value>>) -> Self {
        let mut batch = Self::new(width);
        for row in rows {
            for (column, value) in row.iter().enumerate().take(width) {
                batch.push(column, value.as_cell());
            }
            batch.finish_row();
        }
        batch
    }

    /// The number of rows.
    pub fn len(&self) -> usize {
        self.rows
    }

    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }

    /// The number of columns.
    pub fn width(&self) -> usize {
        self.columns.len()
    }

    /// Column `index` (of the query's columns, in their order).
    pub fn column(&self, index: usize) -> &SourceColumn {
        &self.columns[index]
    }

    /// The value of `row` in `column`.
    pub fn cell(&self, row: usize, column: usize) -> Cell<'_> {
        self.columns[column].cell(row)
    }

    /// Adds `cell` as the value of the row being written in `column`. Each column takes one
    /// value per row, in column order or not; [`finish_row`](Self::finish_row) ends the row.
    pub fn push(&mut self, column: usize, cell: Cell<'_>) {
        let column = &mut self.columns[column];
        debug_assert_eq!(
            column.len, self.rows,
            "a column was given two values for one row"
        );
        column.push(cell);
    }

    /// Ends the row being written: a column that was given no value for it gets NULL.
    pub fn finish_row(&mut self) {
        self.rows += 1;
        for column in &mut self.columns {
            if column.len < self.rows {
                column.push(Cell::Null);
            }
        }
    }

    /// Keeps the first `rows` rows.
    pub fn truncate(&mut self, rows: usize) {
        if rows >= self.rows {
            return;
        }
        for column in &mut self.columns {
            column.truncate(rows);
        }
        self.rows = rows;
    }

    /// The rows as owned values (tests and tools; the pipeline reads columns).
    pub fn to_rows(&self) -> Vec<Vec<Value>> {
        (0..self.rows)
            .map(|row| {
                self.columns
                    .iter()
                    .map(|c| c.cell(row).to_value())
                    .collect()
            })
            .collect()
    }
}

/// One column of a [`RowBatch`].
#[derive(Clone, Default)]
pub struct SourceColumn {
    len: usize,
    /// Room to make when the column takes its type (see [`RowBatch::empty_like`]).
    capacity: Capacity,
    values: ColumnValues,
    /// One byte per row, 0 where the value is NULL; empty while no value is NULL (most columns
    /// of most batches), which is also how the WIT world says "no NULLs".
    present: Vec<u8>,
}

/// How much room a column makes for its values when it takes its type.
#[derive(Debug, Clone, Copy, Default)]
struct Capacity {
    values: usize,
    text_bytes: usize,
}

/// A column's values, in the type of its first non-NULL value.
#[derive(Clone, Default, PartialEq)]
pub enum ColumnValues {
    /// Every value so far is NULL.
    #[default]
    Nulls,
    /// All rows' text end to end; row `i` is `data[offsets[i]..offsets[i + 1]]` (`offsets`
    /// starts with 0). A NULL takes no bytes.
    Text {
        data: String,
        offsets: Vec<u32>,
    },
    /// A NULL is 0, a default date and so on: `present` says which rows are NULL.
    Int(Vec<i64>),
    Float(Vec<f64>),
    Bool(Vec<bool>),
    Date(Vec<NaiveDate>),
    Time(Vec<NaiveTime>),
    Timestamp(Vec<NaiveDateTime>),
    /// Values of more than one type, or bytes: each as it came.
    Mixed(Vec<Value>),
}

/// Values are protected health information: Debug shows the column's type and size only.
impl std::fmt::Debug for SourceColumn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let nulls = self.present.iter().filter(|p| **p == 0).count();
        write!(
            f,
            "<{} values of {}, {nulls} NULL>",
            self.len,
            self.values.kind()
        )
    }
}

impl std::fmt::Debug for ColumnValues {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "<{}>", self.kind())
    }
}

impl SourceColumn {
    /// The column's values (NULL rows hold a placeholder; see [`present`](Self::present)).
    pub fn values(&self) -> &ColumnValues {
        &self.values
    }

    /// One byte per row, 0 where the value is NULL; empty when no value is NULL.
    pub fn present(&self) -> &[u8] {
        &self.present
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The value of `row`.
    pub fn cell(&self, row: usize) -> Cell<'_> {
        if self.present.get(row) == Some(&0) {
            return Cell::Null;
        }
        match &self.values {
            ColumnValues::Nulls => Cell::Null,
            ColumnValues::Text { data, offsets } => {
                Cell::Text(&data[offsets[row] as usize..offsets[row + 1] as usize])
            }
            ColumnValues::Int(v) => Cell::Int(v[row]),
            ColumnValues::Float(v) => Cell::Float(v[row]),
            ColumnValues::Bool(v) => Cell::Bool(v[row]),
            ColumnValues::Date(v) => Cell::Date(v[row]),
            ColumnValues::Time(v) => Cell::Time(v[row]),
            ColumnValues::Timestamp(v) => Cell::Timestamp(v[row]),
            ColumnValues::Mixed(v) => v[row].as_cell(),
        }
    }

    /// Appends `cell`. Inlined into each reader's loop: a value of the column's type or a NULL
    /// (nearly every value) takes the short path; a column's first value and a value of
    /// another type take [`push_other`](Self::push_other).
    #[inline]
    fn push(&mut self, cell: Cell<'_>) {
        // The common types' arms repeat `ColumnValues::push`'s on purpose: calling it (even
        // marked inline) for every value cost 35 M more instructions in the 10k dry run.
        let pushed = match (&mut self.values, cell) {
            (ColumnValues::Text { data, offsets }, Cell::Text(s)) => {
                // Offsets are 32-bit, as the WIT world's are; a batch of more than 4 GiB of
                // one column's text keeps its values one by one instead.
                match u32::try_from(data.len() + s.len()) {
                    Ok(end) => {
                        data.push_str(s);
                        offsets.push(end);
                        true
                    }
                    Err(_) => false,
                }
            }
            (ColumnValues::Int(v), Cell::Int(x)) => {
                v.push(x);
                true
            }
            (ColumnValues::Date(v), Cell::Date(x)) => {
                v.push(x);
                true
            }
            (ColumnValues::Timestamp(v), Cell::Timestamp(x)) => {
                v.push(x);
                true
            }
            (ColumnValues::Mixed(_) | ColumnValues::Nulls, _) => false,
            (values, cell) => values.push(cell),
        };
        if !pushed {
            return self.push_other(cell);
        }
        self.mark_present(!matches!(cell, Cell::Null));
    }

    /// Records whether the value just pushed is NULL, and counts it.
    #[inline]
    fn mark_present(&mut self, present: bool) {
        if !present {
            if self.present.is_empty() {
                self.present.resize(self.len, 1);
            }
            self.present.push(0);
        } else if !self.present.is_empty() {
            self.present.push(1);
        }
        self.len += 1;
    }

    /// [`push`](Self::push) for the column's first value, a value of another type, or any value
    /// of a column of NULLs or of mixed types.
    #[cold]
    #[inline(never)]
    fn push_other(&mut self, cell: Cell<'_>) {
        let row = self.len;
        let null = matches!(cell, Cell::Null);
        if matches!(self.values, ColumnValues::Nulls) && !null {
            self.values = ColumnValues::typed_for(cell, row, self.capacity);
        }
        if !self.values.push(cell) {
            self.values = ColumnValues::Mixed((0..row).map(|r| self.cell(r).to_value()).collect());
            self.values.push(cell);
        }
        self.mark_present(!null);
    }

    fn truncate(&mut self, rows: usize) {
        self.len = rows;
        if !self.present.is_empty() {
            self.present.truncate(rows);
        }
        match &mut self.values {
            ColumnValues::Nulls => {}
            ColumnValues::Text { data, offsets } => {
                offsets.truncate(rows + 1);
                data.truncate(offsets[rows] as usize);
            }
            ColumnValues::Int(v) => v.truncate(rows),
            ColumnValues::Float(v) => v.truncate(rows),
            ColumnValues::Bool(v) => v.truncate(rows),
            ColumnValues::Date(v) => v.truncate(rows),
            ColumnValues::Time(v) => v.truncate(rows),
            ColumnValues::Timestamp(v) => v.truncate(rows),
            ColumnValues::Mixed(v) => v.truncate(rows),
        }
    }
}

impl ColumnValues {
    /// The type of the column's values, for messages.
    fn kind(&self) -> &'static str {
        match self {
            ColumnValues::Nulls => "NULL",
            ColumnValues::Text { .. } => "text",
            ColumnValues::Int(_) => "integer",
            ColumnValues::Float(_) => "float",
            ColumnValues::Bool(_) => "boolean",
            ColumnValues::Date(_) => "date",
            ColumnValues::Time(_) => "time",
            ColumnValues::Timestamp(_) => "timestamp",
            ColumnValues::Mixed(_) => "mixed",
        }
    }

    /// Values of `cell`'s type, with a placeholder for each of the `rows` NULLs before it,
    /// room for `capacity` values in all.
    fn typed_for(cell: Cell<'_>, rows: usize, capacity: Capacity) -> Self {
        fn filled<T: Clone>(value: T, rows: usize, capacity: usize) -> Vec<T> {
            let mut v = Vec::with_capacity(capacity.max(rows + 1));
            v.resize(rows, value);
            v
        }
        let n = capacity.values;
        match cell {
            Cell::Null => ColumnValues::Nulls,
            Cell::Int(_) => ColumnValues::Int(filled(0, rows, n)),
            Cell::Float(_) => ColumnValues::Float(filled(0.0, rows, n)),
            Cell::Text(_) => ColumnValues::Text {
                data: String::with_capacity(capacity.text_bytes),
                offsets: filled(0, rows + 1, n + 1),
            },
            Cell::Bool(_) => ColumnValues::Bool(filled(false, rows, n)),
            Cell::Date(_) => ColumnValues::Date(filled(NaiveDate::default(), rows, n)),
            Cell::Time(_) => ColumnValues::Time(filled(NaiveTime::MIN, rows, n)),
            Cell::Timestamp(_) => {
                ColumnValues::Timestamp(filled(NaiveDateTime::default(), rows, n))
            }
            Cell::Bytes(_) => ColumnValues::Mixed(filled(Value::Null, rows, n)),
        }
    }

    /// Appends `cell` (a NULL as a placeholder); false when the column cannot hold it as it is.
    fn push(&mut self, cell: Cell<'_>) -> bool {
        match (self, cell) {
            (ColumnValues::Nulls, Cell::Null) => {}
            (ColumnValues::Text { data, offsets }, Cell::Text(s)) => {
                // Offsets are 32-bit, as the WIT world's are; a batch of more than 4 GiB of
                // one column's text keeps its values one by one instead.
                let Ok(end) = u32::try_from(data.len() + s.len()) else {
                    return false;
                };
                data.push_str(s);
                offsets.push(end);
            }
            (ColumnValues::Text { data, offsets }, Cell::Null) => {
                offsets.push(data.len() as u32);
            }
            (ColumnValues::Int(v), Cell::Int(x)) => v.push(x),
            (ColumnValues::Int(v), Cell::Null) => v.push(0),
            (ColumnValues::Float(v), Cell::Float(x)) => v.push(x),
            (ColumnValues::Float(v), Cell::Null) => v.push(0.0),
            (ColumnValues::Bool(v), Cell::Bool(x)) => v.push(x),
            (ColumnValues::Bool(v), Cell::Null) => v.push(false),
            (ColumnValues::Date(v), Cell::Date(x)) => v.push(x),
            (ColumnValues::Date(v), Cell::Null) => v.push(NaiveDate::default()),
            (ColumnValues::Time(v), Cell::Time(x)) => v.push(x),
            (ColumnValues::Time(v), Cell::Null) => v.push(NaiveTime::MIN),
            (ColumnValues::Timestamp(v), Cell::Timestamp(x)) => v.push(x),
            (ColumnValues::Timestamp(v), Cell::Null) => v.push(NaiveDateTime::default()),
            (ColumnValues::Mixed(v), cell) => v.push(cell.to_value()),
            _ => return false,
        }
        true
    }
}

/// Generated rows for property tests of batches and of what reads them.
#[cfg(test)]
pub(crate) mod testing {
    use super::*;
    use proptest::prelude::*;

    /// Any value, NaN left out (it never equals itself).
    pub fn value() -> impl Strategy<Value = Value> {
        prop_oneof![
            Just(Value::Null),
            any::<i64>().prop_map(Value::Int),
            any::<f64>()
                .prop_filter("NaN never equals itself", |f| !f.is_nan())
                .prop_map(Value::Float),
            ".{0,30}".prop_map(|s| Value::Text(s.into())),
            any::<bool>().prop_map(Value::Bool),
            (-100_000i32..100_000).prop_map(|d| Value::Date(
                NaiveDate::from_num_days_from_ce_opt(730_000 + d).unwrap()
            )),
            (0u32..86_400).prop_map(|s| Value::Time(
                NaiveTime::from_num_seconds_from_midnight_opt(s, 0).unwrap()
            )),
            (0i64..4_000_000_000).prop_map(|s| Value::Timestamp(
                chrono::DateTime::from_timestamp(s, 0).unwrap().naive_utc()
            )),
            proptest::collection::vec(any::<u8>(), 0..8).prop_map(Value::Bytes),
        ]
    }

    /// Up to 40 rows of one column per strategy in `firsts`: a column's first value comes from
    /// its strategy and most later ones are of the same kind (as engines give them), some NULL
    /// and some of any other kind.
    pub fn rows(firsts: Vec<BoxedStrategy<Value>>) -> impl Strategy<Value = Vec<Vec<Value>>> {
        let columns: Vec<_> = firsts
            .into_iter()
            .map(|first| {
                (first, proptest::collection::vec((value(), 0u8..10), 0..40)).prop_map(
                    |(first, rest)| {
                        let mut out = vec![first.clone()];
                        for (other, dice) in rest {
                            out.push(match dice {
                                0 => Value::Null,
                                1 => other,
                                // Same kind, another value where that is easy to make.
                                _ => match (&first, &other) {
                                    (Value::Int(_), Value::Int(_))
                                    | (Value::Text(_), Value::Text(_)) => other,
                                    _ => first.clone(),
                                },
                            });
                        }
                        out
                    },
                )
            })
            .collect();
        columns.prop_map(|columns| {
            let n = columns.iter().map(Vec::len).min().unwrap_or(0);
            (0..n)
                .map(|r| columns.iter().map(|c| c[r].clone()).collect())
                .collect()
        })
    }

    /// A batch of `rows` whose every column keeps its values one by one, as a column of mixed
    /// types does: what the conversion's per-value path reads.
    pub(crate) fn mixed_from_rows(width: usize, rows: &[Vec<Value>]) -> RowBatch {
        let mut batch = RowBatch::from_rows(width, rows.iter().cloned());
        for (index, column) in batch.columns.iter_mut().enumerate() {
            column.values = ColumnValues::Mixed(rows.iter().map(|r| r[index].clone()).collect());
        }
        batch
    }
}

#[cfg(test)]
mod tests {
    use super::testing::{rows, value};
    use super::*;
    use proptest::prelude::*;

    fn three_columns() -> impl Strategy<Value = Vec<Vec<Value>>> {
        rows(vec![value().boxed(), value().boxed(), value().boxed()])
    }

    proptest! {
        #[test]
        fn a_batch_gives_back_every_value_it_was_given(rows in three_columns()) {
            let batch = RowBatch::from_rows(3, rows.clone());
            prop_assert_eq!(batch.len(), rows.len());
            prop_assert_eq!(batch.to_rows(), rows);
        }

        #[test]
        fn truncating_a_batch_keeps_its_first_rows(rows in three_columns(), keep in 0usize..45) {
            let mut batch = RowBatch::from_rows(3, rows.clone());
            batch.truncate(keep);
            let kept: Vec<_> = rows.into_iter().take(keep).collect();
            prop_assert_eq!(batch.len(), kept.len());
            prop_assert_eq!(batch.to_rows(), kept);
        }

        #[test]
        fn a_batch_made_like_another_takes_any_rows(
            rows in three_columns(),
            others in three_columns(),
        ) {
            let mut next = RowBatch::from_rows(3, rows).empty_like();
            for row in &others {
                for (column, value) in row.iter().enumerate() {
                    next.push(column, value.as_cell());
                }
                next.finish_row();
            }
            prop_assert_eq!(next.to_rows(), others);
        }
    }

    #[test]
    fn a_batch_made_like_another_makes_room_for_as_many_values() {
        let rows = (0..100).map(|i| vec![Value::Int(i), Value::Text("Doe".into())]);
        let mut next = RowBatch::from_rows(2, rows).empty_like();
        next.push(0, Cell::Int(1));
        next.push(1, Cell::Text("Roe"));
        next.finish_row();
        let ColumnValues::Int(ints) = next.column(0).values() else {
            panic!("an integer column")
        };
        assert!(ints.capacity() >= 100, "{}", ints.capacity());
        let ColumnValues::Text { data, offsets } = next.column(1).values() else {
            panic!("a text column")
        };
        assert!(data.capacity() >= 300 && offsets.capacity() >= 101);
    }

    #[test]
    fn columns_of_one_type_stay_typed_and_record_their_nulls() {
        let batch = RowBatch::from_rows(
            2,
            vec![
                vec![Value::Null, Value::Text("Doe".into())],
                vec![Value::Int(7), Value::Null],
                vec![Value::Int(8), Value::Text("Roe".into())],
            ],
        );
        assert_eq!(batch.column(0).values(), &ColumnValues::Int(vec![0, 7, 8]));
        assert_eq!(batch.column(0).present(), &[0, 1, 1]);
        assert_eq!(
            batch.column(1).values(),
            &ColumnValues::Text {
                data: "DoeRoe".into(),
                offsets: vec![0, 3, 3, 6]
            }
        );
        assert_eq!(batch.column(1).present(), &[1, 0, 1]);
    }

    #[test]
    fn a_value_of_another_type_turns_the_column_into_values() {
        let batch =
            RowBatch::from_rows(1, vec![vec![Value::Int(1)], vec![Value::Text("x".into())]]);
        assert!(matches!(batch.column(0).values(), ColumnValues::Mixed(_)));
        assert_eq!(batch.cell(0, 0), Cell::Int(1));
        assert_eq!(batch.cell(1, 0), Cell::Text("x"));
        assert!(batch.column(0).present().is_empty());
    }

    #[test]
    fn a_short_row_is_padded_with_nulls() {
        let mut batch = RowBatch::new(3);
        batch.push(0, Cell::Int(1));
        batch.finish_row();
        assert_eq!(
            batch.to_rows(),
            vec![vec![Value::Int(1), Value::Null, Value::Null]]
        );
    }

    #[test]
    fn debug_output_never_shows_the_value() {
        assert_eq!(format!("{:?}", Cell::Text("Jane O'Brien")), "<text>");
        let batch = RowBatch::from_rows(1, vec![vec![Value::Text("Jane".into())]]);
        assert!(!format!("{batch:?}").contains("Jane"));
    }
}
