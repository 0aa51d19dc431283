"""The ARM token cache: every session gets a token with at least 5 minutes left, fetched only when needed."""


from azext_bastion_native.dataplane.tokens import REFRESH_MARGIN, CachedToken


class Clock:
    def __init__(self, now=1_000_000.0):
        self.now = now

    def __call__(self):
        return self.now


def _fetcher(lifetime, clock):
    fetched = []

    def fetch():
        fetched.append(f'token-{len(fetched)}')
        return fetched[-1], clock() + lifetime
    return fetch, fetched


def test_token_is_reused_while_more_than_the_margin_remains_then_refreshed():
    clock = Clock()
    fetch, fetched = _fetcher(3600, clock)
    tokens = CachedToken(fetch, clock=clock)
    assert tokens.peek() is None                      # nothing at hand: the caller must fetch (off the loop)
    assert tokens() == 'token-0'
    clock.now += 3600 - REFRESH_MARGIN - 1            # 5 min + 1 s left: still good
    assert tokens.peek() == 'token-0' and tokens() == 'token-0'
    clock.now += 1                                    # exactly the margin left: refreshed
    assert tokens.peek() is None
    assert tokens() == 'token-1'
    assert fetched == ['token-0', 'token-1']


def test_a_handed_out_token_is_never_expired_even_when_the_fetch_returns_a_short_one():
    clock = Clock()
    fetch, fetched = _fetcher(60, clock)              # the identity layer hands out a nearly expired token
    tokens = CachedToken(fetch, clock=clock)
    assert tokens() == 'token-0' and tokens() == 'token-1'     # not cached: fetched for every session
    assert len(fetched) == 2


def test_unknown_expiry_is_never_cached_and_repr_hides_the_token():
    calls = []
    tokens = CachedToken(lambda: (calls.append(1) or 'SECRET-TOKEN', None))
    tokens()
    tokens()
    assert len(calls) == 2 and tokens.peek() is None
    assert 'SECRET' not in repr(tokens)
