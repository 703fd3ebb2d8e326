"""Provenance: which code and configuration produced an artefact."""

from __future__ import annotations

import datetime as _dt
import platform
import subprocess
from functools import cache
from pathlib import Path
from typing import Any


@cache
def code_version() -> str:
    """Package version plus the git commit of the source tree when there is one.

    Returns a string such as ``"0.1.0+g1a2b3c4"`` (``".dirty"`` appended when tracked files
    have uncommitted changes: ``"0.1.0+g1a2b3c4.dirty"``, a PEP 440 local version), or the bare
    package version outside a git checkout.
    """
    from msinv import __version__

    here = Path(__file__).resolve().parent

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], cwd=here, capture_output=True, text=True, timeout=5, check=True
        ).stdout.strip()

    try:
        commit = git("rev-parse", "--short", "HEAD")
        dirty = git("status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.SubprocessError):
        return __version__
    return f"{__version__}+g{commit}" + (".dirty" if dirty else "")


def provenance(config: dict[str, Any] | None = None) -> dict[str, Any]:
    """A JSON-serialisable record to store next to an artefact.

    Parameters
    ----------
    config : dict, optional
        The resolved configuration that made the artefact.
    """
    return {
        "msinv_version": code_version(),
        "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "machine": f"{platform.machine()} {platform.node()}",
        "config": dict(config or {}),
    }
