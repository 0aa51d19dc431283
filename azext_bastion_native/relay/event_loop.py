"""The event loop the relay runs on: uvloop's (libuv, in C) where it is installed - it halves the CPU a relayed
round trip costs, most of which is the event loop's own work around four socket calls - and asyncio's own
elsewhere (Windows, where uvloop does not exist)."""

import asyncio
from typing import Any, Coroutine, TypeVar

T = TypeVar('T')


def new_event_loop() -> asyncio.AbstractEventLoop:
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


def run(main: Coroutine[Any, Any, T]) -> T:
    """asyncio.run(main) on a loop from new_event_loop() (on Python 3.10, which has no asyncio.Runner: asyncio's)."""
    if not hasattr(asyncio, 'Runner'):
        return asyncio.run(main)
    with asyncio.Runner(loop_factory=new_event_loop) as runner:
        return runner.run(main)
