"""A second, independent forward solver: FFT Lippmann--Schwinger with GMRES (cross-check).

Notes
-----
The scattered field solves the integral equation

.. math:: u_{sc} - \\omega^2 \\Phi * (\\eta\\, u_{sc}) = \\omega^2 \\Phi * (\\eta\\, u_{in}),

with no PML and no finite differences. The convolution uses the truncated kernel of Vico,
Greengard and Ferrando (J. Comput. Phys. 2016): :math:`\\Phi_L = \\Phi` on :math:`|x| < L`, with
``L`` the diameter of the grid, whose Fourier transform is known in closed form,

.. math:: \\hat\\Phi_L(\\xi) = \\frac{1 + \\tfrac{i\\pi}{2} L \\left(|\\xi| J_1(L|\\xi|)
          H_0^{(1)}(\\omega L) - \\omega J_0(L|\\xi|) H_1^{(1)}(\\omega L)\\right)}{|\\xi|^2 - \\omega^2},

so a periodic convolution on a box of side ``>= 1 + L`` (zero padding) is exact on the grid for a
band-limited density. It is spectrally accurate on smooth media and is used in the tests to
cross-check the FD solver. This NumPy version solves one source at a time; its batched PyTorch
port, :mod:`msinv.accel.lippmann_schwinger` (same kernel, through
:func:`circulant_kernel_hat`), is the GPU data generator.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from scipy.sparse.linalg import LinearOperator, gmres
from scipy.special import hankel1, j0, j1

from msinv.scattering.geometry import Geometry
from msinv.scattering.helmholtz import _check_freq, check_eta, incident_fields
from msinv.scattering.receivers import representation_matrix


def truncated_kernel_hat(xi: np.ndarray, omega: float, length: float) -> np.ndarray:
    """Fourier transform of the truncated Green's function at wavenumbers ``|xi|`` (any shape)."""
    s = np.asarray(xi, dtype=float)
    near = np.abs(s**2 - omega**2) < 1e-9 * omega**2
    s = np.where(near, s * (1 + 1e-7), s)  # removable singularity at |xi| = omega
    num = 1 + 0.5j * np.pi * length * (
        s * j1(length * s) * hankel1(0, omega * length)
        - omega * j0(length * s) * hankel1(1, omega * length)
    )
    return num / (s**2 - omega**2)


def padded_size(n: int) -> int:
    """Side of the zero-padded periodic box of the truncated-kernel convolution on ``n`` nodes.

    The smallest power of two ``>= (1 + sqrt 2)(n - 1) + 2`` nodes: the box must hold the
    grid plus the kernel's support ``L = sqrt(2) (n - 1) h`` without wrap-around.
    """
    return int(2 ** np.ceil(np.log2((1 + np.sqrt(2)) * (n - 1) + 2)))


def _kernel_hat_on_box(geometry: Geometry, omega: float) -> tuple[np.ndarray, int]:
    """Truncated-kernel transform on the padded box (:func:`padded_size`) and its side."""
    n, h = geometry.n, geometry.h
    length = np.sqrt(2) * (n - 1) * h
    size = padded_size(n)
    xi = 2 * np.pi * np.fft.fftfreq(size, h)
    return truncated_kernel_hat(np.hypot(xi[:, None], xi[None, :]), omega, length), size


@lru_cache(maxsize=32)
def circulant_kernel_hat(geometry: Geometry, omega: float) -> np.ndarray:
    """The same discrete convolution as on the padded box, on the smaller ``2n x 2n`` grid.

    A convolution of a density on the ``n x n`` grid, read back on that grid, uses the kernel
    only at offsets ``d`` in ``[-(n - 1), n - 1]^2``. This takes those values from the padded
    box (inverse FFT of :func:`truncated_kernel_hat` there), places them in a ``2n x 2n``
    circulant embedding and returns its FFT, so that ``ifft2(K * fft2(pad_2n(f)))[:n, :n]``
    equals the padded-box result (2.5x fewer FFT points at n = 80: 160^2 against 256^2).

    Returns
    -------
    (2n, 2n) complex128 numpy.ndarray
        Read-only (cached per geometry and omega). ``K`` such that the convolution ``(Phi_L * f)`` on the grid (weights ``h^2``) is
        ``ifft2(K * fft2(f padded to 2n x 2n))[:n, :n]``.
    """
    n = geometry.n
    kernel_hat, _ = _kernel_hat_on_box(geometry, omega)
    spatial = np.fft.ifft2(kernel_hat)
    d = np.arange(-(n - 1), n)
    window = np.zeros((2 * n, 2 * n), dtype=complex)
    window[np.ix_(d % (2 * n), d % (2 * n))] = spatial[np.ix_(d, d)]
    out = np.fft.fft2(window)
    out.setflags(write=False)
    return out


def lippmann_schwinger_data(
    eta: np.ndarray, geometry: Geometry, freq: float, *, rtol: float = 1e-10
) -> np.ndarray:
    """Data ``(n_receivers, n_sources)`` of ``eta`` (n, n) by FFT Lippmann--Schwinger + GMRES.

    The receivers are read with the representation formula (as the FD solver's default), so
    the two solvers differ only in how they compute the field on the grid.
    """
    g = geometry
    eta = check_eta(eta, g, batch=False)[0]
    omega = 2 * np.pi * _check_freq(freq)
    n = g.n
    kernel, size = _kernel_hat_on_box(g, omega)

    def convolve(f: np.ndarray) -> np.ndarray:
        pad = np.zeros((size, size), dtype=complex)
        pad[:n, :n] = f
        return np.fft.ifft2(kernel * np.fft.fft2(pad))[:n, :n]

    def apply(v: np.ndarray) -> np.ndarray:
        u = v.reshape(n, n)
        return (u - omega**2 * convolve(eta * u)).ravel()

    op = LinearOperator((n * n, n * n), matvec=apply, dtype=complex)
    u_in = incident_fields(g, omega)
    m = representation_matrix(g, omega)
    data = np.empty((g.n_receivers, g.n_sources), dtype=complex)
    for s, ui in enumerate(u_in):
        rhs = (omega**2 * convolve(eta * ui)).ravel()
        u_sc, info = gmres(op, rhs, rtol=rtol, atol=0.0, restart=200, maxiter=50)
        if info != 0:
            raise RuntimeError(f"GMRES did not converge for source {s} (info={info})")
        data[:, s] = m @ (eta * (ui + u_sc.reshape(n, n))).ravel()
    return data
