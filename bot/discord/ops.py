"""The process's endpoints for its operator (``[ops] listen``): ``/healthz`` (the event loop
answers), ``/readyz`` (every shard connected, the database answers, the poller ran lately;
503 naming what is not) and ``/metrics`` (Prometheus). Also samples the event loop's lag, and
counts Discord's 429s while it serves (``bot.discord.counted``). Imported only when the
operator asks for the endpoints: a bot without them serves no HTTP."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Callable

from aiohttp import web

from bot.discord.counted import RateLimits
from bot.discord.poll_loop import PollLoop
from bot.metrics import Metrics
from bot.store.database import Database

log = logging.getLogger(__name__)
DATABASE_SECONDS = 2.0  # the database must answer SELECT 1 within this
POLLS_LATE = 3  # the poller is late past this many intervals
LAG_EVERY = 0.5  # seconds between two samples of the loop's lag
class Ops:
    def __init__(self, listen: str, metrics: Metrics, connected: Callable[[], bool],
                 db: Database, poll_loop: PollLoop) -> None:
        """``connected``: whether every shard of this process is connected to Discord."""
        self.metrics = metrics
        self.connected = connected
        self.db = db
        self.poll_loop = poll_loop
        host, _, port = listen.rpartition(":")
        self.host, self.port = host, int(port)
        self._runner: web.AppRunner | None = None
        self._sampler: asyncio.Task[None] | None = None
        self._rate_limits = RateLimits(metrics)

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/readyz", self._readyz)
        app.router.add_get("/metrics", self._metrics)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, self.host, self.port).start()
        self._sampler = asyncio.create_task(self._sample_lag(), name="loop-lag")
        logging.getLogger("discord.http").addHandler(self._rate_limits)
        log.info("ops endpoints on http://%s:%d (/healthz, /readyz, /metrics)", self.host,
                 self.port)

    async def stop(self) -> None:
        logging.getLogger("discord.http").removeHandler(self._rate_limits)
        if self._sampler is not None:
            self._sampler.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sampler
        if self._runner is not None:
            await self._runner.cleanup()

    async def _healthz(self, _: web.Request) -> web.Response:
        return web.json_response({"alive": True})

    async def _readyz(self, _: web.Request) -> web.Response:
        failing = [part for part, ok in (("gateway", self.connected()),
                                         ("database", await self._database_answers()),
                                         ("poller", self._polling())) if not ok]
        body = json.dumps({"ready": not failing, "failing": failing})
        return web.Response(text=body, status=503 if failing else 200,
                            content_type="application/json")

    async def _metrics(self, _: web.Request) -> web.Response:
        return web.Response(body=self.metrics.text(),
                            headers={"Content-Type": "text/plain; version=0.0.4"})

    async def _database_answers(self) -> bool:
        try:
            await asyncio.wait_for(self.db.fetchrow("SELECT 1"), DATABASE_SECONDS)
        except Exception:  # any failure is "not ready", named in the answer
            return False
        return True

    def _polling(self) -> bool:
        last = self.poll_loop.last_tick
        late = POLLS_LATE * self.poll_loop.poller.settings.interval
        return last is not None and time.monotonic() - last <= late

    async def _sample_lag(self) -> None:
        while True:
            before = time.monotonic()
            await asyncio.sleep(LAG_EVERY)
            self.metrics.loop_lag.observe(max(time.monotonic() - before - LAG_EVERY, 0.0))
