"""What the benchmarks share: the real bot in SimCord, pointed at the simulator on 127.0.0.1
(``bench.remote``, a process of its own).

The bot's clock is SimCord's (virtual); ``follow_real_time`` advances it with the wall clock,
so the poll loop runs at its real pace while the numbers are taken in real time.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import simcord
from PIL import Image

from bench.remote import TOKEN
from bot.app import VideoBot
from bot.catalog import load_catalog
from bot.config import Settings

STEP = 0.25  # seconds of real time the bot's clock is moved by at once


@dataclass
class Bench:
    env: Any
    bot: VideoBot
    guild: Any
    members: list[Any]

    async def follow_real_time(self, seconds: float, until: Callable[[], bool] = lambda: False,
                               ) -> None:
        """Let ``seconds`` of real time pass, the bot's clock keeping up with it."""
        start = time.perf_counter()
        virtual = 0.0
        while (elapsed := time.perf_counter() - start) < seconds and not until():
            if elapsed - virtual >= STEP:
                # SimCord moves its clock only as far as the bot settles within its timeout;
                # a bot posting without a pause may not. What moved stays moved.
                with contextlib.suppress(TimeoutError):
                    await self.env.advance_time(elapsed - virtual)
                virtual = elapsed
            else:
                await asyncio.sleep(0.01)


def png(width: int = 640, height: int = 480) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), (90, 140, 200)).save(out, format="PNG")
    return out.getvalue()


@asynccontextmanager
async def running_bot(*, runcomfy_url: str, jobs: dict[str, Any] | None = None,
                      members: int = 10) -> AsyncIterator[Bench]:
    """The bot (real discord.py in SimCord) against the simulator at ``runcomfy_url``."""
    with tempfile.TemporaryDirectory() as folder:
        settings = Settings.model_validate({
            "bot": {"database": str(Path(folder) / "bench.sqlite3"), "log_level": "WARNING"},
            "runcomfy": {"base_url": runcomfy_url},
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
                yield Bench(env, bot, guild, people)
        finally:
            await bot.release()


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]
