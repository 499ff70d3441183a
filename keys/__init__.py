"""Ed25519 keys of the Puhui registry: generation, key ids, encrypted key files, passphrases,
key rings, and the Signer interface every component signs through.

Nothing outside keys/ knows how a key is stored.
"""

from .errors import KeyFileError, KeyFileExistsError
from .keyfile import STRENGTHS, KeyFileInfo, load_key, read_key_info, read_public, save_key
from .keyring import ROLES, KeyRing, key_file_name
from .passphrase import PASSPHRASE_ENV, passphrase_from_env_or_prompt
from .signer import (
    Ed25519Key,
    Signer,
    key_id,
    public_key_from_b64,
    public_key_to_b64,
    verify_signature,
)

__all__ = [
    "Ed25519Key",
    "KeyFileError",
    "KeyFileExistsError",
    "KeyFileInfo",
    "KeyRing",
    "PASSPHRASE_ENV",
    "ROLES",
    "STRENGTHS",
    "Signer",
    "key_file_name",
    "key_id",
    "load_key",
    "passphrase_from_env_or_prompt",
    "public_key_from_b64",
    "public_key_to_b64",
    "read_key_info",
    "read_public",
    "save_key",
    "verify_signature",
]
