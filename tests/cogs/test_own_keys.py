"""A server's own RunComfy key: proven with RunComfy before it is kept, kept sealed (never in
the database, the log or a message in plain text), used for every call about the server's jobs
(each keeps the key it was sent with) while other servers use the bot's, not counted against
the bot's account caps; a key RunComfy stops taking fails the job with a clear line once."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest

from bot.keys import KeyBox
from bot.simulator import Plan
from bot.store.keys import GuildKeys
from tests.conftest import TOKEN
from tests.discord_fixtures import SECRET_KEY
from tests.discord_world import World
from tests.images import image_bytes

PNG = image_bytes("png", 640, 480)
KEY = "rc-own-key-of-the-studio-7f3a9c2e51"  # the server's own RunComfy key
OTHER_KEY = "rc-another-key-of-the-studio-0d4b8e"
PRICED = {"kling-2-1": {"unit": "second", "usd": 0.1}}  # $0.50 for the default 5 s


async def make(world: World, member: Any = None, channel: Any = None) -> Any:
    return await (member or world.alice).slash(channel or world.channel, "kling-2-1",
                                               prompt="a zebra", image=("z.png", PNG))


async def set_key(world: World, key: str) -> Any:
    opened = await world.mod.slash(world.channel, "settings runcomfy-key")
    assert opened.modal is not None
    return await world.mod.submit_modal(opened, {"key": key})


def everything_said(world: World) -> str:
    texts = []
    for message in world.messages():
        texts.append(message.content)
        texts += [str(e.to_dict()) for e in message.embeds]
    return "\n".join(texts)


@pytest.mark.settings(account={"daily_budget_usd": 0.6}, prices=PRICED)
async def test_a_servers_key_pays_for_its_videos_and_is_never_shown(
        world: World, caplog: pytest.LogCaptureFixture, bot_settings: Any,
        database_target: Path | str) -> None:
    caplog.set_level(logging.DEBUG)
    world.sim.config.accounts[KEY] = None
    set_ = await set_key(world, KEY)
    assert set_.ephemeral
    assert set_.response.content == ("This server's RunComfy key (ending 2e51) is set: its new "
                                     "videos are made and paid with it.")
    shown = await world.mod.slash(world.channel, "settings show")
    assert {f.name: f.value for f in shown.response.embeds[0].fields}["RunComfy key"] == (
        "this server's own, ending 2e51")
    # Two videos on the server's key: the bot's account cap ($0.60) does not count them.
    for _ in range(2):
        assert (await make(world)).response.content.startswith("Job #")
    await world.run_until(lambda: len(world.videos()) == 2)
    # Another server: the bot's token.
    other = world.env.create_guild(name="Other")
    place = other.create_text_channel("videos")
    carol = other.add_member(world.env.create_user("carol"))
    assert (await make(world, carol, place)).response.content.startswith("Job #3")
    await world.run_until(lambda: len(world.videos(place)) == 1)
    for job_id, token in ((1, KEY), (2, KEY), (3, TOKEN)):
        request = (await world.job(job_id)).request_id
        calls = [c for c in world.sim.calls  # its status, result (the video's file is public)
                 if request and c.path.startswith(f"/v1/requests/{request}/")]
        assert calls and {c.token for c in calls} == {token}, job_id
    submits = world.sim.calls_to("/v1/models/", "POST")
    assert [c.token for c in submits] == [KEY, KEY, TOKEN]
    # The bot's account paid for job 3 only ($0.50 of $0.60): another is refused.
    assert (await make(world, carol, place)).response.content.startswith(
        "The bot's own spending limit for today is reached")
    # Never in plain text: the log, what Discord shows, the audit, the database's bytes.
    assert KEY not in caplog.text
    assert KEY not in everything_said(world)
    audit = await world.mod.slash(world.channel, "settings audit")
    assert '"RunComfy key set, ends …2e51"' in audit.response.embeds[0].description
    if isinstance(database_target, Path):
        for file in database_target.parent.glob(database_target.name + "*"):
            assert KEY.encode() not in file.read_bytes()
    stored = await GuildKeys(world.bot.parts.db).get(world.guild.id)
    assert stored is not None and KEY not in stored.sealed
    assert KeyBox.from_env(SECRET_KEY) is not None
    assert KeyBox([SECRET_KEY]).open(stored.sealed) == KEY


async def test_a_key_runcomfy_does_not_take_is_not_kept(world: World) -> None:
    refused = await set_key(world, "rc-not-a-key-runcomfy-knows-123456")
    assert refused.ephemeral
    assert refused.response.content.startswith("RunComfy did not accept that key (")
    assert refused.response.content.endswith("); it was not kept.")
    assert await GuildKeys(world.bot.parts.db).get(world.guild.id) is None
    assert (await make(world)).response.content.startswith("Job #1")
    assert world.sim.calls_to("/v1/models/", "POST")[0].token == TOKEN


async def test_a_key_revoked_mid_job_fails_it_once_and_stops_the_next(world: World) -> None:
    world.sim.config.accounts[KEY] = None
    await set_key(world, KEY)
    assert (await make(world)).response.content.startswith("Job #1")
    del world.sim.config.accounts[KEY]  # revoked at RunComfy while the job runs
    await world.run_until(lambda: (world.card(1).embeds[0].title or "").endswith("Failed"))
    said = ("This server's RunComfy key (…2e51) was refused by RunComfy: it is not valid (any "
            "more). Someone with Manage Server can set a new one with `/settings runcomfy-key`.")
    job = await world.job(1)
    assert job.error == said
    assert said in everything_said(world)
    refused = await make(world)  # told before anything is downloaded or sent
    assert refused.response.content == (
        "This server's RunComfy key (…2e51) was refused by RunComfy: it was refused earlier. "
        "Someone with Manage Server can set a new one with `/settings runcomfy-key`.")
    assert len(world.sim.calls_to("/v1/models/", "POST")) == 1
    # A new key works at once; each job keeps the key it was sent with.
    world.sim.config.accounts[OTHER_KEY] = None
    await set_key(world, OTHER_KEY)
    assert (await make(world)).response.content.startswith("Job #2")
    assert world.sim.calls_to("/v1/models/", "POST")[-1].token == OTHER_KEY
    removed = await world.mod.slash(world.channel, "settings runcomfy-key", remove=True)
    assert removed.response.content == ("This server's RunComfy key (ending 4b8e) is removed; "
                                        "new videos use the bot's.")


@pytest.mark.settings(access={"servers": "own_key"})
async def test_own_key_mode_asks_for_a_key_first(world: World) -> None:
    refused = await make(world)
    assert refused.response.content == (
        "This bot makes videos with each server's own RunComfy key, and this server has none "
        "yet: someone with Manage Server can add one with `/settings runcomfy-key`.")
    assert world.sim.calls_to("/v1/models/", "POST") == []
    world.sim.config.accounts[KEY] = None
    await set_key(world, KEY)
    assert (await make(world)).response.content.startswith("Job #1")


async def test_a_cancel_goes_to_the_account_the_job_was_sent_with(world: World) -> None:
    world.sim.config.accounts[KEY] = None
    world.sim.plan_next(Plan(queue_seconds=600))
    await set_key(world, KEY)
    assert (await make(world)).response.content.startswith("Job #1")
    await world.mod.slash(world.channel, "settings runcomfy-key", remove=True)  # meanwhile
    cancelled = await world.alice.slash(world.channel, "cancel", job=1)
    assert cancelled.response.content == "Job #1 is cancelled; nothing is charged for it."
    [call] = world.sim.calls_to("/cancel")
    assert call.token == KEY
