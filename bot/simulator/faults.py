"""Fault injection: the next N calls to matching paths fail the way a real service does."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Literal

from aiohttp import web

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
FaultKind = Literal["status", "slow", "malformed"]


@dataclass
class Fault:
    """How a call fails.

    ``status``: answer ``status`` (with ``Retry-After`` when set); ``slow``: do the work, then
    wait ``delay`` seconds before answering; ``malformed``: answer 200 with a body not JSON.
    """

    kind: FaultKind
    times: int = 1
    path: str = r"^/v1/"
    method: str | None = None
    status: int = 500
    retry_after: float | None = None
    delay: float = 0.0

    def matches(self, request: web.Request) -> bool:
        if self.times <= 0 or not re.search(self.path, request.path):
            return False
        return self.method is None or self.method.upper() == request.method


class FaultInjector:
    def __init__(self) -> None:
        self.faults: list[Fault] = []

    def add(self, fault: Fault) -> Fault:
        self.faults.append(fault)
        return fault

    def clear(self) -> None:
        self.faults.clear()

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        fault = next((f for f in self.faults if f.matches(request)), None)
        if fault is None:
            return await handler(request)
        fault.times -= 1
        if fault.kind == "slow":
            response = await handler(request)
            await asyncio.sleep(fault.delay)
            return response
        if fault.kind == "malformed":
            return web.Response(text='{"request_id": "', content_type="application/json")
        headers = {"Retry-After": f"{fault.retry_after:g}"} if fault.retry_after is not None else {}
        return web.json_response(
            {"error_code": fault.status * 1000 + 1, "error_message": "Injected fault.",
             "detail": None},
            status=fault.status, headers=headers,
        )
