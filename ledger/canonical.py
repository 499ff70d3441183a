"""Strict JSON in, canonical JSON (RFC 8785, JCS) out.

Everything the registry signs, hashes or stores goes through here. Input is refused rather than
repaired: duplicate keys, floats, integers beyond 2^53-1, lone surrogates and strings not in
Unicode NFC are `SCHEMA` errors (clients normalize before they sign). So is U+0000 in any string,
a house limit beyond the spec: PostgreSQL's text cannot hold it, and both backends must give the
same answer (docs/spec-readings.md).
"""

from __future__ import annotations

import json
import re
import unicodedata
from typing import Any

import rfc8785

from ledger.errors import Rejected

MAX_SAFE_INT = 2**53 - 1
MAX_DEPTH = 32
_SURROGATE = re.compile("[\ud800-\udfff]")
_ABOVE_BMP = re.compile("[\U00010000-\U0010ffff]")


def _reject_float(text: str) -> Any:
    raise Rejected("SCHEMA", f"number {text} is not an integer: JSON numbers here are integers (amounts in grams); "
                   f"send a decimal as a string, such as \"{text}\"")


def _reject_constant(text: str) -> Any:
    raise Rejected("SCHEMA", f"{text} is not JSON")


# The longest text of a safe integer: "-" and 16 digits. Longer ones are refused before int(),
# which raises ValueError (not a JSON error) beyond 4,300 digits and is quadratic below that.
_MAX_SAFE_INT_CHARS = len(str(-MAX_SAFE_INT))


def _bounded_int(text: str) -> int:
    if len(text) > _MAX_SAFE_INT_CHARS or abs(value := int(text)) > MAX_SAFE_INT:
        raise Rejected("SCHEMA", f"integer {text[:24]}{'...' if len(text) > 24 else ''} is beyond 2^53-1")
    return value


def _unique_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise Rejected("SCHEMA", f"duplicate JSON key {key!r}")
            seen.add(key)
    return result


def _check_strings(value: Any, depth: int = 0) -> None:
    if depth > MAX_DEPTH:
        raise Rejected("SCHEMA", f"JSON nested deeper than {MAX_DEPTH}")
    if isinstance(value, str):
        check_text(value)
    elif isinstance(value, dict):
        for key, item in value.items():
            check_text(key)
            _check_strings(item, depth + 1)
    elif isinstance(value, list):
        for item in value:
            _check_strings(item, depth + 1)


def check_text(text: str) -> None:
    """A string the registry accepts: valid Unicode (no lone surrogates), in NFC, without U+0000."""
    if "\x00" in text:
        raise Rejected("SCHEMA", "string holds U+0000, which this registry does not store")
    if text.isascii():  # ASCII is NFC and has no surrogates: the common case, decided in C
        return
    if _SURROGATE.search(text):
        raise Rejected("SCHEMA", "string holds a lone surrogate: not valid Unicode")
    if not unicodedata.is_normalized("NFC", text):
        raise Rejected("SCHEMA", f"string {text[:40]!r} is not in Unicode NFC; normalize before signing")


def parse_strict(data: bytes | str, *, check_strings: bool = True) -> Any:
    """Parse one JSON document, refusing everything JCS or the spec does not allow. Without
    check_strings its strings' content (U+0000, NFC) is left to the caller, who checks each part
    on its own (check_value): one event of a batch must not fail the others."""
    if isinstance(data, bytes):
        try:
            data = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise Rejected("SCHEMA", f"not UTF-8: {exc.reason} at byte {exc.start}") from None
    try:
        value = json.loads(
            data,
            object_pairs_hook=_unique_pairs,
            parse_float=_reject_float,
            parse_int=_bounded_int,
            parse_constant=_reject_constant,
        )
    except json.JSONDecodeError as exc:
        raise Rejected("SCHEMA", f"not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    except RecursionError:
        raise Rejected("SCHEMA", f"JSON nested deeper than {MAX_DEPTH}") from None
    if check_strings:
        _check_strings(value)
    return value


def check_value(value: Any, depth: int = 0) -> None:
    """Check a value built in Python (not parsed) the way parse_strict checks parsed input."""
    if depth > MAX_DEPTH:
        raise Rejected("SCHEMA", f"JSON nested deeper than {MAX_DEPTH}")
    kind = type(value)
    if kind is str:
        check_text(value)
    elif kind is dict:
        for key, item in value.items():
            if type(key) is not str:
                raise Rejected("SCHEMA", f"object key {key!r} is not a string")
            check_text(key)
            check_value(item, depth + 1)
    elif kind is int:
        if not -MAX_SAFE_INT <= value <= MAX_SAFE_INT:
            raise Rejected("SCHEMA", f"integer of {value.bit_length()} bits is beyond 2^53-1")  # str() fails past 4,300 digits
    elif kind is list:
        for item in value:
            check_value(item, depth + 1)
    elif value is None or kind is bool:
        return
    else:
        raise Rejected("SCHEMA", f"{kind.__name__} is not allowed in a Puhui document (floats never are)")


def jcs(value: Any) -> bytes:
    """RFC 8785 bytes of a value made only of dict, list, str, int, bool and None.

    For such values `json.dumps` with sorted keys is JCS, except that JCS orders keys by UTF-16
    code units: the two orders differ only when a key holds a character above U+FFFF, and then
    rfc8785 does the work. Callers pass values that parse_strict or check_value accepted (no
    floats), which the tests check against rfc8785 itself.
    """
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    if _ABOVE_BMP.search(text):
        return rfc8785.dumps(value)
    return text.encode("utf-8")
