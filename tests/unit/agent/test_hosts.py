"""agent/hosts.py: tokens close to expiry are fetched ahead of any connection; clients closed on exit."""
import asyncio

from azext_bastion_native.agent.hosts import BastionHosts
from azext_bastion_native.dataplane.tokens import CachedToken


def test_refresh_fetches_only_tokens_close_to_expiry():
    now = [1000.0]
    fetched = []

    def fetch(name, lifetime):
        def run():
            fetched.append(name)
            return f'token-{name}', now[0] + lifetime
        return run
    hosts = BastionHosts(cli_ctx=None)
    # pylint: disable-next=protected-access
    hosts._tokens = {'fresh': CachedToken(fetch('fresh', 3600), clock=lambda: now[0]),
                     'short': CachedToken(fetch('short', 400), clock=lambda: now[0])}
    hosts.refresh_tokens()
    assert sorted(fetched) == ['fresh', 'short']
    now[0] += 200           # 'short' has 200 s left: under the 300 s margin; 'fresh' has 3400 s
    hosts.refresh_tokens()
    assert sorted(fetched) == ['fresh', 'short', 'short']


def test_aclose_closes_every_client():
    closed = []

    class Client:
        async def aclose(self, timeout):
            closed.append(timeout)
    hosts = BastionHosts(cli_ctx=None)
    hosts._clients = {'a': Client(), 'b': Client()}  # pylint: disable=protected-access
    asyncio.run(hosts.aclose(timeout=3))
    assert closed == [3, 3] and hosts.clients() == []
