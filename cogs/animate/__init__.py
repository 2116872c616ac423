"""Animating an image already in the channel: Apps > Animate image, ``/animate`` (with an
upload field), and ``@Bot prompt --flags`` in a reply."""

from __future__ import annotations

from typing import cast

from discord.ext import commands

from bot.discord.client import VideoBot
from cogs.animate.cog import Animate


async def setup(bot: commands.Bot) -> None:
    await bot.add_cog(Animate(cast(VideoBot, bot)))
