// The `vaccine-doses` transform in JavaScript: `imfile` rows (with their patient's `mpfile`
// columns joined on) → ReqCheck `vaccine_dose_data` records, following the `imfile` rules of
// docs/default-mapping.md (codes: transforms/README.md).
//
// It behaves exactly like the Rust module in transforms/vaccine-doses (same columns, fields,
// codes, messages and records); the e2e test `guest_javascript` checks that row by row. Build it
// with `scripts/build-guest-javascript vaccine-doses`. The rules live in clinic-rules.js, shared
// with the JavaScript `patients` module; cvx-codes.js is generated from the Rust module's
// data/cvx_codes.csv (generate-cvx-codes.mjs).

import * as clinicRules from './clinic-rules.js';
import { Problem, codes } from './clinic-rules.js';
import { CVX_CODE_LIST } from './cvx-codes.js';
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
  skip,
} from './reqsync-guest.js';

// The rules as a plain object: calls through a module namespace (`import * as`) go through a
// proxy, which the interpreter inside the component makes several times dearer than a
// property of an ordinary object.
const clinic = { ...clinicRules };

const { REQUIRED, NULLABLE, OPTIONAL } = Presence;

/** The CVX codes as integer columns deliver them (BigInt), for the membership test. */
const CVX_CODES = new Set(CVX_CODE_LIST.map(BigInt));

/** Patient (and dose) numbers as ReqCheck's int4 columns hold them. */
const NUMBERS = hint.range(1n, 2147483647n);
const BIRTH_DATES = hint.dates('1900-01-01', '2025-12-31');

/**
 * The `imfile` columns this module reads, plus the patient columns the default query LEFT JOINs
 * from `mpfile` (all NULL when the patient row does not exist). Hints say what valid values look
 * like, for generated test rows; the rules below decide on real rows.
 */
const INPUT_COLUMNS = [
  column('im_id', 'integer', REQUIRED, [NUMBERS]),
  column('patno', 'integer', REQUIRED, [NUMBERS]),
  column('vac_code', 'text', OPTIONAL, [hint.maxLength(20)]),
  column('vac_desc', 'text', OPTIONAL, [hint.maxLength(100)]),
  column('cvx', 'integer', REQUIRED, [hint.oneOf(CVX_CODE_LIST.map(String))]),
  column('mvx', 'text', OPTIONAL, [hint.pattern('[A-Z]{3}')]),
  column('lot_no', 'text', OPTIONAL, [hint.maxLength(20)]),
  column('exp_date', 'date', OPTIONAL, [hint.dates('2000-01-01', '2030-12-31')]),
  column('admin_date', 'date', REQUIRED, [BIRTH_DATES]),
  column('history', 'text', REQUIRED, [hint.oneOf(['Y', 'N'])]),
  column('provider', 'text', OPTIONAL),
  column('dosage', 'text', OPTIONAL),
  column('site', 'text', OPTIONAL),
  column('given_by', 'text', OPTIONAL),
  column('vfc_code', 'text', OPTIONAL),
  column('vfc_desc', 'text', OPTIONAL),
  column('encounter_id', 'text', OPTIONAL),
  column('comments', 'text', OPTIONAL),
  column('updated_at', 'timestamp', REQUIRED, [hint.dates('2000-01-01', '2025-12-31')]),
  // Nullable, not optional: a query without them must fail loudly rather than make every dose
  // look patient-less.
  column('patient_patno', 'integer', NULLABLE, [NUMBERS]),
  column('patient_lname', 'text', NULLABLE, [hint.maxLength(35)]),
  column('patient_fname', 'text', NULLABLE, [hint.maxLength(35)]),
  column('patient_birth_date', 'date', NULLABLE, [BIRTH_DATES]),
];

/**
 * The `vaccine_dose_data` fields this module emits: all on ReqCheck's whitelist
 * (reqcheck-api.md §1.3). `patient_id` and `trade_name` are deliberately absent: the first fails
 * on ReqCheck's side, the second is not whitelisted.
 */
const OUTPUT_FIELDS = [
  requiredField('patient_number'),
  optionalField('vaccine_code'),
  optionalField('hd_description'),
  requiredField('cvx_code'),
  optionalField('mvx_code'),
  optionalField('lot_number'),
  optionalField('expiration_date'),
  requiredField('date_administered'),
  // Always sent: ReqCheck's column is NOT NULL and reads a missing flag as false.
  requiredField('history_flag'),
  optionalField('provider_code'),
  optionalField('dosage'),
  optionalField('injection_site'),
  optionalField('given_by'),
  optionalField('vfc_code'),
  optionalField('vfc_description'),
  optionalField('hd_encounter_id'),
  optionalField('comments'),
  requiredField('hd_imfile_updated_at'),
];

const INFO = {
  name: 'vaccine-doses',
  // Same rules as the Rust module's 1.0.0; the build metadata says which implementation runs.
  version: '1.0.0+javascript',
  target: 'vaccine_dose_data',
  keyColumn: 'im_id',
  inputColumns: INPUT_COLUMNS,
  outputFields: OUTPUT_FIELDS,
};

/** Maps one `imfile` row to a `vaccine_dose_data` record, or holds it back, or rejects it. */
function doseRow(row, ctx) {
  if (row.patno === null) {
    return reject([
      { field: 'patient_number', code: codes.MISSING, message: 'the patient number is NULL' },
    ]);
  }

  // Doses are only sent for patients ReqCheck has. For any other patient number ReqCheck
  // invents a "Not Found" placeholder patient (born 1900-01-01) and logs an error for every
  // dose, so such doses are held back here instead.
  if (row.patient_patno === null) {
    return skip(codes.PATIENT_NOT_FOUND, "the dose's patient has no row in mpfile");
  }
  if (row.patient_patno !== row.patno) {
    // Only possible when an edited query joins the wrong patient; the birth-date check below
    // would then judge the dose against someone else.
    return reject([
      {
        field: 'patient_number',
        code: codes.PATIENT_MISMATCH,
        message: 'the joined patient columns belong to another patient number',
      },
    ]);
  }
  const { patient } = clinic.validatePatient(
    {
      patno: row.patient_patno,
      lastName: row.patient_lname,
      firstName: row.patient_fname,
      birthDate: row.patient_birth_date,
    },
    ctx.asOfDate,
  );
  if (patient === null) {
    return skip(
      codes.PATIENT_NOT_SENT,
      "the dose's patient is rejected by the patient rules, so ReqCheck does not have it",
    );
  }

  // Every problem of the dose at once, so one look at the quarantine shows all of them.
  const checked = {
    cvx_code: clinic.cvxCode(row.cvx, CVX_CODES),
    date_administered: clinic.dateAdministered(row.admin_date, ctx.asOfDate, patient.dob),
    history_flag: clinic.historyFlag(row.history),
    hd_imfile_updated_at: clinic.sourceTimestamp(row.updated_at),
  };
  const findings = Object.entries(checked)
    .filter(([, result]) => result instanceof Problem)
    .map(([field, problem]) => problem.at(field));
  if (findings.length > 0) return reject(findings);

  // A bad expiration date is left out with a warning: the dose was given all the same.
  const warnings = [];
  let expirationDate = clinic.expirationDate(row.exp_date);
  if (expirationDate instanceof Problem) {
    warnings.push(expirationDate.at('expiration_date'));
    expirationDate = undefined;
  }

  // Key order is the order ReqCheck's records are written in; fields left `undefined` are not
  // sent at all (never as null or "": ReqCheck would overwrite what it has).
  const record = {
    patient_number: patient.patient_number,
    vaccine_code: clinic.optionalText(row.vac_code),
    hd_description: clinic.optionalText(row.vac_desc),
    cvx_code: checked.cvx_code,
    mvx_code: clinic.optionalUpper(row.mvx),
    lot_number: clinic.optionalText(row.lot_no),
    expiration_date: expirationDate,
    date_administered: checked.date_administered,
    history_flag: checked.history_flag,
    provider_code: clinic.optionalText(row.provider),
    dosage: clinic.optionalText(row.dosage),
    injection_site: clinic.optionalText(row.site),
    given_by: clinic.optionalText(row.given_by),
    vfc_code: clinic.optionalText(row.vfc_code),
    vfc_description: clinic.optionalText(row.vfc_desc),
    hd_encounter_id: clinic.optionalText(row.encounter_id),
    comments: clinic.passThrough(row.comments),
    hd_imfile_updated_at: checked.hd_imfile_updated_at,
  };
  return emit(record, warnings);
}

// The two exports of the WIT world `transform`.

export function describe() {
  return describeModule(INFO);
}

export function transform(context, batch) {
  return runBatch(INFO, context, batch, doseRow);
}
