"""Writing the message catalogs (``python -m bot messages``): the template of every text the
code says, each language's ``.po`` brought in line with it, and beside each ``.po`` the ``.mo``
compiled from it, which the running bot reads (``bot.i18n.read_compiled``). Babel's tooling;
the bot itself never imports this module."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po, write_po

from bot.i18n import DOMAIN, LOCALES_DIR, Entry, catalog_files, mo_bytes, source_digest

TEMPLATE = LOCALES_DIR / f"{DOMAIN}.pot"
KEYWORDS = {"_": None, "N_": None, "ngettext": (1, 2)}  # the functions that mark messages
HEADER = """\
# The RunComfy Video Bot's texts, made by `python -m bot messages`.
# Translate the msgstr lines, never the msgid (the English).
# msgctxt says where a text is shown. Names: lowercase, no spaces,
# at most 32 characters. Descriptions: at most 100 characters."""


def read_catalogs(directory: Path = LOCALES_DIR) -> Iterator[tuple[str, Catalog]]:
    """Each language's catalog as written (``.po``), by its name."""
    for path in catalog_files(directory):
        name = path.parent.parent.name
        with path.open("rb") as file:
            yield name, read_po(file, locale=name, domain=DOMAIN)


def read_template(path: Path = TEMPLATE) -> Catalog:
    with path.open("rb") as file:
        return read_po(file, domain=DOMAIN)


def template(entries: list[Entry]) -> Catalog:
    """The catalog every language's is made from: ``entries`` with no translation."""
    catalog = Catalog(domain=DOMAIN, project="RunComfy Video Bot", header_comment=HEADER,
                      fuzzy=False)
    for entry in entries:
        catalog.add((entry.message, entry.plural) if entry.plural else entry.message,
                    context=entry.context)
    return catalog


def source_messages(*packages: Path) -> list[Entry]:
    """The messages the code says, marked ``_()``, ``ngettext()`` or ``N_()``, in the order they
    are written (Babel's extractor for Python), once each."""
    found: dict[Entry, None] = {}
    for package in packages:
        for _file, _line, message, _notes, context in extract_from_dir(
                package, method_map=[("**.py", "python")], keywords=KEYWORDS):
            if isinstance(message, tuple):
                found[Entry(message[0], context, message[1])] = None
            else:
                found[Entry(message, context)] = None
    return list(found)


def write_catalog(catalog: Catalog, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as file:
        write_po(file, catalog, width=100, omit_header=False, sort_output=False,
                 include_previous=False)


def update_catalogs(template: Catalog, directory: Path = LOCALES_DIR) -> list[str]:
    """Write ``template`` and bring every language's catalog in line with it (and compile it):
    new (or changed) texts added untranslated, texts no longer used dropped (no guessed
    translations: a guess from a similar text is wrong more often than not). One line per
    catalog: what is left to translate."""
    write_catalog(template, directory / f"{DOMAIN}.pot")
    lines = []
    for name, catalog in read_catalogs(directory):
        catalog.update(template, no_fuzzy_matching=True)
        catalog.obsolete.clear()
        po = directory / name / "LC_MESSAGES" / f"{DOMAIN}.po"
        write_catalog(catalog, po)
        write_compiled(po)
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
    write_compiled(path)
    return path


def write_compiled(po: Path) -> Path:
    """The ``.mo`` beside ``po``, compiled from it as it stands, with the ``.po``'s digest as
    its version: the bot reads it only while the two agree."""
    source = po.read_bytes()
    catalog = read_po(io.BytesIO(source), locale=po.parent.parent.name, domain=DOMAIN)
    catalog.version = source_digest(source)
    mo = po.with_suffix(".mo")
    mo.write_bytes(mo_bytes(catalog))
    return mo
