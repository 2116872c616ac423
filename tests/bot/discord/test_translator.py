"""Slash commands in each member's language: the payload synced to Discord carries every
command's, option's and choice's localisations, each one Discord takes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from babel.messages.catalog import Catalog as BabelCatalog

from bot.catalog import CatalogError, load_catalog
from bot.catalog.loader import BUILTIN_DIR, load_model_file
from bot.config import Settings
from bot.discord.message_texts import listed_texts
from bot.discord.translator import CommandTranslator, name_rule
from bot.i18n import Catalogs, compiled
from bot.message_files import read_template
from cogs.generate import model_command
from tests.discord_world import World

SHIPPED = ["ja", "ko", "zh-CN", "zh-TW", "es-ES", "es-419", "pt-BR", "fr", "de", "ru"]


def synced(world: World) -> list[dict[str, Any]]:
    [put] = [r for r in world.env.http_requests
             if r.method == "PUT" and r.path.endswith("/commands")]
    commands: list[dict[str, Any]] = put.json
    return commands


def options_of(command: dict[str, Any]) -> list[dict[str, Any]]:
    """A command's options, and its subcommands' (with theirs)."""
    found = []
    for option in command.get("options", []):
        found.append(option)
        found.extend(options_of(option))
    return found


async def test_the_template_lists_exactly_the_texts_of_the_bot() -> None:
    """``bot/locales/bot.pot`` is what ``python -m bot messages`` makes of the commands and
    the code's messages today (run it after changing a command, a model's description or a
    message)."""
    listed = await listed_texts(Settings(), load_catalog())
    assert {(e.context, e.message, e.plural) for e in listed} == {
        (m.context, *(m.id if isinstance(m.id, tuple) else (m.id, None)))
        for m in read_template() if m.id}


async def test_every_synced_name_and_description_is_localised_as_discord_takes_it(
        world: World) -> None:
    commands = synced(world)
    catalogs = Catalogs.load()
    models = {model.command for model in world.bot.catalog}
    for command in commands:
        names = command.get("name_localizations") or {}
        where = "command name" if command["type"] == 1 else "menu name"
        if command["name"] in models:  # a model's command keeps the model's name
            assert names == {}
        else:  # every language whose word differs from the English one
            assert set(names) == {locale for locale in SHIPPED
                                  if catalogs.pgettext(locale, where, command["name"])}
        for locale, name in names.items():
            if command["type"] == 1:
                assert name == name.lower() and name_rule().fullmatch(name), (locale, name)
            assert 1 <= len(name) <= 32
        for locale, text in (command.get("description_localizations") or {}).items():
            assert 1 <= len(text) <= 100, (locale, text)
        for option in options_of(command):
            for locale, name in (option.get("name_localizations") or {}).items():
                assert name == name.lower() and name_rule().fullmatch(name), (locale, name)
            for text in (option.get("description_localizations") or {}).values():
                assert 1 <= len(text) <= 100
            for choice in option.get("choices", []):
                for text in (choice.get("name_localizations") or {}).values():
                    assert 1 <= len(text) <= 100
        if command["type"] == 1:
            assert set(command["description_localizations"]) == set(SHIPPED)
        # Option names stay unique within a command in every language.
        for locale in SHIPPED:
            for level in [command, *options_of(command)]:
                named = [o.get("name_localizations", {}).get(locale, o["name"])
                         for o in level.get("options", [])]
                assert len(named) == len(set(named)), (command["name"], locale, named)
    quota = next(c for c in commands if c["name"] == "quota")
    assert quota["name_localizations"]["ja"] == catalogs.pgettext("ja", "command name", "quota")
    assert quota["description_localizations"]["ko"] == catalogs.pgettext(
        "ko", "command description", "What you can still make here.")
    menu = next(c for c in commands if c["type"] == 3)
    assert menu["name_localizations"]["ja"] == catalogs.pgettext("ja", "menu name", menu["name"])


async def test_a_translation_discord_would_refuse_is_left_out(world: World) -> None:
    """A catalog's command name with a space would fail the whole sync: that one is not
    sent; the description, which may have spaces, is."""
    catalog = BabelCatalog(locale="ja", domain="bot")
    catalog.add("quota", "two words", context="command name")
    catalog.add("What you can still make here.", "two words", context="command description")
    translator = CommandTranslator(Catalogs({"ja": compiled(catalog)}))
    quota = world.bot.tree.get_command("quota")
    assert quota is not None
    payload = await quota.get_translated_payload(world.bot.tree, translator)
    assert payload["name_localizations"] == {}
    assert payload["description_localizations"] == {"ja": "two words"}


async def test_a_model_file_brings_its_own_translations(world: World, tmp_path: Path) -> None:
    """An operator's model (``bot.catalog_dirs``) carries its own words: they serve its
    command's texts where the bot's catalogs have none (Italian here, or a description only
    this model has); the catalogs' words come first."""
    builtin = json.loads((BUILTIN_DIR / "kling-2-1.json").read_text(encoding="utf-8"))
    builtin.update(command="my-model", description="My own model of the zebra.", translations={
        "it": {"My own model of the zebra.": "Il mio modello della zebra.", "prompt": "testo"},
        "ja": {"My own model of the zebra.": "私のシマウマのモデル。", "prompt": "ぷろんぷと"}})
    path = tmp_path / "my-model.json"
    path.write_text(json.dumps(builtin), encoding="utf-8")
    model = load_model_file(path)

    async def run(*_args: object) -> None:
        return None

    command = model_command(model, run)
    translator = CommandTranslator(Catalogs.load(), [model])
    payload = await command.get_translated_payload(world.bot.tree, translator)
    assert payload["description_localizations"]["it"] == "Il mio modello della zebra."
    assert payload["description_localizations"]["ja"] == "私のシマウマのモデル。"
    assert "ko" not in payload["description_localizations"]  # no one has Korean words for it
    [prompt] = [o for o in payload["options"] if o["name"] == "prompt"]
    assert prompt["name_localizations"]["it"] == "testo"
    assert prompt["name_localizations"]["ja"] == Catalogs.load().pgettext(
        "ja", "option name", "prompt")  # the catalog's, not the file's


def test_a_model_files_translations_are_checked(tmp_path: Path) -> None:
    builtin = json.loads((BUILTIN_DIR / "kling-2-1.json").read_text(encoding="utf-8"))
    builtin["translations"] = {"Japanese": {"prompt": "プロンプト"}}
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(builtin), encoding="utf-8")
    with pytest.raises(CatalogError, match="a language"):
        load_model_file(path)
