"""The poll loop: order per channel, channels independent of each other, its economy, and the
memory it gives back."""

from __future__ import annotations

import math
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from bot.catalog import Catalog, load_catalog
from bot.jobs import JobState
from bot.memory import resident_bytes
from bot.poller import DENSE
from bot.simulator import Plan
from tests.discord_fixtures import make_bot
from tests.discord_world import World
from tests.freed import burst
from tests.images import image_bytes

PNG = image_bytes("png", 800, 600)


def videos_are(world: World, count: int) -> Callable[[], bool]:
    return lambda: len(world.videos()) == count


async def four_runs_of_30_s(world: World) -> list[int]:
    """Four 30 s jobs one after the other: RunComfy calls each cost."""
    world.sim.plan_next(*(Plan(run_seconds=30) for _ in range(4)))
    calls = []
    for index in range(4):
        await start(world, world.channel, f"shot {index}")
        await world.run_until(videos_are(world, index + 1))
        calls.append(len(world.sim.calls_to(f"/{world.sim.submits[index].request_id}/")))
    return calls


async def start(world: World, channel: object, prompt: str) -> None:
    await world.alice.slash(channel, "kling-2-1", prompt=prompt, image=("z.png", PNG))


async def test_videos_are_posted_in_the_order_they_finish(world: World) -> None:
    world.sim.plan_next(Plan(run_seconds=30), Plan(run_seconds=6))
    await start(world, world.channel, "slow")
    await start(world, world.channel, "quick")
    await world.run_until(lambda: len(world.videos()) == 2)
    assert world.replied_to(world.videos()) == [world.card(2).id, world.card(1).id]


async def test_a_failing_channel_does_not_hold_up_another(world: World) -> None:
    other = world.guild.create_text_channel("other")
    await start(world, world.channel, "stuck")
    await start(world, other, "free")
    world.env.inject_error("POST", f"/channels/{world.channel.id}/messages", status=500,
                           times=None)
    await world.run_until(lambda: len(world.videos(other)) == 1)
    assert world.videos() == []
    world.env.backend.faults.clear()
    await world.run_until(lambda: len(world.videos()) == 1)
    assert len(world.videos(other)) == 1


async def test_a_job_is_polled_from_its_kinds_learned_run_time(world: World) -> None:
    """Three 30 s runs teach the bot how long this kind of job takes: the fourth is left
    alone until near its likely finish, its card says when it will be ready, and its video
    comes no later."""
    calls = await four_runs_of_30_s(world)
    assert calls[3] < calls[0], calls
    job = await world.job(4)
    assert job.started_at is not None and job.finished_at is not None
    late = job.finished_at - (job.started_at + 30)
    assert late <= world.poll_interval * DENSE["planned"] + 0.01  # within a dense step


async def test_the_card_says_when_the_video_will_likely_be_ready(world: World) -> None:
    world.sim.plan_next(*(Plan(run_seconds=30) for _ in range(4)))
    for index in range(3):
        await start(world, world.channel, f"shot {index}")
        await world.run_until(videos_are(world, index + 1))
    await world.restart()  # what was learned is in the store
    await start(world, world.channel, "the fourth")
    await world.run_until(lambda: "Generating" in (world.card(4).embeds[0].title or ""))
    job = await world.job(4)
    assert job.started_at is not None and job.eta_at is not None
    assert abs(job.eta_at - (job.started_at + 30)) <= world.poll_interval
    fields = {f.name: f.value for f in world.card(4).embeds[0].fields}
    assert fields["ETA"] == f"ready <t:{int(job.eta_at)}:R>"
    listed = await world.alice.slash(world.channel, "jobs")
    assert f"ready <t:{int(job.eta_at)}:R>" in (listed.response.embeds[0].description or "")


@pytest.mark.settings(jobs={"poll_strategy": "fixed"})
async def test_the_fixed_strategy_polls_every_interval(world: World) -> None:
    calls = await four_runs_of_30_s(world)
    assert calls[3] >= calls[0] - 1, calls  # nothing learned changes its pace


async def test_the_video_goes_out_before_its_card_is_edited(world: World) -> None:
    """One post fewer between the result and the video (Discord rate-limits each channel)."""
    await start(world, world.channel, "a zebra")
    card = world.card(1).id
    await world.run_until(lambda: len(world.videos()) == 1)
    requests = world.env.http_requests
    [video] = [i for i, r in enumerate(requests) if r.method == "POST"
               and "your video is ready" in str(r.json)]
    edits = [(i, str(r.json)) for i, r in enumerate(requests)
             if r.method == "PATCH" and r.path.endswith(f"/messages/{card}")]
    assert [text for i, text in edits if i < video and JobState.FETCHED.label in text] == []
    assert [i for i, text in edits if "Done: posted below" in text] == [video + 1]


async def test_each_job_costs_at_most_its_time_over_the_interval_plus_two_calls(
        world: World) -> None:
    """Twelve jobs on RunComfy's two workers: each one's polls, queued and running."""
    world.sim.plan_next(*(Plan(run_seconds=6 + index) for index in range(12)))
    for index in range(12):
        await start(world, world.channel, f"job {index}")
    await world.run_until(lambda: len(world.videos()) == 12)
    for job in world.sim.submits:
        assert job.finished_at is not None
        took = job.finished_at - job.submitted_at
        calls = len(world.sim.calls_to(f"/{job.request_id}/"))
        assert calls <= math.ceil(took / world.poll_interval) + 2, (took, calls)


async def test_after_a_restart_the_pending_jobs_are_polled_over_an_interval_not_at_once(
        world: World) -> None:
    for index in range(16):
        await start(world, world.channel, f"job {index}")
    await world.bot.parts.store.release()  # as a graceful stop does: taken over at once
    await world.restart()
    before = len(world.sim.calls_to("/status"))
    await world.env.advance_time(world.poll_interval / 4)
    first_quarter = len(world.sim.calls_to("/status")) - before
    await world.env.advance_time(world.poll_interval * 3 / 4)
    assert 0 < first_quarter <= 16 / 4 + 1
    assert len(world.sim.calls_to("/status")) - before == 16


async def test_a_job_whose_model_left_the_catalog_still_gets_its_video(
        world: World, database_target: Path | str) -> None:
    """The operator removed a model's file and restarted while one of its jobs ran."""
    await start(world, world.channel, "a zebra")
    settings, kept = world.bot.settings, [m for m in load_catalog() if m.command != "kling-2-1"]
    world.make_bot = lambda: make_bot(settings, Catalog(kept), database_target)
    await world.restart()
    await world.run_until(lambda: len(world.videos()) == 1)
    assert (await world.job(1)).state is JobState.DELIVERED


async def test_a_queued_jobs_card_says_when_it_will_likely_start(world: World) -> None:
    """The queue moves one place about every 12 s: a job that moved up shows when it will
    likely start."""
    world.sim.plan_next(Plan(run_seconds=12), Plan(run_seconds=24), Plan(run_seconds=30),
                        Plan(run_seconds=30))
    for index in range(4):  # two workers: the third and fourth wait
        await start(world, world.channel, f"shot {index}")
    await world.run_until(lambda: (world.card(4).embeds[0].title or "").endswith("(#1 in line)"))
    job = await world.job(4)
    assert job.state is JobState.QUEUED and job.eta_at is not None
    fields = {f.name: f.value for f in world.card(4).embeds[0].fields}
    assert fields["ETA"] == f"starts <t:{int(job.eta_at)}:R>"
    assert 0 < job.eta_at - world.bot.clock() <= 24  # about one place's worth


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc_trim and /proc")
async def test_the_poll_loop_gives_freed_memory_back(world: World) -> None:
    kept = burst()
    before = resident_bytes()
    await world.run_polls(2)  # GIVE_BACK_SECONDS of ticks, and more
    assert before - resident_bytes() > 32 << 20
    assert len(kept) == 4096
