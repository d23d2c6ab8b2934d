//! SQLite persistence: the four ReqCheck tables and the row operations the import code needs.
//!
//! The tables mirror ReqCheck's `db/schema.rb` (PostgreSQL) closely: a random uuid `id` on
//! `patients`, a unique index and foreign key on `patient_number`, `history_flag NOT NULL
//! DEFAULT false`, `expiration_date DEFAULT 2999-12-31`, `hd_imfile_updated_at` as text, and
//! ids that are never reused. Timestamps are UTC text with microseconds, dates `YYYY-MM-DD`,
//! `updated_patient_numbers` a JSON array of strings (PostgreSQL returned its text array as
//! strings) and `raw_hash` JSON text.
//!
//! One departure, invisible through HTTP and `dump`: `patients.id` is an ordinary column, not
//! the primary key, so it has no index. Nothing looks a patient up by its uuid (ReqCheck's API
//! works by `patient_number`; an update goes by SQLite's rowid), and an index on a random key
//! made every insert touch, journal and write back a page somewhere in it: about a fifth of a
//! whole import (docs/PERFORMANCE.md). The uuids are still generated as before (122 random
//! bits, so unique in practice), and a database made with the older schema works unchanged.
//!
//! Transactions: ReqCheck has none (reqcheck-api.md, "Transactions"): every record is saved
//! on its own, so a request that dies half-way with a 500 leaves what it had written. The
//! receiver keeps that behaviour but not the mechanism: each import request runs in one
//! transaction ([`Store::with_request`]) that is *committed*, never rolled back, however the
//! request ends: a 201, an [`Aborted`](super::import::Aborted) 500 after some groups were
//! written, a `store-then-500` fault, even a panic. What a client or a test can observe through
//! HTTP and `dump` is therefore the same as with a commit per statement: a 500 leaves the
//! earlier records and groups in place, and a failing record still writes its error row and
//! processing carries on (a failed statement undoes only itself, not the transaction).
//!
//! Two differences remain, both outside what ReqCheck's API shows, and both accepted for a
//! twelvefold speed-up (one commit, one journal file, per request instead of per
//! statement; see docs/PERFORMANCE.md): a receiver *process* killed in the middle of a request
//! (SIGKILL, power loss) loses that whole request instead of keeping its first records, and a
//! `receiver dump` run by another process while a request is in flight sees the request all at
//! once rather than record by record. If SQLite cannot commit (or rolled the transaction back
//! itself on a full disk or an I/O error) the request answers 500, one of the outcomes a
//! client must already expect from ReqCheck. Heartbeats and dumps only read, outside any
//! explicit transaction.

use std::borrow::Cow;
use std::cell::RefCell;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use chrono::{DateTime, Datelike, NaiveDate, NaiveDateTime, Timelike, Utc};
use rusqlite::{
    CachedStatement, Connection, OpenFlags, OptionalExtension, Statement, ToSql, params,
};
use uuid::Uuid;

use super::error::ReceiverError;

/// Marks a file as a receiver database ("RqRc"), so `open` never adds tables to another file.
const APPLICATION_ID: i32 = 0x5271_5263;

const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS patients (
    id TEXT NOT NULL DEFAULT (lower(
        hex(randomblob(4)) || '-' || hex(randomblob(2)) || '-4' ||
        substr(hex(randomblob(2)), 2) || '-' ||
        substr('89ab', 1 + (abs(random()) % 4), 1) || substr(hex(randomblob(2)), 2) || '-' ||
        hex(randomblob(6)))),
    first_name TEXT NOT NULL,
    last_name TEXT NOT NULL,
    patient_number INTEGER NOT NULL,
    dob TEXT NOT NULL,
    email TEXT,
    address TEXT,
    address2 TEXT,
    city TEXT,
    state TEXT,
    zip_code TEXT,
    cell_phone TEXT,
    home_phone TEXT,
    race TEXT,
    ethnicity TEXT,
    gender TEXT,
    hd_mpfile_updated_at TEXT,
    family_number INTEGER,
    notes TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS index_patients_on_patient_number ON patients (patient_number);

CREATE TABLE IF NOT EXISTS vaccine_doses (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    vaccine_code TEXT,
    patient_number INTEGER REFERENCES patients (patient_number),
    date_administered TEXT NOT NULL,
    hd_description TEXT,
    history_flag INTEGER NOT NULL DEFAULT 0,
    provider_code TEXT,
    dosage TEXT,
    mvx_code TEXT,
    lot_number TEXT,
    expiration_date TEXT DEFAULT '2999-12-31',
    hd_encounter_id TEXT,
    vfc_code TEXT,
    patients_id INTEGER,
    cvx_code INTEGER NOT NULL,
    trade_name TEXT,
    vfc_description TEXT,
    given_by TEXT,
    injection_site TEXT,
    hd_imfile_updated_at TEXT,
    comments TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS index_vaccine_doses_on_patient_number
    ON vaccine_doses (patient_number);

CREATE TABLE IF NOT EXISTS data_imports (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    type TEXT,
    updated_patient_numbers TEXT NOT NULL DEFAULT '[]',
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);

CREATE TABLE IF NOT EXISTS data_import_errors (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    object_class_name TEXT,
    error_message TEXT,
    raw_hash TEXT NOT NULL DEFAULT '{}',
    data_import_id INTEGER REFERENCES data_imports (id),
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS index_data_import_errors_on_data_import_id
    ON data_import_errors (data_import_id);
CREATE INDEX IF NOT EXISTS index_data_import_errors_on_raw_hash ON data_import_errors (raw_hash);
"#;

/// A receiver database file. Cheap to share behind an `Arc`; all access goes through one
/// connection behind a mutex, which also serialises imports the way a single Rails worker
/// would.
#[derive(Debug)]
pub struct Store {
    conn: Mutex<Connection>,
    path: PathBuf,
}

impl Store {
    /// Opens (creating if needed) a receiver database for reading and writing. Refuses an
    /// existing SQLite file that the receiver did not create.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, ReceiverError> {
        let path = path.as_ref().to_path_buf();
        let open_err = |source| ReceiverError::OpenDb {
            path: path.clone(),
            source,
        };
        // It holds every patient a test sends: owner-only from the start, never through a link.
        reqsync_private_fs::precreate_sqlite(&path).map_err(|e| ReceiverError::CreateDb {
            path: path.clone(),
            reason: e.to_string(),
        })?;
        let flags = OpenFlags::default() | OpenFlags::SQLITE_OPEN_NOFOLLOW;
        let conn = Connection::open_with_flags(&path, flags).map_err(open_err)?;
        configure(&conn).map_err(open_err)?;
        let app_id: i32 = conn
            .pragma_query_value(None, "application_id", |row| row.get(0))
            .map_err(open_err)?;
        if app_id != APPLICATION_ID {
            let tables: i64 = conn
                .query_row(
                    "SELECT count(*) FROM sqlite_master WHERE name NOT LIKE 'sqlite_%'",
                    [],
                    |row| row.get(0),
                )
                .map_err(open_err)?;
            if app_id != 0 || tables != 0 {
                return Err(ReceiverError::NotAReceiverDb { path });
            }
            conn.pragma_update(None, "application_id", APPLICATION_ID)
                .map_err(open_err)?;
        }
        conn.execute_batch(SCHEMA).map_err(open_err)?;
        Ok(Self {
            conn: Mutex::new(conn),
            path,
        })
    }

    /// Opens an existing receiver database without write access (for `receiver dump`, also
    /// while a receiver is running on it).
    pub fn open_read_only(path: impl AsRef<Path>) -> Result<Self, ReceiverError> {
        let path = path.as_ref().to_path_buf();
        if !path.exists() {
            return Err(ReceiverError::DbMissing { path });
        }
        let open_err = |source| ReceiverError::OpenDb {
            path: path.clone(),
            source,
        };
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(&path, flags).map_err(open_err)?;
        conn.busy_timeout(BUSY_TIMEOUT).map_err(open_err)?;
        let app_id: i32 = conn
            .pragma_query_value(None, "application_id", |row| row.get(0))
            .map_err(open_err)?;
        if app_id != APPLICATION_ID {
            return Err(ReceiverError::NotAReceiverDb { path });
        }
        Ok(Self {
            conn: Mutex::new(conn),
            path,
        })
    }

    /// The file this store reads and writes.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `f` with exclusive use of the connection. Blocking: call it from
    /// `spawn_blocking`, never directly on the async runtime.
    pub(crate) fn with_db<T>(&self, f: impl FnOnce(&Db<'_>) -> T) -> T {
        let guard = self.lock();
        f(&Db::new(&guard))
    }

    /// Runs one import request's work (`f`) in one transaction that is committed whatever `f`
    /// returns, an [`Aborted`](super::import::Aborted) 500 included, and even if it panics: a
    /// request that fails half-way keeps what it had written, as in ReqCheck (see the module
    /// comment). `Err` only when the transaction could not be opened or committed; the
    /// request's writes are then lost and the caller answers 500. Blocking, like
    /// [`Store::with_db`].
    pub(crate) fn with_request<T>(&self, f: impl FnOnce(&Db<'_>) -> T) -> rusqlite::Result<T> {
        let guard = self.lock();
        // IMMEDIATE takes the write lock now (waiting up to BUSY_TIMEOUT for a `dump` reader),
        // so no statement half-way through the request can fail to upgrade its lock.
        guard.execute_batch("BEGIN IMMEDIATE")?;
        let mut open = OpenTransaction {
            conn: &guard,
            finished: false,
        };
        let out = f(&Db::new(&guard));
        open.commit()?;
        Ok(out)
    }

    fn lock(&self) -> MutexGuard<'_, Connection> {
        // A panic mid-import leaves the database as consistent as a 500 left ReqCheck's (the
        // request's transaction is committed while unwinding, see `with_request`), so a
        // poisoned lock is safe to keep using.
        self.conn
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// The transaction `Store::with_request` opened. Dropped without `commit` only while a
/// panic unwinds: it then commits what the request had written, as a Rails worker's crash
/// would have left it.
struct OpenTransaction<'c> {
    conn: &'c Connection,
    finished: bool,
}

impl OpenTransaction<'_> {
    fn commit(&mut self) -> rusqlite::Result<()> {
        self.finished = true;
        if self.conn.is_autocommit() {
            // SQLite rolled the transaction back itself (it does on a full disk or an I/O
            // error), so part of the request is lost: report it rather than answer 201.
            return Err(rusqlite::Error::SqliteFailure(
                rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_ABORT),
                Some("the request's transaction was rolled back by SQLite".to_owned()),
            ));
        }
        let committed = self.conn.execute_batch("COMMIT");
        if committed.is_err() && !self.conn.is_autocommit() {
            // Leave the connection usable for the next request.
            let _ = self.conn.execute_batch("ROLLBACK");
        }
        committed
    }
}

impl Drop for OpenTransaction<'_> {
    fn drop(&mut self) {
        if !self.finished {
            let _ = self.commit();
        }
    }
}

/// How long a statement waits for another process (a `dump` reader, say) to release the file.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

fn configure(conn: &Connection) -> rusqlite::Result<()> {
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.pragma_update(None, "foreign_keys", true)?;
    // No fsync at commit: a killed receiver process loses nothing committed without it; only
    // an OS crash could, which does not matter for a development receiver.
    conn.pragma_update(None, "synchronous", "OFF")?;
    // Every statement the import code runs stays prepared (a dozen; the default keeps 16).
    conn.set_prepared_statement_cache_capacity(32);
    Ok(())
}

/// The two `DataImport` subclasses (the `type` column of ReqCheck's single-table inheritance).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ImportKind {
    Patient,
    VaccineDose,
}

impl ImportKind {
    pub(crate) fn type_name(self) -> &'static str {
        match self {
            ImportKind::Patient => "PatientDataImport",
            ImportKind::VaccineDose => "VaccineDoseDataImport",
        }
    }
}

/// One `patients` row, as validated by the import code. Text borrows the request's params
/// where it can (a row read back from the database owns its text).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct PatientRow<'a> {
    pub(crate) patient_number: i32,
    pub(crate) first_name: Cow<'a, str>,
    pub(crate) last_name: Cow<'a, str>,
    pub(crate) dob: NaiveDate,
    pub(crate) email: Option<Cow<'a, str>>,
    pub(crate) address: Option<Cow<'a, str>>,
    pub(crate) address2: Option<Cow<'a, str>>,
    pub(crate) city: Option<Cow<'a, str>>,
    pub(crate) state: Option<Cow<'a, str>>,
    pub(crate) zip_code: Option<Cow<'a, str>>,
    pub(crate) cell_phone: Option<Cow<'a, str>>,
    pub(crate) home_phone: Option<Cow<'a, str>>,
    pub(crate) race: Option<Cow<'a, str>>,
    pub(crate) ethnicity: Option<Cow<'a, str>>,
    pub(crate) gender: Option<Cow<'a, str>>,
    pub(crate) hd_mpfile_updated_at: Option<DateTime<Utc>>,
    pub(crate) family_number: Option<i32>,
    pub(crate) notes: Option<Cow<'a, str>>,
}

/// One `vaccine_doses` row to insert. `trade_name` and `patients_id` cannot be set through the
/// API, so they are always NULL.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct DoseRow<'a> {
    pub(crate) patient_number: i32,
    pub(crate) vaccine_code: Option<Cow<'a, str>>,
    pub(crate) date_administered: NaiveDate,
    pub(crate) hd_description: Option<Cow<'a, str>>,
    pub(crate) history_flag: bool,
    pub(crate) provider_code: Option<Cow<'a, str>>,
    pub(crate) dosage: Option<Cow<'a, str>>,
    pub(crate) mvx_code: Option<Cow<'a, str>>,
    pub(crate) lot_number: Option<Cow<'a, str>>,
    pub(crate) expiration_date: Option<NaiveDate>,
    pub(crate) hd_encounter_id: Option<Cow<'a, str>>,
    pub(crate) vfc_code: Option<Cow<'a, str>>,
    pub(crate) cvx_code: i32,
    pub(crate) vfc_description: Option<Cow<'a, str>>,
    pub(crate) given_by: Option<Cow<'a, str>>,
    pub(crate) injection_site: Option<Cow<'a, str>>,
    pub(crate) hd_imfile_updated_at: Option<Cow<'a, str>>,
    pub(crate) comments: Option<Cow<'a, str>>,
}

/// The `patients` insert, as a macro so the two statements below share one text.
macro_rules! insert_patient_sql {
    () => {
        "INSERT INTO patients
             (patient_number, first_name, last_name, dob, email, address, address2, city,
              state, zip_code, cell_phone, home_phone, race, ethnicity, gender,
              hd_mpfile_updated_at, family_number, notes, created_at, updated_at, id)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17,
                 ?18, ?19, ?19, ?20)"
    };
}

const INSERT_PATIENT: &str = insert_patient_sql!();
const INSERT_PATIENT_IF_NEW: &str = concat!(
    insert_patient_sql!(),
    " ON CONFLICT (patient_number) DO NOTHING"
);

/// Binds a patient's columns as parameters 1–18 and the time of writing as 19: the order both
/// the insert and the update use.
fn bind_patient(stmt: &mut Statement<'_>, p: &PatientRow<'_>, now: &str) -> rusqlite::Result<()> {
    let dob = db_date(p.dob);
    let source_updated_at = p.hd_mpfile_updated_at.map(db_time);
    let values: [&dyn ToSql; 19] = [
        &p.patient_number,
        &p.first_name,
        &p.last_name,
        &dob,
        &p.email,
        &p.address,
        &p.address2,
        &p.city,
        &p.state,
        &p.zip_code,
        &p.cell_phone,
        &p.home_phone,
        &p.race,
        &p.ethnicity,
        &p.gender,
        &source_updated_at,
        &p.family_number,
        &p.notes,
        &now,
    ];
    for (i, value) in values.into_iter().enumerate() {
        stmt.raw_bind_parameter(i + 1, value)?;
    }
    Ok(())
}

/// The connection while the caller holds the store's lock.
pub(crate) struct Db<'c> {
    conn: &'c Connection,
    /// The multi-row dose `INSERT`s, one per [`DOSE_CHUNKS`] shape, held for the whole
    /// request once used. Taken from rusqlite's cache and handed back for every chunk, each
    /// hashed and compared its 4 KB of SQL text and cleared its 608 bindings: 10 % of a dose
    /// import. Every parameter is bound again before each use.
    dose_inserts: RefCell<[Option<CachedStatement<'c>>; DOSE_CHUNKS.len()]>,
}

impl fmt::Debug for Db<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Db").finish_non_exhaustive()
    }
}

impl<'c> Db<'c> {
    fn new(conn: &'c Connection) -> Self {
        Self {
            conn,
            dose_inserts: RefCell::new([None, None, None]),
        }
    }
}

impl Db<'_> {
    pub(crate) fn conn(&self) -> &Connection {
        self.conn
    }

    pub(crate) fn insert_data_import(
        &self,
        kind: ImportKind,
        updated_patient_numbers: &[String],
    ) -> rusqlite::Result<i64> {
        let numbers = serde_json::to_string(updated_patient_numbers)
            .map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))?;
        let now = db_time(Utc::now());
        self.conn
            .prepare_cached(
                "INSERT INTO data_imports (type, updated_patient_numbers, created_at, updated_at)
             VALUES (?1, ?2, ?3, ?3)",
            )?
            .execute(params![kind.type_name(), numbers, now])?;
        Ok(self.conn.last_insert_rowid())
    }

    pub(crate) fn insert_import_error(
        &self,
        data_import_id: i64,
        object_class_name: &str,
        error_message: &str,
        raw_hash_json: &str,
    ) -> rusqlite::Result<i64> {
        let now = db_time(Utc::now());
        self.conn
            .prepare_cached(
                "INSERT INTO data_import_errors
                     (object_class_name, error_message, raw_hash, data_import_id, created_at,
                      updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?5)",
            )?
            .execute(params![
                object_class_name,
                error_message,
                raw_hash_json,
                data_import_id,
                now
            ])?;
        Ok(self.conn.last_insert_rowid())
    }

    /// `created_at` of the newest (highest id) import of one kind, as stored.
    pub(crate) fn newest_import_created_at(
        &self,
        kind: ImportKind,
    ) -> rusqlite::Result<Option<String>> {
        self.conn
            .prepare_cached(
                "SELECT created_at FROM data_imports WHERE type = ?1 ORDER BY id DESC LIMIT 1",
            )?
            .query_row([kind.type_name()], |row| row.get(0))
            .optional()
    }

    /// The patient with this number and its rowid (what [`Db::update_patient`] takes), if any.
    pub(crate) fn find_patient(
        &self,
        patient_number: i32,
    ) -> rusqlite::Result<Option<(i64, PatientRow<'static>)>> {
        self.conn
            .prepare_cached(
                "SELECT rowid, patient_number, first_name, last_name, dob, email, address, address2,
                        city, state, zip_code, cell_phone, home_phone, race, ethnicity, gender,
                        hd_mpfile_updated_at, family_number, notes
                 FROM patients WHERE patient_number = ?1
                 ORDER BY created_at DESC LIMIT 1",
            )?
            .query_row([patient_number], |row| {
                let dob: String = row.get(4)?;
                let updated: Option<String> = row.get(16)?;
                Ok((
                    row.get(0)?,
                    PatientRow {
                        patient_number: row.get(1)?,
                        first_name: Cow::Owned(row.get(2)?),
                        last_name: Cow::Owned(row.get(3)?),
                        dob: parse_db_date(&dob).map_err(|e| conversion(4, e))?,
                        email: owned_text(row, 5)?,
                        address: owned_text(row, 6)?,
                        address2: owned_text(row, 7)?,
                        city: owned_text(row, 8)?,
                        state: owned_text(row, 9)?,
                        zip_code: owned_text(row, 10)?,
                        cell_phone: owned_text(row, 11)?,
                        home_phone: owned_text(row, 12)?,
                        race: owned_text(row, 13)?,
                        ethnicity: owned_text(row, 14)?,
                        gender: owned_text(row, 15)?,
                        hd_mpfile_updated_at: updated
                            .as_deref()
                            .map(parse_db_time)
                            .transpose()
                            .map_err(|e| conversion(16, e))?,
                        family_number: row.get(17)?,
                        notes: owned_text(row, 18)?,
                    },
                ))
            })
            .optional()
    }

    /// Whether a patient with this number exists (a dose import needs no more than that).
    pub(crate) fn patient_exists(&self, patient_number: i32) -> rusqlite::Result<bool> {
        self.conn
            .prepare_cached("SELECT 1 FROM patients WHERE patient_number = ?1 LIMIT 1")?
            .exists([patient_number])
    }

    pub(crate) fn insert_patient(&self, p: &PatientRow<'_>) -> rusqlite::Result<()> {
        self.execute_patient_insert(INSERT_PATIENT, p).map(|_| ())
    }

    /// Inserts the patient unless one with its number exists, in one statement instead of a
    /// lookup and then an insert (the unique index checks the number either way). `false`:
    /// the patient exists and nothing was written.
    pub(crate) fn insert_patient_if_new(&self, p: &PatientRow<'_>) -> rusqlite::Result<bool> {
        self.execute_patient_insert(INSERT_PATIENT_IF_NEW, p)
            .map(|rows| rows == 1)
    }

    fn execute_patient_insert(&self, sql: &str, p: &PatientRow<'_>) -> rusqlite::Result<usize> {
        let mut stmt = self.conn.prepare_cached(sql)?;
        bind_patient(&mut stmt, p, &db_time(Utc::now()))?;
        // A random (version 4) UUID, as ReqCheck's `uuid_generate_v4()` default: made here
        // because the column default's SQL expression (`randomblob`, `hex`, `substr`, ...)
        // cost more than binding all the patient's other columns.
        let mut id = Uuid::encode_buffer();
        let id = uuid::Builder::from_random_bytes(rand::random())
            .into_uuid()
            .hyphenated()
            .encode_lower(&mut id);
        stmt.raw_bind_parameter(20, &*id)?;
        stmt.raw_execute()
    }

    pub(crate) fn update_patient(&self, rowid: i64, p: &PatientRow<'_>) -> rusqlite::Result<()> {
        let mut stmt = self.conn.prepare_cached(
            "UPDATE patients SET
                 patient_number = ?1, first_name = ?2, last_name = ?3, dob = ?4, email = ?5,
                 address = ?6, address2 = ?7, city = ?8, state = ?9, zip_code = ?10,
                 cell_phone = ?11, home_phone = ?12, race = ?13, ethnicity = ?14, gender = ?15,
                 hd_mpfile_updated_at = ?16, family_number = ?17, notes = ?18, updated_at = ?19
             WHERE rowid = ?20",
        )?;
        bind_patient(&mut stmt, p, &db_time(Utc::now()))?;
        stmt.raw_bind_parameter(20, rowid)?;
        stmt.raw_execute()?;
        Ok(())
    }

    /// `patient.vaccine_doses.destroy_all`.
    pub(crate) fn delete_doses(&self, patient_number: i32) -> rusqlite::Result<usize> {
        self.conn
            .prepare_cached("DELETE FROM vaccine_doses WHERE patient_number = ?1")?
            .execute([patient_number])
    }

    pub(crate) fn insert_dose(&self, d: &DoseRow<'_>) -> rusqlite::Result<()> {
        self.insert_dose_chunk(SINGLE_DOSE, std::slice::from_ref(d))
    }

    /// Inserts `rows` in order, [`DOSE_CHUNKS`] rows per statement where it can: the per-
    /// statement work (the `AUTOINCREMENT` counter read and written back, cursors opened and
    /// closed, the statement reset) then happens once per chunk instead of once per dose. Ids
    /// are assigned in row order, as one insert after another would. On failure, the rows
    /// before the failing chunk are written and the chunk itself is not (a failed statement
    /// undoes only itself): `Err` carries how many rows were written.
    pub(crate) fn insert_doses(
        &self,
        rows: &[DoseRow<'_>],
    ) -> Result<(), (usize, rusqlite::Error)> {
        let mut written = 0;
        for (shape, size) in DOSE_CHUNKS.into_iter().enumerate() {
            while rows.len() - written >= size {
                let chunk = &rows[written..written + size];
                self.insert_dose_chunk(shape, chunk)
                    .map_err(|e| (written, e))?;
                written += size;
            }
        }
        Ok(())
    }

    /// One statement for `rows`, which must number `DOSE_CHUNKS[shape]`.
    fn insert_dose_chunk(&self, shape: usize, rows: &[DoseRow<'_>]) -> rusqlite::Result<()> {
        let mut held = self.dose_inserts.borrow_mut();
        let stmt = match &mut held[shape] {
            Some(stmt) => stmt,
            empty => empty.insert(self.conn.prepare_cached(insert_doses_sql(shape))?),
        };
        // One statement writes the chunk at one instant, so its rows share one stamp (Rails
        // stamps each save on its own, microseconds apart). Formatting it per row was 2 % of
        // an import.
        stmt.raw_bind_parameter(NOW_PARAM, db_time(Utc::now()))?;
        for (i, d) in rows.iter().enumerate() {
            let at = NOW_PARAM + i * DOSE_PARAMS;
            let mut bind =
                |n: usize, value: &dyn rusqlite::ToSql| stmt.raw_bind_parameter(at + n, value);
            bind(1, &d.vaccine_code)?;
            bind(2, &d.patient_number)?;
            bind(3, &db_date(d.date_administered))?;
            bind(4, &d.hd_description)?;
            bind(5, &d.history_flag)?;
            bind(6, &d.provider_code)?;
            bind(7, &d.dosage)?;
            bind(8, &d.mvx_code)?;
            bind(9, &d.lot_number)?;
            bind(10, &d.expiration_date.map(db_date))?;
            bind(11, &d.hd_encounter_id)?;
            bind(12, &d.vfc_code)?;
            bind(13, &d.cvx_code)?;
            bind(14, &d.vfc_description)?;
            bind(15, &d.given_by)?;
            bind(16, &d.injection_site)?;
            bind(17, &d.hd_imfile_updated_at)?;
            bind(18, &d.comments)?;
        }
        stmt.raw_execute().map(|_| ())
    }
}

/// Rows per multi-row dose `INSERT`, largest first; 1 takes any remainder. 32 rows are 577
/// parameters, far below SQLite's limit of 32,766.
const DOSE_CHUNKS: [usize; 3] = [32, 8, 1];

/// `now`, the `created_at` and `updated_at` of every row of a statement: bound once per
/// statement rather than once per row (SQLite copies each bound text).
const NOW_PARAM: usize = 1;

/// Parameters per dose row, after [`NOW_PARAM`]: its 18 columns.
const DOSE_PARAMS: usize = 18;

/// Where 1 is in [`DOSE_CHUNKS`].
const SINGLE_DOSE: usize = DOSE_CHUNKS.len() - 1;

/// The `INSERT` of `DOSE_CHUNKS[shape]` doses, built once.
fn insert_doses_sql(shape: usize) -> &'static str {
    static SQL: OnceLock<[String; DOSE_CHUNKS.len()]> = OnceLock::new();
    &SQL.get_or_init(|| DOSE_CHUNKS.map(build_insert_doses_sql))[shape]
}

fn build_insert_doses_sql(rows: usize) -> String {
    let mut sql = String::from(
        "INSERT INTO vaccine_doses
         (vaccine_code, patient_number, date_administered, hd_description, history_flag,
          provider_code, dosage, mvx_code, lot_number, expiration_date, hd_encounter_id,
          vfc_code, cvx_code, vfc_description, given_by, injection_site,
          hd_imfile_updated_at, comments, created_at, updated_at)
         VALUES ",
    );
    for row in 0..rows {
        let at = NOW_PARAM + row * DOSE_PARAMS;
        let params: Vec<String> = (1..=DOSE_PARAMS)
            .map(|n| at + n)
            .chain([NOW_PARAM, NOW_PARAM])
            .map(|n| format!("?{n}"))
            .collect();
        if row > 0 {
            sql.push_str(", ");
        }
        sql.push('(');
        sql.push_str(&params.join(", "));
        sql.push(')');
    }
    sql
}

/// A nullable text column, owned.
fn owned_text(
    row: &rusqlite::Row<'_>,
    column: usize,
) -> rusqlite::Result<Option<Cow<'static, str>>> {
    Ok(row.get::<_, Option<String>>(column)?.map(Cow::Owned))
}

fn conversion(column: usize, e: ReceiverError) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(column, rusqlite::types::Type::Text, Box::new(e))
}

/// Timestamps are stored like PostgreSQL's `timestamp without time zone` holding UTC:
/// `%Y-%m-%d %H:%M:%S%.6f`. Written by hand (every row stores one or two): chrono's `format`
/// re-parses the pattern each time, which cost about 5 % of an import. Years outside 0–9999
/// and leap seconds, which `%Y` and `%S` print differently, still go through chrono.
pub(crate) fn db_time(t: DateTime<Utc>) -> String {
    let (date, time) = (t.date_naive(), t.time());
    if !(0..=9999).contains(&date.year()) || time.nanosecond() >= 1_000_000_000 {
        return t.format("%Y-%m-%d %H:%M:%S%.6f").to_string();
    }
    let mut s = String::with_capacity(26);
    push_ymd(&mut s, date);
    s.push(' ');
    push_padded(&mut s, time.hour(), 2);
    s.push(':');
    push_padded(&mut s, time.minute(), 2);
    s.push(':');
    push_padded(&mut s, time.second(), 2);
    s.push('.');
    push_padded(&mut s, time.nanosecond() / 1_000, 6);
    s
}

pub(crate) fn parse_db_time(s: &str) -> Result<DateTime<Utc>, ReceiverError> {
    NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f")
        .map(|t| t.and_utc())
        .map_err(|_| {
            ReceiverError::Corrupt("a timestamp column is not in the stored form".to_owned())
        })
}

/// `%Y-%m-%d`, by hand as in [`db_time`].
pub(crate) fn db_date(d: NaiveDate) -> String {
    if !(0..=9999).contains(&d.year()) {
        return d.format("%Y-%m-%d").to_string();
    }
    let mut s = String::with_capacity(10);
    push_ymd(&mut s, d);
    s
}

/// `YYYY-MM-DD` for a year in 0–9999.
fn push_ymd(s: &mut String, d: NaiveDate) {
    push_padded(s, d.year().unsigned_abs(), 4);
    s.push('-');
    push_padded(s, d.month(), 2);
    s.push('-');
    push_padded(s, d.day(), 2);
}

/// `n` in decimal, zero-padded to `width` digits (`n` must have at most `width` digits).
fn push_padded(s: &mut String, n: u32, width: u32) {
    for place in (0..width).rev() {
        let digit = n / 10u32.pow(place) % 10;
        s.push(char::from(b'0' + digit as u8));
    }
}

pub(crate) fn parse_db_date(s: &str) -> Result<NaiveDate, ReceiverError> {
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .map_err(|_| ReceiverError::Corrupt("a date column is not YYYY-MM-DD".to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_refuses_a_foreign_sqlite_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("clinic.sqlite");
        let conn = Connection::open(&path).expect("create");
        conn.execute_batch("CREATE TABLE immunizations (id INTEGER);")
            .expect("table");
        drop(conn);
        assert!(matches!(
            Store::open(&path),
            Err(ReceiverError::NotAReceiverDb { .. })
        ));
        assert!(matches!(
            Store::open_read_only(&path),
            Err(ReceiverError::NotAReceiverDb { .. })
        ));
    }

    #[test]
    fn open_read_only_needs_an_existing_file_and_reopen_keeps_data() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("receiver.sqlite");
        assert!(matches!(
            Store::open_read_only(&path),
            Err(ReceiverError::DbMissing { .. })
        ));
        let store = Store::open(&path).expect("create");
        let id = store
            .with_db(|db| db.insert_data_import(ImportKind::Patient, &["4".to_owned()]))
            .expect("insert");
        drop(store);
        let again = Store::open(&path).expect("reopen");
        let created = again
            .with_db(|db| db.newest_import_created_at(ImportKind::Patient))
            .expect("query");
        assert!(created.is_some());
        assert_eq!(id, 1);
        let ro = Store::open_read_only(&path).expect("read-only");
        assert!(
            ro.with_db(|db| db.insert_data_import(ImportKind::Patient, &[]))
                .is_err()
        );
    }

    #[test]
    fn hand_written_formats_match_chrono() {
        let times = [
            "2026-11-27 09:05:03.000001",
            "0000-01-01 00:00:00.000000",
            "9999-12-31 23:59:59.999999",
            "1900-01-01 00:00:00.5",
        ];
        for text in times {
            let t = parse_db_time(text).expect("time");
            assert_eq!(db_time(t), t.format("%Y-%m-%d %H:%M:%S%.6f").to_string());
        }
        let nanos = NaiveDate::from_ymd_opt(2016, 10, 24)
            .and_then(|d| d.and_hms_nano_opt(1, 2, 3, 123_456_789))
            .expect("time")
            .and_utc();
        assert_eq!(db_time(nanos), "2016-10-24 01:02:03.123456");
        let leap = NaiveDate::from_ymd_opt(2016, 12, 31)
            .and_then(|d| d.and_hms_nano_opt(23, 59, 59, 1_500_000_000))
            .expect("leap second")
            .and_utc();
        assert_eq!(
            db_time(leap),
            leap.format("%Y-%m-%d %H:%M:%S%.6f").to_string()
        );
        for (y, m, d) in [
            (1, 2, 3),
            (999, 12, 31),
            (2024, 2, 29),
            (9999, 1, 1),
            (10000, 1, 1),
        ] {
            let date = NaiveDate::from_ymd_opt(y, m, d).expect("date");
            assert_eq!(db_date(date), date.format("%Y-%m-%d").to_string());
        }
        let bc = NaiveDate::from_ymd_opt(-44, 3, 15).expect("date");
        assert_eq!(db_date(bc), bc.format("%Y-%m-%d").to_string());
        let far = NaiveDate::from_ymd_opt(12345, 6, 7)
            .and_then(|d| d.and_hms_opt(8, 9, 10))
            .expect("time")
            .and_utc();
        assert_eq!(
            db_time(far),
            far.format("%Y-%m-%d %H:%M:%S%.6f").to_string()
        );
    }

    #[test]
    fn patient_ids_are_uuid_shaped() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path().join("r.sqlite")).expect("open");
        let row = PatientRow {
            patient_number: 7,
            first_name: "A".into(),
            last_name: "B".into(),
            dob: NaiveDate::from_ymd_opt(2010, 1, 1).expect("date"),
            email: None,
            address: None,
            address2: None,
            city: None,
            state: None,
            zip_code: None,
            cell_phone: None,
            home_phone: None,
            race: None,
            ethnicity: None,
            gender: None,
            hd_mpfile_updated_at: None,
            family_number: None,
            notes: None,
        };
        store.with_db(|db| db.insert_patient(&row)).expect("insert");
        let (_, back) = store
            .with_db(|db| db.find_patient(7))
            .expect("query")
            .expect("found");
        assert_eq!(back, row);
        let id: String = store
            .with_db(|db| {
                db.conn().query_row(
                    "SELECT id FROM patients WHERE patient_number = 7",
                    [],
                    |r| r.get(0),
                )
            })
            .expect("id");
        let groups: Vec<usize> = id.split('-').map(str::len).collect();
        assert_eq!(groups, [8, 4, 4, 4, 12]);
        assert_eq!(id.as_bytes()[14], b'4');
        assert!(b"89ab".contains(&id.as_bytes()[19]), "RFC 4122 variant");
        assert_eq!(id, id.to_ascii_lowercase());
        let other = PatientRow {
            patient_number: 8,
            ..row
        };
        store
            .with_db(|db| db.insert_patient_if_new(&other))
            .expect("insert");
        let ids: i64 = store
            .with_db(|db| {
                db.conn()
                    .query_row("SELECT count(DISTINCT id) FROM patients", [], |r| r.get(0))
            })
            .expect("count");
        assert_eq!(ids, 2, "each patient gets an id of its own");
    }
}
