"""Secrets stay secret and nobody is pinged by a prompt, across every message the bot sends."""

from __future__ import annotations

import logging

import pytest

from bot.simulator import Fault, Plan
from bot.simulator import JobState as SimState
from tests.conftest import TOKEN
from tests.discord_world import World
from tests.images import image_bytes

PNG = image_bytes("png", 800, 600)
DISCORD_TOKEN = "simcord.fake.token"


def everything_said(world: World) -> list[str]:
    """Every message, embed and ephemeral answer in the guild, as text."""
    texts = []
    for channel in world.guild.channels.values():
        for message in channel.history(viewer=world.alice):
            texts.append(message.content)
            texts.extend(str(embed.to_dict()) for embed in message.embeds)
    return texts


async def test_tokens_appear_in_no_log_card_or_error(world: World,
                                                     caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    world.sim.inject(Fault("status", status=401, method="POST", path="/v1/models/"))
    refused = await world.alice.slash(world.channel, "kling-2-1", prompt="x", image=("a.png", PNG))
    assert refused.response.content == ("Job #1 did not start. RunComfy refused the bot's API "
                                        "token; the server owner needs to check it.")
    world.sim.plan_next(Plan(SimState.FAILED, error=f"bad request with {TOKEN}"))
    await world.alice.slash(world.channel, "kling-2-1", prompt="y", image=("a.png", PNG))
    await world.run_until(lambda: len(world.bot_messages()) >= 2)
    texts = [*everything_said(world), refused.response.content or ""]
    assert any("could not be made" in t for t in texts)
    assert any("bad request with ***" in t for t in texts)  # even if RunComfy echoed it
    for secret in (TOKEN, DISCORD_TOKEN):
        assert not [t for t in texts if secret in t]
        assert secret not in caplog.text


async def test_a_prompt_with_mentions_pings_nobody(world: World) -> None:
    role = world.guild.create_role("Staff")
    prompt = f"@everyone @here <@{world.bob.id}> <@&{role.id}> dance"
    await world.alice.slash(world.channel, "kling-2-1", prompt=prompt, image=("a.png", PNG))
    await world.run_until(lambda: bool(world.videos()))
    for message in world.bot_messages():
        stored = world.env.backend.messages[world.channel.id][message.id]
        pinged = stored.allowed_mentions
        assert not message.mention_everyone
        assert world.bob.id not in [m.id for m in message.mentions]
        assert role.id not in [r.id for r in message.role_mentions]
        if pinged is not None and message in world.videos():
            assert [m.id for m in message.mentions] == [world.alice.id]
