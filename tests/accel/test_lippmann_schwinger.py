"""The batched PyTorch Lippmann-Schwinger solver: against the NumPy solver it ports, the FD
solver it stands in for, the disk series, itself (batch = loop), and the GPU against the CPU."""

import numpy as np
import pytest
import torch

from msinv.accel.lippmann_schwinger import DEFAULT_RTOL, bytes_per_column, simulate, solve
from msinv.scattering import Geometry
from msinv.scattering import simulate as fd_simulate
from msinv.scattering.analytic import disk_data, pixel_disk
from msinv.scattering.dataset import sample_eta
from msinv.scattering.lippmann_schwinger import lippmann_schwinger_data
from msinv.scattering.spec import ForwardSpec

DISKS = [(0.2, 0.2, (0.0, 0.0)), (0.3, 0.1, (0.05, -0.08)), (0.15, 0.4, (-0.1, 0.12))]
BUDGET = {2.5: 0.01, 5.0: 0.01, 10.0: 0.02}  # acceptance: relative data error on paper(80)


def _rel(a, b, axis=None):
    return np.linalg.norm(a - b, axis=axis) / np.linalg.norm(b, axis=axis)


def _small():
    return Geometry(n=24, pml_width=6, n_sources=5, n_receivers=7)


def _bump(g):
    xx, yy = np.meshgrid(g.x, g.y)
    return 0.3 * np.exp(-((xx - 0.05) ** 2 + (yy + 0.03) ** 2) / (2 * 0.08**2))


@pytest.mark.parametrize(
    ("dtype", "rtol", "budget"), [(np.complex64, 1e-6, 1e-5), (np.complex128, 1e-12, 1e-10)]
)
def test_agrees_with_the_numpy_lippmann_schwinger_solver(dtype, rtol, budget):
    """Same integral equation, same kernel; the 2n circulant embedding of the kernel's offsets
    is exact, so only the GMRES tolerance and the precision separate the two."""
    g = _small()
    etas = np.stack([pixel_disk(g, 0.25, 0.3, (0.05, -0.1)), _bump(g)])
    freqs = [1.5, 4.0]
    result = solve(etas, g, freqs, dtype=dtype, device="cpu", rtol=rtol)
    assert result.data.dtype == dtype and result.data.shape == (2, 2, 7, 5)
    for i, eta in enumerate(etas):
        for k, f in enumerate(freqs):
            ref = lippmann_schwinger_data(eta, g, f, rtol=1e-13)
            assert _rel(result.data[i, k], ref) < budget, (i, f)
    assert result.residual.max() <= rtol and result.iterations.min() >= 1


def test_batch_equals_loop_and_memory_chunks_do_not_change_the_data():
    g = _small()
    etas = np.stack([sample_eta("squares", 3, i, g.n) for i in range(3)])
    freqs = [1.0, 3.0]
    batch = solve(etas, g, freqs, device="cpu")
    chunked = solve(etas, g, freqs, device="cpu", memory_bytes=7 * bytes_per_column(24, 60))
    assert chunked.chunks == 2 * 3 and batch.chunks == 2  # one frequency per chunk, <= 7 columns
    for i, eta in enumerate(etas):
        alone = simulate(eta, g, freqs, device="cpu")
        assert alone.shape == (2, 7, 5)
        assert _rel(alone, batch.data[i]) < 1e-6
        assert _rel(chunked.data[i], batch.data[i]) < 1e-6
    assert np.array_equal(chunked.iterations, batch.iterations)


@pytest.mark.parametrize("family", ["squares", "shepp_logan", "triangles"])
def test_agrees_with_the_fd_solver_within_the_disk_budget(family):
    """``simulate``'s defaults (FD order 8, complex64) and this solver on the same eta, n = 40
    at the points per wavelength of paper(80) (about 32, 16, 8)."""
    g = Geometry.paper(40)
    freqs = [f * 39 / 79 for f in BUDGET]
    eta = np.stack([sample_eta(family, 0, i, g.n) for i in range(2)])
    ours = simulate(eta, g, freqs, device="cpu")
    fd = fd_simulate(eta, g, freqs)
    err = _rel(ours, fd, axis=(2, 3)).max(axis=0)
    assert np.all(err <= list(BUDGET.values())), err


@pytest.mark.parametrize("disk", DISKS)
def test_disk_oracle_half_grid_same_points_per_wavelength(disk):
    """n = 40 at the points per wavelength of paper(80), as the FD solver's test."""
    g = Geometry.paper(40)
    freqs = [f * 39 / 79 for f in BUDGET]
    data = simulate(pixel_disk(g, *disk), g, freqs, device="cpu")
    for d, f, budget in zip(data, freqs, BUDGET.values(), strict=True):
        assert _rel(d, disk_data(g, f, *disk)) <= budget, f


@pytest.mark.slow
def test_disk_oracle_on_the_paper_grid():
    """The acceptance budget on paper(80), all three disks and frequencies, default rtol."""
    g = Geometry.paper(80)
    etas = np.stack([pixel_disk(g, *disk) for disk in DISKS])
    result = solve(etas, g, list(BUDGET), device="cpu")
    for i, disk in enumerate(DISKS):
        for k, (f, budget) in enumerate(BUDGET.items()):
            assert _rel(result.data[i, k], disk_data(g, f, *disk)) <= budget, (disk, f)
    assert result.residual.max() <= DEFAULT_RTOL


def test_scattering_simulate_dispatches_to_the_torch_backend():
    """``msinv.scattering.simulate`` with a torch spec is this solver (default device)."""
    g = _small()
    eta = np.stack([_bump(g), pixel_disk(g, 0.2, 0.1)])
    via_spec = fd_simulate(eta, ForwardSpec(g, backend="torch"), [1.0, 2.0])
    direct = simulate(eta, g, [1.0, 2.0])
    assert via_spec.dtype == np.complex64 and via_spec.shape == (2, 2, 7, 5)
    assert _rel(via_spec, direct) < 1e-6
    wide = simulate(eta, ForwardSpec(g, dtype="complex128"), [1.0], rtol=1e-10, device="cpu")
    assert wide.dtype == np.complex128 and _rel(wide, direct[:, :1]) < 1e-5


def test_simulate_refuses_what_it_cannot_honour():
    g = _small()
    eta = _bump(g)
    with pytest.raises(ValueError, match="representation formula only"):
        simulate(eta, g, [1.0], receiver_interpolation="bilinear", device="cpu")
    with pytest.raises(ValueError, match="below one GMRES column"):
        solve(eta, g, [1.0], device="cpu", memory_bytes=1000)
    with pytest.raises(ValueError, match="1 \\+ eta > 0"):
        solve(eta - 2, g, [1.0], device="cpu")
    with pytest.raises(ValueError, match="dtype"):
        solve(eta, g, [1.0], dtype=np.float32, device="cpu")
    with pytest.raises(ValueError, match="expected 'cpu', 'cuda'"):
        solve(eta, g, [1.0], device="gpu")


@pytest.mark.gpu
def test_cuda_agrees_with_the_cpu():
    if not torch.cuda.is_available():
        pytest.fail("the gpu marker was selected but CUDA is not available")
    g = Geometry.paper(40)
    freqs = [f * 39 / 79 for f in BUDGET]
    eta = np.stack([sample_eta(fam, 0, 0, g.n) for fam in ("squares", "shepp_logan")])
    cpu = solve(eta, g, freqs, device="cpu")
    gpu = solve(eta, g, freqs, device="cuda")
    assert gpu.device.startswith("cuda")
    assert _rel(gpu.data, cpu.data) < 1e-5
    assert np.abs(gpu.iterations - cpu.iterations).max() <= 1


def test_a_chunk_out_of_gpu_memory_is_retried_at_half_the_size(monkeypatch):
    import msinv.accel.lippmann_schwinger as ls

    g = _small()
    eta = _bump(g)
    reference = solve(eta, g, [1.0], device="cpu")
    real, calls = ls._solve_chunk, []

    def failing_once(eta_dev, f, sample_of, *args, **kwargs):
        calls.append(sample_of.numel())
        if len(calls) == 1:
            raise torch.cuda.OutOfMemoryError("simulated")
        return real(eta_dev, f, sample_of, *args, **kwargs)

    monkeypatch.setattr(ls, "_solve_chunk", failing_once)
    result = solve(eta, g, [1.0], device="cpu", memory_bytes=5 * bytes_per_column(24, 60))
    assert calls == [5, 2, 2, 1] and result.columns_per_chunk == 2 and result.chunks == 3
    assert _rel(result.data, reference.data) < 1e-6
