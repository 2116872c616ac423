"""A member's own jobs: ``/cancel`` (and the Cancel button on every card), ``/jobs`` and a
moderator's ``/retry``."""

from __future__ import annotations

import logging
from typing import cast

import discord
from discord import app_commands
from discord.ext import commands

from bot.discord.buttons import Action
from bot.discord.cards import eta_text, render_card, safe_text
from bot.discord.client import VideoBot
from bot.discord.interactions import job_choices
from bot.discord.permissions import moderates
from bot.i18n import _
from bot.jobs import WAITING, Job, JobState
from bot.lineage import lineage_text
from bot.text import duration_text

log = logging.getLogger(__name__)
RECENT = 10


class Jobs(commands.Cog):
    def __init__(self, bot: VideoBot) -> None:
        self.bot = bot

    async def cog_load(self) -> None:
        self.bot.buttons.handle(Action.CANCEL, self.cancel_pressed)

    async def cog_unload(self) -> None:
        self.bot.buttons.forget(Action.CANCEL)

    @app_commands.command(name="cancel", description="Cancel one of your queued videos.")
    @app_commands.describe(job="The job to cancel (its number, shown on its card)")
    @app_commands.guild_only()
    async def cancel(self, interaction: discord.Interaction, job: int) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)  # RunComfy may be slow
        answer = await self.bot.parts.jobs.cancel(
            job, guild_id=interaction.guild_id or 0, user_id=interaction.user.id,
            moderates=moderates(interaction))
        await interaction.edit_original_response(content=answer)

    @cancel.autocomplete("job")
    async def cancel_choices(self, interaction: discord.Interaction,
                             current: str) -> list[app_commands.Choice[int]]:
        return await job_choices(self.bot.parts.store, interaction, current, WAITING)

    async def cancel_pressed(self, interaction: discord.Interaction, job_id: int) -> None:
        """The Cancel button. Answer Discord first (RunComfy may be slow to cancel), then
        cancel; the card the button was on shows the outcome, even one the store does not know
        of (sent before a crash could record it)."""
        await interaction.response.defer(ephemeral=True, thinking=True)
        try:
            answer = await self.bot.parts.jobs.cancel(
                job_id, guild_id=interaction.guild_id or 0, user_id=interaction.user.id,
                moderates=moderates(interaction))
            await interaction.edit_original_response(content=answer)
            job = await self.bot.parts.store.get(job_id)
        except Exception as exc:  # the member is told; the error handler logs it
            await self.bot.parts.errors.report(interaction, exc)
            return
        pressed = interaction.message
        if job is not None and pressed is not None and pressed.id != job.card_message_id \
                and job.guild_id == interaction.guild_id:
            try:
                await pressed.edit(embed=render_card(job, self.bot.model_name(job)),
                                   view=self.bot.buttons.card_view(job),
                                   allowed_mentions=discord.AllowedMentions.none())
            except discord.HTTPException as exc:  # the member has the answer already
                log.warning("job %d: the pressed card could not be updated (%s)", job_id, exc)

    @app_commands.command(name="retry",
                          description="Start again a job whose outcome is unknown (moderators).")
    @app_commands.describe(job="The job's number, shown on its card")
    @app_commands.guild_only()
    @app_commands.default_permissions(manage_guild=True)
    @app_commands.checks.has_permissions(manage_guild=True)
    async def retry(self, interaction: discord.Interaction, job: int) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)  # it submits
        new = await self.bot.parts.jobs.retry(job, guild_id=interaction.guild_id or 0,
                                              moderates=moderates(interaction))
        await interaction.edit_original_response(
            content=_("Job #{job} was started again as job #{new}. If the first one ran after "
                      "all, both are charged.", job=job, new=new.id))

    @app_commands.command(name="jobs", description="Your recent videos and how they went.")
    @app_commands.guild_only()
    async def jobs(self, interaction: discord.Interaction) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)  # it reads the store
        jobs = await self.bot.parts.store.for_user(
            interaction.guild_id or 0, interaction.user.id, limit=RECENT)
        if not jobs:
            await interaction.edit_original_response(content=_("You have no videos here yet."))
            return
        embed = discord.Embed(title=_("Your recent videos"), colour=discord.Colour.blurple())
        embed.description = "\n".join(self._line(job) for job in jobs)
        await interaction.edit_original_response(embed=embed)

    def _line(self, job: Job) -> str:
        where = f"https://discord.com/channels/{job.guild_id}/{job.channel_id}/"
        state = job.state.label
        if job.state is JobState.DELIVERED and job.elapsed is not None:
            state = _("{state} in {time}", state=state, time=duration_text(job.elapsed))
        if job.state is JobState.QUEUED and job.queue_position is not None:
            state += f" (#{job.queue_position + 1})"
        if eta_text(job):
            state += f", {eta_text(job)}"
        text = f"**#{job.id}** {self.bot.model_name(job)}: {state}"
        if lineage := lineage_text(job.parent_id, job.origin):
            text += f" · {lineage}"  # what it came from: "again of #12", "extends #12"
        if job.result_message_id:
            text += " · " + _("[video]({link})", link=where + str(job.result_message_id))
        elif job.video_url and job.state is JobState.UNDELIVERABLE:  # never posted: RunComfy's
            text += " · " + _("[video]({link}) (the link expires)", link=job.video_url)
        elif job.card_message_id:
            text += " · " + _("[card]({link})", link=where + str(job.card_message_id))
        prompt = safe_text(job.prompt, 80) or _("(no prompt)")
        return f"{text}\n> {prompt}"


async def setup(bot: commands.Bot) -> None:
    await bot.add_cog(Jobs(cast(VideoBot, bot)))
