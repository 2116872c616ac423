"""A real ``python -m bot`` process, SIGKILLed during a burst of 30 commands from 30 members
while videos are being posted, then restarted, on SQLite and on PostgreSQL: every request
RunComfy received is delivered once (or, caught mid-submit, honestly marked "outcome
unknown"), nothing is submitted twice, nobody is told "nothing was charged" for a request
RunComfy received, and the moderator's usage report counts all 30."""

from __future__ import annotations

import asyncio
import csv
import io
import re
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path

from bot.store.connect import open_database
from tests.conftest import TOKEN, RunningSimulator
from tests.discord_stand_in import Launcher, StandIn, bot_environment
from tests.images import image_bytes

PNG = image_bytes("png", 640, 480)
MEMBERS = 30
PATIENCE = 120.0  # real seconds, for a loaded 2-core machine
NOTHING_CHARGED = "nothing was charged"


async def test_sigkill_during_a_burst_loses_and_repeats_nothing(
        stand_in: StandIn, tmp_path: Path, database_target: Path | str,
        start_simulator: Callable[..., Awaitable[RunningSimulator]]) -> None:
    runcomfy = await start_simulator(run_seconds=1.5, queue_seconds=0.2, workers=4)
    guild = stand_in.guild("Studio")
    channel = stand_in.channel(guild, "videos")
    mods = stand_in.role(guild, "Mods", permissions=0x20 | 0x2000)  # Manage Server, Messages
    moderator = stand_in.member(guild, "mod", roles=[mods])
    members = [stand_in.member(guild, f"member{i}") for i in range(MEMBERS)]
    env = bot_environment(stand_in, runcomfy_url=runcomfy.url, runcomfy_token=TOKEN,
                          jobs__poll_interval=0.5, jobs__card_edit_interval=0,
                          jobs__lease_seconds=3, limits__max_concurrent=0, store=database_target)

    def videos() -> list[str]:
        return stand_in.videos(channel)

    async with Launcher(tmp_path) as launch:
        bot = await launch(stand_in, env)
        await bot.wait_ready(timeout=PATIENCE)
        asked = await asyncio.gather(*(
            stand_in.slash(member, channel, "kling-2-1", prompt=f"shot {i}",
                           image=(f"shot{i}.png", PNG))
            for i, member in enumerate(members)))
        # Killed once every command has its job and videos are going out, before the last.
        await stand_in.wait_for(lambda: all(a.content for a in asked) and len(videos()) >= 3,
                                PATIENCE, what="all jobs recorded and videos being posted")
        await bot.kill()
        posted_before = len(videos())
        assert posted_before < MEMBERS
        assert all(a.ack_seconds is not None and a.ack_seconds < 3 for a in asked)

        await bot.start()
        await bot.wait_ready(timeout=PATIENCE)
        db = await open_database(database_target)
        try:
            async def all_over() -> bool:
                return not await db.fetch(
                    "SELECT id FROM jobs WHERE state IN ('accepted', 'submitting', 'queued',"
                    " 'running', 'fetched', 'delivering')")

            await stand_in.wait_for(all_over, PATIENCE, what="every job over")
            jobs = {row["prompt"]: (int(row["id"]), str(row["state"]), row["error"] or "")
                    for row in await db.fetch("SELECT id, prompt, state, error FROM jobs")}
        finally:
            await db.close()

        submitted = Counter(str(s.body.get("prompt")) for s in runcomfy.sim.submits)
        assert set(submitted.values()) == {1}  # none submitted twice
        posted = Counter(int(m) for text in videos()
                         for m in re.findall(r"job #(\d+)\)", text))
        for prompt in submitted:  # every request RunComfy received ...
            job_id, state, error = jobs[prompt]
            assert NOTHING_CHARGED not in error, (prompt, state)
            if state != "outcome_unknown":  # ... the bot knows of is delivered exactly once
                assert (state, posted[job_id]) == ("delivered", 1), (prompt, state)
        assert set(posted.values()) == {1}
        cards = Counter(m.embeds[0]["footer"]["text"] for m in stand_in.bot_messages(channel)
                        if m.embeds)
        assert set(cards.values()) == {1}, cards  # and one card per job
        for text in [a.content or "" for a in asked] + [m.content for m in
                                                          stand_in.messages(channel)]:
            for prompt in submitted:
                assert not (NOTHING_CHARGED in text and f"#{jobs[prompt][0]} " in text)

        report = await stand_in.slash(moderator, channel, "usage server", period="today")
        await stand_in.wait_for(lambda: report.original is not None
                                and report.original.attachments, PATIENCE, what="the report")
        assert report.original is not None
        [sheet] = [a for a in report.original.attachments if a.filename.endswith(".csv")]
        rows = list(csv.DictReader(io.StringIO(sheet.data.decode())))
        assert rows[-1]["user"] == "total" and int(rows[-1]["jobs"]) == MEMBERS
