"""Finding what an earlier life of the bot posted before it could record so (a crash between
posting and writing it down): the duplicate-post search. Discord does not return nonces in a
channel's history, so a message is also known by what it says (in any of the bot's languages:
the server's may have changed since) and what it replies to."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import discord

from bot.i18n import _, catalogs, speaking
from bot.jobs import Job

HISTORY_CHECKED = 50
CLOCK_SLACK = 60.0  # seconds: Discord's clock and ours may differ a little


def is_card_of(message: discord.Message, job_id: int) -> bool:
    footer = message.embeds[0].footer.text if message.embeds else None
    return bool(footer) and str(footer).split(" · ")[0] == f"Job #{job_id}"


def ready_text(job: Job, model_name: str) -> str:
    """The words every posted video of ``job`` says (after the requester's mention), in the
    language in use."""
    return _("your video is ready ({model}, job #{job}).", model=model_name, job=job.id)


def ready_texts(job: Job, model_name: str) -> set[str]:
    """``ready_text`` in every language the bot speaks: the video may have been posted in
    another than the channel's today (``/settings language`` changed in between)."""
    said = set()
    for language in catalogs().languages:
        with speaking(language):
            said.add(ready_text(job, model_name))
    return said


async def find_card(channel: discord.abc.Messageable, me: int, job: Job, nonce: str,
                    since: float) -> int | None:
    """The job's card, if an earlier run sent it (from ``since``, unix seconds)."""
    async for message in _mine_since(channel, me, since):
        if message.nonce == nonce or is_card_of(message, job.id):
            return message.id
    return None


async def find_video(channel: discord.abc.Messageable, me: int, job: Job, nonce: str,
                     model_name: str) -> int | None:
    """The video message, if an earlier run posted it: looked for among the bot's messages
    from the moment RunComfy's video was seen (the post came after it), not from the card,
    which a busy channel may have left far behind."""
    ready = ready_texts(job, model_name)
    async for message in _mine_since(channel, me, job.finished_at or job.updated_at):
        ref = message.reference
        replies_to_card = bool(ref and job.card_message_id
                               and ref.message_id == job.card_message_id)
        if message.nonce == nonce or any(words in message.content for words in ready) or (
                replies_to_card and message.attachments):
            return message.id
    return None


async def _mine_since(channel: discord.abc.Messageable, me: int, since: float,
                      ) -> AsyncIterator[discord.Message]:
    after = discord.Object(discord.utils.time_snowflake(
        datetime.fromtimestamp(since - CLOCK_SLACK, UTC)))
    async for message in channel.history(limit=HISTORY_CHECKED, after=after):
        if message.author.id == me:
            yield message
