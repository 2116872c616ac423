"""Fault injection: the next N calls to matching paths fail the way a real service does."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Literal

from aiohttp import web

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
FaultKind = Literal["status", "slow", "malformed", "gateway", "lost", "hostile"]
HostileBody = Literal["digits", "nested", "huge", "nan_cost", "negative_cost", "long_error"]
GATEWAY_PAGE = "<html><body><h1>{status} Bad Gateway</h1>nginx</body></html>"


@dataclass
class Fault:
    """How a call fails.

    ``status``: RunComfy refuses: ``status`` with its error body (and ``Retry-After`` when
    set); ``slow``: do the work, then wait ``delay`` seconds before answering; ``malformed``:
    answer 200 with a body not JSON; ``gateway``: a proxy in front answers ``status`` with an
    HTML page, and RunComfy never sees the call; ``lost``: RunComfy does the work (a submit is
    accepted and charged), then a proxy answers ``status`` with its page instead; ``hostile``:
    a 200 whose ``body`` is hostile: ``digits`` (a 5,000-digit number), ``nested`` (nesting
    100,000 deep), ``huge`` (8 MiB), or RunComfy's own answer with a NaN (``nan_cost``) or
    negative (``negative_cost``) cost, or a 5,000-character error (``long_error``).
    """

    kind: FaultKind
    times: int = 1
    path: str = r"^/v1/"
    method: str | None = None
    status: int = 500
    retry_after: float | None = None
    delay: float = 0.0
    body: HostileBody = "digits"

    @classmethod
    def parse(cls, spec: str) -> Fault:
        """A fault from ``KEY=VALUE,...`` (the ``--fault`` of ``python -m bot.simulator``).

        Keys: ``kind`` (status, slow, malformed, gateway, lost or hostile; status by default),
        ``status``, ``times``, ``path`` (a regular expression, without commas), ``method``,
        ``retry_after``, ``delay``, ``body`` (of a hostile answer). E.g.
        ``status=503,times=3,path=/status$``, ``kind=slow,delay=5`` or
        ``kind=lost,status=502,method=POST,path=/v1/models/``.
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


def _body(text: str) -> str:
    if text not in _BODIES:
        raise ValueError(f"must be one of {', '.join(_BODIES)}")
    return text


_KINDS: dict[str, FaultKind] = {kind: kind for kind in (
    "status", "slow", "malformed", "gateway", "lost", "hostile")}
_BODIES = ("digits", "nested", "huge", "nan_cost", "negative_cost", "long_error")
_PARSERS: dict[str, Callable[[str], object]] = {
    "status": _status, "times": _count, "path": _regex, "method": str.upper,
    "retry_after": _seconds, "delay": _seconds, "body": _body,
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
        if fault.kind in ("gateway", "lost"):
            if fault.kind == "lost":
                await handler(request)  # RunComfy did it; its answer never arrives
            return web.Response(text=GATEWAY_PAGE.format(status=fault.status),
                                status=fault.status, content_type="text/html")
        if fault.kind == "hostile":
            return await _hostile(fault.body, request, handler)
        headers = {"Retry-After": f"{fault.retry_after:g}"} if fault.retry_after is not None else {}
        return web.json_response(
            {"error_code": fault.status * 1000 + 1, "error_message": "Injected fault.",
             "detail": None},
            status=fault.status, headers=headers,
        )


async def _hostile(body: HostileBody, request: web.Request, handler: Handler) -> web.Response:
    if body == "digits":
        return web.Response(text='{"request_id": ' + "9" * 5000 + "}",
                            content_type="application/json")
    if body == "nested":
        return web.Response(text="[" * 100_000 + "]" * 100_000, content_type="application/json")
    if body == "huge":
        return web.Response(text=json.dumps({"request_id": "x", "pad": "a" * 8 * 1024 * 1024}),
                            content_type="application/json")
    answer = await handler(request)
    assert isinstance(answer, web.Response) and answer.text is not None
    data = json.loads(answer.text)
    if body == "long_error":
        data.update(status="failed", output=None, error={"message": "x" * 5000})
    else:
        data["cost"] = float("nan") if body == "nan_cost" else -5.0
    return web.Response(text=json.dumps(data), status=answer.status,
                        content_type="application/json")
