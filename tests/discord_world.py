"""A Discord server (SimCord) with the real bot in it, and RunComfy (the simulator) behind it."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import discord

from bot.discord.client import VideoBot
from bot.discord.history import is_card_of
from bot.i18n import catalogs
from bot.jobs import Job
from bot.simulator import Simulator
from bot.simulator.app import Call
from tests.clocks import ManualClock


def _ready_pattern() -> re.Pattern[str]:
    """The video post's line in every language the bot speaks."""
    said = {str(catalogs().translations(language).gettext(READY_TEXT))
            for language in catalogs().languages}
    return re.compile("|".join(
        re.escape(text).replace(re.escape("{model}"), ".+?").replace(re.escape("{job}"), r"\d+")
        for text in sorted(said)))


READY_TEXT = "your video is ready ({model}, job #{job})."
READY = _ready_pattern()

@dataclass
class World:
    env: Any
    bot: VideoBot
    sim: Simulator
    clock: ManualClock
    guild: Any
    channel: Any
    alice: Any
    bob: Any
    mod: Any
    make_bot: Callable[[], VideoBot]

    @property
    def poll_interval(self) -> float:
        return self.bot.settings.jobs.poll_interval

    def messages(self, channel: Any = None) -> list[discord.Message]:
        return list((channel or self.channel).history())

    def bot_messages(self, channel: Any = None) -> list[discord.Message]:
        me = self.env.bot.user.id
        return [m for m in self.messages(channel) if m.author.id == me]

    def videos(self, channel: Any = None) -> list[discord.Message]:
        """The bot's video posts: "your video is ready (...)" in whichever language."""
        return [m for m in self.bot_messages(channel) if READY.search(m.content)]

    def card(self, job_id: int, channel: Any = None) -> discord.Message:
        for message in self.bot_messages(channel):
            if is_card_of(message, job_id):
                return message
        raise AssertionError(f"no card for job #{job_id}")

    def job_calls(self) -> list[Call]:
        """What the bot asked RunComfy about jobs (submits, polls, cancels): every call but
        the price reads of its start-up (``GET /v1/models/...``)."""
        return [c for c in self.sim.calls
                if not (c.method == "GET" and c.path.startswith("/v1/models/"))]

    @staticmethod
    def buttons(message: discord.Message) -> list[str | None]:
        return [child.label for row in message.components
                if isinstance(row, discord.ActionRow) for child in row.children
                if isinstance(child, discord.Button)]

    @staticmethod
    def replied_to(messages: list[discord.Message]) -> list[int]:
        return [m.reference.message_id for m in messages
                if m.reference is not None and m.reference.message_id is not None]

    async def job(self, job_id: int) -> Job:
        job = await self.bot.parts.store.get(job_id)
        assert job is not None
        return job

    async def run_until(self, done: Callable[[], bool], *, limit: int = 40) -> None:
        """Let RunComfy and the bot's poll loop run, one poll interval at a time."""
        for _ in range(limit):
            if done():
                return
            self.clock.advance(self.poll_interval)
            await self.env.advance_time(self.poll_interval)
        raise AssertionError("the condition never came true")

    async def answered_before_runcomfy(self, pressing: asyncio.Task[Any]) -> Any:
        """``pressing``'s result, once it is known that Discord had the defer (type 5) by the
        time RunComfy, made slow by a fault, was first asked."""
        while self.sim.in_flight == 0 and not pressing.done():  # noqa: ASYNC110 - its counter
            await asyncio.sleep(0.005)
        assert any(r.method == "POST" and r.path.endswith("/callback")
                   and (r.json or {}).get("type") == 5 for r in self.env.http_requests)
        return await pressing

    async def restart(self) -> None:
        """Stop this bot and start a new one on the same database, as after a crash: the old
        one's database connection goes first, so whatever it had not committed is lost."""
        old, self.bot = self.bot, self.make_bot()
        await old.parts.db.close()
        await self.env.restart_bot(self.bot)
        await old.release()

    async def run_polls(self, count: int) -> None:
        for _ in range(count):
            self.clock.advance(self.poll_interval)
            await self.env.advance_time(self.poll_interval)
