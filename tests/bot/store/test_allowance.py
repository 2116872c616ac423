"""What a member and a guild have used, as the rules read it before a job is paid for, on both
backends: the member's jobs today (failed and cancelled ones aside), open and latest; the
guild's spending this month (finished jobs from the usage rollup, open ones at their
estimate, simulated ones never), its own key and its settings, all in one statement."""

from __future__ import annotations

import pytest

from bot.jobs import JobState
from bot.store.allowance import Holdings, MemberUse, Purse, holdings
from bot.store.database import Database, Tx
from bot.store.jobs import JobStore, NewJob
from bot.store.keys import GuildKeys, StoredKey
from bot.store.settings import Edit, SettingsStore
from tests.clocks import SetClock

S = JobState
MONTH = 1_767_225_600.0  # 2026-01-01 00:00 UTC
DAY = MONTH + 12 * 86_400  # 2026-01-13
HOUR = 3600.0
GUILD, OTHER_GUILD = 7 << 22, 8 << 22
ALICE, BOB = 100, 101
_BEFORE_FETCHED = [S.SUBMITTING, S.QUEUED, S.RUNNING]
PATHS = {
    S.ACCEPTED: [], S.SUBMITTING: [S.SUBMITTING], S.QUEUED: [S.SUBMITTING, S.QUEUED],
    S.RUNNING: _BEFORE_FETCHED, S.FETCHED: [*_BEFORE_FETCHED, S.FETCHED],
    S.DELIVERING: [*_BEFORE_FETCHED, S.FETCHED, S.DELIVERING],
    S.DELIVERED: [*_BEFORE_FETCHED, S.FETCHED, S.DELIVERING, S.DELIVERED],
    S.UNDELIVERABLE: [*_BEFORE_FETCHED, S.FETCHED, S.UNDELIVERABLE],
    S.FAILED: [*_BEFORE_FETCHED, S.FAILED], S.CANCELLED: [S.SUBMITTING, S.QUEUED, S.CANCELLED],
    S.TIMED_OUT: [*_BEFORE_FETCHED, S.TIMED_OUT],
    S.OUTCOME_UNKNOWN: [S.SUBMITTING, S.OUTCOME_UNKNOWN],
}


@pytest.fixture
def clock() -> SetClock:
    return SetClock(DAY + 10 * HOUR)


async def job_at(db: Database, clock: SetClock, at: float, state: JobState, *,
                 user: int = ALICE, guild: int = GUILD, estimate: float | None = None,
                 cost: float | None = None, simulated: bool = False) -> int:
    """A job asked for at ``at`` and taken to ``state`` the way the bot does (its real cost
    arriving with its result)."""
    clock.now = at
    store = JobStore(db, clock)
    job = await store.add(NewJob(guild, 10, user, "kling/kling-3.0/4k/text-to-video",
                                 "kling-3-0-4k", "a comet", {"prompt": "a comet"}, estimate,
                                 seconds=5, simulated=simulated))
    for step in PATHS[state]:
        moved = await (store.move(job.id, step, cost_usd=cost) if step is S.FETCHED
                       else store.move(job.id, step))
        assert moved is not None, (state, step)
    return job.id


async def held(reader: Tx, user: int = ALICE, guild: int = GUILD, *,
               since: float = DAY - 24 * HOUR) -> Holdings:
    return await holdings(reader, guild, user, day_start=DAY, since=since,
                          month_day="2026-01-01", month_start=MONTH)


async def use(db: Database, user: int = ALICE, guild: int = GUILD, *,
              since: float = DAY - 24 * HOUR) -> MemberUse:
    async with db.read() as reader:
        return (await held(reader, user, guild, since=since)).use


async def spent(db: Database, guild: int = GUILD) -> float:
    async with db.read() as reader:
        return (await held(reader, guild=guild)).purse.spent


async def test_a_member_with_no_jobs(db: Database) -> None:
    assert await use(db) == MemberUse(today=0, active=0, last_at=None)


async def test_a_members_jobs_today_open_and_latest(db: Database, clock: SetClock) -> None:
    await job_at(db, clock, DAY - 2 * HOUR, S.RUNNING)  # yesterday, still running
    await job_at(db, clock, DAY - 1 * HOUR, S.DELIVERED)  # yesterday
    await job_at(db, clock, DAY, S.DELIVERED)  # the first second of today
    await job_at(db, clock, DAY + 2 * HOUR, S.FAILED)  # not counted today
    await job_at(db, clock, DAY + 3 * HOUR, S.CANCELLED)  # nor this
    await job_at(db, clock, DAY + 4 * HOUR, S.TIMED_OUT)  # RunComfy may have charged these
    await job_at(db, clock, DAY + 5 * HOUR, S.OUTCOME_UNKNOWN)
    await job_at(db, clock, DAY + 5.5 * HOUR, S.UNDELIVERABLE)
    await job_at(db, clock, DAY + 6 * HOUR, S.QUEUED)
    await job_at(db, clock, DAY + 7 * HOUR, S.ACCEPTED)
    await job_at(db, clock, DAY + 8 * HOUR, S.FETCHED)
    await job_at(db, clock, DAY + 9 * HOUR, S.QUEUED, user=BOB)  # someone else's
    await job_at(db, clock, DAY + 9.5 * HOUR, S.QUEUED, guild=OTHER_GUILD)  # another server
    assert await use(db) == MemberUse(today=7, active=4, last_at=DAY + 8 * HOUR)
    assert await use(db, BOB) == MemberUse(today=1, active=1, last_at=DAY + 9 * HOUR)
    assert await use(db, ALICE, OTHER_GUILD) == MemberUse(1, 1, DAY + 9.5 * HOUR)


async def test_jobs_are_counted_since_the_horizon_the_latest_of_all(db: Database,
                                                                      clock: SetClock) -> None:
    await job_at(db, clock, DAY - 30 * HOUR, S.RUNNING)  # open, but before the horizon
    await job_at(db, clock, DAY + 1 * HOUR, S.DELIVERED)
    await job_at(db, clock, DAY + 6 * HOUR, S.QUEUED)
    assert await use(db, since=DAY - 24 * HOUR) == MemberUse(2, 1, DAY + 6 * HOUR)
    assert await use(db, since=DAY + 2 * HOUR) == MemberUse(1, 1, DAY + 6 * HOUR)
    assert await use(db, since=DAY - 48 * HOUR) == MemberUse(2, 2, DAY + 6 * HOUR)
    assert await use(db, since=DAY + 7 * HOUR) == MemberUse(0, 0, DAY + 6 * HOUR)
    # A cooldown longer than the horizon still counts from the latest job.
    clock.now = DAY + 90 * HOUR
    assert await use(db, since=DAY + 42 * HOUR) == MemberUse(0, 0, DAY + 6 * HOUR)


async def test_a_failed_job_counts_for_the_cooldown_not_the_quota(db: Database,
                                                                   clock: SetClock) -> None:
    await job_at(db, clock, DAY + 9 * HOUR, S.FAILED)
    await job_at(db, clock, DAY + 9.5 * HOUR, S.CANCELLED)
    assert await use(db) == MemberUse(today=0, active=0, last_at=DAY + 9.5 * HOUR)


async def test_a_guild_that_spent_nothing(db: Database) -> None:
    assert await spent(db) == 0.0


async def test_what_a_guild_spent_this_month(db: Database, clock: SetClock) -> None:
    # Last month: neither its finished jobs nor its still-open ones.
    await job_at(db, clock, MONTH - HOUR, S.DELIVERED, estimate=4.0, cost=4.0)
    await job_at(db, clock, MONTH - 0.5 * HOUR, S.QUEUED, estimate=2.0)
    # Finished this month, as the rollup has them: the real cost, else the estimate.
    await job_at(db, clock, MONTH, S.DELIVERED, estimate=0.5, cost=0.75)
    await job_at(db, clock, MONTH + 4 * 86_400, S.DELIVERED, estimate=0.5)
    await job_at(db, clock, MONTH + 5 * 86_400, S.UNDELIVERABLE, estimate=0.5, cost=0.25)
    await job_at(db, clock, MONTH + 6 * 86_400, S.FAILED, estimate=3.0)  # free
    await job_at(db, clock, MONTH + 7 * 86_400, S.CANCELLED, estimate=3.0)  # free
    await job_at(db, clock, MONTH + 8 * 86_400, S.TIMED_OUT, estimate=0.125)
    await job_at(db, clock, MONTH + 9 * 86_400, S.OUTCOME_UNKNOWN, estimate=1.5)
    # Open: reserved at the estimate, or the cost once known.
    await job_at(db, clock, DAY, S.QUEUED, estimate=1.0)
    await job_at(db, clock, DAY + HOUR, S.FETCHED, estimate=1.0, cost=0.0625)
    await job_at(db, clock, DAY + 2 * HOUR, S.ACCEPTED)  # no price known: nothing
    # Never budgeted: simulated jobs, and another guild's.
    await job_at(db, clock, DAY, S.DELIVERED, estimate=8.0, cost=8.0, simulated=True)
    await job_at(db, clock, DAY, S.RUNNING, estimate=8.0, simulated=True)
    await job_at(db, clock, DAY, S.DELIVERED, estimate=16.0, cost=16.0, guild=OTHER_GUILD)
    assert await spent(db) == 0.75 + 0.5 + 0.25 + 0.125 + 1.5 + 1.0 + 0.0625
    assert await spent(db, OTHER_GUILD) == 16.0


async def test_a_job_counts_once_as_it_finishes(db: Database, clock: SetClock) -> None:
    """Reserved at its estimate while open, then its real cost from the rollup: never both,
    never neither."""
    queued = await job_at(db, clock, DAY, S.QUEUED, estimate=1.0)
    running = await job_at(db, clock, DAY, S.RUNNING, estimate=0.5)
    assert await spent(db) == 1.5
    store = JobStore(db, clock)
    await store.move(queued, S.FETCHED, cost_usd=0.875)
    assert await spent(db) == 1.375
    await store.move(queued, S.DELIVERING)
    await store.move(queued, S.DELIVERED)
    assert await spent(db) == 1.375
    await store.move(running, S.FAILED, error="RunComfy failed")
    assert await spent(db) == 0.875


async def test_the_admission_sees_the_job_it_just_recorded(db: Database, clock: SetClock) -> None:
    """Inside its transaction, the job written is counted; outside, once committed."""
    store = JobStore(db, clock)
    async with db.transaction() as tx:
        await store.add(NewJob(GUILD, 10, ALICE, "m/x", "kling-3-0-4k", "a", {}, 2.5), tx=tx)
        mine = await held(tx, since=DAY)
        assert mine.purse.spent == 2.5
        assert mine.use == MemberUse(1, 1, clock.now)
        assert await spent(db) == 0.0
    assert await spent(db) == 2.5


async def test_the_purse_carries_the_servers_own_key_and_no_other(db: Database) -> None:
    """The key a server pays with is read with its spending (no round trip of its own)."""
    keys = GuildKeys(db)
    async with db.transaction() as tx:
        await keys.put(tx, GUILD, "sealed-bytes", "abcd", 5.0)
    await keys.refused(GUILD, "sealed-bytes", 6.0)
    async with db.read() as reader:
        mine = (await held(reader)).purse
        other = (await held(reader, guild=OTHER_GUILD)).purse
    assert mine == Purse(0.0, StoredKey("sealed-bytes", "abcd", 5.0, 6.0))
    assert other == Purse(0.0, None)


async def test_the_guilds_settings_come_with_its_use_and_no_others(db: Database,
                                                                   clock: SetClock) -> None:
    """One row a setting, each carrying the member's use and the purse; none: the use alone."""
    settings = SettingsStore(db, clock)
    await job_at(db, clock, DAY + HOUR, S.QUEUED, estimate=1.5)
    async with db.transaction() as tx:
        await settings.record(tx, GUILD, 1, [Edit("daily_quota", "0", "3"),
                                             Edit("language", "null", '"ja"')])
        await settings.record(tx, OTHER_GUILD, 1, [Edit("cooldown_seconds", "0", "60")])
    async with db.read() as reader:
        mine = await held(reader)
        bare = await held(reader, guild=7 << 23)
    assert mine == Holdings(MemberUse(1, 1, DAY + HOUR), Purse(1.5, None),
                            {"daily_quota": 3, "language": "ja"})
    assert bare == Holdings(MemberUse(0, 0, None), Purse(0.0, None), {})
