"""The SQLite file: opened once, migrated with numbered SQL files under ``PRAGMA user_version``."""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import AsyncIterator
from importlib import resources
from pathlib import Path
from typing import Any

import aiosqlite

log = logging.getLogger(__name__)
_MIGRATION = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")


async def run(db: aiosqlite.Connection, sql: str, params: tuple[Any, ...] = ()) -> None:
    """Execute a statement that returns no rows, closing its cursor."""
    async with db.execute(sql, params):
        pass


@contextlib.asynccontextmanager
async def transaction(db: aiosqlite.Connection) -> AsyncIterator[None]:
    """``BEGIN IMMEDIATE`` ... ``COMMIT``, or ``ROLLBACK`` on any error."""
    await run(db, "BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        await run(db, "ROLLBACK")
        raise
    await run(db, "COMMIT")


def migrations() -> list[tuple[int, str, str]]:
    """``(number, name, sql)`` for every migration file, in order."""
    found = []
    for entry in resources.files("bot.store.migrations").iterdir():
        match = _MIGRATION.match(entry.name)
        if match:
            found.append((int(match.group(1)), entry.name, entry.read_text(encoding="utf-8")))
    found.sort()
    numbers = [number for number, _, _ in found]
    if numbers != list(range(1, len(found) + 1)):
        raise RuntimeError(f"migrations must be numbered 1..n without gaps: {numbers}")
    return found


async def open_database(path: Path | str) -> aiosqlite.Connection:
    """Open (creating if needed) and migrate the database at ``path`` (``:memory:`` works)."""
    if str(path) != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    db = await aiosqlite.connect(path, isolation_level=None)
    db.row_factory = aiosqlite.Row
    await db.executescript(
        "PRAGMA journal_mode = WAL; PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 5000;")
    await migrate(db)
    return db


async def migrate(db: aiosqlite.Connection) -> int:
    """Apply the migrations the database has not seen; each in its own transaction."""
    async with db.execute("PRAGMA user_version") as cursor:
        row = await cursor.fetchone()
    current = int(row[0]) if row else 0
    for number, name, sql in migrations():
        if number <= current:
            continue
        log.info("applying migration %s", name)
        try:
            await db.executescript(
                f"BEGIN IMMEDIATE;\n{sql}\n;PRAGMA user_version = {number};\nCOMMIT;")
        except BaseException:
            if db.in_transaction:
                await db.executescript("ROLLBACK;")
            raise
        current = number
    return current
