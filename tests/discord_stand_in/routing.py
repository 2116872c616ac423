"""The REST plumbing: route table, request parsing, the request log, faults and holds."""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import BodyPartReader, web

from tests.discord_stand_in.messages import Upload
from tests.discord_stand_in.model import RequestRecord
from tests.discord_stand_in.state import DiscordError, State

API_PREFIX = "/api/v10"
log = logging.getLogger(__name__)


@dataclass
class Call:
    """One REST request, parsed."""

    request: web.Request
    args: dict[str, str]
    body: Any
    uploads: list[Upload]
    record: RequestRecord

    def int_arg(self, name: str) -> int:
        try:
            return int(self.args[name])
        except ValueError:
            raise DiscordError(404, 0, f"404: Not Found ({name})") from None

    @property
    def json(self) -> dict[str, Any]:
        return self.body if isinstance(self.body, dict) else {}

    def flag(self, name: str) -> bool:
        return self.request.query.get(name, "").lower() in ("1", "true")


Handler = Callable[[Call], Awaitable[Any]]  # JSON to answer with; None for 204


@dataclass
class Fault:
    """Answer matching requests with an error, ``times`` times (``None``: always)."""

    method: str
    path: re.Pattern[str]
    status: int
    code: int = 0
    message: str = "injected by the test"
    times: int | None = 1
    retry_after: float | None = None
    when: Callable[[RequestRecord], bool] | None = None  # and only such requests
    hits: int = 0


@dataclass
class Hold:
    """Keep matching requests waiting (before, or after, they take effect) until released."""

    method: str
    path: re.Pattern[str]
    after: bool = True
    times: int | None = 1
    when: Callable[[RequestRecord], bool] | None = None  # and only such requests
    hits: int = 0
    arrived: asyncio.Event = field(default_factory=asyncio.Event)
    released: asyncio.Event = field(default_factory=asyncio.Event)

    def release(self) -> None:
        self.released.set()

    async def wait_arrived(self, within: float = 30.0) -> None:
        await asyncio.wait_for(self.arrived.wait(), within)


def _matches(rule: Fault | Hold, record: RequestRecord) -> bool:
    return (rule.times is None or rule.hits < rule.times) and rule.method in (
        "*", record.method) and rule.path.search(record.path) is not None and (
        rule.when is None or rule.when(record))


def json_response(data: Any, status: int = 200,
                  headers: dict[str, str] | None = None) -> web.Response:
    # Exactly "application/json": discord.py parses a body as JSON only with that header.
    return web.Response(status=status, body=json.dumps(data).encode(),
                        content_type="application/json", headers=headers)


class Router:
    def __init__(self, state: State) -> None:
        self.state = state
        self.routes: list[tuple[str, re.Pattern[str], str, Handler]] = []
        self.faults: list[Fault] = []
        self.holds: list[Hold] = []
        self.unhandled: list[RequestRecord] = []
        self.failures: list[RequestRecord] = []  # requests the stand-in itself failed on

    def add(self, method: str, template: str, handler: Handler) -> None:
        pattern = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", template)
        self.routes.append((method, re.compile(f"^{pattern}$"), template, handler))

    async def handle(self, request: web.Request) -> web.StreamResponse:
        path = request.path.removeprefix(API_PREFIX) or "/"
        record = RequestRecord(request.method, path, dict(request.query), None,
                               token=request.headers.get("Authorization", "").removeprefix("Bot "))
        self.state.requests.append(record)
        try:
            body, uploads = await _read_body(request)
        except (ValueError, UnicodeDecodeError):
            record.status = 400
            return json_response({"code": 50109, "message": "The request body contains "
                                  "invalid JSON."}, 400)
        record.json, record.files = body, [(u.filename, len(u.data)) for u in uploads]
        found = self._match(request.method, path)
        if found is None:
            record.status = 404
            self.unhandled.append(record)
            return json_response({"code": 0, "message": f"404: Not Found ({request.method} "
                                  f"{path} is not in the stand-in)"}, 404)
        template, handler, args = found
        record.route = template
        call = Call(request, args, body, uploads, record)
        try:
            self._check_auth(request, template)
            if (fault := self._fault(record)) is not None:
                return self._fault_response(fault, record)
            hold = self._hold(record)
            if hold is not None and not hold.after:
                await self._wait(hold)
            result = await handler(call)
            if hold is not None and hold.after:
                await self._wait(hold)
        except DiscordError as exc:
            record.status = exc.status
            return json_response({"code": exc.code, "message": exc.message}, exc.status)
        except Exception as exc:  # a body the stand-in cannot read: 400, not a retried 500
            log.exception("stand-in: %s %s failed", request.method, path)
            record.status, record.note = 400, f"stand-in error: {exc!r}"
            self.failures.append(record)
            return json_response({"code": 50035, "message": f"Invalid Form Body ({exc!r})"},
                                 400)
        if isinstance(result, web.StreamResponse):
            record.status = result.status
            return result
        record.status = 204 if result is None else 200
        return web.Response(status=204) if result is None else json_response(result)

    def _match(self, method: str, path: str) -> tuple[str, Handler, dict[str, str]] | None:
        for route_method, pattern, template, handler in self.routes:
            if route_method == method and (m := pattern.match(path)) is not None:
                return template, handler, m.groupdict()
        return None

    def _check_auth(self, request: web.Request, template: str) -> None:
        if template.startswith(("/interactions/", "/webhooks/")):
            return  # interaction webhooks need no bot token
        valid = self.state.valid_tokens
        token = request.headers.get("Authorization", "")
        if not token.startswith("Bot ") or (valid is not None
                                            and token.removeprefix("Bot ") not in valid):
            raise DiscordError(401, 0, "401: Unauthorized")

    def _fault(self, record: RequestRecord) -> Fault | None:
        for fault in self.faults:
            if _matches(fault, record):
                fault.hits += 1
                return fault
        return None

    @staticmethod
    def _fault_response(fault: Fault, record: RequestRecord) -> web.Response:
        record.status, record.note = fault.status, "fault injected"
        body: dict[str, Any] = {"code": fault.code, "message": fault.message}
        headers: dict[str, str] = {}
        if fault.status == 429:  # discord.py retries a 429 only when it came through a proxy
            retry = fault.retry_after if fault.retry_after is not None else 0.1
            body.update(retry_after=retry, **{"global": False})
            headers = {"Via": "1.1 google", "Retry-After": str(retry),
                       "X-RateLimit-Scope": "user"}
        return json_response(body, fault.status, headers)

    def _hold(self, record: RequestRecord) -> Hold | None:
        for hold in self.holds:
            if _matches(hold, record):
                hold.hits += 1
                record.note = "held"
                return hold
        return None

    @staticmethod
    async def _wait(hold: Hold) -> None:
        hold.arrived.set()
        await hold.released.wait()


async def _read_body(request: web.Request) -> tuple[Any, list[Upload]]:
    """JSON, or multipart with ``payload_json`` and ``files[n]`` (as discord.py sends)."""
    if request.content_type.startswith("multipart/"):
        body: Any = None
        uploads: list[Upload] = []
        reader = await request.multipart()
        while (part := await reader.next()) is not None:
            if not isinstance(part, BodyPartReader):
                continue
            data = await part.read(decode=False)
            if part.filename is not None:
                uploads.append(Upload(part.name or "", part.filename, bytes(data),
                                      part.headers.get("Content-Type")))
            elif part.name == "payload_json":
                body = json.loads(bytes(data).decode())
        return body, uploads
    raw = await request.read()
    return (json.loads(raw.decode()) if raw else None), []
