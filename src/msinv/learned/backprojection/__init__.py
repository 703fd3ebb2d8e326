"""Back-scattering networks: complex data ``(b, n_freq, n_sc, n_sc)`` -> latent images ``(b, C, n, n)``.

Every module takes normalised data as a **complex64** ``torch.Tensor`` ``Lambda[b, f, r, s]``
(receivers on the first data axis, as :func:`msinv.scattering.simulate` returns them) and
returns a real image ``alpha[b, c, iy, ix]`` on the ``n x n`` node grid of [-1/2, 1/2]^2
(rows = y). ``module.out_channels`` is ``C``.

================  =====================================  ==============  ====================
name              class                                  ``C``           rotation-equivariant
================  =====================================  ==============  ====================
``equinet``       :class:`.equinet.EquiNet`              ``n_freq``      yes (exact)
``b-equinet``     :class:`.butterfly.BEquiNet`           ``n_freq``      yes (exact)
``analytical``    :class:`.analytical.AnalyticalBackProjection`  ``2 n_freq``  yes
``switchnet``     :class:`.switchnet.SwitchNet`          ``n_freq``      no
``widebnet``      :class:`.widebnet.WideBNet`            ``1``           no
================  =====================================  ==============  ====================

Rolling the data by ``n_sc/4`` along both axes turns the output of an equivariant module by a
quarter turn, :func:`.polar.rotate_image` (``torch.rot90(alpha, 1, dims=(-1, -2))``).
"""

from __future__ import annotations

from typing import Any

from torch import nn

from msinv.core.errors import UserInputError

from .analytical import AnalyticalBackProjection
from .butterfly import BEquiNet
from .equinet import EquiNet
from .polar import rotate_image
from .switchnet import SwitchNet
from .widebnet import WideBNet

NAMES = ("equinet", "b-equinet", "switchnet", "widebnet", "analytical")


def build_backprojection(
    name: str,
    n: int,
    n_freq: int,
    n_sc: int | None = None,
    freqs=None,
    *,
    geometry: Any = None,
) -> nn.Module:
    """Build a back-scattering network by name.

    Parameters
    ----------
    name : {"equinet", "b-equinet", "switchnet", "widebnet", "analytical"}
        Which network.
    n : int
        Nodes per axis of the latent image (e.g. 40, 60, 80, 120, 160).
    n_freq : int
        Number of frequencies (data channels).
    n_sc : int, optional
        Number of sources = receivers; defaults to ``n`` ("b-equinet" and "widebnet" need
        ``n_sc = n``; "analytical" takes it from ``geometry``).
    freqs : sequence of float, optional
        Ordinary frequencies, required by "analytical" (``len(freqs) == n_freq``).
    geometry : object, optional
        Acquisition for "analytical" (``source_angles``, ``receiver_angles``,
        ``receiver_radius``); defaults to ``Geometry.paper(n)``.

    Returns
    -------
    torch.nn.Module
        Maps ``(b, n_freq, n_sc, n_sc)`` complex64 to ``(b, out_channels, n, n)`` float32.
    """
    if name not in NAMES:
        raise UserInputError(f"back-projection {name!r}: expected one of {', '.join(NAMES)}")
    if not isinstance(n_freq, int) or n_freq < 1:
        raise UserInputError(f"n_freq={n_freq!r}: expected an integer >= 1")
    if name in ("b-equinet", "widebnet", "analytical") and n_sc not in (None, n):
        raise UserInputError(f"{name}: n_sc={n_sc} must equal n={n} (or be left out)")
    if name == "equinet":
        return EquiNet(n, n_freq, n_sc)
    if name == "b-equinet":
        return BEquiNet(n, n_freq)
    if name == "switchnet":
        return SwitchNet(n, n_freq, n_sc)
    if name == "widebnet":
        return WideBNet(n, n_freq)
    if freqs is None or len(freqs) != n_freq:
        raise UserInputError(f"analytical: freqs must list the {n_freq} frequencies, got {freqs!r}")
    return AnalyticalBackProjection(n, freqs, geometry)


__all__ = [
    "NAMES",
    "AnalyticalBackProjection",
    "BEquiNet",
    "EquiNet",
    "SwitchNet",
    "WideBNet",
    "build_backprojection",
    "rotate_image",
]
