"""Running the bot: every failure on the way up is one line naming it and an exit code (the
table in README.md), never a traceback.

With ``DISCORD_API_BASE`` set, the gateway is the one ``GET /gateway/bot`` on that base names:
discord.py 2.7's non-sharded client would otherwise connect straight to wss://gateway.discord.gg.
Before discord.py's connection loop (which retries an unreachable gateway forever, logging a
traceback each time), one WebSocket handshake checks that the gateway answers at all.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
from collections.abc import Callable, Mapping

import aiohttp
import discord
import yarl
from discord.gateway import DiscordWebSocket
from discord.http import INTERNAL_API_VERSION

from bot.config import ConfigError
from bot.discord.client import VideoBot
from bot.keys import KeyBoxError
from bot.store.database import DatabaseError

log = logging.getLogger(__name__)

UNEXPECTED = 1  # a bug: the line names the exception; LOG_LEVEL=DEBUG logs the traceback
SETUP = 2  # a token, a setting, a model file, or something Discord refused: fix and restart
DATABASE = 3  # the database cannot be opened or migrated
UNREACHABLE = 4  # Discord cannot be reached or is unavailable: try again later
SECRET_KEY = 5  # BOT_SECRET_KEY is malformed, missing or does not open the stored keys

DISCORD_API_BASE = "DISCORD_API_BASE"
GATEWAY = "Discord's gateway"
_CLOSE_CODES = {4004: "authentication failed", 4010: "invalid shard",
                4011: "sharding required", 4012: "invalid API version", 4013: "invalid intents"}


class StartupError(Exception):
    """A failure, as the one line to print (``str()``) and the exit code (``code``)."""

    def __init__(self, code: int, line: str) -> None:
        super().__init__(line)
        self.code = code


def discord_api_base(env: Mapping[str, str]) -> str | None:
    """``DISCORD_API_BASE`` (a proxy in front of Discord's API, or a stand-in), if set."""
    base = env.get(DISCORD_API_BASE, "").strip().rstrip("/")
    if not base:
        return None
    try:
        url = yarl.URL(base)
    except ValueError:
        url = yarl.URL()
    if url.scheme not in ("http", "https") or not url.host:
        raise ConfigError(f"{DISCORD_API_BASE} must be an http:// or https:// URL, not {base!r}")
    return base


def run(bot: VideoBot, token: str, *, sync: bool = False, api_base: str | None = None) -> int:
    """Run the bot (``sync``: only push its slash commands) until it stops; the exit code.
    ``api_base``: Discord's REST API there, and the gateway it names."""
    if api_base is not None:
        discord.http.Route.BASE = api_base
    try:
        with asyncio.Runner(loop_factory=event_loop_factory()) as runner:
            runner.run(_sync(bot, token) if sync else _serve(bot, token, api_base is not None))
    except KeyboardInterrupt:
        return 0
    except Exception as exc:
        failure = explain(exc)
        if failure.code == UNEXPECTED:
            log.debug("start-up failed", exc_info=exc)
        print(f"error: {failure}", file=sys.stderr)
        return failure.code
    return 0


def event_loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's event loop, where uvloop is installed (everywhere but Windows): a command
    costs the process about 15 % less CPU than on asyncio's own (bench/README.md).
    ``None``: asyncio's."""
    try:
        import uvloop  # not on Windows
    except ImportError:
        return None
    return uvloop.new_event_loop


async def _serve(bot: VideoBot, token: str, gateway_from_api: bool) -> None:
    # SIGTERM (Docker, compose, systemd) is a graceful stop: VideoBot.close finishes the
    # submits under way and hands this process's jobs over.
    loop = asyncio.get_running_loop()
    stopping: list[asyncio.Task[None]] = []
    loop.add_signal_handler(signal.SIGTERM, lambda: stopping.append(
        asyncio.create_task(bot.close(), name="graceful-stop")))
    async with bot:
        await bot.login(token)  # GET /users/@me, /applications/@me, then setup_hook
        try:
            await _reach_gateway(bot, gateway_from_api)
        except (aiohttp.ClientError, discord.DiscordException, TimeoutError) as exc:
            raise explain(exc, GATEWAY) from exc
        await bot.connect()


async def _sync(bot: VideoBot, token: str) -> None:
    async with bot:
        await bot.login(token)
        await bot.sync_commands(force=True)


async def _reach_gateway(bot: discord.Client, from_api: bool) -> None:
    if from_api:
        _, url, _ = await bot.http.get_bot_gateway()
        DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(url)  # reconnects go there as well
        log.info("gateway: %s (from GET /gateway/bot)", url)
    probe = DiscordWebSocket.DEFAULT_GATEWAY.with_query(v=INTERNAL_API_VERSION, encoding="json")
    ws = await bot.http.ws_connect(str(probe))
    await ws.close()


def explain(exc: BaseException, what: str = "Discord") -> StartupError:
    """``exc`` as a failure; ``what`` failed to answer if it is a network error."""
    if isinstance(exc, StartupError):
        return exc
    if isinstance(exc, ConfigError):
        return StartupError(SETUP, str(exc))
    if isinstance(exc, DatabaseError):
        return StartupError(DATABASE, f"database: {exc}")
    if isinstance(exc, KeyBoxError):
        return StartupError(SECRET_KEY, str(exc))
    if isinstance(exc, discord.LoginFailure):
        return StartupError(SETUP, "Discord refused DISCORD_TOKEN (improper token)")
    if isinstance(exc, discord.PrivilegedIntentsRequired):
        return StartupError(SETUP, "Discord refused the Message Content intent: enable it in the "
                                   "developer portal or set bot.message_content_intent = false")
    if isinstance(exc, discord.ConnectionClosed):
        why = _CLOSE_CODES.get(exc.code, "")
        return StartupError(SETUP, f"{GATEWAY} closed the connection: {exc.code} {why}".strip())
    if isinstance(exc, discord.GatewayNotFound) and isinstance(exc.__cause__,
                                                               discord.HTTPException):
        exc = exc.__cause__
    if isinstance(exc, discord.HTTPException):
        return _refused(exc)
    if isinstance(exc, discord.GatewayNotFound):
        return StartupError(UNREACHABLE, f"{GATEWAY} was not found")
    if isinstance(exc, aiohttp.WSServerHandshakeError):
        code = UNREACHABLE if exc.status == 429 or exc.status >= 500 else SETUP
        return StartupError(code, f"{what} refused the WebSocket handshake at "
                                  f"{exc.request_info.real_url.with_query(None)}: {exc.status}")
    if isinstance(exc, aiohttp.ClientConnectorDNSError):
        return StartupError(UNREACHABLE, f"{what} is unreachable: cannot resolve {exc.host} "
                                         f"({_reason(exc.os_error)})")
    if isinstance(exc, aiohttp.ClientConnectorError):
        return StartupError(UNREACHABLE, f"{what} is unreachable: cannot connect to "
                                         f"{exc.host}:{exc.port} ({_reason(exc.os_error)})")
    if isinstance(exc, TimeoutError):
        return StartupError(UNREACHABLE, f"{what} is unreachable: no answer in time")
    if isinstance(exc, aiohttp.ClientError):
        return StartupError(UNREACHABLE, f"{what} is unreachable: {_one_line(exc)}")
    return StartupError(UNEXPECTED, f"unexpected {_one_line(exc)} "
                                    "(LOG_LEVEL=DEBUG logs the traceback)")


def _refused(exc: discord.HTTPException) -> StartupError:
    """5xx and 429 (Discord is down or overloaded: later) or another refusal (set-up)."""
    response = exc.response
    request = "a request"
    status = str(exc.status)
    if isinstance(response, aiohttp.ClientResponse):
        request = f"{response.method} {response.url.path}"
        status = f"{exc.status} {response.reason or ''}".strip()
    if exc.status == 429 or exc.status >= 500:  # the body may be a proxy's HTML page
        return StartupError(UNREACHABLE, f"Discord is unavailable: {request} answered {status}")
    detail = f" ({exc.code}: {' '.join(exc.text.split())})" if exc.code else ""
    return StartupError(SETUP, f"Discord refused {request}: {status}{detail}")


def _reason(error: OSError) -> str:
    if isinstance(error.errno, int) and error.errno > 0:
        return os.strerror(error.errno)  # "Connection refused", not "Connect call failed ..."
    return str(error.strerror or error or type(error).__name__)


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
