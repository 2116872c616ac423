"""The one way into RunComfy (``bot.service``): a member's request checked in order (options,
the entry point's own check, the guild's rules, the images, then the job written down and
submitted once), ``/retry`` of a job whose outcome is unknown, and cancelling.

Real parts as bot/discord/client.py wires them: a store on both backends, and RunComfy's
simulator over HTTP on 127.0.0.1 (one worker, so a second job waits in its queue). The entry
point's side (where an image comes from, where the video goes) is recorded callables, as an
entry point would pass them. No Discord: its side is tested in tests/cogs."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import pytest

from bot.catalog import Catalog, ModelSpec
from bot.errors import UserError
from bot.images import AttachmentLike, FetchedImage, ImageInput, PendingImage
from bot.jobs import Job, JobState
from bot.limits import LimitReached, Limits
from bot.lineage import Lineage, Origin
from bot.policy import Policy, PolicyStore
from bot.pricing import PriceBook
from bot.runcomfy import InsufficientBalance, RunComfyClient, SubmitOutcomeUnknown
from bot.service import JobRefused, JobRequest, JobService, Requester, everywhere
from bot.simulator import Fault, Simulator
from bot.simulator import JobState as SimState
from bot.store.connect import open_database
from bot.store.database import Database
from bot.store.jobs import JobStore
from bot.validation import InvalidOptions
from tests.images import image_bytes

GUILD, OTHER_GUILD = 1 << 22, 2 << 22
CHANNEL, THREAD = 77, 78
ALICE, BOB, MOD = 1001, 1002, 1003
HERE = Requester(GUILD, CHANNEL, ALICE)
START = 1_770_758_100.0  # 2026-02-10 21:15 UTC
PNG = image_bytes("png", 800, 600)
URL = "https://cdn.example/attachments/1/zebra.png"
PUBLISHED = "https://cdn.example/attachments/2/job-1-last-frame.png"
SUBMIT = "/v1/models/"


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> float:
        return self.now


class Simulated(Protocol):
    """What the ``start_simulator`` fixture gives (tests/conftest.py)."""

    sim: Simulator

    def client(self) -> RunComfyClient: ...


def image(url: str = URL, data: bytes = PNG, size: tuple[int, int] | None = (800, 600),
          content_type: str | None = "image/png") -> FetchedImage:
    """An uploaded image (an attachment with its metadata), or a downloaded one
    (``size=None``: its own bytes tell)."""
    width, height = size or (None, None)
    return FetchedImage(url=url, filename=url.rsplit("/", 1)[-1] or "image", size=len(data),
                        content_type=content_type, data=data, width=width, height=height)


class Side:
    """The entry point's side of one request, recording what the service asks of it."""

    def __init__(self, fetched: AttachmentLike | None = None) -> None:
        self.calls: list[str] = []
        self.fetched = fetched or image(url="", size=None)
        self.place_error: str | None = None
        self.fetch_error: str | None = None
        self.settle_error: str | None = None
        self.settled: Requester | None = None
        self.while_publishing: Callable[[], Awaitable[object]] | None = None

    def check_place(self) -> None:
        self.calls.append("check_place")
        if self.place_error is not None:
            raise UserError(self.place_error)

    async def fetch(self) -> AttachmentLike:
        self.calls.append("fetch")
        if self.fetch_error is not None:
            raise UserError(self.fetch_error)
        return self.fetched

    async def publish(self, fetched: AttachmentLike) -> AttachmentLike:
        self.calls.append("publish")
        if self.while_publishing is not None:
            await self.while_publishing()
        return image(url=PUBLISHED, data=await fetched.read(), size=None)

    async def withdraw(self) -> None:
        self.calls.append("withdraw")

    async def settle(self) -> Requester:
        self.calls.append("settle")
        if self.settle_error is not None:
            raise UserError(self.settle_error)
        assert self.settled is not None
        return self.settled

    def downloaded(self, url: str = URL) -> ImageInput:
        """An image known by URL, downloaded when the service asks (an embed's image)."""
        return ImageInput(PendingImage(url), fetch=self.fetch)

    def made(self) -> ImageInput:
        """An image made for the job and posted for RunComfy (Extend's last frame)."""
        return ImageInput(PendingImage(""), fetch=self.fetch, publish=self.publish,
                          withdraw=self.withdraw)

    def request(self, model: ModelSpec, options: Mapping[str, object],
                images: Mapping[str, ImageInput] | None = None,
                lineage: Lineage | None = None) -> JobRequest:
        settles = self.settled is not None or self.settle_error is not None
        return JobRequest(model=model, options=options, who=HERE, images=images or {},
                          lineage=lineage, check_place=self.check_place,
                          settle=self.settle if settles else None)


@dataclass
class Bot:
    """The domain's parts, wired as bot/discord/client.py wires them."""

    db: Database
    store: JobStore
    policies: PolicyStore
    limits: Limits
    prices: PriceBook
    runcomfy: RunComfyClient
    service: JobService
    sim: Simulator
    changes: list[Job]  # what the poller was told
    clock: Clock
    catalog: Catalog

    def model(self, command: str) -> ModelSpec:
        return self.catalog.by_command(command)

    def service_with(self, *, catalog: Catalog | None = None,
                     simulated: bool = False) -> JobService:
        return JobService(catalog or self.catalog, self.store, self.runcomfy, self.limits,
                          self.prices, self.changes.append, clock=self.clock,
                          simulated=simulated)

    async def set(self, **values: Any) -> None:
        await self.policies.update(GUILD, MOD, lambda _current: values)

    async def job_count(self) -> int:
        return int((await self.db.fetch("SELECT COUNT(*) FROM jobs"))[0][0])

    async def job(self, job_id: int) -> Job:
        found = await self.store.get(job_id)
        assert found is not None
        return found

    def posts(self) -> int:
        """How many submits RunComfy received."""
        return len(self.sim.calls_to(SUBMIT, "POST"))

    async def comet(self, service: JobService | None = None, **options: object) -> Job:
        """Kling 3.0 4K, text to video at $0.42/s: $2.10 for 5 s."""
        return await (service or self.service).request(JobRequest(
            model=self.model("kling-3-0-4k"),
            options={"prompt": "a comet", "duration": 5, **options}, who=HERE))

    async def unknown_outcome(self, service: JobService | None = None) -> JobRefused:
        """A comet whose submit RunComfy took, with an answer that cannot be read: the job
        may exist (and be charged)."""
        self.sim.inject(Fault("malformed", method="POST", path=SUBMIT))
        with pytest.raises(JobRefused) as raised:
            await self.comet(service)
        assert isinstance(raised.value.error, SubmitOutcomeUnknown)
        return raised.value


async def until(condition: Callable[[], Awaitable[bool]]) -> None:
    for _ in range(1000):
        if await condition():
            return
        await asyncio.sleep(0.005)
    raise AssertionError(f"{condition.__name__} never came true")


@pytest.fixture
async def bot(database_target: Path | str, catalog: Catalog,
              start_simulator: Callable[..., Awaitable[Simulated]]) -> AsyncIterator[Bot]:
    clock = Clock()
    running = await start_simulator(clock=clock, workers=1, run_seconds=60)
    db = await open_database(database_target, clock=clock)
    store = JobStore(db, clock)
    policies = PolicyStore(db, Policy(max_concurrent=0), clock)
    limits = Limits(db, policies, clock)
    prices = PriceBook(catalog, {})
    changes: list[Job] = []
    async with running.client() as runcomfy:
        service = JobService(catalog, store, runcomfy, limits, prices, changes.append,
                             clock=clock)
        yield Bot(db, store, policies, limits, prices, runcomfy, service, running.sim, changes,
                  clock, catalog)
    await db.close()


# Asking for a video.

async def test_a_request_is_written_down_then_submitted_once(bot: Bot) -> None:
    model = bot.model("kling-3-0")  # $0.084/s without sound
    job = await bot.service.request(JobRequest(
        model=model, who=HERE, images={"image": ImageInput(image())},
        options={"prompt": "a red kite", "duration": 5, "generate_audio": False}))
    [sent] = bot.sim.submits
    assert (job.id, job.state, job.request_id) == (1, JobState.QUEUED, sent.request_id)
    assert (job.guild_id, job.channel_id, job.user_id) == (GUILD, CHANNEL, ALICE)
    assert (job.model_id, job.command, job.prompt) == (model.id, "kling-3-0", "a red kite")
    assert job.estimated_usd == pytest.approx(0.42)
    assert (job.seconds, job.audio, job.simulated, job.submitted_at) == (5.0, False, False, START)
    assert (job.parent_id, job.origin, job.retry_of) == (None, None, None)
    assert sent.model_id == model.id
    assert sent.body == job.body
    assert job.body["start_image_url"] == URL
    assert await bot.job(1) == job
    assert bot.changes == [job]  # the poller follows it from here


async def test_bad_options_are_refused_before_anything_else(bot: Bot) -> None:
    side = Side()
    with pytest.raises(InvalidOptions) as raised:
        await bot.service.request(side.request(
            bot.model("kling-2-1"), {"prompt": "a zebra", "duration": 7},
            {"image": side.downloaded()}))
    assert str(raised.value) == ("The video was not started:\n`duration` must be one of 5 or "
                                 "10; yours is 7.")
    assert side.calls == []  # not even the entry point's own check
    assert (await bot.job_count(), bot.posts()) == (0, 0)


async def test_the_entry_points_check_needs_no_database(bot: Bot) -> None:
    """Where the video goes is checked before the guild's rules are read: with the store
    gone, the member still gets the entry point's answer, and nothing is downloaded."""
    side = Side()
    side.place_error = f"I can't post videos in <#{CHANNEL}>; ask a moderator to let me."
    await bot.db.close()
    with pytest.raises(UserError) as raised:
        await bot.service.request(side.request(
            bot.model("kling-2-1"), {"prompt": "a zebra"}, {"image": side.downloaded()}))
    assert str(raised.value) == side.place_error
    assert side.calls == ["check_place"]
    assert bot.posts() == 0


RULES: list[tuple[dict[str, Any], dict[str, object], str]] = [
    ({"blocked_users": [ALICE]}, {},
     "You are not allowed to make videos on this server."),
    ({"enabled_models": ["wan-2-2"]}, {},
     "`kling-2-1` is turned off on this server."),
    ({"prompt_blocklist": [{"pattern": "stripes"}]}, {"negative_prompt": "no Stripes"},
     "Your prompt contains “Stripes”, which is not allowed here."),
    ({"monthly_budget_usd": 10.0}, {},
     "`kling-2-1` has no known price yet, so this server's monthly video budget can't be "
     "kept; the bot's operator can set `prices.kling-2-1`."),
]


async def test_the_guilds_rules_come_before_any_download(bot: Bot) -> None:
    for settings, options, refusal in RULES:
        await bot.set(**settings)
        side = Side()
        with pytest.raises(LimitReached) as raised:
            await bot.service.request(side.request(
                bot.model("kling-2-1"), {"prompt": "a zebra", **options},
                {"image": side.downloaded()}))
        assert str(raised.value) == refusal
        assert side.calls == ["check_place"], refusal
        await bot.set(**{key: getattr(Policy(), key) for key in settings})
    assert (await bot.job_count(), bot.posts()) == (0, 0)
    side = Side(image())
    job = await bot.service.request(side.request(bot.model("kling-2-1"), {"prompt": "a zebra"},
                                                 {"image": side.downloaded()}))
    assert (job.state, side.calls) == (JobState.QUEUED, ["check_place", "fetch"])


async def test_a_fetched_image_is_checked_before_it_is_published(bot: Bot) -> None:
    model = bot.model("kling-1-6")  # more than 300 px on each side
    small = image_bytes("png", 200, 200)
    too_small = ("The video was not started:\n`image` must be more than 300 px on each side; "
                 "yours is 200x200.")
    side = Side(image(url="", data=small, size=(200, 200)))  # its size known when fetched
    with pytest.raises(InvalidOptions) as raised:
        await bot.service.request(side.request(model, {"prompt": "a zebra"},
                                               {"image": side.made()}))
    assert str(raised.value) == too_small
    assert side.calls == ["check_place", "fetch"]

    # Known only from its own bytes, read once posted: refused then, and taken back.
    side = Side(image(url="", data=small, size=None))
    with pytest.raises(InvalidOptions) as raised:
        await bot.service.request(side.request(model, {"prompt": "a zebra"},
                                               {"image": side.made()}))
    assert str(raised.value) == too_small
    assert side.calls == ["check_place", "fetch", "publish", "withdraw"]

    side = Side()
    side.fetch_error = "I could not download the image `zebra.png`."
    with pytest.raises(UserError) as refused:
        await bot.service.request(side.request(model, {"prompt": "a zebra"},
                                               {"image": side.made()}))
    assert str(refused.value) == "I could not download the image `zebra.png`."
    assert side.calls == ["check_place", "fetch"]
    assert (await bot.job_count(), bot.posts()) == (0, 0)


async def test_a_made_image_is_published_and_the_job_lives_where_settle_says(bot: Bot) -> None:
    """Extend's way: the frame is made, posted for RunComfy to fetch, and the job recorded
    where the entry point settles it (a mention's thread), from the job it extends."""
    await bot.set(allowed_channels=[CHANNEL])
    model = bot.model("kling-2-1")
    parent = await bot.service.request(JobRequest(
        model=model, options={"prompt": "a zebra"}, who=HERE,
        images={"image": ImageInput(image())}))
    side = Side()
    side.settled = Requester(GUILD, THREAD, ALICE, parent_channel_id=CHANNEL)
    job = await bot.service.request(side.request(
        model, {"prompt": "it turns its head", "duration": 10}, {"image": side.made()},
        lineage=Lineage(parent.id, Origin.EXTEND)))
    assert side.calls == ["check_place", "fetch", "publish", "settle"]
    assert (job.id, job.state, job.channel_id, job.user_id) == (2, JobState.QUEUED, THREAD,
                                                                ALICE)
    assert (job.parent_id, job.origin) == (parent.id, "extend")
    sent = bot.sim.submits[1]
    assert (sent.request_id, sent.body["image_url"], sent.body["duration"]) == (
        job.request_id, PUBLISHED, 10)
    assert bot.changes == [parent, job]


async def test_a_refusal_after_publishing_takes_the_image_back(bot: Bot) -> None:
    side = Side()
    side.settle_error = "I could not open a thread on your message."
    with pytest.raises(UserError) as raised:
        await bot.service.request(side.request(bot.model("kling-2-1"), {"prompt": "a zebra"},
                                               {"image": side.made()}))
    assert str(raised.value) == "I could not open a thread on your message."
    assert side.calls == ["check_place", "fetch", "publish", "settle", "withdraw"]
    assert (await bot.job_count(), bot.posts(), bot.changes) == (0, 0, [])


async def test_the_rules_are_checked_again_when_the_job_is_written_down(bot: Bot) -> None:
    """Another request of the member's took the last of the quota while the image was being
    posted: this one is refused, and its image taken back."""
    await bot.set(daily_quota=1)
    side = Side()
    side.while_publishing = bot.comet
    with pytest.raises(LimitReached) as raised:
        await bot.service.request(side.request(bot.model("kling-2-1"), {"prompt": "a zebra"},
                                               {"image": side.made()}))
    assert str(raised.value) == "daily quota reached: 1 of 1, resets in 2 h 45 min"
    assert side.calls == ["check_place", "fetch", "publish", "withdraw"]
    assert await bot.job_count() == 1
    assert (await bot.job(1)).command == "kling-3-0-4k"  # the other one
    assert bot.posts() == 1


async def test_runcomfy_refusing_the_job_is_said_and_nothing_is_taken_back(bot: Bot) -> None:
    await bot.set(monthly_budget_usd=10.0)
    bot.sim.inject(Fault("status", status=402, method="POST", path=SUBMIT))
    side = Side()
    with pytest.raises(JobRefused) as raised:
        await bot.service.request(side.request(
            bot.model("kling-3-0"), {"prompt": "a red kite", "duration": 5},
            {"image": side.made()}))
    assert isinstance(raised.value.error, InsufficientBalance)
    assert str(raised.value) == ("Job #1 did not start. The RunComfy account has run out of "
                                 "credits; ask the server owner to top it up.")
    job = await bot.job(1)
    assert raised.value.job == job
    assert (job.state, job.error, job.request_id) == (JobState.FAILED, str(raised.value.error),
                                                      None)
    assert side.calls == ["check_place", "fetch", "publish"]  # the job was written down
    assert bot.changes == []  # nothing to follow: the member was told
    assert [c.status for c in bot.sim.calls_to(SUBMIT, "POST")] == [402]
    assert (await bot.limits.standing(GUILD, ALICE)).spent_this_month == 0.0  # given back


# /retry: a job whose outcome is unknown, started again by a moderator.

async def test_a_submit_of_unknown_outcome_is_never_resent_and_is_retried_once(bot: Bot) -> None:
    refused = await bot.unknown_outcome()
    assert str(refused) == (
        "Job #1: RunComfy accepted the job but its answer could not be read, so the bot cannot "
        "tell whether it was started. It was not sent again, to avoid paying twice. (the "
        "answer was not JSON) A moderator can start it again with `/retry job:1`.")
    first = refused.job
    assert (first.id, first.state) == (1, JobState.OUTCOME_UNKNOWN)
    assert first.error == str(refused.error)
    assert await bot.job(1) == first
    assert bot.changes == [first]  # its card says so
    assert bot.posts() == 1  # and it was not sent again

    # The member's own rules do not hold a moderator's retry.
    await bot.set(blocked_users=[ALICE])
    results = await asyncio.gather(bot.service.retry(1, guild_id=GUILD),
                                   bot.service.retry(1, guild_id=GUILD),
                                   return_exceptions=True)  # pressed twice at once
    [again] = [r for r in results if isinstance(r, Job)]
    [twice] = [r for r in results if isinstance(r, UserError)]
    once = "Job #1 was already started again, as job #2; it is not started a third time."
    assert str(twice) == once
    assert (again.id, again.state, again.retry_of) == (2, JobState.QUEUED, 1)
    assert (again.user_id, again.channel_id, again.body) == (ALICE, CHANNEL, first.body)
    assert again.request_id == bot.sim.submits[0].request_id
    assert bot.changes == [first, again]
    with pytest.raises(UserError) as third:
        await bot.service.retry(1, guild_id=GUILD)
    assert str(third.value) == once
    with pytest.raises(UserError) as not_unknown:
        await bot.service.retry(2, guild_id=GUILD)
    assert str(not_unknown.value) == ("Only a job whose outcome is unknown can be retried; job "
                                      "#2 is queued.")
    with pytest.raises(UserError) as elsewhere:
        await bot.service.retry(1, guild_id=OTHER_GUILD)
    assert str(elsewhere.value) == "There is no job #1 in this server."
    assert bot.posts() == 2
    assert (await bot.job(1)).state is JobState.OUTCOME_UNKNOWN


async def test_a_retry_is_held_to_the_servers_budget(bot: Bot) -> None:
    await bot.set(monthly_budget_usd=3.0)
    await bot.unknown_outcome()  # it may have been charged: $2.10 counts
    with pytest.raises(LimitReached) as raised:
        await bot.service.retry(1, guild_id=GUILD)
    assert str(raised.value) == (
        "This video (about $2.10) would go over this server's monthly video budget: $2.10 of "
        "$3.00 spent; it resets on 1 March.")
    assert (await bot.job_count(), bot.posts()) == (1, 1)


async def test_a_simulated_bot_marks_its_jobs_and_never_budgets_them(bot: Bot) -> None:
    await bot.set(monthly_budget_usd=1.0)
    with pytest.raises(LimitReached) as raised:
        await bot.comet()
    assert str(raised.value) == (
        "This video (about $2.10) would go over this server's monthly video budget: $0.00 of "
        "$1.00 spent; it resets on 1 March.")
    simulated = bot.service_with(simulated=True)
    job = await bot.comet(simulated)
    assert (job.state, job.simulated) == (JobState.QUEUED, True)
    unknown = (await bot.unknown_outcome(simulated)).job
    again = await simulated.retry(unknown.id, guild_id=GUILD)
    assert (again.state, again.simulated, again.retry_of) == (JobState.QUEUED, True, unknown.id)
    assert (await bot.limits.standing(GUILD, ALICE)).spent_this_month == 0.0
    assert bot.posts() == 3


# Acting on a job: who may, and cancelling.

def nowhere(_channel_id: int) -> bool:
    return False


async def test_a_job_is_its_requesters_and_the_moderators(bot: Bot) -> None:
    job = await bot.comet()
    for user, moderator in ((ALICE, False), (BOB, True)):
        assert await bot.service.job_for(1, guild_id=GUILD, user_id=user,
                                         moderates=everywhere if moderator else nowhere,
                                         action="make it again") == job
    with pytest.raises(UserError) as raised:
        await bot.service.job_for(1, guild_id=GUILD, user_id=BOB, moderates=nowhere,
                                  action="make it again")
    assert str(raised.value) == ("Only the member who asked for job #1 or a moderator (Manage "
                                 "Messages) can make it again.")
    for guild, job_id in ((OTHER_GUILD, 1), (GUILD, 2)):
        with pytest.raises(UserError) as missing:
            await bot.service.job_for(job_id, guild_id=guild, user_id=ALICE, moderates=everywhere,
                                      action="make it again")
        assert str(missing.value) == f"There is no job #{job_id} in this server."
    assert bot.service.model_of(job) == bot.model("kling-3-0-4k")


async def test_a_moderator_is_asked_for_in_the_jobs_own_channel(bot: Bot) -> None:
    """Power in one channel is not power over another channel's job; and a job in a channel
    the member cannot see is not there for them."""
    job = await bot.comet()
    asked: list[int] = []

    def moderates_elsewhere(channel_id: int) -> bool:
        asked.append(channel_id)
        return channel_id != job.channel_id

    with pytest.raises(UserError):
        await bot.service.job_for(1, guild_id=GUILD, user_id=BOB, moderates=moderates_elsewhere,
                                  action="show it")
    assert asked == [job.channel_id]
    with pytest.raises(UserError) as hidden:
        await bot.service.job_for(1, guild_id=GUILD, user_id=ALICE, moderates=everywhere,
                                  action="show it", sees=lambda c: c != job.channel_id)
    assert str(hidden.value) == "There is no job #1 in this server."
    with pytest.raises(UserError):
        await bot.service.retry(1, guild_id=GUILD, moderates=moderates_elsewhere)


async def test_a_model_no_longer_offered_is_said(bot: Bot) -> None:
    job = await bot.comet()
    await bot.unknown_outcome()
    fewer = bot.service_with(catalog=Catalog(m for m in bot.catalog
                                             if m.command != "kling-3-0-4k"))
    with pytest.raises(UserError) as raised:
        fewer.model_of(job)
    assert str(raised.value) == "Job #1's model is no longer offered here."
    with pytest.raises(UserError) as retried:
        await fewer.retry(2, guild_id=GUILD)
    assert str(retried.value) == "Job #2's model is no longer offered here."
    assert (await bot.job_count(), bot.posts()) == (2, 2)


async def test_cancel_answers(bot: Bot) -> None:
    async def cancel(job_id: int, user: int = ALICE, *, guild: int = GUILD,
                     moderator: bool = False) -> str:
        return await bot.service.cancel(job_id, guild_id=guild, user_id=user,
                                        moderates=lambda _: moderator)

    running, queued = await bot.comet(), await bot.comet()  # one worker: the second waits
    assert await cancel(2, BOB) == ("Only the member who asked for job #2 or a moderator "
                                    "(Manage Messages) can cancel it.")
    assert await cancel(2, guild=OTHER_GUILD, moderator=True) == (
        "There is no job #2 in this server.")
    assert await cancel(3) == "There is no job #3 in this server."
    assert bot.sim.calls_to("/cancel") == []
    assert await cancel(1) == ("Job #1 is already running: it can't be stopped and will be "
                               "charged. The video will be posted when it is ready.")
    assert (await bot.job(1)).state is JobState.QUEUED  # the poller will see it run
    assert await cancel(2, BOB, moderator=True) == ("Job #2 is cancelled; nothing is charged "
                                                    "for it.")
    cancelled = await bot.job(2)
    assert (cancelled.state, cancelled.finished_at) == (JobState.CANCELLED, START)
    assert bot.changes == [running, queued, cancelled]
    assert bot.sim.submits[1].state is SimState.CANCELLED
    assert await cancel(2) == "Job #2 is already over (cancelled)."
    await bot.store.move(1, JobState.RUNNING)
    await bot.store.move(1, JobState.FETCHED)
    assert await cancel(1) == "Job #1 is finished and its video is being posted."
    assert len(bot.sim.calls_to("/cancel")) == 2


async def test_a_job_being_started_cannot_be_cancelled_yet(bot: Bot) -> None:
    bot.sim.inject(Fault("slow", delay=0.5, method="POST", path=SUBMIT))
    starting = asyncio.create_task(bot.comet())

    async def submitting() -> bool:
        job = await bot.store.get(1)
        return job is not None and job.state is JobState.SUBMITTING

    await until(submitting)
    assert await bot.service.cancel(1, guild_id=GUILD, user_id=ALICE, moderates=nowhere) == (
        "Job #1 is being started; try again in a moment.")
    assert (await starting).state is JobState.QUEUED
    assert bot.sim.calls_to("/cancel") == []


async def test_cancel_when_runcomfy_fails_or_the_job_moves_meanwhile(bot: Bot) -> None:
    await bot.comet()
    await bot.comet()  # waiting behind the first
    bot.sim.inject(Fault("status", status=503, times=3, path="/cancel$"))
    answer = await bot.service.cancel(2, guild_id=GUILD, user_id=ALICE, moderates=nowhere)
    assert answer == ("Job #2 could not be cancelled: RunComfy had a problem on its side; try "
                      "again later. (HTTP 503)")
    assert [c.status for c in bot.sim.calls_to("/cancel")] == [503, 503, 503]  # reads retry
    assert (await bot.job(2)).state is JobState.QUEUED

    bot.sim.inject(Fault("slow", delay=0.5, path="/cancel$"))
    cancelling = asyncio.create_task(
        bot.service.cancel(2, guild_id=GUILD, user_id=ALICE, moderates=nowhere))

    async def cancelled_at_runcomfy() -> bool:  # its answer is on its way, slowly
        return bot.sim.submits[1].state is SimState.CANCELLED

    await until(cancelled_at_runcomfy)
    failed = await bot.store.move(2, JobState.FAILED, error="The model failed.",
                                  finished_at=START)  # the poller, meanwhile
    assert failed is not None
    assert await cancelling == "Job #2 changed state meanwhile; see its card."
    assert (await bot.job(2)).state is JobState.FAILED
    assert [c.state for c in bot.changes] == [JobState.QUEUED, JobState.QUEUED]
