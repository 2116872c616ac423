"""RunComfy's videos streamed into temporary files from a real HTTP server on 127.0.0.1: the
file holds exactly what was served, a video over the limit is not kept, an expired link is
told to the member, and no temporary file outlives its use."""

from __future__ import annotations

import random
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from bot.downloads import VideoGone, Videos, temp_file_of, temp_path
from bot.errors import UserError
from bot.jobs import Job, JobState
from tests.local_server import served

VIDEO = random.Random(7).randbytes(700_000)  # more than two of the stream's 256 KiB chunks


@pytest.fixture(autouse=True)
def temp_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Temporary files go to a directory of the test's own, to see that none is left."""
    folder = tmp_path / "temp"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


def left_in(folder: Path) -> list[str]:
    return sorted(path.name for path in folder.iterdir())


# -- temporary files -----------------------------------------------------------------------

async def test_a_temporary_path_is_a_new_empty_file_deleted_on_leaving(temp_dir: Path) -> None:
    async with temp_path("job-12-") as path, temp_path("frame-", ".png") as other:
        assert path.parent == temp_dir and path.name.startswith("job-12-")
        assert path.suffix == ".mp4" and path.read_bytes() == b""
        assert other.suffix == ".png" and other != path
        path.write_bytes(b"partial video")
    assert left_in(temp_dir) == []


async def test_a_temporary_path_is_deleted_when_its_user_fails(temp_dir: Path) -> None:
    async def upload() -> None:
        async with temp_path("job-12-") as path:
            path.write_bytes(b"video")
            raise RuntimeError("upload failed")

    with pytest.raises(RuntimeError, match="upload failed"):
        await upload()
    assert left_in(temp_dir) == []


async def test_a_temporary_path_its_user_deleted_is_no_error(temp_dir: Path) -> None:
    async with temp_path("job-12-") as path:
        path.unlink()
    assert left_in(temp_dir) == []


async def test_bytes_in_a_temporary_file(temp_dir: Path) -> None:
    frame = b"\x89PNG\r\n\x1a\n" + bytes(5000)
    async with temp_file_of(frame, "frame-", ".png") as path:
        assert path.read_bytes() == frame and path.name.startswith("frame-")
        assert path.suffix == ".png"
    assert left_in(temp_dir) == []

    async def use_frame() -> None:
        async with temp_file_of(frame, "frame-") as path:
            assert path.suffix == ".mp4"
            raise ValueError("bad frame")

    with pytest.raises(ValueError, match="bad frame"):
        await use_frame()
    assert left_in(temp_dir) == []


# -- videos --------------------------------------------------------------------------------

@dataclass
class Storage:
    """RunComfy's storage on 127.0.0.1: ``/v/{name}`` with a Content-Length, ``/chunked/{name}``
    without one, ``/status/{code}`` an error."""

    url: str
    files: dict[str, bytes]
    requests: list[str]


@pytest.fixture
async def storage() -> AsyncIterator[Storage]:
    files = {"clip.mp4": VIDEO}
    requests: list[str] = []

    async def whole(request: web.Request) -> web.Response:
        requests.append(request.path)
        found = files.get(request.match_info["name"])
        if found is None:
            raise web.HTTPNotFound()
        return web.Response(body=found, content_type="video/mp4")

    async def chunked(request: web.Request) -> web.StreamResponse:
        requests.append(request.path)
        data = files[request.match_info["name"]]
        response = web.StreamResponse(headers={"Content-Type": "video/mp4"})
        response.enable_chunked_encoding()
        await response.prepare(request)
        try:
            for start in range(0, len(data), 64 * 1024):
                await response.write(data[start:start + 64 * 1024])
            await response.write_eof()
        except ConnectionError:  # the client stopped reading
            pass
        return response

    async def status(request: web.Request) -> web.Response:
        requests.append(request.path)
        return web.Response(status=int(request.match_info["code"]),
                            text="<Error><Code>AccessDenied</Code></Error>")

    app = web.Application()
    app.router.add_get("/v/{name}", whole)
    app.router.add_get("/chunked/{name}", chunked)
    app.router.add_get("/status/{code}", status)
    async with served(app) as url:
        yield Storage(url, files, requests)


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


def finished(video_url: str, job_id: int = 41) -> Job:
    fields: dict[str, Any] = {
        "id": job_id, "guild_id": 1, "channel_id": 2, "user_id": 3,
        "model_id": "kling/kling-2-1/pro/image-to-video", "command": "kling-2-1",
        "prompt": "a zebra", "body": {"prompt": "a zebra"}, "state": JobState.FETCHED,
        "request_id": "r41", "queue_position": None, "card_message_id": 9,
        "result_message_id": None, "delivered_as": None, "video_url": video_url,
        "error": None, "estimated_usd": 0.5, "cost_usd": 0.49, "created_at": 1000.0,
        "submitted_at": 1001.0, "started_at": 1010.0, "finished_at": 1100.0,
        "updated_at": 1100.0,
    }
    return Job(**fields)


def videos(session: aiohttp.ClientSession, max_bytes: int = 25 * 1024 * 1024) -> Videos:
    return Videos(lambda: session, max_bytes, timeout=10)


@pytest.mark.parametrize("route", ["v", "chunked"])
async def test_the_file_holds_exactly_the_video_served(
        storage: Storage, session: aiohttp.ClientSession, temp_dir: Path, route: str) -> None:
    job = finished(f"{storage.url}/{route}/clip.mp4?X-Amz-Expires=3600")
    async with videos(session).fetched(job) as path:
        assert path is not None
        assert path.read_bytes() == VIDEO
        assert path.name.startswith("job-41-") and path.suffix == ".mp4"
        assert path.parent == temp_dir
    assert left_in(temp_dir) == []
    assert storage.requests == [f"/{route}/clip.mp4"]


@pytest.mark.parametrize("route", ["v", "chunked"])
async def test_a_video_of_exactly_the_limit_is_kept(
        storage: Storage, session: aiohttp.ClientSession, route: str) -> None:
    job = finished(f"{storage.url}/{route}/clip.mp4")
    async with videos(session).fetched(job, limit=len(VIDEO)) as path:
        assert path is not None and path.read_bytes() == VIDEO


@pytest.mark.parametrize("route", ["v", "chunked"])
async def test_a_video_over_the_limit_is_not_kept(
        storage: Storage, session: aiohttp.ClientSession, temp_dir: Path, route: str) -> None:
    """Told by its Content-Length before anything is written, or by what streamed so far."""
    job = finished(f"{storage.url}/{route}/clip.mp4")
    async with videos(session).fetched(job, limit=len(VIDEO) - 1) as path:
        assert path is None
        assert left_in(temp_dir) != []  # the partial file is there until the block ends
    assert left_in(temp_dir) == []


@pytest.mark.parametrize("route", ["v", "chunked"])
async def test_the_largest_video_ever_fetched_bounds_every_limit(
        storage: Storage, session: aiohttp.ClientSession, route: str) -> None:
    job = finished(f"{storage.url}/{route}/clip.mp4")
    small = videos(session, max_bytes=300_000)
    async with small.fetched(job) as path:
        assert path is None
    async with small.fetched(job, limit=50 * 1024 * 1024) as path:  # a boosted server's
        assert path is None
    async with videos(session, max_bytes=len(VIDEO)).fetched(job, limit=10**9) as path:
        assert path is not None and path.read_bytes() == VIDEO


@pytest.mark.parametrize("code", [403, 404, 410])
async def test_an_expired_link_is_told_to_the_member(
        storage: Storage, session: aiohttp.ClientSession, temp_dir: Path, code: int) -> None:
    job = finished(f"{storage.url}/status/{code}", job_id=1234)
    with pytest.raises(VideoGone) as gone:
        async with videos(session).fetched(job):
            raise AssertionError("an expired link gives no file")
    assert str(gone.value) == ("Job #1234's video is no longer available: RunComfy's link to "
                               "it has expired.")
    assert isinstance(gone.value, UserError)
    assert gone.value.__cause__ is None and gone.value.__suppress_context__
    assert left_in(temp_dir) == []


@pytest.mark.parametrize("code", [403, 404, 410])
async def test_an_expired_link_as_is_when_the_caller_handles_it(
        storage: Storage, session: aiohttp.ClientSession, temp_dir: Path, code: int) -> None:
    job = finished(f"{storage.url}/status/{code}")
    with pytest.raises(aiohttp.ClientResponseError) as error:
        async with videos(session).fetched(job, expired_is_gone=False):
            raise AssertionError("an expired link gives no file")
    assert error.value.status == code
    assert left_in(temp_dir) == []


@pytest.mark.parametrize("code", [401, 500, 503])
async def test_other_errors_are_not_an_expired_link(
        storage: Storage, session: aiohttp.ClientSession, temp_dir: Path, code: int) -> None:
    job = finished(f"{storage.url}/status/{code}")
    with pytest.raises(aiohttp.ClientResponseError) as error:
        async with videos(session).fetched(job):
            raise AssertionError("no file")
    assert error.value.status == code and not isinstance(error.value, UserError)
    assert left_in(temp_dir) == []


async def test_the_file_is_deleted_when_posting_it_fails(
        storage: Storage, session: aiohttp.ClientSession, temp_dir: Path) -> None:
    job = finished(f"{storage.url}/v/clip.mp4")

    async def post() -> None:
        async with videos(session).fetched(job) as path:
            assert path is not None and path.stat().st_size == len(VIDEO)
            raise OSError("413 Payload Too Large")

    with pytest.raises(OSError, match="413"):
        await post()
    assert left_in(temp_dir) == []


async def test_the_session_is_the_one_current_when_fetching(
        storage: Storage, temp_dir: Path) -> None:
    """The bot makes its HTTP session when first needed and again once it is closed: the
    videos ask for the current one each time."""
    sessions: list[aiohttp.ClientSession] = []
    store = Videos(lambda: sessions[-1], 10 * 1024 * 1024)
    job = finished(f"{storage.url}/v/clip.mp4")
    for _ in range(2):
        async with aiohttp.ClientSession() as session:
            sessions.append(session)
            async with store.fetched(job) as path:
                assert path is not None and path.read_bytes() == VIDEO
    assert storage.requests == ["/v/clip.mp4", "/v/clip.mp4"]
    assert left_in(temp_dir) == []
