"""The bot as a real OS process (``python -m bot``) against the stand-in: start, wait until
ready, SIGKILL, restart; output to files; always cleaned up.

    async with Launcher(tmp_path) as launch:
        bot = await launch(discord, bot_environment(discord, database=tmp_path / "bot.db",
                                                    runcomfy_url=url, runcomfy_token=token,
                                                    jobs__poll_interval=0.5))
        await bot.wait_ready()
        await bot.kill()
        await bot.start()
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import secrets
import signal
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import IO

from tests.discord_stand_in.gateway import Connection
from tests.discord_stand_in.server import StandIn

PROJECT = Path(__file__).resolve().parents[2]
_OWN_ENV = ("BOT_", "DISCORD_", "RUNCOMFY_")  # never inherited from the test's environment
_NOT_INHERITED = ("LOG_LEVEL", "PYTHONPATH", "DATABASE_URL")
_PR_SET_PDEATHSIG = 1


def bot_environment(discord: StandIn, *, runcomfy_url: str, runcomfy_token: str,
                    database: Path | None = None, database_url: str | None = None,
                    token: str | None = None, store: Path | str | None = None,
                    **settings: object) -> dict[str, str]:
    """The bot's environment: tokens, URLs, database (a SQLite file, or ``DATABASE_URL``; or
    ``store``: either, as the ``database_target`` fixture gives it), and
    ``section__name=value`` settings (``jobs__poll_interval=0.5`` becomes
    ``BOT_JOBS__POLL_INTERVAL=0.5``)."""
    if isinstance(store, str):
        database_url = store
    elif store is not None:
        database = store
    env = {
        "DISCORD_TOKEN": token or f"stand-in-token-{secrets.token_hex(6)}",
        "DISCORD_API_BASE": discord.api_base,
        "RUNCOMFY_API_TOKEN": runcomfy_token,
        "RUNCOMFY_BASE_URL": runcomfy_url,
    }
    if database is not None:
        env["BOT_BOT__DATABASE"] = str(database)
    if database_url is not None:
        env["DATABASE_URL"] = database_url
    for key, value in settings.items():
        env[f"BOT_{key.upper()}"] = str(value).lower() if isinstance(value, bool) else str(value)
    return env


def _die_with_parent() -> None:  # pragma: no cover - runs in the child, before exec
    """The bot dies with the test process, even if that is killed without cleaning up."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def _open_logs(out: Path, err: Path) -> tuple[IO[bytes], IO[bytes]]:
    return out.open("wb"), err.open("wb")


class BotProcess:
    """One bot, started (and restarted) as ``python -m bot [args]`` (``module``: another
    program started the same way, e.g. a benchmark's reference bot)."""

    def __init__(self, discord: StandIn, workdir: Path, env: dict[str, str],
                 args: Sequence[str] = (), module: str = "bot") -> None:
        self.discord = discord
        self.module = module
        self.workdir = workdir
        self.env = dict(env)
        self.args = list(args)
        self.proc: asyncio.subprocess.Process | None = None
        self.launches = 0
        self.started_at = 0.0
        self.ended_at: float | None = None
        workdir.mkdir(parents=True, exist_ok=True)

    @property
    def token(self) -> str:
        return self.env["DISCORD_TOKEN"]

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.returncode is None

    @property
    def pid(self) -> int | None:
        return None if self.proc is None else self.proc.pid

    @property
    def returncode(self) -> int | None:
        return None if self.proc is None else self.proc.returncode

    def log_paths(self, launch: int | None = None) -> tuple[Path, Path]:
        """stdout and stderr files of a launch (the latest by default)."""
        n = launch or self.launches
        return self.workdir / f"bot-{n}.stdout", self.workdir / f"bot-{n}.stderr"

    def output(self, launch: int | None = None) -> str:
        """What a launch (the latest by default) printed, stdout then stderr."""
        texts = []
        for path in self.log_paths(launch):
            with contextlib.suppress(OSError):
                texts.append(path.read_text(errors="replace"))
        return "\n".join(texts)

    def _environment(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(_OWN_ENV) and k not in _NOT_INHERITED}
        env.update(PYTHONUNBUFFERED="1", PYTHONPATH=str(PROJECT))
        env.update(self.env)
        return env

    async def start(self) -> None:
        """Start the bot (again); the previous run must be over."""
        if self.running:
            raise RuntimeError(f"the bot is already running (pid {self.pid})")
        self.launches += 1
        out, err = _open_logs(*self.log_paths())
        try:
            self.started_at, self.ended_at = time.monotonic(), None
            self.proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", self.module, *self.args, cwd=self.workdir,
                env=self._environment(), stdin=asyncio.subprocess.DEVNULL, stdout=out,
                stderr=err, preexec_fn=_die_with_parent)
        finally:
            out.close()
            err.close()

    def connections(self) -> list[Connection]:
        """This run's live gateway connections that got READY and their guilds."""
        return [c for c in self.discord.live_connections(self.token)
                if c.ready and c.opened_at >= self.started_at
                and (self.ended_at is None or c.opened_at <= self.ended_at)]

    async def wait_ready(self, timeout: float = 60.0, *,  # noqa: ASYNC109 - polled
                         shards: int = 1) -> list[Connection]:
        """Until ``shards`` connections are identified (the commands are synced, or were
        already, before discord.py connects); fails at once if the bot exits."""
        deadline = time.monotonic() + timeout
        while True:
            if not self.running:
                raise AssertionError(f"the bot exited with {self.returncode} before it was "
                                     f"ready:\n{self.output()[-4000:]}")
            ready = self.connections()
            if len(ready) >= shards and self.discord.state.commands:
                return ready
            if time.monotonic() > deadline:
                raise AssertionError(f"the bot was not ready within {timeout} s:\n"
                                     f"{self.output()[-4000:]}\n{self.discord.report()}")
            await asyncio.sleep(0.05)

    async def wait_exit(self, timeout: float = 60.0) -> int:  # noqa: ASYNC109
        """Until the bot exits by itself (``python -m bot sync``/``check``); its exit code."""
        if self.proc is None:
            raise RuntimeError("the bot was never started")
        code = await asyncio.wait_for(self.proc.wait(), timeout)
        self.ended_at = time.monotonic()
        return code

    async def kill(self) -> int | None:
        """SIGKILL, as a crash: nothing is flushed or closed. Waits (up to 10 s) until the
        stand-in saw this run's connections drop."""
        return await self._stop(signal.SIGKILL, 0.0)

    async def terminate(self, timeout: float = 15.0) -> int | None:  # noqa: ASYNC109
        """SIGTERM, then SIGKILL after ``timeout`` seconds."""
        return await self._stop(signal.SIGTERM, timeout)

    async def _stop(self, how: signal.Signals, grace: float) -> int | None:
        if self.proc is None:
            return None
        if self.proc.returncode is not None:
            return self.proc.returncode
        mine = self.connections()
        with contextlib.suppress(ProcessLookupError):
            self.proc.send_signal(how)
        try:
            await asyncio.wait_for(self.proc.wait(), grace or None)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(signal.SIGKILL)
            await self.proc.wait()
        self.ended_at = time.monotonic()
        for _ in range(200):
            if all(c.closed for c in mine):
                break
            await asyncio.sleep(0.05)
        return self.proc.returncode

    async def restart(self) -> None:
        """A crash and a restart on the same database."""
        await self.kill()
        await self.start()


class Launcher:
    """Starts bots and kills every one of them on the way out, whatever happened."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.bots: list[BotProcess] = []

    async def __call__(self, discord: StandIn, env: dict[str, str], args: Sequence[str] = (),
                       *, start: bool = True, module: str = "bot") -> BotProcess:
        bot = BotProcess(discord, self.workdir / f"bot{len(self.bots) + 1}", env, args, module)
        self.bots.append(bot)
        if start:
            await bot.start()
        return bot

    async def __aenter__(self) -> Launcher:
        return self

    async def __aexit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        for bot in self.bots:
            await bot.kill()
