"""Linearised scattering: the Born operator of the FD solver and the analytic back-projection.

Notes
-----
The Born operator is the Jacobian of :func:`msinv.scattering.simulate` at ``eta = 0``,
computed with the background solver (:meth:`HelmholtzSolver.jvp` / ``vjp``). The analytic
far-field Born map (plane-wave asymptotics of :math:`\\Phi`) is

.. math:: (F^\\omega\\eta)(\\hat r, s) = \\frac{\\omega^2 e^{i\\pi/4}}{\\sqrt{8\\pi\\omega}}
          \\int e^{i\\omega (s - \\hat r)\\cdot y}\\,\\eta(y)\\,dy,

the far-field pattern :math:`u_\\infty` of the Born field
(:math:`u_{sc} \\sim e^{i\\omega\\rho}\\rho^{-1/2} u_\\infty`). Near-field data on the circle of
radius ``R`` map to the far field mode by mode:
:math:`\\hat u^\\infty_m = \\sqrt{2/(\\pi\\omega)}\\, e^{-i\\pi/4} (-i)^m \\hat u_m / H^{(1)}_m(\\omega R)`.
The back-projection is :math:`\\alpha^\\omega = (F^\\omega)^* u_\\infty`.
"""

from __future__ import annotations

import numpy as np
from scipy.special import hankel1

from msinv.core.errors import UserInputError
from msinv.core.operator import LinearOperator
from msinv.scattering.geometry import Geometry
from msinv.scattering.helmholtz import HelmholtzSolver
from msinv.scattering.schemes import Scheme
from msinv.scattering.spec import ForwardSpec, as_spec


def _freq_list(freqs) -> tuple[float, ...]:
    freqs = tuple(float(f) for f in np.atleast_1d(freqs))
    if not freqs or min(freqs) <= 0:
        raise UserInputError(f"freqs={freqs}: expected at least one frequency > 0")
    return freqs


class BornOperator(LinearOperator):
    """Linearisation of ``simulate`` at ``eta = 0``: real ``(n, n)`` -> ``(n_freq, n_rec, n_src)``.

    Parameters
    ----------
    geometry : Geometry or ForwardSpec
        Grid and acquisition, or a forward model whose fields the keywords override.
    freqs : sequence of float
        Ordinary frequencies (> 0).
    scheme : str, int or Scheme, optional
        Scheme of the background solver (default: the spec's, :data:`~msinv.scattering.spec.DEFAULT_SCHEME` for a geometry).
    dtype : {numpy.complex128, numpy.complex64}, optional
        Default complex128.
    receiver_interpolation : {"representation", "cubic", "bilinear"}, optional

    Notes
    -----
    With the representation reader the Born data need no solve at all:
    :math:`\\delta\\Lambda = M(\\delta\\eta\\, u_{in})`. With an interpolating reader,
    :math:`\\delta\\Lambda = P A_0^{-1}(-\\omega^2 \\delta\\eta\\, u_{in})`.
    """

    real_model = True

    def __init__(
        self,
        geometry: Geometry | ForwardSpec,
        freqs,
        *,
        scheme: Scheme | str | int | None = None,
        dtype=np.complex128,
        receiver_interpolation: str | None = None,
    ):
        spec = as_spec(
            geometry, scheme=scheme, dtype=dtype, receiver_interpolation=receiver_interpolation
        )
        self.geometry = geometry = spec.geometry
        self.freqs = _freq_list(freqs)
        self.dtype = spec.np_dtype
        zero = np.zeros((geometry.n, geometry.n))
        self._solvers = [HelmholtzSolver(spec, zero, f) for f in self.freqs]
        self.shape_in = (geometry.n, geometry.n)
        self.shape_out = (len(self.freqs), geometry.n_receivers, geometry.n_sources)

    def forward(self, x: np.ndarray) -> np.ndarray:
        """``(n, n)`` real contrast -> ``(n_freq, n_rec, n_src)`` complex Born data."""
        return np.stack([s.jvp(np.real(x)) for s in self._solvers])

    def adjoint(self, y: np.ndarray) -> np.ndarray:
        """``(n_freq, n_rec, n_src)`` complex -> ``(n, n)`` real (real part of the adjoint)."""
        return sum(s.vjp(yf) for s, yf in zip(self._solvers, y, strict=True))

    @classmethod
    def example(cls, rng: np.random.Generator) -> BornOperator:
        """A small instance (16 x 16, bilinear receivers, so the solver path is exercised)."""
        g = Geometry(n=16, pml_width=4, n_sources=6, n_receivers=5)
        return cls(g, [1.0, 2.0], scheme=4, receiver_interpolation="bilinear")


def _n2f_multiplier(geometry: Geometry, freq: float) -> np.ndarray:
    """``(n_receivers,)`` factors of the near-to-far transform, in numpy FFT mode order."""
    omega = 2 * np.pi * freq
    m = np.fft.fftfreq(geometry.n_receivers, 1.0 / geometry.n_receivers).round().astype(int)
    scale = np.sqrt(2 / (np.pi * omega)) * np.exp(-0.25j * np.pi)
    return scale * (-1j) ** m / hankel1(m, omega * geometry.receiver_radius)


def near_to_far(data: np.ndarray, geometry: Geometry, freq: float) -> np.ndarray:
    """Far-field pattern from near-field data on the receiver circle.

    Parameters
    ----------
    data : (n_receivers, n_sources) complex numpy.ndarray
        ``u_sc(R r_hat_r; s)`` at ``freq``.

    Returns
    -------
    (n_receivers, n_sources) complex128 numpy.ndarray
        ``u_inf(r_hat_r; s)``, exact for fields radiated from inside the circle and resolved by
        the ``n_receivers`` angular modes.
    """
    mult = _n2f_multiplier(geometry, freq)[:, None]
    return np.fft.ifft(mult * np.fft.fft(data, axis=0), axis=0)


def _near_to_far_adjoint(far: np.ndarray, geometry: Geometry, freq: float) -> np.ndarray:
    mult = _n2f_multiplier(geometry, freq)[:, None]
    return np.fft.ifft(np.conj(mult) * np.fft.fft(far, axis=0), axis=0)


class BackProjection(LinearOperator):
    r"""Analytic back-projection ``alpha = F* u_inf``: data ``(n_freq, n_rec, n_src)`` -> ``(n_freq, n, n)``.

    Parameters
    ----------
    geometry : Geometry
    freqs : sequence of float
        Ordinary frequencies (> 0).
    far_field_input : bool, default False
        If False (default) the input is near-field data on the receiver circle and is first
        mapped to the far field (:func:`near_to_far`); if True it is already a far-field
        pattern.

    Notes
    -----
    ``forward`` applies :math:`(F^\omega)^*` (after the near-to-far map) per frequency, with the
    trapezoid-weighted grid inner product; ``adjoint`` applies :meth:`far_field_born` (and the
    adjoint of the near-to-far map). ``F`` is rotation-equivariant: rotating the acquisition
    rotates ``alpha``.
    """

    def __init__(self, geometry: Geometry, freqs, *, far_field_input: bool = False):
        self.geometry = geometry
        self.freqs = _freq_list(freqs)
        self.far_field_input = bool(far_field_input)
        self.dtype = np.dtype(np.complex128)
        g = geometry
        self.shape_in = (len(self.freqs), g.n_receivers, g.n_sources)
        self.shape_out = (len(self.freqs), g.n, g.n)
        xx, yy = np.meshgrid(g.x, g.y)
        self._points = np.stack([xx.ravel(), yy.ravel()], axis=1)  # (n*n, 2), index iy*n+ix
        w1 = np.full(g.n, g.h)
        w1[[0, -1]] *= 0.5
        self._weights = np.outer(w1, w1).ravel()

    def _exponentials(self, freq: float):
        omega = 2 * np.pi * freq
        r_hat = np.stack(
            [np.cos(self.geometry.receiver_angles), np.sin(self.geometry.receiver_angles)], 1
        )
        e_r = np.exp(1j * omega * (self._points @ r_hat.T))  # (n*n, n_rec)
        e_s = np.exp(1j * omega * (self._points @ self.geometry.source_directions.T))
        const = omega**2 * np.exp(0.25j * np.pi) / np.sqrt(8 * np.pi * omega)
        return e_r, e_s, const

    def far_field_born(self, eta: np.ndarray) -> np.ndarray:
        """``F eta``: ``(n_freq, n, n)`` (or ``(n, n)``, broadcast) -> far-field ``(n_freq, n_rec, n_src)``."""
        n = self.geometry.n
        eta = np.broadcast_to(np.asarray(eta), (len(self.freqs), n, n))
        out = []
        for f, e in zip(self.freqs, eta, strict=True):
            e_r, e_s, const = self._exponentials(f)
            we = (self._weights * e.ravel())[:, None]
            out.append(const * (np.conj(e_r) * we).T @ e_s)
        return np.stack(out)

    def _far_field_born_adjoint(self, far: np.ndarray, freq: float) -> np.ndarray:
        e_r, e_s, const = self._exponentials(freq)
        alpha = np.conj(const) * self._weights * ((e_r @ far) * np.conj(e_s)).sum(axis=1)
        return alpha.reshape(self.geometry.n, self.geometry.n)

    def forward(self, x: np.ndarray) -> np.ndarray:
        """Back-project data ``(n_freq, n_rec, n_src)`` -> ``alpha`` ``(n_freq, n, n)`` complex."""
        out = []
        for f, d in zip(self.freqs, x, strict=True):
            far = d if self.far_field_input else near_to_far(d, self.geometry, f)
            out.append(self._far_field_born_adjoint(far, f))
        return np.stack(out)

    def adjoint(self, y: np.ndarray) -> np.ndarray:
        """``(n_freq, n, n)`` complex image -> ``(n_freq, n_rec, n_src)`` data."""
        out = self.far_field_born(y)
        if not self.far_field_input:
            out = np.stack(
                [
                    _near_to_far_adjoint(d, self.geometry, f)
                    for f, d in zip(self.freqs, out, strict=True)
                ]
            )
        return out

    @classmethod
    def example(cls, rng: np.random.Generator) -> BackProjection:
        """A small instance (16 x 16, 6 sources, 8 receivers, two frequencies)."""
        return cls(Geometry(n=16, pml_width=4, n_sources=6, n_receivers=8), [1.0, 2.0])
