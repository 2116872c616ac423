"""What the bot learns of how long things take at RunComfy, and what it makes of it: when a
running job will likely be ready (shown on its card, and used to plan its polls), and when a
queued job will likely start (from how fast the queue moves).

Run times are learned per model and per the inputs that drive them (the requested duration,
the resolution), from the finished jobs in the store, so a restart keeps what was learned.
Nothing is assumed: with too few runs for a kind of job, there is no estimate.

The law of a kind's run times is the learned runs smoothed on a log scale (a kernel density
of their logarithms): it follows whatever shape the runs have (narrow, wide, skewed, two
humps), and it places the rare early and late ends a little beyond the runs seen.
"""

from __future__ import annotations

import math
import statistics
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass

from bot.jobs import Job, OpenJob, RunKind

RUNS_KEPT = 40  # per kind of job: the most recent
MIN_RUNS = 3  # fewer runs than this: no estimate
RATE_WEIGHT = 0.3  # how much a new observation of the queue's pace counts
MIN_BANDWIDTH = 0.02  # the least smoothing of the logarithms (runs all alike: a 2 % spread)


@dataclass(frozen=True, eq=False)
class Estimate:
    """How long a kind of job runs: its median, the mean and standard deviation of the runs'
    logarithms, and the law of its run times (``survival``): a normal kernel of width
    ``bandwidth`` on each run's logarithm (``logs``)."""

    median: float
    log_mean: float
    log_sd: float
    logs: tuple[float, ...] = ()
    bandwidth: float = MIN_BANDWIDTH

    def window(self, z: float) -> tuple[float, float]:
        """The run times within ``z`` standard deviations of the runs' centre (z = 2.326:
        the 1st to the 99th percentile of a lognormal law; 1.282: the 10th to the 90th)."""
        return (math.exp(self.log_mean - z * self.log_sd),
                math.exp(self.log_mean + z * self.log_sd))

    def survival(self, seconds: float) -> float:
        """The chance that a run of this kind lasts longer than ``seconds``."""
        if seconds <= 0:
            return 1.0
        if not self.logs:  # made by hand from the three figures: a lognormal law
            spread = max(self.log_sd, MIN_BANDWIDTH) * math.sqrt(2)
            return 0.5 * math.erfc((math.log(seconds) - self.log_mean) / spread)
        at, width = math.log(seconds), self.bandwidth * math.sqrt(2)
        return sum(math.erfc((at - x) / width) for x in self.logs) / (2 * len(self.logs))

    def quantile(self, share: float) -> float:
        """The run time that ``share`` of the runs stay within (0 < share < 1)."""
        low, high = math.log(self.median) - 1, math.log(self.median) + 1
        while self.survival(math.exp(low)) < 1 - share:
            low -= 1
        while self.survival(math.exp(high)) > 1 - share:
            high += 1
        for _ in range(24):
            middle = (low + high) / 2
            if self.survival(math.exp(middle)) > 1 - share:
                low = middle
            else:
                high = middle
        return math.exp(high)


class RunTimes:
    """Run times per kind. The window comes from a lognormal law fitted to the runs (the
    mean and spread of their logarithms): run times are products of factors, and a fitted law
    places the rare early and late ends where 40 runs' own extremes cannot. ``from_submit``:
    the times from the submit instead (the whole turnaround: the queue and the run)."""

    def __init__(self, from_submit: bool = False) -> None:
        self.from_submit = from_submit
        self._runs: dict[RunKind, deque[float]] = {}
        self._estimates: dict[RunKind, Estimate | None] = {}  # until a run of the kind is added

    def load(self, runs: Iterable[tuple[RunKind, float]]) -> None:
        """Runs read from the store, oldest first."""
        for kind, seconds in runs:
            self._add(kind, seconds)

    def learn(self, job: Job) -> None:
        """A finished job's run, as the poller saw it (from running, or from its submit, to
        finished)."""
        start = job.submitted_at if self.from_submit else job.started_at
        if start is not None and job.finished_at is not None:
            self._add(RunKind.of(job), job.finished_at - start)

    def estimate(self, kind: RunKind) -> Estimate | None:
        if kind not in self._estimates:
            self._estimates[kind] = self._fit(self._runs.get(kind, ()))
        return self._estimates[kind]

    @staticmethod
    def _fit(runs: Iterable[float]) -> Estimate | None:
        runs = list(runs)
        if len(runs) < MIN_RUNS:
            return None
        logs = [math.log(seconds) for seconds in runs]
        sd = statistics.stdev(logs)
        quartiles = statistics.quantiles(logs, n=4)
        spread = min(sd, (quartiles[2] - quartiles[0]) / 1.349) or sd
        bandwidth = max(0.9 * spread * len(logs) ** -0.2, MIN_BANDWIDTH)
        return Estimate(statistics.median(runs), statistics.fmean(logs), sd, tuple(logs),
                        bandwidth)

    def _add(self, kind: RunKind, seconds: float) -> None:
        if seconds > 0:
            self._runs.setdefault(kind, deque(maxlen=RUNS_KEPT)).append(seconds)
            self._estimates.pop(kind, None)


class QueuePace:
    """How fast each model's queue moves (places per second), from queued jobs' positions."""

    def __init__(self) -> None:
        self._seen: dict[int, tuple[int, float]] = {}  # job -> (position, when)
        self._pace: dict[str, float] = {}  # model -> places per second

    def observe(self, job: OpenJob, position: int | None, now: float) -> None:
        if position is None:
            self._seen.pop(job.id, None)
            return
        before = self._seen.get(job.id)
        if before is None or position > before[0]:
            self._seen[job.id] = (position, now)
        elif position < before[0] and now > before[1]:
            pace = (before[0] - position) / (now - before[1])
            model = job.kind.model_id
            old = self._pace.get(model)
            self._pace[model] = pace if old is None else (
                RATE_WEIGHT * pace + (1 - RATE_WEIGHT) * old)
            self._seen[job.id] = (position, now)

    def forget(self, job_id: int) -> None:
        self._seen.pop(job_id, None)

    @property
    def followed(self) -> int:
        """How many queued jobs' positions are kept."""
        return len(self._seen)

    def start_in(self, job: OpenJob, position: int) -> float | None:
        """Seconds until a job at ``position`` (0: next) likely starts."""
        pace = self._pace.get(job.kind.model_id)
        return None if not pace else (position + 1) / pace
