"""One log line to one leaf (spec sections 1 to 3): the checks that need no replayed state, in the
order of the section 9 table (ENCODING, SEQ, TIME, SCHEMA), and the bytes its signature covers.

The signed message is `"puhui-event/v1\\n" || JCS({"body", "origin", "type"})` in a format-1 log,
with the prefix "puhui-event/v2\\n" in a format-2 log; a parser serves one format. Because the line
itself is JCS, the body's JCS bytes are a slice of it: after `,"body":` (which cannot occur inside
the `auth` strings, where quotes are escaped) and before the last `,"effects":` or `,"seq":`
(nothing after the body but integers and two escape-free strings)."""

import binascii
import re

from verifier.canonical import _SCAN, MAX_SAFE_INTEGER, EncodingProblem, check_canonical_text, find_unsafe_integer, jcs, parse_json_text
from verifier.schema import (
    EFFECT_TYPES,
    PURPOSES,
    SCHEMAS,
    SUBJECT_KINDS,
    TIME,
    decode_public_key,
    effects_problem,
    is_real_date,
)

EVENT_SIGNATURE_PREFIXES = {1: b"puhui-event/v1\n", 2: b"puhui-event/v2\n"}
EVENT_SIGNATURE_PREFIX = EVENT_SIGNATURE_PREFIXES[1]
LEAF_KEYS = frozenset({"auth", "body", "seq", "time", "type"})
LEAF_KEYS_WITH_EFFECTS = LEAF_KEYS | {"effects"}
AUTH_KEYS = frozenset({"key", "sig"})


def event_message(origin, event_type, body, log_format=1):
    """The bytes an event signature covers (spec section 2), from the body as a value."""
    return EVENT_SIGNATURE_PREFIXES[log_format] + jcs({"body": body, "origin": origin, "type": event_type})


# -- the fast path ---------------------------------------------------------------------------------
#
# Most lines are of a few types whose canonical (JCS) spelling is fixed up to the values: one
# regular expression per type matches exactly the lines that are strict JSON, canonical, with the
# right keys and well-formed fields, when every string in them needs no escape. Such a line is
# turned into its leaf without parsing it as JSON, re-serializing it or walking its fields (the
# three costs of the general path). A line the pattern does not match, or whose values fail a check
# the pattern cannot express (a bound, a real date, an order in time), goes to the general path,
# which decides and explains: the fast path only ever accepts lines the general path accepts, with
# the same leaf (tests/verifier/test_verifier_fastpath.py compares the two on mutated lines).

_F_KEY_CHARS = r'[^"\\\x00-\x1f]*'  # a JCS string that needs no escape: itself, between quotes
_F_STRING = '"(' + _F_KEY_CHARS + ')"'
_F_ID = '"([A-Za-z0-9][A-Za-z0-9._-]{0,127})"'
_F_REQUEST = r'"([^"\\\x00-\x1f]{1,128})"'
_F_POSITIVE = "([1-9][0-9]{0,15})"
_F_INT = "(0|-?[1-9][0-9]{0,15})"
_F_DATE = '"([0-9]{4}-[0-9]{2}-[0-9]{2})"'
# A key id as spec section 2 makes it and a signature in canonical base64 (see LeafParser._sign):
# narrower than any string, which costs the regular expression engine a test of three ranges a
# character; any other spelling is left to the general path.
_F_KEY_ID = '"([0-9a-f]{16})"'
_F_SIG = '"([A-Za-z0-9+/]{85}[AQgw]==)"'
_F_ID_LIST = '\\[("[A-Za-z0-9][A-Za-z0-9._-]{0,127}"(?:,"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")*)\\]'


def _f_enum(values):
    return '"(' + "|".join(re.escape(value) for value in sorted(values)) + ')"'


def _f_id_list(text):
    return text[1:-1].split('","')


def _f_positive(text):
    value = int(text)
    return value if value <= MAX_SAFE_INTEGER else _NO


def _f_int(text):
    value = int(text)
    return value if -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER else _NO


def _f_date(text):
    return text if is_real_date(text) else _NO


_NO = object()  # a converted value that makes the line leave the fast path
_F_STR = (_F_STRING, None)
_F_IDF = (_F_ID, None)
_F_POS = (_F_POSITIVE, _f_positive)
_F_DAT = (_F_DATE, _f_date)
# type -> {field: (pattern with one group, converter of the group's text or None)}
_FAST_BODIES = {
    "transfer": {"transfer_id": _F_IDF, "from": _F_IDF, "to": _F_IDF, "amount_g": _F_POS},
    "retirement": {
        "retirement_id": _F_IDF,
        "account": _F_IDF,
        "amount_g": _F_POS,
        "purpose": (_f_enum(PURPOSES), None),
        "beneficiary": _F_STR,
    },
    "neutrality.claim": {
        "claim_id": _F_IDF,
        "claimant": _F_IDF,
        "subject": ('\\{"kind":' + _f_enum(SUBJECT_KINDS).replace("(", "(?P<subject_kind>", 1) + ',"name":' + _F_STRING.replace("(", "(?P<subject_name>", 1) + "\\}", "subject"),
        "period_start": _F_DAT,
        "period_end": _F_DAT,
        "footprint_g": _F_POS,
        "retirements": (_F_ID_LIST, _f_id_list),
    },
    "offset.surrender": {
        "surrender_id": _F_IDF,
        "entity": _F_IDF,
        "compliance_year": (_F_INT, _f_int),
        "allocation_g": (_F_INT, _f_int),
        "retirements": (_F_ID_LIST, _f_id_list),
    },
}
_F_ISSUANCES = '(null|\\[(?:"[A-Za-z0-9][A-Za-z0-9._-]{0,127}"(?:,"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")*)\\])'


def _f_issuances(text):
    """null, or the listed ids if they are distinct (a repeat is SCHEMA: the general path says so)."""
    if text == "null":
        return None
    ids = text[2:-2].split('","')
    return ids if len(ids) == 1 or len(set(ids)) == len(ids) else _NO


# Format 2 adds `issuances` to transfers and retirements; the other fast bodies are unchanged.
_FAST_BODIES_2 = dict(
    _FAST_BODIES,
    transfer=dict(_FAST_BODIES["transfer"], issuances=(_F_ISSUANCES, _f_issuances)),
    retirement=dict(_FAST_BODIES["retirement"], issuances=(_F_ISSUANCES, _f_issuances)),
)
_F_SERIALS = r"\[\[(?:0|-?[1-9][0-9]{0,15}),(?:0|-?[1-9][0-9]{0,15})\](?:,\[(?:0|-?[1-9][0-9]{0,15}),(?:0|-?[1-9][0-9]{0,15})\])*\]|\[\]"
_F_TIME = '"(([0-9]{4}-[0-9]{2}-[0-9]{2})T(?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]\\.[0-9]{6}Z)"'


def _fast_pattern(event_type, fields, schema):
    fields = dict(fields, request_id=(_F_REQUEST, None))
    names = sorted(fields)  # all ASCII: code point order is JCS's UTF-16 order
    assert frozenset(names) == schema.body_fields[event_type]
    # Each field's value is one named group (the subject's two parts are unnamed: it is built from
    # them, and is the last field, so the body keeps the sorted order of the general path's dict).
    body = ",".join(
        f'"{name}":{fields[name][0]}' if fields[name][1] == "subject" else f'"{name}":' + fields[name][0].replace("(", f"(?P<{name}>", 1)
        for name in names
    )
    effects = '"effects":\\{"serials":(' + _F_SERIALS + ")\\}," if event_type in EFFECT_TYPES else ""
    pattern = (
        '\\{"auth":\\{"key":' + _F_KEY_ID + ',"sig":' + _F_SIG + '\\},"body":\\{' + body + "\\},"
        + effects + '"seq":(0|[1-9][0-9]{0,15}),"time":' + _F_TIME + ',"type":"' + re.escape(event_type) + '"\\}'
    )
    converters = tuple((name, fields[name][1]) for name in names if fields[name][1] not in (None, "subject"))
    has_subject = any(fields[name][1] == "subject" for name in names)
    return re.compile(pattern, re.DOTALL), converters, has_subject, event_type in EFFECT_TYPES, schema.cross_rules[event_type]


_FAST_BY_FORMAT = {
    log_format: {event_type: _fast_pattern(event_type, fields, SCHEMAS[log_format]) for event_type, fields in bodies.items()}
    for log_format, bodies in ((1, _FAST_BODIES), (2, _FAST_BODIES_2))
}
_FAST = _FAST_BY_FORMAT[1]


def _f_serials(text):
    """effects.serials from their canonical text (matched by _F_SERIALS, so one JSON value of
    integers that the scanner reads whole), or _NO if out of bounds."""
    pairs = _SCAN(text, 0)[0]
    bound = MAX_SAFE_INTEGER
    for start, end in pairs:
        if not (-bound <= start <= bound and -bound <= end <= bound):
            return _NO
    return pairs


class Leaf:
    """A parsed log line. `problem` is (code, message) when a stateless check failed."""

    __slots__ = ("seq", "type", "body", "effects", "key_id", "signed", "problem", "key_guess", "verified", "value")

    def __init__(self, seq, event_type=None, body=None, effects=None, key_id=None):
        self.seq = seq
        self.type = event_type
        self.body = body
        self.effects = effects
        self.key_id = key_id
        self.signed = None  # signature || message, as libsodium's crypto_sign_open takes them; None if the signature is malformed
        self.problem = None
        self.key_guess = None  # the public key the signature was checked with ahead of replay
        self.verified = None  # that check's outcome
        self.value = None  # the parsed line, while parsing only


class LeafParser:
    """Parses the log's lines in order; it remembers only the previous time and the key guesses.
    One parser serves one log format (spec "Formats"): its body rules and signature prefix."""

    def __init__(self, origin, root_keys, log_format=1):
        self.origin = origin
        self._schema = SCHEMAS[log_format]
        self._fast = _FAST_BY_FORMAT[log_format]
        self._signed_body_prefix = EVENT_SIGNATURE_PREFIXES[log_format] + b'{"body":'
        message_origin = b',"origin":' + jcs(origin) + b',"type":"'
        # what the signed message of each type ends with, made once (_sign runs only on known types)
        self._message_ends = {event_type: message_origin + event_type.encode("ascii") + b'"}' for event_type in self._schema.event_types}
        self.next_seq = 0
        self.previous_time = None
        # key_id -> public key, from the trust file and every well-formed key.register seen so far:
        # what signature checks done ahead of replay use. Replay re-checks any event whose key in
        # the replayed state is not this guess, so a wrong guess costs time, never correctness.
        self.key_guesses = dict(root_keys)

    def parse(self, raw):
        try:
            leaf = self._parse_fast(raw, raw.decode("utf-8"))
        except UnicodeDecodeError:
            leaf = None
        if leaf is not None:
            return leaf
        leaf = self._parse(raw)
        if leaf.problem is not None and leaf.problem[0] != "ENCODING" and leaf.value is not None:
            # Integers beyond 2^53 are ENCODING, which comes first; fields that passed were bounded
            # by schema.py, so only a leaf with a problem needs the full walk.
            unsafe = find_unsafe_integer(leaf.value)
            if unsafe is not None:
                leaf.problem = ("ENCODING", f"integer {unsafe} is beyond 2^53-1")
        leaf.value = None
        return leaf

    def _parse_fast(self, raw, text):
        """The leaf of a line of a common type in its plainest spelling, or None (then _parse decides)."""
        at = text.rfind(',"type":"')
        event_type = text[at + 9 : -2]
        fast = self._fast.get(event_type) if at > 0 else None
        if fast is None:
            return None
        pattern, converters, has_subject, has_effects, cross_rule = fast
        match = pattern.fullmatch(text)
        if match is None:
            return None
        body = match.groupdict()
        for name, converter in converters:
            value = converter(body[name])
            if value is _NO:
                return None
            body[name] = value
        if has_subject:
            body["subject"] = {"kind": body.pop("subject_kind"), "name": body.pop("subject_name")}
        last = pattern.groups
        effects = None
        if has_effects:
            serials = _f_serials(match.group(last - 3))
            if serials is _NO:
                return None
            effects = {"serials": serials}
        key_id, sig, seq_text, time, day = match.group(1, 2, last - 2, last - 1, last)
        if int(seq_text) != self.next_seq or not is_real_date(day):
            return None
        if self.previous_time is not None and time < self.previous_time:
            return None
        if cross_rule is not None and cross_rule(body):
            return None
        leaf = Leaf(self.next_seq, event_type, body, effects, key_id)
        self.next_seq += 1
        self.previous_time = time
        self._sign(leaf, raw, sig)
        return leaf

    def _parse(self, raw):
        leaf = Leaf(self.next_seq)
        self.next_seq += 1
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as error:
            leaf.problem = ("ENCODING", f"line is not UTF-8 ({error.reason} at byte {error.start})")
            return leaf
        try:
            value = parse_json_text(text)
            if type(value) is not dict:
                raise EncodingProblem("line is not a JSON object")
            keys = value.keys()
            # Section 3: effects is present exactly for the types that have effects.
            event_type = value.get("type")
            expected = LEAF_KEYS_WITH_EFFECTS if type(event_type) is str and event_type in EFFECT_TYPES else LEAF_KEYS
            if keys != expected:
                raise EncodingProblem(f"leaf keys are {sorted(keys)}, expected {sorted(expected)} for type {event_type!r:.40}")
            auth = value["auth"]
            if type(auth) is not dict or auth.keys() != AUTH_KEYS or type(auth["key"]) is not str or type(auth["sig"]) is not str:
                raise EncodingProblem('auth is not {"key": STRING, "sig": STRING}')
            check_canonical_text(value, text, raw, check_integers=False)
        except EncodingProblem as problem:
            leaf.problem = ("ENCODING", str(problem))
            return leaf
        leaf.value = value

        seq = value["seq"]
        if type(seq) is not int or seq != leaf.seq:
            leaf.problem = ("SEQ", f"seq is {seq!r} on line {leaf.seq + 1}, expected {leaf.seq}")
            # the time is still remembered below, so one bad seq does not also fail the next time
        time = value["time"]
        match = TIME.fullmatch(time) if type(time) is str else None
        if match is None or not is_real_date(match.group(1)):
            leaf.problem = leaf.problem or ("TIME", f"time {time!r} is not YYYY-MM-DDTHH:MM:SS.ffffffZ")
        else:
            if self.previous_time is not None and time < self.previous_time:
                leaf.problem = leaf.problem or ("TIME", f"time {time} is earlier than the previous leaf's {self.previous_time}")
            self.previous_time = time
        if leaf.problem:
            return leaf

        if type(event_type) is not str or event_type not in self._schema.event_types:
            leaf.problem = ("SCHEMA", f"unknown event type {event_type!r}")
            return leaf
        body = value["body"]
        problem = self._schema.body_problem(event_type, body)
        if problem is None:
            if "effects" in keys:
                problem = effects_problem(value["effects"])
            elif event_type == "registry.genesis" and body["origin"] != self.origin:
                problem = f"genesis origin {body['origin']!r} differs from the trust file's origin {self.origin!r}"
        if problem:
            leaf.problem = ("SCHEMA", problem)
            return leaf
        leaf.type = event_type
        leaf.body = body
        leaf.effects = value.get("effects")
        leaf.key_id = auth["key"]
        self._sign(leaf, raw, auth["sig"])
        if event_type == "key.register":
            self.key_guesses.setdefault(body["key_id"], decode_public_key(body["public_key"]))
        return leaf

    def _sign(self, leaf, raw, sig):
        """The signed message of a leaf that passed every stateless check, and its key guess."""
        # 64 bytes are 88 base64 characters ending in "==", the last data character carrying 2
        # bits and 4 zero bits (one of A, Q, g, w): any other spelling is not canonical base64.
        try:
            signature = binascii.a2b_base64(sig, strict_mode=True) if len(sig) == 88 and sig[85] in "AQgw" else b""
        except (binascii.Error, ValueError):
            signature = b""
        if len(signature) == 64:
            body_start = raw.index(b',"body":') + 8
            body_end = raw.rindex(b',"effects":' if leaf.effects is not None else b',"seq":')
            leaf.signed = b"".join((signature, self._signed_body_prefix, raw[body_start:body_end], self._message_ends[leaf.type]))
        leaf.key_guess = self.key_guesses.get(leaf.key_id)
