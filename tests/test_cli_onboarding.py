"""Onboarding from the command line, run as an operator would (real processes, passphrases from the
environment): new keys, their registration, accounts and their controllers, revocation; an offline
admin's --sign-only files posted with `puhui submit`; repeats that write nothing; a signer the spec
refuses. Against a registry directory, and against a real `puhui serve` on a loopback port."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from pathlib import Path

import httpx

from keys import read_key_info
from ledger.registry import Registry
from tests.api.served_registry import PASSPHRASE, Served
from service.registry_dir import RegistryDir

PUHUI = [sys.executable, "-c", "from cli.main import main; main()"]
REPO = Path(__file__).resolve().parents[1]
ORIGIN = "onboarding.hubei.example/puhui"
PLATFORM_PASSPHRASE = "the platform's own passphrase"


def puhui(*args: object, ok: bool = True, exit_code: int = 1, **env: str) -> subprocess.CompletedProcess:
    """Run puhui; when not ok, it must fail with exit_code (1: refused, 2: could not run) in one line."""
    environment = {k: v for k, v in os.environ.items() if "PASSPHRASE" not in k}
    environment |= {"PUHUI_KEY_PASSPHRASE": PASSPHRASE, "COLUMNS": "200", **env}
    result = subprocess.run(PUHUI + [str(a) for a in args], capture_output=True, text=True, env=environment,
                            stdin=subprocess.DEVNULL, cwd=REPO, timeout=120)
    assert (result.returncode == 0) == ok, result.stderr + result.stdout
    if not ok:
        assert result.returncode == exit_code and "Traceback" not in result.stderr, result.stderr
        assert result.stderr.count("\n") == 1, result.stderr
    return result


def init(place: Path, *extra: object) -> Path:
    puhui("init", place, "--origin", ORIGIN, "--key-strength", "interactive", *extra)
    return place


def new_key(role: str, name: str, out: Path) -> str:
    """A new key file made by `puhui keys new`; its key id."""
    made = puhui("keys", "new", role, name, "--out", out, "--key-strength", "interactive",
                 PUHUI_PLATFORM_KEY_PASSPHRASE=PLATFORM_PASSPHRASE).stdout
    info = read_key_info(out)
    assert f"key id {info.key_id}" in made and info.role == role and info.label == name
    assert oct(out.stat().st_mode & 0o777) == "0o600"
    return info.key_id


def experts_approve(methodology_id: str, where: list[object], keys_dir: Path, root_key: Path) -> None:
    """Format 2: two experts, registered by root, approve the methodology's latest version, which its
    offset eligibility needs (Hubei's review_quorum.eligibility is 2)."""
    report = keys_dir / "panel-report.txt"
    report.write_text(f"the methodology panel on {methodology_id}\n")
    for n in (1, 2):
        key = keys_dir / f"expert-{n}.key"
        if not key.exists():
            new_key("expert", f"expert-{n}", key)
        puhui("keys", "register", key, *where, "--signer-key", root_key)
        puhui("review", "methodology", methodology_id, "--verdict", "approved", "--report", report, *where,
              "--signer-key", key)


def open_registry(place: Path) -> Registry:
    return Registry.open(RegistryDir(place).database_url())


def log_size(place: Path) -> int:
    registry = open_registry(place)
    try:
        return registry.size
    finally:
        registry.close()


def base64_public_key(path: Path) -> str:
    return base64.b64encode(read_key_info(path).public_key).decode()


def test_keys_and_accounts_against_a_directory(tmp_path):
    place = init(tmp_path / "reg")
    wuhan = new_key("platform", "wuhan-platform", tmp_path / "wuhan.key")
    mall = new_key("holder", "mall-co", tmp_path / "mall.key")
    short = puhui("keys", "new", "platform", "x", "--out", tmp_path / "x.key", ok=False, exit_code=2,
                  PUHUI_PLATFORM_KEY_PASSPHRASE="too short")
    assert "shorter than 12 characters" in short.stderr and not (tmp_path / "x.key").exists()
    assert "none of" in puhui("keys", "new", "wizard", "x", "--out", tmp_path / "x.key", ok=False, exit_code=2).stderr
    where = ["--dir", place]

    assert f"registered key {wuhan} (platform) at seq 2" in puhui("keys", "register", tmp_path / "wuhan.key", *where).stdout
    size = log_size(place)
    again = puhui("keys", "register", tmp_path / "wuhan.key", *where).stdout
    assert "registered already with roles platform: nothing written" in again and log_size(place) == size
    other_roles = puhui("keys", "register", tmp_path / "wuhan.key", "--role", "ets", *where, ok=False)
    assert "DUPLICATE_ID" in other_roles.stderr and log_size(place) == size
    puhui("keys", "register", tmp_path / "mall.key", *where)

    account = ["--kind", "platform", "--name", "Wuhan city platform", "--region", "420100",
               "--controller", tmp_path / "wuhan.key"]
    assert "opened platform account wuhan-platform at seq" in puhui("accounts", "open", "wuhan-platform", *account, *where).stdout
    size = log_size(place)
    assert "open already with these controllers: nothing written" in puhui(
        "accounts", "open", "wuhan-platform", *account, *where).stdout
    renamed = puhui("accounts", "open", "wuhan-platform", *account[:3], "Another name", *account[4:], *where, ok=False)
    assert "DUPLICATE_ID" in renamed.stderr and log_size(place) == size
    puhui("accounts", "open", "mall-co", "--kind", "enterprise", "--name", "Mall Co", "--region", "420100",
          "--controller", mall, *where)
    both = ["--controller", tmp_path / "mall.key", "--controller", wuhan]
    assert "at seq" in puhui("accounts", "controllers", "mall-co", *both, *where).stdout
    size = log_size(place)
    assert "has these controllers already: nothing written" in puhui("accounts", "controllers", "mall-co", *both, *where).stdout
    assert log_size(place) == size

    # The admin may grant platform and ets roles only: a second admin needs the root key (spec section 6).
    new_key("admin", "second admin", tmp_path / "admin2.key")
    refused = puhui("keys", "register", tmp_path / "admin2.key", *where, ok=False)
    assert "UNAUTHORIZED" in refused.stderr and log_size(place) == size
    puhui("keys", "register", tmp_path / "admin2.key", *where, "--signer-key", place / "keys" / "root.key")

    assert f"revoked key {mall} at seq" in puhui("keys", "revoke", mall, "--reason", "left the scheme", *where).stdout
    size = log_size(place)
    assert "revoked already: nothing written" in puhui("keys", "revoke", tmp_path / "mall.key", "--reason", "again",
                                                        *where).stdout
    assert log_size(place) == size

    registry = open_registry(place)
    state = registry.state
    assert state.keys[wuhan].roles == frozenset({"platform"}) and state.keys[mall].roles == frozenset()
    assert state.keys[mall].revoked and not state.keys[wuhan].revoked
    assert set(state.accounts["mall-co"].controllers) == {mall, wuhan}
    assert state.accounts["wuhan-platform"].kind == "platform"
    assert registry.latest_checkpoint() is not None
    registry.close()


def test_an_offline_admin_signs_files_that_submit_posts(tmp_path):
    laptop = tmp_path / "laptop"
    laptop.mkdir()
    new_key("admin", "operator", laptop / "admin.key")
    public_key = base64_public_key(laptop / "admin.key")
    place = init(tmp_path / "reg", "--admin-public-key", public_key)
    admin = ["--signer-key", laptop / "admin.key"]
    trust = place / "trust.json"

    no_key = puhui("methodologies", place, "--register", ok=False, exit_code=2)
    assert "--signer-key" in no_key.stderr and "--sign-only" in no_key.stderr
    no_origin = puhui("keys", "revoke", "0011223344556677", "--reason", "x", "--sign-only", tmp_path / "r.signed",
                      *admin, ok=False, exit_code=2)
    assert "--origin" in no_origin.stderr and not (tmp_path / "r.signed").exists()

    signed = puhui("methodologies", "--register", "--sign-only", laptop / "library.signed", "--trust", trust, *admin)
    lines = (laptop / "library.signed").read_text().splitlines()
    # What is signed into a file is not done yet: the lines say so in the present tense, on stdout.
    told = f"signed into {laptop / 'library.signed'}, not submitted yet: register "
    assert len(lines) == signed.stdout.count(told) > 0 and "puhui submit" in signed.stdout
    assert "registered" not in signed.stdout and not signed.stderr
    assert all(set(json.loads(line)) == {"type", "body", "auth"} for line in lines)
    exists = puhui("methodologies", "--register", "--sign-only", laptop / "library.signed", "--trust", trust, *admin,
                   ok=False, exit_code=2)
    assert "exists" in exists.stderr
    posted = puhui("submit", laptop / "library.signed", "--dir", place).stdout
    assert posted.count("methodology.register at seq") == len(lines)
    size = log_size(place)
    assert puhui("submit", laptop / "library.signed", "--dir", place).stdout.count("nothing written") == len(lines)
    assert log_size(place) == size

    experts_approve("HB-GT-BUS", ["--dir", place], tmp_path, place / "keys" / "root.key")
    assert (f"signed into {laptop / 'bus.signed'}, not submitted yet: turn HB-GT-BUS v2's offset eligibility on"
            in puhui("eligibility", "HB-GT-BUS", "--on", "--sign-only", laptop / "bus.signed", "--origin", ORIGIN,
                     *admin).stdout)
    assert "methodology.eligibility at seq" in puhui("submit", laptop / "bus.signed", "--dir", place).stdout
    size = log_size(place)
    assert "offset eligible on already: nothing written" in puhui("eligibility", place, "HB-GT-BUS", "--on", *admin).stdout
    illustrative = puhui("eligibility", "HB-RS-RECYCLE", "--on", "--sign-only", laptop / "recycle.signed",
                         "--origin", ORIGIN, *admin, ok=False)
    assert "illustrative" in illustrative.stderr and not (laptop / "recycle.signed").exists()

    wuhan = new_key("platform", "wuhan-platform", tmp_path / "wuhan.key")
    puhui("keys", "register", tmp_path / "wuhan.key", "--sign-only", laptop / "wuhan.signed", "--trust", trust, *admin)
    puhui("accounts", "open", "wuhan-platform", "--kind", "platform", "--name", "Wuhan", "--region", "420100",
          "--controller", wuhan, "--sign-only", laptop / "account.signed", "--origin", ORIGIN, *admin)
    assert "key.register at seq" in puhui("submit", laptop / "wuhan.signed", "--dir", place).stdout
    assert "account.open at seq" in puhui("submit", laptop / "account.signed", "--dir", place).stdout
    assert log_size(place) == size + 2

    (tmp_path / "garbage.signed").write_text('{"type": "key.revoke"}\n')
    garbage = puhui("submit", tmp_path / "garbage.signed", "--dir", place, ok=False)
    assert "line 1 is no signed event" in garbage.stderr
    (tmp_path / "empty.signed").write_text("\n")
    empty = puhui("submit", tmp_path / "empty.signed", "--dir", place, ok=False, exit_code=2)  # nothing to run
    assert "holds no signed event: it is empty" in empty.stderr
    other = init(tmp_path / "other")  # another registry: it knows no such admin
    foreign = puhui("submit", laptop / "wuhan.signed", "--dir", other, ok=False)
    assert "KEY_UNKNOWN" in foreign.stderr


def test_a_key_file_others_may_read_is_said_once_in_one_line(tmp_path):
    new_key("admin", "operator", tmp_path / "admin.key")
    (tmp_path / "admin.key").chmod(0o644)
    signed = puhui("keys", "revoke", "0011223344556677", "--reason", "lost", "--sign-only", tmp_path / "r.signed",
                   "--origin", ORIGIN, "--signer-key", tmp_path / "admin.key")  # the file is read twice
    assert signed.stderr == (f"warning: {tmp_path / 'admin.key'}: readable or writable by others (mode 644); run "
                             f"`chmod 600 {tmp_path / 'admin.key'}`\n"), signed.stderr


def test_without_a_registry_a_read_asks_which_to_read_and_a_write_where_the_events_go():
    read = puhui("methodologies", ok=False, exit_code=2)
    assert read.stderr == "error: say which registry to read: --dir DIR, or --server URL --trust FILE\n"
    write = puhui("keys", "revoke", "0011223344556677", "--reason", "lost", ok=False, exit_code=2)
    assert "say where the events go" in write.stderr


def test_a_key_file_that_is_not_there_is_named_so(tmp_path):
    """Trial 11: `keys register missing.key` said "neither a key file nor a base64 Ed25519 public key"."""
    missing = puhui("keys", "register", tmp_path / "missing.key", "--dir", tmp_path, ok=False, exit_code=2)
    assert "missing.key: no such key file" in missing.stderr, missing.stderr
    garbled = puhui("keys", "register", "not-base64", "--dir", tmp_path, ok=False, exit_code=2)
    assert "neither a key file nor a base64 Ed25519 public key" in garbled.stderr, garbled.stderr


def test_onboarding_against_a_running_server(tmp_path):
    place = init(tmp_path / "registry")
    served = Served(place).start()
    try:
        where = ["--server", served.url, "--trust", place / "trust.json"]
        admin = ["--signer-key", place / "keys" / "admin.key"]

        def size() -> int:
            return len(httpx.get(f"{served.url}/v1/log", params={"start": 0, "limit": 1000}).json()["leaves"])

        wuhan = new_key("platform", "wuhan-platform", tmp_path / "wuhan.key")
        citizen = new_key("holder", "p-5feceb66ffc8", tmp_path / "citizen.key")
        assert f"registered key {wuhan} (platform) at seq" in puhui("keys", "register", tmp_path / "wuhan.key",
                                                                    *where, *admin).stdout
        before = size()
        assert "nothing written" in puhui("keys", "register", tmp_path / "wuhan.key", *where, *admin).stdout
        assert size() == before
        puhui("keys", "register", tmp_path / "citizen.key", *where, *admin)

        platform = ["--kind", "platform", "--name", "Wuhan", "--region", "420100", "--controller", wuhan]
        assert "opened platform account" in puhui("accounts", "open", "wuhan-platform", *platform, *where, *admin).stdout
        before = size()
        assert "nothing written" in puhui("accounts", "open", "wuhan-platform", *platform, *where, *admin).stdout
        assert size() == before
        # A platform key opens its citizens' individual accounts (spec section 6), under a pseudonym.
        individual = ["--kind", "individual", "--name", "p-5feceb66ffc8", "--region", "420100",
                      "--controller", citizen, "--platform", "wuhan-platform"]
        assert "opened individual account" in puhui("accounts", "open", "p-5feceb66ffc8", *individual, *where,
                                                    "--signer-key", tmp_path / "wuhan.key",
                                                    PUHUI_PLATFORM_KEY_PASSPHRASE=PLATFORM_PASSPHRASE).stdout
        both = ["--controller", citizen, "--controller", wuhan]
        puhui("accounts", "controllers", "p-5feceb66ffc8", *both, *where, *admin)
        before = size()
        assert "nothing written" in puhui("accounts", "controllers", "p-5feceb66ffc8", *both, *where, *admin).stdout
        assert size() == before

        assert puhui("methodologies", "--register", *where, *admin).stdout.count("registered ") > 0
        experts_approve("HB-GT-BUS", where, tmp_path, place / "keys" / "root.key")
        assert "offset eligible on at seq" in puhui("eligibility", "HB-GT-BUS", "--on", *where, *admin).stdout
        before = size()
        assert "on already: nothing written" in puhui("eligibility", "HB-GT-BUS", "--on", *where, *admin).stdout
        assert size() == before

        # A platform key may not open an enterprise's account: the server refuses with the spec's code.
        refused = puhui("accounts", "open", "mall-co", "--kind", "enterprise", "--name", "Mall", "--region", "420100",
                        "--controller", citizen, *where, "--signer-key", tmp_path / "wuhan.key", ok=False,
                        PUHUI_PLATFORM_KEY_PASSPHRASE=PLATFORM_PASSPHRASE)
        assert "UNAUTHORIZED" in refused.stderr and size() == before

        puhui("keys", "revoke", citizen, "--reason", "phone lost", "--sign-only", tmp_path / "revoke.signed",
              *where, *admin)
        assert size() == before
        assert "key.revoke at seq" in puhui("submit", tmp_path / "revoke.signed", *where).stdout
        assert "revoked already: nothing written" in puhui("submit", tmp_path / "revoke.signed", *where).stdout
        assert size() == before + 1

        away = puhui("keys", "revoke", wuhan, "--reason", "x", "--server", "http://127.0.0.1:1", "--trust",
                     place / "trust.json", *admin, ok=False, exit_code=2)
        assert "cannot reach" in away.stderr
        no_trust = puhui("keys", "revoke", wuhan, "--reason", "x", "--server", served.url, *admin, ok=False, exit_code=2)
        assert "--trust" in no_trust.stderr
    finally:
        served.stop()
    registry = open_registry(place)
    assert registry.state.keys[citizen].revoked and registry.state.methodologies["HB-GT-BUS"].offset_eligible
    assert set(registry.state.accounts["p-5feceb66ffc8"].controllers) == {citizen, wuhan}
    registry.close()
