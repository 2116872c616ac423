"""The Dockerfile cannot be built here (no Docker engine): check what can be checked."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOCKERFILE = (ROOT / "Dockerfile").read_text(encoding="utf-8")
README = (ROOT / "README.md").read_text(encoding="utf-8")


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments), continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n\s*", " ", DOCKERFILE)
    found = []
    for line in text.splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            keyword, _, rest = line.strip().partition(" ")
            found.append((keyword.upper(), rest.strip()))
    return found


def test_it_installs_exactly_as_the_readme_says() -> None:
    run_command = re.search(r"```sh\n(python3 -m venv .*?)\n```", README)
    assert run_command is not None
    install = run_command.group(1).split(" && .venv/bin/python -m bot")[0]
    assert ("RUN", install) in instructions()


def test_slim_base_non_root_volume_healthcheck_and_no_secrets() -> None:
    steps = instructions()
    assert steps[0][0] == "FROM"
    assert re.fullmatch(r"python:3\.1[1-9]-slim", steps[0][1])
    users = [args for keyword, args in steps if keyword == "USER"]
    assert users and users[-1] not in ("root", "0")
    assert ("VOLUME", '["/app/data"]') in steps
    [health] = [args for keyword, args in steps if keyword == "HEALTHCHECK"]
    assert health.endswith('CMD [".venv/bin/python", "-m", "bot", "health"]')
    assert ("ENV", "BOT_OPS__LISTEN=0.0.0.0:9100") in steps
    assert ("CMD", '[".venv/bin/python", "-m", "bot"]') in steps
    assert "TOKEN=" not in DOCKERFILE
    assert not any(keyword in ("ENV", "ARG") and "TOKEN" in args for keyword, args in steps)
    dockerignore = (ROOT / ".dockerignore").read_text(encoding="utf-8").split()
    assert {".venv", "data", "config.toml", ".git"} <= set(dockerignore)
