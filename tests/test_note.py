"""ledger.note: C2SP signed notes, checkpoints and cosignatures, against the conformance bundles."""

from __future__ import annotations

import base64
import hashlib
import json

import nacl.signing
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from spec_paths import VECTORS

from ledger.merkle import EMPTY_ROOT, MemoryNodes, consistency_proof, leaf_hash
from ledger.merkle import root as _root
from ledger.note import (
    COSIGNATURE_V1,
    ED25519,
    Checkpoint,
    VerifierKey,
    Witness,
    checkpoint_body,
    cosign,
    cosignature_message,
    key_hash,
    parse_checkpoint,
    parse_verifier_key,
    sign_checkpoint,
    verifier_key,
    verify_checkpoint,
    verify_cosignatures,
)

ORIGIN = "registry.test.example/puhui"
DASH = "\u2014"


class SeedSigner:
    """An Ed25519 test key whose seed is SHA-256 of a public label."""

    def __init__(self, label: str) -> None:
        self._key = nacl.signing.SigningKey(hashlib.sha256(label.encode()).digest())
        self.public_key = bytes(self._key.verify_key)

    def sign(self, message: bytes) -> bytes:
        return self._key.sign(message).signature


LOG = SeedSigner("test log key")
W1 = SeedSigner("test witness 1")
W2 = SeedSigner("test witness 2")
LOG_KEY = parse_verifier_key(verifier_key(ORIGIN, LOG.public_key))
W1_KEY = parse_verifier_key(verifier_key("w1.example/w", W1.public_key, COSIGNATURE_V1))
W2_KEY = parse_verifier_key(verifier_key("w2.example/w", W2.public_key, COSIGNATURE_V1))
ROOT = hashlib.sha256(b"some root").digest()


def bundle_notes(case: str) -> tuple[dict, list[str]]:
    trust = json.loads((VECTORS / case / "trust.json").read_text())
    lines = (VECTORS / case / "bundle" / "checkpoints.jsonl").read_text().splitlines()
    return trust, [json.loads(line)["note"] for line in lines]


def replace_line(note: str, index: int, new: str) -> str:
    lines = note.split("\n")
    lines[index] = new
    return "\n".join(lines)


# --- Keys ---


def test_key_hash_and_verifier_key_round_trip():
    public_key = LOG.public_key
    want = hashlib.sha256(ORIGIN.encode() + b"\n\x01" + public_key).digest()[:4]
    assert key_hash(ORIGIN, ED25519, public_key) == want
    text = verifier_key(ORIGIN, public_key)
    typed_key = base64.b64encode(b"\x01" + public_key).decode()
    assert text == f"{ORIGIN}+{want.hex()}+{typed_key}"
    key = parse_verifier_key(text)
    assert key == VerifierKey(ORIGIN, want, ED25519, public_key)
    assert str(key) == text
    witness = parse_verifier_key(verifier_key("w.example", public_key, COSIGNATURE_V1))
    assert witness.type_byte == COSIGNATURE_V1
    assert witness.key_hash == hashlib.sha256(b"w.example\n\x04" + public_key).digest()[:4]


def test_trust_file_keys_parse():
    trust, _ = bundle_notes("valid-witnessed")
    log_key = parse_verifier_key(trust["log_key"])
    assert (log_key.name, log_key.key_hash.hex(), log_key.type_byte) == (trust["origin"], "fffacc80", ED25519)
    (witness,) = [parse_verifier_key(w) for w in trust["witnesses"]]
    assert (witness.name, witness.key_hash.hex(), witness.type_byte) == ("witness.example/w1", "ebe60e22", 4)
    assert str(log_key) == trust["log_key"]


def _key_text(name="a.example", hash_hex=None, typed=None):
    typed = typed if typed is not None else b"\x01" + LOG.public_key
    if hash_hex is None:
        hash_hex = hashlib.sha256(name.encode() + b"\n" + typed).digest()[:4].hex()
    return f"{name}+{hash_hex}+{base64.b64encode(typed).decode()}"


@pytest.mark.parametrize(
    "text, message",
    [
        ("a.example+12345678", "is not <name>"),
        (_key_text()[:-2] + "!=", "base64"),
        (_key_text()[:-1], "base64"),
        (_key_text(typed=b"\x01" + LOG.public_key[:31]), "31 bytes"),
        (_key_text(typed=b"\x01" + LOG.public_key + b"\x00"), "33 bytes"),
        (_key_text(typed=b""), "empty"),
        (_key_text(hash_hex="00000000"), "does not match"),
        (_key_text(hash_hex=_key_text().split("+")[1].upper()), "lowercase hex"),
        (_key_text(hash_hex="1234567"), "lowercase hex"),
        (_key_text(typed=b"\x02" + LOG.public_key), "unknown signature type 0x02"),
        (_key_text(name="a example"), "space"),
        (_key_text(name="a\nexample"), "newline"),
        (_key_text(name="a\u3000example"), "space"),
        ("+" + _key_text(name="x")[1:], "non-empty"),
        (_key_text(name=""), "non-empty"),
    ],
)
def test_malformed_verifier_keys_rejected(text, message):
    with pytest.raises(ValueError, match=message):
        parse_verifier_key(text)


def test_verifier_key_rejects_bad_names_and_keys():
    for name in ["", "a b", "a+b", "a\nb", "a\tb"]:
        with pytest.raises(ValueError):
            verifier_key(name, LOG.public_key)
    with pytest.raises(ValueError):
        verifier_key("a", LOG.public_key[:31])
    with pytest.raises(ValueError):
        verifier_key("a", LOG.public_key, 0x02)


# --- Conformance bundles ---


@pytest.mark.parametrize("case", ["valid", "valid-witnessed"])
def test_bundle_checkpoints_verify(case):
    trust, notes = bundle_notes(case)
    log_key = parse_verifier_key(trust["log_key"])
    witnesses = [parse_verifier_key(w) for w in trust.get("witnesses", [])]
    sizes = []
    for note in notes:
        checkpoint = verify_checkpoint(note, log_key)
        sizes.append(checkpoint.size)
        assert checkpoint.origin == trust["origin"]
        assert checkpoint.body == checkpoint_body(checkpoint.origin, checkpoint.size, checkpoint.root)
        cosigners = verify_cosignatures(note, witnesses)
        assert cosigners == ({"witness.example/w1"} if witnesses else set())
        assert len(cosigners) >= trust.get("witness_quorum", 0)
    assert sizes == [18, 24, 30]


def test_bundle_roots_are_the_log_roots():
    trust, notes = bundle_notes("valid")
    log = (VECTORS / "valid" / "bundle" / "log.jsonl").read_bytes().split(b"\n")[:-1]
    log_key = parse_verifier_key(trust["log_key"])
    for note in notes:
        checkpoint = verify_checkpoint(note, log_key)
        assert MemoryNodes(leaf_hash(line) for line in log[: checkpoint.size]).root() == checkpoint.root


def _tampered_notes(note: str):
    origin, size, root_b64 = note.split("\n")[:3]
    other_root = base64.b64encode(hashlib.sha256(b"x").digest()).decode()
    yield "root", replace_line(note, 2, other_root)
    yield "size", replace_line(note, 1, str(int(size) + 1))
    yield "origin", replace_line(note, 0, origin + "x")
    log_line = note.split("\n")[4]
    prefix, sig_b64 = log_line.rsplit(" ", 1)
    raw = bytearray(base64.b64decode(sig_b64))
    raw[-1] ^= 1
    yield "signature", note.replace(log_line, f"{prefix} {base64.b64encode(bytes(raw)).decode()}")


def test_tampered_bundle_notes_fail():
    trust, notes = bundle_notes("valid-witnessed")
    log_key = parse_verifier_key(trust["log_key"])
    witnesses = [parse_verifier_key(w) for w in trust["witnesses"]]
    for note in notes:
        for what, bad in _tampered_notes(note):
            with pytest.raises(ValueError):
                verify_checkpoint(bad, log_key)
            if what != "signature":
                # The witness signed the original body, not this one.
                assert verify_cosignatures(bad, witnesses) == set(), what
        cosig_line = note.split("\n")[5]
        prefix, payload_b64 = cosig_line.rsplit(" ", 1)
        for byte in (5, 30, 70):  # timestamp, signature, signature
            raw = bytearray(base64.b64decode(payload_b64))
            raw[byte] ^= 0x40
            bad = note.replace(cosig_line, f"{prefix} {base64.b64encode(bytes(raw)).decode()}")
            assert verify_checkpoint(bad, log_key).size == parse_checkpoint(note).size
            assert verify_cosignatures(bad, witnesses) == set()


def test_checkpoint_from_another_log_key_rejected():
    _, notes = bundle_notes("valid")
    impostor = parse_verifier_key(verifier_key("registry.hubei.example/puhui", LOG.public_key))
    with pytest.raises(ValueError, match="no signature by log key"):
        verify_checkpoint(notes[0], impostor)
    # Same name and key hash as the real key but another public key: the signature fails.
    real = parse_verifier_key(json.loads((VECTORS / "valid" / "trust.json").read_text())["log_key"])
    forged = VerifierKey(real.name, real.key_hash, ED25519, LOG.public_key)
    with pytest.raises(ValueError, match="invalid signature"):
        verify_checkpoint(notes[0], forged)


# --- Signing and parsing ---


def test_sign_and_parse_round_trip():
    note = sign_checkpoint(ORIGIN, 1234, ROOT, LOG)
    body = f"{ORIGIN}\n1234\n{base64.b64encode(ROOT).decode()}\n"
    assert note.startswith(body + "\n" + DASH + " " + ORIGIN + " ")
    assert note.endswith("\n") and note.count("\n") == 5
    checkpoint = verify_checkpoint(note, LOG_KEY)
    assert (checkpoint.origin, checkpoint.size, checkpoint.root, checkpoint.body) == (ORIGIN, 1234, ROOT, body)
    ((name, kh, signature),) = checkpoint.signatures
    assert (name, kh) == (ORIGIN, LOG_KEY.key_hash)
    nacl.signing.VerifyKey(LOG.public_key).verify(body.encode(), signature)
    # Ed25519 is deterministic: the same checkpoint signs to the same note.
    assert sign_checkpoint(ORIGIN, 1234, ROOT, LOG) == note


def test_empty_tree_checkpoint():
    note = sign_checkpoint(ORIGIN, 0, EMPTY_ROOT, LOG)
    assert verify_checkpoint(note, LOG_KEY).size == 0


@settings(max_examples=40, deadline=None)
@given(
    origin=st.text(st.characters(codec="utf-8", exclude_categories=("Z", "C"), exclude_characters="+"), min_size=1, max_size=40),
    size=st.integers(0, 2**64 - 1),
    root=st.binary(min_size=32, max_size=32),
)
def test_round_trip_any_checkpoint(origin, size, root):
    note = sign_checkpoint(origin, size, root, LOG)
    key = parse_verifier_key(verifier_key(origin, LOG.public_key))
    checkpoint = verify_checkpoint(note, key)
    assert (checkpoint.origin, checkpoint.size, checkpoint.root) == (origin, size, root)


def test_sign_rejects_bad_arguments_and_lying_signers():
    for origin, size, root in [("", 1, ROOT), ("a b", 1, ROOT), (ORIGIN, -1, ROOT), (ORIGIN, True, ROOT),
                               (ORIGIN, 2**64, ROOT), (ORIGIN, 1, ROOT[:31]), (ORIGIN, "1", ROOT)]:
        with pytest.raises(ValueError):
            sign_checkpoint(origin, size, root, LOG)

    class Liar:
        public_key = W1.public_key
        sign = staticmethod(LOG.sign)

    with pytest.raises(ValueError, match="does not verify"):
        sign_checkpoint(ORIGIN, 1, ROOT, Liar())


def test_unknown_signatures_are_ignored():
    note = sign_checkpoint(ORIGIN, 7, ROOT, LOG)
    other = sign_checkpoint(ORIGIN, 7, ROOT, W1)  # same name, another key: an unknown key
    stranger = DASH + " stranger.example " + base64.b64encode(b"\x00" * 68).decode() + "\n"
    combined = note.split("\n\n")[0] + "\n\n" + other.split("\n\n")[1] + stranger + note.split("\n\n")[1]
    checkpoint = verify_checkpoint(combined, LOG_KEY)
    assert len(checkpoint.signatures) == 3
    # Without the log's own line nothing verifies.
    with pytest.raises(ValueError, match="no signature by log key"):
        verify_checkpoint(other, LOG_KEY)


def test_log_key_must_be_ed25519_and_named_origin():
    note = sign_checkpoint(ORIGIN, 7, ROOT, LOG)
    with pytest.raises(ValueError, match="want 0x01"):
        verify_checkpoint(note, parse_verifier_key(verifier_key(ORIGIN, LOG.public_key, COSIGNATURE_V1)))
    # A note whose origin is not the key's name fails even if that key signed it.
    renamed = sign_checkpoint("other.example/log", 7, ROOT, LOG)
    with pytest.raises(ValueError, match="origin"):
        verify_checkpoint(renamed, LOG_KEY)


def _malformed_notes():
    good = sign_checkpoint(ORIGIN, 18, ROOT, LOG)
    body, sig = good.split("\n\n")
    root_b64 = base64.b64encode(ROOT).decode()
    sig_b64 = sig.split(" ")[-1].rstrip("\n")
    return [
        ("no trailing newline", good[:-1], "end with a newline"),
        ("no blank line", body + "\n" + sig, "no blank line"),
        ("no signatures", body + "\n\n", "no signature lines"),
        ("two blank lines", body + "\n\n\n" + sig, "lines"),
        ("leading zero size", replace_line(good, 1, "018"), "leading zeros"),
        ("signed size", replace_line(good, 1, "+18"), "decimal"),
        ("negative size", replace_line(good, 1, "-1"), "decimal"),
        ("unicode digits", replace_line(good, 1, "\uff11\uff18"), "decimal"),
        ("huge size", replace_line(good, 1, str(2**64)), "64 bits"),
        ("short root", replace_line(good, 2, base64.b64encode(ROOT[:31]).decode()), "31 bytes"),
        ("unpadded root", replace_line(good, 2, root_b64.rstrip("=")), "base64"),
        ("urlsafe root", replace_line(good, 2, root_b64.replace("+", "-").replace("/", "_")) if
         ("+" in root_b64 or "/" in root_b64) else replace_line(good, 2, "!" + root_b64[1:]), "base64"),
        ("empty origin", replace_line(good, 0, ""), "lines|empty"),
        ("extension line", body + "\next\n\n" + sig, "4 lines"),
        ("missing root", f"{ORIGIN}\n18\n\n{sig}", "2 lines"),
        ("carriage return", good.replace("\n", "\r\n", 1), "control"),
        ("tab", replace_line(good, 0, ORIGIN + "\t"), "control"),
        ("hyphen for em dash", body + "\n\n- " + sig[2:], "em dash"),
        ("no space after dash", body + "\n\n" + DASH + sig[2:], "em dash"),
        ("double space", body + "\n\n" + sig.replace(" ", "  ", 1), "not"),
        ("trailing field", body + "\n\n" + sig.rstrip("\n") + " x\n", "not"),
        ("plus in name", body + f"\n\n{DASH} a+b {sig_b64}\n", "'\\+'"),
        ("bad signature base64", body + f"\n\n{DASH} {ORIGIN} {sig_b64[:-2]}\n", "base64"),
        ("signature too short", body + f"\n\n{DASH} {ORIGIN} {base64.b64encode(b'abcd').decode()}\n", "too short"),
        ("trailing blank line", good + "\n", "no signature lines"),
        ("blank line between signatures", body + "\n\n" + sig + "\n" + sig, "lines"),
        ("too many signatures", good + (sig * 100), "more than"),
        ("lone surrogate", replace_line(good, 0, "a\ud800"), "UTF-8"),
        ("bytes not utf-8", b"\xff" + good.encode(), "UTF-8"),
        ("not text", 42, "text"),
    ]


@pytest.mark.parametrize("what, note, message", _malformed_notes(), ids=[m[0] for m in _malformed_notes()])
def test_malformed_notes_rejected(what, note, message):
    with pytest.raises(ValueError, match=message):
        parse_checkpoint(note)
    with pytest.raises(ValueError):
        verify_checkpoint(note, LOG_KEY)


def test_note_as_utf8_bytes_parses():
    note = sign_checkpoint(ORIGIN, 3, ROOT, LOG)
    assert parse_checkpoint(note.encode()) == parse_checkpoint(note)


# --- Cosignatures ---


def test_cosign_and_verify():
    note = sign_checkpoint(ORIGIN, 42, ROOT, LOG)
    cosigned = cosign(note, W1_KEY.name, W1, 1_767_225_600)
    assert cosigned.startswith(note)
    line = cosigned[len(note):]
    assert line.startswith(f"{DASH} {W1_KEY.name} ") and line.endswith("\n") and line.count("\n") == 1
    payload = base64.b64decode(line.split(" ")[-1])
    assert payload[:4] == W1_KEY.key_hash
    assert int.from_bytes(payload[4:12], "big") == 1_767_225_600
    body = checkpoint_body(ORIGIN, 42, ROOT)
    assert cosignature_message(body, 1_767_225_600) == b"cosignature/v1\ntime 1767225600\n" + body.encode()
    nacl.signing.VerifyKey(W1.public_key).verify(cosignature_message(body, 1_767_225_600), payload[12:])

    assert verify_checkpoint(cosigned, LOG_KEY).size == 42
    assert verify_cosignatures(cosigned, [W1_KEY, W2_KEY]) == {W1_KEY.name}
    both = cosign(cosigned, W2_KEY.name, W2, 1)
    assert verify_cosignatures(both, [W1_KEY, W2_KEY]) == {W1_KEY.name, W2_KEY.name}
    # Repeating a cosignature does not make two witnesses.
    twice = both + line
    assert verify_cosignatures(twice, [W1_KEY]) == {W1_KEY.name}
    # Untrusted witnesses do not count; neither does the log's own signature.
    assert verify_cosignatures(both, []) == set()
    assert verify_cosignatures(note, [W1_KEY, W2_KEY]) == set()


def test_cosignature_is_bound_to_its_checkpoint():
    note_a = sign_checkpoint(ORIGIN, 10, ROOT, LOG)
    note_b = sign_checkpoint(ORIGIN, 11, ROOT, LOG)
    line = cosign(note_a, W1_KEY.name, W1, 5)[len(note_a):]
    assert verify_cosignatures(note_b + line, [W1_KEY]) == set()
    # A log-type (0x01) signature by the witness key is not a cosignature.
    as_log_key = parse_verifier_key(verifier_key(W1_KEY.name, W1.public_key, ED25519))
    with pytest.raises(ValueError, match="want 0x04"):
        verify_cosignatures(note_a + line, [as_log_key])


def test_cosign_rejects_bad_arguments():
    note = sign_checkpoint(ORIGIN, 10, ROOT, LOG)
    for timestamp in (-1, 2**63, True, 1.5):
        with pytest.raises(ValueError):
            cosign(note, W1_KEY.name, W1, timestamp)
    with pytest.raises(ValueError):
        cosign(note, "bad name", W1, 1)
    with pytest.raises(ValueError):
        cosign(note[:-1], W1_KEY.name, W1, 1)
    assert verify_cosignatures(cosign(note, W1_KEY.name, W1, 2**63 - 1), [W1_KEY]) == {W1_KEY.name}


def test_bundle_cosignature_timestamp():
    _, notes = bundle_notes("valid-witnessed")
    checkpoint = parse_checkpoint(notes[0])
    (witness_sig,) = [s for s in checkpoint.signatures if s.name == "witness.example/w1"]
    assert len(witness_sig.signature) == 72
    assert int.from_bytes(witness_sig.signature[:8], "big") == 1_767_225_600  # 2026-01-01T00:00:00Z


# --- Witness ---


def _log_tree(leaves: int, fork_at: int | None = None) -> MemoryNodes:
    def data(i: int) -> bytes:
        return f"forked {i}".encode() if fork_at is not None and i >= fork_at else f"leaf {i}".encode()

    return MemoryNodes(leaf_hash(data(i)) for i in range(leaves))


def test_witness_cosigns_consistent_growth():
    tree = _log_tree(40)
    clock = iter(range(100, 200))
    witness = Witness("w1.example/w", W1, clock=lambda: next(clock))
    assert witness.key == W1_KEY
    assert witness.last_seen(ORIGIN) == (0, EMPTY_ROOT)
    previous = 0
    for size in (5, 5, 9, 16, 40):
        note = sign_checkpoint(ORIGIN, size, _root(tree, size), LOG)
        proof = consistency_proof(tree, previous, size)
        cosigned = witness.cosign_checkpoint(note, proof, LOG_KEY)
        assert verify_cosignatures(cosigned, [W1_KEY]) == {W1_KEY.name}
        assert witness.last_seen(ORIGIN) == (size, _root(tree, size))
        previous = size


def test_witness_refuses_a_fork():
    honest, forked = _log_tree(20), _log_tree(20, fork_at=7)
    witness = Witness("w1.example/w", W1, clock=lambda: 1)
    witness.cosign_checkpoint(sign_checkpoint(ORIGIN, 10, _root(honest, 10), LOG), [], LOG_KEY)

    # The log signs a fork that rewrites leaf 7; its own proof is from the forked history.
    fork_note = sign_checkpoint(ORIGIN, 20, _root(forked, 20), LOG)
    for proof in (consistency_proof(forked, 10, 20), consistency_proof(honest, 10, 20), []):
        with pytest.raises(ValueError, match="fork"):
            witness.cosign_checkpoint(fork_note, proof, LOG_KEY)
    assert witness.last_seen(ORIGIN) == (10, _root(honest, 10))

    # Same size, another root; a smaller size; a note the log did not sign; junk proofs.
    with pytest.raises(ValueError, match="fork"):
        witness.cosign_checkpoint(sign_checkpoint(ORIGIN, 10, _root(forked, 10), LOG), [], LOG_KEY)
    with pytest.raises(ValueError, match="smaller"):
        witness.cosign_checkpoint(sign_checkpoint(ORIGIN, 9, _root(honest, 9), LOG), [], LOG_KEY)
    with pytest.raises(ValueError, match="no signature by log key"):
        witness.cosign_checkpoint(sign_checkpoint(ORIGIN, 20, _root(honest, 20), W2), [], LOG_KEY)
    with pytest.raises(ValueError, match="fork"):
        witness.cosign_checkpoint(sign_checkpoint(ORIGIN, 20, _root(honest, 20), LOG), [b"junk"], LOG_KEY)
    assert witness.last_seen(ORIGIN) == (10, _root(honest, 10))

    # The honest continuation is still accepted.
    good = witness.cosign_checkpoint(
        sign_checkpoint(ORIGIN, 20, _root(honest, 20), LOG), consistency_proof(honest, 10, 20), LOG_KEY
    )
    assert verify_cosignatures(good, [W1_KEY]) == {W1_KEY.name}


def test_witness_first_checkpoint_rules():
    witness = Witness("w1.example/w", W1, clock=lambda: 1)
    with pytest.raises(ValueError, match="empty tree"):
        witness.cosign_checkpoint(sign_checkpoint(ORIGIN, 3, ROOT, LOG), [ROOT], LOG_KEY)
    with pytest.raises(ValueError, match="empty tree"):
        witness.cosign_checkpoint(sign_checkpoint(ORIGIN, 0, ROOT, LOG), [], LOG_KEY)
    witness.cosign_checkpoint(sign_checkpoint(ORIGIN, 0, EMPTY_ROOT, LOG), [], LOG_KEY)
    assert witness.last_seen(ORIGIN) == (0, EMPTY_ROOT)
    # Logs are tracked separately by origin.
    other_key = parse_verifier_key(verifier_key("other.example/log", W2.public_key))
    witness.cosign_checkpoint(sign_checkpoint("other.example/log", 5, ROOT, W2), [], other_key)
    assert witness.last_seen("other.example/log") == (5, ROOT)
    assert witness.last_seen(ORIGIN) == (0, EMPTY_ROOT)


def test_checkpoint_dataclass_fields():
    checkpoint = parse_checkpoint(sign_checkpoint(ORIGIN, 3, ROOT, LOG))
    assert isinstance(checkpoint, Checkpoint)
    assert [f for f in Checkpoint.__dataclass_fields__] == ["origin", "size", "root", "body", "signatures"]
    assert isinstance(checkpoint.signatures, list)
