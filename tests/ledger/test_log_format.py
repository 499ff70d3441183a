"""A registry writes the log format its genesis names (spec "Formats"): format 2's genesis, rules
and signature prefix, judged the same way on both backends and read back the same after a restart."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from ledger.errors import Rejected
from ledger.export import export_bundle
from ledger.leaf import log_format_of
from ledger.registry import sign_event
from ledger.schema import check_body
from service.hubei import HUBEI_REVIEW_QUORUM, HUBEI_RULES
from world import World


def cast(database_url: str, log_format: int) -> World:
    """A registry of this format with an admin and a holder key: what every format accepts alike."""
    world = World(database_url, log_format=log_format)
    world.client.register_key(world.root, world.admin, ["admin"])
    world.client.register_key(world.admin, world.bob, [])
    return world


def test_a_format_2_registry_starts_its_log_with_a_format_2_genesis(database_url, tmp_path):
    world = cast(database_url, 2)
    genesis = world.registry.leaf(0)
    assert genesis.body["format"] == 2 and genesis.body["rules"]["review_quorum"] == HUBEI_REVIEW_QUORUM
    assert log_format_of(genesis.data) == 2 and world.registry.log_format == 2
    assert world.reopen().log_format == 2 and world.registry.state.log_format == 2
    world.registry.checkpoint()
    bundle, trust = tmp_path / "bundle", tmp_path / "trust.json"
    assert export_bundle(world.registry, bundle)["format"] == "puhui-bundle/2"
    trust.write_text(json.dumps(world.registry.trust()))
    result = subprocess.run([sys.executable, "-m", "verifier.cli", "bundle", str(bundle), "--trust", str(trust),
                             "--json"], capture_output=True, text=True, timeout=120)
    report = json.loads(result.stdout)
    assert result.returncode == 0 and report["log_format"] == 2 and report["valid"], report
    world.registry.close()


@pytest.mark.parametrize("log_format", [1, 2])
def test_an_event_signed_for_the_other_format_is_refused(database_url, log_format):
    """The prefix stops an event of one format's log being replayed into the other's (spec section 2)."""
    world = cast(database_url, log_format)
    body = {"key_id": world.bob.key_id, "reason": "lost", "request_id": "r-other-format"}
    other = sign_event(world.admin.signer, world.registry.origin, "key.revoke", body, log_format=3 - log_format)
    size = world.registry.size
    with pytest.raises(Rejected) as refused:
        world.registry.append(other)
    assert refused.value.code == "SIGNATURE" and world.registry.size == size
    assert f"over the format-{3 - log_format} message" in str(refused.value)
    assert f"this log is format {log_format}: sign 'puhui-event/v{log_format}'" in str(refused.value)
    forged = dict(other, auth=dict(other["auth"], sig=sign_event(world.bob.signer, world.registry.origin, "key.revoke", body,
                                                                  log_format=log_format)["auth"]["sig"]))
    with pytest.raises(Rejected) as refused:
        world.registry.append(forged)
    assert refused.value.code == "SIGNATURE" and f"over 'puhui-event/v{log_format}' + JCS" in str(refused.value)
    same = sign_event(world.admin.signer, world.registry.origin, "key.revoke", body, log_format=log_format)
    assert world.registry.append(same).seq == size
    world.registry.close()


def test_rules_carry_review_quorum_exactly_in_format_2(database_url):
    world = cast(database_url, 2)
    for rules in (HUBEI_RULES, {**HUBEI_RULES, "review_quorum": {"issuance": 1}},
                  {**HUBEI_RULES, "review_quorum": {"issuance": -1, "eligibility": 2}}):
        with pytest.raises(Rejected) as refused:
            world.client.submit(world.root, "registry.rules", {"rules": rules})
        assert refused.value.code == "SCHEMA", rules
    world.client.submit(world.root, "registry.rules", {"rules": {**HUBEI_RULES, "review_quorum": {
        "issuance": 2, "eligibility": 3}}})
    assert world.registry.state.rules["review_quorum"] == {"issuance": 2, "eligibility": 3}
    world.registry.close()


def test_a_genesis_names_format_2_or_none():
    body = {"origin": "o.example/p", "name": "n", "rules": HUBEI_RULES, "request_id": "genesis"}
    check_body("registry.genesis", body, 1)
    for wrong in (3, 1, "2", True, None):
        with pytest.raises(Rejected) as refused:
            check_body("registry.genesis", {**body, "format": wrong, "rules": {**HUBEI_RULES, "review_quorum": {
                "issuance": 1, "eligibility": 2}}}, 1)
        assert refused.value.code == "SCHEMA" and "format" in refused.value.message, wrong
    with pytest.raises(Rejected) as refused:
        check_body("registry.genesis", {**body, "format": 2}, 1)  # format 2 without review_quorum
    assert refused.value.code == "SCHEMA"
    with pytest.raises(Rejected):
        check_body("registry.rules", {"rules": {**HUBEI_RULES, "review_quorum": {"issuance": 1, "eligibility": 2}},
                                      "request_id": "r"}, 1)


@pytest.mark.parametrize("first_line, log_format", [
    (b'{"type":"registry.genesis","body":{"format":2}}', 2),
    (b'{"type":"registry.genesis","body":{"format":"2"}}', 1),
    (b'{"type":"registry.rules","body":{"format":2}}', 1),
    (b'not json', 1),
    (b'[]', 1),
])
def test_the_format_is_read_from_the_first_line_as_the_spec_says(first_line, log_format):
    assert log_format_of(first_line) == log_format
