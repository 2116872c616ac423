"""PostgreSQL's lock on the operator's account (migration 0010): shared while the account is
far from its caps, so that admissions on the operator's key do not take turns; exclusive near
a cap or for a job too big to share; and exact across the switch, with many admissions at
once. SQLite's one writer holds the account already."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from bot.catalog import Catalog
from bot.limits import Limits
from bot.policy import AccountCaps, Policy, PolicyStore
from bot.store.allowance import ACCOUNT_LOCK, ACCOUNT_SQL
from bot.store.connect import open_database
from bot.store.database import Database, Tx
from bot.store.jobs import JobStore, NewJob
from bot.store.postgres import to_postgres
from tests.clocks import SetClock
from tests.conftest import new_postgres_database
from tests.postgres_server import PostgresServer

DAY = 1_770_681_600.0  # 2026-02-10 00:00 UTC
MONTH = 1_769_904_000.0  # 2026-02-01 00:00 UTC
NOW = DAY + 12 * 3600
LOCKED_SUMS = "SELECT * FROM account_spent_locked(?, ?, ?, ?, ?, ?, ?, ?)"
HOLDERS = ("SELECT mode, granted FROM pg_locks WHERE locktype = 'advisory' "
           "AND objid = ? ORDER BY granted DESC, mode")


@pytest.fixture
async def pg(postgres: PostgresServer) -> AsyncIterator[Database]:
    db = await open_database(await new_postgres_database(postgres), clock=SetClock(NOW))
    yield db
    await db.close()


async def sums(tx: Tx, estimate: float, daily: float, monthly: float = 0.0) -> None:
    await tx.fetch(LOCKED_SUMS, "2026-02-10", "2026-02-01", DAY, MONTH, ACCOUNT_LOCK,
                   estimate, daily, monthly)


async def spend(db: Database, usd: float) -> None:
    await db.write("INSERT INTO account_daily (day, cost_usd) VALUES ('2026-02-10', ?)", usd)


async def holders_while(db: Database, first: tuple[float, float, float],
                        second: tuple[float, float, float]) -> list[tuple[str, bool]]:
    """The account's lock as ``pg_locks`` shows it while two admissions, the first holding
    it, ask for it with these (estimate, daily cap, monthly cap)."""
    held, release = asyncio.Event(), asyncio.Event()

    async def admission(args: tuple[float, float, float]) -> None:
        async with db.transaction() as tx:
            await sums(tx, *args)
            held.set()
            await release.wait()  # the lock is held until the commit

    one = asyncio.create_task(admission(first))
    await held.wait()
    two = asyncio.create_task(admission(second))
    for _ in range(500):  # until the second holds the lock too, or waits for it
        rows = await db.fetch(HOLDERS, ACCOUNT_LOCK)
        if len(rows) == 2:
            break
        await asyncio.sleep(0.01)
    seen = [(str(row[0]), bool(row[1])) for row in rows]
    release.set()
    await asyncio.gather(one, two)
    return seen


async def test_far_from_its_caps_two_admissions_hold_the_account_at_once(pg: Database) -> None:
    await spend(pg, 100.0)  # of 1,000 a day: far
    seen = await holders_while(pg, (1.0, 1000.0, 0.0), (1.0, 1000.0, 20_000.0))
    assert seen == [("ShareLock", True), ("ShareLock", True)]


async def test_past_half_a_cap_an_admission_waits_its_turn(pg: Database) -> None:
    await spend(pg, 501.0)  # of 1,000 a day
    seen = await holders_while(pg, (1.0, 1000.0, 0.0), (1.0, 1000.0, 0.0))
    # The second asks to share it first (it cannot know the sums before it holds it).
    assert seen == [("ExclusiveLock", True), ("ShareLock", False)]


async def test_a_month_past_half_its_cap_also_takes_turns(pg: Database) -> None:
    await spend(pg, 501.0)  # of 1,000,000 a day but 1,000 a month
    seen = await holders_while(pg, (1.0, 1_000_000.0, 1000.0), (1.0, 1_000_000.0, 1000.0))
    assert seen == [("ExclusiveLock", True), ("ShareLock", False)]


async def test_a_job_too_big_to_share_the_account_waits_its_turn(pg: Database) -> None:
    """A shared admission takes at most cap / (2 x max_connections)."""
    row = await pg.fetchrow("SELECT current_setting('max_connections')::INTEGER")
    assert row is not None
    sessions = int(row[0])
    cap = 1000.0
    seen = await holders_while(pg, (1.0, cap, 0.0), (cap / (2 * sessions) + 0.01, cap, 0.0))
    assert seen == [("ShareLock", True), ("ExclusiveLock", False)]


async def test_many_admissions_at_once_take_exactly_what_the_cap_pays_for(
        pg: Database, catalog: Catalog) -> None:
    """Sixteen admissions at a time, $1 each, under a $600 day already $280 spent: shared
    up to half the cap, then one at a time; exactly 320 are admitted."""
    clock = SetClock(NOW)
    store = JobStore(pg, clock)
    limits = Limits(pg, PolicyStore(pg, Policy(), clock), clock,
                    AccountCaps(daily_budget_usd=600.0))
    model = catalog.by_command("kling-3-0-4k")
    await spend(pg, 280.0)
    admitted = 0

    async def admit_until_refused(worker: int) -> None:
        nonlocal admitted
        while True:
            new = NewJob(guild_id=worker + 1, channel_id=1, user_id=worker, model_id=model.id,
                         command=model.command, prompt="", body={}, estimated_usd=1.0)
            fits = limits.account_fits(model, 1.0)
            assert fits is not None
            async with pg.transaction() as tx:
                if await store.add_if(tx, new, *fits) is None:
                    return
            admitted += 1

    await asyncio.gather(*(admit_until_refused(worker) for worker in range(16)))
    today, _month = await limits.account_standing()
    assert admitted == 320
    assert today == pytest.approx(600.0)


async def test_postgresqls_account_sums_are_account_sql_word_for_word(
        postgres: PostgresServer) -> None:
    """Migration 0010's function runs ``ACCOUNT_SQL``; the two must not drift apart (a change
    of the sums needs a migration that replaces the function)."""
    db = await open_database(await new_postgres_database(postgres))
    source = await db.fetchrow("SELECT prosrc FROM pg_proc WHERE proname = 'account_spent_now'")
    await db.close()
    assert source is not None
    expected = f"#variable_conflict use_column BEGIN RETURN QUERY {to_postgres(ACCOUNT_SQL)}; END"
    assert " ".join(str(source[0]).split()) == " ".join(expected.split())
