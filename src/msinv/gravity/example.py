"""A small GRAV3D-style example made by msinv itself, so the gravity workflow runs anywhere.

:func:`write_example` writes, into one folder, everything a GRAV3D user would have before
running PFWEIGHT, GZSEN3D and GZINV3D: a tensor mesh, a topography file (a gentle hill), the
true density model (two blocks; −100 above the topography), station locations draped 1 m above
the topography, noisy observations computed by :func:`msinv.gravity.forward.gz`, and the three
control files; plus ``example.json`` with the provenance of the run.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from msinv.core.errors import UserInputError
from msinv.core.optional import require
from msinv.core.provenance import provenance
from msinv.gravity.control import (
    InversionControl,
    SensitivityControl,
    WeightingControl,
    write_inversion_control,
    write_pfweight_control,
    write_sensitivity_control,
)
from msinv.gravity.topography import active_from_topography
from msinv.gravity.ubc import write_mesh, write_model
from msinv.gravity.ubc_data import GravityData, write_data, write_topography

#: Names of the files :func:`write_example` writes (outputs of later steps are named in the
#: control files: ``distance_weight.txt`` from PFWEIGHT, ``gzinv3d.mtx`` from GZSEN3D).
FILES = {
    "mesh": "mesh.txt",
    "topography": "topo.txt",
    "model": "model.den",
    "locations": "survey.loc",
    "observations": "dobs.grv",
    "pfweight": "pfweight.inp",
    "sensitivity": "sens.inp",
    "inversion": "inv.inp",
    "provenance": "example.json",
}


@dataclass(frozen=True)
class ExampleConfig:
    """Settings of the embedded example.

    Attributes
    ----------
    seed : int, default 0
        Seed of the noise (numpy ``default_rng``).
    cells : int, default 16
        Core cells per horizontal axis (≥ 4); the core is ``cells × cells × cells/2`` cells of
        ``cell`` metres, padded by 3 cells growing 1.5× on every side but the top.
    cell : float, default 25.0
        Core cell size in metres (> 0).
    stations : int, default 12
        Stations per horizontal axis (≥ 2), over the middle 80 % of the core.
    hill : float, default 40.0
        Height of the Gaussian topographic hill in metres (≥ 0).
    noise : float, default 0.01
        Standard deviation of the noise as a fraction of the largest |g_z| (> 0).
    """

    seed: int = 0
    cells: int = 16
    cell: float = 25.0
    stations: int = 12
    hill: float = 40.0
    noise: float = 0.01

    def __post_init__(self):
        if self.cells < 4:
            raise UserInputError(f"cells: expected >= 4, got {self.cells}")
        if not self.cell > 0:
            raise UserInputError(f"cell: expected > 0 m, got {self.cell}")
        if self.stations < 2:
            raise UserInputError(f"stations: expected >= 2, got {self.stations}")
        if not self.hill >= 0:
            raise UserInputError(f"hill: expected >= 0 m, got {self.hill}")
        if not 0 < self.noise < 1:
            raise UserInputError(f"noise: expected a fraction in (0, 1), got {self.noise}")


def _mesh(config: ExampleConfig):
    discretize = require("discretize", "build the example mesh")
    pad = config.cell * 1.5 ** np.arange(1, 4)
    core = np.full(config.cells, config.cell)
    h_xy = np.concatenate([pad[::-1], core, pad])
    h_z = np.concatenate([pad[::-1], np.full(config.cells // 2, config.cell)])
    half = config.cells * config.cell / 2 + pad.sum()
    # the top of the mesh clears the hill's summit by one core cell
    top = config.hill + config.cell
    return discretize.TensorMesh([h_xy, h_xy, h_z], origin=(-half, -half, top - h_z.sum()))


def _surface(config: ExampleConfig, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Elevation of the hill: a Gaussian of height ``hill`` centred north-east of the origin."""
    width = config.cells * config.cell / 3
    return config.hill * np.exp(-((x - width / 2) ** 2 + (y - width / 2) ** 2) / width**2)


def _true_model(config: ExampleConfig, mesh, active: np.ndarray) -> np.ndarray:
    """A dense block (+0.2 g/cc) and a lighter one (−0.1 g/cc) below the surface."""
    c = mesh.cell_centers
    size = config.cells * config.cell
    model = np.zeros(mesh.n_cells)
    dense = (np.abs(c[:, 0] + size / 8) < size / 8) & (np.abs(c[:, 1]) < size / 8)
    dense &= (c[:, 2] < -size / 8) & (c[:, 2] > -size / 4)
    light = (np.abs(c[:, 0] - size / 5) < size / 10) & (np.abs(c[:, 1] - size / 5) < size / 10)
    light &= (c[:, 2] < -size / 16) & (c[:, 2] > -size / 6)
    model[dense], model[light] = 0.2, -0.1
    return np.where(active, model, 0.0)


def write_example(out: str | Path, config: ExampleConfig | None = None) -> dict[str, Path]:
    """Write the embedded GRAV3D-style example into folder ``out`` (created if needed).

    Parameters
    ----------
    out : str or Path
        Output folder.
    config : ExampleConfig, optional
        Sizes, seed and noise level; the defaults give a 22×22×11 mesh and 144 stations.

    Returns
    -------
    dict of str to Path
        The files written, keyed as in :data:`FILES`.

    Notes
    -----
    The data are d = g_z(ρ_true) + σ·ε with ε ~ N(0, 1) from ``numpy.random.default_rng(seed)``
    and σ = ``noise``·max|g_z(ρ_true)| for every datum, so that the true model fits the data
    with χ²/N ≈ 1 — the target of a mode-1 inversion with ``chifact = 1``.
    """
    from msinv.gravity.forward import gz

    config = config or ExampleConfig()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths = {key: out / name for key, name in FILES.items()}
    rng = np.random.default_rng(config.seed)
    mesh = _mesh(config)

    xn = np.linspace(mesh.nodes_x[0], mesh.nodes_x[-1], 2 * len(mesh.nodes_x))
    gx, gy = np.meshgrid(xn, xn, indexing="ij")
    topo = np.column_stack([gx.ravel(), gy.ravel(), _surface(config, gx, gy).ravel()])
    topo = np.round(topo, 2)  # centimetres: a readable file, and the surface the model uses
    active = active_from_topography(mesh, topo)
    model = _true_model(config, mesh, active)

    extent = 0.4 * config.cells * config.cell
    s = np.linspace(-extent, extent, config.stations)
    sx, sy = (a.ravel() for a in np.meshgrid(s, s, indexing="ij"))
    stations = np.column_stack([sx, sy, _surface(config, sx, sy) + 1.0])
    clean = gz(mesh, stations, model)
    sigma = config.noise * np.abs(clean).max()
    data = GravityData(
        stations, clean + sigma * rng.standard_normal(len(clean)), np.full(len(clean), sigma)
    )

    note = f"msinv embedded example (seed {config.seed})"
    write_mesh(paths["mesh"], mesh, comment=note)
    write_topography(paths["topography"], topo, comment=note)
    write_model(paths["model"], mesh, model, active=active)
    write_data(paths["locations"], GravityData(stations), comment=note)
    write_data(paths["observations"], data, comment=f"{note}; sigma = {sigma!r} mGal")
    write_pfweight_control(
        paths["pfweight"],
        WeightingControl(
            "GRAV", paths["mesh"], paths["observations"], paths["topography"], "distance"
        ),
    )
    write_sensitivity_control(
        paths["sensitivity"],
        SensitivityControl(
            paths["mesh"],
            paths["observations"],
            paths["topography"],
            out / "distance_weight.txt",
            "daub2",
        ),
    )
    write_inversion_control(
        paths["inversion"],
        InversionControl(
            mode=1, par=1.0, tolc=0.02, obs_file=paths["observations"],
            sensitivity_file=out / "gzinv3d.mtx", initial_model=1e-4, reference_model=0.0,
            active_file=None, lower=-1.0, upper=1.0, alphas=(1e-4, 1.0, 1.0, 1.0),
            length_scales=None, smooth="SMOOTH_MOD", weights_file=None,
        ),
    )  # fmt: skip
    record = provenance(asdict(config))
    record["sigma_mgal"] = sigma
    record["files"] = {k: v.name for k, v in paths.items()}
    paths["provenance"].write_text(json.dumps(record, indent=2) + "\n")
    return paths
