//! Deterministic synthetic clinic data with a ground-truth manifest of the rows that are invalid.
//!
//! # Determinism
//!
//! Everything is drawn from ChaCha8 seeded with the user's seed; no clock, no `thread_rng`, no
//! hash-map iteration, and only integer sampling (portable across platforms). Patient *slot* `i`
//! draws from its own ChaCha stream `i`, so a slot's rows depend only on `(seed, i,
//! reference_date)`: seeding N patients yields a prefix of seeding M > N with the same seed, and an
//! orphan dose's patient number can never be filled in by a later, larger run. The value streams
//! of `rand`/`rand_chacha` are pinned by `Cargo.lock`; the golden digest test notices a change.
//!
//! # Invalid rows
//!
//! Slots come in blocks of [`BLOCK`]. In each block one slot is an invalid patient (or an orphan
//! slot) and two other slots carry one invalid dose each; the kinds rotate from block to block,
//! so every [`InvalidKind`] occurs at least once in any run of 6 × 32 = 192 or more slots. Each
//! invalid row is invalid in exactly one way (the doses of an invalid patient are otherwise
//! valid; a patient born in the future gets no doses, since any dose date would be either in the
//! future or before the birth).
//!
//! Validity is judged against the sync's as-of date ("today"), which is at or after the
//! reference date: every date of a valid row lies between 1900-01-01 and the reference date,
//! and the future-dated invalid rows lie in the year 2999, after any plausible "today".
//!
//! Optional columns also carry values the default rules *omit with a warning* (a state `XX`, a
//! ZIP of 4 digits, a phone with a country code, an email `n/a`); those are not rejections and
//! are not in the manifest.

use chrono::{Datelike, Days, NaiveDate, NaiveDateTime, NaiveTime, TimeDelta};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::corpus::{self, ClinicVaccineCode, CorpusError};
use super::model::{Dose, Patient};

/// The first synthetic patient number (KCMO uses 101–121, CDSi 500001–500928).
pub const FIRST_PATNO: i64 = 1_000_001;
/// The first synthetic dose id (KCMO uses 1–177, CDSi 600001–602142).
pub const FIRST_IM_ID: i64 = 10_000_001;
/// The largest patient number the default rules accept.
pub const MAX_VALID_PATNO: i64 = 2_147_483_647;
/// Slot `i` of an out-of-range patient gets patient number `OUT_OF_RANGE_PATNO + i`.
pub const OUT_OF_RANGE_PATNO: i64 = MAX_VALID_PATNO + 1;
/// The largest `count`: slot numbers stay within the valid patient number range.
pub const MAX_COUNT: u32 = (MAX_VALID_PATNO - FIRST_PATNO + 1) as u32;
/// Patient slots per block of the invalid-row schedule.
pub const BLOCK: u32 = 32;
/// CVX codes of the "unknown CVX" doses: four digits, which CDC never assigns (codes have at
/// most three), so they stay unknown however current the transform's list is.
pub const UNKNOWN_CVX_CODES: [i64; 3] = [9999, 1400, 2080];
/// History flags of the "bad history" doses (anything but `Y`/`N`).
pub const BAD_HISTORY_FLAGS: [&str; 3] = ["X", "1", "U"];
/// The year of future-dated invalid rows: after the reference date and after any real "today".
pub const FUTURE_YEAR: i32 = 2999;

/// The default reference date, 2026-01-01: fixed, so that data is reproducible, and in the past.
pub const DEFAULT_REFERENCE_DATE: NaiveDate = match NaiveDate::from_ymd_opt(2026, 1, 1) {
    Some(date) => date,
    None => panic!("2026-01-01 is a date"),
};

/// Parameters of the synthetic generator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SyntheticOptions {
    /// Number of patient slots (patients, including the invalid ones and orphan slots).
    pub count: u32,
    /// The seed; the same options give the same rows on every platform.
    pub seed: u64,
    /// The generator's "today": valid dates are at or before it. Must be on or before the day
    /// the data is synced, and within 1991-01-01 ..= 2900-12-31 (so that 90-year-olds are born
    /// after 1900 and year-2999 rows are in its future).
    pub reference_date: NaiveDate,
}

impl SyntheticOptions {
    /// Options with the default reference date ([`DEFAULT_REFERENCE_DATE`]).
    pub fn new(count: u32, seed: u64) -> Self {
        SyntheticOptions {
            count,
            seed,
            reference_date: DEFAULT_REFERENCE_DATE,
        }
    }

    /// Checks the bounds documented on the fields.
    pub fn validate(&self) -> Result<(), String> {
        let year = self.reference_date.year();
        if !(1991..=2900).contains(&year) {
            return Err(format!(
                "reference date year {year} is outside 1991..=2900: valid birth dates must be \
                 after 1900 and future-dated invalid rows (year {FUTURE_YEAR}) after it"
            ));
        }
        if self.count > MAX_COUNT {
            return Err(format!("count {} exceeds {MAX_COUNT}", self.count));
        }
        Ok(())
    }
}

/// The table an invalid row lives in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SourceTable {
    /// Patients.
    Mpfile,
    /// Doses.
    Imfile,
}

/// Why a row is rejected (patients) or rejected / held back (doses) by the default rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum InvalidKind {
    /// `lname` is whitespace only.
    BlankLastName,
    /// `fname` is whitespace only.
    BlankFirstName,
    /// `birth_date` is after the as-of date (in the year 2999).
    BirthDateInFuture,
    /// `birth_date` is before 1900-01-01.
    BirthDateBefore1900,
    /// `patno` is above 2 147 483 647.
    PatientNumberOutOfRange,
    /// `cvx` is not a known CVX code.
    UnknownCvx,
    /// `history` is neither `Y` nor `N`.
    BadHistoryFlag,
    /// `admin_date` is after the as-of date (in the year 2999).
    AdminDateInFuture,
    /// `admin_date` is before the patient's `birth_date`.
    AdminDateBeforeBirth,
    /// The dose's `patno` has no `mpfile` row (held back, not sent).
    OrphanDose,
    /// The dose is valid in itself but its patient is rejected: held back, not sent (or, for an
    /// out-of-range patient number, rejected by the dose's own `patno` rule as well).
    DoseOfInvalidPatient,
}

impl InvalidKind {
    /// Every kind, in declaration order.
    pub const ALL: [InvalidKind; 11] = [
        InvalidKind::BlankLastName,
        InvalidKind::BlankFirstName,
        InvalidKind::BirthDateInFuture,
        InvalidKind::BirthDateBefore1900,
        InvalidKind::PatientNumberOutOfRange,
        InvalidKind::UnknownCvx,
        InvalidKind::BadHistoryFlag,
        InvalidKind::AdminDateInFuture,
        InvalidKind::AdminDateBeforeBirth,
        InvalidKind::OrphanDose,
        InvalidKind::DoseOfInvalidPatient,
    ];

    /// The table whose rows have this kind.
    pub fn table(self) -> SourceTable {
        match self {
            InvalidKind::BlankLastName
            | InvalidKind::BlankFirstName
            | InvalidKind::BirthDateInFuture
            | InvalidKind::BirthDateBefore1900
            | InvalidKind::PatientNumberOutOfRange => SourceTable::Mpfile,
            _ => SourceTable::Imfile,
        }
    }

    /// A stable kebab-case name.
    pub fn name(self) -> &'static str {
        match self {
            InvalidKind::BlankLastName => "blank-last-name",
            InvalidKind::BlankFirstName => "blank-first-name",
            InvalidKind::BirthDateInFuture => "birth-date-in-future",
            InvalidKind::BirthDateBefore1900 => "birth-date-before-1900",
            InvalidKind::PatientNumberOutOfRange => "patient-number-out-of-range",
            InvalidKind::UnknownCvx => "unknown-cvx",
            InvalidKind::BadHistoryFlag => "bad-history-flag",
            InvalidKind::AdminDateInFuture => "admin-date-in-future",
            InvalidKind::AdminDateBeforeBirth => "admin-date-before-birth",
            InvalidKind::OrphanDose => "orphan-dose",
            InvalidKind::DoseOfInvalidPatient => "dose-of-invalid-patient",
        }
    }
}

impl std::fmt::Display for InvalidKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// One row of the ground truth: a row the default rules must not send.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct InvalidRow {
    /// `mpfile` or `imfile` (always `kind.table()`).
    pub table: SourceTable,
    /// `patno` for patients, `im_id` for doses.
    pub key: i64,
    /// The one way the row is invalid.
    pub kind: InvalidKind,
}

impl InvalidRow {
    fn new(kind: InvalidKind, key: i64) -> Self {
        InvalidRow {
            table: kind.table(),
            key,
            kind,
        }
    }
}

/// The rows of one patient slot: the patient (absent for an orphan slot), its doses, and which of
/// them are invalid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntheticSlot {
    /// The `mpfile` row, or `None` when the slot's doses are orphans.
    pub patient: Option<Patient>,
    /// The `imfile` rows, in `im_id` order.
    pub doses: Vec<Dose>,
    /// The invalid rows among the above.
    pub invalid: Vec<InvalidRow>,
}

/// Iterator over the synthetic rows, one patient slot at a time (memory does not grow with the
/// count).
#[derive(Debug)]
pub struct SyntheticRows {
    options: SyntheticOptions,
    catalogue: Catalogue,
    base: ChaCha8Rng,
    next_slot: u32,
    next_im_id: i64,
    plan: Option<(u32, BlockPlan)>,
}

impl SyntheticRows {
    /// A generator for `options`; fails on out-of-bounds options or an unreadable code list.
    pub fn new(options: &SyntheticOptions) -> Result<Self, SyntheticError> {
        options.validate().map_err(SyntheticError::Options)?;
        Ok(SyntheticRows {
            options: *options,
            catalogue: Catalogue::load()?,
            base: ChaCha8Rng::seed_from_u64(options.seed),
            next_slot: 0,
            next_im_id: FIRST_IM_ID,
            plan: None,
        })
    }

    fn rng(&self, stream: u64) -> ChaCha8Rng {
        let mut rng = self.base.clone();
        rng.set_stream(stream);
        rng
    }

    fn role(&mut self, slot: u32) -> Role {
        let block = slot / BLOCK;
        let plan = match self.plan {
            Some((b, plan)) if b == block => plan,
            _ => {
                // Block plans draw from streams far above any slot's stream.
                let mut rng = self.rng((1 << 63) | u64::from(block));
                let plan = BlockPlan::draw(&mut rng, block);
                self.plan = Some((block, plan));
                plan
            }
        };
        plan.role(slot % BLOCK)
    }

    fn slot(&mut self, slot: u32) -> SyntheticSlot {
        let role = self.role(slot);
        let mut rng = self.rng(u64::from(slot));
        let reference = self.options.reference_date;
        let mut patient = person(&mut rng, FIRST_PATNO + i64::from(slot), reference);
        let mut invalid = Vec::new();

        let patient_kind = match role {
            Role::InvalidPatient(kind) => Some(kind),
            _ => None,
        };
        match patient_kind {
            Some(InvalidKind::BlankLastName) => patient.lname = blank(&mut rng),
            Some(InvalidKind::BlankFirstName) => patient.fname = blank(&mut rng),
            Some(InvalidKind::BirthDateInFuture) => patient.birth_date = future_date(&mut rng),
            Some(InvalidKind::BirthDateBefore1900) => {
                patient.birth_date = before_1900(&mut rng);
            }
            Some(InvalidKind::PatientNumberOutOfRange) => {
                patient.patno = OUT_OF_RANGE_PATNO + i64::from(slot);
            }
            _ => {}
        }

        // How many doses: children get more; some roles need at least one, and nobody can have
        // a valid dose before a birth in the future.
        let age_years = (reference - patient.birth_date).num_days() / 365;
        let mut dose_count = if patient.birth_date > reference {
            0
        } else if age_years < 1 {
            rng.random_range(0..=6u32)
        } else if age_years < 19 {
            rng.random_range(2..=12u32)
        } else {
            rng.random_range(0..=5u32)
        };
        if patient.birth_date <= reference && role != Role::Valid {
            dose_count = dose_count.max(1);
        }

        let child = age_years < 19;
        let mut doses: Vec<Dose> = (0..dose_count)
            .map(|_| self.catalogue.dose(&mut rng, &patient, reference, child))
            .collect();
        doses.sort_by_key(|d| d.admin_date);
        for dose in &mut doses {
            dose.im_id = self.next_im_id;
            self.next_im_id += 1;
        }

        if let Some(kind) = patient_kind {
            invalid.push(InvalidRow::new(kind, patient.patno));
            for dose in &doses {
                invalid.push(InvalidRow::new(
                    InvalidKind::DoseOfInvalidPatient,
                    dose.im_id,
                ));
            }
        }
        let patient = match role {
            Role::Orphan => {
                for dose in &doses {
                    invalid.push(InvalidRow::new(InvalidKind::OrphanDose, dose.im_id));
                }
                None
            }
            Role::InvalidDose(kind) if !doses.is_empty() => {
                let i = rng.random_range(0..doses.len() as u32) as usize;
                if let Some(dose) = doses.get_mut(i) {
                    spoil_dose(&mut rng, dose, kind, &patient);
                    invalid.push(InvalidRow::new(kind, dose.im_id));
                }
                Some(patient)
            }
            Role::Valid | Role::InvalidPatient(_) | Role::InvalidDose(_) => Some(patient),
        };
        SyntheticSlot {
            patient,
            doses,
            invalid,
        }
    }
}

impl Iterator for SyntheticRows {
    type Item = SyntheticSlot;

    fn next(&mut self) -> Option<SyntheticSlot> {
        if self.next_slot >= self.options.count {
            return None;
        }
        let slot = self.next_slot;
        self.next_slot += 1;
        Some(self.slot(slot))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = (self.options.count - self.next_slot) as usize;
        (left, Some(left))
    }
}

/// The generator could not start.
#[derive(Debug, thiserror::Error)]
pub enum SyntheticError {
    /// The options are out of bounds.
    #[error("invalid synthetic options: {0}")]
    Options(String),
    /// An embedded code list did not parse.
    #[error(transparent)]
    Corpus(#[from] CorpusError),
}

/// What one slot of a block is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Valid,
    InvalidPatient(InvalidKind),
    Orphan,
    InvalidDose(InvalidKind),
}

/// Kinds of the one special slot per block, rotating by block.
const PATIENT_SLOT_KINDS: [Option<InvalidKind>; 6] = [
    Some(InvalidKind::BlankLastName),
    Some(InvalidKind::BlankFirstName),
    Some(InvalidKind::BirthDateInFuture),
    Some(InvalidKind::BirthDateBefore1900),
    Some(InvalidKind::PatientNumberOutOfRange),
    None, // an orphan slot
];

/// Kinds of the two invalid-dose slots per block, rotating.
const DOSE_KINDS: [InvalidKind; 4] = [
    InvalidKind::UnknownCvx,
    InvalidKind::BadHistoryFlag,
    InvalidKind::AdminDateInFuture,
    InvalidKind::AdminDateBeforeBirth,
];

#[derive(Debug, Clone, Copy)]
struct BlockPlan {
    special: u32,
    special_kind: Option<InvalidKind>,
    bad_doses: [(u32, InvalidKind); 2],
}

impl BlockPlan {
    fn draw(rng: &mut ChaCha8Rng, block: u32) -> Self {
        let special = rng.random_range(0..BLOCK);
        let first = (special + rng.random_range(1..BLOCK)) % BLOCK;
        let mut second = (special + rng.random_range(1..BLOCK)) % BLOCK;
        if second == first {
            second = (first + 1) % BLOCK;
            if second == special {
                second = (second + 1) % BLOCK;
            }
        }
        let b = block as usize;
        BlockPlan {
            special,
            special_kind: PATIENT_SLOT_KINDS[b % PATIENT_SLOT_KINDS.len()],
            bad_doses: [
                (first, DOSE_KINDS[(2 * b) % DOSE_KINDS.len()]),
                (second, DOSE_KINDS[(2 * b + 1) % DOSE_KINDS.len()]),
            ],
        }
    }

    fn role(&self, position: u32) -> Role {
        if position == self.special {
            return self.special_kind.map_or(Role::Orphan, Role::InvalidPatient);
        }
        self.bad_doses
            .iter()
            .find(|(p, _)| *p == position)
            .map_or(Role::Valid, |&(_, kind)| Role::InvalidDose(kind))
    }
}

// ---- value pools -------------------------------------------------------------------------
// Mostly ordinary names, with the shapes that break naive code: apostrophes, hyphens, non-ASCII
// letters (precomposed), inner spaces.

const FIRST_NAMES: &[&str] = &[
    "James",
    "Mary",
    "Robert",
    "Patricia",
    "John",
    "Jennifer",
    "Michael",
    "Linda",
    "David",
    "Elizabeth",
    "William",
    "Barbara",
    "Richard",
    "Susan",
    "Joseph",
    "Jessica",
    "Thomas",
    "Sarah",
    "Charles",
    "Karen",
    "Daniel",
    "Emily",
    "Matthew",
    "Ashley",
    "Anthony",
    "Olivia",
    "Mark",
    "Emma",
    "Liam",
    "Ava",
    "Noah",
    "Sophia",
    "Ethan",
    "Mia",
    "Mason",
    "Isabella",
    "Aiden",
    "Harper",
    "Jayden",
    "Abigail",
    "Luis",
    "Maria",
    "Carlos",
    "Ana",
    "Mohamed",
    "Fatima",
    "Wei",
    "Mei",
    "Hiroshi",
    "Yuki",
    "Kwame",
    "Amara",
    "Dmitri",
    "Olga",
    "Priya",
    "Arjun",
    "José",
    "Zoë",
    "Renée",
    "Chloé",
    "François",
    "Björn",
    "Søren",
    "Siobhán",
    "Ngọc",
    "Thảo",
    "Jürgen",
    "Inés",
    "D'Andre",
    "De'Ja",
    "Mary-Kate",
    "Jean-Luc",
    "Anne-Marie",
    "La Toya",
];

const LAST_NAMES: &[&str] = &[
    "Smith",
    "Johnson",
    "Williams",
    "Brown",
    "Jones",
    "Garcia",
    "Miller",
    "Davis",
    "Rodriguez",
    "Martinez",
    "Hernandez",
    "Lopez",
    "Gonzalez",
    "Wilson",
    "Anderson",
    "Thomas",
    "Taylor",
    "Moore",
    "Jackson",
    "Martin",
    "Lee",
    "Perez",
    "Thompson",
    "White",
    "Harris",
    "Clark",
    "Lewis",
    "Robinson",
    "Walker",
    "Young",
    "Allen",
    "King",
    "Wright",
    "Scott",
    "Green",
    "Baker",
    "Adams",
    "Nelson",
    "Hill",
    "Campbell",
    "Mitchell",
    "Patel",
    "Kim",
    "Chen",
    "Tran",
    "Okafor",
    "Haddad",
    "Kowalski",
    "Ivanova",
    "O'Brien",
    "O'Connor",
    "D'Angelo",
    "McDonald",
    "Smith-Jones",
    "Garcia-Lopez",
    "Nguyễn",
    "Trần",
    "Müller",
    "Schäfer",
    "Núñez",
    "Peña",
    "Muñoz",
    "Gómez",
    "Sørensen",
    "Çelik",
    "Van der Berg",
    "De La Cruz",
];

const STREETS: &[&str] = &[
    "Main St",
    "Grand Blvd",
    "Troost Ave",
    "Prospect Ave",
    "E 31st St",
    "W 39th St",
    "Wornall Rd",
    "Broadway Blvd",
    "NE Vivion Rd",
    "Independence Ave",
    "Blue Ridge Blvd",
    "N Oak Trfy",
    "Holmes Rd",
    "State Line Rd",
    "Linwood Blvd",
];
const CITIES: &[&str] = &[
    "Kansas City",
    "Kansas City",
    "Kansas City",
    "Independence",
    "Lee's Summit",
    "Overland Park",
    "Raytown",
    "Grandview",
    "North Kansas City",
    "Gladstone",
    "Liberty",
    "Blue Springs",
    "Olathe",
];
const RACES: &[&str] = &[
    "White",
    "Black or African American",
    "Asian",
    "American Indian or Alaska Native",
    "Native Hawaiian or Other Pacific Islander",
    "Other",
    "Unknown",
];
const ETHNICITIES: &[&str] = &["Hispanic or Latino", "Not Hispanic or Latino", "Unknown"];
const NOTES: &[&str] = &[
    "Prefers Spanish",
    "Needs interpreter (Vietnamese)",
    "Egg allergy per parent",
    "Moved out of state; records requested",
    "Parent declined flu vaccine",
    "Call guardian before 5 pm\nLeave no voicemail",
    "Card says \"DTaP x3\"; dates unclear",
];
const MVX_CODES: &[&str] = &[
    "PFR", "MSD", "SKB", "PMC", "MOD", "SEQ", "MED", "WAL", "NOV",
];
const SITES: &[&str] = &[
    "LD",
    "RD",
    "LT",
    "RT",
    "Left deltoid",
    "Right thigh",
    "PO",
    "IN",
];
const DOSAGES: &[&str] = &["0.5 mL", "0.5 mL", "1 mL", "0.25 mL", "0.1 mL", "2 mL"];
const GIVEN_BY: &[&str] = &[
    "A. Nguyen RN",
    "B. Okafor LPN",
    "C. Díaz RN",
    "D. O'Neil MA",
    "kp",
];
const VFC: &[(&str, &str)] = &[
    ("V01", "Not VFC eligible"),
    ("V02", "VFC eligible - Medicaid/Medicaid Managed Care"),
    ("V03", "VFC eligible - Uninsured"),
    ("V04", "VFC eligible - American Indian/Alaska Native"),
    ("V05", "VFC eligible - Underinsured"),
];
const COMMENTS: &[&str] = &[
    "Patient tolerated well",
    "Mild soreness reported at previous dose",
    "From state registry card",
    "Lot per package insert; \"see VIS\" given",
];

// ---- drawing helpers ---------------------------------------------------------------------

fn pick<'a, T: ?Sized>(rng: &mut ChaCha8Rng, items: &[&'a T]) -> &'a T {
    items[rng.random_range(0..items.len() as u32) as usize]
}

/// True with probability `percent`/100 (integer sampling, portable).
fn chance(rng: &mut ChaCha8Rng, percent: u32) -> bool {
    rng.random_range(0..100u32) < percent
}

fn maybe<T>(rng: &mut ChaCha8Rng, percent: u32, f: impl FnOnce(&mut ChaCha8Rng) -> T) -> Option<T> {
    chance(rng, percent).then(|| f(rng))
}

fn days_before(date: NaiveDate, days: u32) -> NaiveDate {
    date - Days::new(u64::from(days))
}

fn days_after(date: NaiveDate, days: u32) -> NaiveDate {
    date + Days::new(u64::from(days))
}

/// A uniformly random date in `from ..= to` (`from <= to`).
fn date_between(rng: &mut ChaCha8Rng, from: NaiveDate, to: NaiveDate) -> NaiveDate {
    let span = (to - from).num_days().max(0) as u32;
    days_after(from, rng.random_range(0..=span))
}

fn future_date(rng: &mut ChaCha8Rng) -> NaiveDate {
    let start = NaiveDate::from_ymd_opt(FUTURE_YEAR, 1, 1).unwrap_or(NaiveDate::MAX);
    days_after(start, rng.random_range(0..365))
}

fn before_1900(rng: &mut ChaCha8Rng) -> NaiveDate {
    let start = NaiveDate::from_ymd_opt(1900, 1, 1).unwrap_or(NaiveDate::MIN);
    days_before(start, rng.random_range(1..=20_000))
}

fn blank(rng: &mut ChaCha8Rng) -> String {
    " ".repeat(rng.random_range(1..=3))
}

/// A change time in the two years before the reference date, sometimes with milliseconds.
fn updated_at(rng: &mut ChaCha8Rng, not_before: NaiveDate, reference: NaiveDate) -> NaiveDateTime {
    let end = reference.and_time(NaiveTime::MIN);
    let window_start = days_before(reference, 730).and_time(NaiveTime::MIN);
    let start = window_start
        .max(not_before.and_time(NaiveTime::MIN))
        .min(end);
    let span = (end - start).num_seconds().max(1) as u32;
    let mut t = end - TimeDelta::seconds(i64::from(rng.random_range(1..=span)));
    if chance(rng, 25) {
        t += TimeDelta::milliseconds(i64::from(rng.random_range(1..1000)));
    }
    t
}

/// A name with the clerical noise the patient rules clean up (stray and double spaces,
/// capitals), but never blank.
fn noisy(rng: &mut ChaCha8Rng, name: &str) -> String {
    match rng.random_range(0..100u32) {
        0..=1 => format!(" {name}"),
        2..=3 => format!("{name} "),
        4 if name.contains(' ') => name.replacen(' ', "  ", 1),
        5..=6 => name.to_uppercase(),
        _ => name.to_owned(),
    }
}

fn phone(rng: &mut ChaCha8Rng) -> String {
    let area = pick(rng, &["816", "913", "660", "785"]);
    // 555-01xx numbers are reserved for fiction.
    let line = rng.random_range(100..200u32);
    match rng.random_range(0..7u32) {
        0 | 1 => format!("{area}-555-0{line}"),
        2 => format!("({area}) 555-0{line}"),
        3 => format!("{area}.555.0{line}"),
        4 => format!("{area}5550{line}"),
        5 => format!("{area} 555 0{line}"),
        _ => format!("+1 {area}-555-0{line}"),
    }
}

fn ascii_lower(s: &str) -> String {
    s.chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

fn person(rng: &mut ChaCha8Rng, patno: i64, reference: NaiveDate) -> Patient {
    let first = pick(rng, FIRST_NAMES);
    let mut last = pick(rng, LAST_NAMES).to_owned();
    if chance(rng, 4) {
        last = format!("{last}-{}", pick(rng, LAST_NAMES));
    }
    let mname = maybe(rng, 40, |rng| {
        if chance(rng, 30) {
            let initial = pick(rng, FIRST_NAMES).chars().next().unwrap_or('A');
            format!("{initial}.")
        } else {
            pick(rng, FIRST_NAMES).to_owned()
        }
    });

    // 45 % children, the rest adults up to 90.
    let age_days = if chance(rng, 45) {
        rng.random_range(0..=18 * 365)
    } else {
        rng.random_range(18 * 365..=90 * 365)
    };
    let birth_date = days_before(reference, age_days);

    let sex = match rng.random_range(0..100u32) {
        0..=45 => Some("F".to_owned()),
        46..=91 => Some("M".to_owned()),
        92..=95 => Some("U".to_owned()),
        96 => Some("f".to_owned()),
        _ => None,
    };

    let has_address = chance(rng, 65);
    let addr1 = has_address.then(|| {
        let number = rng.random_range(100..13_000u32);
        format!("{number} {}", pick(rng, STREETS))
    });
    let addr2 = if has_address {
        maybe(rng, 12, |rng| match rng.random_range(0..3u32) {
            0 => format!("Apt {}", rng.random_range(1..40u32)),
            1 => format!("Unit {}B", rng.random_range(1..12u32)),
            _ => "c/o grandmother".to_owned(),
        })
    } else {
        None
    };
    let city = maybe(rng, 70, |rng| pick(rng, CITIES).to_owned());
    let state = maybe(rng, 70, |rng| {
        match rng.random_range(0..100u32) {
            0..=62 => "MO",
            63..=93 => "KS",
            94..=95 => "mo",
            96..=97 => "IA",
            _ => "XX",
        }
        .to_owned()
    });
    let zip = maybe(rng, 65, |rng| {
        let five = format!("6{:04}", rng.random_range(4000..7000u32));
        match rng.random_range(0..100u32) {
            0..=74 => five,
            75..=95 => format!("{five}-{:04}", rng.random_range(1..10_000u32)),
            96..=97 => format!("{five}{:04}", rng.random_range(1..10_000u32)),
            _ => five[..4].to_owned(),
        }
    });
    let home_phone = maybe(rng, 45, phone);
    let cell_phone = maybe(rng, 55, phone);
    let email = maybe(rng, 30, |rng| {
        if chance(rng, 5) {
            return pick(rng, &["n/a", "none", "declined"]).to_owned();
        }
        let mut local = format!("{}.{}", ascii_lower(first), ascii_lower(&last));
        if chance(rng, 50) {
            local.push_str(&rng.random_range(1..100u32).to_string());
        }
        format!(
            "{local}@{}",
            pick(rng, &["example.com", "example.org", "example.net"])
        )
    });
    let race = maybe(rng, 60, |rng| pick(rng, RACES).to_owned());
    let ethnicity = maybe(rng, 55, |rng| pick(rng, ETHNICITIES).to_owned());
    let family_no = maybe(rng, 35, |rng| i64::from(rng.random_range(1..100_000u32)));
    let notes = maybe(rng, 8, |rng| pick(rng, NOTES).to_owned());
    let updated_at = updated_at(rng, birth_date, reference);

    Patient {
        patno,
        lname: noisy(rng, &last),
        fname: noisy(rng, first),
        mname,
        birth_date,
        sex,
        addr1,
        addr2,
        city,
        state,
        zip,
        home_phone,
        cell_phone,
        email,
        race,
        ethnicity,
        family_no,
        notes,
        updated_at,
    }
}

/// Makes a valid dose invalid in exactly one way.
fn spoil_dose(rng: &mut ChaCha8Rng, dose: &mut Dose, kind: InvalidKind, patient: &Patient) {
    match kind {
        InvalidKind::UnknownCvx => {
            dose.cvx =
                UNKNOWN_CVX_CODES[rng.random_range(0..UNKNOWN_CVX_CODES.len() as u32) as usize];
        }
        InvalidKind::BadHistoryFlag => dose.history = pick(rng, &BAD_HISTORY_FLAGS).to_owned(),
        InvalidKind::AdminDateInFuture => dose.admin_date = future_date(rng),
        InvalidKind::AdminDateBeforeBirth => {
            dose.admin_date = days_before(patient.birth_date, rng.random_range(1..=400));
        }
        _ => {}
    }
}

// ---- vaccines ----------------------------------------------------------------------------

/// One Active CVX code and the clinic codes that name it.
#[derive(Debug, Clone)]
struct Vaccine {
    cvx: i64,
    description: String,
    clinic: Vec<ClinicVaccineCode>,
}

/// The Active CVX codes (ascending) with their clinic code rows.
#[derive(Debug, Clone)]
struct Catalogue {
    vaccines: Vec<Vaccine>,
}

impl Catalogue {
    fn load() -> Result<Self, CorpusError> {
        let clinic = corpus::clinic_vaccine_codes()?;
        let mut vaccines: Vec<Vaccine> = corpus::cvx_codes()?
            .into_iter()
            .filter(|c| c.status == "Active")
            .map(|c| Vaccine {
                cvx: c.cvx,
                clinic: clinic.iter().filter(|v| v.cvx == c.cvx).cloned().collect(),
                description: c.short_description,
            })
            .collect();
        vaccines.sort_by_key(|v| v.cvx);
        Ok(Catalogue { vaccines })
    }

    /// A valid dose for `patient` (im_id assigned by the caller).
    fn dose(
        &self,
        rng: &mut ChaCha8Rng,
        patient: &Patient,
        reference: NaiveDate,
        child: bool,
    ) -> Dose {
        let vaccine = &self.vaccines[rng.random_range(0..self.vaccines.len() as u32) as usize];
        let (vac_code, vac_desc, clinic_mvx, clinic_lot) = if vaccine.clinic.is_empty() {
            (None, vaccine.description.clone(), None, None)
        } else {
            let row = &vaccine.clinic[rng.random_range(0..vaccine.clinic.len() as u32) as usize];
            (
                Some(row.vac_code.clone()),
                row.vac_desc.clone(),
                row.mvx.clone(),
                row.lot_no.clone(),
            )
        };
        // Adults' records reach back 25 years at most; children's to birth.
        let earliest = patient.birth_date.max(days_before(reference, 25 * 365));
        let admin_date = date_between(rng, earliest, reference);
        let history = chance(rng, 20);
        let mvx = clinic_mvx.or_else(|| maybe(rng, 70, |rng| pick(rng, MVX_CODES).to_owned()));
        let lot_no = if history {
            None
        } else {
            clinic_lot.or_else(|| maybe(rng, 75, lot_number))
        };
        let exp_date = lot_no.as_ref().and_then(|_| {
            maybe(rng, 50, |rng| {
                days_after(admin_date, rng.random_range(90..=720))
            })
        });
        let administered_here = !history;
        let provider = (administered_here && chance(rng, 70))
            .then(|| format!("KC{:02}", rng.random_range(1..=15u32)));
        let dosage = (administered_here && chance(rng, 60)).then(|| pick(rng, DOSAGES).to_owned());
        let site = (administered_here && chance(rng, 60)).then(|| pick(rng, SITES).to_owned());
        let given_by =
            (administered_here && chance(rng, 50)).then(|| pick(rng, GIVEN_BY).to_owned());
        let vfc = (administered_here && chance(rng, if child { 70 } else { 20 })).then(|| {
            if child {
                VFC[rng.random_range(0..VFC.len() as u32) as usize]
            } else {
                VFC[0]
            }
        });
        let encounter_id = maybe(rng, 50, |rng| {
            format!("E{:08}", rng.random_range(0..100_000_000u32))
        });
        let comments = maybe(rng, 5, |rng| pick(rng, COMMENTS).to_owned());
        Dose {
            im_id: 0,
            patno: patient.patno,
            vac_code,
            vac_desc: Some(vac_desc),
            cvx: vaccine.cvx,
            mvx,
            lot_no,
            exp_date,
            admin_date,
            history: if history { "Y" } else { "N" }.to_owned(),
            provider,
            dosage,
            site,
            given_by,
            vfc_code: vfc.map(|(code, _)| code.to_owned()),
            vfc_desc: vfc.map(|(_, desc)| desc.to_owned()),
            encounter_id,
            comments,
            updated_at: updated_at(rng, admin_date, reference),
        }
    }
}

fn lot_number(rng: &mut ChaCha8Rng) -> String {
    let letter = |rng: &mut ChaCha8Rng| char::from(b'A' + rng.random_range(0..26u8));
    match rng.random_range(0..4u32) {
        0 => format!(
            "{}{}{:04}",
            letter(rng),
            letter(rng),
            rng.random_range(0..10_000u32)
        ),
        1 => rng.random_range(1_000..10_000_000u32).to_string(),
        2 => format!(
            "{}{:04}{}{}",
            letter(rng),
            rng.random_range(0..10_000u32),
            letter(rng),
            letter(rng)
        ),
        _ => format!("{:06}{}", rng.random_range(0..1_000_000u32), letter(rng)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn generate(count: u32, seed: u64) -> Vec<SyntheticSlot> {
        SyntheticRows::new(&SyntheticOptions::new(count, seed))
            .expect("generator")
            .collect()
    }

    #[test]
    fn a_smaller_run_is_a_prefix_of_a_larger_one() {
        let small = generate(70, 9);
        let large = generate(200, 9);
        assert_eq!(small[..], large[..70]);
    }

    #[test]
    fn every_block_has_one_special_slot_and_two_bad_doses() {
        let slots = generate(BLOCK * 4, 3);
        for block in slots.chunks(BLOCK as usize) {
            let specials = block
                .iter()
                .filter(|s| {
                    s.patient.is_none() || s.invalid.iter().any(|r| r.table == SourceTable::Mpfile)
                })
                .count();
            assert_eq!(specials, 1);
            let bad_doses = block
                .iter()
                .flat_map(|s| &s.invalid)
                .filter(|r| {
                    !matches!(
                        r.kind,
                        InvalidKind::OrphanDose | InvalidKind::DoseOfInvalidPatient
                    ) && r.table == SourceTable::Imfile
                })
                .count();
            assert_eq!(bad_doses, 2);
        }
    }

    #[test]
    fn options_out_of_bounds_are_refused() {
        let mut options = SyntheticOptions::new(10, 1);
        options.reference_date = NaiveDate::from_ymd_opt(1950, 1, 1).expect("date");
        assert!(SyntheticRows::new(&options).is_err());
        options.reference_date = NaiveDate::from_ymd_opt(2999, 1, 1).expect("date");
        assert!(SyntheticRows::new(&options).is_err());
    }

    #[test]
    fn unknown_cvx_codes_are_not_in_the_code_list() -> Result<(), CorpusError> {
        let known = corpus::cvx_codes()?;
        for code in UNKNOWN_CVX_CODES {
            assert!(known.iter().all(|c| c.cvx != code), "{code}");
        }
        Ok(())
    }
}
