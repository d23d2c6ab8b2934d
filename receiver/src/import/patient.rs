//! `POST /patient_data`: `ApiController#import_patient_data` and
//! `Patient.update_or_create_by_patient_number`.

use std::borrow::Cow;

use chrono::{DateTime, NaiveDate, Utc};

use super::{
    Aborted, BadPatientNumber, Outcome, extraneous_arguments, extraneous_keys, int4,
    missing_arguments, out_of_range, record_error, statement_invalid, top_level_array,
    validate_patient_number,
};
use crate::coerce;
use crate::params::{Object, Param};
use crate::ruby;
use crate::store::{Db, ImportKind, PatientRow};

/// `lib/patient_validator.rb`'s whitelist.
fn allowed(key: &str) -> bool {
    matches!(
        key,
        "patient_number"
            | "dob"
            | "address"
            | "address2"
            | "city"
            | "state"
            | "zip_code"
            | "cell_phone"
            | "home_phone"
            | "race"
            | "ethnicity"
            | "gender"
            | "first_name"
            | "last_name"
            | "email"
            | "hd_mpfile_updated_at"
            | "family_number"
            | "notes"
    )
}

/// Checked (for nil) in this order; the message lists the missing ones in this order.
const REQUIRED: [&str; 4] = ["patient_number", "dob", "first_name", "last_name"];

/// Runs one `/patient_data` request against the database.
pub(crate) fn import_patients(db: &Db<'_>, params: &Object) -> Result<Outcome, Aborted> {
    let Some(items) = top_level_array(params, "patient_data")? else {
        return Ok(Outcome::KeyMissing);
    };

    // `patient_data.map { |p| p[:patient_number].to_i }` runs before anything is written, so a
    // non-object element or a patient_number without `to_i` is a 500 with no import row.
    let mut records = Vec::with_capacity(items.len());
    let mut updated_patient_numbers = Vec::with_capacity(items.len());
    for item in items {
        let Param::Object(record) = item else {
            return Err(Aborted::new(
                None,
                "a patient_data element is not an object",
            ));
        };
        let number = ruby::to_i(record.get("patient_number").unwrap_or(&Param::Null))
            .map_err(|_| Aborted::new(None, "a patient_number has no to_i (boolean or object)"))?;
        updated_patient_numbers.push(number.to_string());
        records.push(record);
    }

    let data_import_id = db
        .insert_data_import(ImportKind::Patient, &updated_patient_numbers)
        .map_err(|e| Aborted::db(None, "could not write the data_imports row", e))?;

    let mut error_ids = Vec::new();
    for record in &records {
        if let Err(message) = import_one(db, record) {
            record_error(
                db,
                data_import_id,
                "Patient",
                &message,
                record,
                &mut error_ids,
            )?;
        }
    }
    Ok(Outcome::Imported {
        data_import_id,
        records: records.len(),
        error_ids,
    })
}

/// One record: the controller's check, then `update_or_create_by_patient_number`. `Err` is the
/// message the real app would have stored.
fn import_one(db: &Db<'_>, record: &Object) -> Result<(), String> {
    if record.is_nil("hd_mpfile_updated_at") {
        return Err(missing_arguments(&["hd_mpfile_updated_at"], "Patient"));
    }
    let missing: Vec<&str> = REQUIRED.into_iter().filter(|k| record.is_nil(k)).collect();
    if !missing.is_empty() {
        return Err(missing_arguments(&missing, "Patient"));
    }
    let extraneous = extraneous_keys(record, allowed);
    if !extraneous.is_empty() {
        return Err(extraneous_arguments(&extraneous, "Patient"));
    }

    // `find_by_patient_number` casts to an integer; PostgreSQL would reject an int4 overflow.
    let raw_number = record.get("patient_number").unwrap_or(&Param::Null);
    let lookup = ruby::to_i(raw_number).map_err(|_| "Patient number is not a number".to_owned())?;
    let lookup = int4(lookup).ok_or_else(|| out_of_range("patient_number"))?;

    // Most records name a new patient: insert it straight away. The new-patient row
    // validates exactly as the update below would (every field it checks is one the record
    // must carry, so both drafts take it from the record), hence the same error either way.
    let mut fresh = Draft::default();
    fresh.assign(record);
    let row = fresh.validate()?;
    if db
        .insert_patient_if_new(&row)
        .map_err(|e| statement_invalid(&e))?
    {
        return Ok(());
    }
    update_existing(db, lookup, record, &row)
}

/// `update_or_create_by_patient_number` for a number the insert found taken. `new_row` is the
/// record as a new patient, inserted should the patient have gone (it cannot while the
/// request holds the write lock, but a record is never dropped silently).
fn update_existing(
    db: &Db<'_>,
    lookup: i32,
    record: &Object,
    new_row: &PatientRow<'_>,
) -> Result<(), String> {
    let Some((rowid, stored)) = db.find_patient(lookup).map_err(|e| statement_invalid(&e))? else {
        return db
            .insert_patient(new_row)
            .map_err(|e| statement_invalid(&e));
    };
    // A partial update: only the keys sent change; a key sent as null clears it.
    let mut draft = Draft::from_row(&stored);
    draft.assign(record);
    let row = draft.validate()?;
    // Rails skips the UPDATE (and keeps updated_at) when nothing changed.
    if row == stored {
        Ok(())
    } else {
        db.update_patient(rowid, &row)
            .map_err(|e| statement_invalid(&e))
    }
}

/// A patient's attributes after assignment and before validation.
#[derive(Debug, Default)]
struct Draft<'a> {
    /// The raw value when assigned in this request (Rails validates the value before its
    /// type cast), else the stored number.
    patient_number: Option<NumberSource<'a>>,
    first_name: Option<Cow<'a, str>>,
    last_name: Option<Cow<'a, str>>,
    dob: Option<NaiveDate>,
    email: Option<Cow<'a, str>>,
    address: Option<Cow<'a, str>>,
    address2: Option<Cow<'a, str>>,
    city: Option<Cow<'a, str>>,
    state: Option<Cow<'a, str>>,
    zip_code: Option<Cow<'a, str>>,
    cell_phone: Option<Cow<'a, str>>,
    home_phone: Option<Cow<'a, str>>,
    race: Option<Cow<'a, str>>,
    ethnicity: Option<Cow<'a, str>>,
    hd_mpfile_updated_at: Option<DateTime<Utc>>,
    family_number: Option<i128>,
    notes: Option<Cow<'a, str>>,
}

#[derive(Debug)]
enum NumberSource<'a> {
    Stored(i32),
    Assigned(Param<'a>),
}

impl<'a> Draft<'a> {
    fn from_row(row: &PatientRow<'a>) -> Self {
        Self {
            patient_number: Some(NumberSource::Stored(row.patient_number)),
            first_name: Some(row.first_name.clone()),
            last_name: Some(row.last_name.clone()),
            dob: Some(row.dob),
            email: row.email.clone(),
            address: row.address.clone(),
            address2: row.address2.clone(),
            city: row.city.clone(),
            state: row.state.clone(),
            zip_code: row.zip_code.clone(),
            cell_phone: row.cell_phone.clone(),
            home_phone: row.home_phone.clone(),
            race: row.race.clone(),
            ethnicity: row.ethnicity.clone(),
            hd_mpfile_updated_at: row.hd_mpfile_updated_at,
            family_number: row.family_number.map(i128::from),
            notes: row.notes.clone(),
        }
    }

    /// Assigns exactly the keys sent (all whitelisted by now), with Rails' type casts.
    fn assign(&mut self, record: &'a Object<'_>) {
        for (key, value) in record.iter() {
            let text = || coerce::string(value);
            match key {
                "patient_number" => {
                    self.patient_number = Some(NumberSource::Assigned(value.clone()));
                }
                "first_name" => self.first_name = text(),
                "last_name" => self.last_name = text(),
                "dob" => self.dob = coerce::date(value),
                "email" => self.email = text(),
                "address" => self.address = text(),
                "address2" => self.address2 = text(),
                "city" => self.city = text(),
                "state" => self.state = text(),
                "zip_code" => self.zip_code = text(),
                "cell_phone" => self.cell_phone = text(),
                "home_phone" => self.home_phone = text(),
                "race" => self.race = text(),
                "ethnicity" => self.ethnicity = text(),
                "hd_mpfile_updated_at" => {
                    self.hd_mpfile_updated_at = coerce::central_datetime(value);
                }
                "family_number" => self.family_number = coerce::integer(value),
                "notes" => self.notes = text(),
                // `gender` is dropped by the save below whatever it holds (see `validate`).
                _ => {}
            }
        }
    }

    /// The model's strict validations, then the int4 casts done while saving.
    fn validate(self) -> Result<PatientRow<'a>, String> {
        let present = |v: Option<Cow<'a, str>>, message: &str| match v {
            Some(s) if !ruby::is_blank(&s) => Ok(s),
            _ => Err(message.to_owned()),
        };
        let first_name = present(self.first_name, "First name can't be blank")?;
        let last_name = present(self.last_name, "Last name can't be blank")?;
        let dob = self.dob.ok_or_else(|| "Dob can't be blank".to_owned())?;
        let patient_number = match self.patient_number {
            Some(NumberSource::Stored(n)) => n,
            Some(NumberSource::Assigned(raw)) => {
                validate_patient_number(&raw).map_err(|bad| bad.message().to_owned())?;
                coerce::integer(&raw)
                    .and_then(int4)
                    .ok_or_else(|| out_of_range("patient_number"))?
            }
            None => return Err("Patient number is not a number".to_owned()),
        };
        let family_number = self
            .family_number
            .map(|n| int4(n).ok_or_else(|| out_of_range("family_number")))
            .transpose()?;
        Ok(PatientRow {
            patient_number,
            first_name,
            last_name,
            dob,
            email: self.email,
            address: self.address,
            address2: self.address2,
            city: self.city,
            state: self.state,
            zip_code: self.zip_code,
            cell_phone: self.cell_phone,
            home_phone: self.home_phone,
            race: self.race,
            ethnicity: self.ethnicity,
            // Reproduces ReqCheck's bug: the `standardise_gender` before_save hook reads a
            // local variable that Ruby's scoping leaves nil, so every save writes NULL. An
            // extractor must not expect gender to arrive (reqcheck-api.md §2.1).
            gender: None,
            hd_mpfile_updated_at: self.hd_mpfile_updated_at,
            family_number,
            notes: self.notes,
        })
    }
}

/// The placeholder `Patient.create(first_name: 'Not Found', last_name: 'Not Found',
/// dob: '1/1/1900')` that a dose import makes for an unknown number. `Err` is the strict
/// validation failure, which in the real app escapes the `rescue` (a 500).
pub(crate) fn create_placeholder(db: &Db<'_>, raw_number: &Param) -> Result<i32, Aborted> {
    validate_patient_number(raw_number).map_err(|bad| {
        Aborted::new(
            None,
            match bad {
                BadPatientNumber::NotANumber => "dose import: patient_number is not a number",
                BadPatientNumber::NotPositive => "dose import: patient_number is not > 0",
            },
        )
    })?;
    let number = coerce::integer(raw_number)
        .and_then(int4)
        .ok_or_else(|| Aborted::new(None, "dose import: patient_number out of int4 range"))?;
    let row = PatientRow {
        patient_number: number,
        first_name: Cow::Borrowed("Not Found"),
        last_name: Cow::Borrowed("Not Found"),
        dob: NaiveDate::from_ymd_opt(1900, 1, 1).unwrap_or_default(),
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
    db.insert_patient(&row)
        .map_err(|e| Aborted::db(None, "could not create the placeholder patient", e))?;
    Ok(number)
}
