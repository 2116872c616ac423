"""A server with hostile blocklist rules must not stall the others (the issue's test): while
the members of a server with ``MAX_RULES`` catastrophic regular expressions keep asking for
videos with long prompts, another server's 50 slash commands are all acknowledged within 3 s,
and the event loop's lag stays under 100 ms.

SimCord settles the bot after every action, so it cannot have two servers' commands in flight
at once. Here the real bot (``VideoBot``, real discord.py) runs in this test's event loop
against the Discord stand-in (a real HTTP API and gateway on 127.0.0.1), which takes any
number of interactions at once and times each one's first answer (the "thinking" defer).
The lag is measured in that same loop (the bot's, shared with the stand-in and RunComfy's
simulator) by a task that sleeps 10 ms and records how late it wakes. Every check of a
server's rules is timed where it runs, in a worker thread.
"""

from __future__ import annotations

import asyncio
import gc
import secrets
import statistics
import threading
import time
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import discord
import pytest
import yarl
from discord.gateway import DiscordWebSocket

import bot.policy
from bot.blocklist import CHECK_SECONDS, MAX_RULES, PATTERN_MAX, Rule, first_blocked
from bot.catalog import Catalog
from bot.config import Settings
from bot.discord.client import VideoBot
from bot.policy import BlockRule
from tests.discord_fixtures import make_bot
from tests.discord_stand_in import Channel, InteractionHandle, Member, StandIn

ACK_LIMIT = 3.0  # seconds from an interaction's dispatch to its first answer (the issue's)
LAG_LIMIT = 0.1  # seconds the event loop may be late (the issue's)
TICK = 0.01  # the lag sampler's sleep
CALM_COMMANDS = 50
CALM_MEMBERS = 10
CALM_PACE = 0.04  # seconds between two of the calm server's commands: 2 s or more for all
# Each hostile member asks again as soon as it is refused: up to this many checks at once,
# each spinning a core until the time budget runs out, twice the cores of a 2-core machine.
# (Six, every worker thread of the loop's default executor there, took the lag to 90-145 ms
# when two other CPU-bound processes ran on the same 2 cores.)
HOSTILE_MEMBERS = 4
WARM_UP = 0.5  # seconds of hostile load before the calm server's first command
PATIENCE = 30.0  # seconds to wait for an answer (generous, for a loaded 2-core machine)
POLL = 0.02  # how often the members look for their answers
VIDEO = "kling-3-0-4k"  # text to video: a prompt, a negative prompt and shots, all checked
QUEUED = "Job #"


def hostile_pattern(n: int) -> str:
    """Rule ``n``: one or more of 18 overlapping runs of ``a``, then what no prompt here has
    (a ``b``). A run of 25 ``a`` already takes the regex engine seconds; the prompts have
    1200. 195 to 197 characters (``PATTERN_MAX`` is 200), each rule its own."""
    runs = "|".join("a" * length for length in range(1, 19))
    return f"(?:{runs})+b{'cdefghijklmnopqrstuvwxyz'[n % 24]}{'x' * (n // 24)}"


HOSTILE_RULES = [BlockRule(pattern=hostile_pattern(n), regex=True) for n in range(MAX_RULES)]
# What the checker says when the time budget runs out: the rule it was checking (the first).
REFUSED = f"Your prompt contains “{HOSTILE_RULES[0].label}”, which is not allowed here."


def hostile_text(what: str) -> str:
    """A long prompt text, a run of ``a`` (with a soft hyphen: normalised, it is another
    text, so the checker has both to match)."""
    return f"{'a' * 1200}\u00ad {what}"


def hostile_options(n: int) -> dict[str, Any]:
    """Five long prompt texts: the prompt, the negative prompt and three shots."""
    return {"prompt": hostile_text(f"prompt {n}"), "negative_prompt": hostile_text(f"not {n}"),
            "duration": 15, "multi_prompt": " | ".join(
                f"5: {hostile_text(f'shot {shot} {n}')}" for shot in range(3))}


@dataclass(frozen=True)
class Check:
    """One check of a server's rules against a request's texts."""

    rules: int
    began: float  # time.perf_counter()
    seconds: float  # wall-clock
    cpu: float  # the process's CPU time meanwhile: the regex engine's clock for its timeout
    found: str | None
    thread: int


@dataclass
class Servers:
    discord: StandIn
    hostile_channel: Channel
    hostile_mod: Member
    hostile: list[Member]
    calm_channel: Channel
    calm_mod: Member
    calm: list[Member]
    checks: list[Check] = field(default_factory=list)


@pytest.fixture
def servers(stand_in: StandIn) -> Servers:
    """Two servers, made before the bot connects (it gets them when it is ready)."""
    made: dict[str, tuple[Channel, Member, list[Member]]] = {}
    for name, members in (("Hostile", HOSTILE_MEMBERS), ("Calm", CALM_MEMBERS)):
        guild = stand_in.guild(name)
        mods = stand_in.role(guild, "Mods", discord.Permissions(manage_guild=True,
                                                                manage_messages=True))
        made[name] = (stand_in.channel(guild, "videos"),
                      stand_in.member(guild, f"{name.lower()}-mod", roles=[mods]),
                      [stand_in.member(guild, f"{name.lower()}-{n}") for n in range(members)])
    return Servers(stand_in, *made["Hostile"], *made["Calm"])


@pytest.fixture
async def video_bot(servers: Servers, bot_settings: Settings, catalog: Catalog,
                    database_target: Path | str,
                    monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[VideoBot]:
    """The bot in this event loop, connected to the stand-in as ``python -m bot`` is with
    ``DISCORD_API_BASE`` (bot/discord/startup.py); every check of the blocklist recorded."""
    stand_in = servers.discord
    monkeypatch.setattr(discord.http.Route, "BASE", stand_in.api_base)
    monkeypatch.setattr(DiscordWebSocket, "DEFAULT_GATEWAY", DiscordWebSocket.DEFAULT_GATEWAY)

    def recorded(rules: Sequence[Rule], texts: Iterable[str],
                 seconds: float = CHECK_SECONDS) -> str | None:
        began, cpu = time.perf_counter(), time.process_time()
        found = first_blocked(rules, texts, seconds)
        servers.checks.append(Check(len(rules), began, time.perf_counter() - began,
                                    time.process_time() - cpu, found, threading.get_ident()))
        return found

    monkeypatch.setattr(bot.policy, "first_blocked", recorded)
    video_bot = make_bot(bot_settings, catalog, database_target)
    token = f"stand-in-token-{secrets.token_hex(6)}"
    running: asyncio.Task[None] | None = None
    try:
        await video_bot.login(token)  # then setup_hook: the store, the cogs, the commands
        _, url, _ = await video_bot.http.get_bot_gateway()
        DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(url)
        running = asyncio.create_task(video_bot.connect())
        await stand_in.wait_for(lambda: video_bot.is_ready() and len(video_bot.guilds) == 2,
                                PATIENCE, what="the bot ready in both servers")
        yield video_bot
    finally:
        await video_bot.close()
        if running is not None:
            await asyncio.wait_for(running, PATIENCE)


async def answered(stand_in: StandIn, run: InteractionHandle, start: str = "") -> str:
    """The text that replaced the interaction's "thinking" (once it starts with ``start``)."""
    def shown() -> bool:
        content = run.content
        return bool(content) and content is not None and content.startswith(start)

    await stand_in.wait_for(shown, PATIENCE, what=f"the answer to /{run.name}", interval=POLL)
    return run.content or ""


@dataclass
class LoopLag:
    """How late a task of the loop wakes from each ``TICK`` sleep: how long anything ready to
    run in the loop waits. Also the full garbage collections meanwhile, which stop it too."""

    lags: list[float] = field(default_factory=list)
    full_collections: list[float] = field(default_factory=list)
    _stop: asyncio.Event = field(default_factory=asyncio.Event)
    _task: asyncio.Task[None] | None = None
    _collecting_since: float = 0.0

    def start(self) -> None:
        gc.collect()  # what the set-up left is not the burst's to collect
        gc.callbacks.append(self._collection)
        self._task = asyncio.create_task(self._sample())

    async def stop(self) -> None:
        self._stop.set()
        if self._task is not None:
            await self._task
        gc.callbacks.remove(self._collection)

    async def _sample(self) -> None:
        while not self._stop.is_set():
            before = time.perf_counter()
            await asyncio.sleep(TICK)
            self.lags.append(time.perf_counter() - before - TICK)

    def _collection(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._collecting_since = time.perf_counter()
        elif info["generation"] == 2:
            self.full_collections.append(time.perf_counter() - self._collecting_since)


def busy(checks: Sequence[Check], start: float, end: float) -> tuple[float, float]:
    """The share of ``start`` to ``end`` when at least one of ``checks`` ran, and how many
    ran at once on average."""
    spans = sorted((max(c.began, start), min(c.began + c.seconds, end)) for c in checks)
    spans = [(a, b) for a, b in spans if b > a]
    covered, reached = 0.0, start
    for a, b in spans:
        covered += max(0.0, b - max(a, reached))
        reached = max(reached, b)
    return covered / (end - start), sum(b - a for a, b in spans) / (end - start)


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


def percentile(values: Sequence[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


async def test_a_server_with_hostile_rules_does_not_stall_another(
        servers: Servers, video_bot: VideoBot) -> None:
    stand_in = servers.discord
    began = time.perf_counter()
    assert max(len(r.pattern) for r in HOSTILE_RULES) <= PATTERN_MAX
    assert len({r.pattern for r in HOSTILE_RULES}) == MAX_RULES
    texts = [hostile_text("prompt"), hostile_text("shot 1")]
    assert not any("b" in text for text in texts)  # so no rule can match them
    # Each rule on its own is hostile: it runs out of even a tenth of the time budget.
    assert [first_blocked([r], texts, CHECK_SECONDS / 10) for r in HOSTILE_RULES] \
        == [r.label for r in HOSTILE_RULES]

    # The hostile server's moderator sets them all, as any moderator can; the calm server
    # has an ordinary blocklist.
    for rule in HOSTILE_RULES:
        run = await stand_in.slash(servers.hostile_mod, servers.hostile_channel,
                                   "settings blocklist", action="add", pattern=rule.pattern,
                                   regex=True)
        assert (await answered(stand_in, run)).endswith("added to the prompt blocklist.")
    run = await stand_in.slash(servers.calm_mod, servers.calm_channel, "settings blocklist",
                               action="add", pattern="gore")
    assert (await answered(stand_in, run)).endswith("added to the prompt blocklist.")
    hostile_guild = servers.hostile_channel.guild_id
    assert hostile_guild is not None
    policy = await video_bot.parts.policies.get(hostile_guild)
    assert policy.prompt_blocklist == tuple(HOSTILE_RULES)
    servers.checks.clear()
    set_up = time.perf_counter() - began

    # The burst: the hostile server's members ask again and again, and meanwhile the calm
    # server's members ask for 50 videos.
    hostile_runs: list[InteractionHandle] = []
    stop_hostile = asyncio.Event()

    async def hostile(member: Member) -> None:
        n = 0
        while not stop_hostile.is_set():
            run = await stand_in.slash(member, servers.hostile_channel, VIDEO,
                                       **hostile_options(n))
            await answered(stand_in, run)
            hostile_runs.append(run)
            n += 1

    loop_lag = LoopLag()
    loop_lag.start()
    burst_began = time.perf_counter()
    attacking = [asyncio.create_task(hostile(member)) for member in servers.hostile]
    try:
        await asyncio.sleep(WARM_UP)
        calm_began = time.perf_counter()
        calm_runs: list[InteractionHandle] = []
        for n in range(CALM_COMMANDS):
            calm_runs.append(await stand_in.slash(
                servers.calm[n % CALM_MEMBERS], servers.calm_channel, VIDEO,
                prompt=f"a calm sea at dawn, take {n}", negative_prompt="blur"))
            await asyncio.sleep(CALM_PACE)
        calm_answers = [await answered(stand_in, run, QUEUED) for run in calm_runs]
        calm_ended = time.perf_counter()
    finally:
        stop_hostile.set()
        await asyncio.gather(*attacking)
        await loop_lag.stop()
    burst = time.perf_counter() - burst_began

    acks = [run.ack_seconds for run in calm_runs if run.ack_seconds is not None]
    lags = loop_lag.lags
    hostile_checks = [c for c in servers.checks if c.rules == MAX_RULES]
    calm_checks = [c for c in servers.checks if c.rules == 1]
    covered, at_once = busy(hostile_checks, calm_began, calm_ended)
    where = video_bot.parts.db.dialect
    print(f"\n[{where}] set-up {set_up:.1f} s, burst {burst:.1f} s")
    print(f"[{where}] calm server: {len(acks)} commands over {calm_ended - calm_began:.1f} s, "
          f"acknowledged in p50 {ms(statistics.median(acks))}, p90 "
          f"{ms(percentile(acks, 0.9))}, max {ms(max(acks))} (limit {ms(ACK_LIMIT)}); its "
          f"checks took up to {ms(max(c.seconds for c in calm_checks))}")
    print(f"[{where}] event loop lag over {len(lags)} samples: p50 {ms(statistics.median(lags))}"
          f", p99 {ms(percentile(lags, 0.99))}, max {ms(max(lags))} (limit {ms(LAG_LIMIT)}); "
          f"full garbage collections meanwhile: {[ms(s) for s in loop_lag.full_collections]}")
    print(f"[{where}] hostile server: {len(hostile_runs)} requests, all refused; while the "
          f"calm server asked, its checks ran {covered:.0%} of the time, {at_once:.1f} at once "
          f"on average; each check "
          f"{ms(min(c.seconds for c in hostile_checks))} to "
          f"{ms(max(c.seconds for c in hostile_checks))} (process CPU "
          f"{ms(min(c.cpu for c in hostile_checks))} to {ms(max(c.cpu for c in hostile_checks))}"
          f"; budget {ms(CHECK_SECONDS)})")

    # The calm server: every command acknowledged within the limit, then queued.
    assert len(acks) == CALM_COMMANDS
    assert max(acks) < ACK_LIMIT, sorted(acks)[-5:]
    assert all(answer.startswith(QUEUED) for answer in calm_answers), calm_answers
    assert len(calm_checks) == CALM_COMMANDS
    # The event loop was never late by the limit, for the whole burst.
    assert max(lags) < LAG_LIMIT, (sorted(lags)[-5:], loop_lag.full_collections)
    # The hostile server was hostile throughout: its checks ran most of the while (85 to 100 %
    # of it, as a rule), each of its requests checked once, off the event loop, until the time
    # budget ran out (no rule can match its texts), and refused for it.
    assert covered > 0.5
    assert len(hostile_checks) == len(hostile_runs)
    assert all(c.found == HOSTILE_RULES[0].label for c in hostile_checks)
    assert threading.main_thread().ident not in {c.thread for c in servers.checks}
    assert [run.content for run in hostile_runs] == [REFUSED] * len(hostile_runs)
