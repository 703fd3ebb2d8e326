"""The --memory limit means what the docs say (written from survivors of the sampled mutation
run, docs/testing.md): GiB of 1024^3 bytes, any positive value, by default half of the memory
available at start."""

import os

import pytest

from msinv.core import memory
from msinv.core.errors import UserInputError
from msinv.core.memory import MemoryLimitError, check_memory, memory_limit


def test_a_limit_is_given_in_gib_of_1024_cubed_bytes():
    assert memory_limit(1.5) == int(1.5 * 1024**3)
    assert memory_limit(0.25) == 1024**3 // 4  # below 1 GiB is a valid limit
    for bad in (0.0, -2.0):
        with pytest.raises(UserInputError, match="--memory: expected a limit > 0 GiB"):
            memory_limit(bad)


def test_the_default_limit_is_half_of_the_available_memory(monkeypatch):
    monkeypatch.setattr(memory, "available_bytes", lambda: 6 * 1024**3)
    assert memory_limit() == 3 * 1024**3


def test_a_request_over_the_limit_is_refused_in_gib():
    check_memory(1024**3, 1024**3, "exactly at the limit")
    with pytest.raises(
        MemoryLimitError, match=r"dense G needs 3\.00 GiB, more than the memory limit of 1\.50 GiB"
    ):
        check_memory(3 * 1024**3, int(1.5 * 1024**3), "dense G")


def test_without_proc_meminfo_the_physical_memory_is_the_available_memory(monkeypatch):
    import builtins

    real_open = builtins.open

    def no_meminfo(path, *args, **kwargs):
        if str(path) == "/proc/meminfo":
            raise FileNotFoundError(path)
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", no_meminfo)
    expected = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    assert memory.available_bytes() == expected > 2**20


def test_available_memory_is_memavailable_in_kib(tmp_path, monkeypatch):
    """/proc/meminfo gives kB of 1024 bytes; MemAvailable (not MemFree) is the figure used."""
    from msinv.core import memory

    meminfo = tmp_path / "meminfo"
    meminfo.write_text("MemTotal: 9000 kB\nMemFree: 1000 kB\nMemAvailable: 3000 kB\n")
    monkeypatch.setattr(memory, "MEMINFO", str(meminfo))
    assert memory.available_bytes() == 3000 * 1024


def test_a_refusal_ends_with_the_hint_when_one_is_given():
    """check_memory's message: '<what> needs X GiB, more than the memory limit of Y GiB
    (--memory)', then '; <hint>' when a hint is given (what to do instead), nothing more
    without one."""
    with pytest.raises(MemoryLimitError) as info:
        check_memory(2 * 1024**3, 1024**3, "layer G", "use windows")
    assert str(info.value).endswith("limit of 1.00 GiB (--memory); use windows")
    with pytest.raises(MemoryLimitError) as info:
        check_memory(2 * 1024**3, 1024**3, "layer G")
    assert str(info.value).endswith("limit of 1.00 GiB (--memory)")
