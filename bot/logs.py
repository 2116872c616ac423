"""Logging set-up: one format, and nothing secret in it however it got there."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable

_SIGNED_QUERY = re.compile(r"(https?://[^\s?#'\"]+)\?[^\s'\"]*")


def redact(text: str, secrets: Iterable[str]) -> str:
    """Tokens replaced by ``***``; URL query strings (where signatures live) dropped."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return _SIGNED_QUERY.sub(r"\1?…", text)


class RedactingFormatter(logging.Formatter):
    def __init__(self, fmt: str, secrets: Iterable[str]) -> None:
        super().__init__(fmt)
        self.secrets = [s for s in secrets if s]

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record), self.secrets)


def setup_logging(level: str, secrets: Iterable[str]) -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(RedactingFormatter(
        "%(asctime)s %(levelname)s %(name)s: %(message)s", secrets))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
