"""The background poll: asks RunComfy about every waiting request, on a schedule per job, and
hands what changed to the channels (``Channels``: on Discord, ``bot.discord.channel_work``). What
calls ``tick`` on time is Discord's side (``bot.discord.poll_loop``).

The database is the truth: the loop reads it again every interval, so after a restart (or a
change made elsewhere) it picks up exactly where the file says things are.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import functools
import logging
import math
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol, TypeVar

from bot.catalog import DEFAULT_OUTPUT_KEY, Catalog
from bot.eta import MIN_RUNS, RUNS_KEPT, Estimate, QueuePace, RunTimes
from bot.i18n import N_, _, said
from bot.jobs import POSTING, WAITING, Job, JobState, OpenJob
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
# Polls of a running job, planned under a budget (``poll_plan``): where its kind's runs end
# often (the learned law's hazard is high) polls come close together, where they seldom end
# they are far apart, and the expected calls per job are at most the share below of what
# polling every interval (``fixed``) costs on the same law: planned, fixed's calls; economy,
# half of fixed's calls for the whole job (its queued polls are half of fixed's, and the one
# that saw the job start is shared, hence half a call less while running). A job polled from
# its submit (``Poller._whole``) pays no status: economy, half a call less, as a margin.
# Share of fixed's calls, minus calls: for a run seen starting, and for a job from its submit.
BUDGET = {"planned": (1.0, 0.0, 0.0), "economy": (0.5, 1.0, 0.5)}
HAZARD_POWER = 0.5  # poll density ~ hazard ** this (1/2: the least mean delay for the calls)
DENSE = {"planned": 0.25, "economy": 0.5}  # poll intervals: the shortest gap between polls
SURE = 1.645  # standard errors of the law's centre the budget holds for (one-sided 95 %)
TAIL = 0.002  # past this share of the law's latest runs, polled every interval (as fixed)
GRID_CELLS = 200  # the law is read at this many points up to its tail
MAX_SLEEP = 20  # intervals: the longest a running job goes unpolled
FAR_IN_QUEUE = 3  # intervals: a queued job likely to start later than this is polled half
# A job's polls cost at least this when a status sees it start (that status, then a result):
# a kind whose whole turnaround the strategy's budget gives fewer calls is polled from the
# submit on that law, by its result alone (the state until it is done, then the video).
SEEN_START = 2.0
PollStrategy = Literal["planned", "economy", "fixed"]
News = Callable[[], str]  # what to tell a job's requester, said when it is told
Held = TypeVar("Held", Job, OpenJob)  # a job whole, or as the poller follows it


class Channels(Protocol):
    """Where jobs are shown: the channels their cards and videos are posted in."""

    def update(self, job: Job | OpenJob, news: News | None = None) -> None:
        """Bring the job's channel up to date with the job as the store has it (and tell the
        requester ``news``, made in the channel's language when it is told)."""

    def shows_stale(self, job: Job | OpenJob) -> bool:
        """Whether the job's card shows something else than ``job`` (its state, place in line
        and likely time: what polls change) and no update under way will read it afresh."""

    async def stop(self) -> None:
        """Stop every channel's work."""


@dataclass(frozen=True)
class PollSettings:
    interval: float = 3.0
    max_concurrent: int = 8
    timeout_seconds: float = 30 * 60
    strategy: PollStrategy = "planned"


@dataclass(frozen=True)
class PollPlan:
    """When to poll a running job: at ``ages`` (seconds after it was seen running), then every
    interval; ``calls``: the running calls it costs on the learned law, expected (the first
    poll always, each later one if the run lasted until the one before), against ``fixed``:
    what polling every interval costs on the same law, and ``budget``: the most allowed."""

    ages: tuple[float, ...]
    calls: float
    fixed: float
    budget: float


def expected_calls(ages: Sequence[float], interval: float, estimate: Estimate,
                   scale: float = 1.0) -> float:
    """The running calls a job of the ``estimate``'s law (its run times times ``scale``) is
    expected to cost when polled at ``ages`` and every ``interval`` after the last: a poll is
    made if the run outlasted the one before it (the first always)."""
    calls, before = 1.0, 0.0
    for age in ages:
        calls += estimate.survival(age / scale)
        before = age
    for step in range(1, 10_000):
        left = estimate.survival((before + step * interval) / scale)
        calls += left
        if left < 1e-6:
            break
    return calls


@functools.lru_cache(maxsize=256)
def fixed_calls(interval: float, estimate: Estimate, scale: float = 1.0) -> float:
    """What polling every ``interval`` costs a running job of the ``estimate``'s law."""
    return expected_calls((), interval, estimate, scale)


def budget(strategy: Literal["planned", "economy"], fixed: float, whole: bool = False) -> float:
    """The most a plan may cost (``BUDGET``), given ``fixed``'s calls on its law (``whole``:
    the law of the whole job, from its submit)."""
    share, running, from_submit = BUDGET[strategy]
    return max(1.0, share * fixed - (from_submit if whole else running))


@functools.lru_cache(maxsize=256)
def poll_plan(strategy: Literal["planned", "economy"], interval: float,
              estimate: Estimate, whole: bool = False) -> PollPlan:
    """The polls of a running job of the ``estimate``'s law with the least expected delay for
    the strategy's budget: their density follows the law's hazard (the chance that a run
    still going ends in the next second) to the power ``HAZARD_POWER``, between one per
    ``MAX_SLEEP`` intervals and one per ``DENSE`` interval, scaled (by bisection) to spend
    what ``BUDGET`` allows of fixed's expected calls, and no more: on the learned law, and on
    that law's run times ``SURE`` standard errors of their centre longer and shorter (40 runs
    place a law's centre only so well, and dense polls cost more than fixed's when the true
    law is a little off). Past the law's ``TAIL``, a poll, then every interval. ``whole``: the
    law is of the whole job, from its submit. Cached per estimate: a new learned run makes a
    new estimate."""
    shortest, longest = interval * DENSE[strategy], interval * MAX_SLEEP
    end = estimate.quantile(1 - TAIL)
    cells = max(1, min(GRID_CELLS, math.ceil(end / (shortest / 4))))
    step = end / cells
    alive = [estimate.survival(step * j) for j in range(cells + 1)]
    weights = []
    for j in range(cells):  # the hazard over each cell, to the power
        hazard = (math.log(alive[j] / alive[j + 1]) / step if alive[j + 1] > 0
                  else 1 / shortest)
        weights.append(hazard ** HAZARD_POWER)
    error = SURE * estimate.log_sd / math.sqrt(max(len(estimate.logs), MIN_RUNS))
    scales = (1.0, math.exp(error), math.exp(-error))
    fixed = [fixed_calls(interval, estimate, scale) for scale in scales]
    budgets = [budget(strategy, calls, whole) for calls in fixed]

    def survival(age: float) -> float:
        if age >= end:
            return estimate.survival(age)
        at = age / step
        j = int(at)
        return alive[j] + (alive[j + 1] - alive[j]) * (at - j)

    tails = []  # every plan ends with a poll at ``end``: the calls after it, on each law
    for scale in scales:
        tail = 0.0
        for k in range(1, 10_000):
            left = estimate.survival((end + k * interval) / scale)
            tail += left
            if left < 1e-4:
                break
        tails.append(tail)

    def over(ages: list[float]) -> float:
        """How far the polls at ``ages`` go over the budget, on the likeliest of the laws."""
        return max(1.0 + sum(survival(age / scale) for age in ages) + tail - most
                   for scale, most, tail in zip(scales, budgets, tails, strict=True))

    def plan(scale: float) -> list[float]:
        """Polls at density ``weight / scale`` (within the bounds), and one at the end."""
        ages: list[float] = []
        owed = 1.0  # the density left to integrate until the next poll
        for j, weight in enumerate(weights):
            density = min(max(weight / scale, 1 / longest), 1 / shortest)
            start, mass = step * j, density * step
            while mass >= owed:
                start += owed / density
                mass -= owed
                owed = 1.0
                ages.append(start)
            owed -= mass
        if not ages or ages[-1] < end - 1e-9:
            ages.append(end)
        return ages

    positive = [w for w in weights if w > 0] or [1.0]
    low, high = math.log(min(positive) * shortest), math.log(max(positive) * longest)
    ages = plan(math.exp(low))
    if over(ages) > 0:  # the budget binds: the densest plan within it
        ages = plan(math.exp(high))
        for _ in range(24):
            middle = (low + high) / 2
            tried = plan(math.exp(middle))
            if over(tried) > 0:
                low = middle
            else:
                high, ages = middle, tried
    return PollPlan(tuple(ages), expected_calls(ages, interval, estimate), fixed[0], budgets[0])


def running_gap(strategy: Literal["planned", "economy"], interval: float, estimate: Estimate,
                age: float, whole: bool = False) -> float:
    """Seconds until the next poll of a job that has run (``whole``: was submitted) ``age``
    seconds ago: the next poll of its plan (``poll_plan``), an interval once past the plan;
    never more than ``MAX_SLEEP`` intervals (odd learned runs, a clock set back), so a
    timeout is noticed."""
    ages = poll_plan(strategy, interval, estimate, whole).ages
    age = max(age, 0.0)
    # A poll a little late (ticks) or early (the job's beat) is the plan's poll it was due as.
    at = bisect.bisect_right(ages, age + interval * DENSE[strategy] / 2)
    gap = ages[at] - age if at < len(ages) else interval
    return min(gap, MAX_SLEEP * interval)


def _monotonic() -> float:
    return time.monotonic()


class Poller:
    """Each waiting job is polled on its own beat, its next poll planned from the last one's
    due time (``_gap``), so polls spread evenly instead of coming in bursts, however many
    jobs there are. A pool of ``max_concurrent`` workers makes the calls, so many jobs never
    mean many tasks."""

    def __init__(self, catalog: Catalog, store: JobStore, client: RunComfyClient,
                 channels: Channels, settings: PollSettings,
                 clock: Callable[[], float] = time.time, keys: ServerKeys | None = None,
                 monotonic: Callable[[], float] | None = None) -> None:
        """``keys``: servers' own RunComfy keys (a job is polled with the one it was sent
        with); without, every job is on ``client``'s account. ``monotonic``: what the polls
        are timed on (default: ``time.monotonic``, looked up at each call, as a simulated
        Discord's clock replaces it; a benchmark's virtual time, ``clock`` moving with it)."""
        self.catalog = catalog
        self.store = store
        self.client = client
        self.keys = keys
        self.channels = channels
        self.settings = settings
        self.clock = clock
        self.monotonic = monotonic or _monotonic
        self._waiting: dict[int, OpenJob] = {}  # as of the last look at the database
        self._due: dict[int, float] = {}  # job -> when to poll it next (monotonic)
        # job -> the law its polls are planned on, and whether from its submit (``_whole``)
        self._laws: dict[int, tuple[Estimate, bool]] = {}
        self.runs = RunTimes()
        self.turnarounds = RunTimes(from_submit=True)
        self.pace = QueuePace()
        self._refresh_at = 0.0

    def kept(self) -> dict[str, int]:
        """The size of each per-job structure (all 0 when no job waits)."""
        return {"waiting": len(self._waiting), "due": len(self._due),
                "queue_pace": self.pace.followed, "laws": len(self._laws)}

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
        self._laws.clear()
        self._refresh_at = 0.0

    def notify(self, job: Job) -> None:
        """A job changed outside the poller (started, cancelled): follow it, update its card."""
        self._follow(job, first_poll=self.monotonic() + self._phase(job.id, 0.5))
        self.channels.update(job)

    async def recover(self) -> None:
        """After a (re)start: settle what a crash interrupted, then resume everything open."""
        since = self.clock() - LEARN_DAYS * DAY
        self.runs, self.turnarounds = RunTimes(), RunTimes(from_submit=True)
        self.runs.load(await self.store.recent_runs(since, RUNS_KEPT))
        self.turnarounds.load(await self.store.recent_runs(since, RUNS_KEPT, from_submit=True))
        for job in await self.store.claim_open():
            job = await self._settle_interrupted(job)
            if job.card_message_id is None or job.state not in WAITING:
                self.channels.update(job)

    async def _settle_interrupted(self, job: Held) -> Job | Held:
        """A job a crash (of this process, or of the one that held it) left before or in the
        middle of its submit: never sent again."""
        if job.state is JobState.ACCEPTED:
            return await self._end(job, JobState.FAILED, N_(
                "The bot restarted before sending the job to RunComfy; nothing was charged.")
                ) or job
        if job.state is JobState.SUBMITTING:
            return await self._end(job, JobState.OUTCOME_UNKNOWN, N_(
                "The bot restarted while sending the job; it may or may not have started, and "
                "it was not sent again.")) or job
        return job

    async def tick(self) -> None:
        """Poll the jobs that are due, most overdue first, through ``max_concurrent``
        workers (so that many jobs never mean many tasks)."""
        now = self.monotonic()
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
                now, gap = self.monotonic(), self._gap(job)
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
        for found in jobs:
            # Taken: its process stopped holding it (gone, or its shards moved).
            job = await self._settle_interrupted(found) if found.id in taken else found
            self._follow(job, first_poll=now + self._phase(job.id))
            if job.state in POSTING:
                self.channels.update(job)
        for job_id in [j for j in self._due if j not in self._waiting]:
            self._forget(job_id)

    def _follow(self, job: Job | OpenJob, first_poll: float) -> None:
        if job.state in WAITING:
            followed = job if isinstance(job, OpenJob) else OpenJob.of(job)
            self._waiting[job.id] = followed
            if job.id not in self._due:  # polled from its submit: when its plan says
                self._due[job.id] = first_poll if self._whole(followed) is None else (
                    self.monotonic() + self._gap(followed))
        else:
            self._forget(job.id)

    def _forget(self, job_id: int) -> None:
        """Nothing kept of a job no longer waiting (it ended, or moved on)."""
        self._waiting.pop(job_id, None)
        self._due.pop(job_id, None)
        self._laws.pop(job_id, None)
        self.pace.forget(job_id)

    def _phase(self, job_id: int, after: float = 0.0) -> float:
        """When to poll a job first, in seconds from now: jobs asked for together are spread
        over an interval, so that their polls (and their deliveries) do not come in bursts."""
        return (after + (job_id % PHASES) / PHASES) * self.settings.interval

    def _gap(self, job: OpenJob) -> float:
        """Seconds until the job's next poll. ``fixed``: one interval. ``planned`` (and
        ``economy``, on half the calls): a running job whose kind has a learned run time is
        polled on its plan (``poll_plan``: seldom where its kind's runs seldom end, often where
        they often do, at most fixed's expected calls on the same law); a queued job likely
        to start late (``economy``: any queued job) is polled half as often; a job polled
        from its submit (``_whole``), on the plan of its turnaround's law. Nothing learned:
        one interval."""
        interval = self.settings.interval
        strategy = self.settings.strategy
        if strategy == "fixed":
            return interval
        turnaround = self._whole(job)
        if turnaround is not None and job.submitted_at is not None:
            return running_gap(strategy, interval, turnaround, self.clock() - job.submitted_at,
                               whole=True)
        if job.state is JobState.QUEUED:
            start = self.pace.start_in(job, job.queue_position or 0)
            late = start is not None and start > FAR_IN_QUEUE * interval
            return interval * (2 if late or strategy == "economy" else 1)
        pinned = self._laws.get(job.id)
        estimate = pinned[0] if pinned else self.runs.estimate(job.kind)
        if estimate is None or job.started_at is None:
            return interval
        # The law as the job started, all its run: runs learned meanwhile are those that
        # ended first, shorter than its own if it is still going (many of a kind at once).
        self._laws[job.id] = (estimate, False)
        return running_gap(strategy, interval, estimate, self.clock() - job.started_at)

    def _whole(self, job: OpenJob) -> Estimate | None:
        """The law of the job's turnaround (submit to finished) if it is polled from its
        submit by its result alone: when its strategy's budget on that law is under
        ``SEEN_START`` calls and no status saw it start. Kept for the job, as a run's law is."""
        pinned = self._laws.get(job.id)
        if pinned is not None:
            return pinned[0] if pinned[1] else None
        strategy = self.settings.strategy
        if strategy == "fixed" or job.started_at is not None or job.submitted_at is None:
            return None
        law = self.turnarounds.estimate(job.kind)
        if law is None or budget(strategy, fixed_calls(self.settings.interval, law),
                                 whole=True) >= SEEN_START:
            return None
        self._laws[job.id] = (law, True)
        return law

    def _learn(self, job: Job) -> None:
        """Remember how long a finished job ran, and took from its submit."""
        self.runs.learn(job)
        self.turnarounds.learn(job)
        self.pace.forget(job.id)

    def _eta_running(self, job: OpenJob, started: float) -> float | None:
        estimate = self.runs.estimate(job.kind)
        return None if estimate is None else started + estimate.median

    def _eta_queued(self, job: OpenJob, position: int | None, now: float) -> float | None:
        self.pace.observe(job, position, now)
        start_in = None if position is None else self.pace.start_in(job, position)
        return None if start_in is None else now + start_in

    async def _poll(self, job: OpenJob) -> None:
        """Queued: the status (it has the queue position). Running, or polled from its submit
        (``_whole``): the result, which is the current state until the video is there (a
        queued job's news, then, is only that it runs), and then the video: one call, not
        two. Past its timeout: the result, and the job times out only if it is still not done
        (it may have finished, and been charged, while the bot was down)."""
        assert job.request_id is not None
        overdue = job.submitted_at is not None and (
            self.clock() - job.submitted_at > self.settings.timeout_seconds)
        status = result = None
        seen_start = False
        client = self._client(job)
        try:
            if job.state is JobState.QUEUED and not overdue and self._whole(job) is None:
                status = await client.status(job.request_id)
            if status is None or status.phase is Phase.FINISHED:
                result = await client.result(job.request_id)
        except NotFound:
            await self._end(job, JobState.FAILED,
                            N_("RunComfy no longer knows this request (it expired)."))
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
        changed: Job | None = None  # the job as this poll left it, when it wrote it down
        if result is not None and result.outcome not in (Outcome.QUEUED, Outcome.RUNNING):
            changed = await self._now(job, await self._finish(job, result))
        elif overdue:
            await self._time_out(job)
            return
        elif job.state is JobState.QUEUED and (
                status.phase is Phase.RUNNING if status is not None
                else result is not None and result.outcome is Outcome.RUNNING):
            now = self.clock()
            self.pace.forget(job.id)
            seen_start = True
            changed = await self._now(job, await self.store.move(
                job.id, JobState.RUNNING, only_from={JobState.QUEUED}, queue_position=None,
                started_at=now, eta_at=self._eta_running(job, now)))
        elif status is not None:
            eta = self._eta_queued(job, status.queue_position, self.clock())
            if job.queue_position != status.queue_position or (job.eta_at is None) != (
                    eta is None):
                changed = await self._now(job, await self.store.note(
                    job.id, only_in={JobState.QUEUED}, queue_position=status.queue_position,
                    eta_at=eta))
        self._follow(job if changed is None else changed,
                     first_poll=self.monotonic() + self.settings.interval)
        if changed is None:  # nothing new; its card may lag behind (an edit held back)
            if self.channels.shows_stale(job):
                self.channels.update(job)
            return
        if seen_start and changed.state is JobState.RUNNING and job.id in self._due:
            self._due[job.id] = self.monotonic() + self._gap(self._waiting[job.id])  # its plan
        if self.channels.shows_stale(changed):
            self.channels.update(changed)

    def _client(self, job: Job | OpenJob) -> RunComfyClient:
        return self.client if self.keys is None else self.keys.client_for(job.runcomfy_key)

    async def _now(self, polled: OpenJob, changed: Job | None) -> Job | None:
        """The job as it is now: as this poll changed it, or (when something else moved it
        meanwhile: a cancel, another process) as the store has it."""
        if changed is not None:
            return changed
        return await self.store.get(polled.id)

    async def _finish(self, job: OpenJob, result: Result) -> Job | None:
        outcome = result.outcome
        if outcome is Outcome.SUCCEEDED:
            model = self.catalog.by_id(job.kind.model_id)  # None: removed while this job ran
            urls = result.urls(DEFAULT_OUTPUT_KEY if model is None else model.output_key)
            if not urls:
                return await self._end(job, JobState.FAILED,
                                       N_("RunComfy finished without a video."))
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

    async def _time_out(self, job: OpenJob) -> None:
        minutes = self.settings.timeout_seconds / 60
        unit = "minute" if minutes == 1 else "minutes"
        ended = await self._end(job, JobState.TIMED_OUT,
                                f"No video after {minutes:g} {unit}; the bot stopped waiting.")
        if ended and job.request_id:
            with contextlib.suppress(RunComfyError):
                await self._client(job).cancel(job.request_id)  # spare the charge if queued

    async def _end(self, job: Job | OpenJob, state: JobState, reason: str | None) -> Job | None:
        ended = await self.store.move(job.id, state, only_from={job.state}, error=reason,
                                      finished_at=self.clock(), queue_position=None)
        if ended is None:
            return None
        def news() -> str:
            return _("your video could not be made: {reason}", reason=said(reason or ""))

        self.channels.update(ended, news=None if state is JobState.CANCELLED else news)
        return ended

