"""Output paths: checked before any work starts, written atomically.

A command that computes for minutes must not fail at the end because its output cannot be
written, and a failed or interrupted run must not leave a half-written file under the final
name. So every command

1. checks its outputs first: :func:`check_output_file` for a file, :func:`check_output_dir` for a
   folder (an existing file where a folder is needed, a path inside a file, a folder where a file
   is needed, or no write permission raise :class:`~msinv.core.errors.OutputError` naming the
   option);
2. writes through :func:`atomic_path` / :func:`write_text`: the content goes to a temporary name
   beside the target and is renamed into place (``os.replace``, atomic on POSIX) only once
   complete; on an error the temporary file is removed and an earlier file at the target is
   untouched.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from msinv.core.errors import OutputError

__all__ = ["atomic_path", "check_output_dir", "check_output_file", "write_text"]


def _label(path: Path, option: str | None) -> str:
    return f"{option} {path}" if option else str(path)


def _check_parents(path: Path, option: str | None) -> None:
    """Every existing ancestor must be a folder, and the nearest one writable."""
    label = _label(path, option)
    for parent in path.absolute().parents:
        if parent.exists():
            if not parent.is_dir():
                raise OutputError(
                    f"{label}: {parent} is a file, so nothing can be written inside it"
                )
            if not os.access(parent, os.W_OK | os.X_OK):
                raise OutputError(f"{label}: no permission to write in {parent}")
            return


def check_output_file(path: str | os.PathLike, option: str | None = "--out") -> Path:
    """Check, before any work, that a file can be written at ``path``.

    An existing file is replaced (atomically, at the end); a folder at ``path``, a path inside a
    file, or a read-only location raise :class:`~msinv.core.errors.OutputError`.

    Parameters
    ----------
    path : path-like
        The file to write.
    option : str, optional, default '--out'
        The option or argument that named it, used in the message (``"--out"``).

    Returns
    -------
    pathlib.Path
    """
    path = Path(path)
    if path.is_dir():
        raise OutputError(
            f"{_label(path, option)}: is a folder; expected the name of a file to write"
        )
    _check_parents(path, option)
    if path.exists() and not os.access(path, os.W_OK):
        raise OutputError(f"{_label(path, option)}: the existing file is read-only")
    return path


def check_output_dir(path: str | os.PathLike, option: str | None = "--out") -> Path:
    """Check, before any work, that ``path`` is or can become a writable folder.

    Parameters
    ----------
    path : path-like
        The output folder (created later by the caller, or here with ``mkdir``).
    option : str, optional, default '--out'
        The option or argument that named it, used in the message.

    Returns
    -------
    pathlib.Path
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise OutputError(
            f"{_label(path, option)}: exists and is a file; expected a folder (choose another "
            "name or move the file)"
        )
    if path.is_dir():
        if not os.access(path, os.W_OK | os.X_OK):
            raise OutputError(f"{_label(path, option)}: no permission to write in this folder")
        return path
    _check_parents(path, option)
    return path


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it to ``path`` when the block succeeds.

    The temporary name keeps the suffix of ``path`` (writers such as ``numpy.savez`` look at
    it) and starts with a dot. On any exception (``KeyboardInterrupt`` included) it is removed
    and ``path`` is left as it was.

    Examples
    --------
    >>> with atomic_path("out/data.npy") as tmp:  # doctest: +SKIP
    ...     numpy.save(tmp, data)
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(
        prefix=f".{path.name}.", suffix=f".tmp{path.suffix}", dir=path.parent
    )
    os.close(fd)
    tmp = Path(name)
    mask = os.umask(0)
    os.umask(mask)
    os.chmod(tmp, 0o666 & ~mask)  # mkstemp's 0600 -> the permissions of a plain open()
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` to ``path`` atomically (see :func:`atomic_path`); returns the path."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)
    return Path(path)
