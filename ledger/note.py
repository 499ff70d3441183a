"""C2SP signed notes, tlog-checkpoints and Ed25519 tlog-cosignatures (puhui-log-v1 sections 5, 8).

A checkpoint is the note text "<origin>\\n<size>\\n<base64 root>\\n", a blank line, then one line
"— <key name> <base64(key hash || signature)>\\n" per signature: the log's (type 0x01, key name =
origin) and any witness cosignatures (type 0x04, over "cosignature/v1\\ntime <t>\\n" || text).

Parsing is strict: whatever this module accepts, it would also have written byte for byte, so a
note has one reading only.
"""

from __future__ import annotations

import base64
import hashlib
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import nacl.exceptions
import nacl.signing

from keys.signer import Signer
from ledger.merkle import EMPTY_ROOT, HASH_BYTES, verify_consistency

ED25519 = 0x01  # C2SP signed-note: Ed25519 over the note text
COSIGNATURE_V1 = 0x04  # C2SP tlog-cosignature: timestamped Ed25519 witness cosignature
_SIGNATURE_TYPES = {ED25519: "Ed25519", COSIGNATURE_V1: "Ed25519 cosignature/v1"}

PUBLIC_KEY_BYTES = 32
SIGNATURE_BYTES = 64
KEY_HASH_BYTES = 4
TIMESTAMP_BYTES = 8
MAX_TIMESTAMP = 2**63 - 1  # tlog-cosignature: a timestamp MUST NOT exceed 2^63 - 1
MAX_TREE_SIZE = 2**64 - 1
# C2SP asks verifiers to accept at least 16 signatures and to bound them; 100 leaves ample room.
MAX_SIGNATURES = 100

_SIGNATURE_PREFIX = "\u2014 "  # em dash, space
_SIZE_RE = re.compile(r"0|[1-9][0-9]*")
_KEY_HASH_HEX_RE = re.compile(r"[0-9a-f]{8}")


@dataclass(frozen=True)
class VerifierKey:
    name: str
    key_hash: bytes
    type_byte: int
    public_key: bytes

    def __str__(self) -> str:
        return verifier_key(self.name, self.public_key, self.type_byte)


class NoteSignature(NamedTuple):
    name: str
    key_hash: bytes
    signature: bytes  # everything after the key hash: the raw signature, timestamp first for 0x04


@dataclass(frozen=True)
class Checkpoint:
    origin: str
    size: int
    root: bytes
    body: str  # the signed note text, three lines with their newlines
    signatures: list[NoteSignature]


def _check_key_name(name: object) -> str:
    if not isinstance(name, str) or not name:
        raise ValueError(f"a key name is a non-empty string, got {name!r}")
    # C2SP: no Unicode spaces (newline included) and no plus; unprintables would corrupt notes.
    if any(c.isspace() or c == "+" or not c.isprintable() for c in name):
        raise ValueError(f"key name {name!r} contains a space, '+', newline or unprintable character")
    return name


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def _b64decode_strict(text: str, what: str) -> bytes:
    """RFC 4648 standard base64 with padding, in its one canonical spelling."""
    try:
        raw = base64.b64decode(text, validate=True)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"{what} is not valid base64: {text!r}") from exc
    # validate=True still lets non-zero padding bits through; re-encoding rejects such aliases.
    if _b64(raw) != text:
        raise ValueError(f"{what} is not canonical base64: {text!r}")
    return raw


def _ed25519_valid(public_key: bytes, message: bytes, signature: bytes) -> bool:
    if len(public_key) != PUBLIC_KEY_BYTES or len(signature) != SIGNATURE_BYTES:
        return False
    try:
        nacl.signing.VerifyKey(public_key).verify(message, signature)
    except nacl.exceptions.BadSignatureError:
        return False
    return True


def _sign(signer: Signer, message: bytes) -> tuple[bytes, bytes]:
    """(public key, signature), checked: a signer whose public_key is not its key signs nothing."""
    public_key = bytes(signer.public_key)
    signature = bytes(signer.sign(message))
    if not _ed25519_valid(public_key, message, signature):
        raise ValueError("the signer's signature does not verify under its public_key")
    return public_key, signature


def key_hash(name: str, type_byte: int, public_key: bytes) -> bytes:
    """The 4-byte key hash: SHA-256(name || "\\n" || type_byte || public_key)[:4]."""
    if not 0 <= type_byte <= 0xFF:
        raise ValueError(f"a signature type is one byte, got {type_byte!r}")
    return hashlib.sha256(name.encode("utf-8") + b"\n" + bytes([type_byte]) + bytes(public_key)).digest()[:4]


def verifier_key(name: str, public_key: bytes, type_byte: int = ED25519) -> str:
    """The verifier key string `<name>+<8 hex key hash>+<base64(type || public key)>`."""
    _check_key_name(name)
    public_key = bytes(public_key)
    if type_byte not in _SIGNATURE_TYPES:
        raise ValueError(f"unsupported signature type 0x{type_byte:02x}")
    if len(public_key) != PUBLIC_KEY_BYTES:
        raise ValueError(f"an Ed25519 public key is {PUBLIC_KEY_BYTES} bytes, got {len(public_key)}")
    return f"{name}+{key_hash(name, type_byte, public_key).hex()}+{_b64(bytes([type_byte]) + public_key)}"


def parse_verifier_key(text: str) -> VerifierKey:
    """Parse and check a verifier key string; ValueError says what is wrong with it."""
    if not isinstance(text, str):
        raise ValueError(f"a verifier key is a string, got {type(text).__name__}")
    parts = text.split("+", 2)  # base64 may itself contain "+"; name and hash may not
    if len(parts) != 3:
        raise ValueError(f"verifier key {text!r} is not <name>+<key hash>+<base64 key>")
    name, hash_hex, key_b64 = parts
    _check_key_name(name)
    if not _KEY_HASH_HEX_RE.fullmatch(hash_hex):
        raise ValueError(f"verifier key hash {hash_hex!r} is not 8 lowercase hex digits")
    typed_key = _b64decode_strict(key_b64, "verifier key")
    if not typed_key:
        raise ValueError("verifier key material is empty")
    type_byte, public_key = typed_key[0], typed_key[1:]
    if type_byte not in _SIGNATURE_TYPES:
        raise ValueError(f"verifier key {name!r} has unknown signature type 0x{type_byte:02x}")
    if len(public_key) != PUBLIC_KEY_BYTES:
        raise ValueError(f"verifier key {name!r}: public key is {len(public_key)} bytes, want {PUBLIC_KEY_BYTES}")
    computed = key_hash(name, type_byte, public_key)
    if computed.hex() != hash_hex:
        raise ValueError(f"verifier key {name!r}: key hash {hash_hex} does not match the key ({computed.hex()})")
    return VerifierKey(name=name, key_hash=computed, type_byte=type_byte, public_key=public_key)


def checkpoint_body(origin: str, size: int, root: bytes) -> str:
    """The checkpoint note text: origin, decimal size and base64 root, each newline-terminated."""
    _check_key_name(origin)  # the log's key name is the origin
    if not isinstance(size, int) or isinstance(size, bool) or not 0 <= size <= MAX_TREE_SIZE:
        raise ValueError(f"tree size must be an int in [0, 2^64), got {size!r}")
    if not isinstance(root, bytes) or len(root) != HASH_BYTES:
        raise ValueError(f"root hash must be {HASH_BYTES} bytes")
    return f"{origin}\n{size}\n{_b64(root)}\n"


def _signature_line(name: str, key_hash_: bytes, payload: bytes) -> str:
    return f"{_SIGNATURE_PREFIX}{name} {_b64(key_hash_ + payload)}\n"


def sign_checkpoint(origin: str, size: int, root: bytes, signer: Signer) -> str:
    """The signed checkpoint note, signed by the log key named origin."""
    body = checkpoint_body(origin, size, root)
    public_key, signature = _sign(signer, body.encode("utf-8"))
    return body + "\n" + _signature_line(origin, key_hash(origin, ED25519, public_key), signature)


def _split_note(note: str) -> tuple[str, list[NoteSignature]]:
    """(note text, signatures) of a C2SP signed note, checked for form only."""
    if isinstance(note, bytes):
        try:
            note = note.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ValueError("note is not valid UTF-8") from exc
    if not isinstance(note, str):
        raise ValueError(f"a note is text, got {type(note).__name__}")
    try:
        note.encode("utf-8")
    except UnicodeEncodeError as exc:  # lone surrogates
        raise ValueError("note is not valid UTF-8") from exc
    if any(c < " " and c != "\n" for c in note):
        raise ValueError("note contains an ASCII control character other than newline")
    # The text ends at the last blank line; signature lines are never empty.
    split = note.rfind("\n\n")
    if split < 0:
        raise ValueError("note has no blank line between its text and its signatures")
    text, block = note[: split + 1], note[split + 2 :]
    if not block:
        raise ValueError("note has no signature lines")
    if not block.endswith("\n"):
        raise ValueError("note does not end with a newline")
    lines = block[:-1].split("\n")
    if len(lines) > MAX_SIGNATURES:
        raise ValueError(f"note has {len(lines)} signatures, more than {MAX_SIGNATURES}")
    signatures = []
    for line in lines:
        if not line.startswith(_SIGNATURE_PREFIX):
            raise ValueError(f"signature line does not start with an em dash and a space: {line!r}")
        fields = line[len(_SIGNATURE_PREFIX) :].split(" ")
        if len(fields) != 2:
            raise ValueError(f"signature line is not '— <name> <base64>': {line!r}")
        name, payload_b64 = fields
        _check_key_name(name)
        payload = _b64decode_strict(payload_b64, f"signature by {name!r}")
        if len(payload) <= KEY_HASH_BYTES:
            raise ValueError(f"signature by {name!r} is too short ({len(payload)} bytes)")
        signatures.append(NoteSignature(name, payload[:KEY_HASH_BYTES], payload[KEY_HASH_BYTES:]))
    return text, signatures


def parse_checkpoint(note: str) -> Checkpoint:
    """Parse a signed checkpoint strictly (C2SP signed-note and tlog-checkpoint, no extension
    lines as puhui-log-v1 section 5 has none). Verifies no signature; see verify_checkpoint."""
    text, signatures = _split_note(note)
    lines = text[:-1].split("\n")
    if len(lines) != 3:
        raise ValueError(f"checkpoint text has {len(lines)} lines, want origin, size and root hash")
    origin, size_text, root_b64 = lines
    if not origin:
        raise ValueError("checkpoint origin is empty")
    if not _SIZE_RE.fullmatch(size_text):
        raise ValueError(f"checkpoint size {size_text!r} is not a decimal without leading zeros")
    size = int(size_text)
    if size > MAX_TREE_SIZE:
        raise ValueError(f"checkpoint size {size} does not fit in 64 bits")
    root = _b64decode_strict(root_b64, "checkpoint root hash")
    if len(root) != HASH_BYTES:
        raise ValueError(f"checkpoint root hash is {len(root)} bytes, want {HASH_BYTES}")
    return Checkpoint(origin=origin, size=size, root=root, body=text, signatures=signatures)


def _signatures_by(checkpoint: Checkpoint, key: VerifierKey) -> list[bytes]:
    """Signatures whose name and key hash both match key; others belong to unknown keys."""
    return [s.signature for s in checkpoint.signatures if s.name == key.name and s.key_hash == key.key_hash]


def verify_checkpoint(note: str, log_key: VerifierKey) -> Checkpoint:
    """The parsed checkpoint, if log_key validly signed it; ValueError otherwise."""
    if log_key.type_byte != ED25519:
        raise ValueError(f"log key {log_key.name!r} has type 0x{log_key.type_byte:02x}, want 0x01")
    checkpoint = parse_checkpoint(note)
    if checkpoint.origin != log_key.name:
        raise ValueError(f"checkpoint origin {checkpoint.origin!r} is not the log key's name {log_key.name!r}")
    signatures = _signatures_by(checkpoint, log_key)
    if not signatures:
        raise ValueError(f"checkpoint has no signature by log key {log_key.name!r}")
    message = checkpoint.body.encode("utf-8")
    # C2SP: a failing signature by a known key condemns the whole note.
    for signature in signatures:
        if not _ed25519_valid(log_key.public_key, message, signature):
            raise ValueError(f"invalid signature by log key {log_key.name!r}")
    return checkpoint


def cosignature_message(body: str, timestamp: int) -> bytes:
    """What an Ed25519 cosignature/v1 signs: header, time line, then the checkpoint text."""
    return f"cosignature/v1\ntime {timestamp}\n{body}".encode("utf-8")


def cosign(checkpoint_note: str, witness_name: str, witness_signer: Signer, timestamp: int) -> str:
    """checkpoint_note with the witness's cosignature line appended. Checks form, not consistency:
    a witness cosigns only through Witness.cosign_checkpoint."""
    checkpoint = parse_checkpoint(checkpoint_note)
    _check_key_name(witness_name)
    if not isinstance(timestamp, int) or isinstance(timestamp, bool) or not 0 <= timestamp <= MAX_TIMESTAMP:
        raise ValueError(f"cosignature timestamp must be an int in [0, 2^63), got {timestamp!r}")
    public_key, signature = _sign(witness_signer, cosignature_message(checkpoint.body, timestamp))
    payload = timestamp.to_bytes(TIMESTAMP_BYTES, "big") + signature
    return checkpoint_note + _signature_line(witness_name, key_hash(witness_name, COSIGNATURE_V1, public_key), payload)


def verify_cosignatures(note: str, witnesses: Sequence[VerifierKey]) -> set[str]:
    """Names of the trusted witnesses with a valid cosignature on this checkpoint.

    Does not check the log's own signature (verify_checkpoint does). Cosignatures by unknown keys
    and invalid ones are not counted.
    """
    checkpoint = parse_checkpoint(note)
    valid = set()
    for witness in witnesses:
        if witness.type_byte != COSIGNATURE_V1:
            raise ValueError(f"witness key {witness.name!r} has type 0x{witness.type_byte:02x}, want 0x04")
        for payload in _signatures_by(checkpoint, witness):
            if len(payload) != TIMESTAMP_BYTES + SIGNATURE_BYTES:
                continue
            timestamp = int.from_bytes(payload[:TIMESTAMP_BYTES], "big")
            if timestamp > MAX_TIMESTAMP:
                continue
            message = cosignature_message(checkpoint.body, timestamp)
            if _ed25519_valid(witness.public_key, message, payload[TIMESTAMP_BYTES:]):
                valid.add(witness.name)
    return valid


class Witness:
    """A minimal witness: it cosigns a log's checkpoint only if it is consistent with the largest
    checkpoint of that log it cosigned before, so it never cosigns both sides of a fork."""

    def __init__(self, name: str, signer: Signer, clock: Callable[[], int] = lambda: int(time.time())) -> None:
        self.name = _check_key_name(name)
        self.signer = signer
        self.clock = clock
        self.key = parse_verifier_key(verifier_key(name, signer.public_key, COSIGNATURE_V1))
        self._latest: dict[str, tuple[int, bytes]] = {}  # origin -> (size, root)

    def last_seen(self, origin: str) -> tuple[int, bytes]:
        """(size, root) of the latest checkpoint of this origin cosigned; (0, EMPTY_ROOT) before any."""
        return self._latest.get(origin, (0, EMPTY_ROOT))

    def cosign_checkpoint(self, note: str, consistency_proof: Sequence[bytes], log_key: VerifierKey) -> str:
        """note with this witness's cosignature, after checking the log's signature and the
        consistency proof from the last seen size; ValueError, and no state change, otherwise."""
        checkpoint = verify_checkpoint(note, log_key)
        old_size, old_root = self.last_seen(checkpoint.origin)
        proof = list(consistency_proof)
        if checkpoint.size < old_size:
            raise ValueError(f"checkpoint size {checkpoint.size} is smaller than {old_size} already cosigned")
        if old_size == 0:
            # Every tree extends the empty one; there is nothing to prove.
            if proof:
                raise ValueError("a consistency proof from the empty tree must be empty")
            if checkpoint.size == 0 and checkpoint.root != EMPTY_ROOT:
                raise ValueError("an empty tree's root must be SHA-256 of nothing")
        elif not verify_consistency(old_size, checkpoint.size, old_root, checkpoint.root, proof):
            raise ValueError(
                f"checkpoint of size {checkpoint.size} is not consistent with size {old_size} already "
                "cosigned: refusing to cosign a fork"
            )
        cosigned = cosign(note, self.name, self.signer, self.clock())
        self._latest[checkpoint.origin] = (checkpoint.size, checkpoint.root)
        return cosigned
