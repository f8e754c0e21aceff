"""One session-scoped SparkSession (local[2], UTC, Delta, small shuffles) for the whole suite."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SAMPLES = Path(os.environ.get("FLOWSPARK_SAMPLES", REPO.parent / "shared" / "samples"))


@pytest.fixture(scope="session")
def cfg():
    from flowspark.config import load_config, with_overrides

    return with_overrides(
        load_config("local"), spark={"master": "local[2]", "shuffle_partitions": 2, "driver_memory": "1g"}
    )


@pytest.fixture(scope="session")
def spark(cfg):
    from flowspark.session import create_session

    session = create_session(cfg)
    yield session
    session.stop()


@pytest.fixture(scope="session")
def samples() -> Path:
    if not SAMPLES.exists():
        pytest.skip(f"shared samples not found at {SAMPLES}")
    return SAMPLES
