//! ReqCheck's two record types, as its import API accepts them (`docs/reqcheck-api.md`).
//!
//! The host knows these because it is a ReqCheck client: which endpoint takes which record
//! type, which keys ReqCheck accepts (any other key makes the record an error), which it
//! requires, and that doses must be grouped by patient. How source rows map onto them is the
//! transform's business, not the host's.

/// One ReqCheck record type.
#[derive(Debug, PartialEq, Eq)]
pub struct Target {
    /// The record type a module declares, e.g. `patient_data`.
    pub name: &'static str,
    /// The endpoint that imports it.
    pub endpoint: &'static str,
    /// The top-level key of the request body, holding the array of records.
    pub body_key: &'static str,
    /// Every key ReqCheck accepts on a record.
    pub fields: &'static [&'static str],
    /// Keys ReqCheck requires on every record.
    pub required: &'static [&'static str],
    /// ReqCheck replaces a patient's whole dose history with each request that mentions the
    /// patient, so all records sharing this field's value must travel in one request.
    pub group_field: Option<&'static str>,
    /// Jobs run in this order: patients before doses, or doses of new patients land on
    /// "Not Found" placeholder patients.
    pub order: u8,
}

pub(crate) const PATIENT_DATA: Target = Target {
    name: "patient_data",
    endpoint: "/patient_data",
    body_key: "patient_data",
    fields: &[
        "patient_number",
        "first_name",
        "last_name",
        "dob",
        "hd_mpfile_updated_at",
        "email",
        "address",
        "address2",
        "city",
        "state",
        "zip_code",
        "cell_phone",
        "home_phone",
        "race",
        "ethnicity",
        "gender",
        "family_number",
        "notes",
    ],
    required: &[
        "patient_number",
        "first_name",
        "last_name",
        "dob",
        "hd_mpfile_updated_at",
    ],
    group_field: None,
    order: 0,
};

pub(crate) const VACCINE_DOSE_DATA: Target = Target {
    name: "vaccine_dose_data",
    endpoint: "/vaccine_dose_data",
    body_key: "vaccine_dose_data",
    // `patient_id` is on ReqCheck's whitelist but has no column behind it (every record sending
    // it fails), and `trade_name` has a column but is not whitelisted: neither is accepted here.
    fields: &[
        "patient_number",
        "cvx_code",
        "date_administered",
        "hd_imfile_updated_at",
        "vaccine_code",
        "hd_description",
        "history_flag",
        "provider_code",
        "dosage",
        "mvx_code",
        "lot_number",
        "hd_encounter_id",
        "vfc_code",
        "vfc_description",
        "given_by",
        "injection_site",
        "expiration_date",
        "comments",
    ],
    required: &[
        "patient_number",
        "cvx_code",
        "date_administered",
        "hd_imfile_updated_at",
    ],
    group_field: Some("patient_number"),
    order: 1,
};

pub const ALL: [&Target; 2] = [&PATIENT_DATA, &VACCINE_DOSE_DATA];

/// The target a module's declared record type names.
pub fn by_name(name: &str) -> Option<&'static Target> {
    ALL.into_iter().find(|t| t.name == name)
}
