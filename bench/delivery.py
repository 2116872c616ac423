"""Delivery latency and API economy: 1,000 jobs across 100 channels.

From the moment RunComfy (the simulator) completes a job to the moment its video is posted
(target: p95 <= poll interval + 0.5 s); status calls per job (target: at most
ceil(run time / poll interval) + 2) and the most calls in flight (target: the configured
limit).

    .venv/bin/python -m bench.delivery [--jobs 1000 --channels 100]
"""

from __future__ import annotations

import argparse
import asyncio
import math
import random
import statistics
import time
from typing import Any

from simcord import interactions as payloads  # what an actor's slash() sends, built at once
from simcord.actors import _resolve_visible_command
from simcord.enums import InteractionType

from bench.harness import Bench, percentile, png, running_bot
from bench.remote import simulator_process
from bot.delivery import Posted
from bot.jobs import Job, JobState
from bot.simulator import Plan

INTERVAL = 3.0
MAX_IN_FLIGHT = 8


class InFlight:
    """Counts the bot's calls to RunComfy under way at once (status and result)."""

    def __init__(self, client: Any) -> None:
        self.now = self.most = 0
        for name in ("status", "result"):
            setattr(client, name, self._counted(getattr(client, name)))

    def _counted(self, call: Any) -> Any:
        async def counted(*args: Any, **kwargs: Any) -> Any:
            self.now += 1
            self.most = max(self.most, self.now)
            try:
                return await call(*args, **kwargs)
            finally:
                self.now -= 1
        return counted


async def ask(bench: Bench, channels: list[Any], count: int, image: bytes) -> None:
    """``count`` slash commands, fifty at a time, spread over the channels."""
    backend = bench.env.backend
    for first in range(0, count, 50):
        for index in range(first, min(first + 50, count)):
            member = bench.members[index % len(bench.members)]
            channel = channels[index % len(channels)]
            root = _resolve_visible_command(member, channel.id, "kling-2-1", 1)
            options, resolved = payloads.build_options(
                member, "kling-2-1", root, {"prompt": f"job {index}",
                                            "image": (f"z{index}.png", image)},
                channel_id=channel.id)
            _, payload = payloads.base_payload(
                backend, type=InteractionType.APPLICATION_COMMAND, channel_id=channel.id,
                guild_id=bench.guild.id, user_id=member.id,
                data={"id": root["id"], "name": root["name"], "type": 1, "options": options,
                      "resolved": resolved})
            backend.emit("INTERACTION_CREATE", payload)
        await bench.env.settle()


async def run(jobs: int, channel_count: int) -> list[tuple[str, str, str]]:
    """The figures, with RunComfy's and the bot's moments both read from ``time.monotonic``."""
    rng = random.Random(8)
    runs = [rng.uniform(3, 12) for _ in range(jobs)]
    plans = [Plan(run_seconds=r) for r in runs]
    async with simulator_process({"workers": jobs}, plans) as sim, running_bot(
            runcomfy_url=sim.url, jobs={"poll_interval": INTERVAL,
                                        "max_concurrent_polls": MAX_IN_FLIGHT}) as bench:
        channels = [bench.guild.create_text_channel(f"c{i}") for i in range(channel_count)]
        posted: dict[int, float] = {}
        delivery = bench.bot.parts.delivery
        post_video = delivery.post_video

        async def timed(job: Job, *, as_link: bool = False) -> Posted:
            result = await post_video(job, as_link=as_link)
            posted[job.id] = time.monotonic()
            return result

        delivery.post_video = timed  # type: ignore[method-assign]
        in_flight = InFlight(bench.bot.parts.runcomfy)
        noticed: dict[int, float] = {}
        store = bench.bot.parts.store
        move = store.move

        async def noting(job_id: int, to: JobState, **kwargs: Any) -> Job | None:
            moved = await move(job_id, to, **kwargs)
            if moved is not None and to is JobState.FETCHED:
                noticed[job_id] = time.monotonic()
            return moved

        store.move = noting  # type: ignore[method-assign]
        poller = bench.bot.parts.poller
        await poller.stop()  # 1,000 jobs pending when the poller starts, as after a restart
        await ask(bench, channels, jobs, png())
        sim.clock.start()  # RunComfy's time starts now, for every job at once
        started = time.perf_counter()
        poller.start()
        await bench.follow_real_time(max(runs) + 30, until=lambda: len(posted) >= jobs)
        took = time.perf_counter() - started
        rows = {job.request_id: job for job in await all_jobs(bench)}
        latencies, waits, work, calls_per_job, over_budget = [], [], [], [], 0
        for sim_job in await sim.jobs():
            job = rows[sim_job.request_id]
            if job.id in posted and sim_job.completed_at is not None:
                done = sim.clock.absolute(sim_job.completed_at)
                latencies.append(posted[job.id] - done)
                waits.append(noticed[job.id] - done)
                work.append(posted[job.id] - noticed[job.id])
            calls = sim_job.status_calls + sim_job.result_calls
            calls_per_job.append(calls)
            over_budget += calls > math.ceil(sim_job.run_seconds / INTERVAL) + 2
    return [
        ("videos posted", f"{len(posted)}", f"{jobs}"),
        ("completed -> posted, p50 (s)", f"{statistics.median(latencies):.2f}", ""),
        ("completed -> posted, p95 (s)", f"{percentile(latencies, 0.95):.2f}",
         f"<= {INTERVAL + 0.5:g}"),
        ("completed -> posted, max (s)", f"{max(latencies):.2f}", ""),
        ("  of which: completed -> seen by a poll, p95 (s)", f"{percentile(waits, 0.95):.2f}",
         ""),
        ("  of which: seen -> posted, p95 (s)", f"{percentile(work, 0.95):.2f}", ""),
        ("RunComfy calls per job (status + result), mean",
         f"{statistics.mean(calls_per_job):.2f}", ""),
        ("jobs over ceil(run / interval) + 2 calls", f"{over_budget}", "0"),
        ("most RunComfy calls in flight", f"{in_flight.most}", f"<= {MAX_IN_FLIGHT}"),
        ("all videos posted after (s, real time)", f"{took:.1f}", ""),
    ]


async def main(jobs: int, channel_count: int) -> None:
    print(f"{jobs} jobs in {channel_count} channels, run times 3-12 s, poll every "
          f"{INTERVAL:g} s")
    print(f"{'figure':<48} {'value':>8} {'target':>8}")
    for name, value, target in await run(jobs, channel_count):
        print(f"{name:<48} {value:>8} {target:>8}")


async def all_jobs(bench: Bench) -> list[Job]:
    return [Job.from_row(row) for row in await bench.bot.parts.db.fetch("SELECT * FROM jobs")]


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--channels", type=int, default=100)
    arguments = parser.parse_args()
    asyncio.run(main(arguments.jobs, arguments.channels))
