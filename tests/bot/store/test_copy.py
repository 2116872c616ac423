"""Moving a SQLite store into PostgreSQL: the reports, settings, audit and notices read the
same after the copy; a target with data is refused; new jobs continue the numbering."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from bot.jobs import JobState
from bot.policy import Policy, PolicyStore
from bot.store.access import ApprovedServers
from bot.store.connect import open_database
from bot.store.copy import copy_store
from bot.store.database import Database, DatabaseError
from bot.store.jobs import JobStore, NewJob
from bot.store.keys import GuildKeys
from bot.store.notices import NoticeStore
from bot.usage import UsageReports, period
from tests.conftest import new_postgres_database
from tests.postgres_server import PostgresServer

NOW = 1_767_225_600.0 + 12 * 86400  # 2026-01-13
GUILD = 7 << 22


def clock() -> float:
    return NOW


async def fill(db: Database) -> None:
    store = JobStore(db, clock)
    for index, end in enumerate([JobState.DELIVERED] * 4 + [JobState.FAILED,
                                                            JobState.CANCELLED]):
        job = await store.add(NewJob(GUILD, 10, 100 + index % 3, "m/x", "kling-3-0",
                                     f"shot {index}", {"prompt": f"shot {index}"}, 0.84,
                                     seconds=10))
        await store.move(job.id, JobState.SUBMITTING)
        await store.move(job.id, JobState.QUEUED, request_id=f"r{index}")
        if end is JobState.DELIVERED:
            await store.move(job.id, JobState.FETCHED, cost_usd=0.8 + index / 100)
            await store.move(job.id, JobState.DELIVERING)
        await store.move(job.id, end, finished_at=NOW)
    await store.add(NewJob(GUILD, 10, 100, "m/x", "kling-3-0", "open", {}, None))
    policies = PolicyStore(db, Policy(), clock)
    await policies.update(GUILD, 1, lambda p: {"daily_quota": 5, "monthly_budget_usd": 20.0})
    await policies.update(GUILD, 2, lambda p: {"blocked_users": [555]})
    await NoticeStore(db, clock).add(GUILD, 100, "your video could not be posted")
    await store.set_meta("synced_commands_sha256", "abc")
    await ApprovedServers(db).approve(GUILD, NOW)
    async with db.transaction() as tx:  # a server's key: ciphertext, copied as it is
        await GuildKeys(db).put(tx, GUILD, "gAAAAAB-sealed-key", "…abcd", NOW)


async def seen(db: Database) -> dict[str, Any]:
    reports = UsageReports(db)
    span = period("this month", NOW)
    policies = PolicyStore(db, Policy(), clock)
    return {
        "by_user": await reports.report(GUILD, span, "user"),
        "by_model": await reports.report(GUILD, span, "model"),
        "policy": await policies.get(GUILD),
        "audit": await policies.audit(GUILD),
        "jobs": [(j.id, j.state, j.cost_usd) for j in
                 await JobStore(db, clock).for_user(GUILD, 100, limit=50)],
        "meta": await JobStore(db, clock).get_meta("synced_commands_sha256"),
        "approved": await ApprovedServers(db).listed(),
        "key": await GuildKeys(db).get(GUILD),
    }


async def test_the_copy_reads_the_same(tmp_path: Path, postgres: PostgresServer) -> None:
    source = await open_database(tmp_path / "bot.sqlite3", clock=clock)
    await fill(source)
    before = await seen(source)
    target = await open_database(await new_postgres_database(postgres), clock=clock)
    copied = await copy_store(source, target)
    assert copied["jobs"] == 7 and copied["settings_audit"] == 3 and copied["notices"] == 1
    assert await seen(target) == before
    assert await NoticeStore(target, clock).take(GUILD, 100) == [
        "your video could not be posted"]
    new = await JobStore(target, clock).add(NewJob(GUILD, 10, 100, "m/x", "kling-3-0", "",
                                                   {}, None))
    assert new.id == 8  # the numbering continues
    with pytest.raises(DatabaseError, match="is not empty"):
        await copy_store(source, target)
    await source.close()
    await target.close()


async def test_the_command_copies_once_and_refuses_a_full_target(
        tmp_path: Path, postgres: PostgresServer) -> None:
    path = tmp_path / "bot.sqlite3"
    source = await open_database(path, clock=clock)
    await fill(source)
    before = await seen(source)
    await source.close()
    url = await new_postgres_database(postgres)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BOT_", "DATABASE_URL"))}
    env["BOT_BOT__DATABASE"] = str(path)

    def migrate() -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "bot", "migrate-db", "--to", url],  # noqa: S603
                              capture_output=True, text=True, env=env, cwd=tmp_path,
                              timeout=120, check=False)

    done = migrate()
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout == (f"copied {path} into {url}: 7 jobs, 3 usage_daily, 3 guild_settings,"
                           " 3 settings_audit, 1 notices, 1 meta, 1 approved_servers, 1 guild_keys,"
                           " 1 account_daily\n")
    target = await open_database(url, clock=clock)
    assert await seen(target) == before
    await target.close()
    again = migrate()
    assert again.returncode == 3
    assert again.stderr.startswith("error: database: ") and "is not empty (7 jobs" in again.stderr
