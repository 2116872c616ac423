"""Everything the bot says in a channel about a job: the card, the video, the bad news.

Only the bot's own channel messages are used: interaction tokens die after 15 minutes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import discord
from discord.http import MultipartParameters, handle_message_parameters

from bot.discord.buttons import JobButtons
from bot.discord.cards import render_card
from bot.discord.counted import card_edit
from bot.discord.history import find_card, find_video, ready_text
from bot.downloads import VideoGone, Videos, temp_file_of
from bot.fitting import FitStatus, Fitter, probe
from bot.i18n import N_, _, number, speaking
from bot.jobs import Job

log = logging.getLogger(__name__)
_NO_MENTIONS = discord.AllowedMentions.none()
DEFAULT_UPLOAD_LIMIT = 10 * 1024 * 1024  # a server without boosts
# What a video's message says (in the channel's language) when it is not the file as made.
LINK_TEXT = N_("It is too large to upload here; download it (the link expires): {url}")
UNUPLOADABLE_TEXT = N_("It could not be uploaded here; download it (the link expires): {url}")
FITTING = N_("Fitting the video to this server's upload limit…")
FITTED_TEXT = N_("Fitted to this server's {limit} upload limit; the original ({size}, "
                 "{width}x{height}) is here while RunComfy keeps it: <{url}>")
UNFITTED_TEXT = N_("It is too large to upload here and {reason}; download it (the link "
                   "expires): {url}")
REASONS = {FitStatus.CANNOT_FIT: N_("too long to fit this server's limit"),
           FitStatus.TOO_SLOW: N_("could not be re-encoded in time"),
           FitStatus.FAILED: N_("could not be re-encoded")}


class ChannelGone(Exception):
    """The channel was deleted or the bot can no longer see it."""


class CannotPost(Exception):
    """The bot may not post in the channel (a 403 from Discord)."""


@dataclass(frozen=True)
class Posted:
    message_id: int
    delivered_as: str  # "file" or "link"


def upload_limit(place: object) -> int:
    """The largest file Discord takes in a channel (or a guild): its guild's limit."""
    guild = place if isinstance(place, discord.Guild) else getattr(place, "guild", None)
    return int(getattr(guild, "filesize_limit", DEFAULT_UPLOAD_LIMIT))


def is_too_large(exc: discord.HTTPException) -> bool:
    """Discord refused an upload for its size (413, or its code 40005)."""
    return exc.status == 413 or exc.code == 40005


class Delivery:
    def __init__(self, client: discord.Client, buttons: JobButtons, videos: Videos, fitter: Fitter,
                 model_name: Callable[[Job], str], nonce_tag: str) -> None:
        self.client = client
        self.buttons = buttons
        self.videos = videos
        self.fitter = fitter
        self.nonce_tag = nonce_tag
        self._model_name = model_name
        self.on_card_edit: Callable[[str], None] | None = None  # told each edit's outcome

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
        await self.channel(job.channel_id, job.guild_id)  # there, and a place for messages
        with _discord_errors(), self._card_message(job, nonce=self.nonce(job, "card")) as params:
            data = await self.client.http.send_message(job.channel_id, params=params)
        return int(data["id"])

    async def find_card(self, job: Job, since: float) -> int | None:
        """The job's card, if an earlier run sent it (from ``since``, unix seconds) before it
        could record so."""
        channel = await self.channel(job.channel_id, job.guild_id)
        me = self.client.user
        if me is None:
            return None
        return await find_card(channel, me.id, job, self.nonce(job, "card"), since)

    async def find_posted(self, job: Job) -> int | None:
        """The video message, if an earlier run posted it before it could record so."""
        channel = await self.channel(job.channel_id, job.guild_id)
        me = self.client.user
        if me is None:
            return None
        return await find_video(channel, me.id, job, self.nonce(job), self._model_name(job))

    async def edit_card(self, job: Job, note: str | None = None) -> None:
        if job.card_message_id is None:
            return
        channel = await self.channel(job.channel_id, job.guild_id)
        if not isinstance(channel, discord.TextChannel | discord.Thread | discord.VoiceChannel):
            return
        counted = card_edit(self.on_card_edit)
        with _discord_errors(), contextlib.suppress(discord.NotFound), counted, \
                self._card_message(job, note) as params:  # gone: fine
            await self.client.http.edit_message(channel.id, job.card_message_id,
                                                params=params)

    def _card_message(self, job: Job, note: str | None = None, *,
                      nonce: str | None = None) -> MultipartParameters:
        """The card as discord.py's ``Messageable.send`` and ``Message.edit`` send it, for its
        HTTP client directly: of Discord's answer only the id is read, not made into a
        ``Message`` (its embed, author and components). The buttons are dynamic items,
        registered once, so no view is kept per card either."""
        return handle_message_parameters(
            embed=render_card(job, self._model_name(job), note), nonce=nonce,
            view=self.buttons.card_view(job), allowed_mentions=_NO_MENTIONS,
            previous_allowed_mentions=self.client.allowed_mentions)

    async def tell(self, job: Job, text: str) -> None:
        """A reply to the card that pings only the requester."""
        channel = await self.channel(job.channel_id, job.guild_id)
        with _discord_errors():
            await channel.send(f"<@{job.user_id}> {text}", **self._reply_to_card(job))

    async def direct_message(self, user_id: int, text: str) -> bool:
        """Whether the member could be told by DM (they may not accept DMs)."""
        try:
            user = self.client.get_user(user_id) or await self.client.fetch_user(user_id)
            await user.send(text, allowed_mentions=_NO_MENTIONS)
        except discord.HTTPException:
            return False
        return True

    async def post_video(self, job: Job, *, as_link: bool = False) -> Posted:
        """Post the video as a file when it fits the guild's limit; else fitted to it
        (re-encoded in a worker process, the card saying so meanwhile), with the original's
        link; else as a link, saying why."""
        channel = await self.channel(job.channel_id, job.guild_id)
        text = f"<@{job.user_id}> {ready_text(job, self._model_name(job))}"
        if job.simulated:
            text += " " + _("(Simulated: a sample video, no credits were spent.)")
        extra = {"view": self.buttons.loop_view(job), "nonce": self.nonce(job),
                 **self._reply_to_card(job)}
        if as_link:  # uploads kept failing
            return await self._post(channel, job, text, None, extra,
                                    _(UNUPLOADABLE_TEXT, url=job.video_url))
        limit = upload_limit(channel)
        async with self.videos.fetched(job, expired_is_gone=False) as path:
            size = None if path is None else (await asyncio.to_thread(path.stat)).st_size
            if path is None or size is None or size <= limit:
                return await self._post(channel, job, text, path, extra)
            if self.fitter.workers:
                await self.edit_card(job, _(FITTING))
            outcome = await self.fitter.fit(path, limit)
            if outcome.status is FitStatus.OFF:
                return await self._post(channel, job, text, None, extra)
            if outcome.status is not FitStatus.FITTED or outcome.path is None:
                log.warning("job %d: its video was not fitted (%s: %s)", job.id,
                            outcome.status, outcome.reason)
                reason = _(REASONS.get(outcome.status, REASONS[FitStatus.FAILED]))
                return await self._post(channel, job, text, None, extra,
                                        _(UNFITTED_TEXT, reason=reason, url=job.video_url))
            try:
                original = await asyncio.to_thread(probe, path)
                said = _(FITTED_TEXT, limit=_megabytes(limit), size=_megabytes(size),
                         width=original.width, height=original.height, url=job.video_url)
                return await self._post(channel, job, f"{text}\n{said}", outcome.path, extra)
            finally:
                await asyncio.to_thread(outcome.path.unlink, missing_ok=True)

    async def show(self, job: Job, channel_id: int, shown_by: int, language: str) -> Posted:
        """Post a finished job's card and video again, in one message with the loop's buttons,
        in ``channel_id`` (``/show``), in the channel's ``language``: RunComfy's file, else
        (its link expired) the copy posted in Discord. Raises ``VideoGone`` (in the member's
        language) when neither is there."""
        channel = await self.channel(channel_id, job.guild_id)
        limit, model = upload_limit(channel), self._model_name(job)

        async def post(path: Path | None) -> Posted:
            with speaking(language):
                text = _("Job #{job} ({model}) by <@{user}>, shown again by <@{shown_by}>.",
                         job=job.id, model=model, user=job.user_id, shown_by=shown_by)
                extra = {"embed": render_card(job, model),
                         "view": self.buttons.loop_view(job), "allowed_mentions": _NO_MENTIONS}
                return await self._post(channel, job, text, path, extra)

        try:
            async with self.videos.fetched(job, limit) as path:
                return await post(path)
        except VideoGone:
            async with self.posted_copy(job, limit) as kept:
                return await post(kept)

    @contextlib.asynccontextmanager
    async def posted_copy(self, job: Job, limit: int) -> AsyncIterator[Path | None]:
        """The video as the bot posted it in Discord (which keeps it after RunComfy's link
        expires), in a temporary file; the message is fetched again, for fresh signed CDN
        links. ``None`` when larger than ``limit``; ``VideoGone`` when there is no such copy."""
        if job.result_message_id is None or job.delivered_as != "file":
            raise VideoGone(job)
        try:
            channel = await self.channel(job.channel_id, job.guild_id)
            message = await channel.fetch_message(job.result_message_id)
            video = next(a for a in message.attachments if a.filename.endswith(".mp4"))
            data = None if video.size > limit else await video.read()
        except (discord.HTTPException, ChannelGone, CannotPost, StopIteration):
            raise VideoGone(job) from None
        if data is None:
            yield None
            return
        async with temp_file_of(data, f"job-{job.id}-") as path:
            yield path

    def nonce(self, job: Job, what: Literal["card", "vid"] = "vid") -> str:
        """The same for every attempt at one job's card or video, so Discord can drop a
        repeat; the database's tag keeps another database's job of the same number (a store
        started afresh, a second deployment on the same bot) from matching (25 characters at
        most: job numbers of up to 9 digits)."""
        return f"rc-{self.nonce_tag}-{what}-{job.id}"

    async def _post(self, channel: discord.abc.Messageable, job: Job, text: str,
                    path: Path | None, extra: dict[str, Any],
                    link_text: str | None = None) -> Posted:
        """The one way a video is posted: as a file (``path``) when there is one and Discord
        takes it, else as RunComfy's link, saying why (``link_text``, with the link; by
        default: too large)."""
        with _discord_errors():
            if path is not None:
                try:
                    message = await channel.send(
                        text, file=discord.File(path, filename=f"job-{job.id}.mp4"), **extra)
                    return Posted(message.id, "file")
                except discord.HTTPException as exc:
                    if not is_too_large(exc):
                        raise
                    log.info("job %d: upload refused as too large; posting a link", job.id)
            if link_text is None:
                link_text = _(LINK_TEXT, url=job.video_url)
            message = await channel.send(f"{text}\n{link_text}", **extra)
            return Posted(message.id, "link")

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


def _megabytes(size: int) -> str:
    """``9.5 MB`` (one decimal, as English writes it: ``10.0 MB``)."""
    return _("{size} MB", size=number(round(size / (1024 * 1024), 1)))


@contextlib.contextmanager
def _discord_errors() -> Iterator[None]:
    try:
        yield
    except discord.HTTPException as exc:
        if is_too_large(exc):
            raise
        if isinstance(exc, discord.NotFound) and exc.code in (10003, 0):
            raise ChannelGone(str(exc)) from None
        if isinstance(exc, discord.Forbidden):
            raise CannotPost(str(exc)) from None
        raise
