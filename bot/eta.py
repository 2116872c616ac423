"""What the bot learns of how long things take at RunComfy, and what it makes of it: when a
running job will likely be ready (shown on its card, and used to plan its polls), and when a
queued job will likely start (from how fast the queue moves).

Run times are learned per model and per the inputs that drive them (the requested duration,
the resolution), from the finished jobs in the store, so a restart keeps what was learned.
Nothing is assumed: with too few runs for a kind of job, there is no estimate.
"""

from __future__ import annotations

import math
import statistics
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass

from bot.jobs import Job, RunKind

RUNS_KEPT = 40  # per kind of job: the most recent
MIN_RUNS = 3  # fewer runs than this: no estimate
RATE_WEIGHT = 0.3  # how much a new observation of the queue's pace counts


@dataclass(frozen=True)
class Estimate:
    """How long a kind of job runs: its median, and the law fitted to its runs (the mean
    and standard deviation of their logarithms)."""

    median: float
    log_mean: float
    log_sd: float

    def window(self, z: float) -> tuple[float, float]:
        """The run times within ``z`` standard deviations of the law's centre (z = 2.326:
        the 1st to the 99th percentile; 1.282: the 10th to the 90th)."""
        return (math.exp(self.log_mean - z * self.log_sd),
                math.exp(self.log_mean + z * self.log_sd))


class RunTimes:
    """Run times per kind. The window comes from a lognormal law fitted to the runs (the
    mean and spread of their logarithms): run times are products of factors, and a fitted law
    places the rare early and late ends where 40 runs' own extremes cannot."""

    def __init__(self) -> None:
        self._runs: dict[RunKind, deque[float]] = {}
        self._estimates: dict[RunKind, Estimate | None] = {}  # until a run of the kind is added

    def load(self, runs: Iterable[tuple[RunKind, float]]) -> None:
        """Runs read from the store, oldest first."""
        for kind, seconds in runs:
            self._add(kind, seconds)

    def learn(self, job: Job) -> None:
        """A finished job's run, as the poller saw it (from running to finished)."""
        if job.started_at is not None and job.finished_at is not None:
            self._add(RunKind.of(job), job.finished_at - job.started_at)

    def estimate(self, job: Job) -> Estimate | None:
        kind = RunKind.of(job)
        if kind not in self._estimates:
            self._estimates[kind] = self._fit(self._runs.get(kind, ()))
        return self._estimates[kind]

    @staticmethod
    def _fit(runs: Iterable[float]) -> Estimate | None:
        runs = list(runs)
        if len(runs) < MIN_RUNS:
            return None
        logs = [math.log(seconds) for seconds in runs]
        return Estimate(statistics.median(runs), statistics.fmean(logs), statistics.stdev(logs))

    def _add(self, kind: RunKind, seconds: float) -> None:
        if seconds > 0:
            self._runs.setdefault(kind, deque(maxlen=RUNS_KEPT)).append(seconds)
            self._estimates.pop(kind, None)


class QueuePace:
    """How fast each model's queue moves (places per second), from queued jobs' positions."""

    def __init__(self) -> None:
        self._seen: dict[int, tuple[int, float]] = {}  # job -> (position, when)
        self._pace: dict[str, float] = {}  # model -> places per second

    def observe(self, job: Job, position: int | None, now: float) -> None:
        if position is None:
            self._seen.pop(job.id, None)
            return
        before = self._seen.get(job.id)
        if before is None or position > before[0]:
            self._seen[job.id] = (position, now)
        elif position < before[0] and now > before[1]:
            pace = (before[0] - position) / (now - before[1])
            old = self._pace.get(job.model_id)
            self._pace[job.model_id] = pace if old is None else (
                RATE_WEIGHT * pace + (1 - RATE_WEIGHT) * old)
            self._seen[job.id] = (position, now)

    def forget(self, job_id: int) -> None:
        self._seen.pop(job_id, None)

    @property
    def followed(self) -> int:
        """How many queued jobs' positions are kept."""
        return len(self._seen)

    def start_in(self, job: Job, position: int) -> float | None:
        """Seconds until a job at ``position`` (0: next) likely starts."""
        pace = self._pace.get(job.model_id)
        return None if not pace else (position + 1) / pace
