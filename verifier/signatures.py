"""Ed25519 through libsodium (PyNaCl), which releases the GIL and is the hot loop of a run."""

from hashlib import sha256

import nacl.bindings
import nacl.exceptions
from nacl._sodium import ffi as _ffi
from nacl._sodium import lib as _lib

_open = nacl.bindings.crypto_sign_open
_PUBLIC_KEY_BYTES = nacl.bindings.crypto_sign_PUBLICKEYBYTES
_SIGNATURE_BYTES = nacl.bindings.crypto_sign_BYTES
_BAD = (nacl.exceptions.CryptoError, ValueError, TypeError)


def key_id_of(public_key):
    """Spec section 2: hex of the first 8 bytes of SHA-256 of the public key."""
    return sha256(public_key).digest()[:8].hex()


def verify_signed(public_key, signed):
    """signed = 64-byte signature || message, the layout crypto_sign_open takes. A key of any
    length but 32 bytes verifies nothing (libsodium would read the first 32 of a longer one)."""
    if type(public_key) is not bytes or len(public_key) != _PUBLIC_KEY_BYTES:
        return False
    try:
        _open(signed, public_key)
    except _BAD:
        return False
    return True


def verify_many(job):
    """job = (public keys, signed messages); returns one byte per item, 1 if it verifies (exactly
    when verify_signed says so).

    libsodium's crypto_sign_open is called through PyNaCl's own cffi binding with one message
    buffer for the whole job: PyNaCl's wrapper allocates two buffers and copies the message out on
    every call, a fiftieth of a verification, and this is the hot loop of a run. The wrapper's type
    checks are the length checks here: a key of 32 bytes, a signed message of at least 64."""
    public_keys, signed_messages = job
    outcome = bytearray(len(signed_messages))
    if not signed_messages:
        return bytes(outcome)
    message = _ffi.new("unsigned char[]", max(map(len, signed_messages)))
    message_length = _ffi.new("unsigned long long *")
    sign_open = _lib.crypto_sign_open
    position = 0
    for public_key, signed in zip(public_keys, signed_messages):
        if (
            type(public_key) is bytes
            and len(public_key) == _PUBLIC_KEY_BYTES
            and type(signed) is bytes
            and len(signed) >= _SIGNATURE_BYTES
            and sign_open(message, message_length, signed, len(signed), public_key) == 0
        ):
            outcome[position] = 1
        position += 1
    return bytes(outcome)
