"""The default mapping rules of docs/default-mapping.md, as plain functions over column values.

The Python twin of the Rust crate `clinic-rules` (transforms/clinic-rules/src/lib.rs): same codes,
same messages, same decisions. Shared by the Python `patients` and `vaccine-doses` modules
(transforms/patients-py and transforms/vaccine-doses-py link to this file), just as the Rust crate
is shared by the Rust modules. The dose module relies on the patient rules agreeing exactly with
the patients module (it holds back the doses of a patient the patients module rejects, or
ReqCheck invents a "Not Found" placeholder patient born 1900-01-01), which is why they live here
once; change a rule in both languages or in neither.

Each rule takes the column value as delivered (None = NULL) and returns the value to send, or
raises `Problem`: a stable code plus a message that never quotes the value (findings end up in
logs and reports, and rows are protected health information).
"""

from dataclasses import dataclass
from datetime import date

import value_rules as rules
from reqsync_guest import Findings, Problem


class codes:
    """Every reject and warning code the default modules use (transforms/README.md lists them
    with their meaning). Codes are stable: reports and quarantine tooling match on them."""

    MISSING = "missing"  # a required value is NULL
    BLANK = "blank"  # a required text value is empty or only whitespace
    OUT_OF_RANGE = "out-of-range"  # a number outside what the field can hold
    INVALID_DATE = "invalid-date"  # not a YYYY-MM-DD calendar date
    IN_FUTURE = "in-future"  # a date after the as-of date
    BEFORE_1900 = "before-1900"  # a birth date before 1900-01-01
    BEFORE_BIRTH = "before-birth"  # a dose given before the patient was born
    INVALID_TIMESTAMP = "invalid-timestamp"  # not ISO 8601 with an offset
    UNKNOWN_CODE = "unknown-code"  # a code not in the module's code list (CVX)
    INVALID_FLAG = "invalid-flag"  # a Y/N flag that is neither
    PATIENT_MISMATCH = "patient-mismatch"  # the dose's patient number differs from the joined one
    INVALID_STATE = "invalid-state"  # warning: state left out
    INVALID_ZIP = "invalid-zip"  # warning: ZIP code left out
    INVALID_PHONE = "invalid-phone"  # warning: phone number left out
    INVALID_EMAIL = "invalid-email"  # warning: e-mail address left out
    PATIENT_NOT_FOUND = "patient-not-found"  # skip: the dose's patient has no mpfile row
    PATIENT_NOT_SENT = "patient-not-sent"  # skip: the dose's patient fails the patient rules


def _missing() -> Problem:
    return Problem(codes.MISSING, "the value is NULL")


def _invalid_date() -> Problem:
    return Problem(codes.INVALID_DATE, "the value is not a YYYY-MM-DD calendar date")


# ReqCheck stores patient numbers as PostgreSQL int4, and family numbers too.
INT32_MIN = -(2**31)
INT32_MAX = 2**31 - 1

# The earliest birth date sent: ReqCheck's own "unknown" placeholder is 1900-01-01, and anything
# earlier is a data-entry error, not a living patient.
EARLIEST_BIRTH_DATE = date(1900, 1, 1)


# ---- the patient rules: whether ReqCheck gets the patient at all -----------------------------


def patient_number(patno: int | None) -> int:
    """`patient_number`: 1 ... 2 147 483 647. ReqCheck requires > 0 and stores int4; a number
    outside that range makes ReqCheck's dose import fail with a 500 partway through a request,
    so it must never leave the clinic."""
    if patno is None:
        raise _missing()
    if not 1 <= patno <= INT32_MAX:
        raise Problem(codes.OUT_OF_RANGE, "the patient number is not between 1 and 2147483647")
    return patno


def person_name(value: str | None) -> str:
    """`last_name` / `first_name`: trimmed, inner whitespace collapsed, not blank (ReqCheck's
    strict presence validation would raise on a blank name)."""
    if value is None:
        raise _missing()
    name = rules.collapse_whitespace(value)
    if not name:
        raise Problem(codes.BLANK, "the name is empty or only whitespace")
    return name


def birth_date(value: str | None, as_of: date) -> date:
    """`dob`: a calendar date, not after the as-of date, not before 1900-01-01."""
    if value is None:
        raise _missing()
    born = rules.parse_date(value)
    if born is None:
        raise _invalid_date()
    if born > as_of:
        raise Problem(codes.IN_FUTURE, "the birth date is after the as-of date")
    if born < EARLIEST_BIRTH_DATE:
        raise Problem(codes.BEFORE_1900, "the birth date is before 1900-01-01")
    return born


@dataclass(slots=True)
class ValidPatient:
    """A patient the patient rules accept, cleaned."""

    patient_number: int
    last_name: str
    first_name: str
    dob: date


def validate_patient(
    *,
    patno: int | None,
    last_name: str | None,
    first_name: str | None,
    birth_date_text: str | None,
    as_of: date,
    findings: Findings,
) -> ValidPatient | None:
    """The patient rules. Every problem found (not only the first) is added to `findings` as a
    finding on its `patient_data` field, and None returned; else the cleaned patient."""
    before = len(findings)
    with findings.on("patient_number"):
        number = patient_number(patno)
    with findings.on("last_name"):
        last = person_name(last_name)
    with findings.on("first_name"):
        first = person_name(first_name)
    with findings.on("dob"):
        dob = birth_date(birth_date_text, as_of)
    if len(findings) > before:
        return None
    return ValidPatient(number, last, first, dob)


def source_timestamp(value: str | None) -> str:
    """`hd_mpfile_updated_at` / `hd_imfile_updated_at`: the host already renders the clinic's
    local time with its offset; passed through unchanged once its shape is checked (ReqCheck
    stores the dose stamp verbatim and compares the stamps as text)."""
    if value is None:
        raise _missing()
    if not rules.is_timestamp(value):
        raise Problem(
            codes.INVALID_TIMESTAMP,
            "the value is not an ISO 8601 timestamp with a UTC offset",
        )
    return value


# ---- optional fields: sent when good, left out (with a warning when worth one) -------------
# These return None for "nothing to send". Those that raise `Problem` drop a bad value with a
# warning: the patient still goes to ReqCheck (its doses need it), and the warning tells the
# clinic what to fix.


def gender(value: str | None) -> str | None:
    """`gender`: M, F or U (trimmed, upper-cased); anything else leaves the key out without a
    warning: ReqCheck currently discards gender on save anyway (reqcheck-api.md section 2.1)."""
    if value is None:
        return None
    code = rules.trim(value)
    return code.upper() if code in ("M", "m", "F", "f", "U", "u") else None


def optional_text(value: str | None) -> str | None:
    """Optional text sent trimmed (address, city, race...); None when blank."""
    # `rules.non_blank`, without the extra call.
    if value is None:
        return None
    return value.strip(rules.WHITESPACE) or None


def pass_through(value: str | None) -> str | None:
    """Optional free text sent exactly as written (notes, comments): only left out when there is
    nothing in it, since an empty string must never be sent."""
    if value is None or not rules.trim(value):
        return None
    return value


def optional_upper(value: str | None) -> str | None:
    """Optional codes sent upper-case (`mvx_code`); None when blank.

    As the Rust rule does: upper-cased only when a character is lower-case (Unicode's Lowercase
    property, which `str.islower` reads per character as Rust's `char::is_lowercase` does), then
    with the full Unicode mapping ("ß" becomes "SS" in both). A code of titlecase letters alone
    ("ǅ") is left as written."""
    text = rules.non_blank(value)
    if text is None:
        return None
    return text.upper() if any(c.islower() for c in text) else text


def state(value: str | None) -> str | None:
    """`state`: a US state or territory code, upper-cased."""
    value = rules.non_blank(value)
    if value is None:
        return None
    code = rules.normalize_state(value)
    if code is None:
        raise Problem(
            codes.INVALID_STATE,
            "the state is not a US state or territory code; left out",
        )
    return code


def zip_code(value: str | None) -> str | None:
    """`zip_code`: 5 digits or ZIP+4."""
    value = rules.non_blank(value)
    if value is None:
        return None
    normalized = rules.normalize_zip(value)
    if normalized is None:
        raise Problem(codes.INVALID_ZIP, "the ZIP code is not 5 digits or ZIP+4; left out")
    return normalized


def phone(value: str | None) -> str | None:
    """`home_phone` / `cell_phone`: a 10-digit North American number, as `816-555-0100`."""
    value = rules.non_blank(value)
    if value is None:
        return None
    number = rules.normalize_phone(value)
    if number is None:
        raise Problem(
            codes.INVALID_PHONE,
            "the phone number is not a 10-digit US number; left out",
        )
    return number


def email(value: str | None) -> str | None:
    """`email`: trimmed, when plausible."""
    value = rules.non_blank(value)
    if value is None:
        return None
    address = rules.plausible_email(value)
    if address is None:
        raise Problem(codes.INVALID_EMAIL, "the e-mail address is not plausible; left out")
    return address


def family_number(value: int | None) -> int | None:
    """`family_number`: passed through, but only when it fits ReqCheck's int4 column (a bigger
    number would make ReqCheck fail the whole record with a database error)."""
    if value is not None and not INT32_MIN <= value <= INT32_MAX:
        raise Problem(
            codes.OUT_OF_RANGE,
            "the family number does not fit a 32-bit integer; left out",
        )
    return value


# ---- the dose rules ------------------------------------------------------------------------


def cvx_code(value: int | None, known: frozenset) -> int:
    """`cvx_code`: must be in `known` (the CDC CVX list the module embeds)."""
    if value is None:
        raise _missing()
    if value not in known:
        raise Problem(codes.UNKNOWN_CODE, "the CVX code is not in the module's CDC CVX list")
    return value


def history_flag(value: str | None) -> bool:
    """`history_flag`: `Y` -> True (historical record), `N` -> False (given here), after
    trimming. Anything else, lower case included as default-mapping.md says, is rejected:
    ReqCheck would quietly read it as false."""
    if value is None:
        raise _missing()
    flag = rules.trim(value)
    if flag == "Y":
        return True
    if flag == "N":
        return False
    raise Problem(codes.INVALID_FLAG, "the flag is neither Y nor N")


def date_administered(value: str | None, as_of: date, born: date) -> date:
    """`date_administered`: a calendar date, not after the as-of date, not before the patient's
    birth date."""
    if value is None:
        raise _missing()
    given = rules.parse_date(value)
    if given is None:
        raise _invalid_date()
    if given > as_of:
        raise Problem(codes.IN_FUTURE, "the administration date is after the as-of date")
    if given < born:
        raise Problem(
            codes.BEFORE_BIRTH,
            "the administration date is before the patient's birth date",
        )
    return given


def expiration_date(value: str | None) -> date | None:
    """`expiration_date`: a calendar date, or dropped with a warning (raises `Problem`).

    Dropped rather than rejected: the dose itself was given, and ReqCheck replaces a patient's
    whole dose history with each request, so rejecting would make the patient look
    under-vaccinated over a lot detail. The cost is that ReqCheck then assumes "never expires"."""
    if value is None:
        return None
    expires = rules.parse_date(value)
    if expires is None:
        raise Problem(
            codes.INVALID_DATE,
            "the expiration date is not a YYYY-MM-DD calendar date; left out",
        )
    return expires
