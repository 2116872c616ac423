"""PostgreSQL, for operators who outgrow one process: one asyncpg pool, each unit of work on
a connection of its own for the length of its transaction.

Writes that must not interleave for one guild (admission, settings) take a transaction-scoped
advisory lock on the guild id, which holds across every process on the database.
"""

from __future__ import annotations

import contextlib
import functools
import re
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from typing import Any, cast

import asyncpg

from bot.store.database import (
    MIGRATIONS_TABLE,
    BoundTx,
    Database,
    DatabaseError,
    Row,
    Tx,
    migrations,
    redact,
)

POOL_MIN, POOL_MAX = 1, 10
MIGRATION_LOCK = 0x52435642  # "RCVB": not a Discord snowflake, so no guild's lock
_PLACEHOLDER_OR_QUOTED = re.compile(r"'(?:[^']|'')*'|\?")
_INDEXED_BY = re.compile(r"\s+INDEXED BY \w+", re.IGNORECASE)


@functools.lru_cache(maxsize=512)
def to_postgres(sql: str) -> str:
    """``?`` placeholders numbered ``$1, $2, ...`` (not inside quotes); SQLite's index hints
    dropped."""
    count = 0

    def number(match: re.Match[str]) -> str:
        nonlocal count
        if match.group(0) != "?":
            return match.group(0)
        count += 1
        return f"${count}"

    return _PLACEHOLDER_OR_QUOTED.sub(number, _INDEXED_BY.sub("", sql))


class _PostgresTx(BoundTx[asyncpg.Connection]):
    async def fetch(self, sql: str, *params: Any) -> list[Row]:
        return cast(list[Row], await self.conn.fetch(to_postgres(sql), *params))

    async def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        await self.conn.executemany(to_postgres(sql), rows)


class PostgresDatabase(Database):
    dialect = "postgresql"

    def __init__(self, pool: asyncpg.Pool, url: str) -> None:
        self._pool = pool
        self._where = redact(url)

    @property
    def where(self) -> str:
        return self._where

    @contextlib.asynccontextmanager
    async def transaction(self, *, guild: int | None = None) -> AsyncIterator[Tx]:
        """A guild's transaction begins with a transaction-scoped advisory lock on its id,
        sent with BEGIN: one round trip (a simple query, so the id is written in it: an
        ``int``, nothing to quote)."""
        begin = "BEGIN" if guild is None else f"BEGIN; SELECT pg_advisory_xact_lock({int(guild)})"
        async with self._pool.acquire() as conn:
            tx = _PostgresTx(conn)
            try:
                await conn.execute(begin)  # may wait for the guild's turn
                yield tx
            except BaseException:
                tx.end()
                # Also after a BEGIN cut short while it waited (cancelled): asyncpg sends this
                # once the server has answered the cancel.
                await conn.execute("ROLLBACK")
                raise
            tx.end()
            await conn.execute("COMMIT")

    @contextlib.asynccontextmanager
    async def report(self) -> AsyncIterator[Tx]:
        """asyncpg prepares every statement, and after five runs PostgreSQL may plan a prepared
        statement once for any values: fine for the bot's own statements (planning them anew
        each time costs more than they take), but the reports' plans for their actual values
        run in 0.4 x the time (bench/README.md). One snapshot for all of the report."""
        async with self._pool.acquire() as conn, conn.transaction(
                isolation="repeatable_read", readonly=True):
            await conn.execute("SET LOCAL plan_cache_mode = force_custom_plan")
            tx = _PostgresTx(conn)
            try:
                yield tx
            finally:
                tx.end()

    @contextlib.asynccontextmanager
    async def read(self) -> AsyncIterator[Tx]:
        async with self._pool.acquire() as conn:
            tx = _PostgresTx(conn)
            try:
                yield tx
            finally:
                tx.end()

    async def write(self, sql: str, *params: Any) -> list[Row]:
        """One statement is atomic by itself: no BEGIN and COMMIT around it (two round trips
        fewer), as on SQLite."""
        async with self._pool.acquire() as conn:
            return cast(list[Row], await conn.fetch(to_postgres(sql), *params))

    async def close(self) -> None:
        await self._pool.close()

    async def schema_version(self) -> int:
        async with self.read() as tx:
            if await tx.fetchval("SELECT to_regclass(?)", MIGRATIONS_TABLE) is None:
                return 0
        return await super().schema_version()


async def open_postgres(url: str, *, migrate: bool,
                        clock: Callable[[], float]) -> PostgresDatabase:
    try:
        pool = await asyncpg.create_pool(url, min_size=POOL_MIN, max_size=POOL_MAX,
                                         reset=_keep_session)
    except (OSError, asyncpg.PostgresError, ValueError) as exc:
        raise DatabaseError(f"{redact(url)}: {exc}") from None
    try:
        if migrate:
            await _migrate(pool, clock)
    except asyncpg.PostgresError as exc:
        await pool.close()
        raise DatabaseError(f"{redact(url)}: {exc}") from None
    return PostgresDatabase(pool, url)


async def _keep_session(conn: asyncpg.Connection) -> None:
    """What the pool does to a connection given back, after rolling back a transaction left
    open: nothing. The store leaves no session state (its advisory locks are the
    transaction's, it never listens, declares cursors or sets a setting), so asyncpg's default
    (unlock all, close all, unlisten, reset all) would be a round trip for nothing."""


async def _migrate(pool: asyncpg.Pool, clock: Callable[[], float]) -> None:
    """Apply the migrations the database has not seen, each in its own transaction, under a
    lock so that processes starting together apply each once."""
    async with pool.acquire() as conn:
        for migration in migrations("postgresql"):
            async with conn.transaction():
                await conn.execute("SELECT pg_advisory_xact_lock($1)", MIGRATION_LOCK)
                await conn.execute(
                    f"CREATE TABLE IF NOT EXISTS {MIGRATIONS_TABLE} (version INTEGER PRIMARY KEY,"
                    " name TEXT NOT NULL, applied_at DOUBLE PRECISION NOT NULL)")
                done = await conn.fetchval(
                    f"SELECT 1 FROM {MIGRATIONS_TABLE} WHERE version = $1",  # noqa: S608
                    migration.number)
                if done:
                    continue
                await conn.execute(migration.sql)
                await conn.execute(f"INSERT INTO {MIGRATIONS_TABLE} VALUES ($1, $2, $3)",  # noqa: S608
                                   migration.number, migration.name, clock())
