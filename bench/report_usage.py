"""How long a usage report takes over 1,000,000 jobs (target: <= 100 ms), on SQLite and on
PostgreSQL side by side.

Generates the same jobs on each backend (one guild over 30 days, 500 members, every model),
all of them over (8 in 10 delivered, the rest failed or cancelled), and their usage rollup as
the store would have it: the store adds a job's line (``bot.store.jobs.usage_of``) in the
transaction of its last move; here one ``INSERT ... SELECT ... GROUP BY`` sums the same lines.
Then it times the report query, the budget check, and the whole /usage answer (CSV and chart
included) as the bot builds it, taking the backends in turn at every repeat.

On PostgreSQL the tables are vacuumed and analysed after the load, as autovacuum would do
soon after (so that it does not do it during the measure); SQLite is used as the bot leaves
it (no ``ANALYZE``).

    .venv/bin/python -m bench.report_usage [--rows 1000000] [--backend both]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bench.store_lifecycle import (
    Backend,
    Others,
    Places,
    add_backend_argument,
    backends_of,
    places,
)
from bot.catalog import load_catalog
from bot.jobs import TERMINAL
from bot.limits import Limits
from bot.policy import Policy, PolicyStore
from bot.store.connect import open_database
from bot.store.database import Database
from bot.usage import UsageReports, chart_png, period, to_csv

GUILD = 1
DAY = 86400.0
NOW = 1_767_225_600.0 + 30 * DAY  # 2026-01-31, so the month holds all 30 days
END_STATES = ["delivered"] * 8 + ["failed", "cancelled"]
COLUMNS = ("guild_id", "channel_id", "user_id", "model_id", "command", "prompt", "body", "state",
           "estimated_usd", "seconds", "created_at", "finished_at", "updated_at")
BATCH = 2000  # rows an INSERT: 26,000 parameters, under SQLite's and PostgreSQL's 32,766
INSERT_SQL = (f"INSERT INTO jobs ({', '.join(COLUMNS)}) VALUES "  # noqa: S608 - constants
              + ", ".join([f"({', '.join('?' * len(COLUMNS))})"] * BATCH))
# The UTC date of a job's request, as usage_of writes it (YYYY-MM-DD).
DAY_SQL = {"sqlite": "date(created_at, 'unixepoch')",
           "postgresql": "to_char(to_timestamp(created_at) AT TIME ZONE 'UTC', 'YYYY-MM-DD')"}
_ENDED = ", ".join(f"'{state}'" for state in sorted(TERMINAL))
# usage_of's line of each finished job, summed per (guild, day, member, model, simulated).
ROLLUP_SQL = """
    INSERT INTO usage_daily (guild_id, day, user_id, command, simulated, jobs, seconds,
                             cost_usd, failures, cancellations, unpriced)
    SELECT guild_id, {day}, user_id, command, simulated, COUNT(*),
           SUM(CASE WHEN state IN ('delivered', 'undeliverable') THEN COALESCE(seconds, 0)
                    ELSE 0 END),
           SUM(CASE WHEN state IN ('failed', 'cancelled') THEN 0
                    ELSE COALESCE(cost_usd, estimated_usd, 0) END),
           SUM(CASE WHEN state IN ('failed', 'timed_out', 'outcome_unknown') THEN 1 ELSE 0 END),
           SUM(CASE WHEN state = 'cancelled' THEN 1 ELSE 0 END),
           SUM(CASE WHEN state NOT IN ('failed', 'cancelled') AND cost_usd IS NULL
                     AND estimated_usd IS NULL THEN 1 ELSE 0 END)
    FROM jobs WHERE state IN ({ended})
    GROUP BY 1, 2, 3, 4, 5"""
LABELS = ("report, 30 days by user", "report, 30 days by day",
          "budget check (spent this month)", "whole /usage answer (query + CSV + PNG)")


def batches(rows: int) -> Iterator[list[Any]]:
    """The jobs, ``BATCH`` at a time as flat parameters: the same on every backend."""
    models = [m.command for m in load_catalog()]
    rng = random.Random(7)
    for first in range(0, rows, BATCH):
        values: list[Any] = []
        for index in range(first, min(first + BATCH, rows)):
            created = NOW - rng.random() * 30 * DAY
            values += (GUILD, 10, 1000 + rng.randrange(500), "m", rng.choice(models), "", "{}",
                       END_STATES[index % len(END_STATES)], rng.choice([0.42, 1.26, None]),
                       rng.choice([5.0, 10.0]), created, created + 60, created + 60)
        yield values


async def fill(target: Path | str, rows: int) -> float:
    db = await open_database(target, clock=lambda: NOW)
    started = time.perf_counter()
    async with db.transaction() as tx:
        for values in batches(rows):
            sql = INSERT_SQL
            if len(values) < BATCH * len(COLUMNS):
                sql = INSERT_SQL[:INSERT_SQL.index(" VALUES ") + 8] + ", ".join(
                    [f"({', '.join('?' * len(COLUMNS))})"] * (len(values) // len(COLUMNS)))
            await tx.execute(sql, *values)
        await tx.execute(ROLLUP_SQL.format(day=DAY_SQL[db.dialect], ended=_ENDED))
    if db.dialect == "postgresql":
        import asyncpg

        conn = await asyncpg.connect(str(target))  # VACUUM runs outside a transaction
        try:
            await conn.execute("VACUUM ANALYZE")
        finally:
            await conn.close()
    await db.close()
    return time.perf_counter() - started


class Measured:
    """One backend's database, opened as the bot opens it, and its timings."""

    def __init__(self, backend: Backend, db: Database) -> None:
        self.backend = backend
        self.db = db
        self.reports = UsageReports(db)
        self.limits = Limits(db, PolicyStore(db, Policy(monthly_budget_usd=1e9), lambda: NOW),
                             lambda: NOW)
        self.timings: dict[str, list[float]] = {label: [] for label in LABELS}
        self.span = period("30 days", NOW)

    async def once(self) -> None:
        by_user, by_day, budget, whole = LABELS
        for label, group in ((by_user, "user"), (by_day, "day")):
            started = time.perf_counter()
            await self.reports.report(GUILD, self.span, group)  # type: ignore[arg-type]
            self.timings[label].append(time.perf_counter() - started)
        started = time.perf_counter()
        await self.limits.standing(GUILD, 1001)
        self.timings[budget].append(time.perf_counter() - started)
        started = time.perf_counter()
        report = await self.reports.report(GUILD, self.span, "user")
        to_csv(report, str)
        chart_png(report)
        self.timings[whole].append(time.perf_counter() - started)

    async def counts(self) -> tuple[int, int, int]:
        """Jobs, rollup rows, and jobs the rollup counts."""
        jobs = await self.db.fetchrow("SELECT COUNT(*) FROM jobs")
        rollup = await self.db.fetchrow("SELECT COUNT(*), SUM(jobs) FROM usage_daily")
        assert jobs is not None and rollup is not None
        return int(jobs[0]), int(rollup[0]), int(rollup[1] or 0)


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))]


async def main(backends: tuple[Backend, ...], rows: int, repeats: int, where: Places) -> None:
    measured = []
    for backend in backends:
        target = await where.new_database(backend, "report_usage")
        took = await fill(target, rows)
        print(f"{backend}: generated {rows:,} jobs and their rollup in {took:.1f} s", flush=True)
        measured.append(Measured(backend, await open_database(target, clock=lambda: NOW)))
    for each in measured:
        jobs, rollup, counted = await each.counts()
        if counted != jobs:
            raise SystemExit(f"{each.backend}: the rollup counts {counted:,} of {jobs:,} jobs")
        print(f"{each.backend}: {jobs:,} jobs; rollup rows: {rollup:,}")
        await each.once()  # load matplotlib, warm the caches: off the clock
        each.timings = {label: [] for label in LABELS}
    others = Others(where.pids())
    for _ in range(repeats):
        for each in measured:
            await each.once()
    busy = others.cores()
    for each in measured:
        await each.db.close()
        print(f"\n{each.backend}, {rows:,} jobs, {repeats} repeats (other processes kept"
              f" {busy:.2f} of {os.cpu_count()} cores busy meanwhile)")
        print(f"{'what':<42} {'median ms':>10} {'p95 ms':>8} {'target':>8}")
        for label, values in each.timings.items():
            target = "<= 100" if label.startswith("report") else ""
            print(f"{label:<42} {statistics.median(values) * 1000:>10.1f}"
                  f" {p95(values) * 1000:>8.1f} {target:>8}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=20)
    add_backend_argument(parser)
    arguments = parser.parse_args()
    chosen = backends_of(arguments.backend)
    with places(chosen) as folder:
        asyncio.run(main(chosen, arguments.rows, arguments.repeats, folder))
