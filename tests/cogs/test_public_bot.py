"""A public bot: the operator's ceilings (a server tightens, never loosens), role tiers under
them, caps on the operator's whole account, approved servers only, and a moderator's power
taken in the job's own channel. Through the real discord.py client and the simulator."""

from __future__ import annotations

from typing import Any

import discord
import pytest

from bot.store.access import ApprovedServers
from tests.discord_world import World
from tests.images import image_bytes

PNG = image_bytes("png", 640, 480)
PRICED = {"kling-2-1": {"unit": "second", "usd": 0.1}}  # $0.50 for the default 5 s
NOT_APPROVED = ("This bot makes videos only in servers its operator has approved, and this one "
                "is not approved yet: ask the bot's operator to approve server {}.")


async def make(world: World, member: Any = None, channel: Any = None) -> Any:
    result = await (member or world.alice).slash(channel or world.channel, "kling-2-1",
                                                 prompt="a zebra", image=("z.png", PNG))
    assert result.response is not None
    return result


def field(embed: discord.Embed, name: str) -> str:
    return next(f.value or "" for f in embed.fields if f.name == name)


@pytest.mark.settings(ceilings={"daily_quota": 2, "monthly_budget_usd": 10,
                                "cooldown_seconds": 0, "max_concurrent": 3}, prices=PRICED)
async def test_a_servers_no_limit_is_the_bots_ceiling(world: World) -> None:
    limits = await world.mod.slash(world.channel, "settings limits", daily_quota=0,
                                   max_concurrent=0, monthly_budget_usd=0)
    shown = limits.response.embeds[0]
    assert field(shown, "Daily quota") == "2 (the bot's ceiling)"
    assert field(shown, "At once") == "3 (the bot's ceiling)"
    assert field(shown, "Monthly budget") == "$10.00 (the bot's ceiling)"
    tighter = await world.mod.slash(world.channel, "settings limits", daily_quota=1)
    assert field(tighter.response.embeds[0], "Daily quota") == "1"  # tightened: the server's
    await world.mod.slash(world.channel, "settings limits", daily_quota=50)  # looser: ignored
    quota = await world.alice.slash(world.channel, "quota")
    assert "Today: 0 of 2 videos (the bot's ceiling)" in quota.response.content
    for _ in range(2):
        assert (await make(world)).response.content.startswith("Job #")
    refused = await make(world)
    assert refused.ephemeral
    assert refused.response.content.startswith(
        "daily quota reached: 2 of 2 (the bot's ceiling), resets in ")
    assert len(world.sim.submits) == 2


@pytest.mark.settings(ceilings={"monthly_budget_usd": 0.4}, prices=PRICED)
async def test_a_budget_refusal_names_the_ceiling(world: World) -> None:
    await world.mod.slash(world.channel, "settings limits", monthly_budget_usd=0)
    refused = await make(world)
    assert refused.response.content == (
        "This video (about $0.50) would go over this server's monthly video budget: $0.00 of "
        "$0.40 (the bot's ceiling) spent; it resets on 1 February.")
    assert world.sim.submits == []


@pytest.mark.settings(ceilings={"daily_quota": 3})
async def test_a_members_most_generous_tier_applies_under_the_ceiling(world: World) -> None:
    boosters = world.guild.create_role("Boosters")
    regulars = world.guild.create_role("Regulars")
    fan = world.guild.add_member(world.env.create_user("fan"), roles=[boosters, regulars])
    await world.mod.slash(world.channel, "settings limits", daily_quota=1)
    await world.mod.slash(world.channel, "settings tier", role=regulars, daily_quota=2)
    tier = await world.mod.slash(world.channel, "settings tier", role=boosters, daily_quota=10,
                                 cooldown_seconds=0)
    assert f"<@&{boosters.id}>: 10 a day, no limit at once, cooldown 0 s" in field(
        tier.response.embeds[0], "Role tiers")
    quota = await fan.slash(world.channel, "quota")
    assert quota.response.content.splitlines()[:2] == [
        f"Your limits are the <@&{boosters.id}> tier's.",
        "Today: 0 of 3 videos (the bot's ceiling) (resets in " + quota.response.content.split(
            "(resets in ", 1)[1].splitlines()[0]]
    for _ in range(3):
        assert (await make(world, fan)).response.content.startswith("Job #")
    assert (await make(world, fan)).response.content.startswith(
        "daily quota reached: 3 of 3 (the bot's ceiling)")
    assert (await make(world)).response.content.startswith("Job #")  # alice: the server's 1
    assert (await make(world)).response.content.startswith("daily quota reached: 1 of 1, ")
    await world.mod.slash(world.channel, "settings tier", role=boosters, remove=True)
    regular = await fan.slash(world.channel, "quota")
    assert f"<@&{regulars.id}> tier" in regular.response.content
    assert (await make(world, fan)).response.content.startswith(
        f"daily quota reached: 3 of 2 (the <@&{regulars.id}> tier)")


async def test_a_moderators_power_is_taken_in_the_jobs_own_channel(world: World) -> None:
    guild = world.guild
    channel_mods = guild.create_role("Lobby mods")
    lobby = guild.create_text_channel("lobby", overwrites={
        channel_mods: discord.PermissionOverwrite(manage_messages=True)})
    secret_mods = guild.create_role("Secret mods")
    secret = guild.create_text_channel("secret", overwrites={
        guild.default_role: discord.PermissionOverwrite(view_channel=False),
        world.alice: discord.PermissionOverwrite(view_channel=True),
        secret_mods: discord.PermissionOverwrite(view_channel=True, manage_messages=True),
        guild.me: discord.PermissionOverwrite(view_channel=True)})
    keeper = guild.add_member(world.env.create_user("keeper"), roles=[channel_mods])
    assert (await make(world, channel=secret)).response.content.startswith("Job #1")
    await world.run_until(lambda: bool(world.videos(secret)))
    shown = await keeper.slash(lobby, "show", job=1)
    assert shown.response.content == "There is no job #1 in this server."
    shown = await world.mod.slash(world.channel, "show", job=1)  # a moderator who can't see it
    assert shown.response.content == "There is no job #1 in this server."
    assert world.bot_messages(lobby) == [] and len(world.videos(world.channel)) == 0
    again = await keeper.slash(lobby, "cancel", job=1)
    assert again.response.content == ("Only the member who asked for job #1 or a moderator "
                                       "(Manage Messages) can cancel it.")
    # A moderator of the job's own channel may, from anywhere.
    guard = guild.add_member(world.env.create_user("guard"), roles=[secret_mods])
    shown = await guard.slash(lobby, "show", job=1)
    assert shown.response.content == "Job #1 is posted again here."
    assert [m for m in world.bot_messages(lobby) if m.attachments]


@pytest.mark.settings(access={"servers": "approved"})
async def test_an_unapproved_server_spends_nothing_on_any_path(world: World) -> None:
    said = NOT_APPROVED.format(world.guild.id)
    slash = await make(world)
    assert (slash.ephemeral, slash.response.content) == (True, said)
    posted = await world.alice.send(world.channel, "look", attachments=[("z.png", PNG)])
    menu = await world.alice.context_menu(world.channel, "Animate image", posted)
    form = await world.alice.submit_modal(menu, {"prompt": "wave", "model": ["kling-2-1"]})
    assert (form.ephemeral, form.response.content) == (True, said)
    me = world.bot.user
    assert me is not None
    await world.alice.send(world.channel, f"<@{me.id}> a zebra", attachments=[("z.png", PNG)])
    told = [m.content for m in world.bot_messages() if said in m.content]
    told += [m.content for t in world.channel.threads for m in world.bot_messages(t)
             if said in m.content]
    assert told
    assert world.job_calls() == [] and world.sim.submits == []
    # A refusal is a form's answer, not an error (bot.discord.forms.Form).
    assert world.env.errors == []
    # Approved while the bot runs (as `python -m bot servers approve` does): at once.
    await ApprovedServers(world.bot.parts.db).approve(world.guild.id, 0.0)
    assert (await make(world)).response.content.startswith("Job #1")
    await world.run_until(lambda: bool(world.videos()))
    await ApprovedServers(world.bot.parts.db).revoke(world.guild.id)
    for label in ("Again", "Vary", "Extend"):
        pressed = await world.alice.click(world.videos()[-1], label=label)
        if pressed.modal is not None:
            answers: dict[str, Any] = {"prompt": "more"}
            if label == "Vary":
                answers |= {"duration": ["5"], "aspect_ratio": ["16:9"]}
            pressed = await world.alice.submit_modal(pressed, answers)
        assert pressed.response.content == said, label
    assert len(world.sim.submits) == 1


@pytest.mark.settings(access={"servers": "approved", "approved": [1, 2]})
async def test_the_configs_approved_servers_need_no_database_row(world: World) -> None:
    assert (await make(world)).response.content == NOT_APPROVED.format(world.guild.id)


@pytest.mark.settings(account={"daily_budget_usd": 0.9}, prices=PRICED)
async def test_the_accounts_cap_holds_across_servers_and_names_no_one(world: World) -> None:
    other = world.env.create_guild(name="Other")
    place = other.create_text_channel("videos")
    carol = other.add_member(world.env.create_user("carol"))
    assert (await make(world)).response.content.startswith("Job #1")  # $0.50 of $0.90
    refused = await make(world, carol, place)
    assert refused.ephemeral
    assert refused.response.content.startswith(
        "The bot's own spending limit for today is reached; it resets in ")
    assert "Kling" not in refused.response.content and str(world.guild.id) not in \
        refused.response.content
    assert len(world.sim.submits) == 1
