"""Ed25519 through libsodium (PyNaCl), which releases the GIL and is the hot loop of a run."""

from hashlib import sha256

import nacl.bindings
import nacl.exceptions

_open = nacl.bindings.crypto_sign_open
_BAD = (nacl.exceptions.CryptoError, ValueError, TypeError)


def key_id_of(public_key):
    """Spec section 2: hex of the first 8 bytes of SHA-256 of the public key."""
    return sha256(public_key).digest()[:8].hex()


def verify_signed(public_key, signed):
    """signed = 64-byte signature || message, the layout crypto_sign_open takes."""
    try:
        _open(signed, public_key)
    except _BAD:
        return False
    return True


def verify_many(job):
    """job = (public keys, signed messages); returns one byte per item, 1 if it verifies."""
    public_keys, signed_messages = job
    outcome = bytearray(len(signed_messages))
    position = 0
    for public_key, signed in zip(public_keys, signed_messages):
        try:
            _open(signed, public_key)
            outcome[position] = 1
        except _BAD:
            pass
        position += 1
    return bytes(outcome)
