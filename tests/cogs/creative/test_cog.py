"""The creative loop: Again, Vary and Extend under every video, /show, and lineage in /jobs."""

from __future__ import annotations

import asyncio
import io
from typing import Any

import av
import discord
import numpy as np
import pytest
from PIL import Image

from bot.simulator import Fault, pad_video
from tests.discord_world import World
from tests.images import image_bytes

PNG = image_bytes("png", 800, 600)
QUEUED = ("Job #{} is queued. Its card in this channel shows progress, and the video will be "
          "posted there.")
LOOP = ["Again", "Vary", "Extend"]
FRAME_TEXT = "The last frame of job #{}, where its extension starts."


async def made(world: World, command: str = "kling-2-1", member: Any = None,
               channel: Any = None, **options: Any) -> discord.Message:
    """A finished video of ``command``: the message it was posted in."""
    actor = member or world.alice
    where = channel or world.channel
    before = len(world.videos(where))
    if command != "kling-3-0-4k":
        options.setdefault("image", ("z.png", PNG))
    result = await actor.slash(where, command, prompt=options.pop("prompt", "a zebra"),
                               **options)
    assert result.response is not None
    assert result.response.content.startswith("Job #"), result.response.content
    await world.run_until(lambda: len(world.videos(where)) > before)
    return world.videos(where)[-1]


def video_of(world: World, job_id: int) -> discord.Message:
    [video] = [m for m in world.videos() if m.content.endswith(f", job #{job_id}).")]
    return video


def inputs(shown: Any) -> dict[str, dict[str, Any]]:
    """The inputs of a form the bot showed, by custom id."""
    found: dict[str, dict[str, Any]] = {}

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if "custom_id" in node and node.get("type") in (3, 4):
                found[node["custom_id"]] = node
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(shown.modal["components"])
    return found


def field(message: discord.Message, name: str) -> str | None:
    return next((f.value for f in message.embeds[0].fields if f.name == name), None)


def frames_of(video: bytes) -> list[np.ndarray[Any, Any]]:
    with av.open(io.BytesIO(video), "r") as container:
        return [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]


def pixels(data: bytes) -> np.ndarray[Any, Any]:
    with Image.open(io.BytesIO(data)) as image:
        return np.asarray(image.convert("RGB"))


async def test_every_video_has_the_loop_buttons(world: World) -> None:
    video = await made(world)
    assert world.buttons(video) == LOOP


async def test_again_submits_the_same_body_as_a_new_job(world: World) -> None:
    video = await made(world)
    result = await world.alice.click(video, label="Again")
    assert result.ephemeral
    assert result.response.content == QUEUED.format(2)
    first, again = world.sim.submits
    assert again.body == first.body  # Kling 2.1 has no seed: the very same request
    assert again.request_id != first.request_id
    assert field(world.card(2), "From") == "again of #1"
    job = await world.job(2)
    assert (job.parent_id, job.origin, job.user_id) == (1, "again", world.alice.id)
    await world.run_until(lambda: len(world.videos()) == 2)
    newest = video_of(world, 2)
    assert await newest.attachments[0].read() == world.sim.video
    assert world.buttons(newest) == LOOP


async def test_again_draws_a_new_seed_where_the_model_has_one(world: World) -> None:
    video = await made(world, "wan-2-2")
    await world.alice.click(video, label="Again")
    first, again = world.sim.submits
    assert again.body["seed"] != first.body["seed"]
    assert {**again.body, "seed": first.body["seed"]} == first.body


async def test_again_is_acknowledged_before_runcomfy_answers(world: World) -> None:
    video = await made(world)
    slow = world.sim.inject(Fault("slow", delay=5, path="^/v1/models/", method="POST"))
    world.env.settle_timeout = 20
    pressing = asyncio.create_task(world.alice.click(video, label="Again"))
    result = await world.answered_before_runcomfy(pressing)
    assert slow.times == 0
    assert result.response.content == QUEUED.format(2)


async def test_vary_opens_a_prefilled_form_and_sends_the_edit(world: World) -> None:
    video = await made(world, prompt="a zebra turns its head", duration=10,
                       negative_prompt="blur")
    shown = await world.alice.click(video, label="Vary")
    assert shown.modal is not None
    assert shown.modal["title"] == "Vary job #1"
    found = inputs(shown)
    assert list(found) == ["prompt", "duration", "aspect_ratio", "negative_prompt"]
    assert found["prompt"]["value"] == "a zebra turns its head"
    assert found["negative_prompt"]["value"] == "blur"
    assert [o["value"] for o in found["duration"]["options"] if o.get("default")] == ["10"]
    assert [o["value"] for o in found["aspect_ratio"]["options"]
            if o.get("default")] == ["16:9"]
    result = await world.alice.submit_modal(shown, {
        "prompt": "a zebra gallops away", "duration": ["5"], "aspect_ratio": ["9:16"],
        "negative_prompt": "blur"})
    assert result.response.content == QUEUED.format(2)
    first, varied = world.sim.submits
    assert varied.body == {**first.body, "prompt": "a zebra gallops away", "duration": 5,
                           "aspect_ratio": "9:16"}
    assert varied.body["image_url"] == first.body["image_url"]
    assert field(world.card(2), "From") == "varies #1"


async def test_vary_checks_what_was_typed(world: World) -> None:
    video = await made(world, "kling-3-0", duration=5)
    shown = await world.alice.click(video, label="Vary")
    assert list(inputs(shown)) == ["prompt", "duration", "negative_prompt"]
    assert inputs(shown)["duration"]["value"] == "5"
    result = await world.alice.submit_modal(shown, {"prompt": "x", "duration": "99"})
    assert result.response.content.startswith("The video was not started:")
    assert "`duration`" in result.response.content
    assert len(world.sim.submits) == 1


async def test_extend_starts_from_the_last_frame_of_the_video(world: World) -> None:
    video = await made(world, prompt="a zebra walks", duration=10)
    shown = await world.alice.click(video, label="Extend")
    assert shown.modal is not None
    assert shown.modal["title"] == "Extend job #1"
    assert inputs(shown)["prompt"]["value"] == "a zebra walks"
    result = await world.alice.submit_modal(shown, {"prompt": "it lies down"})
    assert result.ephemeral
    assert result.response.content == QUEUED.format(2)
    [frame_post] = [m for m in world.bot_messages() if m.content == FRAME_TEXT.format(1)]
    assert frame_post.reference is not None
    assert frame_post.reference.message_id == video.id
    [attachment] = frame_post.attachments
    posted = pixels(await attachment.read())
    decoded = frames_of(world.sim.video)
    assert len(decoded) > 1
    assert np.array_equal(posted, decoded[-1])  # the last frame, pixel for pixel
    assert not np.array_equal(posted, decoded[0])
    first, extension = world.sim.submits
    assert extension.body["image_url"] == attachment.url
    assert extension.body == {**first.body, "prompt": "it lies down",
                              "image_url": attachment.url}
    assert field(world.card(2), "From") == "extends #1"
    job = await world.job(2)
    assert (job.parent_id, job.origin) == (1, "extend")
    await world.run_until(lambda: len(world.videos()) == 2)


@pytest.mark.settings(delivery={"encode_workers": 0})  # not fitted: a link
async def test_extend_uses_runcomfys_copy_when_the_video_was_posted_as_a_link(
        world: World) -> None:
    world.sim.video = pad_video(world.sim.video, 11 * 1024 * 1024)  # the guild allows 10 MiB
    video = await made(world)
    assert video.attachments == []
    assert "too large to upload here" in video.content
    assert world.buttons(video) == LOOP
    shown = await world.alice.click(video, label="Extend")
    result = await world.alice.submit_modal(shown, {"prompt": "and then"})
    assert result.response.content == QUEUED.format(2)
    [frame_post] = [m for m in world.bot_messages() if m.content == FRAME_TEXT.format(1)]
    posted = pixels(await frame_post.attachments[0].read())
    assert np.array_equal(posted, frames_of(world.sim.video)[-1])
    assert world.sim.submits[1].body["image_url"] == frame_post.attachments[0].url


async def test_a_text_to_video_model_cannot_be_extended(world: World) -> None:
    video = await made(world, "kling-3-0-4k", prompt="a lighthouse at night")
    result = await world.alice.click(video, label="Extend")
    assert result.modal is None
    assert result.ephemeral
    assert result.response.content == (
        "`kling-3-0-4k` makes videos from text only: it has no start image to continue from, "
        "so job #1 cannot be extended. Try Again or Vary.")


async def test_the_buttons_work_after_a_restart(world: World) -> None:
    video = await made(world)
    await world.restart()
    result = await world.alice.click(video, label="Again")
    assert result.response.content == QUEUED.format(2)
    shown = await world.alice.click(video, label="Extend")
    assert shown.modal is not None
    result = await world.alice.submit_modal(shown, {"prompt": "onwards"})
    assert result.response.content == QUEUED.format(3)


async def test_only_the_requester_or_a_moderator_may_press(world: World) -> None:
    video = await made(world)
    for label, action in (("Again", "make it again"), ("Vary", "vary it"),
                          ("Extend", "extend it")):
        refused = await world.bob.click(video, label=label)
        assert refused.ephemeral
        assert refused.modal is None
        assert refused.response.content == (
            f"Only the member who asked for job #1 or a moderator (Manage Messages) can "
            f"{action}.")
    assert len(world.sim.submits) == 1
    allowed = await world.mod.click(video, label="Again")
    assert allowed.response.content == QUEUED.format(2)
    assert (await world.job(2)).user_id == world.mod.id


async def test_the_guilds_limits_apply_to_the_new_job(world: World) -> None:
    await world.mod.slash(world.channel, "settings limits", daily_quota=1)
    video = await made(world)
    result = await world.alice.click(video, label="Again")
    assert result.ephemeral
    assert result.response.content.startswith("daily quota reached: 1 of 1, resets in ")
    shown = await world.alice.click(video, label="Extend")
    result = await world.alice.submit_modal(shown, {"prompt": "more"})
    assert result.response.content.startswith("daily quota reached: 1 of 1, resets in ")
    assert len(world.sim.submits) == 1
    assert not [m for m in world.bot_messages() if m.content == FRAME_TEXT.format(1)]


async def test_show_posts_the_card_and_video_in_another_channel(world: World) -> None:
    await made(world, prompt="a zebra")
    elsewhere = world.guild.create_text_channel("gallery")
    result = await world.alice.slash(elsewhere, "show", job=1)
    assert result.ephemeral
    assert result.response.content == "Job #1 is posted again here."
    [shown] = world.bot_messages(elsewhere)
    assert shown.embeds[0].footer.text == "Job #1"
    assert shown.embeds[0].description == "a zebra"
    assert await shown.attachments[0].read() == world.sim.video
    assert world.buttons(shown) == LOOP
    again = await world.alice.click(shown, label="Again")  # the loop goes on from there
    assert again.response.content == QUEUED.format(2)
    assert (await world.job(2)).channel_id == elsewhere.id
    moderator = await world.mod.slash(elsewhere, "show", job=1)
    assert moderator.response.content == "Job #1 is posted again here."
    refused = await world.bob.slash(elsewhere, "show", job=1)
    assert refused.response.content == (
        "Only the member who asked for job #1 or a moderator (Manage Messages) can show it.")


async def test_show_refuses_another_guilds_job_and_unfinished_ones(world: World) -> None:
    await made(world)
    other = world.env.create_guild(name="Other")
    place = other.create_text_channel("videos")
    carol = other.add_member(world.env.create_user("carol"))
    result = await carol.slash(place, "show", job=1)
    assert result.response.content == "There is no job #1 in this server."
    assert world.bot_messages(place) == []
    await world.alice.slash(world.channel, "kling-2-1", prompt="later", image=("z.png", PNG))
    result = await world.alice.slash(world.channel, "show", job=2)
    assert result.response.content.startswith("Job #2 has no video to show: it is ")


@pytest.mark.parametrize("status", [404, 403])
async def test_show_reposts_discords_copy_when_the_link_has_expired(world: World,
                                                                    status: int) -> None:
    await made(world)
    world.sim.inject(Fault("status", status=status, path="^/files/", times=2))
    elsewhere = world.guild.create_text_channel("gallery")
    result = await world.alice.slash(elsewhere, "show", job=1)
    assert result.response.content == "Job #1 is posted again here."
    [shown] = world.bot_messages(elsewhere)
    assert await shown.attachments[0].read() == world.sim.video  # the same bytes, from Discord
    # Without Discord's copy (deleted), the member is told.
    await video_of(world, 1).delete()
    result = await world.alice.slash(world.channel, "show", job=1)
    assert result.response.content == (
        "Job #1's video is no longer available: RunComfy's link to it has expired.")


async def test_jobs_lists_lineage_and_links_to_the_videos(world: World) -> None:
    video = await made(world)
    await world.alice.click(video, label="Again")
    await world.run_until(lambda: len(world.videos()) == 2)
    result = await world.alice.slash(world.channel, "jobs")
    lines = (result.response.embeds[0].description or "").splitlines()
    where = f"https://discord.com/channels/{world.guild.id}/{world.channel.id}/"
    newest, first = video_of(world, 2), video_of(world, 1)
    assert lines[0].startswith("**#2** Kling 2.1 Pro: Done in ")
    assert lines[0].endswith(f" · again of #1 · [video]({where}{newest.id})")
    assert lines[2].endswith(f" s · [video]({where}{first.id})")


async def test_extend_takes_the_last_frame_from_discords_copy_after_the_link_expired(
        world: World) -> None:
    video = await made(world, prompt="a zebra walks")
    gone = world.sim.inject(Fault("status", status=404, path="^/files/", times=5))
    shown = await world.alice.click(video, label="Extend")
    result = await world.alice.submit_modal(shown, {"prompt": "it lies down"})
    assert result.response.content == QUEUED.format(2)
    [frame_post] = [m for m in world.bot_messages() if m.content == FRAME_TEXT.format(1)]
    posted = pixels(await frame_post.attachments[0].read())
    assert np.array_equal(posted, frames_of(world.sim.video)[-1])
    assert gone.times == 5  # RunComfy's link was never needed
