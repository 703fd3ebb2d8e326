"""The learned engine builds its analytical F* from the dataset's geometry, not the paper's."""

import dataclasses

import numpy as np
import pytest
import torch

from msinv.core.errors import UserInputError
from msinv.learned.data import Pairs
from msinv.learned.models import build
from msinv.learned.train import ModelConfig, build_from_config, resolve
from msinv.scattering import Geometry


def _alpha(model, data):
    with torch.no_grad():
        return model.backprojection(data).numpy()


def test_build_uses_the_given_geometry_and_the_trainer_records_it():
    n = 16
    g = Geometry(n=n, pml_width=4, n_sources=n, n_receivers=n, receiver_radius=0.9)
    rng = np.random.default_rng(0)
    data = torch.from_numpy(
        (rng.standard_normal((1, 1, n, n)) + 1j * rng.standard_normal((1, 1, n, n))).astype(
            np.complex64
        )
    )
    own = build("analytical-cnn", n=n, n_freq=1, freqs=[1.5], geometry=g)
    from_dict = build("analytical-cnn", n=n, n_freq=1, freqs=[1.5], geometry=g.to_dict())
    paper = build("analytical-cnn", n=n, n_freq=1, freqs=[1.5])
    np.testing.assert_array_equal(_alpha(own, data), _alpha(from_dict, data))
    assert (
        np.abs(_alpha(own, data) - _alpha(paper, data)).max()
        > 1e-3 * np.abs(_alpha(paper, data)).max()
    )

    pairs = Pairs(np.zeros((1, n, n)), np.zeros((1, 1, n, n), complex), np.array([1.5]), g)
    config = _Config(ModelConfig("analytical-cnn"))
    model_cfg = resolve(config, pairs).model
    assert model_cfg.geometry == g.to_dict()
    np.testing.assert_array_equal(_alpha(build_from_config(model_cfg), data), _alpha(own, data))


@dataclasses.dataclass(frozen=True)
class _Config:
    """The part of a TrainConfig that resolve() fills."""

    model: ModelConfig


def test_data_with_more_receivers_than_sources_are_refused_before_a_model_is_built():
    """The models read (n_freq, n_sc, n_sc) data: a store with n_receivers != n_sources gives
    one line naming both counts, not a model built for one of them."""
    g = Geometry(n=16, pml_width=4, n_sources=16, n_receivers=12)
    pairs = Pairs(np.zeros((1, 16, 16)), np.zeros((1, 1, 12, 16), complex), np.array([1.5]), g)
    with pytest.raises(UserInputError, match="12 receivers and 16 sources"):
        resolve(_Config(ModelConfig("analytical-cnn")), pairs)
