"""The background work: one loop polls every waiting request, and a worker per busy channel
keeps that channel's cards current and posts its videos in the order they finished.

The loop never holds a job in memory that the database does not have: after a restart it
picks up exactly where the file says things are.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

import aiohttp
import discord
from discord.ext import tasks

from bot.catalog import Catalog
from bot.delivery import CannotPost, ChannelGone, Delivery
from bot.jobs import WAITING, Job, JobState
from bot.runcomfy import NotFound, Outcome, Phase, Result, RunComfyClient, RunComfyError
from bot.store.jobs import JobStore

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PollSettings:
    interval: float = 3.0
    max_concurrent: int = 8
    timeout_seconds: float = 30 * 60
    card_edit_interval: float = 5.0


class Poller:
    def __init__(self, catalog: Catalog, store: JobStore, client: RunComfyClient,
                 delivery: Delivery, settings: PollSettings,
                 clock: Callable[[], float] = time.time) -> None:
        self.catalog = catalog
        self.store = store
        self.client = client
        self.delivery = delivery
        self.settings = settings
        self.clock = clock
        self._limit = asyncio.Semaphore(settings.max_concurrent)
        self._queues: dict[int, dict[int, None]] = {}  # channel -> ordered set of job ids
        self._workers: dict[int, asyncio.Task[None]] = {}
        self._shown: dict[int, tuple[tuple[object, ...], float]] = {}  # job -> (card, when)
        self._news: dict[int, str] = {}  # job -> what to tell the requester once
        # discord.py's task loop: reconnect-safe, and one task however many jobs wait.
        self._loop = tasks.loop(seconds=settings.interval)(self._tick_safely)
        self._loop.before_loop(self.recover)

    def start(self) -> None:
        self._loop.start()

    async def stop(self) -> None:
        self._loop.cancel()
        workers = list(self._workers.values())
        for worker in workers:
            worker.cancel()
        for worker in workers:
            with contextlib.suppress(asyncio.CancelledError):
                await worker

    async def _tick_safely(self) -> None:
        try:
            await self.tick()
        except Exception:
            log.exception("poll tick failed; the next one will try again")

    def notify(self, job: Job) -> None:
        """A job changed outside the poller (started, cancelled): update its card."""
        self._enqueue(job)

    async def recover(self) -> None:
        """After a (re)start: settle what a crash interrupted, then resume everything open."""
        for job in await self.store.open_jobs():
            if job.state is JobState.ACCEPTED:
                job = await self._end(job, JobState.FAILED, "The bot restarted before sending "
                                      "the job to RunComfy; nothing was charged.") or job
            elif job.state is JobState.SUBMITTING:
                job = await self._end(job, JobState.OUTCOME_UNKNOWN, "The bot restarted while "
                                      "sending the job; it may or may not have started, and it "
                                      "was not sent again.") or job
            if job.card_message_id is None or job.state not in WAITING:
                self._enqueue(job)

    async def tick(self) -> None:
        jobs = await self.store.open_jobs()
        await asyncio.gather(*(self._poll(job) for job in jobs if job.state in WAITING))
        for job in jobs:
            if job.state in (JobState.FETCHED, JobState.DELIVERING):
                self._enqueue(job)

    async def _poll(self, job: Job) -> None:
        assert job.request_id is not None
        if job.submitted_at and self.clock() - job.submitted_at > self.settings.timeout_seconds:
            await self._time_out(job)
            return
        try:
            async with self._limit:
                status = await self.client.status(job.request_id)
                result = None
                if status.phase is Phase.FINISHED:
                    result = await self.client.result(job.request_id)
        except NotFound:
            await self._end(job, JobState.FAILED, "RunComfy no longer knows this request "
                            "(it expired).")
            return
        except RunComfyError as exc:
            log.warning("job %d: poll failed (%s); will try again", job.id, type(exc).__name__)
            return
        if result is not None:
            job = await self._finish(job, result) or job
        elif status.phase is Phase.RUNNING:
            job = await self.store.move(job.id, {JobState.QUEUED}, JobState.RUNNING,
                                        queue_position=None, started_at=self.clock()) or job
        elif job.state is JobState.QUEUED and job.queue_position != status.queue_position:
            job = await self.store.note(job.id, queue_position=status.queue_position) or job
        if self._card_of(job) != self._shown.get(job.id, ((), 0.0))[0]:
            self._enqueue(job)

    async def _finish(self, job: Job, result: Result) -> Job | None:
        outcome = result.outcome
        if outcome is Outcome.SUCCEEDED:
            urls = result.urls(self.catalog.by_id(job.model_id).output_key)
            if not urls:
                return await self._end(job, JobState.FAILED, "RunComfy finished without a video.")
            return await self.store.move(job.id, WAITING, JobState.FETCHED, video_url=urls[0],
                                         cost_usd=result.cost, finished_at=self.clock(),
                                         queue_position=None)
        if outcome is Outcome.FAILED:
            return await self._end(job, JobState.FAILED, result.error_text)
        if outcome is Outcome.CANCELLED:
            return await self._end(job, JobState.CANCELLED, None)
        return None  # the result still says queued or running: poll again

    async def _time_out(self, job: Job) -> None:
        minutes = self.settings.timeout_seconds / 60
        ended = await self._end(job, JobState.TIMED_OUT,
                                f"No video after {minutes:g} minutes; the bot stopped waiting.")
        if ended and job.request_id:
            with contextlib.suppress(RunComfyError):
                await self.client.cancel(job.request_id)  # spare the charge if still queued

    async def _end(self, job: Job, state: JobState, reason: str | None) -> Job | None:
        ended = await self.store.move(job.id, {job.state}, state, error=reason,
                                      finished_at=self.clock(), queue_position=None)
        if ended is None:
            return None
        if state is not JobState.CANCELLED:
            self._news[job.id] = f"your video could not be made: {reason}"
        self._enqueue(ended)
        return ended

    def _enqueue(self, job: Job) -> None:
        self._queues.setdefault(job.channel_id, {})[job.id] = None
        if job.channel_id not in self._workers:
            self._workers[job.channel_id] = asyncio.create_task(
                self._work(job.channel_id), name=f"channel-{job.channel_id}")

    async def _work(self, channel_id: int) -> None:
        """Handle this channel's jobs one at a time, in the order they were queued."""
        try:
            while queue := self._queues.get(channel_id):
                job_id = next(iter(queue))
                del queue[job_id]
                try:
                    await self._reconcile(job_id)
                except Exception:
                    log.exception("job %d: could not update the channel", job_id)
        finally:
            self._workers.pop(channel_id, None)
            if not self._queues.get(channel_id):
                self._queues.pop(channel_id, None)

    async def _reconcile(self, job_id: int) -> None:
        """Make the channel show what the database says about the job."""
        job = await self.store.get(job_id)
        if job is None or job.state in (JobState.ACCEPTED, JobState.SUBMITTING):
            return
        try:
            if job.card_message_id is None:
                card = await self.delivery.post_card(job)
                job = await self.store.note(job.id, card_message_id=card) or job
                self._shown[job.id] = (self._card_of(job), time.monotonic())
            else:
                await self._refresh_card(job)
            if job.state in (JobState.FETCHED, JobState.DELIVERING):
                await self._deliver(job)
            news = self._news.pop(job.id, None)
            if news:
                await self.delivery.tell(job, news)
        except ChannelGone:
            await self._undeliverable(job, "The channel is gone.")
        except CannotPost:
            await self._undeliverable(job, "The bot is not allowed to post in the channel.")
        if job.state.is_terminal:
            self._shown.pop(job.id, None)

    async def _refresh_card(self, job: Job, *, force: bool = False) -> None:
        card = self._card_of(job)
        shown, when = self._shown.get(job.id, ((), 0.0))
        if card == shown:
            return
        soon = time.monotonic() - when < self.settings.card_edit_interval
        if soon and not force and not job.state.is_terminal:
            return  # the next poll brings it back
        await self.delivery.edit_card(job)
        self._shown[job.id] = (card, time.monotonic())

    async def _deliver(self, job: Job) -> None:
        if job.state is JobState.FETCHED:
            moved = await self.store.move(job.id, {JobState.FETCHED}, JobState.DELIVERING)
            if moved is None:
                return
            job = moved
        else:
            earlier = await self.delivery.find_posted(job)
            if earlier is not None:
                log.info("job %d: video was already posted as %d", job.id, earlier)
                await self._delivered(job, earlier, "file")
                return
        try:
            posted = await self.delivery.post_video(job)
        except (aiohttp.ClientError, TimeoutError, discord.HTTPException) as exc:
            log.warning("job %d: posting failed (%s); will try again", job.id, exc)
            return
        await self._delivered(job, posted.message_id, posted.delivered_as)

    async def _delivered(self, job: Job, message_id: int, delivered_as: str) -> None:
        done = await self.store.move(job.id, {JobState.DELIVERING}, JobState.DELIVERED,
                                     result_message_id=message_id, delivered_as=delivered_as)
        if done is not None:
            await self._refresh_card(done, force=True)

    async def _undeliverable(self, job: Job, reason: str) -> None:
        if not job.state.is_terminal:
            await self.store.move(job.id, {job.state}, JobState.UNDELIVERABLE, error=reason)
        log.warning("job %d: undeliverable: %s", job.id, reason)

    @staticmethod
    def _card_of(job: Job) -> tuple[object, ...]:
        return (job.state, job.queue_position, job.cost_usd)
