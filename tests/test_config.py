"""Process settings: glibc's allocator keeping freed memory (``keep_freed_memory``)."""

from __future__ import annotations

import math
import platform
import subprocess
import sys

import pytest

from hartutor import cli
from hartutor.config import keep_freed_memory

# Allocates, touches and frees a 64 MiB block (over glibc's 32 MiB mmap threshold) twice, and
# prints the minor page faults of the second round.
_FAULTS = """
import resource, sys
from hartutor.config import keep_freed_memory
if sys.argv[1] == "keep":
    assert keep_freed_memory()
def touch():
    block = bytearray(64 * 2**20)
    for i in range(0, len(block), 4096):
        block[i] = 1
touch()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
touch()
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def _second_round_faults(mode: str) -> int:
    done = subprocess.run(
        [sys.executable, "-c", _FAULTS, mode], capture_output=True, text=True, check=True
    )
    return int(done.stdout)


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="a glibc setting")
def test_keep_freed_memory_stops_a_large_block_faulting_in_again() -> None:
    pages = 64 * 2**20 // 4096
    assert _second_round_faults("default") > pages // 2  # glibc unmapped the block
    assert _second_round_faults("keep") < pages // 16  # reused without faults


@pytest.mark.parametrize("limit_mb", [16, 2048, math.nan, math.inf])
def test_keep_freed_memory_refuses_a_limit_mallopt_cannot_take(limit_mb: float) -> None:
    with pytest.raises(ValueError, match="limit_mb"):
        keep_freed_memory(limit_mb)


def test_console_script_keeps_freed_memory_before_main(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    monkeypatch.setattr("hartutor.config.keep_freed_memory", lambda: calls.append("keep"))
    monkeypatch.setattr(cli, "main", lambda: calls.append("main") or 0)
    assert cli.console_main() == 0
    assert calls == ["keep", "main"]
