"""A realistic first quarter of the Hubei carbon-inclusive scheme, written through the signed path.

Methodologies come from quantify's shipped library; platforms' raw activity records go through
quantify's ingestion (quantified, fingerprinted, duplicates and over-cap amounts dropped with a
reason), and every event is signed by its own actor's key and judged by the registry like any
API client's.
The actors' keys (platforms, companies, citizens, the carbon market) derive from public labels:
they are demo keys, never to be used for anything real. The admin key is the registry's own.
"""

from __future__ import annotations

import hashlib
import json
import random
import tempfile
from pathlib import Path
from typing import Callable

from keys import Ed25519Key, Signer
from ledger.errors import Rejected
from ledger.registry import Registry
from ledger.rules import batch_commitment
from quantify.ingest import IngestResult
from quantify.methodology import Methodology, eligibility_body, load_shipped, register_body
from service.actors import Actor, Client
from service.ingestion import ingest_and_submit

MONTHS = (("2026-01-01", "2026-01-31"), ("2026-02-01", "2026-02-28"), ("2026-03-01", "2026-03-31"))


# Which platform reports which methodologies, and which reductions each platform keeps apart
# because the carbon market does not (yet) admit them.
PLATFORMS = (
    ("wuhan-platform", "wuhan", "420100", ("HB-GT-METRO", "HB-GT-BUS", "HB-GT-CYCLE", "HB-GC-OWNBAG", "HB-RS-RECYCLE")),
    ("yichang-platform", "yichang", "420500", ("HB-GT-BUS", "HB-GT-WALK", "HB-RS-RECYCLE")),
    ("grid-platform", "grid", "420100", ("HB-RS-ELECSAVE", "HB-ES-NEVCHARGE", "HB-GT-METRO")),
    ("aggregator", "aggregator", "420100", ("HB-ES-ROOFPV", "HB-GC-SECONDHAND")),
)
OFFSET_CANDIDATES = ("HB-GT-METRO", "HB-GT-BUS")


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
        self.library = load_shipped()
        self.ingestion: dict[str, IngestResult] = {}

    def run(self) -> None:
        self.cast()
        with tempfile.TemporaryDirectory(prefix="puhui-demo-ingest-") as workdir:
            self.quarter(Path(workdir))
        self.market()

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
                    ("grid-pool", "platform", "Grid platform: reductions not offset-eligible", "420100", "grid"),
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
        for m in self.library.all():  # every version in order: v2 supersedes v1 for new batches
            c.submit(a, "methodology.register", register_body(m))

    def _raw_records(self, m: Methodology, period: tuple[str, str], platform: str, count: int) -> list[dict]:
        """What a platform's app reports: who (a pseudonym), when, and the methodology's inputs."""
        month, last_day = period[0][:7], int(period[1][8:])
        records = []
        for _ in range(count):
            self._activity_counter += 1
            inputs: dict[str, object] = {}
            for field in m.inputs:
                if field.kind == "integer":
                    low = max(field.minimum or 0, 1)
                    inputs[field.name] = self.random.randint(low, max(low, (field.maximum or 10_000) // 10))
                elif field.kind == "enum":
                    inputs[field.name] = self.random.choice(field.values)
                elif field.required or self.random.random() < 0.5:
                    inputs[field.name] = f"{field.name[:3].upper()}{self.random.randint(1, 400):04d}"
            day, hour, minute = self.random.randint(1, last_day), self.random.randint(0, 23), self.random.randint(0, 59)
            records.append({"activity_id": f"{platform}-{self._activity_counter:07d}",
                            "subject": _pseudonym(self.random.randint(1, 3000)),
                            "occurred_at": f"{month}-{day:02d}T{hour:02d}:{minute:02d}:00.000000Z", "inputs": inputs})
        return records

    def quarter(self, workdir: Path) -> None:
        """Monthly ingestion runs on each platform; each batch signed by its platform, then issued."""
        c, a = self.client, self.admin
        for period in MONTHS:
            self.progress(f"ingestion, batches and issuances for {period[0][:7]}")
            wuhan_metro: list[dict] = []
            for platform, signer, region, methodology_ids in PLATFORMS:
                for methodology_id in methodology_ids:
                    m = self.library.get(methodology_id)
                    raw = self._raw_records(m, period, platform, self.records_per_batch)
                    if platform == "wuhan-platform" and methodology_id == "HB-GT-METRO":
                        wuhan_metro = raw
                    if platform == "grid-platform" and methodology_id == "HB-GT-METRO":
                        # Employees' commutes the city platform reported too: the same acts, other ids.
                        raw[:3] = [dict(r, activity_id=f"grid-dup-{r['activity_id']}") for r in wuhan_metro[:3]]
                    run_id = f"{platform}-{methodology_id}-{period[0][:7]}"
                    result, _ = ingest_and_submit(self.registry, self.actors[signer], platform, m,
                                                  [json.dumps(r) for r in raw], run_id, workdir / run_id)
                    self.ingestion[run_id] = result
                    holder = platform if methodology_id in OFFSET_CANDIDATES else platform.replace("-platform", "-pool")
                    for batch in result.batches:
                        c.issue(a, f"iss-{batch.batch_id}", holder, methodology_id, 2026, region,
                                batch.body["total_g"], [batch.batch_id])
            self.registry.checkpoint()
        self._platform_ignores_ingestion()
        self.progress("an enterprise project issued on a verification report")
        report = hashlib.sha256(b"demo verification report: Optics Valley mall rooftop solar, 2025").hexdigest()
        c.issue(a, "iss-mall-solar-2025", "mall-co", "HB-ES-ROOFPV", 2025, "420100", 25_000_000, evidence=report)
        self.progress("the carbon market admits bus trips (成熟一个,纳入一个)")
        c.submit(a, "methodology.eligibility", eligibility_body(self.library.get("HB-GT-BUS"), True))

    def _platform_ignores_ingestion(self) -> None:
        """A platform that skips ingestion and re-reports a logged act: the registry refuses it."""
        logged = next(self.registry.batch_records(next(iter(self.registry.state.batches))))
        record = dict(json.loads(logged), activity_id="grid-replayed-0000001")
        body = {"batch_id": "grid-manual-2026-03", "platform": "grid-platform", "methodology_id": "HB-GT-METRO",
                "methodology_version": 1, "period_start": "2026-01-01", "period_end": "2026-03-31",
                **batch_commitment([record])}
        try:
            self.client.submit(self.grid, "activity.batch", body, [record])
        except Rejected as rejection:
            self.rejections.append(("grid-manual-2026-03", rejection))

    def market(self) -> None:
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
        c.transfer(self.grid, "tr-steel-2", "grid-platform", "steel-co", grid_g // 2)
        aggregator_g = state.accounts["aggregator"].active.size_g
        c.transfer(self.aggregator, "tr-expo-2", "aggregator", "expo-org", aggregator_g // 4)

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

