"""Error types of msinv: what the user got wrong, told in one line.

Every engine validates its inputs (files, config fields, options, arrays) and raises one of these
with a message that names the problem (file, line, section and field, or option) and what was
expected. The command line (:func:`msinv.cli.errors.friendly`) prints exactly these, and
file-system errors, as one line and exits with code 2; any other exception is a bug in msinv
and keeps its traceback.

=======================  =============================================================
type                     raised for
=======================  =============================================================
:class:`UserInputError`  any bad input (base class; a ``ValueError``)
:class:`FileFormatError` a file whose content is not what was expected (corrupt,
                         truncated, foreign, wrong shape or type, NaN)
:class:`ConfigError`     a field of a configuration file or a command option
:class:`OutputError`     an output path that cannot be written as asked
:class:`Interrupted`     a run stopped by Ctrl-C or SIGTERM: says what was kept and how
                         to resume (a ``KeyboardInterrupt``)
:class:`MsinvWarning`    a warning: input that is allowed but probably not what was meant
                         (too few points per wavelength), or work redone (a damaged chunk);
                         the command line prints it as one ``warning:`` line
=======================  =============================================================
"""

from __future__ import annotations

__all__ = [
    "ConfigError",
    "FileFormatError",
    "Interrupted",
    "MsinvWarning",
    "OutputError",
    "UserInputError",
]


class UserInputError(ValueError):
    """Bad input from the user: a file, a field or an option that is not what was expected.

    The message names the problem and what was expected; the command line prints it on one
    line and exits with code 2, without a traceback. It is a ``ValueError``, so library callers
    that catch ``ValueError`` keep working.
    """


class FileFormatError(UserInputError):
    """A file whose content is not what was expected: corrupt, truncated, foreign, wrong shape,
    wrong type, or holding non-finite values where numbers are needed."""


class ConfigError(UserInputError):
    """A configuration field or command option with a wrong name, type or value."""


class OutputError(UserInputError):
    """An output path that cannot be written as asked (a file where a folder is needed, a folder
    inside a file, no permission); raised before any computation starts."""


class Interrupted(KeyboardInterrupt):
    """A run stopped by the user (Ctrl-C, SIGTERM) after keeping what was finished.

    The message says what was kept and how to resume; the command line prints it and exits with
    code 130.
    """

    def __init__(self, message: str = "") -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class MsinvWarning(UserWarning):
    """Input that is allowed but probably not meant, or work that had to be redone.

    The message names the input and the exact figure (e.g. points per wavelength); the command
    line prints it as one ``warning:`` line.
    """
