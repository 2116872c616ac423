"""From a slash command with an image to the video in the channel, through real discord.py."""

from __future__ import annotations

from typing import Any

import discord
import pytest

from tests.discord_world import World
from tests.images import image_bytes

PNG = image_bytes("png", 1024, 768)
JPEG = image_bytes("jpeg", 1280, 720)
QUEUED = ("Job #{} is queued. Its card in this channel shows progress, and the video will be "
          "posted there.")

PER_MODEL: list[tuple[str, dict[str, Any], str]] = [
    ("kling-2-1", {"prompt": "a zebra turns its head", "image": ("zebra.png", PNG)},
     "Kling 2.1 Pro"),
    ("kling-1-6", {"image": ("street.jpg", JPEG), "duration": 10}, "Kling 1.6 Pro"),
    ("kling-3-0", {"prompt": "a woman on a cliff", "image": ("cliff.png", PNG),
                   "duration": 8, "multi_prompt": "5: she turns | 3: she smiles",
                   "generate_audio": False}, "Kling 3.0 Standard"),
    ("kling-3-0-4k", {"prompt": "a coffee shop in the rain", "aspect_ratio": "9:16"},
     "Kling 3.0 4K"),
    ("wan-2-2", {"prompt": "a vintage street", "image": ("street.jpg", JPEG),
                 "resolution": "1080P"}, "Wan 2.2"),
]


@pytest.mark.parametrize(("command", "options", "name"), PER_MODEL,
                         ids=[c for c, _, _ in PER_MODEL])
async def test_each_model_from_command_to_video(world: World, command: str,
                                                options: dict[str, Any], name: str) -> None:
    result = await world.alice.slash(world.channel, command, **options)
    assert result.ephemeral
    assert result.response.content == QUEUED.format(1)
    card = world.card(1)
    assert card.embeds[0].title == f"{name} · Queued"
    assert world.buttons(card) == ["Cancel"]

    await world.run_until(lambda: bool(world.videos()))

    [video] = world.videos()
    assert video.content == f"<@{world.alice.id}> your video is ready ({name}, job #1)."
    assert video.reference is not None
    assert video.reference.message_id == card.id
    assert video.attachments[0].filename == "job-1.mp4"
    assert await video.attachments[0].read() == world.sim.video
    done = world.card(1)
    assert done.embeds[0].title == f"{name} · Done"
    assert done.components == []
    [submitted] = world.sim.submits
    assert submitted.model_id == world.bot.catalog.by_command(command).id


async def test_the_request_body_carries_the_attachment_url(world: World,
                                                           simcord_cdn: str) -> None:
    await world.alice.slash(world.channel, "wan-2-2", prompt="a street", image=("s.jpg", JPEG))
    [submitted] = world.sim.submits
    assert submitted.body["img_url"].startswith(f"{simcord_cdn}/attachments/")
    assert submitted.body["img_url"].endswith("/s.jpg")
    assert submitted.body["resolution"] == "480P"


async def test_a_bad_option_is_refused_after_the_defer_and_costs_nothing(world: World) -> None:
    """The defer comes first (the fastest first answer); the refusal replaces its "thinking",
    seen by the member alone, before anything is read, downloaded or submitted."""
    result = await world.alice.slash(world.channel, "kling-3-0", prompt="a cliff",
                                     image=("c.png", PNG), duration=10,
                                     multi_prompt="5: a | 3: b")
    assert result.ephemeral
    assert result.response.content == (
        "The video was not started:\n`multi_prompt` segment durations must add up to "
        "`duration` (10 s); yours add up to 8 s.")
    assert world.job_calls() == []
    assert await world.bot.parts.store.for_user(world.guild.id, world.alice.id) == []


async def test_a_bad_image_is_found_in_its_bytes(world: World) -> None:
    small = image_bytes("png", 300, 900)
    result = await world.alice.slash(world.channel, "wan-2-2", prompt="a street",
                                     image=("small.png", small))
    assert result.ephemeral
    assert result.response.content == (
        "The video was not started:\n`image` must be more than 360 px on each side; "
        "yours is 300x900.")
    assert world.job_calls() == []


async def test_a_text_file_is_not_an_image(world: World) -> None:
    result = await world.alice.slash(world.channel, "kling-2-1", prompt="x",
                                     image=("notes.txt", b"hello"))
    assert result.response.content == (
        "The video was not started:\n`image` must be a JPEG, PNG, WebP or BMP image; "
        "`notes.txt` is text/plain.")
    assert world.job_calls() == []


async def test_runcomfy_refusing_the_job_is_explained(world: World) -> None:
    world.sim.config.balance_usd = 0.01
    result = await world.alice.slash(world.channel, "kling-2-1", prompt="x",
                                     image=("z.png", PNG))
    assert result.response.content == (
        "Job #1 did not start. The RunComfy account has run out of credits; ask the server "
        "owner to top it up.")
    job = await world.job(1)
    assert job.state == "failed"


async def test_no_permission_to_post_is_said_before_anything_is_spent(world: World) -> None:
    closed = world.guild.create_text_channel("closed", overwrites={
        world.guild.me: discord.PermissionOverwrite(attach_files=False)})
    result = await world.alice.slash(closed, "kling-2-1", prompt="x", image=("z.png", PNG))
    assert result.ephemeral
    assert result.response.content == (
        "I can't post videos in this channel: I need Attach Files. Ask a moderator to give "
        "me these permissions here.")
    assert world.job_calls() == []


async def test_prompts_are_echoed_without_pinging_anyone(world: World) -> None:
    role = world.guild.create_role("Everyone-ish")
    prompt = f"@everyone <@{world.bob.id}> <@&{role.id}> **bold** dance"
    await world.alice.slash(world.channel, "kling-2-1", prompt=prompt, image=("z.png", PNG))
    card = world.card(1)
    assert card.mentions == []
    assert card.role_mentions == []
    assert not card.mention_everyone
    assert "\\*\\*bold\\*\\*" in (card.embeds[0].description or "")
    await world.run_until(lambda: bool(world.videos()))
    [video] = world.videos()
    assert [m.id for m in video.mentions] == [world.alice.id]


def test_commands_follow_the_catalog(world: World) -> None:
    command = world.env.backend.find_command("kling-3-0", None)
    options = {o["name"]: o for o in command["options"]}
    assert list(options)[:2] == ["prompt", "image"]  # required first
    assert options["image"]["type"] == discord.AppCommandOptionType.attachment.value
    assert (options["duration"]["min_value"], options["duration"]["max_value"]) == (3, 15)
    assert options["generate_audio"]["type"] == discord.AppCommandOptionType.boolean.value
    assert options["multi_prompt"]["description"].startswith("Shots as `5: a cat walks")
    wan = {o["name"]: o for o in world.env.backend.find_command("wan-2-2", None)["options"]}
    assert [c["value"] for c in wan["resolution"]["choices"]] == ["480P", "1080P"]
    assert wan["prompt"]["max_length"] == 799
    assert wan["seed"]["description"].endswith("(default 58366538)")
