"""Every ``--help`` reads like a manual: an Examples section whose command lines parse, and
Markdown that keeps the text (no ``<out>`` or ``_x_`` eaten by the renderer)."""

from __future__ import annotations

import re
import shlex

import pytest
import typer.main
from typer.testing import CliRunner

from msinv.cli.main import app
from msinv.cli.options import expand_lists

runner = CliRunner()
ROOT = typer.main.get_command(app)


def _commands(group=ROOT, path=()):
    """``(path, command)`` of every group and command under the ``msinv`` app."""
    yield path, group
    for name, cmd in getattr(group, "commands", {}).items():
        yield from _commands(cmd, (*path, name))


COMMANDS = list(_commands())


def _help(path) -> str:
    result = runner.invoke(app, [*path, "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    return result.output


def _examples(text: str) -> list[str]:
    """The example command lines of a help page (the lines that start with ``msinv``)."""
    after = text.split("Examples", 1)[1]
    return [ln.strip() for ln in after.splitlines() if ln.strip().startswith("msinv ")]


@pytest.mark.parametrize("path", [p for p, _ in COMMANDS], ids=lambda p: " ".join(p) or "msinv")
def test_help_has_examples_that_parse(path):
    text = _help(path)
    assert "Examples" in text, f"msinv {' '.join(path)} --help has no Examples section"
    examples = _examples(text)
    assert examples, f"msinv {' '.join(path)} --help shows no example command line"
    for line in examples:
        words = expand_lists(shlex.split(line)[1:])
        if "--help" in words:
            continue
        cmd, ctx_args = ROOT, words
        parent = None
        while hasattr(cmd, "commands") and ctx_args:
            sub = cmd.commands.get(ctx_args[0])
            assert sub is not None, f"example {line!r}: unknown command {ctx_args[0]!r}"
            parent = cmd.make_context(
                cmd.name or "msinv", [], parent=parent, resilient_parsing=True
            )
            cmd, ctx_args = sub, ctx_args[1:]
        # parse the options and arguments as the command would (nothing is run)
        cmd.make_context(cmd.name, list(ctx_args), parent=parent)


def test_markdown_keeps_the_text():
    assert "OUT/checkpoint.pt" in _help(["learn", "train"])
    text = _help(["scatter", "export-hdf5"])
    assert "/scatter_{real,imag}_freq_{1,2,...}" in text
    assert re.search(r"--freqs 2\.5 5 10", _help(["scatter", "simulate"]))
