"""Animating an image already in the channel: context menu, /animate with upload, mentions."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import discord
import pytest
from aiohttp import web
from simcord.backend.models.channel import Overwrite
from simcord.enums import OverwriteType

from bot.discord.sources import embed_image_url
from bot.jobs import JobState
from tests.discord_world import World
from tests.images import image_bytes

PNG = image_bytes("png", 800, 600)
OTHER_PNG = image_bytes("png", 640, 640)
QUEUED = ("Job #{} is queued. Its card in this channel shows progress, and the video will be "
          "posted there.")


def mention(world: World, text: str) -> str:
    return f"<@{world.bot.user.id}> {text}" if world.bot.user else text


def modal_fields(shown: Any) -> list[str]:
    """The custom ids of the inputs in a modal the bot showed."""
    found: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if "custom_id" in node and node.get("type") in (3, 4, 19):
                found.append(node["custom_id"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(shown.modal.get("components", []))
    return found


async def test_context_menu_on_an_image_opens_the_form_and_makes_the_video(world: World) -> None:
    post = await world.bob.send(world.channel, "my cat", attachments=[("cat.png", PNG)])
    shown = await world.alice.context_menu(world.channel, "Animate image", post)
    assert shown.modal is not None
    assert modal_fields(shown) == ["prompt", "model", "duration"]
    result = await world.alice.submit_modal(shown, {"prompt": "the cat yawns",
                                                    "model": ["kling-2-1"], "duration": "10"})
    assert result.ephemeral
    assert result.response.content == QUEUED.format(1)
    [job] = world.sim.submits
    assert job.body["image_url"] == post.attachments[0].url
    assert (job.body["prompt"], job.body["duration"]) == ("the cat yawns", 10)
    await world.run_until(lambda: bool(world.videos()))
    assert await world.videos()[0].attachments[0].read() == world.sim.video


async def test_with_two_images_the_first_is_used_and_said(world: World) -> None:
    post = await world.bob.send(world.channel, "", attachments=[("a.png", PNG),
                                                               ("b.png", OTHER_PNG)])
    shown = await world.alice.context_menu(world.channel, "Animate image", post)
    result = await world.alice.submit_modal(shown, {"prompt": "wave", "model": ["wan-2-2"]})
    assert result.response.content == (QUEUED.format(1) + "\nThat message has 2 images; "
                                       "I used the first one.")
    assert world.sim.submits[0].body["img_url"] == post.attachments[0].url


async def test_no_image_or_not_an_image_is_explained(world: World) -> None:
    text = await world.bob.send(world.channel, "just words")
    result = await world.alice.context_menu(world.channel, "Animate image", text)
    assert result.modal is None
    assert result.ephemeral
    assert result.response.content == (
        "That message has no image to animate. Use Apps > Animate image on a message with an "
        "image, or `/animate` to upload one.")
    document = await world.bob.send(world.channel, "", attachments=[("notes.pdf", b"%PDF")])
    result = await world.alice.context_menu(world.channel, "Animate image", document)
    assert result.response.content == (
        "That message has no image to animate (`notes.pdf` is not an image). Use Apps > "
        "Animate image on a message with an image, or `/animate` to upload one.")
    assert world.job_calls() == []


async def test_a_bad_choice_in_the_form_is_refused_with_the_reason(world: World) -> None:
    post = await world.bob.send(world.channel, "", attachments=[("cat.png", PNG)])
    shown = await world.alice.context_menu(world.channel, "Animate image", post)
    result = await world.alice.submit_modal(shown, {"prompt": "x", "model": ["kling-2-1"],
                                                    "duration": "7"})
    assert result.ephemeral
    assert result.response.content == (
        "The video was not started:\n`duration` must be one of 5 or 10; yours is 7.")
    assert world.job_calls() == []
    # A refusal is the form's answer, not an error (as in every form).
    assert world.env.errors == []


@pytest.fixture
async def image_host() -> AsyncIterator[str]:
    """A web server with an image on it, as an embed's image URL points to."""
    app = web.Application()

    async def picture(_: web.Request) -> web.Response:
        return web.Response(body=PNG, content_type="image/png")

    app.router.add_get("/pic.png", picture)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    await runner.cleanup()


async def test_an_embed_image_can_be_animated(world: World, image_host: str) -> None:
    hook = world.guild.create_webhook(world.channel, "Feeds")
    post = await hook.send(embed=discord.Embed(title="Photo of the day").set_image(
        url=f"{image_host}/pic.png"))
    shown = await world.alice.context_menu(world.channel, "Animate image", post)
    result = await world.alice.submit_modal(shown, {"prompt": "clouds drift",
                                                    "model": ["kling-2-1"]})
    assert result.response.content == QUEUED.format(1)
    assert world.sim.submits[0].body["image_url"] == f"{image_host}/pic.png"


async def test_animate_opens_a_form_with_an_upload_field(world: World) -> None:
    shown = await world.alice.slash(world.channel, "animate")
    assert modal_fields(shown) == ["prompt", "model", "duration", "image"]
    result = await world.alice.submit_modal(shown, {"prompt": "a zebra", "model": ["kling-3-0"],
                                                    "image": ("zebra.png", PNG)})
    assert result.response.content == QUEUED.format(1)
    [job] = world.sim.submits
    assert job.body["start_image_url"].endswith("/zebra.png")
    await world.run_until(lambda: bool(world.videos()))


async def test_animate_with_an_attachment_skips_the_upload(world: World) -> None:
    shown = await world.alice.slash(world.channel, "animate", image=("z.png", PNG))
    assert modal_fields(shown) == ["prompt", "model", "duration"]
    result = await world.alice.submit_modal(shown, {"prompt": "a zebra", "model": ["kling-2-1"]})
    assert result.response.content == QUEUED.format(1)


async def test_where_the_bot_cannot_post_in_threads_a_mention_is_answered_in_the_channel(
        world: World) -> None:
    """Checked before paying: a thread the bot could make but not post in would have cost a
    video nobody could see."""
    world.env.backend.set_overwrite(world.channel.id, Overwrite(
        target_id=world.env.backend.bot_user.id, type=OverwriteType.MEMBER, allow=0,
        deny=discord.Permissions(send_messages_in_threads=True).value))
    await world.env.settle()
    await world.alice.send(world.channel, mention(world, "a zebra --model kling-2-1"),
                           attachments=[("zebra.png", PNG)])
    assert world.channel.threads == []
    assert (await world.job(1)).channel_id == world.channel.id
    await world.run_until(lambda: bool(world.videos()))
    assert (await world.job(1)).state is JobState.DELIVERED


async def test_a_mention_with_an_image_answers_in_a_thread(world: World) -> None:
    ask = await world.alice.send(world.channel, mention(world, "a zebra turns its head "
                                                       "--model kling-2-1 --duration 10"),
                                 attachments=[("zebra.png", PNG)])
    [thread] = world.channel.threads
    job = await world.job(1)
    assert (job.channel_id, job.user_id) == (thread.id, world.alice.id)
    assert world.sim.submits[0].body["prompt"] == "a zebra turns its head"
    assert world.sim.submits[0].body["duration"] == 10
    assert world.sim.submits[0].body["image_url"] == ask.attachments[0].url
    await world.run_until(lambda: bool(world.videos(thread)))
    assert world.card(1, thread).embeds[0].title == "Kling 2.1 Pro · Done"
    assert world.videos() == []


async def test_replying_to_someone_elses_image_needs_the_content_intent(world: World) -> None:
    post = await world.bob.send(world.channel, "", attachments=[("cat.png", PNG)])
    await world.alice.send(world.channel, mention(world, "the cat yawns"), reply_to=post)
    answer = world.bot_messages()[-1]
    assert answer.content.startswith("I can't see the images in other messages")
    assert world.job_calls() == []


@pytest.mark.simcord(approved_intents=discord.Intents.all())
@pytest.mark.settings(bot={"message_content_intent": True})
async def test_with_the_intent_a_reply_to_an_image_works(world: World) -> None:
    post = await world.bob.send(world.channel, "", attachments=[("cat.png", PNG)])
    await world.alice.send(world.channel, mention(world, "the cat yawns --model wan-2-2"),
                           reply_to=post)
    [thread] = world.channel.threads
    assert world.sim.submits[0].body["img_url"] == post.attachments[0].url
    await world.run_until(lambda: bool(world.videos(thread)))
    assert (await world.job(1)).state is JobState.DELIVERED


@pytest.mark.parametrize(
    ("text", "answer"),
    [
        ("a zebra --model kling-2-1 --sped 2",
         "`kling-2-1` has no option `--sped`. It takes `--model`, `--duration`, "
         "`--aspect_ratio`, `--negative_prompt`, `--cfg_scale`; the rest of the message is "
         "the prompt."),
        ("a zebra --model kling-9",
         "There is no model `kling-9`; pick one of `kling-1-6`, `kling-2-1`, `kling-3-0`, "
         "`kling-3-0-4k`, `wan-2-2`."),
        ("a zebra --duration 7", "The video was not started:\n`duration` must be one of 5 or "
         "10; yours is 7."),
        ('a "zebra --duration 5', "I could not read that: a quote is not closed."),
        ("a zebra --model kling-3-0 --duration " + "9" * 400, "The video was not started:\n"
         "`duration` must be a whole number of at most 15 digits; yours has 400."),
    ],
)
async def test_bad_flags_get_a_reply_listing_what_is_accepted(world: World, text: str,
                                                              answer: str) -> None:
    ask = await world.alice.send(world.channel, mention(world, text),
                                 attachments=[("zebra.png", PNG)])
    reply = world.bot_messages()[-1]
    assert reply.content == answer
    assert reply.reference is not None
    assert reply.reference.message_id == ask.id
    assert world.job_calls() == []


async def test_a_mention_without_any_image(world: World) -> None:
    await world.alice.send(world.channel, mention(world, "a zebra"))
    assert world.bot_messages()[-1].content == (
        "Reply to a message with an image (or attach one) when you mention me, e.g. "
        "`@me a zebra turns its head --model kling-2-1`.")


async def test_a_text_to_video_model_needs_no_image(world: World) -> None:
    await world.alice.send(world.channel, mention(world, "a coffee shop --model kling-3-0-4k"))
    assert world.sim.submits[0].body["prompt"] == "a coffee shop"


async def test_a_reply_to_the_bot_that_does_not_name_it_starts_nothing(world: World) -> None:
    """Discord's reply ping puts the bot in the reply's mentions; only a mention typed in the
    text asks for a video (a reply "nice!" with a picture to a card must cost nothing)."""
    await world.alice.send(world.channel, mention(world, "a zebra --model kling-2-1"),
                           attachments=[("zebra.png", PNG)])
    [thread] = world.channel.threads
    await world.run_until(lambda: bool(world.videos(thread)))
    [video] = world.videos(thread)
    said = len(world.bot_messages(thread))
    reply = await world.bob.send(thread, "nice!", attachments=[("cat.png", PNG)],
                                 reply_to=video)
    assert world.bot.user is not None
    assert world.bot.user.id in {user.id for user in reply.mentions}  # the reply ping
    assert len(world.sim.submits) == 1
    assert len(world.bot_messages(thread)) == said


def test_an_embed_image_is_read_through_discords_media_proxy() -> None:
    """A link preview's own image URL may point inside the bot's network: Discord's proxy
    URL is used whenever Discord gives one."""
    embed = discord.Embed.from_dict({"image": {
        "url": "http://169.254.169.254/latest/meta-data.png",
        "proxy_url": "https://images-ext-1.discordapp.net/external/x/meta-data.png"}})
    assert embed_image_url(embed) == "https://images-ext-1.discordapp.net/external/x/meta-data.png"
    assert embed_image_url(discord.Embed(title="no image")) is None


async def test_the_form_is_the_first_answer_before_anything_is_read(world: World) -> None:
    """The form must answer within Discord's 3 s: it opens even while the store cannot be
    read, and the server's settings are read once it is submitted."""
    await world.bot.parts.db.write("ALTER TABLE guild_settings RENAME TO settings_away")
    try:
        shown = await world.alice.slash(world.channel, "animate", image=("z.png", PNG))
        assert shown.modal is not None
    finally:
        await world.bot.parts.db.write("ALTER TABLE settings_away RENAME TO guild_settings")
    result = await world.alice.submit_modal(shown, {"prompt": "a zebra", "model": ["default"]})
    assert result.response.content == QUEUED.format(1)
