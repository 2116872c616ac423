"""The simulator as a test drives it, over HTTP (as its own process: test_process.py)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import aiohttp
import pytest

from bot.runcomfy import InvalidInput, Outcome, Phase, RunComfyClient
from bot.simulator import SAMPLE_VIDEO, JobState, Plan, pad_video
from tests.conftest import TOKEN, RunningSimulator

Start = Callable[..., Awaitable[RunningSimulator]]
WAN = "wan-ai/wan-2-2/image-to-video"
BODY = {"prompt": "a street", "img_url": "https://cdn.example/street.jpg"}
KLING3 = "kling/kling-3.0/standard/image-to-video"
KLING3_4K = "kling/kling-3.0/4k/text-to-video"
START = {"prompt": "a cliff", "start_image_url": "https://cdn.example/cliff.png"}


def test_the_sample_is_a_real_mp4_and_padding_keeps_it_one() -> None:
    assert SAMPLE_VIDEO[4:8] == b"ftyp"
    padded = pad_video(SAMPLE_VIDEO, 50_000)
    assert len(padded) == 50_000
    assert padded.startswith(SAMPLE_VIDEO)
    box_size = int.from_bytes(padded[len(SAMPLE_VIDEO):len(SAMPLE_VIDEO) + 4], "big")
    assert (box_size, padded[len(SAMPLE_VIDEO) + 4:len(SAMPLE_VIDEO) + 8]) == (
        50_000 - len(SAMPLE_VIDEO), b"free")


async def test_oversize_video_is_served_at_the_output_url(start_simulator: Start) -> None:
    running = await start_simulator(run_seconds=0, video_bytes=30 * 1024 * 1024)
    async with running.client() as client:
        submitted = await client.submit(WAN, BODY)
        [url] = (await client.result(submitted.request_id)).urls("video")
        async with aiohttp.ClientSession() as session, session.get(url) as response:
            assert response.headers["Content-Type"] == "video/mp4"
            assert response.content_length == 30 * 1024 * 1024


async def test_the_422_names_the_field_and_lists_every_problem(
    simulator: RunningSimulator,
) -> None:
    async with aiohttp.ClientSession() as session, session.post(
        f"{simulator.url}/v1/models/{WAN}", headers={"Authorization": f"Bearer {TOKEN}"},
        json={"prompt": "x" * 900, "img_url": "file.png", "resolution": "8K"},
    ) as response:
        assert response.status == 422
        body = await response.json()
    assert body["error_code"] == 422001
    assert body["error_message"] == "`prompt` must be at most 799 characters; yours has 900."
    assert len(body["detail"]) == 3


async def test_queue_time_then_run_time(start_simulator: Start) -> None:
    running = await start_simulator(queue_seconds=0.15, run_seconds=0.15)
    async with running.client() as client:
        submitted = await client.submit(WAN, BODY)
        seen: list[Phase] = []
        for _ in range(100):
            status = await client.status(submitted.request_id)
            if not seen or seen[-1] != status.phase:
                seen.append(status.phase)
            if status.phase is Phase.FINISHED:
                break
            await asyncio.sleep(0.02)
    assert seen == [Phase.QUEUED, Phase.RUNNING, Phase.FINISHED]


async def test_planned_outcomes_and_costs(start_simulator: Start) -> None:
    running = await start_simulator(run_seconds=0)
    running.sim.plan_next(Plan(JobState.FAILED, error="Upstream model error"))
    kling3 = "kling/kling-3.0/standard/image-to-video"
    async with running.client() as client:
        failed = await client.submit(WAN, BODY)
        audio = await client.submit(kling3, {"prompt": "a", "start_image_url": "https://x/y.png",
                                             "duration": 10, "generate_audio": True})
        results = [await client.result(s.request_id) for s in (failed, audio)]
    assert [(r.outcome, r.cost, r.error_text) for r in results] == [
        (Outcome.FAILED, None, "Upstream model error"),
        (Outcome.SUCCEEDED, pytest.approx(1.26), "no reason given"),
    ]


async def test_cancelling_gives_the_credits_back(start_simulator: Start) -> None:
    running = await start_simulator(workers=1, run_seconds=30, balance_usd=1.0)
    async with running.client() as client:
        await client.submit(WAN, BODY)  # $0.25 at the fallback price, runs
        waiting = await client.submit(WAN, BODY)
        assert running.sim.config.balance_usd == pytest.approx(0.5)
        await client.cancel(waiting.request_id)
    assert running.sim.config.balance_usd == pytest.approx(0.75)


async def test_the_video_url_needs_no_token_but_the_api_does(simulator: RunningSimulator) -> None:
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{simulator.url}/v1/models/{WAN}") as response:
            assert response.status == 401
            assert (await response.json())["error_code"] == 400004
        async with session.get(f"{simulator.url}/files/unknown.mp4") as response:
            assert response.status == 404


@pytest.mark.parametrize(("model_id", "body", "problem"), [
    # The schema's defaults come first: `duration` is 10 s on Kling 3.0, 5 s on Kling 3.0 4K,
    # and a segment that does not say lasts 5 s.
    (KLING3, {**START, "multi_prompt": [{"prompt": "a", "duration": 4},
                                        {"prompt": "b", "duration": 6}]}, None),
    (KLING3, {**START, "multi_prompt": [{"prompt": "a"}, {"prompt": "b"}]}, None),
    (KLING3, {**START, "duration": 8, "multi_prompt": [{"prompt": "a"},
                                                       {"prompt": "b", "duration": 3}]}, None),
    (KLING3, {**START, "multi_prompt": [{"prompt": "a"}]},
     "`multi_prompt` segment durations must add up to `duration` (10 s); yours add up to 5 s."),
    (KLING3, {**START, "multi_prompt": [{"prompt": "a", "duration": 2}, {"prompt": "b"}]},
     "`multi_prompt[1].duration` must be between 3 and 15; yours is 2."),
    (KLING3_4K, {"prompt": "a", "multi_prompt": [{"prompt": "a"}]}, None),
    (KLING3_4K, {"prompt": "a", "multi_prompt": [{"prompt": "a", "duration": 6}]},
     "`multi_prompt` segment durations must add up to `duration` (5 s); yours add up to 6 s."),
], ids=["kling3-total-10", "kling3-segments-5+5", "kling3-5+3", "kling3-5-of-10",
        "kling3-bad-segment", "4k-5-of-5", "4k-6-of-5"])
async def test_the_schema_defaults_apply_before_the_cross_field_rules(
    client: RunComfyClient, model_id: str, body: dict[str, object], problem: str | None,
) -> None:
    if problem is None:
        assert (await client.submit(model_id, body)).request_id
        return
    with pytest.raises(InvalidInput) as refused:
        await client.submit(model_id, body)
    assert refused.value.detail == problem


async def test_defaults_are_charged_but_the_body_is_kept_as_sent(start_simulator: Start) -> None:
    running = await start_simulator(run_seconds=0)
    body = {**START, "multi_prompt": [{"prompt": "a"}, {"prompt": "b"}]}
    async with running.client() as client:
        submitted = await client.submit(KLING3, body)
        result = await client.result(submitted.request_id)
    assert result.cost == pytest.approx(1.26)  # 10 s with audio (both defaults) at $0.126/s
    assert running.sim.submits[0].body == body
