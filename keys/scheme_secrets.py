"""The carbon-inclusive scheme's two secrets (spec sections 7.3, 7.4), each in its own encrypted file:

- the identity hub key, from which the hub derives each person's daily pseudonyms (it never
  leaves the hub);
- the fingerprint key, the one scheme-wide secret the hub gives the accredited platforms, under
  which fingerprints are keyed so that a few station codes and a minute cannot be tried out.

Format "puhui-secret/1" (JSON, UTF-8), sealed as a key file is (keys.keyfile):

    {"format": "puhui-secret/1", "kind": "hub" | "fingerprint", "label": TEXT,
     "kdf": {...}, "nonce": B64, "ciphertext": B64}

The plaintext is "puhui-<kind>-key\\n" followed by the 32 secret bytes: unlike a key file's role,
the kind is authenticated, so a fingerprint key copied over a hub key file is refused rather
than turning every pseudonym into another. Neither secret is ever written to the log, an
export or registry.json.
"""

from __future__ import annotations

import os
from pathlib import Path

import nacl.utils

from .errors import KeyFileError
from .keyfile import MAX_LABEL_CHARS, encode_document, read_document, seal, unseal, write_new_private_file

FORMAT = "puhui-secret/1"
SECRET_KINDS = ("hub", "fingerprint")
SECRET_BYTES = 32
_FIELDS = {"format", "kind", "label", "kdf", "nonce", "ciphertext"}
_WHAT = "scheme secret file"


def _header(kind: str) -> bytes:
    return f"puhui-{kind}-key\n".encode("ascii")


def _check_kind(kind: str) -> None:
    if kind not in SECRET_KINDS:
        raise ValueError(f"a scheme secret is one of {', '.join(SECRET_KINDS)}, got {kind!r}")


def new_secret() -> bytes:
    return nacl.utils.random(SECRET_BYTES)


def save_secret(path: str | os.PathLike[str], secret: bytes, passphrase: bytes, *, kind: str, label: str,
                strength: str = "moderate") -> Path:
    """Encrypt a scheme secret under passphrase into a new file at path (mode 0600); never overwrites."""
    path = Path(path)
    _check_kind(kind)
    if len(secret) != SECRET_BYTES:
        raise ValueError(f"a scheme secret is {SECRET_BYTES} bytes")
    if not passphrase:
        raise KeyFileError("an empty passphrase is not allowed")
    if len(label) > MAX_LABEL_CHARS:
        raise ValueError(f"a secret's label holds at most {MAX_LABEL_CHARS} characters")
    document = {"format": FORMAT, "kind": kind, "label": label, **seal(_header(kind) + secret, passphrase, strength)}
    write_new_private_file(path, encode_document(document), _WHAT)
    return path


def load_secret(path: str | os.PathLike[str], passphrase: bytes, kind: str) -> bytes:
    """The 32 bytes of the scheme secret of this kind in path; KeyFileError for a wrong passphrase,
    an altered file, or a file holding the other kind."""
    path = Path(path)
    _check_kind(kind)
    document = read_document(path, FORMAT, _FIELDS, _WHAT)
    if document["kind"] != kind:
        raise KeyFileError(f"{path}: holds the {document['kind']} key, expected the {kind} key")
    header = _header(kind)
    plaintext = unseal(path, document, passphrase, len(header) + SECRET_BYTES, f"{kind} key")
    if not plaintext.startswith(header):
        raise KeyFileError(f"{path}: holds no {kind} key (file altered?)")
    return plaintext[len(header):]
