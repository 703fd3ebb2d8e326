"""Batched FFT Lippmann--Schwinger forward solver in PyTorch (CPU or CUDA).

Notes
-----
The scattered field of the plane wave :math:`u_{in,s} = e^{i\\omega s\\cdot x}` solves

.. math:: u_{sc} - \\omega^2 \\Phi_L * (\\eta\\, u_{sc}) = \\omega^2 \\Phi_L * (\\eta\\, u_{in}),

with :math:`\\Phi_L` the truncated Green's function of Vico, Greengard and Ferrando (J. Comput.
Phys. 2016), exactly as the NumPy cross-check :func:`msinv.scattering.lippmann_schwinger.
lippmann_schwinger_data`; the convolution is applied on the ``2n x 2n`` circulant embedding of
the kernel's offsets (:func:`msinv.scattering.lippmann_schwinger.circulant_kernel_hat`). Every
(sample, frequency, source) triple is one column of a batched GMRES (:mod:`msinv.accel.gmres`);
the columns are cut into chunks of one frequency whose Krylov bases fit a memory budget. The
data are read with the representation formula, as :func:`msinv.scattering.simulate` does by
default:

.. math:: \\Lambda[r, s] = \\sum_j M_{rj}\\, \\eta_j\\, (u_{in,s} + u_{sc,s})_j,

``M`` the matrix of :func:`msinv.scattering.receivers.representation_matrix` (trapezoid weights,
:math:`\\omega^2 \\tfrac{i}{4} H_0^{(1)}`), so the layout, sign and convention of the data are
those of :func:`msinv.scattering.simulate`.

There is no PML and no stencil: the discretisation error is that of the trapezoid rule on the
pixelised contrast (worst of three disks on ``Geometry.paper(80)``: 0.16% at f = 2.5, 0.91% at
f = 10, see ``benchmarks/gpu_solver.py``), and the GMRES tolerance :data:`DEFAULT_RTOL` keeps the
solve's own error well below it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch

from msinv.accel.gmres import gmres
from msinv.core.errors import UserInputError
from msinv.scattering.geometry import Geometry
from msinv.scattering.helmholtz import _check_freq, check_eta, incident_fields
from msinv.scattering.lippmann_schwinger import circulant_kernel_hat
from msinv.scattering.receivers import representation_matrix
from msinv.scattering.spec import ForwardSpec, as_spec

#: Relative GMRES residual at which a column stops: on the paper(80) disks the data then
#: differ from a complex128 solve at 1e-10 by 1.6e-5 (benchmarks/gpu_solver.py), under a
#: hundredth of the disk budget; complex64 reaches about 1e-6, so there is a margin of 10.
DEFAULT_RTOL = 1e-5
#: Arnoldi steps per GMRES cycle.
DEFAULT_RESTART = 60
#: Cycles before a column that misses its tolerance raises.
DEFAULT_MAX_RESTARTS = 10
#: Memory budget of the Krylov bases on the CPU when none is given (bytes).
CPU_MEMORY_BYTES = 2**30
#: Share of the free GPU memory used when no budget is given.
GPU_MEMORY_FRACTION = 0.6

_DTYPES = {np.dtype(np.complex64): torch.complex64, np.dtype(np.complex128): torch.complex128}


@dataclass(frozen=True)
class SolveResult:
    """Data and convergence record of :func:`solve`.

    Attributes
    ----------
    data : (b, n_freq, n_receivers, n_sources) complex numpy.ndarray
        Scattering data, layout, sign and convention of :func:`msinv.scattering.simulate`.
    iterations : (b, n_freq, n_sources) int64 numpy.ndarray
        GMRES steps of each solve.
    residual : (b, n_freq, n_sources) float64 numpy.ndarray
        Final true relative residual of each solve.
    seconds : float
        Wall time of the solves (device synchronised).
    chunks : int
        GMRES batches run.
    columns_per_chunk : int
        Columns (sample, frequency, source) per batch at the end (halved after an
        out-of-memory error).
    device : str
        Where the solves ran.
    """

    data: np.ndarray
    iterations: np.ndarray
    residual: np.ndarray
    seconds: float
    chunks: int
    columns_per_chunk: int
    device: str


def resolve_device(device: str | torch.device | None) -> torch.device:
    """``None`` -> CUDA when available, else the CPU; an unavailable CUDA device raises."""
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise UserInputError(f"device={device!r}: expected 'cpu', 'cuda' or 'cuda:k'") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise UserInputError(f"device={device!r}: CUDA is not available on this machine")
    if dev.type not in ("cpu", "cuda"):
        raise UserInputError(f"device={device!r}: expected 'cpu' or 'cuda'")
    return dev


def bytes_per_column(n: int, restart: int, dtype=np.complex64) -> int:
    """Memory one GMRES column needs on ``n x n`` nodes: the Krylov basis (``restart + 1``
    vectors), the FFT buffers on the ``2n x 2n`` grid, the work vectors and the small
    Hessenberg/rotation matrices."""
    item = np.dtype(dtype).itemsize
    size = n * n
    return item * (size * (restart + 1 + 8) + 3 * 4 * size + 2 * (restart + 1) ** 2)


def _budget(device: torch.device, memory_bytes: int | None) -> int:
    if memory_bytes is not None:
        if memory_bytes <= 0:
            raise UserInputError(f"memory_bytes={memory_bytes!r}: expected > 0")
        return int(memory_bytes)
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(GPU_MEMORY_FRACTION * free)
    return CPU_MEMORY_BYTES


class _Frequencies:
    """Device copies of everything that depends on the frequency only: ``omega^2`` times the
    circulant kernel transform (n_freq, 2n, 2n), the incident fields (n_freq, n_src, n, n) and
    the representation matrices (n_freq, n_rec, n * n)."""

    def __init__(self, geometry: Geometry, freqs: list[float], dtype, device):
        omegas = [2 * np.pi * f for f in freqs]
        self.kernel = torch.stack(
            [
                torch.as_tensor(w**2 * circulant_kernel_hat(geometry, w), device=device)
                for w in omegas
            ]
        ).to(dtype)
        self.incident = torch.stack(
            [torch.tensor(incident_fields(geometry, w), device=device) for w in omegas]
        ).to(dtype)
        self.receivers = torch.stack(
            [torch.tensor(representation_matrix(geometry, w), device=device) for w in omegas]
        ).to(dtype)


def _solve_chunk(eta, f, sample_of, source_of, fr: _Frequencies, n, **gmres_options):
    """GMRES for one chunk of columns of frequency index ``f`` (``sample_of``/``source_of``
    give each column's sample and source); returns (data (k, n_rec), iterations, residual)."""
    size = 2 * n
    kernel = fr.kernel[f]  # broadcast over the chunk: every column has this frequency

    def convolve(q: torch.Tensor) -> torch.Tensor:
        """``omega^2 Phi_L * q`` for ``q`` (k, n, n)."""
        qh = torch.fft.fft2(q, s=(size, size))
        qh *= kernel
        return torch.fft.ifft2(qh)[:, :n, :n]

    def apply(v: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
        u = v.view(-1, n, n)
        return (u - convolve(eta[sample_of[cols]] * u)).reshape(v.shape)

    k = sample_of.numel()
    u_in = fr.incident[f, source_of]
    rhs = convolve(eta[sample_of] * u_in).reshape(k, n * n)
    result = gmres(apply, rhs, **gmres_options)
    total = (eta[sample_of] * (u_in + result.x.view(-1, n, n))).reshape(k, n * n)
    return total @ fr.receivers[f].T, result.iterations, result.residual


def solve(
    eta: np.ndarray,
    geometry: Geometry,
    freqs,
    *,
    dtype=np.complex64,
    device: str | torch.device | None = None,
    rtol: float = DEFAULT_RTOL,
    restart: int = DEFAULT_RESTART,
    max_restarts: int = DEFAULT_MAX_RESTARTS,
    memory_bytes: int | None = None,
) -> SolveResult:
    """Data of a batch of contrasts at several frequencies, with the convergence record.

    Parameters
    ----------
    eta : (n, n) or (b, n, n) float numpy.ndarray
        Contrast ``eta[iy, ix]`` (``1 + eta > 0``), ``n = geometry.n``.
    geometry : Geometry
        Grid and acquisition (the PML fields are not used: the integral equation needs none).
    freqs : float or sequence of float
        Ordinary frequencies ``f > 0``.
    dtype : {numpy.complex64, numpy.complex128}
        Precision of the solves and of the data.
    device : str or torch.device, optional
        ``"cpu"``, ``"cuda"`` or ``"cuda:k"``; default CUDA when available.
    rtol : float
        GMRES relative residual per solve (:data:`DEFAULT_RTOL`).
    restart, max_restarts : int
        Arnoldi steps per cycle and cycles allowed (:mod:`msinv.accel.gmres`).
    memory_bytes : int, optional
        Memory the GMRES batches may use; the columns (sample, frequency, source) are cut into
        chunks of ``memory_bytes // bytes_per_column(n, restart)``. Default: 60% of the free GPU
        memory, or :data:`CPU_MEMORY_BYTES` on the CPU. A chunk that still runs out of GPU
        memory (the estimate, or other processes on the GPU) is retried at half the size.

    Returns
    -------
    SolveResult
        ``data`` always has the batch axis (b, n_freq, n_receivers, n_sources).

    Raises
    ------
    msinv.accel.gmres.GMRESError
        When a solve misses ``rtol`` after ``max_restarts`` cycles.
    """
    etas = check_eta(eta, geometry)
    freq_list = [_check_freq(f) for f in np.atleast_1d(np.asarray(freqs, dtype=object))]
    if not freq_list:
        raise UserInputError("freqs is empty: expected at least one frequency > 0")
    np_dtype = np.dtype(dtype)
    if np_dtype not in _DTYPES:
        raise UserInputError(f"dtype={dtype!r}: expected numpy.complex64 or numpy.complex128")
    tdtype = _DTYPES[np_dtype]
    dev = resolve_device(device)
    g = geometry
    n, n_s, n_f, n_src = g.n, etas.shape[0], len(freq_list), g.n_sources
    per_col = bytes_per_column(n, restart, np_dtype)
    budget = _budget(dev, memory_bytes)
    max_cols = budget // per_col
    if max_cols < 1:
        raise UserInputError(
            f"memory budget {budget} bytes is below one GMRES column ({per_col} bytes at n={n}, "
            f"restart={restart}); give more memory or a smaller restart"
        )
    start = time.perf_counter()
    fr = _Frequencies(g, freq_list, tdtype, dev)
    eta_dev = torch.as_tensor(etas, device=dev).to(tdtype.to_real())
    # columns in (frequency, sample, source) order; a GMRES chunk holds one frequency (its
    # kernel is broadcast), its columns cut into near-equal chunks of at most max_cols
    per_freq = n_s * n_src
    total = n_f * per_freq
    col = torch.arange(per_freq, device=dev)
    sample_of, source_of = col // n_src, col % n_src
    data = torch.empty(total, g.n_receivers, dtype=tdtype, device=dev)
    iterations = torch.empty(total, dtype=torch.int64, device=dev)
    residual = torch.empty(total, dtype=tdtype.to_real(), device=dev)
    options = {"rtol": rtol, "restart": restart, "max_restarts": max_restarts}
    chunks = 0
    for f in range(n_f):
        lo = 0
        while lo < per_freq:
            left = per_freq - lo
            hi = lo + -(-left // -(-left // max_cols))
            try:
                d, it, res = _solve_chunk(
                    eta_dev, f, sample_of[lo:hi], source_of[lo:hi], fr, n, **options
                )
            except torch.cuda.OutOfMemoryError:
                # the budget is an estimate, and other processes may share the GPU: halve, retry
                if max_cols == 1:
                    raise
                max_cols //= 2
                torch.cuda.empty_cache()
                continue
            sl = slice(f * per_freq + lo, f * per_freq + hi)
            data[sl], iterations[sl], residual[sl] = d, it, res
            chunks, lo = chunks + 1, hi
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)
    seconds = time.perf_counter() - start
    shape = (n_f, n_s, n_src)
    data_np = data.view(*shape, g.n_receivers).permute(1, 0, 3, 2).cpu().numpy()
    return SolveResult(
        data=np.ascontiguousarray(data_np),
        iterations=iterations.view(shape).transpose(0, 1).cpu().numpy(),
        residual=residual.view(shape).transpose(0, 1).cpu().numpy().astype(np.float64),
        seconds=seconds,
        chunks=chunks,
        columns_per_chunk=int(max_cols),
        device=str(dev),
    )


def simulate(
    eta: np.ndarray,
    geometry: Geometry | ForwardSpec,
    freqs,
    *,
    dtype=None,
    receiver_interpolation: str | None = None,
    device: str | torch.device | None = None,
    rtol: float = DEFAULT_RTOL,
    restart: int = DEFAULT_RESTART,
    max_restarts: int = DEFAULT_MAX_RESTARTS,
    memory_bytes: int | None = None,
) -> np.ndarray:
    """The ``backend="torch"`` of :func:`msinv.scattering.simulate`: same layout, sign, dtype.

    Parameters
    ----------
    eta : (n, n) or (b, n, n) float numpy.ndarray
        Contrast(s).
    geometry : Geometry or ForwardSpec
        Acquisition, or a forward model whose ``dtype`` and ``receiver_interpolation`` are used
        (the keywords override them). The integral equation has no stencil: the spec's
        ``scheme`` names the FD discretisation these data stand in for and is not used. Only
        the representation reader exists here; another raises instead of being ignored.
    freqs : float or sequence of float
        Ordinary frequencies.
    device, rtol, restart, max_restarts, memory_bytes
        See :func:`solve`.

    Returns
    -------
    (n_freq, n_receivers, n_sources) or (b, n_freq, n_receivers, n_sources) complex array
    """
    spec = as_spec(geometry, dtype=dtype, receiver_interpolation=receiver_interpolation)
    if spec.receiver_interpolation != "representation":
        raise UserInputError(
            f"receiver_interpolation={spec.receiver_interpolation!r}: the Lippmann-Schwinger "
            "solver reads the receivers by the representation formula only"
        )
    result = solve(
        eta,
        spec.geometry,
        freqs,
        dtype=spec.np_dtype,
        device=device,
        rtol=rtol,
        restart=restart,
        max_restarts=max_restarts,
        memory_bytes=memory_bytes,
    )
    return result.data if np.ndim(eta) == 3 else result.data[0]
