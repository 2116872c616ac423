"""The one error handler (``bot/discord/errors.py``): what a member is told when an interaction
fails (a refusal's own words, a missing permission by its name in Discord, else a sentence
that hides the details, which go to the log), and the notices kept for them."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import pytest

from bot.discord.errors import UNEXPECTED
from tests.discord_world import World

NOTICE = "Your video (job #{}) is ready, but I could not post it in <#1>: gone."


@pytest.fixture
async def broken_store(world: World) -> AsyncIterator[None]:
    """The jobs table is away (as in a botched migration) until the test ends."""
    await world.bot.parts.db.write("ALTER TABLE jobs RENAME TO jobs_away")
    yield
    await world.bot.parts.db.write("ALTER TABLE jobs_away RENAME TO jobs")


def answers(world: World, kind: int) -> int:
    """How many interactions the bot answered with ``kind`` (4: a message, 5: "thinking")."""
    return sum(1 for r in world.env.http_requests if r.method == "POST"
               and r.path.endswith("/callback") and (r.json or {}).get("type") == kind)


async def test_refusals_are_shown_in_their_own_words(world: World) -> None:
    # Raised after the command answered Discord ("thinking"): that answer becomes the refusal.
    deferred = await world.mod.slash(world.channel, "settings limits")
    assert (answers(world, 5), answers(world, 4)) == (1, 0)
    assert deferred.ephemeral
    assert deferred.response.content == "Give at least one of the limits to change."
    assert deferred.followups == []
    # A check of the command, before any answer: the refusal is the answer, and the
    # permission is named as in Discord's settings.
    command = world.env.backend.find_command("settings", None)
    world.guild.set_command_permissions(int(command["id"]), {world.alice: True})
    refused = await world.alice.slash(world.channel, "settings show")
    assert (answers(world, 5), answers(world, 4)) == (1, 1)
    assert refused.ephemeral
    assert refused.response.content == "You need the Manage Server permission to do that."
    assert world.job_calls() == []


@pytest.mark.usefixtures("broken_store")
async def test_an_unexpected_error_is_logged_and_not_shown(
        world: World, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.ERROR, "bot.discord.errors")
    result = await world.alice.slash(world.channel, "jobs")
    assert result.ephemeral
    assert result.response.content == UNEXPECTED == (
        "Something went wrong on the bot's side; it has been logged.")
    [record] = [r for r in caplog.records if r.name == "bot.discord.errors"]
    assert (record.levelno, record.getMessage()) == (logging.ERROR, "command failed")
    assert record.exc_info is not None
    failure = record.exc_info[1]
    assert failure is not None
    assert "jobs" in str(failure)  # the store's own error, with its traceback
    assert "Traceback" in caplog.text and "for_user" in caplog.text
    assert str(failure) not in result.response.content


async def test_notices_follow_the_members_next_command_even_a_refused_one(
        world: World) -> None:
    notices = world.bot.parts.notices
    await notices.add(world.guild.id, world.alice.id, NOTICE.format(1))
    await notices.add(world.guild.id, world.alice.id, NOTICE.format(2))
    await notices.add(world.guild.id, world.bob.id, NOTICE.format(3))
    await notices.add(world.guild.id + 1, world.alice.id, NOTICE.format(4))  # another server

    refused = await world.alice.slash(world.channel, "show", job=7)
    assert refused.response.content == "There is no job #7 in this server."
    assert [(n.content, n.ephemeral) for n in refused.followups] == [
        (NOTICE.format(1), True), (NOTICE.format(2), True)]
    again = await world.alice.slash(world.channel, "quota")
    assert again.followups == []  # told once
    bobs = await world.bob.slash(world.channel, "quota")
    assert [n.content for n in bobs.followups] == [NOTICE.format(3)]
    assert await notices.take(world.guild.id + 1, world.alice.id) == [NOTICE.format(4)]


async def test_notices_whose_follow_up_failed_are_all_kept_in_order(world: World) -> None:
    notices = world.bot.parts.notices
    for job in (1, 2):
        await notices.add(world.guild.id, world.alice.id, NOTICE.format(job))
    world.env.inject_error("POST", "/webhooks/*", status=500, times=1)  # the first follow-up
    first = await world.alice.slash(world.channel, "quota")
    assert first.response.content.startswith("Today: ")
    assert first.followups == []
    later = await world.alice.slash(world.channel, "quota")
    assert [n.content for n in later.followups] == [NOTICE.format(1), NOTICE.format(2)]
