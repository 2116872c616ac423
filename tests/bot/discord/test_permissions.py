"""What the bot needs in a channel to deliver there, and who is a moderator
(``bot/discord/permissions.py``): both as Discord computed them for the interaction, and the
refusal comes before anything reaches RunComfy or the database."""

from __future__ import annotations

from typing import Any

import discord
from simcord.backend.models.channel import Overwrite
from simcord.builders import ChannelHandle
from simcord.enums import OverwriteType

from bot.jobs import JobState
from bot.simulator import Plan
from tests.discord_world import World
from tests.images import image_bytes

PNG = image_bytes("png", 800, 600)
REFUSED = ("I can't post videos in this channel: I need {}. Ask a moderator to give me these "
           "permissions here.")


def overwrite(target_id: int, *, allow: discord.Permissions | None = None,
              deny: discord.Permissions | None = None) -> Overwrite:
    return Overwrite(target_id=target_id, type=OverwriteType.MEMBER,
                     allow=(allow or discord.Permissions.none()).value,
                     deny=(deny or discord.Permissions.none()).value)


async def bot_denied(world: World, channel: Any, **denied: bool) -> None:
    world.env.backend.set_overwrite(channel.id, overwrite(world.env.backend.bot_user.id,
                                                          deny=discord.Permissions(**denied)))
    await world.env.settle()


async def thread_in(world: World, channel: Any) -> ChannelHandle:
    thread = world.env.backend.create_thread(channel.id, "a thread", world.alice.id)
    await world.env.settle()
    return ChannelHandle(world.env, world.guild, thread)


async def nothing_started(world: World) -> None:
    """No call to RunComfy, no job row, nothing counted against the member."""
    assert world.job_calls() == []
    assert await world.bot.parts.store.for_user(world.guild.id, world.alice.id) == []
    assert await world.bot.parts.db.fetch("SELECT * FROM usage_daily") == []


async def test_the_refusal_names_every_missing_permission_in_a_channel_and_a_thread(
        world: World) -> None:
    plain = world.guild.create_text_channel("plain")
    await bot_denied(world, plain, embed_links=True, read_message_history=True)
    result = await world.alice.slash(plain, "kling-2-1", prompt="x", image=("z.png", PNG))
    assert result.ephemeral
    assert result.response.content == REFUSED.format("Embed Links, Read Message History")

    parent = world.guild.create_text_channel("with-threads")
    await bot_denied(world, parent, attach_files=True, send_messages_in_threads=True)
    thread = await thread_in(world, parent)
    result = await world.alice.slash(thread, "kling-2-1", prompt="x", image=("z.png", PNG))
    assert result.ephemeral
    assert result.response.content == REFUSED.format("Attach Files, Send Messages In Threads")
    # In the parent itself, threads are not needed: only what is missing there is named.
    result = await world.alice.slash(parent, "kling-2-1", prompt="x", image=("z.png", PNG))
    assert result.response.content == REFUSED.format("Attach Files")
    await nothing_started(world)


async def test_a_button_where_the_bot_can_no_longer_post_is_refused_before_runcomfy(
        world: World) -> None:
    await world.alice.slash(world.channel, "kling-2-1", prompt="a zebra", image=("z.png", PNG))
    await world.run_until(lambda: bool(world.videos()))
    [video] = world.videos()
    await bot_denied(world, world.channel, attach_files=True)
    calls = len(world.job_calls())
    again = await world.alice.click(video, label="Again")
    assert again.ephemeral
    assert again.response.content == REFUSED.format("Attach Files")
    shown = await world.alice.click(video, label="Extend")
    extend = await world.alice.submit_modal(shown, {"prompt": "and then"})
    assert extend.response.content == REFUSED.format("Attach Files")
    assert len(world.job_calls()) == calls
    assert len(world.sim.submits) == 1
    assert await world.bot.parts.store.get(2) is None
    assert not [m for m in world.bot_messages() if "last frame" in m.content]


async def test_a_moderator_is_who_may_manage_messages_in_the_jobs_channel(
        world: World) -> None:
    world.sim.plan_next(Plan(run_seconds=600), Plan(run_seconds=600))
    for prompt in ("one", "two", "three"):  # two run; the third waits in RunComfy's queue
        await world.alice.slash(world.channel, "kling-2-1", prompt=prompt,
                                image=("z.png", PNG))
    # Bob may manage messages in the channel of the videos only; the Mods role everywhere
    # but there. Where the command is typed does not matter: the job's channel does.
    world.env.backend.set_overwrite(world.channel.id, overwrite(
        world.bob.id, allow=discord.Permissions(manage_messages=True)))
    world.env.backend.set_overwrite(world.channel.id, overwrite(
        world.mod.id, deny=discord.Permissions(manage_messages=True)))
    elsewhere = world.guild.create_text_channel("elsewhere")
    await world.env.settle()
    refused = await world.mod.slash(elsewhere, "cancel", job=3)
    assert refused.ephemeral
    assert refused.response.content == (
        "Only the member who asked for job #3 or a moderator (Manage Messages) can cancel it.")
    assert (await world.job(3)).state is JobState.QUEUED
    allowed = await world.bob.slash(elsewhere, "cancel", job=3)
    assert allowed.response.content == "Job #3 is cancelled; nothing is charged for it."
    assert (await world.job(3)).state is JobState.CANCELLED
    assert len(world.sim.calls_to("/cancel")) == 1


async def test_a_thread_needs_send_messages_in_threads_not_send_messages(world: World) -> None:
    """Discord asks for Send Messages in Threads in a thread; Send Messages is the parent's."""
    parent = world.guild.create_text_channel("threads-only")
    world.env.backend.set_overwrite(parent.id, overwrite(
        world.env.backend.bot_user.id, deny=discord.Permissions(send_messages=True),
        allow=discord.Permissions(send_messages_in_threads=True)))
    await world.env.settle()
    thread = await thread_in(world, parent)
    result = await world.alice.slash(thread, "kling-2-1", prompt="x", image=("z.png", PNG))
    assert result.response.content.startswith("Job #1 is queued.")


async def test_view_channel_is_named_as_discord_names_it(world: World) -> None:
    hidden = world.guild.create_text_channel("hidden")
    await bot_denied(world, hidden, view_channel=True)
    result = await world.alice.slash(hidden, "kling-2-1", prompt="x", image=("z.png", PNG))
    assert result.response.content.startswith("I can't post videos in this channel: I need "
                                               "View Channel")
    await nothing_started(world)
