"""The glue between reqsync's WIT world (guest-sdk/wit/transform.wit) and a transform written in
Python: the Python counterpart of the Rust SDK crate `reqsync-guest`.

A module subclasses `Transform`, declares its columns and fields, and writes `row()`: one row in,
one outcome (`Emit`, `Skip` or `Reject`) out. This file does the rest, as the Rust SDK does:
checks the batch once (missing, mistyped or malformed columns fail the whole batch with the SDK's
codes), cuts the columnar batch into per-row values, hands the records over typed (declared field
index, value kind, value; text values in one buffer with UTF-8 byte offsets), and answers
`describe`.

Analysts normally never edit this file.
"""

import re
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from enum import Enum
from itertools import pairwise

import wit_world
from componentize_py_types import Err
from wit_world.imports import types

import value_rules

# ---- findings and outcomes ------------------------------------------------------------------


@dataclass(frozen=True)
class Finding:
    """A finding about one output field. `code` is a stable kebab-case identifier; `message`
    must never quote a row value: findings end up in logs and reports, and rows are protected
    health information."""

    field: str
    code: str
    message: str

    def to_wit(self) -> types.Finding:
        return types.Finding(self.field, self.code, self.message)


class Problem(Exception):
    """Raised by a rule that will not accept a value: a code and a fixed message, no field
    (the caller knows which field it was checking; see `Findings.on`)."""

    def __init__(self, code: str, message: str):
        super().__init__(code, message)
        self.code = code
        self.message = message

    def at(self, field: str) -> Finding:
        return Finding(field, self.code, self.message)


class Findings(list):
    """A list of findings that also collects problems:

        with rejections.on("last_name"):
            last_name = clinic.person_name(row.text("lname"))

    A `Problem` raised inside the block becomes a finding on `last_name` and the block ends
    there; any other exception goes on (it is a bug, and the host rejects the row as
    `transform-trap`)."""

    def on(self, field: str) -> "_CollectProblems":
        return _CollectProblems(self, field)


class _CollectProblems:
    __slots__ = ("findings", "field")

    def __init__(self, findings: Findings, field: str):
        self.findings = findings
        self.field = field

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind, problem, traceback) -> bool:
        if kind is not None and issubclass(kind, Problem):
            self.findings.append(problem.at(self.field))
            return True
        return False


@dataclass(frozen=True)
class Emit:
    """Send the record written for this row. `warnings` report values left out or repaired."""

    warnings: Sequence[Finding] = ()


@dataclass(frozen=True)
class Skip:
    """Hold the row back without it being an error in the row itself (e.g. a dose whose patient
    ReqCheck does not have)."""

    code: str
    message: str


@dataclass(frozen=True)
class Reject:
    """The row is invalid: quarantined and never sent. List every problem of the row at once, so
    one look at the quarantine shows the clinic all it has to fix."""

    findings: Sequence[Finding]


Outcome = Emit | Skip | Reject

# ---- what a module declares -----------------------------------------------------------------

ColumnType = types.ColumnType
TEXT = ColumnType.TEXT
INTEGER = ColumnType.INTEGER
FLOAT = ColumnType.FLOAT
BOOLEAN = ColumnType.BOOLEAN
DATE = ColumnType.DATE
TIME = ColumnType.TIME
TIMESTAMP = ColumnType.TIMESTAMP

# How the host delivers each kind: text-like kinds as text, booleans as integers 0/1.
_TEXT_KINDS = frozenset({TEXT, DATE, TIME, TIMESTAMP})
_INTEGER_KINDS = frozenset({INTEGER, BOOLEAN})


class Presence(Enum):
    """Whether a column must be in the batch, and whether NULL is expected in it."""

    # In every batch; NULL not expected (a NULL still reaches `row()`, which decides).
    REQUIRED = "required"
    # In every batch; NULL expected (e.g. LEFT JOINed columns: their absence would silently
    # make every row look like it has no match).
    NULLABLE = "nullable"
    # May be left out of the query; reads as NULL when it is.
    OPTIONAL = "optional"


@dataclass(frozen=True)
class Range:
    """Hint: integer or float values from `min` to `max`, inclusive."""

    min: int
    max: int

    def to_wit(self) -> types.ValueHint:
        return types.ValueHint_Range(types.IntRange(self.min, self.max))


@dataclass(frozen=True)
class Dates:
    """Hint: dates (or the date part of timestamps) from `min` to `max`, `YYYY-MM-DD`."""

    min: str
    max: str

    def to_wit(self) -> types.ValueHint:
        return types.ValueHint_Dates(types.DateRange(self.min, self.max))


@dataclass(frozen=True)
class MaxLength:
    """Hint: text of at most this many characters."""

    characters: int

    def to_wit(self) -> types.ValueHint:
        return types.ValueHint_MaxLength(self.characters)


class OneOf:
    """Hint: one of these exact texts (a code list)."""

    def __init__(self, *codes: str):
        self.codes = list(codes)

    def to_wit(self) -> types.ValueHint:
        return types.ValueHint_OneOf(list(self.codes))


@dataclass(frozen=True)
class Pattern:
    """Hint: text matching this regular expression as a whole (Rust `regex` syntax)."""

    regex: str

    def to_wit(self) -> types.ValueHint:
        return types.ValueHint_Pattern(self.regex)


Hint = Range | Dates | MaxLength | OneOf | Pattern


@dataclass(frozen=True)
class Column:
    """One input column, named exactly as the query returns it. Hints describe valid values so
    `reqsync transform test` generates rows that reach the module's emit paths; nothing
    enforces them on real rows: the module's own rules do."""

    name: str
    kind: ColumnType
    presence: Presence
    hints: tuple = ()

    @classmethod
    def required(cls, name: str, kind: ColumnType, *hints: Hint) -> "Column":
        return cls(name, kind, Presence.REQUIRED, hints)

    @classmethod
    def nullable(cls, name: str, kind: ColumnType, *hints: Hint) -> "Column":
        return cls(name, kind, Presence.NULLABLE, hints)

    @classmethod
    def optional(cls, name: str, kind: ColumnType, *hints: Hint) -> "Column":
        return cls(name, kind, Presence.OPTIONAL, hints)

    def to_wit(self) -> types.ColumnSpec:
        return types.ColumnSpec(
            name=self.name,
            kind=self.kind,
            # WIT `required`: the query must return the column.
            required=self.presence is not Presence.OPTIONAL,
            # WIT `nullable`: NULL is an expected value.
            nullable=self.presence is not Presence.REQUIRED,
            hints=[hint.to_wit() for hint in self.hints],
        )


@dataclass(frozen=True)
class Field:
    """One field the module may put in a record. ReqCheck rejects records with keys outside its
    whitelist, so this must be a whitelisted field of the target (docs/reqcheck-api.md)."""

    name: str
    # True when every emitted record carries this field (the host checks).
    required: bool = False


# ---- rows in, records out -------------------------------------------------------------------


@dataclass(frozen=True)
class Context:
    """Per-batch facts from the host. The module has no clock: age and "not in the future"
    rules compare against `as_of_date`."""

    as_of_date: date


class Row:
    """One row of a batch. Accessors take a declared column name and return None for NULL and
    for an optional column the query does not return (and for a value of another kind, e.g.
    `int()` on a text column). A name that is not declared raises KeyError: a typo must not
    read as NULL forever."""

    __slots__ = ("_columns", "_index")

    def __init__(self, columns: dict, index: int):
        self._columns = columns
        self._index = index

    def _cell(self, name: str):
        try:
            cells = self._columns[name]
        except KeyError:
            raise KeyError(f"column {name!r} is not in the module's input_columns") from None
        return None if cells is None else cells[self._index]

    def text(self, name: str) -> str | None:
        """A text, date, time or timestamp column (dates and times arrive as ISO 8601 text)."""
        value = self._cell(name)
        return value if type(value) is str else None

    def int(self, name: str) -> int | None:
        value = self._cell(name)
        return value if type(value) is int else None

    def float(self, name: str) -> float | None:
        value = self._cell(name)
        return value if type(value) is float else None

    def bool(self, name: str) -> bool | None:
        """A boolean column (delivered as an integer: 0 is false, anything else true)."""
        value = self.int(name)
        return None if value is None else value != 0

    def has_column(self, name: str) -> bool:
        """True when the batch carries the column (its value may still be NULL)."""
        return self._columns.get(name) is not None


class Record:
    """The JSON object of the current row. Each field once; leave a field out by not putting
    it. Never put None or "": ReqCheck stores an explicit null or empty string over the value it
    has, which is never what a partial update wants (so both raise here)."""

    __slots__ = ("_fields",)

    def __init__(self):
        self._fields: dict = {}

    def put(self, field: str, value) -> None:
        """A string, integer, boolean, finite float or `datetime.date` (sent as `YYYY-MM-DD`)."""
        if value is None:
            raise TypeError(f"{field}: None is not sent; leave the field out (put_opt)")
        if not isinstance(value, (str, int, float, date)):
            raise TypeError(f"{field}: a {type(value).__name__} cannot be sent")
        if value == "":
            raise ValueError(f"{field}: an empty string is never sent; leave the field out")
        if field in self._fields:
            raise ValueError(f"{field} is put twice")
        if isinstance(value, date):
            value = value.isoformat()
        self._fields[field] = value

    def put_opt(self, field: str, value) -> None:
        """`put`, or nothing when `value` is None."""
        if value is not None:
            self.put(field, value)


# Value kinds of the WIT `batch-result.kinds` list.
_TEXT, _INTEGER, _FLOAT, _BOOLEAN = 0, 1, 2, 3

# NUL and the other C0 controls but tab, line feed and carriage return: ReqCheck keeps text in
# PostgreSQL, which cannot store NUL, and the rest is never clinic data. A record holding one is
# rejected (`control-character`), as the Rust SDK and the host do.
_UNSTORABLE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f]")
_CONTROL_CHARACTER_MESSAGE = (
    "the text holds a NUL or another control character (other than tab and line breaks), "
    "which ReqCheck cannot store"
)
_I64_MIN, _I64_MAX = -(2**63), 2**63 - 1


class _FieldLists:
    """The typed fields of a batch's emitted records: the WIT `batch-result`'s parallel lists
    and its text buffer, with UTF-8 byte offsets."""

    __slots__ = ("index_of", "text", "pos", "indexes", "kinds", "values")

    def __init__(self, output_fields: Sequence[Field]):
        self.index_of: dict = {}
        for i, field in enumerate(output_fields):
            self.index_of.setdefault(field.name, i)
        self.text: list = []
        self.pos = 0  # UTF-8 byte length of the text so far
        self.indexes: list = []
        self.kinds = bytearray()
        self.values: list = []

    def add(self, record: Record):
        """Appends a record's fields; returns (first entry, count), or the first field name
        that is not declared, or the list of fields whose text ReqCheck cannot store (nothing
        is appended then)."""
        for field in record._fields:
            if field not in self.index_of:
                return field
        unstorable = [
            field
            for field, value in record._fields.items()
            if type(value) is str and _UNSTORABLE.search(value)
        ]
        if unstorable:
            return unstorable
        first = len(self.indexes)
        for field, value in record._fields.items():
            self.indexes.append(self.index_of[field])
            if isinstance(value, str):
                # `isascii` is O(1) in CPython and true for most values.
                size = len(value) if value.isascii() else len(value.encode())
                self.kinds.append(_TEXT)
                self.values.append((self.pos << 32) | size)
                self.text.append(value)
                self.pos += size
            elif isinstance(value, bool):  # before int: a bool is an int in Python
                self.kinds.append(_BOOLEAN)
                self.values.append(int(value))
            elif isinstance(value, int):
                if not _I64_MIN <= value <= _I64_MAX:
                    raise ValueError(f"{field}: the integer does not fit 64 bits")
                self.kinds.append(_INTEGER)
                self.values.append(value & 0xFFFF_FFFF_FFFF_FFFF)
            elif isinstance(value, float):
                if value != value or value in (float("inf"), float("-inf")):
                    raise ValueError(f"{field}: NaN and infinities have no JSON form")
                self.kinds.append(_FLOAT)
                self.values.append(struct.unpack("<Q", struct.pack("<d", value))[0])
            else:
                raise TypeError(f"{field}: a {type(value).__name__} cannot be sent")
        return (first, len(self.indexes) - first)


class Transform(wit_world.WitWorld):
    """Base class of a transform module. Set the class attributes and write `row()`; the module
    file then exports it with `WitWorld = MyModule` (componentize-py instantiates the class
    named `WitWorld`)."""

    name: str
    version: str
    # The record type: `patient_data` or `vaccine_dose_data`.
    target: str
    # The input column identifying a row in reports and quarantine. Its values are keys, not PHI.
    key_column: str
    input_columns: Sequence[Column]
    output_fields: Sequence[Field]

    def row(self, row: Row, ctx: Context, out: Record) -> Outcome:
        raise NotImplementedError

    # -- the WIT exports --

    def describe(self) -> types.ModuleInfo:
        return types.ModuleInfo(
            name=self.name,
            version=self.version,
            target=self.target,
            key_column=self.key_column,
            input_columns=[column.to_wit() for column in self.input_columns],
            output_fields=[
                types.FieldSpec(field.name, field.required) for field in self.output_fields
            ],
        )

    def transform(self, context: types.BatchContext, batch: types.RowBatch) -> types.BatchResult:
        as_of = value_rules.parse_date(context.as_of_date)
        if as_of is None:
            raise _batch_error(
                "invalid-context", "the as-of date is not a YYYY-MM-DD calendar date"
            )
        ctx = Context(as_of)
        columns = _bind(self.input_columns, batch)

        fields = _FieldLists(self.output_fields)
        outcomes = []
        for index in range(batch.rows):
            out = Record()
            outcome = self.row(Row(columns, index), ctx, out)
            if type(outcome) is Emit:
                entries = fields.add(out)
                if isinstance(entries, str):
                    finding = types.Finding(
                        entries, "undeclared-field", "the module wrote a field it did not declare"
                    )
                    outcomes.append(types.Outcome_Reject([finding]))
                    continue
                if isinstance(entries, list):
                    findings = [
                        types.Finding(field, "control-character", _CONTROL_CHARACTER_MESSAGE)
                        for field in entries
                    ]
                    outcomes.append(types.Outcome_Reject(findings))
                    continue
                warnings = [finding.to_wit() for finding in outcome.warnings]
                outcomes.append(types.Outcome_Emit(types.Emitted(*entries, warnings)))
            elif type(outcome) is Reject:
                findings = [finding.to_wit() for finding in outcome.findings]
                outcomes.append(types.Outcome_Reject(findings))
            elif type(outcome) is Skip:
                skipped = types.Skipped(outcome.code, outcome.message)
                outcomes.append(types.Outcome_Skip(skipped))
            else:
                raise TypeError(f"row() returned {type(outcome).__name__}, not an outcome")
        return types.BatchResult(
            "".join(fields.text), fields.indexes, bytes(fields.kinds), fields.values, outcomes
        )


# ---- reading the columnar batch -------------------------------------------------------------


def _batch_error(code: str, message: str) -> Err:
    """The whole batch fails (componentize-py turns the raised `Err` into the WIT error)."""
    return Err(types.BatchError(code, message))


def _malformed(column: str, what: str) -> Err:
    return _batch_error("malformed-batch", f"input column `{column}` is malformed: {what}")


def _bind(declared: Sequence[Column], batch: types.RowBatch) -> dict:
    """Every declared column's values as one list per column (None for NULL), or None for an
    optional column the batch lacks. Checks the batch's shape once so `row()` can trust it;
    the errors and their order are the Rust SDK's."""
    rows = batch.rows
    by_name = {}
    for column in batch.columns:
        by_name.setdefault(column.name, column)  # the first of duplicate names wins, as in Rust
    bound = {}
    for spec in declared:
        column = by_name.get(spec.name)
        if column is None:
            if spec.presence is not Presence.OPTIONAL:
                raise _batch_error(
                    "missing-column", f"input column `{spec.name}` is not in the batch"
                )
            bound[spec.name] = None
            continue
        values = column.values
        if type(values) is types.ColumnValues_Text and spec.kind in _TEXT_KINDS:
            cells = _text_cells(spec.name, values.value, rows)
        elif type(values) is types.ColumnValues_Integer and spec.kind in _INTEGER_KINDS:
            cells = _checked_length(spec.name, values.value, rows)
        elif type(values) is types.ColumnValues_Float and spec.kind is FLOAT:
            cells = _checked_length(spec.name, values.value, rows)
        else:
            carried = {
                types.ColumnValues_Text: "text",
                types.ColumnValues_Integer: "integer",
                types.ColumnValues_Float: "float",
            }[type(values)]
            raise _batch_error(
                "wrong-column-type",
                f"input column `{spec.name}` is declared {spec.kind.name.lower()} but the "
                f"batch carries {carried} values",
            )
        present = column.present
        if present:  # an empty NULL map means the column has no NULLs in this batch
            if len(present) != rows:
                raise _malformed(spec.name, "its NULL map does not have one entry per row")
            cells = [cell if flag else None for cell, flag in zip(cells, present, strict=True)]
        bound[spec.name] = cells
    return bound


def _checked_length(name: str, values: list, rows: int) -> list:
    if len(values) != rows:
        raise _malformed(name, "it does not have one value per row")
    return values


def _text_cells(name: str, text: types.TextValues, rows: int) -> list:
    """Cuts a text column into its cells. Offsets are UTF-8 byte positions: for an all-ASCII
    buffer (the usual case) they equal character positions and the str is sliced directly;
    otherwise the bytes are sliced and decoded, so "José" never shifts the cells after it."""
    offsets = text.offsets
    if len(offsets) != rows + 1:
        raise _malformed(name, "it does not have rows + 1 offsets")
    data = text.data
    source = data if data.isascii() else data.encode()
    broken = "an offset decreases, is past the end or splits a character"
    if rows and (offsets[-1] > len(source) or any(b < a for a, b in pairwise(offsets))):
        raise _malformed(name, broken)
    if source is data:
        return [data[a:b] for a, b in pairwise(offsets)]
    try:
        return [source[a:b].decode() for a, b in pairwise(offsets)]
    except UnicodeDecodeError:
        raise _malformed(name, broken) from None
