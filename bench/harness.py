"""What the benchmarks share: the real bot in SimCord, pointed at the simulator on 127.0.0.1
(``bench.remote``, a process of its own).

SimCord's clock (Discord's timestamps, discord.py's timers) is virtual: it moves only when a
benchmark moves it, and then only as far as the bot settles, which a busy bot may not do for
seconds. ``follow_real_time`` keeps it up with the wall clock as well as it can. What the
bot's jobs depend on does not wait for it: the bot's own clock (``VideoBot.clock``: its
timestamps, ETAs and the ages its poll plan is made from) follows real time in SimCord's
dates, and ``polling`` runs the poller's loop on the real clock, as in production.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import simcord
from PIL import Image
from simcord import interactions as payloads  # what an actor's slash() sends, built at once
from simcord.actors import _resolve_visible_command
from simcord.enums import InteractionType
from simcord.http.client import FakeWebhookAdapter

from bench.remote import TOKEN
from bot.catalog import load_catalog
from bot.config import Settings
from bot.discord.client import VideoBot, utc_seconds
from bot.poller import TICKS_PER_INTERVAL, Poller

log = logging.getLogger(__name__)
STEP = 0.25  # seconds of real time the bot's clock is moved by at once
# The real clock, taken before SimCord makes ``time.monotonic`` its virtual clock in the bot's
# tasks: every moment a benchmark records is read from it (and RunComfy's clock follows it).
real_monotonic = time.monotonic


@dataclass
class Bench:
    env: Any
    bot: VideoBot
    guild: Any
    members: list[Any]
    _origin: tuple[float, float] | None = None  # (real, SimCord's clock) when first followed
    lags: list[float] = field(default_factory=list)  # SimCord's clock behind real time, s

    def simcord_clock(self) -> float:
        """SimCord's clock (virtual), in unix seconds."""
        return float(self.env.now().timestamp())

    async def catch_up(self) -> None:
        """Move SimCord's clock to where real time is since it was first followed: time spent
        outside ``follow_real_time`` (asking for jobs, say) is made up."""
        now = real_monotonic()
        if self._origin is None:
            self._origin = (now, self.simcord_clock())
            return
        behind = (now - self._origin[0]) - (self.simcord_clock() - self._origin[1])
        self.lags.append(behind)
        if behind > 0:
            # SimCord moves its clock only as far as the bot settles within its timeout;
            # a bot posting without a pause may not. What moved stays moved.
            with contextlib.suppress(TimeoutError):
                await self.env.advance_time(behind)

    async def follow_real_time(self, seconds: float, until: Callable[[], bool] = lambda: False,
                               ) -> None:
        """Let ``seconds`` of real time pass, SimCord's clock keeping up with it."""
        start = last = real_monotonic()
        await self.catch_up()
        while (now := real_monotonic()) - start < seconds and not until():
            if now - last >= STEP:
                await self.catch_up()
                last = now
            else:
                await asyncio.sleep(0.01)


class FollowingClock:
    """Unix seconds in SimCord's dates, moving with real time: read first (while SimCord's
    clock is at its start), then that plus the real seconds since."""

    def __init__(self) -> None:
        self._origin: tuple[float, float] | None = None

    def __call__(self) -> float:
        now = real_monotonic()
        if self._origin is None:
            self._origin = (now, utc_seconds())
        return self._origin[1] + (now - self._origin[0])


@asynccontextmanager
async def polling(poller: Poller) -> AsyncIterator[None]:
    """The poller's loop driven from here on the real clock, ``TICKS_PER_INTERVAL`` ticks an
    interval at a fixed rate, as discord.py's task loop does in production (in SimCord that
    loop sleeps on SimCord's clock: stop the bot's ``poll_loop`` first). It starts as the
    bot's does: ``recover``, then ticks."""
    await poller.stop()

    async def loop() -> None:
        await poller.recover()
        tick = poller.settings.interval / TICKS_PER_INTERVAL
        due = real_monotonic()
        while True:
            try:
                await poller.tick()
            except Exception:  # as the bot's loop does: the next tick tries again
                log.exception("poll tick failed")
            due = max(due + tick, real_monotonic() - tick)
            await asyncio.sleep(max(0.0, due - real_monotonic()))

    task = asyncio.create_task(loop(), name="bench-poller")
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await poller.stop()


def slash(bench: Bench, member: Any, channel: Any, command: str,
          options: dict[str, Any], guild: Any = None) -> str:
    """Emit one slash command as Discord sends it (without waiting for the bot); its
    interaction id. ``guild``: the channel's, when not the bench's own."""
    backend = bench.env.backend
    root = _resolve_visible_command(member, channel.id, command, 1)
    built, resolved = payloads.build_options(member, command, root, options,
                                             channel_id=channel.id)
    record, payload = payloads.base_payload(
        backend, type=InteractionType.APPLICATION_COMMAND, channel_id=channel.id,
        guild_id=(guild or bench.guild).id, user_id=member.id,
        data={"id": root["id"], "name": root["name"], "type": 1, "options": built,
              "resolved": resolved})
    backend.emit("INTERACTION_CREATE", payload)
    return str(record.id)


Heard = Callable[[Any, dict[str, Any] | None, list[dict[str, Any]] | None], None]


def hear_answers(heard: Heard) -> None:
    """Every request the bot makes to an interaction's webhook (the first answer, an edit of
    the original response...) is passed to ``heard`` (its route, JSON payload and multipart
    parts) as soon as SimCord has taken it."""
    original = FakeWebhookAdapter.request

    async def hearing(self: Any, route: Any, *args: Any, **kwargs: Any) -> Any:
        result = await original(self, route, *args, **kwargs)
        heard(route, kwargs.get("payload"), kwargs.get("multipart"))
        return result

    FakeWebhookAdapter.request = hearing  # type: ignore[method-assign]


def first_answer_of(route: Any) -> str | None:
    """The interaction id, if ``route`` is an interaction's first answer (its callback)."""
    path = str(getattr(route, "url", ""))
    return path.split("/interactions/")[1].split("/")[0] if path.endswith("/callback") else None


def png(width: int = 640, height: int = 480) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), (90, 140, 200)).save(out, format="PNG")
    return out.getvalue()


@asynccontextmanager
async def running_bot(*, runcomfy_url: str, jobs: dict[str, Any] | None = None,
                      members: int = 10, sections: dict[str, Any] | None = None,
                      ) -> AsyncIterator[Bench]:
    """The bot (real discord.py in SimCord) against the simulator at ``runcomfy_url``;
    ``sections``: settings' sections in place of the bench's (``limits``: none by default)."""
    with tempfile.TemporaryDirectory() as folder:
        settings = Settings.model_validate({
            "bot": {"database": str(Path(folder) / "bench.sqlite3"), "log_level": "WARNING",
                    "shard_count": 1},
            "runcomfy": {"base_url": runcomfy_url},
            "jobs": {"poll_interval": 3.0, **(jobs or {})},
            "limits": {"max_concurrent": 0},
            **(sections or {}),
        })
        bot = VideoBot(settings, load_catalog(), TOKEN, clock=FollowingClock())
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
