"""The memory limit of a command, and the check made before any large allocation.

``--memory`` (GiB; in Python the ``memory`` option) means the same everywhere: the most memory
a command's large arrays may take, by default :data:`DEFAULT_FRACTION` of the memory the
machine has available when the command starts. Every command that allocates in proportion to
its input (a dense sensitivity, a forward model at many stations, an equivalent-source layer)
estimates what it needs first and compares that with the limit. Work that can be split is
split to fit in it (``gravity sensitivity`` builds and compresses G in blocks of stations,
:class:`msinv.gravity.equivalent.EquivalentLayer` fits in windows); work that cannot is
refused up front with one line that names the request, the estimate and the limit.
"""

from __future__ import annotations

import os

from msinv.core.errors import UserInputError

#: Share of the available memory a command may use when no ``--memory`` limit is given.
DEFAULT_FRACTION = 0.5

GIB = 2**30


class MemoryLimitError(UserInputError):
    """A request whose memory estimate exceeds the limit (the CLI prints it as one line)."""


#: The kernel's memory report (Linux), in kB (1024 bytes).
MEMINFO = "/proc/meminfo"


def available_bytes() -> int:
    """Memory available to a new allocation now: ``MemAvailable`` of ``/proc/meminfo``.

    Falls back to the physical memory (``os.sysconf``) where ``/proc/meminfo`` is missing.
    """
    try:
        with open(MEMINFO) as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))


def memory_limit(gib: float | None = None) -> int:
    """The limit in bytes: ``gib`` GiB when given (> 0), else a share of the available memory.

    Raises
    ------
    UserInputError
        When ``gib`` is not > 0 (one line naming ``--memory``).
    """
    if gib is None:
        return int(DEFAULT_FRACTION * available_bytes())
    if not gib > 0:
        raise UserInputError(f"--memory: expected a limit > 0 GiB, got {gib}")
    return int(gib * GIB)


def check_memory(need: int, limit: int, what: str, hint: str = "") -> None:
    """Refuse a request that needs more than ``limit`` bytes.

    Parameters
    ----------
    need : int
        Estimated bytes of the request.
    limit : int
        Allowed bytes (:func:`memory_limit`).
    what : str
        The request, e.g. ``"dense G of 200000 data x 219488 cells (float32)"``.
    hint : str, optional, default ''
        What the user can do instead (appended to the message).

    Raises
    ------
    MemoryLimitError
        ``"<what> needs X GiB, more than the limit of Y GiB[; hint]"``.
    """
    if need > limit:
        tail = f"; {hint}" if hint else ""
        raise MemoryLimitError(
            f"{what} needs {need / GIB:.2f} GiB, more than the memory limit of "
            f"{limit / GIB:.2f} GiB (--memory){tail}"
        )
