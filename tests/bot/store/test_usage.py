"""The usage rollup read for reports, on both backends: one line per member, model or day with
the numbers a moderator reads, one member's own lines, and the period's first and last days
both included."""

from __future__ import annotations

from datetime import date

import pytest

from bot.jobs import JobState
from bot.store.database import Database
from bot.store.jobs import JobStore, NewJob
from bot.store.usage import GroupBy, Line, UsageRows, usage_rows
from tests.clocks import SetClock

S = JobState
JAN_1 = 1_767_225_600.0  # 2026-01-01 00:00 UTC
DAYS = 86_400.0
GUILD, OTHER_GUILD = 7 << 22, 8 << 22
ALICE, BOB = 284_102_755_512_254_465, 91_337_000_000_000_001  # Discord ids: 64-bit
_FETCH = [S.SUBMITTING, S.QUEUED, S.RUNNING, S.FETCHED]
PATHS = {
    S.DELIVERED: [*_FETCH, S.DELIVERING, S.DELIVERED],
    S.UNDELIVERABLE: [*_FETCH, S.UNDELIVERABLE],
    S.FAILED: [S.SUBMITTING, S.QUEUED, S.RUNNING, S.FAILED],
    S.CANCELLED: [S.SUBMITTING, S.QUEUED, S.CANCELLED],
    S.TIMED_OUT: [S.SUBMITTING, S.QUEUED, S.RUNNING, S.TIMED_OUT],
    S.QUEUED: [S.SUBMITTING, S.QUEUED],
}


@pytest.fixture
def clock() -> SetClock:
    return SetClock(JAN_1)


async def job(db: Database, clock: SetClock, at: float, user: int, command: str,
              end: JobState, *, seconds: float = 5, estimate: float | None = None,
              cost: float | None = None, simulated: bool = False,
              guild: int = GUILD) -> None:
    clock.now = at
    store = JobStore(db, clock)
    added = await store.add(NewJob(guild, 10, user, f"runcomfy/{command}", command, "a cat",
                                   {"prompt": "a cat"}, estimate, seconds=seconds,
                                   simulated=simulated))
    for step in PATHS[end]:
        moved = await (store.move(added.id, step, cost_usd=cost) if step is S.FETCHED
                       else store.move(added.id, step))
        assert moved is not None


@pytest.fixture
async def january(db: Database, clock: SetClock) -> Database:
    """Three days of a guild's jobs (10 to 12 January), and jobs on either side of them."""
    jan = [JAN_1 + n * DAYS for n in range(31)]
    await job(db, clock, jan[9] - 1, ALICE, "kling-3-0", S.DELIVERED, cost=2.0)  # 9 January
    await job(db, clock, jan[9], ALICE, "kling-3-0", S.DELIVERED, seconds=10, cost=0.75)
    await job(db, clock, jan[9] + 3600, ALICE, "kling-3-0", S.FAILED, estimate=0.5)
    await job(db, clock, jan[9] + 7200, BOB, "wan-2-2", S.DELIVERED, estimate=0.25)
    await job(db, clock, jan[10] + 60, ALICE, "wan-2-2", S.CANCELLED, estimate=0.25)
    await job(db, clock, jan[10] + 120, BOB, "kling-3-0", S.UNDELIVERABLE, seconds=10)  # unpriced
    await job(db, clock, jan[10] + 180, BOB, "kling-3-0", S.TIMED_OUT, seconds=10,
              estimate=0.5)
    await job(db, clock, jan[11] + DAYS - 1, ALICE, "kling-3-0", S.DELIVERED, seconds=10,
              cost=1.0, simulated=True)  # the last second of 12 January
    await job(db, clock, jan[12], BOB, "wan-2-2", S.DELIVERED, cost=2.0)  # 13 January
    await job(db, clock, jan[10], BOB, "wan-2-2", S.QUEUED, estimate=4.0)  # not over: not yet
    await job(db, clock, jan[10], ALICE, "kling-3-0", S.DELIVERED, cost=4.0,
              guild=OTHER_GUILD)
    return db


async def rows(db: Database, first: int, last: int, group_by: GroupBy,
               user_id: int | None = None) -> UsageRows:
    """The guild's usage from ``first`` to ``last`` January 2026."""
    return await usage_rows(db, GUILD, date(2026, 1, first), date(2026, 1, last),
                            group_by, user_id)


async def test_a_line_per_member_costliest_first(january: Database) -> None:
    usage = await rows(january, 10, 12, "user")
    assert usage.lines == [
        #    key, jobs, seconds, cost, failures, cancellations, unpriced, simulated
        Line(str(ALICE), 4, 20.0, 1.75, 1, 1, 0, 1),
        Line(str(BOB), 3, 15.0, 0.75, 1, 0, 1, 0),
    ]


async def test_a_line_per_model(january: Database) -> None:
    usage = await rows(january, 10, 12, "model")
    assert usage.lines == [
        Line("kling-3-0", 5, 30.0, 2.25, 2, 0, 1, 1),
        Line("wan-2-2", 2, 5.0, 0.25, 0, 1, 0, 0),
    ]


async def test_a_line_per_day_in_order_of_days(january: Database) -> None:
    usage = await rows(january, 10, 12, "day")
    assert usage.lines == [
        Line("2026-01-10", 3, 15.0, 1.0, 1, 0, 0, 0),
        Line("2026-01-11", 3, 10.0, 0.5, 1, 1, 1, 0),
        Line("2026-01-12", 1, 10.0, 1.0, 0, 0, 0, 1),
    ]


async def test_the_cost_of_each_model_each_day(january: Database) -> None:
    groups: tuple[GroupBy, ...] = ("user", "model", "day")
    for group_by in groups:  # the same whatever the lines are
        assert (await rows(january, 10, 12, group_by)).cost_by_day == {
            "2026-01-10": {"kling-3-0": 0.75, "wan-2-2": 0.25},
            "2026-01-11": {"kling-3-0": 0.5, "wan-2-2": 0.0},
            "2026-01-12": {"kling-3-0": 1.0},
        }


async def test_one_members_own_lines(january: Database) -> None:
    usage = await rows(january, 10, 12, "model", ALICE)
    assert usage.lines == [
        Line("kling-3-0", 3, 20.0, 1.75, 1, 0, 0, 1),
        Line("wan-2-2", 1, 0.0, 0.0, 0, 1, 0, 0),
    ]
    assert usage.cost_by_day == {"2026-01-10": {"kling-3-0": 0.75},
                                 "2026-01-11": {"wan-2-2": 0.0},
                                 "2026-01-12": {"kling-3-0": 1.0}}
    assert (await rows(january, 10, 12, "user", BOB)).lines == [
        Line(str(BOB), 3, 15.0, 0.75, 1, 0, 1, 0)]
    assert await rows(january, 10, 12, "user", 555) == UsageRows([], {})


async def test_the_first_and_last_days_are_included(january: Database) -> None:
    one_day = await rows(january, 12, 12, "day")
    assert [line.key for line in one_day.lines] == ["2026-01-12"]
    assert [line.key for line in (await rows(january, 9, 10, "day")).lines] == [
        "2026-01-09", "2026-01-10"]
    assert [(line.key, line.jobs) for line in (await rows(january, 11, 13, "day")).lines] == [
        ("2026-01-11", 3), ("2026-01-12", 1), ("2026-01-13", 1)]
    month = await rows(january, 1, 31, "user")
    assert [(line.key, line.jobs, line.cost_usd) for line in month.lines] == [
        (str(ALICE), 5, 3.75), (str(BOB), 4, 2.75)]
    assert await rows(january, 14, 31, "model") == UsageRows([], {})


async def test_equal_costs_are_ordered_by_key(db: Database, clock: SetClock) -> None:
    for user, command in ((10, "wan-2-2"), (9, "kling-3-0"), (11, "kling-1-6")):
        await job(db, clock, JAN_1, user, command, S.DELIVERED, cost=0.5)
    assert [line.key for line in (await rows(db, 1, 1, "user")).lines] == ["9", "10", "11"]
    assert [line.key for line in (await rows(db, 1, 1, "model")).lines] == [
        "kling-1-6", "kling-3-0", "wan-2-2"]
