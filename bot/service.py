"""Starting and cancelling jobs: the one path every entry point (slash commands, Animate image
and its form, mentions, Again, Vary and Extend, /retry) takes into RunComfy.

An entry point says what was asked (``JobRequest``: the model, the options, where each image
comes from, who asks and where) and answers the member itself; the order of the checks, the
downloads and the paid call is decided here, once (``JobService.request``)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from bot.access import Access, NoAccess
from bot.catalog import Catalog, ModelSpec
from bot.errors import UserError
from bot.i18n import _
from bot.images import AttachmentLike, ImageInput, facts_of, inspect_attachments
from bot.jobs import POSTING, UNSENT, Job, JobState
from bot.limits import LimitReached, Limits, Standing, Who
from bot.lineage import Lineage
from bot.pricing import PriceBook, price_options
from bot.prompts import prompt_texts
from bot.runcomfy import (
    AuthError,
    InsufficientBalance,
    RunComfyClient,
    RunComfyError,
    SubmitOutcomeUnknown,
)
from bot.server_keys import KeyRefused, ServerKeys
from bot.store.database import Tx
from bot.store.jobs import JobStore, NewJob
from bot.validation import build_request

log = logging.getLogger(__name__)
# Whether the member may act in a channel (by id): a moderator's power (Manage Messages) or
# seeing it (View Channel), as Discord's side computes it for that channel.
InChannel = Callable[[int], bool]


def everywhere(_channel_id: int) -> bool:
    return True


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


@dataclass(frozen=True)
class JobRequest:
    """What a member asked for, from any entry point.

    ``options`` by option name (typed, or as text); ``images`` by the option name of the
    image field. ``check_place``: the entry point's own check, without I/O, that the video can
    be delivered where it was asked for (the bot's permissions there). ``settle``: where the
    job will live, decided once its images are there (a mention's thread); ``who`` until
    then."""

    model: ModelSpec
    options: Mapping[str, object]
    who: Requester
    images: Mapping[str, ImageInput] = field(default_factory=dict)
    lineage: Lineage | None = None
    check_place: Callable[[], None] | None = None
    settle: Callable[[], Awaitable[Requester]] | None = None


class JobRefused(UserError):
    """The job was written down but RunComfy refused it; ``job`` says how it ended."""

    def __init__(self, job: Job, error: RunComfyError, said: str | None = None) -> None:
        """``said``: what the member is told of ``error``, when not its own words."""
        if isinstance(error, SubmitOutcomeUnknown):
            text = _("Job #{job}: {error} A moderator can start it again with "
                     "`/retry job:{job}`.", job=job.id, error=error)
        else:
            text = _("Job #{job} did not start. {reason}", job=job.id, reason=said or error)
        super().__init__(text)
        self.job = job
        self.error = error


class JobService:
    def __init__(self, catalog: Catalog, store: JobStore, client: RunComfyClient,
                 limits: Limits, prices: PriceBook, on_change: Callable[[Job], None],
                 clock: Callable[[], float] = time.time, simulated: bool = False,
                 access: Access | None = None, keys: ServerKeys | None = None,
                 refused: Callable[[str], None] | None = None) -> None:
        """``on_change``: told of every job this service moves (the poller follows it);
        ``simulated``: RunComfy is the built-in simulator; jobs are marked so; ``access``:
        which servers may spend (default: every one); ``keys``: servers' own RunComfy keys
        (default: every job on ``client``'s, the operator's); ``refused``: told the rule of
        every request refused before a paid call (the metrics)."""
        self.catalog = catalog
        self.refused = refused
        self.access = access
        self.keys = keys
        self.simulated = simulated
        self.prices = prices
        self.store = store
        self.client = client
        self.limits = limits
        self.on_change = on_change
        self.clock = clock
        self._sending: set[asyncio.Task[Job]] = set()

    async def request(self, asked: JobRequest) -> Job:
        """``_request``, counting what it refused."""
        try:
            return await self._request(asked)
        except UserError as exc:
            self._count(exc)
            raise

    def _count(self, refusal: UserError) -> None:
        reason = (refusal.reason if isinstance(refusal, LimitReached)
                  else "no_access" if isinstance(refusal, NoAccess)
                  else "key_refused" if isinstance(refusal, KeyRefused) else None)
        if reason is not None and self.refused is not None:
            self.refused(reason)

    async def _request(self, asked: JobRequest) -> Job:
        """The way in for every entry point, in this order: whether the server may spend at
        all; the options and what is known of the images without I/O; the entry point's own
        check of where the video goes; the guild's rules (``_admit``; when nothing is fetched,
        published or settled first, only those that count nothing: the admission counts the
        rest); the images (fetched, their metadata checked, published); their own bytes where
        the metadata is not enough; then the job (``start``: the rules again, in the
        transaction that records it, and the paid call). An image published for a job that is
        refused before it is written down is withdrawn."""
        model, options = asked.model, asked.options
        await self._check_access(asked.who.guild_id)
        body = _precheck(model, options, {n: i.known for n, i in asked.images.items()})
        if asked.check_place is not None:
            asked.check_place()
        if asked.settle is not None or any(image.fetch or image.publish
                                           for image in asked.images.values()):
            await self._admit(model, body, asked.who)  # every rule, before any download
        else:  # nothing fetched before the admission, which counts the rest
            await self.limits.check_rules(asked.who.who, model, prompt_texts(body))
        fetched = {name: await image.fetch() if image.fetch else image.known
                   for name, image in asked.images.items()}
        if any(image.fetch for image in asked.images.values()):
            _precheck(model, options, fetched)  # before anything is published
        withdraw: list[Callable[[], Awaitable[None]]] = []
        try:
            ready: dict[str, AttachmentLike] = {}
            for name, image in asked.images.items():
                ready[name] = await image.publish(fetched[name]) if image.publish \
                    else fetched[name]
                if image.withdraw is not None:
                    withdraw.append(image.withdraw)
            who = await asked.settle() if asked.settle is not None else asked.who
            body = build_request(model, options, await inspect_attachments(model, ready))
            return await self.start(model, body, who, lineage=asked.lineage)
        except UserError as exc:
            if not isinstance(exc, JobRefused):  # refused before it was written down
                for take_back in withdraw:
                    await take_back()
            raise

    async def _check_access(self, guild_id: int) -> None:
        if self.access is not None:
            await self.access.check(guild_id)

    async def _admit(self, model: ModelSpec, body: Mapping[str, Any], who: Requester, *,
                     tx: Tx | None = None) -> str | None:
        """The guild's rules and the member's allowance, then (outside ``tx``) the account's
        caps when the operator pays; raises ``LimitReached``. The key the job would be sent
        with (``None``: the operator's). Checked before anything is downloaded, and again
        inside the admission's transaction (the prompts against the blocklist only the first
        time: their check is the costly one, and the guild's lock is held the second time;
        the account's caps in the statement that writes the job down)."""
        estimate = self.prices.estimate(model, body)
        standing = await self.limits.check(who.who, model, () if tx else prompt_texts(body),
                                           estimate, budgeted=not self.simulated, tx=tx)
        sealed = self._sealed(standing)
        if tx is None and sealed is None and not self.simulated:
            await self.limits.check_account(model, estimate)
        return sealed

    def _sealed(self, standing: Standing) -> str | None:
        """The server's own key for a new job, sealed; ``None``: the operator's."""
        return None if self.keys is None else self.keys.sealed_of(standing.key)

    def _client(self, job: Job) -> RunComfyClient:
        return self.client if self.keys is None else self.keys.client_for(job.runcomfy_key)

    async def job_for(self, job_id: int, *, guild_id: int, user_id: int,
                      moderates: InChannel, action: str, sees: InChannel = everywhere) -> Job:
        """The job, if it is this guild's and the member may act on it: its requester or a
        moderator (Manage Messages) of the job's own channel; with ``sees``, only if the
        member can see that channel (else it is not there for them). ``action`` completes
        "... can {action}" (in the language in use: ``_("cancel it")``)."""
        job = await self.store.get(job_id)
        if job is None or job.guild_id != guild_id or not sees(job.channel_id):
            raise UserError(_("There is no job #{job} in this server.", job=job_id))
        if job.user_id != user_id and not moderates(job.channel_id):
            raise UserError(_("Only the member who asked for job #{job} or a moderator "
                              "(Manage Messages) can {action}.", job=job_id, action=action))
        return job

    def model_of(self, job: Job) -> ModelSpec:
        """The job's model, if the bot still offers it."""
        model = self.catalog.by_id(job.model_id)
        if model is None:
            raise UserError(_("Job #{job}'s model is no longer offered here.", job=job.id))
        return model

    async def retry(self, job_id: int, *, guild_id: int, moderates: InChannel = everywhere
                    ) -> Job:
        """A moderator (of the job's channel) starts a job whose outcome is unknown again, as
        a new job (so that if the first ran after all, both charges show). Only the budgets
        apply."""
        await self._check_access(guild_id)
        job = await self.job_for(job_id, guild_id=guild_id, user_id=0, moderates=moderates,
                                 action=_("retry it"))
        if job.state is not JobState.OUTCOME_UNKNOWN:
            raise UserError(_("Only a job whose outcome is unknown can be retried; job #{job} "
                              "is {state}.", job=job_id, state=job.state.label.lower()))
        who = Requester(job.guild_id, job.channel_id, job.user_id)
        return await self.start(self.model_of(job), job.body, who, retry_of=job.id)

    async def start(self, model: ModelSpec, body: dict[str, Any], who: Requester, *,
                    retry_of: int | None = None, lineage: Lineage | None = None) -> Job:
        """Admit and write the job down in one transaction that holds the guild (so two
        requests, in this process or another, can't both take the last of a quota or budget),
        then submit it once. ``body`` comes from ``build_request``."""
        prompt = body.get("prompt")
        seconds, audio, resolution = price_options(model, body)
        estimate = self.prices.estimate(model, body)
        async with self.store.db.transaction(guild=who.guild_id) as tx:
            if retry_of is None:
                sealed = await self._admit(model, body, who, tx=tx)
            else:
                again = await self.store.retried_as(retry_of, tx=tx)
                if again is not None:
                    raise UserError(_("Job #{job} was already started again, as job "
                                      "#{again}; it is not started a third time.",
                                      job=retry_of, again=again))
                sealed = self._sealed(await self.limits.check_budget(
                    who.guild_id, model, estimate, budgeted=not self.simulated, tx=tx))
            new = NewJob(
                guild_id=who.guild_id, channel_id=who.channel_id, user_id=who.user_id,
                model_id=model.id, command=model.command,
                prompt=prompt if isinstance(prompt, str) else "", body=body,
                estimated_usd=estimate, seconds=seconds, audio=audio,
                resolution=resolution, simulated=self.simulated, retry_of=retry_of,
                parent_id=lineage.parent_id if lineage else None,
                origin=lineage.origin.value if lineage else None,
                runcomfy_key=sealed,
            )
            fits = self.limits.account_fits(model, estimate) \
                if sealed is None and not self.simulated else None
            if fits is None:
                job = await self.store.add(new, tx=tx)
            else:  # last: the account held for one statement and the commit
                added = await self.store.add_if(tx, new, *fits)
                if added is None:
                    raise await self.limits.account_refused(model, estimate, tx=tx)
                job = added
        # The paid call and its recording run as a task of their own, which the caller (an
        # interaction, say) awaits but does not own: a stop never cuts it between sending and
        # recording (``drain``).
        sending = asyncio.create_task(self._submit(job, model, body),
                                      name=f"submit-job-{job.id}")
        self._sending.add(sending)
        sending.add_done_callback(self._sent)
        return await asyncio.shield(sending)

    def _sent(self, task: asyncio.Task[Job]) -> None:
        self._sending.discard(task)
        if not task.cancelled():
            task.exception()  # seen here when its caller was cancelled (a stop)

    async def _submit(self, job: Job, model: ModelSpec, body: dict[str, Any]) -> Job:
        """Send the job once and record what RunComfy said. A job moved meanwhile by someone
        else (another process that took it over) is never sent; one moved while it was being
        sent keeps its request id."""
        submitting = await self.store.move(job.id, JobState.SUBMITTING,
                                           only_from={JobState.ACCEPTED})
        if submitting is None:
            raise UserError(_("Job #{job} was stopped before it was sent to RunComfy; "
                              "nothing was charged.", job=job.id))
        try:
            submitted = await self._client(job).submit(model.id, body)
        except SubmitOutcomeUnknown as exc:
            ended = await self.store.move(job.id, JobState.OUTCOME_UNKNOWN, error=str(exc),
                                          finished_at=self.clock())
            self.on_change(ended or submitting)
            raise JobRefused(ended or submitting, exc) from None
        except RunComfyError as exc:
            error = str(exc)
            if self.keys is not None and job.runcomfy_key is not None and isinstance(
                    exc, AuthError | InsufficientBalance):
                error = await self.keys.refused(job.guild_id, job.runcomfy_key, exc)
            ended = await self.store.move(job.id, JobState.FAILED, only_from={JobState.SUBMITTING},
                                          error=error, finished_at=self.clock())
            raise JobRefused(ended or submitting, exc, error) from None
        queued = await self.store.move(job.id, JobState.QUEUED,
                                       request_id=submitted.request_id,
                                       submitted_at=self.clock())
        if queued is None:  # given up meanwhile: what RunComfy took is kept, never lost
            kept = await self.store.note(job.id, request_id=submitted.request_id,
                                         submitted_at=self.clock()) or submitting
            log.error("job %d: RunComfy took it (request %s) after it was %s elsewhere; its "
                      "request id is kept", job.id, submitted.request_id, kept.state.value)
            self.on_change(kept)
            raise UserError(_("Job #{job} reached RunComfy, but the bot had given it up "
                              "meanwhile ({state}); its request is kept on the job for the "
                              "bot's operator.", job=job.id, state=kept.state.label.lower()))
        self.on_change(queued)
        return queued

    async def drain(self, timeout: float) -> int:  # noqa: ASYNC109 - a deadline, not a poll
        """Wait (up to ``timeout`` seconds) for the submits under way to be recorded: before a
        stop. How many were still under way at the end."""
        if self._sending:
            await asyncio.wait(set(self._sending), timeout=timeout)
        return len(self._sending)

    async def cancel(self, job_id: int, *, guild_id: int, user_id: int,
                     moderates: InChannel) -> str:
        """Cancel a job for a member; the answer is the sentence to show them."""
        try:
            job = await self.job_for(job_id, guild_id=guild_id, user_id=user_id,
                                     moderates=moderates, action=_("cancel it"))
        except UserError as exc:
            return str(exc)
        if job.state.is_terminal:
            return _("Job #{job} is already over ({state}).", job=job_id,
                     state=job.state.label.lower())
        if job.state in UNSENT:
            return _("Job #{job} is being started; try again in a moment.", job=job_id)
        if job.state in POSTING:
            return _("Job #{job} is finished and its video is being posted.", job=job_id)
        assert job.request_id is not None
        try:
            answer = await self._client(job).cancel(job.request_id)
        except RunComfyError as exc:
            return _("Job #{job} could not be cancelled: {error}", job=job_id, error=exc)
        if not answer.cancelled:
            return _("Job #{job} is already running: it can't be stopped and will be "
                     "charged. The video will be posted when it is ready.", job=job_id)
        cancelled = await self.store.move(job_id, JobState.CANCELLED, finished_at=self.clock())
        if cancelled is None:
            return _("Job #{job} changed state meanwhile; see its card.", job=job_id)
        self.on_change(cancelled)
        return _("Job #{job} is cancelled; nothing is charged for it.", job=job_id)


def _precheck(model: ModelSpec, options: Mapping[str, object],
              images: Mapping[str, AttachmentLike]) -> dict[str, Any]:
    """Everything that can be checked without I/O (a refusal before anything is read,
    downloaded or submitted): the body, or ``InvalidOptions``."""
    return build_request(model, options, {k: facts_of(v) for k, v in images.items()},
                         headers_pending=True)
