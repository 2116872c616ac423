"""The creative loop: the **Again**, **Vary** and **Extend** buttons under every video, and
``/show``."""

from __future__ import annotations

from typing import cast

from discord.ext import commands

from bot.discord.client import VideoBot
from cogs.creative.cog import Creative


async def setup(bot: commands.Bot) -> None:
    await bot.add_cog(Creative(cast(VideoBot, bot)))
