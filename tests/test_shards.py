"""Two real bot processes, shards 0 and 1 of 2, on one PostgreSQL, against a Discord stand-in
that routes each guild's events to the shard that owns it: each guild's videos are posted once,
by the process that owns the guild; RunComfy gets one submit per job; a process killed while
its jobs run gets its guilds' videos out after its restart, and the other is not held up."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import TOKEN, RunningSimulator, new_postgres_database
from tests.discord_stand_in import (
    BotProcess,
    Channel,
    Launcher,
    Member,
    StandIn,
    bot_environment,
    shard_of,
)
from tests.images import image_bytes
from tests.postgres_server import PostgresServer

PNG = image_bytes("png", 640, 480)
PATIENCE = 120.0
SHARDS = 2


@dataclass
class Place:
    shard: int
    channel: Channel
    members: list[Member]


@dataclass
class Fleet:
    discord: StandIn
    runcomfy: RunningSimulator
    places: list[Place]
    bots: list[BotProcess]  # by shard

    def videos(self, place: Place) -> list[int]:
        """The job numbers of the videos posted in the place's channel."""
        return [int(n) for m in self.discord.bot_messages(place.channel)
                for n in re.findall(r"your video is ready \(.*, job #(\d+)\)", m.content)]

    def posters(self, place: Place) -> set[str]:
        """The tokens (so the processes) that posted messages in the place's channel."""
        return {r.token for r in self.discord.requests("POST", rf"^/channels/"
                                                       rf"{place.channel.id}/messages$")}

    async def ask(self, place: Place, prompt: str) -> None:
        for member in place.members:
            run = await self.discord.slash(member, place.channel, "kling-2-1",
                                           prompt=f"{prompt} by {member.id}",
                                           image=("z.png", PNG))
            assert run.shard_id == place.shard  # the owner's shard got the interaction
            await self.discord.wait_for(lambda r=run: r.content, PATIENCE,  # type: ignore[misc]
                                        what="the job's answer")


@pytest.fixture
async def fleet(tmp_path: Path, postgres: PostgresServer,
                start_simulator: Callable[..., Awaitable[RunningSimulator]],
                ) -> AsyncIterator[Fleet]:
    runcomfy = await start_simulator(run_seconds=2, queue_seconds=0.2, workers=4)
    url = await new_postgres_database(postgres)
    async with StandIn(shards=SHARDS) as discord, Launcher(tmp_path) as launch:
        places = []
        for index in range(4):
            shard = index % SHARDS
            guild = discord.guild(f"Guild {index}", shard=(shard, SHARDS))
            assert shard_of(guild.id, SHARDS) == shard
            places.append(Place(shard, discord.channel(guild, "videos"),
                                [discord.member(guild, f"m{index}-{n}") for n in range(2)]))
        bots = []
        for shard in range(SHARDS):
            env = bot_environment(
                discord, runcomfy_url=runcomfy.url, runcomfy_token=TOKEN, database_url=url,
                token=f"shard-{shard}-token", bot__shard_count=SHARDS, bot__shard_ids=shard,
                jobs__poll_interval=0.5, jobs__card_edit_interval=0, jobs__lease_seconds=3,
                limits__max_concurrent=0)
            bot = await launch(discord, env)
            await bot.wait_ready(timeout=PATIENCE)
            bots.append(bot)
        yield Fleet(discord, runcomfy, places, bots)
        for bot in launch.bots:  # shown when the test failed
            print(f"---- {bot.workdir.name} ----\n{bot.output()[-5000:]}")


async def test_each_guild_is_served_once_by_the_process_that_owns_it(fleet: Fleet) -> None:
    assert fleet.discord.command_syncs == 1  # only the process with shard 0 syncs
    for place in fleet.places:
        await fleet.ask(place, "a lighthouse")
    await fleet.discord.wait_for(
        lambda: all(len(fleet.videos(p)) == len(p.members) for p in fleet.places), PATIENCE,
        what="every video")
    for place in fleet.places:
        assert len(set(fleet.videos(place))) == len(fleet.videos(place))  # each once
        assert fleet.posters(place) == {f"shard-{place.shard}-token"}
    prompts = Counter(str(s.body.get("prompt")) for s in fleet.runcomfy.sim.submits)
    assert len(prompts) == 8 and set(prompts.values()) == {1}


async def test_a_killed_process_gets_its_videos_out_after_its_restart(fleet: Fleet) -> None:
    for place in fleet.places:
        await fleet.ask(place, "a harbour")
    ones = [p for p in fleet.places if p.shard == 1]
    zeros = [p for p in fleet.places if p.shard == 0]
    await fleet.bots[1].kill()  # while its jobs run at RunComfy
    assert all(fleet.videos(p) == [] for p in ones)
    await fleet.discord.wait_for(  # the other process's guilds are not held up
        lambda: all(len(fleet.videos(p)) == len(p.members) for p in zeros), PATIENCE,
        what="shard 0's videos while shard 1 is down")
    assert all(fleet.videos(p) == [] for p in ones)  # nobody else took shard 1's guilds
    await fleet.bots[1].start()
    await fleet.bots[1].wait_ready(timeout=PATIENCE)
    await fleet.discord.wait_for(
        lambda: all(len(fleet.videos(p)) == len(p.members) for p in ones), PATIENCE,
        what="shard 1's videos after its restart")
    for place in fleet.places:
        assert len(set(fleet.videos(place))) == len(place.members)  # each exactly once
        assert fleet.posters(place) == {f"shard-{place.shard}-token"}
    assert len(fleet.runcomfy.sim.submits) == 8  # nothing submitted again
