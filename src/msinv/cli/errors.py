"""How the command line reports problems: one line, a meaningful exit code, no traceback.

The error types live in :mod:`msinv.core.errors` (the engines raise them); this module only
formats them. On stderr:

- bad input (:class:`~msinv.core.errors.UserInputError` and its subclasses) and file-system
  errors (``OSError``: a missing file, no permission, a full disk): ``error: <message>``, exit
  code 2;
- a wrong option or argument (click's usage errors): ``error: <message> (see '<command>
  --help')``, exit code 2;
- a warning: ``warning: <message>`` (the command goes on);
- Ctrl-C or SIGTERM: ``interrupted: <what was kept, how to resume>``, exit code 130;
- anything else is a bug in msinv: the full traceback, exit code 1.
"""

from __future__ import annotations

import functools
import sys
import warnings
from collections.abc import Callable

import typer
from typer.core import TyperGroup

from msinv.cli.options import expand_lists
from msinv.core.errors import Interrupted, MsinvWarning, UserInputError
from msinv.core.interrupts import sigterm_as_interrupt

# click's exceptions, from the click that typer uses (recent typer versions vendor it)
_click = sys.modules[typer.BadParameter.__module__]

#: Exit code of bad input (the Unix convention for usage errors).
EXIT_INPUT = 2
#: Exit code of a run stopped by Ctrl-C or SIGTERM (128 + SIGINT).
EXIT_INTERRUPTED = 130


def one_line(text: str) -> str:
    """``text`` with its line breaks and runs of spaces collapsed into single spaces."""
    return " ".join(str(text).split())


def _os_message(exc: OSError) -> str:
    reason = exc.strerror or str(exc)
    if exc.filename is not None:
        return f"{exc.filename}: {reason}"
    return reason


def _fail(message: str, code: int, prefix: str = "error") -> None:
    _echo_error(f"{prefix}: {one_line(message)}")
    raise typer.Exit(code=code)


def friendly(func: Callable) -> Callable:
    """Decorate a CLI command so that bad input, file-system errors and interrupts end cleanly.

    :class:`~msinv.core.errors.UserInputError` (and subclasses) and ``OSError`` print one
    ``error:`` line and exit with code 2; ``KeyboardInterrupt`` (Ctrl-C, or SIGTERM turned
    into one by :func:`msinv.core.interrupts.sigterm_as_interrupt`) prints what the command
    kept and exits with code 130. Every other exception is a bug and keeps its traceback.
    """

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except UserInputError as exc:
            _fail(str(exc), EXIT_INPUT)
        except OSError as exc:
            _fail(_os_message(exc), EXIT_INPUT)
        except EOFError:
            _fail("unexpected end of a file (an empty or truncated input?)", EXIT_INPUT)
        except Interrupted as exc:
            _fail(str(exc) or "stopped", EXIT_INTERRUPTED, prefix="interrupted")
        except KeyboardInterrupt:
            _fail(
                "stopped before finishing; results already written are complete, the others "
                "were not written",
                EXIT_INTERRUPTED,
                "interrupted",
            )

    return wrapper


class OneLineGroup(TyperGroup):
    """Top-level click group: lists as ``--freqs 2.5 5 10`` (:mod:`msinv.cli.options`), usage
    errors on one line (no box, no separate usage text), warnings on one line, and SIGTERM
    handled like Ctrl-C (so temporary files are removed and pools stopped).

    ``error: Invalid value for '--count': ... (see 'msinv scatter generate --help')``, exit
    code 2; ``Aborted`` (an end of input) and interrupts are reported the same way.
    """

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        args = expand_lists(sys.argv[1:] if args is None else args)
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode, **extra)
        try:
            with warnings.catch_warnings(), sigterm_as_interrupt():
                warnings.simplefilter("always", MsinvWarning)
                warnings.showwarning = _show_warning
                rv = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except _click.NoArgsIsHelpError as exc:  # no arguments: the help, as before
            exc.show()
            sys.exit(exc.exit_code)
        except _click.UsageError as exc:
            hint = f" (see '{exc.ctx.command_path} --help')" if exc.ctx is not None else ""
            _echo_error(f"error: {one_line(exc.format_message())}{hint}")
            sys.exit(exc.exit_code)
        except _click.ClickException as exc:
            _echo_error(f"error: {one_line(exc.format_message())}")
            sys.exit(exc.exit_code)
        except typer.Abort as exc:
            if isinstance(exc.__cause__, EOFError):
                _echo_error("error: unexpected end of input (an empty or truncated file?)")
                sys.exit(EXIT_INPUT)
            _echo_error("interrupted: stopped by the user")
            sys.exit(EXIT_INTERRUPTED)
        # non-standalone click returns the code of an explicit exit, else the command's value
        sys.exit(rv if isinstance(rv, int) else 0)


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """Warnings as one ``warning:`` line (msinv's own without their category)."""
    text = one_line(str(message))
    if not issubclass(category, MsinvWarning):
        text = f"{category.__name__}: {text}"
    typer.secho(f"warning: {text}", err=True, fg=typer.colors.YELLOW)


def _echo_error(line: str) -> None:
    typer.secho(line, err=True, fg=typer.colors.RED)
