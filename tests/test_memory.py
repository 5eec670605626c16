"""numtorch._memory: the memory available, and a check that refuses in words what cannot fit."""

import sys

import pytest

from numtorch import _memory
from numtorch._memory import available_memory, check_memory, gib


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/meminfo")
def test_available_memory_on_linux():
    available = available_memory()
    assert isinstance(available, int) and 0 < available < 2**50


def test_gib():
    assert [gib(n) for n in (512 * 2**20, 37.25 * 2**30, 40 * 2**40)] == ["512 MiB", "37.2 GiB", "40.0 TiB"]


def test_check_memory(monkeypatch):
    monkeypatch.setattr(_memory, "available_memory", lambda: 2**30)
    check_memory(2**30, "this", "fits")
    with pytest.raises(MemoryError) as caught:
        check_memory(3 * 2**30, "the plan", "make it smaller")
    assert str(caught.value) == ("the plan needs about 3.0 GiB, more than the 1.0 GiB this machine has "
                                 "available: make it smaller")
    monkeypatch.setattr(_memory, "available_memory", lambda: None)
    check_memory(2**60, "anything", "where the system does not say")
