"""Spec v2 section 10's clarifications, which hold for format-1 and format-2 logs alike: the ones
no other test pinned down, each in both formats (the format-1 world and the re-signed format-2
vector)."""

import pytest
from conftest import Registry, build_world, found, rekeyed_vector, signed_note

from verifier.merkle import root_of
from verifier.notes import checkpoint_body


def format_1():
    return build_world(Registry())


def format_2():
    return rekeyed_vector()


BOTH = pytest.mark.parametrize("make", [format_1, format_2], ids=["format 1", "format 2"])


def platform_key(r):
    return r.keys["platform"] if r.log_format == 1 else r.keys["Xiaogan city platform"]


def some_key(r):
    return r.keys["alice"] if r.log_format == 1 else r.keys["citizen app key"]


@BOTH
def test_checkpoint_extension_lines_are_accepted_and_ignored(make, verify):
    r = make()
    body = checkpoint_body(r.origin, len(r.leaves), root_of(r.leaf_hashes())) + "extension: anything\nanother one\n"
    result = verify(r, notes=[signed_note(body, r.log_key, r.origin)])
    assert found(result) == [] and result.checkpoints.latest_size == len(r.leaves)


@BOTH
def test_a_platform_key_opening_an_individual_account_with_platform_null_is_unauthorized(make, verify):
    r = make()
    seq = r.account("walk-in", "individual", some_key(r), platform=None, by=platform_key(r))
    assert found(verify(r)) == [("UNAUTHORIZED", seq)]


@BOTH
def test_request_id_counts_unicode_code_points(make, verify):
    r = make()
    body = {"account_id": "ok-128", "kind": "enterprise", "name": "n", "region": "420100", "controllers": [some_key(r).key_id], "platform": None}
    r.event("account.open", body, r.admin, request_id="\U0001f600" * 128)
    seq = r.event("account.open", dict(body, account_id="too-long"), r.admin, request_id="\U0001f600" * 129)
    assert found(verify(r)) == [("SCHEMA", seq)]
