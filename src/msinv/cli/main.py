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
    "and GRAV3D-style gravity inversion.\n\n"
    "Bad input ends with one `error:` line (exit code 2); Ctrl-C or SIGTERM stops a long run "
    "after keeping what was finished (exit code 130). Lists are written `--freqs 2.5 5 10`.\n\n"
    "**Examples**\n\n"
    "```\n"
    "msinv demo\n"
    "msinv scatter simulate --family shepp_logan --out out/sim\n"
    "msinv learn --help\n"
    "msinv gravity example --out grav_example\n"
    "```",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode="markdown",
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _group_help(summary: str, *examples: str) -> str:
    lines = "\n".join(examples)
    return f"{summary}\n\n**Examples**\n\n```\n{lines}\n```"


for _name, _help in [
    (
        "scatter",
        _group_help(
            "Wideband inverse scattering: simulate, generate datasets, invert (Born, FWI).",
            "msinv scatter simulate --family shepp_logan --out out/sim",
            "msinv scatter generate --family squares --count 100 --workers 2 --out sq.zarr",
            "msinv scatter invert out/sim --method born --out out/born",
        ),
    ),
    (
        "learn",
        _group_help(
            "Back-Projection Diffusion: train, sample, evaluate, reconstruct.",
            "msinv learn train configs/learned-reduced-equinet-cnn.toml",
            "msinv learn sample runs/ecnn/checkpoint.pt data/test.zarr --count 4 --out post.npz",
        ),
    ),
    (
        "gravity",
        _group_help(
            "Gravity inversion in the GRAV3D tradition: forward, weights, sensitivity, invert.",
            "msinv gravity example --out grav_example",
            "msinv gravity invert grav_example/inv.inp",
        ),
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
    """Print the msinv version and the git commit it was built from.

    **Examples**

    ```
    msinv version
    ```
    """
    from msinv.core.provenance import code_version

    typer.echo(code_version())


if __name__ == "__main__":  # pragma: no cover
    app()
