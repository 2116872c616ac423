"""The operator's caps hold across processes: two real ``python -m bot`` processes on one
PostgreSQL database admit a burst of commands at once, and no interleaving lets one more video
through than the caps allow.

* The account's daily cap (``account.daily_budget_usd``): two shards, one process each, and
  guilds on both; every admission takes the account's lock (after its guild's), so exactly
  as many jobs as the cap pays for are written down and sent to RunComfy, whichever process
  admits them, and every other command is told the bot's own limit is reached.
* A server's ceiling (``ceilings.daily_quota``, the server's own quota 0): two unsharded
  processes with the same settings (a rolling deploy: both serve every guild), with the
  interactions of one guild dealt out to both in turn; the guild's lock, held across
  processes, lets exactly the ceiling's number of each member's commands through.

RunComfy (the simulator) runs each job for minutes, so every admitted job stays open during the
burst and counts at its estimate.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from bot.store.connect import open_database
from bot.store.database import Database
from tests.conftest import TOKEN, RunningSimulator
from tests.discord_stand_in import (
    BotProcess,
    InteractionHandle,
    Launcher,
    StandIn,
    bot_environment,
    shard_of,
)
from tests.discord_stand_in.gateway import Connection
from tests.images import image_bytes

PNG = image_bytes("png", 640, 480)
PATIENCE = 60.0  # real seconds, for a loaded 2-core machine
SHARDS = 2
# kling-2-1 at $0.10 a second: $0.50 for its default 5 s; a $2.00 day pays for 4 videos.
PRICED = {"prices__kling-2-1__unit": "second", "prices__kling-2-1__usd": 0.1}
DAILY_BUDGET = 2.0
PAID_FOR = 4
CEILING = 3
ACCOUNT_REFUSAL = "The bot's own spending limit for today is reached; it resets in "
QUEUED = "Job #"
Start = Callable[..., Awaitable[RunningSimulator]]
postgresql_only = pytest.mark.parametrize("database_target", ["postgresql"], indirect=True)


async def slow_runcomfy(start_simulator: Start) -> RunningSimulator:
    """Jobs are taken at once and run far longer than the test: every one stays open."""
    return await start_simulator(run_seconds=600, queue_seconds=0, workers=32)


def environment(discord: StandIn, runcomfy: RunningSimulator, url: str, token: str,
                **settings: Any) -> dict[str, str]:
    """A process's environment: the database, RunComfy, no limit on videos at once (so that
    it is not what binds), and ``settings``."""
    return bot_environment(discord, runcomfy_url=runcomfy.url, runcomfy_token=TOKEN,
                           database_url=url, token=token, jobs__card_edit_interval=0,
                           limits__max_concurrent=0, **settings)


async def start_all(launch: Launcher, discord: StandIn,
                    envs: list[dict[str, str]]) -> list[BotProcess]:
    """Every process started at once (the database is migrated already), then ready."""
    bots = [await launch(discord, env) for env in envs]
    await asyncio.gather(*(bot.wait_ready(timeout=PATIENCE) for bot in bots))
    return bots


async def answers(discord: StandIn, runs: list[InteractionHandle]) -> list[str]:
    """Every command's final answer (not the "thinking" of its deferral)."""
    def answered() -> bool:
        return all(r.acknowledged and not r.loading and r.content for r in runs)

    await discord.wait_for(answered, PATIENCE, what="every command's answer")
    assert all(r.ephemeral for r in runs)
    return [r.content or "" for r in runs]


def show_output(launch: Launcher) -> None:
    for bot in launch.bots:  # shown by pytest when the test failed
        print(f"---- {bot.workdir.name} ----\n{bot.output()[-5000:]}")


@pytest.fixture
async def database(database_target: Path | str) -> AsyncIterator[tuple[str, Database]]:
    """The database's URL and the test's own handle on it, migrated before any process
    starts (so that the processes, started together, find it ready)."""
    assert isinstance(database_target, str)  # a postgresql:// URL
    db = await open_database(database_target)
    yield database_target, db
    await db.close()


@postgresql_only
async def test_the_accounts_daily_cap_holds_across_two_processes(
        tmp_path: Path, database: tuple[str, Database], start_simulator: Start) -> None:
    url, db = database
    runcomfy = await slow_runcomfy(start_simulator)
    async with StandIn(shards=SHARDS) as discord, Launcher(tmp_path) as launch:
        try:
            places = []
            for index in range(6):  # three guilds on each shard, two members in each
                shard = index % SHARDS
                guild = discord.guild(f"Guild {index}", shard=(shard, SHARDS))
                assert shard_of(guild.id, SHARDS) == shard
                places.append((shard, discord.channel(guild, "videos"),
                               [discord.member(guild, f"m{index}-{n}") for n in range(2)]))
            envs = [environment(discord, runcomfy, url, f"shard-{shard}-token",
                                bot__shard_count=SHARDS, bot__shard_ids=shard,
                                account__daily_budget_usd=DAILY_BUDGET, **PRICED)
                    for shard in range(SHARDS)]
            bots = await start_all(launch, discord, envs)

            began = time.monotonic()
            runs = list(await asyncio.gather(*(
                discord.slash(member, channel, "kling-2-1", prompt=f"a comet by {member.id}",
                              image=("c.png", PNG))
                for _, channel, members in places for member in members)))
            said = await answers(discord, runs)
            print(f"12 commands on two processes answered in {time.monotonic() - began:.1f} s")

            # Each guild's commands went to its own shard's process: both admitted.
            tokens = {c.id: bot.token for bot in bots for c in bot.connections()}
            shards = [shard for shard, _, members in places for _ in members]
            assert [r.shard_id for r in runs] == shards
            assert {tokens[r.connection_id] for r in runs} == {"shard-0-token",
                                                               "shard-1-token"}
            admitted = [text for text in said if text.startswith(QUEUED)]
            refused = [text for text in said if not text.startswith(QUEUED)]
            assert len(admitted) == PAID_FOR, said
            assert all(text.startswith(ACCOUNT_REFUSAL) for text in refused), said
            rows = await db.fetch("SELECT id, estimated_usd FROM jobs")
            assert len(rows) == PAID_FOR
            assert sum(float(r["estimated_usd"]) for r in rows) == pytest.approx(DAILY_BUDGET)
            assert sorted(f"Job #{r['id']} " for r in rows) == sorted(
                text.split("is queued")[0] for text in admitted)
            assert len(runcomfy.sim.submits) == PAID_FOR
            assert discord.unhandled == discord.failures == []
        except BaseException:
            show_output(launch)
            raise


@postgresql_only
async def test_a_servers_ceiling_holds_across_two_processes_serving_the_same_guild(
        tmp_path: Path, database: tuple[str, Database], start_simulator: Start,
        monkeypatch: pytest.MonkeyPatch) -> None:
    url, db = database
    runcomfy = await slow_runcomfy(start_simulator)
    async with StandIn() as discord, Launcher(tmp_path) as launch:
        try:
            guild = discord.guild("Studio")
            channel = discord.channel(guild, "videos")
            members = [discord.member(guild, name) for name in ("alice", "bob")]
            # Unsharded, the same settings: both processes serve every guild (a rolling
            # deploy), and the server's own quota is 0, "no limit": the ceiling binds. (A
            # token each only so that the stand-in tells their connections apart.)
            envs = [environment(discord, runcomfy, url, f"process-{n}-token",
                                ceilings__daily_quota=CEILING, limits__daily_quota=0)
                    for n in range(2)]
            bots = await start_all(launch, discord, envs)
            connections = [bot.connections() for bot in bots]
            assert [[c.token for c in mine] for mine in connections] == [
                ["process-0-token"], ["process-1-token"]]
            # Discord sends a shard's events to one of its sessions; the stand-in picks the
            # newest (``StandIn._owner``). Here each next command goes to the other process
            # instead, so both admit commands of the same guild, and of the same member, at
            # the same time.
            turns = itertools.cycle([mine[0] for mine in connections])

            async def take_turns(guild_id: int | None, wait: float) -> Connection:
                return next(turns)

            monkeypatch.setattr(discord, "_owner", take_turns)

            began = time.monotonic()
            # Six each, in pairs (alice, alice, bob, bob, ...): each member's go to both.
            asked = [members[n // 2 % 2] for n in range(12)]
            runs = list(await asyncio.gather(*(
                discord.slash(member, channel, "kling-2-1", prompt=f"shot {n} by {member.id}",
                              image=(f"s{n}.png", PNG))
                for n, member in enumerate(asked))))
            said = await answers(discord, runs)
            print(f"12 commands on two processes answered in {time.monotonic() - began:.1f} s")

            by_process = {c.id for c in connections[0]}, {c.id for c in connections[1]}
            for member in members:
                theirs = [r for r in runs if r.user_id == member.id]
                assert all(any(r.connection_id in mine for r in theirs) for mine in by_process)
            for member in members:
                texts = [text for text, r in zip(said, runs, strict=True)
                         if r.user_id == member.id]
                admitted = [text for text in texts if text.startswith(QUEUED)]
                assert len(admitted) == CEILING, texts
                assert all(text.startswith(f"daily quota reached: {CEILING} of {CEILING} "
                                           "(the bot's ceiling), resets in ")
                           for text in texts if not text.startswith(QUEUED)), texts
                jobs = await db.fetch("SELECT id FROM jobs WHERE user_id = ?", member.id)
                assert len(jobs) == CEILING
            assert len(runcomfy.sim.submits) == CEILING * len(members)
            assert discord.unhandled == discord.failures == []
        except BaseException:
            show_output(launch)
            raise
