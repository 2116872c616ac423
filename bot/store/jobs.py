"""Jobs in SQLite. Every state change is one compare-and-set statement: it happens only if the
job is still in a state it may leave, so the poller, a cancel and a restart never race."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any

import aiosqlite

from bot.jobs import Job, JobState, sources
from bot.store.database import run

log = logging.getLogger(__name__)
_UPDATABLE = frozenset({
    "request_id", "queue_position", "card_message_id", "result_message_id", "delivered_as",
    "video_url", "error", "cost_usd", "submitted_at", "started_at", "finished_at",
})


@dataclass(frozen=True)
class NewJob:
    guild_id: int
    channel_id: int
    user_id: int
    model_id: str
    command: str
    prompt: str
    body: dict[str, Any]
    estimated_usd: float | None
    seconds: float | None = None
    audio: bool | None = None
    resolution: str | None = None
    simulated: bool = False


class JobStore:
    def __init__(self, db: aiosqlite.Connection, clock: Callable[[], float] = time.time) -> None:
        self.db = db
        self.clock = clock

    async def add(self, new: NewJob) -> Job:
        now = self.clock()
        async with self.db.execute(
            "INSERT INTO jobs (guild_id, channel_id, user_id, model_id, command, prompt, body,"
            " state, estimated_usd, seconds, audio, resolution, simulated, created_at,"
            " updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING *",
            (new.guild_id, new.channel_id, new.user_id, new.model_id, new.command, new.prompt,
             json.dumps(new.body), JobState.ACCEPTED, new.estimated_usd, new.seconds,
             new.audio, new.resolution, new.simulated, now, now),
        ) as cursor:
            row = await cursor.fetchone()
        assert row is not None
        return Job.from_row(row)

    async def get(self, job_id: int) -> Job | None:
        return await self._one("SELECT * FROM jobs WHERE id = ?", (job_id,))

    async def move(self, job_id: int, to: JobState, *,
                   only_from: Collection[JobState] | None = None, **fields: Any) -> Job | None:
        """Move the job to ``to`` if the state machine allows it from the job's state (and it
        is one of ``only_from``, when given); ``None`` if not: someone else moved it first.

        One statement, so one transaction; every transition is logged here, once.
        """
        allowed = sources(to)
        if only_from is not None:
            if not set(only_from) <= allowed:
                raise ValueError(f"no move from {sorted(set(only_from) - allowed)} to {to}")
            allowed = frozenset(only_from)
        assignments, values = self._assignments(fields)
        states = sorted(allowed)
        marks = ", ".join("?" * len(states))
        moved = await self._one(
            f"UPDATE jobs SET state = ?, {assignments}"  # noqa: S608 - names are whitelisted
            f" WHERE id = ? AND state IN ({marks}) RETURNING *",
            (to, *values, job_id, *states),
        )
        if moved is not None:
            reason = f": {moved.error}" if moved.error and moved.state.is_terminal else ""
            log.info("job %d -> %s (guild %d, model %s, request %s)%s", moved.id, moved.state,
                     moved.guild_id, moved.command, moved.request_id or "-", reason)
        return moved

    async def note(self, job_id: int, **fields: Any) -> Job | None:
        """Record facts that are not a state change (queue position, card message)."""
        assignments, values = self._assignments(fields)
        return await self._one(
            f"UPDATE jobs SET {assignments} WHERE id = ? RETURNING *",  # noqa: S608
            (*values, job_id),
        )

    async def open_jobs(self) -> list[Job]:
        """Every job not yet over, oldest first (read through the small partial index)."""
        return await self._many(
            "SELECT * FROM jobs INDEXED BY jobs_open WHERE state IN ('accepted', 'submitting',"
            " 'queued', 'running', 'fetched', 'delivering') ORDER BY id", ())

    async def recent_run_seconds(self, since: float, per_model: int) -> dict[str, list[float]]:
        """Per model, how long (as the poller saw it) its last ``per_model`` jobs delivered
        since ``since`` ran, newest first."""
        async with self.db.execute(
            "SELECT model_id, took FROM ("
            "  SELECT model_id, finished_at - started_at AS took, ROW_NUMBER() OVER ("
            "    PARTITION BY model_id ORDER BY finished_at DESC) AS recency FROM jobs"
            "  WHERE created_at >= ? AND state = 'delivered' AND started_at IS NOT NULL"
            ") WHERE recency <= ? ORDER BY model_id, recency", (since, per_model),
        ) as cursor:
            runs: dict[str, list[float]] = {}
            for model_id, took in await cursor.fetchall():
                runs.setdefault(str(model_id), []).append(float(took))
            return runs

    async def for_user(self, guild_id: int, user_id: int, *, states: Collection[JobState] = (),
                       limit: int = 10) -> list[Job]:
        """The member's newest jobs in this guild, optionally only in ``states``."""
        sql = "SELECT * FROM jobs WHERE guild_id = ? AND user_id = ?"
        params: list[Any] = [guild_id, user_id]
        if states:
            sql += f" AND state IN ({', '.join('?' * len(states))})"
            params.extend(states)
        return await self._many(sql + " ORDER BY id DESC LIMIT ?", (*params, limit))

    async def get_meta(self, key: str) -> str | None:
        async with self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)) as cursor:
            row = await cursor.fetchone()
        return None if row is None else str(row[0])

    async def set_meta(self, key: str, value: str) -> None:
        await run(self.db, "INSERT INTO meta (key, value) VALUES (?, ?)"
                  " ON CONFLICT (key) DO UPDATE SET value = excluded.value", (key, value))

    def _assignments(self, fields: dict[str, Any]) -> tuple[str, list[Any]]:
        unknown = set(fields) - _UPDATABLE
        if unknown:
            raise ValueError(f"not an updatable job field: {', '.join(sorted(unknown))}")
        names = [*fields, "updated_at"]
        return ", ".join(f"{n} = ?" for n in names), [*fields.values(), self.clock()]

    async def _one(self, sql: str, params: tuple[Any, ...]) -> Job | None:
        async with self.db.execute(sql, params) as cursor:
            row = await cursor.fetchone()
        return None if row is None else Job.from_row(row)

    async def _many(self, sql: str, params: tuple[Any, ...]) -> list[Job]:
        async with self.db.execute(sql, params) as cursor:
            rows = await cursor.fetchall()
        return [Job.from_row(row) for row in rows]
