"""One slash command per catalog model, its options generated from the model's inputs."""

from __future__ import annotations

import inspect
from typing import Any, Literal, cast

import discord
from discord import app_commands
from discord.ext import commands

from bot.catalog import FieldSpec, ModelSpec
from bot.discord.client import VideoBot
from bot.discord.interactions import answer_queued, defer, requester_of
from bot.discord.permissions import check_can_post_here
from bot.images import ImageInput
from bot.service import JobRequest

MAX_DESCRIPTION = 100
SEGMENTS_HELP = "Shots as `5: a cat walks | 5: it sits`; durations add up to duration"
JSON_HELP = 'JSON list, e.g. [{"frontal_image_url": "https://…"}]'


class Generate(commands.Cog):
    def __init__(self, bot: VideoBot) -> None:
        self.bot = bot
        self.commands = [model_command(model, self.generate) for model in bot.catalog]

    async def cog_load(self) -> None:
        for command in self.commands:
            self.bot.tree.add_command(command)

    async def cog_unload(self) -> None:
        for command in self.commands:
            self.bot.tree.remove_command(command.name)

    async def generate(self, interaction: discord.Interaction, model: ModelSpec,
                       values: dict[str, Any]) -> None:
        """Defer (nothing comes before it), then start the job; every refusal is raised for
        the error handler."""
        await defer(interaction)
        attachments = {k: v for k, v in values.items() if isinstance(v, discord.Attachment)}
        options = {k: v for k, v in values.items() if v is not None and k not in attachments}
        job = await self.bot.parts.jobs.request(JobRequest(
            model, options, requester_of(interaction),
            images={name: ImageInput(attachment) for name, attachment in attachments.items()},
            check_place=lambda: check_can_post_here(interaction)))
        await answer_queued(interaction, job)


def model_command(model: ModelSpec, run: Any) -> app_commands.Command[Any, ..., None]:
    """A slash command whose options follow ``model``'s input fields."""
    parameters = [inspect.Parameter("interaction", inspect.Parameter.POSITIONAL_OR_KEYWORD,
                                    annotation=discord.Interaction)]
    descriptions: dict[str, str] = {}
    for field in model.fields:
        required = field.required and field.default is None
        parameters.append(inspect.Parameter(
            field.option_name, inspect.Parameter.KEYWORD_ONLY, annotation=option_type(field),
            default=inspect.Parameter.empty if required else None))
        descriptions[field.option_name] = option_description(field)

    async def callback(interaction: discord.Interaction, /, **values: Any) -> None:
        await run(interaction, model, values)

    callback.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]
    callback.__name__ = model.command.replace("-", "_")
    app_commands.describe(**descriptions)(callback)
    command: app_commands.Command[Any, ..., None] = app_commands.Command(
        name=model.command, description=model.description, callback=callback)
    return app_commands.guild_only(command)


def option_type(field: FieldSpec) -> Any:
    """The annotation discord.py turns into the option: choices, ranges, attachments."""
    if field.type == "image":
        return discord.Attachment
    if field.enum is not None and len(field.enum) <= 25:
        return cast(Any, Literal)[tuple(field.enum)]
    base: type = {"integer": int, "number": float, "boolean": bool}.get(field.type, str)
    if base is str and field.max_length is not None:
        return cast(Any, app_commands.Range)[str, 1, field.max_length]
    if base in (int, float) and (field.minimum is not None or field.maximum is not None):
        low = None if field.minimum is None else base(field.minimum)
        high = None if field.maximum is None else base(field.maximum)
        return cast(Any, app_commands.Range)[base, low, high]
    return base


def option_description(field: FieldSpec) -> str:
    if field.type == "array":
        text = SEGMENTS_HELP if field.is_segments else JSON_HELP
    else:
        text = field.description or field.title or field.name
        if field.default not in (None, ""):
            default = str(field.default).lower() if isinstance(field.default, bool) \
                else field.default
            suffix = f" (default {default})"
            if len(text) + len(suffix) <= MAX_DESCRIPTION:
                text += suffix
    return text if len(text) <= MAX_DESCRIPTION else text[: MAX_DESCRIPTION - 1] + "…"


async def setup(bot: commands.Bot) -> None:
    await bot.add_cog(Generate(cast(VideoBot, bot)))
