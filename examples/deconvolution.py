"""Deconvolution (seed 000): a Gaussian blur plus noise, inverted three ways.

``y = k * x + e`` on a periodic grid: ``k`` a Gaussian blur, ``e`` white noise. The naive
inverse ``x = F^{-1}(Y / K)`` divides the noise by the blur's vanishing high-frequency response
and drowns the signal. Tikhonov, ``X = conj(K) Y / (|K|^2 + alpha)`` with ``alpha`` chosen by
the discrepancy principle, and a coarse-to-fine continuation (least squares restricted to
ever wider frequency bands, warm-started, stopped when the residual reaches the noise level)
both keep the noise down. The figure shows the signals and their amplitude spectra.

Run ``python examples/deconvolution.py [--out FIG.png]`` (default
``out/examples/deconvolution.png``; ``--update-docs`` rewrites ``docs/figures/deconvolution.png``).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from scipy.optimize import brentq

from msinv.core.continuation import Stage, continuation

TAU = 1.05  #: discrepancy-principle safety factor: stop at ||residual|| = TAU * noise norm


def problem(n: int, rng: np.random.Generator, *, sigma: float = 2.0, noise: float = 0.01):
    """A piecewise-smooth signal, its Gaussian kernel transfer function and noisy blurred data.

    Returns ``(x, K, y, noise_norm)``: ``x`` (n,), ``K`` (n,) complex transfer function of the
    blur (``sigma`` in samples), ``y`` (n,) data, ``noise_norm`` the norm of the added noise.
    """
    t = np.arange(n) / n
    x = (
        (np.abs(t - 0.3) < 0.08)
        + 0.6 * np.exp(-(((t - 0.65) / 0.04) ** 2))
        - 0.4 * (np.abs(t - 0.85) < 0.03)
    )
    xi = np.fft.fftfreq(n)
    k = np.exp(-0.5 * (2 * np.pi * xi * sigma) ** 2)  # transfer function of a unit-mass Gaussian
    e = noise * rng.standard_normal(n)
    y = np.fft.ifft(k * np.fft.fft(x)).real + e
    return x.astype(float), k, y, float(np.linalg.norm(e))


def naive(k: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Division by the transfer function."""
    return np.fft.ifft(np.fft.fft(y) / k).real


def tikhonov(k: np.ndarray, y: np.ndarray, delta: float) -> tuple[np.ndarray, float]:
    """Tikhonov solution with ``alpha`` by the discrepancy principle ``||Kx - y|| = TAU delta``."""
    yh = np.fft.fft(y)
    n = y.size

    def solve(alpha):
        return k.conj() * yh / (np.abs(k) ** 2 + alpha)

    def gap(log_alpha):
        r = k * solve(10.0**log_alpha) - yh
        return np.linalg.norm(r) / np.sqrt(n) - TAU * delta

    log_alpha = brentq(gap, -12, 4)
    return np.fft.ifft(solve(10.0**log_alpha)).real, 10.0**log_alpha


def coarse_to_fine(k: np.ndarray, y: np.ndarray, delta: float, bands: list[int]):
    """Least squares on growing frequency bands, warm-started, stopped at the noise level.

    Stage ``b`` minimises ``1/2 ||K P_b x - y||^2`` with ``P_b`` the projection on the ``b``
    lowest frequencies; every stage carries the target ``1/2 (TAU delta)^2``.
    """
    n = y.size
    absxi = np.abs(np.fft.fftfreq(n) * n)

    def objective(stage):
        mask = absxi <= stage.payload

        def fun(x):
            r = np.fft.ifft(k * mask * np.fft.fft(x)).real - y
            g = np.fft.ifft(np.conj(k) * mask * np.fft.fft(r)).real
            return 0.5 * float(r @ r), g

        return fun

    target = 0.5 * (TAU * delta) ** 2
    stages = [Stage(f"|xi| <= {b}", b, max_iter=200, target=target) for b in bands]
    res = continuation(stages, objective, np.zeros(n))
    used = [s.label for s in res.stages if s.iterations > 0]
    return res.model, used


def run(out: Path | None = None, *, n: int = 512, seed: int = 0) -> dict:
    """Solve the three ways, return relative errors; draw the figure to ``out`` if given."""
    rng = np.random.default_rng(seed)
    x, k, y, delta = problem(n, rng)
    bands = [2**j for j in range(2, int(np.log2(n // 2)) + 1)]
    sols = {"naive": naive(k, y)}
    sols["tikhonov"], alpha = tikhonov(k, y, delta)
    sols["coarse-to-fine"], used = coarse_to_fine(k, y, delta, bands)
    err = {name: float(np.linalg.norm(s - x) / np.linalg.norm(x)) for name, s in sols.items()}
    result = {
        "n": n,
        "seed": seed,
        "relative_error": err,
        "tikhonov_alpha": alpha,
        "stages_used": used,
    }
    if out is not None:
        _figure(x, y, sols, delta, out)
    return result


def _figure(x, y, sols, delta, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = x.size
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
    axes[0].plot(x, "k", lw=1.5, label="truth")
    axes[0].plot(y, "0.6", lw=1, label="blurred + noise")
    for name, c in (("tikhonov", "C0"), ("coarse-to-fine", "C2")):
        axes[0].plot(sols[name], c, lw=1, label=name)
    axes[0].set(title="signals (naive inverse off the scale)", xlabel="sample", ylim=(-1, 1.6))
    axes[0].legend(fontsize=7)
    half = slice(0, n // 2)
    for name, s, c in (
        ("truth", x, "k"),
        ("data", y, "0.6"),
        ("naive", sols["naive"], "C3"),
        ("tikhonov", sols["tikhonov"], "C0"),
        ("coarse-to-fine", sols["coarse-to-fine"], "C2"),
    ):
        axes[1].semilogy(np.abs(np.fft.fft(s))[half], c, lw=1, label=name)
    axes[1].axhline(delta, color="0.3", ls=":", lw=1, label="noise level (per frequency)")
    axes[1].set(title="amplitude spectra", xlabel="frequency index", ylim=(1e-4, None))
    axes[1].legend(fontsize=7)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=120)
    plt.close(fig)


if __name__ == "__main__":
    from _output import figure_parser, figure_target

    args = figure_parser(__doc__, "deconvolution.png").parse_args()
    print(json.dumps(run(figure_target(args, "deconvolution.png")), indent=2))
