"""Cycle skipping on the disk (radius 0.3, contrast 0.3): the misfit path and FWI's two outcomes.

1. The normalised misfit ``J(c) / J(0)`` along the straight path ``eta = c * disk`` from zero
   (c = 0) past the truth (c = 1, contrast 0.3) at each frequency: monotone at the low ones,
   with a rise and a second hump at the top one, where the phase delay across the disk,
   ``2 pi f * 2 a * (sqrt(1.3) - 1)``, exceeds pi.
2. FWI from eta = 0 at the top frequency alone versus the continuation low -> high (same
   iterations per stage): the first goes the wrong way, the second reaches the disk.

Run ``python examples/cycle_skipping.py`` (paper grid n = 80, f = 2.5, 5, 10; several minutes on
one core) to write ``out/examples/cycle_skipping.png`` and ``.json`` beside it (``--out``;
``--update-docs`` rewrites the committed ``docs/figures/cycle_skipping.{png,json}``); ``--n 40``
with ``--freqs 1.5 3 6`` is a quick version.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from msinv.core.provenance import provenance
from msinv.scattering.analytic import pixel_disk
from msinv.scattering.fwi import Misfit, fwi
from msinv.scattering.geometry import Geometry
from msinv.scattering.helmholtz import simulate

RADIUS, CONTRAST = 0.3, 0.3


#: Inversion scheme of the documented figure (docs/figures/cycle_skipping.json), against
#: data of the wide 8th-order stencil.
SCHEME = "wide6"


def run(
    out: Path | None = None,
    *,
    n: int = 80,
    freqs: tuple[float, ...] = (2.5, 5.0, 10.0),
    iterations: int = 30,
    n_sources: int | None = None,
    path_points: int = 13,
) -> dict:
    """Misfit paths and the two FWI runs; figure and JSON to ``out`` (a .png path) if given."""
    g = Geometry.paper(n)
    if n_sources is not None:
        g = Geometry(n=n, pml_width=g.pml_width, n_sources=n_sources, n_receivers=n_sources)
    truth = pixel_disk(g, RADIUS, CONTRAST) / CONTRAST  # unit disk indicator (pixel-averaged)
    eta = CONTRAST * truth
    data = simulate(eta, g, list(freqs), scheme=8, dtype=np.complex128)
    cs = np.linspace(0.0, 2.0, path_points)  # eta = c * 0.3 * disk, c in [0, 2]: contrast 0 .. 0.6
    paths = {}
    for f in freqs:
        m = Misfit(g, data, list(freqs), use=[f], scheme=SCHEME)
        j = np.array([m(c * eta)[0] for c in cs])
        paths[f"{f:g}"] = (j / j[0]).tolist()

    def rrmse(x):
        return float(np.linalg.norm(x - eta) / np.linalg.norm(eta))

    runs = {}
    for name, schedule in (("top alone", [[freqs[-1]]]), ("continuation", [[f] for f in freqs])):
        t0 = time.perf_counter()
        history = []
        res = fwi(
            data,
            g,
            list(freqs),
            schedule=schedule,
            iterations=iterations,
            scheme=SCHEME,
            callback=lambda r, h=history: h.append(
                (r.label, r.iteration, r.misfit, rrmse(r.model))
            ),
        )
        runs[name] = {
            "rrmse": rrmse(res.model),
            "seconds": time.perf_counter() - t0,
            "iterations": res.iterations,
            "history": history,
            "model": res.model,
        }
    result = {
        "n": n,
        "freqs": list(freqs),
        "contrast": CONTRAST,
        "radius": RADIUS,
        "path_contrast": (CONTRAST * cs).tolist(),
        "normalised_misfit": paths,
        "rrmse": {k: v["rrmse"] for k, v in runs.items()},
        "seconds": {k: v["seconds"] for k, v in runs.items()},
        "iterations_per_stage": iterations,
        "history": {k: v["history"] for k, v in runs.items()},
    }
    if out is not None:
        _figure(g, eta, result, runs, out)
        record = {
            **{k: v for k, v in result.items() if k != "history"},
            "provenance": provenance(
                {"n": n, "freqs": list(freqs), "iterations": iterations, "n_sources": g.n_sources}
            ),
        }
        out.with_suffix(".json").write_text(json.dumps(record, indent=1))
    return result


def _figure(g, eta, result, runs, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(1, 4, figsize=(15, 3.6))
    for f, j in result["normalised_misfit"].items():
        ax[0].plot(result["path_contrast"], j, "o-", ms=3, label=f"f = {f}")
    ax[0].axvline(CONTRAST, color="k", ls=":", lw=0.8)
    ax[0].set(
        xlabel="contrast c of the path eta = c disk",
        ylabel="J / J(0)",
        title="misfit along the path",
    )
    ax[0].legend(fontsize=7)
    for name, c in (("top alone", "C3"), ("continuation", "C2")):
        h = runs[name]["history"]
        ax[1].semilogy([r[3] for r in h], c, label=f"{name}: RRMSE {runs[name]['rrmse']:.2f}")
    ax[1].set(xlabel="L-BFGS-B iteration (all stages)", ylabel="RRMSE", title="model error")
    ax[1].legend(fontsize=7)
    ext = [g.x[0], g.x[-1], g.y[0], g.y[-1]]
    vmax = 1.2 * eta.max()
    for a, name in zip(ax[2:], ("top alone", "continuation"), strict=True):
        im = a.imshow(
            runs[name]["model"], origin="lower", extent=ext, vmin=-vmax, vmax=vmax, cmap="RdBu_r"
        )
        a.set(title=f"FWI {name} ({', '.join(result['history'][name][-1][0].split('+'))} last)")
    fig.colorbar(im, ax=ax[2:], shrink=0.8)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110, bbox_inches="tight")
    plt.close(fig)


if __name__ == "__main__":
    from _output import figure_parser, figure_target

    p = figure_parser(__doc__, "cycle_skipping.png")
    p.add_argument("--n", type=int, default=80)
    p.add_argument("--freqs", type=float, nargs="+", default=[2.5, 5.0, 10.0])
    p.add_argument("--iterations", type=int, default=30)
    p.add_argument("--sources", type=int, default=None, help="sources = receivers (default n)")
    a = p.parse_args()
    r = run(
        figure_target(a, "cycle_skipping.png"),
        n=a.n,
        freqs=tuple(a.freqs),
        iterations=a.iterations,
        n_sources=a.sources,
    )
    print(
        json.dumps(
            {k: r[k] for k in ("n", "freqs", "rrmse", "seconds", "normalised_misfit")}, indent=1
        )
    )
