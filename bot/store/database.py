"""The store's database behind one small interface: SQLite (the embedded default) or
PostgreSQL (``DATABASE_URL``), with the same schema, migrations and behaviour.

Every unit of work that must hold together is ``async with db.transaction() as tx``: one
transaction on a connection that no other coroutine uses until it commits or rolls back.
``db.read()`` lends a connection for statements that only read, ``db.report()`` one for a
report's (planned for their values). SQL is written once, with
``?`` placeholders; the PostgreSQL backend numbers them.
"""

from __future__ import annotations

import contextlib
import re
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Iterable, Iterator, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from importlib import resources
from typing import Any, Generic, Literal, Protocol, TypeVar
from urllib.parse import unquote, urlsplit

Dialect = Literal["sqlite", "postgresql"]
_MIGRATION = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")
MIGRATIONS_TABLE = "schema_migrations"


class Row(Protocol):
    """A result row (``sqlite3.Row`` or ``asyncpg.Record``): by position or column name."""

    def __getitem__(self, key: int | str, /) -> Any: ...

    def keys(self) -> Iterable[str]: ...

    def __iter__(self) -> Iterator[Any]: ...


Conn = TypeVar("Conn")


class DatabaseError(Exception):
    """The database could not be opened or migrated; the message is one line."""


class Tx(ABC):
    """Statements on one connection that is this unit of work's alone."""

    @abstractmethod
    async def fetch(self, sql: str, *params: Any) -> list[Row]:
        """Run one statement; every row it returns."""

    async def fetchrow(self, sql: str, *params: Any) -> Row | None:
        rows = await self.fetch(sql, *params)
        return rows[0] if rows else None

    async def fetchval(self, sql: str, *params: Any) -> Any:
        row = await self.fetchrow(sql, *params)
        return None if row is None else row[0]

    async def execute(self, sql: str, *params: Any) -> None:
        await self.fetch(sql, *params)

    @abstractmethod
    async def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        """One statement for each of ``rows`` (bulk copies)."""


class BoundTx(Tx, Generic[Conn]):
    """A backend's ``Tx``: its connection, until the unit of work ends."""

    def __init__(self, conn: Conn) -> None:
        self._conn: Conn | None = conn

    @property
    def conn(self) -> Conn:
        if self._conn is None:
            raise RuntimeError("this unit of work is over")
        return self._conn

    def end(self) -> None:
        self._conn = None


class Database(ABC):
    dialect: Dialect

    @abstractmethod
    def transaction(self, *, guild: int | None = None) -> AbstractAsyncContextManager[Tx]:
        """A unit of work: committed when the block ends, rolled back if it raises (or is
        cancelled). With ``guild``: serialised from its start with every other one held for
        that guild, in any process (SQLite's writes are serialised already)."""

    @abstractmethod
    def read(self) -> AbstractAsyncContextManager[Tx]:
        """A connection for reads; each statement sees what was committed when it ran."""

    def report(self) -> AbstractAsyncContextManager[Tx]:
        """A connection for a report's reads, each statement planned for its values (where
        the backend would otherwise plan a statement once for any: PostgreSQL)."""
        return self.read()

    @abstractmethod
    async def close(self) -> None: ...

    @property
    @abstractmethod
    def where(self) -> str:
        """Where the data lives, for people (a PostgreSQL password is never shown)."""

    @contextlib.asynccontextmanager
    async def writing(self, tx: Tx | None) -> AsyncIterator[Tx]:
        """``tx`` when the caller is inside a unit of work already, else a new transaction."""
        if tx is not None:
            yield tx
        else:
            async with self.transaction() as new:
                yield new

    @contextlib.asynccontextmanager
    async def reading(self, tx: Tx | None) -> AsyncIterator[Tx]:
        """``tx`` when the caller is inside a unit of work already, else a reader."""
        if tx is not None:
            yield tx
        else:
            async with self.read() as new:
                yield new

    async def write(self, sql: str, *params: Any) -> list[Row]:
        """One statement that writes, as a transaction of its own."""
        async with self.transaction() as tx:
            return await tx.fetch(sql, *params)

    async def fetch(self, sql: str, *params: Any) -> list[Row]:
        async with self.read() as tx:
            return await tx.fetch(sql, *params)

    async def fetchrow(self, sql: str, *params: Any) -> Row | None:
        async with self.read() as tx:
            return await tx.fetchrow(sql, *params)

    async def schema_version(self) -> int:
        value = await self.fetchrow(f"SELECT MAX(version) FROM {MIGRATIONS_TABLE}")  # noqa: S608
        return int(value[0] or 0) if value is not None else 0


@dataclass(frozen=True)
class Migration:
    number: int
    name: str
    sql: str


def migrations(dialect: Dialect) -> list[Migration]:
    """Every migration file of ``dialect``, in order; both dialects have the same numbers."""
    found = []
    for entry in resources.files("bot.store.migrations").joinpath(dialect).iterdir():
        match = _MIGRATION.match(entry.name)
        if match:
            found.append(Migration(int(match.group(1)), entry.name,
                                   entry.read_text(encoding="utf-8")))
    found.sort(key=lambda m: m.number)
    numbers = [m.number for m in found]
    if numbers != list(range(1, len(found) + 1)):
        raise RuntimeError(f"{dialect} migrations must be numbered 1..n without gaps: {numbers}")
    return found


# Query parameters of a PostgreSQL URL that carry a credential (libpq's names).
SECRET_PARAMS = frozenset({"password", "sslpassword", "passfile", "sslkey"})


def url_secrets(url: str) -> list[str]:
    """Every credential written in a database URL (the password, secret parameters), as
    written and percent-decoded: what a log line must never show."""
    parts = urlsplit(url)
    found = [parts.password] if parts.password else []
    for piece in parts.query.split("&"):
        key, _, raw = piece.partition("=")
        if unquote(key).lower() in SECRET_PARAMS and raw:
            found += [raw, unquote(raw)]
    return found


def redact(url: str) -> str:
    """A database URL without any credential: its password and secret parameters ``***``."""
    parts = urlsplit(url)
    netloc = parts.netloc
    if parts.password is not None:
        netloc = netloc.replace(f":{parts.password}@", ":***@", 1)
    query = "&".join(
        f"{key}=***" if key.lower() in SECRET_PARAMS else piece
        for piece in parts.query.split("&") if piece
        for key in [unquote(piece.partition("=")[0])])
    return parts._replace(netloc=netloc, query=query).geturl()
