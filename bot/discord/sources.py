"""Where a new job's images come from on Discord, as ``ImageInput``s for ``JobService.request``:
an attachment; an image already in the channel (an attachment, or an embed's by URL); the
images of the job whose Again or Vary was pressed; and, for Extend, its video's last frame,
posted in the channel so RunComfy can fetch it. Nothing is downloaded until the service asks."""

from __future__ import annotations

import contextlib
import io
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path

import aiohttp
import discord

from bot.catalog import ImageRules, ModelSpec
from bot.creative import ending_frame
from bot.discord.delivery import upload_limit
from bot.downloads import Videos, temp_file_of
from bot.errors import UserError
from bot.i18n import N_, _, speaking
from bot.images import (
    AttachmentLike,
    DownloadFailed,
    FetchedImage,
    ImageInput,
    PendingImage,
    fetch_image,
    file_name,
)
from bot.jobs import Job

log = logging.getLogger(__name__)
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif", ".tif", ".tiff")
NO_IMAGE = N_("That message has no image to animate{detail}. Use Apps > Animate image on a "
              "message with an image, or `/animate` to upload one.")
EMBED_IMAGE_MAX = 50 * 1024 * 1024
ImageSource = AttachmentLike | str  # an attachment, or an embed image's URL (not yet fetched)


def is_image(attachment: discord.Attachment) -> bool:
    kind = (attachment.content_type or "").lower()
    return kind.startswith("image/") or attachment.filename.lower().endswith(IMAGE_EXTENSIONS)


def images_in(message: discord.Message) -> list[ImageSource]:
    """The message's images, attachments first, then embed images by URL: nothing is
    downloaded here, so an interaction can be answered at once."""
    found: list[ImageSource] = [a for a in message.attachments if is_image(a)]
    if found:
        return found
    return [url for e in message.embeds if (url := embed_image_url(e))]


def embed_image_url(embed: discord.Embed) -> str | None:
    """The embed's image as Discord's media proxy serves it, when Discord gave one: a link
    preview's own URL may point anywhere (even inside the bot's network), and the bot
    downloads it."""
    for image in (embed.image, embed.thumbnail):
        if image.proxy_url or image.url:
            return image.proxy_url or image.url
    return None


def no_image_error(message: discord.Message) -> UserError:
    others = [a.filename for a in message.attachments]
    detail = " " + _("(`{file}` is not an image)", file=others[0]) if others else ""
    return UserError(_(NO_IMAGE, detail=detail))


def image_input(source: ImageSource, session: Callable[[], aiohttp.ClientSession],
                hosts: Sequence[str]) -> ImageInput:
    """An attachment as it is; an embed's image checked by URL first, downloaded after, from
    ``hosts`` only (Discord's media proxy), at most ``EMBED_IMAGE_MAX`` bytes."""
    if not isinstance(source, str):
        return ImageInput(source)

    async def fetch() -> AttachmentLike:
        return await fetch_image(session(), source, EMBED_IMAGE_MAX, hosts)

    return ImageInput(PendingImage(source), fetch=fetch)


async def mention_image(message: discord.Message, content_intent: bool) -> ImageSource:
    """The image a mention asks to animate: its own, else the one of the message it replies
    to (whose content the bot sees only with the Message Content intent, or when that message
    is the bot's own or mentions it)."""
    own = [a for a in message.attachments if is_image(a)]
    if own:
        return own[0]
    reference = message.reference
    if reference is None or reference.message_id is None:
        raise UserError(_("Reply to a message with an image (or attach one) when you mention "
                          "me, e.g. `@me a zebra turns its head --model kling-2-1`."))
    target = reference.resolved
    if not isinstance(target, discord.Message):
        target = await message.channel.fetch_message(reference.message_id)
    images = images_in(target)
    if images:
        return images[0]
    me = message.guild.me if message.guild is not None else None
    shown_to_me = me is not None and (target.author.id == me.id or me.id in target.raw_mentions)
    if not content_intent and not shown_to_me:  # Discord hid its attachments from the bot
        raise UserError(_(
            "I can't see the images in other messages (the bot runs without Discord's "
            "Message Content intent). Use Apps > Animate image on that message, or attach "
            "the image to your mention."))
    raise no_image_error(target)


def parent_image(session: Callable[[], aiohttp.ClientSession], parent: Job, url: str,
                 hosts: Sequence[str]) -> ImageInput:
    """One of the parent job's images, downloaded again to be checked as an attachment is:
    as an embed's image is, from ``hosts`` only (every redirect too), streamed and cut off
    past ``EMBED_IMAGE_MAX`` bytes (a media-proxy URL's content may have changed since)."""
    name = file_name(url)

    async def fetch() -> AttachmentLike:
        try:
            return await fetch_image(session(), url, EMBED_IMAGE_MAX, hosts)
        except DownloadFailed:
            raise UserError(_("Job #{job}'s image `{file}` can no longer be downloaded "
                              "(Discord's links expire); start a new video with it attached.",
                              job=parent.id, file=name)) from None

    return ImageInput(PendingImage(url), fetch=fetch)


class LastFrame:
    """Extend's start image: the parent video's last frame, posted in the channel (as a reply
    to the pressed video) so that RunComfy can fetch it, and deleted again when the new job is
    refused before it is written down."""

    def __init__(self, parent: Job, model: ModelSpec, channel: object,
                 pressed: discord.Message | None, videos: Videos, guild: object,
                 language: str) -> None:
        """``language``: the channel's, which the frame's line is in."""
        assert model.main_image is not None
        rules = model.field(model.main_image).image or ImageRules()
        self.parent = parent
        self.channel = channel
        self.pressed = pressed
        self.videos = videos
        self.limit = min(upload_limit(guild), rules.download_cap - 1)
        self.language = language
        self.posted: discord.Message | None = None

    def as_input(self) -> ImageInput:
        return ImageInput(PendingImage(""), fetch=self.fetch, publish=self.publish,
                          withdraw=self.withdraw)

    async def fetch(self) -> AttachmentLike:
        async with self._video_file() as path:
            frame = await ending_frame(path, self.limit)
        name = f"job-{self.parent.id}-last-frame.{'png' if frame.format == 'png' else 'jpg'}"
        return FetchedImage(url="", filename=name, size=len(frame.data),
                            content_type=frame.content_type, data=frame.data,
                            width=frame.width, height=frame.height)

    async def publish(self, frame: AttachmentLike) -> AttachmentLike:
        channel = self.channel
        if not isinstance(channel, discord.abc.Messageable):
            raise UserError(_("I can't post the frame here."))
        file = discord.File(io.BytesIO(await frame.read()), filename=frame.filename)
        with speaking(self.language):
            text = _("The last frame of job #{job}, where its extension starts.",
                     job=self.parent.id)
        none = discord.AllowedMentions.none()
        pressed = self.pressed
        if pressed is None:
            self.posted = await channel.send(text, file=file, allowed_mentions=none)
        else:
            reference = discord.MessageReference(message_id=pressed.id,
                                                 channel_id=pressed.channel.id,
                                                 fail_if_not_exists=False)
            self.posted = await channel.send(text, file=file, allowed_mentions=none,
                                             reference=reference)
        return self.posted.attachments[0]

    async def withdraw(self) -> None:
        if self.posted is not None:
            with contextlib.suppress(discord.HTTPException):
                await self.posted.delete()

    @contextlib.asynccontextmanager
    async def _video_file(self) -> AsyncIterator[Path]:
        """The parent's video in a file: the copy posted on the message whose button was
        pressed (Discord keeps it), else RunComfy's (whose link expires)."""
        parent = self.parent
        posted = next((a for a in (self.pressed.attachments if self.pressed else [])
                       if (a.content_type or "").startswith("video/")
                       or a.filename.lower().endswith(".mp4")), None)
        data = None
        if posted is not None:
            try:
                data = await posted.read()
            except discord.HTTPException:
                log.info("job %d: its posted video could not be read; using RunComfy's",
                         parent.id)
        if data is not None:
            async with temp_file_of(data, f"job-{parent.id}-") as path:
                yield path
            return
        if parent.video_url is None:
            raise UserError(_("Job #{job} has no video to extend.", job=parent.id))
        async with self.videos.fetched(parent) as found:
            if found is None:
                raise UserError(_("Job #{job}'s video is too large to extend here.",
                                  job=parent.id))
            yield found
