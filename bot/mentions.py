"""``@Bot a zebra turns its head --model kling-2-1 --duration 10``: words are the prompt,
``--flags`` are the model's options by their catalog names."""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass

from bot.catalog import Catalog, ModelSpec
from bot.errors import UserError
from bot.i18n import _

_MENTION = re.compile(r"<@!?\d+>")


@dataclass(frozen=True)
class MentionRequest:
    model: ModelSpec
    options: dict[str, object]


def parse_mention(text: str, catalog: Catalog, default_model: str) -> MentionRequest:
    """The model and options a mention asks for; ``UserError`` says what is accepted."""
    try:
        tokens = shlex.split(_MENTION.sub(" ", text))
    except ValueError:
        raise UserError(_("I could not read that: a quote is not closed.")) from None
    words: list[str] = []
    flags: dict[str, str] = {}
    index = 0
    while index < len(tokens):
        word = tokens[index]
        index += 1
        if not word.startswith("--") or word == "--":
            words.append(word)
            continue
        name, _equals, value = word[2:].partition("=")
        if not value:
            following = tokens[index] if index < len(tokens) else None
            if following is not None and not following.startswith("--"):
                value, index = following, index + 1
            else:
                value = "true"  # a bare --flag switches a yes/no option on
        flags[name.replace("-", "_").lower()] = value
    model = _model(flags.pop("model", default_model), catalog)
    known = {f.option_name: f for f in model.fields if f.type != "image"}
    unknown = sorted(name for name in flags if name not in known)
    if unknown:
        accepted = ", ".join(f"`--{name}`" for name in ["model", *known] if name != "prompt")
        raise UserError(_("`{command}` has no option {options}. It takes {accepted}; the "
                          "rest of the message is the prompt.", command=model.command,
                          options=_join(unknown), accepted=accepted))
    options: dict[str, object] = dict(flags)
    if words and "prompt" in known:  # after an unquoted --prompt's first word, the rest of it
        options["prompt"] = " ".join([*([flags["prompt"]] if "prompt" in flags else []), *words])
    return MentionRequest(model, options)


def _model(name: str, catalog: Catalog) -> ModelSpec:
    try:
        return catalog.by_command(name.lower())
    except KeyError:
        names = ", ".join(f"`{m.command}`" for m in catalog)
        raise UserError(_("There is no model `{model}`; pick one of {models}.", model=name,
                          models=names)) from None


def _join(names: list[str]) -> str:
    return ", ".join(f"`--{n}`" for n in names)
