"""Fifty coroutines at once on one store, on both backends: admissions (through the real job
service, RunComfy simulated over HTTP), state moves, notices, settings and reports. Nothing
fails, and everything that was acknowledged is there after the store is closed and reopened."""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bot.catalog import Catalog
from bot.jobs import JobState
from bot.limits import LimitReached, Limits
from bot.policy import Policy, PolicyStore
from bot.pricing import PriceBook
from bot.service import JobService, Requester
from bot.store.connect import open_database
from bot.store.jobs import JobStore
from bot.store.notices import NoticeStore
from bot.usage import UsageReports, period
from tests.conftest import RunningSimulator, new_postgres_database
from tests.postgres_server import PostgresServer

GUILDS = (1 << 22, 2 << 22)
WORKERS, OPERATIONS = 50, 500
LIFECYCLE = (JobState.RUNNING, JobState.FETCHED, JobState.DELIVERING, JobState.DELIVERED)


def blocking(member: int) -> Callable[[Policy], dict[str, Any]]:
    return lambda policy: {"blocked_users": [*policy.blocked_users, member]}


async def test_fifty_coroutines_lose_nothing(database_target: Path | str, catalog: Catalog,
                                             simulator: RunningSimulator) -> None:
    def clock() -> float:
        return 1_767_225_600.0  # 2026-01-01, one day for every job

    db = await open_database(database_target, clock=clock)
    store = JobStore(db, clock)
    policies = PolicyStore(db, Policy(max_concurrent=0), clock)
    notices = NoticeStore(db, clock)
    reports = UsageReports(db)
    model = catalog.by_command("kling-3-0-4k")  # text to video: no image to read
    body = {"prompt": "a lighthouse", "duration": 5}
    rng = random.Random(12)
    plan = [rng.choice(["admit", "admit", "move", "move", "notice", "take", "setting",
                        "report"]) for _ in range(OPERATIONS)]
    acknowledged_states: dict[int, JobState] = {}
    notices_added: list[str] = []
    notices_taken: list[str] = []
    blocked: list[int] = []
    errors: list[BaseException] = []
    async with simulator.client() as runcomfy:
        service = JobService(catalog, store, runcomfy, Limits(db, policies, clock),
                             PriceBook(catalog, {}), lambda job: None, clock=clock)

        async def worker(number: int) -> None:
            guild = GUILDS[number % 2]
            user = 1000 + number
            for step in plan[number::WORKERS]:
                try:
                    if step == "admit":
                        job = await service.start(model, dict(body),
                                                  Requester(guild, 77, user))
                        acknowledged_states[job.id] = job.state
                    elif step == "move":
                        mine = [i for i, s in acknowledged_states.items()
                                if s is not JobState.DELIVERED and i % WORKERS == number]
                        for job_id in mine[:1]:
                            to = LIFECYCLE[LIFECYCLE.index(acknowledged_states[job_id]) + 1] \
                                if acknowledged_states[job_id] in LIFECYCLE else JobState.RUNNING
                            moved = await store.move(job_id, to, cost_usd=0.5)
                            assert moved is not None, (job_id, to)
                            acknowledged_states[job_id] = moved.state
                    elif step == "notice":
                        text = f"notice {number}-{len(notices_added)}"
                        await notices.add(guild, user, text)
                        notices_added.append(text)
                    elif step == "take":
                        notices_taken.extend(await notices.take(guild, user))
                    elif step == "setting":
                        member = 5000 + len(blocked)
                        blocked.append(member)
                        await policies.update(guild, user, blocking(member))
                    else:
                        await reports.report(guild, period("today", clock()), "user")
                except BaseException as exc:
                    errors.append(exc)

        await asyncio.gather(*(worker(n) for n in range(WORKERS)))
    assert errors == []
    await db.close()

    db = await open_database(database_target, clock=clock)
    store, policies = JobStore(db, clock), PolicyStore(db, Policy(), clock)
    for job_id, state in acknowledged_states.items():
        job = await store.get(job_id)
        assert job is not None and job.state is state, (job_id, state, job)
    rest = [row[0] for row in await db.fetch("SELECT text FROM notices")]
    assert Counter(notices_taken) + Counter(rest) == Counter(notices_added)
    assert len(set(notices_taken)) == len(notices_taken)  # none shown twice
    stored = set()
    for guild in GUILDS:
        stored |= set((await policies.get(guild)).blocked_users)
    assert stored == set(blocked)  # two moderators at once both land
    [[audited]] = await db.fetch("SELECT COUNT(*) FROM settings_audit")
    assert audited == len(blocked)
    delivered = Counter(s for s in acknowledged_states.values())[JobState.DELIVERED]
    [[rolled_up]] = await db.fetch("SELECT COALESCE(SUM(jobs), 0) FROM usage_daily")
    assert rolled_up == delivered
    assert len(simulator.sim.submits) == len(acknowledged_states)
    await db.close()


async def test_a_guild_served_by_two_processes_cannot_overspend(
        postgres: PostgresServer, catalog: Catalog, simulator: RunningSimulator) -> None:
    """Two processes (two connection pools) admit for one guild at once: its budget holds."""
    def clock() -> float:
        return 1_767_225_600.0

    url = await new_postgres_database(postgres)
    dbs = [await open_database(url, clock=clock) for _ in range(2)]
    model = catalog.by_command("kling-3-0-4k")  # $0.42/s: $2.10 for 5 s
    budget = Policy(monthly_budget_usd=10.0, max_concurrent=0)
    started: list[int] = []
    refused: list[str] = []
    async with simulator.client() as runcomfy:
        services = [JobService(catalog, JobStore(db, clock), runcomfy,
                               Limits(db, PolicyStore(db, budget, clock), clock),
                               PriceBook(catalog, {}), lambda job: None, clock=clock)
                    for db in dbs]

        async def ask(service: JobService, user: int) -> None:
            try:
                job = await service.start(model, {"prompt": "a comet", "duration": 5},
                                          Requester(GUILDS[0], 77, user))
                started.append(job.id)
            except LimitReached as exc:
                refused.append(str(exc))

        await asyncio.gather(*(ask(services[n % 2], 2000 + n) for n in range(20)))
    assert len(started) == 4  # $8.40 of $10.00; a fifth would make $10.50
    assert len(refused) == 16 and all("monthly video budget" in r for r in refused)
    assert len(simulator.sim.submits) == 4
    for db in dbs:
        await db.close()
