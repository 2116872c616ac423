"""Answering in the member's language against English: the same slash commands from members
whose Discord language is Japanese or Russian, against members whose language is English, in
the same run (issue 24's target: a round's p99, translations on, <= 1.05 x off's).

Three servers in the same bot on the same SimCord, each with its own 100 members and channel:
one whose members' Discord (``interaction.locale``) and server (``preferred_locale``) are
``en-US`` ("translations off": the messages as written, no catalog, no Babel), one ``ja``, one
``ru`` (every text through the gettext catalogs, numbers, money and durations through Babel,
Russian's three plural forms). Two commands: ``/kling-2-1`` with an image, as
``bench.acknowledge`` sends it (the card in the channel, in the server's language, then the
member's "Job #N is queued" answer), and ``/quota``, whose answer is the bot's most translated
(every limit set: the day's quota with its plural and reset time, videos in progress, the
server's budget in money). Rounds of 100 simultaneous commands, one per member of one server,
come in blocks of one round per language, the two commands' blocks taking turns, in a
Williams design (A B C, B C A, C A B, C B A, A C B, B A C: each language in each place, and
after each other one, equally often); the poller is stopped, as in ``bench.acknowledge``.
``--languages en-US,en-US,en-US`` is an A/A/A run: what identical arms differ by.

Two latencies, from the moment each interaction reaches the bot: its first answer to Discord
(the defer), and the full answer (the edit of that "thinking" message with the text). Each is
judged on a round's p99 (of 100 simultaneous commands), its median over the rounds, as
``bench.acknowledge`` judges it; the ratio is Japanese's (Russian's) over English's.

    .venv/bin/python -m bench.acknowledge_languages [--commands 100 --rounds 12]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import time
from pathlib import Path
from typing import Any

import simcord.interactions

from bench.harness import Bench, hear_answers, percentile, png, running_bot, slash
from bench.remote import simulator_process

KLING = "kling-2-1"
QUOTA = "quota"
COMMANDS = (KLING, QUOTA)
ENGLISH = "en-US"
LANGUAGES = (ENGLISH, "ja", "ru")  # A B C: English is the reference
# Every limit /quota tells, none reached in the run (no cooldown: it would refuse /kling-2-1).
# The budget needs /kling-2-1's price, which RunComfy does not publish.
SETTINGS: dict[str, Any] = {
    "limits": {"daily_quota": 1000, "max_concurrent": 1000, "monthly_budget_usd": 1_000_000.0},
    "prices": {KLING: {"unit": "video", "usd": 0.5}}}
# Words only the English answer has: how many answers came in English, per language.
ENGLISH_WORDS = {KLING: "is queued", QUOTA: "Today:"}
TARGET = 1.05


def load() -> str:
    """The machine's load average (1, 5, 15 min): other work on its 2 cores."""
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


class Answers:
    """When each interaction got its first answer (the defer) and its full answer (the edit
    of the original response), and the full answer's text; by interaction id."""

    def __init__(self) -> None:
        self.first: dict[str, float] = {}
        self.full: dict[str, float] = {}
        self.text: dict[str, str] = {}
        self.of_token: dict[str, str] = {}  # interaction token -> interaction id

    def heard(self, route: Any, payload: dict[str, Any] | None,
              multipart: list[dict[str, Any]] | None) -> None:
        now = time.perf_counter()
        path = str(getattr(route, "url", ""))
        if path.endswith("/callback"):
            self.first.setdefault(path.split("/interactions/")[1].split("/")[0], now)
        elif path.endswith("/messages/@original") and getattr(route, "method", "") == "PATCH":
            interaction = self.of_token.get(path.split("/")[-3])
            if interaction is not None and interaction not in self.full:
                self.full[interaction] = now
                self.text[interaction] = str((payload or {}).get("content") or multipart or "")


def instrument(answers: Answers, language_of: dict[int, str]) -> None:
    """Each server's members speak its language (SimCord says en-US for everyone), and every
    answer to Discord is timed."""
    made = simcord.interactions.base_payload

    def payload(backend: Any, **fields: Any) -> tuple[Any, dict[str, Any]]:
        record, data = made(backend, **fields)
        data["locale"] = language_of.get(fields.get("guild_id") or 0, ENGLISH)
        answers.of_token[str(data["token"])] = str(record.id)
        return record, data

    simcord.interactions.base_payload = payload
    hear_answers(answers.heard)


class Server:
    """One arm: a server whose members and own language are ``language``."""

    def __init__(self, bench: Bench, arm: str, language: str, members: int) -> None:
        self.language = language
        self.guild = bench.env.create_guild(f"server {arm}", preferred_locale=language)
        self.channel = self.guild.create_text_channel("videos")
        self.members = [self.guild.add_member(bench.env.create_user(f"{arm} member{i}"))
                        for i in range(members)]


def arms_of(languages: tuple[str, ...]) -> dict[str, str]:
    """Each arm's name (its language, numbered if it has several arms) and language."""
    return {(language if languages.count(language) == 1 else f"{language}/{place}"): language
            for place, language in enumerate(languages, 1)}


async def round_of(bench: Bench, server: Server, command: str, image: bytes,
                   answers: Answers, tag: str) -> tuple[list[float], list[float], int]:
    """``command`` from every member of ``server`` at once: ms from arrival to the first
    answer and to the full answer, each; how many full answers were in English."""
    arrived: dict[str, float] = {}
    for index, member in enumerate(server.members):
        options: dict[str, Any] = {} if command == QUOTA else {
            "prompt": f"a zebra {tag} {index}", "image": (f"z{index}.png", image)}
        arrived[slash(bench, member, server.channel, command, options, server.guild)] = \
            time.perf_counter()
    for _ in range(12):  # as bench.acknowledge settles
        with contextlib.suppress(TimeoutError):
            await bench.env.settle(timeout=10)
            break
    first = [(answers.first[i] - at) * 1000 for i, at in arrived.items() if i in answers.first]
    full = [(answers.full[i] - at) * 1000 for i, at in arrived.items() if i in answers.full]
    english = sum(ENGLISH_WORDS[command] in answers.text.get(i, "") for i in arrived)
    return first, full, english


def order(languages: tuple[str, ...], rounds: int) -> list[tuple[str, str]]:
    """(command, language) of each measured round, ``rounds`` of each command in each language
    (rounded up to a whole number of cycles): blocks of one round per language, the commands'
    blocks taking turns, in a Williams design (three languages: A B C, B C A, C A B, C B A,
    A C B, B A C), so that each language has each place in a block, and follows each other
    language, equally often."""
    count = len(languages)
    rows = [[languages[(start + step) % count] for step in range(count)]
            for start in range(count)]
    blocks = rows + [list(reversed(row)) for row in rows]
    cycles = -(-rounds // len(blocks))
    return [(command, language) for _ in range(cycles) for block in blocks
            for command in COMMANDS for language in block]


def median_p99(each: list[list[float]]) -> float:
    return statistics.median(percentile(one, 0.99) for one in each)


async def main(count: int, rounds: int, languages: tuple[str, ...]) -> None:
    answers = Answers()
    language_of: dict[int, str] = {}
    instrument(answers, language_of)
    image = png()
    first: dict[tuple[str, str], list[list[float]]] = {}
    full: dict[tuple[str, str], list[list[float]]] = {}
    english: dict[tuple[str, str], int] = {}
    arms = arms_of(languages)
    sequence = order(tuple(arms), rounds)
    jobs = count * sum(command == KLING for command, _ in sequence) + count * len(arms)
    loads = [load()]
    begun = time.perf_counter()
    async with simulator_process({"run_seconds": 600, "workers": jobs}) as sim, \
            running_bot(runcomfy_url=sim.url, members=0, sections=SETTINGS) as bench:
        servers = {arm: Server(bench, arm, language, count) for arm, language in arms.items()}
        language_of.update({server.guild.id: server.language for server in servers.values()})
        await bench.bot.tree.sync()
        await bench.bot.parts.poll_loop.stop()
        for command in COMMANDS:  # off the clock: one round of each, each language
            for language in arms:
                await round_of(bench, servers[language], command, image, answers, "warm")
        for number, (command, language) in enumerate(sequence):
            one_first, one_full, in_english = await round_of(
                bench, servers[language], command, image, answers, str(number))
            first.setdefault((command, language), []).append(one_first)
            full.setdefault((command, language), []).append(one_full)
            english[command, language] = english.get((command, language), 0) + in_english
            if number == len(sequence) // 2:
                loads.append(load())
        started = len(await sim.jobs())
    loads.append(load())
    measured = len(sequence) // len(COMMANDS) // len(arms)
    print(f"{count} commands at once, {measured} rounds of each command in each language "
          f"(a Williams design); jobs started at RunComfy: {started} of {jobs}; "
          f"{time.perf_counter() - begun:.0f} s; load average (1 5 15 min) at the start, "
          f"halfway, the end: {' | '.join(loads)}")
    print(f"{'command':<11} {'language':<8} {'answers':>7} {'in English':>10} "
          f"{'first p50':>9} {'p99*':>7} {'ratio':>6}   {'full p50':>8} {'p99*':>7} "
          f"{'ratio':>6}   first answer's p99 of each round")
    verdicts = []
    for command in COMMANDS:
        reference = (median_p99(first[command, next(iter(arms))]),
                     median_p99(full[command, next(iter(arms))]))
        for language in arms:
            key = (command, language)
            pooled_first = [ms for one in first[key] for ms in one]
            pooled_full = [ms for one in full[key] for ms in one]
            p99 = (median_p99(first[key]), median_p99(full[key]))
            ratios = (p99[0] / reference[0], p99[1] / reference[1])
            each = " ".join(f"{percentile(one, 0.99):.0f}" for one in first[key])
            print(f"/{command:<10} {language:<8} {len(pooled_full):>7} {english[key]:>10} "
                  f"{statistics.median(pooled_first):>9.1f} {p99[0]:>7.1f} {ratios[0]:>6.3f}   "
                  f"{statistics.median(pooled_full):>8.1f} {p99[1]:>7.1f} {ratios[1]:>6.3f}   "
                  f"{each}")
            if language != next(iter(arms)):
                verdicts.append(f"/{command} {language}: first {ratios[0]:.3f} "
                                f"({'met' if ratios[0] <= TARGET else 'NOT MET'}), full "
                                f"{ratios[1]:.3f} ({'met' if ratios[1] <= TARGET else 'NOT MET'})")
    print("p99*: a round's p99, median over the rounds, ms; ratio: against English's, same "
          f"command, same run (target <= {TARGET}):")
    for verdict in verdicts:
        print(f"  {verdict}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--commands", type=int, default=100, help="members of each server")
    parser.add_argument("--rounds", type=int, default=12,
                        help="of each command in each language (a multiple of 6 for three)")
    parser.add_argument("--languages", default=",".join(LANGUAGES),
                        help="Discord locales, the first the reference (an A/A/A run: "
                             "en-US,en-US,en-US)")
    arguments = parser.parse_args()
    asyncio.run(main(arguments.commands, arguments.rounds,
                     tuple(arguments.languages.split(","))))
