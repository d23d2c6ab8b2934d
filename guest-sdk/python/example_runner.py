"""Runs a module's example cases natively, with ordinary Python tracebacks: the shared part of
each module folder's `run_examples.py`, which puts the WIT bindings and its own folder on
`sys.path` before importing this file (so `app` here is that module):

    scripts/build-guest-python            # also writes the WIT bindings this needs
    target/guest-toolchains/python/bin/python transforms/patients-py/run_examples.py [FILE]

The batch is built the way the host builds it (columnar, UTF-8 byte offsets, NULL maps) and the
records are read back from their typed fields by byte spans, so what passes here passes in the
sandbox too; `cargo test -p reqsync --test e2e guest_python` then checks the built component.
Inside the sandbox a Python exception only shows as `transform-trap`: debug here.

Not part of any component (no module imports it, and no module folder links to it).
"""

import json
import struct
import sys
import traceback
from pathlib import Path

try:
    from wit_world.imports import types
except ImportError:
    sys.exit("no WIT bindings: run scripts/build-guest-python first")

from componentize_py_types import Err

import app
from reqsync_guest import _INTEGER_KINDS, _TEXT_KINDS, FLOAT


def column(spec: types.ColumnSpec, cells: list) -> types.Column:
    """One column as the host sends it (runtime/src/transform/json_rows.rs)."""
    present = bytes(0 if cell is None else 1 for cell in cells)
    if spec.kind in _TEXT_KINDS:
        data, offsets = b"", [0]
        for cell in cells:
            data += (cell or "").encode()
            offsets.append(len(data))
        values = types.ColumnValues_Text(types.TextValues(data.decode(), offsets))
    elif spec.kind in _INTEGER_KINDS:
        values = types.ColumnValues_Integer([int(cell or 0) for cell in cells])
    elif spec.kind is FLOAT:
        values = types.ColumnValues_Float([float(cell or 0) for cell in cells])
    return types.Column(spec.name, values, present)


def field_value(result, entry: int, text: bytes):
    """Entry `entry` of the result's typed fields as the JSON value the host writes."""
    kind, value = result.kinds[entry], result.values[entry]
    if kind == 0:
        start, size = value >> 32, value & 0xFFFF_FFFF
        return text[start : start + size].decode()
    if kind == 1:
        return value - (1 << 64) if value >= 1 << 63 else value
    if kind == 2:
        return struct.unpack("<d", struct.pack("<Q", value))[0]
    if kind == 3:
        return bool(value)
    raise ValueError(f"entry {entry}: unknown value kind {kind}")


def verdict(outcome, result, info, text: bytes):
    """The outcome in the examples' terms: ("emit", record, warnings) / ("reject", findings) /
    ("skip", code)."""
    if isinstance(outcome, types.Outcome_Emit):
        entries = range(outcome.value.first, outcome.value.first + outcome.value.count)
        record = {
            info.output_fields[result.field_indexes[e]].name: field_value(result, e, text)
            for e in entries
        }
        warnings = {f"{w.field}:{w.code}" for w in outcome.value.warnings}
        return ("emit", record, warnings)
    if isinstance(outcome, types.Outcome_Reject):
        return ("reject", {f"{f.field}:{f.code}" for f in outcome.value})
    return ("skip", outcome.value.code)


def expected(expect: dict):
    if "emit" in expect:
        return ("emit", expect["emit"], set(expect.get("warnings", [])))
    if "reject" in expect:
        return ("reject", set(expect["reject"]))
    return ("skip", expect["skip"])


def main(default_examples: Path) -> int:
    """Runs FILE (the first argument, else `default_examples`: the Rust module's cases, the spec
    the module must pass); prints each failing case and a summary, returns the exit status."""
    path = Path(sys.argv[1]) if len(sys.argv) > 1 else default_examples
    spec = json.loads(path.read_text())
    cases = spec["cases"]
    module = app.WitWorld()
    info = module.describe()
    batch = types.RowBatch(
        len(cases),
        [column(col, [case["row"].get(col.name) for case in cases]) for col in info.input_columns],
    )
    try:
        result = module.transform(types.BatchContext(spec["as_of_date"]), batch)
    except Err as refused:
        print(f"the batch was refused: {refused.value.code}: {refused.value.message}")
        return 1
    except Exception:
        traceback.print_exc()
        return 1
    text = result.text.encode()
    failures = 0
    for case, outcome in zip(cases, result.outcomes, strict=True):
        got, want = verdict(outcome, result, info, text), expected(case["expect"])
        if got != want:
            failures += 1
            print(f"FAIL {case['name']}\n   got  {got}\n   want {want}")
    print(f"{len(cases) - failures} of {len(cases)} example cases pass ({path.name})")
    return 1 if failures else 0
