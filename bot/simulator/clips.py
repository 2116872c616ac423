"""Real MP4 clips of a chosen size, made with PyAV: large videos for the simulator to serve,
and sources for the tests and benchmarks of fitting (``bot.fitting``).

The picture is a drifting colour gradient under film grain that changes every frame: grain
cannot be predicted, so the encoder spends whatever bitrate it is given and a size is reached
cheaply (x264's fastest preset, a few patterns drawn once). H.264 in MP4, with AAC (a tone
over a little hiss) when ``audio``.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import numpy.typing as npt

PRESET = "ultrafast"
AUDIO_BITRATE = 128_000
AUDIO_RATE = 48_000
AUDIO_FRAME = 1024  # samples per AAC frame
GRAIN = 32  # the grain's amplitude, in luma levels: 1080p takes 100+ Mb/s if asked
PATTERNS = 5  # grain patterns, cycled: no two frames in a row share one
DRIFT = 6  # pixels the picture moves each frame
BUFFER_SECONDS = 0.25  # VBV buffer: a start-up burst above the bitrate stays this small
TOLERANCE = 0.05  # re-encode, at a corrected bitrate, when further than this from the target
ATTEMPTS = 3
CRF = "23"  # the quality when no size is asked for


def make_clip(path: Path, *, seconds: float, width: int, height: int, audio: bool,
              target_bytes: int | None = None, fps: int = 24) -> int:
    """Write a ``seconds`` long ``width`` x ``height`` MP4 to ``path``, about ``target_bytes``
    large (``None``: x264's CRF 23), and return its size. Within ``TOLERANCE`` of the target
    as a rule, re-encoding at a corrected bitrate if need be (``ATTEMPTS`` at most); a target
    smaller than the sound and the container is a ``ValueError``. Blocking: about 2 s of CPU
    per 100 frames of 1080p an attempt."""
    if width % 2 or height % 2 or width <= 0 or height <= 0:
        raise ValueError(f"{width}x{height}: the sides must be even and positive")
    clip = _Clip(_patterns(width, height), width, max(1, round(seconds * fps)), fps,
                 _wave(seconds) if audio else None)
    if target_bytes is None:
        clip.encode(path, None)
        return path.stat().st_size
    bitrate = round(target_bytes * 8 / seconds)  # the first guess: all of it video
    for _ in range(ATTEMPTS):
        video_bytes = clip.encode(path, bitrate)
        size = path.stat().st_size
        if abs(size - target_bytes) <= TOLERANCE * target_bytes:
            break
        other = size - video_bytes  # audio and the container: the same at any video bitrate
        if target_bytes <= other:
            raise ValueError(f"{target_bytes} bytes is too small for this clip")
        bitrate = round(bitrate * (target_bytes - other) / video_bytes)
    return size


@dataclass(frozen=True)
class _Clip:
    patterns: list[npt.NDArray[np.uint8]]
    width: int
    frames: int
    fps: int
    wave: npt.NDArray[np.float32] | None  # the sound (mono), or none

    def encode(self, path: Path, bitrate: int | None) -> int:
        """Write the clip (``None``: at CRF 23), the sound interleaved with the picture; the
        bytes of video in it."""
        options = {"preset": PRESET}
        if bitrate is None:
            options["crf"] = CRF
        else:
            options |= {"maxrate": str(bitrate), "bufsize": str(round(bitrate * BUFFER_SECONDS))}
        video_bytes = 0
        with av.open(str(path), "w", format="mp4") as container:
            video = container.add_stream("libx264", rate=self.fps, options=options)
            video.width, video.pix_fmt = self.width, "yuv420p"
            video.height = self.patterns[0].shape[0] * 2 // 3
            if bitrate is not None:
                video.bit_rate = bitrate
            aac = None if self.wave is None else container.add_stream(
                "aac", rate=AUDIO_RATE, layout="stereo", bit_rate=AUDIO_BITRATE)
            sound = deque(_frames(self.wave) if self.wave is not None else [])
            for index in range(self.frames + 1):  # and one more: the encoder's flush
                frame = self._frame(index) if index < self.frames else None
                packets = video.encode(frame)
                video_bytes += sum(packet.size for packet in packets)
                container.mux(packets)
                heard = (index + 1) * AUDIO_RATE / self.fps if frame else math.inf
                while aac is not None and sound and (sound[0].pts or 0) < heard:
                    container.mux(aac.encode(sound.popleft()))
            if aac is not None:
                container.mux(aac.encode())
        return video_bytes

    def _frame(self, index: int) -> av.VideoFrame:
        start = index * DRIFT % self.width
        window = self.patterns[index % len(self.patterns)][:, start:start + self.width]
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(window), format="yuv420p")
        frame.pts, frame.time_base = index, Fraction(1, self.fps)
        return frame


def _patterns(width: int, height: int) -> list[npt.NDArray[np.uint8]]:
    """Grainy yuv420p pictures (luma, then both chroma planes, as PyAV lays them out), twice
    as wide as the clip: a window slid along one is a frame."""
    rng = np.random.default_rng(2024)
    ramp = np.sin(np.arange(2 * width) * (np.pi / width)) * 80 + 128  # wraps round seamlessly
    luma = ramp + np.arange(height)[:, None] * (48 / height) - 24
    tint = np.where(np.arange(height // 2) < height // 4, 96, 160)  # U rows, then V rows
    chroma = np.broadcast_to(tint[:, None], (height // 2, 2 * width))
    return [np.vstack([np.clip(luma + rng.integers(-GRAIN, GRAIN + 1, luma.shape), 0, 255),
                       chroma]).astype(np.uint8)
            for _ in range(PATTERNS)]


def _wave(seconds: float) -> npt.NDArray[np.float32]:
    """A 440 Hz tone over a little hiss."""
    samples = round(seconds * AUDIO_RATE)
    hiss = np.random.default_rng(7).standard_normal(samples) * 0.02
    tone = 0.3 * np.sin(np.arange(samples) * (2 * np.pi * 440 / AUDIO_RATE))
    wave: npt.NDArray[np.float32] = (tone + hiss).astype(np.float32)
    return wave


def _frames(wave: npt.NDArray[np.float32]) -> list[av.AudioFrame]:
    """The wave in stereo frames of ``AUDIO_FRAME`` samples."""
    frames = []
    for start in range(0, len(wave), AUDIO_FRAME):
        chunk = wave[start:start + AUDIO_FRAME]
        frame = av.AudioFrame.from_ndarray(np.stack([chunk, chunk]), format="fltp",
                                           layout="stereo")
        frame.sample_rate, frame.pts = AUDIO_RATE, start
        frame.time_base = Fraction(1, AUDIO_RATE)
        frames.append(frame)
    return frames
