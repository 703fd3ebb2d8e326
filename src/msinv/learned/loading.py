"""Loading a trained checkpoint for inference; the shipped reduced demo checkpoint."""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from msinv.core.errors import FileFormatError, UserInputError
from msinv.learned.alarm import KEY as ALARM_KEY
from msinv.learned.alarm import Alarm
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
    alarm : msinv.learned.alarm.Alarm or None
        The out-of-distribution alarm, once calibrated (:func:`msinv.learned.alarm.calibrate`).
    train_data : list of dict, optional
        The training slices, one per store (:func:`msinv.learned.data.store_slice`), for
        :func:`msinv.learned.data.check_held_out`.
    """

    model: nn.Module
    norm: Normalisation
    config: object
    step: int
    alarm: Alarm | None = None
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
    weights : {"ema", "model", "init"}, default 'ema'
        The EMA weights (for sampling), the raw trained weights, or the initial weights of
        the run (rebuilt from its seed).
    device : str, default 'cpu'
        Torch device.
    """
    from msinv.learned.checkpoint_file import check_device, load_weights, read_checkpoint
    from msinv.learned.train import TrainConfig, build_from_config

    if weights not in ("ema", "model", "init"):
        raise UserInputError(f"weights must be 'ema', 'model' or 'init', got {weights!r}")
    device = check_device(str(device))
    path = Path(checkpoint)
    ckpt = read_checkpoint(path, device=device)
    try:
        config = TrainConfig.from_dict(tomllib.loads(ckpt["config"]), str(path))
        norm = Normalisation.from_state_dict(ckpt["normalisation"])
    except (tomllib.TOMLDecodeError, TypeError, KeyError, AttributeError) as exc:
        raise FileFormatError(
            f"{path}: damaged checkpoint, its config or normalisation ({exc})"
        ) from None
    torch.manual_seed(config.seed)
    model = build_from_config(config.model, int(ckpt.get("architecture", 1))).to(device)
    if weights == "model":
        if "model" not in ckpt:
            raise UserInputError(f"{path}: an exported checkpoint holds only the EMA weights")
        load_weights(model, ckpt["model"], path, "model")
    elif weights == "ema":
        state = {k.removeprefix("module."): v for k, v in ckpt["ema"].items() if k != "n_averaged"}
        load_weights(model, state, path, "EMA")
    model.eval()
    alarm = Alarm.from_dict(ckpt[ALARM_KEY]) if ALARM_KEY in ckpt else None
    return Loaded(model, norm, config, int(ckpt["step"]), alarm, _train_data(ckpt, config))


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


def check_fits(loaded: Loaded, data: np.ndarray, freqs=None, source: str = "data") -> None:
    """Refuse data that the model was not trained for (grid, frequencies, acquisition).

    Parameters
    ----------
    loaded : Loaded
    data : (m, n_freq, n_rec, n_src) complex numpy.ndarray
    freqs : sequence of float, optional
        Frequencies of the data; compared with the training frequencies when given.
    source : str, default 'data'
        Where the data came from, for the message.
    """
    m = loaded.config.model
    shape = tuple(np.shape(data)[1:])
    want = (m.n_freq, m.n_sc, m.n_sc)
    if None not in want and shape != want:
        raise UserInputError(
            f"{source}: data of shape {shape} (n_freq, n_rec, n_src), but the model was trained "
            f"on {want}; use a checkpoint trained on this acquisition"
        )
    if freqs is not None and m.freqs is not None:
        if len(freqs) != len(m.freqs) or not np.allclose(freqs, m.freqs, rtol=1e-6):
            raise UserInputError(
                f"{source}: frequencies {[float(f) for f in freqs]}, but the model was trained "
                f"at {list(m.freqs)}"
            )
