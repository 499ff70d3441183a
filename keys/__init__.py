"""Ed25519 keys of the Puhui registry: generation, key ids, encrypted key files, passphrases,
key rings, and the Signer interface every component signs through; and the scheme's two secrets
(the identity hub key, the fingerprint key) in their own encrypted files.

Nothing outside keys/ knows how a key is stored.
"""

from .errors import KeyFileError, KeyFileExistsError
from .keyfile import (
    MAX_KEY_FILE_BYTES,
    STRENGTHS,
    KeyFileInfo,
    KeyFilePermissionWarning,
    load_key,
    read_key_info,
    read_public,
    save_key,
)
from .keyring import KEY_FILE_ROLES, ROLES, KeyRing, key_file_name
from .passphrase import (
    MIN_PASSPHRASE_CHARS,
    PASSPHRASE_ENV,
    check_new_passphrase,
    forget_passphrases,
    passphrase_for_role,
    passphrase_from_env_or_prompt,
    role_passphrase_env,
)
from .scheme_secrets import SECRET_KINDS, load_secret, new_secret, save_secret
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
    "KeyFilePermissionWarning",
    "KEY_FILE_ROLES",
    "KeyRing",
    "MAX_KEY_FILE_BYTES",
    "MIN_PASSPHRASE_CHARS",
    "PASSPHRASE_ENV",
    "ROLES",
    "SECRET_KINDS",
    "STRENGTHS",
    "check_new_passphrase",
    "forget_passphrases",
    "Signer",
    "key_file_name",
    "key_id",
    "load_key",
    "load_secret",
    "new_secret",
    "passphrase_for_role",
    "passphrase_from_env_or_prompt",
    "public_key_from_b64",
    "public_key_to_b64",
    "read_key_info",
    "read_public",
    "role_passphrase_env",
    "save_key",
    "save_secret",
    "verify_signature",
]
