"""Again and Vary download the parent's images again before paying; a parent's image by URL
(an embed's, through Discord's media proxy) may point at something else by then. The download
is streamed and cut off at the cap, and every redirect is checked before it is followed."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import discord
import pytest
from aiohttp import web

from bot.discord.sources import EMBED_IMAGE_MAX
from tests.discord_world import World
from tests.images import image_bytes
from tests.local_server import served

PNG = image_bytes("png", 800, 600)
MB = 1024 * 1024


@dataclass
class ImageHost:
    """A web server whose one picture can be swapped for something hostile."""

    url: str = ""
    mode: str = "image"
    sent: int = 0  # bytes of the last answer's body that went out
    requests: list[str] = field(default_factory=list)


@pytest.fixture
async def host() -> AsyncIterator[ImageHost]:
    state = ImageHost()

    async def picture(request: web.Request) -> web.StreamResponse:
        state.requests.append(request.path)
        if state.mode == "image":
            return web.Response(body=PNG, content_type="image/png")
        if state.mode == "redirect":  # somewhere inside the bot's network
            raise web.HTTPFound("http://10.255.255.1/internal.png")
        if state.mode == "gone":
            raise web.HTTPNotFound()
        # "huge": an endless image, 1 MiB at a time, with no Content-Length
        answer = web.StreamResponse(headers={"Content-Type": "image/png"})
        await answer.prepare(request)
        state.sent = 0
        chunk = PNG[:16] + bytes(MB - 16)
        try:
            for _ in range(4 * EMBED_IMAGE_MAX // MB):
                await answer.write(chunk)
                state.sent += len(chunk)
        except (ConnectionResetError, RuntimeError):
            pass  # the bot hung up: what it did not read was never sent
        return answer

    app = web.Application()
    app.router.add_get("/pic.png", picture)
    async with served(app) as url:
        state.url = url
        yield state


async def parent_video(world: World, host: ImageHost) -> discord.Message:
    """A video made from an embed's image (at ``host``), through the Animate form."""
    hook = world.guild.create_webhook(world.channel, "Feeds")
    post = await hook.send(embed=discord.Embed(title="Photo").set_image(url=f"{host.url}/pic.png"))
    shown = await world.alice.context_menu(world.channel, "Animate image", post)
    result = await world.alice.submit_modal(shown, {"prompt": "clouds drift",
                                                    "model": ["kling-2-1"]})
    assert result.response.content.startswith("Job #1 is queued")
    await world.run_until(lambda: len(world.videos()) == 1)
    return world.videos()[-1]


async def test_again_reads_a_grown_image_only_up_to_the_cap(world: World,
                                                              host: ImageHost) -> None:
    video = await parent_video(world, host)
    host.mode = "huge"
    result = await world.alice.click(video, label="Again")
    assert result.ephemeral
    assert result.response.content == (
        f"The image `pic.png` is larger than {EMBED_IMAGE_MAX // MB} MB.")
    assert len(world.sim.submits) == 1  # the parent's only: nothing paid
    # The bot stopped reading at the cap: what it left unread was never sent (the socket's
    # buffers hold a few MiB at most).
    assert host.sent < EMBED_IMAGE_MAX + 16 * MB


async def test_again_follows_no_redirect_off_discords_hosts(world: World,
                                                            host: ImageHost) -> None:
    video = await parent_video(world, host)
    host.mode = "redirect"
    result = await world.alice.click(video, label="Again")
    assert result.response.content == (
        "I only fetch images from Discord; `internal.png` is elsewhere. Attach the image "
        "instead.")
    assert len(world.sim.submits) == 1


async def test_a_parent_image_that_is_gone_is_named(world: World, host: ImageHost) -> None:
    video = await parent_video(world, host)
    host.mode = "gone"
    result = await world.alice.click(video, label="Again")
    assert result.response.content == (
        "Job #1's image `pic.png` can no longer be downloaded (Discord's links expire); start "
        "a new video with it attached.")
    assert len(world.sim.submits) == 1
