"""The buttons on the bot's messages (``bot/discord/buttons.py``): Cancel on a card while the
job can still be cancelled, Again, Vary and Extend under its video, each carrying its action
and job in its custom_id, so that a press reaches the handler a cog registered, in this life
of the bot or a later one."""

from __future__ import annotations

from typing import Any

import discord

from bot.discord.buttons import UNAVAILABLE
from bot.jobs import JobState
from bot.simulator import Plan
from tests.discord_world import World
from tests.images import image_bytes

PNG = image_bytes("png", 800, 600)
QUEUED = ("Job #{} is queued. Its card in this channel shows progress, and the video will be "
          "posted there.")


def buttons(message: discord.Message) -> list[tuple[str | None, str | None, str | None,
                                                     discord.ButtonStyle]]:
    """Each button as a member sees it: label, emoji, custom_id and style."""
    return [(child.label, str(child.emoji) if child.emoji else None, child.custom_id,
             child.style)
            for row in message.components if isinstance(row, discord.ActionRow)
            for child in row.children if isinstance(child, discord.Button)]


def uploads(world: World) -> int:
    """The bot's attempts at posting in the channel (the card was posted before)."""
    path = f"/channels/{world.channel.id}/messages"
    return sum(1 for r in world.env.http_requests if r.method == "POST" and r.path == path)


async def start(world: World, prompt: str = "a zebra", member: Any = None) -> None:
    result = await (member or world.alice).slash(world.channel, "kling-2-1", prompt=prompt,
                                                 image=("z.png", PNG))
    assert result.response is not None
    assert result.response.content.startswith("Job #"), result.response.content


async def test_cancel_is_on_the_card_until_the_video_is_being_posted(world: World) -> None:
    await start(world)
    cancel = [("Cancel", None, "rcvb:cancel:1", discord.ButtonStyle.danger)]
    assert buttons(world.card(1)) == cancel
    await world.run_polls(1)
    assert (await world.job(1)).state is JobState.RUNNING
    assert buttons(world.card(1)) == cancel  # running: pressing it says so, but it is there
    # The first two uploads fail: the video is fetched and on its way, no longer cancellable.
    world.env.inject_error("POST", f"/channels/{world.channel.id}/messages", status=500,
                           times=2)
    await world.run_until(lambda: uploads(world) > 1)
    assert (await world.job(1)).state is JobState.DELIVERING
    assert world.videos() == []
    assert world.card(1).components == []
    await world.run_until(lambda: bool(world.videos()))
    [video] = world.videos()
    assert world.card(1).components == []
    assert buttons(video) == [
        ("Again", "\N{CLOCKWISE RIGHTWARDS AND LEFTWARDS OPEN CIRCLE ARROWS}", "rcvb:again:1",
         discord.ButtonStyle.secondary),
        ("Vary", "\N{ARTIST PALETTE}", "rcvb:vary:1", discord.ButtonStyle.secondary),
        ("Extend", "\N{BLACK RIGHT-POINTING DOUBLE TRIANGLE}", "rcvb:extend:1",
         discord.ButtonStyle.secondary),
    ]


async def test_presses_on_messages_of_an_earlier_life_reach_the_right_job(world: World) -> None:
    """After a restart, the action and the job come from the custom_id alone: Vary on the
    first video varies job #1, Cancel on the fourth card cancels job #4 (not another)."""
    await start(world, "first")
    await world.run_until(lambda: bool(world.videos()))
    [video] = world.videos()
    world.sim.plan_next(Plan(run_seconds=600), Plan(run_seconds=600), Plan(run_seconds=600))
    for prompt in ("two", "three", "four"):  # two run; the fourth waits in RunComfy's queue
        await start(world, prompt)
    await world.restart()

    shown = await world.alice.click(video, label="Vary")
    assert shown.modal is not None
    assert shown.modal["title"] == "Vary job #1"
    cancelled = await world.alice.click(world.card(4), label="Cancel")
    assert cancelled.ephemeral
    assert cancelled.response.content == "Job #4 is cancelled; nothing is charged for it."
    assert (await world.job(4)).state is JobState.CANCELLED
    for other in (2, 3):
        assert (await world.job(other)).state in (JobState.QUEUED, JobState.RUNNING)
    result = await world.alice.submit_modal(shown, {"prompt": "a zebra gallops",
                                                    "duration": ["10"], "aspect_ratio": ["1:1"]})
    assert result.response.content == QUEUED.format(5)
    varied = await world.job(5)
    assert (varied.parent_id, varied.origin, varied.prompt) == (1, "vary", "a zebra gallops")
    assert (varied.body["duration"], varied.body["aspect_ratio"]) == (10, "1:1")


async def test_a_press_without_a_handler_says_the_button_is_not_available(
        world: World) -> None:
    await start(world)
    await world.run_until(lambda: bool(world.videos()))
    [video] = world.videos()
    await world.bot.unload_extension("cogs.creative")  # what registered Again, Vary, Extend
    for label in ("Again", "Vary", "Extend"):
        result = await world.alice.click(video, label=label)
        assert result.modal is None
        assert result.ephemeral
        assert result.response.content == UNAVAILABLE
    assert UNAVAILABLE == "That button is not available right now; try again in a moment."
    assert len(world.sim.submits) == 1
    assert await world.bot.parts.store.get(2) is None
    assert world.buttons(video) == ["Again", "Vary", "Extend"]  # the message is left as it is

    await world.bot.load_extension("cogs.creative")  # back: the same button works again
    again = await world.alice.click(video, label="Again")
    assert again.response.content == QUEUED.format(2)
    assert len(world.sim.submits) == 2
