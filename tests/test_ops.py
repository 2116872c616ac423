"""The operator's view of a real ``python -m bot`` process (the Discord stand-in, the simulator):
``/healthz``, ``/readyz`` (503 naming the gateway until it is connected), ``/metrics`` counting
exactly the jobs, refusals and RunComfy calls the test caused, and JSON logs that parse line by
line, carry a job's fields and no secret."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import TOKEN, RunningSimulator
from tests.discord_stand_in import Launcher, StandIn, bot_environment
from tests.discord_stand_in.model import InteractionHandle
from tests.images import image_bytes

PNG = image_bytes("png", 640, 480)
PATIENCE = 45.0
Start = Callable[..., Awaitable[RunningSimulator]]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def get(url: str) -> tuple[int, str] | None:
    try:
        async with aiohttp.ClientSession() as session, session.get(url) as response:
            return response.status, await response.text()
    except aiohttp.ClientError:
        return None


def answer_of(run: InteractionHandle) -> Callable[[], bool]:
    return lambda: run.content is not None


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


async def test_health_readiness_metrics_and_json_logs(
        stand_in: StandIn, launcher: Launcher, start_simulator: Start, tmp_path: Path) -> None:
    guild = stand_in.guild("Studio")
    channel, alice = stand_in.channel(guild, "videos"), stand_in.member(guild, "alice")
    runcomfy = await start_simulator(run_seconds=0.2)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    gateway = stand_in.hold("GET", r"^/gateway/bot$", after=False)
    bot = await launcher(stand_in, bot_environment(
        stand_in, database=tmp_path / "bot.sqlite3", runcomfy_url=runcomfy.url,
        runcomfy_token=TOKEN, jobs__poll_interval=0.3, jobs__card_edit_interval=0,
        limits__daily_quota=1, ops__listen=f"127.0.0.1:{port}", bot__log_format="json"))
    answers: list[Any] = []

    async def answered(path: str) -> bool:
        answers.append(await get(base + path))
        return answers[-1] is not None

    await stand_in.wait_for(lambda: answered("/healthz"), PATIENCE, what="/healthz")
    assert answers[-1][0] == 200
    await stand_in.wait_for(lambda: answered("/readyz"), PATIENCE, what="/readyz")
    status, body = answers[-1]
    assert status == 503 and json.loads(body)["failing"][0] == "gateway"
    gateway.release()
    await bot.wait_ready(timeout=60)
    async def ready() -> bool:
        return await answered("/readyz") and answers[-1][0] == 200

    await stand_in.wait_for(ready, PATIENCE, what="/readyz 200")
    assert json.loads(answers[-1][1]) == {"ready": True, "failing": []}

    for prompt in ("a fox", "a second fox"):  # the second: over the daily quota of 1
        run = await stand_in.slash(alice, channel, "kling-2-1", prompt=prompt,
                                   image=("fox.png", PNG))
        await stand_in.wait_for(answer_of(run), PATIENCE, what="an answer")
    await stand_in.wait_for(lambda: any("your video is ready" in m.content
                                        for m in stand_in.bot_messages(channel)), PATIENCE,
                            what="the video")
    async def delivered_counted() -> bool:
        return await answered("/metrics") and 'state="delivered"' in answers[-1][1]

    await stand_in.wait_for(delivered_counted, PATIENCE, what="the delivered job counted")
    counted = samples(answers[-1][1])
    model = (("model", "kling-2-1"),)
    assert counted[("rcvb_jobs_total", (*model, ("state", "delivered")))] == 1
    assert counted[("rcvb_admissions_refused_total", (("reason", "daily_quota"),))] == 1
    submits = len(runcomfy.sim.calls_to("/v1/models/", "POST"))
    assert submits == 1
    assert counted[("rcvb_runcomfy_calls_total",
                    (("endpoint", "submit"), ("outcome", "ok")))] == submits
    assert counted[("rcvb_shards", ())] == 1

    lines = bot.output(1).strip().splitlines()
    logged = [json.loads(line) for line in lines if line.startswith("{")]
    assert logged and len(logged) == len([line for line in lines if line.strip()])
    moves = [entry for entry in logged if entry.get("job_id") == 1]
    assert moves and all(entry["model"] == "kling-2-1" and entry["guild_id"] == guild.id
                         for entry in moves)
    assert any(entry.get("request_id") for entry in moves)
    assert TOKEN not in bot.output(1)


async def test_the_health_command_asks_the_running_process(
        stand_in: StandIn, launcher: Launcher, start_simulator: Start, tmp_path: Path) -> None:
    """``python -m bot health`` (the Docker image's health check): 0 when ``/readyz`` says
    ready, 1 with one line naming what is not (or that nothing answers)."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("BOT_")}
    env["BOT_OPS__LISTEN"] = f"127.0.0.1:{port}"
    health = [sys.executable, "-m", "bot", "health"]
    down = await asyncio.to_thread(subprocess.run, health, capture_output=True, text=True,
                                   env=env, cwd=tmp_path, timeout=60, check=False)
    assert down.returncode == 1
    assert down.stdout.startswith(f"not ready: nothing answers at http://127.0.0.1:{port}")
    runcomfy = await start_simulator(run_seconds=0.2)
    bot = await launcher(stand_in, bot_environment(
        stand_in, database=tmp_path / "bot.sqlite3", runcomfy_url=runcomfy.url,
        runcomfy_token=TOKEN, jobs__poll_interval=0.3, ops__listen=f"127.0.0.1:{port}"))
    await bot.wait_ready(timeout=60)

    async def healthy() -> bool:
        done = await asyncio.to_thread(subprocess.run, health, capture_output=True, text=True,
                                       env=env, cwd=tmp_path, timeout=60, check=False)
        return done.returncode == 0 and done.stdout == "ready\n"

    await stand_in.wait_for(healthy, PATIENCE, what="healthy")
