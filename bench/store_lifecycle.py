"""Job lifecycles a second through the store, on SQLite and on PostgreSQL side by side.

A lifecycle is everything the bot writes for one video, done through the store as the service,
the poller and the channel's worker do it (no RunComfy, no Discord):

- the admission, as ``JobService.start``: one transaction that locks the guild, runs
  ``Limits.check`` (the guild's stored policy, with a daily quota and a monthly budget, the
  member's standing and the month's spending) and writes the job down with ``JobStore.add``;
- five moves: submitting, queued (with its request id), running, fetched (with its cost),
  delivering;
- the last move, to delivered, which adds the job to the usage rollup in the same transaction.

Measured with one coroutine (one guild) and with 32 at once (8 guilds, 4 each); each coroutine
goes round members of its own, so that no member has more than 20 videos today (under the
daily quota of 25) nor more than one in progress. At the end the usage rollup must count
exactly the lifecycles done (and their cost).

SQLite is a file in a temporary folder; PostgreSQL a throwaway server in a temporary folder on
the same disk (``tests.postgres_server``: fsync and synchronous_commit off; SQLite's WAL with
synchronous=NORMAL does not wait for the disk at commit either). The table also gives this
process's CPU and the cores that other processes kept busy meanwhile: on a shared machine, a
figure is fair only when that is near 0.

    .venv/bin/python -m bench.store_lifecycle [--lifecycles 2000] [--backend both]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import os
import statistics
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from bot.catalog import load_catalog
from bot.jobs import Job, JobState
from bot.limits import Limits
from bot.policy import Policy, PolicyStore
from bot.pricing import estimate_usd, price_options
from bot.service import Requester
from bot.store.connect import open_database
from bot.store.database import Database
from bot.store.jobs import JobStore, NewJob
from tests.postgres_server import PostgresServer, postgres_server

Backend = Literal["sqlite", "postgresql"]
BACKENDS: tuple[Backend, ...] = ("sqlite", "postgresql")
CONCURRENCY = ((1, 1), (32, 8))  # coroutines, guilds
DAILY_QUOTA = 25
PER_MEMBER = 20  # lifecycles a member has at most: under the quota
MONTHLY_BUDGET_USD = 1_000_000.0
COST_USD = 0.42
MODEL = load_catalog().by_command("kling-3-0")
BODY: dict[str, Any] = {"prompt": "a zebra crossing a river at dawn", "duration": 5,
                        "generate_audio": False}
WRITES = 7  # transactions a lifecycle commits: the admission, five moves, the last move


def add_backend_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--backend", choices=[*BACKENDS, "both"], default="both",
                        help="the store's database (default: both, side by side)")


def backends_of(choice: str) -> tuple[Backend, ...]:
    return BACKENDS if choice == "both" else tuple(b for b in BACKENDS if b == choice)


@dataclass
class Places:
    """Where the benchmark's databases live: SQLite files in a temporary folder, and a
    throwaway PostgreSQL server when PostgreSQL is measured."""

    folder: Path
    server: PostgresServer | None

    async def new_database(self, backend: Backend, name: str) -> Path | str:
        """The target of a new, empty database called ``name``."""
        if backend == "sqlite":
            return self.folder / f"{name}.sqlite3"
        import asyncpg

        assert self.server is not None
        conn = await asyncpg.connect(self.server.url)
        try:
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()
        return self.server.database_url(name)

    def pids(self) -> set[int]:
        """This process and the PostgreSQL server's (whose work is the benchmark's too)."""
        roots = {os.getpid()}
        if self.server is not None and self.server.process is not None:
            roots.add(self.server.process.pid)
        return roots


class Others:
    """How busy the machine was with other work (the CPU time of every process but this one
    and the PostgreSQL server's), in cores: the benchmark's figures are fair only when this
    is near 0."""

    def __init__(self, roots: set[int]) -> None:
        self.roots = roots
        self.start = self._sample()

    def cores(self) -> float:
        busy, total, ours = (now - then for now, then in zip(self._sample(), self.start,
                                                               strict=True))
        return max(busy - ours, 0) / total * (os.cpu_count() or 1) if total else 0.0

    def _sample(self) -> tuple[int, int, int]:
        with open("/proc/stat", encoding="ascii") as stat:
            ticks = [int(n) for n in stat.readline().split()[1:9]]  # user .. steal
        idle = ticks[3] + ticks[4]
        return sum(ticks) - idle, sum(ticks), sum(_tree_ticks(self.roots).values())


def _tree_ticks(roots: set[int]) -> dict[int, int]:
    """CPU ticks of ``roots`` and every process under them (with their ended children)."""
    parents: dict[int, int] = {}
    ticks: dict[int, int] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            with open(f"/proc/{entry.name}/stat", encoding="ascii", errors="replace") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
            parents[int(entry.name)] = int(fields[1])
            ticks[int(entry.name)] = sum(int(n) for n in fields[11:15])

    def inside(pid: int) -> bool:
        while pid > 1:
            if pid in roots:
                return True
            pid = parents.get(pid, 0)
        return False
    return {pid: n for pid, n in ticks.items() if inside(pid)}


@contextlib.contextmanager
def places(backends: tuple[Backend, ...]) -> Iterator[Places]:
    with contextlib.ExitStack() as stack:
        folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="rcvb-bench-")))
        server = stack.enter_context(postgres_server()) if "postgresql" in backends else None
        yield Places(folder, server)


@dataclass
class Store:
    """One backend's store, as the bot puts it together."""

    backend: Backend
    db: Database
    jobs: JobStore
    limits: Limits
    done: int = 0  # lifecycles completed on this database
    requests: int = 0

    @classmethod
    async def open(cls, backend: Backend, target: Path | str) -> Store:
        db = await open_database(target, clock=time.time)
        policies = PolicyStore(db, Policy(), time.time)
        return cls(backend, db, JobStore(db, time.time), Limits(db, policies, time.time))

    async def set_policies(self, guilds: range) -> None:
        """Each guild's policy as a moderator sets it (so it is read from the database)."""
        for guild_id in guilds:
            await self.limits.policies.update(guild_id, 1, lambda _: {
                "daily_quota": DAILY_QUOTA, "monthly_budget_usd": MONTHLY_BUDGET_USD})

    async def lifecycle(self, who: Requester) -> None:
        jobs, clock = self.jobs, time.time
        prompt = str(BODY["prompt"])
        seconds, audio, resolution = price_options(MODEL, BODY)
        async with self.db.transaction(guild=who.guild_id) as tx:  # as JobService.start
            await self.limits.check(who.who, MODEL, prompt, estimate_usd(MODEL, BODY), tx=tx)
            job = await jobs.add(NewJob(
                guild_id=who.guild_id, channel_id=who.channel_id, user_id=who.user_id,
                model_id=MODEL.id, command=MODEL.command, prompt=prompt, body=BODY,
                estimated_usd=estimate_usd(MODEL, BODY), seconds=seconds, audio=audio,
                resolution=resolution), tx=tx)
        self.requests += 1
        request_id = f"bench-{self.requests}"
        moved(await jobs.move(job.id, JobState.SUBMITTING))
        moved(await jobs.move(job.id, JobState.QUEUED, request_id=request_id,
                              submitted_at=clock()))
        moved(await jobs.move(job.id, JobState.RUNNING, only_from={JobState.QUEUED},
                              queue_position=None, started_at=clock()))
        moved(await jobs.move(job.id, JobState.FETCHED, video_url=f"https://cdn.example/{job.id}",
                              cost_usd=COST_USD, finished_at=clock(), queue_position=None))
        moved(await jobs.move(job.id, JobState.DELIVERING))
        moved(await jobs.move(job.id, JobState.DELIVERED, result_message_id=job.id,
                              delivered_as="file"))
        self.done += 1

    async def verify(self) -> str:
        """The rollup against the lifecycles done: OK, or what differs."""
        rollup = await self.db.fetchrow("SELECT SUM(jobs), SUM(cost_usd), SUM(seconds),"
                                        " SUM(failures + cancellations + unpriced)"
                                        " FROM usage_daily")
        delivered = await self.db.fetchrow("SELECT COUNT(*) FROM jobs WHERE state = ?",
                                           JobState.DELIVERED.value)
        assert rollup is not None and delivered is not None
        jobs, cost, seconds, others = (rollup[0] or 0, rollup[1] or 0.0, rollup[2] or 0.0,
                                       rollup[3] or 0)
        expected = (self.done, self.done * COST_USD, self.done * float(BODY["duration"]))
        if (jobs, delivered[0], others) == (self.done, self.done, 0) and math.isclose(
                cost, expected[1]) and math.isclose(seconds, expected[2]):
            return f"OK ({jobs:,} jobs, ${cost:,.2f})"
        return (f"FAIL: {jobs} jobs, ${cost:.2f}, {seconds:g} s, {others} failed/cancelled/"
                f"unpriced in the rollup and {delivered[0]} delivered, for {self.done} "
                f"lifecycles (${expected[1]:.2f}, {expected[2]:g} s)")


def percentile(values: list[float], share: float) -> float:
    """As ``bench.harness.percentile`` (not imported: this benchmark needs none of the bot's
    Discord side)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def moved(job: Job | None) -> Job:
    if job is None:
        raise RuntimeError("a move was refused: the lifecycle is not the one the bot makes")
    return job


@dataclass
class Run:
    backend: Backend
    coroutines: int
    guilds: int
    lifecycles: int
    seconds: float = 0.0
    cpu: float = 0.0  # this process's CPU time over the run (the bot's side)
    others: float = 0.0  # cores busy with other work meanwhile
    latencies: list[float] = field(default_factory=list)

    @property
    def per_second(self) -> float:
        return self.lifecycles / self.seconds


async def measure(store: Store, coroutines: int, guilds: int, lifecycles: int,
                  first_user: int, ours: set[int]) -> Run:
    """``lifecycles`` done by ``coroutines`` at once, each taking the next one when done."""
    run = Run(store.backend, coroutines, guilds, lifecycles)
    left = iter(range(lifecycles))
    members = max(1, math.ceil(lifecycles / coroutines / PER_MEMBER))

    async def worker(index: int) -> None:
        guild_id = 1 + index % guilds
        base = first_user + index * members
        for count, _ in enumerate(left):
            who = Requester(guild_id, 100 + guild_id, base + count % members)
            started = time.perf_counter()
            await store.lifecycle(who)
            run.latencies.append(time.perf_counter() - started)

    started, cpu, others = time.perf_counter(), time.process_time(), Others(ours)
    async with asyncio.TaskGroup() as group:
        for index in range(coroutines):
            group.create_task(worker(index))
    run.seconds = time.perf_counter() - started
    run.cpu = time.process_time() - cpu
    run.others = others.cores()
    return run


async def main(backends: tuple[Backend, ...], lifecycles: int, where: Places) -> None:
    stores = [await Store.open(b, await where.new_database(b, "lifecycle")) for b in backends]
    users = iter(range(10_000, 10**9, 100_000))  # a fresh block of members for each run
    for store in stores:
        await store.set_policies(range(1, 9))
        # warm-up: connections, statements
        await measure(store, 32, 8, 64, next(users), where.pids())
    runs = []
    for coroutines, guilds in CONCURRENCY:
        for store in stores:
            runs.append(await measure(store, coroutines, guilds, lifecycles, next(users),
                                     where.pids()))
    print(f"{lifecycles:,} lifecycles a run: admission (guild lock, Limits.check, add) + 5 moves"
          " + the move to delivered with its usage line")
    print(f"bot CPU: this process (aiosqlite's threads included), of one core; others: cores"
          f" (of {os.cpu_count()}) busy meanwhile with processes neither this one nor PostgreSQL")
    print(f"{'backend':<11} {'coroutines':>10} {'guilds':>6} {'seconds':>8} {'lifecycles/s':>12}"
          f" {'commits/s':>9} {'p50 ms':>7} {'p95 ms':>7} {'bot CPU':>7} {'others':>6}")
    for run in runs:
        print(f"{run.backend:<11} {run.coroutines:>10} {run.guilds:>6} {run.seconds:>8.2f}"
              f" {run.per_second:>12.0f} {run.per_second * WRITES:>9.0f}"
              f" {statistics.median(run.latencies) * 1000:>7.1f}"
              f" {percentile(run.latencies, 0.95) * 1000:>7.1f}"
              f" {run.cpu / run.seconds:>7.0%} {run.others:>6.2f}")
    failed = False
    for store in stores:
        verdict = await store.verify()
        failed |= not verdict.startswith("OK")
        print(f"usage rollup on {store.backend}: {verdict}")
        await store.db.close()
    if failed:
        raise SystemExit(1)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--lifecycles", type=int, default=2000)
    add_backend_argument(parser)
    arguments = parser.parse_args()
    chosen = backends_of(arguments.backend)
    with places(chosen) as folder:
        asyncio.run(main(chosen, arguments.lifecycles, folder))
