"""The operator's view of a real ``python -m bot`` process (the Discord stand-in, the simulator):
``/healthz``, ``/readyz`` (503 naming the gateway until it is connected, and the database while
PostgreSQL is stopped), ``/metrics`` counting exactly the jobs, refusals, RunComfy calls, card
edits and Discord 429s the test caused and the leases the process holds, and JSON logs that
parse line by line, carry a job's fields and no secret."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import socket
import subprocess
import sys
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from bot.metrics import Metrics
from tests.conftest import TOKEN, RunningSimulator, require_postgres
from tests.discord_stand_in import Launcher, StandIn, bot_environment
from tests.discord_stand_in.model import InteractionHandle
from tests.images import image_bytes
from tests.postgres_server import PostgresServer, postgres_server

PNG = image_bytes("png", 640, 480)
ROOT = Path(__file__).resolve().parents[1]
DASHBOARD = ROOT / "deploy" / "grafana" / "rcvb-dashboard.json"
PATIENCE = 45.0
CARD = r"^/channels/\d+/messages/\d+$"  # PATCH: a card edit (nothing else is edited there)
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
    maps = await asyncio.to_thread(Path(f"/proc/{bot.pid}/maps").read_text)
    assert "/uvloop/loop." in maps  # the process runs on uvloop's event loop

    # The card's first edit meets a 429 (discord.py waits and sends it again), its second
    # try a 404 (the card is gone: the bot goes on); the edits after those succeed.
    stand_in.fail("PATCH", CARD, 429, retry_after=0.05)
    stand_in.fail("PATCH", CARD, 404, code=10008, message="Unknown Message")
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

    edits = stand_in.requests("PATCH", CARD)
    assert [e.status for e in edits[:2]] == [429, 404] and len(edits) > 2

    async def edits_counted() -> bool:
        if not await answered("/metrics"):
            return False
        now = samples(answers[-1][1])
        return now.get(("rcvb_card_edits_total", (("outcome", "ok"),))) == len(
            [e for e in stand_in.requests("PATCH", CARD) if e.status == 200]) \
            and now[("rcvb_leases", ())] == 0  # the job ended: its lease is let go

    await stand_in.wait_for(edits_counted, PATIENCE, what="every card edit counted, no lease")
    counted = samples(answers[-1][1])
    assert {labels: value for (name, labels), value in counted.items()
            if name == "rcvb_card_edits_total" and value} == {
        (("outcome", "ok"),): len(stand_in.requests("PATCH", CARD)) - 2,
        (("outcome", "not_found"),): 1}
    assert counted[("rcvb_discord_rate_limits_total", (("outcome", "retried"),))] == 1
    assert counted[("rcvb_discord_rate_limits_total", (("outcome", "raised"),))] == 0
    assert counted[("rcvb_discord_global_rate_limits_total", ())] == 0

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


@pytest.fixture
def own_postgres() -> Iterator[PostgresServer]:
    """A PostgreSQL server of this test's own (the session's is not to be stopped)."""
    require_postgres()
    with postgres_server() as server:
        yield server


def stop_postgres(server: PostgresServer) -> None:
    """A fast shutdown (SIGINT: sessions are cut, as when the database host goes away)."""
    assert server.process is not None
    pid = int((server.folder / "data" / "postmaster.pid").read_text().split()[0])
    os.kill(pid, signal.SIGINT)
    server.process.wait(timeout=30)


async def test_readiness_names_the_database_while_postgresql_is_stopped(
        stand_in: StandIn, launcher: Launcher, start_simulator: Start,
        own_postgres: PostgresServer) -> None:
    """On PostgreSQL, a job the process holds (a lease) and waits for: stop the server and
    ``/readyz`` says 503 naming the database; start it again and the same process is ready
    again, and goes on serving the job."""
    url = await own_postgres.create_database("ops")
    guild = stand_in.guild("Studio")
    channel, alice = stand_in.channel(guild, "videos"), stand_in.member(guild, "alice")
    runcomfy = await start_simulator(run_seconds=600, queue_seconds=0)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    bot = await launcher(stand_in, bot_environment(
        stand_in, database_url=url, runcomfy_url=runcomfy.url, runcomfy_token=TOKEN,
        jobs__poll_interval=0.3, ops__listen=f"127.0.0.1:{port}"))
    await bot.wait_ready(timeout=60)
    answers: list[Any] = []

    async def readiness(status: int, failing: list[str] | None = None) -> bool:
        answers.append(await get(base + "/readyz"))
        if answers[-1] is None or answers[-1][0] != status:
            return False
        return failing is None or all(part in json.loads(answers[-1][1])["failing"]
                                      for part in failing)

    await stand_in.wait_for(lambda: readiness(200), PATIENCE, what="/readyz 200")
    run = await stand_in.slash(alice, channel, "kling-2-1", prompt="a fox",
                               image=("fox.png", PNG))
    await stand_in.wait_for(answer_of(run), PATIENCE, what="an answer")

    async def held() -> bool:
        answers.append(await get(base + "/metrics"))
        if answers[-1] is None:
            return False
        counted = samples(answers[-1][1])
        return counted[("rcvb_leases", ())] == 1 and counted[("rcvb_waiting_jobs", ())] == 1

    await stand_in.wait_for(held, PATIENCE, what="the job's lease counted")

    await asyncio.to_thread(stop_postgres, own_postgres)
    await stand_in.wait_for(lambda: readiness(503, ["database"]), PATIENCE,
                            what="/readyz 503 naming the database")
    assert json.loads(answers[-1][1])["failing"][0] == "database"
    assert bot.running

    polls = len(runcomfy.sim.calls_to("/status", "GET"))
    await asyncio.to_thread(own_postgres.start)
    await stand_in.wait_for(lambda: readiness(200), PATIENCE, what="/readyz 200 again")
    assert json.loads(answers[-1][1]) == {"ready": True, "failing": []}
    await stand_in.wait_for(held, PATIENCE, what="the lease held again")
    await stand_in.wait_for(lambda: len(runcomfy.sim.calls_to("/status", "GET")) > polls,
                            PATIENCE, what="the job polled again")


def queries(node: object) -> list[str]:
    """Every PromQL query in a Grafana dashboard: the panels' and the variables'."""
    if isinstance(node, dict):
        found = [str(v) for k, v in node.items() if k in ("expr", "definition")]
        return found + [q for v in node.values() for q in queries(v)]
    if isinstance(node, list):
        return [q for v in node for q in queries(v)]
    return []


def test_the_dashboard_queries_exactly_the_metrics_the_bot_serves() -> None:
    """Every series the Grafana dashboard asks for is one bot/metrics.py exports (a histogram's
    ``_bucket``, ``_sum`` and ``_count``, a counter's ``_total``), and every metric is shown."""
    suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"),
                "gauge": ("",)}
    families = {family.name: family.type for family in Metrics().registry.collect()}
    served = {name + suffix for name, kind in families.items() for suffix in suffixes[kind]}
    named = set(families)
    asked = {name for query in queries(json.loads(DASHBOARD.read_text()))
             for name in re.findall(r"\brcvb_\w+", query)}
    assert asked and asked <= served, asked - served
    shown = {family for family in named
             if any(name == family or name.startswith(f"{family}_") for name in asked)}
    assert shown == named
