"""Methodology definitions as the log publishes them (`methodology.register` params).

What quantifies and explains records in a registry is the logged definition, not the shipped
file: LoggedMethodologies reads each logged version from the committed database (ledger.queries)
and checks it like a definition file, so both faces may call it from any thread while the
sequencer writes.
"""

from __future__ import annotations

from typing import Any

from ledger.queries import Queries
from ledger.store import Store
from quantify.activity import IDENTIFIER
from quantify.methodology import (Methodology, MethodologyError, MethodologyLibrary, close_matches, eligibility_body,
                                  from_json, listing, register_body)


class UnknownMethodology(KeyError):
    """No such methodology, or no such version of it, in the log."""

    def __str__(self) -> str:
        return str(self.args[0])


class NoDefinition(LookupError):
    """A logged version whose params are not a definition this library reads (hand-made params)."""


def register_body_for_log(methodology: Methodology, log_format: int) -> dict[str, Any]:
    """The `methodology.register` body of a shipped definition for a log of this format. In format 2
    a version is registered not offset eligible whatever its file says: turning eligibility on needs
    the version's expert reviews, and only a registered version can be reviewed (spec section 6)."""
    body = register_body(methodology)
    if log_format == 2:
        body["offset_eligible"] = False
    return body


def eligibility_body_for_log(methodology: Methodology, offset_eligible: bool, log_format: int) -> dict[str, Any]:
    """The `methodology.eligibility` body for a log of this format: in format 2 it names the version
    it sets (eligibility is per version). Refused for an illustrative version (quantify.eligibility_body)."""
    body = eligibility_body(methodology, offset_eligible)
    if log_format == 2:
        body["version"] = methodology.version
    return body


def _comparable(params: Any) -> Any:
    # The rounding rule's wording is documentation: a new wording must not orphan logged definitions.
    if isinstance(params, dict) and isinstance(params.get("formula"), dict):
        return {**params, "formula": {k: v for k, v in params["formula"].items() if k != "rounding"}}
    return params


def definition_from_log(methodology_id: str, version: int, entry: dict[str, Any]) -> Methodology:
    """The Methodology a logged `methodology.register` publishes, checked like a definition file.

    Its params must be exactly what quantify's register_body writes (formula, factors with their
    sources, daily cap, inputs, fingerprint); otherwise NoDefinition. offset_eligible is left
    false: eligibility is the log's (methodology.eligibility), not the definition's.
    """
    params = entry.get("params")
    try:
        methodology = from_json({"methodology_id": methodology_id, "version": version, "title": entry["title"],
                                 "sector": entry["sector"], "params": params, "offset_eligible": False})
    except (KeyError, TypeError, MethodologyError) as exc:
        raise NoDefinition(f"{methodology_id} v{version} is registered without a machine-readable definition in its "
                           f"params ({type(exc).__name__}: {str(exc)[:200]}); register the definition as a new version "
                           "(quantify.register_body)") from None
    if _comparable(methodology.params()) != _comparable(params):
        raise NoDefinition(f"{methodology_id} v{version}: its params hold more or other than the definition they "
                           "describe, so this registry cannot quantify with them")
    return methodology


class LoggedMethodologies:
    """Definitions by id and version as the log holds them: what quantifies and explains records in
    this registry. The library's `get` interface (quantify_request takes it as a library). A logged
    version never changes, so each is read and checked once."""

    def __init__(self, store: Store):
        self._queries = Queries(store)
        self._definitions: dict[tuple[str, int], Methodology | str] = {}  # str: why there is none

    def logged(self, methodology_id: str) -> dict[str, Any] | None:
        """The methodology's register entry (queries.methodology), or None."""
        if not isinstance(methodology_id, str) or not IDENTIFIER.fullmatch(methodology_id):
            return None
        return self._queries.methodology(methodology_id)

    def get(self, methodology_id: str, version: int | None = None) -> Methodology:
        """A logged version, or the latest; UnknownMethodology if not logged, NoDefinition if its
        params are not a definition."""
        # A logged version never changes (the log is append-only): a cached one needs no query.
        found = self._definitions.get((methodology_id, version)) if type(version) is int else None
        if found is None:
            logged = self.logged(methodology_id)
            if logged is None:
                raise UnknownMethodology(f"methodology {methodology_id!r} is not registered"
                                         f"{close_matches(methodology_id, self._queries.methodology_ids())}")
            if version is None:
                version = logged["latest_version"]
            entry = next((v for v in logged["versions"] if v["version"] == version and type(version) is int), None)
            if entry is None:
                raise UnknownMethodology(f"methodology {methodology_id} has no version {version!r} "
                                         f"(the latest is {logged['latest_version']})")
            found = self._definitions.get((methodology_id, version))
        if found is None:
            try:
                found = definition_from_log(methodology_id, version, entry)
            except NoDefinition as exc:
                found = str(exc)
            self._definitions[(methodology_id, version)] = found
        if isinstance(found, str):
            raise NoDefinition(found)
        return found


def library_against_log(library: MethodologyLibrary, logged: dict[str, Any], log_format: int) -> list[dict[str, Any]]:
    """quantify's listing of the shipped library, each version with its place in the log.

    logged maps methodology_id to the State's Methodology (versions, offset_eligible in force): the
    methodology's in format 1, each version's own in format 2 (spec section 6).
    """
    eligibility = {mid: m.offset_eligible for mid, m in logged.items()}
    out = []
    for entry in listing(library, eligibility):
        known = logged.get(entry["methodology_id"])
        version = None if known is None else known.versions.get(entry["version"])
        if log_format == 2 and version is not None:
            entry["offset_eligible"] = version["offset_eligible"]
        out.append({**entry, "logged_seq": None if version is None else version["seq"],
                    "matches_log": None if version is None else _comparable(version["params"]) == _comparable(entry["params"])})
    shipped = {(m.methodology_id, m.version) for m in library.all()}
    for mid, known in sorted(logged.items()):
        for number, version in sorted(known.versions.items()):
            if (mid, number) not in shipped:  # registered by hand, or from another library
                out.append({"methodology_id": mid, "version": number, "title": version["title"],
                            "sector": version["sector"], "params": version["params"],
                            "offset_eligible": version["offset_eligible"] if log_format == 2 else known.offset_eligible,
                            "superseded_by": None, "illustrative": None,
                            "logged_seq": version["seq"], "matches_log": None})
    return out
