"""Footprint: memory and CPU of the bot with 1,000 pending jobs polled every 3 s (targets:
peak RSS <= 120 MB, average CPU <= 10 % of one core).

The simulator runs in a process of its own; this process holds the bot and SimCord (the
simulated Discord). The same minute is measured with the poller stopped and running, and
then the poller alone, without SimCord, so that the bot's own cost shows apart from SimCord's.

    .venv/bin/python -m bench.footprint [--jobs 1000 --seconds 60]
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import tempfile
import time
from pathlib import Path
from typing import cast

from bench.delivery import ask
from bench.harness import Bench, png, running_bot
from bench.remote import TOKEN, simulator_process
from bot.catalog import load_catalog
from bot.delivery import Delivery
from bot.jobs import JobState
from bot.poller import Poller, PollSettings
from bot.runcomfy import RunComfyClient
from bot.store.connect import open_database
from bot.store.jobs import JobStore, NewJob
from bot.store.notices import NoticeStore


def rss_mb() -> float:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


async def measure(bench: Bench, seconds: float) -> tuple[float, float]:
    """Average CPU (% of one core) and peak RSS (MB) over ``seconds`` of real time."""
    cpu, wall, peak = time.process_time(), time.perf_counter(), rss_mb()
    end = wall + seconds
    while time.perf_counter() < end:
        await bench.follow_real_time(1.0)
        peak = max(peak, rss_mb())
    return ((time.process_time() - cpu) / (time.perf_counter() - wall) * 100, peak)


async def poller_alone(url: str, jobs: int, seconds: float) -> tuple[float, float, float]:
    """The same poll, without SimCord: the bot's store, client and poller only (no cards:
    there is no Discord here). RSS at start and peak (MB), and CPU (% of a core), measured
    after one interval of warm-up (the first polls move every job to running)."""
    with tempfile.TemporaryDirectory() as folder:
        db = await open_database(Path(folder) / "alone.sqlite3")
        store = JobStore(db)
        async with RunComfyClient(TOKEN, url) as client:
            model = load_catalog().by_command("kling-2-1")
            body = {"prompt": "a zebra", "image_url": "https://cdn.example/zebra.png"}
            for index in range(jobs):
                submitted = await client.submit(model.id, body)
                job = await store.add(NewJob(1, index % 100, 2, model.id, model.command,
                                             "a zebra", body, None))
                await store.move(job.id, JobState.SUBMITTING)
                await store.move(job.id, JobState.QUEUED, request_id=submitted.request_id,
                                 submitted_at=time.time())
                await store.note(job.id, card_message_id=1)
            poller = Poller(load_catalog(), store, NoticeStore(db, time.time), client,
                            cast(Delivery, None), PollSettings(interval=3.0))
            poller.channels.update = lambda job, news=None: None  # type: ignore[method-assign]
            start = rss_mb()
            end = time.perf_counter() + 3.0 + seconds
            cpu = wall = 0.0
            peak = start
            while (now := time.perf_counter()) < end:
                if not wall and now > end - seconds:
                    cpu, wall = time.process_time(), now
                await poller.tick()
                peak = max(peak, rss_mb())
                await asyncio.sleep(3.0 / 12)
        await db.close()
    return start, peak, (time.process_time() - cpu) / (time.perf_counter() - wall) * 100


async def main(jobs: int, seconds: float) -> None:
    forever = {"workers": jobs, "run_seconds": 100_000}
    async with simulator_process(forever) as sim:  # first, while this process is still small
        alone_start, alone_peak, alone_cpu = await poller_alone(sim.url, jobs, seconds)
    async with simulator_process(forever) as sim, running_bot(runcomfy_url=sim.url) as bench:
        start_rss = rss_mb()
        poller = bench.bot.parts.poller
        await poller.stop()
        channels = [bench.guild.create_text_channel(f"c{i}") for i in range(100)]
        await ask(bench, channels, jobs, png())
        pending = len(await bench.bot.parts.store.open_jobs())
        idle_cpu, idle_peak = await measure(bench, seconds)
        poller.start()
        cpu, peak = await measure(bench, seconds)
    max_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"{pending} pending jobs, poll every 3 s, {seconds:g} s each measure; RSS before the "
          f"bot: {alone_start:.0f} MB alone, {start_rss:.0f} MB with SimCord")
    print(f"{'figure':<48} {'value':>8} {'target':>8}")
    for name, value, target in [
        ("the bot alone: peak RSS (MB)", f"{alone_peak:.0f}", "<= 120"),
        ("the bot alone: RSS growth while polling (MB)", f"{alone_peak - alone_start:.1f}", ""),
        ("the bot alone: average CPU (% of a core)", f"{alone_cpu:.1f}", "<= 10"),
        ("in SimCord: peak RSS, poller running (MB)", f"{peak:.0f}", ""),
        ("in SimCord: peak RSS of the process, ever (MB)", f"{max_rss:.0f}", ""),
        ("in SimCord: RSS growth while polling (MB)", f"{peak - idle_peak:.1f}", ""),
        ("in SimCord: average CPU, poller running (%)", f"{cpu:.1f}", ""),
        ("in SimCord: average CPU, poller stopped (%)", f"{idle_cpu:.1f}", ""),
        ("in SimCord: the poller's own CPU (difference)", f"{cpu - idle_cpu:.1f}", ""),
    ]:
        print(f"{name:<48} {value:>8} {target:>8}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=60)
    arguments = parser.parse_args()
    asyncio.run(main(arguments.jobs, arguments.seconds))
