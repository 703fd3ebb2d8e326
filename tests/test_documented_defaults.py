"""Every default a docstring states (numpydoc ``name : type, default VALUE``) is the default the
code uses: a default changed on one side only is a value read with another meaning."""

from __future__ import annotations

import ast
import dataclasses
import importlib
import inspect
import pkgutil
import re

import pytest

import msinv

#: ``name : type, default VALUE`` in a Parameters or Attributes section (one name per line).
HEADER = re.compile(r"^\s*(\w+) : .*?,\s*default\s+(.+?)\s*$")
SKIP = ("msinv.cli",)  # the CLI documents its options through typer, not docstrings


def _modules():
    for info in pkgutil.walk_packages(msinv.__path__, "msinv."):
        if not info.name.startswith(SKIP):
            yield info.name


def _documented(obj) -> dict[str, str]:
    doc = inspect.getdoc(obj) or ""
    return {m.group(1): m.group(2) for m in map(HEADER.match, doc.splitlines()) if m}


def _defaults(obj) -> dict[str, object]:
    if dataclasses.is_dataclass(obj):
        return {
            f.name: f.default if f.default is not dataclasses.MISSING else f.default_factory()
            for f in dataclasses.fields(obj)
            if f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING
        }
    try:
        sig = inspect.signature(obj)
    except (TypeError, ValueError):
        return {}
    return {k: p.default for k, p in sig.parameters.items() if p.default is not p.empty}


def _value(text: str, namespace: dict):
    text = text.strip("`")
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return eval(text, dict(namespace))  # a module constant, e.g. DEFAULT_SCHEME


def _owners(module):
    for name, obj in vars(module).items():
        if getattr(obj, "__module__", None) != module.__name__ or name.startswith("__"):
            continue
        if inspect.isfunction(obj):
            yield f"{module.__name__}.{name}", obj
        elif inspect.isclass(obj):
            yield f"{module.__name__}.{name}", obj
            for mname, meth in vars(obj).items():
                if inspect.isfunction(meth) and not mname.startswith("__"):
                    yield f"{module.__name__}.{name}.{mname}", meth


def _claims():
    out = []
    for modname in _modules():
        module = importlib.import_module(modname)
        for where, obj in _owners(module):
            for name, text in _documented(obj).items():
                out.append((where, obj, name, text, module))
    return out


CLAIMS = _claims()


def test_docstrings_state_the_defaults_that_matter():
    """The check below is not empty: the numerical defaults of the solvers, regularisers,
    inversion and training configurations are documented in this form."""
    assert len(CLAIMS) >= 40, [c[0] for c in CLAIMS]


@pytest.mark.parametrize(
    "where, obj, name, text, module", CLAIMS, ids=[f"{c[0]}:{c[2]}" for c in CLAIMS]
)
def test_a_documented_default_is_the_code_default(where, obj, name, text, module):
    defaults = _defaults(obj)
    assert name in defaults, f"{where}: documents a default for {name!r}, which has none"
    expected = _value(text, vars(module))
    assert defaults[name] == expected and type(defaults[name]) is type(expected), (
        f"{where}: {name} documented as default {text}, the code has {defaults[name]!r}"
    )
