"""The `patients` transform, in Python: `mpfile` rows -> ReqCheck `patient_data` records.

It follows the `mpfile` rules of docs/default-mapping.md exactly as the Rust module does
(transforms/patients/src/lib.rs), and passes the same example cases
(transforms/patients/examples.json); the codes are listed in transforms/README.md.

Build it with `scripts/build-guest-python` (see README.md beside this file). The rules themselves
live in clinic_rules.py; this file says which column feeds which field, and what happens to a
value a rule refuses: the row is rejected, or the value is left out with a warning.
"""

import clinic_rules as clinic
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
    Findings,
    MaxLength,
    OneOf,
    Outcome,
    Pattern,
    Range,
    Record,
    Reject,
    Row,
    Transform,
)

# US phone numbers as clinics type them: `8165551234`, `816-555-1234`, `(816) 555-1234`.
PHONE_PATTERN = r"\(?[0-9]{3}\)? ?-?[0-9]{3}-?[0-9]{4}"

# The `mpfile` columns this module reads, named as the query returns them (`mname` is not read:
# ReqCheck has no column for it). The hints describe valid values for generated test rows.
INPUT_COLUMNS = [
    Column.required("patno", INTEGER, Range(1, clinic.INT32_MAX)),
    Column.required("lname", TEXT, MaxLength(35)),
    Column.required("fname", TEXT, MaxLength(35)),
    Column.required("birth_date", DATE, Dates("1900-01-01", "2025-12-31")),
    Column.optional("sex", TEXT, OneOf("F", "M", "U", "f", "m", "u")),
    Column.optional("addr1", TEXT, MaxLength(60)),
    Column.optional("addr2", TEXT, MaxLength(60)),
    Column.optional("city", TEXT, MaxLength(40)),
    Column.optional("state", TEXT, Pattern("[A-Z]{2}")),
    Column.optional("zip", TEXT, Pattern("[0-9]{5}(-[0-9]{4})?")),
    Column.optional("home_phone", TEXT, Pattern(PHONE_PATTERN)),
    Column.optional("cell_phone", TEXT, Pattern(PHONE_PATTERN)),
    Column.optional("email", TEXT, Pattern(r"[a-z]{1,12}@[a-z]{1,12}\.(org|com|net)")),
    Column.optional("race", TEXT, MaxLength(60)),
    Column.optional("ethnicity", TEXT, MaxLength(60)),
    Column.optional("family_no", INTEGER, Range(1, clinic.INT32_MAX)),
    Column.optional("notes", TEXT, MaxLength(200)),
    Column.required("updated_at", TIMESTAMP, Dates("2000-01-01", "2025-12-31")),
]

# The `patient_data` fields this module emits: all on ReqCheck's whitelist (reqcheck-api.md
# section 1.2), which rejects a record carrying any other key.
OUTPUT_FIELDS = [
    Field("patient_number", required=True),
    Field("first_name", required=True),
    Field("last_name", required=True),
    Field("dob", required=True),
    Field("gender"),
    Field("address"),
    Field("address2"),
    Field("city"),
    Field("state"),
    Field("zip_code"),
    Field("home_phone"),
    Field("cell_phone"),
    Field("email"),
    Field("race"),
    Field("ethnicity"),
    Field("family_number"),
    Field("notes"),
    Field("hd_mpfile_updated_at", required=True),
]


class Patients(Transform):
    name = "patients"
    # The Rust module's version with a build tag: same rules, another implementation.
    version = "1.0.0+python"
    target = "patient_data"
    key_column = "patno"
    input_columns = INPUT_COLUMNS
    output_fields = OUTPUT_FIELDS

    def row(self, row: Row, ctx: Context, out: Record) -> Outcome:
        # Problems that keep the patient from ReqCheck: every one of them is reported, not only
        # the first, so one look at the quarantine shows the clinic all it has to fix.
        rejections = Findings()
        patient = clinic.validate_patient(
            patno=row.int("patno"),
            last_name=row.text("lname"),
            first_name=row.text("fname"),
            birth_date_text=row.text("birth_date"),
            as_of=ctx.as_of_date,
            findings=rejections,
        )
        with rejections.on("hd_mpfile_updated_at"):
            updated_at = clinic.source_timestamp(row.text("updated_at"))
        if patient is None or rejections:
            return Reject(rejections)

        out.put("patient_number", patient.patient_number)
        out.put("first_name", patient.first_name)
        out.put("last_name", patient.last_name)
        out.put("dob", patient.dob)
        out.put_opt("gender", clinic.gender(row.text("sex")))
        out.put_opt("address", clinic.optional_text(row.text("addr1")))
        out.put_opt("address2", clinic.optional_text(row.text("addr2")))
        out.put_opt("city", clinic.optional_text(row.text("city")))

        # Bad optional values are left out with a warning: the patient still goes to ReqCheck
        # (its doses need it), and the warning tells the clinic what to fix.
        warnings = Findings()
        with warnings.on("state"):
            out.put_opt("state", clinic.state(row.text("state")))
        with warnings.on("zip_code"):
            out.put_opt("zip_code", clinic.zip_code(row.text("zip")))
        with warnings.on("home_phone"):
            out.put_opt("home_phone", clinic.phone(row.text("home_phone")))
        with warnings.on("cell_phone"):
            out.put_opt("cell_phone", clinic.phone(row.text("cell_phone")))
        with warnings.on("email"):
            out.put_opt("email", clinic.email(row.text("email")))
        out.put_opt("race", clinic.optional_text(row.text("race")))
        out.put_opt("ethnicity", clinic.optional_text(row.text("ethnicity")))
        with warnings.on("family_number"):
            out.put_opt("family_number", clinic.family_number(row.int("family_no")))
        out.put_opt("notes", clinic.pass_through(row.text("notes")))
        out.put("hd_mpfile_updated_at", updated_at)
        return Emit(warnings)


# componentize-py exports the class named `WitWorld` of the app module.
WitWorld = Patients
