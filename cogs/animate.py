"""Animating an image already in the channel: Apps > Animate image, ``/animate`` (with an
upload field), and ``@Bot prompt --flags`` in a reply. All go through ``JobService.request``."""

from __future__ import annotations

import logging
from typing import cast

import discord
from discord import app_commands
from discord.ext import commands

from bot.app import VideoBot
from bot.catalog import ModelSpec
from bot.delivery import check_can_post
from bot.errors import UserError
from bot.images import AttachmentLike, fetch_image
from bot.mentions import parse_mention
from bot.policy import Policy
from cogs.errors import report
from cogs.generate import requester, start_from_interaction

log = logging.getLogger(__name__)
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif", ".tif", ".tiff")
NO_IMAGE = ("That message has no image to animate{detail}. Use Apps > Animate image on a "
            "message with an image, or `/animate` to upload one.")
THREAD_NAME = 90
EMBED_IMAGE_MAX = 50 * 1024 * 1024
Text = discord.ui.TextInput[discord.ui.View]


def is_image(attachment: discord.Attachment) -> bool:
    kind = (attachment.content_type or "").lower()
    return kind.startswith("image/") or attachment.filename.lower().endswith(IMAGE_EXTENSIONS)


ImageSource = AttachmentLike | str  # an attachment, or an embed image's URL (not yet fetched)


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


async def fetched(bot: VideoBot, source: ImageSource) -> AttachmentLike:
    """An embed image downloaded (to be checked like an attachment); attachments as they are."""
    if isinstance(source, str):
        return await fetch_image(bot.http_session(), source, EMBED_IMAGE_MAX)
    return source


def no_image_error(message: discord.Message) -> UserError:
    others = [a.filename for a in message.attachments]
    detail = f" (`{others[0]}` is not an image)" if others else ""
    return UserError(NO_IMAGE.format(detail=detail))


def main_image_option(model: ModelSpec) -> str:
    if model.main_image is None:
        raise UserError(f"`{model.command}` makes videos from text only; it cannot animate an "
                        "image.")
    return model.field(model.main_image).option_name


class AnimateModal(discord.ui.Modal):
    """Prompt, model and duration; plus an upload field when there is no image yet."""

    def __init__(self, bot: VideoBot, policy: Policy, image: ImageSource | None,
                 note: str = "") -> None:
        super().__init__(title="Animate image", timeout=900)
        self.bot = bot
        self.image = image
        self.note = note
        self.default = default = policy.default_model or bot.settings.bot.default_model
        models = [m for m in bot.catalog
                  if m.kind == "image-to-video" and policy.model_enabled(m.command)][:25]
        self.prompt: Text = discord.ui.TextInput(
            style=discord.TextStyle.paragraph, required=False, max_length=2000,
            custom_id="prompt", placeholder="What should happen in the video?")
        self.model = discord.ui.Select[discord.ui.View](custom_id="model", options=[
            discord.SelectOption(label=m.name, value=m.command, description=m.description[:100],
                                 default=m.command == default) for m in models])
        self.duration: Text = discord.ui.TextInput(
            required=False, max_length=3, custom_id="duration",
            placeholder="Seconds; empty for the model's default")
        self.add_item(discord.ui.Label(text="Prompt", component=self.prompt))
        self.add_item(discord.ui.Label(text="Model", component=self.model))
        self.add_item(discord.ui.Label(text="Duration", component=self.duration))
        self.upload: discord.ui.FileUpload[discord.ui.View] | None = None
        if image is None:
            self.upload = discord.ui.FileUpload(custom_id="image", max_values=1)
            self.add_item(discord.ui.Label(text="Image", component=self.upload,
                                           description="The image to animate"))

    async def on_submit(self, interaction: discord.Interaction) -> None:
        model = self.bot.catalog.by_command(self.model.values[0] if self.model.values
                                            else self.default)
        source = self.image or (self.upload.values[0] if self.upload and self.upload.values
                                else None)
        if source is None:
            raise UserError("Pick an image to animate.")
        options: dict[str, object] = {"prompt": self.prompt.value}
        if self.duration.value.strip():
            options["duration"] = self.duration.value
        if isinstance(source, str):  # an embed's image: checked before it is downloaded
            await interaction.response.defer(ephemeral=True, thinking=True)
            assert interaction.guild_id is not None
            await self.bot.parts.jobs.check_before_download(
                model, options, {main_image_option(model): source},
                requester(interaction.guild_id, interaction.channel, interaction.user))
        image = await fetched(self.bot, source)
        await start_from_interaction(self.bot, interaction, model, options,
                                     {main_image_option(model): image}, self.note)

    async def on_error(self, interaction: discord.Interaction,  # type: ignore[override]
                       error: Exception) -> None:
        await report(interaction, error)


class Animate(commands.Cog):
    def __init__(self, bot: VideoBot) -> None:
        self.bot = bot
        self.menu = app_commands.ContextMenu(name="Animate image", callback=self.animate_message)
        self.menu.guild_only = True

    async def cog_load(self) -> None:
        self.bot.tree.add_command(self.menu)

    async def cog_unload(self) -> None:
        self.bot.tree.remove_command(self.menu.name, type=self.menu.type)

    async def animate_message(self, interaction: discord.Interaction,
                              message: discord.Message) -> None:
        images = images_in(message)
        if not images:
            raise no_image_error(message)
        note = (f"\nThat message has {len(images)} images; I used the first one."
                if len(images) > 1 else "")
        policy = await self.bot.parts.policies.get(interaction.guild_id or 0)
        await interaction.response.send_modal(AnimateModal(self.bot, policy, images[0], note))

    @app_commands.command(name="animate", description="Animate an image: pick the model, "
                          "prompt and duration in a form.")
    @app_commands.describe(image="The image to animate (or upload it in the form)")
    @app_commands.guild_only()
    async def animate(self, interaction: discord.Interaction,
                      image: discord.Attachment | None = None) -> None:
        policy = await self.bot.parts.policies.get(interaction.guild_id or 0)
        await interaction.response.send_modal(AnimateModal(self.bot, policy, image))

    @commands.Cog.listener()
    async def on_message(self, message: discord.Message) -> None:
        me = self.bot.user
        if message.author.bot or message.guild is None or me is None:
            return
        if me.id not in message.raw_mentions:  # typed in the text: not a reply's ping
            return
        try:
            await self._animate_mention(message)
        except UserError as exc:
            await message.reply(str(exc), allowed_mentions=discord.AllowedMentions.none())
        except Exception:
            log.exception("a mention could not be handled")
            await message.reply("Something went wrong on the bot's side; it has been logged.",
                                allowed_mentions=discord.AllowedMentions.none())

    async def _animate_mention(self, message: discord.Message) -> None:
        policy = await self.bot.parts.policies.get(message.guild.id if message.guild else 0)
        request = parse_mention(message.content, self.bot.catalog,
                                policy.default_model or self.bot.settings.bot.default_model)
        model = request.model
        source = None if model.main_image is None else await self._mention_image(message)
        channel = message.channel
        assert isinstance(channel, discord.TextChannel | discord.Thread)
        await self.bot.parts.jobs.check_before_download(
            model, request.options, {} if source is None else {main_image_option(model): source},
            requester(channel.guild.id, channel, message.author))
        check_can_post(channel.permissions_for(channel.guild.me),
                       isinstance(channel, discord.Thread))
        attachments: dict[str, AttachmentLike] = {} if source is None else {
            main_image_option(model): await fetched(self.bot, source)}  # checked, then read
        where = await self._thread_for(message, request.options.get("prompt"))
        await self.bot.parts.jobs.request(model, request.options, attachments,
                                          requester(channel.guild.id, where, message.author))

    async def _mention_image(self, message: discord.Message) -> ImageSource:
        own = [a for a in message.attachments if is_image(a)]
        if own:
            return own[0]
        reference = message.reference
        if reference is None or reference.message_id is None:
            raise UserError("Reply to a message with an image (or attach one) when you mention "
                            "me, e.g. `@me a zebra turns its head --model kling-2-1`.")
        target = reference.resolved
        if not isinstance(target, discord.Message):
            target = await message.channel.fetch_message(reference.message_id)
        images = images_in(target)
        if images:
            return images[0]
        if not self.bot.intents.message_content and target.author.id != message.author.id:
            raise UserError(
                "I can't see the images in other messages (the bot runs without Discord's "
                "Message Content intent). Use Apps > Animate image on that message, or attach "
                "the image to your mention.")
        raise no_image_error(target)

    async def _thread_for(self, message: discord.Message,
                          prompt: object) -> discord.TextChannel | discord.Thread:
        """A thread on the member's message for the card and the video, where allowed."""
        channel = message.channel
        assert isinstance(channel, discord.TextChannel | discord.Thread)
        if isinstance(channel, discord.Thread):
            return channel
        name = f"Video: {prompt}" if isinstance(prompt, str) and prompt else "Video"
        try:
            return await message.create_thread(name=name[:THREAD_NAME])
        except discord.HTTPException:
            return channel


async def setup(bot: commands.Bot) -> None:
    await bot.add_cog(Animate(cast(VideoBot, bot)))
