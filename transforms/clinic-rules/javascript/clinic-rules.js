// The default mapping rules of docs/default-mapping.md, as plain functions over column values:
// the JavaScript twin of the Rust `clinic-rules` crate (transforms/clinic-rules/src/lib.rs).
// Shared by the JavaScript `patients` and `vaccine-doses` modules (their folders link to this
// file), as the Rust crate is shared by the Rust modules: the dose module holds back the doses of
// exactly the patients the patient rules reject, so those rules must exist once.
//
// Each rule takes a column value as delivered (`null` = NULL) and returns either the value to
// send or a `Problem`: a stable code plus a message. Messages never quote the value: findings
// end up in logs and reports, and rows are protected health information. Codes and messages are
// the Rust crate's, word for word, so the modules give identical reports.
//
// `./rules.js` resolves beside whichever path loads this file: in a module folder it is that
// folder's link to guest-sdk/javascript/rules.js, and here (where Node.js resolves it, following
// the link to its target) it is this folder's link to the same file.

import {
  collapseWhitespace,
  isCalendarDate,
  isTimestampWithOffset,
  nonBlank,
  normalizePhone,
  normalizeState,
  normalizeZip,
  plausibleEmail,
  trim,
} from './rules.js';

/** Every skip, reject and warning code the default modules use (listed in transforms/README.md). */
export const codes = Object.freeze({
  MISSING: 'missing',
  BLANK: 'blank',
  OUT_OF_RANGE: 'out-of-range',
  INVALID_DATE: 'invalid-date',
  IN_FUTURE: 'in-future',
  BEFORE_1900: 'before-1900',
  BEFORE_BIRTH: 'before-birth',
  INVALID_TIMESTAMP: 'invalid-timestamp',
  UNKNOWN_CODE: 'unknown-code',
  INVALID_FLAG: 'invalid-flag',
  PATIENT_MISMATCH: 'patient-mismatch',
  INVALID_STATE: 'invalid-state',
  INVALID_ZIP: 'invalid-zip',
  INVALID_PHONE: 'invalid-phone',
  INVALID_EMAIL: 'invalid-email',
  PATIENT_NOT_FOUND: 'patient-not-found',
  PATIENT_NOT_SENT: 'patient-not-sent',
});

/** Why a value is not sent. `message` is fixed text: never build it from the value. */
export class Problem {
  constructor(code, message) {
    this.code = code;
    this.message = message;
    Object.freeze(this);
  }

  /** The finding for output field `field`. */
  at(field) {
    return { field, code: this.code, message: this.message };
  }
}

const MISSING = new Problem(codes.MISSING, 'the value is NULL');
const INVALID_DATE = new Problem(codes.INVALID_DATE, 'the value is not a YYYY-MM-DD calendar date');
const PATIENT_NUMBER_OUT_OF_RANGE = new Problem(
  codes.OUT_OF_RANGE,
  'the patient number is not between 1 and 2147483647',
);
const BLANK_NAME = new Problem(codes.BLANK, 'the name is empty or only whitespace');
const BIRTH_DATE_IN_FUTURE = new Problem(codes.IN_FUTURE, 'the birth date is after the as-of date');
const BIRTH_DATE_BEFORE_1900 = new Problem(
  codes.BEFORE_1900,
  'the birth date is before 1900-01-01',
);
const INVALID_TIMESTAMP = new Problem(
  codes.INVALID_TIMESTAMP,
  'the value is not an ISO 8601 timestamp with a UTC offset',
);
const INVALID_STATE = new Problem(
  codes.INVALID_STATE,
  'the state is not a US state or territory code; left out',
);
const INVALID_ZIP = new Problem(
  codes.INVALID_ZIP,
  'the ZIP code is not 5 digits or ZIP+4; left out',
);
const INVALID_PHONE = new Problem(
  codes.INVALID_PHONE,
  'the phone number is not a 10-digit US number; left out',
);
const INVALID_EMAIL = new Problem(
  codes.INVALID_EMAIL,
  'the e-mail address is not plausible; left out',
);
const FAMILY_NUMBER_OUT_OF_RANGE = new Problem(
  codes.OUT_OF_RANGE,
  'the family number does not fit a 32-bit integer; left out',
);
const UNKNOWN_CVX = new Problem(
  codes.UNKNOWN_CODE,
  "the CVX code is not in the module's CDC CVX list",
);
const INVALID_FLAG = new Problem(codes.INVALID_FLAG, 'the flag is neither Y nor N');
const ADMINISTERED_IN_FUTURE = new Problem(
  codes.IN_FUTURE,
  'the administration date is after the as-of date',
);
const ADMINISTERED_BEFORE_BIRTH = new Problem(
  codes.BEFORE_BIRTH,
  "the administration date is before the patient's birth date",
);
const INVALID_EXPIRATION_DATE = new Problem(
  codes.INVALID_DATE,
  'the expiration date is not a YYYY-MM-DD calendar date; left out',
);

// Integer columns arrive as BigInt (they are 64-bit); compare them with BigInt literals (`1n`).
// Mixing BigInt and Number in arithmetic throws, and converting to Number would silently round
// numbers above 2^53.
const INT32_MIN = -2147483648n;
const INT32_MAX = 2147483647n;

/**
 * The earliest birth date sent: ReqCheck's own "unknown" placeholder is 1900-01-01, and anything
 * earlier is a data-entry error, not a living patient.
 */
export const EARLIEST_BIRTH_DATE = '1900-01-01';

/**
 * `patient_number`: 1 … 2147483647. ReqCheck requires > 0 and stores it as PostgreSQL int4; a
 * number outside that range makes ReqCheck's dose import fail with a 500 partway through a
 * request, so it must never leave the clinic.
 */
export function patientNumber(patno) {
  if (patno == null) return MISSING;
  return patno >= 1n && patno <= INT32_MAX ? patno : PATIENT_NUMBER_OUT_OF_RANGE;
}

/**
 * `last_name` / `first_name`: trimmed, inner whitespace collapsed, not blank (ReqCheck's strict
 * presence validation would raise on a blank name).
 */
export function personName(value) {
  if (value == null) return MISSING;
  const name = collapseWhitespace(value);
  return name === '' ? BLANK_NAME : name;
}

/** `dob`: a calendar date, not after the as-of date, not before 1900-01-01. */
export function birthDate(value, asOfDate) {
  if (value == null) return MISSING;
  if (!isCalendarDate(value)) return INVALID_DATE;
  if (value > asOfDate) return BIRTH_DATE_IN_FUTURE;
  if (value < EARLIEST_BIRTH_DATE) return BIRTH_DATE_BEFORE_1900;
  return value;
}

/**
 * The patient rules, shared with any dose module (a dose module must hold back the doses of
 * exactly the patients these rules reject, or ReqCheck invents "Not Found" placeholders).
 * Returns every problem found, not only the first, as findings on the `patient_data` fields;
 * `patient` is the cleaned patient when there are none.
 */
export function validatePatient({ patno, lastName, firstName, birthDate: dob }, asOfDate) {
  const number = patientNumber(patno);
  const last = personName(lastName);
  const first = personName(firstName);
  const born = birthDate(dob, asOfDate);
  // Findings in field order, as the Rust crate lists them.
  const findings = [];
  if (number instanceof Problem) findings.push(number.at('patient_number'));
  if (last instanceof Problem) findings.push(last.at('last_name'));
  if (first instanceof Problem) findings.push(first.at('first_name'));
  if (born instanceof Problem) findings.push(born.at('dob'));
  const patient =
    findings.length === 0
      ? { patient_number: number, last_name: last, first_name: first, dob: born }
      : null;
  return { patient, findings };
}

/**
 * `hd_mpfile_updated_at` / `hd_imfile_updated_at`: the host already renders the clinic's local
 * time with its offset; passed through unchanged once its shape is checked (ReqCheck stores the
 * dose stamp verbatim and compares the stamps as text).
 */
export function sourceTimestamp(value) {
  if (value == null) return MISSING;
  return isTimestampWithOffset(value) ? value : INVALID_TIMESTAMP;
}

/**
 * `gender`: M, F or U (trimmed, upper-cased); anything else leaves the key out without a
 * warning: ReqCheck currently discards gender on save anyway (reqcheck-api.md §2.1).
 */
export function gender(value) {
  if (value == null) return undefined;
  switch (trim(value)) {
    case 'M':
    case 'm':
      return 'M';
    case 'F':
    case 'f':
      return 'F';
    case 'U':
    case 'u':
      return 'U';
    default:
      return undefined;
  }
}

/** Optional text fields sent trimmed (address, city, race, …); `undefined` when blank. */
export const optionalText = nonBlank;

/**
 * Optional free text passed through as written (`notes`, `comments`): only left out when there
 * is nothing in it, since an empty string must never be sent.
 */
export function passThrough(value) {
  return value == null || trim(value) === '' ? undefined : value;
}

// The titlecase letters (Unicode category Lt): the only characters `toUpperCase()` changes that
// are not lower-case (ǅ → Ǆ, ᾈ → ἈΙ).
const TITLECASE =
  /[\u01c5\u01c8\u01cb\u01f2\u1f88-\u1f8f\u1f98-\u1f9f\u1fa8-\u1faf\u1fbc\u1fcc\u1ffc]/g;

/**
 * Optional codes sent upper-case (`mvx_code`); `undefined` when blank.
 *
 * The Rust rule upper-cases (with the full Unicode mapping, "ß" → "SS", as `toUpperCase()`
 * does) only when a character is lower-case, by Unicode's Lowercase property, which this engine
 * has no table for (`\p{Lowercase}` is unavailable). A character `toUpperCase()` changes is
 * lower-case unless it is a titlecase letter, so: a code whose only such characters are
 * titlecase letters is left as written, as in Rust. (Not covered: a titlecase letter next to a
 * lower-case letter that has no upper-case form, such as "ĸ" or "ª", which Rust upper-cases.)
 */
export function optionalUpper(value) {
  const text = nonBlank(value);
  if (text === undefined) return undefined;
  const withoutTitlecase = text.replace(TITLECASE, '');
  return withoutTitlecase.toUpperCase() === withoutTitlecase ? text : text.toUpperCase();
}

// Optional fields whose bad values are dropped with a warning return `undefined` for NULL or
// blank (nothing to say), the value to send, or a Problem (drop it and warn).

/** `state`: a US state or territory code, upper-cased. */
export function state(value) {
  const text = nonBlank(value);
  if (text === undefined) return undefined;
  return normalizeState(text) ?? INVALID_STATE;
}

/** `zip_code`: 5 digits or ZIP+4. */
export function zip(value) {
  const text = nonBlank(value);
  if (text === undefined) return undefined;
  return normalizeZip(text) ?? INVALID_ZIP;
}

/** `home_phone` / `cell_phone`: a 10-digit North American number, formatted `816-555-0100`. */
export function phone(value) {
  const text = nonBlank(value);
  if (text === undefined) return undefined;
  return normalizePhone(text) ?? INVALID_PHONE;
}

/** `email`: trimmed, when plausible. */
export function email(value) {
  const text = nonBlank(value);
  if (text === undefined) return undefined;
  return plausibleEmail(text) ?? INVALID_EMAIL;
}

/**
 * `family_number`: passed through, but only when it fits ReqCheck's int4 column (a bigger number
 * would make ReqCheck fail the whole record with a database error).
 */
export function familyNumber(value) {
  if (value == null) return undefined;
  return value >= INT32_MIN && value <= INT32_MAX ? value : FAMILY_NUMBER_OUT_OF_RANGE;
}

// ---- The dose rules ------------------------------------------------------------------------

/** `cvx_code`: must be in `known`, a Set of BigInt (the CDC CVX list the module embeds). */
export function cvxCode(value, known) {
  if (value == null) return MISSING;
  return known.has(value) ? value : UNKNOWN_CVX;
}

/**
 * `history_flag`: `Y` → true (historical record), `N` → false (given here), after trimming.
 * Anything else, lower case included as default-mapping.md says, is rejected: ReqCheck would
 * quietly read it as false.
 */
export function historyFlag(value) {
  if (value == null) return MISSING;
  const flag = trim(value);
  if (flag === 'Y') return true;
  if (flag === 'N') return false;
  return INVALID_FLAG;
}

/**
 * `date_administered`: a calendar date, not after the as-of date, not before the patient's
 * birth date (`born`, a valid date).
 */
export function dateAdministered(value, asOfDate, born) {
  if (value == null) return MISSING;
  if (!isCalendarDate(value)) return INVALID_DATE;
  if (value > asOfDate) return ADMINISTERED_IN_FUTURE;
  if (value < born) return ADMINISTERED_BEFORE_BIRTH;
  return value;
}

/**
 * `expiration_date`: a calendar date, `undefined` for NULL, or a Problem (dropped with a
 * warning). Dropped rather than rejected: the dose itself was given, and ReqCheck replaces a
 * patient's whole dose history with each request, so rejecting would make the patient look
 * under-vaccinated over a lot detail. The cost is that ReqCheck then assumes "never expires".
 */
export function expirationDate(value) {
  if (value == null) return undefined;
  return isCalendarDate(value) ? value : INVALID_EXPIRATION_DATE;
}
