"""The poller's clock on Discord: discord.py's task loop calls ``Poller.tick`` (one task however
many jobs wait, reconnect-safe, and on SimCord's clock in the tests), and every few seconds
gives the memory the process freed back to the system once it grew (``bot.memory``)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from discord.ext import tasks

from bot.memory import GIVE_BACK_SECONDS, MemoryReturn
from bot.poller import Poller

log = logging.getLogger(__name__)


class PollLoop:
    def __init__(self, poller: Poller) -> None:
        self.poller = poller
        self._loop = tasks.loop(seconds=poller.tick_seconds)(self._tick_safely)
        self.last_tick: float | None = None  # monotonic: when a tick last ended (readiness)
        self._memory = MemoryReturn()
        self._ticks = 0
        self._ticks_per_look = max(1, round(GIVE_BACK_SECONDS / poller.tick_seconds))

    async def start(self) -> None:
        """Recover first, then poll: the bot starts taking commands only after this returns,
        so no job admitted by this process can be taken for one a crash interrupted."""
        await self.poller.recover()
        self._loop.start()

    async def stop(self) -> None:
        """Stop polling; ``start`` begins afresh from the database, as after a restart."""
        task = self._loop.get_task()
        self._loop.cancel()
        if task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.poller.stop()

    async def _tick_safely(self) -> None:
        try:
            await self.poller.tick()
        except Exception:
            log.exception("poll tick failed; the next one will try again")
        else:
            self.last_tick = time.monotonic()
        self._ticks += 1
        if self._ticks % self._ticks_per_look == 0:
            self._memory()
