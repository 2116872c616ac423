"""Footprint: memory and CPU of the bot with 500 jobs pending, poll strategy "planned" (the
default) against "fixed" (every poll interval, the reference), side by side (targets: peak RSS
<= 1.2 x fixed's, CPU <= 1.0 x fixed's); and "planned" with its metrics on against the same
with them off, in the same run (targets: peak RSS and CPU <= 1.05 x off's).

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

Metrics on is what the bot wires with ``[ops] listen`` set: the store's and the RunComfy
client's hooks into ``bot.metrics.Metrics``, its scrape-time gauges, the ``/healthz``,
``/readyz`` and ``/metrics`` endpoints with the event loop's lag sampled every 0.5 s; and a
Prometheus scraping ``/metrics`` every ``SCRAPE_EVERY`` seconds and a health check asking
``/readyz`` every ``HEALTH_EVERY`` (their client side runs in the process measured: counted
against the metrics). Off: none of it. Every process imports the same modules (the endpoints'
bring discord.py, as the bot has it), so the difference is the metrics' work alone.

    .venv/bin/python -m bench.footprint [--jobs 500 --seconds 60 --ramp 30]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import socket
import statistics
import tempfile
import time
import timeit
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, cast

import aiohttp
from prometheus_client import Counter

from bench.delivery import RUN_SECONDS, SPREAD
from bench.harness import polling
from bench.remote import TOKEN, RunsByDuration, each_in_a_process, simulator_process
from bot.catalog import load_catalog
from bot.discord.ops import LAG_EVERY, Ops
from bot.discord.poll_loop import PollLoop
from bot.jobs import Job, JobState, OpenJob
from bot.metrics import Metrics
from bot.poller import News, Poller, PollSettings, PollStrategy
from bot.runcomfy import RunComfyClient
from bot.simulator import Plan
from bot.store.connect import open_database
from bot.store.database import Database
from bot.store.jobs import JobStore, NewJob

STRATEGIES = ("planned", "fixed")
METRICS_ON = "planned+metrics"  # planned with the metrics on; "planned" has them off
SCRAPE_EVERY = 5.0  # seconds; Prometheus' default is 15 s
HEALTH_EVERY = 30.0  # the Docker image's HEALTHCHECK interval
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
    scrapes: int = 0  # /metrics answered while measured (metrics on)
    exposition_kb: float = 0.0  # the last /metrics answer's size
    unit_cpu: float = 0.0  # % of a core: the metrics' work, its counts times its unit costs
    units: dict[str, float] = field(default_factory=dict)  # microseconds of CPU, one of each


class NoChannels:
    """The poller's channels, doing nothing: only the poller is measured here."""

    def update(self, job: Job | OpenJob, news: News | None = None) -> None:
        return None

    def shows_stale(self, job: Job | OpenJob) -> bool:
        return False

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


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class MetricsOn:
    metrics: Metrics
    ops: Ops
    scraper: asyncio.Task[None]
    listen: str

    def hooked(self) -> tuple[float, float]:
        """How many RunComfy calls and job moves the hooks have counted."""
        def total(counter: Counter) -> float:
            return float(sum(s.value for f in counter.collect() for s in f.samples
                             if s.name.endswith("_total")))
        return total(self.metrics.runcomfy_calls), total(self.metrics.jobs)

    async def unit_cpu(self, calls: float, moves: float, scrapes: int, seconds: float,
                       job: Job, out: Footprint) -> None:
        """The metrics' work over ``seconds`` (% of a core), from what it counted and the CPU
        time of one of each: a RunComfy call's hook, a move's, a scrape (both ends) and a
        sample of the loop's lag (a wake-up and an observation). Timed once the poller and
        the scraper stopped (the process's CPU time would count their work too)."""
        self.scraper.cancel()
        each = 2000
        call = timeit.timeit(lambda: self.metrics.runcomfy_call("status", "ok", 0.1),
                             number=each) / each
        move = timeit.timeit(lambda: self.metrics.job_moved(job), number=each) / each
        started = time.process_time()
        async with aiohttp.ClientSession() as session:
            for _ in range(20):
                async with session.get(f"http://{self.listen}/metrics") as answer:
                    await answer.read()
        scrape = (time.process_time() - started) / 20
        started = time.process_time()
        for _ in range(each):
            before = time.monotonic()
            await asyncio.sleep(0)
            self.metrics.loop_lag.observe(max(time.monotonic() - before, 0.0))
        lag = (time.process_time() - started) / each
        work = calls * call + moves * move + scrapes * scrape + seconds / LAG_EVERY * lag
        out.unit_cpu = work / seconds * 100
        out.units = {"RunComfy call": call * 1e6, "job move": move * 1e6,
                     "scrape": scrape * 1e6, "lag sample": lag * 1e6}


async def metrics_on(store: JobStore, client: RunComfyClient, poller: Poller, db: Database,
                     out: Footprint) -> MetricsOn:
    """Wire the metrics as the bot does (``VideoBot.setup_hook``), serve the endpoints, and
    scrape them as Prometheus and the health check would."""
    metrics = Metrics()
    store.on_move = metrics.job_moved
    client.observe = metrics.runcomfy_call
    metrics.waiting.set_function(lambda: poller.kept()["waiting"])
    metrics.shards.set_function(lambda: 1)
    metrics.leases.set_function(lambda: store.leases)
    listen = f"127.0.0.1:{free_port()}"
    ops = Ops(listen, metrics, lambda: True, db, PollLoop(poller))
    await ops.start()

    async def scrape() -> None:
        async with aiohttp.ClientSession() as session:
            for beat in itertools.count(1):
                await asyncio.sleep(SCRAPE_EVERY)
                async with session.get(f"http://{listen}/metrics") as answer:
                    body = await answer.read()
                    out.scrapes += 1
                    out.exposition_kb = len(body) / 1024
                if beat % round(HEALTH_EVERY / SCRAPE_EVERY) == 0:
                    async with session.get(f"http://{listen}/readyz") as answer:
                        await answer.read()

    return MetricsOn(metrics, ops, asyncio.create_task(scrape(), name="scraper"), listen)


async def measure(variant: str, jobs: int, seconds: float, ramp: float) -> Footprint:
    out = Footprint(variant)
    strategy = variant.split("+")[0]
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
                on = (await metrics_on(store, client, poller, db, out)
                      if variant == METRICS_ON else None)
                out.rss_start = rss_mb()
                sim.clock.start()
                await pending.add(jobs)
                keeper = asyncio.create_task(pending.keep())
                async with polling(poller):
                    await asyncio.sleep(ramp)
                    cpu, wall, first_calls, first_done = (time.process_time(),
                                                          time.perf_counter(), calls[0],
                                                          pending.finished)
                    first_scrapes, first_hooked = out.scrapes, on.hooked() if on else (0, 0)
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
                    out.scrapes -= first_scrapes
                    hooked = on.hooked() if on else (0, 0)
                    job = None
                    running = [j for j in poller._waiting.values()
                               if j.state is JobState.RUNNING]
                    if running:
                        job = running[0]
                        out.gap_us = timeit.timeit(lambda: poller._gap(job),
                                                   number=2000) / 2000 * 1e6
                keeper.cancel()
                if on is not None:
                    whole = None if job is None else await store.get(job.id)
                    if whole is not None:
                        await on.unit_cpu(hooked[0] - first_hooked[0],
                                          hooked[1] - first_hooked[1], out.scrapes,
                                          out.seconds, whole, out)
                    on.scraper.cancel()
                    await on.ops.stop()
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
    return each_in_a_process(_child, (*STRATEGIES, METRICS_ON), jobs, seconds, ramp)


def table(ours: Footprint, theirs: Footprint,
          rows: list[tuple[str, float, float, str, float | None]]) -> None:
    print(f"{'figure':<48}{ours.strategy:>16}{theirs.strategy:>10}{'ratio':>8}{'target':>9}")
    for label, mine, reference, spec, target in rows:
        ratio = mine / reference if reference else float("nan")
        verdict = "" if target is None else ("met" if ratio <= target else "NOT MET")
        print(f"{label:<48}{mine:>16{spec}}{reference:>10{spec}}{ratio:>8.2f}"
              f"{'' if target is None else f'<= {target:g}':>9}{verdict:>9}")


def main(jobs: int, seconds: float, ramp: float) -> None:
    print(f"{jobs} jobs pending (kept there), RunComfy runs {RUN_SECONDS[5]:g} / "
          f"{RUN_SECONDS[10]:g} s (lognormal {SPREAD:.0%}), poll interval {INTERVAL:g} s; the "
          f"bot alone (store, client, poller), a process per strategy, side by side; measured "
          f"{seconds:g} s after {ramp:g} s; and planned with its metrics on (scraped every "
          f"{SCRAPE_EVERY:g} s) against planned with them off", flush=True)
    results = side_by_side(jobs, seconds, ramp)
    planned, fixed, measured = results["planned"], results["fixed"], results[METRICS_ON]
    table(planned, fixed, [
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
    ])
    print()
    table(measured, planned, [
        ("peak RSS (MB)", measured.rss_peak, planned.rss_peak, ".1f", 1.05),
        ("average CPU (% of a core)", measured.cpu, planned.cpu, ".2f", 1.05),
        ("RSS before the jobs (MB)", measured.rss_start, planned.rss_start, ".1f", None),
        ("status + result calls a second", measured.calls / measured.seconds,
         planned.calls / planned.seconds, ".1f", None),
        ("jobs finished a second", measured.finished / measured.seconds,
         planned.finished / planned.seconds, ".1f", None),
        ("/metrics scrapes answered", measured.scrapes, planned.scrapes, ".0f", None),
        ("/metrics answer (KiB)", measured.exposition_kb, planned.exposition_kb, ".1f", None),
    ])
    units = ", ".join(f"{name} {us:.1f} us" for name, us in measured.units.items())
    print(f"the metrics' own work, its counts times its unit costs: {measured.unit_cpu:.3f} % "
          f"of a core, {1 + measured.unit_cpu / planned.cpu:.3f} x off's CPU ({units})")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--jobs", type=int, default=500)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--ramp", type=float, default=30)
    arguments = parser.parse_args()
    main(arguments.jobs, arguments.seconds, arguments.ramp)
