# --------------------------------------------------------------------------------------------
# From CLI arguments to the data plane: the tunnel engine's pre-flight as typed CLI errors, one ARM GET of
# the host, a fresh-ARM-token provider, and the engine's log lines under az's own logger. Shared by every
# connecting command (tunnel, proxy, ssh, rdp, ssh-config, file, doctor).
# --------------------------------------------------------------------------------------------
import contextlib
import logging

PACKAGE_LOGGER = 'azext_bastion_native'


def route_engine_logs():
    """dataplane/ and relay/ log with the standard logging module (they know nothing of az); hang the package's
    logger under az's 'cli' logger so their lines follow --verbose/--debug/--only-show-errors like az's own."""
    logging.getLogger(PACKAGE_LOGGER).parent = logging.getLogger('cli')


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


@contextlib.contextmanager
def preflight_errors():
    """The tunnel engine's pre-flight refusals as the CLI's typed errors."""
    from azure.cli.core import azclierror
    from azext_bastion_native.dataplane.preflight import PreflightError
    errors = {'missing': azclierror.RequiredArgumentMissingError,
              'mutually-exclusive': azclierror.MutuallyExclusiveArgumentError,
              'invalid-argument': azclierror.InvalidArgumentValueError}
    try:
        yield
    except PreflightError as err:
        raise errors.get(err.kind, azclierror.ValidationError)(err.message, recommendation=err.recommendation) \
            from None


def connect_request(resource_group, name, target_resource_id, target_ip_address, port):
    """The tunnel engine's request; its argument checks (no network) run here."""
    from azext_bastion_native.dataplane.preflight import ConnectRequest, check_arguments
    request = ConnectRequest(resource_group, name, port, target_resource_id, target_ip_address)
    with preflight_errors():
        check_arguments(request)
    return request


def resolve_endpoint(cli_ctx, request):
    """One ARM GET of the host (native client on, IP connect when asked): (host, Endpoint, Target, get_token)."""
    from azext_bastion_native._client_factory import cf_network
    from azext_bastion_native.dataplane.preflight import plan_connection
    from azext_bastion_native.management.hosts import get_host
    host = get_host(cf_network(cli_ctx), request.resource_group, request.name)
    with preflight_errors():
        endpoint, target = plan_connection(host, request)
    parts = (host.id or '').split('/')
    subscription = parts[2] if len(parts) > 2 and parts[1].lower() == 'subscriptions' else None
    return host, endpoint, target, arm_token_getter(cli_ctx, subscription)


def data_plane_cli_error(err):
    """A data-plane refusal (mint answered 4xx/5xx, websocket failed) as a typed CLI error."""
    from azure.cli.core import azclierror
    from azext_bastion_native.dataplane import SessionRefusedError
    if isinstance(err, SessionRefusedError) and err.status in (401, 403):
        return azclierror.UnauthorizedError(err.message, recommendation=(
            'Check that your account may connect through this Bastion host (Reader on the host, the VM and its '
            'NIC), that the NSG on AzureBastionSubnet allows the port (az network bastion nsg check), and sign '
            'in again with az login if your session has expired.'))
    if isinstance(err, SessionRefusedError) and err.status == 404:
        return azclierror.ResourceNotFoundError(err.message, recommendation='Check the target VM or IP address.')
    return azclierror.AzureConnectionError(err.message, recommendation='Try again; if it persists, run '
                                           '`az network bastion show` to check the host is running.')
