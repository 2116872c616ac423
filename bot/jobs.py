"""A job's lifecycle: states, and which moves between them are allowed."""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from bot.i18n import N_, _


class JobState(StrEnum):
    ACCEPTED = "accepted"  # validated and written down; nothing sent yet
    SUBMITTING = "submitting"  # the paid call is under way
    QUEUED = "queued"
    RUNNING = "running"
    FETCHED = "fetched"  # RunComfy finished; the video URL is known, nothing posted
    DELIVERING = "delivering"  # posting to Discord; it may have landed
    DELIVERED = "delivered"
    FAILED = "failed"
    CANCELLED = "cancelled"
    TIMED_OUT = "timed_out"
    OUTCOME_UNKNOWN = "outcome_unknown"  # the submit got no answer: never resubmitted
    UNDELIVERABLE = "undeliverable"  # the channel is gone

    @property
    def is_terminal(self) -> bool:
        return self in TERMINAL

    @property
    def label(self) -> str:
        """The state as a member reads it, in the language in use."""
        return _(_LABELS[self])


# The only moves a job can make. A job caught mid-submit ends as OUTCOME_UNKNOWN for good: a
# moderator's retry is a new job, so a possible double charge stays visible in the ledger.
TRANSITIONS: dict[JobState, frozenset[JobState]] = {
    JobState.ACCEPTED: frozenset({JobState.SUBMITTING, JobState.FAILED}),
    JobState.SUBMITTING: frozenset({JobState.QUEUED, JobState.FAILED, JobState.OUTCOME_UNKNOWN}),
    JobState.QUEUED: frozenset({JobState.RUNNING, JobState.FETCHED, JobState.FAILED,
                                JobState.CANCELLED, JobState.TIMED_OUT,
                                JobState.UNDELIVERABLE}),
    JobState.RUNNING: frozenset({JobState.FETCHED, JobState.FAILED, JobState.CANCELLED,
                                 JobState.TIMED_OUT, JobState.UNDELIVERABLE}),
    JobState.FETCHED: frozenset({JobState.DELIVERING, JobState.UNDELIVERABLE}),
    JobState.DELIVERING: frozenset({JobState.DELIVERED, JobState.UNDELIVERABLE}),
}


def sources(target: JobState) -> frozenset[JobState]:
    """The states a job may be in to move to ``target``."""
    return frozenset(state for state, targets in TRANSITIONS.items() if target in targets)


OPEN = frozenset({JobState.ACCEPTED, JobState.SUBMITTING, JobState.QUEUED, JobState.RUNNING,
                  JobState.FETCHED, JobState.DELIVERING})
WAITING = frozenset({JobState.QUEUED, JobState.RUNNING})
UNSENT = frozenset({JobState.ACCEPTED, JobState.SUBMITTING})  # not (known to be) at RunComfy yet
POSTING = frozenset({JobState.FETCHED, JobState.DELIVERING})  # its video is to be posted
TERMINAL = frozenset(JobState) - OPEN

_LABELS = {
    JobState.ACCEPTED: N_("Starting"),
    JobState.SUBMITTING: N_("Starting"),
    JobState.QUEUED: N_("Queued"),
    JobState.RUNNING: N_("Generating"),
    JobState.FETCHED: N_("Finishing"),
    JobState.DELIVERING: N_("Posting"),
    JobState.DELIVERED: N_("Done"),
    JobState.FAILED: N_("Failed"),
    JobState.CANCELLED: N_("Cancelled"),
    JobState.TIMED_OUT: N_("Timed out"),
    JobState.OUTCOME_UNKNOWN: N_("Outcome unknown"),
    JobState.UNDELIVERABLE: N_("Undeliverable"),
}


@dataclass(frozen=True, slots=True)
class Job:
    id: int
    guild_id: int
    channel_id: int
    user_id: int
    model_id: str
    command: str
    prompt: str
    body: dict[str, Any]
    state: JobState
    request_id: str | None
    queue_position: int | None
    card_message_id: int | None
    result_message_id: int | None
    delivered_as: str | None
    video_url: str | None
    error: str | None
    estimated_usd: float | None
    cost_usd: float | None
    created_at: float
    submitted_at: float | None
    started_at: float | None
    finished_at: float | None
    updated_at: float
    seconds: float | None = None
    audio: bool | None = None
    resolution: str | None = None
    simulated: bool = False
    card_sending_at: float | None = None  # the card was being sent then (it may be posted)
    retry_of: int | None = None  # the outcome-unknown job a moderator started again
    lease_owner: str | None = None  # the process serving the job (its shards), and until when
    lease_until: float | None = None
    eta_at: float | None = None  # likely start (queued) or ready (running) time, unix seconds
    parent_id: int | None = None  # the finished job this one came from (bot.lineage), and how:
    origin: str | None = None  # 'again', 'vary' or 'extend'
    # The server's own RunComfy key the job was sent with, sealed (bot.server_keys); None:
    # the operator's. Every call about the job uses it.
    runcomfy_key: str | None = field(default=None, repr=False)

    @classmethod
    def from_row(cls, row: Any) -> Job:
        data = dict(row)
        data["body"] = json.loads(data["body"])
        data["state"] = JobState(data["state"])
        data["audio"] = None if data["audio"] is None else bool(data["audio"])
        data["simulated"] = bool(data["simulated"])
        return cls(**data)

    @property
    def elapsed(self) -> float | None:
        """Seconds from submit to the end (or to ``updated_at`` while under way)."""
        if self.submitted_at is None:
            return None
        return (self.finished_at or self.updated_at) - self.submitted_at


@dataclass(frozen=True, slots=True)
class RunKind:
    """The inputs that drive how long a job runs (``bot.eta`` learns run times per kind)."""

    model_id: str
    seconds: float | None
    resolution: str | None

    @classmethod
    def of(cls, job: Job) -> RunKind:
        return run_kind(job.model_id, job.seconds, job.resolution)


@functools.lru_cache(maxsize=1024)
def run_kind(model_id: str, seconds: float | None, resolution: str | None) -> RunKind:
    """The kind, one object for all its jobs."""
    return RunKind(model_id, seconds, resolution)


@dataclass(frozen=True, slots=True)
class OpenJob:
    """An open job as the poller follows it: what polling it needs, and no more (its prompt,
    body, card and the rest stay in the store, read when it must be shown)."""

    id: int
    guild_id: int
    channel_id: int
    kind: RunKind
    state: JobState
    request_id: str | None
    submitted_at: float | None
    started_at: float | None
    queue_position: int | None
    eta_at: float | None
    runcomfy_key: str | None = field(default=None, repr=False)  # as on ``Job``

    COLUMNS = ("id, guild_id, channel_id, model_id, seconds, resolution, state, request_id,"
               " submitted_at, started_at, queue_position, eta_at, runcomfy_key")

    @classmethod
    def from_row(cls, row: Any) -> OpenJob:
        """A row of ``COLUMNS``."""
        (job_id, guild_id, channel_id, model_id, seconds, resolution, state, request_id,
         submitted_at, started_at, queue_position, eta_at, runcomfy_key) = row
        return cls(job_id, guild_id, channel_id, run_kind(model_id, seconds, resolution),
                   JobState(state), request_id, submitted_at, started_at, queue_position, eta_at,
                   runcomfy_key)

    @classmethod
    def of(cls, job: Job) -> OpenJob:
        return cls(job.id, job.guild_id, job.channel_id, RunKind.of(job), job.state, job.request_id,
                   job.submitted_at, job.started_at, job.queue_position, job.eta_at,
                   job.runcomfy_key)
