"""The scale bench's reference bot with a status card (``MINIMAL_CARD=1``) does the bot's job:
one card a job, edited when its place in line or state changes, and the video's link once."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

from tests.conftest import TOKEN, RunningSimulator
from tests.discord_stand_in import Launcher, StandIn, bot_environment
from tests.images import image_bytes

PATIENCE = 60.0


async def test_the_reference_with_a_card_posts_one_card_a_job_and_edits_it(
        tmp_path: Path, start_simulator: Callable[..., Awaitable[RunningSimulator]]) -> None:
    runcomfy = await start_simulator(workers=1, run_seconds=4.0)
    async with StandIn() as discord, Launcher(tmp_path) as launch:
        guild = discord.guild("Guild")
        channel = discord.channel(guild, "videos")
        env = bot_environment(discord, runcomfy_url=runcomfy.url, runcomfy_token=TOKEN,
                              database=Path("bot.sqlite3"))
        bot = await launch(discord, {**env, "MINIMAL_CARD": "1"}, module="bench.minimal_bot")
        await bot.wait_ready(timeout=PATIENCE)
        runs = [await discord.slash(discord.member(guild, f"m{n}"), channel, "kling-2-1",
                                    prompt=f"a lighthouse {n}",
                                    image=("z.png", image_bytes("png", 64, 64)))
                for n in range(2)]
        await discord.wait_for(lambda: len(discord.videos(channel)) == 2, PATIENCE,
                               what="both videos")

        assert [r.content for r in runs] == ["Job #1 is queued.", "Job #2 is queued."]
        cards = [m for m in discord.bot_messages(channel) if m.embeds]
        assert [c.embeds[0]["footer"]["text"] for c in cards] == ["Job #1", "Job #2"]
        assert [c.embeds[0]["title"] for c in cards] == ["Kling 2.1 Pro · Done"] * 2
        assert all(c.components == [] for c in cards)  # no Cancel once done
        edits = discord.requests("PATCH", r"^/channels/\d+/messages/\d+$")
        # the second waited behind the first: its place in line was shown on the way
        shown = [e.json["embeds"][0]["title"] for e in edits]
        assert "Kling 2.1 Pro · Queued, #1 in line" in shown
        assert len(discord.videos(channel)) == 2
