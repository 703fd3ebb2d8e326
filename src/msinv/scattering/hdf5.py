"""The published HDF5 layout of the Back-Projection Diffusion data, read and written exactly.

The published files (written by the reference Matlab code's ``data_generation.m`` with
``h5create``/``h5write``, read with h5py) are:

``eta.h5``
    ``/eta``: (N, n*n) float64. Row ``i`` is Matlab's column-major ``eta(:)`` of the image
    ``eta(iy, ix)``: element ``ix * n + iy`` holds ``eta[iy, ix]``. Reshaped C-order to
    (n, n) a row is therefore the *transpose* of msinv's ``eta[iy, ix]``.
``scatter.h5``
    ``/scatter_real_freq_{j}``, ``/scatter_imag_freq_{j}``, j = 1, 2, 3 (one per frequency, in
    the order of the frequencies): (N, n_sc * n_sc) float64. Row ``i`` is Matlab's
    column-major flattening of the (receiver, source) matrix ``P``: element
    ``s * n_rec + r`` holds ``P[r, s]``; reshaped C-order to (n_sc, n_sc) it is ``P.T``,
    indexed ``[source, receiver]``.

Sign and time convention. The Matlab operator is ``-(Delta_PML + omega^2 (1 + eta))`` with a
PML stretch ``1 - i sigma / omega`` that absorbs waves of the ``e^{+i omega t}`` convention, so
its scattered field ``u_pub(x; d)`` for the incident ``exp(i omega d . x)`` is the complex
conjugate of msinv's outgoing (``e^{-i omega t}``) field for the reversed direction ``-d``, and
the stored data are its negative:

.. math::  P[r, s] = -u_{pub}(x_r; d_s) = -\\overline{\\Lambda[r, s + n_{src}/2]},

where ``s + n_src/2`` (mod ``n_src``) is the source whose direction is ``-d_s`` (sources are
equiangular, so the number of sources must be even). The map is an involution:
:func:`from_published` and :func:`to_published` are the same formula. The transform is checked
against an independent ``e^{+i omega t}`` (Hankel ``H^{(2)}``) disk series in
``tests/scattering/test_hdf5.py``.

msinv writes its configuration and provenance as JSON attributes (``msinv_config``,
``msinv_provenance``, ``msinv_attrs``) on the root of ``scatter.h5``; published readers ignore
them, and :func:`import_hdf5` uses them to restore the geometry, frequencies and family.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from msinv.core.errors import UserInputError
from msinv.core.inputs import require_finite
from msinv.scattering.dataset import (
    EXTERNAL,
    DatasetConfig,
    DatasetError,
    create_empty,
    open_dataset,
    write_chunk,
)
from msinv.scattering.geometry import Geometry
from msinv.scattering.spec import ForwardSpec

ETA_FILE = "eta.h5"
SCATTER_FILE = "scatter.h5"


def _reversed_sources(n_src: int) -> np.ndarray:
    if n_src % 2:
        raise UserInputError(
            f"n_sources={n_src}: the published convention reverses the incidence direction, "
            "which needs an even number of equiangular sources"
        )
    return (np.arange(n_src) + n_src // 2) % n_src


def to_published(data: np.ndarray) -> np.ndarray:
    """msinv data -> the published sign and time convention (same axes ``[..., r, s]``).

    Parameters
    ----------
    data : (..., n_rec, n_src) complex numpy.ndarray
        msinv data: physical sign, outgoing ``e^{-i omega t}`` convention.

    Returns
    -------
    (..., n_rec, n_src) complex numpy.ndarray
        ``P[..., r, s] = -conj(data[..., r, s + n_src/2])``.
    """
    data = np.asarray(data)
    return -np.conj(data[..., _reversed_sources(data.shape[-1])])


#: The inverse map; the transform is an involution.
from_published = to_published


def eta_to_rows(eta: np.ndarray) -> np.ndarray:
    """(N, n, n) ``eta[iy, ix]`` -> (N, n*n) published rows (Matlab column-major)."""
    eta = np.asarray(eta)
    return np.swapaxes(eta, -1, -2).reshape(eta.shape[0], -1)


def rows_to_eta(rows: np.ndarray, n: int) -> np.ndarray:
    """(N, n*n) published rows -> (N, n, n) ``eta[iy, ix]``."""
    return np.swapaxes(np.asarray(rows).reshape(-1, n, n), -1, -2)


def data_to_rows(p: np.ndarray) -> np.ndarray:
    """(N, n_rec, n_src) matrices -> (N, n_src*n_rec) published rows (column-major)."""
    p = np.asarray(p)
    return np.swapaxes(p, -1, -2).reshape(p.shape[0], -1)


def rows_to_data(rows: np.ndarray, n_rec: int, n_src: int) -> np.ndarray:
    """(N, n_src*n_rec) published rows -> (N, n_rec, n_src) matrices."""
    return np.swapaxes(np.asarray(rows).reshape(-1, n_src, n_rec), -1, -2)


def export_hdf5(store: str | os.PathLike, outdir: str | os.PathLike, *, double: bool = True):
    """Write a complete store in the published layout: ``outdir/eta.h5``, ``outdir/scatter.h5``.

    Parameters
    ----------
    store : path-like
        A complete dataset (:func:`msinv.scattering.open_dataset`).
    outdir : path-like
        Folder to create or reuse; existing ``eta.h5``/``scatter.h5`` there are refused.
    double : bool, default True
        float64 values as the published files (Matlab's default); False writes float32, which
        holds complex64 data exactly at half the size.

    Returns
    -------
    tuple of pathlib.Path
        ``(eta.h5, scatter.h5)``.
    """

    ds = open_dataset(store, require_complete=True)
    outdir = Path(outdir)
    eta_path, scatter_path = outdir / ETA_FILE, outdir / SCATTER_FILE
    for p in (eta_path, scatter_path):
        if p.exists():
            raise DatasetError(f"{p}: already exists; choose an empty output folder")
    created = not outdir.exists()
    try:
        outdir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DatasetError(f"{outdir}: cannot create the output folder ({exc.strerror})") from None
    try:
        return _write_published(ds, eta_path, scatter_path, double)
    except BaseException:  # a damaged store or an interrupt: leave nothing half-written
        if created:
            shutil.rmtree(outdir, ignore_errors=True)
        raise


def _write_published(ds, eta_path: Path, scatter_path: Path, double: bool):
    """Write the two published files of ``ds`` under temporary names, then rename them."""
    _reversed_sources(ds.geometry.n_sources)
    tmp_eta, tmp_sc = eta_path.with_suffix(".h5.partial"), scatter_path.with_suffix(".h5.partial")
    try:
        _fill_published(ds, tmp_eta, tmp_sc, np.float64 if double else np.float32)
    except BaseException:
        tmp_eta.unlink(missing_ok=True)
        tmp_sc.unlink(missing_ok=True)
        raise
    os.replace(tmp_eta, eta_path)
    os.replace(tmp_sc, scatter_path)
    return eta_path, scatter_path


def _fill_published(ds, tmp_eta: Path, tmp_sc: Path, dtype) -> None:
    import h5py

    g = ds.geometry
    n, n_rec, n_src, n_freq, count = g.n, g.n_receivers, g.n_sources, ds.freqs.size, len(ds)
    chunk = int(ds.config["chunk"])
    rows = min(chunk, count)
    with h5py.File(tmp_eta, "w") as fe, h5py.File(tmp_sc, "w") as fs:
        d_eta = fe.create_dataset("eta", (count, n * n), dtype=dtype, chunks=(rows, n * n))
        parts = {}
        for j in range(n_freq):
            for part in ("real", "imag"):
                name = f"scatter_{part}_freq_{j + 1}"
                parts[name] = fs.create_dataset(
                    name, (count, n_rec * n_src), dtype=dtype, chunks=(rows, n_rec * n_src)
                )
        fs.attrs["msinv_config"] = json.dumps(ds.config)
        fs.attrs["msinv_provenance"] = json.dumps(ds.attrs.get("provenance", {}))
        fs.attrs["msinv_attrs"] = json.dumps(
            {k: v for k, v in ds.attrs.items() if k not in ("config", "provenance")}
        )
        fs.attrs["frequencies"] = ds.freqs
        for start in range(0, count, chunk):
            sl = slice(start, min(start + chunk, count))
            d_eta[sl] = eta_to_rows(ds.eta[sl]).astype(dtype)
            pub = to_published(np.asarray(ds.data[sl], dtype=np.complex128))
            for j in range(n_freq):
                r = data_to_rows(pub[:, j])
                parts[f"scatter_real_freq_{j + 1}"][sl] = r.real.astype(dtype)
                parts[f"scatter_imag_freq_{j + 1}"][sl] = r.imag.astype(dtype)


def _freq_names(fs) -> int:
    """Number of frequencies in ``scatter.h5``; a real part without its imaginary part (or the
    reverse) is named."""
    j = 0
    while f"scatter_real_freq_{j + 1}" in fs or f"scatter_imag_freq_{j + 1}" in fs:
        for part, other in (("real", "imag"), ("imag", "real")):
            if f"scatter_{part}_freq_{j + 1}" in fs and f"scatter_{other}_freq_{j + 1}" not in fs:
                raise DatasetError(
                    f"{fs.filename}: /scatter_{part}_freq_{j + 1} has no "
                    f"/scatter_{other}_freq_{j + 1}; expected both parts of every frequency"
                )
        j += 1
    if j == 0:
        raise DatasetError(
            f"{fs.filename}: no /scatter_real_freq_1 and /scatter_imag_freq_1 datasets; "
            "expected the published scatter.h5 layout"
        )
    return j


def _open_h5(path: Path):
    import h5py

    try:
        return h5py.File(path, "r")
    except OSError as exc:
        raise DatasetError(
            f"{path}: not a readable HDF5 file (truncated or another format: {exc})"
        ) from None


def import_hdf5(
    indir: str | os.PathLike,
    store: str | os.PathLike,
    *,
    freqs: tuple[float, ...] | None = None,
    geometry: Geometry | ForwardSpec | None = None,
    chunk: int = 16,
    target_blur: float | None = None,
) -> Path:
    """Read ``indir/eta.h5`` and ``indir/scatter.h5`` (published layout) into a new store.

    Parameters
    ----------
    indir : path-like
        Folder with the two files.
    store : path-like
        New dataset path (must not exist or be empty).
    freqs : tuple of float, optional
        Frequencies of ``freq_1, freq_2, ...``; taken from the files' msinv attributes when
        present, else required (the published data: 2.5, 5, 10).
    geometry : Geometry or ForwardSpec, optional
        Default: from the msinv attributes, else ``Geometry.paper(n, pml_width="published")``
        (the published 20-node PML at n = 80) with ``n`` from the
        size of ``/eta`` (it must match the number of sources and receivers). Without msinv
        attributes the store records the published forward model (:func:`published_spec`:
        wide8, bilinear receivers, complex128) on that geometry, unless a whole spec is given;
        inversion and re-simulation of the store then use it by default.
    chunk : int, default 16
        Samples per chunk of the new store (ignored when msinv attributes give one).
    target_blur : float, optional
        Also store training targets, ``eta`` blurred by this many pixels
        (:func:`msinv.scattering.phantoms.blur_target`; the published pipeline: 0.5), and
        record it in the store's configuration. Default: what the msinv attributes say, else
        0 (no targets).

    Returns
    -------
    pathlib.Path
        The new, complete store. Data are converted to msinv's convention
        (:func:`from_published`).
    """

    indir = Path(indir)
    eta_path, scatter_path = indir / ETA_FILE, indir / SCATTER_FILE
    for p in (eta_path, scatter_path):
        if not p.is_file():
            raise FileNotFoundError(f"{p}: not found; expected {ETA_FILE} and {SCATTER_FILE}")
    fe = _open_h5(eta_path)
    try:
        fs = _open_h5(scatter_path)
    except BaseException:
        fe.close()
        raise
    with fe, fs:
        if "eta" not in fe:
            raise DatasetError(f"{eta_path}: no dataset /eta; expected /eta of shape (N, n*n)")
        if fe["eta"].ndim != 2:
            raise DatasetError(f"{eta_path}: /eta has shape {fe['eta'].shape}; expected (N, n*n)")
        count, npix = fe["eta"].shape
        n = math.isqrt(npix)
        if n * n != npix:
            raise DatasetError(f"{eta_path}: /eta rows have {npix} values, not a square n*n")
        n_freq = _freq_names(fs)
        config, extra = _import_config(fs, count, n, n_freq, freqs, geometry, chunk)
        if target_blur is not None:
            config = dataclasses.replace(config, target_blur=target_blur)
        g = config.geometry
        n_rec, n_src = g.n_receivers, g.n_sources
        for j in range(n_freq):
            for part in ("real", "imag"):
                shape = fs[f"scatter_{part}_freq_{j + 1}"].shape
                if shape != (count, n_rec * n_src):
                    raise DatasetError(
                        f"{scatter_path}: /scatter_{part}_freq_{j + 1} has shape {shape}; "
                        f"expected ({count}, {n_rec * n_src}) for {count} samples of "
                        f"{n_rec} receivers x {n_src} sources"
                    )
        group = create_empty(store, config, **extra)
        try:
            _copy_chunks(fe, fs, group, config, n_freq, eta_path, scatter_path)
        except BaseException:  # a bad value found on the way: no half-imported store is left
            shutil.rmtree(store, ignore_errors=True)
            raise
    return Path(store)


def _copy_chunks(fe, fs, group, config, n_freq, eta_path, scatter_path) -> None:
    """Convert and write every chunk of an import, refusing NaN and inf."""
    n = config.geometry.n
    n_rec, n_src = config.geometry.n_receivers, config.geometry.n_sources
    for k in range(config.n_chunks):
        idx = config.chunk_range(k)
        sl = slice(idx.start, idx.stop)
        rows = f"rows {idx.start}-{idx.stop - 1}"
        eta = rows_to_eta(require_finite(fe["eta"][sl], f"{eta_path}: /eta {rows}"), n)
        parts = []
        for j in range(n_freq):
            re, im = (
                require_finite(fs[name][sl].astype(np.float64), f"{scatter_path}: /{name} {rows}")
                for name in (f"scatter_real_freq_{j + 1}", f"scatter_imag_freq_{j + 1}")
            )
            parts.append(rows_to_data(re + 1j * im, n_rec, n_src))
        pub = np.stack(parts, axis=1)
        arrays = {"eta": eta.astype(np.float32), "data": from_published(pub).astype(np.complex64)}
        if config.target_blur > 0:
            from msinv.scattering.phantoms import blur_target

            arrays["target"] = blur_target(arrays["eta"], config.target_blur).astype(np.float32)
        write_chunk(group, config, k, arrays)


def _import_config(fs, count, n, n_freq, freqs, geometry, chunk):
    """The configuration of an imported store: msinv attributes if any, else the arguments."""
    extra: dict[str, Any] = {"imported_from": str(Path(fs.filename).parent)}
    if "msinv_config" in fs.attrs:
        stored = json.loads(fs.attrs["msinv_config"])
        config = DatasetConfig.from_attrs(stored)
        extra.update(json.loads(fs.attrs.get("msinv_attrs", "{}")))
        extra.pop("imported_from", None)
        if config.count != count or config.geometry.n != n or len(config.freqs) != n_freq:
            raise DatasetError(
                f"{fs.filename}: msinv attributes say {config.count} samples, n = "
                f"{config.geometry.n}, {len(config.freqs)} frequencies; the files hold "
                f"{count}, {n}, {n_freq}"
            )
        return config, extra
    if freqs is None:
        raise DatasetError(
            f"{fs.filename}: no msinv attributes, so the frequencies of its {n_freq} "
            "scatter_*_freq_j datasets must be given (published: 2.5 5 10)"
        )
    if len(freqs) != n_freq:
        raise DatasetError(
            f"{fs.filename}: holds {n_freq} frequencies but {len(freqs)} were given ({freqs})"
        )
    spec = geometry if isinstance(geometry, ForwardSpec) else published_spec(geometry or n)
    if spec.geometry.n != n:
        raise DatasetError(
            f"{fs.filename}: eta is {n}x{n} but the geometry has n = {spec.geometry.n}"
        )
    config = DatasetConfig(
        family=EXTERNAL,
        count=count,
        geometry=spec.geometry,
        freqs=tuple(freqs),
        scheme=spec.scheme,
        seed=0,
        chunk=chunk,
        receiver_interpolation=spec.receiver_interpolation,
        simulator="external:published-matlab",
        dtype=spec.dtype,
        backend=spec.backend,
    )
    return config, extra


def published_spec(geometry: Geometry | int) -> ForwardSpec:
    """The forward model of the published data: the 17-point 8th-order cross (``"wide8"``),
    bilinear receivers, double precision, on ``geometry`` (default
    ``Geometry.paper(n, pml_width="published")``: the published layer, 20 nodes at n = 80)."""
    if not isinstance(geometry, Geometry):
        geometry = Geometry.paper(int(geometry), pml_width="published")
    return ForwardSpec(
        geometry, scheme="wide8", receiver_interpolation="bilinear", dtype="complex128"
    )
