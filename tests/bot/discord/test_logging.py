"""Logs of a running bot: one line per job transition, and never a token or a URL's signature."""

from __future__ import annotations

import logging

import pytest

from bot.simulator import JobState as SimState
from bot.simulator import Plan
from tests.conftest import TOKEN
from tests.discord_world import World
from tests.images import image_bytes

PNG = image_bytes("png", 800, 600)
DISCORD_TOKEN = "simcord.fake.token"  # what SimCord logs the bot in with


async def test_one_line_per_transition_and_no_secrets(world: World,
                                                      caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    world.sim.plan_next(Plan(), Plan(SimState.FAILED, error="Model error"))
    await world.alice.slash(world.channel, "kling-2-1", prompt="ok", image=("z.png", PNG))
    await world.alice.slash(world.channel, "kling-2-1", prompt="fails", image=("z.png", PNG))
    await world.run_until(lambda: bool(world.videos()) and len(world.bot_messages()) >= 4)
    request = world.sim.submits[0].request_id
    lines = [r.getMessage() for r in caplog.records
             if r.name == "bot.store.jobs" and r.getMessage().startswith("job 1 ")]
    tail = f"(guild {world.guild.id}, model kling-2-1, request {request})"
    assert lines == [
        f"job 1 -> submitting (guild {world.guild.id}, model kling-2-1, request -)",
        f"job 1 -> queued {tail}", f"job 1 -> running {tail}", f"job 1 -> fetched {tail}",
        f"job 1 -> delivering {tail}", f"job 1 -> delivered {tail}",
    ]
    assert all(r.levelno == logging.INFO for r in caplog.records if r.name == "bot.store.jobs")
    failed = [r.getMessage() for r in caplog.records if r.getMessage().startswith("job 2 -> f")]
    assert failed[0].endswith(": Model error")
    assert TOKEN not in caplog.text
    assert DISCORD_TOKEN not in caplog.text
    assert "Bearer" not in caplog.text
