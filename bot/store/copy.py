"""Moving up: copy a SQLite store (jobs, usage, settings, audit, notices, meta, approved
servers, servers' sealed keys) into an empty PostgreSQL database, as ``python -m bot migrate-db
--to ...`` does."""

from __future__ import annotations

from dataclasses import dataclass

from bot.store.database import Database, DatabaseError

BATCH = 5000


@dataclass(frozen=True)
class Table:
    name: str
    key: str  # the order rows are read in (a primary key)
    identity: bool = False  # its id counts up: the target's counter continues after the copy


TABLES = (
    Table("jobs", "id", identity=True),
    Table("usage_daily", "guild_id, day, command, user_id, simulated"),
    Table("guild_settings", "guild_id, key"),
    Table("settings_audit", "id", identity=True),
    Table("notices", "id", identity=True),
    Table("meta", "key"),
    Table("approved_servers", "guild_id"),
    Table("guild_keys", "guild_id"),  # sealed: copied as ciphertext
    Table("account_daily", "day"),
)


async def count_rows(db: Database) -> dict[str, int]:
    counts = {}
    for table in TABLES:
        row = await db.fetchrow(f"SELECT COUNT(*) FROM {table.name}")  # noqa: S608 - ours
        counts[table.name] = int(row[0]) if row else 0
    return counts


async def copy_store(source: Database, target: Database) -> dict[str, int]:
    """Copy every row, in one transaction on the target (all or nothing); refuses a target
    that holds any. Both are migrated to the same schema first (``open_database``). The
    number of rows copied, by table."""
    if await source.schema_version() != await target.schema_version():
        raise DatabaseError("the source and the target are at different schema versions")
    held = {name: n for name, n in (await count_rows(target)).items() if n}
    if held:
        found = ", ".join(f"{n} {name}" for name, n in held.items())
        raise DatabaseError(f"{target.where} is not empty ({found}); copy into a new database")
    copied: dict[str, int] = {}
    async with target.transaction() as tx:
        for table in TABLES:
            copied[table.name] = 0
            while rows := await source.fetch(
                    f"SELECT * FROM {table.name} ORDER BY {table.key}"  # noqa: S608 - ours
                    " LIMIT ? OFFSET ?", BATCH, copied[table.name]):
                columns = list(rows[0].keys())
                marks = ", ".join("?" * len(columns))
                await tx.executemany(
                    f"INSERT INTO {table.name} ({', '.join(columns)}) VALUES ({marks})",  # noqa: S608
                    [tuple(row) for row in rows])
                copied[table.name] += len(rows)
            if table.identity and target.dialect == "postgresql":
                await tx.execute(
                    f"SELECT setval(pg_get_serial_sequence('{table.name}', 'id'),"  # noqa: S608
                    f" COALESCE((SELECT MAX(id) FROM {table.name}), 0) + 1, false)")
    return copied
