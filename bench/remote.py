"""The RunComfy simulator in a process of its own, as RunComfy is in production: its HTTP
serving and video downloads do not compete with the bot for the bot's core.

Its clock is shared with this process: stopped at 0 until ``clock.start()`` here, then the
seconds since, so that both sides time the same moments.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import time
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from multiprocessing.connection import Connection
from multiprocessing.sharedctypes import Synchronized
from typing import Any

from aiohttp import web

from bot.simulator import Plan, Simulator, SimulatorConfig

TOKEN = "bench-token"  # noqa: S105 - the simulator's, not a secret


class SharedClock:
    """Stopped at 0 until ``start``, then seconds of ``time.monotonic`` since (one clock for
    every process on the machine)."""

    def __init__(self, cell: Synchronized[float] | None = None) -> None:
        self.cell: Synchronized[float] = cell or multiprocessing.get_context("spawn").Value(
            "d", 0.0)

    def start(self) -> None:
        self.cell.value = time.monotonic()

    def __call__(self) -> float:
        started = self.cell.value
        return 0.0 if not started else time.monotonic() - started

    def absolute(self, moment: float) -> float:
        """A moment of this clock as a reading of ``time.monotonic``."""
        return self.cell.value + moment


@dataclass(frozen=True)
class SimulatedJob:
    request_id: str
    started_at: float | None  # the simulator's clock
    run_seconds: float
    status_calls: int
    result_calls: int

    @property
    def completed_at(self) -> float | None:
        return None if self.started_at is None else self.started_at + self.run_seconds


@dataclass
class RemoteSimulator:
    url: str
    clock: SharedClock
    _conn: Connection

    async def jobs(self) -> list[SimulatedJob]:
        """Every job submitted so far, with the calls made about it."""
        self._conn.send("report")
        jobs: list[SimulatedJob] = await asyncio.to_thread(self._conn.recv)
        return jobs


@contextlib.asynccontextmanager
async def simulator_process(config: dict[str, Any], plans: list[Plan] | None = None,
                            ) -> AsyncIterator[RemoteSimulator]:
    """Serve ``SimulatorConfig(**config)`` on 127.0.0.1 from a child process."""
    context = multiprocessing.get_context("spawn")
    clock = SharedClock()
    ours, theirs = context.Pipe()
    process = context.Process(target=_serve, args=(config, plans or [], clock.cell, theirs),
                              daemon=True)
    process.start()
    try:
        port: int = await asyncio.to_thread(ours.recv)
        yield RemoteSimulator(f"http://127.0.0.1:{port}", clock, ours)
    finally:
        ours.send("stop")
        await asyncio.to_thread(process.join, 10)
        if process.is_alive():
            process.kill()


def _serve(config: dict[str, Any], plans: list[Plan], cell: Synchronized[float],
           conn: Connection) -> None:
    asyncio.run(_serve_until_stopped(config, plans, cell, conn))


async def _serve_until_stopped(config: dict[str, Any], plans: list[Plan],
                               cell: Synchronized[float], conn: Connection) -> None:
    simulator = Simulator(SimulatorConfig(**config, token=TOKEN, clock=SharedClock(cell)))
    simulator.plan_next(*plans)
    runner = web.AppRunner(simulator.app(), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    conn.send(runner.addresses[0][1])
    while await asyncio.to_thread(conn.recv) == "report":
        conn.send(_report(simulator))
    await runner.cleanup()


def _report(simulator: Simulator) -> list[SimulatedJob]:
    calls = Counter((c.path.split("/")[3], c.path.rsplit("/", 1)[1])
                    for c in simulator.calls if c.path.startswith("/v1/requests/"))
    return [SimulatedJob(job.request_id, job.started_at, job.run_seconds,
                         calls[job.request_id, "status"], calls[job.request_id, "result"])
            for job in simulator.submits]
