"""relay/event_loop.py: the relay runs on uvloop where it is installed and on asyncio's own loop where it is not."""
import asyncio
import sys

import pytest

from azext_bastion_native.relay import event_loop


async def _loop_module():
    return type(asyncio.get_running_loop()).__module__


def test_run_returns_the_result_on_uvloop_where_it_is_installed():
    pytest.importorskip('uvloop')
    assert event_loop.run(_loop_module()).startswith('uvloop')


def test_without_uvloop_asyncios_own_loop_is_used(monkeypatch):
    monkeypatch.setitem(sys.modules, 'uvloop', None)          # import uvloop raises ImportError
    asyncio.set_event_loop_policy(None)                       # not the uvloop policy conftest.py may have set
    loop = event_loop.new_event_loop()
    try:
        assert isinstance(loop, asyncio.AbstractEventLoop) and not type(loop).__module__.startswith('uvloop')
    finally:
        loop.close()
    assert event_loop.run(_loop_module()).startswith('asyncio')
