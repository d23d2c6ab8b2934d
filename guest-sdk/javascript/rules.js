// Value helpers most transforms need: whitespace clean-up, ISO dates and timestamps, US postal
// codes and phone numbers, e-mail plausibility.
//
// The JavaScript twin of the Rust SDK's `reqsync_guest::rules` (guest-sdk/src/rules/): every
// helper must accept and refuse exactly what the Rust one does, because the Rust `patients`
// module is the specification this module is tested against, row by row. Each helper takes a
// value as delivered (a string) and returns the cleaned value, or `undefined` when it will not
// accept it.

// ---- Whitespace ----------------------------------------------------------------------------

// Unicode White_Space, which is what Rust's `str::trim` and `char::is_whitespace` use. Neither
// JavaScript's `trim()` nor `\s` matches it: they also strip U+FEFF (byte order mark) and do not
// strip U+0085 (next line). `\p{White_Space}` would say it directly, but the engine inside the
// component is built without Unicode property tables and rejects that regular expression.
const WHITESPACE =
  '\\t\\n\\v\\f\\r \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000';
const EDGE_WHITESPACE = new RegExp(`^[${WHITESPACE}]+|[${WHITESPACE}]+$`, 'g');
const WHITESPACE_RUN = new RegExp(`[${WHITESPACE}]+`, 'g');

/** `value` without leading and trailing (Unicode) whitespace. */
export function trim(value) {
  return value.replace(EDGE_WHITESPACE, '');
}

/**
 * Trims `value` and turns every inner run of whitespace (spaces, tabs, line breaks, no-break
 * spaces) into one space. Names typed into clinic systems carry doubled spaces and stray tabs,
 * and ReqCheck matches patients by what it stores: "Mary  Ann" and "Mary Ann" must not become
 * two spellings.
 */
export function collapseWhitespace(value) {
  return trim(value).replace(WHITESPACE_RUN, ' ');
}

/**
 * `value` trimmed, or `undefined` when it is NULL or nothing is left: the "omit when blank"
 * rule, since ReqCheck must never receive an empty string for an optional field.
 */
export function nonBlank(value) {
  if (value == null) return undefined;
  const trimmed = trim(value);
  return trimmed === '' ? undefined : trimmed;
}

// ---- Dates and timestamps --------------------------------------------------------------------
// Strict on purpose: ReqCheck reads `MM-DD-YYYY` as day-month and `MM/DD/YY` as year 00YY
// without complaint, so anything that is not exactly `YYYY-MM-DD` must be caught here.

const DATE = /^([0-9]{4})-([0-9]{2})-([0-9]{2})$/;

// `YYYY-MM-DDTHH:MM:SS[.fraction]±HH:MM` or `...Z`. An offset is mandatory: a local time
// without one is ambiguous twice a year.
const TIMESTAMP = new RegExp(
  '^([0-9]{4}-[0-9]{2}-[0-9]{2})' + // date
    'T([0-9]{2}):([0-9]{2}):([0-9]{2})' + // time
    '(?:\\.[0-9]{1,9})?' + // fraction of a second
    '(?:Z|[+-]([0-9]{2}):([0-9]{2}))$', // offset
);

function isLeapYear(year) {
  return (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0;
}

function daysInMonth(year, month) {
  if (month === 2) return isLeapYear(year) ? 29 : 28;
  return [4, 6, 9, 11].includes(month) ? 30 : 31;
}

/**
 * True when `value` is exactly `YYYY-MM-DD` naming a real calendar date between 0001-01-01 and
 * 9999-12-31: `2024-02-29` passes, `2023-02-29`, `2024-2-9` and `11/26/2013` do not.
 *
 * Valid dates compare correctly as plain strings (`'2013-11-26' < '2026-01-01'`), so the rules
 * keep them as text instead of converting to `Date` objects (which bring time zones along).
 */
export function isCalendarDate(value) {
  const match = DATE.exec(value);
  if (match === null) return false;
  const [year, month, day] = match.slice(1).map(Number);
  return year >= 1 && month >= 1 && month <= 12 && day >= 1 && day <= daysInMonth(year, month);
}

/** True when `value` is a timestamp with a UTC offset, in the strict shape above. */
export function isTimestampWithOffset(value) {
  const match = TIMESTAMP.exec(value);
  if (match === null || !isCalendarDate(match[1])) return false;
  const [hour, minute, second] = match.slice(2, 5).map(Number);
  if (hour > 23 || minute > 59 || second > 59) return false;
  // Group 5 and 6 are the offset's hours and minutes (absent for `Z`).
  return match[5] === undefined || (Number(match[5]) <= 23 && Number(match[6]) <= 59);
}

// ---- US postal addresses, phone numbers, e-mail addresses ------------------------------------

/**
 * Every two-letter code the US Postal Service delivers to: the 50 states, DC, the inhabited
 * territories (AS, GU, MP, PR, VI), the freely associated states served by USPS (FM, MH, PW)
 * and the military "states" AA, AE, AP (APO/FPO addresses are real addresses of real patients).
 * UM (Minor Outlying Islands) is left out: it has no mail service.
 */
export const US_STATE_CODES = new Set([
  'AA', 'AE', 'AK', 'AL', 'AP', 'AR', 'AS', 'AZ', 'CA', 'CO', 'CT', 'DC', 'DE', 'FL', 'FM', 'GA',
  'GU', 'HI', 'IA', 'ID', 'IL', 'IN', 'KS', 'KY', 'LA', 'MA', 'MD', 'ME', 'MH', 'MI', 'MN', 'MO',
  'MP', 'MS', 'MT', 'NC', 'ND', 'NE', 'NH', 'NJ', 'NM', 'NV', 'NY', 'OH', 'OK', 'OR', 'PA', 'PR',
  'PW', 'RI', 'SC', 'SD', 'TN', 'TX', 'UT', 'VA', 'VI', 'VT', 'WA', 'WI', 'WV', 'WY',
]);

/**
 * The upper-cased code when the trimmed `value` is a US_STATE_CODES entry (" mo " → "MO");
 * `undefined` otherwise, full names such as "Missouri" included: guessing is not our job.
 */
export function normalizeState(value) {
  const trimmed = trim(value);
  // Upper-case ASCII letters only: `toUpperCase()` on other characters can produce letters
  // ("ﬂ", a ligature, becomes "FL").
  if (!/^[A-Za-z]{2}$/.test(trimmed)) return undefined;
  const code = trimmed.toUpperCase();
  return US_STATE_CODES.has(code) ? code : undefined;
}

/**
 * The trimmed `value` when it is a 5-digit ZIP code or a ZIP+4 (`12345-6789`). Nine digits
 * without the hyphen are refused rather than repaired: they are as often a typo as a ZIP+4.
 */
export function normalizeZip(value) {
  const trimmed = trim(value);
  return /^[0-9]{5}(?:-[0-9]{4})?$/.test(trimmed) ? trimmed : undefined;
}

/**
 * A North American phone number formatted `816-555-0100`, or `undefined`.
 *
 * Accepts digits with the usual punctuation (spaces, `(`, `)`, `-`, `.`, one leading `+`).
 * There must be 10 digits, or 11 starting with the country code 1 (`+1 816 555 0100`), which is
 * dropped since ReqCheck stores national numbers. Refused:
 * - any other character, letters included, so `816-555-0100 x12` loses nothing silently;
 * - area codes and exchanges starting with 0 or 1, which the North American Numbering Plan
 *   never assigns (this catches `123-456-7890` and digit-shifted entries).
 */
export function normalizePhone(value) {
  let text = trim(value);
  if (text.startsWith('+')) text = text.slice(1);
  let digits = '';
  for (const c of text) {
    if (c >= '0' && c <= '9') {
      digits += c;
      if (digits.length > 11) return undefined;
    } else if (!' ()-.'.includes(c)) {
      return undefined;
    }
  }
  let national;
  if (digits.length === 10) national = digits;
  else if (digits.length === 11 && digits[0] === '1') national = digits.slice(1);
  else return undefined;
  if (national[0] < '2' || national[3] < '2') return undefined;
  return `${national.slice(0, 3)}-${national.slice(3, 6)}-${national.slice(6)}`;
}

const utf8 = new TextEncoder();

// Bytes an e-mail local part may not contain (besides spaces and controls).
const LOCAL_PART_FORBIDDEN = new Set([...'"(),:;<>[]\\'].map((c) => c.charCodeAt(0)));

/**
 * The trimmed `value` when it looks like a deliverable address: one `@`, a local part without
 * spaces or edge/double dots, and a domain of at least two dot-separated labels (letters,
 * digits, hyphens or non-ASCII, not starting or ending with a hyphen) whose last label has two
 * or more characters and is not all digits. Lengths follow RFC 5321 (64 / 253 / 254 bytes).
 *
 * Plausible, not valid: the point is to drop what is obviously not an address (`none`, `n/a`,
 * `john@`, `john@gmail`), not to reproduce RFC 5322. Works on the UTF-8 bytes, like the Rust
 * rule, because the RFC limits are byte counts.
 */
export function plausibleEmail(value) {
  const trimmed = trim(value);
  const bytes = utf8.encode(trimmed);
  if (bytes.length > 254) return undefined;
  const at = bytes.indexOf(0x40); // '@'
  if (at < 0) return undefined;
  const local = bytes.subarray(0, at);
  const domain = bytes.subarray(at + 1);
  const dot = 0x2e;
  const localOk =
    local.length > 0 &&
    local.length <= 64 &&
    local[0] !== dot &&
    local[local.length - 1] !== dot &&
    !local.some((b, i) => b === dot && local[i + 1] === dot) &&
    local.every((b) => b >= 0x80 || (b > 0x20 && b !== 0x7f && !LOCAL_PART_FORBIDDEN.has(b)));
  if (!localOk || domain.length === 0 || domain.length > 253) return undefined;

  const labels = splitBytes(domain, dot);
  const hyphen = 0x2d;
  const labelOk = (label) =>
    label.length > 0 &&
    label.length <= 63 &&
    label[0] !== hyphen &&
    label[label.length - 1] !== hyphen &&
    label.every((b) => isAsciiAlphanumeric(b) || b === hyphen || b >= 0x80);
  if (!labels.every(labelOk)) return undefined;

  // The last label: at least two characters (a non-ASCII character is two bytes or more, so
  // count characters, i.e. bytes that do not continue a character), not all digits
  // (`10.0.0.1` is not a domain name).
  const last = labels[labels.length - 1];
  const characters = last.filter((b) => (b & 0xc0) !== 0x80).length;
  const tldOk = !last.every((b) => b >= 0x30 && b <= 0x39) && characters >= 2;
  return labels.length >= 2 && tldOk && !hasOddCharacter(trimmed) ? trimmed : undefined;
}

function isAsciiAlphanumeric(b) {
  return (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5a) || (b >= 0x61 && b <= 0x7a);
}

function splitBytes(bytes, separator) {
  const parts = [];
  let start = 0;
  for (let i = 0; i <= bytes.length; i++) {
    if (i === bytes.length || bytes[i] === separator) {
      parts.push(bytes.subarray(start, i));
      start = i + 1;
    }
  }
  return parts;
}

// Non-ASCII whitespace and control characters (Unicode White_Space and category Cc): allowed
// bytes-wise above, but no address contains them.
const NON_ASCII_ODD = /[\u0080-\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]/;

function hasOddCharacter(text) {
  return NON_ASCII_ODD.test(text);
}
