"""The Creative cog: answers the loop's buttons (registered with ``bot.buttons``) and ``/show``.
Each new job goes through ``JobService.request`` like a slash command: the same validation,
rules, quota and budget."""

from __future__ import annotations

import asyncio

import discord
from discord import app_commands
from discord.ext import commands

from bot.catalog import ModelSpec
from bot.creative import again_options, can_extend, extend_options, image_urls
from bot.discord.buttons import LOOP, Action
from bot.discord.client import VideoBot
from bot.discord.interactions import answer_queued, defer, job_choices, requester_of
from bot.discord.permissions import check_can_post_here, moderates, sees
from bot.discord.sources import LastFrame, parent_image
from bot.errors import UserError
from bot.i18n import N_, _
from bot.jobs import Job, JobState
from bot.lineage import Lineage, Origin
from bot.service import JobRequest, everywhere
from cogs.creative.modals import ExtendModal, VaryModal

SHOWABLE = (JobState.DELIVERED, JobState.UNDELIVERABLE)  # finished, with a video
# A form must be the first answer, within Discord's 3 seconds: the job it is prefilled from is
# read for at most this long, and the member is asked to press again when the store is busier.
FORM_READ_SECONDS = 1.5
BUSY = N_("The bot is busy right now; press {button} again in a moment.")


class Creative(commands.Cog):
    def __init__(self, bot: VideoBot) -> None:
        self.bot = bot

    async def cog_load(self) -> None:
        self.bot.buttons.handle(Action.AGAIN, self.again_pressed)
        self.bot.buttons.handle(Action.VARY, self.vary_pressed)
        self.bot.buttons.handle(Action.EXTEND, self.extend_pressed)

    async def cog_unload(self) -> None:
        for action in LOOP:
            self.bot.buttons.forget(action)

    async def again_pressed(self, interaction: discord.Interaction, job_id: int) -> None:
        try:
            await defer(interaction)
            job = await self._job_for(interaction, job_id, _("make it again"))
            model = self.bot.parts.jobs.model_of(job)
            await self.start(interaction, job, model, again_options(model, job.body),
                             Origin.AGAIN)
        except Exception as exc:  # refusals, and the unexpected (logged): always an answer
            await self.bot.parts.errors.report(interaction, exc)

    async def vary_pressed(self, interaction: discord.Interaction, job_id: int) -> None:
        """A form (which must be the first answer): only the job itself is read before it, for
        at most ``FORM_READ_SECONDS``."""
        try:
            job = await self._job_for_form(interaction, job_id, _("vary it"), _("Vary"))
            model = self.bot.parts.jobs.model_of(job)

            async def submit(answer: discord.Interaction, options: dict[str, object]) -> None:
                await self.start(answer, job, model, options, Origin.VARY)

            await interaction.response.send_modal(
                VaryModal(job, model, submit, self.bot.parts.errors.report))
        except Exception as exc:
            await self.bot.parts.errors.report(interaction, exc)

    async def extend_pressed(self, interaction: discord.Interaction, job_id: int) -> None:
        try:
            job = await self._job_for_form(interaction, job_id, _("extend it"), _("Extend"))
            model = self.bot.parts.jobs.model_of(job)
            if not can_extend(model):
                raise UserError(_(
                    "`{command}` makes videos from text only: it has no start image to "
                    "continue from, so job #{job} cannot be extended. Try Again or Vary.",
                    command=model.command, job=job.id))
            pressed = interaction.message

            async def submit(answer: discord.Interaction, prompt: str) -> None:
                await self.extend(answer, job, model, prompt, pressed)

            await interaction.response.send_modal(
                ExtendModal(job, model, submit, self.bot.parts.errors.report))
        except Exception as exc:
            await self.bot.parts.errors.report(interaction, exc)

    async def start(self, interaction: discord.Interaction, parent: Job, model: ModelSpec,
                    options: dict[str, object], origin: Origin) -> None:
        """Again and Vary: the parent's images with ``options``. The options and the rules are
        checked before the images are downloaded again (from Discord), the images after."""
        await defer(interaction)
        hosts = self.bot.settings.bot.image_hosts
        images = {name: parent_image(self.bot.http_session, parent, url, hosts)
                  for name, url in image_urls(model, parent.body).items()}
        job = await self.bot.parts.jobs.request(JobRequest(
            model, options, requester_of(interaction), images=images,
            lineage=Lineage(parent.id, origin),
            check_place=lambda: check_can_post_here(interaction)))
        await answer_queued(interaction, job)

    async def extend(self, interaction: discord.Interaction, parent: Job, model: ModelSpec,
                     prompt: str, pressed: discord.Message | None) -> None:
        """The parent video's last frame, posted in the channel (so RunComfy can fetch it),
        starts a new job with ``prompt`` and the parent's other options."""
        await interaction.response.defer(ephemeral=True, thinking=True)
        assert model.main_image is not None
        frame = LastFrame(parent, model, interaction.channel, pressed, self.bot.parts.videos,
                          interaction.guild, await self.bot.languages.of(parent.guild_id))
        job = await self.bot.parts.jobs.request(JobRequest(
            model, extend_options(model, parent.body, prompt), requester_of(interaction),
            images={model.field(model.main_image).option_name: frame.as_input()},
            lineage=Lineage(parent.id, Origin.EXTEND),
            check_place=lambda: check_can_post_here(interaction)))
        await answer_queued(interaction, job)

    @app_commands.command(name="show",
                          description="Post a finished video again here, with its buttons.")
    @app_commands.describe(job="The job's number (see /jobs)")
    @app_commands.guild_only()
    async def show(self, interaction: discord.Interaction, job: int) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)  # it downloads
        found = await self._job_for(interaction, job, _("show it"), must_see=True)
        if found.state not in SHOWABLE or found.video_url is None:
            raise UserError(_("Job #{job} has no video to show: it is {state}.", job=job,
                              state=found.state.label.lower()))
        check_can_post_here(interaction)
        assert interaction.channel_id is not None
        await self.bot.parts.delivery.show(found, interaction.channel_id, interaction.user.id,
                                           await self.bot.languages.of(found.guild_id))
        await interaction.edit_original_response(
            content=_("Job #{job} is posted again here.", job=job))

    @show.autocomplete("job")
    async def show_choices(self, interaction: discord.Interaction,
                           current: str) -> list[app_commands.Choice[int]]:
        return await job_choices(self.bot.parts.store, interaction, current, SHOWABLE)

    async def _job_for_form(self, interaction: discord.Interaction, job_id: int, action: str,
                            button: str) -> Job:
        try:
            return await asyncio.wait_for(self._job_for(interaction, job_id, action),
                                          FORM_READ_SECONDS)
        except TimeoutError:
            raise UserError(_(BUSY, button=button)) from None

    async def _job_for(self, interaction: discord.Interaction, job_id: int, action: str, *,
                       must_see: bool = False) -> Job:
        """The job, if the member may act on it (a moderator: in the job's own channel); for
        ``must_see``, only if the member can see that channel."""
        return await self.bot.parts.jobs.job_for(
            job_id, guild_id=interaction.guild_id or 0, user_id=interaction.user.id,
            moderates=moderates(interaction), action=action,
            sees=sees(interaction) if must_see else everywhere)
