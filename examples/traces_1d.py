"""Cycle skipping in one dimension (seed 000): two traces 0.105 s apart.

The observed trace is a Ricker wavelet delayed by 0.105 s; the model trace is the same wavelet
with an unknown delay ``s``. The least-squares misfit ``J(s) = 1/2 ||w(t - s) - d(t)||^2`` has
its global minimum at ``s = 0.105`` but, away from it, local minima one period apart: a local
optimiser started at ``s = 0`` finds the truth only when ``0.105`` lies inside the basin, about
half a period wide (0.25 s at 2 Hz, 0.1 s at 5 Hz). Continuation from 2 Hz to 5 Hz recovers
the delay at 5 Hz as well.

Run ``python examples/traces_1d.py`` to write ``out/examples/traces_1d.png`` (``--update-docs``:
the committed ``docs/figures/traces_1d.png``) and print the
numbers.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from msinv.core.continuation import Stage, continuation

SHIFT = 0.105  #: true delay between the traces, s


def ricker(t: np.ndarray, f: float) -> tuple[np.ndarray, np.ndarray]:
    """Ricker wavelet of peak frequency ``f`` (Hz) at times ``t`` (s) and its time derivative."""
    a = (np.pi * f * t) ** 2
    w = (1 - 2 * a) * np.exp(-a)
    dw = np.exp(-a) * (2 * a - 3) * 2 * (np.pi * f) ** 2 * t
    return w, dw


def misfit(s: float, f: float, t: np.ndarray, shift: float = SHIFT) -> tuple[float, float]:
    """``J(s)`` and ``dJ/ds`` for the model delay ``s`` at peak frequency ``f``."""
    dt = t[1] - t[0]
    w, dw = ricker(t - s, f)
    r = w - ricker(t - shift, f)[0]
    return 0.5 * float(r @ r) * dt, -float(r @ dw) * dt


def basin_edge(f: float, t: np.ndarray, step: float = 1e-3) -> float:
    """First offset (s) beyond which ``J`` decreases again: the half-width of the true basin."""
    offsets = np.arange(0.0, 1.5 / f, step)
    j = np.array([misfit(SHIFT + o, f, t)[0] for o in offsets])
    return float(offsets[np.argmax(np.diff(j) < 0)])


def invert(freqs: list[float], t: np.ndarray, s0: float = 0.0) -> float:
    """Delay (s) found by L-BFGS from ``s0`` through the stages ``freqs`` (one per frequency).

    The unknown is the delay in milliseconds, so that L-BFGS's first step (unit length) is a
    local move of 1 ms rather than a leap of 1 s.
    """
    stages = [Stage(f"{f:g} Hz", f, max_iter=200) for f in freqs]

    def objective(stage):
        def fun(x_ms):
            j, g = misfit(float(x_ms[0]) * 1e-3, stage.payload, t)
            return j, np.array([g * 1e-3])

        return fun

    return float(continuation(stages, objective, np.array([s0 * 1e3])).model[0]) * 1e-3


def run(out: Path | None = None, *, dt: float = 1e-3) -> dict:
    """Compute misfit curves, basins and inversions; draw the figure to ``out`` if given."""
    t = np.arange(-1.5, 1.5, dt)
    result = {"true_shift_s": SHIFT, "basin_half_width_s": {}, "half_period_s": {}, "found_s": {}}
    for f in (2.0, 5.0):
        result["basin_half_width_s"][f"{f:g}Hz"] = basin_edge(f, t)
        result["half_period_s"][f"{f:g}Hz"] = 0.5 / f
        result["found_s"][f"{f:g}Hz alone"] = invert([f], t)
    result["found_s"]["2Hz then 5Hz"] = invert([2.0, 5.0], t)
    if out is not None:
        _figure(t, result, out)
    return result


def _figure(t: np.ndarray, result: dict, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    for f, c in ((2.0, "C0"), (5.0, "C3")):
        axes[0].plot(t, ricker(t, f)[0], c, lw=1, label=f"{f:g} Hz, delay 0")
        axes[0].plot(t, ricker(t - SHIFT, f)[0], c + "--", lw=1, label=f"{f:g} Hz, delay {SHIFT}")
        s = np.linspace(-0.5, 0.7, 601)
        j = np.array([misfit(x, f, t)[0] for x in s])
        half = result["basin_half_width_s"][f"{f:g}Hz"]
        axes[1].plot(
            s, j / j.max(), c, label=f"{f:g} Hz: basin ±{half:.3f} s (T/2 = {0.5 / f:g} s)"
        )
        axes[1].axvspan(SHIFT - half, SHIFT + half, color=c, alpha=0.1)
        found = result["found_s"][f"{f:g}Hz alone"]
        axes[1].plot([found], [misfit(found, f, t)[0] / j.max()], c + "o")
    axes[0].set(xlim=(-0.6, 0.7), xlabel="t (s)", title="traces")
    axes[0].legend(fontsize=7)
    axes[1].axvline(0.0, color="k", lw=0.5)
    axes[1].axvline(SHIFT, color="k", ls=":", lw=0.8)
    axes[1].set(
        xlabel="model delay s (s)",
        ylabel="normalised misfit",
        title="misfit vs delay; o = L-BFGS from s = 0",
    )
    axes[1].legend(fontsize=7, loc="upper right")
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=120)
    plt.close(fig)


if __name__ == "__main__":
    from _output import figure_parser, figure_target

    args = figure_parser(__doc__, "traces_1d.png").parse_args()
    print(json.dumps(run(figure_target(args, "traces_1d.png")), indent=2))
