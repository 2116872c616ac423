"""Footprint: memory and CPU of the bot with 1,000 pending jobs polled every 3 s (targets:
peak RSS <= 120 MB, average CPU <= 10 % of one core).

The simulator runs in a process of its own; this process holds the bot and SimCord (the
simulated Discord). The same minute is measured twice, with the poller stopped and running,
so that the poller's own cost shows apart from SimCord's.

    .venv/bin/python -m bench.footprint [--jobs 1000 --seconds 60]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import resource
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator

import aiohttp

from bench.delivery import ask
from bench.harness import TOKEN, Bench, png, running_bot
from bot.simulator import SimulatorConfig


def rss_mb() -> float:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


@contextlib.asynccontextmanager
async def simulator_process(jobs: int) -> AsyncIterator[str]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    process = subprocess.Popen(  # noqa: S603, ASYNC220 - our own module, started once
        [sys.executable, "-m", "bot.simulator", "--port", str(port), "--token", TOKEN,
         "--workers", str(jobs), "--run-seconds", "100000"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        async with aiohttp.ClientSession() as session:
            for _ in range(100):
                with contextlib.suppress(aiohttp.ClientError):
                    async with session.get(f"{url}/files/none.mp4"):
                        break
                await asyncio.sleep(0.1)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


async def measure(bench: Bench, seconds: float) -> tuple[float, float]:
    """Average CPU (% of one core) and peak RSS (MB) over ``seconds`` of real time."""
    cpu, wall, peak = time.process_time(), time.perf_counter(), rss_mb()
    end = wall + seconds
    while time.perf_counter() < end:
        await bench.follow_real_time(1.0)
        peak = max(peak, rss_mb())
    return ((time.process_time() - cpu) / (time.perf_counter() - wall) * 100, peak)


async def main(jobs: int, seconds: float) -> None:
    async with simulator_process(jobs) as url, running_bot(
        sim=SimulatorConfig(), jobs={"poll_interval": 3.0}, runcomfy_url=url,
    ) as bench:
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
    print(f"{pending} pending jobs, poll every 3 s, {seconds:g} s each way; RSS at start "
          f"{start_rss:.0f} MB")
    print(f"{'figure':<46} {'value':>8} {'target':>8}")
    for name, value, target in [
        ("peak RSS, poller running (MB)", f"{peak:.0f}", "<= 120"),
        ("peak RSS of the process, ever (MB)", f"{max_rss:.0f}", ""),
        ("average CPU, poller running (% of a core)", f"{cpu:.1f}", "<= 10"),
        ("average CPU, poller stopped (% of a core)", f"{idle_cpu:.1f}", ""),
        ("the poller's own CPU (difference)", f"{cpu - idle_cpu:.1f}", ""),
        ("RSS growth while polling (MB)", f"{peak - idle_peak:.1f}", ""),
    ]:
        print(f"{name:<46} {value:>8} {target:>8}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=60)
    arguments = parser.parse_args()
    asyncio.run(main(arguments.jobs, arguments.seconds))
