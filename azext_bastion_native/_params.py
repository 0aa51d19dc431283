"""Arguments: the shared argument types, then one loader per area, called in turn by load_arguments."""

# pylint: disable=line-too-long

from knack.arguments import CLIArgumentType

from azure.cli.core.commands.parameters import (
    get_enum_type, get_location_type, get_three_state_flag, resource_group_name_type, tags_type)

from azext_bastion_native.bastion_facts import SKUS
from azext_bastion_native.guards import validate_ssh_key
from azext_bastion_native._validators import (
    validate_agent_idle_timeout, validate_local_port, validate_max_connections, validate_one_host, validate_ports,
    validate_positive_seconds, validate_resource_port)

bastion_name_type = CLIArgumentType(
    options_list=['--name', '-n'], id_part='name', help='Name of the Bastion host.',
    completer=None)

ports_type = CLIArgumentType(
    nargs='+', validator=validate_ports,
    help='Other target VM ports native client may reach, besides SSH 22 and RDP 3389 (Azure requires those two on '
         'AzureBastionSubnet, so they always stay allowed): space-separated ports (1-65535) or ranges such as '
         '8000-8010. Every other port to the virtual network is denied.')

# The target of a connection and how to sign in to it, shared by every connecting command.
target_resource_id_type = CLIArgumentType(
    options_list=['--target-resource-id'],
    help='Resource ID of the target VM (or VM scale set instance), e.g. from `az vm show -g RG -n VM --query id`. '
         'Give this or --target-ip-address.')
target_ip_address_type = CLIArgumentType(
    options_list=['--target-ip-address'],
    help='Private IP address of the target (IP connect: the host needs it enabled; ports 22 and 3389 only). '
         'Give this or --target-resource-id.')
resource_port_type = CLIArgumentType(
    options_list=['--resource-port'], type=int, validator=validate_resource_port,
    help='Port on the target to connect to, e.g. 22 or 3389.')
ssh_key_type = CLIArgumentType(
    options_list=['--ssh-key'], validator=validate_ssh_key,
    help='Path of your private key file (mode 600) for --auth-type ssh-key. Keys in Azure Key Vault are not supported: '
         'download them first.')
username_type = CLIArgumentType(help='User to sign in as. Default: the admin user name in the VM\'s profile.')
nsg_name_type = CLIArgumentType(options_list=['--nsg-name'])
# A host the connecting commands go through: --ids works as for `show` (one host per run).
connect_host_name_type = CLIArgumentType(
    options_list=['--name', '-n'], id_part='name', validator=validate_one_host, help='Name of the Bastion host.')


# Verbs where Microsoft's generated commands also take --bastion-host-name
# (src/bastion/azext_bastion/aaz/latest/network/bastion/_create.py, _update.py, _delete.py, _show.py, _wait.py).
BASTION_HOST_NAME_VERBS = ('create', 'update', 'delete', 'show', 'wait')


def sku_argument(value):
    """update --sku: ours (Premium) and Microsoft's object form (name=Premium, {name:Premium}; their _update.py)."""
    import argparse
    from azext_bastion_native.bastion_facts import canonical_sku
    try:
        return canonical_sku(value)
    except ValueError as err:
        raise argparse.ArgumentTypeError(f'{err}; e.g. --sku Premium or --sku name=Premium.') from None


def load_arguments(self, _):
    for load in (_configure_arguments, _nsg_arguments, _tunnel_arguments, _ssh_rdp_arguments, _doctor_arguments,
                 _ssh_config_and_file_arguments, _agent_arguments):
        load(self)


def _configure_arguments(self):
    """bastion create/show/list/delete/wait, native-client, session."""
    with self.argument_context('network bastion') as c:
        c.argument('name', bastion_name_type)
        c.argument('location', get_location_type(self.cli_ctx))
        c.argument('tags', tags_type)

    for verb in BASTION_HOST_NAME_VERBS:
        with self.argument_context(f'network bastion {verb}') as c:
            c.argument('name', bastion_name_type, options_list=['--name', '-n', '--bastion-host-name'])

    with self.argument_context('network bastion create') as c:
        c.argument('name', bastion_name_type, options_list=['--name', '-n', '--bastion-host-name'], id_part=None)
        c.argument('vnet_name', options_list=['--vnet-name'],
                   help='Name or ID of the virtual network: with an AzureBastionSubnet (/26 or larger), or for '
                        '--sku Developer any virtual network.')
        c.argument('public_ip_address', options_list=['--public-ip-address'],
                   help='Name or ID of a Standard SKU, Static public IP address. Not for --sku Developer or '
                        '--private-only.')
        c.argument('location', get_location_type(self.cli_ctx),
                   help='Location. Default: the virtual network\'s location.')
        c.argument('sku', arg_type=get_enum_type(list(SKUS)),
                   help='SKU. Native client needs Standard (the default) or Premium; Developer is a free shared '
                        'pool without AzureBastionSubnet or public IP.')
        c.argument('zones', nargs='+', help='Availability zones, space-separated, e.g. 1 2 3.')
        c.argument('private_only', options_list=['--private-only'], arg_type=get_three_state_flag(),
                   help='Private-only deployment: no public IP, reached from the virtual network only (Premium).')

    for command in ('network bastion create', 'network bastion update'):
        with self.argument_context(command) as c:
            c.argument('enable_tunneling', arg_type=get_three_state_flag(),
                       help='Native client support (Standard and Premium). Default on create: true there.')
            c.argument('enable_ip_connect', arg_type=get_three_state_flag(),
                       help='Connect to VMs by private IP address (Standard and Premium).')
            c.argument('file_copy', options_list=['--file-copy', '--enable-file-copy'],
                       arg_type=get_three_state_flag(), help='File copy in browser sessions (Standard and Premium).')
            c.argument('disable_copy_paste', arg_type=get_three_state_flag(),
                       help='Turn off copy and paste in browser sessions (Standard and Premium).')
            c.argument('enable_kerberos', arg_type=get_three_state_flag(),
                       help='Kerberos authentication (Basic, Standard and Premium).')
            # Microsoft's names (_create.py, _update.py) beside ours
            c.argument('shareable_link', options_list=['--shareable-link', '--enable-shareable-link'],
                       arg_type=get_three_state_flag(), help='Shareable links to VMs (Standard and Premium).')
            c.argument('session_recording', options_list=['--session-recording', '--enable-session-recording'],
                       arg_type=get_three_state_flag(), help='Session recording (Premium).')
            c.argument('scale_units', type=int, help='Instances, 2-50 (Standard and Premium). Default: 2.')

    with self.argument_context('network bastion update') as c:
        c.argument('sku', options_list=['--sku', '--sku.name'], type=sku_argument,
                   help='New SKU (Basic, Standard, Premium; also as name=Premium): only upwards (Basic -> Standard '
                        '-> Premium); Azure never downgrades a host.')
        c.argument('network_acls', options_list=['--network-acls'],
                   help='Developer hosts: the IPv4 addresses or ranges allowed to connect, as Microsoft\'s bastion '
                        'extension takes them: "{ip-rules:[{address-prefix:203.0.113.0/24}]}" or the JSON of '
                        'networkAcls; "{ip-rules:[]}" removes them.')

    with self.argument_context('network bastion list') as c:
        c.argument('resource_group_name', resource_group_name_type,
                   help='Resource group. Default: every Bastion host in the subscription.')

    with self.argument_context('network bastion native-client') as c:
        c.argument('yes', options_list=['--yes', '-y'], action='store_true',
                   help='Do not prompt for confirmation.')

    with self.argument_context('network bastion native-client enable') as c:
        c.argument('upgrade_sku', action='store_true',
                   help='Upgrade a Basic host to Standard to enable native client (pricing changes; SKUs are never '
                        'downgraded).')
        c.argument('enable_ip_connect', action='store_true',
                   help='Also enable connecting to VMs by private IP address.')

    with self.argument_context('network bastion session') as c:
        c.argument('session_ids', nargs='+', help='Session IDs, as `az network bastion session list` shows them.')


def _nsg_arguments(self):
    """nsg show/check/apply."""
    with self.argument_context('network bastion nsg') as c:
        c.argument('ports', ports_type)

    with self.argument_context('network bastion nsg check') as c:
        c.argument('nsg_name', nsg_name_type,
                   help='When AzureBastionSubnet has no NSG: check this NSG (in the virtual network\'s resource '
                        'group), the one `nsg apply --nsg-name` would merge into and associate.')

    with self.argument_context('network bastion nsg apply') as c:
        c.argument('nsg_name', nsg_name_type,
                   help='Name of the NSG to create when AzureBastionSubnet has none (in the virtual network\'s '
                        'resource group and location); an existing NSG of that name is merged into and '
                        'associated. Default: <bastion name>-nsg.')
        c.argument('yes', options_list=['--yes', '-y'], action='store_true',
                   help='Do not prompt before changing an existing NSG.')
        c.argument('override_denies', options_list=['--override-denies'], action='store_true',
                   help='Place Bastion\'s allow rules above your Deny rules that block what Bastion needs. '
                        'Without it such a Deny is reported and nothing is changed.')


def _connect_target_arguments(self, commands, with_resource_port):
    """The host and target every connecting command names."""
    for command in commands:
        with self.argument_context(command) as c:
            c.argument('name', connect_host_name_type)
            c.argument('target_resource_id', target_resource_id_type)
            c.argument('target_ip_address', target_ip_address_type)
            if with_resource_port:
                c.argument('resource_port', resource_port_type)


def _tunnel_arguments(self):
    """tunnel and proxy."""
    _connect_target_arguments(self, ('network bastion tunnel', 'network bastion proxy'), with_resource_port=True)

    with self.argument_context('network bastion tunnel') as c:
        c.argument('port', type=int, validator=validate_local_port,
                   help='Local port to listen on. Default: 0, a free port (the ready line names it).')
        c.argument('bind_address', options_list=['--bind-address'],
                   help='Local address to listen on. Default: 127.0.0.1. Any other address lets whoever can reach it '
                        'into the VM.')
    for command in ('network bastion tunnel', 'network bastion forward'):
        with self.argument_context(command) as c:
            c.argument('timeout', type=int, validator=validate_positive_seconds,
                       help='Stop listening after this many seconds; open connections get a short grace period to '
                            'finish.')
            c.argument('idle_timeout', options_list=['--idle-timeout'], type=int,
                       validator=validate_positive_seconds,
                       help='Stop once no connection has been open for this many seconds.')
            c.argument('max_connections', options_list=['--max-connections'], type=int,
                       validator=validate_max_connections,
                       help='Most connections open at once (over every listener); more are refused. Default: no '
                            'limit.')

    with self.argument_context('network bastion forward') as c:
        c.argument('name', connect_host_name_type)
        c.argument('local_forward', options_list=['--local-forward', '-L'], action='append',
                   help='[BIND:]PORT:VM:VMPORT, repeatable: listen on BIND (default 127.0.0.1) port PORT (0: a free '
                        'one) and relay each connection to VMPORT of VM. VM: a VM name (in --vm-resource-group), '
                        'NAME.RESOURCEGROUP, a VM resource ID, or a private IP address (IP connect: ports 22 and 3389 '
                        'only). Every target is checked before anything listens.')
        c.argument('socks', options_list=['--socks', '-D'],
                   help='[BIND:]PORT: a SOCKS5 proxy (CONNECT, no authentication) on BIND (default 127.0.0.1) port '
                        'PORT (0: a free one) to every VM the host reaches, by name as -L takes it (socks5h) or by '
                        'private IP address (IP connect).')
        c.argument('vm_resource_group', options_list=['--vm-resource-group'],
                   help='Resource group of the VMs named without one. Default: the Bastion host\'s.')
        c.argument('background', options_list=['--background'], action='store_true',
                   help='Hand the listeners to the connection agent (started if need be) and return once they listen: '
                        'the ready line is printed and the forward lives on after this terminal closes. Same checks '
                        'as without. `az network bastion agent status` lists it; `agent stop` ends it (and every '
                        'other), or its own --timeout / --idle-timeout. POSIX only.')

    with self.argument_context('network bastion proxy') as c:
        c.argument('timeout', type=int, validator=validate_positive_seconds,
                   help='End the relay after this many seconds (its session deleted, exit status 0).')
        c.argument('idle_timeout', options_list=['--idle-timeout'], type=int, validator=validate_positive_seconds,
                   help='End the relay once nothing has passed either way for this many seconds (its session '
                        'deleted, exit status 0).')


def _ssh_rdp_arguments(self):
    """ssh and rdp."""
    _connect_target_arguments(self, ('network bastion ssh', 'network bastion rdp'), with_resource_port=False)

    with self.argument_context('network bastion ssh') as c:
        c.argument('auth_type', arg_type=get_enum_type(['password', 'ssh-key', 'aad']),
                   help='Sign-in method: password (ssh tries nothing else), ssh-key (--ssh-key), or aad '
                        '(Entra ID: a short-lived certificate for your signed-in account; not with '
                        '--target-ip-address).')
        c.argument('username', username_type,
                   help='User to sign in as. Default: with --target-resource-id, the admin user name in the '
                        'VM\'s profile; with --target-ip-address, ssh\'s own default (a User in your ssh config, '
                        'else your local user name), not the VM\'s admin. Not with aad.')
        c.argument('ssh_key', ssh_key_type)
        c.argument('resource_port', resource_port_type,
                   help='SSH port on the VM. Default: 22. A custom port needs --target-resource-id.')
        c.positional('ssh_args', nargs='*', help='Arguments after -- go to ssh as they are: options, then a remote '
                                                 'command.')

    with self.argument_context('network bastion rdp') as c:
        c.argument('auth_type', arg_type=get_enum_type(['password', 'aad']),
                   help='aad: sign in with Entra ID (Windows client, through the Bastion gateway). Default: '
                        'the RDP client asks for credentials.')
        c.argument('resource_port', resource_port_type,
                   help='RDP port on the VM. Default: 3389. A custom port needs --target-resource-id.')
        c.argument('configure', action='store_true',
                   help='Open the connection in mstsc\'s editor first (Windows).')
        # three-state as in Microsoft's `bastion` extension (src/bastion/azext_bastion/_params.py): the flag alone,
        # or with true/false as scripts written for that extension pass it
        c.argument('disable_gateway', arg_type=get_three_state_flag(),
                   help='Windows: connect mstsc through a local tunnel instead of the Bastion RD gateway (no '
                        'Entra ID sign-in then).')
        c.argument('enable_mfa', arg_type=get_three_state_flag(),
                   help='Windows: ask the gateway for an RDP file with Entra ID (RDS AAD) authentication.')


def _doctor_arguments(self):
    """doctor."""
    with self.argument_context('network bastion doctor') as c:
        c.argument('name', connect_host_name_type)
        c.argument('target_resource_id', target_resource_id_type,
                   help='Resource ID of the VM to check (exists, running, OS) and to mint a test session to. '
                        'Optional; not with --target-ip-address.')
        c.argument('target_ip_address', target_ip_address_type,
                   help='Private IP address to check IP connect for, and to mint a test session to. Optional.')
        c.argument('resource_port', resource_port_type,
                   help='Port on the target. Default: 22 for ssh, 3389 for rdp (or by the VM\'s OS).')
        c.argument('method', arg_type=get_enum_type(['ssh', 'rdp', 'tunnel']),
                   help='How you mean to connect. Default: from --resource-port (22 ssh, 3389 rdp, other '
                        'tunnel), else from the VM\'s OS.')


def _agent_arguments(self):
    """agent start and stop."""
    with self.argument_context('network bastion agent start') as c:
        c.argument('idle_timeout', options_list=['--idle-timeout'], type=float,
                   validator=validate_agent_idle_timeout,
                   help='Seconds with no live connection before the agent exits by itself. Default: 900.')
        c.argument('foreground', action='store_true',
                   help='Run the agent in this process until it stops (how the ProxyCommand helper starts it).')
    with self.argument_context('network bastion agent stop') as c:
        c.argument('forward', options_list=['--forward'], type=int,
                   help='Stop only this background forward (its id from `forward --background` or `agent status`; '
                        'every session it opened is deleted) and leave the agent running.')


def _ssh_config_and_file_arguments(self):
    """ssh-config and file upload/download."""
    for command in ('network bastion ssh-config', 'network bastion file'):
        with self.argument_context(command) as c:
            c.argument('name', connect_host_name_type)
            c.argument('target_resource_id', target_resource_id_type,
                       help='Resource ID of the target VM (or VM scale set instance), e.g. from '
                            '`az vm show -g RG -n VM --query id`.')
            c.argument('username', username_type)
            c.argument('resource_port', resource_port_type, help='SSH port on the VM. Default: 22.')

    with self.argument_context('network bastion ssh-config') as c:
        c.argument('host_alias', options_list=['--host-alias'],
                   help='Name to give ssh (ssh ALIAS, scp file ALIAS:path). Default: the VM name.')
        c.argument('ssh_key', ssh_key_type,
                   help='Private key file (mode 600) to write as IdentityFile, with IdentitiesOnly yes. Keys in '
                        'Azure Key Vault are not supported: download them first.')
        c.argument('config_file', options_list=['--file'],
                   help='ssh config file to add the block to, e.g. ~/.ssh/config (created 0600 if absent). '
                        'Default: print the block on stdout.')
        c.argument('overwrite', action='store_true',
                   help='Replace this alias\'s block written earlier by this command (nothing else in the file '
                        'changes).')
        c.argument('no_agent', options_list=['--no-agent'], action='store_true',
                   help='ProxyCommand `az network bastion proxy` (an az start-up per connection) instead of the '
                        'connection agent\'s helper. Always so on Windows.')
        c.argument('vm_resource_group', options_list=['--vm-resource-group'],
                   help='Write a Host block for every Linux VM of this resource group that the host reaches (its '
                        'virtual network and peered ones); alias: the VM name. Not with --target-resource-id.')
        c.argument('all_vms', options_list=['--all'], action='store_true',
                   help='Write a Host block for every Linux VM the host reaches, in any resource group.')
        c.argument('prune', action='store_true',
                   help='With --vm-resource-group or --all: remove the blocks this set wrote earlier for VMs that '
                        'are gone.')
        c.argument('inventory', options_list=['--inventory'],
                   help='With --vm-resource-group or --all: also write an Ansible inventory of the same hosts to '
                        'this file, grouped by OS and resource group (`ansible -i FILE all -m ping`).')
        c.argument('inventory_format', options_list=['--inventory-format'], arg_type=get_enum_type(['yaml', 'ini']),
                   help='Format of --inventory. Default: yaml.')
        c.argument('auth_type', options_list=['--auth-type'], arg_type=get_enum_type(['ssh-key', 'aad']),
                   help='aad: sign in with Entra ID (VMs with AADSSHLoginForLinux): the blocks name your key pair '
                        'and Entra SSH certificate (kept 0600 in a private directory of your az configuration) and '
                        'the login name in that certificate; before every ssh a `Match exec` line renews the '
                        'certificate with your az sign-in when less than 5 minutes are left (a running connection '
                        'agent renews it ahead). Not on Windows. Default: the VM\'s admin user (or --username) with '
                        'your own keys (--ssh-key or ssh\'s defaults).')

    with self.argument_context('network bastion file') as c:
        c.argument('auth_type', arg_type=get_enum_type(['password', 'ssh-key']),
                   help='Sign-in method: password (scp tries nothing else) or ssh-key (--ssh-key).')
        c.argument('ssh_key', ssh_key_type)
        c.argument('recursive', options_list=['--recursive', '-r'], action='store_true',
                   help='Copy a directory with everything in it.')

    for command in ('network bastion file upload', 'network bastion file download'):
        with self.argument_context(command) as c:   # a positional needs a command scope, not a group
            c.positional('scp_args', nargs='*', help='Arguments after -- go to scp as they are (before the '
                                                     'paths), e.g. -- -l 8000 -o UserKnownHostsFile=FILE.')

    with self.argument_context('network bastion file upload') as c:
        c.argument('source', options_list=['--source'], help='Local file (or directory, with --recursive).')
        c.argument('destination', options_list=['--destination'],
                   help='Path on the VM: a file name, or an existing directory to copy into. Relative paths start '
                        'in the user\'s home directory.')

    with self.argument_context('network bastion file download') as c:
        c.argument('source', options_list=['--source'],
                   help='Path on the VM (a directory with --recursive). Relative paths start in the user\'s '
                        'home directory.')
        c.argument('destination', options_list=['--destination'],
                   help='Local file name, or an existing directory to copy into.')
