"""One intra-op thread for the VLM tests: on a shared 2-core machine, two threads oversubscribe and small
convolutions slow down several-fold."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True, scope="session")
def _one_thread():
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)
