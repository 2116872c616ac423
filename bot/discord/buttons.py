"""The buttons on the bot's messages: **Cancel** on a job's card; **Again**, **Vary** and
**Extend** under its video. The action and the job id live in the custom_id, so the buttons
work on messages posted before a restart. A press goes to the handler a cog registered for its
action (``JobButtons.handle``): the buttons know nothing of what the actions do."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from enum import StrEnum
from typing import Protocol, cast

import discord

from bot.discord.languages import speak_to
from bot.i18n import N_, _
from bot.jobs import POSTING, TERMINAL, Job

Button = discord.ui.Button[discord.ui.View]
Handler = Callable[[discord.Interaction, int], Awaitable[None]]  # (interaction, job id)
TEMPLATE = r"rcvb:(?P<action>cancel|again|vary|extend):(?P<job_id>\d+)"
UNAVAILABLE = N_("That button is not available right now; try again in a moment.")


class Action(StrEnum):
    CANCEL = "cancel"
    AGAIN = "again"  # the same model, options and image as a new job
    VARY = "vary"  # a form prefilled with the prompt and a few options; the same image
    EXTEND = "extend"  # the video's last frame as the start image of the next shot


# Labels in the language of the message's channel (the views are made where it is in use).
_LOOK = {
    Action.CANCEL: (N_("Cancel"), None, discord.ButtonStyle.danger),
    Action.AGAIN: (N_("Again"), "\N{CLOCKWISE RIGHTWARDS AND LEFTWARDS OPEN CIRCLE ARROWS}",
                   discord.ButtonStyle.secondary),
    Action.VARY: (N_("Vary"), "\N{ARTIST PALETTE}", discord.ButtonStyle.secondary),
    Action.EXTEND: (N_("Extend"), "\N{BLACK RIGHT-POINTING DOUBLE TRIANGLE}",
                    discord.ButtonStyle.secondary),
}
LOOP = (Action.AGAIN, Action.VARY, Action.EXTEND)


def _button(action: Action, job_id: int) -> Button:
    label, emoji, style = _LOOK[action]
    return discord.ui.Button(label=_(label), emoji=emoji, style=style,
                             custom_id=f"rcvb:{action.value}:{job_id}")


class JobButtons:
    """Makes the views, and routes presses (on messages of this life or an earlier one) to
    the registered handlers. ``item`` is the dynamic item to register with the client."""

    def __init__(self) -> None:
        self._handlers: dict[Action, Handler] = {}
        self.item = _item_class(self._press)
        self._make = cast(JobButtonItem, self.item)

    def handle(self, action: Action, handler: Handler) -> None:
        self._handlers[action] = handler

    def forget(self, action: Action) -> None:
        self._handlers.pop(action, None)

    def card_view(self, job: Job) -> discord.ui.View | None:
        """The Cancel button while the job can still be cancelled; none after."""
        if job.state in TERMINAL or job.state in POSTING:
            return None
        return self._view(job, (Action.CANCEL,))

    def loop_view(self, job: Job) -> discord.ui.View:
        """The buttons under a posted video."""
        return self._view(job, LOOP)

    def _view(self, job: Job, actions: tuple[Action, ...]) -> discord.ui.View:
        view = discord.ui.View(timeout=None)
        for action in actions:
            view.add_item(self._make(action, job.id))
        return view

    async def _press(self, interaction: discord.Interaction, action: Action,
                     job_id: int) -> None:
        handler = self._handlers.get(action)
        if handler is None:
            await interaction.response.send_message(_(UNAVAILABLE), ephemeral=True)
            return
        await handler(interaction, job_id)


Press = Callable[[discord.Interaction, Action, int], Awaitable[None]]


class JobButtonItem(Protocol):
    """What ``JobButtons`` needs of its dynamic item class."""

    def __call__(self, action: Action, job_id: int) -> discord.ui.DynamicItem[Button]: ...


def _item_class(press: Press) -> type[discord.ui.DynamicItem[Button]]:
    """A dynamic item class whose presses go to ``press`` (one class per ``JobButtons``, so
    two clients in one process never share handlers)."""

    class JobButton(discord.ui.DynamicItem[Button], template=TEMPLATE):
        def __init__(self, action: Action, job_id: int) -> None:
            super().__init__(_button(action, job_id))
            self.action = action
            self.job_id = job_id

        @classmethod
        async def from_custom_id(
            cls, interaction: discord.Interaction, item: discord.ui.Item[discord.ui.View],
            match: re.Match[str], /,
        ) -> JobButton:
            return cls(Action(match["action"]), int(match["job_id"]))

        async def callback(self, interaction: discord.Interaction) -> None:
            speak_to(interaction)
            await press(interaction, self.action, self.job_id)

    return JobButton
