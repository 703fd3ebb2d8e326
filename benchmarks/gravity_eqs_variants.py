"""Variants of the equivalent layer, scored on ten synthetic surveys (a robustness study).

Each variant changes one thing in the ``upre`` layer, what ``EquivalentLayer()`` did with no
options until December 2026 (a draped layer of 1.5-spacing cells 1.5 cells deep, GZES's model
objective α_s = cell⁻², α_x = α_y = 1, β by UPRE); the variant ``evidence`` is today's
default. Each is fitted, unbounded and exactly (:class:`msinv.gravity.equivalent.TikhonovSolver`),
on the two benchmark surveys of ``gravity_eqs.py`` (``band``, ``disc``) and on eight more of the
same generator (``disc1500``, ``band800``, ``band-s1..3``, ``disc-s1..3``: other seeds, gap sizes
and source depths), so that a change chosen on the first two can be seen to hold, or not, on
surveys it was not chosen on. Scores: RMS error (mGal) against the exact field upward at 300 m,
on the surface outside the gap and in the gap (``gravity_eqs.score``), and the ratio of each to
the ``upre`` layer's (geometric mean over the surveys, worst survey, surveys improved).

Variants (the model objective's Hessian R is assembled here; cell widths c):

* ``upre``: ``EquivalentLayer(trade_off="upre")``'s problem, the reference.
* ``evidence``: β of greatest marginal likelihood (``EquivalentLayer()``'s default since
  December 2026).
* ``evidence-depth-auto``: the same, the depth among 1, 1.5, 2.5 and 4 cells of greatest
  evidence (``EquivalentLayer(depth="auto")``).
* ``gcv``: β by generalised cross-validation instead of UPRE.
* ``target``: β for χ² = N (GZES mode 1).
* ``far-smooth``: smallness weight 0.01 on cells with no station within one cell (smoothness
  alone interpolates them).
* ``two-layer``: plus a deep layer of 3c cells whose tops lie one gap diameter under the
  surface (twice the largest distance from a cell centre to its nearest station), one β, each
  layer's own R.
* ``two-layer-scaled``: the same with the deep layer's R scaled by its mean squared column norm
  of G over its mean diagonal of R, relative to the shallow layer's (sensitivity scaling).
* ``curvature``: R + c·(DᵀD)² (D the cell-difference operator: a squared-Laplacian,
  minimum-curvature term of length one cell, Briggs 1974).
* ``curvature-gcv``: the same, β by GCV.
* ``fine``: cells of 1.25 spacings, 1.5 cells deep.
* ``fine-curvature-gcv``: ``fine`` with the curvature term and β by GCV.
* ``depth-1``, ``depth-2``, ``depth-3``: the layer 1, 2 or 3 cells deep instead of 1.5.
* ``cv``: β by 5-fold cross-validation (``EquivalentLayer(trade_off="cv")``: every 20th β of
  the solver's range, the one of least held-out RMS error), as Harmonica's users choose damping.
* ``cv-depth``: depth and β by 5-fold cross-validation together (``depth="cv"`` among
  1, 1.5, 2.5 and 4 cells), as Harmonica's cross-validated best in ``gravity_eqs.py``.
* ``depth-auto``: the depth among the same four chosen by UPRE (``depth="auto"``,
  ``trade_off="upre"``), β by UPRE.
* ``fine-evidence``: cells of 1.25 spacings, β by the evidence.
* ``fine-evidence-depth-auto``: the same, the depth of greatest evidence among the four
  (``EquivalentLayer(cell=1.25 × spacing, depth="auto")``).

Usage (results cached per survey and variant in ``OUT/variants.json``, so a rerun resumes)::

    nice python benchmarks/gravity_eqs_variants.py
    nice python benchmarks/gravity_eqs_variants.py --surveys band disc --variants upre gcv
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import gravity_eqs  # noqa: E402

#: variant: (cell in spacings, depth in cells, curvature weight, rule, extra)
VARIANTS = {
    "upre": (1.5, 1.5, 0.0, "upre", None),
    "evidence": (1.5, 1.5, 0.0, "evidence", None),
    "evidence-depth-auto": (1.5, "auto", 0.0, "evidence", None),
    "gcv": (1.5, 1.5, 0.0, "gcv", None),
    "target": (1.5, 1.5, 0.0, "target", None),
    "far-smooth": (1.5, 1.5, 0.0, "upre", "far-smooth"),
    "two-layer": (1.5, 1.5, 0.0, "upre", "two-layer"),
    "two-layer-scaled": (1.5, 1.5, 0.0, "upre", "two-layer-scaled"),
    "curvature": (1.5, 1.5, 1.0, "upre", None),
    "curvature-gcv": (1.5, 1.5, 1.0, "gcv", None),
    "fine": (1.25, 1.5, 0.0, "upre", None),
    "fine-curvature-gcv": (1.25, 1.5, 1.0, "gcv", None),
    "depth-1": (1.5, 1.0, 0.0, "upre", None),
    "depth-2": (1.5, 2.0, 0.0, "upre", None),
    "depth-3": (1.5, 3.0, 0.0, "upre", None),
    "cv": (1.5, 1.5, 0.0, "cv", None),
    "cv-depth": (1.5, "cv", 0.0, "cv", None),
    "depth-auto": (1.5, "auto", 0.0, "upre", None),
    "fine-evidence": (1.25, 1.5, 0.0, "evidence", None),
    "fine-evidence-depth-auto": (1.25, "auto", 0.0, "evidence", None),
}
#: The variant the others are compared with.
REFERENCE = "upre"
#: the two benchmark surveys, then the eight robustness ones (not the quiet ones)
SURVEYS = tuple(s for s in gravity_eqs.SURVEYS if s not in gravity_eqs.APART)


def hessian(layer, curvature: float = 0.0, smallness=None):
    """The layer's model-objective Hessian (GZES's α's, as ``EquivalentLayer``), plus
    ``curvature`` · c · (DᵀD)² and with smallness weights ``smallness`` (n_cells,) if given."""
    from msinv.gravity.equivalent import EquivalentLayer
    from msinv.gravity.regularisation import _difference

    reg = EquivalentLayer()._regularisation(layer)
    reg.set_user_weights(None if smallness is None else {"s": smallness})
    r = reg.normal_matrix()
    if curvature:
        nx, ny = layer.shape
        dx, dy = (_difference((nx, ny, 1), k)[0] for k in (0, 1))
        lap = dx.T @ dx + dy.T @ dy
        r = r + curvature * float(layer.hx.min()) * (lap @ lap)
    return r.tocsc()


def fit_variant(name: str, sv):
    """Fit one variant to a survey; returns a predictor, β, χ²/N and the CPU seconds."""
    import scipy.sparse as sp
    from scipy.spatial import cKDTree

    from msinv.gravity.equivalent import EquivalentLayer, TikhonovSolver
    from msinv.gravity.layer import LayerMesh

    cf, df, curvature, rule, extra = VARIANTS[name]
    t0 = time.process_time()
    pts, d = sv.points, sv.data
    s = np.full(d.size, sv.sigma)
    if rule == "cv" or isinstance(df, str):  # the estimator's own choice (same layer, objective)
        cell = None if cf == 1.5 else cf * EquivalentLayer().default_cell(pts)
        est = EquivalentLayer(trade_off=rule, depth=df if isinstance(df, str) else None, cell=cell)
        est.fit(pts, d, s)
        cpu = time.process_time() - t0
        chi2 = float(np.sum(((est.predict(pts) - d) / s) ** 2)) / d.size
        return est.predict, est.beta_, chi2, cpu
    est = EquivalentLayer()
    cell = cf * est.default_cell(pts)
    layer = est.build_layer(pts, df * cell, cell)
    far = cKDTree(pts[:, :2]).query(layer.cell_centers()[:, :2])[0]
    weights = np.where(far > cell, 0.01, 1.0) if extra == "far-smooth" else None
    layers, hess = [layer], [hessian(layer, curvature, weights)]
    if extra in ("two-layer", "two-layer-scaled"):
        deep = LayerMesh.draped(pts, cell=3 * cell, depth=2 * far.max(), padding=0)
        r_deep = hessian(deep)
        if extra == "two-layer-scaled":
            scale = [
                np.sum(lay.sensitivity(pts) ** 2) / lay.n_cells / r.diagonal().mean()
                for lay, r in ((layer, hess[0]), (deep, r_deep))
            ]
            r_deep = r_deep * (scale[1] / scale[0])
        layers, hess = [layer, deep], [hess[0], r_deep]
    g = np.hstack([lay.sensitivity(pts) for lay in layers])
    solver = TikhonovSolver(g, s, sp.block_diag(hess).tocsc())
    if rule == "target":
        beta = solver.beta_for(d.size, d)
    else:
        beta = solver.beta_minimising(rule, d)
    model = solver.model(beta, d)
    cpu = time.process_time() - t0
    bounds = np.cumsum([0] + [lay.n_cells for lay in layers])

    def predict(p):
        return sum(
            lay.gz(p, model[a:b]) for lay, a, b in zip(layers, bounds[:-1], bounds[1:], strict=True)
        )

    return predict, beta, float(solver.phi_d(beta, d)) / d.size, cpu


def run(survey: str, name: str) -> dict:
    """Fit and score one variant on one survey."""
    sv, surface, upward = gravity_eqs.survey_and_grids(2000, survey)
    predict, beta, chi2, cpu = fit_variant(name, sv)
    out = {"eval_surface": predict(surface), "eval_upward": predict(upward)}
    res = gravity_eqs.score(out, 2000, survey)
    return {**res, "beta": beta, "chi2_per_datum": chi2, "fit_cpu_seconds": cpu}


METRICS = ("rms_upward_300m", "rms_surface_interior", "rms_surface_gap")


def summary(results: dict, surveys, variants) -> str:
    """Markdown: each variant's errors on each survey, and ratios to the reference variant's."""
    lines = [
        "| survey | variant | upward 300 m | surface | gap | fit CPU s |",
        "|---|---|---|---|---|---|",
    ]
    for sv in surveys:
        for v in variants:
            r = results[f"{sv}|{v}"]
            lines.append(
                f"| {sv} | {v} | " + " | ".join(f"{r[m]:.5f}" for m in METRICS)
                + f" | {r['fit_cpu_seconds']:.1f} |"
            )  # fmt: skip
    lines += ["", f"Ratio to `{REFERENCE}` over {len(surveys)} surveys: geometric mean "
              "(worst; surveys improved)", "",
              "| variant | upward 300 m | surface | gap |", "|---|---|---|---|"]  # fmt: skip
    for v in variants:
        if v == REFERENCE:
            continue
        cells = []
        for m in METRICS:
            q = np.array(
                [results[f"{sv}|{v}"][m] / results[f"{sv}|{REFERENCE}"][m] for sv in surveys]
            )
            cells.append(
                f"{np.exp(np.log(q).mean()):.3f} ({q.max():.3f}; {(q < 1).sum()}/{q.size})"
            )
        lines.append(f"| {v} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument(
        "--surveys", nargs="+", default=list(SURVEYS), choices=sorted(gravity_eqs.SURVEYS)
    )
    p.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    p.add_argument("--out", type=Path, default=HERE / "results" / "gravity_eqs")
    args = p.parse_args(argv)
    variants = [REFERENCE, *(v for v in args.variants if v != REFERENCE)]
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / "variants.json"
    results = json.loads(path.read_text()) if path.exists() else {}
    from threadpoolctl import threadpool_limits

    from msinv.gravity.equivalent import EquivalentLayer

    small = gravity_eqs.synthetic_survey_small()  # compile the numba kernels before timing
    EquivalentLayer().fit(small.points, small.data, small.sigma).predict(small.points)
    for survey in args.surveys:
        for v in variants:
            key = f"{survey}|{v}"
            if key in results:
                continue
            with threadpool_limits(limits=1, user_api="blas"):
                results[key] = run(survey, v)
            print(key, {k: round(x, 5) for k, x in results[key].items()}, flush=True)
            tmp = path.with_suffix(".tmp")
            tmp.write_text(json.dumps(results, indent=1) + "\n")
            tmp.replace(path)
    text = summary(results, args.surveys, variants)
    (args.out / "variants.md").write_text(
        f"`python benchmarks/gravity_eqs_variants.py` ({gravity_eqs.MACHINE})\n\n" + text
    )
    print(text)


if __name__ == "__main__":
    main()
