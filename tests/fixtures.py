"""Where the conformance fixtures live: `../shared/conformance/` beside the checkout.

CI has `../shared` beside the checkout; a bare clone elsewhere skips the parity tests
instead of failing on a missing file.
"""

from pathlib import Path

import pytest

CONFORMANCE = Path(__file__).resolve().parents[2] / "shared" / "conformance"


def conformance(*parts: str) -> Path:
    """Path of one fixture file, e.g. conformance("solider", "mini_swin_io.npz")."""
    return CONFORMANCE.joinpath(*parts)


def needs_fixture(*parts: str):
    """Skip marker for tests that read a fixture file."""
    path = conformance(*parts)
    return pytest.mark.skipif(not path.exists(), reason=f"conformance fixture {path} is not beside the checkout")
