"""Analytic oracles: scattering of a plane wave by a homogeneous disk (separation of variables),
and exact solutions of the Helmholtz equation with a smooth variable wavenumber (orders of
convergence)."""

from __future__ import annotations

import numpy as np
from scipy.special import h1vp, hankel1, jv, jvp

from msinv.core.errors import UserInputError
from msinv.scattering.geometry import Geometry


def disk_coefficients(omega: float, radius: float, contrast: float, n_max: int) -> np.ndarray:
    """Outgoing coefficients ``a_m``, ``m = -n_max..n_max``, of a disk centred at the origin.

    Notes
    -----
    With :math:`k_0 = \\omega`, :math:`k_1 = \\omega\\sqrt{1 + \\eta}`, continuity of ``u`` and
    :math:`\\partial_\\rho u` at :math:`\\rho = a` gives

    .. math:: a_m = i^m \\frac{k_1 J_m'(k_1 a) J_m(k_0 a) - k_0 J_m(k_1 a) J_m'(k_0 a)}
                          {k_0 J_m(k_1 a) H_m^{(1)\\prime}(k_0 a) - k_1 J_m'(k_1 a) H_m^{(1)}(k_0 a)},

    and :math:`u_{sc} = \\sum_m a_m H^{(1)}_m(k_0\\rho) e^{im(\\varphi - \\theta_s)}` for the
    incident wave :math:`e^{i k_0 (\\cos\\theta_s, \\sin\\theta_s)\\cdot x}`.
    """
    k0, k1 = omega, omega * np.sqrt(1 + contrast)
    m = np.arange(-n_max, n_max + 1)
    num = k1 * jvp(m, k1 * radius) * jv(m, k0 * radius) - k0 * jv(m, k1 * radius) * jvp(
        m, k0 * radius
    )
    den = k0 * jv(m, k1 * radius) * h1vp(m, k0 * radius) - k1 * jvp(m, k1 * radius) * hankel1(
        m, k0 * radius
    )
    return (1j) ** m * num / den


def disk_data(
    geometry: Geometry,
    freq: float,
    radius: float,
    contrast: float,
    centre: tuple[float, float] = (0.0, 0.0),
) -> np.ndarray:
    """Exact data of a homogeneous disk in msinv's convention.

    Parameters
    ----------
    geometry : Geometry
        Sources and receivers (the grid is not used).
    freq : float
        Ordinary frequency (``omega = 2 pi f``).
    radius : float
        Disk radius ``a`` (> 0); the receivers must lie outside the disk.
    contrast : float
        Constant ``eta`` inside the disk (``1 + eta > 0``).
    centre : (float, float), default (0.0, 0.0)
        Disk centre ``c``.

    Returns
    -------
    (n_receivers, n_sources) complex128 numpy.ndarray
        ``u_sc(R r_hat_r; s)``: outgoing (:math:`H^{(1)}`), physical sign, multiplied by the
        phase :math:`e^{i\\omega s\\cdot c}` of the shifted incident wave.
    """
    if radius <= 0 or 1 + contrast <= 0:
        raise UserInputError(
            f"radius={radius}, contrast={contrast}: expected radius > 0, 1 + contrast > 0"
        )
    omega = 2 * np.pi * float(freq)
    c = np.asarray(centre, dtype=float)
    rel = geometry.receiver_points - c
    rho = np.hypot(rel[:, 0], rel[:, 1])
    if rho.min() <= radius:
        raise UserInputError(
            f"a receiver lies inside the disk (distance {rho.min():.3g} <= radius {radius}): "
            "expected receivers outside it"
        )
    phi = np.arctan2(rel[:, 1], rel[:, 0])
    k1 = omega * np.sqrt(1 + contrast)
    n_max = int(np.ceil(k1 * radius + omega * (radius + np.hypot(*c)) + 30))
    a = disk_coefficients(omega, radius, contrast, n_max)
    m = np.arange(-n_max, n_max + 1)
    theta = geometry.source_angles
    h = hankel1(m[None, :], omega * rho[:, None])  # (r, m)
    ang = np.exp(1j * m[None, None, :] * (phi[:, None, None] - theta[None, :, None]))  # (r, s, m)
    data = np.einsum("rsm,rm,m->rs", ang, h, a)
    s = geometry.source_directions
    return data * np.exp(1j * omega * (s @ c))[None, :]


def pixel_disk(
    geometry: Geometry,
    radius: float,
    contrast: float,
    centre: tuple[float, float] = (0.0, 0.0),
    supersample: int = 16,
) -> np.ndarray:
    """Pixel-averaged disk: ``contrast`` times the fraction of each node's cell inside the disk.

    Returns
    -------
    (n, n) float64 numpy.ndarray
        ``eta[iy, ix]``; each node's cell is the square of side ``h`` centred on it, sampled at
        ``supersample**2`` points.
    """
    g = geometry
    sub = (np.arange(supersample) + 0.5) / supersample - 0.5
    xs = (g.x[:, None] + g.h * sub[None]).ravel()
    ys = xs if g.y is g.x else (g.y[:, None] + g.h * sub[None]).ravel()
    inside = (xs[None, :] - centre[0]) ** 2 + (ys[:, None] - centre[1]) ** 2 <= radius**2
    frac = inside.reshape(g.n, supersample, g.n, supersample).mean(axis=(1, 3))
    return contrast * frac


def curved_wave(
    geometry: Geometry, omega: float, curvature: float = 0.6, direction=(0.6, 0.8)
) -> tuple[np.ndarray, np.ndarray]:
    """An exact solution of :math:`\\Delta u + \\omega^2 (1 + \\eta) u = 0` with a smooth,
    variable ``eta``: :math:`u = e^{i\\phi}`, :math:`\\phi = \\omega\\, d\\cdot x + a(x^2 - y^2)`
    harmonic, so that :math:`\\Delta u = -|\\nabla\\phi|^2 u`.

    Parameters
    ----------
    geometry : Geometry
        Grid (contrast grid and PML).
    omega : float
        Background wavenumber.
    curvature : float, default 0.6
        ``a / omega``.
    direction : (float, float), default (0.6, 0.8)
        ``d``, a unit vector.

    Returns
    -------
    eta : (n, n) float64 numpy.ndarray
        :math:`|\\nabla\\phi|^2 / \\omega^2 - 1` on the contrast grid (not zero at its edge).
    u : (n_total, n_total) complex128 numpy.ndarray
        ``u`` on the computational grid (contrast grid and PML), ``u[iy, ix]``.
    """
    a = curvature * omega
    xx, yy = np.meshgrid(geometry.x, geometry.y)
    k2 = (direction[0] * omega + 2 * a * xx) ** 2 + (direction[1] * omega - 2 * a * yy) ** 2
    xt, yt = np.meshgrid(geometry.x_total, geometry.x_total)
    u = np.exp(1j * (omega * (direction[0] * xt + direction[1] * yt) + a * (xt**2 - yt**2)))
    return k2 / omega**2 - 1, u


def manufactured_bump(
    geometry: Geometry, omega: float, width: float = 0.08, centre=(0.04, -0.02)
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A manufactured solution with a smooth bump contrast: ``u = exp(-r^2 / 2 w^2)
    exp(i omega x)`` (``r`` the distance to ``centre``; below 1e-7 at the edge of the contrast
    grid for the defaults), ``eta`` a Gaussian of height 0.3 and width 0.1 at (0.05, -0.03),
    and ``f = Delta u + omega^2 (1 + eta) u`` exactly.

    Returns
    -------
    eta, u, f : (n, n) numpy.ndarray
        On the contrast grid; ``eta`` float64, ``u`` and ``f`` complex128.
    """
    xx, yy = np.meshgrid(geometry.x, geometry.y)
    dx, dy = xx - centre[0], yy - centre[1]
    r2 = dx**2 + dy**2
    u = np.exp(-r2 / (2 * width**2) + 1j * omega * xx)
    eta = 0.3 * np.exp(-((xx - 0.05) ** 2 + (yy + 0.03) ** 2) / (2 * 0.1**2))
    f = u * (r2 / width**4 - 2 / width**2 - 2j * omega * dx / width**2 + omega**2 * eta)
    return eta, u, f
