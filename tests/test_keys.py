"""keys/: key ids per the spec, signing, encrypted key files, passphrases and key rings."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import stat
from pathlib import Path

import pytest
from hypothesis import given, settings, strategies as st
from spec_paths import VECTORS

import keys
from keys import (
    Ed25519Key,
    KeyFileError,
    KeyFileExistsError,
    KeyRing,
    Signer,
    key_id,
    load_key,
    passphrase_from_env_or_prompt,
    read_key_info,
    read_public,
    save_key,
    verify_signature,
)

PASSPHRASE = b"correct horse battery staple"
FAST = "interactive"  # Argon2id work factor that keeps these tests quick


def saved_key(
    tmp_path: Path, key: Ed25519Key | None = None, name: str = "admin.key"
) -> tuple[Path, Ed25519Key]:
    key = key or Ed25519Key.generate()
    path = save_key(tmp_path / name, key, PASSPHRASE, role="admin", label="test admin", strength=FAST)
    return path, key


def rewrite(path: Path, change) -> None:
    document = json.loads(path.read_text())
    change(document)
    path.write_text(json.dumps(document))


def flip_first_byte(b64: str) -> str:
    raw = bytearray(base64.b64decode(b64))
    raw[0] ^= 0x01
    return base64.b64encode(bytes(raw)).decode()


# --- key ids and signing ---------------------------------------------------------------------


def test_key_id_matches_the_spec_vector():
    line = (VECTORS / "valid/bundle/log.jsonl").read_text().splitlines()[1]
    body = json.loads(line)["body"]
    assert body["public_key"] == "Ga5GnXVguj9xYhw8p5MXOUOZtZG11Flq2XcHIoECaGc="
    assert key_id(base64.b64decode(body["public_key"])) == "e259e1d6b80e1fd6" == body["key_id"]


def test_key_id_matches_every_registered_key_in_the_vectors():
    registered = []
    for log in VECTORS.glob("*/bundle/log.jsonl"):
        for line in log.read_text().splitlines():
            event = json.loads(line)
            if event["type"] == "key.register":
                registered.append(event["body"])
    assert registered, "the spec vectors register keys"
    for body in registered:
        assert key_id(keys.public_key_from_b64(body["public_key"])) == body["key_id"]


def test_root_key_of_the_trust_file_signs_the_genesis_event():
    # The trust file's root key id is the auth.key of the genesis leaf, and its signature verifies
    # with verify_signature over the spec's signing input.
    trust = json.loads((VECTORS / "valid/trust.json").read_text())
    root = base64.b64decode(trust["root_keys"][0])
    genesis = json.loads((VECTORS / "valid/bundle/log.jsonl").read_text().splitlines()[0])
    assert genesis["auth"]["key"] == key_id(root)
    rfc8785 = pytest.importorskip("rfc8785")
    signed = b"puhui-event/v1\n" + rfc8785.dumps(
        {"body": genesis["body"], "origin": trust["origin"], "type": genesis["type"]}
    )
    signature = base64.b64decode(genesis["auth"]["sig"])
    assert verify_signature(root, signed, signature)
    assert not verify_signature(root, signed + b"x", signature)


def test_key_id_is_16_lowercase_hex_and_rejects_wrong_lengths():
    assert key_id(bytes(32)) == "66687aadf862bd77"
    with pytest.raises(ValueError):
        key_id(bytes(31))


def test_sign_and_verify_round_trip():
    key = Ed25519Key.generate()
    signature = key.sign(b"message")
    assert len(signature) == 64
    assert key.verify(b"message", signature)
    assert verify_signature(key.public_key, b"message", signature)
    assert not verify_signature(key.public_key, b"other message", signature)
    assert not verify_signature(Ed25519Key.generate().public_key, b"message", signature)
    assert not verify_signature(key.public_key, b"message", signature[:63])


@settings(max_examples=25, deadline=None)
@given(seed=st.binary(min_size=32, max_size=32), message=st.binary(max_size=256))
def test_any_seed_signs_verifiably_and_keeps_its_identity(seed, message):
    key = Ed25519Key.from_seed(seed)
    assert Ed25519Key.from_seed(key.seed) == key
    assert key.key_id == key_id(key.public_key)
    assert base64.b64decode(key.public_key_b64) == key.public_key
    assert verify_signature(key.public_key, message, key.sign(message))


def test_ed25519_key_is_a_signer_and_its_repr_hides_the_seed():
    key = Ed25519Key.generate()
    assert isinstance(key, Signer)
    assert key.seed.hex() not in repr(key)
    assert key.key_id in repr(key)


def test_from_seed_rejects_wrong_length():
    with pytest.raises(ValueError):
        Ed25519Key.from_seed(bytes(31))


def test_from_label_is_deterministic_and_distinct_per_label():
    assert Ed25519Key.from_label("alice") == Ed25519Key.from_label("alice")
    assert Ed25519Key.from_label("alice") != Ed25519Key.from_label("bob")
    assert Ed25519Key.from_label("alice").seed == hashlib.sha256(b"alice").digest()


def test_public_key_from_b64_is_strict():
    good = Ed25519Key.generate().public_key_b64
    assert keys.public_key_to_b64(keys.public_key_from_b64(good)) == good
    for bad in (good.rstrip("="), good[:-2] + "B=", "not base64!", base64.b64encode(bytes(31)).decode()):
        with pytest.raises(ValueError):
            keys.public_key_from_b64(bad)


# --- key files -------------------------------------------------------------------------------


def test_save_and_load_round_trip(tmp_path):
    path, key = saved_key(tmp_path)
    loaded = load_key(path, PASSPHRASE)
    assert loaded.seed == key.seed
    assert loaded.key_id == key.key_id
    assert verify_signature(key.public_key, b"m", loaded.sign(b"m"))


def test_key_file_format(tmp_path):
    path, key = saved_key(tmp_path)
    document = json.loads(path.read_text())
    assert document["format"] == "puhui-key/1"
    assert document["key_id"] == key.key_id
    assert document["public_key"] == key.public_key_b64
    assert (document["role"], document["label"]) == ("admin", "test admin")
    assert document["kdf"]["name"] == "argon2id"
    assert (document["kdf"]["opslimit"], document["kdf"]["memlimit"]) == keys.STRENGTHS[FAST]
    assert len(base64.b64decode(document["kdf"]["salt"])) == 16
    assert len(base64.b64decode(document["nonce"])) == 24
    assert len(base64.b64decode(document["ciphertext"])) == 32 + 16
    assert key.seed not in path.read_bytes()
    assert base64.b64encode(key.seed) not in path.read_bytes()


def test_two_saves_of_one_key_use_fresh_salt_and_nonce(tmp_path):
    key = Ed25519Key.generate()
    first, _ = saved_key(tmp_path, key, "a.key")
    second, _ = saved_key(tmp_path, key, "b.key")
    a, b = json.loads(first.read_text()), json.loads(second.read_text())
    assert a["kdf"]["salt"] != b["kdf"]["salt"]
    assert a["nonce"] != b["nonce"]
    assert a["ciphertext"] != b["ciphertext"]


def test_key_file_is_private_even_with_a_permissive_umask(tmp_path):
    previous = os.umask(0)
    try:
        path, _ = saved_key(tmp_path)
    finally:
        os.umask(previous)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_save_refuses_to_overwrite(tmp_path):
    path, key = saved_key(tmp_path)
    before = path.read_bytes()
    with pytest.raises(KeyFileExistsError, match="refusing to overwrite"):
        save_key(path, Ed25519Key.generate(), PASSPHRASE, role="admin", label="x", strength=FAST)
    assert isinstance(KeyFileExistsError("x"), (KeyFileError, FileExistsError))
    assert path.read_bytes() == before
    assert load_key(path, PASSPHRASE) == key
    assert sorted(p.name for p in tmp_path.iterdir()) == ["admin.key"]  # no temporary left behind


def test_save_refuses_a_dangling_symlink(tmp_path):
    (tmp_path / "admin.key").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(KeyFileExistsError):
        saved_key(tmp_path)
    assert not (tmp_path / "elsewhere").exists()


def test_save_rejects_empty_passphrase_and_unknown_strength(tmp_path):
    key = Ed25519Key.generate()
    with pytest.raises(KeyFileError, match="empty passphrase"):
        save_key(tmp_path / "k", key, b"", role="admin", label="x", strength=FAST)
    with pytest.raises(ValueError, match="strength"):
        save_key(tmp_path / "k", key, PASSPHRASE, role="admin", label="x", strength="weak")
    with pytest.raises(TypeError):
        save_key(tmp_path / "k", key, "text", role="admin", label="x", strength=FAST)
    assert not (tmp_path / "k").exists()


def test_wrong_passphrase_is_a_clear_error(tmp_path):
    path, _ = saved_key(tmp_path)
    with pytest.raises(KeyFileError, match="wrong passphrase"):
        load_key(path, b"wrong passphrase")


@pytest.mark.parametrize("field", ["ciphertext", "nonce", "salt"])
def test_tampered_secret_fields_are_detected(tmp_path, field):
    path, _ = saved_key(tmp_path)

    def tamper(document):
        holder = document["kdf"] if field == "salt" else document
        holder[field] = flip_first_byte(holder[field])

    rewrite(path, tamper)
    with pytest.raises(KeyFileError, match="wrong passphrase, or the file was altered"):
        load_key(path, PASSPHRASE)


def test_tampered_kdf_limit_is_detected(tmp_path):
    path, _ = saved_key(tmp_path)
    rewrite(path, lambda d: d["kdf"].update(opslimit=d["kdf"]["opslimit"] + 1))
    with pytest.raises(KeyFileError, match="altered"):
        load_key(path, PASSPHRASE)


def test_out_of_range_kdf_limits_are_refused_before_deriving(tmp_path):
    path, _ = saved_key(tmp_path)
    rewrite(path, lambda d: d["kdf"].update(memlimit=2**42))
    with pytest.raises(KeyFileError, match="memlimit"):
        load_key(path, PASSPHRASE)


def test_substituted_public_key_is_detected(tmp_path):
    # Another key's public key and matching key_id: consistent on its face, wrong for the seed.
    path, _ = saved_key(tmp_path)
    other = Ed25519Key.generate()
    rewrite(path, lambda d: d.update(public_key=other.public_key_b64, key_id=other.key_id))
    assert read_public(path) == (other.key_id, other.public_key)
    with pytest.raises(KeyFileError, match="does not belong to its private key"):
        load_key(path, PASSPHRASE)


def test_key_id_that_does_not_match_the_public_key_is_detected(tmp_path):
    path, _ = saved_key(tmp_path)
    rewrite(path, lambda d: d.update(key_id="0" * 16))
    with pytest.raises(KeyFileError, match="key_id"):
        read_public(path)
    with pytest.raises(KeyFileError, match="key_id"):
        load_key(path, PASSPHRASE)


@pytest.mark.parametrize(
    "content",
    [
        "",
        "not json",
        "[]",
        '{"format": "something-else"}',
        '{"format": "puhui-key/1"}',
    ],
)
def test_malformed_files_are_clear_errors(tmp_path, content):
    path = tmp_path / "bad.key"
    path.write_text(content)
    with pytest.raises(KeyFileError, match=str(path)):
        load_key(path, PASSPHRASE)
    with pytest.raises(KeyFileError):
        read_public(path)


@pytest.mark.parametrize(
    "change",
    [
        lambda d: d.pop("nonce"),
        lambda d: d.update(extra=1),
        lambda d: d.update(kdf="argon2id"),
        lambda d: d["kdf"].update(name="scrypt"),
        lambda d: d["kdf"].update(opslimit="2"),
        lambda d: d.update(nonce="!!!"),
        lambda d: d.update(ciphertext=base64.b64encode(bytes(40)).decode()),
        lambda d: d.update(public_key=base64.b64encode(bytes(31)).decode()),
        lambda d: d.update(label=7),
    ],
)
def test_structurally_altered_files_are_clear_errors(tmp_path, change):
    path, _ = saved_key(tmp_path)
    rewrite(path, change)
    with pytest.raises(KeyFileError, match="key file|kdf|base64|public key|label"):
        load_key(path, PASSPHRASE)


def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(KeyFileError, match="no such key file"):
        load_key(tmp_path / "absent.key", PASSPHRASE)


def test_read_public_needs_no_passphrase(tmp_path):
    path, key = saved_key(tmp_path)
    assert read_public(path) == (key.key_id, key.public_key)
    info = read_key_info(path)
    assert (info.role, info.label, info.key_id) == ("admin", "test admin", key.key_id)



def _refused_at_once(path: Path) -> str:
    """read_key_info and load_key on path, each in a thread that must end within 5 s."""
    import threading
    messages: list[str] = []

    def attempt(read) -> None:
        try:
            read()
        except KeyFileError as exc:
            messages.append(str(exc))

    for read in (lambda: read_key_info(path), lambda: load_key(path, PASSPHRASE)):
        thread = threading.Thread(target=attempt, args=(read,), daemon=True)
        thread.start()
        thread.join(5)
        assert not thread.is_alive(), f"reading {path} did not return"
    assert len(messages) == 2 and messages[0] == messages[1]
    return messages[0]


def test_a_fifo_is_refused_at_once_not_waited_on(tmp_path):
    fifo = tmp_path / "log.key"
    os.mkfifo(fifo)
    assert "not a regular file" in _refused_at_once(fifo)


def test_a_device_is_refused_at_once_not_read_forever():
    assert "not a regular file" in _refused_at_once(Path("/dev/zero"))


def test_a_file_larger_than_any_key_file_is_refused_before_reading(tmp_path):
    path, _ = saved_key(tmp_path)
    assert path.stat().st_size < 2048  # what a real key file weighs
    with open(path, "ab") as handle:
        handle.write(b" " * keys.MAX_KEY_FILE_BYTES)
    assert "larger than a key file" in _refused_at_once(path)


def test_a_key_file_others_may_read_is_loaded_with_a_warning(tmp_path):
    path, key = saved_key(tmp_path)
    os.chmod(path, 0o644)
    with pytest.warns(keys.KeyFilePermissionWarning, match="chmod 600"):
        assert load_key(path, PASSPHRASE) == key


def test_a_private_key_file_loads_without_a_warning(tmp_path):
    import warnings
    path, key = saved_key(tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert load_key(path, PASSPHRASE) == key


def test_a_public_file_handed_over_as_a_key_file_is_said_not_to_be_one_without_a_mode_warning(tmp_path):
    import warnings
    trust = tmp_path / "trust.json"
    trust.write_text(json.dumps({"origin": "x.example/puhui", "log_key": "x+0+AA", "root_keys": []}))
    os.chmod(trust, 0o644)  # as a trust file is: public
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(keys.KeyFileError, match="not a key file"):
            load_key(trust, PASSPHRASE)


def test_a_label_is_bounded(tmp_path):
    with pytest.raises(ValueError, match="at most"):
        save_key(tmp_path / "k", Ed25519Key.generate(), PASSPHRASE, role="admin", label="x" * 257, strength=FAST)


# --- passphrases -----------------------------------------------------------------------------


def fail_if_prompted(*_args, **_kwargs):
    raise AssertionError("prompted although it should not be")


def test_passphrase_from_env(monkeypatch):
    monkeypatch.setenv("PUHUI_KEY_PASSPHRASE", "from the environment ✓")
    monkeypatch.setattr("getpass.getpass", fail_if_prompted)
    assert passphrase_from_env_or_prompt("the admin key") == "from the environment ✓".encode()


def test_passphrase_from_a_named_env(monkeypatch):
    monkeypatch.delenv("PUHUI_KEY_PASSPHRASE", raising=False)
    monkeypatch.setenv("PUHUI_ROOT_PASSPHRASE", "root secret")
    assert passphrase_from_env_or_prompt("root", env="PUHUI_ROOT_PASSPHRASE") == b"root secret"


@pytest.mark.parametrize("value", [None, ""])
def test_no_passphrase_and_no_terminal_is_a_clear_error(monkeypatch, value):
    if value is None:
        monkeypatch.delenv("PUHUI_KEY_PASSPHRASE", raising=False)
    else:
        monkeypatch.setenv("PUHUI_KEY_PASSPHRASE", value)
    monkeypatch.setattr("keys.passphrase.terminal_attached", lambda: False)
    monkeypatch.setattr("getpass.getpass", fail_if_prompted)
    with pytest.raises(KeyFileError, match="set the environment variable PUHUI_KEY_PASSPHRASE"):
        passphrase_from_env_or_prompt("the log key")



def test_each_role_has_its_own_passphrase_variable_before_the_shared_one(monkeypatch):
    monkeypatch.setattr("getpass.getpass", fail_if_prompted)
    monkeypatch.setenv("PUHUI_KEY_PASSPHRASE", "shared passphrase")
    monkeypatch.setenv("PUHUI_LOG_KEY_PASSPHRASE", "the log key's own")
    monkeypatch.delenv("PUHUI_ROOT_KEY_PASSPHRASE", raising=False)
    assert keys.passphrase_for_role("log", "the log key") == b"the log key's own"
    assert keys.passphrase_for_role("root", "the root key") == b"shared passphrase"
    assert keys.role_passphrase_env("admin") == "PUHUI_ADMIN_KEY_PASSPHRASE"


def test_a_passphrase_variable_may_name_a_file_instead(monkeypatch, tmp_path):
    monkeypatch.setattr("getpass.getpass", fail_if_prompted)
    for name in ("PUHUI_KEY_PASSPHRASE", "PUHUI_LOG_KEY_PASSPHRASE", "PUHUI_KEY_PASSPHRASE_FILE"):
        monkeypatch.delenv(name, raising=False)
    secret = tmp_path / "log-passphrase"
    secret.write_bytes("from a file ✓\n".encode())
    monkeypatch.setenv("PUHUI_LOG_KEY_PASSPHRASE_FILE", str(secret))
    monkeypatch.setenv("PUHUI_KEY_PASSPHRASE", "the shared one")
    assert keys.passphrase_for_role("log", "the log key") == "from a file ✓".encode()
    assert keys.passphrase_for_role("admin", "the admin key") == b"the shared one"
    monkeypatch.setenv("PUHUI_LOG_KEY_PASSPHRASE_FILE", str(tmp_path / "absent"))
    with pytest.raises(KeyFileError, match="PUHUI_LOG_KEY_PASSPHRASE_FILE=.*cannot read it"):
        keys.passphrase_for_role("log", "the log key")
    secret.write_bytes(b"")
    monkeypatch.setenv("PUHUI_LOG_KEY_PASSPHRASE_FILE", str(secret))
    with pytest.raises(KeyFileError, match="one line"):
        keys.passphrase_for_role("log", "the log key")


def test_forgetting_clears_every_passphrase_variable_and_nothing_else(monkeypatch):
    for name in ("PUHUI_KEY_PASSPHRASE", "PUHUI_LOG_KEY_PASSPHRASE", "PUHUI_PLATFORM_KEY_PASSPHRASE",
                 "PUHUI_KEY_PASSPHRASE_FILE", "PUHUI_LOG_KEY_PASSPHRASE_FILE"):
        monkeypatch.setenv(name, "secret secret")
    monkeypatch.setenv("PUHUI_OTHER", "kept")
    keys.forget_passphrases()
    assert not [name for name in os.environ if "PASSPHRASE" in name and name.startswith("PUHUI_")]
    assert os.environ["PUHUI_OTHER"] == "kept"


def test_a_new_key_needs_a_passphrase_of_twelve_characters():
    with pytest.raises(KeyFileError, match="shorter than 12"):
        keys.check_new_passphrase(b"demo only", "the root key")
    keys.check_new_passphrase("碳普惠碳普惠碳普惠碳普惠".encode(), "the root key")  # characters, not bytes
    with pytest.raises(KeyFileError):
        keys.check_new_passphrase("碳普惠碳普惠碳普惠碳普".encode(), "the root key")  # 11 characters, 33 bytes


def prompt_answering(monkeypatch, *answers):
    remaining = list(answers)
    prompts = []

    def fake_getpass(prompt):
        prompts.append(prompt)
        return remaining.pop(0)

    monkeypatch.delenv("PUHUI_KEY_PASSPHRASE", raising=False)
    monkeypatch.setattr("keys.passphrase.terminal_attached", lambda: True)
    monkeypatch.setattr("getpass.getpass", fake_getpass)
    return prompts


def test_prompt_on_a_terminal(monkeypatch):
    prompts = prompt_answering(monkeypatch, "typed")
    assert passphrase_from_env_or_prompt("the admin key") == b"typed"
    assert prompts == ["Passphrase for the admin key: "]


def test_prompt_with_confirmation(monkeypatch):
    prompts = prompt_answering(monkeypatch, "typed", "typed")
    assert passphrase_from_env_or_prompt("a new key", confirm=True) == b"typed"
    assert len(prompts) == 2


def test_prompt_confirmation_mismatch(monkeypatch):
    prompt_answering(monkeypatch, "typed", "tpyed")
    with pytest.raises(KeyFileError, match="differ"):
        passphrase_from_env_or_prompt("a new key", confirm=True)


def test_prompt_rejects_empty(monkeypatch):
    prompt_answering(monkeypatch, "")
    with pytest.raises(KeyFileError, match="empty"):
        passphrase_from_env_or_prompt("a new key")


def test_passphrase_is_never_read_from_argv(monkeypatch):
    monkeypatch.delenv("PUHUI_KEY_PASSPHRASE", raising=False)
    monkeypatch.setattr("sys.argv", ["puhui", "--passphrase", "from argv", "from argv"])
    monkeypatch.setattr("keys.passphrase.terminal_attached", lambda: False)
    with pytest.raises(KeyFileError):
        passphrase_from_env_or_prompt("the admin key")


# --- key rings -------------------------------------------------------------------------------


def test_keyring_keeps_every_key_in_its_own_file(tmp_path):
    ring = KeyRing(tmp_path / "keys")
    created = {
        "root": ring.create("root", "root", PASSPHRASE, strength=FAST),
        "log": ring.create("log", "log", PASSPHRASE, strength=FAST),
        "admin": ring.create("admin", "operator", PASSPHRASE, strength=FAST),
        "platform-wuhan": ring.create("platform", "Wuhan", PASSPHRASE, "wuhan", strength=FAST),
        "platform-grid": ring.create("platform", "grid", PASSPHRASE, "grid", strength=FAST),
    }
    assert ring.names() == sorted(created)
    assert sorted(p.name for p in (tmp_path / "keys").iterdir()) == sorted(f"{n}.key" for n in created)
    assert len({key.public_key for key in created.values()}) == len(created)
    assert stat.S_IMODE((tmp_path / "keys").stat().st_mode) == 0o700
    for name, key in created.items():
        assert ring.load(name, PASSPHRASE) == key
        assert ring.public(name) == (key.key_id, key.public_key)
        assert stat.S_IMODE(ring.path(name).stat().st_mode) == 0o600


def test_keyring_refuses_a_second_key_for_a_role(tmp_path):
    ring = KeyRing(tmp_path)
    first = ring.create("log", "log", PASSPHRASE, strength=FAST)
    with pytest.raises(KeyFileExistsError):
        ring.create("log", "another log", PASSPHRASE, strength=FAST)
    assert ring.load("log", PASSPHRASE) == first


def test_keyring_keys_have_their_own_passphrases(tmp_path):
    ring = KeyRing(tmp_path)
    ring.create("root", "root", b"root passphrase", strength=FAST)
    ring.create("log", "log", b"log passphrase", strength=FAST)
    with pytest.raises(KeyFileError, match="wrong passphrase"):
        ring.load("root", b"log passphrase")
    ring.load("log", b"log passphrase")


def test_keyring_refuses_a_key_file_of_another_role(tmp_path):
    ring = KeyRing(tmp_path)
    ring.create("root", "root", PASSPHRASE, strength=FAST)
    os.link(ring.path("root"), ring.path("log"))  # a root key put where the log key belongs
    with pytest.raises(KeyFileError, match="holds a 'root' key, expected a 'log' key"):
        ring.load("log", PASSPHRASE)
    with pytest.raises(KeyFileError, match="expected a 'log' key"):
        ring.public("log")


@pytest.mark.parametrize(
    "role, name",
    [("root", "extra"), ("platform", None), ("platform", "Bad Name"), ("platform", "../x"), ("witch", None)],
)
def test_keyring_rejects_bad_roles_and_names(tmp_path, role, name):
    with pytest.raises(ValueError):
        KeyRing(tmp_path).create(role, "x", PASSPHRASE, name, strength=FAST)


@pytest.mark.parametrize("name", ["../root", "platform-", "platform-../x", "root\n", "secret"])
def test_keyring_rejects_unknown_key_names(tmp_path, name):
    with pytest.raises(KeyFileError, match="no such key name"):
        KeyRing(tmp_path).load(name, PASSPHRASE)


def test_a_passphrase_file_that_is_a_fifo_is_refused_not_waited_on(monkeypatch, tmp_path):
    import threading
    fifo = tmp_path / "passphrase"
    os.mkfifo(fifo)
    monkeypatch.setenv("PUHUI_LOG_KEY_PASSPHRASE_FILE", str(fifo))
    outcome: list[str] = []

    def read() -> None:
        try:
            keys.passphrase_for_role("log", "the log key")
        except KeyFileError as exc:
            outcome.append(str(exc))
    thread = threading.Thread(target=read, daemon=True)
    thread.start()
    thread.join(5)
    assert not thread.is_alive() and "not a regular file" in outcome[0]
