"""A bundle the ledger exports passes the independent verifier; the same bundle altered does not."""

from __future__ import annotations

import json
import subprocess
import sys

from keys import Ed25519Key
from ledger.canonical import jcs
from ledger.export import export_bundle
from ledger.note import Witness
from world import World


def verify(bundle, trust) -> tuple[int, dict]:
    result = subprocess.run([sys.executable, "-m", "verifier.cli", "bundle", str(bundle), "--trust", str(trust),
                             "--json", "--require-activities"], capture_output=True, text=True, timeout=120)
    assert result.returncode in (0, 1), result.stderr
    return result.returncode, json.loads(result.stdout)


def test_exported_bundle_passes_and_an_altered_one_fails(database_url, tmp_path):
    witness = Witness("witness.test/w1", Ed25519Key.from_label("puhui-test/witness"))
    world = World(database_url, witnesses=(str(witness.key),), witness_quorum=1).setup().history()
    world.registry.checkpoint([witness])
    world.client.retire(world.mall, "ret-late", "mall-co", 7, "voluntary", "late")
    world.registry.checkpoint([witness])
    bundle, trust = tmp_path / "bundle", tmp_path / "trust.json"
    manifest = export_bundle(world.registry, bundle)
    trust.write_text(json.dumps(world.registry.trust()))
    assert manifest["tree_size"] == world.registry.size
    code, report = verify(bundle, trust)
    assert code == 0 and report["violations"] == [], report

    # Recycle a retired credit: rewrite the last retirement's serials to ones already retired.
    lines = (bundle / "log.jsonl").read_text().splitlines()
    last = json.loads(lines[-1])
    last["effects"]["serials"] = [[0, 7]]
    lines[-1] = jcs(last).decode()
    (bundle / "log.jsonl").write_text("\n".join(lines) + "\n")
    code, report = verify(bundle, trust)
    codes = {v["code"] for v in report["violations"]}
    assert code == 1 and {"NOT_HELD", "CHECKPOINT_ROOT"} <= codes, report
    world.registry.close()
