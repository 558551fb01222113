"""Fixtures shared by test modules (pytest finds this file by its name)."""

import pytest
import torch
from safetensors.torch import save_file

from humanssl.models.backbones import create_backbone
from tests.fixtures import require_fixture


def pytest_runtest_setup(item):
    """Check the conformance files a test names with `needs_fixture` before it runs."""
    for mark in item.iter_markers("conformance_file"):
        require_fixture(*mark.args)


@pytest.fixture
def one_thread():
    """Torch on one thread for the test: two threads on a shared, busy CPU spend most of their
    time waiting for each other. Modules opt in with pytestmark = pytest.mark.usefixtures("one_thread")."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def swin_mini_weights(tmp_path_factory):
    """A bare state-dict file of a randomly initialised (seed 0) mini Swin."""
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("w") / "swin_mini.safetensors"
    save_file({k: v.contiguous() for k, v in create_backbone("swin_mini").state_dict().items()}, str(path))
    return path
