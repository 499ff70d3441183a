"""The trust file (spec section 8): what the auditor obtained out of band. Anything wrong with it
stops the run (exit status 2): a verifier cannot judge a log against a key it cannot read."""

import json
from dataclasses import dataclass

from verifier.notes import COSIGNATURE, ED25519, NoteError, parse_verifier_key, strict_b64decode
from verifier.reader import InputError, read_small_file
from verifier.signatures import key_id_of

MAX_TRUST_BYTES = 1024 * 1024
TRUST_FIELDS = {"origin", "log_key", "root_keys", "witnesses", "witness_quorum"}


@dataclass(frozen=True)
class Trust:
    origin: str
    log_key: object  # notes.NoteKey
    root_keys: dict  # key_id -> 32-byte public key
    witnesses: tuple  # notes.NoteKey, type 0x04
    witness_quorum: int


def parse_trust(data, path="trust file"):
    def bad(message):
        return InputError(f"trust file {path}: {message}")

    try:
        document = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as error:
        raise bad(f"not JSON ({error})") from None
    if not isinstance(document, dict):
        raise bad("not a JSON object")
    unknown = set(document) - TRUST_FIELDS
    if unknown:
        raise bad(f"unknown field(s) {sorted(unknown)} (a misspelt field would silently weaken the check)")
    origin = document.get("origin")
    if not isinstance(origin, str) or not origin or any(c.isspace() for c in origin):
        raise bad("origin must be a non-empty string without spaces")
    try:
        log_key = parse_verifier_key(document.get("log_key"), ED25519)
    except NoteError as error:
        raise bad(f"log_key: {error}") from None
    if log_key.name != origin:
        raise bad(f"log_key is named {log_key.name!r}, but the origin is {origin!r}")
    root_list = document.get("root_keys")
    if not isinstance(root_list, list) or not root_list:
        raise bad("root_keys must be a non-empty list of base64 Ed25519 public keys")
    root_keys = {}
    for position, item in enumerate(root_list):
        try:
            public_key = strict_b64decode(item, f"root_keys[{position}]") if isinstance(item, str) else b""
        except NoteError as error:
            raise bad(str(error)) from None
        if len(public_key) != 32:
            raise bad(f"root_keys[{position}] is not base64 of a 32-byte Ed25519 public key")
        if public_key == log_key.public_key:
            raise bad(f"root_keys[{position}] is the log key; the spec requires distinct keys")
        root_keys[key_id_of(public_key)] = public_key
    witness_list = document.get("witnesses", [])
    if not isinstance(witness_list, list):
        raise bad("witnesses must be a list of verifier key strings")
    witnesses = []
    for position, item in enumerate(witness_list):
        try:
            witness = parse_verifier_key(item, COSIGNATURE)
        except NoteError as error:
            raise bad(f"witnesses[{position}]: {error}") from None
        if any(known.name == witness.name for known in witnesses):
            raise bad(f"witness {witness.name!r} is listed twice")
        witnesses.append(witness)
    quorum = document.get("witness_quorum", 0)
    if type(quorum) is not int or quorum < 0:
        raise bad("witness_quorum must be a non-negative integer")
    if quorum > len(witnesses):
        raise bad(f"witness_quorum {quorum} is more than the {len(witnesses)} witnesses listed")
    return Trust(origin, log_key, root_keys, tuple(witnesses), quorum)


def load_trust(path):
    return parse_trust(read_small_file(path, "trust file", MAX_TRUST_BYTES), path)


@dataclass(frozen=True)
class GenesisClaim:
    """What a log's first line says of itself, unchecked: for advice and the report's header."""
    origin: object  # the genesis body's origin, or None
    signer: object  # auth.key, or None


def genesis_claim(first_line):
    """The origin and signer a log's first line states if it is a genesis leaf, else None."""
    try:
        leaf = json.loads(first_line)
    except (ValueError, RecursionError):
        return None
    if type(leaf) is not dict or leaf.get("type") != "registry.genesis":
        return None
    body, auth = leaf.get("body"), leaf.get("auth")
    return GenesisClaim(body.get("origin") if type(body) is dict else None, auth.get("key") if type(auth) is dict else None)


def genesis_mismatch(claim, trust):
    """Why the log's first leaf (its genesis_claim) cannot be the genesis this trust file vouches
    for, or None: a trust file of another registry is the usual cause of a report full of
    KEY_UNKNOWN, and the auditor is told so once, before the replay. Advice only: the report is
    unchanged."""
    if claim is None:
        return None
    origin, signer = claim.origin, claim.signer
    if origin != trust.origin:
        return (f"the log's genesis names the origin {origin!r}, the trust file {trust.origin!r}: "
                f"this trust file is probably another registry's; obtain this registry's own")
    if signer not in trust.root_keys:
        return (f"the log's genesis is signed by key {signer!r}, which is none of the trust file's root keys: "
                f"the trust file is probably wrong or outdated; obtain this registry's own")
    return None
