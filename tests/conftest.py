"""Shared test fixtures: every test gets a seeded generator; unseeded global randomness fails."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]


def _grav3d_example() -> Path:
    """$MSINV_GRAV3D_EXAMPLE, else shared/data/grav3d_v6_example beside the repository or beside
    its parent folder (a git worktree one level down)."""
    if "MSINV_GRAV3D_EXAMPLE" in os.environ:
        return Path(os.environ["MSINV_GRAV3D_EXAMPLE"])
    candidates = [p / "shared" / "data" / "grav3d_v6_example" for p in REPO.parents[:2]]
    return next((c for c in candidates if c.is_dir()), candidates[0])


#: The published GRAV3D v6 example (see :func:`_grav3d_example`).
GRAV3D_EXAMPLE = _grav3d_example()


@pytest.fixture
def rng(request) -> np.random.Generator:
    """A generator seeded from the test's name, so each test is reproducible on its own."""
    return np.random.default_rng(_stable_seed(request.node.nodeid))


def _stable_seed(text: str) -> int:
    import zlib

    return zlib.crc32(text.encode())


@pytest.fixture(autouse=True)
def _forbid_global_numpy_random(monkeypatch):
    """Calls to numpy's legacy global RNG are errors: pass a Generator instead."""

    def _unseeded(*_args, **_kwargs):
        raise AssertionError("unseeded numpy.random call: use the `rng` fixture")

    for name in ("rand", "randn", "random", "randint", "normal", "uniform", "choice", "shuffle"):
        monkeypatch.setattr(np.random, name, _unseeded)


@pytest.fixture
def grav3d_example() -> Path:
    """Path of the GRAV3D v6 example; skips with a clear message when it is absent."""
    if not GRAV3D_EXAMPLE.is_dir():
        pytest.skip(f"GRAV3D v6 example not found at {GRAV3D_EXAMPLE} (set MSINV_GRAV3D_EXAMPLE)")
    return GRAV3D_EXAMPLE
