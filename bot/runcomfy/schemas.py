"""RunComfy's answers, parsed tolerantly: unknown fields are ignored, both vocabularies accepted.

The vocabularies are the one place that decides what a status word means (see API.md).
"""

from __future__ import annotations

import math
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, JsonValue, field_validator

ERROR_TEXT_MAX = 1000


class Phase(StrEnum):
    """Where a request is, as the status endpoint tells it."""

    QUEUED = "queued"
    RUNNING = "running"
    FINISHED = "finished"  # terminal: read the result, whose status decides


class Outcome(StrEnum):
    """What the result endpoint says of a request."""

    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


_PHASES = {"in_queue": Phase.QUEUED, "queued": Phase.QUEUED, "in_progress": Phase.RUNNING,
           "running": Phase.RUNNING}
_OUTCOMES = {
    "in_queue": Outcome.QUEUED, "queued": Outcome.QUEUED,
    "in_progress": Outcome.RUNNING, "running": Outcome.RUNNING,
    "succeeded": Outcome.SUCCEEDED, "completed": Outcome.SUCCEEDED, "success": Outcome.SUCCEEDED,
    "failed": Outcome.FAILED, "error": Outcome.FAILED,
    "cancelled": Outcome.CANCELLED, "canceled": Outcome.CANCELLED,
}


class _Answer(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class Submitted(_Answer):
    request_id: str = Field(min_length=1)
    status_url: str | None = None
    result_url: str | None = None
    cancel_url: str | None = None


class Status(_Answer):
    request_id: str
    status: str
    queue_position: int | None = None

    @field_validator("queue_position", mode="before")
    @classmethod
    def _position(cls, value: Any) -> Any:
        """A place in the queue, or ``None`` for anything that is not one."""
        return value if isinstance(value, int) and 0 <= value < 10**9 else None

    @field_validator("status")
    @classmethod
    def _lower(cls, value: str) -> str:
        return value.strip().lower()

    @property
    def phase(self) -> Phase:
        """Anything but queued or running (``completed``, ``failed``, ``canceled``, unknown
        words) is terminal: the result endpoint then says how it ended."""
        return _PHASES.get(self.status, Phase.FINISHED)


class Result(_Answer):
    request_id: str
    status: str
    output: dict[str, JsonValue] | None = None
    error: JsonValue = None
    cost: float | None = None
    created_at: str | None = None
    finished_at: str | None = None

    @field_validator("status")
    @classmethod
    def _lower(cls, value: str) -> str:
        return value.strip().lower()

    @field_validator("cost", mode="before")
    @classmethod
    def _cost(cls, value: Any) -> Any:
        """A price in USD, or ``None``: never NaN, infinite or negative (a NaN cost would
        make every budget comparison false)."""
        try:
            cost = float(value) if value not in (None, "") else None
        except (TypeError, ValueError, OverflowError):
            return None
        return cost if cost is not None and math.isfinite(cost) and cost >= 0 else None

    @property
    def outcome(self) -> Outcome:
        known = _OUTCOMES.get(self.status)
        if known is not None:
            return known
        return Outcome.SUCCEEDED if self.output and self.error is None else Outcome.FAILED

    def urls(self, key: str) -> list[str]:
        """The output URLs under ``key`` and its plural (``video`` and ``videos``)."""
        found: list[str] = []
        for name in (key, key.rstrip("s") + "s"):
            value = (self.output or {}).get(name)
            values = value if isinstance(value, list) else [value]
            found.extend(v for v in values if isinstance(v, str) and v and v not in found)
        return found

    @property
    def error_text(self) -> str:
        """RunComfy's reason for a failure, as one line of at most ``ERROR_TEXT_MAX``
        characters (it goes into messages Discord caps at 2,000)."""
        error = self.error
        text = "no reason given" if error is None else str(error)
        if isinstance(error, dict):
            text = next((str(error[key]) for key in ("message", "error_message", "error",
                                                     "detail")
                         if isinstance(error.get(key), str)), text)
        elif isinstance(error, str) and error.strip():
            text = error
        text = " ".join(text.split())
        return text if len(text) <= ERROR_TEXT_MAX else text[: ERROR_TEXT_MAX - 1] + "…"


class Cancelled(_Answer):
    request_id: str | None = None
    status: str | None = None
    outcome: str

    @property
    def cancelled(self) -> bool:
        return self.outcome.strip().lower() in ("cancelled", "canceled")


class ModelInfo(_Answer):
    model_id: str | None = None
    base_price_usd: float | None = None
    price_unit: str | None = None
    pricing_note: str | None = None
