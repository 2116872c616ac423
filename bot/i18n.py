"""The bot's message catalogs: gettext ``.po`` files under ``bot/locales`` (one per language,
English being the source), compiled with Babel in memory when the bot starts (no compiled
file is kept in the repository), and which catalog serves which of Discord's locales.

Discord names its locales ``ja``, ``pt-BR``, ``es-419``...; a catalog is named as gettext names
languages (``ja``, ``pt_BR``, ``es``). A locale with no catalog of its own is English."""

from __future__ import annotations

import io
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po, write_po
from babel.support import NullTranslations, Translations

DOMAIN = "bot"
LOCALES_DIR = Path(__file__).parent / "locales"
TEMPLATE = LOCALES_DIR / f"{DOMAIN}.pot"
SOURCE = "en"  # the language the messages are written in
# Discord's locales whose catalog is not named as the locale is (the rest: the same name, with
# "-" as "_"): Spanish of Spain and of Latin America share one catalog; English is the source.
CATALOG_OF: Mapping[str, str] = {"en-US": SOURCE, "en-GB": SOURCE, "es-ES": "es",
                                 "es-419": "es", "sv-SE": "sv"}
# Where each command text is used, as the msgctxt of its entry (translators see it).
COMMAND_NAME = "command name"
COMMAND_DESCRIPTION = "command description"
OPTION_NAME = "option name"
OPTION_DESCRIPTION = "option description"
CHOICE_NAME = "choice name"
MENU_NAME = "menu name"  # a context menu's (Apps > ...): spaces and capitals allowed
COMMAND_CONTEXTS = (COMMAND_NAME, COMMAND_DESCRIPTION, OPTION_NAME, OPTION_DESCRIPTION,
                    CHOICE_NAME, MENU_NAME)


def catalog_name(locale: str) -> str:
    """The catalog that serves Discord's ``locale`` (``pt-BR`` -> ``pt_BR``)."""
    return CATALOG_OF.get(locale, locale.replace("-", "_"))


@dataclass(frozen=True)
class Entry:
    """One text to translate: its English words and where they are used."""

    message: str
    context: str | None = None


class Catalogs:
    """Every language's translations, compiled once; looked up by Discord's locale."""

    def __init__(self, translations: Mapping[str, Translations]) -> None:
        self._translations = dict(translations)

    @classmethod
    def load(cls, directory: Path = LOCALES_DIR) -> Catalogs:
        """Read and compile every ``<language>/LC_MESSAGES/bot.po`` under ``directory``."""
        return cls({name: compiled(catalog) for name, catalog in read_catalogs(directory)})

    @property
    def languages(self) -> list[str]:
        """The catalogs' names, English (the source) first."""
        return [SOURCE, *sorted(self._translations)]

    def translations(self, locale: str) -> NullTranslations:
        """What serves ``locale``: its catalog, else the English source as written."""
        return self._translations.get(catalog_name(locale)) or NullTranslations()

    def pgettext(self, locale: str, context: str, message: str) -> str | None:
        """``message`` (used where ``context`` says) in ``locale``; ``None`` when the
        catalog has no other words for it (English, or an entry not translated)."""
        translated = str(self.translations(locale).pgettext(context, message))
        return None if translated == message else translated


def read_catalogs(directory: Path = LOCALES_DIR) -> Iterator[tuple[str, Catalog]]:
    """Each language's catalog as written (``.po``), by its name."""
    for path in sorted(directory.glob(f"*/LC_MESSAGES/{DOMAIN}.po")):
        name = path.parent.parent.name
        with path.open("rb") as file:
            yield name, read_po(file, locale=name, domain=DOMAIN)


def read_template(path: Path = TEMPLATE) -> Catalog:
    with path.open("rb") as file:
        return read_po(file, domain=DOMAIN)


def compiled(catalog: Catalog) -> Translations:
    """``catalog`` as gettext reads it, compiled in memory (fuzzy entries left out)."""
    buffer = io.BytesIO()
    write_mo(buffer, catalog, use_fuzzy=False)
    buffer.seek(0)
    return Translations(buffer, domain=DOMAIN)


def template(entries: list[Entry]) -> Catalog:
    """The catalog every language's is made from: ``entries`` with no translation."""
    catalog = Catalog(domain=DOMAIN, project="RunComfy Video Bot", header_comment=HEADER,
                      fuzzy=False)
    for entry in entries:
        catalog.add(entry.message, context=entry.context)
    return catalog


def write_catalog(catalog: Catalog, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as file:
        write_po(file, catalog, width=100, omit_header=False, sort_output=False,
                 include_previous=False)


def update_catalogs(template: Catalog, directory: Path = LOCALES_DIR) -> list[str]:
    """Write ``template`` and bring every language's catalog in line with it: new texts added
    untranslated, texts no longer used dropped, changed ones marked fuzzy (not used until a
    translator checks them). One line per catalog: what is left to translate."""
    write_catalog(template, directory / f"{DOMAIN}.pot")
    lines = []
    for name, catalog in read_catalogs(directory):
        catalog.update(template, no_fuzzy_matching=False)
        catalog.obsolete.clear()
        write_catalog(catalog, directory / name / "LC_MESSAGES" / f"{DOMAIN}.po")
        left = [m for m in catalog if m.id and (not m.string or m.fuzzy)]
        lines.append(f"{name}: {len(left)} of {len(template)} texts to translate"
                     if left else f"{name}: complete ({len(template)} texts)")
    return lines


def add_language(name: str, template: Catalog, directory: Path = LOCALES_DIR) -> Path:
    """A new language's catalog, every text untranslated, from ``template``."""
    path = directory / name / "LC_MESSAGES" / f"{DOMAIN}.po"
    if path.exists():
        raise FileExistsError(f"{path} exists already")
    catalog = Catalog(locale=name, domain=DOMAIN, project="RunComfy Video Bot",
                      header_comment=HEADER, fuzzy=False)
    catalog.update(template)
    write_catalog(catalog, path)
    return path


HEADER = """\
# The RunComfy Video Bot's texts, made by `python -m bot messages`.
# Translate the msgstr lines, never the msgid (the English).
# msgctxt says where a text is shown. Names: lowercase, no spaces,
# at most 32 characters. Descriptions: at most 100 characters."""
