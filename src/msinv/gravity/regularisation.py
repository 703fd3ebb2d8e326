"""GRAV3D's model objective function: weighted smallness and smoothness (GZINV3D).

.. math:: \\phi_m = \\alpha_s\\int w_s \\{w(\\rho-\\rho_0)\\}^2 dv
          + \\sum_{i\\in\\{x,y,z\\}} \\alpha_i \\int w_i
          \\Big\\{\\frac{\\partial\\, w(\\rho - c\\,\\rho_0)}{\\partial i}\\Big\\}^2 dv

with w the depth/distance weight, ``c = 0`` for ``SMOOTH_MOD`` (reference model in the smallness
only) and ``c = 1`` for ``SMOOTH_MOD_DIF``. Derivatives are differences between neighbouring
cells divided by the distance between their centres; the integral over the "face volume"
(face area x centre distance) gives each difference its weight.

Active cells (GRAV3D's 1 / 0 / -1): 1 cells are model parameters; 0 and -1 cells are fixed (at
the reference model); 0 cells are left out of φ_m, -1 cells stay in it (their differences with
active neighbours count). Each term is a :class:`~msinv.core.regularisation.WeightedTerm`
``φ_k = Σ_i u_i (A_k m − b_k)_i²`` on the active parameters m, with sparse ``A_k`` (a
:class:`SparseOperator`) and row weights ``u`` that are set after construction: the user's
weights (GRAV3D's weights file; face weights the mean of the two cells) and, for sparse norms,
the IRLS weights of :meth:`Regularisation.reweight` (GRAV3D v6 lines 13–14):

.. math:: \\phi_m^{p,q} = \\alpha_s\\sum_j V_j\\,\\rho_{p}(f^s_j) + \\sum_{i} \\alpha_i
          \\sum_{faces} V_f\\,\\rho_{q_i}(f^i_f), \\qquad \\rho_p(f) \\approx (f^2+\\epsilon^2)^{p/2},

with :math:`f^s = \\rho-\\rho_0` and :math:`f^i` the difference of :math:`w\\rho` across a face
divided by the distance between the cell centres and by the face's mean weight (≈ the
gradient of ρ): the depth/distance weights w weight the norm, they are not inside its argument,
as GRAV3D v6 puts them "in the model objective" for sparse norms (and SimPEG's ``Sparse``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from msinv.core.errors import UserInputError
from msinv.core.operator import LinearOperator
from msinv.core.regularisation import LpNorm, WeightedTerm

TERMS = ("s", "x", "y", "z")


@dataclass(frozen=True)
class RegularisationConfig:
    """α's and the reference-model convention.

    Attributes
    ----------
    alpha_s, alpha_x, alpha_y, alpha_z : float
        Weights of smallness and of the x (east), y (north), z derivatives; >= 0, not all 0.
        GRAV3D defaults 1e-4, 1, 1, 1.
    smooth : str, default 'SMOOTH_MOD'
        ``"SMOOTH_MOD"`` or ``"SMOOTH_MOD_DIF"``.
    """

    alpha_s: float = 1e-4
    alpha_x: float = 1.0
    alpha_y: float = 1.0
    alpha_z: float = 1.0
    smooth: str = "SMOOTH_MOD"

    def __post_init__(self):
        a = (self.alpha_s, self.alpha_x, self.alpha_y, self.alpha_z)
        if min(a) < 0 or max(a) == 0:
            raise UserInputError(f"alphas must be >= 0 and not all zero, got {a}")
        if self.smooth not in ("SMOOTH_MOD", "SMOOTH_MOD_DIF"):
            raise UserInputError(
                f"smooth must be SMOOTH_MOD or SMOOTH_MOD_DIF, got {self.smooth!r}"
            )

    @classmethod
    def from_length_scales(
        cls, lx: float, ly: float, lz: float, alpha_s: float = 1e-4, smooth: str = "SMOOTH_MOD"
    ) -> RegularisationConfig:
        """α_i = α_s L_i² (so L = √(α_i/α_s)); lengths in metres, > 0."""
        if min(lx, ly, lz) <= 0:
            raise UserInputError(f"length scales must be > 0 m, got {(lx, ly, lz)}")
        return cls(alpha_s, alpha_s * lx**2, alpha_s * ly**2, alpha_s * lz**2, smooth)


class SparseOperator(LinearOperator):
    """A real sparse matrix as an operator (the regularisation's gradient operators)."""

    real_model = True

    def __init__(self, matrix):
        self.matrix = sp.csr_array(matrix)
        self.shape_out, self.shape_in = (self.matrix.shape[0],), (self.matrix.shape[1],)
        self.dtype = np.dtype(np.float64)

    def forward(self, x):
        """``A x``: (n_in,) -> (n_out,)."""
        return self.matrix @ x

    def adjoint(self, y):
        """``Aᵀ y``: (n_out,) -> (n_in,)."""
        return self.matrix.T @ y

    @classmethod
    def example(cls, rng):
        """The x-derivative term of a random 4x3x3 mesh with mixed active codes."""
        from discretize import TensorMesh

        mesh = TensorMesh([rng.uniform(1, 2, 4), rng.uniform(1, 2, 3), rng.uniform(1, 2, 3)])
        codes = rng.choice([1, 1, 1, 0, -1], mesh.n_cells)
        reg = Regularisation(mesh, active_codes=codes, weights=rng.uniform(0.5, 1, mesh.n_cells))
        return reg.operators["x"]


def _difference(n: tuple[int, int, int], axis: int) -> tuple[sp.csr_array, np.ndarray]:
    """Differences u[next] - u[this] along ``axis`` on the (nx, ny, nz) Fortran-ordered grid."""
    idx = np.arange(np.prod(n)).reshape(n, order="F")
    this = np.take(idx, np.arange(n[axis] - 1), axis=axis).ravel(order="F")
    nxt = np.take(idx, np.arange(1, n[axis]), axis=axis).ravel(order="F")
    rows = np.arange(this.size)
    d = sp.csr_array(
        (np.r_[-np.ones(this.size), np.ones(this.size)], (np.r_[rows, rows], np.r_[this, nxt])),
        shape=(this.size, int(np.prod(n))),
    )
    return d, np.column_stack([this, nxt])


class Regularisation:
    """Model objective φ_m of GZINV3D on a tensor mesh.

    Parameters
    ----------
    mesh : discretize.TensorMesh
        3-D tensor mesh.
    config : RegularisationConfig, optional
    active_codes : (n_cells,) int numpy.ndarray, optional
        1 / 0 / -1 per cell (see module notes); all 1 by default.
    weights : (n_cells,) numpy.ndarray, optional
        Depth/distance weight w (> 0) of every cell; ones by default.
    reference : (n_cells,) numpy.ndarray, optional
        Reference model ρ_0 (g/cc); also the value of fixed cells. Zeros by default.
    user_weights : dict, optional
        Extra cell weights ``{"s": ws, "x": wx, "y": wy, "z": wz}`` ((n_cells,) each, >= 0);
        face weights are the mean of the two cells.
    """

    def __init__(
        self,
        mesh,
        config: RegularisationConfig | None = None,
        active_codes=None,
        weights=None,
        reference=None,
        user_weights: dict | None = None,
    ):
        self.config = config or RegularisationConfig()
        n = mesh.n_cells
        codes = np.ones(n, dtype=int) if active_codes is None else np.asarray(active_codes)
        if codes.shape != (n,) or not np.all(np.isin(codes, (-1, 0, 1))):
            raise UserInputError(f"active cells must be {n} values of 1, 0 or -1")
        w = np.ones(n) if weights is None else np.asarray(weights, dtype=np.float64)
        if w.shape != (n,) or np.any(w <= 0):
            raise UserInputError(f"weights must be {n} positive values")
        ref = np.zeros(n) if reference is None else np.asarray(reference, dtype=np.float64)
        if ref.shape != (n,):
            raise UserInputError(f"reference model must have {n} values, got {ref.shape}")
        self.active = codes == 1
        self.codes, self.weights, self.reference = codes, w, ref
        inside = codes != 0
        select = sp.csr_array(sp.eye(n, format="csr")[:, np.flatnonzero(self.active)])
        # full model = select @ m + fixed
        fixed = np.where(self.active, 0.0, ref)
        scale_w = sp.diags_array(w)
        alphas = dict(
            zip(
                TERMS,
                (
                    self.config.alpha_s,
                    self.config.alpha_x,
                    self.config.alpha_y,
                    self.config.alpha_z,
                ),
                strict=True,
            )
        )
        self.operators: dict[str, SparseOperator] = {}
        self.rhs: dict[str, np.ndarray] = {}
        self.terms_: dict[str, WeightedTerm] = {}
        self._unit: dict[str, np.ndarray] = {}  # residual / unit = f (the model or its gradient)
        self._rows: dict[str, np.ndarray] = {}  # (n_rows, 1 or 2) cells of each row
        self._keep: dict[str, np.ndarray] = {}  # rows kept among the full grid's cells / faces
        self._n_faces: dict[str, int] = {}
        vol = mesh.cell_volumes
        h = [mesh.h[0], mesh.h[1], mesh.h[2]]
        for term in TERMS:
            if alphas[term] == 0:
                continue
            if term == "s":
                keep = np.flatnonzero(inside)
                rows = sp.eye(n, format="csr")[keep]
                coef = np.sqrt(alphas[term] * vol[keep])
                unit, cells = coef * w[keep], keep[:, None]
                shift = ref
            else:
                axis = TERMS.index(term) - 1
                d, pairs = _difference(mesh.shape_cells, axis)
                keep = np.flatnonzero(inside[pairs[:, 0]] & inside[pairs[:, 1]])
                self._n_faces[term] = pairs.shape[0]
                rows, pairs = d[keep], pairs[keep]
                centres = np.asarray(mesh.cell_centers)[:, axis]
                dist = centres[pairs[:, 1]] - centres[pairs[:, 0]]
                face_vol = vol[pairs[:, 0]] / h[axis][_axis_index(mesh, pairs[:, 0], axis)] * dist
                coef = np.sqrt(alphas[term] * face_vol) / dist
                unit, cells = coef * dist * 0.5 * (w[pairs[:, 0]] + w[pairs[:, 1]]), pairs
                shift = ref if self.config.smooth == "SMOOTH_MOD_DIF" else np.zeros(n)
            a_full = sp.diags_array(coef) @ rows @ scale_w
            self.operators[term] = SparseOperator(a_full @ select)
            self.rhs[term] = -(a_full @ (fixed - shift))
            self.terms_[term] = WeightedTerm(self.operators[term], self.rhs[term])
            self._unit[term], self._rows[term], self._keep[term] = unit, cells, keep
        self.set_user_weights(user_weights)

    def _row_values(self, term: str, cell_values: np.ndarray) -> np.ndarray:
        """Cell values at the rows of a term: the cell (smallness), the mean of the face's two."""
        return np.asarray(cell_values, dtype=np.float64)[self._rows[term]].mean(axis=1)

    def set_user_weights(self, user: dict | None) -> None:
        """Set the user's weights of the terms (GRAV3D's weights file), replacing earlier ones.

        Parameters
        ----------
        user : dict or None
            ``{"s": ws, "x": wx, "y": wy, "z": wz}``, each >= 0 and either (n_cells,) cell
            values (a face takes the mean of its two cells) or, for ``x``/``y``/``z``, one value
            per interface of the full grid in Fortran order ((nx−1)·ny·nz for ``x``…, as
            :class:`~msinv.gravity.ubc_data.ObjectiveWeights` flattened with ``order="F"``).
            Terms absent from ``user`` get no user weight.
        """
        user = user or {}
        n = self.codes.size
        for key, value in user.items():
            value = np.asarray(value, dtype=np.float64)
            sizes = (n,) if key == "s" else (n, self._n_faces.get(key, -1))
            if key not in TERMS or value.ndim != 1 or value.size not in sizes or np.any(value < 0):
                raise UserInputError(
                    f"user weight {key!r}: expected {' or '.join(map(str, sizes))} values >= 0"
                )
        for key, term in self.terms_.items():
            w = None
            if key in user:
                value = np.asarray(user[key], dtype=np.float64)
                w = self._row_values(key, value) if value.size == n else value[self._keep[key]]
            term.set_weights("user", w)

    def reweight(
        self, m: np.ndarray, norms: dict[str, np.ndarray | float], eps: dict[str, float]
    ) -> None:
        """Set the IRLS weights of every term from the model ``m`` (sparse norms).

        Parameters
        ----------
        m : (n_active,) numpy.ndarray
            Current model.
        norms : dict
            Exponent of each term (``"s"``: p, ``"x"``, ``"y"``, ``"z"``: q's) in [0, 2], a
            number or (n_cells,) values (faces take the mean of their two cells).
        eps : dict
            Threshold ε of each term (> 0): g/cc for ``s``, g/cc per metre for the others.

        Notes
        -----
        With :math:`f` the term's model quantity (see the module notes) the weights are
        SimPEG's scaled Lawson weights :math:`u = \\gamma (f^2+\\epsilon^2)^{(p-2)/2}`, with
        :math:`\\gamma` chosen so that the largest gradient :math:`u f` of the term equals that of
        least squares, :math:`\\max|f|`, at :math:`|f| = \\max|f|` (at
        :math:`\\epsilon/\\sqrt{1-p}` for p < 1, where :math:`u f` peaks): each term keeps its
        balance with the misfit as the norm changes. ``p = 2`` gives ``u = 1``.
        """
        for key, term in self.terms_.items():
            f = term.residual(m) / self._unit[key]
            p = np.broadcast_to(
                self._row_values(key, np.broadcast_to(norms[key], (self.codes.size,))), f.shape
            )
            lp = LpNorm(p, eps[key])
            fmax = float(np.abs(f).max())
            l2_max = np.full(f.shape, fmax)
            small = p < 1
            l2_max[small] = eps[key] / np.sqrt(1.0 - p[small])
            lp_values = l2_max * lp.weights(l2_max)
            gamma = np.where(lp_values > 0, fmax / np.where(lp_values > 0, lp_values, 1.0), 1.0)
            term.set_weights("irls", gamma * lp.weights(f))

    def clear_irls(self) -> None:
        """Remove the IRLS weights (back to least squares)."""
        for term in self.terms_.values():
            term.set_weights("irls", None)

    def model_quantity(self, m: np.ndarray, term: str) -> np.ndarray:
        """``f`` of a term: ``ρ−ρ0`` per cell, or the difference of ``wρ`` per metre divided by
        the face's mean weight."""
        return self.terms_[term].residual(m) / self._unit[term]

    @property
    def n_active(self) -> int:
        """Number of model parameters (cells coded 1)."""
        return int(self.active.sum())

    def terms(self, m: np.ndarray) -> dict[str, float]:
        """Each φ_m term ``Σ u (A_k m − b_k)²`` (keys ``s``, ``x``, ``y``, ``z``)."""
        return {k: t.value(m) for k, t in self.terms_.items()}

    def __call__(self, m: np.ndarray) -> float:
        """φ_m(m)."""
        return sum(self.terms(m).values())

    def hessian(self, v: np.ndarray) -> np.ndarray:
        """``Σ A_kᵀ U_k A_k v`` (half the Hessian of φ_m)."""
        return sum(t.normal(v) for t in self.terms_.values())

    def rhs_vector(self) -> np.ndarray:
        """``Σ A_kᵀ U_k b_k`` (minus half the gradient of φ_m at 0)."""
        return sum(t.normal_rhs() for t in self.terms_.values())

    def normal_matrix(self) -> sp.csr_array:
        """``Σ A_kᵀ U_k A_k`` as a sparse matrix (n_active, n_active)."""
        return sum(t.normal_matrix() for t in self.terms_.values()).tocsr()

    def full_model(self, m: np.ndarray, fill: float | None = None) -> np.ndarray:
        """Cell model (n_cells,) from parameters: fixed cells at the reference, or ``fill``."""
        full = self.reference.copy()
        if fill is not None:
            full[~self.active] = fill
        full[self.active] = m
        return full


def _axis_index(mesh, cells: np.ndarray, axis: int) -> np.ndarray:
    nx, ny, _ = mesh.shape_cells
    return (cells % nx, (cells // nx) % ny, cells // (nx * ny))[axis]
