"""`puhui-verify opening`: a holder checks the opening of one format-2 activity record (spec
section 7.4) and, with a receipt, that the record is in its batch and the batch event in the log.

The record is given as its exact bytes, or as the registry's record proof
`{"activity_id", "batch_id", "batch_seq", "batch_root", "record": "<exact bytes>", "inclusion":
{"leaf_index", "tree_size", "hashes"}}` (GET /v1/activities/{id}); the receipt (docs/receipt.md)
proves the activity.batch leaf at batch_seq. Without the methodology version's definition
(`--definition`, its params), the fields can only be checked against the record: none of them may
be a public input of the record, and each value must be an integer or a code; with it, they must
be exactly the version's non-public inputs (required ones present), each valid."""

import base64
import binascii
import json
from datetime import datetime, timedelta
from hashlib import sha256

from verifier.canonical import EncodingProblem, parse_canonical
from verifier.merkle import leaf_hash, verify_inclusion
from verifier.methodologies import CODE, INPUT_NAME, Definition, definition_problem
from verifier.proofs import ProofResult, check_receipt, inclusion_of, json_document
from verifier.reader import InputError
from verifier.records_v2 import parse_record
from verifier.schema import TIME, is_real_date

MIN_SALT_BYTES = 16
BEIJING = timedelta(hours=8)
PROOF_FIELDS = frozenset({"activity_id", "batch_id", "batch_seq", "batch_root", "record", "inclusion"})


def _text_or_file(data):
    """Bytes of a record or opening given on the command line or in a file: without one final newline."""
    return data[:-1] if data.endswith(b"\n") else data


def parse_record_input(data):
    """(record bytes, record proof document or None): the record itself, or a record proof."""
    data = _text_or_file(data)
    try:
        document = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise InputError("the record is not JSON") from None
    if isinstance(document, dict) and document.keys() == PROOF_FIELDS:
        if not isinstance(document["record"], str):
            raise InputError("the record proof's record must be the record's exact bytes, as a string")
        return document["record"].encode("utf-8", errors="surrogatepass"), document
    return data, None


def beijing_date(time_text):
    """The DATE in UTC+8 of a TIME (spec section 1)."""
    moment = datetime.strptime(time_text, "%Y-%m-%dT%H:%M:%S.%fZ")
    return (moment + BEIJING).date().isoformat()


def _salt_problem(salt):
    if type(salt) is not str:
        return "salt is not a string"
    try:
        decoded = base64.b64decode(salt, validate=True)
    except (binascii.Error, ValueError):
        return "salt is not base64"
    if base64.b64encode(decoded).decode("ascii") != salt:
        return "salt is not canonical base64 (RFC 4648 section 4, padded)"
    if len(decoded) < MIN_SALT_BYTES:
        return f"salt holds {len(decoded)} bytes, fewer than {MIN_SALT_BYTES}"
    return None


def _fields_problem(fields, record, definition):
    """Why `fields` are not exactly the act's non-public inputs and occurred_at, each valid."""
    if type(fields) is not dict or "occurred_at" not in fields:
        return "fields is not an object holding occurred_at"
    occurred_at = fields["occurred_at"]
    if type(occurred_at) is not str or not TIME.fullmatch(occurred_at) or not is_real_date(occurred_at[:10]):
        return "fields.occurred_at is not a TIME (YYYY-MM-DDTHH:MM:SS.ffffffZ)"
    inputs = {name: value for name, value in fields.items() if name != "occurred_at"}
    if definition is None:
        for name, value in inputs.items():
            if INPUT_NAME.fullmatch(name) is None or name == "subject":
                return f"fields.{name} is not an input name"
            if name in record["inputs"]:
                return f"fields.{name} is a public input of the record"
            if not (type(value) is int and value >= 0) and not (type(value) is str and CODE.fullmatch(value)):
                return f"fields.{name} is neither an integer >= 0 nor a code"
        return None
    for name, value in inputs.items():
        rule = definition.private.get(name)
        if rule is None:
            return f"fields.{name} is not a non-public input of the methodology version"
        if not rule.accepts(value):
            return f"fields.{name} = {value!r:.60} is not a valid value"
    missing = sorted(name for name, rule in definition.private.items() if rule.required and name not in inputs)
    if missing:
        return f"required non-public input(s) {missing} missing"
    return None


def check_opening(record_data, opening_data, definition_data=None, receipt_data=None, trust=None):
    """Section 7.4's holder check; violations are OPENING (the opening does not fit the record),
    BATCH (the record is malformed) or the receipt's codes."""
    record_bytes, proof = parse_record_input(record_data)
    result = ProofResult()
    try:
        record = parse_record(record_bytes)
    except EncodingProblem as problem:
        result.add("BATCH", f"the record is not a format-2 record: {problem}")
        return result
    definition = _definition(definition_data, record) if definition_data is not None else None
    opening_bytes = _text_or_file(opening_data)
    result.details = {"activity_id": record["activity_id"], "occurred_on": record["occurred_on"], "definition_checked": definition is not None}
    opening_problem = _opening_problem(opening_bytes, record, definition)
    if opening_problem:
        result.add("OPENING", opening_problem)
    if receipt_data is not None:
        _check_inclusion(record_bytes, record, proof, receipt_data, trust, result)
    return result


def _definition(data, record):
    params = json_document(data, "definition")
    problem = definition_problem(params)
    if problem:
        raise InputError(f"the definition is not a section 7.1 definition: {problem}")
    return Definition.of("", 0, params)


def _opening_problem(opening_bytes, record, definition):
    try:
        opening = parse_canonical(opening_bytes)
    except EncodingProblem as problem:
        return f"the opening is not canonical JSON (JCS): {problem}"
    if sha256(opening_bytes).hexdigest() != record["private_sha256"]:
        return "SHA-256 of the opening is not the record's private_sha256"
    if type(opening) is not dict or opening.keys() != {"fields", "salt"}:
        return "the opening is not exactly {fields, salt}"
    problem = _salt_problem(opening["salt"]) or _fields_problem(opening["fields"], record, definition)
    if problem:
        return problem
    day = beijing_date(opening["fields"]["occurred_at"])
    if day != record["occurred_on"]:
        return f"the Beijing date of occurred_at is {day}, the record says {record['occurred_on']}"
    return None


def _check_inclusion(record_bytes, record, proof, receipt_data, trust, result):
    """The record's inclusion proof leads to its batch root, and the receipt proves that batch's
    activity.batch leaf (at batch_seq) in a checkpoint of the log."""
    if proof is None:
        raise InputError("with --receipt, the record must be given as the registry's record proof (record, inclusion, batch_seq, batch_root)")
    receipt = check_receipt(receipt_data, trust, log_format=2)
    result.violations.extend(receipt.violations)
    leaf_index, tree_size, hashes = inclusion_of(proof["inclusion"], "inclusion")
    details = receipt.details
    if not details:
        return
    body = details["body"]
    if details["type"] != "activity.batch" or details["seq"] != proof["batch_seq"]:
        result.add("UNKNOWN_REF", f"the receipt proves seq {details['seq']} ({details['type']}), not the batch event at seq {proof['batch_seq']}")
        return
    if body["batch_id"] != proof["batch_id"] or body["root"] != proof["batch_root"]:
        result.add("UNKNOWN_REF", "the receipt's batch is not the record proof's batch (batch_id or root differ)")
        return
    if tree_size != body["count"] or not verify_inclusion(leaf_hash(record_bytes), leaf_index, tree_size, hashes, bytes.fromhex(body["root"])):
        result.add("BATCH", f"the inclusion proof does not lead from record {record['activity_id']!r} to the batch root")
    result.details.update(batch_id=body["batch_id"], batch_seq=details["seq"], tree_size=details["tree_size"])
