//! The double's answer to the default queries: the KCMO corpus held as `mpfile` and `imfile`
//! tables, filtered by the window parameter exactly as SQL Server would compare it.
//!
//! This is the double's "loader": the tables come from the same KCMO CSVs `reqsync seed --kcmo`
//! loads, typed as the clinic schema declares them on SQL Server.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Mutex;

use reqsync::seed::model::Value as SeedValue;
use reqsync::seed::schema::{IMFILE, MPFILE, SqlType as SchemaType, TableDef};
use reqsync::seed::{Corpus, Dose, Patient};
use reqsync::source::{PlaceholderStyle, bind_window_start};

use super::request::{ParamValue, exact_of};
use super::tokens::{Cell, Col, ResultSet, SqlType, datetime_parts};
use super::{Fault, Handler, Reply, Request};

/// `mpfile` and `imfile` with the KCMO rows; answers the two default queries.
pub struct ClinicTables {
    pub patients: Vec<Patient>,
    pub doses: Vec<Dose>,
    /// How `updated_at` is declared (datetime2(7) by default).
    pub updated_at: SqlType,
    patients_sql: String,
    doses_sql: String,
    /// A fault to inject into the next answer to a query whose name contains the key.
    fault: Mutex<Option<(String, Fault)>>,
}

fn default_query(file: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../queries")
        .join(file);
    let sql = std::fs::read_to_string(&path).expect("default query");
    bind_window_start(&sql, PlaceholderStyle::SqlServer).0
}

impl ClinicTables {
    pub fn kcmo() -> Self {
        Self {
            patients: Corpus::Kcmo.patients().expect("kcmo patients"),
            doses: Corpus::Kcmo.doses().expect("kcmo doses"),
            updated_at: SqlType::DateTime2(7),
            patients_sql: default_query("patients.sql"),
            doses_sql: default_query("vaccine_doses.sql"),
            fault: Mutex::new(None),
        }
    }

    /// Breaks the next answer to the `"patients"` or `"doses"` query.
    pub fn inject(&self, query: &str, fault: Fault) {
        *self.fault.lock().expect("fault") = Some((query.to_string(), fault));
    }

    fn take_fault(&self, query: &str) -> Option<Fault> {
        let mut slot = self.fault.lock().expect("fault");
        match slot.as_ref() {
            Some((key, fault)) if key == query => {
                let f = *fault;
                *slot = None;
                Some(f)
            }
            _ => None,
        }
    }

    fn column_type(&self, ty: SchemaType) -> SqlType {
        match ty {
            SchemaType::Int => SqlType::Int,
            SchemaType::BigInt => SqlType::BigInt,
            SchemaType::VarChar(n) => SqlType::NVarChar(n),
            SchemaType::Char(n) => SqlType::Char(u16::from(n)),
            SchemaType::Text => SqlType::NVarCharMax,
            SchemaType::Date => SqlType::Date,
            SchemaType::DateTime => self.updated_at,
        }
    }

    fn columns(&self, table: &TableDef) -> Vec<Col> {
        table
            .columns
            .iter()
            .map(|c| Col::new(c.name, self.column_type(c.ty)))
            .collect()
    }

    /// `updated_at >= @P1` as SQL Server evaluates it on the column's stored value.
    fn changed_since(&self, updated_at: chrono::NaiveDateTime, start: i128) -> bool {
        let stored = match self.updated_at {
            SqlType::DateTime => {
                let (days, fragments) = datetime_parts(updated_at);
                ParamValue::DateTime { days, fragments }
                    .exact()
                    .expect("datetime")
            }
            _ => exact_of(updated_at),
        };
        stored >= start
    }

    fn start(request: &Request) -> Result<i128, Reply> {
        request
            .param("@P1")
            .and_then(ParamValue::exact)
            .ok_or_else(|| Reply::Error {
                number: 8178,
                class: 16,
                message: "The parameterized query expects the parameter '@P1', which was not \
                          supplied as a date/time."
                    .into(),
            })
    }

    fn patients_result(&self, start: i128) -> ResultSet {
        let wanted = [
            "patno",
            "lname",
            "fname",
            "birth_date",
            "sex",
            "addr1",
            "addr2",
            "city",
            "state",
            "zip",
            "home_phone",
            "cell_phone",
            "email",
            "race",
            "ethnicity",
            "family_no",
            "notes",
            "updated_at",
        ];
        let all = self.columns(&MPFILE);
        let index: Vec<usize> = wanted
            .iter()
            .map(|n| {
                MPFILE
                    .columns
                    .iter()
                    .position(|c| c.name == *n)
                    .expect("column")
            })
            .collect();
        let mut patients: Vec<&Patient> = self
            .patients
            .iter()
            .filter(|p| self.changed_since(p.updated_at, start))
            .collect();
        patients.sort_by_key(|p| p.patno);
        ResultSet {
            columns: index.iter().map(|&i| all[i].clone()).collect(),
            rows: patients
                .iter()
                .map(|p| {
                    let values = p.values();
                    index.iter().map(|&i| cell(values[i])).collect()
                })
                .collect(),
        }
    }

    fn doses_result(&self, start: i128) -> ResultSet {
        let mut changed: BTreeSet<i64> = self
            .doses
            .iter()
            .filter(|d| self.changed_since(d.updated_at, start))
            .map(|d| d.patno)
            .collect();
        changed.extend(
            self.patients
                .iter()
                .filter(|p| self.changed_since(p.updated_at, start))
                .map(|p| p.patno),
        );
        let mut doses: Vec<&Dose> = self
            .doses
            .iter()
            .filter(|d| changed.contains(&d.patno))
            .collect();
        doses.sort_by_key(|d| (d.patno, d.admin_date, d.im_id));
        let mut columns = self.columns(&IMFILE);
        columns.extend([
            Col::new("patient_patno", SqlType::Int),
            Col::new("patient_lname", SqlType::NVarChar(60)),
            Col::new("patient_fname", SqlType::NVarChar(60)),
            Col::new("patient_birth_date", SqlType::Date),
        ]);
        let rows = doses
            .iter()
            .map(|d| {
                let mut row: Vec<Cell> = d.values().iter().map(|v| cell(*v)).collect();
                match self.patients.iter().find(|p| p.patno == d.patno) {
                    Some(p) => row.extend([
                        Cell::Int(p.patno),
                        Cell::Text(p.lname.clone()),
                        Cell::Text(p.fname.clone()),
                        Cell::Date(p.birth_date),
                    ]),
                    None => row.extend([Cell::Null, Cell::Null, Cell::Null, Cell::Null]),
                }
                row
            })
            .collect();
        ResultSet { columns, rows }
    }
}

fn cell(v: SeedValue<'_>) -> Cell {
    match v {
        SeedValue::Null => Cell::Null,
        SeedValue::Int(i) => Cell::Int(i),
        SeedValue::Text(s) => Cell::Text(s.to_string()),
        SeedValue::Date(d) => Cell::Date(d),
        SeedValue::DateTime(t) => Cell::Timestamp(t),
    }
}

impl Handler for ClinicTables {
    fn execute(&self, request: &Request) -> Reply {
        let (name, result) = if request.sql == self.patients_sql {
            match Self::start(request) {
                Ok(start) => ("patients", self.patients_result(start)),
                Err(e) => return e,
            }
        } else if request.sql == self.doses_sql {
            match Self::start(request) {
                Ok(start) => ("doses", self.doses_result(start)),
                Err(e) => return e,
            }
        } else {
            return Reply::Error {
                number: 208,
                class: 16,
                message: "Invalid object name (the test double only answers the default \
                          patients and vaccine_doses queries)."
                    .into(),
            };
        };
        Reply::Rows(result, self.take_fault(name))
    }

    fn describe_window_parameter(&self, _sql: &str) -> Result<String, (u32, String)> {
        Ok(self.updated_at.sql_name())
    }
}
