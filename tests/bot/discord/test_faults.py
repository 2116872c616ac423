"""Faults on both sides: RunComfy (the simulator's fault injection) and Discord (SimCord's).
The bot never crashes, the poller never stops, and every job ends somewhere sensible."""

from __future__ import annotations

from dataclasses import replace

import discord
import pytest
from simcord.backend.models.channel import Overwrite
from simcord.enums import OverwriteType

from bot.jobs import JobState
from bot.simulator import Fault
from tests.conftest import TOKEN
from tests.discord_world import World
from tests.images import image_bytes

PNG = image_bytes("png", 800, 600)


async def start(world: World, prompt: str = "a zebra") -> str | None:
    result = await world.alice.slash(world.channel, "kling-2-1", prompt=prompt,
                                     image=("z.png", PNG))
    return result.response.content if result.response else None


async def still_works(world: World) -> None:
    """After the fault, a new job goes through from start to video."""
    before = len(world.videos())
    await start(world, "after the fault")
    await world.run_until(lambda: len(world.videos()) == before + 1)


@pytest.mark.parametrize("fault", [
    Fault("status", status=503, times=4, path="/v1/requests/"),
    Fault("status", status=429, retry_after=0.01, times=4, path="/v1/requests/"),
    Fault("status", status=429, times=4, path="/v1/requests/"),  # without Retry-After
    Fault("status", status=408, times=4, path="/v1/requests/"),  # a gateway's timeout
    Fault("slow", delay=0.2, times=2, path="/v1/requests/"),
    Fault("malformed", times=3, path="/result"),
], ids=["5xx-burst", "429-retry-after", "429", "timeout-408", "slow", "malformed-json"])
async def test_runcomfy_faults_while_polling_only_delay_the_video(world: World,
                                                                  fault: Fault) -> None:
    await start(world)
    injected = world.sim.inject(replace(fault))  # a copy: each backend's run has its own
    await world.run_until(lambda: bool(world.videos()))
    assert injected.times == 0  # the fault did happen
    assert (await world.job(1)).state is JobState.DELIVERED
    await still_works(world)


async def test_an_expired_request_fails_the_job_with_the_reason(world: World) -> None:
    await start(world)
    world.sim.expire(world.sim.submits[0].request_id)
    await world.run_until(lambda: (world.card(1).embeds[0].title or "").endswith("Failed"))
    assert world.card(1).embeds[0].fields[1].value == (
        "Failed: RunComfy no longer knows this request (it expired).")
    await still_works(world)


@pytest.mark.parametrize(("fault", "answer"), [
    (Fault("status", status=502, method="POST", path="/v1/models/"),
     "Job #1 did not start. RunComfy had a problem on its side; try again later. (HTTP 502)"),
    (Fault("status", status=429, method="POST", path="/v1/models/"),
     "Job #1 did not start. RunComfy is busy right now; try again in a minute."),
])
async def test_a_refused_submit_is_explained_and_never_resent(world: World, fault: Fault,
                                                              answer: str) -> None:
    world.sim.inject(replace(fault))
    assert await start(world) == answer
    assert len(world.sim.calls_to("/v1/models/", "POST")) == 1
    assert (await world.job(1)).state is JobState.FAILED
    await still_works(world)


async def test_an_accepted_submit_whose_answer_cannot_be_read_is_outcome_unknown(
        world: World) -> None:
    """A 200 without a readable request id: the job may run and be charged, so it is not
    "nothing was charged", and it is never sent again by itself."""
    world.sim.inject(Fault("malformed", method="POST", path="/v1/models/"))
    answer = await start(world)
    assert answer == (
        "Job #1: RunComfy accepted the job but its answer could not be read, so the bot cannot "
        "tell whether it was started. It was not sent again, to avoid paying twice. (the "
        "answer was not JSON) A moderator can start it again with `/retry job:1`.")
    assert (await world.job(1)).state is JobState.OUTCOME_UNKNOWN
    assert len(world.sim.calls_to("/v1/models/", "POST")) == 1


async def test_a_submit_without_answer_is_outcome_unknown_until_a_moderator_retries(
        world: World) -> None:
    # A gateway gave up waiting for RunComfy (the client's own timeout is tested against the
    # simulator directly in tests/bot/runcomfy): the job may exist, and is never sent again.
    world.sim.inject(Fault("gateway", status=504, method="POST", path="/v1/models/"))
    answer = await start(world)
    assert answer == (
        "Job #1: RunComfy did not answer in time, so the bot cannot tell whether the job was "
        "started. It was not sent again, to avoid paying twice. (HTTP 504) A moderator can "
        "start it again with `/retry job:1`.")
    assert world.card(1).embeds[0].title == "Kling 2.1 Pro · Outcome unknown"
    assert len(world.sim.calls_to("/v1/models/", "POST")) == 1
    command = world.env.backend.find_command("retry", None)
    world.guild.set_command_permissions(int(command["id"]), {world.alice: True})  # shown to her
    refused = await world.alice.slash(world.channel, "retry", job=1)
    assert refused.response.content == "You need the Manage Server permission to do that."
    retried = await world.mod.slash(world.channel, "retry", job=1)
    assert retried.response.content == ("Job #1 was started again as job #2. If the first one "
                                        "ran after all, both are charged.")
    again = await world.mod.slash(world.channel, "retry", job=1)  # pressed twice: refused
    assert again.ephemeral
    assert again.response.content == ("Job #1 was already started again, as job #2; it is not "
                                      "started a third time.")
    await world.run_until(lambda: bool(world.videos()))
    assert (await world.job(2)).user_id == world.alice.id
    assert (await world.job(1)).state is JobState.OUTCOME_UNKNOWN
    assert len(world.sim.calls_to("/v1/models/", "POST")) == 2


def bot_overwrite(world: World, **deny: bool) -> Overwrite:
    return Overwrite(target_id=world.env.backend.bot_user.id, type=OverwriteType.MEMBER,
                     allow=0, deny=discord.Permissions(**deny).value)


async def test_a_submit_runcomfy_took_but_whose_answer_was_lost_keeps_its_reservation(
        world: World) -> None:
    """A proxy's 502 after RunComfy accepted (and charged) the job: outcome unknown, and the
    server's budget keeps the job's estimate, as a job that may have run."""
    await world.mod.slash(world.channel, "settings limits", monthly_budget_usd=10.0)
    world.sim.inject(Fault("lost", status=502, method="POST", path="/v1/models/"))
    answer = await world.alice.slash(world.channel, "kling-3-0", prompt="x",
                                     image=("z.png", PNG), duration=5, generate_audio=False)
    assert answer.response.content.startswith("Job #1: RunComfy did not answer in time")
    assert len(world.sim.submits) == 1  # RunComfy has it, and charged it
    assert (await world.job(1)).state is JobState.OUTCOME_UNKNOWN
    quota = await world.alice.slash(world.channel, "quota")
    assert quota.response.content.endswith("Server budget: $9.58 left of $10.00 this month.")


@pytest.mark.parametrize("body", ["digits", "nested", "huge"])
async def test_a_hostile_submit_answer_leaves_no_job_starting(world: World, body: str) -> None:
    world.sim.inject(Fault("hostile", body=body, method="POST", path="/v1/models/"))  # type: ignore[arg-type]
    answer = await start(world)
    assert answer is not None and answer.startswith(
        "Job #1: RunComfy accepted the job but its answer could not be read")
    assert (await world.job(1)).state is JobState.OUTCOME_UNKNOWN  # not 'submitting' for ever
    await still_works(world)


@pytest.mark.settings(jobs={"timeout_minutes": 1})
async def test_hostile_poll_answers_end_in_a_timeout(world: World) -> None:
    await start(world)
    world.sim.inject(Fault("hostile", body="nested", times=10_000, path="/v1/requests/"))
    await world.run_until(lambda: "Timed out" in (world.card(1).embeds[0].title or ""))
    assert (await world.job(1)).error == "No video after 1 minute; the bot stopped waiting."


async def test_a_long_failure_text_still_reaches_the_requester(world: World) -> None:
    await start(world)
    world.sim.inject(Fault("hostile", body="long_error", times=10_000, path="/result$"))
    await world.run_until(lambda: "Failed" in (world.card(1).embeds[0].title or ""))
    told = world.bot_messages()[-1].content
    assert told.startswith(f"<@{world.alice.id}> your video could not be made: xxxx")
    assert len(told) < 2000


async def test_lost_permission_tells_the_requester_by_dm(world: World) -> None:
    await start(world)
    world.env.backend.set_overwrite(world.channel.id, bot_overwrite(world, send_messages=True))
    await world.env.settle()
    await world.run_until(lambda: bool(world.messages(world.alice.user.dm_channel)))
    job = await world.job(1)
    assert job.state is JobState.UNDELIVERABLE
    [dm] = world.messages(world.alice.user.dm_channel)
    assert dm.content == (f"Your video (job #1) is ready, but I could not post it in "
                          f"<#{world.channel.id}>: The bot may no longer post in the channel. "
                          f"Download it here (the link expires): {job.video_url}")
    assert TOKEN not in dm.content
    posts = len(world.env.http_requests)
    await world.run_polls(3)  # no retry loop
    assert not [r for r in world.env.http_requests[posts:] if r.method == "POST"]


async def test_without_dms_the_requester_is_told_on_their_next_command(world: World) -> None:
    await start(world)
    world.env.backend.set_overwrite(world.channel.id, bot_overwrite(world, send_messages=True))
    world.env.inject_error("POST", "/users/@me/channels", status=403, code=50007,
                           message="Cannot send messages to this user", times=None)
    world.env.inject_error("POST", f"/channels/{world.alice.user.dm_channel.id}/messages",
                           status=403, code=50007, times=None)
    await world.env.settle()
    await world.run_polls(4)
    assert (await world.job(1)).state is JobState.UNDELIVERABLE
    assert world.messages(world.alice.user.dm_channel) == []
    result = await world.alice.slash(world.guild.create_text_channel("other"), "jobs")
    [notice] = result.followups
    assert notice.ephemeral
    assert notice.content.startswith("Your video (job #1) is ready, but I could not post it")
    again = await world.alice.slash(world.channel, "quota")
    assert again.followups == []  # told once


async def test_a_notice_that_could_not_be_shown_is_shown_on_the_next_command(
        world: World) -> None:
    """The link to an undeliverable video survives a failed follow-up."""
    await start(world)
    world.env.backend.set_overwrite(world.channel.id, bot_overwrite(world, send_messages=True))
    world.env.inject_error("POST", "/users/@me/channels", status=403, code=50007, times=None)
    await world.env.settle()
    await world.run_polls(4)
    assert (await world.job(1)).state is JobState.UNDELIVERABLE
    world.env.inject_error("POST", "/webhooks/*", status=500, times=1)  # the follow-up fails
    first = await world.alice.slash(world.guild.create_text_channel("other"), "quota")
    assert first.followups == []
    again = await world.alice.slash(world.guild.create_text_channel("more"), "quota")
    [notice] = again.followups
    assert notice.content.startswith("Your video (job #1) is ready, but I could not post it")


async def test_a_deleted_channel_makes_the_job_undeliverable_once(world: World) -> None:
    await start(world)
    world.env.backend.delete_channel(world.channel.id)
    await world.env.settle()
    await world.run_until(lambda: bool(world.messages(world.alice.user.dm_channel)))
    assert (await world.job(1)).state is JobState.UNDELIVERABLE
    assert (await world.job(1)).error == "The channel was deleted or hidden from the bot."


@pytest.mark.parametrize("status", [429, 500, 503])
async def test_upload_errors_are_retried_then_the_video_becomes_a_link(world: World,
                                                                       status: int) -> None:
    await start(world)  # the card is posted; the next messages are the video
    world.env.inject_error("POST", f"/channels/{world.channel.id}/messages", status=status,
                           times=3)
    await world.run_until(lambda: bool(world.videos()))
    [video] = world.videos()
    assert video.attachments == []  # three failed uploads: the link instead
    assert "download it (the link expires)" in video.content
    await still_works(world)


async def test_one_failed_upload_is_simply_retried(world: World) -> None:
    await start(world)
    world.env.inject_error("POST", f"/channels/{world.channel.id}/messages", status=500,
                           times=1)
    await world.run_until(lambda: bool(world.videos()))
    [video] = world.videos()
    assert await video.attachments[0].read() == world.sim.video
