"""Strict JSON: parse a line, and check that it is byte-identical to its RFC 8785 (JCS) form.

The spec allows only integers (|n| <= 2^53-1), no floats, no NaN, no duplicate keys, and the exact
JCS bytes. Duplicate keys need no separate check: json keeps the last value of a repeated key, so
re-serializing gives fewer bytes than the line and the comparison fails.

Fast path: for values made of dicts, lists, str, int, bool and None, `json` with sorted keys, no
spaces and ensure_ascii=False writes the JCS bytes, except that JCS sorts keys by UTF-16 code units
and Python by code points; the two orders differ only for characters above U+FFFF, so a text that
holds one is compared with `rfc8785.dumps` instead (tests/verifier proves the equality with
Hypothesis).
"""

import json
import json.encoder
import re

import rfc8785

MAX_SAFE_INTEGER = 2**53 - 1


class EncodingProblem(ValueError):
    """The bytes are not strict, canonical JSON; the message says why."""


def _reject_float(text):
    raise EncodingProblem(f"number {text} is not an integer (floats are not allowed)")


def _reject_constant(name):
    raise EncodingProblem(f"{name} is not JSON")


_DECODER = json.JSONDecoder(parse_float=_reject_float, parse_constant=_reject_constant)
_SCAN = _DECODER.scan_once  # the C scanner, without decode()'s whitespace handling (none is canonical)
_ENCODER = json.JSONEncoder(ensure_ascii=False, allow_nan=False, sort_keys=True, separators=(",", ":"))
if json.encoder.c_make_encoder is not None:
    # The C encoder that JSONEncoder.encode builds on every call, built once: same bytes, less time.
    # (No circular-reference markers: parsed JSON has no cycles.)
    _C_ENCODE = json.encoder.c_make_encoder(None, None, json.encoder.c_encode_basestring, None, ":", ",", True, False, False)

    def _encode(value):
        return "".join(_C_ENCODE(value, 0))

else:  # pragma: no cover - CPython always has the C encoder
    _encode = _ENCODER.encode
_ASTRAL = re.compile("[\U00010000-\U0010ffff]")
# An integer beyond 2^53-1 has at least 16 digits; only texts holding such a run are walked. The
# run is looked for with every digit mapped to "0" and a plain substring search, eight times faster
# than the regular expression [0-9]{16} (which tries a match at every character).
_DIGITS_AS_ZERO = bytes.maketrans(b"123456789", b"000000000")
_SIXTEEN_ZEROS = b"0" * 16


def has_sixteen_digits(text):
    """Whether text holds a run of 16 ASCII digits (the only digits JSON numbers have)."""
    return text.encode("utf-8", "surrogatepass").translate(_DIGITS_AS_ZERO).find(_SIXTEEN_ZEROS) >= 0


def has_astral(text):
    return not text.isascii() and _ASTRAL.search(text) is not None


def jcs_text(value):
    """The JCS serialization of value, as str (the fast path, falling back to rfc8785)."""
    text = _encode(value)
    if has_astral(text):
        return rfc8785.dumps(value).decode("utf-8")
    return text


def jcs(value):
    """The JCS serialization of value, as bytes."""
    return jcs_text(value).encode("utf-8")


def find_unsafe_integer(value):
    """The first int in value (nested) beyond +-(2^53-1), or None."""
    stack = [value]
    while stack:
        item = stack.pop()
        kind = type(item)
        if kind is int:
            if item > MAX_SAFE_INTEGER or item < -MAX_SAFE_INTEGER:
                return item
        elif kind is dict:
            stack.extend(item.values())
        elif kind is list:
            stack.extend(item)
    return None


def parse_json_text(text):
    """Parse strict JSON text (no floats, NaN or Infinity); raise EncodingProblem."""
    try:
        value, end = _SCAN(text, 0)
    except EncodingProblem:
        raise
    except StopIteration:
        raise EncodingProblem("not JSON: no value at the start of the text") from None
    except RecursionError:
        raise EncodingProblem("JSON nested too deeply") from None
    except ValueError as error:
        raise EncodingProblem(f"not JSON: {error}") from None
    if end != len(text):
        raise EncodingProblem(f"not JSON: extra data at character {end}")
    return value


def check_canonical_text(value, text, raw=None, check_integers=True):
    """Raise EncodingProblem unless text (raw: its UTF-8 bytes) is exactly the JCS of value.

    check_integers=False leaves the 2^53 bound to the caller (leaves.py checks it field by field,
    which costs nothing on the common path)."""
    if check_integers and has_sixteen_digits(text):
        unsafe = find_unsafe_integer(value)
        if unsafe is not None:
            raise EncodingProblem(f"integer {unsafe} is beyond 2^53-1")
    try:
        if has_astral(text):
            canonical_ok = rfc8785.dumps(value) == (raw if raw is not None else text.encode("utf-8"))
        else:
            canonical_ok = _encode(value) == text
    except (rfc8785.CanonicalizationError, RecursionError, ValueError):
        canonical_ok = False
    if not canonical_ok:
        raise EncodingProblem("not canonical JSON (RFC 8785 JCS): key order, spacing, escapes or duplicate keys")


def parse_canonical(raw):
    """Parse raw bytes that must be UTF-8, strict JSON and byte-identical to their JCS form."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise EncodingProblem(f"not UTF-8 ({error.reason} at byte {error.start})") from None
    value = parse_json_text(text)
    check_canonical_text(value, text, raw)
    return value
