"""Checking configuration values against their declared types, strictly.

TOML and JSON give ``true`` where a number was meant, ``2.5`` where a count was meant; Python
would accept ``True`` as the integer 1 and train one step. :func:`expected_type` says what a
value should have been (or None when it fits), for the annotations used in msinv's configs:
``int``, ``float``, ``bool``, ``str``, ``X | None``, ``tuple[int, int]``, ``list[float]``,
``dict[str, Any]``, ``Any``.
"""

from __future__ import annotations

import math
import types
import typing
from typing import Any

__all__ = ["expected_type"]

_NAMES = {int: "an integer", float: "a number", bool: "true or false", str: "a string"}


def _fits(value: Any, hint: Any) -> bool:
    if hint is Any:
        return True
    if hint is type(None):
        return value is None
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return (
            isinstance(value, int | float)
            and not isinstance(value, bool)
            and math.isfinite(float(value))
        )
    if hint is str:
        return isinstance(value, str)
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return any(_fits(value, a) for a in args)
    if origin is tuple:
        if not isinstance(value, list | tuple):
            return False
        if len(args) == 2 and args[1] is Ellipsis:
            return all(_fits(v, args[0]) for v in value)
        return len(value) == len(args) and all(
            _fits(v, a) for v, a in zip(value, args, strict=True)
        )
    if origin is list:
        return isinstance(value, list | tuple) and all(_fits(v, args[0]) for v in value)
    if origin is dict:
        return isinstance(value, dict)
    if isinstance(hint, type):
        return isinstance(value, hint)
    return True  # an annotation this checker does not know: not refused


def _describe(hint: Any) -> str:
    if hint in _NAMES:
        return _NAMES[hint]
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_describe(a) for a in args if a is not type(None))
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return f"a list of {_describe(args[0]).removeprefix('a ').removeprefix('an ')}s"
        return f"a list of {len(args)} values ({', '.join(_describe(a) for a in args)})"
    if origin is list:
        return f"a list ({_describe(args[0])} each)"
    if origin is dict:
        return "a table"
    return getattr(hint, "__name__", str(hint))


def expected_type(value: Any, hint: Any) -> str | None:
    """None if ``value`` fits the annotation ``hint``, else what was expected, in words.

    Booleans are not integers or numbers here, and numbers must be finite. ``Any`` takes every
    value, a class its instances (and is named by its ``__name__``); an annotation this
    checker does not know (e.g. ``Literal``) takes every value too, so the field's own check
    must refuse what it cannot use.

    Examples
    --------
    >>> expected_type(True, int)
    'an integer'
    >>> expected_type(3, float) is None
    True
    """
    return None if _fits(value, hint) else _describe(hint)
