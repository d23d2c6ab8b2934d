"""The CDC CVX codes the module accepts, read from `cvx_codes.csv` when the module is imported.

`cvx_codes.csv` beside this file is a link to the Rust module's list
(transforms/vaccine-doses/data/cvx_codes.csv, see the README there), so the three languages read
one file. In the component the import runs at build time (componentize-py snapshots the
initialised interpreter), so the list is compiled in, the way the Rust module's build.rs compiles
it in, and a malformed file fails `scripts/build-guest-python`, naming the line. The checks are
build.rs's: the header line, three fields a line, a whole-number code, no code twice.
"""

import re
from pathlib import Path

from value_rules import trim

CSV = Path(__file__).with_name("cvx_codes.csv")
HEADER = ["cvx", "short_description", "status"]
_U16 = re.compile(r"\+?[0-9]+")


def split_record(line: str) -> list[str]:
    """One CSV record (RFC 4180 quoting, no line breaks inside fields), as build.rs splits it."""
    fields, field, quoted, i = [], [], False, 0
    while i < len(line):
        c = line[i]
        i += 1
        if not quoted and c == ",":
            fields.append("".join(field))
            field = []
        elif not quoted and c == '"' and not field:
            quoted = True
        elif quoted and c == '"' and line[i : i + 1] == '"':
            field.append('"')
            i += 1
        elif quoted and c == '"':
            quoted = False
            if line[i : i + 1] not in ("", ","):
                raise ValueError("text after a closing quote")
        else:
            field.append(c)
    if quoted:
        raise ValueError("unterminated quote")
    fields.append("".join(field))
    return fields


def load(path: Path = CSV) -> list[int]:
    """The codes of the CSV file, sorted; raises ValueError naming the line of a bad one."""
    # Lines as Rust's `str::lines` cuts them: at "\n" or "\r\n" only.
    lines = path.read_text(encoding="utf-8").split("\n")
    if lines[-1] == "":
        lines.pop()
    lines = [line.removesuffix("\r") for line in lines]
    if not lines or split_record(lines[0]) != HEADER:
        raise ValueError(f"{path.name}: the first line must be `{','.join(HEADER)}`")
    codes = set()
    for number, line in enumerate(lines[1:], start=2):
        if not trim(line):
            continue
        try:
            fields = split_record(line)
        except ValueError as problem:
            raise ValueError(f"{path.name}:{number}: {problem}") from None
        if len(fields) != len(HEADER):
            raise ValueError(
                f"{path.name}:{number}: expected {len(HEADER)} fields "
                f"(cvx,short_description,status), found {len(fields)}"
            )
        text = trim(fields[0])
        # What Rust's `u16::from_str` takes: ASCII digits, an optional "+", at most 65535
        # (`int()` alone would also take "٣", "1_0" and "-0").
        if not _U16.fullmatch(text) or int(text) > 0xFFFF:
            raise ValueError(f"{path.name}:{number}: the CVX code must be a whole number")
        code = int(text)
        if code in codes:
            raise ValueError(f"{path.name}:{number}: CVX code {code} is listed twice")
        codes.add(code)
    if not codes:
        raise ValueError(f"{path.name} lists no CVX codes")
    return sorted(codes)


CVX_CODE_LIST = load()
CVX_CODES = frozenset(CVX_CODE_LIST)
# The same codes as text, in the same order, for the `cvx` column's value hint.
CVX_CODE_TEXTS = tuple(str(code) for code in CVX_CODE_LIST)
