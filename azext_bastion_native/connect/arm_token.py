"""The ARM access token the data plane is given, fetched through azure-cli's Profile and kept until near its
expiry."""


def arm_token_getter(cli_ctx, subscription=None):
    """A callable returning an ARM access token with at least 5 minutes left: asked for each Bastion session (so a
    long-lived tunnel never presents an expired one), kept with its expiry in between (fetching costs a call into
    MSAL per connection otherwise), fetched off the event loop by the engine, never logged."""
    from azure.cli.core._profile import Profile
    from azext_bastion_native.dataplane.tokens import CachedToken
    profile = Profile(cli_ctx=cli_ctx)

    def fetch():
        _, token, entry = profile.get_raw_token(subscription=subscription)[0]
        return token, token_expiry(entry)
    return CachedToken(fetch)


def token_expiry(entry):
    """POSIX expiry of a get_raw_token() entry: ``expires_on`` (epoch seconds) or ``expiresOn`` (local time text);
    None when neither reads, so the token is fetched again for every session."""
    import datetime
    entry = entry if isinstance(entry, dict) else {}
    try:
        return float(entry['expires_on'])
    except (KeyError, TypeError, ValueError):
        pass
    try:
        return datetime.datetime.strptime(str(entry['expiresOn']), '%Y-%m-%d %H:%M:%S.%f').timestamp()
    except (KeyError, ValueError):
        return None
