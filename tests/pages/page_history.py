"""The small history the browser tests serve: a platform account holding one issuance."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "api"))  # served_registry, shared with the API tests
from served_registry import Cast, Served  # noqa: E402

from service.client import RegistryClient  # noqa: E402

PLATFORM = "wuhan-platform"


def platform_with_issuance(server: Served, amount_g: int = 2_500_000) -> RegistryClient:
    """Keys, the platform account, HB-GT-METRO and an issuance of amount_g to the platform; the client."""
    client = RegistryClient(server.url, trust=server.trust())
    cast = Cast(client)
    cast.register(cast.wuhan, ["platform"])
    cast.open(PLATFORM, "platform", [cast.wuhan])
    cast.methodology()
    cast.issue("iss-1", PLATFORM, amount_g)
    return client
