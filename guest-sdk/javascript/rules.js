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
//
// The engine interprets JavaScript without a JIT, where a regular-expression replace is dear
// next to reading a few characters: the helpers below look at characters first and only build
// a new string when there is something to change (docs/PERFORMANCE.md, "Guest languages").
const WHITESPACE =
  '\\t\\n\\v\\f\\r \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000';
const WHITESPACE_RUN = new RegExp(`[${WHITESPACE}]+`, 'g');
// Whitespace that `collapseWhitespace` must rewrite: anything but a single space.
const NOT_A_SINGLE_SPACE = new RegExp(`[${WHITESPACE.replace(' ', '')}]| {2}`);

/** Whether UTF-16 code unit `c` is a White_Space character (all of them are single units). */
function isWhitespace(c) {
  if (c <= 0x20) return c === 0x20 || (c >= 0x09 && c <= 0x0d);
  if (c < 0x85) return false;
  return (
    c === 0x85 ||
    c === 0xa0 ||
    c === 0x1680 ||
    (c >= 0x2000 && c <= 0x200a) ||
    c === 0x2028 ||
    c === 0x2029 ||
    c === 0x202f ||
    c === 0x205f ||
    c === 0x3000
  );
}

/** `value` without leading and trailing (Unicode) whitespace. */
export function trim(value) {
  const length = value.length;
  if (length === 0) return value;
  const first = value.charCodeAt(0);
  const last = value.charCodeAt(length - 1);
  // The usual case: printable ASCII at both ends, nothing to strip.
  if (first > 0x20 && first < 0x7f && last > 0x20 && last < 0x7f) return value;
  let start = 0;
  while (start < length && isWhitespace(value.charCodeAt(start))) start += 1;
  let end = length;
  while (end > start && isWhitespace(value.charCodeAt(end - 1))) end -= 1;
  return start === 0 && end === length ? value : value.slice(start, end);
}

/**
 * Trims `value` and turns every inner run of whitespace (spaces, tabs, line breaks, no-break
 * spaces) into one space. Names typed into clinic systems carry doubled spaces and stray tabs,
 * and ReqCheck matches patients by what it stores: "Mary  Ann" and "Mary Ann" must not become
 * two spellings.
 */
export function collapseWhitespace(value) {
  const trimmed = trim(value);
  return NOT_A_SINGLE_SPACE.test(trimmed) ? trimmed.replace(WHITESPACE_RUN, ' ') : trimmed;
}

/**
 * `value` trimmed, or `undefined` when it is NULL or nothing is left: the "omit when blank"
 * rule, since ReqCheck must never receive an empty string for an optional field.
 */
export function nonBlank(value) {
  if (value == null) return undefined;
  // `trim`'s usual case, without the call.
  const length = value.length;
  if (length === 0) return undefined;
  const first = value.charCodeAt(0);
  const last = value.charCodeAt(length - 1);
  if (first > 0x20 && first < 0x7f && last > 0x20 && last < 0x7f) return value;
  const trimmed = trim(value);
  return trimmed === '' ? undefined : trimmed;
}

// ---- Dates and timestamps --------------------------------------------------------------------
// Strict on purpose: ReqCheck reads `MM-DD-YYYY` as day-month and `MM/DD/YY` as year 00YY
// without complaint, so anything that is not exactly `YYYY-MM-DD` must be caught here.

// `YYYY-MM-DDTHH:MM:SS[.fraction]±HH:MM` or `...Z`, hours 00–23 and minutes and seconds 00–59
// (the offset's too). An offset is mandatory: a local time without one is ambiguous twice a
// year. The date part is checked as a calendar date separately.
const TIMESTAMP =
  /^[0-9]{4}-[0-9]{2}-[0-9]{2}T(?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](?:\.[0-9]{1,9})?(?:Z|[+-](?:[01][0-9]|2[0-3]):[0-5][0-9])$/;

function isLeapYear(year) {
  return (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0;
}

function daysInMonth(year, month) {
  if (month === 2) return isLeapYear(year) ? 29 : 28;
  return month === 4 || month === 6 || month === 9 || month === 11 ? 30 : 31;
}

/** The value of the ASCII digit at `value[i]`, or -1 for any other character. */
function digitAt(value, i) {
  const d = value.charCodeAt(i) - 0x30;
  return d >= 0 && d <= 9 ? d : -1;
}

/** Whether `value` starts with a `YYYY-MM-DD` calendar date (0001-01-01 to 9999-12-31). */
function calendarDateAt(value) {
  const y0 = digitAt(value, 0);
  const y1 = digitAt(value, 1);
  const y2 = digitAt(value, 2);
  const y3 = digitAt(value, 3);
  const m0 = digitAt(value, 5);
  const m1 = digitAt(value, 6);
  const d0 = digitAt(value, 8);
  const d1 = digitAt(value, 9);
  if ((y0 | y1 | y2 | y3 | m0 | m1 | d0 | d1) < 0) return false;
  if (value.charCodeAt(4) !== 0x2d || value.charCodeAt(7) !== 0x2d) return false;
  const year = y0 * 1000 + y1 * 100 + y2 * 10 + y3;
  const month = m0 * 10 + m1;
  const day = d0 * 10 + d1;
  return year >= 1 && month >= 1 && month <= 12 && day >= 1 && day <= daysInMonth(year, month);
}

/**
 * True when `value` is exactly `YYYY-MM-DD` naming a real calendar date between 0001-01-01 and
 * 9999-12-31: `2024-02-29` passes, `2023-02-29`, `2024-2-9` and `11/26/2013` do not.
 *
 * Valid dates compare correctly as plain strings (`'2013-11-26' < '2026-01-01'`), so the rules
 * keep them as text instead of converting to `Date` objects (which bring time zones along).
 */
export function isCalendarDate(value) {
  return typeof value === 'string' && value.length === 10 && calendarDateAt(value);
}

/** True when `value` is a timestamp with a UTC offset, in the strict shape above. */
export function isTimestampWithOffset(value) {
  return TIMESTAMP.test(value) && calendarDateAt(value);
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
  if (trimmed.length !== 2) return undefined;
  // Upper-case ASCII letters only: `toUpperCase()` on other characters can produce letters
  // ("ﬂ", a ligature, becomes "FL").
  const a = trimmed.charCodeAt(0);
  const b = trimmed.charCodeAt(1);
  if (a >= 0x41 && a <= 0x5a && b >= 0x41 && b <= 0x5a) {
    return US_STATE_CODES.has(trimmed) ? trimmed : undefined;
  }
  if (!ASCII_LETTER_PAIR.test(trimmed)) return undefined;
  const code = trimmed.toUpperCase();
  return US_STATE_CODES.has(code) ? code : undefined;
}

const ASCII_LETTER_PAIR = /^[A-Za-z]{2}$/;

/**
 * The trimmed `value` when it is a 5-digit ZIP code or a ZIP+4 (`12345-6789`). Nine digits
 * without the hyphen are refused rather than repaired: they are as often a typo as a ZIP+4.
 */
export function normalizeZip(value) {
  const trimmed = trim(value);
  return ZIP.test(trimmed) ? trimmed : undefined;
}

const ZIP = /^[0-9]{5}(?:-[0-9]{4})?$/;

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
  // Already written the way it is sent: nothing to take apart.
  if (FORMATTED_PHONE.test(text)) return text;
  if (!PHONE_CHARACTERS.test(text)) return undefined;
  if (text.charCodeAt(0) === 0x2b) text = text.slice(1); // one leading '+'
  const digits = text.replace(NOT_A_DIGIT, '');
  let national;
  if (digits.length === 10) national = digits;
  else if (digits.length === 11 && digits.charCodeAt(0) === 0x31) national = digits.slice(1);
  else return undefined;
  if (national.charCodeAt(0) < 0x32 || national.charCodeAt(3) < 0x32) return undefined;
  return `${national.slice(0, 3)}-${national.slice(3, 6)}-${national.slice(6)}`;
}

// `816-555-0100` with an area code and an exchange that do not start with 0 or 1.
const FORMATTED_PHONE = /^[2-9][0-9]{2}-[2-9][0-9]{2}-[0-9]{4}$/;
// Digits and ` ( ) - .`, after at most one leading '+'.
const PHONE_CHARACTERS = /^\+?[0-9 ().-]*$/;
const NOT_A_DIGIT = /[^0-9]/g;

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
  // Most addresses are plain ASCII ones that this one expression accepts (see
  // PLAIN_EMAIL); anything else takes the byte-wise checks below.
  if (trimmed.length <= 254 && PLAIN_EMAIL.test(trimmed)) return trimmed;
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

// An ASCII address that the byte-wise checks of `plausibleEmail` accept: a local part of 1–64
// allowed characters without edge or double dots, then labels of letters, digits and inner
// hyphens (1–63 characters), at least two, the last one of two or more characters with a
// letter or hyphen in it. Whatever this refuses goes through those checks.
const PLAIN_EMAIL =
  /^(?=[^@]{1,64}@)[!#-'*+\-/-9=?A-Z^-~]+(?:\.[!#-'*+\-/-9=?A-Z^-~]+)*@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+(?=[A-Za-z0-9-]*[A-Za-z-])[A-Za-z0-9][A-Za-z0-9-]{0,61}[A-Za-z0-9]$/;

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
