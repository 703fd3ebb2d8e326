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
active neighbours count). Each term is written ``φ_k = ‖A_k m − b_k‖²`` on the active
parameters m, with sparse ``A_k`` (a :class:`SparseOperator`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from msinv.core.errors import UserInputError
from msinv.core.operator import LinearOperator

TERMS = ("s", "x", "y", "z")


@dataclass(frozen=True)
class RegularisationConfig:
    """α's and the reference-model convention.

    Attributes
    ----------
    alpha_s, alpha_x, alpha_y, alpha_z : float
        Weights of smallness and of the x (east), y (north), z derivatives; >= 0, not all 0.
        GRAV3D defaults 1e-4, 1, 1, 1.
    smooth : str
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
        user = user_weights or {}
        for key, value in user.items():
            if key not in TERMS or np.shape(value) != (n,) or np.any(np.asarray(value) < 0):
                raise UserInputError(f"user weight {key!r}: expected {n} values >= 0 for s/x/y/z")
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
        vol = mesh.cell_volumes
        h = [mesh.h[0], mesh.h[1], mesh.h[2]]
        for term in TERMS:
            if alphas[term] == 0:
                continue
            uw = np.asarray(user.get(term, np.ones(n)), dtype=np.float64)
            if term == "s":
                keep = np.flatnonzero(inside)
                rows = sp.eye(n, format="csr")[keep]
                coef = np.sqrt(alphas[term] * vol[keep] * uw[keep])
                shift = ref
            else:
                axis = TERMS.index(term) - 1
                d, pairs = _difference(mesh.shape_cells, axis)
                keep = np.flatnonzero(inside[pairs[:, 0]] & inside[pairs[:, 1]])
                rows, pairs = d[keep], pairs[keep]
                centres = np.asarray(mesh.cell_centers)[:, axis]
                dist = centres[pairs[:, 1]] - centres[pairs[:, 0]]
                face_vol = vol[pairs[:, 0]] / h[axis][_axis_index(mesh, pairs[:, 0], axis)] * dist
                face_w = 0.5 * (uw[pairs[:, 0]] + uw[pairs[:, 1]])
                coef = np.sqrt(alphas[term] * face_vol * face_w) / dist
                shift = ref if self.config.smooth == "SMOOTH_MOD_DIF" else np.zeros(n)
            a_full = sp.diags_array(coef) @ rows @ scale_w
            self.operators[term] = SparseOperator(a_full @ select)
            self.rhs[term] = -(a_full @ (fixed - shift))

    @property
    def n_active(self) -> int:
        """Number of model parameters (cells coded 1)."""
        return int(self.active.sum())

    def terms(self, m: np.ndarray) -> dict[str, float]:
        """Each φ_m term ``‖A_k m − b_k‖²`` (keys ``s``, ``x``, ``y``, ``z``)."""
        return {
            k: float(np.sum((op.forward(m) - self.rhs[k]) ** 2)) for k, op in self.operators.items()
        }

    def __call__(self, m: np.ndarray) -> float:
        """φ_m(m)."""
        return sum(self.terms(m).values())

    def hessian(self, v: np.ndarray) -> np.ndarray:
        """``Σ A_kᵀ A_k v`` (half the Hessian of φ_m)."""
        return sum(op.adjoint(op.forward(v)) for op in self.operators.values())

    def rhs_vector(self) -> np.ndarray:
        """``Σ A_kᵀ b_k`` (minus half the gradient of φ_m at 0)."""
        return sum(op.adjoint(self.rhs[k]) for k, op in self.operators.items())

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
