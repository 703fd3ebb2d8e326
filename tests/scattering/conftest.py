"""Fixtures of the scattering tests: a small acquisition and smooth test media."""

from __future__ import annotations

import numpy as np
import pytest

from msinv.scattering import Geometry


@pytest.fixture(scope="session")
def small_geometry() -> Geometry:
    """16 x 16 nodes, a 4-node PML, 6 sources and 8 receivers: seconds per solve."""
    return Geometry(n=16, pml_width=4, n_sources=6, n_receivers=8)


@pytest.fixture(scope="session")
def bump():
    """``bump(geometry, centre, width, amp)``: amp exp(-|x - centre|^2 / width) on the nodes."""

    def make(geometry: Geometry, centre=(0.1, -0.05), width=0.03, amp=0.15) -> np.ndarray:
        x, y = np.meshgrid(geometry.x, geometry.y)  # rows are y
        return amp * np.exp(-((x - centre[0]) ** 2 + (y - centre[1]) ** 2) / width)

    return make
