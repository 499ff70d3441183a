"""Ed25519 signing keys, key ids, and the one Signer interface the ledger, API client and tools use.

key_id and the base64 form of a public key follow puhui-log-v1 section 2.
"""

from __future__ import annotations

import base64
import hashlib
from typing import Protocol, runtime_checkable

import nacl.exceptions
import nacl.signing

PUBLIC_KEY_BYTES = 32
SEED_BYTES = 32
SIGNATURE_BYTES = 64


def key_id(public_key: bytes) -> str:
    """Lowercase hex of the first 8 bytes of SHA-256(public key bytes): 16 hex characters."""
    public_key = bytes(public_key)
    if len(public_key) != PUBLIC_KEY_BYTES:
        raise ValueError(f"an Ed25519 public key is {PUBLIC_KEY_BYTES} bytes, got {len(public_key)}")
    return hashlib.sha256(public_key).digest()[:8].hex()


def public_key_to_b64(public_key: bytes) -> str:
    """A public key as JSON carries it: standard base64 with padding."""
    return base64.b64encode(bytes(public_key)).decode("ascii")


def public_key_from_b64(text: str) -> bytes:
    """Decode a JSON public key strictly: canonical standard base64 of exactly 32 bytes."""
    try:
        raw = base64.b64decode(text, validate=True)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"public key is not valid base64: {text!r}") from exc
    # validate=True still accepts non-zero padding bits; re-encoding rejects such aliases.
    if len(raw) != PUBLIC_KEY_BYTES or base64.b64encode(raw).decode("ascii") != text:
        raise ValueError(f"public key is not canonical base64 of {PUBLIC_KEY_BYTES} bytes: {text!r}")
    return raw


def verify_signature(public_key: bytes, message: bytes, signature: bytes) -> bool:
    """True when signature is a valid detached Ed25519 signature of message under public_key."""
    if len(public_key) != PUBLIC_KEY_BYTES or len(signature) != SIGNATURE_BYTES:
        return False
    try:
        nacl.signing.VerifyKey(bytes(public_key)).verify(bytes(message), bytes(signature))
    except nacl.exceptions.BadSignatureError:
        return False
    return True


@runtime_checkable
class Signer(Protocol):
    """Anything that signs for a key: a key in memory today, perhaps an HSM or a remote signer later."""

    key_id: str
    public_key: bytes

    def sign(self, message: bytes) -> bytes:
        """The 64-byte detached Ed25519 signature of message."""
        ...


class Ed25519Key:
    """An Ed25519 private key in memory (a nacl.signing.SigningKey); implements Signer."""

    __slots__ = ("_signing_key", "public_key", "key_id")

    def __init__(self, signing_key: nacl.signing.SigningKey) -> None:
        self._signing_key = signing_key
        self.public_key: bytes = bytes(signing_key.verify_key)
        self.key_id: str = key_id(self.public_key)

    @classmethod
    def generate(cls) -> Ed25519Key:
        """A new random key from the operating system's CSPRNG (via libsodium)."""
        return cls(nacl.signing.SigningKey.generate())

    @classmethod
    def from_seed(cls, seed: bytes) -> Ed25519Key:
        """The key of a 32-byte RFC 8032 seed (the private key proper)."""
        seed = bytes(seed)
        if len(seed) != SEED_BYTES:
            raise ValueError(f"an Ed25519 seed is {SEED_BYTES} bytes, got {len(seed)}")
        return cls(nacl.signing.SigningKey(seed))

    @classmethod
    def from_label(cls, label: str) -> Ed25519Key:
        """A deterministic TEST key whose seed is SHA-256(label as UTF-8).

        FOR TESTS AND DEMOS ONLY. Anyone who knows or guesses the label has the private key, so a
        key made this way protects nothing. Never register one in a real registry.
        """
        return cls.from_seed(hashlib.sha256(label.encode("utf-8")).digest())

    @property
    def public_key_b64(self) -> str:
        return public_key_to_b64(self.public_key)

    @property
    def seed(self) -> bytes:
        """The 32-byte secret seed. Only for encrypting into a key file: never log or print it."""
        return bytes(self._signing_key)

    def sign(self, message: bytes) -> bytes:
        return self._signing_key.sign(bytes(message)).signature

    def verify(self, message: bytes, signature: bytes) -> bool:
        return verify_signature(self.public_key, message, signature)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Ed25519Key):
            return NotImplemented
        return self.public_key == other.public_key

    def __hash__(self) -> int:
        return hash(self.public_key)

    def __repr__(self) -> str:
        # The seed stays out of reprs so that a key in a traceback or a log line leaks nothing.
        return f"Ed25519Key(key_id={self.key_id!r})"
