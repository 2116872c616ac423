"""Lengths of time as a member reads them, in refusals, cards and ``/quota``."""

from __future__ import annotations


def duration_text(seconds: float) -> str:
    """``2 min 5 s``, or ``45 s``."""
    minutes, secs = divmod(round(seconds), 60)
    return f"{minutes} min {secs} s" if minutes else f"{secs} s"


def hours_text(seconds: float) -> str:
    """``3 h 12 min``, or ``40 min`` (at least a minute)."""
    minutes = max(int(seconds // 60), 1)
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min" if hours else f"{minutes} min"
