"""Where a job's images come from on Discord (``bot/discord/sources.py``): a message's
attachments before its embed images, an embed's image through Discord's media proxy, a
mention's image or the reason there is none, and Extend's last frame, posted for RunComfy
and taken back when the job is refused before it is written down."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import discord
import pytest
from aiohttp import web

from bot.simulator import Fault, pad_video
from tests.discord_world import World
from tests.images import image_bytes
from tests.local_server import served

PNG = image_bytes("png", 800, 600)
QUEUED = ("Job #{} is queued. Its card in this channel shows progress, and the video will be "
          "posted there.")
NO_IMAGE = ("That message has no image to animate{}. Use Apps > Animate image on a message "
            "with an image, or `/animate` to upload one.")
FRAME_TEXT = "The last frame of job #{}, where its extension starts."


class ImageHost:
    """A web server on 127.0.0.1 with an image on every path, counting what is asked."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.hits: Counter[str] = Counter()


@pytest.fixture
async def image_host() -> AsyncIterator[ImageHost]:
    app = web.Application()
    host = ImageHost("")

    async def picture(request: web.Request) -> web.Response:
        host.hits[request.path] += 1
        return web.Response(body=PNG, content_type="image/png")

    app.router.add_get("/{name}", picture)
    async with served(app) as host.url:
        yield host


def proxied_embed(host: ImageHost) -> discord.Embed:
    """A link preview whose own image URL is not to be fetched; Discord's proxy serves it."""
    return discord.Embed.from_dict({"title": "Photo of the day", "image": {
        "url": f"{host.url}/origin.png", "proxy_url": f"{host.url}/proxied.png"}})


async def animate(world: World, post: discord.Message) -> Any:
    shown = await world.alice.context_menu(world.channel, "Animate image", post)
    assert shown.modal is not None
    return await world.alice.submit_modal(shown, {"prompt": "clouds drift",
                                                  "model": ["kling-2-1"]})


async def test_attachments_come_before_embed_images_and_embeds_go_through_the_proxy(
        world: World, image_host: ImageHost) -> None:
    hook = world.guild.create_webhook(world.channel, "Feeds")
    both = await hook.send(embed=proxied_embed(image_host), attachments=[("cat.png", PNG)])
    result = await animate(world, both)
    assert result.response.content == QUEUED.format(1)  # one image: no "I used the first"
    assert world.sim.submits[0].body["image_url"] == both.attachments[0].url
    assert image_host.hits == {}  # the embed's image was not even looked at

    # A file that is not an image is no image: the embed's is used, by its proxy URL.
    document = await hook.send(embed=proxied_embed(image_host),
                               attachments=[("notes.txt", b"not a picture")])
    result = await animate(world, document)
    assert result.response.content == QUEUED.format(2)
    assert world.sim.submits[1].body["image_url"] == f"{image_host.url}/proxied.png"
    assert image_host.hits == {"/proxied.png": 1}

    words = await hook.send("no picture here", attachments=[("notes.txt", b"text")])
    refused = await world.alice.context_menu(world.channel, "Animate image", words)
    assert refused.modal is None
    assert refused.response.content == NO_IMAGE.format(" (`notes.txt` is not an image)")
    assert len(world.sim.submits) == 2


def mention(world: World, text: str) -> str:
    assert world.bot.user is not None
    return f"<@{world.bot.user.id}> {text}"


async def refusal_of(world: World, ask: discord.Message) -> str:
    reply = world.bot_messages()[-1]
    assert reply.reference is not None
    assert reply.reference.message_id == ask.id
    return reply.content


@pytest.mark.simcord(approved_intents=discord.Intents.all())
@pytest.mark.settings(bot={"message_content_intent": True})
async def test_a_mention_says_why_there_is_no_image_to_animate(world: World) -> None:
    """With the Message Content intent the bot sees the message replied to, and says what it
    found there."""
    alone = await world.alice.send(world.channel, mention(world, "a zebra"))
    assert await refusal_of(world, alone) == (
        "Reply to a message with an image (or attach one) when you mention me, e.g. "
        "`@me a zebra turns its head --model kling-2-1`.")
    pdf = await world.bob.send(world.channel, "the plan", attachments=[("plan.pdf", b"%PDF")])
    ask = await world.alice.send(world.channel, mention(world, "a zebra"), reply_to=pdf)
    assert await refusal_of(world, ask) == NO_IMAGE.format(" (`plan.pdf` is not an image)")
    words = await world.bob.send(world.channel, "just words")
    ask = await world.alice.send(world.channel, mention(world, "a zebra"), reply_to=words)
    assert await refusal_of(world, ask) == NO_IMAGE.format("")
    assert world.job_calls() == []
    assert world.channel.threads == []


@pytest.mark.parametrize("author", ["bob", "alice"])
async def test_without_the_intent_a_reply_to_another_message_is_explained(
        world: World, author: str) -> None:
    """Without the intent the bot cannot tell an empty message from a hidden one, whoever
    wrote it (Discord hides the member's own earlier images too): it says it cannot see, not
    that there is no image."""
    posted = await getattr(world, author).send(world.channel, "look",
                                               attachments=[("cat.png", PNG)])
    ask = await world.alice.send(world.channel, mention(world, "a zebra"), reply_to=posted)
    assert await refusal_of(world, ask) == (
        "I can't see the images in other messages (the bot runs without Discord's Message "
        "Content intent). Use Apps > Animate image on that message, or attach the image to "
        "your mention.")
    assert world.job_calls() == []


@pytest.mark.settings(delivery={"encode_workers": 0})  # not fitted: posted as a link
async def test_the_extend_frame_is_taken_back_when_the_job_is_refused_after_posting_it(
        world: World) -> None:
    """The frame is posted (as a reply to the video) before the job is written down; a
    daily quota a moderator sets meanwhile refuses the job, and the frame goes again."""
    world.sim.video = pad_video(world.sim.video, 11 * 1024 * 1024)  # posted as a link, so
    await world.alice.slash(world.channel, "kling-2-1", prompt="a zebra",  # Extend downloads
                            image=("z.png", PNG))                         # RunComfy's copy
    await world.run_until(lambda: bool(world.videos()))
    [video] = world.videos()
    shown = await world.alice.click(video, label="Extend")
    assert shown.modal is not None

    world.sim.inject(Fault("slow", delay=0.3, path="^/files/"))
    submitting = asyncio.create_task(world.alice.submit_modal(shown, {"prompt": "and then"}))
    while world.sim.in_flight == 0 and not submitting.done():  # noqa: ASYNC110 - its counter
        await asyncio.sleep(0.005)
    assert not submitting.done()  # the video is being downloaded: the rules were passed
    await world.bot.parts.policies.update(world.guild.id, world.mod.id,
                                          lambda _: {"daily_quota": 1})
    result = await submitting

    assert result.ephemeral
    assert result.response.content.startswith("daily quota reached: 1 of 1, resets in ")
    channel = f"/channels/{world.channel.id}/messages"
    [posted] = [r for r in world.env.http_requests if r.method == "POST" and r.path == channel
                and (r.json or {}).get("content") == FRAME_TEXT.format(1)]
    assert posted.json["message_reference"]["message_id"] == video.id
    deleted = [r.path for r in world.env.http_requests if r.method == "DELETE"]
    assert len(deleted) == 1 and deleted[0].startswith(f"{channel}/")
    assert not [m for m in world.bot_messages() if m.content == FRAME_TEXT.format(1)]
    assert len(world.sim.submits) == 1
    assert await world.bot.parts.store.get(2) is None
