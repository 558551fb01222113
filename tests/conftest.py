"""Fixtures shared by test modules (pytest finds this file by its name)."""

import pytest
import torch


@pytest.fixture
def one_thread():
    """Torch on one thread for the test: two threads on a shared, busy CPU spend most of their
    time waiting for each other. Modules opt in with pytestmark = pytest.mark.usefixtures("one_thread")."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
