"""What the command line prints for each kind of failure (msinv.cli.errors).

Bad input and file-system errors: one ``error:`` line, exit code 2. Ctrl-C: one
``interrupted:`` line, exit code 130. A bug (any other exception, a plain ``ValueError``
included): its traceback, not a tidy line that would hide it.
"""

from __future__ import annotations

import warnings

import pytest
import typer
from typer.testing import CliRunner

from msinv.cli.errors import OneLineGroup, friendly
from msinv.cli.options import expand_lists
from msinv.core.errors import ConfigError, Interrupted, MsinvWarning, OutputError, UserInputError

runner = CliRunner()


def _app(exc: BaseException | None, warn: str | None = None) -> typer.Typer:
    app = typer.Typer(cls=OneLineGroup)

    @app.command()
    @friendly
    def run(count: int = typer.Option(1, min=1)) -> None:
        if warn:
            warnings.warn(MsinvWarning(warn), stacklevel=1)
        if exc is not None:
            raise exc

    @app.command()
    def other() -> None:  # a second command, so that `run` is a subcommand
        pass

    return app


@pytest.mark.parametrize(
    ("exc", "code", "line"),
    [
        (UserInputError("x.toml: [run] steps: expected an integer"), 2, "error: x.toml: [run]"),
        (ConfigError("c: bad\nfield"), 2, "error: c: bad field"),
        (OutputError("--out a: is a file"), 2, "error: --out a: is a file"),
        (FileNotFoundError(2, "No such file or directory", "in.npy"), 2, "error: in.npy: No such"),
        (PermissionError(13, "Permission denied", "/root/x"), 2, "error: /root/x: Permission"),
        (EOFError(), 2, "error: unexpected end of a file"),
        (Interrupted("kept 3 of 8 samples"), 130, "interrupted: kept 3 of 8 samples"),
        (KeyboardInterrupt(), 130, "interrupted: stopped before finishing"),
    ],
)
def test_user_errors_are_one_line(exc, code, line):
    result = runner.invoke(_app(exc), ["run"])
    assert result.exit_code == code
    assert result.stderr.strip().startswith(line) and "\n" not in result.stderr.strip()
    assert "Traceback" not in result.output


@pytest.mark.parametrize("exc", [ValueError("a bug"), RuntimeError("a bug"), KeyError("k")])
def test_bugs_keep_their_traceback(exc):
    result = runner.invoke(_app(exc), ["run"])
    assert result.exit_code == 1
    assert result.exception is exc  # not swallowed into a tidy line


def test_usage_errors_and_warnings_are_one_line():
    result = runner.invoke(_app(None), ["run", "--count", "0"])
    assert result.exit_code == 2
    err = result.stderr.strip()
    assert err.startswith("error: Invalid value for '--count'") and "\n" not in err
    assert "see 'root run --help'" in err or "--help" in err
    result = runner.invoke(_app(None, warn="3.0 points per\nwavelength"), ["run"])
    assert result.exit_code == 0
    assert result.stderr.strip() == "warning: 3.0 points per wavelength"


def test_lists_are_written_with_spaces():
    assert expand_lists(["x", "--freqs", "2.5", "5", "10", "--out", "o"]) == [
        "x",
        "--freqs",
        "2.5",
        "--freqs",
        "5",
        "--freqs",
        "10",
        "--out",
        "o",
    ]
    # commas are accepted, a non-number ends the list, an option right after is not eaten
    assert expand_lists(["--freqs", "1,2", "in", "out"]) == [
        "--freqs",
        "1",
        "--freqs",
        "2",
        "in",
        "out",
    ]
    assert expand_lists(["--freqs", "--out", "o"]) == ["--freqs", "--out", "o"]
    assert expand_lists(["--param", "count=5", "side=25"]) == [
        "--param",
        "count=5",
        "--param",
        "side=25",
    ]
