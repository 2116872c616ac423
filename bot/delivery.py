"""Everything the bot says in a channel about a job: the card, the video, the bad news.

Only the bot's own channel messages are used: interaction tokens die after 15 minutes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import tempfile
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import aiohttp
import discord

from bot.cards import card_view, render_card
from bot.creative import loop_view
from bot.errors import UserError
from bot.jobs import Job

log = logging.getLogger(__name__)
_NO_MENTIONS = discord.AllowedMentions.none()
_HISTORY_CHECKED = 50
_CLOCK_SLACK = 60.0  # seconds: Discord's clock and ours may differ a little


NEEDED = discord.Permissions(view_channel=True, send_messages=True, embed_links=True,
                             attach_files=True, read_message_history=True)
# What the invite asks for: the above, and threads for the answers to mentions.
INVITE = NEEDED | discord.Permissions(create_public_threads=True, send_messages_in_threads=True)


def check_can_post(have: discord.Permissions, in_thread: bool) -> None:
    """Refuse (before anything is paid for) when the bot could not deliver here."""
    lacking = [name for name, wanted in NEEDED if wanted and not getattr(have, name)]
    if in_thread and not have.send_messages_in_threads:
        lacking.append("send_messages_in_threads")
    if lacking:
        names = ", ".join(name.replace("_", " ").title() for name in lacking)
        raise UserError(f"I can't post videos in this channel: I need {names}. "
                        "Ask a moderator to give me these permissions here.")


def is_card_of(message: discord.Message, job_id: int) -> bool:
    footer = message.embeds[0].footer.text if message.embeds else None
    return bool(footer) and str(footer).split(" · ")[0] == f"Job #{job_id}"


class ChannelGone(Exception):
    """The channel was deleted or the bot can no longer see it."""


class CannotPost(Exception):
    """The bot may not post in the channel (a 403 from Discord)."""


class VideoGone(UserError):
    """RunComfy's link to a video no longer answers (its links expire)."""

    def __init__(self, job: Job) -> None:
        super().__init__(f"Job #{job.id}'s video is no longer available: RunComfy's link to it "
                         "has expired.")


@dataclass(frozen=True)
class Posted:
    message_id: int
    delivered_as: str  # "file" or "link"


class Delivery:
    def __init__(self, client: discord.Client, session: Callable[[], aiohttp.ClientSession],
                 model_name: Callable[[Job], str], max_download_bytes: int, nonce_tag: str,
                 download_timeout: float = 300.0) -> None:
        self.client = client
        self.nonce_tag = nonce_tag
        self._session = session
        self._model_name = model_name
        self.max_download_bytes = max_download_bytes
        self.download_timeout = download_timeout

    async def channel(self, channel_id: int,
                      guild_id: int | None = None) -> discord.abc.Messageable:
        """The channel (or thread), looked up through its guild when known: discord.py's
        ``get_channel`` searches every guild, milliseconds with thousands of them."""
        guild = self.client.get_guild(guild_id) if guild_id else None
        channel: object = (guild.get_channel_or_thread(channel_id) if guild is not None
                           else self.client.get_channel(channel_id))
        if channel is None:
            try:
                channel = await self.client.fetch_channel(channel_id)
            except discord.NotFound:
                raise ChannelGone(channel_id) from None
            except discord.Forbidden:
                raise CannotPost(channel_id) from None
        if not isinstance(channel, discord.abc.Messageable):
            raise ChannelGone(channel_id)
        return channel

    async def post_card(self, job: Job) -> int:
        """Send the card with a nonce Discord enforces: a resend (after a crash) within a few
        minutes answers the first message instead of posting a second."""
        channel = await self.channel(job.channel_id, job.guild_id)
        view = card_view(job)
        embed = render_card(job, self._model_name(job))
        nonce = self.nonce(job, "card")
        with _discord_errors():
            if view is None:
                message = await channel.send(embed=embed, nonce=nonce,
                                             allowed_mentions=_NO_MENTIONS)
            else:
                message = await channel.send(embed=embed, view=view, nonce=nonce,
                                             allowed_mentions=_NO_MENTIONS)
        return message.id

    async def find_card(self, job: Job, since: float) -> int | None:
        """The job's card, if an earlier run sent it (from ``since``, unix seconds) before it
        could record so."""
        channel = await self.channel(job.channel_id, job.guild_id)
        me = self.client.user
        if me is None or not hasattr(channel, "history"):
            return None
        after = discord.Object(discord.utils.time_snowflake(
            datetime.fromtimestamp(since - _CLOCK_SLACK, UTC)))
        async for message in channel.history(limit=_HISTORY_CHECKED, after=after):
            if message.author.id == me.id and (message.nonce == self.nonce(job, "card")
                                               or is_card_of(message, job.id)):
                return message.id
        return None

    async def edit_card(self, job: Job) -> None:
        if job.card_message_id is None:
            return
        channel = await self.channel(job.channel_id, job.guild_id)
        if not isinstance(channel, discord.TextChannel | discord.Thread | discord.VoiceChannel):
            return
        message = channel.get_partial_message(job.card_message_id)
        with _discord_errors(), contextlib.suppress(discord.NotFound):  # card deleted: fine
            await message.edit(embed=render_card(job, self._model_name(job)),
                               view=card_view(job), allowed_mentions=_NO_MENTIONS)

    async def tell(self, job: Job, text: str) -> None:
        """A reply to the card that pings only the requester."""
        channel = await self.channel(job.channel_id, job.guild_id)
        with _discord_errors():
            await channel.send(f"<@{job.user_id}> {text}", **self._reply_to_card(job))

    async def find_posted(self, job: Job) -> int | None:
        """The video message, if an earlier run posted it before it could record so: looked
        for among the bot's messages from the moment RunComfy's video was seen (the post came
        after it), not from the card, which a busy channel may have left far behind. Discord
        does not return nonces in a channel's history, so the message is known by its reply
        to the card or by its text."""
        channel = await self.channel(job.channel_id, job.guild_id)
        me = self.client.user
        if me is None or not hasattr(channel, "history"):
            return None
        since = job.finished_at or job.updated_at
        after = discord.Object(discord.utils.time_snowflake(
            datetime.fromtimestamp(since - _CLOCK_SLACK, UTC)))
        ready = f"your video is ready ({self._model_name(job)}, job #{job.id})."
        async for message in channel.history(limit=_HISTORY_CHECKED, after=after):
            if message.author.id != me.id:
                continue
            ref = message.reference
            replies_to_card = bool(ref and job.card_message_id
                                   and ref.message_id == job.card_message_id)
            if message.nonce == self.nonce(job) or ready in message.content or (
                    replies_to_card and message.attachments):
                return message.id
        return None

    async def direct_message(self, user_id: int, text: str) -> bool:
        """Whether the member could be told by DM (they may not accept DMs)."""
        try:
            user = self.client.get_user(user_id) or await self.client.fetch_user(user_id)
            await user.send(text, allowed_mentions=_NO_MENTIONS)
        except discord.HTTPException:
            return False
        return True

    async def post_video(self, job: Job, *, as_link: bool = False) -> Posted:
        """Post the video as a file when it fits the guild's limit, else as a link."""
        assert job.video_url is not None
        channel = await self.channel(job.channel_id, job.guild_id)
        if as_link:
            return await self._send(channel, job, file=None)
        limit = getattr(getattr(channel, "guild", None), "filesize_limit", 10 * 1024 * 1024)
        handle, name = tempfile.mkstemp(prefix=f"job-{job.id}-", suffix=".mp4")
        os.close(handle)
        path = Path(name)
        try:
            size = await self._download(job.video_url, path, min(limit, self.max_download_bytes))
            if size is not None:
                try:
                    return await self._send(channel, job, file=path)
                except discord.HTTPException as exc:
                    if exc.status != 413 and exc.code != 40005:
                        raise _translate(exc) from None
                    log.info("job %d: upload refused as too large; posting a link", job.id)
            return await self._send(channel, job, file=None)
        finally:
            await asyncio.to_thread(path.unlink, missing_ok=True)

    async def show(self, job: Job, channel_id: int, shown_by: int) -> Posted:
        """Post a finished job's card and video again, in one message with the loop's buttons,
        in ``channel_id`` (``/show``). Raises ``VideoGone`` when RunComfy's link has expired."""
        assert job.video_url is not None
        channel = await self.channel(channel_id, job.guild_id)
        limit = getattr(getattr(channel, "guild", None), "filesize_limit", 10 * 1024 * 1024)
        text = (f"Job #{job.id} ({self._model_name(job)}) by <@{job.user_id}>, shown again by "
                f"<@{shown_by}>.")
        embed = render_card(job, self._model_name(job))
        async with self.downloaded(job, min(limit, self.max_download_bytes)) as path:
            with _discord_errors():
                if path is not None:
                    try:
                        message = await channel.send(
                            text, embed=embed, view=loop_view(job),
                            file=discord.File(path, filename=f"job-{job.id}.mp4"),
                            allowed_mentions=_NO_MENTIONS)
                        return Posted(message.id, "file")
                    except discord.HTTPException as exc:
                        if exc.status != 413 and exc.code != 40005:
                            raise
                message = await channel.send(
                    f"{text}\nIt is too large to upload here; download it (the link expires): "
                    f"{job.video_url}", embed=embed, view=loop_view(job),
                    allowed_mentions=_NO_MENTIONS)
                return Posted(message.id, "link")

    @contextlib.asynccontextmanager
    async def downloaded(self, job: Job, limit: int) -> AsyncIterator[Path | None]:
        """RunComfy's video of ``job`` in a temporary file, deleted on leaving; ``None`` when
        it is larger than ``limit`` bytes. Raises ``VideoGone`` when the link has expired
        (404, 403 or 410)."""
        assert job.video_url is not None
        handle, name = tempfile.mkstemp(prefix=f"job-{job.id}-", suffix=".mp4")
        os.close(handle)
        path = Path(name)
        try:
            try:
                size = await self._download(job.video_url, path, limit)
            except aiohttp.ClientResponseError as exc:
                if exc.status in (403, 404, 410):
                    raise VideoGone(job) from None
                raise
            yield None if size is None else path
        finally:
            await asyncio.to_thread(path.unlink, missing_ok=True)

    def nonce(self, job: Job, what: Literal["card", "vid"] = "vid") -> str:
        """The same for every attempt at one job's card or video, so Discord can drop a
        repeat; the database's tag keeps another database's job of the same number (a store
        started afresh, a second deployment on the same bot) from matching (25 characters at
        most: job numbers of up to 9 digits)."""
        return f"rc-{self.nonce_tag}-{what}-{job.id}"

    async def _send(self, channel: discord.abc.Messageable, job: Job, *,
                    file: Path | None) -> Posted:
        ready = f"<@{job.user_id}> your video is ready ({self._model_name(job)}, job #{job.id})."
        if job.simulated:
            ready += " (Simulated: a sample video, no credits were spent.)"
        with _discord_errors():
            if file is not None:
                message = await channel.send(
                    ready, file=discord.File(file, filename=f"job-{job.id}.mp4"),
                    view=loop_view(job), nonce=self.nonce(job), **self._reply_to_card(job))
                return Posted(message.id, "file")
            message = await channel.send(
                f"{ready}\nIt is too large to upload here; download it (the link expires): "
                f"{job.video_url}", view=loop_view(job), nonce=self.nonce(job),
                **self._reply_to_card(job))
            return Posted(message.id, "link")

    async def _download(self, url: str, path: Path, limit: int) -> int | None:
        """Stream ``url`` into ``path``; ``None`` as soon as it is known to exceed ``limit``."""
        timeout = aiohttp.ClientTimeout(total=self.download_timeout)
        async with self._session().get(url, timeout=timeout) as response:
            response.raise_for_status()
            if response.content_length is not None and response.content_length > limit:
                return None
            size = 0
            with path.open("wb") as out:
                async for chunk in response.content.iter_chunked(256 * 1024):
                    size += len(chunk)
                    if size > limit:
                        return None
                    out.write(chunk)
        return size

    @staticmethod
    def _reply_to_card(job: Job) -> dict[str, Any]:
        """A reply to the card (when there is one) that pings the requester and no one else."""
        mentions = discord.AllowedMentions(everyone=False, roles=False,
                                           users=[discord.Object(job.user_id)],
                                           replied_user=False)
        if job.card_message_id is None:
            return {"allowed_mentions": mentions}
        reference = discord.MessageReference(message_id=job.card_message_id,
                                             channel_id=job.channel_id, fail_if_not_exists=False)
        return {"allowed_mentions": mentions, "reference": reference}


@contextlib.contextmanager
def _discord_errors() -> Iterator[None]:
    try:
        yield
    except discord.HTTPException as exc:
        if exc.status == 413 or exc.code == 40005:
            raise
        raise _translate(exc) from None


def _translate(exc: discord.HTTPException) -> Exception:
    if isinstance(exc, discord.NotFound) and exc.code in (10003, 0):
        return ChannelGone(str(exc))
    if isinstance(exc, discord.Forbidden):
        return CannotPost(str(exc))
    return exc
