"""Logs never show a token or a URL's signature (job lines: tests/bot/discord/test_logging)."""

from __future__ import annotations

import logging

from bot.logs import RedactingFormatter, redact
from tests.conftest import TOKEN


def test_the_formatter_redacts_what_slipped_through() -> None:
    url = "https://cdn.discordapp.com/attachments/1/2/cat.png?ex=6&is=7&hm=0ab1c2signature"
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "fetching %s with %s",
                               (url, f"Bearer {TOKEN}"), None)
    text = RedactingFormatter("%(message)s", [TOKEN]).format(record)
    assert text == "fetching https://cdn.discordapp.com/attachments/1/2/cat.png?… with Bearer ***"
    assert redact("no secrets here", [TOKEN, ""]) == "no secrets here"
