"""The one error handler of the application commands (``bot.discord.errors``), and the notices
shown after every command."""

from __future__ import annotations

from typing import cast

import discord
from discord.ext import commands

from bot.discord.client import VideoBot


class Errors(commands.Cog):
    def __init__(self, bot: VideoBot) -> None:
        self.bot = bot
        self.reporter = bot.parts.errors
        self._previous = bot.tree.on_error

    async def cog_load(self) -> None:
        self.bot.tree.on_error = self.reporter.report  # type: ignore[method-assign]

    async def cog_unload(self) -> None:
        self.bot.tree.on_error = self._previous  # type: ignore[method-assign]

    @commands.Cog.listener()
    async def on_app_command_completion(self, interaction: discord.Interaction,
                                        command: object) -> None:
        await self.reporter.flush_notices(interaction)


async def setup(bot: commands.Bot) -> None:
    await bot.add_cog(Errors(cast(VideoBot, bot)))
