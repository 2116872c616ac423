"""Simulation mode: the whole bot against the simulator inside it, nothing paid or budgeted."""

from __future__ import annotations

import pytest

from tests.discord_world import World
from tests.images import image_bytes

PNG = image_bytes("png", 800, 600)
SIMULATED = {"enabled": True, "run_seconds": 6, "queue_seconds": 0}


@pytest.mark.settings(simulation=SIMULATED, runcomfy={"base_url": "http://127.0.0.1:9"})
async def test_everything_works_and_says_it_is_simulated(world: World) -> None:
    await world.mod.slash(world.channel, "settings limits", monthly_budget_usd=1.0)
    result = await world.alice.slash(world.channel, "kling-3-0", prompt="a cliff",
                                     image=("c.png", PNG), duration=10)
    assert (result.response.content or "").startswith("Job #1 is queued.")
    card = world.card(1)
    assert card.embeds[0].footer.text == "Job #1 · simulated: no credits are spent"
    await world.run_until(lambda: bool(world.videos()))
    [video] = world.videos()
    assert video.content.endswith("(Simulated: a sample video, no credits were spent.)")
    assert video.attachments[0].size > 0
    assert world.sim.calls == []  # the test's own simulator was never used: the bot's was

    # $1.26 > $1.00 budget, but simulated jobs never count against it.
    again = await world.alice.slash(world.channel, "kling-3-0", prompt="again",
                                    image=("c.png", PNG), duration=10)
    assert (again.response.content or "").startswith("Job #2 is queued.")
    standing = await world.bot.parts.limits.standing(world.guild.id, world.alice.id)
    assert standing.spent_this_month == 0
    report = await world.mod.slash(world.channel, "usage server", period="today")
    assert report.response.embeds[0].description == (
        "1 job · 10 s of video · $1.26 · 0 failed · 0 cancelled · 1 simulated")
