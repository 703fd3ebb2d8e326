"""Output paths (written from survivors of the sampled mutation run, docs/testing.md): atomic
writes into existing and new folders, and a folder without write permission refused."""

import os
from pathlib import Path

import pytest

from msinv.core import outputs
from msinv.core.errors import OutputError
from msinv.core.outputs import atomic_path, check_output_dir, check_output_file


def test_atomic_write_into_an_existing_or_a_new_folder(tmp_path):
    for target in (tmp_path / "a.txt", tmp_path / "new" / "deeper" / "b.txt"):
        with atomic_path(target) as tmp:
            assert tmp.parent == target.parent and not target.exists()
            tmp.write_text("done")
        assert target.read_text() == "done"
    with pytest.raises(RuntimeError), atomic_path(tmp_path / "a.txt") as tmp:
        tmp.write_text("half")
        raise RuntimeError
    assert (tmp_path / "a.txt").read_text() == "done"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt", "new"]


def test_an_output_folder_without_write_permission_is_refused(tmp_path, monkeypatch):
    """Writing needs w and x on the folder. The tests run as root, whom permissions do not
    stop, so os.access is replaced by one that answers for a read-only folder."""
    assert check_output_dir(tmp_path) == tmp_path

    def read_only(path, mode):
        return not mode & os.W_OK

    monkeypatch.setattr(outputs.os, "access", read_only)
    with pytest.raises(OutputError, match="no permission to write in this folder"):
        check_output_dir(tmp_path)


def test_write_text_writes_the_text(tmp_path):
    assert (
        outputs.write_text(tmp_path / "sub" / "log.txt", "φ_d = 1.0\n").read_text() == "φ_d = 1.0\n"
    )


def test_read_only_files_and_folders_are_refused_before_work(tmp_path, monkeypatch):
    """An existing read-only file, or a parent folder without write permission, is refused in
    one line (os.access replaced as above: root is never refused)."""
    (tmp_path / "old.npz").write_text("x")
    assert check_output_file(tmp_path / "old.npz") == tmp_path / "old.npz"
    assert check_output_file(tmp_path / "new" / "a.npz") == tmp_path / "new" / "a.npz"

    read_only = set()

    def access(path, mode):
        return not (mode & os.W_OK and Path(path) in read_only)

    monkeypatch.setattr(outputs.os, "access", access)
    read_only.add(tmp_path / "old.npz")
    with pytest.raises(OutputError, match="the existing file is read-only"):
        check_output_file(tmp_path / "old.npz")
    read_only.clear()
    read_only.add(tmp_path)  # the nearest existing parent of new/a.npz
    with pytest.raises(OutputError, match="no permission to write in"):
        check_output_file(tmp_path / "new" / "a.npz")


@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
def test_an_atomic_write_has_the_permissions_of_a_plain_open(tmp_path, umask):
    """The renamed file gets 0o666 minus the umask, as open() would give (not mkstemp's 0600),
    and the process's umask is left as it was."""
    previous = os.umask(umask)
    try:
        with atomic_path(tmp_path / "out.txt") as tmp:
            tmp.write_text("x")
        assert os.umask(umask) == umask  # unchanged by the write
    finally:
        os.umask(previous)
    assert (tmp_path / "out.txt").stat().st_mode & 0o777 == 0o666 & ~umask


@pytest.mark.skipif(not Path("/proc/self/fd").exists(), reason="needs /proc")
def test_atomic_writes_leave_no_file_descriptor_open(tmp_path):
    """Each atomic write closes the descriptor of its temporary file: a long run that writes
    thousands of checkpoints and chunks must not run out of descriptors."""

    def open_fds():
        return len(os.listdir("/proc/self/fd"))

    with atomic_path(tmp_path / "warm.txt") as tmp:
        tmp.write_text("x")
    before = open_fds()
    for k in range(20):
        with atomic_path(tmp_path / f"f{k}.txt") as tmp:
            tmp.write_text(str(k))
    assert open_fds() == before


def test_only_the_nearest_existing_folder_must_be_writable(tmp_path, monkeypatch):
    """A new output (file or folder, some levels deep) needs write permission in the nearest
    folder that exists, which is where it will be created; folders further up are not asked
    (a writable project folder inside a read-only home is fine). The message names the option,
    or the bare path when there is none. os.access is replaced (the tests run as root)."""
    (tmp_path / "project").mkdir()
    read_only = {tmp_path}

    def access(path, mode):
        return not (mode & os.W_OK and Path(path) in read_only)

    monkeypatch.setattr(outputs.os, "access", access)
    deep_dir, deep_file = tmp_path / "project" / "a" / "b", tmp_path / "project" / "a" / "f.npz"
    assert check_output_dir(deep_dir) == deep_dir
    assert check_output_file(deep_file) == deep_file
    read_only.add(tmp_path / "project")
    with pytest.raises(OutputError, match=rf"^--run {deep_dir}: no permission to write in "):
        check_output_dir(deep_dir, "--run")
    with pytest.raises(OutputError, match=rf"^{deep_file}: no permission to write in "):
        check_output_file(deep_file, None)


def test_a_file_where_a_folder_is_needed_and_the_reverse_are_refused(tmp_path):
    """check_output_dir refuses an existing file (and anything inside one); check_output_file
    refuses an existing folder: each in one line naming the option and the path."""
    (tmp_path / "taken").write_text("x")
    with pytest.raises(OutputError, match=r"^--out .*taken: exists and is a file; expected a"):
        check_output_dir(tmp_path / "taken")
    with pytest.raises(OutputError, match=r"taken is a file, so nothing can be written inside"):
        check_output_dir(tmp_path / "taken" / "sub")
    with pytest.raises(OutputError, match=r"^--model .*: is a folder; expected the name of a"):
        check_output_file(tmp_path, "--model")
