"""Each server's own RunComfy key, as stored: sealed (``bot.keys``), never in plain text, with
the ending that may be shown. What it means is ``bot.server_keys``'s business."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from bot.store.database import Database, Row, Tx

KEY_COLUMNS = "sealed, ending, set_at, refused_at"


@dataclass(frozen=True)
class StoredKey:
    sealed: str = field(repr=False)
    ending: str
    set_at: float
    refused_at: float | None


def stored_key(row: Row, first: int = 0) -> StoredKey | None:
    """The key in ``KEY_COLUMNS`` of ``row`` from column ``first`` on (``None`` when absent)."""
    sealed, ending, set_at, refused_at = (row[first + i] for i in range(4))
    if sealed is None:
        return None
    return StoredKey(str(sealed), str(ending), float(set_at),
                     None if refused_at is None else float(refused_at))


class GuildKeys:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def get(self, guild_id: int, *, tx: Tx | None = None) -> StoredKey | None:
        async with self.db.reading(tx) as reader:
            row = await reader.fetchrow(
                f"SELECT {KEY_COLUMNS} FROM guild_keys WHERE guild_id = ?",  # noqa: S608
                guild_id)
        return None if row is None else stored_key(row)

    async def put(self, tx: Tx, guild_id: int, sealed: str, ending: str, at: float) -> None:
        await tx.execute(
            "INSERT INTO guild_keys (guild_id, sealed, ending, set_at) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (guild_id) DO UPDATE SET sealed = excluded.sealed,"
            " ending = excluded.ending, set_at = excluded.set_at, refused_at = NULL",
            guild_id, sealed, ending, at)

    async def delete(self, tx: Tx, guild_id: int) -> StoredKey | None:
        row = await tx.fetchrow("DELETE FROM guild_keys WHERE guild_id = ?"  # noqa: S608
                                f" RETURNING {KEY_COLUMNS}", guild_id)
        return None if row is None else stored_key(row)

    async def refused(self, guild_id: int, sealed: str, at: float) -> bool:
        """Mark the key refused by RunComfy; True the first time (when the server is told)."""
        rows = await self.db.write(
            "UPDATE guild_keys SET refused_at = ? WHERE guild_id = ? AND sealed = ?"
            " AND refused_at IS NULL RETURNING guild_id", at, guild_id, sealed)
        return bool(rows)

    async def count(self) -> int:
        row = await self.db.fetchrow("SELECT COUNT(*) FROM guild_keys")
        return int(row[0]) if row else 0

    async def any_sealed(self) -> str | None:
        """One stored key (to prove ``BOT_SECRET_KEY`` opens them at start-up), if any."""
        row = await self.db.fetchrow(
            "SELECT runcomfy_key FROM jobs WHERE runcomfy_key IS NOT NULL UNION ALL"
            " SELECT sealed FROM guild_keys LIMIT 1")
        return None if row is None else str(row[0])

    async def reseal(self, rotate: Callable[[str], str]) -> int:
        """Seal every stored key again (the servers' and the open jobs'), in one transaction:
        after ``BOT_SECRET_KEY`` gained a new first key. How many were resealed."""
        done = 0
        async with self.db.transaction() as tx:
            for row in await tx.fetch("SELECT guild_id, sealed FROM guild_keys"):
                await tx.execute("UPDATE guild_keys SET sealed = ? WHERE guild_id = ?",
                                 rotate(str(row[1])), row[0])
                done += 1
            for row in await tx.fetch(
                    "SELECT id, runcomfy_key FROM jobs WHERE runcomfy_key IS NOT NULL"):
                await tx.execute("UPDATE jobs SET runcomfy_key = ? WHERE id = ?",
                                 rotate(str(row[1])), row[0])
                done += 1
        return done
