"""The few ways a RunComfy call can fail, each with a message safe to show a member.

Messages never carry the API token, request headers or signed URLs.
"""

from __future__ import annotations


class RunComfyError(Exception):
    """Base class; ``str(error)`` is what the member is told."""

    retryable = False
    user_message = "RunComfy could not handle the request."

    def __init__(self, detail: str | None = None, *, status: int | None = None,
                 code: int | None = None) -> None:
        self.detail = detail
        self.status = status
        self.code = code
        super().__init__(self.user_message if detail is None else f"{self.user_message} {detail}")


class AuthError(RunComfyError):
    user_message = "RunComfy refused the bot's API token; the server owner needs to check it."


class InsufficientBalance(RunComfyError):
    user_message = "The RunComfy account has run out of credits; ask the server owner to top it up."


class InvalidInput(RunComfyError):
    user_message = "RunComfy rejected the inputs:"


class NotFound(RunComfyError):
    user_message = "RunComfy no longer knows this request (unknown or expired)."


class RateLimited(RunComfyError):
    retryable = True
    user_message = "RunComfy is busy right now; try again in a minute."

    def __init__(self, detail: str | None = None, *, status: int | None = None,
                 code: int | None = None, retry_after: float | None = None) -> None:
        super().__init__(detail, status=status, code=code)
        self.retry_after = retry_after


class ServerError(RunComfyError):
    retryable = True
    user_message = "RunComfy had a problem on its side; try again later."


class NetworkError(RunComfyError):
    retryable = True
    user_message = "The bot could not reach RunComfy; try again later."


class SubmitOutcomeUnknown(RunComfyError):
    """A submit whose answer never came: the job may exist and be charged. Never resubmit."""

    user_message = (
        "RunComfy did not answer in time, so the bot cannot tell whether the job was started. "
        "It was not sent again, to avoid paying twice."
    )


class UnreadableSubmitAnswer(SubmitOutcomeUnknown):
    """A submit RunComfy accepted (2xx) with an answer that cannot be read: no request id,
    but the job may exist and be charged."""

    user_message = (
        "RunComfy accepted the job but its answer could not be read, so the bot cannot tell "
        "whether it was started. It was not sent again, to avoid paying twice."
    )
