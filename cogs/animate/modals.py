"""The Animate form: prompt, model and duration, plus an upload field when there is no image."""

from __future__ import annotations

import discord

from bot.discord.client import VideoBot
from bot.discord.forms import Form
from bot.discord.interactions import answer_queued, defer, requester_of
from bot.discord.permissions import check_can_post_here
from bot.discord.sources import ImageSource, image_input
from bot.errors import UserError
from bot.i18n import _
from bot.images import main_image_option
from bot.service import JobRequest

Text = discord.ui.TextInput[discord.ui.View]


SERVER_DEFAULT = "default"  # the model choice read from the server's settings after submit


class AnimateModal(Form):
    """Opened as the first answer, before anything is read: the server's default model and
    which models it turned off are read after submit (a model turned off is refused then)."""

    def __init__(self, bot: VideoBot, image: ImageSource | None, note: str = "") -> None:
        super().__init__(title=_("Animate image"), timeout=900, report=bot.parts.errors.report)
        self.bot = bot
        self.image = image
        self.note = note
        models = [m for m in bot.catalog if m.kind == "image-to-video"][:24]
        self.prompt: Text = discord.ui.TextInput(
            style=discord.TextStyle.paragraph, required=False, max_length=2000,
            custom_id="prompt", placeholder=_("What should happen in the video?"))
        self.model = discord.ui.Select[discord.ui.View](custom_id="model", options=[
            discord.SelectOption(label=_("This server's default model"), value=SERVER_DEFAULT,
                                 default=True),
            *(discord.SelectOption(label=m.name, value=m.command,
                                   description=m.description[:100]) for m in models)])
        self.duration: Text = discord.ui.TextInput(
            required=False, max_length=3, custom_id="duration",
            placeholder=_("Seconds; empty for the model's default"))
        self.add_item(discord.ui.Label(text=_("Prompt"), component=self.prompt))
        self.add_item(discord.ui.Label(text=_("Model"), component=self.model))
        self.add_item(discord.ui.Label(text=_("Duration"), component=self.duration))
        self.upload: discord.ui.FileUpload[discord.ui.View] | None = None
        if image is None:
            self.upload = discord.ui.FileUpload(custom_id="image", max_values=1)
            self.add_item(discord.ui.Label(text=_("Image"), component=self.upload,
                                           description=_("The image to animate")))

    async def submitted(self, interaction: discord.Interaction) -> None:
        await defer(interaction)
        chosen = self.model.values[0] if self.model.values else SERVER_DEFAULT
        if chosen == SERVER_DEFAULT:
            policy = await self.bot.parts.policies.get(interaction.guild_id or 0)
            chosen = policy.default_model or self.bot.settings.bot.default_model
        model = self.bot.catalog.by_command(chosen)
        source = self.image or (self.upload.values[0] if self.upload and self.upload.values
                                else None)
        if source is None:
            raise UserError(_("Pick an image to animate."))
        options: dict[str, object] = {"prompt": self.prompt.value}
        if self.duration.value.strip():
            options["duration"] = self.duration.value
        job = await self.bot.parts.jobs.request(JobRequest(
            model, options, requester_of(interaction),
            images={main_image_option(model): image_input(source, self.bot.http_session,
                                                          self.bot.settings.bot.image_hosts)},
            check_place=lambda: check_can_post_here(interaction)))
        await answer_queued(interaction, job, self.note)
