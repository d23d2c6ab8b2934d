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
// The engine inside the component interprets JavaScript without a JIT, so every operation costs:
// a function call or a string slice is worth dozens of arithmetic operations, and iterator
// protocols (`for … of`, destructuring, spread) far more. The code below avoids them on the
// per-row path; docs/PERFORMANCE.md ("Guest languages") shows where a row's time goes.

/**
 * `transform`: binds the batch to the declared columns once, then calls `rowFunction(row, ctx)`
 * for every row. `row` is a plain object with one property per declared column: a string
 * (text, date, time, timestamp), a BigInt (integer; boolean as 0n / 1n) or a number (float), and
 * `null` for NULL and for an optional column the query does not return;
 * `ctx.asOfDate` is the date "not in the future" rules compare against (the module has no
 * clock, which keeps runs reproducible).
 *
 * One `row` object serves every row of the batch (its properties are overwritten for the next
 * row): read it during the call, do not keep it.
 */
export function runBatch(info, context, batch, rowFunction) {
  if (!isCalendarDate(context.asOfDate)) {
    throw new BatchError('invalid-context', 'the as-of date is not a YYYY-MM-DD calendar date');
  }
  const ctx = Object.freeze({ asOfDate: context.asOfDate });
  const rows = batch.rows;
  const bound = bindColumns(info.inputColumns, batch);
  const fill = rowFiller(bound.names);
  const cells = bound.cells;
  const nonAscii = bound.nonAsciiRows;
  const outcomes = new Array(rows);
  const row = {};

  // The typed fields of the emitted records: the WIT `batch-result`'s parallel lists (typed
  // arrays cross the boundary as one copy each) and its text, with UTF-8 byte offsets. All of
  // it lives in local variables of this one function: the interpreter reads a local directly,
  // where every `this.x` or `object.x` is a property lookup.
  const fields = info.outputFields;
  const indexOf = new Map();
  for (let f = 0; f < fields.length; f++) {
    if (!indexOf.has(fields[f].name)) indexOf.set(fields[f].name, f);
  }
  // A record holds each declared field at most once (an object has each key once), so
  // rows × fields entries always suffice.
  const capacity = Math.max(rows * fields.length, 1);
  const indexes = new Uint16Array(capacity);
  const kinds = new Uint8Array(capacity);
  const values = new BigUint64Array(capacity);
  const words = new Uint32Array(values.buffer); // per entry: length, start (little-endian)
  const floats = new Float64Array(values.buffer);
  const firstOf = new Uint32Array(rows); // per emitted row: its entries
  const countOf = new Uint32Array(rows);
  // Text is interned per batch: a value already in the buffer ("Kansas City", "MO", a common
  // name) is pointed at again rather than appended. Entries only say where their text is, so
  // they may share it; and componentize-js encodes the returned text one character at a time
  // (a measured 0.18 µs a character), which makes every character saved count.
  const pieces = [];
  const starts = [];
  const lengths = [];
  const interned = new Map();
  let bytes = 0; // UTF-8 length of the pieces so far
  let count = 0;

  for (let i = 0; i < rows; i++) {
    fill(row, cells, i);
    const outcome = rowFunction(row, ctx);
    const kind = outcome.kind;
    if (kind === 'reject') {
      outcomes[i] = { tag: 'reject', val: outcome.findings };
      continue;
    }
    if (kind === 'skip') {
      outcomes[i] = { tag: 'skip', val: { code: outcome.code, message: outcome.message } };
      continue;
    }
    if (kind !== 'emit') {
      throw new TypeError('a row function must return emit(…), skip(…) or reject(…)');
    }
    let record = outcome.record;
    // `for … in` is the cheapest walk over a record's keys here; it would also visit inherited
    // enumerable keys, which a plain object has none of.
    if (Object.getPrototypeOf(record) !== Object.prototype) record = { ...record };
    // The row's input text is all ASCII, so are its values unless the module made non-ASCII
    // text itself (caught when the batch ends).
    const ascii = nonAscii[i] === 0;
    let e = count;
    let undeclared;
    let fault;
    for (const key in record) {
      const value = record[key];
      if (value === undefined || value === null) continue;
      const index = indexOf.get(key);
      if (index === undefined) {
        undeclared = key;
        break;
      }
      const type = typeof value;
      if (type === 'string') {
        kinds[e] = 0; // text
        if (value === '') {
          words[2 * e] = 0;
          words[2 * e + 1] = 0;
        } else {
          let piece = interned.get(value);
          if (piece === undefined) {
            piece = pieces.length;
            const length = ascii ? value.length : utf8Length(value);
            pieces.push(value);
            starts.push(bytes);
            lengths.push(length);
            bytes += length;
            interned.set(value, piece);
          }
          words[2 * e] = lengths[piece];
          words[2 * e + 1] = starts[piece];
        }
      } else if (type === 'bigint') {
        if (value < I64_MIN || value > I64_MAX) {
          fault ??= new RangeError(`${key}: the integer does not fit 64 bits`);
          continue;
        }
        kinds[e] = 1; // integer
        values[e] = value; // stored modulo 2^64: a negative one as its two's complement
      } else if (type === 'number') {
        // NaN and infinities have no JSON form; writing them as null would clear the field.
        if (!Number.isFinite(value)) {
          fault ??= new TypeError(`${key}: not a finite number`);
          continue;
        }
        kinds[e] = 2; // float
        floats[e] = value;
      } else if (type === 'boolean') {
        kinds[e] = 3; // boolean
        words[2 * e] = value ? 1 : 0;
        words[2 * e + 1] = 0;
      } else {
        fault ??= new TypeError(
          `${key}: a record value is a ${type}; records hold strings, numbers and booleans`,
        );
        continue;
      }
      indexes[e] = index;
      e += 1;
    }
    if (undeclared !== undefined) {
      const finding = { field: undeclared, code: 'undeclared-field', message: UNDECLARED_MESSAGE };
      outcomes[i] = { tag: 'reject', val: [finding] };
      continue;
    }
    if (fault !== undefined) {
      // A control character rejects the row before a value without a JSON form fails it.
      const text = { kinds, words, indexes, pieces, starts, names: fields };
      const unstorable = unstorableFields(text, count, e);
      if (unstorable.length === 0) throw fault;
      outcomes[i] = { tag: 'reject', val: unstorable };
      continue;
    }
    firstOf[i] = count;
    countOf[i] = e - count;
    outcomes[i] = { tag: 'emit', val: { first: count, count: e - count, warnings: outcome.warnings } };
    count = e;
  }

  const text = pieces.join('');
  const lists = { kinds, words, indexes, pieces, starts, names: fields, count };
  if (utf8Length(text) !== bytes) {
    // The module made non-ASCII text of a row whose input was ASCII: count every piece.
    recount(lists);
  }
  // One search of the whole batch's text; rows only when it finds something.
  if (UNSTORABLE.test(text)) {
    for (let i = 0; i < rows; i++) {
      if (outcomes[i].tag !== 'emit') continue;
      const unstorable = unstorableFields(lists, firstOf[i], firstOf[i] + countOf[i]);
      if (unstorable.length > 0) outcomes[i] = { tag: 'reject', val: unstorable };
    }
  }
  return {
    text,
    fieldIndexes: indexes.slice(0, count),
    kinds: kinds.slice(0, count),
    values: values.slice(0, count),
    outcomes,
  };
}

/**
 * A function `(row, cells, i)` that sets every declared column's property of `row` to row
 * `i`'s value: generated once per column list, with the names written as literals, because a
 * property set by a literal name is several times cheaper in the interpreter than one by a
 * computed name in a loop. The names come from the module's own declaration, never from rows.
 */
const fillers = new Map();
function rowFiller(names) {
  const key = names.join('\u0000');
  let fill = fillers.get(key);
  if (fill === undefined) {
    const body = names.map((name, k) => `row[${JSON.stringify(name)}] = cells[${k}][i];`);
    try {
      fill = new Function('row', 'cells', 'i', body.join('\n'));
    } catch {
      // An engine without `Function`: the same assignments, by computed name.
      fill = (row, cells, i) => {
        for (let k = 0; k < names.length; k++) row[names[k]] = cells[k][i];
      };
    }
    fillers.set(key, fill);
  }
  return fill;
}

const TEXT_KINDS = new Set(['text', 'date', 'time', 'timestamp']);
const INTEGER_KINDS = new Set(['integer', 'boolean']);

/**
 * Resolves every declared column against the batch (by name: columns arrive in query order,
 * and optional ones may be absent) and checks the batch's shape, so the row loop can trust it.
 * Returns `{ names, cells, nonAsciiRows }`: per declared column its name and one JS value per
 * row (`null` for NULL, and for every row of an optional column the batch lacks), and per row
 * 1 when one of its text values is not ASCII.
 */
function bindColumns(declared, batch) {
  const rows = batch.rows;
  const names = [];
  const cells = [];
  const nonAsciiRows = new Uint8Array(rows);
  let nulls = null;
  for (let d = 0; d < declared.length; d++) {
    const spec = declared[d];
    let column;
    for (let c = 0; c < batch.columns.length; c++) {
      if (batch.columns[c].name === spec.name) {
        column = batch.columns[c];
        break;
      }
    }
    names.push(spec.name);
    if (column === undefined) {
      if (spec.presence !== Presence.OPTIONAL) {
        throw new BatchError('missing-column', `input column \`${spec.name}\` is not in the batch`);
      }
      if (nulls === null) nulls = new Array(rows).fill(null);
      cells.push(nulls);
      continue;
    }
    const tag = column.values.tag;
    const val = column.values.val;
    const present = column.present;
    if (present.length !== 0 && present.length !== rows) {
      throw malformed(spec.name, 'its NULL map does not have one entry per row');
    }
    // An empty NULL map means no NULLs in this batch.
    const nullable = present.length !== 0;
    let values;
    if (tag === 'text' && TEXT_KINDS.has(spec.kind)) {
      values = textCells(spec.name, val, rows, nullable ? present : null, nonAsciiRows);
    } else if (
      (tag === 'integer' && INTEGER_KINDS.has(spec.kind)) ||
      (tag === 'float' && spec.kind === 'float')
    ) {
      if (val.length !== rows) throw malformed(spec.name, 'it does not have one value per row');
      values = new Array(rows);
      for (let i = 0; i < rows; i++) values[i] = nullable && present[i] === 0 ? null : val[i];
    } else {
      throw new BatchError(
        'wrong-column-type',
        `input column \`${spec.name}\` is declared ${spec.kind} ` +
          `but the batch carries ${tag} values`,
      );
    }
    cells.push(values);
  }
  return { names, cells, nonAsciiRows };
}

function malformed(column, what) {
  return new BatchError('malformed-batch', `input column \`${column}\` is malformed: ${what}`);
}

/**
 * Cuts a text column into its cells (`null` where `present` says NULL). The host sends all
 * values of a column as one string plus byte offsets into its UTF-8 encoding (one buffer crosses
 * the component boundary instead of one string per cell). JavaScript strings index UTF-16 code
 * units, so offsets are only string indices when the text is ASCII; otherwise the text is
 * encoded back to UTF-8 and each cell's bytes decoded, natively (walking the text to translate
 * offsets costs the interpreter about a microsecond a character, milliseconds for one long
 * value), and the rows holding non-ASCII text are marked in `nonAsciiRows`.
 */
function textCells(column, { data, offsets }, rows, present, nonAsciiRows) {
  if (offsets.length !== rows + 1) throw malformed(column, 'it does not have rows + 1 offsets');
  const bad = () => malformed(column, 'an offset decreases, is past the end or splits a character');
  const cells = new Array(rows);
  let start = offsets[0];
  if (offsets[rows] === data.length && !NON_ASCII.test(data)) {
    for (let i = 0; i < rows; i++) {
      const end = offsets[i + 1];
      if (start > end) throw bad();
      cells[i] = present !== null && present[i] === 0 ? null : data.slice(start, end);
      start = end;
    }
    return cells;
  }
  // componentize-js (0.23) turns the host's UTF-8 into a JS string with `new TextDecoder()`,
  // which drops a byte order mark (U+FEFF) at the start of the text. When the first non-NULL
  // cell begins with one, the text arrives exactly 3 bytes shorter than the offsets say: put it
  // back, or every cell of the column would be cut in the wrong place. (An ASCII text whose mark
  // was dropped comes here too: its offsets are not string indices.)
  let bytes = UTF8_ENCODER.encode(data);
  if (bytes.length + 3 === offsets[rows]) bytes = UTF8_ENCODER.encode(`\ufeff${data}`);
  for (let i = 0; i < rows; i++) {
    const end = offsets[i + 1];
    if (start > end || end > bytes.length) throw bad();
    let cell;
    try {
      cell = CELL_DECODER.decode(bytes.subarray(start, end));
    } catch {
      throw bad(); // a cut inside a character
    }
    if (cell.length !== end - start) nonAsciiRows[i] = 1;
    cells[i] = present !== null && present[i] === 0 ? null : cell;
    start = end;
  }
  return cells;
}

const NON_ASCII = /[^\x00-\x7f]/;
const UTF8_ENCODER = new TextEncoder();
// `fatal`: a cell cut inside a character is an error, not U+FFFD; `ignoreBOM`: a cell that
// begins with U+FEFF keeps it.
const CELL_DECODER = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** UTF-8 length of `text` in bytes (an ASCII text's without encoding it). */
function utf8Length(text) {
  return NON_ASCII.test(text) ? UTF8_ENCODER.encode(text).length : text.length;
}

// Value kinds of the WIT `batch-result.kinds` list: 0 text, 1 integer, 2 float, 3 boolean.

const I64_MIN = -(2n ** 63n);
const I64_MAX = 2n ** 63n - 1n;

// NUL and the other C0 controls but tab, line feed and carriage return: ReqCheck keeps text in
// PostgreSQL, which cannot store NUL, and the rest is never clinic data. A record holding one is
// rejected (`control-character`), as the Rust SDK and the host do.
const UNSTORABLE = /[\u0000-\u0008\u000b\u000c\u000e-\u001f]/;
const CONTROL_CHARACTER_MESSAGE =
  'the text holds a NUL or another control character (other than tab and line breaks), ' +
  'which ReqCheck cannot store';
const UNDECLARED_MESSAGE = 'the module wrote a field it did not declare';

/**
 * Findings for the entries `from..to` whose text ReqCheck cannot store (`lists`: the batch's
 * field lists, as `runBatch` hands them over).
 */
function unstorableFields(lists, from, to) {
  const findings = [];
  for (let e = from; e < to; e++) {
    if (lists.kinds[e] !== 0 || lists.words[2 * e] === 0) continue;
    const piece = pieceAt(lists, lists.words[2 * e + 1]);
    if (UNSTORABLE.test(lists.pieces[piece])) {
      findings.push({
        field: lists.names[lists.indexes[e]].name,
        code: 'control-character',
        message: CONTROL_CHARACTER_MESSAGE,
      });
    }
  }
  return findings;
}

/** The text piece starting at byte `start` (pieces are never empty: starts are distinct). */
function pieceAt(lists, start) {
  if (lists.byStart === undefined) {
    lists.byStart = new Map();
    for (let p = 0; p < lists.pieces.length; p++) lists.byStart.set(lists.starts[p], p);
  }
  return lists.byStart.get(start);
}

/** Recomputes every text entry's UTF-8 offsets from its piece, counting every piece. */
function recount(lists) {
  const starts = [];
  const lengths = [];
  let bytes = 0;
  for (let p = 0; p < lists.pieces.length; p++) {
    const length = utf8Length(lists.pieces[p]);
    starts.push(bytes);
    lengths.push(length);
    bytes += length;
  }
  for (let e = 0; e < lists.count; e++) {
    if (lists.kinds[e] !== 0 || lists.words[2 * e] === 0) continue;
    const piece = pieceAt(lists, lists.words[2 * e + 1]);
    lists.words[2 * e] = lengths[piece];
    lists.words[2 * e + 1] = starts[piece];
  }
  lists.starts = starts;
  lists.byStart = undefined;
}
