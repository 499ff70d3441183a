"""Key files: one Ed25519 private key per file, encrypted at rest under a passphrase.

Format "puhui-key/1" (JSON, UTF-8):

    {"format": "puhui-key/1", "key_id": HEX16, "public_key": B64, "role": ROLE, "label": TEXT,
     "kdf": {"name": "argon2id", "opslimit": N, "memlimit": N, "salt": B64},
     "nonce": B64, "ciphertext": B64}

The SecretBox key is Argon2id(passphrase, salt, opslimit, memlimit); ciphertext is the SecretBox
(XSalsa20-Poly1305) of the 32-byte seed under nonce. The MAC catches a wrong passphrase and any
change to salt, limits, nonce or ciphertext. key_id and public_key are checked against the
decrypted seed. role and label are not authenticated: they are descriptions, and what a key may do
is decided by its key.register event in the log, never by this file.
"""

from __future__ import annotations

import base64
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nacl.exceptions
import nacl.pwhash
import nacl.secret
import nacl.utils
from nacl.pwhash import argon2id

from .errors import KeyFileError, KeyFileExistsError
from .secret_files import KeyFilePermissionWarning, read_secret_file  # noqa: F401  (the warning is keys' API)
from .signer import Ed25519Key, key_id as derive_key_id, public_key_from_b64, SEED_BYTES

FORMAT = "puhui-key/1"
KDF_NAME = "argon2id"

# Argon2id work factors by name; "interactive" is for tests, "moderate" the default, "sensitive"
# for root keys that are unlocked rarely.
STRENGTHS: dict[str, tuple[int, int]] = {
    "interactive": (argon2id.OPSLIMIT_INTERACTIVE, argon2id.MEMLIMIT_INTERACTIVE),
    "moderate": (argon2id.OPSLIMIT_MODERATE, argon2id.MEMLIMIT_MODERATE),
    "sensitive": (argon2id.OPSLIMIT_SENSITIVE, argon2id.MEMLIMIT_SENSITIVE),
}
# A file may only ask for limits we would write ourselves, so a tampered file cannot make
# load_key allocate gigabytes or spin for minutes before the MAC check fails.
_OPSLIMIT_RANGE = (argon2id.OPSLIMIT_INTERACTIVE, argon2id.OPSLIMIT_SENSITIVE)
_MEMLIMIT_RANGE = (argon2id.MEMLIMIT_INTERACTIVE, argon2id.MEMLIMIT_SENSITIVE)

# A key file is about 600 bytes; its label is its only free text, and bounded.
MAX_LABEL_CHARS = 256
MAX_KEY_FILE_BYTES = 16 << 10

_FIELDS = {"format", "key_id", "public_key", "role", "label", "kdf", "nonce", "ciphertext"}
_KDF_FIELDS = {"name", "opslimit", "memlimit", "salt"}


@dataclass(frozen=True)
class KeyFileInfo:
    """What a key file says without its passphrase."""

    path: Path
    key_id: str
    public_key: bytes
    role: str
    label: str


def save_key(
    path: str | os.PathLike[str],
    key: Ed25519Key,
    passphrase: bytes,
    *,
    role: str,
    label: str,
    strength: str = "moderate",
) -> Path:
    """Encrypt key under passphrase into a new file at path (mode 0600); never overwrites."""
    path = Path(path)
    _check_passphrase(passphrase)
    if not role:
        raise ValueError("a key file needs a role")
    if len(label) > MAX_LABEL_CHARS:
        raise ValueError(f"a key's label holds at most {MAX_LABEL_CHARS} characters")
    document = {
        "format": FORMAT,
        "key_id": key.key_id,
        "public_key": key.public_key_b64,
        "role": role,
        "label": label,
        **seal(key.seed, passphrase, strength),
    }
    write_new_private_file(path, encode_document(document))
    return path


def seal(secret: bytes, passphrase: bytes, strength: str) -> dict[str, Any]:
    """The "kdf", "nonce" and "ciphertext" fields that hold secret encrypted under passphrase."""
    if strength not in STRENGTHS:
        raise ValueError(f"strength must be one of {sorted(STRENGTHS)}, got {strength!r}")
    opslimit, memlimit = STRENGTHS[strength]
    salt = nacl.utils.random(argon2id.SALTBYTES)
    nonce = nacl.utils.random(nacl.secret.SecretBox.NONCE_SIZE)
    box = nacl.secret.SecretBox(_derive_box_key(passphrase, salt, opslimit, memlimit))
    return {
        "kdf": {"name": KDF_NAME, "opslimit": opslimit, "memlimit": memlimit, "salt": _b64(salt)},
        "nonce": _b64(nonce),
        "ciphertext": _b64(box.encrypt(secret, nonce).ciphertext),
    }


def unseal(path: Path, document: dict[str, Any], passphrase: bytes, secret_bytes: int, what: str) -> bytes:
    """The secret of secret_bytes bytes that seal() put in a document read by read_document;
    KeyFileError for a wrong passphrase or an altered file."""
    _check_passphrase(passphrase)
    kdf = document["kdf"]
    salt = _b64_field(path, kdf, "salt", argon2id.SALTBYTES)
    nonce = _b64_field(path, document, "nonce", nacl.secret.SecretBox.NONCE_SIZE)
    ciphertext = _b64_field(path, document, "ciphertext", secret_bytes + nacl.secret.SecretBox.MACBYTES)
    box = nacl.secret.SecretBox(_derive_box_key(passphrase, salt, kdf["opslimit"], kdf["memlimit"]))
    try:
        return box.decrypt(ciphertext, nonce)
    except nacl.exceptions.CryptoError:
        raise KeyFileError(f"{path}: cannot decrypt the {what}: wrong passphrase, or the file was altered") from None


def encode_document(document: dict[str, Any]) -> bytes:
    return (json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode("utf-8")


def load_key(path: str | os.PathLike[str], passphrase: bytes) -> Ed25519Key:
    """Decrypt the key in path; KeyFileError for a wrong passphrase or a malformed or altered file."""
    path = Path(path)
    _check_passphrase(passphrase)
    document = _read_document(path)
    info = _public_part(path, document)
    key = Ed25519Key.from_seed(unseal(path, document, passphrase, SEED_BYTES, "key"))
    if key.public_key != info.public_key:
        raise KeyFileError(
            f"{path}: the file's public key does not belong to its private key (file altered?)"
        )
    return key


def read_public(path: str | os.PathLike[str]) -> tuple[str, bytes]:
    """(key_id, public_key) of a key file, without its passphrase."""
    info = read_key_info(path)
    return info.key_id, info.public_key


def read_key_info(path: str | os.PathLike[str]) -> KeyFileInfo:
    """The unencrypted part of a key file: key id, public key, role and label."""
    path = Path(path)
    return _public_part(path, _read_document(path))


def _derive_box_key(passphrase: bytes, salt: bytes, opslimit: int, memlimit: int) -> bytes:
    return argon2id.kdf(
        nacl.secret.SecretBox.KEY_SIZE, passphrase, salt, opslimit=opslimit, memlimit=memlimit
    )


def _check_passphrase(passphrase: bytes) -> None:
    if not isinstance(passphrase, bytes):
        raise TypeError("a passphrase is bytes (encode text as UTF-8)")
    if not passphrase:
        raise KeyFileError("an empty passphrase is not allowed")


def write_new_private_file(path: Path, data: bytes, what: str = "key file") -> None:
    """Write data to a new file readable by its owner only, atomically, never replacing a file.

    The bytes go to a temporary 0600 file in the same directory first and are then hard-linked to
    path: the link fails if path exists, and nobody ever sees a half-written key file.
    """
    if path.exists() or path.is_symlink():
        raise KeyFileExistsError(f"{path}: a {what} already exists there; refusing to overwrite it")
    directory = path.parent
    if not directory.is_dir():
        raise KeyFileError(f"{path}: directory {directory} does not exist")
    descriptor, temporary = tempfile.mkstemp(dir=directory, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(descriptor, 0o600)
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.link(temporary, path)
        except FileExistsError:
            raise KeyFileExistsError(f"{path}: a {what} already exists there; refusing to overwrite it") from None
    finally:
        os.unlink(temporary)
    fsync_directory(directory)


def fsync_directory(directory: Path) -> None:
    # Makes the new directory entry durable, so a key that was reported saved survives a crash.
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _read_document(path: Path) -> dict[str, Any]:
    return read_document(path, FORMAT, _FIELDS, "key file")


def read_document(path: Path, file_format: str, fields: set[str], what: str) -> dict[str, Any]:
    """A sealed file's JSON of exactly these fields, every one a string but a checked "kdf"."""
    try:
        declared = json.dumps(file_format).encode("utf-8")
        text = read_secret_file(path, label=str(path), what=what, max_bytes=MAX_KEY_FILE_BYTES,
                                holds_a_secret=lambda data: declared in data).decode("utf-8")
    except FileNotFoundError:
        raise KeyFileError(f"{path}: no such {what}") from None
    except OSError as exc:
        raise KeyFileError(f"{path}: cannot read the {what}: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise KeyFileError(f"{path}: cannot read the {what}: {exc}") from exc
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise KeyFileError(f"{path}: not a {what} (invalid JSON: {exc})") from None
    if not isinstance(document, dict) or document.get("format") != file_format:
        raise KeyFileError(f"{path}: not a {what} (expected \"format\": \"{file_format}\")")
    _require_fields(path, document, fields, "", what)
    kdf = document["kdf"]
    if not isinstance(kdf, dict):
        raise KeyFileError(f"{path}: malformed {what}: kdf is not an object")
    _require_fields(path, kdf, _KDF_FIELDS, "kdf.", what)
    if kdf["name"] != KDF_NAME:
        raise KeyFileError(f"{path}: unsupported kdf {kdf['name']!r} (only {KDF_NAME!r})")
    _check_limit(path, kdf, "opslimit", _OPSLIMIT_RANGE)
    _check_limit(path, kdf, "memlimit", _MEMLIMIT_RANGE)
    for name in sorted(fields - {"kdf"}):
        if not isinstance(document[name], str):
            raise KeyFileError(f"{path}: malformed {what}: {name} is not a string")
    return document


def _require_fields(path: Path, obj: dict[str, Any], fields: set[str], prefix: str, what: str) -> None:
    missing = sorted(fields - obj.keys())
    unknown = sorted(obj.keys() - fields)
    if missing or unknown:
        problems = [f"missing {prefix}{name}" for name in missing]
        problems += [f"unknown {prefix}{name}" for name in unknown]
        raise KeyFileError(f"{path}: malformed {what}: {', '.join(problems)}")


def _check_limit(path: Path, kdf: dict[str, Any], name: str, bounds: tuple[int, int]) -> None:
    value = kdf[name]
    low, high = bounds
    if type(value) is not int or not low <= value <= high:
        raise KeyFileError(f"{path}: kdf.{name} must be an integer in [{low}, {high}], got {value!r}")


def _public_part(path: Path, document: dict[str, Any]) -> KeyFileInfo:
    try:
        public_key = public_key_from_b64(document["public_key"])
    except ValueError as exc:
        raise KeyFileError(f"{path}: malformed key file: {exc}") from None
    if document["key_id"] != derive_key_id(public_key):
        raise KeyFileError(
            f"{path}: key_id {document['key_id']!r} does not match the public key "
            f"(expected {derive_key_id(public_key)!r}; file altered?)"
        )
    return KeyFileInfo(path, document["key_id"], public_key, document["role"], document["label"])


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def _b64_field(path: Path, obj: dict[str, Any], name: str, length: int) -> bytes:
    try:
        raw = base64.b64decode(obj[name], validate=True)
    except (ValueError, TypeError):
        raise KeyFileError(f"{path}: malformed key file: {name} is not valid base64") from None
    if len(raw) != length:
        raise KeyFileError(f"{path}: malformed key file: {name} is {len(raw)} bytes, expected {length}")
    return raw
