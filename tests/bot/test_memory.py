"""Freed memory goes back to the system: in a process of its own, 64 MiB of objects CPython
frees with ``free`` (2 KiB each), every eighth kept so that the heap cannot just shrink from
its top, as a burst of commands leaves it."""

from __future__ import annotations

import subprocess
import sys

import pytest

SCRIPT = """
import gc

from bot.memory import give_back

def rss_kib():
    with open("/proc/self/status") as status:
        return next(int(l.split()[1]) for l in status if l.startswith("VmRSS:"))

blocks = [bytes(2048) for _ in range(32 * 1024)]
kept = blocks[::8]
del blocks
gc.collect()
before = rss_kib()
given = give_back()
print(given, before, rss_kib())
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"),
                    reason="RSS read from /proc")
def test_freed_memory_goes_back_to_the_system() -> None:
    out = subprocess.run(  # noqa: S603 - this very Python, our own script
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True,
        check=True, timeout=60).stdout.split()
    given, before, after = out[0] == "True", int(out[1]), int(out[2])
    assert given
    assert before - after > 32 * 1024  # of the 56 MiB freed
