//! The default mapping rules of reqsync's `docs/default-mapping.md`, as plain functions over
//! column values, shared by the `patients` and `vaccine-doses` transforms.
//!
//! Both modules must agree on exactly when a patient is sendable: the dose module holds back
//! the doses of a patient the patient module would reject (otherwise ReqCheck invents a
//! "Not Found" placeholder born 1900-01-01 and logs an error per dose). That is why the patient
//! rules live here once, in [`validate_patient`], rather than in each module.
//!
//! Each rule takes the column value as delivered (`None` = NULL) and returns either the value to
//! send or a [`Problem`]: a stable code plus a message that never quotes the value (findings end
//! up in logs and reports, and rows are PHI).

use std::borrow::Cow;

use reqsync_guest::Finding;
use reqsync_guest::rules::{self, CodeList, Date, Timestamp, UsPhone};

/// Every skip, reject and warning code the default modules use (listed with their meaning in
/// `transforms/README.md`).
pub mod codes {
    /// A required value is NULL.
    pub const MISSING: &str = "missing";
    /// A required text value is empty or only whitespace.
    pub const BLANK: &str = "blank";
    /// A number outside what the field can hold.
    pub const OUT_OF_RANGE: &str = "out-of-range";
    /// Not a `YYYY-MM-DD` calendar date.
    pub const INVALID_DATE: &str = "invalid-date";
    /// A date after the as-of date.
    pub const IN_FUTURE: &str = "in-future";
    /// A birth date before 1900-01-01.
    pub const BEFORE_1900: &str = "before-1900";
    /// A dose given before the patient was born.
    pub const BEFORE_BIRTH: &str = "before-birth";
    /// Not an ISO 8601 timestamp with an offset.
    pub const INVALID_TIMESTAMP: &str = "invalid-timestamp";
    /// A code not in the module's code list (CVX).
    pub const UNKNOWN_CODE: &str = "unknown-code";
    /// A Y/N flag that is neither.
    pub const INVALID_FLAG: &str = "invalid-flag";
    /// The dose's patient number differs from the joined patient's.
    pub const PATIENT_MISMATCH: &str = "patient-mismatch";
    /// Warning: state dropped.
    pub const INVALID_STATE: &str = "invalid-state";
    /// Warning: ZIP code dropped.
    pub const INVALID_ZIP: &str = "invalid-zip";
    /// Warning: phone number dropped.
    pub const INVALID_PHONE: &str = "invalid-phone";
    /// Warning: e-mail address dropped.
    pub const INVALID_EMAIL: &str = "invalid-email";
    /// Skip: the dose's patient has no `mpfile` row.
    pub const PATIENT_NOT_FOUND: &str = "patient-not-found";
    /// Skip: the dose's patient is rejected by the patient rules, so ReqCheck does not have it.
    pub const PATIENT_NOT_SENT: &str = "patient-not-sent";
}

/// Why a value is not sent. `message` follows the no-PHI rule of [`Finding`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Problem {
    pub code: &'static str,
    pub message: &'static str,
}

impl Problem {
    const fn new(code: &'static str, message: &'static str) -> Self {
        Self { code, message }
    }

    /// The finding for output field `field`.
    pub const fn at(self, field: &'static str) -> Finding {
        Finding::new(field, self.code, self.message)
    }
}

const MISSING: Problem = Problem::new(codes::MISSING, "the value is NULL");
const INVALID_DATE: Problem = Problem::new(
    codes::INVALID_DATE,
    "the value is not a YYYY-MM-DD calendar date",
);

/// The earliest birth date sent: ReqCheck's own "unknown" placeholder is 1900-01-01, and
/// anything earlier is a data-entry error, not a living patient.
pub const EARLIEST_BIRTH_DATE: Date = match Date::new(1900, 1, 1) {
    Some(date) => date,
    None => panic!("1900-01-01 is a date"),
};

/// `patient_number`: 1 … 2 147 483 647. ReqCheck requires > 0 and stores it as PostgreSQL
/// int4; a number outside that range makes ReqCheck's dose import fail with a 500 partway
/// through a request, so it must never leave the clinic.
pub fn patient_number(patno: Option<i64>) -> Result<i64, Problem> {
    match patno {
        None => Err(MISSING),
        Some(n) if (1..=i64::from(i32::MAX)).contains(&n) => Ok(n),
        Some(_) => Err(Problem::new(
            codes::OUT_OF_RANGE,
            "the patient number is not between 1 and 2147483647",
        )),
    }
}

/// `last_name` / `first_name`: trimmed, inner whitespace collapsed, not blank (ReqCheck's
/// strict presence validation would raise on a blank name).
pub fn person_name(value: Option<&str>) -> Result<Cow<'_, str>, Problem> {
    let name = rules::collapse_whitespace(value.ok_or(MISSING)?);
    if name.is_empty() {
        Err(Problem::new(
            codes::BLANK,
            "the name is empty or only whitespace",
        ))
    } else {
        Ok(name)
    }
}

/// `dob`: a calendar date, not after the as-of date, not before 1900-01-01.
pub fn birth_date(value: Option<&str>, as_of: Date) -> Result<Date, Problem> {
    let date = Date::parse(value.ok_or(MISSING)?).ok_or(INVALID_DATE)?;
    if date > as_of {
        Err(Problem::new(
            codes::IN_FUTURE,
            "the birth date is after the as-of date",
        ))
    } else if date < EARLIEST_BIRTH_DATE {
        Err(Problem::new(
            codes::BEFORE_1900,
            "the birth date is before 1900-01-01",
        ))
    } else {
        Ok(date)
    }
}

/// The patient columns that decide whether a patient is sent (from `mpfile`, or joined onto a
/// dose row).
#[derive(Debug, Clone, Copy, Default)]
pub struct PatientInput<'a> {
    pub patno: Option<i64>,
    pub last_name: Option<&'a str>,
    pub first_name: Option<&'a str>,
    pub birth_date: Option<&'a str>,
}

/// A patient the patient rules accept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidPatient<'a> {
    pub patient_number: i64,
    pub last_name: Cow<'a, str>,
    pub first_name: Cow<'a, str>,
    pub dob: Date,
}

/// The patient rules: every problem found (not only the first), as findings on the
/// `patient_data` fields, or the cleaned patient.
pub fn validate_patient(
    input: PatientInput<'_>,
    as_of: Date,
) -> Result<ValidPatient<'_>, Vec<Finding>> {
    let number = patient_number(input.patno);
    let last = person_name(input.last_name);
    let first = person_name(input.first_name);
    let dob = birth_date(input.birth_date, as_of);
    match (number, last, first, dob) {
        (Ok(patient_number), Ok(last_name), Ok(first_name), Ok(dob)) => Ok(ValidPatient {
            patient_number,
            last_name,
            first_name,
            dob,
        }),
        (number, last, first, dob) => Err([
            number.err().map(|p| p.at("patient_number")),
            last.err().map(|p| p.at("last_name")),
            first.err().map(|p| p.at("first_name")),
            dob.err().map(|p| p.at("dob")),
        ]
        .into_iter()
        .flatten()
        .collect()),
    }
}

/// `hd_mpfile_updated_at` / `hd_imfile_updated_at`: the host already renders the clinic's local
/// time with its offset; passed through unchanged once its shape is checked (ReqCheck stores the
/// dose stamp verbatim and compares it as text).
pub fn source_timestamp(value: Option<&str>) -> Result<&str, Problem> {
    let value = value.ok_or(MISSING)?;
    match Timestamp::parse(value) {
        Some(_) => Ok(value),
        None => Err(Problem::new(
            codes::INVALID_TIMESTAMP,
            "the value is not an ISO 8601 timestamp with a UTC offset",
        )),
    }
}

/// `gender`: `M`, `F` or `U` (trimmed, upper-cased); anything else leaves the key out without a
/// warning — ReqCheck currently discards gender on save anyway (see reqcheck-api.md §2.1).
pub fn gender(value: Option<&str>) -> Option<&'static str> {
    match value?.trim() {
        "M" | "m" => Some("M"),
        "F" | "f" => Some("F"),
        "U" | "u" => Some("U"),
        _ => None,
    }
}

/// Optional text fields sent trimmed (`address`, `city`, `race`, …); `None` when blank.
pub fn optional_text(value: Option<&str>) -> Option<&str> {
    rules::non_blank(value)
}

/// Optional free text passed through as written (`notes`, `comments`): only left out when
/// there is nothing in it, since an empty string must never be sent.
pub fn pass_through(value: Option<&str>) -> Option<&str> {
    value.filter(|text| !text.trim().is_empty())
}

/// Optional codes sent upper-case (`mvx_code`); `None` when blank.
pub fn optional_upper(value: Option<&str>) -> Option<Cow<'_, str>> {
    let trimmed = rules::non_blank(value)?;
    if trimmed.chars().any(char::is_lowercase) {
        Some(Cow::Owned(trimmed.to_uppercase()))
    } else {
        Some(Cow::Borrowed(trimmed))
    }
}

/// Outcome of an optional field whose bad values are dropped with a warning:
/// `Ok(None)` = NULL or blank (nothing to say), `Ok(Some(v))` = send, `Err` = drop and warn.
pub type Optional<T> = Result<Option<T>, Problem>;

/// `state`: a US state or territory code, upper-cased.
pub fn state(value: Option<&str>) -> Optional<&'static str> {
    let Some(value) = rules::non_blank(value) else {
        return Ok(None);
    };
    rules::normalize_state(value).map(Some).ok_or(Problem::new(
        codes::INVALID_STATE,
        "the state is not a US state or territory code; left out",
    ))
}

/// `zip_code`: 5 digits or ZIP+4.
pub fn zip(value: Option<&str>) -> Optional<&str> {
    let Some(value) = rules::non_blank(value) else {
        return Ok(None);
    };
    rules::normalize_zip(value).map(Some).ok_or(Problem::new(
        codes::INVALID_ZIP,
        "the ZIP code is not 5 digits or ZIP+4; left out",
    ))
}

/// `home_phone` / `cell_phone`: a 10-digit North American number, formatted `816-555-0100`.
pub fn phone(value: Option<&str>) -> Optional<UsPhone> {
    let Some(value) = rules::non_blank(value) else {
        return Ok(None);
    };
    rules::normalize_phone(value).map(Some).ok_or(Problem::new(
        codes::INVALID_PHONE,
        "the phone number is not a 10-digit US number; left out",
    ))
}

/// `email`: trimmed, when plausible.
pub fn email(value: Option<&str>) -> Optional<&str> {
    let Some(value) = rules::non_blank(value) else {
        return Ok(None);
    };
    rules::plausible_email(value).map(Some).ok_or(Problem::new(
        codes::INVALID_EMAIL,
        "the e-mail address is not plausible; left out",
    ))
}

/// `family_number`: passed through, but only when it fits ReqCheck's int4 column (a bigger
/// number would make ReqCheck fail the whole record with a database error).
pub fn family_number(value: Option<i64>) -> Optional<i64> {
    match value {
        None => Ok(None),
        Some(n) if i32::try_from(n).is_ok() => Ok(Some(n)),
        Some(_) => Err(Problem::new(
            codes::OUT_OF_RANGE,
            "the family number does not fit a 32-bit integer; left out",
        )),
    }
}

/// `cvx_code`: must be in `known` (the CDC CVX list the module embeds).
pub fn cvx_code(value: Option<i64>, known: &CodeList<u16>) -> Result<i64, Problem> {
    let code = value.ok_or(MISSING)?;
    match u16::try_from(code) {
        Ok(small) if known.contains(&small) => Ok(code),
        _ => Err(Problem::new(
            codes::UNKNOWN_CODE,
            "the CVX code is not in the module's CDC CVX list",
        )),
    }
}

/// `history_flag`: `Y` → true (historical record), `N` → false (given here), after trimming.
/// Anything else — lower case included, as default-mapping.md says — is rejected: ReqCheck would
/// quietly read it as false.
pub fn history_flag(value: Option<&str>) -> Result<bool, Problem> {
    match value.ok_or(MISSING)?.trim() {
        "Y" => Ok(true),
        "N" => Ok(false),
        _ => Err(Problem::new(
            codes::INVALID_FLAG,
            "the flag is neither Y nor N",
        )),
    }
}

/// `date_administered`: a calendar date, not after the as-of date, not before the patient's
/// birth date.
pub fn date_administered(value: Option<&str>, as_of: Date, born: Date) -> Result<Date, Problem> {
    let date = Date::parse(value.ok_or(MISSING)?).ok_or(INVALID_DATE)?;
    if date > as_of {
        Err(Problem::new(
            codes::IN_FUTURE,
            "the administration date is after the as-of date",
        ))
    } else if date < born {
        Err(Problem::new(
            codes::BEFORE_BIRTH,
            "the administration date is before the patient's birth date",
        ))
    } else {
        Ok(date)
    }
}

/// `expiration_date`: a calendar date, or dropped with a warning.
///
/// Dropped rather than rejected: the dose itself was given, and ReqCheck replaces a patient's
/// whole dose history with each request, so rejecting would make the patient look under-
/// vaccinated over a lot detail. The cost is that ReqCheck then assumes "never expires".
pub fn expiration_date(value: Option<&str>) -> Optional<Date> {
    let Some(value) = value else {
        return Ok(None);
    };
    Date::parse(value).map(Some).ok_or(Problem::new(
        codes::INVALID_DATE,
        "the expiration date is not a YYYY-MM-DD calendar date; left out",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn date(text: &str) -> Date {
        Date::parse(text).expect("test date")
    }

    const AS_OF: &str = "2026-01-01";

    #[test]
    fn patient_number_bounds() {
        assert_eq!(patient_number(Some(1)), Ok(1));
        assert_eq!(patient_number(Some(2_147_483_647)), Ok(2_147_483_647));
        assert_eq!(
            patient_number(Some(2_147_483_648)).map_err(|p| p.code),
            Err("out-of-range")
        );
        assert_eq!(
            patient_number(Some(0)).map_err(|p| p.code),
            Err("out-of-range")
        );
        assert_eq!(
            patient_number(Some(-4)).map_err(|p| p.code),
            Err("out-of-range")
        );
        assert_eq!(patient_number(None).map_err(|p| p.code), Err("missing"));
    }

    #[test]
    fn names_are_cleaned_or_rejected() {
        assert_eq!(
            person_name(Some("  Mary   Ann ")).as_deref(),
            Ok("Mary Ann")
        );
        assert_eq!(
            person_name(Some("O'Brien-Nguyễn")).as_deref(),
            Ok("O'Brien-Nguyễn")
        );
        assert_eq!(person_name(Some(" \t ")).map_err(|p| p.code), Err("blank"));
        assert_eq!(person_name(None).map_err(|p| p.code), Err("missing"));
    }

    #[test]
    fn birth_date_bounds() {
        let as_of = date(AS_OF);
        assert_eq!(
            birth_date(Some("1900-01-01"), as_of),
            Ok(date("1900-01-01"))
        );
        assert_eq!(birth_date(Some(AS_OF), as_of), Ok(as_of));
        let code = |v| birth_date(Some(v), as_of).map_err(|p| p.code);
        assert_eq!(code("1899-12-31"), Err("before-1900"));
        assert_eq!(code("2026-01-02"), Err("in-future"));
        assert_eq!(code("2023-02-29"), Err("invalid-date"));
        assert_eq!(code("01/02/2020"), Err("invalid-date"));
        assert_eq!(birth_date(None, as_of).map_err(|p| p.code), Err("missing"));
    }

    #[test]
    fn a_patient_is_valid_only_when_all_four_rules_pass() {
        let as_of = date(AS_OF);
        let good = PatientInput {
            patno: Some(4),
            last_name: Some(" Tester "),
            first_name: Some("Test"),
            birth_date: Some("2013-11-26"),
        };
        let patient = validate_patient(good, as_of).expect("valid");
        assert_eq!(patient.last_name, "Tester");
        assert_eq!(patient.dob, date("2013-11-26"));

        let bad = PatientInput {
            patno: Some(0),
            last_name: Some(""),
            first_name: None,
            birth_date: Some("2030-01-01"),
        };
        let findings = validate_patient(bad, as_of).expect_err("invalid");
        let codes: Vec<_> = findings.iter().map(|f| (f.field, f.code)).collect();
        assert_eq!(
            codes,
            [
                ("patient_number", "out-of-range"),
                ("last_name", "blank"),
                ("first_name", "missing"),
                ("dob", "in-future"),
            ]
        );
    }

    #[test]
    fn timestamps_need_an_offset() {
        let ts = "2016-09-28T12:00:00-05:00";
        assert_eq!(source_timestamp(Some(ts)), Ok(ts));
        assert_eq!(
            source_timestamp(Some("2016-09-28 12:00:00")).map_err(|p| p.code),
            Err("invalid-timestamp")
        );
        assert_eq!(source_timestamp(None).map_err(|p| p.code), Err("missing"));
    }

    #[test]
    fn gender_keeps_m_f_u_only() {
        assert_eq!(gender(Some(" m ")), Some("M"));
        assert_eq!(gender(Some("F")), Some("F"));
        assert_eq!(gender(Some("u")), Some("U"));
        assert_eq!(gender(Some("Male")), None);
        assert_eq!(gender(Some("X")), None);
        assert_eq!(gender(None), None);
    }

    #[test]
    fn optional_fields_warn_or_drop() {
        assert_eq!(state(Some(" mo ")), Ok(Some("MO")));
        assert_eq!(state(Some("  ")), Ok(None));
        assert_eq!(
            state(Some("Missouri")).map_err(|p| p.code),
            Err("invalid-state")
        );
        assert_eq!(zip(Some("64106-1234")), Ok(Some("64106-1234")));
        assert_eq!(zip(Some("6410")).map_err(|p| p.code), Err("invalid-zip"));
        assert_eq!(
            phone(Some("(816) 555-0100")).map(|p| p.map(|p| p.as_str().to_owned())),
            Ok(Some("816-555-0100".to_owned()))
        );
        assert_eq!(
            phone(Some("555-0100")).map_err(|p| p.code),
            Err("invalid-phone")
        );
        assert_eq!(email(Some(" a@example.com ")), Ok(Some("a@example.com")));
        assert_eq!(
            email(Some("none")).map_err(|p| p.code),
            Err("invalid-email")
        );
        assert_eq!(family_number(Some(12)), Ok(Some(12)));
        assert_eq!(
            family_number(Some(1 << 40)).map_err(|p| p.code),
            Err("out-of-range")
        );
        assert_eq!(optional_text(Some("  12 Main ")), Some("12 Main"));
        assert_eq!(pass_through(Some("  keep  as is ")), Some("  keep  as is "));
        assert_eq!(pass_through(Some("   ")), None);
        assert_eq!(optional_upper(Some(" gsk ")).as_deref(), Some("GSK"));
        assert_eq!(optional_upper(Some("PMC")).as_deref(), Some("PMC"));
        assert_eq!(optional_upper(Some("")), None);
    }

    #[test]
    fn dose_rules() {
        const KNOWN: CodeList<u16> = CodeList::new(&[3, 10, 20]);
        assert_eq!(cvx_code(Some(20), &KNOWN), Ok(20));
        assert_eq!(
            cvx_code(Some(21), &KNOWN).map_err(|p| p.code),
            Err("unknown-code")
        );
        assert_eq!(
            cvx_code(Some(-20), &KNOWN).map_err(|p| p.code),
            Err("unknown-code")
        );
        assert_eq!(
            cvx_code(Some(65_556), &KNOWN).map_err(|p| p.code),
            Err("unknown-code")
        );
        assert_eq!(cvx_code(None, &KNOWN).map_err(|p| p.code), Err("missing"));

        assert_eq!(history_flag(Some("Y")), Ok(true));
        assert_eq!(history_flag(Some(" N ")), Ok(false));
        assert_eq!(
            history_flag(Some("y")).map_err(|p| p.code),
            Err("invalid-flag")
        );
        assert_eq!(
            history_flag(Some("1")).map_err(|p| p.code),
            Err("invalid-flag")
        );
        assert_eq!(history_flag(None).map_err(|p| p.code), Err("missing"));

        let (as_of, born) = (date(AS_OF), date("2013-11-26"));
        assert_eq!(date_administered(Some("2013-11-26"), as_of, born), Ok(born));
        assert_eq!(date_administered(Some(AS_OF), as_of, born), Ok(as_of));
        let code = |v| date_administered(Some(v), as_of, born).map_err(|p| p.code);
        assert_eq!(code("2013-11-25"), Err("before-birth"));
        assert_eq!(code("2026-01-02"), Err("in-future"));
        assert_eq!(code("2014-13-01"), Err("invalid-date"));

        assert_eq!(
            expiration_date(Some("2027-06-30")),
            Ok(Some(date("2027-06-30")))
        );
        assert_eq!(expiration_date(None), Ok(None));
        assert_eq!(
            expiration_date(Some("2027-06-31")).map_err(|p| p.code),
            Err("invalid-date")
        );
    }

    #[test]
    fn messages_never_carry_values() {
        // Every problem message is static text; make sure none reads like a template.
        let as_of = date(AS_OF);
        let problems = [
            patient_number(None).err(),
            patient_number(Some(0)).err(),
            person_name(Some("")).err(),
            birth_date(Some("x"), as_of).err(),
            state(Some("ZZ")).err(),
            phone(Some("1")).err(),
        ];
        for problem in problems.into_iter().flatten() {
            assert!(!problem.message.contains('{'), "{}", problem.message);
        }
    }

    proptest! {
        #[test]
        fn valid_patients_satisfy_every_rule(
            patno in any::<i64>(), last in ".{0,12}", first in ".{0,12}",
            year in 1850u16..2100, month in 1u8..=12, day in 1u8..=28,
        ) {
            let as_of = date(AS_OF);
            let dob = format!("{year:04}-{month:02}-{day:02}");
            let input = PatientInput {
                patno: Some(patno), last_name: Some(&last), first_name: Some(&first), birth_date: Some(&dob),
            };
            match validate_patient(input, as_of) {
                Ok(p) => {
                    prop_assert!((1..=2_147_483_647).contains(&p.patient_number));
                    prop_assert!(!p.last_name.is_empty() && !p.first_name.is_empty());
                    prop_assert!(p.dob <= as_of && p.dob >= EARLIEST_BIRTH_DATE);
                }
                Err(findings) => prop_assert!(!findings.is_empty()),
            }
        }
    }
}
