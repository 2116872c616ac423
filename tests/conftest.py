from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import pytest
from aiohttp import web

from bot.catalog import Catalog, load_catalog
from bot.runcomfy import RetryPolicy, RunComfyClient, Timeouts
from bot.simulator import Simulator, SimulatorConfig

TOKEN = "rc-test-token-5f0c2a"
FAST_RETRY = RetryPolicy(attempts=3, base_delay=0.01, max_delay=0.05)


@dataclass
class RunningSimulator:
    sim: Simulator
    url: str

    def client(self, *, token: str = TOKEN, retry: RetryPolicy = FAST_RETRY,
               timeouts: Timeouts | None = None) -> RunComfyClient:
        return RunComfyClient(token, self.url, retry=retry, timeouts=timeouts)


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
