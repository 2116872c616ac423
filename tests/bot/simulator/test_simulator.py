"""The simulator as an operator or a test drives it: over HTTP, and as its own process."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Awaitable, Callable

import aiohttp
import pytest

from bot.runcomfy import Outcome, Phase
from bot.simulator import SAMPLE_VIDEO, JobState, Plan, pad_video
from tests.conftest import TOKEN, RunningSimulator

Start = Callable[..., Awaitable[RunningSimulator]]
WAN = "wan-ai/wan-2-2/image-to-video"
BODY = {"prompt": "a street", "img_url": "https://cdn.example/street.jpg"}


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


async def test_it_runs_as_its_own_process(closed_port: int) -> None:
    process = subprocess.Popen(  # noqa: ASYNC220, S603 - a server we poll below
        [sys.executable, "-m", "bot.simulator", "--port", str(closed_port), "--token", "op"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        async with aiohttp.ClientSession() as session:
            for _ in range(100):
                try:
                    async with session.get(f"http://127.0.0.1:{closed_port}/v1/models/{WAN}",
                                           headers={"Authorization": "Bearer op"}) as response:
                        info = await response.json()
                        break
                except aiohttp.ClientConnectorError:
                    await asyncio.sleep(0.1)
            else:
                raise AssertionError("the simulator did not start")
        assert info["model_id"] == WAN
        assert set(info["input_schema"]) >= {"prompt", "img_url", "resolution", "seed"}
    finally:
        process.terminate()
        process.wait(timeout=10)
