"""The bot's forms (Discord's modals): each is submitted, and goes wrong, in the language of
the member who submits it, and what goes wrong is answered by the one error handler's
reporting: a refusal (``UserError``) as an answer, a failure as an error."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import discord

from bot.discord.languages import speak_to
from bot.errors import UserError

Report = Callable[[discord.Interaction, Exception], Awaitable[None]]


class Form(discord.ui.Modal):
    def __init__(self, *, title: str, timeout: float, report: Report) -> None:
        super().__init__(title=title, timeout=timeout)
        self.report = report

    async def interaction_check(self, interaction: discord.Interaction, /) -> bool:
        speak_to(interaction)  # in the task that runs on_submit and on_error
        return True

    async def on_submit(self, interaction: discord.Interaction, /) -> None:
        try:
            await self.submitted(interaction)
        except UserError as exc:  # a refusal, not a failure: answered, not raised
            await self.report(interaction, exc)

    async def submitted(self, interaction: discord.Interaction) -> None:
        """What the form does with its answers (each form's own)."""
        raise NotImplementedError

    async def on_error(self, interaction: discord.Interaction,  # type: ignore[override]
                       error: Exception) -> None:
        await self.report(interaction, error)
