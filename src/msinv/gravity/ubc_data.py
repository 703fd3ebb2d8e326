"""GRAV3D point files (observations, locations, predicted data, topography) and weights files.

Observations (``.grv``)::

    ! optional comment lines (anywhere)
    ndat                          ! may carry a trailing comment
    E N ELEV g_z σ                ! one line per datum: metres, mGal, σ > 0

Locations files hold only ``E N ELEV``; predicted-data files ``E N ELEV g_z``.  Topography
files are ``npt`` followed by ``E N ELEV`` lines.  Elevations are positive up; g_z is the
gravity anomaly in mGal, positive for a positive density contrast (GRAV3D's convention).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from msinv.core.errors import UserInputError
from msinv.gravity.ubc import (
    GravityFileError,
    content_lines,
    last_line_number,
    mesh_to_ubc_order,
    parse_float,
    parse_int,
    read_values,
)

_COLUMNS = {3: "E N ELEV", 4: "E N ELEV g_z", 5: "E N ELEV g_z σ"}


@dataclass(frozen=True)
class GravityData:
    """Stations and, when known, data and their standard deviations.

    Attributes
    ----------
    locations : (n_data, 3) float64 numpy.ndarray
        Easting, northing, elevation of each station in metres (elevation positive up).
    values : (n_data,) float64 numpy.ndarray or None
        Vertical gravity anomaly g_z in mGal (None in a locations file).
    std : (n_data,) float64 numpy.ndarray or None
        Standard deviation of each datum in mGal, all > 0 (None unless observations).
    """

    locations: np.ndarray
    values: np.ndarray | None = None
    std: np.ndarray | None = None

    def __post_init__(self):
        loc = np.asarray(self.locations, dtype=float)
        if loc.ndim != 2 or loc.shape[1] != 3:
            raise UserInputError(f"locations: expected shape (n_data, 3), got {loc.shape}")
        object.__setattr__(self, "locations", loc)
        for name in ("values", "std"):
            column = getattr(self, name)
            if column is not None:
                column = np.asarray(column, dtype=float)
                if column.shape != (len(loc),):
                    raise UserInputError(
                        f"{name}: expected shape ({len(loc)},), got {column.shape}"
                    )
                object.__setattr__(self, name, column)
        if self.std is not None:
            if self.values is None:
                raise UserInputError("std given without values")
            if not (self.std > 0).all():
                raise UserInputError("std: expected every standard deviation > 0")

    @property
    def n_data(self) -> int:
        """Number of stations."""
        return len(self.locations)


def _read_table(path: str | Path, columns: tuple[int, ...], what: str) -> tuple[np.ndarray, int]:
    """Rows of a count-prefixed table; every row has the same number of columns, in ``columns``."""
    path = Path(path)
    lines = content_lines(path)
    if not lines:
        raise GravityFileError(path, last_line_number(path), f"the number of {what}")
    number, head = lines[0]
    tokens = head.split()
    count = parse_int(path, number, tokens[0], f"the number of {what} (an integer)")
    if len(tokens) > 1:
        raise GravityFileError(
            path, number, f"the number of {what} alone on its line (comments start with '!')", head
        )
    if count < 1:
        raise GravityFileError(path, number, f"a positive number of {what}", head)
    rows = lines[1:]
    if len(rows) < count:
        raise GravityFileError(
            path,
            last_line_number(path),
            f"{count} {what} (as line {number} says), found {len(rows)}",
        )
    if len(rows) > count:
        extra_line, extra = rows[count]
        raise GravityFileError(
            path, extra_line, f"only {count} {what} (as line {number} says)", extra
        )
    width = len(rows[0][1].split())
    allowed = " or ".join(f"'{_COLUMNS[c]}'" for c in columns)
    table = np.empty((count, width))
    for i, (line, body) in enumerate(rows):
        tokens = body.split()
        if len(tokens) not in columns or len(tokens) != width:
            expected = (
                allowed if len(tokens) not in columns else f"{width} columns like line {rows[0][0]}"
            )
            raise GravityFileError(path, line, expected, body)
        for j, token in enumerate(tokens):
            table[i, j] = parse_float(path, line, token, f"a number in column {j + 1}")
    return table, width


def read_observations(path: str | Path) -> GravityData:
    """Read an observations file (``E N ELEV g_z σ`` rows, σ > 0).

    Raises
    ------
    GravityFileError
        On a missing or wrong ``ndat``, a row without five numbers, or σ ≤ 0 (with its line).
    """
    path = Path(path)
    table, _ = _read_table(path, (5,), "data")
    bad = np.flatnonzero(~(table[:, 4] > 0))
    if bad.size:
        line, body = content_lines(path)[1 + int(bad[0])]
        raise GravityFileError(path, line, "a standard deviation σ > 0 in column 5", body)
    return GravityData(table[:, :3], table[:, 3], table[:, 4])


def read_predicted(path: str | Path) -> GravityData:
    """Read a predicted-data file (``E N ELEV g_z`` rows)."""
    table, _ = _read_table(path, (4,), "data")
    return GravityData(table[:, :3], table[:, 3])


def read_locations(path: str | Path) -> GravityData:
    """Read station locations from a locations, predicted-data or observations file.

    GRAV3D's programs take their stations from any of the three; the extra columns are
    ignored here (only ``locations`` is filled).
    """
    table, _ = _read_table(path, (3, 4, 5), "stations")
    return GravityData(table[:, :3])


def write_data(path: str | Path, data: GravityData, comment: str | None = None) -> None:
    """Write a locations, predicted or observations file, depending on what ``data`` holds.

    Numbers are written with the shortest text that reads back exactly.

    Parameters
    ----------
    path : str or Path
        Output file.
    data : GravityData
        Locations only → locations file; with values → predicted; with std → observations.
    comment : str, optional
        Text of a ``!`` comment line written before ``ndat``.
    """
    columns = [data.locations]
    columns += [c[:, None] for c in (data.values, data.std) if c is not None]
    table = np.hstack(columns)
    lines = [] if comment is None else [f"! {comment}"]
    lines.append(str(data.n_data))
    lines += [" ".join(map(repr, row)) for row in table.tolist()]
    Path(path).write_text("\n".join(lines) + "\n")


def read_topography(path: str | Path) -> np.ndarray:
    """Read a topography file (``npt`` then ``E N ELEV`` rows).

    Returns
    -------
    (npt, 3) float64 numpy.ndarray
        Easting, northing, elevation of each point (metres, elevation positive up).
    """
    table, _ = _read_table(path, (3,), "topography points")
    return table


def write_topography(path: str | Path, points: np.ndarray, comment: str | None = None) -> None:
    """Write ``(npt, 3)`` topography points (east, north, elevation) as a GRAV3D topography file."""
    points = np.asarray(points, dtype=float)
    if points.ndim != 2 or points.shape[1] != 3:
        raise UserInputError(f"topography points: expected shape (npt, 3), got {points.shape}")
    write_data(path, GravityData(points), comment)


# --------------------------------------------------------------------------------------------
# Weights files: cell weights w_s then face weights w_x, w_y, w_z of the model objective function
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ObjectiveWeights:
    """User weights of the model objective function, as in a GRAV3D weights file.

    Each array is indexed ``[east, north, z]`` with z counted from the bottom (mesh order when
    flattened in Fortran order).

    Attributes
    ----------
    s : (NE, NN, NZ) float64 numpy.ndarray
        Smallness weights, one per cell.
    x : (NE − 1, NN, NZ) float64 numpy.ndarray
        Weights on the interfaces between east-adjacent cells.
    y : (NE, NN − 1, NZ) float64 numpy.ndarray
        Weights on the interfaces between north-adjacent cells.
    z : (NE, NN, NZ − 1) float64 numpy.ndarray
        Weights on the interfaces between vertically adjacent cells.
    """

    s: np.ndarray
    x: np.ndarray
    y: np.ndarray
    z: np.ndarray

    def __post_init__(self):
        ne, nn, nz = np.shape(self.s)
        for name, shape in (
            ("x", (ne - 1, nn, nz)),
            ("y", (ne, nn - 1, nz)),
            ("z", (ne, nn, nz - 1)),
        ):
            if np.shape(getattr(self, name)) != shape:
                raise UserInputError(
                    f"weights {name}: expected shape {shape}, got {np.shape(getattr(self, name))}"
                )


def _part_shapes(shape_cells) -> list[tuple[int, int, int]]:
    ne, nn, nz = shape_cells
    return [(ne, nn, nz), (ne - 1, nn, nz), (ne, nn - 1, nz), (ne, nn, nz - 1)]


def read_weights(path: str | Path, mesh) -> ObjectiveWeights:
    """Read a GRAV3D weights file on ``mesh``.

    The file holds four parts one after the other — cell weights (NE·NN·NZ values), then the
    east, north and vertical interface weights ((NE−1)·NN·NZ, NE·(NN−1)·NZ, NE·NN·(NZ−1)
    values) — each ordered like a model file (z fastest from the top, then east, then north),
    on as many lines as the user likes.
    """
    shapes = _part_shapes(mesh.shape_cells)
    total = sum(int(np.prod(s)) for s in shapes)
    values = read_values(path, total, "weights (cells, then east, north and vertical interfaces)")
    parts, at = [], 0
    for shape in shapes:
        n = int(np.prod(shape))
        ne, nn, nz = shape
        parts.append(values[at : at + n].reshape(nn, ne, nz).transpose(1, 0, 2)[:, :, ::-1])
        at += n
    return ObjectiveWeights(*parts)


def write_weights(path: str | Path, weights: ObjectiveWeights) -> None:
    """Write :class:`ObjectiveWeights` as a GRAV3D weights file, one value per line."""
    chunks = []
    for part in (weights.s, weights.x, weights.y, weights.z):
        part = np.asarray(part, dtype=float)
        chunks.append(mesh_to_ubc_order(part.reshape(-1, order="F"), part.shape))
    Path(path).write_text("\n".join(map(repr, np.concatenate(chunks).tolist())) + "\n")
