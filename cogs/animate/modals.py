"""The Animate form: prompt, model and duration, plus an upload field when there is no image."""

from __future__ import annotations

import discord

from bot.discord.client import VideoBot
from bot.discord.interactions import answer_queued, defer, requester_of
from bot.discord.permissions import check_can_post_here
from bot.discord.sources import ImageSource, image_input
from bot.errors import UserError
from bot.images import main_image_option
from bot.policy import Policy
from bot.service import JobRequest

Text = discord.ui.TextInput[discord.ui.View]


class AnimateModal(discord.ui.Modal):
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
        await defer(interaction)
        job = await self.bot.parts.jobs.request(JobRequest(
            model, options, requester_of(interaction),
            images={main_image_option(model): image_input(source, self.bot.http_session,
                                                          self.bot.settings.bot.image_hosts)},
            check_place=lambda: check_can_post_here(interaction)))
        await answer_queued(interaction, job, self.note)

    async def on_error(self, interaction: discord.Interaction,  # type: ignore[override]
                       error: Exception) -> None:
        await self.bot.parts.errors.report(interaction, error)
