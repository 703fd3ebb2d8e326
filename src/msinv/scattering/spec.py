"""The forward model as one value: :class:`ForwardSpec`.

Geometry (grid, PML, acquisition), scheme, receiver reader, precision and backend determine
the data of a contrast; a :class:`ForwardSpec` names them together. :func:`simulate`,
:class:`~msinv.scattering.helmholtz.HelmholtzSolver`, :func:`~msinv.scattering.inversion.invert`,
the dataset stores (their ``config`` attribute) and the HDF5 importer take it and honour it; a
store carries its spec and everything downstream uses it unless told otherwise
(:meth:`ForwardSpec.override` says so when a caller's choice differs from the stored one).
"""

from __future__ import annotations

import dataclasses
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np

from msinv.core.errors import UserInputError
from msinv.scattering.geometry import Geometry
from msinv.scattering.receivers import check_reader
from msinv.scattering.schemes import Scheme, resolve_scheme, scheme_name

#: Scheme (or per-frequency policy) of a spec that does not name one: the cheapest that meets
#: the disk-oracle budget at every frequency of the paper's set-up (a 3 x 3 stencil; see
#: benchmarks/scatter_generate.py and docs/scattering.md). ``"wide8"`` is the published stencil.
DEFAULT_SCHEME = "compact-opt"
#: Default scheme of the inversions (FWI, Born least squares): as cheap, but not the data's
#: default, the guard against the inverse crime.
DEFAULT_INVERSION_SCHEME = "compact4"
#: Solver backends: ``"scipy"`` (sparse LU, :mod:`msinv.scattering.helmholtz`) and ``"torch"``
#: (:mod:`msinv.accel`, needs the ``learn`` extra; imported only when asked for).
BACKENDS = ("scipy", "torch")
_DTYPES = ("complex64", "complex128")


@dataclass(frozen=True)
class ForwardSpec:
    """Everything that determines the simulated data of a contrast, as one frozen value.

    Parameters
    ----------
    geometry : Geometry
        Grid, PML (``geometry.pml_width``, ``geometry.pml_strength``, or ``"auto"``: chosen
        per frequency) and acquisition.
    scheme : str
        A scheme name (``"wide8"``, see :data:`msinv.scattering.schemes.SCHEMES`), a wide order
        (``8``, stored as ``"wide8"``) or a per-frequency policy (``"auto"``).
    receiver_interpolation : {"representation", "cubic", "bilinear"}, default 'representation'
        Receiver reader (:mod:`msinv.scattering.receivers`); the published data: bilinear.
    dtype : {"complex64", "complex128"}, default 'complex64'
        Precision of the solves.
    backend : {"scipy", "torch"}, default 'scipy'
        Solver implementation (see :data:`BACKENDS`).
    """

    geometry: Geometry
    scheme: str = DEFAULT_SCHEME
    receiver_interpolation: str = "representation"
    dtype: str = "complex64"
    backend: str = "scipy"

    def __post_init__(self):
        if not isinstance(self.geometry, Geometry):
            raise UserInputError(
                f"geometry is a {type(self.geometry).__name__}: expected a msinv Geometry"
            )
        object.__setattr__(self, "scheme", scheme_name(self.scheme))
        check_reader(self.receiver_interpolation)
        try:
            dtype = np.dtype(self.dtype).name
        except TypeError:
            dtype = repr(self.dtype)
        if dtype not in _DTYPES:
            raise UserInputError(
                f"dtype={self.dtype!r}: expected numpy.complex64 or numpy.complex128"
            )
        object.__setattr__(self, "dtype", dtype)
        if self.backend not in BACKENDS:
            raise UserInputError(f"backend={self.backend!r}: expected one of {BACKENDS}")

    @property
    def pml(self) -> tuple[int | str, float | None]:
        """``(width in nodes, sigma_max)`` of the absorbing layer (held by the geometry;
        ``("auto", None)``: chosen per frequency, see :meth:`solver_at`)."""
        return self.geometry.pml_width, self.geometry.pml_strength

    @property
    def np_dtype(self) -> np.dtype:
        """:attr:`dtype` as a numpy dtype."""
        return np.dtype(self.dtype)

    def scheme_at(self, freq: float) -> Scheme:
        """The scheme used at frequency ``freq`` (a policy resolved per frequency)."""
        return resolve_scheme(self.scheme, float(freq), self.geometry)

    def solver_at(self, freq: float) -> dict[str, Any]:
        """What the finite-difference solver uses at ``freq``, as a JSON record: the scheme
        (a policy resolved) and the PML (a per-frequency PML resolved, see
        :meth:`Geometry.at`). Stores keep it for every frequency (``solver_per_freq``)."""
        g = self.geometry.at(freq)
        return {
            "freq": float(freq),
            "scheme": self.scheme_at(freq).name,
            "pml_width": g.pml_width,
            "pml_strength": g.pml_strength,
        }

    def replace(self, **changes: Any) -> ForwardSpec:
        """A copy with the given fields changed; ``None`` values are ignored."""
        changes = {k: v for k, v in changes.items() if v is not None}
        return dataclasses.replace(self, **changes) if changes else self

    def override(self, *, what: str = "the stored forward model", **changes: Any) -> ForwardSpec:
        """Like :meth:`replace`, but warn for every field that differs from this spec.

        Used where a spec comes from stored data (a dataset, an import) and the caller asks
        for something else: the result honours the caller and says so.
        """
        new = self.replace(**changes)
        for name in ("scheme", "receiver_interpolation", "dtype", "backend"):
            old, value = getattr(self, name), getattr(new, name)
            if old != value:
                warnings.warn(
                    f"{name}={value!r} overrides {what} ({name}={old!r})", UserWarning, stacklevel=2
                )
        return new

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable record (dataset attributes)."""
        return {
            "geometry": self.geometry.to_dict(),
            "scheme": self.scheme,
            "receiver_interpolation": self.receiver_interpolation,
            "dtype": self.dtype,
            "backend": self.backend,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ForwardSpec:
        """Inverse of :meth:`to_dict`. A record of the first store layout (``order`` instead of
        ``scheme``, no ``dtype``/``backend``) reads as the spec it was computed with."""
        d = dict(d)
        if "order" in d and "scheme" not in d:
            d["scheme"] = d.pop("order")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise UserInputError(
                f"ForwardSpec: unknown keys {sorted(unknown)}; expected {sorted(known)}"
            )
        if "geometry" not in d:
            raise UserInputError("ForwardSpec: missing key 'geometry'")
        geometry = d.pop("geometry")
        if isinstance(geometry, dict):
            geometry = Geometry.from_dict(geometry)
        return cls(geometry, **d)


def as_spec(geometry: Geometry | ForwardSpec, **overrides: Any) -> ForwardSpec:
    """A spec from a spec or a bare geometry, with the non-``None`` ``overrides`` applied."""
    if isinstance(geometry, ForwardSpec):
        return geometry.replace(**overrides)
    return ForwardSpec(geometry).replace(**overrides)
