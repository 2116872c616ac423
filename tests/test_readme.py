"""The README's commands are the ones CI really runs."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_ci_runs_the_readme_test_command() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    command = "python3 -m venv .venv && .venv/bin/pip install -q -e '.[test]' && .venv/bin/pytest"
    assert f"\n{command}\n" in readme
    assert f"\n{command}\n" in ci


def test_the_invite_asks_for_what_the_bot_needs() -> None:
    from bot.discord.permissions import INVITE

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert f"scope=bot+applications.commands&permissions={INVITE.value}`" in readme
