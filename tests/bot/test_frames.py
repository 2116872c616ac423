"""A video's last frame (the start of an Extend), decoded with PyAV."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest
from PIL import Image

from bot.errors import UserError
from bot.frames import UnreadableVideo, encode_frame, last_frame
from bot.simulator import SAMPLE_VIDEO


def decoded(path: Path) -> list[np.ndarray[Any, Any]]:
    """Every frame, decoded from the start: what the last frame must equal."""
    with av.open(str(path), "r") as container:
        return [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]


def level(index: int) -> int:
    return (8 * index) % 256


def make_video(path: Path, frames: int, fps: int = 10, gop: int = 5) -> None:
    """An H.264 video whose frame ``i`` is a flat grey of ``level(i)`` (with a keyframe
    every ``gop`` frames, so finding the last frame means seeking, then decoding a few)."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps, options={"g": str(gop),
                                                                   "crf": "10"})
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        for index in range(frames):
            grey = np.full((48, 64, 3), level(index), dtype=np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(grey, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def test_the_simulators_video_ends_on_another_frame_than_it_starts(tmp_path: Path) -> None:
    path = tmp_path / "sample.mp4"
    path.write_bytes(SAMPLE_VIDEO)
    frames = decoded(path)
    assert len(frames) > 1
    image = last_frame(path)
    assert image.mode == "RGB"
    assert np.array_equal(np.asarray(image), frames[-1])
    assert not np.array_equal(np.asarray(image), frames[0])


@pytest.mark.parametrize("frames", [1, 4, 30, 95])
def test_the_last_frame_of_short_and_long_videos(tmp_path: Path, frames: int) -> None:
    path = tmp_path / "video.mp4"
    make_video(path, frames)
    all_frames = decoded(path)
    assert len(all_frames) == frames
    image = np.asarray(last_frame(path))
    assert np.array_equal(image, all_frames[-1])
    assert abs(int(image.mean()) - level(frames - 1)) <= 2


def test_not_a_video(tmp_path: Path) -> None:
    path = tmp_path / "notes.mp4"
    path.write_bytes(b"not a video at all" * 100)
    with pytest.raises(UnreadableVideo):
        last_frame(path)


def test_a_frame_is_a_png_unless_too_large() -> None:
    noise = np.random.default_rng(1).integers(0, 256, (300, 400, 3), dtype=np.uint8)
    image = Image.fromarray(noise)
    png = encode_frame(image, 10 * 1024 * 1024)
    assert (png.format, png.content_type, png.width, png.height) == ("png", "image/png", 400, 300)
    with Image.open(io.BytesIO(png.data)) as back:
        assert np.array_equal(np.asarray(back), noise)  # lossless
    jpeg = encode_frame(image, len(png.data) - 1)
    assert (jpeg.format, jpeg.content_type) == ("jpeg", "image/jpeg")
    assert len(jpeg.data) < len(png.data)
    with pytest.raises(UserError, match="too large"):
        encode_frame(image, 1000)
