"""What every entry point does with an interaction: who asks and where, the one answer once a
job is queued, and the autocomplete of a member's jobs."""

from __future__ import annotations

from collections.abc import Collection

import discord
from discord import app_commands

from bot.i18n import _
from bot.jobs import Job, JobState
from bot.service import Requester
from bot.store.jobs import JobStore


def requester(guild_id: int, channel: object, user: discord.abc.User) -> Requester:
    """Who asks, where: with their roles, and the parent of a thread (for the policy)."""
    return Requester(
        guild_id=guild_id, channel_id=getattr(channel, "id", 0), user_id=user.id,
        role_ids=frozenset(role.id for role in getattr(user, "roles", ())),
        parent_channel_id=channel.parent_id if isinstance(channel, discord.Thread) else None,
    )


def requester_of(interaction: discord.Interaction) -> Requester:
    assert interaction.guild_id is not None
    return requester(interaction.guild_id, interaction.channel, interaction.user)


async def defer(interaction: discord.Interaction) -> None:
    """Answer Discord first (ephemerally, "thinking"), unless it has been answered."""
    if not interaction.response.is_done():
        await interaction.response.defer(ephemeral=True, thinking=True)


def queued_text(job_id: int) -> str:
    return _("Job #{job} is queued. Its card in this channel shows progress, and the video "
             "will be posted there.", job=job_id)


async def answer_queued(interaction: discord.Interaction, job: Job, note: str = "") -> None:
    await interaction.edit_original_response(content=queued_text(job.id) + note)


async def job_choices(store: JobStore, interaction: discord.Interaction, current: str,
                      states: Collection[JobState]) -> list[app_commands.Choice[int]]:
    """The member's jobs in ``states`` whose number matches what they typed, newest first."""
    jobs = await store.for_user(interaction.guild_id or 0, interaction.user.id,
                                states=states, number=current.strip().lstrip("#"), limit=25)
    return [app_commands.Choice(name=_choice_name(job), value=job.id) for job in jobs]


def _choice_name(job: Job) -> str:
    name = f"#{job.id} {job.state.label}: {job.prompt or job.command}"
    return name if len(name) <= 100 else name[:99] + "…"
