"""Other channels while a video is being fitted: the real bot (discord.py in SimCord, against
the RunComfy simulator in a process of its own, ``bench.remote``) answering slash commands and
delivering videos, with its own ``Fitter`` (``delivery.encode_workers = 1``) fitting a large
clip meanwhile, against the same with nothing fitting, in the same run.

Phases alternate: idle, fit, fit, idle, ... In each, with RunComfy's clock paused and the
poller stopped, ``--rounds`` rounds of ``--commands`` slash commands (``/kling-2-1``) arrive at
once, spread over ``--channels`` channels: each command's acknowledgement is the time from its
arrival to the bot's first answer to Discord (as ``bench.acknowledge`` measures it). Then
RunComfy's clock and the poller (every ``--interval`` s, the "fixed" strategy: no learning
from one phase to the next) start together and the jobs those commands started are delivered:
their run times are spread evenly over ``RUN_SECONDS``, the same in every phase (a job's run
time is taken from its number in the phase, not from the order of submits). Delivery is from
the moment the simulator completes a job to the moment the bot has posted its video (as
``bench.delivery`` measures it), and, of that, from the poll that saw it to the post.

In the fit phases, the bot's ``Fitter`` (the one its delivery uses: a spawned worker, set up
as ``bot.fitting`` sets its workers up) fits the clip (``bot.simulator.clips.make_clip``: by
default 4K, 10 s, 120 MB, into 10 MiB) over and over from ``SPAWN_SECONDS`` before the first
command to after the last video is posted; then ``Fitter.close`` kills the worker, so that an
idle phase has nothing fitting (the next fit phase spawns another). Phases are short and many
(the machine's other load drifts: both kinds see as much of it). A warm-up phase and a fit
of a small clip come first, off the record.

    .venv/bin/python -m bench.fitting_load [--clip 4k|1080p] [--pairs 6] [--commands 50]
                                          [--rounds 2] [--channels 10] [--keep DIR]

Targets (the issue's): while fitting, another channel's delivery p95 (pooled over the phases
of each kind) and the commands' acknowledgement p99 within 1.1 x the idle phases'. The
acknowledgement is judged as ``bench.acknowledge`` judges it, on each round's p99 (of the
commands that arrived at once), its median over the rounds of each kind: the p99 pooled over
every round is the slowest round's, decided by one moment of the machine being busy elsewhere
(it is printed too).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.fitting import folder_for
from bench.harness import (
    Bench,
    first_answer_of,
    hear_answers,
    percentile,
    png,
    polling,
    real_monotonic,
    running_bot,
    slash,
)
from bench.remote import RunsByDuration, simulator_process
from bench.store_lifecycle import Others
from bot import fitting
from bot.discord.delivery import Posted
from bot.fitting import Fitter
from bot.jobs import Job, JobState
from bot.simulator import Plan
from bot.simulator.clips import make_clip

MIB = 1024 * 1024
SLACK = 1.1  # while fitting, times idle
COMMAND = "kling-2-1"
RUN_SECONDS = (2.0, 8.0)  # the jobs' run times, spread evenly over this range
CLIPS = {"4k": (3840, 2160, 10.0, 120_000_000), "1080p": (1920, 1080, 10.0, 50_000_000)}
LIMIT = 10 * MIB
SPAWN_SECONDS = 3.0
NUMBERED = re.compile(r"#(\d+) of (\d+)")


@dataclass(frozen=True)
class SpreadRuns(RunsByDuration):
    """A job's run time from its prompt's number ("... #n of N"): evenly over ``RUN_SECONDS``,
    the same for the n-th job of every phase; no queue wait."""

    def plan(self, body: dict[str, Any], index: int, given: Plan) -> Plan:
        found = NUMBERED.search(str(body.get("prompt", "")))
        number, count = (int(found[1]), int(found[2])) if found else (0, 1)
        low, high = RUN_SECONDS
        run = low + (high - low) * number / max(1, count - 1)
        return Plan(outcome=given.outcome, error=given.error, run_seconds=run,
                    queue_seconds=0.0)


@dataclass
class Phase:
    kind: str  # "idle" or "fit"
    rounds: list[list[float]] = field(default_factory=list)  # acknowledgements, ms, per round
    delivered: list[float] = field(default_factory=list)  # completed -> posted, s
    work: list[float] = field(default_factory=list)  # seen by a poll -> posted, s
    jobs: int = 0
    fits: list[tuple[str, float]] = field(default_factory=list)  # status, wall s
    seconds: float = 0.0
    others: float = 0.0  # cores of other processes busy meanwhile

    @property
    def acks(self) -> list[float]:
        return [ms for one in self.rounds for ms in one]


class Fitting:
    """The bot's ``Fitter`` fitting ``source`` over and over until ``stop``, which stops the
    fit under way with the Fitter's own ``close`` (its worker killed: that fit ends
    ``FAILED``; the next fit starts a new worker), so that nothing fits after the phase."""

    def __init__(self, fitter: Fitter, source: Path) -> None:
        self.fitter, self.source = fitter, source
        self.fits: list[tuple[str, float]] = []
        self._stopping = False
        self._task: asyncio.Task[None] | None = None

    async def _loop(self) -> None:
        while not self._stopping:
            started = real_monotonic()
            outcome = await self.fitter.fit(self.source, LIMIT)
            status = "stopped" if self._stopping else str(outcome.status)
            self.fits.append((status, real_monotonic() - started))
            if outcome.path is not None:
                await asyncio.to_thread(outcome.path.unlink, missing_ok=True)

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop())

    async def stop(self) -> None:
        self._stopping = True
        await self.fitter.close()
        if self._task is not None:
            await self._task


async def acknowledged(bench: Bench, channels: list[Any], image: bytes,
                       answered: dict[str, float], phase: int, rounds: int, count: int,
                       ) -> list[list[float]]:
    """``rounds`` rounds of ``count`` commands at once; ms from arrival to first answer."""
    each = []
    total = rounds * count
    for round_number in range(rounds):
        arrived: dict[str, float] = {}
        for index, member in enumerate(bench.members[:count]):
            number = round_number * count + index
            options = {"prompt": f"a zebra, phase {phase} #{number} of {total}",
                       "image": (f"z{index}.png", image)}
            arrived[slash(bench, member, channels[number % len(channels)], COMMAND,
                          options)] = real_monotonic()
        for _ in range(12):  # as bench.acknowledge: short timers waited out, repeatedly
            with contextlib.suppress(TimeoutError):
                await bench.env.settle(timeout=10)
                break
        each.append([(answered[i] - arrived[i]) * 1000 for i in arrived if i in answered])
    return each


async def run_phase(bench: Bench, sim: Any, kind: str, number: int, source: Path,
                    channels: list[Any], image: bytes, answered: dict[str, float],
                    posted: dict[int, float], noticed: dict[int, float],
                    arguments: argparse.Namespace) -> Phase:
    phase = Phase(kind)
    others = Others({os.getpid()})
    started = real_monotonic()
    fitter = bench.bot.parts.delivery.fitter
    work = Fitting(fitter, source)
    if kind == "fit":
        work.start()
        await asyncio.sleep(SPAWN_SECONDS)  # a worker spawned, fitting before the first command
    known = {job.request_id for job in await sim.jobs()}
    sim.clock.pause()
    phase.rounds = await acknowledged(bench, channels, image, answered, number,
                                      arguments.rounds, arguments.commands)
    await bench.catch_up()
    ours = [job for job in await sim.jobs() if job.request_id not in known]
    phase.jobs = len(ours)
    rows = {Job.from_row(row).request_id: Job.from_row(row)
            for row in await bench.bot.parts.db.fetch("SELECT * FROM jobs")}
    ids = {rows[job.request_id].id for job in ours if job.request_id in rows}
    sim.clock.resume()
    poller = bench.bot.parts.poller
    async with polling(poller):
        await bench.follow_real_time(RUN_SECONDS[1] + 60,
                                     until=lambda: ids <= posted.keys())
    for job in await sim.jobs():
        if job.request_id in known or job.completed_at is None:
            continue
        row = rows.get(job.request_id)
        if row is None or row.id not in posted:
            continue
        done = sim.clock.absolute(job.completed_at)
        phase.delivered.append(posted[row.id] - done)
        if row.id in noticed:
            phase.work.append(posted[row.id] - noticed[row.id])
    if kind == "fit":
        await work.stop()
        phase.fits = work.fits
    phase.seconds = real_monotonic() - started
    phase.others = others.cores()
    return phase


async def main(arguments: argparse.Namespace, source: Path, small: Path) -> list[Phase]:
    answered: dict[str, float] = {}

    def heard(route: Any, _payload: Any, _multipart: Any) -> None:
        if (interaction := first_answer_of(route)) is not None:
            answered.setdefault(interaction, real_monotonic())

    hear_answers(heard)
    image = png()
    per_phase = arguments.rounds * arguments.commands
    order = ["idle", "fit", "fit", "idle"] * ((arguments.pairs + 1) // 2)
    phases: list[Phase] = []
    runs = SpreadRuns({5: 1.0}, 0.0)
    async with simulator_process({"workers": 4 * per_phase * (2 * arguments.pairs + 1)},
                                 runs=runs) as sim, \
            running_bot(runcomfy_url=sim.url, members=arguments.commands,
                        jobs={"poll_interval": arguments.interval,
                              "poll_strategy": "fixed"}) as bench:
        fitter = bench.bot.parts.delivery.fitter
        if fitter.workers != 1:
            raise SystemExit(f"the bot's Fitter has {fitter.workers} workers, not 1")
        fitter.time_limit = 900.0  # a long fit of the clip is measured, not abandoned
        await bench.bot.parts.poll_loop.stop()
        channels = [bench.guild.create_text_channel(f"c{i}") for i in range(arguments.channels)]
        posted: dict[int, float] = {}
        noticed: dict[int, float] = {}
        delivery = bench.bot.parts.delivery
        post_video = delivery.post_video

        async def timed_post(job: Job, *, as_link: bool = False) -> Posted:
            result = await post_video(job, as_link=as_link)
            posted.setdefault(job.id, real_monotonic())
            return result

        delivery.post_video = timed_post  # type: ignore[method-assign]
        store = bench.bot.parts.store
        move = store.move

        async def noting(job_id: int, to: JobState, **kwargs: Any) -> Job | None:
            moved = await move(job_id, to, **kwargs)
            if moved is not None and to is JobState.FETCHED:
                noticed.setdefault(job_id, real_monotonic())
            return moved

        store.move = noting  # type: ignore[method-assign]
        warm = await fitter.fit(small, (await asyncio.to_thread(small.stat)).st_size // 2)
        if warm.path is not None:
            await asyncio.to_thread(warm.path.unlink, missing_ok=True)
        sim.clock.start()
        await bench.catch_up()
        # A warm-up phase off the record: the first commands and deliveries are the slowest.
        await run_phase(bench, sim, "idle", 0, source, channels, image, answered, posted,
                        noticed, argparse.Namespace(**{**vars(arguments), "rounds": 1}))
        for number, kind in enumerate(order[: 2 * arguments.pairs], start=1):
            phase = await run_phase(bench, sim, kind, number, source, channels, image,
                                    answered, posted, noticed, arguments)
            fits = ", ".join(f"{status} {wall:.1f} s" for status, wall in phase.fits)
            print(f"  {kind}: {phase.seconds:.1f} s, {phase.jobs} jobs, "
                  f"{len(phase.delivered)} delivered; ack p99 "
                  f"{percentile(phase.acks, 0.99):.1f} ms, delivery p95 "
                  f"{percentile(phase.delivered, 0.95):.2f} s"
                  + (f"; fits: {fits}" if fits else ""), flush=True)
            phases.append(phase)
    return phases


def report(phases: list[Phase]) -> dict[str, bool]:
    print(f"\n{'phase':<6} {'s':>5} {'others':>6} {'jobs':>5} {'posted':>6} {'ack p50':>8}"
          f" {'p99':>7} {'max':>7} {'rnd p99':>8} {'dlv p50':>8} {'p95':>6} {'max':>6}"
          f" {'work p95':>8} {'fits (s)':>s}")
    for phase in phases:
        fits = " ".join(f"{wall:.1f}" for _, wall in phase.fits)
        print(f"{phase.kind:<6} {phase.seconds:>5.1f} {phase.others:>6.2f} {phase.jobs:>5}"
              f" {len(phase.delivered):>6} {statistics.median(phase.acks):>8.1f}"
              f" {percentile(phase.acks, 0.99):>7.1f} {max(phase.acks):>7.1f}"
              f" {statistics.median(percentile(one, 0.99) for one in phase.rounds):>8.1f}"
              f" {statistics.median(phase.delivered):>8.2f}"
              f" {percentile(phase.delivered, 0.95):>6.2f} {max(phase.delivered):>6.2f}"
              f" {percentile(phase.work, 0.95) * 1000:>6.0f}ms {fits}")
    pooled: dict[str, Phase] = {}
    for phase in phases:
        into = pooled.setdefault(phase.kind, Phase(phase.kind))
        into.rounds += phase.rounds
        into.delivered += phase.delivered
        into.work += phase.work
        into.jobs += phase.jobs
        into.fits += phase.fits
    idle, busy = pooled["idle"], pooled["fit"]

    def rounds_p99(phase: Phase) -> float:
        return statistics.median(percentile(one, 0.99) for one in phase.rounds)

    figures = [
        ("delivery completed -> posted p95 (s)", percentile(idle.delivered, 0.95),
         percentile(busy.delivered, 0.95), True),
        ("  of which seen by a poll -> posted p95 (s)", percentile(idle.work, 0.95),
         percentile(busy.work, 0.95), False),
        ("acknowledgement p99, pooled (ms)", percentile(idle.acks, 0.99),
         percentile(busy.acks, 0.99), False),
        ("acknowledgement, a round's p99, median (ms)", rounds_p99(idle), rounds_p99(busy),
         True),
        ("acknowledgement p50 (ms)", statistics.median(idle.acks),
         statistics.median(busy.acks), False),
    ]
    print(f"\nwhile fitting against idle (pooled over the phases of each kind); target <= {SLACK}")
    print(f"{'figure':<46} {'idle':>8} {'fitting':>8} {'ratio':>6}  verdict")
    verdicts = {}
    for label, base, loaded, judged in figures:
        ratio = loaded / base if base else float("inf")
        verdict = ("met" if ratio <= SLACK else "NOT MET") if judged else ""
        if judged:
            verdicts[label.strip()] = ratio <= SLACK
        print(f"{label:<46} {base:>8.3f} {loaded:>8.3f} {ratio:>6.2f}  {verdict}")
    statuses = {status for status, _ in busy.fits}
    print(f"fits while measured: {len(busy.fits)} ({', '.join(sorted(statuses))}), wall "
          f"{', '.join(f'{wall:.1f}' for _, wall in busy.fits)} s")
    return verdicts


def clips(folder: Path, which: str) -> tuple[Path, Path]:
    width, height, seconds, size = CLIPS[which]
    source = folder / f"clip-{width}x{height}-{seconds:g}s-{size // 1_000_000}MB.mp4"
    if not source.exists():
        started = time.perf_counter()
        make_clip(source, seconds=seconds, width=width, height=height, audio=True,
                  target_bytes=size)
        print(f"clip {source.name}: {source.stat().st_size / 1e6:.1f} MB in"
              f" {time.perf_counter() - started:.0f} s", flush=True)
    small = folder / "small.mp4"
    if not small.exists():
        make_clip(small, seconds=1, width=320, height=240, audio=True, target_bytes=300_000)
    return source, small


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=" ".join(__doc__.split("\n\n")[0].split()))
    parser.add_argument("--clip", choices=sorted(CLIPS), default="4k")
    parser.add_argument("--pairs", type=int, default=6, help="idle and fit phases of each")
    parser.add_argument("--commands", type=int, default=50, help="at once, a round")
    parser.add_argument("--rounds", type=int, default=2, help="of commands, a phase")
    parser.add_argument("--channels", type=int, default=10)
    parser.add_argument("--interval", type=float, default=1.0, help="the poll interval, s")
    parser.add_argument("--keep", type=Path, help="make (and reuse) the clips here")
    parsed = parser.parse_args()
    with folder_for(parsed.keep, "bench-fitting-load-") as where:
        clip, tiny = clips(where, parsed.clip)
        print(f"{parsed.pairs} pairs of phases (idle, fit, fit, idle); {parsed.rounds} rounds"
              f" of {parsed.commands} commands over {parsed.channels} channels a phase, their"
              f" jobs run {RUN_SECONDS[0]:g}-{RUN_SECONDS[1]:g} s, polled every"
              f" {parsed.interval:g} s; fitting {clip.name} into {LIMIT // MIB} MiB"
              f" (x264 preset {fitting.PRESET}); {os.cpu_count()} cores", flush=True)
        measured = asyncio.run(main(parsed, clip, tiny))
        results = report(measured)
    for name, met in results.items():
        print(f"target {name} <= {SLACK} x idle: {'met' if met else 'NOT MET'}")
