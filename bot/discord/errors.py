"""The one way a failed interaction is answered: application commands (through the tree's
error handler, ``cogs.errors``), forms and buttons alike."""

from __future__ import annotations

import logging

import discord
from babel.lists import format_list
from discord import app_commands

from bot.errors import UserError
from bot.i18n import N_, _, babel_locale, in_source
from bot.store.notices import NoticeStore

log = logging.getLogger(__name__)
# Discord's names for permissions in its settings (which members read in their own language).
PERMISSION_NAMES = {"manage_guild": N_("Manage Server")}
UNEXPECTED = N_("Something went wrong on the bot's side; it has been logged.")


def permission_name(permission: str) -> str:
    """``manage_guild`` as Discord's settings name it (``Manage Server``), in the language in
    use when the catalogs name it; else its words, capitalised."""
    name = PERMISSION_NAMES.get(permission)
    return _(name) if name is not None else permission.replace("_", " ").title()


def listed(names: list[str]) -> str:
    """``A and B`` (``A and B and C`` in English, as ever), as the language in use lists."""
    return " and ".join(names) if in_source() else format_list(names, locale=babel_locale())


def explain(error: Exception) -> str:
    """What to tell the member; unexpected errors are logged, not shown."""
    cause = error.original if isinstance(error, app_commands.CommandInvokeError) else error
    if isinstance(cause, UserError):
        return str(cause)
    if isinstance(cause, app_commands.NoPrivateMessage):
        return _("This command only works in a server.")
    if isinstance(cause, app_commands.MissingPermissions):
        names = [permission_name(p) for p in cause.missing_permissions]
        return _("You need the {permissions} permission to do that.", permissions=listed(names))
    if isinstance(cause, app_commands.CheckFailure):
        return str(cause) or _("You can't use this command here.")
    log.error("command failed", exc_info=cause)
    return _(UNEXPECTED)


class ErrorReporter:
    """Answers failed interactions, and shows each member the notices kept for them."""

    def __init__(self, notices: NoticeStore) -> None:
        self.notices = notices

    async def report(self, interaction: discord.Interaction, error: Exception) -> None:
        """Answer the interaction (ephemerally) with what went wrong, then any notices."""
        message = explain(error)
        if interaction.response.is_done():
            await interaction.edit_original_response(content=message, embed=None, view=None)
        else:
            await interaction.response.send_message(message, ephemeral=True)
        await self.flush_notices(interaction)

    async def flush_notices(self, interaction: discord.Interaction) -> None:
        """What the bot could not tell this member earlier (e.g. a video it could not post)."""
        if interaction.guild_id is None or not interaction.response.is_done():
            return
        texts = await self.notices.take(interaction.guild_id, interaction.user.id)
        for index, text in enumerate(texts):
            try:
                await interaction.followup.send(text, ephemeral=True,
                                                allowed_mentions=discord.AllowedMentions.none())
            except discord.HTTPException as exc:  # kept for the next command, not lost
                for unsent in texts[index:]:
                    await self.notices.add(interaction.guild_id, interaction.user.id, unsent)
                log.warning("notices could not be shown (%s); kept for the next command", exc)
                return
