"""Migrations under PRAGMA user_version, and the usage rollup trigger."""

from __future__ import annotations

from pathlib import Path

from bot.jobs import JobState
from bot.store.database import migrations, open_database
from bot.store.jobs import JobStore, NewJob


def test_migrations_are_numbered_without_gaps() -> None:
    assert [number for number, _, _ in migrations()] == list(range(1, len(migrations()) + 1))


async def test_a_database_is_migrated_once(tmp_path: Path) -> None:
    path = tmp_path / "data" / "bot.sqlite3"
    db = await open_database(path)
    async with db.execute("PRAGMA user_version") as cursor:
        assert (await cursor.fetchone())[0] == len(migrations())  # type: ignore[index]
    await db.close()
    again = await open_database(path)  # reopening applies nothing twice
    async with again.execute("SELECT COUNT(*) FROM sqlite_master WHERE name = 'usage_daily'") \
            as cursor:
        assert (await cursor.fetchone())[0] == 1  # type: ignore[index]
    await again.close()


async def test_ending_a_job_adds_it_to_the_daily_rollup_once(tmp_path: Path) -> None:
    db = await open_database(tmp_path / "bot.sqlite3")
    store = JobStore(db, clock=lambda: 1_767_225_600.0)  # 2026-01-01
    for state, cost in ((JobState.DELIVERED, 0.5), (JobState.FAILED, None),
                        (JobState.CANCELLED, None)):
        job = await store.add(NewJob(guild_id=1, channel_id=2, user_id=3, model_id="m",
                                     command="wan-2-2", prompt="", body={}, estimated_usd=0.4,
                                     seconds=5))
        await store.move(job.id, JobState.SUBMITTING)
        await store.move(job.id, JobState.QUEUED, request_id=f"r{job.id}")
        await store.move(job.id, JobState.RUNNING)
        if state is JobState.DELIVERED:
            await store.move(job.id, JobState.FETCHED, cost_usd=cost)
            await store.move(job.id, JobState.DELIVERING)
        assert await store.move(job.id, state) is not None
        assert await store.move(job.id, state) is None  # over: it moves no more
    async with db.execute("SELECT day, jobs, seconds, cost_usd, failures, cancellations"
                          " FROM usage_daily") as cursor:
        assert [tuple(row) for row in await cursor.fetchall()] == [
            ("2026-01-01", 3, 5.0, 0.5, 1, 1)]
    await db.close()
