"""Scattering datasets: deterministic, resumable generation into a chunked zarr v3 store.

A store holds, for ``count`` samples of a perturbation family,

=========  ==================================  ===========================================
array      shape / dtype                       what
=========  ==================================  ===========================================
``eta``    (count, n, n) float32               the contrast the data were computed from
``data``   (count, n_freq, n_rec, n_src) c64   :func:`msinv.scattering.simulate` of ``eta``
``target`` (count, n, n) float32               ``eta`` blurred by ``target_blur`` pixels
                                               (only when ``target_blur > 0``)
``done``   (n_chunks,) bool                    chunk ``k`` (samples ``k*chunk ...``) complete
``checksum`` (n_chunks,) uint32                CRC-32 of chunk ``k``'s values, written before
                                               its ``done`` flag; checked on resume (a
                                               damaged chunk is computed again) and by
                                               :func:`verify`
=========  ==================================  ===========================================

and the attributes ``msinv_dataset`` (format and version), ``config`` (the forward model --
geometry, scheme, receiver reader, precision, backend, see :class:`ForwardSpec` -- frequencies,
family and its parameters, seed, count, chunk, target blur, simulator) and ``provenance``
(msinv version, date, machine). Stores of the first layout record ``order`` (an integer or
``"auto"``) instead of ``scheme`` and no precision or backend; they read as the spec they were
computed with (``"wide8"``, complex64, scipy).

Sample ``i`` depends only on ``(seed, i)``: its generator is
``numpy.random.default_rng(numpy.random.SeedSequence([seed, i]))``, so the bytes of every array
are the same for any worker count or chunking. The work unit is one chunk: its samples are
computed, then its ``eta``/``target``/``data`` chunks written (zarr writes each chunk file
atomically, by a rename), then its ``done`` flag set. A run killed at any point (SIGKILL
included) leaves only complete chunks marked done; re-running the same command computes the
chunks that are not, and nothing else. A new store is built in a temporary folder beside the
target and renamed into place, so a half-created store never exists under the final name.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import shutil
import tempfile
import warnings
import zlib
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np

from msinv.core.errors import Interrupted, MsinvWarning, UserInputError
from msinv.core.interrupts import sigterm_as_interrupt, worker_pool
from msinv.core.provenance import provenance
from msinv.scattering.geometry import Geometry
from msinv.scattering.phantoms import blur_target, get_family
from msinv.scattering.schemes import Scheme, scheme_name
from msinv.scattering.spec import DEFAULT_SCHEME, ForwardSpec, as_spec

#: Value of the ``msinv_dataset`` attribute ``format`` that marks our stores.
FORMAT = "msinv-scatter-dataset"
#: Layout version of the store.
FORMAT_VERSION = 1
#: Samples per chunk when the caller does not choose.
DEFAULT_CHUNK = 16
#: Family name of a store whose samples were made elsewhere (e.g. imported from HDF5).
EXTERNAL = "external"
_SIMULATE = "msinv.scattering.helmholtz:simulate"
#: The batched PyTorch solver (FFT Lippmann--Schwinger + GMRES, CPU or CUDA; ``learn`` extra),
#: the simulator of ``backend="torch"`` stores.
TORCH_SIMULATOR = "msinv.accel.lippmann_schwinger:simulate"
#: Samples per call of the PyTorch solver when the caller does not choose.
TORCH_BATCH = 256


class DatasetError(UserInputError):
    """A store that cannot be used as asked: foreign, corrupt, mismatched or unwritable."""


@dataclass(frozen=True)
class DatasetConfig:
    """Everything that determines the bytes of a dataset.

    Parameters
    ----------
    family : str
        Perturbation family (:data:`msinv.scattering.phantoms.FAMILIES`), or ``"external"``
        for samples made elsewhere (an HDF5 import).
    count : int
        Number of samples (>= 1).
    geometry : Geometry
        Grid and acquisition.
    freqs : tuple of float
        Ordinary frequencies (> 0).
    scheme : str
        Scheme or per-frequency policy of the simulator (:mod:`msinv.scattering.schemes`; a
        wide order such as 8 is recorded as ``"wide8"``).
    seed : int, default 0
        Root seed (>= 0); sample ``i`` uses ``SeedSequence([seed, i])``.
    chunk : int
        Samples per chunk and per work unit (>= 1).
    target_blur : float, default 0.0
        Gaussian blur in pixels of the stored ``target`` (0: no ``target`` array; the published
        training targets used 0.5).
    receiver_interpolation : str, default 'representation'
        Receiver reader of the simulator (``"representation"``, ``"cubic"``, ``"bilinear"``).
    simulator : str
        ``"module:function"`` of the simulator, called as
        ``simulator(eta (b, n, n), spec, freqs)`` with ``spec`` the :attr:`spec`; its result
        is stored as complex64.
    family_params : dict
        Parameters of the family's generator that differ from its defaults (the paper's law),
        e.g. ``{"count": 5, "side": 25}`` for squares; the full set is recorded.
    dtype : {"complex64", "complex128"}, default 'complex64'
        Precision of the solves (the data are stored as complex64).
    backend : {"scipy", "torch"}, default 'scipy'
        Solver backend (:data:`msinv.scattering.spec.BACKENDS`).
    simulator_options : dict
        Further keyword arguments of the simulator that change its numbers (the GMRES
        tolerance and restart of the PyTorch solver, :data:`TORCH_SIMULATOR`); recorded (only
        when given, so other stores keep their attributes) and checked on resume.
    """

    family: str
    count: int
    geometry: Geometry
    freqs: tuple[float, ...]
    scheme: str = DEFAULT_SCHEME
    seed: int = 0
    chunk: int = DEFAULT_CHUNK
    target_blur: float = 0.0
    receiver_interpolation: str = "representation"
    simulator: str = _SIMULATE
    family_params: dict[str, Any] = field(default_factory=dict)
    dtype: str = "complex64"
    backend: str = "scipy"
    simulator_options: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self):
        if self.family != EXTERNAL:
            fam = get_family(self.family)  # unknown family -> error listing the known ones
            fam = fam.with_params(**dict(self.family_params or {}))
            object.__setattr__(self, "family", fam.name)
            object.__setattr__(self, "family_params", fam.record()["params"])
        for name, low in (("count", 1), ("seed", 0), ("chunk", 1)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < low:
                raise UserInputError(f"{name}={value!r}: expected an integer >= {low}")
            object.__setattr__(self, name, int(value))
        if not isinstance(self.geometry, Geometry):
            raise UserInputError(f"geometry={self.geometry!r}: expected a msinv Geometry")
        freqs = tuple(float(f) for f in np.atleast_1d(np.asarray(self.freqs, dtype=float)))
        if not freqs or not all(math.isfinite(f) and f > 0 for f in freqs):
            raise UserInputError(
                f"freqs={list(freqs)}: expected one or more finite frequencies > 0"
            )
        object.__setattr__(self, "freqs", freqs)
        if not (math.isfinite(self.target_blur) and self.target_blur >= 0):
            raise UserInputError(
                f"target_blur={self.target_blur!r}: expected a number >= 0 (pixels)"
            )
        object.__setattr__(self, "target_blur", float(self.target_blur))
        spec = self.spec  # validates scheme, reader, dtype and backend
        object.__setattr__(self, "scheme", spec.scheme)
        object.__setattr__(self, "dtype", spec.dtype)
        if ":" not in self.simulator:
            raise UserInputError(f"simulator={self.simulator!r}: expected 'module:function'")
        object.__setattr__(self, "simulator_options", dict(self.simulator_options or {}))

    @property
    def spec(self) -> ForwardSpec:
        """The forward model of the data."""
        return ForwardSpec(
            self.geometry,
            scheme=self.scheme,
            receiver_interpolation=self.receiver_interpolation,
            dtype=self.dtype,
            backend=self.backend,
        )

    @property
    def n_chunks(self) -> int:
        """Number of chunks along the sample axis."""
        return -(-self.count // self.chunk)

    def chunk_range(self, k: int) -> range:
        """Sample indices of chunk ``k``."""
        return range(k * self.chunk, min((k + 1) * self.chunk, self.count))

    def to_attrs(self) -> dict[str, Any]:
        """JSON-serialisable record, stored as the ``config`` attribute."""
        return {
            "family": self.family,
            "family_params": self.family_params,
            "count": self.count,
            "geometry": self.geometry.to_dict(),
            "freqs": list(self.freqs),
            "scheme": self.scheme,
            "seed": self.seed,
            "chunk": self.chunk,
            "target_blur": self.target_blur,
            "receiver_interpolation": self.receiver_interpolation,
            "simulator": self.simulator,
            "dtype": self.dtype,
            "backend": self.backend,
        } | ({"simulator_options": self.simulator_options} if self.simulator_options else {})

    @classmethod
    def from_attrs(cls, attrs: dict[str, Any]) -> DatasetConfig:
        """Inverse of :meth:`to_attrs` (also reads the first layout, see the module notes)."""
        a = upgrade_attrs(attrs)
        a["geometry"] = Geometry.from_dict(a["geometry"])
        return cls(**a)  # __post_init__ makes freqs a tuple of floats


def upgrade_attrs(config: dict[str, Any]) -> dict[str, Any]:
    """A ``config`` attribute in the current layout: ``order`` -> ``scheme`` (8 -> ``"wide8"``),
    ``dtype`` complex64 and ``backend`` scipy when absent (what the first layout computed)."""
    a = dict(config)
    if "order" in a:
        order = a.pop("order")
        a.setdefault("scheme", scheme_name(order))
    a.setdefault("dtype", "complex64")
    a.setdefault("backend", "scipy")
    return a


def sample_eta(
    family: str, seed: int, index: int, n: int, params: dict[str, Any] | None = None
) -> np.ndarray:
    """Sample ``index`` of a family for a root ``seed``: (n, n) float64, depends only on these
    (and on ``params``, the family parameters that differ from its defaults).

    The generator is ``default_rng(SeedSequence([seed, index]))``.
    """
    rng = np.random.default_rng(np.random.SeedSequence([seed, index]))
    return get_family(family).with_params(**(params or {}))(rng, n)


def _load(qualname: str) -> Callable:
    from importlib import import_module

    module, _, name = qualname.partition(":")
    return getattr(import_module(module), name)


def compute_chunk(
    config: DatasetConfig, k: int, on_samples: Callable[[int], None] | None = None
) -> tuple[int, dict[str, np.ndarray]]:
    """Compute chunk ``k``: its ``eta`` (float32), ``data`` (complex64) and ``target``.

    The data are computed from the float32-rounded ``eta`` that is stored, so the store is
    self-consistent to the last bit. ``on_samples(count)`` reports progress (see
    :func:`simulate_chunks`).
    """
    return compute_chunks(config, [k], on_samples=on_samples)[0]


def compute_chunks(
    config: DatasetConfig,
    ks: Sequence[int],
    on_samples: Callable[[int], None] | None = None,
    **runtime: Any,
) -> list[tuple[int, dict[str, np.ndarray]]]:
    """Compute the chunks ``ks`` with one simulator call (a batched solver's batch).

    ``runtime`` holds keyword arguments of the simulator that do not change its numbers beyond
    rounding (``device`` of the PyTorch solver); they are not recorded in the configuration.
    """
    eta = draw_chunks(config, ks)
    return simulate_chunks(config, ks, eta, on_samples=on_samples, **runtime)


def draw_chunks(config: DatasetConfig, ks: Sequence[int]) -> np.ndarray:
    """The float32 ``eta`` of the chunks ``ks``, stacked, ``(n_samples, n, n)``."""
    n = config.geometry.n
    return np.stack(
        [
            sample_eta(config.family, config.seed, i, n, config.family_params)
            for k in ks
            for i in config.chunk_range(k)
        ]
    ).astype(np.float32)


def simulate_chunks(
    config: DatasetConfig,
    ks: Sequence[int],
    eta: np.ndarray,
    on_samples: Callable[[int], None] | None = None,
    **runtime: Any,
) -> list[tuple[int, dict[str, np.ndarray]]]:
    """The arrays of the chunks ``ks`` from their stacked ``eta`` (:func:`draw_chunks`), with
    one simulator call; the data are computed from the float32 ``eta`` that is stored.

    The finite-difference solver treats every contrast alone, so it is called per sample (the
    bytes equal those of one batched call) and ``on_samples(1)`` follows each sample; a
    batched solver reports its whole batch at the end. In a pool worker the default reports
    to the parent's progress bar.
    """
    simulate = _load(config.simulator)
    report = on_samples or _report_to_parent
    options = {**config.simulator_options, **runtime}
    if config.simulator == _SIMULATE:
        data = []
        for e in eta:
            data.append(
                simulate(e[None].astype(np.float64), config.spec, list(config.freqs), **options)
            )
            report(1)
        data = np.asarray(np.concatenate(data), dtype=np.complex64)
    else:
        data = simulate(eta.astype(np.float64), config.spec, list(config.freqs), **options)
        data = np.asarray(data, dtype=np.complex64)
        report(len(eta))
    target = blur_target(eta, config.target_blur).astype(np.float32) if config.target_blur else None
    out, start = [], 0
    for k in ks:
        sl = slice(start, start + len(config.chunk_range(k)))
        arrays = {"eta": eta[sl], "data": data[sl]}
        if target is not None:
            arrays["target"] = target[sl]
        out.append((k, arrays))
        start = sl.stop
    return out


#: In a pool worker: the queue on which :func:`simulate_chunks` reports finished samples.
_PROGRESS_QUEUE = None


def _init_worker(queue) -> None:
    """Pool worker initializer: report progress on ``queue``."""
    global _PROGRESS_QUEUE
    _PROGRESS_QUEUE = queue


def _report_to_parent(count: int) -> None:
    if _PROGRESS_QUEUE is not None:
        _PROGRESS_QUEUE.put(count)


# --------------------------------------------------------------------------------- the store
def _zarr():
    import zarr

    return zarr


def _open_group(path: Path, mode: str):
    """Open our zarr group or raise a one-line DatasetError that says what is wrong."""
    zarr = _zarr()
    if not path.exists():
        raise FileNotFoundError(
            f"{path}: no such dataset (expected a store made by "
            "`msinv scatter generate` or `import-hdf5`)"
        )
    try:
        group = zarr.open_group(str(path), mode=mode)
        meta = dict(group.attrs).get("msinv_dataset")
    except Exception as exc:  # zarr raises many kinds for foreign or corrupt folders
        raise DatasetError(
            f"{path}: not a readable zarr store ({type(exc).__name__}: {exc}); expected a "
            "store made by `msinv scatter generate`"
        ) from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise DatasetError(
            f"{path}: a zarr store but not an msinv scattering dataset (no "
            f"msinv_dataset.format = {FORMAT!r} attribute); choose another path"
        )
    if meta.get("version") != FORMAT_VERSION:
        raise DatasetError(
            f"{path}: dataset format version {meta.get('version')!r}, this msinv reads "
            f"version {FORMAT_VERSION}"
        )
    for name in ("eta", "data", "done"):
        if name not in group:
            raise DatasetError(f"{path}: corrupt dataset, array {name!r} is missing")
    return group


def _check_same(path: Path, stored: dict[str, Any], asked: dict[str, Any]) -> None:
    """Raise on the first field where the stored configuration differs from the request."""
    for key, want in asked.items():
        have = stored.get(key)
        if key == "geometry" and isinstance(have, dict) and isinstance(want, dict):
            for sub, sub_want in want.items():
                if have.get(sub) != sub_want:
                    raise DatasetError(
                        f"{path}: stored geometry.{sub}={have.get(sub)!r} but the command asks "
                        f"for {sub_want!r}; use the stored value or another output path"
                    )
        elif json.dumps(have) != json.dumps(want):
            raise DatasetError(
                f"{path}: stored {key}={have!r} but the command asks for {want!r}; use the "
                "stored value or another output path"
            )


def _create(path: Path, config: DatasetConfig) -> None:
    """Create an empty store at ``path`` atomically (build beside it, then rename)."""
    zarr = _zarr()
    parent = path.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=parent))
    except OSError as exc:
        raise DatasetError(f"{path}: cannot create the dataset here ({exc.strerror})") from None
    try:
        g = zarr.open_group(str(tmp), mode="w")
        n, c = config.geometry.n, config.chunk
        shape_data = (len(config.freqs), config.geometry.n_receivers, config.geometry.n_sources)
        nan = float("nan")
        g.create_array(
            "eta", shape=(config.count, n, n), chunks=(c, n, n), dtype="float32", fill_value=nan
        )
        g.create_array(
            "data",
            shape=(config.count, *shape_data),
            chunks=(c, *shape_data),
            dtype="complex64",
            fill_value=complex(nan, nan),
        )
        if config.target_blur > 0:
            g.create_array(
                "target",
                shape=(config.count, n, n),
                chunks=(c, n, n),
                dtype="float32",
                fill_value=nan,
            )
        g.create_array(
            "done", shape=(config.n_chunks,), chunks=(1,), dtype="bool", fill_value=False
        )
        g.create_array(
            "checksum", shape=(config.n_chunks,), chunks=(1,), dtype="uint32", fill_value=0
        )
        g.attrs.update(
            {
                "msinv_dataset": {"format": FORMAT, "version": FORMAT_VERSION},
                "config": config.to_attrs(),
                "provenance": provenance(config.to_attrs()),
            }
            | _solver_record(config)
        )
        os.replace(tmp, path)  # an empty directory at `path` is replaced; anything else fails
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _solver_record(config: DatasetConfig) -> dict[str, Any]:
    """``{"solver_per_freq": [...]}``: the scheme and PML the finite-difference simulator uses
    at each frequency (:meth:`ForwardSpec.solver_at`; a policy or an ``"auto"`` PML resolved),
    beside the ``config`` that determines them; empty for another simulator."""
    if config.simulator != _SIMULATE:
        return {}
    return {"solver_per_freq": [config.spec.solver_at(f) for f in config.freqs]}


def _prepare(path: Path, config: DatasetConfig, *, chunk_given: bool):
    """Open (checking the configuration) or create the store; return the group."""
    if path.exists() and not path.is_dir():
        raise DatasetError(f"{path}: exists and is a file; expected a dataset folder")
    if path.is_dir() and any(path.iterdir()):
        group = _open_group(path, "r+")
        asked = config.to_attrs()
        stored = upgrade_attrs(dict(group.attrs)["config"])
        if not chunk_given:
            asked["chunk"] = stored.get("chunk")
        try:
            _check_same(path, stored, asked)
        except DatasetError:
            if np.asarray(group["done"][:], dtype=bool).any():
                raise  # computed samples are never thrown away
            # a store that holds nothing yet (a run that failed at once): made again as asked
            warnings.warn(
                MsinvWarning(f"{path}: held no computed sample; made again for this command"),
                stacklevel=3,
            )
            _remove_store(path)
            _create(path, config)
            return _open_group(path, "r+")
        _remove_orphan_writes(path)
        return group
    if path.is_dir():
        path.rmdir()
    _create(path, config)
    return _open_group(path, "r+")


#: zarr's LocalStore writes each file to ``<name>.<32 hex digits>.partial`` and renames it.
_ORPHAN_WRITE = re.compile(r".+\.[0-9a-f]{32}\.partial")


def _remove_orphan_writes(path: Path) -> int:
    """Delete the half-written files of a writer killed in the middle of a write (zarr's
    temporary ``*.<uuid>.partial`` files, which a killed process leaves behind) before a run
    resumes the store; returns how many. One generating run per store at a time: a second
    one would lose the files it is writing."""
    orphans = [f for f in path.rglob("*.partial") if _ORPHAN_WRITE.fullmatch(f.name)]
    for f in orphans:
        f.unlink(missing_ok=True)
    return len(orphans)


def _remove_store(path: Path) -> None:
    """Delete an msinv store folder (checked to be one by :func:`_open_group`)."""
    _open_group(path, "r")
    shutil.rmtree(path)


def _write_chunk(group, config: DatasetConfig, k: int, arrays: dict[str, np.ndarray]) -> None:
    idx = config.chunk_range(k)
    sl = slice(idx.start, idx.stop)
    stored = {name: np.asarray(values, dtype=group[name].dtype) for name, values in arrays.items()}
    for name, values in stored.items():
        group[name][sl] = values
    if "checksum" in group:
        group["checksum"][k] = _checksum(stored)
    group["done"][k] = True  # only after every array of the chunk and its checksum are on disk


def _checksum(arrays: dict[str, np.ndarray]) -> int:
    """CRC-32 of the values of one chunk (its arrays in name order, C-order bytes)."""
    crc = 0
    for name in sorted(arrays):
        crc = zlib.crc32(np.ascontiguousarray(arrays[name]).tobytes(), crc)
    return crc


def _damaged_chunks(group, config: DatasetConfig, chunks: Iterable[int]) -> list[int]:
    """Which of ``chunks`` (marked done) cannot be read back or do not match their checksum.

    Stores written before checksums existed are checked for readability and for NaN in
    ``eta`` (the fill value of a chunk that is missing on disk).
    """
    names = [n for n in ("eta", "data", "target") if n in group]
    sums = np.asarray(group["checksum"][:]) if "checksum" in group else None
    bad = []
    for k in chunks:
        idx = config.chunk_range(int(k))
        try:
            arrays = {n: np.asarray(group[n][idx.start : idx.stop]) for n in names}
        except Exception:  # a truncated or foreign chunk file: zstd, zarr or OS errors
            bad.append(int(k))
            continue
        if sums is not None:
            if _checksum(arrays) != int(sums[k]):
                bad.append(int(k))
        elif np.isnan(arrays["eta"]).any():
            bad.append(int(k))
    return bad


def verify(path: str | os.PathLike) -> list[range]:
    """Read every finished chunk of a store back and check it against its checksum.

    Parameters
    ----------
    path : path-like
        A dataset store.

    Returns
    -------
    list of range
        The sample ranges of the damaged chunks (empty when the store is intact). ``generate``
        with the same command recomputes them.
    """
    path = Path(path)
    group = _open_group(path, "r")
    try:
        config = DatasetConfig.from_attrs(dict(group.attrs)["config"])
    except (KeyError, TypeError, ValueError) as exc:
        raise DatasetError(f"{path}: corrupt dataset attributes ({exc})") from None
    done = np.flatnonzero(np.asarray(group["done"][:], dtype=bool))
    return [config.chunk_range(k) for k in _damaged_chunks(group, config, done)]


def generate(
    path: str | os.PathLike,
    *,
    family: str,
    count: int,
    geometry: Geometry | ForwardSpec,
    freqs: Sequence[float],
    scheme: Scheme | str | int | None = None,
    seed: int = 0,
    workers: int = 1,
    scheduler: str | None = None,
    chunk: int | None = None,
    target_blur: float = 0.0,
    receiver_interpolation: str | None = None,
    simulator: str = _SIMULATE,
    progress: bool = True,
    family_params: dict[str, Any] | None = None,
    backend: str | None = None,
    simulator_options: dict[str, Any] | None = None,
    device: str | None = None,
    batch: int | None = None,
) -> Path:
    """Generate (or complete) a dataset of ``count`` samples and their data at ``path``.

    Parameters
    ----------
    path : path-like
        Store folder (``*.zarr``); created if absent, resumed if it holds a dataset with the
        same configuration, refused otherwise (one-line :class:`DatasetError` naming the field,
        the stored and the requested value; nothing written is touched).
    geometry : Geometry or ForwardSpec
        Grid and acquisition, or the whole forward model (its fields are overridden by
        ``scheme``, ``receiver_interpolation`` and ``backend`` when given).
    family, count, freqs, scheme, seed, target_blur, receiver_interpolation, simulator
    family_params, backend, simulator_options
        See :class:`DatasetConfig`. ``backend="torch"`` computes with :data:`TORCH_SIMULATOR`
        (``learn`` extra, imported only then), its default GMRES options updated by
        ``simulator_options``, on ``device`` (default CUDA when available), :data:`TORCH_BATCH`
        samples per call unless ``batch`` says otherwise.
    workers : int, default 1
        Local worker processes (>= 1; 1 computes in this process). Ignored with ``scheduler``.
    scheduler : str, optional
        Address ``tcp://host:port`` of a running Dask distributed scheduler: chunks are computed
        on its workers (which need msinv installed) and written by this process.
    chunk : int, optional
        Samples per chunk (default :data:`DEFAULT_CHUNK`, or the stored value on resume).
    progress : bool, default True
        Show a tqdm bar (samples/s and time left) on stderr when it is a terminal.
    device : str, optional
        Passed to the simulator as ``device=`` (the PyTorch solver: ``"cpu"``, ``"cuda"``); not
        part of the configuration (the attribute ``devices`` lists where chunks were computed).
        Needs ``workers=1`` and no scheduler.
    batch : int, optional
        Samples per simulator call, in whole chunks (default: one chunk). A batched solver
        computes ``ceil(batch / chunk)`` chunks at once, then writes and marks each.

    Returns
    -------
    pathlib.Path
        The store, complete.
    """
    path = Path(path)
    # unknown family or parameter -> one-line error, before any I/O
    get_family(family).with_params(**(family_params or {}))
    if isinstance(workers, bool) or not isinstance(workers, int | np.integer) or workers < 1:
        raise UserInputError(f"workers={workers!r}: expected an integer >= 1")
    if batch is not None and (isinstance(batch, bool) or not isinstance(batch, int) or batch < 1):
        raise UserInputError(f"batch={batch!r}: expected an integer >= 1 (samples per solver call)")
    torch_backend = backend == "torch" or (
        backend is None and isinstance(geometry, ForwardSpec) and geometry.backend == "torch"
    )
    if torch_backend:
        from msinv.accel.lippmann_schwinger import DEFAULT_RESTART, DEFAULT_RTOL, resolve_device

        if simulator != _SIMULATE:
            raise UserInputError(f"backend='torch' with simulator={simulator!r}: give one of them")
        simulator = TORCH_SIMULATOR
        simulator_options = {"rtol": DEFAULT_RTOL, "restart": DEFAULT_RESTART} | dict(
            simulator_options or {}
        )
        device = str(resolve_device(device))
        batch = TORCH_BATCH if batch is None else batch
    if (device is not None or batch is not None) and (workers > 1 or scheduler is not None):
        raise UserInputError(
            "device/batch select a batched solver in this process: use workers=1 and no "
            "scheduler with them"
        )
    chunk_given = chunk is not None
    if not chunk_given and path.is_dir() and any(path.iterdir()):
        stored = dict(_open_group(path, "r").attrs)["config"]
        chunk = int(stored.get("chunk", DEFAULT_CHUNK))
    spec = as_spec(
        geometry, scheme=scheme, receiver_interpolation=receiver_interpolation, backend=backend
    )
    config = DatasetConfig(
        family=family,
        count=count,
        geometry=spec.geometry,
        freqs=tuple(freqs),
        scheme=spec.scheme,
        seed=seed,
        chunk=DEFAULT_CHUNK if chunk is None else chunk,
        target_blur=target_blur,
        receiver_interpolation=spec.receiver_interpolation,
        simulator=simulator,
        family_params=family_params or {},
        dtype=spec.dtype,
        backend=spec.backend,
        simulator_options=simulator_options or {},
    )
    _load(config.simulator)  # a missing simulator (or its extra) fails before any I/O
    group = _prepare(path, config, chunk_given=chunk_given)
    runtime = {} if device is None else {"device": device}
    if device is not None:
        devices = sorted({*dict(group.attrs).get("devices", []), str(device)})
        group.attrs["devices"] = devices  # where the chunks were computed (not in config)
    done = np.asarray(group["done"][:], dtype=bool)
    for k in _damaged_chunks(group, config, np.flatnonzero(done)):
        idx = config.chunk_range(k)
        warnings.warn(
            MsinvWarning(
                f"{path}: chunk {k} (samples {idx.start}-{idx.stop - 1}) is damaged (unreadable "
                "or not matching its checksum); computing it again"
            ),
            stacklevel=2,
        )
        group["done"][k] = False
        done[k] = False
    todo = [int(k) for k in np.flatnonzero(~done)]
    from tqdm import tqdm

    finished = sum(len(config.chunk_range(int(k))) for k in np.flatnonzero(done))
    try:
        with (
            sigterm_as_interrupt(),
            tqdm(
                total=config.count,
                initial=finished,
                unit="sample",
                disable=None if progress else True,  # None: only on a terminal
                desc=path.name,
                smoothing=0.1,
                dynamic_ncols=True,
            ) as bar,
        ):
            group_size = 1 if batch is None else max(1, -(-batch // config.chunk))
            if group_size > 1 or runtime:
                _generate_batched(group, config, todo, group_size, runtime, bar.update)
            else:
                runs = _run(config, todo, workers=int(workers), scheduler=scheduler, bar=bar)
                with contextlib.closing(runs):  # an interrupt stops the workers at once
                    for k, arrays in runs:
                        _write_chunk(group, config, k, arrays)
    except KeyboardInterrupt:
        raise Interrupted(
            f"{path}: kept {_kept(group, config)} of {config.count} samples (every finished "
            "chunk); run the same command again to compute the rest"
        ) from None
    return path


def _kept(group, config: DatasetConfig) -> int:
    """Samples of the chunks marked done."""
    done = np.flatnonzero(np.asarray(group["done"][:], dtype=bool))
    return sum(len(config.chunk_range(int(k))) for k in done)


def _run(config: DatasetConfig, todo: list[int], *, workers: int, scheduler: str | None, bar):
    """Yield ``(k, arrays)`` for every chunk in ``todo``, in completion order.

    ``bar`` (a tqdm bar) advances by one per computed sample (per chunk with a scheduler).
    """
    if not todo:
        return
    if scheduler is not None:
        for k, arrays in _run_dask(config, todo, scheduler):
            bar.update(len(config.chunk_range(k)))
            yield k, arrays
    elif workers == 1:
        for k in todo:
            yield compute_chunk(config, k, on_samples=bar.update)
    else:
        yield from _run_pool(config, todo, workers, bar)


def _generate_batched(
    group, config: DatasetConfig, todo: list[int], group_size: int, runtime: dict, update
) -> None:
    """The chunks ``todo``, ``group_size`` per simulator call, as a pipeline: while a batch is
    solved (a GPU, or torch's threads), the next batch's ``eta`` is drawn and the previous
    batch is written, each in a thread of its own (zarr's codecs and numpy release the GIL).
    A chunk is marked done only after its arrays are written, as in the serial loop; on an
    error the writes already started finish, nothing later is written."""
    batches = [todo[s : s + group_size] for s in range(0, len(todo), group_size)]
    if not batches:
        return
    with ThreadPoolExecutor(1) as drawer, ThreadPoolExecutor(1) as writer:
        upcoming = drawer.submit(draw_chunks, config, batches[0])
        writes: list = []
        for i, ks in enumerate(batches):
            eta = upcoming.result()
            if i + 1 < len(batches):
                upcoming = drawer.submit(draw_chunks, config, batches[i + 1])
            results = simulate_chunks(config, ks, eta, **runtime)
            _wait(writes, config, update)
            writes = [(k, writer.submit(_write_chunk, group, config, k, a)) for k, a in results]
        _wait(writes, config, update)


def _wait(writes: list, config: DatasetConfig, update) -> None:
    """Wait for the writes ``[(k, future)]`` in order (re-raising theirs), updating progress."""
    for k, future in writes:
        future.result()
        update(len(config.chunk_range(k)))


def _run_pool(config: DatasetConfig, todo: list[int], workers: int, bar):
    """A local pool of spawned processes, at most ``2 * workers`` chunks in flight.

    The workers (:func:`msinv.core.interrupts.worker_pool`) die with this process, SIGKILL
    included, never see Ctrl-C and report every finished sample to ``bar``; on an error or an
    interrupt here they are killed at once (the chunks they were computing are not marked done
    and are computed again on resume).
    """
    queue = get_context("spawn").SimpleQueue()
    pending = iter(todo)
    try:
        with worker_pool(
            workers, start_method="spawn", initializer=_init_worker, initargs=(queue,)
        ) as pool:
            running = set()
            for k in pending:
                running.add(pool.submit(compute_chunk, config, k))
                if len(running) >= 2 * workers:
                    break
            while running:
                finished, running = wait(running, timeout=0.2, return_when=FIRST_COMPLETED)
                while not queue.empty():
                    bar.update(queue.get())
                for fut in finished:
                    try:
                        result = fut.result()
                    except BrokenProcessPool:
                        raise DatasetError(
                            "a worker process died (killed from outside, or out of memory); the "
                            "finished chunks are kept: run the same command again to resume"
                        ) from None
                    yield result
                    nxt = next(pending, None)
                    if nxt is not None:
                        running.add(pool.submit(compute_chunk, config, nxt))
    finally:
        queue.close()


def _run_dask(config: DatasetConfig, todo: list[int], scheduler: str):
    """Chunks computed on an existing Dask distributed cluster; this process writes them."""
    from distributed import Client, as_completed

    try:
        client = Client(scheduler, timeout=10, set_as_default=False)
    except OSError as exc:
        raise DatasetError(f"cannot reach the Dask scheduler at {scheduler!r}: {exc}") from None
    with client, client.as_current():
        futures = client.map(compute_chunk, [config] * len(todo), todo, pure=False)
        for fut in as_completed(futures):
            yield fut.result()
            fut.release()


# ---------------------------------------------------------------------------------- the reader
@dataclass(frozen=True)
class ScatterDataset:
    """Lazy, PyTorch-free view of a dataset store (see :func:`open_dataset`).

    Attributes
    ----------
    path : pathlib.Path
        The store.
    eta : (N, n, n) float32 GuardedArray (a zarr.Array whose read errors are one line)
        Contrasts (NaN where a chunk is not computed yet); slicing reads only what is asked.
    data : (N, n_freq, n_rec, n_src) complex64 zarr.Array
        Scattering data, physical sign, outgoing convention (see
        :func:`msinv.scattering.simulate`).
    target : (N, n, n) float32 zarr.Array
        Training targets: ``eta`` blurred by ``config['target_blur']`` pixels, or ``eta``
        itself when no blur was asked.
    geometry : Geometry
        Grid and acquisition of the data.
    spec : ForwardSpec
        The forward model of the data (geometry, scheme, receiver reader, precision,
        backend); re-simulation and inversion of the store should use it.
    freqs : (n_freq,) float64 numpy.ndarray
        Frequencies.
    attrs : dict
        All stored attributes (``config``, ``provenance``, ``msinv_dataset``).
    complete : (N,) bool numpy.ndarray
        Which samples are computed.
    """

    path: Path
    eta: Any
    data: Any
    target: Any
    geometry: Geometry
    spec: ForwardSpec
    freqs: np.ndarray
    attrs: dict[str, Any]
    complete: np.ndarray

    def __len__(self) -> int:
        return int(self.eta.shape[0])

    @property
    def config(self) -> dict[str, Any]:
        """The generation configuration (``attrs['config']``)."""
        return self.attrs["config"]

    def __getitem__(self, index) -> tuple[np.ndarray, np.ndarray]:
        """``(target, data)`` of sample(s) ``index`` (int, slice or index array) as numpy."""
        if isinstance(index, Iterable) and not isinstance(index, slice):
            index = np.asarray(index)
            order = np.argsort(index)
            inverse = np.argsort(order)
            t = self.target.get_orthogonal_selection((index[order],))[inverse]
            d = self.data.get_orthogonal_selection((index[order],))[inverse]
            return t, d
        return np.asarray(self.target[index]), np.asarray(self.data[index])

    def to_dask(self) -> dict[str, Any]:
        """``{"eta", "data", "target"}`` as dask arrays chunked like the store."""
        import dask.array as da

        return {name: da.from_zarr(getattr(self, name).array) for name in ("eta", "data", "target")}


class GuardedArray:
    """A zarr array of a store whose read errors name the store and the remedy.

    A damaged chunk file (truncated, overwritten) makes zarr raise a codec error deep inside
    its decoder; reading through this wrapper turns it into a one-line :class:`DatasetError`
    that points at ``msinv scatter info --verify``. Everything else (``shape``, ``dtype``,
    ``chunks``, ...) is the zarr array's; :attr:`array` is the array itself.
    """

    def __init__(self, array, path: Path, name: str) -> None:
        self.array, self._path, self._name = array, path, name

    def __getattr__(self, attr: str):
        return getattr(self.array, attr)

    def __len__(self) -> int:
        return self.array.shape[0]  # a zarr 3 Array has no len()

    def _read(self, method, selection):
        try:
            return method(selection)
        except (IndexError, TypeError):  # a wrong selection: the caller's error, unchanged
            raise
        except Exception as exc:  # codec, zarr or OS errors of a damaged chunk
            raise DatasetError(
                f"{self._path}: cannot read {self._name} ({type(exc).__name__}: {exc}); the "
                f"store is damaged: `msinv scatter info {self._path} --verify` lists the damaged "
                "samples and the generate command that made it recomputes them"
            ) from None

    def __getitem__(self, selection):
        return self._read(self.array.__getitem__, selection)

    def get_orthogonal_selection(self, selection):
        """As :meth:`zarr.Array.get_orthogonal_selection`."""
        return self._read(self.array.get_orthogonal_selection, selection)

    def __array__(self, dtype=None, copy=None):
        return np.asarray(self[...], dtype=dtype)


def open_dataset(path: str | os.PathLike, *, require_complete: bool = False) -> ScatterDataset:
    """Open a dataset store lazily (no PyTorch, nothing read but metadata and the done flags).

    Parameters
    ----------
    path : path-like
        A store written by :func:`generate` or by the HDF5 import.
    require_complete : bool, default False
        Raise a :class:`DatasetError` if some chunks are not computed yet.

    Returns
    -------
    ScatterDataset
    """
    path = Path(path)
    group = _open_group(path, "r")
    attrs = dict(group.attrs)
    try:
        config = upgrade_attrs(attrs["config"])
        spec = ForwardSpec.from_dict(
            {
                k: config[k]
                for k in ("geometry", "scheme", "receiver_interpolation", "dtype", "backend")
            }
        )
        geometry = spec.geometry
        freqs = np.asarray(config["freqs"], dtype=np.float64)
        chunk = int(config["chunk"])
    except (KeyError, TypeError, ValueError) as exc:
        raise DatasetError(f"{path}: corrupt dataset attributes ({exc})") from None
    eta, data = group["eta"], group["data"]
    n = geometry.n
    want_data = (eta.shape[0], freqs.size, geometry.n_receivers, geometry.n_sources)
    if eta.shape[1:] != (n, n) or data.shape != want_data:
        raise DatasetError(
            f"{path}: corrupt dataset, eta {eta.shape} / data {data.shape} do not match the "
            f"stored geometry and frequencies (expected (N, {n}, {n}) and {want_data})"
        )
    done = np.asarray(group["done"][:], dtype=bool)
    complete = np.repeat(done, chunk)[: eta.shape[0]]
    if require_complete and not complete.all():
        raise DatasetError(
            f"{path}: {int((~complete).sum())} of {complete.size} samples are not computed "
            "yet; re-run the generate command to complete the store"
        )
    eta, data = GuardedArray(eta, path, "eta"), GuardedArray(data, path, "data")
    target = GuardedArray(group["target"], path, "target") if "target" in group else eta
    return ScatterDataset(path, eta, data, target, geometry, spec, freqs, attrs, complete)


def _pml_summary(g: Geometry, freqs) -> str:
    if not g.pml_auto:
        return f"PML {g.pml_width} nodes (sigma_max {g.pml_strength:g})"
    per = ", ".join(
        f"{at.pml_width} nodes (sigma_max {at.pml_strength:.3g}) at f = {f:g}"
        for f, at in ((f, g.at(f)) for f in freqs)
    )
    return f"PML chosen per frequency: {per}"


def summary(path: str | os.PathLike) -> str:
    """Multi-line human summary of a store (``msinv scatter info``)."""
    ds = open_dataset(path)
    c, g, prov = ds.config, ds.geometry, ds.attrs.get("provenance", {})
    done = int(ds.complete.sum())
    nbytes = sum(a.nbytes for a in (ds.eta, ds.data))
    lines = [
        f"dataset      {ds.path}",
        f"family       {c['family']} {json.dumps(c.get('family_params', {}))}",
        f"samples      {done} of {len(ds)} complete ({100 * done / max(len(ds), 1):.1f}%)",
        f"grid         {g.n} x {g.n} nodes on {list(g.extent)}, {_pml_summary(g, ds.freqs)}",
        f"acquisition  {g.n_sources} sources, {g.n_receivers} receivers on R = "
        f"{g.receiver_radius:g} ({c.get('receiver_interpolation')})",
        f"frequencies  {', '.join(f'{f:g}' for f in ds.freqs)}; scheme {ds.spec.scheme} "
        f"({ds.spec.dtype}, {ds.spec.backend})",
        f"seed         {c.get('seed')}; chunk {c.get('chunk')} samples; target blur "
        f"{c.get('target_blur', 0):g} px",
        f"arrays       eta {ds.eta.shape} {ds.eta.dtype}, data {ds.data.shape} {ds.data.dtype} "
        f"({nbytes / 2**30:.3g} GiB uncompressed)",
        f"made by      msinv {prov.get('msinv_version', '?')} on {prov.get('created', '?')}",
    ]
    return "\n".join(lines)


def create_empty(path: str | os.PathLike, config: DatasetConfig, **extra_attrs: Any):
    """Create a new store for arrays computed elsewhere; fill it with :func:`write_chunk`.

    ``path`` must not exist or be an empty folder. Extra attributes are stored beside
    ``config`` (e.g. where an import came from). Returns the open zarr group.
    """
    path = Path(path)
    if path.exists() and (not path.is_dir() or any(path.iterdir())):
        raise DatasetError(f"{path}: exists and is not empty; choose a new output path")
    if path.is_dir():
        path.rmdir()
    _create(path, config)
    group = _open_group(path, "r+")
    if extra_attrs:
        group.attrs.update(extra_attrs)
    return group


def write_chunk(group, config: DatasetConfig, k: int, arrays: dict[str, np.ndarray]) -> None:
    """Write chunk ``k`` (``eta``, ``data`` and ``target`` if any) and mark it complete."""
    expected = {"eta", "data"} | ({"target"} if config.target_blur > 0 else set())
    if set(arrays) != expected:
        raise UserInputError(f"chunk arrays {sorted(arrays)}: expected {sorted(expected)}")
    _write_chunk(group, config, k, arrays)
