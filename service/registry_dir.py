"""A registry's directory: its configuration, database, key files and trust file.

    DIR/registry.json       {"format": "puhui-registry-dir/1", "origin", "database_url"}
    DIR/registry.sqlite3    the embedded database (when no other database_url was given)
    DIR/keys/               root.key, log.key, admin.key (encrypted, one file per key)
    DIR/trust.json          what auditors need (spec section 8)
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from keys import KeyRing, passphrase_from_env_or_prompt
from ledger.registry import Registry
from ledger.schema import key_id_of
from ledger.store import sqlite_url
from service.actors import Actor, Client
from service.hubei import HUBEI_RULES

CONFIG = "registry.json"
FORMAT = "puhui-registry-dir/1"


class RegistryDirError(Exception):
    """The directory is not a registry, or not in a usable state."""


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
        return override or self.config()["database_url"]

    def passphrase(self, confirm: bool = False) -> bytes:
        return passphrase_from_env_or_prompt(f"the keys of {self.path}", confirm=confirm)

    def open(self, *, with_log_key: bool, database_url: str | None = None, passphrase: bytes | None = None) -> Registry:
        log_signer = None
        if with_log_key:
            log_signer = self.keyring.load("log", passphrase or self.passphrase())
        return Registry.open(self.database_url(database_url), log_signer=log_signer)

    def init(self, origin: str, *, admin_public_key: bytes | None = None, database_url: str | None = None,
             name: str = "Hubei carbon-inclusive registry", strength: str = "moderate",
             passphrase: bytes | None = None) -> Registry:
        """Create keys, database, genesis (Hubei rules), first admin and the trust file."""
        if self.exists():
            raise RegistryDirError(f"{self.path} already holds a registry")
        self.path.mkdir(parents=True, exist_ok=True)
        passphrase = passphrase or self.passphrase(confirm=True)
        ring = self.keyring
        root = ring.create("root", f"root key of {origin}", passphrase, strength=strength)
        log = ring.create("log", f"log key of {origin}", passphrase, strength=strength)
        if admin_public_key is None:
            admin = ring.create("admin", f"first admin of {origin}", passphrase, strength=strength)
            admin_public_key = admin.public_key
        url = database_url or sqlite_url(str((self.path / "registry.sqlite3").resolve()))
        registry = Registry.create(url, origin=origin, name=name, rules=HUBEI_RULES, root_signer=root,
                                   log_public_key=log.public_key, log_signer=log)
        Client(registry).submit(Actor(root, "root"), "key.register", {
            "key_id": key_id_of(admin_public_key), "public_key": base64.b64encode(admin_public_key).decode(),
            "roles": ["admin"], "label": "registry operator (first admin)"})
        registry.checkpoint()
        self.config_path.write_text(json.dumps({"format": FORMAT, "origin": origin, "database_url": url}, indent=1) + "\n")
        self.write_trust(registry)
        return registry

    def write_trust(self, registry: Registry) -> None:
        (self.path / "trust.json").write_text(json.dumps(registry.trust(), indent=1) + "\n")
