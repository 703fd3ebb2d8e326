"""SimPEG 0.26's equivalent-source layer on a survey prepared by ``gravity_eqs.py``.

Run by ``gravity_eqs.py`` with a Python >= 3.12 that has SimPEG 0.26 (SimPEG is not an msinv
dependency)::

    /work/simpeg312/bin/python benchmarks/gravity_eqs_simpeg.py IN.npz OUT.npz

IN holds the stations, data (g_z down, mGal), sigma, the layer (hx, hy, origin, top, thickness:
the same draped layer msinv fits) and the evaluation points. The inversion is SimPEG's usual
recipe for a layer: ``SimulationEquivalentSourceLayer`` (choclo engine), least-squares data
misfit, ``WeightedLeastSquares`` (α_s, α_x, α_y as msinv's), ``ProjectedGNCG``, β from the
eigenvalue ratio, cooled until the target misfit χ² = N. SimPEG's gz is the upward component:
signs are flipped on the way in and out.
"""

import resource
import sys
import time

import numpy as np


def main(src, dst):
    import discretize
    from simpeg import (
        data_misfit,
        directives,
        inverse_problem,
        inversion,
        maps,
        optimization,
        regularization,
    )
    from simpeg.potential_fields import gravity

    f = np.load(src)
    pts, d, sigma = f["points"], f["data"], f["sigma"]
    mesh = discretize.TensorMesh([f["hx"], f["hy"]], origin=f["origin"])
    top = f["top"].ravel(order="F")

    def layer_simulation(points, store):
        """SimPEG's layer (choclo engine) with g_z receivers at ``points``."""
        rx = gravity.receivers.Point(points, components="gz")
        return gravity.SimulationEquivalentSourceLayer(
            mesh,
            top,
            top - float(f["thickness"]),
            survey=gravity.survey.Survey(gravity.sources.SourceField([rx])),
            rhoMap=maps.IdentityMap(nP=mesh.n_cells),
            engine="choclo",
            store_sensitivities=store,
        )

    # compile choclo's numba kernels outside the timing, as for the other methods
    layer_simulation(pts[:5], "forward_only").dpred(np.zeros(mesh.n_cells))
    t0, c0 = time.perf_counter(), time.process_time()
    sim = layer_simulation(pts, "ram")
    from simpeg.data import Data

    obs = Data(sim.survey, dobs=-d, standard_deviation=sigma)  # SimPEG's gz is up
    dmis = data_misfit.L2DataMisfit(data=obs, simulation=sim)
    a_s, a_x, a_y = f["alphas"]
    reg = regularization.WeightedLeastSquares(mesh, alpha_s=a_s, alpha_x=a_x, alpha_y=a_y)
    opt = optimization.ProjectedGNCG(maxIter=40, lower=-np.inf, upper=np.inf, cg_maxiter=100)
    inv_prob = inverse_problem.BaseInvProblem(dmis, reg, opt)
    dirs = [
        directives.BetaEstimate_ByEig(beta0_ratio=1e1, random_seed=0),
        directives.BetaSchedule(coolingFactor=2, coolingRate=1),
        directives.TargetMisfit(chifact=1.0),
    ]
    inv = inversion.BaseInversion(inv_prob, directiveList=dirs)
    model = inv.run(np.zeros(mesh.n_cells))
    t_fit, cpu_fit = time.perf_counter() - t0, time.process_time() - c0
    phi_d = float(np.sum(((sim.dpred(model) + d) / sigma) ** 2))
    t1 = time.perf_counter()
    preds = {}
    for key in ("eval_surface", "eval_upward"):
        preds[key] = -layer_simulation(f[key], "forward_only").dpred(model)
    t_pred = time.perf_counter() - t1
    np.savez(
        dst,
        fit_seconds=t_fit,
        fit_cpu_seconds=cpu_fit,
        predict_seconds=t_pred,
        phi_d=phi_d,
        peak_rss_bytes=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        **preds,
    )


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
