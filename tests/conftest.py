import os

os.environ.setdefault("MPLBACKEND", "Agg")

import functools

import pytest

from il2als.inputs import load_parameters
from il2als.solve import simulate


@functools.lru_cache(maxsize=None)
def run(profile: str, regimen: str, days: float = 640.0, step: str = "1 day"):
    """Cached simulation shared by the tests (the numerics are pure, so caching is safe)."""
    return simulate(load_parameters(profile), regimen, f"{days} day", step=step)


@pytest.fixture(scope="session")
def sim():
    return run


# Property tests are deterministic: the same examples on every run and every fresh clone (a failure seen once is
# seen again), with the example database off so a clone's history cannot change what runs.
from hypothesis import settings as _hyp_settings

_hyp_settings.register_profile("il2als", derandomize=True, database=None, print_blob=True)
_hyp_settings.load_profile("il2als")
