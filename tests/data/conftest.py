"""Fixtures for the data tests: each importer runs on its real source; a test skips only when the source cannot be
installed on this machine (the skip reason says what is missing)."""

from __future__ import annotations

import pytest

from quartet.core.errors import QuartetError
from quartet.data.registry import get


@pytest.fixture
def installed():
    """``installed(name)``: install source ``name`` if needed, else skip the test with the reason."""

    def ensure(name: str) -> None:
        info = get(name)
        if info.is_installed():
            return
        try:
            info.install()
        except QuartetError as e:
            pytest.skip(f"{name} cannot be installed here: {e}")
        if not info.is_installed():
            pytest.skip(f"{name} is still missing after install()")

    return ensure
