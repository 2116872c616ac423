"""A worker per busy channel: it makes the channel show what the database says about each of
its jobs (the card, news for the requester) and posts the videos, one at a time, in the order
they finished, so that a slow channel never holds up another."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable

import aiohttp
import discord

from bot.discord.delivery import CannotPost, ChannelGone, Delivery
from bot.i18n import N_, _, said, speak
from bot.jobs import POSTING, UNSENT, WAITING, Job, JobState, OpenJob
from bot.poller import News
from bot.store.jobs import JobStore
from bot.store.notices import NoticeStore

log = logging.getLogger(__name__)
MAX_UPLOAD_FAILURES = 3  # then the video is posted as a link


class ChannelWork:
    """The poller's ``Channels`` on Discord."""

    def __init__(self, store: JobStore, notices: NoticeStore, delivery: Delivery, *,
                 retry_seconds: float, card_edit_interval: float,
                 language_of: Callable[[int], Awaitable[str]] | None = None) -> None:
        """``retry_seconds``: the first wait after a failed upload (doubled each time);
        ``card_edit_interval``: the least seconds between two edits of a card;
        ``language_of``: a server's language, which its channels are spoken to in."""
        self.language_of = language_of
        self.store = store
        self.notices = notices
        self.delivery = delivery
        self.retry_seconds = retry_seconds
        self.card_edit_interval = card_edit_interval
        # channel -> its jobs in order, each with the latest it was told of the job
        self._queues: dict[int, dict[int, Job | OpenJob]] = {}
        self._workers: dict[int, asyncio.Task[None]] = {}
        self._shown: dict[int, tuple[tuple[object, ...], float]] = {}  # job -> (card, when)
        self._news: dict[int, News] = {}  # job -> what to tell the requester once
        self._upload_failures: dict[int, int] = {}
        self._retry_at: dict[int, float] = {}

    def update(self, job: Job | OpenJob, news: News | None = None) -> None:
        """Bring the job's channel up to date with the job as the store has it (and tell the
        requester ``news``)."""
        if news:
            self._news[job.id] = news
        self._enqueue(job)

    def shows_stale(self, job: Job | OpenJob) -> bool:
        """Whether the job's card shows something else than ``job``, and nothing is under way
        to change that (a job waiting its turn in its channel is read afresh then). A
        waiting job's card edited less than ``card_edit_interval`` ago is not yet: its next
        edit waits for a poll after that (unless there is news to tell)."""
        waiting = job.channel_id in self._workers and job.id in self._queues.get(
            job.channel_id, {})
        shown, when = self._shown.get(job.id, ((), 0.0))
        if waiting or self._card_of(job) == shown:
            return False
        return not (shown and job.state in WAITING and job.id not in self._news
                    and self._edited_lately(when))

    async def stop(self) -> None:
        """Stop every channel's work; what waits in a channel is taken up by its next worker
        (the next ``update`` there starts one)."""
        workers = list(self._workers.values())
        for worker in workers:
            worker.cancel()
        for worker in workers:
            with contextlib.suppress(asyncio.CancelledError):
                await worker
        # One cancelled before it began never ran, nor its ``finally``: no longer its channel's.
        self._workers = {channel: w for channel, w in self._workers.items() if not w.done()}

    def _enqueue(self, job: Job | OpenJob) -> None:
        self._queues.setdefault(job.channel_id, {})[job.id] = job
        if job.channel_id not in self._workers:
            self._workers[job.channel_id] = asyncio.create_task(
                self._work(job.channel_id), name=f"channel-{job.channel_id}")

    async def _work(self, channel_id: int) -> None:
        """Handle this channel's jobs one at a time, in the order they were queued."""
        try:
            while queue := self._queues.get(channel_id):
                job_id, told = next(iter(queue.items()))
                del queue[job_id]
                try:
                    await self._reconcile(job_id, told)
                except Exception:
                    log.exception("job %d: could not update the channel", job_id)
        finally:
            self._workers.pop(channel_id, None)
            if not self._queues.get(channel_id):
                self._queues.pop(channel_id, None)

    async def _reconcile(self, job_id: int, told: Job | OpenJob) -> None:
        """Make the channel show what the database says about the job: a finished job's
        video goes first, its card after (Discord limits how fast one channel takes posts)."""
        job, marked = await self._read(job_id, told)
        if job is None or job.state in UNSENT:
            return
        if self.language_of is not None:
            speak(await self.language_of(job.guild_id))
        has_video = job.state in POSTING
        if job.card_message_id is None or not has_video:
            job = await self._show(job, marked=marked)
        if has_video and not await self._deliver(job):
            await self._show(job)  # not posted yet: the card says where things stand
        elif has_video or job.state.is_terminal:
            await self._settle(job)

    async def _read(self, job_id: int, told: Job | OpenJob) -> tuple[Job | None, bool]:
        """The job as the store has it, and whether this read marked its first card as being
        sent: a job last told of with no card yet is read by marking it (one statement). A
        whole job told of (as a store's write or read returned it) is as the store has it,
        but for its video: a job whose video is to be posted is always read afresh."""
        if isinstance(told, Job):
            if told.card_message_id is None and told.card_sending_at is None:
                marked = await self.store.mark_card_sending(job_id)
                if marked is not None:
                    return marked, True
            elif told.state not in POSTING:
                return told, False
        return await self.store.get(job_id), False

    async def _settle(self, job: Job) -> None:
        """The job is settled (its card changes no more): nothing is kept of it. News that
        could not be told in the channel (gone, closed) waits for the member's next command."""
        for kept in (self._shown, self._upload_failures, self._retry_at):
            kept.pop(job.id, None)
        news = self._news.pop(job.id, None)
        if news:  # kept as said in the channel's language
            await self.notices.add(job.guild_id, job.user_id, _(
                "Job #{job} in <#{channel}>: {news}", job=job.id, channel=job.channel_id,
                news=news()))

    def kept(self) -> dict[str, int]:
        """The size of each per-job and per-channel structure (all 0 once every job is
        settled and every channel idle)."""
        return {"shown": len(self._shown), "news": len(self._news),
                "upload_failures": len(self._upload_failures), "retry_at": len(self._retry_at),
                "queues": len(self._queues), "workers": len(self._workers)}

    async def _show(self, job: Job, *, marked: bool = False) -> Job:
        """Post or update the job's card, and tell the requester the news, if any
        (``marked``: the card's first sending was marked just now)."""
        try:
            if job.card_message_id is None:
                job = await self._post_card_once(job, marked=marked)
                self._shown[job.id] = (self._card_of(job), time.monotonic())
            else:
                await self._refresh_card(job)
            news = self._news.get(job.id)
            if news:
                await self.delivery.tell(job, news())
                self._news.pop(job.id, None)  # told (kept for the next try if not)
        except (ChannelGone, CannotPost, discord.HTTPException) as exc:
            # The card can wait; the video cannot be lost: see _deliver.
            log.warning("job %d: could not update its card (%s)", job.id, type(exc).__name__)
        return job

    async def _post_card_once(self, job: Job, *, marked: bool = False) -> Job:
        """Record that the card is being sent (unless ``marked`` just now), then send it;
        after a crash in between, look for the card first (and the nonce makes Discord
        answer a resend with the first)."""
        card: int | None = None
        if job.card_sending_at is None:
            job = await self.store.note(job.id, card_sending_at=self.store.clock()) or job
        elif not marked:  # an earlier attempt (or life) may have posted it
            card = await self.delivery.find_card(job, job.card_sending_at)
            if card is not None:
                log.info("job %d: its card was already posted (message %d)", job.id, card)
        if card is None:
            card = await self.delivery.post_card(job)
        return await self.store.note(job.id, card_message_id=card) or job

    def _edited_lately(self, when: float) -> bool:
        """Whether a card shown at ``when`` (monotonic) waits before its next edit."""
        return time.monotonic() - when < self.card_edit_interval

    async def _refresh_card(self, job: Job, *, force: bool = False) -> None:
        card = self._card_of(job)
        shown, when = self._shown.get(job.id, ((), 0.0))
        if card == shown:
            return
        if self._edited_lately(when) and not force and not job.state.is_terminal:
            return  # the next poll brings it back
        await self.delivery.edit_card(job)
        self._shown[job.id] = (card, time.monotonic())

    async def _deliver(self, job: Job) -> bool:
        """Post the video once: after a crash, look for it before posting again; after
        failed uploads, try again later (backing off), and at last post a link. Whether
        the job is settled (posted, or out of reach) rather than left for later."""
        failures = self._upload_failures.get(job.id, 0)
        if failures and time.monotonic() < self._retry_at.get(job.id, 0.0):
            return False
        try:
            if job.state is JobState.FETCHED:
                moved = await self.store.move(job.id, JobState.DELIVERING)
                if moved is None:
                    return True  # another worker has it
                job = moved
            else:
                earlier = await self.delivery.find_posted(job)
                if earlier is not None:
                    log.info("job %d: its video was already posted (message %d)", job.id,
                             earlier)
                    await self._delivered(job, earlier, "found")
                    return True
            posted = await self.delivery.post_video(
                job, as_link=failures >= MAX_UPLOAD_FAILURES)
        except ChannelGone:
            await self._undeliverable(job, N_("The channel was deleted or hidden from the bot."))
            return True
        except CannotPost:
            await self._undeliverable(job, N_("The bot may no longer post in the channel."))
            return True
        except (aiohttp.ClientError, TimeoutError, discord.HTTPException) as exc:
            self._upload_failures[job.id] = failures + 1
            delay = self.retry_seconds * 2 ** failures
            self._retry_at[job.id] = time.monotonic() + delay
            log.warning("job %d: posting failed (%s); trying again in %.0f s", job.id,
                        type(exc).__name__, delay)
            return False
        self._upload_failures.pop(job.id, None)
        self._retry_at.pop(job.id, None)
        await self._delivered(job, posted.message_id, posted.delivered_as)
        return True

    async def _delivered(self, job: Job, message_id: int, delivered_as: str) -> None:
        done = await self.store.move(job.id, JobState.DELIVERED,
                                     result_message_id=message_id, delivered_as=delivered_as)
        if done is not None:
            with contextlib.suppress(ChannelGone, CannotPost, discord.HTTPException):
                await self._refresh_card(done, force=True)

    async def _undeliverable(self, job: Job, reason: str) -> None:
        """The video exists but the channel is out of reach: tell the requester elsewhere
        (``reason``: kept in English on the job, said in the server's language)."""
        ended = await self.store.move(job.id, JobState.UNDELIVERABLE, only_from={job.state},
                                      error=reason)
        if ended is None:
            return
        text = _("Your video (job #{job}) is ready, but I could not post it in <#{channel}>: "
                 "{reason}", job=job.id, channel=job.channel_id, reason=said(reason))
        if job.video_url:
            text += " " + _("Download it here (the link expires): {url}", url=job.video_url)
        if not await self.delivery.direct_message(job.user_id, text):
            await self.notices.add(job.guild_id, job.user_id, text)

    @staticmethod
    def _card_of(job: Job | OpenJob) -> tuple[object, ...]:
        """What of the card moves while the job is open (its cost comes with a new state)."""
        return (job.state, job.queue_position, job.eta_at)
