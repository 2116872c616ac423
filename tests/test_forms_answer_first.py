"""A form must be Discord's first answer, within 3 seconds: Vary and Extend open theirs (or
say "press again") in time even while another connection holds the jobs table, with the real
bot process against the Discord stand-in on PostgreSQL (on SQLite a reader never waits for a
writer: WAL)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from tests.conftest import TOKEN, RunningSimulator
from tests.discord_stand_in import Launcher, StandIn, bot_environment
from tests.discord_stand_in.model import InteractionHandle, Message
from tests.images import image_bytes

PNG = image_bytes("png", 640, 480)
PATIENCE = 45.0
MODAL = 9  # the interaction callback type of a form
Start = Callable[..., Awaitable[RunningSimulator]]


def answered(handle: InteractionHandle) -> Callable[[], bool]:
    return lambda: handle.content is not None


@pytest.mark.parametrize("database_target", ["postgresql"], indirect=True)
async def test_vary_and_extend_answer_in_time_while_the_jobs_table_is_held(
        stand_in: StandIn, launcher: Launcher, start_simulator: Start,
        database_target: Path | str) -> None:
    import asyncpg  # the test extra's

    guild = stand_in.guild("Studio")
    channel, alice = stand_in.channel(guild, "videos"), stand_in.member(guild, "alice")
    runcomfy = await start_simulator(run_seconds=0.2)
    bot = await launcher(stand_in, bot_environment(
        stand_in, store=database_target, runcomfy_url=runcomfy.url, runcomfy_token=TOKEN,
        jobs__poll_interval=0.3, jobs__card_edit_interval=0))
    await bot.wait_ready(timeout=60)
    await stand_in.slash(alice, channel, "kling-2-1", prompt="a fox", image=("fox.png", PNG))

    def video() -> Message | None:
        return next((m for m in stand_in.bot_messages(channel)
                     if "your video is ready" in m.content), None)

    await stand_in.wait_for(video, PATIENCE, what="the video")
    posted = video()
    assert posted is not None
    ids = {b["label"]: b["custom_id"] for b in posted.buttons()}

    holder = await asyncpg.connect(str(database_target))
    try:
        async with holder.transaction():
            await holder.execute("LOCK TABLE jobs IN ACCESS EXCLUSIVE MODE")
            for label in ("Vary", "Extend"):
                pressed = await stand_in.click(alice, posted, ids[label])
                await stand_in.wait_for(answered(pressed), 10, what="the answer")
                assert pressed.ack_seconds is not None and pressed.ack_seconds < 3
                assert pressed.ephemeral
                assert pressed.content == (
                    f"The bot is busy right now; press {label} again in a moment.")
    finally:
        await holder.close()
    opened = await stand_in.click(alice, posted, ids["Vary"])
    await stand_in.wait_for(lambda: opened.acknowledged, PATIENCE, what="the form")
    assert opened.callback_type == MODAL
    assert opened.modal is not None and opened.modal["title"] == "Vary job #1"
    assert len(runcomfy.sim.submits) == 1
