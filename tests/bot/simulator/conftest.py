from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.images import ImageHost


@pytest.fixture
async def image_host() -> AsyncIterator[ImageHost]:
    host = ImageHost()
    await host.start()
    yield host
    await host.close()
