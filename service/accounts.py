"""Reads over the committed log shaped for people: a subject's personal carbon account (个人碳账户),
a logged record's proof of inclusion, and its explanation under the methodology its batch names.

Everything here reads the committed database through ledger.queries, never the registry's
in-memory State, so both faces call it from any thread while the sequencer writes.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any, Mapping, Sequence

from ledger.batch_blocks import PositionedRecord
from ledger.queries import MAX_PAGE_ITEMS, LoggedBatch, LoggedRecord, Queries
from ledger.state import ReviewTarget
from quantify.account import BatchActivities, BatchPlace, inclusion_entry, personal_account, pseudonymous_account
from quantify.activity import InvalidActivity, check_subject
from quantify.explain import explain_record
from quantify.private import MAX_PSEUDONYM_DAYS
from quantify.report import Report
from service.methodologies import LoggedMethodologies

MAX_ACCOUNT_RECORDS = 200_000  # one subject's records in one account answer


class RecordMismatch(ValueError):
    """A logged record that its batch's methodology version does not give."""


class TooManyRecords(ValueError):
    """More records than one answer holds."""


def _place(batch: LoggedBatch) -> BatchPlace:
    """Where a batch stands in the log: its event's seq, the issuance it backs and that one's seq."""
    return BatchPlace(batch.body["seq"], batch.body.get("issuance_id"), batch.issuance_seq)


def _places(queries: Queries, logged: Mapping[str, LoggedBatch]) -> dict[str, BatchPlace]:
    """_place of each batch and, in a format-2 log, the review that rejected a batch not issued."""
    places = {batch_id: _place(batch) for batch_id, batch in logged.items()}
    if queries.log_format() == 2:
        for batch_id, place in places.items():
            if place.issuance_id is None:
                places[batch_id] = dataclasses.replace(place, rejected_by=_rejection(queries, batch_id))
    return places


def _rejection(queries: Queries, batch_id: str) -> str | None:
    """The first review rejecting the batch that counts now (spec section 6: it bars the batch's
    issuance), or None. A batch has a few reviews; the pages of them are read until it is found."""
    after = -1
    while True:
        answer = queries.reviews(ReviewTarget("batch", batch_id, None), after=after, limit=MAX_PAGE_ITEMS)
        if answer is None or not answer["status"]["rejected"]:
            return None
        found = next((r["review_id"] for r in answer["items"] if r["verdict"] == "rejected" and r["counts"]), None)
        if found is not None or answer["next_after"] is None:
            return found
        after = answer["next_after"]


def subject_account(queries: Queries, subject: str, *, max_records: int = MAX_ACCOUNT_RECORDS) -> Report:
    """The personal carbon account (个人碳账户) of a pseudonym, from the activities index: only the
    subject's records are read, never whole batches."""
    check_subject(subject)
    rows = _subjects_records(queries, [subject], max_records)
    batches, logged = _batches_of(queries, rows)
    report = personal_account(subject, batches, _places(queries, logged))
    if not rows:  # zeros alone would read as an account with nothing earned, not as a pseudonym unknown here
        report.notes.append(f"no records for this pseudonym ({subject}): check it (the app shows a person's "
                            f"pseudonyms), or whether its platform has reported them yet")
    return report


def pseudonyms_account(queries: Queries, person: str, subjects: Sequence[str], openings: Mapping[str, bytes] | None = None,
                       *, max_records: int = MAX_ACCOUNT_RECORDS, proofs: bool = True) -> tuple[Report, list[dict[str, Any]]]:
    """Format 2: the personal carbon account of a person over their daily pseudonyms
    (quantify.pseudonymous_account), and every record's inclusion proof in its batch (checked
    against the committed root), each from the batch's block hashes and the record's block;
    proofs False: none (the public pages prove each record themselves)."""
    if not 1 <= len(subjects) <= MAX_PSEUDONYM_DAYS:
        raise TooManyRecords(f"an account gathers 1 to {MAX_PSEUDONYM_DAYS} daily pseudonyms")
    for subject in subjects:
        check_subject(subject)
    rows = _subjects_records(queries, subjects, max_records)
    batches, logged = _batches_of(queries, rows)
    places = _places(queries, logged)
    report = pseudonymous_account(person, subjects, batches, places, openings)
    inclusions = []
    for batch in batches if proofs else ():
        inclusions += _logged_inclusions(queries, batch, places[batch.body["batch_id"]])
    if not rows:
        report.notes.append("no records for these pseudonyms: check the person id and dates they were derived "
                            "for, or whether the platforms have reported them yet")
    return report, inclusions


def _subjects_records(queries: Queries, subjects: Sequence[str], max_records: int) -> list[LoggedRecord]:
    """The subjects' records from the activities index (one statement), at most max_records."""
    rows = queries.subjects_records(subjects, limit=max_records + 1)
    if len(rows) > max_records:
        raise TooManyRecords(f"{'subject ' + subjects[0] if len(subjects) == 1 else 'these subjects'} "
                             f"{'has' if len(subjects) == 1 else 'have'} more than {max_records} activity records")
    return rows


def _batches_of(queries: Queries, rows: list[LoggedRecord]) -> tuple[list[BatchActivities], dict[str, LoggedBatch]]:
    """The records as parts of their batches (in log order), and the logged batches."""
    logged = queries.batches_by_id(row.batch_id for row in rows)
    by_batch: dict[str, tuple[list[int], list[bytes]]] = {}
    for row in rows:
        positions, records = by_batch.setdefault(row.batch_id, ([], []))
        positions.append(row.position)
        records.append(row.record)
    return [BatchActivities(logged[batch_id].body, records, positions)
            for batch_id, (positions, records) in sorted(by_batch.items(), key=lambda item: logged[item[0]].body["seq"])
            ], logged


def _logged_record(queries: Queries, activity_id: str) -> tuple[LoggedRecord, LoggedBatch] | None:
    """A logged record and its batch, or None."""
    row = queries.activity_record(activity_id)
    return None if row is None else (row, queries.batches_by_id([row.batch_id])[row.batch_id])


def logged_record_inclusion(queries: Queries, activity_id: str) -> dict[str, Any] | None:
    """quantify.record_inclusion of a logged record: the record, its proof in its batch (checked
    against the committed root) and the batch's seq and issuance. None if there is no such record."""
    found = _logged_record(queries, activity_id)
    if found is None:
        return None
    row, batch = found
    [inclusion] = _logged_inclusions(queries, BatchActivities(batch.body, [row.record], [row.position]), _place(batch))
    return inclusion


def _logged_inclusions(queries: Queries, part: BatchActivities, place: BatchPlace) -> list[dict[str, Any]]:
    """The inclusions of a logged batch's records (a part of it, with their positions), each proof
    read from the batch's block hashes and the record's block (ledger.batch_blocks), not from every
    record of the batch, and checked against the batch root."""
    assert part.positions is not None and len(part.positions) == len(part.records)
    positioned = [PositionedRecord(position, record) for position, record in zip(part.positions, part.records)]
    proofs = queries.batch_inclusion_proofs(part.body, positioned)
    return [inclusion_entry(part.body, item.record, proof.position, proof.size, proof.hashes, place)
            for item, proof in zip(positioned, proofs)]


def explain_logged(queries: Queries, methodologies: LoggedMethodologies, activity_id: str) -> dict[str, Any] | None:
    """The explanation of a logged record under the methodology version its batch names, with the
    batch's id, seq, the record's leaf index and the issuance the batch backs (ids and seqs null
    until issued). None if there is no such record."""
    found = _logged_record(queries, activity_id)
    if found is None:
        return None
    row, place, batch = found[0], _place(found[1]), found[1].body
    methodology = methodologies.get(batch["methodology_id"], batch["methodology_version"])
    try:
        explanation = explain_record(methodology, json.loads(row.record))
    except (InvalidActivity, ValueError) as exc:
        raise RecordMismatch(f"record {activity_id} does not follow {methodology.methodology_id} "
                             f"v{methodology.version}, which its batch names: {exc}") from None
    return {**explanation, "batch_id": row.batch_id, "batch_seq": place.seq, "leaf_index": row.position,
            "issuance_id": place.issuance_id, "issuance_seq": place.issuance_seq}
