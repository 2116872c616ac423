"""The poll loop: order per channel, and channels independent of each other."""

from __future__ import annotations

from bot.simulator import Plan
from tests.discord_world import World
from tests.images import image_bytes

PNG = image_bytes("png", 800, 600)


async def start(world: World, channel: object, prompt: str) -> None:
    await world.alice.slash(channel, "kling-2-1", prompt=prompt, image=("z.png", PNG))


async def test_videos_are_posted_in_the_order_they_finish(world: World) -> None:
    world.sim.plan_next(Plan(run_seconds=30), Plan(run_seconds=6))
    await start(world, world.channel, "slow")
    await start(world, world.channel, "quick")
    await world.run_until(lambda: len(world.videos()) == 2)
    assert world.replied_to(world.videos()) == [world.card(2).id, world.card(1).id]


async def test_a_failing_channel_does_not_hold_up_another(world: World) -> None:
    other = world.guild.create_text_channel("other")
    await start(world, world.channel, "stuck")
    await start(world, other, "free")
    world.env.inject_error("POST", f"/channels/{world.channel.id}/messages", status=500,
                           times=None)
    await world.run_until(lambda: len(world.videos(other)) == 1)
    assert world.videos() == []
    world.env.backend.faults.clear()
    await world.run_until(lambda: len(world.videos()) == 1)
    assert len(world.videos(other)) == 1


async def test_running_jobs_are_polled_less_until_near_their_usual_run_time(
        world: World) -> None:
    world.sim.plan_next(Plan(run_seconds=30), Plan(run_seconds=30))
    await start(world, world.channel, "first")
    await world.run_until(lambda: len(world.videos()) == 1)
    first = len(world.sim.calls_to(f"/{world.sim.submits[0].request_id}/"))
    await start(world, world.channel, "second")  # the model now usually runs about 30 s
    await world.run_until(lambda: len(world.videos()) == 2)
    second = len(world.sim.calls_to(f"/{world.sim.submits[1].request_id}/"))
    assert second < first, (first, second)
