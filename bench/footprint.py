"""Footprint: memory and CPU of the bot with 500 jobs pending, poll strategy "planned" (the
default) against "fixed" (every poll interval, the reference), side by side (targets: peak RSS
<= 1.2 x fixed's, CPU <= 1.0 x fixed's).

Each strategy runs in a process of its own, at the same time, each with its own simulator
(``bench.remote``): the bot's store, RunComfy client and poller, as in the bot, without
Discord (cards are not sent; a finished job stays fetched), so that the process measured is
the bot's own work and not SimCord's. RunComfy runs jobs as in ``bench.delivery``: a 5 s
video about 30 s, a 10 s video about 52 s (lognormal, 12 %). The store holds what a running
bot would have learned: the last 40 delivered jobs of each length, run times drawn from the
same law. Then 500 jobs are pending (half of each length; they leave RunComfy's queue over
the first minute) and are kept at 500: each job that finishes is replaced by a new one (one
submit and one new row, as a command would), so the mix of ages is that of a busy bot. After
a ramp of ``--ramp`` seconds, the process's CPU time and peak RSS are measured over
``--seconds`` seconds.

    .venv/bin/python -m bench.footprint [--jobs 500 --seconds 60 --ramp 30]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
import timeit
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, cast

from bench.delivery import RUN_SECONDS, SPREAD
from bench.harness import polling
from bench.remote import TOKEN, RunsByDuration, each_in_a_process, simulator_process
from bot.catalog import load_catalog
from bot.jobs import Job, JobState
from bot.poller import Poller, PollSettings, PollStrategy
from bot.runcomfy import RunComfyClient
from bot.simulator import Plan
from bot.store.connect import open_database
from bot.store.jobs import JobStore, NewJob

STRATEGIES = ("planned", "fixed")
INTERVAL = 3.0
HISTORY = 40  # delivered jobs of each length in the store (the bot keeps the last 40)


def rss_mb() -> float:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


@dataclass
class Footprint:
    strategy: str
    rss_start: float = 0.0  # MB, the bot set up, before the jobs
    rss_peak: float = 0.0  # MB, while measured
    cpu: float = 0.0  # % of one core, while measured
    pending: list[int] = field(default_factory=list)  # sampled while measured
    calls: int = 0  # status and result calls while measured
    finished: int = 0  # jobs finished (and replaced) while measured
    seconds: float = 0.0
    gap_us: float = 0.0  # one plan of a running job's next poll, microseconds


class NoChannels:
    """The poller's channels, doing nothing: only the poller is measured here."""

    def update(self, job: Job, news: str | None = None) -> None:
        return None

    def shows_stale(self, job: Job) -> bool:
        return True

    async def stop(self) -> None:
        return None


class Pending:
    """Keeps ``target`` jobs pending: the bot's store and RunComfy, as a command does."""

    def __init__(self, store: JobStore, client: RunComfyClient, target: int) -> None:
        self.store = store
        self.client = client
        self.target = target
        self.model = load_catalog().by_command("kling-2-1")
        self.added = 0
        self.finished = 0

    async def add(self, count: int) -> None:
        assert self.model is not None
        for _ in range(count):
            index = self.added
            self.added += 1
            seconds = 5 if index % 2 else 10
            prompt = f"pending {index}"
            body = {"prompt": prompt, "image_url": "https://cdn.example/z.png",
                    "duration": seconds}
            submitted = await self.client.submit(self.model.id, body)
            job = await self.store.add(NewJob(1, index % 100, 2, self.model.id,
                                              self.model.command, prompt, body, None,
                                              seconds=seconds))
            await self.store.move(job.id, JobState.SUBMITTING)
            await self.store.move(job.id, JobState.QUEUED, request_id=submitted.request_id,
                                  submitted_at=self.store.clock())
            await self.store.note(job.id, card_message_id=1)

    async def keep(self) -> None:
        while True:
            missing = self.target - (self.added - self.finished)
            if missing > 0:
                await self.add(missing)
            await asyncio.sleep(0.25)


async def learned(store: JobStore, runs: RunsByDuration) -> None:
    """The last ``HISTORY`` delivered jobs of each length, as the bot would have stored them."""
    model = load_catalog().by_command("kling-2-1")
    assert model is not None
    now = store.clock()
    for index in range(2 * HISTORY):
        seconds = 5 if index % 2 else 10
        prompt = f"history {index}"
        body = {"prompt": prompt, "image_url": "https://cdn.example/z.png", "duration": seconds}
        took = runs.plan(body, 10**9, Plan()).run_seconds or 0.0
        job = await store.add(NewJob(1, 1, 2, model.id, model.command, prompt, body, None,
                                     seconds=seconds))
        ended = now - 3600 + index * 10
        await store.db.write("UPDATE jobs SET state = ?, started_at = ?, finished_at = ? "
                               "WHERE id = ?", JobState.DELIVERED.value, ended - took, ended,
                               job.id)


async def measure(strategy: str, jobs: int, seconds: float, ramp: float) -> Footprint:
    out = Footprint(strategy)
    runs = RunsByDuration(RUN_SECONDS, SPREAD, tuple(2 + 58 * i / (jobs - 1)
                                                     for i in range(jobs)), seed=8)
    async with simulator_process({"workers": 10 * jobs}, runs=runs) as sim:
        with tempfile.TemporaryDirectory() as folder:
            db = await open_database(Path(folder) / "footprint.sqlite3")
            store = JobStore(db)
            async with RunComfyClient(TOKEN, sim.url) as client:
                await learned(store, runs)
                poller = Poller(load_catalog(), store, client, NoChannels(),
                                PollSettings(interval=INTERVAL,
                                             strategy=cast(PollStrategy, strategy)))
                calls = [0]
                for name in ("status", "result"):
                    setattr(client, name, counted(getattr(client, name), calls))
                pending = Pending(store, client, jobs)
                move = store.move

                async def noting(job_id: int, to: JobState, **kwargs: Any) -> Job | None:
                    moved = await move(job_id, to, **kwargs)
                    if moved is not None and to is JobState.FETCHED:
                        pending.finished += 1
                    return moved

                store.move = noting  # type: ignore[method-assign]
                out.rss_start = rss_mb()
                sim.clock.start()
                await pending.add(jobs)
                keeper = asyncio.create_task(pending.keep())
                async with polling(poller):
                    await asyncio.sleep(ramp)
                    cpu, wall, first_calls, first_done = (time.process_time(),
                                                          time.perf_counter(), calls[0],
                                                          pending.finished)
                    peak = rss_mb()
                    end = wall + seconds
                    while time.perf_counter() < end:
                        await asyncio.sleep(0.5)
                        peak = max(peak, rss_mb())
                        out.pending.append(pending.added - pending.finished)
                    out.seconds = time.perf_counter() - wall
                    out.cpu = (time.process_time() - cpu) / out.seconds * 100
                    out.rss_peak = peak
                    out.calls = calls[0] - first_calls
                    out.finished = pending.finished - first_done
                    running = [j for j in poller._waiting.values()
                               if j.state is JobState.RUNNING]
                    if running:
                        job = running[0]
                        out.gap_us = timeit.timeit(lambda: poller._gap(job),
                                                   number=2000) / 2000 * 1e6
                keeper.cancel()
            await db.close()
    return out


def counted(call: Any, calls: list[int]) -> Any:
    async def counting(*args: Any, **kwargs: Any) -> Any:
        calls[0] += 1
        return await call(*args, **kwargs)
    return counting


def _child(strategy: str, jobs: int, seconds: float, ramp: float, conn: Connection) -> None:
    conn.send(asyncio.run(measure(strategy, jobs, seconds, ramp)))


def side_by_side(jobs: int, seconds: float, ramp: float) -> dict[str, Footprint]:
    return each_in_a_process(_child, STRATEGIES, jobs, seconds, ramp)


def main(jobs: int, seconds: float, ramp: float) -> None:
    print(f"{jobs} jobs pending (kept there), RunComfy runs {RUN_SECONDS[5]:g} / "
          f"{RUN_SECONDS[10]:g} s (lognormal {SPREAD:.0%}), poll interval {INTERVAL:g} s; the "
          f"bot alone (store, client, poller), a process per strategy, side by side; measured "
          f"{seconds:g} s after {ramp:g} s", flush=True)
    results = side_by_side(jobs, seconds, ramp)
    planned, fixed = results["planned"], results["fixed"]
    print(f"{'figure':<48}{'planned':>10}{'fixed':>10}{'ratio':>8}{'target':>9}{'':>9}")
    rows: list[tuple[str, float, float, str, float | None]] = [
        ("peak RSS (MB)", planned.rss_peak, fixed.rss_peak, ".0f", 1.2),
        ("average CPU (% of a core)", planned.cpu, fixed.cpu, ".1f", 1.0),
        ("RSS before the jobs (MB)", planned.rss_start, fixed.rss_start, ".0f", None),
        ("jobs pending, mean", statistics.mean(planned.pending), statistics.mean(fixed.pending),
         ".0f", None),
        ("status + result calls a second", planned.calls / planned.seconds,
         fixed.calls / fixed.seconds, ".1f", None),
        ("jobs finished a second", planned.finished / planned.seconds,
         fixed.finished / fixed.seconds, ".1f", None),
        ("planning one poll of a running job (us)", planned.gap_us, fixed.gap_us, ".1f", None),
    ]
    for label, ours, theirs, spec, target in rows:
        ratio = ours / theirs if theirs else float("nan")
        verdict = "" if target is None else ("met" if ratio <= target else "NOT MET")
        print(f"{label:<48}{ours:>10{spec}}{theirs:>10{spec}}{ratio:>8.2f}"
              f"{'' if target is None else f'<= {target:g}':>9}{verdict:>9}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--jobs", type=int, default=500)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--ramp", type=float, default=30)
    arguments = parser.parse_args()
    main(arguments.jobs, arguments.seconds, arguments.ramp)
