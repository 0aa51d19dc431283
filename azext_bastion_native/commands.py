"""Command table: each command points at the module that does it (one CliCommandType per module, made once);
`network bastion` and each sub-group opened once. Keep heavy imports out of this module."""

# pylint: disable=line-too-long

from azext_bastion_native._format import (
    bastion_host_table_row, bastion_hosts_table, native_client_table, sessions_table, nsg_rules_table,
    nsg_check_table, nsg_apply_table)
from azext_bastion_native.management.operations import fail_on_wait_timeout, no_output_for_deletes


# As Microsoft's `bastion` extension registers delete (`confirmation=` in src/bastion/azext_bastion/aaz/latest/
# network/bastion/_delete.py): at a terminal azure-cli asks; without one and without --yes knack refuses ("Unable to
# prompt for confirmation as no tty available. Use --yes.", then "Operation cancelled.", exit 1: knack/commands.py
# `_user_confirmed`, azure-cli-core commands/__init__.py `resolve_confirmation`), so a script that forgot --yes
# deletes nothing.
DELETE_CONFIRMATION = 'Are you sure you want to delete the Bastion host?'


def load_command_table(self, _):
    from azure.cli.core.commands import CliCommandType
    hosts = self.module_kwargs['custom_command_type']       # management/hosts.py, with the settings of every type

    def module(path):
        """The commands of one module (operations_tmpl): each command is the module's function of that name, with the
        signature _params.py describes; every other setting (the one exception_handler) is the loader's (__init__)."""
        return CliCommandType(overrides=hosts, operations_tmpl=f'azext_bastion_native.{path}#{{}}')

    tunnel, forward, ssh, rdp = module('connect.tunnel'), module('connect.forward'), module('connect.ssh'), \
        module('connect.rdp')
    ssh_config, file_transfer = module('connect.ssh_config'), module('connect.file')
    doctor, agent = module('doctor.run'), module('agent.commands')

    native_client, sessions, nsg = module('management.native_client'), module('management.sessions'), \
        module('management.nsg')

    with self.command_group('network bastion', custom_command_type=hosts) as g:
        # -- configure: hosts
        g.custom_command('create', 'bastion_create', supports_no_wait=True, table_transformer=bastion_host_table_row)
        g.generic_update_command('update', getter_name='bastion_show', getter_type=hosts,
                                 setter_name='bastion_update_setter', setter_type=hosts,
                                 setter_arg_name='parameters', custom_func_name='bastion_update',
                                 supports_no_wait=True, table_transformer=bastion_host_table_row)
        g.custom_show_command('show', 'bastion_show', table_transformer=bastion_host_table_row)
        g.custom_command('list', 'bastion_list', table_transformer=bastion_hosts_table)
        g.custom_command('delete', 'bastion_delete', supports_no_wait=True, confirmation=DELETE_CONFIRMATION)
        g.custom_wait_command('wait', 'bastion_wait_getter', transform=fail_on_wait_timeout)
        # -- connect: tunnel, proxy, forward, ssh, rdp
        g.custom_command('tunnel', 'tunnel_command', custom_command_type=tunnel)
        g.custom_command('proxy', 'proxy_command', custom_command_type=tunnel)
        g.custom_command('forward', 'forward_command', custom_command_type=forward)
        g.custom_command('ssh', 'ssh_command', custom_command_type=ssh)
        g.custom_command('rdp', 'rdp_command', custom_command_type=rdp)
        # -- extras: doctor, ssh-config
        g.custom_command('doctor', 'doctor_command', custom_command_type=doctor,
                         table_transformer='[].{Check:check, Status:status, Detail:detail, Fix:fix}')
        g.custom_command('ssh-config', 'ssh_config_command', custom_command_type=ssh_config)
    from knack.events import EVENT_INVOKER_FILTER_RESULT
    self.cli_ctx.register_event(EVENT_INVOKER_FILTER_RESULT, no_output_for_deletes)

    with self.command_group('network bastion native-client', custom_command_type=native_client) as g:
        g.custom_show_command('show', 'native_client_show', table_transformer=native_client_table)
        g.custom_command('enable', 'native_client_enable', supports_no_wait=True,
                         table_transformer=bastion_host_table_row)
        g.custom_command('disable', 'native_client_disable', supports_no_wait=True,
                         table_transformer=bastion_host_table_row)

    with self.command_group('network bastion session', custom_command_type=sessions) as g:
        g.custom_command('list', 'session_list', table_transformer=sessions_table)
        g.custom_command('disconnect', 'session_disconnect')

    # -- secure: NSG rules for AzureBastionSubnet
    with self.command_group('network bastion nsg', custom_command_type=nsg) as g:
        g.custom_command('show', 'nsg_show', table_transformer=nsg_rules_table)
        g.custom_command('check', 'nsg_check', table_transformer=nsg_check_table)
        g.custom_command('apply', 'nsg_apply', supports_no_wait=True, table_transformer=nsg_apply_table)

    # -- extras: the connection agent, file transfer (one function for both directions: it reads its command name)
    with self.command_group('network bastion agent', custom_command_type=agent) as g:
        g.custom_command('start', 'agent_start')
        g.custom_command('stop', 'agent_stop')
        g.custom_command('status', 'agent_status')

    with self.command_group('network bastion file', custom_command_type=file_transfer) as g:
        g.custom_command('upload', 'file_transfer_command')
        g.custom_command('download', 'file_transfer_command')
