"""What the benchmarks share: the real bot in SimCord, the simulator on 127.0.0.1, clocks.

The bot's clock is SimCord's (virtual); ``follow_real_time`` advances it with the wall clock,
so the poll loop runs at its real pace while the numbers are taken in real time.
"""

from __future__ import annotations

import asyncio
import io
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import simcord
from aiohttp import web
from PIL import Image

from bot.app import VideoBot
from bot.catalog import load_catalog
from bot.config import Settings
from bot.simulator import Simulator, SimulatorConfig

STEP = 0.25  # seconds of real time the bot's clock is moved by at once
TOKEN = "bench-token"  # noqa: S105 - the simulator's, not a secret


class StartableClock:
    """The simulator's clock: stopped at 0 until ``start``, then seconds of ``source`` since."""

    def __init__(self, source: Callable[[], float] = time.perf_counter) -> None:
        self.source = source
        self.started_at: float | None = None

    def start(self) -> None:
        self.started_at = self.source()

    def __call__(self) -> float:
        return 0.0 if self.started_at is None else self.source() - self.started_at

    def absolute(self, moment: float) -> float:
        """A moment of this clock as a reading of ``source``."""
        assert self.started_at is not None
        return self.started_at + moment


@dataclass
class Bench:
    env: Any
    bot: VideoBot
    sim: Simulator
    clock: StartableClock
    guild: Any
    members: list[Any]

    async def follow_real_time(self, seconds: float, until: Callable[[], bool] = lambda: False,
                               ) -> None:
        """Let ``seconds`` of real time pass, the bot's clock keeping up with it."""
        start = time.perf_counter()
        virtual = 0.0
        while (elapsed := time.perf_counter() - start) < seconds and not until():
            if elapsed - virtual >= STEP:
                await self.env.advance_time(elapsed - virtual)
                virtual = elapsed
            else:
                await asyncio.sleep(0.01)


def png(width: int = 640, height: int = 480) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), (90, 140, 200)).save(out, format="PNG")
    return out.getvalue()


@asynccontextmanager
async def running_bot(*, sim: SimulatorConfig, jobs: dict[str, Any] | None = None,
                      members: int = 10, clock: StartableClock | None = None,
                      runcomfy_url: str | None = None, runcomfy: dict[str, Any] | None = None,
                      ) -> AsyncIterator[Bench]:
    """The bot (real discord.py in SimCord) against the simulator over 127.0.0.1: served
    here, or already running elsewhere at ``runcomfy_url``."""
    clock = clock or StartableClock()
    sim.clock = clock
    sim.token = TOKEN
    simulator = Simulator(sim)
    runner = web.AppRunner(simulator.app(), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    url = runcomfy_url or f"http://127.0.0.1:{runner.addresses[0][1]}"
    with tempfile.TemporaryDirectory() as folder:
        settings = Settings.model_validate({
            "bot": {"database": str(Path(folder) / "bench.sqlite3"), "log_level": "WARNING"},
            "runcomfy": {"base_url": url, **(runcomfy or {})},
            "jobs": {"poll_interval": 3.0, **(jobs or {})},
            "limits": {"max_concurrent": 0},
        })
        bot = VideoBot(settings, load_catalog(), TOKEN)
        try:
            # Settling waits for timers due within settle_timeout: keep it under aiohttp's
            # 15 s keep-alive timer, which would otherwise be waited out at every step.
            async with simcord.run(bot, settle_timeout=5, check_errors=False) as env:
                guild = env.create_guild()
                people = [guild.add_member(env.create_user(f"member{i}"))
                          for i in range(members)]
                yield Bench(env, bot, simulator, clock, guild, people)
        finally:
            await bot.release()
            await runner.cleanup()


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]
