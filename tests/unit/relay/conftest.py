"""Every relay test runs on both event loops the relay may get (relay/event_loop.py): asyncio's and uvloop's."""
import asyncio

import pytest


@pytest.fixture(autouse=True, params=['asyncio', 'uvloop'])
def event_loop_kind(request):
    if request.param == 'uvloop':
        uvloop = pytest.importorskip('uvloop')
        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    yield request.param
    asyncio.set_event_loop_policy(None)
