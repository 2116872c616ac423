"""Time to first response: 100 slash commands arrive at once, against a defer-first reference
in the same bot (target: p99 <= 1.0 x the reference's).

From the moment each interaction reaches the bot to its first answer to Discord (the defer,
or an immediate refusal): the work the bot does inside Discord's 3 s window.

The reference is a second command with the same options (``/defer-first``, a copy of
``/kling-2-1``) in the same bot, on the same SimCord, whose callback defers before doing
anything and then does exactly what ``/kling-2-1`` does (its checks, the job, the answer):
the only difference is what comes before the defer. Rounds of 100 of one command and 100 of
the other alternate (ABBA...), the poller stopped so that the jobs piling up at RunComfy do not
add polls to later rounds.

    .venv/bin/python -m bench.acknowledge [--commands 100 --rounds 12]

The target is judged on each round's p99 (the p99 of 100 simultaneous commands), its median
over the rounds: the p99 pooled over every round is the slowest round's, and one slow round
(the machine busy elsewhere for a moment) decides it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import time
from typing import Any, cast

import discord

from bench.harness import Bench, first_answer_of, hear_answers, percentile, png, running_bot, slash
from bench.remote import simulator_process
from bot.catalog import ModelSpec
from cogs.generate import Generate, model_command

COMMAND = "kling-2-1"
REFERENCE = "defer-first"
WARM_UP = 2  # rounds of each, off the clock (the first measured round was the slowest)


def add_reference(bench: Bench) -> None:
    """``/defer-first``: ``/kling-2-1``'s options, deferred before anything else."""
    model = bench.bot.catalog.by_command(COMMAND)
    assert model is not None
    generate = cast(Generate, bench.bot.get_cog("Generate"))

    async def defer_first(interaction: discord.Interaction, _spec: ModelSpec,
                          values: dict[str, Any]) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        await generate.generate(interaction, model, values)  # it sees the defer is done

    bench.bot.tree.add_command(model_command(model.model_copy(update={"command": REFERENCE}),
                                             defer_first))


async def round_of(bench: Bench, channel: Any, command: str, image: bytes,
                   answered: dict[str, float], tag: str) -> list[float]:
    """``command`` from every member at once; ms from arrival to first answer, each."""
    arrived: dict[str, float] = {}
    for index, member in enumerate(bench.members):
        options = {"prompt": f"a zebra {tag} {index}", "image": (f"z{index}.png", image)}
        arrived[slash(bench, member, channel, command, options)] = time.perf_counter()
    # Every command handled (answered, its job started). Settling also waits for the timers
    # due within its timeout (aiohttp's 15 s keep-alive among them): short ones, repeated.
    for _ in range(12):
        with contextlib.suppress(TimeoutError):
            await bench.env.settle(timeout=10)
            break
    return [(answered[i] - arrived[i]) * 1000 for i in arrived if i in answered]


async def main(count: int, rounds: int) -> None:
    answered: dict[str, float] = {}

    def heard(route: Any, _payload: Any, _multipart: Any) -> None:
        if (interaction := first_answer_of(route)) is not None:
            answered.setdefault(interaction, time.perf_counter())

    hear_answers(heard)
    image = png()
    latencies: dict[str, list[list[float]]] = {COMMAND: [], REFERENCE: []}
    jobs = 2 * count * (rounds + WARM_UP)
    async with simulator_process({"run_seconds": 600, "workers": jobs}) as sim, \
            running_bot(runcomfy_url=sim.url, members=count) as bench:
        add_reference(bench)
        await bench.bot.tree.sync()
        await bench.bot.parts.poll_loop.stop()
        channel = bench.guild.create_text_channel("videos")
        for number, command in enumerate([COMMAND, REFERENCE] * WARM_UP):  # off the clock
            await round_of(bench, channel, command, image, answered, f"warm {number}")
        order = [COMMAND, REFERENCE, REFERENCE, COMMAND] * ((rounds + 1) // 2)
        for number, command in enumerate(order[: 2 * rounds]):
            latencies[command].append(
                await round_of(bench, channel, command, image, answered, str(number)))
        started = len(await sim.jobs())
    print(f"{count} commands at once, {rounds} rounds of each, alternating; jobs started at "
          f"RunComfy: {started} of {jobs}")
    print(f"{'command':<24} {'answered':>9} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} "
          f"{'rounds p99, median':>17}  p99 of each round")
    p99: dict[str, float] = {}
    typical: dict[str, float] = {}
    for command, each in latencies.items():
        pooled = [ms for one in each for ms in one]
        p99[command] = percentile(pooled, 0.99)
        typical[command] = statistics.median(percentile(one, 0.99) for one in each)
        rounds_p99 = " ".join(f"{percentile(one, 0.99):.0f}" for one in each)
        label = f"/{command}" + (" (reference)" if command == REFERENCE else " (the bot)")
        print(f"{label:<24} {len(pooled):>9} {statistics.median(pooled):>8.1f} "
              f"{p99[command]:>8.1f} {max(pooled):>8.1f} {typical[command]:>17.1f}  "
              f"{rounds_p99}")
    ratio = typical[COMMAND] / typical[REFERENCE]
    print(f"a round's p99, median over rounds, the bot / the reference: {ratio:.2f} (target "
          f"<= 1.0: {'met' if ratio <= 1.0 else 'NOT MET'}); pooled p99 of all rounds: "
          f"{p99[COMMAND] / p99[REFERENCE]:.2f} (one slow round decides it)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--commands", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=12, help="of each command")
    arguments = parser.parse_args()
    asyncio.run(main(arguments.commands, arguments.rounds))
