"""Notices for members, kept until their next command."""

from __future__ import annotations

from collections.abc import Callable

import aiosqlite

from bot.store.database import run, transaction


class NoticeStore:
    def __init__(self, db: aiosqlite.Connection, clock: Callable[[], float]) -> None:
        self.db = db
        self.clock = clock

    async def add(self, guild_id: int, user_id: int, text: str) -> None:
        await run(self.db, "INSERT INTO notices (guild_id, user_id, text, created_at)"
                  " VALUES (?, ?, ?, ?)", (guild_id, user_id, text, self.clock()))

    async def take(self, guild_id: int, user_id: int) -> list[str]:
        """The member's notices, oldest first; they are gone once taken."""
        async with transaction(self.db):
            async with self.db.execute(
                "SELECT text FROM notices WHERE guild_id = ? AND user_id = ? ORDER BY id",
                (guild_id, user_id),
            ) as cursor:
                texts = [str(row[0]) for row in await cursor.fetchall()]
            if texts:
                await run(self.db, "DELETE FROM notices WHERE guild_id = ? AND user_id = ?",
                          (guild_id, user_id))
        return texts
