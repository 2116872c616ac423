"""Moderators' settings, each enforced before anything is paid for; permissions; isolation."""

from __future__ import annotations

import re
from typing import Any

import discord
import pytest

from bot.simulator import JobState as SimState
from bot.simulator import Plan
from tests.discord_world import World
from tests.images import image_bytes

PNG = image_bytes("png", 800, 600)
QUEUED = re.compile(r"^Job #\d+ is queued\.")


async def make(world: World, member: Any = None, command: str = "kling-2-1",
               channel: Any = None, **options: Any) -> Any:
    """Ask for a video; returns the interaction result."""
    options.setdefault("prompt", "a zebra")
    if command != "kling-3-0-4k":
        options.setdefault("image", ("z.png", PNG))
    return await (member or world.alice).slash(channel or world.channel, command, **options)


async def refused(world: World, result: Any, text: str) -> None:
    assert result.ephemeral
    assert result.response.content == text


async def settings(world: World, *args: Any, **options: Any) -> Any:
    result = await world.mod.slash(world.channel, *args, **options)
    assert result.ephemeral
    return result


async def test_a_model_can_be_turned_off(world: World) -> None:
    result = await settings(world, "settings model", model="kling-2-1", enabled=False)
    assert result.response.content == "`kling-2-1` is now off."
    await refused(world, await make(world), "`kling-2-1` is turned off on this server.")
    assert QUEUED.match((await make(world, command="wan-2-2")).response.content)
    await settings(world, "settings model", model="kling-2-1", enabled=True)
    assert QUEUED.match((await make(world)).response.content)


async def test_roles_channels_and_blocked_members(world: World) -> None:
    artists = world.guild.create_role("Artists")
    artist = world.guild.add_member(world.env.create_user("dora"), roles=[artists])
    await settings(world, "settings role", role=artists, allowed=True)
    result = await make(world)
    assert result.response.content == f"Making videos needs one of these roles: <@&{artists.id}>."
    assert QUEUED.match((await make(world, artist)).response.content)
    await settings(world, "settings role", role=artists, allowed=False)

    other = world.guild.create_text_channel("art")
    await settings(world, "settings channel", channel=other, allowed=True)
    result = await make(world)
    assert result.response.content == f"Videos can't be made in this channel; use <#{other.id}>."
    assert QUEUED.match((await make(world, channel=other)).response.content)
    await settings(world, "settings channel", channel=other, allowed=False)

    await settings(world, "settings block", member=world.alice, blocked=True)
    result = await make(world)
    assert result.response.content == "You are not allowed to make videos on this server."
    assert QUEUED.match((await make(world, world.bob)).response.content)


async def test_the_prompt_blocklist_takes_words_and_safe_regular_expressions(world: World) -> None:
    await settings(world, "settings blocklist", action="add", pattern="gore")
    await settings(world, "settings blocklist", action="add", pattern=r"blood\w*", regex=True)
    result = await make(world, prompt="A GORE scene")
    assert result.response.content == "Your prompt contains “GORE”, which is not allowed here."
    result = await make(world, prompt="bloodbath at dawn")
    assert result.response.content == ("Your prompt contains “bloodbath”, which is not allowed "
                                       "here.")
    assert QUEUED.match((await make(world, prompt="gorenje fridge")).response.content)

    bad = await settings(world, "settings blocklist", action="add", pattern="([a-z", regex=True)
    assert bad.response.content.startswith("`([a-z` is not a valid regular expression")
    await settings(world, "settings blocklist", action="add", pattern="^(a|aa)+$", regex=True)
    result = await make(world, prompt="a" * 60 + "!")
    assert result.response.content == ("Your prompt contains “/^(a|aa)+$/”, which is not "
                                       "allowed here.")  # too slow to check: not let through


@pytest.mark.settings(jobs={"poll_interval": 3600})  # hours pass in this test
async def test_daily_quota(world: World) -> None:
    await world.env.advance_time(20 * 3600 + 48 * 60)  # 20:48 UTC
    await settings(world, "settings limits", daily_quota=2)
    for _ in range(2):
        assert QUEUED.match((await make(world)).response.content)
    result = await make(world)
    assert result.response.content == "daily quota reached: 2 of 2, resets in 3 h 12 min"
    quota = await world.alice.slash(world.channel, "quota")
    assert quota.response.content.startswith("Today: 2 of 2 videos (resets in 3 h 12 min).")
    await world.env.advance_time(4 * 3600)  # the next day
    assert QUEUED.match((await make(world)).response.content)


async def test_concurrency_and_cooldown(world: World) -> None:
    await settings(world, "settings limits", max_concurrent=1)
    await make(world)
    result = await make(world)
    assert result.response.content == ("You already have 1 video in progress (limit 1); wait "
                                       "for one to finish.")
    await world.run_until(lambda: bool(world.videos()))
    await settings(world, "settings limits", max_concurrent=0, cooldown_seconds=600)
    result = await make(world)
    assert (result.response.content or "").startswith("Please wait ")
    assert (result.response.content or "").endswith("before your next video (cooldown 10 min 0 s).")


async def test_the_budget_reserves_settles_and_refunds(world: World) -> None:
    async def spent() -> float:
        standing = await world.bot.parts.limits.standing(world.guild.id, world.alice.id)
        return round(standing.spent_this_month, 2)

    await settings(world, "settings limits", monthly_budget_usd=3.0)
    # Kling 3.0 without audio: $0.084/s x 10 s = $0.84, reserved when asked for.
    world.sim.plan_next(Plan(run_seconds=30), Plan(SimState.FAILED, run_seconds=6))
    for _ in range(3):  # two run (two workers), the third waits
        await make(world, command="kling-3-0", duration=10, generate_audio=False)
    assert await spent() == 2.52
    result = await make(world, command="kling-3-0", duration=10, generate_audio=False)
    assert result.response.content == (
        "This video (about $0.84) would go over this server's monthly video budget: $2.52 of "
        "$3.00 spent; it resets on 1 February.")
    await world.alice.click(world.card(3), label="Cancel")
    assert await spent() == 1.68  # the cancelled job is refunded
    await world.run_until(lambda: world.card(2).embeds[0].title == "Kling 3.0 Standard · Failed")
    assert await spent() == 0.84  # so is the failed one
    await world.run_until(lambda: bool(world.videos()))
    assert (await world.job(1)).cost_usd == pytest.approx(0.84)
    assert await spent() == 0.84  # settled at RunComfy's cost


async def test_a_budget_refuses_a_model_without_a_known_price(world: World) -> None:
    # Wan 2.2 has no price in the catalog, and this RunComfy publishes none either.
    first = await make(world, command="wan-2-2")  # no budget: nothing to keep
    assert (first.response.content or "").startswith("Job #1 is queued")
    await settings(world, "settings limits", monthly_budget_usd=5.0)
    result = await make(world, command="wan-2-2")
    assert result.ephemeral
    assert result.response.content == (
        "`wan-2-2` has no known price yet, so this server's monthly video budget can't be "
        "kept; the bot's operator can set `prices.wan-2-2`.")
    assert len(world.sim.submits) == 1


async def test_members_without_manage_server_are_refused_even_if_shown(world: World) -> None:
    command = world.env.backend.find_command("settings", None)
    world.guild.set_command_permissions(int(command["id"]), {world.bob: True})
    result = await world.bob.slash(world.channel, "settings limits", daily_quota=100)
    assert result.ephemeral
    assert result.response.content == "You need the Manage Server permission to do that."
    assert (await world.bot.parts.policies.get(world.guild.id)).daily_quota == 0
    report = await world.bob.slash(world.channel, "usage server")
    assert report.response.content == "You need the Manage Server permission to do that."


async def test_every_change_is_audited(world: World) -> None:
    await settings(world, "settings limits", daily_quota=5, cooldown_seconds=30)
    await settings(world, "settings default-model", model="wan-2-2")
    result = await settings(world, "settings audit")
    lines = (result.response.embeds[0].description or "").splitlines()
    assert [line.split(" ", 1)[1] for line in lines] == [
        f'<@{world.mod.id}> `default_model`: null → "wan-2-2"',
        f"<@{world.mod.id}> `cooldown_seconds`: 0 → 30",
        f"<@{world.mod.id}> `daily_quota`: 0 → 5",
    ]
    # The form opens before anything is read; its "server's default" is the new default.
    shown = await world.alice.slash(world.channel, "animate", image=("z.png", PNG))
    [select] = [c["component"] for row in shown.modal["components"]
                if (c := row).get("component", {}).get("custom_id") == "model"]
    assert [o["label"] for o in select["options"] if o.get("default")] == [
        "This server's default model"]
    await world.alice.submit_modal(shown, {"prompt": "a wave", "model": ["default"]})
    assert (await world.job(1)).model_id == world.bot.catalog.by_command("wan-2-2").id


async def test_guilds_never_see_each_others_jobs_settings_or_usage(world: World) -> None:
    other = world.env.create_guild(name="Other")
    place = other.create_text_channel("videos")
    owner = other.add_member(world.env.create_user("carol"),
                             roles=[other.create_role("Admins", permissions=discord.Permissions(
                                 manage_guild=True, manage_messages=True))])
    await settings(world, "settings limits", daily_quota=1)
    await make(world)
    await world.run_until(lambda: bool(world.videos()))
    # The other guild: no quota from the first, no job #1, an empty report.
    assert QUEUED.match((await owner.slash(place, "kling-2-1", prompt="x",
                                           image=("z.png", PNG))).response.content)
    assert QUEUED.match((await owner.slash(place, "kling-2-1", prompt="y",
                                           image=("z.png", PNG))).response.content)
    result = await owner.slash(place, "cancel", job=1)
    assert result.response.content == "There is no job #1 in this server."
    jobs = await owner.slash(place, "jobs")
    assert "#1 " not in (jobs.response.embeds[0].description or "")
    report = await owner.slash(place, "usage server", period="today")
    assert report.response.embeds[0].description.startswith("0 jobs")


async def test_a_refused_member_costs_no_download(world: World,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """The guild's rules come before the image is read (it may be up to 50 MB)."""
    fetched: list[str] = []
    cdn = world.bot.http.get_from_cdn

    async def counted(url: str) -> bytes:
        fetched.append(url)
        return await cdn(url)

    monkeypatch.setattr(world.bot.http, "get_from_cdn", counted)
    await settings(world, "settings block", member=world.alice, blocked=True)
    result = await make(world)
    assert result.response.content == "You are not allowed to make videos on this server."
    assert fetched == []
    assert QUEUED.match((await make(world, world.bob)).response.content)
    assert len(fetched) == 1  # a member who may: read once, to check it


@pytest.mark.parametrize(("member", "command", "answer"), [
    ("mod", "settings show", None),
    ("mod", "settings audit", None),
    ("alice", "jobs", "You have no videos here yet."),
    ("alice", "quota", "Today: 0 videos (no daily quota)."),
])
async def test_commands_that_read_the_store_answer_discord_first(
        world: World, member: str, command: str, answer: str | None) -> None:
    """Their first answer is the defer ("thinking"), before the database is read (it may be
    busy, or behind the guild's lock); then the answer replaces it, seen by the member alone."""
    before = len(world.env.http_requests)
    result = await getattr(world, member).slash(world.channel, command)
    callbacks = [r.json for r in world.env.http_requests[before:]
                 if r.method == "POST" and r.path.endswith("/callback")]
    assert callbacks == [{"type": 5, "data": {"flags": 64}}]
    assert result.ephemeral
    if answer is not None:
        assert (result.response.content or "").startswith(answer)
    else:
        assert result.response.embeds
