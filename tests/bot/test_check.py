"""``python -m bot check``: every failure named; exit 0 only when all is well."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from bot.check import render, run_check
from bot.store.access import ApprovedServers
from bot.store.connect import open_database
from bot.store.database import migrations
from tests.conftest import TOKEN, RunningSimulator, new_postgres_database
from tests.postgres_server import PostgresServer

ROOT = Path(__file__).resolve().parents[2]


def env(tmp_path: Path, **extra: str) -> dict[str, str]:
    return {"DISCORD_TOKEN": "discord-token", "RUNCOMFY_API_TOKEN": TOKEN,
            "BOT_BOT__DATABASE": str(tmp_path / "data" / "bot.sqlite3"), **extra}


async def test_all_well_with_prices_from_runcomfy(tmp_path: Path,
                                                  simulator: RunningSimulator) -> None:
    lines = await run_check(None, env(tmp_path, RUNCOMFY_BASE_URL=simulator.url),
                            offline=False)
    assert all(line.ok for line in lines), render(lines)
    details = {line.item: line.detail for line in lines}
    assert details["secrets"] == "DISCORD_TOKEN, RUNCOMFY_API_TOKEN set"
    assert details["catalog"] == "5 models"
    database = tmp_path / "data" / "bot.sqlite3"
    latest = len(migrations("sqlite"))
    assert details["database"] == f"SQLite {database}: not there yet; created at start-up " \
                                  f"(schema {latest})"
    assert details["kling-3-0"] == "RunComfy: $0.084/second; bot uses $0.084/second"
    assert details["wan-2-2"] == ("RunComfy: no published price; bot uses unknown: set "
                                  "prices.wan-2-2 to budget it")
    assert len(simulator.sim.calls_to("/v1/models/", "GET")) == 5


async def test_a_bad_token_is_named_for_each_model(tmp_path: Path,
                                                   simulator: RunningSimulator) -> None:
    lines = await run_check(None, env(tmp_path, RUNCOMFY_BASE_URL=simulator.url,
                                      RUNCOMFY_API_TOKEN="wrong"), offline=False)
    failed = [line for line in lines if not line.ok]
    assert {line.item for line in failed} == {"kling-1-6", "kling-2-1", "kling-3-0",
                                               "kling-3-0-4k", "wan-2-2"}
    assert failed[0].detail == ("RunComfy refused the bot's API token; the server owner needs "
                                "to check it.")


async def test_each_failure_is_named(tmp_path: Path) -> None:
    bad_config = tmp_path / "bad.toml"
    bad_config.write_text("[jobs]\npoll_interval = -1\n")
    [line] = await run_check(bad_config, env(tmp_path), offline=True)
    assert (line.item, line.ok) == ("config", False)
    assert line.detail.startswith("setting jobs.poll_interval: Input should be greater than 0")

    lines = await run_check(None, {"BOT_BOT__DATABASE": str(tmp_path)}, offline=True)
    results = {line.item: (line.ok, line.detail) for line in lines}
    assert results["secrets"] == (False, "DISCORD_TOKEN and RUNCOMFY_API_TOKEN must be set in "
                                         "the environment")
    assert results["database"][0] is False  # a folder is not a database file

    lines = await run_check(None, env(tmp_path, BOT_BOT__DEFAULT_MODEL="kling-3-0-4k"),
                            offline=True)
    assert [line.detail for line in lines if line.item == "catalog"] == [
        "setting bot.default_model: 'kling-3-0-4k' does not animate images"]


async def test_offline_and_simulated_checks_do_not_call_runcomfy(tmp_path: Path) -> None:
    lines = await run_check(None, env(tmp_path, RUNCOMFY_BASE_URL="http://127.0.0.1:9"),
                            offline=True)
    assert [line.item for line in lines] == ["config", "secrets", "catalog", "database",
                                             "access"]
    simulated = await run_check(None, {"DISCORD_TOKEN": "d", **env(tmp_path)}, offline=False,
                                simulate=True)
    assert simulated[-1].detail == "simulation mode: the built-in simulator"
    assert all(line.ok for line in simulated)


def test_the_command_prints_a_table_and_sets_the_exit_code(tmp_path: Path) -> None:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("BOT_", "RUNCOMFY",
                                                                       "DISCORD"))}
    done = subprocess.run(
        [sys.executable, "-m", "bot", "check", "--offline"], cwd=tmp_path,
        env={**clean, **env(tmp_path)}, capture_output=True, text=True, timeout=60,
        check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.splitlines()[0].split() == ["check", "result", "detail"]
    assert "discord-token" not in done.stdout
    failing = subprocess.run(
        [sys.executable, "-m", "bot", "check", "--offline"], cwd=tmp_path,
        env={**clean, "BOT_BOT__DATABASE": str(tmp_path / "db.sqlite3")}, capture_output=True,
        text=True, timeout=60, check=False)
    assert failing.returncode == 1
    assert "secrets   FAIL    DISCORD_TOKEN and RUNCOMFY_API_TOKEN must be set" in \
        failing.stdout


async def test_check_names_the_backend_and_its_schema_without_writing(
        tmp_path: Path, postgres: PostgresServer) -> None:
    url = await new_postgres_database(postgres)
    details = {line.item: line.detail for line in await run_check(
        None, env(tmp_path, DATABASE_URL=url), offline=True)}
    latest = len(migrations("postgresql"))
    assert details["database"] == (f"PostgreSQL {url} (schema 0 of {latest}; {latest} "
                                   "migrations to apply at start-up)")
    db = await open_database(url)  # as the bot does at start-up
    await db.close()
    secret = url.replace("postgres@", "postgres:s3cret@")
    details = {line.item: line.detail for line in await run_check(
        None, env(tmp_path, DATABASE_URL=secret), offline=True)}
    shown = url.replace("postgres@", "postgres:***@")
    assert details["database"] == f"PostgreSQL {shown} (schema {latest} of {latest})"
    sqlite = {line.item: line.detail for line in await run_check(
        None, env(tmp_path), offline=True)}
    assert sqlite["database"].startswith("SQLite")
    assert not (tmp_path / "data").exists()  # check --offline wrote nothing


async def test_no_credential_of_the_database_url_is_shown(
        tmp_path: Path, postgres: PostgresServer) -> None:
    """A password in the URL's query (libpq's ``?password=``) is as secret as one before the
    host: ``check`` shows neither."""
    url = await new_postgres_database(postgres)
    secret = f"{url}?sslmode=disable&password=s3cr%40t"
    details = {line.item: line.detail for line in await run_check(
        None, env(tmp_path, DATABASE_URL=secret), offline=True)}
    assert "s3cr" not in details["database"]
    assert f"{url}?sslmode=disable&password=***" in details["database"]


async def test_check_says_who_may_spend_and_the_account_caps(tmp_path: Path) -> None:
    opened = await run_check(None, env(tmp_path, BOT_ACCOUNT__DAILY_BUDGET_USD="25"),
                             offline=True)
    assert [line.detail for line in opened if line.item == "access"] == [
        "open: every server the bot is in may spend; account caps: $25 a day"]
    database = tmp_path / "bot.sqlite3"
    db = await open_database(database)
    await ApprovedServers(db).approve(42, 0.0)
    await db.close()
    approved = await run_check(None, env(tmp_path, BOT_ACCESS__SERVERS="approved",
                                         BOT_ACCESS__APPROVED="7,8",
                                         BOT_BOT__DATABASE=str(database)), offline=True)
    assert [line.detail for line in approved if line.item == "access"] == [
        "approved: 3 servers approved (2 in the config, 1 with `servers approve`)"]
