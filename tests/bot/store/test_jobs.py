"""What the job store remembers for the poller: how long each model's last jobs ran, what a
change writes, a card's first sending, and the open jobs as the poller follows them."""

from __future__ import annotations

from pathlib import Path

from bot.jobs import JobState, OpenJob, RunKind
from bot.store.connect import open_database
from bot.store.jobs import JobStore, NewJob


class Clock:
    def __init__(self) -> None:
        self.now = 1_767_225_600.0

    def __call__(self) -> float:
        return self.now


async def finish(store: JobStore, clock: Clock, model_id: str, seconds: float,
                 end: JobState = JobState.DELIVERED) -> None:
    job = await store.add(NewJob(guild_id=1, channel_id=2, user_id=3, model_id=model_id,
                                 command="wan-2-2", prompt="", body={}, estimated_usd=None))
    await store.move(job.id, JobState.SUBMITTING)
    await store.move(job.id, JobState.QUEUED, request_id=f"r{job.id}")
    await store.move(job.id, JobState.RUNNING, started_at=clock.now)
    clock.now += seconds
    if end is JobState.DELIVERED:
        await store.move(job.id, JobState.FETCHED, finished_at=clock.now)
        await store.move(job.id, JobState.DELIVERING)
        await store.move(job.id, JobState.DELIVERED)
    else:
        await store.move(job.id, end, finished_at=clock.now)


async def test_the_last_runs_of_each_kind_oldest_first(database_target: Path | str) -> None:
    db = await open_database(database_target)
    clock = Clock()
    store = JobStore(db, clock=clock)
    await finish(store, clock, "a", 99)  # before the window
    since = clock.now
    for seconds in range(1, 26):
        await finish(store, clock, "a", seconds)
    await finish(store, clock, "a", 0.5, end=JobState.FAILED)  # failed: not a run to learn
    await finish(store, clock, "b", 40)
    await finish(store, clock, "b", 50)
    runs = await store.recent_runs(since, per_kind=20)
    assert [(kind.model_id, took) for kind, took in runs] == [
        *(("a", float(s)) for s in range(6, 26)), ("b", 40.0), ("b", 50.0)]
    await db.close()


async def test_each_database_tags_its_message_nonces_for_good(
        database_target: Path | str, tmp_path: Path) -> None:
    """The tag in every card's and video's nonce: kept across restarts, another database's
    differs (so its job #1 can never be mistaken for this one's)."""
    db = await open_database(database_target)
    tag = await JobStore(db).nonce_tag()
    assert len(tag) == 6 and int(tag, 16) >= 0
    assert await JobStore(db).nonce_tag() == tag
    await db.close()
    db = await open_database(database_target)
    assert await JobStore(db).nonce_tag() == tag
    await db.close()
    other = await open_database(tmp_path / "another.sqlite3")
    assert await JobStore(other).nonce_tag() != tag
    await other.close()


async def test_a_change_writes_what_it_names_and_nothing_else(
        database_target: Path | str) -> None:
    """Every move and note is one statement: fields it does not name are kept, one named
    with ``None`` is cleared, and it happens only from the states it allows (none: never)."""
    db = await open_database(database_target)
    clock = Clock()
    store = JobStore(db, clock=clock)
    job = await store.add(NewJob(guild_id=1, channel_id=2, user_id=3, model_id="a",
                                 command="wan-2-2", prompt="a lake", body={}, estimated_usd=0.5))
    await store.move(job.id, JobState.SUBMITTING)
    queued = await store.move(job.id, JobState.QUEUED, request_id="r1", submitted_at=clock.now)
    assert queued is not None and queued.request_id == "r1" and queued.prompt == "a lake"
    clock.now += 5
    noted = await store.note(job.id, only_in={JobState.QUEUED}, queue_position=4, eta_at=9.0)
    assert noted is not None and (noted.queue_position, noted.eta_at) == (4, 9.0)
    assert noted.request_id == "r1" and noted.updated_at == clock.now
    assert await store.move(job.id, JobState.FETCHED, only_from={JobState.RUNNING}) is None
    assert await store.move(job.id, JobState.ACCEPTED) is None  # no state moves to it
    assert await store.move(job.id, JobState.FAILED, only_from=set()) is None
    running = await store.move(job.id, JobState.RUNNING, queue_position=None, started_at=7.0)
    assert running is not None and running.queue_position is None
    assert (running.eta_at, running.submitted_at, running.started_at) == (9.0, 1_767_225_600.0,
                                                                          7.0)
    assert await store.note(job.id, only_in={JobState.QUEUED}, queue_position=1) is None
    carded = await store.note(job.id, card_message_id=1 << 40)  # in any state
    assert carded is not None and carded.card_message_id == 1 << 40
    assert carded.state is JobState.RUNNING
    assert (await store.note(job.id, only_in=set(), eta_at=8.0) or job).eta_at == 8.0  # any
    await db.close()


async def test_a_cards_first_sending_is_marked_once_and_only_for_a_submitted_job(
        database_target: Path | str) -> None:
    """The mark is the read of the job that gets its first card: it is made once, never for
    a job not yet sent to RunComfy, nor for one whose card was posted."""
    db = await open_database(database_target)
    clock = Clock()
    store = JobStore(db, clock=clock)
    job = await store.add(NewJob(guild_id=1, channel_id=2, user_id=3, model_id="a",
                                 command="wan-2-2", prompt="a lake", body={}, estimated_usd=0.5))
    assert await store.mark_card_sending(job.id) is None  # accepted
    await store.move(job.id, JobState.SUBMITTING)
    assert await store.mark_card_sending(job.id) is None
    await store.move(job.id, JobState.QUEUED, request_id="r1", queue_position=3)
    clock.now += 2
    marked = await store.mark_card_sending(job.id)
    assert marked is not None and marked.card_sending_at == clock.now == marked.updated_at
    assert (marked.state, marked.queue_position, marked.prompt) == (JobState.QUEUED, 3, "a lake")
    clock.now += 2
    assert await store.mark_card_sending(job.id) is None  # marked before: it may be posted
    assert (await store.get(job.id) or job).card_sending_at == clock.now - 2
    other = await store.add(NewJob(guild_id=1, channel_id=2, user_id=3, model_id="a",
                                   command="wan-2-2", prompt="", body={}, estimated_usd=None))
    await store.move(other.id, JobState.FAILED, error="refused")
    await store.note(other.id, card_message_id=1 << 40)
    assert await store.mark_card_sending(other.id) is None  # its card is posted
    assert await store.mark_card_sending(other.id + 1) is None  # no such job
    await db.close()


async def test_the_poller_follows_each_open_job_as_it_is_stored(
        database_target: Path | str) -> None:
    """``claim`` gives this process's open jobs with what polling needs of them, as read from
    the whole rows (``claim_open``)."""
    db = await open_database(database_target)
    clock = Clock()
    store = JobStore(db, clock=clock)
    for index, seconds in enumerate((5.0, None)):
        job = await store.add(NewJob(
            guild_id=1 << 22, channel_id=2, user_id=3, model_id="kling/v2", command="kling",
            prompt="p", body={"prompt": "p"}, estimated_usd=None, seconds=seconds,
            resolution="1080p", runcomfy_key="sealed" if index else None))
        await store.move(job.id, JobState.SUBMITTING)
        await store.move(job.id, JobState.QUEUED, request_id=f"r{index}",
                         submitted_at=clock.now)
    await store.note(job.id, queue_position=2, eta_at=clock.now + 30)
    followed, taken = await store.claim()
    assert followed == [OpenJob.of(job) for job in await store.claim_open()]
    assert [(j.state, j.request_id, j.queue_position, j.kind.seconds) for j in followed] == [
        (JobState.QUEUED, "r0", None, 5.0), (JobState.QUEUED, "r1", 2, None)]
    whole = await store.get(followed[0].id)
    assert whole is not None and followed[0].kind is RunKind.of(whole)  # one object a kind
    assert taken == set()  # its own from the start
    await db.close()
