"""The forwards `az network bastion forward --background` hands the connection agent: each one a relay service of its
own (relay/tunnel.py: its -L and SOCKS5 listeners, its data-plane client, its own --timeout, --idle-timeout and
--max-connections) on the agent's event loop. `agent status` lists them; they end by their own time limits, one by
`agent stop --forward ID`, or all when the agent stops, every session deleted. Imports nothing from azure.cli: the
services come built and listening."""

import asyncio
import itertools
import logging
from typing import Any, Callable, Dict, List, Optional, Tuple

logger = logging.getLogger(__name__)

MAX_LOCAL_FORWARDS = 64             # -L specs one request may carry
SPEC_LONGEST = 1200                 # characters of one -L spec (a VM resource id is most of it)


class BackgroundForwards:
    """The running forwards, numbered from 1 in the order they started. ``on_change()`` is called when one ends
    (the agent then looks at its idle time again)."""

    def __init__(self, on_change: Optional[Callable[[], None]] = None):
        self.on_change = on_change
        self._running: Dict[int, Tuple[Any, dict, 'asyncio.Task[Any]']] = {}
        self._numbers = itertools.count(1)

    @property
    def running(self) -> bool:
        return bool(self._running)

    def start(self, service: Any, ready: dict) -> dict:
        """Serve ``service`` (its listeners already listening, as ``ready`` says) until it stops; its ready line
        with the forward's number."""
        number = next(self._numbers)
        task = asyncio.ensure_future(service.serve())
        self._running[number] = (service, ready, task)
        task.add_done_callback(lambda done: self._ended(number, done))
        logger.info('forward %d listening: %s', number, describe(ready))
        return dict(ready, id=number)

    def _ended(self, number: int, task: 'asyncio.Task[Any]') -> None:
        self._running.pop(number, None)
        reason = 'cancelled' if task.cancelled() else (
            f'failed: {type(task.exception()).__name__}' if task.exception() else task.result().value)
        logger.info('forward %d ended (%s); every session it opened has been deleted', number, reason)
        if self.on_change is not None:
            self.on_change()

    def status(self) -> List[dict]:
        return [dict(ready, id=number, liveConnections=service.active_connections)
                for number, (service, ready, _) in sorted(self._running.items())]

    async def stop_one(self, number: int, timeout: float) -> Optional[Tuple[dict, bool]]:
        """Stop forward ``number`` (every session it opened deleted), waiting at most ``timeout`` seconds for it:
        (its ready line with its number, whether it has ended), or None when no forward has that number."""
        if number not in self._running:
            return None
        _, ready, task = self._running[number]
        await self._stop([number], timeout)
        return dict(ready, id=number), task.done()

    async def stop_all(self, timeout: float) -> None:
        """Stop every forward (each deletes its sessions), waiting at most ``timeout`` seconds for them."""
        await self._stop(list(self._running), timeout)

    async def _stop(self, numbers: List[int], timeout: float) -> None:
        tasks = []
        for number in numbers:
            service, _, task = self._running[number]
            service.stop()
            tasks.append(task)
        if tasks:
            await asyncio.wait(tasks, timeout=timeout)


def describe(ready: dict) -> str:
    """A forward's listeners in one log line."""
    said = [f"{item['address']}:{item['port']} -> {item['target']}:{item['targetPort']}" for item in ready['forwards']]
    if ready.get('socks'):
        said.append(f"SOCKS5 on {ready['socks']['address']}:{ready['socks']['port']}")
    return '; '.join(said)


def forward_problem(request: dict, is_text: Callable[[Any, int], bool], shown: Callable[[Any], str]) -> str:
    """Why a "forward" request is not one the agent serves, in words; empty when it is. ``is_text(value, longest)``
    and ``shown(value)`` are the agent's own checks for a field of text and for showing a value."""
    specs = request.get('local_forward')
    seconds = [(field, request.get(field)) for field in ('timeout', 'idle_timeout')]
    most = request.get('max_connections')
    problems = (
        (not is_text(request.get('resource_group'), 90), "'resource_group' must be a resource group name"),
        (not is_text(request.get('name'), 80), "'name' must be a Bastion host name"),
        (not isinstance(specs, list) or len(specs) > MAX_LOCAL_FORWARDS
         or not all(is_text(spec, SPEC_LONGEST) for spec in specs),
         f"'local_forward' must be a list of at most {MAX_LOCAL_FORWARDS} -L specs, not {shown(specs)}"),
        (request.get('socks') is not None and not is_text(request.get('socks'), 100),
         f"'socks' must be absent or a -D spec, not {shown(request.get('socks'))}"),
        (request.get('vm_resource_group') is not None and not is_text(request.get('vm_resource_group'), 90),
         "'vm_resource_group' must be absent or a resource group name"),
        (request.get('subscription') is not None and not is_text(request.get('subscription'), 128),
         "'subscription' must be absent or a subscription id"),
        (any(value is not None and (isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0)
             for _, value in seconds), "'timeout' and 'idle_timeout' must be absent or seconds above 0"),
        (most is not None and (isinstance(most, bool) or not isinstance(most, int) or most < 1),
         f"'max_connections' must be absent or a whole number of at least 1, not {shown(most)}"),
    )
    return next((message for wrong, message in problems if wrong), '')
