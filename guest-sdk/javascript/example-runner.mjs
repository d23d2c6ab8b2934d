// Runs example cases through a JavaScript module in Node.js, without building the component:
// the shared part of each module folder's `check-examples.mjs`, e.g.
//
//     node transforms/patients-js/check-examples.mjs [EXAMPLES.json]
//
// It builds the same columnar batch the host builds from example rows and compares outcomes the
// way `reqsync::transform::examples` does. Node's JavaScript engine is not the one inside the
// component, though: the e2e tests on the built component are the real gate. Needs no npm
// packages. Not part of any component.

import { readFile } from 'node:fs/promises';

/**
 * Runs the cases of `path` through `module` (its `describe` and `transform` exports), prints
 * each failing case and a summary, and returns the number of failures.
 */
export async function runExamples({ describe, transform }, path) {
  const { as_of_date: asOfDate, cases } = JSON.parse(await readFile(path, 'utf8'));
  // The batch, column by column, as reqsync's host builds it from JSON rows (json_rows.rs): every
  // declared column, a missing or null value is NULL, text as one string plus UTF-8 byte offsets.
  const info = describe();
  const columns = info.inputColumns.map(({ name, kind }) => {
    const cells = cases.map((c) => c.row[name] ?? null);
    const present = Uint8Array.from(cells, (v) => (v === null ? 0 : 1));
    let values;
    if (kind === 'integer' || kind === 'boolean') {
      values = { tag: 'integer', val: BigInt64Array.from(cells, (v) => BigInt(v ?? 0)) };
    } else if (kind === 'float') {
      values = { tag: 'float', val: Float64Array.from(cells, (v) => v ?? 0) };
    } else {
      const offsets = [0];
      for (const v of cells) offsets.push(offsets.at(-1) + Buffer.byteLength(v ?? ''));
      const data = cells.map((v) => v ?? '').join('');
      values = { tag: 'text', val: { data, offsets: Uint32Array.from(offsets) } };
    }
    return { name, values, present: present.every((p) => p === 1) ? new Uint8Array() : present };
  });

  const result = transform({ asOfDate }, { rows: cases.length, columns });
  const text = Buffer.from(result.text, 'utf8');
  const float = new DataView(new ArrayBuffer(8));

  /** Entries `first..first+count` of the result's typed fields, as the record the host writes. */
  function record({ first, count }) {
    const out = {};
    for (let e = first; e < first + count; e++) {
      const value = result.values[e];
      let json;
      switch (result.kinds[e]) {
        case 0:
          json = text
            .subarray(Number(value >> 32n), Number((value >> 32n) + (value & 0xffffffffn)))
            .toString('utf8');
          break;
        case 1:
          json = Number(BigInt.asIntN(64, value));
          break;
        case 2:
          float.setBigUint64(0, value, true);
          json = float.getFloat64(0, true);
          break;
        case 3:
          json = value === 1n;
          break;
        default:
          throw new Error(`entry ${e}: unknown value kind ${result.kinds[e]}`);
      }
      out[info.outputFields[result.fieldIndexes[e]].name] = json;
    }
    return out;
  }
  const tags = (findings) => findings.map((f) => `${f.field}:${f.code}`).sort();
  const asSet = (list) => JSON.stringify([...new Set(list)].sort());
  const sameSet = (a, b) => asSet(a) === asSet(b);

  let failed = 0;
  cases.forEach(({ name, expect }, i) => {
    const { tag, val } = result.outcomes[i];
    let problem;
    if (tag === 'emit') {
      const emitted = record(val);
      if (!('emit' in expect)) problem = `emitted, expected ${Object.keys(expect)[0]}`;
      else if (!sameJson(emitted, expect.emit)) problem = `emitted ${JSON.stringify(emitted)}`;
      else if (!sameSet(tags(val.warnings), expect.warnings ?? [])) {
        problem = `warnings ${tags(val.warnings)}`;
      }
    } else if (tag === 'reject') {
      if (!('reject' in expect) || !sameSet(tags(val), expect.reject)) {
        problem = `rejected with ${tags(val)}`;
      }
    } else if (expect.skip !== val.code) {
      problem = `skipped with ${val.code}`;
    }
    if (problem !== undefined) {
      failed += 1;
      console.log(`FAIL ${name}: ${problem}; expected ${JSON.stringify(expect)}`);
    }
  });
  console.log(`${cases.length - failed} of ${cases.length} example cases pass (${path})`);
  return failed;
}

/** Equal as JSON values (object key order does not matter). */
function sameJson(a, b) {
  if (typeof a !== 'object' || a === null || typeof b !== 'object' || b === null) return a === b;
  const keys = Object.keys(a);
  return keys.length === Object.keys(b).length && keys.every((k) => k in b && sameJson(a[k], b[k]));
}
