"""Shared fixtures for the robot tests: the real logs (skipped when shared/data is absent)."""

from __future__ import annotations

from pathlib import Path

import pytest

from quartet.core.errors import SourceMissingError


def _data() -> Path | None:
    try:
        from quartet.core.paths import shared_data

        p = shared_data("velociroach")
    except SourceMissingError:
        return None
    return p if p.is_dir() else None


@pytest.fixture(scope="session")
def real_dir() -> Path:
    p = _data()
    if p is None:
        pytest.skip("shared/data/velociroach not available")
    return p


@pytest.fixture(scope="session")
def log8(real_dir: Path):
    from quartet.robot.telemetry import read_log

    return read_log(real_dir / "2016.10.08_19.11.34_trial_imudata.txt")


@pytest.fixture(scope="session")
def log4(real_dir: Path):
    from quartet.robot.telemetry import read_log

    return read_log(real_dir / "2016.10.08_20.17.55_trial_imudata.txt")
