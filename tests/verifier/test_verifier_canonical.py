"""The JSON fast path is RFC 8785, proven against the rfc8785 library with Hypothesis."""

import json
import re

import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from verifier.canonical import MAX_SAFE_INTEGER, EncodingProblem, has_astral, has_sixteen_digits, jcs, jcs_text, parse_canonical

safe_integers = st.integers(min_value=-MAX_SAFE_INTEGER, max_value=MAX_SAFE_INTEGER)
# Every code point but lone surrogates (not UTF-8), weighted towards the tricky ones: controls,
# escapes, U+007F, U+2028, the range above U+E000 and astral characters (UTF-16 key order).
tricky = st.sampled_from(["\x00", "\x08", "\x1f", '"', "\\", "/", "\x7f", "\u2028", "\ue000", "\uffff", "\U0001f600", "\U00010000", "a", "é"])
characters = st.one_of(st.characters(blacklist_categories=("Cs",)), tricky)
strings = st.text(characters, max_size=12)
json_values = st.recursive(
    st.none() | st.booleans() | safe_integers | strings,
    lambda children: st.lists(children, max_size=5) | st.dictionaries(strings, children, max_size=5),
    max_leaves=30,
)


@settings(max_examples=1500, deadline=None)
@given(json_values)
def test_fast_path_equals_rfc8785(value):
    expected = rfc8785.dumps(value)
    assert jcs(value) == expected
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    if not has_astral(text):
        assert text.encode("utf-8") == expected  # the plain fast path, no fallback taken
    assert parse_canonical(expected) == value


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.text(st.sampled_from(["\ue000", "\U0001f600", "a", "\uffff"]), min_size=1, max_size=3), safe_integers, min_size=2, max_size=6))
def test_astral_keys_sort_by_utf16(value):
    assert jcs(value) == rfc8785.dumps(value)
    assert jcs_text(value).encode() == rfc8785.dumps(value)


@pytest.mark.parametrize(
    "raw",
    [
        b'{"a":1.0}',
        b'{"a":1e3}',
        b'{"a":-0}',
        b'{"a":NaN}',
        b'{"a":Infinity}',
        b'{"a":9007199254740992}',
        b'{"a":-9007199254740992}',
        b'{"b":1,"a":2}',
        b'{"a":1,"a":1}',
        b'{"a": 1}',
        b' {"a":1}',
        b'{"a":"\\u00e9"}',
        b'{"a":"\\/"}',
        b'{"a":"\\u001F"}',
        b'{"a":"\\ud800"}',
        b'{"a":"\xed\xa0\x80"}',
        b'{"a":"\xff"}',
        b"[" * 100_000 + b"]" * 100_000,
        b'{"\xee\x80\x80":2,"\xf0\x9f\x98\x80":1}',  # code point order; JCS sorts U+1F600 (D83D DE00) first
    ],
)
def test_not_canonical(raw):
    with pytest.raises(EncodingProblem):
        parse_canonical(raw)


def test_canonical_edge_cases_accepted():
    for raw in (b'{"a":9007199254740991}', b'{"a":"\\u001f\\b\\n"}', b'{"\xf0\x9f\x98\x80":1,"\xee\x80\x80":2}', b'{"a":"\x7f\xe2\x80\xa8"}'):
        assert jcs(parse_canonical(raw)) == raw


@settings(max_examples=500)
@given(st.lists(st.one_of(st.text(alphabet="0123456789", min_size=1, max_size=20), st.text(min_size=1, max_size=3)), max_size=12).map("".join))
def test_sixteen_digit_runs_are_found_as_the_regular_expression_finds_them(text):
    # Digits of other scripts (Arabic-Indic, full-width) are not JSON digits, and lone surrogates
    # must not break the search.
    assert has_sixteen_digits(text) == (re.search("[0-9]{16}", text) is not None)


def test_sixteen_digit_runs_at_the_edges():
    assert has_sixteen_digits("9" * 16) and has_sixteen_digits('{"a":' + "1" * 16 + "}")
    assert not has_sixteen_digits("1" * 15 + "x" + "1" * 15)
    assert not has_sixteen_digits("\u0661" * 16 + "\uff11" * 16)
    assert not has_sixteen_digits("\ud800" + "1" * 15)
