"""``python -m bot`` as a real process: every failure at start-up is one line naming it and a
documented exit code, never a traceback; no voice warnings; with ``DISCORD_API_BASE`` the bot
follows ``GET /gateway/bot`` to the gateway."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.discord import startup
from bot.keys import KeyBox, new_secret_key
from bot.store.connect import open_database
from bot.store.keys import GuildKeys
from tests.conftest import TOKEN, RunningSimulator
from tests.discord_stand_in import BotProcess, Launcher, StandIn, bot_environment

DISCORD_TOKEN = "discord-token-for-the-start-up-tests"
LOGGING_IN = "INFO discord.client: logging in using static token"
VOICE_WARNINGS = ("PyNaCl", "davey")


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def run_bot(tmp_path: Path, **extra: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items()
             if not k.startswith(("BOT_", "DISCORD_", "RUNCOMFY_"))
             and k not in ("LOG_LEVEL", "DATABASE_URL")}
    env = {**clean, "DISCORD_TOKEN": DISCORD_TOKEN, "RUNCOMFY_API_TOKEN": TOKEN,
           "BOT_BOT__DATABASE": str(tmp_path / "bot.sqlite3"), **extra}
    return subprocess.run(
        [sys.executable, "-m", "bot"], cwd=tmp_path, env=env, capture_output=True, text=True,
        timeout=120, check=False)


def assert_clean(output: str) -> None:
    assert "Traceback" not in output
    assert not [w for w in VOICE_WARNINGS if w in output], output


def assert_fails_with(done: subprocess.CompletedProcess[str], code: int, line: str) -> None:
    """At the default log level: discord.py's one INFO line, then the error; nothing else."""
    assert_clean(done.stdout + done.stderr)
    assert done.stdout == ""
    *logged, last = done.stderr.splitlines()
    assert [entry.split(" ", 2)[2] for entry in logged] == [LOGGING_IN], done.stderr
    assert last == line
    assert done.returncode == code


def test_discord_refusing_the_connection(tmp_path: Path) -> None:
    port = closed_port()
    done = run_bot(tmp_path, DISCORD_API_BASE=f"http://127.0.0.1:{port}/api/v10")
    assert_fails_with(done, startup.UNREACHABLE,
                      f"error: Discord is unreachable: cannot connect to 127.0.0.1:{port} "
                      "(Connection refused)")


def test_discord_not_resolving(tmp_path: Path) -> None:
    host = "discord.invalid"  # RFC 6761: never resolves
    try:
        socket.getaddrinfo(host, 80, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        reason = exc.strerror  # the resolver's words: "Name or service not known", or ...
    else:
        pytest.skip(f"{host} resolves on this machine")
    done = run_bot(tmp_path, DISCORD_API_BASE=f"http://{host}/api/v10")
    assert_fails_with(done, startup.UNREACHABLE,
                      f"error: Discord is unreachable: cannot resolve {host} ({reason})")


def test_a_bad_discord_api_base_is_a_bad_setting(tmp_path: Path) -> None:
    done = run_bot(tmp_path, DISCORD_API_BASE="discord.example/api/v10")
    assert (done.returncode, done.stdout) == (startup.SETUP, "")
    assert done.stderr == ("error: DISCORD_API_BASE must be an http:// or https:// URL, not "
                           "'discord.example/api/v10'\n")


# ---- against the Discord stand-in ------------------------------------------------------------


@pytest.fixture
async def stand_in() -> AsyncIterator[StandIn]:
    async with StandIn() as server:
        yield server


@pytest.fixture
async def launcher(stand_in: StandIn, tmp_path: Path) -> AsyncIterator[Launcher]:
    async with Launcher(tmp_path) as launch:
        yield launch
    for bot in launch.bots:  # shown by pytest when the test failed
        print(f"---- {bot.workdir.name} ----\n{bot.output()[-6000:]}")


async def launch(stand_in: StandIn, launcher: Launcher, tmp_path: Path,
                 runcomfy: RunningSimulator, *, database: Path | None = None,
                 **extra: str) -> BotProcess:
    env = bot_environment(stand_in, database=database or tmp_path / "bot.sqlite3",
                          runcomfy_url=runcomfy.url, runcomfy_token=TOKEN)
    return await launcher(stand_in, {**env, **extra})


async def exits_with(bot: BotProcess, code: int, line: str) -> None:
    """With LOG_LEVEL=WARNING: the one line, nothing else."""
    try:
        exited = await bot.wait_exit(60)
    except TimeoutError:
        raise AssertionError(f"the bot did not exit:\n{bot.output()[-4000:]}") from None
    assert exited == code, bot.output()
    out, err = bot.log_paths()
    assert out.read_text() == ""
    assert err.read_text() == line + "\n"


async def test_ready_through_the_gateway_that_discord_names(
        stand_in: StandIn, launcher: Launcher, tmp_path: Path,
        simulator: RunningSimulator) -> None:
    bot = await launch(stand_in, launcher, tmp_path, simulator)
    [connection] = await bot.wait_ready(timeout=60)
    assert connection.ready
    assert stand_in.requests("GET", r"^/gateway/bot$")
    output = bot.output()
    assert f"gateway: {stand_in.gateway_url} (from GET /gateway/bot)" in output
    assert LOGGING_IN in output  # INFO is logged: the voice warnings would be there
    assert_clean(output)


async def test_discord_unavailable(stand_in: StandIn, launcher: Launcher, tmp_path: Path,
                                   simulator: RunningSimulator) -> None:
    stand_in.fail("GET", r"^/users/@me$", 503, times=None)
    bot = await launch(stand_in, launcher, tmp_path, simulator, LOG_LEVEL="WARNING")
    await exits_with(bot, startup.UNREACHABLE, "error: Discord is unavailable: "
                                               "GET /api/v10/users/@me answered 503 Service "
                                               "Unavailable")


async def test_discord_refusing_a_request(stand_in: StandIn, launcher: Launcher, tmp_path: Path,
                                          simulator: RunningSimulator) -> None:
    stand_in.fail("GET", r"^/oauth2/applications/@me$", 403, code=50001,
                  message="Missing Access", times=None)
    bot = await launch(stand_in, launcher, tmp_path, simulator, LOG_LEVEL="WARNING")
    await exits_with(bot, startup.SETUP, "error: Discord refused GET "
                                         "/api/v10/oauth2/applications/@me: 403 Forbidden "
                                         "(50001: Missing Access)")


async def test_no_gateway(stand_in: StandIn, launcher: Launcher, tmp_path: Path,
                          simulator: RunningSimulator) -> None:
    stand_in.fail("GET", r"^/gateway/bot$", 503, times=None)
    bot = await launch(stand_in, launcher, tmp_path, simulator, LOG_LEVEL="WARNING")
    await exits_with(bot, startup.UNREACHABLE, "error: Discord is unavailable: "
                                               "GET /api/v10/gateway/bot answered 503 Service "
                                               "Unavailable")


async def test_the_gateway_refusing_the_connection(
        stand_in: StandIn, launcher: Launcher, tmp_path: Path,
        simulator: RunningSimulator) -> None:
    port = closed_port()
    stand_in.gateway.url = f"ws://127.0.0.1:{port}/gateway"  # what GET /gateway/bot answers
    bot = await launch(stand_in, launcher, tmp_path, simulator, LOG_LEVEL="WARNING")
    await exits_with(bot, startup.UNREACHABLE, "error: Discord's gateway is unreachable: "
                                               f"cannot connect to 127.0.0.1:{port} "
                                               "(Connection refused)")


async def test_a_database_that_cannot_be_opened(
        stand_in: StandIn, launcher: Launcher, tmp_path: Path,
        simulator: RunningSimulator) -> None:
    bot = await launch(stand_in, launcher, tmp_path, simulator, database=tmp_path,
                       LOG_LEVEL="WARNING")
    assert await bot.wait_exit(60) == startup.DATABASE
    [line] = bot.log_paths()[1].read_text().splitlines()
    assert line.startswith("error: database: ")


def test_a_malformed_secret_key(tmp_path: Path) -> None:
    done = run_bot(tmp_path, BOT_SECRET_KEY="not-a-fernet-key")
    assert (done.returncode, done.stdout) == (startup.SECRET_KEY, "")
    assert done.stderr == ("error: BOT_SECRET_KEY: its key is not a Fernet key (32 random bytes, "
                           "URL-safe base64, 44 characters); make one with `python -m bot "
                           "new-secret-key`.\n")
    assert "not-a-fernet-key" not in done.stderr.replace("BOT_SECRET_KEY", "")


async def a_store_with_a_sealed_key(path: Path, secret: str) -> None:
    db = await open_database(path)
    async with db.transaction() as tx:
        await GuildKeys(db).put(tx, 1 << 22, KeyBox([secret]).seal("rc-own-key-1234567890"),
                                "…7890", 0.0)
    await db.close()


@pytest.mark.parametrize("given", ["", "wrong"])
async def test_stored_keys_need_the_secret_that_sealed_them(
        stand_in: StandIn, launcher: Launcher, tmp_path: Path, simulator: RunningSimulator,
        given: str) -> None:
    new = (await asyncio.to_thread(  # the command an operator runs for it
        subprocess.run, [sys.executable, "-m", "bot", "new-secret-key"], capture_output=True,
        text=True, check=True, timeout=60)).stdout.strip()
    await a_store_with_a_sealed_key(tmp_path / "bot.sqlite3", new)
    secret = new_secret_key() if given == "wrong" else ""
    bot = await launch(stand_in, launcher, tmp_path, simulator, LOG_LEVEL="WARNING",
                       BOT_SECRET_KEY=secret)
    await exits_with(bot, startup.SECRET_KEY, {
        "": "error: servers' own RunComfy keys are stored but BOT_SECRET_KEY is not set: set "
            "it to the key they were sealed with",
        "wrong": "error: BOT_SECRET_KEY does not open the stored RunComfy keys: it is not the "
                 "key they were sealed with (while rotating, keep the old key after the new "
                 "one: NEW,OLD)."}[given])


async def test_a_rotation_seals_the_stored_keys_again(
        stand_in: StandIn, launcher: Launcher, tmp_path: Path,
        simulator: RunningSimulator) -> None:
    old, new = new_secret_key(), new_secret_key()
    await a_store_with_a_sealed_key(tmp_path / "bot.sqlite3", old)
    bot = await launch(stand_in, launcher, tmp_path, simulator, BOT_SECRET_KEY=f"{new},{old}")
    await bot.wait_ready(timeout=60)
    db = await open_database(tmp_path / "bot.sqlite3")
    stored = await GuildKeys(db).get(1 << 22)
    await db.close()
    assert stored is not None
    assert KeyBox([new]).open(stored.sealed) == "rc-own-key-1234567890"  # the old key: no more
