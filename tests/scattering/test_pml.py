"""The PML chosen per frequency (the default of ``Geometry.paper``): its reflection measured on
the paper's grid, against the same problem with a 40-node layer (whose reflection is below
1e-5 of the data), for the default scheme and the three disks of the disk oracle."""

import numpy as np
import pytest

from msinv.scattering import Geometry, simulate
from msinv.scattering.analytic import pixel_disk

DISKS = [(0.2, 0.2, (0.0, 0.0)), (0.3, 0.1, (0.05, -0.08)), (0.15, 0.4, (-0.1, 0.12))]
#: Bound on the relative data change from the chosen layer to the 40-node one, worst of the
#: three disks. Measured with compact-opt: 0.18% at f = 2.5 (10 nodes), 0.12% at f = 5 (8),
#: 0.20% at f = 10 (6 nodes); the published 20-node layer: 0.055%, 0.032%, 0.025%.
REFLECTION_BOUND = 3e-3


@pytest.mark.parametrize("freq", [2.5, 5.0, 10.0])
def test_auto_pml_reflection_on_the_paper_grid_is_bounded(freq):
    g = Geometry.paper(80)
    thick = Geometry.paper(80, pml_width=40)
    assert g.at(freq).pml_width < 20  # the point: thinner than the published layer
    worst = 0.0
    for radius, contrast, centre in DISKS:
        eta = pixel_disk(g, radius, contrast, centre)
        d = simulate(eta, g, [freq], dtype=np.complex128)[0]
        ref = simulate(eta, thick, [freq], dtype=np.complex128)[0]
        worst = max(worst, np.linalg.norm(d - ref) / np.linalg.norm(ref))
    assert worst <= REFLECTION_BOUND, f"f = {freq}: reflection {100 * worst:.3f}%"
