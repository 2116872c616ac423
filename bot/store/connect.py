"""Opening the store's database from a setting: a ``postgresql://`` URL or a SQLite path."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from bot.store.database import Database


def is_postgres_url(target: str | Path) -> bool:
    return isinstance(target, str) and target.startswith(("postgresql://", "postgres://"))


async def open_database(target: Path | str, *, migrate: bool = True,
                        clock: Callable[[], float] = time.time) -> Database:
    """The database at ``target``: a ``postgresql://`` URL, or the path of a SQLite file
    (created if needed). ``migrate`` applies the migrations it has not seen; without it,
    nothing is written (and a missing SQLite file is an error)."""
    if is_postgres_url(target):
        from bot.store.postgres import open_postgres  # asyncpg only when it is used

        return await open_postgres(str(target), migrate=migrate, clock=clock)
    from bot.store.sqlite import open_sqlite

    return await open_sqlite(Path(target), migrate=migrate, clock=clock)
