"""/usage reports (embed, CSV, PNG chart), /usage me and /quota."""

from __future__ import annotations

import csv
import io
from typing import Any

from PIL import Image

from bot.simulator import JobState as SimState
from bot.simulator import Plan
from tests.discord_world import World
from tests.images import image_bytes

PNG = image_bytes("png", 800, 600)


async def some_usage(world: World) -> None:
    """Alice: two Kling 3.0 videos (one failed); Bob: one Wan 2.2 video and one cancelled."""
    world.sim.plan_next(Plan(), Plan(SimState.FAILED), Plan(), Plan(run_seconds=600),
                        Plan(run_seconds=600))
    for member, command, extra in [
        (world.alice, "kling-3-0", {"duration": 5, "generate_audio": True}),
        (world.alice, "kling-3-0", {"duration": 5, "generate_audio": False}),
        (world.bob, "wan-2-2", {}),
        (world.alice, "kling-2-1", {}),
        (world.bob, "kling-2-1", {}),
    ]:
        await member.slash(world.channel, command, prompt="x", image=("z.png", PNG), **extra)
    await world.bob.slash(world.channel, "cancel", job=5)
    await world.run_until(lambda: len(world.videos()) == 2)


def attachment(result: Any, suffix: str) -> Any:
    [found] = [a for a in result.response.attachments if a.filename.endswith(suffix)]
    return found


async def test_the_server_report_by_user(world: World) -> None:
    await some_usage(world)
    result = await world.mod.slash(world.channel, "usage server", period="today")
    assert result.ephemeral
    [embed] = result.response.embeds
    assert embed.title == "Server usage: today, by user"
    assert embed.description == ("4 jobs · 10 s of video · $0.88 · 1 failed · 1 cancelled")
    assert [f.value for f in embed.fields] == [
        f"<@{world.alice.id}>: 2 jobs · 5 s of video · $0.63 · 1 failed · 0 cancelled",
        f"<@{world.bob.id}>: 2 jobs · 5 s of video · $0.25 · 0 failed · 1 cancelled",
    ]
    rows = list(csv.reader(io.StringIO((await attachment(result, ".csv").read()).decode())))
    assert rows == [
        ["user", "jobs", "seconds", "cost_usd", "failures", "cancellations", "unpriced_jobs",
         "simulated_jobs"],
        [str(world.alice.id), "2", "5", "0.6300", "1", "0", "0", "0"],
        [str(world.bob.id), "2", "5", "0.2500", "0", "1", "0", "0"],
        ["total", "4", "10", "0.8800", "1", "1", "0", "0"],
    ]
    chart = await attachment(result, "usage.png").read()
    assert chart.startswith(b"\x89PNG")
    with Image.open(io.BytesIO(chart)) as image:
        assert image.size == (800, 350)


async def test_grouped_by_model_and_by_day(world: World) -> None:
    await some_usage(world)
    by_model = await world.mod.slash(world.channel, "usage server", period="7 days",
                                     group_by="model")
    assert by_model.response.embeds[0].title == "Server usage: the last 7 days, by model"
    assert [f.value.split(":")[0] for f in by_model.response.embeds[0].fields] == [
        "kling-3-0", "wan-2-2", "kling-2-1"]
    by_day = await world.mod.slash(world.channel, "usage server", period="custom",
                                   group_by="day", start="2026-01-01", end="2026-01-31")
    rows = list(csv.reader(io.StringIO((await attachment(by_day, ".csv").read()).decode())))
    assert [row[0] for row in rows] == ["day", "2026-01-01", "total"]
    assert attachment(by_day, ".csv").filename == "usage-2026-01-01-2026-01-31.csv"


async def test_bad_custom_periods_are_explained(world: World) -> None:
    result = await world.mod.slash(world.channel, "usage server", period="custom",
                                   start="2026-02-01", end="2026-01-01")
    assert result.response.content == "`start` is after `end`."
    result = await world.mod.slash(world.channel, "usage server", period="custom",
                                   start="yesterday", end="2026-01-01")
    assert result.response.content == "Dates are written YYYY-MM-DD, like 2026-11-01."


async def test_a_member_sees_only_their_own_usage(world: World) -> None:
    await some_usage(world)
    result = await world.bob.slash(world.channel, "usage me", period="this month")
    [embed] = result.response.embeds
    assert embed.title == "Your usage: January 2026, by model"
    assert embed.description == "2 jobs · 5 s of video · $0.25 · 0 failed · 1 cancelled"


async def test_quota_shows_what_is_left(world: World) -> None:
    await world.mod.slash(world.channel, "settings limits", daily_quota=3, max_concurrent=2,
                          monthly_budget_usd=10.0)
    await world.alice.slash(world.channel, "kling-3-0", prompt="x", image=("z.png", PNG),
                            duration=5, generate_audio=False)
    result = await world.alice.slash(world.channel, "quota")
    assert result.ephemeral
    assert result.response.content == (
        "Today: 1 of 3 videos (resets in 24 h 0 min).\n"
        "In progress: 1 of 2.\n"
        "Server budget: $9.58 left of $10.00 this month.")
