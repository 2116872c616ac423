"""The bot speaks the member's language to the member, and the server's in the channel: a
refusal and ``/quota`` in the member's Discord language, the card in the server's (its Discord
language, or ``/settings language``), English for a language the bot has no catalog of. The
expected words are read from the catalogs' files here, not made by the bot's own functions."""

from __future__ import annotations

from typing import Any

import discord
import pytest
import simcord.interactions
from babel.messages.catalog import Catalog
from babel.messages.pofile import read_po

from bot.i18n import LOCALES_DIR
from bot.simulator import Plan
from tests.discord_world import World
from tests.images import image_bytes

PNG = image_bytes("png", 800, 600)
QUOTA_REACHED = "daily quota reached: {used} of {quota}{set_by}, resets in {reset}"
TODAY = ("Today: {used} of {n} video{set_by} (resets in {reset}).",
         "Today: {used} of {n} videos{set_by} (resets in {reset}).")


def catalog(language: str) -> Catalog:
    with (LOCALES_DIR / language / "LC_MESSAGES" / "bot.po").open("rb") as file:
        return read_po(file)


def words(language: str, message: str | tuple[str, str], form: int = 0,
          context: str | None = None) -> str:
    """The catalog's words for ``message`` (a plural's ``form``), as written in the file."""
    found = catalog(language).get(message if isinstance(message, str) else message[0],
                                  context=context)
    assert found is not None and found.string, message
    string = found.string
    return str(string if isinstance(string, str) else list(string)[form])


def matches(text: str, template: str, **values: str) -> bool:
    """Whether ``text`` is ``template`` filled with ``values``; ``{reset}`` (a duration that
    depends on the clock) may be anything."""
    start, _, end = template.format(reset="\x00", **values).partition("\x00")
    return text.startswith(start) and text.endswith(end)


@pytest.fixture
def locales(monkeypatch: pytest.MonkeyPatch) -> dict[int, str]:
    """Each member's Discord language (SimCord says en-US for everyone): user id -> locale."""
    chosen: dict[int, str] = {}
    made = simcord.interactions.base_payload

    def payload(backend: Any, **fields: Any) -> tuple[Any, dict[str, Any]]:
        record, data = made(backend, **fields)
        data["locale"] = chosen.get(fields["user_id"], "en-US")
        return record, data

    monkeypatch.setattr(simcord.interactions, "base_payload", payload)
    return chosen


async def make(world: World, member: Any = None, channel: Any = None) -> Any:
    result = await (member or world.alice).slash(channel or world.channel, "kling-2-1",
                                                 prompt="a zebra", image=("z.png", PNG))
    return result.response.content


@pytest.mark.settings(limits={"daily_quota": 1})
async def test_a_japanese_member_is_refused_and_told_their_quota_in_japanese(
        world: World, locales: dict[int, str]) -> None:
    locales[world.alice.id] = "ja"
    assert "#1" in await make(world)  # queued, in whichever language
    refused = await make(world)
    assert matches(refused, words("ja", QUOTA_REACHED), used="1", quota="1", set_by=""), refused
    assert "daily quota" not in refused
    quota = (await world.alice.slash(world.channel, "quota")).response.content
    assert matches(quota.splitlines()[0], words("ja", TODAY, 0), used="1", n="1", set_by=""), \
        quota
    assert "Today" not in quota
    # Bob's Discord is in English: the same refusal, in English.
    assert "#2" in await make(world, world.bob)  # queued, in whichever language
    assert (await make(world, world.bob)).startswith("daily quota reached: 1 of 1, resets in ")


async def test_a_language_without_a_catalog_is_answered_in_english(
        world: World, locales: dict[int, str]) -> None:
    locales[world.alice.id] = "it"  # Discord has Italian; the bot has no Italian catalog
    quota = await world.alice.slash(world.channel, "quota")
    assert quota.response.content.startswith("Today: 0 videos (no daily quota).")


async def test_the_card_speaks_the_servers_language_then_the_one_chosen(
        world: World, locales: dict[int, str]) -> None:
    guild = world.env.create_guild("서버", preferred_locale="ko")
    channel = guild.create_text_channel("videos")
    member = guild.add_member(world.env.create_user("minji"))
    locales[member.id] = "ja"  # the member's own language does not change the card
    assert "#1" in await make(world, member, channel)  # queued, in whichever language
    card = world.card(1, channel)
    fields = [f.name for f in card.embeds[0].fields]
    assert words("ko", "Requested by") in fields
    assert "Requested by" not in fields
    await world.run_until(lambda: bool(world.videos(channel)))
    assert words("ko", "Done") in (world.card(1, channel).embeds[0].title or "")

    owner = guild.add_member(world.env.create_user("owner"), roles=[guild.create_role(
        "Admins", permissions=discord.Permissions(manage_guild=True))])
    answer = await owner.slash(channel, "settings language", language="de")
    assert answer.response.content == "Cards, videos and notices here are now in Deutsch."
    assert "#2" in await make(world, member, channel)  # queued, in whichever language
    fields = [f.name for f in world.card(2, channel).embeds[0].fields]
    assert words("de", "Requested by") in fields
    back = await owner.slash(channel, "settings language", language="server")
    assert back.ephemeral
    assert "#3" in await make(world, member, channel)  # queued, in whichever language
    assert words("ko", "Requested by") in [f.name for f in world.card(3, channel).embeds[0].fields]


async def test_a_reason_the_bot_wrote_is_told_in_the_servers_language(
        world: World, locales: dict[int, str]) -> None:
    """A job's reason is kept as the bot wrote it (English); the card shows it in the server's
    language when the catalogs know it."""
    guild = world.env.create_guild("サーバー", preferred_locale="ja")
    channel = guild.create_text_channel("videos")
    member = guild.add_member(world.env.create_user("hana"))
    assert "#1" in await make(world, member, channel)
    job = await world.job(1)
    assert job.request_id is not None
    world.sim.expire(job.request_id)
    await world.run_until(lambda: (world.card(1, channel).embeds[0].title or "").endswith(
        words("ja", "Failed")))
    state = next(f.value for f in world.card(1, channel).embeds[0].fields
                 if f.name == words("ja", "State"))
    assert state == words("ja", "{state}: {reason}").format(
        state=words("ja", "Failed"),
        reason=words("ja", "RunComfy no longer knows this request (it expired)."))
    assert (await world.job(1)).error == "RunComfy no longer knows this request (it expired)."
    # The requester is told in the channel, in the server's language, with the reason.
    told = words("ja", "your video could not be made: {reason}").format(
        reason=words("ja", "RunComfy no longer knows this request (it expired)."))
    assert [m.content for m in world.bot_messages(channel)
            if m.content.startswith(f"<@{member.id}>")] == [f"<@{member.id}> {told}"]


async def test_a_servers_refused_key_is_told_in_the_servers_language(
        world: World, locales: dict[int, str]) -> None:
    """The refusal of a server's own key is kept in English with its values (the key's ending,
    the reason); the channel reads it in the server's language, values and all."""
    guild = world.env.create_guild("サーバー", preferred_locale="ja")
    channel = guild.create_text_channel("videos")
    member = guild.add_member(world.env.create_user("hana"))
    owner = guild.add_member(world.env.create_user("owner"), roles=[guild.create_role(
        "Admins", permissions=discord.Permissions(manage_guild=True))])
    key = "rc-own-key-of-the-studio-7f3a9c2e51"
    world.sim.config.accounts[key] = None
    opened = await owner.slash(channel, "settings runcomfy-key")
    await owner.submit_modal(opened, {"key": key})
    assert "#1" in await make(world, member, channel)
    del world.sim.config.accounts[key]  # revoked at RunComfy while the job runs
    await world.run_until(lambda: (world.card(1, channel).embeds[0].title or "").endswith(
        words("ja", "Failed")))
    english = (await world.job(1)).error
    assert english is not None and english.startswith("This server's RunComfy key (…2e51)")
    reason = words("ja", "This server's RunComfy key ({ending}) was refused by RunComfy: "
                   "{reason} Someone with Manage Server can set a new one with "
                   "`/settings runcomfy-key`.").format(
        ending="…2e51", reason=words("ja", "it is not valid (any more)."))
    told = words("ja", "your video could not be made: {reason}").format(reason=reason)
    assert [m.content for m in world.bot_messages(channel)
            if m.content.startswith(f"<@{member.id}>")] == [f"<@{member.id}> {told}"]


async def test_a_video_whose_channel_is_gone_is_told_in_the_servers_language(
        world: World, locales: dict[int, str]) -> None:
    """The video is ready but its channel was deleted: the requester's DM says so in the
    server's language, the reason kept in English on the job."""
    guild = world.env.create_guild("서버", preferred_locale="ko")
    channel = guild.create_text_channel("videos")
    member = guild.add_member(world.env.create_user("minji"))
    world.sim.plan_next(Plan(run_seconds=5))
    assert "#1" in await make(world, member, channel)
    world.env.backend.delete_channel(channel.id)
    await world.run_until(lambda: bool(world.messages(member.user.dm_channel))
                          if member.user.dm_channel else False)
    job = await world.job(1)
    reason = "The channel was deleted or hidden from the bot."
    assert (job.state.value, job.error) == ("undeliverable", reason)
    told = " ".join((
        words("ko", "Your video (job #{job}) is ready, but I could not post it in "
              "<#{channel}>: {reason}").format(job=1, channel=channel.id,
                                               reason=words("ko", reason)),
        words("ko", "Download it here (the link expires): {url}").format(url=job.video_url)))
    assert [m.content for m in world.messages(member.user.dm_channel)] == [told]


async def test_what_show_and_extend_post_is_in_the_servers_language(
        world: World, locales: dict[int, str]) -> None:
    """/show's post and Extend's frame are seen by the channel: the server's language, while
    the member who asked is answered in theirs (English here)."""
    guild = world.env.create_guild("サーバー", preferred_locale="ja")
    channel = guild.create_text_channel("videos")
    member = guild.add_member(world.env.create_user("hana"))
    assert "#1" in await make(world, member, channel)
    await world.run_until(lambda: bool(world.videos(channel)))
    model = (world.card(1, channel).embeds[0].title or "").split(" · ")[0]
    gallery = guild.create_text_channel("gallery")
    shown = await member.slash(gallery, "show", job=1)
    assert shown.response.content == "Job #1 is posted again here."
    [post] = world.bot_messages(gallery)
    assert post.content == words(
        "ja", "Job #{job} ({model}) by <@{user}>, shown again by <@{shown_by}>.").format(
        job=1, model=model, user=member.id, shown_by=member.id)
    assert world.buttons(post) == [words("ja", label) for label in ("Again", "Vary", "Extend")]

    [video] = world.videos(channel)
    form = await member.click(video, label=words("ja", "Extend"))
    assert form.modal is not None and form.modal["title"] == "Extend job #1"
    queued = await member.submit_modal(form, {"prompt": "it lies down"})
    assert queued.response.content.startswith("Job #2 is queued.")
    frame = words("ja", "The last frame of job #{job}, where its extension starts.").format(job=1)
    assert [m.content for m in world.bot_messages(channel) if m.attachments
            and m.attachments[0].filename.endswith("last-frame.png")] == [frame]
