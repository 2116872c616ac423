"""Budgets at real prices: what RunComfy publishes (read at start-up and daily), overridden by
the operator's ``prices``; the card shows the estimate."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web

from bot.catalog import PriceSpec, load_catalog
from bot.simulator import Simulator, SimulatorConfig
from tests.clocks import ManualClock
from tests.conftest import TOKEN, RunningSimulator
from tests.discord_world import World
from tests.images import image_bytes

PNG = image_bytes("png", 640, 480)


def published(usd: float) -> Any:
    """The simulator's catalog, with Wan 2.2 priced as RunComfy would publish it."""
    return load_catalog().with_prices({"wan-2-2": PriceSpec(unit="second", usd=usd,
                                                            source="published")})


@pytest.fixture
async def runcomfy(sim_clock: ManualClock) -> AsyncIterator[RunningSimulator]:
    """RunComfy publishes a price for Wan 2.2, which the bot's catalog does not have."""
    sim = Simulator(SimulatorConfig(token=TOKEN, clock=sim_clock, run_seconds=10, workers=2),
                    catalog=published(0.05))
    runner = web.AppRunner(sim.app())
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    yield RunningSimulator(sim, f"http://127.0.0.1:{runner.addresses[0][1]}")
    await runner.cleanup()


async def wan(world: World) -> Any:
    return await world.alice.slash(world.channel, "wan-2-2", prompt="a zebra",
                                   image=("z.png", PNG))


def cost_field(world: World, job_id: int) -> str:
    return next(f.value or "" for f in world.card(job_id).embeds[0].fields if f.name == "Cost")


async def test_the_published_price_budgets_the_model(world: World) -> None:
    assert len(world.sim.calls_to("/v1/models/", "GET")) == len(load_catalog())  # at start-up
    await world.mod.slash(world.channel, "settings limits", monthly_budget_usd=0.3)
    await wan(world)
    assert cost_field(world, 1) == "about $0.25"  # $0.05/s published x 5 s
    await world.run_until(lambda: bool(world.videos()))
    quota = await world.alice.slash(world.channel, "quota")
    assert "Server budget: $0.05 left of $0.30 this month." in (quota.response.content or "")
    result = await wan(world)
    assert result.response.content == (
        "This video (about $0.25) would go over this server's monthly video budget: $0.25 of "
        "$0.30 spent; it resets on 1 February.")
    assert len(world.sim.submits) == 1


@pytest.mark.settings(prices={"wan-2-2": {"unit": "second", "usd": 0.1}})
async def test_the_operators_price_overrides_runcomfys(world: World) -> None:
    await wan(world)
    assert cost_field(world, 1) == "about $0.50"


async def test_a_new_published_price_is_used_after_the_daily_read(world: World) -> None:
    world.sim.catalog = published(0.08)
    await world.bot.parts.prices.refresh(world.bot.parts.runcomfy)  # what the daily loop runs
    await wan(world)
    assert cost_field(world, 1) == "about $0.40"


@pytest.mark.settings(runcomfy={"base_url": "http://127.0.0.1:9", "retry_attempts": 1})
async def test_an_unreachable_runcomfy_at_start_up_is_one_warning(
        world: World, caplog: pytest.LogCaptureFixture) -> None:
    started = caplog.get_records("setup")  # the bot starts in the fixtures
    warnings = [r for r in started + caplog.records if r.levelno >= logging.WARNING
                and r.name.startswith("bot")]
    assert [r.getMessage().split(" (")[0] for r in warnings] == [
        "could not read RunComfy's prices of kling-1-6, kling-2-1, kling-3-0, kling-3-0-4k, "
        "wan-2-2"]
    quota = await world.alice.slash(world.channel, "quota")  # the bot is up and answers
    assert quota.ephemeral
