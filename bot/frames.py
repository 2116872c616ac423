"""A video's last frame, as an image: the start of an Extend (the next shot of a chain).

Decoded with PyAV (FFmpeg's libraries): the container is read near its end only, from the
last keyframe before it, so a long video costs a few frames, not all of them.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from bot.errors import UserError
from bot.i18n import _

if TYPE_CHECKING:
    import av
    from PIL import Image

TAIL_SECONDS = 2.0  # seek this far before the end: the last keyframe is usually within it


class UnreadableVideo(UserError):
    """The file is not a video PyAV can decode (or has no frame)."""


@dataclass(frozen=True)
class Frame:
    """An encoded still: ``data`` in ``format`` ("png" or "jpeg"), ``width`` x ``height``."""

    data: bytes
    format: str
    width: int
    height: int

    @property
    def content_type(self) -> str:
        return f"image/{self.format}"


def last_frame(video: Path) -> Image.Image:
    """The last frame of ``video``'s first video stream, as RGB. Blocking: run it in a
    thread. Raises ``UnreadableVideo``."""
    import av  # here: a bot that never extends a video does not load FFmpeg's libraries
    import av.error
    from PIL import Image  # nor Pillow

    try:
        with av.open(str(video)) as container:
            if not container.streams.video:
                raise UnreadableVideo(_("That file has no video in it."))
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            frame = _last_from_tail(container, stream)
            if frame is None:  # no usable seek (or nothing after it): decode from the start
                container.seek(0)
                frame = _last_decoded(container, stream)
    except av.error.FFmpegError:
        raise UnreadableVideo(_("The video could not be decoded.")) from None
    if frame is None:
        raise UnreadableVideo(_("The video has no frames."))
    return Image.fromarray(frame.to_ndarray(format="rgb24"))


def encode_frame(image: Image.Image, max_bytes: int) -> Frame:
    """The frame as PNG (lossless), or as a high-quality JPEG when the PNG would be larger
    than ``max_bytes`` (a 4K frame can be; Discord and the models limit uploads)."""
    png = io.BytesIO()
    image.save(png, format="PNG", optimize=False)
    if png.tell() <= max_bytes:
        return Frame(png.getvalue(), "png", image.width, image.height)
    jpeg = io.BytesIO()
    image.save(jpeg, format="JPEG", quality=92)
    if jpeg.tell() > max_bytes:
        raise UserError(_("The video's last frame is too large to post here."))
    return Frame(jpeg.getvalue(), "jpeg", image.width, image.height)


def _last_from_tail(container: av.container.InputContainer,
                    stream: av.video.stream.VideoStream) -> av.VideoFrame | None:
    """The last frame, decoding from the keyframe before the video's last ``TAIL_SECONDS``."""
    import av.error

    if stream.duration is None or stream.time_base is None:
        return None
    start = stream.start_time or 0
    target = start + max(0, stream.duration - int(TAIL_SECONDS / stream.time_base))
    if target <= start:
        return _last_decoded(container, stream)
    try:
        container.seek(target, backward=True, any_frame=False, stream=stream)
    except av.error.FFmpegError:
        return None
    return _last_decoded(container, stream)


def _last_decoded(container: av.container.InputContainer,
                  stream: av.video.stream.VideoStream) -> av.VideoFrame | None:
    last = None
    for frame in container.decode(stream):
        last = frame
    return last
