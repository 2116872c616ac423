"""The bot at scale, as real processes: ``python -m bot`` against the Discord stand-in over
real HTTP and WebSocket (``tests.discord_stand_in``), RunComfy's simulator in a process of its
own (``bench.remote``) and a throwaway PostgreSQL server (``tests.postgres_server``), a new
database for each layout.

The same guilds (10,000 by default, half on shard 0 and half on shard 1 of 2) are served, one
layout after the other in the same run, by:

- *baseline*: one process with both shards of a stand-in with one guild per shard (start-up
  and memory without guilds, to tell what the guilds cost);
- *1 process*: one process with shards 0 and 1 of 2 (all the guilds);
- *2 processes*: two processes started together, shard 0 of 2 and shard 1 of 2 (half each).

**Start-up.** A shard is *ready* when the stand-in has identified it and sent it every one of
its GUILD_CREATEs, and the bot has answered (acknowledged) a ``/jobs`` dispatched right after
them in the guild sent last: a connection delivers its frames in order, so that answer means
the process has read and handled every GUILD_CREATE of the shard and answers commands. A layout
is ready when all its shards are; times are from the moment its processes were started (the
processes of a layout are started at once). Peak RSS is ``VmHWM`` of each bot process.

**Delivery** (not in the baseline). 200 jobs in 20 channels of 20 guilds (10 on each shard),
one member per job, RunComfy runs each job 4 to 6 s after 2 to 20 s in its queue. The latency
is from the moment the simulator completed a job (its clock, shared with this process) to the
moment the stand-in recorded the video's message; calls are the status and result calls the
simulator counted for each job; exactly once: one video and one card per job, one submit per
job, posted by the process that owns the job's guild.

    .venv/bin/python -m bench.shards [--guilds 10000 --jobs 200 --channels 20]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import io
import math
import multiprocessing
import os
import random
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
from PIL import Image

from bench.remote import TOKEN, RemoteSimulator, simulator_process
from bot.simulator import Plan
from tests.discord_stand_in import (
    BadInteraction,
    BotProcess,
    Channel,
    InteractionHandle,
    Launcher,
    Member,
    Message,
    StandIn,
    bot_environment,
)
from tests.discord_stand_in.interactions import find_command
from tests.postgres_server import PostgresServer, postgres_server
from tests.processes import stat_fields, tree

SHARDS = 2
PATIENCE = 300.0  # seconds of real time for a layout to be ready, or its videos posted
TICK = 0.01  # how often the bench looks (seconds)
IDLE_AFTER, IDLE_FOR = 3.0, 5.0  # the idle bot's CPU is measured from ready + 3 s for 5 s
VIDEO = re.compile(r"your video is ready \(.*, job #(\d+)\)")
CARD = re.compile(r"^Job #(\d+)")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
MB = 1024.0
PARTS = ("stand-in (the bench's process)", "PostgreSQL", "RunComfy simulator")
MACHINE = "the whole machine"
BUSY = 0.1  # cores other processes may keep busy before the figures are called unfair


# ---- the machine: CPU time and memory of processes ----------------------------------------------


def cpu_seconds(pid: int) -> float:
    """User and system CPU of a process and of its children it has waited for."""
    fields = stat_fields(pid)
    return 0.0 if fields is None else sum(int(f) for f in fields[11:15]) / CLOCK_TICKS


def tree_cpu_seconds(root: int) -> float:
    """CPU of a process tree: each live process's own and its reaped children's."""
    return sum(cpu_seconds(pid) for pid in tree(root))


def machine_cpu_seconds() -> float:
    """CPU seconds every process on the machine has used (all cores), from ``/proc/stat``."""
    with open("/proc/stat", encoding="ascii") as stat:
        ticks = [int(n) for n in stat.readline().split()[1:9]]  # user .. steal
    return (sum(ticks) - ticks[3] - ticks[4]) / CLOCK_TICKS  # less idle and iowait


def others(cpu: dict[str, float]) -> float:
    """CPU seconds of the processes outside the benchmark (other work on the machine)."""
    return max(cpu[MACHINE] - sum(v for k, v in cpu.items() if k != MACHINE), 0.0)


def memory_mb(pid: int, key: str) -> float:
    """``VmHWM`` (peak RSS) or ``VmRSS`` of a process, in MB."""
    with contextlib.suppress(OSError), open(f"/proc/{pid}/status", encoding="ascii") as status:
        for line in status:
            if line.startswith(key + ":"):
                return int(line.split()[1]) / MB
    return 0.0


class CpuMeter:
    """CPU seconds of named parts between ``start`` and ``stop`` (a part that did not exist at
    the start counts from its birth)."""

    def __init__(self, parts: dict[str, Callable[[], float]]) -> None:
        self.parts = parts
        self.wall = time.monotonic()
        self.begun = {name: read() for name, read in parts.items()}

    def stop(self) -> tuple[float, dict[str, float]]:
        """Wall seconds, and CPU seconds by part."""
        return (time.monotonic() - self.wall,
                {name: read() - self.begun[name] for name, read in self.parts.items()})


# ---- the world ----------------------------------------------------------------------------------


@dataclass
class Place:
    """A channel jobs are asked for in, with one member per job."""

    shard: int
    channel: Channel
    members: list[Member]


@dataclass(frozen=True)
class Shape:
    """What each guild has besides its owner and the bot: text channels and extra roles."""

    channels: int = 1
    roles: int = 0


@dataclass
class World:
    discord: StandIn
    guilds: int
    shape: Shape
    places: list[list[Place]]  # by layout
    probes: dict[int, tuple[Member, Channel]]  # by shard: the guild sent last, its owner
    built_seconds: float = 0.0
    built_cpu: float = 0.0
    built_mb: float = 0.0  # this process's RSS growth while building it
    shards: int = SHARDS


def build(discord: StandIn, guilds: int, shape: Shape, layouts: int, channels: int,
          per_channel: int, shards: int = SHARDS) -> World:
    """``guilds`` guilds, in turn on shard 0, 1, ... of ``shards``, each with an owner, the bot
    (with its role), ``shape``'s channels and roles; ``channels`` of them for each layout get
    ``per_channel`` members, spread evenly over the guilds and the shards. Built before
    any bot connects: nothing is dispatched.

    Spread, because discord.py finds a channel by its id by going through the guilds one by
    one: guilds at the front would make the bot's channel lookups look cheap. Each layout asks
    for its jobs in channels of its own: its database is new, so its job numbers start at 1
    again, and the bot's nonces (``rcvb-video-<job id>``) would make the stand-in, as Discord,
    answer a post with the previous layout's message."""
    total = layouts * channels
    if total > guilds:
        raise ValueError(f"{total} channels need as many guilds, not {guilds}")
    spots = {}  # guild index -> (layout, shard)
    for number in range(total):
        shard = number % shards
        base = number * guilds // total
        spots[base - base % shards + shard] = ((number // shards) % layouts, shard)
    if len(spots) != total:
        raise ValueError(f"{guilds} guilds are too few for {total} channels")
    rss, cpu, wall = memory_mb(os.getpid(), "VmRSS"), time.process_time(), time.monotonic()
    world = World(discord, guilds, shape, [[] for _ in range(layouts)], {}, shards=shards)
    for index in range(guilds):
        shard = index % shards
        guild = discord.guild(f"Guild {index}", shard=(shard, shards))
        channel = discord.channel(guild, "videos")
        for number in range(1, shape.channels):
            discord.channel(guild, f"channel-{number}")
        for number in range(shape.roles):
            discord.role(guild, f"role-{number}")
        if index in spots:
            layout, _ = spots[index]
            world.places[layout].append(Place(shard, channel, [
                discord.member(guild, f"m{index}-{n}") for n in range(per_channel)]))
        world.probes[shard] = (guild.members[guild.owner_id], channel)
    world.built_seconds = time.monotonic() - wall
    world.built_cpu = time.process_time() - cpu
    world.built_mb = memory_mb(os.getpid(), "VmRSS") - rss
    return world


async def connections_to(server: PostgresServer, database: str) -> int:
    conn = await asyncpg.connect(server.url)
    try:
        return int(await conn.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = $1", database))
    finally:
        await conn.close()


# ---- one layout ---------------------------------------------------------------------------------


@dataclass
class ShardStart:
    shard: int
    identified: float  # seconds after its process started: the stand-in got its IDENTIFY
    sent: float  # ... READY and every GUILD_CREATE written to the socket
    ready: float  # ... the probe answered


@dataclass
class Delivery:
    asked: int = 0
    answered: int = 0  # "Job #n is queued"
    jobs: int = 0  # rows in the database
    submits: int = 0  # at the simulator
    videos: int = 0  # video messages
    once: int = 0  # jobs with exactly one video and one card
    wrong_poster: int = 0  # videos posted by a process that does not own the guild
    latencies: list[float] = field(default_factory=list)
    waits: list[float] = field(default_factory=list)  # completed -> seen by a poll
    work: list[float] = field(default_factory=list)  # seen -> posted
    calls: list[int] = field(default_factory=list)
    ack: list[float] = field(default_factory=list)
    wall: float = 0.0
    cpu: dict[str, float] = field(default_factory=dict)


@dataclass
class Figures:
    name: str
    processes: int
    guilds: list[int]  # per process
    starts: list[list[ShardStart]]  # per process
    ready: float = 0.0  # the layout, from the start of its processes
    peak_ready: list[float] = field(default_factory=list)  # VmHWM per process, MB
    rss_ready: list[float] = field(default_factory=list)
    peak_end: list[float] = field(default_factory=list)
    start_wall: float = 0.0
    start_cpu: dict[str, float] = field(default_factory=dict)
    db_connections: int = 0
    idle_cpu: list[float] = field(default_factory=list)  # % of a core per process, idle
    delivery: Delivery | None = None


@dataclass(frozen=True)
class Layout:
    name: str
    shard_ids: tuple[tuple[int, ...], ...]  # per process
    deliver: bool = True


BASELINE = Layout("baseline", ((0, 1),), deliver=False)
ONE = Layout("1 process", ((0, 1),))
TWO = Layout("2 processes", ((0,), (1,)))


def guilds_of(world: World, ids: tuple[int, ...]) -> int:
    return sum(1 for g in world.discord.state.guilds.values()
               if (g.id >> 22) % world.shards in ids)


async def wait_shard(world: World, bot: BotProcess, shard: int, command: str = "jobs",
                     options: dict[str, object] | None = None,
                     patience: float = PATIENCE) -> ShardStart:
    """Until the shard is ready (see the module's docstring); ``command`` with ``options`` is
    the probe."""
    discord = world.discord
    deadline = time.monotonic() + patience

    def check() -> None:
        if not bot.running:
            raise RuntimeError(f"the bot exited with {bot.returncode}:\n{bot.output()[-3000:]}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"shard {shard} was not ready within {patience:g} s:\n"
                               f"{bot.output()[-3000:]}\n{discord.report()}")

    while True:
        check()
        found = [c for c in discord.live_connections(bot.token)
                 if c.shard_id == shard and c.opened_at >= bot.started_at and c.ready]
        if found:
            conn = found[0]
            break
        await asyncio.sleep(TICK)
    while conn.outbox.qsize():
        check()
        await asyncio.sleep(TICK)
    sent = time.monotonic()
    owner, channel = world.probes[shard]
    while True:  # the commands are synced by the process with shard 0, maybe not yet
        check()
        with contextlib.suppress(BadInteraction):
            find_command(discord.state, channel.guild_id, command)
            break
        await asyncio.sleep(TICK)
    probe = await discord.slash(owner, channel, command, **(options or {}))
    while probe.acknowledged_at is None:
        check()
        await asyncio.sleep(TICK)
    assert conn.identified_at is not None
    return ShardStart(shard, conn.identified_at - bot.started_at, sent - bot.started_at,
                      probe.acknowledged_at - bot.started_at)


def plans(jobs: int, seed: int) -> list[Plan]:
    """4-6 s runs after 2-20 s in the queue. The simulator's queue is first in, first out: the
    queue times rise with the order of the submits, so that each job waits its own."""
    rng = random.Random(seed)
    queued = sorted(rng.uniform(2, 20) for _ in range(jobs))
    return [Plan(run_seconds=rng.uniform(4, 6), queue_seconds=q) for q in queued]


@contextlib.asynccontextmanager
async def simulator(jobs: int, seed: int) -> AsyncIterator[tuple[RemoteSimulator, int]]:
    """The simulator in its own process, its clock running; and that process's id."""
    before = {p.pid for p in multiprocessing.active_children()}
    async with simulator_process({"workers": max(jobs, 1)}, plans(jobs, seed)) as sim:
        sim.clock.start()
        pids = [p.pid for p in multiprocessing.active_children()
                if p.pid is not None and p.pid not in before]
        yield sim, pids[0] if pids else 0


async def run_layout(layout: Layout, world: World, places: list[Place],
                     server: PostgresServer, workdir: Path, jobs: int, seed: int) -> Figures:
    discord = world.discord
    slug = re.sub(r"\W", "_", layout.name)
    database = f"shards_{os.getpid()}_{slug}"
    url = await server.create_database(database)
    async with simulator(jobs if layout.deliver else 0, seed) as (sim, sim_pid), \
            Launcher(workdir / slug) as launch:
        bots = []
        for number, ids in enumerate(layout.shard_ids):
            env = bot_environment(
                discord, runcomfy_url=sim.url, runcomfy_token=TOKEN, database_url=url,
                token=f"{layout.name}-{number}".replace(" ", "-"),
                bot__shard_count=SHARDS, bot__shard_ids=",".join(map(str, ids)))
            bots.append(await launch(discord, env, start=False))
        assert server.process is not None
        others: dict[str, Callable[[], float]] = {
            "stand-in (the bench's process)": time.process_time,
            "PostgreSQL": functools.partial(tree_cpu_seconds, server.process.pid),
            "RunComfy simulator": functools.partial(cpu_seconds, sim_pid),
            MACHINE: machine_cpu_seconds,
        }
        meter = CpuMeter(others)
        for bot in bots:
            await bot.start()
        starts = await asyncio.gather(*(
            asyncio.gather(*(wait_shard(world, bot, shard) for shard in ids))
            for bot, ids in zip(bots, layout.shard_ids, strict=True)))
        wall, cpu = meter.stop()
        figures = Figures(layout.name, len(bots), [guilds_of(world, ids)
                                                   for ids in layout.shard_ids],
                          [list(s) for s in starts])
        launched = min(bot.started_at for bot in bots)
        figures.ready = max(s.ready + bot.started_at - launched
                            for bot, shards in zip(bots, starts, strict=True) for s in shards)
        pids = [bot.pid or 0 for bot in bots]
        figures.peak_ready = [memory_mb(pid, "VmHWM") for pid in pids]
        figures.rss_ready = [memory_mb(pid, "VmRSS") for pid in pids]
        figures.start_wall = wall
        figures.start_cpu = {**{f"bot {n + 1}": cpu_seconds(pid) for n, pid in enumerate(pids)},
                             **cpu}
        figures.db_connections = await connections_to(server, database)
        await asyncio.sleep(IDLE_AFTER)  # discord.py's on_ready comes 2 s after the last guild
        idle = CpuMeter({str(pid): functools.partial(cpu_seconds, pid) for pid in pids})
        await asyncio.sleep(IDLE_FOR)
        idle_wall, idle_cpu = idle.stop()
        figures.idle_cpu = [idle_cpu[str(pid)] / idle_wall * 100 for pid in pids]
        if layout.deliver:
            figures.delivery = await deliver(world, places, bots, layout, sim, url, jobs, {
                **{f"bot {n + 1}": functools.partial(cpu_seconds, pid)
                   for n, pid in enumerate(pids)},
                **others})
        figures.peak_end = [memory_mb(pid, "VmHWM") for pid in pids]
        for bot in bots:
            await bot.terminate()
    return figures


def png(width: int = 640, height: int = 480) -> bytes:
    """The image members animate (the same for every job)."""
    out = io.BytesIO()
    Image.new("RGB", (width, height), (90, 140, 200)).save(out, format="PNG")
    return out.getvalue()


async def deliver(world: World, places: list[Place], bots: list[BotProcess], layout: Layout,
                  sim: RemoteSimulator, url: str, jobs: int,
                  parts: dict[str, Callable[[], float]]) -> Delivery:
    discord = world.discord
    image = png()
    since = time.monotonic()
    meter = CpuMeter(parts)
    runs: list[InteractionHandle] = []
    for index in range(jobs):
        place = places[index % len(places)]
        member = place.members[index // len(places)]
        runs.append(await discord.slash(member, place.channel, "kling-2-1",
                                        prompt=f"{layout.name}: job {index}",
                                        image=(f"z{index}.png", image)))
        await asyncio.sleep(0.02)  # 50 commands a second
    await discord.wait_for(lambda: all(r.content for r in runs), PATIENCE,
                           what="an answer to every command")
    await discord.wait_for(lambda: len(videos(discord, places, since)) >= jobs, PATIENCE,
                           what="every video", interval=0.1)
    result = Delivery(asked=jobs)
    result.wall, result.cpu = meter.stop()
    await asyncio.sleep(7.0)  # two poll intervals more: a video posted twice would show
    result.answered = sum((r.content or "").startswith("Job #") for r in runs)
    result.ack = [r.ack_seconds for r in runs if r.ack_seconds is not None]
    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch("SELECT id, request_id, finished_at FROM jobs")
    finally:
        await conn.close()
    simulated = {j.request_id: j for j in await sim.jobs()}
    wall_minus_monotonic = time.time() - time.monotonic()  # the bots' clock is the wall's
    posted = videos(discord, places, since)
    cards = Counter(int(m.group(1)) for place in places
                    for message in discord.bot_messages(place.channel)
                    if message.created >= since and message.embeds
                    and (m := CARD.match(str((message.embeds[0].get("footer") or {})
                                             .get("text", "")))))
    owner = {shard: bot.token for bot, ids in zip(bots, layout.shard_ids, strict=True)
             for shard in ids}
    posters: dict[int, set[str]] = {}  # channel -> the tokens that uploaded files there
    for request in discord.requests("POST", r"^/channels/\d+/messages$"):
        if request.files and request.at >= since:
            posters.setdefault(int(request.path.split("/")[2]), set()).add(request.token)
    result.jobs, result.submits = len(rows), len(simulated)
    result.videos = sum(len(found) for found in posted.values())
    for row in rows:
        found = posted.get(row["id"], [])
        sim_job = simulated.get(row["request_id"])
        result.once += len(found) == 1 and cards[row["id"]] == 1 and sim_job is not None
        if sim_job is None:
            continue
        result.calls.append(sim_job.status_calls + sim_job.result_calls)
        if found and sim_job.completed_at is not None:
            completed = sim.clock.absolute(sim_job.completed_at)
            result.latencies.append(found[0].created - completed)
            if row["finished_at"] is not None:  # the bot's wall clock when a poll saw it
                seen = row["finished_at"] - wall_minus_monotonic
                result.waits.append(seen - completed)
                result.work.append(found[0].created - seen)
    for place in places:
        expected = owner[place.shard]
        result.wrong_poster += len(posters.get(place.channel.id, set()) - {expected})
    return result


def videos(discord: StandIn, places: list[Place], since: float) -> dict[int, list[Message]]:
    """The video messages posted since ``since`` in the places' channels, by job number."""
    found: dict[int, list[Message]] = {}
    for place in places:
        for message in discord.bot_messages(place.channel):
            if message.created >= since and (m := VIDEO.search(message.content)):
                found.setdefault(int(m.group(1)), []).append(message)
    return found


# ---- the tables ---------------------------------------------------------------------------------


def percentile(values: list[float], share: float) -> float:
    """The value ``share`` of the way up the sorted values (nearest rank)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def table(title: str, columns: list[str], rows: list[tuple[str, list[str]]]) -> None:
    width = max(len(name) for name, _ in rows)
    print(f"\n{title}")
    print(f"{'':<{width}}  " + "  ".join(f"{c:>18}" for c in columns))
    for name, values in rows:
        print(f"{name:<{width}}  " + "  ".join(f"{v:>18}" for v in values))


def per_process(values: list[float], fmt: str = "{:.0f}") -> str:
    return " + ".join(fmt.format(v) for v in values)


def start_rows(runs: list[Figures]) -> list[tuple[str, list[str]]]:
    def shard_figure(f: Figures, pick: Callable[[ShardStart], float]) -> str:
        by_shard = sorted((s.shard, pick(s)) for starts in f.starts for s in starts)
        return " / ".join(f"{v:.1f}" for _, v in by_shard)

    rows = [
        ("guilds per process", [per_process([float(g) for g in f.guilds]) for f in runs]),
        ("shard 0 / 1: IDENTIFY received (s)",
         [shard_figure(f, lambda s: s.identified) for f in runs]),
        ("shard 0 / 1: all GUILD_CREATEs sent (s)",
         [shard_figure(f, lambda s: s.sent) for f in runs]),
        ("shard 0 / 1: ready, /jobs answered (s)",
         [shard_figure(f, lambda s: s.ready) for f in runs]),
        ("shard 0 / 1: IDENTIFY -> ready (s)",
         [shard_figure(f, lambda s: s.ready - s.identified) for f in runs]),
        ("ready, every shard (s)", [f"{f.ready:.1f}" for f in runs]),
        ("peak RSS at ready, per process (MB)", [per_process(f.peak_ready) for f in runs]),
        ("... all processes (MB)", [f"{sum(f.peak_ready):.0f}" for f in runs]),
        ("RSS at ready, per process (MB)", [per_process(f.rss_ready) for f in runs]),
        ("CPU to ready, per bot process (s)",
         [per_process([v for k, v in f.start_cpu.items() if k.startswith("bot")], "{:.1f}")
          for f in runs]),
    ]
    for part in PARTS:
        rows.append((f"CPU to ready, {part} (s)",
                     [f"{f.start_cpu.get(part, 0):.1f}" for f in runs]))
    rows.append(("CPU meanwhile, other processes on the machine (s)",
                 [f"{others(f.start_cpu):.1f}" for f in runs]))
    rows.append(("PostgreSQL connections held at ready", [f"{f.db_connections}" for f in runs]))
    rows.append((f"idle CPU, {IDLE_FOR:g} s from ready + {IDLE_AFTER:g} s (% of a core)",
                 [per_process(f.idle_cpu, "{:.1f}") for f in runs]))
    return rows


def delivery_rows(runs: list[Figures]) -> list[tuple[str, list[str]]]:
    done = [f.delivery for f in runs if f.delivery is not None]

    def fmt(pick: Callable[[Delivery], str]) -> list[str]:
        return [pick(d) for d in done]

    rows = [
        ("commands answered 'Job #n is queued'", fmt(lambda d: f"{d.answered} of {d.asked}")),
        ("acknowledged, p50 / p95 (s)",
         fmt(lambda d: f"{statistics.median(d.ack):.2f} / {percentile(d.ack, 0.95):.2f}")),
        ("jobs recorded / submits at RunComfy", fmt(lambda d: f"{d.jobs} / {d.submits}")),
        ("videos posted", fmt(lambda d: f"{d.videos}")),
        ("jobs with exactly one video and card", fmt(lambda d: f"{d.once} of {d.jobs}")),
        ("videos posted by a non-owner process", fmt(lambda d: f"{d.wrong_poster}")),
        ("completed -> posted, p50 (s)",
         fmt(lambda d: f"{statistics.median(d.latencies):.2f}")),
        ("completed -> posted, p95 (s)", fmt(lambda d: f"{percentile(d.latencies, 0.95):.2f}")),
        ("completed -> posted, max (s)", fmt(lambda d: f"{max(d.latencies):.2f}")),
        ("  of which completed -> seen by a poll, p50 / p95 (s)",
         fmt(lambda d: f"{statistics.median(d.waits):.2f} / {percentile(d.waits, 0.95):.2f}")),
        ("  of which seen -> posted, p50 / p95 (s)",
         fmt(lambda d: f"{statistics.median(d.work):.2f} / {percentile(d.work, 0.95):.2f}")),
        ("status + result calls per job, mean", fmt(lambda d: f"{statistics.mean(d.calls):.2f}")),
        ("... most for one job", fmt(lambda d: f"{max(d.calls)}")),
        ("first command -> last video (s)", fmt(lambda d: f"{d.wall:.1f}")),
        ("peak RSS at the end, per process (MB)",
         [per_process(f.peak_end) for f in runs if f.delivery is not None]),
    ]
    rows.append(("CPU per job, bot processes / PostgreSQL (ms)",
                 fmt(lambda d: f"{bots_cpu(d) * 1e3 / d.asked:.0f} / "
                               f"{d.cpu['PostgreSQL'] * 1e3 / d.asked:.0f}")))
    rows.append(("CPU, per bot process (% of a core)",
                 fmt(lambda d: per_process([d.cpu[k] / d.wall * 100 for k in d.cpu
                                            if k.startswith("bot")], "{:.1f}"))))
    for part in PARTS:
        rows.append((f"CPU, {part} (% of a core)",
                     [f"{d.cpu[part] / d.wall * 100:.1f}" for d in done]))
    rows.append(("CPU, other processes on the machine (% of a core)",
                 [f"{others(d.cpu) / d.wall * 100:.1f}" for d in done]))
    return rows


def bots_cpu(delivery: Delivery) -> float:
    """CPU seconds of every bot process of the layout, together."""
    return sum(v for k, v in delivery.cpu.items() if k.startswith("bot"))


def code_version() -> str:
    """The commit measured, and how many files differ from it (other work in progress)."""
    git = ["git", "-C", str(Path(__file__).resolve().parents[1])]
    try:
        commit = subprocess.run([*git, "rev-parse", "--short", "HEAD"],  # noqa: S603
                                capture_output=True, text=True, check=True).stdout.strip()
        changed = subprocess.run([*git, "status", "--porcelain"],  # noqa: S603
                                 capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return "unknown (no git)"
    dirty = [line for line in changed.splitlines() if line.strip()]
    return f"{commit}" + (f" with {len(dirty)} files changed" if dirty else "")


def report(world: World, runs: list[Figures], base: Figures | None) -> None:
    print(f"\ncode: {code_version()}")
    print(f"\n{world.guilds:,} guilds on 2 shards ({world.shape.channels} text channels and "
          f"{world.shape.roles + 2} roles each), {os.cpu_count()} cores; stand-in built them "
          f"in {world.built_seconds:.1f} s ({world.built_cpu:.1f} s CPU, "
          f"+{world.built_mb:.0f} MB in the bench's process)")
    shown = ([base] if base is not None else []) + runs
    table("Start-up", [f.name for f in shown], start_rows(shown))
    if base is not None:
        print("\nPer guild, over the baseline (peak RSS at ready; CPU of the bot to ready):")
        for f in runs:
            for n, guilds in enumerate(f.guilds):
                if not guilds:
                    continue
                memory = (f.peak_ready[n] - base.peak_ready[0]) * MB / guilds
                cpu = (f.start_cpu[f"bot {n + 1}"] - base.start_cpu["bot 1"]) * 1e3 / guilds
                print(f"  {f.name}, process {n + 1}: {memory:.1f} kB and {cpu:.2f} ms of CPU "
                      f"per guild ({guilds:,} guilds)")
    if any(f.delivery is not None for f in runs):
        table("Delivery: jobs completed at RunComfy -> videos in the channels",
              [f.name for f in runs if f.delivery is not None], delivery_rows(runs))
    busy = max([others(f.start_cpu) / f.start_wall for f in shown if f.start_wall]
               + [others(f.delivery.cpu) / f.delivery.wall for f in runs
                  if f.delivery is not None and f.delivery.wall])
    if busy > BUSY:
        print(f"\nOther processes kept up to {busy:.2f} cores busy during a measurement: "
              "these figures are not fair (the bench shares the machine's cores); run again "
              "on a quiet machine.")


async def main(guilds: int, shape: Shape, jobs: int, channels: int, layouts: list[Layout],
               seed: int, logs: Path | None) -> None:
    per_channel = math.ceil(jobs / channels)
    task = asyncio.current_task()
    assert task is not None
    for stop in (signal.SIGTERM, signal.SIGHUP):  # cleaned up as after Ctrl-C
        asyncio.get_running_loop().add_signal_handler(stop, task.cancel)
    with tempfile.TemporaryDirectory(prefix="rcvb-shards-") as folder, \
            postgres_server() as server:
        workdir = logs or Path(folder)
        base = None
        async with StandIn(shards=SHARDS) as small:
            probe_world = build(small, SHARDS, shape, 0, 0, 0)
            base = await run_layout(BASELINE, probe_world, [], server, workdir, 0, seed)
            print(f"baseline ready in {base.ready:.1f} s", flush=True)
        async with StandIn(shards=SHARDS) as discord:
            world = build(discord, guilds, shape, len(layouts), channels, per_channel)
            print(f"built {guilds:,} guilds in {world.built_seconds:.1f} s", flush=True)
            runs = []
            for number, layout in enumerate(layouts):
                runs.append(await run_layout(layout, world, world.places[number], server,
                                             workdir, jobs, seed))
                print(f"{layout.name}: ready in {runs[-1].ready:.1f} s", flush=True)
            report(world, runs, base)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--guilds", type=int, default=10_000)
    parser.add_argument("--guild-channels", type=int, default=1,
                        help="text channels in each guild")
    parser.add_argument("--guild-roles", type=int, default=0,
                        help="roles in each guild besides @everyone and the bot's")
    parser.add_argument("--jobs", type=int, default=200)
    parser.add_argument("--channels", type=int, default=20)
    parser.add_argument("--order", choices=["one-two", "two-one", "one", "two"],
                        default="one-two", help="which layout runs first (or only one)")
    parser.add_argument("--seed", type=int, default=8)
    parser.add_argument("--logs", type=Path, default=None,
                        help="keep the bots' output in this folder (default: thrown away)")
    arguments = parser.parse_args()
    order = [{"one": ONE, "two": TWO}[name] for name in arguments.order.split("-")]
    try:
        asyncio.run(main(arguments.guilds, Shape(arguments.guild_channels,
                                                 arguments.guild_roles),
                         arguments.jobs, arguments.channels, order, arguments.seed,
                         arguments.logs))
    except (asyncio.CancelledError, KeyboardInterrupt):
        print("stopped; every process the bench started was stopped", file=sys.stderr)
        sys.exit(1)
