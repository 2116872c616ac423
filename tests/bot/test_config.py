"""Settings from the file and the environment; one clear line for anything wrong."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from bot.config import ConfigError, Settings, load_secrets, load_settings

ROOT = Path(__file__).resolve().parents[2]


def test_the_example_documents_every_setting_with_its_default() -> None:
    example = load_settings(ROOT / "config.example.toml", {})
    assert example == Settings()
    text = (ROOT / "config.example.toml").read_text(encoding="utf-8")
    for section, model in Settings().model_dump().items():
        if isinstance(model, dict) and section != "prices":
            for name, default in model.items():
                # A setting unset by default (TOML has no null) is shown commented out.
                shown = f"\n{name} = " if default is not None else f"\n# {name} = "
                assert shown in text, f"{section}.{name} is not documented"


def test_file_then_environment(tmp_path: Path) -> None:
    file = tmp_path / "config.toml"
    file.write_text('[jobs]\npoll_interval = 5\n[prices.wan-2-2]\nunit = "video"\nusd = 0.2\n')
    settings = load_settings(file, {"BOT_JOBS__MAX_CONCURRENT_POLLS": "3",
                                    "RUNCOMFY_BASE_URL": "http://127.0.0.1:8765",
                                    "LOG_LEVEL": "debug"})
    assert settings.jobs.poll_interval == 5
    assert settings.jobs.max_concurrent_polls == 3
    assert settings.runcomfy.base_url == "http://127.0.0.1:8765"
    assert settings.bot.log_level == "DEBUG"
    assert settings.prices["wan-2-2"].usd == 0.2


@pytest.mark.parametrize(
    ("content", "env", "message"),
    [
        ("[jobs]\npoll_interval = 'soon'\n", {},
         "setting jobs.poll_interval: Input should be a valid number"),
        ("[jobs]\npoll_interval = 0\n", {}, "setting jobs.poll_interval: Input should be greater"),
        ("[runcomfy]\ntoken = 'abc'\n", {}, "setting runcomfy.token: Extra inputs are not"),
        ("[jobs\n", {}, "not a readable TOML file"),
        ("", {"BOT_JOBS__TIMEOUT_MINUTES": "-1"}, "setting jobs.timeout_minutes"),
    ],
)
def test_a_bad_setting_is_named(tmp_path: Path, content: str, env: dict[str, str],
                                message: str) -> None:
    file = tmp_path / "config.toml"
    file.write_text(content)
    with pytest.raises(ConfigError, match=message):
        load_settings(file, env)


def test_secrets_come_from_the_environment_only() -> None:
    with pytest.raises(ConfigError, match="DISCORD_TOKEN and RUNCOMFY_API_TOKEN must be set"):
        load_secrets({})
    secrets = load_secrets({"DISCORD_TOKEN": "dc-secret-1", "RUNCOMFY_API_TOKEN": "rc-secret-2"})
    assert (secrets.discord_token, secrets.runcomfy_token) == ("dc-secret-1", "rc-secret-2")
    assert "secret" not in repr(secrets)


def run_bot(tmp_path: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items()
             if k not in ("DISCORD_TOKEN", "RUNCOMFY_API_TOKEN") and not k.startswith("BOT_")}
    return subprocess.run(  # noqa: S603 - our own interpreter and module
        [sys.executable, "-m", "bot", *args], cwd=tmp_path, env={**clean, **env},
        capture_output=True, text=True, timeout=60, check=False)


def test_a_missing_token_is_one_clear_line(tmp_path: Path) -> None:
    done = run_bot(tmp_path, {"RUNCOMFY_API_TOKEN": "r"})
    assert done.returncode == 2
    assert done.stderr == "error: DISCORD_TOKEN must be set in the environment\n"
    assert done.stdout == ""


def test_a_bad_config_file_is_one_clear_line(tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text("[jobs]\npoll_interval = 'x'\n")
    done = run_bot(tmp_path, {"DISCORD_TOKEN": "d", "RUNCOMFY_API_TOKEN": "r"})
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1
    assert done.stderr.startswith("error: setting jobs.poll_interval: Input should be a valid")


def test_shards_from_the_file_or_the_environment(tmp_path: Path) -> None:
    settings = load_settings(None, {"BOT_BOT__SHARD_COUNT": "4", "BOT_BOT__SHARD_IDS": "1,3"})
    assert settings.bot.shards is not None
    assert (settings.bot.shards.count, settings.bot.shards.ids) == (4, frozenset({1, 3}))
    assert settings.bot.shards.owns(5 << 22) and not settings.bot.shards.owns(4 << 22)
    assert load_settings(None, {"BOT_BOT__SHARD_IDS": "[0, 1]",
                                "BOT_BOT__SHARD_COUNT": "2"}).bot.shard_ids == (0, 1)
    for env, error in (({"BOT_BOT__SHARD_IDS": "0"}, "shard_ids needs shard_count"),
                       ({"BOT_BOT__SHARD_COUNT": "2", "BOT_BOT__SHARD_IDS": "2"},
                        "shard_ids must be between 0 and 1")):
        with pytest.raises(ConfigError, match=error):
            load_settings(None, env)
    assert Settings().bot.shards is None  # one process, Discord's recommended count
