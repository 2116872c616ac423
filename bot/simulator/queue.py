"""The simulated RunComfy queue: jobs wait for one of ``workers`` slots, run, then end.

State is computed from the clock whenever it is asked for, so no background task is needed
and the timeline is exact however rarely anyone looks.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class JobState(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


@dataclass(frozen=True)
class Plan:
    """How one job will go; ``None`` times use the simulator's defaults."""

    outcome: JobState = JobState.SUCCEEDED
    error: str = "The model failed to generate the video."
    run_seconds: float | None = None
    queue_seconds: float | None = None


@dataclass
class SimJob:
    request_id: str
    model_id: str
    body: dict[str, Any]
    plan: Plan
    submitted_at: float
    ready_at: float
    run_seconds: float
    cost: float
    owner: str = ""  # the token (account) that submitted it
    state: JobState = JobState.QUEUED
    started_at: float | None = None
    finished_at: float | None = None

    @property
    def ends_at(self) -> float:
        assert self.started_at is not None
        return self.started_at + self.run_seconds


@dataclass
class JobQueue:
    workers: int = 2
    queue_seconds: float = 0.0
    run_seconds: float = 2.0
    clock: Callable[[], float] = time.monotonic
    jobs: dict[str, SimJob] = field(default_factory=dict)
    _waiting: list[SimJob] = field(default_factory=list)
    _running: list[SimJob] = field(default_factory=list)
    _free_at: list[float] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._free_at = [0.0] * self.workers

    def add(self, model_id: str, body: dict[str, Any], plan: Plan, cost: float,
            owner: str = "") -> SimJob:
        now = self.clock()
        wait = self.queue_seconds if plan.queue_seconds is None else plan.queue_seconds
        job = SimJob(
            request_id=uuid.uuid4().hex, model_id=model_id, body=body, plan=plan,
            submitted_at=now, ready_at=now + wait, cost=cost, owner=owner,
            run_seconds=self.run_seconds if plan.run_seconds is None else plan.run_seconds,
        )
        self.jobs[job.request_id] = job
        self._waiting.append(job)
        return job

    def get(self, request_id: str) -> SimJob | None:
        self.advance()
        return self.jobs.get(request_id)

    def position(self, job: SimJob) -> int | None:
        """0-based place in the queue, as RunComfy reports ``queue_position``."""
        return self._waiting.index(job) if job in self._waiting else None

    def cancel(self, job: SimJob) -> bool:
        self.advance()
        if job.state is not JobState.QUEUED:
            return False
        self._waiting.remove(job)
        job.state, job.finished_at = JobState.CANCELLED, self.clock()
        return True

    def advance(self) -> None:
        now = self.clock()
        while True:
            ending = [j for j in self._running if j.ends_at <= now]
            for job in ending:
                self._running.remove(job)
                self._free_at.append(job.ends_at)
                job.finished_at = job.ends_at
                job.state = job.plan.outcome
            started = False
            if self._waiting and self._free_at:
                head = self._waiting[0]
                slot = min(self._free_at)
                start = max(head.ready_at, slot)
                if start <= now:
                    self._free_at.remove(slot)
                    self._waiting.pop(0)
                    head.state, head.started_at = JobState.RUNNING, start
                    self._running.append(head)
                    started = True
            if not ending and not started:
                return
