"""The GRAV3D workflow as a library: sensitivity → weighting → compression → inversion.

The command line (``msinv gravity sensitivity`` / ``invert``) and the benchmarks call these
functions; nothing of the workflow lives in the CLI.

* :func:`build_sensitivity_file` (GZSEN3D): G of the active cells, its rows scaled by the
  depth/distance weights as GRAV3D does (``w·√(V/V_min)``, or ``√(V/V_min)`` when the weights go
  into the model objective instead, ``sens.inp`` line 8 = 0), wavelet-compressed block by block
  of stations within a memory budget (:func:`msinv.gravity.sensitivity.build_compressed`,
  resumable) or dense; saved with the mesh, the stations and the weights; writes GZSEN3D's
  ``sensitivity.txt`` (the RMS sensitivity of every cell) and a log.
* :func:`problem_from_control` (GZINV3D's input): the sensitivity (stations checked), data,
  active cells (1 / 0 / −1, cells 0 and −1 fixed at the reference model), the weights stored
  with the sensitivity and the user's weights file, bounds, α's, sparse norms.
* :func:`run_inversion`: the bounded inversion (L2, then IRLS for sparse norms), optionally
  coarse-to-fine (:mod:`msinv.gravity.multilevel`, each coarse level with its own sensitivity).
* :func:`write_inversion_outputs`: ``gzinv3d.den/.pre/.out/.log/.vtk/.json`` and, on request,
  the model and data of every iteration (``gzinv3d_NNN.den/.pre``).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from msinv.core.errors import UserInputError
from msinv.core.operator import LinearOperator


@dataclass(frozen=True)
class SensitivitySettings:
    """How G is built and stored (GZSEN3D's control file and options).

    Attributes
    ----------
    wavelet : str, default 'daub2'
        ``daub1``..``daub6``, ``symm4``..``symm6``, or ``NONE`` (dense G).
    rule, rstar, threshold : str, float, float
        Compression rule and its parameter (:class:`~msinv.gravity.compression.CompressionConfig`).
    scale_sensitivity : bool, default True
        True: rows are divided by the weights before compression (``sens.inp`` line 8 = 1);
        False: the weights go into the model objective only (line 8 = 0, sparse norms).
    dtype : str, default 'float32'
        ``float32`` or ``float64``: storage of a dense G.
    memory : int or None
        Memory limit in bytes (None: :func:`msinv.core.memory.memory_limit`'s default, half of
        the memory available at start); G is built in blocks of stations that fit in it.
    workers : int or None
        Compression threads (None: every core).
    """

    wavelet: str = "daub2"
    rule: str = "per_row"
    rstar: float = 0.05
    threshold: float = 1e-3
    scale_sensitivity: bool = True
    dtype: str = "float32"
    memory: int | None = None
    workers: int | None = None

    def __post_init__(self):
        if self.dtype not in ("float32", "float64"):
            raise UserInputError(f"dtype: expected float32 or float64, got {self.dtype!r}")
        if self.memory is not None and not self.memory > 0:
            raise UserInputError(f"memory: expected a budget > 0 bytes, got {self.memory}")
        if not self.dense:
            self.compression()  # validates wavelet, rule, r*, threshold

    @property
    def dense(self) -> bool:
        """No compression (``wavelet = NONE``)."""
        return self.wavelet.upper() == "NONE"

    @property
    def budget(self) -> int:
        """The memory limit in bytes (see :mod:`msinv.core.memory`)."""
        from msinv.core.memory import memory_limit

        return self.memory if self.memory is not None else memory_limit()

    def compression(self):
        """The :class:`~msinv.gravity.compression.CompressionConfig` of these settings."""
        from msinv.gravity.compression import CompressionConfig

        return CompressionConfig(
            self.wavelet.lower(),
            self.rule,
            self.rstar if self.rule != "threshold" else 0.05,
            self.threshold if self.rule == "threshold" else 1e-3,
        )

    def record(self) -> dict:
        """The settings as a JSON-able dict (provenance)."""
        return {
            "wavelet": self.wavelet,
            "rule": self.rule,
            "rstar": self.rstar,
            "threshold": self.threshold if self.rule == "threshold" else None,
            "scale_sensitivity": self.scale_sensitivity,
            "dtype": self.dtype,
            "memory_budget_bytes": self.budget,
        }


def read_cell_weights(path, mesh, active) -> np.ndarray:
    """Depth/distance weights of the active cells from a model-format file (> 0)."""
    from msinv.gravity.ubc import read_model

    w = read_model(path, mesh)[active]
    if np.any(w <= 0):
        raise UserInputError(f"{path}: weights of active cells must be > 0")
    return w


def row_scaling(mesh, active, weights, scale_sensitivity: bool) -> np.ndarray:
    """Scaling divided out of every row before compression: ``w·√(V/V_min)`` or ``√(V/V_min)``.

    The large padding cells then hold little energy and compress well (GRAV3D's model-norm
    scaling); the inversion's weights are stored apart.
    """
    vol = mesh.cell_volumes[active]
    return (weights if scale_sensitivity else 1.0) * np.sqrt(vol / vol.min())


def test_model(mesh, active) -> np.ndarray:
    """A block of 0.1 g/cc in the middle of the mesh (the compression's test model)."""
    c = mesh.cell_centers
    mid = [0.5 * (n[0] + n[-1]) for n in (mesh.nodes_x, mesh.nodes_y, mesh.nodes_z)]
    ext = [0.1 * (n[-1] - n[0]) for n in (mesh.nodes_x, mesh.nodes_y, mesh.nodes_z)]
    inside = np.all(np.abs(c - mid) <= ext, axis=1)
    return np.where(inside, 0.1, 0.0)[active]


@dataclass
class SensitivityResult:
    """What :func:`build_sensitivity_file` produced."""

    op: LinearOperator
    path: Path
    diagnostics: dict = field(default_factory=dict)
    seconds: float = 0.0


def build_sensitivity_file(
    mesh,
    stations: np.ndarray,
    active: np.ndarray,
    weights: np.ndarray | None,
    settings: SensitivitySettings,
    out,
    *,
    std: np.ndarray | None = None,
    sensitivity_txt=None,
    progress: Callable[[int, int], None] | None = None,
    log: Callable[[str], None] | None = None,
) -> SensitivityResult:
    """GZSEN3D: build G for ``stations`` on the active cells, compress it, save it.

    Parameters
    ----------
    mesh : discretize.TensorMesh
    stations : (n_data, 3) numpy.ndarray
        Station positions, metres.
    active : (n_cells,) bool numpy.ndarray
        Cells below the topography (G's columns).
    weights : (n_active,) numpy.ndarray or None
        Depth/distance weights (None: ones).
    settings : SensitivitySettings
    out : str or Path
        The sensitivity file (``gzinv3d.mtx``), written atomically.
    std : (n_data,) numpy.ndarray, optional
        Data uncertainties (adds the test model's χ²/N of the compression error).
    sensitivity_txt : str or Path, optional
        Where to write the RMS sensitivity of every cell (GZSEN3D's ``sensitivity.txt``).
    progress : callable, optional
        ``progress(done, total)`` over rows.
    log : callable, optional
        Receives the log lines (plan, blocks, result).

    Returns
    -------
    SensitivityResult
    """
    from msinv.gravity.sensitivity import (
        build_compressed,
        build_sensitivity,
        save_sensitivity,
        sensitivity_memory,
    )
    from msinv.gravity.ubc import write_model

    say = log or (lambda line: None)
    t0 = time.perf_counter()
    out = Path(out)
    active = np.asarray(active, dtype=bool)
    n_active = int(active.sum())
    st = np.atleast_2d(np.asarray(stations, dtype=np.float64))
    w = np.ones(n_active) if weights is None else np.asarray(weights, dtype=np.float64)
    record = settings.record()
    say(f"G: {st.shape[0]} data x {n_active} active cells")
    if settings.dense:
        need = sensitivity_memory(st.shape[0], n_active, settings.dtype)
        say(f"dense G: {need / 2**30:.2f} GiB {settings.dtype}")
        g = build_sensitivity(
            mesh,
            st,
            active,
            dtype=np.dtype(settings.dtype),
            chunk=16,
            max_bytes=settings.budget,
            callback=progress,
        )
        tmp = out.with_name(out.name + ".tmp")
        save_sensitivity(tmp, (g, active, w), mesh, record, stations=st)
        os.replace(tmp, out)
        from msinv.gravity.forward import GravityOperator

        op, rms = GravityOperator(g), np.sqrt(np.mean(np.square(g, dtype=np.float64), axis=0))
        diag = {"dense_bytes": int(g.nbytes)}
    else:
        scaling = row_scaling(mesh, active, w, settings.scale_sensitivity)
        model = test_model(mesh, active)
        op, rms, exact = build_compressed(
            mesh,
            st,
            active,
            scaling,
            settings.compression(),
            out,
            budget=settings.budget,
            model_weights=w,
            record=record,
            workers=settings.workers,
            progress=progress,
            log=say,
            probe=model,
        )
        diag = op.diagnostics(None, model, std, exact=exact)
        say(
            f"compression {diag['ratio_entries']:.1f}x ({diag['ratio_memory_vs_float64']:.1f}x "
            f"memory vs float64), r_i in [{diag['r_min']:.4f}, {diag['r_max']:.4f}], test-model "
            f"data error {diag['data_relative_error']:.2%}"
        )
    if sensitivity_txt is not None and rms is not None:
        values = np.zeros(mesh.n_cells)
        values[active] = rms
        write_model(sensitivity_txt, mesh, values, active=active)
        say(f"wrote {sensitivity_txt} (RMS sensitivity of every cell, mGal per g/cc)")
    seconds = time.perf_counter() - t0
    say(f"wrote {out} in {seconds:.1f} s")
    return SensitivityResult(op, out, diag, seconds)


@dataclass
class InversionProblem:
    """Everything GZINV3D needs, resolved from its control file.

    Attributes
    ----------
    mesh : discretize.TensorMesh
    op : LinearOperator
        G on the inversion's parameters (cells coded 1).
    data, std, locations : numpy.ndarray
        Observations (the contribution of fixed cells at the reference removed from ``data``).
    observed : numpy.ndarray
        The observations as read.
    reg : Regularisation
    lower, upper, initial : (n_parameters,) numpy.ndarray
    config : InversionConfig
    sparse : SparseConfig or None
    below : (n_cells,) bool numpy.ndarray
        Cells below the topography (written in outputs; others are −100).
    fixed_data : (n_data,) numpy.ndarray
        Data of the fixed cells (0 / −1) at the reference model, added back to predictions.
    notes : list of str
        Decisions worth a line in the log (e.g. the Lq scaling value recorded only).
    """

    mesh: object
    op: LinearOperator
    data: np.ndarray
    std: np.ndarray
    locations: np.ndarray
    observed: np.ndarray
    reg: object
    lower: np.ndarray
    upper: np.ndarray
    initial: np.ndarray
    config: object
    sparse: object
    below: np.ndarray
    fixed_data: np.ndarray
    notes: list[str] = field(default_factory=list)


class Selection(LinearOperator):
    """Embeds the parameters (cells coded 1) into G's columns (cells below the topography).

    Maps (n_parameters,) -> (n_columns,), zero in the other columns; its adjoint picks.
    """

    real_model = True

    def __init__(self, mask: np.ndarray):
        self.mask = np.asarray(mask, dtype=bool)
        self.shape_in, self.shape_out = (int(self.mask.sum()),), (self.mask.size,)
        self.dtype = np.dtype(np.float64)

    def forward(self, x):
        out = np.zeros(self.shape_out)
        out[self.mask] = x
        return out

    def adjoint(self, y):
        return np.asarray(y)[self.mask]

    @classmethod
    def example(cls, rng):
        return cls(rng.random(7) < 0.6)


def user_weights_from_file(path, mesh) -> dict:
    """A GRAV3D weights file (cells, then east, north, vertical interfaces) as the ``user``
    argument of :meth:`~msinv.gravity.regularisation.Regularisation.set_user_weights`."""
    from msinv.gravity.ubc_data import read_weights

    w = read_weights(path, mesh)
    return {k: np.asarray(getattr(w, k)).ravel(order="F") for k in "sxyz"}


def problem_from_control(control) -> InversionProblem:
    """Resolve a GZINV3D control file (an :class:`~msinv.gravity.control.InversionControl`).

    Raises
    ------
    ValueError
        When the files disagree (data vs sensitivity rows or stations), naming the files.
        Cells of an active-cells file above the sensitivity's topography stay inactive, with a
        note (``InversionProblem.notes``, written to ``gzinv3d.log``).
    """
    from msinv.gravity.inversion import InversionConfig, SparseConfig
    from msinv.gravity.regularisation import Regularisation, RegularisationConfig
    from msinv.gravity.sensitivity import load_sensitivity
    from msinv.gravity.ubc import model_or_value, read_active, read_model_within
    from msinv.gravity.ubc_data import read_observations

    c = control
    obs = read_observations(c.obs_file)
    op, mesh, below, w_sens = load_sensitivity(c.sensitivity_file, stations=obs.locations)
    if obs.n_data != op.shape_out[0]:
        raise UserInputError(
            f"{c.obs_file}: {obs.n_data} data, but the sensitivity {c.sensitivity_file} has "
            f"{op.shape_out[0]} rows"
        )
    codes = np.where(below, 1, 0)
    notes = []
    if c.active_file is not None:
        flags = read_active(c.active_file, mesh)
        outside = (flags != 0) & ~below
        if outside.any():
            notes.append(
                f"{int(outside.sum())} cells of {c.active_file} marked 1 or -1 lie above the "
                f"topography of {c.sensitivity_file} (no sensitivity): kept inactive (0)"
            )
        codes = np.where(below, flags, 0)
    weights = np.ones(mesh.n_cells)
    weights[below] = w_sens
    ref = model_or_value(c.reference_model, mesh, density=True)
    a = c.resolved_alphas
    reg = Regularisation(mesh, RegularisationConfig(*a, smooth=c.smooth), codes, weights, ref)
    if c.weights_file is not None:
        reg.set_user_weights(user_weights_from_file(c.weights_file, mesh))
        notes.append(f"user weights from {c.weights_file}")
    params = codes[below] == 1
    fixed = np.where(params, 0.0, ref[below])
    fixed_data = op.forward(fixed) if np.any(fixed) else np.zeros(op.shape_out)
    if not params.all():
        op = op @ Selection(params)
        notes.append(
            f"{int((~params).sum())} cells below the topography fixed at the reference model "
            "(active-cells file 0 / -1)"
        )
    config = InversionConfig(
        mode=c.mode,
        chifact=c.par if c.mode == 1 else 1.0,
        tolc=c.tolc,
        beta=c.par if c.mode == 2 else None,
    )
    sparse = None
    if c.norms is not None:
        scale, eps, eps_grad = c.norm_scaling or (0.5, None, None)
        names = ("p", "qx", "qy", "qz")
        norms = tuple(
            read_model_within(p, mesh, 0.0, 2.0, f"norm exponents {n}")
            if isinstance(p, Path)
            else float(p)
            for p, n in zip(c.norms, names, strict=True)
        )
        if isinstance(scale, Path):
            scale_text = f"from {scale}"
            scale = read_model_within(scale, mesh, 0.0, 1.0, "Lq scaling values")
        else:
            scale_text = f"{scale:g}"
        sparse = SparseConfig(norms=norms, eps=eps, eps_grad=eps_grad, scale=scale)
        notes.append(
            f"Lq scaling {scale_text}: recorded; msinv balances each sparse term by SimPEG's "
            "scaled IRLS weights instead"
        )
        files = [
            f"{n} from {p}" for p, n in zip(c.norms, names, strict=True) if isinstance(p, Path)
        ]
        if files:
            notes.append("per-cell norms: " + ", ".join(files))
    act = reg.active
    return InversionProblem(
        mesh=mesh,
        op=op,
        data=obs.values - fixed_data,
        std=obs.std,
        locations=obs.locations,
        observed=obs.values,
        reg=reg,
        lower=model_or_value(c.lower, mesh)[act],
        upper=model_or_value(c.upper, mesh)[act],
        initial=model_or_value(c.initial_model, mesh, density=True)[act],
        config=config,
        sparse=sparse,
        below=below,
        fixed_data=fixed_data,
        notes=notes,
    )


def run_inversion(
    problem: InversionProblem,
    *,
    levels: int = 1,
    build=None,
    callback: Callable[[str, dict], None] | None = None,
):
    """Invert a problem; with ``levels > 1`` coarse-to-fine (:mod:`msinv.gravity.multilevel`).

    ``build`` (a :class:`~msinv.gravity.multilevel.CoarseBuild`) says where and how the coarse
    levels' own sensitivities are built (default: for the problem's stations, in memory).

    Returns
    -------
    InversionResult
        Its ``predicted`` includes the fixed cells' data (it compares with the observations).
    """
    from msinv.gravity.inversion import invert

    p = problem
    if levels > 1:
        from msinv.gravity.multilevel import invert_multilevel

        res = invert_multilevel(p, levels, build=build, callback=callback)
    else:
        res = invert(
            p.op,
            p.data,
            p.std,
            p.reg,
            lower=p.lower,
            upper=p.upper,
            initial=p.initial,
            config=p.config,
            sparse=p.sparse,
            callback=callback,
        )
    res.predicted = res.predicted + p.fixed_data
    return res


def iteration_writer(problem: InversionProblem, out) -> Callable[[str, dict], None]:
    """A callback writing ``gzinv3d_NNN.den`` and ``.pre`` after every β solve."""
    from msinv.gravity.ubc import write_model
    from msinv.gravity.ubc_data import GravityData, write_data

    out = Path(out)
    count = [0]

    def write(event, info):
        if event != "beta":
            return
        count[0] += 1
        full = problem.reg.full_model(info["model"])
        write_model(out / f"gzinv3d_{count[0]:03d}.den", problem.mesh, full, active=problem.below)
        pre = problem.op.forward(info["model"]) + problem.fixed_data
        write_data(
            out / f"gzinv3d_{count[0]:03d}.pre",
            GravityData(problem.locations, pre),
            comment=f"msinv gravity invert: predicted data, iteration {count[0]}",
        )

    return write


def log_text(problem: InversionProblem, result, control_path=None, seconds=None) -> str:
    """``gzinv3d.log`` in GRAV3D's spirit: inputs, decisions, one line per β solve, result."""
    p = problem
    lines = ["msinv gravity invert (GZINV3D)", ""]
    if control_path is not None:
        lines.append(f"control file      : {control_path}")
    lines += [
        f"data              : {p.data.size}",
        f"parameters        : {p.op.shape_in[0]} cells (of {p.mesh.n_cells})",
        f"mode              : {p.config.mode}",
    ]
    if result.target is not None:
        lines.append(f"target misfit     : {result.target:.6g} (tolc {p.config.tolc:g})")
    if p.sparse is not None:
        lines.append(f"sparse norms      : p, qx, qy, qz = {_norms_text(p.sparse.norms)}")
    lines += [f"note              : {n}" for n in p.notes]
    lines += [
        f"level {lv['level']}           : {lv['parameters']} parameters, {lv['operator']}; "
        f"{lv['beta_solves']} beta solves, {lv['cg_iterations']} CG iterations, "
        f"phi_d {lv['phi_d']:.6g}"
        for lv in result.levels or []
    ]
    lines += ["", result.log_text().rstrip("\n")]
    irls = [e for e in result.log if e.irls]
    if irls:
        lines += ["", "# IRLS: iteration, eps per term, beta, phi_d"]
        lines += [
            f"# {e.irls:3d}  "
            + " ".join(f"{k}={v:.3e}" for k, v in (e.eps or {}).items())
            + f"  beta={e.beta:.4e}  phi_d={e.phi_d:.5e}"
            for e in irls
        ]
    if seconds is not None:
        lines.append(f"# elapsed: {seconds:.1f} s")
    return "\n".join(lines) + "\n"


def _norms_text(norms) -> str:
    return ", ".join(f"{n:g}" if np.ndim(n) == 0 else "file" for n in norms)


def write_inversion_outputs(
    problem: InversionProblem, result, out, *, control_path=None, seconds=None, record=None
) -> list[Path]:
    """Write ``gzinv3d.den``, ``.pre``, ``.out``, ``.log``, ``.vtk`` and ``.json`` in ``out``."""
    from msinv.core.provenance import provenance
    from msinv.gravity.ubc import write_model, write_vtk
    from msinv.gravity.ubc_data import GravityData, write_data

    out = Path(out)
    p = problem
    full = p.reg.full_model(result.model)
    paths = [out / f"gzinv3d.{ext}" for ext in ("den", "pre", "out", "log", "vtk", "json")]
    write_model(paths[0], p.mesh, full, active=p.below)
    write_data(
        paths[1],
        GravityData(p.locations, result.predicted),
        comment="msinv gravity invert: predicted data",
    )
    paths[2].write_text(result.log_text())
    paths[3].write_text(log_text(p, result, control_path, seconds))
    write_vtk(paths[4], p.mesh, {"density": full}, active=p.below)
    info = provenance(record or {})
    info.update(
        beta=result.beta,
        phi_d=result.phi_d,
        phi_d_compressed=result.phi_d_approximate,
        phi_m=result.phi_m,
        target=result.target,
        converged=result.converged,
        irls_iterations=max((e.irls for e in result.log), default=0),
        seconds=seconds,
    )
    paths[5].write_text(json.dumps(info, indent=2) + "\n")
    return paths
