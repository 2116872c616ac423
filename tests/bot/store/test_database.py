"""The database on both backends: numbered migrations recorded in the database, units of work
that hold together, and the usage rollup kept with each job's last move."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import aiosqlite
import pytest

from bot.jobs import JobState
from bot.store.connect import open_database
from bot.store.database import DatabaseError, Dialect, migrations, redact, url_secrets
from bot.store.jobs import JobStore, NewJob
from tests.conftest import new_postgres_database
from tests.postgres_server import PostgresServer


@pytest.mark.parametrize("dialect", ["sqlite", "postgresql"])
def test_migrations_are_numbered_alike_on_both_backends(dialect: Dialect) -> None:
    numbers = [m.number for m in migrations(dialect)]
    assert numbers == list(range(1, len(numbers) + 1))
    assert [m.name for m in migrations(dialect)] == [m.name for m in migrations("sqlite")]


async def test_a_database_is_migrated_once(database_target: Path | str) -> None:
    db = await open_database(database_target)
    assert await db.schema_version() == len(migrations(db.dialect))
    await db.close()
    again = await open_database(database_target)  # reopening applies nothing twice
    rows = await again.fetch("SELECT version, name FROM schema_migrations ORDER BY version")
    assert [(r[0], r[1]) for r in rows] == [(m.number, m.name) for m in migrations(db.dialect)]
    await again.close()


async def test_a_file_from_before_schema_migrations_keeps_its_data(tmp_path: Path) -> None:
    """A store made by an earlier version (three migrations, counted in user_version)."""
    path = tmp_path / "old.sqlite3"
    old = await aiosqlite.connect(path, isolation_level=None)
    for migration in migrations("sqlite")[:3]:
        await old.executescript(migration.sql)
    await old.executescript("PRAGMA user_version = 3; INSERT INTO meta VALUES ('k', 'v');")
    await old.close()
    db = await open_database(path)
    assert await db.schema_version() == len(migrations("sqlite"))
    assert [tuple(r) for r in await db.fetch("SELECT key, value FROM meta")] == [("k", "v")]
    await db.close()


async def test_check_reads_without_writing(tmp_path: Path) -> None:
    path = tmp_path / "bot.sqlite3"
    with pytest.raises(DatabaseError, match="no such database file"):
        await open_database(path, migrate=False)
    assert not path.exists()


async def test_ending_a_job_adds_it_to_the_daily_rollup_once(
        database_target: Path | str) -> None:
    db = await open_database(database_target)
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
    rows = await db.fetch("SELECT day, jobs, seconds, cost_usd, failures, cancellations"
                          " FROM usage_daily")
    assert [tuple(row) for row in rows] == [("2026-01-01", 3, 5.0, 0.5, 1, 1)]
    await db.close()


async def test_a_failed_unit_of_work_undoes_only_itself(database_target: Path | str) -> None:
    """Another coroutine's write that returned before the rollback stays."""
    db = await open_database(database_target)
    started = asyncio.Event()

    async def failing() -> None:
        async with db.transaction() as tx:
            await tx.execute("INSERT INTO meta (key, value) VALUES ('mine', 'x')")
            started.set()
            await asyncio.sleep(0.05)
            raise RuntimeError("boom")

    async def other() -> None:
        await started.wait()
        await db.write("INSERT INTO meta (key, value) VALUES ('other', 'y')")

    results = await asyncio.gather(failing(), other(), return_exceptions=True)
    assert isinstance(results[0], RuntimeError) and results[1] is None
    assert [r[0] for r in await db.fetch("SELECT key FROM meta ORDER BY key")] == ["other"]
    await db.close()


async def test_a_cancelled_unit_of_work_rolls_back(database_target: Path | str) -> None:
    db = await open_database(database_target)
    inside = asyncio.Event()

    async def slow() -> None:
        async with db.transaction() as tx:
            await tx.execute("INSERT INTO meta (key, value) VALUES ('half', 'x')")
            inside.set()
            await asyncio.sleep(10)

    task = asyncio.create_task(slow())
    await inside.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await db.write("INSERT INTO meta (key, value) VALUES ('after', 'y')")
    await db.close()
    again = await open_database(database_target)
    assert [r[0] for r in await again.fetch("SELECT key FROM meta")] == ["after"]
    await again.close()


async def test_a_sqlite_reader_cannot_write(tmp_path: Path) -> None:
    db = await open_database(tmp_path / "bot.sqlite3")
    async with db.read() as reader:
        with pytest.raises(sqlite3.OperationalError, match="readonly"):
            await reader.execute("INSERT INTO meta (key, value) VALUES ('k', 'v')")
    await db.close()


async def test_postgres_plans_a_reports_statements_for_their_values_and_the_bots_once(
        postgres: PostgresServer) -> None:
    """The reports run twice as fast planned for their values; the bot's own statements, run
    at every command, are planned once (PostgreSQL's own choice); a URL's setting holds for
    them."""
    url = await new_postgres_database(postgres)
    for given, expected in (("", "auto"), ("?plan_cache_mode=force_generic_plan",
                                           "force_generic_plan")):
        db = await open_database(url + given)
        async with db.read() as reader:
            assert await reader.fetchval("SHOW plan_cache_mode") == expected
        async with db.report() as reader:
            assert await reader.fetchval("SHOW plan_cache_mode") == "force_custom_plan"
        async with db.read() as reader:  # the report's setting ended with it
            assert await reader.fetchval("SHOW plan_cache_mode") == expected
        await db.close()


async def test_a_guilds_units_of_work_take_turns_across_pools_and_no_other_guilds(
        postgres: PostgresServer) -> None:
    """Held for a guild from BEGIN on (one round trip): a second pool (another process) waits
    for the first to commit, then sees what it wrote; another guild's does not wait; one
    cancelled while it waits is rolled back."""
    url = await new_postgres_database(postgres)
    first, second = await open_database(url), await open_database(url)
    guild = 1 << 60
    order: list[str] = []
    holding = asyncio.Event()

    async def holder() -> None:
        async with first.transaction(guild=guild) as tx:
            await tx.execute("INSERT INTO meta (key, value) VALUES ('first', 'x')")
            holding.set()
            await asyncio.sleep(0.3)
            order.append("first commits")

    async def waiter(for_guild: int, name: str) -> None:
        await holding.wait()
        async with second.transaction(guild=for_guild) as tx:
            seen = await tx.fetchval("SELECT value FROM meta WHERE key = 'first'")
            order.append(f"{name} sees {seen}")

    async def given_up() -> None:  # waits for the guild, then is cancelled while it waits
        await holding.wait()
        waiting = asyncio.create_task(waiter(guild, "given up"))
        await asyncio.sleep(0.1)
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting

    loop = asyncio.get_running_loop()
    problems: list[str] = []
    loop.set_exception_handler(lambda _, context: problems.append(context["message"]))
    await asyncio.gather(holder(), waiter(guild, "same guild"), waiter(guild + 1, "other"),
                         given_up())
    loop.set_exception_handler(None)
    assert order == ["other sees None", "first commits", "same guild sees x"]
    async with second.read() as reader:  # its connections are back, out of any transaction
        assert await reader.fetchval("SELECT count(*) FROM pg_locks WHERE locktype = "
                                     "'advisory'") == 0
    assert problems == []  # none given back with a transaction open
    await first.close()
    await second.close()


@pytest.mark.parametrize(("url", "shown", "secrets"), [
    ("postgresql://bot:pw@db:5432/videos", "postgresql://bot:***@db:5432/videos", ["pw"]),
    ("postgresql://bot@db/videos?password=s3cr%40t&sslmode=require",
     "postgresql://bot@db/videos?password=***&sslmode=require", ["s3cr%40t", "s3cr@t"]),
    ("postgresql://bot@db/videos?SSLPassword=k&passfile=/run/p",
     "postgresql://bot@db/videos?SSLPassword=***&passfile=***", ["k", "k", "/run/p", "/run/p"]),
    ("postgresql://bot@db/videos", "postgresql://bot@db/videos", []),
])
def test_every_credential_in_a_database_url_is_redacted(url: str, shown: str,
                                                        secrets: list[str]) -> None:
    assert redact(url) == shown
    assert url_secrets(url) == secrets
