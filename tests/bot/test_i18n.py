"""The message catalogs: every shipped language has every text, translated, with the same
placeholders, in words Discord takes where each is shown."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog

from bot.i18n import COMMAND_NAME, OPTION_NAME, Catalogs, Entry, catalog_name, said, speaking
from bot.message_files import (
    add_language,
    read_catalogs,
    read_template,
    template,
    update_catalogs,
)
from bot.server_keys import NOT_ACCEPTED, REFUSED

# The languages the README promises (gettext's names), besides English, the source.
SHIPPED = {"ja", "ko", "zh_CN", "zh_TW", "es", "pt_BR", "fr", "de", "ru"}
PLACEHOLDER = re.compile(r"\{(\w*)\}|%\((\w+)\)[sd]")
NAME = re.compile(r"^[-_\w]{1,32}$")  # Discord's rule, as far as Python's \w reads it


def singular(message_id: object) -> str:
    return str(message_id[0] if isinstance(message_id, tuple) else message_id)


def keys(catalog: Catalog) -> set[tuple[str | None, str]]:
    return {(m.context, singular(m.id)) for m in catalog if m.id}


def placeholders(text: str) -> list[str]:
    return sorted("".join(found) for found in PLACEHOLDER.findall(text))


def test_every_promised_language_has_a_catalog() -> None:
    assert {name for name, _ in read_catalogs()} == SHIPPED
    assert Catalogs.load().languages == ["en", *sorted(SHIPPED)]


@pytest.mark.parametrize("language", sorted(SHIPPED))
def test_a_catalog_holds_every_text_translated_with_its_placeholders(language: str) -> None:
    wanted = keys(read_template())
    [catalog] = [c for name, c in read_catalogs() if name == language]
    assert keys(catalog) == wanted
    for message in catalog:
        if not message.id:
            continue
        forms = list(message.string) if isinstance(message.string, tuple) \
            else [message.string]
        english = list(message.id) if isinstance(message.id, tuple) else [message.id]
        assert all(forms), f"{language}: {message.context}: {message.id!r} untranslated"
        assert not message.fuzzy, f"{language}: {message.id!r} needs a translator's check"
        if isinstance(message.id, tuple):
            assert len(forms) == catalog.num_plurals, (language, message.id)
        for form in forms:  # a plural's every form has the plural's placeholders
            assert set(placeholders(str(form))) == set(placeholders(str(english[-1]))), form
        if message.context in (COMMAND_NAME, OPTION_NAME):
            text = str(message.string)
            assert text == text.lower() and NAME.fullmatch(text), (language, text)


@pytest.mark.parametrize(("locale", "catalog"), [
    ("ja", "ja"), ("pt-BR", "pt_BR"), ("zh-TW", "zh_TW"), ("es-ES", "es"), ("es-419", "es"),
    ("en-US", "en"), ("en-GB", "en")])
def test_discords_locales_find_their_catalog(locale: str, catalog: str) -> None:
    assert catalog_name(locale) == catalog


def test_english_and_unknown_locales_get_the_english_words() -> None:
    catalogs = Catalogs.load()
    assert catalogs.pgettext("ja", COMMAND_NAME, "quota") not in (None, "quota")
    assert catalogs.pgettext("en-US", COMMAND_NAME, "quota") is None
    assert catalogs.pgettext("tlh", COMMAND_NAME, "quota") is None  # no catalog: English
    assert catalogs.pgettext("ja", COMMAND_NAME, "not a text of the bot") is None



def test_a_kept_text_is_said_with_its_values_in_the_language_in_use() -> None:
    german = Catalogs.load().translations("de")
    stored = REFUSED.format(ending="…abcd", reason=NOT_ACCEPTED)
    with speaking("de"):
        assert said(stored) == str(german.gettext(REFUSED)).format(
            ending="…abcd", reason=german.gettext(NOT_ACCEPTED))
        # A value the catalogs do not know (what RunComfy said) stays as it is.
        assert said(REFUSED.format(ending="…abcd", reason="No.")) == str(
            german.gettext(REFUSED)).format(ending="…abcd", reason="No.")
        assert said("Something RunComfy said.") == "Something RunComfy said."
    with speaking("en-US"):
        assert said(stored) == stored


def test_a_new_language_starts_from_the_template_and_follows_it(tmp_path: Path) -> None:
    """What a newcomer does to add a language (``python -m bot messages --add it``), and what
    ``messages`` does when the bot's texts change."""
    first = template([Entry("quota", COMMAND_NAME), Entry("What you can still make here.",
                                                          "command description")])
    path = add_language("it", first, tmp_path)
    assert path == tmp_path / "it" / "LC_MESSAGES" / "bot.po"
    with pytest.raises(FileExistsError):
        add_language("it", first, tmp_path)
    text = path.read_text().replace('msgid "quota"\nmsgstr ""', 'msgid "quota"\nmsgstr "quota_it"')
    path.write_text(text)
    assert update_catalogs(first, tmp_path) == ["it: 1 of 2 texts to translate"]
    assert Catalogs.load(tmp_path).pgettext("it", COMMAND_NAME, "quota") == "quota_it"
    later = template([Entry("quota", COMMAND_NAME), Entry("jobs", COMMAND_NAME)])
    assert update_catalogs(later, tmp_path) == ["it: 1 of 2 texts to translate"]
    [(_, catalog)] = list(read_catalogs(tmp_path))
    assert keys(catalog) == {(COMMAND_NAME, "quota"), (COMMAND_NAME, "jobs")}
    assert Catalogs.load(tmp_path).pgettext("it", COMMAND_NAME, "quota") == "quota_it"


def test_a_language_is_read_when_it_is_first_spoken(tmp_path: Path) -> None:
    """A process holds the words of the languages it speaks: a catalog is read and compiled
    when its language is first asked for (so its file, as it is then), once."""
    first = template([Entry("quota", COMMAND_NAME)])
    path = add_language("it", first, tmp_path)
    catalogs = Catalogs.load(tmp_path)
    assert catalogs.languages == ["en", "it"]
    path.write_text(path.read_text().replace('msgid "quota"\nmsgstr ""',
                                             'msgid "quota"\nmsgstr "quota_it"'))
    assert catalogs.pgettext("it", COMMAND_NAME, "quota") == "quota_it"
    path.unlink()
    assert catalogs.pgettext("it", COMMAND_NAME, "quota") == "quota_it"
