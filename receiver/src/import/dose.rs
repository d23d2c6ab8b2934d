//! `POST /vaccine_dose_data`: `ApiController#import_vaccine_dose_data` and
//! `VaccineDose.create_by_patient`.

use chrono::NaiveDate;

use super::patient::create_placeholder;
use super::{
    Aborted, Outcome, extraneous_arguments, extraneous_keys, int4, missing_arguments,
    not_null_violation, out_of_range, record_error, statement_invalid, top_level_array,
};
use crate::coerce;
use crate::params::{Object, Param};
use crate::ruby;
use crate::store::{Db, DoseRow, ImportKind};

/// `lib/vaccine_dose_validator.rb`'s whitelist as reqcheck-api.md §1.3 gives it
/// (`patient_number` is removed before the check). `patient_id` is on it but has no column;
/// `trade_name` has a column but is not on it. Each key's place in [`Fields`].
fn slot(key: &str) -> Option<usize> {
    Some(match key {
        "vaccine_code" => 0,
        "patient_id" => 1,
        "date_administered" => 2,
        "hd_description" => 3,
        "history_flag" => 4,
        "provider_code" => 5,
        "dosage" => 6,
        "mvx_code" => 7,
        "lot_number" => 8,
        "expiration_date" => 9,
        "hd_encounter_id" => 10,
        "vfc_code" => 11,
        "cvx_code" => 12,
        "vfc_description" => 13,
        "given_by" => 14,
        "injection_site" => 15,
        "hd_imfile_updated_at" => 16,
        "comments" => 17,
        _ => return None,
    })
}

/// How many keys the whitelist holds.
const FIELDS: usize = 18;

fn allowed(key: &str) -> bool {
    slot(key).is_some()
}

/// A record's whitelisted values, found in one pass over its keys: the checks and the row
/// look up some twenty keys, each a search through the record's keys (4 % of an import).
struct Fields<'p>([Option<&'p Param<'p>>; FIELDS]);

impl<'p> Fields<'p> {
    fn of(record: &'p Object<'_>) -> Self {
        let mut fields = [None; FIELDS];
        for (key, value) in record.iter() {
            if let Some(at) = slot(key) {
                fields[at] = Some(value);
            }
        }
        Self(fields)
    }

    /// `record[key]`, for a key on the whitelist.
    fn get(&self, key: &str) -> Option<&'p Param<'p>> {
        debug_assert!(allowed(key), "{key} is not on the whitelist");
        slot(key).and_then(|at| self.0[at])
    }

    fn is_nil(&self, key: &str) -> bool {
        matches!(self.get(key), None | Some(Param::Null))
    }
}

const REQUIRED: [&str; 2] = ["cvx_code", "date_administered"];

/// The column default (`2999-12-31`) when `expiration_date` is not sent.
fn default_expiration() -> Option<NaiveDate> {
    NaiveDate::from_ymd_opt(2999, 12, 31)
}

/// Records sharing one raw `patient_number` value.
struct Group<'p> {
    key: Param<'p>,
    items: Vec<&'p Param<'p>>,
}

/// The patient a group's doses go to.
struct GroupPatient {
    /// None only for the `null` group.
    patient_number: Option<i32>,
    /// The number was unknown, so a placeholder was made and every dose also gets an error.
    not_found: bool,
}

/// Runs one `/vaccine_dose_data` request against the database.
pub(crate) fn import_vaccine_doses(db: &Db<'_>, params: &Object) -> Result<Outcome, Aborted> {
    let Some(items) = top_level_array(params, "vaccine_dose_data")? else {
        return Ok(Outcome::KeyMissing);
    };

    // `group_by { |d| d['patient_number'] }` keys on the raw JSON value, so 4 and "4" are two
    // groups (the second then wipes the doses the first created). Reproduced on purpose.
    let mut groups: Vec<Group<'_>> = Vec::new();
    for item in items {
        let key = match item {
            Param::Object(record) => record.get("patient_number").cloned().unwrap_or(Param::Null),
            // `"text"['patient_number']` is a substring lookup in Ruby, not an error.
            Param::Str(s) if s.contains("patient_number") => Param::Str("patient_number".into()),
            Param::Str(_) => Param::Null,
            _ => {
                return Err(Aborted::new(
                    None,
                    "a vaccine_dose_data element is not an object",
                ));
            }
        };
        // Keys are unique among groups, so trying the newest group first finds the same group
        // as a search from the start, and in one step for a body sorted by patient (reqsync's).
        let same = match groups.last() {
            Some(last) if last.key == key => Some(groups.len() - 1),
            _ => groups.iter().position(|g| g.key == key),
        };
        match same {
            Some(at) => groups[at].items.push(item),
            None => groups.push(Group {
                key,
                items: vec![item],
            }),
        }
    }

    let updated_patient_numbers = groups
        .iter()
        .map(|g| ruby::to_i(&g.key).map(|n| n.to_string()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| Aborted::new(None, "a patient_number has no to_i (boolean or object)"))?;
    let data_import_id = db
        .insert_data_import(ImportKind::VaccineDose, &updated_patient_numbers)
        .map_err(|e| Aborted::db(None, "could not write the data_imports row", e))?;

    let mut error_ids = Vec::new();
    let mut records = 0;
    let mut pending = PendingDoses::default();
    let result = import_groups(
        db,
        data_import_id,
        &groups,
        &mut pending,
        &mut error_ids,
        &mut records,
    );
    // Whatever happened, the doses checked before it are written, as ReqCheck would have
    // saved them one by one before failing.
    pending.flush(db, data_import_id, &mut error_ids)?;
    result?;
    Ok(Outcome::Imported {
        data_import_id,
        records,
        error_ids,
    })
}

/// Every group in turn. Doses of known patients wait in `pending` to be written many per
/// statement; anything else written meanwhile goes after them (see [`PendingDoses`]).
fn import_groups<'p>(
    db: &Db<'_>,
    data_import_id: i64,
    groups: &'p [Group<'p>],
    pending: &mut PendingDoses<'p>,
    error_ids: &mut Vec<i64>,
    records: &mut usize,
) -> Result<(), Aborted> {
    for group in groups {
        // destroy_all below must also remove this group's patient's doses still pending.
        if pending.holds_patient_of(&group.key) {
            pending.flush(db, data_import_id, error_ids)?;
        }
        // Lookup, placeholder creation and destroy_all run outside the per-record rescue: a
        // bad number here is a 500, with every earlier group already committed.
        let patient = prepare_group(db, &group.key).map_err(|a| a.in_import(data_import_id))?;
        for &item in &group.items {
            let Param::Object(received) = item else {
                // `String#symbolize_keys` raises before the rescue.
                return Err(Aborted::new(
                    Some(data_import_id),
                    "a vaccine_dose_data element is a string",
                ));
            };
            *records += 1;
            let message = match check_and_build(received, &patient) {
                Err(message) => Some(message),
                Ok(row) if patient.not_found => {
                    // Saved, and then an error row: both in record order.
                    pending.flush(db, data_import_id, error_ids)?;
                    Some(match db.insert_dose(&row) {
                        Ok(()) => not_found(&group.key),
                        Err(e) => statement_invalid(&e),
                    })
                }
                Ok(row) => {
                    pending.push(row, received, &group.key);
                    None
                }
            };
            if let Some(message) = message {
                pending.flush(db, data_import_id, error_ids)?;
                record_dose_error(
                    db,
                    data_import_id,
                    &message,
                    received,
                    &group.key,
                    error_ids,
                )?;
            }
            if pending.is_full() {
                pending.flush(db, data_import_id, error_ids)?;
            }
        }
    }
    Ok(())
}

/// The error row of one dose: the record as the controller saw it after
/// `delete('patient_number')`, with the group's number put back. `import_one` works on the
/// record as received; only an error needs this copy.
fn record_dose_error(
    db: &Db<'_>,
    data_import_id: i64,
    message: &str,
    received: &Object,
    key: &Param,
    error_ids: &mut Vec<i64>,
) -> Result<(), Aborted> {
    let mut record = received.clone();
    record.remove("patient_number");
    if *key != Param::Null {
        record.insert("patient_number", key.clone());
    }
    record_error(db, data_import_id, "Vaccine", message, &record, error_ids)
}

/// The dose was saved for a "Not Found" placeholder; this is the error row that goes with it
/// (hence `partial_failure`).
fn not_found(key: &Param) -> String {
    format!(
        "Patient with patient_number {} could not be found",
        ruby::to_s(key)
    )
}

/// Most doses a [`PendingDoses`] holds before it is written.
const PENDING_DOSES: usize = 32;

/// Checked doses not yet written, to be inserted many per statement ([`Db::insert_doses`]).
///
/// Written before anything whose order shows: before an error row, before a dose saved on
/// its own, before `destroy_all` of a patient with pending doses, when full and when the
/// request ends (also on a 500). The rows then land with the ids, and error rows with the
/// ids, they would have had if each had been inserted when checked.
#[derive(Default)]
struct PendingDoses<'p> {
    rows: Vec<DoseRow<'p>>,
    /// Per row: the record as received and its group's key, for an error row should the
    /// insert fail.
    sources: Vec<(&'p Object<'p>, &'p Param<'p>)>,
}

impl<'p> PendingDoses<'p> {
    fn push(&mut self, row: DoseRow<'p>, received: &'p Object<'p>, key: &'p Param<'p>) {
        self.rows.push(row);
        self.sources.push((received, key));
    }

    fn is_full(&self) -> bool {
        self.rows.len() >= PENDING_DOSES
    }

    /// Whether a group with this key (same number after `to_i`) has pending doses.
    fn holds_patient_of(&self, key: &Param) -> bool {
        let number = ruby::to_i(key).ok().and_then(int4);
        self.rows
            .iter()
            .any(|row| Some(row.patient_number) == number)
    }

    /// Inserts the pending rows. If a statement fails, the rows from there on are retried one
    /// by one, so each failing dose gets its own error row, as when inserted alone.
    fn flush(
        &mut self,
        db: &Db<'_>,
        data_import_id: i64,
        error_ids: &mut Vec<i64>,
    ) -> Result<(), Aborted> {
        if let Err((written, _)) = db.insert_doses(&self.rows) {
            for (row, (received, key)) in self.rows.iter().zip(&self.sources).skip(written) {
                if let Err(e) = db.insert_dose(row) {
                    let message = statement_invalid(&e);
                    record_dose_error(db, data_import_id, &message, received, key, error_ids)?;
                }
            }
        }
        self.rows.clear();
        self.sources.clear();
        Ok(())
    }
}

/// Finds the group's patient and clears its doses, or makes the "Not Found" placeholder.
fn prepare_group(db: &Db<'_>, key: &Param) -> Result<GroupPatient, Aborted> {
    if *key == Param::Null {
        return Ok(GroupPatient {
            patient_number: None,
            not_found: true,
        });
    }
    // Rails 4.2 raises RangeError when a query binds an int4 overflow.
    let lookup = ruby::to_i(key)
        .ok()
        .and_then(int4)
        .ok_or_else(|| Aborted::new(None, "dose import: patient_number out of int4 range"))?;
    let exists = db
        .patient_exists(lookup)
        .map_err(|e| Aborted::db(None, "patient lookup failed", e))?;
    if !exists {
        return Ok(GroupPatient {
            patient_number: Some(create_placeholder(db, key)?),
            not_found: true,
        });
    }
    // `destroy_all`: the request replaces this patient's whole dose history.
    db.delete_doses(lookup)
        .map_err(|e| Aborted::db(None, "could not delete the patient's doses", e))?;
    Ok(GroupPatient {
        patient_number: Some(lookup),
        not_found: false,
    })
}

/// One dose: the controller's checks, then the row `VaccineDose.create_by_patient` saves.
/// `Err` is the message the real app would have stored. `record` is the element as received:
/// its `patient_number`, which the controller deletes first, is skipped here.
fn check_and_build<'p>(
    record: &'p Object<'_>,
    patient: &GroupPatient,
) -> Result<DoseRow<'p>, String> {
    let fields = Fields::of(record);
    if fields.is_nil("hd_imfile_updated_at") {
        return Err(missing_arguments(&["hd_imfile_updated_at"], "VaccineDose"));
    }
    let Some(patient_number) = patient.patient_number else {
        return Err(missing_arguments(&["patient_number"], "VaccineDose"));
    };
    let missing: Vec<&str> = REQUIRED.into_iter().filter(|k| fields.is_nil(k)).collect();
    if !missing.is_empty() {
        return Err(missing_arguments(&missing, "VaccineDose"));
    }
    let extraneous: Vec<&str> = extraneous_keys(record, allowed)
        .into_iter()
        .filter(|k| *k != "patient_number")
        .collect();
    if !extraneous.is_empty() {
        return Err(extraneous_arguments(&extraneous, "VaccineDose"));
    }
    build_row(&fields, patient_number)
}

/// Assignment with Rails' casts, the `before_save` upcase, then what PostgreSQL would refuse,
/// in the order Rails hits it: int4 overflow while binding, then NOT NULL in column order.
fn build_row<'p>(fields: &Fields<'p>, patient_number: i32) -> Result<DoseRow<'p>, String> {
    if fields.get("patient_id").is_some() {
        return Err("unknown attribute 'patient_id' for VaccineDose.".to_owned());
    }
    let text = |key: &str| fields.get(key).and_then(coerce::string);
    let date_administered = fields.get("date_administered").and_then(coerce::date);
    let history_flag = match fields.get("history_flag") {
        // Left out: the column default. Sent as null or "": NULL, which NOT NULL rejects.
        None => Some(false),
        Some(value) => coerce::boolean(value),
    };
    let expiration_date = match fields.get("expiration_date") {
        None => default_expiration(),
        Some(value) => coerce::date(value),
    };
    let cvx_code = fields
        .get("cvx_code")
        .and_then(coerce::integer)
        .map(|n| int4(n).ok_or_else(|| out_of_range("cvx_code")))
        .transpose()?;

    let date_administered =
        date_administered.ok_or_else(|| not_null_violation("date_administered"))?;
    let history_flag = history_flag.ok_or_else(|| not_null_violation("history_flag"))?;
    let cvx_code = cvx_code.ok_or_else(|| not_null_violation("cvx_code"))?;

    Ok(DoseRow {
        patient_number,
        // `before_save { vaccine_code.upcase }`; Ruby 2.3 upcases ASCII only.
        vaccine_code: text("vaccine_code").map(ruby::upcase_ascii),
        date_administered,
        hd_description: text("hd_description"),
        history_flag,
        provider_code: text("provider_code"),
        dosage: text("dosage"),
        mvx_code: text("mvx_code"),
        lot_number: text("lot_number"),
        expiration_date,
        hd_encounter_id: text("hd_encounter_id"),
        vfc_code: text("vfc_code"),
        cvx_code,
        vfc_description: text("vfc_description"),
        given_by: text("given_by"),
        injection_site: text("injection_site"),
        // A string column: kept exactly as sent, never parsed.
        hd_imfile_updated_at: text("hd_imfile_updated_at"),
        comments: text("comments"),
    })
}
