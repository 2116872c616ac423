"""What every entry point does with an interaction (``bot/discord/interactions.py``): who asks
(with their roles, and a thread's parent channel), the one answer once a job is queued, and
the autocomplete of a member's own jobs."""

from __future__ import annotations

from typing import Any

from simcord.builders import ChannelHandle

from bot.discord.interactions import queued_text
from bot.simulator import Plan
from tests.discord_world import World
from tests.images import image_bytes

PNG = image_bytes("png", 800, 600)


async def thread_in(world: World, channel: Any, owner: Any) -> ChannelHandle:
    thread = world.env.backend.create_thread(channel.id, "a thread", owner.id)
    await world.env.settle()
    return ChannelHandle(world.env, world.guild, thread)


async def ask(world: World, member: Any, channel: Any, prompt: str = "a zebra") -> Any:
    return await member.slash(channel, "kling-2-1", prompt=prompt, image=("z.png", PNG))


async def test_a_members_roles_and_a_threads_parent_channel_count_for_the_rules(
        world: World) -> None:
    artists = world.guild.create_role("Artists")
    dora = world.guild.add_member(world.env.create_user("dora"), roles=[artists])
    await world.mod.slash(world.channel, "settings role", role=artists, allowed=True)
    await world.mod.slash(world.channel, "settings channel", channel=world.channel,
                          allowed=True)
    thread = await thread_in(world, world.channel, dora)

    result = await ask(world, dora, thread)  # a thread of the allowed channel: allowed
    assert result.ephemeral
    assert result.response.content == queued_text(1) == (
        "Job #1 is queued. Its card in this channel shows progress, and the video will be "
        "posted there.")
    assert result.followups == []
    job = await world.job(1)
    assert (job.channel_id, job.user_id) == (thread.id, dora.id)
    assert world.card(1, thread).embeds[0].footer.text == "Job #1"

    refused = await ask(world, world.alice, thread)  # the right place, not the right role
    assert refused.response.content == f"Making videos needs one of these roles: <@&{artists.id}>."
    elsewhere = await thread_in(world, world.guild.create_text_channel("chat"), dora)
    refused = await ask(world, dora, elsewhere)  # the right role, a thread of another channel
    assert refused.response.content == (f"Videos can't be made in this channel; use "
                                        f"<#{world.channel.id}>.")

    # A mention's job moves to a new thread on the member's message once its image is there;
    # that thread is in the allowed channel too, so the rules (checked again) let it through.
    assert world.bot.user is not None
    await dora.send(world.channel, f"<@{world.bot.user.id}> a zebra --model kling-2-1",
                    attachments=[("z.png", PNG)])
    made = [t for t in world.channel.threads if t.id != thread.id]
    assert len(made) == 1
    assert (await world.job(2)).channel_id == made[0].id
    assert len(world.sim.submits) == 2


async def test_job_choices_are_the_members_own_in_the_states_asked_matching_what_is_typed(
        world: World) -> None:
    await ask(world, world.alice, world.channel, "the first")
    await world.run_until(lambda: bool(world.videos()))
    world.sim.plan_next(*[Plan(run_seconds=600)] * 3)
    await ask(world, world.alice, world.channel, "the second")
    await ask(world, world.bob, world.channel, "bob's")
    await ask(world, world.alice, world.channel, "a very long prompt " * 10)

    async def choices(member: Any, command: str, typed: str) -> list[tuple[str, int]]:
        offered = await member.autocomplete(world.channel, command, "job", typed)
        return [(c["name"], c["value"]) for c in offered]

    long_name = "#4 Queued: " + ("a very long prompt " * 10)[:88] + "…"
    assert len(long_name) == 100
    assert await choices(world.alice, "cancel", "") == [(long_name, 4),
                                                        ("#2 Queued: the second", 2)]
    assert await choices(world.alice, "cancel", "2") == [("#2 Queued: the second", 2)]
    assert await choices(world.alice, "cancel", " #4") == [(long_name, 4)]
    assert await choices(world.alice, "cancel", "3") == []  # Bob's
    assert await choices(world.alice, "cancel", "1") == []  # done: not cancellable
    assert await choices(world.alice, "show", "") == [("#1 Done: the first", 1)]
    assert await choices(world.alice, "show", "#1") == [("#1 Done: the first", 1)]
    assert await choices(world.bob, "cancel", "") == [("#3 Queued: bob's", 3)]
    assert await choices(world.bob, "show", "") == []


async def test_an_old_job_is_found_among_many(world: World) -> None:
    """The number typed is looked for among all the member's jobs, not only the newest 25."""
    world.sim.plan_next(*[Plan(run_seconds=600)] * 30)
    for number in range(1, 31):
        await ask(world, world.alice, world.channel, f"shot {number}")
    offered = await world.alice.autocomplete(world.channel, "cancel", "job", "3")
    assert [c["value"] for c in offered] == [30, 23, 13, 3]
