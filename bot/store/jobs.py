"""Jobs in the store. Every state change is one compare-and-set statement: it happens only if
the job is still in a state it may leave, so the poller, a cancel and a restart never race. A
job's last move records its usage in the same transaction."""

from __future__ import annotations

import json
import logging
import secrets
import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from bot.jobs import OPEN, UNSENT, Job, JobState, OpenJob, RunKind, run_kind, sources
from bot.shards import Shards
from bot.store.database import Database, Row, Tx

log = logging.getLogger(__name__)
NONCE_TAG_KEY = "nonce_tag"
_UPDATABLE = (
    "request_id", "queue_position", "card_message_id", "card_sending_at", "result_message_id",
    "delivered_as", "video_url", "error", "cost_usd", "submitted_at", "started_at",
    "finished_at", "eta_at",
)
# Every change of a job (a move, or facts noted) is this one statement: the state kept unless
# one is given, each field set only when flagged, and the job changed only while in one of the
# states listed (the list padded with NULLs, which match no state). PostgreSQL's connections
# each prepare every statement they run, and one that returns a whole job holds ~14 KiB in each
# (bench/README.md).
CHANGE_SQL = (
    "UPDATE jobs SET state = COALESCE(?, state), "  # noqa: S608 - no input in it
    + "".join(f"{name} = CASE WHEN ? THEN ? ELSE {name} END, " for name in _UPDATABLE)
    + f"updated_at = ? WHERE id = ? AND state IN ({', '.join('?' * len(JobState))})"
    " RETURNING *")


def _states_sql(states: frozenset[JobState]) -> str:
    """``states`` as SQL literals, in ``JobState``'s order."""
    return ", ".join(f"'{state}'" for state in JobState if state in states)


# The open states (bot.jobs.OPEN) in the order of the partial index's own definition, which
# SQLite needs to use it.
OPEN_STATES_SQL = _states_sql(OPEN)
# The job's first card is about to be sent: marked (``card_sending_at``) unless someone did,
# and the job read back in the same statement.
CARD_SENDING_SQL = (
    "UPDATE jobs SET card_sending_at = ?, updated_at = ? WHERE id = ?"  # noqa: S608
    " AND card_sending_at IS NULL AND card_message_id IS NULL AND state NOT IN ("
    + _states_sql(UNSENT) + ") RETURNING *")
USAGE_SQL = """
    INSERT INTO usage_daily (guild_id, day, user_id, command, simulated, jobs, seconds,
                             cost_usd, failures, cancellations, unpriced)
    VALUES (?, ?, ?, ?, ?, 1, ?, ?, ?, ?, ?)
    ON CONFLICT (guild_id, day, command, user_id, simulated) DO UPDATE SET
        jobs = usage_daily.jobs + excluded.jobs,
        seconds = usage_daily.seconds + excluded.seconds,
        cost_usd = usage_daily.cost_usd + excluded.cost_usd,
        failures = usage_daily.failures + excluded.failures,
        cancellations = usage_daily.cancellations + excluded.cancellations,
        unpriced = usage_daily.unpriced + excluded.unpriced"""
# What the operator's account spent that day (not a server's own key, not simulated).
ACCOUNT_USAGE_SQL = """
    INSERT INTO account_daily (day, cost_usd) VALUES (?, ?)
    ON CONFLICT (day) DO UPDATE SET cost_usd = account_daily.cost_usd + excluded.cost_usd"""


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
    retry_of: int | None = None
    parent_id: int | None = None  # the job whose Again, Vary or Extend this is (bot.lineage)
    origin: str | None = None
    runcomfy_key: str | None = field(default=None, repr=False)  # a server's own, sealed


class JobStore:
    def __init__(self, db: Database, clock: Callable[[], float] = time.time, *,
                 shards: Shards | None = None, lease_seconds: float = 30.0) -> None:
        """``shards``: this process's share of the guilds (all of them when ``None``). Its
        jobs are leased to it for ``lease_seconds`` at a time, under the name of its shards and
        of this life of the process (a random boot id): another process, or this one's next
        life, takes a guild's jobs only once their lease has run out or was released (a
        graceful stop), never while they are served: two processes with the same shards (a
        rolling deploy) never share a job."""
        self.db = db
        self.clock = clock
        self.shards = shards
        self.owner = f"{shards or 'all shards'} · boot {secrets.token_hex(4)}"
        self.lease_seconds = lease_seconds
        self.on_move: Callable[[Job], None] | None = None  # told of every move (the metrics)
        self.leases = 0  # open jobs this process holds, as of its last claim (the metrics)

    async def add(self, new: NewJob, *, tx: Tx | None = None) -> Job:
        sql, params = self._insert(new, "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?,"
                                        " ?, ?, ?, ?, ?)")
        rows = await (tx.fetch(sql, *params) if tx else self.db.write(sql, *params))
        return Job.from_row(rows[0])

    async def add_if(self, tx: Tx, new: NewJob, condition: str,
                     values: Sequence[Any]) -> Job | None:
        """Add the job only if ``condition`` (SQL, with its ``values``) holds when the
        statement runs; ``None`` when it does not."""
        sql, params = self._insert(new, "SELECT ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?,"
                                        f" ?, ?, ?, ?, ? WHERE {condition}")
        return _job(await tx.fetchrow(sql, *params, *values))

    def _insert(self, new: NewJob, source: str) -> tuple[str, tuple[Any, ...]]:
        now = self.clock()
        sql = ("INSERT INTO jobs (guild_id, channel_id, user_id, model_id, command, prompt, body,"
               " state, estimated_usd, seconds, audio, resolution, simulated, retry_of,"
               " parent_id, origin, lease_owner, lease_until, created_at, updated_at,"
               f" runcomfy_key) {source} RETURNING *")
        return sql, (new.guild_id, new.channel_id, new.user_id, new.model_id, new.command,
                     new.prompt, json.dumps(new.body), JobState.ACCEPTED.value,
                     new.estimated_usd, new.seconds,
                     None if new.audio is None else int(new.audio), new.resolution,
                     int(new.simulated), new.retry_of, new.parent_id, new.origin, self.owner,
                     now + self.lease_seconds, now, now, new.runcomfy_key)

    async def get(self, job_id: int, *, tx: Tx | None = None) -> Job | None:
        async with self.db.reading(tx) as reader:
            return _job(await reader.fetchrow("SELECT * FROM jobs WHERE id = ?", job_id))

    async def move(self, job_id: int, to: JobState, *,
                   only_from: Collection[JobState] | None = None, tx: Tx | None = None,
                   **fields: Any) -> Job | None:
        """Move the job to ``to`` if the state machine allows it from the job's state (and it
        is one of ``only_from``, when given); ``None`` if not: someone else moved it first.

        One compare-and-set statement; a move to an end state also adds the job to the usage
        rollup, in the same transaction. Every transition is logged here, once.
        """
        allowed = sources(to)
        if only_from is not None:
            if not set(only_from) <= allowed:
                raise ValueError(f"no move from {sorted(set(only_from) - allowed)} to {to}")
            allowed = frozenset(only_from)
        params = self._change(job_id, to, allowed, fields)
        if not to.is_terminal:
            rows = await (tx.fetch(CHANGE_SQL, *params) if tx
                          else self.db.write(CHANGE_SQL, *params))
            moved = _job(rows[0] if rows else None)
        else:
            async with self.db.writing(tx) as unit:
                moved = _job(await unit.fetchrow(CHANGE_SQL, *params))
                if moved is not None:
                    line = usage_of(moved)
                    await unit.execute(USAGE_SQL, *line)
                    if moved.runcomfy_key is None and not moved.simulated:
                        await unit.execute(ACCOUNT_USAGE_SQL, line[1], line[6])
        if moved is not None:
            reason = f": {moved.error}" if moved.error and moved.state.is_terminal else ""
            log.info("job %d -> %s (guild %d, model %s, request %s)%s", moved.id, moved.state,
                     moved.guild_id, moved.command, moved.request_id or "-", reason,
                     extra=self.log_fields(moved))
            if self.on_move is not None:
                self.on_move(moved)
        return moved

    def log_fields(self, job: Job) -> dict[str, Any]:
        """A job's fields for a log line (JSON logs carry them as fields)."""
        fields: dict[str, Any] = {"job_id": job.id, "guild_id": job.guild_id,
                                  "model": job.command}
        if job.request_id:
            fields["request_id"] = job.request_id
        if self.shards is not None:
            fields["shard"] = self.shards.shard_of(job.guild_id)
        return fields

    async def note(self, job_id: int, *, only_in: Collection[JobState] | None = None,
                   **fields: Any) -> Job | None:
        """Record facts that are not a state change (queue position, card message); with
        ``only_in``, only while the job is in one of those states (``None`` otherwise)."""
        rows = await self.db.write(CHANGE_SQL,
                                   *self._change(job_id, None, only_in or None, fields))
        return _job(rows[0] if rows else None)

    async def mark_card_sending(self, job_id: int) -> Job | None:
        """Record that the job's first card is being sent (it may be posted from now on), and
        the job as it is then; ``None`` if a card was sent or marked before, or the job is not
        yet submitted."""
        now = self.clock()
        rows = await self.db.write(CARD_SENDING_SQL, now, now, job_id)
        return _job(rows[0] if rows else None)

    async def open_jobs(self) -> list[Job]:
        """Every job not yet over, of every process, oldest first (read through the small
        partial index)."""
        return await self._many(
            f"SELECT * FROM jobs INDEXED BY jobs_open WHERE state IN ({OPEN_STATES_SQL})"  # noqa: S608
            " ORDER BY id")

    async def claim_open(self) -> list[Job]:
        """This process's open jobs, whole, oldest first (see ``claim``)."""
        await self._lease()
        jobs = await self._many(
            f"SELECT * FROM jobs INDEXED BY jobs_open WHERE state IN ({OPEN_STATES_SQL})"  # noqa: S608
            " AND lease_owner = ? ORDER BY id", self.owner)
        self.leases = len(jobs)
        return jobs

    async def claim(self) -> tuple[list[OpenJob], set[int]]:
        """This process's open jobs, oldest first, as the poller follows them (``OpenJob``),
        after renewing its leases (half-way through, or lapsed: nobody took them meanwhile)
        and taking the jobs of its guilds that nobody holds (their lease ran out, or was
        released); and the ids of those it took (a job this process admits is its own from
        the start, so a taken job caught mid-submit was interrupted elsewhere, or in an
        earlier life)."""
        taken = await self._lease()
        rows = await self.db.fetch(
            f"SELECT {OpenJob.COLUMNS} FROM jobs INDEXED BY jobs_open"  # noqa: S608
            f" WHERE state IN ({OPEN_STATES_SQL}) AND lease_owner = ? ORDER BY id", self.owner)
        self.leases = len(rows)
        return [OpenJob.from_row(row) for row in rows], taken

    async def _lease(self) -> set[int]:
        """Renew this process's leases and take its guilds' jobs that nobody holds (see
        ``claim``); the ids of those it took."""
        now = self.clock()
        until = now + self.lease_seconds
        await self.db.write(
            f"UPDATE jobs SET lease_until = ? WHERE state IN ({OPEN_STATES_SQL})"  # noqa: S608
            " AND lease_owner = ? AND lease_until < ?",
            until, self.owner, now + self.lease_seconds / 2)
        mine, params = "1 = 1", [self.owner, until, self.owner, now]
        if self.shards is not None:
            ids = sorted(self.shards.ids)
            mine = f"((guild_id >> 22) % ?) IN ({', '.join('?' * len(ids))})"
            params += [self.shards.count, *ids]
        taken = await self.db.write(
            "UPDATE jobs SET lease_owner = ?, lease_until = ?"  # noqa: S608 - no input in it
            f" WHERE state IN ({OPEN_STATES_SQL}) AND (lease_owner IS NULL"
            " OR (lease_owner <> ? AND lease_until < ?))"
            f" AND {mine} RETURNING id", *params)
        return {int(row[0]) for row in taken}

    async def release(self) -> int:
        """Give up this process's leases now (a graceful stop): another process, or the next
        life of this one, takes the jobs at once instead of after ``lease_seconds``. How many
        jobs were released."""
        rows = await self.db.write(
            f"UPDATE jobs SET lease_until = 0 WHERE state IN ({OPEN_STATES_SQL})"  # noqa: S608
            " AND lease_owner = ? RETURNING id", self.owner)
        return len(rows)

    async def recent_runs(self, since: float, per_kind: int,
                          from_submit: bool = False) -> list[tuple[RunKind, float]]:
        """How long (as the poller saw it) the last ``per_kind`` delivered jobs of each kind
        (model, duration, resolution) since ``since`` ran, oldest first; ``from_submit``: from
        their submit (queue and run) instead of from their start."""
        start = "submitted_at" if from_submit else "started_at"
        rows = await self.db.fetch(
            "SELECT model_id, seconds, resolution, took FROM ("  # noqa: S608 - one of two columns
            f"  SELECT model_id, seconds, resolution, finished_at, finished_at - {start} AS took,"
            "  ROW_NUMBER() OVER (PARTITION BY model_id, seconds, resolution"
            "    ORDER BY finished_at DESC) AS recency FROM jobs"
            f"  WHERE created_at >= ? AND state = 'delivered' AND {start} IS NOT NULL"
            ") AS recent WHERE recency <= ? ORDER BY finished_at", since, per_kind)
        return [(run_kind(str(row[0]), None if row[1] is None else float(row[1]), row[2]),
                 float(row[3])) for row in rows]

    async def for_user(self, guild_id: int, user_id: int, *, states: Collection[JobState] = (),
                       number: str = "", limit: int = 10) -> list[Job]:
        """The member's newest jobs in this guild, optionally only in ``states`` and only
        those whose number contains the digits ``number`` (what a member typed)."""
        sql = "SELECT * FROM jobs WHERE guild_id = ? AND user_id = ?"
        params: list[Any] = [guild_id, user_id]
        if states:
            sql += f" AND state IN ({', '.join('?' * len(states))})"
            params.extend(state.value for state in states)
        if number:
            sql += " AND CAST(id AS TEXT) LIKE ?"
            params.append(f"%{''.join(c for c in number if c.isdigit())}%")
        return await self._many(sql + " ORDER BY id DESC LIMIT ?", *params, limit)

    async def retried_as(self, job_id: int, *, tx: Tx | None = None) -> int | None:
        """The job that a moderator's retry of ``job_id`` started, if any."""
        async with self.db.reading(tx) as reader:
            found = await reader.fetchval("SELECT id FROM jobs WHERE retry_of = ?", job_id)
        return None if found is None else int(found)

    async def get_meta(self, key: str) -> str | None:
        row = await self.db.fetchrow("SELECT value FROM meta WHERE key = ?", key)
        return None if row is None else str(row[0])

    async def nonce_tag(self) -> str:
        """This database's own six hex digits, made on first use (in the nonces of the
        messages it records, so that no other database's can match them)."""
        await self.db.write("INSERT INTO meta (key, value) VALUES (?, ?)"
                            " ON CONFLICT (key) DO NOTHING", NONCE_TAG_KEY, secrets.token_hex(3))
        tag = await self.get_meta(NONCE_TAG_KEY)
        assert tag is not None
        return tag

    async def set_meta(self, key: str, value: str) -> None:
        await self.db.write("INSERT INTO meta (key, value) VALUES (?, ?)"
                            " ON CONFLICT (key) DO UPDATE SET value = excluded.value", key, value)

    def _change(self, job_id: int, to: JobState | None, only_in: Collection[JobState] | None,
                fields: dict[str, Any]) -> list[Any]:
        """``CHANGE_SQL``'s parameters: move to ``to`` (``None``: stay), set ``fields``, only
        while in one of ``only_in`` (``None``: any state; empty: none, as a move no state may
        make)."""
        unknown = set(fields) - set(_UPDATABLE)
        if unknown:
            raise ValueError(f"not an updatable job field: {', '.join(sorted(unknown))}")
        params: list[Any] = [None if to is None else to.value]
        for name in _UPDATABLE:
            params += (name in fields, fields.get(name))
        states = [state.value for state in (JobState if only_in is None else only_in)]
        return [*params, self.clock(), job_id, *states, *[None] * (len(JobState) - len(states))]

    async def _many(self, sql: str, *params: Any) -> list[Job]:
        return [Job.from_row(row) for row in await self.db.fetch(sql, *params)]


def _job(row: Row | None) -> Job | None:
    return None if row is None else Job.from_row(row)


def usage_of(job: Job) -> tuple[Any, ...]:
    """A finished job's line in the daily rollup (``USAGE_SQL``'s parameters): made videos
    count their seconds, and every job but a failed or cancelled one its real cost (else its
    estimate; unpriced when neither is known)."""
    made = job.state in (JobState.DELIVERED, JobState.UNDELIVERABLE)
    free = job.state in (JobState.FAILED, JobState.CANCELLED)
    price = job.cost_usd if job.cost_usd is not None else job.estimated_usd
    day = datetime.fromtimestamp(job.created_at, UTC).date().isoformat()
    return (job.guild_id, day, job.user_id, job.command, int(job.simulated),
            (job.seconds or 0.0) if made else 0.0, 0.0 if free else (price or 0.0),
            int(job.state in (JobState.FAILED, JobState.TIMED_OUT, JobState.OUTCOME_UNKNOWN)),
            int(job.state is JobState.CANCELLED), int(not free and price is None))
