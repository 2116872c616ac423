"""The bot at Discord's scale beside the bot a user would otherwise write (``bench.minimal_bot``),
in the same run: 100,000 guilds (by default) on Discord's 2,500 guilds a shard, IDENTIFY paced
as Discord paces it (one every 5 s with ``max_concurrency`` 1, across every process: an early
one gets an invalid session and discord.py identifies again), served by 4 processes on one
PostgreSQL (the bot) and by 4 processes on a SQLite file each (the reference).

For each program, one after the other (``--side-by-side``: the full runs at once, each
program on a stand-in of its own, the admission stretches at the same time and the rest of the
jobs in turn), the same processes and shards:

- *base*: a stand-in with one guild per shard (the process itself: the fixed base);
- *full*: the stand-in with every guild; then ``/kling-2-1`` at ``--rate`` commands a second
  for ``--admit-seconds`` (CPU per admitted command: every bot process's CPU from the first
  command to the last answer, the poll task included, over the commands answered "Job #n is
  queued"), then more at ``--fill-rate`` until each process holds ``--pending`` jobs, which
  RunComfy's simulator keeps queued (one simulator process per bot process: RunComfy's queue
  is not what is measured).

The base runs take IDENTIFYs unpaced (their memory is what they are for; discord.py still
waits 5 s between the shards of one process). RSS is ``VmRSS`` 3 s after ready (every shard
answered a probe ``/kling-2-1`` sent after its last GUILD_CREATE: the command's path is warm)
and 20 s after the last job was answered (aiohttp closes idle connections after 15 s). Per
guild: (full - base) / guilds of the process; per pending job: (after the jobs - full at
ready) / jobs the process admitted, and the same from half the jobs to all of them (RSS
settled as at the end, 20 s after the first half's last answer): what one more job costs,
without what the first burst warmed up once.

    .venv/bin/python -m bench.scale                       # 100,000 guilds, 4 processes
    .venv/bin/python -m bench.scale --guilds 10000 --processes 2   # about 2 minutes
    .venv/bin/python -m bench.scale --diagnose            # the bot's imports, memory, CPU
    .venv/bin/python -m bench.scale --side-by-side        # both at once: one load for the CPU

``--collect``: then a full ``gc.collect()`` in every process (``bench/probe``) and its RSS.
``--diagnose``: one bot process at a time with ``bench/probe/sitecustomize.py`` and
``-X importtime``: (a) what ``sys.modules`` holds at ready on SQLite and on PostgreSQL that a
running bot does not need, with its import time, RSS and importer; (b) tracemalloc between
``--pending`` pending jobs (which warm the process up) and twice as many, as held and after a
full collection; (c) cProfile of the event loop's thread while admitting, then with the jobs
pending.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import math
import os
import pickle
import pstats
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import asyncpg

from bench.remote import TOKEN, RemoteSimulator, simulator_process
from bench.shards import (
    MACHINE,
    MB,
    CpuMeter,
    Place,
    Shape,
    World,
    build,
    code_version,
    cpu_seconds,
    guilds_of,
    machine_cpu_seconds,
    memory_mb,
    others,
    percentile,
    png,
    tree_cpu_seconds,
    wait_shard,
)
from tests.discord_stand_in import (
    BotProcess,
    InteractionHandle,
    Launcher,
    StandIn,
    bot_environment,
)
from tests.postgres_server import PostgresServer, postgres_server

GUILDS_PER_SHARD = 2_500  # Discord's most on one shard
SETTLE = 3.0  # seconds after ready before RSS is read (discord.py's on_ready comes 2 s after)
AFTER_JOBS = 20.0  # ... after the last job was answered (idle keep-alive connections closed)
IDLE_FOR = 6.0  # CPU with the jobs pending, over this long
IDLE_PROFILE = 15.0  # the diagnosis profiles the process with its jobs pending this long
PROBE_DIR = Path(__file__).resolve().parent / "probe"
# What the reference imports, and what the bot's design adds to it (its "design card"):
# pydantic for its settings, asyncpg or aiosqlite for its store.
REFERENCE_IMPORTS = ("discord", "aiohttp", "sqlite3")
DESIGN_IMPORTS = {True: ("pydantic", "asyncpg"), False: ("pydantic", "aiosqlite")}
# A package imported as it is used: ``import pydantic`` alone defers its modules until
# ``BaseModel`` is asked for (an allowance measured so left 2 MB of it out: 7.2 MB, not 9.2).
AS_USED = {"pydantic": "from pydantic import BaseModel"}
SIMULATORS, BOTS = "RunComfy simulators", "bot processes"
TARGETS = {"guild": 1.2, "job": 1.2, "cpu": 1.5}


@dataclass(frozen=True)
class Program:
    name: str
    module: str
    postgres: bool  # the bot's store on the bench's PostgreSQL (else its own SQLite file)
    env: tuple[tuple[str, str], ...] = ()


BOT = Program("bot", "bot", True)
MINIMAL = Program("minimal", "bench.minimal_bot", False)
# The same reference doing the bot's job with a status card, as a user would write it.
MINIMAL_CARD = Program("minimal", "bench.minimal_bot", False, (("MINIMAL_CARD", "1"),))


@dataclass
class Run:
    program: str
    guilds: list[int]  # per process
    ready: float = 0.0  # every shard ready, from the start of the processes
    identify_refused: int = 0  # IDENTIFYs answered with an invalid session
    rss_ready: list[float] = field(default_factory=list)  # MB per process
    peak_ready: list[float] = field(default_factory=list)
    asked: int = 0  # in the admission stretch
    admitted: int = 0
    admit_wall: float = 0.0
    admit_cpu: list[float] = field(default_factory=list)  # s per process
    admit_parts: dict[str, float] = field(default_factory=dict)
    ack: list[float] = field(default_factory=list)
    jobs: list[int] = field(default_factory=list)  # admitted per process, in all
    rss_jobs: list[float] = field(default_factory=list)
    jobs_half: list[int] = field(default_factory=list)  # admitted per process by the midpoint
    rss_half: list[float] = field(default_factory=list)  # settled there, as rss_jobs
    rss_collected: list[float] = field(default_factory=list)  # --collect: then gc.collect()
    idle_cpu: list[float] = field(default_factory=list)  # % of a core with the jobs pending
    rest: Counter[str] = field(default_factory=Counter)  # Discord REST calls in the stretch


def shards_for(guilds: int, processes: int) -> int:
    """Discord's least shards for ``guilds``, a multiple of ``processes``."""
    return processes * math.ceil(math.ceil(guilds / GUILDS_PER_SHARD) / processes)


def split(shards: int, processes: int) -> list[tuple[int, ...]]:
    each = shards // processes
    return [tuple(range(n * each, (n + 1) * each)) for n in range(processes)]


def probe_options(image: bytes) -> dict[str, object]:
    return {"prompt": "probe", "image": ("probe.png", image)}


async def start(program: Program, discord: StandIn, world: World, launch: Launcher,
                layout: list[tuple[int, ...]], sims: list[RemoteSimulator], database: str,
                patience: float, extra_env: dict[str, str] | None = None
                ) -> tuple[list[BotProcess], Run]:
    """The program's processes, started at once, until every shard is ready."""
    image = png()
    bots = []
    for number, ids in enumerate(layout):
        env = bot_environment(
            discord, runcomfy_url=sims[number].url, runcomfy_token=TOKEN,
            database_url=database if program.postgres else None,
            database=None if program.postgres else Path("bot.sqlite3"),
            token=f"{program.name}-{number}", bot__shard_count=world.shards,
            bot__shard_ids=",".join(map(str, ids)))
        env.update(program.env)
        env.update(extra_env or {})
        bot = await launch(discord, env, start=False, module=program.module)
        if env.get("BENCH_PROBE_DIR") == "":  # the probe's files in the process's folder
            bot.env["BENCH_PROBE_DIR"] = str(bot.workdir / "probe")
            (bot.workdir / "probe").mkdir(exist_ok=True)
        bots.append(bot)
    refused = discord.gateway.refused_identifies
    for bot in bots:
        await bot.start()
    starts = await asyncio.gather(*(
        wait_shard(world, bot, shard, "kling-2-1", probe_options(image), patience)
        for bot, ids in zip(bots, layout, strict=True) for shard in ids))
    run = Run(program.name, [guilds_of(world, ids) for ids in layout])
    launched = min(bot.started_at for bot in bots)
    shard_bot = {shard: bot for bot, ids in zip(bots, layout, strict=True) for shard in ids}
    run.ready = max(s.ready + shard_bot[s.shard].started_at - launched for s in starts)
    run.identify_refused = discord.gateway.refused_identifies - refused
    await asyncio.sleep(SETTLE)
    run.rss_ready = [memory_mb(bot.pid or 0, "VmRSS") for bot in bots]
    run.peak_ready = [memory_mb(bot.pid or 0, "VmHWM") for bot in bots]
    return bots, run


async def ask(discord: StandIn, places: list[Place], first: int, count: int, rate: float,
              image: bytes, tag: str) -> list[InteractionHandle]:
    """``count`` ``/kling-2-1``s at ``rate`` a second, each by a member of its own, the places
    in turn (places are spread evenly over the shards)."""
    handles = []
    began = time.monotonic()
    for k in range(count):
        index = first + k
        place = places[index % len(places)]
        member = place.members[index // len(places)]
        handles.append(await discord.slash(member, place.channel, "kling-2-1",
                                           prompt=f"{tag}: job {index}",
                                           image=(f"z{index}.png", image)))
        await asyncio.sleep(max(0.0, began + (k + 1) / rate - time.monotonic()))
    return handles


def admitted(handle: InteractionHandle) -> bool:
    return (handle.content or "").startswith("Job #")


async def load(program: Program, discord: StandIn, places: list[Place], bots: list[BotProcess],
               layout: list[tuple[int, ...]], run: Run, args: argparse.Namespace,
               parts: dict[str, Callable[[], float]], patience: float,
               turn: contextlib.AbstractAsyncContextManager[object] | None = None) -> None:
    """The admission stretch, then (in its ``turn``: one program at a time) the rest of the
    pending jobs; RSS and idle CPU after."""
    image = png()
    pids = [bot.pid or 0 for bot in bots]
    meter = CpuMeter({**{f"bot {n}": functools.partial(cpu_seconds, pid)
                         for n, pid in enumerate(pids)}, **parts})
    total = args.pending * len(bots)
    stretch = min(total, round(args.rate * args.admit_seconds))
    first = len(discord.state.requests)
    runs = await ask(discord, places, 0, stretch, args.rate, image, program.name)
    await discord.wait_for(lambda: all(r.content for r in runs), patience,
                           what="an answer to every command", interval=0.05)
    run.admit_wall, cpu = meter.stop()
    run.rest = Counter(f"{r.method} {r.route}" for r in discord.state.requests[first:])
    run.admit_cpu = [cpu[f"bot {n}"] for n in range(len(pids))]
    run.admit_parts = {k: v for k, v in cpu.items() if not k.startswith("bot ")}
    run.admit_parts[BOTS] = sum(run.admit_cpu)
    run.asked, run.admitted = stretch, sum(map(admitted, runs))
    run.ack = [r.ack_seconds for r in runs if r.ack_seconds is not None]
    process_of = {shard: n for n, ids in enumerate(layout) for shard in ids}

    def per_process(handles: list[InteractionHandle]) -> list[int]:
        jobs = [0] * len(bots)
        for handle in handles:
            jobs[process_of[handle.shard_id]] += admitted(handle)
        return jobs

    async with turn or contextlib.nullcontext():
        await fill(discord, places, bots, run, args, runs, image, patience, per_process,
                   program.name)


async def fill(discord: StandIn, places: list[Place], bots: list[BotProcess], run: Run,
               args: argparse.Namespace, runs: list[InteractionHandle], image: bytes,
               patience: float, per_process: Callable[[list[InteractionHandle]], list[int]],
               tag: str) -> None:
    """After the stretch's ``runs``, the rest of the pending jobs, RSS at half and at all of
    them, and idle CPU."""
    pids = [bot.pid or 0 for bot in bots]
    stretch, total = len(runs), args.pending * len(bots)
    # Settled at the midpoint and at the end: the growth between them is what one more
    # pending job costs, without what the first burst warmed up once (pools, buffers).
    half = max(total // 2, stretch)
    rest = await ask(discord, places, stretch, half - stretch, args.fill_rate, image, tag)
    await discord.wait_for(lambda: all(r.content for r in rest), patience,
                           what="an answer to every command", interval=0.1)
    await asyncio.sleep(AFTER_JOBS)
    run.jobs_half = per_process(runs + rest)
    run.rss_half = [memory_mb(pid, "VmRSS") for pid in pids]
    rest += await ask(discord, places, half, total - half, args.fill_rate, image, tag)
    await discord.wait_for(lambda: all(r.content for r in rest), patience,
                           what="an answer to every command", interval=0.1)
    run.jobs = per_process(runs + rest)
    await asyncio.sleep(AFTER_JOBS)
    run.rss_jobs = [memory_mb(pid, "VmRSS") for pid in pids]
    if args.collect:  # a full collection in each process (the probe), and its RSS then
        for bot in bots:
            out = Path(bot.env["BENCH_PROBE_DIR"])
            await signal_and_wait(bot, signal.SIGUSR1, out / "done-1", 300.0)
            run.rss_collected.append(int((out / "rss-1.txt").read_text().split()[2]) / MB)
    idle = CpuMeter({str(pid): functools.partial(cpu_seconds, pid) for pid in pids})
    await asyncio.sleep(IDLE_FOR)
    wall, used = idle.stop()
    run.idle_cpu = [used[str(pid)] / wall * 100 for pid in pids]


async def serve(program: Program, discord: StandIn, world: World, places: list[Place] | None,
                server: PostgresServer, workdir: Path, layout: list[tuple[int, ...]],
                args: argparse.Namespace, size: str, ready: asyncio.Barrier | None = None,
                turn: asyncio.Lock | None = None) -> Run:
    """One program on one stand-in: start, ready; with ``places``, the jobs too (side by
    side: the stretches at once, when every program at ``ready`` is ready; the rest of the
    jobs one program at a time, in its ``turn``, so that RSS is not read on a saturated
    machine)."""
    database = ""
    if program.postgres:
        database = await server.create_database(f"scale_{os.getpid()}_{program.name}_{size}")
    patience = 120.0 + 3 * world.shards * max(args.identify_every, 5.0)
    async with contextlib.AsyncExitStack() as stack:
        sims = [await stack.enter_async_context(simulator_process(
            {"workers": 1, "queue_seconds": 1e7})) for _ in layout]
        sim_pids = [sim.pid for sim in sims]
        for sim in sims:
            sim.clock.start()
        launch = await stack.enter_async_context(Launcher(workdir / f"{program.name}-{size}"))
        probe: dict[str, str] = {}
        if args.collect:  # the same in the base runs: the probe costs its imports
            probe = {"PYTHONPATH": f"{PROBE_DIR}:{PROBE_DIR.parents[1]}",
                     "BENCH_PROBE_DIR": "", "BENCH_PROBE_COLLECT_ONLY": "1"}
        bots, run = await start(program, discord, world, launch, layout, sims, database,
                                patience, probe)
        print(f"  {program.name}, {size}: ready in {run.ready:.1f} s "
              f"({run.identify_refused} IDENTIFYs refused as too early), RSS "
              f"{' + '.join(f'{v:.1f}' for v in run.rss_ready)} MB", flush=True)
        if ready is not None:
            await ready.wait()
        if places is not None:
            assert server.process is not None
            parts: dict[str, Callable[[], float]] = {
                "stand-in (the bench's process)": time.process_time,
                "PostgreSQL": functools.partial(tree_cpu_seconds, server.process.pid),
                SIMULATORS: lambda: sum(cpu_seconds(pid) for pid in sim_pids),
                MACHINE: machine_cpu_seconds,
            }
            await load(program, discord, places, bots, layout, run, args, parts, patience,
                       turn)
            print(f"  {program.name}: {run.admitted} of {run.asked} admitted at "
                  f"{args.rate:g}/s, {sum(run.admit_cpu) * 1e3 / max(run.admitted, 1):.1f} ms "
                  f"of CPU each; {sum(run.jobs)} jobs pending, RSS "
                  f"{' + '.join(f'{v:.1f}' for v in run.rss_jobs)} MB", flush=True)
        for bot in bots:
            await bot.terminate()
    return run


# ---- the import cost of the design's packages ---------------------------------------------------

_RSS = ("def rss():\n"
        "    for line in open('/proc/self/status'):\n"
        "        if line.startswith('VmRSS:'): return int(line.split()[1]) / 1024\n")


def import_cost_mb(first: tuple[str, ...], then: tuple[str, ...]) -> float:
    """RSS (MB) that importing ``then`` adds to a fresh process that imported ``first``."""
    code = "\n".join([_RSS, *map(_imported, first), "before = rss()", *map(_imported, then),
                      "print(rss() - before)"])
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,  # noqa: S603
                         check=True).stdout
    return float(out.split()[-1])


def _imported(name: str) -> str:
    return AS_USED.get(name, f"import {name}")


# ---- the report ---------------------------------------------------------------------------------


def kib(mb: float) -> float:
    return mb * MB


@dataclass
class Figures:
    """One program's figures, from its base and full runs."""

    base: list[float]  # MB per process
    per_guild: list[float]  # KiB per process
    per_job: list[float]  # KiB per process
    per_more_job: list[float]  # KiB per process, from the midpoint's jobs to all of them
    cpu_per_command: float  # ms, all processes
    cpu_share: float  # % of a core, all processes, during the stretch

    @classmethod
    def of(cls, base: Run, full: Run) -> Figures:
        return cls(
            base=base.rss_ready,
            per_guild=[kib(f - b) / max(g - bg, 1) for f, b, g, bg in zip(
                full.rss_ready, base.rss_ready, full.guilds, base.guilds, strict=True)],
            per_job=[kib(after - ready) / max(jobs, 1) for after, ready, jobs in zip(
                full.rss_jobs, full.rss_ready, full.jobs, strict=True)],
            per_more_job=[kib(after - half) / max(jobs - at_half, 1)
                          for after, half, jobs, at_half in zip(
                              full.rss_jobs, full.rss_half, full.jobs, full.jobs_half,
                              strict=True)],
            cpu_per_command=sum(full.admit_cpu) * 1e3 / max(full.admitted, 1),
            cpu_share=sum(full.admit_cpu) / max(full.admit_wall, 1e-9) * 100)


def wide_table(title: str, columns: list[str], rows: list[tuple[str, list[str]]]) -> None:
    """``shards.table`` with each column as wide as its widest value."""
    first = max(len(name) for name, _ in rows)
    widths = [max(len(c), *(len(values[n]) for _, values in rows))
              for n, c in enumerate(columns)]
    print(f"\n{title}")
    print(f"{'':<{first}}  " + "  ".join(f"{c:>{w}}" for c, w in zip(columns, widths,
                                                                     strict=True)))
    for name, values in rows:
        print(f"{name:<{first}}  " + "  ".join(f"{v:>{w}}" for v, w in zip(values, widths,
                                                                         strict=True)))


def fmt(values: list[float], spec: str = "{:.1f}") -> str:
    return " + ".join(spec.format(v) for v in values)


def ratio(bot: float, reference: float) -> str:
    """``bot / reference``, or why there is none (the reference's RSS may not grow at all
    between two reads: a page's worth of jobs fits in memory it already held)."""
    return f"{bot / reference:.2f}x" if reference > 0 else f"n/a (minimal +{reference:.2f})"


def verdict(ok: bool) -> str:
    return "met" if ok else "NOT met"


def report(args: argparse.Namespace, world: World, runs: dict[tuple[str, str], Run],
           allowance: float, started: datetime, load: tuple[float, float]) -> None:
    bot, ref = (Figures.of(runs[name, "base"], runs[name, "full"]) for name in ("bot", "minimal"))
    processes = len(runs["bot", "full"].guilds)
    print(f"\ncode: {code_version()}; {started:%Y-%m-%d %H:%M} UTC; {os.cpu_count()} cores, "
          f"load average {load[0]:.2f} before, {load[1]:.2f} after")
    print(f"{world.guilds:,} guilds on {world.shards} shards ({GUILDS_PER_SHARD:,} a shard at "
          f"most), {processes} processes; IDENTIFY one per {args.identify_every:g} s across "
          "every process (the base runs unpaced: discord.py's own 5 s between the shards of "
          "a process only); the stand-in built them in "
          f"{world.built_seconds:.1f} s")
    if args.reference_card:
        print("The minimal bot with a status card (--reference-card): one message a job, "
              "posted after the answer, edited when a poll sees its state or place change")
    if args.side_by_side:
        print("Side by side: both programs up at once, each on a stand-in of its own in the "
              "bench's process (its CPU below is both stand-ins'); the admission stretches at "
              "the same time, the rest of the jobs one program after the other")
    columns = ["bot", "minimal", "bot / minimal", "target"]
    rows: list[tuple[str, list[str]]] = []
    for name in ("base", "full"):
        b, m = runs["bot", name], runs["minimal", name]
        rows.append((f"{name}: guilds per process", [fmt([float(g) for g in b.guilds], "{:.0f}"),
                                                     fmt([float(g) for g in m.guilds], "{:.0f}"),
                                                     "", ""]))
        rows.append((f"{name}: ready, every shard (s)", [f"{b.ready:.1f}", f"{m.ready:.1f}",
                                                         "", ""]))
        rows.append((f"{name}: IDENTIFYs refused (too early)",
                     [str(b.identify_refused), str(m.identify_refused), "", ""]))
        rows.append((f"{name}: RSS at ready per process (MB)",
                     [fmt(b.rss_ready), fmt(m.rss_ready), "", ""]))
        rows.append((f"{name}: peak RSS at ready per process (MB)",
                     [fmt(b.peak_ready), fmt(m.peak_ready), "", ""]))
    base_ok = statistics.mean(bot.base) <= statistics.mean(ref.base) + allowance
    rows.append(("base, mean of the processes (MB)",
                 [f"{statistics.mean(bot.base):.1f}", f"{statistics.mean(ref.base):.1f}",
                  f"+{statistics.mean(bot.base) - statistics.mean(ref.base):.1f}",
                  f"<= +{allowance:.1f} ({verdict(base_ok)})"]))
    guild = statistics.mean(bot.per_guild) / statistics.mean(ref.per_guild)
    rows.append(("RSS per guild over the base (KiB)",
                 [fmt(bot.per_guild, "{:.2f}"), fmt(ref.per_guild, "{:.2f}"), f"{guild:.2f}x",
                  f"<= {TARGETS['guild']}x ({verdict(guild <= TARGETS['guild'])})"]))
    b, m = runs["bot", "full"], runs["minimal", "full"]
    rows.append(("pending jobs per process", [fmt([float(j) for j in b.jobs], "{:.0f}"),
                                              fmt([float(j) for j in m.jobs], "{:.0f}"), "", ""]))
    rows.append(("RSS with the jobs per process (MB)", [fmt(b.rss_jobs), fmt(m.rss_jobs), "", ""]))
    job = statistics.mean(bot.per_job) / statistics.mean(ref.per_job)
    rows.append(("RSS per pending job (KiB)",
                 [fmt(bot.per_job), fmt(ref.per_job), f"{job:.2f}x",
                  f"<= {TARGETS['job']}x ({verdict(job <= TARGETS['job'])})"]))
    more = ratio(statistics.mean(bot.per_more_job), statistics.mean(ref.per_more_job))
    rows.append(("... from half the jobs to all (KiB)",
                 [fmt(bot.per_more_job), fmt(ref.per_more_job), more, ""]))
    if b.rss_collected and m.rss_collected:
        after = [[kib(c - r) / max(j, 1) for c, r, j in zip(run.rss_collected, run.rss_ready,
                                                            run.jobs, strict=True)]
                 for run in (b, m)]
        rows.append(("... after a full gc.collect() (KiB; --collect)",
                     [fmt(after[0]), fmt(after[1]),
                      f"{statistics.mean(after[0]) / statistics.mean(after[1]):.2f}x", ""]))
    rows.append((f"admitted at {args.rate:g}/s for {args.admit_seconds:g} s",
                 [f"{b.admitted} of {b.asked}", f"{m.admitted} of {m.asked}", "", ""]))
    rows.append(("acknowledged p50 / p95 (s)",
                 [f"{statistics.median(r.ack):.2f} / {percentile(r.ack, 0.95):.2f}"
                  for r in (b, m)] + ["", ""]))
    rows.append(("CPU while admitting, all processes (% of a core)",
                 [f"{bot.cpu_share:.1f}", f"{ref.cpu_share:.1f}", "", ""]))
    rows.append(("... per process", [fmt([c / r.admit_wall * 100 for c in r.admit_cpu])
                                     for r in (b, m)] + ["", ""]))
    cpu = bot.cpu_per_command / ref.cpu_per_command
    rows.append(("CPU per admitted command (ms)",
                 [f"{bot.cpu_per_command:.1f}", f"{ref.cpu_per_command:.1f}", f"{cpu:.2f}x",
                  f"<= {TARGETS['cpu']}x ({verdict(cpu <= TARGETS['cpu'])})"]))
    rest = [r.rest.total() / max(r.admitted, 1) for r in (b, m)]
    rows.append(("Discord REST calls per admitted command",
                 [f"{rest[0]:.2f}", f"{rest[1]:.2f}", ratio(*rest), ""]))
    for route in sorted(b.rest.keys() | m.rest.keys()):
        rows.append((f"... {route}", [f"{r.rest[route] / max(r.admitted, 1):.2f}"
                                      for r in (b, m)] + ["", ""]))
    rows.append(("CPU with the jobs pending, per process (% of a core)",
                 [fmt(b.idle_cpu), fmt(m.idle_cpu), "", ""]))
    for part in ("stand-in (the bench's process)", "PostgreSQL", SIMULATORS):
        rows.append((f"CPU while admitting, {part} (% of a core)",
                     [f"{r.admit_parts.get(part, 0) / r.admit_wall * 100:.1f}" for r in (b, m)]
                     + ["", ""]))
    rows.append(("CPU while admitting, other processes (% of a core)",
                 [f"{others(r.admit_parts) / r.admit_wall * 100:.1f}" for r in (b, m)]
                 + ["", ""]))
    wide_table("Footprint beside the minimal bot (same stand-in, same shards, same run)",
               columns, rows)
    print(f"\nThe base's allowance: what importing {', '.join(DESIGN_IMPORTS[True])} (pydantic "
          f"as used: `{AS_USED['pydantic']}`) adds to a process that imported "
          f"{', '.join(REFERENCE_IMPORTS)} ({allowance:.1f} MB).")


async def main(args: argparse.Namespace) -> None:
    task = asyncio.current_task()
    assert task is not None
    for stop in (signal.SIGTERM, signal.SIGHUP):
        asyncio.get_running_loop().add_signal_handler(stop, task.cancel)
    started, load_before = datetime.now(UTC), os.getloadavg()[0]
    shards = shards_for(args.guilds, args.processes)
    layout = split(shards, args.processes)
    allowance = import_cost_mb(REFERENCE_IMPORTS, DESIGN_IMPORTS[True])
    runs: dict[tuple[str, str], Run] = {}
    programs = (BOT, MINIMAL_CARD if args.reference_card else MINIMAL)
    with tempfile.TemporaryDirectory(prefix="rcvb-scale-") as folder, \
            postgres_server() as server:
        workdir = args.logs or Path(folder)
        for program in programs:
            async with StandIn(shards=shards) as small:  # unpaced: the base's memory only
                world = build(small, shards, Shape(), 0, 0, 0, shards)
                runs[program.name, "base"] = await serve(program, small, world, None, server,
                                                         workdir, layout, args, "base")
        per_channel = math.ceil(args.pending * args.processes / shards) + 1
        async with contextlib.AsyncExitStack() as stack:
            stand_ins = [await stack.enter_async_context(
                StandIn(shards=shards, identify_every=args.identify_every))
                for _ in range(2 if args.side_by_side else 1)]
            worlds = [build(d, args.guilds, Shape(), 1, shards, per_channel, shards)
                      for d in stand_ins]
            world = worlds[0]
            print(f"built {args.guilds:,} guilds on {shards} shards in "
                  f"{world.built_seconds:.1f} s" + (" (twice: one stand-in each)"
                                                    if args.side_by_side else ""), flush=True)
            if args.side_by_side:  # each on its own stand-in, the jobs at the same time
                ready, turn = asyncio.Barrier(2), asyncio.Lock()
                async with asyncio.TaskGroup() as group:
                    both = [group.create_task(serve(
                        program, d, w, w.places[0], server, workdir, layout, args, "full",
                        ready, turn)) for program, d, w in zip(programs, stand_ins, worlds,
                                                          strict=True)]
                for program, task in zip(programs, both, strict=True):
                    runs[program.name, "full"] = task.result()
            else:
                for program in programs:
                    runs[program.name, "full"] = await serve(
                        program, stand_ins[0], world, world.places[0], server, workdir,
                        layout, args, "full")
        report(args, world, runs, allowance, started, (load_before, os.getloadavg()[0]))


# ---- the diagnosis: the bot's imports, its memory per pending job, its CPU per command -----------

IMPORT_LINE = re.compile(r"import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)")
# What a running bot may not need at start (each checked against the configuration: asyncpg
# on SQLite, aiosqlite on PostgreSQL).
SUSPECTS = ("aiohttp.web", "bot.simulator", "av", "matplotlib", "numpy", "PIL", "asyncpg",
            "aiosqlite", "prometheus_client", "bot.fitting", "bot.frames", "bot.store.copy",
            "bot.check", "bot.discord.ops", "bot.i18n", "babel", "regex", "cryptography",
            "concurrent.futures.process", "multiprocessing", "http.server", "urllib.request",
            "email", "xml", "tomllib")


@dataclass
class Imported:
    """One line of ``-X importtime``: a module's first import."""

    name: str
    own_us: int
    cumulative_us: int
    depth: int
    parent: Imported | None = None


def import_tree(stderr: str) -> list[Imported]:
    """``-X importtime``'s lines, each with the module that imported it (the next line less
    indented: the log lists a module after what it imported)."""
    lines = [Imported(m.group(4), int(m.group(1)), int(m.group(2)), len(m.group(3)) // 2)
             for m in IMPORT_LINE.finditer(stderr)]
    waiting: dict[int, list[Imported]] = defaultdict(list)  # depth -> children seen
    for line in lines:
        for child in waiting.pop(line.depth + 1, []):
            child.parent = line
        waiting[line.depth].append(line)
    return lines


def within(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def suspect_cost(tree: list[Imported], prefix: str) -> tuple[float, str]:
    """Import milliseconds of ``prefix``'s modules (each subtree counted once) and the chain
    of modules that imported the first of them."""
    tops = [line for line in tree if within(line.name, prefix)
            and (line.parent is None or not within(line.parent.name, prefix))]
    chain, seen = [], tops[0].parent if tops else None
    while seen is not None:
        chain.append(seen.name)
        seen = seen.parent
    return sum(t.cumulative_us for t in tops) / 1e3, " <- ".join(chain[:6]) or "(top level)"


def stdlib(name: str) -> bool:
    return name.split(".")[0] in sys.stdlib_module_names


async def signal_and_wait(bot: BotProcess, how: signal.Signals, marker: Path,
                          timeout: float = 120.0) -> None:  # noqa: ASYNC109 - polled
    assert bot.pid is not None
    os.kill(bot.pid, how)
    deadline = time.monotonic() + timeout
    while not await asyncio.to_thread(marker.exists):
        if time.monotonic() > deadline:
            raise RuntimeError(f"the bot did not answer {how.name}:\n{bot.output()[-3000:]}")
        await asyncio.sleep(0.1)


async def diagnose_run(name: str, discord: StandIn, world: World, server: PostgresServer,
                       workdir: Path, postgres: bool, frames: int,
                       work: Callable[[BotProcess, Path], object],
                       warm: Callable[[BotProcess], Awaitable[None]] | None = None,
                       ) -> tuple[str, Path]:
    """One bot process (1 shard) with the probe and ``-X importtime``; ``warm`` runs before
    the probe's first snapshot, ``work`` after it; the process's stderr and its probe
    folder."""
    out = workdir / f"probe-{name}"
    out.mkdir(parents=True, exist_ok=True)
    extra = {"PYTHONPATH": f"{PROBE_DIR}:{PROBE_DIR.parents[1]}", "BENCH_PROBE_DIR": str(out),
             "PYTHONPROFILEIMPORTTIME": "1", "BENCH_PROBE_TRACEMALLOC": str(frames)}
    database = (await server.create_database(f"scale_{os.getpid()}_diag_{name}")
                if postgres else "")
    program = Program("bot", "bot", postgres)
    async with simulator_process({"workers": 1, "queue_seconds": 1e7}) as sim, \
            Launcher(workdir / f"diag-{name}") as launch:
        sim.clock.start()
        bots, _ = await start(program, discord, world, launch, [(0,)], [sim], database, 120.0,
                              extra)
        bot = bots[0]
        if warm is not None:
            await warm(bot)
        await signal_and_wait(bot, signal.SIGUSR1, out / "done-1")
        result = work(bot, out)
        if asyncio.iscoroutine(result):
            await result
        await bot.terminate()
        return bot.output(), out


def print_modules(title: str, stderr: str, modules: list[str], postgres: bool) -> None:
    tree = import_tree(stderr)
    total = sum(line.cumulative_us for line in tree if line.depth == 0) / 1e3
    third = sorted({m.split(".")[0] for m in modules
                    if not stdlib(m) and not m.startswith("_")})
    print(f"\n{title}: {len(modules)} modules in sys.modules at ready, {total:.0f} ms of "
          f"imports; top-level packages outside the standard library: {', '.join(third)}")
    present = set(modules)
    unneeded = [s for s in SUSPECTS if any(within(m, s) for m in present)
                and not (s == "asyncpg" and postgres) and not (s == "aiosqlite" and not postgres)]
    base = (*REFERENCE_IMPORTS, "pydantic")
    print(f"  RSS each adds to a fresh process that imported {', '.join(base)} (they overlap: "
          "not to be added up); import time in the bot's own start (its subtree, first import)")
    print(f"  {'module':<28} {'import ms':>9} {'RSS MB':>7}  imported by")
    for name in unneeded:
        ms, chain = suspect_cost(tree, name)
        try:
            mb = import_cost_mb(base, (name,))
        except subprocess.CalledProcessError:
            mb = float("nan")
        print(f"  {name:<28} {ms:>9.1f} {mb:>7.1f}  {chain}")
    together = import_cost_mb(base, tuple(unneeded))
    store = "asyncpg" if postgres else "aiosqlite"
    whole = import_cost_mb((*REFERENCE_IMPORTS,), ("pydantic", store, "bot.__main__"))
    design = import_cost_mb((*REFERENCE_IMPORTS,), ("pydantic", store))
    print(f"  all of them together: {together:.1f} MB; `import bot.__main__` (with pydantic and "
          f"{store}) over {', '.join(REFERENCE_IMPORTS)}: {whole:.1f} MB, of which pydantic and "
          f"{store}: {design:.1f} MB")
    heavy = sorted(((line.cumulative_us, line.name) for line in tree
                    if line.name.startswith("bot.")), reverse=True)[:12]
    print("  the bot's modules by cumulative import time: "
          + ", ".join(f"{name} {cum / 1e3:.0f} ms" for cum, name in heavy))


def memory_diff(out: Path, jobs: int) -> None:
    """What grew from the snapshot with ``jobs`` pending jobs (which warmed the process: its
    pools, buffers, statements) to the one with ``jobs`` more: as the process held it, and
    after a full collection of its garbage."""
    rss = [[int(v) for v in (out / f"rss-{k}.txt").read_text().split()] for k in (1, 2)]
    print(f"\n(b) {jobs} more pending jobs over {jobs + 1}, in the process with tracemalloc on "
          f"(25 frames, "
          f"its own overhead included): VmRSS {(rss[1][0] - rss[0][0]) / jobs:.1f} KiB a job "
          f"as held; after a full gc.collect(), {rss[1][0] - rss[1][2]:+,} KiB less")
    for suffix, title in (("", "as the process held it"),
                          ("-gc", "after a full collection (what the jobs truly hold)")):
        with open(out / f"snapshot-1{suffix}.pickle", "rb") as f1, \
                open(out / f"snapshot-2{suffix}.pickle", "rb") as f2:
            before: tracemalloc.Snapshot = pickle.load(f1)  # noqa: S301 - our own dump
            after: tracemalloc.Snapshot = pickle.load(f2)  # noqa: S301
        total = sum(s.size_diff for s in after.compare_to(before, "filename"))
        print(f"\n  {title}: tracemalloc {total / 1024 / jobs:+.1f} KiB a job")
        print("  top 15 by file:line (where the memory was allocated):")
        for stat in after.compare_to(before, "lineno")[:15]:
            frame = stat.traceback[0]
            print(f"  {stat.size_diff / 1024 / jobs:8.2f} KiB/job {stat.count_diff / jobs:+6.1f} "
                  f"blocks/job  {short(frame.filename)}:{frame.lineno}")
        print("  top 10 by the innermost line in bot/ (what in the bot made it):")
        for (where, size) in by_bot_frame(before, after)[:10]:
            print(f"  {size / 1024 / jobs:8.2f} KiB/job  {where}")
        counts = [dict((kind, int(n)) for n, kind in (line.split("\t", 1) for line in
                       (out / f"objects-{k}{suffix}.txt").read_text().splitlines()))
                  for k in (1, 2)]
        grown = sorted(((counts[1].get(k, 0) - counts[0].get(k, 0), k) for k in counts[1]),
                       reverse=True)
        print("  live objects (gc) and tasks that grew, per job: " + ", ".join(
            f"{kind} {n / jobs:+.1f}" for n, kind in grown
            if n > 0 and not kind.startswith("bytes held by"))[:1200])
        print("  byte strings (>= 64 bytes) by what holds them, growth per job: " + ", ".join(
            f"{kind.removeprefix('bytes held by ').removesuffix(' (bytes)')} "
            f"{n / jobs / 1024:+.2f} KiB" for n, kind in grown
            if n > 0 and kind.startswith("bytes held by"))[:800])
        print("  the 6 largest by whole traceback (the most recent frames first):")
        for stat in after.compare_to(before, "traceback")[:6]:
            frames = [f"{short(f.filename)}:{f.lineno}" for f in reversed(stat.traceback)
                      if "asyncio/" not in f.filename][:9]
            print(f"  {stat.size_diff / 1024 / jobs:8.2f} KiB/job "
                  f"{stat.count_diff / jobs:+6.1f} blocks/job  " + " <- ".join(frames))


def short(filename: str) -> str:
    for marker in ("/site-packages/", "/scale/", "/lib/python3.11/"):
        if marker in filename:
            return filename.split(marker, 1)[1]
    return filename


def by_bot_frame(before: tracemalloc.Snapshot, after: tracemalloc.Snapshot,
                 ) -> list[tuple[str, int]]:
    def sums(snapshot: tracemalloc.Snapshot) -> dict[str, int]:
        found: dict[str, int] = defaultdict(int)
        for trace in snapshot.traces:
            key = "(no bot/ frame)"
            for frame in reversed(trace.traceback):  # the most recent frame first
                if "/bot/" in frame.filename:
                    key = f"{short(frame.filename)}:{frame.lineno}"
                    break
            found[key] += trace.size
        return found

    first, second = sums(before), sums(after)
    diffs = [(k, second.get(k, 0) - first.get(k, 0)) for k in set(first) | set(second)]
    return sorted(diffs, key=lambda kv: -kv[1])


async def transactions(server: PostgresServer) -> int:
    """Transactions committed in the bot's databases so far (each statement outside a
    transaction is one)."""
    conn = await asyncpg.connect(server.url)
    try:
        return int(await conn.fetchval("SELECT sum(xact_commit) FROM pg_stat_database "
                                       "WHERE datname LIKE 'scale_%'"))
    finally:
        await conn.close()


def print_profile(out: Path, commands: int, cpu: float, xacts: float, idle: float) -> None:
    print(f"\n(c) cProfile (the event loop thread's CPU time) while admitting {commands} "
          f"commands at the admission rate, the poll task running: {cpu * 1e3 / commands:.1f} "
          f"ms of process CPU a command under the profiler; {xacts / commands:.1f} PostgreSQL "
          "transactions a command. Calls of a coroutine count each resumption.")
    show_profile(out / "profile-1.pstats", commands, "command")
    print(f"\n(c') then {IDLE_PROFILE:g} s with those {commands} jobs pending (queued at "
          f"RunComfy), nothing asked: {idle / IDLE_PROFILE * 100:.1f} % of a core under the "
          "profiler; ms per second:")
    show_profile(out / "profile-2.pstats", IDLE_PROFILE, "second", rows=12)


def package(filename: str) -> str:
    if "/site-packages/" in filename:
        return filename.split("/site-packages/", 1)[1].split("/")[0]
    if "/bot/" in filename or "/cogs/" in filename:
        return "bot (and cogs)"
    if "/lib/python3.11/" in filename:
        return "stdlib " + filename.split("/lib/python3.11/", 1)[1].split("/")[0]
    return "built-in (C)"


def show_profile(path: Path, per: float, unit: str, rows: int = 20) -> None:
    entries = pstats.Stats(str(path)).stats  # type: ignore[attr-defined]
    total = sum(tt for (_, _, tt, _, _) in entries.values())
    by_package: dict[str, float] = defaultdict(float)
    for (filename, _, _), value in entries.items():
        by_package[package(filename)] += value[2]
    print(f"  {total * 1e3 / per:.1f} ms a {unit} in the loop's thread; own time by package: "
          + ", ".join(f"{name} {t / total * 100:.0f} %" for name, t in
                      sorted(by_package.items(), key=lambda kv: -kv[1])[:8]))
    for label, index in (("cumulative", 3), ("own (tottime)", 2)):
        print(f"  top {rows} by {label} in bot/ and discord/, ms a {unit}:")
        top = sorted(((value[index], key) for key, value in entries.items()
                      if "/bot/" in key[0] or "/discord/" in key[0] or "/cogs/" in key[0]),
                     reverse=True)[:rows]
        for seconds, (filename, line, function) in top:
            calls = entries[(filename, line, function)][1]
            print(f"  {seconds * 1e3 / per:8.3f}  {calls / per:6.1f} calls  "
                  f"{short(filename)}:{line}({function})")


async def diagnose(args: argparse.Namespace) -> None:
    image = png()
    jobs = args.pending
    with tempfile.TemporaryDirectory(prefix="rcvb-scale-diag-") as folder, \
            postgres_server() as server:
        workdir = args.logs or Path(folder)
        async with StandIn(shards=1) as discord:
            world = build(discord, 1, Shape(), 1, 1, 2 * jobs + round(args.rate
                          * args.admit_seconds) * 2 + 2, 1)
            places = world.places[0]
            used = [0]

            async def pending(_: BotProcess) -> None:
                handles = await ask(discord, places, used[0], jobs, args.fill_rate, image, "diag")
                used[0] += jobs
                await discord.wait_for(lambda: all(h.content for h in handles), 300.0,
                                       what="every answer", interval=0.1)
                await asyncio.sleep(AFTER_JOBS)

            async def fill(bot: BotProcess, out: Path) -> None:
                await pending(bot)
                await signal_and_wait(bot, signal.SIGUSR1, out / "done-2", 600.0)

            profiled: dict[str, float] = {}

            async def admit(bot: BotProcess, out: Path) -> None:
                assert bot.pid is not None
                count = round(args.rate * args.admit_seconds)
                os.kill(bot.pid, signal.SIGUSR2)
                before, statements = cpu_seconds(bot.pid), await transactions(server)
                handles = await ask(discord, places, used[0], count, args.rate, image, "diag")
                used[0] += count
                await discord.wait_for(lambda: all(h.content for h in handles), 300.0,
                                       what="every answer", interval=0.05)
                profiled["cpu"] = cpu_seconds(bot.pid) - before
                profiled["count"] = count
                await asyncio.sleep(1.5)  # PostgreSQL's statistics are flushed each second
                profiled["transactions"] = await transactions(server) - statements
                await signal_and_wait(bot, signal.SIGUSR2, out / "profile-done-1")
                await asyncio.sleep(AFTER_JOBS)  # then the process with the jobs pending
                os.kill(bot.pid, signal.SIGUSR2)
                before = cpu_seconds(bot.pid)
                await asyncio.sleep(IDLE_PROFILE)
                profiled["idle"] = cpu_seconds(bot.pid) - before
                await signal_and_wait(bot, signal.SIGUSR2, out / "profile-done-2")

            async def nothing(bot: BotProcess, out: Path) -> None:
                return None

            stderr, out = await diagnose_run("sqlite", discord, world, server, workdir, False,
                                             0, nothing)
            print_modules("(a) SQLite configuration", stderr,
                          (out / "modules-1.txt").read_text().split(), False)
            stderr, out = await diagnose_run("postgres", discord, world, server, workdir, True,
                                             0, admit)
            print_modules("(a) PostgreSQL configuration", stderr,
                          (out / "modules-1.txt").read_text().split(), True)
            print_profile(out, int(profiled["count"]), profiled["cpu"],
                          profiled["transactions"], profiled["idle"])
            _, out = await diagnose_run("memory", discord, world, server, workdir, True, 25,
                                        fill, pending)
            memory_diff(out, jobs)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--guilds", type=int, default=100_000)
    parser.add_argument("--processes", type=int, default=4)
    parser.add_argument("--pending", type=int, default=500, help="jobs pending per process")
    parser.add_argument("--rate", type=float, default=20.0,
                        help="commands a second in the admission stretch")
    parser.add_argument("--admit-seconds", type=float, default=15.0)
    parser.add_argument("--fill-rate", type=float, default=50.0,
                        help="commands a second for the rest of the pending jobs")
    parser.add_argument("--identify-every", type=float, default=5.0,
                        help="seconds between IDENTIFYs the stand-in takes (Discord: 5; 0: any)")
    parser.add_argument("--collect", action="store_true",
                        help="then a full gc.collect() in every process (bench/probe) and its "
                             "RSS: what of the jobs' memory is garbage awaiting collection")
    parser.add_argument("--diagnose", action="store_true",
                        help="instead: the bot's unneeded imports, memory per pending job "
                             "(tracemalloc) and CPU per command (cProfile), one process")
    parser.add_argument("--side-by-side", action="store_true",
                        help="both programs up at once, each on a stand-in of its own: the "
                             "admission stretches at the same time see the same machine (CPU "
                             "per command); the rest of the jobs one after the other (twice "
                             "the stand-in's memory)")
    parser.add_argument("--reference-card", action="store_true",
                        help="the minimal bot with a status card (MINIMAL_CARD=1): posted "
                        "after its answer, edited when a poll sees its state or place change")
    parser.add_argument("--logs", type=Path, default=None,
                        help="keep the processes' output in this folder")
    arguments = parser.parse_args()
    try:
        asyncio.run(diagnose(arguments) if arguments.diagnose else main(arguments))
    except (asyncio.CancelledError, KeyboardInterrupt):
        print("stopped; every process the bench started was stopped", file=sys.stderr)
        sys.exit(1)
