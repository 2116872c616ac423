"""An aiohttp server that behaves like RunComfy's Model API, as API.md describes it.

It is part of the product: operators point the bot at it to try things without paying, and
every test of RunComfy behaviour runs against it over real HTTP.

Several accounts: besides ``SimulatorConfig.token`` (the default account, whose credits are
``balance_usd``), ``SimulatorConfig.accounts`` maps more tokens to their credits in USD (``None``:
unlimited), e.g. ``SimulatorConfig(token="ops", accounts={"guild-a": 1.0, "guild-b": None})``,
or ``python -m bot.simulator --account guild-a:1.0 --account guild-b``. As on RunComfy, each
account pays for its own submits from its own balance (402, error 400002, when it cannot) and
sees only its own jobs: status, result or cancel of another account's request is 403, error
403001; an unknown token is 401, error 400004. The accounts share the simulated workers. Every
call is logged in ``Simulator.calls`` with the bearer token it carried (``Call.token``,
``Simulator.calls_by``), so a test can tell which key made which call.
"""

from __future__ import annotations

import hmac
import json
import random
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from bot.catalog import Catalog, ModelSpec, load_catalog, with_defaults
from bot.pricing import estimate_usd
from bot.simulator.faults import Fault, FaultInjector, Handler
from bot.simulator.inputs import input_problems
from bot.simulator.queue import JobQueue, JobState, Plan, SimJob

# clip.mp4: 2 s, 16 frames of 704x396 H.264 (made with PyAV): a ball crosses a gradient, so
# its last frame differs from its first (an Extend starts from the last), and it is large
# enough for every image-to-video model's pixel bounds.
SAMPLE_VIDEO = resources.files("bot.simulator").joinpath("clip.mp4").read_bytes()
# Used for the cost of models whose catalog price is unknown.
FALLBACK_USD_PER_SECOND = 0.05


@dataclass
class SimulatorConfig:
    """How the simulator behaves; the accounts are ``token`` (credits: ``balance_usd``) and the
    tokens of ``accounts`` (each with its credits). Balances change as jobs are charged."""

    token: str = "sim-token"  # noqa: S105 - the simulator's own, not a secret
    workers: int = 2
    queue_seconds: float = 0.0
    run_seconds: float = 2.0
    video_bytes: int | None = None  # pad the sample video to this size (oversize tests)
    video_file: Path | None = None  # serve this MP4 instead (e.g. ``clips.make_clip``'s)
    balance_usd: float | None = None  # the default account's credits; None: unlimited
    # More accounts: token -> credits in USD (None: unlimited), each with its own jobs.
    accounts: dict[str, float | None] = field(default_factory=dict)
    # The share of jobs (not planned with ``plan_next``) that fail, drawn from ``seed``.
    failure_rate: float = 0.0
    seed: int | None = None
    # Download each image input and check it against the model's image rules, as RunComfy
    # does; off, image URLs are taken on trust (the tests' URLs do not resolve).
    fetch_images: bool = False
    # The status and result words RunComfy may use instead of the documented ones.
    alternate_vocabulary: bool = False
    # Close every connection after its answer: no idle keep-alive connections inside the bot.
    close_connections: bool = False
    clock: Callable[[], float] = time.monotonic

    def __post_init__(self) -> None:
        if not 0 <= self.failure_rate <= 1:
            raise ValueError(f"failure_rate must be between 0 and 1, not {self.failure_rate}")
        self.accounts = dict(self.accounts)  # charged as jobs run: not the caller's dict
        if self.token in self.accounts:
            raise ValueError("an account's token is the default token")
        for number, (token, balance) in enumerate(self.accounts.items(), start=1):
            if not token.strip():
                raise ValueError(f"account {number}: the token is empty")
            if balance is not None and not balance >= 0:
                raise ValueError(f"account {number}: the balance must be 0 or more USD, "
                                 f"not {balance}")


@dataclass(frozen=True)
class Call:
    method: str
    path: str
    status: int
    token: str | None = None  # the bearer token it carried (whole header if not Bearer)


@dataclass
class Simulator:
    """The simulator's state; ``app`` serves it. Tests and operators steer it from here."""

    config: SimulatorConfig = field(default_factory=SimulatorConfig)
    catalog: Catalog = field(default_factory=load_catalog)
    faults: FaultInjector = field(default_factory=FaultInjector)
    calls: list[Call] = field(default_factory=list)
    in_flight: int = 0
    max_in_flight: int = 0  # the most calls it was answering at once
    _plans: deque[Plan] = field(default_factory=deque)
    _expired: set[str] = field(default_factory=set)
    _session: aiohttp.ClientSession | None = None

    def __post_init__(self) -> None:
        self.queue = JobQueue(workers=self.config.workers, queue_seconds=self.config.queue_seconds,
                              run_seconds=self.config.run_seconds, clock=self.config.clock)
        self.video = (self.config.video_file.read_bytes() if self.config.video_file
                      else pad_video(SAMPLE_VIDEO, self.config.video_bytes))
        # Which jobs fail at random: a simulation, not cryptography.
        self._random = random.Random(self.config.seed)  # noqa: S311

    def plan_next(self, *plans: Plan) -> None:
        """The next submits go as planned, in order; later ones use the defaults."""
        self._plans.extend(plans)

    def inject(self, fault: Fault) -> Fault:
        return self.faults.add(fault)

    def expire(self, request_id: str) -> None:
        """Forget a request, as RunComfy does after a while (404 from then on)."""
        self._expired.add(request_id)

    def calls_to(self, fragment: str, method: str | None = None) -> list[Call]:
        return [c for c in self.calls
                if fragment in c.path and (method is None or c.method == method)]

    def calls_by(self, token: str) -> list[Call]:
        """The calls that carried ``token`` (known or not), in order."""
        return [c for c in self.calls if c.token == token]

    @property
    def tokens(self) -> list[str]:
        """Every account's token, the default one first."""
        return [self.config.token, *self.config.accounts]

    def balance(self, token: str) -> float | None:
        """The credits of ``token``'s account now, in USD; ``None``: unlimited."""
        if token == self.config.token:
            return self.config.balance_usd
        return self.config.accounts[token]

    def set_balance(self, token: str, usd: float | None) -> None:
        if token == self.config.token:
            self.config.balance_usd = usd
        elif token in self.config.accounts:
            self.config.accounts[token] = usd
        else:
            raise KeyError(f"no account has the token {token!r}")

    def jobs_of(self, token: str) -> list[SimJob]:
        """The jobs ``token``'s account submitted, in order."""
        return [job for job in self.queue.jobs.values() if job.owner == token]

    @property
    def submits(self) -> list[SimJob]:
        return list(self.queue.jobs.values())

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._record, self.faults.middleware, self._auth])
        app.router.add_post("/v1/models/{model_id:.+}", self._submit)
        app.router.add_get("/v1/models/{model_id:.+}", self._model_info)
        app.router.add_get("/v1/requests/{request_id}/status", self._status)
        app.router.add_get("/v1/requests/{request_id}/result", self._result)
        app.router.add_post("/v1/requests/{request_id}/cancel", self._cancel)
        app.router.add_get("/files/{request_id}.mp4", self._video)
        app.on_cleanup.append(self._close_session)
        return app

    def _fetcher(self) -> aiohttp.ClientSession | None:
        """The session that downloads image inputs, when the simulator checks them."""
        if self.config.fetch_images and self._session is None:
            self._session = aiohttp.ClientSession()
        return self._session

    async def _close_session(self, _app: web.Application) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _next_plan(self) -> Plan:
        if self._plans:
            return self._plans.popleft()
        if self._random.random() < self.config.failure_rate:
            return Plan(JobState.FAILED)
        return Plan()

    @web.middleware
    async def _record(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        response: web.StreamResponse
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            response = await handler(request)
        except web.HTTPException as exc:
            response = exc
        finally:
            self.in_flight -= 1
        self.calls.append(Call(request.method, request.path, response.status,
                               _bearer(request.headers.get("Authorization"))))
        if self.config.close_connections:
            response.force_close()
        if isinstance(response, web.HTTPException):
            raise response
        return response

    @web.middleware
    async def _auth(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path.startswith("/files/"):
            return await handler(request)  # output URLs are public
        if self._account_of(request) is None:
            return _error(401, 400004, "Invalid or expired token.")
        return await handler(request)

    def _account_of(self, request: web.Request) -> str | None:
        """The token of the account whose ``Authorization`` ``request`` carries, if any."""
        given = request.headers.get("Authorization", "").encode()
        account = None
        for token in self.tokens:  # every one compared, in constant time
            if hmac.compare_digest(given, f"Bearer {token}".encode()):
                account = token
        return account

    def _account(self, request: web.Request) -> str:
        """The account that made ``request``, which ``_auth`` let through."""
        account = self._account_of(request)
        assert account is not None
        return account

    def _model(self, request: web.Request) -> ModelSpec | None:
        return self.catalog.by_id(request.match_info["model_id"])

    async def _submit(self, request: web.Request) -> web.Response:
        model = self._model(request)
        if model is None:
            return _error(400, 400001, f"Unknown model id {request.match_info['model_id']!r}.")
        try:
            body = await request.json()
        except ValueError:
            return _error(422, 422001, "The body is not valid JSON.")
        if not isinstance(body, dict):
            return _error(422, 422001, "The body must be a JSON object.")
        problems = await input_problems(model, body, self._fetcher())
        if problems:
            return _error(422, 422001, problems[0], detail=problems)
        effective = with_defaults(model, body)  # what RunComfy runs, and charges for
        cost = estimate_usd(model, effective)
        if cost is None:
            seconds = effective.get(model.duration_field or "", 5)
            cost = round(FALLBACK_USD_PER_SECOND * float(seconds), 6)
        account = self._account(request)
        balance = self.balance(account)
        if balance is not None and cost > balance:
            return _error(402, 400002, "Insufficient balance.")
        if balance is not None:
            self.set_balance(account, round(balance - cost, 6))
        plan = self._next_plan()
        job = self.queue.add(model.id, body, plan, cost, owner=account)
        base = _base_url(request)
        return web.json_response({
            "request_id": job.request_id,
            "status_url": f"{base}/v1/requests/{job.request_id}/status",
            "result_url": f"{base}/v1/requests/{job.request_id}/result",
            "cancel_url": f"{base}/v1/requests/{job.request_id}/cancel",
        })

    async def _model_info(self, request: web.Request) -> web.Response:
        model = self._model(request)
        if model is None:
            return _error(404, 400001, f"Unknown model id {request.match_info['model_id']!r}.")
        return web.json_response({
            "model_id": model.id,
            "name": model.name,
            "base_price_usd": model.price.usd,
            "price_unit": "output" if model.price.unit == "video" else model.price.unit,
            "pricing_note": model.price.source,
            "input_schema": {f.name: f.model_dump(exclude_none=True) for f in model.fields},
        })

    def _job(self, request: web.Request) -> SimJob:
        request_id = request.match_info["request_id"]
        job = None if request_id in self._expired else self.queue.get(request_id)
        if job is None:
            raise web.HTTPNotFound(
                text=json.dumps({"error_code": 404001, "error_message":
                                 "Request not found or expired.", "detail": None}),
                content_type="application/json",
            )
        if job.owner != self._account(request):  # never the job, nor a hint of its state
            raise web.HTTPForbidden(
                text=json.dumps({"error_code": 403001, "error_message":
                                 "The request belongs to another account.", "detail": None}),
                content_type="application/json",
            )
        return job

    async def _status(self, request: web.Request) -> web.Response:
        job = self._job(request)
        base = _base_url(request)
        answer: dict[str, Any] = {
            "request_id": job.request_id,
            "status": self._status_word(job.state),
            "status_url": f"{base}/v1/requests/{job.request_id}/status",
            "result_url": f"{base}/v1/requests/{job.request_id}/result",
        }
        if job.state is JobState.QUEUED:
            answer["queue_position"] = self.queue.position(job)
        return web.json_response(answer)

    async def _result(self, request: web.Request) -> web.Response:
        job = self._job(request)
        answer: dict[str, Any] = {
            "request_id": job.request_id,
            "status": self._result_word(job.state),
            "created_at": _iso(job.submitted_at, self.config.clock),
            "finished_at": _iso(job.finished_at, self.config.clock),
        }
        if job.state is JobState.SUCCEEDED:
            answer["output"] = {"video": f"{_base_url(request)}/files/{job.request_id}.mp4"}
        elif job.state is JobState.FAILED:
            answer["error"] = job.plan.error
        if job.state is JobState.SUCCEEDED and request.query.get("include_cost") == "true":
            answer["cost"] = job.cost
        return web.json_response(answer)

    async def _cancel(self, request: web.Request) -> web.Response:
        job = self._job(request)
        cancelled = self.queue.cancel(job)
        balance = self.balance(job.owner)
        if cancelled and balance is not None:
            self.set_balance(job.owner, round(balance + job.cost, 6))
        return web.json_response(
            {"request_id": job.request_id, "status": self._result_word(job.state),
             "outcome": "cancelled" if cancelled else "not_cancellable"},
            status=202,
        )

    async def _video(self, request: web.Request) -> web.Response:
        job = self.queue.get(request.match_info["request_id"])
        if job is None or job.state is not JobState.SUCCEEDED:
            raise web.HTTPNotFound()
        return web.Response(body=self.video, content_type="video/mp4")

    def _status_word(self, state: JobState) -> str:
        if state is JobState.QUEUED:
            return "in_queue"
        if state is JobState.RUNNING:
            return "in_progress"
        if self.config.alternate_vocabulary:
            return {JobState.CANCELLED: "canceled"}.get(state, state.value)
        return "cancelled" if state is JobState.CANCELLED else "completed"

    def _result_word(self, state: JobState) -> str:
        words = {JobState.QUEUED: "in_queue", JobState.RUNNING: "in_progress"}
        if self.config.alternate_vocabulary:
            words |= {JobState.SUCCEEDED: "completed", JobState.CANCELLED: "canceled"}
        return words.get(state, state.value)


def pad_video(video: bytes, size: int | None) -> bytes:
    """The video grown to ``size`` bytes with an MP4 ``free`` box, so it still plays."""
    if size is None or size <= len(video):
        return video
    filler = max(size - len(video), 8)
    return video + filler.to_bytes(4, "big") + b"free" + bytes(filler - 8)


def _bearer(header: str | None) -> str | None:
    """The token an ``Authorization`` header carries: the whole header if it is not Bearer."""
    if header is None:
        return None
    scheme, _, token = header.partition(" ")
    return token if scheme == "Bearer" else header


def _error(status: int, code: int, message: str, detail: Any = None) -> web.Response:
    return web.json_response(
        {"error_code": code, "error_message": message, "detail": detail}, status=status
    )


def _base_url(request: web.Request) -> str:
    return f"{request.scheme}://{request.host}"


def _iso(moment: float | None, clock: Callable[[], float]) -> str | None:
    """A clock reading as an ISO date: the clock is monotonic, so offset it from now."""
    if moment is None:
        return None
    wall = time.time() - (clock() - moment)
    return datetime.fromtimestamp(wall, UTC).isoformat().replace("+00:00", "Z")
