"""Clients of the registry, in Python: each actor signs its own events with its own key.

Used by the demo history, the benchmarks and the tests, so that every event they write goes
through the same signed path as an API client's. Bodies are built here; the rules are not:
a bad body is refused by the registry, not by this module.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import secrets
from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence

from keys import Signer
from ledger.registry import Appended, Registry, sign_event
from ledger.rules import batch_commitment
from ledger.schema import key_id_of


@dataclass
class Actor:
    """One signing key and the request ids it has used."""
    signer: Signer
    label: str
    _requests: Iterable[int] = field(default_factory=lambda: itertools.count(1))

    @property
    def key_id(self) -> str:
        return key_id_of(bytes(self.signer.public_key))

    def next_request_id(self) -> str:
        # A random tail keeps ids unique across processes and restarts of the same actor.
        return f"{self.label}-{next(self._requests)}-{secrets.token_hex(4)}"  # type: ignore[call-overload]


def activity_record(activity_id: str, act: str, occurred_at: str, reduction_g: int, subject: str,
                    inputs: dict[str, Any]) -> dict[str, Any]:
    """A spec section 7 record whose fingerprint is derived from `act`, the real-world act's identity."""
    fingerprint = hashlib.sha256(b"puhui-act/v1\n" + act.encode()).hexdigest()
    return {"activity_id": activity_id, "fingerprint": fingerprint, "inputs": inputs, "occurred_at": occurred_at,
            "reduction_g": reduction_g, "subject": subject}


class Client:
    """Submits events signed by actors to one registry (in process)."""

    def __init__(self, registry: Registry):
        self.registry = registry

    def signed(self, actor: Actor, event_type: str, body: dict[str, Any]) -> dict[str, Any]:
        body = {**body, "request_id": body.get("request_id") or actor.next_request_id()}
        return sign_event(actor.signer, self.registry.origin, event_type, body, log_format=self.registry.log_format)

    def submit(self, actor: Actor, event_type: str, body: dict[str, Any],
               records: Sequence[dict[str, Any]] | None = None) -> Appended:
        return self.registry.append(self.signed(actor, event_type, body), records)

    # Bodies of every type, with the spec's field names.
    def register_key(self, by: Actor, new: Actor, roles: Sequence[str]) -> Appended:
        return self.submit(by, "key.register", {"key_id": new.key_id, "label": new.label, "roles": list(roles),
                                                "public_key": base64.b64encode(bytes(new.signer.public_key)).decode()})

    def revoke_key(self, by: Actor, key_id: str, reason: str) -> Appended:
        return self.submit(by, "key.revoke", {"key_id": key_id, "reason": reason})

    def open_account(self, by: Actor, account_id: str, kind: str, name: str, region: str,
                     controllers: Sequence[Actor], platform: str | None = None) -> Appended:
        return self.submit(by, "account.open", {"account_id": account_id, "kind": kind, "name": name, "region": region,
                                                "controllers": [c.key_id for c in controllers], "platform": platform})

    def register_methodology(self, by: Actor, methodology_id: str, version: int, title: str, sector: str,
                             params: dict[str, Any], offset_eligible: bool) -> Appended:
        return self.submit(by, "methodology.register", {"methodology_id": methodology_id, "version": version, "title": title,
                                                        "sector": sector, "params": params, "offset_eligible": offset_eligible})

    def set_eligibility(self, by: Actor, methodology_id: str, offset_eligible: bool, version: int | None = None) -> Appended:
        """version: the methodology version it sets (format 2, where eligibility is per version)."""
        body: dict[str, Any] = {"methodology_id": methodology_id, "offset_eligible": offset_eligible}
        if version is not None:
            body["version"] = version
        return self.submit(by, "methodology.eligibility", body)

    def batch(self, by: Actor, batch_id: str, platform: str, methodology_id: str, version: int,
              period_start: str, period_end: str, records: Sequence[dict[str, Any]]) -> Appended:
        body = {"batch_id": batch_id, "platform": platform, "methodology_id": methodology_id,
                "methodology_version": version, "period_start": period_start, "period_end": period_end,
                **batch_commitment(records)}
        return self.submit(by, "activity.batch", body, records)

    def review(self, by: Actor, review_id: str, kind: str, target_id: str, verdict: str = "approved",
               version: int | None = None, report: bytes | None = None) -> Appended:
        """A validator's review of a batch or evidence hash, an expert's of a methodology version
        (format 2); the report itself stays off the log, only its SHA-256 is signed."""
        report_sha256 = hashlib.sha256(report if report is not None else f"report {review_id}".encode()).hexdigest()
        return self.submit(by, "review", {"review_id": review_id, "verdict": verdict, "report_sha256": report_sha256,
                                          "target": {"kind": kind, "id": target_id, "version": version}})

    def issue(self, by: Actor, issuance_id: str, account: str, methodology_id: str, vintage: int, region: str,
              amount_g: int, batches: Sequence[str] = (), evidence: str | None = None) -> Appended:
        return self.submit(by, "issuance", {"issuance_id": issuance_id, "account": account, "methodology_id": methodology_id,
                                            "vintage": vintage, "region": region, "amount_g": amount_g,
                                            "batches": list(batches), "evidence": evidence})

    def hold(self, by: Actor, hold_id: str, account_id: str, held: bool, case_id: str, reason: str) -> Appended:
        """Open (held) or close a case on an account (format 2)."""
        return self.submit(by, "account.hold", {"hold_id": hold_id, "account_id": account_id, "held": held,
                                                "case_id": case_id, "reason": reason})

    def _spending(self, body: dict[str, Any], issuances: Sequence[str] | None) -> dict[str, Any]:
        """A transfer, retirement or cancellation body: in format 2 with the issuances it takes from
        (None: any); a format-1 body is unchanged (given issuances anyway, the registry refuses it)."""
        if self.registry.log_format == 2 or issuances is not None:
            body["issuances"] = None if issuances is None else list(issuances)
        return body

    def transfer(self, by: Actor, transfer_id: str, source: str, destination: str, amount_g: int, *,
                 issuances: Sequence[str] | None = None) -> Appended:
        return self.submit(by, "transfer", self._spending({"transfer_id": transfer_id, "from": source, "to": destination,
                                                           "amount_g": amount_g}, issuances))

    def retire(self, by: Actor, retirement_id: str, account: str, amount_g: int, purpose: str, beneficiary: str, *,
               issuances: Sequence[str] | None = None) -> Appended:
        return self.submit(by, "retirement", self._spending({"retirement_id": retirement_id, "account": account,
                                                             "amount_g": amount_g, "purpose": purpose,
                                                             "beneficiary": beneficiary}, issuances))

    def cancel(self, by: Actor, cancellation_id: str, account: str, amount_g: int, reason: str, *,
               issuances: Sequence[str] | None = None) -> Appended:
        return self.submit(by, "cancellation", self._spending({"cancellation_id": cancellation_id, "account": account,
                                                               "amount_g": amount_g, "reason": reason}, issuances))

    def surrender(self, by: Actor, surrender_id: str, entity: str, compliance_year: int, allocation_g: int,
                  retirements: Sequence[str]) -> Appended:
        return self.submit(by, "offset.surrender", {"surrender_id": surrender_id, "entity": entity,
                                                    "compliance_year": compliance_year, "allocation_g": allocation_g,
                                                    "retirements": list(retirements)})

    def claim(self, by: Actor, claim_id: str, claimant: str, subject_kind: str, subject_name: str,
              period_start: str, period_end: str, footprint_g: int, retirements: Sequence[str]) -> Appended:
        return self.submit(by, "neutrality.claim", {"claim_id": claim_id, "claimant": claimant,
                                                    "subject": {"kind": subject_kind, "name": subject_name},
                                                    "period_start": period_start, "period_end": period_end,
                                                    "footprint_g": footprint_g, "retirements": list(retirements)})
