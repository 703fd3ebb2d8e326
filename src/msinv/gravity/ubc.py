"""UBC-GIF (GRAV3D) tensor mesh and model files, and VTK output of models for ParaView.

The files are plain ASCII; ``!`` starts a comment, on its own line or at the end of a line.

Mesh file::

    NE NN NZ                 ! number of cells east, north, vertical
    E0 N0 Z0                 ! south-west-TOP corner; Z0 is an elevation (positive up)
    w_1 ... w_NE             ! cell widths east,  "n*w" repeats w n times
    w_1 ... w_NN             ! cell widths north
    t_1 ... t_NZ             ! cell thicknesses, top to bottom

The widths of one axis may wrap over several lines; the reader counts values, not lines.

Model file (density, bounds, weights, active cells): one value per cell, z fastest from the
top down, then east, then north.  :func:`read_model` returns values in the ordering of
``discretize.TensorMesh`` instead (x = east fastest, then y = north, then z from the bottom up)
and :func:`write_model` converts back, so that every array handed around in msinv is in mesh
order.  Cells above the topography are written as :data:`ABOVE_TOPOGRAPHY` (−100).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Mapping
from pathlib import Path

import numpy as np

from msinv.core.errors import UserInputError
from msinv.core.optional import require

#: Value GRAV3D writes for cells above the topography in output models.
ABOVE_TOPOGRAPHY = -100.0

_REPEAT = re.compile(r"^(\d+)\*(.+)$")


class GravityFileError(UserInputError):
    """A GRAV3D-style file that is not what was expected.

    The message reads ``"<file>: line <n>: expected <what>[, found '<token>']"``.

    Parameters
    ----------
    path : str or Path
        The offending file.
    line : int
        1-based line number in that file (the last line when the file ends too early).
    expected : str
        What the reader expected there.
    found : str, optional
        The text it found instead.
    """

    def __init__(self, path: str | Path, line: int, expected: str, found: str | None = None):
        self.path, self.line = Path(path), int(line)
        message = f"{path}: line {line}: expected {expected}"
        if found is not None:
            message += f", found {found!r}"
        super().__init__(message)


def content_lines(path: str | Path) -> list[tuple[int, str]]:
    """Non-empty lines of a text file with ``!`` comments removed.

    Parameters
    ----------
    path : str or Path
        File to read (any line ending: LF, CRLF or CR).

    Returns
    -------
    list of (int, str)
        ``(line_number, text)`` pairs, 1-based line numbers, text stripped of the comment and of
        surrounding white space; lines left empty are dropped.
    """
    path = Path(path)
    out = []
    for number, line in enumerate(read_text(path).splitlines(), start=1):
        body = line.split("!", 1)[0].strip()
        if body:
            out.append((number, body))
    return out


def read_text(path: str | Path) -> str:
    """Text of a file (UTF-8, a byte-order mark dropped); a folder is a :class:`UserInputError`."""
    path = Path(path)
    if path.is_dir():
        raise UserInputError(f"{path}: expected a file, found a directory")
    return path.read_text(encoding="utf-8-sig", errors="replace")


def last_line_number(path: str | Path) -> int:
    """Number of lines of a text file (at least 1), for errors about a file ending too early."""
    return max(1, len(read_text(path).splitlines()))


def parse_float(path: Path, line: int, token: str, what: str) -> float:
    """``float(token)`` or a :class:`GravityFileError` naming the file, line and field."""
    try:
        value = float(token.replace("d", "e").replace("D", "E"))
    except ValueError:
        raise GravityFileError(path, line, what, token) from None
    if not math.isfinite(value):
        raise GravityFileError(path, line, f"{what} (a finite number)", token)
    return value


def parse_int(path: Path, line: int, token: str, what: str) -> int:
    """``int(token)`` or a :class:`GravityFileError` naming the file, line and field."""
    try:
        return int(token)
    except ValueError:
        raise GravityFileError(path, line, what, token) from None


# --------------------------------------------------------------------------------------------
# Mesh
# --------------------------------------------------------------------------------------------


def read_mesh(path: str | Path):
    """Read a UBC-GIF 3-D tensor mesh file.

    Parameters
    ----------
    path : str or Path
        Mesh file (see the module docstring for the format).

    Returns
    -------
    discretize.TensorMesh
        ``h = [east widths, north widths, thicknesses bottom → top]`` and ``origin`` at the
        bottom-south-west corner: ``origin = (E0, N0, Z0 − Σ thicknesses)``.

    Raises
    ------
    GravityFileError
        On a missing or non-numeric value, a count that is not positive, a non-positive width,
        too few or too many widths; the message names the line.
    """
    discretize = require("discretize", "read UBC mesh files")
    path = Path(path)
    lines = content_lines(path)
    if len(lines) < 2:
        raise GravityFileError(path, last_line_number(path), "'NE NN NZ' then 'E0 N0 Z0'")
    (n1, l1), (n2, l2) = lines[0], lines[1]
    counts = l1.split()
    if len(counts) != 3:
        raise GravityFileError(path, n1, "three cell counts 'NE NN NZ'", l1)
    shape = [parse_int(path, n1, c, "a positive integer cell count") for c in counts]
    if min(shape) < 1:
        raise GravityFileError(path, n1, "positive cell counts 'NE NN NZ'", l1)
    corner = l2.split()
    if len(corner) != 3:
        raise GravityFileError(path, n2, "the south-west-top corner 'E0 N0 Z0'", l2)
    e0, n0, z0 = (parse_float(path, n2, c, "a corner coordinate") for c in corner)

    tokens = _width_tokens(path, lines[2:])
    widths = []
    for axis, count in zip(
        ("east widths", "north widths", "vertical thicknesses"), shape, strict=True
    ):
        widths.append(_take_widths(path, tokens, count, axis))
    for token, number in tokens:
        raise GravityFileError(path, number, "end of file after the last thickness", token)
    hx, hy, hz_top_down = widths
    hz = hz_top_down[::-1]
    origin = (e0, n0, z0 - math.fsum(hz))
    return discretize.TensorMesh([hx, hy, hz], origin=origin)


def _width_tokens(path: Path, lines: list[tuple[int, str]]) -> Iterator[tuple[str, int]]:
    for number, text in lines:
        for token in text.split():
            yield token, number


def _take_widths(path: Path, tokens: Iterator, count: int, axis: str) -> np.ndarray:
    out: list[float] = []
    number = None
    while len(out) < count:
        try:
            token, number = next(tokens)
        except StopIteration:
            line = last_line_number(path)
            raise GravityFileError(
                path, line, f"{count} {axis}, file ends after {len(out)}"
            ) from None
        repeat = _REPEAT.match(token)
        n, text = (int(repeat.group(1)), repeat.group(2)) if repeat else (1, token)
        width = parse_float(path, number, text, f"a cell width ('w' or 'n*w') among the {axis}")
        if width <= 0:
            raise GravityFileError(path, number, f"positive {axis}", token)
        if len(out) + n > count:
            raise GravityFileError(
                path, number, f"{count} {axis}; '{token}' goes {len(out) + n - count} past them"
            )
        out.extend([width] * n)
    return np.asarray(out, dtype=float)


def write_mesh(path: str | Path, mesh, comment: str | None = None) -> None:
    """Write a 3-D ``discretize.TensorMesh`` as a UBC-GIF mesh file.

    Widths are written with the shortest text that reads back to the same float, equal
    neighbours compressed to ``n*w``, each axis on one line (as ``discretize.TensorMesh.read_UBC``
    requires).  The top corner is ``Z0 = origin_z + Σ h_z``.

    Parameters
    ----------
    path : str or Path
        Output file.
    mesh : discretize.TensorMesh
        A 3-D tensor mesh.
    comment : str, optional
        Text of a ``!`` comment line written first.
    """
    if mesh.dim != 3:
        raise UserInputError(f"expected a 3-D tensor mesh, got dim={mesh.dim}")
    hx, hy, hz = (np.asarray(h, dtype=float) for h in mesh.h)
    top = mesh.origin[2] + math.fsum(hz)
    lines = [] if comment is None else [f"! {comment}"]
    lines.append("{} {} {}".format(*mesh.shape_cells))
    lines.append(" ".join(_fmt(v) for v in (mesh.origin[0], mesh.origin[1], top)))
    for h in (hx, hy, hz[::-1]):
        lines.append(" ".join(_runs(h)))
    Path(path).write_text("\n".join(lines) + "\n")


def _fmt(value: float) -> str:
    """Shortest text that reads back to exactly the same float64."""
    return repr(float(value))


def _runs(values: np.ndarray) -> list[str]:
    out, i = [], 0
    while i < len(values):
        j = i
        while j + 1 < len(values) and values[j + 1] == values[i]:
            j += 1
        n = j - i + 1
        out.append(_fmt(values[i]) if n == 1 else f"{n}*{_fmt(values[i])}")
        i = j + 1
    return out


# --------------------------------------------------------------------------------------------
# Models
# --------------------------------------------------------------------------------------------


def ubc_to_mesh_order(values: np.ndarray, shape_cells: tuple[int, int, int]) -> np.ndarray:
    """Reorder UBC model values (z top→bottom fastest, then east, then north) to mesh order.

    Parameters
    ----------
    values : (n_cells,) numpy.ndarray
        Values in file order.
    shape_cells : (int, int, int)
        ``(NE, NN, NZ)``, as ``TensorMesh.shape_cells``.

    Returns
    -------
    (n_cells,) numpy.ndarray
        Values in ``discretize`` order: east fastest, then north, then z from the bottom up.
    """
    ne, nn, nz = shape_cells
    cube = np.asarray(values).reshape(nn, ne, nz)  # [north, east, depth index from the top]
    return cube.transpose(1, 0, 2)[:, :, ::-1].reshape(-1, order="F")


def mesh_to_ubc_order(values: np.ndarray, shape_cells: tuple[int, int, int]) -> np.ndarray:
    """Inverse of :func:`ubc_to_mesh_order`: mesh order to UBC file order."""
    cube = np.asarray(values).reshape(shape_cells, order="F")  # [east, north, z from bottom]
    return cube[:, :, ::-1].transpose(1, 0, 2).reshape(-1)


def read_values(path: str | Path, count: int, what: str) -> np.ndarray:
    """Read exactly ``count`` numbers from a whitespace-separated file with ``!`` comments.

    Parameters
    ----------
    path : str or Path
        File to read; values may be one per line (GRAV3D's layout) or several per line.
    count : int
        Number of values expected.
    what : str
        What the values are, for error messages ("density values of a 76×76×38 mesh").

    Returns
    -------
    (count,) float64 numpy.ndarray
        The values in file order.
    """
    path = Path(path)
    text = read_text(path)
    if "!" not in text:
        try:
            values = np.array(text.split(), dtype=float)
        except ValueError:
            values = None
        if values is not None and values.size == count and np.isfinite(values).all():
            return values
    # Slow path: find the line at fault (or parse comments / Fortran 'd' exponents).
    out: list[float] = []
    for number, body in content_lines(path):
        for token in body.split():
            if len(out) == count:
                raise GravityFileError(path, number, f"{count} {what} and no more", token)
            out.append(parse_float(path, number, token, f"a number ({what})"))
    if len(out) < count:
        raise GravityFileError(
            path, last_line_number(path), f"{count} {what}, file ends after {len(out)}"
        )
    return np.asarray(out, dtype=float)


def read_model(path: str | Path, mesh) -> np.ndarray:
    """Read a UBC-GIF model file (density, bounds, weights …) on ``mesh``.

    Parameters
    ----------
    path : str or Path
        Model file: ``mesh.n_cells`` values, z fastest (top → bottom), then east, then north.
    mesh : discretize.TensorMesh
        The mesh the model lives on.

    Returns
    -------
    (n_cells,) float64 numpy.ndarray
        Values in mesh order (east fastest, then north, then z bottom → top); cells above the
        topography keep whatever the file holds (−100 in GRAV3D's outputs).
    """
    what = "model values (one per cell of a {}×{}×{} mesh)".format(*mesh.shape_cells)
    return ubc_to_mesh_order(read_values(path, mesh.n_cells, what), mesh.shape_cells)


def read_model_within(path: str | Path, mesh, low: float, high: float, what: str) -> np.ndarray:
    """:func:`read_model`, refusing a value outside ``[low, high]`` with the line holding it.

    Parameters
    ----------
    path : str or Path
        Model file (one value per cell, UBC order).
    mesh : discretize.TensorMesh
    low, high : float
        Allowed range (inclusive).
    what : str
        What the values are, for the message (e.g. ``"norm exponents p"``).

    Returns
    -------
    (n_cells,) float64 numpy.ndarray
        Values in mesh order.
    """
    raw = read_values(path, mesh.n_cells, f"{what} (one per cell)")
    bad = np.flatnonzero(~((raw >= low) & (raw <= high)))
    if bad.size:
        seen = 0
        for number, body in content_lines(path):
            tokens = body.split()
            if seen + len(tokens) > bad[0]:
                found = tokens[int(bad[0]) - seen]
                raise GravityFileError(path, number, f"{what} in [{low:g}, {high:g}]", found)
            seen += len(tokens)
    return ubc_to_mesh_order(raw, mesh.shape_cells)


def read_density(path: str | Path, mesh) -> tuple[np.ndarray, np.ndarray]:
    """Read a density model, with GRAV3D's air cells (:data:`ABOVE_TOPOGRAPHY`) inactive.

    GRAV3D writes −100 for the cells above the topography of an output model; read as a
    density they would weigh 100 g/cc.  Every density read by msinv goes through here.

    Parameters
    ----------
    path : str or Path
        Model file.
    mesh : discretize.TensorMesh
        The mesh the model lives on.

    Returns
    -------
    values : (n_cells,) float64 numpy.ndarray
        Density contrast in mesh order, 0 in the air cells.
    air : (n_cells,) bool numpy.ndarray
        Cells that held −100 (inactive).
    """
    values = read_model(path, mesh)
    air = values == ABOVE_TOPOGRAPHY
    return np.where(air, 0.0, values), air


def model_or_value(source: Path | float, mesh, density: bool = False) -> np.ndarray:
    """A model given in a control file as a file or a uniform value (``VALUE x``, ±inf bounds).

    Parameters
    ----------
    source : Path or float
        As in :class:`msinv.gravity.control.InversionControl` (initial / reference model,
        bounds).
    mesh : discretize.TensorMesh
        The mesh.
    density : bool, default False
        The file is a density model: its −100 (air) cells read as 0 (:func:`read_density`).

    Returns
    -------
    (n_cells,) float64 numpy.ndarray
        The model in mesh order.
    """
    if isinstance(source, (int, float)):
        return np.full(mesh.n_cells, float(source))
    return read_density(source, mesh)[0] if density else read_model(source, mesh)


def write_model(
    path: str | Path, mesh, values: np.ndarray, active: np.ndarray | None = None
) -> None:
    """Write a model in UBC-GIF order, one value per line, exactly (shortest round-trip text).

    Parameters
    ----------
    path : str or Path
        Output file.
    mesh : discretize.TensorMesh
        The mesh.
    values : (n_cells,) numpy.ndarray
        Values in mesh order.
    active : (n_cells,) bool numpy.ndarray, optional
        Cells below the topography; the others are written as :data:`ABOVE_TOPOGRAPHY`.
    """
    values = np.asarray(values, dtype=float)
    if values.shape != (mesh.n_cells,):
        raise UserInputError(f"expected {mesh.n_cells} model values, got shape {values.shape}")
    if active is not None:
        values = np.where(np.asarray(active, dtype=bool), values, ABOVE_TOPOGRAPHY)
    ordered = mesh_to_ubc_order(values, mesh.shape_cells)
    Path(path).write_text("\n".join(map(repr, ordered.tolist())) + "\n")


def read_active(path: str | Path, mesh) -> np.ndarray:
    """Read an active-cells file: 1 active, 0 inactive (out of φ_m), −1 inactive but in φ_m.

    Returns
    -------
    (n_cells,) int8 numpy.ndarray
        Flags in mesh order.

    Raises
    ------
    GravityFileError
        When a value is not −1, 0 or 1 (the message names its line).
    """
    path = Path(path)
    flags = read_model(path, mesh)
    bad = ~np.isin(flags, (-1.0, 0.0, 1.0))
    if bad.any():
        index = int(np.flatnonzero(mesh_to_ubc_order(bad, mesh.shape_cells))[0])
        number, token = _nth_value_line(path, index)
        raise GravityFileError(path, number, "an active-cell flag -1, 0 or 1", token)
    return flags.astype(np.int8)


def _nth_value_line(path: Path, index: int) -> tuple[int, str]:
    seen = 0
    for number, body in content_lines(path):
        tokens = body.split()
        if seen + len(tokens) > index:
            return number, tokens[index - seen]
        seen += len(tokens)
    raise IndexError(index)  # pragma: no cover - callers pass an index that exists


# --------------------------------------------------------------------------------------------
# VTK (legacy ASCII rectilinear grid: ParaView reads it without any extra package)
# --------------------------------------------------------------------------------------------


def write_vtk(
    path: str | Path, mesh, models: Mapping[str, np.ndarray], active: np.ndarray | None = None
) -> None:
    """Write models as a legacy-VTK ASCII ``RECTILINEAR_GRID`` with cell data, for ParaView.

    Parameters
    ----------
    path : str or Path
        Output ``.vtk`` file.
    mesh : discretize.TensorMesh
        The mesh; node coordinates are east, north and elevation (z up).
    models : mapping of str to (n_cells,) numpy.ndarray
        Named models in mesh order (which is also VTK's cell order: x fastest, z up).
    active : (n_cells,) bool numpy.ndarray, optional
        Cells above the topography are written as NaN, so ParaView's Threshold hides them.
    """
    if not models:
        raise UserInputError("expected at least one model to write")
    nodes = [np.asarray(n, dtype=float) for n in (mesh.nodes_x, mesh.nodes_y, mesh.nodes_z)]
    lines = ["# vtk DataFile Version 3.0", "msinv model", "ASCII", "DATASET RECTILINEAR_GRID"]
    lines.append("DIMENSIONS {} {} {}".format(*(len(n) for n in nodes)))
    for axis, n in zip("XYZ", nodes, strict=True):
        lines.append(f"{axis}_COORDINATES {len(n)} double")
        lines.append(" ".join(map(repr, n.tolist())))
    lines.append(f"CELL_DATA {mesh.n_cells}")
    for name, values in models.items():
        if not re.fullmatch(r"[A-Za-z0-9_.-]+", name):
            raise UserInputError(
                f"VTK array name {name!r}: expected letters, digits, '_', '.', '-'"
            )
        values = np.asarray(values, dtype=float)
        if values.shape != (mesh.n_cells,):
            raise UserInputError(
                f"model {name!r}: expected {mesh.n_cells} values, got {values.shape}"
            )
        if active is not None:
            values = np.where(np.asarray(active, dtype=bool), values, np.nan)
        lines += [f"SCALARS {name} double 1", "LOOKUP_TABLE default"]
        lines.append("\n".join(map(repr, values.tolist())))
    Path(path).write_text("\n".join(lines) + "\n")


def read_vtk(path: str | Path) -> tuple[list[np.ndarray], dict[str, np.ndarray]]:
    """Read back a file written by :func:`write_vtk`.

    Returns
    -------
    nodes : list of three numpy.ndarray
        Node coordinates east, north, elevation.
    models : dict of str to (n_cells,) numpy.ndarray
        Cell arrays in mesh order.
    """
    path = Path(path)
    tokens = path.read_text().split()
    if tokens[:4] != ["#", "vtk", "DataFile", "Version"] or "RECTILINEAR_GRID" not in tokens:
        raise GravityFileError(path, 1, "a legacy VTK rectilinear grid written by msinv")
    at = tokens.index("DIMENSIONS")
    dims = [int(t) for t in tokens[at + 1 : at + 4]]
    nodes, at = [], at + 4
    for n in dims:
        nodes.append(np.array(tokens[at + 3 : at + 3 + n], dtype=float))
        at += 3 + n
    n_cells = int(tokens[at + 1])
    at += 2
    models = {}
    while at < len(tokens):
        name = tokens[at + 1]
        models[name] = np.array(tokens[at + 6 : at + 6 + n_cells], dtype=float)
        at += 6 + n_cells
    return nodes, models
