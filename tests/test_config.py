"""Process settings: glibc's allocator keeping freed memory (``keep_freed_memory``) or giving
it back (``return_freed_memory``, in notebook kernels)."""

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


def _probe(script: str, mode: str) -> str:
    """What ``script`` prints when run in a fresh interpreter with argument ``mode`` (glibc's
    allocator state starts clean there)."""
    done = subprocess.run(
        [sys.executable, "-c", script, mode], capture_output=True, text=True, check=True
    )
    return done.stdout


def _second_round_faults(mode: str) -> int:
    return int(_probe(_FAULTS, mode))


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


# Frees a 16 MiB block (glibc then raises its mmap threshold to 16 MiB), fills 128 MiB with
# 4 MiB blocks (now from the heap), frees all but the last (which pins the heap's top) and
# prints how much more is resident than before (MiB).
_RETAINED = """
import sys
from pathlib import Path
from hartutor.config import return_freed_memory
def rss():
    return int(Path("/proc/self/statm").read_text().split()[1]) * 4096 / 2**20
big = bytearray(16 * 2**20)
del big
before = rss()
blocks = [bytearray(4 * 2**20) for _ in range(32)]
last = blocks.pop()
del blocks
if sys.argv[1] == "return":
    assert return_freed_memory()
print(rss() - before)
"""


def _retained_mb(mode: str) -> float:
    return float(_probe(_RETAINED, mode))


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="a glibc setting")
def test_return_freed_memory_gives_freed_blocks_back() -> None:
    assert _retained_mb("default") > 100  # 31 freed blocks of 4 MiB still resident
    assert _retained_mb("return") < 16  # only the block still alive


def test_only_a_jupyter_kernel_trims_after_each_cell(monkeypatch: pytest.MonkeyPatch) -> None:
    import types

    import hartutor.config as config

    registered: list[tuple[str, object]] = []
    events = types.SimpleNamespace(
        callbacks={"post_run_cell": []},
        register=lambda name, fn: registered.append((name, fn)),
    )
    shell = types.SimpleNamespace(events=events)
    monkeypatch.setitem(sys.modules, "IPython", types.SimpleNamespace(get_ipython=lambda: shell))
    monkeypatch.setattr(config, "_libc", lambda: object())
    monkeypatch.delitem(sys.modules, "ipykernel", raising=False)
    assert not config.kernel_memory_setup() and registered == []  # not a kernel
    monkeypatch.setitem(sys.modules, "ipykernel", sys)  # as if running in a kernel
    monkeypatch.setenv(config.RETURN_FREED_VARIABLE, "0")
    assert not config.kernel_memory_setup() and registered == []  # turned off
    monkeypatch.delenv(config.RETURN_FREED_VARIABLE)
    assert config.kernel_memory_setup()
    assert registered == [("post_run_cell", config._trim_after_cell)]
