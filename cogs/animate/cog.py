"""The Animate cog: the message menu, ``/animate`` and mentions. Each starts its job through
``JobService.request``; the images come from ``bot.discord.sources``."""

from __future__ import annotations

import logging

import discord
from discord import app_commands
from discord.ext import commands

from bot.discord.client import VideoBot
from bot.discord.interactions import requester
from bot.discord.permissions import check_can_post
from bot.discord.sources import image_input, images_in, mention_image, no_image_error
from bot.errors import UserError
from bot.i18n import _, ngettext, speak
from bot.images import main_image_option
from bot.mentions import parse_mention
from bot.service import JobRequest, Requester
from cogs.animate.modals import AnimateModal

log = logging.getLogger(__name__)
THREAD_NAME = 90


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
        note = "\n" + ngettext("That message has {n} image; I used the first one.",
                               "That message has {n} images; I used the first one.",
                               len(images)) if len(images) > 1 else ""
        await interaction.response.send_modal(AnimateModal(self.bot, images[0], note))

    @app_commands.command(name="animate", description="Animate an image: pick the model, "
                          "prompt and duration in a form.")
    @app_commands.describe(image="The image to animate (or upload it in the form)")
    @app_commands.guild_only()
    async def animate(self, interaction: discord.Interaction,
                      image: discord.Attachment | None = None) -> None:
        await interaction.response.send_modal(AnimateModal(self.bot, image))

    @commands.Cog.listener()
    async def on_message(self, message: discord.Message) -> None:
        me = self.bot.user
        if message.author.bot or message.guild is None or me is None:
            return
        if me.id not in message.raw_mentions:  # typed in the text: not a reply's ping
            return
        try:
            speak(await self.bot.languages.of(message.guild.id))  # answered in the channel
            await self._animate_mention(message)
        except UserError as exc:
            await message.reply(str(exc), allowed_mentions=discord.AllowedMentions.none())
        except Exception:
            log.exception("a mention could not be handled")
            await message.reply(_("Something went wrong on the bot's side; it has been logged."),
                                allowed_mentions=discord.AllowedMentions.none())

    async def _animate_mention(self, message: discord.Message) -> None:
        """The card and the video go to a thread on the member's message, made once the
        image is there."""
        policy = await self.bot.parts.policies.get(message.guild.id if message.guild else 0)
        request = parse_mention(message.content, self.bot.catalog,
                                policy.default_model or self.bot.settings.bot.default_model)
        model = request.model
        source = None if model.main_image is None else await mention_image(
            message, self.bot.intents.message_content)
        channel = message.channel
        assert isinstance(channel, discord.TextChannel | discord.Thread)
        have = channel.permissions_for(channel.guild.me)
        # A thread only where the bot may make one and post in it (checked before paying: a
        # video in a thread it cannot post in would be paid for and undeliverable).
        in_thread = not isinstance(channel, discord.Thread) and have.create_public_threads \
            and have.send_messages_in_threads

        async def settle() -> Requester:
            where = await self._thread_for(message, request.options.get("prompt")) \
                if in_thread else channel
            return requester(channel.guild.id, where, message.author)

        await self.bot.parts.jobs.request(JobRequest(
            model, request.options, requester(channel.guild.id, channel, message.author),
            images={} if source is None else {
                main_image_option(model): image_input(source, self.bot.http_session,
                                                     self.bot.settings.bot.image_hosts)},
            check_place=lambda: check_can_post(have, isinstance(channel, discord.Thread)),
            settle=settle))

    async def _thread_for(self, message: discord.Message,
                          prompt: object) -> discord.TextChannel | discord.Thread:
        """A thread on the member's message for the card and the video (else the channel)."""
        channel = message.channel
        assert isinstance(channel, discord.TextChannel)
        name = _("Video: {prompt}", prompt=prompt) if isinstance(prompt, str) and prompt \
            else _("Video")
        try:
            return await message.create_thread(name=name[:THREAD_NAME])
        except discord.HTTPException:
            return channel
