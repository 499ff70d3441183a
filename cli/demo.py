"""A realistic first quarter of the Hubei carbon-inclusive scheme, written through the signed path.

Every event is signed by its own actor's key and judged by the registry like any API client's.
The actors' keys (platforms, companies, citizens, the carbon market) derive from public labels:
they are demo keys, never to be used for anything real. The admin key is the registry's own.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Callable

from keys import Ed25519Key
from ledger.actors import Actor, Client, activity_record
from ledger.errors import Rejected
from ledger.registry import Registry, Signer

MONTHS = (("2026-01-01", "2026-01-31"), ("2026-02-01", "2026-02-28"), ("2026-03-01", "2026-03-31"))


@dataclass(frozen=True)
class DemoMethodology:
    methodology_id: str
    title: str
    sector: str
    params: dict
    offset_eligible: bool
    unit_input: str        # the input that scales the reduction
    factor_g: str          # grams CO2e per unit, a decimal string
    low: int
    high: int


# Factors from ../shared/methodology-sources.md (Wuhan platform) where published; marked illustrative otherwise.
METHODOLOGIES = (
    DemoMethodology("HB-GT-METRO", "Urban rail transit trips", "green_travel",
                    {"g_per_km": {"value": "78.4", "source": "Wuhan carbon-inclusive platform (Dialogue Earth reporting)"}},
                    True, "distance_km", "78.4", 2, 25),
    DemoMethodology("HB-GT-BUS", "Bus trips", "green_travel",
                    {"g_per_trip": {"value": "212.5", "source": "Wuhan carbon-inclusive platform, later revision"}},
                    True, "trips", "212.5", 1, 2),
    DemoMethodology("HB-GT-CYCLE", "Shared bicycle rides", "green_travel",
                    {"g_per_km": {"value": "93.3", "source": "Wuhan carbon-inclusive platform, later revision"}},
                    True, "distance_km", "93.3", 1, 8),
    DemoMethodology("HB-GC-BAG", "Own shopping bag instead of a new one", "green_consumption",
                    {"g_per_use": {"value": "5", "source": "Wuhan carbon-inclusive platform at launch (2023)"}},
                    False, "uses", "5", 1, 3),
    DemoMethodology("HB-RS-RECYCLE", "Household recycling", "resource_saving",
                    {"g_per_kg": {"value": "300", "source": None, "illustrative": True}},
                    False, "weight_kg", "300", 1, 12),
    DemoMethodology("HB-ES-POWER", "Household electricity saved", "energy_substitution",
                    {"g_per_kwh": {"value": "525", "source": "Wuhan carbon-inclusive platform (electricity saved)"}},
                    True, "kwh", "525", 1, 40),
)


def reduction_g(methodology: DemoMethodology, quantity: int) -> int:
    """factor x quantity in exact decimals, rounded half to even to whole grams."""
    return int((Decimal(methodology.factor_g) * quantity).quantize(Decimal(1), rounding=ROUND_HALF_EVEN))


def _pseudonym(n: int) -> str:
    return "p-" + hashlib.sha256(f"demo-citizen-{n}".encode()).hexdigest()[:12]


class Demo:
    def __init__(self, registry: Registry, admin_signer: Signer, *, records_per_batch: int = 400, seed: int = 2026,
                 progress: Callable[[str], None] = lambda _: None):
        self.registry, self.client = registry, Client(registry)
        self.records_per_batch = records_per_batch
        self.random = random.Random(seed)
        self.progress = progress
        self.rejections: list[tuple[str, Rejected]] = []
        self.admin = Actor(admin_signer, "admin")
        prefix = f"puhui-demo/{registry.origin}/"
        names = ("wuhan", "yichang", "grid", "aggregator", "ets", "steel", "cement", "mall", "expo", "chem",
                 "alice", "bob", "chen", "dong")
        self.actors = {n: Actor(Ed25519Key.from_label(prefix + n), n) for n in names}
        for name, actor in self.actors.items():
            setattr(self, name, actor)
        self._activity_counter = 0

    def run(self) -> None:
        self.cast()
        issued = self.quarter()
        self.market(issued)

    def cast(self) -> None:
        c, a = self.client, self.admin
        self.progress("keys, accounts and methodologies")
        roles = {"wuhan": ["platform"], "yichang": ["platform"], "grid": ["platform"], "aggregator": ["platform"], "ets": ["ets"]}
        for name, actor in self.actors.items():
            c.register_key(a, actor, roles.get(name, []))
        accounts = (("wuhan-platform", "platform", "Wuhan carbon-inclusive platform (武碳江湖)", "420100", "wuhan"),
                    ("yichang-platform", "platform", "Yichang carbon-inclusive platform", "420500", "yichang"),
                    ("grid-platform", "platform", "State Grid Hubei employee platform", "420100", "grid"),
                    ("aggregator", "platform", "Hubei low-carbon aggregator", "420100", "aggregator"),
                    # Serials move lowest first, so platforms keep reductions the carbon market does not
                    # admit (成熟一个,纳入一个) in a pool of their own, apart from offset-eligible ones.
                    ("wuhan-pool", "platform", "Wuhan platform: reductions not offset-eligible", "420100", "wuhan"),
                    ("yichang-pool", "platform", "Yichang platform: reductions not offset-eligible", "420500", "yichang"),
                    ("steel-co", "compliance_entity", "Wuhan steel works", "420100", "steel"),
                    ("cement-co", "compliance_entity", "Yichang cement plant", "420500", "cement"),
                    ("mall-co", "enterprise", "Optics Valley shopping mall", "420100", "mall"),
                    ("expo-org", "organization", "Wuhan spring expo organizer", "420100", "expo"),
                    ("chem-co", "enterprise", "Chemical works (court-ordered restoration)", "420600", "chem"))
        for account_id, kind, name, region, controller in accounts:
            c.open_account(a, account_id, kind, name, region, [self.actors[controller]])
        for n, person in enumerate(("alice", "bob", "chen", "dong")):
            c.open_account(self.wuhan, person, "individual", _pseudonym(10_000 + n), "420100",
                           [self.actors[person]], platform="wuhan-platform")
        for m in METHODOLOGIES:
            c.register_methodology(a, m.methodology_id, 1, m.title, m.sector, m.params, m.offset_eligible)

    def _records(self, methodology: DemoMethodology, period: tuple[str, str], platform: str, count: int) -> list[dict]:
        month = period[0][:7]
        last_day = int(period[1][8:])
        records = []
        for _ in range(count):
            self._activity_counter += 1
            n = self._activity_counter
            quantity = self.random.randint(methodology.low, methodology.high)
            day = self.random.randint(1, last_day)
            subject = _pseudonym(self.random.randint(1, 3000))
            occurred = f"{month}-{day:02d}T{self.random.randint(6, 22):02d}:{self.random.randint(0, 59):02d}:00.000000Z"
            act = f"{methodology.methodology_id}|{subject}|{occurred}|{quantity}"
            records.append(activity_record(f"{platform}-{n:07d}", act, occurred, reduction_g(methodology, quantity), subject,
                                           {methodology.unit_input: quantity}))
        return records

    def quarter(self) -> dict[str, list[str]]:
        """Monthly batches from each platform, issued to the platform that reported them."""
        c, a = self.client, self.admin
        plan = (("wuhan-platform", "wuhan", ("HB-GT-METRO", "HB-GT-BUS", "HB-GT-CYCLE", "HB-GC-BAG", "HB-RS-RECYCLE")),
                ("yichang-platform", "yichang", ("HB-GT-BUS", "HB-RS-RECYCLE")),
                ("grid-platform", "grid", ("HB-ES-POWER", "HB-GT-METRO")))
        by_id = {m.methodology_id: m for m in METHODOLOGIES}
        issued: dict[str, list[str]] = {}
        for period in MONTHS:
            self.progress(f"activity batches and issuances for {period[0][:7]}")
            wuhan_metro: list[dict] = []
            for platform, signer, methodology_ids in plan:
                region = "420500" if platform == "yichang-platform" else "420100"
                for methodology_id in methodology_ids:
                    m = by_id[methodology_id]
                    records = self._records(m, period, platform, self.records_per_batch)
                    if platform == "wuhan-platform" and methodology_id == "HB-GT-METRO":
                        wuhan_metro = records
                    if platform == "grid-platform" and methodology_id == "HB-GT-METRO" and wuhan_metro:
                        # Employees' commutes the city platform already reported: the registry must refuse them.
                        records[:3] = [dict(r, activity_id=f"grid-dup-{r['activity_id']}") for r in wuhan_metro[:3]]
                        records = self._submit_batch_dropping_duplicates(signer, platform, m, period, records)
                    else:
                        batch_id = f"{platform}-{m.methodology_id}-{period[0][:7]}"
                        c.batch(self.actors[signer], batch_id, platform, m.methodology_id, 1, period[0], period[1], records)
                    batch_id = f"{platform}-{m.methodology_id}-{period[0][:7]}"
                    issuance_id = f"iss-{batch_id}"
                    holder = platform if m.offset_eligible else platform.replace("-platform", "-pool")
                    c.issue(a, issuance_id, holder, m.methodology_id, 2026, region,
                            sum(r["reduction_g"] for r in records), [batch_id])
                    issued.setdefault(platform, []).append(issuance_id)
            self.registry.checkpoint()
        self.progress("an enterprise project issued on a verification report")
        report = hashlib.sha256(b"demo verification report: Optics Valley mall rooftop solar, 2025").hexdigest()
        c.issue(a, "iss-mall-solar-2025", "mall-co", "HB-ES-POWER", 2025, "420100", 25_000_000, evidence=report)
        return issued

    def _submit_batch_dropping_duplicates(self, signer: str, platform: str, m: DemoMethodology,
                                          period: tuple[str, str], records: list[dict]) -> list[dict]:
        batch_id = f"{platform}-{m.methodology_id}-{period[0][:7]}"
        try:
            self.client.batch(self.actors[signer], batch_id, platform, m.methodology_id, 1, period[0], period[1], records)
            return records
        except Rejected as rejection:
            self.rejections.append((batch_id, rejection))
        seen = self.registry.store
        with seen.engine.connect() as conn:
            known = seen.existing(conn, "fingerprint", [r["fingerprint"] for r in records])
        kept = [r for r in records if r["fingerprint"] not in known]
        self.client.batch(self.actors[signer], batch_id, platform, m.methodology_id, 1, period[0], period[1], kept)
        return kept

    def market(self, issued: dict[str, list[str]]) -> None:
        """Platforms sell pooled reductions; they are used for every purpose the scheme knows."""
        c, a, state = self.client, self.admin, self.registry.state
        self.progress("transfers, retirements, offsets, neutrality claims")
        wuhan_g = state.accounts["wuhan-platform"].active.size_g
        c.transfer(self.wuhan, "tr-steel-1", "wuhan-platform", "steel-co", wuhan_g // 3)
        pool_g = state.accounts["wuhan-pool"].active.size_g
        c.transfer(self.wuhan, "tr-expo-1", "wuhan-pool", "expo-org", pool_g // 3)
        c.transfer(self.wuhan, "tr-chem-1", "wuhan-pool", "chem-co", pool_g // 10)
        for person in ("alice", "bob", "chen", "dong"):
            c.transfer(self.wuhan, f"tr-{person}", "wuhan-pool", person, 2_000 + 500 * len(person))
        yichang_g = state.accounts["yichang-platform"].active.size_g
        c.transfer(self.yichang, "tr-cement-1", "yichang-platform", "cement-co", yichang_g // 2)
        grid_g = state.accounts["grid-platform"].active.size_g
        c.transfer(self.grid, "tr-aggregator-1", "grid-platform", "aggregator", grid_g // 2)
        c.transfer(self.aggregator, "tr-steel-2", "aggregator", "steel-co", grid_g // 4)

        steel_g = state.accounts["steel-co"].active.size_g
        c.retire(self.steel, "ret-steel-2026-1", "steel-co", steel_g // 2, "ets_offset", "steel-co")
        c.surrender(self.ets, "sur-steel-2026-1", "steel-co", 2026, 40_000_000_000, ["ret-steel-2026-1"])
        c.retire(self.steel, "ret-steel-2026-2", "steel-co", steel_g // 4, "ets_offset", "steel-co")
        c.surrender(self.ets, "sur-steel-2026-2", "steel-co", 2026, 40_000_000_000, ["ret-steel-2026-2"])
        cement_g = state.accounts["cement-co"].active.size_g
        c.retire(self.cement, "ret-cement-2026", "cement-co", cement_g, "ets_offset", "cement-co")
        c.surrender(self.ets, "sur-cement-2026", "cement-co", 2026, 12_000_000_000, ["ret-cement-2026"])
        try:  # the market tries to use one retirement twice: refused
            c.surrender(self.ets, "sur-cement-2026-again", "cement-co", 2026, 12_000_000_000, ["ret-cement-2026"])
        except Rejected as rejection:
            self.rejections.append(("sur-cement-2026-again", rejection))

        expo_g = state.accounts["expo-org"].active.size_g
        c.retire(self.expo, "ret-expo-2026", "expo-org", expo_g, "carbon_neutrality", "Wuhan spring expo 2026")
        c.claim(self.expo, "claim-expo-2026", "expo-org", "event", "Wuhan spring expo 2026", "2026-03-20", "2026-03-22",
                expo_g - expo_g // 20, ["ret-expo-2026"])
        c.retire(self.mall, "ret-mall-2025", "mall-co", 18_500_000, "carbon_neutrality", "Optics Valley mall, 2025 operations")
        c.claim(self.mall, "claim-mall-2025", "mall-co", "building", "Optics Valley mall", "2025-01-01", "2025-12-31",
                18_400_000, ["ret-mall-2025"])
        chem_g = state.accounts["chem-co"].active.size_g
        c.retire(self.chem, "ret-chem-restoration", "chem-co", chem_g, "eco_compensation",
                 "Han River wetland restoration (court order)")
        for person in ("alice", "bob", "chen"):
            c.retire(self.actors[person], f"ret-{person}", person, 1_000, "voluntary", f"{person}'s low-carbon month")
        c.cancel(a, "can-wuhan-correction", "wuhan-platform", 1_234, "platform data correction: duplicated card taps")
        self.registry.checkpoint()

