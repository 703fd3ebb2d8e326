"""The public entry point of classical scattering inversion: :func:`invert` (Born LS or FWI)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from msinv.core.continuation import IterationRecord
from msinv.core.errors import UserInputError
from msinv.core.regularisation import Regulariser
from msinv.scattering.born_ls import born_ls
from msinv.scattering.fwi import DEFAULT_BOUNDS, DEFAULT_SCHEME, fwi
from msinv.scattering.geometry import Geometry
from msinv.scattering.schemes import Scheme
from msinv.scattering.spec import ForwardSpec

METHODS = ("fwi", "born")


def check_bounds(bounds: tuple[float | None, float | None] | None) -> None:
    """Refuse FWI bounds with ``lower >= upper`` or ``lower <= -1`` (``1 + eta`` must stay > 0)."""
    if bounds is None:
        return
    lo, hi = bounds
    if lo is not None and hi is not None and not lo < hi:
        raise UserInputError(f"bounds lower={lo}, upper={hi}: expected lower < upper")
    if lo is not None and not lo > -1:
        raise UserInputError(
            f"lower bound {lo}: expected > -1 (1 + eta must stay > 0, a positive squared slowness)"
        )


def invert(
    data: np.ndarray,
    geometry: Geometry | ForwardSpec,
    freqs: Sequence[float],
    *,
    method: str = "fwi",
    schedule: Sequence[Sequence[float]] | None = None,
    iterations: int = 100,
    reg: Regulariser | str | None = None,
    bounds: tuple[float | None, float | None] | None = DEFAULT_BOUNDS,
    eta0: np.ndarray | None = None,
    scheme: Scheme | str | int | None = None,
    receiver_interpolation: str | None = None,
    callback: Callable[[IterationRecord], bool | None] | None = None,
) -> np.ndarray:
    """Reconstruct the contrast ``eta`` from multi-frequency scattering data.

    Parameters
    ----------
    data : (n_freq, n_receivers, n_sources) complex numpy.ndarray
        Data as returned by :func:`msinv.scattering.simulate` for ``freqs`` (physical sign,
        :math:`e^{-i\\omega t}` convention).
    geometry : Geometry or ForwardSpec
        Grid and acquisition of the data, or the data's forward model (e.g. a dataset's
        ``spec``): its receiver reader is then used unless ``receiver_interpolation`` says
        otherwise (with a warning).
    freqs : sequence of float
        Ordinary frequencies of ``data`` (``omega = 2 pi f``).
    method : {"fwi", "born"}, default 'fwi'
        ``"fwi"``: full-waveform inversion with frequency continuation (L-BFGS-B with
        ``bounds``, restarted per stage). ``"born"``: linearised least squares about ``eta0``
        (zero by default: Born) with all frequencies together, by LSQR.
    schedule : list of lists of float, optional
        FWI frequency groups, one stage each, e.g. ``[[2.5], [5.0], [10.0]]``; default one
        group per frequency, low to high. Ignored by ``"born"``.
    iterations : int, default 100
        FWI: L-BFGS-B iterations per stage. Born: LSQR iteration limit.
    reg : Regulariser or str, optional
        ``"tv:1e-3"``, ``"gradient:1e-2"``, ``"tikhonov:1e-2"``. For Born, the weight may be
        ``auto`` (``"tikhonov:auto"``): chosen on the L-curve.
    bounds : (lo, hi) or None
        FWI box bounds on every pixel of eta (default ``(-0.9, None)``: ``1 + eta > 0``).
    eta0 : (n, n) float numpy.ndarray, optional
        Starting model (FWI) or linearisation point (Born); default zero.
    scheme : str, int or Scheme, optional
        Scheme of the inversion's solver; default :data:`~msinv.scattering.fwi.DEFAULT_SCHEME`
        (``"compact4"``), which differs from the data's default ``"compact-opt"`` (guard
        against the inverse crime).
    receiver_interpolation : {"representation", "cubic", "bilinear"}, optional
        Receiver reader of the inversion; default the spec's (``"representation"`` for a bare
        geometry). It must match how the data were read.
    callback : callable, optional
        Receives :class:`~msinv.core.continuation.IterationRecord` objects (stage, label,
        iteration, misfit, gradient norm, eta): FWI after every iteration of every stage, Born
        once per regularisation weight tried. Returning True ends an FWI stage early.

    Returns
    -------
    (n, n) float64 numpy.ndarray
        The reconstructed ``eta[iy, ix]``.
    """
    if method not in METHODS:
        raise UserInputError(f"method={method!r}: expected one of {METHODS}")
    if not isinstance(iterations, int | np.integer) or iterations < 1:
        raise UserInputError(f"iterations={iterations!r}: expected an integer >= 1")
    data = np.asarray(data)
    if not np.isfinite(data).all():
        bad = int((~np.isfinite(data)).sum())
        raise UserInputError(
            f"data: {bad} of {data.size} values are NaN or inf; expected finite scattering data"
        )
    check_bounds(bounds)
    scheme = DEFAULT_SCHEME if scheme is None else scheme
    if isinstance(geometry, ForwardSpec):
        geometry = geometry.override(
            what="the data's forward model", receiver_interpolation=receiver_interpolation
        )
        receiver_interpolation = None
    weight_rule = "fixed"
    if isinstance(reg, str):
        if reg.endswith(":auto"):
            if method != "born":
                raise UserInputError(f"reg={reg!r}: an automatic weight is only offered for Born")
            reg, weight_rule = Regulariser(reg.split(":")[0], 0.0), "lcurve"
        else:
            reg = Regulariser.parse(reg)
    if method == "born":
        return born_ls(
            data,
            geometry,
            freqs,
            iterations=int(iterations),
            reg=reg,
            weight_rule=weight_rule,
            background=eta0,
            scheme=scheme,
            callback=callback,
            receiver_interpolation=receiver_interpolation,
        )
    result = fwi(
        data,
        geometry,
        freqs,
        schedule=schedule,
        iterations=int(iterations),
        reg=reg,
        bounds=bounds,
        eta0=eta0,
        scheme=scheme,
        callback=callback,
        receiver_interpolation=receiver_interpolation,
    )
    return result.model
