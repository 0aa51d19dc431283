"""`az network bastion ssh-config`: an OpenSSH `Host` block whose ProxyCommand reaches a VM through Bastion
(proxy_command.py), so plain ssh, scp, sftp, rsync and Ansible work; for one VM, or for a resource group's VMs or all
the host reaches (fleet.py). The block's text: ssh_config_text.py; the file, its lock and the `ssh -G` check:
ssh_config_file.py.

Output: without --file, the blocks on stdout as ssh_config text, unless -o or --query is given: then a structured
result (`{"blocks": {ALIAS: TEXT}, "skipped": [...]}`; nothing with -o none). Skipped VMs are named on stderr
whatever the output. A stopped VM gets no block: the one-VM form refuses it (as `ssh` does), the many-VM form skips
it."""

import contextlib
import os
import shlex
import sys

from azext_bastion_native.bastion_facts import DEFAULT_METHOD_PORTS
from azext_bastion_native.connect import ssh_config_file, ssh_config_text as text_format
from azext_bastion_native.connect.proxy_command import proxy_command_argv
from azext_bastion_native.errors import Kind, Refused

COMMAND_NAME = 'network bastion ssh-config'


@contextlib.contextmanager
def file_errors(config_file):
    """An OSError or undecodable text while reading or writing ``config_file``, as a Refused naming the file."""
    try:
        yield
    except (OSError, UnicodeError) as err:
        raise Refused(f"Cannot update '{config_file}': {getattr(err, 'strerror', None) or err}.",
                      kind=Kind.FILE_OPERATION) from None


def _check_scope(target_resource_id, host_alias, overwrite, vm_resource_group, all_vms, prune, inventory,
                 inventory_format, config_file):
    scopes = [option for option, value in (('--target-resource-id', target_resource_id),
                                           ('--vm-resource-group', vm_resource_group), ('--all', all_vms)) if value]
    if not scopes:
        raise Refused('Give the VM (--target-resource-id), a resource group of VMs (--vm-resource-group) or --all.',
                      kind=Kind.MISSING)
    if len(scopes) > 1:
        raise Refused(f"{' and '.join(scopes)} do not go together: give one of them.", kind=Kind.MUTUALLY_EXCLUSIVE)
    single = [option for option, value in (('--prune', prune), ('--inventory', inventory),
                                           ('--inventory-format', inventory_format)) if value]
    several = [option for option, value in (('--host-alias', host_alias), ('--overwrite', overwrite)) if value]
    if target_resource_id and single:
        raise Refused(f"{', '.join(single)}: only with --vm-resource-group or --all.", kind=Kind.MUTUALLY_EXCLUSIVE)
    if not target_resource_id and several:
        raise Refused(f"{', '.join(several)}: only with --target-resource-id (with --vm-resource-group or --all, "
                      'aliases are the VM names and a re-run updates the blocks in place).',
                      kind=Kind.MUTUALLY_EXCLUSIVE)
    if not target_resource_id and (prune or inventory) and not config_file:
        raise Refused('--prune and --inventory work on a config file: give --file too.', kind=Kind.MISSING)


def given_subscription(cli_ctx):
    """The subscription's id when --subscription was given, for the ProxyCommand: it runs later, when the
    default subscription may be another one (a name is resolved to the id, which never changes)."""
    given = getattr(cli_ctx, 'data', {}).get('subscription_id')
    if not given:
        return None
    from azure.cli.core._profile import Profile
    return Profile(cli_ctx=cli_ctx).get_subscription_id(given)


def output_given(cli_ctx):
    """Whether -o/--output or --query was on the command line (azure-cli keeps the names of the parameters
    given): the user asked for a result, not ssh_config text."""
    given = getattr(cli_ctx, 'data', {}).get('safe_params') or []
    return any(param in ('-o', '--output', '--query') for param in given)


def connect_hint(path, alias):
    """How to connect through a block written to ``path``: `ssh -F FILE` unless ssh reads that file by itself."""
    if os.path.realpath(path) == os.path.realpath(os.path.expanduser('~/.ssh/config')):
        return f'ssh {alias}'
    return f'ssh -F {shlex.quote(path)} {alias}'


def print_skipped(skipped):
    from azext_bastion_native.connect.fleet import skipped_line
    for item in skipped:
        sys.stderr.write(skipped_line(item) + '\n')
    sys.stderr.flush()


def printed_result(cli_ctx, blocks, skipped):
    """Without --file: the blocks as ssh_config text on stdout (nothing returned), or with -o the structured
    result azure-cli prints in that format."""
    from azext_bastion_native.connect.fleet import skipped_as_dict
    print_skipped(skipped)
    if output_given(cli_ctx):
        return {'blocks': dict(blocks), 'skipped': [skipped_as_dict(item) for item in skipped]}
    sys.stdout.write('\n'.join(blocks.values()))
    sys.stdout.flush()
    return None


def refuse_offline(cli_ctx, ssh_key, username):
    """The ssh family's pre-flight (guards.refuse_offline), then what the user gave that no block could hold:
    (absolute key path); no network call."""
    from azext_bastion_native.guards import refuse_offline as refuse_ssh_family_offline
    key_path = refuse_ssh_family_offline(cli_ctx, COMMAND_NAME, ssh_key)
    if username:
        text_format.check_username(username)
    if key_path:
        text_format.config_path_value(os.path.abspath(key_path))
    return os.path.abspath(key_path) if key_path else None


def ssh_config_command(cmd, resource_group_name, name, target_resource_id=None, host_alias=None, username=None,
                       ssh_key=None, resource_port=None, config_file=None, overwrite=False, no_agent=False,
                       vm_resource_group=None, all_vms=False, prune=False, inventory=None, inventory_format=None,
                       auth_type=None):
    """`az network bastion ssh-config`: print the Host block(s), or write them into ``config_file``."""
    _check_scope(target_resource_id, host_alias, overwrite, vm_resource_group, all_vms, prune, inventory,
                 inventory_format, config_file)
    port = int(resource_port) if resource_port is not None else DEFAULT_METHOD_PORTS['ssh']
    key_path = refuse_offline(cmd.cli_ctx, ssh_key, username)
    entra = EntraLogin(cmd.cli_ctx) if (auth_type or '').lower() == 'aad' else None
    if entra:
        entra.check_offline(username, ssh_key)
    if not target_resource_id:
        return _fleet_config(cmd, resource_group_name, name, vm_resource_group, username, key_path, port,
                             config_file, prune, inventory, inventory_format or 'yaml', no_agent, entra)
    return _one_vm_config(cmd, resource_group_name, name, target_resource_id, host_alias, username, key_path, port,
                          config_file, overwrite, no_agent, entra)


class EntraLogin:
    """--auth-type aad: checked before any network call (the cloud has Entra SSH certificates, not Windows, no
    --username or --ssh-key), then, once the VMs are known, the user's key pair and a certificate valid
    for a while yet (clients/entra_files.py): what the blocks name."""

    def __init__(self, cli_ctx):
        self.cli_ctx = cli_ctx
        self.scope = None

    def check_offline(self, username, ssh_key):
        from azext_bastion_native.clients.entra_cert import SCOPE_CONFIG, ssh_certificate_scope
        from azext_bastion_native.connect import argument_checks
        argument_checks.check_ssh_login_arguments('aad', username, ssh_key)
        if os.name == 'nt':
            raise Refused('--auth-type aad blocks renew the Entra ID certificate before each ssh with a POSIX shell '
                          'command and file lock, which Windows does not have.',
                          'Use `az network bastion ssh --auth-type aad` here, or write the blocks on Linux or '
                          'macOS.', Kind.INVALID_ARGUMENT)
        self.scope = ssh_certificate_scope(self.cli_ctx.cloud.name,
                                           self.cli_ctx.config.get(*SCOPE_CONFIG, fallback=None))

    def block_values(self):
        """What the blocks say for the login: {username, key_path, certificate_path, refresh (the Match exec
        argv)}."""
        from azext_bastion_native.az_compat import entra_ssh_certificate
        from azext_bastion_native.clients.entra_files import ensure_certificate
        from azext_bastion_native.connect.proxy_command import entra_refresh_argv
        files = ensure_certificate(lambda scopes, data: entra_ssh_certificate(self.cli_ctx, scopes, data),
                                   self.scope)
        return {'username': files.user, 'key_path': files.key_path, 'certificate_path': files.certificate_path,
                'refresh': entra_refresh_argv()}


def _alias_in_file(config_file, target_resource_id):
    """The alias of a block of ours in ``config_file`` already written for this VM, or None."""
    from azext_bastion_native.clients.ssh import host_key_alias
    path = ssh_config_file.real_path(config_file)
    if not os.path.isfile(path):
        return None
    from azext_bastion_native.connect.fleet import existing_owners
    owner = host_key_alias(target_resource_id)
    return next((alias for alias, vm in existing_owners(ssh_config_file.read_config(path)).items() if vm == owner),
                None)


def _one_vm_config(cmd, resource_group_name, name, target_resource_id, host_alias, username, key_path, port,
                   config_file, overwrite, no_agent, entra=None):
    from knack.log import get_logger
    from azext_bastion_native.clients.ssh import host_key_alias
    from azext_bastion_native.connect import argument_checks, resolve
    request = argument_checks.connect_request(resource_group_name, name, target_resource_id, None, port)
    with file_errors(config_file):
        alias = text_format.check_alias(host_alias or (config_file and _alias_in_file(config_file, target_resource_id))
                                        or default_alias(request.target_resource_id))
        if config_file:
            ssh_config_file.check_can_write(config_file, alias, overwrite)
    # What `ssh` and `proxy` would refuse: host without native client (the proxy's pre-flight), missing or
    # stopped VM.
    destination = resolve.resolve_destination(cmd.cli_ctx, request)
    proxy = proxy_command_argv(resource_group_name, name, target_resource_id, port,
                               given_subscription(cmd.cli_ctx), no_agent)
    login = entra.block_values() if entra else {'username': username, 'key_path': key_path}
    with file_errors(config_file):
        block = text_format.render_block(
            alias, proxy, username=login['username'] or destination.admin_username, key_path=login['key_path'],
            port=port, certificate_path=login.get('certificate_path'), refresh=login.get('refresh'),
            # the same known_hosts name as `az network bastion ssh` uses for this VM
            host_key_alias=host_key_alias(destination.target_label),
            comment=f'Written by `az {COMMAND_NAME}`: through Bastion host {name} (resource group '
                    f'{resource_group_name}).')
        if not config_file:
            return printed_result(cmd.cli_ctx, {alias: block}, [])
        path, replaced = ssh_config_file.write_block(config_file, alias, block, overwrite)
        shadowing = text_format.unmarked_host_lines(ssh_config_file.read_config(path), alias)
    if shadowing:
        get_logger(__name__).warning(
            "%s also has its own 'Host %s' (line %s); ssh takes the first value it finds for each option, so "
            'those lines may override this block.', path, alias, ', '.join(map(str, shadowing)))
    sys.stderr.write(f"{'Replaced' if replaced else 'Added'} the Bastion block for '{alias}' in {path}. "
                     f"Connect with: {connect_hint(path, alias)}\n")
    return None


def default_alias(target_resource_id):
    """The VM's name (``SCALESET_INSTANCE`` for a scale set instance, as Azure names those VMs)."""
    from azure.mgmt.core.tools import parse_resource_id
    parts = parse_resource_id(target_resource_id)
    if (parts.get('type') or '').lower() == 'virtualmachinescalesets' \
            and (parts.get('child_type_1') or '').lower() == 'virtualmachines':
        return f"{parts['name']}_{parts['child_name_1']}"
    return parts['resource_name']


def _fleet_config(cmd, resource_group_name, name, vm_resource_group, username, key_path, port, config_file, prune,
                  inventory, inventory_format, no_agent, entra=None):
    """--vm-resource-group / --all: print the blocks, or write them (and the inventory)."""
    from azext_bastion_native.connect import fleet
    host, members, skipped = _read_fleet(cmd.cli_ctx, resource_group_name, name, vm_resource_group)
    login = entra.block_values() if entra and members else {'username': username, 'key_path': key_path}
    options = fleet.BlockOptions(resource_group_name, name, port, login['username'], login['key_path'],
                                 given_subscription(cmd.cli_ctx), no_agent,
                                 f"{resource_group_name}/{name}/{vm_resource_group or '*'}".lower(), COMMAND_NAME,
                                 login.get('certificate_path'), login.get('refresh'))

    def plan(vm):       # native client on, the port: what the proxy would refuse
        from azext_bastion_native.connect.preflight import ConnectRequest, plan_connection
        plan_connection(host, ConnectRequest(resource_group_name, name, port, vm.id))

    with file_errors(config_file):
        if not config_file:
            blocks, _, unwritable = fleet.fleet_blocks(fleet.assign_aliases(members), options, plan)
            return printed_result(cmd.cli_ctx, blocks, skipped + unwritable)
        path, summary, entries, unwritable = fleet.write_fleet(
            config_file, members, options, prune, [item.id for item in skipped if item.id], plan)
        summary = {'file': path, **summary}
        summary['inventory'] = ssh_config_file.write_atomically(
            inventory, fleet.render_inventory(entries, inventory_format, path)) if inventory else None
    print_skipped(skipped + unwritable)
    summary['skipped'] = [fleet.skipped_as_dict(item) for item in skipped + unwritable]
    return summary


def _read_fleet(cli_ctx, resource_group_name, name, vm_resource_group):
    """The host, and (VMs, Skipped) from ARM (management/fleet_vms.py)."""
    from azext_bastion_native.management.clients import cf_compute, cf_network
    from azext_bastion_native.bastion_facts import subscription_of
    from azext_bastion_native.connect.fleet import unwritable
    from azext_bastion_native.management.fleet_vms import list_fleet
    from azext_bastion_native.management.hosts import get_host
    host = get_host(cf_network(cli_ctx), resource_group_name, name)
    subscription = subscription_of(host.id)
    members, skipped = list_fleet(cf_network(cli_ctx, subscription_id=subscription),
                                  cf_compute(cli_ctx, subscription_id=subscription), host, vm_resource_group,
                                  unwritable)
    return host, members, skipped
