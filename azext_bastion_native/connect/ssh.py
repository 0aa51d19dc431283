"""`az network bastion ssh`: sign-in material (password, key file, or an Entra ID certificate), the local tunnel,
then OpenSSH in the foreground; everything a run creates (Bastion sessions, ephemeral keys and certificates) is
gone when the command returns."""

import contextlib
import logging

from azext_bastion_native.connect import argument_checks
from azext_bastion_native.connect.environment import Environment
from azext_bastion_native.exit_status import exit_with
from azext_bastion_native.connect.dispatch import SSH, ConnectFacts, refuse_early, resolve_and_dispatch

logger = logging.getLogger(__name__)


def ssh_command(cmd, resource_group_name, name, auth_type, target_resource_id=None, target_ip_address=None,
                username=None, ssh_key=None, resource_port=None, ssh_args=None, environment=None):
    """`az network bastion ssh`: ssh's exit code becomes the command's (SystemExit when non-zero)."""
    from azext_bastion_native.clients.ssh import find_ssh
    from azext_bastion_native.guards import refuse_offline
    environment = environment or Environment()
    auth_type = (auth_type or '').lower()
    facts = ConnectFacts(environment.client, SSH, auth_type=auth_type,
                         port=int(resource_port) if resource_port is not None else None,
                         ip_connect=bool(target_ip_address))
    # Limitations first (Cloud Shell, Key Vault keys, key files, the table), before any network call.
    request = refuse_early('network bastion ssh', facts, resource_group_name, name, target_resource_id,
                           target_ip_address)
    key_path = refuse_offline(cmd.cli_ctx, 'network bastion ssh', ssh_key, (
        lambda: argument_checks.check_ssh_login_arguments(auth_type, username, ssh_key),
        lambda: refuse_backgrounding(ssh_args)))
    ssh_program = find_ssh(environment.which)
    certificate_scope = None
    if auth_type == 'aad':      # an unknown cloud is refused before anything is sent
        from azext_bastion_native.clients.entra_cert import SCOPE_CONFIG, ssh_certificate_scope
        certificate_scope = ssh_certificate_scope(cmd.cli_ctx.cloud.name,
                                                  cmd.cli_ctx.config.get(*SCOPE_CONFIG, fallback=None))
    _, destination = resolve_and_dispatch(cmd.cli_ctx, facts, request)

    def fetch_certificate(scopes, data):
        from azext_bastion_native.az_compat import entra_ssh_certificate
        return entra_ssh_certificate(cmd.cli_ctx, scopes, data)

    exit_with(lambda: run_ssh(destination, auth_type, username, key_path, ssh_args or [], ssh_program,
                              environment, fetch_certificate=fetch_certificate,
                              cloud_name=cmd.cli_ctx.cloud.name, certificate_scope=certificate_scope))


def run_ssh(destination, auth_type, username, key_path, ssh_args, ssh_program, environment,
            fetch_certificate=None, cloud_name=None, certificate_scope=None):
    """Sign-in material, then the tunnel, then ssh in the foreground; every piece is undone on the way out."""
    from azext_bastion_native.clients.ssh import SshLogin, host_key_alias, ssh_argv
    with contextlib.ExitStack() as cleanup:
        if auth_type == 'aad':
            login = entra_login(cleanup, fetch_certificate, cloud_name, certificate_scope)
        else:
            login = SshLogin(auth_type, username or destination.admin_username, key_path)
        tunnel = cleanup.enter_context(environment.tunnel(destination, unix_socket=True))
        argv = ssh_argv(ssh_program, tunnel.port, login, host_key_alias(destination.target_label), ssh_args,
                        name=destination_name(destination), proxy_command=getattr(tunnel, 'proxy_command', None))
        return environment.run_program(argv)


def destination_name(destination):
    """The name ssh and scp are given for a resolved Destination (clients.ssh.connection_name)."""
    from azext_bastion_native.clients.ssh import connection_name
    return connection_name(destination.target_label, destination.endpoint.host, destination.target.resource_id,
                           destination.target.port)


def refuse_backgrounding(ssh_args):
    """ssh must stay in the foreground: the tunnel lives in this process and ends when az returns, so ``-f`` (or a
    ControlPersist master) would leave ssh, and any -L/-R forward, running over a dead connection, and az would
    still exit 0."""
    from azext_bastion_native.clients.ssh import background_option
    from azext_bastion_native.errors import Kind, Refused
    option = background_option(ssh_args or [])
    if option is None:
        return
    raise Refused(
        f'ssh {option} would keep ssh running after `az network bastion ssh` returns, but the Bastion tunnel '
        'ends with the command: the session and any forward (-L, -R, -D) would be dead.',
        'Keep this command in the foreground (drop the option; Ctrl+C ends it), or for a lasting connection '
        'open one with `az network bastion tunnel -g RG -n NAME --target-resource-id ID --resource-port 22 '
        '--port 2222` and run `ssh -f -N -L ... -p 2222 USER@127.0.0.1`, or write a Host block with '
        '`az network bastion ssh-config` and run `ssh -f -N -L ... ALIAS` (its ProxyCommand lives as long as ssh).',
        Kind.INVALID_ARGUMENT)


def entra_login(cleanup, fetch_certificate, cloud_name, certificate_scope=None):
    """An SshLogin with an Entra ID certificate in a private directory ``cleanup`` removes."""
    from azext_bastion_native.clients.entra_cert import obtain_certificate
    from azext_bastion_native.clients.ssh import SshLogin
    from azext_bastion_native.clients.tempfiles import private_directory
    directory = cleanup.enter_context(private_directory(prefix='az-bastion-aad-'))
    credentials = obtain_certificate(directory, fetch_certificate, cloud_name, certificate_scope)
    logger.debug('Entra ID certificate issued for principal %s', credentials.principal)
    return SshLogin('aad', credentials.principal, credentials.private_key_path, credentials.certificate_path)
