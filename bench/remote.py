"""The RunComfy simulator in a process of its own, as RunComfy is in production: its HTTP
serving and video downloads do not compete with the bot for the bot's core.

Its clock is shared with this process: stopped at 0 until ``clock.start()`` here, then the
seconds since, so that both sides time the same moments.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import math
import multiprocessing
import random
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection
from multiprocessing.sharedctypes import SynchronizedArray
from typing import Any

from aiohttp import web

from bot.simulator import Plan, Simulator, SimulatorConfig
from bot.simulator.queue import SimJob

TOKEN = "bench-token"  # noqa: S105 - the simulator's, not a secret
PAUSE_MS = 5.0


class SharedClock:
    """Stopped at 0 until ``start``, then seconds of ``time.monotonic`` since, less the time it
    was paused (one clock for every process on the machine)."""

    def __init__(self, cells: SynchronizedArray[float] | None = None) -> None:
        # [the reading of time.monotonic at 0 (0: not started), the reading when paused]
        self.cells: SynchronizedArray[float] = cells or multiprocessing.get_context(
            "spawn").Array("d", 2)

    def start(self) -> None:
        with self.cells.get_lock():
            self.cells[0], self.cells[1] = time.monotonic(), 0.0

    def pause(self) -> None:
        """Stop the clock (RunComfy's time stands still: no job starts or ends)."""
        with self.cells.get_lock():
            self.cells[1] = time.monotonic()

    def resume(self) -> None:
        with self.cells.get_lock():
            if self.cells[1]:
                self.cells[0] += time.monotonic() - self.cells[1]
                self.cells[1] = 0.0

    def __call__(self) -> float:
        with self.cells.get_lock():
            started, paused = self.cells[0], self.cells[1]
        if not started:
            return 0.0
        return (paused or time.monotonic()) - started

    def absolute(self, moment: float) -> float:
        """A moment of this clock (since it was last resumed) as a reading of
        ``time.monotonic``."""
        return self.cells[0] + moment


@dataclass(frozen=True)
class RunsByDuration:
    """Run times that follow the requested length of the video, as real video models' do:
    a job asking for ``d`` seconds runs ``median_seconds[d]`` times a lognormal factor of
    ``spread`` (the log's standard deviation), drawn from ``seed`` and the job's prompt (so the
    same job runs as long in every run of a benchmark). The simulator's plans follow the order
    of submits, not what is submitted; this ties a job's plan to its body instead.

    Queue waits are taken in the order of the submits, one each (none once used up). The
    simulator's queue is first in, first out: a job cannot start before the one submitted
    before it, so waits that do not grow with the order would add up to the longest."""

    median_seconds: dict[int, float]
    spread: float
    queue_waits: tuple[float, ...] = ()
    seed: int = 0
    duration_field: str = "duration"

    def plan(self, body: dict[str, Any], index: int, given: Plan) -> Plan:
        seconds = int(body.get(self.duration_field, min(self.median_seconds)))
        draw = random.Random(f"{self.seed}:{body.get('prompt')}")
        run = self.median_seconds[seconds] * math.exp(draw.gauss(0.0, self.spread))
        wait = self.queue_waits[index] if index < len(self.queue_waits) else 0.0
        return Plan(outcome=given.outcome, error=given.error, run_seconds=run,
                    queue_seconds=wait)


@dataclass(frozen=True)
class SimulatedJob:
    request_id: str
    started_at: float | None  # the simulator's clock
    run_seconds: float
    status_calls: int
    result_calls: int
    submitted_at: float = 0.0

    @property
    def completed_at(self) -> float | None:
        return None if self.started_at is None else self.started_at + self.run_seconds


@dataclass
class RemoteSimulator:
    url: str
    clock: SharedClock
    _conn: Connection
    pid: int  # its process's

    async def jobs(self) -> list[SimulatedJob]:
        """Every job submitted so far, with the calls made about it."""
        self._conn.send("report")
        jobs: list[SimulatedJob] = await asyncio.to_thread(self._conn.recv)
        return jobs

    async def pauses(self) -> list[float]:
        """How long each of the simulator's garbage collections of ``PAUSE_MS`` or more took
        (ms): while it collects, it answers no one."""
        self._conn.send("pauses")
        pauses: list[float] = await asyncio.to_thread(self._conn.recv)
        return pauses


@contextlib.asynccontextmanager
async def simulator_process(config: dict[str, Any], plans: list[Plan] | None = None,
                            runs: RunsByDuration | None = None,
                            ) -> AsyncIterator[RemoteSimulator]:
    """Serve ``SimulatorConfig(**config)`` on 127.0.0.1 from a child process; ``runs``: run
    and queue times by what each job asks for (over ``plans``' and the defaults)."""
    context = multiprocessing.get_context("spawn")
    clock = SharedClock()
    ours, theirs = context.Pipe()
    process = context.Process(target=_serve, args=(config, plans or [], clock.cells, theirs,
                                                   runs), daemon=True)
    process.start()
    try:
        port: int = await asyncio.to_thread(ours.recv)
        assert process.pid is not None
        yield RemoteSimulator(f"http://127.0.0.1:{port}", clock, ours, process.pid)
    finally:
        ours.send("stop")
        await asyncio.to_thread(process.join, 10)
        if process.is_alive():
            process.kill()


def _serve(config: dict[str, Any], plans: list[Plan], cells: SynchronizedArray[float],
           conn: Connection, runs: RunsByDuration | None = None) -> None:
    asyncio.run(_serve_until_stopped(config, plans, cells, conn, runs))


async def _serve_until_stopped(config: dict[str, Any], plans: list[Plan],
                               cells: SynchronizedArray[float], conn: Connection,
                               runs: RunsByDuration | None = None) -> None:
    simulator = Simulator(SimulatorConfig(**config, token=TOKEN, clock=SharedClock(cells)))
    simulator.plan_next(*plans)
    if runs is not None:
        add = simulator.queue.add

        def planned(model_id: str, body: dict[str, Any], plan: Plan, cost: float,
                    owner: str = "") -> SimJob:
            return add(model_id, body, runs.plan(body, len(simulator.queue.jobs), plan), cost,
                       owner)

        simulator.queue.add = planned  # type: ignore[method-assign]
    runner = web.AppRunner(simulator.app(), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    pauses = _pauses()
    conn.send(runner.addresses[0][1])
    while (asked := await asyncio.to_thread(conn.recv)) in ("report", "pauses"):
        conn.send(_report(simulator) if asked == "report" else pauses)
    await runner.cleanup()


def _pauses() -> list[float]:
    """The durations of this process's garbage collections of ``PAUSE_MS`` or more, from now
    on (ms)."""
    pauses: list[float] = []
    started = [0.0]

    def timed(phase: str, _info: dict[str, int]) -> None:
        if phase == "start":
            started[0] = time.perf_counter()
        elif (took := (time.perf_counter() - started[0]) * 1000) >= PAUSE_MS:
            pauses.append(took)

    gc.callbacks.append(timed)
    return pauses


def _report(simulator: Simulator) -> list[SimulatedJob]:
    calls = Counter((c.path.split("/")[3], c.path.rsplit("/", 1)[1])
                    for c in simulator.calls if c.path.startswith("/v1/requests/"))
    return [SimulatedJob(job.request_id, job.started_at, job.run_seconds,
                         calls[job.request_id, "status"], calls[job.request_id, "result"],
                         job.submitted_at)
            for job in simulator.submits]


def each_in_a_process(target: Callable[..., None], names: Sequence[str],
                      *args: object) -> dict[str, Any]:
    """``target(name, *args, conn)`` in a spawned process of its own for each name, all at
    once; what each sent back on ``conn``, by name."""
    context = multiprocessing.get_context("spawn")
    running = []
    for name in names:
        ours, theirs = context.Pipe()
        process = context.Process(target=target, args=(name, *args, theirs))
        process.start()
        running.append((name, ours, process))
    results = {name: ours.recv() for name, ours, _ in running}
    for _, _, process in running:
        process.join()
    return results
