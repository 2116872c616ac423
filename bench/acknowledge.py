"""Time to first response: 100 slash commands arrive at once (target: p99 <= 150 ms).

From the moment each interaction reaches the bot to its first answer to Discord (the defer,
or an immediate refusal): the work the bot does inside Discord's 3 s window.

    .venv/bin/python -m bench.acknowledge [--commands 100]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from typing import Any

from simcord import interactions as payloads  # what an actor's slash() sends, built at once
from simcord.actors import _resolve_visible_command
from simcord.enums import InteractionType
from simcord.http.client import FakeWebhookAdapter

from bench.harness import percentile, png, running_bot
from bench.remote import simulator_process


async def main(count: int) -> None:
    answered: dict[str, float] = {}
    original = FakeWebhookAdapter.request

    async def timed(self: Any, route: Any, *args: Any, **kwargs: Any) -> Any:
        result = await original(self, route, *args, **kwargs)
        path = str(getattr(route, "url", ""))
        if path.endswith("/callback"):
            answered.setdefault(path.split("/interactions/")[1].split("/")[0],
                                time.perf_counter())
        return result

    FakeWebhookAdapter.request = timed  # type: ignore[method-assign]
    image = png()
    async with simulator_process({"run_seconds": 600}) as sim, running_bot(
            runcomfy_url=sim.url, members=count) as bench:
        channel = bench.guild.create_text_channel("videos")
        arrived: dict[str, float] = {}
        backend = bench.env.backend
        for index, member in enumerate(bench.members):
            root = _resolve_visible_command(member, channel.id, "kling-2-1", 1)
            options, resolved = payloads.build_options(
                member, "kling-2-1", root, {"prompt": f"a zebra {index}",
                                            "image": (f"z{index}.png", image)},
                channel_id=channel.id)
            data = {"id": root["id"], "name": root["name"], "type": 1, "options": options,
                    "resolved": resolved}
            record, payload = payloads.base_payload(
                backend, type=InteractionType.APPLICATION_COMMAND, channel_id=channel.id,
                guild_id=bench.guild.id, user_id=member.id, data=data)
            arrived[str(record.id)] = time.perf_counter()
            backend.emit("INTERACTION_CREATE", payload)  # all arrive before any is handled
        await bench.env.settle()
        latencies = [(answered[i] - arrived[i]) * 1000 for i in arrived if i in answered]
        queued = len(await sim.jobs())
    print(f"{'commands':<10} {'answered':>9} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} "
          f"{'target p99':>11} {'jobs started':>13}")
    print(f"{count:<10} {len(latencies):>9} {statistics.median(latencies):>8.1f} "
          f"{percentile(latencies, 0.99):>8.1f} {max(latencies):>8.1f} {'<= 150':>11} "
          f"{queued:>13}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--commands", type=int, default=100)
    asyncio.run(main(parser.parse_args().commands))
