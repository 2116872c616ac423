"""Slash commands, their options and choices, and the context menus in each member's client
language: discord.py's ``app_commands.Translator`` reading the bot's message catalogs, and the
texts it is asked for, listed from the command tree (``python -m bot messages``)."""

from __future__ import annotations

import functools
import logging
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

import discord
from discord import app_commands
from discord.app_commands import TranslationContextLocation as Location

from bot.catalog import ModelSpec
from bot.i18n import (
    CHOICE_NAME,
    COMMAND_DESCRIPTION,
    COMMAND_NAME,
    MENU_NAME,
    OPTION_DESCRIPTION,
    OPTION_NAME,
    Catalogs,
    Entry,
    catalog_name,
)

if TYPE_CHECKING:
    from regex._main import Pattern

log = logging.getLogger(__name__)
LONGEST = {COMMAND_NAME: 32, OPTION_NAME: 32, MENU_NAME: 32, CHOICE_NAME: 100,
           COMMAND_DESCRIPTION: 100, OPTION_DESCRIPTION: 100}
_CONTEXTS = {Location.command_name: COMMAND_NAME, Location.group_name: COMMAND_NAME,
             Location.command_description: COMMAND_DESCRIPTION,
             Location.group_description: COMMAND_DESCRIPTION,
             Location.parameter_name: OPTION_NAME,
             Location.parameter_description: OPTION_DESCRIPTION,
             Location.choice_name: CHOICE_NAME}

AnyCommand = app_commands.Command[Any, ..., Any] | app_commands.Group | app_commands.ContextMenu


@functools.cache
def name_rule() -> Pattern[str]:
    """Discord's rule for slash command and option names (lowercase where the script has
    case), compiled when first needed: only the process that syncs the commands checks them."""
    import regex

    return regex.compile(r"^[-_\p{L}\p{N}\p{sc=Deva}\p{sc=Thai}]{1,32}$")


def valid_name(text: str) -> bool:
    return text == text.lower() and name_rule().fullmatch(text) is not None


def allowed(where: str, text: str) -> bool:
    """Whether Discord takes ``text`` where it is used."""
    if not 1 <= len(text) <= LONGEST[where]:
        return False
    return valid_name(text) if where in (COMMAND_NAME, OPTION_NAME) else True


class CommandTranslator(app_commands.Translator):
    """A text's translation in the member's language when its catalog has one; otherwise
    Discord shows the English text. A translation Discord would refuse (a name with a space,
    a description over 100 characters) is left out, so the sync never fails on it."""

    def __init__(self, catalogs: Catalogs,
                 models: Iterable[ModelSpec] = ()) -> None:
        """``models``: their own translations (a model file's ``translations``) serve the
        texts the catalogs do not have (an operator's model, say)."""
        self.catalogs = catalogs
        self.own: dict[str, dict[str, str]] = {}
        for model in models:
            for language, texts in model.translations:
                self.own.setdefault(language, {}).update(texts)

    async def translate(self, string: app_commands.locale_str, locale: discord.Locale,
                        context: app_commands.TranslationContextTypes) -> str | None:
        where = _CONTEXTS.get(context.location)
        if where is None:
            return None
        if where == COMMAND_NAME and isinstance(context.data, app_commands.ContextMenu):
            where = MENU_NAME
        text = self.catalogs.pgettext(locale.value, where, string.message) or \
            self.own.get(catalog_name(locale.value), {}).get(string.message)
        if text is None or text == string.message:
            return None
        if not allowed(where, text):
            log.warning("the %s translation of %s %r is not one Discord takes: %r",
                        locale.value, where, string.message, text)
            return None
        return text


def command_texts(commands: list[AnyCommand], kept: frozenset[str] = frozenset()
                  ) -> list[Entry]:
    """Every text of ``commands`` a member reads in Discord's menus, with where it is used,
    once each. Left out: the texts in ``kept`` (the models' commands keep their names, the
    languages theirs) and texts with no letter in them (choices such as ``16:9``, an option
    with no description)."""
    found = dict.fromkeys(e for e in _texts(commands)
                          if e.message not in kept and any(c.isalpha() for c in e.message))
    return list(found)


def _texts(commands: list[AnyCommand]) -> Iterator[Entry]:
    for command in commands:
        if isinstance(command, app_commands.ContextMenu):
            yield Entry(command.name, MENU_NAME)
            continue
        yield Entry(command.name, COMMAND_NAME)
        yield Entry(command.description, COMMAND_DESCRIPTION)
        if isinstance(command, app_commands.Group):
            yield from _texts(list(command.commands))
            continue
        for parameter in command.parameters:
            yield Entry(parameter.display_name, OPTION_NAME)
            yield Entry(parameter.description, OPTION_DESCRIPTION)
            for choice in parameter.choices:
                yield Entry(choice.name, CHOICE_NAME)
