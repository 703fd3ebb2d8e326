"""The embedded example: every file reads back, −100 exactly above the topography, χ²/N ≈ 1."""

from __future__ import annotations

import json

import numpy as np
import pytest

from msinv.gravity.control import (
    read_inversion_control,
    read_pfweight_control,
    read_sensitivity_control,
)
from msinv.gravity.example import ExampleConfig, write_example
from msinv.gravity.forward import gz
from msinv.gravity.topography import active_from_topography
from msinv.gravity.ubc import ABOVE_TOPOGRAPHY, read_mesh, read_model
from msinv.gravity.ubc_data import read_locations, read_observations, read_topography


@pytest.fixture(scope="module")
def example(tmp_path_factory):
    return write_example(tmp_path_factory.mktemp("example"))


def test_files_read_back_and_are_consistent(example):
    mesh = read_mesh(example["mesh"])
    model = read_model(example["model"], mesh)
    topo = read_topography(example["topography"])
    active = active_from_topography(mesh, topo)
    assert 0 < (~active).sum() < mesh.n_cells
    np.testing.assert_array_equal(model == ABOVE_TOPOGRAPHY, ~active)
    assert set(np.unique(model[active])) == {-0.1, 0.0, 0.2}
    obs = read_observations(example["observations"])
    np.testing.assert_array_equal(read_locations(example["locations"]).locations, obs.locations)
    # stations draped 1 m above the surface, hence above every active cell of their column
    col_top = mesh.cell_centers[active]
    assert obs.locations[:, 2].min() > -1.0 and col_top[:, 2].max() < obs.locations[:, 2].max()

    folder = example["mesh"].parent.resolve()
    sens = read_sensitivity_control(example["sensitivity"])
    assert sens.topography_file == folder / "topo.txt" and sens.wavelet == "daub2"
    pf = read_pfweight_control(example["pfweight"])
    assert pf.mesh_file == folder / "mesh.txt" and pf.weighting == "distance"
    inv = read_inversion_control(example["inversion"])
    assert inv.mode == 1 and inv.obs_file == folder / "dobs.grv"
    record = json.loads(example["provenance"].read_text())
    assert record["config"]["seed"] == 0 and record["sigma_mgal"] == obs.std[0]


def test_true_model_fits_the_data_to_the_noise(example):
    mesh = read_mesh(example["mesh"])
    model = read_model(example["model"], mesh)
    obs = read_observations(example["observations"])
    predicted = gz(mesh, obs.locations, np.where(model == ABOVE_TOPOGRAPHY, 0.0, model))
    chi2 = np.mean(((predicted - obs.values) / obs.std) ** 2)
    n = obs.n_data
    assert abs(chi2 - 1.0) < 4 * np.sqrt(2.0 / n)  # χ²/N of N(0,1) noise: sd √(2/N)
    assert np.abs(predicted).max() > 20 * obs.std[0]  # a signal well above the noise


def test_same_seed_same_files_other_seed_other_noise(example, tmp_path):
    again = write_example(tmp_path / "again")
    for key in ("mesh", "model", "observations", "inversion", "sensitivity"):
        assert again[key].read_bytes() == example[key].read_bytes()
    other = write_example(tmp_path / "other", ExampleConfig(seed=1))
    a, b = read_observations(example["observations"]), read_observations(other["observations"])
    assert not np.array_equal(a.values, b.values)
    with pytest.raises(ValueError, match="noise"):
        ExampleConfig(noise=0.0)
