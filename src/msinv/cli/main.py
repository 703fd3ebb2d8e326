"""Entry point of the ``msinv`` command.

Each engine contributes a typer sub-app from its own module (``msinv.cli.scatter``,
``msinv.cli.learn``, ``msinv.cli.gravity``); ``msinv demo`` runs the main job.
"""

from __future__ import annotations

from importlib import import_module

import typer

from msinv.cli.errors import OneLineGroup

app = typer.Typer(
    cls=OneLineGroup,
    name="msinv",
    help="msinv: multi-scale inversion -- wideband inverse scattering, Back-Projection Diffusion "
    "and GRAV3D-style gravity inversion.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode="markdown",
    context_settings={"help_option_names": ["-h", "--help"]},
)

for _name, _help in [
    ("scatter", "Wideband inverse scattering: simulate, generate datasets, invert (Born, FWI)."),
    ("learn", "Back-Projection Diffusion: train, sample, evaluate, reconstruct."),
    (
        "gravity",
        "Gravity inversion in the GRAV3D tradition: forward, weights, sensitivity, invert.",
    ),
]:
    try:
        _module = import_module(f"msinv.cli.{_name}")
    except ModuleNotFoundError as _exc:  # the engine's CLI is not written yet
        if _exc.name != f"msinv.cli.{_name}":
            raise
        continue
    app.add_typer(_module.app, name=_name, help=_help)

from msinv.cli.demo import demo  # noqa: E402

app.command("demo")(demo)


@app.command("version")
def version() -> None:
    """Print the msinv version and the git commit it was built from."""
    from msinv.core.provenance import code_version

    typer.echo(code_version())


if __name__ == "__main__":  # pragma: no cover
    app()
