"""Servers' own RunComfy keys, encrypted at rest with the bot's secret (``BOT_SECRET_KEY``).

``BOT_SECRET_KEY`` is one Fernet key (32 random bytes, URL-safe base64: ``new_secret_key``), or
several separated by commas while rotating: the first seals, every one opens. To rotate, put a
new key first and keep the old one after it (``NEW,OLD``), re-seal every stored key with
``KeyBox.rotate``, then drop the old one.

Nothing here ever puts a key, the bot's or a server's, in a message: ``key_ending`` is all of a
RunComfy key that may be shown.
"""

from __future__ import annotations

from collections.abc import Sequence

ENV_NAME = "BOT_SECRET_KEY"
# What of a RunComfy key may be shown (a listing, a log line): its last few characters, and only
# when the key is long enough that they give nothing useful away.
ENDING_CHARS = 4
ENDING_MIN_LENGTH = 16
ELLIPSIS = "\N{HORIZONTAL ELLIPSIS}"


class KeyBoxError(Exception):
    """The bot's secret is malformed, or does not open what was sealed; the message is one line
    for the operator and never holds a key."""


def new_secret_key() -> str:
    """A fresh key for ``BOT_SECRET_KEY``: 32 random bytes, URL-safe base64."""
    from cryptography.fernet import Fernet

    return Fernet.generate_key().decode("ascii")


class KeyBox:
    """Seals and opens servers' RunComfy keys; the first of ``keys`` seals, all of them open."""

    def __init__(self, keys: Sequence[str]) -> None:
        # cryptography is loaded here: a bot without BOT_SECRET_KEY never needs it (6 MiB).
        from cryptography.fernet import Fernet, MultiFernet

        if not keys:
            raise KeyBoxError(f"{ENV_NAME} holds no key.")
        fernets: list[Fernet] = []
        for number, key in enumerate(keys, start=1):
            where = f"key {number} of {len(keys)}" if len(keys) > 1 else "its key"
            key = key.strip()
            if not key:
                raise KeyBoxError(f"{ENV_NAME}: {where} is empty.")
            try:
                fernets.append(Fernet(key))
            except (ValueError, TypeError):
                # Never chained: the cause could quote the key.
                raise KeyBoxError(
                    f"{ENV_NAME}: {where} is not a Fernet key (32 random bytes, URL-safe "
                    "base64, 44 characters); make one with `python -m bot new-secret-key`."
                ) from None
        self._fernet = MultiFernet(fernets)
        self._count = len(fernets)

    @classmethod
    def from_env(cls, value: str | None) -> KeyBox | None:
        """The box ``BOT_SECRET_KEY`` describes; ``None`` when it is unset or blank."""
        if value is None or not value.strip():
            return None
        return cls(value.split(","))

    @property
    def key_count(self) -> int:
        return self._count

    def __repr__(self) -> str:
        return f"KeyBox({self._count} key{'s' if self._count != 1 else ''})"

    def seal(self, secret: str) -> str:
        """``secret`` encrypted with the first key: a Fernet token (URL-safe base64 text)."""
        return self._fernet.encrypt(secret.encode("utf-8")).decode("ascii")

    def open(self, sealed: str) -> str:
        """The secret ``seal`` made ``sealed`` from, with whichever key opens it."""
        from cryptography.fernet import InvalidToken

        try:
            return self._fernet.decrypt(_token(sealed)).decode("utf-8")
        except (InvalidToken, UnicodeDecodeError):
            raise _cannot_open() from None

    def rotate(self, sealed: str) -> str:
        """``sealed`` sealed again with the first key (whichever key opens it now)."""
        from cryptography.fernet import InvalidToken

        try:
            return self._fernet.rotate(_token(sealed)).decode("ascii")
        except InvalidToken:
            raise _cannot_open() from None


def key_ending(secret: str) -> str:
    """What may be shown of a key: ``…abcd`` (its last 4 characters), never more; only ``…``
    for a key so short that 4 characters would be a good part of it."""
    secret = secret.strip()
    if len(secret) < ENDING_MIN_LENGTH:
        return ELLIPSIS
    return ELLIPSIS + secret[-ENDING_CHARS:]


def _token(sealed: str) -> bytes:
    try:
        return sealed.strip().encode("ascii")
    except UnicodeEncodeError:
        raise _cannot_open() from None


def _cannot_open() -> KeyBoxError:
    return KeyBoxError(
        f"{ENV_NAME} does not open the stored RunComfy keys: it is not the key they were sealed "
        "with (while rotating, keep the old key after the new one: NEW,OLD)."
    )
