"""One log line to one leaf (spec sections 1 to 3): the checks that need no replayed state, in the
order of the section 9 table (ENCODING, SEQ, TIME, SCHEMA), and the bytes its signature covers.

The signed message is `"puhui-event/v1\\n" || JCS({"body", "origin", "type"})`. Because the line
itself is JCS, the body's JCS bytes are a slice of it: after `,"body":` (which cannot occur inside
the `auth` strings, where quotes are escaped) and before the last `,"effects":` or `,"seq":`
(nothing after the body but integers and two escape-free strings)."""

import binascii

from verifier.canonical import EncodingProblem, check_canonical_text, find_unsafe_integer, jcs, parse_json_text
from verifier.schema import EFFECT_TYPES, EVENT_TYPES, TIME, body_problem, decode_public_key, effects_problem, is_real_date

EVENT_SIGNATURE_PREFIX = b"puhui-event/v1\n"
LEAF_KEYS = frozenset({"auth", "body", "seq", "time", "type"})
LEAF_KEYS_WITH_EFFECTS = LEAF_KEYS | {"effects"}
AUTH_KEYS = frozenset({"key", "sig"})


def event_message(origin, event_type, body):
    """The bytes an event signature covers (spec section 2), from the body as a value."""
    return EVENT_SIGNATURE_PREFIX + jcs({"body": body, "origin": origin, "type": event_type})


class Leaf:
    """A parsed log line. `problem` is (code, message) when a stateless check failed."""

    __slots__ = ("seq", "type", "body", "effects", "key_id", "signed", "problem", "key_guess", "verified", "value")

    def __init__(self, seq):
        self.seq = seq
        self.type = None
        self.body = None
        self.effects = None
        self.key_id = None
        self.signed = None  # signature || message, as libsodium's crypto_sign_open takes them; None if the signature is malformed
        self.problem = None
        self.key_guess = None  # the public key the signature was checked with ahead of replay
        self.verified = None  # that check's outcome
        self.value = None  # the parsed line, while parsing only


class LeafParser:
    """Parses the log's lines in order; it remembers only the previous time and the key guesses."""

    def __init__(self, origin, root_keys):
        self.origin = origin
        self._message_origin = b',"origin":' + jcs(origin) + b',"type":"'
        self.next_seq = 0
        self.previous_time = None
        # key_id -> public key, from the trust file and every well-formed key.register seen so far:
        # what signature checks done ahead of replay use. Replay re-checks any event whose key in
        # the replayed state is not this guess, so a wrong guess costs time, never correctness.
        self.key_guesses = dict(root_keys)

    def parse(self, raw):
        leaf = self._parse(raw)
        if leaf.problem is not None and leaf.problem[0] != "ENCODING" and leaf.value is not None:
            # Integers beyond 2^53 are ENCODING, which comes first; fields that passed were bounded
            # by schema.py, so only a leaf with a problem needs the full walk.
            unsafe = find_unsafe_integer(leaf.value)
            if unsafe is not None:
                leaf.problem = ("ENCODING", f"integer {unsafe} is beyond 2^53-1")
        leaf.value = None
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

        if type(event_type) is not str or event_type not in EVENT_TYPES:
            leaf.problem = ("SCHEMA", f"unknown event type {event_type!r}")
            return leaf
        body = value["body"]
        problem = body_problem(event_type, body)
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

        sig = auth["sig"]
        # 64 bytes are 88 base64 characters ending in "==", the last data character carrying 2
        # bits and 4 zero bits (one of A, Q, g, w): any other spelling is not canonical base64.
        try:
            signature = binascii.a2b_base64(sig, strict_mode=True) if len(sig) == 88 and sig[85] in "AQgw" else b""
        except (binascii.Error, ValueError):
            signature = b""
        if len(signature) == 64:
            body_start = raw.index(b',"body":') + 8
            body_end = raw.rindex(b',"effects":' if leaf.effects is not None else b',"seq":')
            leaf.signed = (
                signature + EVENT_SIGNATURE_PREFIX + b'{"body":' + raw[body_start:body_end]
                + self._message_origin + event_type.encode("ascii") + b'"}'
            )
        leaf.key_guess = self.key_guesses.get(leaf.key_id)
        if event_type == "key.register":
            self.key_guesses.setdefault(body["key_id"], decode_public_key(body["public_key"]))
        return leaf
