"""Control files of GRAV3D's programs (PFWEIGHT, GZSEN3D, GZINV3D; v5 and v6) and the
command-line conventions of GZFOR3D and GZPRE3D.

Control files hold one item per line; ``!`` starts a comment; blank lines are skipped; a file
name may be quoted (``"my data.grv"``) and is taken relative to the control file's folder.
Numbers standing for a whole model are written ``VALUE x``; ``null`` means "none" or "use the
default", and msinv also accepts ``DEFAULT`` wherever ``null`` means a default.  Each reader
returns a frozen dataclass with every value resolved (absolute paths, numbers, defaults).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from msinv.core.errors import UserInputError
from msinv.gravity.ubc import GravityFileError, content_lines, last_line_number, parse_float

#: GRAV3D's default α_s, α_x, α_y, α_z.
DEFAULT_ALPHAS = (1e-4, 1.0, 1.0, 1.0)
#: Wavelets GZSEN3D offers (``daub1`` is Haar; ``daub2`` the 4-tap Daubechies wavelet).
WAVELETS = ("daub1", "daub2", "daub3", "daub4", "daub5", "daub6", "symm4", "symm5", "symm6")
_NULL = ("null", "default")
_WORD = re.compile(r'"([^"]*)"|\'([^\']*)\'|(\S+)')
_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eEdD][+-]?\d+)?$")


class _Lines:
    """The items of a control file, with line numbers for error messages."""

    def __init__(self, path: str | Path, program: str, required: int, maximum: int):
        self.path = Path(path)
        self.folder = self.path.resolve().parent
        self.items = content_lines(self.path)
        self.program = program
        if len(self.items) < required:
            raise GravityFileError(
                self.path,
                last_line_number(self.path),
                f"{required} items in a {program} control file, found {len(self.items)}",
            )
        if len(self.items) > maximum:
            line, text = self.items[maximum]
            raise GravityFileError(
                self.path, line, f"at most {maximum} items in a {program} control file", text
            )

    def get(self, index: int) -> tuple[int, str] | None:
        return self.items[index] if index < len(self.items) else None

    def error(self, index: int, expected: str) -> GravityFileError:
        line, text = self.items[index]
        return GravityFileError(self.path, line, expected, text)

    def words(self, index: int) -> list[str]:
        line, text = self.items[index]
        if text.count('"') % 2 or text.count("'") % 2:
            raise GravityFileError(self.path, line, "balanced quotes around a file name", text)
        return [next(g for g in m.groups() if g is not None) for m in _WORD.finditer(text)]

    def is_null(self, index: int) -> bool:
        words = self.words(index)
        return len(words) == 1 and words[0].lower() in _NULL

    def numbers(self, index: int, counts: Sequence[int], what: str) -> list[float]:
        """Numbers on a line (an optional leading ``VALUE`` is allowed)."""
        words = self.words(index)
        if words and words[0].upper() == "VALUE":
            words = words[1:]
        if len(words) not in counts:
            raise self.error(index, what)
        line = self.items[index][0]
        return [parse_float(self.path, line, w, what) for w in words]

    def file(self, index: int, what: str) -> Path:
        words = self.words(index)
        if len(words) != 1 or words[0].upper() == "VALUE" or words[0].lower() in _NULL:
            raise self.error(index, what)
        return self.folder / words[0]

    def file_or_null(self, index: int, what: str) -> Path | None:
        return None if self.is_null(index) else self.file(index, what)

    def file_or_value(self, index: int, what: str) -> Path | float:
        words = self.words(index)
        if words and words[0].upper() == "VALUE":
            return self.numbers(index, (1,), f"'VALUE x' ({what})")[0]
        return self.file(index, f"a file name or 'VALUE x' ({what})")

    def integer(self, index: int, allowed: Sequence[int], what: str) -> int:
        words = self.words(index)
        if len(words) != 1 or words[0] not in {str(a) for a in allowed}:
            raise self.error(index, f"{what}: one of {', '.join(map(str, allowed))}")
        return int(words[0])


# --------------------------------------------------------------------------------------------
# PFWEIGHT
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class WeightingControl:
    """A PFWEIGHT control file (v6), resolved.

    Attributes
    ----------
    field : {"GRAV", "MAG", "GG"}
        Data type; msinv computes weights for ``GRAV``.
    mesh_file, data_file : Path
        Mesh and survey (locations or observations) files.
    topography_file : Path or None
        Topography file, None for a flat surface on top of the mesh.
    weighting : {"depth", "distance"}
        Line 5 = 1 (depth) or 2 (distance).
    exponent : float or None
        α of the weighting function (None: the default, 2 for gravity).
    offset : float or None
        z_0 (depth) or R_0 (distance) in metres (None: the default).
    """

    field: str
    mesh_file: Path
    data_file: Path
    topography_file: Path | None
    weighting: str
    exponent: float | None = None
    offset: float | None = None

    def __post_init__(self):
        if self.field not in ("GRAV", "MAG", "GG"):
            raise UserInputError(f"field: expected GRAV, MAG or GG, got {self.field!r}")
        if self.weighting not in ("depth", "distance"):
            raise UserInputError(
                f"weighting: expected 'depth' or 'distance', got {self.weighting!r}"
            )
        if self.exponent is not None and not self.exponent > 0:
            raise UserInputError(f"exponent: expected > 0, got {self.exponent}")
        if self.offset is not None and not self.offset >= 0:
            raise UserInputError(f"offset: expected >= 0, got {self.offset}")


def read_pfweight_control(path: str | Path) -> WeightingControl:
    """Read a PFWEIGHT control file (type, mesh, data, topography, 1|2, ``alpha z0`` | null)."""
    c = _Lines(path, "PFWEIGHT", 6, 6)
    field = c.words(0)[0].upper() if len(c.words(0)) == 1 else ""
    if field not in ("GRAV", "MAG", "GG"):
        raise c.error(0, "the data type MAG, GRAV or GG")
    kind = {1: "depth", 2: "distance"}[c.integer(4, (1, 2), "1 (depth) or 2 (distance) weighting")]
    exponent = offset = None
    if not c.is_null(5):
        exponent, offset = c.numbers(5, (2,), "'alpha z0' (two numbers) or null")
        if exponent <= 0 or offset < 0:
            raise c.error(5, "alpha > 0 and z0 >= 0")
    return WeightingControl(
        field=field,
        mesh_file=c.file(1, "the mesh file"),
        data_file=c.file(2, "the observations or locations file"),
        topography_file=c.file_or_null(3, "a topography file or null"),
        weighting=kind,
        exponent=exponent,
        offset=offset,
    )


# --------------------------------------------------------------------------------------------
# GZSEN3D
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SensitivityControl:
    """A GZSEN3D control file (7 items in v5, 8 in v6), resolved.

    Attributes
    ----------
    mesh_file, data_file : Path
        Mesh and station (observations or locations) files.
    topography_file : Path or None
        None: flat surface on top of the mesh.
    weights_file : Path or None
        Depth/distance weights (a model file, e.g. PFWEIGHT's output); None: no weighting.
    wavelet : str or None
        One of :data:`WAVELETS`; None (``NONE`` in the file) for no compression.
    itol : {1, 2}, default 1
        1: ``eps`` is the relative reconstruction error r*; 2: ``eps`` is the threshold itself.
    eps : float, default 0.05
        See ``itol`` (``null`` gives itol = 1, eps = 0.05).
    diagnostics : bool, default False
        Write the compression diagnostic files.
    scale_sensitivity : bool, default True
        True: divide G by the weights (v6 line 8 = 1, and the only v5 behaviour); False: put
        the weights in the model objective function instead (needed for sparse norms).
    version : {5, 6}, default 6
        Which layout the file used.
    """

    mesh_file: Path
    data_file: Path
    topography_file: Path | None
    weights_file: Path | None
    wavelet: str | None
    itol: int = 1
    eps: float = 0.05
    diagnostics: bool = False
    scale_sensitivity: bool = True
    version: int = 6

    def __post_init__(self):
        if self.wavelet is not None and self.wavelet not in WAVELETS:
            raise UserInputError(
                f"wavelet: expected one of {WAVELETS} or None, got {self.wavelet!r}"
            )
        if self.itol not in (1, 2):
            raise UserInputError(f"itol: expected 1 or 2, got {self.itol}")
        if not self.eps > 0 or (self.itol == 1 and not self.eps < 1):
            raise UserInputError(f"eps: expected 0 < eps (< 1 when itol = 1), got {self.eps}")
        if self.version not in (5, 6):
            raise UserInputError(f"version: expected 5 or 6, got {self.version}")


def read_sensitivity_control(path: str | Path) -> SensitivityControl:
    """Read a GZSEN3D control file (v5: 7 items; v6: 8, the last the scaling option).

    ``null`` (or ``DEFAULT``) as the wavelet means ``daub2``; as ``itol eps``, ``1 0.05``.
    """
    c = _Lines(path, "GZSEN3D", 7, 8)
    wavelet, itol, eps = _wavelet_items(c, 4, 5)
    diagnostics = bool(c.integer(6, (0, 1), "diagnostic output 0 or 1"))
    scale = True if c.get(7) is None else bool(c.integer(7, (0, 1), "0 (scale MOF) or 1 (scale G)"))
    return SensitivityControl(
        mesh_file=c.file(0, "the mesh file"),
        data_file=c.file(1, "the observations or locations file"),
        topography_file=c.file_or_null(2, "a topography file or null"),
        weights_file=c.file_or_null(3, "a weights file or null"),
        wavelet=wavelet,
        itol=itol,
        eps=eps,
        diagnostics=diagnostics,
        scale_sensitivity=scale,
        version=6 if c.get(7) is not None else 5,
    )


# --------------------------------------------------------------------------------------------
# GZINV3D
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class InversionControl:
    """A GZINV3D control file (v5/v6: 12 items, then up to three optional sparse-norm items).

    Attributes
    ----------
    mode : {1, 2, 3}
        1: search β so that φ_d = chifact·N within ±tolc; 2: fixed β; 3: GCV / L-curve.
    par : float
        chifact in mode 1, β in mode 2, unused in mode 3.
    tolc : float
        Relative misfit tolerance (a 0 in the file means the default 0.02).
    obs_file, sensitivity_file : Path
        Observations file and sensitivity file.
    initial_model, reference_model : Path or float
        Model file or uniform value in g/cc.
    active_file : Path or None
        Active-cells file (1 / 0 / −1); None: every cell below the topography is active.
    lower, upper : Path or float
        Bounds in g/cc: file or value (``null`` gives −inf / +inf).
    alphas : (float, float, float, float) or None
        (α_s, α_x, α_y, α_z) as written; None when ``null`` or length scales were given.
    length_scales : (float, float, float) or None
        (L_x, L_y, L_z) in metres when the file gives three numbers instead of four.
    smooth : {"SMOOTH_MOD", "SMOOTH_MOD_DIF"}
        Reference model in the smallness term only, or in the derivative terms too.
    weights_file : Path or None
        User weights of the model objective function.
    norms : (float or Path, float or Path, float or Path, float or Path) or None
        v6 sparse norms (p, q_x, q_y, q_z) in [0, 2], each a number or a model file of
        per-cell values; None: least squares.
    norm_scaling : (float or Path, float or None, float or None) or None
        (scale, ε, ε_grad), scale a number or a model file of per-cell values; ε's None mean
        "choose from the L2 model"; only with ``norms``.
    """

    mode: int
    par: float
    tolc: float
    obs_file: Path
    sensitivity_file: Path
    initial_model: Path | float
    reference_model: Path | float
    active_file: Path | None
    lower: Path | float
    upper: Path | float
    alphas: tuple[float, float, float, float] | None
    length_scales: tuple[float, float, float] | None
    smooth: str
    weights_file: Path | None
    norms: tuple[float | Path, float | Path, float | Path, float | Path] | None = None
    norm_scaling: tuple[float | Path, float | None, float | None] | None = None

    def __post_init__(self):
        if self.mode not in (1, 2, 3):
            raise UserInputError(f"mode: expected 1, 2 or 3, got {self.mode}")
        if self.mode in (1, 2) and not self.par > 0:
            raise UserInputError(f"par: expected > 0 in mode {self.mode}, got {self.par}")
        if not 0 < self.tolc < 1:
            raise UserInputError(f"tolc: expected 0 < tolc < 1, got {self.tolc}")
        if self.alphas is not None and self.length_scales is not None:
            raise UserInputError("give alphas or length_scales, not both")
        if self.alphas is not None and (min(self.alphas) < 0 or max(self.alphas) == 0):
            raise UserInputError(f"alphas: expected >= 0 and not all zero, got {self.alphas}")
        if self.length_scales is not None and min(self.length_scales) <= 0:
            raise UserInputError(f"length_scales: expected > 0 m, got {self.length_scales}")
        if self.smooth not in ("SMOOTH_MOD", "SMOOTH_MOD_DIF"):
            raise UserInputError(
                f"smooth: expected SMOOTH_MOD or SMOOTH_MOD_DIF, got {self.smooth!r}"
            )
        if self.norms is not None and not all(
            isinstance(p, Path) or 0 <= p <= 2 for p in self.norms
        ):
            raise UserInputError(f"norms: expected four exponents in [0, 2], got {self.norms}")
        if isinstance(self.lower, float) and isinstance(self.upper, float):
            if not self.lower < self.upper:
                raise UserInputError(
                    f"bounds: expected lower < upper, got {self.lower}, {self.upper}"
                )

    @property
    def resolved_alphas(self) -> tuple[float, float, float, float]:
        """(α_s, α_x, α_y, α_z) to use.

        The written α's; GRAV3D's defaults (1e-4, 1, 1, 1) after ``null``; from length scales
        α_s = 1e-4 and α_i = α_s·L_i² (so L = √(α_i/α_s), and L = 100 m gives the defaults).
        """
        if self.alphas is not None:
            return self.alphas
        if self.length_scales is not None:
            a_s = DEFAULT_ALPHAS[0]
            lx, ly, lz = self.length_scales
            return (a_s, a_s * lx**2, a_s * ly**2, a_s * lz**2)
        return DEFAULT_ALPHAS

    @property
    def chifact(self) -> float:
        """Target misfit per datum (``par`` in mode 1)."""
        if self.mode != 1:
            raise UserInputError(f"chifact exists in mode 1 only (this file is mode {self.mode})")
        return self.par

    @property
    def beta(self) -> float:
        """Fixed trade-off parameter β (``par`` in mode 2)."""
        if self.mode != 2:
            raise UserInputError(
                f"a fixed beta exists in mode 2 only (this file is mode {self.mode})"
            )
        return self.par

    def target_misfit(self, n_data: int) -> float:
        """φ_d* = chifact · N (mode 1 only)."""
        if self.mode != 1:
            raise UserInputError(
                f"a target misfit exists in mode 1 only (this file is mode {self.mode})"
            )
        return self.par * n_data


def _mode_par_tolc(c: _Lines, modes: tuple[int, ...]) -> tuple[int, float, float]:
    """Lines 1-2 of GZINV3D and GZINVES: the mode, then ``par tolc`` (tolc 0 → 0.02; par > 0
    in modes 1 and 2)."""
    mode = c.integer(0, modes, "the inversion mode")
    par, tolc = c.numbers(1, (2,), "'par tolc' (two numbers)")
    tolc = 0.02 if tolc == 0 else tolc
    if mode in (1, 2) and par <= 0:
        raise c.error(1, f"par > 0 ({'chifact' if mode == 1 else 'beta'} in mode {mode})")
    if not 0 < tolc < 1:
        raise c.error(1, "a tolerance 0 <= tolc < 1")
    return mode, par, tolc


def _alphas_or_lengths(c: _Lines, index: int, n_alphas: int, what: str):
    """An α line: ``n_alphas`` α's (>= 0, not all 0), or ``n_alphas − 1`` length scales
    (> 0 m), or ``null``. Returns (alphas or None, lengths or None)."""
    if c.is_null(index):
        return None, None
    numbers = c.numbers(index, (n_alphas - 1, n_alphas), what)
    if len(numbers) == n_alphas:
        if min(numbers) < 0 or max(numbers) == 0:
            raise c.error(index, "alphas >= 0, not all zero")
        return tuple(numbers), None
    if min(numbers) <= 0:
        raise c.error(index, "length scales > 0 (metres)")
    return None, tuple(numbers)


def _bounds(c: _Lines, lower_index: int, upper_index: int):
    """Lower and upper bound items: file, ``VALUE x`` or ``null`` (∓inf), lower < upper."""
    lower = -math.inf if c.is_null(lower_index) else c.file_or_value(lower_index, "lower bound")
    upper = math.inf if c.is_null(upper_index) else c.file_or_value(upper_index, "upper bound")
    if isinstance(lower, float) and isinstance(upper, float) and not lower < upper:
        raise c.error(upper_index, f"an upper bound above the lower bound {lower}")
    return lower, upper


def _number_or_file(c: _Lines, index: int, word: str, what: str) -> float | Path:
    """One item of a line: a number, or a model file (relative to the control file, must
    exist)."""
    line = c.items[index][0]
    if _NUMBER.match(word):
        return parse_float(c.path, line, word, what)
    path = c.folder / word
    if not path.is_file():
        raise GravityFileError(c.path, line, f"{what}: a number or an existing file", word)
    return path


def _norms(c: _Lines, index: int) -> tuple:
    """Line 13: ``VALUE p qx qy qz``, or four items each a number or a model file of per-cell
    values (``p.txt 2 2 2``). Numbers must lie in [0, 2] (files are checked when read)."""
    words = c.words(index)
    expected = (
        "'VALUE p qx qy qz', four items each a number or a model file of per-cell norms, or null"
    )
    if words and words[0].upper() == "VALUE":
        norms = tuple(c.numbers(index, (4,), "'VALUE p qx qy qz' (four exponents)"))
    elif len(words) == 4:
        names = ("p", "qx", "qy", "qz")
        norms = tuple(
            _number_or_file(c, index, w, f"norm {n}") for w, n in zip(words, names, strict=True)
        )
    else:
        raise c.error(index, expected)
    if not all(isinstance(p, Path) or 0 <= p <= 2 for p in norms):
        raise c.error(index, "norm exponents between 0 and 2")
    return norms


def _norm_scaling(c: _Lines, index: int) -> tuple:
    """Line 14: ``scale eps epsGrad`` (``VALUE`` allowed first); ``scale`` a number in [0, 1]
    or a model file of per-cell values."""
    words = c.words(index)
    if words and words[0].upper() == "VALUE":
        words = words[1:]
    if len(words) != 3:
        raise c.error(index, "'scale eps epsGrad' (scale a number or a model file) or null")
    line = c.items[index][0]
    scale = _number_or_file(c, index, words[0], "Lq scaling")
    eps, eps_grad = (parse_float(c.path, line, w, "eps and epsGrad (numbers)") for w in words[1:])
    if not ((isinstance(scale, Path) or 0 <= scale <= 1) and eps > 0 and eps_grad > 0):
        raise c.error(index, "0 <= scale <= 1, eps > 0 and epsGrad > 0")
    return (scale, eps, eps_grad)


def read_inversion_control(path: str | Path) -> InversionControl:
    """Read a GZINV3D control file of GRAV3D v5 or v6.

    Items: mode; ``par tolc``; observations; sensitivity; initial model; reference model;
    active cells | null; lower bound; upper bound; ``αs αx αy αz`` | ``Lx Ly Lz`` | null;
    ``SMOOTH_MOD`` | ``SMOOTH_MOD_DIF``; weights | null; then optionally (v6) ``VALUE p qx qy
    qz`` | four items, each a number or a model file of per-cell values | null; ``scale eps
    epsGrad`` (scale a number or a model file) | null; MOF derivatives (must be null).

    A ``null`` initial model means "start from the reference model", a ``null`` reference model
    is 0, ``null`` bounds are ∓inf; ``null`` or ``DEFAULT`` α's are GRAV3D's defaults.
    """
    c = _Lines(path, "GZINV3D", 12, 15)
    mode, par, tolc = _mode_par_tolc(c, (1, 2, 3))

    reference = 0.0 if c.is_null(5) else c.file_or_value(5, "reference model")
    initial = reference if c.is_null(4) else c.file_or_value(4, "initial model")
    lower, upper = _bounds(c, 7, 8)

    alphas, scales = _alphas_or_lengths(c, 9, 4, "'αs αx αy αz', 'Lx Ly Lz' or null")

    words = c.words(10)
    smooth = words[0].upper() if len(words) == 1 else ""
    if smooth not in ("SMOOTH_MOD", "SMOOTH_MOD_DIF"):
        raise c.error(10, "SMOOTH_MOD or SMOOTH_MOD_DIF")

    norms = scaling = None
    if c.get(12) is not None and not c.is_null(12):
        norms = _norms(c, 12)
        scaling = (0.5, None, None)
        if c.get(13) is not None and not c.is_null(13):
            scaling = _norm_scaling(c, 13)
    if c.get(14) is not None and not c.is_null(14):
        raise c.error(14, "null (MOF derivatives are disabled in GRAV3D v6)")

    return InversionControl(
        mode=mode,
        par=par,
        tolc=tolc,
        obs_file=c.file(2, "the observations file"),
        sensitivity_file=c.file(3, "the sensitivity file"),
        initial_model=initial,
        reference_model=reference,
        active_file=c.file_or_null(6, "an active-cells file or null"),
        lower=lower,
        upper=upper,
        alphas=alphas,
        length_scales=scales,
        smooth=smooth,
        weights_file=c.file_or_null(11, "a weights file or null"),
        norms=norms,
        norm_scaling=scaling,
    )


# --------------------------------------------------------------------------------------------
# Writers (used by the embedded example and to hand files back to GRAV3D)
# --------------------------------------------------------------------------------------------


def _item(value: Path | float | None, folder: Path) -> str:
    if value is None:
        return "null"
    if isinstance(value, Path):
        try:
            text = str(value.resolve().relative_to(folder.resolve()))
        except ValueError:
            text = str(value)
        return f'"{text}"' if " " in text else text
    return f"VALUE {value!r}"


def write_pfweight_control(path: str | Path, control: WeightingControl) -> None:
    """Write a PFWEIGHT control file (paths relative to its folder when possible)."""
    f = Path(path).resolve().parent
    items = [
        (control.field, "MAG | GRAV | GG"),
        (_item(control.mesh_file, f), "tensor mesh"),
        (_item(control.data_file, f), "observations/survey file"),
        (_item(control.topography_file, f), "topography file | null"),
        ({"depth": "1", "distance": "2"}[control.weighting], "1=depth | 2=distance weighting"),
        (
            "null" if control.exponent is None else f"{control.exponent!r} {control.offset!r}",
            "alpha, z0 | null",
        ),
    ]
    _write_items(path, items)


def write_sensitivity_control(path: str | Path, control: SensitivityControl) -> None:
    """Write a GZSEN3D control file in the v6 layout (8 items)."""
    f = Path(path).resolve().parent
    items = [
        (_item(control.mesh_file, f), "mesh file"),
        (_item(control.data_file, f), "data file"),
        (_item(control.topography_file, f), "topography | null"),
        (_item(control.weights_file, f), "pf weights file | null"),
        (control.wavelet or "NONE", "wavelet: daubx, symmx, NONE"),
        (f"{control.itol} {control.eps!r}", "itol, eps | null"),
        (str(int(control.diagnostics)), "0-no output, 1-output diagnostic files"),
        (str(int(control.scale_sensitivity)), "0-scale MOF, 1-scale sens"),
    ]
    _write_items(path, items)


def write_inversion_control(path: str | Path, control: InversionControl) -> None:
    """Write a GZINV3D control file in the v6 layout (15 items)."""
    f = Path(path).resolve().parent

    def bound(value):
        return "null" if isinstance(value, float) and math.isinf(value) else _item(value, f)

    if control.alphas is not None:
        alphas = " ".join(map(repr, control.alphas))
    elif control.length_scales is not None:
        alphas = " ".join(map(repr, control.length_scales))
    else:
        alphas = "null"

    def word(value):
        return _item(value, f) if isinstance(value, Path) else repr(value)

    norms = "null"
    if control.norms is not None:
        norms = " ".join(map(word, control.norms))
        if not any(isinstance(p, Path) for p in control.norms):
            norms = "VALUE " + norms
    scaling = "null"
    if control.norm_scaling is not None and control.norm_scaling[1] is not None:
        scaling = " ".join(map(word, control.norm_scaling))
    items = [
        (str(control.mode), "mode: 1 | 2 | 3"),
        (f"{control.par!r} {control.tolc!r}", "par, tolc"),
        (_item(control.obs_file, f), "observations file"),
        (_item(control.sensitivity_file, f), "sensitivity file"),
        (_item(control.initial_model, f), "initial model"),
        (_item(control.reference_model, f), "reference model"),
        (_item(control.active_file, f), "active cells model | null"),
        (bound(control.lower), "lower bound"),
        (bound(control.upper), "upper bound"),
        (alphas, "alphaS alphaE alphaN alphaZ | Lx Ly Lz | null"),
        (control.smooth, "SMOOTH_MOD | SMOOTH_MOD_DIF"),
        (_item(control.weights_file, f), "additional weights | null"),
        (norms, "VALUE p qx qy qz | 4 items, numbers or per-cell files | null"),
        (scaling, "Lq scaling [0,1], zeroS, zeroXYZ | null"),
        ("null", "MOF derivatives | null"),
    ]
    _write_items(path, items)


def _write_items(path: str | Path, items: list[tuple[str, str]]) -> None:
    width = max(len(v) for v, _ in items) + 2
    Path(path).write_text("".join(f"{v:<{width}}! {c}\n" for v, c in items))


# --------------------------------------------------------------------------------------------
# GZFOR3D / GZPRE3D command lines
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ForwardArguments:
    """``gzfor3d mesh obs.loc model.den [topo.dat]`` → ``gzfor3d.grv`` (paths as given)."""

    mesh_file: Path
    locations_file: Path
    model_file: Path
    topography_file: Path | None = None
    output_file: Path = Path("gzfor3d.grv")

    @classmethod
    def from_argv(cls, argv: Sequence[str]) -> ForwardArguments:
        """Parse GZFOR3D's positional arguments (3 or 4)."""
        if len(argv) not in (3, 4):
            raise UserInputError(
                f"gzfor3d: expected 'MESH LOCATIONS MODEL [TOPO]', got {list(argv)}"
            )
        return cls(*(Path(a) for a in argv))


@dataclass(frozen=True)
class PredictArguments:
    """``gzpre3d gzinv3d.mtx obs.loc model.den`` → ``gzpre3d.grv`` (paths as given)."""

    sensitivity_file: Path
    locations_file: Path
    model_file: Path
    output_file: Path = Path("gzpre3d.grv")

    @classmethod
    def from_argv(cls, argv: Sequence[str]) -> PredictArguments:
        """Parse GZPRE3D's three positional arguments."""
        if len(argv) != 3:
            raise UserInputError(
                f"gzpre3d: expected 'SENSITIVITY LOCATIONS MODEL', got {list(argv)}"
            )
        return cls(*(Path(a) for a in argv))


# --------------------------------------------------------------------------------------------
# GZES: equivalent sources (GZSENES, GZINVES)
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LayerSensitivityControl:
    """A GZSENES control file, resolved (5 items).

    Attributes
    ----------
    mesh_file : Path
        Mesh of the layer: NZ = 1 (one layer, draped on the topography when there is one), or
        equal thicknesses from which the top cell below the topography of each column is taken.
    data_file : Path
        Observations or locations file.
    topography_file : Path or None
        None: a flat layer at the top of the mesh.
    wavelet : str or None
        One of :data:`WAVELETS`, or None (``NONE``) for no compression.
    itol : {1, 2}, default 1
        1: ``eps`` is the relative reconstruction error r*; 2: ``eps`` is the threshold.
    eps : float, default 0.05
        See ``itol``.
    """

    mesh_file: Path
    data_file: Path
    topography_file: Path | None
    wavelet: str | None
    itol: int = 1
    eps: float = 0.05


def read_layer_sensitivity_control(path: str | Path) -> LayerSensitivityControl:
    """Read a GZSENES control file: mesh / observations / topography | null / wavelet /
    ``itol eps`` (``null`` wavelet → ``daub2``, ``null`` tolerance → ``1 0.05``)."""
    c = _Lines(path, "GZSENES", 5, 5)
    wavelet, itol, eps = _wavelet_items(c, 3, 4)
    return LayerSensitivityControl(
        mesh_file=c.file(0, "the mesh file"),
        data_file=c.file(1, "the observations or locations file"),
        topography_file=c.file_or_null(2, "a topography file or null"),
        wavelet=wavelet,
        itol=itol,
        eps=eps,
    )


def _wavelet_items(c: _Lines, wavelet_index: int, tol_index: int):
    """The wavelet and ``itol eps`` items of GZSEN3D and GZSENES."""
    words = c.words(wavelet_index)
    name = words[0].lower() if len(words) == 1 else ""
    if name not in (*WAVELETS, "none", *_NULL):
        raise c.error(wavelet_index, f"a wavelet ({', '.join(WAVELETS)}) or NONE")
    wavelet = None if name == "none" else "daub2" if name in _NULL else name
    itol, eps = 1, 0.05
    if not c.is_null(tol_index):
        words = c.words(tol_index)
        if len(words) != 2 or words[0] not in ("1", "2"):
            raise c.error(tol_index, "'itol eps' with itol 1 or 2, or null")
        itol = int(words[0])
        eps = parse_float(c.path, c.items[tol_index][0], words[1], "eps (a number)")
        if not eps > 0 or (itol == 1 and not eps < 1):
            raise c.error(tol_index, "0 < eps < 1 (relative error, itol = 1) or eps > 0 (itol = 2)")
    return wavelet, itol, eps


@dataclass(frozen=True)
class LayerInversionControl:
    """A GZINVES control file, resolved (8 items).

    Attributes
    ----------
    mode : {1, 2}
        1: β such that φ_d = chifact·N within ±tolc; 2: fixed β.
    par, tolc : float
        chifact (mode 1) or β (mode 2); misfit tolerance (0 in the file → 0.02).
    obs_file, sensitivity_file : Path
        Observations (σ > 0) and the (compressed) matrix file of GZSENES.
    lower, upper : Path or float
        Bounds: file or ``VALUE x`` (``null`` → ∓inf).
    alphas : (float, float, float)
        α_s, α_x, α_y (GZES's 2-D model objective); from two length scales ``Le Ln``,
        α_s = 1e-4 and α_i = α_s·L_i²; ``null`` → (1e-4, 1, 1).
    full_file : Path or None
        The uncompressed matrix for the final iterations, or None.
    """

    mode: int
    par: float
    tolc: float
    obs_file: Path
    sensitivity_file: Path
    lower: Path | float
    upper: Path | float
    alphas: tuple[float, float, float]
    full_file: Path | None


def layer_alphas(alphas=None, lengths=None) -> tuple[float, float, float]:
    """GZINVES's α's: the three given, or from two length scales ``Le Ln`` (m) α_s = 1e-4 and
    α_i = α_s·L_i², or (1e-4, 1, 1)."""
    if lengths is not None:
        return (1e-4, *(1e-4 * length**2 for length in lengths))
    return tuple(alphas) if alphas is not None else (1e-4, 1.0, 1.0)


def read_layer_inversion_control(path: str | Path) -> LayerInversionControl:
    """Read a GZINVES control file (8 items; see :class:`LayerInversionControl`).

    The α line holds three numbers ``alpha_s alpha_x alpha_y`` (GZES's form), or two length
    scales ``Le Ln`` in metres, or ``null``; four numbers (GZINV3D's form) are refused.
    """
    c = _Lines(path, "GZINVES", 8, 8)
    mode, par, tolc = _mode_par_tolc(c, (1, 2))
    lower, upper = _bounds(c, 4, 5)
    alphas, scales = _alphas_or_lengths(c, 6, 3, "'alpha_s alpha_x alpha_y', 'Le Ln' or null")
    alphas = layer_alphas(alphas, scales)
    return LayerInversionControl(
        mode=mode,
        par=par,
        tolc=tolc,
        obs_file=c.file(2, "the observations file"),
        sensitivity_file=c.file(3, "the matrix file (gzinves.mtx)"),
        lower=lower,
        upper=upper,
        alphas=alphas,
        full_file=c.file_or_null(7, "the full matrix file or null"),
    )
