"""The creative loop's forms: Vary (the prompt and a few options, prefilled) and Extend (the
prompt of the next shot)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import discord

from bot.catalog import ModelSpec
from bot.creative import options_of, prompt_field, vary_fields
from bot.discord.forms import Form, Report
from bot.i18n import _
from bot.jobs import Job

# What a form calls when submitted (the interaction, and the options or the prompt), and how it
# answers a failure.
Submit = Callable[[discord.Interaction, dict[str, object]], Awaitable[None]]
Extend = Callable[[discord.Interaction, str], Awaitable[None]]

FORM_TIMEOUT = 900
TEXT_MAX = 4000  # Discord's longest text input
LABEL_MAX = 45
Text = discord.ui.TextInput[discord.ui.View]
Select = discord.ui.Select[discord.ui.View]


def _label(text: str) -> str:
    return text if len(text) <= LABEL_MAX else text[: LABEL_MAX - 1] + "…"


class VaryModal(Form):
    """The prompt and the options a member is likely to change, prefilled; the same image."""

    def __init__(self, job: Job, model: ModelSpec, submit: Submit, report: Report) -> None:
        super().__init__(title=_("Vary job #{job}", job=job.id), timeout=FORM_TIMEOUT,
                         report=report)
        self.submit = submit
        self.job = job
        self.model = model
        self.inputs: dict[str, Text | Select] = {}
        prompt = prompt_field(model)
        if prompt is not None:
            current = job.body.get(prompt.name)
            self._add(prompt.title or _("Prompt"), discord.ui.TextInput(
                style=discord.TextStyle.paragraph, custom_id=prompt.option_name,
                required=prompt.required, max_length=min(prompt.max_length or TEXT_MAX, TEXT_MAX),
                default=current if isinstance(current, str) and current else None))
        for field in vary_fields(model):
            current = job.body.get(field.name)
            item: Text | Select
            if field.enum is not None and len(field.enum) <= 25:
                item = discord.ui.Select(custom_id=field.option_name, options=[
                    discord.SelectOption(label=str(value), value=str(value),
                                         default=value == current) for value in field.enum])
            else:
                item = discord.ui.TextInput(
                    custom_id=field.option_name, required=False,
                    max_length=min(field.max_length or TEXT_MAX, TEXT_MAX),
                    style=discord.TextStyle.paragraph if field.type == "string"
                    else discord.TextStyle.short,
                    default=None if current in (None, "") else str(current))
            self._add(field.title or field.option_name, item)

    def _add(self, label: str, item: Text | Select) -> None:
        assert item.custom_id is not None
        self.inputs[item.custom_id] = item
        self.add_item(discord.ui.Label(text=_label(label), component=item))

    async def submitted(self, interaction: discord.Interaction) -> None:
        options = options_of(self.model, self.job.body)
        for name, item in self.inputs.items():
            if isinstance(item, discord.ui.TextInput):
                field = next(f for f in self.model.fields if f.option_name == name)
                if item.value.strip() or field.type == "string":
                    options[name] = item.value
                else:
                    options.pop(name, None)  # emptied: the model's default
            elif item.values:
                options[name] = item.values[0]
        await self.submit(interaction, options)


class ExtendModal(Form):
    """What happens next: the prompt of the shot that starts from the video's last frame."""

    def __init__(self, job: Job, model: ModelSpec, submit: Extend, report: Report) -> None:
        super().__init__(title=_("Extend job #{job}", job=job.id), timeout=FORM_TIMEOUT,
                         report=report)
        self.submit = submit
        field = prompt_field(model)
        self.prompt: Text = discord.ui.TextInput(
            style=discord.TextStyle.paragraph, custom_id="prompt",
            required=field.required if field else False,
            max_length=min((field.max_length if field else None) or TEXT_MAX, TEXT_MAX),
            placeholder=_("What happens next?"),
            default=job.prompt[:TEXT_MAX] or None)
        self.add_item(discord.ui.Label(text=_("Prompt"), component=self.prompt,
                                       description=_("The next shot starts from the last "
                                                     "frame")))

    async def submitted(self, interaction: discord.Interaction) -> None:
        await self.submit(interaction, self.prompt.value)
