"""The mutation harness's operators (tools/mutation.py): what each kind plants, and stable ids."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

TOOL = Path(__file__).resolve().parents[2] / "tools" / "mutation.py"

SOURCE = '''\
"""Docstring, never mutated."""
import numpy as np


def f(x, y):
    """Docstring."""
    a = np.max(np.abs(x), axis=0)
    b = np.conj(y).T
    return np.dot(x, y) + a - b
'''


@pytest.fixture
def mutation(tmp_path, monkeypatch):
    spec = importlib.util.spec_from_file_location("msinv_mutation_tool", TOOL)
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, module)
    spec.loader.exec_module(module)
    monkeypatch.setattr(module, "ROOT", tmp_path)
    path = tmp_path / "m.py"
    path.write_text(SOURCE)
    return module, path


def _changes(module, path, kinds):
    return {(m.kind, m.original, m.replacement) for m in module.mutants_of(path, kinds)}


def test_extended_kinds_plant_the_bugs_a_person_would(mutation):
    module, path = mutation
    got = _changes(module, path, module.EXTENDED_KINDS)
    assert ("call", "np.max(np.abs(x), axis=0)", "(np.min(np.abs(x), axis=0))") in got
    assert ("unwrap", "np.abs(x)", "(x)") in got
    assert ("unwrap", "np.conj(y)", "(y)") in got
    assert ("unwrap", "np.conj(y).T", "(np.conj(y))") in got
    assert ("kwarg", "np.max(np.abs(x), axis=0)", "(np.max(np.abs(x)))") in got
    assert ("args", "np.dot(x, y)", "(np.dot(y, x))") in got
    assert {k for k, _, _ in got} == set(module.EXTENDED_KINDS)


def test_classic_kinds_leave_calls_alone_and_ids_do_not_depend_on_the_kinds_asked(mutation):
    module, path = mutation
    classic = module.mutants_of(path, module.CLASSIC_KINDS)
    every = module.mutants_of(path)
    assert {m.kind for m in classic} <= set(module.CLASSIC_KINDS)
    assert ("binop", "np.dot(x, y) + a", "(np.dot(x, y) - a)") in {
        (m.kind, m.original, m.replacement) for m in classic
    }
    by_id = {m.id: m for m in every}
    assert all(by_id[m.id] == m for m in classic)
    assert len(by_id) == len(every)  # ids are unique
    for m in every:  # every mutant compiles and changes the text; docstrings untouched
        text = m.apply(SOURCE)
        assert text != SOURCE and '"""Docstring."""' in text
        compile(text, "m.py", "exec")
