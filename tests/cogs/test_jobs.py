"""Cancelling jobs (button and /cancel), and a member's /jobs."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from bot.jobs import JobState
from bot.simulator import Fault, Plan
from tests.discord_world import World
from tests.images import image_bytes

PNG = image_bytes("png", 800, 600)
RUNNING = ("Job #{} is already running: it can't be stopped and will be charged. The video "
           "will be posted when it is ready.")


async def start(world: World, member: Any = None, prompt: str = "a zebra") -> None:
    actor = member or world.alice
    await actor.slash(world.channel, "kling-2-1", prompt=prompt, image=("z.png", PNG))


async def three_jobs(world: World) -> None:
    """Two run (the simulator has two workers) and the third waits in the queue."""
    world.sim.plan_next(Plan(run_seconds=600), Plan(run_seconds=600))
    for prompt in ("one", "two", "three"):
        await start(world, prompt=prompt)


async def test_the_cancel_button_cancels_a_queued_job(world: World) -> None:
    await three_jobs(world)
    result = await world.alice.click(world.card(3), label="Cancel")
    assert result.ephemeral
    assert result.response.content == "Job #3 is cancelled; nothing is charged for it."
    card = world.card(3)
    assert card.embeds[0].title == "Kling 2.1 Pro · Cancelled"
    assert card.components == []
    assert (await world.job(3)).state is JobState.CANCELLED
    assert world.sim.submits[2].state == "cancelled"


async def test_a_cancel_button_that_fails_says_so_instead_of_thinking_forever(
        world: World) -> None:
    await three_jobs(world)
    await world.bot.parts.db.write("ALTER TABLE jobs RENAME TO jobs_away")  # the store fails
    try:
        result = await world.alice.click(world.card(3), label="Cancel")
    finally:
        await world.bot.parts.db.write("ALTER TABLE jobs_away RENAME TO jobs")
    assert result.ephemeral
    assert result.response.content == "Something went wrong on the bot's side; it has been logged."
    assert world.sim.submits[2].state != "cancelled"


async def test_a_running_job_cannot_be_cancelled(world: World) -> None:
    await three_jobs(world)
    result = await world.alice.slash(world.channel, "cancel", job=1)
    assert result.ephemeral
    assert result.response.content == RUNNING.format(1)
    assert (await world.job(1)).state in (JobState.QUEUED, JobState.RUNNING)


async def test_someone_elses_job_is_refused_but_a_moderator_may(world: World) -> None:
    await three_jobs(world)
    refused = await world.bob.click(world.card(3), label="Cancel")
    assert refused.ephemeral
    assert refused.response.content == (
        "Only the member who asked for job #3 or a moderator (Manage Messages) can cancel it.")
    assert (await world.job(3)).state is JobState.QUEUED
    allowed = await world.mod.slash(world.channel, "cancel", job=3)
    assert allowed.response.content == "Job #3 is cancelled; nothing is charged for it."


async def test_unknown_and_finished_jobs(world: World) -> None:
    result = await world.alice.slash(world.channel, "cancel", job=99)
    assert result.response.content == "There is no job #99 in this server."
    await start(world)
    await world.run_until(lambda: bool(world.videos()))
    result = await world.alice.slash(world.channel, "cancel", job=1)
    assert result.response.content == "Job #1 is already over (done)."


async def test_the_button_still_works_after_a_restart(world: World) -> None:
    await three_jobs(world)
    await world.restart()
    result = await world.alice.click(world.card(3), label="Cancel")
    assert result.response.content == "Job #3 is cancelled; nothing is charged for it."


async def test_cancel_suggests_the_callers_waiting_jobs(world: World) -> None:
    await three_jobs(world)
    await start(world, world.bob, "bob's")
    choices = await world.alice.autocomplete(world.channel, "cancel", "job", "")
    assert [c["value"] for c in choices] == [3, 2, 1]
    assert choices[0]["name"] == "#3 Queued: three"
    assert [c["value"] for c in await world.bob.autocomplete(world.channel, "cancel", "job",
                                                              "")] == [4]


async def test_jobs_lists_my_recent_jobs(world: World) -> None:
    await start(world, prompt="first @everyone")
    await world.run_until(lambda: bool(world.videos()))
    await start(world, world.bob, "not mine")
    result = await world.alice.slash(world.channel, "jobs")
    assert result.ephemeral
    [embed] = result.response.embeds
    lines = (embed.description or "").splitlines()
    video = world.videos()[0]
    assert lines[0].startswith("**#1** Kling 2.1 Pro: Done in ")
    assert lines[0].endswith(
        f"[video](https://discord.com/channels/{world.guild.id}/{world.channel.id}/{video.id})")
    assert lines[1] == "> first @\u200beveryone"
    assert len(lines) == 2


@pytest.mark.parametrize("via", ["button", "command"])
async def test_cancel_is_acknowledged_before_runcomfy_answers(world: World, via: str) -> None:
    """RunComfy takes 5 s to answer the cancel: Discord has had its answer (a defer) when the
    cancel reaches RunComfy, and the card says cancelled once RunComfy has answered."""
    await three_jobs(world)
    slow = world.sim.inject(Fault("slow", delay=5, path="/cancel$"))
    world.env.settle_timeout = 20  # SimCord waits for the bot longer than RunComfy takes
    if via == "button":
        pressing = asyncio.create_task(world.alice.click(world.card(3), label="Cancel"))
    else:
        pressing = asyncio.create_task(world.alice.slash(world.channel, "cancel", job=3))
    result = await world.answered_before_runcomfy(pressing)
    assert slow.times == 0
    assert result.response.content == "Job #3 is cancelled; nothing is charged for it."
    await world.run_polls(1)
    assert world.card(3).embeds[0].title == "Kling 2.1 Pro · Cancelled"
