"""``msinv scatter ...``: commands of the scattering engine.

The commands live in two modules, each registering itself on :data:`app`:
:mod:`msinv.cli.scatter_data` (simulate, generate, info, export-hdf5, import-hdf5) and
:mod:`msinv.cli.scatter_invert` (invert).
"""

from importlib import import_module

import typer

from msinv.cli.errors import OneLineGroup

app = typer.Typer(
    cls=OneLineGroup,
    no_args_is_help=True,
    context_settings={"help_option_names": ["-h", "--help"]},
)

for _name in ("scatter_data", "scatter_invert"):
    try:
        import_module(f"msinv.cli.{_name}").register(app)
    except ModuleNotFoundError as _exc:  # not written yet
        if _exc.name != f"msinv.cli.{_name}":
            raise
