"""The scheme's secrets (keys.scheme_secrets): the identity hub key and the fingerprint key, each in
its own encrypted file, made by `puhui keys new hub|fingerprint`, with their own passphrase
variables, and never mistaken for one another or for an Ed25519 key file."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from keys import Ed25519Key, KeyFileError, KeyFileExistsError, load_key, load_secret, save_key, save_secret
from keys.passphrase import passphrase_for_role

PASSPHRASE = b"scheme secret passphrase"
SECRET = bytes(range(32))
PUHUI = [sys.executable, "-c", "from cli.main import main; main()"]


def saved(tmp_path: Path, kind: str = "hub", name: str = "hub.key") -> Path:
    return save_secret(tmp_path / name, SECRET, PASSPHRASE, kind=kind, label="Hubei hub", strength="interactive")


def test_a_secret_round_trips_in_a_private_file_that_holds_no_secret_in_clear(tmp_path):
    path = saved(tmp_path)
    assert load_secret(path, PASSPHRASE, "hub") == SECRET
    text = path.read_text()
    assert oct(path.stat().st_mode & 0o777) == "0o600" and SECRET.hex() not in text
    assert json.loads(text)["format"] == "puhui-secret/1" and json.loads(text)["kind"] == "hub"
    with pytest.raises(KeyFileExistsError):
        saved(tmp_path)


def test_a_wrong_passphrase_kind_or_file_is_refused(tmp_path):
    hub = saved(tmp_path)
    with pytest.raises(KeyFileError, match="wrong passphrase"):
        load_secret(hub, b"another passphrase", "hub")
    with pytest.raises(KeyFileError, match="expected the fingerprint key"):
        load_secret(hub, PASSPHRASE, "fingerprint")
    # The kind is sealed with the secret: relabelling the file does not turn one key into the other.
    relabelled = tmp_path / "relabelled.key"
    relabelled.write_text(hub.read_text().replace('"kind": "hub"', '"kind": "fingerprint"'))
    relabelled.chmod(0o600)
    with pytest.raises(KeyFileError):
        load_secret(relabelled, PASSPHRASE, "fingerprint")
    ed25519 = save_key(tmp_path / "platform.key", Ed25519Key.generate(), PASSPHRASE, role="platform", label="p",
                       strength="interactive")
    with pytest.raises(KeyFileError, match="not a scheme secret file"):
        load_secret(ed25519, PASSPHRASE, "hub")
    with pytest.raises(KeyFileError, match="not a key file"):
        load_key(hub, PASSPHRASE)


def test_each_secret_has_its_own_passphrase_variables(tmp_path, monkeypatch):
    monkeypatch.setenv("PUHUI_KEY_PASSPHRASE", "shared passphrase")
    monkeypatch.setenv("PUHUI_HUB_KEY_PASSPHRASE", "hub passphrase")
    secret_file = tmp_path / "fingerprint.pass"
    secret_file.write_text("fingerprint passphrase\n")
    secret_file.chmod(0o600)
    monkeypatch.setenv("PUHUI_FINGERPRINT_KEY_PASSPHRASE_FILE", str(secret_file))
    assert passphrase_for_role("hub", "the hub key") == b"hub passphrase"
    assert passphrase_for_role("fingerprint", "the fingerprint key") == b"fingerprint passphrase"


def test_puhui_keys_new_makes_the_hub_and_fingerprint_key_files(tmp_path):
    env = dict(os.environ, PUHUI_HUB_KEY_PASSPHRASE="hub passphrase 1", PUHUI_FINGERPRINT_KEY_PASSPHRASE="fp passphrase 1")
    for kind, passphrase in (("hub", b"hub passphrase 1"), ("fingerprint", b"fp passphrase 1")):
        out = tmp_path / f"{kind}.key"
        made = subprocess.run(PUHUI + ["keys", "new", kind, "Hubei identity hub", "--out", str(out), "--key-strength",
                                       "interactive"], capture_output=True, text=True, env=env, timeout=120,
                              stdin=subprocess.DEVNULL)
        assert made.returncode == 0 and f"{kind} key written to" in made.stdout, made.stderr
        assert len(load_secret(out, passphrase, kind)) == 32 and json.loads(out.read_text())["label"] == "Hubei identity hub"
    assert load_secret(tmp_path / "hub.key", b"hub passphrase 1", "hub") != load_secret(
        tmp_path / "fingerprint.key", b"fp passphrase 1", "fingerprint")
    refused = subprocess.run(PUHUI + ["keys", "register", str(tmp_path / "hub.key"), "--dir", str(tmp_path / "none")],
                             capture_output=True, text=True, env=env, timeout=120, stdin=subprocess.DEVNULL)
    assert refused.returncode != 0 and "Traceback" not in refused.stderr
