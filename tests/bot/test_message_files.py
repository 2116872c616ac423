"""The compiled catalogs the bot reads: each ``.mo`` in the repository is compiled from its
``.po`` as it stands, and a ``.mo`` older than its ``.po`` is never what a member reads."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from bot.i18n import COMMAND_NAME, Catalogs, Entry, catalog_files, compiled_po, read_compiled
from bot.message_files import add_language, template


@pytest.mark.parametrize("po", catalog_files(), ids=lambda po: po.parent.parent.name)
def test_each_shipped_catalog_is_read_compiled_from_its_po_as_it_stands(
        po: Path, caplog: pytest.LogCaptureFixture) -> None:
    """If this fails, run ``python -m bot messages`` (it compiles every catalog)."""
    with caplog.at_level(logging.WARNING, logger="bot.i18n"):
        words = read_compiled(po)
    assert not caplog.records, f"{po.with_suffix('.mo')} is not compiled from {po}"
    from_po = compiled_po(po.read_bytes(), po.parent.parent.name)
    header = ""  # the metadata: the .mo's version is the .po's digest
    assert {k: v for k, v in words._catalog.items() if k != header} == {
        k: v for k, v in from_po._catalog.items() if k != header}  # gettext's table


def test_a_po_edited_after_its_mo_is_read_from_the_po(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    po = add_language("it", template([Entry("quota", COMMAND_NAME)]), tmp_path)
    assert po.with_suffix(".mo").exists()
    po.write_text(po.read_text().replace('msgid "quota"\nmsgstr ""',
                                         'msgid "quota"\nmsgstr "quota_it"'))
    with caplog.at_level(logging.WARNING, logger="bot.i18n"):
        assert Catalogs.load(tmp_path).pgettext("it", COMMAND_NAME, "quota") == "quota_it"
    assert [r.getMessage() for r in caplog.records] == [
        f"bot.mo is missing or not compiled from {po} as it stands: the .po is compiled "
        "instead (run `python -m bot messages`)"]


def test_a_missing_mo_is_compiled_from_the_po(tmp_path: Path) -> None:
    po = add_language("it", template([Entry("quota", COMMAND_NAME)]), tmp_path)
    po.write_text(po.read_text().replace('msgid "quota"\nmsgstr ""',
                                         'msgid "quota"\nmsgstr "quota_it"'))
    po.with_suffix(".mo").unlink()
    assert Catalogs.load(tmp_path).pgettext("it", COMMAND_NAME, "quota") == "quota_it"
