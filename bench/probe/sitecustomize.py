"""Loaded at start-up by a bot process that ``bench.scale --diagnose`` starts (this folder first
on its ``PYTHONPATH``): signals to look inside it while it runs, written to
``$BENCH_PROBE_DIR``. Never on the path of a measured run.

- SIGUSR1: ``modules-<n>.txt`` (``sys.modules``, one a line), ``objects-<n>.txt`` (live
  objects the collector tracks, by type, and the event loop's tasks, by coroutine) and, when
  tracemalloc traces (``BENCH_PROBE_TRACEMALLOC=<frames>``), ``snapshot-<n>.pickle``; then
  the same after ``gc.collect()`` (``-gc``), and ``rss-<n>.txt``: VmRSS (KiB) before, the
  objects collected, VmRSS after (with ``BENCH_PROBE_COLLECT_ONLY=1``: only that);
- SIGUSR2: start cProfile of the main thread (the event loop; its CPU time); again: stop it
  and write ``profile-<n>.pstats``.
"""

from __future__ import annotations

import asyncio
import cProfile
import gc
import os
import signal
import sys
import time
import tracemalloc
from collections import Counter
from pathlib import Path
from types import FrameType

OUT = Path(os.environ.get("BENCH_PROBE_DIR", "."))
_FRAMES = int(os.environ.get("BENCH_PROBE_TRACEMALLOC", "0"))
_state: dict[str, object] = {"dumps": 0, "profile": None, "profiles": 0}

if _FRAMES:
    tracemalloc.start(_FRAMES)


def _objects(path: Path) -> None:
    kinds = Counter(f"{type(o).__module__}.{type(o).__qualname__}" for o in gc.get_objects())
    try:
        tasks = asyncio.all_tasks(asyncio.get_running_loop())
    except RuntimeError:
        tasks = set()
    kinds.update(f"task: {getattr(t.get_coro(), '__qualname__', '?')}" for t in tasks)
    for holder in gc.get_objects():  # who holds byte strings (not tracked by gc themselves)
        for held in gc.get_referents(holder):
            if type(held) in (bytes, bytearray, memoryview) and len(held) >= 64:
                where = type(holder).__qualname__
                if isinstance(holder, dict):
                    where += "[" + ",".join(str(k)[:30] for k, v in holder.items()
                                            if v is held)[:60] + "]"
                kinds[f"bytes held by {where} (bytes)"] += len(held)
    path.write_text("".join(f"{count}\t{kind}\n" for kind, count in kinds.most_common()))


def _rss_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def _dump(signum: int, frame: FrameType | None) -> None:
    """Everything twice: as it is, then after a full collection of the garbage (``-gc``)."""
    number = int(str(_state["dumps"])) + 1
    _state["dumps"] = number
    if os.environ.get("BENCH_PROBE_COLLECT_ONLY"):  # nothing allocated before the RSS is read
        before = _rss_kib()
        collected = gc.collect()
        (OUT / f"rss-{number}.txt").write_text(f"{before} {collected} {_rss_kib()}\n")
        (OUT / f"done-{number}").touch()
        return
    (OUT / f"modules-{number}.txt").write_text("\n".join(sorted(sys.modules)) + "\n")
    rss = [_rss_kib()]
    for suffix in ("", "-gc"):
        if suffix:
            rss.append(gc.collect())
            rss.append(_rss_kib())
        _objects(OUT / f"objects-{number}{suffix}.txt")
        if tracemalloc.is_tracing():
            tracemalloc.take_snapshot().dump(str(OUT / f"snapshot-{number}{suffix}.pickle"))
    (OUT / f"rss-{number}.txt").write_text(" ".join(map(str, rss)) + "\n")
    (OUT / f"done-{number}").touch()


def _profile(signum: int, frame: FrameType | None) -> None:
    running = _state["profile"]
    if isinstance(running, cProfile.Profile):
        running.disable()
        number = int(str(_state["profiles"])) + 1
        _state["profiles"] = number
        running.dump_stats(str(OUT / f"profile-{number}.pstats"))
        _state["profile"] = None
        (OUT / f"profile-done-{number}").touch()
        return
    profile = cProfile.Profile(time.thread_time)  # CPU of the loop's thread, not waits
    _state["profile"] = profile
    profile.enable()


signal.signal(signal.SIGUSR1, _dump)
signal.signal(signal.SIGUSR2, _profile)
