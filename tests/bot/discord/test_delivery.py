"""How finished, failed and forgotten jobs reach the channel (SimCord + the simulator)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

from bot.jobs import JobState
from bot.simulator import JobState as SimState
from bot.simulator import Plan, pad_video
from tests.discord_world import World
from tests.images import image_bytes

PNG = image_bytes("png", 800, 600)


async def start(world: World, prompt: str = "a zebra") -> None:
    await world.alice.slash(world.channel, "kling-2-1", prompt=prompt, image=("z.png", PNG))


@pytest.mark.settings(delivery={"encode_workers": 0})  # not fitted: a link
async def test_a_video_over_the_upload_limit_is_posted_as_a_link(world: World) -> None:
    world.sim.video = pad_video(world.sim.video, 11 * 1024 * 1024)  # the guild allows 10 MiB
    await start(world)
    await world.run_until(lambda: bool(world.videos()))
    [video] = world.videos()
    assert video.attachments == []
    request_id = world.sim.submits[0].request_id
    assert video.content.endswith(f"/files/{request_id}.mp4")
    assert "too large to upload here" in video.content
    assert world.card(1).embeds[0].fields[1].value == "Done: link below"
    assert (await world.job(1)).delivered_as == "link"


async def test_discord_refusing_the_upload_as_too_large_gives_a_link(world: World) -> None:
    await start(world)  # the card is posted; the next message is the video
    world.env.inject_error("POST", "/channels/*/messages", status=413, code=40005,
                           message="Request entity too large")
    await world.run_until(lambda: bool(world.videos()))
    [video] = world.videos()
    assert video.attachments == []
    assert "download it" in video.content


async def test_a_failed_job_shows_the_reason_and_tells_the_requester(world: World) -> None:
    world.sim.plan_next(Plan(SimState.FAILED, error="Content policy violation"))
    await start(world)
    await world.run_until(lambda: len(world.bot_messages()) == 2)
    card = world.card(1)
    assert card.embeds[0].title == "Kling 2.1 Pro · Failed"
    assert card.embeds[0].fields[1].value == "Failed: Content policy violation"
    assert card.components == []
    told = world.bot_messages()[-1]
    assert told.content == (f"<@{world.alice.id}> your video could not be made: "
                            "Content policy violation")
    assert told.reference is not None
    assert told.reference.message_id == card.id
    assert world.videos() == []


@pytest.mark.settings(jobs={"timeout_minutes": 1})
async def test_a_job_that_runs_too_long_is_timed_out(world: World) -> None:
    world.sim.plan_next(Plan(run_seconds=3600))
    await start(world)
    await world.run_until(lambda: "Timed out" in (world.card(1).embeds[0].title or ""))
    job = await world.job(1)
    assert job.state is JobState.TIMED_OUT
    assert job.error == "No video after 1 minute; the bot stopped waiting."
    assert world.bot_messages()[-1].content.endswith(
        "your video could not be made: No video after 1 minute; the bot stopped waiting.")


@pytest.mark.settings(jobs={"timeout_minutes": 1})
async def test_a_job_that_finished_while_the_bot_was_down_past_its_timeout_is_delivered(
        world: World) -> None:
    """Charged while the bot was down: RunComfy is asked before the job is timed out."""
    world.sim.plan_next(Plan(run_seconds=30))
    await start(world)
    await world.bot.parts.poll_loop.stop()  # down for five minutes (no polls), then restarted
    await world.run_polls(100)
    await world.restart()
    await world.run_until(lambda: bool(world.videos()))
    assert (await world.job(1)).state is JobState.DELIVERED
    assert await world.videos()[0].attachments[0].read() == world.sim.video


async def test_cards_show_queue_position_then_running(world: World) -> None:
    for prompt in ("one", "two", "three"):
        await start(world, prompt)  # two workers: the third waits
    await world.run_polls(1)
    assert world.card(3).embeds[0].title == "Kling 2.1 Pro · Queued (#1 in line)"
    assert world.card(1).embeds[0].title == "Kling 2.1 Pro · Generating"
    await world.run_until(lambda: len(world.videos()) == 3)
    cards = [world.card(i).id for i in (1, 2, 3)]
    assert world.replied_to(world.videos()) == cards


async def test_temporary_files_are_removed(world: World, tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    await start(world)
    await world.run_until(lambda: bool(world.videos()))
    assert os.listdir(scratch) == []
