"""The prompt blocklist covers every text the model reads as a prompt (the prompt, the negative
prompt, each shot of a multi-shot prompt), on every entry point; nothing refused is sent."""

from __future__ import annotations

from typing import Any

from tests.discord_world import World
from tests.images import image_bytes

PNG = image_bytes("png", 640, 480)
REFUSED = "Your prompt contains “dragon”, which is not allowed here."


async def block_dragons(world: World) -> None:
    result = await world.mod.slash(world.channel, "settings blocklist", action="add",
                                   pattern="dragon")
    assert result.ephemeral


async def kling3(world: World, **options: Any) -> Any:
    return await world.alice.slash(world.channel, "kling-3-0", image=("z.png", PNG),
                                   **{"prompt": "a castle", **options})


async def test_a_shot_of_a_multi_shot_prompt_is_checked(world: World) -> None:
    await block_dragons(world)
    result = await kling3(world, duration=10, multi_prompt="5: a cat walks | 5: a DRAGON lands")
    assert result.ephemeral
    assert result.response.content == REFUSED.replace("dragon", "DRAGON")
    assert world.sim.submits == []


async def test_the_negative_prompt_is_checked(world: World) -> None:
    await block_dragons(world)
    result = await kling3(world, negative_prompt="no dragon")
    assert result.response.content == REFUSED
    assert world.sim.submits == []


async def test_a_mention_with_a_multi_shot_prompt_is_checked(world: World) -> None:
    await block_dragons(world)
    me = world.bot.user
    assert me is not None
    await world.alice.send(
        world.channel, f"<@{me.id}> a castle --model kling-3-0 --duration 10 "
        "--multi_prompt '5: a cat walks | 5: a dragon lands'", attachments=[("z.png", PNG)])
    said = [m.content for m in world.bot_messages() if REFUSED in m.content]
    said += [m.content for t in world.channel.threads for m in world.bot_messages(t)
             if REFUSED in m.content]
    assert said
    assert world.sim.submits == []


async def test_clean_shots_go_through(world: World) -> None:
    await block_dragons(world)
    result = await kling3(world, duration=10, multi_prompt="5: a cat walks | 5: it sits down",
                          negative_prompt="blur")
    assert (result.response.content or "").startswith("Job #1 is queued")
    assert len(world.sim.submits) == 1
