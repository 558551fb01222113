"""Where the conformance fixtures live: `../shared/conformance/` beside the checkout.

A parity test is skipped only when the whole `../shared/conformance` folder is absent (a bare
clone elsewhere), and never where `HUMANSSL_REQUIRE_FIXTURES=1` is set, as `.ci/run` sets it:
there an absent folder fails every parity test. A single fixture file missing from a present
folder always fails the test that asks for it, so a renamed or lost file cannot quietly turn a
parity test into a skip.
"""

import os
from pathlib import Path

import pytest

CONFORMANCE = Path(__file__).resolve().parents[2] / "shared" / "conformance"
REQUIRED = os.environ.get("HUMANSSL_REQUIRE_FIXTURES") == "1"
SKIP_ALL = not CONFORMANCE.is_dir() and not REQUIRED
ABSENT = f"no conformance fixtures: {CONFORMANCE} is not beside the checkout"


def conformance(*parts: str) -> Path:
    """Path of one fixture file, e.g. conformance("solider", "mini_swin_io.npz"); a test that
    asks for a file that is not there fails with its name."""
    path = CONFORMANCE.joinpath(*parts)
    if not path.exists():
        pytest.fail(f"conformance fixture {path} is missing" + ("" if CONFORMANCE.is_dir() else f" ({ABSENT})"))
    return path


def needs_fixture(*parts: str):
    """Marker for a test that reads the fixture file `parts`. Before the test runs, conftest.py
    hands every such file to `require_fixture`: the test is skipped only when the whole fixture
    folder is absent and not required (see the module doc), and fails naming the file when that
    one file is missing."""
    return pytest.mark.conformance_file(*parts)


def require_fixture(*parts: str) -> Path:
    """Inside a test or pytest fixture: the file's path, or a skip under the same rule as
    `needs_fixture`."""
    if SKIP_ALL:
        pytest.skip(ABSENT)
    return conformance(*parts)
