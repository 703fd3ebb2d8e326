"""One syntax for lists on the command line: ``--freqs 2.5 5 10``.

Click has no options with a variable number of values, so the ``msinv`` entry point rewrites
the command line before parsing: the values that follow a list option are given to it one by
one, ``--freqs 2.5 5 10`` becoming ``--freqs 2.5 --freqs 5 --freqs 10``, and commas split
values (``--freqs 2.5,5,10`` is accepted too). A value belongs to the list while it looks like
one of its items: a number for ``--freqs``, an index or a range for ``--index``, ``KEY=VALUE``
for ``--param``, ``LABEL=PATH`` for ``--model`` and ``--data``; the first other word ends the
list (so positional arguments may follow).

=============  ============================  ==============================================
option         items                         commands
=============  ============================  ==============================================
``--freqs``    numbers                       scatter simulate, generate, import-hdf5,
                                             invert; demo
``--index``    ``3`` or ranges ``0:8``       scatter invert
``--param``    ``KEY=VALUE``                 scatter generate
``--model``    ``LABEL=CHECKPOINT``          learn evaluate
``--data``     ``LABEL=STORE``               learn evaluate
=============  ============================  ==============================================
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

_NUMBER = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$|^[+-]?(inf|nan)$", re.I)
_INDEX = re.compile(r"^-?\d*(:-?\d*)?$")


def _is_pair(token: str) -> bool:
    return "=" in token and not token.startswith("-")


#: List options: a test of whether a word is one of its items, and whether commas split items.
LIST_OPTIONS: dict[str, tuple[Callable[[str], bool], bool]] = {
    "--freqs": (lambda t: all(_NUMBER.match(p) for p in t.split(",") if p), True),
    "--index": (lambda t: all(_INDEX.match(p) for p in t.split(",") if p), True),
    "--param": (_is_pair, False),
    "--model": (_is_pair, False),
    "--data": (_is_pair, False),
}


def expand_lists(args: Sequence[str]) -> list[str]:
    """Rewrite ``--opt a b c`` into ``--opt a --opt b --opt c`` for the :data:`LIST_OPTIONS`.

    Parameters
    ----------
    args : sequence of str
        The command line after the program name.

    Returns
    -------
    list of str
        The same words, with every item of a list option preceded by the option's name.
        Everything after ``--`` is left as it is.

    Examples
    --------
    >>> expand_lists(["scatter", "simulate", "--freqs", "2.5", "5,10", "--out", "x"])
    ['scatter', 'simulate', '--freqs', '2.5', '--freqs', '5', '--freqs', '10', '--out', 'x']
    """
    out: list[str] = []
    current: str | None = None
    first = False  # the word right after the option is its value whatever it looks like
    args = list(args)
    for i, token in enumerate(args):
        if token == "--":
            out += args[i:]
            break
        name, eq, value = token.partition("=")
        if token.startswith("--") and name in LIST_OPTIONS:
            current, first = name, not eq
            if eq:
                items = _items(name, value)
                out.append(f"{name}={items[0]}")
                for item in items[1:]:
                    out += [name, item]
            else:
                out.append(name)
            continue
        if current is not None:
            looks_like, _ = LIST_OPTIONS[current]
            is_option = token.startswith("-") and not looks_like(token)
            if (first and not is_option) or looks_like(token):
                items = _items(current, token)
                out += items[:1] if first else [current, items[0]]
                for item in items[1:]:
                    out += [current, item]
                first = False
                continue
        current = None
        out.append(token)
    return out


def _items(option: str, token: str) -> list[str]:
    """``token`` split at commas for the options that take comma lists, else ``[token]``."""
    _, commas = LIST_OPTIONS[option]
    if not commas:
        return [token]
    parts = [p for p in token.split(",") if p.strip()]
    return parts or [token]
