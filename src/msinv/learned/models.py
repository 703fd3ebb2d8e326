"""The model registry: ``build(name, n, n_freq)`` for every row of the paper's Table 1.

A model is a back-scattering front end (``backprojection``: F*, the analytical adjoint, or the
raw data laid out as channels) followed by either a conditional score network (``score``,
diffusion models, :class:`BPDiffusion`) or a deterministic head (``head``,
:class:`BPRegression`). ``model.kind`` is ``"diffusion"`` or ``"deterministic"``.
"""

from __future__ import annotations

import inspect
import json
import typing
from collections.abc import Sequence

import torch
from torch import nn
from torch.nn import functional as F

from msinv.core.errors import ConfigError, UserInputError
from msinv.core.fields import expected_type
from msinv.learned.diffusion.loss import DenoisingLoss
from msinv.learned.diffusion.precond import EDMDenoiser
from msinv.learned.networks.cnn import Features, ScoreCNN
from msinv.learned.networks.deterministic import DenseHead
from msinv.learned.networks.uvit import ScoreUViT

#: Version of the network definitions, stored in checkpoints and given to :func:`build`.
#: 1: FiLM from the raw noise embedding, conditioning LayerNorm over alpha's channels at each
#: pixel by default (``cond_norm = "layer"``, degenerate for C < 3); 2: FiLM from
#: Swish(embedding) (the paper's Algorithm 3) and ``cond_norm = "image"`` by default.
ARCHITECTURE = 2

#: name -> (front end, score network or None for a deterministic model)
MODELS: dict[str, tuple[str, str | None]] = {
    "equinet-cnn": ("equinet", "cnn"),
    "b-equinet-cnn": ("b-equinet", "cnn"),
    "analytical-cnn": ("analytical", "cnn"),
    "switchnet-cnn": ("switchnet", "cnn"),
    "widebnet-cnn": ("widebnet", "cnn"),
    "none-cnn": ("none", "cnn"),
    "equinet-uvit": ("equinet", "uvit"),
    "none-uvit": ("none", "uvit"),
    "equinet": ("equinet", None),
    "b-equinet": ("b-equinet", None),
    "switchnet": ("switchnet", None),
    "widebnet": ("widebnet", None),
}


class RawData(nn.Module):
    """The "None" front end: complex data (b, n_freq, n_sc, n_sc) -> real (b, 2 n_freq, n, n).

    Real and imaginary parts become channels; when n_sc != n they are resampled bilinearly to
    the reconstruction grid.
    """

    def __init__(self, n: int, n_freq: int) -> None:
        super().__init__()
        self.n = n
        self.out_channels = 2 * n_freq

    def forward(self, data: torch.Tensor) -> torch.Tensor:
        x = torch.cat([data.real, data.imag], dim=1)
        if x.shape[-2:] != (self.n, self.n):
            x = F.interpolate(x, size=(self.n, self.n), mode="bilinear", align_corners=False)
        return x


class BPDiffusion(EDMDenoiser):
    """Back-Projection Diffusion: EDM denoiser D(eta, sigma | F* Lambda).

    Parameters
    ----------
    backprojection : nn.Module
        Data (b, n_freq, n_sc, n_sc) complex64 -> alpha (b, C, n, n) float32.
    score : nn.Module
        Score network with ``condition(alpha) -> Features`` and ``score(eta, cond, sigma)``.
    """

    kind = "diffusion"

    def __init__(self, backprojection: nn.Module, score: nn.Module) -> None:
        super().__init__(score)
        self.backprojection = backprojection
        self.loss_fn = DenoisingLoss()

    def condition(self, data: torch.Tensor) -> Features:
        """Conditioning features of normalised data, computed once per datum."""
        return self.score.condition(self.backprojection(data))

    def training_loss(
        self, eta: torch.Tensor, data: torch.Tensor, generator: torch.Generator
    ) -> torch.Tensor:
        """Per-sample weighted denoising loss (b,) of normalised eta (b, 1, n, n) given data."""
        return self.loss_fn(self, eta, self.condition(data), generator)


class BPRegression(nn.Module):
    """Deterministic baseline eta = head(F* Lambda), trained with plain MSE."""

    kind = "deterministic"

    def __init__(self, backprojection: nn.Module, head: nn.Module) -> None:
        super().__init__()
        self.backprojection = backprojection
        self.head = head

    def forward(self, data: torch.Tensor) -> torch.Tensor:
        """Normalised data (b, n_freq, n_sc, n_sc) complex -> eta (b, 1, n, n)."""
        return self.head(self.backprojection(data))

    def training_loss(
        self, eta: torch.Tensor, data: torch.Tensor, generator: torch.Generator
    ) -> torch.Tensor:
        """Per-sample mean squared error (b,); the generator is unused (no randomness)."""
        return ((self(data) - eta) ** 2).flatten(1).mean(dim=1)


def check_options(name: str, score: dict | None, head: dict | None) -> None:
    """Refuse unknown or mistyped options of the networks of model ``name``.

    ``score`` must hold only keyword arguments of the model's score network
    (:class:`ScoreCNN` or :class:`ScoreUViT`; ScoreCNN for deterministic models, which ignore
    it) and ``head`` of :class:`DenseHead`, each with the annotated type (a boolean is not an
    integer).

    Raises
    ------
    ConfigError
        Naming the section (``[model.score]``), the key and what was expected.
    """
    if name not in MODELS:
        raise ConfigError(f"unknown model {name!r}; expected one of {', '.join(MODELS)}")
    net = MODELS[name][1]
    sections = {"score": (ScoreUViT if net == "uvit" else ScoreCNN), "head": DenseHead}
    for section, options in (("score", score), ("head", head)):
        if not options:
            continue
        cls = sections[section]
        params = list(inspect.signature(cls.__init__).parameters)[2:]  # after self, channels
        unknown = sorted(set(options) - set(params))
        if unknown:
            raise ConfigError(
                f"[model.{section}] unknown key(s) {unknown} for {cls.__name__}; expected some "
                f"of {params}"
            )
        hints = typing.get_type_hints(cls.__init__)
        for key, value in options.items():
            expected = expected_type(value, hints.get(key, typing.Any))
            if expected is not None:
                raise ConfigError(
                    f"[model.{section}] {key} = {json.dumps(value)}: expected {expected}"
                )


def build(
    name: str,
    n: int = 80,
    n_freq: int = 3,
    *,
    n_sc: int | None = None,
    freqs: Sequence[float] | None = None,
    score: dict | None = None,
    head: dict | None = None,
    architecture: int = ARCHITECTURE,
    geometry: typing.Any = None,
) -> nn.Module:
    """Build a model of Table 1 by name.

    Parameters
    ----------
    name : str
        One of :data:`MODELS` (``equinet-cnn``, ``b-equinet-cnn``, ``analytical-cnn``,
        ``switchnet-cnn``, ``widebnet-cnn``, ``none-cnn``, ``equinet-uvit``, ``none-uvit``,
        ``equinet``, ``b-equinet``, ``switchnet``, ``widebnet``).
    n : int, default 80
        Reconstruction grid nodes per axis.
    n_freq : int, default 3
        Number of frequencies in the data.
    n_sc : int, optional
        Sources = receivers in the data (default n).
    freqs : sequence of float, optional
        Frequencies, for front ends that need them (the analytical back-projection).
    score : dict, optional
        Keyword options of the score network (:class:`ScoreCNN` or :class:`ScoreUViT`).
    head : dict, optional
        Keyword options of the deterministic :class:`DenseHead`.
    architecture : int
        :data:`ARCHITECTURE` (default), or 1 to rebuild a score CNN trained before the FiLM
        and conditioning fixes exactly as it was trained (``cond_norm = "layer"``, its old
        default, becomes ``"channel"``; FiLM without Swish).
    geometry : msinv.scattering.Geometry or dict, optional
        Acquisition of the data (or its ``Geometry.to_dict()``), used by the analytical
        back-projection (F*); default ``Geometry.paper(n)``. The trainer passes the dataset's.

    Returns
    -------
    BPDiffusion or BPRegression
    """
    if name not in MODELS:
        raise UserInputError(f"unknown model {name!r}; expected one of {', '.join(MODELS)}")
    front, net = MODELS[name]
    if front == "none":
        bp = RawData(n, n_freq)
    else:
        from msinv.learned.backprojection import build_backprojection

        if isinstance(geometry, dict):
            from msinv.scattering.geometry import Geometry

            geometry = Geometry.from_dict(geometry)
        bp = build_backprojection(front, n, n_freq, n_sc=n_sc, freqs=freqs, geometry=geometry)
    if net is None:
        return BPRegression(bp, DenseHead(bp.out_channels, **(head or {})))
    cls = ScoreCNN if net == "cnn" else ScoreUViT
    return BPDiffusion(bp, cls(bp.out_channels, **_score_options(name, score, architecture)))


def _score_options(name: str, score: dict | None, architecture: int) -> dict:
    """Score-network options of a model built for ``architecture``."""
    options = dict(score or {})
    if architecture == ARCHITECTURE:
        return options
    if architecture != 1 or MODELS[name][1] != "cnn":
        raise UserInputError(
            f"cannot rebuild {name} of architecture {architecture} (this is {ARCHITECTURE}): "
            "retrain it"
        )
    if options.get("cond_norm", "layer") == "layer":
        options["cond_norm"] = "channel"
    return {**options, "film_swish": False}
