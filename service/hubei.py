"""The Hubei carbon-inclusive scheme's policy, as a new registry's genesis rules record it.

Policy, not protocol: the rules (ledger.rules) read these values from the genesis event, so
another scheme's registry starts from its own.
"""

from __future__ import annotations

HUBEI_RULES = {"offset_cap_ppm": 100_000, "offset_vintage_years": 3, "offset_regions": ["42"]}
