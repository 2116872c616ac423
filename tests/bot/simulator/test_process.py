"""``python -m bot.simulator`` as an operator runs it: a process of its own on a free port,
steered by its flags (balance, failure rate, faults, image checks), called over HTTP."""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import pytest

from bot.runcomfy import Outcome, RunComfyClient
from bot.simulator.cli import parser
from tests.images import ImageHost, image_bytes

TOKEN = "op-token"
WAN = "wan-ai/wan-2-2/image-to-video"
BODY = {"prompt": "a street", "img_url": "https://cdn.example/street.jpg"}
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def command(*flags: str) -> list[str]:
    return [sys.executable, "-m", "bot.simulator", *flags]


@asynccontextmanager
async def simulator_process(*flags: str) -> AsyncIterator[str]:
    """The simulator's base URL, once it answers; the process is stopped afterwards."""
    port = free_port()
    process = subprocess.Popen(  # noqa: ASYNC220, S603 - a server we poll below
        command("--port", str(port), "--token", TOKEN, "--run-seconds", "0", *flags),
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        async with aiohttp.ClientSession() as session:
            for _ in range(150):
                try:  # a public path that no --fault of these tests matches
                    async with session.get(f"{url}/files/ready.mp4") as response:
                        assert response.status == 404
                        break
                except aiohttp.ClientConnectorError:
                    assert process.poll() is None, f"the simulator exited: {process.returncode}"
                    await asyncio.sleep(0.1)
            else:
                raise AssertionError("the simulator did not start")
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


async def call(session: aiohttp.ClientSession, method: str, url: str,
               **kwargs: Any) -> tuple[int, str, dict[str, str]]:
    async with session.request(method, url, headers=AUTH, **kwargs) as response:
        return response.status, await response.text(), dict(response.headers)


def test_help_explains_every_flag() -> None:
    shown = subprocess.run(command("--help"), capture_output=True, text=True, check=True,  # noqa: S603
                           timeout=60).stdout
    for flag in ("--balance USD", "--failure-rate SHARE", "--seed", "--fault SPEC",
                 "--fetch-images", "--alternate-vocabulary", "--run-seconds", "--token"):
        assert flag in shown
    assert "status=503,times=3,path=/status$" in " ".join(shown.split())


def test_a_bad_flag_stops_it_with_the_reason() -> None:
    done = subprocess.run(command("--fault", "status=abc"), capture_output=True,  # noqa: S603
                          text=True, timeout=60)
    assert done.returncode == 2
    assert "argument --fault: 'status=abc': status='abc': invalid literal" in done.stderr


@pytest.mark.parametrize(("flags", "reason"), [
    (["--fault", "kind=boom"], "kind must be one of status, slow, malformed"),
    (["--fault", "status=503,colour=red"], "unknown key 'colour'"),
    (["--fault", "status=200"], "must be an HTTP error status, 400 to 599"),
    (["--fault", "times=0"], "times='0': must be 1 or more"),
    (["--fault", "path=/a,b"], "'b' is not KEY=VALUE"),  # a path cannot hold a comma
    (["--fault", "path=(x"], "path='(x': missing ), unterminated subpattern"),
    (["--failure-rate", "1.5"], "'1.5' is not a share between 0 and 1"),
    (["--balance", "-3"], "'-3' is not an amount of USD"),
])
def test_bad_flags_are_refused_with_the_reason(
    flags: list[str], reason: str, capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as stopped:
        parser().parse_args(flags)
    assert stopped.value.code == 2
    assert reason in capsys.readouterr().err


async def test_it_serves_the_catalog() -> None:
    async with simulator_process() as url, aiohttp.ClientSession() as session:
        status, text, _ = await call(session, "GET", f"{url}/v1/models/{WAN}")
    info = json.loads(text)
    assert (status, info["model_id"]) == (200, WAN)
    assert set(info["input_schema"]) >= {"prompt", "img_url", "resolution", "seed"}


async def test_balance_refuses_what_it_cannot_pay_and_cancelling_refunds() -> None:
    # Wan 2.2 has no published price: the simulator charges $0.05/s, $0.25 for 5 s.
    async with simulator_process("--balance", "0.5", "--run-seconds", "60", "--workers", "1"
                                 ) as url, aiohttp.ClientSession() as session:
        submit = f"{url}/v1/models/{WAN}"
        running = await call(session, "POST", submit, json=BODY)  # $0.25 left
        queued = await call(session, "POST", submit, json=BODY)  # nothing left
        refused = await call(session, "POST", submit, json=BODY)
        request_id = json.loads(queued[1])["request_id"]
        await call(session, "POST", f"{url}/v1/requests/{request_id}/cancel")  # $0.25 back
        again = await call(session, "POST", submit, json=BODY)
    assert [running[0], queued[0], refused[0], again[0]] == [200, 200, 402, 200]
    assert json.loads(refused[1])["error_code"] == 400002


async def test_failure_rate_fails_that_share_of_jobs() -> None:
    for flags, expected in [
        (["--failure-rate", "1"], {Outcome.FAILED}),
        (["--failure-rate", "0.5", "--seed", "7"], {Outcome.FAILED, Outcome.SUCCEEDED}),
    ]:
        async with simulator_process(*flags, "--workers", "20") as url, RunComfyClient(
            TOKEN, url
        ) as client:
            submitted = [await client.submit(WAN, BODY) for _ in range(20)]
            outcomes = {(await client.result(s.request_id)).outcome for s in submitted}
        assert outcomes == expected, flags


async def test_faults_hit_the_calls_they_name_then_stop() -> None:
    async with simulator_process(
        "--fault", "status=429,retry_after=2,method=POST,path=^/v1/models/",
        "--fault", "status=503,times=2,path=/status$",
        "--fault", "kind=malformed,path=/result$",
        "--fault", "kind=slow,delay=0.5,path=/cancel$",
    ) as url, aiohttp.ClientSession() as session:
        limited = await call(session, "POST", f"{url}/v1/models/{WAN}", json=BODY)
        assert (limited[0], limited[2]["Retry-After"]) == (429, "2")
        status, text, _ = await call(session, "POST", f"{url}/v1/models/{WAN}", json=BODY)
        assert status == 200
        request = f"{url}/v1/requests/{json.loads(text)['request_id']}"
        polls = [(await call(session, "GET", f"{request}/status"))[0] for _ in range(3)]
        assert polls == [503, 503, 200]
        result = await call(session, "GET", f"{request}/result")
        assert (result[0], result[1]) == (200, '{"request_id": "')
        started = time.monotonic()
        assert (await call(session, "POST", f"{request}/cancel"))[0] == 202
        assert time.monotonic() - started >= 0.5


async def test_fetch_images_checks_each_image_as_the_bot_does(image_host: ImageHost) -> None:
    small = image_host.add("small.png", image_bytes("png", 360, 900))
    fine = image_host.add("fine.png", image_bytes("png", 361, 900))
    async with simulator_process("--fetch-images") as url, aiohttp.ClientSession() as session:
        refused = await call(session, "POST", f"{url}/v1/models/{WAN}",
                             json={"prompt": "a", "img_url": small})
        accepted = await call(session, "POST", f"{url}/v1/models/{WAN}",
                              json={"prompt": "a", "img_url": fine})
    assert refused[0] == 422
    assert "`img_url` must be more than 360 px on each side; yours is 360x900." in refused[1]
    assert accepted[0] == 200


async def test_alternate_vocabulary() -> None:
    async with simulator_process("--alternate-vocabulary") as url, RunComfyClient(
        TOKEN, url
    ) as client, aiohttp.ClientSession() as session:
        submitted = await client.submit(WAN, BODY)
        base = f"{url}/v1/requests/{submitted.request_id}"
        status = await call(session, "GET", f"{base}/status")
        result = await call(session, "GET", f"{base}/result")
        assert (await client.result(submitted.request_id)).outcome is Outcome.SUCCEEDED
    assert '"status": "succeeded"' in status[1]
    assert '"status": "completed"' in result[1]
