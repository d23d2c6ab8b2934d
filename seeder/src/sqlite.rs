//! Writes typed rows into SQLite in the storage conventions of [`super::schema`].

use rusqlite::types::{ToSql, ToSqlOutput};
use rusqlite::{Connection, Statement};

use super::model::{Dose, Patient, Value, sqlite_date, sqlite_datetime};
use super::schema::{Dialect, IMFILE, MPFILE};

impl ToSql for Value<'_> {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(match *self {
            Value::Null => ToSqlOutput::from(rusqlite::types::Null),
            Value::Int(i) => ToSqlOutput::from(i),
            Value::Text(s) => ToSqlOutput::from(s),
            Value::Date(d) => ToSqlOutput::from(sqlite_date(d)),
            Value::DateTime(t) => ToSqlOutput::from(sqlite_datetime(t)),
        })
    }
}

/// Creates the clinic source schema (tables and indexes) if absent. Idempotent.
pub fn create_schema(conn: &Connection) -> rusqlite::Result<()> {
    for statement in Dialect::Sqlite.ddl() {
        conn.execute(&statement, [])?;
    }
    Ok(())
}

/// Upserts rows through two prepared statements (`INSERT OR REPLACE`, keyed by `patno` /
/// `im_id`). Run it inside a transaction: per-row autocommit is orders of magnitude slower.
#[derive(Debug)]
pub struct SqliteWriter<'c> {
    patient: Statement<'c>,
    dose: Statement<'c>,
}

impl<'c> SqliteWriter<'c> {
    /// Prepares the statements; the schema must exist.
    pub fn new(conn: &'c Connection) -> rusqlite::Result<Self> {
        Ok(SqliteWriter {
            patient: conn.prepare(&Dialect::Sqlite.upsert(&MPFILE))?,
            dose: conn.prepare(&Dialect::Sqlite.upsert(&IMFILE))?,
        })
    }

    /// Inserts or replaces one patient.
    pub fn patient(&mut self, patient: &Patient) -> rusqlite::Result<()> {
        self.patient
            .execute(rusqlite::params_from_iter(patient.values()))?;
        Ok(())
    }

    /// Inserts or replaces one dose.
    pub fn dose(&mut self, dose: &Dose) -> rusqlite::Result<()> {
        self.dose
            .execute(rusqlite::params_from_iter(dose.values()))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::corpus::Corpus;

    #[test]
    fn a_round_trip_keeps_every_column_in_its_convention() -> Result<(), Box<dyn std::error::Error>>
    {
        let conn = Connection::open_in_memory()?;
        create_schema(&conn)?;
        let mut patient = Corpus::Kcmo.patients()?.remove(0);
        patient.mname = Some("Ann".to_owned());
        patient.family_no = Some(7);
        patient.updated_at += chrono::TimeDelta::milliseconds(5);
        let mut dose = Corpus::Kcmo.doses()?.remove(0);
        dose.exp_date = Some(dose.admin_date);
        dose.comments = Some("c".to_owned());
        {
            let mut writer = SqliteWriter::new(&conn)?;
            writer.patient(&patient)?;
            writer.dose(&dose)?;
        }
        let row: (
            i64,
            String,
            String,
            Option<String>,
            i64,
            String,
            Option<String>,
        ) = conn.query_row(
            "SELECT patno, birth_date, updated_at, sex, family_no, mname, addr1 FROM mpfile",
            [],
            |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                    r.get(6)?,
                ))
            },
        )?;
        assert_eq!(
            row,
            (
                101,
                "2015-10-15".to_owned(),
                "2016-09-28 12:00:00.005".to_owned(),
                None,
                7,
                "Ann".to_owned(),
                None
            )
        );
        let types: (String, String, String, String) = conn.query_row(
            "SELECT typeof(im_id), typeof(cvx), typeof(admin_date), typeof(lot_no) FROM imfile",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )?;
        assert_eq!(
            types,
            (
                "integer".into(),
                "integer".into(),
                "text".into(),
                "null".into()
            )
        );
        let dose_row: (String, String, String, String) = conn.query_row(
            "SELECT exp_date, admin_date, history, comments FROM imfile",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )?;
        assert_eq!(
            dose_row,
            (
                "2016-07-19".into(),
                "2016-07-19".into(),
                "N".into(),
                "c".into()
            )
        );
        Ok(())
    }
}
