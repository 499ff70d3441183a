"""Ingestion against a live registry: quantify's questions answered by the registry's database.

quantify.ingest asks whether a fingerprint or activity id is already in the log and how many
grams a subject already has for a methodology on a Beijing day (across every platform). The log's
format decides the records: format 2's are built with the scheme's hub and fingerprint keys.
LoggedChunks answers from the registry's activities table, a chunk of records at a time; then
the platform signs each batch and the registry judges it like any other event.
"""

from __future__ import annotations

import datetime as dt
import io
import json
from pathlib import Path
from typing import IO, Any, Callable, Iterable

from keys import load_secret
from ledger.queries import ActivityLookups, CreditsAsked
from ledger.queries import Queries
from ledger.registry import Appended, LogReader, Registry
from ledger.schema import format_time
from ledger.store import Store
from quantify.activity import IDENTIFIER, beijing_day, beijing_midnight_utc
from quantify.ingest import BatchResult, IngestError, IngestResult, ingest_csv, ingest_jsonl
from quantify.methodology import Methodology
from quantify.prepared import PreparedChunk
from quantify.private import SchemeKeys
from service.actors import Actor, Client


class LoggedChunks:
    """quantify's questions to the log (ids and acts already logged, grams credited per subject and
    Beijing day on any platform), answered a chunk of prepared records at a time: one query per
    question per chunk (ledger.queries.ActivityLookups). The same answers as per-record adapters
    (tested), many times faster. Holds only what the log already has for the run's records, and one
    total per subject and day (as the ingestor does)."""

    def __init__(self, store: Store, methodology_id: str, log_format: int = 1):
        self._lookups, self._methodology_id = ActivityLookups(store), methodology_id
        # Format 2: a subject is a daily pseudonym, of one date by construction; its credits are
        # all its records of the methodology, whatever times the log keeps for them.
        self._by_subject = log_format == 2
        self.activity_ids: set[str] = set()  # the run's ids that the log already holds
        self.fingerprints: set[str] = set()  # the run's acts that the log already holds
        self._totals: dict[tuple[str, str], int] = {}  # (subject, Beijing day) -> grams logged

    def credited_g(self, subject: str, methodology_id: str, day: str) -> int:
        """quantify.ingest.DailyTotals, for the days fetch() has read."""
        return self._totals[(subject, day)]

    def fetch(self, prepared: PreparedChunk) -> None:
        """Read what the log holds for these prepared records, before the ingestor admits them."""
        if not prepared.lines:
            return
        totals = self._totals
        # (subject, Beijing day) not read before.
        # Each key is looked up in totals, never the other way round: totals grows with the run.
        wanted = {key for key in {(subject, beijing_day(occurred_at))
                                  for subject, occurred_at in zip(prepared.subjects, prepared.occurred_ats)}
                  if key not in totals}
        asked = None
        if wanted:
            subjects = sorted({subject for subject, _ in wanted})
            if self._by_subject:
                asked = CreditsAsked(subjects, self._methodology_id, None, None)
            else:
                days = sorted({day for _, day in wanted})
                asked = CreditsAsked(subjects, self._methodology_id, beijing_midnight_utc(days[0]),
                                     beijing_midnight_utc(days[-1], days=1))
        logged = self._lookups.chunk(prepared.activity_ids, prepared.fingerprints, asked)
        self.activity_ids.update(logged.activity_ids)
        self.fingerprints.update(logged.fingerprints)
        totals.update(dict.fromkeys(wanted, 0))
        day_of_subject = {subject: day for subject, day in wanted} if self._by_subject else {}
        for subject, occurred_at, grams in logged.credits:
            key = (subject, day_of_subject[subject] if self._by_subject else beijing_day(occurred_at))
            if key in wanted:
                totals[key] += grams


class UnknownPlatform(LookupError):
    """The account the records come from is not in the log."""

    def __str__(self) -> str:
        return str(self.args[0])


class NotAPlatform(ValueError):
    """The account the records come from is in the log, but is no platform account."""


def check_platform(queries: Queries, platform: str) -> None:
    """Before any record is read: the records' platform is an account of kind platform."""
    account = queries.account(platform) if IDENTIFIER.fullmatch(platform) else None
    if account is None:
        raise UnknownPlatform(f"account {platform} does not exist")
    if account["kind"] != "platform":
        raise NotAPlatform(f"account {platform} is of kind {account['kind']}, not platform: records come through "
                           f"the account of the platform that gathered them")


def load_scheme_keys(hub_key: Path, fingerprint_key: Path, passphrase: Callable[[str], bytes]) -> SchemeKeys:
    """The scheme's keys from their encrypted files (keys.load_secret); passphrase(kind) gives each
    file's passphrase (PUHUI_HUB_KEY_PASSPHRASE, PUHUI_FINGERPRINT_KEY_PASSPHRASE, ...)."""
    return SchemeKeys(load_secret(hub_key, passphrase("hub"), "hub"),
                      load_secret(fingerprint_key, passphrase("fingerprint"), "fingerprint"))


def check_scheme_keys(log_format: int, scheme_keys: SchemeKeys | None, how: str) -> None:
    """The log's format decides which records are built: a format-2 log's (quantify.private) need the
    scheme's hub and fingerprint keys, a format-1 log's take none. `how` says where they are given."""
    if log_format == 2 and scheme_keys is None:
        raise IngestError(f"this registry's log is format 2: its records carry daily pseudonyms and keyed "
                          f"fingerprints, made with the identity hub key and the fingerprint key ({how})")
    if log_format == 1 and scheme_keys is not None:
        raise IngestError("this registry's log is format 1: its records take no hub or fingerprint key")


def ingest_against_log(log: LogReader, source: IO[bytes], *, csv: bool = False, workers: int = 0,
                       scheme_keys: SchemeKeys | None = None, **options: Any) -> IngestResult:
    """quantify's ingestion (ingest_jsonl, ingest_csv) with the log answering its questions
    (LoggedChunks), after checking the platform account; format-2 records (with their openings) for
    a format-2 log, which needs scheme_keys. Writes only to options["out_dir"]. A record dated after
    today (Beijing time) is rejected (future_record): the registry would refuse its batch (BATCH)."""
    check_scheme_keys(log.log_format, scheme_keys, "scheme_keys")
    check_platform(Queries(log.store), options["platform"])
    methodology: Methodology = options["methodology"]
    logged = LoggedChunks(log.store, methodology.methodology_id, log.log_format)
    options["scheme_keys"] = scheme_keys
    options.update(daily_totals=logged, seen_fingerprints=logged.fingerprints, seen_activity_ids=logged.activity_ids)
    options.setdefault("latest_day", beijing_day(format_time(dt.datetime.now(dt.timezone.utc))))
    try:
        if csv:
            return ingest_csv(io.TextIOWrapper(source, encoding="utf-8", newline=""), workers=workers,
                              before_admit=logged.fetch, **options)
        return ingest_jsonl(source, workers=workers, before_admit=logged.fetch, **options)
    except UnicodeDecodeError:
        raise IngestError("the CSV file is not UTF-8") from None


def ingest_and_submit(registry: Registry, platform_signer: Actor, platform: str, methodology: Methodology,
                      lines: Iterable[str], run_id: str, out_dir: Path, scheme_keys: SchemeKeys | None = None
                      ) -> tuple[IngestResult, list[Appended]]:
    """Quantify raw records, drop duplicates and over-cap amounts (with reasons), sign, submit."""
    source = io.BytesIO(b"".join(line.encode() + b"\n" for line in lines))
    result = ingest_against_log(registry, source, platform=platform, methodology=methodology, run_id=run_id,
                                out_dir=out_dir, scheme_keys=scheme_keys)
    client = Client(registry)
    return result, [submit_batch(client, platform_signer, batch) for batch in result.batches]


def submit_batch(client: Client, platform_signer: Actor, batch: BatchResult) -> Appended:
    """Sign an ingested batch with the platform's key and append it with its records (never its
    openings, which the platform keeps)."""
    records = [json.loads(line) for line in batch.path.read_bytes().splitlines()]
    return client.submit(platform_signer, "activity.batch", dict(batch.body), records)
