"""Delivery latency and API economy of the three poll strategies, side by side.

RunComfy (the simulator, ``bench.remote.RunsByDuration``) runs a job as long as the video it
asks for: a 5 s video about 30 s, a 10 s video about 52 s, each times a lognormal factor of
12 %, after 2 to 20 s in its queue. The same bot is run three times at once, one process each
with its own simulator, with ``jobs.poll_strategy`` "planned" (the default), "economy" and
"fixed" (every poll interval, the reference). Each first delivers a warm-up (24 jobs of each
length: the bot learns run times from the jobs it delivered, and from nothing else), then is
asked for the 300 measured jobs (150 of each length, the same jobs with the same run times in
each process) over 30 channels while its poller is stopped and RunComfy's clock paused; once
every process has asked, their clocks resume and their pollers start, together.

Delivery is from the moment the simulator completes a job (its clock, shared with this
process) to the moment the bot has posted the video; calls are the status and result calls
the simulator counted for each job; exactly once: one video message per job in its channel.
ETA error: |the moment the job completed - the ready time the bot set (``jobs.eta_at``) when
it saw the job running|, the bot's clock read as real time at that moment.

Targets: planned p95 <= 0.6 x fixed's at <= 1.0 x its calls per job; economy <= 0.5 x fixed's
calls at <= 1.0 x its p95.

    .venv/bin/python -m bench.delivery [--jobs 300 --channels 30 --warmup 24]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import multiprocessing
import random
import re
import statistics
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from multiprocessing.synchronize import Barrier
from typing import Any

from bench.harness import Bench, percentile, png, polling, real_monotonic, running_bot, slash
from bench.remote import RunsByDuration, SimulatedJob, each_in_a_process, simulator_process
from bot.discord.delivery import Posted
from bot.jobs import TERMINAL, Job, JobState

STRATEGIES = ("planned", "economy", "fixed")
INTERVAL = 3.0
MAX_IN_FLIGHT = 8
COMMAND = "kling-2-1"  # durations 5 and 10
RUN_SECONDS = {5: 30.0, 10: 52.0}  # the simulator's medians: the bot is not told
SPREAD = 0.12
QUEUE_SECONDS = (2.0, 20.0)
VIDEO = re.compile(r"your video is ready \(.*job #(\d+)\)")


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


@dataclass
class Outcome:
    """One strategy's run (sent back from its process)."""

    strategy: str
    warmup: int = 0
    warmup_posted: int = 0
    jobs: int = 0
    posted: int = 0
    exactly_once: int = 0
    latencies: list[float] = field(default_factory=list)
    seen: list[float] = field(default_factory=list)
    work: list[float] = field(default_factory=list)
    calls: list[int] = field(default_factory=list)
    queued: list[float] = field(default_factory=list)
    eta_errors: list[float] = field(default_factory=list)  # signed: predicted - actual, s
    eta_shares: list[float] = field(default_factory=list)  # |error| / run time
    no_eta: int = 0
    start_seen: list[float] = field(default_factory=list)  # started -> seen running, s
    most_in_flight: int = 0
    took: float = 0.0
    cpu: float = 0.0  # of the bot's process (SimCord included) while measured, % of a core
    lags: list[float] = field(default_factory=list)  # SimCord's clock behind real time, s


def waits(count: int) -> list[float]:
    low, high = QUEUE_SECONDS
    return [low + (high - low) * i / max(1, count - 1) for i in range(count)]


def lengths(count: int, seed: int) -> list[int]:
    """Half of each length (5 and 10 s), in a shuffled order."""
    order = [5, 10] * (count // 2) + [5] * (count % 2)
    random.Random(seed).shuffle(order)
    return order


async def ask(bench: Bench, channels: list[Any], requests: list[tuple[str, int]],
              image: bytes) -> None:
    """Slash commands (prompt, duration), fifty at a time, spread over the channels."""
    for first in range(0, len(requests), 50):
        for index in range(first, min(first + 50, len(requests))):
            prompt, seconds = requests[index]
            slash(bench, bench.members[index % len(bench.members)],
                  channels[index % len(channels)], COMMAND,
                  {"prompt": prompt, "image": (f"z{index}.png", image), "duration": seconds})
        with contextlib.suppress(TimeoutError):  # videos being fetched: not SimCord's to wait
            await bench.env.settle(timeout=2.0)
        await bench.catch_up()


async def run(strategy: str, jobs: int, channel_count: int, warmup: int,
              together: Callable[[], Awaitable[object]] | None = None) -> Outcome:
    """One strategy: warm-up, then the measured jobs; moments read from the real clock.
    ``together``: awaited once the measured jobs are asked for, before RunComfy's clock
    moves again (the processes measured side by side start their measures at once)."""
    warm = [(f"warm-up {i}", seconds) for i, seconds in enumerate([5, 10] * warmup)]
    measured = [(f"job {i}", seconds) for i, seconds in enumerate(lengths(jobs, 8))]
    runs = RunsByDuration(RUN_SECONDS, SPREAD, tuple(waits(len(warm)) + waits(jobs)), seed=8)
    outcome = Outcome(strategy, warmup=len(warm), jobs=jobs)
    async with simulator_process({"workers": 10 * jobs}, runs=runs) as sim, running_bot(
            runcomfy_url=sim.url, jobs={"poll_interval": INTERVAL, "poll_strategy": strategy,
                                        "max_concurrent_polls": MAX_IN_FLIGHT}) as bench:
        channels = [bench.guild.create_text_channel(f"c{i}") for i in range(channel_count)]
        posted: dict[int, float] = {}
        posts: Counter[int] = Counter()
        delivery = bench.bot.parts.delivery
        post_video = delivery.post_video

        async def timed(job: Job, *, as_link: bool = False) -> Posted:
            result = await post_video(job, as_link=as_link)
            posted.setdefault(job.id, real_monotonic())
            posts[job.id] += 1
            return result

        delivery.post_video = timed  # type: ignore[method-assign]
        in_flight = InFlight(bench.bot.parts.runcomfy)
        noticed: dict[int, float] = {}
        ended: set[int] = set()
        started: dict[int, tuple[float, float, float | None]] = {}  # real, bot's clock, eta
        store = bench.bot.parts.store
        move = store.move

        async def noting(job_id: int, to: JobState, **kwargs: Any) -> Job | None:
            moved = await move(job_id, to, **kwargs)
            if moved is not None and to is JobState.FETCHED:
                noticed[job_id] = real_monotonic()
            if moved is not None and to in TERMINAL:
                ended.add(job_id)
            if moved is not None and to is JobState.RUNNING:
                started[job_id] = (real_monotonic(), kwargs["started_at"], kwargs["eta_at"])
            return moved

        store.move = noting  # type: ignore[method-assign]
        sim.clock.start()
        await bench.catch_up()
        poller = bench.bot.parts.poller
        await bench.bot.parts.poll_loop.stop()  # the bot's own clock: this one drives it
        async with polling(poller):
            # Its start settles what a crash interrupted (a job being submitted is ended as
            # "outcome unknown"): let it finish before asking.
            await bench.follow_real_time(INTERVAL)
            image = png()
            await ask(bench, channels, warm, image)
            await bench.follow_real_time(200, until=lambda: len(ended) >= len(warm))
        outcome.warmup_posted = len(posted)
        warm_ids = set(ended)
        before = {job.request_id: job for job in await sim.jobs()}
        # The measured jobs are asked for while RunComfy's time stands still and the poller
        # is stopped: then both start at once, as after a restart with 300 jobs pending, and
        # the measure is of polling and delivery, not of answering 300 commands.
        sim.clock.pause()
        await ask(bench, channels, measured, image)
        if together is not None:
            await together()
        sim.clock.resume()
        cpu, wall = time.process_time(), real_monotonic()
        async with polling(poller):
            await bench.follow_real_time(240, until=lambda: len(ended) >= len(warm) + jobs)
        outcome.took = real_monotonic() - wall
        outcome.cpu = (time.process_time() - cpu) / outcome.took * 100
        outcome.most_in_flight = in_flight.most
        outcome.lags = bench.lags
        videos = Counter(int(found.group(1)) for channel in channels
                         for message in channel.history()
                         if (found := VIDEO.search(message.content or "")))
        rows = {job.request_id: job for job in await all_jobs(bench)}
        for sim_job in await sim.jobs():
            job = rows.get(sim_job.request_id)
            if sim_job.request_id in before or job is None or job.id in warm_ids:
                continue
            measure(outcome, sim.clock.absolute, sim_job, job, posted, noticed,
                    started.get(job.id))
            outcome.exactly_once += videos[job.id] == 1 and posts[job.id] == 1
    return outcome


def measure(outcome: Outcome, absolute: Callable[[float], float], sim_job: SimulatedJob,
            job: Job, posted: dict[int, float], noticed: dict[int, float],
            start: tuple[float, float, float | None] | None) -> None:
    """One measured job's figures into ``outcome``."""
    outcome.calls.append(sim_job.status_calls + sim_job.result_calls)
    if sim_job.started_at is not None:
        outcome.queued.append(sim_job.started_at - sim_job.submitted_at)
    if job.id not in posted or sim_job.completed_at is None:
        return
    outcome.posted += 1
    done = absolute(sim_job.completed_at)
    outcome.latencies.append(posted[job.id] - done)
    outcome.seen.append(noticed[job.id] - done)
    outcome.work.append(posted[job.id] - noticed[job.id])
    real, bot_clock, eta = start or (0.0, 0.0, None)
    if start is not None and sim_job.started_at is not None:
        outcome.start_seen.append(real - absolute(sim_job.started_at))
    if eta is None:
        outcome.no_eta += 1
        return
    error = real + (eta - bot_clock) - done
    outcome.eta_errors.append(error)
    outcome.eta_shares.append(abs(error) / sim_job.run_seconds)


async def all_jobs(bench: Bench) -> list[Job]:
    return [Job.from_row(row) for row in await bench.bot.parts.db.fetch("SELECT * FROM jobs")]


def _child(strategy: str, jobs: int, channels: int, warmup: int, barrier: Barrier,
           conn: Connection) -> None:
    conn.send(asyncio.run(run(strategy, jobs, channels, warmup,
                              lambda: asyncio.to_thread(barrier.wait))))


def side_by_side(strategies: tuple[str, ...], jobs: int, channels: int, warmup: int,
                 ) -> dict[str, Outcome]:
    """Every strategy at once, each in a process of its own (with its own simulator); their
    measured phases start together, once every one has asked for its jobs."""
    barrier = multiprocessing.get_context("spawn").Barrier(len(strategies))
    return each_in_a_process(_child, strategies, jobs, channels, warmup, barrier)


def report(outcomes: dict[str, Outcome]) -> None:
    names = list(outcomes)
    print(f"{'figure':<50}" + "".join(f"{name:>10}" for name in names))

    def row(label: str, value: Callable[[Outcome], str]) -> None:
        print(f"{label:<50}" + "".join(f"{value(outcomes[n]):>10}" for n in names))

    row("warm-up jobs delivered before measuring", lambda o: f"{o.warmup_posted}/{o.warmup}")
    row("measured videos posted", lambda o: f"{o.posted}/{o.jobs}")
    row("  exactly once (one video message, one post)", lambda o: f"{o.exactly_once}")
    row("RunComfy queue wait, min-max (s)",
        lambda o: f"{min(o.queued):.0f}-{max(o.queued):.0f}")
    row("completed -> posted, p50 (s)", lambda o: f"{statistics.median(o.latencies):.2f}")
    row("completed -> posted, p95 (s)", lambda o: f"{percentile(o.latencies, 0.95):.2f}")
    row("completed -> posted, max (s)", lambda o: f"{max(o.latencies):.2f}")
    row("  of which: completed -> seen by a poll, p95 (s)",
        lambda o: f"{percentile(o.seen, 0.95):.2f}")
    row("  of which: seen -> posted, p95 (s)", lambda o: f"{percentile(o.work, 0.95):.2f}")
    row("RunComfy calls per job (status + result), mean",
        lambda o: f"{statistics.mean(o.calls):.2f}")
    row("most RunComfy calls in flight", lambda o: f"{o.most_in_flight}")
    row("started at RunComfy -> seen running, p50 (s)",
        lambda o: f"{statistics.median(o.start_seen):.2f}")
    row("started at RunComfy -> seen running, p95 (s)",
        lambda o: f"{percentile(o.start_seen, 0.95):.2f}")
    row("jobs without an ETA when seen running", lambda o: f"{o.no_eta}")
    row("ETA error |finish - eta_at|, median (s)",
        lambda o: f"{statistics.median(abs(e) for e in o.eta_errors):.2f}")
    row("ETA error, p90 (s)", lambda o: f"{percentile([abs(e) for e in o.eta_errors], 0.9):.2f}")
    row("ETA error, median (% of run time)",
        lambda o: f"{statistics.median(o.eta_shares) * 100:.1f}")
    row("ETA error, p90 (% of run time)", lambda o: f"{percentile(o.eta_shares, 0.9) * 100:.1f}")
    row("ETA error signed (eta - finish), median (s)",
        lambda o: f"{statistics.median(o.eta_errors):+.2f}")
    row("SimCord's clock behind real time, p95 / max (s)",
        lambda o: f"{percentile(o.lags, 0.95):.1f}/{max(o.lags):.1f}")
    row("measured phase, real time (s)", lambda o: f"{o.took:.0f}")
    row("CPU of the bot's process (SimCord in it) (%)", lambda o: f"{o.cpu:.1f}")
    if "fixed" not in outcomes:
        return
    fixed = outcomes["fixed"]
    p95 = percentile(fixed.latencies, 0.95)
    calls = statistics.mean(fixed.calls)
    print(f"\n{'against fixed (the reference, same run)':<50}{'ratio':>10}{'target':>10}{'':>9}")
    checks: list[tuple[str, str, Callable[[Outcome], float], float]] = [
        ("planned", "planned p95 / fixed p95", lambda o: percentile(o.latencies, 0.95) / p95,
         0.6),
        ("planned", "planned calls per job / fixed's",
         lambda o: statistics.mean(o.calls) / calls, 1.0),
        ("economy", "economy calls per job / fixed's",
         lambda o: statistics.mean(o.calls) / calls, 0.5),
        ("economy", "economy p95 / fixed p95", lambda o: percentile(o.latencies, 0.95) / p95,
         1.0),
    ]
    for name, label, value, target in checks:
        if name in outcomes:
            ratio = value(outcomes[name])
            print(f"{label:<50}{ratio:>10.2f}{f'<= {target:g}':>10}"
                  f"{'met' if ratio <= target else 'NOT MET':>9}")


def main(strategies: tuple[str, ...], jobs: int, channels: int, warmup: int) -> None:
    print(f"{jobs} jobs (half 5 s, half 10 s videos) in {channels} channels after a warm-up "
          f"of {warmup} of each length in the same bot; RunComfy runs them {RUN_SECONDS[5]:g} "
          f"and {RUN_SECONDS[10]:g} s (lognormal, {SPREAD:.0%}) after {QUEUE_SECONDS[0]:g}-"
          f"{QUEUE_SECONDS[1]:g} s queued; poll interval {INTERVAL:g} s; strategies side by "
          "side, a process each", flush=True)
    report(side_by_side(strategies, jobs, channels, warmup))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--jobs", type=int, default=300)
    parser.add_argument("--channels", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=24, help="finished jobs of each length")
    parser.add_argument("--strategies", default=",".join(STRATEGIES))
    arguments = parser.parse_args()
    main(tuple(arguments.strategies.split(",")), arguments.jobs, arguments.channels,
         arguments.warmup)
