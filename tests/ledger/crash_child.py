"""Appends events forever, printing each acknowledged one; the crash test kills it with SIGKILL."""

from __future__ import annotations

import random
import sys

from keys import Ed25519Key
from ledger.registry import Registry
from service.actors import Client
from world import actor


def main(url: str, seed: int) -> None:
    rng = random.Random(seed)
    registry = Registry.open(url, log_signer=Ed25519Key.from_label("puhui-test/log"))
    client = Client(registry)
    mall = actor("mall")
    n = 0
    while True:
        group = []
        for _ in range(rng.randint(1, 20)):
            n += 1
            tag = f"{seed}-{n}"
            if rng.random() < 0.5:
                body = {"retirement_id": f"ret-{tag}", "account": "mall-co", "amount_g": rng.randint(1, 50),
                        "purpose": "voluntary", "beneficiary": "crash test"}
                group.append((client.signed(mall, "retirement", body), None))
            else:
                body = {"transfer_id": f"tr-{tag}", "from": "mall-co", "to": "bob", "amount_g": rng.randint(1, 50)}
                group.append((client.signed(mall, "transfer", body), None))
        for result in registry.append_many(group):
            assert not hasattr(result, "code"), result
            print(f"ack {result.seq} {result.leaf_hash.hex()}", flush=True)
        if rng.random() < 0.3:
            registry.checkpoint()
            print("checkpoint", flush=True)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
