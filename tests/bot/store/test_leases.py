"""Who serves a job, decided in the database: a process takes only its shards' guilds, keeps
the jobs it holds until they end, and takes another's only when that lease has run out (while
the shard count changes, say) or was released (a graceful stop). Two processes with the same
shards (a rolling deploy) never share a job: each life of a process has its own name."""

from __future__ import annotations

from pathlib import Path

from bot.jobs import JobState
from bot.shards import Shards
from bot.store.connect import open_database
from bot.store.jobs import JobStore, NewJob


class Clock:
    def __init__(self) -> None:
        self.now = 1_767_225_600.0

    def __call__(self) -> float:
        return self.now


async def test_leases_follow_the_shards(database_target: Path | str) -> None:
    clock = Clock()
    db = await open_database(database_target, clock=clock)
    old = JobStore(db, clock, shards=Shards(1, frozenset({0})), lease_seconds=30)
    zero = JobStore(db, clock, shards=Shards(2, frozenset({0})), lease_seconds=30)
    one = JobStore(db, clock, shards=Shards(2, frozenset({1})), lease_seconds=30)
    guilds = {0: 2 << 22, 1: 3 << 22}  # on shard 0 and shard 1 of 2
    jobs = {}
    for shard, guild in guilds.items():  # made by the process of the old layout
        job = await old.add(NewJob(guild, 1, 1, "m/x", "kling-2-1", "", {}, None))
        await old.move(job.id, JobState.SUBMITTING)
        queued = await old.move(job.id, JobState.QUEUED, request_id=f"r{shard}")
        assert queued is not None
        jobs[shard] = queued
    assert [j.id for j in await old.claim_open()] == [jobs[0].id, jobs[1].id]
    assert await zero.claim_open() == [] and await one.claim_open() == []  # held by the old

    clock.now += 20
    assert len(await old.claim_open()) == 2  # renewed: the old process still runs
    clock.now += 20
    assert await zero.claim_open() == []

    clock.now += 31  # the old process is gone: its leases run out
    assert [j.id for j in await zero.claim_open()] == [jobs[0].id]
    assert [j.id for j in await one.claim_open()] == [jobs[1].id]
    assert await old.claim_open() == []
    twin = JobStore(db, clock, shards=Shards(2, frozenset({1})), lease_seconds=30)
    assert twin.owner != one.owner
    assert await twin.claim_open() == []  # the same shards, but the job is served
    clock.now += 20
    assert len(await one.claim_open()) == 1 and await twin.claim_open() == []  # renewed
    assert await one.release() == 1  # a graceful stop
    assert [j.id for j in await twin.claim_open()] == [jobs[1].id]  # at once
    assert await one.claim_open() == []
    await twin.move(jobs[1].id, JobState.CANCELLED)
    assert await twin.claim_open() == []  # over: nobody serves it
    await db.close()
