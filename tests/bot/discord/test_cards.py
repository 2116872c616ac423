"""Status cards: edited on state changes only, at most once per interval."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest

from tests.clocks import ManualClock
from tests.conftest import RunningSimulator
from tests.discord_world import World
from tests.images import image_bytes

PNG = image_bytes("png", 800, 600)


@pytest.fixture
async def runcomfy(start_simulator: Callable[..., Awaitable[RunningSimulator]],
                   sim_clock: ManualClock) -> RunningSimulator:
    """One job runs at a time, so the ones behind it move up the queue."""
    return await start_simulator(clock=sim_clock, run_seconds=3, workers=1)


def card_edits(world: World, card_id: int) -> int:
    return sum(1 for r in world.env.http_requests
               if r.method == "PATCH" and r.path.endswith(f"/messages/{card_id}"))


@pytest.mark.settings(jobs={"card_edit_interval": 10})  # and a poll every 3 s
async def test_card_edits_are_throttled_to_state_changes(world: World) -> None:
    for index in range(6):
        await world.alice.slash(world.channel, "kling-2-1", prompt=f"job {index}",
                                image=("z.png", PNG))
    last = world.card(6).id
    await world.run_polls(6)  # 18 s: its position changes at every poll
    assert card_edits(world, last) <= 2
    await world.run_until(lambda: len(world.videos()) == 6)
    edits_after_done = card_edits(world, last)
    await world.run_polls(3)
    assert card_edits(world, last) == edits_after_done  # nothing changes, nothing is edited


async def test_the_card_shows_requester_state_time_and_cost(world: World) -> None:
    await world.alice.slash(world.channel, "kling-3-0", prompt="a cliff", duration=5,
                            generate_audio=False, image=("z.png", PNG))
    queued = world.card(1).embeds[0]
    assert [(f.name, f.value) for f in queued.fields] == [
        ("Requested by", f"<@{world.alice.id}>"), ("State", "Queued"),
        ("Started", f"<t:{int((await world.job(1)).submitted_at or 0)}:R>"),
        ("Cost", "about $0.42")]
    await world.run_until(lambda: bool(world.videos()))
    done = world.card(1).embeds[0]
    assert done.title == "Kling 3.0 Standard · Done"
    assert [(f.name, f.value) for f in done.fields] == [
        ("Requested by", f"<@{world.alice.id}>"), ("State", "Done: posted below"),
        ("Time", "2 s"), ("Cost", "$0.42")]
    assert done.footer.text == "Job #1"


@pytest.mark.settings(jobs={"card_edit_interval": 60})
async def test_a_waiting_jobs_card_is_neither_edited_nor_read_again_within_the_interval(
        world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    """Within ``card_edit_interval`` of its last edit, what the polls learn of a waiting job
    (its place in line, its start) waits for a later poll: the channel's worker does not even
    read the job for it. Its end is shown at once."""
    for index in range(3):
        await world.alice.slash(world.channel, "kling-2-1", prompt=f"job {index}",
                                image=("z.png", PNG))
    last = world.card(3)
    assert last.embeds[0].title == "Kling 2.1 Pro · Queued"
    store = world.bot.parts.store
    reads: list[int] = []
    read = store.get

    async def counted(job_id: int) -> object:
        reads.append(job_id)
        return await read(job_id)

    with monkeypatch.context() as patch:
        patch.setattr(store, "get", counted)
        await world.run_polls(1)  # 3 s: the first is done, the second runs, the last is next
    waited = list(reads)
    assert (await world.job(3)).queue_position == 0
    assert world.card(3).embeds[0].title == "Kling 2.1 Pro · Queued"
    assert card_edits(world, last.id) == 0
    assert waited == [1]  # the finished job's, read afresh to post its video
    await world.run_until(lambda: len(world.videos()) == 3)
    assert world.card(3).embeds[0].title == "Kling 2.1 Pro · Done"
