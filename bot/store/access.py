"""The servers the operator approved with ``python -m bot servers approve`` (besides the
config's ``[access] approved``)."""

from __future__ import annotations

from bot.store.database import Database


class ApprovedServers:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def approve(self, guild_id: int, at: float) -> bool:
        """False when it was approved already."""
        rows = await self.db.write(
            "INSERT INTO approved_servers (guild_id, approved_at) VALUES (?, ?)"
            " ON CONFLICT (guild_id) DO NOTHING RETURNING guild_id", guild_id, at)
        return bool(rows)

    async def revoke(self, guild_id: int) -> bool:
        """False when it was not approved."""
        rows = await self.db.write(
            "DELETE FROM approved_servers WHERE guild_id = ? RETURNING guild_id", guild_id)
        return bool(rows)

    async def is_approved(self, guild_id: int) -> bool:
        return await self.db.fetchrow("SELECT 1 FROM approved_servers WHERE guild_id = ?",
                                      guild_id) is not None

    async def listed(self) -> list[tuple[int, float]]:
        rows = await self.db.fetch(
            "SELECT guild_id, approved_at FROM approved_servers ORDER BY guild_id")
        return [(int(row[0]), float(row[1])) for row in rows]
