"""Fitting a video under a server's upload limit (``bot.fitting``) against ffmpeg's two-pass
encode, the established way to hit a size, in the same run.

The clips are real MP4s (``bot.simulator.clips.make_clip``: H.264 and AAC, a drifting
gradient under film grain that changes every frame), as large as Kling's outputs, each over
its limit:

- 1080p, 5 s, about 5 MB a second, into 10 MiB, as ``make_clip`` makes it (x264's
  ultrafast: an I-frame, then P-frames only);
- the same re-encoded with B-frames and keyframes as most encoders' outputs have them (IBBBP,
  an I-frame every 2 s; at 1.25 x the bitrate, about 8 MB a second);
- 1080p, 10 s; 4K (3840x2160), 5 s and 10 s, about 12 MB a second; all into 10 MiB;
- 1080p, 10 s, into 25 MiB.

Two ways of fitting each, taken in turn (bot, ffmpeg, ffmpeg, bot, ...):

- **bot**: ``bot.fitting.fit`` in this process (PyAV: one pass of x264 at an average bitrate
  under a VBV, a second only if the first overshot), timed on the wall clock and in CPU
  seconds (every thread of the process);
- **ffmpeg two-pass** (the reference): ffmpeg's own binary (``imageio_ffmpeg``, the
  project's ``bench`` extra), libx264 with the bot's preset (``bot.fitting.PRESET``) at the
  video bitrate and picture size ``bot.fitting.plan`` picks for the clip and the limit (scaled
  with ffmpeg's default, bicubic), ``-pass 1`` then ``-pass 2``, AAC at the plan's audio
  bitrate, ``+faststart``; its CPU is its processes' (``RUSAGE_CHILDREN``).

Then for each clip: the size used (% of the limit; the bot's first attempt *landed* when it
is within 90-100 % of the limit), the quality of the last output of each against the
original (ffmpeg's ``psnr`` and ``ssim`` filters; the original scaled down to the outputs'
size with ``lanczos``, a scaler neither encoder uses, where the plan scaled the picture;
``--compare-at source`` scales the outputs up to the original's size instead), and where the
time goes: the source's decoding alone, each of the reference's passes, ffmpeg one-pass with
the bot's own settings (ABR under the same VBV) on the first clip. (A copy of the bot's encode
loop once measured the source's frame types forced on x264; ``bot.fitting`` now clears them.)

Last, the effect of a fit on the bot's event loop: ``Fitter(workers=1)`` fitting the first
clip while this process's loop runs a lag sampler (``asyncio.sleep(5 ms)``: the overshoot)
and another channel's stream of short tasks (a task every 10 ms that yields three times and
serialises a small message: from its creation to its end), against the same with the loop
idle (idle, fit, fit, idle), with the time the loop's thread waited for a core (its
schedstat). Contrasts, once each: the reference's two-pass (a plain nice 0 process), two busy
loops at nice 10 (the workers' niceness where there is no ``SCHED_IDLE``), and ``fit`` alone
in a process at ``SCHED_IDLE`` (as the workers are on Linux). The bot answering commands and
delivering videos while it fits: ``bench.fitting_load``.

    .venv/bin/python -m bench.fitting [--quick] [--pairs N] [--compare-at output|source]
                                      [--keep DIR] [--no-loop]

Targets: the bot's wall and CPU time <= 1.0 x the reference's; never over the limit, the
first attempt landed in >= 90 % of the bot's fits; PSNR Y >= the reference's - 0.5 dB; the
loop's p95 and p99 (lag and short tasks) <= 1.1 x idle while fitting.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import importlib
import json
import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import av

from bench.store_lifecycle import Others, percentile
from bot.fitting import (
    AUDIO_RATE,
    PRESET,
    FitStatus,
    Fitter,
    Plan,
    fit,
    plan,
    probe,
)
from bot.simulator.clips import make_clip

MIB = 1024 * 1024
LANDED = 0.90  # of the limit: a first attempt at least this large (and not over) landed
FIRST_ATTEMPTS = 0.90  # of the bot's fits must land at the first attempt
PSNR_SLACK = 0.5  # dB the bot may be under the reference
LOOP_SLACK = 1.1  # the loop's p95 and p99 while fitting, times idle
SLEEP = 0.005  # the lag sampler's sleep
EVERY = 0.01  # another channel's short task, this often
BOT, REFERENCE = "bot", "ffmpeg 2-pass"
CONTROL = "ffmpeg 1-pass, bot's settings"
FITTER = "Fitter.fit (worker, SCHED_IDLE)"
REFERENCE_NICE_0 = "ffmpeg 2-pass (nice 0)"
SPINNERS = "2 busy loops at nice 10"
SCHED_IDLE = "fit() alone at SCHED_IDLE"
IDLE_FIT = ("import os, sys\nfrom pathlib import Path\n"
            "os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))\n"
            "from bot.fitting import fit\n"
            "fit(Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3]))\n")
SPIN = ("import os, sys, time\nos.nice(10)\nend = time.monotonic() + float(sys.argv[1])\n"
        "while time.monotonic() < end:\n    pass\n")


@dataclass(frozen=True)
class Workload:
    width: int
    height: int
    seconds: float
    clip_bytes: int
    limit_mib: int
    pairs: int  # bot and reference runs each
    b_frames: bool = False  # the clip re-encoded as encoders' outputs are: IBBBP, I every 2 s
    control: bool = False  # ffmpeg one-pass with the bot's settings too

    @property
    def name(self) -> str:
        side = "4K" if self.width >= 3840 else f"{min(self.width, self.height)}p"
        gop = " IBBBP" if self.b_frames else ""
        return f"{side} {self.seconds:g} s{gop} > {self.limit_mib} MiB"

    @property
    def limit(self) -> int:
        return self.limit_mib * MIB


@dataclass
class Encode:
    wall: float
    cpu: float
    size: int
    attempts: int = 1
    passes: list[tuple[float, float]] = field(default_factory=list)  # (wall, cpu) each


@dataclass
class Quality:
    psnr_y: float
    psnr: float  # ffmpeg's "average": the three planes
    ssim: float


@dataclass
class Outcome:
    workload: Workload
    clip_size: int
    plan: Plan
    runs: dict[str, list[Encode]]
    quality: dict[str, Quality]
    decode: Encode
    x264: dict[str, str]  # x264's own line of options, per variant (a few of them)
    others: float


@dataclass
class Phase:
    name: str
    lags: list[float]  # ms
    tasks: list[float]  # ms
    seconds: float
    others: float
    waited: tuple[float, int]  # the loop's thread: ms on a run queue, times it was scheduled
    fit_wall: float | None = None

    @property
    def wait_per_run(self) -> float:
        """ms the loop's thread waited for a core each time it was woken (on average)."""
        return self.waited[0] / self.waited[1] if self.waited[1] else 0.0


def scheduled() -> tuple[float, int]:
    """This thread's time waiting on a run queue (ms) and the times it ran, so far
    (``/proc/thread-self/schedstat``; zeros where there is none)."""
    try:
        with open("/proc/thread-self/schedstat", encoding="ascii") as stat:
            _, waiting, runs = stat.read().split()[:3]
    except (OSError, ValueError):
        return 0.0, 0
    return int(waiting) / 1e6, int(runs)


@functools.cache
def ffmpeg() -> str:
    """ffmpeg's own binary, as ``imageio_ffmpeg`` ships it."""
    try:  # the bench extra's (untyped, and absent where only the test extra is installed)
        imageio_ffmpeg: Any = importlib.import_module("imageio_ffmpeg")
    except ImportError:
        raise SystemExit("ffmpeg's binary comes with the bench extra: "
                         "pip install -e '.[bench]'") from None
    return str(imageio_ffmpeg.get_ffmpeg_exe())


def run_ffmpeg(*arguments: str) -> tuple[float, float]:
    """One ffmpeg, quiet; its wall and CPU seconds."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run([ffmpeg(), "-hide_banner", "-nostdin", "-loglevel", "error",  # noqa: S603
                           "-y", *arguments], capture_output=True, text=True, check=False)
    wall = time.perf_counter() - started
    if done.returncode:
        raise RuntimeError(f"ffmpeg {' '.join(arguments)} failed: {done.stderr.strip()}")
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)


def scaling(source: Path, the_plan: Plan) -> list[str]:
    clip = probe(source)
    if (clip.width, clip.height) == (the_plan.width, the_plan.height):
        return []
    return ["-vf", f"scale={the_plan.width}:{the_plan.height}"]  # ffmpeg's default: bicubic


def audio(the_plan: Plan) -> list[str]:
    if not the_plan.audio_bitrate:
        return ["-an"]
    return ["-c:a", "aac", "-b:a", str(the_plan.audio_bitrate), "-ar", str(AUDIO_RATE),
            "-ac", "2"]


def video(source: Path, the_plan: Plan) -> list[str]:
    return ["-i", str(source), *scaling(source, the_plan), "-pix_fmt", "yuv420p",
            "-c:v", "libx264", "-preset", PRESET, "-b:v", str(the_plan.video_bitrate)]


def by_bot(source: Path, target: Path, limit: int) -> Encode:
    started, cpu = time.perf_counter(), time.process_time()
    fitted = fit(source, target, limit)
    return Encode(time.perf_counter() - started, time.process_time() - cpu, fitted.size,
                  fitted.attempts)


def by_reference(source: Path, target: Path, the_plan: Plan, log: Path) -> Encode:
    """ffmpeg two-pass, as the plan says."""
    first = run_ffmpeg(*video(source, the_plan), "-pass", "1", "-passlogfile", str(log),
                       "-an", "-f", "null", "-")
    second = run_ffmpeg(*video(source, the_plan), "-pass", "2", "-passlogfile", str(log),
                        *audio(the_plan), "-movflags", "+faststart", str(target))
    return Encode(first[0] + second[0], first[1] + second[1], target.stat().st_size,
                  passes=[first, second])


def by_control(source: Path, target: Path, the_plan: Plan) -> Encode:
    """ffmpeg one pass with the bot's settings: ABR under the same VBV."""
    wall, cpu = run_ffmpeg(*video(source, the_plan), "-maxrate", str(the_plan.max_bitrate),
                           "-bufsize", str(the_plan.buffer_bits), *audio(the_plan),
                           "-movflags", "+faststart", str(target))
    return Encode(wall, cpu, target.stat().st_size)


def decoding(source: Path) -> Encode:
    """The source's video decoded alone (ffmpeg's binary): what every pass pays first."""
    wall, cpu = run_ffmpeg("-i", str(source), "-map", "0:v", "-f", "null", "-")
    return Encode(wall, cpu, 0)


PSNR_LINE = re.compile(r"\[psnr@(\w+) @ [^]]+\] PSNR y:([\d.]+|inf) .*average:([\d.]+|inf)")
SSIM_LINE = re.compile(r"\[ssim@(\w+) @ [^]]+\] SSIM .*All:([\d.]+)")


def quality(source: Path, outputs: dict[str, Path], at: str) -> dict[str, Quality]:
    """PSNR and SSIM of each output against ``source``, in one ffmpeg (the source decoded
    once): at the outputs' size (the source scaled down with lanczos when they differ) or,
    ``at="source"``, at the source's (the outputs scaled up with lanczos)."""
    names = list(outputs)
    first = probe(outputs[names[0]])
    original = probe(source)
    same = (first.width, first.height) == (original.width, original.height)
    inputs = ["-i", str(source)]
    graph = []
    labels = [f"r{index}" for index in range(2 * len(names))]
    down = "" if same or at == "source" else f"scale={first.width}:{first.height}:flags=lanczos,"
    graph.append(f"[0:v]setpts=PTS-STARTPTS,{down}format=yuv420p,"
                 f"split={len(labels)}" + "".join(f"[{label}]" for label in labels))
    for index, name in enumerate(names):
        inputs += ["-i", str(outputs[name])]
        up = ("" if same or at != "source"
              else f"scale={original.width}:{original.height}:flags=lanczos,")
        key = re.sub(r"\W", "", name)
        graph.append(f"[{index + 1}:v]setpts=PTS-STARTPTS,{up}format=yuv420p,split[o{index}a]"
                     f"[o{index}b]")
        graph.append(f"[o{index}a][r{2 * index}]psnr@{key}[p{index}]")
        graph.append(f"[o{index}b][r{2 * index + 1}]ssim@{key}[s{index}]")
    maps = [item for index in range(len(names))
            for item in ("-map", f"[p{index}]", "-map", f"[s{index}]")]
    done = subprocess.run([ffmpeg(), "-hide_banner", "-nostdin", "-nostats", *inputs,  # noqa: S603
                           "-lavfi", ";".join(graph), *maps, "-f", "null", "-"],
                          capture_output=True, text=True, check=False)
    if done.returncode:
        raise RuntimeError(f"ffmpeg's psnr/ssim failed: {done.stderr[-2000:]}")
    psnr = {m[1]: (float(m[2]), float(m[3])) for m in PSNR_LINE.finditer(done.stderr)}
    ssim = {m[1]: float(m[2]) for m in SSIM_LINE.finditer(done.stderr)}
    result = {}
    for name in names:
        key = re.sub(r"\W", "", name)
        result[name] = Quality(psnr[key][0], psnr[key][1], ssim[key])
    return result


X264_OPTIONS = ("threads", "sliced_threads", "rc", "bframes", "scenecut")


def x264_line(path: Path) -> str:
    """x264's version and a few of its options, from the line it writes into the stream."""
    data = path.read_bytes()
    start = data.find(b"x264 - core ")
    if start < 0:
        return "?"
    line = data[start:start + 2000].split(b"\0")[0].decode("ascii", "replace")
    core = re.search(r"core (\d+)", line)
    options = dict(re.findall(r"(\w+)=(\S+)", line))
    return f"core {core[1] if core else '?'} " + " ".join(
        f"{name}={options[name]}" for name in X264_OPTIONS if name in options)


def alternating(pairs: int) -> list[str]:
    """bot, reference, reference, bot, ...: ``pairs`` of each."""
    order = [BOT, REFERENCE, REFERENCE, BOT] * ((pairs + 1) // 2)
    return order[:2 * pairs]


def measure(workload: Workload, source: Path, folder: Path, at: str) -> Outcome:
    clip = probe(source)
    the_plan = plan(clip, workload.limit)
    if the_plan is None:
        raise SystemExit(f"{workload.name}: the bot would post a link (no plan)")
    outputs = {BOT: folder / "bot.mp4", REFERENCE: folder / "reference.mp4",
               CONTROL: folder / "control.mp4"}
    runs: dict[str, list[Encode]] = {BOT: [], REFERENCE: []}
    others = Others({os.getpid()})
    for variant in alternating(workload.pairs):
        if variant == BOT:
            runs[BOT].append(by_bot(source, outputs[BOT], workload.limit))
        else:
            runs[REFERENCE].append(by_reference(source, outputs[REFERENCE], the_plan,
                                                folder / "passlog"))
        print(f"  {variant}: {runs[variant][-1].wall:.1f} s", flush=True)
    if workload.control:
        runs[CONTROL] = [by_control(source, outputs[CONTROL], the_plan)]
    busy = others.cores()
    decode = decoding(source)
    present = {name: outputs[name] for name in runs}
    return Outcome(workload, clip.size, the_plan, runs, quality(source, present, at), decode,
                   {name: x264_line(path) for name, path in present.items()}, busy)


async def loop_phase(name: str, work: Callable[[], Awaitable[float | None]]) -> Phase:
    """The event loop's lag and another channel's short tasks while ``work`` runs."""
    lags: list[float] = []
    tasks: list[float] = []
    message = {"type": 0, "content": "a video of a zebra", "embeds": [{"title": "x" * 64}]}

    async def sampler() -> None:
        while True:
            started = time.perf_counter()
            await asyncio.sleep(SLEEP)
            lags.append((time.perf_counter() - started - SLEEP) * 1000)

    async def short_task() -> None:
        for _ in range(3):
            await asyncio.sleep(0)
        json.dumps(message)

    async def channel() -> None:
        while True:
            started = time.perf_counter()
            await asyncio.create_task(short_task())
            tasks.append((time.perf_counter() - started) * 1000)
            await asyncio.sleep(EVERY)

    others = Others({os.getpid()})
    waited = scheduled()
    started = time.perf_counter()
    background = [asyncio.create_task(sampler()), asyncio.create_task(channel())]
    try:
        fit_wall = await work()
    finally:
        for task in background:
            task.cancel()
        for task in background:
            with contextlib.suppress(asyncio.CancelledError):
                await task
    seconds = time.perf_counter() - started
    now = scheduled()
    return Phase(name, lags, tasks, seconds, others.cores(),
                 (now[0] - waited[0], now[1] - waited[1]), fit_wall)


async def spinners(seconds: float) -> None:
    """Two processes at the worker's niceness doing nothing but keep a core busy each: the
    fit's CPU without the fit, to tell the scheduler's share from x264's."""
    processes = [await asyncio.create_subprocess_exec(sys.executable, "-c", SPIN, str(seconds))
                 for _ in range(2)]
    for process in processes:
        await process.wait()


async def idle_fit(source: Path, folder: Path) -> float:
    """``bot.fitting.fit`` in a process of its own at ``SCHED_IDLE``, as ``Fitter``'s workers
    are on Linux, without the pool around it."""
    started = time.perf_counter()
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", IDLE_FIT, str(source), str(folder / "idle-fit.mp4"),
        str(10 * MIB))
    if await process.wait():
        raise RuntimeError("the fit at SCHED_IDLE failed")
    return time.perf_counter() - started


async def loop_effect(source: Path, small: Path, folder: Path, pairs: int,
                      idle_seconds: float, contrast: bool) -> list[Phase]:
    """idle, fit, fit, idle, ... with ``Fitter(workers=1)``; then the contrasts, once each.
    The fitted files are left in ``folder`` (a temporary one unless ``--keep``)."""
    limit = 10 * MIB
    the_plan = plan(probe(source), limit)
    assert the_plan is not None
    small_limit = (await asyncio.to_thread(small.stat)).st_size // 2
    fitter = Fitter(1, 300.0, temp_dir=folder)
    try:
        await fitter.fit(small, small_limit)  # off the record: the worker spawned

        async def idle() -> None:
            await asyncio.sleep(idle_seconds)

        async def fitting() -> float:
            started = time.perf_counter()
            outcome = await fitter.fit(source, limit)
            wall = time.perf_counter() - started
            if outcome.status is not FitStatus.FITTED:
                raise RuntimeError(f"the fit did not fit: {outcome}")
            return wall

        async def reference() -> float:
            started = time.perf_counter()
            for arguments in ([*video(source, the_plan), "-pass", "1", "-passlogfile",
                               str(folder / "looplog"), "-an", "-f", "null", "-"],
                              [*video(source, the_plan), "-pass", "2", "-passlogfile",
                               str(folder / "looplog"), *audio(the_plan), "-movflags",
                               "+faststart", str(folder / "loop-reference.mp4")]):
                process = await asyncio.create_subprocess_exec(
                    ffmpeg(), "-hide_banner", "-nostdin", "-loglevel", "error", "-y", *arguments)
                if await process.wait():
                    raise RuntimeError("ffmpeg failed")
            return time.perf_counter() - started

        phases = []
        order = ["idle", "fit", "fit", "idle"] * ((pairs + 1) // 2)
        for kind in order[:2 * pairs]:
            if kind == "idle":
                phases.append(await loop_phase("idle", idle))
            else:
                phases.append(await loop_phase(FITTER, fitting))
            print(f"  {phases[-1].name}: {phases[-1].seconds:.1f} s", flush=True)
        if contrast:
            phases.append(await loop_phase(REFERENCE_NICE_0, reference))
            print(f"  {phases[-1].name}: {phases[-1].seconds:.1f} s", flush=True)
            phases.append(await loop_phase(SPINNERS, lambda: spinners(idle_seconds)))
            print(f"  {phases[-1].name}: {phases[-1].seconds:.1f} s", flush=True)
            if hasattr(os, "SCHED_IDLE"):
                phases.append(await loop_phase(SCHED_IDLE, lambda: idle_fit(source, folder)))
                print(f"  {phases[-1].name}: {phases[-1].seconds:.1f} s", flush=True)
        return phases
    finally:
        await fitter.close()


def med(values: list[float]) -> float:
    return statistics.median(values)


def spread(values: list[float]) -> str:
    low, high = min(values), max(values)
    return f"{low:.1f}" if round(low, 1) == round(high, 1) else f"{low:.1f}-{high:.1f}"


def report(outcomes: list[Outcome], phases: list[Phase], at: str) -> dict[str, bool]:
    """Print the tables; each target, met or not."""
    verdicts: dict[str, bool] = {}
    print("\nFitting, per clip: wall and CPU seconds (median of the runs), size as % of the limit"
          " (every run); others: cores of other processes busy meanwhile")
    print(f"{'clip':<26} {'source':>8} {'plan':>22} {'variant':<29} {'n':>2} {'wall':>6}"
          f" {'(range)':>11} {'CPU':>6} {'size %':>11} {'1st':>4} {'others':>6}")
    for outcome in outcomes:
        the_plan = outcome.plan
        planned = (f"{the_plan.width}x{the_plan.height} {the_plan.video_bitrate / 1e6:.1f}+"
                   f"{the_plan.audio_bitrate // 1000}k")
        for name, runs in outcome.runs.items():
            sizes = [100 * run.size / outcome.workload.limit for run in runs]
            first = (f"{sum(run.attempts == 1 for run in runs)}/{len(runs)}" if name == BOT
                     else "")
            walls = [r.wall for r in runs]
            print(f"{outcome.workload.name:<26} {outcome.clip_size / 1e6:>6.1f}MB {planned:>22}"
                  f" {name:<29} {len(runs):>2} {med(walls):>6.2f} {spread(walls):>11}"
                  f" {med([r.cpu for r in runs]):>6.2f} {spread(sizes):>11} {first:>4}"
                  f" {outcome.others:>6.2f}")
    print("\nbot against ffmpeg two-pass, same run (ratio of medians; target <= 1.0)")
    print(f"{'clip':<26} {'wall':>6} {'CPU':>6}  verdict")
    time_met = True
    for outcome in outcomes:
        ours, reference = outcome.runs[BOT], outcome.runs[REFERENCE]
        wall = med([r.wall for r in ours]) / med([r.wall for r in reference])
        cpu = med([r.cpu for r in ours]) / med([r.cpu for r in reference])
        ok = wall <= 1.0 and cpu <= 1.0
        time_met &= ok
        print(f"{outcome.workload.name:<26} {wall:>6.2f} {cpu:>6.2f}  {'met' if ok else 'NOT MET'}")
    verdicts["time <= 1.0 x the reference"] = time_met
    fits = [(outcome.workload, run) for outcome in outcomes for run in outcome.runs[BOT]]
    landed = sum(run.attempts == 1 and LANDED * w.limit <= run.size <= w.limit
                 for w, run in fits)
    over = sum(run.size > outcome.workload.limit
               for outcome in outcomes for name in (BOT, REFERENCE)
               for run in outcome.runs[name])
    second = sum(run.attempts == 2 for _, run in fits)
    print(f"\nThe bot's fits landed (first attempt, {LANDED:.0%}-100 % of the limit): {landed} of"
          f" {len(fits)} (target >= {FIRST_ATTEMPTS:.0%}); second attempts: {second};"
          f" outputs of the bot or the reference over their limit: {over}")
    verdicts["first attempt landed"] = landed >= FIRST_ATTEMPTS * len(fits)
    verdicts["never over the limit"] = over == 0
    where = "the original's size (outputs scaled up, lanczos)" if at == "source" else (
        "the outputs' size (the original scaled down with lanczos where the plan scaled)")
    print(f"\nQuality against the original, at {where}: PSNR Y / all planes (dB), SSIM all;"
          f" target: bot's PSNR Y >= the reference's - {PSNR_SLACK} dB")
    print(f"{'clip':<26} {'variant':<29} {'PSNR Y':>7} {'PSNR':>7} {'SSIM':>7} {'kb/s':>7}"
          f" {'vs ref Y':>8}")
    quality_met = True
    for outcome in outcomes:
        theirs = outcome.quality[REFERENCE].psnr_y
        for name, measured in outcome.quality.items():
            rate = med([r.size for r in outcome.runs[name]]) * 8 / outcome.workload.seconds
            gap = measured.psnr_y - theirs
            note = ""
            if name == BOT:
                ok = gap >= -PSNR_SLACK
                quality_met &= ok
                note = "met" if ok else "NOT MET"
            print(f"{outcome.workload.name:<26} {name:<29} {measured.psnr_y:>7.2f}"
                  f" {measured.psnr:>7.2f} {measured.ssim:>7.4f} {rate / 1000:>7.0f}"
                  f" {gap:>+8.2f} {note}")
    verdicts["PSNR >= reference - 0.5 dB"] = quality_met
    print("\nWhere the time goes: the source decoded alone (ffmpeg), the reference's passes"
          " (wall / CPU s, medians), x264 as each variant ran it")
    for outcome in outcomes:
        passes = outcome.runs[REFERENCE]
        one = med([r.passes[0][0] for r in passes]), med([r.passes[0][1] for r in passes])
        two = med([r.passes[1][0] for r in passes]), med([r.passes[1][1] for r in passes])
        print(f"{outcome.workload.name:<26} decode {outcome.decode.wall:.2f} /"
              f" {outcome.decode.cpu:.2f}; pass 1 {one[0]:.2f} / {one[1]:.2f}; pass 2"
              f" {two[0]:.2f} / {two[1]:.2f}")
    lines = {name: line for outcome in reversed(outcomes) for name, line in outcome.x264.items()}
    for name, line in lines.items():
        print(f"  {name}: x264 {line}")
    if phases:
        report_loop(phases, verdicts)
    return verdicts


def report_loop(phases: list[Phase], verdicts: dict[str, bool]) -> None:
    print("\nThe event loop while fitting (ms): the lag sampler's overshoot of a 5 ms sleep, and"
          " another channel's short task (created -> done); queued: the loop's thread's wait for a"
          " core each time it was woken, mean (its schedstat)")
    print(f"{'phase':<29} {'s':>5} {'lags':>5} {'p50':>6} {'p95':>6} {'p99':>6} {'max':>6}"
          f" {'tasks':>5} {'p50':>6} {'p95':>6} {'p99':>6} {'max':>6} {'queued':>6}"
          f" {'others':>6} {'fit s':>6}")
    for phase in phases:
        cells = [f"{percentile(values, share):>6.3f}" for values in (phase.lags, phase.tasks)
                 for share in (0.5, 0.95, 0.99, 1.0)]
        fit_wall = f"{phase.fit_wall:.2f}" if phase.fit_wall is not None else ""
        print(f"{phase.name:<29} {phase.seconds:>5.1f} {len(phase.lags):>5} {' '.join(cells[:4])}"
              f" {len(phase.tasks):>5} {' '.join(cells[4:])} {phase.wait_per_run:>6.3f}"
              f" {phase.others:>6.2f} {fit_wall:>6}")
    idle = [phase for phase in phases if phase.name == "idle"]
    pooled_idle = Phase("idle", [v for p in idle for v in p.lags],
                        [v for p in idle for v in p.tasks], 0, 0, (0, 0))
    print(f"\nagainst idle (pooled), target <= {LOOP_SLACK}")
    print(f"{'phase':<29} {'lag p95':>7} {'lag p99':>7} {'task p95':>8} {'task p99':>8}  verdict")
    met = True
    for name in dict.fromkeys(phase.name for phase in phases if phase.name != "idle"):
        same = [phase for phase in phases if phase.name == name]
        pooled = Phase(name, [v for p in same for v in p.lags], [v for p in same for v in p.tasks],
                       0, 0, (0, 0))
        ratios = [percentile(getattr(pooled, kind), share)
                  / percentile(getattr(pooled_idle, kind), share)
                  for kind in ("lags", "tasks") for share in (0.95, 0.99)]
        ok = all(ratio <= LOOP_SLACK for ratio in ratios)
        verdict = "(contrast)"
        if name == FITTER:
            met &= ok
            verdict = "met" if ok else "NOT MET"
        print(f"{name:<29} {ratios[0]:>7.2f} {ratios[1]:>7.2f} {ratios[2]:>8.2f}"
              f" {ratios[3]:>8.2f}  {verdict}")
    verdicts[f"loop p95/p99 <= {LOOP_SLACK} x idle"] = met


@contextlib.contextmanager
def folder_for(keep: Path | None, prefix: str = "bench-fitting-") -> Iterator[Path]:
    """``keep`` (made if need be), else a temporary folder removed afterwards."""
    if keep is not None:
        keep.mkdir(parents=True, exist_ok=True)
        yield keep
        return
    with tempfile.TemporaryDirectory(prefix=prefix) as name:
        yield Path(name)


def clip_for(folder: Path, width: int, height: int, seconds: float, size: int, *,
             b_frames: bool = False) -> Path:
    """A clip of about ``size`` bytes, made once (and kept with ``--keep``); ``b_frames``:
    that clip re-encoded (its sound copied) with x264's B-frames and keyframes as most
    encoders' outputs have them (IBBBP, an I-frame every 2 s), at 1.25 x its bitrate."""
    path = folder / f"clip-{width}x{height}-{seconds:g}s-{size // 1_000_000}MB.mp4"
    started = time.perf_counter()
    if not path.exists():
        make_clip(path, seconds=seconds, width=width, height=height, audio=True,
                  target_bytes=size)
    if b_frames:
        plain, path = path, path.with_name(f"{path.stem}-IBBBP.mp4")
        if not path.exists():
            run_ffmpeg("-i", str(plain), "-c:v", "libx264", "-preset", "ultrafast",
                       "-x264-params", "bframes=3:b-adapt=0:keyint=48:scenecut=0",
                       "-b:v", str(round(size * 1.25 * 8 / seconds)), "-c:a", "copy", str(path))
    if time.perf_counter() - started > 0.5:
        print(f"clip {path.name}: {path.stat().st_size / 1e6:.1f} MB in"
              f" {time.perf_counter() - started:.1f} s", flush=True)
    return path


def workloads_for(arguments: argparse.Namespace) -> list[Workload]:
    mb = 1_000_000
    pairs = arguments.pairs
    if arguments.quick:
        return [Workload(1920, 1080, 5, 25 * mb, 10, pairs or 1, control=True),
                Workload(1920, 1080, 5, 25 * mb, 10, pairs or 1, b_frames=True)]
    return [
        Workload(1920, 1080, 5, 25 * mb, 10, pairs or 2, control=True),
        Workload(1920, 1080, 5, 25 * mb, 10, pairs or 3, b_frames=True),
        Workload(1920, 1080, 10, 50 * mb, 10, pairs or 1),
        Workload(3840, 2160, 5, 60 * mb, 10, pairs or 1),
        Workload(3840, 2160, 10, 120 * mb, 10, pairs or 1),
        Workload(1920, 1080, 10, 50 * mb, 25, pairs or 1),
    ]


def main(arguments: argparse.Namespace) -> None:
    started = time.perf_counter()
    workloads = workloads_for(arguments)
    print(f"bot.fitting (PyAV {av.__version__}, libavcodec"
          f" {'.'.join(map(str, av.library_versions['libavcodec']))}) against"
          f" {Path(ffmpeg()).name}, preset {PRESET}; {os.cpu_count()} cores", flush=True)
    with folder_for(arguments.keep) as folder:
        outcomes = []
        for workload in workloads:
            source = clip_for(folder, workload.width, workload.height, workload.seconds,
                              workload.clip_bytes, b_frames=workload.b_frames)
            print(f"{workload.name}:", flush=True)
            outcomes.append(measure(workload, source, folder, arguments.compare_at))
        phases: list[Phase] = []
        if not arguments.no_loop:
            print("the event loop while fitting:", flush=True)
            small = folder / "small.mp4"
            if not small.exists():
                make_clip(small, seconds=1, width=320, height=240, audio=True,
                          target_bytes=300_000)
            source = clip_for(folder, 1920, 1080, 5, 25_000_000)
            phases = asyncio.run(loop_effect(
                source, small, folder, 1 if arguments.quick else 2,
                3.0 if arguments.quick else 5.0, contrast=not arguments.quick))
        verdicts = report(outcomes, phases, arguments.compare_at)
    print(f"\n{len(workloads)} clips, {time.perf_counter() - started:.0f} s in all")
    for target, met in verdicts.items():
        print(f"target {target}: {'met' if met else 'NOT MET'}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=" ".join(__doc__.split("\n\n")[0].split()))
    parser.add_argument("--quick", action="store_true",
                        help="the two 1080p 5 s clips, one pair each, a lighter loop part"
                        " (about 1 min)")
    parser.add_argument("--pairs", type=int,
                        help="runs of each variant per clip (2, 3, 1, 1, 1, 1)")
    parser.add_argument("--compare-at", choices=["output", "source"], default="output",
                        help="the size PSNR and SSIM are taken at (output: the original scaled"
                        " down to the outputs' size)")
    parser.add_argument("--no-loop", action="store_true", help="skip the event loop's part")
    parser.add_argument("--keep", type=Path, help="make (and reuse) the clips and outputs here")
    parsed = parser.parse_args()
    ffmpeg()  # there, or say how to get it, before any clip is made
    main(parsed)
