"""The creative loop: the **Again**, **Vary** and **Extend** buttons under every video, and
``/show``. Each new job goes through ``JobService`` (``check_before_download``, then
``request``) like a slash command: the same validation, rules, quota and budget."""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import os
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING, cast

import aiohttp
import discord
from discord import app_commands
from discord.ext import commands

from bot.app import VideoBot, is_moderator
from bot.catalog import ImageRules, ModelSpec
from bot.creative import (
    LOOP_COG,
    again_options,
    can_extend,
    extend_options,
    image_urls,
    options_of,
    prompt_field,
    vary_fields,
)
from bot.delivery import check_can_post
from bot.errors import UserError
from bot.images import FetchedImage
from bot.jobs import Job, JobState
from bot.lineage import Lineage, Origin
from bot.service import JobRefused, Requester
from cogs.errors import report
from cogs.generate import queued_text, requester
from cogs.jobs import job_choices

if TYPE_CHECKING:
    from bot.frames import Frame

log = logging.getLogger(__name__)
SHOWABLE = (JobState.DELIVERED, JobState.UNDELIVERABLE)  # finished, with a video
FORM_TIMEOUT = 900
TEXT_MAX = 4000  # Discord's longest text input
LABEL_MAX = 45
Text = discord.ui.TextInput[discord.ui.View]
Select = discord.ui.Select[discord.ui.View]


class Creative(commands.Cog, name=LOOP_COG):
    def __init__(self, bot: VideoBot) -> None:
        self.bot = bot

    async def pressed(self, interaction: discord.Interaction, origin: Origin,
                      job_id: int) -> None:
        """A button under a video (``bot.creative.LoopHandler``)."""
        try:
            if origin is Origin.AGAIN:
                await interaction.response.defer(ephemeral=True, thinking=True)
                job = await self._job_for(interaction, job_id, "make it again")
                model = self._model_of(job)
                await self.start(interaction, job, model, again_options(model, job.body),
                                 Origin.AGAIN)
            else:
                await self._open_form(interaction, origin, job_id)
        except Exception as exc:  # refusals, and the unexpected (logged): always an answer
            await report(interaction, exc)

    async def _open_form(self, interaction: discord.Interaction, origin: Origin,
                         job_id: int) -> None:
        """Vary and Extend answer with a form (which must be the first answer): only the
        job itself is read before it."""
        job = await self._job_for(interaction, job_id,
                                  "vary it" if origin is Origin.VARY else "extend it")
        model = self._model_of(job)
        modal: discord.ui.Modal
        if origin is Origin.VARY:
            modal = VaryModal(self, job, model)
        else:
            if not can_extend(model):
                raise UserError(
                    f"`{model.command}` makes videos from text only: it has no start image to "
                    f"continue from, so job #{job.id} cannot be extended. Try Again or Vary.")
            modal = ExtendModal(self, job, model, interaction.message)
        await interaction.response.send_modal(modal)

    async def start(self, interaction: discord.Interaction, parent: Job, model: ModelSpec,
                    options: dict[str, object], origin: Origin) -> None:
        """Again and Vary: the parent's images with ``options``. The options and the rules are
        checked before the images are downloaded again (from Discord), the images after."""
        if not interaction.response.is_done():
            await interaction.response.defer(ephemeral=True, thinking=True)
        who = self._who(interaction)
        jobs = self.bot.parts.jobs
        urls = image_urls(model, parent.body)
        await jobs.check_before_download(model, options, urls, who)
        self._check_can_post(interaction)
        images = {name: await self._image(parent, url) for name, url in urls.items()}
        job = await jobs.request(model, options, images, who,
                                 lineage=Lineage(parent.id, origin))
        await interaction.edit_original_response(content=queued_text(job.id))

    async def extend(self, interaction: discord.Interaction, parent: Job, model: ModelSpec,
                     prompt: str, pressed: discord.Message | None) -> None:
        """The parent video's last frame, posted in the channel (so RunComfy can fetch it),
        starts a new job with ``prompt`` and the parent's other options."""
        await interaction.response.defer(ephemeral=True, thinking=True)
        assert model.main_image is not None
        who = self._who(interaction)
        jobs = self.bot.parts.jobs
        options = extend_options(model, parent.body, prompt)
        start = model.field(model.main_image)
        await jobs.check_before_download(model, options, {start.option_name: ""}, who)
        self._check_can_post(interaction)
        limit = min(self._upload_limit(interaction),
                    (start.image or ImageRules()).download_cap - 1)
        frame = await self._last_frame(parent, pressed, limit)
        name = f"job-{parent.id}-last-frame.{'png' if frame.format == 'png' else 'jpg'}"
        jobs.precheck(model, options, {start.option_name: FetchedImage(  # before posting it
            url="", filename=name, size=len(frame.data), content_type=frame.content_type,
            data=frame.data, width=frame.width, height=frame.height)})
        posted = await self._post_frame(interaction, parent, frame, name, pressed)
        try:
            job = await jobs.request(model, options, {start.option_name: posted.attachments[0]},
                                     who, lineage=Lineage(parent.id, Origin.EXTEND))
        except UserError as exc:
            if not isinstance(exc, JobRefused):  # refused before it was written down
                with contextlib.suppress(discord.HTTPException):
                    await posted.delete()  # (a refused job keeps its start image)
            raise
        await interaction.edit_original_response(content=queued_text(job.id))

    @app_commands.command(name="show",
                          description="Post a finished video again here, with its buttons.")
    @app_commands.describe(job="The job's number (see /jobs)")
    @app_commands.guild_only()
    async def show(self, interaction: discord.Interaction, job: int) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)  # it downloads
        found = await self._job_for(interaction, job, "show it")
        if found.state not in SHOWABLE or found.video_url is None:
            raise UserError(f"Job #{job} has no video to show: it is "
                            f"{found.state.label.lower()}.")
        self._check_can_post(interaction)
        assert interaction.channel_id is not None
        await self.bot.parts.delivery.show(found, interaction.channel_id, interaction.user.id)
        await interaction.edit_original_response(content=f"Job #{job} is posted again here.")

    @show.autocomplete("job")
    async def show_choices(self, interaction: discord.Interaction,
                           current: str) -> list[app_commands.Choice[int]]:
        return await job_choices(self.bot, interaction, current, SHOWABLE)

    async def _job_for(self, interaction: discord.Interaction, job_id: int, action: str) -> Job:
        """The job, if it is this guild's and the member may use it: its requester or a
        moderator (Manage Messages)."""
        job = await self.bot.parts.store.get(job_id)
        if job is None or job.guild_id != interaction.guild_id:
            raise UserError(f"There is no job #{job_id} in this server.")
        if job.user_id != interaction.user.id and not is_moderator(interaction):
            raise UserError(f"Only the member who asked for job #{job_id} or a moderator "
                            f"(Manage Messages) can {action}.")
        return job

    def _model_of(self, job: Job) -> ModelSpec:
        model = self.bot.catalog.by_id(job.model_id)
        if model is None:
            raise UserError(f"Job #{job.id}'s model is no longer offered here.")
        return model

    @staticmethod
    def _who(interaction: discord.Interaction) -> Requester:
        assert interaction.guild_id is not None
        return requester(interaction.guild_id, interaction.channel, interaction.user)

    @staticmethod
    def _check_can_post(interaction: discord.Interaction) -> None:
        check_can_post(interaction.app_permissions,
                       isinstance(interaction.channel, discord.Thread))

    @staticmethod
    def _upload_limit(interaction: discord.Interaction) -> int:
        guild = interaction.guild
        return guild.filesize_limit if guild is not None else 10 * 1024 * 1024

    async def _image(self, parent: Job, url: str) -> FetchedImage:
        """One of the parent's images, downloaded again to be checked as an attachment is."""
        name = url.split("?")[0].rstrip("/").rsplit("/", 1)[-1] or "image"
        try:
            data = await self.bot.http.get_from_cdn(url)
        except (discord.HTTPException, aiohttp.ClientError, TimeoutError):
            raise UserError(f"Job #{parent.id}'s image `{name}` can no longer be downloaded "
                            "(Discord's links expire); start a new video with it attached."
                            ) from None
        return FetchedImage(url=url, filename=name, size=len(data), content_type=None,
                            data=data)

    async def _last_frame(self, parent: Job, pressed: discord.Message | None,
                          limit: int) -> Frame:
        from bot.frames import encode_frame, last_frame  # PyAV only when a video is extended

        async with self._video_file(parent, pressed) as path:
            image = await asyncio.to_thread(last_frame, path)
        return await asyncio.to_thread(encode_frame, image, limit)

    @contextlib.asynccontextmanager
    async def _video_file(self, parent: Job,
                          pressed: discord.Message | None) -> AsyncIterator[Path]:
        """The parent's video in a file: the copy posted on the message whose button was
        pressed (Discord keeps it), else RunComfy's (whose link expires)."""
        posted = next((a for a in (pressed.attachments if pressed else [])
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
            handle, name = tempfile.mkstemp(prefix=f"job-{parent.id}-", suffix=".mp4")
            path = Path(name)
            try:
                await asyncio.to_thread(_write, handle, data)
                yield path
            finally:
                await asyncio.to_thread(path.unlink, missing_ok=True)
            return
        if parent.video_url is None:
            raise UserError(f"Job #{parent.id} has no video to extend.")
        delivery = self.bot.parts.delivery
        async with delivery.downloaded(parent, delivery.max_download_bytes) as found:
            if found is None:
                raise UserError(f"Job #{parent.id}'s video is too large to extend here.")
            yield found

    async def _post_frame(self, interaction: discord.Interaction, parent: Job, frame: Frame,
                          name: str, pressed: discord.Message | None) -> discord.Message:
        """The frame as a message in the channel: its attachment is the new job's start
        image, at a URL RunComfy can fetch."""
        channel = interaction.channel
        if not isinstance(channel, discord.abc.Messageable):
            raise UserError("I can't post the frame here.")
        file = discord.File(io.BytesIO(frame.data), filename=name)
        text = f"The last frame of job #{parent.id}, where its extension starts."
        none = discord.AllowedMentions.none()
        if pressed is None:
            return await channel.send(text, file=file, allowed_mentions=none)
        reference = discord.MessageReference(message_id=pressed.id, channel_id=pressed.channel.id,
                                             fail_if_not_exists=False)
        return await channel.send(text, file=file, allowed_mentions=none, reference=reference)


def _write(handle: int, data: bytes) -> None:
    with os.fdopen(handle, "wb") as out:
        out.write(data)


def _label(text: str) -> str:
    return text if len(text) <= LABEL_MAX else text[: LABEL_MAX - 1] + "…"


class VaryModal(discord.ui.Modal):
    """The prompt and the options a member is likely to change, prefilled; the same image."""

    def __init__(self, cog: Creative, job: Job, model: ModelSpec) -> None:
        super().__init__(title=f"Vary job #{job.id}", timeout=FORM_TIMEOUT)
        self.cog = cog
        self.job = job
        self.model = model
        self.inputs: dict[str, Text | Select] = {}
        prompt = prompt_field(model)
        if prompt is not None:
            current = job.body.get(prompt.name)
            self._add(prompt.title or "Prompt", discord.ui.TextInput(
                style=discord.TextStyle.paragraph, custom_id=prompt.option_name,
                required=prompt.required, max_length=min(prompt.max_length or TEXT_MAX, TEXT_MAX),
                default=current if isinstance(current, str) and current else None))
        for field in vary_fields(model):
            current = job.body.get(field.name)
            item: Text | Select
            if field.enum is not None and len(field.enum) <= 25:
                item = discord.ui.Select(custom_id=field.option_name, options=[
                    discord.SelectOption(label=str(value), value=str(value),
                                         default=value == current) for value in field.enum])
            else:
                item = discord.ui.TextInput(
                    custom_id=field.option_name, required=False,
                    max_length=min(field.max_length or TEXT_MAX, TEXT_MAX),
                    style=discord.TextStyle.paragraph if field.type == "string"
                    else discord.TextStyle.short,
                    default=None if current in (None, "") else str(current))
            self._add(field.title or field.option_name, item)

    def _add(self, label: str, item: Text | Select) -> None:
        assert item.custom_id is not None
        self.inputs[item.custom_id] = item
        self.add_item(discord.ui.Label(text=_label(label), component=item))

    async def on_submit(self, interaction: discord.Interaction) -> None:
        options = options_of(self.model, self.job.body)
        for name, item in self.inputs.items():
            if isinstance(item, discord.ui.TextInput):
                field = next(f for f in self.model.fields if f.option_name == name)
                if item.value.strip() or field.type == "string":
                    options[name] = item.value
                else:
                    options.pop(name, None)  # emptied: the model's default
            elif item.values:
                options[name] = item.values[0]
        try:
            await self.cog.start(interaction, self.job, self.model, options, Origin.VARY)
        except UserError as exc:  # a refusal, not a failure: answered, not raised
            await report(interaction, exc)

    async def on_error(self, interaction: discord.Interaction,  # type: ignore[override]
                       error: Exception) -> None:
        await report(interaction, error)


class ExtendModal(discord.ui.Modal):
    """What happens next: the prompt of the shot that starts from the video's last frame."""

    def __init__(self, cog: Creative, job: Job, model: ModelSpec,
                 pressed: discord.Message | None) -> None:
        super().__init__(title=f"Extend job #{job.id}", timeout=FORM_TIMEOUT)
        self.cog = cog
        self.job = job
        self.model = model
        self.pressed = pressed
        field = prompt_field(model)
        self.prompt: Text = discord.ui.TextInput(
            style=discord.TextStyle.paragraph, custom_id="prompt",
            required=field.required if field else False,
            max_length=min((field.max_length if field else None) or TEXT_MAX, TEXT_MAX),
            placeholder="What happens next?",
            default=job.prompt[:TEXT_MAX] or None)
        self.add_item(discord.ui.Label(text="Prompt", component=self.prompt,
                                       description="The next shot starts from the last frame"))

    async def on_submit(self, interaction: discord.Interaction) -> None:
        try:
            await self.cog.extend(interaction, self.job, self.model, self.prompt.value,
                                  self.pressed)
        except UserError as exc:  # a refusal, not a failure: answered, not raised
            await report(interaction, exc)

    async def on_error(self, interaction: discord.Interaction,  # type: ignore[override]
                       error: Exception) -> None:
        await report(interaction, error)


async def setup(bot: commands.Bot) -> None:
    await bot.add_cog(Creative(cast(VideoBot, bot)))
