"""A registry's directory: its configuration, database, key files and trust file.

    DIR/registry.json       {"format": "puhui-registry-dir/1", "origin", "database_url"}
    DIR/registry.sqlite3    the embedded database (when no other database_url was given)
    DIR/keys/               root.key, log.key, admin.key (encrypted, one file per key)
    DIR/trust.json          what auditors need (spec section 8)
"""

from __future__ import annotations

import base64
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from keys import Ed25519Key, KeyRing, check_new_passphrase, passphrase_for_role, passphrase_from_env_or_prompt, save_key
from ledger.registry import Registry
from ledger.note import verifier_key
from ledger.schema import key_id_of
from ledger.store import Store, sqlite_url
from sqlalchemy.engine import make_url
from service.actors import Actor, Client
from service.hubei import hubei_rules

CONFIG = "registry.json"
MAX_ORIGIN_CHARS = 200
DEFAULT_DATABASE = "registry.sqlite3"
FORMAT = "puhui-registry-dir/1"


class RegistryDirError(Exception):
    """The directory is not a registry, or not in a usable state."""


# The log format `puhui init` writes (spec "Formats": a registry SHOULD start every new log in
# format 2). Format 1 stays for the registries that exist: Registry.create(log_format=1).
INIT_LOG_FORMAT = 2


def _check_origin(origin: str) -> None:
    """An origin names the log key in every checkpoint (C2SP signed note): non-empty, no spaces or
    '+', at most 255 bytes; and it is written as a note's first line, so printable."""
    try:
        verifier_key(origin, bytes(32))
    except ValueError as exc:
        raise RegistryDirError(f"--origin {origin!r} cannot name a log: {exc}") from None
    if not origin.isprintable():
        raise RegistryDirError(f"--origin {origin!r} holds characters that cannot be printed")
    if len(origin) > MAX_ORIGIN_CHARS:  # it names the keys' files and the genesis, both bounded
        raise RegistryDirError(f"--origin is {len(origin)} characters long: at most {MAX_ORIGIN_CHARS}")


def refuse_if_another_writer(url: str, wait_s: float) -> None:
    """WriterLockHeld, naming the holder (a running server), if another writer keeps the log's
    writer lock for wait_s: a write from here could not go through it (trial 11: the operator was
    asked for the log key's passphrase first, as if that were the trouble)."""
    store = Store.connect(url)
    try:
        store.acquire_writer_lock(wait_s)
        store.release_writer_lock()
    finally:
        store.engine.dispose()


@dataclass
class RegistryDir:
    path: Path

    @property
    def config_path(self) -> Path:
        return self.path / CONFIG

    @property
    def keyring(self) -> KeyRing:
        return KeyRing(self.path / "keys")

    def exists(self) -> bool:
        return self.config_path.exists()

    def config(self) -> dict[str, Any]:
        if not self.exists():
            raise RegistryDirError(f"{self.path} holds no registry (no {CONFIG}); create one with `puhui init`")
        config = json.loads(self.config_path.read_text())
        if config.get("format") != FORMAT:
            raise RegistryDirError(f"{self.config_path} is not a {FORMAT} file")
        return config

    def database_url(self, override: str | None = None) -> str:
        """The database's URL: the override, or the config's, where a SQLite path that is relative
        is relative to this directory (so a moved or copied directory takes its database along)."""
        if override:
            return override
        url = make_url(self.config()["database_url"])
        if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:") \
                and not Path(url.database).is_absolute():
            return sqlite_url(str((self.path / url.database).resolve()))
        return url.render_as_string(hide_password=False)

    def passphrase(self, role: str | None = None, *, confirm: bool = False) -> bytes:
        """The passphrase of role's key (keys.passphrase_for_role: its own variable first), or
        with no role the one shared by every key (PUHUI_KEY_PASSPHRASE, or a prompt)."""
        if role is None:
            return passphrase_from_env_or_prompt(f"the keys of {self.path}", confirm=confirm)
        return passphrase_for_role(role, f"the {role} key of {self.path}", confirm=confirm)

    def open(self, *, with_log_key: bool, database_url: str | None = None, passphrase: bytes | None = None,
             writer_lock_wait_s: float | None = None) -> Registry:
        """The registry; with its log key to sign checkpoints. writer_lock_wait_s bounds how long
        a first write waits for another writer (a running server) to let go of the log."""
        url = self.database_url(database_url)  # first: a directory that is no registry is named as such
        log_signer = None
        if with_log_key:
            log_signer = self.keyring.load("log", passphrase or self.passphrase("log"))
        registry = Registry.open(url, log_signer=log_signer)
        if writer_lock_wait_s is not None:
            registry.writer_lock_timeout_s = writer_lock_wait_s
        return registry

    def admin_key(self, passphrase: bytes | None = None) -> Ed25519Key:
        """The admin key kept in this directory (absent when init was given --admin-public-key)."""
        if "admin" not in self.keyring.names():
            raise RegistryDirError(f"the registry's admin key is not in {self.path / 'keys'}: sign where it is "
                                   f"kept (--signer-key FILE, or --sign-only FILE there, then `puhui submit FILE`)")
        return self.keyring.load("admin", passphrase or self.passphrase("admin"))

    def init(self, origin: str, *, admin_public_key: bytes | None = None, database_url: str | None = None,
             name: str = "Hubei carbon-inclusive registry", strength: str = "moderate",
             passphrase: bytes | None = None, root_key_out: Path | None = None, demo: bool = False,
             log_format: int = INIT_LOG_FORMAT) -> Registry:
        """Create keys, database, genesis (Hubei rules), first admin and the trust file; all or
        nothing: a failure leaves no half-made directory behind to block the next attempt.

        root_key_out: write the root key there instead of DIR/keys (to be kept offline: the server
        never needs it). passphrase: one for every key (else each role's own, or a prompt); at
        least MIN_PASSPHRASE_CHARS characters unless demo. log_format: 1 only to run beside registries
        of format 1 (spec "Formats")."""
        if log_format not in (1, 2):
            raise RegistryDirError(f"log format {log_format}: a registry writes format 1 or 2")
        _check_origin(origin)
        if self.exists():
            raise RegistryDirError(f"{self.path} already holds a registry")
        if self.path.exists() and (not self.path.is_dir() or any(self.path.iterdir())):
            raise RegistryDirError(f"{self.path} exists and is not an empty directory: choose a new one")
        if root_key_out is not None:
            root_key_out = Path(root_key_out)
            if root_key_out.exists() or root_key_out.is_symlink():
                raise RegistryDirError(f"--root-key-out {root_key_out} exists: a key file is never overwritten")
            if not root_key_out.parent.is_dir():
                raise RegistryDirError(f"--root-key-out: directory {root_key_out.parent} does not exist")
        roles = ["root", "log"] + (["admin"] if admin_public_key is None else [])
        passphrases = {role: passphrase or self.passphrase(role, confirm=True) for role in roles}
        if not demo:
            for role, secret in passphrases.items():
                check_new_passphrase(secret, f"the {role} key")
        created_dir = not self.path.exists()
        self.path.mkdir(parents=True, exist_ok=True)
        try:
            return self._create(origin, admin_public_key, database_url, name, strength, passphrases, root_key_out,
                                log_format)
        except BaseException:
            if root_key_out is not None and root_key_out.exists():
                root_key_out.unlink()
            if created_dir:
                shutil.rmtree(self.path, ignore_errors=True)
            else:
                for leftover in (self.config_path, self.path / "trust.json", self.keyring.directory,
                                 *self.path.glob("registry.sqlite3*")):
                    if leftover.is_dir():
                        shutil.rmtree(leftover, ignore_errors=True)
                    else:
                        leftover.unlink(missing_ok=True)
            raise

    def _create(self, origin: str, admin_public_key: bytes | None, database_url: str | None, name: str,
                strength: str, passphrases: dict[str, bytes], root_key_out: Path | None, log_format: int) -> Registry:
        ring = self.keyring
        if root_key_out is None:
            root = ring.create("root", f"root key of {origin}", passphrases["root"], strength=strength)
        else:
            root = Ed25519Key.generate()
            save_key(root_key_out, root, passphrases["root"], role="root", label=f"root key of {origin}",
                     strength=strength)
        log = ring.create("log", f"log key of {origin}", passphrases["log"], strength=strength)
        if admin_public_key is None:
            admin = ring.create("admin", f"first admin of {origin}", passphrases["admin"], strength=strength)
            admin_public_key = admin.public_key
        url = database_url or sqlite_url(str((self.path / DEFAULT_DATABASE).resolve()))
        registry = Registry.create(url, log_format=log_format, origin=origin, name=name,
                                   rules=hubei_rules(log_format), root_signer=root,
                                   log_public_key=log.public_key, log_signer=log)
        try:
            Client(registry).submit(Actor(root, "root"), "key.register", {
                "key_id": key_id_of(admin_public_key), "public_key": base64.b64encode(admin_public_key).decode(),
                "roles": ["admin"], "label": "registry operator (first admin)"})
            registry.checkpoint()
            self.write_trust(registry)
            stored = database_url or sqlite_url(DEFAULT_DATABASE)  # relative: the directory's own file
            # Owner-only: a PostgreSQL URL holds the database's password, which writes the ledger's tables.
            descriptor = os.open(self.config_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            os.fchmod(descriptor, 0o600)  # whatever the umask
            with os.fdopen(descriptor, "w") as config:
                config.write(json.dumps({"format": FORMAT, "origin": origin, "database_url": stored}, indent=1) + "\n")
        except BaseException:
            registry.close()
            raise
        return registry

    def write_trust(self, registry: Registry) -> None:
        (self.path / "trust.json").write_text(json.dumps(registry.trust(), indent=1) + "\n")
