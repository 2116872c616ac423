"""Which language the bot speaks: to a member, their Discord client's (``interaction.locale``),
for what only they see; in a channel, the server's (``/settings language``, else the server's
own Discord language, ``preferred_locale``), for what everyone there sees."""

from __future__ import annotations

import time
from collections.abc import Callable

import discord
from discord import app_commands

from bot.i18n import speak
from bot.policy import PolicyStore

LANGUAGE_KEPT_SECONDS = 60.0  # a server's choice, as read; /settings language forgets it at once


def speak_to(interaction: discord.Interaction) -> None:
    """What follows in this task answers the member in their own language."""
    speak(interaction.locale.value)


class SpeakingTree(app_commands.CommandTree[discord.Client]):
    """The command tree: every slash command and context menu answers in the member's
    language (set before the command runs, in its task; its error handler runs there too)."""

    async def interaction_check(self, interaction: discord.Interaction, /) -> bool:
        speak_to(interaction)
        return True


class ServerLanguages:
    """Each server's language for its channels, read at most once a minute."""

    def __init__(self, client: discord.Client, policies: PolicyStore,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.client = client
        self.policies = policies
        self.clock = clock
        self._read: dict[int, tuple[str | None, float]] = {}

    async def of(self, guild_id: int) -> str:
        """``/settings language``'s choice, else the server's Discord language, else English."""
        chosen, at = self._read.get(guild_id, (None, -LANGUAGE_KEPT_SECONDS))
        if self.clock() - at >= LANGUAGE_KEPT_SECONDS:
            chosen = (await self.policies.chosen(guild_id)).language
            self._read[guild_id] = (chosen, self.clock())
        if chosen:
            return chosen
        guild = self.client.get_guild(guild_id)
        return guild.preferred_locale.value if guild is not None else "en-US"

    def forget(self, guild_id: int) -> None:
        """The server's choice changed here: read it again next time."""
        self._read.pop(guild_id, None)
