"""The fixtures every test may use: a PostgreSQL server of the session's own, a store on
either backend, the catalog, and the RunComfy simulator over HTTP on 127.0.0.1. Discord's
(SimCord with the real bot in it) are in tests/discord_fixtures.py, for the tests of
Discord's side."""

from __future__ import annotations

import itertools
import os
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from bot.catalog import Catalog, load_catalog
from bot.runcomfy import RetryPolicy, RunComfyClient, Timeouts
from bot.simulator import Simulator, SimulatorConfig
from bot.store.connect import open_database
from bot.store.database import Database
from tests.clocks import ManualClock, SetClock
from tests.discord_stand_in import Launcher, StandIn
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
    require_postgres()
    with postgres_server() as server:
        yield server


def require_postgres() -> None:
    """Skip the test (fail it under CI) when PostgreSQL's binaries are not there."""
    if find_bindir() is None:
        if os.environ.get("CI"):
            pytest.fail(MISSING)
        pytest.skip(MISSING)


async def new_postgres_database(server: PostgresServer) -> str:
    """The URL of a new, empty database on ``server``."""
    return await server.create_database(f"test_{os.getpid()}_{next(_databases)}")


@pytest.fixture(params=BACKENDS)
async def database_target(request: pytest.FixtureRequest, tmp_path: Path) -> Path | str:
    """Where a test's store lives: a new SQLite file, or a new PostgreSQL database."""
    if request.param == "sqlite":
        return tmp_path / "bot.sqlite3"
    return await new_postgres_database(request.getfixturevalue("postgres"))


@pytest.fixture
async def stand_in() -> AsyncIterator[StandIn]:
    """A Discord stand-in of our own (HTTP and gateway on 127.0.0.1), for real bot processes."""
    async with StandIn() as server:
        yield server


@pytest.fixture
async def launcher(tmp_path: Path) -> AsyncIterator[Launcher]:
    """Real bot processes against the stand-in, each killed at the end (their output shown
    when the test failed). Some modules keep a launcher of their own."""
    async with Launcher(tmp_path) as launch:
        yield launch
    for bot in launch.bots:
        print(f"---- {bot.workdir.name} ----\n{bot.output(1)[-6000:]}")


@pytest.fixture
def clock() -> SetClock:
    """The store's clock, set by the test (a module may start it elsewhere: its own
    ``clock`` fixture)."""
    return SetClock(1_767_225_600.0)  # 2026-01-01 00:00 UTC


@pytest.fixture
async def db(database_target: Path | str, clock: SetClock) -> AsyncIterator[Database]:
    """A store of the test's own on either backend, on ``clock``."""
    database = await open_database(database_target, clock=clock)
    yield database
    await database.close()


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
