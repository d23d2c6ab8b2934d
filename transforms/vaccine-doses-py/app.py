"""The `vaccine-doses` transform, in Python: `imfile` rows (with their patient's `mpfile` columns
joined on) -> ReqCheck `vaccine_dose_data` records.

It follows the `imfile` rules of docs/default-mapping.md exactly as the Rust module does
(transforms/vaccine-doses/src/lib.rs), and passes the same example cases
(transforms/vaccine-doses/examples.json); the codes are listed in transforms/README.md.

Build it with `scripts/build-guest-python vaccine-doses` (see README.md beside this file). The
rules live in clinic_rules.py, shared with the Python `patients` module; the CVX list is read from
the Rust module's data/cvx_codes.csv (cvx_codes.py). This file says which column feeds which
field, and in which order the rules decide.
"""

import clinic_rules as clinic
from clinic_rules import codes
from cvx_codes import CVX_CODE_TEXTS, CVX_CODES
from reqsync_guest import (
    DATE,
    INTEGER,
    TEXT,
    TIMESTAMP,
    Column,
    Context,
    Dates,
    Emit,
    Field,
    Finding,
    Findings,
    MaxLength,
    OneOf,
    Outcome,
    Pattern,
    Range,
    Record,
    Reject,
    Row,
    Skip,
    Transform,
)

PATIENT_NUMBERS = Range(1, clinic.INT32_MAX)
BIRTH_DATES = Dates("1900-01-01", "2025-12-31")

# The `imfile` columns this module reads, plus the patient columns the default query LEFT JOINs
# from `mpfile` (all NULL when the patient row does not exist). The hints describe valid values
# for generated test rows.
INPUT_COLUMNS = [
    Column.required("im_id", INTEGER, PATIENT_NUMBERS),
    Column.required("patno", INTEGER, PATIENT_NUMBERS),
    Column.optional("vac_code", TEXT, MaxLength(20)),
    Column.optional("vac_desc", TEXT, MaxLength(100)),
    Column.required("cvx", INTEGER, OneOf(*CVX_CODE_TEXTS)),
    Column.optional("mvx", TEXT, Pattern("[A-Z]{3}")),
    Column.optional("lot_no", TEXT, MaxLength(20)),
    Column.optional("exp_date", DATE, Dates("2000-01-01", "2030-12-31")),
    Column.required("admin_date", DATE, BIRTH_DATES),
    Column.required("history", TEXT, OneOf("Y", "N")),
    Column.optional("provider", TEXT),
    Column.optional("dosage", TEXT),
    Column.optional("site", TEXT),
    Column.optional("given_by", TEXT),
    Column.optional("vfc_code", TEXT),
    Column.optional("vfc_desc", TEXT),
    Column.optional("encounter_id", TEXT),
    Column.optional("comments", TEXT),
    Column.required("updated_at", TIMESTAMP, Dates("2000-01-01", "2025-12-31")),
    # Nullable, not optional: a query without them must fail loudly rather than make every dose
    # look patient-less.
    Column.nullable("patient_patno", INTEGER, PATIENT_NUMBERS),
    Column.nullable("patient_lname", TEXT, MaxLength(35)),
    Column.nullable("patient_fname", TEXT, MaxLength(35)),
    Column.nullable("patient_birth_date", DATE, BIRTH_DATES),
]

# The `vaccine_dose_data` fields this module emits: all on ReqCheck's whitelist (reqcheck-api.md
# section 1.3). `patient_id` and `trade_name` are deliberately absent: the first fails on
# ReqCheck's side, the second is not whitelisted.
OUTPUT_FIELDS = [
    Field("patient_number", required=True),
    Field("vaccine_code"),
    Field("hd_description"),
    Field("cvx_code", required=True),
    Field("mvx_code"),
    Field("lot_number"),
    Field("expiration_date"),
    Field("date_administered", required=True),
    # Always sent: ReqCheck's column is NOT NULL and reads a missing flag as false.
    Field("history_flag", required=True),
    Field("provider_code"),
    Field("dosage"),
    Field("injection_site"),
    Field("given_by"),
    Field("vfc_code"),
    Field("vfc_description"),
    Field("hd_encounter_id"),
    Field("comments"),
    Field("hd_imfile_updated_at", required=True),
]


class VaccineDoses(Transform):
    name = "vaccine-doses"
    # The Rust module's version with a build tag: same rules, another implementation.
    version = "1.0.0+python"
    target = "vaccine_dose_data"
    key_column = "im_id"
    input_columns = INPUT_COLUMNS
    output_fields = OUTPUT_FIELDS

    def row(self, row: Row, ctx: Context, out: Record) -> Outcome:
        patno = row.int("patno")
        if patno is None:
            return Reject(
                [Finding("patient_number", codes.MISSING, "the patient number is NULL")]
            )

        # Doses are only sent for patients ReqCheck has. For any other patient number ReqCheck
        # invents a "Not Found" placeholder patient (born 1900-01-01) and logs an error for
        # every dose, so such doses are held back here instead.
        joined_patno = row.int("patient_patno")
        if joined_patno is None:
            return Skip(codes.PATIENT_NOT_FOUND, "the dose's patient has no row in mpfile")
        if joined_patno != patno:
            # Only possible when an edited query joins the wrong patient; the birth-date check
            # below would then judge the dose against someone else.
            return Reject(
                [
                    Finding(
                        "patient_number",
                        codes.PATIENT_MISMATCH,
                        "the joined patient columns belong to another patient number",
                    )
                ]
            )
        patient = clinic.validate_patient(
            patno=joined_patno,
            last_name=row.text("patient_lname"),
            first_name=row.text("patient_fname"),
            birth_date_text=row.text("patient_birth_date"),
            as_of=ctx.as_of_date,
            findings=Findings(),
        )
        if patient is None:
            return Skip(
                codes.PATIENT_NOT_SENT,
                "the dose's patient is rejected by the patient rules, so ReqCheck does not have it",
            )

        # Every problem of the dose at once, so one look at the quarantine shows all of them.
        rejections = Findings()
        with rejections.on("cvx_code"):
            cvx = clinic.cvx_code(row.int("cvx"), CVX_CODES)
        with rejections.on("date_administered"):
            administered = clinic.date_administered(
                row.text("admin_date"), ctx.as_of_date, patient.dob
            )
        with rejections.on("history_flag"):
            history = clinic.history_flag(row.text("history"))
        with rejections.on("hd_imfile_updated_at"):
            updated_at = clinic.source_timestamp(row.text("updated_at"))
        if rejections:
            return Reject(rejections)

        warnings = Findings()
        out.put("patient_number", patient.patient_number)
        out.put_opt("vaccine_code", clinic.optional_text(row.text("vac_code")))
        out.put_opt("hd_description", clinic.optional_text(row.text("vac_desc")))
        out.put("cvx_code", cvx)
        out.put_opt("mvx_code", clinic.optional_upper(row.text("mvx")))
        out.put_opt("lot_number", clinic.optional_text(row.text("lot_no")))
        # A bad expiration date is left out with a warning: the dose was given all the same.
        with warnings.on("expiration_date"):
            out.put_opt("expiration_date", clinic.expiration_date(row.text("exp_date")))
        out.put("date_administered", administered)
        out.put("history_flag", history)
        out.put_opt("provider_code", clinic.optional_text(row.text("provider")))
        out.put_opt("dosage", clinic.optional_text(row.text("dosage")))
        out.put_opt("injection_site", clinic.optional_text(row.text("site")))
        out.put_opt("given_by", clinic.optional_text(row.text("given_by")))
        out.put_opt("vfc_code", clinic.optional_text(row.text("vfc_code")))
        out.put_opt("vfc_description", clinic.optional_text(row.text("vfc_desc")))
        out.put_opt("hd_encounter_id", clinic.optional_text(row.text("encounter_id")))
        out.put_opt("comments", clinic.pass_through(row.text("comments")))
        out.put("hd_imfile_updated_at", updated_at)
        return Emit(warnings)


# componentize-py exports the class named `WitWorld` of the app module.
WitWorld = VaccineDoses
