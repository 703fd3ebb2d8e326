"""Where an example writes its figure: under ``out/examples/`` unless ``--update-docs``.

The committed figures in ``docs/figures/`` are rewritten only when asked, so that running an
example never changes the documentation by accident.
"""

from __future__ import annotations

import argparse
from pathlib import Path

#: The committed figures.
DOCS_FIGURES = Path(__file__).resolve().parents[1] / "docs" / "figures"


def figure_parser(doc: str, name: str) -> argparse.ArgumentParser:
    """An argument parser with ``--out`` (default ``out/examples/NAME``) and ``--update-docs``."""
    parser = argparse.ArgumentParser(description=doc.split("\n")[0])
    parser.add_argument(
        "--out", type=Path, default=Path("out/examples") / name, help="figure to write"
    )
    parser.add_argument(
        "--update-docs",
        action="store_true",
        help=f"write the committed figure docs/figures/{name} instead of --out",
    )
    return parser


def figure_target(args: argparse.Namespace, name: str) -> Path:
    """The path chosen by :func:`figure_parser`'s options."""
    return DOCS_FIGURES / name if args.update_docs else args.out
