"""Reading checkpoint files and choosing a device, with one-line errors.

``torch.load`` answers a truncated, foreign or empty file with unpickling tracebacks, and
``load_state_dict`` a checkpoint of another model with a page of missing keys. These helpers
turn each into a :class:`~msinv.core.errors.FileFormatError` (or a
:class:`~msinv.core.errors.ConfigError` for a device) naming the file and what was expected.
"""

from __future__ import annotations

import os
import pickle
import zipfile
from pathlib import Path
from typing import Any

import torch
from torch import nn

from msinv.core.errors import ConfigError, FileFormatError

__all__ = ["check_device", "load_weights", "read_checkpoint"]

#: Keys every checkpoint written by :mod:`msinv.learned.train` holds (exported ones too).
REQUIRED = ("ema", "normalisation", "config", "step")


def check_device(name: str, option: str = "--device") -> torch.device:
    """The torch device called ``name``, refused when unknown or not available here.

    Parameters
    ----------
    name : str
        ``"cpu"``, ``"cuda"``, ``"cuda:1"``, ...
    option : str, default '--device'
        Where the name came from, for the message.
    """
    try:
        device = torch.device(name)
    except (RuntimeError, ValueError, TypeError):
        raise ConfigError(f"{option} {name!r}: expected cpu, cuda or cuda:N") from None
    if device.type not in ("cpu", "cuda"):
        raise ConfigError(f"{option} {name!r}: expected cpu, cuda or cuda:N")
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(f"{option} {name!r}: no CUDA device is available on this machine")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ConfigError(
                f"{option} {name!r}: this machine has {torch.cuda.device_count()} CUDA device(s)"
            )
    return device


def read_checkpoint(
    path: str | os.PathLike, *, device: str | torch.device = "cpu", required=REQUIRED
) -> dict[str, Any]:
    """Load a msinv checkpoint (``weights_only``: no code from the file is run).

    Parameters
    ----------
    path : path-like
        A file written by ``msinv learn train`` (or its export).
    device : str or torch.device, default 'cpu'
        Where to map the tensors.
    required : sequence of str
        Keys the checkpoint must hold.

    Raises
    ------
    FileNotFoundError
        No such file.
    FileFormatError
        A folder, an empty, truncated or damaged file, a torch file that is not a msinv
        checkpoint.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(2, "checkpoint not found", str(path))
    if path.is_dir():
        raise FileFormatError(f"{path}: is a folder; expected a checkpoint file (.pt)")
    if path.stat().st_size == 0:
        raise FileFormatError(f"{path}: the file is empty; expected a msinv checkpoint (.pt)")
    try:
        ckpt = torch.load(path, map_location=device, weights_only=True)
    except (
        RuntimeError,
        pickle.UnpicklingError,
        EOFError,
        zipfile.BadZipFile,
        ValueError,
        AttributeError,
        KeyError,
        IndexError,
    ) as exc:
        reason = " ".join(str(exc).split())[:160]
        raise FileFormatError(
            f"{path}: not a readable msinv checkpoint (truncated, damaged or another format: "
            f"{type(exc).__name__}: {reason})"
        ) from None
    if not isinstance(ckpt, dict) or any(k not in ckpt for k in required):
        have = sorted(ckpt)[:8] if isinstance(ckpt, dict) else type(ckpt).__name__
        raise FileFormatError(
            f"{path}: a torch file but not a msinv learned checkpoint (expected the keys "
            f"{', '.join(required)}; found {have})"
        )
    return ckpt


def load_weights(model: nn.Module, state: dict[str, Any], path: str | os.PathLike, what: str):
    """``model.load_state_dict(state)``, a mismatch reported in one line naming ``path``."""
    try:
        model.load_state_dict(state)
    except (RuntimeError, KeyError, TypeError, AttributeError) as exc:
        first = " ".join(str(exc).split())[:200]
        raise FileFormatError(
            f"{path}: the {what} weights do not fit the model its config describes (damaged or "
            f"edited checkpoint: {first})"
        ) from None
