"""Starting and cancelling jobs: the one path every entry point (slash commands, Animate image
and its form, mentions, Again, Vary and Extend, /retry) takes into RunComfy."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from bot.catalog import ModelSpec
from bot.errors import UserError
from bot.images import AttachmentLike, PendingImage, facts_of, inspect_attachments
from bot.jobs import Job, JobState
from bot.limits import Limits, Who
from bot.lineage import Lineage
from bot.pricing import PriceBook, price_options
from bot.prompts import prompt_texts
from bot.runcomfy import RunComfyClient, RunComfyError, SubmitOutcomeUnknown
from bot.store.database import Tx
from bot.store.jobs import JobStore, NewJob
from bot.validation import build_request

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Requester:
    guild_id: int
    channel_id: int
    user_id: int
    role_ids: frozenset[int] = frozenset()
    parent_channel_id: int | None = None  # the channel a thread is in

    @property
    def who(self) -> Who:
        channels = {self.channel_id} | ({self.parent_channel_id} if self.parent_channel_id
                                        else set())
        return Who(self.guild_id, self.user_id, frozenset(channels), self.role_ids)


class JobRefused(UserError):
    """The job was written down but RunComfy refused it; ``job`` says how it ended."""

    def __init__(self, job: Job, error: RunComfyError) -> None:
        if isinstance(error, SubmitOutcomeUnknown):
            text = (f"Job #{job.id}: {error} A moderator can start it again with "
                    f"`/retry job:{job.id}`.")
        else:
            text = f"Job #{job.id} did not start. {error}"
        super().__init__(text)
        self.job = job
        self.error = error


class JobService:
    def __init__(self, store: JobStore, client: RunComfyClient, limits: Limits,
                 prices: PriceBook, on_change: Callable[[Job], None],
                 clock: Callable[[], float] = time.time, simulated: bool = False) -> None:
        """``simulated``: RunComfy is the built-in simulator; jobs are marked so."""
        self.simulated = simulated
        self.prices = prices
        self.store = store
        self.client = client
        self.limits = limits
        self.on_change = on_change
        self.clock = clock

    @staticmethod
    def precheck(model: ModelSpec, options: Mapping[str, object],
                 attachments: Mapping[str, AttachmentLike]) -> dict[str, Any]:
        """Everything that can be checked without I/O (a refusal before anything is read,
        downloaded or submitted): the body, or ``InvalidOptions``."""
        return build_request(model, options, {k: facts_of(v) for k, v in attachments.items()},
                             headers_pending=True)

    async def _admit(self, model: ModelSpec, body: Mapping[str, Any], who: Requester, *,
                    tx: Tx | None = None) -> None:
        """The guild's rules and the member's allowance; raises ``LimitReached``. Checked
        before anything is downloaded, and again inside the admission's transaction."""
        await self.limits.check(who.who, model, prompt_texts(body),
                                self.prices.estimate(model, body), budgeted=not self.simulated,
                                tx=tx)

    async def check_before_download(self, model: ModelSpec, options: Mapping[str, object],
                                    images: Mapping[str, AttachmentLike | str],
                                    who: Requester) -> None:
        """The options and the guild's rules for a request whose images are still to be
        downloaded or made (given by URL): a refusal costs no download. ``request`` checks
        everything again once they are there."""
        pending = {name: PendingImage(image) if isinstance(image, str) else image
                   for name, image in images.items()}
        await self._admit(model, self.precheck(model, options, pending), who)

    async def request(self, model: ModelSpec, options: Mapping[str, object],
                      attachments: Mapping[str, AttachmentLike], who: Requester, *,
                      lineage: Lineage | None = None) -> Job:
        """The way in for every entry point, in this order: the options and what the images'
        metadata tell (``precheck``), the guild's rules (``_admit``), the images' own bytes
        where their metadata is not enough, then the job (``start``: the rules again, in the
        transaction that records it). ``lineage``: the finished job it comes from (the
        creative loop's Again, Vary and Extend)."""
        await self._admit(model, self.precheck(model, options, attachments), who)
        body = build_request(model, options, await inspect_attachments(model, attachments))
        return await self.start(model, body, who, lineage=lineage)

    async def retry(self, job_id: int, model_of: Callable[[str], ModelSpec | None], *,
                    guild_id: int) -> Job:
        """A moderator starts a job whose outcome is unknown again, as a new job (so that if
        the first ran after all, both charges show). Only the server's budget applies."""
        job = await self.store.get(job_id)
        if job is None or job.guild_id != guild_id:
            raise UserError(f"There is no job #{job_id} in this server.")
        if job.state is not JobState.OUTCOME_UNKNOWN:
            raise UserError(f"Only a job whose outcome is unknown can be retried; job "
                            f"#{job_id} is {job.state.label.lower()}.")
        model = model_of(job.model_id)
        if model is None:
            raise UserError(f"Job #{job_id}'s model is no longer offered here.")
        who = Requester(job.guild_id, job.channel_id, job.user_id)
        return await self.start(model, job.body, who, retry_of=job.id)

    async def start(self, model: ModelSpec, body: dict[str, Any], who: Requester, *,
                    retry_of: int | None = None, lineage: Lineage | None = None) -> Job:
        """Admit and write the job down in one transaction that holds the guild (so two
        requests, in this process or another, can't both take the last of a quota or budget),
        then submit it once. ``body`` comes from ``build_request``."""
        prompt = body.get("prompt")
        seconds, audio, resolution = price_options(model, body)
        estimate = self.prices.estimate(model, body)
        async with self.store.db.transaction() as tx:
            await tx.lock_guild(who.guild_id)
            if retry_of is None:
                await self._admit(model, body, who, tx=tx)
            else:
                again = await self.store.retried_as(retry_of, tx=tx)
                if again is not None:
                    raise UserError(f"Job #{retry_of} was already started again, as job "
                                    f"#{again}; it is not started a third time.")
                if not self.simulated:
                    await self.limits.check_budget(who.guild_id, model, estimate, tx=tx)
            job = await self.store.add(NewJob(
                guild_id=who.guild_id, channel_id=who.channel_id, user_id=who.user_id,
                model_id=model.id, command=model.command,
                prompt=prompt if isinstance(prompt, str) else "", body=body,
                estimated_usd=estimate, seconds=seconds, audio=audio,
                resolution=resolution, simulated=self.simulated, retry_of=retry_of,
                parent_id=lineage.parent_id if lineage else None,
                origin=lineage.origin.value if lineage else None,
            ), tx=tx)
        submitting = await self.store.move(job.id, JobState.SUBMITTING)
        assert submitting is not None
        try:
            submitted = await self.client.submit(model.id, body)
        except SubmitOutcomeUnknown as exc:
            ended = await self.store.move(job.id, JobState.OUTCOME_UNKNOWN, error=str(exc),
                                          finished_at=self.clock())
            self.on_change(ended or submitting)
            raise JobRefused(ended or submitting, exc) from None
        except RunComfyError as exc:
            ended = await self.store.move(job.id, JobState.FAILED, only_from={JobState.SUBMITTING},
                                          error=str(exc), finished_at=self.clock())
            raise JobRefused(ended or submitting, exc) from None
        queued = await self.store.move(job.id, JobState.QUEUED,
                                       request_id=submitted.request_id,
                                       submitted_at=self.clock())
        assert queued is not None
        self.on_change(queued)
        return queued

    async def cancel(self, job_id: int, *, guild_id: int, user_id: int,
                     moderator: bool) -> str:
        """Cancel a job for a member; the answer is the sentence to show them."""
        job = await self.store.get(job_id)
        if job is None or job.guild_id != guild_id:
            return f"There is no job #{job_id} in this server."
        if job.user_id != user_id and not moderator:
            return (f"Only the member who asked for job #{job_id} or a moderator "
                    "(Manage Messages) can cancel it.")
        if job.state.is_terminal:
            return f"Job #{job_id} is already over ({job.state.label.lower()})."
        if job.state in (JobState.ACCEPTED, JobState.SUBMITTING):
            return f"Job #{job_id} is being started; try again in a moment."
        if job.state in (JobState.FETCHED, JobState.DELIVERING):
            return f"Job #{job_id} is finished and its video is being posted."
        assert job.request_id is not None
        try:
            answer = await self.client.cancel(job.request_id)
        except RunComfyError as exc:
            return f"Job #{job_id} could not be cancelled: {exc}"
        if not answer.cancelled:
            return (f"Job #{job_id} is already running: it can't be stopped and will be "
                    "charged. The video will be posted when it is ready.")
        cancelled = await self.store.move(job_id, JobState.CANCELLED, finished_at=self.clock())
        if cancelled is None:
            return f"Job #{job_id} changed state meanwhile; see its card."
        self.on_change(cancelled)
        return f"Job #{job_id} is cancelled; nothing is charged for it."
