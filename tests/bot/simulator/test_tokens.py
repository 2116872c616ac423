"""Several accounts on one simulator, as on RunComfy: each token pays from its own balance and
sees only its own jobs, and every call is logged with the token it carried."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import pytest

from bot.runcomfy import AuthError, InsufficientBalance, NotFound
from bot.simulator import JobState, Simulator, SimulatorConfig
from bot.simulator.cli import config, parser
from tests.bot.simulator.test_process import simulator_process
from tests.conftest import TOKEN, RunningSimulator

Start = Callable[..., Awaitable[RunningSimulator]]
WAN = "wan-ai/wan-2-2/image-to-video"  # no published price: $0.05/s, $0.25 for 5 s
BODY = {"prompt": "a street", "img_url": "https://cdn.example/street.jpg"}
GUILD_A = "rc-guild-a-0a1b2c"
GUILD_B = "rc-guild-b-3d4e5f"


async def call(session: aiohttp.ClientSession, method: str, url: str, token: str | None,
               **kwargs: Any) -> tuple[int, dict[str, Any]]:
    headers = {} if token is None else {"Authorization": f"Bearer {token}"}
    async with session.request(method, url, headers=headers, **kwargs) as response:
        return response.status, json.loads(await response.text())


async def test_another_accounts_request_is_403_and_never_the_job(start_simulator: Start) -> None:
    running = await start_simulator(workers=1, run_seconds=60,
                                    accounts={GUILD_A: None, GUILD_B: None})
    async with aiohttp.ClientSession() as session:
        _, first = await call(session, "POST", f"{running.url}/v1/models/{WAN}", GUILD_A,
                              json=BODY)
        _, queued = await call(session, "POST", f"{running.url}/v1/models/{WAN}", GUILD_A,
                               json=BODY)
        for request_id in (first["request_id"], queued["request_id"]):
            base = f"{running.url}/v1/requests/{request_id}"
            for method, what in (("GET", "status"), ("GET", "result"), ("POST", "cancel")):
                for intruder in (GUILD_B, TOKEN):
                    status, body = await call(session, method, f"{base}/{what}", intruder)
                    assert status == 403
                    assert body == {"error_code": 403001, "error_message":
                                    "The request belongs to another account.", "detail": None}
            status, body = await call(session, "GET", f"{base}/status", GUILD_A)
            assert status == 200 and body["request_id"] == request_id
    # The intruders' cancels did nothing: the queued job is still queued.
    assert [job.state for job in running.sim.jobs_of(GUILD_A)] == [JobState.RUNNING,
                                                                   JobState.QUEUED]


async def test_the_client_sees_another_accounts_request_as_an_auth_error(
    start_simulator: Start,
) -> None:
    running = await start_simulator(run_seconds=0, accounts={GUILD_A: None})
    async with running.client(token=GUILD_A) as mine, running.client() as theirs:
        submitted = await mine.submit(WAN, BODY)
        for ask in (theirs.status, theirs.result, theirs.cancel):
            with pytest.raises(AuthError) as refused:
                await ask(submitted.request_id)
            assert (refused.value.status, refused.value.code) == (403, 403001)
        assert (await mine.result(submitted.request_id)).urls("video")


async def test_an_unknown_request_is_404_whoever_asks(start_simulator: Start) -> None:
    running = await start_simulator(run_seconds=0, accounts={GUILD_A: None})
    async with running.client(token=GUILD_A) as mine, running.client() as theirs:
        submitted = await mine.submit(WAN, BODY)
        running.sim.expire(submitted.request_id)
        for client in (mine, theirs):
            with pytest.raises(NotFound):
                await client.status(submitted.request_id)
            with pytest.raises(NotFound):
                await client.status("f" * 32)


async def test_each_account_pays_from_its_own_balance(start_simulator: Start) -> None:
    running = await start_simulator(workers=1, run_seconds=60, balance_usd=None,
                                    accounts={GUILD_A: 0.3, GUILD_B: 0.5})
    sim = running.sim
    async with running.client(token=GUILD_A) as a, running.client(token=GUILD_B) as b, \
            running.client() as default:
        await a.submit(WAN, BODY)  # $0.05 left
        with pytest.raises(InsufficientBalance) as refused:
            await a.submit(WAN, BODY)
        assert (refused.value.status, refused.value.code) == (402, 400002)
        queued = await b.submit(WAN, BODY)  # B's own credits: $0.25 left
        await b.submit(WAN, BODY)  # $0 left
        await default.submit(WAN, BODY)  # unlimited
        assert sim.balance(GUILD_A) == pytest.approx(0.05)
        assert sim.balance(GUILD_B) == pytest.approx(0.0)
        assert sim.balance(TOKEN) is None
        await b.cancel(queued.request_id)  # B's credits come back to B
    assert sim.balance(GUILD_A) == pytest.approx(0.05)
    assert sim.balance(GUILD_B) == pytest.approx(0.25)
    assert [len(sim.jobs_of(t)) for t in (GUILD_A, GUILD_B, TOKEN)] == [1, 2, 1]
    assert sim.config.accounts == {GUILD_A: pytest.approx(0.05), GUILD_B: pytest.approx(0.25)}


async def test_the_default_accounts_balance_is_still_config_balance_usd(
    start_simulator: Start,
) -> None:
    running = await start_simulator(run_seconds=0, balance_usd=0.2, accounts={GUILD_A: 5.0})
    async with running.client() as default, running.client(token=GUILD_A) as a:
        with pytest.raises(InsufficientBalance):
            await default.submit(WAN, BODY)
        running.sim.config.balance_usd = 1.0  # as tests elsewhere top it up
        await default.submit(WAN, BODY)
        running.sim.set_balance(GUILD_A, 0.1)
        with pytest.raises(InsufficientBalance):
            await a.submit(WAN, BODY)
    assert running.sim.config.balance_usd == pytest.approx(0.75)
    assert running.sim.balance(GUILD_A) == pytest.approx(0.1)


async def test_an_unknown_token_is_401(start_simulator: Start) -> None:
    running = await start_simulator(accounts={GUILD_A: None})
    async with aiohttp.ClientSession() as session:
        for token in ("rc-nobody", f"{GUILD_A}x", GUILD_A[:-1], "", None):
            status, body = await call(session, "GET", f"{running.url}/v1/models/{WAN}", token)
            assert (status, body["error_code"]) == (401, 400004)
        for token in (GUILD_A, TOKEN):
            status, _ = await call(session, "GET", f"{running.url}/v1/models/{WAN}", token)
            assert status == 200


async def test_every_call_is_logged_with_the_token_it_carried(start_simulator: Start) -> None:
    running = await start_simulator(workers=1, run_seconds=60,
                                    accounts={GUILD_A: None, GUILD_B: None})
    sim = running.sim
    async with running.client(token=GUILD_A) as a, running.client(token=GUILD_B) as b:
        await a.submit(WAN, BODY)
        mine = await a.submit(WAN, BODY)
        await a.status(mine.request_id)
        await a.result(mine.request_id)
        await a.cancel(mine.request_id)
        with pytest.raises(AuthError):
            await b.status(mine.request_id)
    async with aiohttp.ClientSession() as session:
        await call(session, "GET", f"{running.url}/v1/models/{WAN}", "rc-nobody")
        await call(session, "GET", f"{running.url}/v1/models/{WAN}", None)

    # Which key made each call to this request, and its own submit.
    assert [(c.method, c.path.rsplit("/", 1)[1], c.token)
            for c in sim.calls_to(f"/{mine.request_id}/")] == [
        ("GET", "status", GUILD_A), ("GET", "result", GUILD_A), ("POST", "cancel", GUILD_A),
        ("GET", "status", GUILD_B)]
    assert [c.token for c in sim.calls_to("/v1/models/", "POST")] == [GUILD_A, GUILD_A]
    assert [(c.path.rsplit("/", 1)[1], c.status) for c in sim.calls_by(GUILD_A)] == [
        ("image-to-video", 200), ("image-to-video", 200), ("status", 200), ("result", 200),
        ("cancel", 202)]
    assert [(c.status, c.token) for c in sim.calls_by(GUILD_B)] == [(403, GUILD_B)]
    assert [(c.status, c.token) for c in sim.calls[-2:]] == [(401, "rc-nobody"), (401, None)]
    assert sim.calls_by(TOKEN) == []


def test_the_accounts_are_checked_and_copied() -> None:
    given: dict[str, float | None] = {GUILD_A: 1.0}
    sim = Simulator(SimulatorConfig(token=TOKEN, accounts=given))
    sim.set_balance(GUILD_A, 0.5)
    assert given == {GUILD_A: 1.0}
    assert sim.tokens == [TOKEN, GUILD_A]
    with pytest.raises(KeyError):
        sim.set_balance("rc-nobody", 1.0)
    with pytest.raises(KeyError):
        sim.balance("rc-nobody")
    with pytest.raises(ValueError, match="an account's token is the default token"):
        SimulatorConfig(token=TOKEN, accounts={TOKEN: 1.0})
    with pytest.raises(ValueError, match="account 2: the balance must be 0 or more USD"):
        SimulatorConfig(accounts={GUILD_A: 0.0, GUILD_B: -1.0})
    with pytest.raises(ValueError, match="account 1: the token is empty"):
        SimulatorConfig(accounts={" ": None})


def test_account_flags() -> None:
    settings, _ = config(["--token", "ops", "--balance", "3", "--account", f"{GUILD_A}:1.5",
                          "--account", GUILD_B, "--account", "with:colon:0"])
    assert (settings.token, settings.balance_usd) == ("ops", 3.0)
    assert settings.accounts == {GUILD_A: 1.5, GUILD_B: None, "with:colon": 0.0}
    assert config([])[0].accounts == {}
    shown = " ".join(parser().format_help().split())
    assert "--account TOKEN[:USD]" in shown


@pytest.mark.parametrize(("flags", "reason"), [
    (["--account", ":3"], "the token is empty"),
    (["--account", "a:-1"], "'-1' is not an amount of USD"),
    (["--account", "a:lots"], "'lots' is not an amount of USD"),
    (["--account", "a", "--account", "a:2"], "is given twice (or is --token)"),
    (["--token", "a", "--account", "a"], "is given twice (or is --token)"),
])
def test_bad_account_flags_are_refused_with_the_reason(
    flags: list[str], reason: str, capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as stopped:
        config(flags)
    assert stopped.value.code == 2
    assert reason in capsys.readouterr().err


async def test_the_process_serves_each_account_on_its_own() -> None:
    async with simulator_process("--run-seconds", "60", "--account", f"{GUILD_A}:0.3",
                                 ) as url, aiohttp.ClientSession() as session:
        submit = f"{url}/v1/models/{WAN}"
        accepted, job = await call(session, "POST", submit, GUILD_A, json=BODY)
        refused, answer = await call(session, "POST", submit, GUILD_A, json=BODY)
        forbidden, _ = await call(session, "GET", f"{url}/v1/requests/{job['request_id']}/status",
                                  "op-token")
        unknown, _ = await call(session, "GET", f"{url}/v1/models/{WAN}", GUILD_B)
    assert (accepted, refused, answer["error_code"], forbidden, unknown) == (
        200, 402, 400002, 403, 401)
