"""The Hubei carbon-inclusive scheme's policy, as a new registry's genesis rules record it.

Policy, not protocol: the rules (ledger.rules) read these values from the genesis event, so
another scheme's registry starts from its own.
"""

from __future__ import annotations

HUBEI_RULES = {"offset_cap_ppm": 100_000, "offset_vintage_years": 3, "offset_regions": ["42"]}
# Format 2 (spec section 6, Reviews): one validation body's approval before an issuance, two
# methodology experts' before the carbon market admits a methodology version.
HUBEI_REVIEW_QUORUM = {"issuance": 1, "eligibility": 2}


def hubei_rules(log_format: int) -> dict[str, object]:
    """The genesis rules of a new Hubei registry of this log format."""
    return HUBEI_RULES if log_format == 1 else {**HUBEI_RULES, "review_quorum": HUBEI_REVIEW_QUORUM}
