"""`puhui-verify opening` (spec section 7.4): the openings of the format-2 valid vector check, any
changed byte of one fails, and with a receipt the record is proven in its batch and the batch in
the log."""

import json
import os
from hashlib import sha256

import pytest
from conftest import VECTORS_V2, b64, inclusion_proof

from verifier.canonical import jcs
from verifier.merkle import leaf_hash
from verifier.openings import check_opening

VALID = os.path.join(VECTORS_V2, "valid")
BATCHES = sorted(name[: -len(".jsonl")] for name in os.listdir(os.path.join(VALID, "openings")))


def lines(*parts):
    with open(os.path.join(VALID, *parts), "rb") as handle:
        return handle.read().splitlines()


def log():
    return lines("bundle", "log.jsonl")


def params_of(methodology_id):
    for line in log():
        leaf = json.loads(line)
        if leaf["type"] == "methodology.register" and leaf["body"]["methodology_id"] == methodology_id:
            return json.dumps(leaf["body"]["params"]).encode()
    raise KeyError(methodology_id)


def batch_seq(batch_id):
    for seq, line in enumerate(log()):
        leaf = json.loads(line)
        if leaf["type"] == "activity.batch" and leaf["body"]["batch_id"] == batch_id:
            return seq, leaf
    raise KeyError(batch_id)


def test_every_opening_of_the_vector_checks(tmp_path):
    checked = 0
    for batch_id in BATCHES:
        _, batch = batch_seq(batch_id)
        definition = params_of(batch["body"]["methodology_id"])
        for record, opening in zip(lines("bundle", "activities", batch_id + ".jsonl"), lines("openings", batch_id + ".jsonl"), strict=True):
            assert check_opening(record, opening).valid
            result = check_opening(record, opening, definition)
            assert result.valid and result.details["definition_checked"], result.violations
            checked += 1
    assert checked == 43


def test_any_changed_byte_of_an_opening_fails():
    record = lines("bundle", "activities", "xg-cycle-2026-05.jsonl")[0]
    opening = lines("openings", "xg-cycle-2026-05.jsonl")[0]
    for position in range(len(opening)):
        for replacement in {opening[position] ^ 1, ord(" ")} - {opening[position]}:
            changed = opening[:position] + bytes([replacement]) + opening[position + 1 :]
            result = check_opening(record, changed)
            assert not result.valid and result.violations[0][0] == "OPENING", (position, changed)


@pytest.mark.parametrize(
    "change, words",
    [
        (lambda opening: dict(opening, salt="AAECAwQFBgcICQoLDA0O"), "fewer than 16"),
        (lambda opening: {"fields": {**opening["fields"], "extra": "X"}, "salt": opening["salt"]}, "not a non-public input"),
        (lambda opening: {"fields": {"occurred_at": opening["fields"]["occurred_at"]}, "salt": opening["salt"]}, "missing"),
        (lambda opening: {"fields": {**opening["fields"], "occurred_at": "2026-05-01T16:00:00.000000Z"}, "salt": opening["salt"]}, "Beijing date"),
    ],
    ids=["short salt", "a field too many", "a required field missing", "another Beijing date"],
)
def test_an_opening_that_hashes_right_but_breaks_a_rule_fails(change, words):
    """Each rule on its own: the record's commitment is recomputed so that only that rule breaks."""
    record = json.loads(lines("bundle", "activities", "xg-cycle-2026-05.jsonl")[0])
    opening = change(json.loads(lines("openings", "xg-cycle-2026-05.jsonl")[0]))
    record["private_sha256"] = sha256(jcs(opening)).hexdigest()
    result = check_opening(jcs(record), jcs(opening), params_of("XG-GT-CYCLE"))
    assert [code for code, _ in result.violations] == ["OPENING"] and words in result.violations[0][1], result.violations


def test_the_beijing_date_crosses_midnight_utc():
    """The vector's first bus ride is at 23:00 UTC on 5 May: 6 May in Beijing, its occurred_on."""
    record = lines("bundle", "activities", "xg-bus-2026-05.jsonl")[0]
    opening = lines("openings", "xg-bus-2026-05.jsonl")[0]
    assert b"2026-05-05T23:00" in opening and b'"occurred_on":"2026-05-06"' in record
    assert check_opening(record, opening).valid


def _record_proof_and_receipt(batch_id, index):
    """The registry's record proof of record `index` of a batch and the receipt of its batch event,
    both built from the vector's bytes, in the vector's largest checkpoint."""
    seq, batch = batch_seq(batch_id)
    records = lines("bundle", "activities", batch_id + ".jsonl")
    log_lines = log()
    hashes = [leaf_hash(line) for line in log_lines]
    note = json.loads(lines("bundle", "checkpoints.jsonl")[-1])["note"]
    size = int(note.split("\n")[1])
    signer_key = batch["auth"]["key"]
    registration = next(s for s, line in enumerate(log_lines) if json.loads(line)["type"] == "key.register" and json.loads(line)["body"]["key_id"] == signer_key)

    def inclusion(leaf_index, leaves):
        return {"leaf_index": leaf_index, "tree_size": len(leaves), "hashes": [node.hex() for node in inclusion_proof(leaves, leaf_index)]}

    proof = {
        "activity_id": json.loads(records[index])["activity_id"],
        "batch_id": batch_id,
        "batch_seq": seq,
        "batch_root": batch["body"]["root"],
        "record": records[index].decode(),
        "inclusion": inclusion(index, [leaf_hash(record) for record in records]),
    }
    receipt = {
        "format": "puhui-receipt/1",
        "origin": json.loads(b"".join(lines("trust.json")))["origin"],
        "leaf": log_lines[seq].decode(),
        "inclusion": inclusion(seq, hashes[:size]),
        "checkpoint": note,
        "signer": {"leaf": log_lines[registration].decode(), "inclusion": inclusion(registration, hashes[:size])},
    }
    return proof, receipt


def test_with_a_receipt_the_record_is_proven_in_its_batch_and_the_log(tmp_path, puhui_verify):
    proof, receipt = _record_proof_and_receipt("hs-power-2026-05", 3)
    opening = lines("openings", "hs-power-2026-05.jsonl")[3]
    (tmp_path / "proof.json").write_text(json.dumps(proof))
    (tmp_path / "receipt.json").write_text(json.dumps(receipt))
    (tmp_path / "opening.json").write_bytes(opening)
    trust = os.path.join(VALID, "trust.json")
    done = puhui_verify("opening", tmp_path / "proof.json", tmp_path / "opening.json", "--receipt", tmp_path / "receipt.json", "--trust", trust, "--json")
    report = json.loads(done.stdout)
    assert done.returncode == 0 and report["valid"], report
    assert report["details"]["batch_seq"] == proof["batch_seq"]

    proof["inclusion"]["leaf_index"] = 2  # the proof of another place in the batch
    (tmp_path / "proof.json").write_text(json.dumps(proof))
    done = puhui_verify("opening", tmp_path / "proof.json", tmp_path / "opening.json", "--receipt", tmp_path / "receipt.json", "--trust", trust, "--json")
    assert done.returncode == 1 and [v["code"] for v in json.loads(done.stdout)["violations"]] == ["BATCH"]


def test_the_command_line_takes_json_text_and_reports_a_changed_salt(puhui_verify):
    record = lines("bundle", "activities", "hs-ev-2026-05.jsonl")[0].decode()
    opening = json.loads(lines("openings", "hs-ev-2026-05.jsonl")[0])
    done = puhui_verify("opening", record, json.dumps(opening, separators=(",", ":"), sort_keys=True))
    assert done.returncode == 0 and "VALID" in done.stdout, done.stdout + done.stderr
    opening["salt"] = b64(b"\x00" * 16)
    done = puhui_verify("opening", record, json.dumps(opening, separators=(",", ":"), sort_keys=True), "--json")
    assert done.returncode == 1 and json.loads(done.stdout)["violations"][0]["code"] == "OPENING"
    done = puhui_verify("opening", record, "{}", "--receipt", "receipt.json")
    assert done.returncode == 2 and "--trust" in done.stderr


def test_a_receipt_of_a_format_2_log_checks_with_log_format_2(tmp_path, puhui_verify):
    _, receipt = _record_proof_and_receipt("xg-bus-2026-05", 0)
    (tmp_path / "receipt.json").write_text(json.dumps(receipt))
    trust = os.path.join(VALID, "trust.json")
    done = puhui_verify("receipt", tmp_path / "receipt.json", "--trust", trust, "--log-format", "2", "--json")
    assert done.returncode == 0 and json.loads(done.stdout)["valid"], done.stdout
    done = puhui_verify("receipt", tmp_path / "receipt.json", "--trust", trust, "--log-format", "1", "--json")
    report = json.loads(done.stdout)
    assert done.returncode == 1 and [v["code"] for v in report["violations"]] == ["SIGNATURE"]
    assert report["log_format"] == 1 and "check with --log-format 2" in report["notes"][-1]


def test_a_receipt_is_checked_as_the_format_it_holds_under(tmp_path, puhui_verify):
    """Trial 6, finding 2: without --log-format a genuine format-2 receipt was NOT VALID (read as
    format 1). A receipt does not name its log's format: it holds under exactly one."""
    _, receipt = _record_proof_and_receipt("xg-bus-2026-05", 0)
    (tmp_path / "receipt.json").write_text(json.dumps(receipt))
    trust = os.path.join(VALID, "trust.json")
    done = puhui_verify("receipt", tmp_path / "receipt.json", "--trust", trust, "--json")
    report = json.loads(done.stdout)
    assert done.returncode == 0 and report["valid"] and report["log_format"] == 2, done.stdout
    human = puhui_verify("receipt", tmp_path / "receipt.json", "--trust", trust)
    assert human.returncode == 0 and "format-2 log" in human.stdout
    leaf = json.loads(receipt["leaf"])
    leaf["auth"]["sig"] = b64(bytes(64))  # a forged signature: no format makes it hold
    receipt["leaf"] = jcs(leaf).decode()
    (tmp_path / "forged.json").write_text(json.dumps(receipt))
    done = puhui_verify("receipt", tmp_path / "forged.json", "--trust", trust)
    assert done.returncode == 1 and "SIGNATURE" in done.stdout
    assert "format-2 log" in done.stdout and "holds under none" in done.stdout and "--log-format 1" in done.stdout, done.stdout
