import os

os.environ.setdefault("MPLBACKEND", "Agg")

import functools

import pytest

from il2als.parameters import load_parameters
from il2als.simulate import simulate


@functools.lru_cache(maxsize=None)
def run(profile: str, regimen: str, days: float = 640.0, step: str = "1 day"):
    """Cached simulation shared by the tests (the numerics are pure, so caching is safe)."""
    return simulate(load_parameters(profile), regimen, f"{days} day", step=step)


@pytest.fixture(scope="session")
def sim():
    return run
