"""The one place that answers a failed application command."""

from __future__ import annotations

import logging
from typing import cast

import discord
from discord import app_commands
from discord.ext import commands

from bot.app import VideoBot
from bot.errors import UserError

log = logging.getLogger(__name__)
PERMISSION_NAMES = {"manage_guild": "Manage Server"}
UNEXPECTED = "Something went wrong on the bot's side; it has been logged."


def explain(error: Exception) -> str:
    """What to tell the member; unexpected errors are logged, not shown."""
    cause = error.original if isinstance(error, app_commands.CommandInvokeError) else error
    if isinstance(cause, UserError):
        return str(cause)
    if isinstance(cause, app_commands.NoPrivateMessage):
        return "This command only works in a server."
    if isinstance(cause, app_commands.MissingPermissions):
        names = [PERMISSION_NAMES.get(p, p.replace("_", " ").title())
                 for p in cause.missing_permissions]
        return f"You need the {' and '.join(names)} permission to do that."
    if isinstance(cause, app_commands.CheckFailure):
        return str(cause) or "You can't use this command here."
    log.error("command failed", exc_info=cause)
    return UNEXPECTED


async def report(interaction: discord.Interaction, error: Exception) -> None:
    """Answer the interaction (ephemerally) with what went wrong; for commands and modals."""
    message = explain(error)
    if interaction.response.is_done():
        await interaction.edit_original_response(content=message, embed=None, view=None)
    else:
        await interaction.response.send_message(message, ephemeral=True)
    await flush_notices(interaction)


async def flush_notices(interaction: discord.Interaction) -> None:
    """What the bot could not tell this member earlier (e.g. a video it could not post)."""
    bot = cast(VideoBot, interaction.client)
    if interaction.guild_id is None or not interaction.response.is_done():
        return
    texts = await bot.parts.notices.take(interaction.guild_id, interaction.user.id)
    for index, text in enumerate(texts):
        try:
            await interaction.followup.send(text, ephemeral=True,
                                            allowed_mentions=discord.AllowedMentions.none())
        except discord.HTTPException as exc:  # kept for the next command, not lost
            for unsent in texts[index:]:
                await bot.parts.notices.add(interaction.guild_id, interaction.user.id, unsent)
            log.warning("notices could not be shown (%s); kept for the next command", exc)
            return


class Errors(commands.Cog):
    def __init__(self, bot: VideoBot) -> None:
        self.bot = bot
        self._previous = bot.tree.on_error, bot.report_error

    async def cog_load(self) -> None:
        self.bot.tree.on_error = report  # type: ignore[method-assign]
        self.bot.report_error = report

    async def cog_unload(self) -> None:
        self.bot.tree.on_error, self.bot.report_error = self._previous  # type: ignore[method-assign]

    @commands.Cog.listener()
    async def on_app_command_completion(self, interaction: discord.Interaction,
                                        command: object) -> None:
        await flush_notices(interaction)


async def setup(bot: commands.Bot) -> None:
    await bot.add_cog(Errors(cast(VideoBot, bot)))
