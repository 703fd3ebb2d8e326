"""Dense G in chunks: equals the matrix-free forward, memory estimate, refusal."""

import numpy as np
import pytest
from discretize import TensorMesh

from msinv.gravity.forward import gz
from msinv.gravity.sensitivity import build_sensitivity, sensitivity_memory


def test_chunks_equal_forward_and_report_progress(rng):
    mesh = TensorMesh([np.full(5, 10.0), np.full(4, 10.0), np.full(3, 10.0)], origin=[0, 0, -30])
    st = np.column_stack([rng.uniform(0, 50, 11), rng.uniform(0, 40, 11), np.full(11, 1.0)])
    seen = []
    g = build_sensitivity(mesh, st, chunk=4, callback=lambda d, n: seen.append((d, n)))
    assert seen == [(4, 11), (8, 11), (11, 11)]
    rho = rng.uniform(-1, 1, mesh.n_cells)
    np.testing.assert_allclose(g @ rho, gz(mesh, st, rho), rtol=1e-12)
    assert sensitivity_memory(11, mesh.n_cells, np.float32) == 11 * mesh.n_cells * 4
    with pytest.raises(ValueError, match="GiB"):
        build_sensitivity(mesh, st, max_bytes=100)
    with pytest.raises(ValueError, match="dtype"):
        build_sensitivity(mesh, st, dtype=np.int32)
