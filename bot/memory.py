"""Memory the process freed, handed back to the system. CPython frees larger objects (over
512 bytes: messages' payloads, HTTP buffers, rows) with ``free``, and glibc keeps the freed
pages for reuse unless asked to return them: after a burst of commands a long-running bot held
its peak, 6 to 8 KiB of RSS per pending job where the jobs' own objects hold 0.8
(bench/README.md)."""

from __future__ import annotations

import ctypes
from collections.abc import Callable

GIVE_BACK_SECONDS = 5.0  # how often a running bot gives freed memory back (0.1 to 0.3 ms each)


def _malloc_trim() -> Callable[[int], int] | None:
    try:
        trim = ctypes.CDLL(None).malloc_trim
    except (AttributeError, OSError):  # not glibc (musl, macOS): nothing to ask
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return trim


_TRIM = _malloc_trim()


def give_back() -> bool:
    """Return the C heap's free pages to the system (``malloc_trim(0)``: every arena, not only
    its top); whether any were returned."""
    return _TRIM is not None and _TRIM(0) == 1
