// The `patients` transform in JavaScript: `mpfile` rows → ReqCheck `patient_data` records,
// following the `mpfile` rules of docs/default-mapping.md (codes: transforms/README.md).
//
// It behaves exactly like the Rust module in transforms/patients (same columns, fields, codes,
// messages and records); the e2e test `guest_javascript` checks that row by row. Build it with
// `scripts/build-guest-javascript`; README.md in this folder says how to change a rule.

import * as clinicRules from './clinic-rules.js';
import { Problem } from './clinic-rules.js';
import {
  Presence,
  column,
  describeModule,
  emit,
  hint,
  optionalField,
  reject,
  requiredField,
  runBatch,
} from './reqsync-guest.js';

// The rules as a plain object: calls through a module namespace (`import * as`) go through a
// proxy, which the interpreter inside the component makes several times dearer than a
// property of an ordinary object.
const clinic = { ...clinicRules };

const { REQUIRED, OPTIONAL } = Presence;

/** The largest patient or family number ReqCheck's int4 columns hold. */
const INT32_MAX = 2147483647n;

/** US phone numbers as clinics type them: `8165551234`, `816-555-1234`, `(816) 555-1234`. */
const PHONE_PATTERN = String.raw`\(?[0-9]{3}\)? ?-?[0-9]{3}-?[0-9]{4}`;

/** Addresses as generated test rows should look (Rust `regex` syntax, like every pattern hint). */
const EMAIL_PATTERN = String.raw`[a-z]{1,12}@[a-z]{1,12}\.(org|com|net)`;

/**
 * The `mpfile` columns this module reads (`mname` is not: ReqCheck has no column for it). Hints
 * say what valid values look like, for generated test rows; the rules below decide on real rows.
 */
const INPUT_COLUMNS = [
  column('patno', 'integer', REQUIRED, [hint.range(1n, INT32_MAX)]),
  column('lname', 'text', REQUIRED, [hint.maxLength(35)]),
  column('fname', 'text', REQUIRED, [hint.maxLength(35)]),
  column('birth_date', 'date', REQUIRED, [hint.dates('1900-01-01', '2025-12-31')]),
  column('sex', 'text', OPTIONAL, [hint.oneOf(['F', 'M', 'U', 'f', 'm', 'u'])]),
  column('addr1', 'text', OPTIONAL, [hint.maxLength(60)]),
  column('addr2', 'text', OPTIONAL, [hint.maxLength(60)]),
  column('city', 'text', OPTIONAL, [hint.maxLength(40)]),
  column('state', 'text', OPTIONAL, [hint.pattern('[A-Z]{2}')]),
  column('zip', 'text', OPTIONAL, [hint.pattern('[0-9]{5}(-[0-9]{4})?')]),
  column('home_phone', 'text', OPTIONAL, [hint.pattern(PHONE_PATTERN)]),
  column('cell_phone', 'text', OPTIONAL, [hint.pattern(PHONE_PATTERN)]),
  column('email', 'text', OPTIONAL, [hint.pattern(EMAIL_PATTERN)]),
  column('race', 'text', OPTIONAL, [hint.maxLength(60)]),
  column('ethnicity', 'text', OPTIONAL, [hint.maxLength(60)]),
  column('family_no', 'integer', OPTIONAL, [hint.range(1n, INT32_MAX)]),
  column('notes', 'text', OPTIONAL, [hint.maxLength(200)]),
  column('updated_at', 'timestamp', REQUIRED, [hint.dates('2000-01-01', '2025-12-31')]),
];

/**
 * The `patient_data` fields this module emits: all on ReqCheck's whitelist (reqcheck-api.md
 * §1.2), which rejects a record carrying any other key.
 */
const OUTPUT_FIELDS = [
  requiredField('patient_number'),
  requiredField('first_name'),
  requiredField('last_name'),
  requiredField('dob'),
  optionalField('gender'),
  optionalField('address'),
  optionalField('address2'),
  optionalField('city'),
  optionalField('state'),
  optionalField('zip_code'),
  optionalField('home_phone'),
  optionalField('cell_phone'),
  optionalField('email'),
  optionalField('race'),
  optionalField('ethnicity'),
  optionalField('family_number'),
  optionalField('notes'),
  requiredField('hd_mpfile_updated_at'),
];

const INFO = {
  name: 'patients',
  // Same rules as the Rust module's 1.0.0; the build metadata says which implementation runs.
  version: '1.0.0+javascript',
  target: 'patient_data',
  keyColumn: 'patno',
  inputColumns: INPUT_COLUMNS,
  outputFields: OUTPUT_FIELDS,
};

/** `result` when it is a value to send; a Problem becomes a warning on `field` instead. */
function unlessBad(warnings, field, result) {
  if (result instanceof Problem) {
    warnings.push(result.at(field));
    return undefined;
  }
  return result;
}

/** Maps one `mpfile` row to a `patient_data` record, or rejects it. */
function patientRow(row, ctx) {
  const { patient, findings } = clinic.validatePatient(
    { patno: row.patno, lastName: row.lname, firstName: row.fname, birthDate: row.birth_date },
    ctx.asOfDate,
  );
  const updatedAt = clinic.sourceTimestamp(row.updated_at);
  if (patient === null || updatedAt instanceof Problem) {
    // Every problem of the row at once, so one look at the quarantine shows all of them.
    if (updatedAt instanceof Problem) findings.push(updatedAt.at('hd_mpfile_updated_at'));
    return reject(findings);
  }

  // Bad optional values are left out with a warning: the patient still goes to ReqCheck (it
  // is needed for the doses), and the warning tells the clinic what to fix.
  const warnings = [];

  // Key order is the order ReqCheck's records are written in; fields left `undefined` are not
  // sent at all (never as null or "": ReqCheck would overwrite what it has).
  const record = {
    patient_number: patient.patient_number,
    first_name: patient.first_name,
    last_name: patient.last_name,
    dob: patient.dob,
    gender: clinic.gender(row.sex),
    address: clinic.optionalText(row.addr1),
    address2: clinic.optionalText(row.addr2),
    city: clinic.optionalText(row.city),
    state: unlessBad(warnings, 'state', clinic.state(row.state)),
    zip_code: unlessBad(warnings, 'zip_code', clinic.zip(row.zip)),
    home_phone: unlessBad(warnings, 'home_phone', clinic.phone(row.home_phone)),
    cell_phone: unlessBad(warnings, 'cell_phone', clinic.phone(row.cell_phone)),
    email: unlessBad(warnings, 'email', clinic.email(row.email)),
    race: clinic.optionalText(row.race),
    ethnicity: clinic.optionalText(row.ethnicity),
    family_number: unlessBad(warnings, 'family_number', clinic.familyNumber(row.family_no)),
    notes: clinic.passThrough(row.notes),
    hd_mpfile_updated_at: updatedAt,
  };
  return emit(record, warnings);
}

// The two exports of the WIT world `transform`.

export function describe() {
  return describeModule(INFO);
}

export function transform(context, batch) {
  return runBatch(INFO, context, batch, patientRow);
}
