"""Where the tests find the format: the repository's own copy in spec/ (spec/README.md says whence),
so a fresh clone tests itself without anything beside it."""

from pathlib import Path

_REPOSITORY = Path(__file__).resolve().parent.parent

SPEC = _REPOSITORY / "spec"
VECTORS = SPEC / "vectors"
RFC9162_VECTORS = SPEC / "rfc9162-vectors"
METHODOLOGY_SOURCES = SPEC / "methodology-sources.md"

# The upstream the copy follows, where it happens to sit beside the repository.
UPSTREAM_SPEC = _REPOSITORY.parent / "shared" / "spec"
UPSTREAM_METHODOLOGY_SOURCES = _REPOSITORY.parent / "shared" / "methodology-sources.md"
