"""Reading NumPy input files safely, with one-line errors that name the file and the problem.

``numpy.load`` answers a text file, an empty file or a truncated one with messages about
pickles (and advises ``allow_pickle=True``, which would execute code from the file: never do
it). :func:`read_npy` and :func:`read_npz` never unpickle and say what is wrong instead;
:func:`require_finite` refuses NaN and inf in arrays read from files.
"""

from __future__ import annotations

import contextlib
import os
import zipfile
import zlib
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from msinv.core.errors import FileFormatError, UserInputError

__all__ = ["npz_errors", "open_npz", "read_npy", "read_npz", "require_finite"]

_NPY_MAGIC = b"\x93NUMPY"
_ZIP_MAGIC = b"PK\x03\x04"


def _label(path: Path, option: str | None) -> str:
    return f"{option} {path}" if option else str(path)


def _head(path: Path, option: str | None, kind: str) -> bytes:
    if path.is_dir():
        raise FileFormatError(f"{_label(path, option)}: is a folder; expected a {kind} file")
    with open(path, "rb") as f:  # a missing file raises FileNotFoundError (an OSError)
        head = f.read(8)
    if not head:
        raise FileFormatError(f"{_label(path, option)}: the file is empty; expected a {kind} file")
    return head


def read_npy(path: str | os.PathLike, option: str | None = None) -> np.ndarray:
    """Read a ``.npy`` array (written by ``numpy.save``) without ever unpickling.

    Parameters
    ----------
    path : path-like
        The file.
    option : str, optional
        The option or argument that named it (``"--eta"``), used in messages.

    Returns
    -------
    numpy.ndarray

    Raises
    ------
    FileFormatError
        An empty, truncated, text or other non-.npy file, or an array of Python objects.
    """
    path = Path(path)
    label = _label(path, option)
    head = _head(path, option, ".npy")
    if not head.startswith(_NPY_MAGIC):
        raise FileFormatError(
            f"{label}: not a .npy file (it does not start with the NumPy header); expected an "
            "array saved by numpy.save"
        )
    with npz_errors(path, option, kind=".npy file"):
        return np.load(path, allow_pickle=False)


def open_npz(
    path: str | os.PathLike,
    option: str | None = None,
    what: str = "an .npz archive (a file saved by numpy.savez)",
):
    """Open an ``.npz`` archive lazily (``numpy.load``'s ``NpzFile``), never unpickling.

    Only the header is checked here; use it as a context manager and read members inside
    :func:`npz_errors` so that a truncated member is reported in one line too. ``what`` names
    the expected file in the message (``"{path}: not {what}"``).

    Raises
    ------
    FileFormatError
        An empty, text or non-zip file, or a zip that cannot be opened.
    """
    path = Path(path)
    label = _label(path, option)
    head = _head(path, option, ".npz")
    if not head.startswith(_ZIP_MAGIC):
        raise FileFormatError(f"{label}: not {what}")
    if not zipfile.is_zipfile(path):  # checked first: numpy would leak the open file
        raise FileFormatError(f"{label}: truncated or damaged .npz archive (no zip directory)")
    with npz_errors(path, option):
        return np.load(path, allow_pickle=False)


@contextlib.contextmanager
def npz_errors(
    path: str | os.PathLike, option: str | None = None, kind: str = ".npz archive"
) -> Iterator[None]:
    """Turn the errors of reading a damaged ``.npz`` (or ``.npy``: ``kind``) into one-line
    :class:`FileFormatError`; a :class:`UserInputError` raised inside (a check of the content
    read) passes unchanged: it already names the problem."""
    label = _label(Path(path), option)
    try:
        yield
    except UserInputError:
        raise
    except ValueError as exc:
        if "Object arrays" in str(exc):
            raise FileFormatError(
                f"{label}: holds Python objects, which are not loaded (unsafe); expected "
                "numeric arrays"
            ) from None
        raise FileFormatError(f"{label}: truncated or damaged {kind} ({exc})") from None
    except (zipfile.BadZipFile, EOFError, zlib.error) as exc:
        raise FileFormatError(f"{label}: truncated or damaged {kind} ({exc})") from None
    except KeyError as exc:  # numpy's message: "NAME is not a file in the archive"
        name = str(exc.args[0] if exc.args else exc).removesuffix(" is not a file in the archive")
        raise FileFormatError(f"{label}: the archive has no array {name!r}") from None


def read_npz(path: str | os.PathLike, option: str | None = None) -> dict[str, np.ndarray]:
    """Read every array of an ``.npz`` archive (``numpy.savez``) into a dict, never unpickling.

    Parameters
    ----------
    path : path-like
        The file.
    option : str, optional
        The option or argument that named it, used in messages.

    Returns
    -------
    dict of str to numpy.ndarray

    Raises
    ------
    FileFormatError
        An empty, truncated, text or non-zip file, or a member holding Python objects.
    """
    with open_npz(path, option) as z, npz_errors(path, option):
        return {name: z[name] for name in z.files}


def require_finite(array: np.ndarray, what: str) -> np.ndarray:
    """Return ``array`` if every value is finite, else raise naming ``what`` and the count.

    Parameters
    ----------
    array : numpy.ndarray
        Numeric (real or complex) values.
    what : str
        What they are, for the message (``"data.h5: /scatter_real_freq_1"``).
    """
    bad = ~np.isfinite(array)
    if bad.any():
        raise FileFormatError(
            f"{what}: {int(bad.sum())} of {bad.size} values are NaN or inf; expected finite numbers"
        )
    return array
