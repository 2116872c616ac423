"""Real MP4 clips of a chosen size (the simulator's large videos, the fitting tests' sources)."""

from __future__ import annotations

import io
from pathlib import Path

import av
import numpy as np
import pytest

from bot.simulator import Simulator
from bot.simulator.cli import config
from bot.simulator.clips import make_clip


def streams(path: Path) -> dict[str, tuple[str, float]]:
    """Each stream's kind: its codec and duration in seconds."""
    with av.open(str(path)) as container:
        return {s.type: (s.codec_context.name, float((s.duration or 0) * (s.time_base or 0)))
                for s in container.streams}


@pytest.mark.parametrize(("seconds", "width", "height", "audio", "target"), [
    (4, 1920, 1080, True, 6_000_000),
    (2, 640, 360, True, 1_000_000),
    (1.5, 320, 240, False, 150_000),
])
def test_a_clip_is_close_to_the_size_asked(tmp_path: Path, seconds: float, width: int,
                                           height: int, audio: bool, target: int) -> None:
    path = tmp_path / "clip.mp4"
    size = make_clip(path, seconds=seconds, width=width, height=height, audio=audio,
                     target_bytes=target)
    assert size == path.stat().st_size
    assert abs(size - target) <= 0.1 * target
    found = streams(path)
    assert set(found) == ({"video", "audio"} if audio else {"video"})
    assert found["video"][0] == "h264"
    assert found["video"][1] == pytest.approx(seconds, abs=0.05)
    if audio:
        assert found["audio"][0] == "aac"
        assert found["audio"][1] == pytest.approx(seconds, abs=0.05)
    with av.open(str(path)) as container:
        frames = [f.to_ndarray(format="gray") for f in container.decode(video=0)]
    assert len(frames) == round(seconds * 24)
    assert frames[0].shape == (height, width)
    assert not np.array_equal(frames[0], frames[1])  # it moves


def test_without_a_size_it_is_made_at_a_quality(tmp_path: Path) -> None:
    path = tmp_path / "clip.mp4"
    size = make_clip(path, seconds=1, width=160, height=90, audio=True, fps=10)
    assert 0 < size == path.stat().st_size
    with av.open(str(path)) as container:
        assert len(list(container.decode(video=0))) == 10


@pytest.mark.parametrize(("width", "height"), [(641, 360), (640, 0)])
def test_the_sides_must_be_even_and_positive(tmp_path: Path, width: int, height: int) -> None:
    with pytest.raises(ValueError, match="even and positive"):
        make_clip(tmp_path / "clip.mp4", seconds=1, width=width, height=height, audio=False)


def test_the_command_line_serves_a_clip_of_the_size_asked(tmp_path: Path) -> None:
    settings, _ = config(["--clip", "2:640x360:1.5:audio"])
    assert settings.video_file is not None
    served = Simulator(settings).video
    assert abs(len(served) - 1.5 * 1024 * 1024) < 0.1 * 1.5 * 1024 * 1024
    with av.open(io.BytesIO(served)) as container:
        assert container.streams.audio
        assert (container.streams.video[0].width, container.streams.video[0].height) == (
            640, 360)
    with pytest.raises(SystemExit):
        config(["--clip", "2:640:1.5"])
