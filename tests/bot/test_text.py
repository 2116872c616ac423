"""Lengths of time as a member reads them: a cooldown's wait, a card's run time, ``/quota``'s
reset."""

from __future__ import annotations

import pytest

from bot.text import duration_text, hours_text


@pytest.mark.parametrize(("seconds", "shown"), [
    (0, "0 s"),
    (0.4, "0 s"),
    (45, "45 s"),
    (59.4, "59 s"),
    (59.6, "1 min 0 s"),  # rounded first, so never "60 s"
    (60, "1 min 0 s"),
    (125, "2 min 5 s"),
    (125.7, "2 min 6 s"),
    (3600, "60 min 0 s"),  # a run time stays in minutes
])
def test_a_duration_in_minutes_and_seconds(seconds: float, shown: str) -> None:
    assert duration_text(seconds) == shown


@pytest.mark.parametrize(("seconds", "shown"), [
    (0, "1 min"),  # at least a minute: never "0 min" before a reset
    (30, "1 min"),
    (119.9, "1 min"),  # whole minutes, cut down
    (120, "2 min"),
    (2400, "40 min"),
    (3599, "59 min"),
    (3600, "1 h 0 min"),
    (11_520, "3 h 12 min"),
    (86_399, "23 h 59 min"),
    (3 * 86_400, "72 h 0 min"),  # hours do not turn into days
])
def test_a_wait_in_hours_and_minutes(seconds: float, shown: str) -> None:
    assert hours_text(seconds) == shown
