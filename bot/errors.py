"""Errors whose message is meant for the member who caused them."""

from __future__ import annotations


class UserError(Exception):
    """Shown to the member as it is (ephemerally); nothing was charged."""
