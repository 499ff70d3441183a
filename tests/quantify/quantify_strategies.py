"""Hypothesis strategies shared by the quantify tests."""

from __future__ import annotations

from hypothesis import strategies as st


def inputs_for(methodology):
    """A strategy of valid inputs for a methodology."""
    fields = {}
    for f in methodology.inputs:
        if f.kind == "integer":
            value = st.integers(f.minimum, f.maximum)
        elif f.kind == "enum":
            value = st.sampled_from(f.values)
        else:
            value = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._-]{0,20}", fullmatch=True)
        fields[f.name] = value if f.required else st.one_of(st.none(), value)
    return st.fixed_dictionaries(fields).map(lambda d: {k: v for k, v in d.items() if v is not None})
