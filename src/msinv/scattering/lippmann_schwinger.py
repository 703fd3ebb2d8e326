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
cross-check the FD solver; it is not the production path (GMRES iterations grow with contrast
and frequency).
"""

from __future__ import annotations

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
    n, h = g.n, g.h
    length = np.sqrt(2) * (n - 1) * h
    size = int(2 ** np.ceil(np.log2((1 + np.sqrt(2)) * (n - 1) + 2)))
    xi = 2 * np.pi * np.fft.fftfreq(size, h)
    kernel = truncated_kernel_hat(np.hypot(xi[:, None], xi[None, :]), omega, length)

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
