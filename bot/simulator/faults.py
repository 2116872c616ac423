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

    @classmethod
    def parse(cls, spec: str) -> Fault:
        """A fault from ``KEY=VALUE,...`` (the ``--fault`` of ``python -m bot.simulator``).

        Keys: ``kind`` (status, slow or malformed; status by default), ``status``, ``times``,
        ``path`` (a regular expression, without commas), ``method``, ``retry_after``,
        ``delay``. E.g. ``status=503,times=3,path=/status$`` or ``kind=slow,delay=5``.
        """
        given: dict[str, str] = {}
        for part in spec.split(","):
            key, equals, value = part.partition("=")
            if not equals or not key.strip():
                raise ValueError(f"{part!r} is not KEY=VALUE")
            given[key.strip()] = value.strip()
        unknown = sorted(set(given) - {"kind", *_PARSERS})
        if unknown:
            raise ValueError(f"unknown key {unknown[0]!r}; keys are kind, {', '.join(_PARSERS)}")
        kind = _KINDS.get(given.pop("kind", "status"))
        if kind is None:
            raise ValueError(f"kind must be one of {', '.join(_KINDS)}")
        fault = cls(kind)
        for key, value in given.items():
            try:
                setattr(fault, key, _PARSERS[key](value))
            except (ValueError, re.error) as exc:
                raise ValueError(f"{key}={value!r}: {exc}") from None
        return fault

    def matches(self, request: web.Request) -> bool:
        if self.times <= 0 or not re.search(self.path, request.path):
            return False
        return self.method is None or self.method.upper() == request.method


def _count(text: str) -> int:
    if int(text) < 1:
        raise ValueError("must be 1 or more")
    return int(text)


def _status(text: str) -> int:
    if not 400 <= int(text) <= 599:
        raise ValueError("must be an HTTP error status, 400 to 599")
    return int(text)


def _seconds(text: str) -> float:
    if not float(text) >= 0:
        raise ValueError("must be 0 or more seconds")
    return float(text)


def _regex(text: str) -> str:
    re.compile(text)
    return text


_KINDS: dict[str, FaultKind] = {"status": "status", "slow": "slow", "malformed": "malformed"}
_PARSERS: dict[str, Callable[[str], object]] = {
    "status": _status, "times": _count, "path": _regex, "method": str.upper,
    "retry_after": _seconds, "delay": _seconds,
}


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
