"""The duplicate-post search (``bot/discord/history.py``): after a crash between posting a
card or a video and writing it down, the bot looks in the channel before posting again. It
knows its messages by what they say and what they reply to (Discord, like SimCord, returns
no nonces in a channel's history), and takes no one else's and nothing from before the job."""

from __future__ import annotations

import discord

from bot.discord.history import is_card_of
from bot.jobs import JobState
from bot.message_files import read_catalogs
from bot.simulator import Plan
from tests.discord_world import World
from tests.images import image_bytes

PNG = image_bytes("png", 800, 600)
READY = "your video is ready ({model}, job #{job})."
# The German catalog's words for a posted video, as its file has them.
_GERMAN = dict(read_catalogs())["de"].get(READY)
assert _GERMAN is not None
READY_DE = str(_GERMAN.string)


def posts(world: World) -> int:
    """The bot's posts in the channel so far (cards, videos, news)."""
    path = f"/channels/{world.channel.id}/messages"
    return sum(1 for r in world.env.http_requests if r.method == "POST" and r.path == path)


def cards_of(world: World, job_id: int) -> list[discord.Message]:
    return [m for m in world.bot_messages() if is_card_of(m, job_id)]


def mine(world: World) -> int:
    return int(world.env.backend.bot_user.id)


async def start(world: World, prompt: str) -> None:
    await world.alice.slash(world.channel, "kling-2-1", prompt=prompt, image=("z.png", PNG))


async def test_a_video_in_other_words_replying_to_its_card_is_found(world: World) -> None:
    """A version of the bot whose catalog named the model differently posted the video, then
    died before recording it: its words differ, but it replies to the card with the file."""
    await start(world, "once")
    await world.run_until(lambda: bool(world.videos()))
    [video] = world.videos()
    card = world.card(1)
    world.env.backend.edit_message(world.channel.id, video.id, {
        "content": f"<@{world.alice.id}> your video is ready (Kling v2.1, job #1)."})
    await world.bot.parts.db.write("UPDATE jobs SET state = 'delivering', result_message_id ="
                                   " NULL WHERE id = 1")
    before = posts(world)
    await world.restart()
    await world.run_polls(3)
    assert posts(world) == before  # nothing posted again
    job = await world.job(1)
    assert (job.state, job.result_message_id, job.delivered_as) == (
        JobState.DELIVERED, video.id, "found")
    assert world.card(1).id == card.id
    assert world.card(1).embeds[0].title == "Kling 2.1 Pro · Done"


async def test_look_alikes_older_than_the_job_or_by_others_are_not_taken(world: World) -> None:
    """Job #1 was fetched but its upload never landed, and job #2's card never went out, when
    the bot died. In the channel: what the bot posted for an earlier store's jobs #1 and #2
    (a store started afresh numbers its jobs from 1 again), and what a member and a webhook
    posted that reads like them. The bot posts job #1's video and job #2's card, once each."""
    backend = world.env.backend
    old_video = backend.create_message(
        world.channel.id, mine(world),
        f"<@{world.alice.id}> your video is ready (Kling 2.1 Pro, job #1).",
        attachments=backend.store_attachments(world.channel.id, [("job-1.mp4", b"old")]))
    old_card = backend.create_message(world.channel.id, mine(world), "", embeds=[
        {"title": "Kling 2.1 Pro · Done", "footer": {"text": "Job #2"}}])
    await world.env.advance_time(90)  # later, by more than the 60 s the clocks may differ

    world.sim.plan_next(Plan(), Plan(run_seconds=600))
    await start(world, "the video")
    await start(world, "the card")
    world.env.inject_error("POST", f"/channels/{world.channel.id}/messages", status=500,
                           times=1)
    before = posts(world)
    await world.run_until(lambda: posts(world) > before)  # job #1's upload failed
    assert (await world.job(1)).state is JobState.DELIVERING
    card_of_1 = world.card(1)
    [_, card_of_2] = cards_of(world, 2)
    backend.delete_message(world.channel.id, card_of_2.id)  # as if it never went out
    await world.bot.parts.db.write("UPDATE jobs SET card_message_id = NULL WHERE id = 2")

    ready = f"<@{world.alice.id}> your video is ready (Kling 2.1 Pro, job #1)."
    fake_video = await world.bob.send(world.channel, ready, reply_to=card_of_1,
                                      attachments=[("job-1.mp4", b"not it")])
    hook = world.guild.create_webhook(world.channel, "Copycat")
    fake_card = await hook.send(embed=discord.Embed(title="Kling 2.1 Pro · Queued").set_footer(
        text="Job #2"))
    await world.restart()
    await world.run_until(lambda: len(cards_of(world, 2)) == 2
                          and len(world.videos()) == 2)
    await world.run_polls(3)

    [_, video] = world.videos()
    assert video.id not in (old_video.id, fake_video.id)
    assert await video.attachments[0].read() == world.sim.video
    assert world.replied_to([video]) == [card_of_1.id]
    job = await world.job(1)
    assert (job.state, job.result_message_id, job.delivered_as) == (
        JobState.DELIVERED, video.id, "file")
    [_, card] = cards_of(world, 2)
    assert card.id not in (old_card.id, fake_card.id)
    assert (await world.job(2)).card_message_id == card.id
    assert [m.id for m in world.messages() if is_card_of(m, 2)] == [
        old_card.id, fake_card.id, card.id]
    assert world.buttons(card) == ["Cancel"]


async def test_a_video_posted_in_the_servers_former_language_is_found(world: World) -> None:
    """The server spoke German when the video was posted (not as a reply: the card's id was
    not known), and English by the time the bot came back: the video is known by its words in
    German, and is not posted again."""
    owner = world.guild.add_member(world.env.create_user("owner"), roles=[
        world.guild.create_role("Admins", permissions=discord.Permissions(manage_guild=True))])
    await owner.slash(world.channel, "settings language", language="de")
    await start(world, "auf Deutsch")
    german = f"<@{world.alice.id}> " + READY_DE.format(model="Kling 2.1 Pro", job=1)

    def posted() -> list[discord.Message]:
        return [m for m in world.bot_messages() if m.content.startswith(german)]

    await world.run_until(lambda: bool(posted()))
    [video] = posted()
    backend = world.env.backend
    backend.delete_message(world.channel.id, video.id)
    copy = backend.create_message(
        world.channel.id, mine(world), video.content,
        attachments=backend.store_attachments(world.channel.id, [("job-1.mp4", b"posted")]))
    await world.bot.parts.db.write("UPDATE jobs SET state = 'delivering', result_message_id ="
                                   " NULL WHERE id = 1")
    await owner.slash(world.channel, "settings language", language="server")  # English
    before = posts(world)
    await world.restart()
    await world.run_polls(3)
    assert posts(world) == before  # nothing posted again, in English or German
    assert [m.id for m in world.videos()] == [copy.id]  # the German one only
    job = await world.job(1)
    assert (job.state, job.result_message_id, job.delivered_as) == (
        JobState.DELIVERED, copy.id, "found")
