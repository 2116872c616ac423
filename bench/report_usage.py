"""How long a usage report takes over 1,000,000 usage rows (target: <= 100 ms).

Generates jobs in one guild over 30 days (500 members, every model), ends them through the
same trigger the bot uses, then times the report query, the budget check, and the whole
/usage answer (CSV and chart included) as the bot builds it.

    .venv/bin/python -m bench.report_usage [--rows 1000000]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import tempfile
import time
from pathlib import Path

from bot.catalog import load_catalog
from bot.limits import Limits
from bot.policy import Policy, PolicyStore
from bot.store.database import open_database, run, transaction
from bot.usage import UsageReports, chart_png, period, to_csv

GUILD = 1
DAY = 86400.0
NOW = 1_767_225_600.0 + 30 * DAY  # 2026-01-31, so the month holds all 30 days
END_STATES = ["delivered"] * 8 + ["failed", "cancelled"]


async def fill(db_path: Path, rows: int) -> float:
    db = await open_database(db_path)
    models = [m.command for m in load_catalog()]
    rng = random.Random(7)
    started = time.perf_counter()
    batch = 50_000
    async with transaction(db):
        for first in range(0, rows, batch):
            values = []
            for _ in range(min(batch, rows - first)):
                created = NOW - rng.random() * 30 * DAY
                values.append((GUILD, 10, 1000 + rng.randrange(500), "m", rng.choice(models),
                               "", "{}", "running", rng.choice([0.42, 1.26, None]),
                               rng.choice([5.0, 10.0]), created, created))
            await db.executemany(
                "INSERT INTO jobs (guild_id, channel_id, user_id, model_id, command, prompt,"
                " body, state, estimated_usd, seconds, created_at, updated_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", values)
        for index, state in enumerate(END_STATES):
            await run(db, "UPDATE jobs SET state = ? WHERE id % ? = ?",
                      (state, len(END_STATES), index))
    await db.close()
    return time.perf_counter() - started


async def measure(db_path: Path, repeats: int) -> dict[str, list[float]]:
    db = await open_database(db_path)
    reports = UsageReports(db)
    limits = Limits(db, PolicyStore(db, Policy(monthly_budget_usd=1e9), lambda: NOW),
                    lambda: NOW)
    timings: dict[str, list[float]] = {"report, 30 days by user": [], "report, 30 days by day":
                                       [], "budget check (spent this month)": [],
                                       "whole /usage answer (query + CSV + PNG)": []}
    span = period("30 days", NOW)
    chart_png(await reports.report(GUILD, span, "day"))  # load matplotlib once, off the clock
    for _ in range(repeats):
        for label, group in (("report, 30 days by user", "user"),
                             ("report, 30 days by day", "day")):
            started = time.perf_counter()
            await reports.report(GUILD, span, group)  # type: ignore[arg-type]
            timings[label].append(time.perf_counter() - started)
        started = time.perf_counter()
        await limits.standing(GUILD, 1001)
        timings["budget check (spent this month)"].append(time.perf_counter() - started)
        started = time.perf_counter()
        report = await reports.report(GUILD, span, "user")
        to_csv(report, str)
        chart_png(report)
        timings["whole /usage answer (query + CSV + PNG)"].append(time.perf_counter() - started)
    async with db.execute("SELECT COUNT(*) FROM jobs") as cursor:
        row = await cursor.fetchone()
    async with db.execute("SELECT COUNT(*) FROM usage_daily") as cursor:
        rollup = await cursor.fetchone()
    await db.close()
    print(f"usage rows (jobs): {row[0] if row else 0:,}; rollup rows: "
          f"{rollup[0] if rollup else 0:,}")
    return timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "bench.sqlite3"
        took = asyncio.run(fill(path, args.rows))
        print(f"generated {args.rows:,} jobs in {took:.1f} s")
        timings = asyncio.run(measure(path, args.repeats))
    print(f"{'what':<42} {'median ms':>10} {'p95 ms':>8} {'target':>8}")
    for label, values in timings.items():
        ordered = sorted(values)
        p95 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))]
        target = "<= 100" if label.startswith("report") else ""
        print(f"{label:<42} {statistics.median(values) * 1000:>10.1f} {p95 * 1000:>8.1f} "
              f"{target:>8}")


if __name__ == "__main__":
    main()
