"""Talking to RunComfy's Model API (see docs in ``client``)."""

from bot.runcomfy.client import DEFAULT_BASE_URL, RetryPolicy, RunComfyClient, Timeouts
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
)
from bot.runcomfy.schemas import Cancelled, ModelInfo, Outcome, Phase, Result, Status, Submitted

__all__ = [
    "DEFAULT_BASE_URL",
    "AuthError",
    "Cancelled",
    "InsufficientBalance",
    "InvalidInput",
    "ModelInfo",
    "NetworkError",
    "NotFound",
    "Outcome",
    "Phase",
    "RateLimited",
    "Result",
    "RetryPolicy",
    "RunComfyClient",
    "RunComfyError",
    "ServerError",
    "Status",
    "SubmitOutcomeUnknown",
    "Submitted",
    "Timeouts",
]
