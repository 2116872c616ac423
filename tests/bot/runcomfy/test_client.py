"""The RunComfy client against the simulator over real HTTP on 127.0.0.1."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

import aiohttp
import pytest

from bot.catalog import Catalog
from bot.runcomfy import (
    AuthError,
    InsufficientBalance,
    InvalidInput,
    NetworkError,
    NotFound,
    Outcome,
    Phase,
    RateLimited,
    RetryPolicy,
    RunComfyClient,
    RunComfyError,
    ServerError,
    SubmitOutcomeUnknown,
    Timeouts,
)
from bot.simulator import SAMPLE_VIDEO, Fault, JobState, Plan
from tests.conftest import TOKEN, RunningSimulator

Start = Callable[..., Awaitable[RunningSimulator]]
KLING = "kling/kling-2-1/pro/image-to-video"
BODY = {"prompt": "a zebra", "image_url": "https://cdn.example/zebra.png", "duration": 5}


async def wait_for(client: RunComfyClient, request_id: str, phase: Phase) -> None:
    for _ in range(200):
        if (await client.status(request_id)).phase is phase:
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"{request_id} never reached {phase}")


def retry_sleeps(caplog: pytest.LogCaptureFixture) -> list[float]:
    """The waits the client announced before each retry."""
    return [float(r.args[2]) for r in caplog.records  # type: ignore[index, arg-type]
            if r.getMessage().startswith("RunComfy call failed")]


async def test_a_job_from_submit_to_video(simulator: RunningSimulator,
                                          client: RunComfyClient) -> None:
    submitted = await client.submit(KLING, BODY)
    assert submitted.status_url == f"{simulator.url}/v1/requests/{submitted.request_id}/status"
    await wait_for(client, submitted.request_id, Phase.FINISHED)
    result = await client.result(submitted.request_id)
    assert result.outcome is Outcome.SUCCEEDED
    assert result.cost == pytest.approx(0.25)  # no catalog price: the simulator's $0.05/s x 5
    [url] = result.urls("video")
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        assert await response.read() == SAMPLE_VIDEO
    assert simulator.sim.calls_to("/result")[0].path.endswith("/result")


async def test_queue_positions_then_running(start_simulator: Start) -> None:
    running = await start_simulator(workers=1, run_seconds=30)
    async with running.client() as client:
        first, second, third = [await client.submit(KLING, BODY) for _ in range(3)]
        states = [await client.status(s.request_id) for s in (first, second, third)]
    assert [(s.status, s.phase, s.queue_position) for s in states] == [
        ("in_progress", Phase.RUNNING, None),
        ("in_queue", Phase.QUEUED, 0),
        ("in_queue", Phase.QUEUED, 1),
    ]


async def test_a_failed_job_shows_completed_then_the_reason(simulator: RunningSimulator,
                                                            client: RunComfyClient) -> None:
    simulator.sim.plan_next(Plan(JobState.FAILED, error="NSFW content detected"))
    submitted = await client.submit(KLING, BODY)
    await wait_for(client, submitted.request_id, Phase.FINISHED)
    assert (await client.status(submitted.request_id)).status == "completed"
    result = await client.result(submitted.request_id)
    assert (result.outcome, result.error_text, result.urls("video")) == (
        Outcome.FAILED, "NSFW content detected", [])


async def test_the_other_vocabulary_means_the_same(start_simulator: Start) -> None:
    running = await start_simulator(run_seconds=0.05, alternate_vocabulary=True, workers=1)
    running.sim.plan_next(Plan(), Plan(JobState.FAILED), Plan(run_seconds=30), Plan())
    async with running.client() as client:
        ok, failed, _blocker, cancelled = [await client.submit(KLING, BODY) for _ in range(4)]
        await client.cancel(cancelled.request_id)
        await wait_for(client, failed.request_id, Phase.FINISHED)
        words = [(await client.status(r.request_id)).status for r in (ok, failed, cancelled)]
        outcomes = [(await client.result(r.request_id)) for r in (ok, failed, cancelled)]
    assert words == ["succeeded", "failed", "canceled"]
    assert [r.status for r in outcomes] == ["completed", "failed", "canceled"]
    assert [r.outcome for r in outcomes] == [Outcome.SUCCEEDED, Outcome.FAILED,
                                             Outcome.CANCELLED]


async def test_cancel_queued_and_running(start_simulator: Start) -> None:
    running = await start_simulator(workers=1, run_seconds=30)
    async with running.client() as client:
        busy = await client.submit(KLING, BODY)
        waiting = await client.submit(KLING, BODY)
        refused = await client.cancel(busy.request_id)
        done = await client.cancel(waiting.request_id)
        result = await client.result(waiting.request_id)
    assert (refused.outcome, refused.cancelled) == ("not_cancellable", False)
    assert (done.outcome, done.cancelled) == ("cancelled", True)
    assert result.outcome is Outcome.CANCELLED


async def test_model_info_gives_the_price(simulator: RunningSimulator,
                                          client: RunComfyClient) -> None:
    info = await client.model_info("kling/kling-3.0/standard/image-to-video")
    assert (info.base_price_usd, info.price_unit) == (0.084, "second")


@pytest.mark.parametrize(
    ("fault", "error", "message"),
    [
        (Fault("status", status=401), AuthError, "refused the bot's API token"),
        (Fault("status", status=402), InsufficientBalance, "run out of credits"),
        (Fault("status", status=404), NotFound, "no longer knows this request"),
        (Fault("status", status=429, times=9), RateLimited, "busy right now"),
        (Fault("status", status=503, times=9), ServerError, "problem on its side"),
        (Fault("malformed", times=9), ServerError, "the answer was not JSON"),
    ],
)
async def test_errors_map_to_the_family(
    simulator: RunningSimulator, client: RunComfyClient, fault: Fault,
    error: type[RunComfyError], message: str,
) -> None:
    simulator.sim.inject(fault)
    with pytest.raises(error, match=message):
        await client.status("any")


async def test_wrong_token_is_an_auth_error(simulator: RunningSimulator) -> None:
    async with simulator.client(token="wrong") as client:
        with pytest.raises(AuthError):
            await client.submit(KLING, BODY)


async def test_invalid_input_carries_the_servers_message(simulator: RunningSimulator,
                                                         client: RunComfyClient) -> None:
    with pytest.raises(InvalidInput) as raised:
        await client.submit(KLING, {**BODY, "duration": 7})
    assert str(raised.value) == ("RunComfy rejected the inputs: "
                                 "`duration` must be one of 5 or 10; yours is 7.")
    assert raised.value.status == 422
    with pytest.raises(InvalidInput, match="Unknown model id 'nope/x'"):
        await client.submit("nope/x", BODY)


async def test_no_balance_from_the_account(start_simulator: Start) -> None:
    running = await start_simulator(balance_usd=0.1)
    async with running.client() as client:
        with pytest.raises(InsufficientBalance) as raised:
            await client.submit(KLING, BODY)
    assert raised.value.code == 400002


async def test_an_expired_request_is_not_found(simulator: RunningSimulator,
                                               client: RunComfyClient) -> None:
    submitted = await client.submit(KLING, BODY)
    simulator.sim.expire(submitted.request_id)
    with pytest.raises(NotFound) as raised:
        await client.result(submitted.request_id)
    assert raised.value.code == 404001


async def test_an_error_code_in_a_200_answer_is_an_error(start_simulator: Start) -> None:
    running = await start_simulator()
    running.sim.inject(Fault("status", status=200))
    async with running.client() as client:
        with pytest.raises(InvalidInput, match="Injected fault"):
            await client.status("x")


async def test_no_server_is_a_network_error(closed_port: int) -> None:
    async with RunComfyClient(TOKEN, f"http://127.0.0.1:{closed_port}",
                              retry=RetryPolicy(attempts=2, base_delay=0.01)) as client:
        with pytest.raises(NetworkError, match="could not reach RunComfy"):
            await client.status("x")
        with pytest.raises(NetworkError):
            await client.submit(KLING, BODY)  # never connected, so certainly not started


async def test_reads_retry_through_a_burst_of_5xx(simulator: RunningSimulator,
                                                  client: RunComfyClient) -> None:
    submitted = await client.submit(KLING, BODY)
    simulator.sim.inject(Fault("status", status=502, times=2, path="/status"))
    status = await client.status(submitted.request_id)
    assert status.request_id == submitted.request_id
    assert [c.status for c in simulator.sim.calls_to("/status")] == [502, 502, 200]


@pytest.mark.parametrize("path", ["/result", "/cancel"])
async def test_result_and_cancel_retry_too(simulator: RunningSimulator, client: RunComfyClient,
                                           path: str) -> None:
    submitted = await client.submit(KLING, BODY)
    simulator.sim.inject(Fault("status", status=500, times=1, path=path))
    call = client.result if path == "/result" else client.cancel
    await call(submitted.request_id)
    assert [c.status for c in simulator.sim.calls_to(path)] == [500, 202 if path == "/cancel"
                                                                else 200]


async def test_retry_after_is_honoured(simulator: RunningSimulator, client: RunComfyClient,
                                       caplog: pytest.LogCaptureFixture) -> None:
    simulator.sim.inject(Fault("status", status=429, retry_after=0.04, times=2))
    caplog.set_level(logging.INFO, "bot.runcomfy")
    with pytest.raises(NotFound):
        await client.status("unknown")
    waits = [r.getMessage() for r in caplog.records if "retry" in r.getMessage()]
    assert waits == ["RunComfy call failed (RateLimited); retry 1 in 0.0s",
                     "RunComfy call failed (RateLimited); retry 2 in 0.0s"]
    assert retry_sleeps(caplog) == [0.04, 0.04]


async def test_backoff_is_capped_and_gives_up(start_simulator: Start,
                                              caplog: pytest.LogCaptureFixture) -> None:
    running = await start_simulator()
    running.sim.inject(Fault("status", status=500, times=10))
    caplog.set_level(logging.INFO, "bot.runcomfy")
    policy = RetryPolicy(attempts=4, base_delay=0.01, max_delay=0.03)
    async with running.client(retry=policy) as client:
        with pytest.raises(ServerError):
            await client.status("x")
    sleeps = retry_sleeps(caplog)
    assert len(sleeps) == 3
    assert all(0 <= s <= 0.03 for s in sleeps)
    assert len(running.sim.calls) == 4


async def test_a_submit_is_never_retried(simulator: RunningSimulator,
                                         client: RunComfyClient) -> None:
    simulator.sim.inject(Fault("status", status=503, method="POST", path="/v1/models/"))
    with pytest.raises(ServerError):
        await client.submit(KLING, BODY)
    simulator.sim.inject(Fault("status", status=429, retry_after=0, method="POST",
                               path="/v1/models/"))
    with pytest.raises(RateLimited):
        await client.submit(KLING, BODY)
    assert len(simulator.sim.calls_to("/v1/models/", "POST")) == 2


async def test_a_timed_out_submit_is_outcome_unknown(start_simulator: Start) -> None:
    running = await start_simulator()
    running.sim.inject(Fault("slow", delay=0.5, method="POST", path="/v1/models/"))
    async with running.client(timeouts=Timeouts(submit=0.1, read=2)) as client:
        with pytest.raises(SubmitOutcomeUnknown, match="was not sent again"):
            await client.submit(KLING, BODY)
        await asyncio.sleep(0.6)
    # The job was created all the same: exactly why the client must not send it again.
    assert len(running.sim.submits) == 1


SUBMITS = "/v1/models/"


@pytest.mark.parametrize("status", [408, 500, 502, 503, 504])
@pytest.mark.parametrize("kind", ["gateway", "lost"])
async def test_a_gateway_answering_a_submit_is_outcome_unknown(
        simulator: RunningSimulator, client: RunComfyClient, kind: str, status: int) -> None:
    """Without RunComfy's error code the answer is a proxy's or a timeout's: RunComfy may have
    taken the job (``lost``: it did, and charged it), so the submit's outcome is unknown."""
    simulator.sim.inject(Fault(kind, status=status, method="POST", path=SUBMITS))  # type: ignore[arg-type]
    with pytest.raises(SubmitOutcomeUnknown, match="cannot tell whether the job was started"):
        await client.submit(KLING, BODY)
    assert len(simulator.sim.submits) == (1 if kind == "lost" else 0)
    assert len(simulator.sim.calls_to(SUBMITS, "POST")) == 1  # never sent again


@pytest.mark.parametrize("status", [500, 502, 503, 504])
async def test_runcomfys_own_refusal_of_a_submit_did_not_start(
        simulator: RunningSimulator, client: RunComfyClient, status: int) -> None:
    """RunComfy's error body (its ``error_code``) says it refused: nothing started."""
    simulator.sim.inject(Fault("status", status=status, method="POST", path=SUBMITS))
    with pytest.raises(ServerError, match="problem on its side"):
        await client.submit(KLING, BODY)
    assert simulator.sim.submits == []


@pytest.mark.parametrize("body", ["digits", "nested", "huge"])
async def test_a_hostile_answer_is_a_runcomfy_error(
        simulator: RunningSimulator, client: RunComfyClient, body: str) -> None:
    """A body ``json.loads`` chokes on, or one too large to read, is an error of the client's
    family: for a submit an unknown outcome (it was accepted), for a read a retryable one."""
    simulator.sim.inject(Fault("hostile", body=body, method="POST", path=SUBMITS))  # type: ignore[arg-type]
    with pytest.raises(SubmitOutcomeUnknown, match="answer could not be read"):
        await client.submit(KLING, BODY)
    simulator.sim.inject(Fault("hostile", body=body, times=9, path="/status$"))  # type: ignore[arg-type]
    with pytest.raises(ServerError, match="problem on its side"):
        await client.status("any")


@pytest.mark.parametrize("body", ["nan_cost", "negative_cost"])
async def test_a_cost_is_a_finite_price_or_none(
        simulator: RunningSimulator, client: RunComfyClient, body: str) -> None:
    submitted = await client.submit(KLING, BODY)
    await wait_for(client, submitted.request_id, Phase.FINISHED)
    simulator.sim.inject(Fault("hostile", body=body, path="/result$"))  # type: ignore[arg-type]
    result = await client.result(submitted.request_id)
    assert result.outcome is Outcome.SUCCEEDED
    assert result.cost is None


async def test_a_long_failure_text_is_cut_to_fit_a_message(
        simulator: RunningSimulator, client: RunComfyClient) -> None:
    submitted = await client.submit(KLING, BODY)
    await wait_for(client, submitted.request_id, Phase.FINISHED)
    simulator.sim.inject(Fault("hostile", body="long_error", path="/result$"))
    result = await client.result(submitted.request_id)
    assert result.outcome is Outcome.FAILED
    assert len(result.error_text) == 1000
    assert result.error_text.endswith("x…")


async def test_the_token_never_shows(start_simulator: Start, closed_port: int,
                                     caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    running = await start_simulator()
    errors: list[BaseException] = []
    running.sim.inject(Fault("status", status=500, times=3))
    running.sim.inject(Fault("status", status=401))
    running.sim.inject(Fault("malformed"))
    async with running.client() as client:
        for _ in range(4):
            try:
                await client.status("x")
            except RunComfyError as exc:
                errors.append(exc)
        running.sim.inject(Fault("slow", delay=0.3))
        async with running.client(timeouts=Timeouts(submit=0.05, read=0.05)) as hasty:
            for call in (hasty.submit(KLING, BODY), hasty.status("x")):
                try:
                    await call
                except RunComfyError as exc:
                    errors.append(exc)
    async with RunComfyClient(TOKEN, f"http://127.0.0.1:{closed_port}") as offline:
        try:
            await offline.submit(KLING, BODY)
        except RunComfyError as exc:
            errors.append(exc)
    assert len(errors) >= 5
    for error in errors:
        assert TOKEN not in str(error)
        assert TOKEN not in repr(error)
        assert error.__cause__ is None or TOKEN not in repr(error.__cause__)
    assert TOKEN not in caplog.text
    assert TOKEN not in repr(running.client())


def test_catalog_models_are_all_known_to_the_simulator(catalog: Catalog) -> None:
    assert KLING in {m.id for m in catalog}
