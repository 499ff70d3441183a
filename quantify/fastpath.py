"""A fast path for the common record: a line (or CSV row) of exactly the methodology's shape.

Ingestion's full path (`quantify.prepare.prepare_record` over `json.loads`) decides every
record and explains every rejection. Most lines a platform sends are the same shape, though:
one JSON object with the four record keys and the inputs, no escapes, no odd whitespace.
`FastRecords` recognises such a line with one compiled regular expression per key order (the
record's own or JCS order, for the record and its inputs; separators with or without one space)
and per set of optional inputs present (up to 3 optional inputs; beyond, all of them present),
and builds the record's canonical bytes from string templates, without a parse into dicts. A
CSV row is matched the same way, its cells joined by newlines (which no value holds).

It only ever accepts. A line it does not recognise, or any doubt (a date that does not exist,
an integer out of range, a reduction of 0 g, bytes that are not UTF-8) goes through the full path,
which gives the same answer it would have given anyway or the rejection with its reason. What
it accepts it turns into exactly the record the full path gives for the same line (tested
against the full path on valid, edge and mutated records). Its patterns and templates
come from RecordRules.compiled, the rules the full path applies.

Why a match is enough: every value the pattern admits is ASCII from [A-Za-z0-9._:-], so it is
valid UTF-8, needs no JSON escape and reads the same in JSON as in the line; each key appears
once (no duplicate keys); integers are written as JSON writes them (no sign, no leading zero,
no fraction or exponent), so their text is their canonical text.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import itertools
import os
import re
from operator import itemgetter
from typing import Any, Callable, Iterable, Iterator, NamedTuple

from quantify.activity import (
    CODE,
    CODE_INPUT,
    FINGERPRINT_DOMAIN,
    INTEGER_INPUT,
    TIME,
    CompiledRules,
    InputCheck,
    RecordRules,
    beijing_day,
    is_real_date,
)
from quantify.methodology import IDENTIFIER, Methodology
from quantify.prepared import PreparedChunk, PreparedRecord, Rejection
from quantify.private import FINGERPRINT_DOMAIN_V2, SALT_BYTES, SALT_CHARS, PrivateRecords

_ID = IDENTIFIER.pattern
_CODE = CODE.pattern
_INTEGER = r"0|[1-9][0-9]{0,12}"  # integer inputs are at most 10^12 (13 digits); range checked after
_COLON = r":[ ]?"  # json.dumps writes ": " by default, compact writers ":"
_COMMA = r",[ ]?"
_RECORD_ORDER = ("activity_id", "subject", "occurred_at", "inputs")
_END = r"[ ]{0,8}(?:\r?\n)?"  # a line keeps its newline; a few trailing blanks (bounded: line length)
_sha256 = hashlib.sha256


_SALTS_PER_BLOCK = 1024  # format-2 salts drawn from the random source at once
_MAX_OPTIONAL = 3  # shapes for every subset of up to this many optional inputs; beyond, all present


def _value_pattern(check: InputCheck) -> str:
    """An input value's pattern, the text of interest in group 1, without the JSON quotes."""
    if check.kind == INTEGER_INPUT:
        return f"({_INTEGER})"
    if check.kind == CODE_INPUT:
        return f"({_CODE})"
    return "(" + "|".join(re.escape(v) for v in sorted(check.values)) + ")"


def _json_value_pattern(check: InputCheck) -> str:
    return _value_pattern(check) if check.kind == INTEGER_INPUT else f'"{_value_pattern(check)}"'


def _object_pattern(parts: list[tuple[str, str]]) -> str:
    return r"\{" + _COMMA.join(f'"{name}"{_COLON}{value}' for name, value in parts) + r"\}"


class IntegerValue(NamedTuple):
    """Where an integer input's text is among a record's values, and its bounds."""

    at: int
    low: int
    high: int


def _values_at(positions: list[int]) -> Callable[[tuple[str, ...]], tuple[str, ...]]:
    """The values at these positions, as a tuple even for one or none (unlike itemgetter)."""
    if len(positions) >= 2:
        return itemgetter(*positions)
    if positions:
        (at,) = positions
        return lambda values: (values[at],)
    return lambda values: ()


class Shape(NamedTuple):
    """What is done with the values of a record with a given set of present inputs.

    Values come in canonical order: activity_id, subject, occurred_at, then the present inputs
    by name (JCS order)."""

    inputs_template: str  # the inputs' JCS text, % the input values
    integers: tuple[IntegerValue, ...]
    quantity_at: int | None
    fingerprint_fields: Callable[[tuple[str, ...]], tuple[str, ...]]  # the fingerprint's input fields
    # Format 2 (quantify.private): the public inputs' JCS text, % public_values(values); the
    # opening's JCS text up to its salt, % opening_values(values) (non-public inputs, occurred_at).
    public_template: str
    public_values: Callable[[tuple[str, ...]], tuple[str, ...]]
    opening_head: str
    opening_values: Callable[[tuple[str, ...]], tuple[str, ...]]


# A built record: PreparedRecord's fields in that order (a plain tuple: one a record; quantify.prepared).
Row = tuple[int, str, str, str, str, int, str, bytes, bytes, bytes]


class LineVariant(NamedTuple):
    """One way of writing a record of one shape on a line."""

    fullmatch: Callable[[str], re.Match | None]
    groups: tuple[int, ...] | None  # the group numbers of the values in canonical order; None: 1, 2, ...
    shape: Shape


class FastRecords:
    """The fast path of one methodology (from its RecordRules)."""

    def __init__(self, rules: RecordRules, private: PrivateRecords | None = None):
        methodology: Methodology = rules.methodology
        compiled: CompiledRules = rules.compiled
        self.compiled = compiled  # what it was built from (tests compare it with the full path's)
        self.private = private  # format 2 when given
        checks = compiled.checks
        by_name = {c.name: c for c in checks}
        required = [c.name for c in checks if c.required]
        optional = [c.name for c in checks if not c.required]
        if len(optional) <= _MAX_OPTIONAL:
            subsets = [combo for n in range(len(optional) + 1) for combo in itertools.combinations(optional, n)]
        else:
            subsets = [tuple(optional)]

        def shape(present: tuple[str, ...]) -> Shape:
            names = sorted(present)
            at = {name: 3 + i for i, name in enumerate(names)}
            integers = [by_name[n] for n in names if by_name[n].kind == INTEGER_INPUT]
            fingerprint_at = [at[n] for n in compiled.fingerprint_fields]

            def jcs_template(keys: list[str]) -> str:  # integers bare, every other value quoted
                return ",".join(f'"{n}":%s' if n in integer_names else f'"{n}":"%s"' for n in keys)
            integer_names = {c.name for c in integers}
            public = [n for n in names if by_name[n].public]
            opening = sorted([n for n in names if not by_name[n].public] + ["occurred_at"])
            at["occurred_at"] = 2
            return Shape(
                "{" + jcs_template(names) + "}",
                tuple(IntegerValue(at[c.name], c.low, c.high) for c in integers),
                None if compiled.quantity_field is None else at[compiled.quantity_field],
                _values_at(fingerprint_at),
                "{" + jcs_template(public) + "}",
                _values_at([at[n] for n in public]),
                '{"fields":{' + jcs_template(opening) + '},"salt":"',
                _values_at([at[n] for n in opening]),
            )

        # JSON Lines: one pattern per set of present inputs and key order (the record's own
        # order or JCS order, for the record and for its inputs).
        declared = [f.name for f in methodology.inputs]
        variants: list[LineVariant] = []
        seen: set[str] = set()
        for subset in subsets:
            present = set(required) | set(subset)
            record_shape = shape(tuple(present))
            for top in (_RECORD_ORDER, tuple(sorted(_RECORD_ORDER))):
                for input_order in ([n for n in declared if n in present], sorted(present)):
                    pattern, groups = self._line_pattern(top, input_order, by_name)
                    if pattern.pattern not in seen:
                        seen.add(pattern.pattern)
                        in_order = groups == tuple(range(1, len(groups) + 1))  # then match.groups(), cheaper
                        variants.append(LineVariant(pattern.fullmatch, None if in_order else groups, record_shape))
        self._variants = tuple(variants)

        # CSV: a row's cells in canonical order joined by newlines (which no value holds); an
        # optional input's cell may be empty (absent).
        self._csv_fullmatch = re.compile("\\n".join(
            [f"({_ID})", f"({_ID})", f"({TIME.pattern})"]
            + [_value_pattern(c) + ("" if c.required else "?") for c in checks])).fullmatch
        self._csv_optional_at = tuple(3 + i for i, c in enumerate(checks) if not c.required)
        self._csv_shapes = {
            tuple(name in subset for name in optional): shape(tuple(required) + subset) for subset in subsets
        }
        self._sorted_names = tuple(c.name for c in checks)

        self._fingerprint_template = (
            '{"fields":{' + ",".join(f'"{n}":"%s"' for n in compiled.fingerprint_fields)
            + f'}},"methodology_id":"{methodology.methodology_id}","subject":"%s","time":"%s"}}'
        )
        self._fingerprint_time = rules.fingerprint_time

    @staticmethod
    def _line_pattern(top: tuple[str, ...], input_order: list[str], by_name: dict[str, InputCheck]
                      ) -> tuple[re.Pattern, tuple[int, ...]]:
        """A line's pattern, and the group numbers of its values in canonical order."""
        inputs = _object_pattern([(n, _json_value_pattern(by_name[n])) for n in input_order])
        values = {"activity_id": f'"({_ID})"', "subject": f'"({_ID})"', "occurred_at": f'"({TIME.pattern})"',
                  "inputs": inputs}
        order: list[str] = []
        for key in top:
            order.extend(input_order if key == "inputs" else [key])
        group = {name: i + 1 for i, name in enumerate(order)}
        canonical = ("activity_id", "subject", "occurred_at", *sorted(input_order))
        return re.compile(_object_pattern([(key, values[key]) for key in top]) + _END), \
            tuple(group[name] for name in canonical)

    def line_values(self, text: bytes | str) -> tuple[tuple[str, ...], Shape] | None:
        """The values in canonical order and the shape, for a line of an exact shape; else None
        (also for bytes that are not UTF-8)."""
        if type(text) is bytes:
            try:
                text = text.decode()
            except UnicodeDecodeError:
                return None
        for fullmatch, groups, shape in self._variants:
            match = fullmatch(text)
            if match is not None:
                return (match.groups() if groups is None else match.group(*groups)), shape
        return None

    def prepare_lines(self, first_line: int, lines: list[bytes | str],
                      full: Callable[[int, Any], PreparedRecord | Rejection | None]) -> PreparedChunk:
        """Consecutive lines numbered from first_line, prepared; a line the fast path does not
        accept goes to full(line, raw), whose result (None for nothing) is kept in its place."""
        return self._prepare(enumerate(lines, first_line), self.line_values, full)

    def row_values(self, columns: tuple[int, ...], row: list[str]) -> tuple[tuple[str, ...], Shape] | None:
        """The same for a CSV row's cells (columns: the cells in canonical order)."""
        match = self._csv_fullmatch("\n".join([row[i] for i in columns]))
        if match is None:
            return None
        values = match.groups()
        if not self._csv_optional_at:
            return values, self._csv_shapes[()]
        shape = self._csv_shapes[tuple(bool(values[at]) for at in self._csv_optional_at)]
        return tuple(v for v in values if v), shape  # only an optional cell can be empty

    def prepare_rows(self, rows: list, layout: Any, full: Callable[[Any], PreparedRecord | Rejection]
                     ) -> PreparedChunk:
        """CSV items ((line, cells), or a Rejection from the reader), prepared: a row of the
        layout's width whose cells the fast path accepts, else full(item)."""
        by_name = {name: column for column, name, _ in layout.inputs}
        if set(by_name) != set(self._sorted_names):  # the header lacks an optional input
            return PreparedChunk.of(full(item) for item in rows)
        columns = (layout.activity_id_at, layout.subject_at, layout.occurred_at_at,
                   *(by_name[name] for name in self._sorted_names))
        width = layout.width
        row_values = self.row_values

        def numbered() -> Iterator[tuple[int, Any]]:
            for item in rows:
                yield (item if type(item) is tuple else (0, item))

        def values(row: Any) -> tuple[tuple[str, ...], Shape] | None:
            return row_values(columns, row) if type(row) is list and len(row) == width else None

        def full_row(line: int, row: Any) -> Any:
            return full((line, row) if type(row) is list else row)

        return self._prepare(numbered(), values, full_row)

    def _prepare(self, numbered: Iterable[tuple[int, Any]],
                 values_of: Callable[[Any], tuple[tuple[str, ...], Shape] | None],
                 full: Callable[[int, Any], PreparedRecord | Rejection | None]) -> PreparedChunk:
        """The fast path's loop, everything it touches a local (it runs once per record): a line
        of an exact shape whose values pass is built into a record of the log's format; any other
        goes to full(line, raw), whose result (None for nothing) is kept in its place.

        One loop and one call per record: no generator between the checks and the building, and
        no column appends per field (PreparedChunk.of_rows turns the rows into columns at once).
        """
        rows: list[Any] = []  # a Row or a PreparedRecord per record, in line order
        rejections: list[Rejection] = []
        add_row, add_rejection = rows.append, rejections.append
        build = self._record_builder() if self.private is None else self._private_record_builder()
        real_date = is_real_date
        numerator, denominator = self.compiled.numerator, self.compiled.denominator
        for line, raw in numbered:
            found = values_of(raw)
            if found is not None:
                values, shape = found
                for at, low, high in shape.integers:
                    if not low <= int(values[at]) <= high:
                        break
                else:
                    if real_date(values[2][:10]):
                        quantity_at = shape.quantity_at
                        scaled = numerator if quantity_at is None else int(values[quantity_at]) * numerator
                        if scaled >= denominator:  # at least 1 g
                            add_row(build(line, values, shape, scaled // denominator))
                            continue
            # Not of an exact shape, out of range, no such day or 0 g: the full path says so.
            item = full(line, raw)
            if item is not None:
                (add_row if type(item) is PreparedRecord else add_rejection)(item)
        return PreparedChunk.of_rows(rows, rejections)

    def _record_builder(self) -> Callable[[int, tuple[str, ...], Shape, int], Row]:
        """Format-1 records (quantify.activity.record_bytes, from templates)."""
        fingerprint_template = FINGERPRINT_DOMAIN.decode() + self._fingerprint_template
        minute = self.compiled.fingerprint_time == "minute"
        fingerprint_time = self._fingerprint_time
        sha256 = _sha256

        def build(line: int, values: tuple[str, ...], shape: Shape, reduction_g: int) -> Row:
            activity_id, subject, occurred_at = values[0], values[1], values[2]
            inputs_jcs = shape.inputs_template % values[3:]
            when = occurred_at[:16] + "Z" if minute else fingerprint_time(occurred_at)
            fingerprint = sha256(
                (fingerprint_template % (*shape.fingerprint_fields(values), subject, when)).encode()).hexdigest()
            data = (  # quantify.activity.record_bytes, inlined
                f'{{"activity_id":"{activity_id}","fingerprint":"{fingerprint}","inputs":{inputs_jcs},'
                f'"occurred_at":"{occurred_at}","reduction_g":{reduction_g},"subject":"{subject}"}}'
            ).encode()
            return (line, activity_id, subject, occurred_at, fingerprint, reduction_g, inputs_jcs, data,
                    sha256(b"\x00" + data).digest(), b"")

        return build

    def _private_record_builder(self) -> Callable[[int, tuple[str, ...], Shape, int], Row]:
        """Format-2 records and their openings (quantify.private.PrivateRecords.prepare, from
        templates): two HMACs and two SHA-256 a record, the leaf hash besides. Salts come a block
        at a time, a fresh block for each chunk (a builder serves one chunk)."""
        fingerprint_template = FINGERPRINT_DOMAIN_V2.decode() + self._fingerprint_template
        minute = self.compiled.fingerprint_time == "minute"
        fingerprint_time = self._fingerprint_time
        # KeyedHash.digest inlined: HMAC-SHA256 from the keys' hashed pads.
        hub_inner, hub_outer = self.private.hub.inner.copy, self.private.hub.outer.copy
        fingerprint_inner, fingerprint_outer = (self.private.fingerprint_hash.inner.copy,
                                                self.private.fingerprint_hash.outer.copy)
        sha256, day_of = _sha256, beijing_day
        salts, salt_at = "", 0

        def build(line: int, values: tuple[str, ...], shape: Shape, reduction_g: int) -> Row:
            nonlocal salts, salt_at
            activity_id, occurred_at = values[0], values[2]
            occurred_on = day_of(occurred_at)
            inner, outer = hub_inner(), hub_outer()
            inner.update(f"{values[1]}|{occurred_on}".encode())
            outer.update(inner.digest())
            subject = outer.digest()[:16].hex()
            when = occurred_at[:16] + "Z" if minute else fingerprint_time(occurred_at)
            inner, outer = fingerprint_inner(), fingerprint_outer()
            inner.update((fingerprint_template % (*shape.fingerprint_fields(values), subject, when)).encode())
            outer.update(inner.digest())
            fingerprint = outer.hexdigest()
            inputs_jcs = shape.public_template % shape.public_values(values)
            if salt_at == len(salts):  # fresh salts, a block at a time
                salts, salt_at = base64.b64encode(os.urandom(SALT_BYTES * _SALTS_PER_BLOCK)).decode(), 0
            opening = f'{shape.opening_head % shape.opening_values(values)}{salts[salt_at:salt_at + SALT_CHARS]}"}}'.encode()
            salt_at += SALT_CHARS
            data = (  # quantify.private.record_bytes_v2, inlined
                f'{{"activity_id":"{activity_id}","fingerprint":"{fingerprint}","inputs":{inputs_jcs},'
                f'"occurred_on":"{occurred_on}","private_sha256":"{sha256(opening).hexdigest()}",'
                f'"reduction_g":{reduction_g},"subject":"{subject}"}}'
            ).encode()
            return (line, activity_id, subject, occurred_at, fingerprint, reduction_g, inputs_jcs, data,
                    sha256(b"\x00" + data).digest(), opening)

        return build


@functools.lru_cache(maxsize=256)
def fast_records(rules: RecordRules, private: PrivateRecords | None = None) -> FastRecords:
    return FastRecords(rules, private)
