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


@dataclass(slots=True)
class Emit:
    """Send the record written for this row. `warnings` report values left out or repaired."""

    warnings: Sequence[Finding] = ()


@dataclass(slots=True)
class Skip:
    """Hold the row back without it being an error in the row itself (e.g. a dose whose patient
    ReqCheck does not have)."""

    code: str
    message: str


@dataclass(slots=True)
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
    """The row being transformed. Accessors take a declared column name and return None for
    NULL and for an optional column the query does not return (and for a value of another kind,
    e.g. `int()` on a text column). A name that is not declared raises KeyError: a typo must not
    read as NULL forever.

    One `Row` serves every row of a batch (it moves on after `row()` returns): read what you
    need during the call, do not keep the object."""

    # Per accessor, declared name -> that column's values (a list of None where the accessor
    # does not apply), so an access is two subscripts; see `_bind`.
    __slots__ = ("_text", "_int", "_float", "_carried", "_index")

    def text(self, name: str) -> str | None:
        """A text, date, time or timestamp column (dates and times arrive as ISO 8601 text)."""
        try:
            return self._text[name][self._index]
        except KeyError:
            raise _undeclared(name) from None

    def int(self, name: str) -> int | None:
        try:
            return self._int[name][self._index]
        except KeyError:
            raise _undeclared(name) from None

    def float(self, name: str) -> float | None:
        try:
            return self._float[name][self._index]
        except KeyError:
            raise _undeclared(name) from None

    def bool(self, name: str) -> bool | None:
        """A boolean column (delivered as an integer: 0 is false, anything else true)."""
        try:
            value = self._int[name][self._index]
        except KeyError:
            raise _undeclared(name) from None
        return None if value is None else value != 0

    def has_column(self, name: str) -> bool:
        """True when the batch carries the column (its value may still be NULL)."""
        return name in self._carried


def _undeclared(name: str) -> KeyError:
    return KeyError(f"column {name!r} is not in the module's input_columns")


class Record:
    """The JSON object of the current row: `out.put(field, value)` and `out.put_opt(field,
    value)`. Each field once; leave a field out by not putting it. Never put None or "":
    ReqCheck stores an explicit null or empty string over the value it has, which is never what
    a partial update wants (so both raise here).

    `put(field, value)`: a string, integer, boolean, finite float or `datetime.date` (sent as
    `YYYY-MM-DD`). `put_opt(field, value)`: `put`, or nothing when `value` is None.

    The fields go straight into the batch's typed field lists (the WIT `batch-result`): `put`
    and `put_opt` are functions bound to those lists (see `_RecordLists`), which is why they are
    attributes rather than methods. A row that is not emitted has its fields taken out again."""

    __slots__ = ("put", "put_opt")


# Value kinds of the WIT `batch-result.kinds` list.
_TEXT, _INTEGER, _FLOAT, _BOOLEAN = 0, 1, 2, 3

# NUL and the other C0 controls but tab, line feed and carriage return: ReqCheck keeps text in
# PostgreSQL, which cannot store NUL, and the rest is never clinic data. A record holding one is
# rejected (`control-character`), as the Rust SDK and the host do. The bytes form checks spans of
# the batch's UTF-8 text (these are ASCII bytes, never part of a longer character).
_UNSTORABLE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f]")
_UNSTORABLE_BYTES = re.compile(b"[\x00-\x08\x0b\x0c\x0e-\x1f]")
_CONTROL_CHARACTER_MESSAGE = (
    "the text holds a NUL or another control character (other than tab and line breaks), "
    "which ReqCheck cannot store"
)
_UNDECLARED_MESSAGE = "the module wrote a field it did not declare"
_I64_MIN, _I64_MAX = -(2**63), 2**63 - 1
_U64 = 0xFFFF_FFFF_FFFF_FFFF
_INFINITIES = (float("inf"), float("-inf"))


class _RecordLists:
    """The typed fields of a batch's emitted records: the WIT `batch-result`'s parallel lists
    and its text buffer (UTF-8 byte offsets), written by the `Record`'s `put` as the module
    calls it.

    Per row the loop in `Transform.transform` notes where the row's entries start (`first`);
    an emitted row's record is entries `first..` of the lists. What `put` cannot decide alone
    waits for the outcome, as it did when records were checked whole: the first undeclared field
    (the row is then rejected `undeclared-field` if emitted) and the first value that has no
    JSON form (raised if emitted). Both are noted in `trouble`, empty for a clean row."""

    __slots__ = ("record", "text", "indexes", "kinds", "values", "trouble", "truncate")

    def __init__(self, output_fields: Sequence[Field], row: Row):
        index_of: dict = {}
        for i, field in enumerate(output_fields):
            index_of.setdefault(field.name, i)
        text: list = []
        indexes: list = []
        kinds = bytearray()
        values: list = []
        # Per declared field: the row (batch index) that last put it; undeclared ones by name.
        written = [-1] * len(output_fields)
        extra: dict = {}
        # [first undeclared field, first value without a JSON form]: set at most once per row.
        trouble: list = []
        pos = 0  # UTF-8 byte length of the text so far

        lookup = index_of.get
        add_index, add_kind, add_value, add_text = (
            indexes.append,
            kinds.append,
            values.append,
            text.append,
        )

        def put(field: str, value) -> None:
            nonlocal pos
            kind = type(value)
            if kind is str:
                if not value:
                    raise ValueError(f"{field}: an empty string is never sent; leave the field out")
            elif kind is date:  # sent as `YYYY-MM-DD`
                value, kind = value.isoformat(), str
            elif kind is not int and kind is not bool and kind is not float:
                value, kind = _unusual(field, value)
            index = lookup(field)
            if index is None:
                _put_undeclared(field, row._index, extra, trouble)
                return
            if written[index] == row._index:
                raise ValueError(f"{field} is put twice")
            written[index] = row._index
            if kind is str:
                # `isascii` is O(1) in CPython and true for most values.
                size = len(value) if value.isascii() else len(value.encode())
                add_kind(_TEXT)
                add_value((pos << 32) | size)
                add_text(value)
                pos += size
            elif kind is int:
                if not _I64_MIN <= value <= _I64_MAX:
                    _trouble(trouble, 1, ValueError(f"{field}: the integer does not fit 64 bits"))
                    return
                add_kind(_INTEGER)
                add_value(value & _U64)
            elif kind is bool:
                add_kind(_BOOLEAN)
                add_value(1 if value else 0)
            else:
                if value != value or value in _INFINITIES:
                    _trouble(trouble, 1, ValueError(f"{field}: NaN and infinities have no JSON form"))
                    return
                add_kind(_FLOAT)
                add_value(_float_bits(value))
            add_index(index)

        def put_opt(field: str, value) -> None:
            if value is not None:
                put(field, value)

        def truncate(first: int) -> None:
            """Takes entries `first..` out again (a row that is not emitted)."""
            nonlocal pos
            for entry in range(len(indexes) - 1, first - 1, -1):
                if kinds[entry] == _TEXT:
                    pos -= values[entry] & 0xFFFF_FFFF
                    text.pop()
            del indexes[first:], kinds[first:], values[first:]

        record = Record()
        record.put = put
        record.put_opt = put_opt
        self.record = record
        self.text, self.indexes, self.kinds, self.values = text, indexes, kinds, values
        self.trouble = trouble
        self.truncate = truncate

    def unstorable(self, raw: bytes, first: int, count: int) -> list:
        """The fields of entries `first..first+count` whose text ReqCheck cannot store, given
        the batch's text as UTF-8 (`raw`). Only called when the batch's text holds one."""
        found = []
        for entry in range(first, first + count):
            if self.kinds[entry] == _TEXT:
                value = self.values[entry]
                start = value >> 32
                if _UNSTORABLE_BYTES.search(raw, start, start + (value & 0xFFFF_FFFF)):
                    found.append(self.indexes[entry])
        return found


def _unusual(field: str, value) -> tuple:
    """`put`'s slow path: a value of no exact str/int/bool/float type, as (value, its kind)."""
    if value is None:
        raise TypeError(f"{field}: None is not sent; leave the field out (put_opt)")
    if isinstance(value, date):
        return value.isoformat(), str
    for kind in (str, bool, int, float):  # bool before int: a bool is an int in Python
        if isinstance(value, kind):
            if kind is str and value == "":
                raise ValueError(f"{field}: an empty string is never sent; leave the field out")
            return value, kind
    raise TypeError(f"{field}: a {type(value).__name__} cannot be sent")


def _put_undeclared(field: str, row: int, extra: dict, trouble: list) -> None:
    """`put` of a field the module did not declare: an error only if the row is emitted."""
    if extra.get(field) == row:
        raise ValueError(f"{field} is put twice")
    extra[field] = row
    _trouble(trouble, 0, field)


def _trouble(trouble: list, slot: int, what) -> None:
    if not trouble:
        trouble.extend((None, None))
    if trouble[slot] is None:
        trouble[slot] = what


def _float_bits(value: float) -> int:
    return struct.unpack("<Q", struct.pack("<d", value))[0]


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
        row = _bind(self.input_columns, batch)
        lists = _RecordLists(self.output_fields, row)
        out, indexes, trouble = lists.record, lists.indexes, lists.trouble
        row_rule = self.row
        outcomes: list = []
        add_outcome = outcomes.append
        outcome_emit, emitted = types.Outcome_Emit, types.Emitted

        for index in range(batch.rows):
            row._index = index
            first = len(indexes)
            outcome = row_rule(row, ctx, out)
            kind = type(outcome)
            if kind is Emit:
                if trouble:
                    undeclared, fault = trouble
                    trouble.clear()
                    if undeclared is not None:
                        lists.truncate(first)
                        finding = types.Finding(undeclared, "undeclared-field", _UNDECLARED_MESSAGE)
                        add_outcome(types.Outcome_Reject([finding]))
                        continue
                    # A value without a JSON form fails the row, unless a control character
                    # rejects it first (below, with the batch's others), as before records
                    # were written field by field.
                    texts = lists.kinds.count(_TEXT, first)
                    row_text = lists.text[len(lists.text) - texts :]
                    if not any(_UNSTORABLE.search(t) for t in row_text):
                        raise fault
                warnings = outcome.warnings
                count = len(indexes) - first
                add_outcome(
                    outcome_emit(
                        emitted(first, count, [w.to_wit() for w in warnings] if warnings else [])
                    )
                )
                continue
            if len(indexes) > first:
                lists.truncate(first)
            if trouble:
                trouble.clear()
            if kind is Reject:
                add_outcome(types.Outcome_Reject([f.to_wit() for f in outcome.findings]))
            elif kind is Skip:
                add_outcome(types.Outcome_Skip(types.Skipped(outcome.code, outcome.message)))
            else:
                raise TypeError(f"row() returned {type(outcome).__name__}, not an outcome")

        text = "".join(lists.text)
        # One search of the whole batch's text; rows only when it finds something.
        if _UNSTORABLE.search(text):
            raw = text.encode()
            names = [field.name for field in self.output_fields]
            for index, outcome in enumerate(outcomes):
                if type(outcome) is not outcome_emit:
                    continue
                unstorable = lists.unstorable(raw, outcome.value.first, outcome.value.count)
                if unstorable:
                    outcomes[index] = types.Outcome_Reject(
                        [
                            types.Finding(names[i], "control-character", _CONTROL_CHARACTER_MESSAGE)
                            for i in unstorable
                        ]
                    )
        return types.BatchResult(text, indexes, bytes(lists.kinds), lists.values, outcomes)


# ---- reading the columnar batch -------------------------------------------------------------


def _batch_error(code: str, message: str) -> Err:
    """The whole batch fails (componentize-py turns the raised `Err` into the WIT error)."""
    return Err(types.BatchError(code, message))


def _malformed(column: str, what: str) -> Err:
    return _batch_error("malformed-batch", f"input column `{column}` is malformed: {what}")


def _bind(declared: Sequence[Column], batch: types.RowBatch) -> Row:
    """A `Row` over every declared column's values, as one list per column (None for NULL).
    Checks the batch's shape once so `row()` can trust it; the errors and their order are the
    Rust SDK's. An accessor that does not apply to a column (`int()` of a text column, any
    accessor of an optional column the batch lacks) reads a list of None."""
    rows = batch.rows
    by_name = {}
    for column in batch.columns:
        by_name.setdefault(column.name, column)  # the first of duplicate names wins, as in Rust
    nulls = [None] * rows
    text, integer, floats, carried = {}, {}, {}, set()
    for spec in declared:
        text[spec.name] = integer[spec.name] = floats[spec.name] = nulls
        column = by_name.get(spec.name)
        if column is None:
            if spec.presence is not Presence.OPTIONAL:
                raise _batch_error(
                    "missing-column", f"input column `{spec.name}` is not in the batch"
                )
            continue
        values = column.values
        if type(values) is types.ColumnValues_Text and spec.kind in _TEXT_KINDS:
            cells, by_kind = _text_cells(spec.name, values.value, rows), text
        elif type(values) is types.ColumnValues_Integer and spec.kind in _INTEGER_KINDS:
            cells, by_kind = _checked_length(spec.name, values.value, rows), integer
        elif type(values) is types.ColumnValues_Float and spec.kind is FLOAT:
            cells, by_kind = _checked_length(spec.name, values.value, rows), floats
        else:
            carried_kind = {
                types.ColumnValues_Text: "text",
                types.ColumnValues_Integer: "integer",
                types.ColumnValues_Float: "float",
            }[type(values)]
            raise _batch_error(
                "wrong-column-type",
                f"input column `{spec.name}` is declared {spec.kind.name.lower()} but the "
                f"batch carries {carried_kind} values",
            )
        present = column.present
        if present:  # an empty NULL map means the column has no NULLs in this batch
            if len(present) != rows:
                raise _malformed(spec.name, "its NULL map does not have one entry per row")
            if 0 in present:
                cells = [cell if flag else None for cell, flag in zip(cells, present)]
        by_kind[spec.name] = cells
        carried.add(spec.name)
    row = Row()
    row._text, row._int, row._float, row._carried, row._index = text, integer, floats, carried, 0
    return row


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
    # `sorted` is one pass over offsets already in order (the usual case).
    if rows and (offsets[-1] > len(source) or offsets != sorted(offsets)):
        raise _malformed(name, broken)
    starts = offsets[:-1]
    ends = offsets[1:]
    if source is data:
        return [data[a:b] for a, b in zip(starts, ends)]
    try:
        return [source[a:b].decode() for a, b in zip(starts, ends)]
    except UnicodeDecodeError:
        raise _malformed(name, broken) from None
