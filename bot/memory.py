"""Memory the process freed, handed back to the system. CPython frees larger objects (over
512 bytes: messages' payloads, HTTP buffers, rows) with ``free``, and glibc keeps the freed
pages for reuse unless asked to return them: after a burst of commands a long-running bot held
its peak, 6 to 8 KiB of RSS per pending job where the jobs' own objects hold 0.8
(bench/README.md)."""

from __future__ import annotations

import ctypes
import os
from collections.abc import Callable

GIVE_BACK_SECONDS = 5.0  # how often the poll loop looks at the process's size (a read of /proc)
GROWTH = 64 << 10  # bytes it must have grown by since it last gave memory back


def _malloc_trim() -> Callable[[int], int] | None:
    try:
        trim = ctypes.CDLL(None).malloc_trim
    except (AttributeError, OSError):  # not glibc (musl, macOS): nothing to ask
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return trim


_TRIM = _malloc_trim()


def resident_bytes() -> int:
    """The process's RSS (Linux's ``/proc``; 0 elsewhere)."""
    try:
        with open("/proc/self/statm", "rb") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        return 0


class MemoryReturn:
    """Gives freed memory back once the process has grown by ``GROWTH`` bytes since it last
    did: after a burst, not while it idles (a trim takes 0.1 to 0.3 ms in a bot process)."""

    def __init__(self) -> None:
        self._after = 0  # RSS after the last give-back

    def __call__(self) -> bool:
        """Whether memory was given back now: the C heap's free pages (``malloc_trim(0)``:
        every arena, not only its top)."""
        if _TRIM is None or resident_bytes() - self._after < GROWTH:
            return False
        given = _TRIM(0) == 1
        self._after = resident_bytes()
        return given
