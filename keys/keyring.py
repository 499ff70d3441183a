"""A registry's key directory: one encrypted file per key, named after what the key is for.

    DIR/root.key  DIR/log.key  DIR/admin.key  DIR/platform-<name>.key

Root, log, admin and platform keys are always separate keys in separate files, so that the log key
can sit on the server while the root key stays offline, and losing one file exposes one key only.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from .errors import KeyFileError
from .keyfile import KeyFileInfo, load_key, read_key_info, save_key
from .signer import Ed25519Key

ROLES = ("root", "log", "admin", "platform")
# What a key file may say it is for: the ring's roles, the carbon market's key (ets), a validation
# body's and a methodology expert's (format 2, granted by root), and an account holder's key (an
# enterprise's, a citizen's), which the log registers with no role.
KEY_FILE_ROLES = (*ROLES, "ets", "validator", "expert", "holder")
SINGLE_KEY_ROLES = ("root", "log", "admin")
KEY_FILE_SUFFIX = ".key"
_PLATFORM_NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")
_KEY_NAME = re.compile(rf"(root|log|admin|platform-{_PLATFORM_NAME.pattern})")


def key_file_name(role: str, name: str | None = None) -> str:
    """The key's name in a KeyRing: the role for root/log/admin, platform-<name> for a platform."""
    if role in SINGLE_KEY_ROLES:
        if name is not None:
            raise ValueError(f"a {role} key has no name: a registry has exactly one")
        return role
    if role == "platform":
        if name is None or not _PLATFORM_NAME.fullmatch(name):
            raise ValueError(
                f"a platform key needs a name matching {_PLATFORM_NAME.pattern}, got {name!r}"
            )
        return f"platform-{name}"
    raise ValueError(f"role must be one of {ROLES}, got {role!r}")


class KeyRing:
    """The key files of one registry, in one directory (created 0700 on first use)."""

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.directory = Path(directory)

    def path(self, name: str) -> Path:
        """The file of the key called name ("root", "log", "admin", "platform-<name>")."""
        if not _KEY_NAME.fullmatch(name):
            raise KeyFileError(f"no such key name {name!r}: use root, log, admin or platform-<name>")
        return self.directory / f"{name}{KEY_FILE_SUFFIX}"

    def create(
        self,
        role: str,
        label: str,
        passphrase: bytes,
        name: str | None = None,
        *,
        strength: str = "moderate",
    ) -> Ed25519Key:
        """Generate a new key for role and save it encrypted; refuses if that file already exists."""
        file_name = key_file_name(role, name)
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        key = Ed25519Key.generate()
        save_key(self.path(file_name), key, passphrase, role=role, label=label, strength=strength)
        return key

    def load(self, name: str, passphrase: bytes) -> Ed25519Key:
        """Unlock the key called name; its file must say the role its name implies."""
        path = self.path(name)
        self._check_role(name, read_key_info(path))
        return load_key(path, passphrase)

    def public(self, name: str) -> tuple[str, bytes]:
        """(key_id, public_key) of the key called name, without its passphrase."""
        info = read_key_info(self.path(name))
        self._check_role(name, info)
        return info.key_id, info.public_key

    def info(self, name: str) -> KeyFileInfo:
        return read_key_info(self.path(name))

    def names(self) -> list[str]:
        """The names of the keys present, sorted."""
        if not self.directory.is_dir():
            return []
        return sorted(
            path.name.removesuffix(KEY_FILE_SUFFIX)
            for path in self.directory.glob(f"*{KEY_FILE_SUFFIX}")
        )

    @staticmethod
    def _check_role(name: str, info: KeyFileInfo) -> None:
        # A root key copied over log.key must not be used as the log key by mistake.
        expected = name if name in SINGLE_KEY_ROLES else "platform"
        if info.role != expected:
            raise KeyFileError(f"{info.path}: holds a {info.role!r} key, expected a {expected!r} key")

    def __repr__(self) -> str:
        return f"KeyRing({str(self.directory)!r})"
