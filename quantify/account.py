"""The personal carbon account (个人碳账户): what a citizen sees for their pseudonym.

Pure functions over batch files and the places their batches hold in the log (passed in by the
registry): reductions by Beijing day, methodology and platform; the batches and issuances they
went into; and, for any record, its inclusion proof in its batch (spec section 4 JSON) beside the
batch's seq in the log.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Sequence

from ledger.merkle import inclusion_json, inclusion_proof, leaf_hash, root_of_leaf_hashes, verify_inclusion

from quantify.activity import beijing_day, check_subject
from quantify.report import Report, Table, format_tonnes


@dataclass(frozen=True)
class BatchActivities:
    """One batch as the bundle holds it: its activity.batch body and its file's records."""

    body: Mapping[str, Any]  # batch_id, platform, methodology_id, methodology_version, root, ...
    records: Sequence[bytes]  # exact record bytes, in root order, without newlines
    # The leaf index of each record when `records` is only part of the batch (one subject's, read
    # from an index rather than the whole batch file); None: all records, in root order.
    positions: Sequence[int] | None = None


@dataclass(frozen=True)
class BatchPlace:
    """Where a batch stands in the log: its activity.batch event and the issuance it backs."""

    seq: int
    issuance_id: str | None = None
    issuance_seq: int | None = None
    # Format 2: the review by which a validation body rejected the batch while it was not issued
    # (one that counts, spec section 6): it will never be issued, so its grams are not earned.
    rejected_by: str | None = None


class _LeafHashes:
    """ledger.merkle's NodeReader over a batch's leaf hashes, hashing subtrees on demand.

    A proof in a batch of n records then costs O(n) hashing and n leaf hashes of memory, rather
    than storing all 2n nodes of the tree.
    """

    def __init__(self, hashes: Sequence[bytes]):
        self.hashes = hashes

    def perfect(self, level: int, index: int) -> bytes:
        return root_of_leaf_hashes(self.hashes[index << level:(index + 1) << level])


def _subject_suffix(subject: str) -> bytes:
    # "subject" is the last key of a record in JCS order, so this suffix finds a subject's
    # records without parsing the others.
    return f'"subject":"{subject}"}}'.encode()


def personal_account(subject: str, batches: Iterable[BatchActivities],
                     places: Mapping[str, BatchPlace]) -> Report:
    """Reductions of one subject across all batches: by day, methodology, platform, batch."""
    check_subject(subject)
    return _account(f"Personal carbon account of {subject}", {"subject": subject}, [subject], batches, places, None)


def pseudonymous_account(person: str, subjects: Sequence[str], batches: Iterable[BatchActivities],
                         places: Mapping[str, BatchPlace], openings: Mapping[str, bytes] | None = None) -> Report:
    """Format 2 (spec 7.4): a person's account over their daily pseudonyms (the identity hub derives
    them), each record with its pseudonym and, given the platform's openings (by SHA-256 of their
    bytes, opening_index), whether its opening checks: it hashes to private_sha256 and its time is
    on the record's Beijing date (`puhui-verify opening` checks the rest). `person` only names the
    report: it never leaves this machine."""
    for subject in subjects:
        check_subject(subject)
    return _account(f"Personal carbon account of {person} ({len(subjects)} daily pseudonym{'' if len(subjects) == 1 else 's'})",
                    {"subjects": list(subjects)}, subjects, batches, places, {} if openings is None else openings)


def opening_index(lines: Iterable[bytes]) -> dict[str, bytes]:
    """A platform's openings file (one opening a line) by the SHA-256 each record commits to."""
    return {hashlib.sha256(line).hexdigest(): line for line in lines if line}


def opening_problem(record: Mapping[str, Any], opening: bytes | None) -> str | None:
    """Why an opening does not open a format-2 record (None: it does): the holder's first checks."""
    if opening is None:
        return "no opening given for it"
    if hashlib.sha256(opening).hexdigest() != record["private_sha256"]:
        return "its SHA-256 is not the record's private_sha256"
    try:
        occurred_at = json.loads(opening)["fields"]["occurred_at"]
        day = beijing_day(occurred_at)
    except (ValueError, KeyError, TypeError):
        return "not an opening {fields: {..., occurred_at}, salt}"
    return None if day == record["occurred_on"] else f"its time is on {day}, the record's date {record['occurred_on']}"


def _account(title: str, head: dict[str, Any], subjects: Sequence[str], batches: Iterable[BatchActivities],
             places: Mapping[str, BatchPlace], openings: Mapping[str, bytes] | None) -> Report:
    """The account of these subjects' records (head: its data's first items); openings given
    (format 2): each record's checked."""
    suffixes = tuple(_subject_suffix(subject) for subject in subjects)
    by_day: dict[str, int] = defaultdict(int)
    by_methodology: dict[str, int] = defaultdict(int)
    by_platform: dict[str, int] = defaultdict(int)
    record_rows = []
    batch_rows = []
    rejected_g = 0
    for batch in batches:
        body = batch.body
        place = places.get(body["batch_id"])
        rejected_by = place.rejected_by if place else None
        batch_g = 0
        indexed = enumerate(batch.records) if batch.positions is None else zip(batch.positions, batch.records)
        for index, data in indexed:
            if not data.endswith(suffixes):
                continue
            record = json.loads(data)
            grams = record["reduction_g"]
            if "occurred_on" in record:  # format 2: a date; the time only in the opening
                day, occurred_at, opened = record["occurred_on"], "", ()
                if openings is not None:
                    opening = openings.get(record["private_sha256"])
                    problem = opening_problem(record, opening)
                    if problem is None:
                        occurred_at = json.loads(opening)["fields"]["occurred_at"]
                    opened = (record["subject"], problem or "checked")
            else:
                day, occurred_at, opened = beijing_day(record["occurred_at"]), record["occurred_at"], ()
            batch_g += grams
            if rejected_by is not None:  # listed, but apart from what the subjects earned
                rejected_g += grams
            else:
                by_day[day] += grams
                by_methodology[body["methodology_id"]] += grams
                by_platform[body["platform"]] += grams
            record_rows.append((day, occurred_at, record["activity_id"], body["platform"],
                                f"{body['methodology_id']} v{body['methodology_version']}", grams,
                                format_tonnes(grams), body["batch_id"], index, *opened))
        if batch_g:
            batch_rows.append((body["batch_id"], body["platform"], body["methodology_id"], batch_g,
                               format_tonnes(batch_g), place.seq if place else None,
                               place.issuance_id if place else None, place.issuance_seq if place else None,
                               rejected_by))
    total_g = sum(by_day.values())
    record_rows.sort()

    def totals(grams_by_key: dict[str, int]) -> list[tuple[Any, ...]]:
        return [(key, grams, format_tonnes(grams)) for key, grams in sorted(grams_by_key.items())]

    issued_g = sum(row[3] for row in batch_rows if row[6] is not None)
    record_columns = ("day", "occurred_at", "activity_id", "platform", "methodology", "reduction_g", "reduction_t",
                      "batch_id", "leaf_index") + (() if openings is None else ("subject", "opening"))
    return Report(
        title=title,
        tables={
            "summary": Table(("item", "grams", "tonnes"), [
                ("total", total_g, format_tonnes(total_g)),
                ("issued", issued_g, format_tonnes(issued_g)),
                ("not yet issued", total_g - issued_g, format_tonnes(total_g - issued_g)),
            ] + ([("rejected", rejected_g, format_tonnes(rejected_g))] if rejected_g else [])),
            "by_day": Table(("day", "reduction_g", "reduction_t"), totals(by_day)),
            "by_methodology": Table(("methodology_id", "reduction_g", "reduction_t"), totals(by_methodology)),
            "by_platform": Table(("platform", "reduction_g", "reduction_t"), totals(by_platform)),
            "batches": Table(("batch_id", "platform", "methodology_id", "reduction_g", "reduction_t", "batch_seq",
                              "issuance_id", "issuance_seq", "rejected_by"), batch_rows),
            "records": Table(record_columns, record_rows),
        },
        notes=["days are Beijing calendar days (UTC+8)",
               "tonnes are rounded half to even at the kilogram; grams are exact"] + ([
               "a batch its validation body rejected (rejected_by: the review) is never issued: its grams are "
               "shown apart, not in the total"] if rejected_g else []),
        data={**head, "total_g": total_g, "issued_g": issued_g, "rejected_g": rejected_g},
    )


def record_inclusion(batch: BatchActivities, activity_id: str, place: BatchPlace | None = None) -> dict[str, Any]:
    """The record with this activity_id, its inclusion proof in the batch, and the batch's place.

    The proof is checked against the root the activity.batch event committed to before it is
    returned: a batch file that does not match its event raises ValueError.
    """
    return batch_inclusions(batch, [activity_id], place)[0]


def inclusion_entry(body: Mapping[str, Any], record: bytes, position: int, size: int, proof: Sequence[bytes],
                    place: BatchPlace | None) -> dict[str, Any]:
    """A record's inclusion as record_inclusion answers it, from a proof checked by the caller."""
    return {
        "record": json.loads(record),
        "batch_id": body["batch_id"],
        "leaf_hash": leaf_hash(record).hex(),
        "root": body["root"],
        "inclusion": inclusion_json(position, size, proof),
        "batch_seq": place.seq if place else None,
        "issuance_id": place.issuance_id if place else None,
        "issuance_seq": place.issuance_seq if place else None,
    }


def batch_inclusions(batch: BatchActivities, activity_ids: Sequence[str], place: BatchPlace | None = None
                     ) -> list[dict[str, Any]]:
    """record_inclusion of several records of one batch, its leaf hashes computed once."""
    if batch.positions is not None:
        raise ValueError("an inclusion proof needs every record of the batch, not a part of them")
    hashes = [leaf_hash(data) for data in batch.records]
    root = bytes.fromhex(batch.body["root"])
    found = []
    for activity_id in activity_ids:
        needle = f'{{"activity_id":"{activity_id}",'.encode()
        index = next((i for i, data in enumerate(batch.records) if data.startswith(needle)), None)
        if index is None:
            raise KeyError(f"no record {activity_id!r} in batch {batch.body['batch_id']!r}")
        proof = inclusion_proof(_LeafHashes(hashes), index, len(hashes))
        if not verify_inclusion(hashes[index], index, len(hashes), proof, root):
            raise ValueError(f"batch {batch.body['batch_id']!r}: its file does not match the committed root")
        found.append(inclusion_entry(batch.body, batch.records[index], index, len(hashes), proof, place))
    return found
