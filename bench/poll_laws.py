"""Poll strategies on several run-time laws, each against ``fixed`` in the same run, in
virtual time: the bot's real ``Poller``, ``JobService``, store (SQLite) and RunComfy client,
against the project's RunComfy simulator over HTTP on 127.0.0.1, all on one clock that this
script moves a tick at a time (so a law with minute-long runs takes seconds, not minutes, and
nothing else on the machine changes the figures: they are the poller's decisions alone).

For each law, every strategy gets the same jobs: first a warm-up of ``--warmup`` jobs (the
poller learns run times from the jobs it saw finish, and from nothing else), then
``--jobs`` measured jobs asked for at once, which RunComfy starts after the law's queue waits
(drawn, then given in the order of the submits: the simulator's queue is first in, first
out) and runs for the law's run times. Delivery here is from the moment the simulator
completed a job to the poll that saw it (the channel's work, the same in every strategy, is
``bench.delivery``'s); calls are the status and result calls the simulator counted for each
job.

Targets, each against fixed on the same law in the same run: planned calls per job <= 1.0 x
fixed's (its p95 as low as that allows); economy calls per job <= 0.5 x fixed's.

    .venv/bin/python -m bench.poll_laws [--jobs 200 --warmup 40 --laws narrow,wide,...]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import random
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from aiohttp import web

from bench.harness import percentile
from bot.catalog import load_catalog
from bot.jobs import TERMINAL, Job, JobState, OpenJob
from bot.limits import Limits
from bot.policy import Policy, PolicyStore
from bot.poller import News, Poller, PollSettings
from bot.pricing import PriceBook
from bot.runcomfy import RunComfyClient
from bot.service import JobService, Requester
from bot.simulator import Plan, Simulator, SimulatorConfig
from bot.store.connect import open_database
from bot.store.jobs import JobStore

STRATEGIES = ("planned", "economy", "fixed")
INTERVAL = 3.0
MODEL = "kling-3-0-4k"  # text to video: no image to fetch
TOKEN = "bench-token"  # noqa: S105 - the simulator's own
EPOCH = 1_767_225_600.0
GUILD, CHANNEL, MEMBER = 1 << 22, 77, 1001


@dataclass(frozen=True)
class Law:
    """How long RunComfy runs a job and keeps it queued."""

    name: str
    description: str
    run: Callable[[random.Random], float]
    queue: tuple[float, float]  # seconds, uniform


def lognormal(median: float, spread: float) -> Callable[[random.Random], float]:
    return lambda draw: median * math.exp(draw.gauss(0.0, spread))


def two_humps(first: float, second: float, spread: float) -> Callable[[random.Random], float]:
    return lambda draw: (first if draw.random() < 0.5 else second) * math.exp(
        draw.gauss(0.0, spread))


def skewed(least: float, mean_over: float) -> Callable[[random.Random], float]:
    return lambda draw: least + draw.expovariate(1 / mean_over)


LAWS = {law.name: law for law in (
    Law("narrow", "30 s, lognormal 5 %, queued 0-10 s", lognormal(30, 0.05), (0, 10)),
    Law("project", "30 s, lognormal 12 %, queued 2-20 s", lognormal(30, 0.12), (2, 20)),
    Law("wide", "40 s, lognormal 40 %, queued 0-60 s", lognormal(40, 0.40), (0, 60)),
    Law("skewed", "15 s + exponential of mean 20 s, queued 0-30 s", skewed(15, 20), (0, 30)),
    Law("two-humped", "25 s or 70 s (half each), 8 % each, queued 0-60 s",
        two_humps(25, 70, 0.08), (0, 60)),
    Law("short", "10 s, lognormal 25 %, not queued", lognormal(10, 0.25), (0, 0)),
)}


class VirtualTime:
    """One clock for the simulator, the store and the poller, moved by this script."""

    def __init__(self) -> None:
        self.now = 0.0

    def monotonic(self) -> float:
        return self.now

    def wall(self) -> float:
        return EPOCH + self.now


class Delivering:
    """Discord's side as far as the poller knows it: a fetched job is posted at once (moved
    to delivered), and the moment a poll saw it is noted."""

    def __init__(self, store: JobStore, clock: VirtualTime) -> None:
        self.store = store
        self.clock = clock
        self.seen: dict[int, float] = {}
        self.ended: set[int] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    def update(self, job: Job | OpenJob, news: News | None = None) -> None:
        if job.state is JobState.FETCHED and job.id not in self.seen:
            self.seen[job.id] = self.clock.now
            task = asyncio.create_task(self._post(job.id))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        elif job.state in TERMINAL:
            self.ended.add(job.id)

    def shows_stale(self, job: Job | OpenJob) -> bool:
        return job.state is JobState.FETCHED and job.id not in self.seen

    async def stop(self) -> None:
        await asyncio.gather(*self._tasks)

    async def _post(self, job_id: int) -> None:
        if await self.store.move(job_id, JobState.DELIVERING, only_from={JobState.FETCHED}):
            await self.store.move(job_id, JobState.DELIVERED)
        self.ended.add(job_id)


@dataclass
class Outcome:
    strategy: str
    jobs: int = 0
    seen: int = 0
    calls: list[int] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)


def draws(law: Law, count: int, seed: int) -> list[tuple[float, float]]:
    """(run seconds, queue seconds) per job, the waits in the order of the submits."""
    draw = random.Random(f"{law.name}:{seed}")
    runs = [law.run(draw) for _ in range(count)]
    low, high = law.queue
    waits = sorted(draw.uniform(low, high) for _ in range(count))
    return list(zip(runs, waits, strict=True))


async def run(strategy: str, warmup: list[tuple[float, float]],
              measured: list[tuple[float, float]], directory: Path) -> Outcome:
    """One strategy on one law's jobs: a world of its own, on its own virtual clock."""
    clock = VirtualTime()
    sim = Simulator(SimulatorConfig(token=TOKEN, workers=10 * len(measured),
                                    clock=clock.monotonic))
    runner = web.AppRunner(sim.app())
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    url = f"http://127.0.0.1:{runner.addresses[0][1]}"
    db = await open_database(directory / f"{strategy}.sqlite", clock=clock.wall)
    store = JobStore(db, clock=clock.wall)
    catalog = load_catalog()
    model = catalog.by_command(MODEL)
    channels = Delivering(store, clock)
    outcome = Outcome(strategy, jobs=len(measured))
    async with RunComfyClient(TOKEN, url) as client:
        poller = Poller(catalog, store, client, channels,
                        PollSettings(interval=INTERVAL, strategy=strategy),  # type: ignore[arg-type]
                        clock=clock.wall, monotonic=clock.monotonic)
        limits = Limits(db, PolicyStore(db, Policy(max_concurrent=0), clock.wall), clock.wall)
        service = JobService(catalog, store, client, limits, PriceBook(catalog, {}),
                             poller.notify, clock=clock.wall)
        await poller.recover()
        requester = Requester(GUILD, CHANNEL, MEMBER)

        async def ask(jobs: list[tuple[float, float]], tag: str) -> list[Job]:
            asked = []
            for index, (seconds, wait) in enumerate(jobs):
                sim.plan_next(Plan(run_seconds=seconds, queue_seconds=wait))
                asked.append(await service.start(
                    model, {"prompt": f"{tag} {index}", "duration": 5}, requester))
            return asked

        async def until_ended(jobs: list[Job]) -> None:
            ids = {job.id for job in jobs}
            limit = clock.now + 3600
            while not ids <= channels.ended:
                assert clock.now < limit, "jobs left after an hour of virtual time"
                clock.now += poller.tick_seconds
                await poller.tick()
                await asyncio.sleep(0)

        await until_ended(await ask(warmup, "warm-up"))
        jobs = await ask(measured, "job")
        await until_ended(jobs)
        await channels.stop()
        for job in jobs:
            assert job.request_id is not None
            made = sim.queue.jobs[job.request_id]
            outcome.calls.append(len(sim.calls_to(f"/{job.request_id}/")))
            if job.id in channels.seen and made.started_at is not None:
                outcome.seen += 1
                outcome.latencies.append(channels.seen[job.id]
                                         - (made.started_at + made.run_seconds))
        await poller.stop()
    await db.close()
    await runner.cleanup()
    return outcome


async def measure(law: Law, jobs: int, warmup: int, seed: int,
                  strategies: tuple[str, ...]) -> dict[str, Outcome]:
    warm, measured = draws(law, warmup, seed), draws(law, jobs, seed + 1)
    with tempfile.TemporaryDirectory() as directory:
        return {strategy: await run(strategy, warm, measured, Path(directory))
                for strategy in strategies}


def report(law: Law, outcomes: dict[str, Outcome], took: float) -> list[str]:
    """The law's rows (also printed); ratios against fixed on the same jobs."""
    fixed = outcomes.get("fixed")
    lines = []
    for name, outcome in outcomes.items():
        calls = statistics.mean(outcome.calls)
        p50 = statistics.median(outcome.latencies)
        p95 = percentile(outcome.latencies, 0.95)
        ratios = ""
        if fixed is not None and name != "fixed":
            fixed_calls = statistics.mean(fixed.calls)
            target = {"planned": 1.0, "economy": 0.5}.get(name)
            met = "" if target is None else (
                f" (<= {target:g}: {'met' if calls / fixed_calls <= target else 'NOT MET'})")
            ratios = (f"{calls / fixed_calls:6.2f}{met:>16}"
                      f"{p50 / statistics.median(fixed.latencies):7.2f}"
                      f"{p95 / percentile(fixed.latencies, 0.95):7.2f}")
        lines.append(f"{law.name:<11}{name:<9}{outcome.seen:>4}/{outcome.jobs:<4}{calls:7.2f}"
                     f"{p50:7.2f}{p95:7.2f}{max(outcome.latencies):7.2f}   {ratios}")
    lines.append(f"{'':<11}({law.description}; {took:.0f} s)")
    return lines


def main(laws: tuple[str, ...], jobs: int, warmup: int, seed: int,
         strategies: tuple[str, ...]) -> None:
    print(f"{jobs} jobs per law after a warm-up of {warmup}, poll interval {INTERVAL:g} s, "
          "virtual time; calls: status + result per job, mean; latency: completed -> seen "
          "by a poll (s)", flush=True)
    print(f"{'law':<11}{'strategy':<9}{'seen':>9}{'calls':>7}{'p50':>7}{'p95':>7}{'max':>7}"
          f"   {'calls/fixed':>11}{'':>16}{'p50/f':>7}{'p95/f':>7}", flush=True)
    for name in laws:
        started = time.monotonic()
        outcomes = asyncio.run(measure(LAWS[name], jobs, warmup, seed, strategies))
        for line in report(LAWS[name], outcomes, time.monotonic() - started):
            print(line, flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--jobs", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=40, help="finished jobs before measuring")
    parser.add_argument("--laws", default=",".join(LAWS))
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--strategies", default=",".join(STRATEGIES))
    arguments = parser.parse_args()
    with contextlib.suppress(KeyboardInterrupt):
        main(tuple(arguments.laws.split(",")), arguments.jobs, arguments.warmup,
             arguments.seed, tuple(arguments.strategies.split(",")))
