"""Bounded Tikhonov inversion of gravity data (GZINV3D).

Minimise :math:`\\phi = \\phi_d + \\beta\\phi_m` subject to :math:`\\rho_l \\le \\rho \\le \\rho_u`,
with :math:`\\phi_d = \\|W_d(G\\rho - d)\\|^2`, :math:`W_d = \\mathrm{diag}(1/\\sigma_i)` and
:math:`\\phi_m` from :class:`~msinv.gravity.regularisation.Regularisation`. For each β the
quadratic is minimised by :func:`msinv.core.solvers.projected_cg` on the normal equations

.. math:: (G^T W_d^2 G + \\beta \\textstyle\\sum_k A_k^T A_k)\\,\\rho
          = G^T W_d^2 d + \\beta \\textstyle\\sum_k A_k^T b_k ,

warm-started from the previous β. Mode 1 searches β (:func:`msinv.core.solvers.beta_search`)
until φ_d is within ±tolc of chifact·N; mode 2 uses a fixed β; mode 3 sweeps β and takes the
minimum of generalised cross-validation (GCV, GRAV3D's mode-3 rule, :func:`gcv_score`) or the
L-curve corner (:func:`msinv.core.solvers.lcurve_corner`).

An inversion run with an approximate G (wavelet-compressed) is finished with the exact one by
:func:`finish`, so that the φ_d reported is the true misfit of the model returned.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np

from msinv.core.errors import UserInputError
from msinv.core.misfit import DataMisfit
from msinv.core.operator import LinearOperator
from msinv.core.solvers import beta_search, irls, lcurve_corner, projected_cg
from msinv.gravity.regularisation import TERMS, Regularisation


@dataclass(frozen=True)
class InversionConfig:
    """How the trade-off parameter is chosen and how hard each β is solved.

    Attributes
    ----------
    mode : int, default 1
        1: β search to hit chifact·N; 2: fixed ``beta``; 3: sweep of ``n_lcurve`` β's, the one
        chosen by ``mode3``.
    chifact : float, default 1.0
        Target misfit per datum (> 0), mode 1.
    tolc : float, default 0.02
        Relative tolerance on the target misfit, in (0, 1) (GRAV3D default 0.02).
    beta : float or None
        Mode 2: the fixed β (> 0, required). Modes 1 and 3: the first β (estimated when None).
    n_lcurve : int, default 9
        β's in the mode-3 sweep (>= 3), spaced by ``lcurve_step`` from the first.
    lcurve_step : float, default 4.0
        Ratio between consecutive β's of the L-curve (> 1).
    cg_tol : float, default 0.001
        Relative tolerance of each bounded CG solve, in (0, 1).
    max_cg : int, default 200
        CG iterations per active-set iteration (>= 1).
    max_outer : int, default 10
        Active-set iterations per β (>= 1).
    max_beta : int, default 20
        β trials in mode 1 (>= 1).
    preconditioner : str, default 'jacobi'
        ``"jacobi"``: CG preconditioned by the diagonal of β·Σ AᵀA (+ diag GᵀW_d²G for a dense
        G; the distance weights make the diagonal span orders of magnitude); ``"none"``.
    mode3 : str, default 'gcv'
        Mode 3's choice: ``"gcv"`` (default, as GRAV3D) the minimum of the GCV function;
        ``"lcurve"`` the corner of the L-curve.
    n_gcv_probe : int, default 2
        Random probes of the trace in :func:`gcv_score` (>= 1; default 2, one CG solve each per
        β of the sweep).
    beta_start : float, default 1000.0
        Modes 1 and 3 without ``beta``: the first β is ``beta_start`` times the trace-ratio
        estimate (:func:`estimate_beta0`), > 0. Starting over-regularised and searching
        downward keeps the early solves cheap (well conditioned) and warm-starts the later ones.
    beta_slope : float or None
        Mode 1: a prior d(log φ_d)/d(log β) > 0 near the target (e.g. measured on a coarser
        mesh, :mod:`msinv.gravity.multilevel`); the second β trial is then a Newton step
        instead of a bracketing step (:func:`msinv.core.solvers.beta_search`).
    """

    mode: int = 1
    chifact: float = 1.0
    tolc: float = 0.02
    beta: float | None = None
    n_lcurve: int = 9
    lcurve_step: float = 4.0
    cg_tol: float = 1e-3
    max_cg: int = 200
    max_outer: int = 10
    max_beta: int = 20
    preconditioner: str = "jacobi"
    beta_start: float = 1e3
    mode3: str = "gcv"
    n_gcv_probe: int = 2
    beta_slope: float | None = None

    def __post_init__(self):
        if self.mode3 not in ("gcv", "lcurve"):
            raise UserInputError(f"mode3 must be 'gcv' or 'lcurve', got {self.mode3!r}")
        if self.n_gcv_probe < 1:
            raise UserInputError(f"n_gcv_probe must be >= 1, got {self.n_gcv_probe}")
        if self.preconditioner not in ("jacobi", "none"):
            raise UserInputError(
                f"preconditioner must be 'jacobi' or 'none', got {self.preconditioner!r}"
            )
        if not self.beta_start > 0:
            raise UserInputError(f"beta_start must be > 0, got {self.beta_start}")
        if self.beta_slope is not None and not self.beta_slope > 0:
            raise UserInputError(f"beta_slope must be > 0, got {self.beta_slope}")
        if self.mode not in (1, 2, 3):
            raise UserInputError(f"mode must be 1, 2 or 3, got {self.mode}")
        if not self.chifact > 0:
            raise UserInputError(f"chifact must be > 0, got {self.chifact}")
        if not 0 < self.tolc < 1:
            raise UserInputError(f"tolc must be in (0, 1), got {self.tolc}")
        if self.mode == 2 and self.beta is None:
            raise UserInputError("mode 2 needs a fixed beta > 0")
        if self.beta is not None and not self.beta > 0:
            raise UserInputError(f"beta must be > 0, got {self.beta}")
        if self.n_lcurve < 3 or not self.lcurve_step > 1:
            raise UserInputError("n_lcurve must be >= 3 and lcurve_step > 1")
        if not 0 < self.cg_tol < 1:
            raise UserInputError(f"cg_tol must be in (0, 1), got {self.cg_tol}")
        if min(self.max_cg, self.max_outer, self.max_beta) < 1:
            raise UserInputError("max_cg, max_outer and max_beta must be >= 1")


@dataclass
class BetaLog:
    """One line of the per-β log (like ``gzinv3d.out``)."""

    beta: float
    phi_d: float
    phi_m: float
    terms: dict[str, float]
    cg_iterations: int
    n_lower: int
    n_upper: int
    seconds: float
    irls: int = 0
    eps: dict | None = None


@dataclass
class InversionResult:
    """Recovered model and how it was reached.

    Attributes
    ----------
    model : (n_active,) numpy.ndarray
        Density contrast of the active cells, g/cc.
    predicted : (n_data,) numpy.ndarray
        ``G model``, mGal.
    beta, phi_d, phi_m : float
        Final trade-off parameter, misfit and model norm.
    target : float or None
        chifact·N in mode 1.
    converged : bool
        Mode 1: the misfit is within tolerance of the target.
    log : list of BetaLog
        Every β solved, in order.
    gcv : list of float or None
        Mode 3 with GCV: the GCV function at each β of the sweep (log order).
    phi_d_approximate : float or None
        After :func:`finish`: the misfit the approximate G gave before the exact G took over.
    levels : list of dict or None
        Coarse-to-fine (:func:`msinv.gravity.multilevel.invert_multilevel`): one summary per
        level (cells, parameters, operator, β solves, CG iterations, seconds, β, φ_d).
    """

    model: np.ndarray
    predicted: np.ndarray
    beta: float
    phi_d: float
    phi_m: float
    target: float | None
    converged: bool
    log: list[BetaLog] = field(default_factory=list)
    gcv: list[float] | None = None
    phi_d_approximate: float | None = None
    levels: list[dict] | None = None

    def log_text(self) -> str:
        """The per-β log as text, one line per β (GZINV3D's ``gzinv3d.out`` in spirit)."""
        lines = [
            "# msinv gravity inversion log",
            f"# target misfit: {self.target if self.target is not None else 'none'}",
            "#  iter        beta         phi_d         phi_m     phi_s     phi_x     phi_y     "
            "phi_z  CG  at_lower  at_upper  seconds",
        ]
        for i, e in enumerate(self.log, 1):
            t = [e.terms.get(k, 0.0) for k in "sxyz"]
            lines.append(
                f"{i:6d}  {e.beta:10.4e}  {e.phi_d:12.5e}  {e.phi_m:12.5e}  "
                + "  ".join(f"{v:8.3e}" for v in t)
                + f"  {e.cg_iterations:3d}  {e.n_lower:8d}  {e.n_upper:8d}  {e.seconds:7.2f}"
            )
        lines.append(
            f"# final: beta = {self.beta:.6e}, phi_d = {self.phi_d:.6e}, phi_m = {self.phi_m:.6e}"
            + (f", converged = {self.converged}" if self.target is not None else "")
        )
        return "\n".join(lines) + "\n"


def estimate_beta0(
    op: LinearOperator, sigma: np.ndarray, reg: Regularisation, n_probe: int = 4, seed: int = 0
) -> float:
    """β that balances the two Hessians: ``tr(GᵀW_d²G) / tr(Σ AᵀA)`` (Hutchinson, seeded).

    Parameters
    ----------
    op : LinearOperator
        Forward operator on the active cells.
    sigma : (n_data,) numpy.ndarray
        Uncertainties.
    reg : Regularisation
    n_probe : int, default 4
        Rademacher probes.
    seed : int, default 0
        Seed of the probes (recorded in the inversion's provenance by callers).
    """
    rng = np.random.default_rng(seed)
    num = den = 0.0
    for _ in range(n_probe):
        v = rng.choice([-1.0, 1.0], op.shape_in[0])
        num += float(np.sum((op.forward(v) / sigma) ** 2))
        den += float(v @ reg.hessian(v))
    return num / den


@dataclass(frozen=True)
class SparseConfig:
    """GRAV3D v6 sparse norms (inversion control lines 13–14), solved by IRLS.

    Attributes
    ----------
    norms : (p, q_x, q_y, q_z), default (2.0, 2.0, 2.0, 2.0)
        Exponents in [0, 2] of the smallness and of the x, y, z derivative terms; each a
        number or (n_cells,) values (GRAV3D's per-cell norm files).
    eps : float or None
        ε of the smallness (g/cc); None: chosen from the L2 model (the 98th percentile of
        ``|w(ρ−ρ0)|`` divided by 10, floor of the cooling).
    eps_grad : float or None
        ε of the derivative terms (g/cc per metre); None: as ``eps``, from the L2 model.
    scale : float or (n_cells,) numpy.ndarray, default 0.5
        GRAV3D's "Lq scaling" in [0, 1] (a number or per-cell values): read and recorded;
        msinv balances the terms by SimPEG's scaled weights instead (see
        :meth:`Regularisation.reweight`).
    max_irls : int, default 20
        Re-weighted solves at most (>= 1).
    cooling : float, default 2.0
        ε starts at the largest ``|f|`` of each term at the L2 model and is divided by this
        factor (> 1) per IRLS iteration until it reaches its floor (``eps``/``eps_grad``).
    tol : float, default 0.01
        After ε reached its floor: stop when the model changes by less than this (relative).
    misfit_tolerance : float, default 0.1
        At each re-weighting β is searched again until φ_d is within this relative tolerance of
        the target (SimPEG's ``misfit_tolerance``; at least tolc); after the last re-weighting
        it is searched to within tolc. 0 (or anything <= tolc) searches to tolc every time.
    cg_tol : float or None, default 0.01
        Relative tolerance of the bounded CG solves during the re-weighting (inexact inner
        solves, as SimPEG's few CG iterations per Gauss-Newton step); the final β search uses
        the inversion's ``cg_tol``. None: the inversion's throughout.
    """

    norms: tuple = (2.0, 2.0, 2.0, 2.0)
    eps: float | None = None
    eps_grad: float | None = None
    scale: float | np.ndarray = 0.5
    max_irls: int = 20
    cooling: float = 2.0
    tol: float = 1e-2
    misfit_tolerance: float = 0.1
    cg_tol: float | None = 1e-2

    def __post_init__(self):
        if len(self.norms) != 4:
            raise UserInputError(f"norms: expected (p, qx, qy, qz), got {len(self.norms)} values")
        for p in self.norms:
            p = np.asarray(p, dtype=np.float64)
            if not (np.all(p >= 0) and np.all(p <= 2)):
                raise UserInputError("norms: every exponent must be in [0, 2]")
        for name in ("eps", "eps_grad"):
            value = getattr(self, name)
            if value is not None and not value > 0:
                raise UserInputError(f"{name} must be > 0, got {value}")
        if not np.all((np.asarray(self.scale) >= 0) & (np.asarray(self.scale) <= 1)):
            raise UserInputError("scale must be in [0, 1]")
        if self.max_irls < 1 or not self.cooling > 1 or not self.tol > 0:
            raise UserInputError("max_irls must be >= 1, cooling > 1 and tol > 0")
        if self.cg_tol is not None and not 0 < self.cg_tol < 1:
            raise UserInputError(f"cg_tol must be in (0, 1), got {self.cg_tol}")
        if not 0 <= self.misfit_tolerance < 1:
            raise UserInputError(f"misfit_tolerance must be in [0, 1), got {self.misfit_tolerance}")


def invert(
    op: LinearOperator,
    data: np.ndarray,
    sigma: np.ndarray,
    reg: Regularisation,
    *,
    lower=-np.inf,
    upper=np.inf,
    initial=None,
    config: InversionConfig | None = None,
    sparse: SparseConfig | None = None,
    callback: Callable[[str, dict], None] | None = None,
    keep_irls_weights: bool = False,
) -> InversionResult:
    """Recover a density model from gravity data.

    Parameters
    ----------
    op : LinearOperator
        G on the active cells: (n_active,) g/cc -> (n_data,) mGal (dense or compressed).
    data, sigma : (n_data,) numpy.ndarray
        Observed g_z and its standard deviation (> 0), mGal.
    reg : Regularisation
        Model objective; its active cells must match ``op``'s columns.
    lower, upper : float or (n_active,) numpy.ndarray
        Bounds, g/cc.
    initial : float or (n_active,) numpy.ndarray, optional
        Starting model (projected onto the bounds); the reference model by default.
    config : InversionConfig, optional
    sparse : SparseConfig, optional
        Sparse norms: after the L2 inversion, IRLS (:func:`msinv.core.solvers.irls`) with β
        re-searched at every re-weighting (modes 1; fixed in mode 2). Not with mode 3.
    callback : callable, optional
        ``callback(event, info)``: ``"cg"`` with ``{"iterations": k}`` after each CG iteration,
        ``"beta"`` with the :class:`BetaLog` fields and ``"model"`` after each β.
    keep_irls_weights : bool, default False
        Keep the IRLS weights a sparse inversion left on ``reg`` and solve that last
        re-weighted problem (what :func:`finish` does after a sparse inversion); by default
        they are removed first, so that a ``reg`` used before starts from least squares.

    Returns
    -------
    InversionResult
    """
    config = config or InversionConfig()
    if not keep_irls_weights:
        reg.clear_irls()
    data = np.asarray(data, dtype=np.float64)
    sigma = np.asarray(sigma, dtype=np.float64)
    if data.shape != op.shape_out or sigma.shape != op.shape_out:
        raise UserInputError(f"data and sigma must have {op.shape_out[0]} values")
    misfit = DataMisfit(op, data, sigma)
    if reg.n_active != op.shape_in[0]:
        raise UserInputError(
            f"regularisation has {reg.n_active} active cells, G has {op.shape_in[0]}"
        )
    if sparse is not None and config.mode == 3:
        raise UserInputError("sparse norms need mode 1 (target misfit) or 2 (fixed beta)")
    n = op.shape_in[0]
    gtd = misfit.normal_rhs()
    lo = np.broadcast_to(np.asarray(lower, dtype=np.float64), (n,))
    hi = np.broadcast_to(np.asarray(upper, dtype=np.float64), (n,))
    if initial is None:
        initial = reg.reference[reg.active]
    # the first solve's projected_cg projects its start onto [lo, hi]
    state = {"m": np.broadcast_to(np.asarray(initial, float), (n,)).copy()}
    state["irls"], state["eps"] = 0, None
    log: list[BetaLog] = []
    models: dict[float, np.ndarray] = {}

    def cg_progress(k):
        if callback is not None:
            callback("cg", {"iterations": k})

    def setup():
        reg_h = reg.normal_matrix()
        state["reg_h"], state["reg_b"] = reg_h, reg.rhs_vector()
        state["precondition_for"] = _preconditioner(config.preconditioner, reg_h, op, misfit.wd2)
        models.clear()

    def solve(beta: float) -> float:
        t0 = time.perf_counter()
        reg_h = state["reg_h"]

        def apply_a(v):
            return misfit.normal(v) + beta * (reg_h @ v)

        m, info = projected_cg(
            apply_a,
            gtd + beta * state["reg_b"],
            state["m"],
            lo,
            hi,
            tol=state.get("cg_tol", config.cg_tol),
            max_cg=config.max_cg,
            max_outer=config.max_outer,
            precondition=state["precondition_for"](beta),
            callback=cg_progress,
        )
        state["m"] = m
        models[beta] = m
        phi_d = misfit(m)
        terms = reg.terms(m)
        entry = BetaLog(
            beta,
            phi_d,
            sum(terms.values()),
            terms,
            info.cg_iterations,
            info.n_lower,
            info.n_upper,
            time.perf_counter() - t0,
            state["irls"],
            state["eps"],
        )
        log.append(entry)
        if callback is not None:
            callback("beta", {**entry.__dict__, "model": m})
        return phi_d

    setup()
    beta0 = (
        config.beta
        if config.beta is not None
        else config.beta_start * estimate_beta0(op, sigma, reg)
    )
    target = gcv = None
    converged = True
    if config.mode == 1:
        target = config.chifact * data.size
        res = beta_search(
            solve,
            target,
            beta0,
            rtol=config.tolc,
            max_iter=config.max_beta,
            slope=config.beta_slope,
        )
        beta, converged = res.beta, res.converged
    elif config.mode == 2:
        beta = beta0
        solve(beta)
    else:
        betas = beta0 * config.lcurve_step ** -np.arange(config.n_lcurve, dtype=float)
        for b in betas:
            solve(float(b))
        if config.mode3 == "lcurve":
            corner = lcurve_corner([e.phi_d for e in log], [e.phi_m for e in log])
        else:
            gcv = [
                gcv_score(
                    op,
                    sigma,
                    state["reg_h"],
                    e.beta,
                    e.phi_d,
                    models[e.beta],
                    lo,
                    hi,
                    config,
                    state["precondition_for"](e.beta),
                )
                for e in log
            ]
            corner = int(np.argmin(gcv))
        beta = log[corner].beta
    m = models[beta]
    if sparse is not None:
        beta, m, converged = _sparse(reg, sparse, m, beta, target, config, state, setup, solve)
    final = next(e for e in reversed(log) if e.beta == beta)
    return InversionResult(
        m, op.forward(m), beta, final.phi_d, final.phi_m, target, converged, log, gcv
    )


def gcv_score(
    op, sigma, reg_h, beta, phi_d, model, lower, upper, config, precondition=None
) -> float:
    r"""Generalised cross-validation function of one β (Wahba 1977; GRAV3D's mode 3).

    .. math:: V(\beta) = \frac{N\,\phi_d(\beta)}{\big(N - \mathrm{tr}\,A(\beta)\big)^2},
              \qquad A = W_d G_f (G_f^T W_d^2 G_f + \beta R_f)^{-1} G_f^T W_d ,

    with G_f, R_f restricted to the cells strictly inside the bounds (cells at a bound are
    fixed, as in the bounded solve). The trace is estimated by Hutchinson's method with
    ``config.n_gcv_probe`` Rademacher vectors (seed 0), each one CG solve preconditioned by
    ``precondition`` (the inversion's Jacobi preconditioner at β; the regularisation's
    diagonal when None).
    """
    from scipy.sparse.linalg import LinearOperator as ScipyOperator
    from scipy.sparse.linalg import cg

    n_data = sigma.size
    free = ((model > lower) & (model < upper)).astype(np.float64)
    if precondition is None:
        diag = reg_h.diagonal() * beta

        def precondition(r):
            return r / diag

    def apply(v):
        v = free * v
        return free * (op.adjoint(op.forward(v) / sigma**2) + beta * (reg_h @ v)) + (1 - free) * v

    n = free.size
    a = ScipyOperator((n, n), matvec=apply, dtype=np.float64)
    m_inv = ScipyOperator(
        (n, n), matvec=lambda r: free * precondition(free * r) + (1 - free) * r, dtype=np.float64
    )
    rng = np.random.default_rng(0)
    trace = 0.0
    for _ in range(config.n_gcv_probe):
        z = rng.choice([-1.0, 1.0], n_data)
        x, _info = cg(a, free * op.adjoint(z / sigma), rtol=config.cg_tol, maxiter=config.max_cg,
                      M=m_inv)  # fmt: skip
        trace += float(z @ (op.forward(free * x) / sigma))
    trace /= config.n_gcv_probe
    return float(n_data * phi_d / max(n_data - trace, 1e-12) ** 2)


def finish(
    op: LinearOperator,
    result: InversionResult,
    data: np.ndarray,
    sigma: np.ndarray,
    reg: Regularisation,
    *,
    lower=-np.inf,
    upper=np.inf,
    config: InversionConfig | None = None,
    callback: Callable[[str, dict], None] | None = None,
) -> InversionResult:
    """Finish an inversion made with an approximate G with the exact operator ``op``.

    The β search (mode 1) restarts at the β and model the approximate G reached, so it needs
    one or a few solves; modes 2 and 3 solve once more at their β. After a sparse inversion
    the last IRLS weights left on ``reg`` are kept: the exact G solves its last re-weighted
    problem. The result's φ_d is then
    the true misfit of the model returned, and ``phi_d_approximate`` keeps what the
    approximate G claimed; the log holds both stages.

    Parameters
    ----------
    op : LinearOperator
        The exact G (dense, or the exact forward) on the active cells.
    result : InversionResult
        The approximate inversion's result.
    data, sigma, reg, lower, upper, callback
        As given to :func:`invert`.
    config : InversionConfig, optional
        As given to :func:`invert`.
    """
    config = config or InversionConfig()
    again = replace(config, beta=result.beta, mode=1 if config.mode == 1 else 2)
    out = invert(
        op, data, sigma, reg, lower=lower, upper=upper, initial=result.model, config=again,
        callback=callback, keep_irls_weights=True,
    )  # fmt: skip
    out.log = result.log + out.log
    out.gcv = result.gcv
    out.levels = result.levels
    out.phi_d_approximate = result.phi_d
    return out


def _sparse(reg, sparse: SparseConfig, m, beta, target, config, state, setup, solve):
    """IRLS after the L2 solution: ``(beta, model, converged)`` (see :func:`invert`)."""
    keys = list(reg.terms_)
    norms = dict(zip(TERMS, sparse.norms, strict=True))
    floor = {}
    start = {}
    for k in keys:
        f = np.abs(reg.model_quantity(m, k))
        given = sparse.eps if k == "s" else sparse.eps_grad
        floor[k] = given if given is not None else max(float(np.percentile(f, 98)) / 10, 1e-12)
        start[k] = max(float(f.max()), floor[k])
    result = {"beta": beta, "converged": target is None}

    def reweight(x, k):
        eps = {key: max(start[key] / sparse.cooling ** (k + 1), floor[key]) for key in keys}
        state["irls"], state["eps"] = k + 1, eps
        reg.reweight(x, norms, eps)
        setup()
        state["m"] = x

    def search(rtol, beta):
        res = beta_search(solve, target, beta, rtol=rtol, factor=2.0, max_iter=config.max_beta)
        result["beta"], result["phi_d"] = res.beta, res.phi_d
        result["converged"] = abs(res.phi_d - target) <= config.tolc * target

    def solve_irls(x):
        if target is None:
            solve(result["beta"])
        else:
            search(max(config.tolc, sparse.misfit_tolerance), result["beta"])
        return state["m"]

    def at_floor(k, x, change):
        cooled = all(start[key] / sparse.cooling ** (k + 1) <= floor[key] for key in keys)
        return cooled and change <= sparse.tol

    state["cg_tol"] = sparse.cg_tol if sparse.cg_tol is not None else config.cg_tol
    out = irls(solve_irls, reweight, m, max_iter=sparse.max_irls, callback=at_floor)
    state["cg_tol"] = config.cg_tol
    if target is not None and not result["converged"]:
        # land within tolc with the last weights, starting from the ratio rule's prediction
        search(config.tolc, result["beta"] * target / result["phi_d"])
        return result["beta"], state["m"], result["converged"]
    return result["beta"], out.x, result["converged"]


def _preconditioner(kind: str, reg_h, op: LinearOperator, wd2: np.ndarray):
    """``beta -> (r -> M⁻¹ r)`` for the normal equations (see :class:`InversionConfig`)."""
    if kind == "jacobi":
        diag_d = 0.0
        if hasattr(op, "matrix") and isinstance(op.matrix, np.ndarray):
            g = op.matrix
            diag_d = np.zeros(g.shape[1])
            for i in range(0, g.shape[0], 64):  # by row blocks: no full-size temporary
                block = g[i : i + 64].astype(np.float64)
                diag_d += wd2[i : i + 64] @ (block * block)
        diag_r = reg_h.diagonal()
        return lambda beta: lambda r: r / (diag_d + beta * diag_r)
    return lambda beta: None
