"""The bot's message catalogs: gettext ``.po`` files under ``bot/locales`` (one per language,
English being the source), each with the ``.mo`` compiled from it beside it (written by
``python -m bot messages``: ``bot.message_files``), read when its language is first spoken;
and which catalog serves which of Discord's locales.

Discord names its locales ``ja``, ``pt-BR``, ``es-419``...; a catalog is named as gettext names
languages (``ja``, ``pt_BR``, ``es``). A locale with no catalog of its own is English."""

from __future__ import annotations

import contextlib
import functools
import hashlib
import io
import logging
import re
from collections.abc import Iterator, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from babel import Locale, UnknownLocaleError
from babel.dates import format_skeleton
from babel.numbers import format_currency, format_decimal
from babel.support import NullTranslations, Translations
from babel.units import format_unit

if TYPE_CHECKING:
    from babel.messages.catalog import Catalog

log = logging.getLogger(__name__)

DOMAIN = "bot"
LOCALES_DIR = Path(__file__).parent / "locales"
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


# The languages the bot speaks, by Discord's locale, each by its own name (/settings language).
LANGUAGES: Mapping[str, str] = {
    "en-US": "English", "ja": "日本語", "ko": "한국어", "zh-CN": "简体中文", "zh-TW": "繁體中文",
    "es-ES": "Español", "pt-BR": "Português do Brasil", "fr": "Français", "de": "Deutsch",
    "ru": "Русский"}


def catalog_name(locale: str) -> str:
    """The catalog that serves Discord's ``locale`` (``pt-BR`` -> ``pt_BR``)."""
    return CATALOG_OF.get(locale, locale.replace("-", "_"))


@dataclass(frozen=True)
class Entry:
    """One text to translate: its English words and where they are used."""

    message: str
    context: str | None = None
    plural: str | None = None  # the English plural, for a text that has one (``ngettext``)


class Catalogs:
    """Every language's translations, looked up by Discord's locale; a catalog given as its
    ``.po`` file is read (compiled: ``read_compiled``) the first time its language is spoken
    (a process that never speaks Korean never holds Korean's words)."""

    def __init__(self, translations: Mapping[str, Translations | Path]) -> None:
        self._translations = dict(translations)

    @classmethod
    def load(cls, directory: Path = LOCALES_DIR) -> Catalogs:
        """Every ``<language>/LC_MESSAGES/bot.po`` under ``directory``, read when first asked
        for."""
        return cls({path.parent.parent.name: path for path in catalog_files(directory)})

    @property
    def languages(self) -> list[str]:
        """The catalogs' names, English (the source) first."""
        return [SOURCE, *sorted(self._translations)]

    def translations(self, locale: str) -> NullTranslations:
        """What serves ``locale``: its catalog, else the English source as written."""
        name = catalog_name(locale)
        found = self._translations.get(name)
        if isinstance(found, Path):
            found = self._translations[name] = read_compiled(found)
        return found or NullTranslations()

    def pgettext(self, locale: str, context: str, message: str) -> str | None:
        """``message`` (used where ``context`` says) in ``locale``; ``None`` when the
        catalog has no other words for it (English, or an entry not translated)."""
        translated = str(self.translations(locale).pgettext(context, message))
        return None if translated == message else translated


def catalog_files(directory: Path = LOCALES_DIR) -> list[Path]:
    return sorted(directory.glob(f"*/LC_MESSAGES/{DOMAIN}.po"))


def source_digest(source: bytes) -> str:
    """What a compiled catalog records of the ``.po`` it was compiled from (its version)."""
    return hashlib.sha256(source).hexdigest()[:20]


def read_compiled(po: Path) -> Translations:
    """The language's words: its compiled ``.mo`` beside the ``.po`` when compiled from the
    ``.po`` as it stands (``python -m bot messages`` writes both); else the ``.po``, compiled
    here, which holds five times the memory afterwards (Babel's parse leaves it behind)."""
    source = po.read_bytes()
    digest = source_digest(source)
    with contextlib.suppress(OSError), po.with_suffix(".mo").open("rb") as file:
        words = Translations(file, domain=DOMAIN)
        if words.info().get("project-id-version", "").endswith(" " + digest):
            return words
    log.warning("%s is missing or not compiled from %s as it stands: the .po is compiled "
                "instead (run `python -m bot messages`)", po.with_suffix(".mo").name, po)
    return compiled_po(source, po.parent.parent.name)


def compiled_po(source: bytes, name: str) -> Translations:
    """A ``.po`` file's words, compiled in memory (fuzzy entries left out)."""
    from babel.messages.pofile import read_po

    return compiled(read_po(io.BytesIO(source), locale=name, domain=DOMAIN))


def compiled(catalog: Catalog) -> Translations:
    """``catalog`` as gettext reads it, compiled in memory."""
    return Translations(io.BytesIO(mo_bytes(catalog)), domain=DOMAIN)


def mo_bytes(catalog: Catalog) -> bytes:
    """``catalog`` compiled: a ``.mo`` file's bytes (fuzzy entries left out)."""
    from babel.messages.mofile import write_mo

    buffer = io.BytesIO()
    write_mo(buffer, catalog, use_fuzzy=False)
    return buffer.getvalue()


# --- Speaking: the words of the language in use, chosen per interaction or per server -------

SOURCE_LOCALE = "en-US"
_ENGLISH = Locale.parse("en_US")  # Babel's, for the source


@dataclass(frozen=True)
class Voice:
    """The words and formats of one Discord locale: what ``speak`` sets for a task, so each
    message looks up no more than its own words."""

    locale: str
    words: NullTranslations | None  # None: the source, English as written (no catalog read)
    where: Locale | None  # Babel's locale for numbers, money and dates; None: the source's


@functools.lru_cache(maxsize=64)
def voice(locale: str) -> Voice:
    """``locale``'s voice, made once (a catalog's language compiles the catalogs if they are
    not yet: the bot does it before it connects)."""
    if catalog_name(locale) == SOURCE:
        return Voice(locale, None, None)
    try:
        where = Locale.parse(locale.replace("-", "_"))
    except (UnknownLocaleError, ValueError):
        where = _ENGLISH
    return Voice(locale, catalogs().translations(locale), where)


_SOURCE_VOICE = voice(SOURCE_LOCALE)
_speaking: ContextVar[Voice] = ContextVar("speaking")  # unset: the source


def _in_use() -> Voice:
    return _speaking.get(_SOURCE_VOICE)


@functools.cache
def catalogs() -> Catalogs:
    """The bot's catalogs, compiled once per process."""
    return Catalogs.load()


def speak(locale: str | None) -> None:
    """Answer in Discord's ``locale`` from here on, in this task (and the tasks it starts): an
    interaction's entry point calls it with the member's, the channel's work with the
    server's."""
    _speaking.set(voice(locale or SOURCE_LOCALE))


@contextlib.contextmanager
def speaking(locale: str | None) -> Iterator[None]:
    """Words in Discord's ``locale`` within the block."""
    token = _speaking.set(voice(locale or SOURCE_LOCALE))
    try:
        yield
    finally:
        _speaking.reset(token)


def spoken() -> str:
    """Discord's locale of the words in use."""
    return _in_use().locale


def in_source() -> bool:
    """Whether the words in use are the source's (English, as the messages are written)."""
    return _in_use().words is None


def N_(message: str, /) -> str:
    """Marks ``message`` for the catalogs where it is defined; translated where it is used."""
    return message


def _(message: str, /, **values: object) -> str:
    """``message`` in the language in use, its ``{placeholders}`` filled with ``values``.
    English, the source, is the message itself: no catalog is read (or compiled) for it."""
    words = _in_use().words
    text = message if words is None else str(words.gettext(message))
    return text.format(**values) if values else text


_KEPT: list[tuple[re.Pattern[str], str]] = []  # kept templates, as patterns of their values


def kept(template: str, /) -> str:
    """Marks ``template`` (itself marked ``N_``) as one whose filled-in text is kept in English
    (a job's reason): ``said`` then knows it with any values in its ``{placeholders}``."""
    fields = re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>.+?)", re.escape(template))
    _KEPT.append((re.compile(fields, re.DOTALL), template))
    return template


def said(text: str, /) -> str:
    """A text kept as the bot wrote it (a job's reason, in English) in the language in use, if
    the catalogs know it (marked ``N_`` where it is written, or ``kept`` with its values, which
    are said in turn); anything else (what RunComfy said) as it is."""
    words = _in_use().words
    if not text or words is None:
        return text
    if (translated := str(words.gettext(text))) != text:
        return translated
    for pattern, template in _KEPT:
        if match := pattern.fullmatch(text):
            values = {name: said(value) for name, value in match.groupdict().items()}
            return str(words.gettext(template)).format(**values)
    return text


def ngettext(singular: str, plural: str, n: int, /, **values: object) -> str:
    """The form of ``singular``/``plural`` for ``n`` in the language in use (Russian has three,
    Japanese one), ``{n}`` and ``values`` filled in."""
    words = _in_use().words
    text = (singular if n == 1 else plural) if words is None else str(
        words.ngettext(singular, plural, n))
    return text.format(n=number(n), **values)


def babel_locale() -> Locale:
    """Babel's locale for the language in use (English: the source's)."""
    return _in_use().where or _ENGLISH



def number(value: float) -> str:
    """``1,234`` in English, ``1.234`` in German, ``1 234`` in Russian."""
    where = _in_use().where
    return str(value) if where is None else _decimal(value, where)


def money(usd: float) -> str:
    """An amount in US dollars as the language writes it: ``$10.00``, ``10,00 $``."""
    where = _in_use().where
    return f"${usd:.2f}" if where is None else _currency(usd, where)


# Babel formats a number in tens of microseconds; a card shows the same few amounts again.
@functools.lru_cache(maxsize=4096)
def _decimal(value: float, where: Locale) -> str:
    return str(format_decimal(value, locale=where))


@functools.lru_cache(maxsize=4096)
def _currency(usd: float, where: Locale) -> str:
    return str(format_currency(usd, "USD", locale=where))


def day_and_month(moment: float) -> str:
    """``1 December``; ``12月1日`` in Japanese."""
    day = datetime.fromtimestamp(moment, UTC)
    return f"{day.day} {day:%B}" if in_source() else format_skeleton(
        "MMMMd", day, locale=babel_locale())


def units(*amounts: tuple[int, str]) -> str:
    """Amounts of time units (``minute``, ``second``, ``hour``) as the language abbreviates
    them: ``2 min 5 s``, ``2分 5秒``."""
    if in_source():
        short = {"hour": "h", "minute": "min", "second": "s"}
        return " ".join(f"{amount} {short[unit]}" for amount, unit in amounts)
    where = babel_locale()
    return " ".join(str(format_unit(amount, f"duration-{unit}", length="short", locale=where))
                    for amount, unit in amounts)
