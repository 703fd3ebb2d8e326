"""Loading a trained checkpoint for inference; the shipped reduced demo checkpoint."""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from msinv.cli.errors import UserInputError
from msinv.learned.data import Normalisation

#: The shipped reduced-configuration checkpoint and its built-in example datum.
CHECKPOINTS = Path(__file__).resolve().parent / "checkpoints"
DEMO_CHECKPOINT = CHECKPOINTS / "equinet-cnn-squares32.pt"
DEMO_EXAMPLE = CHECKPOINTS / "example-squares32.npz"


@dataclass(frozen=True)
class Loaded:
    """A model ready for inference.

    Attributes
    ----------
    model : nn.Module
        In eval mode, on the requested device.
    norm : Normalisation
    config : msinv.learned.train.TrainConfig
        The resolved training configuration.
    step : int
        Training steps behind the weights.
    train_data : list of dict, optional
        The training slices, one per store (:func:`msinv.learned.data.store_slice`), for
        :func:`msinv.learned.data.check_held_out`.
    """

    model: nn.Module
    norm: Normalisation
    config: object
    step: int
    train_data: list[dict] | None = None

    @property
    def kind(self) -> str:
        return self.model.kind

    @property
    def freqs(self) -> list[float] | None:
        """The frequencies the model was trained on, to select from a store (None: all)."""
        return None if self.config is None else self.config.model.freqs


def load(checkpoint: str | os.PathLike, *, weights: str = "ema", device: str = "cpu") -> Loaded:
    """Load a checkpoint written by the trainer.

    Parameters
    ----------
    checkpoint : path-like
    weights : {"ema", "model", "init"}
        The EMA weights (for sampling), the raw trained weights, or the initial weights of
        the run (rebuilt from its seed).
    device : str
        Torch device.
    """
    from msinv.learned.train import TrainConfig, build_from_config

    path = Path(checkpoint)
    if not path.is_file():
        raise UserInputError(f"{path}: checkpoint not found")
    try:
        ckpt = torch.load(path, map_location=device, weights_only=True)
        config = TrainConfig.from_dict(tomllib.loads(ckpt["config"]), str(path))
    except (KeyError, RuntimeError, tomllib.TOMLDecodeError) as exc:
        raise UserInputError(f"{path}: not a msinv learned checkpoint ({exc})") from None
    if weights not in ("ema", "model", "init"):
        raise ValueError(f"weights must be 'ema', 'model' or 'init', got {weights!r}")
    torch.manual_seed(config.seed)
    model = build_from_config(config.model, int(ckpt.get("architecture", 1))).to(device)
    if weights == "model":
        if "model" not in ckpt:
            raise UserInputError(f"{path}: an exported checkpoint holds only the EMA weights")
        model.load_state_dict(ckpt["model"])
    elif weights == "ema":
        state = {k.removeprefix("module."): v for k, v in ckpt["ema"].items() if k != "n_averaged"}
        model.load_state_dict(state)
    model.eval()
    norm = Normalisation.from_state_dict(ckpt["normalisation"])
    return Loaded(model, norm, config, int(ckpt["step"]), _train_data(ckpt, config))


def _train_data(ckpt: dict, config) -> list[dict] | None:
    """The checkpoint's training slices, one per store; older checkpoints: from their config."""
    if "train_data" in ckpt:
        record = ckpt["train_data"]
        return [dict(r) for r in record] if isinstance(record, list) else [dict(record)]
    if not config.data.train:
        return None
    start = config.data.start
    stop = 2**62 if config.data.count is None else start + config.data.count
    return [
        {"path": str(Path(t).resolve()), "start": start, "stop": stop, "stream": None}
        for t in config.data.stores
    ]
