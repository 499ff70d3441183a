"""The repository's copy of the format (spec/) is its upstream's byte for byte, where the upstream
`../shared` sits beside the repository: a later revision of the spec is noticed, not drifted from.
A fresh clone has no upstream beside it: there these tests are skipped, spec/ is the reference."""

from pathlib import Path

import pytest
from spec_paths import METHODOLOGY_SOURCES, SPEC, UPSTREAM_METHODOLOGY_SOURCES, UPSTREAM_SPEC

# The repository's own files in spec/, not in the upstream's folder: the note on the copy's origin
# and the methodology sources, which upstream keeps beside the spec (compared on their own below).
REPOSITORY_ONLY = frozenset({"README.md", "methodology-sources.md"})
REFRESH = "refresh the copy as spec/README.md says"

needs_upstream_spec = pytest.mark.skipif(
    not UPSTREAM_SPEC.is_dir(),
    reason=f"no upstream ../shared/spec beside the repository ({UPSTREAM_SPEC}): "
           "nothing to compare spec/ with",
)


def files_under(folder: Path) -> dict[str, Path]:
    """Every file below `folder`, by its path relative to it (with / as separator)."""
    return {path.relative_to(folder).as_posix(): path
            for path in folder.rglob("*") if path.is_file()}


@needs_upstream_spec
def test_the_copy_holds_exactly_the_upstream_files():
    copied = set(files_under(SPEC)) - REPOSITORY_ONLY
    upstream = set(files_under(UPSTREAM_SPEC))
    assert sorted(upstream - copied) == [], f"upstream files missing from spec/: {REFRESH}"
    assert sorted(copied - upstream) == [], f"files in spec/ that upstream no longer has: {REFRESH}"


@needs_upstream_spec
def test_every_copied_file_is_byte_identical_to_upstream():
    differing = [name for name, upstream in sorted(files_under(UPSTREAM_SPEC).items())
                 if (SPEC / name).is_file() and (SPEC / name).read_bytes() != upstream.read_bytes()]
    assert differing == [], f"spec/ differs from upstream: {REFRESH}"


@pytest.mark.skipif(
    not UPSTREAM_METHODOLOGY_SOURCES.is_file(),
    reason=f"no upstream ../shared/methodology-sources.md beside the repository "
           f"({UPSTREAM_METHODOLOGY_SOURCES}): nothing to compare spec/methodology-sources.md with",
)
def test_the_methodology_sources_are_byte_identical_to_upstream():
    assert METHODOLOGY_SOURCES.read_bytes() == UPSTREAM_METHODOLOGY_SOURCES.read_bytes(), REFRESH
