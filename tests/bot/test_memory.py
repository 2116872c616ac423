"""Freed memory goes back to the system once the process grew: in a process of its own, after
bursts such as commands leave (``tests.freed``)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = """
from bot.memory import MemoryReturn, resident_bytes
from tests.freed import burst

returns = MemoryReturn()
kept = burst()
before = resident_bytes()
given = returns()
after = resident_bytes()
idle = returns()
kept += burst()
print(given, before, after, idle, returns())
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"),
                    reason="glibc's malloc_trim and /proc")
def test_freed_memory_goes_back_after_a_burst_not_while_idle() -> None:
    out = subprocess.run(  # noqa: S603 - this very Python, our own script
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, cwd=ROOT,
        check=True, timeout=60).stdout.split()
    given, before, after = out[0] == "True", int(out[1]), int(out[2])
    assert given
    assert before - after > 32 << 20  # of the 56 MiB freed
    assert out[3:] == ["False", "True"]  # nothing grew: nothing done; the next burst: again
