"""Fitting a video under an upload limit, with real clips (bot.simulator.clips) and PyAV."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import multiprocessing
import os
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import av
import pytest

from bot import fitting
from bot.fitting import CannotFit, Clip, FitStatus, Fitter, fit, plan, probe
from bot.simulator.clips import make_clip

MIB = 1024 * 1024


@pytest.fixture(scope="module")
def hd(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """4 s of 1080p with sound, about 6 MB: over a 2 MiB limit."""
    path = tmp_path_factory.mktemp("clips") / "hd.mp4"
    make_clip(path, seconds=4, width=1920, height=1080, audio=True, target_bytes=6_000_000)
    return path


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """2 s of 640x360 with sound, about 1 MB: quick to fit into 400 KB."""
    path = tmp_path_factory.mktemp("clips") / "small.mp4"
    make_clip(path, seconds=2, width=640, height=360, audio=True, target_bytes=1_000_000)
    return path


def clip(seconds: float, width: int = 1920, height: int = 1080, *, size: int = 50 * MIB,
         audio: bool = True) -> Clip:
    return Clip(duration=seconds, width=width, height=height, fps=24.0, has_audio=audio,
                size=size, codec="h264")


def played(path: Path) -> tuple[int, float, bool]:
    """Every frame decoded: how many, the duration and whether there is sound."""
    with av.open(str(path)) as container:
        frames = sum(1 for _ in container.decode(video=0))
        assert container.duration is not None
        return frames, container.duration / av.time_base, bool(container.streams.audio)


def test_probe(hd: Path) -> None:
    assert probe(hd) == Clip(duration=4.0, width=1920, height=1080, fps=24.0, has_audio=True,
                             size=hd.stat().st_size, codec="h264")


def test_a_1080p_clip_is_fitted_under_the_limit_at_the_first_attempt(hd: Path,
                                                                      tmp_path: Path) -> None:
    target = tmp_path / "fitted.mp4"
    assert hd.stat().st_size > 2.5 * MIB
    fitted = fit(hd, target, 2 * MIB)
    assert fitted.size == target.stat().st_size <= 2 * MIB
    assert fitted.size > 1.6 * MIB  # the limit is used, not wasted
    assert fitted.attempts == 1
    assert fitted.has_audio
    frames, seconds, audio = played(target)
    assert (frames, audio) == (96, True)
    assert seconds == pytest.approx(4.0, abs=0.1) == fitted.duration
    assert (fitted.width, fitted.height) == (probe(target).width, probe(target).height)
    assert fitted.width % 2 == fitted.height % 2 == 0
    assert 480 <= fitted.height < 1080
    assert fitted.width / fitted.height == pytest.approx(16 / 9, rel=0.01)
    head = target.read_bytes()[:64 * 1024]
    assert head.find(b"moov") < head.find(b"mdat")  # faststart: it plays while it loads


def test_a_second_attempt_when_the_first_overshoots(small: Path, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    def too_generous(source: Clip, limit_bytes: int) -> fitting.Plan | None:
        planned = planned_for(source, limit_bytes)
        assert planned is not None
        return dataclasses.replace(planned, video_bitrate=planned.video_bitrate * 2,
                                   max_bitrate=planned.max_bitrate * 2)

    planned_for = fitting.plan
    monkeypatch.setattr(fitting, "plan", too_generous)
    target = tmp_path / "fitted.mp4"
    fitted = fit(small, target, 400_000)
    assert fitted.attempts == 2
    assert fitted.size == target.stat().st_size <= 400_000
    assert played(target)[0] == 48


def test_a_video_under_the_limit_fits_as_it_is() -> None:
    assert clip(5, size=9 * MIB).fits_in(10 * MIB)
    assert clip(5, size=10 * MIB).fits_in(10 * MIB)
    assert not clip(5, size=10 * MIB + 1).fits_in(10 * MIB)


def test_the_plan_keeps_the_picture_when_the_bitrate_allows() -> None:
    planned = plan(clip(5), 10 * MIB)
    assert planned is not None
    assert (planned.width, planned.height, planned.audio_bitrate) == (1920, 1080, 128_000)
    total = (planned.video_bitrate + planned.audio_bitrate) * 5 / 8
    assert 0.85 * 10 * MIB < total < 10 * MIB
    assert planned.video_bitrate < planned.max_bitrate
    silent = plan(clip(5, audio=False), 10 * MIB)
    assert silent is not None
    assert silent.audio_bitrate == 0
    assert silent.video_bitrate == pytest.approx(planned.video_bitrate + 128_000, rel=0.01)


def test_the_plan_scales_down_only_as_far_as_the_bitrate_needs() -> None:
    sizes = []
    for seconds in (4, 8, 16, 40):
        planned = plan(clip(seconds), 10 * MIB)
        assert planned is not None
        assert planned.width % 2 == planned.height % 2 == 0
        assert planned.width / planned.height == pytest.approx(16 / 9, rel=0.01)
        bpp = planned.video_bitrate / (planned.width * planned.height * 24)
        assert planned.height == 1080 or bpp == pytest.approx(fitting.GOOD_BPP, rel=0.02)
        sizes.append(planned.height)
    assert sizes[0] == 1080
    assert sizes == sorted(sizes, reverse=True)
    assert sizes[-1] < sizes[-2] < 1080


def test_the_plan_holds_480p_then_goes_below_only_when_it_must() -> None:
    held = plan(clip(120), 10 * MIB)  # 0.1 bits a pixel only at 367p: 480p, at 0.06
    assert held is not None
    assert (held.width, held.height, held.audio_bitrate) == (852, 480, 96_000)
    below = plan(clip(180, 1080, 1920), 10 * MIB)  # portrait: the short side is the width
    assert below is not None
    assert 240 <= below.width < 480 and below.height > below.width
    assert plan(clip(30 * 60), 10 * MIB) is None  # half an hour in 10 MiB: no sensible fit
    assert plan(clip(4), 50_000) is None


def test_a_plan_from_odd_sides_has_even_ones() -> None:
    planned = plan(clip(4, 1279, 719), 10 * MIB)
    assert planned is not None
    assert (planned.width, planned.height) == (1278, 718)


def test_a_limit_too_small_cannot_fit(hd: Path, tmp_path: Path) -> None:
    with pytest.raises(CannotFit):
        fit(hd, tmp_path / "fitted.mp4", 50_000)


class Ticker:
    """Measures the event loop's lag: sleeps of 10 ms, each late by how much."""

    def __init__(self) -> None:
        self.lags: list[float] = []
        self._task = asyncio.create_task(self._tick())

    async def _tick(self) -> None:
        while True:
            before = time.perf_counter()
            await asyncio.sleep(0.01)
            self.lags.append(time.perf_counter() - before - 0.01)

    async def stop(self) -> float:
        self._task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await self._task
        return max(self.lags)


async def test_a_fit_in_a_worker_leaves_the_event_loop_free(hd: Path, tmp_path: Path) -> None:
    fitter = Fitter(workers=1, time_limit=60, temp_dir=tmp_path)
    ticker = Ticker()
    try:
        outcome = await fitter.fit(hd, 2 * MIB)
    finally:
        await fitter.close()
    assert await ticker.stop() < 0.1
    assert len(ticker.lags) > 100  # it ticked all along (the fit takes seconds)
    assert outcome.status is FitStatus.FITTED
    assert outcome.path is not None and outcome.fitted is not None
    assert outcome.path.parent == tmp_path and outcome.path.name.startswith("fitted-")
    assert outcome.fitted.size == outcome.path.stat().st_size <= 2 * MIB
    assert played(outcome.path)[0] == 96
    outcome.path.unlink()  # the caller's to delete


async def test_a_video_under_the_limit_is_posted_as_it_is(small: Path) -> None:
    size = (await asyncio.to_thread(small.stat)).st_size
    for workers in (0, 1):
        fitter = Fitter(workers=workers, time_limit=60)
        outcome = await fitter.fit(small, size)
        assert (outcome.status, outcome.path) == (FitStatus.AS_IS, None)
        await fitter.close()


async def test_no_workers_means_fitting_is_off(small: Path) -> None:
    fitter = Fitter(workers=0, time_limit=60)
    outcome = await fitter.fit(small, 400_000)
    assert (outcome.status, outcome.path, outcome.reason) == (FitStatus.OFF, None,
                                                              "fitting is off")
    await fitter.close()


async def test_a_video_that_cannot_fit_or_be_read_is_said_so(hd: Path, tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.mp4"
    await asyncio.to_thread(garbage.write_bytes, b"not a video" * 100_000)
    temp = tmp_path / "temp"
    await asyncio.to_thread(temp.mkdir)
    fitter = Fitter(workers=1, time_limit=60, temp_dir=temp)
    try:
        too_long = await fitter.fit(hd, 50_000)
        unreadable = await fitter.fit(garbage, 50_000)
    finally:
        await fitter.close()
    assert (too_long.status, too_long.path) == (FitStatus.CANNOT_FIT, None)
    assert (unreadable.status, unreadable.path) == (FitStatus.FAILED, None)
    assert unreadable.reason == "The video could not be read."
    assert await asyncio.to_thread(os.listdir, temp) == []  # their temporary files are gone


async def test_a_cancelled_fit_leaves_no_file(hd: Path, tmp_path: Path) -> None:
    fitter = Fitter(workers=1, time_limit=60, temp_dir=tmp_path)
    try:
        task = asyncio.create_task(fitter.fit(hd, 2 * MIB))
        await asyncio.sleep(0.5)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert await asyncio.to_thread(os.listdir, tmp_path) == []
    finally:
        await fitter.close()


async def test_a_fit_past_its_time_limit_stops_and_the_pool_carries_on(
        hd: Path, small: Path, tmp_path: Path) -> None:
    fitter = Fitter(workers=1, time_limit=60, temp_dir=tmp_path)
    try:
        warm = await fitter.fit(small, 400_000)  # the worker started
        assert warm.status is FitStatus.FITTED and warm.path is not None
        warm.path.unlink()
        workers = multiprocessing.active_children()
        fitter.time_limit = 0.5
        started = time.monotonic()
        late = await fitter.fit(hd, 2 * MIB)  # takes seconds
        assert time.monotonic() - started < 2.5
        assert late.status is FitStatus.TOO_SLOW and late.path is None
        assert "time limit" in late.reason
        assert multiprocessing.active_children() == workers  # the same worker, not killed
        fitter.time_limit = 60
        again = await fitter.fit(small, 400_000)
        assert again.status is FitStatus.FITTED and again.path is not None
        again.path.unlink()
    finally:
        await fitter.close()
    assert await asyncio.to_thread(os.listdir, tmp_path) == []


async def test_a_worker_that_does_not_stop_is_killed_and_replaced(
        small: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    # No grace, and a time limit over before a worker has even started: it is killed.
    fitter = Fitter(workers=1, time_limit=0.01, grace=0, temp_dir=tmp_path)
    try:
        with caplog.at_level(logging.WARNING, "bot.fitting"):
            outcome = await fitter.fit(small, 400_000)
        assert (outcome.status, outcome.reason) == (FitStatus.TOO_SLOW,
                                                    "killed past the time limit")
        assert "its workers are killed" in caplog.text
        assert multiprocessing.active_children() == []
        fitter.time_limit, fitter.grace = 60, 5
        again = await fitter.fit(small, 400_000)  # in a new pool
        assert again.status is FitStatus.FITTED and again.path is not None
        again.path.unlink()
    finally:
        await fitter.close()
    assert await asyncio.to_thread(os.listdir, tmp_path) == []
    assert multiprocessing.active_children() == []


async def test_closing_during_a_fit_ends_it_failed(hd: Path, tmp_path: Path) -> None:
    fitter = Fitter(workers=1, time_limit=60, temp_dir=tmp_path)
    task = asyncio.create_task(fitter.fit(hd, 2 * MIB))
    await asyncio.sleep(2.0)  # the worker spawned and fitting
    await fitter.close()
    outcome = await task
    assert (outcome.status, outcome.path) == (FitStatus.FAILED, None)
    assert await asyncio.to_thread(os.listdir, tmp_path) == []
    assert multiprocessing.active_children() == []


@pytest.mark.skipif(not hasattr(os, "SCHED_IDLE"), reason="SCHED_IDLE is Linux's")
async def test_workers_run_only_on_cpu_nothing_else_wants() -> None:
    # Set up as the Fitter's workers are; every thread FFmpeg starts in one inherits it.
    with ProcessPoolExecutor(1, multiprocessing.get_context("spawn"),
                             initializer=fitting._start_worker) as pool:
        policy = await asyncio.wrap_future(pool.submit(os.sched_getscheduler, 0))
    assert policy == os.SCHED_IDLE
