"""How far can each family go? msinv's layer and Harmonica's point sources with settings chosen
by the true field (an oracle), against the settings their own rules choose.

On each of the ten σ = 0.005 mGal surveys of ``gravity_eqs.py`` (``SURVEYS`` less ``QUIET``):

* **msinv's layer** (the default geometry: 1.5-spacing cells, GZES's model objective): for each
  depth among 1, 1.5, 2.5 and 4 cells, the exact solution (:class:`TikhonovSolver`) for every
  4th β of :meth:`TikhonovSolver.beta_range` (100 β's from least squares to the null model);
* **Harmonica's** ``EquivalentSources``: depths 1, 1.5, 2, 3, 4.5, 6 and 9 station spacings ×
  dampings 10⁻³ … 10³ (13, evenly in log), weights 1/σ².

Each setting is scored against the exact field in the three columns of ``gravity_eqs.score``
(RMS error upward at 300 m, on the surface outside the gap, in the gap), and the **oracle** of a
family in a column is its least error over its settings (each column its own setting: a bound
no rule that sees only the data can beat within that family and grid). Written beside the
family's own choice (``msinv``: ``EquivalentLayer()``; Harmonica: its 5-fold cross-validated
best, both read from ``gravity_eqs.py``'s cache). If the two oracles are level in a column, no
choice of depth and damping makes one family clearly better there: the column is decided by
the data (noise, stations), not by the method.

Usage (cached per survey in ``OUT/oracle.json``, so a rerun resumes)::

    nice python benchmarks/gravity_eqs_oracle.py
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import gravity_eqs  # noqa: E402

SURVEYS = tuple(s for s in gravity_eqs.SURVEYS if s not in gravity_eqs.QUIET)
COLUMNS = ("rms_upward_300m", "rms_surface_interior", "rms_surface_gap")
LAYER_DEPTHS = (1.0, 1.5, 2.5, 4.0)  # cells
HARMONICA_DEPTHS = (1.0, 1.5, 2.0, 3.0, 4.5, 6.0, 9.0)  # station spacings
HARMONICA_DAMPINGS = tuple(10.0**k for k in np.arange(-3.0, 3.01, 0.5))


def layer_errors(sv, surface, upward) -> dict:
    """``{column: {"depth|beta": error}}`` of msinv's layer over depths and β's."""
    from msinv.gravity.equivalent import EquivalentLayer, TikhonovSolver, _hessian

    est = EquivalentLayer()
    cell = 1.5 * est.default_cell(sv.points)
    sigma = np.full(sv.data.size, sv.sigma)
    out = {c: {} for c in COLUMNS}
    for factor in LAYER_DEPTHS:
        layer = est.build_layer(sv.points, factor * cell, cell)
        solver = TikhonovSolver(
            layer.sensitivity(sv.points), sigma, _hessian(est._regularisation(layer))
        )
        y = solver._coefficients(sv.data)[0][:, 0]  # the model is to_model @ (y / (λ + β))
        betas = solver.beta_range()[::4]
        coeff = y[:, None] / (solver.lam[:, None] + betas[None, :])  # (k, n_beta)
        for col, (pts, mask) in gravity_eqs.masks(sv, surface, upward).items():
            true = sv.true_gz(pts[mask])
            pred = (layer.sensitivity(pts[mask]) @ solver.to_model) @ coeff
            rms = np.sqrt(np.mean((pred - true[:, None]) ** 2, axis=0))
            out[col].update(
                {f"{factor:g}|{b:.6g}": float(r) for b, r in zip(betas, rms, strict=True)}
            )
    return out


def harmonica_errors(sv, surface, upward) -> dict:
    """``{column: {"depth|damping": error}}`` of Harmonica's sources over its grid."""
    import harmonica as hm

    spacing = float(np.sqrt(1e8 / sv.data.size))
    coords, weights = tuple(sv.points.T), np.full(sv.data.size, 1 / sv.sigma**2)
    masks = gravity_eqs.masks(sv, surface, upward)
    out = {c: {} for c in COLUMNS}
    for depth in HARMONICA_DEPTHS:
        for damping in HARMONICA_DAMPINGS:
            est = hm.EquivalentSources(depth=depth * spacing, damping=damping)
            est.fit(coords, sv.data, weights=weights)
            for col, (pts, mask) in masks.items():
                pred = est.predict(tuple(pts[mask].T))
                rms = float(np.sqrt(np.mean((pred - sv.true_gz(pts[mask])) ** 2)))
                out[col][f"{depth:g}|{damping:.3g}"] = rms
    return out


def own_choice(out: Path, survey: str) -> dict:
    """The errors of ``msinv`` and ``harmonica-cv`` from ``gravity_eqs.py``'s cache."""
    path = out / f"{gravity_eqs.prefix(2000, survey)}.json"
    methods = json.loads(path.read_text())["methods"]
    return {m: {c: methods[m][c] for c in COLUMNS} for m in ("msinv", "harmonica-cv")}


def markdown(results: dict) -> str:
    names = {"rms_upward_300m": "upward 300 m", "rms_surface_interior": "surface",
             "rms_surface_gap": "gap"}  # fmt: skip
    lines = [
        "| survey | column | msinv (its rule) | msinv oracle | Harmonica (5-fold CV) | "
        "Harmonica oracle | oracle ratio msinv / Harmonica |",
        "|---|---|---|---|---|---|---|",
    ]
    logs = {c: [] for c in COLUMNS}
    for survey, r in results.items():
        for c in COLUMNS:
            mo, ho = min(r["layer"][c].values()), min(r["harmonica"][c].values())
            logs[c].append(math.log(mo / ho))
            lines.append(
                f"| {survey} | {names[c]} | {r['own']['msinv'][c]:.5f} | {mo:.5f} | "
                f"{r['own']['harmonica-cv'][c]:.5f} | {ho:.5f} | {mo / ho:.3f} |"
            )
    lines += ["", "Oracle ratio msinv / Harmonica, geometric mean over the surveys "
              "(surveys where msinv's oracle is the lower):", ""]  # fmt: skip
    for c in COLUMNS:
        gm = math.exp(sum(logs[c]) / len(logs[c]))
        lines.append(f"* {names[c]}: {gm:.3f} ({sum(x < 0 for x in logs[c])}/{len(logs[c])})")
    return "\n".join(lines) + "\n"


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--surveys", nargs="+", default=list(SURVEYS), choices=SURVEYS)
    p.add_argument("--out", type=Path, default=HERE / "results" / "gravity_eqs")
    args = p.parse_args(argv)
    path = args.out / "oracle.json"
    results = json.loads(path.read_text()) if path.exists() else {}
    for survey in args.surveys:
        if survey in results:
            continue
        t0 = time.perf_counter()
        sv, surface, upward = gravity_eqs.survey_and_grids(2000, survey)
        results[survey] = {
            "layer": layer_errors(sv, surface, upward),
            "harmonica": harmonica_errors(sv, surface, upward),
            "own": own_choice(args.out, survey),
            "seconds": time.perf_counter() - t0,
        }
        print(survey, f"{results[survey]['seconds']:.0f} s", flush=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(results, indent=1) + "\n")
        tmp.replace(path)
    text = markdown({s: results[s] for s in args.surveys})
    (args.out / "oracle.md").write_text(
        f"`python benchmarks/gravity_eqs_oracle.py` ({gravity_eqs.MACHINE})\n\n" + text
    )
    print(text)


if __name__ == "__main__":
    main()
