"""Format-2 activity records (spec sections 7.3, 7.4): no personal trail.

A platform's raw record still names the person (its `subject` is the person id the identity hub
knows) and carries every input. The record written for the log does not:
- subject: the person's daily pseudonym, hex of the first 16 bytes of HMAC-SHA256(hub key,
  UTF-8(person id || "|" || occurred_on)): one per person and Beijing date, unlinkable across dates;
- occurred_on: the Beijing date of the act's time, instead of the time;
- inputs: the public inputs alone;
- fingerprint: HMAC-SHA256(fingerprint key, "puhui-fingerprint/v2\\n" || the same JCS text format 1
  hashes, with the pseudonym as subject);
- private_sha256: SHA-256 of the opening, the JCS of {"fields": the non-public inputs and
  occurred_at, "salt": fresh random bytes in base64}, which the platform keeps (ingestion writes it
  beside the record) and gives to the citizen and, on request, to an accredited auditor.

This is the full path; quantify.fastpath writes the same bytes from templates. Every value here is
a checked identifier, code, enum value, integer or time: none needs a JSON escape, and their ASCII
names sort in JCS order (quantify.activity).
"""

from __future__ import annotations

import base64
import datetime as dt
import functools
import hashlib
import hmac
import os
from dataclasses import dataclass
from typing import Any, NamedTuple

from ledger.merkle import leaf_hash
from quantify.activity import RecordRules, beijing_day
from quantify.prepared import PreparedRecord

FINGERPRINT_DOMAIN_V2 = b"puhui-fingerprint/v2\n"
SCHEME_KEY_BYTES = 32
# At least 16 bytes (spec 7.4); 18, a multiple of 3, so that a block of salts is base64-encoded at
# once and cut into 24-character pieces without padding (the fast path does).
SALT_BYTES = 18
SALT_CHARS = SALT_BYTES * 4 // 3


@dataclass(frozen=True, slots=True)
class SchemeKeys:
    """The two secrets a platform ingests format-2 records with (keys.load_secret reads them)."""

    hub_key: bytes
    fingerprint_key: bytes

    def __post_init__(self) -> None:
        if len(self.hub_key) != SCHEME_KEY_BYTES or len(self.fingerprint_key) != SCHEME_KEY_BYTES:
            raise ValueError(f"the hub and fingerprint keys are {SCHEME_KEY_BYTES} bytes each")
        if self.hub_key == self.fingerprint_key:
            raise ValueError("the hub key and the fingerprint key must differ: the hub key never leaves the hub")

    def __repr__(self) -> str:  # never print a secret, not even in a traceback
        return "SchemeKeys(<hub key>, <fingerprint key>)"


class KeyedHash:
    """HMAC-SHA256 under one key (RFC 2104) with the key's two padded blocks hashed once: a message
    then costs two SHA-256 copies and updates, about half of hmac.digest's work (ingestion keys two
    hashes a record). The fast path uses `inner` and `outer` inline."""

    __slots__ = ("inner", "outer")

    def __init__(self, key: bytes):
        if len(key) > 64:  # RFC 2104: a key longer than the block is hashed first
            key = hashlib.sha256(key).digest()
        block = key.ljust(64, b"\x00")
        self.inner = hashlib.sha256(bytes(b ^ 0x36 for b in block))
        self.outer = hashlib.sha256(bytes(b ^ 0x5C for b in block))

    def digest(self, message: bytes) -> bytes:
        inner = self.inner.copy()
        inner.update(message)
        outer = self.outer.copy()
        outer.update(inner.digest())
        return outer.digest()


def daily_pseudonym(hub_key: bytes, person_id: str, occurred_on: str) -> str:
    """Spec 7.4's RECOMMENDED subject of a person on a Beijing date."""
    return hmac.digest(hub_key, f"{person_id}|{occurred_on}".encode("utf-8"), "sha256")[:16].hex()


MAX_PSEUDONYM_DAYS = 3_660  # ten years of a person's daily pseudonyms at one asking


class DailyPseudonym(NamedTuple):
    day: str  # the Beijing date
    subject: str


def daily_pseudonyms(hub_key: bytes, person_id: str, first_day: str, last_day: str) -> list[DailyPseudonym]:
    """A person's pseudonyms for every Beijing date from first_day to last_day (the hub's to derive:
    a personal account gathers a person's records by them). ValueError for a bad or too long range."""
    first, last = dt.date.fromisoformat(first_day), dt.date.fromisoformat(last_day)
    days = (last - first).days + 1
    if not 1 <= days <= MAX_PSEUDONYM_DAYS:
        raise ValueError(f"a range of pseudonyms is 1 to {MAX_PSEUDONYM_DAYS} days, from the first to the last")
    dates = [(first + dt.timedelta(days=n)).isoformat() for n in range(days)]
    return [DailyPseudonym(day, daily_pseudonym(hub_key, person_id, day)) for day in dates]


def new_salt() -> str:
    return base64.b64encode(os.urandom(SALT_BYTES)).decode("ascii")


def record_bytes_v2(activity_id: str, fingerprint: str, inputs_jcs: str, occurred_on: str, private_sha256: str,
                    reduction_g: int, subject: str) -> bytes:
    """The JCS bytes of a format-2 record, keys in JCS order (inputs_jcs: the public inputs' JCS)."""
    return (
        f'{{"activity_id":"{activity_id}","fingerprint":"{fingerprint}","inputs":{inputs_jcs},'
        f'"occurred_on":"{occurred_on}","private_sha256":"{private_sha256}","reduction_g":{reduction_g},'
        f'"subject":"{subject}"}}'
    ).encode()


def _json_value(value: Any) -> str:
    return str(value) if type(value) is int else f'"{value}"'


class PrivateRecords:
    """A methodology's format-2 records under the scheme's keys."""

    def __init__(self, rules: RecordRules, keys: SchemeKeys):
        self.rules = rules
        self.keys = keys
        checks = rules.compiled.checks  # sorted by name
        self.public_names = tuple(c.name for c in checks if c.public)
        self.private_names = tuple(c.name for c in checks if not c.public)
        self.hub = KeyedHash(keys.hub_key)
        self.fingerprint_hash = KeyedHash(keys.fingerprint_key)

    def subject(self, person_id: str, occurred_on: str) -> str:
        return self.hub.digest(f"{person_id}|{occurred_on}".encode("utf-8"))[:16].hex()

    def fingerprint(self, subject: str, occurred_at: str, inputs: dict[str, Any]) -> str:
        text = self.rules.fingerprint_text(subject, occurred_at, inputs)
        return self.fingerprint_hash.digest(FINGERPRINT_DOMAIN_V2 + text).hex()

    def public_inputs_jcs(self, inputs: dict[str, Any]) -> str:
        return "{" + ",".join(f'"{name}":{_json_value(inputs[name])}' for name in self.public_names
                              if name in inputs) + "}"

    def opening(self, occurred_at: str, inputs: dict[str, Any], salt: str) -> bytes:
        """The JCS bytes of {"fields": the non-public inputs present and occurred_at, "salt"}."""
        fields = {name: _json_value(inputs[name]) for name in self.private_names if name in inputs}
        fields["occurred_at"] = f'"{occurred_at}"'
        text = ",".join(f'"{name}":{fields[name]}' for name in sorted(fields))
        return f'{{"fields":{{{text}}},"salt":"{salt}"}}'.encode()

    def prepare(self, line: int, activity_id: str, person_id: str, occurred_at: str, inputs: dict[str, Any],
                reduction_g: int, salt: str | None = None) -> PreparedRecord:
        """The prepared format-2 record of a checked raw record (salt: fresh unless given)."""
        occurred_on = beijing_day(occurred_at)
        subject = self.subject(person_id, occurred_on)
        fingerprint = self.fingerprint(subject, occurred_at, inputs)
        inputs_jcs = self.public_inputs_jcs(inputs)
        opening = self.opening(occurred_at, inputs, new_salt() if salt is None else salt)
        data = record_bytes_v2(activity_id, fingerprint, inputs_jcs, occurred_on, hashlib.sha256(opening).hexdigest(),
                               reduction_g, subject)
        return PreparedRecord(line, activity_id, subject, occurred_at, fingerprint, reduction_g, inputs_jcs, data,
                              leaf_hash(data), opening)


@functools.lru_cache(maxsize=256)
def private_records_for(rules: RecordRules, keys: SchemeKeys) -> PrivateRecords:
    return PrivateRecords(rules, keys)
