"""Clocks the tests move themselves."""

from __future__ import annotations


class ManualClock:
    """The simulator's clock, moved by the test: RunComfy time passes only when told."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class SetClock:
    """A clock that stands still until the test sets ``now`` (or moves it)."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now
