"""A small registry world for tests: test keys from labels, one of each account kind, a history.

Keys derive from public labels (keys.Ed25519Key.from_label): test keys only.
"""

from __future__ import annotations

import datetime as dt
import itertools

from keys import Ed25519Key
from ledger.registry import Registry
from service.actors import Actor, Client, activity_record
from service.hubei import hubei_rules

ORIGIN = "test.hubei.example/puhui"

# Spec section 7.2's example HB-GT-METRO v1 as a section 7.1 definition (format 2): per_distance,
# g_per_km "78.4", a daily cap of 3000 g, entry and exit stations private and fingerprinted.
METRO_DEFINITION = {
    "description": "One metro ride from the entry gate to the exit gate",
    "formula": {"kind": "per_distance", "expression": "distance_m / 1000 * g_per_km", "quantity_field": "distance_m",
                "quantity_unit": "m", "rounding": "floor to whole grams, then the daily cap"},
    "inputs": {
        "distance_m": {"type": "integer", "required": True, "public": True, "description": "network distance",
                       "unit": "m", "min": 0, "max": 100000},
        "entry_station": {"type": "code", "required": True, "public": False, "description": "entry station code"},
        "exit_station": {"type": "code", "required": True, "public": False, "description": "exit station code"},
    },
    "factors": {"g_per_km": {"value": "78.4", "unit": "gCO2e/km", "source": "Wuhan carbon-inclusive platform",
                             "illustrative": False}},
    "daily_cap": {"value_g": 3000, "source": None, "illustrative": True},
    "fingerprint": {"fields": ["entry_station", "exit_station"], "time": "minute"},
}


class TickingClock:
    """Registry time that moves one millisecond a call: deterministic and non-decreasing."""

    def __init__(self, start: dt.datetime = dt.datetime(2026, 4, 1, tzinfo=dt.timezone.utc)):
        self._ticks = itertools.count()
        self._start = start

    def __call__(self) -> dt.datetime:
        return self._start + dt.timedelta(milliseconds=next(self._ticks))


def actor(label: str) -> Actor:
    return Actor(Ed25519Key.from_label(f"puhui-test/{label}"), label)


class World:
    def __init__(self, url: str, *, origin: str = ORIGIN, witnesses: tuple[str, ...] = (), witness_quorum: int = 0,
                 log_format: int = 1):
        self.url = url
        self.root = actor("root")
        self.log_key = Ed25519Key.from_label("puhui-test/log")
        self.admin, self.wuhan, self.grid, self.ets = actor("admin"), actor("wuhan"), actor("grid"), actor("ets")
        self.steel, self.mall, self.alice, self.bob = actor("steel"), actor("mall"), actor("alice"), actor("bob")
        # format 2's reviewers: two validation bodies, two members of the methodology panel
        self.validator, self.validator_2 = actor("validator"), actor("validator-2")
        self.expert, self.expert_2 = actor("expert"), actor("expert-2")
        self.registry = Registry.create(url, log_format=log_format, origin=origin, name="Test registry",
                                        rules=hubei_rules(log_format),
                                        root_signer=self.root.signer, log_public_key=self.log_key.public_key,
                                        log_signer=self.log_key, witnesses=witnesses, witness_quorum=witness_quorum,
                                        clock=TickingClock())
        self.client = Client(self.registry)
        self._activity = itertools.count()

    def reopen(self) -> Registry:
        self.registry.close()
        self.registry = Registry.open(self.url, log_signer=self.log_key, clock=TickingClock(dt.datetime(2026, 5, 1, tzinfo=dt.timezone.utc)))
        self.client = Client(self.registry)
        return self.registry

    def setup(self) -> "World":
        """Keys, accounts and methodologies: the cast every history needs."""
        c = self.client
        self._keys_and_accounts()
        c.register_methodology(self.admin, "HB-GT-METRO", 1, "Urban rail trips", "green_travel",
                               {"g_per_km": "78.4", "inputs": {"distance_m": {"type": "integer"}}}, True)
        c.register_methodology(self.admin, "HB-RS-RECYCLE", 1, "Household recycling", "resource_saving", {"g_per_kg": "300"}, False)
        return self

    def setup_v2(self) -> "World":
        """setup's keys and accounts in a format-2 log, with root-registered reviewers; HB-GT-METRO v1
        is registered as spec section 7.2's definition, not offset eligible (that needs reviews)."""
        c = self.client
        self._keys_and_accounts()
        for reviewer, role in ((self.validator, "validator"), (self.validator_2, "validator"),
                               (self.expert, "expert"), (self.expert_2, "expert")):
            c.register_key(self.root, reviewer, [role])
        c.register_methodology(self.admin, "HB-GT-METRO", 1, "Urban rail trips", "green_travel", METRO_DEFINITION, False)
        return self

    def _keys_and_accounts(self) -> None:
        c = self.client
        c.register_key(self.root, self.admin, ["admin"])
        c.register_key(self.admin, self.wuhan, ["platform"])
        c.register_key(self.admin, self.grid, ["platform"])
        c.register_key(self.admin, self.ets, ["ets"])
        for holder in (self.steel, self.mall, self.alice, self.bob):
            c.register_key(self.admin, holder, [])
        c.open_account(self.admin, "wuhan-platform", "platform", "Wuhan platform", "420100", [self.wuhan])
        c.open_account(self.admin, "grid-platform", "platform", "Grid platform", "420500", [self.grid])
        c.open_account(self.admin, "steel-co", "compliance_entity", "Steel works", "420200", [self.steel])
        c.open_account(self.admin, "mall-co", "enterprise", "Mall", "420100", [self.mall])
        c.open_account(self.wuhan, "alice", "individual", "p-alice", "420100", [self.alice], platform="wuhan-platform")
        c.open_account(self.admin, "bob", "individual", "p-bob", "420100", [self.bob], platform=None)

    def records(self, count: int, day: str = "2026-01-05", reduction_g: int = 100, act_prefix: str | None = None) -> list[dict]:
        """count activity records of HB-GT-METRO on `day`; in a format-2 log spec 7.4's records, one
        person each (so no daily cap applies), their reduction_g by the formula."""
        if self.registry.log_format == 2:
            from format2_records import metro_record
            numbers = [next(self._activity) for _ in range(count)]
            return [metro_record(f"act-{n}", f"p-{act_prefix or 'act'}-{n}", f"{day}T00:00:00.000000Z", 1000 + n,
                                 entry=f"S{n}") for n in numbers]
        result = []
        for _ in range(count):
            n = next(self._activity)
            act = f"{act_prefix or 'act'}-{n}"
            result.append(activity_record(f"act-{n}", act, f"{day}T08:00:00.000000Z", reduction_g + n % 7,
                                          f"p-{n % 13}", {"distance_m": 1000 + n}))
        return result

    def batch(self, batch_id: str, records: list[dict], *, platform: str = "wuhan-platform", methodology: str = "HB-GT-METRO",
              period: tuple[str, str] = ("2026-01-01", "2026-01-31")):
        signer = self.wuhan if platform == "wuhan-platform" else self.grid
        return self.client.batch(signer, batch_id, platform, methodology, 1, period[0], period[1], records)

    def history(self) -> "World":
        """An issuance, transfers, one retirement of each purpose, a surrender, a claim, a cancellation."""
        c = self.client
        records = self.records(40)
        self.batch("wh-2026-01", records)
        amount_g = sum(r["reduction_g"] for r in records)
        c.issue(self.admin, "iss-1", "wuhan-platform", "HB-GT-METRO", 2026, "420100", amount_g, ["wh-2026-01"])
        c.issue(self.admin, "iss-2", "mall-co", "HB-RS-RECYCLE", 2025, "420100", 30_000,
                evidence="e8281ba0cff227df12fba39ad99bd46713c35e6dc54327f3ff9d558e2d4a3d55")
        c.transfer(self.wuhan, "tr-1", "wuhan-platform", "steel-co", 2_000)
        c.transfer(self.wuhan, "tr-2", "wuhan-platform", "alice", 500)
        c.transfer(self.alice, "tr-3", "alice", "mall-co", 200)
        c.retire(self.steel, "ret-1", "steel-co", 1_500, "ets_offset", "steel-co")
        c.surrender(self.ets, "sur-1", "steel-co", 2026, 1_000_000, ["ret-1"])
        c.retire(self.mall, "ret-2", "mall-co", 10_000, "carbon_neutrality", "Spring fair 2026")
        c.claim(self.mall, "claim-1", "mall-co", "event", "Spring fair 2026", "2026-03-01", "2026-03-03", 9_500, ["ret-2"])
        c.retire(self.alice, "ret-3", "alice", 100, "voluntary", "p-alice")
        c.retire(self.mall, "ret-4", "mall-co", 50, "eco_compensation", "river restoration")
        c.cancel(self.admin, "can-1", "wuhan-platform", 100, "data correction")
        return self

    EVIDENCE = "e8281ba0cff227df12fba39ad99bd46713c35e6dc54327f3ff9d558e2d4a3d55"

    def history_v2(self) -> "World":
        """After setup_v2, format 2's flow (spec section 6): experts review HB-GT-METRO v1 and the
        admin makes it eligible; a validator approves one batch, which is issued, and rejects
        another, which never is; an evidence issuance; spends that choose their issuances; a
        surrender; a case opened and closed on mall-co, one left open on alice."""
        c = self.client
        c.review(self.expert, "rev-m1", "methodology", "HB-GT-METRO", version=1)
        c.review(self.expert_2, "rev-m2", "methodology", "HB-GT-METRO", version=1)
        c.set_eligibility(self.admin, "HB-GT-METRO", True, version=1)
        records = self.records(40)
        self.batch("wh-2026-01", records)
        c.review(self.validator, "rev-b1", "batch", "wh-2026-01")
        c.issue(self.admin, "iss-1", "wuhan-platform", "HB-GT-METRO", 2026, "420100",
                sum(r["reduction_g"] for r in records), ["wh-2026-01"])
        self.batch("wh-2026-02", self.records(3, act_prefix="feb"))
        c.review(self.validator_2, "rev-b2", "batch", "wh-2026-02", "rejected")
        c.review(self.validator, "rev-e1", "evidence", self.EVIDENCE)
        c.issue(self.admin, "iss-2", "mall-co", "HB-GT-METRO", 2026, "420100", 30_000, evidence=self.EVIDENCE)
        c.transfer(self.wuhan, "tr-1", "wuhan-platform", "steel-co", 2_000, issuances=["iss-1"])
        c.transfer(self.wuhan, "tr-2", "wuhan-platform", "alice", 500)
        c.retire(self.steel, "ret-1", "steel-co", 1_500, "ets_offset", "steel-co")
        c.surrender(self.ets, "sur-1", "steel-co", 2026, 1_000_000, ["ret-1"])
        c.hold(self.admin, "hold-1", "mall-co", True, "case-7", "a court order")
        c.hold(self.admin, "hold-2", "mall-co", False, "case-7", "the order was lifted")
        c.retire(self.mall, "ret-2", "mall-co", 10_000, "carbon_neutrality", "Spring fair 2026", issuances=["iss-2"])
        c.hold(self.admin, "hold-3", "alice", True, "case-8", "an inquiry")
        c.cancel(self.admin, "can-1", "wuhan-platform", 100, "data correction", issuances=["iss-1"])
        return self
