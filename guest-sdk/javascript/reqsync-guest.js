// The glue between reqsync's WIT world (guest-sdk/wit/transform.wit, reqsync:transform@3.0.0)
// and a transform's row rules: the JavaScript counterpart of the Rust SDK crate `reqsync-guest`.
// A module declares its columns and fields, writes one function per row, and calls
// `describeModule` / `runBatch` from its two exports; this file does the rest.
//
// How componentize-js hands WIT values to JavaScript (and back):
// - records are plain objects with camelCase keys (`keyColumn`, `asOfDate`);
// - variants are `{ tag: 'kebab-name', val: payload }`, enums are their case name as a string;
// - s64 is BigInt, `list<s64>` a BigInt64Array, `list<u64>` a BigUint64Array, `list<u32>` a
//   Uint32Array, `list<u16>` a Uint16Array, `list<u8>` a Uint8Array;
// - `result<T, E>`: returning a value is `ok`; throwing an `E`-shaped object (here a
//   BatchError) is `err`. Any other exception traps, like a panic in a Rust module: the host
//   then retries the batch row by row and rejects only the failing row (`transform-trap`).

import { isCalendarDate } from './rules.js';

// ---- Declarations ----------------------------------------------------------------------------

/**
 * Whether a column must be in the batch, and whether it may hold NULL (the WIT `required` and
 * `nullable` flags in one, like the Rust SDK's `Presence`).
 */
export const Presence = Object.freeze({
  /** In every batch; NULL not expected (a NULL still reaches the row rules, which decide). */
  REQUIRED: 'required',
  /** In every batch, NULL expected (e.g. columns of a LEFT JOIN whose absence would be a bug). */
  NULLABLE: 'nullable',
  /** May be left out of the query; reads as NULL when absent. */
  OPTIONAL: 'optional',
});

/**
 * One input column, named exactly as the query returns it. `kind` is a WIT `column-type`:
 * 'text', 'integer', 'float', 'boolean', 'date', 'time' or 'timestamp'.
 */
export function column(name, kind, presence = Presence.OPTIONAL, hints = []) {
  return Object.freeze({ name, kind, presence, hints });
}

/**
 * What valid values of a column look like (WIT `value-hint`). `reqsync transform test` uses
 * hints to generate rows that reach a module's emit paths; nothing enforces them on real rows.
 */
export const hint = Object.freeze({
  /** Integer or float values from `min` to `max`, inclusive. */
  range: (min, max) => ({ tag: 'range', val: { min: BigInt(min), max: BigInt(max) } }),
  /** Dates (or the date part of timestamps) from `min` to `max`, inclusive, `YYYY-MM-DD`. */
  dates: (min, max) => ({ tag: 'dates', val: { min, max } }),
  /** Text of at most `characters` characters. */
  maxLength: (characters) => ({ tag: 'max-length', val: characters }),
  /** One of these exact texts: a code list. */
  oneOf: (codes) => ({ tag: 'one-of', val: [...codes] }),
  /** Text matching this regular expression as a whole, in Rust `regex` syntax. */
  pattern: (regex) => ({ tag: 'pattern', val: regex }),
});

/** A field every emitted record carries. */
export function requiredField(name) {
  return Object.freeze({ name, required: true });
}

/** A field an emitted record may leave out. */
export function optionalField(name) {
  return Object.freeze({ name, required: false });
}

/** `describe`: the module's self-description in WIT form. */
export function describeModule(info) {
  return {
    name: info.name,
    version: info.version,
    target: info.target,
    keyColumn: info.keyColumn,
    inputColumns: info.inputColumns.map((c) => ({
      name: c.name,
      kind: c.kind,
      required: c.presence !== Presence.OPTIONAL,
      nullable: c.presence !== Presence.REQUIRED,
      hints: c.hints,
    })),
    outputFields: info.outputFields.map((f) => ({ name: f.name, required: f.required })),
  };
}

// ---- Outcomes --------------------------------------------------------------------------------
// What a row function returns. Findings are `{ field, code, message }`: `field` is the output
// field concerned, `code` a stable kebab-case identifier, and `message` fixed text that never
// contains a row value (it goes to logs and reports; rows are PHI).

/**
 * Send `record`: a plain object holding only declared fields. A field whose value is
 * `undefined` or `null` is left out (never sent as null: ReqCheck would store NULL over the
 * value it has). Integer values may be BigInt; they are written exactly. `warnings` report
 * values that were dropped or repaired.
 */
export function emit(record, warnings = []) {
  return { kind: 'emit', record, warnings };
}

/** Hold the row back without it being an error in the row itself. */
export function skip(code, message) {
  return { kind: 'skip', code, message };
}

/** The row is invalid: quarantined, never sent. List every problem of the row at once. */
export function reject(findings) {
  return { kind: 'reject', findings };
}

/** Thrown to refuse a whole batch (WIT `batch-error`); the run stops with the message. */
export class BatchError {
  constructor(code, message) {
    this.code = code;
    this.message = message;
  }
}

// ---- Running a batch -------------------------------------------------------------------------

/**
 * `transform`: binds the batch to the declared columns once, then calls `rowFunction(row, ctx)`
 * for every row. `row` is a plain object with one property per declared column: a string
 * (text, date, time, timestamp), a BigInt (integer; boolean as 0n / 1n) or a number (float), and
 * `null` for NULL and for an optional column the query does not return;
 * `ctx.asOfDate` is the date "not in the future" rules compare against (the module has no
 * clock, which keeps runs reproducible).
 */
export function runBatch(info, context, batch, rowFunction) {
  if (!isCalendarDate(context.asOfDate)) {
    throw new BatchError('invalid-context', 'the as-of date is not a YYYY-MM-DD calendar date');
  }
  const ctx = Object.freeze({ asOfDate: context.asOfDate });
  const columns = bindColumns(info.inputColumns, batch);
  const fields = new FieldLists(info.outputFields);
  const outcomes = [];
  for (let i = 0; i < batch.rows; i++) {
    const row = {};
    for (const { name, cells } of columns) row[name] = cells === null ? null : cells[i];
    const outcome = rowFunction(row, ctx);
    switch (outcome.kind) {
      case 'emit': {
        const entries = fields.add(outcome.record);
        if (typeof entries === 'string') {
          const message = 'the module wrote a field it did not declare';
          const finding = { field: entries, code: 'undeclared-field', message };
          outcomes.push({ tag: 'reject', val: [finding] });
          break;
        }
        if (Array.isArray(entries)) {
          const findings = entries.map((field) => ({
            field,
            code: 'control-character',
            message: CONTROL_CHARACTER_MESSAGE,
          }));
          outcomes.push({ tag: 'reject', val: findings });
          break;
        }
        outcomes.push({
          tag: 'emit',
          val: { ...entries, warnings: outcome.warnings.map(toWitFinding) },
        });
        break;
      }
      case 'skip':
        outcomes.push({ tag: 'skip', val: { code: outcome.code, message: outcome.message } });
        break;
      case 'reject':
        outcomes.push({ tag: 'reject', val: outcome.findings.map(toWitFinding) });
        break;
      default:
        throw new TypeError('a row function must return emit(…), skip(…) or reject(…)');
    }
  }
  return { outcomes, ...fields.finish() };
}

function toWitFinding({ field, code, message }) {
  return { field, code, message };
}

const TEXT_KINDS = new Set(['text', 'date', 'time', 'timestamp']);
const INTEGER_KINDS = new Set(['integer', 'boolean']);

/**
 * Resolves every declared column against the batch (by name: columns arrive in query order,
 * and optional ones may be absent) and checks the batch's shape, so the row loop can trust it.
 * Returns `[{ name, cells }]` in declaration order; `cells` holds one JS value per row (`null`
 * for NULL), or is `null` when an optional column is not in the batch.
 */
function bindColumns(declared, batch) {
  const rows = batch.rows;
  return declared.map((spec) => {
    const column = batch.columns.find((c) => c.name === spec.name);
    if (column === undefined) {
      if (spec.presence !== Presence.OPTIONAL) {
        throw new BatchError('missing-column', `input column \`${spec.name}\` is not in the batch`);
      }
      return { name: spec.name, cells: null };
    }
    const { tag, val } = column.values;
    let values;
    if (tag === 'text' && TEXT_KINDS.has(spec.kind)) {
      values = textCells(spec.name, val, rows);
    } else if (
      (tag === 'integer' && INTEGER_KINDS.has(spec.kind)) ||
      (tag === 'float' && spec.kind === 'float')
    ) {
      if (val.length !== rows) throw malformed(spec.name, 'it does not have one value per row');
      values = val;
    } else {
      throw new BatchError(
        'wrong-column-type',
        `input column \`${spec.name}\` is declared ${spec.kind} ` +
          `but the batch carries ${tag} values`,
      );
    }
    const present = column.present;
    if (present.length !== 0 && present.length !== rows) {
      throw malformed(spec.name, 'its NULL map does not have one entry per row');
    }
    // An empty NULL map means no NULLs in this batch.
    const cells = new Array(rows);
    for (let i = 0; i < rows; i++) {
      cells[i] = present.length !== 0 && present[i] === 0 ? null : values[i];
    }
    return { name: spec.name, cells };
  });
}

function malformed(column, what) {
  return new BatchError('malformed-batch', `input column \`${column}\` is malformed: ${what}`);
}

/**
 * Cuts a text column into its cells. The host sends all values of a column as one string plus
 * byte offsets into its UTF-8 encoding (one buffer crosses the component boundary instead of
 * one string per cell). JavaScript strings index UTF-16 code units, so offsets are only string
 * indices when the text is ASCII; otherwise the text is encoded back to UTF-8 and each cell's
 * bytes decoded.
 */
function textCells(column, { data, offsets }, rows) {
  if (offsets.length !== rows + 1) throw malformed(column, 'it does not have rows + 1 offsets');
  const bad = () => malformed(column, 'an offset decreases, is past the end or splits a character');
  const cells = new Array(rows);
  // componentize-js (0.23) turns the host's UTF-8 into a JS string with `new TextDecoder()`,
  // which drops a byte order mark (U+FEFF) at the start of the text. When the first non-NULL
  // cell begins with one, the text arrives exactly 3 bytes shorter than the offsets say: put it
  // back, or every cell of the column would be cut in the wrong place.
  let bytes = UTF8_ENCODER.encode(data);
  if (bytes.length + 3 === offsets[rows]) bytes = UTF8_ENCODER.encode(`\ufeff${data}`);
  if (bytes.length === data.length) {
    // ASCII: byte offsets are string indices.
    for (let i = 0; i < rows; i++) {
      const start = offsets[i];
      const end = offsets[i + 1];
      if (start > end || end > data.length) throw bad();
      cells[i] = data.slice(start, end);
    }
    return cells;
  }
  // Otherwise cut the UTF-8 bytes and decode each cell, natively: walking the text character
  // by character to turn byte offsets into string indices cost the interpreter about a
  // microsecond per character, milliseconds for one long value.
  for (let i = 0; i < rows; i++) {
    const start = offsets[i];
    const end = offsets[i + 1];
    if (start > end || end > bytes.length) throw bad();
    try {
      cells[i] = CELL_DECODER.decode(bytes.subarray(start, end));
    } catch {
      throw bad(); // a cut inside a character
    }
  }
  return cells;
}

const UTF8_ENCODER = new TextEncoder();
// `fatal`: a cell cut inside a character is an error, not U+FFFD; `ignoreBOM`: a cell that
// begins with U+FEFF keeps it.
const CELL_DECODER = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** UTF-8 length of `text` in bytes. */
function utf8Length(text) {
  return UTF8_ENCODER.encode(text).length;
}

// Value kinds of the WIT `batch-result.kinds` list.
const TEXT = 0;
const INTEGER = 1;
const FLOAT = 2;
const BOOLEAN = 3;

const I64_MIN = -(2n ** 63n);
const I64_MAX = 2n ** 63n - 1n;

/**
 * The typed fields of a batch's emitted records: the WIT `batch-result`'s parallel lists and
 * its text buffer, with UTF-8 byte offsets. The host writes each record's JSON from them.
 */
// NUL and the other C0 controls but tab, line feed and carriage return: ReqCheck keeps text in
// PostgreSQL, which cannot store NUL, and the rest is never clinic data. A record holding one is
// rejected (`control-character`), as the Rust SDK and the host do.
const UNSTORABLE = /[\u0000-\u0008\u000b\u000c\u000e-\u001f]/;
const CONTROL_CHARACTER_MESSAGE =
  'the text holds a NUL or another control character (other than tab and line breaks), ' +
  'which ReqCheck cannot store';

class FieldLists {
  constructor(outputFields) {
    this.indexOf = new Map();
    outputFields.forEach(({ name }, i) => {
      if (!this.indexOf.has(name)) this.indexOf.set(name, i);
    });
    this.text = [];
    this.offset = 0; // UTF-8 byte length of the text so far
    this.indexes = [];
    this.kinds = [];
    this.values = [];
    this.float = new DataView(new ArrayBuffer(8));
  }

  /**
   * Appends a record's fields (keys in insertion order; `null` and `undefined` left out) and
   * returns `{ first, count }`, or the first key that is not a declared field, or the array of
   * keys whose text ReqCheck cannot store (nothing is appended then).
   */
  add(record) {
    const fields = Object.entries(record).filter(
      ([, value]) => value !== undefined && value !== null,
    );
    for (const [key] of fields) if (!this.indexOf.has(key)) return key;
    const unstorable = fields
      .filter(([, value]) => typeof value === 'string' && UNSTORABLE.test(value))
      .map(([key]) => key);
    if (unstorable.length > 0) return unstorable;
    const first = this.indexes.length;
    for (const [key, value] of fields) {
      this.indexes.push(this.indexOf.get(key));
      switch (typeof value) {
        case 'string': {
          const len = utf8Length(value);
          this.kinds.push(TEXT);
          this.values.push((BigInt(this.offset) << 32n) | BigInt(len));
          this.text.push(value);
          this.offset += len;
          break;
        }
        case 'bigint':
          if (value < I64_MIN || value > I64_MAX) {
            throw new RangeError(`${key}: the integer does not fit 64 bits`);
          }
          this.kinds.push(INTEGER);
          this.values.push(BigInt.asUintN(64, value));
          break;
        case 'number':
          // NaN and infinities have no JSON form; writing them as null would clear the field.
          if (!Number.isFinite(value)) throw new TypeError(`${key}: not a finite number`);
          this.float.setFloat64(0, value, true);
          this.kinds.push(FLOAT);
          this.values.push(this.float.getBigUint64(0, true));
          break;
        case 'boolean':
          this.kinds.push(BOOLEAN);
          this.values.push(value ? 1n : 0n);
          break;
        default:
          throw new TypeError(
            `${key}: a record value is a ${typeof value}; ` +
              'records hold strings, numbers and booleans',
          );
      }
    }
    return { first, count: this.indexes.length - first };
  }

  /** The WIT `batch-result` fields (all but `outcomes`). */
  finish() {
    return {
      text: this.text.join(''),
      fieldIndexes: Uint16Array.from(this.indexes),
      kinds: Uint8Array.from(this.kinds),
      values: BigUint64Array.from(this.values),
    };
  }
}
