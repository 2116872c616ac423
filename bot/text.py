"""Lengths of time as a member reads them, in refusals, cards and ``/quota``, in the language
in use (``bot.i18n``)."""

from __future__ import annotations

from bot.i18n import units


def duration_text(seconds: float) -> str:
    """``2 min 5 s``, or ``45 s``."""
    minutes, secs = divmod(round(seconds), 60)
    return units((minutes, "minute"), (secs, "second")) if minutes else units((secs, "second"))


def hours_text(seconds: float) -> str:
    """``3 h 12 min``, or ``40 min`` (at least a minute)."""
    minutes = max(int(seconds // 60), 1)
    hours, minutes = divmod(minutes, 60)
    return units((hours, "hour"), (minutes, "minute")) if hours else units((minutes, "minute"))
