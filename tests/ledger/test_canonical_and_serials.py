"""The JCS fast path equals rfc8785; serial sets behave like sets of integers."""

from __future__ import annotations

import pytest
import rfc8785
from hypothesis import given, settings, strategies as st

from ledger.canonical import check_value, jcs, parse_strict
from ledger.errors import Rejected
from ledger.serials import SerialSet, is_merged
from ledger.units import tonnes, tonnes_shown

json_scalars = st.none() | st.booleans() | st.integers(-(2**53) + 1, 2**53 - 1) | st.text()
json_values = st.recursive(json_scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
                           max_leaves=20)


@settings(max_examples=400)
@given(json_values)
def test_jcs_fast_path_equals_rfc8785(value):
    assert jcs(value) == rfc8785.dumps(value)


def test_jcs_orders_keys_by_utf16_code_units():
    value = {"\U0001f600": 1, "\ufb01": 2}  # above the BMP sorts before U+FB01 in UTF-16
    assert jcs(value) == rfc8785.dumps(value)
    assert jcs(value).index("\U0001f600".encode()) < jcs(value).index("\ufb01".encode())


@settings(max_examples=200)
@given(json_values)
def test_strict_parse_of_canonical_bytes_round_trips(value):
    import unicodedata
    import json
    text = jcs(value).decode()
    if not unicodedata.is_normalized("NFC", text) or any(0xD800 <= ord(c) <= 0xDFFF for c in text) or "\\u0000" in text:
        return
    assert parse_strict(text) == json.loads(text)


@pytest.mark.parametrize("document", [b"[" + b"9" * 5000 + b"]", b'{"n": -' + b"1" * 4301 + b"}",
                                      b"[90071992547409910]", b"[-9007199254740992]"])
def test_an_integer_beyond_2_53_is_schema_whatever_its_length(document):
    # Beyond 4,300 digits int() raises ValueError, which once became a 500.
    with pytest.raises(Rejected) as refused:
        parse_strict(document)
    assert refused.value.code == "SCHEMA" and len(refused.value.message) < 80


def test_the_largest_safe_integers_are_accepted():
    assert parse_strict(b"[9007199254740991,-9007199254740991,0,-0]") == [2**53 - 1, -(2**53 - 1), 0, 0]


@pytest.mark.parametrize("document", [b'"a\\u0000"', b'{"a\\u0000": 1}', b'["\\u00e9\\u0000"]'])
def test_u0000_is_refused_in_every_string(document):
    with pytest.raises(Rejected) as refused:
        parse_strict(document)
    assert refused.value.code == "SCHEMA"
    with pytest.raises(Rejected):
        check_value({"key": ["x\x00"]})


ranges = st.lists(st.tuples(st.integers(0, 200), st.integers(1, 20)), max_size=30)


@settings(max_examples=300)
@given(ranges, ranges, st.integers(1, 100))
def test_serial_set_matches_a_set_of_integers(adds, removes, take):
    model: set[int] = set()
    serials = SerialSet()
    for start, length in adds:
        piece = set(range(start, start + length))
        if piece & model:
            continue
        serials.add(start, start + length)
        model |= piece
        assert is_merged(serials.ranges()) and serials.size_g == len(model)
    for start, length in removes:
        piece = set(range(start, start + length))
        assert serials.covers(start, start + length) == (piece <= model)
        if piece <= model:
            serials.remove(start, start + length)
            model -= piece
    expanded = {s for a, b in serials.ranges() for s in range(a, b)}
    assert expanded == model and is_merged(serials.ranges())
    if 0 < take <= len(model):
        lowest = serials.lowest(take)
        assert is_merged(lowest)
        assert {s for a, b in lowest for s in range(a, b)} == set(sorted(model)[:take])


def test_tonnes_are_exact_with_three_decimals():
    assert tonnes(1_234_567) == "1.235"
    assert tonnes(1_500) == "0.002"  # half to even
    assert tonnes(2_500) == "0.002"
    assert tonnes(10**15) == "1000000000.000"


def test_tonnes_shown_to_people_carry_the_grams_where_they_read_zero():
    assert tonnes_shown(1_234_567) == "1.235 t" and tonnes_shown(1_234_567, unit=False) == "1.235"
    assert tonnes_shown(78) == "0.000 t (78 g)" and tonnes_shown(78, unit=False) == "0.000 (78 g)"
    assert tonnes_shown(500) == "0.000 t (500 g)"  # half to even: 0.000
    assert tonnes_shown(501) == "0.001 t" and tonnes_shown(1_500) == "0.002 t"
    assert tonnes_shown(0) == "0.000 t"  # nothing is nothing
    assert tonnes_shown(-78) == "0.000 t (-78 g)" and tonnes_shown(-501) == "-0.001 t"  # never -0.000
