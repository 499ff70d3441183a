"""RFC 9162 proofs against spec/rfc9162-vectors, receipts (docs/receipt.md) and the consistency
command, each happy and tampered, through the command line."""

import glob
import json
import os
from base64 import b64decode

import pytest
from conftest import WITNESS_NAME, TestKey, consistency_proof, inclusion_proof
from spec_paths import RFC9162_VECTORS

from verifier.merkle import root_of, verify_consistency, verify_inclusion


def _cases(kind):
    paths = sorted(glob.glob(os.path.join(RFC9162_VECTORS, kind, "**", "*.json"), recursive=True))
    assert len(paths) > 90
    return paths


@pytest.mark.parametrize("path", _cases("inclusion"), ids=lambda p: os.path.relpath(p, RFC9162_VECTORS))
def test_rfc9162_inclusion_vectors(path):
    case = json.load(open(path))
    proof = [b64decode(item) for item in case["proof"] or []]
    ok = verify_inclusion(b64decode(case["leafHash"]), case["leafIdx"], case["treeSize"], proof, b64decode(case["root"]))
    assert ok is not case["wantErr"]


@pytest.mark.parametrize("path", _cases("consistency"), ids=lambda p: os.path.relpath(p, RFC9162_VECTORS))
def test_rfc9162_consistency_vectors(path):
    case = json.load(open(path))
    proof = [b64decode(item) for item in case["proof"] or []]
    ok = verify_consistency(case["size1"], case["size2"], proof, b64decode(case["root1"]), b64decode(case["root2"]))
    assert ok is not case["wantErr"]


def test_our_proofs_verify_at_every_size(world):
    hashes = world.leaf_hashes()
    for size in range(1, len(hashes) + 1):
        root = root_of(hashes[:size])
        for index in range(size):
            assert verify_inclusion(hashes[index], index, size, inclusion_proof(hashes[:size], index), root)
        for first in range(1, size):
            assert verify_consistency(first, size, consistency_proof(hashes[:size], first), root_of(hashes[:first]), root)


def seq_of(world, field, value):
    return [leaf["body"].get(field) for leaf in world.leaves].index(value)


def make_receipt(world, seq, witnesses=()):
    size = len(world.leaves)
    hashes = world.leaf_hashes()
    leaf = world.leaves[seq]

    def inclusion(index):
        return {"leaf_index": index, "tree_size": size, "hashes": [h.hex() for h in inclusion_proof(hashes, index)]}

    signer = None
    if leaf["auth"]["key"] != world.root.key_id:
        registration = next(
            s for s, other in enumerate(world.leaves) if other["type"] == "key.register" and other["body"]["key_id"] == leaf["auth"]["key"]
        )
        signer = {"leaf": world.line(registration).decode(), "inclusion": inclusion(registration)}
    return {
        "format": "puhui-receipt/1",
        "origin": world.origin,
        "leaf": world.line(seq).decode(),
        "inclusion": inclusion(seq),
        "checkpoint": world.checkpoint_note(size, witnesses=witnesses),
        "signer": signer,
    }


def run_receipt(world, tmp_path, puhui_verify, receipt, witness_quorum=None):
    trust = tmp_path / "trust.json"
    trust.write_text(json.dumps(world.trust_document(witness_quorum)))
    path = tmp_path / "receipt.json"
    path.write_text(json.dumps(receipt))
    done = puhui_verify("receipt", path, "--trust", trust, "--json")
    assert "Traceback" not in done.stderr
    return done.returncode, json.loads(done.stdout) if done.stdout else None


def test_receipt_of_a_retirement(world, tmp_path, puhui_verify):
    status, report = run_receipt(world, tmp_path, puhui_verify, make_receipt(world, seq_of(world, "retirement_id", "ret-1")))
    assert status == 0, report
    assert report["details"]["body"]["retirement_id"] == "ret-1"
    assert report["log_format"] == 1  # the format it holds under (trial 6, finding 2)


def test_receipt_of_a_surrender_human_output(world, tmp_path, puhui_verify):
    trust = tmp_path / "trust.json"
    trust.write_text(json.dumps(world.trust_document()))
    path = tmp_path / "receipt.json"
    path.write_text(json.dumps(make_receipt(world, seq_of(world, "surrender_id", "sur-1"))))
    done = puhui_verify("receipt", path, "--trust", trust)
    assert done.returncode == 0 and "VALID" in done.stdout and "sur-1" in done.stdout


def test_receipt_of_a_root_signed_event(world, tmp_path, puhui_verify):
    status, _ = run_receipt(world, tmp_path, puhui_verify, make_receipt(world, 0))
    assert status == 0


def test_receipt_with_witnesses(world, tmp_path, puhui_verify):
    seq = seq_of(world, "retirement_id", "ret-1")
    status, _ = run_receipt(world, tmp_path, puhui_verify, make_receipt(world, seq, ((WITNESS_NAME, world.witness),)), witness_quorum=1)
    assert status == 0
    status, report = run_receipt(world, tmp_path, puhui_verify, make_receipt(world, seq), witness_quorum=1)
    assert status == 1 and [v["code"] for v in report["violations"]] == ["WITNESS_QUORUM"]


def _tamper_amount(receipt):
    receipt["leaf"] = receipt["leaf"].replace('"amount_g":150', '"amount_g":15')


def _tamper_proof(receipt):
    receipt["inclusion"]["hashes"][0] = "0" * 64


def _tamper_index(receipt):
    receipt["inclusion"]["leaf_index"] -= 1


def _tamper_checkpoint(receipt):
    receipt["checkpoint"] = receipt["checkpoint"][:-3] + "AA\n"  # the log signature's last bytes


def _tamper_signer(receipt):
    receipt["signer"]["leaf"] = receipt["signer"]["leaf"].replace('"label":"steel"', '"label":"steal"')


def _tamper_canonical(receipt):
    receipt["leaf"] = receipt["leaf"].replace('"seq":', '"seq": ')


@pytest.mark.parametrize(
    "tamper, code",
    [
        (_tamper_amount, "CHECKPOINT_ROOT"),
        (_tamper_proof, "CHECKPOINT_ROOT"),
        (_tamper_index, "CHECKPOINT_ROOT"),
        (_tamper_checkpoint, "CHECKPOINT_SIGNATURE"),
        (_tamper_signer, "CHECKPOINT_ROOT"),
        (_tamper_canonical, "ENCODING"),
    ],
)
def test_receipt_tampered(world, tmp_path, puhui_verify, tamper, code):
    receipt = make_receipt(world, seq_of(world, "retirement_id", "ret-1"))
    tamper(receipt)
    status, report = run_receipt(world, tmp_path, puhui_verify, receipt)
    assert status == 1
    assert code in [v["code"] for v in report["violations"]]


def test_receipt_forged_by_the_operator(world, tmp_path, puhui_verify):
    """The operator rewrites a retirement and builds a consistent tree and checkpoint for it: the
    signer's signature still fails."""
    seq = seq_of(world, "retirement_id", "ret-1")
    world.leaves[seq]["body"]["amount_g"] = 15
    status, report = run_receipt(world, tmp_path, puhui_verify, make_receipt(world, seq))
    assert status == 1 and [v["code"] for v in report["violations"]] == ["SIGNATURE"]


def test_receipt_signer_registered_later(world, tmp_path, puhui_verify):
    intruder = TestKey("late")
    seq = world.transfer("tr-9", "wuhan-platform", "steel-co", 5, intruder)
    world.key("late", [])
    status, report = run_receipt(world, tmp_path, puhui_verify, make_receipt(world, seq))
    assert status == 1 and [v["code"] for v in report["violations"]] == ["SIGNATURE"]


@pytest.mark.parametrize("content", ["not json", "[]", '{"format": "other"}', '{"format": "puhui-receipt/1"}'])
def test_receipt_unreadable(world, tmp_path, puhui_verify, content):
    trust = tmp_path / "trust.json"
    trust.write_text(json.dumps(world.trust_document()))
    path = tmp_path / "receipt.json"
    path.write_text(content)
    done = puhui_verify("receipt", path, "--trust", trust)
    assert done.returncode == 2 and "Traceback" not in done.stderr and "receipt" in done.stderr


def test_a_document_without_format_is_said_not_to_be_a_receipt(world, tmp_path, puhui_verify):
    trust = tmp_path / "trust.json"
    trust.write_text(json.dumps(world.trust_document()))
    path = tmp_path / "trust-as-receipt.json"
    path.write_text(json.dumps(world.trust_document()))  # the wrong file handed over
    done = puhui_verify("receipt", path, "--trust", trust)
    assert done.returncode == 2 and "not a receipt: no 'format' field" in done.stderr and "None" not in done.stderr


def test_a_receipt_with_a_field_it_does_not_define_is_refused(world, tmp_path, puhui_verify):
    receipt = make_receipt(world, seq_of(world, "retirement_id", "ret-1"))
    receipt["verified_by"] = "the registry itself"
    status, report = run_receipt(world, tmp_path, puhui_verify, receipt)
    assert status == 2 and report is None


def run_consistency(world, tmp_path, puhui_verify, old_size, new_size, hashes=None, old_note=None, new_note=None):
    leaf_hashes = world.leaf_hashes()
    (tmp_path / "trust.json").write_text(json.dumps(world.trust_document()))
    (tmp_path / "old.note").write_text(old_note or world.checkpoint_note(old_size))
    (tmp_path / "new.json").write_text(json.dumps({"note": new_note or world.checkpoint_note(new_size)}))
    if hashes is None:
        hashes = [h.hex() for h in consistency_proof(leaf_hashes[:new_size], old_size)] if 0 < old_size <= new_size else []
    (tmp_path / "proof.json").write_text(json.dumps({"first": old_size, "second": new_size, "hashes": hashes}))
    done = puhui_verify("consistency", tmp_path / "old.note", tmp_path / "new.json", tmp_path / "proof.json", "--trust", tmp_path / "trust.json", "--json")
    assert "Traceback" not in done.stderr
    return done.returncode, json.loads(done.stdout) if done.stdout else done.stderr


@pytest.mark.parametrize("old_size", [0, 1, 7, 16, 30])
def test_consistency_happy(world, tmp_path, puhui_verify, old_size):
    status, report = run_consistency(world, tmp_path, puhui_verify, min(old_size, len(world.leaves)), len(world.leaves))
    assert status == 0, report


def test_consistency_rewritten_history(world, tmp_path, puhui_verify):
    old_note = world.checkpoint_note(10)
    world.leaves[5]["body"]["label"] = "rewritten"
    status, report = run_consistency(world, tmp_path, puhui_verify, 10, len(world.leaves), old_note=old_note)
    assert status == 1 and [v["code"] for v in report["violations"]] == ["CHECKPOINT_ROOT"]


def test_consistency_log_shrank(world, tmp_path, puhui_verify):
    status, report = run_consistency(world, tmp_path, puhui_verify, 20, 10, hashes=[])
    assert status == 1 and [v["code"] for v in report["violations"]] == ["CHECKPOINT_ROOT"]


def test_consistency_unsigned_checkpoint(world, tmp_path, puhui_verify):
    forged = world.checkpoint_note(len(world.leaves), key=TestKey("forger"))
    status, report = run_consistency(world, tmp_path, puhui_verify, 10, len(world.leaves), new_note=forged)
    assert status == 1 and [v["code"] for v in report["violations"]] == ["CHECKPOINT_SIGNATURE"]


@pytest.mark.parametrize("which", ["old", "new"])
@pytest.mark.parametrize("content", ["", "\n", "  \n\n"], ids=["empty", "newline", "blank"])
def test_consistency_with_an_empty_note_cannot_run(world, tmp_path, puhui_verify, which, content):
    """Trial 6, finding 5: an empty note file (curl -s before the server answered) was NOT VALID,
    CHECKPOINT_SIGNATURE, exit 1, which says history was rewritten. It is an unreadable input: exit 2,
    naming the file."""
    notes = {"old_note": world.checkpoint_note(10), "new_note": world.checkpoint_note(len(world.leaves))}
    run_consistency(world, tmp_path, puhui_verify, 10, len(world.leaves), **notes)
    note_file = tmp_path / ("old.note" if which == "old" else "new.json")
    note_file.write_text(content)
    done = puhui_verify("consistency", tmp_path / "old.note", tmp_path / "new.json", tmp_path / "proof.json",
                        "--trust", tmp_path / "trust.json")
    assert done.returncode == 2 and done.stdout == "", done.stdout
    assert str(note_file) in done.stderr and "empty" in done.stderr and "Traceback" not in done.stderr


def test_consistency_with_a_missing_note_names_it(world, tmp_path, puhui_verify):
    run_consistency(world, tmp_path, puhui_verify, 10, len(world.leaves))
    done = puhui_verify("consistency", tmp_path / "none.note", tmp_path / "new.json", tmp_path / "proof.json",
                        "--trust", tmp_path / "trust.json")
    assert done.returncode == 2 and str(tmp_path / "none.note") in done.stderr


def test_consistency_proof_unreadable(world, tmp_path, puhui_verify):
    status, stderr = run_consistency(world, tmp_path, puhui_verify, 10, len(world.leaves), hashes=["zz"])
    assert status == 2 and "hashes" in stderr
