//! The double's clinic: `mpfile` and `imfile` held as typed rows, answering the two default
//! queries (filtered by the window parameter exactly as SQL Server would compare it) and taking
//! the rows `reqsync seed` writes.
//!
//! Loading: [`ClinicTables::kcmo`] starts from the same KCMO CSVs `reqsync seed --kcmo` loads;
//! [`ClinicTables::empty`] starts with no tables, and the seed's own statements create and fill
//! them. Still no SQL parser: a request is recognised by being *exactly* one of the statements
//! the product generates (`Dialect::SqlServer`'s DDL and upserts, the default query files), and
//! the rows are read back from the typed `@P…` parameters, in the schema's column order. Writes
//! inside a transaction are kept aside until it commits (one writing transaction at a time).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Mutex;

use chrono::{NaiveDate, NaiveDateTime};
use reqsync_runtime::source::{PlaceholderStyle, bind_window_start};
use reqsync_seeder::model::Value as SeedValue;
use reqsync_seeder::schema::{
    Dialect, IMFILE, MPFILE, SqlType as SchemaType, TABLES, TableDef, sql_server_upsert,
};
use reqsync_seeder::{Corpus, Dose, Patient};

use super::request::{ParamValue, exact_of};
use super::tokens::{Cell, Col, ResultSet, SqlType, datetime_parts};
use super::{Fault, Handler, Reply, Request, Transaction};

/// The clinic tables: which exist, and their rows by key.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Tables {
    pub created: BTreeSet<&'static str>,
    pub patients: BTreeMap<i64, Patient>,
    pub doses: BTreeMap<i64, Dose>,
}

#[derive(Debug, Default)]
struct State {
    committed: Tables,
    /// The open transaction: its descriptor and its view of the tables.
    open: Option<(u64, Tables)>,
    /// Upsert statements received per table (for [`ClinicTables::fail_upsert`]).
    upserts: BTreeMap<&'static str, usize>,
}

/// A server error to answer instead of the `nth` upsert statement into `table`.
#[derive(Debug, Clone)]
struct WriteFault {
    table: String,
    nth: usize,
    number: u32,
    message: String,
}

/// `mpfile` and `imfile`; answers the two default queries and the seed's statements.
pub struct ClinicTables {
    /// How `updated_at` is declared (datetime2(7) by default).
    pub updated_at: SqlType,
    state: Mutex<State>,
    patients_sql: String,
    doses_sql: String,
    /// The seed's DDL statements, and the table each one is about.
    ddl: Vec<(String, &'static TableDef)>,
    /// A fault to inject into the next answer to a query whose name contains the key.
    /// The query to break, how many of its answers to let through first, and how.
    fault: Mutex<Option<(String, usize, Fault)>>,
    write_fault: Mutex<Option<WriteFault>>,
}

fn default_query(file: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../queries")
        .join(file);
    let sql = std::fs::read_to_string(&path).expect("default query");
    bind_window_start(&sql, PlaceholderStyle::SqlServer).0
}

impl ClinicTables {
    /// The KCMO corpus, committed, in tables that exist.
    pub fn kcmo() -> Self {
        let tables = Tables {
            created: TABLES.iter().map(|t| t.name).collect(),
            patients: Corpus::Kcmo
                .patients()
                .expect("kcmo patients")
                .into_iter()
                .map(|p| (p.patno, p))
                .collect(),
            doses: Corpus::Kcmo
                .doses()
                .expect("kcmo doses")
                .into_iter()
                .map(|d| (d.im_id, d))
                .collect(),
        };
        Self::with(tables)
    }

    /// A database without the clinic tables: what `reqsync seed` starts from.
    pub fn empty() -> Self {
        Self::with(Tables::default())
    }

    /// Tables a test built, committed.
    pub fn with(committed: Tables) -> Self {
        let mut ddl = Vec::new();
        for table in TABLES {
            ddl.push((Dialect::SqlServer.create_table(table), table));
            for index in Dialect::SqlServer.create_indexes(table) {
                ddl.push((index, table));
            }
        }
        Self {
            updated_at: SqlType::DateTime2(7),
            state: Mutex::new(State {
                committed,
                ..State::default()
            }),
            patients_sql: default_query("patients.sql"),
            doses_sql: default_query("vaccine_doses.sql"),
            ddl,
            fault: Mutex::new(None),
            write_fault: Mutex::new(None),
        }
    }

    /// What a new session sees: the committed tables.
    pub fn committed(&self) -> Tables {
        self.state.lock().expect("state").committed.clone()
    }

    /// Answers the `nth` (1-based) upsert statement into `table` with a server error instead of
    /// executing it.
    pub fn fail_upsert(&self, table: &str, nth: usize, number: u32, message: &str) {
        *self.write_fault.lock().expect("write fault") = Some(WriteFault {
            table: table.to_string(),
            nth,
            number,
            message: message.to_string(),
        });
    }

    /// Breaks the answer to the `"patients"` or `"doses"` query after `skip` answers to it
    /// have gone through whole (0: the next one).
    pub fn inject_after(&self, query: &str, skip: usize, fault: Fault) {
        *self.fault.lock().expect("fault") = Some((query.to_string(), skip, fault));
    }

    fn take_fault(&self, query: &str) -> Option<Fault> {
        let mut slot = self.fault.lock().expect("fault");
        match slot.as_mut() {
            Some((key, skip, _)) if key == query && *skip > 0 => {
                *skip -= 1;
                None
            }
            Some((key, _, fault)) if key == query => {
                let f = *fault;
                *slot = None;
                Some(f)
            }
            _ => None,
        }
    }

    /// The column types `Dialect::SqlServer` declares (`updated_at` as configured).
    fn column_type(&self, ty: SchemaType) -> SqlType {
        match ty {
            SchemaType::Int => SqlType::Int,
            SchemaType::BigInt => SqlType::BigInt,
            SchemaType::VarChar(n) => SqlType::VarChar(n),
            SchemaType::NVarChar(n) => SqlType::NVarChar(n),
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

    /// The window start bound as `name` (`@P1`, `@P2`, …), exactly.
    fn start(request: &Request, name: &str) -> Result<i128, Reply> {
        request
            .param(name)
            .and_then(ParamValue::exact)
            .ok_or_else(|| Reply::Error {
                number: 8178,
                class: 16,
                message: format!(
                    "The parameterized query expects the parameter '{name}', which was not \
                     supplied as a date/time."
                ),
            })
    }

    fn patients_result(&self, tables: &Tables, start: i128) -> ResultSet {
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
        // In key order: the query's ORDER BY patno.
        let patients: Vec<&Patient> = tables
            .patients
            .values()
            .filter(|p| self.changed_since(p.updated_at, start))
            .collect();
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

    /// `queries/vaccine_doses.sql`: its first `?` (`@P1`) is compared with `imfile.updated_at`,
    /// its second (`@P2`) with `mpfile.updated_at`.
    fn doses_result(&self, tables: &Tables, doses_since: i128, patients_since: i128) -> ResultSet {
        let mut changed: BTreeSet<i64> = tables
            .doses
            .values()
            .filter(|d| self.changed_since(d.updated_at, doses_since))
            .map(|d| d.patno)
            .collect();
        changed.extend(
            tables
                .patients
                .values()
                .filter(|p| self.changed_since(p.updated_at, patients_since))
                .map(|p| p.patno),
        );
        let mut doses: Vec<&Dose> = tables
            .doses
            .values()
            .filter(|d| changed.contains(&d.patno))
            .collect();
        doses.sort_by_key(|d| (d.patno, d.admin_date, d.im_id));
        let mut columns = self.columns(&IMFILE);
        columns.extend([
            Col::new("patient_patno", SqlType::BigInt),
            Col::new("patient_lname", SqlType::NVarChar(60)),
            Col::new("patient_fname", SqlType::NVarChar(60)),
            Col::new("patient_birth_date", SqlType::Date),
        ]);
        let rows = doses
            .iter()
            .map(|d| {
                let mut row: Vec<Cell> = d.values().iter().map(|v| cell(*v)).collect();
                match tables.patients.get(&d.patno) {
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

impl ClinicTables {
    /// The tables a request works on: the open transaction's when it carries its descriptor,
    /// the committed ones when it carries none (autocommit).
    fn target<'s>(state: &'s mut State, request: &Request) -> Result<&'s mut Tables, Reply> {
        let open = state.open.as_ref().map(|(d, _)| *d);
        match (request.transaction, open) {
            (None, None) => Ok(&mut state.committed),
            (Some(sent), Some(open)) if sent == open => match &mut state.open {
                Some((_, tables)) => Ok(tables),
                None => unreachable!("checked above"),
            },
            (sent, open) => Err(Reply::Error {
                number: 50000,
                class: 16,
                message: format!(
                    "test double: the request carries transaction descriptor {sent:?}, the \
                     session's transaction is {open:?}"
                ),
            }),
        }
    }

    fn ddl(&self, request: &Request, table: &'static TableDef) -> Reply {
        let mut state = self.state.lock().expect("state");
        let tables = match Self::target(&mut state, request) {
            Ok(t) => t,
            Err(e) => return e,
        };
        if request.sql.starts_with("IF OBJECT_ID") {
            tables.created.insert(table.name);
        } else if !tables.created.contains(table.name) {
            return invalid_object(table.name);
        }
        Reply::Done(vec![None])
    }

    fn upsert(
        &self,
        request: &Request,
        table: &'static TableDef,
        values: Vec<ParamValue>,
    ) -> Reply {
        let mut state = self.state.lock().expect("state");
        let nth = {
            let n = state.upserts.entry(table.name).or_default();
            *n += 1;
            *n
        };
        if let Some(fault) = self.write_fault.lock().expect("write fault").as_ref()
            && fault.table == table.name
            && fault.nth == nth
        {
            return Reply::Error {
                number: fault.number,
                class: 14,
                message: fault.message.clone(),
            };
        }
        let tables = match Self::target(&mut state, request) {
            Ok(t) => t,
            Err(e) => return e,
        };
        if !tables.created.contains(table.name) {
            return invalid_object(table.name);
        }
        let values: Vec<&ParamValue> = values.iter().collect();
        let rows = values.chunks(table.columns.len());
        let count = rows.len() as u64;
        let mut keys = BTreeSet::new();
        let (mut deleted, mut patients, mut doses) = (0, Vec::new(), Vec::new());
        for row in rows {
            let parsed = if table.name == MPFILE.name {
                patient_from(row).map(|p| {
                    deleted += u64::from(tables.patients.contains_key(&p.patno));
                    keys.insert(p.patno);
                    patients.push(p);
                })
            } else {
                dose_from(row).map(|d| {
                    deleted += u64::from(tables.doses.contains_key(&d.im_id));
                    keys.insert(d.im_id);
                    doses.push(d);
                })
            };
            if let Err(reason) = parsed {
                return Reply::Error {
                    number: 8114,
                    class: 16,
                    message: format!("test double: a parameter of {} {reason}", table.name),
                };
            }
        }
        if keys.len() as u64 != count {
            return Reply::Error {
                number: 2627,
                class: 14,
                message: format!(
                    "Violation of PRIMARY KEY constraint '{0}_pkey'. Cannot insert duplicate \
                     key in object 'dbo.{0}'.",
                    table.name
                ),
            };
        }
        tables
            .patients
            .extend(patients.into_iter().map(|p| (p.patno, p)));
        tables.doses.extend(doses.into_iter().map(|d| (d.im_id, d)));
        Reply::Done(vec![Some(deleted), Some(count)])
    }
}

/// Which values of an upsert into `table` are NULL, row after row in column order, when the
/// request is exactly one the seed generates: [`sql_server_upsert`] for the NULL pattern its
/// `VALUES` list shows (a `CAST(NULL AS …)` where a value is NULL, a parameter elsewhere), with
/// one parameter per non-NULL value.
pub fn upsert_nulls(request: &Request, table: &TableDef) -> Option<Vec<bool>> {
    let prefix = format!("DELETE FROM {} WHERE ", table.name);
    if !request.rpc || !request.sql.starts_with(&prefix) {
        return None;
    }
    let (_, list) = request.sql.split_once(" VALUES (")?;
    let list = list.strip_suffix(')')?;
    let mut nulls = Vec::new();
    for row in list.split("), (") {
        let items: Vec<&str> = row.split(", ").collect();
        if items.len() != table.columns.len() {
            return None;
        }
        nulls.extend(items.iter().map(|item| item.starts_with("CAST(NULL AS ")));
    }
    let bound = nulls.iter().filter(|null| !**null).count();
    (request.params.len() == bound && request.sql == sql_server_upsert(table, &nulls))
        .then_some(nulls)
}

/// The values of every row of an upsert (see [`upsert_nulls`]), row after row in column order.
fn upsert_values(request: &Request, table: &TableDef) -> Option<Vec<ParamValue>> {
    let nulls = upsert_nulls(request, table)?;
    let mut params = request.params.iter();
    nulls
        .iter()
        .map(|&null| {
            if null {
                Some(ParamValue::Null)
            } else {
                params.next().map(|p| p.value.clone())
            }
        })
        .collect()
}

fn invalid_object(name: &str) -> Reply {
    Reply::Error {
        number: 208,
        class: 16,
        message: format!("Invalid object name '{name}'."),
    }
}

fn int(v: &ParamValue) -> Result<i64, String> {
    match v {
        ParamValue::Int(i) => Ok(*i),
        other => Err(format!("is {other:?}, not an integer")),
    }
}

fn opt_int(v: &ParamValue) -> Result<Option<i64>, String> {
    match v {
        ParamValue::Null => Ok(None),
        v => int(v).map(Some),
    }
}

fn text(v: &ParamValue) -> Result<String, String> {
    match v {
        ParamValue::Text(s) => Ok(s.clone()),
        other => Err(format!("is {other:?}, not text")),
    }
}

fn opt_text(v: &ParamValue) -> Result<Option<String>, String> {
    match v {
        ParamValue::Null => Ok(None),
        v => text(v).map(Some),
    }
}

fn date(v: &ParamValue) -> Result<NaiveDate, String> {
    match v {
        ParamValue::Date(d) => Ok(*d),
        other => Err(format!("is {other:?}, not a date")),
    }
}

fn opt_date(v: &ParamValue) -> Result<Option<NaiveDate>, String> {
    match v {
        ParamValue::Null => Ok(None),
        v => date(v).map(Some),
    }
}

/// `datetime2` only: the schema's `updated_at` type.
fn datetime2(v: &ParamValue) -> Result<NaiveDateTime, String> {
    match v {
        ParamValue::DateTime2 { at, .. } => Ok(*at),
        other => Err(format!("is {other:?}, not a datetime2")),
    }
}

/// An `mpfile` row from its parameters, in `MPFILE` column order.
fn patient_from(v: &[&ParamValue]) -> Result<Patient, String> {
    Ok(Patient {
        patno: int(v[0])?,
        lname: text(v[1])?,
        fname: text(v[2])?,
        mname: opt_text(v[3])?,
        birth_date: date(v[4])?,
        sex: opt_text(v[5])?,
        addr1: opt_text(v[6])?,
        addr2: opt_text(v[7])?,
        city: opt_text(v[8])?,
        state: opt_text(v[9])?,
        zip: opt_text(v[10])?,
        home_phone: opt_text(v[11])?,
        cell_phone: opt_text(v[12])?,
        email: opt_text(v[13])?,
        race: opt_text(v[14])?,
        ethnicity: opt_text(v[15])?,
        family_no: opt_int(v[16])?,
        notes: opt_text(v[17])?,
        updated_at: datetime2(v[18])?,
    })
}

/// An `imfile` row from its parameters, in `IMFILE` column order.
fn dose_from(v: &[&ParamValue]) -> Result<Dose, String> {
    Ok(Dose {
        im_id: int(v[0])?,
        patno: int(v[1])?,
        vac_code: opt_text(v[2])?,
        vac_desc: opt_text(v[3])?,
        cvx: int(v[4])?,
        mvx: opt_text(v[5])?,
        lot_no: opt_text(v[6])?,
        exp_date: opt_date(v[7])?,
        admin_date: date(v[8])?,
        history: text(v[9])?,
        provider: opt_text(v[10])?,
        dosage: opt_text(v[11])?,
        site: opt_text(v[12])?,
        given_by: opt_text(v[13])?,
        vfc_code: opt_text(v[14])?,
        vfc_desc: opt_text(v[15])?,
        encounter_id: opt_text(v[16])?,
        comments: opt_text(v[17])?,
        updated_at: datetime2(v[18])?,
    })
}

impl Handler for ClinicTables {
    fn execute(&self, request: &Request) -> Reply {
        if let Some((_, table)) = self.ddl.iter().find(|(sql, _)| *sql == request.sql) {
            return self.ddl(request, table);
        }
        for table in TABLES {
            if let Some(values) = upsert_values(request, table) {
                return self.upsert(request, table, values);
            }
        }
        // Reads see committed rows (no session reads its own uncommitted writes here).
        let tables = self.committed();
        let (name, result) = if request.sql == self.patients_sql {
            match Self::start(request, "@P1") {
                Ok(start) => ("patients", self.patients_result(&tables, start)),
                Err(e) => return e,
            }
        } else if request.sql == self.doses_sql {
            match (Self::start(request, "@P1"), Self::start(request, "@P2")) {
                (Ok(doses_since), Ok(patients_since)) => (
                    "doses",
                    self.doses_result(&tables, doses_since, patients_since),
                ),
                (Err(e), _) | (_, Err(e)) => return e,
            }
        } else {
            return Reply::Error {
                number: 208,
                class: 16,
                message: "Invalid object name (the test double only answers the default \
                          patients and vaccine_doses queries and the seed's statements)."
                    .into(),
            };
        };
        if !tables.created.contains(MPFILE.name) || !tables.created.contains(IMFILE.name) {
            return invalid_object(MPFILE.name);
        }
        Reply::Rows(result, self.take_fault(name))
    }

    fn describe_window_parameter(&self, _sql: &str) -> Result<Option<String>, (u32, String)> {
        Ok(Some(self.updated_at.sql_name()))
    }

    fn transaction(&self, event: Transaction) {
        let mut state = self.state.lock().expect("state");
        match event {
            Transaction::Begin(descriptor) => {
                let view = state.committed.clone();
                state.open = Some((descriptor, view));
            }
            Transaction::Commit(descriptor) => {
                if let Some((open, tables)) = state.open.take() {
                    if open == descriptor {
                        state.committed = tables;
                    } else {
                        state.open = Some((open, tables));
                    }
                }
            }
            Transaction::Rollback(descriptor) => {
                if state
                    .open
                    .as_ref()
                    .is_some_and(|(open, _)| *open == descriptor)
                {
                    state.open = None;
                }
            }
        }
    }
}
