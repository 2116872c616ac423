"""What Discord's side counts for the metrics: card edits (``card_edit``, around the edit,
tells a hook the outcome) and Discord's 429s (discord.py has no hook for them: its HTTP client
logs each one, and a handler on that logger counts the records)."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

import discord

if TYPE_CHECKING:  # loaded only by a process that serves its metrics
    from bot.metrics import Metrics

EDIT_OUTCOMES = {403: "forbidden", 404: "not_found", 429: "rate_limited"}
# discord.http's log lines for a 429 (its templates, before formatting): retried or raised.
RATE_LIMITED = "We are being rate limited."
GAVE_UP = "Timeout of"
GLOBAL = "Global rate limit has been hit."


@contextlib.contextmanager
def card_edit(count: Callable[[str], None] | None) -> Iterator[None]:
    """Tell ``count`` the outcome of the card edit made inside (``rcvb_card_edits``)."""
    outcome = "cancelled"
    try:
        yield
        outcome = "ok"
    except discord.HTTPException as exc:
        outcome = EDIT_OUTCOMES.get(exc.status, "error")
        raise
    except discord.RateLimited:
        outcome = "rate_limited"
        raise
    except Exception:
        outcome = "error"
        raise
    finally:
        if count is not None:
            count(outcome)


class RateLimits(logging.Handler):
    """Counts the 429s discord.py's HTTP client logs (``rcvb_discord_rate_limits``)."""

    def __init__(self, metrics: Metrics) -> None:
        super().__init__(logging.WARNING)
        self.metrics = metrics

    def emit(self, record: logging.LogRecord) -> None:
        template = record.msg if isinstance(record.msg, str) else ""
        if template.startswith(RATE_LIMITED):
            self.metrics.discord_rate_limits.labels(
                "raised" if GAVE_UP in template else "retried").inc()
        elif template.startswith(GLOBAL):
            self.metrics.discord_global_rate_limits.inc()
