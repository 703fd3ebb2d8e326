"""Turning user errors into one clear line and a meaningful exit code."""

from __future__ import annotations

import functools
from collections.abc import Callable

import typer


class UserInputError(ValueError):
    """Bad input from the user: a file, a field or an option that is not what was expected.

    The message must name the problem and what was expected; the CLI prints it on one line and
    exits with code 2, without a traceback.
    """


def friendly(func: Callable) -> Callable:
    """Decorate a CLI command so that :class:`UserInputError` and ``ValueError`` exit cleanly."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except (UserInputError, ValueError, FileNotFoundError, PermissionError) as exc:
            typer.secho(f"error: {exc}", err=True, fg=typer.colors.RED)
            raise typer.Exit(code=2) from None

    return wrapper
