"""The RunComfy Model API client: one aiohttp session, typed answers, safe retries.

Reads (status, result, cancel, model info) are retried with exponential backoff and jitter,
honouring ``Retry-After``. A submit is never retried: RunComfy has no idempotency key, so a
submit that got no answer (or one it cannot read) raises ``SubmitOutcomeUnknown`` and the caller
decides.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self, TypeVar
from urllib.parse import quote

import aiohttp
from pydantic import BaseModel, ValidationError
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_attempt,
    wait_random_exponential,
)

from bot.runcomfy.errors import (
    AuthError,
    InsufficientBalance,
    InvalidInput,
    NetworkError,
    NotFound,
    RateLimited,
    RunComfyError,
    ServerError,
    SubmitOutcomeUnknown,
    UnreadableSubmitAnswer,
)
from bot.runcomfy.schemas import Cancelled, ModelInfo, Result, Status, Submitted

DEFAULT_BASE_URL = "https://model-api.runcomfy.net"
MAX_ANSWER_BYTES = 1024 * 1024  # RunComfy's answers are small; a larger one is not read
GATEWAY_STATUSES = (408, 500, 502, 503, 504)  # no RunComfy error code: a proxy's or a timeout
log = logging.getLogger(__name__)
_Answer = TypeVar("_Answer", bound=BaseModel)

# Documented error codes (API.md); the HTTP status of each is not documented.
_CODES: dict[int, type[RunComfyError]] = {
    400001: InvalidInput,
    400002: InsufficientBalance,
    400004: AuthError,
    403001: AuthError,
    404001: NotFound,
}


@dataclass(frozen=True)
class RetryPolicy:
    """How reads are retried; a ``Retry-After`` longer than ``max_delay`` is capped to it."""

    attempts: int = 4
    base_delay: float = 1.0
    max_delay: float = 30.0


@dataclass(frozen=True)
class Timeouts:
    """Seconds for a whole call; submit gets longer, as its answer is the one that matters."""

    submit: float = 60.0
    read: float = 20.0


class RunComfyClient:
    """Use as ``async with RunComfyClient(token) as client``; the session is shared."""

    def __init__(
        self,
        token: str,
        base_url: str = DEFAULT_BASE_URL,
        *,
        retry: RetryPolicy | None = None,
        timeouts: Timeouts | None = None,
        session: aiohttp.ClientSession | None = None,
    ) -> None:
        self._token = token
        self.base_url = base_url.rstrip("/")
        self._retry = retry or RetryPolicy()
        self._timeouts = timeouts or Timeouts()
        self._session = session
        self._owns_session = session is None
        # Told of every call: its endpoint, its outcome ("ok" or the error's class) and seconds.
        self.observe: Callable[[str, str, float], None] | None = None

    def __repr__(self) -> str:
        return f"RunComfyClient(base_url={self.base_url!r})"

    def with_token(self, token: str) -> RunComfyClient:
        """The same client (its session, retries and timeouts) under another account's token:
        a server's own key."""
        other = RunComfyClient(token, self.base_url, retry=self._retry, timeouts=self._timeouts,
                               session=self.session)
        other._owns_session = False
        other.observe = self.observe
        return other

    def scrub(self, text: str) -> str:
        """``text`` (from RunComfy) without the token, should RunComfy ever echo it."""
        return text.replace(self._token, "***") if self._token else text

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(raise_for_status=False)
            self._owns_session = True
        return self._session

    async def close(self) -> None:
        if self._owns_session and self._session is not None:
            await self._session.close()

    async def submit(self, model_id: str, body: Mapping[str, Any]) -> Submitted:
        """Start a paid job. Never retried; ``SubmitOutcomeUnknown`` when no answer came."""
        path = f"/v1/models/{quote(model_id, safe='/')}"
        try:
            return await self._call("POST", path, Submitted, body=body,
                                    seconds=self._timeouts.submit, submitting=True)
        except SubmitOutcomeUnknown:
            log.warning("submit to %s got no answer; outcome unknown, not retried", model_id)
            raise

    async def status(self, request_id: str) -> Status:
        return await self._read("GET", f"/v1/requests/{quote(request_id, safe='')}/status", Status)

    async def result(self, request_id: str) -> Result:
        path = f"/v1/requests/{quote(request_id, safe='')}/result?include_cost=true"
        return await self._read("GET", path, Result)

    async def cancel(self, request_id: str) -> Cancelled:
        path = f"/v1/requests/{quote(request_id, safe='')}/cancel"
        return await self._read("POST", path, Cancelled)

    async def model_info(self, model_id: str) -> ModelInfo:
        return await self._read("GET", f"/v1/models/{quote(model_id, safe='/')}", ModelInfo)

    async def _read(self, method: str, path: str, answer: type[_Answer]) -> _Answer:
        async def once() -> _Answer:
            return await self._call(method, path, answer, seconds=self._timeouts.read)

        return await retrying(once, self._retry)

    async def _call(
        self,
        method: str,
        path: str,
        answer: type[_Answer],
        *,
        seconds: float,
        body: Mapping[str, Any] | None = None,
        submitting: bool = False,
    ) -> _Answer:
        started = time.monotonic()
        outcome = "ok"
        try:
            return await self._call_once(method, path, answer, seconds=seconds, body=body,
                                         submitting=submitting)
        except RunComfyError as exc:
            outcome = type(exc).__name__
            raise
        finally:
            if self.observe is not None:
                self.observe(_endpoint(method, path), outcome, time.monotonic() - started)

    async def _call_once(self, method: str, path: str, answer: type[_Answer], *,
                         seconds: float, body: Mapping[str, Any] | None,
                         submitting: bool) -> _Answer:
        headers = {"Authorization": f"Bearer {self._token}", "Accept": "application/json"}
        try:
            async with self.session.request(
                method, self.base_url + path, json=body, headers=headers,
                timeout=aiohttp.ClientTimeout(total=seconds),
            ) as response:
                raw = await _read_capped(response, MAX_ANSWER_BYTES + 1)
                status, retry_after = response.status, response.headers.get("Retry-After")
        except aiohttp.ClientConnectorError as exc:
            # The connection was never made, so nothing was sent: safe to say "not started".
            raise NetworkError(f"({type(exc).__name__})") from None
        except (TimeoutError, aiohttp.ClientError) as exc:
            if submitting:
                raise SubmitOutcomeUnknown(f"({type(exc).__name__})") from None
            raise NetworkError(f"({type(exc).__name__})") from None
        log.debug("%s %s -> %s", method, path.split("?")[0], status)
        payload = _parse_json(raw)
        error = _error_from(status, payload, retry_after, submitting=submitting,
                            scrub=self.scrub)
        if error is not None:
            raise error
        # A submit that was accepted (no error above) but whose answer cannot be read may
        # have started a paid job: that is an unknown outcome, not a failure.
        unreadable = UnreadableSubmitAnswer if submitting else ServerError
        if not isinstance(payload, dict):
            raise unreadable("(the answer was not a JSON object)", status=status)
        try:
            return answer.model_validate(payload)
        except ValidationError:
            raise unreadable("(the answer had an unexpected shape)", status=status) from None


def _endpoint(method: str, path: str) -> str:
    """A bounded label for a call: submit, model, status, result or cancel."""
    if path.startswith("/v1/models/"):
        return "submit" if method == "POST" else "model"
    return path.split("?")[0].rsplit("/", 1)[-1]


async def retrying(call: Callable[[], Awaitable[_Answer]], policy: RetryPolicy) -> _Answer:
    """Run ``call`` again on retryable errors, with backoff, jitter and ``Retry-After``.

    The first attempt runs outside tenacity, which then starts from its error: nearly every
    call succeeds at once, and tenacity's bookkeeping made up 40 % of a poll's CPU."""
    try:
        return await call()
    except RunComfyError as error:
        if not error.retryable:
            raise
        first: list[RunComfyError] = [error]

    async def again() -> _Answer:
        if first:
            raise first.pop()  # tenacity's attempt 1: the failure already seen
        return await call()

    jitter = wait_random_exponential(multiplier=policy.base_delay, max=policy.max_delay)

    def wait(state: RetryCallState) -> float:
        error = state.outcome.exception() if state.outcome else None
        if isinstance(error, RateLimited) and error.retry_after is not None:
            return min(error.retry_after, policy.max_delay)
        return float(jitter(state))

    def log_retry(state: RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome else None
        sleep = state.next_action.sleep if state.next_action else 0.0
        log.info("RunComfy call failed (%s); retry %d in %.1fs",
                 type(error).__name__, state.attempt_number, sleep)

    async for attempt in AsyncRetrying(
        stop=stop_after_attempt(policy.attempts),
        wait=wait,
        retry=retry_if_exception(lambda e: isinstance(e, RunComfyError) and e.retryable),
        before_sleep=log_retry,
        reraise=True,
        sleep=asyncio.sleep,
    ):
        with attempt:
            return await again()
    raise AssertionError("unreachable: tenacity reraises the last error")


async def _read_capped(response: aiohttp.ClientResponse, cap: int) -> bytes:
    """The body, or its first ``cap`` bytes when it is longer (the rest is not read): in one
    read when its announced length is within the cap (nearly every answer), else by chunks."""
    if response.content_length is not None and response.content_length <= cap:
        return await response.read()
    raw = bytearray()
    async for chunk in response.content.iter_chunked(64 * 1024):
        raw.extend(chunk)
        if len(raw) >= cap:
            break
    return bytes(raw[:cap])


def _parse_json(raw: bytes) -> object:
    """The answer's JSON; ``_UNREADABLE`` for anything else: not JSON, too large, a number
    too long for Python (``ValueError``) or nesting too deep (``RecursionError``)."""
    if len(raw) > MAX_ANSWER_BYTES:
        return _UNREADABLE
    if not raw.strip():
        return None
    try:
        return json.loads(raw)
    except (ValueError, RecursionError):  # JSONDecodeError and UnicodeDecodeError included
        return _UNREADABLE


_UNREADABLE = object()


def _error_from(
    status: int, payload: object, retry_after: str | None, *, submitting: bool,
    scrub: Callable[[str], str],
) -> RunComfyError | None:
    """The error an answer stands for, or ``None`` for a good answer."""
    body = payload if isinstance(payload, dict) else {}
    code = body.get("error_code")
    code = code if isinstance(code, int) and not isinstance(code, bool) else None
    if status < 400 and code is None:
        if payload is _UNREADABLE:  # accepted: a submit's job may exist
            unreadable = UnreadableSubmitAnswer if submitting else ServerError
            return unreadable("(the answer was not JSON)", status=status)
        return None
    message = _message(body)
    message = scrub(message) if message else None
    if code in _CODES:
        kind = _CODES[code]
        detail = message if kind is InvalidInput else None
        return kind(detail, status=status, code=code)
    if status == 429 or (status == 408 and not submitting):
        return RateLimited(status=status, code=code, retry_after=_seconds(retry_after))
    if status in (401, 403):
        return AuthError(status=status, code=code)
    if status == 402:
        return InsufficientBalance(status=status, code=code)
    if status == 404:
        return NotFound(status=status, code=code)
    if status in (400, 422) or (status < 400 and code is not None):
        return InvalidInput(message or "(no reason given)", status=status, code=code)
    if submitting and code is None and status in GATEWAY_STATUSES:
        # Not RunComfy's own refusal (that carries its error code): a gateway or a timeout
        # answered, and the job may have been created behind it.
        return SubmitOutcomeUnknown(f"(HTTP {status})", status=status)
    return ServerError(f"(HTTP {status})", status=status, code=code)


def _message(body: Mapping[str, object]) -> str | None:
    for key in ("error_message", "message", "error", "detail"):
        value = body.get(key)
        if isinstance(value, str) and value.strip():
            return value.strip()[:500]
        if value not in (None, "", [], {}):
            return json.dumps(value)[:500]
    return None


def _seconds(header: str | None) -> float | None:
    """``Retry-After`` in seconds; the HTTP-date form is rare for APIs and read as absent."""
    try:
        return max(0.0, float(header)) if header else None
    except ValueError:
        return None
