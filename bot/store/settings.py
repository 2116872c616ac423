"""Each guild's settings as stored (one JSON value per key) and the audit log of their changes.
What the values mean is ``bot.policy``'s business; this module only keeps them."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from bot.store.database import Database, Tx

SETTINGS_SQL = "SELECT key, value FROM guild_settings WHERE guild_id = ?"


@dataclass(frozen=True)
class Change:
    """One audited change of a setting: its value before and after, as JSON text."""

    key: str
    old: str | None
    new: str
    user_id: int
    at: float


@dataclass(frozen=True)
class Edit:
    """A key's value before and after a change, as JSON text."""

    key: str
    old: str
    new: str


class SettingsStore:
    def __init__(self, db: Database, clock: Callable[[], float]) -> None:
        self.db = db
        self.clock = clock

    async def values(self, guild_id: int, *, tx: Tx | None = None) -> dict[str, Any]:
        """The guild's stored values by key (keys it never changed are absent)."""
        async with self.db.reading(tx) as reader:
            rows = await reader.fetch(SETTINGS_SQL, guild_id)
        return decode_settings((row[0], row[1]) for row in rows)

    async def record(self, tx: Tx, guild_id: int, user_id: int, edits: Sequence[Edit], *,
                     store: bool = True) -> None:
        """Store the new values and an audit row for each, inside the caller's transaction
        (``store=False``: the audit rows only, for what is kept elsewhere)."""
        for edit in edits:
            if store:
                await tx.execute("INSERT INTO guild_settings (guild_id, key, value)"
                                 " VALUES (?, ?, ?) ON CONFLICT (guild_id, key)"
                                 " DO UPDATE SET value = excluded.value",
                                 guild_id, edit.key, edit.new)
            await tx.execute("INSERT INTO settings_audit (guild_id, user_id, key, old_value,"
                             " new_value, at) VALUES (?, ?, ?, ?, ?, ?)",
                             guild_id, user_id, edit.key, edit.old, edit.new, self.clock())

    async def audit(self, guild_id: int, limit: int = 15) -> list[Change]:
        rows = await self.db.fetch(
            "SELECT key, old_value, new_value, user_id, at FROM settings_audit"
            " WHERE guild_id = ? ORDER BY id DESC LIMIT ?", guild_id, limit)
        return [Change(row[0], row[1], row[2], int(row[3]), float(row[4])) for row in rows]


def decode_settings(pairs: Iterable[tuple[Any, Any]]) -> dict[str, Any]:
    """Stored (key, JSON text) pairs by key."""
    return {str(key): json.loads(value) for key, value in pairs}
