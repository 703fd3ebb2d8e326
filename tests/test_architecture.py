"""The import rules of docs/architecture.md, checked two ways.

Statically, on the source (every ``import``, including those inside functions):

- no package but ``msinv.cli`` imports ``msinv.cli``, typer or click (engines know no CLI);
- ``msinv.core`` imports no other msinv package (the core knows no engine);
- ``msinv.core``, ``msinv.scattering``, ``msinv.gravity`` and ``msinv.metrics`` import no
  torch (torch physics lives in ``msinv.accel``, the learned engine in ``msinv.learned``).

At run time, in a fresh interpreter where the forbidden modules cannot be imported: every
module of those packages imports with torch, typer and click blocked, and every module of the
engines imports with ``msinv.cli`` blocked.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = SRC / "msinv"
#: Packages that must import without torch (and without typer/click).
TORCH_FREE = ("core", "scattering", "gravity", "metrics")
#: Packages that are not the CLI.
ENGINES = tuple(
    sorted(p.name for p in PACKAGE.iterdir() if (p / "__init__.py").exists() and p.name != "cli")
)


def _modules(package: str) -> list[str]:
    root = PACKAGE / package
    return sorted(
        ".".join(("msinv", *p.relative_to(PACKAGE).with_suffix("").parts)).removesuffix(".__init__")
        for p in root.rglob("*.py")
    )


def imports_of(path: Path, src: Path = SRC) -> list[tuple[int, str]]:
    """``(line, module)`` of every import in a file under ``src``, relative imports resolved."""
    tree = ast.parse(path.read_text(), filename=str(path))
    parts = list(path.relative_to(src).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    package = parts if path.name == "__init__.py" else parts[:-1]
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                name = ".".join([*base, node.module] if node.module else base)
            else:
                name = node.module or ""
            out.append((node.lineno, name))
            out += [(node.lineno, f"{name}.{alias.name}") for alias in node.names]
    return out


def _violations(package: str, forbidden) -> list[str]:
    found = []
    for path in sorted((PACKAGE / package).rglob("*.py")):
        for line, name in imports_of(path):
            if forbidden(name):
                found.append(f"{path.relative_to(SRC)}:{line}: imports {name}")
    return found


def _top(name: str) -> str:
    return name.split(".")[0]


@pytest.mark.parametrize("package", ENGINES)
def test_no_engine_imports_the_cli(package):
    bad = _violations(
        package,
        lambda n: n == "msinv.cli" or n.startswith("msinv.cli.") or _top(n) in ("typer", "click"),
    )
    assert not bad, "engines must not import the CLI (docs/architecture.md):\n" + "\n".join(bad)


def test_the_core_imports_no_engine():
    bad = _violations(
        "core",
        lambda n: (
            n.split(".")[0] == "msinv"
            and len(n.split(".")) > 1
            and n.split(".")[1] in {*ENGINES, "cli"} - {"core"}
        ),
    )
    assert not bad, "msinv.core must not import an engine:\n" + "\n".join(bad)


@pytest.mark.parametrize("package", TORCH_FREE)
def test_torch_free_packages_import_no_torch(package):
    bad = _violations(package, lambda n: _top(n) == "torch")
    assert not bad, f"msinv.{package} must not import torch (use msinv.accel):\n" + "\n".join(bad)


_BLOCKER = """
import importlib.abc, json, sys

BLOCKED = {blocked!r}


class Blocker(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if any(name == b or name.startswith(b + ".") for b in BLOCKED):
            raise ModuleNotFoundError(f"{{name}} is blocked by the architecture test", name=name)
        return None


sys.meta_path.insert(0, Blocker())
failed = {{}}
for module in {modules!r}:
    try:
        __import__(module)
    except Exception as exc:
        failed[module] = f"{{type(exc).__name__}}: {{exc}}"
loaded = sorted(m for m in sys.modules if any(m == b or m.startswith(b + ".") for b in BLOCKED))
print(json.dumps({{"failed": failed, "loaded": loaded}}))
"""


def _import_with_blocked(modules: list[str], blocked: list[str]) -> dict:
    code = textwrap.dedent(_BLOCKER.format(blocked=blocked, modules=modules))
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(SRC), "PATH": "/usr/bin:/bin", "MPLBACKEND": "Agg"},
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_core_and_physics_import_without_torch_and_typer():
    modules = [m for p in TORCH_FREE for m in _modules(p)]
    report = _import_with_blocked(modules, ["torch", "typer", "click", "msinv.cli"])
    assert report["failed"] == {}, report["failed"]
    assert report["loaded"] == []


def test_engines_import_without_the_cli():
    modules = [m for p in ENGINES if p not in TORCH_FREE for m in _modules(p)]
    pytest.importorskip("torch")
    report = _import_with_blocked(modules, ["typer", "click", "msinv.cli"])
    assert report["failed"] == {}, report["failed"]


def test_the_checks_catch_a_violation(tmp_path):
    """The static check sees imports inside functions and relative imports."""
    bad = tmp_path / "msinv" / "scattering" / "x.py"
    bad.parent.mkdir(parents=True)
    bad.write_text("def f():\n    import torch\n    from ..cli.errors import friendly\n")
    names = [n for _, n in imports_of(bad, tmp_path)]
    assert "torch" in names and "msinv.cli.errors" in names
