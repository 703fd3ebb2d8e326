"""Sampled mutation testing of msinv: plant small bugs, run the mapped tests, score the suite.

A full mutation run of the scope (``mutmut run``) takes hours on two cores. This script gives
an honest estimate at a fraction of the cost: per module it enumerates every mutant that our
AST mutator can plant, draws a seeded random sample of them, runs only the tests mapped to that
module (``tools/mutation_scope.toml``) on each, and reports the killed fraction with a 95%
Wilson confidence interval.

Mutation operators (one change per mutant):

- ``binop``: ``+ <-> -``, ``* <-> /``, ``// -> /``, ``** -> *``, ``@ -> *``, ``% -> *``,
  ``& <-> |`` (also in ``x op= y``);
- ``compare``: ``< <-> <=``, ``> <-> >=``, ``== <-> !=``, ``is <-> is not``, ``in <-> not in``;
- ``boolop``: ``and <-> or``; ``unary``: ``-x -> x``, ``not x -> x`` (sign flips, negations);
- ``constant``: an integer ``n -> n + 1``, a float ``x -> 2 x`` (``0.0 -> 1.0``),
  ``True <-> False``;
- ``drop``: a call statement, an in-place update (``x op= y``, ``a[i] = ...``, ``a.b = ...``)
  or a ``raise`` replaced by ``pass``;
- ``slice``: a slice's start ``+ 1`` and its stop ``- 1`` (off by one).

Four more operators, the kinds of bug a person plants by hand rather than an operator swap,
are drawn only when asked for (``run --kinds``; the default ``classic`` set keeps the earlier
samples reproducible):

- ``call``: one function for its twin (``min <-> max``, ``argmin <-> argmax``,
  ``floor <-> ceil``, ``sum <-> mean``, ``real <-> imag``, ``fft <-> ifft``, ``zeros <-> ones``,
  ``sin <-> cos``, ``any <-> all``, ``tril <-> triu``, ...);
- ``unwrap``: a one-argument call such as ``abs(x)``, ``np.sqrt(x)``, ``np.conj(x)``,
  ``np.flip(x)`` or ``sorted(x)`` replaced by its argument, ``x.conj()`` by ``x``, ``x.T`` and
  ``x.real`` by ``x`` (a forgotten conjugate, transpose or square root);
- ``kwarg``: one meaningful keyword argument dropped (``axis``, ``keepdims``, ``norm``,
  ``indexing``, ``ddof``, ``dtype``, ``endpoint``, ``side``, ``lower``, ``dim``, ``keepdim``,
  ``mode``, ``order``, ``reverse``), so the callee's default is used;
- ``args``: a call's first two positional arguments swapped.

Left alone: docstrings, strings, f-strings, annotations, decorators, ``raise``/``assert``/
``warnings.warn`` arguments (messages), and ``if TYPE_CHECKING`` blocks.

Each mutant runs in a fresh process forked from a server that has already imported the heavy
third-party libraries (NumPy, SciPy, torch, numba, ...) but no msinv module, in a scratch copy
of the repository whose module file holds the mutant: ``pytest -x -q`` on the mapped tests
(default markers), ``OMP_NUM_THREADS=1``, niced by 10, killed after a timeout (a multiple of
the unmutated run's time). A mutant is ``killed`` (a test failed), ``timeout`` (counted as
killed, reported apart), ``survived`` (the tests passed) or ``equivalent`` (it survived and a
person read it and recorded why no test can tell it from the original, in the scope file).

The results file is written after every mutant, atomically, and a second run with the same
seed resumes: mutants already run on the same module source are skipped (a changed module
source starts that module again). Usage::

    python tools/mutation.py run --sample 30 --budget-min 60         # all modules in scope
    python tools/mutation.py run --module src/msinv/metrics/crps.py  # one module
    python tools/mutation.py report                                  # the table, survivors
    python tools/mutation.py show ID                                 # one mutant's diff
"""

from __future__ import annotations

import argparse
import ast
import copy
import difflib
import fcntl
import hashlib
import json
import math
import os
import random
import shutil
import signal
import subprocess
import sys
import time
import tomllib
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCOPE = ROOT / "tools" / "mutation_scope.toml"
RESULTS = Path(os.environ.get("MSINV_MUTATION_RESULTS", ROOT / "tools" / "mutation_results.json"))
WORK = Path(os.environ.get("MSINV_MUTATION_WORK", "/tmp/msinv-mutation"))
THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMBA_NUM_THREADS")

BINOP = {
    ast.Add: ast.Sub,
    ast.Sub: ast.Add,
    ast.Mult: ast.Div,
    ast.Div: ast.Mult,
    ast.FloorDiv: ast.Div,
    ast.Pow: ast.Mult,
    ast.MatMult: ast.Mult,
    ast.Mod: ast.Mult,
    ast.BitAnd: ast.BitOr,
    ast.BitOr: ast.BitAnd,
}
COMPARE = {
    ast.Lt: ast.LtE,
    ast.LtE: ast.Lt,
    ast.Gt: ast.GtE,
    ast.GtE: ast.Gt,
    ast.Eq: ast.NotEq,
    ast.NotEq: ast.Eq,
    ast.Is: ast.IsNot,
    ast.IsNot: ast.Is,
    ast.In: ast.NotIn,
    ast.NotIn: ast.In,
}
MESSAGE_CALLS = {"warn", "echo", "print", "info", "debug", "warning", "error", "secho"}
_TWINS = [
    ("min", "max"), ("amin", "amax"), ("nanmin", "nanmax"), ("minimum", "maximum"),
    ("argmin", "argmax"), ("floor", "ceil"), ("real", "imag"), ("any", "all"),
    ("zeros", "ones"), ("zeros_like", "ones_like"), ("sin", "cos"), ("fft", "ifft"),
    ("fft2", "ifft2"), ("rfft", "irfft"), ("tril", "triu"), ("vstack", "hstack"),
]  # fmt: skip
SWAP_CALLS = {a: b for a, b in _TWINS} | {b: a for a, b in _TWINS} | {"sum": "mean", "mean": "sum"}
UNWRAP_CALLS = {
    "abs", "fabs", "sqrt", "conj", "conjugate", "real", "square", "transpose", "flip", "fliplr",
    "flipud", "sort", "sorted", "reversed", "exp", "log",
}  # fmt: skip
UNWRAP_METHODS = {"conj", "conjugate", "transpose"}
UNWRAP_ATTRIBUTES = {"T", "mT", "H", "real"}
DROPPED_KWARGS = {
    "axis", "keepdims", "norm", "indexing", "ddof", "dtype", "endpoint", "side", "lower",
    "dim", "keepdim", "mode", "order", "reverse",
}  # fmt: skip
CLASSIC_KINDS = ("binop", "compare", "boolop", "unary", "constant", "drop", "slice")
EXTENDED_KINDS = ("call", "unwrap", "kwarg", "args")


@dataclass
class Mutant:
    """One planted change: ``text[start:end]`` of the module becomes ``replacement``."""

    id: str
    module: str
    kind: str
    line: int
    start: int
    end: int
    original: str
    replacement: str

    def apply(self, text: str) -> str:
        return text[: self.start] + self.replacement + text[self.end :]

    def diff(self, text: str) -> str:
        new = self.apply(text)
        lines = difflib.unified_diff(
            text.splitlines(keepends=True),
            new.splitlines(keepends=True),
            self.module,
            self.module,
            n=1,
        )
        return "".join(lines)


def _offsets(text: str) -> list[int]:
    out, pos = [0], 0
    for line in text.splitlines(keepends=True):
        pos += len(line)
        out.append(pos)
    return out


class _Collector(ast.NodeVisitor):
    """Walk a module, yielding ``(node, kind, replacement_node_or_text)`` for each mutation."""

    def __init__(self):
        self.sites: list[tuple[ast.AST, str, object]] = []

    # -- what is never mutated ---------------------------------------------------------------
    def _body(self, body):
        for i, stmt in enumerate(body):
            if (
                i == 0
                and isinstance(stmt, ast.Expr)
                and isinstance(stmt.value, ast.Constant)
                and isinstance(stmt.value.value, str)
            ):
                continue  # docstring
            self.visit(stmt)

    def visit_Module(self, node):
        self._body(node.body)

    def visit_FunctionDef(self, node):
        for default in [*node.args.defaults, *[d for d in node.args.kw_defaults if d]]:
            self.visit(default)
        self._body(node.body)

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_ClassDef(self, node):
        self._body(node.body)

    def visit_If(self, node):
        test = ast.unparse(node.test)
        if "TYPE_CHECKING" in test or "__name__" in test:
            return
        self.generic_visit(node)

    def visit_AnnAssign(self, node):
        if node.value is not None:
            self.visit(node.value)

    def visit_JoinedStr(self, node):
        return

    def visit_Assert(self, node):
        return

    def visit_Raise(self, node):
        self.sites.append((node, "drop", "pass"))

    def visit_Assign(self, node):
        if any(isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets):
            return
        if any(isinstance(t, ast.Attribute | ast.Subscript) for t in node.targets):
            self.sites.append((node, "drop", "pass"))
        self.generic_visit(node)

    def visit_AugAssign(self, node):
        self.sites.append((node, "drop", "pass"))
        new = BINOP.get(type(node.op))
        if new is not None:
            mutated = copy.deepcopy(node)
            mutated.op = new()
            self.sites.append((node, "binop", mutated))
        self.visit(node.target)
        self.visit(node.value)

    def visit_Expr(self, node):
        if isinstance(node.value, ast.Call):
            self.sites.append((node, "drop", "pass"))
            func = node.value.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if name in MESSAGE_CALLS:
                return
        self.generic_visit(node)

    def visit_Import(self, node):
        return

    visit_ImportFrom = visit_Import

    # -- expressions ---------------------------------------------------------------------------
    def visit_BinOp(self, node):
        new = BINOP.get(type(node.op))
        if new is not None:
            mutated = copy.deepcopy(node)
            mutated.op = new()
            self.sites.append((node, "binop", mutated))
        self.generic_visit(node)

    def visit_Compare(self, node):
        for i, op in enumerate(node.ops):
            new = COMPARE.get(type(op))
            if new is not None:
                mutated = copy.deepcopy(node)
                mutated.ops[i] = new()
                self.sites.append((node, "compare", mutated))
        self.generic_visit(node)

    def visit_BoolOp(self, node):
        mutated = copy.deepcopy(node)
        mutated.op = ast.Or() if isinstance(node.op, ast.And) else ast.And()
        self.sites.append((node, "boolop", mutated))
        self.generic_visit(node)

    def visit_UnaryOp(self, node):
        if isinstance(node.op, ast.USub | ast.Not):
            self.sites.append((node, "unary", copy.deepcopy(node.operand)))
        self.generic_visit(node)

    def visit_Constant(self, node):
        v = node.value
        if isinstance(v, bool):
            new = not v
        elif isinstance(v, int):
            new = v + 1
        elif isinstance(v, float):
            new = 2.0 * v if v != 0.0 else 1.0
        else:
            return
        self.sites.append((node, "constant", ast.Constant(new)))

    def visit_Slice(self, node):
        if node.lower is not None:
            mutated = copy.deepcopy(node)
            mutated.lower = ast.BinOp(copy.deepcopy(node.lower), ast.Add(), ast.Constant(1))
            self.sites.append((node, "slice", mutated))
        if node.upper is not None:
            mutated = copy.deepcopy(node)
            mutated.upper = ast.BinOp(copy.deepcopy(node.upper), ast.Sub(), ast.Constant(1))
            self.sites.append((node, "slice", mutated))
        self.generic_visit(node)

    def visit_Attribute(self, node):
        if node.attr in UNWRAP_ATTRIBUTES and isinstance(node.ctx, ast.Load):
            self.sites.append((node, "unwrap", copy.deepcopy(node.value)))
        self.generic_visit(node)

    def visit_Call(self, node):
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
        if name in MESSAGE_CALLS:
            return
        if name in SWAP_CALLS:
            mutated = copy.deepcopy(node)
            if isinstance(func, ast.Attribute):
                mutated.func.attr = SWAP_CALLS[name]
            else:
                mutated.func.id = SWAP_CALLS[name]
            self.sites.append((node, "call", mutated))
        plain = not node.keywords and not any(isinstance(a, ast.Starred) for a in node.args)
        if name in UNWRAP_CALLS and plain and len(node.args) == 1:
            self.sites.append((node, "unwrap", copy.deepcopy(node.args[0])))
        elif name in UNWRAP_METHODS and plain and not node.args:
            if isinstance(func, ast.Attribute):
                self.sites.append((node, "unwrap", copy.deepcopy(func.value)))
        for i, kw in enumerate(node.keywords):
            if kw.arg in DROPPED_KWARGS:
                mutated = copy.deepcopy(node)
                del mutated.keywords[i]
                self.sites.append((node, "kwarg", mutated))
        args = node.args
        if (
            len(args) >= 2
            and not any(isinstance(a, ast.Starred) for a in args[:2])
            and ast.unparse(args[0]) != ast.unparse(args[1])
        ):
            mutated = copy.deepcopy(node)
            mutated.args[0], mutated.args[1] = mutated.args[1], mutated.args[0]
            self.sites.append((node, "args", mutated))
        self.generic_visit(node)


def mutants_of(path: Path, kinds=CLASSIC_KINDS + EXTENDED_KINDS) -> list[Mutant]:
    """Every mutant of one module of the given kinds, in source order, with stable ids.

    The id hashes the module, the kind, the original and mutated text and the text of the
    line, and the occurrence of that tuple in the file, not the line number: it does not change
    with edits elsewhere in the file, nor with the kinds asked for.
    """
    text = path.read_text()
    rel = path.relative_to(ROOT).as_posix()
    offsets = _offsets(text)
    collector = _Collector()
    collector.visit(ast.parse(text))
    seen: dict[str, int] = {}
    out = []
    for node, kind, new in collector.sites:
        if kind not in kinds:
            continue
        start = offsets[node.lineno - 1] + node.col_offset
        end = offsets[node.end_lineno - 1] + node.end_col_offset
        original = text[start:end]
        if isinstance(new, str):
            replacement = new
        else:
            replacement = ast.unparse(new)
            if isinstance(node, ast.expr) and not isinstance(node, ast.Slice):
                replacement = f"({replacement})"
        line_text = text[offsets[node.lineno - 1] : offsets[node.lineno]].strip()
        key = f"{rel}|{kind}|{original}|{replacement}|{line_text}"
        seen[key] = seen.get(key, 0) + 1
        digest = hashlib.sha1(f"{key}|{seen[key]}".encode()).hexdigest()[:10]
        mutant = Mutant(digest, rel, kind, node.lineno, start, end, original, replacement)
        try:
            compile(mutant.apply(text), rel, "exec")
        except SyntaxError:
            continue
        out.append(mutant)
    return out


def wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95% Wilson score interval of a binomial proportion ``k / n``."""
    if n == 0:
        return (0.0, 1.0)
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return (max(0.0, centre - half), min(1.0, centre + half))


# -- scope and results ------------------------------------------------------------------------


def load_scope() -> dict:
    with SCOPE.open("rb") as f:
        return tomllib.load(f)


def modules_in_scope(scope: dict) -> list[tuple[Path, dict]]:
    out, seen = [], set()
    for entry in scope["module"]:
        for path in sorted(ROOT.glob(entry["path"])):
            if path in seen or path.name == "__init__.py":
                continue  # a module belongs to its first entry; __init__ files re-export
            seen.add(path)
            out.append((path, entry))
    return out


def load_results() -> dict:
    if RESULTS.exists():
        return json.loads(RESULTS.read_text())
    return {"modules": {}}


def save_results(results: dict) -> None:
    tmp = RESULTS.with_suffix(f".json.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(results, indent=1, sort_keys=True) + "\n")
    os.replace(tmp, RESULTS)


def update_results(change) -> dict:
    """Read, ``change(results)``, write back, under a lock: runs in parallel lose nothing."""
    with open(RESULTS.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        results = load_results()
        change(results)
        save_results(results)
        return results


def _ids_in(paths: list[str]) -> set[str]:
    """Every mutant id recorded in these results files (any module source)."""
    ids: set[str] = set()
    for path in paths:
        results = json.loads(Path(path).read_text())
        records = [*results["modules"].values(), *results.get("earlier_sources", {}).values()]
        for record in records:
            ids.update(record["mutants"])
    return ids


def _module_record(results: dict, rel: str, sha: str) -> dict:
    record = results["modules"].get(rel)
    if record is not None and record["source_sha1"] != sha:  # the module changed: start again
        results.setdefault("earlier_sources", {})[f"{rel}@{record['source_sha1'][:10]}"] = record
        record = None
    if record is None:
        record = results["modules"][rel] = {"source_sha1": sha, "mutants": {}}
    return record


def summarise(record: dict, equivalent: dict) -> dict:
    counts = dict.fromkeys(("killed", "timeout", "survived", "equivalent", "error"), 0)
    for m in record["mutants"].values():
        status = m["status"]
        if status == "survived" and m["id"] in equivalent:
            status = "equivalent"
        counts[status] += 1
    detected = counts["killed"] + counts["timeout"]
    n = detected + counts["survived"]
    lo, hi = wilson(detected, n)
    return {
        "sampled": sum(counts.values()),
        **counts,
        "score": detected / n if n else None,
        "ci95": [round(lo, 4), round(hi, 4)],
    }


# -- running ----------------------------------------------------------------------------------


def _copy_repo(dest: Path) -> None:
    files = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard"],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split("\n")
    if dest.exists():
        shutil.rmtree(dest)
    for name in files:
        if not name or name.startswith("tools/mutation_results"):
            continue
        src = ROOT / name
        if not src.is_file():
            continue
        target = dest / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, target)
    # a git checkout, as the repository is (code_version reads the commit and the dirty flag)
    git = ["git", "-c", "user.name=mutation", "-c", "user.email=mutation@localhost"]
    for args in (["init", "-q"], ["add", "-A"], ["commit", "-q", "-m", "scratch copy"]):
        subprocess.run([*git, *args], cwd=dest, check=True, capture_output=True)


class ForkServer:
    """Run pytest in forked children of a process that imported the heavy libraries once."""

    def __init__(self, repo: Path, preload: list[str]):
        self.repo = repo
        for name in preload:
            __import__(name)
        import pytest  # noqa: F401

        assert not any(m == "msinv" or m.startswith("msinv.") for m in sys.modules)

    def run(self, tests: list[str], log: Path, timeout: float) -> tuple[str, float, float]:
        """``(outcome, wall seconds, CPU seconds)`` of ``pytest -x -q tests`` in the scratch copy."""
        t0 = time.monotonic()
        pid = os.fork()
        if pid == 0:  # the child: never returns
            try:
                os.setsid()
                fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
                os.dup2(fd, 1)
                os.dup2(fd, 2)
                os.chdir(self.repo)
                # SIGINT as in a run from a terminal: a background start (nohup ... &) inherits
                # it ignored, and the signal-handling tests would see that instead
                signal.signal(signal.SIGINT, signal.default_int_handler)
                # as `python -m pytest` from the repository root: the root first on sys.path
                # (tests that send test functions to spawned workers import them from there)
                sys.path[:0] = [str(self.repo / "src"), str(self.repo)]
                # and the tests' own subprocesses (the CLI, torchrun) import the scratch copy
                # too, not the package installed from the repository
                os.environ["PYTHONPATH"] = f"{self.repo / 'src'}{os.pathsep}{self.repo}"
                import pytest

                rc = pytest.main(["-x", "-q", "-p", "no:cacheprovider", *tests])
                import msinv

                if not Path(msinv.__file__).is_relative_to(self.repo):
                    print(f"msinv imported from {msinv.__file__}, not the scratch copy")
                    rc = 99
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(int(rc))
            except BaseException as exc:
                print(f"mutation child failed: {exc!r}", file=sys.stderr)
                os._exit(98)
        while True:
            done, status, usage = os.wait4(pid, os.WNOHANG)
            if done:
                break
            if time.monotonic() - t0 > timeout:
                os.killpg(pid, signal.SIGKILL)
                _, status, usage = os.wait4(pid, 0)
                return "timeout", time.monotonic() - t0, usage.ru_utime + usage.ru_stime
            time.sleep(0.1)
        rc = os.waitstatus_to_exitcode(status)
        cpu = usage.ru_utime + usage.ru_stime
        return ("passed" if rc == 0 else f"failed:{rc}"), time.monotonic() - t0, cpu


def run(args) -> None:
    for var in THREAD_VARS:
        os.environ[var] = "1"
    os.environ["PYTHONDONTWRITEBYTECODE"] = "1"
    os.environ.pop("PYTHONPATH", None)
    os.nice(args.nice)
    groups = {"classic": CLASSIC_KINDS, "extended": EXTENDED_KINDS}
    args.kinds = tuple(k for name in args.kinds for k in groups.get(name, (name,)))
    scope = load_scope()
    equivalent = scope.get("equivalent", {})
    selected = modules_in_scope(scope)
    if args.module:
        wanted = {(ROOT / m).resolve() for m in args.module}
        selected = [(p, e) for p, e in selected if p.resolve() in wanted]
        missing = wanted - {p.resolve() for p, _ in selected}
        if missing:
            sys.exit(f"not in {SCOPE.name}: {', '.join(map(str, sorted(missing)))}")
    seen_before = _ids_in(getattr(args, "unseen_by", None) or [])
    work = WORK / args.command
    repo = work / "repo"
    _copy_repo(repo)
    preload = sorted({name for _, e in selected for name in e.get("preload", [])})
    server = ForkServer(repo, ["numpy", "scipy", "scipy.sparse.linalg", *preload])
    (work / "logs").mkdir(parents=True, exist_ok=True)
    budget, spent = args.budget_min * 60.0, 0.0
    for path, entry in selected:
        rel = path.relative_to(ROOT).as_posix()
        text = path.read_text()
        sha = hashlib.sha1(text.encode()).hexdigest()
        mutants = mutants_of(path, args.kinds)
        random.Random(f"{args.seed}:{rel}").shuffle(mutants)
        mutants = [m for m in mutants if m.id not in seen_before]
        size = args.every if getattr(args, "every", None) else entry.get("sample", args.sample)
        sample = mutants[:size]
        if args.ids:
            sample = [m for m in mutants if m.id in args.ids]

        def meta(results, rel=rel, sha=sha, n=len(mutants), tests=entry["tests"]):
            record = _module_record(results, rel, sha)
            record.update(mutants_total=n, tests=tests, seed=args.seed)
            record["summary"] = summarise(record, equivalent)

        record = _module_record(update_results(meta), rel, sha)
        todo = [m for m in sample if m.id not in record["mutants"]]
        if not todo:
            continue
        target = repo / rel
        if "baseline_wall_s" not in record:
            base_log = work / "logs" / f"baseline-{rel.replace('/', '_')}.log"
            outcome, wall, cpu = server.run(entry["tests"], base_log, 1800)
            spent += cpu
            if outcome != "passed":
                print(f"{rel}: the unmutated tests {outcome} (log {base_log})")
                continue
            base = {"baseline_wall_s": round(wall, 1), "baseline_cpu_s": round(cpu, 1)}
            update_results(
                lambda r, rel=rel, sha=sha, b=base: _module_record(r, rel, sha).update(b)
            )
            record.update(base)
        timeout = args.timeout_factor * record["baseline_wall_s"] + 20.0
        print(
            f"{rel}: {len(todo)} of {len(sample)} sampled ({len(mutants)} in all) to run",
            flush=True,
        )
        for mutant in todo:
            if spent > budget:
                print(f"CPU budget of {args.budget_min} min spent; run again to resume")
                return
            target.write_text(mutant.apply(text))
            stamp = time.time() + 10 + len(record["mutants"])
            os.utime(target, (stamp, stamp))  # no stale bytecode, whatever the caches
            try:
                log = work / "logs" / f"{mutant.id}.log"
                outcome, wall, cpu = server.run(entry["tests"], log, timeout)
            finally:
                target.write_text(text)
            spent += cpu
            status = {"passed": "survived", "timeout": "timeout"}.get(outcome, "killed")
            if outcome in ("failed:98", "failed:99", "failed:4", "failed:5"):
                status = "error"  # the harness, not the tests (4: usage error, 5: no tests)
            tail = ""
            if status == "killed":
                lines = log.read_text(errors="replace").splitlines()
                tail = next((ln for ln in reversed(lines) if ln.startswith("FAILED")), "")
                tail = tail or next((ln for ln in lines if "Error" in ln), "")
            entry_ = {
                **asdict(mutant),
                "status": status,
                "wall_s": round(wall, 1),
                "cpu_s": round(cpu, 1),
                "failing": tail[:300],
                "diff": mutant.diff(text),
                **({"before": args.before.get(mutant.id)} if args.ids else {}),
            }

            def add(results, rel=rel, sha=sha, m=entry_):
                rec = _module_record(results, rel, sha)
                rec["mutants"][m["id"]] = m
                rec["summary"] = summarise(rec, equivalent)

            record = _module_record(update_results(add), rel, sha)
            print(
                f"  {mutant.id} {mutant.kind:8s} L{mutant.line:<4d} {status:9s} {wall:6.1f}s",
                flush=True,
            )


def report(args) -> None:
    scope = load_scope()
    equivalent = scope.get("equivalent", {})
    results = load_results()
    rows = []
    total = dict.fromkeys(("sampled", "killed", "timeout", "survived", "equivalent"), 0)
    for rel, record in sorted(results["modules"].items()):
        if not record["mutants"]:
            continue
        s = summarise(record, equivalent)
        record["summary"] = s
        for key in total:
            total[key] += s[key]
        score = "-" if s["score"] is None else f"{100 * s['score']:.1f}%"
        lo, hi = s["ci95"]
        rows.append(
            f"| `{rel.removeprefix('src/msinv/')}` | {record['mutants_total']} | {s['sampled']} | "
            f"{s['killed']} | {s['timeout']} | {s['equivalent']} | {s['survived']} | {score} | "
            f"{100 * lo:.0f}-{100 * hi:.0f}% |"
        )
    n = total["killed"] + total["timeout"] + total["survived"]
    lo, hi = wilson(total["killed"] + total["timeout"], n)
    score = f"{100 * (total['killed'] + total['timeout']) / n:.1f}%" if n else "-"
    print(
        "| module | mutants | sampled | killed | timeout | equivalent | survived | score | 95% CI |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    print("\n".join(rows))
    print(
        f"| **all** | | {total['sampled']} | {total['killed']} | {total['timeout']} | "
        f"{total['equivalent']} | {total['survived']} | {score} | {100 * lo:.0f}-{100 * hi:.0f}% |"
    )

    def change(r):
        for rec in r["modules"].values():
            rec["summary"] = summarise(rec, equivalent)
        r["total"] = {**total, "score": score, "ci95": [round(lo, 4), round(hi, 4)]}
        r["equivalent"] = {
            k: v
            for k, v in equivalent.items()
            if any(k in m["mutants"] for m in r["modules"].values())
        }

    results = update_results(change)
    if args.survivors:
        for rel, record in sorted(results["modules"].items()):
            for m in record["mutants"].values():
                if m["status"] == "survived" and m["id"] not in equivalent:
                    print(f"\n### {m['id']} ({m['kind']}, {rel}:{m['line']})\n{m['diff']}")


def show(args) -> None:
    results = load_results()
    for record in results["modules"].values():
        m = record["mutants"].get(args.id)
        if m:
            print(json.dumps({k: v for k, v in m.items() if k != "diff"}, indent=1))
            print(m["diff"])
            return
    for path, _ in modules_in_scope(load_scope()):
        for m in mutants_of(path):
            if m.id == args.id:
                print(m.diff(path.read_text()))
                return
    sys.exit(f"no mutant {args.id}")


def rerun(args) -> None:
    """Run named mutants again (after a new test), replacing their records."""
    before = {}

    def forget(results):
        for record in results["modules"].values():
            for mid in args.ids:
                old = record["mutants"].pop(mid, None)
                if old is not None:
                    before[mid] = old["status"] if "before" not in old else old["before"]

    update_results(forget)
    args.before = before
    wanted = set(args.ids)
    args.module = sorted(
        {
            p.relative_to(ROOT).as_posix()
            for p, _ in modules_in_scope(load_scope())
            if any(m.id in wanted for m in mutants_of(p))
        }
    )
    args.ids = wanted
    args.kinds = CLASSIC_KINDS + EXTENDED_KINDS
    run(args)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("run", help="run (or resume) the sampled mutants")
    p.add_argument("--module", action="append", help="a module path (repeatable); default all")
    p.add_argument("--sample", type=int, default=30, help="mutants drawn per module")
    p.add_argument(
        "--every", type=int, help="draw this many from every module (ignore the scope's sizes)"
    )
    p.add_argument("--seed", type=int, default=17)
    p.add_argument(
        "--unseen-by",
        action="append",
        metavar="RESULTS",
        help="leave out the mutants recorded in this results file (repeatable): a sample of "
        "planted bugs the suite's tests were not written from",
    )
    p.add_argument("--budget-min", type=float, default=60.0, help="CPU minutes for this call")
    p.add_argument("--timeout-factor", type=float, default=4.0)
    p.add_argument("--nice", type=int, default=10)
    p.add_argument(
        "--kinds",
        nargs="+",
        default=["classic"],
        choices=["classic", "extended", *CLASSIC_KINDS, *EXTENDED_KINDS],
        help="mutation operators to draw from: 'classic' (the default, the earlier samples' "
        "set), 'extended' (call, unwrap, kwarg, args) or single kinds",
    )
    p.set_defaults(func=run, ids=None)
    p = sub.add_parser("rerun", help="run named mutants again, replacing their records")
    p.add_argument("ids", nargs="+")
    p.add_argument("--sample", type=int, default=0)
    p.add_argument("--seed", type=int, default=17)
    p.add_argument("--budget-min", type=float, default=60.0)
    p.add_argument("--timeout-factor", type=float, default=4.0)
    p.add_argument("--nice", type=int, default=10)
    p.set_defaults(func=rerun)
    p = sub.add_parser("report", help="print the score table (and update the results file)")
    p.add_argument("--survivors", action="store_true", help="print each survivor's diff")
    p.set_defaults(func=report)
    p = sub.add_parser("show", help="print one mutant")
    p.add_argument("id")
    p.set_defaults(func=show)
    args = parser.parse_args()
    args.func(args)


if __name__ == "__main__":
    main()
