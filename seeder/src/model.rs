//! Typed rows of the clinic source schema, shared by every seeding source and every dialect.
//!
//! Nothing in the seeding code formats a row (`Debug` is derived for tests and the workspace
//! lint): seed rows are test data, but the habit of never printing row values is kept everywhere.

use chrono::{NaiveDate, NaiveDateTime, Timelike};

/// One `mpfile` row (a patient). Column docs are in `docs/default-mapping.md`.
///
/// Numbers are `i64` although the schema says `int`: the generator deliberately writes patient
/// numbers above 2 147 483 647 so that the range rule has something to reject.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Patient {
    pub patno: i64,
    pub lname: String,
    pub fname: String,
    pub mname: Option<String>,
    pub birth_date: NaiveDate,
    pub sex: Option<String>,
    pub addr1: Option<String>,
    pub addr2: Option<String>,
    pub city: Option<String>,
    pub state: Option<String>,
    pub zip: Option<String>,
    pub home_phone: Option<String>,
    pub cell_phone: Option<String>,
    pub email: Option<String>,
    pub race: Option<String>,
    pub ethnicity: Option<String>,
    pub family_no: Option<i64>,
    pub notes: Option<String>,
    pub updated_at: NaiveDateTime,
}

/// One `imfile` row (an administered or historical dose).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dose {
    pub im_id: i64,
    pub patno: i64,
    pub vac_code: Option<String>,
    pub vac_desc: Option<String>,
    pub cvx: i64,
    pub mvx: Option<String>,
    pub lot_no: Option<String>,
    pub exp_date: Option<NaiveDate>,
    pub admin_date: NaiveDate,
    pub history: String,
    pub provider: Option<String>,
    pub dosage: Option<String>,
    pub site: Option<String>,
    pub given_by: Option<String>,
    pub vfc_code: Option<String>,
    pub vfc_desc: Option<String>,
    pub encounter_id: Option<String>,
    pub comments: Option<String>,
    pub updated_at: NaiveDateTime,
}

/// A dialect-neutral column value; each writer binds it in its own storage convention.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Value<'a> {
    /// SQL NULL.
    Null,
    /// An integer.
    Int(i64),
    /// Text.
    Text(&'a str),
    /// A calendar date.
    Date(NaiveDate),
    /// A local timestamp without offset.
    DateTime(NaiveDateTime),
}

fn text(v: &Option<String>) -> Value<'_> {
    v.as_deref().map_or(Value::Null, Value::Text)
}

impl Patient {
    /// Column values in [`super::schema::MPFILE`] column order.
    pub fn values(&self) -> [Value<'_>; 19] {
        [
            Value::Int(self.patno),
            Value::Text(&self.lname),
            Value::Text(&self.fname),
            text(&self.mname),
            Value::Date(self.birth_date),
            text(&self.sex),
            text(&self.addr1),
            text(&self.addr2),
            text(&self.city),
            text(&self.state),
            text(&self.zip),
            text(&self.home_phone),
            text(&self.cell_phone),
            text(&self.email),
            text(&self.race),
            text(&self.ethnicity),
            self.family_no.map_or(Value::Null, Value::Int),
            text(&self.notes),
            Value::DateTime(self.updated_at),
        ]
    }
}

impl Dose {
    /// Column values in [`super::schema::IMFILE`] column order.
    pub fn values(&self) -> [Value<'_>; 19] {
        [
            Value::Int(self.im_id),
            Value::Int(self.patno),
            text(&self.vac_code),
            text(&self.vac_desc),
            Value::Int(self.cvx),
            text(&self.mvx),
            text(&self.lot_no),
            self.exp_date.map_or(Value::Null, Value::Date),
            Value::Date(self.admin_date),
            Value::Text(&self.history),
            text(&self.provider),
            text(&self.dosage),
            text(&self.site),
            text(&self.given_by),
            text(&self.vfc_code),
            text(&self.vfc_desc),
            text(&self.encounter_id),
            text(&self.comments),
            Value::DateTime(self.updated_at),
        ]
    }
}

/// A date in the SQLite storage convention: `YYYY-MM-DD`.
pub fn sqlite_date(d: NaiveDate) -> String {
    d.format("%Y-%m-%d").to_string()
}

/// A timestamp in the SQLite storage convention: `YYYY-MM-DD HH:MM:SS`, plus `.SSS` (or 6 or 9
/// digits when finer) only when the fraction is non-zero.
pub fn sqlite_datetime(t: NaiveDateTime) -> String {
    // `%.f` prints nothing for a zero fraction and otherwise the shortest of 3, 6 or 9 digits,
    // so one instant always has one spelling (text equality is time equality).
    debug_assert!(
        t.nanosecond() < 1_000_000_000,
        "leap seconds are not stored"
    );
    t.format("%Y-%m-%d %H:%M:%S%.f").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::{IMFILE, MPFILE};

    #[test]
    fn values_follow_the_table_column_order() {
        // Pins the arity; the order is checked by the round trip in the SQLite writer tests.
        assert_eq!(MPFILE.columns.len(), 19);
        assert_eq!(IMFILE.columns.len(), 19);
    }

    #[test]
    fn timestamps_print_a_fraction_only_when_non_zero() -> Result<(), chrono::ParseError> {
        let t = NaiveDateTime::parse_from_str("2025-03-04 05:06:07", "%Y-%m-%d %H:%M:%S")?;
        assert_eq!(sqlite_datetime(t), "2025-03-04 05:06:07");
        let t = NaiveDateTime::parse_from_str("2025-03-04 05:06:07.25", "%Y-%m-%d %H:%M:%S%.f")?;
        assert_eq!(sqlite_datetime(t), "2025-03-04 05:06:07.250");
        assert!("2025-03-04 05:06:07" < "2025-03-04 05:06:07.250");
        Ok(())
    }
}
