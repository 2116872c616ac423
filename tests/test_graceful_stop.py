"""SIGTERM, as Docker, compose and systemd send it, is a graceful stop of a real ``python -m
bot`` process: a submit under way is finished and recorded (never cut between sending and
recording), the process's leases are released, and the next process takes the job at once
(not after ``jobs.lease_seconds``) and posts its video once. On SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from bot.simulator import Fault
from bot.store.connect import open_database
from tests.conftest import TOKEN, RunningSimulator
from tests.discord_stand_in import Launcher, StandIn, bot_environment
from tests.images import image_bytes

PNG = image_bytes("png", 640, 480)
PATIENCE = 120.0  # real seconds, for a loaded 2-core machine
LEASE = 600  # seconds: far longer than the test, so only a release hands the job over


async def test_sigterm_finishes_the_submit_and_hands_the_job_over(
        stand_in: StandIn, tmp_path: Path, database_target: Path | str,
        start_simulator: Callable[..., Awaitable[RunningSimulator]]) -> None:
    runcomfy = await start_simulator(run_seconds=1.0, workers=4)
    runcomfy.sim.inject(Fault("slow", delay=3.0, method="POST", path="/v1/models/"))
    guild = stand_in.guild("Studio")
    channel = stand_in.channel(guild, "videos")
    alice = stand_in.member(guild, "alice")
    env = bot_environment(stand_in, runcomfy_url=runcomfy.url, runcomfy_token=TOKEN,
                          jobs__poll_interval=0.5, jobs__card_edit_interval=0,
                          jobs__lease_seconds=LEASE, store=database_target)

    def videos() -> list[str]:
        return stand_in.videos(channel)

    async with Launcher(tmp_path) as launch:
        first = await launch(stand_in, env)
        await first.wait_ready(timeout=PATIENCE)
        await stand_in.slash(alice, channel, "kling-2-1", prompt="a zebra",
                             image=("z.png", PNG))
        await stand_in.wait_for(lambda: runcomfy.sim.in_flight > 0, PATIENCE,
                                what="the submit under way")
        began = time.monotonic()
        assert await first.terminate(timeout=30) == 0  # a graceful stop, not a kill
        assert time.monotonic() - began >= 2.0  # it waited for RunComfy's answer
        assert len(runcomfy.sim.submits) == 1
        db = await open_database(database_target)
        try:
            [row] = await db.fetch("SELECT state, request_id, lease_until FROM jobs")
            assert (row["state"], row["request_id"]) == (
                "queued", runcomfy.sim.submits[0].request_id)  # recorded, not 'submitting'
            assert row["lease_until"] == 0  # released
        finally:
            await db.close()

        second = await launch(stand_in, env)
        await second.wait_ready(timeout=PATIENCE)
        await stand_in.wait_for(lambda: len(videos()) == 1, PATIENCE,
                                what="the video, posted by the next process")
        await asyncio.sleep(2.0)  # a few more polls: nothing more is posted
        assert len(videos()) == 1
        assert len(runcomfy.sim.submits) == 1  # never sent again
        cards = [m for m in stand_in.bot_messages(channel) if m.embeds]
        assert len(cards) == 1
