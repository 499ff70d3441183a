"""C2SP signed notes (spec section 5): verifier key strings, checkpoints, the log signature and
witness cosignatures (C2SP tlog-cosignature, type 0x04)."""

import base64
import binascii
import re
import struct
from dataclasses import dataclass
from hashlib import sha256

from verifier.merkle import HASH_BYTES
from verifier.signatures import verify_signed

ED25519 = 0x01
COSIGNATURE = 0x04
SIGNATURE_LINE_PREFIX = "\u2014 "  # an em dash and a space open every signature line
MAX_NOTE_SIGNATURES = 100  # the C2SP limit; a note with more is refused as malformed
_KEY_NAME = re.compile(r"[^\s+]+")  # a key name has no spaces and no "+"
_TREE_SIZE = re.compile(r"0|[1-9][0-9]{0,18}")


class NoteError(ValueError):
    """A note or key string that is malformed; the message says how."""


def strict_b64decode(text, what):
    """Standard base64 with padding, with nothing non-canonical: re-encoding gives the same text."""
    try:
        data = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise NoteError(f"{what} is not base64") from None
    if base64.b64encode(data).decode("ascii") != text:
        raise NoteError(f"{what} is not canonical base64")
    return data


def note_key_hash(name, key_type, public_key):
    return sha256(name.encode("utf-8") + b"\n" + bytes([key_type]) + public_key).digest()[:4]


@dataclass(frozen=True)
class NoteKey:
    """A signer of notes: `<name>+<8 hex of key hash>+<base64(type || public key)>`."""

    name: str
    key_hash: bytes
    key_type: int
    public_key: bytes


def parse_verifier_key(text, key_type):
    if not isinstance(text, str):
        raise NoteError("a verifier key must be a string")
    parts = text.split("+", 2)
    if len(parts) != 3:
        raise NoteError(f"verifier key {text!r} is not <name>+<key hash>+<base64 key>")
    name, hash_hex, key_b64 = parts
    if not _KEY_NAME.fullmatch(name):
        raise NoteError(f"verifier key name {name!r} is empty or holds a space")
    if not re.fullmatch(r"[0-9a-f]{8}", hash_hex):
        raise NoteError(f"verifier key {name}: key hash {hash_hex!r} is not 8 lowercase hex digits")
    key_bytes = strict_b64decode(key_b64, f"verifier key {name}")
    if len(key_bytes) != 33 or key_bytes[0] != key_type:
        raise NoteError(f"verifier key {name}: expected type 0x{key_type:02x} and a 32-byte Ed25519 key")
    public_key = key_bytes[1:]
    if note_key_hash(name, key_type, public_key).hex() != hash_hex:
        raise NoteError(f"verifier key {name}: key hash {hash_hex} does not match the key")
    return NoteKey(name, bytes.fromhex(hash_hex), key_type, public_key)


def format_verifier_key(name, key_type, public_key):
    key_b64 = base64.b64encode(bytes([key_type]) + public_key).decode("ascii")
    return f"{name}+{note_key_hash(name, key_type, public_key).hex()}+{key_b64}"


def checkpoint_body(origin, tree_size, root):
    return f"{origin}\n{tree_size}\n{base64.b64encode(root).decode('ascii')}\n"


def format_signature_line(name, signature_bytes):
    """signature_bytes: key hash followed by the signature (and, for cosignatures, the timestamp)."""
    return f"{SIGNATURE_LINE_PREFIX}{name} {base64.b64encode(signature_bytes).decode('ascii')}\n"


def cosigned_message(timestamp, body):
    return f"cosignature/v1\ntime {timestamp}\n".encode("ascii") + body


@dataclass(frozen=True)
class Checkpoint:
    origin: str
    tree_size: int
    root: bytes
    body: bytes  # the three signed lines, final newline included
    signatures: tuple  # ((name, decoded signature bytes), ...)

    def signed_by(self, key):
        """True if a signature line of this log key verifies over the body."""
        for name, raw in self.signatures:
            if name == key.name and len(raw) == 68 and raw[:4] == key.key_hash:
                if verify_signed(key.public_key, raw[4:] + self.body):
                    return True
        return False

    def cosigning_witnesses(self, witnesses):
        """Names of the witnesses (NoteKeys of type 0x04) with a valid cosignature on this body."""
        valid = set()
        for witness in witnesses:
            for name, raw in self.signatures:
                if name != witness.name or len(raw) != 76 or raw[:4] != witness.key_hash:
                    continue
                (timestamp,) = struct.unpack(">Q", raw[4:12])
                if verify_signed(witness.public_key, raw[12:] + cosigned_message(timestamp, self.body)):
                    valid.add(witness.name)
                    break
        return valid


def parse_checkpoint(note, origin):
    """Parse a signed checkpoint note of the given origin; raise NoteError if malformed.

    Signatures are decoded but not checked here (see Checkpoint.signed_by)."""
    if not isinstance(note, str):
        raise NoteError("the note is not a string")
    if not note.endswith("\n"):
        raise NoteError("the note does not end with a newline")
    split_at = note.rfind("\n\n")
    if split_at < 0:
        raise NoteError("the note has no blank line before its signatures")
    body_text, signature_text = note[: split_at + 1], note[split_at + 2 :]
    lines = body_text.split("\n")[:-1]
    if len(lines) < 3:
        raise NoteError(f"the checkpoint body has {len(lines)} lines, not 3 (origin, size, root)")
    # Extension lines (C2SP) follow the root: signed with the rest, accepted, their content ignored.
    note_origin, size_text, root_b64 = lines[:3]
    if note_origin != origin:
        raise NoteError(f"checkpoint of origin {note_origin!r}, not {origin!r}")
    if not _TREE_SIZE.fullmatch(size_text) or int(size_text) >= 2**63:
        raise NoteError(f"tree size {size_text!r} is not a decimal number without leading zeros")
    root = strict_b64decode(root_b64, "the root hash")
    if len(root) != HASH_BYTES:
        raise NoteError("the root hash is not 32 bytes")
    signature_lines = signature_text.split("\n")[:-1]
    if not signature_lines:
        raise NoteError("the note has no signature")
    if len(signature_lines) > MAX_NOTE_SIGNATURES:
        raise NoteError(f"the note has more than {MAX_NOTE_SIGNATURES} signatures")
    signatures = []
    for line in signature_lines:
        if not line.startswith(SIGNATURE_LINE_PREFIX):
            raise NoteError(f"signature line {line[:40]!r} does not start with an em dash and a space")
        name, _, sig_b64 = line[len(SIGNATURE_LINE_PREFIX) :].partition(" ")
        if not _KEY_NAME.fullmatch(name) or not sig_b64:
            raise NoteError(f"signature line {line[:40]!r} is not '\u2014 <name> <base64>'")
        raw = strict_b64decode(sig_b64, f"the signature of {name}")
        if len(raw) < 5:
            raise NoteError(f"the signature of {name} is too short")
        signatures.append((name, raw))
    return Checkpoint(origin, int(size_text), root, body_text.encode("utf-8"), tuple(signatures))
