"""The creative loop: **Again**, **Vary** and **Extend** buttons on every posted video, and what
each new job is made of. The buttons carry the job id in their custom_id, so they work on
videos posted before a restart; pressing one calls the ``Creative`` cog (``cogs/creative.py``),
which starts the new job through ``JobService`` like any slash command."""

from __future__ import annotations

import re
import secrets
from collections.abc import Mapping
from typing import Any, Protocol, cast

import discord
from discord.ext.commands.bot import BotBase  # Bot and AutoShardedBot

from bot.catalog import FieldSpec, ModelSpec
from bot.jobs import Job
from bot.lineage import Origin

LOOP_COG = "Creative"  # the cog that answers the buttons
# What a member is likely to change in Vary (besides the prompt), in the form's order.
VARY_FIELDS = ("duration", "aspect_ratio", "negative_prompt")
SEED_FIELD = "seed"
_SEED_RANGE = (0, 2**31 - 1)  # when the catalog gives no bounds


class LoopHandler(Protocol):
    async def pressed(self, interaction: discord.Interaction, origin: Origin,
                      job_id: int) -> None: ...


def loop_view(job: Job) -> discord.ui.View:
    """The buttons under a posted video."""
    view = discord.ui.View(timeout=None)
    for button in (AgainButton(job.id), VaryButton(job.id), ExtendButton(job.id)):
        view.add_item(button)
    return view


async def _press(interaction: discord.Interaction, origin: Origin, job_id: int) -> None:
    client = interaction.client
    handler = client.get_cog(LOOP_COG) if isinstance(client, BotBase) else None
    if handler is None:
        await interaction.response.send_message("That button is not available right now; try "
                                                "again in a moment.", ephemeral=True)
        return
    await cast(LoopHandler, handler).pressed(interaction, origin, job_id)


_Button = discord.ui.Button[discord.ui.View]
_EMOJI = {
    Origin.AGAIN: "\N{CLOCKWISE RIGHTWARDS AND LEFTWARDS OPEN CIRCLE ARROWS}",
    Origin.VARY: "\N{ARTIST PALETTE}",
    Origin.EXTEND: "\N{BLACK RIGHT-POINTING DOUBLE TRIANGLE}",
}


def _button(origin: Origin, job_id: int) -> _Button:
    """``Again``, ``Vary`` or ``Extend``, with the job id in its custom_id."""
    return discord.ui.Button(label=origin.value.title(), emoji=_EMOJI[origin],
                             style=discord.ButtonStyle.secondary,
                             custom_id=f"rcvb:{origin.value}:{job_id}")


class AgainButton(discord.ui.DynamicItem[_Button], template=r"rcvb:again:(?P<job_id>\d+)"):
    """The same model, options and image as a new job (a new seed where the model has one)."""

    def __init__(self, job_id: int) -> None:
        super().__init__(_button(Origin.AGAIN, job_id))
        self.job_id = job_id

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Item[discord.ui.View],
        match: re.Match[str], /,
    ) -> AgainButton:
        return cls(int(match["job_id"]))

    async def callback(self, interaction: discord.Interaction) -> None:
        await _press(interaction, Origin.AGAIN, self.job_id)


class VaryButton(discord.ui.DynamicItem[_Button], template=r"rcvb:vary:(?P<job_id>\d+)"):
    """A form prefilled with the prompt and a few options; the same image."""

    def __init__(self, job_id: int) -> None:
        super().__init__(_button(Origin.VARY, job_id))
        self.job_id = job_id

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Item[discord.ui.View],
        match: re.Match[str], /,
    ) -> VaryButton:
        return cls(int(match["job_id"]))

    async def callback(self, interaction: discord.Interaction) -> None:
        await _press(interaction, Origin.VARY, self.job_id)


class ExtendButton(discord.ui.DynamicItem[_Button], template=r"rcvb:extend:(?P<job_id>\d+)"):
    """The video's last frame as the start image of the next shot."""

    def __init__(self, job_id: int) -> None:
        super().__init__(_button(Origin.EXTEND, job_id))
        self.job_id = job_id

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Item[discord.ui.View],
        match: re.Match[str], /,
    ) -> ExtendButton:
        return cls(int(match["job_id"]))

    async def callback(self, interaction: discord.Interaction) -> None:
        await _press(interaction, Origin.EXTEND, self.job_id)


LOOP_BUTTONS = (AgainButton, VaryButton, ExtendButton)


def options_of(model: ModelSpec, body: Mapping[str, Any]) -> dict[str, object]:
    """A job's options as a member gives them (keyed by option name), from the body it sent:
    ``build_request`` makes the same body of them again. Images are left out: see
    ``image_urls``."""
    return {f.option_name: body[f.name] for f in model.fields
            if f.type != "image" and f.name in body}


def image_urls(model: ModelSpec, body: Mapping[str, Any]) -> dict[str, str]:
    """The job's image inputs, by option name."""
    return {f.option_name: url for f in model.image_fields
            if isinstance(url := body.get(f.name), str) and url}


def again_options(model: ModelSpec, body: Mapping[str, Any]) -> dict[str, object]:
    """The same options, with a new seed where the model has one."""
    options = options_of(model, body)
    seed = seed_field(model)
    if seed is not None:
        options[seed.option_name] = new_seed(seed, body.get(seed.name))
    return options


def seed_field(model: ModelSpec) -> FieldSpec | None:
    return next((f for f in model.fields if f.name == SEED_FIELD and f.type == "integer"), None)


def new_seed(field: FieldSpec, old: object) -> int:
    """A random seed within the field's bounds, other than ``old`` where there is room."""
    low = int(field.minimum) if field.minimum is not None else _SEED_RANGE[0]
    high = int(field.maximum) if field.maximum is not None else _SEED_RANGE[1]
    while True:
        seed = low + secrets.randbelow(high - low + 1)
        if seed != old or low == high:
            return seed


def prompt_field(model: ModelSpec) -> FieldSpec | None:
    return next((f for f in model.fields if f.name == "prompt" and f.type == "string"), None)


def vary_fields(model: ModelSpec) -> list[FieldSpec]:
    """The options Vary's form offers besides the prompt (a choice of one is no choice)."""
    names = {f.name: f for f in model.fields}
    return [names[n] for n in VARY_FIELDS
            if n in names and not (names[n].enum is not None and len(names[n].enum or ()) < 2)]


def can_extend(model: ModelSpec) -> bool:
    return model.kind == "image-to-video" and model.main_image is not None


def extend_options(model: ModelSpec, body: Mapping[str, Any], prompt: str) -> dict[str, object]:
    """The next shot: the same options with a new prompt, and no images (the last frame will
    be the start image; the end image and the shots of a multi-shot prompt were the last
    video's)."""
    skip = {f.option_name for f in model.fields if f.is_segments}
    options = {k: v for k, v in options_of(model, body).items() if k not in skip}
    field = prompt_field(model)
    if field is not None:
        options[field.option_name] = prompt
    return options
