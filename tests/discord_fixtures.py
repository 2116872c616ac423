"""The bot in a Discord server (SimCord, the real discord.py client in process), for the tests
of Discord's side (tests/bot/discord, tests/cogs, whose conftests take these fixtures)."""

from __future__ import annotations

import mimetypes
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import discord
import pytest
import simcord.backend.cdn
from aiohttp import web

from bot.catalog import Catalog
from bot.config import Settings
from bot.discord.client import VideoBot
from bot.keys import KeyBox, new_secret_key
from tests.clocks import ManualClock
from tests.conftest import TOKEN, RunningSimulator
from tests.discord_world import World
from tests.local_server import served


@pytest.fixture
def bot_settings(tmp_path: Path, runcomfy: RunningSimulator,
                 request: pytest.FixtureRequest) -> Settings:
    """The bot's settings for a test; ``@pytest.mark.settings(jobs={...})`` changes them."""
    data: dict[str, dict[str, Any]] = {
        "bot": {"database": str(tmp_path / "bot.sqlite3"), "shard_count": 1,
                # SimCord's CDN (simcord_cdn), and the tests' own image servers
                "image_hosts": ["127.0.0.1"]},
        "runcomfy": {"base_url": runcomfy.url, "retry_attempts": 2, "retry_base_delay": 0.01,
                     "retry_max_delay": 0.02},
        # A crash (World.restart) releases no lease: the next life takes the jobs at its
        # first poll once the lease (1 s here) has run out; tests/bot/discord/test_restart.py
        # shows the wait with the default 30 s.
        "jobs": {"poll_interval": 3, "card_edit_interval": 0, "timeout_minutes": 30,
                 "lease_seconds": 1},
        "limits": {"max_concurrent": 0},
    }
    marker = request.node.get_closest_marker("settings")
    for section, values in (marker.kwargs if marker else {}).items():
        data.setdefault(section, {}).update(values)
    return Settings.model_validate(data)


# BOT_SECRET_KEY in the tests: seals servers' own RunComfy keys.
SECRET_KEY = new_secret_key()


def make_bot(settings: Settings, catalog: Catalog, database: Path | str | None = None
             ) -> VideoBot:
    """The bot; on PostgreSQL when ``database`` is a URL (as with ``DATABASE_URL``)."""
    url = database if isinstance(database, str) else None
    return VideoBot(settings, catalog, TOKEN, database_url=url,
                    key_box=KeyBox.from_env(SECRET_KEY))


@pytest.fixture
async def simcord_bot(bot_settings: Settings, catalog: Catalog,
                      database_target: Path | str) -> AsyncIterator[VideoBot]:
    bot = make_bot(bot_settings, catalog, database_target)
    yield bot
    await bot.close()


@pytest.fixture
async def simcord_cdn(simcord_env: Any, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[str]:
    """SimCord's CDN served over HTTP on 127.0.0.1, as Discord's is over the network: the bot
    downloads a job's images again (Again, Vary) with its own HTTP client, streamed and
    capped, not through discord.py's ``get_from_cdn`` (which reads a file whole). SimCord
    names its files after ``CDN_BASE`` when they are stored; here that is this server."""
    blobs = simcord_env.backend.cdn
    app = web.Application()

    async def serve(request: web.Request) -> web.Response:
        data = blobs.get(f"{request.scheme}://{request.host}{request.path_qs}")
        if data is None:
            raise web.HTTPNotFound()
        kind = mimetypes.guess_type(request.path)[0] or "application/octet-stream"
        return web.Response(body=data, content_type=kind)

    app.router.add_get("/{path:.*}", serve)
    async with served(app) as base:
        monkeypatch.setattr(simcord.backend.cdn, "CDN_BASE", base)
        yield base


@pytest.fixture
async def world(simcord_env: Any, simcord_cdn: str, simcord_bot: VideoBot,
                runcomfy: RunningSimulator, sim_clock: ManualClock, bot_settings: Settings,
                catalog: Catalog, database_target: Path | str) -> AsyncIterator[World]:
    env = simcord_env
    guild = env.create_guild()
    channel = guild.create_text_channel("videos")
    mods = guild.create_role("Mods", permissions=discord.Permissions(manage_messages=True,
                                                                     manage_guild=True))
    world = World(
        env=env, bot=simcord_bot, sim=runcomfy.sim, clock=sim_clock, guild=guild,
        channel=channel, alice=guild.add_member(env.create_user("alice")),
        bob=guild.add_member(env.create_user("bob")),
        mod=guild.add_member(env.create_user("mod"), roles=[mods]),
        make_bot=lambda: make_bot(bot_settings, catalog, database_target),
    )
    yield world
    if world.bot is not simcord_bot:
        await world.bot.close()
