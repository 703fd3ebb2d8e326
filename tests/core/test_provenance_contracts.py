"""What provenance records (written from survivors of the sampled mutation run,
docs/testing.md): the configuration as given, and the code version read from git."""

import datetime as dt
import subprocess
from pathlib import Path

from msinv import __version__
from msinv.core.provenance import code_version, provenance

PACKAGE = Path(__file__).resolve().parents[2] / "src" / "msinv" / "core"


def test_provenance_records_the_configuration_and_when():
    record = provenance({"seed": 3, "freqs": [2.5]})
    assert record["config"] == {"seed": 3, "freqs": [2.5]}
    assert provenance()["config"] == {}
    created = dt.datetime.fromisoformat(record["created"])
    assert created.utcoffset() == dt.timedelta(0)
    assert abs((dt.datetime.now(dt.UTC) - created).total_seconds()) < 60
    assert record["msinv_version"] == code_version()


def _git(*args):
    return subprocess.run(["git", *args], cwd=PACKAGE, capture_output=True, text=True, check=False)


def test_code_version_is_the_package_version_plus_the_git_commit():
    """Inside a git checkout: version+g<short commit>, '.dirty' with uncommitted changes to
    tracked files (what git itself says); the bare version outside one."""
    head = _git("rev-parse", "--short", "HEAD")
    if head.returncode != 0:
        assert code_version.__wrapped__() == __version__
        return
    dirty = _git("status", "--porcelain", "--untracked-files=no").stdout.strip()
    expected = f"{__version__}+g{head.stdout.strip()}" + (".dirty" if dirty else "")
    assert code_version.__wrapped__() == expected


def test_code_version_outside_a_git_checkout_is_the_bare_version(tmp_path, monkeypatch):
    monkeypatch.setenv("GIT_DIR", str(tmp_path / "no-repository"))
    assert code_version.__wrapped__() == __version__


def test_code_version_marks_uncommitted_changes_as_a_local_version_segment(tmp_path, monkeypatch):
    """With tracked files changed the version is ``<version>+g<commit>.dirty`` (a PEP 440 local
    version: segments joined by dots), without changes ``<version>+g<commit>``. A small
    repository stands in for the checkout (GIT_DIR / GIT_WORK_TREE), so both states are
    tested whatever the state of the real one."""
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "a.txt").write_text("one\n")

    def git(*args):
        return subprocess.run(
            ["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=repo,
            capture_output=True, text=True, check=True,
        ).stdout.strip()  # fmt: skip

    git("init", "-q")
    git("add", "a.txt")
    git("commit", "-q", "-m", "one")
    commit = git("rev-parse", "--short", "HEAD")
    monkeypatch.setenv("GIT_DIR", str(repo / ".git"))
    monkeypatch.setenv("GIT_WORK_TREE", str(repo))
    assert code_version.__wrapped__() == f"{__version__}+g{commit}"
    (repo / "a.txt").write_text("two\n")
    assert code_version.__wrapped__() == f"{__version__}+g{commit}.dirty"
    (repo / "untracked.txt").write_text("x\n")  # untracked files do not count
    (repo / "a.txt").write_text("one\n")
    assert code_version.__wrapped__() == f"{__version__}+g{commit}"
