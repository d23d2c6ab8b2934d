"""Checks most transforms need, over single column values: whitespace clean-up, strict ISO
dates and timestamps, US postal codes and phone numbers, e-mail plausibility.

The Python twin of the Rust SDK's `reqsync_guest::rules` (guest-sdk/src/rules/). Both languages
must give the same answer for every value, so a few Python conveniences are avoided on purpose:

- `str.strip()` and `str.isspace()` treat the ASCII separators U+001C..U+001F as whitespace;
  Rust (Unicode's White_Space property) does not. `WHITESPACE` spells out Unicode's list.
- `\\d` and `str.isdigit()` accept any script's digits ("２０２３"); the patterns here use
  `[0-9]`, ASCII only, as the Rust code does.

Every function takes a `str` (never None) and returns the cleaned value, or None when it will not
accept the value.
"""

import re
from datetime import date

# Unicode's White_Space characters: what Rust's `str::trim` and `char::is_whitespace` use.
WHITESPACE = (
    "\t\n\x0b\x0c\r \x85\xa0\u1680"
    "\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a"
    "\u2028\u2029\u202f\u205f\u3000"
)
_WHITESPACE_RUN = re.compile("[" + re.escape(WHITESPACE) + "]+")


def trim(value: str) -> str:
    """`value` without leading and trailing whitespace (the Unicode list above)."""
    return value.strip(WHITESPACE)


def collapse_whitespace(value: str) -> str:
    """Trims `value` and turns every inner run of whitespace (tabs, line breaks, no-break
    spaces...) into one space. ReqCheck matches patients by what it stores, so "Mary  Ann" and
    "Mary Ann" must not become two spellings of one name."""
    value = value.strip(WHITESPACE)
    # Every whitespace character but the space is unprintable to `str.isprintable`, so a
    # printable value without a double space has nothing to collapse (the usual case, and far
    # cheaper than the substitution).
    if value.isprintable() and "  " not in value:
        return value
    return _WHITESPACE_RUN.sub(" ", value)


def non_blank(value: str | None) -> str | None:
    """`value` trimmed, or None when nothing is left: the "omit when blank" rule, since ReqCheck
    must never receive an empty string for an optional field."""
    if value is None:
        return None
    return value.strip(WHITESPACE) or None


# ---- dates and timestamps ------------------------------------------------------------------
# Strict on purpose: ReqCheck reads `MM-DD-YYYY` as day-month and `MM/DD/YY` as year 00YY without
# complaint, so anything that is not exactly `YYYY-MM-DD` must be caught here.

_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
# Hours 00-23, minutes and seconds 00-59, the offset's too; the date is checked as a calendar
# date separately.
_TIMESTAMP = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}T(?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]"
    r"(?:\.[0-9]{1,9})?"
    r"(?:Z|[+-](?:[01][0-9]|2[0-3]):[0-5][0-9])"
)
_from_iso = date.fromisoformat


def parse_date(value: str) -> date | None:
    """Exactly `YYYY-MM-DD` naming a real calendar date between 0001-01-01 and 9999-12-31:
    `2024-02-29` is accepted; `2023-02-29`, `2024-2-9` and ` 2024-02-09` are not."""
    # The pattern fixes the shape (`date.fromisoformat` alone would take `20240229` and week
    # dates too); `fromisoformat` then reads those digits as `date(y, m, d)` would.
    if _DATE.fullmatch(value) is None:
        return None
    try:
        return _from_iso(value)
    except ValueError:  # month 13, day 31 of a 30-day month, year 0000...
        return None


def is_timestamp(value: str) -> bool:
    """True for `YYYY-MM-DDTHH:MM:SS[.fraction]±HH:MM` (or `Z` for UTC) with a real date,
    1 to 9 fraction digits and an explicit offset: a local time without one is ambiguous twice
    a year."""
    if _TIMESTAMP.fullmatch(value) is None:
        return False
    try:
        _from_iso(value[:10])
    except ValueError:
        return False
    return True


# ---- US postal addresses, phone numbers, e-mail --------------------------------------------

# Every two-letter code the US Postal Service delivers to: the 50 states, DC, the inhabited
# territories (AS, GU, MP, PR, VI), the freely associated states USPS serves (FM, MH, PW) and the
# military "states" AA, AE, AP (APO/FPO addresses are real mailing addresses of real patients).
# UM (Minor Outlying Islands) is left out: it has no mail service.
US_STATE_CODES = frozenset(
    "AA AE AK AL AP AR AS AZ CA CO CT DC DE FL FM GA GU HI IA ID IL IN KS KY LA MA MD ME MH MI "
    "MN MO MP MS MT NC ND NE NH NJ NM NV NY OH OK OR PA PR PW RI SC SD TN TX UT VA VI VT WA WI "
    "WV WY".split()
)


def normalize_state(value: str) -> str | None:
    """The upper-cased code when the trimmed value is a USPS code (" mo " -> "MO"). Full names
    such as "Missouri" are refused: guessing is not our job."""
    code = trim(value)
    if len(code) != 2 or not code.isascii():
        return None
    code = code.upper()
    return code if code in US_STATE_CODES else None


_ZIP = re.compile(r"[0-9]{5}(?:-[0-9]{4})?")


def normalize_zip(value: str) -> str | None:
    """The trimmed value when it is a 5-digit ZIP code or a ZIP+4 (`12345-6789`). Nine digits
    without the hyphen are refused rather than repaired: they are as often a typo as a ZIP+4."""
    zip_code = trim(value)
    return zip_code if _ZIP.fullmatch(zip_code) else None


# Digits and the punctuation people type around them; nothing else. Letters are refused, so
# `816-555-0100 x12` never loses its extension silently.
_PHONE_CHARACTERS = re.compile(r"[0-9 ().-]*")
_NOT_A_DIGIT = re.compile(r"[^0-9]")


# `816-555-0100` with an area code and an exchange that do not start with 0 or 1: already what
# `normalize_phone` returns.
_FORMATTED_PHONE = re.compile(r"[2-9][0-9]{2}-[2-9][0-9]{2}-[0-9]{4}")


def normalize_phone(value: str) -> str | None:
    """A North American number as `816-555-0100`.

    Takes 10 digits, or 11 starting with the country code 1 (`+1 816 555 0100`; the 1 is dropped
    since ReqCheck stores national numbers), with spaces, `( ) - .` and one leading `+`. Refuses
    area codes and exchanges starting with 0 or 1, which the numbering plan never assigns (this
    catches `123-456-7890` and digit-shifted entries)."""
    number = trim(value)
    if _FORMATTED_PHONE.fullmatch(number):
        return number
    number = number.removeprefix("+")
    if not _PHONE_CHARACTERS.fullmatch(number):
        return None
    digits = _NOT_A_DIGIT.sub("", number)
    if len(digits) == 11 and digits[0] == "1":
        digits = digits[1:]
    if len(digits) != 10 or digits[0] < "2" or digits[3] < "2":
        return None
    return f"{digits[:3]}-{digits[3:6]}-{digits[6:]}"


# An ASCII address that the byte-wise checks of `plausible_email` accept: a local part of 1-64
# allowed characters without edge or double dots, then labels of letters, digits and inner
# hyphens (1-63 characters), at least two, the last one of two or more characters with a letter
# or hyphen in it. Whatever this refuses goes through those checks.
_PLAIN_EMAIL = re.compile(
    r"(?=[^@]{1,64}@)[!#-'*+\-/-9=?A-Z^-~]+(?:\.[!#-'*+\-/-9=?A-Z^-~]+)*@"
    r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+"
    r"(?=[A-Za-z0-9-]*[A-Za-z-])[A-Za-z0-9][A-Za-z0-9-]{0,61}[A-Za-z0-9]"
)

# A local part byte: anything visible but `"(),:;<>[]\`; non-ASCII bytes are allowed
# (internationalised addresses).
_EMAIL_LOCAL = re.compile(rb'[^\x00-\x20\x7f"(),:;<>\[\]\\]+')
# A domain label: letters, digits, hyphens or non-ASCII.
_EMAIL_LABEL = re.compile(rb"[A-Za-z0-9\x80-\xff-]+")
# Non-ASCII whitespace and control characters (U+0080..U+009F), which no address contains.
_EMAIL_ODD = re.compile("[\x80-\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]")


def plausible_email(value: str) -> str | None:
    """The trimmed value when it looks like a deliverable address: one `@`; a local part without
    spaces or edge/double dots; a domain of at least two dot-separated labels (letters, digits,
    hyphens or non-ASCII, not starting or ending with a hyphen) whose last label has two or more
    characters and is not all digits. Lengths follow RFC 5321 (64 / 253 / 254 bytes).

    Plausible, not valid: the point is to drop what is obviously not an address (`none`, `n/a`,
    `john@`, `john@gmail`), not to reproduce RFC 5322. Lengths are UTF-8 bytes, as in the Rust
    rule, hence the byte-wise checks."""
    address = trim(value)
    # Most addresses are plain ASCII ones that one expression accepts (see _PLAIN_EMAIL);
    # anything else takes the byte-wise checks below.
    if len(address) <= 254 and _PLAIN_EMAIL.fullmatch(address):
        return address
    raw = address.encode()
    if len(raw) > 254:
        return None
    local, at, domain = raw.partition(b"@")
    if not at or len(local) > 64 or not _EMAIL_LOCAL.fullmatch(local):
        return None
    if local.startswith(b".") or local.endswith(b".") or b".." in local:
        return None
    if not domain or len(domain) > 253:
        return None
    labels = domain.split(b".")
    for label in labels:
        if (
            len(label) > 63
            or not _EMAIL_LABEL.fullmatch(label)
            or label.startswith(b"-")
            or label.endswith(b"-")
        ):
            return None
    # The last label: at least two characters (a non-ASCII one is two bytes or more, so count
    # characters), and not all digits (`10.0.0.1` is not a domain name).
    last = labels[-1]
    if last.isdigit() or len(last) < 2 or len(last.decode()) < 2:
        return None
    if len(labels) < 2 or _EMAIL_ODD.search(address):
        return None
    return address
