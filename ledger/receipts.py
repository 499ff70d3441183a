"""Receipts (docs/receipt.md): one event proven offline by its leaf, an inclusion proof and a checkpoint."""

from __future__ import annotations

import base64
from typing import Any

from nacl.exceptions import BadSignatureError
from nacl.signing import VerifyKey

from ledger import merkle
from ledger.errors import Rejected
from ledger.leaf import Leaf, parse_leaf
from ledger.note import Checkpoint, parse_checkpoint, parse_verifier_key, verify_checkpoint, verify_cosignatures
from ledger.queries import Queries
from ledger.registry import LogReader
from ledger.rules import signing_message
from ledger.field_checks import key_id_of

FORMAT = "puhui-receipt/1"
FIELDS = ("format", "origin", "leaf", "inclusion", "checkpoint", "signer")


class NotCovered(Exception):
    """The checkpoint does not cover the event (sign a newer one first)."""


def build_receipt(registry: LogReader, queries: Queries, seq: int, checkpoint_note: str) -> dict[str, Any]:
    """The receipt of leaf `seq` in the tree `checkpoint_note` commits to.

    The signer part carries the key.register leaf of the event's key, proven in the same tree,
    or null when a root key signed (the verifier finds root keys in its trust file).
    """
    size = parse_checkpoint(checkpoint_note).size
    if not 0 <= seq < size:
        raise NotCovered(f"the checkpoint of size {size} does not cover seq {seq}")
    leaf = registry.leaf(seq)
    register_seq = queries.key_register_seq(leaf.auth["key"])
    signer = None
    if register_seq is not None:
        signer = {"leaf": registry.leaf(register_seq).data.decode("utf-8"),
                  "inclusion": _inclusion(registry, register_seq, size)}
    return {"format": FORMAT, "origin": registry.origin, "leaf": leaf.data.decode("utf-8"),
            "inclusion": _inclusion(registry, seq, size), "checkpoint": checkpoint_note, "signer": signer}


def _inclusion(registry: LogReader, seq: int, size: int) -> dict[str, Any]:
    return merkle.inclusion_json(seq, size, registry.inclusion_proof(seq, size))


class ReceiptInvalid(Exception):
    """A receipt that does not hold; `code` is from spec section 9."""

    def __init__(self, code: str, message: str):
        super().__init__(f"{code}: {message}")
        self.code, self.message = code, message


def verify_receipt(receipt: Any, trust: dict[str, Any], log_format: int) -> Leaf:
    """Check a receipt of a log of this format against a trust file (docs/receipt.md); the proven
    leaf, or ReceiptInvalid. The format decides the event signature's prefix (spec section 2).

    What a client needs to hold the registry to one answer. An auditor's tool is `puhui-verify receipt`.
    """
    if not isinstance(receipt, dict) or receipt.get("format") != FORMAT:
        raise ReceiptInvalid("ENCODING", f"not a {FORMAT} document")
    if set(receipt) != set(FIELDS):
        raise ReceiptInvalid("ENCODING", f"a {FORMAT} document has exactly the fields {', '.join(FIELDS)}")
    try:
        checkpoint = verify_checkpoint(receipt["checkpoint"], parse_verifier_key(trust["log_key"]))
    except (KeyError, TypeError, ValueError) as exc:
        raise ReceiptInvalid("CHECKPOINT_SIGNATURE", str(exc)) from None
    quorum = trust.get("witness_quorum") or 0
    if quorum:
        seen = verify_cosignatures(receipt["checkpoint"], [parse_verifier_key(w) for w in trust.get("witnesses", [])])
        if len(seen) < quorum:
            raise ReceiptInvalid("WITNESS_QUORUM", f"{len(seen)} trusted cosignatures, {quorum} required")
    leaf = _proven_leaf(receipt.get("leaf"), receipt.get("inclusion"), checkpoint, log_format)
    root_keys = {key_id_of(base64.b64decode(k)): base64.b64decode(k) for k in trust["root_keys"]}
    signer = receipt.get("signer")
    if signer is None:
        public_key = root_keys.get(leaf.auth["key"])
        if public_key is None:
            raise ReceiptInvalid("SIGNATURE", f"key {leaf.auth['key']} is no root key and the receipt names no signer")
    else:
        registration = _proven_leaf(signer.get("leaf") if isinstance(signer, dict) else None,
                                    signer.get("inclusion") if isinstance(signer, dict) else None, checkpoint, log_format)
        if registration.type != "key.register" or registration.body["key_id"] != leaf.auth["key"]:
            raise ReceiptInvalid("SIGNATURE", f"the signer leaf does not register key {leaf.auth['key']}")
        if registration.seq >= leaf.seq:
            raise ReceiptInvalid("SIGNATURE", "the key was registered after the event")
        public_key = base64.b64decode(registration.body["public_key"])
    try:
        VerifyKey(public_key).verify(signing_message(checkpoint.origin, leaf.type, leaf.body, log_format),
                                     base64.b64decode(leaf.auth["sig"]))
    except BadSignatureError:
        raise ReceiptInvalid("SIGNATURE", f"the event's signature does not verify with key {leaf.auth['key']}") from None
    return leaf


def _proven_leaf(text: Any, inclusion: Any, checkpoint: Checkpoint, log_format: int) -> Leaf:
    if not isinstance(text, str) or not isinstance(inclusion, dict):
        raise ReceiptInvalid("ENCODING", "a leaf and its inclusion proof are required")
    try:
        leaf = parse_leaf(text.encode("utf-8"), log_format)
    except Rejected as exc:
        raise ReceiptInvalid("ENCODING", exc.message) from None
    try:
        index, size = inclusion["leaf_index"], inclusion["tree_size"]
        proof = [bytes.fromhex(h) for h in inclusion["hashes"]]
    except (KeyError, TypeError, ValueError):
        raise ReceiptInvalid("ENCODING", "the inclusion proof is not spec section 4 JSON") from None
    if index != leaf.seq or size != checkpoint.size:
        raise ReceiptInvalid("CHECKPOINT_ROOT", f"proof of leaf {index} in {size} for seq {leaf.seq}, checkpoint {checkpoint.size}")
    if not merkle.verify_inclusion(merkle.leaf_hash(leaf.data), index, size, proof, checkpoint.root):
        raise ReceiptInvalid("CHECKPOINT_ROOT", f"leaf {leaf.seq} is not in the tree of the checkpoint")
    return leaf
