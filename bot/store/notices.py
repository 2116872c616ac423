"""Notices for members, kept until their next command."""

from __future__ import annotations

from collections.abc import Callable

from bot.store.database import Database


class NoticeStore:
    def __init__(self, db: Database, clock: Callable[[], float]) -> None:
        self.db = db
        self.clock = clock

    async def add(self, guild_id: int, user_id: int, text: str) -> None:
        await self.db.write("INSERT INTO notices (guild_id, user_id, text, created_at)"
                            " VALUES (?, ?, ?, ?)", guild_id, user_id, text, self.clock())

    async def take(self, guild_id: int, user_id: int) -> list[str]:
        """The member's notices, oldest first; they are gone once taken (one statement, so
        two commands at once never both show one)."""
        rows = await self.db.write("DELETE FROM notices WHERE guild_id = ? AND user_id = ?"
                                   " RETURNING id, text", guild_id, user_id)
        return [str(row[1]) for row in sorted(rows, key=lambda row: int(row[0]))]
