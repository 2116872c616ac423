"""Files fetched over HTTP into temporary files: RunComfy's videos, to be posted or to have
their last frame taken. One temporary-file helper, one streaming download."""

from __future__ import annotations

import asyncio
import contextlib
import os
import tempfile
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import aiohttp

from bot.errors import UserError
from bot.i18n import _
from bot.jobs import Job

EXPIRED = (403, 404, 410)  # what RunComfy's storage answers for a link that has expired


class VideoGone(UserError):
    """RunComfy's link to a video no longer answers (its links expire)."""

    def __init__(self, job: Job) -> None:
        super().__init__(_("Job #{job}'s video is no longer available: RunComfy's link to it "
                           "has expired.", job=job.id))


@contextlib.asynccontextmanager
async def temp_path(prefix: str, suffix: str = ".mp4") -> AsyncIterator[Path]:
    """A new empty temporary file, deleted on leaving."""
    handle, name = tempfile.mkstemp(prefix=prefix, suffix=suffix)
    os.close(handle)
    path = Path(name)
    try:
        yield path
    finally:
        await asyncio.to_thread(path.unlink, missing_ok=True)


@contextlib.asynccontextmanager
async def temp_file_of(data: bytes, prefix: str, suffix: str = ".mp4") -> AsyncIterator[Path]:
    """``data`` in a temporary file, deleted on leaving."""
    async with temp_path(prefix, suffix) as path:
        await asyncio.to_thread(path.write_bytes, data)
        yield path


class Videos:
    """RunComfy's videos, streamed to temporary files (never whole in memory)."""

    def __init__(self, session: Callable[[], aiohttp.ClientSession], max_bytes: int,
                 timeout: float = 300.0) -> None:
        """``max_bytes``: the largest video ever fetched (``jobs.max_download_mb``)."""
        self._session = session
        self.max_bytes = max_bytes
        self.timeout = timeout

    @contextlib.asynccontextmanager
    async def fetched(self, job: Job, limit: int | None = None, *,
                      expired_is_gone: bool = True) -> AsyncIterator[Path | None]:
        """The job's video in a temporary file, deleted on leaving; ``None`` when it is larger
        than ``limit`` bytes (and ``max_bytes``). With ``expired_is_gone``, an expired link
        raises ``VideoGone``; otherwise its ``aiohttp.ClientResponseError`` is raised as is."""
        assert job.video_url is not None
        cap = self.max_bytes if limit is None else min(limit, self.max_bytes)
        async with temp_path(f"job-{job.id}-") as path:
            try:
                size = await self._stream(job.video_url, path, cap)
            except aiohttp.ClientResponseError as exc:
                if expired_is_gone and exc.status in EXPIRED:
                    raise VideoGone(job) from None
                raise
            yield None if size is None else path

    async def _stream(self, url: str, path: Path, limit: int) -> int | None:
        """Stream ``url`` into ``path``; ``None`` as soon as it is known to exceed ``limit``."""
        timeout = aiohttp.ClientTimeout(total=self.timeout)
        async with self._session().get(url, timeout=timeout) as response:
            response.raise_for_status()
            if response.content_length is not None and response.content_length > limit:
                return None
            size = 0
            with path.open("wb") as out:
                async for chunk in response.content.iter_chunked(256 * 1024):
                    size += len(chunk)
                    if size > limit:
                        return None
                    out.write(chunk)
        return size
