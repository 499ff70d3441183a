"""A small Python client: sign events with a key from keys/, submit them, prove every answer.

    from service.client import RegistryClient
    client = RegistryClient("http://127.0.0.1:8000", trust="trust.json")
    key = RegistryClient.load_signer("keys/wuhan-platform.key")      # passphrase: PUHUI_KEY_PASSPHRASE
    accepted = client.retire(key, "ret-7", "wuhan-platform", 1500, "voluntary", "p-123")
    accepted.seq, accepted.effects        # committed, and proven in a checkpoint signed by the log key

Strings are put in Unicode NFC before signing (the registry refuses any other form). Each
accepted event's receipt is fetched and checked: the leaf is what was signed, its inclusion proof
leads to a checkpoint signed by the trust file's log key, and every checkpoint seen is consistent
with the previous one (no rewritten history, no split view towards this client).
"""

from __future__ import annotations

import json
import os
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

import httpx

from keys import Ed25519Key, Signer, load_key, passphrase_from_env_or_prompt
from ledger import merkle
from ledger.canonical import jcs
from ledger.leaf import log_format_of
from ledger.note import Checkpoint, parse_verifier_key, verify_checkpoint
from ledger.receipts import ReceiptInvalid, verify_receipt
from ledger.registry import sign_event
from ledger.schema import MAX_BATCH_EVENTS
from ledger.rules import batch_commitment



class RegistryError(Exception):
    """The registry refused: `code` is a spec code (section 9) or UNAVAILABLE; `status` the HTTP status."""

    def __init__(self, status: int, code: str, message: str):
        super().__init__(f"{status} {code}: {message}")
        self.status, self.code, self.message = status, code, message


@dataclass(frozen=True)
class Accepted:
    seq: int
    leaf_hash: str
    time: str
    effects: dict[str, Any] | None
    resent: bool                      # True when the registry already held this very event (200)
    receipt: dict[str, Any] | None    # checked, when the client was asked to prove the event


def normalized(value: Any) -> Any:
    """The value with every string (keys included) in Unicode NFC."""
    if isinstance(value, str):
        return unicodedata.normalize("NFC", value)
    if isinstance(value, dict):
        return {normalized(k): normalized(v) for k, v in value.items()}
    if isinstance(value, list):
        return [normalized(v) for v in value]
    return value


class RegistryClient:
    def __init__(self, base_url: str, *, trust: dict[str, Any] | str | os.PathLike[str] | None = None,
                 timeout_s: float = 30.0, http: httpx.Client | None = None):
        """`trust`: the trust file (spec section 8) obtained out of band. Without it the client takes
        the registry's own /v1/trust on first use, which proves nothing against a lying registry.
        `http`: an httpx.Client of your own (proxies, TLS settings, a test client)."""
        self.http = http or httpx.Client(base_url=base_url, timeout=timeout_s)
        if trust is None:
            trust = self._json(self.http.get("/v1/trust"))
        elif not isinstance(trust, dict):
            trust = json.loads(Path(trust).read_text(encoding="utf-8"))
        self.trust: dict[str, Any] = trust
        self.origin: str = trust["origin"]
        self._log_key = parse_verifier_key(trust["log_key"])
        self._latest: Checkpoint | None = None
        self._request_serial = 0
        self._log_format: int | None = None

    @property
    def log_format(self) -> int:
        """The registry log's format (spec "Formats"), from its genesis, whose receipt is checked
        against the trust file: events are signed with that format's prefix."""
        if self._log_format is None:
            receipt = self._json(self.http.get("/v1/receipts/0"))
            leaf_text = receipt.get("leaf") if isinstance(receipt, dict) else None
            log_format = log_format_of(leaf_text.encode("utf-8")) if isinstance(leaf_text, str) else 1
            verify_receipt(receipt, self.trust, log_format)
            self._log_format = log_format
        return self._log_format

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> "RegistryClient":
        return self

    def __exit__(self, *_: Any) -> None:
        self.close()

    @staticmethod
    def load_signer(path: str | os.PathLike[str], passphrase: bytes | None = None) -> Ed25519Key:
        """A key file of keys/ (puhui-key/1); the passphrase from PUHUI_KEY_PASSPHRASE or a prompt."""
        return load_key(path, passphrase or passphrase_from_env_or_prompt(f"the key {path}"))

    # -- writing ---------------------------------------------------------------------------------

    def sign(self, signer: Signer, event_type: str, body: dict[str, Any]) -> dict[str, Any]:
        """The signed event (spec section 2), body in NFC, with a fresh request_id unless one is given."""
        body = normalized(body)
        if "request_id" not in body:
            body["request_id"] = self._new_request_id()
        return sign_event(signer, self.origin, event_type, body, log_format=self.log_format)

    def submit(self, signer: Signer, event_type: str, body: dict[str, Any], *, prove: bool = True) -> Accepted:
        """Sign and submit one event; RegistryError if refused. With `prove`, its receipt is checked."""
        return self.submit_signed(self.sign(signer, event_type, body), prove=prove)

    def submit_signed(self, event: dict[str, Any], *, prove: bool = True) -> Accepted:
        """Submit an event signed already. Resending the very same event is safe: the registry answers
        with the original result (Accepted.resent)."""
        response = self.http.post("/v1/events", content=jcs(event), headers={"content-type": "application/json"})
        return self._accepted(self._json(response), response.status_code, event, prove)

    def submit_batch(self, events: Sequence[dict[str, Any]], *, prove: bool = False) -> list[Accepted | RegistryError]:
        """Up to 1,000 signed events, applied in order; one Accepted or RegistryError for each."""
        if not 1 <= len(events) <= MAX_BATCH_EVENTS:
            raise ValueError(f"a batch holds 1 to {MAX_BATCH_EVENTS} events")
        response = self.http.post("/v1/events:batch", content=jcs({"events": list(events)}),
                                  headers={"content-type": "application/json"})
        results = self._json(response)["results"]
        return [RegistryError(r["status"], r["code"], r["message"]) if "code" in r
                else self._accepted(r, r["status"], event, prove) for r, event in zip(results, events)]

    def upload_activity_batch(self, signer: Signer, body: dict[str, Any], records: Sequence[dict[str, Any]], *,
                              prove: bool = True) -> Accepted:
        """An activity.batch with its records; count, total_g and root are computed here from the records."""
        records = [normalized(r) for r in records]
        event = self.sign(signer, "activity.batch", {**body, **batch_commitment(records)})
        lines = b"".join(jcs(item) + b"\n" for item in [event, *records])
        response = self.http.post("/v1/activity-batches", content=lines, headers={"content-type": "application/x-ndjson"})
        return self._accepted(self._json(response), response.status_code, event, prove)

    # Spends: a format-2 body names the issuances its serials come from (None: any); a format-1 one cannot.
    def transfer(self, signer: Signer, transfer_id: str, source: str, to: str, amount_g: int, *,
                 issuances: Sequence[str] | None = None, prove: bool = True) -> Accepted:
        return self.submit(signer, "transfer", self._spending(
            {"transfer_id": transfer_id, "from": source, "to": to, "amount_g": amount_g}, issuances), prove=prove)

    def retire(self, signer: Signer, retirement_id: str, account: str, amount_g: int, purpose: str, beneficiary: str,
               *, issuances: Sequence[str] | None = None, prove: bool = True) -> Accepted:
        return self.submit(signer, "retirement", self._spending(
            {"retirement_id": retirement_id, "account": account, "amount_g": amount_g, "purpose": purpose,
             "beneficiary": beneficiary}, issuances), prove=prove)

    def cancel(self, signer: Signer, cancellation_id: str, account: str, amount_g: int, reason: str, *,
               issuances: Sequence[str] | None = None, prove: bool = True) -> Accepted:
        return self.submit(signer, "cancellation", self._spending(
            {"cancellation_id": cancellation_id, "account": account, "amount_g": amount_g, "reason": reason},
            issuances), prove=prove)

    def _spending(self, body: dict[str, Any], issuances: Sequence[str] | None) -> dict[str, Any]:
        if self.log_format == 2:
            return {**body, "issuances": None if issuances is None else list(issuances)}
        if issuances is not None:
            raise ValueError("a format-1 registry takes no issuances: its spends take the lowest serials")
        return body

    def review(self, signer: Signer, review_id: str, kind: str, target_id: str, *, verdict: str, report_sha256: str,
               version: int | None = None, prove: bool = True) -> Accepted:
        """Format 2: a validator's verdict on a batch or evidence hash, or an expert's on a methodology
        version (`version`); the report stays off the log, its SHA-256 is signed."""
        return self.submit(signer, "review", {"review_id": review_id, "verdict": verdict,
                                              "report_sha256": report_sha256,
                                              "target": {"kind": kind, "id": target_id, "version": version}},
                           prove=prove)

    def hold(self, signer: Signer, hold_id: str, account_id: str, *, held: bool, case_id: str, reason: str,
             prove: bool = True) -> Accepted:
        """Format 2, an admin's: open (held) or close the case (account_id, case_id)."""
        return self.submit(signer, "account.hold", {"hold_id": hold_id, "account_id": account_id, "held": held,
                                                    "case_id": case_id, "reason": reason}, prove=prove)

    def _accepted(self, answer: dict[str, Any], status: int, event: dict[str, Any], prove: bool) -> Accepted:
        receipt = self.prove(answer["seq"], event) if prove else None
        return Accepted(answer["seq"], answer["leaf_hash"], answer["time"], answer.get("effects"), status == 200, receipt)

    # -- proving ---------------------------------------------------------------------------------

    def prove(self, seq: int, event: dict[str, Any] | None = None) -> dict[str, Any]:
        """The receipt of `seq`, checked against the trust file (and against `event`, when given)."""
        receipt = self._json(self.http.get(f"/v1/receipts/{seq}"))
        leaf = verify_receipt(receipt, self.trust, self.log_format)
        if leaf.seq != seq:
            raise ReceiptInvalid("SEQ", f"asked for seq {seq}, the receipt proves {leaf.seq}")
        if event is not None and leaf.submission() != event:
            raise ReceiptInvalid("ENCODING", f"leaf {seq} is not the event this client submitted")
        self._observe(verify_checkpoint(receipt["checkpoint"], self._log_key))
        return receipt

    def checkpoint(self) -> Checkpoint:
        """The latest checkpoint, signed by the log key and consistent with every one seen before."""
        response = self.http.get("/v1/checkpoint")
        if response.status_code != 200:
            self._json(response)
        checkpoint = verify_checkpoint(response.text, self._log_key)
        self._observe(checkpoint)
        return checkpoint

    def _observe(self, checkpoint: Checkpoint) -> None:
        """Check consistency with the largest checkpoint seen so far, then remember the larger."""
        seen = self._latest
        if seen is not None:
            small, large = sorted((seen, checkpoint), key=lambda c: c.size)
            if small.size == large.size:
                consistent = small.root == large.root
            else:
                proof = self._json(self.http.get("/v1/proofs/consistency",
                                                 params={"first": small.size, "second": large.size}))
                consistent = merkle.verify_consistency(small.size, large.size, small.root, large.root,
                                                       [bytes.fromhex(h) for h in proof["hashes"]])
            if not consistent:
                raise ReceiptInvalid("CHECKPOINT_ROOT", f"checkpoints of sizes {small.size} and {large.size} "
                                                        "are not consistent: the log was rewritten")
        if seen is None or checkpoint.size > seen.size:
            self._latest = checkpoint

    # -- reading ---------------------------------------------------------------------------------

    def get(self, path: str, **params: Any) -> Any:
        return self._json(self.http.get(path, params={k: v for k, v in params.items() if v is not None}))

    def account(self, account_id: str) -> dict[str, Any]:
        return self.get(f"/v1/accounts/{account_id}")

    def holds(self, account_id: str) -> dict[str, Any]:
        """Format 2: the account's cases, open and closed, with their hold events."""
        return self.get(f"/v1/accounts/{account_id}/holds")

    def batch(self, batch_id: str) -> dict[str, Any]:
        return self.get(f"/v1/batches/{batch_id}")

    def reviews(self, kind: str, target_id: str, version: int | None = None) -> dict[str, Any]:
        """Format 2: the target's status against review_quorum and every review of it (all pages)."""
        answer = self.get("/v1/reviews", kind=kind, id=target_id, version=version, limit=1000)
        while answer["next_after"] is not None:
            page = self.get("/v1/reviews", kind=kind, id=target_id, version=version, limit=1000,
                            after=answer["next_after"])
            answer = {**page, "items": answer["items"] + page["items"]}
        return answer

    def leaves(self, start: int = 0, stop: int | None = None, page: int = 1000) -> Iterable[dict[str, Any]]:
        """Leaf objects from `start`, page by page, up to `stop` or the end of the log."""
        while stop is None or start < stop:
            limit = page if stop is None else min(page, stop - start)
            leaves = self.get("/v1/log", start=start, limit=limit)["leaves"]
            if not leaves:
                return
            yield from leaves
            start += len(leaves)

    def offset_eligibility(self, entity: str, compliance_year: int, allocation_g: int, *,
                           retirements: Sequence[str] | None = None, amount_g: int | None = None,
                           issuances: Sequence[str] | None = None) -> dict[str, Any]:
        """`issuances` (format 2, with amount_g): the issuances the would-be retirement takes from."""
        query: dict[str, Any] = {"entity": entity, "compliance_year": compliance_year, "allocation_g": allocation_g}
        query |= {"retirements": list(retirements)} if retirements is not None else {"amount_g": amount_g}
        if issuances is not None:
            query["issuances"] = list(issuances)
        return self._json(self.http.post("/v1/offset-eligibility", content=jcs(normalized(query)),
                                         headers={"content-type": "application/json"}))

    # -- plumbing --------------------------------------------------------------------------------

    def _new_request_id(self) -> str:
        self._request_serial += 1
        return f"{os.urandom(8).hex()}-{self._request_serial}"

    @staticmethod
    def _json(response: httpx.Response) -> Any:
        try:
            answer = response.json()
        except ValueError:
            raise RegistryError(response.status_code, "UNAVAILABLE", response.text[:200]) from None
        if response.status_code >= 400:
            raise RegistryError(response.status_code, answer.get("code", "UNAVAILABLE"), answer.get("message", ""))
        return answer
