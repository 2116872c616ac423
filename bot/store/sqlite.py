"""SQLite, the embedded default: one writer connection serialised behind a lock, and readers
on connections of their own (WAL lets them read while the writer writes).

A unit of work holds the writer for its whole ``BEGIN IMMEDIATE ... COMMIT``, so no other
coroutine's statement can join or undo it; a write lock of the file (``BEGIN IMMEDIATE``)
also keeps out another process on the same file, which waits up to ``BUSY_TIMEOUT_MS``.

The commit that finds ``WAL_PAGES`` in the WAL copies them back into the file (a
checkpoint), which takes time in proportion: at SQLite's default of 1,000 pages such a
commit took 10 to 14 ms instead of 0.2, at 100 pages at most 2.4 ms, for about the same time
on average (bench/README.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, cast

import aiosqlite

from bot.store.database import (
    MIGRATIONS_TABLE,
    BoundTx,
    Database,
    DatabaseError,
    Row,
    Tx,
    migrations,
)

BUSY_TIMEOUT_MS = 5000
READERS = 2
WAL_PAGES = 100


class _SqliteTx(BoundTx[aiosqlite.Connection]):
    async def fetch(self, sql: str, *params: Any) -> list[Row]:
        return cast(list[Row], list(await self.conn.execute_fetchall(sql, params)))

    async def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        await self.conn.executemany(sql, rows)


class SqliteDatabase(Database):
    dialect = "sqlite"

    def __init__(self, path: Path, writer: aiosqlite.Connection | None,
                 readers: list[aiosqlite.Connection]) -> None:
        self.path = path
        self._writer = writer
        self._write_lock = asyncio.Lock()
        self._readers: asyncio.Queue[aiosqlite.Connection] = asyncio.Queue()
        self._all = [*readers, *([writer] if writer else [])]
        for reader in readers:
            self._readers.put_nowait(reader)

    @property
    def where(self) -> str:
        return str(self.path)

    @property
    def writer(self) -> aiosqlite.Connection:
        """The one connection that writes (the crash tests cut its power)."""
        return self._need_writer()

    @contextlib.asynccontextmanager
    async def transaction(self, *, guild: int | None = None) -> AsyncIterator[Tx]:
        writer = self._need_writer()
        async with self._write_lock:
            tx = _SqliteTx(writer)
            try:
                await writer.execute_fetchall("BEGIN IMMEDIATE")
                yield tx
                tx.end()
                await writer.execute_fetchall("COMMIT")
            except BaseException:
                tx.end()
                await _rollback(writer)
                raise

    async def write(self, sql: str, *params: Any) -> list[Row]:
        """One statement is atomic by itself: no ``BEGIN``/``COMMIT`` round trips."""
        writer = self._need_writer()
        async with self._write_lock:
            return cast(list[Row], list(await writer.execute_fetchall(sql, params)))

    @contextlib.asynccontextmanager
    async def read(self) -> AsyncIterator[Tx]:
        reader = await self._readers.get()
        tx = _SqliteTx(reader)
        try:
            yield tx
        finally:
            tx.end()
            self._readers.put_nowait(reader)

    async def schema_version(self) -> int:
        """A file from before ``schema_migrations`` counts ``PRAGMA user_version``."""
        async with self.read() as tx:
            if await tx.fetchval("SELECT name FROM sqlite_master WHERE type = 'table'"
                                 " AND name = ?", MIGRATIONS_TABLE) is None:
                return int(await tx.fetchval("PRAGMA user_version"))
        return await super().schema_version()

    async def close(self) -> None:
        for conn in self._all:
            with contextlib.suppress(sqlite3.Error, ValueError):
                await conn.close()
        self._all = []

    def _need_writer(self) -> aiosqlite.Connection:
        if self._writer is None:
            raise RuntimeError("the database was opened read-only")
        return self._writer


async def _rollback(conn: aiosqlite.Connection) -> None:
    """Roll back (queued behind whatever the connection is running, so it lands even if the
    waiting coroutine is cancelled again); nothing to roll back is fine."""
    with contextlib.suppress(sqlite3.OperationalError):
        await asyncio.shield(conn.execute_fetchall("ROLLBACK"))


def _probe(target: str, uri: bool) -> None:
    """Open and close the file with plain sqlite3 first: a file that cannot be opened fails
    here, cleanly (aiosqlite's failed connect leaves its thread to report to a closed loop)."""
    sqlite3.connect(target, uri=uri).close()


async def _connect(path: Path, *, read_only: bool) -> aiosqlite.Connection:
    target = f"file:{path}?mode=ro" if read_only else str(path)
    await asyncio.to_thread(_probe, target, read_only)
    conn = await aiosqlite.connect(target, isolation_level=None, uri=read_only)
    conn.row_factory = aiosqlite.Row
    pragmas = f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}; PRAGMA foreign_keys = ON;"
    if not read_only:
        pragmas += (" PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;"
                    f" PRAGMA wal_autocheckpoint = {WAL_PAGES};")
    await conn.executescript(pragmas)
    return conn


async def open_sqlite(path: Path, *, migrate: bool,
                      clock: Callable[[], float]) -> SqliteDatabase:
    if not migrate and not await asyncio.to_thread(path.exists):
        raise DatabaseError(f"{path}: no such database file")
    opened: list[aiosqlite.Connection] = []
    try:
        writer = None
        if migrate:
            path.parent.mkdir(parents=True, exist_ok=True)
            writer = await _connect(path, read_only=False)
            opened.append(writer)
            await _migrate(writer, clock)
        for _ in range(READERS):
            opened.append(await _connect(path, read_only=True))
    except (OSError, sqlite3.Error) as exc:
        for conn in opened:
            await conn.close()
        raise DatabaseError(f"{path}: {exc}") from None
    return SqliteDatabase(path, writer, opened[1:] if writer else opened)


async def _migrate(db: aiosqlite.Connection, clock: Callable[[], float]) -> None:
    """Apply the migrations the file has not seen, each in its own transaction, recorded in
    ``schema_migrations`` (a file from before that table counts ``PRAGMA user_version``)."""
    await db.executescript(
        f"BEGIN IMMEDIATE; CREATE TABLE IF NOT EXISTS {MIGRATIONS_TABLE} ("
        " version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at REAL NOT NULL); COMMIT;")
    [[legacy]] = await db.execute_fetchall("PRAGMA user_version")
    if legacy:
        await db.executescript("BEGIN IMMEDIATE; PRAGMA user_version = 0; COMMIT;")
        await db.executemany(
            f"INSERT OR IGNORE INTO {MIGRATIONS_TABLE} VALUES (?, ?, ?)",  # noqa: S608
            [(m.number, m.name, clock()) for m in migrations("sqlite") if m.number <= legacy])
    applied = {row[0] for row in await db.execute_fetchall(
        f"SELECT version FROM {MIGRATIONS_TABLE}")}  # noqa: S608
    for migration in migrations("sqlite"):
        if migration.number in applied:
            continue
        try:
            await db.executescript(  # the migration's own SQL, and numbers: nothing typed in
                f"BEGIN IMMEDIATE;\n{migration.sql}\n;INSERT INTO {MIGRATIONS_TABLE} VALUES"  # noqa: S608
                f" ({migration.number}, '{migration.name}', {clock()!r});\nCOMMIT;")
        except BaseException:
            await _rollback(db)
            raise
