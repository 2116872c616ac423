"""A soak: many jobs through every end state, then nothing of them is left in the process.

The poller, its queue pace and the channel workers keep per-job and per-channel structures;
once every job is settled they must be back to their size at the start (they were not: jobs
that ended while queued stayed in the queue pace, and gone channels' upload retries, for ever).
"""

from __future__ import annotations

import itertools
from collections.abc import Awaitable, Callable

import pytest

from bot.discord.channel_work import ChannelWork
from bot.jobs import JobState
from bot.simulator import Fault, Plan
from bot.simulator import JobState as SimState
from tests.clocks import ManualClock
from tests.conftest import RunningSimulator
from tests.discord_world import World
from tests.images import image_bytes

PNG = image_bytes("png", 800, 600)
JOBS = 2000
ROUND = 200
# Each end state, and how the simulator (or the test) makes it.
KINDS = ("delivered", "failed", "timed out running", "timed out queued", "cancelled queued",
         "expired", "outcome unknown", "undeliverable")


@pytest.fixture
async def runcomfy(start_simulator: Callable[..., Awaitable[RunningSimulator]],
                   sim_clock: ManualClock) -> RunningSimulator:
    """RunComfy with room for every job at once (the soak is about the bot, not a queue)."""
    return await start_simulator(clock=sim_clock, run_seconds=6, workers=JOBS)


def plan(kind: str) -> Plan:
    if kind == "failed":
        return Plan(SimState.FAILED, run_seconds=6)
    if kind == "timed out running":
        return Plan(run_seconds=7200)
    if kind in ("timed out queued", "cancelled queued"):
        return Plan(queue_seconds=7200)
    if kind == "expired":
        return Plan(run_seconds=30)  # still running when RunComfy forgets it
    return Plan(run_seconds=6)


@pytest.mark.parametrize("database_target", ["sqlite"], indirect=True)
@pytest.mark.settings(jobs={"timeout_minutes": 1, "poll_interval": 3})
async def test_every_job_settled_leaves_nothing_behind(world: World) -> None:
    """In rounds of ``ROUND`` (SimCord settles the bot after every command: a few hundred jobs
    in flight at once are what a round holds), every end state each round."""
    bot = world.bot
    channels = bot.parts.poller.channels
    assert isinstance(channels, ChannelWork)
    at_start = bot.parts.poller.kept() | channels.kept()
    members = itertools.cycle([world.alice, world.bob, world.mod])
    rooms = [world.channel, *(world.guild.create_text_channel(f"room-{n}") for n in range(3))]
    expected = {"delivered": JobState.DELIVERED, "failed": JobState.FAILED,
                "timed out running": JobState.TIMED_OUT, "timed out queued": JobState.TIMED_OUT,
                "cancelled queued": JobState.CANCELLED, "expired": JobState.FAILED,
                "outcome unknown": JobState.OUTCOME_UNKNOWN,
                "undeliverable": JobState.UNDELIVERABLE}
    first = 1
    for round_ in range(JOBS // ROUND):
        doomed = world.guild.create_text_channel(f"doomed-{round_}")
        # RunComfy's queue is first in, first out: the jobs kept queued go last.
        kinds = sorted((KINDS[i % len(KINDS)] for i in range(ROUND)),
                       key=lambda kind: kind.endswith("queued"))
        world.sim.plan_next(*(plan(kind) for kind in kinds))  # a lost submit takes one too
        for offset, kind in enumerate(kinds):
            if kind == "outcome unknown":
                world.sim.inject(Fault("lost", status=502, method="POST", path="/v1/models/"))
            channel = doomed if kind == "undeliverable" else rooms[offset % len(rooms)]
            await next(members).slash(channel, "kling-2-1", prompt=f"job {first + offset}",
                                      image=("z.png", PNG))
        world.env.backend.delete_channel(doomed.id)  # before its videos are made
        await world.run_polls(2)
        for offset, kind in enumerate(kinds):
            job = await world.job(first + offset)
            if kind == "cancelled queued":
                assert await bot.parts.jobs.cancel(job.id, guild_id=job.guild_id,
                                                   user_id=job.user_id,
                                                   moderates=lambda _: False) == (
                    f"Job #{job.id} is cancelled; nothing is charged for it.")
            elif kind == "expired":
                assert job.request_id is not None
                world.sim.expire(job.request_id)
        for _ in range(60):
            if not await bot.parts.store.open_jobs():
                break
            await world.run_polls(1)
        states = [(await world.job(first + offset)).state for offset in range(ROUND)]
        assert states == [expected[kind] for kind in kinds]
        first += ROUND
    await world.run_polls(2)  # the last cards' edits
    assert bot.parts.poller.kept() | channels.kept() == at_start
