"""A worker per channel (``bot/discord/channel_work.py``): a channel's videos in the order they
finished, one channel's trouble never holding up another's, failed uploads tried again later
and at last posted as a link, and a video whose channel is gone brought to its requester."""

from __future__ import annotations

from itertools import pairwise
from typing import Any

import pytest

from bot.jobs import JobState
from bot.simulator import Fault, Plan
from tests.discord_world import World
from tests.images import image_bytes

PNG = image_bytes("png", 800, 600)


def job_of(message: Any) -> int:
    """The job a video message is of ("... job #3).")."""
    return int(message.content.rsplit("job #", 1)[1].split(")")[0])


def uploads(world: World, channel: Any) -> int:
    path = f"/channels/{channel.id}/messages"
    return sum(1 for r in world.env.http_requests if r.method == "POST" and r.path == path)


async def start(world: World, prompt: str, channel: Any = None) -> None:
    result = await world.alice.slash(channel or world.channel, "kling-2-1", prompt=prompt,
                                     image=("z.png", PNG))
    assert result.response is not None
    assert result.response.content.startswith("Job #"), result.response.content


async def test_a_channels_videos_come_in_the_order_they_finished(world: World) -> None:
    # Two RunComfy workers: #1 takes 30 s; #2 6 s; #3 waits for #2, then takes 9 s.
    world.sim.plan_next(Plan(run_seconds=30), Plan(run_seconds=6), Plan(run_seconds=9))
    for prompt in ("slow", "quick", "after the quick one"):
        await start(world, prompt)
    await world.run_until(lambda: len(world.videos()) == 3)
    videos = world.videos()
    assert [job_of(v) for v in videos] == [2, 3, 1]
    assert world.replied_to(videos) == [world.card(i).id for i in (2, 3, 1)]
    finished = [(await world.job(i)).finished_at or 0 for i in (2, 3, 1)]
    assert finished == sorted(finished)


async def test_a_slow_channel_does_not_hold_up_another(world: World) -> None:
    """Two videos waiting to be posted, in two channels, taken up at the same moment (after a
    restart): the first one's download from RunComfy is slow, and meanwhile the other
    channel's video is posted."""
    slow = world.guild.create_text_channel("slow")
    await start(world, "here", slow)
    await start(world, "there")
    for channel in (slow, world.channel):  # each first upload fails: both wait to be posted
        world.env.inject_error("POST", f"/channels/{channel.id}/messages", status=500,
                               times=1)
    await world.run_until(lambda: uploads(world, slow) == uploads(world, world.channel) == 2)
    assert [(await world.job(i)).state for i in (1, 2)] == [JobState.DELIVERING] * 2
    world.sim.inject(Fault("slow", delay=1.0, path=f"^/files/{world.sim.submits[0].request_id}"))
    await world.restart()
    await world.run_until(lambda: bool(world.videos()) and bool(world.videos(slow)))
    [here], [there] = world.videos(slow), world.videos()
    assert (job_of(here), job_of(there)) == (1, 2)
    assert there.id < here.id  # the other channel's was posted first, not after the slow one
    assert await here.attachments[0].read() == await there.attachments[0].read()


async def test_failed_uploads_back_off_then_the_video_is_posted_as_a_link(world: World) -> None:
    await start(world, "a zebra")  # the card is posted; what follows is the video
    world.env.inject_error("POST", f"/channels/{world.channel.id}/messages", status=503,
                           times=3)
    attempts: list[int] = []  # the poll at which each upload was tried
    for poll in range(60):
        tried = uploads(world, world.channel) - 1
        attempts += [poll] * (tried - len(attempts))
        if world.videos():
            break
        await world.run_polls(1)
    # Three seconds (one poll) after the first failure, then six, then twelve.
    assert [b - a for a, b in pairwise(attempts)] == [1, 2, 4]
    [video] = world.videos()
    assert video.attachments == []
    job = await world.job(1)
    assert video.content.startswith(f"<@{world.alice.id}> your video is ready (Kling 2.1 Pro, "
                                    "job #1).\n")
    assert video.content.endswith(f"download it (the link expires): {job.video_url}")
    assert (job.state, job.delivered_as, job.result_message_id) == (
        JobState.DELIVERED, "link", video.id)
    assert world.card(1).embeds[0].fields[1].value == "Done: link below"
    assert world.buttons(video) == ["Again", "Vary", "Extend"]


@pytest.mark.parametrize("dms", ["open", "closed"])
async def test_a_video_whose_channel_was_deleted_reaches_its_requester(world: World,
                                                                       dms: str) -> None:
    await start(world, "a zebra")
    world.env.backend.delete_channel(world.channel.id)
    dm_channel = world.alice.user.dm_channel
    if dms == "closed":
        world.env.inject_error("POST", "/users/@me/channels", status=403, code=50007,
                               message="Cannot send messages to this user", times=None)
        world.env.inject_error("POST", f"/channels/{dm_channel.id}/messages", status=403,
                               code=50007, times=None)
    await world.env.settle()
    for _ in range(40):
        if (await world.job(1)).state is JobState.UNDELIVERABLE:
            break
        await world.run_polls(1)
    job = await world.job(1)
    assert (job.state, job.error) == (JobState.UNDELIVERABLE,
                                      "The channel was deleted or hidden from the bot.")
    told = (f"Your video (job #1) is ready, but I could not post it in <#{world.channel.id}>: "
            f"The channel was deleted or hidden from the bot. Download it here (the link "
            f"expires): {job.video_url}")
    requests = len(world.env.http_requests)
    await world.run_polls(3)  # said once: no retry loop
    assert not [r for r in world.env.http_requests[requests:] if r.method == "POST"]
    elsewhere = world.guild.create_text_channel("elsewhere")
    answer = await world.alice.slash(elsewhere, "quota")
    if dms == "open":
        assert [m.content for m in world.messages(dm_channel)] == [told]
        assert answer.followups == []
    else:
        assert world.messages(dm_channel) == []
        assert [(n.content, n.ephemeral) for n in answer.followups] == [(told, True)]


async def test_a_card_waiting_its_turn_when_the_polls_stopped_follows_its_job_after(
        world: World) -> None:
    """The poller stopped (and with it every channel's work) while a card's update waited its
    turn in its channel, before that channel's worker began: once it starts again, the card
    still follows its job, and its video is posted."""
    world.sim.plan_next(Plan(run_seconds=30), Plan(run_seconds=30), Plan(run_seconds=30))
    other = world.guild.create_text_channel("other")
    for prompt, channel in (("one", world.channel), ("two", world.channel), ("three", other)):
        await start(world, prompt, channel)  # two RunComfy workers: the third waits
    await world.run_polls(1)
    assert world.card(3, other).embeds[0].title == "Kling 2.1 Pro · Queued (#1 in line)"
    world.bot.parts.poller.channels.update(await world.job(3))
    await world.bot.parts.poller.stop()
    await world.bot.parts.poller.recover()
    await world.run_until(lambda: (world.card(3, other).embeds[0].title or "").endswith(
        "Generating"))
    await world.run_until(lambda: bool(world.videos(other)))
