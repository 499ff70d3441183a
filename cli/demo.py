"""A realistic first quarter of the Hubei carbon-inclusive scheme, written through the signed path
into a format-2 log, with the whole review (论证审定) flow.

Methodologies come from quantify's shipped library, registered not offset eligible; two experts of
the methodology panel review a version before the carbon market admits it (one whose factor is
illustrative stays out, and the registry says why). Platforms' raw activity records go through
quantify's ingestion with the scheme's hub and fingerprint keys (daily pseudonyms, keyed
fingerprints, public inputs only; duplicates and over-cap amounts dropped with a reason; each
record's opening kept in the run's output, never logged). A validation body reviews each batch
before its issuance, and rejects one, which is never issued. Every event is signed by its own
actor's key and judged by the registry like any API client's.
The actors' keys (platforms, companies, citizens, the carbon market, validation bodies, experts)
derive from public labels: they are demo keys, never to be used for anything real. The root and
admin keys are the registry's own.
"""

from __future__ import annotations

import hashlib
import io
import json
import random
from pathlib import Path
from typing import Callable, NamedTuple

from keys import Ed25519Key, Signer
from ledger.errors import Rejected
from ledger.registry import Registry
from ledger.rules import batch_commitment
from quantify.ingest import BatchResult, IngestResult
from quantify.methodology import Methodology, load_shipped
from quantify.private import SchemeKeys
from service.actors import Actor, Client
from service.ingestion import ingest_against_log, submit_batch
from service.methodologies import eligibility_body_for_log, register_body_for_log

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
# The batch its validation body rejects (employees' commutes with no gate records behind them): it
# is never issued. Ingestion names a run's batches RUN_ID-YYYY-MM.
REJECTED_BATCH = "grid-platform-HB-GT-METRO-2026-02-2026-02"
# A methodology the panel approves whose factor is illustrative: the ledger keeps it out of offsets.
ILLUSTRATIVE_CANDIDATE = "HB-RS-RECYCLE"


class Refused(NamedTuple):
    """An event the registry refused, as the story meant it to be."""
    what: str
    rejection: Rejected


def _person(n: int) -> str:
    """A citizen's id at the identity hub: raw records name it, the log holds daily pseudonyms."""
    return "p-" + hashlib.sha256(f"demo-citizen-{n}".encode()).hexdigest()[:12]


def _individual(n: int) -> str:
    """An individual account's id: a pseudonym the platform gives the citizen, never a name
    (spec 7.4: an individual account holds no personal data, and its id is on public pages)."""
    return "c-" + hashlib.sha256(f"demo-individual-{n}".encode()).hexdigest()[:12]


INDIVIDUALS = tuple(_individual(n) for n in range(1, 5))  # the last one's account is held a while


def _report(text: str) -> bytes:
    """A review or verification report: a document kept off the log (only its SHA-256 is signed)."""
    return f"demo report: {text}".encode()


class Demo:
    def __init__(self, registry: Registry, root_signer: Signer, admin_signer: Signer, scheme_keys: SchemeKeys,
                 ingestion_dir: Path, *, records_per_batch: int = 400, seed: int = 2026,
                 progress: Callable[[str], None] = lambda _: None):
        if registry.log_format != 2:
            raise ValueError("the demo writes a format-2 history")
        self.registry, self.client = registry, Client(registry)
        self.scheme_keys, self.ingestion_dir = scheme_keys, ingestion_dir
        self.records_per_batch = records_per_batch
        self.random = random.Random(seed)
        self.progress = progress
        self.refusals: list[Refused] = []
        self.rejected_batches: list[str] = []  # reviewed as rejected by their validation body: never issued
        # A citizen with records, for the reader to look up on /me: the person id (at the identity
        # hub) of the first raw record, the same whatever records_per_batch is.
        self.citizen: str | None = None
        self.root, self.admin = Actor(root_signer, "root"), Actor(admin_signer, "admin")
        prefix = f"puhui-demo/{registry.origin}/"
        names = ("wuhan", "yichang", "grid", "aggregator", "ets", "steel", "cement", "mall", "expo", "chem",
                 "validator", "auditor", "expert_wang", "expert_li")
        self.actors = {n: Actor(Ed25519Key.from_label(prefix + n.replace("_", "-")), n.replace("_", "-"))
                       for n in names + INDIVIDUALS}
        for name in names:
            setattr(self, name, self.actors[name])
        self._activity_counter = 0
        self.library = load_shipped()
        self.ingestion: dict[str, IngestResult] = {}

    def run(self) -> None:
        self.cast()
        self.panel()
        self.quarter()
        self.market()

    def _refused(self, what: str, submit: Callable[[], object]) -> None:
        """An event the story shows refused; accepted, the demo stops (the registry broke a rule)."""
        try:
            submit()
        except Rejected as rejection:
            self.refusals.append(Refused(what, rejection))
            return
        raise AssertionError(f"the registry accepted {what}, which the demo shows refused")

    def cast(self) -> None:
        c, a = self.client, self.admin
        self.progress("keys, accounts and methodologies")
        roles = {"wuhan": ["platform"], "yichang": ["platform"], "grid": ["platform"], "aggregator": ["platform"], "ets": ["ets"]}
        # Two validation bodies and two experts of the methodology panel: roles root alone grants.
        by_root = {"validator": "validator", "auditor": "validator", "expert_wang": "expert", "expert_li": "expert"}
        for name, actor in self.actors.items():
            if name in by_root:
                c.register_key(self.root, actor, [by_root[name]])
            else:
                c.register_key(a, actor, roles.get(name, []))
        accounts = (("wuhan-platform", "platform", "Wuhan carbon-inclusive platform (武碳江湖)", "420100", "wuhan"),
                    ("yichang-platform", "platform", "Yichang carbon-inclusive platform", "420500", "yichang"),
                    ("grid-platform", "platform", "State Grid Hubei employee platform", "420100", "grid"),
                    ("aggregator", "platform", "Hubei low-carbon aggregator", "420100", "aggregator"),
                    # Platforms keep reductions the carbon market does not admit (成熟一个,纳入一个) in a
                    # pool of their own, apart from those it may admit.
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
        for n, person in enumerate(INDIVIDUALS):
            # An individual account's public name: a pseudonym the citizen chose, no personal data (spec 7.4).
            c.open_account(self.wuhan, person, "individual", f"citizen-{n + 1}", "420100",
                           [self.actors[person]], platform="wuhan-platform")
        for m in self.library.all():  # every version in order (v2 supersedes v1), none eligible unreviewed
            c.submit(a, "methodology.register", register_body_for_log(m, 2))

    def _expert_reviews(self, m: Methodology) -> None:
        for expert in (self.expert_wang, self.expert_li):
            self.client.review(expert, f"rev-{m.methodology_id}-v{m.version}-{expert.label}", "methodology",
                               m.methodology_id, version=m.version,
                               report=_report(f"{expert.label} on {m.methodology_id} v{m.version}"))

    def _admit(self, m: Methodology) -> None:
        self.client.submit(self.admin, "methodology.eligibility", eligibility_body_for_log(m, True, 2))

    def panel(self) -> None:
        """The carbon market asks to admit metro trips: refused before the panel's reviews, admitted
        after two experts approved. The panel approves recycling too, but its factor is illustrative:
        the ledger keeps it out of offsets."""
        self.progress("the methodology panel reviews; the carbon market admits metro trips")
        metro = self.library.get("HB-GT-METRO")
        self._refused(f"{metro.methodology_id} v{metro.version} offset eligible before its experts' reviews",
                      lambda: self._admit(metro))
        self._expert_reviews(metro)
        self._admit(metro)
        recycle = self.library.get(ILLUSTRATIVE_CANDIDATE)
        self._expert_reviews(recycle)
        body = {"methodology_id": recycle.methodology_id, "version": recycle.version, "offset_eligible": True}
        self._refused(f"{recycle.methodology_id} v{recycle.version} offset eligible, reviewed but with an illustrative "
                      f"factor", lambda: self.client.submit(self.admin, "methodology.eligibility", body))

    def _raw_records(self, m: Methodology, period: tuple[str, str], platform: str, count: int) -> list[dict]:
        """What a platform's app reports: who (the person id the identity hub knows), when, and the methodology's inputs."""
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
            # 08:00 to 23:59 in Beijing (UTC+8): each act on the Beijing date of its UTC date, a month's in its batch
            day, hour, minute = self.random.randint(1, last_day), self.random.randint(0, 15), self.random.randint(0, 59)
            records.append({"activity_id": f"{platform}-{self._activity_counter:07d}",
                            "subject": _person(self.random.randint(1, 3000)),
                            "occurred_at": f"{month}-{day:02d}T{hour:02d}:{minute:02d}:00.000000Z", "inputs": inputs})
        if self.citizen is None and records:
            self.citizen = records[0]["subject"]
        return records

    def quarter(self) -> None:
        """Monthly ingestion runs on each platform; each batch signed by its platform, reviewed by a
        validation body, then issued (or, rejected, never)."""
        c, a = self.client, self.admin
        for period in MONTHS:
            self.progress(f"ingestion, reviews and issuances for {period[0][:7]}")
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
                    holder = platform if methodology_id in OFFSET_CANDIDATES else platform.replace("-platform", "-pool")
                    for batch in self._ingest(self.actors[signer], platform, m, raw, run_id):
                        self._review_and_issue(batch, holder, region)
            self.registry.checkpoint()
        self._platform_ignores_ingestion()
        self.progress("an enterprise project issued on a verified report")
        report = hashlib.sha256(b"demo verification report: Optics Valley mall rooftop solar, 2025").hexdigest()
        c.review(self.auditor, "rev-mall-solar-2025", "evidence", report,
                 report=_report("site visit and meter readings, Optics Valley mall rooftop solar"))
        c.issue(a, "iss-mall-solar-2025", "mall-co", "HB-ES-ROOFPV", 2025, "420100", 25_000_000, evidence=report)
        self.progress("the carbon market admits bus trips (成熟一个,纳入一个)")
        bus = self.library.get("HB-GT-BUS")
        self._expert_reviews(bus)
        self._admit(bus)

    def _ingest(self, platform_signer: Actor, platform: str, m: Methodology, raw: list[dict], run_id: str
                ) -> list[BatchResult]:
        """A platform's ingestion run with the scheme's keys (the openings stay in the run's
        directory), each batch signed by the platform and appended."""
        source = io.BytesIO(b"".join(json.dumps(r).encode() + b"\n" for r in raw))
        result = ingest_against_log(self.registry, source, platform=platform, methodology=m, run_id=run_id,
                                    out_dir=self.ingestion_dir / run_id, scheme_keys=self.scheme_keys)
        self.ingestion[run_id] = result
        for batch in result.batches:
            submit_batch(self.client, platform_signer, batch)
        return result.batches

    def _review_and_issue(self, batch: BatchResult, holder: str, region: str) -> None:
        c, a, body = self.client, self.admin, batch.body

        def issue() -> object:
            return c.issue(a, f"iss-{batch.batch_id}", holder, body["methodology_id"], 2026, region, body["total_g"],
                           [batch.batch_id])
        if batch.batch_id == REJECTED_BATCH:
            c.review(self.validator, f"rev-{batch.batch_id}", "batch", batch.batch_id, "rejected",
                     report=_report(f"{batch.batch_id}: no gate records behind the commutes reported"))
            self._refused(f"issuance of batch {batch.batch_id}, rejected by its validation body", issue)
            self.rejected_batches.append(batch.batch_id)
            return
        c.review(self.validator, f"rev-{batch.batch_id}", "batch", batch.batch_id,
                 report=_report(f"{batch.batch_id}: sampled records match the platform's source data"))
        issue()

    def _platform_ignores_ingestion(self) -> None:
        """A platform that skips ingestion and re-reports a logged act: the registry refuses it."""
        logged = next(self.registry.batch_records(next(iter(self.registry.state.batches))))
        record = dict(json.loads(logged), activity_id="grid-replayed-0000001")
        body = {"batch_id": "grid-manual-2026-03", "platform": "grid-platform", "methodology_id": "HB-GT-METRO",
                "methodology_version": 1, "period_start": "2026-01-01", "period_end": "2026-03-31",
                **batch_commitment([record])}
        self._refused("batch grid-manual-2026-03, an act already in the log",
                      lambda: self.client.submit(self.grid, "activity.batch", body, [record]))

    def market(self) -> None:
        """Platforms sell pooled reductions; they are used for every purpose the scheme knows."""
        c, a, state = self.client, self.admin, self.registry.state
        self.progress("transfers, retirements, offsets, neutrality claims")
        wuhan_g = state.accounts["wuhan-platform"].active.size_g
        c.transfer(self.wuhan, "tr-steel-1", "wuhan-platform", "steel-co", wuhan_g // 3)
        pool_g = state.accounts["wuhan-pool"].active.size_g
        c.transfer(self.wuhan, "tr-expo-1", "wuhan-pool", "expo-org", pool_g // 3)
        c.transfer(self.wuhan, "tr-chem-1", "wuhan-pool", "chem-co", pool_g // 10)
        share_g = state.accounts["wuhan-pool"].active.size_g // 5  # a small demo's pool is small
        for n, person in enumerate(INDIVIDUALS):
            c.transfer(self.wuhan, f"tr-{person}", "wuhan-pool", person, min(3_500 + 500 * n, share_g))
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
        self._refused("surrender sur-cement-2026-again, of a retirement used already",
                      lambda: c.surrender(self.ets, "sur-cement-2026-again", "cement-co", 2026, 12_000_000_000,
                                          ["ret-cement-2026"]))

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
        voluntary_g = min(1_000, share_g // 2)
        # A citizen's voluntary retirement names no one: its beneficiary is public.
        beneficiary = "a citizen's low-carbon month, 2026-03"
        *others, held = INDIVIDUALS
        for person in others:
            c.retire(self.actors[person], f"ret-{person}", person, voluntary_g, "voluntary", beneficiary)
        # The platform reports duplicated card taps on one citizen's account: the admin holds it while
        # the case is open, and nothing leaves it; the case closed, they retire as the others did.
        c.hold(a, f"hold-{held}-1", held, True, "WH-2026-017", "platform data review: duplicated card taps")
        self._refused(f"retirement ret-{held} from a held account",
                      lambda: c.retire(self.actors[held], f"ret-{held}", held, voluntary_g, "voluntary", beneficiary))
        c.hold(a, f"hold-{held}-2", held, False, "WH-2026-017", "review closed: the taps were the platform's error")
        c.retire(self.actors[held], f"ret-{held}", held, voluntary_g, "voluntary", beneficiary)
        c.cancel(a, "can-wuhan-correction", "wuhan-platform", 1_234, "platform data correction: duplicated card taps")
        self.registry.checkpoint()

