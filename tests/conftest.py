from __future__ import annotations

import itertools
import os
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import discord
import pytest
from aiohttp import web

from bot.catalog import Catalog, load_catalog
from bot.config import Settings
from bot.discord.client import VideoBot
from bot.runcomfy import RetryPolicy, RunComfyClient, Timeouts
from bot.simulator import Simulator, SimulatorConfig
from tests.discord_world import ManualClock, World
from tests.postgres_server import MISSING, PostgresServer, find_bindir, postgres_server

TOKEN = "rc-test-token-5f0c2a"
FAST_RETRY = RetryPolicy(attempts=3, base_delay=0.01, max_delay=0.05)


@dataclass
class RunningSimulator:
    sim: Simulator
    url: str

    def client(self, *, token: str = TOKEN, retry: RetryPolicy = FAST_RETRY,
               timeouts: Timeouts | None = None) -> RunComfyClient:
        return RunComfyClient(token, self.url, retry=retry, timeouts=timeouts)


BACKENDS = ["sqlite", "postgresql"]
_databases = itertools.count(1)


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """A PostgreSQL server of the session's own; skipped (failed under CI) without one."""
    if find_bindir() is None:
        if os.environ.get("CI"):
            pytest.fail(MISSING)
        pytest.skip(MISSING)
    with postgres_server() as server:
        yield server


async def new_postgres_database(server: PostgresServer) -> str:
    """The URL of a new, empty database on ``server``."""
    return await server.create_database(f"test_{os.getpid()}_{next(_databases)}")


@pytest.fixture(params=BACKENDS)
async def database_target(request: pytest.FixtureRequest, tmp_path: Path) -> Path | str:
    """Where a test's store lives: a new SQLite file, or a new PostgreSQL database."""
    if request.param == "sqlite":
        return tmp_path / "bot.sqlite3"
    return await new_postgres_database(request.getfixturevalue("postgres"))


@pytest.fixture(scope="session")
def catalog() -> Catalog:
    return load_catalog()


@pytest.fixture
async def start_simulator() -> AsyncIterator[Callable[..., Awaitable[RunningSimulator]]]:
    """Start simulators on 127.0.0.1 with the given ``SimulatorConfig`` fields."""
    runners: list[web.AppRunner] = []

    async def start(**config: Any) -> RunningSimulator:
        sim = Simulator(SimulatorConfig(**{"token": TOKEN, **config}))
        runner = web.AppRunner(sim.app())
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        runners.append(runner)
        port = runner.addresses[0][1]
        return RunningSimulator(sim, f"http://127.0.0.1:{port}")

    yield start
    for runner in runners:
        await runner.cleanup()


@pytest.fixture
async def simulator(
    start_simulator: Callable[..., Awaitable[RunningSimulator]],
) -> RunningSimulator:
    return await start_simulator(run_seconds=0.2)


@pytest.fixture
async def client(simulator: RunningSimulator) -> AsyncIterator[RunComfyClient]:
    async with simulator.client() as client:
        yield client


@pytest.fixture
def closed_port() -> int:
    """A port on 127.0.0.1 nobody listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def sim_clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
async def runcomfy(start_simulator: Callable[..., Awaitable[RunningSimulator]],
                   sim_clock: ManualClock) -> RunningSimulator:
    """The simulator the bot talks to: jobs take 10 s of simulated RunComfy time."""
    return await start_simulator(clock=sim_clock, run_seconds=10, workers=2)


@pytest.fixture
def bot_settings(tmp_path: Path, runcomfy: RunningSimulator,
                 request: pytest.FixtureRequest) -> Settings:
    """The bot's settings for a test; ``@pytest.mark.settings(jobs={...})`` changes them."""
    data: dict[str, dict[str, Any]] = {
        "bot": {"database": str(tmp_path / "bot.sqlite3"), "shard_count": 1,
                # SimCord's CDN, and the tests' own image servers
                "image_hosts": ["cdn.simcord.invalid", "127.0.0.1"]},
        "runcomfy": {"base_url": runcomfy.url, "retry_attempts": 2, "retry_base_delay": 0.01,
                     "retry_max_delay": 0.02},
        "jobs": {"poll_interval": 3, "card_edit_interval": 0, "timeout_minutes": 30},
        "limits": {"max_concurrent": 0},
    }
    marker = request.node.get_closest_marker("settings")
    for section, values in (marker.kwargs if marker else {}).items():
        data.setdefault(section, {}).update(values)
    return Settings.model_validate(data)


def make_bot(settings: Settings, catalog: Catalog, database: Path | str | None = None
             ) -> VideoBot:
    """The bot; on PostgreSQL when ``database`` is a URL (as with ``DATABASE_URL``)."""
    url = database if isinstance(database, str) else None
    return VideoBot(settings, catalog, TOKEN, database_url=url)


@pytest.fixture
async def simcord_bot(bot_settings: Settings, catalog: Catalog,
                      database_target: Path | str) -> AsyncIterator[VideoBot]:
    bot = make_bot(bot_settings, catalog, database_target)
    yield bot
    await bot.close()


@pytest.fixture
async def world(simcord_env: Any, simcord_bot: VideoBot, runcomfy: RunningSimulator,
                sim_clock: ManualClock, bot_settings: Settings, catalog: Catalog,
                database_target: Path | str) -> AsyncIterator[World]:
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
