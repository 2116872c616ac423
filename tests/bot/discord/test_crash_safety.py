"""Crashes at any point of a job's life: nothing lost, nothing posted or submitted twice."""

from __future__ import annotations

import logging
import random
import sqlite3
from collections import Counter
from typing import Any

import pytest

from bot.discord.client import VideoBot
from bot.discord.history import is_card_of
from bot.jobs import TERMINAL, JobState
from bot.simulator import JobState as SimState
from bot.simulator import Plan
from bot.store.sqlite import SqliteDatabase
from tests.discord_world import World
from tests.images import image_bytes

PNG = image_bytes("png", 640, 480)


async def power_cut(bot: VideoBot, after: int, *, or_once: str | None = None) -> None:
    """From the ``after``-th next SQL statement on (or right after one containing ``or_once``),
    the bot's database refuses everything: the process is as good as dead, and the file keeps
    only what was committed."""
    left = [after]

    def count(sql: str) -> None:
        left[0] = -1 if or_once and or_once in sql else left[0] - 1

    def authorize(*_: Any) -> int:
        return sqlite3.SQLITE_DENY if left[0] < 0 else sqlite3.SQLITE_OK

    db = bot.parts.db
    assert isinstance(db, SqliteDatabase)
    await db.writer.set_trace_callback(count)
    await db.writer.set_authorizer(authorize)


def videos_of(world: World, job_id: int, channel: Any) -> int:
    return sum(1 for m in world.videos(channel) if f"job #{job_id})" in m.content)


async def test_a_crash_after_the_upload_does_not_post_it_again(world: World) -> None:
    await world.alice.slash(world.channel, "kling-2-1", prompt="once", image=("z.png", PNG))
    await world.run_until(lambda: bool(world.videos()))
    [video] = world.videos()
    [sent] = [r.json for r in world.env.http_requests
              if r.method == "POST" and r.json and "job #1)" in (r.json.get("content") or "")]
    # Discord drops a resend with the same nonce for a few minutes; the bot also looks.
    tag = await world.bot.parts.store.nonce_tag()
    assert (sent["nonce"], sent["enforce_nonce"]) == (f"rc-{tag}-vid-1", True)
    # The database as it is when the process dies after the upload, before recording it.
    await world.bot.parts.db.write("UPDATE jobs SET state = 'delivering', result_message_id ="
                                   " NULL WHERE id = 1")
    await world.restart()
    await world.run_polls(3)
    assert len(world.videos()) == 1
    job = await world.job(1)
    assert (job.state, job.result_message_id, job.delivered_as) == (
        JobState.DELIVERED, video.id, "found")


async def test_a_crash_after_the_upload_in_a_busy_channel_does_not_post_it_again(
        world: World) -> None:
    """Sixty messages between the card and the video: the video is still found. (Discord
    answers a history read ``after`` a message with the oldest messages after it, so a look
    from the card would see only the chat; SimCord answers with the newest, so here this
    guards the behaviour rather than reproduces the miss.)"""
    world.sim.plan_next(Plan(run_seconds=60))
    await world.alice.slash(world.channel, "kling-2-1", prompt="once", image=("z.png", PNG))
    for number in range(60):
        await world.bob.send(world.channel, f"chat {number}")
    await world.run_until(lambda: bool(world.videos()))
    [video] = world.videos()
    await world.bot.parts.db.write("UPDATE jobs SET state = 'delivering', result_message_id ="
                                   " NULL WHERE id = 1")
    await world.restart()
    await world.run_polls(3)
    assert len(world.videos()) == 1
    assert (await world.job(1)).result_message_id == video.id


async def test_a_crash_before_the_upload_posts_it_once(world: World) -> None:
    await world.alice.slash(world.channel, "kling-2-1", prompt="once", image=("z.png", PNG))
    await world.run_until(lambda: world.sim.submits[0].state is SimState.SUCCEEDED or
                          bool(world.videos()))
    await world.run_polls(1)
    if not world.videos():  # fetched but not posted yet: the crash window before the upload
        await world.restart()
    await world.run_until(lambda: bool(world.videos()))
    await world.run_polls(3)
    assert len(world.videos()) == 1


# Power cuts are SQLite's authorizer; tests/test_process_crash.py kills real processes on both
# backends.
@pytest.mark.parametrize("database_target", ["sqlite"], indirect=True)
@pytest.mark.settings(jobs={"poll_interval": 3, "card_edit_interval": 0})
async def test_fifty_jobs_and_crashes_at_random_points(world: World,
                                                       caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "bot.discord.channel_work")
    rng = random.Random(20261121)
    other = world.guild.create_text_channel("more-videos")
    channels = [world.channel, other]
    world.sim.plan_next(*[Plan(SimState.FAILED if rng.random() < 0.1 else SimState.SUCCEEDED,
                               run_seconds=rng.choice([3, 6, 9, 15]))
                          for _ in range(60)])
    started, crashes = 0, 0
    for _ in range(400):
        roll = rng.random()
        if started < 50 and roll < 0.45:
            member = world.alice if started % 2 else world.bob
            await member.slash(channels[started % 2], "kling-2-1", prompt=f"chaos {started}",
                               image=("z.png", PNG))
            started += 1
        elif roll < 0.6:
            # Anywhere, or just after a video is marked as being posted: then the upload
            # happens and recording it does not, the worst moment for a double post.
            window = "SET state = 'delivering'" if rng.random() < 0.4 else None
            await power_cut(world.bot, rng.randrange(0, 25), or_once=window)
            if rng.random() < 0.5 and started < 50:  # die in the middle of a command
                await world.alice.slash(channels[0], "kling-2-1", prompt=f"chaos {started}",
                                        image=("z.png", PNG))
                started += 1
            else:  # or in the middle of a poll and its deliveries
                await world.run_polls(1)
            await world.restart()
            crashes += 1
        else:
            await world.run_polls(1)
        if started >= 50 and await all_over(world):
            break
    for _ in range(60):
        if await all_over(world):
            break
        await world.run_polls(1)

    jobs = [job for job in await world.bot.parts.store.open_jobs()]
    assert jobs == [], [(j.id, j.state) for j in jobs]
    everything = await all_jobs(world)
    found = sum("already posted" in r.getMessage() for r in caplog.records)
    print(f"\n{crashes} crashes, {len(everything)} jobs:",
          dict(Counter(j.state.value for j in everything)),
          f"{found} videos found already posted after a crash")
    assert crashes >= 10
    assert len(everything) >= 45  # a command cut off before writing its job has no job
    submits = Counter(job.body["prompt"] for job in world.sim.submits)
    assert max(submits.values()) == 1  # no job was submitted twice
    assert set(submits) <= {job.prompt for job in everything}  # nor without a job row
    for job in everything:
        channel = next(c for c in channels if c.id == job.channel_id)
        posted = videos_of(world, job.id, channel)
        assert posted == (1 if job.state is JobState.DELIVERED else 0), (job.id, job.state)
        if job.state in (JobState.DELIVERED, JobState.FAILED) and job.request_id:
            assert submits[job.prompt] == 1
    assert Counter(j.state for j in everything)[JobState.DELIVERED] >= 25
    assert found >= 1  # the worst moment did happen, and was recovered from
    assert await usage_matches_jobs(world)
    # What the bot raised (and SimCord saw) was the power cut, nothing else.
    assert {str(getattr(e, "original", e)) for e in world.env.errors} <= {
        "not authorized", "no active connection"}


async def all_over(world: World) -> bool:
    return not await world.bot.parts.store.open_jobs()


async def all_jobs(world: World) -> list[Any]:
    ids = [row[0] for row in await world.bot.parts.db.fetch("SELECT id FROM jobs ORDER BY id")]
    return [await world.job(i) for i in ids]


async def usage_matches_jobs(world: World) -> bool:
    """The rollup says what the jobs table says, job by job."""
    expected: Counter[tuple[int, str]] = Counter()
    for job in await all_jobs(world):
        if job.state in TERMINAL:
            expected[(job.user_id, "jobs")] += 1
            expected[(job.user_id, "failures")] += job.state in (
                JobState.FAILED, JobState.TIMED_OUT, JobState.OUTCOME_UNKNOWN)
            expected[(job.user_id, "cancellations")] += job.state is JobState.CANCELLED
    actual: Counter[tuple[int, str]] = Counter()
    for user, jobs, failures, cancellations in await world.bot.parts.db.fetch(
        "SELECT user_id, SUM(jobs), SUM(failures), SUM(cancellations) FROM usage_daily"
        " GROUP BY user_id"
    ):
        actual[(user, "jobs")] += jobs
        actual[(user, "failures")] += failures
        actual[(user, "cancellations")] += cancellations
    return +expected == +actual


async def test_a_crash_between_sending_a_card_and_recording_it_leaves_one_card(
        world: World) -> None:
    world.sim.plan_next(Plan(run_seconds=600), Plan(run_seconds=600))
    for prompt in ("one", "two", "three"):  # the third waits in RunComfy's queue
        await world.alice.slash(world.channel, "kling-2-1", prompt=prompt,
                                image=("z.png", PNG))
    card = world.card(3)
    [sent] = [r.json for r in world.env.http_requests if r.method == "POST" and r.json
              and "Job #3" in str(r.json.get("embeds"))]
    tag = await world.bot.parts.store.nonce_tag()
    assert (sent["nonce"], sent["enforce_nonce"]) == (f"rc-{tag}-card-3", True)
    # The database as it is when the process dies after the card went out, before recording
    # its message: the intent to send it is there, the message id is not.
    await world.bot.parts.db.write("UPDATE jobs SET card_message_id = NULL WHERE id = 3")
    assert (await world.job(3)).card_sending_at is not None
    await world.restart()
    await world.run_polls(2)
    cards = [m for m in world.bot_messages() if is_card_of(m, 3)]
    assert [m.id for m in cards] == [card.id]
    assert (await world.job(3)).card_message_id == card.id
    result = await world.alice.click(world.card(3), label="Cancel")
    assert result.response.content == "Job #3 is cancelled; nothing is charged for it."
    assert world.card(3).embeds[0].title == "Kling 2.1 Pro · Cancelled"


async def test_cancel_on_a_card_the_store_does_not_know_updates_that_card(
        world: World) -> None:
    """A card posted twice by an earlier version: the Cancel on either works, and the card it
    was pressed on shows the outcome."""
    world.sim.plan_next(Plan(run_seconds=600), Plan(run_seconds=600))
    for prompt in ("one", "two", "three"):
        await world.alice.slash(world.channel, "kling-2-1", prompt=prompt,
                                image=("z.png", PNG))
    first = world.card(3)
    await world.bot.parts.db.write(
        "UPDATE jobs SET card_message_id = NULL, card_sending_at = NULL WHERE id = 3")
    await world.restart()
    await world.run_polls(2)
    cards = [m for m in world.bot_messages() if is_card_of(m, 3)]
    assert len(cards) == 2 and cards[0].id == first.id
    result = await world.alice.click(first, label="Cancel")
    assert result.response.content == "Job #3 is cancelled; nothing is charged for it."
    for message in world.bot_messages():
        if is_card_of(message, 3):
            assert message.embeds[0].title == "Kling 2.1 Pro · Cancelled"
            assert message.components == []
