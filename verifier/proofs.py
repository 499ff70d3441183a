"""Offline checks that need no bundle: a receipt (docs/receipt.md) and the consistency of two
checkpoints. Both return a ProofResult; input that is not a receipt or proof at all is InputError."""

import json
import re
from dataclasses import dataclass, field

from verifier.leaves import LeafParser
from verifier.merkle import EMPTY_ROOT, leaf_hash, verify_consistency, verify_inclusion
from verifier.notes import NoteError, parse_checkpoint
from verifier.reader import InputError
from verifier.schema import decode_public_key
from verifier.signatures import verify_signed

RECEIPT_FORMAT = "puhui-receipt/1"
RECEIPT_FIELDS = ("format", "origin", "leaf", "inclusion", "checkpoint", "signer")  # docs/receipt.md
# A receipt does not name its log's format: tried in this order (a registry SHOULD start every new
# log in format 2, spec "Formats").
LOG_FORMATS = (2, 1)
_HEX64 = re.compile(r"[0-9a-f]{64}")


@dataclass
class ProofResult:
    violations: list = field(default_factory=list)  # [(code, message)]
    details: dict = field(default_factory=dict)
    log_format: object = None  # a receipt's: the log format it was checked as (1 or 2)
    notes: list = field(default_factory=list)  # what a reader needs beside the verdict

    @property
    def valid(self):
        return not self.violations

    def add(self, code, message):
        self.violations.append((code, message))


def json_document(data, what):
    try:
        document = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as error:
        raise InputError(f"{what} is not JSON ({error})") from None
    if not isinstance(document, dict):
        raise InputError(f"{what} is not a JSON object")
    return document


def _proof_hashes(value, what):
    if not isinstance(value, list) or not all(isinstance(item, str) and _HEX64.fullmatch(item) for item in value):
        raise InputError(f"{what}.hashes must be a list of 64-hex-digit hashes")
    return [bytes.fromhex(item) for item in value]


def _count(value, what):
    if type(value) is not int or value < 0:
        raise InputError(f"{what} must be a non-negative integer")
    return value


def inclusion_of(value, what):
    if not isinstance(value, dict) or set(value) != {"leaf_index", "tree_size", "hashes"}:
        raise InputError(f"{what} must be {{leaf_index, tree_size, hashes}}")
    return (
        _count(value["leaf_index"], f"{what}.leaf_index"),
        _count(value["tree_size"], f"{what}.tree_size"),
        _proof_hashes(value["hashes"], what),
    )


def _signed_checkpoint(note, trust, result, what):
    """The checkpoint if well-formed and signed by the log key; else a CHECKPOINT_SIGNATURE."""
    try:
        checkpoint = parse_checkpoint(note, trust.origin)
    except NoteError as error:
        result.add("CHECKPOINT_SIGNATURE", f"{what}: malformed: {error}")
        return None
    if not checkpoint.signed_by(trust.log_key):
        result.add("CHECKPOINT_SIGNATURE", f"{what}: no valid signature of the log key {trust.log_key.name}")
        return None
    if trust.witness_quorum:
        witnesses = checkpoint.cosigning_witnesses(trust.witnesses)
        if len(witnesses) < trust.witness_quorum:
            result.add(
                "WITNESS_QUORUM",
                f"{what} has {len(witnesses)} valid witness cosignature(s); the trust file asks for {trust.witness_quorum}",
            )
    return checkpoint


def _leaf(text, leaf_index, trust, result, what, log_format):
    """Parse a receipt's leaf as the leaf at leaf_index; ENCODING if it is not a valid leaf."""
    if not isinstance(text, str):
        raise InputError(f"{what} must be a string holding the leaf bytes")
    parser = LeafParser(trust.origin, trust.root_keys, log_format)
    parser.next_seq = leaf_index
    raw = text.encode("utf-8", errors="surrogatepass")
    leaf = parser.parse(raw)
    if leaf.problem is not None:
        code, message = leaf.problem
        if code == "SEQ":
            result.add("CHECKPOINT_ROOT", f"{what}: {message}: the proof places it elsewhere")
        else:
            result.add("ENCODING", f"{what} is not a valid leaf ({code}: {message})")
        return raw, None
    return raw, leaf


def check_receipt(data, trust, log_format=1):
    """A receipt of an event of a log of log_format (its body rules and signature prefix)."""
    document = json_document(data, "receipt")
    if "format" not in document:
        raise InputError(f"not a receipt: no 'format' field (a receipt's is {RECEIPT_FORMAT!r}, docs/receipt.md)")
    if document["format"] != RECEIPT_FORMAT:
        raise InputError(f"receipt format is {document['format']!r}, not {RECEIPT_FORMAT!r}")
    for name in RECEIPT_FIELDS:
        if name not in document:
            raise InputError(f"receipt has no {name!r} field")
    unknown = sorted(set(document) - set(RECEIPT_FIELDS))
    if unknown:
        # A field this tool does not check could carry a claim a reader takes as checked.
        raise InputError(f"receipt has fields {RECEIPT_FORMAT} does not define: {', '.join(map(repr, unknown))}")
    leaf_index, tree_size, proof = inclusion_of(document["inclusion"], "inclusion")
    signer = document["signer"]
    if signer is not None and (not isinstance(signer, dict) or set(signer) != {"leaf", "inclusion"}):
        raise InputError("receipt signer must be null or {leaf, inclusion}")
    if not isinstance(document["checkpoint"], str):
        raise InputError("receipt checkpoint must be the signed note text")
    result = ProofResult()
    if document["origin"] != trust.origin:
        result.add("CHECKPOINT_SIGNATURE", f"receipt of origin {document['origin']!r}, not the trusted {trust.origin!r}")
        return result
    checkpoint = _signed_checkpoint(document["checkpoint"], trust, result, "the checkpoint")
    raw, leaf = _leaf(document["leaf"], leaf_index, trust, result, "the leaf", log_format)
    if checkpoint is not None:
        if tree_size != checkpoint.tree_size:
            result.add("CHECKPOINT_ROOT", f"inclusion.tree_size {tree_size} is not the checkpoint's size {checkpoint.tree_size}")
        elif not verify_inclusion(leaf_hash(raw), leaf_index, tree_size, proof, checkpoint.root):
            result.add("CHECKPOINT_ROOT", f"the inclusion proof does not lead from the leaf at {leaf_index} to the checkpoint's root")
    if leaf is None:
        return result
    result.details = {"seq": leaf.seq, "type": leaf.type, "body": leaf.body, "effects": leaf.effects, "tree_size": tree_size}
    public_key = _signer_key(leaf, signer, checkpoint, trust, result, log_format)
    if public_key is not None:
        if leaf.signed is None or not verify_signed(public_key, leaf.signed):
            result.add("SIGNATURE", f"the event signature does not verify with key {leaf.key_id}")
    return result


def check_receipt_of_log(data, trust, log_format=None):
    """A receipt checked as an event of a log of log_format, or, when None, of the format it holds
    under (docs/spec-readings.md): the leaf's body rules and signature prefix differ between the
    formats, and a genuine receipt holds under exactly one. One that holds under neither is reported
    as the first format whose body rules its leaf follows (so its faults are the real ones: a wrong
    signature, a proof that leads elsewhere); the notes say which format, and why."""
    formats = LOG_FORMATS if log_format is None else (log_format,) + tuple(f for f in LOG_FORMATS if f != log_format)
    results = {}
    for tried in formats:
        results[tried] = check_receipt(data, trust, tried)
        if results[tried].valid:
            break
    holds_as = next((tried for tried, result in results.items() if result.valid), None)
    if log_format is not None:
        chosen, why = log_format, f" (--log-format {log_format})"
    elif holds_as is not None:
        chosen, why = holds_as, ", the format it holds under (a receipt does not name its log's)"
    else:
        chosen = next((tried for tried in formats if not _leaf_faulted(results[tried])), formats[0])
        others = " or ".join(str(tried) for tried in formats if tried != chosen)
        why = (": a receipt does not name its log's format, and this one holds under none; if the log's "
               f"genesis says format {others}, --log-format {others} gives that format's findings")
    result = results[chosen]
    result.log_format = chosen
    result.notes.append(f"checked as an event of a format-{chosen} log{why}")
    if holds_as is not None and holds_as != chosen:
        result.notes.append(f"it holds as an event of a format-{holds_as} log: the log's genesis says its format; "
                            f"if it is {holds_as}, check with --log-format {holds_as}")
    return result


def _leaf_faulted(result):
    """Whether the receipt's leaf breaks the body rules of the format it was checked as."""
    return any(code == "ENCODING" for code, _ in result.violations)


def _signer_key(leaf, signer, checkpoint, trust, result, log_format):
    """The public key the event must verify with, proven by the receipt; None after a violation."""
    if signer is None:
        public_key = trust.root_keys.get(leaf.key_id)
        if public_key is None:
            result.add("SIGNATURE", f"signer {leaf.key_id} is not a root key, and the receipt carries no registration for it")
        return public_key
    index, size, proof = inclusion_of(signer["inclusion"], "signer.inclusion")
    raw, registration = _leaf(signer["leaf"], index, trust, result, "the signer's key.register leaf", log_format)
    if registration is None:
        return None
    if checkpoint is not None and (size != checkpoint.tree_size or not verify_inclusion(leaf_hash(raw), index, size, proof, checkpoint.root)):
        result.add("CHECKPOINT_ROOT", "the signer's key.register leaf is not proven in the checkpoint")
        return None
    if registration.type != "key.register" or registration.body["key_id"] != leaf.key_id:
        result.add("SIGNATURE", f"the signer leaf is not the key.register of {leaf.key_id}")
        return None
    if registration.seq >= leaf.seq:
        result.add("SIGNATURE", f"key {leaf.key_id} is registered at seq {registration.seq}, not before the event")
        return None
    return decode_public_key(registration.body["public_key"])


def read_note(data, what):
    """A checkpoint file: the signed note text itself, or a checkpoints.jsonl line {"note": ...}."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise InputError(f"{what} is not UTF-8") from None
    if not text.strip():
        # Nothing to judge, so no violation: most often a note saved before the registry answered.
        raise InputError(f"{what} is empty, not a signed note: fetch it again (GET /v1/checkpoint) "
                         "and check that it holds the note text")
    if text.lstrip().startswith("{"):
        document = json_document(data, what)
        if not isinstance(document.get("note"), str):
            raise InputError(f'{what} is JSON but not {{"note": "<signed note>"}}')
        return document["note"]
    return text


def check_consistency(old_data, new_data, proof_data, trust, old_name="old checkpoint", new_name="new checkpoint"):
    """Whether the log of the new checkpoint extends the old one's; the names are the files', for
    messages about input that is no note at all."""
    result = ProofResult()
    old = _signed_checkpoint(read_note(old_data, old_name), trust, result, "the old checkpoint")
    new = _signed_checkpoint(read_note(new_data, new_name), trust, result, "the new checkpoint")
    document = json_document(proof_data, "consistency proof")
    if set(document) != {"first", "second", "hashes"}:
        raise InputError("consistency proof must be {first, second, hashes}")
    first = _count(document["first"], "first")
    second = _count(document["second"], "second")
    hashes = _proof_hashes(document["hashes"], "consistency proof")
    if old is None or new is None:
        return result
    result.details = {"old_size": old.tree_size, "new_size": new.tree_size}
    if (first, second) != (old.tree_size, new.tree_size):
        result.add("CHECKPOINT_ROOT", f"the proof is for sizes {first} to {second}, not {old.tree_size} to {new.tree_size}")
    elif old.tree_size > new.tree_size:
        result.add("CHECKPOINT_ROOT", f"the new checkpoint ({new.tree_size}) is smaller than the old ({old.tree_size}): the log shrank")
    elif old.tree_size == 0:
        # The empty tree is a prefix of every tree (RFC 9162 defines no proof for it).
        if old.root != EMPTY_ROOT or hashes:
            result.add("CHECKPOINT_ROOT", "a checkpoint of size 0 must have the empty root and an empty proof")
    elif not verify_consistency(old.tree_size, new.tree_size, hashes, old.root, new.root):
        result.add(
            "CHECKPOINT_ROOT",
            f"the log of size {new.tree_size} does not extend the log of size {old.tree_size}: history rewritten, or a split view",
        )
    return result
