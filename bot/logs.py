"""Logging set-up: text, or JSON (one object a line, with a job's fields as fields), and
nothing secret in it however it got there."""

from __future__ import annotations

import json
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


FIELDS = ("job_id", "guild_id", "model", "request_id", "shard")  # a job's, when it has them


class JsonFormatter(logging.Formatter):
    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__()
        self.secrets = [s for s in secrets if s]

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, object] = {"time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
                                   "level": record.levelname, "logger": record.name,
                                   "message": record.getMessage()}
        line |= {name: getattr(record, name) for name in FIELDS if hasattr(record, name)}
        if record.exc_info:
            line["error"] = self.formatException(record.exc_info)
        return redact(json.dumps(line, ensure_ascii=False, default=str), self.secrets)


def setup_logging(level: str, secrets: Iterable[str], log_format: str = "text") -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter(secrets) if log_format == "json" else RedactingFormatter(
        "%(asctime)s %(levelname)s %(name)s: %(message)s", secrets))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
