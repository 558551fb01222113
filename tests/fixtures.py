"""Where the conformance fixtures live: `../shared/conformance/` beside the checkout.

CI has `../shared` beside the checkout. Only a clone with no `../shared/conformance` at all
skips the parity tests; where the folder exists, a fixture file missing from it is a failure
(a renamed or lost file must not quietly turn a parity test into a skip).
"""

from pathlib import Path

import pytest

CONFORMANCE = Path(__file__).resolve().parents[2] / "shared" / "conformance"
ABSENT = f"no conformance fixtures: {CONFORMANCE} is not beside the checkout"


def conformance(*parts: str) -> Path:
    """Path of one fixture file, e.g. conformance("solider", "mini_swin_io.npz")."""
    return CONFORMANCE.joinpath(*parts)


def needs_fixture(*parts: str):
    """Marker for tests that read a fixture file: skipped only when the whole fixture folder is
    absent; the test itself then fails on a missing file."""
    return pytest.mark.skipif(not CONFORMANCE.is_dir(), reason=ABSENT)


def require_fixture(*parts: str) -> Path:
    """Inside a test or fixture: the file's path; skip if the fixture folder is absent, fail if
    only the file is."""
    if not CONFORMANCE.is_dir():
        pytest.skip(ABSENT)
    path = conformance(*parts)
    if not path.is_file():
        pytest.fail(f"conformance fixture {path} is missing from {CONFORMANCE}")
    return path
