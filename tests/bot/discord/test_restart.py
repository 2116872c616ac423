"""A restart loses nothing and posts nothing twice."""

from __future__ import annotations

import pytest

from bot.jobs import Job, JobState
from bot.simulator import Plan
from bot.store.jobs import NewJob
from tests.discord_world import World
from tests.images import image_bytes

PNG = image_bytes("png", 800, 600)


async def start(world: World, prompt: str) -> None:
    await world.alice.slash(world.channel, "kling-2-1", prompt=prompt, image=("z.png", PNG))


async def test_queued_running_and_finished_jobs_are_each_posted_once(world: World) -> None:
    # Job 1 finishes at RunComfy while the bot is down; 2 is running and 3 queued at restart.
    world.sim.plan_next(Plan(run_seconds=5), Plan(run_seconds=60), Plan(run_seconds=5))
    for prompt in ("finished while down", "running", "queued"):
        await start(world, prompt)
    await world.run_polls(1)
    assert [(await world.job(i)).state for i in (1, 2, 3)] == [
        JobState.RUNNING, JobState.RUNNING, JobState.QUEUED]

    world.clock.advance(10)  # job 1 completes at RunComfy; nobody is polling
    await world.restart()
    await world.run_until(lambda: len(world.videos()) == 3)
    await world.run_polls(5)

    videos = world.videos()
    assert sorted(world.replied_to(videos)) == sorted(
        world.card(i).id for i in (1, 2, 3))
    assert len(videos) == 3
    assert [(await world.job(i)).state for i in (1, 2, 3)] == [JobState.DELIVERED] * 3
    assert len(world.sim.submits) == 3  # nothing was submitted again
    cards = [m for m in world.bot_messages() if m.embeds]
    assert len(cards) == 3


async def submitting(world: World) -> Job:
    """A job as the store has it between writing it down and hearing back from RunComfy."""
    store = world.bot.parts.store
    job = await store.add(NewJob(guild_id=world.guild.id, channel_id=world.channel.id,
                                 user_id=world.alice.id, model_id="kling/kling-2-1/pro/"
                                 "image-to-video", command="kling-2-1", prompt="lost",
                                 body={"prompt": "lost"}, estimated_usd=None))
    moved = await store.move(job.id, JobState.SUBMITTING)
    assert moved is not None
    return moved


@pytest.mark.settings(jobs={"lease_seconds": 30})
async def test_a_job_caught_mid_submit_is_not_sent_again(world: World) -> None:
    # As if the bot died between writing the job down and hearing back from RunComfy.
    job = await submitting(world)
    await world.restart()
    await world.run_polls(1)
    # A crash releases nothing: the next life takes the job once its lease has run out (a
    # live process renews its leases, so a rolling deploy's two processes never share one).
    assert (await world.job(job.id)).state is JobState.SUBMITTING
    await world.run_polls(round(world.bot.settings.jobs.lease_seconds / world.poll_interval))
    ended = await world.job(job.id)
    assert ended.state is JobState.OUTCOME_UNKNOWN
    assert world.card(job.id).embeds[0].title == "Kling 2.1 Pro · Outcome unknown"
    assert world.bot_messages()[-1].content == (
        f"<@{world.alice.id}> your video could not be made: The bot restarted while sending "
        "the job; it may or may not have started, and it was not sent again.")
    assert world.sim.submits == []


async def test_commands_are_synced_only_when_they_change(world: World) -> None:
    def syncs() -> int:
        return sum(1 for r in world.env.http_requests
                   if r.method == "PUT" and r.path.endswith("/commands"))

    assert syncs() == 1
    await world.restart()
    assert syncs() == 1
    await world.bot.sync_commands(force=True)
    assert syncs() == 2


async def test_a_job_taken_over_mid_submit_from_a_process_gone_is_settled(
        world: World) -> None:
    """Another process (other shards, or before a change of shards) died in the middle of a
    submit; once its lease has run out, this one takes the job and settles it, without a
    restart of its own, and never sends it again."""
    job = await submitting(world)
    await world.bot.parts.db.write("UPDATE jobs SET lease_owner = 'shards 1 of 2',"
                                   " lease_until = ? WHERE id = ?", world.bot.clock() + 10,
                                   job.id)
    await world.run_polls(1)
    assert (await world.job(job.id)).state is JobState.SUBMITTING  # still held by the other
    await world.run_polls(4)  # its lease runs out
    assert (await world.job(job.id)).state is JobState.OUTCOME_UNKNOWN
    assert world.card(job.id).embeds[0].title == "Kling 2.1 Pro · Outcome unknown"
    assert world.sim.submits == []
