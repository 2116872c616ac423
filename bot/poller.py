"""The background poll: asks RunComfy about every waiting request, on a schedule per job, and
hands what changed to the channels (``Channels``: on Discord, ``bot.discord.channel_work``). What
calls ``tick`` on time is Discord's side (``bot.discord.poll_loop``).

The database is the truth: the loop reads it again every interval, so after a restart (or a
change made elsewhere) it picks up exactly where the file says things are.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, Protocol

from bot.catalog import DEFAULT_OUTPUT_KEY, Catalog
from bot.eta import RUNS_KEPT, Estimate, QueuePace, RunTimes
from bot.jobs import WAITING, Job, JobState
from bot.runcomfy import (
    AuthError,
    InsufficientBalance,
    NotFound,
    Outcome,
    Phase,
    Result,
    RunComfyClient,
    RunComfyError,
)
from bot.server_keys import ServerKeys
from bot.store.jobs import JobStore

log = logging.getLogger(__name__)
TICKS_PER_INTERVAL = 24  # how often, per poll interval, the loop looks for jobs due a poll
PHASES = 16  # jobs found in the database are spread over this many slots of an interval
LEARN_DAYS = 7  # run times are learned from the jobs of the last week
DAY = 86400.0
# Per strategy: the window a running job's polls are dense in (its run time's percentiles:
# z = 2.326, the 1st to the 99th; 1.282, the 10th to the 90th), and their gap there.
WINDOW_Z = {"planned": 2.326, "economy": 1.282}
DENSE = {"planned": 0.5, "economy": 0.85}  # poll intervals
WINDOW_POLLS = 24  # at most this many polls inside the window (the per-job call budget)
MAX_SLEEP = 20  # intervals: the longest a running job goes unpolled
FAR_IN_QUEUE = 3  # intervals: a queued job likely to start later than this is polled half
PollStrategy = Literal["planned", "economy", "fixed"]


class Channels(Protocol):
    """Where jobs are shown: the channels their cards and videos are posted in."""

    def update(self, job: Job, news: str | None = None) -> None:
        """Bring the job's channel up to date with it (and tell the requester ``news``)."""

    def shows_stale(self, job: Job) -> bool:
        """Whether the job's card shows something else than ``job``."""

    async def stop(self) -> None:
        """Stop every channel's work."""


@dataclass(frozen=True)
class PollSettings:
    interval: float = 3.0
    max_concurrent: int = 8
    timeout_seconds: float = 30 * 60
    strategy: PollStrategy = "planned"


def running_gap(strategy: Literal["planned", "economy"], interval: float, estimate: Estimate,
                age: float) -> float:
    """Seconds until the next poll of a job that has run ``age`` seconds: asleep until a step
    before its window, a step at a time inside it, an interval after it; never more than
    ``MAX_SLEEP`` intervals (odd learned runs, a clock set back), so a timeout is noticed."""
    low, high = estimate.window(WINDOW_Z[strategy])
    step = max(interval * DENSE[strategy], (high - low) / WINDOW_POLLS)
    age = max(age, 0.0)
    opens = low - step
    if age < opens - step:  # far from its likely finish: one call saved per interval
        return min(opens - age, MAX_SLEEP * interval)
    return min(step if age <= high + step else interval, MAX_SLEEP * interval)


class Poller:
    """Each waiting job is polled on its own beat, its next poll planned from the last one's
    due time (``_gap``), so polls spread evenly instead of coming in bursts, however many
    jobs there are. A pool of ``max_concurrent`` workers makes the calls, so many jobs never
    mean many tasks."""

    def __init__(self, catalog: Catalog, store: JobStore, client: RunComfyClient,
                 channels: Channels, settings: PollSettings,
                 clock: Callable[[], float] = time.time, keys: ServerKeys | None = None) -> None:
        """``keys``: servers' own RunComfy keys (a job is polled with the one it was sent
        with); without, every job is on ``client``'s account."""
        self.catalog = catalog
        self.store = store
        self.client = client
        self.keys = keys
        self.channels = channels
        self.settings = settings
        self.clock = clock
        self._waiting: dict[int, Job] = {}  # as of the last look at the database
        self._due: dict[int, float] = {}  # job -> when to poll it next (monotonic)
        self.runs = RunTimes()
        self.pace = QueuePace()
        self._refresh_at = 0.0

    def kept(self) -> dict[str, int]:
        """The size of each per-job structure (all 0 when no job waits)."""
        return {"waiting": len(self._waiting), "due": len(self._due),
                "queue_pace": self.pace.followed}

    @property
    def tick_seconds(self) -> float:
        """How often ``tick`` should run."""
        return self.settings.interval / TICKS_PER_INTERVAL

    async def stop(self) -> None:
        """Stop the channels' work and forget the schedule: ``recover`` then begins afresh
        from the database, as after a restart. (Whoever calls ``tick`` stops first.)"""
        await self.channels.stop()
        self._waiting.clear()
        self._due.clear()
        self._refresh_at = 0.0

    def notify(self, job: Job) -> None:
        """A job changed outside the poller (started, cancelled): follow it, update its card."""
        self._follow(job, first_poll=time.monotonic() + self._phase(job, 0.5))
        self.channels.update(job)

    async def recover(self) -> None:
        """After a (re)start: settle what a crash interrupted, then resume everything open."""
        self.runs = RunTimes()
        self.runs.load(await self.store.recent_runs(self.clock() - LEARN_DAYS * DAY, RUNS_KEPT))
        for job in await self.store.claim_open():
            job = await self._settle_interrupted(job)
            if job.card_message_id is None or job.state not in WAITING:
                self.channels.update(job)

    async def _settle_interrupted(self, job: Job) -> Job:
        """A job a crash (of this process, or of the one that held it) left before or in the
        middle of its submit: never sent again."""
        if job.state is JobState.ACCEPTED:
            return await self._end(job, JobState.FAILED, "The bot restarted before sending "
                                   "the job to RunComfy; nothing was charged.") or job
        if job.state is JobState.SUBMITTING:
            return await self._end(job, JobState.OUTCOME_UNKNOWN, "The bot restarted while "
                                   "sending the job; it may or may not have started, and it "
                                   "was not sent again.") or job
        return job

    async def tick(self) -> None:
        """Poll the jobs that are due, most overdue first, through ``max_concurrent``
        workers (so that many jobs never mean many tasks)."""
        now = time.monotonic()
        if now >= self._refresh_at:
            await self._refresh(now)
        queue = deque(sorted((when, job_id) for job_id, when in self._due.items()
                             if when <= now and job_id in self._waiting))

        async def work() -> None:
            while queue:
                when, job_id = queue.popleft()
                job = self._waiting.get(job_id)
                if job is None:
                    continue  # it moved on while waiting its turn (cancelled, say)
                # On the job's own beat, so that a late tick does not push every later poll
                # back; more than half a beat late, a new beat starts now.
                now, gap = time.monotonic(), self._gap(job)
                self._due[job_id] = when + gap if when + gap - now > gap / 2 else now + gap
                try:
                    await self._poll(job)
                except Exception:  # one job's trouble must not hold up the others' polls
                    log.exception("job %d: poll failed; it will be polled again", job_id)

        await asyncio.gather(*(work() for _ in range(min(len(queue),
                                                          self.settings.max_concurrent))))

    async def _refresh(self, now: float) -> None:
        """Once per interval, the database's word on which jobs are open and this process's
        (it is the truth: jobs may have moved outside the poller, in an earlier life of the
        process, or in another process), renewing its leases on them."""
        self._refresh_at = now + self.settings.interval
        jobs, taken = await self.store.claim()
        self._waiting = {}
        for job in jobs:
            if job.id in taken:  # its process stopped holding it (gone, or its shards moved)
                job = await self._settle_interrupted(job)
            self._follow(job, first_poll=now + self._phase(job))
            if job.state in (JobState.FETCHED, JobState.DELIVERING):
                self.channels.update(job)
        for job_id in [j for j in self._due if j not in self._waiting]:
            self._forget(job_id)

    def _follow(self, job: Job, first_poll: float) -> None:
        if job.state in WAITING:
            self._waiting[job.id] = job
            self._due.setdefault(job.id, first_poll)
        else:
            self._forget(job.id)

    def _forget(self, job_id: int) -> None:
        """Nothing kept of a job no longer waiting (it ended, or moved on)."""
        self._waiting.pop(job_id, None)
        self._due.pop(job_id, None)
        self.pace.forget(job_id)

    def _phase(self, job: Job, after: float = 0.0) -> float:
        """When to poll a job first, in seconds from now: jobs asked for together are spread
        over an interval, so that their polls (and their deliveries) do not come in bursts."""
        return (after + (job.id % PHASES) / PHASES) * self.settings.interval

    def _gap(self, job: Job) -> float:
        """Seconds until the job's next poll. ``fixed``: one interval. ``planned`` (and
        ``economy``, with fewer calls): a running job whose kind has a learned run time sleeps
        until a step before the window its run likely ends in (``planned``: almost surely), is
        polled every ``DENSE`` interval inside it (at most ``WINDOW_POLLS`` times), and once
        an interval after it; a queued job likely to start late (``economy``: any queued job)
        is polled half as often. Nothing learned: one interval."""
        interval = self.settings.interval
        strategy = self.settings.strategy
        if strategy == "fixed":
            return interval
        if job.state is JobState.QUEUED:
            start = self.pace.start_in(job, job.queue_position or 0)
            late = start is not None and start > FAR_IN_QUEUE * interval
            return interval * (2 if late or strategy == "economy" else 1)
        estimate = self.runs.estimate(job)
        if estimate is None or job.started_at is None:
            return interval
        return running_gap(strategy, interval, estimate, self.clock() - job.started_at)

    def _learn(self, job: Job) -> None:
        """Remember how long a finished job ran."""
        self.runs.learn(job)
        self.pace.forget(job.id)

    def _eta_running(self, job: Job, started: float) -> float | None:
        estimate = self.runs.estimate(job)
        return None if estimate is None else started + estimate.median

    def _eta_queued(self, job: Job, position: int | None, now: float) -> float | None:
        self.pace.observe(job, position, now)
        start_in = None if position is None else self.pace.start_in(job, position)
        return None if start_in is None else now + start_in

    async def _poll(self, job: Job) -> None:
        """Queued: the status (it has the queue position). Running: the result, which is the
        current state until the video is there, and then the video: one call, not two. Past
        its timeout: the result, and the job times out only if it is still not done (it may
        have finished, and been charged, while the bot was down)."""
        assert job.request_id is not None
        overdue = job.submitted_at is not None and (
            self.clock() - job.submitted_at > self.settings.timeout_seconds)
        status = result = None
        client = self._client(job)
        try:
            if job.state is JobState.QUEUED and not overdue:
                status = await client.status(job.request_id)
            if status is None or status.phase is Phase.FINISHED:
                result = await client.result(job.request_id)
        except NotFound:
            await self._end(job, JobState.FAILED, "RunComfy no longer knows this request "
                            "(it expired).")
            return
        except RunComfyError as exc:
            if isinstance(exc, AuthError | InsufficientBalance) and self.keys is not None \
                    and job.runcomfy_key is not None:  # the server's own key no longer works
                await self._end(job, JobState.FAILED,
                                await self.keys.refused(job.guild_id, job.runcomfy_key, exc))
            elif overdue:
                await self._time_out(job)
            else:
                log.warning("job %d: poll failed (%s); will try again", job.id,
                            type(exc).__name__)
            return
        if result is not None and result.outcome not in (Outcome.QUEUED, Outcome.RUNNING):
            job = await self._now(job, await self._finish(job, result))
        elif overdue:
            await self._time_out(job)
            return
        elif status is not None and status.phase is Phase.RUNNING:
            now = self.clock()
            self.pace.forget(job.id)
            job = await self._now(job, await self.store.move(
                job.id, JobState.RUNNING, only_from={JobState.QUEUED}, queue_position=None,
                started_at=now, eta_at=self._eta_running(job, now)))
        elif status is not None:
            eta = self._eta_queued(job, status.queue_position, self.clock())
            if job.queue_position != status.queue_position or (job.eta_at is None) != (
                    eta is None):
                job = await self._now(job, await self.store.note(
                    job.id, only_in={JobState.QUEUED}, queue_position=status.queue_position,
                    eta_at=eta))
        self._follow(job, first_poll=time.monotonic() + self.settings.interval)
        if self.channels.shows_stale(job):
            self.channels.update(job)

    def _client(self, job: Job) -> RunComfyClient:
        return self.client if self.keys is None else self.keys.client_for(job.runcomfy_key)

    async def _now(self, polled: Job, changed: Job | None) -> Job:
        """The job as it is now: as this poll changed it, or (when something else moved it
        meanwhile: a cancel, another process) as the store has it."""
        if changed is not None:
            return changed
        return await self.store.get(polled.id) or polled

    async def _finish(self, job: Job, result: Result) -> Job | None:
        outcome = result.outcome
        if outcome is Outcome.SUCCEEDED:
            model = self.catalog.by_id(job.model_id)  # None: removed while this job ran
            urls = result.urls(DEFAULT_OUTPUT_KEY if model is None else model.output_key)
            if not urls:
                return await self._end(job, JobState.FAILED, "RunComfy finished without a video.")
            fetched = await self.store.move(job.id, JobState.FETCHED, video_url=urls[0],
                                            cost_usd=result.cost, finished_at=self.clock(),
                                            queue_position=None, eta_at=None)
            if fetched is not None:
                self._learn(fetched)
            return fetched
        if outcome is Outcome.FAILED:
            return await self._end(job, JobState.FAILED,
                                   self._client(job).scrub(result.error_text))
        if outcome is Outcome.CANCELLED:
            return await self._end(job, JobState.CANCELLED, None)
        return None

    async def _time_out(self, job: Job) -> None:
        minutes = self.settings.timeout_seconds / 60
        unit = "minute" if minutes == 1 else "minutes"
        ended = await self._end(job, JobState.TIMED_OUT,
                                f"No video after {minutes:g} {unit}; the bot stopped waiting.")
        if ended and job.request_id:
            with contextlib.suppress(RunComfyError):
                await self._client(job).cancel(job.request_id)  # spare the charge if queued

    async def _end(self, job: Job, state: JobState, reason: str | None) -> Job | None:
        ended = await self.store.move(job.id, state, only_from={job.state}, error=reason,
                                      finished_at=self.clock(), queue_position=None)
        if ended is None:
            return None
        news = None if state is JobState.CANCELLED else f"your video could not be made: {reason}"
        self.channels.update(ended, news=news)
        return ended

